//! Notifications. For now the persistent outbox: modules write the messages they want sent in
//! the transaction of the action that causes them, so a message exists if and only if its cause
//! was committed. Delivery (SMTP, SMS, webhooks, retries) reads the same table (on-call issue).
//!
//! Owns the table `outbox`.

use chrono::{DateTime, Utc};
use serde::Serialize;
use vigie_core::store::{Store, StoreError, StoreTx};
use vigie_core::{on_pool, on_tx};

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
    let id = on_tx!(tx, conn => sqlx::query_scalar::<_, i64>(
        "INSERT INTO outbox (created_at, channel, recipient, subject, body_text, body_html, kind, user_id)
         VALUES ($1, 'mail', $2, $3, $4, $5, $6, $7) RETURNING id",
    )
    .bind(vigie_core::time::now())
    .bind(&mail.to)
    .bind(&mail.subject)
    .bind(&mail.text)
    .bind(&mail.html)
    .bind(mail.kind)
    .bind(mail.user_id)
    .fetch_one(conn)
    .await)?;
    Ok(id)
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
