//! A configurable SQL source defined from the console (issue 8, "Administration"): an
//! administrator points it at a PostgreSQL database, tests it (rows shown, nothing stored),
//! enables it (the poller starts at once), its rows become alerts, the list shows its health, the
//! hub restarted polls it again from the stored (encrypted) definition, and the password never
//! appears on a page or in the log. Other roles get 403.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sqlx::Connection;

use crate::support::{Browser, Env, Hub};

const PASSWORD: &str = "a-long-enough-password";
/// The source's database password (PostgreSQL trusts local connections, so any value works; it
/// must never come back).
const SOURCE_PASSWORD: &str = "Src-Pw-7f3kq!x";

async fn create_user(env: &Env, login: &str, role: &str) {
    let (code, _, err) = env
        .run(
            &[
                "user",
                "create",
                "--login",
                login,
                "--role",
                role,
                "--password-stdin",
            ],
            Some(&format!("{PASSWORD}\n")),
        )
        .await;
    assert_eq!(code, 0, "user create {login}: {err}");
}

async fn logged_in<'a>(hub: &'a Hub, login: &str) -> Browser<'a> {
    let mut b = Browser::new(hub);
    let answer = b.login(login, PASSWORD).await;
    assert_eq!(answer.status, 303, "login {login}: {}", answer.body);
    b
}

/// A PostgreSQL database of the test's own with a small table of events.
async fn events_db() -> (String, sqlx::PgConnection) {
    let admin = vigie_core::testing::pg_admin_url();
    let name = format!(
        "vigie_test_srcadmin_{}_{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos()
    );
    let mut conn = sqlx::PgConnection::connect(&admin).await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut conn)
        .await
        .unwrap();
    let base = &admin[..admin.rfind('/').unwrap()];
    let url = format!("{base}/{name}");
    let mut db = sqlx::PgConnection::connect(&url).await.unwrap();
    sqlx::query(
        "CREATE TABLE events (id BIGINT PRIMARY KEY, host TEXT NOT NULL, sev INTEGER NOT NULL, \
         msg TEXT NOT NULL, ts TIMESTAMPTZ NOT NULL)",
    )
    .execute(&mut db)
    .await
    .unwrap();
    insert(&mut db, 1, "db-paris-1", 2, "replication lag over 5 min").await;
    insert(&mut db, 2, "db-lyon-2", 1, "tablespace 91% full").await;
    insert(&mut db, 3, "db-nice-3", 2, "listener down").await;
    (url, db)
}

async fn insert(db: &mut sqlx::PgConnection, id: i64, host: &str, sev: i32, msg: &str) {
    sqlx::query("INSERT INTO events (id, host, sev, msg, ts) VALUES ($1, $2, $3, $4, now())")
        .bind(id)
        .bind(host)
        .bind(sev)
        .bind(msg)
        .execute(db)
        .await
        .unwrap();
}

fn settings() -> String {
    json!({
        "query": "SELECT id, host, sev, msg, ts FROM events WHERE id > :watermark ORDER BY id",
        "watermark": {"id_column": "id"},
        "mapping": {"resource": "host", "message": "msg", "severity": "sev",
                    "occurred_at": "ts", "source_ref": "id"}
    })
    .to_string()
}

async fn source_alerts(hub: &Hub, token: &str) -> Vec<Value> {
    let answer = hub
        .get("/api/v1/alerts?source=dbwatch&limit=100", Some(token))
        .await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    answer.json().as_array().cloned().unwrap_or_default()
}

async fn wait_for_alerts(hub: &Hub, token: &str, n: usize) -> Vec<Value> {
    let started = Instant::now();
    loop {
        let list = source_alerts(hub, token).await;
        if list.len() >= n || started.elapsed() > Duration::from_secs(20) {
            return list;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn post(
    b: &mut Browser<'_>,
    path: &str,
    fields: Vec<(String, String)>,
) -> crate::support::Answer {
    let refs: Vec<(&str, &str)> = fields
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    b.post(path, &refs).await
}

/// Every page the test saw, to check that the password never came back.
#[derive(Default)]
struct Seen(String);

impl Seen {
    fn add(&mut self, body: &str) {
        self.0.push_str(body);
    }
}

#[tokio::test]
async fn an_administrator_runs_a_configurable_sql_source_from_the_console() {
    let env = Env::new().await;
    create_user(&env, "boss", "admin").await;
    create_user(&env, "ops", "operator").await;
    let token = env.token("reader", "operator").await;
    let (url, mut db) = events_db().await;
    let mut hub = env.serve().await;
    let mut seen = Seen::default();

    let mut admin = logged_in(&hub, "boss").await;
    let list = admin.get("/admin/sources").await;
    assert_eq!(list.status, 200, "{}", list.body);
    assert!(list.body.contains("data-test=\"sources\""));
    let form = admin.get("/admin/sources/new").await;
    assert_eq!(form.status, 200, "{}", form.body);
    assert!(
        form.body
            .contains("name=\"password\" type=\"password\" value=\"\"")
    );

    let fields = |settings: &str, enabled: bool| -> Vec<(String, String)> {
        let mut f = vec![
            ("name".to_owned(), "dbwatch".to_owned()),
            ("kind".to_owned(), "sql".to_owned()),
            ("url".to_owned(), url.clone()),
            ("password".to_owned(), SOURCE_PASSWORD.to_owned()),
            ("interval_seconds".to_owned(), "1".to_owned()),
            ("domain".to_owned(), "applications".to_owned()),
            ("settings".to_owned(), settings.to_owned()),
        ];
        if enabled {
            f.push(("enabled".to_owned(), "1".to_owned()));
        }
        f
    };
    // A query that is not a SELECT: refused next to the settings, nothing stored.
    let bad = json!({"query": "DELETE FROM events", "mapping": {"resource": "host"}}).to_string();
    let refused = post(&mut admin, "/admin/sources/new", fields(&bad, false)).await;
    assert_eq!(refused.status, 422, "{}", refused.body);
    assert!(
        refused.body.contains("data-error=\"settings\""),
        "{}",
        refused.body
    );
    seen.add(&refused.body);

    // Defined disabled first, to test it before it polls.
    let created = post(&mut admin, "/admin/sources/new", fields(&settings(), false)).await;
    assert_eq!(created.status, 303, "{}", created.body);
    let list = admin.get("/admin/sources").await;
    assert!(
        list.body.contains("data-source=\"dbwatch\""),
        "{}",
        list.body
    );
    seen.add(&list.body);

    // The test button: what one poll would store, and nothing stored.
    let tested = admin.post("/admin/sources/dbwatch/test", &[]).await;
    assert_eq!(tested.status, 200, "{}", tested.body);
    assert!(
        tested.body.contains("data-test=\"test-count\">3<"),
        "{}",
        tested.body
    );
    for text in ["db-paris-1", "tablespace 91% full", "listener down"] {
        assert!(tested.body.contains(text), "{text} in {}", tested.body);
    }
    seen.add(&tested.body);
    // `vigie source test` finds the console's source too (the password from the key file).
    let (code, out, err) = env.run(&["source", "test", "dbwatch"], None).await;
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("db-lyon-2") && out.contains("\"rows_read\": 3"),
        "{out}"
    );
    assert!(
        !out.contains("Src-Pw") && !err.contains("Src-Pw"),
        "{out}{err}"
    );
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(
        source_alerts(&hub, &token).await.is_empty(),
        "the test stores nothing"
    );

    // Enabled through the edit form, the password left empty (kept): polled at once.
    let edit = admin.get("/admin/sources/dbwatch/edit").await;
    assert_eq!(edit.status, 200, "{}", edit.body);
    assert!(
        edit.body
            .contains("name=\"password\" type=\"password\" value=\"\"")
    );
    seen.add(&edit.body);
    let mut f = fields(&settings(), true);
    f.retain(|(k, _)| k != "password" && k != "name");
    f.push(("password".to_owned(), String::new()));
    let saved = post(&mut admin, "/admin/sources/dbwatch/edit", f).await;
    assert_eq!(saved.status, 303, "{}", saved.body);
    let alerts = wait_for_alerts(&hub, &token, 3).await;
    assert_eq!(alerts.len(), 3, "{alerts:?}");
    assert!(alerts.iter().all(|a| a["domain"] == "applications"));
    assert!(alerts.iter().any(|a| a["resource"] == "db-nice-3"));

    insert(&mut db, 4, "db-lille-4", 2, "deadlock storm").await;
    let alerts = wait_for_alerts(&hub, &token, 4).await;
    assert_eq!(alerts.len(), 4, "{alerts:?}");

    // The list shows its health.
    let list = admin.get("/admin/sources").await;
    let line = &list.body[list.body.find("data-source=\"dbwatch\"").unwrap()..];
    let line = &line[..line.find("</tr>").unwrap()];
    assert!(line.contains("source-ok"), "{line}");
    assert!(!line.contains("data-test=\"rows-read\">0<"), "{line}");
    seen.add(&list.body);

    // Another role: 403 everywhere.
    let mut operator = logged_in(&hub, "ops").await;
    assert_eq!(operator.get("/admin/sources").await.status, 403);
    assert_eq!(operator.get("/admin/sources/new").await.status, 403);
    assert_eq!(
        operator.get("/admin/sources/dbwatch/edit").await.status,
        403
    );
    assert_eq!(
        operator
            .post("/admin/sources/dbwatch/test", &[])
            .await
            .status,
        403
    );

    // Restarted, the hub polls the stored source again (its password decrypted in memory).
    let session = admin.cookie("vigie_session").unwrap().to_owned();
    let (code, output) = hub.stop().await;
    assert_eq!(code, 0, "{output}");
    insert(&mut db, 5, "db-brest-5", 1, "checkpoint too slow").await;
    hub = env.serve().await;
    let alerts = wait_for_alerts(&hub, &token, 5).await;
    assert_eq!(alerts.len(), 5, "{alerts:?}");

    // Deleted after confirmation: gone from the list and no longer polled.
    let mut admin = Browser::new(&hub);
    admin.set_cookie("vigie_session", &session);
    let confirm = admin.get("/admin/sources/dbwatch/delete").await;
    assert_eq!(confirm.status, 200, "{}", confirm.body);
    seen.add(&confirm.body);
    let deleted = admin.post("/admin/sources/dbwatch/delete", &[]).await;
    assert_eq!(deleted.status, 303, "{}", deleted.body);
    let list = admin.get("/admin/sources").await;
    assert!(
        !list.body.contains("data-source=\"dbwatch\""),
        "{}",
        list.body
    );
    seen.add(&list.body);

    // The key file was created for it, private to the hub's user.
    let key = env.dir().join("data").join("sources.key");
    let meta = std::fs::metadata(&key).expect("key file");
    assert_eq!(meta.len(), 32);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    }

    let (_, log) = hub.stop().await;
    assert!(
        !seen.0.contains(SOURCE_PASSWORD),
        "a page showed the password"
    );
    assert!(!seen.0.contains("Src-Pw"), "a page showed the password");
    assert!(
        !output.contains("Src-Pw") && !log.contains("Src-Pw"),
        "the log has the password"
    );
}
