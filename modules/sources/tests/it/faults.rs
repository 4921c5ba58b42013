//! Faults: the source database cut between polls, a poll lost before its commit, a watermark
//! lost, bad sources next to good ones.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use vigie_poll::{Outcome, SourceError, State, UNREACHABLE_EVENT};

use crate::support::{GLPI_SCHEMA, MyDb, Proxy, host_port, mysql_admin_url, ticket_insert};
use crate::{alert, alerts, def, hub, pipeline, poller};

fn tickets(range: std::ops::RangeInclusive<u32>, minute: u32) -> String {
    range
        .map(|id| {
            ticket_insert(
                id,
                &format!("ticket {id}"),
                1,
                4,
                4,
                4,
                &format!("2025-01-14 09:{minute:02}:{:02}", id % 60),
            )
        })
        .collect::<Vec<_>>()
        .join(";\n")
}

/// Every ticket has exactly one alert, raised once.
async fn one_alert_per_ticket(store: &vigie_core::store::Store, n: u32) {
    let all = alerts(store).await;
    let tickets: Vec<_> = all
        .iter()
        .filter(|a| {
            a.attributes.0["event"]
                .as_str()
                .is_some_and(|e| e.starts_with("glpi-ticket-"))
        })
        .collect();
    assert_eq!(tickets.len(), n as usize, "one alert per ticket");
    for a in tickets {
        assert_eq!(a.count, 0, "{} stored twice", a.resource);
    }
}

#[tokio::test]
async fn the_database_cut_between_polls_raises_the_alert_then_catches_up_without_loss() {
    let h = hub().await;
    let db = MyDb::create("glpi").await;
    db.exec(GLPI_SCHEMA).await;
    db.exec(&tickets(1..=3, 0)).await;
    let proxy = Proxy::start(host_port(&mysql_admin_url(), 3306)).await;
    let d = def("glpi-prod", "glpi", &proxy.url_for(&db.url));
    let mut p = poller(
        &h.store,
        &h.pipeline,
        &d,
        json!({"computers": false, "poll": {"unreachable_after_seconds": 0.05, "timeout_seconds": 5}}),
    );
    assert!(p.cycle().await.is_success());
    one_alert_per_ticket(&h.store, 3).await;

    // MariaDB goes away; GLPI (on the other side) keeps writing.
    proxy.cut();
    db.exec(&tickets(4..=6, 1)).await;
    let outcome = p.cycle().await;
    assert!(
        matches!(outcome, Outcome::SourceFailed(SourceError::Unreachable(_))),
        "{outcome:?}"
    );
    assert_eq!(alerts(&h.store).await.len(), 3, "no alert before the delay");
    tokio::time::sleep(Duration::from_millis(60)).await;
    assert!(!p.cycle().await.is_success());
    let down = alert(&h.store, UNREACHABLE_EVENT).await;
    assert_eq!(down.state, "new");
    assert_eq!(down.severity, 1);
    assert_eq!(down.resource, "glpi-prod");
    assert_eq!(
        down.domain, "helpdesk",
        "the domain of the source's records (source default)"
    );
    let health = p.health().get();
    assert_eq!(health.state, State::Failing);
    assert_eq!(health.last_error_class.as_deref(), Some("unreachable"));
    // Still down: no second alert, no duplicate.
    assert!(!p.cycle().await.is_success());
    assert_eq!(alert(&h.store, UNREACHABLE_EVENT).await.count, 0);

    // Back: everything written meanwhile arrives once, and the alert clears.
    proxy.restore();
    db.exec(&tickets(7..=7, 2)).await;
    let outcome = p.cycle().await;
    assert!(
        matches!(outcome, Outcome::Committed { records: 4, .. }),
        "{outcome:?}"
    );
    assert_eq!(alert(&h.store, UNREACHABLE_EVENT).await.state, "cleared");
    one_alert_per_ticket(&h.store, 7).await;
    assert!(p.cycle().await.is_success());
    one_alert_per_ticket(&h.store, 7).await;
    db.drop_db().await;
}

#[tokio::test]
async fn a_poll_lost_before_its_commit_is_read_again_by_the_next_hub() {
    let h = hub().await;
    let db = MyDb::create("glpi").await;
    db.exec(GLPI_SCHEMA).await;
    db.exec(&tickets(1..=20, 0)).await;
    let d = def("glpi-prod", "glpi", &db.url);

    // A hub whose writer never runs: the poll reads, submits, and is killed while it waits.
    let rules =
        vigie_alerts::rules::RuleSet::shipped(&vigie_core::domain::Domains::default()).unwrap();
    let (stuck, _writer_never_started) = vigie_alerts::pipeline::Pipeline::new(
        h.store.clone(),
        vigie_alerts::pipeline::PipelineSettings::default(),
        Arc::new(rules),
    );
    let mut first = poller(
        &h.store,
        &stuck,
        &d,
        json!({"computers": false, "batch": 8}),
    );
    let cut_short = tokio::time::timeout(Duration::from_millis(500), first.cycle()).await;
    assert!(
        cut_short.is_err(),
        "the poll was still waiting for its commit"
    );
    drop(first);
    drop(stuck);
    assert!(alerts(&h.store).await.is_empty());
    assert_eq!(
        vigie_alerts::repo::checkpoint(&h.store, "glpi-prod")
            .await
            .unwrap(),
        None
    );

    // The next hub (a second pipeline on the same store) starts from the committed watermark.
    let second = pipeline(&h.store);
    let mut again = poller(
        &h.store,
        &second,
        &d,
        json!({"computers": false, "batch": 8}),
    );
    for _ in 0..3 {
        assert!(again.cycle().await.is_success());
    }
    one_alert_per_ticket(&h.store, 20).await;

    // A third one, whose watermark was lost (restored from an old backup of the store): the rows
    // are read again and recognised, nothing is counted twice.
    sqlx_delete_checkpoint(&h.store).await;
    let third = pipeline(&h.store);
    let mut lost = poller(
        &h.store,
        &third,
        &d,
        json!({"computers": false, "batch": 50}),
    );
    let outcome = lost.cycle().await;
    assert!(
        matches!(
            outcome,
            Outcome::Committed {
                records: 20,
                effective: 0,
                ..
            }
        ),
        "{outcome:?}"
    );
    one_alert_per_ticket(&h.store, 20).await;
    db.drop_db().await;
}

async fn sqlx_delete_checkpoint(store: &vigie_core::store::Store) {
    vigie_core::on_pool!(store, pool => sqlx::query("DELETE FROM source_checkpoints WHERE source = 'glpi-prod'")
        .execute(pool)
        .await
        .map(drop))
    .unwrap();
}

#[tokio::test]
async fn bad_sources_do_not_stop_the_others() {
    let h = hub().await;
    let db = MyDb::create("glpi").await;
    db.exec(GLPI_SCHEMA).await;
    db.exec(&tickets(1..=2, 0)).await;
    let host = host_port(&mysql_admin_url(), 3306);
    let sources = vec![
        def("glpi-good", "glpi", &db.url),
        def(
            "glpi-badpass",
            "glpi",
            &format!("mysql://nobody:s3cr3t-pw@{host}/{}", db.name),
        ),
        def(
            "glpi-nodb",
            "glpi",
            &crate::support::with_database(&mysql_admin_url(), "vigie_test_missing_db"),
        ),
        def("glpi-down", "glpi", "mysql://root@127.0.0.1:9/glpi"),
        {
            let mut off = def("glpi-off", "glpi", &db.url);
            off.enabled = false;
            off
        },
        def("nagios", "nagios", &db.url),
    ];
    let running =
        vigie_sources::Sources::start(h.store.clone(), Arc::new(h.pipeline.clone()), sources).await;
    let mut ready = false;
    for _ in 0..80 {
        let lines = running.health();
        let polled = lines.iter().filter(|l| l.last_poll.is_some()).count();
        if polled >= 4 {
            ready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(ready, "{:#?}", running.health());
    let lines = running.health();
    let line = |name: &str| lines.iter().find(|l| l.source == name).unwrap().clone();
    assert_eq!(line("glpi-good").state, State::Ok);
    one_alert_per_ticket(&h.store, 2).await;
    let badpass = line("glpi-badpass");
    assert_eq!(badpass.state, State::Failing);
    assert_eq!(badpass.last_error_class.as_deref(), Some("login"));
    assert!(!badpass.last_error.as_deref().unwrap().contains("s3cr3t-pw"));
    assert!(
        line("glpi-nodb")
            .last_error
            .as_deref()
            .unwrap()
            .contains("Unknown database")
    );
    assert_eq!(
        line("glpi-down").last_error_class.as_deref(),
        Some("unreachable")
    );
    assert_eq!(line("glpi-off").state, State::Disabled);
    let nagios = line("nagios");
    assert_eq!(nagios.state, State::Misconfigured);
    assert!(
        nagios
            .last_error
            .as_deref()
            .unwrap()
            .contains("no connector for the kind `nagios`")
    );
    // The lines are in the store too (for the API of another process, and after a restart).
    let stored = vigie_sources::repo::list_health(&h.store).await.unwrap();
    assert_eq!(stored.len(), 6);
    running.stop(Duration::from_secs(2)).await;
    db.drop_db().await;
}
