//! Time as the store keeps it.

use chrono::{DateTime, SubsecRound, Utc};

/// Now, to the microsecond: PostgreSQL keeps microseconds, so a value written and read back
/// compares equal on both backends.
pub fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

/// A time from outside, to the store's precision.
pub fn to_store_precision(t: DateTime<Utc>) -> DateTime<Utc> {
    t.trunc_subsecs(6)
}
