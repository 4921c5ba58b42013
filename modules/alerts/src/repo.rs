//! Every statement on the tables this module owns: `alerts`, `alert_refs` and
//! `source_checkpoints`.
//!
//! The write path takes a whole batch (several submissions gathered by the pipeline's writer) and
//! applies it in one transaction with a handful of multi-row statements, whatever the batch size:
//! that is what makes ingestion fast on both backends.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use sqlx::AssertSqlSafe;
use sqlx::types::Json;
use vigie_core::Level;
use vigie_core::store::{Marks, Store, StoreError, StoreTx};
use vigie_core::{on_pool, on_tx};
use vigie_source::{Checkpoint, Effect, Outcome};

use crate::candidate::Candidate;
use crate::model::{ALERT_COLUMNS, Alert, AlertEvent, Change};

/// A record qualified and ready to store.
#[derive(Clone, Debug)]
pub(crate) struct Qualified {
    pub c: Candidate,
    pub domain: String,
    pub level: Level,
    pub fingerprint: String,
    /// Digest of the record's content, for records with a `source_ref` (else empty).
    pub digest: String,
    /// The record names its event: a clear then targets its fingerprint, not its whole resource.
    pub by_event: bool,
    pub occurred_at: DateTime<Utc>,
}

/// States in which an alert is still the target of deduplication and clears.
const LIVE: &str = "state NOT IN ('archived', 'deleted')";

/// Multi-row statements are cut into chunks whose sizes are powers of two, so that the driver's
/// prepared-statement cache sees at most a dozen distinct statements.
const CHUNK_MAX: usize = 1024;

fn chunks(n: usize) -> Vec<std::ops::Range<usize>> {
    vigie_core::store::statement_chunks(n, CHUNK_MAX)
}

/// What one record does to the store once references are resolved.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Op {
    /// Open an alert or add to the live one with this fingerprint.
    Raise,
    /// The record was received before, unchanged: nothing to write.
    Replay(String),
    /// The record was received before and its source changed it since: refresh the live
    /// alert's content, count nothing.
    Refresh(String),
    /// Clear the live alert with this fingerprint; `replay` when the record was received before.
    ClearFingerprint { fingerprint: String, replay: bool },
    /// Clear every live alert of the record's source and resource.
    ClearResource,
}

/// Applies a batch in one transaction and returns the outcome of each item, in order, with the
/// changes to publish once committed.
pub(crate) async fn write_batch(
    store: &Store,
    items: &[&Qualified],
    checkpoints: &[&Checkpoint],
    flapping: crate::pipeline::Flapping,
) -> Result<(Vec<Outcome>, Vec<AlertEvent>), StoreError> {
    if items.is_empty() && checkpoints.is_empty() {
        // Every record was dropped by a rule (a syslog flood of noise): no turn at the write
        // lock for an empty transaction.
        return Ok((Vec::new(), Vec::new()));
    }
    let now = vigie_core::time::now();
    let mut tx = store.begin().await?;
    let ops = resolve_refs(&mut tx, items, now).await?;
    let mut outcomes = vec![
        Outcome {
            alert_id: None,
            effect: Effect::NothingToClear,
        };
        items.len()
    ];
    let mut events = Vec::new();
    for segment in segments(items, &ops) {
        apply_segment(
            &mut tx,
            items,
            &ops,
            &segment,
            now,
            flapping,
            &mut outcomes,
            &mut events,
        )
        .await?;
    }
    for checkpoint in checkpoints {
        save_checkpoint(&mut tx, checkpoint, now).await?;
    }
    tx.commit().await?;
    Ok((outcomes, events))
}

/// Claims every new `(source, source_ref)` of the batch, finds what was received before for the
/// others, and decides each record's operation.
async fn resolve_refs(
    tx: &mut StoreTx,
    items: &[&Qualified],
    now: DateTime<Utc>,
) -> Result<Vec<Op>, StoreError> {
    // The first item of the batch with a given reference speaks for it; later ones replay it.
    let mut first: HashMap<(&str, &str), usize> = HashMap::new();
    for (i, q) in items.iter().enumerate() {
        if let Some(r) = q.c.source_ref.as_deref() {
            first.entry((q.c.source.as_str(), r)).or_insert(i);
        }
    }
    // Claimed in key order, the same in every transaction (no deadlock between writers).
    let mut claimers: Vec<((&str, &str), usize)> = first.iter().map(|(k, i)| (*k, *i)).collect();
    claimers.sort_unstable();
    let claimers: Vec<usize> = claimers.into_iter().map(|(_, i)| i).collect();

    let mut claimed: HashSet<(String, String)> = HashSet::new();
    for range in chunks(claimers.len()) {
        let part = &claimers[range];
        let sql = format!(
            "INSERT INTO alert_refs (source, source_ref, fingerprint, digest, received_at) VALUES {} \
             ON CONFLICT (source, source_ref) DO NOTHING RETURNING source, source_ref",
            Marks::new(tx.backend()).rows(part.len(), 5)
        );
        let rows: Vec<(String, String)> = on_tx!(tx, conn => {
            let mut q = sqlx::query_as(AssertSqlSafe(sql));
            for &i in part {
                let it = items[i];
                q = q
                    .bind(&it.c.source)
                    .bind(&it.c.source_ref)
                    .bind(&it.fingerprint)
                    .bind(&it.digest)
                    .bind(now);
            }
            q.fetch_all(&mut *conn).await
        })?;
        claimed.extend(rows);
    }

    // What references received before this batch were qualified to, and their content digest.
    let mut current: HashMap<(String, String), (String, String)> = HashMap::new();
    let mut seen_before: HashMap<&str, Vec<&str>> = HashMap::new();
    for &(source, r) in first.keys() {
        if !claimed.contains(&(source.to_owned(), r.to_owned())) {
            seen_before.entry(source).or_default().push(r);
        }
    }
    if !seen_before.is_empty() {
        custom_plans(tx).await?;
    }
    for (source, refs) in seen_before {
        for range in chunks(refs.len()) {
            let part = &refs[range];
            let mut marks = Marks::new(tx.backend());
            let sql = format!(
                "SELECT source_ref, fingerprint, digest FROM alert_refs \
                 WHERE source = {} AND source_ref IN ({})",
                marks.mark(),
                marks.list(part.len())
            );
            let rows: Vec<(String, String, String)> = on_tx!(tx, conn => {
                let mut q = sqlx::query_as(AssertSqlSafe(sql)).bind(source);
                for r in part {
                    q = q.bind(*r);
                }
                q.fetch_all(&mut *conn).await
            })?;
            for (r, fingerprint, digest) in rows {
                current.insert((source.to_owned(), r), (fingerprint, digest));
            }
        }
    }

    let mut ops = Vec::with_capacity(items.len());
    let mut changed: HashMap<(String, String), String> = HashMap::new();
    for (i, q) in items.iter().enumerate() {
        let replay_of = match q.c.source_ref.as_deref() {
            Some(r) => {
                let key = (q.c.source.clone(), r.to_owned());
                if first.get(&(q.c.source.as_str(), r)) == Some(&i) && !current.contains_key(&key) {
                    // This item claimed the reference: from now on it is what was received.
                    current.insert(key, (q.fingerprint.clone(), q.digest.clone()));
                    None
                } else {
                    current.get_mut(&key).map(|(fingerprint, digest)| {
                        let same = *digest == q.digest;
                        if !same {
                            digest.clone_from(&q.digest);
                            changed.insert(key.clone(), q.digest.clone());
                        }
                        (fingerprint.clone(), same)
                    })
                }
            }
            None => None,
        };
        ops.push(match (replay_of, q.c.clear) {
            (Some((fingerprint, true)), _) => Op::Replay(fingerprint),
            (Some((fingerprint, false)), false) => Op::Refresh(fingerprint),
            (Some((fingerprint, false)), true) => Op::ClearFingerprint {
                fingerprint,
                replay: true,
            },
            (None, false) => Op::Raise,
            (None, true) if q.by_event => Op::ClearFingerprint {
                fingerprint: q.fingerprint.clone(),
                replay: false,
            },
            (None, true) => Op::ClearResource,
        });
    }

    // References whose source changed them: remember their new content.
    for ((source, r), digest) in changed {
        on_tx!(tx, conn => sqlx::query(
            "UPDATE alert_refs SET digest = $1 WHERE source = $2 AND source_ref = $3",
        )
        .bind(&digest)
        .bind(&source)
        .bind(&r)
        .execute(&mut *conn)
        .await
        .map(drop))?;
    }
    Ok(ops)
}

/// On PostgreSQL, makes the rest of the transaction plan each statement for its own values. The
/// `IN (…)` look-ups of references and fingerprints are the statements a generic plan ruins: one
/// cached while the tables were small scans whole index ranges once they are large. Only the
/// transactions that run them pay for the planning.
async fn custom_plans(tx: &mut StoreTx) -> Result<(), StoreError> {
    if let StoreTx::Postgres(t) = tx {
        sqlx::query("SET LOCAL plan_cache_mode = force_custom_plan")
            .execute(&mut **t)
            .await?;
    }
    Ok(())
}

/// Cuts the batch into runs in which no alert is both raised and cleared (or refreshed), so that
/// each run can be applied with bulk statements and the batch's order is still respected.
fn segments(items: &[&Qualified], ops: &[Op]) -> Vec<Vec<usize>> {
    #[derive(Default)]
    struct Seen<'a> {
        raised: HashSet<&'a str>,
        refreshed: HashSet<&'a str>,
        cleared: HashSet<&'a str>,
        raised_resources: HashSet<(&'a str, &'a str)>,
        cleared_resources: HashSet<(&'a str, &'a str)>,
    }
    let mut out = Vec::new();
    let mut current = Vec::new();
    let mut seen = Seen::default();
    for (i, (q, op)) in items.iter().zip(ops).enumerate() {
        let resource = (q.c.source.as_str(), q.c.resource.as_str());
        let conflict = match op {
            Op::Raise => {
                let fp = q.fingerprint.as_str();
                seen.cleared.contains(fp)
                    || seen.refreshed.contains(fp)
                    || seen.cleared_resources.contains(&resource)
            }
            Op::Replay(fp) | Op::Refresh(fp) => {
                seen.raised.contains(fp.as_str())
                    || seen.refreshed.contains(fp.as_str())
                    || seen.cleared.contains(fp.as_str())
                    || seen.cleared_resources.contains(&resource)
            }
            Op::ClearFingerprint {
                fingerprint: fp, ..
            } => seen.raised.contains(fp.as_str()) || seen.refreshed.contains(fp.as_str()),
            Op::ClearResource => seen.raised_resources.contains(&resource),
        };
        if conflict {
            out.push(std::mem::take(&mut current));
            seen = Seen::default();
        }
        match op {
            Op::Raise => {
                seen.raised.insert(&q.fingerprint);
                seen.raised_resources.insert(resource);
            }
            Op::Replay(fp) | Op::Refresh(fp) => {
                seen.refreshed.insert(fp);
                seen.raised_resources.insert(resource);
            }
            Op::ClearFingerprint {
                fingerprint: fp, ..
            } => {
                seen.cleared.insert(fp);
            }
            Op::ClearResource => {
                seen.cleared_resources.insert(resource);
            }
        }
        current.push(i);
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

#[allow(clippy::too_many_arguments)] // the batch's state, threaded through one segment at a time
async fn apply_segment(
    tx: &mut StoreTx,
    items: &[&Qualified],
    ops: &[Op],
    segment: &[usize],
    now: DateTime<Utc>,
    flapping: crate::pipeline::Flapping,
    outcomes: &mut [Outcome],
    events: &mut Vec<AlertEvent>,
) -> Result<(), StoreError> {
    // Raises, folded by fingerprint: one row per alert, whatever the number of duplicates.
    let mut groups: HashMap<&str, Vec<usize>> = HashMap::new();
    for &i in segment.iter().filter(|&&i| ops[i] == Op::Raise) {
        groups.entry(&items[i].fingerprint).or_default().push(i);
    }
    let mut folded: Vec<(&str, Vec<usize>)> = groups.into_iter().collect();
    // Rows are locked in fingerprint order, the same in every transaction, so that concurrent
    // writers (of one hub or several) updating the same alerts cannot deadlock.
    folded.sort_unstable_by(|a, b| a.0.cmp(b.0));
    for range in chunks(folded.len()) {
        let part = &folded[range];
        let rows = upsert_raises(tx, items, part, now, flapping).await?;
        for (id, fingerprint, count, reopened_at) in rows {
            let Some((_, group)) = part.iter().find(|(fp, _)| *fp == fingerprint) else {
                continue;
            };
            let created = count == group.len() as i64 - 1;
            let reopened = reopened_at == Some(now);
            let first_effect = if created {
                Effect::Created
            } else if reopened {
                Effect::Reopened
            } else {
                Effect::Deduplicated
            };
            for (n, &i) in group.iter().enumerate() {
                outcomes[i] = Outcome {
                    alert_id: Some(id),
                    effect: if n == 0 {
                        first_effect
                    } else {
                        Effect::Deduplicated
                    },
                };
            }
            let severity = group.last().map(|&i| items[i].level.number());
            events.push(AlertEvent {
                alert_id: id,
                severity,
                change: if created {
                    Change::Created
                } else {
                    Change::Updated
                },
            });
        }
    }

    // Replayed records, unchanged: find their alert, write nothing.
    let replays: Vec<(usize, &str)> = segment
        .iter()
        .filter_map(|&i| match &ops[i] {
            Op::Replay(fp) => Some((i, fp.as_str())),
            _ => None,
        })
        .collect();
    if !replays.is_empty() {
        let mut fingerprints: Vec<&str> = replays.iter().map(|(_, fp)| *fp).collect();
        fingerprints.sort_unstable();
        fingerprints.dedup();
        let mut live: HashMap<String, i64> = HashMap::new();
        for range in chunks(fingerprints.len()) {
            let part = &fingerprints[range];
            let sql = format!(
                "SELECT id, fingerprint FROM alerts WHERE {LIVE} AND fingerprint IN ({})",
                Marks::new(tx.backend()).list(part.len())
            );
            let rows: Vec<(i64, String)> = on_tx!(tx, conn => {
                let mut q = sqlx::query_as(AssertSqlSafe(sql));
                for fp in part {
                    q = q.bind(*fp);
                }
                q.fetch_all(&mut *conn).await
            })?;
            live.extend(rows.into_iter().map(|(id, fp)| (fp, id)));
        }
        for (i, fp) in replays {
            outcomes[i] = Outcome {
                alert_id: live.get(fp).copied(),
                effect: Effect::Replayed,
            };
        }
    }

    // Replayed records their source changed: refresh the content, count nothing.
    for &i in segment {
        if let Op::Refresh(fp) = &ops[i] {
            let (id, changed) = refresh(tx, items[i], fp, now).await?;
            outcomes[i] = Outcome {
                alert_id: id,
                effect: Effect::Replayed,
            };
            if let (Some(alert_id), true) = (id, changed) {
                events.push(AlertEvent {
                    alert_id,
                    change: Change::Updated,
                    severity: Some(items[i].level.number()),
                });
            }
        }
    }

    // Clears by fingerprint, in bulk.
    let clears: Vec<(usize, &str, bool)> = segment
        .iter()
        .filter_map(|&i| match &ops[i] {
            Op::ClearFingerprint {
                fingerprint,
                replay,
            } => Some((i, fingerprint.as_str(), *replay)),
            _ => None,
        })
        .collect();
    if !clears.is_empty() {
        let mut fingerprints: Vec<&str> = clears.iter().map(|(_, fp, _)| *fp).collect();
        fingerprints.sort_unstable();
        fingerprints.dedup();
        let mut cleared: HashMap<String, i64> = HashMap::new();
        for range in chunks(fingerprints.len()) {
            let part = &fingerprints[range];
            let mut marks = Marks::new(tx.backend());
            let sql = format!(
                "UPDATE alerts SET state = 'cleared', cleared_at = {}, updated_at = {} \
                 WHERE {LIVE} AND state <> 'cleared' AND fingerprint IN ({}) RETURNING id, fingerprint",
                marks.mark(),
                marks.mark(),
                marks.list(part.len())
            );
            let rows: Vec<(i64, String)> = on_tx!(tx, conn => {
                let mut q = sqlx::query_as(AssertSqlSafe(sql)).bind(now).bind(now);
                for fp in part {
                    q = q.bind(*fp);
                }
                q.fetch_all(&mut *conn).await
            })?;
            for (id, fp) in rows {
                events.push(AlertEvent {
                    alert_id: id,
                    change: Change::Cleared,
                    severity: None,
                });
                cleared.insert(fp, id);
            }
        }
        for (i, fp, replay) in clears {
            outcomes[i] = match cleared.get(fp) {
                Some(&id) => Outcome {
                    alert_id: Some(id),
                    effect: Effect::Cleared,
                },
                None => Outcome {
                    alert_id: None,
                    effect: if replay {
                        Effect::Replayed
                    } else {
                        Effect::NothingToClear
                    },
                },
            };
        }
    }

    // Clears of a whole resource (the record names no event).
    for &i in segment.iter().filter(|&&i| ops[i] == Op::ClearResource) {
        let q = items[i];
        let sql = format!(
            "UPDATE alerts SET state = 'cleared', cleared_at = $1, updated_at = $1 \
             WHERE {LIVE} AND state <> 'cleared' AND source = $2 AND resource = $3 RETURNING id"
        );
        let ids: Vec<i64> = on_tx!(tx, conn => sqlx::query_scalar(AssertSqlSafe(sql))
            .bind(now)
            .bind(&q.c.source)
            .bind(&q.c.resource)
            .fetch_all(&mut *conn)
            .await)?;
        outcomes[i] = Outcome {
            alert_id: ids.first().copied(),
            effect: if ids.is_empty() {
                Effect::NothingToClear
            } else {
                Effect::Cleared
            },
        };
        events.extend(ids.into_iter().map(|alert_id| AlertEvent {
            alert_id,
            change: Change::Cleared,
            severity: None,
        }));
    }
    Ok(())
}

const UPSERT_COLUMNS: usize = 18;

/// One multi-row upsert: new fingerprints open alerts, live ones absorb the duplicates (and are
/// reopened when they had been cleared).
async fn upsert_raises(
    tx: &mut StoreTx,
    items: &[&Qualified],
    groups: &[(&str, Vec<usize>)],
    now: DateTime<Utc>,
    flapping: crate::pipeline::Flapping,
) -> Result<Vec<(i64, String, i64, Option<DateTime<Utc>>)>, StoreError> {
    // Flapping: a reopen within the window of the first one counts; outside it, starts over.
    let cutoff =
        now - chrono::Duration::from_std(flapping.window).unwrap_or(chrono::Duration::hours(1));
    let mut marks = Marks::new(tx.backend());
    let values = marks.rows(groups.len(), UPSERT_COLUMNS);
    let (c1, c2, c3, t) = (marks.mark(), marks.mark(), marks.mark(), marks.mark());
    let sql = format!(
        "INSERT INTO alerts (source, source_ref, fingerprint, resource, domain, severity, \
         source_severity, message, critical_zone, tags, attributes, raw, rules, count, \
         occurred_at, received_at, last_seen, updated_at) VALUES {} \
         ON CONFLICT (fingerprint) WHERE {LIVE} DO UPDATE SET \
         count = alerts.count + excluded.count + 1, \
         last_seen = CASE WHEN excluded.last_seen > alerts.last_seen THEN excluded.last_seen ELSE alerts.last_seen END, \
         severity = excluded.severity, source_severity = excluded.source_severity, \
         message = excluded.message, critical_zone = excluded.critical_zone, tags = excluded.tags, \
         attributes = excluded.attributes, raw = excluded.raw, rules = excluded.rules, \
         updated_at = excluded.updated_at, \
         state = CASE WHEN alerts.state = 'cleared' THEN 'new' ELSE alerts.state END, \
         reopened_at = CASE WHEN alerts.state = 'cleared' THEN excluded.received_at ELSE alerts.reopened_at END, \
         reopen_count = alerts.reopen_count + CASE WHEN alerts.state = 'cleared' THEN 1 ELSE 0 END, \
         flap_since = CASE WHEN alerts.state = 'cleared' AND (alerts.flap_since IS NULL OR alerts.flap_since < {c1}) \
             THEN excluded.received_at ELSE alerts.flap_since END, \
         flap_count = CASE WHEN alerts.state <> 'cleared' THEN alerts.flap_count \
             WHEN alerts.flap_since IS NULL OR alerts.flap_since < {c2} THEN 1 ELSE alerts.flap_count + 1 END, \
         flapping = (CASE WHEN alerts.state <> 'cleared' THEN alerts.flap_count \
             WHEN alerts.flap_since IS NULL OR alerts.flap_since < {c3} THEN 1 ELSE alerts.flap_count + 1 END) >= {t}, \
         cleared_at = NULL \
         RETURNING id, fingerprint, count, reopened_at",
        values
    );
    let rows = on_tx!(tx, conn => {
        let mut q = sqlx::query_as(AssertSqlSafe(sql));
        for (_, group) in groups {
            let (Some(&first), Some(&last)) = (group.first(), group.last()) else {
                continue;
            };
            let (head, tail) = (items[first], items[last]);
            let first_seen = group.iter().map(|&i| items[i].occurred_at).min().unwrap_or(head.occurred_at);
            let last_seen = group.iter().map(|&i| items[i].occurred_at).max().unwrap_or(tail.occurred_at);
            q = q
                .bind(&head.c.source)
                .bind(&head.c.source_ref)
                .bind(&head.fingerprint)
                .bind(&head.c.resource)
                .bind(&head.domain)
                .bind(tail.level.number())
                .bind(tail.c.source_severity)
                .bind(&tail.c.message)
                .bind(tail.c.critical_zone)
                .bind(Json(&tail.c.tags))
                .bind(Json(&tail.c.attributes))
                .bind(tail.c.raw.as_ref().map(Json))
                .bind(Json(&tail.c.rules))
                .bind(group.len() as i64 - 1)
                .bind(first_seen)
                .bind(now)
                .bind(last_seen)
                .bind(now);
        }
        q.bind(cutoff)
            .bind(cutoff)
            .bind(cutoff)
            .bind(i64::from(flapping.threshold))
            .fetch_all(&mut *conn)
            .await
    })?;
    Ok(rows)
}

/// A replayed record: updates the live alert's content when it changed. Returns the alert's id
/// (if there is a live one) and whether anything changed.
async fn refresh(
    tx: &mut StoreTx,
    q: &Qualified,
    fingerprint: &str,
    now: DateTime<Utc>,
) -> Result<(Option<i64>, bool), StoreError> {
    let sql = format!(
        "UPDATE alerts SET message = $1, severity = $2, source_severity = $3, attributes = $4, \
         raw = $5, updated_at = $6 \
         WHERE fingerprint = $7 AND {LIVE} AND (message <> $1 OR severity <> $2 \
         OR source_severity IS DISTINCT FROM $3 OR attributes <> $4 OR raw IS DISTINCT FROM $5) \
         RETURNING id"
    );
    let changed: Option<i64> = on_tx!(tx, conn => sqlx::query_scalar(AssertSqlSafe(sql))
        .bind(&q.c.message)
        .bind(q.level.number())
        .bind(q.c.source_severity)
        .bind(Json(&q.c.attributes))
        .bind(q.c.raw.as_ref().map(Json))
        .bind(now)
        .bind(fingerprint)
        .fetch_optional(&mut *conn)
        .await)?;
    if changed.is_some() {
        return Ok((changed, true));
    }
    let sql = format!("SELECT id FROM alerts WHERE fingerprint = $1 AND {LIVE}");
    let id: Option<i64> = on_tx!(tx, conn => sqlx::query_scalar(AssertSqlSafe(sql))
        .bind(fingerprint)
        .fetch_optional(&mut *conn)
        .await)?;
    Ok((id, false))
}

async fn save_checkpoint(
    tx: &mut StoreTx,
    checkpoint: &Checkpoint,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    on_tx!(tx, conn => sqlx::query(
        "INSERT INTO source_checkpoints (source, position, updated_at) VALUES ($1, $2, $3) \
         ON CONFLICT (source) DO UPDATE SET position = excluded.position, updated_at = excluded.updated_at",
    )
    .bind(&checkpoint.source)
    .bind(&checkpoint.position)
    .bind(now)
    .execute(&mut *conn)
    .await
    .map(drop))?;
    Ok(())
}

/// The position a periodic source last committed.
pub async fn checkpoint(store: &Store, source: &str) -> Result<Option<String>, StoreError> {
    Ok(on_pool!(store, pool => sqlx::query_scalar(
        "SELECT position FROM source_checkpoints WHERE source = $1",
    )
    .bind(source)
    .fetch_optional(pool)
    .await)?)
}

pub async fn get(store: &Store, id: i64) -> Result<Option<Alert>, StoreError> {
    let sql = format!("SELECT {ALERT_COLUMNS} FROM alerts WHERE id = $1");
    Ok(
        on_pool!(store, pool => sqlx::query_as::<_, Alert>(AssertSqlSafe(sql))
        .bind(id)
        .fetch_optional(pool)
        .await)?,
    )
}

/// Filters of the alert list; every one optional.
#[derive(Clone, Debug, Default)]
pub struct AlertFilter {
    pub states: Vec<String>,
    pub severities: Vec<i32>,
    pub domains: Vec<String>,
    pub sources: Vec<String>,
    pub resource: Option<String>,
    /// Text searched in the message and the resource, case-insensitively.
    pub text: Option<String>,
    pub seen_from: Option<DateTime<Utc>>,
    pub seen_to: Option<DateTime<Utc>>,
    /// Keyset pagination: rows that come after this alert in the list's order.
    pub after_id: Option<i64>,
    pub limit: u32,
}

/// Values bound to a dynamically built `WHERE`.
enum Param {
    Text(String),
    Int(i64),
    Time(DateTime<Utc>),
}

/// Alerts matching `filter`, most recently seen first.
pub async fn list(store: &Store, filter: &AlertFilter) -> Result<Vec<Alert>, StoreError> {
    let mut clauses: Vec<String> = Vec::new();
    let mut params: Vec<Param> = Vec::new();
    let next = |params: &mut Vec<Param>, p: Param| {
        params.push(p);
        format!("${}", params.len())
    };
    let mut any_of = |column: &str, values: Vec<Param>, params: &mut Vec<Param>| {
        if values.is_empty() {
            return;
        }
        let marks: Vec<String> = values.into_iter().map(|v| next(params, v)).collect();
        clauses.push(format!("{column} IN ({})", marks.join(", ")));
    };
    any_of(
        "state",
        filter.states.iter().cloned().map(Param::Text).collect(),
        &mut params,
    );
    any_of(
        "severity",
        filter
            .severities
            .iter()
            .map(|s| Param::Int(i64::from(*s)))
            .collect(),
        &mut params,
    );
    any_of(
        "domain",
        filter.domains.iter().cloned().map(Param::Text).collect(),
        &mut params,
    );
    any_of(
        "source",
        filter.sources.iter().cloned().map(Param::Text).collect(),
        &mut params,
    );
    let mut push = |clause: &dyn Fn(&str) -> String, p: Param, params: &mut Vec<Param>| {
        params.push(p);
        clauses.push(clause(&format!("${}", params.len())));
    };
    if let Some(r) = &filter.resource {
        push(
            &|m| format!("resource = {m}"),
            Param::Text(r.clone()),
            &mut params,
        );
    }
    if let Some(text) = &filter.text {
        let pattern = format!("%{}%", vigie_core::store::like_escape(&text.to_lowercase()));
        push(
            &|m| {
                format!(
                    "(LOWER(message) LIKE {m} ESCAPE '\\' OR LOWER(resource) LIKE {m} ESCAPE '\\')"
                )
            },
            Param::Text(pattern),
            &mut params,
        );
    }
    if let Some(t) = filter.seen_from {
        push(
            &|m| format!("last_seen >= {m}"),
            Param::Time(t),
            &mut params,
        );
    }
    if let Some(t) = filter.seen_to {
        push(&|m| format!("last_seen < {m}"), Param::Time(t), &mut params);
    }
    if let Some(id) = filter.after_id {
        push(
            &|m| format!("(last_seen, id) < (SELECT last_seen, id FROM alerts WHERE id = {m})"),
            Param::Int(id),
            &mut params,
        );
    }
    let where_clause = if clauses.is_empty() {
        String::new()
    } else {
        format!("WHERE {}", clauses.join(" AND "))
    };
    let sql = format!(
        "SELECT {ALERT_COLUMNS} FROM alerts {where_clause} ORDER BY last_seen DESC, id DESC LIMIT {}",
        filter.limit
    );
    Ok(on_pool!(store, pool => {
        let mut q = sqlx::query_as::<_, Alert>(AssertSqlSafe(sql));
        for p in params {
            q = match p {
                Param::Text(s) => q.bind(s),
                Param::Int(n) => q.bind(n),
                Param::Time(t) => q.bind(t),
            };
        }
        q.fetch_all(pool).await
    })?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use vigie_source::RawRecord;

    #[test]
    fn chunks_are_powers_of_two() {
        let sizes: Vec<usize> = chunks(700).into_iter().map(|r| r.len()).collect();
        assert_eq!(sizes, [512, 128, 32, 16, 8, 4]);
        assert_eq!(chunks(0).len(), 0);
        assert_eq!(chunks(1).first(), Some(&(0..1)));
    }

    #[test]
    fn like_wildcards_are_escaped() {
        assert_eq!(vigie_core::store::like_escape("50%_a\\b"), "50\\%\\_a\\\\b");
    }

    fn q(resource: &str, fp: &str, clear: bool) -> Qualified {
        let mut c = Candidate::from_raw(RawRecord::new("s", resource, "m"));
        c.clear = clear;
        Qualified {
            c,
            domain: "systems".into(),
            level: Level::Warning,
            fingerprint: fp.into(),
            digest: String::new(),
            by_event: true,
            occurred_at: vigie_core::time::now(),
        }
    }

    #[test]
    fn segments_split_where_order_matters() {
        let items = [
            q("a", "A", false),
            q("a", "A", false),
            q("b", "B", false),
            q("a", "A", true),
            q("a", "A", false),
        ];
        let refs: Vec<&Qualified> = items.iter().collect();
        let ops = vec![
            Op::Raise,
            Op::Raise,
            Op::Raise,
            Op::ClearFingerprint {
                fingerprint: "A".into(),
                replay: false,
            },
            Op::Raise,
        ];
        assert_eq!(segments(&refs, &ops), vec![vec![0, 1, 2], vec![3], vec![4]]);
    }
}
