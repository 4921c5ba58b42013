//! The sources module's HTTP API.
//!
//! | route | permission | |
//! | --- | --- | --- |
//! | `GET /api/v1/sources` | supervision view or sources administration | each source's health line |
//! | `GET /api/v1/sources/{name}/unavailability?resource=&from=&to=` | supervision view | asked of the source now |
//! | `GET /api/v1/sources/{name}/statistics?resource=&from=&to=` | equipment statistics | asked of the source now |
//! | `GET /api/v1/sources/{name}/node?resource=&from=&to=` | equipment statistics | a node's status, CPU, memory and history (Orion; 422 from other kinds) |
//! | `GET`/`PUT /api/v1/sources/{name}/settings` | sources administration | connector settings; a change restarts the poller |
//! | `GET /api/v1/equipment?source=&removed=` | supervision view | equipment the sources reported |
//! | `POST /api/v1/backups` | alerts ingestion | a backup job's outcome (202) |
//! | `GET /api/v1/backups?job=&limit=` | alerts view | the newest reports |
//! | `GET /api/v1/backups/jobs`, `PUT`/`DELETE /api/v1/backups/jobs/{job}` | alerts view / sources administration | expected jobs |

use std::time::Duration;

use actix_web::{HttpResponse, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use vigie_auth::Caller;
use vigie_core::audit::Actor;
use vigie_core::http::FieldProblem;
use vigie_core::role::Permission;
use vigie_core::store::Store;
use vigie_poll::{Health, Question};

use crate::backups::{BackupNotifier, Schedule, parse_duration, parse_report};
use crate::error::SourcesError;
use crate::repo;
use crate::sources::{AskError, ChangeError, Sources};

/// How long an on-demand question may take (the console's pages wait as long).
pub(crate) const ASK_TIMEOUT: Duration = Duration::from_secs(15);
/// Largest accepted body of these routes.
const BODY_MAX: usize = 64 * 1024;

/// Mounts the module's routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/api/v1/sources").route(web::get().to(list_sources)))
        .service(
            web::resource("/api/v1/sources/{name}/unavailability")
                .route(web::get().to(unavailability)),
        )
        .service(
            web::resource("/api/v1/sources/{name}/statistics").route(web::get().to(statistics)),
        )
        .service(web::resource("/api/v1/sources/{name}/node").route(web::get().to(node_report)))
        .service(
            web::resource("/api/v1/sources/{name}/settings")
                .route(web::get().to(get_settings))
                .route(web::put().to(put_settings)),
        )
        .service(web::resource("/api/v1/equipment").route(web::get().to(list_equipment)))
        .service(
            web::resource("/api/v1/backups")
                .route(web::post().to(report))
                .route(web::get().to(list_backups)),
        )
        .service(web::resource("/api/v1/backups/jobs").route(web::get().to(list_jobs)))
        .service(
            web::resource("/api/v1/backups/jobs/{job}")
                .route(web::put().to(put_job))
                .route(web::delete().to(delete_job)),
        );
}

fn actor(caller: &Caller) -> Actor {
    Actor {
        user_id: caller.user_id,
        login: caller.login.clone(),
        role: caller.role,
    }
}

fn invalid(field: &str, problem: impl Into<String>) -> SourcesError {
    SourcesError::Invalid(vec![FieldProblem {
        field: field.into(),
        problem: problem.into(),
    }])
}

fn json_body(bytes: &[u8]) -> Result<Value, SourcesError> {
    if bytes.len() > BODY_MAX {
        return Err(invalid("body", format!("is over {BODY_MAX} bytes")));
    }
    serde_json::from_slice(bytes).map_err(|e| invalid("body", format!("is not JSON: {e}")))
}

/// A source's line as the API shows it.
#[derive(Serialize)]
struct SourceLine {
    name: String,
    kind: String,
    state: &'static str,
    enabled: bool,
    interval_seconds: u64,
    last_poll: Option<DateTime<Utc>>,
    last_success: Option<DateTime<Utc>>,
    last_error: Option<String>,
    last_error_class: Option<String>,
    last_error_at: Option<DateTime<Utc>>,
    failing_since: Option<DateTime<Utc>>,
    /// Seconds since the last committed poll.
    lag: Option<i64>,
    rows_read: u64,
    records: u64,
    last_poll_ms: Option<u64>,
    backlog: bool,
    newest_row: Option<DateTime<Utc>>,
    unreachable_alert: bool,
}

impl SourceLine {
    fn from(h: Health, now: DateTime<Utc>) -> SourceLine {
        SourceLine {
            lag: h.lag_seconds(now),
            enabled: h.state != vigie_poll::State::Disabled,
            name: h.source,
            kind: h.kind,
            state: h.state.as_str(),
            interval_seconds: h.interval_seconds,
            last_poll: h.last_poll,
            last_success: h.last_success,
            last_error: h.last_error,
            last_error_class: h.last_error_class,
            last_error_at: h.last_error_at,
            failing_since: h.failing_since,
            rows_read: h.rows_read,
            records: h.records,
            last_poll_ms: h.last_poll_ms,
            backlog: h.backlog,
            newest_row: h.newest_row,
            unreachable_alert: h.alert_raised,
        }
    }
}

async fn list_sources(
    caller: Caller,
    store: web::Data<Store>,
    sources: Option<web::Data<Sources>>,
) -> Result<HttpResponse, SourcesError> {
    if caller.require(Permission::SupervisionView).is_err() {
        caller.require(Permission::AdminSources)?;
    }
    let lines = match sources {
        Some(s) => s.health(),
        // Another process polls: show what it stored.
        None => repo::list_health(&store).await?,
    };
    let now = Utc::now();
    let body: Vec<SourceLine> = lines
        .into_iter()
        .map(|h| SourceLine::from(h, now))
        .collect();
    Ok(HttpResponse::Ok().json(body))
}

#[derive(Deserialize)]
struct AskQuery {
    resource: Option<String>,
    from: Option<String>,
    to: Option<String>,
}

fn question_range(q: &AskQuery) -> Result<(String, DateTime<Utc>, DateTime<Utc>), SourcesError> {
    let resource = q
        .resource
        .as_deref()
        .map(str::trim)
        .filter(|r| !r.is_empty())
        .ok_or_else(|| invalid("resource", "is required"))?;
    let time = |field: &str, v: Option<&str>, default: DateTime<Utc>| match v {
        None => Ok(default),
        Some(s) => DateTime::parse_from_rfc3339(s)
            .map(|t| t.with_timezone(&Utc))
            .map_err(|_| invalid(field, "is not an RFC 3339 time")),
    };
    let now = Utc::now();
    let to = time("to", q.to.as_deref(), now)?;
    let from = time("from", q.from.as_deref(), to - chrono::Duration::days(7))?;
    if from >= to {
        return Err(invalid("from", "must be before `to`"));
    }
    Ok((resource.to_owned(), from, to))
}

async fn ask(
    sources: Option<web::Data<Sources>>,
    name: &str,
    question: Question,
) -> Result<HttpResponse, SourcesError> {
    let sources =
        sources.ok_or_else(|| SourcesError::NotFound(format!("no source named `{name}`")))?;
    match sources.ask(name, &question, ASK_TIMEOUT).await {
        Ok(answer) => Ok(HttpResponse::Ok().json(answer)),
        Err(AskError::UnknownSource(n)) => {
            Err(SourcesError::NotFound(format!("no source named `{n}`")))
        }
        Err(e @ AskError::NotRunning(_)) => Err(SourcesError::Unavailable(e.to_string())),
        Err(AskError::Source(e)) => Err(SourcesError::Source(e)),
    }
}

async fn unavailability(
    caller: Caller,
    name: web::Path<String>,
    query: web::Query<AskQuery>,
    sources: Option<web::Data<Sources>>,
) -> Result<HttpResponse, SourcesError> {
    caller.require(Permission::SupervisionView)?;
    let (resource, from, to) = question_range(&query)?;
    ask(
        sources,
        &name,
        Question::Unavailability { resource, from, to },
    )
    .await
}

async fn statistics(
    caller: Caller,
    name: web::Path<String>,
    query: web::Query<AskQuery>,
    sources: Option<web::Data<Sources>>,
) -> Result<HttpResponse, SourcesError> {
    caller.require(Permission::EquipmentStats)?;
    let (resource, from, to) = question_range(&query)?;
    ask(sources, &name, Question::Statistics { resource, from, to }).await
}

/// A node's report: its history is statistics, hence the statistics permission.
async fn node_report(
    caller: Caller,
    name: web::Path<String>,
    query: web::Query<AskQuery>,
    sources: Option<web::Data<Sources>>,
) -> Result<HttpResponse, SourcesError> {
    caller.require(Permission::EquipmentStats)?;
    let (resource, from, to) = question_range(&query)?;
    ask(sources, &name, Question::NodeReport { resource, from, to }).await
}

async fn get_settings(
    caller: Caller,
    name: web::Path<String>,
    store: web::Data<Store>,
) -> Result<HttpResponse, SourcesError> {
    caller.require(Permission::AdminSources)?;
    let settings = repo::load_settings(&store, &name).await?;
    Ok(HttpResponse::Ok().json(settings))
}

async fn put_settings(
    caller: Caller,
    name: web::Path<String>,
    body: web::Bytes,
    sources: Option<web::Data<Sources>>,
) -> Result<HttpResponse, SourcesError> {
    caller.require(Permission::AdminSources)?;
    let settings = json_body(&body)?;
    if !settings.is_object() {
        return Err(invalid(
            "body",
            "must be a JSON object of the connector's settings",
        ));
    }
    let sources =
        sources.ok_or_else(|| SourcesError::NotFound(format!("no source named `{name}`")))?;
    match sources
        .change_settings(&name, settings, Some(&actor(&caller)))
        .await
    {
        Ok(()) => Ok(HttpResponse::NoContent().finish()),
        Err(ChangeError::UnknownSource(n)) => {
            Err(SourcesError::NotFound(format!("no source named `{n}`")))
        }
        Err(ChangeError::Invalid(e)) => Err(invalid("settings", e.to_string())),
        Err(ChangeError::Store(e)) => Err(SourcesError::Store(e)),
    }
}

#[derive(Deserialize)]
struct EquipmentQuery {
    source: Option<String>,
    removed: Option<bool>,
}

async fn list_equipment(
    caller: Caller,
    query: web::Query<EquipmentQuery>,
    store: web::Data<Store>,
) -> Result<HttpResponse, SourcesError> {
    caller.require(Permission::SupervisionView)?;
    let rows = repo::list_equipment(
        &store,
        query.source.as_deref(),
        query.removed.unwrap_or(false),
    )
    .await?;
    Ok(HttpResponse::Ok().json(rows))
}

#[derive(Serialize)]
struct Reported {
    id: i64,
}

async fn report(
    caller: Caller,
    body: web::Bytes,
    store: web::Data<Store>,
    notifier: Option<web::Data<BackupNotifier>>,
) -> Result<HttpResponse, SourcesError> {
    caller.require(Permission::AlertsIngest)?;
    let value = json_body(&body)?;
    let backup = parse_report(&value, Some(&caller.login)).map_err(SourcesError::Invalid)?;
    let id = repo::insert_backup(&store, &backup).await?;
    if let Some(n) = notifier {
        n.notify();
    }
    Ok(HttpResponse::Accepted().json(Reported { id }))
}

#[derive(Deserialize)]
struct BackupQuery {
    job: Option<String>,
    limit: Option<u32>,
}

async fn list_backups(
    caller: Caller,
    query: web::Query<BackupQuery>,
    store: web::Data<Store>,
) -> Result<HttpResponse, SourcesError> {
    caller.require(Permission::AlertsView)?;
    let limit = query.limit.unwrap_or(100).clamp(1, 1000);
    Ok(HttpResponse::Ok().json(repo::list_backups(&store, query.job.as_deref(), limit).await?))
}

async fn list_jobs(caller: Caller, store: web::Data<Store>) -> Result<HttpResponse, SourcesError> {
    caller.require(Permission::AlertsView)?;
    Ok(HttpResponse::Ok().json(repo::list_jobs(&store).await?))
}

async fn put_job(
    caller: Caller,
    job: web::Path<String>,
    body: web::Bytes,
    store: web::Data<Store>,
) -> Result<HttpResponse, SourcesError> {
    caller.require(Permission::AdminSources)?;
    let value = json_body(&body)?;
    let Some(map) = value.as_object() else {
        return Err(invalid(
            "body",
            "must be a JSON object with `schedule` and `deadline`",
        ));
    };
    let mut problems = Vec::new();
    for key in map.keys() {
        if !matches!(key.as_str(), "schedule" | "deadline" | "enabled") {
            problems.push(FieldProblem {
                field: key.clone(),
                problem: "is not a field of an expected job (schedule, deadline, enabled)".into(),
            });
        }
    }
    let schedule = match map.get("schedule").and_then(Value::as_str) {
        Some(s) => match Schedule::parse(s) {
            Ok(_) => Some(s.trim().to_owned()),
            Err(e) => {
                problems.push(FieldProblem {
                    field: "schedule".into(),
                    problem: e,
                });
                None
            }
        },
        None => {
            problems.push(FieldProblem {
                field: "schedule".into(),
                problem: "is required (`daily 23:00`, `weekdays 01:30`, `mon,wed,fri 02:30`; UTC)"
                    .into(),
            });
            None
        }
    };
    let deadline = match map.get("deadline") {
        Some(v) => match parse_duration(v) {
            Ok(s) => Some(s),
            Err(e) => {
                problems.push(FieldProblem {
                    field: "deadline".into(),
                    problem: e,
                });
                None
            }
        },
        None => {
            problems.push(FieldProblem {
                field: "deadline".into(),
                problem: "is required (`2h`, or seconds)".into(),
            });
            None
        }
    };
    let enabled = match map.get("enabled") {
        None => true,
        Some(Value::Bool(b)) => *b,
        Some(_) => {
            problems.push(FieldProblem {
                field: "enabled".into(),
                problem: "must be true or false".into(),
            });
            true
        }
    };
    let name = job.trim();
    if name.is_empty() || name.chars().count() > 200 || name.chars().any(char::is_control) {
        problems.push(FieldProblem {
            field: "job".into(),
            problem: "must be one line of 1 to 200 characters".into(),
        });
    }
    let (Some(schedule), Some(deadline), true) = (schedule, deadline, problems.is_empty()) else {
        return Err(SourcesError::Invalid(problems));
    };
    repo::save_job(
        &store,
        name,
        &schedule,
        deadline,
        enabled,
        Some(&actor(&caller)),
    )
    .await?;
    Ok(HttpResponse::NoContent().finish())
}

async fn delete_job(
    caller: Caller,
    job: web::Path<String>,
    store: web::Data<Store>,
) -> Result<HttpResponse, SourcesError> {
    caller.require(Permission::AdminSources)?;
    if repo::delete_job(&store, &job, Some(&actor(&caller))).await? {
        Ok(HttpResponse::NoContent().finish())
    } else {
        Err(SourcesError::NotFound(format!(
            "no expected backup job `{}`",
            job.as_str()
        )))
    }
}
