//! The incident as stored, and everything attached to it: people, resolution lines, timeline,
//! attachments. These types are the module's contract with its readers (the pages, the API, the
//! printable sheet, the XML export and the archive): [`load`] gives one whole incident.
//!
//! Enumerated fields (`state`, `criticality`, `detection`) are stored and carried as their
//! lowercase names; [`State`], [`Criticality`] and [`Detection`] parse them.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use sqlx::AssertSqlSafe;
use vigie_core::store::{Store, StoreError, StoreTx};
use vigie_core::{on_pool, on_tx};

/// Where an incident is in its life (DOMAIN.md): created → qualified → transferred → resolved ⇄
/// in_progress → closed → archived; deleted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    Created,
    Qualified,
    Transferred,
    /// A non-final resolution line was added: work goes on.
    InProgress,
    Resolved,
    Closed,
    /// Written out by the archive job.
    Archived,
    Deleted,
}

impl State {
    pub const ALL: [State; 8] = [
        State::Created,
        State::Qualified,
        State::Transferred,
        State::InProgress,
        State::Resolved,
        State::Closed,
        State::Archived,
        State::Deleted,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            State::Created => "created",
            State::Qualified => "qualified",
            State::Transferred => "transferred",
            State::InProgress => "in_progress",
            State::Resolved => "resolved",
            State::Closed => "closed",
            State::Archived => "archived",
            State::Deleted => "deleted",
        }
    }

    pub fn parse(s: &str) -> Option<State> {
        State::ALL.into_iter().find(|st| st.as_str() == s)
    }

    /// Closed, archived or deleted: nothing but deletion (of a closed one) changes it any more.
    pub fn is_final(self) -> bool {
        matches!(self, State::Closed | State::Archived | State::Deleted)
    }
}

/// Green, orange or red; the board alert's level is 0, 1 or 2.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Criticality {
    Green,
    Orange,
    Red,
}

impl Criticality {
    pub const ALL: [Criticality; 3] = [Criticality::Green, Criticality::Orange, Criticality::Red];

    pub fn as_str(self) -> &'static str {
        match self {
            Criticality::Green => "green",
            Criticality::Orange => "orange",
            Criticality::Red => "red",
        }
    }

    pub fn parse(s: &str) -> Option<Criticality> {
        Criticality::ALL.into_iter().find(|c| c.as_str() == s)
    }

    /// The alert level: red 2, orange 1, green 0.
    pub fn level(self) -> i32 {
        match self {
            Criticality::Green => 0,
            Criticality::Orange => 1,
            Criticality::Red => 2,
        }
    }

    /// The criticality of an alert level (2 red, 1 orange, else green).
    pub fn of_level(level: i64) -> Criticality {
        match level {
            2.. => Criticality::Red,
            1 => Criticality::Orange,
            _ => Criticality::Green,
        }
    }
}

/// How the incident was detected.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Detection {
    Phone,
    Mail,
    Visual,
    Alert,
}

impl Detection {
    pub const ALL: [Detection; 4] = [
        Detection::Phone,
        Detection::Mail,
        Detection::Visual,
        Detection::Alert,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Detection::Phone => "phone",
            Detection::Mail => "mail",
            Detection::Visual => "visual",
            Detection::Alert => "alert",
        }
    }

    pub fn parse(s: &str) -> Option<Detection> {
        Detection::ALL.into_iter().find(|d| d.as_str() == s)
    }
}

/// One incident (table `incidents`).
#[derive(Clone, Debug, Serialize, sqlx::FromRow)]
pub struct Incident {
    pub id: i64,
    /// `YEAR/CODE/N`: unique, N counting per year and domain without gaps.
    pub reference: String,
    pub year: i64,
    pub number: i64,
    /// The domain's id (`network`); its code is in the reference.
    pub domain: String,
    /// Type / category.
    pub category: String,
    /// `green`, `orange` or `red` ([`Criticality`]).
    pub criticality: String,
    pub title: String,
    pub description: String,
    pub comments: String,
    /// `phone`, `mail`, `visual` or `alert` ([`Detection`]).
    pub detection: String,
    /// The alert it was opened from.
    pub alert_id: Option<i64>,
    pub opener_id: Option<i64>,
    pub opener_login: String,
    pub opened_at: DateTime<Utc>,
    /// One of [`State`]'s names.
    pub state: String,
    /// The opener asked to be mailed of the resolution (suivi).
    pub follow: bool,
    /// First qualification, transfer or resolution line.
    pub acknowledged_at: Option<DateTime<Utc>>,
    /// The last final resolution (cleared when the incident goes back in progress).
    pub resolved_at: Option<DateTime<Utc>>,
    pub closed_at: Option<DateTime<Utc>>,
    pub deleted_at: Option<DateTime<Utc>>,
    pub updated_at: DateTime<Utc>,
    /// Seconds from opening to acknowledgement (computed, for reports).
    #[sqlx(skip)]
    pub time_to_acknowledge_secs: Option<i64>,
    /// Seconds from opening to resolution (computed, for reports).
    #[sqlx(skip)]
    pub time_to_resolve_secs: Option<i64>,
}

impl Incident {
    pub fn state(&self) -> Option<State> {
        State::parse(&self.state)
    }

    pub fn criticality(&self) -> Option<Criticality> {
        Criticality::parse(&self.criticality)
    }

    pub fn detection(&self) -> Option<Detection> {
        Detection::parse(&self.detection)
    }

    /// Fills the computed durations.
    pub(crate) fn computed(mut self) -> Incident {
        self.time_to_acknowledge_secs = self
            .acknowledged_at
            .map(|t| (t - self.opened_at).num_seconds().max(0));
        self.time_to_resolve_secs = self
            .resolved_at
            .map(|t| (t - self.opened_at).num_seconds().max(0));
        self
    }
}

/// The columns of [`Incident`], for `SELECT {INCIDENT_COLUMNS} FROM incidents`.
pub const INCIDENT_COLUMNS: &str = "id, reference, year, number, domain, category, criticality,
    title, description, comments, detection, alert_id, opener_id, opener_login, opened_at, state,
    follow, acknowledged_at, resolved_at, closed_at, deleted_at, updated_at";

/// A person of an incident (table `incident_people`).
#[derive(Clone, Debug, Serialize, sqlx::FromRow)]
pub struct Person {
    pub user_id: i64,
    pub login: String,
    /// `assignee` (transferred to them) or `follower` (chosen at opening).
    pub kind: String,
    pub added_at: DateTime<Utc>,
    pub added_by: Option<String>,
}

/// One resolution line (table `incident_resolutions`).
#[derive(Clone, Debug, Serialize, sqlx::FromRow)]
pub struct Resolution {
    pub id: i64,
    pub text: String,
    /// Time spent, in minutes.
    pub minutes: i64,
    /// The final line resolves the incident; the others leave it in progress.
    #[sqlx(rename = "final")]
    #[serde(rename = "final")]
    pub is_final: bool,
    pub author_login: String,
    pub at: DateTime<Utc>,
}

/// One line of the timeline (table `incident_events`): `kind` is `opened`, `edited`,
/// `qualified`, `transferred`, `resolution`, `closed`, `deleted`, `attachment`, `mail`, or
/// `followers`; `details` a JSON object (the changed fields, the people, the mail's recipient
/// and kind, …).
#[derive(Clone, Debug, Serialize)]
pub struct TimelineEntry {
    pub id: i64,
    pub at: DateTime<Utc>,
    pub actor_login: Option<String>,
    pub kind: String,
    pub from_state: Option<String>,
    pub to_state: Option<String>,
    pub details: Value,
}

#[derive(sqlx::FromRow)]
struct EventRow {
    id: i64,
    at: DateTime<Utc>,
    actor_login: Option<String>,
    kind: String,
    from_state: Option<String>,
    to_state: Option<String>,
    details: String,
}

/// An attachment's metadata (table `incident_attachments`); the bytes are at
/// [`crate::attachments::path_of`]`(data_dir, &storage_key)`.
#[derive(Clone, Debug, Serialize, sqlx::FromRow)]
pub struct Attachment {
    pub id: i64,
    pub incident_id: i64,
    /// The name the uploader gave (cleaned of any path).
    pub file_name: String,
    /// Sniffed from the bytes, never taken from the upload.
    pub content_type: String,
    pub size: i64,
    #[serde(skip)]
    pub storage_key: String,
    pub uploaded_by: String,
    pub uploaded_at: DateTime<Utc>,
}

/// One whole incident: the row and everything attached, each list in time order.
#[derive(Clone, Debug, Serialize)]
pub struct IncidentFull {
    pub incident: Incident,
    pub people: Vec<Person>,
    pub resolutions: Vec<Resolution>,
    pub timeline: Vec<TimelineEntry>,
    pub attachments: Vec<Attachment>,
    /// Sum of the resolution lines' minutes.
    pub minutes_spent: i64,
}

/// One incident row.
pub async fn get(store: &Store, id: i64) -> Result<Option<Incident>, StoreError> {
    let sql = format!("SELECT {INCIDENT_COLUMNS} FROM incidents WHERE id = $1");
    let row = on_pool!(store, pool => sqlx::query_as::<_, Incident>(AssertSqlSafe(sql))
        .bind(id)
        .fetch_optional(pool)
        .await)?;
    Ok(row.map(Incident::computed))
}

/// One incident row by its reference (`2026/NET/12`).
pub async fn get_by_reference(
    store: &Store,
    reference: &str,
) -> Result<Option<Incident>, StoreError> {
    let sql = format!("SELECT {INCIDENT_COLUMNS} FROM incidents WHERE reference = $1");
    let row = on_pool!(store, pool => sqlx::query_as::<_, Incident>(AssertSqlSafe(sql))
        .bind(reference)
        .fetch_optional(pool)
        .await)?;
    Ok(row.map(Incident::computed))
}

/// One incident row inside a transaction.
pub async fn get_tx(tx: &mut StoreTx, id: i64) -> Result<Option<Incident>, StoreError> {
    let sql = format!("SELECT {INCIDENT_COLUMNS} FROM incidents WHERE id = $1");
    let row = on_tx!(tx, conn => sqlx::query_as::<_, Incident>(AssertSqlSafe(sql))
        .bind(id)
        .fetch_optional(conn)
        .await)?;
    Ok(row.map(Incident::computed))
}

/// One whole incident with its people, resolution lines, timeline and attachments (deleted
/// incidents included: their state says so).
pub async fn load(store: &Store, id: i64) -> Result<Option<IncidentFull>, StoreError> {
    let Some(incident) = get(store, id).await? else {
        return Ok(None);
    };
    let people = on_pool!(store, pool => sqlx::query_as::<_, Person>(
        "SELECT user_id, login, kind, added_at, added_by FROM incident_people
         WHERE incident_id = $1 ORDER BY added_at, login",
    )
    .bind(id)
    .fetch_all(pool)
    .await)?;
    let resolutions = on_pool!(store, pool => sqlx::query_as::<_, Resolution>(
        "SELECT id, text, minutes, final, author_login, at FROM incident_resolutions
         WHERE incident_id = $1 ORDER BY id",
    )
    .bind(id)
    .fetch_all(pool)
    .await)?;
    let events = on_pool!(store, pool => sqlx::query_as::<_, EventRow>(
        "SELECT id, at, actor_login, kind, from_state, to_state, details FROM incident_events
         WHERE incident_id = $1 ORDER BY id",
    )
    .bind(id)
    .fetch_all(pool)
    .await)?;
    let attachments = attachments_of(store, id).await?;
    let timeline = events
        .into_iter()
        .map(|e| TimelineEntry {
            id: e.id,
            at: e.at,
            actor_login: e.actor_login,
            kind: e.kind,
            from_state: e.from_state,
            to_state: e.to_state,
            details: serde_json::from_str(&e.details).unwrap_or(Value::Null),
        })
        .collect();
    let minutes_spent = resolutions.iter().map(|r: &Resolution| r.minutes).sum();
    Ok(Some(IncidentFull {
        incident,
        people,
        resolutions,
        timeline,
        attachments,
        minutes_spent,
    }))
}

/// The attachments of an incident, oldest first.
pub async fn attachments_of(store: &Store, id: i64) -> Result<Vec<Attachment>, StoreError> {
    Ok(on_pool!(store, pool => sqlx::query_as::<_, Attachment>(
        "SELECT id, incident_id, file_name, content_type, size, storage_key, uploaded_by, uploaded_at
         FROM incident_attachments WHERE incident_id = $1 ORDER BY id",
    )
    .bind(id)
    .fetch_all(pool)
    .await)?)
}
