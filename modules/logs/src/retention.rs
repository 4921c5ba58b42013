//! Retention of the stored messages: by age and by total size, purged in the background; and
//! compaction of the small blocks a quiet period leaves ([`compact`]).
//!
//! Every purge deletes from the old end in chunks of about `purge_chunk` messages (whole blocks,
//! and the start of the block a bound cuts through), each chunk its own short transaction, with a
//! pause between chunks: the writer of new messages never waits long behind a purge. Purges are
//! counted in `vigie_syslog_purged_total{reason="age"|"size"}`.
//!
//! The size bound is approximate by design: the message count is read from the id range
//! (messages only leave from the old end) and the bytes are that count times the average size of
//! a message in the newest blocks (its share of the JSON array plus
//! [`crate::repo::ROW_OVERHEAD`]); exact sums would read every block.

use std::time::Duration;

use chrono::Utc;
use tokio::sync::watch;
use vigie_core::store::{Store, StoreError};

use crate::repo;

/// How long messages are kept and how much of them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Retention {
    /// Messages older than this many days are purged; 0 keeps them whatever their age.
    pub days: u32,
    /// At most this many messages are kept; 0: no limit.
    pub max_rows: u64,
    /// At most about this many bytes of messages are kept; 0: no limit.
    pub max_bytes: u64,
    /// How often the purge runs.
    pub interval: Duration,
    /// Messages deleted per transaction, about (whole blocks go).
    pub chunk: u32,
    /// The pause between two chunks.
    pub pause: Duration,
}

impl Default for Retention {
    fn default() -> Retention {
        Retention {
            days: 30,
            max_rows: 0,
            max_bytes: 2 * 1024 * 1024 * 1024,
            interval: Duration::from_secs(60),
            chunk: 5000,
            pause: Duration::from_millis(20),
        }
    }
}

/// What one purge removed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Purged {
    pub by_age: u64,
    pub by_size: u64,
}

/// Runs one purge now: first by age, then by size.
pub async fn purge(store: &Store, retention: &Retention) -> Result<Purged, StoreError> {
    let chunk = i64::from(retention.chunk.max(1));
    let mut purged = Purged::default();
    if retention.days > 0 {
        let cutoff = Utc::now() - chrono::Duration::days(i64::from(retention.days));
        loop {
            let n = repo::delete_received_before(store, cutoff, chunk).await?;
            purged.by_age += n;
            metrics::counter!("vigie_syslog_purged_total", "reason" => "age").increment(n);
            if n == 0 {
                break;
            }
            tokio::time::sleep(retention.pause).await;
        }
    }
    if retention.max_rows > 0 || retention.max_bytes > 0 {
        loop {
            let Some((min, max)) = repo::id_range(store).await? else {
                break;
            };
            let rows = (max - min + 1).max(0);
            let mut keep = i64::MAX;
            if retention.max_rows > 0 {
                keep = keep.min(i64::try_from(retention.max_rows).unwrap_or(i64::MAX));
            }
            if retention.max_bytes > 0
                && let Some(avg) = repo::average_row_bytes(store).await?
            {
                let bytes = i64::try_from(retention.max_bytes).unwrap_or(i64::MAX);
                keep = keep.min(bytes / avg.max(1));
            }
            metrics::gauge!("vigie_syslog_stored_rows").set(rows as f64);
            let excess = rows - keep;
            if excess <= 0 {
                break;
            }
            let n = repo::delete_ids_below(store, min + excess.min(chunk)).await?;
            purged.by_size += n;
            metrics::counter!("vigie_syslog_purged_total", "reason" => "size").increment(n);
            if n == 0 {
                break;
            }
            tokio::time::sleep(retention.pause).await;
        }
    }
    if purged.by_age + purged.by_size > 0 {
        tracing::info!(
            by_age = purged.by_age,
            by_size = purged.by_size,
            "Old syslog messages purged."
        );
    }
    Ok(purged)
}

/// Merges the small blocks stored since block `*from` (see [`repo::compact_step`]), a step at a
/// time with the pause between steps; `*from` moves on to where the next compaction starts. How
/// many blocks went.
pub async fn compact(
    store: &Store,
    retention: &Retention,
    from: &mut i64,
) -> Result<u64, StoreError> {
    let mut gone = 0;
    loop {
        let (next, n) = repo::compact_step(store, *from).await?;
        gone += n;
        if next == *from {
            return Ok(gone);
        }
        *from = next;
        tokio::time::sleep(retention.pause).await;
    }
}

/// The background task: a purge every `interval` (the first right away), then a compaction of
/// the blocks stored since the last one, until `stop` says so.
pub(crate) async fn run(store: Store, retention: Retention, mut stop: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(retention.interval.max(Duration::from_millis(10)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // Where the next compaction starts: everything once after a start, then what is new.
    let mut compacted_to = 0;
    loop {
        tokio::select! {
            biased;
            _ = stop.wait_for(|s| *s) => return,
            _ = tick.tick() => {}
        }
        tokio::select! {
            biased;
            _ = stop.wait_for(|s| *s) => return,
            result = purge(&store, &retention) => {
                if let Err(e) = result {
                    tracing::warn!(error = %e, "Syslog purge failed; trying again later.");
                }
            }
        }
        tokio::select! {
            biased;
            _ = stop.wait_for(|s| *s) => return,
            result = compact(&store, &retention, &mut compacted_to) => {
                if let Err(e) = result {
                    tracing::warn!(error = %e, "Syslog compaction failed; trying again later.");
                }
            }
        }
    }
}
