//! The host alerts decided in a committed transaction (a report's threshold changes, a host
//! gone silent or back), kept in `host_alert_outbox` until the pipeline has taken them.
//!
//! The report's (or the watcher's) transaction writes the rows; [`deliver`] submits them in
//! order and deletes what the pipeline accepted, in one transaction. A refusal (queue full, hub
//! stopping, store down) leaves them for the next call: the API calls it right after a report
//! that changed something, the watcher at every pass. One delivery at a time per process, so a
//! row is submitted once; two hub processes on one PostgreSQL store could both submit a row
//! before either deletes it — the pipeline then counts a duplicate, nothing is lost.

use chrono::{DateTime, Utc};
use sqlx::AssertSqlSafe;
use vigie_core::store::{Store, StoreError, StoreTx};
use vigie_core::{on_pool, on_tx};
use vigie_source::{Ingest, Level, RawRecord, Submission};

use crate::thresholds::{Check, Limit, Transition};
use crate::{WatchError, threshold_record, unreachable_record};

/// Most rows submitted in one go.
const BATCH: i64 = 500;

/// An alert to hand to the pipeline.
#[derive(Clone, Debug, PartialEq)]
pub enum HostAlert {
    Threshold(Transition),
    /// Silent since then.
    Down(DateTime<Utc>),
    /// Reporting again at that time.
    Back(DateTime<Utc>),
}

type Row = (
    i64,
    String,
    String,
    String,
    String,
    String,
    f64,
    f64,
    f64,
    i32,
    i32,
    DateTime<Utc>,
);

/// Queues alerts in the caller's transaction.
pub(crate) async fn queue(
    tx: &mut StoreTx,
    host: &str,
    at: DateTime<Utc>,
    alerts: &[HostAlert],
) -> Result<(), StoreError> {
    for alert in alerts {
        let (kind, check, at) = match alert {
            HostAlert::Threshold(Transition::Raise(c)) => ("raise", Some(c), at),
            HostAlert::Threshold(Transition::Clear(c)) => ("clear", Some(c), at),
            HostAlert::Down(since) => ("down", None, *since),
            HostAlert::Back(when) => ("back", None, *when),
        };
        let (key, resource, what, value, limit) = match check {
            Some(c) => (
                c.key.as_str(),
                c.resource.as_str(),
                c.what.as_str(),
                c.value,
                c.limit,
            ),
            None => (
                "",
                host,
                "",
                0.0,
                Limit {
                    above: 0.0,
                    margin: 0.0,
                    reports: 1,
                    level: Level::Critical,
                },
            ),
        };
        on_tx!(tx, conn => sqlx::query(
            "INSERT INTO host_alert_outbox (host, kind, key, resource, what, value, above, margin, \
             reports, level, at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        )
        .bind(host)
        .bind(kind)
        .bind(key)
        .bind(resource)
        .bind(what)
        .bind(value)
        .bind(limit.above)
        .bind(limit.margin)
        .bind(i32::try_from(limit.reports).unwrap_or(i32::MAX))
        .bind(limit.level as i32)
        .bind(at)
        .execute(conn)
        .await
        .map(|r| r.rows_affected()))?;
    }
    Ok(())
}

fn record(
    (_, host, kind, key, resource, what, value, above, margin, reports, level, at): &Row,
) -> RawRecord {
    let check = || Check {
        key: key.clone(),
        resource: resource.clone(),
        what: what.clone(),
        value: *value,
        limit: Limit {
            above: *above,
            margin: *margin,
            reports: u32::try_from(*reports).unwrap_or(1),
            level: Level::from_number(i64::from(*level)).unwrap_or(Level::Warning),
        },
    };
    match kind.as_str() {
        "raise" => threshold_record(host, &Transition::Raise(check()), *at),
        "clear" => threshold_record(host, &Transition::Clear(check()), *at),
        "back" => unreachable_record(host, *at, true),
        _ => unreachable_record(host, *at, false),
    }
}

static DELIVERING: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Submits the queued alerts, oldest first, and forgets those the pipeline accepted. Returns how
/// many were delivered; an error leaves the rest queued.
pub async fn deliver(store: &Store, ingest: &dyn Ingest) -> Result<usize, WatchError> {
    let _one_at_a_time = DELIVERING.lock().await;
    let mut delivered = 0;
    loop {
        let rows: Vec<Row> = on_pool!(store, pool => sqlx::query_as(
            "SELECT id, host, kind, key, resource, what, value, above, margin, reports, level, at \
             FROM host_alert_outbox ORDER BY id LIMIT $1",
        )
        .bind(BATCH)
        .fetch_all(pool)
        .await)
        .map_err(StoreError::from)?;
        if rows.is_empty() {
            return Ok(delivered);
        }
        let records = rows.iter().map(record).collect();
        ingest
            .submit(Submission {
                records,
                checkpoint: None,
            })
            .await?;
        // By id, not `id <= last`: on PostgreSQL a row with a smaller id may commit later.
        let marks: Vec<String> = (1..=rows.len()).map(|i| format!("${i}")).collect();
        let sql = format!(
            "DELETE FROM host_alert_outbox WHERE id IN ({})",
            marks.join(", ")
        );
        on_pool!(store, pool => {
            let mut q = sqlx::query(AssertSqlSafe(sql.clone()));
            for row in &rows {
                q = q.bind(row.0);
            }
            q.execute(pool).await.map(|r| r.rows_affected())
        })
        .map_err(StoreError::from)?;
        delivered += rows.len();
        if rows.len() < BATCH as usize {
            return Ok(delivered);
        }
    }
}
