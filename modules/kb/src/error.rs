//! The knowledge base's error, mapped once to HTTP (JSON for the API; pages map it to the
//! console's [`PageError`] with [`KbError::into_page`]).

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use vigie_auth::AuthError;
use vigie_console::{Lang, PageError};
use vigie_core::http::{FieldProblem, json_error, unavailable};
use vigie_core::store::StoreError;

/// What is wrong with one field: the field, the locale key of the explanation (`kb.problems.*`,
/// shown next to the field) and the same in English for the API.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Problem {
    pub field: &'static str,
    pub key: &'static str,
    pub message: &'static str,
}

#[derive(Debug, thiserror::Error)]
pub enum KbError {
    #[error(transparent)]
    Auth(#[from] AuthError),
    #[error("invalid request: {}", .0.iter().map(|p| format!("{}: {}", p.field, p.message)).collect::<Vec<_>>().join(", "))]
    Invalid(Vec<Problem>),
    #[error("no such article")]
    NotFound,
    #[error("only the article's author or an operator may change it")]
    Forbidden,
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl KbError {
    pub(crate) fn invalid(
        field: &'static str,
        key: &'static str,
        message: &'static str,
    ) -> KbError {
        KbError::Invalid(vec![Problem {
            field,
            key,
            message,
        }])
    }

    /// The console's answer to this error.
    pub fn into_page(self, lang: Lang) -> PageError {
        match self {
            KbError::Auth(e) => e.into(),
            KbError::Invalid(_) => PageError::BadRequest(lang, "kb.problems.invalid"),
            KbError::NotFound => PageError::NotFound(lang),
            KbError::Forbidden => PageError::Forbidden(lang),
            KbError::Store(e) => e.into(),
        }
    }
}

impl ResponseError for KbError {
    fn status_code(&self) -> StatusCode {
        match self {
            KbError::Auth(e) => e.status_code(),
            KbError::Invalid(_) => StatusCode::BAD_REQUEST,
            KbError::NotFound => StatusCode::NOT_FOUND,
            KbError::Forbidden => StatusCode::FORBIDDEN,
            KbError::Store(e) if e.is_unavailable() => StatusCode::SERVICE_UNAVAILABLE,
            KbError::Store(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let status = self.status_code();
        match self {
            KbError::Auth(e) => e.error_response(),
            KbError::Invalid(problems) => {
                let problems: Vec<FieldProblem> = problems
                    .iter()
                    .map(|p| FieldProblem {
                        field: p.field.to_owned(),
                        problem: p.message.to_owned(),
                    })
                    .collect();
                json_error(status, "invalid request", &problems)
            }
            KbError::Store(_) if status == StatusCode::SERVICE_UNAVAILABLE => {
                unavailable("the store is unavailable; nothing was stored, try again")
            }
            KbError::Store(e) => {
                tracing::error!(error = %e, "Knowledge base request failed.");
                json_error(status, "internal error; nothing was stored", &[])
            }
            _ => json_error(status, &self.to_string(), &[]),
        }
    }
}
