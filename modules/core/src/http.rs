//! The JSON error shape of every API answer, so that all modules speak the same way.
//!
//! Bodies name the problem and the field at fault; they never carry an internal cause (that goes
//! to the log).

use actix_web::HttpResponse;
use actix_web::http::StatusCode;
use serde::Serialize;

/// One problem with the request, tied to the field it concerns when there is one.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct FieldProblem {
    /// Where the field is: `severity`, `[3].occurred_at`, `body`.
    pub field: String,
    pub problem: String,
}

#[derive(Debug, Serialize)]
struct ErrorBody<'a> {
    error: &'a str,
    #[serde(skip_serializing_if = "<[FieldProblem]>::is_empty")]
    problems: &'a [FieldProblem],
}

/// A JSON error answer: `{"error": "...", "problems": [{"field", "problem"}]}`.
pub fn json_error(status: StatusCode, message: &str, problems: &[FieldProblem]) -> HttpResponse {
    HttpResponse::build(status).json(ErrorBody {
        error: message,
        problems,
    })
}

/// The answer when the store cannot be reached or the hub is saturated: 503 with a
/// `Retry-After`, the same from every module.
pub fn unavailable(message: &str) -> HttpResponse {
    let mut response = json_error(StatusCode::SERVICE_UNAVAILABLE, message, &[]);
    response.headers_mut().insert(
        actix_web::http::header::RETRY_AFTER,
        actix_web::http::header::HeaderValue::from_static("5"),
    );
    response
}
