//! The `users` and `api_tokens` tables.

use chrono::{DateTime, Utc};
use vigie_core::on_pool;
use vigie_core::role::Role;
use vigie_core::secret::{hash_password, new_password, new_token, token_digest};
use vigie_core::store::{Store, StoreError};
use vigie_core::time::now;

use crate::error::AuthError;
use crate::guard::Caller;

/// A user to create.
#[derive(Clone, Debug)]
pub struct NewUser {
    pub login: String,
    pub role: Role,
    pub email: Option<String>,
    pub display_name: Option<String>,
    /// `None` creates an account that cannot log in until a password is set.
    pub password: Option<String>,
    pub must_change_password: bool,
}

/// The administrator made on the first start, with the password to show once.
#[derive(Debug)]
pub struct InitialAdmin {
    pub login: String,
    pub password: String,
}

const LOGIN_MAX: usize = 64;
const EMAIL_MAX: usize = 254;
const PASSWORD_MIN: usize = 10;
const PASSWORD_MAX: usize = 1024;
const LABEL_MAX: usize = 100;

fn validate(user: &NewUser) -> Result<(), AuthError> {
    let login = &user.login;
    if login.is_empty() || login.chars().count() > LOGIN_MAX {
        return Err(AuthError::Invalid {
            field: "login",
            problem: format!("must be 1 to {LOGIN_MAX} characters"),
        });
    }
    if !login
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@'))
    {
        return Err(AuthError::Invalid {
            field: "login",
            problem: "may contain only letters, digits and . _ - @".into(),
        });
    }
    if let Some(email) = &user.email {
        let plausible = email.len() <= EMAIL_MAX
            && email
                .split_once('@')
                .is_some_and(|(local, domain)| !local.is_empty() && domain.contains('.'))
            && !email.chars().any(|c| c.is_whitespace() || c.is_control());
        if !plausible {
            return Err(AuthError::Invalid {
                field: "email",
                problem: format!("`{email}` is not an email address"),
            });
        }
    }
    if let Some(password) = &user.password {
        let n = password.chars().count();
        if !(PASSWORD_MIN..=PASSWORD_MAX).contains(&n) {
            return Err(AuthError::Invalid {
                field: "password",
                problem: format!("must be {PASSWORD_MIN} to {PASSWORD_MAX} characters"),
            });
        }
    }
    Ok(())
}

fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db) if db.is_unique_violation())
}

/// Creates a user; the login must be free.
pub async fn create_user(store: &Store, user: NewUser) -> Result<i64, AuthError> {
    validate(&user)?;
    let hash = user.password.as_deref().map(hash_password).transpose()?;
    let created_at = now();
    let result = on_pool!(store, pool => sqlx::query_scalar::<_, i64>(
        "INSERT INTO users (login, role, email, display_name, password_hash, must_change_password, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
    )
    .bind(&user.login)
    .bind(user.role.as_str())
    .bind(&user.email)
    .bind(&user.display_name)
    .bind(&hash)
    .bind(user.must_change_password)
    .bind(created_at)
    .fetch_one(pool)
    .await);
    match result {
        Ok(id) => Ok(id),
        Err(e) if is_unique_violation(&e) => Err(AuthError::LoginTaken(user.login)),
        Err(e) => Err(StoreError::from(e).into()),
    }
}

pub async fn count_users(store: &Store) -> Result<i64, AuthError> {
    let n = on_pool!(store, pool => sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM users")
        .fetch_one(pool)
        .await)
    .map_err(StoreError::from)?;
    Ok(n)
}

/// On a store with no user at all, creates the administrator `admin` with a one-time password
/// (to be changed at first login) and returns it so that it can be printed once. Safe when
/// several hub processes start together: only one of them creates it.
pub async fn ensure_initial_admin(store: &Store) -> Result<Option<InitialAdmin>, AuthError> {
    if count_users(store).await? > 0 {
        return Ok(None);
    }
    let password = new_password()?;
    let hash = hash_password(&password)?;
    let created_at = now();
    let inserted = on_pool!(store, pool => sqlx::query(
        "INSERT INTO users (login, role, password_hash, must_change_password, created_at)
         SELECT 'admin', 'admin', $1, TRUE, $2
         WHERE NOT EXISTS (SELECT 1 FROM users)
         ON CONFLICT (login) DO NOTHING",
    )
    .bind(&hash)
    .bind(created_at)
    .execute(pool)
    .await
    .map(|r| r.rows_affected()))
    .map_err(StoreError::from)?;
    Ok((inserted == 1).then(|| InitialAdmin {
        login: "admin".into(),
        password,
    }))
}

/// Creates an API token for an enabled user and returns it; only its digest is stored.
pub async fn create_token(
    store: &Store,
    login: &str,
    label: Option<&str>,
) -> Result<String, AuthError> {
    if let Some(label) = label
        && (label.chars().count() > LABEL_MAX || label.chars().any(char::is_control))
    {
        return Err(AuthError::Invalid {
            field: "label",
            problem: format!("must be one line of at most {LABEL_MAX} characters"),
        });
    }
    let user: Option<(i64, bool)> = on_pool!(store, pool => sqlx::query_as(
        "SELECT id, disabled FROM users WHERE login = $1",
    )
    .bind(login)
    .fetch_optional(pool)
    .await)
    .map_err(StoreError::from)?;
    let (user_id, disabled) = user.ok_or_else(|| AuthError::UnknownLogin(login.to_owned()))?;
    if disabled {
        return Err(AuthError::Disabled(login.to_owned()));
    }
    let token = new_token("vgt")?;
    let created_at: DateTime<Utc> = now();
    on_pool!(store, pool => sqlx::query(
        "INSERT INTO api_tokens (user_id, digest, label, created_at) VALUES ($1, $2, $3, $4)",
    )
    .bind(user_id)
    .bind(token_digest(&token))
    .bind(label)
    .bind(created_at)
    .execute(pool)
    .await
    .map(drop))
    .map_err(StoreError::from)?;
    Ok(token)
}

/// The enabled user a live token belongs to.
pub async fn find_by_token(store: &Store, token: &str) -> Result<Option<Caller>, AuthError> {
    let row: Option<(i64, String, String)> = on_pool!(store, pool => sqlx::query_as(
        "SELECT u.id, u.login, u.role FROM api_tokens t JOIN users u ON u.id = t.user_id
         WHERE t.digest = $1 AND t.revoked_at IS NULL AND NOT u.disabled",
    )
    .bind(token_digest(token))
    .fetch_optional(pool)
    .await)
    .map_err(StoreError::from)?;
    match row {
        None => Ok(None),
        Some((user_id, login, role)) => match role.parse::<Role>() {
            Ok(role) => Ok(Some(Caller {
                user_id,
                login,
                role,
            })),
            Err(e) => {
                tracing::error!(%login, error = %e, "A stored user has an unknown role.");
                Ok(None)
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(login: &str) -> NewUser {
        NewUser {
            login: login.into(),
            role: Role::Operator,
            email: None,
            display_name: None,
            password: None,
            must_change_password: false,
        }
    }

    #[test]
    fn logins_and_emails_are_checked() {
        assert!(validate(&user("j.doe@ops")).is_ok());
        assert!(validate(&user("")).is_err());
        assert!(validate(&user("a b")).is_err());
        assert!(validate(&user(&"x".repeat(65))).is_err());
        let mut u = user("ok");
        u.email = Some("not-an-email".into());
        assert!(matches!(
            validate(&u),
            Err(AuthError::Invalid { field: "email", .. })
        ));
        u.email = Some("ops@example.org".into());
        u.password = Some("short".into());
        assert!(matches!(
            validate(&u),
            Err(AuthError::Invalid {
                field: "password",
                ..
            })
        ));
    }
}
