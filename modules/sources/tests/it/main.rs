//! Sources end to end: rows inserted into real tool databases (MariaDB, PostgreSQL) become
//! qualified alerts in the hub's store (the backend `VIGIE_TEST_DATABASE` selects) through the
//! real pipeline; faults (the database cut, the hub killed mid-poll); backups over HTTP; the
//! supervision pages that ask a source now.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod backups;
/// The mssql connector's TDS test server (pysqlbridge), for the Orion node report.
#[allow(dead_code, unreachable_pub)]
#[path = "../../../../connectors/mssql/tests/it/bridge.rs"]
pub mod bridge;
mod crash;
mod defs;
mod faults;
mod flows;
mod node_report;
mod supervision;
#[path = "../../../../connectors/sql/tests/it/support.rs"]
pub mod support;

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use vigie_alerts::model::Alert;
use vigie_alerts::pipeline::{Pipeline, PipelineSettings};
use vigie_alerts::repo::{self, AlertFilter};
use vigie_alerts::rules::RuleSet;
use vigie_core::domain::Domains;
use vigie_core::store::Store;
use vigie_core::testing::TestDb;
use vigie_poll::{Health, HealthCell, Poller};
use vigie_sources::{SourceDef, StoreHub};

/// The hub's store and pipeline, on a fresh database.
pub struct Hub {
    pub db: TestDb,
    pub store: Store,
    pub pipeline: Pipeline,
}

pub async fn hub() -> Hub {
    let db = TestDb::create().await.expect("test database");
    let store = db.store().await.expect("store");
    let pipeline = pipeline(&store);
    Hub {
        db,
        store,
        pipeline,
    }
}

/// A pipeline with the shipped rules and its writer running.
pub fn pipeline(store: &Store) -> Pipeline {
    let rules = RuleSet::shipped(&Domains::default()).expect("rules");
    let (pipeline, writer) =
        Pipeline::new(store.clone(), PipelineSettings::default(), Arc::new(rules));
    tokio::spawn(writer.run());
    pipeline
}

pub fn def(name: &str, kind: &str, url: &str) -> SourceDef {
    SourceDef {
        name: name.into(),
        kind: kind.into(),
        url: url.into(),
        interval: Duration::from_secs(1),
        enabled: true,
        domain: None,
    }
}

/// A poller of a source on the hub, driven by the test one cycle at a time.
pub fn poller(store: &Store, pipeline: &Pipeline, def: &SourceDef, settings: Value) -> Poller {
    let (source, poll) = vigie_sources::sources::build(def, settings).expect("source builds");
    let store_hub = Arc::new(StoreHub::new(store.clone(), Arc::new(pipeline.clone())));
    Poller::new(
        source,
        poll,
        store_hub,
        HealthCell::new(Health::new(&def.name, &def.kind, def.interval.as_secs())),
    )
}

pub async fn alerts(store: &Store) -> Vec<Alert> {
    let mut all = repo::list(
        store,
        &AlertFilter {
            limit: 10_000,
            ..AlertFilter::default()
        },
    )
    .await
    .expect("list");
    all.sort_by_key(|a| a.id);
    all
}

/// The alert whose `attributes.event` is `event`.
pub async fn alert(store: &Store, event: &str) -> Alert {
    alerts(store)
        .await
        .into_iter()
        .find(|a| a.attributes.0.get("event").and_then(Value::as_str) == Some(event))
        .unwrap_or_else(|| panic!("no alert for {event}"))
}

/// How many alerts the store holds.
pub async fn count_alerts(store: &Store) -> i64 {
    vigie_core::on_pool!(store, pool => sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM alerts")
        .fetch_one(pool)
        .await)
    .expect("count")
}
