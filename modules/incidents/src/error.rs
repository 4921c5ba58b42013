//! The incidents module's error, mapped once to HTTP (JSON for the API; the pages turn it into a
//! flash message or an error page).

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde_json::json;
use vigie_auth::AuthError;
use vigie_core::http::{FieldProblem, json_error, unavailable};
use vigie_core::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum IncidentsError {
    /// No or a bad bearer token, or a role without the permission.
    #[error(transparent)]
    Auth(#[from] AuthError),
    /// The caller's role (or relation to the incident) does not allow this step.
    #[error("{0}")]
    Forbidden(String),
    /// Bad input; the problem names its field.
    #[error("{}: {}", .0.field, .0.problem)]
    Invalid(FieldProblem),
    #[error("no incident {0}")]
    NotFound(i64),
    #[error("no attachment {0}")]
    AttachmentNotFound(i64),
    /// The state machine refuses the step in the incident's current state.
    #[error("cannot {step} an incident that is `{state}`{hint}")]
    Conflict {
        step: &'static str,
        state: String,
        hint: &'static str,
    },
    #[error("the file is over {0} bytes")]
    TooLarge(usize),
    /// The sniffed type is not on the allow-list.
    #[error("this kind of file is refused: {0}")]
    Refused(String),
    #[error("attachment storage failed: {0}")]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for IncidentsError {
    fn from(e: sqlx::Error) -> IncidentsError {
        IncidentsError::Store(StoreError::from(e))
    }
}

impl IncidentsError {
    pub(crate) fn invalid(field: impl Into<String>, problem: impl Into<String>) -> IncidentsError {
        IncidentsError::Invalid(FieldProblem {
            field: field.into(),
            problem: problem.into(),
        })
    }
}

impl ResponseError for IncidentsError {
    fn status_code(&self) -> StatusCode {
        match self {
            IncidentsError::Auth(e) => e.status_code(),
            IncidentsError::Forbidden(_) => StatusCode::FORBIDDEN,
            IncidentsError::Invalid(_) => StatusCode::BAD_REQUEST,
            IncidentsError::NotFound(_) | IncidentsError::AttachmentNotFound(_) => {
                StatusCode::NOT_FOUND
            }
            IncidentsError::Conflict { .. } => StatusCode::CONFLICT,
            IncidentsError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            IncidentsError::Refused(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            IncidentsError::Store(e) if e.is_unavailable() => StatusCode::SERVICE_UNAVAILABLE,
            IncidentsError::Store(_) | IncidentsError::Io(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let status = self.status_code();
        match self {
            IncidentsError::Auth(e) => e.error_response(),
            IncidentsError::Invalid(problem) => {
                json_error(status, "invalid request", std::slice::from_ref(problem))
            }
            IncidentsError::Conflict { step, state, .. } => HttpResponse::build(status)
                .json(json!({"error": self.to_string(), "state": state, "step": step})),
            IncidentsError::Store(_) if status == StatusCode::SERVICE_UNAVAILABLE => {
                unavailable("the store is unavailable; nothing was changed, try again")
            }
            IncidentsError::Store(_) | IncidentsError::Io(_) => {
                tracing::error!(error = %self, "Incidents request failed.");
                json_error(status, "internal error; nothing was changed", &[])
            }
            _ => json_error(status, &self.to_string(), &[]),
        }
    }
}
