//! Notifications: the persistent outbox and its delivery.
//!
//! Modules write the messages they want sent in the transaction of the action that causes them
//! ([`enqueue`], [`enqueue_message`]), so a message exists if and only if its cause was committed;
//! after the commit they call [`wake`] so the worker ([`worker::spawn_worker`]) sends at once.
//! The worker claims due rows with a lease, sends them (SMTP, SMS gateway, webhooks), marks them
//! sent, retries with exponential back-off and dead-letters after the last try. Message texts come
//! from [`render`]: the administrator's templates, else the built-in defaults. See docs/notify.md.
//!
//! Owns the tables `outbox` and `notify_templates`.

pub mod admin;
mod channels;
mod error;
pub mod file_config;
pub mod settings;
pub mod templates;
pub mod worker;

use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio::sync::Notify;
use vigie_core::store::{Store, StoreError, StoreTx};
use vigie_core::{on_pool, on_tx};

pub use channels::is_e164;
pub use error::NotifyError;
pub use settings::NotifySettings;
pub use templates::{Rendered, render};
pub use worker::spawn_worker;

/// The ways a message leaves the hub.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Channel {
    Mail,
    Sms,
    Webhook,
}

impl Channel {
    pub const ALL: [Channel; 3] = [Channel::Mail, Channel::Sms, Channel::Webhook];

    /// The name stored in `outbox.channel`.
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Mail => "mail",
            Channel::Sms => "sms",
            Channel::Webhook => "webhook",
        }
    }

    pub fn parse(name: &str) -> Option<Channel> {
        Channel::ALL.into_iter().find(|c| c.as_str() == name)
    }
}

/// A message to send on any channel.
#[derive(Clone, Debug)]
pub struct Message {
    pub channel: Channel,
    /// A mail address, a phone number (E.164), or the name of a configured webhook.
    pub recipient: String,
    pub subject: String,
    pub text: String,
    pub html: Option<String>,
    /// What it is about (`alert.routed`, `alert.escalated`, `incident.opened`, …).
    pub kind: String,
    pub user_id: Option<i64>,
    /// When set, unique: enqueuing the same key twice queues the message once.
    pub dedupe_key: Option<String>,
}

/// A mail to send.
#[derive(Clone, Debug)]
pub struct Mail {
    pub to: String,
    pub subject: String,
    pub text: String,
    pub html: Option<String>,
    /// What the message is about (`user.activation`, `user.changed`), for the administrator's
    /// view and for templates.
    pub kind: &'static str,
    /// The user it is for, when it is for a user.
    pub user_id: Option<i64>,
}

/// Queues a mail in the caller's transaction; returns its id.
pub async fn enqueue(tx: &mut StoreTx, mail: &Mail) -> Result<i64, StoreError> {
    enqueue_message(
        tx,
        &Message {
            channel: Channel::Mail,
            recipient: mail.to.clone(),
            subject: mail.subject.clone(),
            text: mail.text.clone(),
            html: mail.html.clone(),
            kind: mail.kind.to_owned(),
            user_id: mail.user_id,
            dedupe_key: None,
        },
    )
    .await
}

/// Queues a message in the caller's transaction; returns its id, or the id of the message
/// already queued with the same `dedupe_key`. Call [`wake`] after the commit.
pub async fn enqueue_message(tx: &mut StoreTx, message: &Message) -> Result<i64, StoreError> {
    // Insert first (on SQLite a transaction that reads before it writes may fail to take the
    // write lock); a key already queued, even by a concurrent transaction, keeps its one row and
    // the read below finds it.
    let id = on_tx!(tx, conn => sqlx::query_scalar::<_, i64>(
        "INSERT INTO outbox (created_at, channel, recipient, subject, body_text, body_html, kind,
                             user_id, dedupe_key)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
         ON CONFLICT (dedupe_key) DO NOTHING RETURNING id",
    )
    .bind(vigie_core::time::now())
    .bind(message.channel.as_str())
    .bind(&message.recipient)
    .bind(&message.subject)
    .bind(&message.text)
    .bind(&message.html)
    .bind(&message.kind)
    .bind(message.user_id)
    .bind(&message.dedupe_key)
    .fetch_optional(&mut *conn)
    .await)?;
    match id {
        Some(id) => Ok(id),
        None => Ok(on_tx!(tx, conn => sqlx::query_scalar::<_, i64>(
            "SELECT id FROM outbox WHERE dedupe_key = $1",
        )
        .bind(&message.dedupe_key)
        .fetch_one(conn)
        .await)?),
    }
}

/// Whether `address` is a mail address the SMTP channel accepts (for forms that save one).
pub fn is_mail_address(address: &str) -> bool {
    address.parse::<lettre::Address>().is_ok()
}

/// The worker's doorbell: enqueuers ring it after their commit so delivery starts at once
/// instead of at the next poll.
static DOORBELL: Notify = Notify::const_new();

/// Tells the delivery worker that messages were committed to the outbox.
pub fn wake() {
    // Wakes every worker waiting now, and leaves a permit for one that is busy.
    DOORBELL.notify_waiters();
    DOORBELL.notify_one();
}

pub(crate) fn doorbell() -> &'static Notify {
    &DOORBELL
}

/// One queued message as stored.
#[derive(Clone, Debug, Serialize, sqlx::FromRow)]
pub struct Queued {
    pub id: i64,
    pub created_at: DateTime<Utc>,
    pub channel: String,
    pub recipient: String,
    pub subject: String,
    pub body_text: String,
    pub kind: String,
    pub user_id: Option<i64>,
    pub state: String,
}

/// The newest messages for a recipient, newest first.
pub async fn for_recipient(
    store: &Store,
    recipient: &str,
    limit: i64,
) -> Result<Vec<Queued>, StoreError> {
    let rows = on_pool!(store, pool => sqlx::query_as::<_, Queued>(
        "SELECT id, created_at, channel, recipient, subject, body_text, kind, user_id, state
         FROM outbox WHERE recipient = $1 ORDER BY id DESC LIMIT $2",
    )
    .bind(recipient)
    .bind(limit)
    .fetch_all(pool)
    .await)?;
    Ok(rows)
}
