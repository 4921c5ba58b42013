//! The alert board end to end: actions over the API and the console, the state machine, the
//! live stream with its resume, and two hub processes sharing one PostgreSQL.

use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use vigie_core::on_pool;
use vigie_core::store::Backend;
use vigie_core::testing;

use crate::support::{Browser, Env, Hub};

const PASSWORD: &str = "a-long-enough-password";

async fn push(hub: &Hub, token: &str, resource: &str, message: &str, severity: i64) -> i64 {
    let answer = hub
        .post_json(
            "/api/v1/alerts",
            Some(token),
            &json!({"source": "nms", "resource": resource, "message": message, "severity": severity}).to_string(),
        )
        .await;
    assert_eq!(answer.status, 202, "{}", answer.body);
    answer.json()["ids"][0].as_i64().expect("id")
}

async fn person(env: &Env, login: &str, role: &str, email: Option<&str>) {
    let mut args = vec![
        "user",
        "create",
        "--login",
        login,
        "--role",
        role,
        "--password-stdin",
    ];
    if let Some(e) = email {
        args.extend(["--email", e]);
    }
    let (code, _, err) = env.run(&args, Some(&format!("{PASSWORD}\n"))).await;
    assert_eq!(code, 0, "{err}");
}

async fn state(hub: &Hub, token: &str, id: i64) -> String {
    hub.get(&format!("/api/v1/alerts/{id}"), Some(token))
        .await
        .json()["state"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test]
async fn actions_follow_the_state_machine_from_the_api_and_the_console() {
    let env = Env::new().await;
    let op = env.token("op", "operator").await;
    let mgr = env.token("mgr", "manager").await;
    person(&env, "astreinte1", "oncall", Some("astreinte1@example.org")).await;
    let hub = env.serve().await;
    let a = push(&hub, &op, "rtr-1", "link down", 2).await;
    let b = push(&hub, &op, "srv-2", "disk full", 1).await;
    let c = push(&hub, &op, "sw-3", "fan", 0).await;

    // The board: open alerts, most critical first, with counts.
    let board = hub.get("/api/v1/alerts/board", Some(&mgr)).await;
    assert_eq!(board.status, 200);
    let ids: Vec<i64> = board.json()["alerts"]
        .as_array()
        .expect("alerts")
        .iter()
        .filter_map(|a| a["id"].as_i64())
        .collect();
    assert_eq!(ids, [a, b, c]);
    assert_eq!(board.json()["counts"].as_array().map(Vec::len), Some(3));

    // A manager sees but does not act.
    assert_eq!(
        hub.post_json(&format!("/api/v1/alerts/{a}/ack"), Some(&mgr), "")
            .await
            .status,
        403
    );
    let ack = hub
        .post_json(&format!("/api/v1/alerts/{a}/ack"), Some(&op), "")
        .await;
    assert_eq!(ack.status, 200, "{}", ack.body);
    assert_eq!(state(&hub, &op, a).await, "acknowledged");
    assert_eq!(
        hub.post_json(&format!("/api/v1/alerts/{a}/ack"), Some(&op), "")
            .await
            .status,
        409
    );

    // Defer: bad times name the field; a deferred alert leaves the board.
    let past = hub
        .post_json(
            &format!("/api/v1/alerts/{b}/defer"),
            Some(&op),
            r#"{"until":"2001-01-01T00:00:00Z"}"#,
        )
        .await;
    assert_eq!(past.status, 400);
    assert_eq!(past.problem_fields(), ["until"]);
    let until = (chrono::Utc::now() + chrono::Duration::hours(2)).to_rfc3339();
    let deferred = hub
        .post_json(
            &format!("/api/v1/alerts/{b}/defer"),
            Some(&op),
            &json!({"until": until}).to_string(),
        )
        .await;
    assert_eq!(deferred.status, 200, "{}", deferred.body);
    let board = hub.get("/api/v1/alerts/board", Some(&op)).await.json();
    let ids: Vec<i64> = board["alerts"]
        .as_array()
        .expect("alerts")
        .iter()
        .filter_map(|a| a["id"].as_i64())
        .collect();
    assert_eq!(ids, [a, c]);

    // Transfer to an on-call person: a mail in the outbox; someone else is refused by name.
    let refused = hub
        .post_json(
            &format!("/api/v1/alerts/{c}/transfer"),
            Some(&op),
            r#"{"to":["mgr"]}"#,
        )
        .await;
    assert_eq!(refused.status, 400);
    let sent = hub
        .post_json(
            &format!("/api/v1/alerts/{c}/transfer"),
            Some(&op),
            r#"{"to":["astreinte1"]}"#,
        )
        .await;
    assert_eq!(sent.status, 200, "{}", sent.body);
    assert_eq!(state(&hub, &op, c).await, "transferred");
    let store = env.db.store().await.expect("store");
    let mails: Vec<(String, String)> = on_pool!(&store, pool => sqlx::query_as(
        "SELECT recipient, body_text FROM outbox WHERE kind = 'alert.transfer'",
    )
    .fetch_all(pool)
    .await)
    .expect("outbox");
    assert_eq!(mails.len(), 1);
    assert_eq!(mails[0].0, "astreinte1@example.org");
    assert!(
        mails[0].1.contains("sw-3") && mails[0].1.contains(&format!("/alerts/{c}")),
        "{}",
        mails[0].1
    );

    // Archive: the same event later opens a new alert; delete is final.
    assert_eq!(
        hub.request(
            "DELETE",
            &format!("/api/v1/alerts/{a}?archive=true"),
            Some(&op),
            None,
            b""
        )
        .await
        .status,
        200
    );
    assert_eq!(state(&hub, &op, a).await, "archived");
    let again = push(&hub, &op, "rtr-1", "link down", 2).await;
    assert_ne!(again, a, "an archived alert absorbs no duplicate");
    assert_eq!(
        hub.request(
            "DELETE",
            &format!("/api/v1/alerts/{again}"),
            Some(&op),
            None,
            b""
        )
        .await
        .status,
        200
    );
    assert_eq!(state(&hub, &op, again).await, "deleted");
    assert_eq!(
        hub.post_json(&format!("/api/v1/alerts/{again}/archive"), Some(&op), "")
            .await
            .status,
        409
    );

    // Bulk, with each alert's outcome.
    let bulk = hub
        .post_json(
            "/api/v1/alerts/actions",
            Some(&op),
            &json!({"ids": [b, c, 999_999], "action": "archive"}).to_string(),
        )
        .await;
    assert_eq!(bulk.status, 200, "{}", bulk.body);
    let outcomes: Vec<Value> = bulk.json().as_array().cloned().unwrap_or_default();
    assert_eq!(outcomes[2]["refused"], "not_found");
    assert!(outcomes[0]["refused"].is_null() && outcomes[1]["refused"].is_null());

    // The console: the operator acts from the alert's page; the history names them.
    let d = push(&hub, &op, "fw-4", "failover", 2).await;
    let mut browser = Browser::new(&hub);
    assert_eq!(
        browser.login("op", "a-long-enough-password").await.status,
        303
    );
    let board = browser.get("/alerts").await;
    assert_eq!(board.status, 200);
    assert!(
        board.body.contains(&format!("data-id=\"{d}\"")),
        "{}",
        board.body
    );
    let page = browser.get(&format!("/alerts/{d}")).await;
    assert!(
        page.body.contains("data-test=\"open-incident\""),
        "the incident link is offered"
    );
    let done = browser
        .post(&format!("/alerts/{d}/action"), &[("action", "ack")])
        .await;
    assert_eq!(done.status, 303);
    let page = browser.get(&format!("/alerts/{d}")).await;
    assert!(page.body.contains("data-test=\"alert-history\""));
    assert!(page.body.contains("<td>op</td>"), "who acted");
    let confirm = browser.get(&format!("/alerts/{d}/delete")).await;
    assert!(confirm.body.contains("data-test=\"delete-warning\""));
    // Without the CSRF token nothing happens.
    assert_eq!(
        browser
            .post_raw(&format!("/alerts/{d}/action"), &[("action", "archive")])
            .await
            .status,
        403
    );
    assert_eq!(state(&hub, &op, d).await, "acknowledged");

    // A manager's console: the board, but no action.
    let mut manager = Browser::new(&hub);
    assert_eq!(manager.login("mgr", PASSWORD).await.status, 303);
    assert_eq!(manager.get("/alerts").await.status, 200);
    manager.get(&format!("/alerts/{d}")).await;
    assert_eq!(
        manager
            .post(&format!("/alerts/{d}/action"), &[("action", "archive")])
            .await
            .status,
        403
    );
    assert_eq!(state(&hub, &op, d).await, "acknowledged");

    let actions: Vec<String> = on_pool!(&store, pool => sqlx::query_scalar(
        "SELECT action FROM audit_log WHERE action LIKE 'alert.%' ORDER BY id",
    )
    .fetch_all(pool)
    .await)
    .expect("audit");
    for step in [
        "alert.ack",
        "alert.defer",
        "alert.transfer",
        "alert.archive",
        "alert.delete",
    ] {
        assert!(
            actions.contains(&step.to_owned()),
            "{step} audited: {actions:?}"
        );
    }
    store.close().await;
    hub.stop().await;
}

/// An open SSE connection, read as text.
struct Stream {
    tcp: TcpStream,
    seen: String,
}

impl Stream {
    async fn open(hub: &Hub, token: &str, last_event_id: Option<&str>) -> Stream {
        let mut tcp = TcpStream::connect(&hub.address).await.expect("connect");
        let mut head = format!(
            "GET /api/v1/alerts/stream HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {token}\r\nAccept: text/event-stream\r\n",
            hub.address
        );
        if let Some(id) = last_event_id {
            head.push_str(&format!("Last-Event-ID: {id}\r\n"));
        }
        head.push_str("\r\n");
        tcp.write_all(head.as_bytes()).await.expect("request");
        let mut s = Stream {
            tcp,
            seen: String::new(),
        };
        s.until("retry:").await;
        s
    }

    /// Reads until `needle` was seen (after what was consumed), or panics after 15 s (the suite
    /// runs many hubs at once on two cores).
    async fn until(&mut self, needle: &str) -> String {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        let mut buf = [0u8; 8192];
        loop {
            if let Some(i) = self.seen.find(needle) {
                let end = self.seen[i..]
                    .find("\n\n")
                    .map_or(self.seen.len(), |e| i + e + 2);
                let taken: String = self.seen.drain(..end).collect();
                return taken;
            }
            let n = tokio::time::timeout_at(deadline, self.tcp.read(&mut buf))
                .await
                .unwrap_or_else(|_| panic!("`{needle}` not streamed in 15 s; got: {}", self.seen))
                .expect("read");
            assert!(n > 0, "stream closed; got: {}", self.seen);
            self.seen.push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    }
}

fn last_id(frame: &str) -> String {
    frame
        .lines()
        .filter_map(|l| l.strip_prefix("id: "))
        .next_back()
        .expect("an event id")
        .to_owned()
}

#[tokio::test]
async fn the_stream_delivers_changes_live_and_resumes_after_a_disconnection() {
    let env = Env::new().await;
    let op = env.token("op", "operator").await;
    let hub = env.serve().await;
    let mut stream = Stream::open(&hub, &op, None).await;
    let first = push(&hub, &op, "live-1", "first", 2).await;
    let frame = stream.until("live-1").await;
    assert!(frame.contains("event: alert"), "{frame}");
    let seen = last_id(&frame);
    // An action streams too.
    let acked = hub
        .post_json(&format!("/api/v1/alerts/{first}/ack"), Some(&op), "")
        .await;
    assert_eq!(acked.status, 200, "{}", acked.body);
    let frame = stream.until("acknowledged").await;
    let seen_after_ack = last_id(&frame);
    assert_ne!(seen, seen_after_ack);
    drop(stream);

    // Missed while away, delivered on reconnection.
    push(&hub, &op, "live-2", "while away", 1).await;
    let mut again = Stream::open(&hub, &op, Some(&seen_after_ack)).await;
    let frame = again.until("live-2").await;
    assert!(frame.contains("while away"));
    // Closed before the stop, which would otherwise wait for the stream's connection.
    drop(again);
    // Without the right, no stream.
    let viewer = env.token("someone", "user").await;
    assert_eq!(
        hub.get("/api/v1/alerts/stream", Some(&viewer)).await.status,
        403
    );
    hub.stop().await;
}

/// Two hub processes on one PostgreSQL: an alert pushed to one reaches the other's stream.
/// (The embedded SQLite store serves one process only, so this runs on PostgreSQL.)
#[tokio::test]
async fn two_hub_processes_share_the_live_board_on_postgres() {
    if testing::backend() != Backend::Postgres {
        return;
    }
    let env = Env::new().await;
    let op = env.token("op", "operator").await;
    let one = env.serve().await;
    let two = env.serve().await;
    let mut on_two = Stream::open(&two, &op, None).await;
    push(&one, &op, "cross-1", "pushed to the first", 2).await;
    let frame = on_two.until("cross-1").await;
    assert!(frame.contains("pushed to the first"));
    one.stop().await;
    two.stop().await;
}

#[tokio::test]
async fn maintenance_windows_keep_covered_alerts_off_the_board_until_they_end() {
    let env = Env::new().await;
    let op = env.token("op", "operator").await;
    let hub = env.serve().await;
    let mut browser = Browser::new(&hub);
    assert_eq!(browser.login("op", PASSWORD).await.status, 303);
    browser.get("/alerts/maintenance").await;
    // Bad input: each problem by its field, nothing saved.
    let bad = browser
        .post(
            "/alerts/maintenance",
            &[
                ("name", ""),
                ("starts_at", "2026-01-02T10:00"),
                ("ends_at", "2026-01-01T10:00"),
                ("recurrence", "hourly"),
            ],
        )
        .await;
    assert_eq!(bad.status, 422);
    for field in ["name", "ends_at", "recurrence", "resource_pattern"] {
        assert!(
            bad.body.contains(&format!("data-error=\"{field}\"")),
            "{field}"
        );
    }
    let now = chrono::Utc::now();
    let fmt = |t: chrono::DateTime<chrono::Utc>| t.format("%Y-%m-%dT%H:%M").to_string();
    let saved = browser
        .post(
            "/alerts/maintenance",
            &[
                ("name", "Paris routers upgrade"),
                ("domain", "network"),
                ("resource_pattern", "rtr-*-paris"),
                ("starts_at", &fmt(now - chrono::Duration::minutes(5))),
                ("ends_at", &fmt(now + chrono::Duration::hours(1))),
                ("recurrence", "none"),
            ],
        )
        .await;
    assert_eq!(saved.status, 303, "{}", saved.body);
    let covered = hub
        .post_json("/api/v1/alerts", Some(&op), &json!({"source": "nms", "resource": "rtr-core-paris", "message": "reboot", "domain": "network", "severity": 2}).to_string())
        .await;
    let covered = covered.json()["ids"][0].as_i64().expect("id");
    let other = hub
        .post_json("/api/v1/alerts", Some(&op), &json!({"source": "nms", "resource": "rtr-core-lyon", "message": "down", "domain": "network", "severity": 2}).to_string())
        .await;
    let other = other.json()["ids"][0].as_i64().expect("id");
    // The feed marks new alerts right after their commit; give it a moment.
    let mut on_board = Vec::new();
    for _ in 0..50 {
        let board = hub.get("/api/v1/alerts/board", Some(&op)).await.json();
        on_board = board["alerts"]
            .as_array()
            .expect("alerts")
            .iter()
            .filter_map(|a| a["id"].as_i64())
            .collect();
        if !on_board.contains(&covered) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(on_board, [other], "stored, but off the board");
    assert_eq!(
        hub.get(&format!("/api/v1/alerts/{covered}"), Some(&op))
            .await
            .json()["in_maintenance"],
        true
    );
    let page = browser.get("/alerts/maintenance").await;
    assert!(
        page.body.contains("rtr-core-paris"),
        "shown in the maintenance view"
    );
    // The window ends (deleted): the still-open alert comes back.
    let id = {
        let at = page.body.find("/alerts/maintenance/").expect("delete form") + 20;
        page.body[at..at + page.body[at..].find('/').expect("id end")].to_owned()
    };
    assert_eq!(
        browser
            .post(&format!("/alerts/maintenance/{id}/delete"), &[])
            .await
            .status,
        303
    );
    let board = hub.get("/api/v1/alerts/board", Some(&op)).await.json();
    let ids: Vec<i64> = board["alerts"]
        .as_array()
        .expect("alerts")
        .iter()
        .filter_map(|a| a["id"].as_i64())
        .collect();
    assert!(ids.contains(&covered) && ids.contains(&other), "{ids:?}");
    hub.stop().await;
}
