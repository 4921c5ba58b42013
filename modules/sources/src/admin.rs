//! The sources in the console (Administration › Sources), permission `admin_sources` checked on
//! the server: every source with its health (the configuration file's read-only), a console
//! source added, edited, enabled or disabled, deleted, and any source tested (one poll that stores
//! nothing). Saving restarts the source's poller at once; deleting stops it.
//!
//! Passwords are write-only: the form never shows one back, an empty field keeps the stored one.

use std::collections::BTreeMap;
use std::pin::Pin;
use std::time::Duration;

use actix_web::dev::Payload;
use actix_web::http::StatusCode;
use actix_web::{FromRequest, HttpRequest, HttpResponse, web};
use chrono::Utc;
use serde::Serialize;
use tera::Context;
use vigie_console::{Console, FormData, PageError, Viewer, flash, see_other};
use vigie_core::domain::Domains;
use vigie_core::role::Permission;
use vigie_core::store::Store;

use crate::defs::{self, Check, DefsError, Draft, Problem, StoredSource};
use crate::repo;
use crate::secrets::KeyStore;
use crate::sources::{SourceDef, Sources, dry_run};

/// How long the "test" button waits for the source.
const TEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Records shown by the test.
const TEST_SHOWN: usize = 20;

/// The console routes of the module: these administration pages and the supervision pages
/// ([`crate::supervision`]); needs `web::Data` of [`Sources`], [`Store`], [`Console`],
/// [`Domains`] and [`KeyStore`].
pub fn configure(cfg: &mut web::ServiceConfig) {
    crate::supervision::configure(cfg);
    cfg.route("/admin/sources", web::get().to(list))
        .route("/admin/sources/new", web::get().to(new_form))
        .route("/admin/sources/new", web::post().to(create))
        .route("/admin/sources/{name}/edit", web::get().to(edit_form))
        .route("/admin/sources/{name}/edit", web::post().to(update))
        .route("/admin/sources/{name}/enabled", web::post().to(toggle))
        .route("/admin/sources/{name}/test", web::post().to(test))
        .route("/admin/sources/{name}/delete", web::get().to(delete_form))
        .route("/admin/sources/{name}/delete", web::post().to(delete));
}

/// A page of the module in the console's frame.
pub(crate) fn page(
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

fn store_error(e: DefsError, viewer: &Viewer) -> PageError {
    match e {
        DefsError::NotFound(_) => PageError::NotFound(viewer.lang),
        DefsError::Store(s) => s.into(),
        other => PageError::Internal(other.to_string()),
    }
}

/// A POSTed form, once the permission and the CSRF token are checked.
fn posted(viewer: &Viewer, body: &[u8]) -> Result<FormData, PageError> {
    viewer.require(Permission::AdminSources)?;
    let form = FormData::parse(body);
    viewer.check_csrf(form.get("_csrf"))?;
    Ok(form)
}

/// After a change that worked: the message naming the source, then back to the list.
async fn done(
    store: &Store,
    viewer: &Viewer,
    key: &str,
    name: String,
) -> Result<HttpResponse, PageError> {
    flash(store, viewer, "success", key, Some(name)).await?;
    Ok(see_other("/admin/sources"))
}

/// One line of the list.
#[derive(Serialize)]
struct Line {
    name: String,
    kind: String,
    /// Without password.
    url: String,
    interval_seconds: u64,
    enabled: bool,
    domain: Option<String>,
    /// Defined in the configuration file: read-only here.
    from_config: bool,
    state: String,
    last_success: Option<chrono::DateTime<Utc>>,
    last_error: Option<String>,
    last_error_at: Option<chrono::DateTime<Utc>>,
    rows_read: u64,
    records: u64,
    lag_seconds: Option<i64>,
}

/// The names of the configuration file's sources: the running ones the console did not define.
fn config_names(sources: &Sources, stored: &[StoredSource]) -> Vec<String> {
    sources
        .health()
        .into_iter()
        .map(|h| h.source)
        .filter(|n| !stored.iter().any(|s| &s.name == n))
        .collect()
}

async fn list(
    viewer: Viewer,
    console: web::Data<Console>,
    store: web::Data<Store>,
    sources: web::Data<Sources>,
) -> Result<HttpResponse, PageError> {
    viewer.require(Permission::AdminSources)?;
    let stored = defs::list(&store).await?;
    let now = Utc::now();
    let mut lines: BTreeMap<String, Line> = BTreeMap::new();
    for h in sources.health() {
        let def = sources.def(&h.source);
        let console_def = stored.iter().find(|s| s.name == h.source);
        let (url, domain) = match (console_def, &def) {
            (Some(s), _) => (s.url.clone(), Some(s.domain.clone())),
            (None, Some(d)) => (vigie_sql::client::redact_url(&d.url), d.domain.clone()),
            (None, None) => (String::new(), None),
        };
        lines.insert(
            h.source.clone(),
            Line {
                name: h.source.clone(),
                kind: h.kind.clone(),
                url,
                interval_seconds: h.interval_seconds,
                enabled: def.as_ref().is_some_and(|d| d.enabled),
                domain,
                from_config: console_def.is_none(),
                state: h.state.as_str().to_owned(),
                last_success: h.last_success,
                last_error: h.last_error.clone(),
                last_error_at: h.last_error_at,
                rows_read: h.rows_read,
                records: h.records,
                lag_seconds: h.lag_seconds(now),
            },
        );
    }
    // A console source not running (the configuration file took its name): its stored line.
    for s in &stored {
        if lines.contains_key(&s.name) {
            continue;
        }
        let h = repo::load_health(&store, &s.name).await?;
        lines.insert(
            s.name.clone(),
            Line {
                name: s.name.clone(),
                kind: s.kind.clone(),
                url: s.url.clone(),
                interval_seconds: u64::try_from(s.interval_seconds).unwrap_or(0),
                enabled: s.enabled,
                domain: Some(s.domain.clone()),
                from_config: false,
                state: h
                    .as_ref()
                    .map_or("starting", |h| h.state.as_str())
                    .to_owned(),
                last_success: h.as_ref().and_then(|h| h.last_success),
                last_error: h.as_ref().and_then(|h| h.last_error.clone()),
                last_error_at: h.as_ref().and_then(|h| h.last_error_at),
                rows_read: h.as_ref().map_or(0, |h| h.rows_read),
                records: h.as_ref().map_or(0, |h| h.records),
                lag_seconds: h.as_ref().and_then(|h| h.lag_seconds(now)),
            },
        );
    }
    let mut context = Context::new();
    context.insert("sources", &lines.into_values().collect::<Vec<_>>());
    Ok(page(
        &console,
        &viewer,
        StatusCode::OK,
        "sources/list.html",
        context,
    ))
}

/// A domain offered in the form.
#[derive(Serialize)]
struct DomainOption {
    id: String,
    label: String,
}

fn domain_options(domains: &Domains, viewer: &Viewer) -> Vec<DomainOption> {
    let fr = viewer.lang == vigie_console::Lang::Fr;
    domains
        .list()
        .iter()
        .map(|d| DomainOption {
            id: d.id.clone(),
            label: if fr {
                d.label_fr.clone()
            } else {
                d.label_en.clone()
            },
        })
        .collect()
}

/// What the form shows (never a password).
#[derive(Serialize)]
struct FormView {
    name: String,
    kind: String,
    url: String,
    interval_seconds: String,
    enabled: bool,
    domain: String,
    settings: String,
    has_password: bool,
}

impl FormView {
    fn of_draft(d: &Draft, has_password: bool) -> FormView {
        FormView {
            name: d.name.clone(),
            kind: d.kind.clone(),
            // A password typed into the URL is never shown back.
            url: defs::split_password(&d.url).0,
            interval_seconds: d.interval_seconds.clone(),
            enabled: d.enabled,
            domain: d.domain.clone(),
            settings: d.settings.clone(),
            has_password,
        }
    }

    fn of_stored(s: &StoredSource) -> FormView {
        FormView {
            name: s.name.clone(),
            kind: s.kind.clone(),
            url: s.url.clone(),
            interval_seconds: s.interval_seconds.to_string(),
            enabled: s.enabled,
            domain: s.domain.clone(),
            settings: if s.settings.is_null() {
                String::new()
            } else {
                serde_json::to_string_pretty(&s.settings).unwrap_or_default()
            },
            has_password: s.has_password,
        }
    }
}

fn form_page(
    console: &Console,
    viewer: &Viewer,
    domains: &Domains,
    editing: Option<&str>,
    form: FormView,
    errors: BTreeMap<String, String>,
) -> HttpResponse {
    let mut context = Context::new();
    context.insert("form", &form);
    context.insert("editing", &editing);
    context.insert(
        "kinds",
        &defs::KINDS.iter().map(|(k, _)| *k).collect::<Vec<_>>(),
    );
    context.insert("domains", &domain_options(domains, viewer));
    let status = if errors.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    context.insert("errors", &errors);
    page(console, viewer, status, "sources/form.html", context)
}

fn field_errors(viewer: &Viewer, problems: &[Problem]) -> BTreeMap<String, String> {
    let mut errors = BTreeMap::new();
    for p in problems {
        let text = viewer.text(p.key);
        // The connector's reason matters for the settings; the others are said by the key.
        let text = if p.field == "settings" && !p.detail.is_empty() {
            format!("{text} {}", p.detail)
        } else {
            text
        };
        errors.entry(p.field.to_owned()).or_insert(text);
    }
    errors
}

fn draft_of(form: &FormData) -> Draft {
    Draft {
        name: form.text("name"),
        kind: form.text("kind"),
        url: form.text("url"),
        password: form.text("password"),
        interval_seconds: form.text("interval_seconds"),
        enabled: form.checked("enabled"),
        domain: form.text("domain"),
        settings: form.text("settings"),
    }
}

async fn new_form(
    viewer: Viewer,
    console: web::Data<Console>,
    domains: web::Data<Domains>,
) -> Result<HttpResponse, PageError> {
    viewer.require(Permission::AdminSources)?;
    let form = FormView {
        name: String::new(),
        kind: "sql".into(),
        url: String::new(),
        interval_seconds: "60".into(),
        enabled: true,
        domain: domains.ids().next().unwrap_or_default().to_owned(),
        settings: String::new(),
        has_password: false,
    };
    Ok(form_page(
        &console,
        &viewer,
        &domains,
        None,
        form,
        BTreeMap::new(),
    ))
}

async fn create(viewer: Viewer, body: web::Bytes, app: App) -> Result<HttpResponse, PageError> {
    save(&viewer, &body, &app, None).await
}

/// The application data the POST handlers work with, extracted as the separate `web::Data`
/// would be.
struct App {
    console: web::Data<Console>,
    store: web::Data<Store>,
    domains: web::Data<Domains>,
    sources: web::Data<Sources>,
    keys: web::Data<KeyStore>,
}

impl FromRequest for App {
    type Error = actix_web::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            Ok(App {
                console: web::Data::extract(&req).await?,
                store: web::Data::extract(&req).await?,
                domains: web::Data::extract(&req).await?,
                sources: web::Data::extract(&req).await?,
                keys: web::Data::extract(&req).await?,
            })
        })
    }
}

/// A create (`editing` is `None`) or an update of the source named `editing`: the poller
/// restarted, the message and back to the list; or the form again (422) with the problems next
/// to their fields.
async fn save(
    viewer: &Viewer,
    body: &[u8],
    app: &App,
    editing: Option<&str>,
) -> Result<HttpResponse, PageError> {
    let form = posted(viewer, body)?;
    let mut draft = draft_of(&form);
    let has_password = match editing {
        Some(name) => {
            draft.name = name.to_owned();
            load(viewer, &app.store, name).await?.has_password
        }
        None => false,
    };
    let stored_list = defs::list(&app.store).await?;
    let names = config_names(&app.sources, &stored_list);
    let check = Check {
        domains: &app.domains,
        config_names: &names,
    };
    let actor = Some(viewer.actor());
    let (result, key) = match editing {
        None => (
            defs::create(
                &app.store,
                &app.keys,
                &check,
                &draft,
                actor.as_ref(),
                viewer.ip(),
            )
            .await,
            "sources.created",
        ),
        Some(name) => (
            defs::update(
                &app.store,
                &app.keys,
                &check,
                name,
                &draft,
                actor.as_ref(),
                viewer.ip(),
            )
            .await,
            "sources.saved",
        ),
    };
    let errors = match result {
        Ok(stored) => {
            defs::launch(&app.sources, &app.keys, &stored).await;
            return done(&app.store, viewer, key, stored.name).await;
        }
        Err(DefsError::Invalid(problems)) => field_errors(viewer, &problems),
        Err(DefsError::Secrets(e)) => secrets_error(viewer, &e),
        Err(e) => return Err(store_error(e, viewer)),
    };
    Ok(form_page(
        &app.console,
        viewer,
        &app.domains,
        editing,
        FormView::of_draft(&draft, has_password),
        errors,
    ))
}

fn secrets_error(viewer: &Viewer, e: &crate::secrets::SecretsError) -> BTreeMap<String, String> {
    tracing::error!(error = %e, "Cannot encrypt a source password.");
    BTreeMap::from([(
        "password".to_owned(),
        format!("{} {e}", viewer.text("sources.err_key")),
    )])
}

async fn load(viewer: &Viewer, store: &Store, name: &str) -> Result<StoredSource, PageError> {
    defs::get(store, name)
        .await?
        .ok_or(PageError::NotFound(viewer.lang))
}

async fn edit_form(
    viewer: Viewer,
    name: web::Path<String>,
    console: web::Data<Console>,
    store: web::Data<Store>,
    domains: web::Data<Domains>,
) -> Result<HttpResponse, PageError> {
    viewer.require(Permission::AdminSources)?;
    let stored = load(&viewer, &store, &name).await?;
    Ok(form_page(
        &console,
        &viewer,
        &domains,
        Some(&name),
        FormView::of_stored(&stored),
        BTreeMap::new(),
    ))
}

async fn update(
    viewer: Viewer,
    name: web::Path<String>,
    body: web::Bytes,
    app: App,
) -> Result<HttpResponse, PageError> {
    save(&viewer, &body, &app, Some(&name)).await
}

async fn toggle(
    viewer: Viewer,
    name: web::Path<String>,
    body: web::Bytes,
    app: App,
) -> Result<HttpResponse, PageError> {
    let form = posted(&viewer, &body)?;
    let enabled = form.get("enabled") == Some("1");
    let actor = viewer.actor();
    let stored = defs::set_enabled(&app.store, &name, enabled, Some(&actor), viewer.ip())
        .await
        .map_err(|e| store_error(e, &viewer))?;
    defs::launch(&app.sources, &app.keys, &stored).await;
    let key = if enabled {
        "sources.enabled_done"
    } else {
        "sources.disabled_done"
    };
    done(&app.store, &viewer, key, stored.name).await
}

/// One record as the test shows it.
#[derive(Serialize)]
struct TestRecord {
    source_ref: Option<String>,
    resource: String,
    message: String,
    level: Option<i32>,
    clear: bool,
    occurred_at: Option<chrono::DateTime<Utc>>,
}

async fn test(
    viewer: Viewer,
    name: web::Path<String>,
    body: web::Bytes,
    app: App,
) -> Result<HttpResponse, PageError> {
    posted(&viewer, &body)?;
    let def: Result<SourceDef, String> = match defs::get(&app.store, &name).await? {
        Some(stored) => defs::runtime_def(&app.keys, &stored).map_err(|e| e.to_string()),
        None => app
            .sources
            .def(&name)
            .ok_or(PageError::NotFound(viewer.lang))
            .map(Ok)?,
    };
    let mut context = Context::new();
    context.insert("name", name.as_str());
    let outcome = match def {
        Err(e) => Err(e),
        Ok(def) => match tokio::time::timeout(TEST_TIMEOUT, dry_run(&app.store, &def)).await {
            Ok(Ok(run)) => Ok(run),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err(format!(
                "{} ({} s)",
                viewer.text("sources.test_timeout"),
                TEST_TIMEOUT.as_secs()
            )),
        },
    };
    match outcome {
        Ok(run) => {
            let count = run.records.len();
            let shown: Vec<TestRecord> = run
                .records
                .into_iter()
                .take(TEST_SHOWN)
                .map(|r| TestRecord {
                    source_ref: r.source_ref,
                    resource: r.resource,
                    message: r.message,
                    level: r.level,
                    clear: r.clear,
                    occurred_at: r.occurred_at,
                })
                .collect();
            context.insert("ok", &true);
            context.insert("count", &count);
            context.insert("rows_read", &run.rows_read);
            context.insert("more", &run.more);
            context.insert("equipment", &run.equipment.len());
            context.insert("records", &shown);
            context.insert("stopped", &run.stopped);
            context.insert("from", &run.from);
        }
        Err(e) => {
            context.insert("ok", &false);
            context.insert("error", &e);
        }
    }
    Ok(page(
        &app.console,
        &viewer,
        StatusCode::OK,
        "sources/test.html",
        context,
    ))
}

async fn delete_form(
    viewer: Viewer,
    name: web::Path<String>,
    console: web::Data<Console>,
    store: web::Data<Store>,
) -> Result<HttpResponse, PageError> {
    viewer.require(Permission::AdminSources)?;
    let stored = load(&viewer, &store, &name).await?;
    let mut context = Context::new();
    context.insert("source", &FormView::of_stored(&stored));
    Ok(page(
        &console,
        &viewer,
        StatusCode::OK,
        "sources/delete.html",
        context,
    ))
}

async fn delete(
    viewer: Viewer,
    name: web::Path<String>,
    body: web::Bytes,
    app: App,
) -> Result<HttpResponse, PageError> {
    posted(&viewer, &body)?;
    let stored = load(&viewer, &app.store, &name).await?;
    // The poller stops first, so that its last health write cannot outlive the deletion.
    app.sources.remove(&name).await;
    let actor = viewer.actor();
    if let Err(e) = defs::delete(&app.store, &name, Some(&actor), viewer.ip()).await {
        defs::launch(&app.sources, &app.keys, &stored).await;
        return Err(store_error(e, &viewer));
    }
    done(&app.store, &viewer, "sources.deleted", name.to_string()).await
}
