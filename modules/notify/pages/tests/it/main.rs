//! The notification pages through the console's real session handling: the outbox by state,
//! the dead-letter retry (CSRF, permission, audit), template editing with a refused template
//! naming its line, in both languages.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use actix_web::cookie::Cookie;
use actix_web::dev::{Service, ServiceResponse};
use actix_web::http::header;
use actix_web::{App, test, web};
use vigie_auth::session::{SessionPolicy, lookup, open};
use vigie_auth::{NewUser, create_user};
use vigie_console::{Console, ConsoleSettings};
use vigie_core::audit::Actor;
use vigie_core::on_pool;
use vigie_core::role::Role;
use vigie_core::store::Store;
use vigie_core::testing::TestDb;
use vigie_notify::{Channel, Message};

struct Person {
    cookie: String,
    csrf: String,
}

async fn person(store: &Store, login: &str, role: Role) -> Person {
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
    let cookie = open(store, &actor, None, None, SessionPolicy::default(), false)
        .await
        .unwrap();
    let csrf = lookup(store, &cookie, SessionPolicy::default())
        .await
        .unwrap()
        .ok()
        .unwrap()
        .csrf;
    Person { cookie, csrf }
}

async fn app(
    store: &Store,
) -> impl Service<actix_http::Request, Response = ServiceResponse, Error = actix_web::Error> {
    let console = Console::start(ConsoleSettings::default(), store)
        .await
        .unwrap();
    test::init_service(
        App::new()
            .app_data(web::Data::new(store.clone()))
            .app_data(web::Data::new(console))
            .configure(vigie_notify_pages::configure)
            .configure(vigie_console::configure),
    )
    .await
}

struct Answer {
    status: u16,
    location: String,
    body: String,
}

async fn send<S>(app: &S, req: test::TestRequest, who: &Person, lang: &str) -> Answer
where
    S: Service<actix_http::Request, Response = ServiceResponse, Error = actix_web::Error>,
{
    let req = req
        .insert_header(("Accept-Language", lang.to_owned()))
        .insert_header(("Accept", "text/html"))
        .cookie(Cookie::new("vigie_session", who.cookie.clone()));
    let resp = test::call_service(app, req.to_request()).await;
    let status = resp.status().as_u16();
    let location = resp
        .headers()
        .get(header::LOCATION)
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let body = String::from_utf8(test::read_body(resp).await.to_vec()).unwrap();
    Answer {
        status,
        location,
        body,
    }
}

fn form(uri: &str, fields: &[(&str, &str)]) -> test::TestRequest {
    test::TestRequest::post().uri(uri).set_form(
        fields
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<Vec<_>>(),
    )
}

async fn dead_message(store: &Store) -> i64 {
    let mut tx = store.begin().await.unwrap();
    let id = vigie_notify::enqueue_message(
        &mut tx,
        &Message {
            channel: Channel::Webhook,
            recipient: "ops".into(),
            subject: "Sujet <b>".into(),
            text: "t".into(),
            html: None,
            kind: "alert.routed".into(),
            user_id: None,
            dedupe_key: None,
        },
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    on_pool!(store, pool => sqlx::query(
        "UPDATE outbox SET state = 'dead', attempts = 1, last_error = 'webhook ops: HTTP 400 Bad Request' WHERE id = $1",
    )
    .bind(id)
    .execute(pool)
    .await
    .map(drop))
    .unwrap();
    id
}

async fn state_of(store: &Store, id: i64) -> String {
    vigie_notify::admin::get(store, id)
        .await
        .unwrap()
        .unwrap()
        .line
        .state
}

#[tokio::test]
async fn the_outbox_shows_dead_letters_and_the_administrator_retries_them() {
    let db = TestDb::create().await.unwrap();
    let store = db.store().await.unwrap();
    let app = app(&store).await;
    let root = person(&store, "root", Role::Admin).await;
    let op = person(&store, "op", Role::Operator).await;
    let id = dead_message(&store).await;

    let a = send(
        &app,
        test::TestRequest::get().uri("/admin/notifications?state=dead"),
        &root,
        "en",
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert!(
        a.body.contains("HTTP 400 Bad Request"),
        "the last error is shown"
    );
    assert!(a.body.contains("Sujet &lt;b&gt;"), "escaped");
    assert!(a.body.contains(&format!("data-test=\"retry-{id}\"")));
    assert!(!a.body.contains("<script>"));
    let fr = send(
        &app,
        test::TestRequest::get().uri("/admin/notifications"),
        &root,
        "fr",
    )
    .await;
    assert!(
        fr.body.contains("Relancer") && fr.body.contains("En échec"),
        "{}",
        fr.body
    );

    // Not an administrator: refused, on the page and on the action.
    let a = send(
        &app,
        test::TestRequest::get().uri("/admin/notifications"),
        &op,
        "en",
    )
    .await;
    assert_eq!(a.status, 403);
    let uri = format!("/admin/notifications/{id}/retry");
    let a = send(&app, form(&uri, &[("_csrf", op.csrf.as_str())]), &op, "en").await;
    assert_eq!(a.status, 403);
    // Without the CSRF token: refused, nothing changes.
    let a = send(&app, form(&uri, &[]), &root, "en").await;
    assert_eq!(a.status, 403);
    assert_eq!(state_of(&store, id).await, "dead");

    let a = send(
        &app,
        form(&uri, &[("_csrf", root.csrf.as_str())]),
        &root,
        "en",
    )
    .await;
    assert_eq!(a.status, 303, "{}", a.body);
    assert_eq!(a.location, "/admin/notifications?state=dead");
    assert_eq!(state_of(&store, id).await, "pending");
    let audit = vigie_core::audit::search(
        &store,
        &vigie_core::audit::Filter {
            action: Some("notify.retry".into()),
            limit: 10,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(audit.len(), 1);
    assert_eq!(audit[0].actor_login.as_deref(), Some("root"));
    let a = send(
        &app,
        test::TestRequest::get().uri("/admin/notifications"),
        &root,
        "en",
    )
    .await;
    assert!(
        a.body.contains("The message is queued again:"),
        "flash: {}",
        a.body
    );
}

#[tokio::test]
async fn templates_are_edited_and_a_broken_one_is_refused_with_its_line() {
    let db = TestDb::create().await.unwrap();
    let store = db.store().await.unwrap();
    let app = app(&store).await;
    let root = person(&store, "root", Role::Admin).await;
    let op = person(&store, "op", Role::Operator).await;

    let a = send(
        &app,
        test::TestRequest::get().uri("/admin/notifications/templates"),
        &root,
        "en",
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert!(a.body.contains("edit-incident.closed-sms-fr"));
    let a = send(
        &app,
        test::TestRequest::get().uri("/admin/notifications/templates"),
        &op,
        "en",
    )
    .await;
    assert_eq!(a.status, 403);

    let edit = "/admin/notifications/templates/edit?kind=alert.routed&channel=mail&lang=fr";
    let a = send(&app, test::TestRequest::get().uri(edit), &root, "fr").await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert!(
        a.body.contains("Vous êtes d&#x27;astreinte") || a.body.contains("Vous êtes d'astreinte"),
        "the built-in text is prefilled"
    );

    let broken = [
        ("_csrf", root.csrf.as_str()),
        ("kind", "alert.routed"),
        ("channel", "mail"),
        ("lang", "fr"),
        ("subject", "ok"),
        ("text", "un\ndeux\n{% if alert.level %}trois"),
        ("html", ""),
    ];
    let a = send(
        &app,
        form("/admin/notifications/templates/edit", &broken),
        &root,
        "en",
    )
    .await;
    assert_eq!(a.status, 422, "{}", a.body);
    assert!(a.body.contains("data-test=\"template-error\""));
    assert!(a.body.contains("Text, line 3"), "{}", a.body);
    assert!(
        vigie_notify::templates::stored(&store, "alert.routed", Channel::Mail, "fr")
            .await
            .unwrap()
            .is_none()
    );

    let good = [
        ("_csrf", root.csrf.as_str()),
        ("kind", "alert.routed"),
        ("channel", "mail"),
        ("lang", "fr"),
        ("subject", "ALERTE {{ alert.resource }}"),
        ("text", "{{ alert.message }}"),
        ("html", ""),
    ];
    let a = send(
        &app,
        form("/admin/notifications/templates/edit", &good),
        &root,
        "en",
    )
    .await;
    assert_eq!(a.status, 303, "{}", a.body);
    let r = vigie_notify::render(
        &store,
        "alert.routed",
        Channel::Mail,
        "fr",
        &serde_json::json!({ "alert": { "resource": "sw", "message": "m" } }),
    )
    .await
    .unwrap();
    assert_eq!(
        (r.subject.as_str(), r.text.as_str(), r.html),
        ("ALERTE sw", "m", None)
    );
    // Without CSRF: refused.
    let a = send(
        &app,
        form("/admin/notifications/templates/edit", &good[1..]),
        &root,
        "en",
    )
    .await;
    assert_eq!(a.status, 403);
    // Reset brings the built-in back.
    let reset = [
        ("_csrf", root.csrf.as_str()),
        ("kind", "alert.routed"),
        ("channel", "mail"),
        ("lang", "fr"),
    ];
    let a = send(
        &app,
        form("/admin/notifications/templates/reset", &reset),
        &root,
        "en",
    )
    .await;
    assert_eq!(a.status, 303);
    assert!(
        vigie_notify::templates::stored(&store, "alert.routed", Channel::Mail, "fr")
            .await
            .unwrap()
            .is_none()
    );
}
