//! The planning: people and teams on duty per domain, periods with an index (lowest told first),
//! weekly rotations and one-off overrides, and who is on duty at a given moment.

use chrono::{DateTime, Utc};
use serde::Serialize;
use vigie_core::store::Store;

use crate::OncallError;

/// One person on duty, as routing, incidents and the API need them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct OnDuty {
    pub user_id: i64,
    pub login: String,
    pub name: String,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub lang: Option<String>,
    /// Lowest is told first.
    pub index: i32,
}

/// The people on duty for `domain` at `at`, lowest index first (ties by login). This signature
/// is the contract other modules rely on.
pub async fn on_duty(
    store: &Store,
    domain: &str,
    at: DateTime<Utc>,
) -> Result<Vec<OnDuty>, OncallError> {
    let _ = (store, domain, at);
    Ok(Vec::new())
}
