//! Browser sessions and the steps of a login.
//!
//! The cookie holds a random id; the store keeps only its digest, the per-session CSRF token, the
//! times that decide expiry (idle and absolute), the client, and a pending flash message. A login
//! always makes a new session (no fixation). Between the password and the session, a login may
//! wait on a *challenge*: the second factor, or the answer to "you already have an open session".

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use vigie_core::audit::{Actor, Entry};
use vigie_core::role::Role;
use vigie_core::secret::{new_token, token_digest};
use vigie_core::store::{Store, StoreError, StoreTx};
use vigie_core::time::now;
use vigie_core::{on_pool, on_tx};

use crate::error::AuthError;

/// How long sessions live.
#[derive(Clone, Copy, Debug)]
pub struct SessionPolicy {
    /// Without a request for this long, the session ends.
    pub idle: Duration,
    /// However active, the session ends this long after the login.
    pub lifetime: Duration,
}

impl Default for SessionPolicy {
    fn default() -> SessionPolicy {
        SessionPolicy {
            idle: Duration::from_secs(30 * 60),
            lifetime: Duration::from_secs(12 * 3600),
        }
    }
}

fn chrono(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::hours(12))
}

/// Last-seen times are written at most this often, so that page views are not all writes.
const TOUCH_EVERY: chrono::Duration = chrono::Duration::seconds(60);

/// A flash message: a locale key and its kind (`success`, `error`, `info`), with an optional
/// argument shown after the message (a login, a count).
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Flash {
    pub kind: String,
    pub key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arg: Option<String>,
}

/// The logged-in user behind a session cookie.
#[derive(Clone, Debug, Serialize, sqlx::FromRow)]
pub struct SessionUser {
    pub session_id: i64,
    pub user_id: i64,
    pub login: String,
    pub role: String,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub lang: Option<String>,
    pub timezone: Option<String>,
    pub csrf: String,
    pub must_change_password: bool,
    pub totp_enabled: bool,
    #[serde(skip)]
    pub flash: Option<String>,
    #[serde(skip)]
    pub last_seen_at: DateTime<Utc>,
    #[serde(skip)]
    pub expires_at: DateTime<Utc>,
    #[serde(skip)]
    pub created_at: DateTime<Utc>,
}

impl SessionUser {
    pub fn role(&self) -> Role {
        self.role.parse().unwrap_or(Role::User)
    }

    pub fn actor(&self) -> Actor {
        Actor {
            user_id: self.user_id,
            login: self.login.clone(),
            role: self.role(),
        }
    }

    pub fn name(&self) -> String {
        match (&self.first_name, &self.last_name) {
            (Some(f), Some(l)) => format!("{f} {l}"),
            (Some(n), None) | (None, Some(n)) => n.clone(),
            (None, None) => self.login.clone(),
        }
    }
}

/// Why there is no session for a cookie.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NoSession {
    /// No such session (never was, or ended by logout or by another login).
    Unknown,
    /// It ended because it was idle too long or reached its lifetime.
    Expired,
    /// It ended because the same user logged in elsewhere and chose to continue there.
    Replaced,
}

/// The live session of a cookie; ends it if it has just expired.
pub async fn lookup(
    store: &Store,
    token: &str,
    policy: SessionPolicy,
) -> Result<Result<SessionUser, NoSession>, AuthError> {
    let digest = token_digest(token);
    let row: Option<(SessionUser, Option<String>)> = on_pool!(store, pool => sqlx::query_as::<_, SessionRow>(
        "SELECT s.id AS session_id, s.user_id, u.login, u.role, u.first_name, u.last_name, u.lang, u.timezone,
                s.csrf, u.must_change_password, u.totp_enabled, s.flash, s.last_seen_at, s.expires_at,
                s.created_at, s.end_reason, u.disabled
         FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.digest = $1",
    )
    .bind(&digest)
    .fetch_optional(pool)
    .await)
    .map_err(StoreError::from)?
    .and_then(SessionRow::split);
    let Some((user, end_reason)) = row else {
        return Ok(Err(NoSession::Unknown));
    };
    if let Some(reason) = end_reason {
        return Ok(Err(match reason.as_str() {
            "idle" | "expired" => NoSession::Expired,
            "replaced" => NoSession::Replaced,
            _ => NoSession::Unknown,
        }));
    }
    let now = now();
    let expired = if now >= user.expires_at {
        Some("expired")
    } else if now - user.last_seen_at >= chrono(policy.idle) {
        Some("idle")
    } else {
        None
    };
    if let Some(reason) = expired {
        end_by_id(store, user.session_id, reason).await?;
        return Ok(Err(NoSession::Expired));
    }
    if now - user.last_seen_at >= TOUCH_EVERY {
        on_pool!(store, pool => sqlx::query("UPDATE sessions SET last_seen_at = $1 WHERE id = $2")
            .bind(now)
            .bind(user.session_id)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))
        .map_err(StoreError::from)?;
    }
    Ok(Ok(user))
}

#[derive(sqlx::FromRow)]
struct SessionRow {
    #[sqlx(flatten)]
    user: SessionUser,
    end_reason: Option<String>,
    disabled: bool,
}

impl SessionRow {
    fn split(self) -> Option<(SessionUser, Option<String>)> {
        // A disabled user's sessions were ended with the change; this is the belt to those braces.
        if self.disabled {
            return None;
        }
        Some((self.user, self.end_reason))
    }
}

/// Whether the user has a session that is still live (somewhere else).
pub async fn has_open_session(
    store: &Store,
    user_id: i64,
    policy: SessionPolicy,
) -> Result<bool, AuthError> {
    let now = now();
    let idle_since = now - chrono(policy.idle);
    let n: i64 = on_pool!(store, pool => sqlx::query_scalar(
        "SELECT COUNT(*) FROM sessions
         WHERE user_id = $1 AND ended_at IS NULL AND expires_at > $2 AND last_seen_at > $3",
    )
    .bind(user_id)
    .bind(now)
    .bind(idle_since)
    .fetch_one(pool)
    .await)
    .map_err(StoreError::from)?;
    Ok(n > 0)
}

/// A new session after a complete login. `replace` ends the user's other sessions (the user
/// chose to continue here). Records the login in the audit log, in the same transaction.
pub async fn open(
    store: &Store,
    user: &Actor,
    ip: Option<&str>,
    user_agent: Option<&str>,
    policy: SessionPolicy,
    replace: bool,
) -> Result<String, AuthError> {
    let token = new_token("vgs")?;
    let csrf = new_token("csrf")?;
    let now = now();
    let mut tx = store.begin().await?;
    let replaced = if replace {
        end_all_tx(&mut tx, user.user_id, "replaced").await?
    } else {
        0
    };
    let session_id: i64 = on_tx!(&mut tx, conn => sqlx::query_scalar(
        "INSERT INTO sessions (digest, user_id, csrf, created_at, last_seen_at, expires_at, ip, user_agent)
         VALUES ($1, $2, $3, $4, $4, $5, $6, $7) RETURNING id",
    )
    .bind(token_digest(&token))
    .bind(user.user_id)
    .bind(&csrf)
    .bind(now)
    .bind(now + chrono(policy.lifetime))
    .bind(ip)
    .bind(user_agent.map(|ua| ua.chars().take(300).collect::<String>()))
    .fetch_one(conn)
    .await)
    .map_err(StoreError::from)?;
    on_tx!(&mut tx, conn => sqlx::query(
        "UPDATE users SET last_login_at = $1, failed_logins = 0, lock_count = 0, locked_until = NULL WHERE id = $2",
    )
    .bind(now)
    .bind(user.user_id)
    .execute(conn)
    .await
    .map(|r| r.rows_affected()))
    .map_err(StoreError::from)?;
    vigie_core::audit::record(
        &mut tx,
        Entry::new(Some(user), ip, "auth.login")
            .target("user", user.user_id, &user.login)
            .change(
                None,
                Some(serde_json::json!({"session": session_id, "ended_other_sessions": replaced})),
            ),
    )
    .await?;
    tx.commit().await?;
    Ok(token)
}

/// Ends every open session of a user in the caller's transaction; returns how many.
pub(crate) async fn end_all_tx(
    tx: &mut StoreTx,
    user_id: i64,
    reason: &str,
) -> Result<u64, StoreError> {
    Ok(on_tx!(tx, conn => sqlx::query(
        "UPDATE sessions SET ended_at = $1, end_reason = $2 WHERE user_id = $3 AND ended_at IS NULL",
    )
    .bind(now())
    .bind(reason)
    .bind(user_id)
    .execute(conn)
    .await
    .map(|r| r.rows_affected()))?)
}

async fn end_by_id(store: &Store, id: i64, reason: &str) -> Result<(), StoreError> {
    on_pool!(store, pool => sqlx::query(
        "UPDATE sessions SET ended_at = $1, end_reason = $2 WHERE id = $3 AND ended_at IS NULL",
    )
    .bind(now())
    .bind(reason)
    .bind(id)
    .execute(pool)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(())
}

/// Logs out: ends the session and records it.
pub async fn logout(store: &Store, user: &SessionUser, ip: Option<&str>) -> Result<(), AuthError> {
    let mut tx = store.begin().await?;
    on_tx!(&mut tx, conn => sqlx::query(
        "UPDATE sessions SET ended_at = $1, end_reason = 'logout' WHERE id = $2 AND ended_at IS NULL",
    )
    .bind(now())
    .bind(user.session_id)
    .execute(conn)
    .await
    .map(|r| r.rows_affected()))
    .map_err(StoreError::from)?;
    let actor = user.actor();
    vigie_core::audit::record(
        &mut tx,
        Entry::new(Some(&actor), ip, "auth.logout").target("user", user.user_id, &user.login),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Leaves a message for the next page of this session.
pub async fn set_flash(store: &Store, session_id: i64, flash: &Flash) -> Result<(), AuthError> {
    let text = serde_json::to_string(flash).unwrap_or_default();
    on_pool!(store, pool => sqlx::query("UPDATE sessions SET flash = $1 WHERE id = $2")
        .bind(text)
        .bind(session_id)
        .execute(pool)
        .await
        .map(|r| r.rows_affected()))
    .map_err(StoreError::from)?;
    Ok(())
}

/// Takes the pending message of a session, if any (shown once).
pub async fn take_flash(store: &Store, user: &SessionUser) -> Result<Option<Flash>, AuthError> {
    let Some(text) = &user.flash else {
        return Ok(None);
    };
    on_pool!(store, pool => sqlx::query("UPDATE sessions SET flash = NULL WHERE id = $1")
        .bind(user.session_id)
        .execute(pool)
        .await
        .map(|r| r.rows_affected()))
    .map_err(StoreError::from)?;
    Ok(serde_json::from_str(text).ok())
}

/// A login waiting on its next step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    /// The password was right; the second factor is asked.
    Totp,
    /// Password (and second factor) right; the user has another open session and is asked
    /// whether to continue here.
    Confirm,
}

impl Stage {
    fn as_str(self) -> &'static str {
        match self {
            Stage::Totp => "totp",
            Stage::Confirm => "confirm",
        }
    }
}

/// A challenge lives this long; past it the login starts over.
const CHALLENGE_TTL: chrono::Duration = chrono::Duration::minutes(5);
/// Wrong second-factor codes allowed on one challenge before the login starts over.
pub const CHALLENGE_ATTEMPTS: i32 = 5;

/// Starts (or advances) a login challenge; returns the token for the pending-login cookie.
pub async fn challenge(
    store: &Store,
    user_id: i64,
    stage: Stage,
    ip: Option<&str>,
) -> Result<String, AuthError> {
    let token = new_token("vgc")?;
    let now = now();
    on_pool!(store, pool => sqlx::query(
        "INSERT INTO login_challenges (digest, user_id, stage, created_at, expires_at, ip)
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(token_digest(&token))
    .bind(user_id)
    .bind(stage.as_str())
    .bind(now)
    .bind(now + CHALLENGE_TTL)
    .bind(ip)
    .execute(pool)
    .await
    .map(|r| r.rows_affected()))
    .map_err(StoreError::from)?;
    Ok(token)
}

/// The user and stage of a live challenge.
pub async fn challenge_get(
    store: &Store,
    token: &str,
) -> Result<Option<(i64, Stage, i32)>, AuthError> {
    let row: Option<(i64, String, i32)> = on_pool!(store, pool => sqlx::query_as(
        "SELECT user_id, stage, attempts FROM login_challenges WHERE digest = $1 AND expires_at > $2",
    )
    .bind(token_digest(token))
    .bind(now())
    .fetch_optional(pool)
    .await)
    .map_err(StoreError::from)?;
    Ok(row.map(|(user_id, stage, attempts)| {
        let stage = if stage == "totp" {
            Stage::Totp
        } else {
            Stage::Confirm
        };
        (user_id, stage, attempts)
    }))
}

/// Counts a failed attempt on a challenge; returns the attempts so far.
pub async fn challenge_failed(store: &Store, token: &str) -> Result<i32, AuthError> {
    let n: Option<i32> = on_pool!(store, pool => sqlx::query_scalar(
        "UPDATE login_challenges SET attempts = attempts + 1 WHERE digest = $1 RETURNING attempts",
    )
    .bind(token_digest(token))
    .fetch_optional(pool)
    .await)
    .map_err(StoreError::from)?;
    Ok(n.unwrap_or(CHALLENGE_ATTEMPTS))
}

/// Ends a challenge (done, cancelled or failed), and clears stale ones.
pub async fn challenge_drop(store: &Store, token: &str) -> Result<(), AuthError> {
    on_pool!(store, pool => sqlx::query("DELETE FROM login_challenges WHERE digest = $1 OR expires_at < $2")
        .bind(token_digest(token))
        .bind(now())
        .execute(pool)
        .await
        .map(|r| r.rows_affected()))
    .map_err(StoreError::from)?;
    Ok(())
}
