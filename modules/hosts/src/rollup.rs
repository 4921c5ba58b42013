//! Roll-ups and retention of the metric series: per step (5 minutes, 1 hour) the average and the
//! maximum of each bucket, computed from the raw rows once the bucket (plus a grace for late
//! reports) is over; then raw rows, 5-minute and hourly roll-ups older than their retention are
//! deleted. One portable `GROUP BY` per bucket, on both backends.

use chrono::{DateTime, Duration, TimeZone, Utc};
use sqlx::AssertSqlSafe;
use vigie_core::store::{Marks, Store, StoreError};
use vigie_core::{on_pool, on_tx};

/// Retention and roll-up settings.
#[derive(Clone, Debug, PartialEq)]
pub struct Retention {
    pub raw: Duration,
    pub five_minutes: Duration,
    pub hourly: Duration,
    /// A bucket is rolled up this long after its end (reports arriving later are not counted).
    pub grace: Duration,
    /// Buckets rolled up per step in one pass, at most (catching up after a stop).
    pub max_buckets: u32,
}

impl Default for Retention {
    fn default() -> Retention {
        Retention {
            raw: Duration::days(1),
            five_minutes: Duration::days(31),
            hourly: Duration::days(366),
            grace: Duration::minutes(2),
            max_buckets: 500,
        }
    }
}

/// The roll-up steps, seconds.
pub const STEPS: [i64; 2] = [300, 3600];

fn floor(t: DateTime<Utc>, step: i64) -> DateTime<Utc> {
    let secs = t.timestamp().div_euclid(step) * step;
    Utc.timestamp_opt(secs, 0).single().unwrap_or(t)
}

/// What one pass did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Pass {
    /// Buckets rolled up, all steps.
    pub buckets: u64,
    /// Rows deleted by retention, all tables.
    pub deleted: u64,
}

/// Rolls up the buckets over at `now`, then applies the retention.
pub async fn run_pass(
    store: &Store,
    now: DateTime<Utc>,
    r: &Retention,
) -> Result<Pass, StoreError> {
    let mut pass = Pass::default();
    let mut raw_rolled_until = now;
    for step in STEPS {
        let until = roll_step(store, step, now, r, &mut pass).await?;
        raw_rolled_until = raw_rolled_until.min(until.unwrap_or(raw_rolled_until));
    }
    // Raw rows go only once every step has rolled them up.
    let raw_cut = (now - r.raw).min(raw_rolled_until);
    let mut m = Marks::new(store.backend());
    let sql = format!("DELETE FROM host_metrics WHERE at < {}", m.mark());
    pass.deleted += on_pool!(store, pool => sqlx::query(AssertSqlSafe(sql))
        .bind(raw_cut).execute(pool).await?.rows_affected());
    for (step, keep) in [(300, r.five_minutes), (3600, r.hourly)] {
        let mut m = Marks::new(store.backend());
        let sql = format!(
            "DELETE FROM host_metric_rollups WHERE step = {} AND at < {}",
            m.mark(),
            m.mark()
        );
        pass.deleted += on_pool!(store, pool => sqlx::query(AssertSqlSafe(sql))
            .bind(step).bind(now - keep).execute(pool).await?.rows_affected());
    }
    Ok(pass)
}

/// Rolls up one step's finished buckets; returns the time up to which it is done.
async fn roll_step(
    store: &Store,
    step: i64,
    now: DateTime<Utc>,
    r: &Retention,
    pass: &mut Pass,
) -> Result<Option<DateTime<Utc>>, StoreError> {
    let backend = store.backend();
    let mark_sql = format!(
        "SELECT done_until FROM host_rollup_marks WHERE step = {}",
        Marks::new(backend).mark()
    );
    let done: Option<DateTime<Utc>> = on_pool!(store, pool => sqlx::query_scalar(AssertSqlSafe(mark_sql))
        .bind(step).fetch_optional(pool).await?);
    let start = match done {
        Some(d) => d,
        None => {
            let oldest: Option<DateTime<Utc>> = on_pool!(store, pool =>
                sqlx::query_scalar("SELECT MIN(at) FROM host_metrics").fetch_one(pool).await?);
            match oldest {
                Some(t) => floor(t, step),
                None => return Ok(None),
            }
        }
    };
    let end = floor(now - r.grace, step);
    let mut bucket = start;
    let mut n = 0;
    while bucket + Duration::seconds(step) <= end && n < r.max_buckets {
        let next = bucket + Duration::seconds(step);
        let mut m = Marks::new(backend);
        let insert = format!(
            "INSERT INTO host_metric_rollups (host_id, metric, step, at, avg, max, samples) \
             SELECT host_id, metric, {}, {}, AVG(value), MAX(value), COUNT(*) FROM host_metrics \
             WHERE at >= {} AND at < {} GROUP BY host_id, metric \
             ON CONFLICT (host_id, metric, step, at) DO NOTHING",
            m.mark(),
            m.mark(),
            m.mark(),
            m.mark()
        );
        let mut m = Marks::new(backend);
        let upsert = format!(
            "INSERT INTO host_rollup_marks (step, done_until) VALUES ({}, {}) \
             ON CONFLICT (step) DO UPDATE SET done_until = excluded.done_until",
            m.mark(),
            m.mark()
        );
        let mut tx = store.begin().await?;
        on_tx!(&mut tx, conn => {
            sqlx::query(AssertSqlSafe(insert)).bind(step).bind(bucket).bind(bucket).bind(next)
                .execute(&mut *conn).await?;
            sqlx::query(AssertSqlSafe(upsert)).bind(step).bind(next)
                .execute(&mut *conn).await?;
        });
        tx.commit().await?;
        pass.buckets += 1;
        n += 1;
        bucket = next;
    }
    Ok(Some(bucket))
}

/// One rolled-up point.
#[derive(Clone, Debug, PartialEq, serde::Serialize, sqlx::FromRow)]
pub struct RolledPoint {
    pub at: DateTime<Utc>,
    pub value: f64,
    pub max: f64,
}

/// A metric's roll-ups of `step` in `[from, to]`, oldest first.
pub async fn rolled_series(
    store: &Store,
    host_id: i64,
    metric: &str,
    step: i64,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    limit: i64,
) -> Result<Vec<RolledPoint>, StoreError> {
    let mut m = Marks::new(store.backend());
    let sql = format!(
        "SELECT at, avg AS value, max FROM host_metric_rollups WHERE host_id = {} AND metric = {} \
         AND step = {} AND at >= {} AND at <= {} ORDER BY at LIMIT {}",
        m.mark(),
        m.mark(),
        m.mark(),
        m.mark(),
        m.mark(),
        m.mark()
    );
    let points = on_pool!(store, pool => sqlx::query_as::<_, RolledPoint>(AssertSqlSafe(sql))
        .bind(host_id).bind(metric).bind(step).bind(from).bind(to).bind(limit)
        .fetch_all(pool).await?);
    Ok(points)
}
