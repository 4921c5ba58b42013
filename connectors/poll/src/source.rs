//! What a polled source is: the [`Source`] trait, what one poll returns ([`Batch`]), the
//! equipment it may report, the questions of the on-demand face, and its errors.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Map, Value};
use vigie_source::RawRecord;

/// A boxed future, so that the traits of this crate stay object-safe.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Why a source could not be read. Every variant carries a message meant for the source's health
/// line: it names the table, row and column at fault when there is one, and never a password.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SourceError {
    /// The database cannot be reached (connection refused or cut, name resolution, TLS).
    #[error("cannot reach the source: {0}")]
    Unreachable(String),
    /// The database answered but refused the login or the database name.
    #[error("the source refused the connection: {0}")]
    Login(String),
    /// A table or column the connector reads is missing: the tool's version differs.
    #[error("the source's schema is not the expected one: {0}")]
    Schema(String),
    /// A row holds something the connector cannot map (NULL where a value is expected, text that
    /// is not UTF-8, a value of the wrong type).
    #[error("bad data in the source: {0}")]
    Data(String),
    /// The source's settings are wrong (a query that is not a single SELECT, an unknown key).
    #[error("the source is misconfigured: {0}")]
    Config(String),
    /// The poll or the question did not finish in time.
    #[error("the source did not answer within {}s", .0.as_secs_f64())]
    Timeout(Duration),
    /// The question is not one this kind of source can answer.
    #[error("not available from this source: {0}")]
    Unsupported(String),
    /// Anything else the database reported.
    #[error("the source reported an error: {0}")]
    Other(String),
}

impl SourceError {
    /// A stable lowercase name of the class, for metrics, the API and the alert's attributes.
    pub fn class(&self) -> &'static str {
        match self {
            SourceError::Unreachable(_) => "unreachable",
            SourceError::Login(_) => "login",
            SourceError::Schema(_) => "schema",
            SourceError::Data(_) => "data",
            SourceError::Config(_) => "config",
            SourceError::Timeout(_) => "timeout",
            SourceError::Unsupported(_) => "unsupported",
            SourceError::Other(_) => "other",
        }
    }
}

/// One piece of equipment (a computer, a monitor, a service) a source knows, for the supervision
/// views. Stored by the hub keyed by the source and `source_ref`; reporting it again updates it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Equipment {
    /// Its identity inside the source (`computer/88`, `monitor/10000342`).
    pub source_ref: String,
    pub name: String,
    /// `computer`, `monitor`, `service`, …
    pub kind: String,
    pub domain: Option<String>,
    /// The source's own status text, when it has one.
    pub status: Option<String>,
    pub attributes: Map<String, Value>,
    /// Deleted, put in the trash or turned into a template in the source.
    pub removed: bool,
    /// When the source last changed it.
    pub updated_at: Option<DateTime<Utc>>,
}

/// Equipment reported by one poll.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct EquipmentBatch {
    pub items: Vec<Equipment>,
    /// Kinds for which `items` is the source's complete list: the hub marks as removed the
    /// equipment of these kinds it holds for the source and that is not in `items`.
    pub complete_kinds: Vec<String>,
}

impl EquipmentBatch {
    pub fn is_empty(&self) -> bool {
        self.items.is_empty() && self.complete_kinds.is_empty()
    }
}

/// What one poll read.
#[derive(Clone, Debug, Default)]
pub struct Batch {
    /// Records for the pipeline, in the source's order.
    pub records: Vec<RawRecord>,
    pub equipment: EquipmentBatch,
    /// Where the next poll starts, committed with `records`; `None` leaves it unchanged.
    pub position: Option<String>,
    /// Rows read from the source (including rows that produced no record).
    pub rows_read: u64,
    /// A limit was reached: more rows are waiting, poll again at once.
    pub more: bool,
    /// The time of the newest row read, when the source's rows carry one.
    pub newest: Option<DateTime<Utc>>,
    /// The poll stopped at a row it could not map. `records` and `position` cover the rows before
    /// it, which are committed; the next poll starts again at the bad row.
    pub stopped: Option<SourceError>,
    /// `Some`: every resource this source says is in maintenance now (a full snapshot: the hub
    /// keeps a maintenance window for each and ends the others). `None`: the source says nothing.
    pub maintenance: Option<Vec<MaintenanceSpan>>,
}

/// A resource a source reports in maintenance (WhatsUp Gold's maintenance state).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MaintenanceSpan {
    /// The resource of the source's alerts (a device name).
    pub resource: String,
    pub since: DateTime<Utc>,
    /// What is in maintenance, for the window's name (a monitor).
    pub what: String,
}

/// A question of the on-demand face, asked when an operator wants it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Question {
    /// The periods during which a resource was unavailable, within `[from, to)`.
    Unavailability {
        resource: String,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    },
    /// A resource's statistics over `[from, to)`.
    Statistics {
        resource: String,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    },
    /// A node's current status, CPU and memory, and its history over `[from, to)` (SolarWinds
    /// Orion; other kinds refuse it as unsupported).
    NodeReport {
        resource: String,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    },
}

impl Question {
    pub fn resource(&self) -> &str {
        match self {
            Question::Unavailability { resource, .. }
            | Question::Statistics { resource, .. }
            | Question::NodeReport { resource, .. } => resource,
        }
    }

    pub fn range(&self) -> (DateTime<Utc>, DateTime<Utc>) {
        match self {
            Question::Unavailability { from, to, .. }
            | Question::Statistics { from, to, .. }
            | Question::NodeReport { from, to, .. } => (*from, *to),
        }
    }
}

/// One period of unavailability, clipped to the question's range.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Period {
    pub start: DateTime<Utc>,
    /// `None` while it lasts.
    pub end: Option<DateTime<Utc>>,
    /// `outage` or `maintenance`.
    pub kind: String,
    pub detail: Option<String>,
}

/// A resource's figures over a range.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Statistics {
    pub resource: String,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    /// Outages (maintenance excluded).
    pub outages: u32,
    pub downtime_seconds: i64,
    pub maintenance_seconds: i64,
    /// Share of the range outside outages, in percent (maintenance counts as available).
    pub availability_percent: f64,
    /// Mean length of the outages that ended, in seconds.
    pub mean_time_to_repair_seconds: Option<i64>,
    pub longest_outage_seconds: Option<i64>,
}

/// A node's figures, answering [`Question::NodeReport`].
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct NodeReport {
    pub node_id: i64,
    pub caption: String,
    /// The source's status code mapped to a name; `unknown` for a code not in its list.
    pub status: String,
    /// The raw code, kept so an unknown one stays visible.
    pub status_code: Option<i64>,
    pub status_description: Option<String>,
    /// Percent; `None` while the source has no figure (Orion writes -2).
    pub cpu_load: Option<f64>,
    pub percent_memory_used: Option<f64>,
    /// The range the history covers.
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    /// Oldest first.
    pub history: Vec<LoadSample>,
}

/// One point of a node's history (Orion's `CPULoad` row).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LoadSample {
    pub at: DateTime<Utc>,
    /// Mean CPU load over the sample, percent.
    pub avg_load: Option<f64>,
    /// Mean memory used over the sample, bytes.
    pub avg_memory_used: Option<f64>,
}

/// The answer to a [`Question`].
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "answer", rename_all = "snake_case")]
pub enum Answer {
    Unavailability {
        resource: String,
        periods: Vec<Period>,
    },
    Statistics(Statistics),
    NodeReport(NodeReport),
}

/// A database the hub reads. One value per configured source; the scheduler never runs two polls
/// of one source at once, but the on-demand face may be asked while a poll runs.
pub trait Source: Send + Sync {
    /// The configured name; becomes the `source` of its records.
    fn name(&self) -> &str;
    /// `glpi`, `manageengine`, `bareos`, `sql`, …
    fn kind(&self) -> &str;
    /// The domain of its records (the configured one, else the connector's default), also the
    /// domain of its "source unreachable" alert.
    fn domain(&self) -> Option<&str> {
        None
    }
    /// Reads what is new since `position` (`None`: nothing was read yet). Must not change the
    /// source. The returned position is committed with the records, in one transaction.
    fn poll<'a>(&'a self, position: Option<&'a str>) -> BoxFuture<'a, Result<Batch, SourceError>>;
    /// Answers an operator's question by querying the source now. The caller bounds it with a
    /// timeout.
    fn ask<'a>(&'a self, question: &'a Question) -> BoxFuture<'a, Result<Answer, SourceError>>;
    /// Checks the connection (and the login) with a trivial query.
    fn ping(&self) -> BoxFuture<'_, Result<(), SourceError>>;
}

impl fmt::Debug for dyn Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Source")
            .field("name", &self.name())
            .field("kind", &self.kind())
            .finish()
    }
}
