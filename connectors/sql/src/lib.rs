//! Database sources: the connectors that read what supervision tools already stored.
//!
//! - [`client`]: one client over MySQL/MariaDB (`mysql_async`) and PostgreSQL (`sqlx`), with
//!   errors classified for the health line and passwords kept out of every message.
//! - [`glpi`]: GLPI tickets → helpdesk alerts, computers → equipment.
//! - [`manageengine`]: ManageEngine Applications Manager alerts → alerts, monitors → equipment,
//!   downtimes → unavailability periods and statistics (on demand).
//! - [`bareos`]: a Bareos/Bacula catalog's `Job` table → backup alerts.
//! - [`query`]: the configurable SQL source (an administrator's SELECT and its column mapping).
//!
//! Every connector implements [`vigie_poll::Source`]; [`build`] makes one from its kind, URL and
//! settings, checking the settings without connecting.

pub mod bareos;
pub mod client;
pub mod glpi;
pub mod manageengine;
pub mod query;
pub mod row;
mod stream;

use std::sync::Arc;

use serde_json::Value;
use vigie_poll::{Source, SourceError};

/// What a source is made from.
#[derive(Clone, PartialEq)]
pub struct SourceSpec {
    pub name: String,
    /// `glpi`, `manageengine`, `bareos`, `sql`.
    pub kind: String,
    pub url: String,
    /// The configured domain of its records, over the connector's default.
    pub domain: Option<String>,
    /// The connector's settings (a JSON object; `null` for the defaults).
    pub settings: Value,
}

impl std::fmt::Debug for SourceSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SourceSpec")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .field("url", &client::redact_url(&self.url))
            .field("domain", &self.domain)
            .field("settings", &self.settings)
            .finish()
    }
}

/// The kinds this crate reads.
pub const KINDS: [&str; 4] = ["glpi", "manageengine", "bareos", "sql"];

/// Makes the source of a spec. Checks the URL and the settings (a configurable query is parsed
/// and refused when it is not a single SELECT with its watermark); connects on the first poll.
pub fn build(spec: &SourceSpec) -> Result<Arc<dyn Source>, SourceError> {
    match spec.kind.as_str() {
        "glpi" => Ok(Arc::new(glpi::Glpi::new(spec)?)),
        "manageengine" => Ok(Arc::new(manageengine::ManageEngine::new(spec)?)),
        "bareos" | "bacula" => Ok(Arc::new(bareos::Bareos::new(spec)?)),
        "sql" => Ok(Arc::new(query::QuerySource::new(spec)?)),
        other => Err(SourceError::Config(format!(
            "no connector for the kind `{other}` in this build (available: {})",
            KINDS.join(", ")
        ))),
    }
}
