//! Every statement on `syslog_messages`: the batch insert, the filtered list, and the purges.
//!
//! Written once for both backends (`on_pool!`); statements built at run time only add parameter
//! markers ([`Marks`]), never values.

use std::sync::Mutex;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use sqlx::{AssertSqlSafe, FromRow};
use vigie_core::on_pool;
use vigie_core::store::{Backend, Marks, Store, StoreError, StoreTx};
use vigie_syslog::SyslogMessage;
use vigie_syslog::parse::{facility_name, severity_name};

use crate::filter::LogFilter;

const INSERT_COLUMNS: &str = "received_at, sender, transport, host, facility, severity, timestamp, \
     app_name, proc_id, msg_id, structured_data, message, raw, variant, truncated";
const COLUMNS_PER_ROW: usize = 15;
/// Rows per statement at most: 15 360 parameters, within SQLite's 32 766 and PostgreSQL's 65 535.
const ROWS_PER_STATEMENT: usize = 1024;

const SELECT_COLUMNS: &str = "id, received_at, sender, transport, host, facility, severity, \
     timestamp, app_name, proc_id, msg_id, structured_data, message, raw, variant, truncated";

/// A stored message as the store returns it.
#[derive(Clone, Debug, FromRow)]
struct Row {
    id: i64,
    received_at: DateTime<Utc>,
    sender: String,
    transport: String,
    host: String,
    // SMALLINT on PostgreSQL.
    facility: Option<i16>,
    severity: Option<i16>,
    timestamp: Option<DateTime<Utc>>,
    app_name: Option<String>,
    proc_id: Option<String>,
    msg_id: Option<String>,
    structured_data: Option<String>,
    message: String,
    raw: String,
    variant: String,
    truncated: bool,
}

/// A stored message, as the API answers it and the viewer shows it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct StoredMessage {
    pub id: i64,
    /// When the hub received it.
    pub received_at: DateTime<Utc>,
    /// The peer's address (`ip:port`).
    pub sender: String,
    pub transport: String,
    pub host: String,
    pub facility: Option<i32>,
    pub facility_name: Option<&'static str>,
    pub severity: Option<i32>,
    pub severity_name: Option<&'static str>,
    /// The time the sender gave, in UTC.
    pub timestamp: Option<DateTime<Utc>>,
    pub app_name: Option<String>,
    pub proc_id: Option<String>,
    pub msg_id: Option<String>,
    /// `{ "SD-ID": { "param": "value" } }`, or null.
    pub structured_data: Option<Value>,
    pub message: String,
    pub raw: String,
    /// `rfc3164`, `rfc5424` or `unparsed`.
    pub variant: String,
    pub truncated: bool,
}

impl From<Row> for StoredMessage {
    fn from(r: Row) -> StoredMessage {
        let name = |n: Option<i16>, f: fn(u8) -> Option<&'static str>| {
            n.and_then(|n| u8::try_from(n).ok()).and_then(f)
        };
        StoredMessage {
            id: r.id,
            received_at: r.received_at,
            sender: r.sender,
            transport: r.transport,
            host: r.host,
            facility: r.facility.map(i32::from),
            facility_name: name(r.facility, facility_name),
            severity: r.severity.map(i32::from),
            severity_name: name(r.severity, severity_name),
            timestamp: r.timestamp,
            app_name: r.app_name,
            proc_id: r.proc_id,
            msg_id: r.msg_id,
            structured_data: r
                .structured_data
                .map(|s| serde_json::from_str(&s).unwrap_or(Value::String(s))),
            message: r.message,
            raw: r.raw,
            variant: r.variant,
            truncated: r.truncated,
        }
    }
}

/// Statements of [`ROWS_PER_STATEMENT`] rows, then powers of two (a few cached shapes).
fn chunks(n: usize) -> Vec<std::ops::Range<usize>> {
    vigie_core::store::statement_chunks(n, ROWS_PER_STATEMENT)
}

/// The `INSERT` of `rows` messages. Built once per shape (a few, see [`chunks`]) and kept: with
/// 15 markers a row, building it for every statement showed in the receiver's profile.
fn insert_sql(backend: Backend, rows: usize) -> String {
    static BUILT: Mutex<Vec<(Backend, usize, String)>> = Mutex::new(Vec::new());
    let mut built = BUILT
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some((_, _, sql)) = built.iter().find(|(b, n, _)| *b == backend && *n == rows) {
        return sql.clone();
    }
    let sql = format!(
        "INSERT INTO syslog_messages ({INSERT_COLUMNS}) VALUES {}",
        Marks::new(backend).rows(rows, COLUMNS_PER_ROW)
    );
    // Bounded: chunk sizes are ROWS_PER_STATEMENT and powers of two below it.
    if built.len() < 64 {
        built.push((backend, rows, sql.clone()));
    }
    sql
}

/// A batch's `INSERT`s with their values bound, ready to run. Built before the transaction
/// begins (and while the previous batch is being written), so that the connection and
/// SQLite's single write lock are held only to run them, not to encode 15 values a message.
pub enum PreparedBatch {
    Sqlite(Vec<sqlx::query::Query<'static, sqlx::Sqlite, sqlx::sqlite::SqliteArguments>>),
    Postgres(Vec<sqlx::query::Query<'static, sqlx::Postgres, sqlx::postgres::PgArguments>>),
}

/// Binds the messages of `batch` (one multi-row statement per [`chunks`] range) to `$query`,
/// a `sqlx::query` of the backend; written once for both backends.
macro_rules! bound_statements {
    ($backend:expr, $batch:expr, $query:path) => {{
        let batch: &[SyslogMessage] = $batch;
        chunks(batch.len())
            .into_iter()
            .map(|range| {
                let mut q = $query(AssertSqlSafe(insert_sql($backend, range.len())));
                for m in &batch[range] {
                    let structured = (!m.structured_data.is_empty())
                        .then(|| serde_json::to_string(&m.structured_data).ok())
                        .flatten();
                    q = q
                        .bind(vigie_core::time::to_store_precision(m.received_at))
                        .bind(m.sender.to_string())
                        .bind(m.transport.name())
                        .bind(m.host.clone())
                        .bind(m.facility.map(i16::from))
                        .bind(m.severity.map(i16::from))
                        .bind(
                            m.timestamp
                                .map(|t| vigie_core::time::to_store_precision(t.to_utc())),
                        )
                        .bind(m.app_name.clone())
                        .bind(m.proc_id.clone())
                        .bind(m.msg_id.clone())
                        .bind(structured)
                        .bind(m.message.clone())
                        .bind(m.raw.clone())
                        .bind(m.protocol.name())
                        .bind(m.truncated);
                }
                q
            })
            .collect()
    }};
}

/// The statements that store `batch`, in order (ids grow with it).
pub fn prepare_batch(backend: Backend, batch: &[SyslogMessage]) -> PreparedBatch {
    match backend {
        Backend::Sqlite => PreparedBatch::Sqlite(bound_statements!(
            backend,
            batch,
            sqlx::query::<sqlx::Sqlite>
        )),
        Backend::Postgres => PreparedBatch::Postgres(bound_statements!(
            backend,
            batch,
            sqlx::query::<sqlx::Postgres>
        )),
    }
}

/// Runs a prepared batch in one transaction.
pub async fn write_prepared(store: &Store, prepared: PreparedBatch) -> Result<(), StoreError> {
    let mut tx = store.begin().await?;
    match (&mut tx, prepared) {
        (StoreTx::Sqlite(t, _), PreparedBatch::Sqlite(statements)) => {
            for q in statements {
                q.execute(&mut **t).await?;
            }
        }
        (StoreTx::Postgres(t), PreparedBatch::Postgres(statements)) => {
            for q in statements {
                q.execute(&mut **t).await?;
            }
        }
        _ => {
            return Err(StoreError::Query(sqlx::Error::Protocol(
                "a syslog batch prepared for the other backend".into(),
            )));
        }
    }
    tx.commit().await
}

/// Stores a batch in one transaction, multi-row `INSERT`s, in the order given (ids grow with it).
pub async fn insert_batch(store: &Store, batch: &[SyslogMessage]) -> Result<(), StoreError> {
    if batch.is_empty() {
        return Ok(());
    }
    write_prepared(store, prepare_batch(store.backend(), batch)).await
}

/// Values bound to a dynamically built `WHERE`.
enum Param {
    Text(String),
    Int(i64),
    Time(DateTime<Utc>),
}

/// Messages matching `filter`, newest first (by id: the order of reception).
pub async fn list(store: &Store, filter: &LogFilter) -> Result<Vec<StoredMessage>, StoreError> {
    let mut marks = Marks::new(store.backend());
    let mut clauses: Vec<String> = Vec::new();
    let mut params: Vec<Param> = Vec::new();
    let mut add = |clause: &dyn Fn(&str) -> String, p: Param| {
        clauses.push(clause(&marks.mark()));
        params.push(p);
    };
    if let Some(h) = &filter.host {
        add(&|m| format!("host = {m}"), Param::Text(h.clone()));
    }
    if let Some(s) = filter.severity {
        add(&|m| format!("severity <= {m}"), Param::Int(i64::from(s)));
    }
    if let Some(f) = filter.facility {
        add(&|m| format!("facility = {m}"), Param::Int(i64::from(f)));
    }
    if let Some(a) = &filter.app {
        add(&|m| format!("app_name = {m}"), Param::Text(a.clone()));
    }
    if let Some(text) = &filter.text {
        let pattern = format!("%{}%", vigie_core::store::like_escape(&text.to_lowercase()));
        add(
            &|m| format!("LOWER(message) LIKE {m} ESCAPE '\\'"),
            Param::Text(pattern),
        );
    }
    if let Some(t) = filter.from {
        add(&|m| format!("received_at >= {m}"), Param::Time(t));
    }
    if let Some(t) = filter.to {
        add(&|m| format!("received_at < {m}"), Param::Time(t));
    }
    if let Some(id) = filter.before {
        add(&|m| format!("id < {m}"), Param::Int(id));
    }
    if let Some(id) = filter.after {
        add(&|m| format!("id > {m}"), Param::Int(id));
    }
    let where_clause = if clauses.is_empty() {
        String::new()
    } else {
        format!("WHERE {}", clauses.join(" AND "))
    };
    let sql = format!(
        "SELECT {SELECT_COLUMNS} FROM syslog_messages {where_clause} ORDER BY id DESC LIMIT {}",
        filter.limit
    );
    let rows = on_pool!(store, pool => {
        let mut q = sqlx::query_as::<_, Row>(AssertSqlSafe(sql));
        for p in params {
            q = match p {
                Param::Text(s) => q.bind(s),
                Param::Int(n) => q.bind(n),
                Param::Time(t) => q.bind(t),
            };
        }
        q.fetch_all(pool).await
    })?;
    Ok(rows.into_iter().map(StoredMessage::from).collect())
}

/// The smallest and largest id: the table only loses rows at its old end, so `max − min + 1`
/// is its row count (up to the ids a failed PostgreSQL transaction skipped), read from the
/// primary key without counting.
pub async fn id_range(store: &Store) -> Result<Option<(i64, i64)>, StoreError> {
    let (min, max): (Option<i64>, Option<i64>) = on_pool!(store, pool => sqlx::query_as(
        "SELECT MIN(id), MAX(id) FROM syslog_messages",
    )
    .fetch_one(pool)
    .await)?;
    Ok(min.zip(max))
}

/// The exact number of rows (a full count: for tests and small tables).
pub async fn count(store: &Store) -> Result<i64, StoreError> {
    Ok(on_pool!(store, pool => sqlx::query_scalar(
        "SELECT COUNT(*) FROM syslog_messages",
    )
    .fetch_one(pool)
    .await)?)
}

/// The average size of a row in bytes, from the newest `sample` rows: its texts plus
/// [`ROW_OVERHEAD`]. `None` on an empty table.
pub async fn average_row_bytes(store: &Store, sample: i64) -> Result<Option<i64>, StoreError> {
    let avg: Option<i64> = on_pool!(store, pool => sqlx::query_scalar(
        "SELECT CAST(AVG(octet_length(raw) + octet_length(message) + octet_length(host) \
             + octet_length(sender) + COALESCE(octet_length(structured_data), 0) \
             + COALESCE(octet_length(app_name), 0) + COALESCE(octet_length(proc_id), 0) \
             + COALESCE(octet_length(msg_id), 0)) AS BIGINT) \
         FROM (SELECT raw, message, host, sender, structured_data, app_name, proc_id, msg_id \
               FROM syslog_messages ORDER BY id DESC LIMIT $1) AS newest",
    )
    .bind(sample)
    .fetch_one(pool)
    .await)?;
    Ok(avg.map(|a| a + ROW_OVERHEAD))
}

/// What a row costs besides its texts: the times, numbers and row header, and its entries in
/// the three indexes (host repeated in one). An estimate; the point is a stable bound.
pub const ROW_OVERHEAD: i64 = 120;

/// Deletes at most `chunk` of the oldest messages received before `cutoff`; how many went.
pub async fn delete_received_before(
    store: &Store,
    cutoff: DateTime<Utc>,
    chunk: i64,
) -> Result<u64, StoreError> {
    Ok(on_pool!(store, pool => sqlx::query(
        "DELETE FROM syslog_messages WHERE id IN \
         (SELECT id FROM syslog_messages WHERE received_at < $1 ORDER BY received_at LIMIT $2)",
    )
    .bind(cutoff)
    .bind(chunk)
    .execute(pool)
    .await
    .map(|r| r.rows_affected()))?)
}

/// Deletes the messages whose id is below `bound` (the oldest ones); how many went.
pub async fn delete_ids_below(store: &Store, bound: i64) -> Result<u64, StoreError> {
    Ok(on_pool!(store, pool => sqlx::query(
        "DELETE FROM syslog_messages WHERE id < $1",
    )
    .bind(bound)
    .execute(pool)
    .await
    .map(|r| r.rows_affected()))?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_come_in_few_shapes() {
        let sizes = |n| chunks(n).into_iter().map(|r| r.len()).collect::<Vec<_>>();
        assert_eq!(sizes(0), Vec::<usize>::new());
        assert_eq!(sizes(1), [1]);
        assert_eq!(sizes(700), [512, 128, 32, 16, 8, 4]);
        assert_eq!(sizes(2500), [1024, 1024, 256, 128, 64, 4]);
        assert_eq!(chunks(2500).last().map(|r| r.end), Some(2500));
    }

    #[test]
    fn like_wildcards_are_literal() {
        assert_eq!(vigie_core::store::like_escape("50%_a\\b"), "50\\%\\_a\\\\b");
    }
}
