//! The console pages with a real session: the list per role, the opening form prefilled from an
//! alert, the incident's page and its step forms (CSRF, refusals as messages, the close's
//! "copy to the knowledge base?" answer), uploads through the multipart form.

use actix_web::dev::{Service, ServiceResponse};
use actix_web::{App, test, web};
use vigie_auth::session::SessionPolicy;
use vigie_console::{Console, ConsoleSettings};
use vigie_core::audit::Actor;
use vigie_core::role::Role;

use crate::{Hub, ROLES};

async fn console_app(
    h: &Hub,
) -> impl Service<actix_http::Request, Response = ServiceResponse, Error = actix_web::Error> {
    let console = Console::start(ConsoleSettings::default(), &h.store)
        .await
        .expect("console");
    test::init_service(
        App::new()
            .app_data(web::Data::new(h.store.clone()))
            .app_data(web::Data::new(h.pipeline.clone()))
            .app_data(web::Data::new(h.settings.clone()))
            .app_data(web::Data::new(console))
            .configure(vigie_incidents::configure),
    )
    .await
}

/// A session cookie and its CSRF token.
async fn login(h: &Hub, login: &str, role: Role) -> (String, String) {
    let actor = Actor {
        user_id: h.ids[login],
        login: login.into(),
        role,
    };
    let token = vigie_auth::session::open(
        &h.store,
        &actor,
        None,
        None,
        SessionPolicy::default(),
        false,
    )
    .await
    .expect("session");
    let csrf: String = vigie_core::on_pool!(&h.store, pool => sqlx::query_scalar(
        "SELECT csrf FROM sessions WHERE user_id = $1 ORDER BY id DESC LIMIT 1")
        .bind(h.ids[login])
        .fetch_one(pool).await)
    .unwrap();
    (format!("vigie_session={token}"), csrf)
}

struct Page {
    status: u16,
    location: String,
    text: String,
}

async fn get<S>(app: &S, cookie: &str, uri: &str) -> Page
where
    S: Service<actix_http::Request, Response = ServiceResponse, Error = actix_web::Error>,
{
    send(
        app,
        test::TestRequest::get()
            .uri(uri)
            .insert_header(("Cookie", cookie.to_owned()))
            .insert_header(("Accept", "text/html")),
    )
    .await
}

async fn post<S>(app: &S, cookie: &str, uri: &str, form: &[(&str, &str)]) -> Page
where
    S: Service<actix_http::Request, Response = ServiceResponse, Error = actix_web::Error>,
{
    let body: String = form
        .iter()
        .map(|(k, v)| format!("{k}={}", enc(v)))
        .collect::<Vec<_>>()
        .join("&");
    send(
        app,
        test::TestRequest::post()
            .uri(uri)
            .insert_header(("Cookie", cookie.to_owned()))
            .insert_header(("Content-Type", "application/x-www-form-urlencoded"))
            .set_payload(body),
    )
    .await
}

fn enc(v: &str) -> String {
    v.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

async fn send<S>(app: &S, req: test::TestRequest) -> Page
where
    S: Service<actix_http::Request, Response = ServiceResponse, Error = actix_web::Error>,
{
    let resp = test::call_service(app, req.to_request()).await;
    let status = resp.status().as_u16();
    let location = resp
        .headers()
        .get("location")
        .and_then(|l| l.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let text = String::from_utf8_lossy(&test::read_body(resp).await).into_owned();
    Page {
        status,
        location,
        text,
    }
}

async fn state(h: &Hub, id: i64) -> String {
    vigie_incidents::model::get(&h.store, id)
        .await
        .unwrap()
        .unwrap()
        .state
}

#[tokio::test]
async fn an_incident_lives_through_the_console() {
    let h = Hub::new().await;
    let app = console_app(&h).await;
    let (op, csrf) = login(&h, "operator", Role::Operator).await;

    // The alert board's link prefills the form.
    let p = get(
        &app,
        &op,
        "/incidents/new?alert=77&source=alert&type=network&description=router-1%20interface%20down",
    )
    .await;
    assert_eq!(p.status, 200);
    assert!(
        p.text.contains(r#"<option value="network" selected>"#),
        "domain prefilled"
    );
    assert!(p.text.contains("router-1 interface down</textarea>"));
    assert!(p.text.contains(r#"<option value="alert" selected>"#));
    assert!(p.text.contains(r#"name="alert_id" value="77""#));
    assert!(
        p.text.contains(r#"name="followers" value="oncall""#),
        "on-call people to pick"
    );

    // Without the CSRF token nothing is opened.
    let form = [
        ("domain", "network"),
        ("title", "Routeur HS"),
        ("criticality", "red"),
        ("detection", "visual"),
        ("followers", "oncall"),
        ("follow", "1"),
        ("description", "<b>gras</b>\nligne 2"),
    ];
    let p = post(&app, &op, "/incidents/new", &form).await;
    assert_eq!(p.status, 403);
    let mut with = vec![("_csrf", csrf.as_str())];
    with.extend_from_slice(&form);
    // Bad input comes back on the form, values kept.
    let mut bad = with.clone();
    bad[2] = ("title", "");
    let p = post(&app, &op, "/incidents/new", &bad).await;
    assert_eq!(p.status, 400);
    assert!(p.text.contains("data-test=\"form-error\""));
    let p = post(&app, &op, "/incidents/new", &with).await;
    assert_eq!(p.status, 303, "{}", p.text);
    let id: i64 = p
        .location
        .trim_start_matches("/incidents/")
        .parse()
        .expect("incident page");
    let show = get(&app, &op, &p.location).await;
    assert_eq!(show.status, 200);
    assert!(show.text.contains("&#x2F;NET&#x2F;1"), "the reference");
    assert!(
        show.text
            .contains("&lt;b&gt;gras&lt;&#x2F;b&gt;<br>ligne 2"),
        "escaped, lines kept"
    );
    assert!(
        show.text.contains("data-test=\"flash\""),
        "the opening's message"
    );
    for form in ["qualify-form", "edit-form", "delete-form", "upload"] {
        assert!(show.text.contains(form), "{form} on the operator's page");
    }
    assert!(
        !show.text.contains("close-form"),
        "not closable before resolution"
    );

    // A refused step: a message on the page, nothing changed.
    let p = post(
        &app,
        &op,
        &format!("/incidents/{id}/close"),
        &[("_csrf", &csrf)],
    )
    .await;
    assert_eq!(
        (p.status, p.location.as_str()),
        (303, format!("/incidents/{id}").as_str())
    );
    let page = get(&app, &op, &p.location).await;
    assert!(page.text.contains("flash-error"), "{}", page.text);
    assert_eq!(state(&h, id).await, "created");

    for (step, form) in [
        (
            "qualify",
            vec![("category", "wan"), ("criticality", "orange")],
        ),
        ("transfer", vec![("to", "oncall"), ("to", "oncall2")]),
        (
            "resolve",
            vec![
                ("text", "Carte remplacée"),
                ("minutes", "45"),
                ("final", "1"),
            ],
        ),
    ] {
        let mut f = vec![("_csrf", csrf.as_str())];
        f.extend(form);
        let p = post(&app, &op, &format!("/incidents/{id}/{step}"), &f).await;
        assert_eq!(p.status, 303, "{step}");
    }
    assert_eq!(state(&h, id).await, "resolved");
    let page = get(&app, &op, &format!("/incidents/{id}")).await;
    assert!(page.text.contains("close-form") && page.text.contains("Carte remplacée"));
    assert!(page.text.contains("data-test=\"timeline\""));

    // Upload through the form.
    let body = format!(
        "--zz\r\nContent-Disposition: form-data; name=\"_csrf\"\r\n\r\n{csrf}\r\n--zz\r\nContent-Disposition: form-data; name=\"file\"; filename=\"trace.txt\"\r\nContent-Type: text/plain\r\n\r\nping timeout\r\n--zz--\r\n"
    );
    let up = |cookie: &str, body: String| {
        test::TestRequest::post()
            .uri(&format!("/incidents/{id}/attachments"))
            .insert_header(("Cookie", cookie.to_owned()))
            .insert_header(("Content-Type", "multipart/form-data; boundary=zz"))
            .set_payload(body)
    };
    let p = send(&app, up(&op, body.clone())).await;
    assert_eq!(p.status, 303);
    let p = send(&app, up(&op, body.replace(&csrf, "forged"))).await;
    assert_eq!(p.status, 403);
    let page = get(&app, &op, &format!("/incidents/{id}")).await;
    assert!(page.text.contains("trace.txt"));

    // Close and copy into the knowledge base.
    let p = post(
        &app,
        &op,
        &format!("/incidents/{id}/close"),
        &[("_csrf", &csrf), ("kb", "yes")],
    )
    .await;
    assert_eq!(
        (p.status, p.location),
        (303, format!("/kb/new?incident={id}"))
    );
    assert_eq!(state(&h, id).await, "closed");

    // Deleting needs the confirmation.
    let p = post(
        &app,
        &op,
        &format!("/incidents/{id}/delete"),
        &[("_csrf", &csrf)],
    )
    .await;
    assert_eq!(p.status, 303);
    assert_eq!(state(&h, id).await, "closed");
    let p = post(
        &app,
        &op,
        &format!("/incidents/{id}/delete"),
        &[("_csrf", &csrf), ("confirm", "1")],
    )
    .await;
    assert_eq!((p.status, p.location.as_str()), (303, "/incidents"));
    assert_eq!(state(&h, id).await, "deleted");
}

#[tokio::test]
async fn pages_show_each_role_its_views_and_forms() {
    let h = Hub::new().await;
    let app = console_app(&h).await;
    let (op, csrf) = login(&h, "operator", Role::Operator).await;
    let form = [
        ("_csrf", csrf.as_str()),
        ("domain", "systems"),
        ("title", "Disque plein"),
        ("criticality", "orange"),
        ("detection", "mail"),
    ];
    let p = post(&app, &op, "/incidents/new", &form).await;
    let id: i64 = p
        .location
        .trim_start_matches("/incidents/")
        .parse()
        .expect("opened");
    for role in ROLES {
        let (cookie, csrf) = login(&h, role.as_str(), role).await;
        let list = get(&app, &cookie, "/incidents").await;
        let show = get(&app, &cookie, &format!("/incidents/{id}")).await;
        let new = get(&app, &cookie, "/incidents/new").await;
        if role == Role::Admin {
            assert_eq!((list.status, show.status, new.status), (403, 403, 403));
            continue;
        }
        assert_eq!(
            (list.status, show.status, new.status),
            (200, 200, 200),
            "{role}"
        );
        // A manager of network does not list a systems incident, but may open it.
        assert_eq!(
            list.text.contains(&format!("/incidents/{id}\"")),
            role != Role::Manager,
            "{role}"
        );
        assert_eq!(
            list.text.contains("view-mine"),
            role == Role::Oncall,
            "{role}"
        );
        assert!(show.text.contains("qualify-form"), "{role}");
        assert_eq!(
            show.text.contains("edit-form"),
            role == Role::Operator,
            "{role}"
        );
        assert_eq!(
            show.text.contains("delete-form"),
            role == Role::Operator,
            "{role}"
        );
        // The server refuses what the page does not offer.
        if role != Role::Operator {
            let p = post(
                &app,
                &cookie,
                &format!("/incidents/{id}/delete"),
                &[("_csrf", &csrf), ("confirm", "1")],
            )
            .await;
            assert_eq!(p.status, 403, "{role} delete");
        }
    }
    assert_eq!(state(&h, id).await, "created");
}
