//! Every statement on `syslog_messages`: the batch insert, the filtered list, and the purges.
//!
//! Written once for both backends (`on_pool!`); statements built at run time only add parameter
//! markers ([`Marks`]), never values.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use sqlx::{AssertSqlSafe, FromRow};
use vigie_core::store::{Backend, Marks, Store, StoreError, StoreTx};
use vigie_core::{on_pool, on_tx};
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

/// A batch's `INSERT`s with their values bound, ready to run, and its block. Built before the
/// transaction begins (and while the previous batch is being written), so that the connection
/// and SQLite's single write lock are held only to run them, not to encode 15 values a message.
pub struct PreparedBatch {
    inserts: Inserts,
    /// `None` for an empty batch.
    block: Option<Block>,
}

enum Inserts {
    Sqlite(Vec<sqlx::query::Query<'static, sqlx::Sqlite, sqlx::sqlite::SqliteArguments>>),
    Postgres(Vec<sqlx::query::Query<'static, sqlx::Postgres, sqlx::postgres::PgArguments>>),
}

/// What a row of `syslog_blocks` says of one stored batch (its id range is read when it is
/// written): the messages' reception times, hosts, severities and facilities. A filtered list
/// reads only the id ranges of the blocks that can hold a match; see
/// `migrations/sqlite-syslog/0002_syslog_blocks.sql` for why there are blocks and no indexes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Block {
    pub received_from: DateTime<Utc>,
    pub received_to: DateTime<Utc>,
    /// The distinct hosts, sorted, each followed by [`HOST_SEPARATOR`] and the list starting with
    /// one; `None` past [`BLOCK_HOSTS_MAX`] hosts or [`BLOCK_HOSTS_MAX_BYTES`] (any host).
    pub hosts: Option<String>,
    /// Bit n: a message of severity n is in the block.
    pub severities: i64,
    /// Bit n: a message of facility n is in the block.
    pub facilities: i64,
}

/// Hosts listed in a block at most, and the list's largest size; the same bounds as the
/// migration that made blocks of the messages stored before.
pub const BLOCK_HOSTS_MAX: usize = 64;
pub const BLOCK_HOSTS_MAX_BYTES: usize = 4096;
/// Between the hosts of a block's list (the unit separator, which no host name holds in practice;
/// one that did would only make its block a candidate more often).
pub const HOST_SEPARATOR: char = '\u{1f}';

impl Block {
    /// The block of `batch`; `None` when it is empty.
    pub fn of(batch: &[SyslogMessage]) -> Option<Block> {
        let first = batch.first()?;
        let mut block = Block {
            received_from: first.received_at,
            received_to: first.received_at,
            hosts: None,
            severities: 0,
            facilities: 0,
        };
        let mut hosts: Option<HashSet<&str>> = Some(HashSet::new());
        let mut listed_bytes = 1;
        for m in batch {
            block.received_from = block.received_from.min(m.received_at);
            block.received_to = block.received_to.max(m.received_at);
            if let Some(s) = m.severity {
                block.severities |= 1 << s.min(62);
            }
            if let Some(f) = m.facility {
                block.facilities |= 1 << f.min(62);
            }
            if let Some(set) = &mut hosts
                && set.insert(m.host.as_str())
            {
                listed_bytes += m.host.len() + 1;
                if set.len() > BLOCK_HOSTS_MAX || listed_bytes > BLOCK_HOSTS_MAX_BYTES {
                    hosts = None;
                }
            }
        }
        block.received_from = vigie_core::time::to_store_precision(block.received_from);
        block.received_to = vigie_core::time::to_store_precision(block.received_to);
        block.hosts = hosts.map(|set| {
            let mut sorted: Vec<&str> = set.into_iter().collect();
            sorted.sort_unstable();
            let mut list = String::with_capacity(listed_bytes);
            list.push(HOST_SEPARATOR);
            for h in sorted {
                list.push_str(h);
                list.push(HOST_SEPARATOR);
            }
            list
        });
        Some(block)
    }
}

/// The texts of a batch, bound as `Arc<str>`: sqlx binds a `String` as a new `Arc<String>` (two
/// allocations a value, both freed on the connection's thread after SQLite copied the text), an
/// `Arc<str>` as it is. Texts that many rows share (hosts, applications, senders, transports)
/// are made once per batch and bound by reference.
#[derive(Default)]
struct BatchTexts<'a> {
    shared: HashMap<&'a str, Arc<str>>,
    senders: HashMap<std::net::SocketAddr, Arc<str>>,
}

/// Distinct texts kept per batch at most (past that, each row gets its own copy).
const SHARED_TEXTS_MAX: usize = 4096;

impl<'a> BatchTexts<'a> {
    /// `text`, shared with the other rows that hold it.
    fn shared(&mut self, text: &'a str) -> Arc<str> {
        if let Some(known) = self.shared.get(text) {
            return known.clone();
        }
        let made: Arc<str> = Arc::from(text);
        if self.shared.len() < SHARED_TEXTS_MAX {
            self.shared.insert(text, made.clone());
        }
        made
    }

    /// The sender's `ip:port`, formatted once per batch.
    fn sender(&mut self, addr: std::net::SocketAddr) -> Arc<str> {
        if let Some(known) = self.senders.get(&addr) {
            return known.clone();
        }
        let made: Arc<str> = Arc::from(addr.to_string());
        if self.senders.len() < SHARED_TEXTS_MAX {
            self.senders.insert(addr, made.clone());
        }
        made
    }
}

/// A text of its own (a message, a line): one allocation.
fn own(text: &str) -> Arc<str> {
    Arc::from(text)
}

/// Binds the messages of `batch` (one multi-row statement per [`chunks`] range) to `$query`,
/// a `sqlx::query` of the backend; written once for both backends.
macro_rules! bound_statements {
    ($backend:expr, $batch:expr, $query:path) => {{
        let batch: &[SyslogMessage] = $batch;
        let mut texts = BatchTexts::default();
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
                        .bind(texts.sender(m.sender))
                        .bind(texts.shared(m.transport.name()))
                        .bind(texts.shared(&m.host))
                        .bind(m.facility.map(i16::from))
                        .bind(m.severity.map(i16::from))
                        .bind(
                            m.timestamp
                                .map(|t| vigie_core::time::to_store_precision(t.to_utc())),
                        )
                        .bind(m.app_name.as_deref().map(|a| texts.shared(a)))
                        .bind(m.proc_id.as_deref().map(own))
                        .bind(m.msg_id.as_deref().map(|id| texts.shared(id)))
                        .bind(structured)
                        .bind(own(&m.message))
                        .bind(own(&m.raw))
                        .bind(texts.shared(m.protocol.name()))
                        .bind(m.truncated);
                }
                q
            })
            .collect()
    }};
}

/// The statements that store `batch`, in order (ids grow with it), and its block.
pub fn prepare_batch(backend: Backend, batch: &[SyslogMessage]) -> PreparedBatch {
    let inserts = match backend {
        Backend::Sqlite => Inserts::Sqlite(bound_statements!(
            backend,
            batch,
            sqlx::query::<sqlx::Sqlite>
        )),
        Backend::Postgres => Inserts::Postgres(bound_statements!(
            backend,
            batch,
            sqlx::query::<sqlx::Postgres>
        )),
    };
    PreparedBatch {
        inserts,
        block: Block::of(batch),
    }
}

/// Runs a prepared batch in one transaction: its messages, then its block, whose ids run from
/// just above the largest id before the batch to the largest after it (every id the batch got,
/// whatever gaps a backend leaves).
pub async fn write_prepared(store: &Store, prepared: PreparedBatch) -> Result<(), StoreError> {
    let Some(block) = prepared.block else {
        return Ok(());
    };
    let mut tx = store.begin().await?;
    let before: Option<i64> = on_tx!(&mut tx, conn => sqlx::query_scalar(
        "SELECT MAX(id) FROM syslog_messages",
    )
    .fetch_one(conn)
    .await)?;
    if before.is_none() {
        // An empty table may give ids from 1 again: no block from before may remain.
        on_tx!(&mut tx, conn => sqlx::query("DELETE FROM syslog_blocks")
            .execute(conn)
            .await
            .map(drop))?;
    }
    match (&mut tx, prepared.inserts) {
        (StoreTx::Sqlite(t, _), Inserts::Sqlite(statements)) => {
            for q in statements {
                q.execute(&mut **t).await?;
            }
        }
        (StoreTx::Postgres(t), Inserts::Postgres(statements)) => {
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
    on_tx!(&mut tx, conn => sqlx::query(
        "INSERT INTO syslog_blocks \
             (first_id, last_id, received_from, received_to, hosts, severities, facilities) \
         SELECT $1, MAX(id), $2, $3, $4, $5, $6 FROM syslog_messages",
    )
    .bind(before.unwrap_or(0) + 1)
    .bind(block.received_from)
    .bind(block.received_to)
    .bind(block.hosts)
    .bind(block.severities)
    .bind(block.facilities)
    .execute(conn)
    .await
    .map(drop))?;
    tx.commit().await
}

/// Stores a batch in one transaction, multi-row `INSERT`s, in the order given (ids grow with it).
pub async fn insert_batch(store: &Store, batch: &[SyslogMessage]) -> Result<(), StoreError> {
    write_prepared(store, prepare_batch(store.backend(), batch)).await
}

/// Values bound to a dynamically built `WHERE`.
enum Param {
    Text(String),
    Int(i64),
    Time(DateTime<Utc>),
}

/// A `WHERE` built at run time: clauses with the backend's parameter markers, and their values
/// in order. Values are never written into the text.
struct Where {
    marks: Marks,
    clauses: Vec<String>,
    params: Vec<Param>,
}

impl Where {
    fn new(backend: Backend) -> Where {
        Where {
            marks: Marks::new(backend),
            clauses: Vec::new(),
            params: Vec::new(),
        }
    }

    /// Adds `clause(marker)` and its value.
    fn add(&mut self, clause: impl FnOnce(&str) -> String, value: Param) {
        let mark = self.marks.mark();
        self.clauses.push(clause(&mark));
        self.params.push(value);
    }

    fn sql(&self) -> String {
        if self.clauses.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", self.clauses.join(" AND "))
        }
    }
}

/// Binds a [`Where`]'s values to `$query`, in order.
macro_rules! bind_params {
    ($query:expr, $params:expr) => {{
        let mut q = $query;
        for p in $params {
            q = match p {
                Param::Text(s) => q.bind(s),
                Param::Int(n) => q.bind(n),
                Param::Time(t) => q.bind(t),
            };
        }
        q
    }};
}

/// Blocks read at a time by a filtered list: first a few (a common host fills the page from the
/// newest ones), then more at each step (a rare one is spread thin).
const BLOCKS_FIRST_STEP: i64 = 8;
const BLOCKS_MAX_STEP: i64 = 1024;

/// Messages matching `filter`, newest first (by id: the order of reception).
///
/// A filter on the host, severity, facility or reception time first reads which blocks (one per
/// stored batch, see [`Block`]) can hold a match, newest first, and then only their id ranges
/// (adjacent blocks read together), until the page is full. Other filters (text, application)
/// read the messages newest first, bounded by the page size.
pub async fn list(store: &Store, filter: &LogFilter) -> Result<Vec<StoredMessage>, StoreError> {
    let limit = filter.limit as usize;
    if !narrows_blocks(filter) {
        return messages_in(store, filter, None, limit).await;
    }
    let mut found = Vec::new();
    let mut below = filter.before;
    let mut step = BLOCKS_FIRST_STEP;
    while found.len() < limit {
        let blocks = candidate_blocks(store, filter, below, step).await?;
        for range in adjacent_runs(&blocks) {
            let rows = messages_in(store, filter, Some(range), limit - found.len()).await?;
            found.extend(rows);
            if found.len() >= limit {
                break;
            }
        }
        match blocks.last() {
            Some(&(oldest, _)) if (blocks.len() as i64) == step => below = Some(oldest),
            // Fewer than asked: there are no older ones.
            _ => break,
        }
        step = (step * 4).min(BLOCKS_MAX_STEP);
    }
    Ok(found)
}

/// Whether the blocks can rule out part of the table for `filter`.
fn narrows_blocks(filter: &LogFilter) -> bool {
    filter.host.is_some()
        || filter.severity.is_some()
        || filter.facility.is_some()
        || filter.from.is_some()
        || filter.to.is_some()
}

/// The id ranges (`first_id`, `last_id`) of at most `count` blocks that can hold a message
/// matching `filter` with an id below `below`, newest first.
async fn candidate_blocks(
    store: &Store,
    filter: &LogFilter,
    below: Option<i64>,
    count: i64,
) -> Result<Vec<(i64, i64)>, StoreError> {
    let mut w = Where::new(store.backend());
    if let Some(h) = &filter.host {
        let pattern = format!(
            "%{HOST_SEPARATOR}{}{HOST_SEPARATOR}%",
            vigie_core::store::like_escape(h)
        );
        w.add(
            |m| format!("(hosts IS NULL OR hosts LIKE {m} ESCAPE '\\')"),
            Param::Text(pattern),
        );
    }
    if let Some(s) = filter.severity {
        // Severity s or more severe: any of the bits 0..=s.
        let mask = (1_i64 << (u32::from(s.min(62)) + 1)) - 1;
        w.add(|m| format!("(severities & {m}) <> 0"), Param::Int(mask));
    }
    if let Some(f) = filter.facility {
        w.add(
            |m| format!("(facilities & {m}) <> 0"),
            Param::Int(1_i64 << f.min(62)),
        );
    }
    if let Some(t) = filter.from {
        w.add(|m| format!("received_to >= {m}"), Param::Time(t));
    }
    if let Some(t) = filter.to {
        w.add(|m| format!("received_from < {m}"), Param::Time(t));
    }
    if let Some(id) = below {
        w.add(|m| format!("first_id < {m}"), Param::Int(id));
    }
    if let Some(id) = filter.after {
        w.add(|m| format!("last_id > {m}"), Param::Int(id));
    }
    let sql = format!(
        "SELECT first_id, last_id FROM syslog_blocks {} ORDER BY first_id DESC LIMIT {count}",
        w.sql()
    );
    Ok(on_pool!(store, pool => {
        bind_params!(sqlx::query_as::<_, (i64, i64)>(AssertSqlSafe(sql)), w.params)
            .fetch_all(pool)
            .await
    })?)
}

/// Blocks (newest first) merged into runs of consecutive ids, newest first.
fn adjacent_runs(blocks: &[(i64, i64)]) -> Vec<(i64, i64)> {
    let mut runs: Vec<(i64, i64)> = Vec::new();
    for &(first, last) in blocks {
        match runs.last_mut() {
            Some(run) if last.saturating_add(1) == run.0 => run.0 = first,
            _ => runs.push((first, last)),
        }
    }
    runs
}

/// At most `limit` messages matching `filter`, newest first, with ids in `range` when given.
async fn messages_in(
    store: &Store,
    filter: &LogFilter,
    range: Option<(i64, i64)>,
    limit: usize,
) -> Result<Vec<StoredMessage>, StoreError> {
    let mut w = Where::new(store.backend());
    if let Some((first, last)) = range {
        w.add(|m| format!("id >= {m}"), Param::Int(first));
        w.add(|m| format!("id <= {m}"), Param::Int(last));
    }
    if let Some(h) = &filter.host {
        w.add(|m| format!("host = {m}"), Param::Text(h.clone()));
    }
    if let Some(s) = filter.severity {
        w.add(|m| format!("severity <= {m}"), Param::Int(i64::from(s)));
    }
    if let Some(f) = filter.facility {
        w.add(|m| format!("facility = {m}"), Param::Int(i64::from(f)));
    }
    if let Some(a) = &filter.app {
        w.add(|m| format!("app_name = {m}"), Param::Text(a.clone()));
    }
    if let Some(text) = &filter.text {
        let pattern = format!("%{}%", vigie_core::store::like_escape(&text.to_lowercase()));
        w.add(
            |m| format!("LOWER(message) LIKE {m} ESCAPE '\\'"),
            Param::Text(pattern),
        );
    }
    if let Some(t) = filter.from {
        w.add(|m| format!("received_at >= {m}"), Param::Time(t));
    }
    if let Some(t) = filter.to {
        w.add(|m| format!("received_at < {m}"), Param::Time(t));
    }
    if let Some(id) = filter.before {
        w.add(|m| format!("id < {m}"), Param::Int(id));
    }
    if let Some(id) = filter.after {
        w.add(|m| format!("id > {m}"), Param::Int(id));
    }
    let sql = format!(
        "SELECT {SELECT_COLUMNS} FROM syslog_messages {} ORDER BY id DESC LIMIT {limit}",
        w.sql()
    );
    let rows = on_pool!(store, pool => {
        bind_params!(sqlx::query_as::<_, Row>(AssertSqlSafe(sql)), w.params)
            .fetch_all(pool)
            .await
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

/// What a row costs besides its texts: the times, numbers and row header (the indexes gave way
/// to one block row per batch, a byte or two a message). An estimate; the point is a stable bound.
pub const ROW_OVERHEAD: i64 = 100;

/// Deletes at most `chunk` of the oldest messages received before `cutoff`, and the blocks left
/// empty, in one transaction; how many messages went. Only the blocks that began before the
/// cutoff can hold such messages: the scan ends with them.
pub async fn delete_received_before(
    store: &Store,
    cutoff: DateTime<Utc>,
    chunk: i64,
) -> Result<u64, StoreError> {
    let mut tx = store.begin().await?;
    let deleted = on_tx!(&mut tx, conn => sqlx::query(
        "DELETE FROM syslog_messages WHERE id IN \
         (SELECT id FROM syslog_messages \
          WHERE id <= (SELECT MAX(last_id) FROM syslog_blocks WHERE received_from < $1) \
            AND received_at < $1 \
          ORDER BY id LIMIT $2)",
    )
    .bind(cutoff)
    .bind(chunk)
    .execute(conn)
    .await
    .map(|r| r.rows_affected()))?;
    drop_empty_blocks(&mut tx).await?;
    tx.commit().await?;
    Ok(deleted)
}

/// Deletes the messages whose id is below `bound` (the oldest ones) and the blocks left empty,
/// in one transaction; how many messages went.
pub async fn delete_ids_below(store: &Store, bound: i64) -> Result<u64, StoreError> {
    let mut tx = store.begin().await?;
    let deleted = on_tx!(&mut tx, conn => sqlx::query(
        "DELETE FROM syslog_messages WHERE id < $1",
    )
    .bind(bound)
    .execute(conn)
    .await
    .map(|r| r.rows_affected()))?;
    drop_empty_blocks(&mut tx).await?;
    tx.commit().await?;
    Ok(deleted)
}

/// Deletes the blocks whose ids are all below the oldest message (every block when there is
/// none left: SQLite may then give the next message id 1 again).
async fn drop_empty_blocks(tx: &mut StoreTx) -> Result<(), StoreError> {
    on_tx!(tx, conn => sqlx::query(
        "DELETE FROM syslog_blocks WHERE last_id < \
         (SELECT COALESCE(MIN(id), 9223372036854775807) FROM syslog_messages)",
    )
    .execute(conn)
    .await
    .map(drop))?;
    Ok(())
}

/// The statement that makes blocks of 1024 ids for every message of `schema`'s table (`main`,
/// or an attached file), whose blocks were deleted first: after messages were moved in from
/// elsewhere. SQLite dialect, the statement of `migrations/sqlite-syslog/0002_syslog_blocks.sql`
/// with this module's host bounds.
pub(crate) fn sqlite_all_blocks(schema: &str) -> String {
    format!(
        "WITH host_lists AS ( \
             SELECT k, COUNT(*) AS n, group_concat(host, char(31)) AS list \
             FROM (SELECT DISTINCT id / 1024 AS k, host FROM {schema}.syslog_messages) \
             GROUP BY k) \
         INSERT INTO {schema}.syslog_blocks \
             (first_id, last_id, received_from, received_to, hosts, severities, facilities) \
         SELECT MIN(m.id), MAX(m.id), MIN(m.received_at), MAX(m.received_at), \
                CASE WHEN l.n <= {BLOCK_HOSTS_MAX} AND length(l.list) <= {BLOCK_HOSTS_MAX_BYTES} \
                     THEN char(31) || l.list || char(31) END, \
                COALESCE(SUM(DISTINCT 1 << m.severity), 0), \
                COALESCE(SUM(DISTINCT 1 << m.facility), 0) \
         FROM {schema}.syslog_messages AS m JOIN host_lists AS l ON l.k = m.id / 1024 \
         GROUP BY m.id / 1024, l.n, l.list"
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use vigie_syslog::parse::{Origin, ParseOptions, Transport, parse};

    use super::*;

    fn received(line: &str, seconds: i64) -> SyslogMessage {
        let origin = Origin {
            sender: "192.0.2.1:514".parse().unwrap(),
            transport: Transport::Tcp,
            received_at: DateTime::from_timestamp(1_800_000_000 + seconds, 1500).unwrap(),
        };
        parse(line.as_bytes(), false, origin, &ParseOptions::default())
    }

    #[test]
    fn a_block_says_what_its_batch_holds() {
        let batch = [
            received("<34>Oct 11 22:14:15 sw-b su: failed", 5),
            received("<13>Oct 11 22:14:15 rtr-a app: up", 2),
            received("<190>Oct 11 22:14:15 sw-b app: noise", 9),
            received("no header", 4),
        ];
        let block = Block::of(&batch).unwrap();
        assert_eq!(block.received_from.timestamp(), 1_800_000_002);
        assert_eq!(block.received_to.timestamp(), 1_800_000_009);
        assert_eq!(
            block.received_from,
            vigie_core::time::to_store_precision(block.received_from),
            "compared with stored times"
        );
        // Sorted, each once, the sender's address for the message without a header.
        assert_eq!(
            block.hosts.as_deref(),
            Some("\u{1f}192.0.2.1\u{1f}rtr-a\u{1f}sw-b\u{1f}")
        );
        // Severities 2, 5 and 6 (and the header-less message's default); facilities 4, 1, 23.
        let parsed: i64 = batch
            .iter()
            .filter_map(|m| m.severity)
            .fold(0, |bits, s| bits | 1 << s);
        assert_eq!(block.severities, parsed);
        assert_ne!(block.severities & (1 << 2 | 1 << 5 | 1 << 6), 0);
        assert_eq!(
            block.facilities & (1 << 4 | 1 << 1 | 1 << 23),
            1 << 4 | 1 << 1 | 1 << 23
        );
        assert_eq!(Block::of(&[]), None);
    }

    #[test]
    fn too_many_hosts_make_a_block_that_may_hold_any() {
        let many: Vec<_> = (0..=BLOCK_HOSTS_MAX)
            .map(|n| received(&format!("<13>Oct 11 22:14:15 h{n} app: x"), 0))
            .collect();
        assert_eq!(Block::of(&many).unwrap().hosts, None);
        assert!(
            Block::of(&many[1..]).unwrap().hosts.is_some(),
            "64 are listed"
        );
        let long = "x".repeat(200);
        let wide: Vec<_> = (0..30)
            .map(|n| received(&format!("<13>Oct 11 22:14:15 {long}{n} app: x"), 0))
            .collect();
        assert_eq!(Block::of(&wide).unwrap().hosts, None, "past 4096 bytes");
    }

    #[test]
    fn adjacent_blocks_are_read_together() {
        assert_eq!(
            adjacent_runs(&[(21, 30), (11, 20), (1, 5), (-3, 0)]),
            [(11, 30), (-3, 5)]
        );
        assert_eq!(adjacent_runs(&[(30, 30), (10, 20)]), [(30, 30), (10, 20)]);
        assert!(adjacent_runs(&[]).is_empty());
    }

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
