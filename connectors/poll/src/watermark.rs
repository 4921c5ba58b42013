//! Watermarks: where a source was read up to, per stream (a table or a query), encoded in the
//! opaque position the hub commits with the records.
//!
//! A mark is an id, or a (key, id) pair where the key is a modification time or a number (epoch
//! milliseconds) and the id breaks ties: rows sharing a key are read in id order and none is
//! skipped, because the next poll asks for `key > k OR (key = k AND id > i)`.

use std::collections::BTreeMap;

use chrono::NaiveDateTime;
use serde::{Deserialize, Serialize};

use crate::source::SourceError;

/// The ordering key of a mark.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Key {
    Number(i64),
    Time(NaiveDateTime),
}

/// The last row read of one stream.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mark {
    /// The ordering key; `None` for id-only watermarks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<Key>,
    pub id: i64,
    /// The stream is still being read for the first time (see [`Positions::initial`]).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub initial: bool,
}

impl Mark {
    /// Whether a row `(key, id)` comes after this mark.
    pub fn is_before(&self, key: Option<&Key>, id: i64) -> bool {
        match (&self.key, key) {
            (Some(k), Some(other)) => other > k || (other == k && id > self.id),
            _ => id > self.id,
        }
    }
}

/// The marks of every stream of a source: the position committed with its records, as JSON
/// (`{"tickets":{"key":"2025-01-14T09:40:05","id":4521}}`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Positions(BTreeMap<String, Mark>);

impl Positions {
    /// Reads a committed position; `None` is the empty position (nothing read yet).
    pub fn parse(position: Option<&str>) -> Result<Positions, SourceError> {
        match position {
            None => Ok(Positions::default()),
            Some(text) if text.trim().is_empty() => Ok(Positions::default()),
            Some(text) => serde_json::from_str(text).map_err(|e| {
                SourceError::Config(format!(
                    "the stored watermark `{}` cannot be read ({e}); delete the source's checkpoint to read it again from the start",
                    crate::text::one_line(text, 200, "")
                ))
            }),
        }
    }

    pub fn get(&self, stream: &str) -> Option<&Mark> {
        self.0.get(stream)
    }

    pub fn set(&mut self, stream: &str, mark: Mark) {
        self.0.insert(stream.to_owned(), mark);
    }

    /// Whether the stream is read for the first time: never read, or a first read not finished.
    /// Connectors skip clears then (there is no alert of theirs to clear yet).
    pub fn initial(&self, stream: &str) -> bool {
        self.0.get(stream).is_none_or(|m| m.initial)
    }

    /// The position as the hub stores it.
    pub fn encode(&self) -> String {
        serde_json::to_string(&self.0).unwrap_or_else(|_| "{}".to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn time(s: &str) -> Key {
        Key::Time(NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S").unwrap_or_default())
    }

    #[test]
    fn positions_round_trip() {
        let mut p = Positions::default();
        assert!(p.initial("tickets"));
        p.set(
            "tickets",
            Mark {
                key: Some(time("2025-01-14 09:40:05")),
                id: 4521,
                initial: false,
            },
        );
        p.set(
            "alerts",
            Mark {
                key: Some(Key::Number(1_736_845_320_000)),
                id: 7,
                initial: true,
            },
        );
        let text = p.encode();
        assert_eq!(
            text,
            r#"{"alerts":{"key":1736845320000,"id":7,"initial":true},"tickets":{"key":"2025-01-14T09:40:05","id":4521}}"#
        );
        let back = Positions::parse(Some(&text)).ok();
        assert_eq!(back.as_ref(), Some(&p));
        assert!(!p.initial("tickets"));
        assert!(p.initial("alerts"));
        assert!(matches!(
            Positions::parse(Some("not json")),
            Err(SourceError::Config(_))
        ));
        assert_eq!(Positions::parse(None).ok(), Some(Positions::default()));
    }

    #[test]
    fn ties_are_broken_by_id() {
        let mark = Mark {
            key: Some(time("2025-01-14 09:40:05")),
            id: 10,
            initial: false,
        };
        let same = time("2025-01-14 09:40:05");
        let later = time("2025-01-14 09:40:06");
        assert!(mark.is_before(Some(&same), 11));
        assert!(!mark.is_before(Some(&same), 10));
        assert!(!mark.is_before(Some(&same), 3));
        assert!(mark.is_before(Some(&later), 3));
        let ids = Mark {
            key: None,
            id: 5,
            initial: false,
        };
        assert!(ids.is_before(None, 6));
        assert!(!ids.is_before(None, 5));
    }
}
