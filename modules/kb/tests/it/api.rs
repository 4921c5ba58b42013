//! The JSON API: search, one article, create; tokens and permissions.

use actix_web::dev::{Service, ServiceResponse};
use actix_web::{App, test, web};
use serde_json::{Value, json};
use vigie_core::role::Role;
use vigie_core::store::Store;

use crate::{articles, draft, hub, kb_audit, person};

async fn app(
    store: &Store,
) -> impl Service<actix_http::Request, Response = ServiceResponse, Error = actix_web::Error> {
    test::init_service(
        App::new()
            .app_data(web::Data::new(store.clone()))
            .configure(vigie_kb::configure),
    )
    .await
}

async fn call<S>(app: &S, req: test::TestRequest, token: Option<&str>) -> (u16, Value)
where
    S: Service<actix_http::Request, Response = ServiceResponse, Error = actix_web::Error>,
{
    let req = match token {
        Some(t) => req.insert_header(("Authorization", format!("Bearer {t}"))),
        None => req,
    };
    let resp = test::call_service(app, req.to_request()).await;
    let status = resp.status().as_u16();
    let body = test::read_body(resp).await;
    (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
}

fn get(uri: &str) -> test::TestRequest {
    test::TestRequest::get().uri(uri)
}

fn post(body: &Value) -> test::TestRequest {
    test::TestRequest::post()
        .uri("/api/v1/kb")
        .insert_header(("Content-Type", "application/json"))
        .set_payload(body.to_string())
}

fn problem_fields(body: &Value) -> Vec<String> {
    body["problems"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|p| p["field"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn search_and_read_through_the_api() {
    let h = hub().await;
    let user = person(&h.store, "u", Role::User).await;
    let admin = person(&h.store, "root", Role::Admin).await;
    let mut d = draft(
        "Pare-feu bloqué",
        "Plus de trafic sortant.",
        "Redémarrer le pare-feu secondaire.",
    );
    d.domain = Some("network".into());
    d.tags = vec!["firewall".into()];
    d.incident_id = Some(5);
    let id = vigie_kb::create(&h.store, &user.actor, None, &d)
        .await
        .unwrap();
    let app = app(&h.store).await;

    let (status, body) = call(&app, get("/api/v1/kb?q=redemarrer"), Some(&user.token)).await;
    assert_eq!(status, 200, "{body}");
    let hits = body.as_array().unwrap();
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0]["id"], id);
    assert_eq!(hits[0]["title"], "Pare-feu bloqué");
    assert_eq!(hits[0]["domain"], "network");
    assert_eq!(hits[0]["tags"], json!(["firewall"]));
    assert!(hits[0]["snippet"].as_str().unwrap().contains("Redémarrer"));
    assert!(hits[0]["score"].is_number());

    let (status, body) = call(
        &app,
        get("/api/v1/kb?q=pare&domain=systems"),
        Some(&user.token),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(body, json!([]), "another domain");
    let (_, body) = call(
        &app,
        get("/api/v1/kb?q=pare&domain=network&limit=1"),
        Some(&user.token),
    )
    .await;
    assert_eq!(body.as_array().unwrap().len(), 1);

    for (uri, field) in [
        ("/api/v1/kb", "q"),
        ("/api/v1/kb?q=", "q"),
        ("/api/v1/kb?q=%20%3F%21", "q"),
        ("/api/v1/kb?q=x&limit=0", "limit"),
        ("/api/v1/kb?q=x&limit=abc", "limit"),
    ] {
        let (status, body) = call(&app, get(uri), Some(&user.token)).await;
        assert_eq!(status, 400, "{uri}: {body}");
        assert_eq!(problem_fields(&body), [field], "{uri}");
    }
    let long = format!("/api/v1/kb?q={}", "a".repeat(201));
    let (status, body) = call(&app, get(&long), Some(&user.token)).await;
    assert_eq!(status, 400);
    assert_eq!(problem_fields(&body), ["q"]);

    let (status, _) = call(&app, get("/api/v1/kb?q=pare"), None).await;
    assert_eq!(status, 401);
    let (status, _) = call(&app, get("/api/v1/kb?q=pare"), Some("not-a-token")).await;
    assert_eq!(status, 401);
    let (status, _) = call(&app, get("/api/v1/kb?q=pare"), Some(&admin.token)).await;
    assert_eq!(status, 403, "the administrator has no knowledge base menu");

    let (status, body) = call(&app, get(&format!("/api/v1/kb/{id}")), Some(&user.token)).await;
    assert_eq!(status, 200);
    assert_eq!(body["resolution"], "Redémarrer le pare-feu secondaire.");
    assert_eq!(body["incidents"][0]["incident_id"], 5);
    let (status, _) = call(&app, get("/api/v1/kb/999999"), Some(&user.token)).await;
    assert_eq!(status, 404);
    let (status, _) = call(&app, get(&format!("/api/v1/kb/{id}")), Some(&admin.token)).await;
    assert_eq!(status, 403);
    let (status, _) = call(&app, get(&format!("/api/v1/kb/{id}")), None).await;
    assert_eq!(status, 401);
}

#[tokio::test]
async fn create_through_the_api() {
    let h = hub().await;
    let oncall = person(&h.store, "astreinte", Role::Oncall).await;
    let admin = person(&h.store, "root", Role::Admin).await;
    let app = app(&h.store).await;

    let article = json!({
        "title": "Base de données lente",
        "symptoms": "Requêtes de plus de 10 s.",
        "resolution": "Reconstruire les index de la table des commandes.",
        "domain": "applications",
        "tags": ["sql", "performance"],
        "incident_id": 77,
        "incident_reference": "2026/APP/12",
    });
    let (status, _) = call(&app, post(&article), None).await;
    assert_eq!(status, 401);
    let (status, _) = call(&app, post(&article), Some(&admin.token)).await;
    assert_eq!(status, 403);
    assert_eq!(articles(&h.store).await, 0);

    let (status, body) = call(&app, post(&article), Some(&oncall.token)).await;
    assert_eq!(status, 201, "{body}");
    let id = body["id"].as_i64().unwrap();
    let stored = vigie_kb::get(&h.store, id).await.unwrap().unwrap();
    assert_eq!(stored.author, "astreinte");
    assert_eq!(stored.tags, ["performance", "sql"]);
    assert_eq!(
        stored.incidents[0].reference.as_deref(),
        Some("2026/APP/12")
    );
    let (_, hits) = call(
        &app,
        get("/api/v1/kb?q=index%20commandes"),
        Some(&oncall.token),
    )
    .await;
    assert_eq!(hits[0]["id"], id);

    for (bad, field) in [
        (json!({"title": "", "resolution": "x"}), "title"),
        (json!({"title": "t"}), "resolution"),
        (json!({"title": "t", "resolution": 3}), "resolution"),
        (
            json!({"title": "t", "resolution": "x", "tags": "a"}),
            "tags",
        ),
        (
            json!({"title": "t", "resolution": "x", "domain": "Not a domain"}),
            "domain",
        ),
        (
            json!({"title": "t", "resolution": "x", "incident_id": "x"}),
            "incident_id",
        ),
    ] {
        let (status, body) = call(&app, post(&bad), Some(&oncall.token)).await;
        assert_eq!(status, 400, "{bad}: {body}");
        assert_eq!(problem_fields(&body), [field], "{bad}");
    }
    let req = test::TestRequest::post()
        .uri("/api/v1/kb")
        .insert_header(("Content-Type", "application/json"))
        .set_payload("{not json");
    let (status, body) = call(&app, req, Some(&oncall.token)).await;
    assert_eq!(status, 400);
    assert_eq!(problem_fields(&body), ["body"]);
    let (status, body) = call(
        &app,
        post(&json!({"title": "t", "resolution": "x", "extra": 1})),
        Some(&oncall.token),
    )
    .await;
    assert_eq!(status, 400, "unknown fields are refused: {body}");
    assert_eq!(
        articles(&h.store).await,
        1,
        "nothing stored by bad requests"
    );
    assert_eq!(kb_audit(&h.store).await, 1);
}
