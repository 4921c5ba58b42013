//! The connectors against real databases: each test creates its own MariaDB (or PostgreSQL)
//! database with the tool's real tables, inserts rows as the tool would, and polls.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod bareos;
mod glpi;
mod manageengine;
mod query;
pub mod support;

use std::sync::Arc;

use serde_json::Value;
use vigie_poll::{Batch, Source, SourceError};
use vigie_sql::SourceSpec;

pub fn source(name: &str, kind: &str, url: &str, settings: Value) -> Arc<dyn Source> {
    vigie_sql::build(&SourceSpec {
        name: name.into(),
        kind: kind.into(),
        url: url.into(),
        domain: None,
        settings,
    })
    .unwrap_or_else(|e| panic!("source builds: {e}"))
}

/// Polls once, failing the test on an error.
pub async fn poll(source: &dyn Source, position: Option<&str>) -> Batch {
    source
        .poll(position)
        .await
        .unwrap_or_else(|e| panic!("poll of {} failed: {e}", source.name()))
}

/// Polls until nothing more is waiting; returns every batch.
pub async fn poll_all(
    source: &dyn Source,
    mut position: Option<String>,
) -> (Vec<Batch>, Option<String>) {
    let mut batches = Vec::new();
    for _ in 0..100 {
        let batch = poll(source, position.as_deref()).await;
        assert!(batch.stopped.is_none(), "stopped: {:?}", batch.stopped);
        position = batch.position.clone();
        let more = batch.more;
        batches.push(batch);
        if !more {
            break;
        }
    }
    (batches, position)
}

pub fn poll_error(result: Result<Batch, SourceError>) -> SourceError {
    match result {
        Ok(b) => b
            .stopped
            .unwrap_or_else(|| panic!("expected an error, got {} records", b.records.len())),
        Err(e) => e,
    }
}
