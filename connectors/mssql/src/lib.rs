//! Database sources on Microsoft SQL Server, read with `tiberius`: SolarWinds Orion
//! (`kind = "solarwinds"`) and WhatsUp Gold (`kind = "whatsup"`).
//!
//! - [`url`]: `mssql://user:password@host:port/Database?encrypt=…` URLs (TLS modes, timeouts, pool).
//! - [`client`]: a small pool of connections, statements with `@P1…` parameters, errors
//!   classified for the health line (18456 login failed, 4060 unknown database, 208/207 missing
//!   table/column).
//! - [`orion`], [`whatsup`]: the two connectors; each implements [`vigie_poll::Source`].
//!
//! [`build`] makes a source from its kind, URL and settings, checking both without connecting.

pub mod client;
pub mod map;
pub mod orion;
pub mod row;
pub mod url;
pub mod whatsup;

use std::sync::Arc;

use serde_json::Value;
use vigie_poll::{Source, SourceError};

/// What a source is made from (the same parts as `vigie_sql::SourceSpec`).
#[derive(Clone, PartialEq)]
pub struct Spec {
    pub name: String,
    /// `solarwinds` or `whatsup`.
    pub kind: String,
    pub url: String,
    /// The configured domain of its records, over the connector's default.
    pub domain: Option<String>,
    /// The connector's settings (a JSON object; `null` for the defaults).
    pub settings: Value,
}

impl std::fmt::Debug for Spec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Spec")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .field("url", &url::redact(&self.url))
            .field("domain", &self.domain)
            .field("settings", &self.settings)
            .finish()
    }
}

/// The kinds this crate reads.
pub const KINDS: [&str; 2] = ["solarwinds", "whatsup"];

/// Whether this crate reads a kind.
pub fn handles(kind: &str) -> bool {
    KINDS.contains(&kind)
}

/// Makes the source of a spec; connects on the first poll.
pub fn build(spec: &Spec) -> Result<Arc<dyn Source>, SourceError> {
    match spec.kind.as_str() {
        "solarwinds" => Ok(Arc::new(orion::Orion::new(spec)?)),
        "whatsup" => Ok(Arc::new(whatsup::WhatsUp::new(spec)?)),
        other => Err(SourceError::Config(format!(
            "no SQL Server connector for the kind `{other}` (available: {})",
            KINDS.join(", ")
        ))),
    }
}
