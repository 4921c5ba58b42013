//! Sources defined in the console: stored with the password encrypted (never in clear anywhere
//! in the database), decrypted into the URL for the poller, validated field by field, updated
//! keeping the password, deleted; a wrong key leaves a clear error on the health line.

use std::sync::Arc;

use serde_json::{Value, json};
use vigie_core::audit::Actor;
use vigie_core::domain::Domains;
use vigie_core::role::Role;
use vigie_core::store::Store;
use vigie_sources::Sources;
use vigie_sources::defs::{self, Check, DefsError, Draft};
use vigie_sources::secrets::{KeyStore, SecretKey};

use crate::hub;

const PASSWORD: &str = "Tr0ub4dor&3-zq9";

fn actor() -> Actor {
    Actor {
        user_id: 1,
        login: "admin".into(),
        role: Role::Admin,
    }
}

fn sql_settings() -> Value {
    json!({
        "query": "SELECT id, host, sev, msg, ts FROM events WHERE id > :watermark ORDER BY id",
        "watermark": {"id_column": "id"},
        "mapping": {"resource": "host", "message": "msg", "severity": "sev",
                    "occurred_at": "ts", "source_ref": "id"}
    })
}

fn draft(name: &str) -> Draft {
    Draft {
        name: name.into(),
        kind: "sql".into(),
        url: "postgres://reader@127.0.0.1:5432/events".into(),
        password: PASSWORD.into(),
        interval_seconds: "5".into(),
        enabled: true,
        domain: "applications".into(),
        settings: sql_settings().to_string(),
    }
}

/// Every text of the tables a source definition touches, to look for the password in.
async fn every_text(store: &Store) -> String {
    let queries = [
        "SELECT name || '|' || kind || '|' || url || '|' || COALESCE(password_nonce, '') || '|' || \
         COALESCE(password_cipher, '') || '|' || domain || '|' || COALESCE(created_by, '') FROM source_defs",
        "SELECT source || '|' || settings FROM source_settings",
        "SELECT action || '|' || COALESCE(before_state, '') || '|' || COALESCE(after_state, '') FROM audit_log",
    ];
    let mut all = String::new();
    for q in queries {
        let rows: Vec<String> = vigie_core::on_pool!(store, pool => sqlx::query_scalar(q)
            .fetch_all(pool)
            .await)
        .expect("scan");
        for r in rows {
            all.push_str(&r);
            all.push('\n');
        }
    }
    all
}

fn check<'a>(domains: &'a Domains, config: &'a [String]) -> Check<'a> {
    Check {
        domains,
        config_names: config,
    }
}

#[tokio::test]
async fn stored_encrypted_and_decrypted_into_the_url() {
    let h = hub().await;
    let keys = KeyStore::fixed(SecretKey::random().unwrap());
    let domains = Domains::default();
    let a = actor();
    let stored = defs::create(
        &h.store,
        &keys,
        &check(&domains, &[]),
        &draft("events"),
        Some(&a),
        Some("127.0.0.1"),
    )
    .await
    .unwrap();
    assert!(stored.has_password);
    assert_eq!(stored.url, "postgres://reader@127.0.0.1:5432/events");
    assert_eq!(stored.settings, sql_settings());

    let text = every_text(&h.store).await;
    assert!(text.contains("source.create"), "{text}");
    assert!(text.contains("reader@127.0.0.1"), "{text}");
    assert!(!text.contains(PASSWORD), "the password is in clear: {text}");
    assert!(!text.contains("Tr0ub4dor"), "{text}");
    assert!(!text.contains("Tr0ub4dor%263"), "{text}");

    let def = defs::runtime_def(&keys, &stored).unwrap();
    assert_eq!(
        def.url,
        "postgres://reader:Tr0ub4dor%263-zq9@127.0.0.1:5432/events"
    );
    assert_eq!(def.domain.as_deref(), Some("applications"));
    assert_eq!(def.interval.as_secs(), 5);
    // The Debug form hides it too.
    assert!(!format!("{def:?}").contains("Tr0ub4dor"));

    // A password typed into the URL is taken out of it and encrypted the same way.
    let mut d = draft("events2");
    d.password.clear();
    d.url = "postgres://reader:Pa%24%24-in-url@db:5432/events".into();
    let stored2 = defs::create(&h.store, &keys, &check(&domains, &[]), &d, Some(&a), None)
        .await
        .unwrap();
    assert_eq!(stored2.url, "postgres://reader@db:5432/events");
    assert!(!every_text(&h.store).await.contains("Pa%24%24"));
    assert!(!every_text(&h.store).await.contains("Pa$$"));
    assert_eq!(
        defs::runtime_def(&keys, &stored2).unwrap().url,
        "postgres://reader:Pa%24%24-in-url@db:5432/events"
    );
    assert_eq!(defs::list(&h.store).await.unwrap().len(), 2);
}

fn fields(e: DefsError) -> Vec<&'static str> {
    match e {
        DefsError::Invalid(problems) => problems.iter().map(|p| p.field).collect(),
        other => panic!("expected invalid, got {other:?}"),
    }
}

/// One change of a valid draft that makes it invalid.
type Change = Box<dyn Fn(&mut Draft)>;

#[tokio::test]
async fn bad_drafts_name_their_field_and_change_nothing() {
    let h = hub().await;
    let keys = KeyStore::fixed(SecretKey::random().unwrap());
    let domains = Domains::default();
    let config = vec!["glpi-prod".to_owned()];
    let c = check(&domains, &config);
    let cases: Vec<(Change, &str)> = vec![
        (Box::new(|d| d.name = "Bad Name".into()), "name"),
        (Box::new(|d| d.name = "glpi-prod".into()), "name"),
        (Box::new(|d| d.kind = "nagios".into()), "kind"),
        (Box::new(|d| d.url = "mssql://u@h/db".into()), "url"),
        (Box::new(|d| d.url = "not a url".into()), "url"),
        (
            Box::new(|d| {
                d.kind = "whatsup".into();
                d.url = "mysql://u@h/db".into()
            }),
            "url",
        ),
        (
            Box::new(|d| {
                d.kind = "glpi".into();
                d.url = "postgres://u@h/db".into();
                d.settings.clear()
            }),
            "url",
        ),
        (Box::new(|d| d.url = "postgres://h/db".into()), "url"),
        (
            Box::new(|d| d.interval_seconds = "0".into()),
            "interval_seconds",
        ),
        (
            Box::new(|d| d.interval_seconds = "x".into()),
            "interval_seconds",
        ),
        (Box::new(|d| d.domain = "space".into()), "domain"),
        (Box::new(|d| d.settings = "{not json".into()), "settings"),
        (Box::new(|d| d.settings = "[1]".into()), "settings"),
        (
            Box::new(|d| {
                d.settings = json!({"query": "DELETE FROM events", "mapping": {"resource": "host"}})
                    .to_string()
            }),
            "settings",
        ),
    ];
    for (change, field) in cases {
        let mut d = draft("events");
        change(&mut d);
        let e = defs::create(&h.store, &keys, &c, &d, None, None)
            .await
            .expect_err(field);
        assert_eq!(fields(e), vec![field], "{d:?}");
    }
    assert!(defs::list(&h.store).await.unwrap().is_empty());
    assert!(!every_text(&h.store).await.contains("events|sql"));

    // A name already used.
    defs::create(&h.store, &keys, &c, &draft("events"), None, None)
        .await
        .unwrap();
    let e = defs::create(&h.store, &keys, &c, &draft("events"), None, None)
        .await
        .unwrap_err();
    assert_eq!(fields(e), vec!["name"]);
    assert_eq!(defs::list(&h.store).await.unwrap().len(), 1);
}

#[tokio::test]
async fn update_keeps_the_password_when_empty_and_delete_removes_all() {
    let h = hub().await;
    let keys = KeyStore::fixed(SecretKey::random().unwrap());
    let domains = Domains::default();
    let c = check(&domains, &[]);
    let a = actor();
    let first = defs::create(&h.store, &keys, &c, &draft("events"), Some(&a), None)
        .await
        .unwrap();

    let mut d = draft("events");
    d.password.clear();
    d.interval_seconds = "30".into();
    d.enabled = false;
    let kept = defs::update(&h.store, &keys, &c, "events", &d, Some(&a), None)
        .await
        .unwrap();
    assert!(kept.has_password);
    assert_eq!(kept.interval_seconds, 30);
    assert!(!kept.enabled);
    assert_eq!(
        defs::runtime_def(&keys, &kept).unwrap().url,
        defs::runtime_def(&keys, &first).unwrap().url
    );

    d.password = "n3w-secret".into();
    let changed = defs::update(&h.store, &keys, &c, "events", &d, Some(&a), None)
        .await
        .unwrap();
    assert_eq!(
        defs::runtime_def(&keys, &changed).unwrap().url,
        "postgres://reader:n3w-secret@127.0.0.1:5432/events"
    );
    let text = every_text(&h.store).await;
    assert!(text.contains("source.update"));
    assert!(
        !text.contains("n3w-secret") && !text.contains(PASSWORD),
        "{text}"
    );

    // An invalid update changes nothing.
    d.interval_seconds = "0".into();
    assert!(
        defs::update(&h.store, &keys, &c, "events", &d, Some(&a), None)
            .await
            .is_err()
    );
    assert_eq!(
        defs::get(&h.store, "events")
            .await
            .unwrap()
            .unwrap()
            .interval_seconds,
        30
    );

    let toggled = defs::set_enabled(&h.store, "events", true, Some(&a), None)
        .await
        .unwrap();
    assert!(toggled.enabled);

    defs::delete(&h.store, "events", Some(&a), None)
        .await
        .unwrap();
    assert!(defs::get(&h.store, "events").await.unwrap().is_none());
    assert!(
        vigie_sources::repo::load_settings(&h.store, "events")
            .await
            .unwrap()
            .is_null()
    );
    assert!(matches!(
        defs::delete(&h.store, "events", None, None).await,
        Err(DefsError::NotFound(_))
    ));
    assert!(every_text(&h.store).await.contains("source.delete"));
}

#[tokio::test]
async fn a_wrong_key_is_a_clear_error_on_the_health_line() {
    let h = hub().await;
    let keys = KeyStore::fixed(SecretKey::random().unwrap());
    let domains = Domains::default();
    let mut d = draft("events");
    // Nothing listens there: the poller, if it started, would fail to connect, not decrypt.
    d.url = "postgres://reader@127.0.0.1:9/events".into();
    let stored = defs::create(&h.store, &keys, &check(&domains, &[]), &d, None, None)
        .await
        .unwrap();
    let sources = Sources::start(h.store.clone(), Arc::new(h.pipeline.clone()), vec![]).await;
    let other = KeyStore::fixed(SecretKey::random().unwrap());
    defs::launch_stored(&sources, &h.store, &other).await;
    let health = sources.health();
    assert_eq!(health.len(), 1);
    assert_eq!(health[0].state.as_str(), "misconfigured");
    let error = health[0].last_error.clone().unwrap();
    assert!(error.contains("cannot be decrypted"), "{error}");
    assert!(sources.def("events").is_some());

    // With the right key it starts; removed, it is gone.
    defs::launch(&sources, &keys, &stored).await;
    assert_ne!(sources.health()[0].state.as_str(), "misconfigured");
    assert!(sources.remove("events").await);
    assert!(sources.health().is_empty());
    sources.stop(std::time::Duration::from_secs(5)).await;
}
