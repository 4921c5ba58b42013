//! The configurable SQL source: an administrator's SELECT and the mapping of its columns to alert
//! fields, on MySQL/MariaDB or PostgreSQL. A new tool is federated without code.
//!
//! ```json
//! {
//!   "query": "SELECT id, host, sev, msg, ts FROM events WHERE id > :watermark ORDER BY id",
//!   "watermark": { "id_column": "id" },
//!   "mapping": { "resource": "host", "message": "msg", "severity": "sev",
//!                "levels": { "1": "critical", "2": "warning", "3": "low", "ok": "clear" },
//!                "occurred_at": "ts", "source_ref": "id", "attributes": ["site"] }
//! }
//! ```
//!
//! The query must be one SELECT (no `;`, no `INTO`, no locking clause), ordered by its watermark
//! at the top level, without a top-level LIMIT (the hub adds its own, `batch`). The watermark is
//! an increasing id (`:watermark`), or a modification time with an id as tie-breaker
//! (`:watermark_time` and `:watermark_id`, to be used as
//! `WHERE ts > :watermark_time OR (ts = :watermark_time AND id > :watermark_id)`). The query runs
//! in a read-only transaction; give the source a read-only account all the same.

use std::collections::BTreeMap;

use chrono::NaiveDateTime;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::OnceCell;
use vigie_poll::text::{self, RESOURCE_MAX, SOURCE_REF_MAX};
use vigie_poll::{Answer, Batch, BoxFuture, Key, Mark, Positions, Question, Source, SourceError};
use vigie_source::{Level, RawRecord};

use crate::SourceSpec;
use crate::client::{Client, ClientOptions, Param, Rows};
use crate::manageengine::{Mapped, parse_mapped};
use crate::row::{RowView, parse_time};
use crate::stream::{key_param, settings, utc};

/// The watermark of the query.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WatermarkSettings {
    /// The increasing id column (also the tie-breaker when `time_column` is set).
    pub id_column: String,
    /// The modification time column, for a `(time, id)` watermark.
    pub time_column: Option<String>,
    /// `time` (a date and time column) or `number` (epoch seconds or milliseconds).
    pub time_type: Option<String>,
    /// Where the first poll starts: an id, or a time (`2025-01-01 00:00:00`) or number.
    pub start: Option<Value>,
    /// Where the first poll starts, as an id.
    pub start_id: Option<i64>,
}

/// Which result column feeds which alert field.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Mapping {
    pub resource: String,
    pub message: String,
    /// The record's identity in the tool (a row id); made unique per version with a time
    /// watermark.
    pub source_ref: Option<String>,
    /// A column whose value is looked up in `levels` (or read as 0, 1, 2 without `levels`).
    pub severity: Option<String>,
    /// Value of `severity` → `critical`, `warning`, `low`, `clear` or `ignore`.
    pub levels: BTreeMap<String, String>,
    /// A yes/no column: yes when the condition is over.
    pub clear: Option<String>,
    pub occurred_at: Option<String>,
    /// The identity of the condition (what a clear clears); default: the message's template.
    pub event: Option<String>,
    pub domain: Option<String>,
    pub source_severity: Option<String>,
    /// Columns copied into the alert's attributes.
    pub attributes: Vec<String>,
}

/// The settings of a configurable SQL source.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct QuerySettings {
    pub query: String,
    pub watermark: WatermarkSettings,
    pub mapping: Mapping,
    /// Rows read per poll, at most.
    pub batch: u32,
    /// The level of rows whose severity is not mapped (0, 1, 2).
    pub default_level: u8,
    /// Times without zone in the result are this many minutes ahead of UTC.
    pub utc_offset_minutes: i32,
    /// The domain when neither the mapping nor the source's configuration gives one.
    pub domain: Option<String>,
}

impl Default for QuerySettings {
    fn default() -> QuerySettings {
        QuerySettings {
            query: String::new(),
            watermark: WatermarkSettings::default(),
            mapping: Mapping::default(),
            batch: 1000,
            default_level: 1,
            utc_offset_minutes: 0,
            domain: None,
        }
    }
}

/// A parameter of the checked statement.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Slot {
    Id,
    Time,
}

/// A query accepted by [`check_query`]: the statement with `?` markers and what each binds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckedQuery {
    /// The statement with `?` markers and the hub's `LIMIT ?` at the end.
    pub sql: String,
    slots: Vec<Slot>,
}

/// Checks an administrator's query: one SELECT, ordered, with the watermark parameter(s), no
/// `INTO`, no locking clause, no top-level LIMIT. Returns it ready to run, or an error that says
/// what to change.
pub fn check_query(query: &str, time_watermark: bool) -> Result<CheckedQuery, SourceError> {
    let bad = |m: String| Err(SourceError::Config(format!("query: {m}")));
    let mut text = query.trim();
    if let Some(stripped) = text.strip_suffix(';') {
        text = stripped.trim_end();
    }
    if text.is_empty() {
        return bad("is empty: give a SELECT".into());
    }
    let tokens = tokenize(text)?;
    let words: Vec<(&str, usize)> = tokens
        .iter()
        .filter_map(|t| match t {
            Token::Word(w, depth) => Some((w.as_str(), *depth)),
            _ => None,
        })
        .collect();
    if tokens.iter().any(|t| matches!(t, Token::Semicolon)) {
        return bad("must be a single statement (found `;` inside it)".into());
    }
    match words.first() {
        Some((w, _)) if w.eq_ignore_ascii_case("select") => {}
        Some((w, _)) => return bad(format!("must be a SELECT (it starts with `{w}`)")),
        None => return bad("must be a SELECT".into()),
    }
    let upper: Vec<(String, usize)> = words
        .iter()
        .map(|(w, d)| (w.to_ascii_uppercase(), *d))
        .collect();
    for (i, (w, _)) in upper.iter().enumerate() {
        let next = upper.get(i + 1).map(|(n, _)| n.as_str());
        if w == "INTO" {
            return bad("must not contain INTO (it would write)".into());
        }
        if w == "FOR" && matches!(next, Some("UPDATE" | "SHARE" | "NO")) {
            return bad("must not lock rows (FOR UPDATE/FOR SHARE)".into());
        }
        if w == "LOCK" && next == Some("IN") {
            return bad("must not lock rows (LOCK IN SHARE MODE)".into());
        }
    }
    let top = |word: &str| upper.iter().any(|(w, d)| *d == 0 && w == word);
    let ordered = upper
        .windows(2)
        .any(|p| p[0].1 == 0 && p[0].0 == "ORDER" && p[1].0 == "BY");
    if !ordered {
        return bad(
            "must end with ORDER BY its watermark column(s), so that no row is skipped".into(),
        );
    }
    if top("LIMIT") || top("FETCH") || top("OFFSET") {
        return bad(
            "must not have a LIMIT, OFFSET or FETCH of its own: the hub adds one (setting `batch`)"
                .into(),
        );
    }

    let mut sql = String::with_capacity(text.len() + 10);
    let mut slots = Vec::new();
    for t in &tokens {
        match t {
            Token::Param(name) => {
                let slot = match (name.as_str(), time_watermark) {
                    ("watermark", false) | ("watermark_id", true) => Slot::Id,
                    ("watermark_time", true) => Slot::Time,
                    (other, false) => {
                        return bad(format!(
                            "`:{other}` is not a parameter of an id watermark: use `:watermark`"
                        ));
                    }
                    (other, true) => {
                        return bad(format!(
                            "`:{other}` is not a parameter of a time watermark: use `:watermark_time` and `:watermark_id`"
                        ));
                    }
                };
                slots.push(slot);
                sql.push('?');
            }
            Token::Text(s) | Token::Word(s, _) => sql.push_str(s),
            Token::Semicolon => {}
        }
    }
    if time_watermark {
        if !slots.contains(&Slot::Time) || !slots.contains(&Slot::Id) {
            return bad("must use both `:watermark_time` and `:watermark_id`, e.g. `WHERE ts > :watermark_time OR (ts = :watermark_time AND id > :watermark_id)`".into());
        }
    } else if slots.is_empty() {
        return bad("must use the watermark parameter, e.g. `WHERE id > :watermark`".into());
    }
    if tokens
        .iter()
        .any(|t| matches!(t, Token::Text(s) if s == "?"))
    {
        return bad("must not use `?` markers: name the watermark `:watermark`".into());
    }
    sql.push_str(" LIMIT ?");
    Ok(CheckedQuery { sql, slots })
}

#[derive(Debug, PartialEq)]
enum Token {
    /// A keyword or identifier, with the parenthesis depth it is at.
    Word(String, usize),
    /// `:name` parameter.
    Param(String),
    Semicolon,
    /// Anything else, copied as it is (quoted text, comments, punctuation, spaces).
    Text(String),
}

fn tokenize(sql: &str) -> Result<Vec<Token>, SourceError> {
    let chars: Vec<char> = sql.chars().collect();
    let mut tokens = Vec::new();
    let mut depth = 0usize;
    let mut i = 0;
    let unterminated = |what: &str| {
        Err(SourceError::Config(format!(
            "query: has an unterminated {what}"
        )))
    };
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if c == '\'' || c == '"' || c == '`' {
            let start = i;
            i += 1;
            loop {
                match chars.get(i) {
                    None => return unterminated("quoted text"),
                    Some(&q) if q == c => {
                        if chars.get(i + 1) == Some(&c) {
                            i += 2;
                            continue;
                        }
                        i += 1;
                        break;
                    }
                    Some('\\') if c == '\'' => i += 2,
                    Some(_) => i += 1,
                }
            }
            tokens.push(Token::Text(
                chars[start..i.min(chars.len())].iter().collect(),
            ));
        } else if (c == '-' && next == Some('-')) || c == '#' {
            let start = i;
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
            tokens.push(Token::Text(chars[start..i].iter().collect()));
        } else if c == '/' && next == Some('*') {
            let start = i;
            i += 2;
            loop {
                if i + 1 >= chars.len() {
                    return unterminated("comment");
                }
                if chars[i] == '*' && chars[i + 1] == '/' {
                    i += 2;
                    break;
                }
                i += 1;
            }
            tokens.push(Token::Text(chars[start..i].iter().collect()));
        } else if c == ':' && next == Some(':') {
            // PostgreSQL cast.
            tokens.push(Token::Text("::".into()));
            i += 2;
        } else if c == ':' && next.is_some_and(|n| n.is_ascii_alphabetic() || n == '_') {
            let start = i + 1;
            i += 1;
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            tokens.push(Token::Param(chars[start..i].iter().collect()));
        } else if c.is_alphabetic() || c == '_' {
            let start = i;
            while i < chars.len()
                && (chars[i].is_alphanumeric() || chars[i] == '_' || chars[i] == '$')
            {
                i += 1;
            }
            tokens.push(Token::Word(chars[start..i].iter().collect(), depth));
        } else {
            match c {
                '(' => depth += 1,
                ')' => depth = depth.saturating_sub(1),
                ';' => {
                    tokens.push(Token::Semicolon);
                    i += 1;
                    continue;
                }
                _ => {}
            }
            tokens.push(Token::Text(c.to_string()));
            i += 1;
        }
    }
    Ok(tokens)
}

/// A configurable SQL source.
pub struct QuerySource {
    name: String,
    domain: Option<String>,
    settings: QuerySettings,
    query: CheckedQuery,
    levels: BTreeMap<String, Mapped>,
    time_is_number: bool,
    client: Client,
    /// The result's columns, checked against the mapping once.
    checked_columns: OnceCell<()>,
}

const ROWS: &str = "rows";

impl QuerySource {
    pub fn new(spec: &SourceSpec) -> Result<QuerySource, SourceError> {
        let settings: QuerySettings = settings("SQL", &spec.settings)?;
        let w = &settings.watermark;
        if w.id_column.trim().is_empty() {
            return Err(SourceError::Config(
                "watermark.id_column: name the query's increasing id column".into(),
            ));
        }
        let time_is_number = match w.time_type.as_deref() {
            None | Some("time") => false,
            Some("number") => true,
            Some(other) => {
                return Err(SourceError::Config(format!(
                    "watermark.time_type: `{other}` is not `time` or `number`"
                )));
            }
        };
        let query = check_query(&settings.query, w.time_column.is_some())?;
        let m = &settings.mapping;
        if m.resource.trim().is_empty() || m.message.trim().is_empty() {
            return Err(SourceError::Config(
                "mapping: `resource` and `message` must name columns of the query".into(),
            ));
        }
        if settings.batch == 0 {
            return Err(SourceError::Config("batch must be at least 1".into()));
        }
        if settings.default_level > 2 {
            return Err(SourceError::Config(
                "default_level must be 0, 1 or 2".into(),
            ));
        }
        let mut levels = BTreeMap::new();
        for (value, target) in &m.levels {
            let mapped = parse_mapped(target).ok_or_else(|| {
                SourceError::Config(format!(
                    "mapping.levels.{value}: `{target}` is not one of critical, warning, low, clear, ignore"
                ))
            })?;
            levels.insert(value.trim().to_owned(), mapped);
        }
        if !levels.is_empty() && m.severity.is_none() {
            return Err(SourceError::Config(
                "mapping.levels needs mapping.severity (the column whose values it maps)".into(),
            ));
        }
        let client = Client::new(
            &spec.url,
            ClientOptions {
                init: Vec::new(),
                max_connections: 2,
            },
        )?;
        Ok(QuerySource {
            name: spec.name.clone(),
            domain: spec.domain.clone().or_else(|| settings.domain.clone()),
            settings,
            query,
            levels,
            time_is_number,
            client,
            checked_columns: OnceCell::new(),
        })
    }

    /// The statement as it runs (for `vigie source test`).
    pub fn statement(&self) -> &str {
        &self.query.sql
    }

    /// Checks once that every mapped column is in the query's result.
    async fn check_columns(&self) -> Result<(), SourceError> {
        self.checked_columns
            .get_or_try_init(|| async {
                let columns = self.client.columns(&self.query.sql).await?;
                let have: Vec<String> = columns.iter().map(|c| c.to_ascii_lowercase()).collect();
                let m = &self.settings.mapping;
                let w = &self.settings.watermark;
                let mut wanted: Vec<(&str, &str)> = vec![
                    ("mapping.resource", m.resource.as_str()),
                    ("mapping.message", m.message.as_str()),
                    ("watermark.id_column", w.id_column.as_str()),
                ];
                let optional = [
                    ("mapping.source_ref", &m.source_ref),
                    ("mapping.severity", &m.severity),
                    ("mapping.clear", &m.clear),
                    ("mapping.occurred_at", &m.occurred_at),
                    ("mapping.event", &m.event),
                    ("mapping.domain", &m.domain),
                    ("mapping.source_severity", &m.source_severity),
                    ("watermark.time_column", &w.time_column),
                ];
                for (key, col) in &optional {
                    if let Some(c) = col {
                        wanted.push((key, c.as_str()));
                    }
                }
                for c in &m.attributes {
                    wanted.push(("mapping.attributes", c.as_str()));
                }
                for (key, col) in wanted {
                    if !have.contains(&col.to_ascii_lowercase()) {
                        return Err(SourceError::Schema(format!(
                            "{key} names the column `{col}`, which the query does not return (it returns: {})",
                            columns.join(", ")
                        )));
                    }
                }
                Ok(())
            })
            .await
            .map(drop)
    }

    fn start_key(&self) -> Result<Key, SourceError> {
        let start = self.settings.watermark.start.as_ref();
        if self.time_is_number {
            return Ok(Key::Number(
                start.and_then(Value::as_i64).unwrap_or(i64::MIN),
            ));
        }
        match start {
            None => Ok(Key::Time(NaiveDateTime::default())),
            Some(Value::String(s)) => parse_time(s).map(Key::Time).ok_or_else(|| {
                SourceError::Config(format!("watermark.start: `{s}` is not a date and time"))
            }),
            Some(other) => Err(SourceError::Config(format!(
                "watermark.start: {other} is not a date and time"
            ))),
        }
    }

    async fn poll_inner(&self, position: Option<&str>) -> Result<Batch, SourceError> {
        let mut positions = Positions::parse(position)?;
        self.check_columns().await?;
        let mark = positions.get(ROWS).cloned();
        let start_id = self
            .settings
            .watermark
            .start_id
            .or_else(|| {
                (self.settings.watermark.time_column.is_none())
                    .then(|| {
                        self.settings
                            .watermark
                            .start
                            .as_ref()
                            .and_then(Value::as_i64)
                    })
                    .flatten()
            })
            .unwrap_or(i64::MIN);
        let (key, id) = match &mark {
            Some(m) => (m.key.clone(), m.id),
            None => (
                match self.settings.watermark.time_column {
                    Some(_) => Some(self.start_key()?),
                    None => None,
                },
                start_id,
            ),
        };
        let mut params = Vec::with_capacity(self.query.slots.len() + 1);
        for slot in &self.query.slots {
            params.push(match slot {
                Slot::Id => Param::Int(id),
                Slot::Time => match &key {
                    Some(k) => key_param(k),
                    None => self.start_key().map(|k| key_param(&k))?,
                },
            });
        }
        params.push(Param::Int(i64::from(self.settings.batch)));
        let rows = self.client.query(&self.query.sql, &params, true).await?;
        let full = rows.len() >= self.settings.batch as usize;
        let mut batch = Batch {
            rows_read: rows.len() as u64,
            ..Batch::default()
        };
        let mut last = mark.clone();
        for i in 0..rows.len() {
            let row = RowView::new(&rows, i, "the query", &self.settings.watermark.id_column);
            match self.row(&rows, &row, last.as_ref()) {
                Ok((record, mark)) => {
                    if let Some(record) = record {
                        if let Some(t) = record.occurred_at {
                            batch.newest = batch.newest.max(Some(t));
                        }
                        // Rows are events here: a clear read on a first read may close an alert
                        // raised by an earlier row of the same read, so none is skipped.
                        batch.records.push(record);
                    }
                    last = Some(mark);
                }
                Err(e) => {
                    batch.stopped = Some(e);
                    break;
                }
            }
        }
        if let Some(m) = last {
            positions.set(ROWS, m);
        }
        batch.more = full && batch.stopped.is_none();
        batch.position = Some(positions.encode());
        Ok(batch)
    }

    /// One result row as a record (`None` when its severity says `ignore`), with its mark.
    fn row(
        &self,
        _rows: &Rows,
        row: &RowView<'_>,
        previous: Option<&Mark>,
    ) -> Result<(Option<RawRecord>, Mark), SourceError> {
        let w = &self.settings.watermark;
        let m = &self.settings.mapping;
        let id = row.int(&w.id_column)?;
        let key = match &w.time_column {
            Some(c) => Some(row.key(c)?),
            None => None,
        };
        if let Some(prev) = previous
            && !prev.is_before(key.as_ref(), id)
        {
            return Err(SourceError::Config(format!(
                "{}: the rows do not come in watermark order (after {:?}/{}); the query must ORDER BY {}",
                row.label(),
                prev.key,
                prev.id,
                match &w.time_column {
                    Some(t) => format!("{t}, {}", w.id_column),
                    None => w.id_column.clone(),
                }
            )));
        }
        let mark = Mark {
            key: key.clone(),
            id,
            initial: false,
        };

        let mut level =
            Level::from_number(i64::from(self.settings.default_level)).unwrap_or(Level::Warning);
        let mut clear = false;
        if let Some(col) = &m.severity {
            let value = row.opt_text(col)?.unwrap_or_default();
            let value = value.trim();
            if self.levels.is_empty() {
                if let Some(l) = value.parse::<i64>().ok().and_then(Level::from_number) {
                    level = l;
                }
            } else {
                match self.levels.get(value) {
                    Some(Mapped::Ignore) => return Ok((None, mark)),
                    Some(Mapped::Clear) => clear = true,
                    Some(Mapped::Raise(l)) => level = *l,
                    None => {}
                }
            }
        }
        if let Some(col) = &m.clear
            && row.opt_bool(col)?.unwrap_or(false)
        {
            clear = true;
        }
        let resource = row.text(&m.resource)?;
        let message = row.text(&m.message)?;
        let mut record = RawRecord::new(
            &self.name,
            text::one_line(&resource, RESOURCE_MAX, "resource"),
            text::message(&message, &resource),
        );
        if let Some(col) = &m.source_ref
            && let Some(r) = row.opt_text(col)?
        {
            let versioned = match &key {
                Some(Key::Time(t)) => format!("{r}@{}", t.format("%Y-%m-%dT%H:%M:%S%.f")),
                Some(Key::Number(n)) => format!("{r}@{n}"),
                None => r,
            };
            record.source_ref = Some(text::one_line(&versioned, SOURCE_REF_MAX, "row"));
        }
        record.level = Some(level);
        record.clear = clear;
        record.domain = match &m.domain {
            Some(col) => row.opt_text(col)?.or_else(|| self.domain.clone()),
            None => self.domain.clone(),
        };
        if let Some(col) = &m.occurred_at {
            record.occurred_at = row
                .opt_time(col)?
                .map(|t| utc(t, self.settings.utc_offset_minutes));
        }
        if let Some(col) = &m.source_severity {
            record.source_severity = row.opt_int(col)?.and_then(|n| i32::try_from(n).ok());
        }
        if let Some(col) = &m.event
            && let Some(event) = row.opt_text(col)?
        {
            record.attributes.insert("event".into(), json!(event));
        }
        for col in &m.attributes {
            let value = row
                .opt_text(col)?
                .map_or(Value::Null, |v| Value::String(text::message(&v, "")));
            record.attributes.insert(col.clone(), value);
        }
        record.raw = text::raw(row.to_json());
        Ok((Some(record), mark))
    }
}

impl Source for QuerySource {
    fn name(&self) -> &str {
        &self.name
    }

    fn kind(&self) -> &str {
        "sql"
    }

    fn domain(&self) -> Option<&str> {
        self.domain.as_deref()
    }

    fn poll<'a>(&'a self, position: Option<&'a str>) -> BoxFuture<'a, Result<Batch, SourceError>> {
        Box::pin(self.poll_inner(position))
    }

    fn ask<'a>(&'a self, _question: &'a Question) -> BoxFuture<'a, Result<Answer, SourceError>> {
        Box::pin(async {
            Err(SourceError::Unsupported(
                "a configurable SQL source has no on-demand questions configured".into(),
            ))
        })
    }

    fn ping(&self) -> BoxFuture<'_, Result<(), SourceError>> {
        Box::pin(self.client.ping())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(q: &str, time: bool) -> String {
        check_query(q, time)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_else(|| "accepted".into())
    }

    #[test]
    fn a_single_ordered_select_with_its_watermark_is_accepted() {
        let q = check_query(
            "select id, host, msg from events where id > :watermark and msg <> ':x;' -- c;\n order by id;",
            false,
        );
        let q = q.ok();
        assert_eq!(
            q.as_ref().map(|q| q.sql.as_str()),
            Some(
                "select id, host, msg from events where id > ? and msg <> ':x;' -- c;\n order by id LIMIT ?"
            )
        );
        let t = check_query(
            "SELECT * FROM e WHERE ts > :watermark_time OR (ts = :watermark_time AND id > :watermark_id) ORDER BY ts, id",
            true,
        )
        .ok();
        assert_eq!(
            t.map(|t| t.slots),
            Some(vec![Slot::Time, Slot::Time, Slot::Id])
        );
        // PostgreSQL casts are not parameters.
        assert!(
            check_query(
                "SELECT id::text FROM e WHERE id > :watermark ORDER BY id",
                false
            )
            .is_ok()
        );
        // A LIMIT inside a subquery is the query's own business.
        assert!(check_query(
            "SELECT * FROM (SELECT * FROM e WHERE id > :watermark ORDER BY id LIMIT 5) x ORDER BY id",
            false
        )
        .is_ok());
    }

    #[test]
    fn everything_else_is_refused_with_a_reason() {
        assert!(
            refused("DELETE FROM events WHERE id > :watermark", false)
                .contains("must be a SELECT (it starts with `DELETE`)")
        );
        assert!(
            refused(
                "SELECT 1 FROM e WHERE id > :watermark ORDER BY id; DROP TABLE e",
                false
            )
            .contains("single statement")
        );
        assert!(refused("SELECT id FROM events ORDER BY id", false).contains(":watermark"));
        assert!(
            refused("SELECT id FROM events WHERE id > ? ORDER BY id", false).contains(":watermark")
        );
        assert!(refused("SELECT id FROM events WHERE id > :watermark", false).contains("ORDER BY"));
        assert!(
            refused(
                "SELECT id FROM e WHERE id > :watermark ORDER BY id LIMIT 10",
                false
            )
            .contains("LIMIT")
        );
        assert!(
            refused(
                "SELECT id INTO OUTFILE '/tmp/x' FROM e WHERE id > :watermark ORDER BY id",
                false
            )
            .contains("INTO")
        );
        assert!(
            refused(
                "SELECT id FROM e WHERE id > :watermark ORDER BY id FOR UPDATE",
                false
            )
            .contains("lock")
        );
        assert!(refused("SELECT id FROM e WHERE id > :wm ORDER BY id", false).contains("`:wm`"));
        assert!(
            refused("SELECT id FROM e WHERE id > :watermark ORDER BY id", true)
                .contains(":watermark_time")
        );
        assert!(
            refused(
                "SELECT 'abc FROM e WHERE id > :watermark ORDER BY id",
                false
            )
            .contains("unterminated")
        );
        assert!(refused("  ", false).contains("empty"));
        assert!(
            refused(
                "WITH x AS (SELECT 1) SELECT * FROM x WHERE id > :watermark ORDER BY id",
                false
            )
            .contains("must be a SELECT")
        );
    }
}
