//! The auth module's error, mapped once to HTTP.

use actix_web::http::StatusCode;
use actix_web::http::header::{HeaderValue, WWW_AUTHENTICATE};
use actix_web::{HttpResponse, ResponseError};
use vigie_core::http::{FieldProblem, json_error, unavailable};
use vigie_core::role::Permission;
use vigie_core::store::StoreError;

/// A problem with one field of a form: the field's name and the locale key (`problems.*`) of the
/// explanation, so the console shows it in the user's language next to the field.
pub type Problem = (&'static str, &'static str);

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("invalid form: {}", .0.iter().map(|(f, k)| format!("{f}: {k}")).collect::<Vec<_>>().join(", "))]
    Form(Vec<Problem>),
    #[error("this link is invalid, used or expired")]
    LinkInvalid,
    #[error("not found")]
    NotFound,
    #[error("missing bearer token: send `Authorization: Bearer TOKEN`")]
    MissingToken,
    #[error("invalid or revoked token")]
    InvalidToken,
    #[error("your role does not allow this action")]
    Forbidden(Permission),
    #[error("{field}: {problem}")]
    Invalid {
        field: &'static str,
        problem: String,
    },
    #[error("the login `{0}` is already taken")]
    LoginTaken(String),
    #[error("no user with login `{0}`")]
    UnknownLogin(String),
    #[error("the user `{0}` is disabled")]
    Disabled(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Secret(#[from] vigie_core::secret::SecretError),
}

impl ResponseError for AuthError {
    fn status_code(&self) -> StatusCode {
        match self {
            AuthError::MissingToken | AuthError::InvalidToken => StatusCode::UNAUTHORIZED,
            AuthError::Forbidden(_) => StatusCode::FORBIDDEN,
            AuthError::Invalid { .. }
            | AuthError::UnknownLogin(_)
            | AuthError::Disabled(_)
            | AuthError::Form(_)
            | AuthError::LinkInvalid => StatusCode::BAD_REQUEST,
            AuthError::NotFound => StatusCode::NOT_FOUND,
            AuthError::LoginTaken(_) => StatusCode::CONFLICT,
            AuthError::Store(e) if e.is_unavailable() => StatusCode::SERVICE_UNAVAILABLE,
            AuthError::Store(_) | AuthError::Secret(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let status = self.status_code();
        let message = match status {
            StatusCode::SERVICE_UNAVAILABLE => {
                return unavailable("the store is unavailable, try again later");
            }
            StatusCode::INTERNAL_SERVER_ERROR => {
                tracing::error!(error = %self, "Authentication failed internally.");
                "internal error".to_owned()
            }
            _ => self.to_string(),
        };
        let problems: Vec<FieldProblem> = match self {
            AuthError::Form(list) => list
                .iter()
                .map(|(field, key)| FieldProblem {
                    field: (*field).to_owned(),
                    problem: (*key).to_owned(),
                })
                .collect(),
            _ => Vec::new(),
        };
        let mut response = json_error(status, &message, &problems);
        if status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}
