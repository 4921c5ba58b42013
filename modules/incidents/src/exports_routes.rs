//! The routes of the sheet, the XML export and the archives, over the API (bearer token) and in
//! the console (session, CSRF on forms).
//!
//! Printing and exporting are for anyone who may see incidents (`IncidentsOpen`; DOMAIN.md
//! "Print: any user"). The archives (list, run now, re-import, download) are for the operator
//! (`IncidentsManage`) and the administrator.
//!
//! Register with [`configure`] BEFORE [`crate::configure`]: `/incidents/archives` and
//! `/api/v1/incidents/export.xml` would otherwise be taken for an incident's id.

use actix_web::http::header::{CONTENT_DISPOSITION, CONTENT_TYPE, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, web};
use tera::Context;
use vigie_auth::Caller;
use vigie_console::{Console, FormData, Lang, PageError, Renderer, Viewer, flash, see_other};
use vigie_core::audit::Actor;
use vigie_core::role::{Permission, PermissionSet, Role};
use vigie_core::store::Store;

use crate::archive::{self, ArchiveSettings};
use crate::error::IncidentsError;
use crate::print::{self, SheetContext};
use crate::{api, model, xml};

/// The largest archive accepted for re-import.
const IMPORT_MAX: usize = 512 * 1024 * 1024;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/api/v1/incidents/export.xml", web::get().to(api_export))
        .route("/api/v1/incidents/archives", web::get().to(api_list))
        .route("/api/v1/incidents/archives/run", web::post().to(api_run))
        .service(
            web::resource("/api/v1/incidents/archives/import")
                .app_data(web::PayloadConfig::new(IMPORT_MAX))
                .route(web::post().to(api_import_body)),
        )
        .route(
            "/api/v1/incidents/archives/{name}",
            web::get().to(api_download),
        )
        .route(
            "/api/v1/incidents/archives/{name}/import",
            web::post().to(api_import_named),
        )
        .route("/api/v1/incidents/{id}/pdf", web::get().to(api_pdf))
        .route("/api/v1/incidents/{id}/xml", web::get().to(api_xml))
        .route("/incidents/export.xml", web::get().to(page_export))
        .route("/incidents/archives", web::get().to(page_archives))
        .route("/incidents/archives/run", web::post().to(page_run))
        .service(
            web::resource("/incidents/archives/import")
                .app_data(web::PayloadConfig::new(IMPORT_MAX))
                .route(web::post().to(page_import_upload)),
        )
        .route("/incidents/archives/{name}", web::get().to(page_download))
        .route(
            "/incidents/archives/{name}/import",
            web::post().to(page_import_named),
        )
        .route("/incidents/{id}/pdf", web::get().to(page_pdf))
        .route("/incidents/{id}/xml", web::get().to(page_xml));
}

/// The operator (`IncidentsManage`) and the administrator manage the archives.
pub fn may_manage_archives(role: Role, permissions: PermissionSet) -> bool {
    role == Role::Admin || permissions.contains(Permission::IncidentsManage)
}

fn store(req: &HttpRequest) -> Result<Store, IncidentsError> {
    req.app_data::<web::Data<Store>>()
        .map(|s| s.get_ref().clone())
        .ok_or_else(|| IncidentsError::Io(std::io::Error::other("no store registered")))
}

fn archive_settings(req: &HttpRequest) -> ArchiveSettings {
    req.app_data::<web::Data<ArchiveSettings>>()
        .map(|s| s.get_ref().clone())
        .unwrap_or_default()
}

fn id_of(req: &HttpRequest) -> Result<i64, IncidentsError> {
    let raw = req.match_info().get("id").unwrap_or_default();
    raw.parse()
        .map_err(|_| IncidentsError::invalid("id", format!("`{raw}` is not an id")))
}

fn download(content_type: &str, name: &str, body: Vec<u8>) -> HttpResponse {
    let disposition = HeaderValue::from_str(&crate::attachments::content_disposition(name))
        .unwrap_or_else(|_| HeaderValue::from_static("attachment"));
    HttpResponse::Ok()
        .insert_header((CONTENT_TYPE, content_type.to_owned()))
        .insert_header((CONTENT_DISPOSITION, disposition))
        .insert_header(("X-Content-Type-Options", "nosniff"))
        .insert_header(("Cache-Control", "private, no-store"))
        .body(body)
}

fn text_of(lang: Lang) -> impl Fn(&str) -> String {
    move |key: &str| Renderer::get().map_or_else(|_| key.to_owned(), |r| r.locales.text(lang, key))
}

async fn pdf_answer(
    req: &HttpRequest,
    store: &Store,
    id: i64,
    lang: Lang,
    tz: chrono_tz::Tz,
) -> Result<HttpResponse, IncidentsError> {
    let full = model::load(store, id)
        .await?
        .ok_or(IncidentsError::NotFound(id))?;
    let domains = crate::domains(req);
    let text = text_of(lang);
    let bytes = print::sheet(
        &full,
        &SheetContext {
            lang,
            tz,
            domains: &domains,
            text: &text,
        },
    )?;
    Ok(download(
        "application/pdf",
        &print::file_name(&full.incident.reference, "pdf"),
        bytes,
    ))
}

fn wants_data(q: &FormData) -> bool {
    matches!(q.get("attachments"), Some("1" | "true" | "yes"))
}

async fn xml_answer(
    req: &HttpRequest,
    ids: &[i64],
    with_data: bool,
    name: &str,
) -> Result<HttpResponse, IncidentsError> {
    let store = store(req)?;
    let items = archive::items(&store, &crate::settings(req).data_dir, ids, with_data).await?;
    Ok(download(
        "application/xml; charset=utf-8",
        name,
        xml::write(&items).into_bytes(),
    ))
}

/// The ids of an export: `ids=1,2,3`, else the list filters (`state`, `domain`, `criticality`,
/// `q`, `from`, `to`, `view`, `limit`) as the list shows them to this person.
async fn selection(
    store: &Store,
    q: &FormData,
    role: Role,
    user_id: i64,
) -> Result<Vec<i64>, IncidentsError> {
    if let Some(raw) = q.get("ids").filter(|s| !s.trim().is_empty()) {
        let mut ids = Vec::new();
        for part in raw.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            ids.push(part.parse::<i64>().map_err(|_| {
                IncidentsError::invalid("ids", format!("`{part}` is not an incident id"))
            })?);
        }
        if ids.len() > 1000 {
            return Err(IncidentsError::invalid("ids", "at most 1000 incidents"));
        }
        return Ok(ids);
    }
    let time = |field: &str| -> Result<Option<chrono::DateTime<chrono::Utc>>, IncidentsError> {
        match q.get(field).map(str::trim).filter(|v| !v.is_empty()) {
            None => Ok(None),
            Some(v) => chrono::DateTime::parse_from_rfc3339(v)
                .map(|t| Some(t.with_timezone(&chrono::Utc)))
                .or_else(|_| {
                    chrono::NaiveDate::parse_from_str(v, "%Y-%m-%d")
                        .ok()
                        .and_then(|d| d.and_hms_opt(0, 0, 0))
                        .map(|t| Some(t.and_utc()))
                        .ok_or(())
                })
                .map_err(|_| {
                    IncidentsError::invalid(field, "must be an RFC 3339 time or YYYY-MM-DD")
                }),
        }
    };
    let times = (time("from")?, time("to")?);
    let scope = api::scope_for(store, role, user_id, q.get("view").unwrap_or("all")).await?;
    let filter = api::filter_of(q, scope, times)?;
    Ok(crate::repo::list(store, &filter)
        .await?
        .into_iter()
        .map(|i| i.id)
        .collect())
}

// ---------------------------------------------------------------------------------------------
// API.

fn caller_actor(caller: &Caller) -> Actor {
    Actor {
        user_id: caller.user_id,
        login: caller.login.clone(),
        role: caller.role,
    }
}

fn require_archives(caller: &Caller) -> Result<(), IncidentsError> {
    if may_manage_archives(caller.role, caller.permissions) {
        Ok(())
    } else {
        Err(IncidentsError::Forbidden(
            "managing the archives is for the operator and the administrator".to_owned(),
        ))
    }
}

/// `?lang=fr|en`, else the `Accept-Language` header, else the console's default.
fn api_lang(req: &HttpRequest, q: &FormData) -> Lang {
    q.get("lang").and_then(Lang::parse).unwrap_or_else(|| {
        let header = req
            .headers()
            .get(actix_web::http::header::ACCEPT_LANGUAGE)
            .and_then(|v| v.to_str().ok());
        Lang::negotiate(None, header, Renderer::default_lang())
    })
}

async fn api_pdf(req: HttpRequest, caller: Caller) -> Result<HttpResponse, IncidentsError> {
    caller.require(Permission::IncidentsOpen)?;
    let id = id_of(&req)?;
    let q = FormData::parse(req.query_string().as_bytes());
    let tz = match q.get("tz").filter(|t| !t.is_empty()) {
        Some(t) => t
            .parse()
            .map_err(|_| IncidentsError::invalid("tz", format!("`{t}` is not a time zone")))?,
        None => chrono_tz::UTC,
    };
    pdf_answer(&req, &store(&req)?, id, api_lang(&req, &q), tz).await
}

async fn api_xml(req: HttpRequest, caller: Caller) -> Result<HttpResponse, IncidentsError> {
    caller.require(Permission::IncidentsOpen)?;
    let id = id_of(&req)?;
    let q = FormData::parse(req.query_string().as_bytes());
    let full = model::get(&store(&req)?, id)
        .await?
        .ok_or(IncidentsError::NotFound(id))?;
    let name = print::file_name(&full.reference, "xml");
    xml_answer(&req, &[id], wants_data(&q), &name).await
}

async fn api_export(req: HttpRequest, caller: Caller) -> Result<HttpResponse, IncidentsError> {
    caller.require(Permission::IncidentsOpen)?;
    let q = FormData::parse(req.query_string().as_bytes());
    let ids = selection(&store(&req)?, &q, caller.role, caller.user_id).await?;
    xml_answer(&req, &ids, wants_data(&q), "incidents.xml").await
}

async fn api_list(req: HttpRequest, caller: Caller) -> Result<HttpResponse, IncidentsError> {
    require_archives(&caller)?;
    let files = archive::list(&crate::settings(&req).data_dir).await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({
        "archive_after_secs": archive_settings(&req).archive_after.as_secs(),
        "archives": files,
    })))
}

async fn api_run(req: HttpRequest, caller: Caller) -> Result<HttpResponse, IncidentsError> {
    require_archives(&caller)?;
    let ip = req.peer_addr().map(|a| a.ip().to_string());
    let done = archive::run(
        &store(&req)?,
        &crate::settings(&req).data_dir,
        archive_settings(&req).archive_after,
        Some(&caller_actor(&caller)),
        ip.as_deref(),
    )
    .await?;
    Ok(HttpResponse::Ok().json(match done {
        Some(r) => serde_json::json!({"file_name": r.file_name, "references": r.references}),
        None => serde_json::json!({"file_name": null, "references": []}),
    }))
}

async fn api_import(
    req: &HttpRequest,
    caller: &Caller,
    bytes: &[u8],
    label: &str,
) -> Result<HttpResponse, IncidentsError> {
    let ip = req.peer_addr().map(|a| a.ip().to_string());
    let refs = archive::import(
        &store(req)?,
        &crate::settings(req).data_dir,
        bytes,
        label,
        Some(&caller_actor(caller)),
        ip.as_deref(),
    )
    .await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({"imported": refs})))
}

/// The archive is the request's body (`application/xml`).
async fn api_import_body(
    req: HttpRequest,
    caller: Caller,
    body: web::Bytes,
) -> Result<HttpResponse, IncidentsError> {
    require_archives(&caller)?;
    api_import(&req, &caller, &body, "upload").await
}

async fn api_import_named(
    req: HttpRequest,
    caller: Caller,
) -> Result<HttpResponse, IncidentsError> {
    require_archives(&caller)?;
    let name = req.match_info().get("name").unwrap_or_default().to_owned();
    let bytes = archive::read_archive(&crate::settings(&req).data_dir, &name).await?;
    api_import(&req, &caller, &bytes, &name).await
}

async fn api_download(req: HttpRequest, caller: Caller) -> Result<HttpResponse, IncidentsError> {
    require_archives(&caller)?;
    let name = req.match_info().get("name").unwrap_or_default().to_owned();
    let bytes = archive::read_archive(&crate::settings(&req).data_dir, &name).await?;
    Ok(download("application/xml; charset=utf-8", &name, bytes))
}

// ---------------------------------------------------------------------------------------------
// Console.

fn page_err(viewer: &Viewer, e: IncidentsError) -> PageError {
    match e {
        IncidentsError::NotFound(_) | IncidentsError::AttachmentNotFound(_) => {
            PageError::NotFound(viewer.lang)
        }
        IncidentsError::Forbidden(_) | IncidentsError::Auth(_) => PageError::Forbidden(viewer.lang),
        IncidentsError::Store(s) => s.into(),
        IncidentsError::Invalid(_) => PageError::BadRequest(viewer.lang, "invalid request"),
        other => PageError::Internal(other.to_string()),
    }
}

fn viewer_role(viewer: &Viewer) -> Role {
    viewer.user.role.parse().unwrap_or(Role::User)
}

fn require_archives_page(viewer: &Viewer) -> Result<(), PageError> {
    if may_manage_archives(viewer_role(viewer), viewer.permissions) {
        Ok(())
    } else {
        Err(PageError::Forbidden(viewer.lang))
    }
}

async fn page_pdf(req: HttpRequest, viewer: Viewer) -> Result<HttpResponse, PageError> {
    viewer.require(Permission::IncidentsOpen)?;
    let id = id_of(&req).map_err(|_| PageError::NotFound(viewer.lang))?;
    let store = store(&req).map_err(|e| page_err(&viewer, e))?;
    pdf_answer(&req, &store, id, viewer.lang, viewer.tz)
        .await
        .map_err(|e| page_err(&viewer, e))
}

async fn page_xml(req: HttpRequest, viewer: Viewer) -> Result<HttpResponse, PageError> {
    viewer.require(Permission::IncidentsOpen)?;
    let id = id_of(&req).map_err(|_| PageError::NotFound(viewer.lang))?;
    let q = FormData::parse(req.query_string().as_bytes());
    let store = store(&req).map_err(|e| page_err(&viewer, e))?;
    let full = model::get(&store, id)
        .await?
        .ok_or(PageError::NotFound(viewer.lang))?;
    let name = print::file_name(&full.reference, "xml");
    xml_answer(&req, &[id], wants_data(&q), &name)
        .await
        .map_err(|e| page_err(&viewer, e))
}

async fn page_export(req: HttpRequest, viewer: Viewer) -> Result<HttpResponse, PageError> {
    viewer.require(Permission::IncidentsOpen)?;
    let q = FormData::parse(req.query_string().as_bytes());
    let store = store(&req).map_err(|e| page_err(&viewer, e))?;
    let ids = selection(&store, &q, viewer_role(&viewer), viewer.user.user_id)
        .await
        .map_err(|e| page_err(&viewer, e))?;
    xml_answer(&req, &ids, wants_data(&q), "incidents.xml")
        .await
        .map_err(|e| page_err(&viewer, e))
}

#[derive(serde::Serialize)]
struct ArchiveRow {
    name: String,
    size: u64,
    count: Option<i64>,
    exported_at: Option<String>,
    first_opened: Option<String>,
    last_opened: Option<String>,
}

async fn page_archives(req: HttpRequest, viewer: Viewer) -> Result<HttpResponse, PageError> {
    require_archives_page(&viewer)?;
    let files = archive::list(&crate::settings(&req).data_dir)
        .await
        .map_err(|e| page_err(&viewer, e))?;
    let rows: Vec<ArchiveRow> = files
        .into_iter()
        .map(|f| {
            let h = f.header.unwrap_or_default();
            ArchiveRow {
                name: f.name,
                size: f.size,
                count: h.count,
                exported_at: h.exported_at,
                first_opened: h.first_opened,
                last_opened: h.last_opened,
            }
        })
        .collect();
    let console = req
        .app_data::<web::Data<Console>>()
        .ok_or_else(|| PageError::Internal("no console registered".to_owned()))?;
    let mut c = Context::new();
    c.insert("archives", &rows);
    c.insert(
        "archive_after_days",
        &(archive_settings(&req).archive_after.as_secs() / 86_400),
    );
    Ok(console.renderer.page(
        actix_web::http::StatusCode::OK,
        "incidents/archives.html",
        viewer.lang,
        Some(&viewer),
        c,
    ))
}

/// A failed archive step as a message on the archives page.
async fn archive_error(
    store: &Store,
    viewer: &Viewer,
    e: IncidentsError,
) -> Result<HttpResponse, PageError> {
    let problem = match e {
        IncidentsError::Invalid(p) => p.problem,
        IncidentsError::Conflict { .. } => e.to_string(),
        other => return Err(page_err(viewer, other)),
    };
    flash(
        store,
        viewer,
        "error",
        "incidents_export.import_failed",
        Some(problem),
    )
    .await?;
    Ok(see_other("/incidents/archives"))
}

async fn page_run(
    req: HttpRequest,
    viewer: Viewer,
    body: web::Bytes,
) -> Result<HttpResponse, PageError> {
    require_archives_page(&viewer)?;
    let form = FormData::parse(&body);
    viewer.check_csrf(form.get("_csrf"))?;
    let store = store(&req).map_err(|e| page_err(&viewer, e))?;
    let done = archive::run(
        &store,
        &crate::settings(&req).data_dir,
        archive_settings(&req).archive_after,
        Some(&viewer.actor()),
        viewer.ip(),
    )
    .await;
    match done {
        Ok(Some(r)) => {
            let arg = format!("{} ({})", r.file_name, r.references.len());
            flash(
                &store,
                &viewer,
                "success",
                "incidents_export.run_done",
                Some(arg),
            )
            .await?;
        }
        Ok(None) => {
            flash(
                &store,
                &viewer,
                "info",
                "incidents_export.run_nothing",
                None,
            )
            .await?;
        }
        Err(e) => return archive_error(&store, &viewer, e).await,
    }
    Ok(see_other("/incidents/archives"))
}

async fn page_import(
    store: &Store,
    req: &HttpRequest,
    viewer: &Viewer,
    bytes: &[u8],
    label: &str,
) -> Result<HttpResponse, PageError> {
    let done = archive::import(
        store,
        &crate::settings(req).data_dir,
        bytes,
        label,
        Some(&viewer.actor()),
        viewer.ip(),
    )
    .await;
    match done {
        Ok(refs) => {
            flash(
                store,
                viewer,
                "success",
                "incidents_export.import_done",
                Some(refs.join(", ")),
            )
            .await?;
            Ok(see_other("/incidents/archives"))
        }
        Err(e) => archive_error(store, viewer, e).await,
    }
}

/// The upload form: `multipart/form-data` with `_csrf` and `file`.
async fn page_import_upload(
    req: HttpRequest,
    viewer: Viewer,
    body: web::Bytes,
) -> Result<HttpResponse, PageError> {
    require_archives_page(&viewer)?;
    let content_type = req
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let parts = crate::attachments::parse_multipart(&content_type, &body)
        .map_err(|_| PageError::BadRequest(viewer.lang, "not a multipart form"))?;
    let csrf = parts
        .iter()
        .find(|p| p.name == "_csrf")
        .and_then(|p| std::str::from_utf8(&p.data).ok());
    viewer.check_csrf(csrf)?;
    let store = store(&req).map_err(|e| page_err(&viewer, e))?;
    let Some(file) = parts.iter().find(|p| p.name == "file") else {
        return archive_error(
            &store,
            &viewer,
            IncidentsError::invalid("file", "no file was sent"),
        )
        .await;
    };
    let label = file
        .file_name
        .clone()
        .unwrap_or_else(|| "upload".to_owned());
    page_import(&store, &req, &viewer, &file.data, &label).await
}

async fn page_import_named(
    req: HttpRequest,
    viewer: Viewer,
    body: web::Bytes,
) -> Result<HttpResponse, PageError> {
    require_archives_page(&viewer)?;
    let form = FormData::parse(&body);
    viewer.check_csrf(form.get("_csrf"))?;
    let store = store(&req).map_err(|e| page_err(&viewer, e))?;
    let name = req.match_info().get("name").unwrap_or_default().to_owned();
    match archive::read_archive(&crate::settings(&req).data_dir, &name).await {
        Ok(bytes) => page_import(&store, &req, &viewer, &bytes, &name).await,
        Err(e) => archive_error(&store, &viewer, e).await,
    }
}

async fn page_download(req: HttpRequest, viewer: Viewer) -> Result<HttpResponse, PageError> {
    require_archives_page(&viewer)?;
    let name = req.match_info().get("name").unwrap_or_default().to_owned();
    let bytes = archive::read_archive(&crate::settings(&req).data_dir, &name)
        .await
        .map_err(|_| PageError::NotFound(viewer.lang))?;
    Ok(download("application/xml; charset=utf-8", &name, bytes))
}
