//! The incidents over the API (`Authorization: Bearer TOKEN`): open, list, show, the steps
//! (qualify, transfer, resolve, close, delete, edit) and attachments. Errors are JSON naming
//! the field; 401 without a token, 403 for a role without the step, 404, 409 when the state
//! machine refuses (the body names the state).

use actix_web::http::StatusCode;
use actix_web::http::header::CONTENT_TYPE;
use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::json;
use vigie_auth::Caller;
use vigie_core::audit::Actor;
use vigie_core::role::{Permission, Role};
use vigie_core::store::Store;

use crate::error::IncidentsError;
use crate::model::{self, Attachment, Incident, IncidentFull, Person, Resolution, TimelineEntry};
use crate::repo::{self, Filter, Scope};
use crate::workflow::{self, Doer, Env, Route};
use crate::{IncidentsSettings, attachments};

/// Registers the API routes (before any catch-all). Reads `web::Data<Store>` and, when present,
/// `web::Data<Pipeline>`, `web::Data<IncidentsSettings>`, `web::Data<Domains>`,
/// `web::Data<Console>` (for the links in mails).
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/api/v1/incidents", web::post().to(open))
        .route("/api/v1/incidents", web::get().to(list))
        .route("/api/v1/incidents/{id}", web::get().to(show))
        .route(
            "/api/v1/incidents/{id}",
            web::patch().to(|r, c, b| step(Route::Edit, r, c, Some(b))),
        )
        .route(
            "/api/v1/incidents/{id}",
            web::delete().to(|r, c| step(Route::Delete, r, c, None)),
        )
        .route(
            "/api/v1/incidents/{id}/qualify",
            web::post().to(|r, c, b| step(Route::Qualify, r, c, Some(b))),
        )
        .route(
            "/api/v1/incidents/{id}/transfer",
            web::post().to(|r, c, b| step(Route::Transfer, r, c, Some(b))),
        )
        .route(
            "/api/v1/incidents/{id}/resolve",
            web::post().to(|r, c, b| step(Route::Resolve, r, c, Some(b))),
        )
        .route(
            "/api/v1/incidents/{id}/close",
            web::post().to(|r, c| step(Route::Close, r, c, None)),
        )
        .service(
            web::resource("/api/v1/incidents/{id}/attachments")
                .app_data(web::PayloadConfig::new(64 * 1024 * 1024))
                .route(web::post().to(upload)),
        )
        .route(
            "/api/v1/incidents/{id}/attachments/{aid}",
            web::get().to(download),
        );
}

/// A whole incident as the API shows it: the incident's fields (with `reference`,
/// `time_to_acknowledge_secs`, `time_to_resolve_secs`) and its lists.
#[derive(Serialize)]
pub struct IncidentOut<'a> {
    #[serde(flatten)]
    pub incident: &'a Incident,
    pub people: &'a [Person],
    pub resolutions: &'a [Resolution],
    pub timeline: &'a [TimelineEntry],
    pub attachments: &'a [Attachment],
    pub minutes_spent: i64,
}

impl<'a> IncidentOut<'a> {
    pub fn of(full: &'a IncidentFull) -> IncidentOut<'a> {
        IncidentOut {
            incident: &full.incident,
            people: &full.people,
            resolutions: &full.resolutions,
            timeline: &full.timeline,
            attachments: &full.attachments,
            minutes_spent: full.minutes_spent,
        }
    }
}

pub(crate) fn doer(caller: &Caller, req: &HttpRequest) -> Doer {
    Doer {
        actor: Actor {
            user_id: caller.user_id,
            login: caller.login.clone(),
            role: caller.role,
        },
        permissions: caller.permissions,
        ip: req.peer_addr().map(|a| a.ip().to_string()),
    }
}

fn store(req: &HttpRequest) -> Result<Store, IncidentsError> {
    req.app_data::<web::Data<Store>>()
        .map(|s| s.get_ref().clone())
        .ok_or_else(|| IncidentsError::Io(std::io::Error::other("no store registered")))
}

fn id_of(req: &HttpRequest, name: &str) -> Result<i64, IncidentsError> {
    let raw = req.match_info().get(name).unwrap_or_default();
    raw.parse()
        .map_err(|_| IncidentsError::invalid(name, format!("`{raw}` is not an id")))
}

/// Parses a JSON body; the error names the field at fault.
fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, IncidentsError> {
    let body = if body.iter().all(u8::is_ascii_whitespace) {
        b"{}".as_slice()
    } else {
        body
    };
    let de = &mut serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let problem = e.inner().to_string();
        let named = ["missing field `", "unknown field `"]
            .iter()
            .find_map(|p| problem.strip_prefix(p))
            .and_then(|rest| rest.split_once('`'))
            .map(|(name, _)| name.to_owned());
        let field = match (path.as_str(), named) {
            ("." | "", Some(name)) => name,
            ("." | "", None) => "body".to_owned(),
            (p, _) => p.to_owned(),
        };
        IncidentsError::invalid(field, problem)
    })
}

struct Ctx {
    store: Store,
    domains: vigie_core::domain::Domains,
    base_url: String,
    settings: IncidentsSettings,
}

impl Ctx {
    fn of(req: &HttpRequest) -> Result<Ctx, IncidentsError> {
        Ok(Ctx {
            store: store(req)?,
            domains: crate::domains(req),
            base_url: crate::base_url(req),
            settings: crate::settings(req),
        })
    }

    fn env(&self) -> Env<'_> {
        Env {
            store: &self.store,
            domains: &self.domains,
            base_url: &self.base_url,
            data_dir: &self.settings.data_dir,
        }
    }
}

async fn full_answer(
    store: &Store,
    id: i64,
    status: StatusCode,
) -> Result<HttpResponse, IncidentsError> {
    let full = model::load(store, id)
        .await?
        .ok_or(IncidentsError::NotFound(id))?;
    Ok(HttpResponse::build(status).json(IncidentOut::of(&full)))
}

async fn open(
    req: HttpRequest,
    caller: Caller,
    body: web::Bytes,
) -> Result<HttpResponse, IncidentsError> {
    caller.require(Permission::IncidentsOpen)?;
    let new: workflow::NewIncident = parse(&body)?;
    let ctx = Ctx::of(&req)?;
    let done = workflow::open(&ctx.env(), &doer(&caller, &req), &new).await?;
    crate::raise(&req, done.records).await;
    full_answer(&ctx.store, done.incident.id, StatusCode::CREATED).await
}

fn time_param(field: &str, value: Option<&str>) -> Result<Option<DateTime<Utc>>, IncidentsError> {
    match value.map(str::trim).filter(|v| !v.is_empty()) {
        None => Ok(None),
        Some(v) => DateTime::parse_from_rfc3339(v)
            .map(|t| Some(t.with_timezone(&Utc)))
            .or_else(|_| {
                chrono::NaiveDate::parse_from_str(v, "%Y-%m-%d")
                    .ok()
                    .and_then(|d| d.and_hms_opt(0, 0, 0))
                    .map(|t| Some(t.and_utc()))
                    .ok_or(())
            })
            .map_err(|_| IncidentsError::invalid(field, "must be an RFC 3339 time or YYYY-MM-DD")),
    }
}

/// The list scope of a person for a requested view (`all`, `mine`, `opened`): a manager's
/// "all" is their domains' incidents.
pub async fn scope_for(
    store: &Store,
    role: Role,
    user_id: i64,
    view: &str,
) -> Result<Scope, IncidentsError> {
    Ok(match view {
        "mine" => Scope::For(user_id),
        "opened" => Scope::OpenedBy(user_id),
        _ if role == Role::Manager => {
            Scope::Domains(vigie_auth::contacts::domains_of(store, user_id).await?)
        }
        _ => Scope::All,
    })
}

/// A list filter from query parameters (`state` may be a comma-separated list).
pub(crate) fn filter_of(
    q: &vigie_console::FormData,
    scope: Scope,
    times: (Option<DateTime<Utc>>, Option<DateTime<Utc>>),
) -> Result<Filter, IncidentsError> {
    let nonempty = |k: &str| {
        q.get(k)
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(|v| v.chars().take(200).collect::<String>())
    };
    let states: Vec<String> = nonempty("state")
        .map(|s| s.split(',').map(|x| x.trim().to_owned()).collect())
        .unwrap_or_default();
    if let Some(bad) = states.iter().find(|s| model::State::parse(s).is_none()) {
        return Err(IncidentsError::invalid(
            "state",
            format!("`{bad}` is not a state"),
        ));
    }
    let criticality = nonempty("criticality");
    if criticality
        .as_deref()
        .is_some_and(|c| model::Criticality::parse(c).is_none())
    {
        return Err(IncidentsError::invalid(
            "criticality",
            "must be green, orange or red",
        ));
    }
    let before_id = match nonempty("before") {
        Some(b) => Some(
            b.parse()
                .map_err(|_| IncidentsError::invalid("before", "must be an incident id"))?,
        ),
        None => None,
    };
    let limit = match nonempty("limit") {
        Some(l) => l
            .parse::<i64>()
            .ok()
            .filter(|l| (1..=1000).contains(l))
            .ok_or_else(|| IncidentsError::invalid("limit", "must be 1 to 1000"))?,
        None => 100,
    };
    Ok(Filter {
        scope,
        states,
        domain: nonempty("domain"),
        criticality,
        text: nonempty("q"),
        from: times.0,
        to: times.1,
        before_id,
        limit,
    })
}

async fn list(req: HttpRequest, caller: Caller) -> Result<HttpResponse, IncidentsError> {
    caller.require(Permission::IncidentsOpen)?;
    let store = store(&req)?;
    let q = vigie_console::FormData::parse(req.query_string().as_bytes());
    let times = (
        time_param("from", q.get("from"))?,
        time_param("to", q.get("to"))?,
    );
    let scope = scope_for(
        &store,
        caller.role,
        caller.user_id,
        q.get("view").unwrap_or("all"),
    )
    .await?;
    let filter = filter_of(&q, scope, times)?;
    let incidents = repo::list(&store, &filter).await?;
    let next = (incidents.len() as i64 == filter.limit)
        .then(|| incidents.last().map(|i| i.id))
        .flatten();
    let durations = repo::durations(&incidents);
    Ok(HttpResponse::Ok()
        .json(json!({"incidents": incidents, "next": next, "durations": durations})))
}

async fn show(req: HttpRequest, caller: Caller) -> Result<HttpResponse, IncidentsError> {
    caller.require(Permission::IncidentsOpen)?;
    let id = id_of(&req, "id")?;
    full_answer(&store(&req)?, id, StatusCode::OK).await
}

async fn step_answer(
    req: &HttpRequest,
    done: workflow::Done,
) -> Result<HttpResponse, IncidentsError> {
    let id = done.incident.id;
    crate::raise(req, done.records).await;
    full_answer(&store(req)?, id, StatusCode::OK).await
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct TransferBody {
    to: Vec<String>,
}

/// The step with its input read from the JSON body (close and delete have none).
fn input(route: Route, body: &[u8]) -> Result<workflow::Input, IncidentsError> {
    Ok(match route {
        Route::Edit => workflow::Input::Edit(parse(body)?),
        Route::Qualify => workflow::Input::Qualify(parse(body)?),
        Route::Transfer => workflow::Input::Transfer(parse::<TransferBody>(body)?.to),
        Route::Resolve => workflow::Input::Resolve(parse(body)?),
        Route::Close => workflow::Input::Close,
        Route::Delete => workflow::Input::Delete,
    })
}

/// The handler of a step's route: the route's permission, the id, the body, the step, the
/// incident after. Close and delete read no body.
async fn step(
    route: Route,
    req: HttpRequest,
    caller: Caller,
    body: Option<web::Bytes>,
) -> Result<HttpResponse, IncidentsError> {
    caller.require(route.permission())?;
    let id = id_of(&req, "id")?;
    let input = input(route, body.as_deref().unwrap_or_default())?;
    let ctx = Ctx::of(&req)?;
    let done = input.run(&ctx.env(), &doer(&caller, &req), id).await?;
    step_answer(&req, done).await
}

/// Writes the file, records it; the file goes again when the record fails.
pub(crate) async fn attach_bytes(
    env: &Env<'_>,
    doer: &Doer,
    settings: &IncidentsSettings,
    id: i64,
    name: &str,
    bytes: &[u8],
) -> Result<Attachment, IncidentsError> {
    // Refuse early (no file written) when the incident is unknown or closed to this person;
    // the step checks both again in its transaction.
    let incident = model::get(env.store, id)
        .await?
        .ok_or(IncidentsError::NotFound(id))?;
    if !doer.may(workflow::Step::Attach, &incident) {
        return Err(IncidentsError::Forbidden(
            "your role does not allow you to attach files to this incident".into(),
        ));
    }
    if !workflow::Step::Attach.possible(&incident.state) {
        return Err(IncidentsError::Conflict {
            step: "attach",
            state: incident.state,
            hint: "",
        });
    }
    let stored =
        attachments::store_file(&settings.data_dir, id, name, bytes, settings.attachment_max)
            .await?;
    match workflow::attach(env, doer, id, &stored).await {
        Ok(a) => Ok(a),
        Err(e) => {
            attachments::remove_files(&settings.data_dir, std::slice::from_ref(&stored.key));
            Err(e)
        }
    }
}

/// The request's `Content-Type` (empty when absent or not text).
pub(crate) fn content_type(req: &HttpRequest) -> String {
    req.headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

/// `multipart/form-data` with a `file` part, or the raw bytes with `?name=FILE`.
async fn upload(
    req: HttpRequest,
    caller: Caller,
    body: web::Bytes,
) -> Result<HttpResponse, IncidentsError> {
    caller.require(Permission::IncidentsOpen)?;
    let id = id_of(&req, "id")?;
    let ctx = Ctx::of(&req)?;
    let content_type = content_type(&req);
    let (name, bytes) = if content_type
        .to_ascii_lowercase()
        .starts_with("multipart/form-data")
    {
        let part = attachments::parse_multipart(&content_type, &body)?
            .into_iter()
            .find(|p| p.name == "file")
            .ok_or_else(|| IncidentsError::invalid("file", "is required"))?;
        (part.file_name.unwrap_or_default(), part.data)
    } else {
        let q = vigie_console::FormData::parse(req.query_string().as_bytes());
        (q.text("name"), body.to_vec())
    };
    let a = attach_bytes(
        &ctx.env(),
        &doer(&caller, &req),
        &ctx.settings,
        id,
        &name,
        &bytes,
    )
    .await?;
    Ok(HttpResponse::Created().json(a))
}

async fn download(req: HttpRequest, caller: Caller) -> Result<HttpResponse, IncidentsError> {
    caller.require(Permission::IncidentsOpen)?;
    let id = id_of(&req, "id")?;
    let aid = id_of(&req, "aid")?;
    let store = store(&req)?;
    let a = model::attachments_of(&store, id)
        .await?
        .into_iter()
        .find(|a| a.id == aid)
        .ok_or(IncidentsError::AttachmentNotFound(aid))?;
    attachments::serve(&crate::settings(&req).data_dir, &a).await
}
