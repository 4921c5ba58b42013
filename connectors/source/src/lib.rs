//! The source contract: what every source (push API, syslog, database pollers, the host agent,
//! webhooks) hands to the hub's ingestion pipeline, and what it gets back.
//!
//! This crate is the lowest layer of the workspace. Connectors depend on it and on nothing of the
//! hub's modules; the alerts module implements [`Ingest`] and consumes [`RawRecord`]s.

use std::fmt;
use std::future::Future;
use std::pin::Pin;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

/// The three qualified levels of the domain: what the operators see, coloured green, orange, red.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    /// `0`, green (faible).
    Low = 0,
    /// `1`, orange (avertisseur).
    Warning = 1,
    /// `2`, red (rouge).
    Critical = 2,
}

impl Level {
    /// The level for its number, `None` outside `0..=2`.
    pub fn from_number(n: i64) -> Option<Level> {
        match n {
            0 => Some(Level::Low),
            1 => Some(Level::Warning),
            2 => Some(Level::Critical),
            _ => None,
        }
    }

    /// The stored and wire number of the level.
    pub fn number(self) -> i32 {
        self as i32
    }

    /// One level up, capped at critical (used by the *critical zone* mark).
    pub fn raised(self) -> Level {
        match self {
            Level::Low => Level::Warning,
            Level::Warning | Level::Critical => Level::Critical,
        }
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.number())
    }
}

/// One record as a source saw it, before qualification.
///
/// Everything a source knows goes here; the pipeline decides what it becomes (an alert, a
/// duplicate, a clear, or nothing when a rule drops it).
#[derive(Clone, Debug, PartialEq)]
pub struct RawRecord {
    /// The source instance's name (`glpi-prod`, `syslog`, the pushing tool's name).
    pub source: String,
    /// The record's identity inside its source (a row id, a ticket number). A record delivered
    /// twice with the same reference is stored once.
    pub source_ref: Option<String>,
    /// What the record is about: a host, an interface, a service.
    pub resource: String,
    pub message: String,
    /// The domain when the source knows it; rules may set or override it.
    pub domain: Option<String>,
    /// A level the source already qualified; kept as it is by the rules' defaults.
    pub level: Option<Level>,
    /// The source's own severity (syslog scale unless the source's rules say otherwise).
    pub source_severity: Option<i32>,
    pub occurred_at: Option<DateTime<Utc>>,
    /// Structured fields rules can match on (`facility`, `app_name`, `event`, …).
    pub attributes: Map<String, Value>,
    /// The source's own record, kept as it was for the alert's detail page.
    pub raw: Option<Value>,
    /// The source says the condition is over (ticket solved, monitor back up).
    pub clear: bool,
}

impl RawRecord {
    /// A record with only the required parts; the rest is filled by the caller.
    pub fn new(
        source: impl Into<String>,
        resource: impl Into<String>,
        message: impl Into<String>,
    ) -> RawRecord {
        RawRecord {
            source: source.into(),
            source_ref: None,
            resource: resource.into(),
            message: message.into(),
            domain: None,
            level: None,
            source_severity: None,
            occurred_at: None,
            attributes: Map::new(),
            raw: None,
            clear: false,
        }
    }
}

/// Where a periodic source has read up to. Committed in the same store transaction as the alerts
/// it produced, so a crash never loses nor repeats a record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checkpoint {
    pub source: String,
    /// Opaque to the hub: an id, or a time plus a tie-breaker, as the source encodes it.
    pub position: String,
}

/// What one call to [`Ingest::submit`] carries: records from one source, and optionally the
/// source's new watermark.
#[derive(Clone, Debug, Default)]
pub struct Submission {
    pub records: Vec<RawRecord>,
    pub checkpoint: Option<Checkpoint>,
}

/// What became of one record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Effect {
    /// A new alert was opened.
    Created,
    /// An open alert with the same fingerprint absorbed it (its count went up).
    Deduplicated,
    /// A cleared alert with the same fingerprint was raised again.
    Reopened,
    /// The same record (source and reference) had already been received: nothing counted twice.
    Replayed,
    /// The open alert(s) it referred to were marked cleared.
    Cleared,
    /// A clear with no open alert to clear.
    NothingToClear,
    /// A qualification rule marked it as not significant.
    Dropped,
}

impl Effect {
    /// A stable lowercase name, used in metrics and API answers.
    pub fn name(self) -> &'static str {
        match self {
            Effect::Created => "created",
            Effect::Deduplicated => "deduplicated",
            Effect::Reopened => "reopened",
            Effect::Replayed => "replayed",
            Effect::Cleared => "cleared",
            Effect::NothingToClear => "nothing_to_clear",
            Effect::Dropped => "dropped",
        }
    }
}

/// The outcome for one record, in the order of the submission.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Outcome {
    /// The alert the record was stored in or applied to, if any.
    pub alert_id: Option<i64>,
    pub effect: Effect,
}

/// A record the pipeline refused before anything was written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordError {
    /// Position of the record in its submission.
    pub index: usize,
    /// The field at fault, as named on the wire (`resource`, `domain`, `attributes`).
    pub field: &'static str,
    pub problem: String,
}

impl fmt::Display for RecordError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "record {}: `{}` {}",
            self.index, self.field, self.problem
        )
    }
}

/// Why a submission was not stored. In every case nothing of it was written.
#[derive(Clone, Debug, thiserror::Error)]
pub enum IngestError {
    #[error("{} invalid record(s); first: {}", .0.len(), .0.first().map(|e| e.to_string()).unwrap_or_default())]
    Invalid(Vec<RecordError>),
    /// The store could not take the write (down, read-only, timed out).
    #[error("the store is unavailable: {0}")]
    Unavailable(String),
    /// The store refused the write for another reason (a defect, not the caller's input).
    #[error("the store refused the write: {0}")]
    Failed(String),
    /// The pipeline is stopping or saturated past its wait limit.
    #[error("the ingestion queue is full or closed")]
    Overloaded,
}

/// A boxed future, so that [`Ingest`] stays object-safe without an extra dependency.
pub type IngestFuture<'a> =
    Pin<Box<dyn Future<Output = Result<Vec<Outcome>, IngestError>> + Send + 'a>>;

/// The pipeline's entry, as every source sees it.
///
/// `submit` returns only once the submission is committed (or refused): an `Ok` means the
/// records and the checkpoint are durably stored.
pub trait Ingest: Send + Sync {
    fn submit(&self, submission: Submission) -> IngestFuture<'_>;

    /// For each record a view describes, whether the qualification rules drop it, decided
    /// without the record: when they do, the pipeline counts it as dropped and the source does
    /// not build nor submit it. A flood source (syslog, where rules drop most lines) asks before
    /// it builds records, which costs more than the rules. `false` when the pipeline cannot tell
    /// (the default): the source submits the record and the rules decide then.
    fn screen(&self, views: &[&dyn RuleView]) -> Vec<bool> {
        vec![false; views.len()]
    }
}

/// A record as the qualification rules read it, before the record is built: every part answers
/// exactly what the built [`RawRecord`] would hold once normalised (source and resource trimmed),
/// so that [`Ingest::screen`] decides as the rules would on the record itself.
pub trait RuleView {
    fn source(&self) -> &str;
    fn resource(&self) -> &str;
    fn message(&self) -> &str;
    fn source_severity(&self) -> Option<i32>;
    /// The syslog facility (`0..=23`) the record's `facility` attribute names, if any.
    fn facility(&self) -> Option<u32>;
    /// Calls `f` with an attribute as text (strings as they are, numbers and booleans printed)
    /// and returns its answer; `None` when the record would have no such attribute or not as text.
    fn attribute(&self, key: &str, f: &mut dyn FnMut(&str) -> bool) -> Option<bool>;
    fn domain(&self) -> Option<&str> {
        None
    }
    /// Whether the source gave a level of its own.
    fn level_given(&self) -> bool {
        false
    }
    fn clear(&self) -> bool {
        false
    }
}

/// The length of `value` serialised as JSON, counted without keeping the text (the record's
/// limits are on the serialised size, checked for every record).
pub fn serialised_len<T: serde::Serialize + ?Sized>(value: &T) -> usize {
    struct Counter(usize);
    impl std::io::Write for Counter {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut counter = Counter(0);
    match serde_json::to_writer(&mut counter, value) {
        Ok(()) => counter.0,
        Err(_) => usize::MAX,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_round_trip_and_raise() {
        for n in 0..=2 {
            let level = Level::from_number(n).map(Level::number);
            assert_eq!(level, Some(n as i32));
        }
        assert_eq!(Level::from_number(3), None);
        assert_eq!(Level::from_number(-1), None);
        assert_eq!(Level::Low.raised(), Level::Warning);
        assert_eq!(Level::Critical.raised(), Level::Critical);
        assert!(Level::Critical > Level::Low);
    }
}
