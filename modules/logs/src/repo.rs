//! Every statement on the stored syslog messages: the batch insert, the filtered list, the
//! purges.
//!
//! A stored batch is one row of `syslog_blocks`: what it holds (its id range, reception times,
//! hosts, severities, facilities, size) and its messages as one JSON array, a positional array
//! per message ([`Entry`]; `migrations/sqlite-syslog/0003_syslog_block_messages.sql` says why).
//! Ids are implicit: the n-th message of a block (from 0) has the id `first_id + n`, so the ids
//! of a block are dense and a block's id range never overlaps another's. A list reads the blocks
//! that can hold a match, newest first, and filters their messages here; a purge deletes whole
//! blocks and trims the oldest messages off the block it cuts through. The view
//! `syslog_messages` shows one row per message for whoever queries the database by hand.
//!
//! Written once for both backends (`on_pool!`, `on_tx!`); statements built at run time only add
//! parameter markers ([`Marks`]), never values.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::fmt;
use std::net::SocketAddr;

use chrono::{DateTime, Datelike as _, Timelike as _, Utc};
use serde::ser::SerializeTuple as _;
use serde::{Deserialize, Serialize, Serializer};
use serde_json::{Map, Value};
use sqlx::AssertSqlSafe;
use vigie_core::store::{Backend, Marks, Store, StoreError, StoreTx};
use vigie_core::{on_pool, on_tx};
use vigie_syslog::SyslogMessage;
use vigie_syslog::parse::{facility_name, severity_name};

use crate::filter::LogFilter;

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

/// One message of a block's JSON array, as read back: an array of 15 values in this order (the
/// columns of the view `syslog_messages`). Times are RFC 3339 texts in UTC; the message is a
/// number when it is the end of the line ([`MessageText`]). Texts borrow from the
/// array where JSON needs no unescaping: a list reads whole blocks and keeps few of their messages.
#[derive(Debug, Deserialize)]
struct Entry<'a> {
    #[serde(borrow)]
    received_at: Cow<'a, str>,
    #[serde(borrow)]
    sender: Cow<'a, str>,
    #[serde(borrow)]
    transport: Cow<'a, str>,
    #[serde(borrow)]
    host: Cow<'a, str>,
    facility: Option<u8>,
    severity: Option<u8>,
    #[serde(borrow)]
    timestamp: Option<Cow<'a, str>>,
    #[serde(borrow)]
    app_name: Option<Cow<'a, str>>,
    #[serde(borrow)]
    proc_id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    msg_id: Option<Cow<'a, str>>,
    structured_data: Option<Value>,
    #[serde(borrow)]
    message: MessageText<'a>,
    #[serde(borrow)]
    raw: Cow<'a, str>,
    #[serde(borrow)]
    variant: Cow<'a, str>,
    truncated: bool,
}

/// A message's text as an entry holds it: where it starts in the entry's `raw` when it is the
/// end of the line (most messages: written, escaped and searched once instead of twice), else
/// the text itself.
#[derive(Debug)]
enum MessageText<'a> {
    EndOfRaw(usize),
    Own(Cow<'a, str>),
}

impl<'a> MessageText<'a> {
    /// How `message` is written beside `raw`.
    fn of(raw: &str, message: &'a str) -> MessageText<'a> {
        if raw.ends_with(message) {
            MessageText::EndOfRaw(raw.len() - message.len())
        } else {
            MessageText::Own(Cow::Borrowed(message))
        }
    }

    /// The text, beside `raw`; `None` when the offset does not fall on a character of it.
    fn text<'b>(&'b self, raw: &'b str) -> Option<&'b str> {
        match self {
            MessageText::EndOfRaw(start) => raw.get(*start..),
            MessageText::Own(text) => Some(text),
        }
    }

    fn borrowed(&self) -> MessageText<'_> {
        match self {
            MessageText::EndOfRaw(start) => MessageText::EndOfRaw(*start),
            MessageText::Own(text) => MessageText::Own(Cow::Borrowed(text)),
        }
    }
}

impl Serialize for MessageText<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            MessageText::EndOfRaw(start) => s.serialize_u64(*start as u64),
            MessageText::Own(text) => s.serialize_str(text),
        }
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for MessageText<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<MessageText<'a>, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = MessageText<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a text or its start in the line")
            }
            fn visit_u64<E: serde::de::Error>(self, start: u64) -> Result<Self::Value, E> {
                usize::try_from(start)
                    .map(MessageText::EndOfRaw)
                    .map_err(E::custom)
            }
            fn visit_borrowed_str<E: serde::de::Error>(
                self,
                text: &'de str,
            ) -> Result<Self::Value, E> {
                Ok(MessageText::Own(Cow::Borrowed(text)))
            }
            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<Self::Value, E> {
                Ok(MessageText::Own(Cow::Owned(text.to_owned())))
            }
        }
        d.deserialize_any(Visit)
    }
}

/// A time as an entry holds it: one of the receiver's, or a stored text kept as it is.
#[derive(Clone, Copy)]
enum Time<'a> {
    At(DateTime<Utc>),
    Text(&'a str),
}

impl Serialize for Time<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Time::At(t) => s.collect_str(&StoreTime(*t)),
            Time::Text(text) => s.serialize_str(text),
        }
    }
}

/// A time written as the store keeps it: RFC 3339 in UTC, to the microsecond, always the same
/// width (`2026-11-21T08:30:00.123456+00:00`). Written field by field: a batch has two a message.
struct StoreTime(DateTime<Utc>);

impl fmt::Display for StoreTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = self.0;
        if !(0..=9999).contains(&t.year()) {
            return f.write_str(&t.to_rfc3339_opts(chrono::SecondsFormat::Micros, false));
        }
        write!(
            f,
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}+00:00",
            t.year(),
            t.month(),
            t.day(),
            t.hour(),
            t.minute(),
            t.second(),
            // A leap second's nanoseconds run past one second.
            (t.nanosecond() / 1000).min(999_999)
        )
    }
}

/// A message as it is written into a block's array (see [`Entry`] for the order).
struct EntryRef<'a> {
    received_at: Time<'a>,
    sender: &'a str,
    transport: &'a str,
    host: &'a str,
    facility: Option<u8>,
    severity: Option<u8>,
    timestamp: Option<Time<'a>>,
    app_name: Option<&'a str>,
    proc_id: Option<&'a str>,
    msg_id: Option<&'a str>,
    structured_data: Option<&'a Map<String, Value>>,
    message: MessageText<'a>,
    raw: &'a str,
    variant: &'a str,
    truncated: bool,
}

impl Serialize for EntryRef<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut t = s.serialize_tuple(15)?;
        t.serialize_element(&self.received_at)?;
        t.serialize_element(self.sender)?;
        t.serialize_element(self.transport)?;
        t.serialize_element(self.host)?;
        t.serialize_element(&self.facility)?;
        t.serialize_element(&self.severity)?;
        t.serialize_element(&self.timestamp)?;
        t.serialize_element(&self.app_name)?;
        t.serialize_element(&self.proc_id)?;
        t.serialize_element(&self.msg_id)?;
        t.serialize_element(&self.structured_data)?;
        t.serialize_element(&self.message)?;
        t.serialize_element(self.raw)?;
        t.serialize_element(self.variant)?;
        t.serialize_element(&self.truncated)?;
        t.end()
    }
}

impl<'a> EntryRef<'a> {
    fn received(m: &'a SyslogMessage, sender: &'a str) -> EntryRef<'a> {
        EntryRef {
            received_at: Time::At(m.received_at),
            sender,
            transport: m.transport.name(),
            host: &m.host,
            facility: m.facility,
            severity: m.severity,
            timestamp: m.timestamp.map(|t| Time::At(t.to_utc())),
            app_name: m.app_name.as_deref(),
            proc_id: m.proc_id.as_deref(),
            msg_id: m.msg_id.as_deref(),
            structured_data: (!m.structured_data.is_empty()).then_some(&m.structured_data),
            message: MessageText::of(&m.raw, &m.message),
            raw: &m.raw,
            variant: m.protocol.name(),
            truncated: m.truncated,
        }
    }

    fn stored(e: &'a Entry<'_>) -> EntryRef<'a> {
        EntryRef {
            received_at: Time::Text(&e.received_at),
            sender: &e.sender,
            transport: &e.transport,
            host: &e.host,
            facility: e.facility,
            severity: e.severity,
            timestamp: e.timestamp.as_deref().map(Time::Text),
            app_name: e.app_name.as_deref(),
            proc_id: e.proc_id.as_deref(),
            msg_id: e.msg_id.as_deref(),
            // Always an object when there is one (written from a map).
            structured_data: e.structured_data.as_ref().and_then(Value::as_object),
            message: e.message.borrowed(),
            raw: &e.raw,
            variant: &e.variant,
            truncated: e.truncated,
        }
    }
}

/// The JSON array of `entries`.
fn array<'a>(
    entries: impl Iterator<Item = EntryRef<'a>>,
    capacity: usize,
) -> Result<String, serde_json::Error> {
    let mut out = Vec::with_capacity(capacity);
    out.push(b'[');
    for (i, entry) in entries.enumerate() {
        if i > 0 {
            out.push(b',');
        }
        serde_json::to_writer(&mut out, &entry)?;
    }
    out.push(b']');
    // serde_json writes UTF-8 only.
    String::from_utf8(out).map_err(|e| serde::ser::Error::custom(e.to_string()))
}

fn parse_time(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text).ok().map(|t| t.to_utc())
}

/// A block that cannot be read back (written by something else than this module).
fn unreadable(first_id: i64, problem: impl fmt::Display) -> StoreError {
    StoreError::Query(sqlx::Error::Decode(
        format!("syslog block {first_id}: {problem}").into(),
    ))
}

impl Entry<'_> {
    fn received_at(&self, first_id: i64) -> Result<DateTime<Utc>, StoreError> {
        parse_time(&self.received_at).ok_or_else(|| {
            unreadable(
                first_id,
                format_args!("reception time `{}`", self.received_at),
            )
        })
    }

    /// The message's text.
    fn message(&self, first_id: i64) -> Result<&str, StoreError> {
        self.message
            .text(&self.raw)
            .ok_or_else(|| unreadable(first_id, "a message's start is not in its line"))
    }

    fn into_stored(self, id: i64, received_at: DateTime<Utc>, message: String) -> StoredMessage {
        let name = |n: Option<u8>, f: fn(u8) -> Option<&'static str>| n.and_then(f);
        StoredMessage {
            id,
            received_at,
            sender: self.sender.into_owned(),
            transport: self.transport.into_owned(),
            host: self.host.into_owned(),
            facility: self.facility.map(i32::from),
            facility_name: name(self.facility, facility_name),
            severity: self.severity.map(i32::from),
            severity_name: name(self.severity, severity_name),
            timestamp: self.timestamp.as_deref().and_then(parse_time),
            app_name: self.app_name.map(Cow::into_owned),
            proc_id: self.proc_id.map(Cow::into_owned),
            msg_id: self.msg_id.map(Cow::into_owned),
            structured_data: self.structured_data,
            message,
            raw: self.raw.into_owned(),
            variant: self.variant.into_owned(),
            truncated: self.truncated,
        }
    }
}

/// The messages of the block that starts at `first_id`, in id order.
fn entries(first_id: i64, messages: &str) -> Result<Vec<Entry<'_>>, StoreError> {
    serde_json::from_str(messages).map_err(|e| unreadable(first_id, e))
}

/// A stored batch: what its messages hold, and the messages (its ids are given when it is
/// written). A filtered list reads only the blocks that can hold a match.
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
    /// How many messages.
    pub count: i64,
    /// The messages, a JSON array of [`Entry`] arrays.
    pub messages: String,
}

/// Hosts listed in a block at most, and the list's largest size; the same bounds as the
/// migrations that made blocks of the messages stored before.
pub const BLOCK_HOSTS_MAX: usize = 64;
pub const BLOCK_HOSTS_MAX_BYTES: usize = 4096;
/// Between the hosts of a block's list (the unit separator, which no host name holds in practice;
/// one that did would only make its block a candidate more often).
pub const HOST_SEPARATOR: char = '\u{1f}';

/// A block's summary, message by message.
struct Summary<'a> {
    times: Option<(DateTime<Utc>, DateTime<Utc>)>,
    hosts: Option<HashSet<&'a str>>,
    listed_bytes: usize,
    severities: i64,
    facilities: i64,
    count: i64,
}

impl<'a> Summary<'a> {
    fn new() -> Summary<'a> {
        Summary {
            times: None,
            hosts: Some(HashSet::new()),
            listed_bytes: 1,
            severities: 0,
            facilities: 0,
            count: 0,
        }
    }

    fn add(
        &mut self,
        at: DateTime<Utc>,
        host: &'a str,
        severity: Option<u8>,
        facility: Option<u8>,
    ) {
        self.count += 1;
        self.times = Some(match self.times {
            Some((from, to)) => (from.min(at), to.max(at)),
            None => (at, at),
        });
        if let Some(s) = severity {
            self.severities |= 1 << s.min(62);
        }
        if let Some(f) = facility {
            self.facilities |= 1 << f.min(62);
        }
        if let Some(set) = &mut self.hosts
            && set.insert(host)
        {
            self.listed_bytes += host.len() + 1;
            if set.len() > BLOCK_HOSTS_MAX || self.listed_bytes > BLOCK_HOSTS_MAX_BYTES {
                self.hosts = None;
            }
        }
    }

    /// The block; `None` when no message was added.
    fn finish(self, messages: String) -> Option<Block> {
        let (from, to) = self.times?;
        let hosts = self.hosts.and_then(host_list);
        Some(Block {
            received_from: vigie_core::time::to_store_precision(from),
            received_to: vigie_core::time::to_store_precision(to),
            hosts,
            severities: self.severities,
            facilities: self.facilities,
            count: self.count,
            messages,
        })
    }
}

/// A block's list of `hosts`: sorted, each followed by [`HOST_SEPARATOR`], the list starting
/// with one; `None` past [`BLOCK_HOSTS_MAX`] hosts or [`BLOCK_HOSTS_MAX_BYTES`].
fn host_list<S: AsRef<str> + Ord>(hosts: impl IntoIterator<Item = S>) -> Option<String> {
    let mut sorted: Vec<S> = hosts.into_iter().collect();
    sorted.sort_unstable();
    let bytes = 1 + sorted.iter().map(|h| h.as_ref().len() + 1).sum::<usize>();
    if sorted.len() > BLOCK_HOSTS_MAX || bytes > BLOCK_HOSTS_MAX_BYTES {
        return None;
    }
    let mut list = String::with_capacity(bytes);
    list.push(HOST_SEPARATOR);
    for h in sorted {
        list.push_str(h.as_ref());
        list.push(HOST_SEPARATOR);
    }
    Some(list)
}

impl Block {
    /// The block of `batch`; `None` when it is empty.
    pub fn of(batch: &[SyslogMessage]) -> Result<Option<Block>, serde_json::Error> {
        let mut summary = Summary::new();
        let mut senders: HashMap<SocketAddr, String> = HashMap::new();
        for m in batch {
            summary.add(m.received_at, &m.host, m.severity, m.facility);
            // A sender's `ip:port` once per batch: most of a batch comes from a few senders.
            senders
                .entry(m.sender)
                .or_insert_with(|| m.sender.to_string());
        }
        let capacity = batch
            .iter()
            .map(|m| m.raw.len() + m.message.len() + m.host.len() + 128)
            .sum::<usize>();
        let messages = array(
            batch.iter().map(|m| {
                let sender = senders.get(&m.sender).map_or("", String::as_str);
                EntryRef::received(m, sender)
            }),
            capacity,
        )?;
        Ok(summary.finish(messages))
    }

    /// The block of stored `entries` (what is left of one after a purge), read from its first
    /// id `first_id`.
    fn of_entries(first_id: i64, entries: &[Entry<'_>]) -> Result<Option<Block>, StoreError> {
        let mut summary = Summary::new();
        for e in entries {
            summary.add(e.received_at(first_id)?, &e.host, e.severity, e.facility);
        }
        let capacity = entries.iter().map(|e| e.raw.len() + 128).sum();
        let messages = array(entries.iter().map(EntryRef::stored), capacity)
            .map_err(|e| unreadable(first_id, e))?;
        Ok(summary.finish(messages))
    }

    /// The size of its messages, in bytes.
    fn bytes(&self) -> i64 {
        self.messages.len() as i64
    }
}

/// Messages in a block at most: a batch of a flood (up to `batch_size`, 8000 by default) is
/// stored as several blocks in its transaction, so that a list reads at most about this many
/// messages more than the page it gives (a page of a common host or of the newest messages is
/// one block read), and a block's summary stays narrow enough to rule it out.
pub const BLOCK_MESSAGES_MAX: usize = 1024;

/// A batch encoded into its blocks before the transaction begins (and while the previous batch
/// is being written), so that the connection and SQLite's single write lock are held only to
/// store them.
pub struct PreparedBatch {
    /// In id order; none for an empty batch.
    blocks: Result<Vec<Block>, serde_json::Error>,
}

/// The blocks of `batch`, ready to be written.
pub fn prepare_batch(batch: &[SyslogMessage]) -> PreparedBatch {
    let blocks = batch
        .chunks(BLOCK_MESSAGES_MAX)
        .filter_map(|part| Block::of(part).transpose())
        .collect();
    PreparedBatch { blocks }
}

/// On PostgreSQL, one writer of blocks at a time: a block's ids follow the last block's, and a
/// purge rewrites the oldest. (SQLite's transactions take its single write lock already.)
async fn lock_blocks(tx: &mut StoreTx) -> Result<(), StoreError> {
    if let StoreTx::Postgres(t) = tx {
        sqlx::query("LOCK TABLE syslog_blocks IN SHARE ROW EXCLUSIVE MODE")
            .execute(&mut **t)
            .await?;
    }
    Ok(())
}

/// The largest id ever given: the last block's, or the last purged when no block is left (ids
/// never start again, so that a live tail's bound stays meaningful).
async fn last_id(tx: &mut StoreTx) -> Result<i64, StoreError> {
    let (block, purged): (Option<i64>, Option<i64>) = on_tx!(tx, conn => sqlx::query_as(
        "SELECT (SELECT last_id FROM syslog_blocks ORDER BY first_id DESC LIMIT 1), \
                (SELECT last_id FROM syslog_last_purged)",
    )
    .fetch_one(conn)
    .await)?;
    Ok(block.max(purged).unwrap_or(0))
}

/// Writes `block` with the ids from `first_id`.
async fn insert_block(tx: &mut StoreTx, first_id: i64, block: Block) -> Result<(), StoreError> {
    let bytes = block.bytes();
    on_tx!(tx, conn => sqlx::query(
        "INSERT INTO syslog_blocks (first_id, last_id, received_from, received_to, hosts, \
             severities, facilities, bytes, messages) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(first_id)
    .bind(first_id + block.count - 1)
    .bind(block.received_from)
    .bind(block.received_to)
    .bind(block.hosts)
    .bind(block.severities)
    .bind(block.facilities)
    .bind(bytes)
    .bind(block.messages)
    .execute(conn)
    .await
    .map(drop))?;
    Ok(())
}

/// Writes a prepared batch in one transaction: its blocks, with the ids after the last ones.
pub async fn write_prepared(store: &Store, prepared: PreparedBatch) -> Result<(), StoreError> {
    let blocks = prepared
        .blocks
        .map_err(|e| StoreError::Query(sqlx::Error::Encode(Box::new(e))))?;
    if blocks.is_empty() {
        return Ok(());
    }
    let mut tx = store.begin().await?;
    lock_blocks(&mut tx).await?;
    let mut first = last_id(&mut tx).await? + 1;
    for block in blocks {
        let count = block.count;
        insert_block(&mut tx, first, block).await?;
        first += count;
    }
    tx.commit().await
}

/// Stores a batch in one transaction, in the order given (ids grow with it).
pub async fn insert_batch(store: &Store, batch: &[SyslogMessage]) -> Result<(), StoreError> {
    write_prepared(store, prepare_batch(batch)).await
}

/// Values bound to a dynamically built `WHERE`.
#[derive(Clone)]
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

/// Blocks read at a time by a list: first a few (a common host fills the page from the newest
/// ones), then more at each step (a rare one is spread thin).
const BLOCKS_FIRST_STEP: i64 = 8;
const BLOCKS_MAX_STEP: i64 = 1024;

/// What a list keeps of a block's messages: `filter`, applied here.
struct Matcher<'a> {
    filter: &'a LogFilter,
    /// The searched text, lowercased.
    needle: Option<String>,
}

impl<'a> Matcher<'a> {
    fn new(filter: &'a LogFilter) -> Matcher<'a> {
        Matcher {
            filter,
            needle: filter.text.as_ref().map(|t| t.to_lowercase()),
        }
    }

    /// Whether a block whose JSON array is `messages` can hold a message whose text holds the
    /// searched one: checked on the whole array at once (a message is in it, or is the end of
    /// its line, which is), lowercased as the messages are. Only
    /// for printable ASCII without a quote or a backslash, which JSON writes as they are (and
    /// whose lowercase never depends on what surrounds it); any other text is looked for
    /// message by message.
    fn may_hold(&self, messages: &str) -> bool {
        match &self.needle {
            Some(n)
                if n.bytes()
                    .all(|b| (b' '..=b'~').contains(&b) && b != b'"' && b != b'\\') =>
            {
                messages.to_lowercase().contains(n.as_str())
            }
            _ => true,
        }
    }

    /// Whether the message `id` is listed, its reception time apart ([`Matcher::received`]).
    fn matches(&self, id: i64, e: &Entry<'_>, message: &str) -> bool {
        let f = self.filter;
        f.before.is_none_or(|b| id < b)
            && f.after.is_none_or(|a| id > a)
            && f.host.as_ref().is_none_or(|h| e.host == h.as_str())
            && f.severity
                .is_none_or(|s| e.severity.is_some_and(|m| m <= s))
            && f.facility.is_none_or(|w| e.facility == Some(w))
            && f.app
                .as_ref()
                .is_none_or(|a| e.app_name.as_deref() == Some(a.as_str()))
            && self
                .needle
                .as_ref()
                .is_none_or(|n| message.to_lowercase().contains(n.as_str()))
    }

    /// Whether a message received at `at` is within the time range.
    fn received(&self, at: DateTime<Utc>) -> bool {
        self.filter.from.is_none_or(|t| at >= t) && self.filter.to.is_none_or(|t| at < t)
    }
}

/// Messages matching `filter`, newest first (by id: the order of reception).
///
/// Reads which blocks can hold a match (by host, severity, facility, reception time and id),
/// newest first, then their messages, until the page is full. The text and the application are
/// looked for in the messages themselves.
pub async fn list(store: &Store, filter: &LogFilter) -> Result<Vec<StoredMessage>, StoreError> {
    let limit = filter.limit as usize;
    let matcher = Matcher::new(filter);
    let mut found = Vec::new();
    let mut below = filter.before;
    let mut step = BLOCKS_FIRST_STEP;
    while found.len() < limit {
        let blocks = candidate_blocks(store, filter, below, step).await?;
        for &first in &blocks {
            // Gone (purged, or trimmed to a new first id) since the candidates were read.
            let Some(messages) = block_messages(store, first).await? else {
                continue;
            };
            if !matcher.may_hold(&messages) {
                continue;
            }
            let entries = entries(first, &messages)?;
            for (n, e) in entries.into_iter().enumerate().rev() {
                let id = first + n as i64;
                let message = e.message(first)?;
                if !matcher.matches(id, &e, message) {
                    continue;
                }
                let at = e.received_at(first)?;
                if matcher.received(at) {
                    let message = message.to_owned();
                    found.push(e.into_stored(id, at, message));
                    if found.len() >= limit {
                        return Ok(found);
                    }
                }
            }
        }
        match blocks.last() {
            Some(&oldest) if (blocks.len() as i64) == step => below = Some(oldest),
            // Fewer than asked: there are no older ones.
            _ => break,
        }
        step = (step * 4).min(BLOCKS_MAX_STEP);
    }
    Ok(found)
}

/// The first ids of at most `count` blocks that can hold a message matching `filter` with an id
/// below `below`, newest first.
async fn candidate_blocks(
    store: &Store,
    filter: &LogFilter,
    below: Option<i64>,
    count: i64,
) -> Result<Vec<i64>, StoreError> {
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
        "SELECT first_id FROM syslog_blocks {} ORDER BY first_id DESC LIMIT {count}",
        w.sql()
    );
    Ok(on_pool!(store, pool => {
        bind_params!(sqlx::query_scalar::<_, i64>(AssertSqlSafe(sql)), w.params)
            .fetch_all(pool)
            .await
    })?)
}

/// The JSON array of the block that starts at `first_id`, if it still does.
async fn block_messages(store: &Store, first_id: i64) -> Result<Option<String>, StoreError> {
    Ok(on_pool!(store, pool => sqlx::query_scalar(
        "SELECT messages FROM syslog_blocks WHERE first_id = $1",
    )
    .bind(first_id)
    .fetch_optional(pool)
    .await)?)
}

/// The smallest and largest id stored: messages only leave from the old end, so `max − min + 1`
/// is about their number, read from the blocks' key without counting.
pub async fn id_range(store: &Store) -> Result<Option<(i64, i64)>, StoreError> {
    let (min, max): (Option<i64>, Option<i64>) = on_pool!(store, pool => sqlx::query_as(
        "SELECT (SELECT first_id FROM syslog_blocks ORDER BY first_id LIMIT 1), \
                (SELECT last_id FROM syslog_blocks ORDER BY first_id DESC LIMIT 1)",
    )
    .fetch_one(pool)
    .await)?;
    Ok(min.zip(max))
}

/// The exact number of messages.
pub async fn count(store: &Store) -> Result<i64, StoreError> {
    Ok(on_pool!(store, pool => sqlx::query_scalar(
        "SELECT CAST(COALESCE(SUM(last_id - first_id + 1), 0) AS BIGINT) FROM syslog_blocks",
    )
    .fetch_one(pool)
    .await)?)
}

/// Blocks read for the average size of a message.
const SIZE_SAMPLE_BLOCKS: i64 = 16;

/// The average size of a message in bytes, from the newest blocks: its share of its block's
/// JSON array plus [`ROW_OVERHEAD`]. `None` when nothing is stored.
pub async fn average_row_bytes(store: &Store) -> Result<Option<i64>, StoreError> {
    let (bytes, messages): (Option<i64>, Option<i64>) = on_pool!(store, pool => sqlx::query_as(
        "SELECT CAST(SUM(bytes) AS BIGINT), CAST(SUM(last_id - first_id + 1) AS BIGINT) \
         FROM (SELECT bytes, first_id, last_id FROM syslog_blocks \
               ORDER BY first_id DESC LIMIT $1) AS newest",
    )
    .bind(SIZE_SAMPLE_BLOCKS)
    .fetch_one(pool)
    .await)?;
    Ok(match (bytes, messages) {
        (Some(b), Some(n)) if n > 0 => Some(b / n + ROW_OVERHEAD),
        _ => None,
    })
}

/// What a message costs besides its share of the JSON array: the block's own row, its summary
/// and the pages' slack, shared by hundreds. An estimate; the point is a stable bound.
pub const ROW_OVERHEAD: i64 = 8;

/// Records that ids up to `last` were purged (the next ids follow them even with no block left).
async fn record_purged(tx: &mut StoreTx, last: i64) -> Result<(), StoreError> {
    on_tx!(tx, conn => sqlx::query(
        "UPDATE syslog_last_purged SET last_id = $1 WHERE last_id < $1",
    )
    .bind(last)
    .execute(conn)
    .await
    .map(drop))?;
    Ok(())
}

/// Deletes the blocks `statement` selects (with `params`); how many messages they held and
/// their largest id.
async fn delete_blocks(
    tx: &mut StoreTx,
    statement: &'static str,
    params: &[Param],
) -> Result<(u64, i64), StoreError> {
    let gone: Vec<(i64, i64)> = on_tx!(tx, conn => {
        bind_params!(sqlx::query_as::<_, (i64, i64)>(statement), params.iter().cloned())
            .fetch_all(conn)
            .await
    })?;
    let messages = gone.iter().map(|(f, l)| (l - f + 1).max(0) as u64).sum();
    let last = gone.iter().map(|&(_, l)| l).max().unwrap_or(0);
    Ok((messages, last))
}

/// Removes the `n` oldest of `entries`, the messages of the block that starts at `first_id`: the
/// block is written again with what is left, from the id `first_id + n`.
async fn trim_block(
    tx: &mut StoreTx,
    first_id: i64,
    mut entries: Vec<Entry<'_>>,
    n: usize,
) -> Result<(), StoreError> {
    let n = n.min(entries.len());
    let kept = entries.split_off(n);
    on_tx!(tx, conn => sqlx::query("DELETE FROM syslog_blocks WHERE first_id = $1")
        .bind(first_id)
        .execute(conn)
        .await
        .map(drop))?;
    if let Some(block) = Block::of_entries(first_id, &kept)? {
        insert_block(tx, first_id + n as i64, block).await?;
    }
    Ok(())
}

/// Deletes, in one transaction, the oldest messages received before `cutoff`, from the old end:
/// when the oldest block is entirely older, the blocks entirely older whose ids are within
/// `chunk` of its first; when the cutoff cuts through it, its messages before the cutoff. How
/// many messages went. Messages go in id order: one received out of order (a few milliseconds
/// apart across connections) waits for those before it, and the check costs one row whatever
/// the store holds.
pub async fn delete_received_before(
    store: &Store,
    cutoff: DateTime<Utc>,
    chunk: i64,
) -> Result<u64, StoreError> {
    let mut tx = store.begin().await?;
    lock_blocks(&mut tx).await?;
    let oldest: Option<(i64, DateTime<Utc>, DateTime<Utc>)> = on_tx!(&mut tx, conn => sqlx::query_as(
        "SELECT first_id, received_from, received_to FROM syslog_blocks \
         ORDER BY first_id LIMIT 1",
    )
    .fetch_optional(conn)
    .await)?;
    let (deleted, last) = match oldest {
        Some((first, _, to)) if to < cutoff => {
            delete_blocks(
                &mut tx,
                "DELETE FROM syslog_blocks \
                 WHERE first_id >= $1 AND first_id < $2 AND received_to < $3 \
                 RETURNING first_id, last_id",
                &[
                    Param::Int(first),
                    Param::Int(first.saturating_add(chunk.max(1))),
                    Param::Time(cutoff),
                ],
            )
            .await?
        }
        Some((first, from, _)) if from < cutoff => {
            // The block's messages are read only when the cutoff cuts through it.
            let messages: String = on_tx!(&mut tx, conn => sqlx::query_scalar(
                "SELECT messages FROM syslog_blocks WHERE first_id = $1",
            )
            .bind(first)
            .fetch_one(conn)
            .await)?;
            let entries = entries(first, &messages)?;
            let mut old = 0;
            for e in &entries {
                if e.received_at(first)? >= cutoff {
                    break;
                }
                old += 1;
            }
            if old > 0 {
                trim_block(&mut tx, first, entries, old).await?;
            }
            (old as u64, first + old as i64 - 1)
        }
        _ => (0, 0),
    };
    if deleted > 0 {
        record_purged(&mut tx, last).await?;
    }
    tx.commit().await?;
    Ok(deleted)
}

/// Deletes the messages whose id is below `bound` (the oldest ones) in one transaction: the
/// blocks entirely below, and the start of the one it cuts through. How many messages went.
pub async fn delete_ids_below(store: &Store, bound: i64) -> Result<u64, StoreError> {
    let mut tx = store.begin().await?;
    lock_blocks(&mut tx).await?;
    let (mut deleted, mut last) = delete_blocks(
        &mut tx,
        "DELETE FROM syslog_blocks WHERE last_id < $1 RETURNING first_id, last_id",
        &[Param::Int(bound)],
    )
    .await?;
    let cut: Option<(i64, String)> = on_tx!(&mut tx, conn => sqlx::query_as(
        "SELECT first_id, messages FROM syslog_blocks WHERE first_id < $1 \
         ORDER BY first_id DESC LIMIT 1",
    )
    .bind(bound)
    .fetch_optional(conn)
    .await)?;
    if let Some((first, messages)) = cut {
        // Every block below the bound is gone: this one reaches past it.
        let n = (bound - first) as usize;
        trim_block(&mut tx, first, entries(first, &messages)?, n).await?;
        deleted += n as u64;
        last = last.max(bound - 1);
    }
    if deleted > 0 {
        record_purged(&mut tx, last).await?;
    }
    tx.commit().await?;
    Ok(deleted)
}

/// Blocks read per compaction step (one transaction).
const COMPACT_STEP: i64 = 1024;

/// One step of compaction from the block after the id `from`: merges runs of adjacent blocks
/// (consecutive ids) into blocks of at most [`BLOCK_MESSAGES_MAX`] messages, in one
/// transaction. A quiet period stores a block every `batch_wait` with a handful of messages;
/// merged, the blocks a list or a purge walks stay few whatever the rate was. Ids do not change:
/// a merged block starts where its first did. Answers where the next step starts (the last run
/// is read again while it can still grow) and how many blocks went.
pub async fn compact_step(store: &Store, from: i64) -> Result<(i64, u64), StoreError> {
    let mut tx = store.begin().await?;
    lock_blocks(&mut tx).await?;
    let blocks: Vec<(i64, i64)> = on_tx!(&mut tx, conn => sqlx::query_as(
        "SELECT first_id, last_id FROM syslog_blocks WHERE first_id > $1 \
         ORDER BY first_id LIMIT $2",
    )
    .bind(from)
    .bind(COMPACT_STEP)
    .fetch_all(conn)
    .await)?;
    let runs = merge_runs(&blocks);
    let mut next = from;
    let mut gone = 0;
    for (i, &(first, last, count)) in runs.iter().enumerate() {
        if count > 1 {
            merge_blocks(&mut tx, first, last).await?;
            gone += count as u64 - 1;
        }
        // Done with a full block, and with any run before the last one.
        if i + 1 < runs.len() || last - first + 1 >= BLOCK_MESSAGES_MAX as i64 {
            next = last;
        } else {
            next = first - 1;
        }
    }
    tx.commit().await?;
    if gone > 0 {
        metrics::counter!("vigie_syslog_compacted_blocks_total").increment(gone);
    }
    Ok((next.max(from), gone))
}

/// `blocks` (in id order) grouped into runs of consecutive ids holding at most
/// [`BLOCK_MESSAGES_MAX`] messages together: each run's first and last id and its number of
/// blocks.
fn merge_runs(blocks: &[(i64, i64)]) -> Vec<(i64, i64, usize)> {
    let mut runs: Vec<(i64, i64, usize)> = Vec::new();
    for &(first, last) in blocks {
        match runs.last_mut() {
            Some(run) if run.1 + 1 == first && last - run.0 < BLOCK_MESSAGES_MAX as i64 => {
                run.1 = last;
                run.2 += 1;
            }
            _ => runs.push((first, last, 1)),
        }
    }
    runs
}

/// The columns of a block but its ids.
type BlockRow = (
    DateTime<Utc>,
    DateTime<Utc>,
    Option<String>,
    i64,
    i64,
    String,
);

/// Writes the blocks from `first` to the one ending at `last` (adjacent) as one: their arrays
/// joined without reading the messages, their summaries combined.
async fn merge_blocks(tx: &mut StoreTx, first: i64, last: i64) -> Result<(), StoreError> {
    let rows: Vec<BlockRow> = on_tx!(tx, conn => sqlx::query_as(
        "SELECT received_from, received_to, hosts, CAST(severities AS BIGINT), \
                CAST(facilities AS BIGINT), messages \
         FROM syslog_blocks WHERE first_id >= $1 AND first_id <= $2 ORDER BY first_id",
    )
    .bind(first)
    .bind(last)
    .fetch_all(conn)
    .await)?;
    let Some(block) = merged(first, last, rows)? else {
        return Ok(());
    };
    on_tx!(tx, conn => sqlx::query(
        "DELETE FROM syslog_blocks WHERE first_id >= $1 AND first_id <= $2",
    )
    .bind(first)
    .bind(last)
    .execute(conn)
    .await
    .map(drop))?;
    insert_block(tx, first, block).await
}

/// The block of the adjacent blocks `rows` (ids `first` ..= `last`); `None` when there are
/// none.
fn merged(first: i64, last: i64, rows: Vec<BlockRow>) -> Result<Option<Block>, StoreError> {
    let mut times: Option<(DateTime<Utc>, DateTime<Utc>)> = None;
    let mut hosts: Option<HashSet<String>> = Some(HashSet::new());
    let (mut severities, mut facilities) = (0, 0);
    let mut messages = String::from("[");
    for (from, to, listed, s, f, array) in rows {
        times = Some(match times {
            Some((a, b)) => (a.min(from), b.max(to)),
            None => (from, to),
        });
        hosts = match (hosts, listed) {
            (Some(mut set), Some(list)) => {
                set.extend(
                    list.split(HOST_SEPARATOR)
                        .filter(|h| !h.is_empty())
                        .map(str::to_owned),
                );
                Some(set)
            }
            _ => None,
        };
        severities |= s;
        facilities |= f;
        let inner = array
            .trim()
            .strip_prefix('[')
            .and_then(|a| a.strip_suffix(']'))
            .ok_or_else(|| unreadable(first, "not a JSON array"))?
            .trim();
        if !inner.is_empty() {
            if messages.len() > 1 {
                messages.push(',');
            }
            messages.push_str(inner);
        }
    }
    messages.push(']');
    let Some((received_from, received_to)) = times else {
        return Ok(None);
    };
    let hosts = hosts.and_then(host_list);
    Ok(Some(Block {
        received_from,
        received_to,
        hosts,
        severities,
        facilities,
        count: last - first + 1,
        messages,
    }))
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
        let block = Block::of(&batch).unwrap().unwrap();
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
        assert_eq!(block.count, 4);
        assert_eq!(block.bytes(), block.messages.len() as i64);
        assert_eq!(Block::of(&[]).unwrap(), None);
    }

    #[test]
    fn too_many_hosts_make_a_block_that_may_hold_any() {
        let many: Vec<_> = (0..=BLOCK_HOSTS_MAX)
            .map(|n| received(&format!("<13>Oct 11 22:14:15 h{n} app: x"), 0))
            .collect();
        assert_eq!(Block::of(&many).unwrap().unwrap().hosts, None);
        assert!(
            Block::of(&many[1..]).unwrap().unwrap().hosts.is_some(),
            "64 are listed"
        );
        let long = "x".repeat(200);
        let wide: Vec<_> = (0..30)
            .map(|n| received(&format!("<13>Oct 11 22:14:15 {long}{n} app: x"), 0))
            .collect();
        assert_eq!(
            Block::of(&wide).unwrap().unwrap().hosts,
            None,
            "past 4096 bytes"
        );
    }

    #[test]
    fn a_block_reads_back_every_field() {
        let mut cut = received(
            r#"<165>1 2003-10-11T22:14:15.003+02:00 mymachine evntslog 1234 ID47 [ex@1 iut="3" q="a \"b\" \\ é"] An "event" é"#,
            7,
        );
        cut.truncated = true;
        // A message that is not the end of its line keeps a text of its own.
        let mut apart = received("<13>Oct 11 22:14:15 h app: the end   ", 9);
        apart.message = "not in the line".into();
        let batch = [cut, received("no header\u{0}at all", 8), apart];
        let block = Block::of(&batch).unwrap().unwrap();
        // The usual message is written once: as where it starts in its line.
        assert_eq!(
            block.messages.matches("evntslog").count(),
            2,
            "app name and line"
        );
        assert_eq!(block.messages.matches("An \\\"event\\\"").count(), 1);
        assert_eq!(block.messages.matches("not in the line").count(), 1);
        let read = entries(1, &block.messages).unwrap();
        assert_eq!(read.len(), 3);
        for (n, (e, m)) in read.into_iter().zip(&batch).enumerate() {
            let at = e.received_at(1).unwrap();
            let message = e.message(1).unwrap().to_owned();
            let s = e.into_stored(10 + n as i64, at, message);
            assert_eq!(s.id, 10 + n as i64);
            assert_eq!(
                s.received_at,
                vigie_core::time::to_store_precision(m.received_at)
            );
            assert_eq!(s.sender, "192.0.2.1:514");
            assert_eq!(s.transport, "tcp");
            assert_eq!(s.host, m.host);
            assert_eq!(s.facility, m.facility.map(i32::from));
            assert_eq!(s.severity, m.severity.map(i32::from));
            assert_eq!(
                s.timestamp,
                m.timestamp
                    .map(|t| vigie_core::time::to_store_precision(t.to_utc()))
            );
            assert_eq!(s.app_name, m.app_name);
            assert_eq!(s.proc_id, m.proc_id);
            assert_eq!(s.msg_id, m.msg_id);
            let sd =
                (!m.structured_data.is_empty()).then(|| Value::Object(m.structured_data.clone()));
            assert_eq!(s.structured_data, sd);
            assert_eq!(s.message, m.message);
            assert_eq!(s.raw, m.raw);
            assert_eq!(s.variant, m.protocol.name());
            assert_eq!(s.truncated, m.truncated);
        }
        // What a purge writes again of stored entries is what was written.
        let again = Block::of_entries(1, &entries(1, &block.messages).unwrap())
            .unwrap()
            .unwrap();
        assert_eq!(again, block);
        // A start past the line, or inside a character, is an error naming the block.
        for start in [99, 1] {
            let bad = format!(
                r#"[["2026-11-21T08:30:00.000000+00:00","a","tcp","h",1,2,null,null,null,null,null,{start},"é…","rfc3164",false]]"#
            );
            let read = entries(7, &bad).unwrap();
            let e = read[0].message(7).unwrap_err().to_string();
            assert!(e.contains("syslog block 7"), "{e}");
        }
    }

    #[test]
    fn times_are_written_as_the_store_keeps_them() {
        for (seconds, nanos) in [(1_800_000_000, 1500), (0, 0), (1_800_000_059, 999_999_999)] {
            let t = DateTime::from_timestamp(seconds, nanos).unwrap();
            let text = StoreTime(t).to_string();
            assert_eq!(
                text,
                t.to_rfc3339_opts(chrono::SecondsFormat::Micros, false)
            );
            assert_eq!(
                parse_time(&text),
                Some(vigie_core::time::to_store_precision(t))
            );
        }
        let far = DateTime::from_timestamp(400_000_000_000, 0).unwrap();
        assert_eq!(
            parse_time(&StoreTime(far).to_string()).is_some(),
            far.year() <= 9999
        );
    }

    #[test]
    fn the_text_is_looked_for_in_whole_blocks_only_when_that_is_exact() {
        let batch = [received(
            "<13>Oct 11 22:14:15 h app: Temperature HIGH on \"A\"",
            0,
        )];
        let block = Block::of(&batch).unwrap().unwrap();
        let matcher = |text: &str| {
            let filter = LogFilter {
                text: Some(text.to_owned()),
                ..LogFilter::default()
            };
            let m = Matcher::new(&filter);
            m.may_hold(&block.messages)
        };
        assert!(matcher("high on"));
        assert!(!matcher("cold"));
        // A quote is written escaped: not looked for in the array.
        assert!(matcher("nothing \"like"));
        // The Kelvin sign lowercases to an ASCII k: the whole array is lowercased the same way.
        let kelvin = [received("<13>Oct 11 22:14:15 h app: 300 \u{212a}", 0)];
        let block = Block::of(&kelvin).unwrap().unwrap();
        let filter = LogFilter {
            text: Some("300 k".into()),
            ..LogFilter::default()
        };
        assert!(Matcher::new(&filter).may_hold(&block.messages));
    }

    #[test]
    fn like_wildcards_are_literal() {
        assert_eq!(vigie_core::store::like_escape("50%_a\\b"), "50\\%\\_a\\\\b");
    }
}
