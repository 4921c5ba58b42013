//! The hub's side of the poll runtime: [`StoreHub`] implements [`vigie_poll::Hub`] over the
//! pipeline (records and watermarks, one transaction) and this module's tables (equipment, health).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use vigie_alerts::maintenance::{self, SourceMaintenance};
use vigie_core::store::Store;
use vigie_poll::{BoxFuture, EquipmentBatch, Health, Hub, MaintenanceSpan};
use vigie_source::{Ingest, IngestFuture, Submission};

use crate::repo;

/// A health line is written when what it says changes, and otherwise at most this often.
const HEALTH_REFRESH: Duration = Duration::from_secs(60);

/// What was last written of a source's health line.
#[derive(Clone, PartialEq)]
struct Written {
    state: &'static str,
    last_error: Option<String>,
    alert_raised: bool,
    backlog: bool,
}

/// The poll runtime's hub: the pipeline for records and watermarks, the store for the rest.
pub struct StoreHub {
    store: Store,
    ingest: Arc<dyn Ingest>,
    written: Mutex<HashMap<String, (Instant, Written)>>,
}

impl StoreHub {
    pub fn new(store: Store, ingest: Arc<dyn Ingest>) -> StoreHub {
        StoreHub {
            store,
            ingest,
            written: Mutex::new(HashMap::new()),
        }
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Whether the line must be written now.
    fn due(&self, health: &Health) -> bool {
        let now = Written {
            state: health.state.as_str(),
            last_error: health.last_error.clone(),
            alert_raised: health.alert_raised,
            backlog: health.backlog,
        };
        let Ok(mut written) = self.written.lock() else {
            return true;
        };
        match written.get(&health.source) {
            Some((at, before)) if *before == now && at.elapsed() < HEALTH_REFRESH => false,
            _ => {
                written.insert(health.source.clone(), (Instant::now(), now));
                true
            }
        }
    }
}

impl Hub for StoreHub {
    fn submit(&self, submission: Submission) -> IngestFuture<'_> {
        self.ingest.submit(submission)
    }

    fn position<'a>(&'a self, source: &'a str) -> BoxFuture<'a, Result<Option<String>, String>> {
        Box::pin(async move {
            vigie_alerts::repo::checkpoint(&self.store, source)
                .await
                .map_err(|e| e.to_string())
        })
    }

    fn equipment<'a>(
        &'a self,
        source: &'a str,
        batch: EquipmentBatch,
    ) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            repo::store_equipment(&self.store, source, &batch)
                .await
                .map_err(|e| e.to_string())
        })
    }

    fn maintenance<'a>(
        &'a self,
        source: &'a str,
        domain: Option<&'a str>,
        spans: Vec<MaintenanceSpan>,
    ) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            let spans: Vec<SourceMaintenance> = spans
                .into_iter()
                .map(|s| SourceMaintenance {
                    resource: s.resource,
                    since: s.since,
                    what: s.what,
                })
                .collect();
            let changed = maintenance::sync_source(&self.store, source, domain, &spans)
                .await
                .map_err(|e| e.to_string())?;
            if changed {
                // The alerts' marks now; the board's upkeep tells the live screens.
                maintenance::refresh(&self.store, None)
                    .await
                    .map_err(|e| e.to_string())?;
            }
            Ok(())
        })
    }

    fn health(&self, health: Health) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            if !self.due(&health) {
                return;
            }
            if let Err(e) = repo::save_health(&self.store, &health).await {
                tracing::warn!(source = %health.source, error = %e, "Cannot store the source's health line.");
                // Try again next time.
                if let Ok(mut written) = self.written.lock() {
                    written.remove(&health.source);
                }
            }
        })
    }
}
