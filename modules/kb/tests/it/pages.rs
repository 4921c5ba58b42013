//! The console pages through the console's real session handling: search with highlights, the
//! form (CSRF, errors next to the field, prefilled from an incident), an article with its
//! incidents, edit and delete by the author or an operator only.

use actix_web::cookie::Cookie;
use actix_web::dev::{Service, ServiceResponse};
use actix_web::http::header;
use actix_web::{App, test, web};
use vigie_console::{Console, ConsoleSettings};
use vigie_core::role::Role;
use vigie_core::store::Store;
use vigie_kb::{Draft, DraftSource};

use crate::{Person, articles, draft, hub, kb_audit, person};

/// Incident 7 exists (closed) in this fake of the incidents module; nothing else does.
fn incidents() -> DraftSource {
    DraftSource::new(|_store: Store, id: i64| {
        Box::pin(async move {
            (id == 7).then(|| Draft {
                title: "Onduleur en défaut".into(),
                symptoms: "Bip continu en salle serveur.".into(),
                cause: "Batterie usée.".into(),
                resolution: "Remplacer la batterie de l'onduleur.".into(),
                domain: Some("systems".into()),
                tags: vec!["onduleur".into()],
                incident_id: Some(7),
                incident_reference: Some("2026/SYS/7".into()),
            })
        })
    })
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
            .app_data(web::Data::new(incidents()))
            .configure(vigie_kb::configure)
            .configure(vigie_console::configure),
    )
    .await
}

struct Answer {
    status: u16,
    location: String,
    body: String,
}

async fn send<S>(app: &S, req: test::TestRequest, who: &Person) -> Answer
where
    S: Service<actix_http::Request, Response = ServiceResponse, Error = actix_web::Error>,
{
    send_in(app, req, who, "en").await
}

async fn send_in<S>(app: &S, req: test::TestRequest, who: &Person, lang: &str) -> Answer
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

fn get(uri: &str) -> test::TestRequest {
    test::TestRequest::get().uri(uri)
}

fn form(uri: &str, fields: &[(&str, &str)]) -> test::TestRequest {
    let body: String = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(fields)
        .finish();
    test::TestRequest::post()
        .uri(uri)
        .insert_header(("Content-Type", "application/x-www-form-urlencoded"))
        .set_payload(body)
}

#[tokio::test]
async fn search_page_highlights_and_filters() {
    let h = hub().await;
    let user = person(&h.store, "u", Role::User).await;
    let admin = person(&h.store, "root", Role::Admin).await;
    let mut d = draft(
        "Wi-Fi <b>instable</b>",
        "Coupures fréquentes.",
        "Redémarrer la borne du hall.",
    );
    d.tags = vec!["wifi".into()];
    d.domain = Some("network".into());
    vigie_kb::create(&h.store, &user.actor, None, &d)
        .await
        .unwrap();
    vigie_kb::create(
        &h.store,
        &user.actor,
        None,
        &draft("Toner vide", "", "Changer la cartouche."),
    )
    .await
    .unwrap();
    let app = app(&h.store).await;

    let a = send(&app, get("/kb"), &user).await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert!(a.body.contains("Recent articles"));
    assert!(a.body.contains("Toner vide") && a.body.contains("Wi-Fi &lt;b&gt;instable"));
    assert!(!a.body.contains("<b>instable"), "escaped");

    let a = send(&app, get("/kb?q=redemarrer"), &user).await;
    assert_eq!(a.status, 200);
    assert!(a.body.contains("<mark>Redémarrer</mark>"), "{}", a.body);
    assert!(!a.body.contains("Toner vide"));
    let a = send(&app, get("/kb?q=&tag=wifi"), &user).await;
    assert!(a.body.contains("Wi-Fi") && !a.body.contains("Toner vide"));
    let a = send(&app, get("/kb?q=cartouche&domain=network"), &user).await;
    assert!(a.body.contains("data-test=\"kb-none\""));
    let a = send(&app, get("/kb?q=%3F%3F"), &user).await;
    assert_eq!(a.status, 400);
    assert!(a.body.contains("data-error=\"q\""), "{}", a.body);

    // Every page renders in French too.
    let id = vigie_kb::recent(&h.store, &vigie_kb::Filters::default(), 1)
        .await
        .unwrap()[0]
        .id;
    for (uri, text) in [
        ("/kb?q=borne".to_owned(), "Base de connaissances"),
        ("/kb/new".to_owned(), "Nouvel article"),
        (format!("/kb/{id}"), "Étiquettes"),
        (format!("/kb/{id}/edit"), "Modifier l&#x27;article"),
        (format!("/kb/{id}/delete"), "Supprimer définitivement"),
    ] {
        let a = send_in(&app, get(&uri), &user, "fr").await;
        assert_eq!(a.status, 200, "{uri}");
        assert!(a.body.contains(text), "{uri}: {}", a.body);
    }

    let a = send(&app, get("/kb"), &admin).await;
    assert_eq!(a.status, 403);
    let a = send(&app, get("/kb/new"), &admin).await;
    assert_eq!(a.status, 403);
}

#[tokio::test]
async fn an_article_from_an_incident_through_the_form() {
    let h = hub().await;
    let user = person(&h.store, "u", Role::User).await;
    let app = app(&h.store).await;

    let a = send(&app, get("/kb/new?incident=7"), &user).await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert!(
        a.body.contains("value=\"Onduleur en défaut\""),
        "{}",
        a.body
    );
    assert!(a.body.contains("Remplacer la batterie de l&#x27;onduleur."));
    assert!(a.body.contains("2026&#x2F;SYS&#x2F;7") || a.body.contains("2026/SYS/7"));
    assert!(a.body.contains("href=\"/incidents/7\""));
    let a = send(&app, get("/kb/new?incident=8"), &user).await;
    assert_eq!(a.status, 200);
    assert!(
        !a.body.contains("Onduleur"),
        "an unknown incident: empty form"
    );

    let fields = [
        ("_csrf", user.csrf.as_str()),
        ("title", "Onduleur en défaut"),
        ("symptoms", "Bip continu."),
        ("cause", ""),
        ("resolution", "Remplacer la batterie de l'onduleur."),
        ("domain", "systems"),
        ("tags", "onduleur, électricité"),
        ("incident_id", "7"),
        ("incident_reference", "forged"),
    ];
    // Without the CSRF token: refused, nothing stored.
    let a = send(&app, form("/kb/new", &fields[1..]), &user).await;
    assert_eq!(a.status, 403);
    assert_eq!(articles(&h.store).await, 0);
    // With an error: the form again, the message next to the field, nothing stored.
    let mut bad = fields.to_vec();
    bad[1] = ("title", "");
    let a = send(&app, form("/kb/new", &bad), &user).await;
    assert_eq!(a.status, 422);
    assert!(a.body.contains("data-error=\"title\""), "{}", a.body);
    assert!(a.body.contains("Remplacer la batterie"), "typed text kept");
    assert_eq!(articles(&h.store).await, 0);

    let a = send(&app, form("/kb/new", &fields), &user).await;
    assert_eq!(a.status, 303, "{}", a.body);
    let id: i64 = a.location.trim_start_matches("/kb/").parse().unwrap();
    let article = vigie_kb::get(&h.store, id).await.unwrap().unwrap();
    assert_eq!(article.tags, ["onduleur", "électricité"]);
    assert_eq!(
        article.incidents[0].reference.as_deref(),
        Some("2026/SYS/7"),
        "the reference comes from the incident, not from the form"
    );
    let a = send(&app, get(&format!("/kb/{id}")), &user).await;
    assert_eq!(a.status, 200);
    assert!(a.body.contains("href=\"/incidents/7\""));
    assert!(a.body.contains("Article saved."), "flash");
    // The Done-when: found by words of its resolution.
    let a = send(&app, get("/kb?q=batterie%20onduleur"), &user).await;
    assert!(a.body.contains(&format!("href=\"/kb/{id}\"")), "{}", a.body);

    // An incident that does not exist is not linked.
    let mut unknown = fields.to_vec();
    unknown[7] = ("incident_id", "999");
    let a = send(&app, form("/kb/new", &unknown), &user).await;
    assert_eq!(a.status, 303);
    let id2: i64 = a.location.trim_start_matches("/kb/").parse().unwrap();
    assert!(
        vigie_kb::get(&h.store, id2)
            .await
            .unwrap()
            .unwrap()
            .incidents
            .is_empty()
    );
    assert_eq!(kb_audit(&h.store).await, 2);
}

#[tokio::test]
async fn only_the_author_or_an_operator_edits_and_deletes() {
    let h = hub().await;
    let author = person(&h.store, "author", Role::User).await;
    let other = person(&h.store, "other", Role::Manager).await;
    let op = person(&h.store, "op", Role::Operator).await;
    let id = vigie_kb::create(
        &h.store,
        &author.actor,
        None,
        &draft("Lien WAN coupé", "", "Appeler l'opérateur."),
    )
    .await
    .unwrap();
    let app = app(&h.store).await;
    let edit = |who: &Person, title: &str| {
        form(
            &format!("/kb/{id}/edit"),
            &[
                ("_csrf", who.csrf.as_str()),
                ("title", title),
                ("resolution", "Appeler l'opérateur télécom."),
                ("tags", ""),
            ],
        )
    };

    let a = send(&app, get(&format!("/kb/{id}")), &other).await;
    assert_eq!(a.status, 200);
    assert!(!a.body.contains("data-test=\"kb-edit\""), "no edit link");
    for uri in [format!("/kb/{id}/edit"), format!("/kb/{id}/delete")] {
        assert_eq!(send(&app, get(&uri), &other).await.status, 403, "{uri}");
    }
    assert_eq!(send(&app, edit(&other, "Pirate"), &other).await.status, 403);
    let del = |who: &Person| form(&format!("/kb/{id}/delete"), &[("_csrf", who.csrf.as_str())]);
    assert_eq!(send(&app, del(&other), &other).await.status, 403);

    let a = send(&app, get(&format!("/kb/{id}")), &author).await;
    assert!(a.body.contains("data-test=\"kb-edit\""));
    let a = send(&app, get(&format!("/kb/{id}/edit")), &author).await;
    assert_eq!(a.status, 200);
    assert!(a.body.contains("value=\"Lien WAN coupé\""));
    let a = send(&app, edit(&author, "Lien WAN coupé (site B)"), &author).await;
    assert_eq!(a.status, 303, "{}", a.body);
    // Wrong CSRF token: refused.
    let a = send(&app, edit(&other, "Autre"), &author).await;
    assert_eq!(a.status, 403);
    let a = send(&app, edit(&op, "Lien WAN coupé (site C)"), &op).await;
    assert_eq!(a.status, 303);
    let a = send(&app, edit(&op, &"x".repeat(300)), &op).await;
    assert_eq!(a.status, 422);
    assert!(a.body.contains("data-error=\"title\""));
    assert_eq!(
        vigie_kb::get(&h.store, id).await.unwrap().unwrap().title,
        "Lien WAN coupé (site C)"
    );

    let a = send(&app, get(&format!("/kb/{id}/delete")), &op).await;
    assert_eq!(a.status, 200);
    assert!(a.body.contains("data-test=\"kb-delete-confirm\""));
    let a = send(&app, del(&op), &op).await;
    assert_eq!(a.status, 303);
    assert_eq!(a.location, "/kb");
    assert_eq!(articles(&h.store).await, 0);
    assert_eq!(send(&app, get(&format!("/kb/{id}")), &op).await.status, 404);
    assert_eq!(kb_audit(&h.store).await, 4, "create, 2 edits, delete");
}
