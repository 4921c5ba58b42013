//! What the table connectors share: the `WHERE` fragment that reads a stream after its mark, and
//! the conversions of watermark keys and times.

use chrono::{DateTime, Duration, NaiveDateTime, Utc};
use serde::de::DeserializeOwned;
use serde_json::Value;
use vigie_poll::{Key, Mark, SourceError};

use crate::client::Param;

/// The condition selecting the rows after `mark`, ordered by `(key, id)` (or `id` alone). The
/// form `key >= k AND (key > k OR id > i)` keeps the range on the key's index.
pub(crate) fn after(
    key_column: Option<&str>,
    id_column: &str,
    mark: Option<&Mark>,
    params: &mut Vec<Param>,
) -> String {
    match (key_column, mark) {
        (
            Some(key),
            Some(Mark {
                key: Some(k), id, ..
            }),
        ) => {
            params.push(key_param(k));
            params.push(key_param(k));
            params.push(Param::Int(*id));
            format!("({key} >= ? AND ({key} > ? OR {id_column} > ?))")
        }
        (Some(key), _) => format!("{key} IS NOT NULL"),
        (None, Some(mark)) => {
            params.push(Param::Int(mark.id));
            format!("{id_column} > ?")
        }
        (None, None) => "1 = 1".to_owned(),
    }
}

pub(crate) fn key_param(key: &Key) -> Param {
    match key {
        Key::Number(n) => Param::Int(*n),
        Key::Time(t) => Param::Time(*t),
    }
}

/// A time the source keeps without zone, as UTC, given the source's offset from UTC.
pub(crate) fn utc(time: NaiveDateTime, offset_minutes: i32) -> DateTime<Utc> {
    (time - Duration::minutes(i64::from(offset_minutes))).and_utc()
}

/// Epoch milliseconds as a time.
pub(crate) fn from_epoch_ms(ms: i64) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp_millis(ms)
}

/// Reads a connector's settings, naming the bad key.
pub(crate) fn settings<T: DeserializeOwned + Default>(
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

/// A link into a tool's web interface.
pub(crate) fn link(base: &str, path: &str) -> String {
    format!(
        "{}/{}",
        base.trim_end_matches('/'),
        path.trim_start_matches('/')
    )
}
