//! WhatsUp Gold over TDS: monitors going down and up, periods ending, maintenance, unknown
//! states, devices with their addresses and groups, and the unavailability periods on demand.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use vigie_mssql::whatsup::WhatsUp;
use vigie_poll::{Answer, Batch, Question, Source};
use vigie_source::Level;

use crate::bridge::{Bridge, JsonServer};
use crate::{poll, source};

fn log(id: i64, monitor: i64, state: i64, start: &str, end: Option<&str>, result: &str) -> Value {
    json!({
        "nActiveMonitorStateChangeLogID": id, "nPivotActiveMonitorTypeToDeviceID": monitor,
        "nMonitorStateID": state, "dStartTime": start, "dEndTime": end, "sResult": result
    })
}

fn initial_log() -> Vec<Value> {
    vec![
        log(
            7788120,
            90212,
            4,
            "2025-01-14 08:00:00",
            Some("2025-01-14 08:05:00"),
            "SMTP timed out",
        ),
        log(7788121, 90212, 1, "2025-01-14 08:05:00", None, ""),
        log(
            7788123,
            90211,
            4,
            "2025-01-14 09:03:00",
            None,
            "Ping timed out after 3 retries",
        ),
        log(7788124, 90213, 6, "2025-01-14 08:30:00", None, ""),
    ]
}

pub(crate) fn whatsup_bridge(http: &JsonServer) -> Bridge {
    let mut tables: Vec<Value> = [
        "Device",
        "NetworkInterface",
        "DeviceGroup",
        "PivotDeviceToGroup",
        "ActiveMonitorType",
        "PivotActiveMonitorTypeToDevice",
        "MonitorState",
    ]
    .iter()
    .map(|t| json!({"name": t, "csv": format!("whatsup/{t}.csv")}))
    .collect();
    tables.push(http.table("ActiveMonitorStateChangeLog", 0.2));
    Bridge::start(Value::Array(tables))
}

fn refs(batch: &Batch) -> Vec<String> {
    batch
        .records
        .iter()
        .filter_map(|r| r.source_ref.clone())
        .collect()
}

/// Polls until the bridge serves the rows just set (its HTTP cache refreshes behind).
async fn poll_until(src: &dyn Source, position: &str, want: usize) -> Batch {
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let b = poll(src, Some(position)).await;
        if b.records.len() >= want {
            return b;
        }
    }
    panic!("the bridge never served the new rows");
}

#[tokio::test]
async fn monitors_down_up_ended_maintenance_and_unknown() {
    let http = JsonServer::start();
    http.set("ActiveMonitorStateChangeLog", Value::Array(initial_log()));
    let bridge = whatsup_bridge(&http);
    let src = source("wug", "whatsup", &bridge.url("WhatsUp"), Value::Null);

    // First poll: what is down now, not the history; devices with address and groups.
    let first = poll(src.as_ref(), None).await;
    assert!(first.stopped.is_none(), "{:?}", first.stopped);
    assert_eq!(refs(&first), vec!["log/7788123"]);
    let down = &first.records[0];
    assert_eq!(down.resource, "srv-file-01");
    assert_eq!(down.level, Some(Level::Critical));
    assert_eq!(down.attributes["event"], "wug-monitor-90211");
    assert_eq!(down.attributes["state"], "down");
    assert_eq!(down.attributes["address"], "10.1.30.10");
    assert_eq!(
        down.message,
        "srv-file-01 Ping: Down: Ping timed out after 3 retries"
    );
    assert_eq!(
        down.occurred_at.unwrap().to_rfc3339(),
        "2025-01-14T09:03:00+00:00"
    );
    let devices = &first.equipment.items;
    assert_eq!(devices.len(), 4);
    let dev = |r: &str| devices.iter().find(|d| d.source_ref == r).unwrap();
    assert_eq!(dev("device/1201").status.as_deref(), Some("down"));
    assert_eq!(
        dev("device/1201").attributes["groups"],
        json!(["Paris", "Servers"])
    );
    assert_eq!(dev("device/1201").attributes["address"], "10.1.30.10");
    assert_eq!(dev("device/1202").status.as_deref(), Some("up"));
    assert!(dev("device/1203").removed);
    assert_eq!(dev("device/1204").status.as_deref(), Some("maintenance"));
    let position = first.position.unwrap();

    // srv-mail-01's SMTP goes down ("Down at least 5 min", internal state 1).
    let mut rows = initial_log();
    rows[1]["dEndTime"] = json!("2025-01-14 09:10:00");
    rows.push(log(
        7788125,
        90212,
        5,
        "2025-01-14 09:10:00",
        None,
        "SMTP refused",
    ));
    http.set("ActiveMonitorStateChangeLog", Value::Array(rows.clone()));
    let second = poll_until(src.as_ref(), &position, 1).await;
    assert_eq!(refs(&second), vec!["log/7788125"]);
    assert_eq!(second.records[0].resource, "srv-mail-01");
    assert_eq!(second.records[0].attributes["event"], "wug-monitor-90212");
    let position = second.position.unwrap();

    // srv-file-01's down period ends (dEndTime set) without an up row yet: cleared.
    rows[2]["dEndTime"] = json!("2025-01-14 09:20:00");
    http.set("ActiveMonitorStateChangeLog", Value::Array(rows.clone()));
    let third = poll_until(src.as_ref(), &position, 1).await;
    assert_eq!(refs(&third), vec!["log/7788123/end"]);
    assert!(third.records[0].clear);
    assert_eq!(third.records[0].resource, "srv-file-01");
    assert_eq!(third.records[0].attributes["event"], "wug-monitor-90211");
    let position = third.position.unwrap();
    let idle = poll(src.as_ref(), Some(&position)).await;
    assert!(idle.records.is_empty(), "cleared once: {:#?}", idle.records);

    // srv-mail-01 back up (clears), then into maintenance (no alert), and srv-file-01 in a state
    // nobody listed (internal 8): raised at the unknown level, its code kept.
    rows[4]["dEndTime"] = json!("2025-01-14 09:30:00");
    rows.push(log(
        7788126,
        90212,
        1,
        "2025-01-14 09:30:00",
        Some("2025-01-14 09:40:00"),
        "",
    ));
    rows.push(log(
        7788127,
        90211,
        9,
        "2025-01-14 09:35:00",
        None,
        "flapping",
    ));
    rows.push(log(7788128, 90212, 6, "2025-01-14 09:40:00", None, ""));
    http.set("ActiveMonitorStateChangeLog", Value::Array(rows));
    let fourth = poll_until(src.as_ref(), &position, 3).await;
    // (When the bridge refreshes its cache between the two queries of a poll, the end of 7788125
    // is seen before the row that follows it: a clear more, of an alert cleared anyway.)
    let mut fourth = fourth;
    fourth
        .records
        .retain(|r| r.source_ref.as_deref() != Some("log/7788125/end"));
    assert_eq!(
        refs(&fourth),
        vec!["log/7788126", "log/7788127", "log/7788128"]
    );
    let up = &fourth.records[0];
    assert!(up.clear);
    assert_eq!(up.attributes["event"], "wug-monitor-90212");
    let unknown = &fourth.records[1];
    assert!(!unknown.clear);
    assert_eq!(unknown.level, Some(Level::Warning));
    assert_eq!(unknown.attributes["state"], "unknown");
    assert_eq!(unknown.attributes["state_unknown"], true);
    assert_eq!(unknown.attributes["internal_state"], 8);
    let maintenance = &fourth.records[2];
    assert!(
        maintenance.clear,
        "maintenance ends the outage and raises nothing"
    );
    assert_eq!(maintenance.attributes["state"], "maintenance");
    // The poll also says what is in maintenance now: the hub keeps a window for it.
    let spans = fourth.maintenance.as_ref().expect("a maintenance snapshot");
    let mail = spans
        .iter()
        .find(|s| s.resource == maintenance.resource)
        .unwrap_or_else(|| panic!("{spans:?}"));
    assert_eq!(mail.since, at("2025-01-14T09:40:00Z"));
    assert!(
        spans.iter().any(|s| s.resource == "sw-lab"),
        "the device in maintenance since the start: {spans:?}"
    );
}

fn at(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

#[tokio::test]
async fn unavailability_and_statistics_on_demand() {
    let http = JsonServer::start();
    let mut rows = initial_log();
    rows.push(log(
        7788119,
        90212,
        4,
        "2025-01-13 22:00:00",
        Some("2025-01-13 22:30:00"),
        "before",
    ));
    http.set("ActiveMonitorStateChangeLog", Value::Array(rows));
    let bridge = whatsup_bridge(&http);
    let src = source("wug", "whatsup", &bridge.url("WhatsUp"), Value::Null);

    let q = Question::Unavailability {
        resource: "srv-mail-01".into(),
        from: at("2025-01-14T08:02:00Z"),
        to: at("2025-01-14T12:00:00Z"),
    };
    let Answer::Unavailability { periods, .. } = src.ask(&q).await.unwrap() else {
        panic!("not periods");
    };
    assert_eq!(periods.len(), 1, "{periods:#?}");
    assert_eq!(periods[0].kind, "outage");
    assert_eq!(
        periods[0].start,
        at("2025-01-14T08:02:00Z"),
        "clipped to the range"
    );
    assert_eq!(periods[0].end, Some(at("2025-01-14T08:05:00Z")));
    assert!(
        periods[0]
            .detail
            .as_deref()
            .unwrap()
            .contains("SMTP timed out")
    );

    // A device in maintenance: a maintenance period, still open; by id and by monitor too.
    for resource in ["sw-lab", "1204", "device/1204", "monitor/90213"] {
        let q = Question::Unavailability {
            resource: resource.into(),
            from: at("2025-01-14T00:00:00Z"),
            to: at("2025-01-15T00:00:00Z"),
        };
        let Answer::Unavailability { periods, .. } = src.ask(&q).await.unwrap() else {
            panic!("not periods");
        };
        assert_eq!(periods.len(), 1, "{resource}: {periods:#?}");
        assert_eq!(
            (periods[0].kind.as_str(), periods[0].end),
            ("maintenance", None)
        );
    }

    let q = Question::Statistics {
        resource: "srv-mail-01".into(),
        from: at("2025-01-14T08:00:00Z"),
        to: at("2025-01-14T09:00:00Z"),
    };
    let Answer::Statistics(stats) = src.ask(&q).await.unwrap() else {
        panic!("not statistics");
    };
    assert_eq!((stats.outages, stats.downtime_seconds), (1, 300));
    assert_eq!(stats.mean_time_to_repair_seconds, Some(300));

    let q = Question::Unavailability {
        resource: "no-such-device".into(),
        from: at("2025-01-14T00:00:00Z"),
        to: at("2025-01-15T00:00:00Z"),
    };
    assert!(src.ask(&q).await.is_err());

    // The monitors in maintenance now, for the hub's maintenance windows.
    let wug = WhatsUp::new(&vigie_mssql::Spec {
        name: "wug".into(),
        kind: "whatsup".into(),
        url: bridge.url("WhatsUp"),
        domain: None,
        settings: Value::Null,
    })
    .unwrap();
    let now = wug.maintenance_now().await.unwrap();
    assert_eq!(now.len(), 1);
    assert_eq!(
        (now[0].device.as_str(), now[0].monitor.as_str()),
        ("sw-lab", "Ping")
    );
}

#[tokio::test]
async fn the_state_mapping_is_configurable() {
    let http = JsonServer::start();
    http.set("ActiveMonitorStateChangeLog", Value::Array(initial_log()));
    let bridge = whatsup_bridge(&http);
    // This install's state 6 is a real outage, and its downs are only warnings.
    let src = source(
        "wug",
        "whatsup",
        &bridge.url("WhatsUp"),
        json!({"states": {"6": "down"}, "down_level": "warning", "devices": false}),
    );
    let first = poll(src.as_ref(), None).await;
    assert_eq!(refs(&first), vec!["log/7788123", "log/7788124"]);
    assert!(
        first
            .records
            .iter()
            .all(|r| r.level == Some(Level::Warning))
    );
    assert!(first.equipment.items.is_empty());
}
