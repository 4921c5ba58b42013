//! The alerts module's error, mapped once to HTTP.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use vigie_auth::AuthError;
use vigie_core::http::{FieldProblem, json_error, unavailable};
use vigie_core::store::StoreError;
use vigie_source::IngestError;

use crate::rules::RuleProblem;

#[derive(Debug, thiserror::Error)]
pub enum AlertsError {
    #[error(transparent)]
    Auth(#[from] AuthError),
    /// The request is malformed; each problem names its field.
    #[error("invalid request")]
    Invalid(Vec<FieldProblem>),
    #[error("{0}")]
    TooLarge(String),
    #[error("send the alerts as JSON (Content-Type: application/json)")]
    UnsupportedMediaType,
    #[error("no alert with id {0}")]
    NotFound(i64),
    #[error("the rules file has problems; the rules in force are unchanged")]
    RulesInvalid(Vec<RuleProblem>),
    #[error(transparent)]
    Ingest(IngestError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl ResponseError for AlertsError {
    fn status_code(&self) -> StatusCode {
        match self {
            AlertsError::Auth(e) => e.status_code(),
            AlertsError::Invalid(_) | AlertsError::RulesInvalid(_) => StatusCode::BAD_REQUEST,
            AlertsError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            AlertsError::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            AlertsError::NotFound(_) => StatusCode::NOT_FOUND,
            AlertsError::Ingest(IngestError::Invalid(_)) => StatusCode::BAD_REQUEST,
            AlertsError::Ingest(IngestError::Unavailable(_) | IngestError::Overloaded) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            AlertsError::Ingest(IngestError::Failed(_)) => StatusCode::INTERNAL_SERVER_ERROR,
            AlertsError::Store(e) if e.is_unavailable() => StatusCode::SERVICE_UNAVAILABLE,
            AlertsError::Store(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let status = self.status_code();
        match self {
            AlertsError::Auth(e) => e.error_response(),
            AlertsError::Invalid(problems) => json_error(status, "invalid request", problems),
            AlertsError::RulesInvalid(problems) => {
                let problems: Vec<FieldProblem> = problems
                    .iter()
                    .map(|p| FieldProblem {
                        field: p.path.clone(),
                        problem: p.problem.clone(),
                    })
                    .collect();
                json_error(status, &self.to_string(), &problems)
            }
            AlertsError::Ingest(IngestError::Invalid(records)) => {
                // Records are named by their position in the batch, as the caller sent them.
                let problems: Vec<FieldProblem> = records
                    .iter()
                    .map(|r| FieldProblem {
                        field: format!("[{}].{}", r.index, r.field),
                        problem: r.problem.clone(),
                    })
                    .collect();
                json_error(status, "invalid alert(s): nothing was stored", &problems)
            }
            _ if status == StatusCode::SERVICE_UNAVAILABLE => {
                unavailable("the store is unavailable or saturated; nothing was stored, try again")
            }
            _ if status == StatusCode::INTERNAL_SERVER_ERROR => {
                tracing::error!(error = %self, "Alert request failed.");
                json_error(status, "internal error; nothing was stored", &[])
            }
            _ => json_error(status, &self.to_string(), &[]),
        }
    }
}
