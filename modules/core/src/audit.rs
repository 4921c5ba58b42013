//! The audit log: who did what, when, from where, with the state before and after.
//!
//! Append-only: the tables carry triggers that refuse `UPDATE` and `DELETE` on both backends, so
//! not even a defect in the hub can rewrite history. Entries are written in the transaction of
//! the action they describe: an action that rolls back leaves no entry, and no action commits
//! without its entry.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use sqlx::AssertSqlSafe;

use crate::role::Role;
use crate::store::{Marks, Store, StoreError, StoreTx, like_escape};
use crate::{on_pool, on_tx};

/// Who acted: a user, or the hub itself (`actor` = `None`, shown as "system").
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Actor {
    pub user_id: i64,
    pub login: String,
    pub role: Role,
}

/// One entry to append.
#[derive(Clone, Debug)]
pub struct Entry<'a> {
    pub actor: Option<&'a Actor>,
    /// The client address the action came from, when it came over the network.
    pub ip: Option<&'a str>,
    /// A dotted verb: `user.create`, `auth.login`, `alert.ack`.
    pub action: &'a str,
    pub target_kind: Option<&'a str>,
    pub target_id: Option<String>,
    /// A readable name of the target (a login, a menu code), kept as it was at the time.
    pub target_label: Option<String>,
    pub before: Option<Value>,
    pub after: Option<Value>,
}

impl<'a> Entry<'a> {
    pub fn new(actor: Option<&'a Actor>, ip: Option<&'a str>, action: &'a str) -> Entry<'a> {
        Entry {
            actor,
            ip,
            action,
            target_kind: None,
            target_id: None,
            target_label: None,
            before: None,
            after: None,
        }
    }

    pub fn target(mut self, kind: &'a str, id: impl ToString, label: impl Into<String>) -> Self {
        self.target_kind = Some(kind);
        self.target_id = Some(id.to_string());
        self.target_label = Some(label.into());
        self
    }

    pub fn change(mut self, before: Option<Value>, after: Option<Value>) -> Self {
        self.before = before;
        self.after = after;
        self
    }
}

/// Appends an entry inside the caller's transaction.
pub async fn record(tx: &mut StoreTx, entry: Entry<'_>) -> Result<(), StoreError> {
    let before = entry.before.as_ref().map(Value::to_string);
    let after = entry.after.as_ref().map(Value::to_string);
    on_tx!(tx, conn => sqlx::query(
        "INSERT INTO audit_log (at, actor_id, actor_login, actor_role, ip, action, target_kind,
                                target_id, target_label, before_state, after_state)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
    )
    .bind(crate::time::now())
    .bind(entry.actor.map(|a| a.user_id))
    .bind(entry.actor.map(|a| a.login.as_str()))
    .bind(entry.actor.map(|a| a.role.as_str()))
    .bind(entry.ip)
    .bind(entry.action)
    .bind(entry.target_kind)
    .bind(&entry.target_id)
    .bind(&entry.target_label)
    .bind(&before)
    .bind(&after)
    .execute(conn)
    .await
    .map(drop))?;
    Ok(())
}

/// Appends an entry in a transaction of its own (for events with no other write, like a failed
/// login).
pub async fn record_alone(store: &Store, entry: Entry<'_>) -> Result<(), StoreError> {
    let mut tx = store.begin().await?;
    record(&mut tx, entry).await?;
    tx.commit().await
}

/// One stored entry, as the administrator reads it.
#[derive(Clone, Debug, Serialize, sqlx::FromRow)]
pub struct Row {
    pub id: i64,
    pub at: DateTime<Utc>,
    pub actor_id: Option<i64>,
    pub actor_login: Option<String>,
    pub actor_role: Option<String>,
    pub ip: Option<String>,
    pub action: String,
    pub target_kind: Option<String>,
    pub target_id: Option<String>,
    pub target_label: Option<String>,
    pub before_state: Option<String>,
    pub after_state: Option<String>,
}

/// What the administrator searches by; every part is optional.
#[derive(Clone, Debug, Default)]
pub struct Filter {
    /// Matches the actor's login exactly.
    pub actor: Option<String>,
    /// Matches the action or its prefix (`user.` finds every user action).
    pub action: Option<String>,
    /// Free text in the target's label or id, the before and after states.
    pub text: Option<String>,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    /// Keyset pagination: entries older than this id.
    pub before_id: Option<i64>,
    pub limit: u32,
}

/// The newest entries matching the filter, newest first.
pub async fn search(store: &Store, filter: &Filter) -> Result<Vec<Row>, StoreError> {
    let mut marks = Marks::new(store.backend());
    let mut sql = String::from(
        "SELECT id, at, actor_id, actor_login, actor_role, ip, action, target_kind, target_id,
                target_label, before_state, after_state FROM audit_log WHERE 1 = 1",
    );
    if filter.actor.is_some() {
        sql.push_str(&format!(" AND actor_login = {}", marks.mark()));
    }
    if filter.action.is_some() {
        sql.push_str(&format!(" AND action LIKE {} ESCAPE '\\'", marks.mark()));
    }
    if filter.text.is_some() {
        let m = marks.mark();
        let m2 = marks.mark();
        let m3 = marks.mark();
        let m4 = marks.mark();
        sql.push_str(&format!(
            " AND (LOWER(COALESCE(target_label, '')) LIKE {m} ESCAPE '\\'
               OR LOWER(COALESCE(target_id, '')) LIKE {m2} ESCAPE '\\'
               OR LOWER(COALESCE(before_state, '')) LIKE {m3} ESCAPE '\\'
               OR LOWER(COALESCE(after_state, '')) LIKE {m4} ESCAPE '\\')"
        ));
    }
    if filter.from.is_some() {
        sql.push_str(&format!(" AND at >= {}", marks.mark()));
    }
    if filter.to.is_some() {
        sql.push_str(&format!(" AND at < {}", marks.mark()));
    }
    if filter.before_id.is_some() {
        sql.push_str(&format!(" AND id < {}", marks.mark()));
    }
    sql.push_str(&format!(" ORDER BY id DESC LIMIT {}", marks.mark()));
    let action = filter
        .action
        .as_deref()
        .map(|a| format!("{}%", like_escape(a)));
    let text = filter
        .text
        .as_deref()
        .map(|t| format!("%{}%", like_escape(&t.to_lowercase())));
    let limit = i64::from(filter.limit.clamp(1, 500));
    let rows = on_pool!(store, pool => {
        let mut q = sqlx::query_as::<_, Row>(AssertSqlSafe(sql));
        if let Some(actor) = &filter.actor {
            q = q.bind(actor);
        }
        if let Some(action) = &action {
            q = q.bind(action);
        }
        if let Some(text) = &text {
            q = q.bind(text).bind(text).bind(text).bind(text);
        }
        if let Some(from) = filter.from {
            q = q.bind(from);
        }
        if let Some(to) = filter.to {
            q = q.bind(to);
        }
        if let Some(id) = filter.before_id {
            q = q.bind(id);
        }
        q.bind(limit).fetch_all(pool).await
    })?;
    Ok(rows)
}
