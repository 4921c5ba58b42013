//! Fresh databases for tests, on the backend the test command chose.
//!
//! `VIGIE_TEST_DATABASE=sqlite` (the default) gives each test its own SQLite file in a temporary
//! directory; `VIGIE_TEST_DATABASE=postgres` gives each test its own PostgreSQL database, created
//! through `VIGIE_TEST_PG_URL` (default `postgres://postgres@127.0.0.1:5432/postgres`). The
//! test command (`scripts/test`) runs the whole suite once per backend, and drops the databases
//! left by earlier runs (named `vigie_test_*`).

use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use sqlx::{Connection, PgConnection};

use crate::store::{Backend, Store, StoreError, StoreOptions};

/// The backend the suite runs on.
pub fn backend() -> Backend {
    match std::env::var("VIGIE_TEST_DATABASE").as_deref() {
        Ok("postgres") | Ok("postgresql") => Backend::Postgres,
        _ => Backend::Sqlite,
    }
}

/// The administrative PostgreSQL URL tests create their databases through.
pub fn pg_admin_url() -> String {
    std::env::var("VIGIE_TEST_PG_URL")
        .ok()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

fn unique_name() -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!(
        "vigie_test_{}_{}_{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed),
        nanos
    )
}

/// A database of its own for one test. A SQLite directory is removed when dropped; PostgreSQL
/// databases are dropped by the test command.
#[derive(Debug)]
pub struct TestDb {
    /// The URL the hub (or the store) connects with.
    pub url: String,
    /// The SQLite file's directory (also usable as the hub's data directory).
    pub dir: PathBuf,
}

impl TestDb {
    /// Creates an empty database (no schema) on the suite's backend.
    pub async fn create() -> Result<TestDb, StoreError> {
        let name = unique_name();
        let dir = std::env::temp_dir().join(&name);
        std::fs::create_dir_all(&dir).map_err(|source| StoreError::Directory {
            path: dir.display().to_string(),
            source,
        })?;
        let url = match backend() {
            Backend::Sqlite => format!("sqlite://{}/vigie.db", dir.display()),
            Backend::Postgres => {
                let admin = pg_admin_url();
                let mut conn = PgConnection::connect(&admin).await?;
                // The name is generated above, never from input.
                sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                    .execute(&mut conn)
                    .await?;
                conn.close().await?;
                replace_database(&admin, &name)
            }
        };
        Ok(TestDb { url, dir })
    }

    /// Opens the store on this database and applies the migrations.
    pub async fn store(&self) -> Result<Store, StoreError> {
        let store = Store::connect(&StoreOptions::new(self.url.clone())).await?;
        store.migrate().await?;
        Ok(store)
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The URL with its database name replaced.
fn replace_database(url: &str, database: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let after_scheme = base.find("://").map_or(0, |i| i + 3);
    let base = match base[after_scheme..].find('/') {
        Some(i) => &base[..after_scheme + i],
        None => base,
    };
    match query {
        Some(q) => format!("{base}/{database}?{q}"),
        None => format!("{base}/{database}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_name_is_replaced() {
        assert_eq!(
            replace_database("postgres://u@h:5432/postgres", "x"),
            "postgres://u@h:5432/x"
        );
        assert_eq!(replace_database("postgres://u@h", "x"), "postgres://u@h/x");
        assert_eq!(
            replace_database("postgres://u:p@h/db?sslmode=disable", "x"),
            "postgres://u:p@h/x?sslmode=disable"
        );
    }
}
