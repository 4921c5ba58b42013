//! Incidents in the console: the list (with the views of the viewer's role and the filters),
//! the opening form (prefilled from an alert), an incident's page (fields, people, resolution
//! lines, attachments, timeline) with the forms of the steps the viewer may take. Permissions are
//! checked on the server before anything is read; every form carries the CSRF token. A step the
//! state machine refuses comes back as a message on the incident's page, nothing changed.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{DateTime, NaiveDateTime, TimeZone, Utc};
use serde::Serialize;
use tera::Context;
use vigie_console::{Console, FormData, PageError, Viewer, flash, see_other};
use vigie_core::role::{Permission, Role};
use vigie_core::store::Store;

use crate::error::IncidentsError;
use crate::model::{self, Criticality, Detection, State};
use crate::workflow::{self, Doer, Env, Route, Step};
use crate::{IncidentsSettings, api, repo};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/incidents", web::get().to(list))
        .route("/incidents/new", web::get().to(new_form))
        .route("/incidents/new", web::post().to(create))
        .route("/incidents/{id}", web::get().to(show));
    for route in Route::ALL {
        let path = format!("/incidents/{{id}}/{}", route.name());
        cfg.route(
            &path,
            web::post().to(move |r, v, s, p, b| step(route, r, v, s, p, b)),
        );
    }
    cfg.service(
        web::resource("/incidents/{id}/attachments")
            .app_data(web::PayloadConfig::new(64 * 1024 * 1024))
            .route(web::post().to(upload)),
    )
    .route("/incidents/{id}/attachments/{aid}", web::get().to(download));
}

fn render(
    console: &Console,
    viewer: &Viewer,
    status: StatusCode,
    name: &str,
    c: Context,
) -> HttpResponse {
    console
        .renderer
        .page(status, name, viewer.lang, Some(viewer), c)
}

fn doer(viewer: &Viewer) -> Doer {
    Doer {
        actor: viewer.actor(),
        permissions: viewer.permissions,
        ip: viewer.ip.clone(),
    }
}

fn role(viewer: &Viewer) -> Role {
    viewer.user.role.parse().unwrap_or(Role::User)
}

/// An error of a step as a page: a refusal or bad input becomes a message on the incident's
/// page; the rest an error page.
async fn step_error(
    store: &Store,
    viewer: &Viewer,
    id: i64,
    e: IncidentsError,
) -> Result<HttpResponse, PageError> {
    let (key, arg) = match e {
        IncidentsError::NotFound(_) | IncidentsError::AttachmentNotFound(_) => {
            return Err(PageError::NotFound(viewer.lang));
        }
        IncidentsError::Forbidden(_) | IncidentsError::Auth(_) => {
            return Err(PageError::Forbidden(viewer.lang));
        }
        IncidentsError::Store(s) => return Err(s.into()),
        IncidentsError::Io(e) => return Err(PageError::Internal(e.to_string())),
        IncidentsError::Conflict { state, .. } => (
            "incidents.conflict",
            viewer.text(&format!("incidents.states.{state}")),
        ),
        IncidentsError::Invalid(p) => ("incidents.invalid", field_label(viewer, &p.field)),
        IncidentsError::TooLarge(max) => (
            "incidents.too_large",
            format!("{} MiB", max / (1024 * 1024)),
        ),
        IncidentsError::Refused(_) => ("incidents.refused_type", String::new()),
    };
    flash(store, viewer, "error", key, Some(arg)).await?;
    Ok(see_other(&format!("/incidents/{id}")))
}

fn field_label(viewer: &Viewer, field: &str) -> String {
    let key = format!("incidents.fields.{field}");
    let text = viewer.text(&key);
    if text == key { field.to_owned() } else { text }
}

async fn done(
    req: &HttpRequest,
    store: &Store,
    viewer: &Viewer,
    result: Result<workflow::Done, IncidentsError>,
    id: i64,
    message: &str,
    next: &str,
) -> Result<HttpResponse, PageError> {
    match result {
        Ok(d) => {
            crate::raise(req, d.records).await;
            flash(
                store,
                viewer,
                "success",
                message,
                Some(d.incident.reference),
            )
            .await?;
            Ok(see_other(next))
        }
        Err(e) => step_error(store, viewer, id, e).await,
    }
}

struct Parts {
    domains: vigie_core::domain::Domains,
    base_url: String,
    settings: IncidentsSettings,
}

impl Parts {
    fn of(req: &HttpRequest) -> Parts {
        Parts {
            domains: crate::domains(req),
            base_url: crate::base_url(req),
            settings: crate::settings(req),
        }
    }

    fn env<'a>(&'a self, store: &'a Store) -> Env<'a> {
        Env {
            store,
            domains: &self.domains,
            base_url: &self.base_url,
            data_dir: &self.settings.data_dir,
        }
    }
}

#[derive(Serialize)]
struct DomainView {
    id: String,
    code: String,
    label: String,
}

fn domain_views(viewer: &Viewer, domains: &vigie_core::domain::Domains) -> Vec<DomainView> {
    domains
        .list()
        .iter()
        .map(|d| DomainView {
            id: d.id.clone(),
            code: d.code.clone(),
            label: match viewer.lang {
                vigie_console::Lang::Fr => d.label_fr.clone(),
                vigie_console::Lang::En => d.label_en.clone(),
            },
        })
        .collect()
}

fn choices(context: &mut Context, viewer: &Viewer, domains: &vigie_core::domain::Domains) {
    context.insert("domains", &domain_views(viewer, domains));
    context.insert(
        "criticalities",
        &names(&Criticality::ALL, Criticality::as_str),
    );
    context.insert("detections", &names(&Detection::ALL, Detection::as_str));
    context.insert("states", &names(&State::ALL, State::as_str));
}

/// The names of a list of choices, for the forms' options.
fn names<T: Copy>(all: &[T], name: fn(T) -> &'static str) -> Vec<&'static str> {
    all.iter().map(|x| name(*x)).collect()
}

/// A day or a local time typed in a filter, in the viewer's time zone.
fn local_time(viewer: &Viewer, text: Option<&str>) -> Option<DateTime<Utc>> {
    let text = text?.trim();
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

/// A duration for people: `2 h 05 min`, `3 min`.
pub fn duration(secs: Option<i64>) -> Option<String> {
    let secs = secs?;
    let minutes = secs / 60;
    Some(if minutes >= 60 {
        format!("{} h {:02} min", minutes / 60, minutes % 60)
    } else if minutes > 0 {
        format!("{minutes} min")
    } else {
        format!("{secs} s")
    })
}

async fn list(
    req: HttpRequest,
    viewer: Viewer,
    console: web::Data<Console>,
    store: web::Data<Store>,
) -> Result<HttpResponse, PageError> {
    viewer.require(Permission::IncidentsOpen)?;
    let q = FormData::parse(req.query_string().as_bytes());
    let role = role(&viewer);
    let view = ["mine", "opened"]
        .into_iter()
        .find(|v| q.get("view") == Some(*v))
        .unwrap_or("all");
    let scope = api::scope_for(&store, role, viewer.user.user_id, view)
        .await
        .map_err(|e| list_error(&viewer, e))?;
    let times = (
        local_time(&viewer, q.get("from")),
        local_time(&viewer, q.get("to")),
    );
    let filter = api::filter_of(&q, scope, times).map_err(|e| list_error(&viewer, e))?;
    let incidents = repo::list(&store, &filter).await?;
    let next = (incidents.len() as i64 == filter.limit)
        .then(|| incidents.last().map(|i| i.id))
        .flatten();
    let mut context = Context::new();
    let parts = Parts::of(&req);
    choices(&mut context, &viewer, &parts.domains);
    context.insert("incidents", &incidents);
    context.insert("next", &next);
    context.insert("view", view);
    let views: Vec<&str> = match role {
        Role::Oncall => vec!["all", "mine", "opened"],
        _ => vec!["all", "opened"],
    };
    context.insert("views", &views);
    context.insert("is_manager", &(role == Role::Manager));
    for k in ["state", "domain", "criticality", "q", "from", "to"] {
        context.insert(format!("f_{k}"), q.get(k).unwrap_or_default());
    }
    let mut query: Vec<(String, String)> =
        ["view", "state", "domain", "criticality", "q", "from", "to"]
            .iter()
            .filter_map(|k| {
                q.get(k)
                    .filter(|v| !v.is_empty())
                    .map(|v| ((*k).to_owned(), v.to_owned()))
            })
            .collect();
    if let Some(n) = next {
        query.push(("before".into(), n.to_string()));
    }
    let next_query: String = query
        .iter()
        .map(|(k, v)| format!("{k}={}", encode(v)))
        .collect::<Vec<_>>()
        .join("&");
    context.insert("next_query", &next_query);
    Ok(render(
        &console,
        &viewer,
        StatusCode::OK,
        "incidents/list.html",
        context,
    ))
}

fn list_error(viewer: &Viewer, e: IncidentsError) -> PageError {
    match e {
        IncidentsError::Store(s) => s.into(),
        IncidentsError::Auth(a) => a.into(),
        _ => PageError::BadRequest(viewer.lang, "error.bad_request"),
    }
}

fn encode(v: &str) -> String {
    v.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The opening form's values.
#[derive(Serialize, Default)]
struct FormValues {
    domain: String,
    category: String,
    criticality: String,
    title: String,
    description: String,
    comments: String,
    detection: String,
    alert_id: String,
    follow: bool,
    followers: Vec<String>,
}

async fn form_page(
    req: &HttpRequest,
    viewer: &Viewer,
    console: &Console,
    store: &Store,
    values: &FormValues,
    error: Option<String>,
) -> Result<HttpResponse, PageError> {
    let mut context = Context::new();
    let parts = Parts::of(req);
    choices(&mut context, viewer, &parts.domains);
    context.insert("v", values);
    context.insert("error", &error);
    context.insert("oncall", &repo::oncall_people(store).await?);
    let text = format!("{} {}", values.title, values.description);
    context.insert("suggestions", &crate::suggestions(req, store, text).await);
    let status = if error.is_some() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    Ok(render(
        console,
        viewer,
        status,
        "incidents/new.html",
        context,
    ))
}

/// `/incidents/new?alert=ID&source=alert&type=DOMAIN&description=MSG` (the alert board's link)
/// prefills the form.
async fn new_form(
    req: HttpRequest,
    viewer: Viewer,
    console: web::Data<Console>,
    store: web::Data<Store>,
) -> Result<HttpResponse, PageError> {
    viewer.require(Permission::IncidentsOpen)?;
    let q = FormData::parse(req.query_string().as_bytes());
    let domains = crate::domains(&req);
    let kind = q.text("type");
    let description = q.text("description");
    let source = q.text("source");
    let mut values = FormValues {
        domain: if domains.contains(&kind) {
            kind.clone()
        } else {
            String::new()
        },
        category: kind,
        criticality: "orange".into(),
        title: description
            .lines()
            .next()
            .unwrap_or_default()
            .chars()
            .take(120)
            .collect(),
        description,
        detection: if Detection::parse(&source).is_some() {
            source
        } else {
            "phone".into()
        },
        alert_id: q
            .get("alert")
            .filter(|_| viewer.permissions.contains(Permission::AlertsView))
            .filter(|a| a.parse::<i64>().is_ok())
            .unwrap_or_default()
            .to_owned(),
        ..FormValues::default()
    };
    if let Ok(alert_id) = values.alert_id.parse::<i64>()
        && let Ok(Some(alert)) = vigie_alerts::repo::get(&store, alert_id).await
    {
        values.criticality = Criticality::of_level(alert.severity.into())
            .as_str()
            .to_owned();
        values.detection = "alert".into();
        if values.domain.is_empty() && domains.contains(&alert.domain) {
            values.domain = alert.domain.clone();
        }
    }
    form_page(&req, &viewer, &console, &store, &values, None).await
}

async fn create(
    req: HttpRequest,
    viewer: Viewer,
    console: web::Data<Console>,
    store: web::Data<Store>,
    body: web::Bytes,
) -> Result<HttpResponse, PageError> {
    viewer.require(Permission::IncidentsOpen)?;
    let form = FormData::parse(&body);
    viewer.check_csrf(form.get("_csrf"))?;
    let values = FormValues {
        domain: form.text("domain"),
        category: form.text("category"),
        criticality: form.text("criticality"),
        title: form.text("title"),
        description: form.text("description"),
        comments: form.text("comments"),
        detection: form.text("detection"),
        alert_id: form.text("alert_id"),
        follow: form.checked("follow"),
        followers: form
            .all("followers")
            .into_iter()
            .map(str::to_owned)
            .collect(),
    };
    let alert_id = match values.alert_id.trim() {
        "" => None,
        a => match a.parse() {
            Ok(a) => Some(a),
            Err(_) => {
                let e = Some(field_label(&viewer, "alert_id"));
                return form_page(&req, &viewer, &console, &store, &values, e).await;
            }
        },
    };
    let new = workflow::NewIncident {
        domain: values.domain.clone(),
        category: values.category.clone(),
        criticality: values.criticality.clone(),
        title: values.title.clone(),
        description: values.description.clone(),
        comments: values.comments.clone(),
        detection: values.detection.clone(),
        alert_id,
        follow: values.follow,
        followers: values.followers.clone(),
    };
    let parts = Parts::of(&req);
    match workflow::open(&parts.env(&store), &doer(&viewer), &new).await {
        Ok(d) => {
            let id = d.incident.id;
            crate::raise(&req, d.records).await;
            flash(
                &store,
                &viewer,
                "success",
                "incidents.opened",
                Some(d.incident.reference),
            )
            .await?;
            Ok(see_other(&format!("/incidents/{id}")))
        }
        Err(IncidentsError::Invalid(p)) => {
            let e = Some(field_label(&viewer, &p.field));
            form_page(&req, &viewer, &console, &store, &values, e).await
        }
        Err(IncidentsError::Store(s)) => Err(s.into()),
        Err(IncidentsError::Auth(a)) => Err(a.into()),
        Err(IncidentsError::Forbidden(_)) => Err(PageError::Forbidden(viewer.lang)),
        Err(e) => Err(PageError::Internal(e.to_string())),
    }
}

fn path_id(viewer: &Viewer, raw: &str) -> Result<i64, PageError> {
    raw.parse().map_err(|_| PageError::NotFound(viewer.lang))
}

/// What the viewer may do on this incident now (their rights and the state).
#[derive(Serialize)]
struct Can {
    edit: bool,
    qualify: bool,
    transfer: bool,
    resolve: bool,
    resolve_final: bool,
    close: bool,
    delete: bool,
    attach: bool,
}

async fn show(
    req: HttpRequest,
    viewer: Viewer,
    console: web::Data<Console>,
    store: web::Data<Store>,
    path: web::Path<String>,
) -> Result<HttpResponse, PageError> {
    viewer.require(Permission::IncidentsOpen)?;
    let id = path_id(&viewer, &path)?;
    let Some(full) = model::load(&store, id).await? else {
        return Err(PageError::NotFound(viewer.lang));
    };
    let d = doer(&viewer);
    let i = &full.incident;
    let can_do = |step: Step| d.may(step, i) && step.possible(&i.state);
    let can = Can {
        edit: can_do(Step::Edit),
        qualify: can_do(Step::Qualify),
        transfer: can_do(Step::Transfer),
        resolve: can_do(Step::Resolve { is_final: false }),
        resolve_final: can_do(Step::Resolve { is_final: true }),
        close: can_do(Step::Close),
        delete: can_do(Step::Delete),
        attach: can_do(Step::Attach),
    };
    let parts = Parts::of(&req);
    let mut context = Context::new();
    choices(&mut context, &viewer, &parts.domains);
    context.insert("i", i);
    context.insert(
        "domain_label",
        &domain_views(&viewer, &parts.domains)
            .into_iter()
            .find(|dv| dv.id == i.domain)
            .map_or_else(|| i.domain.clone(), |dv| dv.label),
    );
    context.insert("people", &full.people);
    context.insert("resolutions", &full.resolutions);
    context.insert("timeline", &full.timeline);
    context.insert("attachments", &full.attachments);
    context.insert("minutes_spent", &full.minutes_spent);
    context.insert("tta", &duration(i.time_to_acknowledge_secs));
    context.insert("ttr", &duration(i.time_to_resolve_secs));
    context.insert("can", &can);
    context.insert("max_mib", &(parts.settings.attachment_max / (1024 * 1024)));
    if can.transfer {
        context.insert("oncall", &repo::oncall_people(&store).await?);
    } else {
        context.insert("oncall", &Vec::<(String, String)>::new());
    }
    let text = format!("{} {}", i.title, i.description);
    context.insert("suggestions", &crate::suggestions(&req, &store, text).await);
    Ok(render(
        &console,
        &viewer,
        StatusCode::OK,
        "incidents/show.html",
        context,
    ))
}

/// The permission of the route, the CSRF token, the id: what every step's form checks first.
fn step_form(
    viewer: &Viewer,
    permission: Permission,
    raw: &str,
    body: &[u8],
) -> Result<(i64, FormData), PageError> {
    viewer.require(permission)?;
    let form = FormData::parse(body);
    viewer.check_csrf(form.get("_csrf"))?;
    Ok((path_id(viewer, raw)?, form))
}

fn message(route: Route) -> &'static str {
    match route {
        Route::Edit => "incidents.edited",
        Route::Qualify => "incidents.qualified",
        Route::Transfer => "incidents.transferred",
        Route::Resolve => "incidents.resolution_added",
        Route::Close => "incidents.closed",
        Route::Delete => "incidents.deleted",
    }
}

/// The step read from its form, or the field it cannot read.
fn input(route: Route, form: &FormData) -> Result<workflow::Input, IncidentsError> {
    Ok(match route {
        Route::Edit => workflow::Input::Edit(workflow::Edit {
            title: Some(form.text("title")),
            description: Some(form.text("description")),
            comments: Some(form.text("comments")),
            detection: Some(form.text("detection")),
            follow: Some(form.checked("follow")),
        }),
        Route::Qualify => workflow::Input::Qualify(workflow::Qualify {
            category: form.text("category"),
            criticality: form.text("criticality"),
        }),
        Route::Transfer => {
            workflow::Input::Transfer(form.all("to").into_iter().map(str::to_owned).collect())
        }
        Route::Resolve => workflow::Input::Resolve(workflow::NewResolution {
            text: form.text("text"),
            minutes: match form.text("minutes").trim() {
                "" => 0,
                m => m
                    .parse()
                    .map_err(|_| IncidentsError::invalid("minutes", ""))?,
            },
            is_final: form.checked("final"),
        }),
        Route::Close => workflow::Input::Close,
        Route::Delete => workflow::Input::Delete,
    })
}

/// Where the browser goes after the step: closing with "yes" to "copy it into the knowledge
/// base?" goes on to the knowledge base's form ([`crate::kb_copy_url`]).
fn next(route: Route, id: i64, form: &FormData) -> String {
    match route {
        Route::Close if form.get("kb") == Some("yes") => crate::kb_copy_url(id),
        Route::Delete => "/incidents".to_owned(),
        _ => format!("/incidents/{id}"),
    }
}

/// The handler of a step's form: permission, CSRF, step, message, redirection. Deleting wants
/// the confirmation box ticked.
async fn step(
    route: Route,
    req: HttpRequest,
    viewer: Viewer,
    store: web::Data<Store>,
    path: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, PageError> {
    let (id, form) = step_form(&viewer, route.permission(), &path, &body)?;
    if route == Route::Delete && !form.checked("confirm") {
        flash(&store, &viewer, "error", "incidents.confirm_needed", None).await?;
        return Ok(see_other(&format!("/incidents/{id}")));
    }
    let input = match input(route, &form) {
        Ok(input) => input,
        Err(e) => return step_error(&store, &viewer, id, e).await,
    };
    let parts = Parts::of(&req);
    let r = input.run(&parts.env(&store), &doer(&viewer), id).await;
    let next = next(route, id, &form);
    done(&req, &store, &viewer, r, id, message(route), &next).await
}

/// The upload form (`multipart/form-data` with `_csrf` and `file`).
async fn upload(
    req: HttpRequest,
    viewer: Viewer,
    store: web::Data<Store>,
    path: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, PageError> {
    viewer.require(Permission::IncidentsOpen)?;
    let id = path_id(&viewer, &path)?;
    let content_type = api::content_type(&req);
    let parts = match crate::attachments::parse_multipart(&content_type, &body) {
        Ok(p) => p,
        Err(_) => return Err(PageError::BadRequest(viewer.lang, "error.bad_request")),
    };
    let csrf = parts
        .iter()
        .find(|p| p.name == "_csrf")
        .and_then(|p| std::str::from_utf8(&p.data).ok());
    viewer.check_csrf(csrf)?;
    let Some(file) = parts.iter().find(|p| p.name == "file") else {
        return step_error(&store, &viewer, id, IncidentsError::invalid("file", "")).await;
    };
    let p = Parts::of(&req);
    let name = file.file_name.clone().unwrap_or_default();
    match api::attach_bytes(
        &p.env(&store),
        &doer(&viewer),
        &p.settings,
        id,
        &name,
        &file.data,
    )
    .await
    {
        Ok(a) => {
            flash(
                &store,
                &viewer,
                "success",
                "incidents.attached",
                Some(a.file_name),
            )
            .await?;
            Ok(see_other(&format!("/incidents/{id}")))
        }
        Err(e) => step_error(&store, &viewer, id, e).await,
    }
}

async fn download(
    req: HttpRequest,
    viewer: Viewer,
    store: web::Data<Store>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, PageError> {
    viewer.require(Permission::IncidentsOpen)?;
    let id = path_id(&viewer, &path.0)?;
    let aid = path_id(&viewer, &path.1)?;
    let Some(a) = model::attachments_of(&store, id)
        .await?
        .into_iter()
        .find(|a| a.id == aid)
    else {
        return Err(PageError::NotFound(viewer.lang));
    };
    match crate::attachments::serve(&crate::settings(&req).data_dir, &a).await {
        Ok(r) => Ok(r),
        Err(IncidentsError::AttachmentNotFound(_)) => Err(PageError::NotFound(viewer.lang)),
        Err(e) => Err(PageError::Internal(e.to_string())),
    }
}
