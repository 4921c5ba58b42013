//! The SQL Server connectors over the real wire protocol: `pysqlbridge` serves the fixtures
//! (tests/fixtures, in the tools' column names) as SQL Server tables, with TLS required, a
//! self-signed certificate trusted and a SQL login. `real_server` runs against a real SQL Server
//! only when `VIGIE_TEST_MSSQL_URL` is set.

#![allow(clippy::unwrap_used, clippy::expect_used)]

pub mod bridge;
mod orion;
mod pipeline;
mod real_server;
mod whatsup;

use std::sync::Arc;

use serde_json::Value;
use vigie_poll::{Batch, Source};

pub fn source(name: &str, kind: &str, url: &str, settings: Value) -> Arc<dyn Source> {
    vigie_mssql::build(&vigie_mssql::Spec {
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
