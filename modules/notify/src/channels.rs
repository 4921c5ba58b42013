//! The channels: mail over SMTP (lettre, pooled), the SMS gateway and the webhooks (reqwest).
//! Each send ends in [`Sent`] or a [`Failure`] that says whether trying again can help:
//! SMTP 5xx and HTTP 4xx (but 408 and 429) are permanent; 4xx SMTP replies, HTTP 5xx, time-outs
//! and connection failures are transient.

use std::time::Duration;

use std::sync::Mutex;
use std::time::Instant;

use lettre::message::{Mailbox, MultiPart, SinglePart, header::ContentType};
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{AsyncSmtpConnection, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use serde_json::json;

use crate::settings::{SmsGateway, SmtpSettings, Webhook, WebhookKind, tera_context};
use crate::templates::render_one;

/// Why a send failed, and whether to try again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Failure {
    pub(crate) permanent: bool,
    pub(crate) error: String,
}

impl Failure {
    pub(crate) fn permanent(error: impl Into<String>) -> Failure {
        Failure {
            permanent: true,
            error: error.into(),
        }
    }

    pub(crate) fn transient(error: impl Into<String>) -> Failure {
        Failure {
            permanent: false,
            error: error.into(),
        }
    }
}

/// The mail relay, its pool of connections and the sender.
///
/// The connections are lettre's SMTP connections, pooled here rather than by lettre's transport
/// so that their sockets get `TCP_NODELAY`: lettre writes a message's body and its final dot
/// separately, and with Nagle's algorithm the dot waits for the relay's delayed ACK (some 40 ms
/// per mail). Implicit TLS (`smtps://`) connections are opened by lettre itself.
pub(crate) struct Mailer {
    url: SmtpUrl,
    credentials: Option<Credentials>,
    hello: ClientId,
    timeout: Duration,
    idle: Mutex<Vec<(AsyncSmtpConnection, Instant)>>,
    max_idle: usize,
    from: Mailbox,
    /// The right-hand side of the Message-IDs.
    pub(crate) id_host: String,
}

/// A pooled connection unused for longer is checked with NOOP first; one unused for longer
/// than `IDLE_MAX` is closed.
const IDLE_CHECK: Duration = Duration::from_secs(10);
const IDLE_MAX: Duration = Duration::from_secs(60);

/// How the URL asks for TLS.
#[derive(Debug, PartialEq, Eq)]
enum TlsMode {
    None,
    StartTls,
    Opportunistic,
    Implicit,
}

/// The parts of an `smtp://` / `smtps://` URL.
#[derive(Debug, PartialEq, Eq)]
struct SmtpUrl {
    host: String,
    port: u16,
    user: Option<String>,
    password: Option<String>,
    tls: TlsMode,
}

fn parse_smtp_url(url: &str) -> Result<SmtpUrl, String> {
    let parsed = reqwest::Url::parse(url).map_err(|e| format!("smtp.url: {e}"))?;
    let implicit = match parsed.scheme() {
        "smtp" => false,
        "smtps" => true,
        other => return Err(format!("smtp.url: unsupported scheme `{other}`")),
    };
    let host = parsed
        .host_str()
        .filter(|h| !h.is_empty())
        .ok_or("smtp.url: no host")?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    let mut tls = if implicit {
        TlsMode::Implicit
    } else {
        TlsMode::None
    };
    for (key, value) in parsed.query_pairs() {
        if key == "tls" {
            tls = match (implicit, value.as_ref()) {
                (true, _) => TlsMode::Implicit,
                (false, "starttls" | "required") => TlsMode::StartTls,
                (false, "opportunistic") => TlsMode::Opportunistic,
                (false, "none" | "off") => TlsMode::None,
                (false, other) => {
                    return Err(format!(
                        "smtp.url: tls=`{other}`: expected starttls, opportunistic or none"
                    ));
                }
            };
        }
    }
    let default_port = match tls {
        TlsMode::Implicit => 465,
        TlsMode::StartTls => 587,
        _ => 25,
    };
    let user = Some(percent_decode(parsed.username())).filter(|u| !u.is_empty());
    let password = parsed.password().map(percent_decode);
    Ok(SmtpUrl {
        host,
        port: parsed.port().unwrap_or(default_port),
        user,
        password,
        tls,
    })
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let Some(b) = std::str::from_utf8(&bytes[i + 1..i + 3])
                .ok()
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(b);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

impl Mailer {
    pub(crate) fn new(
        settings: &SmtpSettings,
        connections: u32,
        timeout: Duration,
    ) -> Result<Mailer, String> {
        let url = parse_smtp_url(&settings.url)?;
        let from: Mailbox = settings
            .from
            .parse()
            .map_err(|e| format!("smtp.from: {e}"))?;
        if url.tls != TlsMode::None {
            TlsParameters::new(url.host.clone()).map_err(|e| format!("smtp.url: TLS: {e}"))?;
        }
        let credentials = url
            .user
            .clone()
            .map(|u| Credentials::new(u, url.password.clone().unwrap_or_default()));
        let id_host = from.email.domain().to_owned();
        Ok(Mailer {
            url,
            credentials,
            hello: ClientId::default(),
            timeout,
            idle: Mutex::new(Vec::new()),
            max_idle: connections.max(1) as usize,
            from,
            id_host,
        })
    }

    fn tls(&self) -> Result<TlsParameters, Failure> {
        TlsParameters::new(self.url.host.clone()).map_err(|e| smtp_failure(&e))
    }

    /// Opens a connection: TCP (no Nagle), EHLO, STARTTLS when asked, AUTH when configured.
    async fn connect(&self) -> Result<AsyncSmtpConnection, Failure> {
        let address = (self.url.host.as_str(), self.url.port);
        let mut conn = if self.url.tls == TlsMode::Implicit {
            AsyncSmtpConnection::connect_tokio1(
                address,
                Some(self.timeout),
                &self.hello,
                Some(self.tls()?),
                None,
            )
            .await
            .map_err(|e| smtp_failure(&e))?
        } else {
            let tcp = tokio::time::timeout(self.timeout, tokio::net::TcpStream::connect(address))
                .await
                .map_err(|_| {
                    std::io::Error::new(std::io::ErrorKind::TimedOut, "connection timed out")
                })
                .and_then(|r| r)
                .map_err(|e| Failure::transient(format!("SMTP: cannot connect: {e}")))?;
            let _ = tcp.set_nodelay(true);
            let mut conn = AsyncSmtpConnection::connect_with_transport(Box::new(tcp), &self.hello)
                .await
                .map_err(|e| smtp_failure(&e))?;
            let starttls = match self.url.tls {
                TlsMode::StartTls => true,
                TlsMode::Opportunistic => conn.can_starttls(),
                _ => false,
            };
            if starttls {
                conn.starttls(self.tls()?, &self.hello)
                    .await
                    .map_err(|e| smtp_failure(&e))?;
            }
            conn
        };
        if let Some(credentials) = &self.credentials {
            conn.auth(&[Mechanism::Plain, Mechanism::Login], credentials)
                .await
                .map_err(|e| smtp_failure(&e))?;
        }
        Ok(conn)
    }

    /// A pooled connection still alive, else a new one.
    async fn checkout(&self) -> Result<AsyncSmtpConnection, Failure> {
        loop {
            let taken = self.idle.lock().map(|mut idle| idle.pop()).ok().flatten();
            let Some((mut conn, since)) = taken else {
                return self.connect().await;
            };
            let idle_for = since.elapsed();
            if idle_for > IDLE_MAX {
                conn.abort().await;
                continue;
            }
            if idle_for > IDLE_CHECK && !conn.test_connected().await {
                continue;
            }
            return Ok(conn);
        }
    }

    fn checkin(&self, conn: AsyncSmtpConnection) {
        if conn.has_broken() {
            return;
        }
        if let Ok(mut idle) = self.idle.lock()
            && idle.len() < self.max_idle
        {
            idle.push((conn, Instant::now()));
        }
    }

    /// Sends one mail with the given Message-ID (text, plus HTML as an alternative).
    pub(crate) async fn send(
        &self,
        to: &str,
        subject: &str,
        text: &str,
        html: Option<&str>,
        message_id: &str,
    ) -> Result<(), Failure> {
        let to: Mailbox = to
            .parse()
            .map_err(|e| Failure::permanent(format!("invalid recipient address `{to}`: {e}")))?;
        let builder = lettre::Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(subject)
            .message_id(Some(message_id.to_owned()))
            .date_now();
        let message = match html {
            Some(html) => builder.multipart(MultiPart::alternative_plain_html(
                text.to_owned(),
                html.to_owned(),
            )),
            None => builder.singlepart(
                SinglePart::builder()
                    .header(ContentType::TEXT_PLAIN)
                    .body(text.to_owned()),
            ),
        }
        .map_err(|e| Failure::permanent(format!("cannot build the mail: {e}")))?;
        let exchange = async {
            let mut conn = self.checkout().await?;
            let sent = conn.send(message.envelope(), &message.formatted()).await;
            if sent.is_ok() {
                self.checkin(conn);
            }
            sent.map(drop).map_err(|e| smtp_failure(&e))
        };
        match tokio::time::timeout(self.timeout, exchange).await {
            Ok(result) => result,
            Err(_) => Err(Failure::transient(format!(
                "SMTP: no answer within {:?}",
                self.timeout
            ))),
        }
    }
}

/// A 5xx reply is permanent; anything else (4xx, network, TLS, time-out) may pass later.
fn smtp_failure(e: &lettre::transport::smtp::Error) -> Failure {
    if e.is_permanent() {
        Failure::permanent(format!("SMTP: {e}"))
    } else {
        Failure::transient(format!("SMTP: {e}"))
    }
}

/// Classifies an HTTP answer: 2xx is success (then `success_body` must match, when given),
/// 408/429/5xx are transient, other codes permanent.
fn classify(status: reqwest::StatusCode, body: &str, what: &str) -> Result<(), Failure> {
    let excerpt: String = body.chars().take(200).collect();
    if status.is_success() {
        return Ok(());
    }
    let error = format!("{what}: HTTP {status}: {excerpt}");
    if status.is_server_error()
        || status == reqwest::StatusCode::REQUEST_TIMEOUT
        || status == reqwest::StatusCode::TOO_MANY_REQUESTS
    {
        Err(Failure::transient(error))
    } else {
        Err(Failure::permanent(error))
    }
}

fn request_failure(what: &str, e: &reqwest::Error) -> Failure {
    // Connection refused, time-out, reset: the peer may come back.
    let mut message = format!("{what}: {e}");
    let mut cause = std::error::Error::source(e);
    while let Some(c) = cause {
        message.push_str(": ");
        message.push_str(&c.to_string());
        cause = c.source();
    }
    if e.is_builder() {
        Failure::permanent(message)
    } else {
        Failure::transient(message)
    }
}

/// Sends one SMS through the configured gateway.
pub(crate) async fn send_sms(
    http: &reqwest::Client,
    gateway: &SmsGateway,
    to: &str,
    text: &str,
) -> Result<(), Failure> {
    if !is_e164(to) {
        return Err(Failure::permanent(format!(
            "invalid phone number `{to}`: expected E.164 (+ and 8 to 15 digits)"
        )));
    }
    let ctx = tera_context(to, text);
    let url = render_one("sms.url", &gateway.url, &ctx, false)
        .map_err(|e| Failure::permanent(e.to_string()))?;
    let method = reqwest::Method::from_bytes(gateway.method.to_ascii_uppercase().as_bytes())
        .map_err(|e| Failure::permanent(format!("sms.method: {e}")))?;
    let mut request = http
        .request(method, url.trim())
        .timeout(Duration::from_secs(gateway.timeout_secs.max(1)));
    for (name, value) in &gateway.headers {
        request = request.header(name, value);
    }
    if let Some(body) = &gateway.body {
        let body = render_one("sms.body", body, &ctx, false)
            .map_err(|e| Failure::permanent(e.to_string()))?;
        let content_type = gateway
            .content_type
            .clone()
            .unwrap_or_else(|| "application/json".into());
        request = request
            .header(reqwest::header::CONTENT_TYPE, content_type)
            .body(body);
    }
    let response = request
        .send()
        .await
        .map_err(|e| request_failure("SMS gateway", &e))?;
    let status = response.status();
    let body = response
        .text()
        .await
        .map_err(|e| request_failure("SMS gateway", &e))?;
    classify(status, &body, "SMS gateway")?;
    if let Some(pattern) = &gateway.success_body {
        let re = regex::Regex::new(pattern)
            .map_err(|e| Failure::permanent(format!("sms.success_body: {e}")))?;
        if !re.is_match(&body) {
            let excerpt: String = body.chars().take(200).collect();
            return Err(Failure::permanent(format!(
                "SMS gateway: HTTP {status} but the answer does not match success_body: {excerpt}"
            )));
        }
    }
    Ok(())
}

/// `+` then 8 to 15 digits, the first not 0.
pub fn is_e164(number: &str) -> bool {
    let Some(digits) = number.strip_prefix('+') else {
        return false;
    };
    (8..=15).contains(&digits.len())
        && digits.bytes().all(|b| b.is_ascii_digit())
        && !digits.starts_with('0')
}

/// What a webhook message carries.
pub(crate) struct Hook<'a> {
    pub(crate) id: i64,
    pub(crate) kind: &'a str,
    pub(crate) subject: &'a str,
    pub(crate) text: &'a str,
    pub(crate) message_id: &'a str,
    pub(crate) created_at: chrono::DateTime<chrono::Utc>,
}

/// The JSON body each webhook kind expects.
pub(crate) fn webhook_payload(kind: WebhookKind, hook: &Hook<'_>) -> serde_json::Value {
    let line = if hook.subject.is_empty() {
        hook.text.to_owned()
    } else {
        format!("{}\n{}", hook.subject, hook.text)
    };
    match kind {
        WebhookKind::Slack => json!({ "text": line }),
        WebhookKind::Discord => {
            json!({ "content": line.chars().take(2000).collect::<String>() })
        }
        WebhookKind::Teams => json!({
            "type": "message",
            "attachments": [{
                "contentType": "application/vnd.microsoft.card.adaptive",
                "contentUrl": null,
                "content": {
                    "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                    "type": "AdaptiveCard",
                    "version": "1.4",
                    "body": [
                        { "type": "TextBlock", "text": hook.subject, "weight": "Bolder",
                          "size": "Medium", "wrap": true },
                        { "type": "TextBlock", "text": hook.text, "wrap": true },
                    ],
                },
            }],
        }),
        WebhookKind::Json => json!({
            "id": hook.id,
            "message_id": hook.message_id,
            "kind": hook.kind,
            "subject": hook.subject,
            "text": hook.text,
            "created_at": hook.created_at,
        }),
    }
}

/// Posts one message to a webhook.
pub(crate) async fn send_webhook(
    http: &reqwest::Client,
    webhook: &Webhook,
    hook: &Hook<'_>,
) -> Result<(), Failure> {
    let mut request = http
        .post(&webhook.url)
        .timeout(Duration::from_secs(webhook.timeout_secs.max(1)))
        .json(&webhook_payload(webhook.kind, hook));
    for (name, value) in &webhook.headers {
        request = request.header(name, value);
    }
    let what = format!("webhook {}", webhook.name);
    let response = request
        .send()
        .await
        .map_err(|e| request_failure(&what, &e))?;
    let status = response.status();
    let body = response
        .text()
        .await
        .map_err(|e| request_failure(&what, &e))?;
    classify(status, &body, &what)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn smtp_urls() {
        let u = parse_smtp_url("smtp://127.0.0.1:2525").unwrap();
        assert_eq!((u.port, u.tls, u.user), (2525, TlsMode::None, None));
        let u = parse_smtp_url("smtp://me%40x.org:p%3Ass@mail.example.org?tls=starttls").unwrap();
        assert_eq!(u.port, 587);
        assert_eq!(u.tls, TlsMode::StartTls);
        assert_eq!(u.user.as_deref(), Some("me@x.org"));
        assert_eq!(u.password.as_deref(), Some("p:ss"));
        let u = parse_smtp_url("smtps://mail.example.org").unwrap();
        assert_eq!((u.port, u.tls), (465, TlsMode::Implicit));
        assert!(parse_smtp_url("http://x").is_err());
        assert!(parse_smtp_url("smtp://x?tls=maybe").is_err());
    }

    #[test]
    fn phone_numbers() {
        assert!(is_e164("+33612345678"));
        assert!(!is_e164("0612345678"));
        assert!(!is_e164("+33 6 12"));
        assert!(!is_e164("+0123456789"));
    }
}
