//! The stored alert as the API and the console show it.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use sqlx::types::Json;

/// The columns of [`Alert`], in one place for every `SELECT`.
pub(crate) const ALERT_COLUMNS: &str = "id, source, source_ref, fingerprint, resource, domain, \
    severity, source_severity, message, critical_zone, tags, attributes, raw, rules, state, count, \
    occurred_at, received_at, last_seen, updated_at, cleared_at, reopened_at, reopen_count, incident_id, \
    flapping, flap_count, deferred_until, acknowledged_by, in_maintenance";

/// One qualified alert.
#[derive(Clone, Debug, PartialEq, Serialize, sqlx::FromRow)]
pub struct Alert {
    pub id: i64,
    pub source: String,
    pub source_ref: Option<String>,
    pub fingerprint: String,
    pub resource: String,
    pub domain: String,
    /// 0 low, 1 warning, 2 critical.
    pub severity: i32,
    pub source_severity: Option<i32>,
    pub message: String,
    pub critical_zone: bool,
    pub tags: Json<Value>,
    pub attributes: Json<Value>,
    pub raw: Option<Json<Value>>,
    /// Names of the qualification rules that matched.
    pub rules: Json<Value>,
    pub state: String,
    /// How many duplicates it absorbed.
    pub count: i64,
    pub occurred_at: DateTime<Utc>,
    pub received_at: DateTime<Utc>,
    pub last_seen: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub cleared_at: Option<DateTime<Utc>>,
    pub reopened_at: Option<DateTime<Utc>>,
    pub reopen_count: i64,
    pub incident_id: Option<i64>,
    /// Raised again after a clear too often lately (see `pipeline::Flapping`).
    pub flapping: bool,
    /// Reopens within the current flapping window.
    pub flap_count: i32,
    pub deferred_until: Option<DateTime<Utc>>,
    pub acknowledged_by: Option<String>,
    /// A maintenance window keeps it off the board and out of notifications.
    pub in_maintenance: bool,
}

/// What happened to an alert, as live subscribers are told.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Change {
    Created,
    Updated,
    Cleared,
}

/// One change of one alert, published after its transaction committed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct AlertEvent {
    pub alert_id: i64,
    pub change: Change,
    /// The alert's level after the change, when the writer knows it without reading the alert
    /// (raises and refreshes): lets a subscriber that only cares about some levels (on-call
    /// routing) skip the others without a read per alert.
    pub severity: Option<i32>,
}
