//! Automatic routing of alerts to the people on duty: which alerts go (the routing rules of
//! their domain), and after how long nobody acknowledging tells the next index.
//!
//! A domain without any rule gets the configured default: alerts at or above
//! `[oncall] default_level` (critical), escalated after `[oncall] escalation_delay`. Once a
//! domain has rules, only its enabled rules route (a domain whose rules are all disabled routes
//! nothing); a rule narrows by source, resource pattern (`*` any text, case-insensitive),
//! critical zone and time-of-day window (in the hub's time zone). The first matching rule (by
//! id) gives the escalation delay.

use chrono::{DateTime, Timelike, Utc};
use serde::Serialize;
use vigie_alerts::model::Alert;
use vigie_core::audit::{Actor, Entry};
use vigie_core::store::{Store, StoreError};
use vigie_core::{on_pool, on_tx};

use crate::OncallError;
use crate::escalation::OncallSettings;

/// The routes of routing and escalation: the administrator's rules page, the acknowledgement
/// links and each user's notification preferences.
pub fn configure(cfg: &mut actix_web::web::ServiceConfig) {
    crate::routing_pages::configure(cfg);
    crate::ack::configure(cfg);
    crate::prefs::configure(cfg);
}

/// One routing rule as stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct Rule {
    pub id: i64,
    pub domain: String,
    /// 0 low, 1 warning, 2 critical: alerts at or above it are routed.
    pub min_severity: i32,
    pub source: Option<String>,
    pub resource_pattern: Option<String>,
    pub critical_zone_only: bool,
    /// Minutes after midnight, hub's time zone; start > end wraps over midnight.
    pub window_start: Option<i32>,
    pub window_end: Option<i32>,
    pub escalation_minutes: i32,
    pub enabled: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

const RULE_COLUMNS: &str = "id, domain, min_severity, source, resource_pattern, \
    critical_zone_only, window_start, window_end, escalation_minutes, enabled, created_at, updated_at";

/// The rule an alert is routed by: a stored one, or the default (`id` = `None`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Applied {
    pub id: Option<i64>,
    pub escalation_minutes: i32,
}

/// A rule's fields, checked.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct RuleInput {
    pub domain: String,
    pub min_severity: i32,
    pub source: Option<String>,
    pub resource_pattern: Option<String>,
    pub critical_zone_only: bool,
    pub window_start: Option<i32>,
    pub window_end: Option<i32>,
    pub escalation_minutes: i32,
    pub enabled: bool,
}

/// A rule as typed in the form.
#[derive(Clone, Debug, Default, Serialize)]
pub struct RuleForm {
    pub domain: String,
    pub min_severity: String,
    pub source: String,
    pub resource_pattern: String,
    pub critical_zone_only: bool,
    pub window_start: String,
    pub window_end: String,
    pub escalation_minutes: String,
    pub enabled: bool,
}

impl RuleForm {
    /// The form showing a stored rule.
    pub fn of(rule: &Rule) -> RuleForm {
        RuleForm {
            domain: rule.domain.clone(),
            min_severity: rule.min_severity.to_string(),
            source: rule.source.clone().unwrap_or_default(),
            resource_pattern: rule.resource_pattern.clone().unwrap_or_default(),
            critical_zone_only: rule.critical_zone_only,
            window_start: rule.window_start.map(hhmm).unwrap_or_default(),
            window_end: rule.window_end.map(hhmm).unwrap_or_default(),
            escalation_minutes: rule.escalation_minutes.to_string(),
            enabled: rule.enabled,
        }
    }
}

/// `HH:MM` → minutes after midnight.
pub fn parse_hhmm(text: &str) -> Option<i32> {
    let (h, m) = text.trim().split_once(':')?;
    if h.is_empty() || h.len() > 2 || m.len() != 2 {
        return None;
    }
    let h: i32 = h.parse().ok()?;
    let m: i32 = m.parse().ok()?;
    ((0..24).contains(&h) && (0..60).contains(&m)).then_some(h * 60 + m)
}

/// Minutes after midnight → `HH:MM`.
pub fn hhmm(minutes: i32) -> String {
    format!("{:02}:{:02}", minutes / 60, minutes % 60)
}

/// Whether `minute` (after midnight) falls in `[start, end)`; start > end wraps over midnight,
/// start = end is the whole day.
pub fn in_window(start: i32, end: i32, minute: i32) -> bool {
    match start.cmp(&end) {
        std::cmp::Ordering::Less => minute >= start && minute < end,
        std::cmp::Ordering::Greater => minute >= start || minute < end,
        std::cmp::Ordering::Equal => true,
    }
}

/// A field's problem: the field and the locale key of the explanation.
pub type Problem = (&'static str, &'static str);

/// Checks a rule's form against the configured domains.
pub fn check(form: &RuleForm, domains: &[String]) -> Result<RuleInput, Vec<Problem>> {
    let mut problems = Vec::new();
    let domain = form.domain.trim().to_owned();
    if !domains.contains(&domain) {
        problems.push(("domain", "oncall_routing.problems.domain"));
    }
    let min_severity = match form.min_severity.trim().parse::<i32>() {
        Ok(s) if (0..=2).contains(&s) => s,
        _ => {
            problems.push(("min_severity", "oncall_routing.problems.level"));
            2
        }
    };
    let optional = |text: &str| Some(text.trim().to_owned()).filter(|t| !t.is_empty());
    let source = optional(&form.source);
    let resource_pattern = optional(&form.resource_pattern);
    if source.as_ref().is_some_and(|s| s.chars().count() > 200) {
        problems.push(("source", "oncall_routing.problems.too_long"));
    }
    if resource_pattern
        .as_ref()
        .is_some_and(|s| s.chars().count() > 200)
    {
        problems.push(("resource_pattern", "oncall_routing.problems.too_long"));
    }
    let start = optional(&form.window_start);
    let end = optional(&form.window_end);
    let (window_start, window_end) = match (&start, &end) {
        (None, None) => (None, None),
        (Some(s), Some(e)) => {
            let (s, e) = (parse_hhmm(s), parse_hhmm(e));
            if s.is_none() {
                problems.push(("window_start", "oncall_routing.problems.time"));
            }
            if e.is_none() {
                problems.push(("window_end", "oncall_routing.problems.time"));
            }
            (s, e)
        }
        (None, Some(_)) => {
            problems.push(("window_start", "oncall_routing.problems.window_both"));
            (None, None)
        }
        (Some(_), None) => {
            problems.push(("window_end", "oncall_routing.problems.window_both"));
            (None, None)
        }
    };
    let escalation_minutes = match form.escalation_minutes.trim().parse::<i32>() {
        Ok(m) if (1..=1440).contains(&m) => m,
        _ => {
            problems.push(("escalation_minutes", "oncall_routing.problems.minutes"));
            15
        }
    };
    if !problems.is_empty() {
        return Err(problems);
    }
    Ok(RuleInput {
        domain,
        min_severity,
        source,
        resource_pattern,
        critical_zone_only: form.critical_zone_only,
        window_start,
        window_end,
        escalation_minutes,
        enabled: form.enabled,
    })
}

/// Whether a rule routes an alert at local minute `minute` (hub's time zone).
pub fn matches(rule: &Rule, alert: &Alert, minute: i32) -> bool {
    rule.enabled
        && rule.domain == alert.domain
        && alert.severity >= rule.min_severity
        && rule
            .source
            .as_deref()
            .is_none_or(|s| s.eq_ignore_ascii_case(&alert.source))
        && rule.resource_pattern.as_deref().is_none_or(|p| {
            vigie_alerts::maintenance::glob(&p.to_lowercase(), &alert.resource.to_lowercase())
        })
        && (!rule.critical_zone_only || alert.critical_zone)
        && match (rule.window_start, rule.window_end) {
            (Some(s), Some(e)) => in_window(s, e, minute),
            _ => true,
        }
}

/// The rule an alert is routed by at `now`, if any.
pub async fn rule_for(
    store: &Store,
    settings: &OncallSettings,
    alert: &Alert,
    now: DateTime<Utc>,
) -> Result<Option<Applied>, OncallError> {
    let rules = for_domain(store, &alert.domain).await?;
    Ok(rule_among(&rules, settings, alert, now))
}

/// The rule an alert is routed by at `now`, among its domain's rules (all of them, enabled or
/// not): the default when the domain has none.
pub fn rule_among(
    rules: &[Rule],
    settings: &OncallSettings,
    alert: &Alert,
    now: DateTime<Utc>,
) -> Option<Applied> {
    if rules.is_empty() {
        let minutes = i32::try_from(settings.escalation_delay.as_secs().div_ceil(60))
            .unwrap_or(15)
            .clamp(1, 1440);
        return (alert.severity >= settings.default_level).then_some(Applied {
            id: None,
            escalation_minutes: minutes,
        });
    }
    let local = now.with_timezone(&settings.timezone);
    let minute = i32::try_from(local.hour() * 60 + local.minute()).unwrap_or(0);
    rules
        .iter()
        .find(|r| matches(r, alert, minute))
        .map(|r| Applied {
            id: Some(r.id),
            escalation_minutes: r.escalation_minutes,
        })
}

/// The lowest level any domain routes: the default level, or an enabled rule's.
pub async fn lowest_level(store: &Store, settings: &OncallSettings) -> Result<i32, OncallError> {
    let lowest: Option<i32> = on_pool!(store, pool => sqlx::query_scalar(
        "SELECT MIN(min_severity) FROM oncall_routing_rules WHERE enabled",
    )
    .fetch_one(pool)
    .await)
    .map_err(StoreError::from)?;
    Ok(lowest.map_or(settings.default_level, |l| l.min(settings.default_level)))
}

/// Every rule, by domain then id.
pub async fn list(store: &Store) -> Result<Vec<Rule>, OncallError> {
    let sql = format!("SELECT {RULE_COLUMNS} FROM oncall_routing_rules ORDER BY domain, id");
    Ok(
        on_pool!(store, pool => sqlx::query_as::<_, Rule>(sqlx::AssertSqlSafe(sql))
        .fetch_all(pool)
        .await)
        .map_err(StoreError::from)?,
    )
}

/// The rules of a domain (enabled or not), by id.
pub async fn for_domain(store: &Store, domain: &str) -> Result<Vec<Rule>, OncallError> {
    let sql =
        format!("SELECT {RULE_COLUMNS} FROM oncall_routing_rules WHERE domain = $1 ORDER BY id");
    Ok(
        on_pool!(store, pool => sqlx::query_as::<_, Rule>(sqlx::AssertSqlSafe(sql))
        .bind(domain)
        .fetch_all(pool)
        .await)
        .map_err(StoreError::from)?,
    )
}

pub async fn get(store: &Store, id: i64) -> Result<Option<Rule>, OncallError> {
    let sql = format!("SELECT {RULE_COLUMNS} FROM oncall_routing_rules WHERE id = $1");
    Ok(
        on_pool!(store, pool => sqlx::query_as::<_, Rule>(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .fetch_optional(pool)
        .await)
        .map_err(StoreError::from)?,
    )
}

fn label(input: &RuleInput) -> String {
    format!(
        "{} ≥ {}{}",
        input.domain,
        input.min_severity,
        input
            .source
            .as_deref()
            .map(|s| format!(" {s}"))
            .unwrap_or_default()
    )
}

/// Adds a rule; audited.
pub async fn create(
    store: &Store,
    actor: &Actor,
    ip: Option<&str>,
    input: &RuleInput,
) -> Result<i64, OncallError> {
    let at = vigie_core::time::now();
    let mut tx = store.begin().await?;
    let id = on_tx!(&mut tx, conn => sqlx::query_scalar::<_, i64>(
        "INSERT INTO oncall_routing_rules (domain, min_severity, source, resource_pattern,
                critical_zone_only, window_start, window_end, escalation_minutes, enabled,
                created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10) RETURNING id",
    )
    .bind(&input.domain)
    .bind(input.min_severity)
    .bind(&input.source)
    .bind(&input.resource_pattern)
    .bind(input.critical_zone_only)
    .bind(input.window_start)
    .bind(input.window_end)
    .bind(input.escalation_minutes)
    .bind(input.enabled)
    .bind(at)
    .fetch_one(conn)
    .await)
    .map_err(StoreError::from)?;
    vigie_core::audit::record(
        &mut tx,
        Entry::new(Some(actor), ip, "oncall.rule_create")
            .target("oncall_rule", id, label(input))
            .change(None, serde_json::to_value(input).ok()),
    )
    .await?;
    tx.commit().await?;
    Ok(id)
}

/// Changes a rule; audited with its state before and after. `NotFound` when it does not exist.
pub async fn update(
    store: &Store,
    actor: &Actor,
    ip: Option<&str>,
    id: i64,
    input: &RuleInput,
) -> Result<(), OncallError> {
    let before = get(store, id).await?.ok_or(OncallError::NotFound)?;
    let at = vigie_core::time::now();
    let mut tx = store.begin().await?;
    let n = on_tx!(&mut tx, conn => sqlx::query(
        "UPDATE oncall_routing_rules SET domain = $1, min_severity = $2, source = $3,
                resource_pattern = $4, critical_zone_only = $5, window_start = $6, window_end = $7,
                escalation_minutes = $8, enabled = $9, updated_at = $10
         WHERE id = $11",
    )
    .bind(&input.domain)
    .bind(input.min_severity)
    .bind(&input.source)
    .bind(&input.resource_pattern)
    .bind(input.critical_zone_only)
    .bind(input.window_start)
    .bind(input.window_end)
    .bind(input.escalation_minutes)
    .bind(input.enabled)
    .bind(at)
    .bind(id)
    .execute(conn)
    .await
    .map(|r| r.rows_affected()))
    .map_err(StoreError::from)?;
    if n == 0 {
        return Err(OncallError::NotFound);
    }
    vigie_core::audit::record(
        &mut tx,
        Entry::new(Some(actor), ip, "oncall.rule_update")
            .target("oncall_rule", id, label(input))
            .change(
                serde_json::to_value(&before).ok(),
                serde_json::to_value(input).ok(),
            ),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Enables or disables a rule; audited. `NotFound` when it does not exist.
pub async fn set_enabled(
    store: &Store,
    actor: &Actor,
    ip: Option<&str>,
    id: i64,
    enabled: bool,
) -> Result<(), OncallError> {
    let at = vigie_core::time::now();
    let mut tx = store.begin().await?;
    let domain: Option<String> = on_tx!(&mut tx, conn => sqlx::query_scalar(
        "UPDATE oncall_routing_rules SET enabled = $1, updated_at = $2 WHERE id = $3 RETURNING domain",
    )
    .bind(enabled)
    .bind(at)
    .bind(id)
    .fetch_optional(conn)
    .await)
    .map_err(StoreError::from)?;
    let Some(domain) = domain else {
        return Err(OncallError::NotFound);
    };
    vigie_core::audit::record(
        &mut tx,
        Entry::new(
            Some(actor),
            ip,
            if enabled {
                "oncall.rule_enable"
            } else {
                "oncall.rule_disable"
            },
        )
        .target("oncall_rule", id, domain)
        .change(
            Some(serde_json::json!({ "enabled": !enabled })),
            Some(serde_json::json!({ "enabled": enabled })),
        ),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_of_day_parse_and_windows_wrap() {
        assert_eq!(parse_hhmm("08:30"), Some(510));
        assert_eq!(parse_hhmm("8:05"), Some(485));
        assert_eq!(parse_hhmm("24:00"), None);
        assert_eq!(parse_hhmm("12:60"), None);
        assert_eq!(parse_hhmm("noon"), None);
        assert_eq!(hhmm(510), "08:30");
        assert!(in_window(480, 1080, 600));
        assert!(!in_window(480, 1080, 1080));
        assert!(in_window(1320, 420, 1400));
        assert!(in_window(1320, 420, 60));
        assert!(!in_window(1320, 420, 600));
        assert!(in_window(0, 0, 700));
    }

    #[test]
    fn the_form_is_checked_field_by_field() {
        let domains = vec!["network".to_owned()];
        let form = RuleForm {
            domain: "nowhere".into(),
            min_severity: "5".into(),
            window_start: "08:00".into(),
            escalation_minutes: "0".into(),
            ..RuleForm::default()
        };
        let problems = check(&form, &domains).err().unwrap_or_default();
        let fields: Vec<&str> = problems.iter().map(|(f, _)| *f).collect();
        assert_eq!(
            fields,
            ["domain", "min_severity", "window_end", "escalation_minutes"]
        );
        let good = RuleForm {
            domain: "network".into(),
            min_severity: "1".into(),
            source: " zabbix ".into(),
            window_start: "22:00".into(),
            window_end: "06:00".into(),
            escalation_minutes: "10".into(),
            enabled: true,
            ..RuleForm::default()
        };
        let input = check(&good, &domains).ok();
        assert_eq!(
            input.as_ref().map(|i| (i.source.clone(), i.window_start)),
            Some((Some("zabbix".to_owned()), Some(1320)))
        );
    }
}
