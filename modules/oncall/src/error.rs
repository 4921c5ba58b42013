//! The on-call module's error, mapped once to HTTP.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use vigie_core::http::{FieldProblem, json_error, unavailable};
use vigie_core::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum OncallError {
    /// A form or request field is wrong: the field and the locale key of the explanation.
    #[error("{field}: {problem}")]
    Invalid {
        field: &'static str,
        problem: String,
    },
    #[error("not found")]
    NotFound,
    #[error(transparent)]
    Auth(#[from] vigie_auth::AuthError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl ResponseError for OncallError {
    fn status_code(&self) -> StatusCode {
        match self {
            OncallError::Invalid { .. } => StatusCode::BAD_REQUEST,
            OncallError::NotFound => StatusCode::NOT_FOUND,
            OncallError::Auth(e) => e.status_code(),
            OncallError::Store(e) if e.is_unavailable() => StatusCode::SERVICE_UNAVAILABLE,
            OncallError::Store(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let status = self.status_code();
        match self {
            OncallError::Auth(e) => e.error_response(),
            OncallError::Invalid { field, problem } => json_error(
                status,
                "invalid request",
                &[FieldProblem {
                    field: (*field).to_owned(),
                    problem: problem.clone(),
                }],
            ),
            OncallError::Store(_) if status == StatusCode::SERVICE_UNAVAILABLE => {
                unavailable("the store is unavailable; nothing was changed, try again")
            }
            OncallError::Store(e) => {
                tracing::error!(error = %e, "On-call request failed.");
                json_error(status, "internal error; nothing was changed", &[])
            }
            OncallError::NotFound => json_error(status, "not found", &[]),
        }
    }
}
