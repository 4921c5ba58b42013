//! Every statement on the tables this module owns: `source_health`, `source_settings`,
//! `equipment`, `backups` and `backup_jobs`.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Map, Value};
use sqlx::AssertSqlSafe;
use sqlx::types::Json;
use vigie_core::audit::{self, Actor, Entry};
use vigie_core::store::{Marks, Store, StoreError};
use vigie_core::time::{now, to_store_precision};
use vigie_core::{on_pool, on_tx};
use vigie_poll::{EquipmentBatch, Health, State};

// ---------------------------------------------------------------------------------------------
// Health

#[derive(sqlx::FromRow)]
struct HealthRow {
    source: String,
    kind: String,
    state: String,
    interval_seconds: i64,
    last_poll_at: Option<DateTime<Utc>>,
    last_success_at: Option<DateTime<Utc>>,
    last_error: Option<String>,
    last_error_class: Option<String>,
    last_error_at: Option<DateTime<Utc>>,
    failing_since: Option<DateTime<Utc>>,
    consecutive_failures: i64,
    rows_read: i64,
    records: i64,
    last_poll_ms: Option<i64>,
    backlog: bool,
    newest_row_at: Option<DateTime<Utc>>,
    alert_raised: bool,
}

impl From<HealthRow> for Health {
    fn from(r: HealthRow) -> Health {
        Health {
            source: r.source,
            kind: r.kind,
            state: State::parse(&r.state).unwrap_or(State::Starting),
            interval_seconds: r.interval_seconds.max(0) as u64,
            last_poll: r.last_poll_at,
            last_success: r.last_success_at,
            last_error: r.last_error,
            last_error_class: r.last_error_class,
            last_error_at: r.last_error_at,
            failing_since: r.failing_since,
            consecutive_failures: u32::try_from(r.consecutive_failures).unwrap_or(u32::MAX),
            rows_read: r.rows_read.max(0) as u64,
            records: r.records.max(0) as u64,
            last_poll_ms: r.last_poll_ms.map(|m| m.max(0) as u64),
            backlog: r.backlog,
            newest_row: r.newest_row_at,
            position: None,
            alert_raised: r.alert_raised,
        }
    }
}

const HEALTH_COLUMNS: &str = "source, kind, state, interval_seconds, last_poll_at, last_success_at, \
    last_error, last_error_class, last_error_at, failing_since, consecutive_failures, rows_read, \
    records, last_poll_ms, backlog, newest_row_at, alert_raised";

fn clamp_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// Writes a source's health line.
pub async fn save_health(store: &Store, h: &Health) -> Result<(), StoreError> {
    let t = |v: Option<DateTime<Utc>>| v.map(to_store_precision);
    let sql = format!(
        "INSERT INTO source_health ({HEALTH_COLUMNS}, updated_at) VALUES \
         ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18) \
         ON CONFLICT (source) DO UPDATE SET kind = excluded.kind, state = excluded.state, \
         interval_seconds = excluded.interval_seconds, last_poll_at = excluded.last_poll_at, \
         last_success_at = excluded.last_success_at, last_error = excluded.last_error, \
         last_error_class = excluded.last_error_class, last_error_at = excluded.last_error_at, \
         failing_since = excluded.failing_since, consecutive_failures = excluded.consecutive_failures, \
         rows_read = excluded.rows_read, records = excluded.records, last_poll_ms = excluded.last_poll_ms, \
         backlog = excluded.backlog, newest_row_at = excluded.newest_row_at, \
         alert_raised = excluded.alert_raised, updated_at = excluded.updated_at"
    );
    on_pool!(store, pool => sqlx::query(AssertSqlSafe(sql))
        .bind(&h.source)
        .bind(&h.kind)
        .bind(h.state.as_str())
        .bind(clamp_i64(h.interval_seconds))
        .bind(t(h.last_poll))
        .bind(t(h.last_success))
        .bind(&h.last_error)
        .bind(&h.last_error_class)
        .bind(t(h.last_error_at))
        .bind(t(h.failing_since))
        .bind(i64::from(h.consecutive_failures))
        .bind(clamp_i64(h.rows_read))
        .bind(clamp_i64(h.records))
        .bind(h.last_poll_ms.map(clamp_i64))
        .bind(h.backlog)
        .bind(t(h.newest_row))
        .bind(h.alert_raised)
        .bind(now())
        .execute(pool)
        .await
        .map(drop))?;
    Ok(())
}

/// Every stored health line, by source name.
pub async fn list_health(store: &Store) -> Result<Vec<Health>, StoreError> {
    let sql = format!("SELECT {HEALTH_COLUMNS} FROM source_health ORDER BY source");
    let rows: Vec<HealthRow> = on_pool!(store, pool => sqlx::query_as(AssertSqlSafe(sql))
        .fetch_all(pool)
        .await)?;
    Ok(rows.into_iter().map(Health::from).collect())
}

/// One source's stored health line.
pub async fn load_health(store: &Store, source: &str) -> Result<Option<Health>, StoreError> {
    let sql = format!("SELECT {HEALTH_COLUMNS} FROM source_health WHERE source = $1");
    let row: Option<HealthRow> = on_pool!(store, pool => sqlx::query_as(AssertSqlSafe(sql))
        .bind(source)
        .fetch_optional(pool)
        .await)?;
    Ok(row.map(Health::from))
}

// ---------------------------------------------------------------------------------------------
// Settings

/// A source's connector settings (`null` when none were stored).
pub async fn load_settings(store: &Store, source: &str) -> Result<Value, StoreError> {
    let text: Option<String> = on_pool!(store, pool => sqlx::query_scalar(
        "SELECT settings FROM source_settings WHERE source = $1",
    )
    .bind(source)
    .fetch_optional(pool)
    .await)?;
    Ok(text
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or(Value::Null))
}

/// Stores a source's connector settings, with its audit entry.
pub async fn save_settings(
    store: &Store,
    source: &str,
    settings: &Value,
    actor: Option<&Actor>,
) -> Result<(), StoreError> {
    let before = load_settings(store, source).await?;
    let mut tx = store.begin().await?;
    let text = settings.to_string();
    on_tx!(&mut tx, conn => sqlx::query(
        "INSERT INTO source_settings (source, settings, updated_at, updated_by) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (source) DO UPDATE SET settings = excluded.settings, \
         updated_at = excluded.updated_at, updated_by = excluded.updated_by",
    )
    .bind(source)
    .bind(&text)
    .bind(now())
    .bind(actor.map(|a| a.login.clone()))
    .execute(&mut *conn)
    .await
    .map(drop))?;
    audit::record(
        &mut tx,
        Entry::new(actor, None, "source.settings")
            .target("source", source, source)
            .change(
                (!before.is_null()).then_some(before),
                Some(settings.clone()),
            ),
    )
    .await?;
    tx.commit().await
}

// ---------------------------------------------------------------------------------------------
// Equipment

/// One piece of equipment as stored.
#[derive(Clone, Debug, PartialEq, Serialize, sqlx::FromRow)]
pub struct EquipmentRow {
    pub id: i64,
    pub source: String,
    pub source_ref: String,
    pub name: String,
    pub kind: String,
    pub domain: Option<String>,
    pub status: Option<String>,
    pub attributes: Json<Value>,
    pub removed: bool,
    pub source_updated_at: Option<DateTime<Utc>>,
    pub first_seen: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

const EQUIPMENT_COLUMNS: usize = 11;
const EQUIPMENT_CHUNK: usize = 256;

/// Stores the equipment a poll reported; for the kinds it lists completely, marks the source's
/// other equipment of those kinds as removed. One transaction.
pub async fn store_equipment(
    store: &Store,
    source: &str,
    batch: &EquipmentBatch,
) -> Result<(), StoreError> {
    let at = now();
    let mut tx = store.begin().await?;
    for chunk in batch.items.chunks(EQUIPMENT_CHUNK) {
        let sql = format!(
            "INSERT INTO equipment (source, source_ref, name, kind, domain, status, attributes, \
             removed, source_updated_at, first_seen, updated_at) VALUES {} \
             ON CONFLICT (source, source_ref) DO UPDATE SET name = excluded.name, \
             kind = excluded.kind, domain = excluded.domain, status = excluded.status, \
             attributes = excluded.attributes, removed = excluded.removed, \
             source_updated_at = excluded.source_updated_at, updated_at = excluded.updated_at",
            Marks::new(tx.backend()).rows(chunk.len(), EQUIPMENT_COLUMNS)
        );
        on_tx!(&mut tx, conn => {
            let mut q = sqlx::query(AssertSqlSafe(sql));
            for e in chunk {
                q = q
                    .bind(source)
                    .bind(&e.source_ref)
                    .bind(&e.name)
                    .bind(&e.kind)
                    .bind(&e.domain)
                    .bind(&e.status)
                    .bind(Json(&e.attributes))
                    .bind(e.removed)
                    .bind(e.updated_at.map(to_store_precision))
                    .bind(at)
                    .bind(at);
            }
            q.execute(&mut *conn).await.map(drop)
        })?;
    }
    if !batch.complete_kinds.is_empty() {
        let mut marks = Marks::new(tx.backend());
        let sql = format!(
            "UPDATE equipment SET removed = {}, updated_at = {} \
             WHERE source = {} AND removed = {} AND updated_at < {} AND kind IN ({})",
            marks.mark(),
            marks.mark(),
            marks.mark(),
            marks.mark(),
            marks.mark(),
            marks.list(batch.complete_kinds.len())
        );
        on_tx!(&mut tx, conn => {
            let mut q = sqlx::query(AssertSqlSafe(sql))
                .bind(true)
                .bind(at)
                .bind(source)
                .bind(false)
                .bind(at);
            for k in &batch.complete_kinds {
                q = q.bind(k);
            }
            q.execute(&mut *conn).await.map(drop)
        })?;
    }
    tx.commit().await
}

/// Equipment, by source and name; removed items only when asked.
pub async fn list_equipment(
    store: &Store,
    source: Option<&str>,
    with_removed: bool,
) -> Result<Vec<EquipmentRow>, StoreError> {
    let sql = "SELECT id, source, source_ref, name, kind, domain, status, attributes, removed, \
               source_updated_at, first_seen, updated_at FROM equipment \
               WHERE ($1 IS NULL OR source = $1) AND (removed = $2 OR $3) ORDER BY source, name, id";
    let rows = on_pool!(store, pool => sqlx::query_as::<_, EquipmentRow>(sql)
        .bind(source)
        .bind(false)
        .bind(with_removed)
        .fetch_all(pool)
        .await)?;
    Ok(rows)
}

// ---------------------------------------------------------------------------------------------
// Backups

/// A backup job's outcome as a script reports it.
#[derive(Clone, Debug, PartialEq)]
pub struct NewBackup {
    pub job: String,
    /// `ok` or `error`.
    pub status: String,
    pub message: Option<String>,
    pub started_at: Option<DateTime<Utc>>,
    pub ended_at: Option<DateTime<Utc>>,
    /// The login of the token or the command that reported it.
    pub reported_by: Option<String>,
}

/// One reported outcome.
#[derive(Clone, Debug, PartialEq, Serialize, sqlx::FromRow)]
pub struct Backup {
    pub id: i64,
    pub job: String,
    pub status: String,
    pub message: Option<String>,
    pub started_at: Option<DateTime<Utc>>,
    pub ended_at: Option<DateTime<Utc>>,
    pub received_at: DateTime<Utc>,
    pub reported_by: Option<String>,
}

const BACKUP_COLUMNS: &str =
    "id, job, status, message, started_at, ended_at, received_at, reported_by";

/// Stores a report; returns its id.
pub async fn insert_backup(store: &Store, b: &NewBackup) -> Result<i64, StoreError> {
    let id = on_pool!(store, pool => sqlx::query_scalar::<_, i64>(
        "INSERT INTO backups (job, status, message, started_at, ended_at, received_at, reported_by) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
    )
    .bind(&b.job)
    .bind(&b.status)
    .bind(&b.message)
    .bind(b.started_at.map(to_store_precision))
    .bind(b.ended_at.map(to_store_precision))
    .bind(now())
    .bind(&b.reported_by)
    .fetch_one(pool)
    .await)?;
    Ok(id)
}

/// Reports after an id, in id order.
pub async fn backups_after(
    store: &Store,
    after: i64,
    limit: u32,
) -> Result<Vec<Backup>, StoreError> {
    let sql =
        format!("SELECT {BACKUP_COLUMNS} FROM backups WHERE id > $1 ORDER BY id LIMIT {limit}");
    Ok(
        on_pool!(store, pool => sqlx::query_as::<_, Backup>(AssertSqlSafe(sql))
        .bind(after)
        .fetch_all(pool)
        .await)?,
    )
}

/// The newest reports, of one job or all.
pub async fn list_backups(
    store: &Store,
    job: Option<&str>,
    limit: u32,
) -> Result<Vec<Backup>, StoreError> {
    let sql = format!(
        "SELECT {BACKUP_COLUMNS} FROM backups WHERE ($1 IS NULL OR job = $1) ORDER BY id DESC LIMIT {limit}"
    );
    Ok(
        on_pool!(store, pool => sqlx::query_as::<_, Backup>(AssertSqlSafe(sql))
        .bind(job)
        .fetch_all(pool)
        .await)?,
    )
}

/// Whether a job reported (received, or ended) at or after `since`.
pub async fn reported_since(
    store: &Store,
    job: &str,
    since: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let found: Option<i64> = on_pool!(store, pool => sqlx::query_scalar(
        "SELECT id FROM backups WHERE job = $1 AND (received_at >= $2 OR ended_at >= $2) LIMIT 1",
    )
    .bind(job)
    .bind(to_store_precision(since))
    .fetch_optional(pool)
    .await)?;
    Ok(found.is_some())
}

/// A job expected to report on a schedule.
#[derive(Clone, Debug, PartialEq, Serialize, sqlx::FromRow)]
pub struct BackupJob {
    pub job: String,
    /// `daily 23:00`, `mon,wed,fri 02:30`, `weekdays 01:00` (UTC).
    pub schedule: String,
    /// How long after a scheduled start the report may come.
    pub deadline_seconds: i64,
    pub enabled: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

pub async fn list_jobs(store: &Store) -> Result<Vec<BackupJob>, StoreError> {
    Ok(on_pool!(store, pool => sqlx::query_as::<_, BackupJob>(
        "SELECT job, schedule, deadline_seconds, enabled, created_at, updated_at FROM backup_jobs ORDER BY job",
    )
    .fetch_all(pool)
    .await)?)
}

/// Creates or changes an expected job, with its audit entry.
pub async fn save_job(
    store: &Store,
    job: &str,
    schedule: &str,
    deadline_seconds: i64,
    enabled: bool,
    actor: Option<&Actor>,
) -> Result<(), StoreError> {
    let at = now();
    let mut tx = store.begin().await?;
    on_tx!(&mut tx, conn => sqlx::query(
        "INSERT INTO backup_jobs (job, schedule, deadline_seconds, enabled, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $5) ON CONFLICT (job) DO UPDATE SET schedule = excluded.schedule, \
         deadline_seconds = excluded.deadline_seconds, enabled = excluded.enabled, updated_at = excluded.updated_at",
    )
    .bind(job)
    .bind(schedule)
    .bind(deadline_seconds)
    .bind(enabled)
    .bind(at)
    .execute(&mut *conn)
    .await
    .map(drop))?;
    let mut after = Map::new();
    after.insert("schedule".into(), Value::String(schedule.into()));
    after.insert("deadline_seconds".into(), Value::from(deadline_seconds));
    after.insert("enabled".into(), Value::Bool(enabled));
    audit::record(
        &mut tx,
        Entry::new(actor, None, "backup.job.save")
            .target("backup_job", job, job)
            .change(None, Some(Value::Object(after))),
    )
    .await?;
    tx.commit().await
}

/// Removes an expected job; `false` when there was none.
pub async fn delete_job(
    store: &Store,
    job: &str,
    actor: Option<&Actor>,
) -> Result<bool, StoreError> {
    let mut tx = store.begin().await?;
    let deleted = on_tx!(&mut tx, conn => sqlx::query("DELETE FROM backup_jobs WHERE job = $1")
        .bind(job)
        .execute(&mut *conn)
        .await
        .map(|r| r.rows_affected()))?;
    if deleted > 0 {
        audit::record(
            &mut tx,
            Entry::new(actor, None, "backup.job.delete").target("backup_job", job, job),
        )
        .await?;
    }
    tx.commit().await?;
    Ok(deleted > 0)
}
