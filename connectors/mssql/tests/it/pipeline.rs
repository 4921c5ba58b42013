//! End to end: the poller runs the SQL Server sources into the real pipeline and store (the
//! backend `VIGIE_TEST_DATABASE` selects): alerts are qualified, stored with their watermark,
//! and cleared when Orion resets them or a WhatsUp monitor comes back up.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use vigie_alerts::model::Alert;
use vigie_alerts::pipeline::{Pipeline, PipelineSettings};
use vigie_alerts::repo::{self, AlertFilter};
use vigie_alerts::rules::RuleSet;
use vigie_core::domain::Domains;
use vigie_core::store::Store;
use vigie_core::testing::TestDb;
use vigie_poll::{
    BoxFuture, EquipmentBatch, Health, HealthCell, Hub, Outcome, PollSettings, Poller, Source,
};
use vigie_source::{IngestFuture, Submission};

use crate::bridge::JsonServer;
use crate::source;

struct TestHub {
    pipeline: Pipeline,
    store: Store,
    equipment: Mutex<Vec<EquipmentBatch>>,
}

impl Hub for TestHub {
    fn submit(&self, submission: Submission) -> IngestFuture<'_> {
        Box::pin(self.pipeline.submit(submission))
    }

    fn position<'a>(&'a self, source: &'a str) -> BoxFuture<'a, Result<Option<String>, String>> {
        Box::pin(async move {
            repo::checkpoint(&self.store, source)
                .await
                .map_err(|e| e.to_string())
        })
    }

    fn equipment<'a>(
        &'a self,
        _: &'a str,
        batch: EquipmentBatch,
    ) -> BoxFuture<'a, Result<(), String>> {
        self.equipment.lock().unwrap().push(batch);
        Box::pin(async { Ok(()) })
    }

    fn health(&self, _: Health) -> BoxFuture<'_, ()> {
        Box::pin(async {})
    }
}

async fn hub() -> (TestDb, Arc<TestHub>) {
    let db = TestDb::create().await.expect("test database");
    let store = db.store().await.expect("store");
    let rules = RuleSet::shipped(&Domains::default()).expect("rules");
    let (pipeline, writer) =
        Pipeline::new(store.clone(), PipelineSettings::default(), Arc::new(rules));
    tokio::spawn(writer.run());
    let hub = Arc::new(TestHub {
        pipeline,
        store,
        equipment: Mutex::new(Vec::new()),
    });
    (db, hub)
}

fn poller(hub: &Arc<TestHub>, src: Arc<dyn Source>) -> Poller {
    let mut settings = PollSettings::new(Duration::from_secs(60));
    settings.unreachable_after = Duration::from_secs(3600);
    Poller::new(
        src.clone(),
        settings,
        hub.clone(),
        HealthCell::new(Health::new(src.name(), src.kind(), 60)),
    )
}

async fn alerts(store: &Store, source: &str) -> Vec<Alert> {
    let mut all = repo::list(
        store,
        &AlertFilter {
            limit: 200,
            ..AlertFilter::default()
        },
    )
    .await
    .expect("list");
    all.retain(|a| a.source == source);
    all.sort_by_key(|a| a.id);
    all
}

/// Cycles until `check` holds (the bridge's HTTP tables refresh behind their cache).
async fn cycle_until(
    p: &mut Poller,
    store: &Store,
    source: &str,
    check: impl Fn(&[Alert]) -> bool,
) -> Vec<Alert> {
    for _ in 0..50 {
        let outcome = p.cycle().await;
        assert!(matches!(outcome, Outcome::Committed { .. }), "{outcome:?}");
        let all = alerts(store, source).await;
        if check(&all) {
            return all;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    panic!(
        "the condition never held: {:#?}",
        alerts(store, source).await
    );
}

#[tokio::test]
async fn orion_alerts_reach_the_store_and_resets_clear_them() {
    let (_db, hub) = hub().await;
    let http = JsonServer::start();
    http.set("AlertActive", json!([crate::orion::active_row(9001, 301)]));
    let bridge = crate::orion::orion_bridge_for_pipeline(&http);
    let src = source(
        "orion",
        "solarwinds",
        &bridge.url("SolarWindsOrion"),
        Value::Null,
    );
    let mut p = poller(&hub, src);
    let all = cycle_until(&mut p, &hub.store, "orion", |a| a.len() >= 8).await;
    let core = all
        .iter()
        .find(|a| a.source_ref.as_deref() == Some("alert-active/9001"))
        .expect("the active alert");
    assert_eq!((core.severity, core.state.as_str()), (2, "new"));
    assert_eq!(core.domain, "network");
    let syslog = all
        .iter()
        .find(|a| a.source_ref.as_deref() == Some("syslog/918276"))
        .expect("a syslog alert");
    assert_eq!(syslog.severity, 1);
    assert_eq!(syslog.message, "sw-accès-étage2 Ventilateur 2 en panne");
    assert_eq!(syslog.resource, "sw-accès-étage2");
    assert!(
        hub.equipment
            .lock()
            .unwrap()
            .iter()
            .any(|b| b.items.len() == 5)
    );
    let checkpoint = repo::checkpoint(&hub.store, "orion")
        .await
        .unwrap()
        .unwrap();
    assert!(checkpoint.contains("\"syslog\":918278"), "{checkpoint}");

    // The alert resets in Orion: cleared on the board, exactly once.
    // (Another alert stays active: pysqlbridge keeps serving its previous rows for an empty JSON
    // array, which it cannot type.)
    http.set("AlertActive", json!([crate::orion::active_row(9002, 302)]));
    let all = cycle_until(&mut p, &hub.store, "orion", |a| {
        a.iter()
            .any(|x| x.source_ref.as_deref() == Some("alert-active/9001") && x.state == "cleared")
    })
    .await;
    assert_eq!(
        all.len(),
        9,
        "the new alert, no new one for the reset: {all:#?}"
    );
    assert!(matches!(
        p.cycle().await,
        Outcome::Committed { records: 0, .. }
    ));
}

#[tokio::test]
async fn whatsup_outages_are_raised_and_cleared_when_the_monitor_is_up() {
    let (_db, hub) = hub().await;
    let http = JsonServer::start();
    let down = json!({"nActiveMonitorStateChangeLogID": 10, "nPivotActiveMonitorTypeToDeviceID": 90211,
                      "nMonitorStateID": 4, "dStartTime": "2025-01-14 09:03:00", "dEndTime": null,
                      "sResult": "Ping timed out"});
    http.set("ActiveMonitorStateChangeLog", json!([down.clone()]));
    let bridge = crate::whatsup::whatsup_bridge(&http);
    let src = source("wug", "whatsup", &bridge.url("WhatsUp"), Value::Null);
    let mut p = poller(&hub, src);
    let all = cycle_until(&mut p, &hub.store, "wug", |a| !a.is_empty()).await;
    assert_eq!(all.len(), 1);
    assert_eq!(
        (
            all[0].resource.as_str(),
            all[0].severity,
            all[0].state.as_str()
        ),
        ("srv-file-01", 2, "new")
    );

    let mut ended = down.clone();
    ended["dEndTime"] = json!("2025-01-14 09:20:00");
    let up = json!({"nActiveMonitorStateChangeLogID": 11, "nPivotActiveMonitorTypeToDeviceID": 90211,
                    "nMonitorStateID": 1, "dStartTime": "2025-01-14 09:20:00", "dEndTime": null,
                    "sResult": ""});
    http.set("ActiveMonitorStateChangeLog", json!([ended, up]));
    let all = cycle_until(&mut p, &hub.store, "wug", |a| {
        a.iter().all(|x| x.state == "cleared")
    })
    .await;
    assert_eq!(all.len(), 1, "{all:#?}");
}
