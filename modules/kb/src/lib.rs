//! The knowledge base: articles (title, symptoms, cause, resolution, domain, tags and the
//! incidents they came from), written by hand or from a closed incident, found by an
//! accent-insensitive full-text search (SQLite FTS5, PostgreSQL text search over an accent-folded
//! copy), and suggested when someone opens an incident. Console pages under `/kb`, JSON under
//! `/api/v1/kb`. Design and the incidents hook: docs/kb.md.
//!
//! Owns the tables `kb_articles`, `kb_article_tags`, `kb_article_incidents` and `kb_fts`
//! (SQLite). It knows incidents only by id and reference: the incidents module depends on this
//! one, never the reverse; it fills a [`Draft`] for the "new article" page through
//! [`DraftSource`].

mod api;
mod error;
mod pages;
pub mod repo;
pub mod text;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use actix_web::web;
use vigie_core::store::Store;

pub use error::{KbError, Problem};
pub use pages::new_article_page;
pub use repo::{
    Article, Draft, Filters, Hit, IncidentLink, create, delete, for_incident, get, may_change,
    recent, search, suggest, update,
};

/// What a [`DraftSource`] returns.
pub type DraftFuture = Pin<Box<dyn Future<Output = Option<Draft>> + Send>>;

/// Fills the "new article" form from an incident: `/kb/new?incident=ID` asks it for incident
/// `ID` (the incidents module provides it and the hub registers it as
/// `web::Data<DraftSource>`). Without one, or when it answers `None`, the form is empty.
/// Posting the form asks it again, so the stored incident reference is the incident's own.
#[derive(Clone)]
pub struct DraftSource(Arc<dyn Fn(Store, i64) -> DraftFuture + Send + Sync>);

impl DraftSource {
    pub fn new<F>(f: F) -> DraftSource
    where
        F: Fn(Store, i64) -> DraftFuture + Send + Sync + 'static,
    {
        DraftSource(Arc::new(f))
    }

    /// The draft for incident `id`, if the incident exists (and may be turned into an article).
    pub async fn draft(&self, store: Store, id: i64) -> Option<Draft> {
        (self.0)(store, id).await
    }
}

/// Registers the API (`/api/v1/kb…`) and the console pages (`/kb…`). Reads `web::Data<Store>`,
/// `web::Data<vigie_console::Console>` (pages), and when present `web::Data<DraftSource>` and
/// `web::Data<vigie_core::domain::Domains>` (the domains offered; the defaults otherwise).
pub fn configure(cfg: &mut web::ServiceConfig) {
    api::configure(cfg);
    pages::configure(cfg);
}
