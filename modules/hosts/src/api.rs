//! The hosts module's HTTP API: the agents' reports and the hosts' read API.

use actix_web::http::header::AUTHORIZATION;
use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{DateTime, Duration, Utc};
use serde::Deserialize;
use serde_json::json;
use vigie_agent::report::{Report, SCHEMA_VERSION};
use vigie_alerts::pipeline::Pipeline;
use vigie_auth::Caller;
use vigie_core::role::Permission;
use vigie_core::store::Store;
use vigie_core::time::now;
use vigie_source::Ingest;

use crate::error::HostsError;
use crate::repo::{self, TokenHost};
use crate::rollup;
use crate::{HostsSettings, outbox};

/// How far in the future a report may be dated (clock skew).
const FUTURE_SKEW: i64 = 300;
/// Points of a series, at most, in one answer.
const SERIES_MAX: i64 = 20_000;

/// Registers the routes. Reads `web::Data<Store>`, `web::Data<Pipeline>` and, when present,
/// `web::Data<HostsSettings>` (defaults otherwise).
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/api/v1/agent/report")
            // The handler checks the size itself (to answer and count it); this only bounds
            // what is read.
            .app_data(web::PayloadConfig::new(4 * 1024 * 1024))
            .route(web::post().to(report)),
    )
    .service(web::resource("/api/v1/hosts").route(web::get().to(list_hosts)))
    .service(web::resource("/api/v1/hosts/{name}/metrics").route(web::get().to(host_metrics)));
}

fn bearer(req: &HttpRequest) -> Option<String> {
    let value = req.headers().get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim().to_owned())
        .filter(|t| !t.is_empty())
}

/// The hub's settings, shared (not cloned per report); the defaults when none were given.
fn settings(req: &HttpRequest) -> web::Data<HostsSettings> {
    req.app_data::<web::Data<HostsSettings>>()
        .cloned()
        .unwrap_or_else(|| web::Data::new(HostsSettings::default()))
}

async fn report(
    req: HttpRequest,
    body: web::Bytes,
    store: web::Data<Store>,
    pipeline: web::Data<Pipeline>,
) -> Result<HttpResponse, HostsError> {
    let settings = settings(&req);
    match accept(&req, &body, &store, pipeline.get_ref(), &settings).await {
        Ok(answer) => Ok(answer),
        Err(e) => {
            metrics::counter!("vigie_agent_reports_rejected_total", "reason" => e.reason())
                .increment(1);
            Err(e)
        }
    }
}

/// Parses a report's body: the error names the field at fault.
pub fn parse_report(body: &[u8]) -> Result<Report, HostsError> {
    let de = &mut serde_json::Deserializer::from_slice(body);
    let report: Report = serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let problem = e.inner().to_string();
        // A missing field is reported at its parent: name the field itself.
        let missing = problem
            .strip_prefix("missing field `")
            .and_then(|rest| rest.split_once('`'))
            .map(|(name, _)| name.to_owned());
        let field = match (path.as_str(), missing) {
            ("." | "", Some(name)) => name,
            ("." | "", None) => "body".to_owned(),
            (parent, Some(name)) => format!("{parent}.{name}"),
            (parent, None) => parent.to_owned(),
        };
        HostsError::invalid(field, problem)
    })?;
    if report.schema_version == 0 || report.schema_version > SCHEMA_VERSION {
        return Err(HostsError::invalid(
            "schema_version",
            format!(
                "is {}; this hub reads 1 to {SCHEMA_VERSION}",
                report.schema_version
            ),
        ));
    }
    if report.id.is_empty() || report.id.len() > 200 {
        return Err(HostsError::invalid("id", "must have 1 to 200 characters"));
    }
    if !(report.interval_secs.is_finite() && report.interval_secs > 0.0)
        || report.interval_secs > 86_400.0
    {
        return Err(HostsError::invalid(
            "interval_secs",
            "must be in (0, 86400]",
        ));
    }
    Ok(report)
}

async fn accept(
    req: &HttpRequest,
    body: &[u8],
    store: &Store,
    ingest: &dyn Ingest,
    settings: &HostsSettings,
) -> Result<HttpResponse, HostsError> {
    let token = bearer(req).ok_or(HostsError::Unauthorized)?;
    let TokenHost { host_id, name } = repo::host_by_token(store, &token)
        .await?
        .ok_or(HostsError::Unauthorized)?;
    if body.len() > settings.body_max {
        return Err(HostsError::TooLarge(settings.body_max));
    }
    let report = parse_report(body)?;
    if report.host != name {
        return Err(HostsError::Forbidden(format!(
            "this token is for host `{name}`, not `{}`",
            report.host
        )));
    }
    let received = now();
    if report.collected_at > received + Duration::seconds(FUTURE_SKEW) {
        return Err(HostsError::invalid(
            "collected_at",
            format!("is more than {FUTURE_SKEW} s in the future"),
        ));
    }
    let (limits, _) = settings.thresholds.for_host(&name);
    let stored = repo::store_report(store, host_id, &report, limits).await?;
    if stored.replay {
        metrics::counter!("vigie_agent_reports_total", "outcome" => "replayed").increment(1);
        return Ok(HttpResponse::Ok().json(json!({"fast": stored.fast, "replayed": true})));
    }
    metrics::counter!("vigie_agent_reports_total", "outcome" => "stored").increment(1);
    if !stored.transitions.is_empty() || stored.back {
        // Queued with the report; a refusal leaves them for the watcher's next pass.
        if let Err(e) = outbox::deliver(store, ingest).await {
            tracing::warn!(host = %name, error = %e, "The host's alerts wait for the pipeline.");
        }
    }
    Ok(HttpResponse::Ok().json(json!({"fast": stored.fast})))
}

async fn list_hosts(caller: Caller, store: web::Data<Store>) -> Result<HttpResponse, HostsError> {
    caller.require(Permission::SupervisionView)?;
    let hosts = repo::list_hosts(&store).await?;
    Ok(HttpResponse::Ok().json(json!({ "hosts": hosts })))
}

#[derive(Deserialize)]
struct SeriesQuery {
    metric: Option<String>,
    from: Option<String>,
    to: Option<String>,
}

fn time_param(field: &str, value: Option<&str>) -> Result<Option<DateTime<Utc>>, HostsError> {
    match value.filter(|v| !v.is_empty()) {
        None => Ok(None),
        Some(v) => DateTime::parse_from_rfc3339(v)
            .map(|t| Some(t.with_timezone(&Utc)))
            .map_err(|e| HostsError::invalid(field, format!("is not an RFC 3339 time: {e}"))),
    }
}

async fn host_metrics(
    caller: Caller,
    store: web::Data<Store>,
    path: web::Path<String>,
    query: web::Query<SeriesQuery>,
) -> Result<HttpResponse, HostsError> {
    caller.require(Permission::SupervisionView)?;
    let name = path.into_inner();
    let metric = query
        .metric
        .clone()
        .filter(|m| !m.is_empty())
        .ok_or_else(|| HostsError::invalid("metric", "is required (cpu, memory, fs:/, …)"))?;
    let to = time_param("to", query.to.as_deref())?.unwrap_or_else(now);
    let from = time_param("from", query.from.as_deref())?.unwrap_or(to - Duration::days(1));
    if from > to {
        return Err(HostsError::invalid("from", "is after `to`"));
    }
    let host_id = repo::host_id(&store, &name)
        .await?
        .ok_or_else(|| HostsError::NotFound(format!("no host `{name}`")))?;
    // Raw rows for up to a day and a half, 5-minute roll-ups up to 45 days, hourly beyond.
    let span = to - from;
    let (step, points) = if span <= Duration::hours(36) {
        let points = repo::series(&store, host_id, &metric, from, to, SERIES_MAX).await?;
        (0, serde_json::to_value(points).unwrap_or_default())
    } else {
        let step = if span <= Duration::days(45) {
            300
        } else {
            3600
        };
        let points =
            rollup::rolled_series(&store, host_id, &metric, step, from, to, SERIES_MAX).await?;
        (step, serde_json::to_value(points).unwrap_or_default())
    };
    Ok(HttpResponse::Ok().json(json!({
        "host": name,
        "metric": metric,
        "from": from,
        "to": to,
        "step": step,
        "points": points,
    })))
}
