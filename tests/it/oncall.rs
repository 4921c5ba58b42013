//! Issue 6's "done when", through the real hub: a critical alert of a domain reaches its person
//! on duty by mail (accepted by a real SMTP server, aiosmtpd) and by the SMS gateway (a local
//! HTTP server); without acknowledgement the next index is told; an acknowledgement through the
//! signed link of the mail stops the chain (the domain's manager is never told).
//!
//! The engine counts its delays in whole minutes (`oncall_escalations.delay_minutes`), so the
//! test does not wait one: once it has seen that a sweep of the engine (every 5 s) tells nobody
//! before the delay, it moves the chain's due time back to its start in the store, as the passing
//! of the minute would, and lets the running hub take the step.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::Utc;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use vigie_core::store::Backend;
use vigie_core::testing;

use crate::support::{Browser, Env, Hub};

/// aiosmtpd writing every accepted message as a JSON line (`modules/notify/tests/smtp_sink.py`).
struct Smtp {
    child: Child,
    port: u16,
    received: Arc<Mutex<Vec<Value>>>,
}

fn python() -> PathBuf {
    match std::env::var("VIGIE_TEST_PYTHON") {
        Ok(p) if !p.is_empty() => PathBuf::from(p),
        _ => PathBuf::from(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/target/test-venv/bin/python"
        )),
    }
}

impl Smtp {
    fn start() -> Smtp {
        let script = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/modules/notify/tests/smtp_sink.py"
        );
        for _ in 0..20 {
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .map(|a| a.port())
                .unwrap();
            let mut child = Command::new(python())
                .arg(script)
                .arg(port.to_string())
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .spawn()
                .unwrap_or_else(|e| {
                    panic!(
                        "cannot start {} (VIGIE_TEST_PYTHON): {e}",
                        python().display()
                    )
                });
            let stdout = child.stdout.take().unwrap();
            let received = Arc::new(Mutex::new(Vec::new()));
            let (ready_tx, ready_rx) = std::sync::mpsc::channel();
            let sink = received.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stdout).lines() {
                    let Ok(line) = line else { break };
                    let Ok(v) = serde_json::from_str::<Value>(&line) else {
                        continue;
                    };
                    if v.get("ready").is_some() {
                        let _ = ready_tx.send(());
                    } else {
                        sink.lock().unwrap().push(v);
                    }
                }
            });
            if ready_rx.recv_timeout(Duration::from_secs(20)).is_ok() {
                return Smtp {
                    child,
                    port,
                    received,
                };
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!("aiosmtpd did not start");
    }

    /// The mails accepted for `to` whose text mentions `resource`.
    fn mails(&self, to: &str, resource: &str) -> Vec<Value> {
        self.received
            .lock()
            .unwrap()
            .iter()
            .filter(|m| {
                m["to"]
                    .as_array()
                    .is_some_and(|a| a.iter().any(|t| t == to))
            })
            .filter(|m| m["text"].as_str().is_some_and(|t| t.contains(resource)))
            .cloned()
            .collect()
    }

    /// Every accepted mail mentioning `resource`, to anyone.
    fn about(&self, resource: &str) -> Vec<Value> {
        self.received
            .lock()
            .unwrap()
            .iter()
            .filter(|m| m.to_string().contains(resource))
            .cloned()
            .collect()
    }
}

impl Drop for Smtp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A local HTTP/1.1 server standing for the SMS gateway: records each request's body and
/// answers like a JSON gateway that queued the message.
struct Gateway {
    port: u16,
    bodies: Arc<Mutex<Vec<String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Gateway {
    async fn start() -> Gateway {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let bodies = Arc::new(Mutex::new(Vec::new()));
        let seen = bodies.clone();
        let task = tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let seen = seen.clone();
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 4096];
                    let end = loop {
                        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                            break i;
                        }
                        match socket.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    };
                    let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
                    let length = head
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:"))
                        .and_then(|v| v.trim().parse::<usize>().ok())
                        .unwrap_or(0);
                    let mut body = buf[end + 4..].to_vec();
                    while body.len() < length {
                        match socket.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => body.extend_from_slice(&chunk[..n]),
                        }
                    }
                    seen.lock()
                        .unwrap()
                        .push(String::from_utf8_lossy(&body).into_owned());
                    let answer = r#"{"status": "queued"}"#;
                    let response = format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{answer}",
                        answer.len()
                    );
                    let _ = socket.write_all(response.as_bytes()).await;
                    let _ = socket.shutdown().await;
                });
            }
        });
        Gateway { port, bodies, task }
    }

    /// The SMS sent to `to` mentioning `resource`, as the JSON bodies the hub posted.
    fn sms(&self, to: &str, resource: &str) -> Vec<Value> {
        self.bodies
            .lock()
            .unwrap()
            .iter()
            .filter_map(|b| serde_json::from_str::<Value>(b).ok())
            .filter(|b| b["to"] == to && b["text"].as_str().is_some_and(|t| t.contains(resource)))
            .collect()
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Waits until `check` holds, or fails after `secs` naming `what`.
async fn until(secs: u64, what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Runs one statement on the hub's database from outside (both backends take `$1`).
async fn store_exec(env: &Env, sql: &'static str, alert_id: i64) -> u64 {
    match testing::backend() {
        Backend::Sqlite => {
            let mut conn = <sqlx::SqliteConnection as sqlx::Connection>::connect(&env.db.url)
                .await
                .unwrap();
            sqlx::query(sql)
                .bind(alert_id)
                .execute(&mut conn)
                .await
                .unwrap()
                .rows_affected()
        }
        Backend::Postgres => {
            let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&env.db.url)
                .await
                .unwrap();
            sqlx::query(sql)
                .bind(alert_id)
                .execute(&mut conn)
                .await
                .unwrap()
                .rows_affected()
        }
    }
}

/// The escalation delay has passed for the alert's chain: its next step is due now.
async fn delay_passes(env: &Env, alert_id: i64) -> u64 {
    store_exec(
        env,
        "UPDATE oncall_escalations SET next_at = started_at WHERE alert_id = $1",
        alert_id,
    )
    .await
}

/// Creates a user through Administration › Users (the console sends its activation mail).
async fn create_user(
    browser: &mut Browser<'_>,
    login: &str,
    role: &str,
    email: &str,
    phone: &str,
    domain: Option<&str>,
) {
    let form = browser.get("/admin/users/new").await;
    assert_eq!(form.status, 200, "{}", form.body);
    let mut fields = vec![
        ("login", login),
        ("last_name", login),
        ("first_name", "Test"),
        ("email", email),
        ("phone", phone),
        ("role", role),
        ("lang", "en"),
    ];
    if let Some(d) = domain {
        fields.push(("domain", d));
    }
    let created = browser.post("/admin/users/new", &fields).await;
    assert_eq!(created.status, 303, "user {login}: {}", created.body);
}

/// Plans `login` on duty for `network` at `index`, from yesterday to tomorrow.
async fn plan(browser: &mut Browser<'_>, login: &str, index: &str) {
    let page = browser.get("/admin/oncall?domain=network").await;
    assert_eq!(page.status, 200, "{}", page.body);
    let fmt = |d: chrono::DateTime<Utc>| d.format("%Y-%m-%dT%H:%M").to_string();
    let starts = fmt(Utc::now() - chrono::Duration::days(1));
    let ends = fmt(Utc::now() + chrono::Duration::days(1));
    let saved = browser
        .post(
            "/admin/oncall/periods",
            &[
                ("domain", "network"),
                ("p_user", login),
                ("p_starts_at", &starts),
                ("p_ends_at", &ends),
                ("p_index", index),
            ],
        )
        .await;
    assert_eq!(saved.status, 303, "period of {login}: {}", saved.body);
}

async fn alert(hub: &Hub, token: &str, id: i64) -> Value {
    let a = hub.get(&format!("/api/v1/alerts/{id}"), Some(token)).await;
    assert_eq!(a.status, 200, "{}", a.body);
    a.json()
}

#[tokio::test]
async fn a_critical_alert_reaches_the_person_on_duty_escalates_and_stops_at_the_ack() {
    let smtp = Smtp::start();
    let gateway = Gateway::start().await;
    let env = Env::new().await.with_config(&format!(
        r#"[smtp]
url = "smtp://127.0.0.1:{smtp}"
from = "vigie@example.org"

[sms]
url = "http://127.0.0.1:{gw}/sms"
method = "POST"
content_type = "application/json"
body = '{{"to": {{{{ to | json_encode() }}}}, "text": {{{{ text | json_encode() }}}}}}'
success_body = '"status"\s*:\s*"queued"'

[oncall]
default_level = 2
escalation_delay = "1m"
"#,
        smtp = smtp.port,
        gw = gateway.port,
    ));
    env.token("root", "admin").await;
    let ops = env.token("ops", "operator").await;
    let hub = env.serve().await;

    // The administrator creates the people and plans them, through the console.
    let mut browser = Browser::new(&hub);
    assert_eq!(
        browser.login("root", "a-long-enough-password").await.status,
        303
    );
    let (first, second, boss) = (
        "first@example.org",
        "second@example.org",
        "boss@example.org",
    );
    create_user(&mut browser, "duty1", "oncall", first, "+33612345001", None).await;
    create_user(
        &mut browser,
        "duty2",
        "oncall",
        second,
        "+33612345002",
        None,
    )
    .await;
    create_user(
        &mut browser,
        "boss",
        "manager",
        boss,
        "+33612345009",
        Some("network"),
    )
    .await;
    plan(&mut browser, "duty1", "1").await;
    plan(&mut browser, "duty2", "2").await;
    let now = hub
        .get("/api/v1/oncall/now?domain=network", Some(&ops))
        .await;
    assert!(
        now.body.contains("duty1") && now.body.contains("duty2"),
        "{} {}",
        now.status,
        now.body
    );

    // A warning is not routed; a critical alert is, at once, to index 1 by mail and SMS.
    let pushed = hub
        .post_json(
            "/api/v1/alerts",
            Some(&ops),
            &json!([
                {"source": "nagios", "resource": "sw-warn-7", "message": "CPU high",
                 "severity": 1, "domain": "network"},
                {"source": "nagios", "resource": "rtr-core-9", "message": "BGP session down",
                 "severity": 2, "domain": "network"}
            ])
            .to_string(),
        )
        .await;
    assert_eq!(pushed.status, 202, "{}", pushed.body);
    let id = pushed.json()["ids"][1].as_i64().unwrap();
    let pushed_at = Instant::now();
    until(10, "the mail of index 1", || {
        !smtp.mails(first, "rtr-core-9").is_empty()
    })
    .await;
    until(10, "the SMS of index 1", || {
        !gateway.sms("+33612345001", "rtr-core-9").is_empty()
    })
    .await;
    let routed = &smtp.mails(first, "rtr-core-9")[0];
    assert!(
        routed["subject"].as_str().unwrap().contains("CRITICAL"),
        "{routed}"
    );

    // One sweep of the engine (every 5 s) passes: still within the delay, nobody else is told.
    tokio::time::sleep(Duration::from_millis(5500).saturating_sub(pushed_at.elapsed())).await;
    assert!(smtp.mails(second, "rtr-core-9").is_empty());
    assert_eq!(smtp.about("rtr-core-9").len(), 1, "only index 1 so far");
    assert_eq!(alert(&hub, &ops, id).await["state"], "new");

    // The delay passes without acknowledgement: index 2 is told, by mail and SMS.
    assert_eq!(delay_passes(&env, id).await, 1);
    until(12, "the mail of index 2", || {
        !smtp.mails(second, "rtr-core-9").is_empty()
    })
    .await;
    until(10, "the SMS of index 2", || {
        !gateway.sms("+33612345002", "rtr-core-9").is_empty()
    })
    .await;
    let escalated = smtp.mails(second, "rtr-core-9")[0].clone();
    assert!(
        escalated["subject"].as_str().unwrap().contains("ESCALATED"),
        "{escalated}"
    );
    assert!(smtp.mails(boss, "rtr-core-9").is_empty());

    // Index 2 acknowledges through the signed link of the mail; the link works once.
    let text = escalated["text"].as_str().unwrap();
    let token = regex::Regex::new(r"/ack/([A-Za-z0-9_\-]+)")
        .unwrap()
        .captures(text)
        .unwrap_or_else(|| panic!("no acknowledgement link in {text}"))[1]
        .to_owned();
    let shown = hub.get(&format!("/ack/{token}"), None).await;
    assert_eq!(shown.status, 200, "{}", shown.body);
    assert_eq!(
        alert(&hub, &ops, id).await["state"],
        "new",
        "GET changes nothing"
    );
    let acked = hub
        .request("POST", &format!("/ack/{token}"), None, None, b"")
        .await;
    assert_eq!(acked.status, 200, "{}", acked.body);
    let again = hub
        .request("POST", &format!("/ack/{token}"), None, None, b"")
        .await;
    assert_eq!(again.status, 410, "single use: {}", again.body);
    let acknowledged = alert(&hub, &ops, id).await;
    assert_eq!(acknowledged["state"], "acknowledged", "{acknowledged}");

    // The next delay passes too: the chain stopped, the manager is never told.
    delay_passes(&env, id).await;
    let told = smtp.about("rtr-core-9").len();
    let texts = gateway.bodies.lock().unwrap().len();
    tokio::time::sleep(Duration::from_millis(6000)).await;
    assert!(
        smtp.mails(boss, "rtr-core-9").is_empty(),
        "the manager is not told"
    );
    assert!(gateway.sms("+33612345009", "rtr-core-9").is_empty());
    assert_eq!(smtp.about("rtr-core-9").len(), told, "nobody else is told");
    assert_eq!(gateway.bodies.lock().unwrap().len(), texts);
    assert_eq!(
        smtp.about("rtr-core-9").len(),
        2,
        "one mail to index 1, one to index 2"
    );
    assert_eq!(alert(&hub, &ops, id).await["state"], "acknowledged");
    // The warning reached nobody.
    assert!(smtp.about("sw-warn-7").is_empty());
    assert!(gateway.sms("+33612345001", "sw-warn-7").is_empty());
    hub.stop().await;
}
