//! The hub's side of Vigie's host agent: host tokens, reports and their metric series,
//! thresholds that raise and clear alerts through the pipeline, the "host unreachable" watcher,
//! and the HTTP API (`POST /api/v1/agent/report`, `GET /api/v1/hosts`,
//! `GET /api/v1/hosts/{name}/metrics`). Design: docs/hosts.md.

pub mod api;
pub mod chart;
mod error;
pub mod outbox;
pub mod pages;
pub mod repo;
pub mod rollup;
pub mod thresholds;

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::{Map, json};
use vigie_core::store::{Store, StoreError};
use vigie_source::{Ingest, IngestError, Level, RawRecord};

pub use api::configure;
pub use error::HostsError;

use crate::thresholds::{Check, Transition};

/// The source name of every record this module submits.
pub const SOURCE: &str = "agent";
/// The domain hosts belong to.
pub const DOMAIN: &str = "systems";

/// The module's settings.
#[derive(Clone, Debug, PartialEq)]
pub struct HostsSettings {
    /// Which limits apply to which host.
    pub thresholds: thresholds::ThresholdPolicy,
    /// A report's body, at most (bytes).
    pub body_max: usize,
    /// Missed intervals before a host is unreachable.
    pub misses: u32,
    /// How often the watcher looks for silent hosts.
    pub watch_every: Duration,
    /// Metric roll-ups and retention (run by the watcher every `rollup_every`).
    pub retention: rollup::Retention,
    pub rollup_every: Duration,
}

impl Default for HostsSettings {
    fn default() -> HostsSettings {
        HostsSettings {
            thresholds: thresholds::ThresholdPolicy::default(),
            body_max: 1024 * 1024,
            misses: 3,
            watch_every: Duration::from_secs(10),
            retention: rollup::Retention::default(),
            rollup_every: Duration::from_secs(60),
        }
    }
}

fn record(resource: &str, event: &str, host: &str, message: String) -> RawRecord {
    let mut attributes = Map::new();
    attributes.insert("event".into(), json!(event));
    attributes.insert("host".into(), json!(host));
    let mut r = RawRecord::new(SOURCE, resource, message);
    r.domain = Some(DOMAIN.into());
    r.attributes = attributes;
    r
}

/// The pipeline record of a threshold's change. The fingerprint (source, resource, domain,
/// event) is the same for the raise and its clear, and for every repeat.
pub fn threshold_record(host: &str, t: &Transition, at: DateTime<Utc>) -> RawRecord {
    let (check, clear): (&Check, bool) = match t {
        Transition::Raise(c) => (c, false),
        Transition::Clear(c) => (c, true),
    };
    let family = check.key.split(':').next().unwrap_or(&check.key);
    let message = if clear {
        format!("{} back to normal ({:.1})", check.what, check.value)
    } else {
        format!(
            "{} at {:.1}, over {:.1}",
            check.what, check.value, check.limit.above
        )
    };
    let mut r = record(
        &check.resource,
        &format!("threshold:{family}"),
        host,
        message,
    );
    r.attributes.insert("metric".into(), json!(check.key));
    r.attributes.insert("value".into(), json!(check.value));
    r.attributes
        .insert("limit".into(), json!(check.limit.above));
    r.level = Some(check.limit.level);
    r.occurred_at = Some(at);
    r.clear = clear;
    r
}

/// The "host unreachable" record (critical), or its clear.
pub fn unreachable_record(host: &str, at: DateTime<Utc>, clear: bool) -> RawRecord {
    let message = if clear {
        format!("host {host} reports again")
    } else {
        format!(
            "host {host} unreachable: no report since {}",
            at.to_rfc3339()
        )
    };
    let mut r = record(host, "unreachable", host, message);
    r.level = Some(Level::Critical);
    r.occurred_at = Some(at);
    r.clear = clear;
    r
}

#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Ingest(#[from] IngestError),
}

/// One pass of the watcher at `at`: hosts that missed `misses` intervals become unreachable,
/// open an unavailability period and raise "host unreachable". Returns their names.
pub async fn check_reachability(
    store: &Store,
    ingest: &dyn Ingest,
    at: DateTime<Utc>,
    misses: u32,
) -> Result<Vec<String>, WatchError> {
    let gone = repo::mark_unreachable(store, at, misses).await?;
    // Also what an earlier pass or report could not hand over.
    outbox::deliver(store, ingest).await?;
    for u in &gone {
        tracing::warn!(host = %u.name, since = %u.since, "Host unreachable.");
    }
    metrics::counter!("vigie_hosts_unreachable_total").increment(gone.len() as u64);
    Ok(gone.into_iter().map(|u| u.name).collect())
}

/// Runs [`check_reachability`] every `settings.watch_every`, and the metrics' roll-ups and
/// retention every `settings.rollup_every`, until `stop` turns true.
pub fn spawn_watcher<I>(
    store: Store,
    ingest: I,
    settings: HostsSettings,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()>
where
    I: Ingest + 'static,
{
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(settings.watch_every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last_rollup: Option<std::time::Instant> = None;
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = stop.changed() => {}
            }
            if *stop.borrow() {
                break;
            }
            let at = vigie_core::time::now();
            if let Err(e) = check_reachability(&store, &ingest, at, settings.misses).await {
                tracing::error!(error = %e, "The hosts' reachability check failed.");
            }
            if last_rollup.is_none_or(|t| t.elapsed() >= settings.rollup_every) {
                last_rollup = Some(std::time::Instant::now());
                match rollup::run_pass(&store, at, &settings.retention).await {
                    Ok(pass) if pass.buckets > 0 || pass.deleted > 0 => {
                        tracing::debug!(
                            buckets = pass.buckets,
                            deleted = pass.deleted,
                            "Host metrics rolled up."
                        );
                    }
                    Ok(_) => {}
                    Err(e) => tracing::error!(error = %e, "The host metrics' roll-up failed."),
                }
            }
        }
    })
}
