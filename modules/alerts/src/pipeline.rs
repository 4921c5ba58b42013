//! The one ingestion pipeline every source feeds: normalise → qualify → deduplicate → persist →
//! publish.
//!
//! Normalisation, rules and fingerprints run in the submitting task, so they use every core. The
//! store is written by a single writer task per process that gathers whatever submissions are
//! waiting into one transaction (group commit): throughput grows with load instead of collapsing.
//! The queue between them is bounded in records, so a burst waits (back-pressure) instead of
//! growing memory, and a submission is answered only once its transaction has committed.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use tokio::sync::{OwnedSemaphorePermit, Semaphore, broadcast, mpsc, oneshot};
use vigie_core::Level;
use vigie_core::domain::Domains;
use vigie_core::store::{Backend, Store, StoreError};
use vigie_source::{
    Checkpoint, Effect, Ingest, IngestError, IngestFuture, Outcome, RuleView, Submission,
};

use crate::candidate::Candidate;
use crate::fingerprint::{FingerprintSpec, content_digest, has_event};
use crate::model::AlertEvent;
use crate::normalize::{Limits, normalize};
use crate::repo::{Qualified, write_batch};
use crate::rules::{RuleSet, Verdict};

/// Writer tasks on PostgreSQL.
const POSTGRES_WRITERS: usize = 4;

/// What a configured source sets for all its records unless a rule says otherwise.
#[derive(Clone, Debug, Default)]
pub struct SourceDefaults {
    pub domain: Option<String>,
    pub fingerprint: Option<FingerprintSpec>,
}

#[derive(Clone, Debug)]
pub struct PipelineSettings {
    /// Records waiting to be written, at most.
    pub queue_capacity: usize,
    /// Records written in one transaction, at most (more wait for the next one).
    pub batch_max: usize,
    /// How long a submission waits for room in the queue before it is refused.
    pub submit_timeout: Duration,
    pub domains: Domains,
    pub limits: Limits,
    /// Domain of a record that neither its source nor a rule placed.
    pub default_domain: String,
    /// Level of a record that neither its source nor a rule qualified.
    pub default_level: Level,
    pub fingerprint: FingerprintSpec,
    pub sources: HashMap<String, SourceDefaults>,
    pub flapping: Flapping,
}

/// When an alert is flapping: raised again after a clear at least `threshold` times within
/// `window`. A flapping alert stays one alert with its count; notifications use the flag to
/// avoid telling people at every change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Flapping {
    pub window: Duration,
    pub threshold: u32,
}

impl Default for Flapping {
    fn default() -> Flapping {
        Flapping {
            window: Duration::from_secs(3600),
            threshold: 3,
        }
    }
}

impl Default for PipelineSettings {
    fn default() -> PipelineSettings {
        PipelineSettings {
            queue_capacity: 10_000,
            batch_max: 2_000,
            submit_timeout: Duration::from_secs(10),
            domains: Domains::default(),
            limits: Limits::default(),
            default_domain: "systems".into(),
            default_level: Level::Warning,
            fingerprint: FingerprintSpec::default(),
            sources: HashMap::new(),
            flapping: Flapping::default(),
        }
    }
}

/// A record's place in a submission: kept for the store, or dropped by a rule.
enum Slot {
    Keep(Box<Qualified>),
    Dropped,
}

struct Job {
    slots: Vec<Slot>,
    checkpoint: Option<Checkpoint>,
    reply: oneshot::Sender<Result<Vec<Outcome>, IngestError>>,
    /// Room taken in the queue, given back when the job is answered.
    _room: OwnedSemaphorePermit,
}

/// How many of `slots` are records to store (not dropped by a rule).
fn kept(slots: &[Slot]) -> usize {
    slots.iter().filter(|s| matches!(s, Slot::Keep(_))).count()
}

impl Job {
    /// The records to store (those no rule dropped).
    fn kept(&self) -> usize {
        kept(&self.slots)
    }

    /// Gives the room back, then answers: a submitter that got its answer never sees its
    /// records still counted in the queue.
    fn answer(self, result: Result<Vec<Outcome>, IngestError>) {
        let Job { reply, _room, .. } = self;
        drop(_room);
        let _ = reply.send(result);
    }
}

struct Inner {
    settings: PipelineSettings,
    rules: RwLock<Arc<RuleSet>>,
    queue: mpsc::Sender<Job>,
    room: Arc<Semaphore>,
    events: broadcast::Sender<AlertEvent>,
    /// Bumped after every commit that changed alerts (caches of the board compare it).
    generation: Arc<std::sync::atomic::AtomicU64>,
}

/// The pipeline's handle: cheap to clone, shared by every source and the push API.
#[derive(Clone)]
pub struct Pipeline {
    inner: Arc<Inner>,
}

/// The writer task: run it (spawned) for as long as the hub runs. It ends once every
/// [`Pipeline`] handle is dropped and the queue is drained, so nothing accepted is lost on a
/// normal stop.
pub struct Writer {
    store: Store,
    jobs: Arc<tokio::sync::Mutex<mpsc::Receiver<Job>>>,
    /// Writer tasks: one on SQLite (a single writer at a time anyway); several on PostgreSQL,
    /// whose commits wait on the WAL flush and are flushed together when they overlap.
    tasks: usize,
    batch_max: usize,
    events: broadcast::Sender<AlertEvent>,
    room: Arc<Semaphore>,
    capacity: usize,
    flapping: Flapping,
    generation: Arc<std::sync::atomic::AtomicU64>,
}

impl Pipeline {
    pub fn new(
        store: Store,
        settings: PipelineSettings,
        rules: Arc<RuleSet>,
    ) -> (Pipeline, Writer) {
        let capacity = settings.queue_capacity.clamp(1, Semaphore::MAX_PERMITS);
        let room = Arc::new(Semaphore::new(capacity));
        let (queue, jobs) = mpsc::channel(capacity.min(65_536));
        let (events, _) = broadcast::channel(16_384);
        let generation = Arc::new(std::sync::atomic::AtomicU64::new(1));
        let tasks = match store.backend() {
            Backend::Sqlite => 1,
            Backend::Postgres => POSTGRES_WRITERS,
        };
        let writer = Writer {
            store,
            jobs: Arc::new(tokio::sync::Mutex::new(jobs)),
            tasks,
            batch_max: settings.batch_max.max(1),
            events: events.clone(),
            room: room.clone(),
            capacity,
            flapping: settings.flapping,
            generation: generation.clone(),
        };
        let inner = Inner {
            settings,
            rules: RwLock::new(rules),
            queue,
            room,
            events,
            generation,
        };
        (
            Pipeline {
                inner: Arc::new(inner),
            },
            writer,
        )
    }

    /// The rules in force.
    pub fn rules(&self) -> Arc<RuleSet> {
        match self.inner.rules.read() {
            Ok(rules) => rules.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Puts a new rule set in force for the records submitted from now on.
    pub fn replace_rules(&self, rules: Arc<RuleSet>) {
        match self.inner.rules.write() {
            Ok(mut slot) => *slot = rules,
            Err(poisoned) => *poisoned.into_inner() = rules,
        }
    }

    pub fn settings(&self) -> &PipelineSettings {
        &self.inner.settings
    }

    /// Live changes, published after each commit. A subscriber that lags loses the oldest
    /// events (it is told so by the channel) and should reload from the store.
    pub fn subscribe(&self) -> broadcast::Receiver<AlertEvent> {
        self.inner.events.subscribe()
    }

    /// The change counter of the alerts (bumped after each commit that changed some).
    pub fn generation(&self) -> Arc<std::sync::atomic::AtomicU64> {
        self.inner.generation.clone()
    }

    /// Records waiting for the writer.
    pub fn queue_depth(&self) -> usize {
        self.inner
            .settings
            .queue_capacity
            .saturating_sub(self.inner.room.available_permits())
    }

    /// Submits records (and a checkpoint) and waits until they are committed.
    pub async fn submit(&self, submission: Submission) -> Result<Vec<Outcome>, IngestError> {
        let started = Instant::now();
        let result = self.submit_inner(submission).await;
        metrics::histogram!("vigie_ingest_submit_seconds").record(started.elapsed().as_secs_f64());
        if let Err(e) = &result {
            let reason = match e {
                IngestError::Invalid(_) => "invalid",
                IngestError::Unavailable(_) => "unavailable",
                IngestError::Failed(_) => "failed",
                IngestError::Overloaded => "overloaded",
            };
            metrics::counter!("vigie_ingest_rejected_total", "reason" => reason).increment(1);
        }
        result
    }

    async fn submit_inner(&self, submission: Submission) -> Result<Vec<Outcome>, IngestError> {
        let settings = &self.inner.settings;
        let count = submission.records.len();
        if count == 0 && submission.checkpoint.is_none() {
            return Ok(Vec::new());
        }
        let rules = self.rules();
        let mut problems = Vec::new();
        let mut slots = Vec::with_capacity(count);
        for (index, mut raw) in submission.records.into_iter().enumerate() {
            if raw.domain.is_none() {
                raw.domain = settings
                    .sources
                    .get(raw.source.trim())
                    .and_then(|d| d.domain.clone());
            }
            if let Some(candidate) = normalize(
                index,
                raw,
                &settings.domains,
                &settings.limits,
                &mut problems,
            ) && problems.is_empty()
            {
                slots.push(self.qualify(candidate, &rules));
            }
        }
        if !problems.is_empty() {
            return Err(IngestError::Invalid(problems));
        }

        // Room is taken for the records to store: one a rule dropped waits in the queue as a
        // marker only (a flood of syslog noise must not hold the queue for nothing).
        let wanted =
            u32::try_from(kept(&slots).clamp(1, self.inner.settings.queue_capacity.max(1)))
                .unwrap_or(u32::MAX);
        let room = tokio::time::timeout(
            settings.submit_timeout,
            self.inner.room.clone().acquire_many_owned(wanted),
        )
        .await
        .map_err(|_| IngestError::Overloaded)?
        .map_err(|_| IngestError::Overloaded)?;
        metrics::gauge!("vigie_ingest_queue_depth").set(self.queue_depth() as f64);

        let (reply, answer) = oneshot::channel();
        let job = Job {
            slots,
            checkpoint: submission.checkpoint,
            reply,
            _room: room,
        };
        self.inner
            .queue
            .send(job)
            .await
            .map_err(|_| IngestError::Overloaded)?;
        answer
            .await
            .map_err(|_| IngestError::Unavailable("the pipeline's writer stopped".into()))?
    }

    /// Applies the rules, then the defaults, the critical-zone raise and the fingerprint.
    fn qualify(&self, mut c: Candidate, rules: &RuleSet) -> Slot {
        if let Verdict::Drop { .. } = rules.qualify(&mut c) {
            return Slot::Dropped;
        }
        let settings = &self.inner.settings;
        let source = settings.sources.get(&c.source);
        let domain = c
            .domain
            .clone()
            .unwrap_or_else(|| settings.default_domain.clone());
        let mut level = c.level.unwrap_or(settings.default_level);
        if c.critical_zone {
            level = level.raised();
        }
        c.domain = Some(domain.clone());
        c.level = Some(level);
        let spec = c
            .fingerprint
            .as_ref()
            .or(source.and_then(|s| s.fingerprint.as_ref()))
            .unwrap_or(&settings.fingerprint);
        let fingerprint = spec.compute(&c);
        let occurred_at = c
            .occurred_at
            .map(vigie_core::time::to_store_precision)
            .unwrap_or_else(vigie_core::time::now);
        let digest = if c.source_ref.is_some() {
            content_digest(&c)
        } else {
            String::new()
        };
        Slot::Keep(Box::new(Qualified {
            by_event: has_event(&c),
            digest,
            c,
            domain,
            level,
            fingerprint,
            occurred_at,
        }))
    }
}

impl Ingest for Pipeline {
    fn submit(&self, submission: Submission) -> IngestFuture<'_> {
        Box::pin(Pipeline::submit(self, submission))
    }

    fn screen(&self, views: &[&dyn RuleView]) -> Vec<bool> {
        let rules = self.rules();
        let sources = &self.inner.settings.sources;
        let dropped: Vec<bool> = views
            .iter()
            .map(|&view| {
                let domain = view.domain().or_else(|| {
                    sources
                        .get(view.source().trim())
                        .and_then(|d| d.domain.as_deref())
                });
                rules.dropping(&Normalised { view, domain }).is_some()
            })
            .collect();
        let count = dropped.iter().filter(|d| **d).count() as u64;
        if count > 0 {
            metrics::counter!("vigie_ingest_records_total", "effect" => Effect::Dropped.name())
                .increment(count);
        }
        dropped
    }
}

/// A [`RuleView`] as [`normalize`] and [`Pipeline::submit`] would hand it to the rules: source
/// and resource trimmed, the source's configured domain when the record gives none.
struct Normalised<'a> {
    view: &'a dyn RuleView,
    domain: Option<&'a str>,
}

impl RuleView for Normalised<'_> {
    fn source(&self) -> &str {
        self.view.source().trim()
    }
    fn resource(&self) -> &str {
        self.view.resource().trim()
    }
    fn message(&self) -> &str {
        self.view.message()
    }
    fn source_severity(&self) -> Option<i32> {
        self.view.source_severity()
    }
    fn facility(&self) -> Option<u32> {
        self.view.facility()
    }
    fn attribute(&self, key: &str, f: &mut dyn FnMut(&str) -> bool) -> Option<bool> {
        self.view.attribute(key, f)
    }
    fn domain(&self) -> Option<&str> {
        self.domain
    }
    fn level_given(&self) -> bool {
        self.view.level_given()
    }
    fn clear(&self) -> bool {
        self.view.clear()
    }
}

impl Writer {
    /// Runs until every pipeline handle is dropped and the queue is empty.
    pub async fn run(self) {
        let writer = Arc::new(self);
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..writer.tasks {
            let writer = writer.clone();
            tasks.spawn(async move { writer.run_one().await });
        }
        while tasks.join_next().await.is_some() {}
        tracing::debug!("Ingestion writers stopped: queue closed and drained.");
    }

    /// One writer task: takes every waiting submission (up to `batch_max` records to store;
    /// records a rule dropped do not count) and writes them in one transaction, until the queue
    /// is closed and empty.
    async fn run_one(&self) {
        loop {
            let jobs = {
                let mut queue = self.jobs.lock().await;
                let Some(first) = queue.recv().await else {
                    return;
                };
                let mut records = first.kept();
                let mut jobs = vec![first];
                while records < self.batch_max {
                    match queue.try_recv() {
                        Ok(job) => {
                            records += job.kept();
                            jobs.push(job);
                        }
                        Err(_) => break,
                    }
                }
                jobs
            };
            self.write(jobs).await;
            let depth = self.capacity.saturating_sub(self.room.available_permits());
            metrics::gauge!("vigie_ingest_queue_depth").set(depth as f64);
        }
    }

    async fn write(&self, jobs: Vec<Job>) {
        let started = Instant::now();
        let records: usize = jobs.iter().map(|j| j.slots.len()).sum();
        let result = self.write_group(&jobs).await;
        metrics::histogram!("vigie_ingest_batch_seconds").record(started.elapsed().as_secs_f64());
        metrics::histogram!("vigie_ingest_batch_records").record(records as f64);
        match result {
            Ok(per_job) => {
                for (job, outcomes) in jobs.into_iter().zip(per_job) {
                    job.answer(Ok(outcomes));
                }
            }
            // One submission must not fail the others it was batched with: write each alone.
            Err(e) if jobs.len() > 1 && !e.is_unavailable() => {
                tracing::warn!(error = %e, jobs = jobs.len(), "Batch write failed; writing its submissions one by one.");
                for job in jobs {
                    let result = self
                        .write_group(std::slice::from_ref(&job))
                        .await
                        .map(|mut v| v.pop().unwrap_or_default())
                        .map_err(ingest_error);
                    job.answer(result);
                }
            }
            Err(e) => {
                let e = ingest_error(e);
                for job in jobs {
                    job.answer(Err(e.clone()));
                }
            }
        }
    }

    /// Writes the jobs in one transaction (retried on a deadlock or serialisation failure)
    /// and publishes the changes after the commit.
    async fn write_group(&self, jobs: &[Job]) -> Result<Vec<Vec<Outcome>>, StoreError> {
        let items: Vec<&Qualified> = jobs
            .iter()
            .flat_map(|j| j.slots.iter())
            .filter_map(|s| match s {
                Slot::Keep(q) => Some(q.as_ref()),
                Slot::Dropped => None,
            })
            .collect();
        let checkpoints: Vec<&Checkpoint> =
            jobs.iter().filter_map(|j| j.checkpoint.as_ref()).collect();
        let mut tries = 0;
        let (outcomes, events) = loop {
            tries += 1;
            match write_batch(&self.store, &items, &checkpoints, self.flapping).await {
                Err(e) if tries < WRITE_TRIES && is_transient_conflict(&e) => {
                    tracing::debug!(error = %e, tries, "Write conflict; retrying the batch.");
                }
                other => break other?,
            }
        };
        if !events.is_empty() {
            // Before anyone is answered: a board read after this answer is not served from a
            // cache of before the change.
            self.generation
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        for event in events {
            // No subscriber is not an error.
            let _ = self.events.send(event);
        }
        let mut stored = outcomes.into_iter();
        let mut per_job = Vec::with_capacity(jobs.len());
        // Counted per effect, then added once each: a counter's lookup for every record showed
        // in a syslog flood's profile.
        let mut effects: Vec<(&'static str, u64)> = Vec::new();
        for job in jobs {
            let mut answers = Vec::with_capacity(job.slots.len());
            for slot in &job.slots {
                let outcome = match slot {
                    Slot::Keep(_) => stored.next().unwrap_or(Outcome {
                        alert_id: None,
                        effect: Effect::NothingToClear,
                    }),
                    Slot::Dropped => Outcome {
                        alert_id: None,
                        effect: Effect::Dropped,
                    },
                };
                let name = outcome.effect.name();
                match effects.iter_mut().find(|(n, _)| *n == name) {
                    Some((_, count)) => *count += 1,
                    None => effects.push((name, 1)),
                }
                answers.push(outcome);
            }
            per_job.push(answers);
        }
        for (name, count) in effects {
            metrics::counter!("vigie_ingest_records_total", "effect" => name).increment(count);
        }
        Ok(per_job)
    }
}

/// Tries of one batch when PostgreSQL reports a deadlock or a serialisation failure.
const WRITE_TRIES: u32 = 3;

/// PostgreSQL's deadlock and serialisation failures: the same write succeeds when retried.
fn is_transient_conflict(e: &StoreError) -> bool {
    match e {
        StoreError::Query(sqlx::Error::Database(db)) => {
            matches!(db.code().as_deref(), Some("40P01" | "40001"))
        }
        _ => false,
    }
}

fn ingest_error(e: StoreError) -> IngestError {
    if e.is_unavailable() {
        tracing::warn!(error = %e, "The store is unavailable; submissions refused.");
        IngestError::Unavailable(e.to_string())
    } else {
        tracing::error!(error = %e, "The store refused a batch.");
        IngestError::Failed(e.to_string())
    }
}

impl Pipeline {
    /// Re-reads the rules (from `file`, or the shipped ones) and puts them in force. On problems
    /// the rules in force stay as they are.
    pub fn reload_rules(
        &self,
        file: Option<&std::path::Path>,
    ) -> Result<usize, Vec<crate::rules::RuleProblem>> {
        let domains = &self.inner.settings.domains;
        let rules = match file {
            Some(path) => RuleSet::load(path, domains)?,
            None => RuleSet::shipped(domains)?,
        };
        let count = rules.len();
        self.replace_rules(Arc::new(rules));
        Ok(count)
    }
}
