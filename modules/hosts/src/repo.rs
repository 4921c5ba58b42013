//! Every statement on the tables this module owns: `hosts`, `host_tokens`, `host_reports`,
//! `host_metrics` and `host_downtimes`.

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;
use serde_json::{Map, Value, json};
use sqlx::AssertSqlSafe;
use sqlx::types::Json;
use vigie_agent::report::{Inventory, Report};
use vigie_core::secret::{new_token, token_digest};
use vigie_core::store::{Backend, Marks, Store, StoreError, statement_chunks};
use vigie_core::time::{now, to_store_precision};
use vigie_core::{on_pool, on_tx};

use crate::outbox::{self, HostAlert};
use crate::thresholds::{self, States, Thresholds, Transition};

/// Prefix of a host agent's token.
pub const TOKEN_PREFIX: &str = "vha";

/// A host as its token identifies it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenHost {
    pub host_id: i64,
    pub name: String,
}

/// Registers `host` when new and gives it a new token; only the token's digest is stored.
pub async fn create_token(store: &Store, host: &str) -> Result<String, TokenError> {
    let host = host.trim();
    if host.is_empty() || host.len() > 253 || host.chars().any(char::is_whitespace) {
        return Err(TokenError::BadName(host.to_owned()));
    }
    let token = new_token(TOKEN_PREFIX).map_err(|e| TokenError::Random(e.to_string()))?;
    let digest = token_digest(&token);
    let at = now();
    let mut tx = store.begin().await?;
    let mut m = Marks::new(tx.backend());
    let insert = format!(
        "INSERT INTO hosts (name, registered_at) VALUES ({}, {}) ON CONFLICT (name) DO NOTHING",
        m.mark(),
        m.mark()
    );
    let select = format!(
        "SELECT id FROM hosts WHERE name = {}",
        Marks::new(tx.backend()).mark()
    );
    let mut m = Marks::new(tx.backend());
    let token_sql = format!(
        "INSERT INTO host_tokens (host_id, digest, created_at) VALUES ({}, {}, {})",
        m.mark(),
        m.mark(),
        m.mark()
    );
    on_tx!(&mut tx, conn => {
        sqlx::query(AssertSqlSafe(insert)).bind(host).bind(at).execute(&mut *conn).await.map_err(StoreError::from)?;
        let id: i64 = sqlx::query_scalar(AssertSqlSafe(select)).bind(host).fetch_one(&mut *conn)
            .await.map_err(StoreError::from)?;
        sqlx::query(AssertSqlSafe(token_sql)).bind(id).bind(&digest).bind(at).execute(&mut *conn)
            .await.map_err(StoreError::from)?;
    });
    tx.commit().await?;
    Ok(token)
}

/// Revokes every token of `host`; returns how many were revoked.
pub async fn revoke_tokens(store: &Store, host: &str) -> Result<u64, StoreError> {
    let mut m = Marks::new(store.backend());
    let sql = format!(
        "UPDATE host_tokens SET revoked_at = {} WHERE revoked_at IS NULL \
         AND host_id = (SELECT id FROM hosts WHERE name = {})",
        m.mark(),
        m.mark()
    );
    let done = on_pool!(store, pool => sqlx::query(AssertSqlSafe(sql))
        .bind(now()).bind(host).execute(pool).await?.rows_affected());
    Ok(done)
}

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("`{0}` is not a host name (1 to 253 characters, no spaces)")]
    BadName(String),
    #[error("no randomness for the token: {0}")]
    Random(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The host of a valid (known, not revoked) token.
pub async fn host_by_token(store: &Store, token: &str) -> Result<Option<TokenHost>, StoreError> {
    let sql = format!(
        "SELECT h.id, h.name FROM host_tokens t JOIN hosts h ON h.id = t.host_id \
         WHERE t.digest = {} AND t.revoked_at IS NULL",
        Marks::new(store.backend()).mark()
    );
    let row: Option<(i64, String)> = on_pool!(store, pool => sqlx::query_as(AssertSqlSafe(sql))
        .bind(token_digest(token)).fetch_optional(pool).await?);
    Ok(row.map(|(host_id, name)| TokenHost { host_id, name }))
}

/// What storing a report did.
#[derive(Debug, Default)]
pub struct Stored {
    /// The report's id had already been stored: nothing was written.
    pub replay: bool,
    /// One of the host's thresholds is crossed.
    pub fast: bool,
    /// Threshold alerts to raise or clear.
    pub transitions: Vec<Transition>,
    /// The host was unreachable and reports again: its "host unreachable" alert clears.
    pub back: bool,
}

#[derive(sqlx::FromRow)]
struct HostState {
    name: String,
    status: String,
    threshold_state: String,
    inventory: Option<String>,
}

/// Stores one accepted report in one transaction: its id, the host's line, the metric rows.
pub async fn store_report(
    store: &Store,
    host_id: i64,
    report: &Report,
    limits: &Thresholds,
) -> Result<Stored, StoreError> {
    let received = now();
    let collected = to_store_precision(report.collected_at);
    let backend = store.backend();
    let mut tx = store.begin().await?;

    let mut m = Marks::new(backend);
    let seen = format!(
        "INSERT INTO host_reports (host_id, report_id, collected_at, received_at) \
         VALUES ({}, {}, {}, {}) ON CONFLICT DO NOTHING",
        m.mark(),
        m.mark(),
        m.mark(),
        m.mark()
    );
    let lock = match backend {
        Backend::Sqlite => "",
        Backend::Postgres => " FOR UPDATE",
    };
    let select = format!(
        "SELECT name, status, threshold_state, inventory FROM hosts WHERE id = {}{lock}",
        Marks::new(backend).mark()
    );
    let (inserted, host): (u64, HostState) = on_tx!(&mut tx, conn => {
        let inserted = sqlx::query(AssertSqlSafe(seen))
            .bind(host_id).bind(&report.id).bind(collected).bind(received)
            .execute(&mut *conn).await?.rows_affected();
        let host: HostState = sqlx::query_as(AssertSqlSafe(select)).bind(host_id)
            .fetch_one(&mut *conn).await?;
        (inserted, host)
    });
    let mut states: States = serde_json::from_str(&host.threshold_state).unwrap_or_default();
    if inserted == 0 {
        // Dropped without commit: rolls back (nothing was written anyway).
        return Ok(Stored {
            replay: true,
            fast: thresholds::any_crossed(&states),
            ..Stored::default()
        });
    }

    let stored_inventory: Option<Inventory> = host
        .inventory
        .as_deref()
        .and_then(|s| serde_json::from_str(s).ok());
    let cores = report
        .inventory
        .as_ref()
        .or(stored_inventory.as_ref())
        .map(|i| i.cpu_cores)
        .filter(|c| *c > 0)
        .unwrap_or(u32::try_from(report.cpu.per_core_percent.len()).unwrap_or(0));
    let transitions = thresholds::apply(&mut states, thresholds::checks(report, cores, limits));
    let back = host.status == "unreachable";
    let inventory = match &report.inventory {
        Some(i) => Some(serde_json::to_string(i).map_err(json_error)?),
        None => None,
    };
    let series = metric_rows(report);
    let figures = figures(&series);
    let state_text = serde_json::to_string(&states).map_err(json_error)?;

    let mut m = Marks::new(backend);
    let update = format!(
        "UPDATE hosts SET last_seen = {}, last_report_id = {}, interval_secs = {}, \
         inventory = COALESCE({}, inventory), figures = {}, status = 'up', threshold_state = {} \
         WHERE id = {}",
        m.mark(),
        m.mark(),
        m.mark(),
        m.mark(),
        m.mark(),
        m.mark(),
        m.mark()
    );
    let mut m = Marks::new(backend);
    let close = format!(
        "UPDATE host_downtimes SET ended_at = {} WHERE host_id = {} AND ended_at IS NULL",
        m.mark(),
        m.mark()
    );
    // The host as equipment of the systems domain: on its first report, when it comes back and
    // when its inventory changes.
    let equipment = (host.status != "up" || report.inventory.is_some()).then(|| {
        let inventory = report.inventory.as_ref().or(stored_inventory.as_ref());
        let attributes = inventory
            .and_then(|i| serde_json::to_value(i).ok())
            .unwrap_or_else(|| json!({}));
        (equipment_sql(backend), Json(attributes))
    });
    on_tx!(&mut tx, conn => {
        if let Some((sql, attributes)) = equipment {
            sqlx::query(AssertSqlSafe(sql))
                .bind(&host.name).bind(&host.name).bind("up").bind(attributes)
                .bind(received).bind(received)
                .execute(&mut *conn).await?;
        }
        sqlx::query(AssertSqlSafe(update))
            .bind(received).bind(&report.id).bind(report.interval_secs).bind(inventory)
            .bind(figures.to_string()).bind(state_text).bind(host_id)
            .execute(&mut *conn).await?;
        if back {
            sqlx::query(AssertSqlSafe(close)).bind(received).bind(host_id)
                .execute(&mut *conn).await?;
        }
        for chunk in statement_chunks(series.len(), 500) {
            let rows = &series[chunk];
            let sql = format!(
                "INSERT INTO host_metrics (host_id, metric, at, value) VALUES {}",
                Marks::new(backend).rows(rows.len(), 4)
            );
            let mut q = sqlx::query(AssertSqlSafe(sql));
            for (metric, value) in rows {
                q = q.bind(host_id).bind(metric).bind(collected).bind(*value);
            }
            q.execute(&mut *conn).await?;
        }
    });
    let mut alerts: Vec<HostAlert> = transitions
        .iter()
        .cloned()
        .map(HostAlert::Threshold)
        .collect();
    if back {
        alerts.push(HostAlert::Back(received));
    }
    outbox::queue(&mut tx, &host.name, report.collected_at, &alerts).await?;
    tx.commit().await?;
    Ok(Stored {
        replay: false,
        fast: thresholds::any_crossed(&states),
        transitions,
        back,
    })
}

/// Inserts or refreshes a host's equipment line: binds source_ref, name, status, attributes,
/// first_seen, updated_at.
fn equipment_sql(backend: Backend) -> String {
    let mut m = Marks::new(backend);
    format!(
        "INSERT INTO equipment (source, source_ref, name, kind, domain, status, attributes, \
         first_seen, updated_at) VALUES ('{}', {}, {}, 'host', '{}', {}, {}, {}, {}) \
         ON CONFLICT (source, source_ref) DO UPDATE SET status = excluded.status, \
         attributes = excluded.attributes, updated_at = excluded.updated_at, removed = FALSE",
        crate::SOURCE,
        m.mark(),
        m.mark(),
        crate::DOMAIN,
        m.mark(),
        m.mark(),
        m.mark(),
        m.mark()
    )
}

fn json_error(e: serde_json::Error) -> StoreError {
    StoreError::Query(sqlx::Error::Protocol(format!("cannot encode JSON: {e}")))
}

/// The metric rows of a report: `cpu`, `memory`, `swap` (used %), `load1/5/15`, `fs:MOUNT`
/// (used %), `net:IF:rx` and `net:IF:tx` (bytes/s), `temperature` (hottest sensor, °C),
/// `processes`.
pub fn metric_rows(report: &Report) -> Vec<(String, f64)> {
    let mut out = vec![("cpu".to_owned(), report.cpu.total_percent)];
    if let Some(p) = thresholds::percent(report.memory.used_bytes, report.memory.total_bytes) {
        out.push(("memory".into(), p));
    }
    if let Some(p) = thresholds::percent(report.swap.used_bytes, report.swap.total_bytes) {
        out.push(("swap".into(), p));
    }
    out.push(("load1".into(), report.load.one));
    out.push(("load5".into(), report.load.five));
    out.push(("load15".into(), report.load.fifteen));
    for fs in &report.filesystems {
        out.push((format!("fs:{}", fs.mount), fs.used_percent));
    }
    for n in &report.network {
        out.push((format!("net:{}:rx", n.name), n.rx_bytes_per_sec as f64));
        out.push((format!("net:{}:tx", n.name), n.tx_bytes_per_sec as f64));
    }
    if let Some(t) = thresholds::max_temperature(report) {
        out.push(("temperature".into(), t));
    }
    out.push(("processes".into(), f64::from(report.processes.count)));
    out.retain(|(_, v)| v.is_finite());
    out
}

/// The key figures for the hosts list: CPU, memory, load1, the fullest filesystem.
fn figures(series: &[(String, f64)]) -> Value {
    let mut out = Map::new();
    for (name, value) in series {
        if matches!(name.as_str(), "cpu" | "memory" | "load1" | "temperature") {
            out.insert(name.clone(), json!(value));
        }
    }
    let fullest = series
        .iter()
        .filter(|(n, _)| n.starts_with("fs:"))
        .map(|(_, v)| *v)
        .reduce(f64::max);
    if let Some(v) = fullest {
        out.insert("fs_max".into(), json!(v));
    }
    Value::Object(out)
}

/// A host that stopped reporting.
#[derive(Clone, Debug, PartialEq)]
pub struct Unreachable {
    pub name: String,
    pub since: DateTime<Utc>,
}

/// A host the watcher looks at: id, name, last seen, interval, last report's id.
type WatchRow = (
    i64,
    String,
    Option<DateTime<Utc>>,
    Option<f64>,
    Option<String>,
);

/// Marks unreachable the hosts that missed `misses` intervals (from their last report's
/// `interval_secs`) at `at`, and opens their unavailability periods.
pub async fn mark_unreachable(
    store: &Store,
    at: DateTime<Utc>,
    misses: u32,
) -> Result<Vec<Unreachable>, StoreError> {
    let rows: Vec<WatchRow> = on_pool!(store, pool =>
        sqlx::query_as(
            "SELECT id, name, last_seen, interval_secs, last_report_id FROM hosts WHERE status = 'up'",
        )
        .fetch_all(pool)
        .await?);
    let mut out = Vec::new();
    for (id, name, last_seen, interval, report_id) in rows {
        let (Some(last_seen), Some(interval)) = (last_seen, interval) else {
            continue;
        };
        let interval = Duration::milliseconds((interval.clamp(1.0, 86_400.0) * 1000.0) as i64);
        if at <= last_seen + interval * misses.max(1) as i32 {
            continue;
        }
        let backend = store.backend();
        let mut m = Marks::new(backend);
        // Guarded by the last report's id: a report that arrived meanwhile wins.
        let mark = format!(
            "UPDATE hosts SET status = 'unreachable' WHERE id = {} AND status = 'up' \
             AND last_report_id = {}",
            m.mark(),
            m.mark()
        );
        let mut m = Marks::new(backend);
        let open = format!(
            "INSERT INTO host_downtimes (host_id, started_at) VALUES ({}, {})",
            m.mark(),
            m.mark()
        );
        let mut m = Marks::new(backend);
        let equipment_down = format!(
            "UPDATE equipment SET status = 'unreachable', updated_at = {} \
             WHERE source = '{}' AND source_ref = {}",
            m.mark(),
            crate::SOURCE,
            m.mark()
        );
        let at = to_store_precision(at);
        let since = to_store_precision(last_seen + interval);
        let mut tx = store.begin().await?;
        let changed = on_tx!(&mut tx, conn => {
            let changed = sqlx::query(AssertSqlSafe(mark)).bind(id).bind(report_id)
                .execute(&mut *conn).await?.rows_affected();
            if changed > 0 {
                sqlx::query(AssertSqlSafe(open)).bind(id).bind(since)
                    .execute(&mut *conn).await?;
                sqlx::query(AssertSqlSafe(equipment_down)).bind(at).bind(&name)
                    .execute(&mut *conn).await?;
            }
            changed
        });
        if changed > 0 {
            outbox::queue(&mut tx, &name, at, &[HostAlert::Down(since)]).await?;
        }
        tx.commit().await?;
        if changed > 0 {
            out.push(Unreachable { name, since });
        }
    }
    Ok(out)
}

/// A host as the API lists it.
#[derive(Clone, Debug, Serialize)]
pub struct HostLine {
    pub name: String,
    /// `new` (no report yet), `up` or `unreachable`.
    pub status: String,
    /// 0–100: 100 minus penalties per raised threshold alert; 0 when unreachable.
    pub health: u8,
    pub registered_at: DateTime<Utc>,
    pub last_seen: Option<DateTime<Utc>>,
    pub interval_secs: Option<f64>,
    pub figures: Value,
    pub inventory: Option<Value>,
    /// Keys of the thresholds whose alert is raised.
    pub alerts: Vec<String>,
}

type LineRow = (
    String,
    String,
    DateTime<Utc>,
    Option<DateTime<Utc>>,
    Option<f64>,
    String,
    Option<String>,
    String,
);

/// Every host, by name.
pub async fn list_hosts(store: &Store) -> Result<Vec<HostLine>, StoreError> {
    let rows: Vec<LineRow> = on_pool!(store, pool => sqlx::query_as(
        "SELECT name, status, registered_at, last_seen, interval_secs, figures, inventory, \
         threshold_state FROM hosts ORDER BY name",
    )
    .fetch_all(pool)
    .await?);
    Ok(rows
        .into_iter()
        .map(
            |(name, status, registered_at, last_seen, interval_secs, figures, inventory, state)| {
                let states: States = serde_json::from_str(&state).unwrap_or_default();
                HostLine {
                    health: thresholds::health(&states, status == "unreachable"),
                    alerts: states
                        .iter()
                        .filter(|(_, s)| s.raised)
                        .map(|(k, _)| k.clone())
                        .collect(),
                    name,
                    status,
                    registered_at,
                    last_seen,
                    interval_secs,
                    figures: serde_json::from_str(&figures).unwrap_or(Value::Null),
                    inventory: inventory.and_then(|i| serde_json::from_str(&i).ok()),
                }
            },
        )
        .collect())
}

/// The id of a host by name.
pub async fn host_id(store: &Store, name: &str) -> Result<Option<i64>, StoreError> {
    let sql = format!(
        "SELECT id FROM hosts WHERE name = {}",
        Marks::new(store.backend()).mark()
    );
    let id = on_pool!(store, pool => sqlx::query_scalar(AssertSqlSafe(sql))
        .bind(name).fetch_optional(pool).await?);
    Ok(id)
}

/// One point of a series.
#[derive(Clone, Debug, PartialEq, Serialize, sqlx::FromRow)]
pub struct Point {
    pub at: DateTime<Utc>,
    pub value: f64,
}

/// A metric's points in `[from, to]`, oldest first, at most `limit`.
pub async fn series(
    store: &Store,
    host_id: i64,
    metric: &str,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    limit: i64,
) -> Result<Vec<Point>, StoreError> {
    let mut m = Marks::new(store.backend());
    let sql = format!(
        "SELECT at, value FROM host_metrics WHERE host_id = {} AND metric = {} AND at >= {} \
         AND at <= {} ORDER BY at LIMIT {}",
        m.mark(),
        m.mark(),
        m.mark(),
        m.mark(),
        m.mark()
    );
    let points = on_pool!(store, pool => sqlx::query_as::<_, Point>(AssertSqlSafe(sql))
        .bind(host_id).bind(metric).bind(to_store_precision(from)).bind(to_store_precision(to))
        .bind(limit).fetch_all(pool).await?);
    Ok(points)
}

/// A host's unavailability periods, newest first.
#[derive(Clone, Debug, PartialEq, Serialize, sqlx::FromRow)]
pub struct Downtime {
    pub started_at: DateTime<Utc>,
    pub ended_at: Option<DateTime<Utc>>,
}

pub async fn downtimes(store: &Store, host_id: i64) -> Result<Vec<Downtime>, StoreError> {
    let sql = format!(
        "SELECT started_at, ended_at FROM host_downtimes WHERE host_id = {} \
         ORDER BY started_at DESC",
        Marks::new(store.backend()).mark()
    );
    let rows = on_pool!(store, pool => sqlx::query_as::<_, Downtime>(AssertSqlSafe(sql))
        .bind(host_id).fetch_all(pool).await?);
    Ok(rows)
}

/// The metrics a host reported since `from`, by name.
pub async fn metric_names(
    store: &Store,
    host_id: i64,
    from: DateTime<Utc>,
) -> Result<Vec<String>, StoreError> {
    let mut m = Marks::new(store.backend());
    let sql = format!(
        "SELECT DISTINCT metric FROM host_metrics WHERE host_id = {} AND at >= {} ORDER BY metric",
        m.mark(),
        m.mark()
    );
    let names = on_pool!(store, pool => sqlx::query_scalar(AssertSqlSafe(sql))
        .bind(host_id).bind(to_store_precision(from)).fetch_all(pool).await?);
    Ok(names)
}
