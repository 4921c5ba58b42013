//! Checking credentials: passwords with a growing lockout, and the TOTP second factor with its
//! recovery codes.
//!
//! Whatever the reason a login fails (unknown login, wrong password, locked, disabled, no
//! password yet) the caller gets the same [`Verdict::Refused`], and the work done is the same: an
//! unknown login is checked against a fixed dummy hash so that it costs one argon2 verification
//! like a real one. The reason goes to the audit log only.

use std::sync::OnceLock;
use std::time::Duration;

use chrono::{DateTime, Utc};
use totp_rs::{Builder, Secret};
use vigie_core::audit::{Actor, Entry};
use vigie_core::role::Role;
use vigie_core::secret::{
    constant_time_eq, fill_random, hash_password, token_digest, verify_password,
};
use vigie_core::store::{Store, StoreError};
use vigie_core::time::now;
use vigie_core::{on_pool, on_tx};

use crate::error::AuthError;

/// When accounts lock.
#[derive(Clone, Copy, Debug)]
pub struct LockoutPolicy {
    /// Failed attempts in a row that lock the account.
    pub threshold: u32,
    /// The first lock's length; each further lock doubles it.
    pub base: Duration,
    /// The longest lock.
    pub max: Duration,
}

impl Default for LockoutPolicy {
    fn default() -> LockoutPolicy {
        LockoutPolicy {
            threshold: 5,
            base: Duration::from_secs(60),
            max: Duration::from_secs(3600),
        }
    }
}

impl LockoutPolicy {
    /// The length of the `n`-th lock (0-based): base × 2ⁿ, capped.
    pub fn lock_length(&self, n: u32) -> Duration {
        let factor = 1u32.checked_shl(n.min(20)).unwrap_or(u32::MAX);
        self.base.saturating_mul(factor).min(self.max)
    }
}

/// A user whose password was right.
#[derive(Clone, Debug)]
pub struct Accepted {
    pub actor: Actor,
    pub totp_enabled: bool,
    /// The role requires a second factor and the user has not enrolled yet.
    pub must_enrol: bool,
}

#[derive(Clone, Debug)]
pub enum Verdict {
    Accepted(Accepted),
    Refused,
}

#[derive(sqlx::FromRow)]
struct Credentials {
    id: i64,
    login: String,
    role: String,
    password_hash: Option<String>,
    disabled: bool,
    failed_logins: i32,
    lock_count: i32,
    locked_until: Option<DateTime<Utc>>,
    totp_enabled: bool,
}

fn dummy_hash() -> &'static str {
    static HASH: OnceLock<String> = OnceLock::new();
    HASH.get_or_init(|| hash_password("vigie-dummy-password-for-timing").unwrap_or_default())
}

/// Checks a login and password. Records every failure (with its reason) in the audit log and
/// counts it towards the lockout; a success is recorded when its session opens.
pub async fn authenticate(
    store: &Store,
    login: &str,
    password: &str,
    ip: Option<&str>,
    policy: LockoutPolicy,
) -> Result<Verdict, AuthError> {
    let found: Option<Credentials> = on_pool!(store, pool => sqlx::query_as::<_, Credentials>(
        "SELECT id, login, role, password_hash, disabled, failed_logins, lock_count, locked_until, totp_enabled
         FROM users WHERE login = $1",
    )
    .bind(login)
    .fetch_optional(pool)
    .await)
    .map_err(StoreError::from)?;
    let Some(user) = found else {
        // The same work as for a real user, then the same answer.
        let _ = verify_password(password, dummy_hash());
        fail(store, None, login, ip, "unknown_login").await?;
        return Ok(Verdict::Refused);
    };
    let hash = user
        .password_hash
        .as_deref()
        .unwrap_or_else(|| dummy_hash());
    let password_ok = verify_password(password, hash) && user.password_hash.is_some();
    let now = now();
    let role = user.role.parse::<Role>().unwrap_or(Role::User);
    let actor = Actor {
        user_id: user.id,
        login: user.login.clone(),
        role,
    };
    if user.locked_until.is_some_and(|until| until > now) {
        fail(store, Some(&actor), login, ip, "locked").await?;
        return Ok(Verdict::Refused);
    }
    if user.disabled {
        fail(store, Some(&actor), login, ip, "disabled").await?;
        return Ok(Verdict::Refused);
    }
    if user.password_hash.is_none() {
        fail(store, Some(&actor), login, ip, "not_activated").await?;
        return Ok(Verdict::Refused);
    }
    if !password_ok {
        count_failure(
            store,
            &actor,
            ip,
            user.failed_logins,
            user.lock_count,
            policy,
        )
        .await?;
        return Ok(Verdict::Refused);
    }
    let must_enrol = !user.totp_enabled && totp_required(store, role).await?;
    Ok(Verdict::Accepted(Accepted {
        actor,
        totp_enabled: user.totp_enabled,
        must_enrol,
    }))
}

async fn fail(
    store: &Store,
    actor: Option<&Actor>,
    login: &str,
    ip: Option<&str>,
    reason: &str,
) -> Result<(), AuthError> {
    tracing::info!(login = %login.chars().take(64).collect::<String>(), reason, "Login refused.");
    let entry = Entry::new(actor, ip, "auth.login_failed")
        .target(
            "user",
            actor.map_or(String::new(), |a| a.user_id.to_string()),
            login.chars().take(64).collect::<String>(),
        )
        .change(None, Some(serde_json::json!({ "reason": reason })));
    vigie_core::audit::record_alone(store, entry).await?;
    Ok(())
}

/// One more wrong password: at the threshold the account locks for a growing delay.
async fn count_failure(
    store: &Store,
    actor: &Actor,
    ip: Option<&str>,
    failed: i32,
    locks: i32,
    policy: LockoutPolicy,
) -> Result<(), AuthError> {
    let failed = failed + 1;
    let mut tx = store.begin().await?;
    let locked_until = if failed >= policy.threshold as i32 {
        let length = policy.lock_length(locks.max(0) as u32);
        let until =
            now() + chrono::Duration::from_std(length).unwrap_or(chrono::Duration::hours(1));
        on_tx!(&mut tx, conn => sqlx::query(
            "UPDATE users SET failed_logins = 0, lock_count = lock_count + 1, locked_until = $1 WHERE id = $2",
        )
        .bind(until)
        .bind(actor.user_id)
        .execute(conn)
        .await
        .map(|r| r.rows_affected()))
        .map_err(StoreError::from)?;
        Some(until)
    } else {
        on_tx!(&mut tx, conn => sqlx::query("UPDATE users SET failed_logins = $1 WHERE id = $2")
            .bind(failed)
            .bind(actor.user_id)
            .execute(conn)
            .await
            .map(|r| r.rows_affected()))
        .map_err(StoreError::from)?;
        None
    };
    vigie_core::audit::record(
        &mut tx,
        Entry::new(Some(actor), ip, "auth.login_failed")
            .target("user", actor.user_id, &actor.login)
            .change(
                None,
                Some(serde_json::json!({
                    "reason": "bad_password", "failures": failed, "locked_until": locked_until,
                })),
            ),
    )
    .await?;
    if let Some(until) = locked_until {
        vigie_core::audit::record(
            &mut tx,
            Entry::new(None, ip, "user.locked")
                .target("user", actor.user_id, &actor.login)
                .change(None, Some(serde_json::json!({ "until": until }))),
        )
        .await?;
    }
    tx.commit().await?;
    tracing::info!(login = %actor.login, locked = locked_until.is_some(), "Login refused: wrong password.");
    Ok(())
}

/// Whether the administrator requires a second factor for the role.
pub async fn totp_required(store: &Store, role: Role) -> Result<bool, AuthError> {
    let required: Option<bool> = on_pool!(store, pool => sqlx::query_scalar(
        "SELECT require_totp FROM role_settings WHERE role = $1",
    )
    .bind(role.as_str())
    .fetch_optional(pool)
    .await)
    .map_err(StoreError::from)?;
    Ok(required.unwrap_or(false))
}

/// Every role with whether it requires a second factor.
pub async fn totp_requirements(store: &Store) -> Result<Vec<(Role, bool)>, AuthError> {
    let mut out = Vec::new();
    for role in Role::ALL {
        out.push((role, totp_required(store, role).await?));
    }
    Ok(out)
}

/// Sets which roles require a second factor; audited.
pub async fn set_totp_requirements(
    store: &Store,
    actor: &Actor,
    ip: Option<&str>,
    required: &[Role],
) -> Result<(), AuthError> {
    let before: Vec<&str> = totp_requirements(store)
        .await?
        .into_iter()
        .filter(|(_, r)| *r)
        .map(|(role, _)| role.as_str())
        .collect();
    let mut tx = store.begin().await?;
    for role in Role::ALL {
        on_tx!(&mut tx, conn => sqlx::query(
            "INSERT INTO role_settings (role, require_totp) VALUES ($1, $2)
             ON CONFLICT (role) DO UPDATE SET require_totp = excluded.require_totp",
        )
        .bind(role.as_str())
        .bind(required.contains(&role))
        .execute(conn)
        .await
        .map(|r| r.rows_affected()))
        .map_err(StoreError::from)?;
    }
    let after: Vec<&str> = required.iter().map(|r| r.as_str()).collect();
    vigie_core::audit::record(
        &mut tx,
        Entry::new(Some(actor), ip, "security.totp_roles").change(
            Some(serde_json::json!(before)),
            Some(serde_json::json!(after)),
        ),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

// ---- TOTP ----------------------------------------------------------------------------------

const ISSUER: &str = "Vigie";
const RECOVERY_CODES: usize = 10;

fn totp(secret_base32: &str, account: &str) -> Result<totp_rs::Totp, AuthError> {
    let secret = Secret::try_from_base32(secret_base32).map_err(|_| AuthError::Invalid {
        field: "totp",
        problem: "stored secret is not base32".into(),
    })?;
    // `:` is not allowed in an otpauth account name.
    let account: String = account.chars().filter(|c| *c != ':').collect();
    Builder::new()
        .with_secret(secret)
        .with_issuer(Some(ISSUER))
        .with_account_name(account)
        .build()
        .map_err(|e| AuthError::Invalid {
            field: "totp",
            problem: e.to_string(),
        })
}

/// A new random secret (160 bits, base32), kept pending on the user until a first code confirms
/// it; returns the secret and its `otpauth://` URL for the QR code.
pub async fn start_enrolment(
    store: &Store,
    user_id: i64,
    login: &str,
) -> Result<(String, String), AuthError> {
    let mut bytes = [0u8; 20];
    fill_random(&mut bytes)?;
    let secret = Secret::from(bytes.to_vec()).to_base32();
    let url = totp(&secret, login)?
        .to_url()
        .map_err(|e| AuthError::Invalid {
            field: "totp",
            problem: e.to_string(),
        })?;
    on_pool!(store, pool => sqlx::query(
        "UPDATE users SET totp_secret = $1 WHERE id = $2 AND NOT totp_enabled",
    )
    .bind(&secret)
    .bind(user_id)
    .execute(pool)
    .await
    .map(|r| r.rows_affected()))
    .map_err(StoreError::from)?;
    Ok((secret, url))
}

/// The pending (not yet confirmed) secret of a user, with its URL.
pub async fn pending_enrolment(
    store: &Store,
    user_id: i64,
    login: &str,
) -> Result<Option<(String, String)>, AuthError> {
    let secret: Option<Option<String>> = on_pool!(store, pool => sqlx::query_scalar(
        "SELECT totp_secret FROM users WHERE id = $1 AND NOT totp_enabled",
    )
    .bind(user_id)
    .fetch_optional(pool)
    .await)
    .map_err(StoreError::from)?;
    match secret.flatten() {
        Some(secret) => {
            let url = totp(&secret, login)?
                .to_url()
                .map_err(|e| AuthError::Invalid {
                    field: "totp",
                    problem: e.to_string(),
                })?;
            Ok(Some((secret, url)))
        }
        None => Ok(None),
    }
}

fn recovery_code() -> Result<String, AuthError> {
    const ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyz23456789";
    let mut bytes = [0u8; 10];
    fill_random(&mut bytes)?;
    let chars: String = bytes
        .iter()
        .map(|b| char::from(ALPHABET[usize::from(*b) % ALPHABET.len()]))
        .collect();
    Ok(format!("{}-{}", &chars[..5], &chars[5..]))
}

/// Confirms enrolment with a first code: the factor is on, and the recovery codes (shown once)
/// are returned. Audited.
pub async fn confirm_enrolment(
    store: &Store,
    actor: &Actor,
    ip: Option<&str>,
    code: &str,
) -> Result<Option<Vec<String>>, AuthError> {
    let Some((secret, _)) = pending_enrolment(store, actor.user_id, &actor.login).await? else {
        return Ok(None);
    };
    let Some(step) = totp(&secret, &actor.login)?.check_current(code.trim()) else {
        return Ok(None);
    };
    let codes: Vec<String> = (0..RECOVERY_CODES)
        .map(|_| recovery_code())
        .collect::<Result<_, _>>()?;
    let digests: Vec<String> = codes.iter().map(|c| token_digest(c)).collect();
    let mut tx = store.begin().await?;
    on_tx!(&mut tx, conn => sqlx::query(
        "UPDATE users SET totp_enabled = TRUE, totp_last_step = $1, recovery_codes = $2 WHERE id = $3",
    )
    .bind(step as i64)
    .bind(serde_json::to_string(&digests).unwrap_or_else(|_| "[]".into()))
    .bind(actor.user_id)
    .execute(conn)
    .await
    .map(|r| r.rows_affected()))
    .map_err(StoreError::from)?;
    vigie_core::audit::record(
        &mut tx,
        Entry::new(Some(actor), ip, "user.totp_enable").target("user", actor.user_id, &actor.login),
    )
    .await?;
    tx.commit().await?;
    Ok(Some(codes))
}

/// Turns the second factor off (the page checks the password first). Audited.
pub async fn disable_totp(
    store: &Store,
    actor: &Actor,
    ip: Option<&str>,
    by: &Actor,
) -> Result<(), AuthError> {
    let mut tx = store.begin().await?;
    on_tx!(&mut tx, conn => sqlx::query(
        "UPDATE users SET totp_enabled = FALSE, totp_secret = NULL, totp_last_step = NULL, recovery_codes = '[]'
         WHERE id = $1",
    )
    .bind(actor.user_id)
    .execute(conn)
    .await
    .map(|r| r.rows_affected()))
    .map_err(StoreError::from)?;
    vigie_core::audit::record(
        &mut tx,
        Entry::new(Some(by), ip, "user.totp_disable").target("user", actor.user_id, &actor.login),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Checks a second-factor code, or else a recovery code (used up). A code is accepted once:
/// its time step must be later than the last accepted one.
pub async fn verify_second_factor(
    store: &Store,
    actor: &Actor,
    code: &str,
) -> Result<bool, AuthError> {
    let row: Option<(Option<String>, Option<i64>, String)> = on_pool!(store, pool => sqlx::query_as(
        "SELECT totp_secret, totp_last_step, recovery_codes FROM users WHERE id = $1 AND totp_enabled",
    )
    .bind(actor.user_id)
    .fetch_optional(pool)
    .await)
    .map_err(StoreError::from)?;
    let Some((Some(secret), last_step, recovery)) = row else {
        return Ok(false);
    };
    let code = code.trim();
    if code.len() == 6 && code.chars().all(|c| c.is_ascii_digit()) {
        let Some(step) = totp(&secret, &actor.login)?.check_current(code) else {
            return Ok(false);
        };
        let step = step as i64;
        if last_step.is_some_and(|last| step <= last) {
            return Ok(false);
        }
        // Claimed with a condition, so two logins racing with the same code cannot both pass.
        let claimed = on_pool!(store, pool => sqlx::query(
            "UPDATE users SET totp_last_step = $1 WHERE id = $2 AND (totp_last_step IS NULL OR totp_last_step < $1)",
        )
        .bind(step)
        .bind(actor.user_id)
        .execute(pool)
        .await
        .map(|r| r.rows_affected()))
        .map_err(StoreError::from)?;
        return Ok(claimed == 1);
    }
    let digests: Vec<String> = serde_json::from_str(&recovery).unwrap_or_default();
    let wanted = token_digest(&code.to_lowercase());
    let Some(index) = digests
        .iter()
        .position(|d| constant_time_eq(d.as_bytes(), wanted.as_bytes()))
    else {
        return Ok(false);
    };
    let mut rest = digests.clone();
    rest.remove(index);
    let claimed = on_pool!(store, pool => sqlx::query(
        "UPDATE users SET recovery_codes = $1 WHERE id = $2 AND recovery_codes = $3",
    )
    .bind(serde_json::to_string(&rest).unwrap_or_else(|_| "[]".into()))
    .bind(actor.user_id)
    .bind(&recovery)
    .execute(pool)
    .await
    .map(|r| r.rows_affected()))
    .map_err(StoreError::from)?;
    Ok(claimed == 1)
}

/// The current code of a secret (for tests and for checking a clock).
pub fn current_code(secret_base32: &str) -> Result<String, AuthError> {
    Ok(totp(secret_base32, "x")?.generate_current().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locks_grow_and_are_capped() {
        let p = LockoutPolicy::default();
        assert_eq!(p.lock_length(0), Duration::from_secs(60));
        assert_eq!(p.lock_length(1), Duration::from_secs(120));
        assert_eq!(p.lock_length(3), Duration::from_secs(480));
        assert_eq!(p.lock_length(30), Duration::from_secs(3600));
    }

    #[test]
    fn recovery_codes_are_readable_and_distinct() -> Result<(), AuthError> {
        let a = recovery_code()?;
        let b = recovery_code()?;
        assert_eq!(a.len(), 11);
        assert_eq!(&a[5..6], "-");
        assert_ne!(a, b);
        Ok(())
    }
}
