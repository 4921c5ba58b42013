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

/// Columns copied from the hub's table, the id apart.
const COLUMNS: &str = "received_at, sender, transport, host, facility, severity, timestamp, \
     app_name, proc_id, msg_id, structured_data, message, raw, variant, truncated";

/// Moves the rows of the hub file's `syslog_messages` (where versions before the split kept
/// them) into the messages' file, in their order. Each keeps its id when the id is free there; a
/// row whose id holds the same message already (a stop between the copy and the delete: the two
/// files commit separately) is not copied again; a row whose id holds another message (an older
/// version run again after the split) gets a new id after the others, so nothing is dropped.
async fn move_from_hub(hub: &Store, own: &Store) -> Result<(), StoreError> {
    let (Store::Sqlite(hub_pool, _), Some(target)) = (hub, own.sqlite_file()) else {
        return Ok(());
    };
    let waiting: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM syslog_messages)")
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
    let kept_ids = sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO messages_file.syslog_messages (id, {COLUMNS}) \
         SELECT id, {COLUMNS} FROM main.syslog_messages AS h \
         WHERE NOT EXISTS (SELECT 1 FROM messages_file.syslog_messages AS o WHERE o.id = h.id) \
         ORDER BY id"
    )))
    .execute(&mut *tx)
    .await?
    .rows_affected();
    let new_ids = sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO messages_file.syslog_messages ({COLUMNS}) \
         SELECT {COLUMNS} FROM main.syslog_messages AS h \
         WHERE EXISTS (SELECT 1 FROM messages_file.syslog_messages AS o WHERE o.id = h.id \
                       AND NOT (o.received_at = h.received_at AND o.sender = h.sender \
                                AND o.raw = h.raw)) \
         ORDER BY id"
    )))
    .execute(&mut *tx)
    .await?
    .rows_affected();
    let moved = kept_ids + new_ids;
    // Kept ids may fall inside existing blocks: the blocks are made again for the whole table.
    sqlx::query("DELETE FROM messages_file.syslog_blocks")
        .execute(&mut *tx)
        .await?;
    sqlx::query(sqlx::AssertSqlSafe(crate::repo::sqlite_all_blocks(
        "messages_file",
    )))
    .execute(&mut *tx)
    .await?;
    sqlx::query("DELETE FROM main.syslog_messages")
        .execute(&mut *tx)
        .await?;
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
