//! ManageEngine Applications Manager on MariaDB.

use chrono::{TimeZone, Utc};
use serde_json::json;
use vigie_poll::{Answer, Question, SourceError};
use vigie_source::Level;

use crate::support::{MANAGEENGINE_SCHEMA, MyDb};
use crate::{poll, poll_all, source};

/// 2025-01-14 09:02:00 UTC in epoch milliseconds (the reference's example row).
const T0: i64 = 1_736_845_320_000;

async fn me_db() -> MyDb {
    let db = MyDb::create("me").await;
    db.exec(MANAGEENGINE_SCHEMA).await;
    db.exec(
        "INSERT INTO AM_ManagedObject (RESOURCEID,RESOURCENAME,TYPE,DISPLAYNAME,DESCRIPTION) VALUES \
         (10000342,'srv-db-02_MySQL_3306','MYSQL-DB-server','MySQL prod',''),\
         (10000400,'srv-web-01','WindowsXP','srv-web-01',''),\
         (10000500,'Payments','HAI','Payments application','card processing')",
    )
    .await;
    db
}

#[tokio::test]
async fn alerts_map_severities_and_a_clear_clears() {
    let db = me_db().await;
    db.exec(&format!(
        "INSERT INTO Alert (ID,SOURCE,CATEGORY,SEVERITY,MMESSAGE,CREATETIME,MODTIME) VALUES \
         (20222737,'10000342','3001',1,'MySQL prod is down. Connection refused',{T0},{T0}),\
         (20222738,'10000400','708',4,'CPU utilization is 91 %<br>threshold 90 %',{t1},{t1}),\
         (20222739,'10000400','709',5,'Memory is clear',{t1},{t2})",
        t1 = T0 + 1000,
        t2 = T0 + 2000
    ))
    .await;
    let s = source(
        "me-prod",
        "manageengine",
        &db.url,
        json!({"base_url": "http://apm:9090"}),
    );
    let (batches, position) = poll_all(s.as_ref(), None).await;
    let records: Vec<_> = batches.iter().flat_map(|b| b.records.clone()).collect();
    // The clear of a first read is skipped: nothing to clear yet.
    assert_eq!(records.len(), 2, "{records:#?}");
    let down = &records[0];
    assert_eq!(down.resource, "MySQL prod");
    assert_eq!(down.message, "MySQL prod is down. Connection refused");
    assert_eq!(down.level, Some(Level::Critical));
    assert_eq!(down.source_severity, Some(1));
    assert_eq!(down.domain.as_deref(), Some("applications"));
    assert_eq!(down.attributes["event"], json!("me-10000342-3001"));
    assert_eq!(down.attributes["monitor_type"], json!("MYSQL-DB-server"));
    assert_eq!(
        down.source_ref.as_deref(),
        Some("alert/20222737@1736845320000/1")
    );
    assert_eq!(down.occurred_at, Utc.timestamp_millis_opt(T0).single());
    assert_eq!(
        down.attributes["url"],
        json!(
            "http://apm:9090/showresource.do?resourceid=10000342&method=showResourceForResourceID"
        )
    );
    assert_eq!(records[1].level, Some(Level::Warning));
    assert_eq!(records[1].message, "CPU utilization is 91 % threshold 90 %");

    // Monitors: the first poll lists them all (groups are services).
    let equipment: Vec<_> = batches
        .iter()
        .flat_map(|b| b.equipment.items.clone())
        .collect();
    assert_eq!(equipment.len(), 3);
    let payments = equipment
        .iter()
        .find(|e| e.name == "Payments application")
        .expect("group");
    assert_eq!(payments.kind, "service");
    assert_eq!(batches[0].equipment.complete_kinds, ["monitor", "service"]);

    // The monitor comes back: Applications Manager updates the row in place.
    db.exec(&format!(
        "UPDATE Alert SET SEVERITY = 5, MMESSAGE = 'MySQL prod is up', MODTIME = {} WHERE ID = 20222737",
        T0 + 60_000
    ))
    .await;
    let next = poll(s.as_ref(), position.as_deref()).await;
    assert_eq!(next.records.len(), 1);
    assert!(next.records[0].clear);
    assert_eq!(
        next.records[0].attributes["event"],
        json!("me-10000342-3001")
    );
    // The monitors are not listed again before their interval.
    assert!(next.equipment.items.is_empty());
    db.drop_db().await;
}

#[tokio::test]
async fn a_null_source_is_a_clear_error_and_severities_are_configurable() {
    let db = me_db().await;
    db.exec(&format!(
        "INSERT INTO Alert (ID,SOURCE,CATEGORY,SEVERITY,MMESSAGE,CREATETIME,MODTIME) VALUES \
         (1,'10000400','708',3,'minor thing',{T0},{T0}),\
         (2,NULL,'708',1,'who?',{T0},{t1})",
        t1 = T0 + 1
    ))
    .await;
    let s = source(
        "me",
        "manageengine",
        &db.url,
        json!({"severities": {"1": "critical", "3": "ignore", "4": "warning", "5": "clear"}, "monitors": false}),
    );
    let batch = poll(s.as_ref(), None).await;
    assert!(batch.records.is_empty(), "severity 3 is ignored");
    let e = batch.stopped.expect("stopped at the NULL");
    assert!(matches!(e, SourceError::Data(_)));
    assert!(
        e.to_string().contains("Alert row ID=2") && e.to_string().contains("`SOURCE`"),
        "{e}"
    );
    let bad = vigie_sql::build(&vigie_sql::SourceSpec {
        name: "me".into(),
        kind: "manageengine".into(),
        url: db.url.clone(),
        domain: None,
        settings: json!({"severities": {"1": "red"}}),
    });
    assert!(
        bad.err()
            .map(|e| e.to_string())
            .unwrap_or_default()
            .contains("`red`")
    );
    db.drop_db().await;
}

#[tokio::test]
async fn downtimes_answer_unavailability_and_statistics() {
    let db = me_db().await;
    let hour = 3_600_000;
    db.exec(&format!(
        "INSERT INTO AM_MO_DowntimeData (RESID,DOWNTIME,UPTIME,TYPE) VALUES \
         (10000342,{a},{b},1),(10000342,{c},{d},2),(10000342,{e},0,1),(10000400,{a},{b},1)",
        a = T0,
        b = T0 + hour,
        c = T0 + 3 * hour,
        d = T0 + 4 * hour,
        e = T0 + 8 * hour
    ))
    .await;
    let s = source("me", "manageengine", &db.url, json!({}));
    let from = Utc.timestamp_millis_opt(T0 - hour).single().unwrap();
    let to = Utc.timestamp_millis_opt(T0 + 9 * hour).single().unwrap();
    let answer = s
        .ask(&Question::Unavailability {
            resource: "MySQL prod".into(),
            from,
            to,
        })
        .await
        .expect("answer");
    let Answer::Unavailability { periods, .. } = answer else {
        panic!("unavailability expected");
    };
    assert_eq!(periods.len(), 3);
    assert_eq!(periods[0].kind, "outage");
    assert_eq!(periods[1].kind, "maintenance");
    assert_eq!(periods[2].end, None, "still down");

    let answer = s
        .ask(&Question::Statistics {
            resource: "10000342".into(),
            from,
            to,
        })
        .await
        .expect("answer");
    let Answer::Statistics(stats) = answer else {
        panic!("statistics expected");
    };
    assert_eq!(stats.outages, 2);
    // One hour, then the last hour of the range still down; maintenance is not downtime.
    assert_eq!(stats.downtime_seconds, 2 * 3600);
    assert_eq!(stats.maintenance_seconds, 3600);
    assert_eq!(stats.mean_time_to_repair_seconds, Some(3600));

    let unknown = s
        .ask(&Question::Statistics {
            resource: "no such monitor".into(),
            from,
            to,
        })
        .await;
    assert!(matches!(unknown, Err(SourceError::Unsupported(_))));
    db.drop_db().await;
}
