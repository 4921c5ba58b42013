//! The administrator's notification pages (permission `admin_users`, checked on the server):
//! `/admin/notifications` (the outbox by state, dead letters with their last error and a retry
//! button) and `/admin/notifications/templates` (the message templates per kind, channel and
//! language; a template that does not render is refused with its line). A crate of its own
//! because the console, which these pages need, depends on vigie-notify.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use tera::Context;
use vigie_console::{Console, FormData, PageError, Viewer, flash, see_other};
use vigie_core::role::Permission;
use vigie_core::store::Store;
use vigie_notify::templates::{self, Source};
use vigie_notify::{Channel, NotifyError, admin};

const PAGE: i64 = 100;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/admin/notifications", web::get().to(outbox))
        .route("/admin/notifications/{id}/retry", web::post().to(retry))
        .route(
            "/admin/notifications/templates",
            web::get().to(template_list),
        )
        .route(
            "/admin/notifications/templates/edit",
            web::get().to(template_edit),
        )
        .route(
            "/admin/notifications/templates/edit",
            web::post().to(template_save),
        )
        .route(
            "/admin/notifications/templates/reset",
            web::post().to(template_reset),
        );
}

/// Maps the module's error to a page.
fn page_error(viewer: &Viewer, e: NotifyError) -> PageError {
    match e {
        NotifyError::Store(s) => s.into(),
        NotifyError::NotFound(_) => PageError::NotFound(viewer.lang),
        NotifyError::Invalid { .. }
        | NotifyError::Template { .. }
        | NotifyError::NoTemplate { .. } => PageError::BadRequest(viewer.lang, "error.bad_request"),
    }
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

async fn outbox(
    req: HttpRequest,
    viewer: Viewer,
    console: web::Data<Console>,
    store: web::Data<Store>,
) -> Result<HttpResponse, PageError> {
    viewer.require(Permission::AdminUsers)?;
    let query = FormData::parse(req.query_string().as_bytes());
    let state = query.get("state").filter(|s| admin::STATES.contains(s));
    let before = query.get("before").and_then(|b| b.parse::<i64>().ok());
    let lines = admin::list(&store, state, before, PAGE)
        .await
        .map_err(|e| page_error(&viewer, e))?;
    let counts = admin::counts(&store)
        .await
        .map_err(|e| page_error(&viewer, e))?;
    let mut context = Context::new();
    context.insert("state", &state.unwrap_or(""));
    context.insert("states", &admin::STATES);
    context.insert("counts", &counts);
    let next = (lines.len() as i64 == PAGE)
        .then(|| lines.last().map(|l| l.id))
        .flatten();
    context.insert("next_before", &next);
    context.insert("lines", &lines);
    Ok(render(
        &console,
        &viewer,
        StatusCode::OK,
        "notify/outbox.html",
        context,
    ))
}

async fn retry(
    viewer: Viewer,
    id: web::Path<i64>,
    body: web::Bytes,
    store: web::Data<Store>,
) -> Result<HttpResponse, PageError> {
    viewer.require(Permission::AdminUsers)?;
    let form = FormData::parse(&body);
    viewer.check_csrf(form.get("_csrf"))?;
    match admin::retry(&store, &viewer.actor(), viewer.ip(), *id).await {
        Ok(()) => {
            vigie_notify::wake();
            flash(
                &store,
                &viewer,
                "success",
                "notify.retried",
                Some(id.to_string()),
            )
            .await?;
        }
        Err(NotifyError::NotFound(_)) => {
            flash(
                &store,
                &viewer,
                "error",
                "notify.not_dead",
                Some(id.to_string()),
            )
            .await?;
        }
        Err(e) => return Err(page_error(&viewer, e)),
    }
    Ok(see_other("/admin/notifications?state=dead"))
}

async fn template_list(
    viewer: Viewer,
    console: web::Data<Console>,
    store: web::Data<Store>,
) -> Result<HttpResponse, PageError> {
    viewer.require(Permission::AdminUsers)?;
    let list = templates::list(&store)
        .await
        .map_err(|e| page_error(&viewer, e))?;
    let mut context = Context::new();
    context.insert("templates", &list);
    Ok(render(
        &console,
        &viewer,
        StatusCode::OK,
        "notify/templates.html",
        context,
    ))
}

/// The (kind, channel, lang) a template form is about.
struct Key {
    kind: String,
    channel: Channel,
    lang: String,
}

fn key(viewer: &Viewer, form: &FormData) -> Result<Key, PageError> {
    let kind = form.text("kind").trim().to_owned();
    let channel = Channel::parse(form.get("channel").unwrap_or_default())
        .ok_or(PageError::BadRequest(viewer.lang, "error.bad_request"))?;
    let lang = form.text("lang");
    if kind.is_empty() || !templates::LANGS.contains(&lang.as_str()) {
        return Err(PageError::BadRequest(viewer.lang, "error.bad_request"));
    }
    Ok(Key {
        kind,
        channel,
        lang,
    })
}

async fn edit_context(
    store: &Store,
    viewer: &Viewer,
    key: &Key,
) -> Result<(Context, Source, bool), PageError> {
    let stored = templates::stored(store, &key.kind, key.channel, &key.lang)
        .await
        .map_err(|e| page_error(viewer, e))?;
    let customised = stored.is_some();
    let source = stored
        .or_else(|| templates::builtin(&key.kind, key.channel, &key.lang))
        .unwrap_or_default();
    let mut context = Context::new();
    context.insert("kind", &key.kind);
    context.insert("channel", key.channel.as_str());
    context.insert("lang", &key.lang);
    context.insert("customised", &customised);
    context.insert(
        "has_builtin",
        &templates::builtin(&key.kind, key.channel, &key.lang).is_some(),
    );
    Ok((context, source, customised))
}

async fn template_edit(
    req: HttpRequest,
    viewer: Viewer,
    console: web::Data<Console>,
    store: web::Data<Store>,
) -> Result<HttpResponse, PageError> {
    viewer.require(Permission::AdminUsers)?;
    let query = FormData::parse(req.query_string().as_bytes());
    let key = key(&viewer, &query)?;
    let (mut context, source, _) = edit_context(&store, &viewer, &key).await?;
    context.insert("source", &source);
    context.insert("error", &None::<String>);
    context.insert("error_field", "");
    context.insert("error_line", &None::<usize>);
    Ok(render(
        &console,
        &viewer,
        StatusCode::OK,
        "notify/template_edit.html",
        context,
    ))
}

async fn template_save(
    viewer: Viewer,
    body: web::Bytes,
    console: web::Data<Console>,
    store: web::Data<Store>,
) -> Result<HttpResponse, PageError> {
    viewer.require(Permission::AdminUsers)?;
    let form = FormData::parse(&body);
    viewer.check_csrf(form.get("_csrf"))?;
    let key = key(&viewer, &form)?;
    let html = form.text("html");
    let source = Source {
        subject: form.text("subject"),
        text: form.text("text"),
        html: (key.channel == Channel::Mail && !html.trim().is_empty()).then_some(html),
    };
    match templates::save(
        &store,
        &viewer.actor(),
        viewer.ip(),
        &key.kind,
        key.channel,
        &key.lang,
        &source,
    )
    .await
    {
        Ok(()) => {
            flash(
                &store,
                &viewer,
                "success",
                "notify.template_saved",
                Some(key.kind.clone()),
            )
            .await?;
            Ok(see_other("/admin/notifications/templates"))
        }
        Err(e @ (NotifyError::Template { .. } | NotifyError::Invalid { .. })) => {
            let (mut context, _, _) = edit_context(&store, &viewer, &key).await?;
            let (field, line, message) = match &e {
                NotifyError::Template {
                    field,
                    line,
                    message,
                } => (field.clone(), *line, message.clone()),
                NotifyError::Invalid { field, problem } => (field.clone(), None, problem.clone()),
                _ => (String::new(), None, e.to_string()),
            };
            context.insert("source", &source);
            context.insert("error", &Some(message));
            context.insert("error_field", &field);
            context.insert("error_line", &line);
            Ok(render(
                &console,
                &viewer,
                StatusCode::UNPROCESSABLE_ENTITY,
                "notify/template_edit.html",
                context,
            ))
        }
        Err(e) => Err(page_error(&viewer, e)),
    }
}

async fn template_reset(
    viewer: Viewer,
    body: web::Bytes,
    store: web::Data<Store>,
) -> Result<HttpResponse, PageError> {
    viewer.require(Permission::AdminUsers)?;
    let form = FormData::parse(&body);
    viewer.check_csrf(form.get("_csrf"))?;
    let key = key(&viewer, &form)?;
    let reset = templates::reset(
        &store,
        &viewer.actor(),
        viewer.ip(),
        &key.kind,
        key.channel,
        &key.lang,
    )
    .await
    .map_err(|e| page_error(&viewer, e))?;
    if reset {
        flash(
            &store,
            &viewer,
            "success",
            "notify.template_reset",
            Some(key.kind.clone()),
        )
        .await?;
    }
    Ok(see_other("/admin/notifications/templates"))
}
