//! Maintenance windows: planned work during which the alerts of a domain and/or of resources
//! matching a pattern are stored as usual but kept off the board and out of notifications
//! (`alerts.in_maintenance`). When the window ends, what is still open comes back on the board.
//!
//! The mark is set by [`refresh`]: for the alerts of each commit (the live feed calls it before
//! streaming them, so a covered alert never reaches a board) and every few seconds for all (so
//! windows that open or close take effect).

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;
use sqlx::AssertSqlSafe;
use vigie_core::audit::{Actor, Entry};
use vigie_core::store::{Marks, Store, StoreError};
use vigie_core::time::now;
use vigie_core::{on_pool, on_tx};

#[derive(Clone, Debug, Serialize, sqlx::FromRow, PartialEq, Eq)]
pub struct Window {
    pub id: i64,
    pub name: String,
    pub domain: Option<String>,
    pub resource_pattern: Option<String>,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    /// `none`, `daily` or `weekly`.
    pub recurrence: String,
    pub created_by: Option<String>,
    pub created_at: DateTime<Utc>,
}

impl Window {
    fn period(&self) -> Option<Duration> {
        match self.recurrence.as_str() {
            "daily" => Some(Duration::days(1)),
            "weekly" => Some(Duration::weeks(1)),
            _ => None,
        }
    }

    /// Whether the window covers the instant `t`.
    pub fn active_at(&self, t: DateTime<Utc>) -> bool {
        if t < self.starts_at {
            return false;
        }
        let length = self.ends_at - self.starts_at;
        match self.period() {
            None => t < self.ends_at,
            Some(period) => {
                let since = t - self.starts_at;
                let k = since.num_seconds() / period.num_seconds().max(1);
                let start = self.starts_at + period * (k as i32);
                t >= start && t < start + length
            }
        }
    }

    /// Whether an alert of `domain` about `resource` is covered (the window being active).
    pub fn covers(&self, domain: &str, resource: &str) -> bool {
        self.domain.as_deref().is_none_or(|d| d == domain)
            && self
                .resource_pattern
                .as_deref()
                .is_none_or(|p| glob(&p.to_lowercase(), &resource.to_lowercase()))
    }
}

/// `*` matches any run of characters; everything else matches itself.
pub fn glob(pattern: &str, text: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == text;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !text.starts_with(first)
        || !text[first.len()..].ends_with(last)
        || text.len() < first.len() + last.len()
    {
        return false;
    }
    let mut rest = &text[first.len()..text.len() - last.len()];
    for middle in &parts[1..parts.len() - 1] {
        match rest.find(middle) {
            Some(i) => rest = &rest[i + middle.len()..],
            None => return false,
        }
    }
    true
}

/// The same pattern for SQL `LIKE … ESCAPE '\'`.
fn like(pattern: &str) -> String {
    let mut out = String::new();
    for c in pattern.to_lowercase().chars() {
        match c {
            '%' | '_' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            '*' => out.push('%'),
            _ => out.push(c),
        }
    }
    out
}

pub async fn list(store: &Store) -> Result<Vec<Window>, StoreError> {
    Ok(on_pool!(store, pool => sqlx::query_as::<_, Window>(
        "SELECT id, name, domain, resource_pattern, starts_at, ends_at, recurrence, created_by, created_at
         FROM maintenance_windows ORDER BY starts_at DESC, id DESC",
    )
    .fetch_all(pool)
    .await)?)
}

/// A resource a source says is in maintenance now (see [`sync_source`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SourceMaintenance {
    pub resource: String,
    pub since: DateTime<Utc>,
    /// What is in maintenance (a monitor), for the window's name.
    pub what: String,
}

/// How far ahead a source's open window reaches: renewed at every poll, so the window outlives
/// a source that stops answering by this much, and no more.
const SOURCE_HORIZON: Duration = Duration::hours(1);

/// Keeps the windows of `source` in step with what it says is in maintenance now (a full
/// snapshot): a window per resource (its domain the source's), its end pushed
/// [`SOURCE_HORIZON`] ahead at each call; the windows of resources no longer listed end now.
/// One transaction; windows are owned by `source:NAME` (`created_by`). Returns whether
/// anything changed (the caller then refreshes the alerts' marks).
pub async fn sync_source(
    store: &Store,
    source: &str,
    domain: Option<&str>,
    spans: &[SourceMaintenance],
) -> Result<bool, StoreError> {
    let owner = format!("source:{source}");
    let at = now();
    let until = at + SOURCE_HORIZON;
    let mut tx = store.begin().await?;
    let open: Vec<(i64, Option<String>)> = on_tx!(&mut tx, conn => sqlx::query_as(
        "SELECT id, resource_pattern FROM maintenance_windows WHERE created_by = $1 AND ends_at > $2",
    )
    .bind(&owner)
    .bind(at)
    .fetch_all(conn)
    .await)?;
    let mut changed = false;
    // One window per resource, from its earliest start.
    let mut wanted: Vec<&SourceMaintenance> = Vec::new();
    for span in spans {
        match wanted.iter_mut().find(|w| w.resource == span.resource) {
            Some(w) if span.since < w.since => *w = span,
            Some(_) => {}
            None => wanted.push(span),
        }
    }
    for span in &wanted {
        let pattern = span.resource.replace('*', "");
        match open
            .iter()
            .find(|(_, p)| p.as_deref() == Some(pattern.as_str()))
        {
            Some((id, _)) => {
                on_tx!(&mut tx, conn => sqlx::query(
                    "UPDATE maintenance_windows SET ends_at = $1 WHERE id = $2",
                )
                .bind(until)
                .bind(*id)
                .execute(conn)
                .await
                .map(|r| r.rows_affected()))?;
            }
            None => {
                let name: String = format!("{} {} ({source})", span.resource, span.what)
                    .chars()
                    .take(100)
                    .collect();
                let starts = span.since.min(at);
                on_tx!(&mut tx, conn => sqlx::query(
                    "INSERT INTO maintenance_windows (name, domain, resource_pattern, starts_at, ends_at, recurrence, created_by, created_at)
                     VALUES ($1, $2, $3, $4, $5, 'none', $6, $7)",
                )
                .bind(name.trim())
                .bind(domain)
                .bind(&pattern)
                .bind(starts)
                .bind(until)
                .bind(&owner)
                .bind(at)
                .execute(conn)
                .await
                .map(|r| r.rows_affected()))?;
                changed = true;
            }
        }
    }
    for (id, pattern) in &open {
        let listed = wanted
            .iter()
            .any(|w| Some(w.resource.replace('*', "")) == *pattern);
        if !listed {
            on_tx!(&mut tx, conn => sqlx::query(
                "UPDATE maintenance_windows SET ends_at = $1 WHERE id = $2",
            )
            .bind(at)
            .bind(*id)
            .execute(conn)
            .await
            .map(|r| r.rows_affected()))?;
            changed = true;
        }
    }
    tx.commit().await?;
    Ok(changed)
}

/// A window as typed in the form.
#[derive(Clone, Debug, Default, Serialize)]
pub struct WindowForm {
    pub name: String,
    pub domain: Option<String>,
    pub resource_pattern: Option<String>,
    pub starts_at: Option<DateTime<Utc>>,
    pub ends_at: Option<DateTime<Utc>>,
    pub recurrence: String,
}

/// Every problem of the form: (field, locale key under `problems.` or `alerts.`).
pub fn check(form: &WindowForm, domains: &[String]) -> Vec<(&'static str, &'static str)> {
    let mut p = Vec::new();
    let name = form.name.trim().chars().count();
    if name == 0 || name > 100 || form.name.chars().any(char::is_control) {
        p.push(("name", "problems.label_length"));
    }
    if let Some(d) = &form.domain
        && !domains.contains(d)
    {
        p.push(("domain", "alerts.domain_unknown"));
    }
    if let Some(r) = &form.resource_pattern
        && (r.chars().count() > 255 || r.chars().any(char::is_control))
    {
        p.push(("resource_pattern", "problems.text_too_long"));
    }
    if form.domain.is_none() && form.resource_pattern.is_none() {
        p.push(("resource_pattern", "alerts.maintenance_scope"));
    }
    if !matches!(form.recurrence.as_str(), "none" | "daily" | "weekly") {
        p.push(("recurrence", "alerts.recurrence_unknown"));
    }
    match (form.starts_at, form.ends_at) {
        (Some(s), Some(e)) if e <= s => p.push(("ends_at", "alerts.ends_before_start")),
        (Some(s), Some(e)) => {
            let too_long = match form.recurrence.as_str() {
                "daily" => e - s > Duration::days(1),
                "weekly" => e - s > Duration::weeks(1),
                _ => e - s > Duration::days(366),
            };
            if too_long {
                p.push(("ends_at", "alerts.window_too_long"));
            }
        }
        (s, e) => {
            if s.is_none() {
                p.push(("starts_at", "problems.required"));
            }
            if e.is_none() {
                p.push(("ends_at", "problems.required"));
            }
        }
    }
    p
}

/// Creates a window (checked by the caller); audited.
pub async fn create(
    store: &Store,
    actor: &Actor,
    ip: Option<&str>,
    form: &WindowForm,
) -> Result<i64, StoreError> {
    let mut tx = store.begin().await?;
    let id: i64 = on_tx!(&mut tx, conn => sqlx::query_scalar(
        "INSERT INTO maintenance_windows (name, domain, resource_pattern, starts_at, ends_at, recurrence, created_by, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
    )
    .bind(form.name.trim())
    .bind(&form.domain)
    .bind(&form.resource_pattern)
    .bind(form.starts_at)
    .bind(form.ends_at)
    .bind(&form.recurrence)
    .bind(&actor.login)
    .bind(now())
    .fetch_one(conn)
    .await)?;
    vigie_core::audit::record(
        &mut tx,
        Entry::new(Some(actor), ip, "maintenance.create")
            .target("maintenance", id, form.name.trim())
            .change(None, serde_json::to_value(form).ok()),
    )
    .await?;
    tx.commit().await?;
    Ok(id)
}

/// Deletes a window; returns whether there was one. Audited.
pub async fn delete(
    store: &Store,
    actor: &Actor,
    ip: Option<&str>,
    id: i64,
) -> Result<bool, StoreError> {
    let mut tx = store.begin().await?;
    let name: Option<String> = on_tx!(&mut tx, conn => sqlx::query_scalar(
        "DELETE FROM maintenance_windows WHERE id = $1 RETURNING name",
    )
    .bind(id)
    .fetch_optional(conn)
    .await)?;
    let Some(name) = name else {
        return Ok(false);
    };
    vigie_core::audit::record(
        &mut tx,
        Entry::new(Some(actor), ip, "maintenance.delete").target("maintenance", id, name),
    )
    .await?;
    tx.commit().await?;
    Ok(true)
}

/// Puts covered open alerts in maintenance and brings back those no active window covers any
/// more; `only` limits the first part to some alerts (a commit's). Returns the alerts changed.
pub async fn refresh(store: &Store, only: Option<&[i64]>) -> Result<Vec<i64>, StoreError> {
    let at = now();
    let active: Vec<Window> = list(store)
        .await?
        .into_iter()
        .filter(|w| w.active_at(at))
        .collect();
    let mut changed = Vec::new();
    for w in &active {
        let mut marks = Marks::new(store.backend());
        let mut sql = format!(
            "UPDATE alerts SET in_maintenance = TRUE, updated_at = {} WHERE NOT in_maintenance
             AND state IN ('new', 'transferred', 'acknowledged', 'deferred')",
            marks.mark()
        );
        if w.domain.is_some() {
            sql.push_str(&format!(" AND domain = {}", marks.mark()));
        }
        if w.resource_pattern.is_some() {
            sql.push_str(&format!(
                " AND LOWER(resource) LIKE {} ESCAPE '\\'",
                marks.mark()
            ));
        }
        if let Some(ids) = only {
            if ids.is_empty() {
                continue;
            }
            sql.push_str(&format!(" AND id IN ({})", marks.list(ids.len())));
        }
        sql.push_str(" RETURNING id");
        let ids: Vec<i64> = on_pool!(store, pool => {
            let mut q = sqlx::query_scalar::<_, i64>(AssertSqlSafe(sql)).bind(at);
            if let Some(d) = &w.domain {
                q = q.bind(d);
            }
            if let Some(p) = &w.resource_pattern {
                q = q.bind(like(p));
            }
            for id in only.unwrap_or_default() {
                q = q.bind(id);
            }
            q.fetch_all(pool).await
        })?;
        changed.extend(ids);
    }
    if only.is_none() {
        let covered: Vec<(i64, String, String)> = on_pool!(store, pool => sqlx::query_as(
            "SELECT id, domain, resource FROM alerts WHERE in_maintenance",
        )
        .fetch_all(pool)
        .await)?;
        for (id, domain, resource) in covered {
            if !active.iter().any(|w| w.covers(&domain, &resource)) {
                on_pool!(store, pool => sqlx::query(
                    "UPDATE alerts SET in_maintenance = FALSE, updated_at = $1 WHERE id = $2",
                )
                .bind(at)
                .bind(id)
                .execute(pool)
                .await
                .map(drop))?;
                changed.push(id);
            }
        }
    }
    Ok(changed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn window(start: &str, end: &str, recurrence: &str) -> Window {
        let t = |s: &str| {
            DateTime::parse_from_rfc3339(s)
                .map(|t| t.with_timezone(&Utc))
                .unwrap_or_default()
        };
        Window {
            id: 1,
            name: "w".into(),
            domain: Some("network".into()),
            resource_pattern: Some("rtr-*-paris".into()),
            starts_at: t(start),
            ends_at: t(end),
            recurrence: recurrence.into(),
            created_by: None,
            created_at: t(start),
        }
    }

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_default()
    }

    #[test]
    fn one_off_daily_and_weekly_windows() {
        let once = window("2026-11-21T22:00:00Z", "2026-11-22T02:00:00Z", "none");
        assert!(once.active_at(at("2026-11-21T23:30:00Z")));
        assert!(!once.active_at(at("2026-11-22T02:00:00Z")));
        assert!(!once.active_at(at("2026-11-28T23:00:00Z")));
        let daily = window("2026-11-21T22:00:00Z", "2026-11-22T02:00:00Z", "daily");
        assert!(daily.active_at(at("2026-11-25T01:59:00Z")));
        assert!(!daily.active_at(at("2026-11-25T12:00:00Z")));
        assert!(
            !daily.active_at(at("2026-11-20T23:00:00Z")),
            "not before it starts"
        );
        let weekly = window("2026-11-21T22:00:00Z", "2026-11-22T02:00:00Z", "weekly");
        assert!(weekly.active_at(at("2026-11-28T23:00:00Z")));
        assert!(!weekly.active_at(at("2026-11-27T23:00:00Z")));
    }

    #[test]
    fn patterns_match_like_globs_both_in_rust_and_sql() {
        let w = window("2026-11-21T22:00:00Z", "2026-11-22T02:00:00Z", "none");
        assert!(w.covers("network", "RTR-core-PARIS"));
        assert!(!w.covers("systems", "rtr-core-paris"));
        assert!(!w.covers("network", "rtr-core-lyon"));
        assert!(glob("*", "anything"));
        assert!(glob("a*b*c", "axxbyyc"));
        assert!(!glob("a*b*c", "axxc"));
        assert!(glob("exact", "exact") && !glob("exact", "exactly"));
        assert_eq!(like("rtr_1*%"), "rtr\\_1%\\%");
    }
}
