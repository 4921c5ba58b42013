//! The consumer of the syslog receiver's queue: stores every message, then hands the records to
//! the ingestion pipeline for qualification.
//!
//! Stages in a row, so that encoding batch N+2, storing batch N+1 and qualifying batch N overlap:
//!
//! ```text
//! listeners → queue → [storer: Batcher → encode (blocking thread)] → 1 batch → [store task:
//!   INSERT block] → 4 batches → [qualifier: screen → to_record → submit, in concurrent chunks]
//! ```
//!
//! The qualifier first asks the pipeline whether its rules drop each message
//! ([`Ingest::screen`], on a [`RecordView`] of the message): most of a syslog flood is noise a
//! rule drops, and building its records (attribute maps, raw JSON) cost more than the rules. Only
//! the others become records.
//!
//! Each batch is encoded into its block (one JSON array of its messages, see [`crate::repo`])
//! before the transaction begins, so the store's write lock is held only to write it.
//!
//! # When the store is down
//! A batch that cannot be stored (the store unreachable, timed out, read-only) is retried with
//! back-off (100 ms doubling to 5 s), for as long as it takes: nothing is dropped for that. Behind
//! it the two-batch hand-over and then the receiver's bounded queue fill up; from there the
//! listeners' policy applies: TCP and TLS readers stop reading (senders are slowed down by TCP
//! itself), UDP datagrams are dropped and counted (`vigie_syslog_dropped_total{reason="queue_full"}`).
//! When the store is back, everything waiting is written in order. The pipeline is retried the
//! same way when it answers unavailable or overloaded.
//!
//! A batch the store *refuses* (not an outage: a defect, a constraint) is written again one
//! message at a time, and only the messages refused alone are dropped and counted
//! (`vigie_syslog_lost_total{reason="rejected"}`), with an error in the log.
//!
//! # Stop
//! The stop lets the receiver queue what its connections already sent, and the consumer drains
//! the queue completely. If the store stays down past the stop's deadline, the consumer gives up
//! retrying: what is left is counted in `vigie_syslog_lost_total{reason="shutdown"}` and logged,
//! so a stop always ends.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;
use vigie_core::store::Store;
use vigie_source::{Ingest, IngestError, RawRecord, RuleView, Submission};
use vigie_syslog::record::RecordView;
use vigie_syslog::{Batcher, SyslogMessage, to_record};

use crate::repo;

/// First wait after a failure; doubled each time up to [`BACKOFF_MAX`].
const BACKOFF_START: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);
/// Tries of a submission the pipeline refused for another reason than an outage.
const FAILED_TRIES: u32 = 3;

/// The consumer's counts since the start (also in `/metrics`).
#[derive(Debug, Default)]
pub struct ConsumerStats {
    stored: AtomicU64,
    submitted: AtomicU64,
    store_retries: AtomicU64,
    lost: AtomicU64,
    unqualified: AtomicU64,
}

impl ConsumerStats {
    /// Messages written to the store.
    pub fn stored(&self) -> u64 {
        self.stored.load(Ordering::Relaxed)
    }
    /// Records the pipeline took (stored as alerts, deduplicated or dropped by a rule, including
    /// the messages its rules dropped when screened, before any record was built).
    pub fn submitted(&self) -> u64 {
        self.submitted.load(Ordering::Relaxed)
    }
    /// Failed attempts to store a batch (each followed by a wait).
    pub fn store_retries(&self) -> u64 {
        self.store_retries.load(Ordering::Relaxed)
    }
    /// Messages not stored: refused by the store, or left when a stop gave up.
    pub fn lost(&self) -> u64 {
        self.lost.load(Ordering::Relaxed)
    }
    /// Records that never reached the pipeline.
    pub fn unqualified(&self) -> u64 {
        self.unqualified.load(Ordering::Relaxed)
    }
}

/// What both tasks share.
pub(crate) struct Shared {
    pub store: Store,
    pub ingest: Arc<dyn Ingest>,
    pub source_name: String,
    pub stats: Arc<ConsumerStats>,
    /// Set when a stop's deadline passed: no more retries.
    pub give_up: watch::Receiver<bool>,
}

/// Waits before the next try; `false` when the consumer must give up instead.
async fn back_off(attempt: u32, give_up: &mut watch::Receiver<bool>) -> bool {
    if *give_up.borrow() {
        return false;
    }
    let wait = BACKOFF_START
        .saturating_mul(1 << attempt.min(6))
        .min(BACKOFF_MAX);
    let slept = tokio::select! {
        _ = tokio::time::sleep(wait) => true,
        _ = give_up.wait_for(|g| *g) => false,
    };
    slept && !*give_up.borrow()
}

/// Prepared batches waiting for the store: while one batch is written, the next one is
/// encoded, so the store's connection never waits for the encoding.
const PREPARED_AHEAD: usize = 1;

/// The storer: batches from the queue, encoded into blocks on a blocking thread, stored in
/// order by a task of their own, passed on. Ends when the receiver has stopped, its queue is
/// empty and the last batch is stored.
pub(crate) async fn run_storer(
    mut batches: Batcher,
    shared: Arc<Shared>,
    next: mpsc::Sender<Vec<SyslogMessage>>,
) {
    let (prepared_tx, mut prepared) =
        mpsc::channel::<(Vec<SyslogMessage>, repo::PreparedBatch)>(PREPARED_AHEAD);
    let writer = {
        let shared = shared.clone();
        tokio::spawn(async move {
            let mut give_up = shared.give_up.clone();
            while let Some((batch, block)) = prepared.recv().await {
                store_batch(&shared, &batch, block, &mut give_up).await;
                if next.send(batch).await.is_err() {
                    tracing::error!(
                        "The syslog qualifier stopped; records are no longer qualified."
                    );
                }
                // Between two batches, on the writer's own connection: the log is then caught up
                // and starts again from its beginning (see `Store::checkpoint`).
                if let Err(e) = shared.store.checkpoint().await {
                    tracing::warn!(error = %e, "Checkpoint of the syslog messages' log failed.");
                }
            }
        })
    };
    while let Some(batch) = batches.next_batch().await {
        // Encoding thousands of messages is CPU work: off the runtime's workers, which read the
        // sockets.
        let count = batch.len() as u64;
        let encoded = tokio::task::spawn_blocking(move || {
            let block = repo::prepare_batch(&batch);
            (batch, block)
        })
        .await;
        match encoded {
            Ok(pair) => {
                if prepared_tx.send(pair).await.is_err() {
                    tracing::error!(
                        "The syslog store task stopped; messages are no longer stored."
                    );
                    break;
                }
            }
            Err(e) => {
                // A defect (a panic while encoding): the batch is gone, the receiver goes on.
                tracing::error!(error = %e, messages = count, "Encoding a syslog batch failed; its messages are lost.");
                lost(&shared, count, "rejected");
            }
        }
    }
    drop(prepared_tx);
    if let Err(e) = writer.await {
        tracing::error!(error = %e, "The syslog store task failed.");
    }
    tracing::debug!("Syslog queue drained.");
}

async fn store_batch(
    shared: &Shared,
    batch: &[SyslogMessage],
    block: repo::PreparedBatch,
    give_up: &mut watch::Receiver<bool>,
) {
    let started = std::time::Instant::now();
    let mut attempt = 0;
    let mut prepared = Some(block);
    loop {
        // A retry encodes the batch again: a block is consumed by writing it.
        let block = prepared
            .take()
            .unwrap_or_else(|| repo::prepare_batch(batch));
        match repo::write_prepared(&shared.store, block).await {
            Ok(()) => {
                stored(shared, batch.len() as u64);
                metrics::histogram!("vigie_syslog_store_seconds")
                    .record(started.elapsed().as_secs_f64());
                metrics::histogram!("vigie_syslog_store_batch_records").record(batch.len() as f64);
                return;
            }
            Err(e) if e.is_unavailable() => {
                if attempt == 0 || attempt % 20 == 0 {
                    tracing::warn!(error = %e, messages = batch.len(), attempt, "The store is unavailable; syslog messages wait (TCP senders are slowed, UDP drops when the queue is full).");
                }
                shared.stats.store_retries.fetch_add(1, Ordering::Relaxed);
                metrics::counter!("vigie_syslog_store_retries_total").increment(1);
                if !back_off(attempt, give_up).await {
                    lost(shared, batch.len() as u64, "shutdown");
                    tracing::error!(
                        messages = batch.len(),
                        "Stopping with the store unavailable: syslog messages not stored."
                    );
                    return;
                }
                attempt += 1;
            }
            Err(e) => {
                tracing::error!(error = %e, messages = batch.len(), "The store refused a syslog batch; storing its messages one by one.");
                store_one_by_one(shared, batch).await;
                return;
            }
        }
    }
}

/// After a refused batch: each message alone, so that one bad message costs only itself.
async fn store_one_by_one(shared: &Shared, batch: &[SyslogMessage]) {
    for m in batch {
        match repo::insert_batch(&shared.store, std::slice::from_ref(m)).await {
            Ok(()) => stored(shared, 1),
            Err(e) => {
                tracing::error!(error = %e, host = %m.host, "A syslog message was refused by the store and dropped.");
                lost(
                    shared,
                    1,
                    if e.is_unavailable() {
                        "unavailable"
                    } else {
                        "rejected"
                    },
                );
            }
        }
    }
}

fn stored(shared: &Shared, n: u64) {
    shared.stats.stored.fetch_add(n, Ordering::Relaxed);
    metrics::counter!("vigie_syslog_stored_total").increment(n);
}

fn lost(shared: &Shared, n: u64, reason: &'static str) {
    shared.stats.lost.fetch_add(n, Ordering::Relaxed);
    metrics::counter!("vigie_syslog_lost_total", "reason" => reason).increment(n);
}

/// Records per submission. A batch is submitted as several chunks at once, so that the
/// pipeline's writer commits one chunk while the next is prepared.
const SUBMIT_CHUNK: usize = 250;

/// Starts the qualifier on a thread of its own (a single-threaded runtime on tokio's blocking
/// pool). Preparing records for the pipeline (records, normalisation, rules) is CPU work done in
/// the submitting task; on the hub's runtime it would hold a worker for tens of milliseconds at a
/// time and keep the UDP listener from reading its socket, whose kernel buffer then overflows.
/// On a thread of its own, the kernel shares the cores in short slices instead.
pub(crate) fn spawn_qualifier(
    batches: mpsc::Receiver<Vec<SyslogMessage>>,
    shared: Arc<Shared>,
) -> tokio::task::JoinHandle<()> {
    let hub = tokio::runtime::Handle::current();
    tokio::task::spawn_blocking(move || {
        match tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            Ok(runtime) => runtime.block_on(run_qualifier(batches, shared)),
            Err(e) => {
                tracing::warn!(error = %e, "No runtime of its own for the syslog qualifier; it shares the hub's.");
                hub.block_on(run_qualifier(batches, shared));
            }
        }
    })
}

/// Submissions (chunks of [`SUBMIT_CHUNK`] records) waiting for the pipeline at most: a few
/// batches' worth. The qualifier takes the next batch while earlier ones wait for their commit:
/// waiting for each batch to be committed before preparing the next made the storer, the
/// qualifier and the pipeline's writer take turns instead of working at the same time.
const SUBMISSIONS_IN_FLIGHT: usize = 32;

/// The qualifier: each stored batch becomes records submitted to the pipeline, in chunks, while
/// the submissions of earlier batches wait for their commit (up to [`SUBMISSIONS_IN_FLIGHT`]).
/// Ends once every submission is answered.
pub(crate) async fn run_qualifier(
    mut batches: mpsc::Receiver<Vec<SyslogMessage>>,
    shared: Arc<Shared>,
) {
    let mut chunks = JoinSet::new();
    while let Some(batch) = batches.recv().await {
        let dropped = {
            let views: Vec<RecordView<'_>> = batch
                .iter()
                .map(|m| RecordView::new(m, &shared.source_name))
                .collect();
            let refs: Vec<&dyn RuleView> = views.iter().map(|v| v as &dyn RuleView).collect();
            shared.ingest.screen(&refs)
        };
        let kept: Vec<usize> = (0..batch.len())
            .filter(|&i| !dropped.get(i).copied().unwrap_or(false))
            .collect();
        let screened = (batch.len() - kept.len()) as u64;
        shared
            .stats
            .submitted
            .fetch_add(screened, Ordering::Relaxed);
        let batch = Arc::new(batch);
        for part in kept.chunks(SUBMIT_CHUNK) {
            while chunks.len() >= SUBMISSIONS_IN_FLIGHT {
                joined(chunks.join_next().await);
            }
            let (shared, batch, part) = (shared.clone(), batch.clone(), part.to_vec());
            chunks.spawn(async move {
                let mut give_up = shared.give_up.clone();
                submit(&shared, &batch, &part, &mut give_up).await;
            });
        }
    }
    while let Some(done) = chunks.join_next().await {
        joined(Some(done));
    }
}

fn joined(done: Option<Result<(), tokio::task::JoinError>>) {
    if let Some(Err(e)) = done {
        tracing::error!(error = %e, "A syslog submission task failed.");
    }
}

/// Submits the records of the batch's messages at `chosen`, retrying as the error says. The
/// records are made again for a retry rather than cloned for every submission: retries are rare.
async fn submit(
    shared: &Shared,
    batch: &[SyslogMessage],
    chosen: &[usize],
    give_up: &mut watch::Receiver<bool>,
) {
    let mut attempt = 0;
    let mut failures = 0;
    let mut excluded: HashSet<usize> = HashSet::new();
    loop {
        // Positions in this submission → positions in the batch.
        let positions: Vec<usize> = chosen
            .iter()
            .copied()
            .filter(|i| !excluded.contains(i))
            .collect();
        let records: Vec<RawRecord> = positions
            .iter()
            .map(|&i| to_record(&batch[i], &shared.source_name))
            .collect();
        let count = records.len() as u64;
        if count == 0 {
            return;
        }
        let submission = Submission {
            records,
            checkpoint: None,
        };
        match shared.ingest.submit(submission).await {
            Ok(_) => {
                shared.stats.submitted.fetch_add(count, Ordering::Relaxed);
                return;
            }
            Err(IngestError::Invalid(problems)) => {
                // `to_record` keeps every part within the pipeline's limits, so this is a defect;
                // the other records of the batch still go through.
                let first = problems
                    .first()
                    .map(ToString::to_string)
                    .unwrap_or_default();
                tracing::error!(problems = problems.len(), %first, "The pipeline refused syslog records; the others are submitted again.");
                let before = excluded.len();
                excluded.extend(
                    problems
                        .iter()
                        .filter_map(|p| positions.get(p.index).copied()),
                );
                unqualified(shared, (excluded.len() - before) as u64, "invalid");
                if excluded.len() == before {
                    return;
                }
            }
            Err(e @ (IngestError::Unavailable(_) | IngestError::Overloaded)) => {
                if attempt == 0 || attempt % 20 == 0 {
                    tracing::warn!(error = %e, records = count, attempt, "The pipeline cannot take syslog records now; retrying.");
                }
                if !back_off(attempt, give_up).await {
                    unqualified(shared, count, "shutdown");
                    return;
                }
                attempt += 1;
            }
            Err(e @ IngestError::Failed(_)) => {
                failures += 1;
                if failures >= FAILED_TRIES || !back_off(attempt, give_up).await {
                    tracing::error!(error = %e, records = count, "The pipeline failed on syslog records; they are stored as messages but not qualified.");
                    unqualified(shared, count, "failed");
                    return;
                }
                attempt += 1;
            }
        }
    }
}

fn unqualified(shared: &Shared, n: u64, reason: &'static str) {
    shared.stats.unqualified.fetch_add(n, Ordering::Relaxed);
    metrics::counter!("vigie_syslog_unqualified_total", "reason" => reason).increment(n);
}
