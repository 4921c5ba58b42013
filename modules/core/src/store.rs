//! The hub's store: embedded SQLite by default, PostgreSQL for production and several hub
//! processes. One enum over the two pools; queries are written once and run on either through
//! [`on_pool!`](crate::on_pool) and [`on_tx!`](crate::on_tx).
//!
//! The dialect differences are kept small on purpose: both backends take `$N` placeholders,
//! `RETURNING`, `ON CONFLICT … DO UPDATE` and partial indexes; times are bound from Rust (SQLite
//! keeps them as RFC 3339 text in UTC, which sorts like the times themselves). What differs is the
//! DDL, kept in `migrations/sqlite` and `migrations/postgres`.

use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Pool, Postgres, Sqlite, Transaction};
use tokio::sync::OwnedMutexGuard;

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations/postgres");

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

/// How to reach the store.
#[derive(Clone, Debug)]
pub struct StoreOptions {
    /// `sqlite://PATH` or `postgres://…`.
    pub url: String,
    pub max_connections: u32,
    /// How long a query waits for a free connection before the store counts as unavailable.
    pub acquire_timeout: Duration,
}

impl StoreOptions {
    pub fn new(url: impl Into<String>) -> StoreOptions {
        StoreOptions {
            url: url.into(),
            max_connections: 8,
            acquire_timeout: Duration::from_secs(3),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("unsupported database URL `{0}`: expected sqlite://PATH or postgres://…")]
    UnsupportedUrl(String),
    #[error("cannot create the database directory {path}: {source}")]
    Directory {
        path: String,
        source: std::io::Error,
    },
    #[error("the store is unavailable: {0}")]
    Unavailable(#[source] sqlx::Error),
    #[error("store query failed: {0}")]
    Query(#[source] sqlx::Error),
    #[error("store migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

impl StoreError {
    /// Whether the failure is the store being out of reach (as opposed to a bad query or a
    /// constraint), which callers answer with 503 rather than 500.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, StoreError::Unavailable(_))
    }
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> StoreError {
        if is_unavailability(&e) {
            StoreError::Unavailable(e)
        } else {
            StoreError::Query(e)
        }
    }
}

/// Classifies a driver error as "the store cannot be reached or cannot write right now".
fn is_unavailability(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => {
            let code = db.code().unwrap_or_default();
            // PostgreSQL: class 08 connection exceptions, 57P0x shutdowns, 53xxx insufficient
            // resources, 25006 read-only transaction, and what a (re)connection meets when the
            // database is gone or refuses the login: 3D000, 28xxx. SQLite: BUSY, LOCKED, READONLY, IOERR, FULL,
            // CANTOPEN (primary result codes; extended codes keep the low byte).
            code.starts_with("08")
                || code.starts_with("57P")
                || code.starts_with("53")
                || code == "25006"
                || code == "3D000"
                || code.starts_with("28")
                || code
                    .parse::<i32>()
                    .is_ok_and(|c| matches!(c & 0xff, 5 | 6 | 8 | 10 | 13 | 14))
        }
        _ => false,
    }
}

/// Escapes `%`, `_` and `\` so that user text matches literally in `LIKE … ESCAPE '\'`.
pub fn like_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Splits `n` rows into statements of `max` rows and then powers of two, so that a handful of
/// statement shapes serve every batch size (each prepared once per connection and cached).
pub fn statement_chunks(n: usize, max: usize) -> Vec<std::ops::Range<usize>> {
    let mut out = Vec::new();
    let mut start = 0;
    while start < n {
        let rest = n - start;
        let size = if rest >= max {
            max
        } else {
            1 << (usize::BITS - 1 - rest.leading_zeros())
        };
        out.push(start..start + size);
        start += size;
    }
    out
}

/// The connection pool of the configured backend.
#[derive(Clone, Debug)]
pub enum Store {
    Sqlite(Pool<Sqlite>, WriteGate),
    Postgres(Pool<Postgres>),
}

/// A transaction on the configured backend. Dropped without [`StoreTx::commit`], it rolls back.
pub enum StoreTx {
    /// The gate's guard is declared after the transaction so that the rollback of a dropped
    /// transaction is queued before the next writer is let through.
    Sqlite(Transaction<'static, Sqlite>, OwnedMutexGuard<()>),
    Postgres(Transaction<'static, Postgres>),
}

/// The turn of this process's SQLite write transactions (shared by a store and its
/// [`Store::dedicated_writer`]). SQLite lets one writer in at a time and makes the others wait
/// in its busy handler, which sleeps 1, 2, 5, 10… ms between tries: under a steady write load
/// (syslog batches and the alert writer) most of that time is spent asleep with the lock free.
/// Queueing here hands the lock over in order, without sleeping; other processes (the CLI)
/// still meet the busy timeout.
#[derive(Clone, Debug, Default)]
pub struct WriteGate(Arc<tokio::sync::Mutex<()>>);

/// Runs `$body` with `$pool` bound to the backend's pool; the body is written once and compiled
/// for each backend.
#[macro_export]
macro_rules! on_pool {
    ($store:expr, $pool:ident => $body:expr) => {
        match $store {
            $crate::store::Store::Sqlite($pool, _) => $body,
            $crate::store::Store::Postgres($pool) => $body,
        }
    };
}

/// Runs `$body` with `$conn` bound to the transaction's connection (`&mut Connection`); use
/// `&mut *$conn` to run more than one statement.
#[macro_export]
macro_rules! on_tx {
    ($tx:expr, $conn:ident => $body:expr) => {
        match $tx {
            $crate::store::StoreTx::Sqlite(t, _) => {
                let $conn = &mut **t;
                $body
            }
            $crate::store::StoreTx::Postgres(t) => {
                let $conn = &mut **t;
                $body
            }
        }
    };
}

impl Store {
    /// Opens the pool. For SQLite, creates the file and its directory when missing.
    pub async fn connect(options: &StoreOptions) -> Result<Store, StoreError> {
        let url = options.url.as_str();
        if url.starts_with("sqlite:") {
            let connect = SqliteConnectOptions::from_str(url)
                .map_err(|_| StoreError::UnsupportedUrl(url.to_owned()))?
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .busy_timeout(Duration::from_secs(5))
                .foreign_keys(true)
                .pragma("temp_store", "memory")
                // 4 MiB of page cache per connection keeps the resident memory of a busy hub low.
                .pragma("cache_size", "-4000")
                // Checkpoints (the only writes that wait for the disk in WAL mode) would otherwise
                // run inside a committing transaction: [`Store::spawn_checkpointer`] runs them in
                // the background; past this many pages a commit still checkpoints, as a backstop.
                .pragma("wal_autocheckpoint", "65536");
            if let Some(parent) = connect.get_filename().parent()
                && !parent.as_os_str().is_empty()
            {
                create_dir(parent)?;
            }
            let pool = SqlitePoolOptions::new()
                .max_connections(options.max_connections.max(1))
                .min_connections(1)
                .acquire_timeout(options.acquire_timeout)
                .connect_with(connect)
                .await?;
            Ok(Store::Sqlite(pool, WriteGate::default()))
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            let connect = PgConnectOptions::from_str(url)
                .map_err(|_| StoreError::UnsupportedUrl(redact_url(url)))?
                .application_name("vigie");
            let pool = PgPoolOptions::new()
                .max_connections(options.max_connections.max(1))
                .acquire_timeout(options.acquire_timeout)
                .connect_with(connect)
                .await?;
            Ok(Store::Postgres(pool))
        } else {
            Err(StoreError::UnsupportedUrl(redact_url(url)))
        }
    }

    pub fn backend(&self) -> Backend {
        match self {
            Store::Sqlite(..) => Backend::Sqlite,
            Store::Postgres(_) => Backend::Postgres,
        }
    }

    /// Applies the pending migrations of the backend.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        match self {
            Store::Sqlite(pool, _) => SQLITE_MIGRATIONS.run(pool).await?,
            Store::Postgres(pool) => POSTGRES_MIGRATIONS.run(pool).await?,
        }
        Ok(())
    }

    /// Whether the store answers a trivial query within `timeout`.
    pub async fn ping(&self, timeout: Duration) -> Result<(), StoreError> {
        let probe =
            async { on_pool!(self, pool => sqlx::query("SELECT 1").execute(pool).await.map(drop)) };
        match tokio::time::timeout(timeout, probe).await {
            Ok(result) => result.map_err(StoreError::from),
            Err(_) => Err(StoreError::Unavailable(sqlx::Error::PoolTimedOut)),
        }
    }

    /// The store the ingestion writer uses. On SQLite, a pool of its own with one connection and
    /// a larger page cache: SQLite has one writer at a time anyway, and a connection that does
    /// every write keeps the indexes it updates in its cache. On PostgreSQL, the same pool.
    pub async fn dedicated_writer(&self) -> Result<Store, StoreError> {
        match self {
            Store::Sqlite(pool, gate) => {
                let options = (*pool.connect_options())
                    .clone()
                    .pragma("cache_size", "-32000");
                let writer = SqlitePoolOptions::new()
                    .max_connections(1)
                    .min_connections(1)
                    .acquire_timeout(pool.options().get_acquire_timeout())
                    .connect_with(options)
                    .await?;
                Ok(Store::Sqlite(writer, gate.clone()))
            }
            Store::Postgres(_) => Ok(self.clone()),
        }
    }

    /// On SQLite, a store in a database file of its own next to this one (`vigie.db` →
    /// `vigie-{name}.db`), with the same settings and its own write gate: SQLite lets one writer
    /// at a time into a file, so a module that writes a flood of rows (the syslog messages)
    /// writes into its own file at the same time as the alerts' writer instead of taking turns
    /// with it. The caller applies its own migrations. `None` on PostgreSQL, whose writers do not
    /// exclude each other: the module uses this store.
    pub async fn sqlite_sibling(&self, name: &str) -> Result<Option<Store>, StoreError> {
        let Store::Sqlite(pool, _) = self else {
            return Ok(None);
        };
        let options = pool.connect_options();
        let path = options.get_filename();
        let stem = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "vigie".to_owned());
        let file = match path.extension() {
            Some(ext) => format!("{stem}-{name}.{}", ext.to_string_lossy()),
            None => format!("{stem}-{name}"),
        };
        let sibling = (*options).clone().filename(path.with_file_name(file));
        let pool = SqlitePoolOptions::new()
            .max_connections(pool.options().get_max_connections())
            .min_connections(1)
            .acquire_timeout(pool.options().get_acquire_timeout())
            .connect_with(sibling)
            .await?;
        Ok(Some(Store::Sqlite(pool, WriteGate::default())))
    }

    /// The database file of a SQLite store (`None` on PostgreSQL).
    pub fn sqlite_file(&self) -> Option<std::path::PathBuf> {
        match self {
            Store::Sqlite(pool, _) => Some(pool.connect_options().get_filename().to_path_buf()),
            Store::Postgres(_) => None,
        }
    }

    /// On SQLite, moves the write-ahead log into the database now, on one of the pool's
    /// connections (`PRAGMA wal_checkpoint(PASSIVE)`); nothing on PostgreSQL.
    ///
    /// For a writer that commits without pause (the syslog flood): run by that writer between
    /// its transactions, the checkpoint catches up with the whole log, so SQLite starts the log
    /// again from its beginning at the next commit. Checkpointed only from another connection,
    /// the log never caught up while the writer kept appending, grew by hundreds of megabytes,
    /// and every frame went to new blocks at its end, which the kernel zeroes first (a fifth of
    /// the writer's time in its profile).
    pub async fn checkpoint(&self) -> Result<(), StoreError> {
        if let Store::Sqlite(pool, _) = self {
            sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
                .execute(pool)
                .await?;
        }
        Ok(())
    }

    /// On SQLite, starts the background task that moves the write-ahead log into the database
    /// every second, so that commits never wait on it. Nothing to do on PostgreSQL.
    pub fn spawn_checkpointer(&self) -> Option<tokio::task::JoinHandle<()>> {
        let Store::Sqlite(pool, _) = self else {
            return None;
        };
        let pool = pool.clone();
        Some(tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                if pool.is_closed() {
                    return;
                }
                if let Err(e) = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
                    .execute(&pool)
                    .await
                {
                    tracing::warn!(error = %e, "SQLite checkpoint failed.");
                }
            }
        }))
    }

    /// A write transaction. On SQLite it takes the write lock at once (`BEGIN IMMEDIATE`): a
    /// deferred transaction that reads and then writes fails at once with `SQLITE_BUSY` when
    /// another connection wrote in between (the busy timeout does not apply to that upgrade),
    /// whereas an immediate one waits its turn. Writers of this process first queue at the
    /// store's [`WriteGate`], so they take turns in order instead of polling the lock.
    pub async fn begin(&self) -> Result<StoreTx, StoreError> {
        Ok(match self {
            Store::Sqlite(pool, gate) => {
                // Bounded like a wait for a connection: a writer stuck in its transaction makes
                // the others fail as "unavailable", as SQLite's busy timeout did, never hang.
                let wait = pool.options().get_acquire_timeout();
                let turn = tokio::time::timeout(wait, gate.0.clone().lock_owned())
                    .await
                    .map_err(|_| StoreError::Unavailable(sqlx::Error::PoolTimedOut))?;
                StoreTx::Sqlite(pool.begin_with("BEGIN IMMEDIATE").await?, turn)
            }
            Store::Postgres(pool) => StoreTx::Postgres(pool.begin().await?),
        })
    }

    pub async fn close(&self) {
        on_pool!(self, pool => pool.close().await)
    }
}

impl StoreTx {
    pub fn backend(&self) -> Backend {
        match self {
            StoreTx::Sqlite(..) => Backend::Sqlite,
            StoreTx::Postgres(_) => Backend::Postgres,
        }
    }

    pub async fn commit(self) -> Result<(), StoreError> {
        match self {
            StoreTx::Sqlite(t, _turn) => t.commit().await?,
            StoreTx::Postgres(t) => t.commit().await?,
        }
        Ok(())
    }
}

fn create_dir(path: &Path) -> Result<(), StoreError> {
    std::fs::create_dir_all(path).map_err(|source| StoreError::Directory {
        path: path.display().to_string(),
        source,
    })
}

/// The URL with its password replaced, for messages and logs.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let (authority, tail) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{scheme}://{user}:***@{host}{tail}"),
            None => url.to_owned(),
        },
        None => url.to_owned(),
    }
}

/// Parameter markers for statements built at run time (multi-row `VALUES`, `IN (…)` lists).
///
/// Only markers are generated, never values, so the statement stays parameterised. SQLite gets
/// anonymous `?` markers: with numbered ones, binding walks the statement's list of parameter
/// names once per parameter, which is quadratic for a multi-row statement of thousands of values.
/// PostgreSQL needs `$N`. Either way, values are bound in the order the markers were written.
#[derive(Debug)]
pub struct Marks {
    backend: Backend,
    count: usize,
}

impl Marks {
    pub fn new(backend: Backend) -> Marks {
        Marks { backend, count: 0 }
    }

    /// The next marker.
    pub fn mark(&mut self) -> String {
        self.count += 1;
        match self.backend {
            Backend::Sqlite => "?".to_owned(),
            Backend::Postgres => format!("${}", self.count),
        }
    }

    /// `n` markers separated by commas, for an `IN (…)` list.
    pub fn list(&mut self, n: usize) -> String {
        (0..n).map(|_| self.mark()).collect::<Vec<_>>().join(", ")
    }

    /// `(…), (…)`: `rows` rows of `columns` markers, for a multi-row `VALUES`.
    pub fn rows(&mut self, rows: usize, columns: usize) -> String {
        (0..rows)
            .map(|_| format!("({})", self.list(columns)))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_passwords_only() {
        assert_eq!(
            redact_url("postgres://vigie:s3cret@db:5432/vigie"),
            "postgres://vigie:***@db:5432/vigie"
        );
        assert_eq!(
            redact_url("postgres://vigie@db/vigie"),
            "postgres://vigie@db/vigie"
        );
        assert_eq!(redact_url("sqlite://./data/v.db"), "sqlite://./data/v.db");
    }

    #[test]
    fn markers_per_backend() {
        let mut pg = Marks::new(Backend::Postgres);
        assert_eq!(pg.mark(), "$1");
        assert_eq!(pg.list(2), "$2, $3");
        assert_eq!(pg.rows(2, 2), "($4, $5), ($6, $7)");
        let mut lite = Marks::new(Backend::Sqlite);
        assert_eq!(lite.mark(), "?");
        assert_eq!(lite.rows(2, 2), "(?, ?), (?, ?)");
        assert_eq!(lite.list(0), "");
    }
}
