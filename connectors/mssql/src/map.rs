//! What the two connectors share: the level a source code becomes (configurable per code, with an
//! "unknown" level for codes nobody listed), settings read with the bad key named, times kept
//! without zone turned into UTC, and the SQL name of a configured table.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Duration, NaiveDateTime, Utc};
use serde::de::DeserializeOwned;
use serde_json::Value;
use vigie_poll::SourceError;
use vigie_source::Level;

/// What a source code becomes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mapped {
    Raise(Level),
    Clear,
    Ignore,
}

/// Reads `critical`, `warning`, `low`, `clear`, `ignore` (or `2`, `1`, `0`).
pub fn parse_mapped(text: &str) -> Option<Mapped> {
    match text.trim().to_ascii_lowercase().as_str() {
        "critical" | "2" => Some(Mapped::Raise(Level::Critical)),
        "warning" | "1" => Some(Mapped::Raise(Level::Warning)),
        "low" | "0" => Some(Mapped::Raise(Level::Low)),
        "clear" => Some(Mapped::Clear),
        "ignore" | "drop" => Some(Mapped::Ignore),
        _ => None,
    }
}

/// A level setting (`critical`, `warning`, `low`).
pub fn parse_level(key: &str, text: &str) -> Result<Level, SourceError> {
    match parse_mapped(text) {
        Some(Mapped::Raise(level)) => Ok(level),
        _ => Err(SourceError::Config(format!(
            "{key}: `{text}` is not one of critical, warning, low"
        ))),
    }
}

/// A code table setting (`{"0": "critical", …}`), the bad entry named.
pub fn code_table(
    key: &str,
    table: &BTreeMap<String, String>,
) -> Result<HashMap<i64, Mapped>, SourceError> {
    let mut out = HashMap::new();
    for (code, target) in table {
        let number: i64 = code
            .trim()
            .parse()
            .map_err(|_| SourceError::Config(format!("{key}: `{code}` is not a code number")))?;
        let mapped = parse_mapped(target).ok_or_else(|| {
            SourceError::Config(format!(
                "{key}.{code}: `{target}` is not one of critical, warning, low, clear, ignore"
            ))
        })?;
        out.insert(number, mapped);
    }
    Ok(out)
}

/// Reads a connector's settings, naming the bad key.
pub fn settings<T: DeserializeOwned + Default>(
    kind: &str,
    value: &Value,
) -> Result<T, SourceError> {
    match value {
        Value::Null => Ok(T::default()),
        Value::Object(map) if map.is_empty() => Ok(T::default()),
        other => serde_json::from_value(other.clone())
            .map_err(|e| SourceError::Config(format!("the {kind} settings are not valid: {e}"))),
    }
}

/// A time the source keeps without zone (SQL Server's `datetime`, in the server's local time),
/// as UTC, given the server's offset from UTC.
pub fn utc(time: NaiveDateTime, offset_minutes: i32) -> DateTime<Utc> {
    (time - Duration::minutes(i64::from(offset_minutes))).and_utc()
}

/// The inverse of [`utc`]: an instant as the server's local time, in ISO 8601 with a `T` (the
/// one text form SQL Server reads as a `datetime` whatever the session's language).
pub fn local_text(time: DateTime<Utc>, offset_minutes: i32) -> String {
    (time + Duration::minutes(i64::from(offset_minutes)))
        .naive_utc()
        .format("%Y-%m-%dT%H:%M:%S%.3f")
        .to_string()
}

/// A result column `vigie_recent` that is 1 for a row whose `column` is within the last
/// `settle_seconds` by the server's own clock: such a row (and every later one) waits for the
/// next poll, so that a row written by a transaction still open, with a smaller id, is never
/// jumped over by the watermark.
pub fn recent_column(column: &str, settle_seconds: u32) -> String {
    if settle_seconds == 0 {
        return "0 AS vigie_recent".into();
    }
    format!(
        "CASE WHEN {column} > DATEADD(second, -{settle_seconds}, GETDATE()) THEN 1 ELSE 0 END AS vigie_recent"
    )
}

/// A configured table name as SQL: `[schema].[name]`, refused when it holds anything but
/// letters, digits and `_` (names are spliced into statements, so they are checked).
pub fn table_name(key: &str, schema: &str, name: &str) -> Result<String, SourceError> {
    let ok = |s: &str| {
        !s.is_empty() && s.len() <= 128 && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    };
    if !ok(name) {
        return Err(SourceError::Config(format!(
            "{key}: `{name}` is not a table name (letters, digits and _ only)"
        )));
    }
    if schema.is_empty() {
        return Ok(name.to_owned());
    }
    if !ok(schema) {
        return Err(SourceError::Config(format!(
            "schema: `{schema}` is not a schema name (letters, digits and _ only)"
        )));
    }
    Ok(format!("{schema}.{name}"))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn code_tables_and_names() {
        let mut t = BTreeMap::new();
        t.insert("0".to_owned(), "critical".to_owned());
        t.insert("5".to_owned(), "ignore".to_owned());
        let m = code_table("levels", &t).unwrap();
        assert_eq!(m.get(&0), Some(&Mapped::Raise(Level::Critical)));
        assert_eq!(m.get(&5), Some(&Mapped::Ignore));
        t.insert("x".to_owned(), "low".to_owned());
        assert!(
            code_table("levels", &t)
                .unwrap_err()
                .to_string()
                .contains("`x`")
        );
        assert_eq!(table_name("t", "dbo", "SysLog").unwrap(), "dbo.SysLog");
        assert_eq!(table_name("t", "", "SysLog").unwrap(), "SysLog");
        assert!(table_name("t", "dbo", "SysLog; DROP").is_err());
        let t = chrono::NaiveDate::from_ymd_opt(2025, 1, 14)
            .and_then(|d| d.and_hms_opt(10, 0, 0))
            .unwrap();
        assert_eq!(utc(t, 60).to_rfc3339(), "2025-01-14T09:00:00+00:00");
        assert_eq!(local_text(utc(t, 60), 60), "2025-01-14T10:00:00.000");
    }
}
