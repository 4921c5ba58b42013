//! `GET /api/v1/syslog`: filters, keyset pages, bad input, authentication and permission.

use actix_web::{App, test, web};
use chrono::{Duration, Utc};
use serde_json::Value;
use vigie_auth::{NewUser, create_token, create_user};
use vigie_core::role::Role;
use vigie_core::store::Store;
use vigie_logs::repo;

use crate::{hub, message};

pub(crate) async fn token(store: &Store, login: &str, role: Role) -> String {
    create_user(
        store,
        NewUser {
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
    create_token(store, login, None).await.unwrap()
}

/// Messages from three hosts over an hour, with known fields.
pub(crate) async fn sample(store: &Store) {
    let now = Utc::now();
    let at = |minutes: i64| now - Duration::minutes(minutes);
    let batch = vec![
        message("<11>Oct 11 22:14:15 rtr1 ifmgr: Gi0/1 down", at(60)),
        message("<14>Oct 11 22:14:15 rtr1 ifmgr: Gi0/1 up", at(50)),
        message(
            "<38>Oct 11 22:14:15 srv1 sshd[1]: Accepted password for bob",
            at(40),
        ),
        message(
            "<34>Oct 11 22:14:15 srv1 sshd[2]: Failed password for 50%_root",
            at(30),
        ),
        message("<131>Oct 11 22:14:15 fw1 pf: Blocked 10.0.0.1", at(20)),
        message("<135>Oct 11 22:14:15 fw1 pf: debug trace", at(10)),
        message(
            r#"<165>1 2026-11-21T08:30:00Z lb1 haproxy 77 ID47 [origin ip="10.1.9.9"] backend pool DEGRADED"#,
            at(5),
        ),
    ];
    repo::insert_batch(store, &batch).await.unwrap();
}

async fn get(store: &Store, token: Option<&str>, uri: &str) -> (u16, Value, Option<String>) {
    let app = test::init_service(
        App::new()
            .app_data(web::Data::new(store.clone()))
            .app_data(web::Data::new(vigie_logs::MessagesStore::shared(
                store.clone(),
            )))
            .configure(vigie_logs::configure),
    )
    .await;
    let mut req = test::TestRequest::get().uri(uri);
    if let Some(t) = token {
        req = req.insert_header(("Authorization", format!("Bearer {t}")));
    }
    let resp = test::call_service(&app, req.to_request()).await;
    let status = resp.status().as_u16();
    let next = resp
        .headers()
        .get("X-Next-Before")
        .map(|v| v.to_str().unwrap().to_owned());
    let body = test::read_body(resp).await;
    (
        status,
        serde_json::from_slice(&body).unwrap_or(Value::Null),
        next,
    )
}

fn hosts(body: &Value) -> Vec<String> {
    body.as_array()
        .unwrap()
        .iter()
        .map(|m| m["host"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn the_api_filters_newest_first() {
    let h = hub().await;
    sample(&h.store).await;
    let t = token(&h.store, "op", Role::Operator).await;
    let t = Some(t.as_str());

    let (status, all, next) = get(&h.store, t, "/api/v1/syslog").await;
    assert_eq!(status, 200);
    assert_eq!(
        hosts(&all),
        ["lb1", "fw1", "fw1", "srv1", "srv1", "rtr1", "rtr1"]
    );
    assert_eq!(next, None);
    let m = &all[0];
    assert_eq!(m["severity"], 5);
    assert_eq!(m["severity_name"], "notice");
    assert_eq!(m["facility_name"], "local4");
    assert_eq!(m["app_name"], "haproxy");
    assert_eq!(m["proc_id"], "77");
    assert_eq!(m["msg_id"], "ID47");
    assert_eq!(m["structured_data"]["origin"]["ip"], "10.1.9.9");
    assert_eq!(m["variant"], "rfc5424");
    assert!(m["id"].as_i64().unwrap() > 0);
    assert!(m["received_at"].as_str().unwrap().ends_with('Z'));

    let (_, b, _) = get(&h.store, t, "/api/v1/syslog?host=srv1").await;
    assert_eq!(hosts(&b), ["srv1", "srv1"]);
    // severity=3: errors and worse (0..=3).
    let (_, b, _) = get(&h.store, t, "/api/v1/syslog?severity=3").await;
    let sev: Vec<i64> = b
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["severity"].as_i64().unwrap())
        .collect();
    assert_eq!(sev, [3, 2, 3]);
    let (_, b, _) = get(&h.store, t, "/api/v1/syslog?severity=crit").await;
    assert_eq!(hosts(&b), ["srv1"]);
    let (_, b, _) = get(&h.store, t, "/api/v1/syslog?facility=auth&app=sshd").await;
    assert_eq!(hosts(&b), ["srv1", "srv1"]);
    let (_, b, _) = get(
        &h.store,
        t,
        "/api/v1/syslog?facility=auth&app=sshd&severity=2",
    )
    .await;
    assert_eq!(b.as_array().unwrap().len(), 1);
    let (_, b, _) = get(&h.store, t, "/api/v1/syslog?facility=local0").await;
    assert_eq!(hosts(&b), ["fw1", "fw1"]);
    // Text: case-insensitive, wildcards literal.
    let (_, b, _) = get(&h.store, t, "/api/v1/syslog?q=degraded").await;
    assert_eq!(hosts(&b), ["lb1"]);
    let (_, b, _) = get(&h.store, t, "/api/v1/syslog?q=50%25_r").await;
    assert_eq!(hosts(&b), ["srv1"]);
    let (_, b, _) = get(&h.store, t, "/api/v1/syslog?q=5_%25").await;
    assert_eq!(hosts(&b), Vec::<String>::new());
    // A time range on the reception time: from included, to excluded.
    let from = (Utc::now() - Duration::minutes(45)).to_rfc3339();
    let to = (Utc::now() - Duration::minutes(15)).to_rfc3339();
    let uri = format!(
        "/api/v1/syslog?from={}&to={}",
        urlencode(&from),
        urlencode(&to)
    );
    let (_, b, _) = get(&h.store, t, &uri).await;
    assert_eq!(hosts(&b), ["fw1", "srv1", "srv1"]);

    // Keyset pages.
    let (_, page1, next) = get(&h.store, t, "/api/v1/syslog?limit=3").await;
    assert_eq!(hosts(&page1), ["lb1", "fw1", "fw1"]);
    let next = next.expect("a full page says where the next starts");
    assert_eq!(next, page1[2]["id"].to_string());
    let (_, page2, _) = get(
        &h.store,
        t,
        &format!("/api/v1/syslog?limit=3&before={next}"),
    )
    .await;
    assert_eq!(hosts(&page2), ["srv1", "srv1", "rtr1"]);
}

fn urlencode(s: &str) -> String {
    s.replace('+', "%2B").replace(':', "%3A")
}

#[tokio::test]
async fn bad_input_is_refused_with_the_field_named() {
    let h = hub().await;
    let t = token(&h.store, "op", Role::Operator).await;
    let t = Some(t.as_str());
    for (query, field) in [
        ("severity=9", "severity"),
        ("severity=loud", "severity"),
        ("facility=mars", "facility"),
        ("from=yesterday", "from"),
        ("to=2026-02-30T00:00:00Z", "to"),
        ("limit=5000", "limit"),
        ("before=abc", "before"),
        ("colour=red", "colour"),
    ] {
        let (status, body, _) = get(&h.store, t, &format!("/api/v1/syslog?{query}")).await;
        assert_eq!(status, 400, "{query}");
        assert_eq!(body["problems"][0]["field"], field, "{query}: {body}");
    }
    let (status, body, _) = get(&h.store, t, "/api/v1/syslog?severity=9&from=x").await;
    assert_eq!(status, 400);
    assert_eq!(
        body["problems"].as_array().unwrap().len(),
        2,
        "every problem at once"
    );
}

#[tokio::test]
async fn a_token_with_the_right_is_required() {
    let h = hub().await;
    sample(&h.store).await;
    let (status, _, _) = get(&h.store, None, "/api/v1/syslog").await;
    assert_eq!(status, 401);
    let (status, _, _) = get(&h.store, Some("vgt_not-a-token"), "/api/v1/syslog").await;
    assert_eq!(status, 401);
    let simple = token(&h.store, "simple", Role::User).await;
    let (status, _, _) = get(&h.store, Some(&simple), "/api/v1/syslog").await;
    assert_eq!(status, 403);
    let manager = token(&h.store, "boss", Role::Manager).await;
    let (status, body, _) = get(&h.store, Some(&manager), "/api/v1/syslog").await;
    assert_eq!(status, 200);
    assert_eq!(body.as_array().unwrap().len(), 7);
}
