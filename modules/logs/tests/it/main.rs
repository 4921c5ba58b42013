//! The logs module against a real store (each test on its own fresh database, on the backend the
//! test command selected with `VIGIE_TEST_DATABASE`), a real pipeline and live listeners on
//! 127.0.0.1.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod api;
mod consumer;
mod storage;
mod viewer;

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use vigie_alerts::model::Alert;
use vigie_alerts::pipeline::{Pipeline, PipelineSettings};
use vigie_alerts::repo::{self as alerts_repo, AlertFilter};
use vigie_alerts::rules::RuleSet;
use vigie_core::domain::Domains;
use vigie_core::store::Store;
use vigie_core::testing::TestDb;
use vigie_syslog::{Origin, ParseOptions, SyslogMessage, Transport, parse};

pub struct Hub {
    pub _db: TestDb,
    pub store: Store,
    pub pipeline: Pipeline,
}

/// A fresh database with a pipeline on the shipped rules (writer running).
pub async fn hub() -> Hub {
    hub_with(RuleSet::shipped(&Domains::default()).expect("shipped rules")).await
}

pub async fn hub_with(rules: RuleSet) -> Hub {
    let db = TestDb::create().await.expect("test database");
    let store = db.store().await.expect("store");
    let (pipeline, writer) =
        Pipeline::new(store.clone(), PipelineSettings::default(), Arc::new(rules));
    tokio::spawn(writer.run());
    Hub {
        _db: db,
        store,
        pipeline,
    }
}

/// A parsed message as the receiver would queue it.
pub fn message(line: &str, received_at: DateTime<Utc>) -> SyslogMessage {
    parse(
        line.as_bytes(),
        false,
        Origin {
            sender: "192.0.2.7:40000".parse().unwrap(),
            transport: Transport::Udp,
            received_at,
        },
        &ParseOptions::default(),
    )
}

pub async fn alerts(store: &Store) -> Vec<Alert> {
    alerts_repo::list(
        store,
        &AlertFilter {
            limit: 1000,
            ..AlertFilter::default()
        },
    )
    .await
    .expect("alerts")
}

/// Polls `f` until it holds, failing after 20 s.
pub async fn eventually<F, Fut>(what: &str, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..400 {
        if f().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("never happened: {what}");
}
