//! The log viewer: list and filters, keyset pages, live tail, CSV export, messages around a
//! time, bad input, and the permission, through the console's real session handling.

use actix_web::cookie::Cookie;
use actix_web::http::header;
use actix_web::{App, test, web};
use chrono::{Duration, Utc};
use serde_json::Value;
use vigie_auth::session::{SessionPolicy, open};
use vigie_auth::{NewUser, create_user};
use vigie_console::{Console, ConsoleSettings};
use vigie_core::audit::Actor;
use vigie_core::role::Role;
use vigie_core::store::Store;
use vigie_logs::repo;

use crate::api::sample;
use crate::{hub, message};

async fn session(store: &Store, login: &str, role: Role) -> String {
    let user_id = create_user(
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
    let actor = Actor {
        user_id,
        login: login.into(),
        role,
    };
    open(store, &actor, None, None, SessionPolicy::default(), false)
        .await
        .unwrap()
}

struct Answer {
    status: u16,
    headers: header::HeaderMap,
    body: String,
}

impl Answer {
    fn header(&self, name: &str) -> String {
        self.headers
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default()
    }
}

async fn get(store: &Store, cookie: Option<&str>, uri: &str) -> Answer {
    let console = Console::start(ConsoleSettings::default(), store)
        .await
        .unwrap();
    let app = test::init_service(
        App::new()
            .app_data(web::Data::new(store.clone()))
            .app_data(web::Data::new(vigie_logs::MessagesStore::shared(
                store.clone(),
            )))
            .app_data(web::Data::new(console))
            .configure(vigie_logs::configure)
            .configure(vigie_console::configure),
    )
    .await;
    let mut req = test::TestRequest::get()
        .uri(uri)
        .insert_header(("Accept-Language", "en"));
    if let Some(c) = cookie {
        req = req.cookie(Cookie::new("vigie_session", c.to_owned()));
    }
    let resp = test::call_service(&app, req.to_request()).await;
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let body = String::from_utf8(test::read_body(resp).await.to_vec()).unwrap();
    Answer {
        status,
        headers,
        body,
    }
}

/// The ids of the rows of the viewer's table, in order.
fn row_hosts(html: &str) -> Vec<String> {
    html.split("<tr class=\"sev-")
        .skip(1)
        .map(|row| {
            let start = row.find("/logs?host=").unwrap() + "/logs?host=".len();
            row[start..].split('"').next().unwrap().to_owned()
        })
        .collect()
}

#[tokio::test]
async fn the_viewer_lists_filters_and_pages() {
    let h = hub().await;
    sample(&h.store).await;
    let c = session(&h.store, "op", Role::Operator).await;
    let c = Some(c.as_str());

    let a = get(&h.store, c, "/logs").await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert!(a.body.contains("Syslog messages"));
    assert!(a.body.contains("/static/logs.js"));
    assert!(!a.body.contains("<script>"), "no inline script");
    assert_eq!(
        row_hosts(&a.body),
        ["lb1", "fw1", "fw1", "srv1", "srv1", "rtr1", "rtr1"]
    );
    assert!(
        a.body.contains("<tr class=\"sev-3\""),
        "severities are coloured by class"
    );
    assert!(a.body.contains("data-live-toggle"));
    assert!(a.body.contains("backend pool DEGRADED"));

    let a = get(&h.store, c, "/logs?severity=3&host=srv1").await;
    assert_eq!(row_hosts(&a.body), ["srv1"]);
    assert!(a.body.contains("<option value=\"3\" selected>"));
    assert!(
        a.body.contains("/logs/export.csv?host=srv1&amp;severity=3"),
        "export keeps the filters"
    );

    // Times typed in the viewer's zone (UTC here), datetime-local style.
    let from = (Utc::now() - Duration::minutes(45)).format("%Y-%m-%dT%H:%M:%S");
    let to = (Utc::now() - Duration::minutes(15)).format("%Y-%m-%dT%H:%M:%S");
    let a = get(
        &h.store,
        c,
        &format!("/logs?from={from}&to={to}&facility=auth"),
    )
    .await;
    assert_eq!(row_hosts(&a.body), ["srv1", "srv1"]);
    let a = get(&h.store, c, &format!("/logs?from={from}&to={to}")).await;
    assert_eq!(row_hosts(&a.body), ["fw1", "srv1", "srv1"]);
    let a = get(&h.store, c, "/logs?q=degraded&app=haproxy").await;
    assert_eq!(row_hosts(&a.body), ["lb1"]);

    // More than a page: a link to the older ones.
    let now = Utc::now();
    let batch: Vec<_> = (0..120)
        .map(|n| message(&format!("<13>Oct 11 22:14:15 bulk app: m{n}"), now))
        .collect();
    repo::insert_batch(&h.store, &batch).await.unwrap();
    let a = get(&h.store, c, "/logs?host=bulk").await;
    assert_eq!(row_hosts(&a.body).len(), 100);
    let start = a.body.find("&amp;before=").expect("an older page") + "&amp;before=".len();
    let before: String = a.body[start..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    let a = get(&h.store, c, &format!("/logs?host=bulk&before={before}")).await;
    assert_eq!(row_hosts(&a.body).len(), 20);
    assert!(a.body.contains("m19<") && !a.body.contains("m20<"));
    assert!(
        !a.body.contains("data-live-toggle"),
        "no live tail on older pages"
    );
}

#[tokio::test]
async fn the_live_tail_sends_what_is_new() {
    let h = hub().await;
    sample(&h.store).await;
    let c = session(&h.store, "op", Role::Operator).await;
    let c = Some(c.as_str());
    let newest = repo::list(
        &h.store,
        &vigie_logs::filter::LogFilter {
            limit: 1,
            ..Default::default()
        },
    )
    .await
    .unwrap()[0]
        .id;
    let a = get(&h.store, c, &format!("/logs/tail?after={newest}")).await;
    assert_eq!(a.status, 200);
    let tail: Value = serde_json::from_str(&a.body).unwrap();
    assert_eq!(tail["rows"].as_array().unwrap().len(), 0);
    assert_eq!(tail["last_id"], newest);

    let now = Utc::now();
    repo::insert_batch(
        &h.store,
        &[
            message("<11>Oct 11 22:14:15 rtr9 ifmgr: new one", now),
            message("<14>Oct 11 22:14:15 rtr9 ifmgr: new two", now),
            message("<11>Oct 11 22:14:15 other ifmgr: elsewhere", now),
        ],
    )
    .await
    .unwrap();
    let a = get(&h.store, c, &format!("/logs/tail?after={newest}&host=rtr9")).await;
    let tail: Value = serde_json::from_str(&a.body).unwrap();
    let rows = tail["rows"].as_array().unwrap();
    let texts: Vec<&str> = rows
        .iter()
        .map(|r| r["message"].as_str().unwrap())
        .collect();
    assert_eq!(texts, ["new two", "new one"]);
    assert_eq!(rows[1]["severity"], 3);
    assert_eq!(rows[1]["severity_name"], "err");
    assert_eq!(rows[1]["app"], "ifmgr");
    assert_eq!(tail["last_id"], rows[0]["id"]);
    assert_eq!(
        rows[0]["time"].as_str().unwrap().len(),
        19,
        "formatted in the viewer's zone"
    );

    let a = get(&h.store, c, "/logs/tail?after=zero").await;
    assert_eq!(a.status, 400);
    let body: Value = serde_json::from_str(&a.body).unwrap();
    assert_eq!(body["problems"][0]["field"], "after");
}

#[tokio::test]
async fn the_csv_export_is_quoted_and_safe_for_spreadsheets() {
    let h = hub().await;
    let now = Utc::now();
    repo::insert_batch(
        &h.store,
        &[
            message(
                "<11>Oct 11 22:14:15 srv1 app: plain, with a comma and \"quotes\"",
                now,
            ),
            message(
                "<11>Oct 11 22:14:15 srv1 app: =HYPERLINK(\"http://x\",\"y\")",
                now,
            ),
            message("<11>Oct 11 22:14:15 srv1 app: @SUM(A1:A9)", now),
            {
                let mut m = message("<11>Oct 11 22:14:15 srv1 app: x", now);
                m.message = "-1+2".into();
                m
            },
            message("<11>Oct 11 22:14:15 other app: not exported", now),
        ],
    )
    .await
    .unwrap();
    let c = session(&h.store, "op", Role::Operator).await;
    let a = get(&h.store, Some(&c), "/logs/export.csv?host=srv1").await;
    assert_eq!(a.status, 200);
    assert_eq!(
        a.header(header::CONTENT_TYPE.as_str()),
        "text/csv; charset=utf-8"
    );
    let disposition = a.header(header::CONTENT_DISPOSITION.as_str());
    assert!(
        disposition.starts_with("attachment; filename=\"vigie-syslog-"),
        "{disposition}"
    );
    assert_eq!(a.header("X-Export-Rows"), "4");
    assert!(
        a.body
            .contains("\"plain, with a comma and \"\"quotes\"\"\""),
        "{}",
        a.body
    );

    let mut reader = csv::Reader::from_reader(a.body.as_bytes());
    let headers = reader.headers().unwrap().clone();
    let message = headers.iter().position(|h| h == "message").unwrap();
    let host = headers.iter().position(|h| h == "host").unwrap();
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    let messages: Vec<&str> = rows.iter().map(|r| &r[message]).collect();
    assert_eq!(
        messages,
        [
            "'-1+2",
            "'@SUM(A1:A9)",
            "'=HYPERLINK(\"http://x\",\"y\")",
            "plain, with a comma and \"quotes\"",
        ]
    );
    assert!(rows.iter().all(|r| &r[host] == "srv1"));

    let a = get(&h.store, Some(&c), "/logs/export.csv?severity=12").await;
    assert_eq!(a.status, 400);
    let body: Value = serde_json::from_str(&a.body).unwrap();
    assert_eq!(body["problems"][0]["field"], "severity");
}

#[tokio::test]
async fn around_shows_the_host_five_minutes_either_side() {
    let h = hub().await;
    let at = Utc::now() - Duration::hours(1);
    let m = |line: &str, minutes: i64| message(line, at + Duration::minutes(minutes));
    repo::insert_batch(
        &h.store,
        &[
            m("<11>Oct 11 22:14:15 rtr1 x: too early", -6),
            m("<11>Oct 11 22:14:15 rtr1 x: before it", -4),
            m("<11>Oct 11 22:14:15 other x: another host", 0),
            m("<11>Oct 11 22:14:15 rtr1 x: after it", 4),
            m("<11>Oct 11 22:14:15 rtr1 x: too late", 6),
        ],
    )
    .await
    .unwrap();
    let c = session(&h.store, "boss", Role::Manager).await;
    let uri = format!(
        "/logs/around?host=rtr1&at={}",
        at.to_rfc3339().replace('+', "%2B")
    );
    let a = get(&h.store, Some(&c), &uri).await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert!(a.body.contains("data-test=\"around\""));
    let before = a.body.find("before it").expect("before it");
    let after = a.body.find("after it").expect("after it");
    assert!(before < after, "oldest first");
    for absent in ["too early", "too late", "another host"] {
        assert!(!a.body.contains(absent), "{absent}");
    }

    let a = get(&h.store, Some(&c), "/logs/around?host=rtr1&at=noon").await;
    assert_eq!(a.status, 400);
    assert!(a.body.contains("data-error=\"at\""));
    let a = get(&h.store, Some(&c), "/logs/around?at=2026-11-21T08:00:00Z").await;
    assert_eq!(a.status, 400);
    assert!(a.body.contains("data-error=\"host\""));
}

#[tokio::test]
async fn bad_filters_are_a_400_page_naming_the_field() {
    let h = hub().await;
    let c = session(&h.store, "op", Role::Operator).await;
    for (query, field) in [
        ("severity=x", "severity"),
        ("from=31/12/2026", "from"),
        ("to=tomorrow", "to"),
        ("facility=99", "facility"),
    ] {
        let a = get(&h.store, Some(&c), &format!("/logs?{query}")).await;
        assert_eq!(a.status, 400, "{query}");
        assert!(
            a.body.contains(&format!("data-error=\"{field}\"")),
            "{query}: {}",
            a.body
        );
    }
    // What was typed is shown back, escaped.
    let a = get(&h.store, Some(&c), "/logs?severity=%3Cb%3E").await;
    assert!(a.body.contains("&lt;b&gt;") || !a.body.contains("<b>"));
}

#[tokio::test]
async fn only_viewers_with_the_right_get_in() {
    let h = hub().await;
    sample(&h.store).await;
    let a = get(&h.store, None, "/logs").await;
    assert_eq!(a.status, 303);
    assert!(
        a.header(header::LOCATION.as_str())
            .starts_with("/login?next=%2Flogs")
    );
    let simple = session(&h.store, "simple", Role::User).await;
    for uri in [
        "/logs",
        "/logs/tail?after=1",
        "/logs/export.csv",
        "/logs/around?host=a&at=2026-11-21T08:00:00Z",
    ] {
        let a = get(&h.store, Some(&simple), uri).await;
        assert_eq!(a.status, 403, "{uri}");
        assert!(!a.body.contains("rtr1"), "{uri}");
    }
    let oncall = session(&h.store, "duty", Role::Oncall).await;
    assert_eq!(get(&h.store, Some(&oncall), "/logs").await.status, 403);
}
