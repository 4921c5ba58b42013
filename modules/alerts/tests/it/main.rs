//! The ingestion pipeline against a real store: each test on its own fresh database, on the
//! backend the test command selected (`VIGIE_TEST_DATABASE`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use serde_json::json;
use vigie_alerts::model::Change;
use vigie_alerts::pipeline::{Pipeline, PipelineSettings};
use vigie_alerts::repo::{self, AlertFilter};
use vigie_alerts::rules::RuleSet;
use vigie_core::Level;
use vigie_core::domain::Domains;
use vigie_core::store::Store;
use vigie_core::testing::TestDb;
use vigie_source::{Checkpoint, Effect, IngestError, RawRecord, Submission};

struct Hub {
    _db: TestDb,
    store: Store,
    pipeline: Pipeline,
}

async fn hub() -> Hub {
    let db = TestDb::create().await.expect("test database");
    let store = db.store().await.expect("store");
    let pipeline = start(&store);
    Hub {
        _db: db,
        store,
        pipeline,
    }
}

/// A pipeline with the shipped rules and its writer running.
fn start(store: &Store) -> Pipeline {
    let rules = RuleSet::shipped(&Domains::default()).expect("shipped rules");
    let (pipeline, writer) =
        Pipeline::new(store.clone(), PipelineSettings::default(), Arc::new(rules));
    tokio::spawn(writer.run());
    pipeline
}

fn rec(resource: &str, message: &str, level: Option<Level>) -> RawRecord {
    let mut r = RawRecord::new("tool", resource, message);
    r.level = level;
    r
}

async fn submit(p: &Pipeline, records: Vec<RawRecord>) -> Vec<(Option<i64>, Effect)> {
    p.submit(Submission {
        records,
        checkpoint: None,
    })
    .await
    .expect("submission stored")
    .into_iter()
    .map(|o| (o.alert_id, o.effect))
    .collect()
}

async fn all(store: &Store) -> Vec<vigie_alerts::model::Alert> {
    repo::list(
        store,
        &AlertFilter {
            limit: 1000,
            ..AlertFilter::default()
        },
    )
    .await
    .expect("list")
}

#[tokio::test]
async fn syslog_scale_is_qualified_by_the_reference_mapping() {
    let h = hub().await;
    let mut records = Vec::new();
    for sev in 0..8 {
        let mut r = RawRecord::new("syslog", format!("rtr{sev}"), "link down");
        r.source_severity = Some(sev);
        records.push(r);
    }
    let outcomes = submit(&h.pipeline, records).await;
    let effects: Vec<Effect> = outcomes.iter().map(|o| o.1).collect();
    assert_eq!(&effects[..5], [Effect::Created; 5]);
    assert_eq!(&effects[5..], [Effect::Dropped; 3]);
    let mut alerts = all(&h.store).await;
    alerts.sort_by(|a, b| a.resource.cmp(&b.resource));
    let levels: Vec<i32> = alerts.iter().map(|a| a.severity).collect();
    assert_eq!(levels, [2, 2, 1, 0, 0]);
    assert!(alerts.iter().all(|a| a.domain == "network"));
    assert_eq!(alerts[0].message, "rtr0 link down");
    assert_eq!(alerts[2].source_severity, Some(2));
}

#[tokio::test]
async fn a_level_given_by_the_source_is_kept() {
    let h = hub().await;
    let mut r = rec("db1", "tablespace full", Some(Level::Low));
    r.source_severity = Some(0);
    r.domain = Some("applications".into());
    submit(&h.pipeline, vec![r]).await;
    let a = &all(&h.store).await[0];
    assert_eq!((a.severity, a.domain.as_str()), (0, "applications"));
    assert_eq!(a.message, "tablespace full");
}

#[tokio::test]
async fn duplicates_increment_count_and_last_seen() {
    let h = hub().await;
    let first = submit(
        &h.pipeline,
        vec![rec("srv1", "disk 91% full", Some(Level::Warning))],
    )
    .await;
    let again = submit(
        &h.pipeline,
        vec![
            rec("srv1", "disk 92% full", Some(Level::Critical)),
            rec("srv1", "disk 93% full", Some(Level::Critical)),
        ],
    )
    .await;
    assert_eq!(first[0].1, Effect::Created);
    assert_eq!(again, [(first[0].0, Effect::Deduplicated); 2]);
    let alerts = all(&h.store).await;
    assert_eq!(alerts.len(), 1);
    let a = &alerts[0];
    assert_eq!(a.count, 2);
    assert_eq!(a.severity, 2, "the latest level wins");
    assert_eq!(a.message, "disk 93% full");
    assert!(a.last_seen >= a.occurred_at);
    // Another resource is another alert.
    submit(
        &h.pipeline,
        vec![rec("srv2", "disk 91% full", Some(Level::Warning))],
    )
    .await;
    assert_eq!(all(&h.store).await.len(), 2);
}

#[tokio::test]
async fn the_same_source_ref_is_stored_once() {
    let h = hub().await;
    let mut r = rec("srv1", "ticket 42 opened", Some(Level::Warning));
    r.source_ref = Some("42".into());
    let first = submit(&h.pipeline, vec![r.clone(), r.clone()]).await;
    let second = submit(&h.pipeline, vec![r.clone()]).await;
    assert_eq!(first[0].1, Effect::Created);
    assert_eq!(first[1], (first[0].0, Effect::Replayed));
    assert_eq!(second[0], (first[0].0, Effect::Replayed));
    let alerts = all(&h.store).await;
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0].count, 0, "replays count nothing");
    assert_eq!(alerts[0].source_ref.as_deref(), Some("42"));

    // A record absorbed as a duplicate is recognised too when it comes again.
    let mut dup = rec("srv1", "ticket 43 opened", Some(Level::Warning));
    dup.source_ref = Some("43".into());
    assert_eq!(
        submit(&h.pipeline, vec![dup.clone()]).await[0].1,
        Effect::Deduplicated
    );
    assert_eq!(submit(&h.pipeline, vec![dup]).await[0].1, Effect::Replayed);
    assert_eq!(all(&h.store).await[0].count, 1);
}

#[tokio::test]
async fn a_replayed_record_with_new_content_updates_its_alert() {
    let h = hub().await;
    let mut r = rec("glpi", "Printer jammed", Some(Level::Low));
    r.source_ref = Some("ticket-7".into());
    submit(&h.pipeline, vec![r.clone()]).await;
    r.level = Some(Level::Critical);
    r.attributes.insert("priority".into(), json!(6));
    let mut events = h.pipeline.subscribe();
    let out = submit(&h.pipeline, vec![r]).await;
    assert_eq!(out[0].1, Effect::Replayed);
    let a = &all(&h.store).await[0];
    assert_eq!((a.severity, a.count), (2, 0));
    assert_eq!(a.attributes.0["priority"], json!(6));
    let event = events.recv().await.expect("update published");
    assert_eq!((event.alert_id, event.change), (a.id, Change::Updated));
}

#[tokio::test]
async fn clears_close_the_alert_and_a_new_raise_reopens_it() {
    let h = hub().await;
    let mut raise = rec("srv1", "service httpd down", Some(Level::Critical));
    raise.source_ref = Some("ev-1".into());
    let id = submit(&h.pipeline, vec![raise.clone()]).await[0].0;

    let mut clear = raise.clone();
    clear.clear = true;
    assert_eq!(
        submit(&h.pipeline, vec![clear.clone()]).await[0],
        (id, Effect::Cleared)
    );
    let a = repo::get(&h.store, id.unwrap()).await.unwrap().unwrap();
    assert_eq!(a.state, "cleared");
    assert!(a.cleared_at.is_some());
    // Delivered again, the clear changes nothing.
    assert_eq!(
        submit(&h.pipeline, vec![clear]).await[0].1,
        Effect::Replayed
    );

    let mut again = rec("srv1", "service httpd down", Some(Level::Critical));
    again.source_ref = Some("ev-2".into());
    assert_eq!(
        submit(&h.pipeline, vec![again]).await[0],
        (id, Effect::Reopened)
    );
    let a = repo::get(&h.store, id.unwrap()).await.unwrap().unwrap();
    assert_eq!((a.state.as_str(), a.reopen_count, a.count), ("new", 1, 1));
    assert!(a.cleared_at.is_none() && a.reopened_at.is_some());
}

#[tokio::test]
async fn clears_by_event_and_by_resource() {
    let h = hub().await;
    let mut down = rec("sw1", "port 3 down", Some(Level::Warning));
    down.attributes.insert("event".into(), json!("port3"));
    let other = rec("sw1", "fan failure", Some(Level::Warning));
    let elsewhere = rec("sw2", "fan failure", Some(Level::Warning));
    submit(&h.pipeline, vec![down, other, elsewhere]).await;

    // A clear naming its event clears that alert only, whatever its message says.
    let mut up = rec("sw1", "port 3 up", None);
    up.attributes.insert("event".into(), json!("port3"));
    up.clear = true;
    assert_eq!(submit(&h.pipeline, vec![up]).await[0].1, Effect::Cleared);
    let live = |alerts: &[vigie_alerts::model::Alert]| {
        alerts.iter().filter(|a| a.state != "cleared").count()
    };
    assert_eq!(live(&all(&h.store).await), 2);

    // A clear without event clears the whole resource of that source.
    let mut all_clear = rec("sw1", "all good", None);
    all_clear.clear = true;
    assert_eq!(
        submit(&h.pipeline, vec![all_clear.clone()]).await[0].1,
        Effect::Cleared
    );
    let alerts = all(&h.store).await;
    assert_eq!(live(&alerts), 1);
    assert!(
        alerts
            .iter()
            .any(|a| a.resource == "sw2" && a.state == "new")
    );
    assert_eq!(
        submit(&h.pipeline, vec![all_clear]).await[0],
        (None, Effect::NothingToClear)
    );
}

#[tokio::test]
async fn order_inside_one_submission_is_respected() {
    let h = hub().await;
    let raise = rec("srv9", "load high", Some(Level::Warning));
    let mut clear = rec("srv9", "load normal", None);
    clear.clear = true;
    let out = submit(
        &h.pipeline,
        vec![raise.clone(), raise.clone(), clear.clone(), raise],
    )
    .await;
    let effects: Vec<Effect> = out.iter().map(|o| o.1).collect();
    assert_eq!(
        effects,
        [
            Effect::Created,
            Effect::Deduplicated,
            Effect::Cleared,
            Effect::Reopened
        ]
    );
    let a = &all(&h.store).await[0];
    assert_eq!((a.state.as_str(), a.count, a.reopen_count), ("new", 2, 1));
    let out = submit(&h.pipeline, vec![clear]).await;
    assert_eq!(out[0].1, Effect::Cleared);
}

#[tokio::test]
async fn a_bad_record_rejects_the_whole_submission_and_its_checkpoint() {
    let h = hub().await;
    let mut bad = rec("srv1", "x", None);
    bad.domain = Some("nowhere".into());
    let result = h
        .pipeline
        .submit(Submission {
            records: vec![rec("srv1", "fine", None), bad],
            checkpoint: Some(Checkpoint {
                source: "tool".into(),
                position: "10".into(),
            }),
        })
        .await;
    match result {
        Err(IngestError::Invalid(problems)) => {
            assert_eq!((problems[0].index, problems[0].field), (1, "domain"));
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert!(all(&h.store).await.is_empty());
    assert_eq!(repo::checkpoint(&h.store, "tool").await.unwrap(), None);
}

#[tokio::test]
async fn a_checkpoint_is_committed_with_its_records() {
    let h = hub().await;
    for position in ["5", "9"] {
        h.pipeline
            .submit(Submission {
                records: vec![rec("srv1", &format!("row {position}"), None)],
                checkpoint: Some(Checkpoint {
                    source: "tool".into(),
                    position: position.into(),
                }),
            })
            .await
            .unwrap();
    }
    assert_eq!(
        repo::checkpoint(&h.store, "tool").await.unwrap().as_deref(),
        Some("9")
    );
    assert_eq!(all(&h.store).await[0].count, 1);
}

#[tokio::test]
async fn two_hubs_on_one_store_never_split_an_alert() {
    let h = hub().await;
    let other = start(&h.store);
    let mut tasks = Vec::new();
    for n in 0..16 {
        let p = if n % 2 == 0 {
            h.pipeline.clone()
        } else {
            other.clone()
        };
        tasks.push(tokio::spawn(async move {
            let records = (0..25)
                .map(|i| rec("core1", &format!("errors {i}"), None))
                .collect();
            p.submit(Submission {
                records,
                checkpoint: None,
            })
            .await
            .map(|o| o.len())
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap().unwrap(), 25);
    }
    let alerts = all(&h.store).await;
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0].count, 16 * 25 - 1);
}

#[tokio::test]
async fn an_unavailable_store_refuses_and_keeps_nothing() {
    let h = hub().await;
    submit(&h.pipeline, vec![rec("srv1", "before", None)]).await;
    // A second handle on the same database whose pool is closed: the store is gone for it.
    let db_url = h._db.url.clone();
    let gone = Store::connect(&vigie_core::store::StoreOptions::new(db_url))
        .await
        .unwrap();
    let pipeline = start(&gone);
    gone.close().await;
    let result = pipeline
        .submit(Submission {
            records: vec![rec("srv2", "during", None)],
            checkpoint: None,
        })
        .await;
    assert!(
        matches!(result, Err(IngestError::Unavailable(_))),
        "{result:?}"
    );
    let alerts = all(&h.store).await;
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0].resource, "srv1");
}

#[tokio::test]
async fn changes_are_published_after_commit() {
    let h = hub().await;
    let mut events = h.pipeline.subscribe();
    let id = submit(&h.pipeline, vec![rec("srv1", "boom", None)]).await[0]
        .0
        .unwrap();
    let event = events.recv().await.unwrap();
    assert_eq!((event.alert_id, event.change), (id, Change::Created));
    // Published only once committed: the alert is readable when the event arrives.
    assert!(repo::get(&h.store, id).await.unwrap().is_some());
}

#[tokio::test]
async fn a_bad_rules_file_leaves_the_rules_in_force() {
    let h = hub().await;
    let path = h._db.dir.join("rules.toml");
    std::fs::write(&path, "[[rules]]\nname = \"x\"\nwhen = { hots = \"a\" }\n").unwrap();
    let before = h.pipeline.rules().len();
    let problems = h.pipeline.reload_rules(Some(&path)).unwrap_err();
    assert!(problems[0].path.contains("hots"), "{problems:?}");
    assert_eq!(h.pipeline.rules().len(), before);

    std::fs::write(
        &path,
        "[[rules]]\nname = \"all-critical\"\nset = { severity = 2 }\n",
    )
    .unwrap();
    assert_eq!(h.pipeline.reload_rules(Some(&path)).unwrap(), 1);
    submit(&h.pipeline, vec![rec("srv1", "anything", None)]).await;
    assert_eq!(all(&h.store).await[0].severity, 2);
}

#[tokio::test]
async fn lists_filter_and_page_by_keyset() {
    let h = hub().await;
    let mut records = Vec::new();
    for i in 0..30 {
        let mut r = rec(
            &format!("host{i:02}"),
            "probe failed",
            Some(Level::from_number(i % 3).unwrap()),
        );
        r.domain = Some(if i % 2 == 0 { "network" } else { "systems" }.into());
        records.push(r);
    }
    submit(&h.pipeline, records).await;
    let page = |after_id: Option<i64>| AlertFilter {
        severities: vec![2],
        after_id,
        limit: 4,
        ..AlertFilter::default()
    };
    let first = repo::list(&h.store, &page(None)).await.unwrap();
    let second = repo::list(&h.store, &page(first.last().map(|a| a.id)))
        .await
        .unwrap();
    let third = repo::list(&h.store, &page(second.last().map(|a| a.id)))
        .await
        .unwrap();
    assert_eq!((first.len(), second.len(), third.len()), (4, 4, 2));
    let mut ids: Vec<i64> = first
        .iter()
        .chain(&second)
        .chain(&third)
        .map(|a| a.id)
        .collect();
    assert!(
        first
            .iter()
            .chain(&second)
            .chain(&third)
            .all(|a| a.severity == 2)
    );
    ids.dedup();
    assert_eq!(ids.len(), 10, "no alert twice across pages");

    let text = AlertFilter {
        text: Some("HOST0".into()),
        domains: vec!["network".into()],
        limit: 100,
        ..AlertFilter::default()
    };
    let found = repo::list(&h.store, &text).await.unwrap();
    assert_eq!(found.len(), 5, "host00..host08, even ones");
    let wildcard = AlertFilter {
        text: Some("%".into()),
        limit: 100,
        ..AlertFilter::default()
    };
    assert!(repo::list(&h.store, &wildcard).await.unwrap().is_empty());
}

fn actor() -> vigie_core::audit::Actor {
    vigie_core::audit::Actor {
        user_id: 0,
        login: "op".into(),
        role: vigie_core::role::Role::Operator,
    }
}

async fn state_of(store: &Store, id: i64) -> Option<String> {
    repo::get(store, id).await.expect("read").map(|a| a.state)
}

#[tokio::test]
async fn deferred_alerts_come_back_to_their_state_and_a_clear_overrides_a_deferral() {
    use vigie_alerts::actions::{self, Action};
    let h = hub().await;
    let ids = submit(
        &h.pipeline,
        vec![rec("a", "one", None), rec("b", "two", None)],
    )
    .await;
    let (a, b) = (ids[0].0.expect("a"), ids[1].0.expect("b"));
    let who = actor();
    let done = actions::apply(&h.store, &who, None, &[a], &Action::Acknowledge, None)
        .await
        .expect("ack");
    assert_eq!(done[0].refused, None);
    let soon = vigie_core::time::now() + chrono::Duration::milliseconds(300);
    for id in [a, b] {
        let done = actions::apply(&h.store, &who, None, &[id], &Action::Defer(soon), None)
            .await
            .expect("defer");
        assert_eq!(done[0].state.as_deref(), Some("deferred"));
    }
    assert!(
        actions::wake_deferred(&h.store)
            .await
            .expect("wake")
            .is_empty(),
        "not due yet"
    );
    // The source clears b while it is deferred: cleared wins, the deferral does not reopen it.
    let mut clear = rec("b", "two", None);
    clear.clear = true;
    submit(&h.pipeline, vec![clear]).await;
    tokio::time::sleep(std::time::Duration::from_millis(400)).await;
    let woken = actions::wake_deferred(&h.store).await.expect("wake");
    assert_eq!(woken, [a]);
    assert_eq!(
        state_of(&h.store, a).await.as_deref(),
        Some("acknowledged"),
        "back to where it was"
    );
    assert_eq!(state_of(&h.store, b).await.as_deref(), Some("cleared"));
    let history = actions::history(&h.store, a).await.expect("history");
    let steps: Vec<_> = history.iter().map(|l| l.action.as_str()).collect();
    assert_eq!(steps, ["ack", "defer"]);
}

#[tokio::test]
async fn retention_purges_old_archived_and_deleted_alerts_in_batches_and_keeps_the_rest() {
    use vigie_alerts::actions::{self, Action, Retention};
    let h = hub().await;
    let records: Vec<RawRecord> = (0..7).map(|i| rec(&format!("r{i}"), "m", None)).collect();
    let ids: Vec<i64> = submit(&h.pipeline, records)
        .await
        .into_iter()
        .filter_map(|(id, _)| id)
        .collect();
    let who = actor();
    actions::apply(&h.store, &who, None, &ids[..5], &Action::Archive, None)
        .await
        .expect("archive");
    actions::apply(&h.store, &who, None, &ids[5..6], &Action::Delete, None)
        .await
        .expect("delete");
    // Nothing is old enough yet.
    assert_eq!(
        actions::purge(&h.store, Retention::default())
            .await
            .expect("purge"),
        0
    );
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    let short = Retention {
        archived: std::time::Duration::from_millis(10),
        deleted: std::time::Duration::from_millis(10),
        batch: 2,
    };
    assert_eq!(actions::purge(&h.store, short).await.expect("purge"), 6);
    for id in &ids[..6] {
        assert_eq!(
            state_of(&h.store, *id).await,
            None,
            "purged with its history"
        );
        assert!(
            actions::history(&h.store, *id)
                .await
                .expect("history")
                .is_empty()
        );
    }
    assert_eq!(
        state_of(&h.store, ids[6]).await.as_deref(),
        Some("new"),
        "an open alert stays"
    );
}

#[tokio::test]
async fn an_alert_raised_and_cleared_too_often_is_marked_flapping_and_stays_one_alert() {
    let h = hub().await;
    let raise = || rec("if-gi0/1", "link down", Some(Level::Critical));
    let clear = || {
        let mut r = rec("if-gi0/1", "link down", Some(Level::Critical));
        r.clear = true;
        r
    };
    let first = submit(&h.pipeline, vec![raise()]).await[0]
        .0
        .expect("alert");
    for _ in 0..3 {
        submit(&h.pipeline, vec![clear()]).await;
        let again = submit(&h.pipeline, vec![raise()]).await;
        assert_eq!(again[0], (Some(first), Effect::Reopened));
    }
    let alert = repo::get(&h.store, first)
        .await
        .expect("read")
        .expect("alert");
    assert_eq!(alert.reopen_count, 3);
    assert_eq!(alert.flap_count, 3);
    assert!(
        alert.flapping,
        "three reopens within the hour (default threshold 3)"
    );
    // Once the window has passed without reopening, the mark goes.
    let settled =
        vigie_alerts::actions::settle_flapping(&h.store, std::time::Duration::from_millis(1))
            .await
            .expect("settle");
    assert_eq!(settled, [first]);
    let alert = repo::get(&h.store, first)
        .await
        .expect("read")
        .expect("alert");
    assert!(!alert.flapping);
}

#[tokio::test]
async fn a_sources_maintenance_snapshot_keeps_its_windows_in_step() {
    use vigie_alerts::maintenance::{self, SourceMaintenance};

    let h = hub().await;
    let mut r = rec("srv-mail-01", "SMTP down", Some(Level::Critical));
    r.source = "wug".into();
    r.domain = Some("network".into());
    let ids = submit(&h.pipeline, vec![r]).await;
    let alert_id = ids[0].0.unwrap();
    let since = chrono::Utc::now() - chrono::Duration::minutes(10);
    let span = SourceMaintenance {
        resource: "srv-mail-01".into(),
        since,
        what: "SMTP".into(),
    };
    let open = |store: Store| async move {
        maintenance::list(&store)
            .await
            .unwrap()
            .into_iter()
            .filter(|w| w.active_at(chrono::Utc::now()))
            .collect::<Vec<_>>()
    };

    // In maintenance: one window for the device, owned by the source; its alert is marked.
    assert!(
        maintenance::sync_source(
            &h.store,
            "wug",
            Some("network"),
            std::slice::from_ref(&span)
        )
        .await
        .unwrap()
    );
    maintenance::refresh(&h.store, None).await.unwrap();
    let windows = open(h.store.clone()).await;
    assert_eq!(windows.len(), 1);
    assert_eq!(windows[0].resource_pattern.as_deref(), Some("srv-mail-01"));
    assert_eq!(windows[0].created_by.as_deref(), Some("source:wug"));
    assert!(
        repo::get(&h.store, alert_id)
            .await
            .unwrap()
            .unwrap()
            .in_maintenance
    );

    // Said again (twice, by two monitors): still one window, nothing new.
    let again = SourceMaintenance {
        what: "Ping".into(),
        ..span.clone()
    };
    assert!(
        !maintenance::sync_source(&h.store, "wug", Some("network"), &[span, again])
            .await
            .unwrap()
    );
    assert_eq!(maintenance::list(&h.store).await.unwrap().len(), 1);

    // No longer listed: the window ends now and the alert is back in the lists.
    assert!(
        maintenance::sync_source(&h.store, "wug", Some("network"), &[])
            .await
            .unwrap()
    );
    maintenance::refresh(&h.store, None).await.unwrap();
    assert!(open(h.store.clone()).await.is_empty());
    assert!(
        !repo::get(&h.store, alert_id)
            .await
            .unwrap()
            .unwrap()
            .in_maintenance
    );
}

/// A record as the rules read it, for [`vigie_source::Ingest::screen`]: what a source that
/// screens its records (syslog) answers for a record it has not built.
struct View<'a>(&'a RawRecord);

impl vigie_source::RuleView for View<'_> {
    fn source(&self) -> &str {
        &self.0.source
    }
    fn resource(&self) -> &str {
        &self.0.resource
    }
    fn message(&self) -> &str {
        &self.0.message
    }
    fn source_severity(&self) -> Option<i32> {
        self.0.source_severity
    }
    fn facility(&self) -> Option<u32> {
        match self.0.attributes.get("facility")? {
            serde_json::Value::Number(n) => n.as_u64().map(|n| n as u32).filter(|n| *n < 24),
            serde_json::Value::String(s) if s == "kern" => Some(0),
            _ => None,
        }
    }
    fn attribute(&self, key: &str, f: &mut dyn FnMut(&str) -> bool) -> Option<bool> {
        self.0.attributes.get(key)?.as_str().map(f)
    }
    fn domain(&self) -> Option<&str> {
        self.0.domain.as_deref()
    }
}

#[tokio::test]
async fn screening_drops_only_what_the_rules_would_drop() {
    use vigie_source::Ingest;

    let db = TestDb::create().await.expect("test database");
    let store = db.store().await.expect("store");
    let rules = RuleSet::from_toml_str(
        r#"
[[rules]]
name = "tag-core"
continue = true
tags = ["core"]
when = { resource = "core-*" }

[[rules]]
name = "drop-noise"
drop = true
when = { source_severity = [5, 7] }

[[rules]]
name = "drop-cron"
drop = true
when = { attributes = { app_name = "cron" } }

[[rules]]
name = "drop-network-kernel"
drop = true
when = { facility = "kern", domain = "network" }
"#,
        &Domains::default(),
    )
    .expect("rules");
    let mut settings = PipelineSettings::default();
    settings.sources.insert(
        "syslog".into(),
        vigie_alerts::pipeline::SourceDefaults {
            domain: Some("network".into()),
            fingerprint: None,
        },
    );
    let (pipeline, writer) = Pipeline::new(store.clone(), settings, Arc::new(rules));
    tokio::spawn(writer.run());

    let record = |source: &str, resource: &str, severity: i32, attributes: serde_json::Value| {
        let mut r = RawRecord::new(source, resource, format!("message from {resource}"));
        r.source_severity = Some(severity);
        r.attributes = attributes.as_object().cloned().unwrap_or_default();
        r
    };
    // (record, screened as dropped, effect once submitted)
    let cases = [
        // A rule that goes on matched first and might have changed the record: not screened,
        // although the rules then drop it.
        (
            record("syslog", "core-1", 6, json!({})),
            false,
            Effect::Dropped,
        ),
        (
            record("syslog", "edge-1", 6, json!({})),
            true,
            Effect::Dropped,
        ),
        (
            record("syslog", "edge-2", 3, json!({"app_name": "cron"})),
            true,
            Effect::Dropped,
        ),
        (
            record("syslog", "edge-3", 3, json!({"app_name": "sshd"})),
            false,
            Effect::Created,
        ),
        // The source's configured domain counts, as it does once submitted.
        (
            record(" syslog ", "edge-4", 3, json!({"facility": 0})),
            true,
            Effect::Dropped,
        ),
        (
            record("syslog", "edge-5", 3, json!({"facility": "kern"})),
            true,
            Effect::Dropped,
        ),
        (
            record("tool", "edge-6", 3, json!({"facility": 0})),
            false,
            Effect::Created,
        ),
    ];
    for (r, screened, effect) in cases {
        let resource = r.resource.clone();
        assert_eq!(pipeline.screen(&[&View(&r)]), [screened], "{resource}");
        let outcomes = submit(&pipeline, vec![r]).await;
        assert_eq!(outcomes[0].1, effect, "{resource}");
    }
    let kept: Vec<String> = all(&store).await.into_iter().map(|a| a.resource).collect();
    assert_eq!(kept.len(), 2, "{kept:?}");
}
