//! Incident tickets (DOMAIN.md "Incidents"): opening by hand or from an alert with a reference
//! `YEAR/CODE/N`, the state machine from `created` to `closed` enforced on the server, the
//! people in charge and following, resolution lines, the timeline of every change and mail,
//! attachments kept under the data directory, the times to acknowledge and to resolve, and
//! their HTTP API (`/api/v1/incidents…`) and console pages (`/incidents…`). Design:
//! docs/incidents.md.
//!
//! Owns the tables `incidents`, `incident_counters`, `incident_people`, `incident_resolutions`,
//! `incident_events` and `incident_attachments`.

pub mod api;
pub mod archive;
pub mod attachments;
mod error;
pub mod exports_routes;
mod mail;
pub mod model;
pub mod pages;
pub mod print;
pub mod repo;
pub mod workflow;
pub mod xml;

use std::path::PathBuf;

use actix_web::{HttpRequest, web};
use vigie_alerts::pipeline::Pipeline;
use vigie_core::domain::Domains;

pub use error::IncidentsError;
pub use model::{Incident, IncidentFull, load};

/// The module's settings, given as `web::Data<IncidentsSettings>` (defaults otherwise).
#[derive(Clone, Debug)]
pub struct IncidentsSettings {
    /// The hub's data directory: attachments go to `{data_dir}/attachments/`.
    pub data_dir: PathBuf,
    /// The largest attachment, in bytes.
    pub attachment_max: usize,
}

impl IncidentsSettings {
    pub fn new(data_dir: impl Into<PathBuf>) -> IncidentsSettings {
        IncidentsSettings {
            data_dir: data_dir.into(),
            attachment_max: attachments::DEFAULT_MAX,
        }
    }
}

impl Default for IncidentsSettings {
    fn default() -> IncidentsSettings {
        IncidentsSettings::new("data")
    }
}

/// Registers the API routes, then the console pages.
pub fn configure(cfg: &mut web::ServiceConfig) {
    api::configure(cfg);
    pages::configure(cfg);
}

// ---------------------------------------------------------------------------------------------
// Knowledge base hooks (the `vigie-kb` crate plugs in here; this crate does not depend on it).

/// KNOWLEDGE BASE HOOK: where the "copy into the knowledge base?" answer "yes" leads after a
/// close; the knowledge base's form reads the incident (by id) to prefill its fields.
pub fn kb_copy_url(incident_id: i64) -> String {
    format!("/kb/new?incident={incident_id}")
}

/// One article the knowledge base suggests for an incident being opened or shown.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Suggestion {
    pub title: String,
    pub url: String,
}

/// KNOWLEDGE BASE HOOK: suggests articles for a text (an incident's title and description).
/// The hub registers one as `web::Data<SuggestFn>`; without it, no suggestion is shown.
pub type SuggestFn = std::sync::Arc<
    dyn Fn(
            vigie_core::store::Store,
            String,
        ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Vec<Suggestion>>>>
        + Send
        + Sync,
>;

/// The suggestions for `text`, when the knowledge base is wired.
pub(crate) async fn suggestions(
    req: &HttpRequest,
    store: &vigie_core::store::Store,
    text: String,
) -> Vec<Suggestion> {
    match req.app_data::<web::Data<SuggestFn>>() {
        Some(f) if !text.trim().is_empty() => (f.get_ref())(store.clone(), text).await,
        _ => Vec::new(),
    }
}

// ---------------------------------------------------------------------------------------------
// What handlers read from the application.

pub(crate) fn settings(req: &HttpRequest) -> IncidentsSettings {
    req.app_data::<web::Data<IncidentsSettings>>()
        .map(|s| s.get_ref().clone())
        .unwrap_or_default()
}

/// The configured domains: `web::Data<Domains>` when given, else the pipeline's, else the
/// defaults.
pub(crate) fn domains(req: &HttpRequest) -> Domains {
    if let Some(d) = req.app_data::<web::Data<Domains>>() {
        return d.get_ref().clone();
    }
    if let Some(p) = req.app_data::<web::Data<Pipeline>>() {
        return p.settings().domains.clone();
    }
    Domains::default()
}

pub(crate) fn base_url(req: &HttpRequest) -> String {
    match req.app_data::<web::Data<vigie_console::Console>>() {
        Some(c) => c.base_url(),
        None => format!(
            "{}://{}",
            req.connection_info().scheme(),
            req.connection_info().host()
        ),
    }
}

/// Submits a committed step's board alerts through the application's pipeline.
pub(crate) async fn raise(req: &HttpRequest, records: Vec<vigie_source::RawRecord>) {
    let pipeline = req.app_data::<web::Data<Pipeline>>();
    workflow::raise(
        pipeline.map(|p| p.get_ref() as &dyn vigie_source::Ingest),
        records,
    )
    .await;
}
