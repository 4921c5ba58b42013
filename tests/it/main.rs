//! End-to-end tests: the real `vigie` binary, started on a fresh database of the suite's backend
//! (`VIGIE_TEST_DATABASE`), driven over HTTP and its command line.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod board;
mod console;
mod hosts;
mod incidents;
mod oncall;
mod sources_admin;
mod support;
mod syslog;

use serde_json::{Value, json};
use support::Env;
use vigie_core::store::Backend;
use vigie_core::testing;

async fn push(hub: &support::Hub, token: &str, body: Value) -> support::Answer {
    hub.post_json("/api/v1/alerts", Some(token), &body.to_string())
        .await
}

async fn alerts(hub: &support::Hub, token: &str, query: &str) -> Vec<Value> {
    let answer = hub
        .get(&format!("/api/v1/alerts{query}"), Some(token))
        .await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    answer.json().as_array().cloned().unwrap_or_default()
}

#[tokio::test]
async fn first_start_creates_an_administrator_and_prints_the_password_once() {
    let env = Env::new().await;
    let mut hub = env.serve().await;
    let output = hub.output();
    let line = output
        .lines()
        .find(|l| l.contains("Initial administrator created"))
        .unwrap_or_else(|| panic!("no admin line in:\n{output}"));
    assert!(line.contains("login `admin`"), "{line}");
    let password = line
        .split("one-time password `")
        .nth(1)
        .and_then(|rest| rest.split('`').next())
        .unwrap();
    assert!(password.len() >= 16, "{line}");
    let (code, output) = hub.stop().await;
    assert_eq!(code, 0, "{output}");
    assert_eq!(
        output.matches(password).count(),
        1,
        "the password is printed once, never logged"
    );

    let mut again = env.serve().await;
    assert!(!again.output().contains("Initial administrator"));
    again.stop().await;
}

#[tokio::test]
async fn a_pushed_alert_comes_back_qualified_by_the_default_rules() {
    let env = Env::new().await;
    let token = env.token("ops", "operator").await;
    let hub = env.serve().await;
    let answer = push(
        &hub,
        &token,
        json!({"source": "syslog", "resource": "rtr-core-1", "message": "Interface Gi0/1 down",
               "source_severity": 1, "source_ref": "msg-1", "occurred_at": "2026-11-21T08:30:00+01:00",
               "attributes": {"facility": "local7"}}),
    )
    .await;
    assert_eq!(answer.status, 202, "{}", answer.body);
    let id = answer.json()["ids"][0].as_i64().unwrap();
    assert_eq!(answer.json()["results"][0]["effect"], "created");

    let alert = hub
        .get(&format!("/api/v1/alerts/{id}"), Some(&token))
        .await
        .json();
    assert_eq!(alert["severity"], 2);
    assert_eq!(alert["source_severity"], 1);
    assert_eq!(alert["domain"], "network");
    assert_eq!(alert["message"], "rtr-core-1 Interface Gi0/1 down");
    assert_eq!(alert["state"], "new");
    assert_eq!(alert["count"], 0);
    assert_eq!(alert["source_ref"], "msg-1");
    assert_eq!(alert["occurred_at"], "2026-11-21T07:30:00Z");
    assert_eq!(alert["attributes"]["facility"], "local7");
    for field in ["fingerprint", "received_at", "last_seen"] {
        assert!(alert[field].is_string(), "{field} in {alert}");
    }
    for field in ["incident_id", "cleared_at"] {
        assert!(alert[field].is_null(), "{field} in {alert}");
    }
    // Not significant on the syslog scale: dropped, nothing stored.
    let debug = push(&hub, &token, json!({"source": "syslog", "resource": "rtr-core-1", "message": "debug", "source_severity": 7})).await;
    assert_eq!(debug.json()["results"][0]["effect"], "dropped");
    assert!(debug.json()["ids"][0].is_null());
    assert_eq!(alerts(&hub, &token, "").await.len(), 1);

    let missing = hub.get("/api/v1/alerts/999999", Some(&token)).await;
    assert_eq!(missing.status, 404);
    assert_eq!(
        hub.get("/api/v1/alerts/abc", Some(&token)).await.status,
        400
    );
}

#[tokio::test]
async fn duplicates_count_and_the_same_source_ref_is_stored_once() {
    let env = Env::new().await;
    let token = env.token("ops", "operator").await;
    let hub = env.serve().await;
    let alert = |n: u32, r: &str| json!({"source": "nagios", "resource": "srv1", "message": format!("disk {n}% full"), "severity": 1, "source_ref": r});
    let first = push(&hub, &token, alert(91, "a")).await.json();
    let batch = push(
        &hub,
        &token,
        json!([alert(92, "b"), alert(93, "c"), alert(92, "b")]),
    )
    .await;
    assert_eq!(batch.status, 202);
    let effects: Vec<Value> = batch.json()["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["effect"].clone())
        .collect();
    assert_eq!(
        effects,
        [
            json!("deduplicated"),
            json!("deduplicated"),
            json!("replayed")
        ]
    );
    let again = push(&hub, &token, alert(91, "a")).await.json();
    assert_eq!(again["results"][0]["effect"], "replayed");
    assert_eq!(again["ids"][0], first["ids"][0]);

    let list = alerts(&hub, &token, "?source=nagios").await;
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["count"], 2);
    assert_eq!(list[0]["message"], "disk 93% full");

    // Cleared by the source, then listed by state.
    let clear = push(
        &hub,
        &token,
        json!({"source": "nagios", "resource": "srv1", "message": "disk ok", "clear": true}),
    )
    .await;
    assert_eq!(clear.json()["results"][0]["effect"], "cleared");
    let cleared = alerts(&hub, &token, "?state=cleared&severity=1&q=DISK").await;
    assert_eq!(cleared.len(), 1);
    assert!(cleared[0]["cleared_at"].is_string());
    assert!(alerts(&hub, &token, "?state=new").await.is_empty());
}

#[tokio::test]
async fn bad_input_is_refused_with_the_field_and_nothing_is_stored() {
    let env = Env::new()
        .await
        .with_config("[http]\nmax_body_bytes = 65536\nmax_batch = 50\n");
    let token = env.token("ops", "operator").await;
    let hub = env.serve().await;
    let ok = json!({"source": "s", "resource": "r", "message": "m"});
    let cases: Vec<(String, u16, &str)> = vec![
        (
            r#"{"source": "s", "resource": "r", "message": "m""#.into(),
            400,
            "body",
        ),
        (
            r#"{"source": "s", "resource": "r", "message": "m", "colour": "red"}"#.into(),
            400,
            "colour",
        ),
        (r#"{"source": "s", "resource": "r"}"#.into(), 400, "message"),
        (
            r#"{"source": "s", "resource": 5, "message": "m"}"#.into(),
            400,
            "resource",
        ),
        (
            r#"{"source": "s", "resource": "r", "message": "m", "occurred_at": "21/11/2026"}"#
                .into(),
            400,
            "occurred_at",
        ),
        (
            r#"{"source": "s", "resource": "r", "message": "m", "severity": 3}"#.into(),
            400,
            "severity",
        ),
        (
            r#"{"source": "s", "resource": "r", "message": "m", "domain": "space"}"#.into(),
            400,
            "domain",
        ),
        (
            format!(
                "[{ok}, {}]",
                r#"{"source": "s", "resource": "", "message": "m"}"#
            ),
            400,
            "[1].resource",
        ),
        (
            format!(
                "[{ok}, {}]",
                r#"{"source": "s", "resource": "r", "message": "m", "severity": -1}"#
            ),
            400,
            "[1].severity",
        ),
        ("[]".into(), 400, "body"),
    ];
    for (body, status, field) in &cases {
        let answer = hub.post_json("/api/v1/alerts", Some(&token), body).await;
        assert_eq!(answer.status, *status, "{body} -> {}", answer.body);
        assert!(
            answer.problem_fields().iter().any(|f| f == field),
            "{body}: expected a problem on `{field}`, got {}",
            answer.body
        );
        assert!(answer.json()["error"].is_string());
    }
    // Too large: the body, then the number of alerts in a batch.
    let big = format!(
        r#"{{"source": "s", "resource": "r", "message": "{}"}}"#,
        "x".repeat(70_000)
    );
    let answer = hub.post_json("/api/v1/alerts", Some(&token), &big).await;
    assert_eq!(answer.status, 413, "{}", answer.body);
    let many: Vec<Value> = (0..51)
        .map(|i| json!({"source": "s", "resource": format!("r{i}"), "message": "m"}))
        .collect();
    let answer = push(&hub, &token, Value::Array(many)).await;
    assert_eq!(answer.status, 413, "{}", answer.body);
    assert!(answer.json()["error"].as_str().unwrap().contains("51"));
    // Not JSON at all.
    let answer = hub
        .request(
            "POST",
            "/api/v1/alerts",
            Some(&token),
            Some("text/plain"),
            b"hello",
        )
        .await;
    assert_eq!(answer.status, 415);
    // A bad list query is named too.
    let answer = hub
        .get("/api/v1/alerts?severity=9&limit=0", Some(&token))
        .await;
    assert_eq!(answer.status, 400);
    assert_eq!(answer.problem_fields(), ["severity", "limit"]);

    assert!(
        alerts(&hub, &token, "").await.is_empty(),
        "nothing was half-stored"
    );
}

#[tokio::test]
async fn tokens_and_roles_are_checked_on_every_route() {
    let env = Env::new().await;
    let operator = env.token("op", "operator").await;
    let manager = env.token("boss", "manager").await;
    let user = env.token("jo", "user").await;
    let admin = env.token("root2", "admin").await;
    let hub = env.serve().await;
    let body = json!({"source": "s", "resource": "r", "message": "m"}).to_string();
    let post = |token: Option<&str>| {
        let token = token.map(str::to_owned);
        let hub = &hub;
        let body = body.clone();
        async move {
            hub.post_json("/api/v1/alerts", token.as_deref(), &body)
                .await
                .status
        }
    };
    let get = |token: Option<&str>| {
        let token = token.map(str::to_owned);
        let hub = &hub;
        async move { hub.get("/api/v1/alerts", token.as_deref()).await.status }
    };
    let unauthenticated = hub.get("/api/v1/alerts", None).await;
    assert_eq!(unauthenticated.status, 401);
    assert_eq!(unauthenticated.header("www-authenticate"), Some("Bearer"));
    assert_eq!(get(Some("vgt_0000")).await, 401);
    assert_eq!(post(None).await, 401);
    // Pushing is for integrations (operator or admin tokens); reading is for operators and managers.
    assert_eq!(post(Some(&operator)).await, 202);
    assert_eq!(post(Some(&admin)).await, 202);
    assert_eq!(post(Some(&manager)).await, 403);
    assert_eq!(post(Some(&user)).await, 403);
    assert_eq!(get(Some(&operator)).await, 200);
    assert_eq!(get(Some(&manager)).await, 200);
    assert_eq!(get(Some(&user)).await, 403);
    assert_eq!(get(Some(&admin)).await, 403);
    let reload = |token: String| {
        let hub = &hub;
        async move {
            hub.request("POST", "/api/v1/rules/reload", Some(&token), None, b"")
                .await
                .status
        }
    };
    assert_eq!(reload(operator.clone()).await, 403);
    assert_eq!(reload(admin.clone()).await, 200);
    assert_eq!(hub.get("/nowhere", None).await.status, 404);
}

#[tokio::test]
async fn health_readiness_and_metrics() {
    let env = Env::new().await;
    let token = env.token("ops", "operator").await;
    let hub = env.serve().await;
    assert_eq!(hub.get("/healthz", None).await.status, 200);
    assert_eq!(hub.get("/readyz", None).await.status, 200);
    push(&hub, &token, json!([{"source": "s", "resource": "a", "message": "m"}, {"source": "s", "resource": "a", "message": "m"}])).await;
    let metrics = hub.get("/metrics", None).await;
    assert_eq!(metrics.status, 200);
    assert!(
        metrics
            .header("content-type")
            .unwrap()
            .starts_with("text/plain")
    );
    let text = metrics.body;
    assert!(
        text.contains(r#"vigie_ingest_records_total{effect="created"} 1"#),
        "{text}"
    );
    assert!(
        text.contains(r#"vigie_ingest_records_total{effect="deduplicated"} 1"#),
        "{text}"
    );
    assert!(text.contains("vigie_ingest_queue_depth 0"), "{text}");
    assert!(text.contains("vigie_ingest_batch_seconds_bucket"), "{text}");
    assert!(text.contains("vigie_http_request_seconds_bucket"), "{text}");
}

/// Runs one administrative statement built by the test (database names it generated).
async fn admin_sql(conn: &mut sqlx::PgConnection, sql: String) {
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .execute(conn)
        .await
        .unwrap();
}

#[tokio::test]
async fn a_store_that_is_down_refuses_pushes_and_loses_nothing() {
    let env = Env::new().await;
    let token = env.token("ops", "operator").await;
    let hub = env.serve().await;
    let accepted = push(
        &hub,
        &token,
        json!({"source": "s", "resource": "before", "message": "m"}),
    )
    .await;
    assert_eq!(accepted.status, 202);
    match testing::backend() {
        Backend::Postgres => {
            // Take the database away from under the hub, then give it back.
            let name = env.db.url.rsplit('/').next().unwrap().to_owned();
            let admin = testing::pg_admin_url();
            let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&admin)
                .await
                .unwrap();
            let hidden = format!("{name}_away");
            admin_sql(
                &mut conn,
                format!("ALTER DATABASE {name} ALLOW_CONNECTIONS false"),
            )
            .await;
            admin_sql(&mut conn, format!("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'")).await;
            admin_sql(
                &mut conn,
                format!("ALTER DATABASE {name} RENAME TO {hidden}"),
            )
            .await;

            assert_eq!(hub.get("/readyz", None).await.status, 503);
            let refused = push(
                &hub,
                &token,
                json!({"source": "s", "resource": "during", "message": "m"}),
            )
            .await;
            assert_eq!(refused.status, 503, "{}", refused.body);
            assert!(refused.header("retry-after").is_some());

            admin_sql(
                &mut conn,
                format!("ALTER DATABASE {hidden} RENAME TO {name}"),
            )
            .await;
            admin_sql(
                &mut conn,
                format!("ALTER DATABASE {name} ALLOW_CONNECTIONS true"),
            )
            .await;
            let mut ready = false;
            for _ in 0..100 {
                if hub.get("/readyz", None).await.status == 200 {
                    ready = true;
                    break;
                }
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
            assert!(ready, "the hub recovers when the store is back");
        }
        Backend::Sqlite => {
            // The embedded store cannot vanish; what it can do is refuse writes. Hold its write
            // lock from outside past the hub's busy timeout.
            let mut conn = <sqlx::SqliteConnection as sqlx::Connection>::connect(&env.db.url)
                .await
                .unwrap();
            sqlx::query("BEGIN EXCLUSIVE")
                .execute(&mut conn)
                .await
                .unwrap();
            sqlx::query("INSERT INTO source_checkpoints (source, position, updated_at) VALUES ('lock', '0', '2026-01-01T00:00:00Z')")
                .execute(&mut conn).await.unwrap();
            let refused = push(
                &hub,
                &token,
                json!({"source": "s", "resource": "during", "message": "m"}),
            )
            .await;
            assert_eq!(refused.status, 503, "{}", refused.body);
            assert!(refused.header("retry-after").is_some());
            sqlx::query("ROLLBACK").execute(&mut conn).await.unwrap();
        }
    }
    let after = push(
        &hub,
        &token,
        json!({"source": "s", "resource": "after", "message": "m"}),
    )
    .await;
    assert_eq!(after.status, 202, "{}", after.body);
    let resources: Vec<String> = alerts(&hub, &token, "")
        .await
        .iter()
        .map(|a| a["resource"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        resources,
        ["after", "before"],
        "everything accepted is there, nothing refused is"
    );
}

#[tokio::test]
async fn a_normal_stop_loses_nothing_accepted() {
    let env = Env::new().await;
    let token = env.token("ops", "operator").await;
    let hub = env.serve().await;
    let hub = std::sync::Arc::new(hub);
    let mut clients = Vec::new();
    for c in 0..8 {
        let hub = hub.clone();
        let token = token.clone();
        clients.push(tokio::spawn(async move {
            let mut accepted = 0;
            for i in 0..40 {
                let body =
                    json!({"source": "load", "resource": format!("h{c}-{i}"), "message": "m"})
                        .to_string();
                if hub
                    .post_json("/api/v1/alerts", Some(&token), &body)
                    .await
                    .status
                    == 202
                {
                    accepted += 1;
                }
            }
            accepted
        }));
    }
    tokio::time::sleep(std::time::Duration::from_millis(150)).await;
    let pid = hub.pid().to_string();
    tokio::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .await
        .unwrap();
    let mut accepted = 0;
    for c in clients {
        accepted += c.await.unwrap();
    }
    let hub = std::sync::Arc::into_inner(hub).expect("only handle");
    let (code, output) = hub.stop_after_signal().await;
    assert_eq!(code, 0, "{output}");
    assert!(output.contains("Ingestion queue drained"), "{output}");

    let hub = env.serve().await;
    let stored = alerts(&hub, &token, "?source=load&limit=1000").await.len();
    assert_eq!(stored, accepted, "every 202 is stored, nothing else");
    assert!(accepted > 0);
}

#[tokio::test]
async fn rules_reload_through_the_api() {
    let env = Env::new().await;
    let rules = env.dir().join("rules.toml");
    std::fs::write(
        &rules,
        "[[rules]]\nname = \"everything-low\"\nset = { severity = 0 }\n",
    )
    .unwrap();
    let env = env.with_config(&format!(
        "[pipeline]\nrules_file = {:?}\n",
        rules.display().to_string()
    ));
    let admin = env.token("adm", "admin").await;
    let operator = env.token("ops", "operator").await;
    let mut hub = env.serve().await;
    let pushed = push(
        &hub,
        &admin,
        json!({"source": "s", "resource": "r1", "message": "m", "severity": 2}),
    )
    .await;
    assert_eq!(pushed.status, 202);

    std::fs::write(
        &rules,
        "[[rules]]\nname = \"bad\"\nwhen = { message = \"(\" }\nset = { severity = 1 }\n",
    )
    .unwrap();
    let refused = hub
        .request("POST", "/api/v1/rules/reload", Some(&admin), None, b"")
        .await;
    assert_eq!(refused.status, 400, "{}", refused.body);
    assert!(
        refused
            .problem_fields()
            .iter()
            .any(|f| f.contains("when.message")),
        "{}",
        refused.body
    );

    std::fs::write(
        &rules,
        "[[rules]]\nname = \"a\"\nset = { severity = 1 }\n\n[[rules]]\nname = \"b\"\ndrop = true\n",
    )
    .unwrap();
    let reloaded = hub
        .request("POST", "/api/v1/rules/reload", Some(&admin), None, b"")
        .await;
    assert_eq!(reloaded.status, 200, "{}", reloaded.body);
    assert_eq!(reloaded.json()["rules"], 2);

    // `kill -HUP` reloads too: every alert now becomes critical.
    std::fs::write(
        &rules,
        "[[rules]]\nname = \"all-critical\"\nset = { severity = 2 }\n",
    )
    .unwrap();
    let pid = hub.pid().to_string();
    tokio::process::Command::new("kill")
        .args(["-HUP", &pid])
        .status()
        .await
        .unwrap();
    let mut reloaded = false;
    for _ in 0..200 {
        if hub.output().contains("reloaded (SIGHUP)") {
            reloaded = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(reloaded, "the hub reloads its rules on SIGHUP");
    let body = json!({"source": "s", "resource": "after-hup", "message": "m", "severity": 0});
    let id = push(&hub, &admin, body).await.json()["ids"][0]
        .as_i64()
        .unwrap();
    let alert = hub
        .get(&format!("/api/v1/alerts/{id}"), Some(&operator))
        .await
        .json();
    assert_eq!(alert["severity"], 2);
}

#[tokio::test]
async fn check_config_reports_every_bad_key() {
    let env = Env::new().await.with_config(
        "[http]\nlisten = \"localhost:80\"\nmax_batch = 0\n\n[pipeline]\nsubmit_timeout = \"soon\"\n\n[[sources]]\nname = \"glpi\"\nkind = \"glpy\"\nurl = \"mysql://u:secret@db/glpi\"\n\n[bogus]\nx = 1\n",
    );
    let (code, out, _) = env.run(&["check-config"], None).await;
    assert_eq!(code, 1, "{out}");
    for key in [
        "http.listen",
        "http.max_batch",
        "pipeline.submit_timeout",
        "sources[0].kind",
        "bogus",
    ] {
        assert!(
            out.lines().any(|l| l.starts_with(key)),
            "no line for {key} in:\n{out}"
        );
    }
    assert!(!out.contains("secret"), "passwords are never shown: {out}");
    // And `serve` refuses to start with them.
    let (code, _, err) = env.run(&["serve"], None).await;
    assert_eq!(code, 1);
    assert!(err.contains("http.listen"), "{err}");

    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/config/vigie.example.toml");
    let (code, out, _) = Env::new()
        .await
        .run(&["check-config", "--config", example], None)
        .await;
    assert_eq!(code, 0, "{out}");
}

#[tokio::test]
async fn the_command_line_refuses_clearly() {
    let env = Env::new().await;
    env.token("ops", "operator").await;
    let (code, _, err) = env
        .run(
            &[
                "user",
                "create",
                "--login",
                "ops",
                "--role",
                "operator",
                "--password-stdin",
            ],
            Some("another-password\n"),
        )
        .await;
    assert_eq!(code, 1);
    assert!(err.contains("already taken"), "{err}");
    let (code, _, err) = env
        .run(&["user", "create", "--login", "x", "--role", "root"], None)
        .await;
    assert_ne!(code, 0);
    assert!(err.contains("root"), "{err}");
    let (code, _, err) = env
        .run(&["token", "create", "--login", "ghost"], None)
        .await;
    assert_eq!(code, 1);
    assert!(err.contains("ghost"), "{err}");
    let (code, out, _) = env
        .run(
            &["user", "create", "--login", "new1", "--role", "manager"],
            None,
        )
        .await;
    assert_eq!(code, 0);
    assert!(out.contains("one-time password"), "{out}");
    let (code, out, _) = env.run(&["migrate"], None).await;
    assert_eq!(code, 0, "{out}");
}
