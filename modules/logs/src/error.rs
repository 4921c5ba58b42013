//! The logs module's error for its JSON answers (API, live tail, export), mapped once to HTTP.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use vigie_auth::AuthError;
use vigie_core::http::{FieldProblem, json_error, unavailable};
use vigie_core::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum LogsError {
    #[error(transparent)]
    Auth(#[from] AuthError),
    /// The query is malformed; each problem names its parameter.
    #[error("invalid request")]
    Invalid(Vec<FieldProblem>),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("internal error: {0}")]
    Internal(String),
}

impl ResponseError for LogsError {
    fn status_code(&self) -> StatusCode {
        match self {
            LogsError::Auth(e) => e.status_code(),
            LogsError::Invalid(_) => StatusCode::BAD_REQUEST,
            LogsError::Store(e) if e.is_unavailable() => StatusCode::SERVICE_UNAVAILABLE,
            LogsError::Store(_) | LogsError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let status = self.status_code();
        match self {
            LogsError::Auth(e) => e.error_response(),
            LogsError::Invalid(problems) => json_error(status, "invalid request", problems),
            _ if status == StatusCode::SERVICE_UNAVAILABLE => {
                unavailable("the store is unavailable; try again")
            }
            _ => {
                tracing::error!(error = %self, "Syslog request failed.");
                json_error(status, "internal error", &[])
            }
        }
    }
}
