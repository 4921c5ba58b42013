//! The board's queries: the open alerts, most critical first then most recent, with keyset
//! pagination on `(severity, last_seen, id)` (the partial index `alerts_board`), and the counts
//! per domain and level shown above it.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::AssertSqlSafe;
use vigie_core::on_pool;
use vigie_core::store::{Marks, Store, StoreError};

/// What a board row shows: the columns of [`BoardAlert`] (the full alert, with its attributes and
/// raw record, is for its own page).
const BOARD_COLUMNS: &str = "id, source, resource, domain, severity, message, state, count, last_seen, \
    updated_at, flapping, flap_count, in_maintenance, incident_id";

/// One row of the board.
#[derive(Clone, Debug, PartialEq, Serialize, sqlx::FromRow)]
pub struct BoardAlert {
    pub id: i64,
    pub source: String,
    pub resource: String,
    pub domain: String,
    pub severity: i32,
    pub message: String,
    pub state: String,
    pub count: i64,
    pub last_seen: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub flapping: bool,
    pub flap_count: i32,
    pub in_maintenance: bool,
    pub incident_id: Option<i64>,
}

/// The states shown on the board. Deferred alerts come back when due; cleared, archived and
/// deleted ones are found through the search.
pub const OPEN: &str = "('new', 'transferred', 'acknowledged')";

/// Where a board page starts: after this alert in the board's order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cursor {
    pub severity: i32,
    pub last_seen: DateTime<Utc>,
    pub id: i64,
}

impl Cursor {
    pub fn of(alert: &BoardAlert) -> Cursor {
        Cursor {
            severity: alert.severity,
            last_seen: alert.last_seen,
            id: alert.id,
        }
    }

    /// `severity.micros.id`, for a link.
    pub fn encode(&self) -> String {
        format!(
            "{}.{}.{}",
            self.severity,
            self.last_seen.timestamp_micros(),
            self.id
        )
    }

    pub fn decode(text: &str) -> Option<Cursor> {
        let mut parts = text.split('.');
        let severity = parts.next()?.parse().ok()?;
        let last_seen = DateTime::from_timestamp_micros(parts.next()?.parse().ok()?)?;
        let id = parts.next()?.parse().ok()?;
        parts.next().is_none().then_some(Cursor {
            severity,
            last_seen,
            id,
        })
    }
}

/// Rows of a board page.
pub const PAGE: i64 = 100;

#[derive(Clone, Debug, Default)]
pub struct BoardFilter {
    pub domain: Option<String>,
    pub severity: Option<i32>,
    pub after: Option<Cursor>,
    pub limit: i64,
}

/// One page of the board.
pub async fn page(store: &Store, filter: &BoardFilter) -> Result<Vec<BoardAlert>, StoreError> {
    let mut marks = Marks::new(store.backend());
    let mut sql =
        format!("SELECT {BOARD_COLUMNS} FROM alerts WHERE state IN {OPEN} AND NOT in_maintenance");
    if filter.domain.is_some() {
        sql.push_str(&format!(" AND domain = {}", marks.mark()));
    }
    if filter.severity.is_some() {
        sql.push_str(&format!(" AND severity = {}", marks.mark()));
    }
    if filter.after.is_some() {
        let (a, b, c) = (marks.mark(), marks.mark(), marks.mark());
        sql.push_str(&format!(" AND (severity, last_seen, id) < ({a}, {b}, {c})"));
    }
    sql.push_str(&format!(
        " ORDER BY severity DESC, last_seen DESC, id DESC LIMIT {}",
        marks.mark()
    ));
    Ok(on_pool!(store, pool => {
        let mut q = sqlx::query_as::<_, BoardAlert>(AssertSqlSafe(sql));
        if let Some(d) = &filter.domain {
            q = q.bind(d);
        }
        if let Some(s) = filter.severity {
            q = q.bind(s);
        }
        if let Some(c) = filter.after {
            q = q.bind(c.severity).bind(c.last_seen).bind(c.id);
        }
        q.bind(filter.limit.clamp(1, 500)).fetch_all(pool).await
    })?)
}

/// The alerts a maintenance window keeps off the board, most recent first.
pub async fn in_maintenance(store: &Store, limit: i64) -> Result<Vec<BoardAlert>, StoreError> {
    let sql = format!(
        "SELECT {BOARD_COLUMNS} FROM alerts WHERE in_maintenance ORDER BY last_seen DESC, id DESC LIMIT $1"
    );
    Ok(
        on_pool!(store, pool => sqlx::query_as::<_, BoardAlert>(AssertSqlSafe(sql))
        .bind(limit)
        .fetch_all(pool)
        .await)?,
    )
}

/// Open alerts per domain and level.
#[derive(Clone, Debug, Serialize, sqlx::FromRow, PartialEq, Eq)]
pub struct Count {
    pub domain: String,
    pub severity: i32,
    pub count: i64,
}

/// The counts, read from the store (boards go through [`crate::live::Feed::counts`], which
/// reads them again only when an alert changed).
pub async fn counts(store: &Store) -> Result<Vec<Count>, StoreError> {
    let sql = format!(
        "SELECT domain, severity, COUNT(*) AS count FROM alerts WHERE state IN {OPEN} AND NOT in_maintenance
         GROUP BY domain, severity ORDER BY domain, severity DESC"
    );
    Ok(
        on_pool!(store, pool => sqlx::query_as::<_, Count>(AssertSqlSafe(sql))
        .fetch_all(pool)
        .await)?,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip() {
        let c = Cursor {
            severity: 2,
            last_seen: vigie_core::time::now(),
            id: 77,
        };
        assert_eq!(Cursor::decode(&c.encode()), Some(c));
        assert_eq!(Cursor::decode("2.x.3"), None);
        assert_eq!(Cursor::decode("2.1.3.4"), None);
    }
}
