//! The board over the API: actions on alerts (one or a selection), the board's page and counts,
//! and the live stream. The console's pages call the same functions.

use actix_web::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use vigie_auth::Caller;
use vigie_core::audit::Actor;
use vigie_core::http::FieldProblem;
use vigie_core::role::{Permission, Role};
use vigie_core::store::Store;
use vigie_notify::Mail;

use crate::actions::{self, Action, Done, Recipient, TransferMail};
use crate::board::{self, BoardFilter, Cursor};
use crate::error::AlertsError;
use crate::live::{self, Feed};
use crate::model::Alert;

pub fn configure(cfg: &mut web::ServiceConfig) {
    // Before `/api/v1/alerts/{id}`: these paths are not ids.
    cfg.route("/api/v1/alerts/stream", web::get().to(stream))
        .route("/api/v1/alerts/board", web::get().to(board_page))
        .route("/api/v1/alerts/actions", web::post().to(bulk))
        .route("/api/v1/alerts/{id}/ack", web::post().to(ack))
        .route("/api/v1/alerts/{id}/transfer", web::post().to(transfer))
        .route("/api/v1/alerts/{id}/defer", web::post().to(defer))
        .route("/api/v1/alerts/{id}/archive", web::post().to(archive))
        .route("/api/v1/alerts/{id}", web::delete().to(delete));
}

fn invalid(field: &str, problem: &str) -> AlertsError {
    AlertsError::Invalid(vec![FieldProblem {
        field: field.to_owned(),
        problem: problem.to_owned(),
    }])
}

fn actor(caller: &Caller) -> Actor {
    Actor {
        user_id: caller.user_id,
        login: caller.login.clone(),
        role: caller.role,
    }
}

/// The people an alert can be transferred to, by login: enabled users of the on-call role
/// (until the on-call planning provides who is on duty).
pub async fn recipients(store: &Store, logins: &[String]) -> Result<Vec<Recipient>, AlertsError> {
    if logins.is_empty() {
        return Err(invalid("to", "name at least one person to transfer to"));
    }
    let mut out = Vec::new();
    for login in logins {
        let user = vigie_auth::get_user_by_login(store, login).await?;
        match user {
            Some(u) if !u.disabled && u.role() == Role::Oncall => out.push(Recipient {
                user_id: u.id,
                login: u.login.clone(),
                email: u.email.clone().unwrap_or_default(),
                lang: u.lang.clone(),
            }),
            _ => {
                return Err(invalid(
                    "to",
                    &format!("`{login}` is not an enabled on-call person"),
                ));
            }
        }
    }
    Ok(out)
}

/// The transfer mail, in the recipient's language, with a link to the alert.
pub fn transfer_mail(base_url: String) -> impl Fn(&Alert, &Recipient) -> Mail + Sync {
    move |alert: &Alert, to: &Recipient| {
        let (login, email) = (to.login.as_str(), to.email.as_str());
        let level = ["0 (low)", "1 (warning)", "2 (critical)"]
            .get(alert.severity.clamp(0, 2) as usize)
            .copied()
            .unwrap_or_default();
        let (subject, text) = match vigie_console::Renderer::get() {
            Ok(r) => {
                let lang = vigie_console::Lang::negotiate(
                    to.lang.as_deref(),
                    None,
                    vigie_console::Renderer::default_lang(),
                );
                let locales = &r.locales;
                let fill = |key: &str| {
                    locales
                        .text(lang, key)
                        .replace("{resource}", &alert.resource)
                        .replace("{message}", &alert.message)
                        .replace("{level}", level)
                        .replace("{domain}", &alert.domain)
                        .replace("{login}", login)
                        .replace("{link}", &format!("{base_url}/alerts/{}", alert.id))
                };
                (
                    fill("alerts.mail_transfer_subject"),
                    fill("alerts.mail_transfer_body"),
                )
            }
            Err(_) => (
                format!("Alert: {}", alert.resource),
                format!(
                    "{} {}\n{base_url}/alerts/{}",
                    alert.resource, alert.message, alert.id
                ),
            ),
        };
        Mail {
            to: email.to_owned(),
            subject,
            text,
            html: None,
            kind: "alert.transfer",
            user_id: None,
        }
    }
}

/// Applies an action and tells the boards.
#[allow(clippy::too_many_arguments)] // each is a distinct input of the action; a struct would only rename them
pub async fn run(
    store: &Store,
    feed: &Feed,
    actor: &Actor,
    ip: Option<&str>,
    ids: &[i64],
    action: &Action,
    to: &[String],
    base_url: String,
) -> Result<Vec<Done>, AlertsError> {
    let compose = transfer_mail(base_url);
    let transfer = match action {
        Action::Transfer(_) => Some(TransferMail {
            recipients: recipients(store, to).await?,
            compose: &compose,
        }),
        _ => None,
    };
    let done = actions::apply(store, actor, ip, ids, action, transfer.as_ref()).await?;
    feed.changed(
        done.iter()
            .filter(|d| d.refused.is_none())
            .map(|d| d.id)
            .collect(),
    );
    Ok(done)
}

fn base_url(req: &HttpRequest) -> String {
    match req.app_data::<web::Data<vigie_console::Console>>() {
        Some(c) => c.base_url(),
        None => format!(
            "{}://{}",
            req.connection_info().scheme(),
            req.connection_info().host()
        ),
    }
}

fn ip(req: &HttpRequest) -> Option<String> {
    req.peer_addr().map(|a| a.ip().to_string())
}

fn id_of(req: &HttpRequest) -> Result<i64, AlertsError> {
    let raw = req.match_info().get("id").unwrap_or_default();
    raw.parse()
        .map_err(|_| invalid("id", &format!("`{raw}` is not an alert id")))
}

/// One alert's action: 200 with the alert's new state, 404, or 409 with the reason.
async fn one(
    req: HttpRequest,
    caller: Caller,
    action: Action,
    to: Vec<String>,
) -> Result<HttpResponse, AlertsError> {
    caller.require(Permission::AlertsAct)?;
    let id = id_of(&req)?;
    let store = req
        .app_data::<web::Data<Store>>()
        .ok_or(AlertsError::NotFound(id))?;
    let feed = req
        .app_data::<web::Data<Feed>>()
        .ok_or(AlertsError::NotFound(id))?;
    let done = run(
        store,
        feed,
        &actor(&caller),
        ip(&req).as_deref(),
        &[id],
        &action,
        &to,
        base_url(&req),
    )
    .await?;
    match done.first() {
        Some(Done {
            refused: Some("not_found"),
            ..
        })
        | None => Err(AlertsError::NotFound(id)),
        Some(Done {
            refused: Some(reason),
            state,
            ..
        }) => Ok(HttpResponse::Conflict().json(serde_json::json!({
            "error": format!("cannot {} alert {id}: {reason}", action.name()),
            "state": state,
        }))),
        Some(d) => Ok(HttpResponse::Ok().json(d)),
    }
}

async fn ack(req: HttpRequest, caller: Caller) -> Result<HttpResponse, AlertsError> {
    one(req, caller, Action::Acknowledge, Vec::new()).await
}

async fn archive(req: HttpRequest, caller: Caller) -> Result<HttpResponse, AlertsError> {
    one(req, caller, Action::Archive, Vec::new()).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TransferBody {
    to: Vec<String>,
}

fn json<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, AlertsError> {
    let mut de = serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let field = e.path().to_string();
        invalid(
            if field == "." { "body" } else { &field },
            &e.inner().to_string(),
        )
    })
}

async fn transfer(
    req: HttpRequest,
    caller: Caller,
    body: web::Bytes,
) -> Result<HttpResponse, AlertsError> {
    caller.require(Permission::AlertsAct)?;
    let body: TransferBody = json(&body)?;
    one(req, caller, Action::Transfer(Vec::new()), body.to).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DeferBody {
    until: String,
}

/// A deferral's end: an RFC 3339 time in the future (at most a year away).
pub fn parse_until(text: &str) -> Result<DateTime<Utc>, AlertsError> {
    let until = DateTime::parse_from_rfc3339(text.trim())
        .map_err(|_| {
            invalid(
                "until",
                "must be an RFC 3339 time, e.g. 2026-11-21T18:00:00Z",
            )
        })?
        .with_timezone(&Utc);
    let now = vigie_core::time::now();
    if until <= now {
        return Err(invalid("until", "must be in the future"));
    }
    if until > now + chrono::Duration::days(366) {
        return Err(invalid("until", "must be within a year"));
    }
    Ok(vigie_core::time::to_store_precision(until))
}

async fn defer(
    req: HttpRequest,
    caller: Caller,
    body: web::Bytes,
) -> Result<HttpResponse, AlertsError> {
    caller.require(Permission::AlertsAct)?;
    let body: DeferBody = json(&body)?;
    let until = parse_until(&body.until)?;
    one(req, caller, Action::Defer(until), Vec::new()).await
}

async fn delete(req: HttpRequest, caller: Caller) -> Result<HttpResponse, AlertsError> {
    let archive = req
        .query_string()
        .split('&')
        .any(|kv| kv == "archive=true" || kv == "archive=1");
    let action = if archive {
        Action::Archive
    } else {
        Action::Delete
    };
    one(req, caller, action, Vec::new()).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BulkBody {
    ids: Vec<i64>,
    action: String,
    #[serde(default)]
    to: Vec<String>,
    #[serde(default)]
    until: Option<String>,
}

/// Parses an action's name and parameters.
pub fn action_of(name: &str, until: Option<&str>) -> Result<Action, AlertsError> {
    Ok(match name {
        "ack" => Action::Acknowledge,
        "transfer" => Action::Transfer(Vec::new()),
        "defer" => Action::Defer(parse_until(until.unwrap_or_default())?),
        "archive" => Action::Archive,
        "delete" => Action::Delete,
        other => {
            return Err(invalid(
                "action",
                &format!("unknown action `{other}` (ack, transfer, defer, archive, delete)"),
            ));
        }
    })
}

/// `POST /api/v1/alerts/actions`: one action on a selection; each alert's outcome.
async fn bulk(
    req: HttpRequest,
    caller: Caller,
    body: web::Bytes,
    store: web::Data<Store>,
    feed: web::Data<Feed>,
) -> Result<HttpResponse, AlertsError> {
    caller.require(Permission::AlertsAct)?;
    let body: BulkBody = json(&body)?;
    if body.ids.is_empty() || body.ids.len() > 1000 {
        return Err(invalid("ids", "give 1 to 1000 alert ids"));
    }
    let action = action_of(&body.action, body.until.as_deref())?;
    let done = run(
        &store,
        &feed,
        &actor(&caller),
        ip(&req).as_deref(),
        &body.ids,
        &action,
        &body.to,
        base_url(&req),
    )
    .await?;
    Ok(HttpResponse::Ok().json(done))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BoardQuery {
    domain: Option<String>,
    severity: Option<i32>,
    after: Option<String>,
    limit: Option<i64>,
}

/// `GET /api/v1/alerts/board`: the open alerts in the board's order, with the counts.
async fn board_page(
    req: HttpRequest,
    caller: Caller,
    store: web::Data<Store>,
    feed: web::Data<Feed>,
) -> Result<HttpResponse, AlertsError> {
    caller.require(Permission::AlertsView)?;
    let q: BoardQuery = web::Query::<BoardQuery>::from_query(req.query_string())
        .map_err(|e| invalid("query", &e.to_string()))?
        .into_inner();
    if q.severity.is_some_and(|s| !(0..=2).contains(&s)) {
        return Err(invalid("severity", "must be 0, 1 or 2"));
    }
    let after = match &q.after {
        Some(a) => Some(Cursor::decode(a).ok_or_else(|| invalid("after", "not a board cursor"))?),
        None => None,
    };
    let filter = BoardFilter {
        domain: q.domain,
        severity: q.severity,
        after,
        limit: q.limit.unwrap_or(board::PAGE),
    };
    let unfiltered = filter.domain.is_none() && filter.severity.is_none() && filter.after.is_none();
    let alerts = if unfiltered && filter.limit == board::PAGE {
        feed.first_page(&store).await?.as_ref().clone()
    } else {
        board::page(&store, &filter).await?
    };
    let next = (alerts.len() as i64 == filter.limit.clamp(1, 500))
        .then(|| alerts.last().map(|a| Cursor::of(a).encode()))
        .flatten();
    Ok(HttpResponse::Ok().json(serde_json::json!({
        "alerts": alerts,
        "counts": feed.counts(&store).await?,
        "next": next,
    })))
}

/// The SSE answer for a client, resuming after its last event id when it sends one.
pub async fn sse(
    req: &HttpRequest,
    store: &Store,
    feed: &Feed,
) -> Result<HttpResponse, AlertsError> {
    let last = req
        .headers()
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .or_else(|| form_urlencoded_value(req.query_string(), "last_event_id"));
    let backlog = match last.as_deref().and_then(live::parse_event_id) {
        Some(t) => live::since(store, t).await?,
        None => Vec::new(),
    };
    Ok(HttpResponse::Ok()
        .insert_header((CONTENT_TYPE, "text/event-stream"))
        .insert_header((CACHE_CONTROL, "no-store"))
        .insert_header(("X-Accel-Buffering", "no"))
        .streaming(live::stream(feed, backlog)))
}

fn form_urlencoded_value(query: &str, key: &str) -> Option<String> {
    query.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        (k == key).then(|| v.replace("%2D", "-"))
    })
}

async fn stream(
    req: HttpRequest,
    caller: Caller,
    store: web::Data<Store>,
    feed: web::Data<Feed>,
) -> Result<HttpResponse, AlertsError> {
    caller.require(Permission::AlertsView)?;
    sse(&req, &store, &feed).await
}
