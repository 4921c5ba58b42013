//! The notify module's one error type. The console pages (crate `vigie-notify-pages`) map it to
//! a page; the worker only logs it.

use vigie_core::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    /// Bad input; names the field.
    #[error("{field}: {problem}")]
    Invalid { field: String, problem: String },
    /// A template that does not parse or render; `line` is 1-based when known.
    #[error("{field}: {}{message}", line.map(|l| format!("line {l}: ")).unwrap_or_default())]
    Template {
        field: String,
        line: Option<usize>,
        message: String,
    },
    /// No template (built-in or stored) for this kind and channel.
    #[error("no template for kind `{kind}` on channel `{channel}`")]
    NoTemplate { kind: String, channel: String },
    #[error("{0}")]
    NotFound(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl NotifyError {
    pub(crate) fn invalid(field: impl Into<String>, problem: impl Into<String>) -> NotifyError {
        NotifyError::Invalid {
            field: field.into(),
            problem: problem.into(),
        }
    }
}

impl From<sqlx::Error> for NotifyError {
    fn from(e: sqlx::Error) -> NotifyError {
        NotifyError::Store(e.into())
    }
}
