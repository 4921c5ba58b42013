//! The hosts module's error, mapped once to HTTP.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use vigie_auth::AuthError;
use vigie_core::http::{FieldProblem, json_error, unavailable};
use vigie_core::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum HostsError {
    /// A user's bearer token (the read API).
    #[error(transparent)]
    Auth(#[from] AuthError),
    /// No host token, or an unknown or revoked one.
    #[error("missing, unknown or revoked host token")]
    Unauthorized,
    /// The token belongs to another host.
    #[error("{0}")]
    Forbidden(String),
    /// The request is malformed; the problem names its field.
    #[error("invalid request")]
    Invalid(FieldProblem),
    #[error("the report is over {0} bytes")]
    TooLarge(usize),
    #[error("{0}")]
    NotFound(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl HostsError {
    pub(crate) fn invalid(field: impl Into<String>, problem: impl Into<String>) -> HostsError {
        HostsError::Invalid(FieldProblem {
            field: field.into(),
            problem: problem.into(),
        })
    }

    /// The reason's name in the rejected reports' counter.
    pub(crate) fn reason(&self) -> &'static str {
        match self {
            HostsError::Auth(_) | HostsError::Unauthorized => "token",
            HostsError::Forbidden(_) => "host",
            HostsError::Invalid(_) => "invalid",
            HostsError::TooLarge(_) => "too_large",
            HostsError::NotFound(_) => "not_found",
            HostsError::Store(_) => "store",
        }
    }
}

impl ResponseError for HostsError {
    fn status_code(&self) -> StatusCode {
        match self {
            HostsError::Auth(e) => e.status_code(),
            HostsError::Unauthorized => StatusCode::UNAUTHORIZED,
            HostsError::Forbidden(_) => StatusCode::FORBIDDEN,
            HostsError::Invalid(_) => StatusCode::BAD_REQUEST,
            HostsError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            HostsError::NotFound(_) => StatusCode::NOT_FOUND,
            HostsError::Store(e) if e.is_unavailable() => StatusCode::SERVICE_UNAVAILABLE,
            HostsError::Store(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let status = self.status_code();
        match self {
            HostsError::Auth(e) => e.error_response(),
            HostsError::Invalid(problem) => {
                json_error(status, "invalid request", std::slice::from_ref(problem))
            }
            HostsError::Store(_) if status == StatusCode::SERVICE_UNAVAILABLE => {
                unavailable("the store is unavailable; nothing was stored, try again")
            }
            HostsError::Store(e) => {
                tracing::error!(error = %e, "Hosts request failed.");
                json_error(status, "internal error; nothing was stored", &[])
            }
            _ => json_error(status, &self.to_string(), &[]),
        }
    }
}
