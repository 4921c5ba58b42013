//! The administrator's routing rules page (`/admin/oncall/rules`): list, add, edit, enable and
//! disable. Permission `oncall_edit`, checked on the server; every form carries the CSRF token;
//! every change is audited (see [`crate::routing`]).

use std::collections::HashMap;

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use tera::Context;
use vigie_alerts::pipeline::Pipeline;
use vigie_console::{Console, FormData, PageError, Viewer, flash, see_other};
use vigie_core::role::Permission;
use vigie_core::store::Store;

use crate::OncallError;
use crate::routing::{self, RuleForm};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/admin/oncall/rules", web::get().to(list))
        .route("/admin/oncall/rules", web::post().to(create))
        .route("/admin/oncall/rules/{id}", web::get().to(edit))
        .route("/admin/oncall/rules/{id}", web::post().to(update))
        .route("/admin/oncall/rules/{id}/enable", web::post().to(enable))
        .route("/admin/oncall/rules/{id}/disable", web::post().to(disable));
}

fn page_error(e: OncallError, viewer: &Viewer) -> PageError {
    match e {
        OncallError::Store(s) => s.into(),
        OncallError::Auth(a) => a.into(),
        OncallError::NotFound => PageError::NotFound(viewer.lang),
        other => PageError::Internal(other.to_string()),
    }
}

fn domains(pipeline: &Pipeline) -> Vec<String> {
    pipeline
        .settings()
        .domains
        .ids()
        .map(str::to_owned)
        .collect()
}

fn form_of(data: &FormData) -> RuleForm {
    RuleForm {
        domain: data.text("domain"),
        min_severity: data.text("min_severity"),
        source: data.text("source"),
        resource_pattern: data.text("resource_pattern"),
        critical_zone_only: data.checked("critical_zone_only"),
        window_start: data.text("window_start"),
        window_end: data.text("window_end"),
        escalation_minutes: data.text("escalation_minutes"),
        enabled: data.checked("enabled"),
    }
}

/// The page: the rules and a form (empty to add one, filled to edit `editing`).
#[allow(clippy::too_many_arguments)] // the page's parts; a struct would only rename them
async fn render(
    viewer: &Viewer,
    console: &Console,
    store: &Store,
    pipeline: &Pipeline,
    status: StatusCode,
    form: &RuleForm,
    editing: Option<i64>,
    errors: HashMap<String, String>,
) -> Result<HttpResponse, PageError> {
    let rules = routing::list(store)
        .await
        .map_err(|e| page_error(e, viewer))?;
    let configured: Vec<&str> = rules.iter().map(|r| r.domain.as_str()).collect();
    let all = domains(pipeline);
    let defaulted: Vec<&String> = all
        .iter()
        .filter(|d| !configured.contains(&d.as_str()))
        .collect();
    let shown: Vec<serde_json::Value> = rules
        .iter()
        .map(|r| {
            serde_json::json!({
                "rule": r,
                "window": match (r.window_start, r.window_end) {
                    (Some(s), Some(e)) => format!("{}–{}", routing::hhmm(s), routing::hhmm(e)),
                    _ => String::new(),
                },
            })
        })
        .collect();
    let mut context = Context::new();
    context.insert("rules", &shown);
    context.insert("domains", &all);
    context.insert("defaulted", &defaulted);
    context.insert("form", form);
    context.insert("editing", &editing);
    context.insert("errors", &errors);
    Ok(console.renderer.page(
        status,
        "oncall/routing_rules.html",
        viewer.lang,
        Some(viewer),
        context,
    ))
}

fn new_form() -> RuleForm {
    RuleForm {
        min_severity: "2".into(),
        escalation_minutes: "15".into(),
        enabled: true,
        ..RuleForm::default()
    }
}

async fn list(
    viewer: Viewer,
    console: web::Data<Console>,
    store: web::Data<Store>,
    pipeline: web::Data<Pipeline>,
) -> Result<HttpResponse, PageError> {
    viewer.require(Permission::OncallEdit)?;
    render(
        &viewer,
        &console,
        &store,
        &pipeline,
        StatusCode::OK,
        &new_form(),
        None,
        HashMap::new(),
    )
    .await
}

async fn edit(
    viewer: Viewer,
    id: web::Path<i64>,
    console: web::Data<Console>,
    store: web::Data<Store>,
    pipeline: web::Data<Pipeline>,
) -> Result<HttpResponse, PageError> {
    viewer.require(Permission::OncallEdit)?;
    let rule = routing::get(&store, *id)
        .await
        .map_err(|e| page_error(e, &viewer))?
        .ok_or(PageError::NotFound(viewer.lang))?;
    render(
        &viewer,
        &console,
        &store,
        &pipeline,
        StatusCode::OK,
        &RuleForm::of(&rule),
        Some(rule.id),
        HashMap::new(),
    )
    .await
}

/// Saves a new rule (`id` = `None`) or a changed one.
async fn save(
    viewer: Viewer,
    id: Option<i64>,
    body: web::Bytes,
    console: web::Data<Console>,
    store: web::Data<Store>,
    pipeline: web::Data<Pipeline>,
) -> Result<HttpResponse, PageError> {
    viewer.require(Permission::OncallEdit)?;
    let data = FormData::parse(&body);
    viewer.check_csrf(data.get("_csrf"))?;
    let form = form_of(&data);
    let input = match routing::check(&form, &domains(&pipeline)) {
        Ok(input) => input,
        Err(problems) => {
            let errors = problems
                .iter()
                .map(|(field, key)| ((*field).to_owned(), viewer.text(key)))
                .collect();
            return render(
                &viewer,
                &console,
                &store,
                &pipeline,
                StatusCode::UNPROCESSABLE_ENTITY,
                &form,
                id,
                errors,
            )
            .await;
        }
    };
    let actor = viewer.actor();
    match id {
        None => {
            routing::create(&store, &actor, viewer.ip(), &input)
                .await
                .map_err(|e| page_error(e, &viewer))?;
        }
        Some(id) => routing::update(&store, &actor, viewer.ip(), id, &input)
            .await
            .map_err(|e| page_error(e, &viewer))?,
    }
    flash(
        &store,
        &viewer,
        "success",
        "oncall_routing.rule_saved",
        Some(input.domain),
    )
    .await?;
    Ok(see_other("/admin/oncall/rules"))
}

async fn create(
    viewer: Viewer,
    body: web::Bytes,
    console: web::Data<Console>,
    store: web::Data<Store>,
    pipeline: web::Data<Pipeline>,
) -> Result<HttpResponse, PageError> {
    save(viewer, None, body, console, store, pipeline).await
}

async fn update(
    viewer: Viewer,
    id: web::Path<i64>,
    body: web::Bytes,
    console: web::Data<Console>,
    store: web::Data<Store>,
    pipeline: web::Data<Pipeline>,
) -> Result<HttpResponse, PageError> {
    save(viewer, Some(*id), body, console, store, pipeline).await
}

async fn toggle(
    viewer: Viewer,
    id: i64,
    enabled: bool,
    body: web::Bytes,
    store: web::Data<Store>,
) -> Result<HttpResponse, PageError> {
    viewer.require(Permission::OncallEdit)?;
    let data = FormData::parse(&body);
    viewer.check_csrf(data.get("_csrf"))?;
    routing::set_enabled(&store, &viewer.actor(), viewer.ip(), id, enabled)
        .await
        .map_err(|e| page_error(e, &viewer))?;
    flash(
        &store,
        &viewer,
        "success",
        if enabled {
            "oncall_routing.rule_enabled"
        } else {
            "oncall_routing.rule_disabled"
        },
        None,
    )
    .await?;
    Ok(see_other("/admin/oncall/rules"))
}

async fn enable(
    viewer: Viewer,
    id: web::Path<i64>,
    body: web::Bytes,
    store: web::Data<Store>,
) -> Result<HttpResponse, PageError> {
    toggle(viewer, *id, true, body, store).await
}

async fn disable(
    viewer: Viewer,
    id: web::Path<i64>,
    body: web::Bytes,
    store: web::Data<Store>,
) -> Result<HttpResponse, PageError> {
    toggle(viewer, *id, false, body, store).await
}
