//! Where the messages are stored.
//!
//! On SQLite, in a database file of their own next to the hub's (`vigie.db` →
//! `vigie-syslog.db`). SQLite lets one writer at a time into a file: in the hub's file, the
//! storer's batches and the alerts' writer took turns on one write lock, each idle while the
//! other held it. In two files they write at the same time on two cores (measured in
//! docs/syslog.md). The messages never join the hub's tables in a query, so nothing is lost by
//! the split. Messages stored by an earlier version in the hub's file are moved at start.
//!
//! On PostgreSQL, the hub's database: its writers do not exclude each other.

use sqlx::Connection;
use sqlx::sqlite::SqliteConnection;
use vigie_core::store::{Store, StoreError};

/// The table's migrations in the messages' own SQLite file.
static SQLITE_MIGRATIONS: sqlx::migrate::Migrator =
    sqlx::migrate!("../../migrations/sqlite-syslog");

/// The file's name next to the hub's: `{stem}-syslog.{ext}`.
const FILE_SUFFIX: &str = "syslog";

/// The store the messages live in; the log viewer and the API read it.
#[derive(Clone, Debug)]
pub struct MessagesStore(Store);

impl MessagesStore {
    /// The messages in `store` itself (PostgreSQL; tests that need one database only).
    pub fn shared(store: Store) -> MessagesStore {
        MessagesStore(store)
    }

    /// Opens the messages' store for the hub's `hub`: on SQLite, the file next to the hub's,
    /// migrated, with the messages an earlier version kept in the hub's file moved into it.
    pub async fn open(hub: &Store) -> Result<MessagesStore, StoreError> {
        let Some(own) = hub.sqlite_sibling(FILE_SUFFIX).await? else {
            return Ok(MessagesStore(hub.clone()));
        };
        if let Store::Sqlite(pool, _) = &own {
            SQLITE_MIGRATIONS.run(pool).await?;
        }
        move_from_hub(hub, &own).await?;
        Ok(MessagesStore(own))
    }

    pub fn store(&self) -> &Store {
        &self.0
    }
}

/// The columns of a block.
const COLUMNS: &str = "received_from, received_to, hosts, severities, facilities, bytes, messages";

/// Moves the blocks of the hub file's `syslog_blocks` (where versions before the split kept the
/// messages) into the messages' file, in their order. Each keeps its ids when no block of the
/// file holds any of them; a block whose ids hold the same messages already (a stop between the
/// copy and the delete: the two files commit separately) is not copied again; a block whose ids
/// are taken by other messages (an older version run again after the split) gets new ids after
/// the others, so nothing is dropped.
async fn move_from_hub(hub: &Store, own: &Store) -> Result<(), StoreError> {
    let (Store::Sqlite(hub_pool, _), Some(target)) = (hub, own.sqlite_file()) else {
        return Ok(());
    };
    let waiting: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM syslog_blocks)")
        .fetch_one(hub_pool)
        .await?;
    if !waiting {
        return Ok(());
    }
    // A connection of its own: the attachment must not stay on a pooled one.
    let mut conn = SqliteConnection::connect_with(&hub_pool.connect_options()).await?;
    sqlx::query("ATTACH DATABASE $1 AS messages_file")
        .bind(target.to_string_lossy().into_owned())
        .execute(&mut conn)
        .await?;
    let mut tx = conn.begin_with("BEGIN IMMEDIATE").await?;
    // Each block of the hub's file: its ids, whether the file holds it already, whether the
    // file's block that could overlap it (the last one starting at or before its last id) does.
    let blocks: Vec<(i64, i64, bool, bool)> = sqlx::query_as(
        "SELECT h.first_id, h.last_id, \
                EXISTS (SELECT 1 FROM messages_file.syslog_blocks AS o \
                        WHERE o.first_id = h.first_id AND o.last_id = h.last_id \
                          AND o.messages = h.messages), \
                COALESCE((SELECT o.last_id FROM messages_file.syslog_blocks AS o \
                          WHERE o.first_id <= h.last_id \
                          ORDER BY o.first_id DESC LIMIT 1) >= h.first_id, FALSE) \
         FROM main.syslog_blocks AS h ORDER BY h.first_id",
    )
    .fetch_all(&mut *tx)
    .await?;
    let copy = format!(
        "INSERT INTO messages_file.syslog_blocks (first_id, last_id, {COLUMNS}) \
         SELECT $1, $1 + last_id - first_id, {COLUMNS} FROM main.syslog_blocks WHERE first_id = $2"
    );
    let mut moved = 0;
    // First those whose ids are free (they overlap neither the file's blocks nor each other)...
    for &(first, last, _, taken) in &blocks {
        if !taken {
            sqlx::query(sqlx::AssertSqlSafe(copy.as_str()))
                .bind(first)
                .bind(first)
                .execute(&mut *tx)
                .await?;
            moved += last - first + 1;
        }
    }
    // ...then the others, after everything the file holds.
    for &(first, last, same, taken) in &blocks {
        if taken && !same {
            let (block, purged): (Option<i64>, i64) = sqlx::query_as(
                "SELECT (SELECT last_id FROM messages_file.syslog_blocks \
                         ORDER BY first_id DESC LIMIT 1), \
                        (SELECT last_id FROM messages_file.syslog_last_purged)",
            )
            .fetch_one(&mut *tx)
            .await?;
            sqlx::query(sqlx::AssertSqlSafe(copy.as_str()))
                .bind(block.unwrap_or(0).max(purged) + 1)
                .bind(first)
                .execute(&mut *tx)
                .await?;
            moved += last - first + 1;
        }
    }
    sqlx::query("DELETE FROM main.syslog_blocks")
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    sqlx::query("DETACH DATABASE messages_file")
        .execute(&mut conn)
        .await?;
    conn.close().await?;
    tracing::info!(
        moved,
        file = %target.display(),
        "Syslog messages moved from the hub's database file into their own."
    );
    Ok(())
}
