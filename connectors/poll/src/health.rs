//! A source's health: what the scheduler knows of its last polls, shown on the source's line in
//! the API and the console, and kept by the hub across restarts.

use std::sync::{Arc, RwLock};

use chrono::{DateTime, Utc};
use serde::Serialize;

/// Where a source stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// Configured, not polled yet.
    Starting,
    /// The last poll succeeded.
    Ok,
    /// The last poll failed (see `last_error`).
    Failing,
    /// Configured but disabled: not polled.
    Disabled,
    /// Its settings are wrong: it cannot be started (see `last_error`).
    Misconfigured,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Starting => "starting",
            State::Ok => "ok",
            State::Failing => "failing",
            State::Disabled => "disabled",
            State::Misconfigured => "misconfigured",
        }
    }

    pub fn parse(s: &str) -> Option<State> {
        [
            State::Starting,
            State::Ok,
            State::Failing,
            State::Disabled,
            State::Misconfigured,
        ]
        .into_iter()
        .find(|x| x.as_str() == s)
    }
}

/// One source's health line.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Health {
    pub source: String,
    pub kind: String,
    pub state: State,
    /// Seconds between two polls.
    pub interval_seconds: u64,
    pub last_poll: Option<DateTime<Utc>>,
    /// The end of the last poll whose result was committed.
    pub last_success: Option<DateTime<Utc>>,
    /// The last error, kept after a success so the line still tells what happened.
    pub last_error: Option<String>,
    /// `unreachable`, `login`, `schema`, `data`, `config`, `timeout`, `hub`, …
    pub last_error_class: Option<String>,
    pub last_error_at: Option<DateTime<Utc>>,
    /// Since when the source fails without interruption.
    pub failing_since: Option<DateTime<Utc>>,
    pub consecutive_failures: u32,
    /// Rows read and records submitted since the hub started.
    pub rows_read: u64,
    pub records: u64,
    /// How long the last poll took.
    pub last_poll_ms: Option<u64>,
    /// The last poll stopped at its limit: rows are waiting.
    pub backlog: bool,
    /// The time of the newest row read.
    pub newest_row: Option<DateTime<Utc>>,
    /// The committed watermark, as the connector encodes it.
    pub position: Option<String>,
    /// The "source unreachable" alert is raised.
    pub alert_raised: bool,
}

impl Health {
    pub fn new(source: &str, kind: &str, interval_seconds: u64) -> Health {
        Health {
            source: source.to_owned(),
            kind: kind.to_owned(),
            state: State::Starting,
            interval_seconds,
            last_poll: None,
            last_success: None,
            last_error: None,
            last_error_class: None,
            last_error_at: None,
            failing_since: None,
            consecutive_failures: 0,
            rows_read: 0,
            records: 0,
            last_poll_ms: None,
            backlog: false,
            newest_row: None,
            position: None,
            alert_raised: false,
        }
    }

    /// How stale the hub's copy of the source is: the time since the last committed poll, or
    /// `None` when no poll ever succeeded.
    pub fn lag_seconds(&self, now: DateTime<Utc>) -> Option<i64> {
        self.last_success.map(|t| (now - t).num_seconds().max(0))
    }
}

/// A health line shared between a source's poller (the only writer) and its readers.
#[derive(Clone, Debug)]
pub struct HealthCell(Arc<RwLock<Health>>);

impl HealthCell {
    pub fn new(health: Health) -> HealthCell {
        HealthCell(Arc::new(RwLock::new(health)))
    }

    /// A copy of the current line.
    pub fn get(&self) -> Health {
        match self.0.read() {
            Ok(h) => h.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Changes the line in place and returns a copy of the result.
    pub fn update(&self, change: impl FnOnce(&mut Health)) -> Health {
        let mut guard = match self.0.write() {
            Ok(h) => h,
            Err(poisoned) => poisoned.into_inner(),
        };
        change(&mut guard);
        guard.clone()
    }
}
