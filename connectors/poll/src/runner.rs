//! The scheduler of one source: poll at its interval, commit what was read with the new watermark
//! in one transaction, back off on errors, keep the health line, and raise (then clear) the
//! "source unreachable" alert.
//!
//! One [`Poller`] runs one source in one task, so two polls of a source never overlap. Its
//! watermark lives in the hub's store: it is read there at start and after any failed commit, and
//! only ever advanced by a commit that also stored the records read up to it. A crash at any
//! point therefore leaves the store with both the records and the watermark of the last commit,
//! or neither of the next: the next poll reads the same rows again, and nothing is lost or
//! stored twice.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde_json::Value;
use tokio::sync::watch;
use vigie_source::{Checkpoint, Effect, IngestError, IngestFuture, Level, RawRecord, Submission};

use crate::health::{Health, HealthCell, State};
use crate::source::{BoxFuture, EquipmentBatch, MaintenanceSpan, Source, SourceError};

/// The event name of the "source unreachable" alert (its `attributes.event`).
pub const UNREACHABLE_EVENT: &str = "source-unreachable";

/// What the scheduler needs from the hub. The hub implements it over its pipeline and store;
/// connectors never touch the hub's tables themselves.
pub trait Hub: Send + Sync {
    /// Stores records and the checkpoint in one transaction (the pipeline's `Ingest::submit`).
    fn submit(&self, submission: Submission) -> IngestFuture<'_>;
    /// The position last committed for the source.
    fn position<'a>(&'a self, source: &'a str) -> BoxFuture<'a, Result<Option<String>, String>>;
    /// Stores equipment reported by a poll (idempotent: the same item twice is one item).
    fn equipment<'a>(
        &'a self,
        source: &'a str,
        batch: EquipmentBatch,
    ) -> BoxFuture<'a, Result<(), String>>;
    /// Told after every poll; the hub decides what to persist.
    fn health(&self, health: Health) -> BoxFuture<'_, ()>;
    /// The resources a source says are in maintenance now (a full snapshot), with the domain of
    /// its alerts. Hubs that keep no maintenance windows ignore it.
    fn maintenance<'a>(
        &'a self,
        source: &'a str,
        domain: Option<&'a str>,
        spans: Vec<MaintenanceSpan>,
    ) -> BoxFuture<'a, Result<(), String>> {
        let _ = (source, domain, spans);
        Box::pin(async { Ok(()) })
    }
}

/// How a source is scheduled.
#[derive(Clone, Debug, PartialEq)]
pub struct PollSettings {
    /// Time between the end of a poll and the start of the next.
    pub interval: Duration,
    /// A poll taking longer is abandoned (and counts as a failure).
    pub timeout: Duration,
    /// The longest wait between two tries of a failing source.
    pub max_backoff: Duration,
    /// How long a source fails before the "source unreachable" alert is raised.
    pub unreachable_after: Duration,
    /// The domain of the alert; `None` leaves it to the pipeline (the source's configured domain).
    pub domain: Option<String>,
    /// Polls run back to back while a source reports a backlog, before waiting an interval.
    pub catch_up_rounds: u32,
}

impl PollSettings {
    /// Defaults around an interval: 30 s timeout (at least the interval), back-off up to 5 min
    /// (at least the interval), alert after 2 min of failures (at least 3 intervals).
    pub fn new(interval: Duration) -> PollSettings {
        let interval = interval.max(Duration::from_millis(10));
        PollSettings {
            interval,
            timeout: interval.max(Duration::from_secs(30)),
            max_backoff: interval.max(Duration::from_secs(300)),
            unreachable_after: (interval * 3).max(Duration::from_secs(120)),
            domain: None,
            catch_up_rounds: 50,
        }
    }
}

/// The wait before the next try after `failures` failures in a row: the interval doubled per
/// failure, capped, with "equal jitter" (between half and all of it) so that sources failing
/// together do not retry together. `unit` is a random number in `[0, 1)`.
pub fn backoff(interval: Duration, max: Duration, failures: u32, unit: f64) -> Duration {
    let exponent = failures.saturating_sub(1).min(30) as i32;
    let base = (interval.as_secs_f64() * 2f64.powi(exponent))
        .min(max.as_secs_f64().max(interval.as_secs_f64()));
    let unit = unit.clamp(0.0, 1.0);
    Duration::from_secs_f64(base * (0.5 + 0.5 * unit))
}

fn random_unit() -> f64 {
    match getrandom::u64() {
        Ok(n) => (n >> 11) as f64 / (1u64 << 53) as f64,
        Err(_) => 0.5,
    }
}

/// What one poll cycle did.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    /// The poll succeeded and its result (if any) was committed.
    Committed {
        rows: u64,
        records: usize,
        /// Records that created, updated or cleared an alert (not replays nor drops).
        effective: usize,
        more: bool,
    },
    /// The source failed; what came before the failure (if anything) was committed.
    SourceFailed(SourceError),
    /// The source was read but the hub could not store the result; the watermark is unchanged.
    HubFailed(String),
}

impl Outcome {
    pub fn is_success(&self) -> bool {
        matches!(self, Outcome::Committed { .. })
    }
}

/// One source's scheduler.
pub struct Poller {
    source: Arc<dyn Source>,
    settings: PollSettings,
    hub: Arc<dyn Hub>,
    health: HealthCell,
    /// The committed position; `None` while unknown (at start, after a failed commit).
    position: Option<Option<String>>,
    failures: u32,
    failing_since: Option<DateTime<Utc>>,
    alert_raised: bool,
    /// At start the alert may have been left raised by an earlier run: the first success
    /// clears it (a clear of nothing is harmless).
    clear_pending: bool,
}

impl Poller {
    pub fn new(
        source: Arc<dyn Source>,
        settings: PollSettings,
        hub: Arc<dyn Hub>,
        health: HealthCell,
    ) -> Poller {
        Poller {
            source,
            settings,
            hub,
            health,
            position: None,
            failures: 0,
            failing_since: None,
            alert_raised: false,
            clear_pending: true,
        }
    }

    pub fn health(&self) -> &HealthCell {
        &self.health
    }

    /// Polls until `stop` says so (or its sender is dropped). A poll under way is finished first.
    pub async fn run(mut self, mut stop: watch::Receiver<bool>) {
        // Sources configured together do not all start in the same instant.
        let first = self
            .settings
            .interval
            .min(Duration::from_secs(5))
            .mul_f64(random_unit());
        if wait_or_stop(first, &mut stop).await {
            return;
        }
        let mut rounds = 0u32;
        loop {
            if *stop.borrow() {
                return;
            }
            let outcome = self.cycle().await;
            let wait = match &outcome {
                Outcome::Committed { more: true, .. } if rounds < self.settings.catch_up_rounds => {
                    rounds += 1;
                    Duration::ZERO
                }
                Outcome::Committed { .. } => {
                    rounds = 0;
                    self.settings.interval
                }
                Outcome::SourceFailed(_) | Outcome::HubFailed(_) => {
                    rounds = 0;
                    backoff(
                        self.settings.interval,
                        self.settings.max_backoff,
                        self.failures,
                        random_unit(),
                    )
                }
            };
            if wait_or_stop(wait, &mut stop).await {
                return;
            }
        }
    }

    /// One poll: read, commit, update the health line, raise or clear the alert.
    pub async fn cycle(&mut self) -> Outcome {
        let started = Instant::now();
        let name = self.source.name().to_owned();
        let outcome = self.poll_and_commit().await;
        let elapsed = started.elapsed();
        let now = Utc::now();
        let result = match &outcome {
            Outcome::Committed { .. } => "ok",
            Outcome::SourceFailed(_) => "source_error",
            Outcome::HubFailed(_) => "hub_error",
        };
        metrics::counter!("vigie_source_polls_total", "source" => name.clone(), "result" => result)
            .increment(1);
        metrics::histogram!("vigie_source_poll_seconds", "source" => name.clone())
            .record(elapsed.as_secs_f64());

        match &outcome {
            Outcome::Committed { .. } => {
                if self.failures > 0 {
                    tracing::info!(source = %name, "Source readable again.");
                }
                self.failures = 0;
                self.failing_since = None;
            }
            Outcome::SourceFailed(e) => {
                self.failures += 1;
                let since = *self.failing_since.get_or_insert(now);
                tracing::warn!(source = %name, class = e.class(), failures = self.failures, error = %e, "Source poll failed; the watermark is kept.");
                if !self.alert_raised
                    && (now - since).to_std().unwrap_or_default() >= self.settings.unreachable_after
                {
                    self.raise_alert(e, since).await;
                }
            }
            Outcome::HubFailed(e) => {
                // Not the source's fault: no alert about the source, but retry with back-off.
                self.failures += 1;
                tracing::warn!(source = %name, error = %e, "The hub could not store a poll's result; it will be read again.");
            }
        }

        let position = self.position.clone().flatten();
        let failing_since = self.failing_since;
        let alert_raised = self.alert_raised;
        let failures = self.failures;
        let health = self.health.update(|h| {
            h.last_poll = Some(now);
            h.last_poll_ms = Some(elapsed.as_millis() as u64);
            h.failing_since = failing_since;
            h.consecutive_failures = failures;
            h.alert_raised = alert_raised;
            if position.is_some() {
                h.position = position;
            }
            match &outcome {
                Outcome::Committed {
                    rows,
                    records,
                    more,
                    ..
                } => {
                    h.state = State::Ok;
                    h.last_success = Some(now);
                    h.rows_read += rows;
                    h.records += *records as u64;
                    h.backlog = *more;
                }
                Outcome::SourceFailed(e) => {
                    h.state = State::Failing;
                    h.last_error = Some(e.to_string());
                    h.last_error_class = Some(e.class().to_owned());
                    h.last_error_at = Some(now);
                }
                Outcome::HubFailed(e) => {
                    h.state = State::Failing;
                    h.last_error = Some(format!("the hub could not store the poll: {e}"));
                    h.last_error_class = Some("hub".to_owned());
                    h.last_error_at = Some(now);
                }
            }
        });
        self.hub.health(health).await;
        outcome
    }

    async fn poll_and_commit(&mut self) -> Outcome {
        let name = self.source.name().to_owned();
        let position = match &self.position {
            Some(p) => p.clone(),
            None => match self.hub.position(&name).await {
                Ok(p) => {
                    self.position = Some(p.clone());
                    p
                }
                Err(e) => return Outcome::HubFailed(format!("cannot read the watermark: {e}")),
            },
        };
        let polled =
            tokio::time::timeout(self.settings.timeout, self.source.poll(position.as_deref()))
                .await;
        let batch = match polled {
            Err(_) => return Outcome::SourceFailed(SourceError::Timeout(self.settings.timeout)),
            Ok(Err(e)) => return Outcome::SourceFailed(e),
            Ok(Ok(batch)) => batch,
        };
        if let Some(newest) = batch.newest {
            self.health.update(|h| {
                if h.newest_row.is_none_or(|n| n < newest) {
                    h.newest_row = Some(newest);
                }
            });
        }
        if !batch.equipment.is_empty()
            && let Err(e) = self.hub.equipment(&name, batch.equipment).await
        {
            return Outcome::HubFailed(format!("cannot store equipment: {e}"));
        }
        if let Some(spans) = batch.maintenance
            && let Err(e) = self
                .hub
                .maintenance(&name, self.settings.domain.as_deref(), spans)
                .await
        {
            return Outcome::HubFailed(format!("cannot store maintenance windows: {e}"));
        }
        let mut records = batch.records;
        let produced = records.len();
        let recovering = batch.stopped.is_none() && (self.alert_raised || self.clear_pending);
        if recovering {
            records.push(self.alert_record(true, None, Utc::now()));
        }
        let checkpoint = batch
            .position
            .as_ref()
            .filter(|p| Some(*p) != position.as_ref())
            .map(|p| Checkpoint {
                source: name.clone(),
                position: p.clone(),
            });
        let mut effective = 0;
        if !records.is_empty() || checkpoint.is_some() {
            match self
                .hub
                .submit(Submission {
                    records,
                    checkpoint,
                })
                .await
            {
                Ok(outcomes) => {
                    effective = outcomes
                        .iter()
                        .take(produced)
                        .filter(|o| {
                            !matches!(
                                o.effect,
                                Effect::Replayed | Effect::Dropped | Effect::NothingToClear
                            )
                        })
                        .count();
                    if let Some(p) = batch.position {
                        self.position = Some(Some(p));
                    }
                    if recovering {
                        self.alert_raised = false;
                        self.clear_pending = false;
                    }
                }
                Err(e) => {
                    // Whether it was stored is unknown (an answer lost after the commit): read
                    // the watermark again before the next poll.
                    self.position = None;
                    let message = match &e {
                        IngestError::Invalid(_) => {
                            format!(
                                "the pipeline refused the records (check the source's domain and mapping): {e}"
                            )
                        }
                        _ => e.to_string(),
                    };
                    return Outcome::HubFailed(message);
                }
            }
        }
        match batch.stopped {
            Some(e) => Outcome::SourceFailed(e),
            None => Outcome::Committed {
                rows: batch.rows_read,
                records: produced,
                effective,
                more: batch.more,
            },
        }
    }

    /// The "source unreachable" alert record: the source is the resource, its event names it.
    fn alert_record(
        &self,
        clear: bool,
        error: Option<&SourceError>,
        since: DateTime<Utc>,
    ) -> RawRecord {
        let name = self.source.name();
        let message = match error {
            Some(e) => format!(
                "Source {name} ({}) cannot be read since {}: {e}",
                self.source.kind(),
                since.format("%Y-%m-%d %H:%M:%S UTC")
            ),
            None => format!("Source {name} ({}) is readable again", self.source.kind()),
        };
        let mut record = RawRecord::new(
            name,
            crate::text::one_line(name, crate::text::RESOURCE_MAX, "source"),
            crate::text::message(&message, "source unreachable"),
        );
        record.domain = self
            .settings
            .domain
            .clone()
            .or_else(|| self.source.domain().map(str::to_owned));
        record.level = Some(Level::Warning);
        record.occurred_at = Some(since);
        record.clear = clear;
        record
            .attributes
            .insert("event".into(), Value::String(UNREACHABLE_EVENT.into()));
        record.attributes.insert(
            "source_kind".into(),
            Value::String(self.source.kind().into()),
        );
        if let Some(e) = error {
            record
                .attributes
                .insert("error_class".into(), Value::String(e.class().into()));
        }
        record
    }

    async fn raise_alert(&mut self, error: &SourceError, since: DateTime<Utc>) {
        let record = self.alert_record(false, Some(error), since);
        match self
            .hub
            .submit(Submission {
                records: vec![record],
                checkpoint: None,
            })
            .await
        {
            Ok(_) => {
                self.alert_raised = true;
                self.clear_pending = false;
                tracing::warn!(source = %self.source.name(), "Source unreachable alert raised.");
            }
            Err(e) => {
                tracing::error!(source = %self.source.name(), error = %e, "Cannot raise the source unreachable alert.");
            }
        }
    }
}

/// Waits `wait`, or less when told to stop; `true` when told to stop.
async fn wait_or_stop(wait: Duration, stop: &mut watch::Receiver<bool>) -> bool {
    if *stop.borrow() {
        return true;
    }
    if wait.is_zero() {
        return false;
    }
    tokio::select! {
        _ = tokio::time::sleep(wait) => false,
        changed = stop.changed() => changed.is_err() || *stop.borrow(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_jitter_and_is_capped() {
        let i = Duration::from_secs(10);
        let max = Duration::from_secs(300);
        assert_eq!(backoff(i, max, 1, 1.0), Duration::from_secs(10));
        assert_eq!(backoff(i, max, 1, 0.0), Duration::from_secs(5));
        assert_eq!(backoff(i, max, 3, 1.0), Duration::from_secs(40));
        assert_eq!(backoff(i, max, 30, 1.0), Duration::from_secs(300));
        assert_eq!(backoff(i, max, u32::MAX, 0.0), Duration::from_secs(150));
        // A cap under the interval never makes retries faster than polls.
        assert_eq!(backoff(i, Duration::from_secs(1), 5, 1.0), i);
        let u = random_unit();
        assert!((0.0..1.0).contains(&u));
    }

    #[test]
    fn settings_defaults_follow_the_interval() {
        let s = PollSettings::new(Duration::from_secs(600));
        assert_eq!(s.timeout, Duration::from_secs(600));
        assert_eq!(s.unreachable_after, Duration::from_secs(1800));
        let s = PollSettings::new(Duration::from_secs(1));
        assert_eq!(s.timeout, Duration::from_secs(30));
        assert_eq!(s.unreachable_after, Duration::from_secs(120));
    }
}
