//! The knowledge base's JSON API, under a bearer token with the `knowledge_base` permission:
//! `GET /api/v1/kb?q=TEXT[&domain=&tag=&limit=]` (hits, best first), `GET /api/v1/kb/{id}`,
//! `POST /api/v1/kb` (create).

use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;
use serde_json::json;
use vigie_auth::Caller;
use vigie_core::audit::Actor;
use vigie_core::role::Permission;
use vigie_core::store::Store;

use crate::error::{KbError, Problem};
use crate::repo::{self, Draft, Filters, LIMIT_MAX};

/// A new article's body, at most (bytes).
const BODY_MAX: usize = 256 * 1024;

pub(crate) fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/api/v1/kb")
            .app_data(web::PayloadConfig::new(BODY_MAX))
            .route(web::get().to(search))
            .route(web::post().to(create)),
    )
    .service(web::resource("/api/v1/kb/{id}").route(web::get().to(show)));
}

#[derive(Deserialize)]
struct SearchQuery {
    q: Option<String>,
    domain: Option<String>,
    tag: Option<String>,
    limit: Option<String>,
}

/// `limit`: 1 to [`LIMIT_MAX`], 20 when absent.
fn limit(value: Option<&str>) -> Result<i64, KbError> {
    match value.map(str::trim).filter(|v| !v.is_empty()) {
        None => Ok(20),
        Some(v) => v
            .parse::<i64>()
            .ok()
            .filter(|n| (1..=LIMIT_MAX).contains(n))
            .ok_or_else(|| {
                KbError::invalid(
                    "limit",
                    "kb.problems.limit",
                    "must be a number from 1 to 100",
                )
            }),
    }
}

async fn search(
    caller: Caller,
    req: HttpRequest,
    store: web::Data<Store>,
) -> Result<HttpResponse, KbError> {
    caller.require(Permission::KnowledgeBase)?;
    let query = web::Query::<SearchQuery>::from_query(req.query_string())
        .map_err(|_| KbError::invalid("q", "kb.problems.invalid", "malformed query string"))?;
    let limit = limit(query.limit.as_deref())?;
    let filters = Filters {
        domain: query.domain.clone(),
        tag: query.tag.clone(),
    };
    let hits = repo::search(
        &store,
        query.q.as_deref().unwrap_or_default(),
        &filters,
        limit,
    )
    .await?;
    Ok(HttpResponse::Ok().json(hits))
}

async fn show(
    caller: Caller,
    id: web::Path<i64>,
    store: web::Data<Store>,
) -> Result<HttpResponse, KbError> {
    caller.require(Permission::KnowledgeBase)?;
    let article = repo::get(&store, *id).await?.ok_or(KbError::NotFound)?;
    Ok(HttpResponse::Ok().json(article))
}

/// Parses the body; the error names the field at fault.
fn parse_draft(body: &[u8]) -> Result<Draft, KbError> {
    let de = &mut serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize::<_, Draft>(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.inner().to_string();
        // A missing field is reported at its parent: name the field itself.
        let named = ["title", "symptoms", "cause", "resolution", "domain", "tags"]
            .into_iter()
            .chain(["incident_id", "incident_reference"])
            .find(|f| inner.contains(&format!("`{f}`")) || path.starts_with(f));
        KbError::Invalid(vec![Problem {
            field: named.unwrap_or("body"),
            key: "kb.problems.invalid",
            message: if inner.starts_with("missing field") {
                "is required"
            } else {
                "has the wrong type, or the body is not a JSON article"
            },
        }])
    })
}

async fn create(
    caller: Caller,
    req: HttpRequest,
    body: web::Bytes,
    store: web::Data<Store>,
) -> Result<HttpResponse, KbError> {
    caller.require(Permission::KnowledgeBase)?;
    let draft = parse_draft(&body)?;
    let actor = Actor {
        user_id: caller.user_id,
        login: caller.login.clone(),
        role: caller.role,
    };
    let ip = req.peer_addr().map(|a| a.ip().to_string());
    let id = repo::create(&store, &actor, ip.as_deref(), &draft).await?;
    Ok(HttpResponse::Created()
        .insert_header((
            actix_web::http::header::LOCATION,
            format!("/api/v1/kb/{id}"),
        ))
        .json(json!({ "id": id })))
}
