//! What operators do to alerts: acknowledge, transfer, defer, archive, delete; the state machine
//! that allows or refuses each step, and their history.
//!
//! One transaction per request (a selection included): the alerts' new states, one history row
//! per alert, the audit entries, and for a transfer the recipients and their mails. A step the
//! state machine refuses changes nothing for that alert and is reported with its reason.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::AssertSqlSafe;
use vigie_core::audit::{Actor, Entry};
use vigie_core::store::{Store, StoreError, StoreTx};
use vigie_core::time::now;
use vigie_core::{on_pool, on_tx};
use vigie_notify::Mail;

use crate::model::{ALERT_COLUMNS, Alert};

/// An action on alerts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Taken in hand.
    Acknowledge,
    /// Sent to people (user ids); each gets a mail.
    Transfer(Vec<i64>),
    /// Put aside until then (reporter).
    Defer(DateTime<Utc>),
    Archive,
    /// Gone from every list for good (kept in the table for the history).
    Delete,
}

impl Action {
    pub fn name(&self) -> &'static str {
        match self {
            Action::Acknowledge => "ack",
            Action::Transfer(_) => "transfer",
            Action::Defer(_) => "defer",
            Action::Archive => "archive",
            Action::Delete => "delete",
        }
    }

    /// The state the action leads to.
    fn target(&self) -> &'static str {
        match self {
            Action::Acknowledge => "acknowledged",
            Action::Transfer(_) => "transferred",
            Action::Defer(_) => "deferred",
            Action::Archive => "archived",
            Action::Delete => "deleted",
        }
    }

    /// Whether the state machine allows the action from `state`; the reason when it does not.
    pub fn allowed_from(&self, state: &str) -> Result<(), &'static str> {
        let open = matches!(state, "new" | "transferred" | "acknowledged" | "deferred");
        match (self, state) {
            (_, "deleted") => Err("deleted"),
            (Action::Delete, _) => Ok(()),
            (_, "archived") => Err("archived"),
            (Action::Archive, _) => Ok(()),
            (_, "cleared") => Err("cleared"),
            (Action::Acknowledge, "acknowledged") => Err("already_acknowledged"),
            (Action::Defer(_), "deferred") => Ok(()),
            _ if open => Ok(()),
            _ => Err("state"),
        }
    }
}

/// What became of one alert of the request.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct Done {
    pub id: i64,
    /// `None` when it was applied; else why not (`not_found`, `cleared`, `archived`, `deleted`,
    /// `already_acknowledged`).
    pub refused: Option<&'static str>,
    pub state: Option<String>,
}

/// A person an alert is transferred to.
#[derive(Clone, Debug)]
pub struct Recipient {
    pub user_id: i64,
    pub login: String,
    pub email: String,
    /// Their language, for the mail.
    pub lang: Option<String>,
}

/// Who the transfer mails go to, and how they read (composed by the caller, who knows the
/// languages and the hub's address).
pub struct TransferMail<'a> {
    pub recipients: Vec<Recipient>,
    pub compose: &'a (dyn Fn(&Alert, &Recipient) -> Mail + Sync),
}

/// Applies an action to a selection of alerts in one transaction.
pub async fn apply(
    store: &Store,
    actor: &Actor,
    ip: Option<&str>,
    ids: &[i64],
    action: &Action,
    transfer: Option<&TransferMail<'_>>,
) -> Result<Vec<Done>, StoreError> {
    let mut tx = store.begin().await?;
    let mut done = Vec::with_capacity(ids.len());
    let at = now();
    for &id in ids {
        let sql = format!("SELECT {ALERT_COLUMNS} FROM alerts WHERE id = $1");
        let alert: Option<Alert> = on_tx!(&mut tx, conn => sqlx::query_as::<_, Alert>(AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(conn)
            .await)?;
        let Some(alert) = alert else {
            done.push(Done {
                id,
                refused: Some("not_found"),
                state: None,
            });
            continue;
        };
        if let Err(reason) = action.allowed_from(&alert.state) {
            done.push(Done {
                id,
                refused: Some(reason),
                state: Some(alert.state),
            });
            continue;
        }
        let to = action.target();
        change_state(&mut tx, &alert, action, to, actor, at).await?;
        let detail = match action {
            Action::Defer(until) => Some(serde_json::json!({ "until": until })),
            Action::Transfer(_) => transfer.map(|t| {
                serde_json::json!({ "to": t.recipients.iter().map(|r| &r.login).collect::<Vec<_>>() })
            }),
            _ => None,
        };
        if let (Action::Transfer(_), Some(t)) = (action, transfer) {
            for to in &t.recipients {
                on_tx!(&mut tx, conn => sqlx::query(
                    "INSERT INTO alert_recipients (alert_id, user_id, at) VALUES ($1, $2, $3)
                     ON CONFLICT (alert_id, user_id) DO UPDATE SET at = excluded.at",
                )
                .bind(id)
                .bind(to.user_id)
                .bind(at)
                .execute(conn)
                .await
                .map(drop))?;
                if !to.email.is_empty() {
                    vigie_notify::enqueue(&mut tx, &(t.compose)(&alert, to)).await?;
                }
            }
        }
        on_tx!(&mut tx, conn => sqlx::query(
            "INSERT INTO alert_actions (alert_id, at, actor_id, actor_login, action, from_state, to_state, detail)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(id)
        .bind(at)
        .bind(actor.user_id)
        .bind(&actor.login)
        .bind(action.name())
        .bind(&alert.state)
        .bind(to)
        .bind(detail.as_ref().map(|d| d.to_string()))
        .execute(conn)
        .await
        .map(drop))?;
        vigie_core::audit::record(
            &mut tx,
            Entry::new(Some(actor), ip, &format!("alert.{}", action.name()))
                .target(
                    "alert",
                    id,
                    format!(
                        "{} {}",
                        alert.resource,
                        alert.message.chars().take(80).collect::<String>()
                    ),
                )
                .change(
                    Some(serde_json::json!({ "state": alert.state })),
                    Some(match &detail {
                        Some(d) => serde_json::json!({ "state": to, "detail": d }),
                        None => serde_json::json!({ "state": to }),
                    }),
                ),
        )
        .await?;
        done.push(Done {
            id,
            refused: None,
            state: Some(to.to_owned()),
        });
    }
    tx.commit().await?;
    Ok(done)
}

async fn change_state(
    tx: &mut StoreTx,
    alert: &Alert,
    action: &Action,
    to: &str,
    actor: &Actor,
    at: DateTime<Utc>,
) -> Result<(), StoreError> {
    match action {
        Action::Defer(until) => {
            // A deferral of a deferred alert keeps the state it will come back to.
            let back_to = if alert.state == "deferred" {
                None
            } else {
                Some(alert.state.as_str())
            };
            on_tx!(tx, conn => sqlx::query(
                "UPDATE alerts SET state = $1, deferred_until = $2,
                        state_before_defer = COALESCE($3, state_before_defer), updated_at = $4 WHERE id = $5",
            )
            .bind(to)
            .bind(until)
            .bind(back_to)
            .bind(at)
            .bind(alert.id)
            .execute(conn)
            .await
            .map(drop))?;
        }
        Action::Acknowledge => {
            on_tx!(tx, conn => sqlx::query(
                "UPDATE alerts SET state = $1, acknowledged_at = $2, acknowledged_by = $3,
                        deferred_until = NULL, updated_at = $2 WHERE id = $4",
            )
            .bind(to)
            .bind(at)
            .bind(&actor.login)
            .bind(alert.id)
            .execute(conn)
            .await
            .map(drop))?;
        }
        _ => {
            on_tx!(tx, conn => sqlx::query(
                "UPDATE alerts SET state = $1, deferred_until = NULL, updated_at = $2 WHERE id = $3",
            )
            .bind(to)
            .bind(at)
            .bind(alert.id)
            .execute(conn)
            .await
            .map(drop))?;
        }
    }
    Ok(())
}

/// Links an alert to the incident opened from it, in the caller's (the incident's opening)
/// transaction; returns whether the alert exists.
pub async fn link_incident(
    tx: &mut StoreTx,
    alert_id: i64,
    incident_id: i64,
) -> Result<bool, StoreError> {
    let n = on_tx!(tx, conn => sqlx::query(
        "UPDATE alerts SET incident_id = $1, updated_at = $2 WHERE id = $3",
    )
    .bind(incident_id)
    .bind(now())
    .bind(alert_id)
    .execute(conn)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(n == 1)
}

/// Brings back the deferred alerts that are due; returns their ids (to publish).
pub async fn wake_deferred(store: &Store) -> Result<Vec<i64>, StoreError> {
    let at = now();
    let ids: Vec<i64> = on_pool!(store, pool => sqlx::query_scalar(
        "UPDATE alerts SET state = COALESCE(state_before_defer, 'new'), state_before_defer = NULL,
                deferred_until = NULL, updated_at = $1
         WHERE state = 'deferred' AND deferred_until <= $1 RETURNING id",
    )
    .bind(at)
    .fetch_all(pool)
    .await)?;
    Ok(ids)
}

/// How long archived and deleted alerts are kept.
#[derive(Clone, Copy, Debug)]
pub struct Retention {
    /// Archived alerts older than this (since they were archived) are purged.
    pub archived: std::time::Duration,
    /// Deleted alerts are kept this long (to look into a mistake through the API), then purged.
    pub deleted: std::time::Duration,
    /// Rows per purge statement: small, so ingestion never waits long behind a purge.
    pub batch: i64,
}

impl Default for Retention {
    fn default() -> Retention {
        Retention {
            archived: std::time::Duration::from_secs(180 * 86_400),
            deleted: std::time::Duration::from_secs(86_400),
            batch: 1000,
        }
    }
}

/// Purges archived and deleted alerts past their retention, in small batches (each its own
/// transaction), with their history and idempotency keys; returns how many alerts went.
pub async fn purge(store: &Store, retention: Retention) -> Result<u64, StoreError> {
    let now = now();
    let ago = |d: std::time::Duration| {
        now - chrono::Duration::from_std(d).unwrap_or(chrono::Duration::days(180))
    };
    let mut total = 0;
    for (state, cutoff) in [
        ("archived", ago(retention.archived)),
        ("deleted", ago(retention.deleted)),
    ] {
        loop {
            let n = on_pool!(store, pool => sqlx::query(
                "DELETE FROM alerts WHERE id IN (
                     SELECT id FROM alerts WHERE state = $1 AND updated_at < $2 ORDER BY updated_at LIMIT $3)",
            )
            .bind(state)
            .bind(cutoff)
            .bind(retention.batch)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))?;
            total += n;
            if n < retention.batch as u64 {
                break;
            }
            tokio::task::yield_now().await;
        }
    }
    // Idempotency keys older than the archive's retention can no longer meet their alert.
    on_pool!(store, pool => sqlx::query("DELETE FROM alert_refs WHERE received_at < $1")
        .bind(ago(retention.archived))
        .execute(pool)
        .await
        .map(drop))?;
    if total > 0 {
        metrics::counter!("vigie_alerts_purged_total").increment(total);
        tracing::info!(
            alerts = total,
            "Archived and deleted alerts past their retention purged."
        );
    }
    Ok(total)
}

/// Ends the flapping mark of alerts whose window passed without reopening; returns their ids.
pub async fn settle_flapping(
    store: &Store,
    window: std::time::Duration,
) -> Result<Vec<i64>, StoreError> {
    let at = now();
    let cutoff = at - chrono::Duration::from_std(window).unwrap_or(chrono::Duration::hours(1));
    Ok(on_pool!(store, pool => sqlx::query_scalar(
        "UPDATE alerts SET flapping = FALSE, flap_count = 0, updated_at = $1
         WHERE flapping AND flap_since < $2 RETURNING id",
    )
    .bind(at)
    .bind(cutoff)
    .fetch_all(pool)
    .await)?)
}

/// One line of an alert's history.
#[derive(Clone, Debug, Serialize, sqlx::FromRow)]
pub struct HistoryLine {
    pub at: DateTime<Utc>,
    pub actor_login: Option<String>,
    pub action: String,
    pub from_state: String,
    pub to_state: String,
    pub detail: Option<String>,
}

pub async fn history(store: &Store, alert_id: i64) -> Result<Vec<HistoryLine>, StoreError> {
    Ok(on_pool!(store, pool => sqlx::query_as::<_, HistoryLine>(
        "SELECT at, actor_login, action, from_state, to_state, detail FROM alert_actions
         WHERE alert_id = $1 ORDER BY id",
    )
    .bind(alert_id)
    .fetch_all(pool)
    .await)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_state_machine_allows_only_the_domain_steps() {
        let until = now();
        for state in ["new", "transferred", "deferred"] {
            assert_eq!(Action::Acknowledge.allowed_from(state), Ok(()), "{state}");
        }
        assert_eq!(
            Action::Acknowledge.allowed_from("acknowledged"),
            Err("already_acknowledged")
        );
        assert_eq!(
            Action::Transfer(vec![]).allowed_from("cleared"),
            Err("cleared")
        );
        assert_eq!(
            Action::Defer(until).allowed_from("archived"),
            Err("archived")
        );
        assert_eq!(Action::Archive.allowed_from("cleared"), Ok(()));
        assert_eq!(Action::Archive.allowed_from("archived"), Err("archived"));
        assert_eq!(Action::Delete.allowed_from("archived"), Ok(()));
        assert_eq!(Action::Delete.allowed_from("deleted"), Err("deleted"));
        assert_eq!(Action::Defer(until).allowed_from("deferred"), Ok(()));
    }
}
