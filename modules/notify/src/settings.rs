//! What the delivery worker needs to know: the SMTP relay, the SMS gateway, the webhooks and the
//! retry policy. The hub's configuration (`[smtp]`, `[sms]`, `[[webhooks]]`, `[notify]`) fills
//! it; a channel left unconfigured dead-letters its messages with a clear error.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

/// The delivery worker's settings.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct NotifySettings {
    pub smtp: Option<SmtpSettings>,
    pub sms: Option<SmsGateway>,
    pub webhooks: Vec<Webhook>,
    pub retry: RetryPolicy,
    pub worker: WorkerTuning,
}

/// `[smtp]`.
#[derive(Clone, PartialEq, Eq)]
pub struct SmtpSettings {
    /// `smtp://[user:pass@]host:port[?tls=starttls]` or `smtps://…` (implicit TLS).
    pub url: String,
    /// The `From:` address; its domain also names the Message-IDs.
    pub from: String,
}

impl std::fmt::Debug for SmtpSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpSettings")
            .field("url", &vigie_core::store::redact_url(&self.url))
            .field("from", &self.from)
            .finish()
    }
}

impl SmtpSettings {
    pub fn new(url: impl Into<String>, from: impl Into<String>) -> SmtpSettings {
        SmtpSettings {
            url: url.into(),
            from: from.into(),
        }
    }
}

impl NotifySettings {
    /// These settings with mail through `url`, from `from`.
    pub fn with_smtp(mut self, url: impl Into<String>, from: impl Into<String>) -> NotifySettings {
        self.smtp = Some(SmtpSettings::new(url, from));
        self
    }
}

/// `[sms]`: an HTTP gateway. `url` and `body` are Tera templates given `to` (the E.164 number)
/// and `text`; use the `urlencode` or `json_encode` filters as the gateway's format needs.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct SmsGateway {
    pub url: String,
    #[serde(default = "default_method")]
    pub method: String,
    /// Request headers (an `Authorization` header carries the gateway's credentials).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// The request body; none for a GET gateway.
    #[serde(default)]
    pub body: Option<String>,
    /// The body's `Content-Type` (default `application/json` when a body is set).
    #[serde(default)]
    pub content_type: Option<String>,
    /// A regular expression the answer's body must match (on top of a 2xx status) for the
    /// message to count as accepted.
    #[serde(default)]
    pub success_body: Option<String>,
    #[serde(default = "default_http_timeout")]
    pub timeout_secs: u64,
}

fn default_method() -> String {
    "POST".into()
}

fn default_http_timeout() -> u64 {
    10
}

/// The payload shape a webhook expects.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum WebhookKind {
    /// Slack incoming webhook: `{"text": …}`.
    Slack,
    /// Microsoft Teams workflow webhook: a message with an Adaptive Card.
    Teams,
    /// Discord webhook: `{"content": …}` (at most 2000 characters).
    Discord,
    /// Any JSON endpoint: the message's fields.
    Json,
}

/// `[[webhooks]]`: a named endpoint; messages name it as their recipient.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Webhook {
    pub name: String,
    pub kind: WebhookKind,
    pub url: String,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    #[serde(default = "default_http_timeout")]
    pub timeout_secs: u64,
}

/// `[notify]`: how failures are retried. Attempt n (from 1) that fails transiently waits
/// `min(base × 2^(n-1), max)` before the next; after `max_attempts` the message is dead.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    pub max_attempts: u32,
    pub base: Duration,
    pub max: Duration,
}

impl Default for RetryPolicy {
    fn default() -> RetryPolicy {
        RetryPolicy {
            max_attempts: 8,
            base: Duration::from_secs(5),
            max: Duration::from_secs(600),
        }
    }
}

impl RetryPolicy {
    /// The wait after the `attempt`-th failed attempt (1-based).
    pub fn delay(&self, attempt: u32) -> Duration {
        let shift = attempt.saturating_sub(1).min(30);
        self.base.saturating_mul(1u32 << shift).min(self.max)
    }
}

/// How the worker paces itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WorkerTuning {
    /// The longest wait between two looks at the outbox when nobody rings.
    pub poll_interval: Duration,
    /// Rows claimed at once.
    pub batch: u32,
    /// Messages being sent at once (all channels).
    pub parallel: usize,
    /// How long a claim holds; a row whose lease expired (its worker died) is claimed again.
    /// Longer than `send_timeout`, so that a live worker's claim never expires.
    pub lease: Duration,
    /// Connections kept open to the SMTP relay (and mails sent at once).
    pub smtp_connections: u32,
    /// How long one SMTP exchange may take before it counts as a transient failure.
    pub send_timeout: Duration,
}

impl Default for WorkerTuning {
    fn default() -> WorkerTuning {
        WorkerTuning {
            poll_interval: Duration::from_millis(500),
            batch: 200,
            parallel: 32,
            lease: Duration::from_secs(120),
            smtp_connections: 16,
            send_timeout: Duration::from_secs(20),
        }
    }
}

/// Checks an SMS gateway's templates and regular expression (the configuration loader calls it
/// so that a bad one is refused at start with its key).
pub fn check_sms(gateway: &SmsGateway) -> Result<(), (String, String)> {
    let ctx = tera_context("+33612345678", "test");
    for (key, text) in [("url", Some(&gateway.url)), ("body", gateway.body.as_ref())] {
        if let Some(text) = text {
            crate::templates::render_one(key, text, &ctx, false)
                .map_err(|e| (key.to_owned(), e.to_string()))?;
        }
    }
    if let Some(re) = &gateway.success_body {
        regex::Regex::new(re).map_err(|e| ("success_body".to_owned(), e.to_string()))?;
    }
    if !matches!(
        gateway.method.to_ascii_uppercase().as_str(),
        "GET" | "POST" | "PUT" | "PATCH"
    ) {
        return Err(("method".into(), "GET, POST, PUT or PATCH".into()));
    }
    Ok(())
}

pub(crate) fn tera_context(to: &str, text: &str) -> tera::Context {
    let mut ctx = tera::Context::new();
    ctx.insert("to", to);
    ctx.insert("text", text);
    ctx
}
