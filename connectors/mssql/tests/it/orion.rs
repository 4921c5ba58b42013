//! SolarWinds Orion over TDS: syslog mapping, traps, active alerts raised and reset, nodes and
//! their statuses, the node report, incremental reads, and the error paths.

use std::time::Duration;

use serde_json::{Value, json};
use vigie_mssql::orion::Orion;
use vigie_poll::{Answer, Batch, Question, SourceError};
use vigie_source::Level;

use crate::bridge::{Bridge, JsonServer};
use crate::{poll, source};

fn syslog_row(id: i64, severity: i64, host: &str, message: &str) -> Value {
    json!({
        "MsgID": id, "EngineID": 1, "DateTime": "2025-01-14 10:00:00", "IP": "10.9.0.1",
        "Acknowledged": 0, "SysLogFacility": 23, "SysLogSeverity": severity,
        "Hostname_ANSI": host, "Hostname_UNICODE": host, "NodeID": 0,
        "MessageType_ANSI": "TEST", "MessageType_UNICODE": "TEST",
        "Message_ANSI": message, "Message_UNICODE": message,
        "SysLogTag_ANSI": "", "SysLogTag_UNICODE": "",
        "FirstIPInMessage": "", "SecIPInMessage": "", "MacInMessage": ""
    })
}

pub(crate) fn active_row(id: i64, object: i64) -> Value {
    json!({
        "AlertActiveID": id, "Acknowledged": 0, "AcknowledgedBy": null,
        "AcknowledgedDateTime": null, "AcknowledgedNote": null, "AlertObjectID": object,
        "TriggeredDateTime": "2025-01-14 09:03:00", "TriggeredMessage": format!("object {object} triggered"),
        "NumberOfNotes": 0, "LastExecutedEscalationLevel": 0, "LastExecutedEscalationLevelTime": null
    })
}

fn static_tables() -> Vec<Value> {
    vec![
        json!({"name": "Traps", "csv": "orion/Traps.csv"}),
        json!({"name": "TrapVarbinds", "csv": "orion/TrapVarbinds.csv"}),
        json!({"name": "Nodes", "csv": "orion/Nodes.csv"}),
        json!({"name": "CPULoad", "csv": "orion/CPULoad.csv"}),
        json!({"name": "AlertObjects", "csv": "orion/AlertObjects.csv"}),
        json!({"name": "AlertConfigurations", "csv": "orion/AlertConfigurations.csv"}),
    ]
}

/// The bridge of the end-to-end test (`pipeline.rs`).
pub(crate) fn orion_bridge_for_pipeline(http: &JsonServer) -> Bridge {
    orion_bridge(http)
}

/// A bridge with the CSV SysLog and AlertActive served over HTTP (rows set by the test).
fn orion_bridge(http: &JsonServer) -> Bridge {
    let mut tables = static_tables();
    tables.push(json!({"name": "SysLog", "csv": "orion/SysLog.csv"}));
    tables.push(http.table("AlertActive", 0.2));
    Bridge::start(Value::Array(tables))
}

fn by_ref<'a>(batch: &'a Batch, r: &str) -> &'a vigie_source::RawRecord {
    batch
        .records
        .iter()
        .find(|x| x.source_ref.as_deref() == Some(r))
        .unwrap_or_else(|| panic!("no record {r} in {:#?}", batch.records))
}

#[tokio::test]
async fn first_poll_maps_syslog_traps_alerts_and_nodes() {
    let http = JsonServer::start();
    http.set(
        "AlertActive",
        json!([
            active_row(9001, 301),
            active_row(9002, 302),
            active_row(9003, 303)
        ]),
    );
    let bridge = orion_bridge(&http);
    let src = source(
        "orion",
        "solarwinds",
        &bridge.url("SolarWindsOrion"),
        json!({"base_url": "https://orion.corp"}),
    );
    let batch = poll(src.as_ref(), None).await;
    assert!(batch.stopped.is_none(), "{:?}", batch.stopped);

    // Syslog: the study's mapping; severity 6 (918275) is not an alert.
    let syslog: Vec<_> = batch
        .records
        .iter()
        .filter(|r| r.attributes["kind"] == "syslog")
        .collect();
    assert_eq!(syslog.len(), 5, "{syslog:#?}");
    assert!(
        batch
            .records
            .iter()
            .all(|r| r.source_ref.as_deref() != Some("syslog/918275"))
    );
    let first = by_ref(&batch, "syslog/918273");
    assert_eq!(first.level, Some(Level::Low));
    assert_eq!(first.resource, "core-sw1");
    assert_eq!(
        first.message,
        "core-sw1 %LINK-3-UPDOWN: Interface GigabitEthernet1/0/24, changed state to down"
    );
    assert_eq!(first.domain.as_deref(), Some("network"));
    assert_eq!(first.source_severity, Some(3));
    assert_eq!(
        first.occurred_at.unwrap().to_rfc3339(),
        "2025-01-14T09:01:57+00:00"
    );
    assert_eq!(first.attributes["event"], "syslog:LINK-3-UPDOWN");
    assert_eq!(first.attributes["node_id"], 42);
    assert_eq!(by_ref(&batch, "syslog/918274").level, Some(Level::Critical));
    // NULL Unicode columns fall back on the ANSI ones.
    assert_eq!(by_ref(&batch, "syslog/918274").resource, "rtr-paris");
    let unicode = by_ref(&batch, "syslog/918276");
    assert_eq!(unicode.level, Some(Level::Warning));
    assert_eq!(
        unicode.resource, "sw-accès-étage2",
        "the Unicode host is preferred"
    );
    assert_eq!(unicode.message, "sw-accès-étage2 Ventilateur 2 en panne");
    assert_eq!(by_ref(&batch, "syslog/918277").level, Some(Level::Critical));
    assert_eq!(by_ref(&batch, "syslog/918278").level, Some(Level::Low));

    // Traps, varbinds kept in the raw record.
    let trap = by_ref(&batch, "trap/5501");
    assert_eq!(trap.resource, "rtr-paris");
    assert_eq!(trap.level, Some(Level::Warning));
    assert_eq!(trap.attributes["trap_type"], "IF-MIB:linkDown");
    let varbinds = &trap.raw.as_ref().unwrap()["varbinds"];
    assert_eq!(varbinds.as_array().unwrap().len(), 2, "{varbinds}");
    assert_eq!(varbinds[1]["name"], "ifAdminStatus.3");
    let ups = by_ref(&batch, "trap/5502");
    assert_eq!(
        ups.resource, "ups-b1",
        "ANSI host when the Unicode one is NULL"
    );
    assert_eq!(ups.raw.as_ref().unwrap()["varbinds"][0]["value"], "12");

    // Active alerts: Orion's severity mapped; 7 is not in the list → unknown level, code kept.
    let down = by_ref(&batch, "alert-active/9001");
    assert_eq!(down.level, Some(Level::Critical));
    assert_eq!(down.resource, "core-sw1");
    assert_eq!(down.attributes["event"], "orion-alert-301");
    assert_eq!(down.attributes["alert_name"], "Node is down");
    assert_eq!(
        down.attributes["url"],
        "https://orion.corp/Orion/NetPerfMon/NodeDetails.aspx?NetObject=N:42"
    );
    assert_eq!(
        by_ref(&batch, "alert-active/9002").level,
        Some(Level::Warning)
    );
    let odd = by_ref(&batch, "alert-active/9003");
    assert_eq!(odd.level, Some(Level::Warning));
    assert_eq!(odd.attributes["status"], "unknown");
    assert_eq!(odd.attributes["severity_code"], 7);
    assert_eq!(odd.source_severity, Some(7));

    // Nodes → equipment with Orion's statuses; 99 is unknown, its code kept.
    let nodes = &batch.equipment.items;
    assert_eq!(nodes.len(), 5);
    assert_eq!(batch.equipment.complete_kinds, vec!["node".to_owned()]);
    let status = |id: &str| {
        let n = nodes.iter().find(|n| n.source_ref == id).unwrap();
        (
            n.status.clone().unwrap(),
            n.attributes["status_code"].clone(),
        )
    };
    assert_eq!(status("node/42"), ("down".into(), json!(2)));
    assert_eq!(status("node/43"), ("up".into(), json!(1)));
    assert_eq!(status("node/44"), ("warning".into(), json!(3)));
    assert_eq!(status("node/45"), ("unmanaged".into(), json!(9)));
    assert_eq!(status("node/46"), ("unknown".into(), json!(99)));
    let core = nodes.iter().find(|n| n.source_ref == "node/42").unwrap();
    assert_eq!(core.name, "core-sw1");
    assert_eq!(core.attributes["address"], "10.1.0.1");
    assert!(
        core.attributes.get("cpu_load").is_none(),
        "-2 means no figure"
    );
}

#[tokio::test]
async fn incremental_polls_read_only_new_rows_and_resets_clear() {
    let http = JsonServer::start();
    http.set(
        "SysLog",
        json!([
            syslog_row(1, 1, "edge-1", "first"),
            syslog_row(2, 6, "edge-1", "info")
        ]),
    );
    http.set(
        "AlertActive",
        json!([active_row(9001, 301), active_row(9002, 302)]),
    );
    let mut tables = static_tables();
    tables.push(http.table("SysLog", 0.2));
    tables.push(http.table("AlertActive", 0.2));
    let bridge = Bridge::start(Value::Array(tables));
    let src = source(
        "orion",
        "solarwinds",
        &bridge.url("SolarWindsOrion"),
        json!({"traps": false, "nodes": false}),
    );
    let first = poll(src.as_ref(), None).await;
    let refs: Vec<_> = first
        .records
        .iter()
        .filter_map(|r| r.source_ref.clone())
        .collect();
    assert_eq!(
        refs,
        vec!["syslog/1", "alert-active/9001", "alert-active/9002"]
    );
    assert_eq!(first.rows_read, 4);
    let position = first.position.clone().unwrap();

    // Nothing new: nothing delivered, the position kept.
    let idle = poll(src.as_ref(), Some(&position)).await;
    assert!(idle.records.is_empty(), "{:#?}", idle.records);

    // New syslog rows, and alert 9001 reset (gone from AlertActive) while 9004 triggers.
    http.set(
        "SysLog",
        json!([
            syslog_row(1, 1, "edge-1", "first"),
            syslog_row(2, 6, "edge-1", "info"),
            syslog_row(3, 0, "edge-2", "panic"),
            syslog_row(4, 2, "edge-3", "fan")
        ]),
    );
    http.set(
        "AlertActive",
        json!([active_row(9002, 302), active_row(9004, 303)]),
    );
    let mut next = None;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let b = poll(src.as_ref(), Some(&position)).await;
        if b.records.len() >= 4 {
            next = Some(b);
            break;
        }
    }
    let next = next.expect("the bridge served the new rows");
    let refs: Vec<_> = next
        .records
        .iter()
        .filter_map(|r| r.source_ref.clone())
        .collect();
    assert_eq!(
        refs,
        vec![
            "syslog/3",
            "syslog/4",
            "alert-active/9004",
            "alert-active/9001/reset"
        ]
    );
    let reset = by_ref(&next, "alert-active/9001/reset");
    assert!(reset.clear);
    assert_eq!(reset.resource, "core-sw1");
    assert_eq!(
        reset.attributes["event"], "orion-alert-301",
        "the clear matches the alert's fingerprint"
    );
    assert_eq!(by_ref(&next, "syslog/3").level, Some(Level::Critical));
    let position = next.position.unwrap();
    assert!(position.contains("\"syslog\":4"), "{position}");
    let again = poll(src.as_ref(), Some(&position)).await;
    assert!(
        again.records.is_empty(),
        "the reset is not sent twice: {:#?}",
        again.records
    );
}

#[tokio::test]
async fn a_bad_row_stops_its_table_at_that_row() {
    let http = JsonServer::start();
    let mut bad = syslog_row(2, 1, "edge-1", "no severity");
    bad["SysLogSeverity"] = Value::Null;
    http.set(
        "SysLog",
        json!([
            syslog_row(1, 1, "edge-1", "first"),
            bad,
            syslog_row(3, 1, "edge-1", "third")
        ]),
    );
    http.set("AlertActive", json!([active_row(9001, 301)]));
    let mut tables = static_tables();
    tables.push(http.table("SysLog", 0.2));
    tables.push(http.table("AlertActive", 0.2));
    let bridge = Bridge::start(Value::Array(tables));
    let src = source(
        "orion",
        "solarwinds",
        &bridge.url("SolarWindsOrion"),
        json!({"traps": false, "nodes": false}),
    );
    let batch = poll(src.as_ref(), None).await;
    let e = batch.stopped.clone().expect("stopped at the bad row");
    assert!(matches!(e, SourceError::Data(_)), "{e}");
    assert!(
        e.to_string().contains("SysLog row MsgID=2") && e.to_string().contains("SysLogSeverity"),
        "{e}"
    );
    let refs: Vec<_> = batch
        .records
        .iter()
        .filter_map(|r| r.source_ref.clone())
        .collect();
    assert_eq!(
        refs,
        vec!["syslog/1", "alert-active/9001"],
        "the other tables are still read"
    );
    let position = batch.position.unwrap();
    assert!(position.contains("\"syslog\":1"), "{position}");
    let again = poll(src.as_ref(), Some(&position)).await;
    assert!(again.stopped.is_some() && again.records.is_empty());
}

#[tokio::test]
async fn rows_received_in_the_settle_window_wait_for_the_next_poll() {
    let http = JsonServer::start();
    let mut recent = syslog_row(2, 1, "edge-1", "just received");
    recent["DateTime"] = json!("2999-01-01 00:00:00");
    http.set(
        "SysLog",
        json!([
            syslog_row(1, 1, "edge-1", "first"),
            recent,
            syslog_row(3, 1, "edge-1", "third")
        ]),
    );
    http.set("AlertActive", json!([active_row(9001, 301)]));
    let mut tables = static_tables();
    tables.push(http.table("SysLog", 0.2));
    tables.push(http.table("AlertActive", 0.2));
    let bridge = Bridge::start(Value::Array(tables));
    let src = source(
        "orion",
        "solarwinds",
        &bridge.url("SolarWindsOrion"),
        json!({"traps": false, "alerts": false, "nodes": false}),
    );
    let batch = poll(src.as_ref(), None).await;
    assert!(batch.stopped.is_none());
    let refs: Vec<_> = batch
        .records
        .iter()
        .filter_map(|r| r.source_ref.clone())
        .collect();
    assert_eq!(
        refs,
        vec!["syslog/1"],
        "row 2 is too recent: it and what follows wait"
    );
    assert!(!batch.more);
    assert!(
        batch.records[0]
            .raw
            .as_ref()
            .unwrap()
            .get("vigie_recent")
            .is_none()
    );
    let position = batch.position.unwrap();
    assert!(position.contains("\"syslog\":1"), "{position}");
    // Without a settle window every row is read.
    let eager = source(
        "orion",
        "solarwinds",
        &bridge.url("SolarWindsOrion"),
        json!({"traps": false, "alerts": false, "nodes": false, "settle_seconds": 0}),
    );
    assert_eq!(poll(eager.as_ref(), Some(&position)).await.records.len(), 2);
}

#[tokio::test]
async fn node_report_gives_status_cpu_memory_and_history() {
    let http = JsonServer::start();
    http.set("AlertActive", json!([]));
    let bridge = orion_bridge(&http);
    let orion = Orion::new(&vigie_mssql::Spec {
        name: "orion".into(),
        kind: "solarwinds".into(),
        url: bridge.url("SolarWindsOrion"),
        domain: None,
        settings: Value::Null,
    })
    .unwrap();
    let from = "2025-01-14T07:30:00Z".parse().unwrap();
    let to = "2025-01-14T10:00:00Z".parse().unwrap();
    let report = orion.node_report("rtr-paris", from, to).await.unwrap();
    assert_eq!(report.node_id, 43);
    assert_eq!(report.status, "up");
    assert_eq!(report.cpu_load, Some(37.0));
    assert_eq!(report.percent_memory_used, Some(61.0));
    let at: Vec<String> = report.history.iter().map(|h| h.at.to_rfc3339()).collect();
    assert_eq!(
        at,
        vec!["2025-01-14T08:00:00+00:00", "2025-01-14T09:00:00+00:00"]
    );
    let by_id = orion.node_report("node/46", from, to).await.unwrap();
    assert_eq!(
        (by_id.status.as_str(), by_id.status_code),
        ("unknown", Some(99))
    );
    let missing = orion.node_report("nowhere", from, to).await.unwrap_err();
    assert!(matches!(missing, SourceError::Unsupported(_)), "{missing}");
}

#[tokio::test]
async fn node_report_is_answered_on_demand_through_ask() {
    let bridge = Bridge::start(json!([
        {"name": "Nodes", "csv": "orion/Nodes.csv"},
        {"name": "CPULoad", "csv": "orion/CPULoad.csv"},
    ]));
    let url = bridge.url("SolarWindsOrion");
    let src = source("orion", "solarwinds", &url, Value::Null);
    let question = Question::NodeReport {
        resource: "rtr-paris".into(),
        from: "2025-01-14T07:30:00Z".parse().unwrap(),
        to: "2025-01-14T10:00:00Z".parse().unwrap(),
    };
    let answer = src.ask(&question).await.unwrap();
    let Answer::NodeReport(report) = &answer else {
        panic!("not a node report: {answer:?}");
    };
    assert_eq!((report.node_id, report.caption.as_str()), (43, "rtr-paris"));
    assert_eq!(
        (report.status.as_str(), report.status_code),
        ("up", Some(1))
    );
    assert_eq!(report.cpu_load, Some(37.0));
    assert_eq!(report.percent_memory_used, Some(61.0));
    // 07:00 is before the range and node 42's row is another node's: two samples.
    let history: Vec<(String, Option<f64>, Option<f64>)> = report
        .history
        .iter()
        .map(|h| (h.at.to_rfc3339(), h.avg_load, h.avg_memory_used))
        .collect();
    assert_eq!(
        history,
        vec![
            ("2025-01-14T08:00:00+00:00".into(), Some(35.0), Some(5.2e9)),
            ("2025-01-14T09:00:00+00:00".into(), Some(37.0), Some(5.24e9)),
        ]
    );
    // Serialised with the answers' tag, as the API sends it.
    let body = serde_json::to_value(&answer).unwrap();
    assert_eq!(body["answer"], "node_report");
    assert_eq!(body["status"], "up");
    assert_eq!(body["history"][1]["avg_load"], 37.0);

    // Node 42 is down with Orion's -2 "no figure" CPU; by `node/ID`.
    let down = Question::NodeReport {
        resource: "node/42".into(),
        from: "2025-01-14T00:00:00Z".parse().unwrap(),
        to: "2025-01-15T00:00:00Z".parse().unwrap(),
    };
    let Answer::NodeReport(r42) = src.ask(&down).await.unwrap() else {
        panic!("not a node report");
    };
    assert_eq!((r42.status.as_str(), r42.cpu_load), ("down", None));
    assert_eq!(r42.history.len(), 1);
    assert_eq!(r42.history[0].avg_load, Some(80.0));

    // Orion refuses the periods questions; WhatsUp Gold refuses the node report.
    let periods = Question::Unavailability {
        resource: "rtr-paris".into(),
        from: "2025-01-14T00:00:00Z".parse().unwrap(),
        to: "2025-01-15T00:00:00Z".parse().unwrap(),
    };
    let e = src.ask(&periods).await.unwrap_err();
    assert!(
        matches!(&e, SourceError::Unsupported(m) if m.contains("node report")),
        "{e}"
    );
    let whatsup = source("wug", "whatsup", &url, Value::Null);
    let e = whatsup.ask(&question).await.unwrap_err();
    assert!(
        matches!(&e, SourceError::Unsupported(m) if m.contains("SolarWinds Orion")),
        "{e}"
    );
    // A node Orion does not know is named.
    let missing = Question::NodeReport {
        resource: "nowhere".into(),
        from: "2025-01-14T00:00:00Z".parse().unwrap(),
        to: "2025-01-15T00:00:00Z".parse().unwrap(),
    };
    let e = src.ask(&missing).await.unwrap_err();
    assert!(e.to_string().contains("no node `nowhere`"), "{e}");
}

#[tokio::test]
async fn wrong_password_and_missing_column_are_named() {
    let bridge = Bridge::start(json!([{"name": "SysLog", "csv": "orion/SysLog_no_unicode.csv"}]));
    let bad = source(
        "orion",
        "solarwinds",
        &bridge.url("SolarWindsOrion").replace("Wug-0rion", "nope"),
        Value::Null,
    );
    let e = bad.poll(None).await.unwrap_err();
    assert!(matches!(e, SourceError::Login(_)), "{e}");
    let text = e.to_string();
    assert!(text.contains("18456") && text.contains("`vigie`"), "{text}");
    assert!(!text.contains("nope"), "no password in {text}");
    assert!(matches!(bad.ping().await, Err(SourceError::Login(_))));

    let old = source(
        "orion",
        "solarwinds",
        &bridge.url("SolarWindsOrion"),
        json!({"traps": false, "alerts": false, "nodes": false}),
    );
    old.ping().await.unwrap();
    let e = old.poll(None).await.unwrap_err();
    assert!(matches!(e, SourceError::Schema(_)), "{e}");
    let text = e.to_string();
    assert!(
        text.contains("Hostname_UNICODE")
            && text.contains("SysLog")
            && text.contains("a column is missing"),
        "{text}"
    );
    // A missing table is a schema error too.
    let traps = source(
        "orion",
        "solarwinds",
        &bridge.url("SolarWindsOrion"),
        json!({"syslog": false, "alerts": false, "nodes": false}),
    );
    let e = traps.poll(None).await.unwrap_err();
    assert!(
        matches!(e, SourceError::Schema(_))
            && e.to_string().contains("Traps")
            && e.to_string().contains("a table is missing (error 208)"),
        "{e}"
    );
}

#[tokio::test]
async fn the_server_going_away_and_coming_back() {
    let http = JsonServer::start();
    http.set("AlertActive", json!([active_row(9001, 301)]));
    let mut bridge = orion_bridge(&http);
    let src = source(
        "orion",
        "solarwinds",
        &bridge.url("SolarWindsOrion"),
        json!({"nodes": false}),
    );
    let first = poll(src.as_ref(), None).await;
    assert_eq!(first.records.len(), 5 + 2 + 1);
    let position = first.position.unwrap();

    bridge.stop();
    let e = src.poll(Some(&position)).await.unwrap_err();
    assert!(matches!(e, SourceError::Unreachable(_)), "{e}");
    assert!(!e.to_string().contains("Wug-0rion"), "{e}");
    assert!(src.ping().await.is_err());

    bridge.restart();
    // The pooled connection died with the server: replaced, and reading resumes where it was.
    let back = poll(src.as_ref(), Some(&position)).await;
    assert!(back.records.is_empty(), "{:#?}", back.records);
    src.ping().await.unwrap();
}

#[tokio::test]
async fn bad_settings_and_urls_are_refused_before_connecting() {
    let ok = "mssql://u:p@127.0.0.1:1/SolarWindsOrion";
    for (kind, url, settings, needle) in [
        ("solarwinds", ok, json!({"colour": 1}), "colour"),
        (
            "solarwinds",
            ok,
            json!({"syslog_levels": {"0": "loud"}}),
            "loud",
        ),
        ("solarwinds", ok, json!({"batch": 0}), "batch"),
        ("solarwinds", ok, json!({"schema": "dbo; DROP"}), "schema"),
        (
            "whatsup",
            ok,
            json!({"internal_states": {"1": "sideways"}}),
            "sideways",
        ),
        (
            "whatsup",
            ok,
            json!({"tables": {"device": "Dev ice"}}),
            "tables.device",
        ),
        (
            "whatsup",
            "mysql://u:secret@h/WhatsUp",
            Value::Null,
            "not a mssql",
        ),
    ] {
        let e = vigie_mssql::build(&vigie_mssql::Spec {
            name: "s".into(),
            kind: kind.into(),
            url: url.into(),
            domain: None,
            settings,
        })
        .err()
        .unwrap_or_else(|| panic!("{kind} {url} accepted"));
        assert!(matches!(e, SourceError::Config(_)), "{e}");
        assert!(e.to_string().contains(needle), "{needle}: {e}");
        assert!(!e.to_string().contains("secret"));
    }
}
