//! The console's one error type, mapped once to an answer: a redirect to the login page, or an
//! error page in the viewer's language. Internal causes go to the log, never to the page.

use actix_web::http::StatusCode;
use actix_web::http::header::LOCATION;
use actix_web::{HttpResponse, ResponseError};
use tera::Context;
use vigie_auth::AuthError;
use vigie_core::store::StoreError;

use crate::i18n::Lang;
use crate::render::Renderer;

#[derive(Debug, thiserror::Error)]
pub enum PageError {
    /// No live session: to the login page, then back to `next`.
    #[error("login required")]
    Login { next: String, expired: bool },
    #[error("redirect to {0}")]
    Redirect(String),
    #[error("forbidden")]
    Forbidden(Lang),
    #[error("not found")]
    NotFound(Lang),
    /// A state-changing request without the form's CSRF token.
    #[error("missing or wrong CSRF token")]
    Csrf(Lang),
    #[error("bad request: {1}")]
    BadRequest(Lang, &'static str),
    #[error("the store is unavailable")]
    Unavailable,
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<AuthError> for PageError {
    fn from(e: AuthError) -> PageError {
        match e {
            AuthError::Store(s) => s.into(),
            AuthError::NotFound => PageError::NotFound(Renderer::default_lang()),
            other => PageError::Internal(other.to_string()),
        }
    }
}

impl From<StoreError> for PageError {
    fn from(e: StoreError) -> PageError {
        if e.is_unavailable() {
            PageError::Unavailable
        } else {
            PageError::Internal(e.to_string())
        }
    }
}

/// A 303 to `location` (after a form, and to the login page).
pub fn see_other(location: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((LOCATION, location.to_owned()))
        .finish()
}

/// Percent-encodes a query value.
pub(crate) fn encode(value: &str) -> String {
    form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

impl ResponseError for PageError {
    fn status_code(&self) -> StatusCode {
        match self {
            PageError::Login { .. } | PageError::Redirect(_) => StatusCode::SEE_OTHER,
            PageError::Forbidden(_) | PageError::Csrf(_) => StatusCode::FORBIDDEN,
            PageError::NotFound(_) => StatusCode::NOT_FOUND,
            PageError::BadRequest(..) => StatusCode::BAD_REQUEST,
            PageError::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            PageError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let (lang, key) = match self {
            PageError::Login { next, expired } => {
                let mut location = format!("/login?next={}", encode(next));
                if *expired {
                    location.push_str("&expired=1");
                }
                return see_other(&location);
            }
            PageError::Redirect(to) => return see_other(to),
            PageError::Forbidden(lang) => (*lang, "error.forbidden"),
            PageError::NotFound(lang) => (*lang, "error.not_found"),
            PageError::Csrf(lang) => (*lang, "error.csrf"),
            PageError::BadRequest(lang, key) => (*lang, *key),
            PageError::Unavailable => (Renderer::default_lang(), "error.unavailable"),
            PageError::Internal(cause) => {
                tracing::error!(%cause, "A console page failed.");
                (Renderer::default_lang(), "error.internal")
            }
        };
        let status = self.status_code();
        match Renderer::get() {
            Ok(renderer) => {
                let mut context = Context::new();
                context.insert("status", &status.as_u16());
                context.insert("message", &renderer.locales.text(lang, key));
                let mut response = renderer.page(status, "console/error.html", lang, None, context);
                if status == StatusCode::SERVICE_UNAVAILABLE {
                    response.headers_mut().insert(
                        actix_web::http::header::RETRY_AFTER,
                        actix_web::http::header::HeaderValue::from_static("5"),
                    );
                }
                response
            }
            Err(e) => {
                tracing::error!(error = %e, "The console's templates are broken.");
                HttpResponse::build(status).finish()
            }
        }
    }
}
