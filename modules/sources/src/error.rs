//! The sources module's error, mapped once to HTTP.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use vigie_auth::AuthError;
use vigie_core::http::{FieldProblem, json_error, unavailable};
use vigie_core::store::StoreError;
use vigie_poll::SourceError;

#[derive(Debug, thiserror::Error)]
pub enum SourcesError {
    #[error(transparent)]
    Auth(#[from] AuthError),
    /// The request is malformed; each problem names its field.
    #[error("invalid request")]
    Invalid(Vec<FieldProblem>),
    #[error("{0}")]
    NotFound(String),
    /// The source cannot answer now (disabled, misconfigured).
    #[error("{0}")]
    Unavailable(String),
    /// The source answered with an error (or not in time).
    #[error(transparent)]
    Source(SourceError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl ResponseError for SourcesError {
    fn status_code(&self) -> StatusCode {
        match self {
            SourcesError::Auth(e) => e.status_code(),
            SourcesError::Invalid(_) => StatusCode::BAD_REQUEST,
            SourcesError::NotFound(_) => StatusCode::NOT_FOUND,
            SourcesError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            SourcesError::Source(SourceError::Unsupported(_)) => StatusCode::UNPROCESSABLE_ENTITY,
            SourcesError::Source(SourceError::Timeout(_)) => StatusCode::GATEWAY_TIMEOUT,
            SourcesError::Source(_) => StatusCode::BAD_GATEWAY,
            SourcesError::Store(e) if e.is_unavailable() => StatusCode::SERVICE_UNAVAILABLE,
            SourcesError::Store(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let status = self.status_code();
        match self {
            SourcesError::Auth(e) => e.error_response(),
            SourcesError::Invalid(problems) => json_error(status, "invalid request", problems),
            // The source's own message names what failed (never a password).
            SourcesError::Source(e) => json_error(status, &e.to_string(), &[]),
            SourcesError::Store(_) if status == StatusCode::SERVICE_UNAVAILABLE => {
                unavailable("the store is unavailable; nothing was stored, try again")
            }
            SourcesError::Store(e) => {
                tracing::error!(error = %e, "Sources request failed.");
                json_error(status, "internal error; nothing was stored", &[])
            }
            _ => json_error(status, &self.to_string(), &[]),
        }
    }
}
