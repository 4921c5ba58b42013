//! The knowledge base in the console: search (highlighted excerpts, domain and tag filters,
//! recent articles without a query), an article with its incidents, the form to write or edit
//! one (prefilled from an incident through [`DraftSource`]), and deletion after confirmation.
//! Reading and writing need `knowledge_base`; editing and deleting, the author or an operator
//! (`incidents_manage`). Checked on the server for every route.

use std::collections::BTreeMap;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Serialize;
use tera::Context;
use vigie_console::{Console, FormData, PageError, Viewer, flash, see_other};
use vigie_core::domain::Domains;
use vigie_core::role::Permission;
use vigie_core::store::Store;

use crate::DraftSource;
use crate::error::KbError;
use crate::repo::{self, Article, Draft, Filters};

/// Articles in the recent list and hits on a results page.
const PAGE_SIZE: i64 = 30;

pub(crate) fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/kb", web::get().to(index))
        .route("/kb/new", web::get().to(new_form))
        .route("/kb/new", web::post().to(create))
        .route("/kb/{id}", web::get().to(show))
        .route("/kb/{id}/edit", web::get().to(edit_form))
        .route("/kb/{id}/edit", web::post().to(save))
        .route("/kb/{id}/delete", web::get().to(delete_confirm))
        .route("/kb/{id}/delete", web::post().to(delete));
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

fn domains_of(req: &HttpRequest) -> Domains {
    req.app_data::<web::Data<Domains>>()
        .map(|d| d.get_ref().clone())
        .unwrap_or_default()
}

/// A domain offered in the form and the filters.
#[derive(Serialize)]
struct DomainOption {
    id: String,
    label: String,
}

fn domain_options(domains: &Domains, viewer: &Viewer, extra: &[String]) -> Vec<DomainOption> {
    let fr = viewer.lang == vigie_console::Lang::Fr;
    let mut out: Vec<DomainOption> = domains
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
        .collect();
    for id in extra {
        if !out.iter().any(|o| &o.id == id) {
            out.push(DomainOption {
                id: id.clone(),
                label: id.clone(),
            });
        }
    }
    out
}

async fn index(
    req: HttpRequest,
    viewer: Viewer,
    console: web::Data<Console>,
    store: web::Data<Store>,
) -> Result<HttpResponse, PageError> {
    viewer.require(Permission::KnowledgeBase)?;
    let query = FormData::parse(req.query_string().as_bytes());
    let q = query.text("q").trim().to_owned();
    let filters = Filters {
        domain: query.get("domain").map(str::to_owned),
        tag: query.get("tag").map(str::to_owned),
    };
    let mut context = Context::new();
    let mut status = StatusCode::OK;
    if q.is_empty() {
        context.insert(
            "hits",
            &repo::recent(&store, &filters, PAGE_SIZE)
                .await
                .map_err(|e| e.into_page(viewer.lang))?,
        );
    } else {
        match repo::search(&store, &q, &filters, PAGE_SIZE).await {
            Ok(hits) => context.insert("hits", &hits),
            Err(KbError::Invalid(problems)) => {
                status = StatusCode::BAD_REQUEST;
                let errors: BTreeMap<String, String> = problems
                    .iter()
                    .map(|p| (p.field.to_owned(), viewer.text(p.key)))
                    .collect();
                context.insert("errors", &errors);
                context.insert("hits", &Vec::<repo::Hit>::new());
            }
            Err(e) => return Err(e.into_page(viewer.lang)),
        }
    }
    let (used_domains, tags) = repo::facets(&store)
        .await
        .map_err(|e| e.into_page(viewer.lang))?;
    context.insert(
        "domains",
        &domain_options(&domains_of(&req), &viewer, &used_domains),
    );
    context.insert("tags", &tags);
    context.insert("q", &q);
    context.insert("domain", &filters.domain.unwrap_or_default());
    context.insert("tag", &filters.tag.unwrap_or_default());
    if !context.contains_key("errors") {
        context.insert("errors", &BTreeMap::<String, String>::new());
    }
    Ok(render(&console, &viewer, status, "kb/index.html", context))
}

/// The form's fields as typed (tags as one line).
#[derive(Default, Serialize)]
struct FormView {
    title: String,
    symptoms: String,
    cause: String,
    resolution: String,
    domain: String,
    tags: String,
    incident_id: String,
    incident_reference: String,
}

impl FormView {
    fn of(draft: &Draft) -> FormView {
        FormView {
            title: draft.title.clone(),
            symptoms: draft.symptoms.clone(),
            cause: draft.cause.clone(),
            resolution: draft.resolution.clone(),
            domain: draft.domain.clone().unwrap_or_default(),
            tags: draft.tags.join(", "),
            incident_id: draft.incident_id.map(|i| i.to_string()).unwrap_or_default(),
            incident_reference: draft.incident_reference.clone().unwrap_or_default(),
        }
    }
}

/// The form page: new (`article` = None) or edit.
fn form_page(
    console: &Console,
    viewer: &Viewer,
    domains: &Domains,
    article: Option<&Article>,
    draft: &Draft,
    errors: BTreeMap<String, String>,
) -> HttpResponse {
    let mut context = Context::new();
    let extra: Vec<String> = draft.domain.iter().cloned().collect();
    context.insert("domains", &domain_options(domains, viewer, &extra));
    context.insert("form", &FormView::of(draft));
    context.insert("article", &article);
    context.insert(
        "action",
        &article.map_or_else(|| "/kb/new".to_owned(), |a| format!("/kb/{}/edit", a.id)),
    );
    let status = if errors.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    context.insert("errors", &errors);
    render(console, viewer, status, "kb/form.html", context)
}

/// The "new article" page, prefilled with `draft` (the incidents module calls it when a closed
/// incident is copied into the knowledge base). Needs `knowledge_base`.
pub fn new_article_page(
    console: &Console,
    viewer: &Viewer,
    draft: &Draft,
) -> Result<HttpResponse, PageError> {
    viewer.require(Permission::KnowledgeBase)?;
    Ok(form_page(
        console,
        viewer,
        &Domains::default(),
        None,
        draft,
        BTreeMap::new(),
    ))
}

async fn new_form(
    req: HttpRequest,
    viewer: Viewer,
    console: web::Data<Console>,
    store: web::Data<Store>,
) -> Result<HttpResponse, PageError> {
    viewer.require(Permission::KnowledgeBase)?;
    let query = FormData::parse(req.query_string().as_bytes());
    let incident = query.get("incident").and_then(|v| v.parse::<i64>().ok());
    let source = req.app_data::<web::Data<DraftSource>>();
    let draft = match (incident, source) {
        (Some(id), Some(source)) => source
            .draft(store.get_ref().clone(), id)
            .await
            .unwrap_or_default(),
        _ => Draft::default(),
    };
    Ok(form_page(
        &console,
        &viewer,
        &domains_of(&req),
        None,
        &draft,
        BTreeMap::new(),
    ))
}

/// The draft a submitted form describes. With a [`DraftSource`], the incident's reference is
/// taken from the incident itself, and an unknown incident is dropped rather than linked.
async fn draft_of(req: &HttpRequest, store: &Store, form: &FormData) -> Draft {
    let optional = |k: &str| Some(form.text(k).trim().to_owned()).filter(|v| !v.is_empty());
    let mut draft = Draft {
        title: form.text("title"),
        symptoms: form.text("symptoms"),
        cause: form.text("cause"),
        resolution: form.text("resolution"),
        domain: optional("domain"),
        tags: repo::parse_tags(&form.text("tags")),
        incident_id: optional("incident_id").and_then(|v| v.parse().ok()),
        incident_reference: optional("incident_reference"),
    };
    if let (Some(id), Some(source)) = (draft.incident_id, req.app_data::<web::Data<DraftSource>>())
    {
        match source.draft(store.clone(), id).await {
            Some(from) => draft.incident_reference = from.incident_reference,
            None => {
                draft.incident_id = None;
                draft.incident_reference = None;
            }
        }
    }
    draft
}

fn field_errors(viewer: &Viewer, problems: &[crate::Problem]) -> BTreeMap<String, String> {
    let mut errors = BTreeMap::new();
    for p in problems {
        errors
            .entry(p.field.to_owned())
            .or_insert_with(|| viewer.text(p.key));
    }
    errors
}

async fn create(
    req: HttpRequest,
    viewer: Viewer,
    body: web::Bytes,
    console: web::Data<Console>,
    store: web::Data<Store>,
) -> Result<HttpResponse, PageError> {
    viewer.require(Permission::KnowledgeBase)?;
    let form = FormData::parse(&body);
    viewer.check_csrf(form.get("_csrf"))?;
    let draft = draft_of(&req, &store, &form).await;
    match repo::create(&store, &viewer.actor(), viewer.ip(), &draft).await {
        Ok(id) => {
            flash(&store, &viewer, "success", "kb.created", None).await?;
            Ok(see_other(&format!("/kb/{id}")))
        }
        Err(KbError::Invalid(problems)) => Ok(form_page(
            &console,
            &viewer,
            &domains_of(&req),
            None,
            &draft,
            field_errors(&viewer, &problems),
        )),
        Err(e) => Err(e.into_page(viewer.lang)),
    }
}

async fn load(viewer: &Viewer, store: &Store, id: i64) -> Result<Article, PageError> {
    repo::get(store, id)
        .await
        .map_err(|e| e.into_page(viewer.lang))?
        .ok_or(PageError::NotFound(viewer.lang))
}

fn require_change(viewer: &Viewer, article: &Article) -> Result<(), PageError> {
    if repo::may_change(article, viewer.user.user_id, &viewer.permissions) {
        Ok(())
    } else {
        Err(PageError::Forbidden(viewer.lang))
    }
}

async fn show(
    req: HttpRequest,
    viewer: Viewer,
    id: web::Path<i64>,
    console: web::Data<Console>,
    store: web::Data<Store>,
) -> Result<HttpResponse, PageError> {
    viewer.require(Permission::KnowledgeBase)?;
    let article = load(&viewer, &store, *id).await?;
    let mut context = Context::new();
    let domain_label = article.domain.as_ref().map(|d| {
        domain_options(&domains_of(&req), &viewer, std::slice::from_ref(d))
            .into_iter()
            .find(|o| &o.id == d)
            .map_or_else(|| d.clone(), |o| o.label)
    });
    context.insert("domain_label", &domain_label);
    context.insert(
        "can_change",
        &repo::may_change(&article, viewer.user.user_id, &viewer.permissions),
    );
    context.insert("article", &article);
    Ok(render(
        &console,
        &viewer,
        StatusCode::OK,
        "kb/show.html",
        context,
    ))
}

async fn edit_form(
    req: HttpRequest,
    viewer: Viewer,
    id: web::Path<i64>,
    console: web::Data<Console>,
    store: web::Data<Store>,
) -> Result<HttpResponse, PageError> {
    viewer.require(Permission::KnowledgeBase)?;
    let article = load(&viewer, &store, *id).await?;
    require_change(&viewer, &article)?;
    let draft = Draft {
        title: article.title.clone(),
        symptoms: article.symptoms.clone(),
        cause: article.cause.clone(),
        resolution: article.resolution.clone(),
        domain: article.domain.clone(),
        tags: article.tags.clone(),
        incident_id: None,
        incident_reference: None,
    };
    Ok(form_page(
        &console,
        &viewer,
        &domains_of(&req),
        Some(&article),
        &draft,
        BTreeMap::new(),
    ))
}

async fn save(
    req: HttpRequest,
    viewer: Viewer,
    id: web::Path<i64>,
    body: web::Bytes,
    console: web::Data<Console>,
    store: web::Data<Store>,
) -> Result<HttpResponse, PageError> {
    viewer.require(Permission::KnowledgeBase)?;
    let form = FormData::parse(&body);
    viewer.check_csrf(form.get("_csrf"))?;
    let article = load(&viewer, &store, *id).await?;
    require_change(&viewer, &article)?;
    let draft = draft_of(&req, &store, &form).await;
    match repo::update(&store, &viewer.actor(), viewer.ip(), article.id, &draft).await {
        Ok(()) => {
            flash(&store, &viewer, "success", "kb.saved", None).await?;
            Ok(see_other(&format!("/kb/{}", article.id)))
        }
        Err(KbError::Invalid(problems)) => Ok(form_page(
            &console,
            &viewer,
            &domains_of(&req),
            Some(&article),
            &draft,
            field_errors(&viewer, &problems),
        )),
        Err(e) => Err(e.into_page(viewer.lang)),
    }
}

async fn delete_confirm(
    viewer: Viewer,
    id: web::Path<i64>,
    console: web::Data<Console>,
    store: web::Data<Store>,
) -> Result<HttpResponse, PageError> {
    viewer.require(Permission::KnowledgeBase)?;
    let article = load(&viewer, &store, *id).await?;
    require_change(&viewer, &article)?;
    let mut context = Context::new();
    context.insert("article", &article);
    Ok(render(
        &console,
        &viewer,
        StatusCode::OK,
        "kb/delete.html",
        context,
    ))
}

async fn delete(
    viewer: Viewer,
    id: web::Path<i64>,
    body: web::Bytes,
    store: web::Data<Store>,
) -> Result<HttpResponse, PageError> {
    viewer.require(Permission::KnowledgeBase)?;
    let form = FormData::parse(&body);
    viewer.check_csrf(form.get("_csrf"))?;
    let article = load(&viewer, &store, *id).await?;
    require_change(&viewer, &article)?;
    if !repo::delete(&store, &viewer.actor(), viewer.ip(), article.id)
        .await
        .map_err(|e| e.into_page(viewer.lang))?
    {
        return Err(PageError::NotFound(viewer.lang));
    }
    flash(
        &store,
        &viewer,
        "success",
        "kb.deleted",
        Some(article.title),
    )
    .await?;
    Ok(see_other("/kb"))
}
