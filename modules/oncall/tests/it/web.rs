//! The API (`/api/v1/oncall/now`) and the console pages, through the real session handling.

use actix_web::cookie::Cookie;
use actix_web::{App, test, web};
use serde_json::Value;
use vigie_auth::session::{SessionPolicy, open};
use vigie_console::{Console, ConsoleSettings};
use vigie_core::audit::Actor;
use vigie_core::domain::Domains;
use vigie_core::role::Role;
use vigie_core::store::Store;

use crate::{admin, db, period, planning_rows, user};

async fn call(store: &Store, req: test::TestRequest) -> (u16, String) {
    let console = Console::start(ConsoleSettings::default(), store)
        .await
        .unwrap();
    let app = test::init_service(
        App::new()
            .app_data(web::Data::new(store.clone()))
            .app_data(web::Data::new(console))
            .app_data(web::Data::new(Domains::default()))
            .configure(vigie_oncall::api::configure)
            .configure(vigie_oncall::pages::configure)
            .configure(vigie_console::configure),
    )
    .await;
    let resp = test::call_service(&app, req.to_request()).await;
    let status = resp.status().as_u16();
    let location = resp
        .headers()
        .get("location")
        .map(|v| v.to_str().unwrap().to_owned());
    let body = String::from_utf8(test::read_body(resp).await.to_vec()).unwrap();
    (status, location.unwrap_or(body))
}

fn api(uri: &str, token: Option<&str>) -> test::TestRequest {
    let mut req = test::TestRequest::get().uri(uri);
    if let Some(b) = token {
        req = req.insert_header(("Authorization", format!("Bearer {b}")));
    }
    req
}

#[tokio::test]
async fn the_api_answers_who_is_on_duty_lowest_index_first() {
    let d = db().await;
    let s = &d.store;
    let a = admin(s).await;
    user(s, "zed", Role::Oncall).await;
    user(s, "amy", Role::Oncall).await;
    user(s, "bob", Role::Oncall).await;
    let now = vigie_core::time::now();
    let from = (now - chrono::Duration::hours(1)).to_rfc3339();
    let to = (now + chrono::Duration::hours(1)).to_rfc3339();
    period(s, &a, "network", "zed", &from, &to, 1).await;
    period(s, &a, "network", "bob", &from, &to, 2).await;
    period(s, &a, "network", "amy", &from, &to, 1).await;
    user(s, "reader", Role::User).await;
    let token = vigie_auth::create_token(s, "reader", None).await.unwrap();

    let (status, body) = call(s, api("/api/v1/oncall/now?domain=network", Some(&token))).await;
    assert_eq!(status, 200, "{body}");
    let list: Value = serde_json::from_str(&body).unwrap();
    let got: Vec<(String, i64)> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["login"].as_str().unwrap().to_owned(),
                p["index"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            ("amy".to_owned(), 1),
            ("zed".to_owned(), 1),
            ("bob".to_owned(), 2)
        ]
    );
    assert_eq!(list[0]["email"], "amy@example.org");

    // `at` asks about another moment.
    let later = (now + chrono::Duration::hours(2)).to_rfc3339();
    let uri = format!(
        "/api/v1/oncall/now?domain=network&at={}",
        later.replace('+', "%2B")
    );
    let (status, body) = call(s, api(&uri, Some(&token))).await;
    assert_eq!((status, body.as_str()), (200, "[]"));

    let (status, body) = call(s, api("/api/v1/oncall/now?domain=mars", Some(&token))).await;
    assert_eq!(status, 400);
    let problem: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(problem["problems"][0]["field"], "domain", "{body}");
    let (status, body) = call(s, api("/api/v1/oncall/now", Some(&token))).await;
    assert_eq!(status, 400);
    assert!(body.contains("\"domain\""), "{body}");
    let (status, body) = call(
        s,
        api(
            "/api/v1/oncall/now?domain=network&at=yesterday",
            Some(&token),
        ),
    )
    .await;
    assert_eq!(status, 400);
    assert!(body.contains("\"at\""), "{body}");
    let (status, _) = call(s, api("/api/v1/oncall/now?domain=network", None)).await;
    assert_eq!(status, 401);
    let (status, _) = call(s, api("/api/v1/oncall/now?domain=network", Some("nope"))).await;
    assert_eq!(status, 401);
}

async fn session(store: &Store, login: &str, role: Role) -> String {
    let user_id = user(store, login, role).await;
    let actor = Actor {
        user_id,
        login: login.into(),
        role,
    };
    open(store, &actor, None, None, SessionPolicy::default(), false)
        .await
        .unwrap()
}

fn page(uri: &str, cookie: &str) -> test::TestRequest {
    test::TestRequest::get()
        .uri(uri)
        .insert_header(("Accept-Language", "en"))
        .cookie(Cookie::new("vigie_session", cookie.to_owned()))
}

fn post(uri: &str, cookie: &str, body: &str) -> test::TestRequest {
    test::TestRequest::post()
        .uri(uri)
        .insert_header(("Accept-Language", "en"))
        .insert_header(("Content-Type", "application/x-www-form-urlencoded"))
        .cookie(Cookie::new("vigie_session", cookie.to_owned()))
        .set_payload(body.to_owned())
}

fn csrf(html: &str) -> String {
    let start = html.find("name=\"_csrf\" value=\"").unwrap() + "name=\"_csrf\" value=\"".len();
    html[start..].split('"').next().unwrap().to_owned()
}

#[tokio::test]
async fn the_pages_show_the_calendar_to_everyone_and_the_editor_to_the_administrator() {
    let d = db().await;
    let s = &d.store;
    let a = admin(s).await;
    user(s, "alice", Role::Oncall).await;
    let now = vigie_core::time::now();
    let from = (now - chrono::Duration::hours(1)).to_rfc3339();
    let to = (now + chrono::Duration::hours(1)).to_rfc3339();
    period(s, &a, "network", "alice", &from, &to, 1).await;

    let simple = session(s, "simple", Role::User).await;
    let (status, html) = call(s, page("/oncall?domain=network", &simple)).await;
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("On-call planning"));
    assert!(html.contains("1. alice"), "alice is on duty: {html}");
    assert!(html.contains("data-now=\"1\""), "the now marker");
    assert!(
        html.contains("data-gap=\"1\""),
        "the gaps around her period"
    );
    assert!(!html.contains("<script>"), "no inline script");
    assert!(
        !html.contains("/admin/oncall"),
        "no edit link for a simple user"
    );
    let (status, html) = call(s, page("/oncall?domain=network&view=month", &simple)).await;
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("data-test=\"calendar\""));
    let month_start = format!("{}", now.format("%Y-%m-01"));
    assert!(
        html.contains(&format!(
            "name=\"date\" type=\"date\" value=\"{month_start}\""
        )),
        "the month view keeps its month: {html}"
    );
    for role in [Role::User, Role::Operator, Role::Manager, Role::Oncall] {
        let c = session(s, &format!("u-{}", role.as_str()), role).await;
        let (status, _) = call(s, page("/oncall", &c)).await;
        assert_eq!(status, 200, "{role:?} sees the planning");
        let (status, _) = call(s, page("/admin/oncall", &c)).await;
        assert_eq!(status, 403, "{role:?} may not edit");
        let (status, _) = call(
            s,
            post("/admin/oncall/periods", &c, "domain=network&p_user=alice"),
        )
        .await;
        assert_eq!(status, 403, "{role:?} may not post");
    }
    let (status, location) = call(s, test::TestRequest::get().uri("/oncall")).await;
    assert_eq!(status, 303);
    assert!(location.starts_with("/login"));

    // The administrator's page, a refused form and an accepted one.
    let boss = {
        let actor = a.clone();
        open(s, &actor, None, None, SessionPolicy::default(), false)
            .await
            .unwrap()
    };
    let (status, html) = call(s, page("/admin/oncall?domain=network", &boss)).await;
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("data-test=\"period-form\""));
    let token = csrf(&html);
    let before = planning_rows(s).await;
    let form = format!(
        "_csrf={token}&domain=network&p_user=alice&p_starts_at=2026-11-02T10:00&p_ends_at=2026-11-02T09:00&p_index=1"
    );
    let (status, html) = call(s, post("/admin/oncall/periods", &boss, &form)).await;
    assert_eq!(status, 422);
    assert!(html.contains("data-error=\"p_ends_at\""), "{html}");
    assert!(html.contains("The end must be after the start."));
    assert!(
        html.contains("2026-11-02T09:00"),
        "the values typed are kept"
    );
    let form = form
        .replace("p_index=1", "p_index=0")
        .replace("T09:00", "T12:00");
    let (status, html) = call(s, post("/admin/oncall/periods", &boss, &form)).await;
    assert_eq!(status, 422);
    assert!(html.contains("data-error=\"p_index\""), "{html}");
    let (status, _) = call(
        s,
        post(
            "/admin/oncall/periods",
            &boss,
            "domain=network&p_user=alice",
        ),
    )
    .await;
    assert_eq!(status, 403, "no CSRF token");
    assert_eq!(planning_rows(s).await, before, "nothing stored");

    let form = form.replace("p_index=0", "p_index=2");
    let (status, location) = call(s, post("/admin/oncall/periods", &boss, &form)).await;
    assert_eq!(
        (status, location.as_str()),
        (303, "/admin/oncall?domain=network")
    );
    assert_eq!(planning_rows(s).await, before + 1);
    let form = format!(
        "_csrf={token}&domain=network&r_name=week&r_index=3&r_members=alice&r_anchor=2026-11-02T09:00&r_time_zone=Africa/Dakar&r_length_days=7"
    );
    let (status, location) = call(s, post("/admin/oncall/rotations", &boss, &form)).await;
    assert_eq!(
        (status, location.as_str()),
        (303, "/admin/oncall?domain=network")
    );
    let (status, html) = call(s, page("/admin/oncall?domain=network", &boss)).await;
    assert_eq!(status, 200, "{html}");
    // Tera escapes `/` in text.
    assert!(html.contains("Africa&#x2F;Dakar"), "{html}");

    // Conflicts are flagged on the calendar: bob at alice's index, carol planned on holiday.
    user(s, "bob", Role::Oncall).await;
    user(s, "carol", Role::Oncall).await;
    period(s, &a, "network", "bob", &from, &to, 1).await;
    period(s, &a, "network", "carol", &from, &to, 5).await;
    crate::swap(s, &a, "network", "carol", "", &from, &to).await;
    let (status, html) = call(s, page("/oncall?domain=network", &simple)).await;
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("data-conflict=\"same_index\""), "{html}");
    assert!(html.contains("(1: alice, bob)"), "{html}");
    assert!(html.contains("data-conflict=\"on_holiday\""), "{html}");
    assert!(html.contains("Planned while on holiday: carol"), "{html}");
    assert!(
        html.contains("1. alice") || html.contains("alice"),
        "{html}"
    );
}

/// The administrator sets a person's domains in the user form (stored with an audit entry; a
/// refused form changes nothing and keeps the boxes ticked).
#[tokio::test]
async fn the_user_form_sets_a_persons_domains() {
    let d = db().await;
    let s = &d.store;
    let a = admin(s).await;
    let boss = open(s, &a, None, None, SessionPolicy::default(), false)
        .await
        .unwrap();
    let alice = user(s, "alice", Role::Manager).await;
    let edit = format!("/admin/users/{alice}/edit");
    let (status, html) = call(s, page(&edit, &boss)).await;
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("data-test=\"user-domains\""), "{html}");
    assert!(
        html.contains("name=\"domain\" value=\"network\">"),
        "not ticked yet"
    );
    let token = csrf(&html);
    let fields = format!(
        "_csrf={token}&login=alice&last_name=Martin&first_name=Alice&role=manager&lang=&timezone="
    );
    let form =
        format!("{fields}&email=alice%40example.org&domain=systems&domain=network&domain=mars");
    let (status, location) = call(s, post(&edit, &boss, &form)).await;
    assert_eq!(
        (status, location.as_str()),
        (303, format!("/admin/users/{alice}").as_str())
    );
    assert_eq!(
        vigie_auth::contacts::domains_of(s, alice).await.unwrap(),
        vec!["network".to_owned(), "systems".to_owned()],
        "unknown domains are left out"
    );
    // Saved in the person's own transaction: the update's audit entry carries them.
    let audited = crate::count(
        s,
        "SELECT COUNT(*) FROM audit_log WHERE action = 'user.update' \
         AND after_state LIKE '%\"domains\":[\"network\",\"systems\"]%'",
    )
    .await;
    assert_eq!(audited, 1);
    let (_, html) = call(s, page(&edit, &boss)).await;
    assert!(
        html.contains("name=\"domain\" value=\"network\" checked"),
        "{html}"
    );

    // A refused form keeps the boxes as ticked and changes nothing.
    let form = format!("{fields}&email=not-a-mail&domain=backup");
    let (status, html) = call(s, post(&edit, &boss, &form)).await;
    assert_eq!(status, 422, "{html}");
    assert!(
        html.contains("name=\"domain\" value=\"backup\" checked"),
        "{html}"
    );
    assert_eq!(
        vigie_auth::contacts::domains_of(s, alice).await.unwrap(),
        vec!["network".to_owned(), "systems".to_owned()]
    );
    // The calendar opens on the viewer's first domain (the form above also took alice's menus
    // away: no box was ticked).
    let me = session(s, "bob", Role::Manager).await;
    let bob = vigie_auth::get_user_by_login(s, "bob")
        .await
        .unwrap()
        .unwrap()
        .id;
    let mut tx = s.begin().await.unwrap();
    vigie_auth::contacts::set_domains(&mut tx, bob, &["systems".to_owned()])
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let (status, html) = call(s, page("/oncall", &me)).await;
    assert_eq!(status, 200);
    assert!(
        html.contains("<option value=\"systems\" selected>"),
        "{html}"
    );
}
