//! The configured sources, running: one poller task per enabled source, their health lines, the
//! on-demand questions, a source's settings changed and its poller restarted, and the dry run of
//! `vigie source test`.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Utc;
use serde::Serialize;
use serde_json::{Map, Value};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use vigie_core::store::Store;
use vigie_poll::{
    Answer, Equipment, Health, HealthCell, PollSettings, Poller, Question, Source, SourceError,
    State,
};
use vigie_source::{Ingest, RawRecord};
use vigie_sql::SourceSpec;

use crate::hub::StoreHub;
use crate::repo;

/// A source as configured (`[[sources]]`): the connection; its connector settings are in the
/// store (`source_settings`).
#[derive(Clone, PartialEq)]
pub struct SourceDef {
    pub name: String,
    pub kind: String,
    pub url: String,
    pub interval: Duration,
    pub enabled: bool,
    pub domain: Option<String>,
}

impl std::fmt::Debug for SourceDef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SourceDef")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .field("url", &vigie_sql::client::redact_url(&self.url))
            .field("interval", &self.interval)
            .field("enabled", &self.enabled)
            .field("domain", &self.domain)
            .finish()
    }
}

/// The scheduler's settings a source's stored settings may carry under `poll`
/// (`timeout_seconds`, `unreachable_after_seconds`, `max_backoff_seconds`); the rest goes to the
/// connector.
fn split_settings(def: &SourceDef, stored: Value) -> Result<(PollSettings, Value), SourceError> {
    let mut poll = PollSettings::new(def.interval);
    poll.domain = def.domain.clone();
    let mut connector = match stored {
        Value::Object(map) => map,
        Value::Null => Map::new(),
        _ => {
            return Err(SourceError::Config(
                "the stored settings are not a JSON object".into(),
            ));
        }
    };
    if let Some(p) = connector.remove("poll") {
        let Value::Object(p) = p else {
            return Err(SourceError::Config("poll: expected an object".into()));
        };
        for (key, value) in p {
            let secs = value
                .as_f64()
                .filter(|s| *s > 0.0 && *s < 31_536_000.0)
                .ok_or_else(|| {
                    SourceError::Config(format!(
                        "poll.{key}: expected a positive number of seconds"
                    ))
                })?;
            let d = Duration::from_secs_f64(secs);
            match key.as_str() {
                "timeout_seconds" => poll.timeout = d,
                "unreachable_after_seconds" => poll.unreachable_after = d,
                "max_backoff_seconds" => poll.max_backoff = d,
                other => {
                    return Err(SourceError::Config(format!(
                        "poll.{other}: unknown key (expected timeout_seconds, unreachable_after_seconds, max_backoff_seconds)"
                    )));
                }
            }
        }
    }
    Ok((poll, Value::Object(connector)))
}

/// Builds a source from its definition and stored settings.
pub fn build(
    def: &SourceDef,
    stored: Value,
) -> Result<(Arc<dyn Source>, PollSettings), SourceError> {
    let (poll, settings) = split_settings(def, stored)?;
    let spec = SourceSpec {
        name: def.name.clone(),
        kind: def.kind.clone(),
        url: def.url.clone(),
        domain: def.domain.clone(),
        settings,
    };
    // SQL Server tools (WhatsUp Gold, SolarWinds Orion) are read by vigie-mssql (tiberius).
    if vigie_mssql::handles(&spec.kind) {
        let spec = vigie_mssql::Spec {
            name: spec.name,
            kind: spec.kind,
            url: spec.url,
            domain: spec.domain,
            settings: spec.settings,
        };
        return Ok((vigie_mssql::build(&spec)?, poll));
    }
    Ok((vigie_sql::build(&spec)?, poll))
}

struct Running {
    def: SourceDef,
    source: Option<Arc<dyn Source>>,
    health: HealthCell,
    stop: Option<watch::Sender<bool>>,
    task: Option<JoinHandle<()>>,
}

/// The running sources.
#[derive(Clone)]
pub struct Sources {
    hub: Arc<StoreHub>,
    running: Arc<Mutex<BTreeMap<String, Running>>>,
}

/// Why a question could not be answered.
#[derive(Debug, thiserror::Error)]
pub enum AskError {
    #[error("no source named `{0}`")]
    UnknownSource(String),
    #[error("the source `{0}` is not running (disabled or misconfigured)")]
    NotRunning(String),
    #[error(transparent)]
    Source(#[from] SourceError),
}

impl Sources {
    /// Starts a poller for every enabled source; a source whose settings are wrong is kept with
    /// its error on its health line.
    pub async fn start(store: Store, ingest: Arc<dyn Ingest>, defs: Vec<SourceDef>) -> Sources {
        let sources = Sources {
            hub: Arc::new(StoreHub::new(store, ingest)),
            running: Arc::new(Mutex::new(BTreeMap::new())),
        };
        for def in defs {
            sources.launch(def).await;
        }
        sources
    }

    fn store(&self) -> &Store {
        self.hub.store()
    }

    async fn launch(&self, def: SourceDef) {
        let name = def.name.clone();
        // A source restarted with new settings: its poller stops before the new one starts, so
        // that two polls of one source never run at once.
        let previous = match self.running.lock() {
            Ok(mut map) => map.remove(&name),
            Err(_) => None,
        };
        if let Some(old) = previous {
            stop_one(old).await;
        }
        let mut health = Health::new(&def.name, &def.kind, def.interval.as_secs());
        // The line of the previous run: last success and error survive a restart.
        if let Ok(Some(before)) = repo::load_health(self.store(), &def.name).await {
            health.last_success = before.last_success;
            health.last_error = before.last_error;
            health.last_error_class = before.last_error_class;
            health.last_error_at = before.last_error_at;
            health.newest_row = before.newest_row;
        }
        let stored = match repo::load_settings(self.store(), &def.name).await {
            Ok(v) => v,
            Err(e) => {
                tracing::error!(source = %name, error = %e, "Cannot read the source's settings; using the defaults.");
                Value::Null
            }
        };
        let mut running = Running {
            def: def.clone(),
            source: None,
            health: HealthCell::new(health),
            stop: None,
            task: None,
        };
        if !def.enabled {
            let h = running.health.update(|h| h.state = State::Disabled);
            let _ = repo::save_health(self.store(), &h).await;
            tracing::info!(source = %name, "Source disabled: not polled.");
        } else {
            match build(&def, stored) {
                Ok((source, poll)) => {
                    let (stop, stopped) = watch::channel(false);
                    let poller = Poller::new(
                        source.clone(),
                        poll,
                        self.hub.clone(),
                        running.health.clone(),
                    );
                    running.task = Some(tokio::spawn(poller.run(stopped)));
                    running.stop = Some(stop);
                    running.source = Some(source);
                    tracing::info!(source = %name, kind = %def.kind, url = %vigie_sql::client::redact_url(&def.url), interval_s = def.interval.as_secs_f64(), "Source polled.");
                }
                Err(e) => {
                    tracing::error!(source = %name, error = %e, "Source misconfigured: not polled.");
                    let h = running.health.update(|h| {
                        h.state = State::Misconfigured;
                        h.last_error = Some(e.to_string());
                        h.last_error_class = Some(e.class().into());
                        h.last_error_at = Some(Utc::now());
                    });
                    let _ = repo::save_health(self.store(), &h).await;
                }
            }
        }
        if let Ok(mut map) = self.running.lock() {
            map.insert(name, running);
        }
    }

    /// Every source's health line, in name order.
    pub fn health(&self) -> Vec<Health> {
        match self.running.lock() {
            Ok(map) => map.values().map(|r| r.health.get()).collect(),
            Err(_) => Vec::new(),
        }
    }

    /// A source's definition.
    pub fn def(&self, name: &str) -> Option<SourceDef> {
        self.running.lock().ok()?.get(name).map(|r| r.def.clone())
    }

    /// Asks a source a question, bounded by `timeout`.
    pub async fn ask(
        &self,
        name: &str,
        question: &Question,
        timeout: Duration,
    ) -> Result<Answer, AskError> {
        let source = {
            let map = self
                .running
                .lock()
                .map_err(|_| AskError::NotRunning(name.into()))?;
            let running = map
                .get(name)
                .ok_or_else(|| AskError::UnknownSource(name.into()))?;
            running
                .source
                .clone()
                .ok_or_else(|| AskError::NotRunning(name.into()))?
        };
        match tokio::time::timeout(timeout, source.ask(question)).await {
            Ok(answer) => Ok(answer?),
            Err(_) => Err(AskError::Source(SourceError::Timeout(timeout))),
        }
    }

    /// Stores new connector settings for a source (checked first by building the source) and
    /// restarts its poller with them.
    pub async fn change_settings(
        &self,
        name: &str,
        settings: Value,
        actor: Option<&vigie_core::audit::Actor>,
    ) -> Result<(), ChangeError> {
        let def = self
            .def(name)
            .ok_or_else(|| ChangeError::UnknownSource(name.into()))?;
        build(&def, settings.clone()).map_err(ChangeError::Invalid)?;
        repo::save_settings(self.store(), name, &settings, actor).await?;
        self.launch(def).await;
        Ok(())
    }

    /// Stops every poller (a poll under way is finished first, up to `grace`).
    pub async fn stop(&self, grace: Duration) {
        let all: Vec<Running> = match self.running.lock() {
            Ok(mut map) => std::mem::take(&mut *map).into_values().collect(),
            Err(_) => Vec::new(),
        };
        for r in &all {
            if let Some(stop) = &r.stop {
                let _ = stop.send(true);
            }
        }
        for mut r in all {
            if let Some(task) = r.task.take() {
                let abort = task.abort_handle();
                if tokio::time::timeout(grace, task).await.is_err() {
                    abort.abort();
                }
            }
            if let Some(source) = r.source.take() {
                drop(source);
            }
        }
    }

    /// Starts a source, or restarts it with a new definition (a console source saved).
    pub async fn define(&self, def: SourceDef) {
        self.launch(def).await;
    }

    /// Keeps a source that cannot start (its password cannot be decrypted) with the reason on
    /// its health line, after stopping its previous poller if any.
    pub async fn define_failed(&self, def: SourceDef, reason: String) {
        let previous = self
            .running
            .lock()
            .ok()
            .and_then(|mut m| m.remove(&def.name));
        if let Some(old) = previous {
            stop_one(old).await;
        }
        let mut health = Health::new(&def.name, &def.kind, def.interval.as_secs());
        health.state = State::Misconfigured;
        health.last_error = Some(reason);
        health.last_error_class = Some("config".into());
        health.last_error_at = Some(Utc::now());
        let _ = repo::save_health(self.store(), &health).await;
        let running = Running {
            def: def.clone(),
            source: None,
            health: HealthCell::new(health),
            stop: None,
            task: None,
        };
        if let Ok(mut map) = self.running.lock() {
            map.insert(def.name, running);
        }
    }

    /// Stops a source's poller and forgets it (a console source deleted); `false` if unknown.
    pub async fn remove(&self, name: &str) -> bool {
        let previous = self.running.lock().ok().and_then(|mut m| m.remove(name));
        match previous {
            Some(old) => {
                stop_one(old).await;
                true
            }
            None => false,
        }
    }
}

async fn stop_one(mut old: Running) {
    if let Some(stop) = &old.stop {
        let _ = stop.send(true);
    }
    if let Some(task) = old.task.take() {
        let abort = task.abort_handle();
        if tokio::time::timeout(Duration::from_secs(10), task)
            .await
            .is_err()
        {
            abort.abort();
        }
    }
}

/// Why settings were not changed.
#[derive(Debug, thiserror::Error)]
pub enum ChangeError {
    #[error("no source named `{0}`")]
    UnknownSource(String),
    #[error(transparent)]
    Invalid(SourceError),
    #[error(transparent)]
    Store(#[from] vigie_core::store::StoreError),
}

/// What one poll would store, computed without committing anything.
#[derive(Debug, Serialize)]
pub struct DryRun {
    pub source: String,
    pub kind: String,
    /// The committed watermark the poll started from.
    pub from: Option<String>,
    /// Where the next poll would start.
    pub to: Option<String>,
    pub rows_read: u64,
    pub more: bool,
    pub records: Vec<RawRecordView>,
    pub equipment: Vec<Equipment>,
    /// The error the poll stopped at, after the records above.
    pub stopped: Option<String>,
}

/// A record as the dry run prints it.
#[derive(Debug, Serialize)]
pub struct RawRecordView {
    pub source_ref: Option<String>,
    pub resource: String,
    pub message: String,
    pub domain: Option<String>,
    pub level: Option<i32>,
    pub clear: bool,
    pub occurred_at: Option<chrono::DateTime<Utc>>,
    pub attributes: Map<String, Value>,
}

impl From<RawRecord> for RawRecordView {
    fn from(r: RawRecord) -> RawRecordView {
        RawRecordView {
            source_ref: r.source_ref,
            resource: r.resource,
            message: r.message,
            domain: r.domain,
            level: r.level.map(|l| l.number()),
            clear: r.clear,
            occurred_at: r.occurred_at,
            attributes: r.attributes,
        }
    }
}

/// Runs one poll of a source from its committed watermark and returns what it would store,
/// without storing anything (`vigie source test NAME`).
pub async fn dry_run(store: &Store, def: &SourceDef) -> Result<DryRun, SourceError> {
    let stored = repo::load_settings(store, &def.name)
        .await
        .map_err(|e| SourceError::Other(format!("cannot read the source's settings: {e}")))?;
    let (source, poll) = build(def, stored)?;
    let from = vigie_alerts::repo::checkpoint(store, &def.name)
        .await
        .map_err(|e| SourceError::Other(format!("cannot read the watermark: {e}")))?;
    let batch = match tokio::time::timeout(poll.timeout, source.poll(from.as_deref())).await {
        Ok(batch) => batch?,
        Err(_) => return Err(SourceError::Timeout(poll.timeout)),
    };
    Ok(DryRun {
        source: def.name.clone(),
        kind: def.kind.clone(),
        from,
        to: batch.position,
        rows_read: batch.rows_read,
        more: batch.more,
        records: batch.records.into_iter().map(RawRecordView::from).collect(),
        equipment: batch.equipment.items,
        stopped: batch.stopped.map(|e| e.to_string()),
    })
}
