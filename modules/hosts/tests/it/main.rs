//! The hosts module end to end on the backend `VIGIE_TEST_DATABASE` selects: agent tokens,
//! reports over HTTP, idempotent replays, bad input, thresholds raising and clearing alerts
//! through the real pipeline, the unreachable watcher, the read API.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use actix_web::dev::{Service, ServiceResponse};
use actix_web::{App, test, web};
use chrono::{DateTime, Duration, Utc};
use serde_json::{Value, json};
use vigie_alerts::model::Alert;
use vigie_alerts::pipeline::{Pipeline, PipelineSettings};
use vigie_alerts::repo::{self, AlertFilter};
use vigie_alerts::rules::RuleSet;
use vigie_core::domain::Domains;
use vigie_core::role::Role;
use vigie_core::store::Store;
use vigie_core::testing::TestDb;

struct Hub {
    _db: TestDb,
    store: Store,
    pipeline: Pipeline,
}

async fn hub() -> Hub {
    let db = TestDb::create().await.expect("test database");
    let store = db.store().await.expect("store");
    let rules = RuleSet::shipped(&Domains::default()).expect("rules");
    let (pipeline, writer) =
        Pipeline::new(store.clone(), PipelineSettings::default(), Arc::new(rules));
    tokio::spawn(writer.run());
    Hub {
        _db: db,
        store,
        pipeline,
    }
}

async fn app(
    h: &Hub,
) -> impl Service<actix_http::Request, Response = ServiceResponse, Error = actix_web::Error> {
    test::init_service(
        App::new()
            .app_data(web::Data::new(h.store.clone()))
            .app_data(web::Data::new(h.pipeline.clone()))
            .configure(vigie_hosts::configure),
    )
    .await
}

fn report(host: &str, id: &str, at: DateTime<Utc>, root_used: f64) -> Value {
    json!({
        "schema_version": 1,
        "id": id,
        "host": host,
        "collected_at": at,
        "interval_secs": 30.0,
        "inventory": {"hostname": host, "arch": "x86_64", "cpu_cores": 2,
                      "memory_bytes": 1000, "agent_version": "0.1.0"},
        "cpu": {"total_percent": 12.5, "per_core_percent": [10.0, 15.0]},
        "load": {"one": 0.5, "five": 0.4, "fifteen": 0.3},
        "memory": {"total_bytes": 1000, "used_bytes": 400, "available_bytes": 600},
        "filesystems": [{"mount": "/", "fs_type": "ext4", "device": "/dev/sda1",
            "total_bytes": 100, "used_bytes": 50, "available_bytes": 50,
            "used_percent": root_used, "inodes_total": null, "inodes_used": null,
            "read_bytes_per_sec": null, "write_bytes_per_sec": null}],
        "network": [{"name": "eth0", "rx_bytes_per_sec": 1000, "tx_bytes_per_sec": 200,
            "rx_errors": 0, "tx_errors": 0, "rx_drops": 0, "tx_drops": 0}],
        "systemd_failed_units": [],
    })
}

async fn post<S>(app: &S, token: &str, body: &Value) -> (u16, Value)
where
    S: Service<actix_http::Request, Response = ServiceResponse, Error = actix_web::Error>,
{
    post_raw(app, token, body.to_string()).await
}

async fn post_raw<S>(app: &S, token: &str, body: String) -> (u16, Value)
where
    S: Service<actix_http::Request, Response = ServiceResponse, Error = actix_web::Error>,
{
    let req = test::TestRequest::post()
        .uri("/api/v1/agent/report")
        .insert_header(("Authorization", format!("Bearer {token}")))
        .insert_header(("Content-Type", "application/json"))
        .set_payload(body)
        .to_request();
    let resp = test::call_service(app, req).await;
    let status = resp.status().as_u16();
    let bytes = test::read_body(resp).await;
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

async fn count(store: &Store, table: &str) -> i64 {
    let sql = format!("SELECT COUNT(*) FROM {table}");
    vigie_core::on_pool!(store, pool => sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(sql))
        .fetch_one(pool).await)
    .unwrap()
}

async fn equipment_status(store: &Store, name: &str) -> Option<String> {
    let sql = format!(
        "SELECT status FROM equipment WHERE source = 'agent' AND source_ref = '{name}' \
         AND kind = 'host' AND domain = 'systems'"
    );
    vigie_core::on_pool!(store, pool => sqlx::query_scalar::<_, Option<String>>(sqlx::AssertSqlSafe(sql))
        .fetch_optional(pool).await)
    .unwrap()
    .flatten()
}

async fn alerts(store: &Store) -> Vec<Alert> {
    repo::list(
        store,
        &AlertFilter {
            limit: 10_000,
            ..AlertFilter::default()
        },
    )
    .await
    .expect("list")
}

async fn agent_alert(store: &Store, resource: &str, event: &str) -> Option<Alert> {
    alerts(store).await.into_iter().find(|a| {
        a.source == "agent"
            && a.resource == resource
            && a.attributes.0.get("event").and_then(Value::as_str) == Some(event)
    })
}

#[tokio::test]
async fn token_then_report_accepted_and_replay_idempotent() {
    let h = hub().await;
    let app = app(&h).await;
    let token = vigie_hosts::repo::create_token(&h.store, "web1")
        .await
        .unwrap();
    assert!(token.starts_with("vha_"), "{token}");
    assert!(!token.contains('\n'));

    let body = report("web1", "web1-a-1", Utc::now(), 40.0);
    let (status, answer) = post(&app, &token, &body).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["fast"], json!(false));
    let metrics = count(&h.store, "host_metrics").await;
    assert!(metrics >= 8, "{metrics}");

    // The same report again: 200, nothing stored twice.
    let (status, answer) = post(&app, &token, &body).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(count(&h.store, "host_metrics").await, metrics);
    assert_eq!(count(&h.store, "host_reports").await, 1);

    // The series is there.
    let host_id = vigie_hosts::repo::host_id(&h.store, "web1")
        .await
        .unwrap()
        .unwrap();
    let points = vigie_hosts::repo::series(
        &h.store,
        host_id,
        "fs:/",
        Utc::now() - Duration::hours(1),
        Utc::now() + Duration::hours(1),
        100,
    )
    .await
    .unwrap();
    assert_eq!(points.len(), 1);
    assert_eq!(points[0].value, 40.0);
    let hosts = vigie_hosts::repo::list_hosts(&h.store).await.unwrap();
    assert_eq!(hosts.len(), 1);
    assert_eq!(hosts[0].status, "up");
    assert_eq!(hosts[0].health, 100);
}

#[tokio::test]
async fn bad_reports_are_refused_and_nothing_is_stored() {
    let h = hub().await;
    let app = app(&h).await;
    let token = vigie_hosts::repo::create_token(&h.store, "web1")
        .await
        .unwrap();
    vigie_hosts::repo::create_token(&h.store, "db1")
        .await
        .unwrap();

    // Another host's name: 403.
    let (status, _) = post(&app, &token, &report("db1", "x-1", Utc::now(), 10.0)).await;
    assert_eq!(status, 403);
    // Unknown token: 401.
    let (status, _) = post(&app, "vha_nope", &report("web1", "x-2", Utc::now(), 10.0)).await;
    assert_eq!(status, 401);
    // A wrong type: 400 naming the field.
    let mut bad = report("web1", "x-3", Utc::now(), 10.0);
    bad["load"]["one"] = json!("high");
    let (status, answer) = post(&app, &token, &bad).await;
    assert_eq!(status, 400);
    assert_eq!(
        answer["problems"][0]["field"],
        json!("load.one"),
        "{answer}"
    );
    // A missing field, named.
    let mut bad = report("web1", "x-6", Utc::now(), 10.0);
    bad.as_object_mut().unwrap().remove("id");
    let (status, answer) = post(&app, &token, &bad).await;
    assert_eq!(status, 400);
    assert_eq!(answer["problems"][0]["field"], json!("id"), "{answer}");
    let mut bad = report("web1", "x-7", Utc::now(), 10.0);
    bad["filesystems"][0]
        .as_object_mut()
        .unwrap()
        .remove("mount");
    let (status, answer) = post(&app, &token, &bad).await;
    assert_eq!(status, 400);
    assert_eq!(
        answer["problems"][0]["field"],
        json!("filesystems[0].mount"),
        "{answer}"
    );
    // Not JSON at all.
    let (status, answer) = post_raw(&app, &token, "{not json".into()).await;
    assert_eq!(status, 400, "{answer}");
    // Dated in the future.
    let (status, answer) = post(
        &app,
        &token,
        &report("web1", "x-4", Utc::now() + Duration::minutes(10), 10.0),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(answer["problems"][0]["field"], json!("collected_at"));
    // Oversized.
    let (status, _) = post_raw(&app, &token, " ".repeat(2 * 1024 * 1024)).await;
    assert_eq!(status, 413);
    // Revoked.
    assert_eq!(
        vigie_hosts::repo::revoke_tokens(&h.store, "web1")
            .await
            .unwrap(),
        1
    );
    let (status, _) = post(&app, &token, &report("web1", "x-5", Utc::now(), 10.0)).await;
    assert_eq!(status, 401);

    assert_eq!(count(&h.store, "host_reports").await, 0);
    assert_eq!(count(&h.store, "host_metrics").await, 0);
}

#[tokio::test]
async fn full_filesystem_raises_an_alert_after_its_duration_and_clears_when_freed() {
    let h = hub().await;
    let app = app(&h).await;
    let token = vigie_hosts::repo::create_token(&h.store, "web1")
        .await
        .unwrap();
    let t0 = Utc::now() - Duration::minutes(5);
    let at = |n: i64| t0 + Duration::seconds(30 * n);

    // One report over 90 %: crossed (fast), not raised yet (duration 2 reports).
    let (status, answer) = post(&app, &token, &report("web1", "r-1", at(1), 95.0)).await;
    assert_eq!(status, 200);
    assert_eq!(answer["fast"], json!(true));
    assert!(
        agent_alert(&h.store, "web1:/", "threshold:fs")
            .await
            .is_none()
    );

    let (_, answer) = post(&app, &token, &report("web1", "r-2", at(2), 96.0)).await;
    assert_eq!(answer["fast"], json!(true));
    let alert = agent_alert(&h.store, "web1:/", "threshold:fs")
        .await
        .expect("raised");
    assert_ne!(alert.state, "cleared");
    assert_eq!(alert.domain, "systems");

    // Still full: the same alert, not another one.
    post(&app, &token, &report("web1", "r-3", at(3), 97.0)).await;
    let same: Vec<_> = alerts(&h.store)
        .await
        .into_iter()
        .filter(|a| a.resource == "web1:/")
        .collect();
    assert_eq!(same.len(), 1);
    let hosts = vigie_hosts::repo::list_hosts(&h.store).await.unwrap();
    assert!(hosts[0].health < 100);
    assert_eq!(hosts[0].alerts, vec!["fs:/".to_owned()]);

    // Within the hysteresis margin (89 > 90 - 2): stays raised.
    post(&app, &token, &report("web1", "r-4", at(4), 89.0)).await;
    let alert = agent_alert(&h.store, "web1:/", "threshold:fs")
        .await
        .unwrap();
    assert_ne!(alert.state, "cleared");

    // Freed: cleared.
    let (_, answer) = post(&app, &token, &report("web1", "r-5", at(5), 40.0)).await;
    assert_eq!(answer["fast"], json!(false));
    let alert = agent_alert(&h.store, "web1:/", "threshold:fs")
        .await
        .unwrap();
    assert_eq!(alert.state, "cleared");
}

#[tokio::test]
async fn a_group_and_a_host_of_their_own_change_the_limits() {
    use vigie_hosts::HostsSettings;
    use vigie_hosts::thresholds::{HostGroup, HostLimits, Thresholds};

    let h = hub().await;
    let mut db = Thresholds::default();
    db.filesystem.above = 80.0;
    db.filesystem.reports = 1;
    let mut archive = db.clone();
    archive.filesystem.above = 97.0;
    let mut settings = HostsSettings::default();
    settings.thresholds.groups.push(HostGroup {
        name: "databases".into(),
        patterns: vec!["db-*".into()],
        thresholds: db,
    });
    settings.thresholds.hosts.push(HostLimits {
        host: "db-archive".into(),
        group: Some("databases".into()),
        thresholds: archive,
    });
    let app = test::init_service(
        App::new()
            .app_data(web::Data::new(h.store.clone()))
            .app_data(web::Data::new(h.pipeline.clone()))
            .app_data(web::Data::new(settings))
            .configure(vigie_hosts::configure),
    )
    .await;
    let at = Utc::now() - Duration::minutes(1);
    for host in ["db-1", "db-archive", "web1"] {
        let token = vigie_hosts::repo::create_token(&h.store, host)
            .await
            .unwrap();
        let (status, _) = post(&app, &token, &report(host, &format!("{host}-1"), at, 85.0)).await;
        assert_eq!(status, 200);
    }
    // 85 % is over the group's 80 (one report is enough there), under the host's own 97, and
    // under the default 90 with its two reports.
    let raised = |host: &'static str| {
        let store = h.store.clone();
        async move {
            agent_alert(&store, &format!("{host}:/"), "threshold:fs")
                .await
                .is_some()
        }
    };
    assert!(raised("db-1").await, "group limit applies");
    assert!(!raised("db-archive").await, "the host's own limit wins");
    assert!(!raised("web1").await, "defaults elsewhere");
}

#[tokio::test]
async fn silent_host_becomes_unreachable_then_comes_back() {
    let h = hub().await;
    let app = app(&h).await;
    let token = vigie_hosts::repo::create_token(&h.store, "web1")
        .await
        .unwrap();
    assert_eq!(equipment_status(&h.store, "web1").await, None);
    let (status, _) = post(&app, &token, &report("web1", "u-1", Utc::now(), 10.0)).await;
    assert_eq!(status, 200);
    assert_eq!(
        equipment_status(&h.store, "web1").await.as_deref(),
        Some("up")
    );

    // Two intervals missed: still up.
    let gone = vigie_hosts::check_reachability(
        &h.store,
        &h.pipeline,
        Utc::now() + Duration::seconds(60),
        3,
    )
    .await
    .unwrap();
    assert!(gone.is_empty());
    // Three: unreachable, a critical alert, a period opened.
    let gone = vigie_hosts::check_reachability(
        &h.store,
        &h.pipeline,
        Utc::now() + Duration::seconds(100),
        3,
    )
    .await
    .unwrap();
    assert_eq!(gone, vec!["web1".to_owned()]);
    let alert = agent_alert(&h.store, "web1", "unreachable")
        .await
        .expect("raised");
    assert_ne!(alert.state, "cleared");
    assert_eq!(alert.severity, 2);
    let hosts = vigie_hosts::repo::list_hosts(&h.store).await.unwrap();
    assert_eq!(hosts[0].status, "unreachable");
    assert_eq!(hosts[0].health, 0);
    assert_eq!(
        equipment_status(&h.store, "web1").await.as_deref(),
        Some("unreachable")
    );
    // Not raised twice.
    let again = vigie_hosts::check_reachability(
        &h.store,
        &h.pipeline,
        Utc::now() + Duration::seconds(200),
        3,
    )
    .await
    .unwrap();
    assert!(again.is_empty());

    // It reports again: up, the alert clears, the period is closed.
    let (status, _) = post(&app, &token, &report("web1", "u-2", Utc::now(), 10.0)).await;
    assert_eq!(status, 200);
    let alert = agent_alert(&h.store, "web1", "unreachable").await.unwrap();
    assert_eq!(alert.state, "cleared");
    let host_id = vigie_hosts::repo::host_id(&h.store, "web1")
        .await
        .unwrap()
        .unwrap();
    let periods = vigie_hosts::repo::downtimes(&h.store, host_id)
        .await
        .unwrap();
    assert_eq!(periods.len(), 1);
    assert!(periods[0].ended_at.is_some());
    assert_eq!(
        vigie_hosts::repo::list_hosts(&h.store).await.unwrap()[0].status,
        "up"
    );
    assert_eq!(
        equipment_status(&h.store, "web1").await.as_deref(),
        Some("up")
    );
}

#[tokio::test]
async fn read_api_lists_hosts_and_series_for_supervision_users() {
    let h = hub().await;
    let app = app(&h).await;
    let token = vigie_hosts::repo::create_token(&h.store, "web1")
        .await
        .unwrap();
    post(
        &app,
        &token,
        &report("web1", "a-1", Utc::now() - Duration::seconds(30), 10.0),
    )
    .await;
    post(&app, &token, &report("web1", "a-2", Utc::now(), 20.0)).await;
    vigie_auth::create_user(
        &h.store,
        vigie_auth::NewUser {
            login: "op".into(),
            role: Role::Operator,
            email: None,
            display_name: None,
            password: None,
            must_change_password: false,
        },
    )
    .await
    .unwrap();
    let user = vigie_auth::create_token(&h.store, "op", None)
        .await
        .unwrap();

    let get = |uri: String, bearer: Option<String>| {
        let mut req = test::TestRequest::get().uri(&uri);
        if let Some(b) = bearer {
            req = req.insert_header(("Authorization", format!("Bearer {b}")));
        }
        req.to_request()
    };
    let resp = test::call_service(&app, get("/api/v1/hosts".into(), None)).await;
    assert_eq!(resp.status().as_u16(), 401);
    // A host token is not a user's.
    let resp = test::call_service(&app, get("/api/v1/hosts".into(), Some(token.clone()))).await;
    assert_eq!(resp.status().as_u16(), 401);

    let list: Value =
        test::call_and_read_body_json(&app, get("/api/v1/hosts".into(), Some(user.clone()))).await;
    let host = &list["hosts"][0];
    assert_eq!(host["name"], json!("web1"));
    assert_eq!(host["status"], json!("up"));
    assert_eq!(host["health"], json!(100));
    assert!(host["last_seen"].is_string());
    assert_eq!(host["figures"]["fs_max"], json!(20.0));

    let series: Value = test::call_and_read_body_json(
        &app,
        get(
            "/api/v1/hosts/web1/metrics?metric=fs:/".into(),
            Some(user.clone()),
        ),
    )
    .await;
    let values: Vec<f64> = series["points"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["value"].as_f64().unwrap())
        .collect();
    assert_eq!(values, vec![10.0, 20.0]);
    let resp = test::call_service(
        &app,
        get("/api/v1/hosts/nope/metrics?metric=cpu".into(), Some(user)),
    )
    .await;
    assert_eq!(resp.status().as_u16(), 404);
}

#[tokio::test]
async fn metrics_are_rolled_up_then_raw_rows_expire() {
    let h = hub().await;
    let app = app(&h).await;
    let token = vigie_hosts::repo::create_token(&h.store, "web1")
        .await
        .unwrap();
    // Three reports in one 5-minute bucket three days ago, one in the next bucket.
    let now = Utc::now();
    let base =
        DateTime::from_timestamp((now - Duration::days(3)).timestamp() / 3600 * 3600, 0).unwrap();
    for (i, (offset, used)) in [(10, 10.0), (70, 20.0), (130, 60.0), (310, 30.0)]
        .into_iter()
        .enumerate()
    {
        let body = report(
            "web1",
            &format!("o-{i}"),
            base + Duration::seconds(offset),
            used,
        );
        assert_eq!(post(&app, &token, &body).await.0, 200);
    }
    let retention = vigie_hosts::rollup::Retention {
        max_buckets: 10_000,
        ..Default::default()
    };
    let pass = vigie_hosts::rollup::run_pass(&h.store, now, &retention)
        .await
        .unwrap();
    assert!(pass.buckets > 0);
    // Raw rows older than a day are gone once rolled up.
    assert_eq!(count(&h.store, "host_metrics").await, 0);
    let host_id = vigie_hosts::repo::host_id(&h.store, "web1")
        .await
        .unwrap()
        .unwrap();
    let five = vigie_hosts::rollup::rolled_series(
        &h.store,
        host_id,
        "fs:/",
        300,
        base - Duration::hours(1),
        base + Duration::hours(1),
        100,
    )
    .await
    .unwrap();
    assert_eq!(five.len(), 2, "{five:?}");
    assert_eq!(five[0].at, base);
    assert_eq!(five[0].value, 30.0);
    assert_eq!(five[0].max, 60.0);
    assert_eq!(five[1].value, 30.0);
    let hourly = vigie_hosts::rollup::rolled_series(
        &h.store,
        host_id,
        "fs:/",
        3600,
        base - Duration::hours(1),
        base + Duration::hours(1),
        100,
    )
    .await
    .unwrap();
    assert_eq!(hourly.len(), 1);
    assert_eq!(hourly[0].value, 30.0);
    assert_eq!(hourly[0].max, 60.0);
    // The API serves the 5-minute roll-ups for a range of days.
    vigie_auth::create_user(
        &h.store,
        vigie_auth::NewUser {
            login: "op".into(),
            role: Role::Operator,
            email: None,
            display_name: None,
            password: None,
            must_change_password: false,
        },
    )
    .await
    .unwrap();
    let user = vigie_auth::create_token(&h.store, "op", None)
        .await
        .unwrap();
    let from = (base - Duration::days(1)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let req = test::TestRequest::get()
        .uri(&format!(
            "/api/v1/hosts/web1/metrics?metric=fs:/&from={from}"
        ))
        .insert_header(("Authorization", format!("Bearer {user}")))
        .to_request();
    let series: Value = test::call_and_read_body_json(&app, req).await;
    assert_eq!(series["step"], json!(300), "{series}");
    assert_eq!(series["points"][0]["max"], json!(60.0), "{series}");
    // A second pass has nothing left to do.
    let again = vigie_hosts::rollup::run_pass(&h.store, now, &retention)
        .await
        .unwrap();
    assert_eq!(again.buckets, 0);
}

/// A pipeline that refuses everything, as a full or stopping one does.
struct Refusing;

impl vigie_source::Ingest for Refusing {
    fn submit(&self, _: vigie_source::Submission) -> vigie_source::IngestFuture<'_> {
        Box::pin(async { Err(vigie_source::IngestError::Overloaded) })
    }
}

#[tokio::test]
async fn alerts_the_pipeline_refused_wait_in_the_store_and_are_delivered_later() {
    use vigie_hosts::outbox;
    use vigie_hosts::thresholds::Thresholds;

    let h = hub().await;
    vigie_hosts::repo::create_token(&h.store, "db1")
        .await
        .unwrap();
    let host_id = vigie_hosts::repo::host_id(&h.store, "db1")
        .await
        .unwrap()
        .unwrap();
    let mut limits = Thresholds::default();
    limits.filesystem.reports = 1;
    let body = report("db1", "r-1", Utc::now() - Duration::seconds(5), 97.0);
    let parsed: vigie_agent::report::Report = serde_json::from_value(body).unwrap();
    let stored = vigie_hosts::repo::store_report(&h.store, host_id, &parsed, &limits)
        .await
        .unwrap();
    assert_eq!(
        stored.transitions.len(),
        1,
        "the filesystem threshold is crossed"
    );
    assert_eq!(
        count(&h.store, "host_alert_outbox").await,
        1,
        "queued with the report"
    );

    // The pipeline refuses: the alert stays queued.
    assert!(outbox::deliver(&h.store, &Refusing).await.is_err());
    assert_eq!(count(&h.store, "host_alert_outbox").await, 1);
    assert!(
        agent_alert(&h.store, "db1:/", "threshold:fs")
            .await
            .is_none()
    );

    // The watcher's next pass hands it over.
    vigie_hosts::check_reachability(&h.store, &h.pipeline, Utc::now(), 3)
        .await
        .unwrap();
    assert_eq!(count(&h.store, "host_alert_outbox").await, 0);
    let alert = agent_alert(&h.store, "db1:/", "threshold:fs")
        .await
        .expect("raised once the pipeline took it");
    assert_eq!(alert.count, 0, "submitted once: no duplicate absorbed");
}
