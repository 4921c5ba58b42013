//! Signed single-use acknowledgement links. Each person told at an escalation step gets a link
//! (`/ack/{token}`) in their messages: the token (256 random bits) is the credential, so no
//! login is needed; only its digest is stored, it expires (`[oncall] link_ttl`) and it works
//! once. `GET` shows what will be acknowledged (a mail client or a link scanner fetching the
//! page acknowledges nothing); `POST` acknowledges the alert as the link's user, through the
//! alerts module (history and audit entry), and stops the escalation chain.

use actix_web::http::StatusCode;
use actix_web::http::header::ACCEPT_LANGUAGE;
use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{DateTime, Utc};
use serde::Serialize;
use tera::Context;
use vigie_alerts::actions::{self, Action};
use vigie_console::{Console, Lang, Renderer};
use vigie_core::audit::Actor;
use vigie_core::on_pool;
use vigie_core::store::{Store, StoreError};

use crate::OncallError;
use crate::escalation::{self, level_name};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/ack/{token}", web::get().to(show))
        .route("/ack/{token}", web::post().to(confirm))
        .route("/api/v1/oncall/sms-callback", web::post().to(sms_callback));
}

/// A code to answer an SMS with: 8 characters without look-alikes (40 bits), unique among the
/// links not used yet.
pub fn new_sms_code() -> Result<String, OncallError> {
    const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut bytes = [0u8; 8];
    vigie_core::secret::fill_random(&mut bytes).map_err(|e| {
        OncallError::Store(StoreError::Query(sqlx::Error::Protocol(format!(
            "cannot make an SMS code: {e}"
        ))))
    })?;
    // 256 is a multiple of 32: no bias.
    Ok(bytes
        .iter()
        .map(|b| char::from(ALPHABET[usize::from(*b) % ALPHABET.len()]))
        .collect())
}

/// A new link token.
pub fn new_token() -> Result<String, OncallError> {
    vigie_core::secret::new_token("vack").map_err(|e| {
        OncallError::Store(StoreError::Query(sqlx::Error::Protocol(format!(
            "cannot make an acknowledgement link: {e}"
        ))))
    })
}

/// A stored link.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct Link {
    pub id: i64,
    pub alert_id: i64,
    pub user_id: i64,
    pub expires_at: DateTime<Utc>,
    pub used_at: Option<DateTime<Utc>>,
}

/// What a token is worth.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LinkState {
    Valid(Link),
    Used,
    Expired,
    Unknown,
}

/// The state of a token at `now`, changing nothing.
pub async fn peek(
    store: &Store,
    token: &str,
    now: DateTime<Utc>,
) -> Result<LinkState, OncallError> {
    let link = on_pool!(store, pool => sqlx::query_as::<_, Link>(
        "SELECT id, alert_id, user_id, expires_at, used_at FROM oncall_ack_links WHERE digest = $1",
    )
    .bind(vigie_core::secret::token_digest(token))
    .fetch_optional(pool)
    .await)
    .map_err(StoreError::from)?;
    Ok(match link {
        None => LinkState::Unknown,
        Some(l) if l.used_at.is_some() => LinkState::Used,
        Some(l) if l.expires_at <= now => LinkState::Expired,
        Some(l) => LinkState::Valid(l),
    })
}

/// What using a link did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AckOutcome {
    /// The alert is acknowledged by the link's user.
    Acknowledged {
        alert_id: i64,
        login: String,
    },
    /// Someone acknowledged it first.
    Already {
        alert_id: i64,
        by: Option<String>,
    },
    /// The alert cannot be acknowledged any more (`cleared`, `archived`, `deleted`, or the
    /// link's user is disabled: `disabled`).
    Refused {
        alert_id: i64,
        reason: String,
    },
    Used,
    Expired,
    Unknown,
}

/// Uses a link: consumes it (once, before it expires), acknowledges the alert as its user and
/// stops the escalation chain.
pub async fn acknowledge(
    store: &Store,
    token: &str,
    ip: Option<&str>,
    now: DateTime<Utc>,
) -> Result<AckOutcome, OncallError> {
    let digest = vigie_core::secret::token_digest(token);
    let taken: Option<(i64, i64, i64)> = on_pool!(store, pool => sqlx::query_as(
        "UPDATE oncall_ack_links SET used_at = $1
         WHERE digest = $2 AND used_at IS NULL AND expires_at > $1
         RETURNING id, alert_id, user_id",
    )
    .bind(now)
    .bind(&digest)
    .fetch_optional(pool)
    .await)
    .map_err(StoreError::from)?;
    let Some((link_id, alert_id, user_id)) = taken else {
        return Ok(match peek(store, token, now).await? {
            LinkState::Used => AckOutcome::Used,
            LinkState::Expired => AckOutcome::Expired,
            // Valid only if it was given back between the two reads: say used, try again.
            LinkState::Valid(_) => AckOutcome::Used,
            LinkState::Unknown => AckOutcome::Unknown,
        });
    };
    ack_consumed(store, (link_id, alert_id, user_id), ip, "link", now).await
}

/// Acknowledges as the user of a link just consumed; gives the link back if that fails.
async fn ack_consumed(
    store: &Store,
    (link_id, alert_id, user_id): (i64, i64, i64),
    ip: Option<&str>,
    via: &str,
    now: DateTime<Utc>,
) -> Result<AckOutcome, OncallError> {
    match ack_as(store, alert_id, user_id, ip, via, now).await {
        Ok(outcome) => Ok(outcome),
        Err(e) => {
            // Nothing was acknowledged: the link works again.
            let _ = on_pool!(store, pool => sqlx::query(
                "UPDATE oncall_ack_links SET used_at = NULL WHERE id = $1",
            )
            .bind(link_id)
            .execute(pool)
            .await
            .map(drop));
            Err(e)
        }
    }
}

async fn ack_as(
    store: &Store,
    alert_id: i64,
    user_id: i64,
    ip: Option<&str>,
    via: &str,
    now: DateTime<Utc>,
) -> Result<AckOutcome, OncallError> {
    let user = vigie_auth::get_user(store, user_id).await?;
    let Some(user) = user.filter(|u| !u.disabled) else {
        return Ok(AckOutcome::Refused {
            alert_id,
            reason: "disabled".into(),
        });
    };
    let actor = Actor {
        user_id: user.id,
        login: user.login.clone(),
        role: user.role(),
    };
    let done = actions::apply(store, &actor, ip, &[alert_id], &Action::Acknowledge, None).await?;
    let refused = done.first().and_then(|d| d.refused);
    let outcome = match refused {
        None => AckOutcome::Acknowledged {
            alert_id,
            login: user.login.clone(),
        },
        Some("already_acknowledged") => AckOutcome::Already {
            alert_id,
            by: vigie_alerts::repo::get(store, alert_id)
                .await?
                .and_then(|a| a.acknowledged_by),
        },
        Some(reason) => {
            return Ok(AckOutcome::Refused {
                alert_id,
                reason: reason.to_owned(),
            });
        }
    };
    let mut tx = store.begin().await?;
    match &outcome {
        AckOutcome::Acknowledged { .. } => {
            escalation::mark_acknowledged(
                &mut tx,
                alert_id,
                Some(user.id),
                Some(&user.login),
                via,
                now,
            )
            .await?;
        }
        AckOutcome::Already { by, .. } => {
            escalation::mark_acknowledged(&mut tx, alert_id, None, by.as_deref(), "board", now)
                .await?;
        }
        _ => {}
    }
    tx.commit().await?;
    Ok(outcome)
}

/// Digits of a phone number, to compare two spellings of it (`+33 6 00…`, `0033600…` differ
/// in prefix: the last nine digits are compared).
fn same_phone(a: &str, b: &str) -> bool {
    let digits = |s: &str| s.chars().filter(char::is_ascii_digit).collect::<String>();
    let (a, b) = (digits(a), digits(b));
    let tail = |s: &str| {
        s.get(s.len().saturating_sub(9)..)
            .unwrap_or_default()
            .to_owned()
    };
    a.len() >= 6 && b.len() >= 6 && tail(&a) == tail(&b)
}

/// Answers an SMS reply "ACK code" from the phone number `from`: acknowledges as the link's
/// user when the code is live and the number is theirs (a code from another phone is refused
/// and stays usable).
pub async fn acknowledge_sms(
    store: &Store,
    from: &str,
    text: &str,
    now: DateTime<Utc>,
) -> Result<AckOutcome, OncallError> {
    let mut words = text.split_whitespace();
    let code = match (words.next(), words.next()) {
        (Some(w), Some(code)) if w.eq_ignore_ascii_case("ack") => code.to_ascii_uppercase(),
        _ => return Ok(AckOutcome::Unknown),
    };
    let link: Option<(i64, i64, i64, DateTime<Utc>)> = on_pool!(store, pool => sqlx::query_as(
        "SELECT id, alert_id, user_id, expires_at FROM oncall_ack_links
         WHERE sms_code = $1 AND used_at IS NULL",
    )
    .bind(&code)
    .fetch_optional(pool)
    .await)
    .map_err(StoreError::from)?;
    let Some((link_id, alert_id, user_id, expires_at)) = link else {
        return Ok(AckOutcome::Unknown);
    };
    if expires_at <= now {
        return Ok(AckOutcome::Expired);
    }
    let phone = vigie_auth::get_user(store, user_id)
        .await?
        .and_then(|u| u.phone)
        .unwrap_or_default();
    if !same_phone(&phone, from) {
        tracing::warn!(
            alert_id,
            "An SMS acknowledgement came from another number than the user's: refused."
        );
        return Ok(AckOutcome::Unknown);
    }
    let taken = on_pool!(store, pool => sqlx::query(
        "UPDATE oncall_ack_links SET used_at = $1 WHERE id = $2 AND used_at IS NULL",
    )
    .bind(now)
    .bind(link_id)
    .execute(pool)
    .await
    .map(|r| r.rows_affected()))
    .map_err(StoreError::from)?;
    if taken == 0 {
        return Ok(AckOutcome::Used);
    }
    ack_consumed(store, (link_id, alert_id, user_id), None, "sms", now).await
}

/// An SMS gateway's reply, as JSON or a form: the sender's number and the text.
#[derive(serde::Deserialize)]
struct SmsReply {
    from: Option<String>,
    text: Option<String>,
}

/// `POST /api/v1/oncall/sms-callback`: the gateway posts the replies to the on-call SMS
/// (`from`, `text` = "ACK code"), authenticated as a tool that pushes alerts (a bearer token
/// of an account with `alerts_ingest`). Answers `{"outcome": …}`.
async fn sms_callback(
    req: HttpRequest,
    caller: vigie_auth::Caller,
    body: web::Bytes,
    store: web::Data<Store>,
    feed: Option<web::Data<vigie_alerts::live::Feed>>,
) -> Result<HttpResponse, OncallError> {
    caller.require(vigie_core::role::Permission::AlertsIngest)?;
    let json = req
        .headers()
        .get(actix_web::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    let reply = if json {
        serde_json::from_slice::<SmsReply>(&body).map_err(|e| OncallError::Invalid {
            field: "body",
            problem: e.to_string(),
        })?
    } else {
        let form = vigie_console::FormData::parse(&body);
        SmsReply {
            from: form.get("from").map(str::to_owned),
            text: form.get("text").map(str::to_owned),
        }
    };
    let from = reply
        .from
        .filter(|f| !f.trim().is_empty())
        .ok_or(OncallError::Invalid {
            field: "from",
            problem: "the sender's phone number is required".into(),
        })?;
    let text = reply.text.ok_or(OncallError::Invalid {
        field: "text",
        problem: "the reply's text is required".into(),
    })?;
    let outcome = acknowledge_sms(&store, &from, &text, vigie_core::time::now()).await?;
    let name = match &outcome {
        AckOutcome::Acknowledged { alert_id, .. } => {
            if let Some(feed) = feed {
                feed.changed(vec![*alert_id]);
            }
            "acknowledged"
        }
        AckOutcome::Already { .. } => "already",
        AckOutcome::Refused { .. } => "refused",
        AckOutcome::Used => "used",
        AckOutcome::Expired => "expired",
        AckOutcome::Unknown => "unknown",
    };
    Ok(HttpResponse::Ok().json(serde_json::json!({ "outcome": name })))
}

/// What the pages show of the alert.
#[derive(Serialize)]
struct AlertView {
    id: i64,
    level: &'static str,
    severity: i32,
    domain: String,
    source: String,
    resource: String,
    message: String,
    state: String,
}

fn lang_of(req: &HttpRequest, user_lang: Option<&str>) -> Lang {
    let header = req
        .headers()
        .get(ACCEPT_LANGUAGE)
        .and_then(|v| v.to_str().ok());
    Lang::negotiate(user_lang, header, Renderer::default_lang())
}

fn page(console: &Console, status: StatusCode, lang: Lang, context: Context) -> HttpResponse {
    console
        .renderer
        .page(status, "oncall/routing_ack.html", lang, None, context)
}

fn internal(e: OncallError) -> vigie_console::PageError {
    match e {
        OncallError::Store(s) => s.into(),
        OncallError::Auth(a) => a.into(),
        other => vigie_console::PageError::Internal(other.to_string()),
    }
}

async fn alert_view(store: &Store, alert_id: i64) -> Result<Option<AlertView>, OncallError> {
    Ok(vigie_alerts::repo::get(store, alert_id)
        .await?
        .map(|a| AlertView {
            id: a.id,
            level: level_name(a.severity),
            severity: a.severity,
            domain: a.domain,
            source: a.source,
            resource: a.resource,
            message: a.message,
            state: a.state,
        }))
}

async fn show(
    req: HttpRequest,
    token: web::Path<String>,
    console: web::Data<Console>,
    store: web::Data<Store>,
) -> Result<HttpResponse, vigie_console::PageError> {
    let now = vigie_core::time::now();
    let state = peek(&store, &token, now).await.map_err(internal)?;
    let mut context = Context::new();
    let (status, outcome, lang) = match state {
        LinkState::Valid(link) => {
            let user = vigie_auth::get_user(&store, link.user_id).await?;
            let lang = lang_of(&req, user.as_ref().and_then(|u| u.lang.as_deref()));
            context.insert(
                "alert",
                &alert_view(&store, link.alert_id).await.map_err(internal)?,
            );
            context.insert("user_name", &user.map(|u| u.name()));
            context.insert("expires_at", &link.expires_at);
            context.insert("token", token.as_str());
            (StatusCode::OK, "confirm", lang)
        }
        LinkState::Used => (StatusCode::GONE, "used", lang_of(&req, None)),
        LinkState::Expired => (StatusCode::GONE, "expired", lang_of(&req, None)),
        LinkState::Unknown => (StatusCode::NOT_FOUND, "unknown", lang_of(&req, None)),
    };
    context.insert("outcome", outcome);
    Ok(page(&console, status, lang, context))
}

async fn confirm(
    req: HttpRequest,
    token: web::Path<String>,
    console: web::Data<Console>,
    store: web::Data<Store>,
) -> Result<HttpResponse, vigie_console::PageError> {
    let now = vigie_core::time::now();
    let ip = req.peer_addr().map(|a| a.ip().to_string());
    let result = acknowledge(&store, &token, ip.as_deref(), now)
        .await
        .map_err(internal)?;
    let mut context = Context::new();
    let (status, outcome, alert_id) = match &result {
        AckOutcome::Acknowledged { alert_id, login } => {
            context.insert("by", login);
            (StatusCode::OK, "acknowledged", Some(*alert_id))
        }
        AckOutcome::Already { alert_id, by } => {
            context.insert("by", by);
            (StatusCode::OK, "already", Some(*alert_id))
        }
        AckOutcome::Refused { alert_id, reason } => {
            context.insert("reason", reason);
            (StatusCode::CONFLICT, "refused", Some(*alert_id))
        }
        AckOutcome::Used => (StatusCode::GONE, "used", None),
        AckOutcome::Expired => (StatusCode::GONE, "expired", None),
        AckOutcome::Unknown => (StatusCode::NOT_FOUND, "unknown", None),
    };
    if let Some(id) = alert_id {
        context.insert("alert", &alert_view(&store, id).await.map_err(internal)?);
        if matches!(result, AckOutcome::Acknowledged { .. })
            && let Some(feed) = req.app_data::<web::Data<vigie_alerts::live::Feed>>()
        {
            feed.changed(vec![id]);
        }
    }
    context.insert("outcome", outcome);
    Ok(page(&console, status, lang_of(&req, None), context))
}
