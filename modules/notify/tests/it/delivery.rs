//! Each channel against its real peer; retries, dead letters and the administrator's retry.

use std::collections::BTreeMap;

use serde_json::json;
use tokio::sync::watch;
use vigie_notify::settings::{SmsGateway, Webhook, WebhookKind};
use vigie_notify::{Channel, admin, render, spawn_worker};

use crate::support::{HttpPeer, Smtp, count_in, db, settings, state, until};
use crate::{enqueue, message};

#[tokio::test]
async fn a_mail_reaches_the_smtp_server_with_text_html_and_accents() {
    let db = db().await;
    let smtp = Smtp::start();
    let context = json!({
        "recipient": { "name": "Hélène Dupré" },
        "alert": {
            "id": 9, "level": "critical", "domain": "réseau", "source": "zabbix",
            "resource": "cœur-sw-1", "message": "Lien coupé <port 12> & plus",
            "first_seen": "2026-11-21T09:00:00Z", "count": 1,
            "url": "https://vigie.example.org/alerts/9",
        },
        "ack_url": "https://vigie.example.org/ack/xyz",
    });
    let r = render(&db.store, "alert.routed", Channel::Mail, "fr", &context)
        .await
        .unwrap();
    assert!(r.subject.contains("réseau"), "{}", r.subject);
    let html = r.html.clone().unwrap();
    assert!(
        html.contains("&lt;port 12&gt; &amp; plus"),
        "HTML escaped: {html}"
    );
    assert!(
        r.text.contains("<port 12> & plus"),
        "text not escaped: {}",
        r.text
    );

    let mut m = message(Channel::Mail, "helene@example.org", &r.subject, &r.text);
    m.html = r.html.clone();
    m.kind = "alert.routed".into();
    m.dedupe_key = Some("alert:9:user:1:step:1".into());
    let id = enqueue(&db.store, &m).await;
    // Same key again: the same row, nothing more queued.
    assert_eq!(enqueue(&db.store, &m).await, id);

    let (_stop_tx, stop) = watch::channel(false);
    let worker = spawn_worker(db.store.clone(), settings(Some(smtp.url())), stop);
    until(20, "the mail at the SMTP server", || async {
        smtp.count() >= 1
    })
    .await;
    let got = smtp.received.lock().unwrap()[0].clone();
    assert_eq!(got["subject"], json!(r.subject));
    assert!(got["subject"].as_str().unwrap().contains("cœur-sw-1"));
    assert_eq!(got["to"], json!(["helene@example.org"]));
    assert!(
        got["text"]
            .as_str()
            .unwrap()
            .contains("Lien coupé <port 12> & plus")
    );
    assert!(
        got["html"]
            .as_str()
            .unwrap()
            .contains("<blockquote>Lien coupé &lt;port 12&gt;")
    );
    let mid = got["message_id"].as_str().unwrap();
    assert!(
        mid.starts_with(&format!("<outbox-{id}.")) && mid.ends_with("@example.org>"),
        "{mid}"
    );
    until(10, "the sent mark", || async {
        state(&db.store, id).await.0 == "sent"
    })
    .await;
    let d = admin::get(&db.store, id).await.unwrap().unwrap();
    assert_eq!(d.line.message_id.as_deref(), Some(mid));
    assert_eq!(d.line.attempts, 1);
    // Sent once: nothing else arrives.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(smtp.count(), 1);
    worker.abort();
}

#[tokio::test]
async fn smtp_permanent_rejection_dead_letters_at_once_and_temporary_retries() {
    let db = db().await;
    let smtp = Smtp::start();
    let rejected = enqueue(
        &db.store,
        &message(Channel::Mail, "reject-me@example.org", "x", "y"),
    )
    .await;
    let tempfail = enqueue(
        &db.store,
        &message(Channel::Mail, "tempfail-me@example.org", "x", "y"),
    )
    .await;
    let bad = enqueue(
        &db.store,
        &message(Channel::Mail, "not an address", "x", "y"),
    )
    .await;
    let (_stop_tx, stop) = watch::channel(false);
    let worker = spawn_worker(db.store.clone(), settings(Some(smtp.url())), stop);
    until(20, "the dead letters", || async {
        state(&db.store, rejected).await.0 == "dead"
            && state(&db.store, bad).await.0 == "dead"
            && state(&db.store, tempfail).await.0 == "dead"
    })
    .await;
    let (_, attempts, error) = state(&db.store, rejected).await;
    assert_eq!(attempts, 1, "a 5xx reply is not retried");
    assert!(error.unwrap().contains("550"));
    assert_eq!(state(&db.store, bad).await.1, 1);
    let (_, attempts, error) = state(&db.store, tempfail).await;
    assert_eq!(attempts, 5, "a 4xx reply is retried up to max_attempts");
    assert!(error.unwrap().contains("after 5 attempts"));
    assert_eq!(smtp.count(), 0);
    worker.abort();
}

fn gateway(url: String) -> SmsGateway {
    SmsGateway {
        url,
        method: "POST".into(),
        headers: BTreeMap::from([("Authorization".into(), "Bearer s3cret".into())]),
        body: Some(r#"{"recipient": {{ to | json_encode() }}, "message": {{ text | json_encode() }}, "sender": "VIGIE"}"#.into()),
        content_type: Some("application/json".into()),
        success_body: Some(r#""status"\s*:\s*"queued""#.into()),
        timeout_secs: 5,
    }
}

#[tokio::test]
async fn the_sms_gateway_receives_the_rendered_body() {
    let db = db().await;
    let peer = HttpPeer::start(|_, _| (200, r#"{"status": "queued", "id": "abc"}"#.into())).await;
    let context = json!({
        "alert": { "level": "critical", "domain": "réseau", "source": "zabbix",
                   "resource": "sw-1", "message": "Lien \"coupé\"" },
    });
    let r = render(&db.store, "alert.routed", Channel::Sms, "fr", &context)
        .await
        .unwrap();
    assert_eq!(r.text, "Vigie CRITICAL réseau : sw-1 Lien \"coupé\"");
    let id = enqueue(
        &db.store,
        &message(Channel::Sms, "+33612345678", "", &r.text),
    )
    .await;
    let bad_number = enqueue(&db.store, &message(Channel::Sms, "0612345678", "", "x")).await;
    let mut s = settings(None);
    s.sms = Some(gateway(peer.url("/api/sms")));
    let (_stop_tx, stop) = watch::channel(false);
    let worker = spawn_worker(db.store.clone(), s, stop);
    until(20, "the SMS sent", || async {
        state(&db.store, id).await.0 == "sent"
    })
    .await;
    let requests = peer.requests();
    assert_eq!(
        requests.len(),
        1,
        "the bad number never reaches the gateway"
    );
    let req = &requests[0];
    assert_eq!(
        (req.method.as_str(), req.path.as_str()),
        ("POST", "/api/sms")
    );
    assert_eq!(req.header("authorization"), Some("Bearer s3cret"));
    assert_eq!(
        req.json(),
        json!({ "recipient": "+33612345678", "message": r.text, "sender": "VIGIE" })
    );
    until(10, "the bad number dead", || async {
        state(&db.store, bad_number).await.0 == "dead"
    })
    .await;
    assert!(
        state(&db.store, bad_number)
            .await
            .2
            .unwrap()
            .contains("E.164")
    );
    worker.abort();
}

#[tokio::test]
async fn a_gateway_answer_that_fails_the_success_test_is_not_a_success() {
    let db = db().await;
    let peer = HttpPeer::start(|_, _| (200, r#"{"status": "rejected"}"#.into())).await;
    let id = enqueue(&db.store, &message(Channel::Sms, "+33612345678", "", "x")).await;
    let mut s = settings(None);
    s.sms = Some(gateway(peer.url("/")));
    let (_stop_tx, stop) = watch::channel(false);
    let worker = spawn_worker(db.store.clone(), s, stop);
    until(20, "dead", || async {
        state(&db.store, id).await.0 == "dead"
    })
    .await;
    assert!(
        state(&db.store, id)
            .await
            .2
            .unwrap()
            .contains("success_body")
    );
    worker.abort();
}

fn hook(name: &str, kind: WebhookKind, url: String) -> Webhook {
    Webhook {
        name: name.into(),
        kind,
        url,
        headers: BTreeMap::new(),
        timeout_secs: 5,
    }
}

#[tokio::test]
async fn http_4xx_dead_letters_at_once_5xx_retries_then_succeeds_and_the_admin_retries() {
    let db = db().await;
    // /flaky answers 503 twice then 200; /strict answers 400 until it is fixed.
    let fixed = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let fixed_peer = fixed.clone();
    let flaky_count = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let peer = HttpPeer::start(move |_, req| {
        if req.path == "/flaky" {
            let n = flaky_count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            if n < 2 {
                (503, "{}".into())
            } else {
                (200, "{}".into())
            }
        } else if fixed_peer.load(std::sync::atomic::Ordering::SeqCst) {
            (204, String::new())
        } else {
            (400, r#"{"error": "bad payload"}"#.into())
        }
    })
    .await;
    let mut s = settings(None);
    s.webhooks = vec![
        hook("flaky", WebhookKind::Json, peer.url("/flaky")),
        hook("strict", WebhookKind::Json, peer.url("/strict")),
    ];
    let flaky = enqueue(
        &db.store,
        &message(Channel::Webhook, "flaky", "Subject", "Body"),
    )
    .await;
    let strict = enqueue(&db.store, &message(Channel::Webhook, "strict", "S", "B")).await;
    let unknown = enqueue(&db.store, &message(Channel::Webhook, "nowhere", "S", "B")).await;
    let (_stop_tx, stop) = watch::channel(false);
    let worker = spawn_worker(db.store.clone(), s, stop);
    until(20, "flaky sent, strict dead", || async {
        state(&db.store, flaky).await.0 == "sent" && state(&db.store, strict).await.0 == "dead"
    })
    .await;
    assert_eq!(state(&db.store, flaky).await.1, 3, "two 503 then 200");
    let (_, attempts, error) = state(&db.store, strict).await;
    assert_eq!(attempts, 1, "4xx is not retried");
    assert!(error.unwrap().contains("400"));
    until(10, "unknown webhook dead", || async {
        state(&db.store, unknown).await.0 == "dead"
    })
    .await;
    let body = peer
        .requests()
        .into_iter()
        .find(|r| r.path == "/flaky")
        .unwrap()
        .json();
    assert_eq!(body["id"], json!(flaky));
    assert_eq!(body["subject"], json!("Subject"));
    assert!(
        body["message_id"]
            .as_str()
            .unwrap()
            .starts_with(&format!("<outbox-{flaky}."))
    );

    // The dead-letter list shows it with its error; the administrator retries once fixed.
    let dead = admin::list(&db.store, Some("dead"), None, 50)
        .await
        .unwrap();
    assert!(
        dead.iter()
            .any(|l| l.id == strict && l.last_error.as_deref().unwrap_or("").contains("400"))
    );
    fixed.store(true, std::sync::atomic::Ordering::SeqCst);
    let actor = crate::admin(&db.store).await;
    admin::retry(&db.store, &actor, Some("127.0.0.1"), strict)
        .await
        .unwrap();
    vigie_notify::wake();
    until(20, "strict sent after the retry", || async {
        state(&db.store, strict).await.0 == "sent"
    })
    .await;
    // Retrying a message that is not dead is refused and changes nothing.
    assert!(admin::retry(&db.store, &actor, None, strict).await.is_err());
    assert_eq!(state(&db.store, strict).await.0, "sent");
    let audit = vigie_core::audit::search(
        &db.store,
        &vigie_core::audit::Filter {
            action: Some("notify.retry".into()),
            limit: 50,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(audit.len(), 1);
    assert_eq!(
        audit[0].target_id.as_deref(),
        Some(strict.to_string().as_str())
    );
    assert_eq!(count_in(&db.store, "sent").await, 2);
    worker.abort();
}

#[tokio::test]
async fn each_webhook_kind_gets_its_payload_shape() {
    let db = db().await;
    let peer = HttpPeer::start(|_, _| (200, "ok".into())).await;
    let mut s = settings(None);
    s.webhooks = vec![
        hook("slack", WebhookKind::Slack, peer.url("/slack")),
        hook("teams", WebhookKind::Teams, peer.url("/teams")),
        hook("discord", WebhookKind::Discord, peer.url("/discord")),
    ];
    let long = "é".repeat(2500);
    for name in ["slack", "teams"] {
        enqueue(
            &db.store,
            &message(Channel::Webhook, name, "Alerte", "Lien coupé"),
        )
        .await;
    }
    enqueue(&db.store, &message(Channel::Webhook, "discord", "", &long)).await;
    let (_stop_tx, stop) = watch::channel(false);
    let worker = spawn_worker(db.store.clone(), s, stop);
    until(20, "three webhooks sent", || async {
        count_in(&db.store, "sent").await == 3
    })
    .await;
    let by_path = |p: &str| {
        peer.requests()
            .into_iter()
            .find(|r| r.path == p)
            .unwrap()
            .json()
    };
    assert_eq!(by_path("/slack"), json!({ "text": "Alerte\nLien coupé" }));
    let teams = by_path("/teams");
    assert_eq!(teams["type"], json!("message"));
    let card = &teams["attachments"][0];
    assert_eq!(
        card["contentType"],
        json!("application/vnd.microsoft.card.adaptive")
    );
    assert_eq!(card["content"]["type"], json!("AdaptiveCard"));
    assert_eq!(card["content"]["body"][0]["text"], json!("Alerte"));
    assert_eq!(card["content"]["body"][1]["text"], json!("Lien coupé"));
    let discord = by_path("/discord");
    assert_eq!(discord["content"].as_str().unwrap().chars().count(), 2000);
    worker.abort();
}
