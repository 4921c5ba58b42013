//! The scheduler with a scripted source, against the real pipeline and store (each test on a fresh
//! database of the backend `VIGIE_TEST_DATABASE` selects).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;
use vigie_alerts::model::Alert;
use vigie_alerts::pipeline::{Pipeline, PipelineSettings};
use vigie_alerts::repo::{self, AlertFilter};
use vigie_alerts::rules::RuleSet;
use vigie_core::domain::Domains;
use vigie_core::store::Store;
use vigie_core::testing::TestDb;
use vigie_poll::{
    Answer, Batch, BoxFuture, EquipmentBatch, Health, HealthCell, Hub, Outcome, PollSettings,
    Poller, Question, Source, SourceError, State, UNREACHABLE_EVENT,
};
use vigie_source::{IngestFuture, Level, RawRecord, Submission};

/// What the scripted source does at each poll.
enum Step {
    Read(Batch),
    Fail(SourceError),
    Hang,
}

struct Script {
    steps: Mutex<VecDeque<Step>>,
    /// The position each poll was given.
    seen: Mutex<Vec<Option<String>>>,
}

impl Script {
    fn new(steps: Vec<Step>) -> Arc<Script> {
        Arc::new(Script {
            steps: Mutex::new(steps.into()),
            seen: Mutex::new(Vec::new()),
        })
    }

    fn seen(&self) -> Vec<Option<String>> {
        self.seen.lock().unwrap().clone()
    }
}

impl Source for Script {
    fn name(&self) -> &str {
        "scripted"
    }

    fn kind(&self) -> &str {
        "test"
    }

    fn poll<'a>(&'a self, position: Option<&'a str>) -> BoxFuture<'a, Result<Batch, SourceError>> {
        self.seen.lock().unwrap().push(position.map(str::to_owned));
        let step = self.steps.lock().unwrap().pop_front();
        Box::pin(async move {
            match step {
                Some(Step::Read(b)) => Ok(b),
                Some(Step::Fail(e)) => Err(e),
                Some(Step::Hang) => {
                    tokio::time::sleep(Duration::from_secs(3600)).await;
                    Ok(Batch::default())
                }
                None => Ok(Batch::default()),
            }
        })
    }

    fn ask<'a>(&'a self, _: &'a Question) -> BoxFuture<'a, Result<Answer, SourceError>> {
        Box::pin(async { Err(SourceError::Unsupported("test".into())) })
    }

    fn ping(&self) -> BoxFuture<'_, Result<(), SourceError>> {
        Box::pin(async { Ok(()) })
    }
}

/// The hub as the sources module implements it, over the real pipeline and store (equipment and
/// health lines are kept in memory here: those tables are the sources module's).
struct TestHub {
    pipeline: Pipeline,
    store: Store,
    healths: Mutex<Vec<Health>>,
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

    fn equipment<'a>(&'a self, _: &'a str, _: EquipmentBatch) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async { Ok(()) })
    }

    fn health(&self, health: Health) -> BoxFuture<'_, ()> {
        self.healths.lock().unwrap().push(health);
        Box::pin(async {})
    }
}

struct Fixture {
    _db: TestDb,
    store: Store,
    hub: Arc<TestHub>,
}

async fn fixture() -> Fixture {
    let db = TestDb::create().await.expect("test database");
    let store = db.store().await.expect("store");
    let rules = RuleSet::shipped(&Domains::default()).expect("rules");
    let (pipeline, writer) =
        Pipeline::new(store.clone(), PipelineSettings::default(), Arc::new(rules));
    tokio::spawn(writer.run());
    Fixture {
        hub: Arc::new(TestHub {
            pipeline,
            store: store.clone(),
            healths: Mutex::new(Vec::new()),
        }),
        store,
        _db: db,
    }
}

fn poller(f: &Fixture, script: &Arc<Script>, settings: PollSettings) -> Poller {
    Poller::new(
        script.clone(),
        settings,
        f.hub.clone(),
        HealthCell::new(Health::new("scripted", "test", 60)),
    )
}

fn record(resource: &str, event: &str, clear: bool) -> RawRecord {
    let mut r = RawRecord::new("scripted", resource, format!("{event} on {resource}"));
    r.level = Some(Level::Critical);
    r.domain = Some("systems".into());
    r.clear = clear;
    r.attributes.insert("event".into(), json!(event));
    r
}

fn read(records: Vec<RawRecord>, position: &str) -> Step {
    Step::Read(Batch {
        rows_read: records.len() as u64,
        records,
        position: Some(position.into()),
        ..Batch::default()
    })
}

async fn alerts(store: &Store) -> Vec<Alert> {
    let mut all = repo::list(
        store,
        &AlertFilter {
            limit: 100,
            ..AlertFilter::default()
        },
    )
    .await
    .expect("list");
    all.sort_by_key(|a| a.id);
    all
}

fn settings() -> PollSettings {
    let mut s = PollSettings::new(Duration::from_secs(60));
    s.unreachable_after = Duration::from_secs(3600);
    s
}

#[tokio::test]
async fn records_and_their_watermark_are_committed_together() {
    let f = fixture().await;
    let script = Script::new(vec![
        read(
            vec![record("srv1", "disk", false), record("srv2", "cpu", false)],
            "p1",
        ),
        read(vec![], "p1"),
        read(vec![record("srv1", "disk", true)], "p2"),
    ]);
    let mut p = poller(&f, &script, settings());
    let outcome = p.cycle().await;
    assert_eq!(
        outcome,
        Outcome::Committed {
            rows: 2,
            records: 2,
            effective: 2,
            more: false
        }
    );
    assert_eq!(
        repo::checkpoint(&f.store, "scripted")
            .await
            .unwrap()
            .as_deref(),
        Some("p1")
    );
    assert!(p.cycle().await.is_success());
    assert!(p.cycle().await.is_success());
    // Each poll started where the previous commit left it.
    assert_eq!(script.seen(), [None, Some("p1".into()), Some("p1".into())]);
    assert_eq!(
        repo::checkpoint(&f.store, "scripted")
            .await
            .unwrap()
            .as_deref(),
        Some("p2")
    );
    let all = alerts(&f.store).await;
    assert_eq!(all.len(), 2);
    assert_eq!(all[0].state, "cleared", "the source's clear closed it");
    assert_eq!(all[1].state, "new");
    let health = p.health().get();
    assert_eq!(health.state, State::Ok);
    assert_eq!(health.rows_read, 3);
    assert_eq!(health.records, 3);
    assert!(health.last_success.is_some());
    assert_eq!(health.position.as_deref(), Some("p2"));
}

#[tokio::test]
async fn the_unreachable_alert_is_raised_after_the_delay_and_cleared_when_the_source_is_back() {
    let f = fixture().await;
    let down = || {
        Step::Fail(SourceError::Unreachable(
            "Connection refused (os error 111)".into(),
        ))
    };
    let script = Script::new(vec![down(), down(), down(), read(vec![], "p1")]);
    let mut s = settings();
    s.unreachable_after = Duration::from_millis(300);
    s.domain = Some("network".into());
    let mut p = poller(&f, &script, s);
    assert!(matches!(
        p.cycle().await,
        Outcome::SourceFailed(SourceError::Unreachable(_))
    ));
    assert!(
        alerts(&f.store)
            .await
            .iter()
            .all(|a| a.resource != "scripted"),
        "no alert before the delay"
    );
    tokio::time::sleep(Duration::from_millis(350)).await;
    p.cycle().await;
    p.cycle().await;
    let all = alerts(&f.store).await;
    let alert = all
        .iter()
        .find(|a| a.resource == "scripted")
        .expect("alert raised");
    assert_eq!(alert.severity, 1, "warning");
    assert_eq!(alert.domain, "network");
    assert_eq!(alert.state, "new");
    assert_eq!(alert.count, 0, "raised once, not at every failure");
    assert_eq!(alert.attributes.0["event"], json!(UNREACHABLE_EVENT));
    assert!(
        alert.message.contains("Connection refused"),
        "{}",
        alert.message
    );
    let health = p.health().get();
    assert_eq!(health.state, State::Failing);
    assert_eq!(health.consecutive_failures, 3);
    assert!(health.alert_raised);
    assert_eq!(health.last_error_class.as_deref(), Some("unreachable"));

    assert!(p.cycle().await.is_success());
    let all = alerts(&f.store).await;
    let alert = all
        .iter()
        .find(|a| a.resource == "scripted")
        .expect("alert");
    assert_eq!(alert.state, "cleared");
    let health = p.health().get();
    assert_eq!(health.state, State::Ok);
    assert!(!health.alert_raised);
    assert_eq!(health.consecutive_failures, 0);
    // The error stays on the line for the record.
    assert!(health.last_error.is_some());
}

#[tokio::test]
async fn a_poll_stopped_at_a_bad_row_commits_the_rows_before_it() {
    let f = fixture().await;
    let script = Script::new(vec![
        Step::Read(Batch {
            records: vec![record("srv1", "disk", false)],
            position: Some("before-bad-row".into()),
            rows_read: 2,
            stopped: Some(SourceError::Data(
                "t row id=2: column `host` is NULL".into(),
            )),
            ..Batch::default()
        }),
        read(vec![], "before-bad-row"),
    ]);
    let mut p = poller(&f, &script, settings());
    let outcome = p.cycle().await;
    assert!(matches!(
        outcome,
        Outcome::SourceFailed(SourceError::Data(_))
    ));
    assert_eq!(alerts(&f.store).await.len(), 1);
    assert_eq!(
        repo::checkpoint(&f.store, "scripted")
            .await
            .unwrap()
            .as_deref(),
        Some("before-bad-row")
    );
    let health = p.health().get();
    assert_eq!(health.state, State::Failing);
    assert!(
        health
            .last_error
            .as_deref()
            .unwrap_or_default()
            .contains("row id=2")
    );
    p.cycle().await;
    assert_eq!(script.seen()[1].as_deref(), Some("before-bad-row"));
}

#[tokio::test]
async fn a_refused_submission_keeps_the_watermark() {
    let f = fixture().await;
    let mut bad = record("srv1", "disk", false);
    bad.domain = Some("outer-space".into());
    let script = Script::new(vec![
        read(vec![bad], "p1"),
        read(vec![record("srv1", "disk", false)], "p1"),
    ]);
    let mut p = poller(&f, &script, settings());
    let outcome = p.cycle().await;
    let Outcome::HubFailed(message) = outcome else {
        panic!("the pipeline refuses the record");
    };
    assert!(message.contains("outer-space"), "{message}");
    assert_eq!(repo::checkpoint(&f.store, "scripted").await.unwrap(), None);
    assert!(alerts(&f.store).await.is_empty());
    assert_eq!(p.health().get().last_error_class.as_deref(), Some("hub"));
    // Read again from the committed position (none).
    assert!(p.cycle().await.is_success());
    assert_eq!(script.seen(), [None, None]);
}

#[tokio::test]
async fn a_poll_that_hangs_times_out() {
    let f = fixture().await;
    let script = Script::new(vec![Step::Hang]);
    let mut s = settings();
    s.timeout = Duration::from_millis(200);
    let mut p = poller(&f, &script, s);
    let started = std::time::Instant::now();
    let outcome = p.cycle().await;
    assert!(matches!(
        outcome,
        Outcome::SourceFailed(SourceError::Timeout(_))
    ));
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(
        p.health().get().last_error_class.as_deref(),
        Some("timeout")
    );
}

#[tokio::test]
async fn a_backlog_is_read_back_to_back_and_stop_is_prompt() {
    let f = fixture().await;
    let more = |n: &str| {
        Step::Read(Batch {
            records: vec![record(n, "e", false)],
            position: Some(n.into()),
            rows_read: 1,
            more: true,
            ..Batch::default()
        })
    };
    let script = Script::new(vec![more("a"), more("b"), more("c"), read(vec![], "c")]);
    // An hour between polls: only the backlog makes them follow each other.
    let p = poller(&f, &script, PollSettings::new(Duration::from_secs(3600)));
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(p.run(stopped));
    let mut waited = 0;
    while script.seen().len() < 4 && waited < 100 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        waited += 1;
    }
    assert_eq!(script.seen().len(), 4, "four polls back to back");
    assert_eq!(alerts(&f.store).await.len(), 3);
    stop.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(2), task)
        .await
        .expect("the poller stops at once")
        .unwrap();
    assert!(
        !f.hub.healths.lock().unwrap().is_empty(),
        "health lines handed to the hub"
    );
}

#[tokio::test]
async fn failures_back_off() {
    let f = fixture().await;
    let steps = (0..100)
        .map(|_| Step::Fail(SourceError::Unreachable("down".into())))
        .collect();
    let script = Script::new(steps);
    let mut s = PollSettings::new(Duration::from_millis(100));
    s.max_backoff = Duration::from_millis(800);
    s.unreachable_after = Duration::from_secs(3600);
    let p = poller(&f, &script, s);
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(p.run(stopped));
    tokio::time::sleep(Duration::from_millis(2000)).await;
    stop.send(true).unwrap();
    task.await.unwrap();
    let polls = script.seen().len();
    // Without back-off: 20 polls in 2 s. With it: 50-100 ms, 100-200, 200-400, then 400-800 each.
    assert!((3..=10).contains(&polls), "{polls} polls");
}
