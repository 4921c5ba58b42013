//! The administrator's view of the outbox: counts and lists by state, one message, and
//! retrying a dead-lettered message (audited).

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::json;
use vigie_core::audit::{self, Actor, Entry};
use vigie_core::store::Store;
use vigie_core::{on_pool, on_tx};

use crate::NotifyError;

/// The states an outbox row goes through.
pub const STATES: [&str; 4] = ["pending", "sending", "sent", "dead"];

/// One message as the administrator's list shows it.
#[derive(Clone, Debug, Serialize, sqlx::FromRow)]
pub struct Line {
    pub id: i64,
    pub created_at: DateTime<Utc>,
    pub channel: String,
    pub recipient: String,
    pub subject: String,
    pub kind: String,
    pub state: String,
    pub attempts: i32,
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub sent_at: Option<DateTime<Utc>>,
    pub dead_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    pub message_id: Option<String>,
}

/// The newest messages, in one state or all, before `before` (an id) for paging.
pub async fn list(
    store: &Store,
    state: Option<&str>,
    before: Option<i64>,
    limit: i64,
) -> Result<Vec<Line>, NotifyError> {
    if let Some(s) = state
        && !STATES.contains(&s)
    {
        return Err(NotifyError::invalid(
            "state",
            "pending, sending, sent or dead",
        ));
    }
    let rows = on_pool!(store, pool => sqlx::query_as::<_, Line>(
        "SELECT id, created_at, channel, recipient, subject, kind, state, attempts,
                next_attempt_at, sent_at, dead_at, last_error, message_id
         FROM outbox
         WHERE ($1 IS NULL OR state = $1) AND ($2 IS NULL OR id < $2)
         ORDER BY id DESC LIMIT $3",
    )
    .bind(state)
    .bind(before)
    .bind(limit.clamp(1, 500))
    .fetch_all(pool)
    .await)?;
    Ok(rows)
}

/// How many messages are in each state.
pub async fn counts(store: &Store) -> Result<Vec<(String, i64)>, NotifyError> {
    let rows = on_pool!(store, pool => sqlx::query_as::<_, (String, i64)>(
        "SELECT state, COUNT(*) FROM outbox GROUP BY state",
    )
    .fetch_all(pool)
    .await)?;
    Ok(STATES
        .iter()
        .map(|s| {
            let n = rows.iter().find(|(r, _)| r == s).map_or(0, |(_, n)| *n);
            ((*s).to_owned(), n)
        })
        .collect())
}

/// One message with its bodies.
#[derive(Clone, Debug, Serialize, sqlx::FromRow)]
pub struct Detail {
    #[sqlx(flatten)]
    #[serde(flatten)]
    pub line: Line,
    pub body_text: String,
    pub body_html: Option<String>,
    pub user_id: Option<i64>,
}

pub async fn get(store: &Store, id: i64) -> Result<Option<Detail>, NotifyError> {
    let row = on_pool!(store, pool => sqlx::query_as::<_, Detail>(
        "SELECT id, created_at, channel, recipient, subject, kind, state, attempts,
                next_attempt_at, sent_at, dead_at, last_error, message_id,
                body_text, body_html, user_id
         FROM outbox WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(pool)
    .await)?;
    Ok(row)
}

/// Puts a dead-lettered message back in the queue with a fresh count of attempts; audited.
/// Call [`crate::wake`] afterwards.
pub async fn retry(
    store: &Store,
    actor: &Actor,
    ip: Option<&str>,
    id: i64,
) -> Result<(), NotifyError> {
    let mut tx = store.begin().await?;
    let row = on_tx!(&mut tx, conn => sqlx::query_as::<_, (String, String, String, Option<String>)>(
        "UPDATE outbox SET state = 'pending', attempts = 0, next_attempt_at = NULL,
                           dead_at = NULL, lease_until = NULL, claimed_by = NULL
         WHERE id = $1 AND state = 'dead'
         RETURNING channel, recipient, kind, last_error",
    )
    .bind(id)
    .fetch_optional(conn)
    .await)?;
    let Some((channel, recipient, kind, last_error)) = row else {
        return Err(NotifyError::NotFound(format!(
            "no dead-lettered message {id}"
        )));
    };
    let mut entry = Entry::new(Some(actor), ip, "notify.retry");
    entry.target_kind = Some("outbox");
    entry.target_id = Some(id.to_string());
    entry.target_label = Some(format!("{channel} {recipient} ({kind})"));
    entry.before = Some(json!({ "state": "dead", "last_error": last_error }));
    entry.after = Some(json!({ "state": "pending" }));
    audit::record(&mut tx, entry).await?;
    tx.commit().await?;
    Ok(())
}
