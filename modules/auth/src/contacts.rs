//! How to reach people: their domains (a manager heads the domains they belong to) and the
//! contact details the notification modules need. Owns the table `user_domains`.

use serde::Serialize;
use vigie_core::store::{Store, StoreError, StoreTx};
use vigie_core::{on_pool, on_tx};

use crate::AuthError;

/// What a notifier needs to reach one person.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct Contact {
    pub user_id: i64,
    pub login: String,
    pub role: String,
    /// "First Last", else the display name, else the login.
    pub name: String,
    pub email: Option<String>,
    pub phone: Option<String>,
    /// Their language for messages (`en`, `fr`); `None`: the hub's default.
    pub lang: Option<String>,
}

const CONTACT_COLUMNS: &str = "u.id AS user_id, u.login, u.role,
    COALESCE(NULLIF(TRIM(COALESCE(u.first_name, '') || ' ' || COALESCE(u.last_name, '')), ''),
             u.display_name, u.login) AS name,
    u.email, u.phone, u.lang";

/// The enabled managers of `domain`, by login.
pub async fn managers_of(store: &Store, domain: &str) -> Result<Vec<Contact>, AuthError> {
    let sql = format!(
        "SELECT {CONTACT_COLUMNS} FROM users u JOIN user_domains d ON d.user_id = u.id
         WHERE d.domain = $1 AND u.role = 'manager' AND NOT u.disabled ORDER BY u.login"
    );
    let rows = on_pool!(store, pool => sqlx::query_as::<_, Contact>(sqlx::AssertSqlSafe(sql))
        .bind(domain)
        .fetch_all(pool)
        .await)
    .map_err(StoreError::from)?;
    Ok(rows)
}

/// The contacts of enabled users, in the order of `ids` (unknown or disabled ones left out).
pub async fn contacts(store: &Store, ids: &[i64]) -> Result<Vec<Contact>, AuthError> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let marks: Vec<String> = (1..=ids.len()).map(|i| format!("${i}")).collect();
    let sql = format!(
        "SELECT {CONTACT_COLUMNS} FROM users u WHERE NOT u.disabled AND u.id IN ({})",
        marks.join(", ")
    );
    let rows = on_pool!(store, pool => {
        let mut q = sqlx::query_as::<_, Contact>(sqlx::AssertSqlSafe(sql.clone()));
        for id in ids {
            q = q.bind(*id);
        }
        q.fetch_all(pool).await
    })
    .map_err(StoreError::from)?;
    Ok(ids
        .iter()
        .filter_map(|id| rows.iter().find(|c| c.user_id == *id).cloned())
        .collect())
}

/// The domains a user belongs to, sorted.
pub async fn domains_of(store: &Store, user_id: i64) -> Result<Vec<String>, AuthError> {
    let rows = on_pool!(store, pool => sqlx::query_scalar::<_, String>(
        "SELECT domain FROM user_domains WHERE user_id = $1 ORDER BY domain",
    )
    .bind(user_id)
    .fetch_all(pool)
    .await)
    .map_err(StoreError::from)?;
    Ok(rows)
}

/// Replaces a user's domains within the caller's transaction (the caller validated them against
/// the configured list and records the audit entry).
pub async fn set_domains(
    tx: &mut StoreTx,
    user_id: i64,
    domains: &[String],
) -> Result<(), StoreError> {
    on_tx!(tx, conn => sqlx::query("DELETE FROM user_domains WHERE user_id = $1")
        .bind(user_id)
        .execute(conn)
        .await
        .map(|r| r.rows_affected()))?;
    for domain in domains {
        on_tx!(tx, conn => sqlx::query(
            "INSERT INTO user_domains (user_id, domain) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        )
        .bind(user_id)
        .bind(domain)
        .execute(conn)
        .await
        .map(|r| r.rows_affected()))?;
    }
    Ok(())
}
