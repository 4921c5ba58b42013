//! The planning over the API: `GET /api/v1/oncall/now?domain=D[&at=RFC3339]` answers the people
//! on duty as a JSON array (lowest index first, ties by login), for any user holding
//! `oncall_view` (every role by default).

use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use vigie_auth::Caller;
use vigie_core::domain::Domains;
use vigie_core::role::Permission;
use vigie_core::store::Store;

use crate::OncallError;
use crate::planning::on_duty;

/// Registers the API's routes (before any catch-all).
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/api/v1/oncall/now").route(web::get().to(now)));
}

/// The configured domains: `web::Data<Domains>` when the application registers it, else the
/// pipeline's, else the defaults.
pub fn domains(req: &HttpRequest) -> Domains {
    if let Some(d) = req.app_data::<web::Data<Domains>>() {
        return d.get_ref().clone();
    }
    if let Some(p) = req.app_data::<web::Data<vigie_alerts::pipeline::Pipeline>>() {
        return p.settings().domains.clone();
    }
    Domains::default()
}

#[derive(Deserialize)]
struct NowQuery {
    domain: Option<String>,
    at: Option<String>,
}

async fn now(
    req: HttpRequest,
    caller: Caller,
    store: web::Data<Store>,
    query: web::Query<NowQuery>,
) -> Result<HttpResponse, OncallError> {
    caller.require(Permission::OncallView)?;
    let domains = domains(&req);
    let domain = query.domain.as_deref().unwrap_or("").trim();
    if domain.is_empty() {
        return Err(OncallError::Invalid {
            field: "domain",
            problem: "is required".into(),
        });
    }
    if !domains.contains(domain) {
        let known: Vec<&str> = domains.ids().collect();
        return Err(OncallError::Invalid {
            field: "domain",
            problem: format!("unknown domain; one of {}", known.join(", ")),
        });
    }
    let at = match query.at.as_deref().map(str::trim).filter(|a| !a.is_empty()) {
        None => vigie_core::time::now(),
        Some(text) => DateTime::parse_from_rfc3339(text)
            .map(|t| vigie_core::time::to_store_precision(t.with_timezone(&Utc)))
            .map_err(|e| OncallError::Invalid {
                field: "at",
                problem: format!("is not an RFC 3339 time: {e}"),
            })?,
    };
    let people = on_duty(&store, domain, at).await?;
    // A plain array, as scripts expect: `.[0]` is the first person to tell.
    Ok(HttpResponse::Ok().json(people))
}
