//! Backups: reports over HTTP, alerts raised and cleared by the watcher, missing reports.

use std::sync::Arc;

use actix_web::{App, test, web};
use chrono::{Duration, Timelike, Utc};
use serde_json::{Value, json};
use vigie_core::role::Role;
use vigie_sources::backups::{BACKUP_SOURCE, FAILED_EVENT, MISSING_EVENT};
use vigie_sources::{BackupWatcher, WatcherSettings};

use crate::{alerts, hub};

async fn token(store: &vigie_core::store::Store, login: &str, role: Role) -> String {
    vigie_auth::create_user(
        store,
        vigie_auth::NewUser {
            login: login.into(),
            role,
            email: None,
            display_name: None,
            password: None,
            must_change_password: false,
        },
    )
    .await
    .unwrap();
    vigie_auth::create_token(store, login, None).await.unwrap()
}

async fn backup_alert(
    store: &vigie_core::store::Store,
    job: &str,
    event: &str,
) -> Option<vigie_alerts::model::Alert> {
    alerts(store).await.into_iter().find(|a| {
        a.source == BACKUP_SOURCE
            && a.resource == job
            && a.attributes.0.get("event").and_then(Value::as_str) == Some(event)
    })
}

#[tokio::test]
async fn reported_errors_raise_alerts_and_successes_clear_them() {
    let h = hub().await;
    let mut watcher = BackupWatcher::new(
        h.store.clone(),
        Arc::new(h.pipeline.clone()),
        WatcherSettings::default(),
    );
    let app = test::init_service(
        App::new()
            .app_data(web::Data::new(h.store.clone()))
            .app_data(web::Data::new(watcher.notifier()))
            .configure(vigie_sources::configure),
    )
    .await;
    let script = token(&h.store, "backup-script", Role::Operator).await;
    let post = |body: Value, bearer: Option<&str>| {
        let mut req = test::TestRequest::post()
            .uri("/api/v1/backups")
            .set_json(body);
        if let Some(t) = bearer {
            req = req.insert_header(("Authorization", format!("Bearer {t}")));
        }
        req.to_request()
    };

    let resp = test::call_service(
        &app,
        post(
            json!({"job": "nightly-db", "status": "error", "message": "tape full", "started": "2025-01-14T23:05:00Z", "ended": "2025-01-14T23:19:47Z"}),
            Some(&script),
        ),
    )
    .await;
    assert_eq!(resp.status(), 202);
    let body: Value = test::read_body_json(resp).await;
    assert!(body["id"].as_i64().unwrap() > 0);

    let step = watcher.step(Utc::now()).await.unwrap();
    assert_eq!(step.reports, 1);
    let failed = backup_alert(&h.store, "nightly-db", FAILED_EVENT)
        .await
        .expect("alert raised");
    assert_eq!(failed.severity, 2);
    assert_eq!(failed.domain, "backup");
    assert_eq!(failed.message, "Backup job nightly-db failed: tape full");
    assert_eq!(failed.state, "new");

    // The same rows are never turned into alerts twice (the watcher's watermark).
    assert_eq!(watcher.step(Utc::now()).await.unwrap().reports, 0);
    let mut restarted = BackupWatcher::new(
        h.store.clone(),
        Arc::new(h.pipeline.clone()),
        WatcherSettings::default(),
    );
    assert_eq!(restarted.step(Utc::now()).await.unwrap().reports, 0);

    let resp = test::call_service(
        &app,
        post(json!({"job": "nightly-db", "status": "ok"}), Some(&script)),
    )
    .await;
    assert_eq!(resp.status(), 202);
    watcher.step(Utc::now()).await.unwrap();
    let cleared = backup_alert(&h.store, "nightly-db", FAILED_EVENT)
        .await
        .unwrap();
    assert_eq!(cleared.id, failed.id);
    assert_eq!(cleared.state, "cleared");

    // Bad reports: 400 naming the field; nothing stored.
    for (body, field) in [
        (json!({"status": "ok"}), "job"),
        (json!({"job": "x", "status": "done"}), "status"),
        (
            json!({"job": "x", "status": "ok", "ended": "last night"}),
            "ended",
        ),
        (json!({"job": "x", "status": "ok", "size": 3}), "size"),
    ] {
        let resp = test::call_service(&app, post(body, Some(&script))).await;
        assert_eq!(resp.status(), 400);
        let answer: Value = test::read_body_json(resp).await;
        assert_eq!(answer["problems"][0]["field"], field, "{answer}");
    }
    let resp = test::call_service(
        &app,
        test::TestRequest::post()
            .uri("/api/v1/backups")
            .insert_header(("Authorization", format!("Bearer {script}")))
            .insert_header(("Content-Type", "application/json"))
            .set_payload("{not json")
            .to_request(),
    )
    .await;
    assert_eq!(resp.status(), 400);
    assert_eq!(
        vigie_sources::repo::list_backups(&h.store, None, 100)
            .await
            .unwrap()
            .len(),
        2
    );
    // No token: 401; a role that may not push: 403.
    assert_eq!(
        test::call_service(&app, post(json!({"job": "x", "status": "ok"}), None))
            .await
            .status(),
        401
    );
    let manager = token(&h.store, "boss", Role::Manager).await;
    assert_eq!(
        test::call_service(
            &app,
            post(json!({"job": "x", "status": "ok"}), Some(&manager))
        )
        .await
        .status(),
        403
    );
}

#[tokio::test]
async fn a_job_that_does_not_report_by_its_deadline_raises_backup_missing() {
    let h = hub().await;
    let mut watcher = BackupWatcher::new(
        h.store.clone(),
        Arc::new(h.pipeline.clone()),
        WatcherSettings::default(),
    );
    let app = test::init_service(
        App::new()
            .app_data(web::Data::new(h.store.clone()))
            .configure(vigie_sources::configure),
    )
    .await;
    let admin = token(&h.store, "admin1", Role::Admin).await;
    let put = |job: &str, body: Value| {
        test::TestRequest::put()
            .uri(&format!("/api/v1/backups/jobs/{job}"))
            .insert_header(("Authorization", format!("Bearer {admin}")))
            .set_json(body)
            .to_request()
    };
    let resp = test::call_service(
        &app,
        put(
            "nightly-db",
            json!({"schedule": "daily 23:00", "deadline": "2h"}),
        ),
    )
    .await;
    assert_eq!(resp.status(), 204);
    let resp = test::call_service(
        &app,
        put(
            "weekly",
            json!({"schedule": "someday 23:00", "deadline": "forever"}),
        ),
    )
    .await;
    assert_eq!(resp.status(), 400);
    let answer: Value = test::read_body_json(resp).await;
    let fields: Vec<&str> = answer["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["schedule", "deadline"]);

    // Nothing is due yet: the job was just expected.
    let now = Utc::now();
    assert!(watcher.step(now).await.unwrap().missing.is_empty());
    // Two days later, no report: the last run is missing (once).
    let later = now + Duration::days(2);
    let step = watcher.step(later).await.unwrap();
    assert_eq!(step.missing, ["nightly-db"]);
    let missing = backup_alert(&h.store, "nightly-db", MISSING_EVENT)
        .await
        .expect("missing alert");
    assert_eq!(missing.severity, 1);
    assert_eq!(missing.state, "new");
    assert!(
        missing.message.contains("has not reported"),
        "{}",
        missing.message
    );
    assert!(watcher.step(later).await.unwrap().missing.is_empty());
    // A restarted watcher checks the run again, and the store recognises the alert already raised.
    let mut restarted = BackupWatcher::new(
        h.store.clone(),
        Arc::new(h.pipeline.clone()),
        WatcherSettings::default(),
    );
    assert_eq!(restarted.step(later).await.unwrap().missing, ["nightly-db"]);
    assert_eq!(
        backup_alert(&h.store, "nightly-db", MISSING_EVENT)
            .await
            .unwrap()
            .count,
        0
    );

    // The job reports (late): the missing alert clears.
    let report = vigie_sources::backups::check_report(
        Some("nightly-db"),
        Some("ok"),
        None,
        None,
        None,
        Some("cli"),
    )
    .unwrap();
    vigie_sources::repo::insert_backup(&h.store, &report)
        .await
        .unwrap();
    watcher.step(later).await.unwrap();
    assert_eq!(
        backup_alert(&h.store, "nightly-db", MISSING_EVENT)
            .await
            .unwrap()
            .state,
        "cleared"
    );

    // A report in time: nothing missing for the next run.
    let due_tomorrow = (later + Duration::days(1))
        .with_hour(23)
        .unwrap()
        .with_minute(30)
        .unwrap();
    let step = watcher
        .step(due_tomorrow + Duration::hours(3))
        .await
        .unwrap();
    assert_eq!(
        step.missing,
        ["nightly-db"],
        "the run of the next day is missing too"
    );

    // The list of expected jobs, and their removal.
    let req = test::TestRequest::get()
        .uri("/api/v1/backups/jobs")
        .insert_header(("Authorization", format!("Bearer {admin}")))
        .to_request();
    let resp = test::call_service(&app, req).await;
    assert_eq!(resp.status(), 403, "the administrator does not see alerts");
    let req = test::TestRequest::delete()
        .uri("/api/v1/backups/jobs/nightly-db")
        .insert_header(("Authorization", format!("Bearer {admin}")))
        .to_request();
    assert_eq!(test::call_service(&app, req).await.status(), 204);
    assert!(
        vigie_sources::repo::list_jobs(&h.store)
            .await
            .unwrap()
            .is_empty()
    );
}
