//! Routing and escalation against the store, with real planning rows, the real pipeline and the
//! real outbox: who is told, on which channels, when the chain moves on and when it stops.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use actix_web::{App, test, web};
use chrono::{DateTime, Timelike, Utc};
use vigie_alerts::actions::{self, Action};
use vigie_alerts::maintenance::{self, WindowForm};
use vigie_alerts::pipeline::{Pipeline, PipelineSettings};
use vigie_alerts::rules::RuleSet;
use vigie_core::Level;
use vigie_core::audit::Actor;
use vigie_core::domain::Domains;
use vigie_core::on_pool;
use vigie_core::role::Role;
use vigie_core::store::Store;
use vigie_core::testing::TestDb;
use vigie_oncall::ack::{self, AckOutcome, LinkState};
use vigie_oncall::escalation::{self, Engine, OncallSettings};
use vigie_oncall::prefs::{self, Prefs};
use vigie_oncall::routing::{self, RuleInput};
use vigie_source::{RawRecord, Submission};

struct Hub {
    _db: TestDb,
    store: Store,
    pipeline: Pipeline,
    /// On duty for `network`: ada at index 1 (mail and phone), bob at index 2 (mail only).
    ada: i64,
    bob: i64,
    /// The manager of `network`.
    carol: i64,
}

async fn user(
    store: &Store,
    login: &str,
    role: &str,
    email: Option<&str>,
    phone: Option<&str>,
) -> i64 {
    on_pool!(store, pool => sqlx::query_scalar::<_, i64>(
        "INSERT INTO users (login, role, email, phone, first_name, created_at)
         VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
    )
    .bind(login)
    .bind(role)
    .bind(email)
    .bind(phone)
    .bind(login)
    .bind(vigie_core::time::now())
    .fetch_one(pool)
    .await)
    .expect("user")
}

/// A planning period of the planning engineer's table: `user` on duty for `domain` at `index`
/// from an hour ago to a day from now.
async fn on_duty(store: &Store, domain: &str, user: i64, index: i32) {
    let now = vigie_core::time::now();
    on_pool!(store, pool => sqlx::query(
        "INSERT INTO oncall_periods (domain, user_id, starts_at, ends_at, idx, created_at)
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(domain)
    .bind(user)
    .bind(now - chrono::Duration::hours(1))
    .bind(now + chrono::Duration::days(1))
    .bind(index)
    .bind(now)
    .execute(pool)
    .await
    .map(drop))
    .expect("period");
}

async fn hub() -> Hub {
    let db = TestDb::create().await.expect("test database");
    let store = db.store().await.expect("store");
    let rules = RuleSet::shipped(&Domains::default()).expect("rules");
    let (pipeline, writer) =
        Pipeline::new(store.clone(), PipelineSettings::default(), Arc::new(rules));
    tokio::spawn(writer.run());
    let ada = user(
        &store,
        "ada",
        "oncall",
        Some("ada@example.org"),
        Some("+33600000001"),
    )
    .await;
    let bob = user(&store, "bob", "oncall", Some("bob@example.org"), None).await;
    let carol = user(&store, "carol", "manager", Some("carol@example.org"), None).await;
    let mut tx = store.begin().await.expect("tx");
    vigie_auth::contacts::set_domains(&mut tx, carol, &["network".to_owned()])
        .await
        .expect("domains");
    tx.commit().await.expect("commit");
    on_duty(&store, "network", ada, 1).await;
    on_duty(&store, "network", bob, 2).await;
    Hub {
        _db: db,
        store,
        pipeline,
        ada,
        bob,
        carol,
    }
}

fn settings() -> OncallSettings {
    OncallSettings {
        base_url: "https://vigie.example.org".into(),
        escalation_delay: Duration::from_secs(15 * 60),
        sweep_interval: Duration::from_millis(200),
        ..OncallSettings::default()
    }
}

async fn alert(h: &Hub, domain: &str, resource: &str, level: Level) -> i64 {
    alert_from(h, "zabbix", domain, resource, level).await
}

async fn alert_from(h: &Hub, source: &str, domain: &str, resource: &str, level: Level) -> i64 {
    let mut r = RawRecord::new(source, resource, format!("{resource} is down"));
    r.domain = Some(domain.to_owned());
    r.level = Some(level);
    let out = h
        .pipeline
        .submit(Submission {
            records: vec![r],
            checkpoint: None,
        })
        .await
        .expect("stored");
    out[0].alert_id.expect("an alert")
}

/// The outbox as (channel, recipient, kind, dedupe key, text), oldest first.
async fn outbox(store: &Store) -> Vec<(String, String, String, Option<String>, String)> {
    on_pool!(store, pool => sqlx::query_as(
        "SELECT channel, recipient, kind, dedupe_key, body_text FROM outbox ORDER BY id",
    )
    .fetch_all(pool)
    .await)
    .expect("outbox")
}

fn recipients(
    messages: &[(String, String, String, Option<String>, String)],
) -> Vec<(String, String)> {
    messages
        .iter()
        .map(|m| (m.0.clone(), m.1.clone()))
        .collect()
}

fn token_in(text: &str) -> String {
    let at = text.find("/ack/").expect("a link in the message") + 5;
    text[at..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect()
}

fn later(t: DateTime<Utc>, minutes: i64) -> DateTime<Utc> {
    t + chrono::Duration::minutes(minutes)
}

fn actor(id: i64, login: &str) -> Actor {
    Actor {
        user_id: id,
        login: login.into(),
        role: Role::Oncall,
    }
}

fn rule(domain: &str, min: i32) -> RuleInput {
    RuleInput {
        domain: domain.into(),
        min_severity: min,
        escalation_minutes: 15,
        enabled: true,
        ..RuleInput::default()
    }
}

#[tokio::test]
async fn a_critical_alert_goes_to_the_lowest_index_on_each_of_their_channels() {
    let h = hub().await;
    let engine = Engine::new(h.store.clone(), settings());
    let id = alert(&h, "network", "core-sw-1", Level::Critical).await;
    let t0 = vigie_core::time::now();
    assert!(engine.route(id, t0).await.unwrap());
    let sent = outbox(&h.store).await;
    assert_eq!(
        recipients(&sent),
        [
            ("mail".to_owned(), "ada@example.org".to_owned()),
            ("sms".to_owned(), "+33600000001".to_owned())
        ]
    );
    assert!(sent.iter().all(|m| m.2 == "alert.routed"));
    assert_eq!(
        sent[0].3.as_deref(),
        Some(format!("esc:{id}:1:1:{}:mail", h.ada).as_str())
    );
    assert!(
        sent[0].4.contains("https://vigie.example.org/ack/vack_"),
        "{}",
        sent[0].4
    );
    assert!(sent[0].4.contains("core-sw-1"));
    let esc = escalation::get(&h.store, id).await.unwrap().unwrap();
    assert_eq!(
        (esc.state.as_str(), esc.step, esc.last_index),
        ("active", 1, Some(1))
    );
    assert_eq!(esc.next_at, Some(later(t0, 15)));
    // Already escalating: routing it again tells nobody.
    assert!(!engine.route(id, t0).await.unwrap());
    assert_eq!(outbox(&h.store).await.len(), 2);
    // Another domain has nobody on duty and no manager: nothing is queued.
    let other = alert(&h, "systems", "db-1", Level::Critical).await;
    engine.route(other, t0).await.unwrap();
    assert_eq!(outbox(&h.store).await.len(), 2);
}

#[tokio::test]
async fn a_warning_is_below_the_default_level_until_a_rule_lowers_it() {
    let h = hub().await;
    let engine = Engine::new(h.store.clone(), settings());
    let t0 = vigie_core::time::now();
    let warning = alert(&h, "network", "edge-1", Level::Warning).await;
    assert!(!engine.route(warning, t0).await.unwrap());
    assert!(outbox(&h.store).await.is_empty());
    assert!(escalation::get(&h.store, warning).await.unwrap().is_none());
    routing::create(
        &h.store,
        &actor(h.carol, "carol"),
        None,
        &rule("network", 1),
    )
    .await
    .unwrap();
    let second = alert(&h, "network", "edge-2", Level::Warning).await;
    assert!(engine.route(second, t0).await.unwrap());
    assert_eq!(outbox(&h.store).await.len(), 2);
    // Low stays below the rule's level.
    let low = alert(&h, "network", "edge-3", Level::Low).await;
    assert!(!engine.route(low, t0).await.unwrap());
    assert_eq!(outbox(&h.store).await.len(), 2);
}

#[tokio::test]
async fn maintenance_and_narrowing_rules_keep_alerts_out() {
    let h = hub().await;
    let engine = Engine::new(h.store.clone(), settings());
    let t0 = vigie_core::time::now();
    maintenance::create(
        &h.store,
        &actor(h.carol, "carol"),
        None,
        &WindowForm {
            name: "switch upgrade".into(),
            domain: Some("network".into()),
            resource_pattern: Some("core-*".into()),
            starts_at: Some(t0 - chrono::Duration::hours(1)),
            ends_at: Some(t0 + chrono::Duration::hours(1)),
            recurrence: "none".into(),
        },
    )
    .await
    .unwrap();
    let covered = alert(&h, "network", "core-sw-2", Level::Critical).await;
    assert!(!engine.route(covered, t0).await.unwrap());
    assert!(outbox(&h.store).await.is_empty());

    // A rule for one source only.
    let admin = actor(h.carol, "carol");
    let zabbix_only = RuleInput {
        source: Some("zabbix".into()),
        resource_pattern: Some("edge-*".into()),
        ..rule("network", 2)
    };
    let rule_id = routing::create(&h.store, &admin, None, &zabbix_only)
        .await
        .unwrap();
    let other_source = alert_from(&h, "glpi", "network", "edge-9", Level::Critical).await;
    assert!(!engine.route(other_source, t0).await.unwrap());
    let other_resource = alert(&h, "network", "wan-1", Level::Critical).await;
    assert!(!engine.route(other_resource, t0).await.unwrap());
    assert!(outbox(&h.store).await.is_empty());
    let matching = alert(&h, "network", "EDGE-7", Level::Critical).await;
    assert!(engine.route(matching, t0).await.unwrap());
    assert_eq!(outbox(&h.store).await.len(), 2);

    // A time-of-day window that does not hold now (hub in UTC).
    let minute = i32::try_from(t0.hour() * 60 + t0.minute()).unwrap();
    let elsewhere = RuleInput {
        window_start: Some((minute + 120) % 1440),
        window_end: Some((minute + 180) % 1440),
        ..zabbix_only.clone()
    };
    routing::update(&h.store, &admin, None, rule_id, &elsewhere)
        .await
        .unwrap();
    let out_of_hours = alert(&h, "network", "edge-8", Level::Critical).await;
    assert!(!engine.route(out_of_hours, t0).await.unwrap());
    // Critical zone only: these alerts are not in one.
    let zone = RuleInput {
        critical_zone_only: true,
        ..zabbix_only.clone()
    };
    routing::update(&h.store, &admin, None, rule_id, &zone)
        .await
        .unwrap();
    assert!(!engine.route(out_of_hours, t0).await.unwrap());
    // The domain's only rule disabled: nothing is routed there (no default any more).
    routing::set_enabled(&h.store, &admin, None, rule_id, false)
        .await
        .unwrap();
    let disabled = alert(&h, "network", "edge-6", Level::Critical).await;
    assert!(!engine.route(disabled, t0).await.unwrap());
    assert_eq!(outbox(&h.store).await.len(), 2);
    let audit: i64 = on_pool!(&h.store, pool => sqlx::query_scalar(
        "SELECT COUNT(*) FROM audit_log WHERE action LIKE 'oncall.rule_%'",
    )
    .fetch_one(pool)
    .await)
    .unwrap();
    assert_eq!(audit, 4);
}

#[tokio::test]
async fn without_acknowledgement_the_next_index_then_the_managers_are_told() {
    let h = hub().await;
    let engine = Engine::new(h.store.clone(), settings());
    let id = alert(&h, "network", "core-sw-3", Level::Critical).await;
    let t0 = vigie_core::time::now();
    engine.route(id, t0).await.unwrap();
    assert_eq!(outbox(&h.store).await.len(), 2);
    // Not yet due.
    assert_eq!(engine.tick(later(t0, 14)).await.unwrap().steps, 0);
    assert_eq!(outbox(&h.store).await.len(), 2);
    // Index 2.
    assert_eq!(engine.tick(later(t0, 15)).await.unwrap().steps, 1);
    let sent = outbox(&h.store).await;
    assert_eq!(
        recipients(&sent[2..]),
        [("mail".to_owned(), "bob@example.org".to_owned())]
    );
    assert_eq!(sent[2].2, "alert.escalated");
    // Then the domain's managers.
    engine.tick(later(t0, 30)).await.unwrap();
    let sent = outbox(&h.store).await;
    assert_eq!(
        recipients(&sent[3..]),
        [("mail".to_owned(), "carol@example.org".to_owned())]
    );
    let esc = escalation::get(&h.store, id).await.unwrap().unwrap();
    assert!(esc.managers_told);
    // Then the chain is exhausted; nobody more is told.
    assert_eq!(engine.tick(later(t0, 45)).await.unwrap().ended, 1);
    engine.tick(later(t0, 90)).await.unwrap();
    assert_eq!(outbox(&h.store).await.len(), 4);
    let esc = escalation::get(&h.store, id).await.unwrap().unwrap();
    assert_eq!((esc.state.as_str(), esc.next_at), ("exhausted", None));
    let steps = escalation::steps(&h.store, id).await.unwrap();
    let targets: Vec<(&str, Option<i32>)> = steps
        .iter()
        .map(|s| (s.target.as_str(), s.duty_index))
        .collect();
    assert_eq!(
        targets,
        [("duty", Some(1)), ("duty", Some(2)), ("managers", None)]
    );
    let _ = h.bob;
}

#[tokio::test]
async fn an_acknowledgement_on_the_board_stops_the_chain() {
    let h = hub().await;
    let engine = Engine::new(h.store.clone(), settings());
    let id = alert(&h, "network", "core-sw-4", Level::Critical).await;
    let t0 = vigie_core::time::now();
    engine.route(id, t0).await.unwrap();
    let done = actions::apply(
        &h.store,
        &actor(h.ada, "ada"),
        None,
        &[id],
        &Action::Acknowledge,
        None,
    )
    .await
    .unwrap();
    assert_eq!(done[0].refused, None);
    assert_eq!(engine.tick(later(t0, 15)).await.unwrap().ended, 1);
    assert_eq!(outbox(&h.store).await.len(), 2);
    let esc = escalation::get(&h.store, id).await.unwrap().unwrap();
    assert_eq!(esc.state, "acknowledged");
    assert_eq!(esc.acknowledged_via.as_deref(), Some("board"));
    assert_eq!(esc.acknowledged_by, Some(h.ada));
    engine.tick(later(t0, 60)).await.unwrap();
    assert_eq!(outbox(&h.store).await.len(), 2);
}

#[tokio::test]
async fn the_link_acknowledges_once_and_stops_the_chain() {
    let h = hub().await;
    let engine = Engine::new(h.store.clone(), settings());
    let id = alert(&h, "network", "core-sw-5", Level::Critical).await;
    let t0 = vigie_core::time::now();
    engine.route(id, t0).await.unwrap();
    let sent = outbox(&h.store).await;
    let token = token_in(&sent[0].4);
    // The SMS carries the same link.
    assert_eq!(token_in(&sent[1].4), token);
    assert!(
        matches!(ack::peek(&h.store, &token, t0).await.unwrap(), LinkState::Valid(l) if l.user_id == h.ada)
    );
    // Past its lifetime it is refused.
    assert_eq!(
        ack::acknowledge(&h.store, &token, None, later(t0, 25 * 60))
            .await
            .unwrap(),
        AckOutcome::Expired
    );
    assert_eq!(
        ack::acknowledge(&h.store, "vack_forged", None, t0)
            .await
            .unwrap(),
        AckOutcome::Unknown
    );
    assert_eq!(
        ack::acknowledge(&h.store, &token, Some("192.0.2.1"), later(t0, 2))
            .await
            .unwrap(),
        AckOutcome::Acknowledged {
            alert_id: id,
            login: "ada".into()
        }
    );
    let a = vigie_alerts::repo::get(&h.store, id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (a.state.as_str(), a.acknowledged_by.as_deref()),
        ("acknowledged", Some("ada"))
    );
    let history = actions::history(&h.store, id).await.unwrap();
    assert_eq!(history.last().map(|l| l.action.as_str()), Some("ack"));
    // Used once.
    assert_eq!(
        ack::acknowledge(&h.store, &token, None, later(t0, 3))
            .await
            .unwrap(),
        AckOutcome::Used
    );
    let esc = escalation::get(&h.store, id).await.unwrap().unwrap();
    assert_eq!(
        (
            esc.state.as_str(),
            esc.acknowledged_via.as_deref(),
            esc.acknowledged_by
        ),
        ("acknowledged", Some("link"), Some(h.ada))
    );
    engine.tick(later(t0, 30)).await.unwrap();
    assert_eq!(outbox(&h.store).await.len(), 2);
}

#[tokio::test]
async fn the_link_pages_confirm_before_acknowledging() {
    let h = hub().await;
    let engine = Engine::new(h.store.clone(), settings());
    let id = alert(&h, "network", "core-sw-6", Level::Critical).await;
    engine.route(id, vigie_core::time::now()).await.unwrap();
    let token = token_in(&outbox(&h.store).await[0].4);
    let console = vigie_console::Console::start(Default::default(), &h.store)
        .await
        .unwrap();
    let app = test::init_service(
        App::new()
            .app_data(web::Data::new(h.store.clone()))
            .app_data(web::Data::new(console))
            .configure(ack::configure),
    )
    .await;
    let get = test::TestRequest::get()
        .uri(&format!("/ack/{token}"))
        .to_request();
    let res = test::call_service(&app, get).await;
    assert_eq!(res.status().as_u16(), 200);
    let body = String::from_utf8(test::read_body(res).await.to_vec()).unwrap();
    assert!(body.contains("data-outcome=\"confirm\""), "{body}");
    assert!(body.contains("core-sw-6"));
    // Showing the page acknowledged nothing.
    let a = vigie_alerts::repo::get(&h.store, id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(a.state, "new");
    let post = test::TestRequest::post()
        .uri(&format!("/ack/{token}"))
        .to_request();
    let res = test::call_service(&app, post).await;
    assert_eq!(res.status().as_u16(), 200);
    let body = String::from_utf8(test::read_body(res).await.to_vec()).unwrap();
    assert!(body.contains("data-outcome=\"acknowledged\""), "{body}");
    let again = test::TestRequest::post()
        .uri(&format!("/ack/{token}"))
        .to_request();
    assert_eq!(test::call_service(&app, again).await.status().as_u16(), 410);
    let forged = test::TestRequest::get()
        .uri("/ack/vack_nothing")
        .to_request();
    assert_eq!(
        test::call_service(&app, forged).await.status().as_u16(),
        404
    );
}

#[tokio::test]
async fn a_restarted_engine_does_not_queue_twice() {
    let h = hub().await;
    let first = Engine::new(h.store.clone(), settings());
    let id = alert(&h, "network", "core-sw-7", Level::Critical).await;
    let t0 = vigie_core::time::now();
    first.route(id, t0).await.unwrap();
    // A new engine over the same store (a restart, or a second hub process).
    let second = Engine::new(h.store.clone(), settings());
    assert!(!second.route(id, t0).await.unwrap());
    assert_eq!(second.catch_up(t0).await.unwrap(), 0);
    let at = later(t0, 15);
    let (a, b) = tokio::join!(first.tick(at), second.tick(at));
    assert_eq!(a.unwrap().steps + b.unwrap().steps, 1);
    first.tick(at).await.unwrap();
    second.tick(at).await.unwrap();
    let sent = outbox(&h.store).await;
    assert_eq!(
        recipients(&sent),
        [
            ("mail".to_owned(), "ada@example.org".to_owned()),
            ("sms".to_owned(), "+33600000001".to_owned()),
            ("mail".to_owned(), "bob@example.org".to_owned())
        ]
    );
}

#[tokio::test]
async fn quiet_hours_hold_a_warning_but_not_a_critical() {
    let h = hub().await;
    let engine = Engine::new(h.store.clone(), settings());
    routing::create(
        &h.store,
        &actor(h.carol, "carol"),
        None,
        &rule("network", 1),
    )
    .await
    .unwrap();
    let t0 = vigie_core::time::now();
    let minute = i32::try_from(t0.hour() * 60 + t0.minute()).unwrap();
    let quiet = Prefs {
        mail: true,
        sms: true,
        quiet_start: Some((minute + 1440 - 60) % 1440),
        quiet_end: Some((minute + 60) % 1440),
    };
    prefs::save(&h.store, &actor(h.ada, "ada"), None, h.ada, &quiet)
        .await
        .unwrap();
    assert_eq!(prefs::load(&h.store, h.ada).await.unwrap(), quiet);
    let warning = alert(&h, "network", "edge-10", Level::Warning).await;
    engine.route(warning, t0).await.unwrap();
    // Ada is in her quiet hours: nothing for her; nobody reached, the next index at once.
    assert!(outbox(&h.store).await.is_empty());
    engine.tick(t0).await.unwrap();
    assert_eq!(
        recipients(&outbox(&h.store).await),
        [("mail".to_owned(), "bob@example.org".to_owned())]
    );
    let critical = alert(&h, "network", "core-sw-8", Level::Critical).await;
    engine.route(critical, t0).await.unwrap();
    let sent = outbox(&h.store).await;
    assert_eq!(
        recipients(&sent[1..]),
        [
            ("mail".to_owned(), "ada@example.org".to_owned()),
            ("sms".to_owned(), "+33600000001".to_owned())
        ]
    );
    // Her channels: mail only.
    let mail_only = Prefs {
        sms: false,
        quiet_start: None,
        quiet_end: None,
        ..quiet
    };
    prefs::save(&h.store, &actor(h.ada, "ada"), None, h.ada, &mail_only)
        .await
        .unwrap();
    let third = alert(&h, "network", "core-sw-9", Level::Critical).await;
    engine.route(third, t0).await.unwrap();
    let sent = outbox(&h.store).await;
    assert_eq!(
        recipients(&sent[3..]),
        [("mail".to_owned(), "ada@example.org".to_owned())]
    );
}

#[tokio::test]
async fn the_engine_routes_as_alerts_arrive_and_stops_at_the_clear() {
    let h = hub().await;
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let task = escalation::spawn(h.store.clone(), &h.pipeline, settings(), stopped);
    let started = std::time::Instant::now();
    let id = alert(&h, "network", "core-sw-10", Level::Critical).await;
    let mut sent = Vec::new();
    for _ in 0..100 {
        sent = outbox(&h.store).await;
        if sent.len() >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(sent.len(), 2, "routed within {:?}", started.elapsed());
    // The source clears it: the chain is cancelled.
    let mut clear = RawRecord::new("zabbix", "core-sw-10", "core-sw-10 is down");
    clear.domain = Some("network".into());
    clear.level = Some(Level::Critical);
    clear.clear = true;
    h.pipeline
        .submit(Submission {
            records: vec![clear],
            checkpoint: None,
        })
        .await
        .unwrap();
    let mut state = String::new();
    for _ in 0..100 {
        state = escalation::get(&h.store, id).await.unwrap().unwrap().state;
        if state == "cancelled" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(state, "cancelled");
    stop.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .unwrap()
        .unwrap();
}

async fn clear(h: &Hub, resource: &str) {
    let mut r = RawRecord::new("zabbix", resource, format!("{resource} is down"));
    r.domain = Some("network".into());
    r.level = Some(Level::Critical);
    r.clear = true;
    h.pipeline
        .submit(Submission {
            records: vec![r],
            checkpoint: None,
        })
        .await
        .unwrap();
}

#[tokio::test]
async fn a_cleared_alert_that_comes_back_is_told_again_unless_it_flaps() {
    let h = hub().await;
    let engine = Engine::new(h.store.clone(), settings());
    let id = alert(&h, "network", "core-sw-11", Level::Critical).await;
    assert!(engine.route(id, vigie_core::time::now()).await.unwrap());
    let mut rounds = vec![1];
    for _ in 0..3 {
        clear(&h, "core-sw-11").await;
        assert!(engine.cancel(id, vigie_core::time::now()).await.unwrap());
        let again = alert(&h, "network", "core-sw-11", Level::Critical).await;
        assert_eq!(again, id, "the same alert reopens");
        engine.route(id, vigie_core::time::now()).await.unwrap();
        let esc = escalation::get(&h.store, id).await.unwrap().unwrap();
        rounds.push(esc.round);
        let flapping = vigie_alerts::repo::get(&h.store, id)
            .await
            .unwrap()
            .unwrap()
            .flapping;
        assert_eq!(esc.state == "active", !flapping, "round {}", esc.round);
    }
    // Told at the first raise and the first two reopens; the third reopen flaps: not again.
    assert_eq!(rounds, [1, 2, 3, 3]);
    let keys: Vec<String> = outbox(&h.store)
        .await
        .into_iter()
        .filter_map(|m| m.3)
        .filter(|k| k.ends_with(":mail"))
        .collect();
    assert_eq!(
        keys,
        [1, 2, 3].map(|r| format!("esc:{id}:{r}:1:{}:mail", h.ada))
    );
}

/// The routing side of the latency target (ingestion → queued message): 1000 critical alerts
/// in a burst through the running engine. Run with `-- --ignored --nocapture`; the figures are
/// printed (a debug build is several times slower than a release one).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "benchmark"]
async fn a_burst_of_a_thousand_critical_alerts_is_queued_quickly() {
    let h = hub().await;
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let task = escalation::spawn(h.store.clone(), &h.pipeline, settings(), stopped);
    let started = std::time::Instant::now();
    let mut submitters = Vec::new();
    for chunk in 0..10 {
        let p = h.pipeline.clone();
        submitters.push(tokio::spawn(async move {
            let records = (0..100)
                .map(|i| {
                    let mut r = RawRecord::new("zabbix", format!("host-{chunk}-{i}"), "down");
                    r.domain = Some("network".into());
                    r.level = Some(Level::Critical);
                    r
                })
                .collect();
            p.submit(Submission {
                records,
                checkpoint: None,
            })
            .await
            .unwrap();
        }));
    }
    for s in submitters {
        s.await.unwrap();
    }
    let ingested = started.elapsed();
    let mut queued = 0;
    while started.elapsed() < Duration::from_secs(60) {
        queued = outbox(&h.store).await.len();
        if queued >= 2000 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let all = started.elapsed();
    let pairs: Vec<(DateTime<Utc>, DateTime<Utc>)> = on_pool!(&h.store, pool => sqlx::query_as(
        "SELECT a.received_at, o.created_at FROM outbox o
         JOIN alerts a ON o.dedupe_key LIKE 'esc:' || a.id || ':%'",
    )
    .fetch_all(pool)
    .await)
    .unwrap();
    let mut ms: Vec<i64> = pairs
        .iter()
        .map(|(a, q)| (*q - *a).num_milliseconds())
        .collect();
    ms.sort_unstable();
    println!(
        "burst on {}: {queued} messages; ingested in {ingested:?}, all queued in {all:?}; \
         received → queued p50 {} ms, p99 {} ms",
        h.store.backend().name(),
        ms[ms.len() / 2],
        ms[ms.len() * 99 / 100]
    );
    assert_eq!(queued, 2000);
    stop.send(true).unwrap();
    task.await.unwrap();
}

/// A console session for an existing user.
async fn session(h: &Hub, user_id: i64, login: &str, role: Role) -> String {
    let actor = Actor {
        user_id,
        login: login.into(),
        role,
    };
    vigie_auth::session::open(
        &h.store,
        &actor,
        None,
        None,
        vigie_auth::session::SessionPolicy::default(),
        false,
    )
    .await
    .unwrap()
}

/// Calls the console with the routing pages; (status, location or body).
async fn page_call(h: &Hub, req: test::TestRequest) -> (u16, String) {
    let console = vigie_console::Console::start(Default::default(), &h.store)
        .await
        .unwrap();
    let app = test::init_service(
        App::new()
            .app_data(web::Data::new(h.store.clone()))
            .app_data(web::Data::new(h.pipeline.clone()))
            .app_data(web::Data::new(console))
            .configure(routing::configure)
            .configure(vigie_console::configure),
    )
    .await;
    let res = test::call_service(&app, req.to_request()).await;
    let status = res.status().as_u16();
    let location = res
        .headers()
        .get("location")
        .map(|v| v.to_str().unwrap().to_owned());
    let body = String::from_utf8(test::read_body(res).await.to_vec()).unwrap();
    (status, location.unwrap_or(body))
}

fn get_page(uri: &str, cookie: &str) -> test::TestRequest {
    test::TestRequest::get()
        .uri(uri)
        .insert_header(("Accept-Language", "en"))
        .cookie(actix_web::cookie::Cookie::new(
            "vigie_session",
            cookie.to_owned(),
        ))
}

fn post_form(uri: &str, cookie: &str, body: &str) -> test::TestRequest {
    test::TestRequest::post()
        .uri(uri)
        .insert_header(("Accept-Language", "en"))
        .insert_header(("Content-Type", "application/x-www-form-urlencoded"))
        .cookie(actix_web::cookie::Cookie::new(
            "vigie_session",
            cookie.to_owned(),
        ))
        .set_payload(body.to_owned())
}

fn csrf_of(html: &str) -> String {
    let marker = "name=\"_csrf\" value=\"";
    let start = html.find(marker).expect("a form with its CSRF token") + marker.len();
    html[start..].split('"').next().unwrap().to_owned()
}

#[tokio::test]
async fn each_user_sets_their_own_channels_and_quiet_hours() {
    let h = hub().await;
    let bob = session(&h, h.bob, "bob", Role::Oncall).await;
    let (status, html) = page_call(&h, get_page("/account/notifications", &bob)).await;
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("bob@example.org"));
    let token = csrf_of(&html);
    // No phone number: SMS is refused, nothing is stored.
    let (status, html) = page_call(
        &h,
        post_form(
            "/account/notifications",
            &bob,
            &format!("_csrf={token}&mail=1&sms=1&quiet_start=22%3A00&quiet_end=07%3A00"),
        ),
    )
    .await;
    assert_eq!(status, 422);
    assert!(html.contains("data-error=\"sms\""), "{html}");
    assert_eq!(
        prefs::load(&h.store, h.bob).await.unwrap(),
        Prefs::default()
    );
    // Half a quiet period is refused too.
    let (status, html) = page_call(
        &h,
        post_form(
            "/account/notifications",
            &bob,
            &format!("_csrf={token}&mail=1&quiet_start=22%3A00"),
        ),
    )
    .await;
    assert_eq!(status, 422);
    assert!(html.contains("data-error=\"quiet_end\""), "{html}");
    // Without the form's token nothing changes.
    let (status, _) = page_call(
        &h,
        post_form(
            "/account/notifications",
            &bob,
            "mail=1&quiet_start=22%3A00&quiet_end=07%3A00",
        ),
    )
    .await;
    assert_eq!(status, 403);
    let (status, location) = page_call(
        &h,
        post_form(
            "/account/notifications",
            &bob,
            &format!("_csrf={token}&mail=1&quiet_start=22%3A00&quiet_end=07%3A00"),
        ),
    )
    .await;
    assert_eq!((status, location.as_str()), (303, "/account/notifications"));
    assert_eq!(
        prefs::load(&h.store, h.bob).await.unwrap(),
        Prefs {
            mail: true,
            sms: false,
            quiet_start: Some(22 * 60),
            quiet_end: Some(7 * 60)
        }
    );
    let audit: i64 = on_pool!(&h.store, pool => sqlx::query_scalar(
        "SELECT COUNT(*) FROM audit_log WHERE action = 'oncall.prefs_update' AND actor_login = 'bob'",
    )
    .fetch_one(pool)
    .await)
    .unwrap();
    assert_eq!(audit, 1);
    // Not logged in: to the login page.
    let (status, location) =
        page_call(&h, test::TestRequest::get().uri("/account/notifications")).await;
    assert_eq!(status, 303);
    assert!(location.starts_with("/login"), "{location}");
}

#[tokio::test]
async fn only_the_planning_editor_manages_routing_rules() {
    let h = hub().await;
    let ada = session(&h, h.ada, "ada", Role::Oncall).await;
    let (status, _) = page_call(&h, get_page("/admin/oncall/rules", &ada)).await;
    assert_eq!(status, 403);
    let (status, _) = page_call(
        &h,
        post_form(
            "/admin/oncall/rules",
            &ada,
            "domain=network&min_severity=1&escalation_minutes=5&enabled=1",
        ),
    )
    .await;
    assert_eq!(status, 403);
    assert!(routing::list(&h.store).await.unwrap().is_empty());

    let root = user(&h.store, "root", "admin", Some("root@example.org"), None).await;
    let admin = session(&h, root, "root", Role::Admin).await;
    let (status, html) = page_call(&h, get_page("/admin/oncall/rules", &admin)).await;
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("data-test=\"defaulted\""));
    let token = csrf_of(&html);
    let (status, html) = page_call(
        &h,
        post_form(
            "/admin/oncall/rules",
            &admin,
            &format!("_csrf={token}&domain=mars&min_severity=1&escalation_minutes=0&window_start=25%3A00&window_end=06%3A00&enabled=1"),
        ),
    )
    .await;
    assert_eq!(status, 422);
    for field in ["domain", "escalation_minutes", "window_start"] {
        assert!(
            html.contains(&format!("data-error=\"{field}\"")),
            "{field}: {html}"
        );
    }
    assert!(routing::list(&h.store).await.unwrap().is_empty());
    let (status, location) = page_call(
        &h,
        post_form(
            "/admin/oncall/rules",
            &admin,
            &format!("_csrf={token}&domain=network&min_severity=1&source=zabbix&escalation_minutes=5&window_start=22%3A00&window_end=06%3A00&enabled=1"),
        ),
    )
    .await;
    assert_eq!((status, location.as_str()), (303, "/admin/oncall/rules"));
    let rules = routing::list(&h.store).await.unwrap();
    assert_eq!(rules.len(), 1);
    let r = &rules[0];
    assert_eq!(
        (
            r.min_severity,
            r.source.as_deref(),
            r.window_start,
            r.window_end,
            r.escalation_minutes,
            r.enabled
        ),
        (1, Some("zabbix"), Some(1320), Some(360), 5, true)
    );
    let (status, html) = page_call(
        &h,
        get_page(&format!("/admin/oncall/rules/{}", r.id), &admin),
    )
    .await;
    assert_eq!(status, 200);
    assert!(html.contains("value=\"22:00\""), "{html}");
    let (status, _) = page_call(
        &h,
        post_form(
            &format!("/admin/oncall/rules/{}/disable", r.id),
            &admin,
            &format!("_csrf={token}"),
        ),
    )
    .await;
    assert_eq!(status, 303);
    assert!(!routing::get(&h.store, r.id).await.unwrap().unwrap().enabled);
    let (status, _) = page_call(
        &h,
        post_form(
            "/admin/oncall/rules/9999/enable",
            &admin,
            &format!("_csrf={token}"),
        ),
    )
    .await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn alerts_stored_while_no_engine_ran_are_routed_at_start() {
    let h = hub().await;
    let missed = alert(&h, "network", "core-sw-12", Level::Critical).await;
    let warning = alert(&h, "network", "edge-12", Level::Warning).await;
    let engine = Engine::new(h.store.clone(), settings());
    assert_eq!(engine.catch_up(vigie_core::time::now()).await.unwrap(), 1);
    assert!(escalation::get(&h.store, missed).await.unwrap().is_some());
    assert!(escalation::get(&h.store, warning).await.unwrap().is_none());
    assert_eq!(engine.catch_up(vigie_core::time::now()).await.unwrap(), 0);
    assert_eq!(outbox(&h.store).await.len(), 2);
}

#[tokio::test]
async fn an_sms_reply_from_the_persons_phone_acknowledges() {
    let h = hub().await;
    let engine = Engine::new(h.store.clone(), settings());
    let id = alert(&h, "network", "core-sw-13", Level::Critical).await;
    let t0 = vigie_core::time::now();
    engine.route(id, t0).await.unwrap();
    let sms = outbox(&h.store).await.remove(1);
    assert_eq!(sms.0, "sms");
    let at = sms.4.rfind("ACK ").expect("the code to answer with") + 4;
    let code = sms.4[at..].to_owned();
    assert_eq!(code.len(), 8, "{}", sms.4);
    // The gateway's account pushes alerts; a plain user may not post replies.
    user(&h.store, "gateway", "operator", None, None).await;
    user(&h.store, "nobody", "user", None, None).await;
    let gateway = vigie_auth::create_token(&h.store, "gateway", None)
        .await
        .unwrap();
    let nobody = vigie_auth::create_token(&h.store, "nobody", None)
        .await
        .unwrap();
    let app = test::init_service(
        App::new()
            .app_data(web::Data::new(h.store.clone()))
            .configure(ack::configure),
    )
    .await;
    let reply = |token: &str, body: serde_json::Value| {
        test::TestRequest::post()
            .uri("/api/v1/oncall/sms-callback")
            .insert_header(("Authorization", format!("Bearer {token}")))
            .set_json(body)
            .to_request()
    };
    let res = test::call_service(
        &app,
        reply(
            &nobody,
            serde_json::json!({"from": "+33600000001", "text": format!("ACK {code}")}),
        ),
    )
    .await;
    assert_eq!(res.status().as_u16(), 403);
    let res = test::call_service(&app, reply(&gateway, serde_json::json!({"text": "ACK x"}))).await;
    assert_eq!(res.status().as_u16(), 400);
    let outcome = |res: actix_web::dev::ServiceResponse| async move {
        let v: serde_json::Value = test::read_body_json(res).await;
        v["outcome"].as_str().unwrap().to_owned()
    };
    // Another phone: refused, and the code still works.
    let res = test::call_service(
        &app,
        reply(
            &gateway,
            serde_json::json!({"from": "+33699999999", "text": format!("ACK {code}")}),
        ),
    )
    .await;
    assert_eq!(outcome(res).await, "unknown");
    assert_eq!(
        vigie_alerts::repo::get(&h.store, id)
            .await
            .unwrap()
            .unwrap()
            .state,
        "new"
    );
    let res = test::call_service(
        &app,
        reply(&gateway, serde_json::json!({"from": "0033 6 00 00 00 01", "text": format!("ack {}", code.to_lowercase())})),
    )
    .await;
    assert_eq!(outcome(res).await, "acknowledged");
    let esc = escalation::get(&h.store, id).await.unwrap().unwrap();
    assert_eq!(
        (
            esc.state.as_str(),
            esc.acknowledged_via.as_deref(),
            esc.acknowledged_by
        ),
        ("acknowledged", Some("sms"), Some(h.ada))
    );
    let res = test::call_service(
        &app,
        reply(
            &gateway,
            serde_json::json!({"from": "+33600000001", "text": format!("ACK {code}")}),
        ),
    )
    .await;
    assert_eq!(outcome(res).await, "unknown");
}
