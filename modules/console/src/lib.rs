//! The web console: the frame every page shares (layout, locales, sessions, CSRF, security
//! headers, assets, error pages) and the pages of people and access (login, account,
//! administration of users, menus, security settings and the audit log).
//!
//! Other modules add their pages with [`Viewer`] (the logged-in user, their permissions and
//! language) and [`Renderer`] (the templates), so every page looks and behaves the same.

mod embedded {
    include!(concat!(env!("OUT_DIR"), "/embedded.rs"));
}
mod error;
mod form;
pub mod i18n;
mod pages;
mod render;
mod viewer;

use std::time::Duration;

use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, web};
use vigie_auth::LinkPolicy;
use vigie_auth::login::LockoutPolicy;
use vigie_auth::session::SessionPolicy;
use vigie_core::store::{Store, StoreError};

pub use error::{PageError, see_other};
pub use form::FormData;
pub use i18n::{Lang, Locales};
pub use render::Renderer;
pub use viewer::{FlashView, Viewer, flash};

/// What the console is configured with.
#[derive(Clone, Debug)]
pub struct ConsoleSettings {
    pub default_lang: Lang,
    pub timezone: chrono_tz::Tz,
    pub sessions: SessionPolicy,
    pub lockout: LockoutPolicy,
    pub links: LinkPolicy,
    /// The address users reach the hub at, for links in mails (`https://vigie.example.org`).
    pub public_url: Option<String>,
    /// Where the hub listens, for links when no public address is configured.
    pub listen: String,
}

impl Default for ConsoleSettings {
    fn default() -> ConsoleSettings {
        ConsoleSettings {
            default_lang: Lang::Fr,
            timezone: chrono_tz::UTC,
            sessions: SessionPolicy::default(),
            lockout: LockoutPolicy::default(),
            links: LinkPolicy {
                activation_ttl: Duration::from_secs(72 * 3600),
            },
            public_url: None,
            listen: "127.0.0.1:8080".into(),
        }
    }
}

/// The console's shared state.
pub struct Console {
    pub settings: ConsoleSettings,
    pub renderer: &'static Renderer,
}

#[derive(Debug, thiserror::Error)]
pub enum ConsoleError {
    #[error("the console's embedded templates or locales are broken: {0}")]
    Templates(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl Console {
    /// Loads the templates and locales, and makes sure the built-in menus exist in the store.
    pub async fn start(settings: ConsoleSettings, store: &Store) -> Result<Console, ConsoleError> {
        let renderer = Renderer::get().map_err(ConsoleError::Templates)?;
        Renderer::set_default_lang(settings.default_lang);
        let labels = |code: &str| {
            let key = format!("menu.{}", code.replace('.', "_"));
            (
                renderer.locales.text(Lang::En, &key),
                renderer.locales.text(Lang::Fr, &key),
            )
        };
        let added = vigie_auth::menus::ensure_builtin(store, &labels).await?;
        if added > 0 {
            tracing::info!(menus = added, "Built-in menus added to the store.");
        }
        Ok(Console { settings, renderer })
    }

    /// The hub's address as users reach it, without a trailing slash.
    pub fn base_url(&self) -> String {
        match &self.settings.public_url {
            Some(url) => url.trim_end_matches('/').to_owned(),
            None => format!("http://{}", self.settings.listen),
        }
    }
}

/// The console's routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    pages::configure(cfg);
}

/// Security headers of every answer: a CSP without inline script, no framing, no referrer
/// leaks, no MIME sniffing; HTML pages are never cached (they show personal data).
pub fn security_headers(headers: &mut header::HeaderMap) {
    let set = |headers: &mut header::HeaderMap, name: &'static str, value: &'static str| {
        let name = header::HeaderName::from_static(name);
        if !headers.contains_key(&name) {
            headers.insert(name, HeaderValue::from_static(value));
        }
    };
    set(
        headers,
        "content-security-policy",
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
         connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; \
         form-action 'self'; frame-ancestors 'none'",
    );
    set(headers, "x-frame-options", "DENY");
    set(headers, "referrer-policy", "same-origin");
    set(headers, "x-content-type-options", "nosniff");
    set(headers, "cache-control", "no-store");
}

/// The answer for a route that does not exist: JSON under `/api/`, a page elsewhere.
pub async fn not_found(req: HttpRequest) -> HttpResponse {
    if req.path().starts_with("/api/") || req.path().starts_with("/metrics") {
        return vigie_core::http::json_error(
            actix_web::http::StatusCode::NOT_FOUND,
            "no such route",
            &[],
        );
    }
    let default = Renderer::default_lang();
    actix_web::ResponseError::error_response(&PageError::NotFound(viewer::request_lang(
        &req, default,
    )))
}
