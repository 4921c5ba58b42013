//! The alert board in the console: the live board, the search (history included), an alert's
//! page with its actions and history, and the delete confirmation. Every handler checks its
//! permission on the server; forms carry the session's CSRF token.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{DateTime, NaiveDateTime, TimeZone, Utc};
use tera::Context;
use vigie_console::{Console, FormData, PageError, Viewer, flash, see_other};
use vigie_core::role::{Permission, Role};
use vigie_core::store::Store;

use crate::act_api;
use crate::actions::{self, Action};
use crate::board::{self, BoardFilter, Cursor};
use crate::error::AlertsError;
use crate::live::Feed;
use crate::maintenance::{self, WindowForm};
use crate::repo::{self, AlertFilter};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/alerts", web::get().to(board_view))
        .route("/alerts/stream", web::get().to(stream))
        .route("/alerts/counts", web::get().to(counts))
        .route("/alerts/search", web::get().to(search))
        .route("/alerts/bulk", web::post().to(bulk))
        .route("/alerts/maintenance", web::get().to(maintenance_page))
        .route("/alerts/maintenance", web::post().to(maintenance_create))
        .route(
            "/alerts/maintenance/{id}/delete",
            web::post().to(maintenance_delete),
        )
        .route("/alerts/{id}", web::get().to(detail))
        .route("/alerts/{id}/action", web::post().to(act))
        .route("/alerts/{id}/delete", web::get().to(delete_confirm));
}

fn render(
    console: &Console,
    viewer: &Viewer,
    status: StatusCode,
    name: &str,
    context: Context,
) -> HttpResponse {
    console
        .renderer
        .page(status, name, viewer.lang, Some(viewer), context)
}

fn page_error(viewer: &Viewer, e: AlertsError) -> PageError {
    match e {
        AlertsError::Store(s) => s.into(),
        AlertsError::NotFound(_) => PageError::NotFound(viewer.lang),
        AlertsError::Invalid(_) => PageError::BadRequest(viewer.lang, "error.bad_request"),
        other => PageError::Internal(other.to_string()),
    }
}

fn query_map(req: &HttpRequest) -> std::collections::BTreeMap<String, String> {
    let form = FormData::parse(req.query_string().as_bytes());
    [
        "domain", "severity", "after", "state", "source", "resource", "q", "from", "to", "before",
    ]
    .into_iter()
    .filter_map(|k| {
        form.get(k)
            .map(|v| (k.to_owned(), v.trim().chars().take(200).collect::<String>()))
    })
    .filter(|(_, v)| !v.is_empty())
    .collect()
}

async fn board_view(
    req: HttpRequest,
    viewer: Viewer,
    console: web::Data<Console>,
    store: web::Data<Store>,
    feed: web::Data<Feed>,
) -> Result<HttpResponse, PageError> {
    viewer.require(Permission::AlertsView)?;
    let q = query_map(&req);
    let filter = BoardFilter {
        domain: q.get("domain").cloned(),
        severity: q
            .get("severity")
            .and_then(|s| s.parse().ok())
            .filter(|s| (0..=2).contains(s)),
        after: q.get("after").and_then(|a| Cursor::decode(a)),
        limit: 100,
    };
    let alerts = if filter.domain.is_none() && filter.severity.is_none() && filter.after.is_none() {
        feed.first_page(&store).await?.as_ref().clone()
    } else {
        board::page(&store, &filter).await?
    };
    let next = (alerts.len() == 100)
        .then(|| alerts.last().map(|a| Cursor::of(a).encode()))
        .flatten();
    let mut context = Context::new();
    context.insert("alerts", &alerts);
    context.insert("counts", &feed.counts(&store).await?);
    context.insert("next", &next);
    context.insert("filter_domain", &filter.domain.clone().unwrap_or_default());
    context.insert(
        "filter_severity",
        &filter.severity.map(|s| s.to_string()).unwrap_or_default(),
    );
    context.insert(
        "can_act",
        &viewer.permissions.contains(Permission::AlertsAct),
    );
    context.insert("live", &filter.after.is_none());
    Ok(render(
        &console,
        &viewer,
        StatusCode::OK,
        "alerts/board.html",
        context,
    ))
}

async fn stream(
    req: HttpRequest,
    viewer: Viewer,
    store: web::Data<Store>,
    feed: web::Data<Feed>,
) -> Result<HttpResponse, PageError> {
    viewer.require(Permission::AlertsView)?;
    act_api::sse(&req, &store, &feed)
        .await
        .map_err(|e| page_error(&viewer, e))
}

async fn counts(
    viewer: Viewer,
    store: web::Data<Store>,
    feed: web::Data<Feed>,
) -> Result<HttpResponse, PageError> {
    viewer.require(Permission::AlertsView)?;
    Ok(HttpResponse::Ok().json(feed.counts(&store).await?))
}

/// A day or a local time typed in a filter, in the viewer's time zone.
fn local_time(viewer: &Viewer, text: Option<&String>) -> Option<DateTime<Utc>> {
    let text = text?;
    let naive = NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M")
        .ok()
        .or_else(|| {
            chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d")
                .ok()?
                .and_hms_opt(0, 0, 0)
        })?;
    viewer
        .tz
        .from_local_datetime(&naive)
        .earliest()
        .map(|t| t.with_timezone(&Utc))
}

async fn search(
    req: HttpRequest,
    viewer: Viewer,
    console: web::Data<Console>,
    store: web::Data<Store>,
) -> Result<HttpResponse, PageError> {
    viewer.require(Permission::AlertsView)?;
    let q = query_map(&req);
    let list = |k: &str| -> Vec<String> {
        q.get(k)
            .map(|v| {
                v.split(',')
                    .map(|s| s.trim().to_owned())
                    .filter(|s| !s.is_empty())
                    .collect()
            })
            .unwrap_or_default()
    };
    let filter = AlertFilter {
        states: list("state"),
        severities: list("severity")
            .iter()
            .filter_map(|s| s.parse().ok())
            .collect(),
        domains: list("domain"),
        sources: list("source"),
        resource: q.get("resource").cloned(),
        text: q.get("q").cloned(),
        seen_from: local_time(&viewer, q.get("from")),
        seen_to: local_time(&viewer, q.get("to")),
        after_id: q.get("before").and_then(|b| b.parse().ok()),
        limit: 100,
    };
    let alerts = repo::list(&store, &filter).await?;
    let next = (alerts.len() == 100)
        .then(|| alerts.last().map(|a| a.id))
        .flatten();
    let mut context = Context::new();
    context.insert("alerts", &alerts);
    context.insert("next", &next);
    let mut shown = q.clone();
    for key in [
        "domain", "severity", "state", "source", "resource", "q", "from", "to",
    ] {
        shown.entry(key.to_owned()).or_default();
    }
    context.insert("q", &shown);
    let mut keep = q.clone();
    keep.remove("before");
    let keep: String = keep
        .iter()
        .map(|(k, v)| format!("{k}={}&", form_encode(v)))
        .collect();
    context.insert("keep", &keep);
    context.insert(
        "states",
        &[
            "new",
            "transferred",
            "acknowledged",
            "deferred",
            "cleared",
            "archived",
            "deleted",
        ],
    );
    Ok(render(
        &console,
        &viewer,
        StatusCode::OK,
        "alerts/search.html",
        context,
    ))
}

fn form_encode(v: &str) -> String {
    let mut out = String::new();
    for b in v.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b',' => {
                out.push(char::from(b))
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

async fn oncall_people(store: &Store) -> Result<Vec<(String, String)>, PageError> {
    let users = vigie_auth::search_users(store, None, false, None, 500).await?;
    Ok(users
        .into_iter()
        .filter(|u| u.role() == Role::Oncall)
        .map(|u| (u.login.clone(), u.name()))
        .collect())
}

async fn detail(
    viewer: Viewer,
    id: web::Path<i64>,
    console: web::Data<Console>,
    store: web::Data<Store>,
) -> Result<HttpResponse, PageError> {
    viewer.require(Permission::AlertsView)?;
    let alert = repo::get(&store, *id)
        .await?
        .ok_or(PageError::NotFound(viewer.lang))?;
    let mut context = Context::new();
    context.insert("history", &actions::history(&store, alert.id).await?);
    context.insert(
        "raw",
        &alert
            .raw
            .as_ref()
            .map(|r| serde_json::to_string_pretty(&r.0).unwrap_or_default()),
    );
    context.insert(
        "attributes",
        &serde_json::to_string_pretty(&alert.attributes.0).unwrap_or_default(),
    );
    context.insert("alert", &alert);
    context.insert(
        "can_act",
        &viewer.permissions.contains(Permission::AlertsAct),
    );
    context.insert(
        "can_open_incident",
        &viewer.permissions.contains(Permission::IncidentsOpen),
    );
    context.insert(
        "can_see_logs",
        &viewer.permissions.contains(Permission::SupervisionView),
    );
    context.insert("oncall", &oncall_people(&store).await?);
    Ok(render(
        &console,
        &viewer,
        StatusCode::OK,
        "alerts/detail.html",
        context,
    ))
}

async fn delete_confirm(
    viewer: Viewer,
    id: web::Path<i64>,
    console: web::Data<Console>,
    store: web::Data<Store>,
) -> Result<HttpResponse, PageError> {
    viewer.require(Permission::AlertsAct)?;
    let alert = repo::get(&store, *id)
        .await?
        .ok_or(PageError::NotFound(viewer.lang))?;
    let mut context = Context::new();
    context.insert("alert", &alert);
    Ok(render(
        &console,
        &viewer,
        StatusCode::OK,
        "alerts/delete.html",
        context,
    ))
}

/// The end of a deferral from the form: a local date-time, or a duration in hours.
fn form_until(viewer: &Viewer, form: &FormData) -> Option<DateTime<Utc>> {
    if let Some(hours) = form.get("hours").and_then(|h| h.trim().parse::<f64>().ok())
        && hours > 0.0
        && hours <= 24.0 * 366.0
    {
        return Some(vigie_core::time::now() + chrono::Duration::seconds((hours * 3600.0) as i64));
    }
    local_time(viewer, form.get("until").map(str::to_owned).as_ref())
}

async fn perform(
    req: &HttpRequest,
    viewer: &Viewer,
    console: &Console,
    store: &Store,
    feed: &Feed,
    ids: &[i64],
    form: &FormData,
) -> Result<Vec<actions::Done>, PageError> {
    let name = form.text("action");
    let action = match name.as_str() {
        "defer" => match form_until(viewer, form) {
            Some(until) if until > vigie_core::time::now() => {
                Action::Defer(vigie_core::time::to_store_precision(until))
            }
            _ => return Err(PageError::BadRequest(viewer.lang, "alerts.until_invalid")),
        },
        other => act_api::action_of(other, None)
            .map_err(|_| PageError::BadRequest(viewer.lang, "error.bad_request"))?,
    };
    let to: Vec<String> = form.all("to").into_iter().map(str::to_owned).collect();
    if matches!(action, Action::Transfer(_)) && to.is_empty() {
        return Err(PageError::BadRequest(viewer.lang, "alerts.transfer_nobody"));
    }
    let ip = req.peer_addr().map(|a| a.ip().to_string());
    act_api::run(
        store,
        feed,
        &viewer.actor(),
        ip.as_deref(),
        ids,
        &action,
        &to,
        console.base_url(),
    )
    .await
    .map_err(|e| page_error(viewer, e))
}

async fn act(
    req: HttpRequest,
    viewer: Viewer,
    id: web::Path<i64>,
    body: web::Bytes,
    console: web::Data<Console>,
    store: web::Data<Store>,
    feed: web::Data<Feed>,
) -> Result<HttpResponse, PageError> {
    viewer.require(Permission::AlertsAct)?;
    let form = FormData::parse(&body);
    viewer.check_csrf(form.get("_csrf"))?;
    let done = perform(&req, &viewer, &console, &store, &feed, &[*id], &form).await?;
    match done.first().and_then(|d| d.refused) {
        None => {
            flash(
                &store,
                &viewer,
                "success",
                &format!("alerts.done_{}", form.text("action")),
                None,
            )
            .await?
        }
        Some("not_found") => return Err(PageError::NotFound(viewer.lang)),
        Some(reason) => {
            flash(
                &store,
                &viewer,
                "error",
                &format!("alerts.refused_{reason}"),
                None,
            )
            .await?
        }
    }
    let back = if matches!(form.text("action").as_str(), "delete" | "archive") {
        "/alerts".to_owned()
    } else {
        format!("/alerts/{id}")
    };
    Ok(see_other(&back))
}

async fn bulk(
    req: HttpRequest,
    viewer: Viewer,
    body: web::Bytes,
    console: web::Data<Console>,
    store: web::Data<Store>,
    feed: web::Data<Feed>,
) -> Result<HttpResponse, PageError> {
    viewer.require(Permission::AlertsAct)?;
    let form = FormData::parse(&body);
    viewer.check_csrf(form.get("_csrf"))?;
    let ids: Vec<i64> = form.ids("id").into_iter().collect();
    if ids.is_empty() {
        flash(&store, &viewer, "error", "alerts.nothing_selected", None).await?;
        return Ok(see_other("/alerts"));
    }
    let done = perform(&req, &viewer, &console, &store, &feed, &ids, &form).await?;
    let applied = done.iter().filter(|d| d.refused.is_none()).count();
    flash(
        &store,
        &viewer,
        "success",
        "alerts.bulk_done",
        Some(format!("{applied}/{}", done.len())),
    )
    .await?;
    Ok(see_other("/alerts"))
}

async fn maintenance_context(
    viewer: &Viewer,
    store: &Store,
    form: &WindowForm,
    errors: std::collections::BTreeMap<String, String>,
) -> Result<Context, PageError> {
    let at = vigie_core::time::now();
    let windows: Vec<(maintenance::Window, bool)> = maintenance::list(store)
        .await?
        .into_iter()
        .map(|w| {
            let active = w.active_at(at);
            (w, active)
        })
        .collect();
    let mut context = Context::new();
    context.insert("windows", &windows);
    context.insert("covered", &board::in_maintenance(store, 200).await?);
    context.insert("form", form);
    context.insert("errors", &errors);
    context.insert(
        "can_act",
        &viewer.permissions.contains(Permission::AlertsAct),
    );
    Ok(context)
}

async fn maintenance_page(
    viewer: Viewer,
    console: web::Data<Console>,
    store: web::Data<Store>,
) -> Result<HttpResponse, PageError> {
    viewer.require(Permission::AlertsView)?;
    let form = WindowForm {
        recurrence: "none".into(),
        ..WindowForm::default()
    };
    let context = maintenance_context(&viewer, &store, &form, Default::default()).await?;
    Ok(render(
        &console,
        &viewer,
        StatusCode::OK,
        "alerts/maintenance.html",
        context,
    ))
}

async fn maintenance_create(
    viewer: Viewer,
    body: web::Bytes,
    console: web::Data<Console>,
    store: web::Data<Store>,
    feed: web::Data<Feed>,
    pipeline: web::Data<crate::pipeline::Pipeline>,
) -> Result<HttpResponse, PageError> {
    viewer.require(Permission::AlertsAct)?;
    let data = FormData::parse(&body);
    viewer.check_csrf(data.get("_csrf"))?;
    let optional = |k: &str| Some(data.text(k).trim().to_owned()).filter(|v| !v.is_empty());
    let form = WindowForm {
        name: data.text("name"),
        domain: optional("domain"),
        resource_pattern: optional("resource_pattern"),
        starts_at: local_time(&viewer, optional("starts_at").as_ref()),
        ends_at: local_time(&viewer, optional("ends_at").as_ref()),
        recurrence: data.text("recurrence"),
    };
    let domains: Vec<String> = pipeline
        .settings()
        .domains
        .ids()
        .map(str::to_owned)
        .collect();
    let problems = maintenance::check(&form, &domains);
    if !problems.is_empty() {
        let errors = problems
            .iter()
            .map(|(field, key)| ((*field).to_owned(), viewer.text(key)))
            .collect();
        let mut context = maintenance_context(&viewer, &store, &form, errors).await?;
        context.insert("starts_text", &data.text("starts_at"));
        context.insert("ends_text", &data.text("ends_at"));
        return Ok(render(
            &console,
            &viewer,
            StatusCode::UNPROCESSABLE_ENTITY,
            "alerts/maintenance.html",
            context,
        ));
    }
    let ip = None::<&str>;
    maintenance::create(&store, &viewer.actor(), viewer.ip().or(ip), &form).await?;
    feed.changed(maintenance::refresh(&store, None).await?);
    flash(
        &store,
        &viewer,
        "success",
        "alerts.maintenance_created",
        Some(form.name.trim().to_owned()),
    )
    .await?;
    Ok(see_other("/alerts/maintenance"))
}

async fn maintenance_delete(
    viewer: Viewer,
    id: web::Path<i64>,
    body: web::Bytes,
    store: web::Data<Store>,
    feed: web::Data<Feed>,
) -> Result<HttpResponse, PageError> {
    viewer.require(Permission::AlertsAct)?;
    let data = FormData::parse(&body);
    viewer.check_csrf(data.get("_csrf"))?;
    if !maintenance::delete(&store, &viewer.actor(), viewer.ip(), *id).await? {
        return Err(PageError::NotFound(viewer.lang));
    }
    feed.changed(maintenance::refresh(&store, None).await?);
    flash(
        &store,
        &viewer,
        "success",
        "alerts.maintenance_deleted",
        None,
    )
    .await?;
    Ok(see_other("/alerts/maintenance"))
}
