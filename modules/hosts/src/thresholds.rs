//! Thresholds on a host's figures: each with a duration (crossed for at least N consecutive
//! reports before its alert is raised) and a hysteresis (the alert clears only once the value is
//! back at or below `limit - margin`).
//!
//! The state of each threshold (consecutive reports over it, alert raised or not) is kept per
//! host in the store (`hosts.threshold_state`), read and rewritten in the report's transaction.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use vigie_agent::report::Report;
use vigie_source::Level;

/// One threshold's settings.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Limit {
    /// Crossed when the value is strictly above it.
    pub above: f64,
    /// Back to normal at or below `above - margin`.
    pub margin: f64,
    /// Consecutive reports over the limit before the alert is raised.
    pub reports: u32,
    pub level: Level,
}

/// A full set of limits: the defaults, a group's or a host's (see [`ThresholdPolicy`]).
#[derive(Clone, Debug, PartialEq)]
pub struct Thresholds {
    /// Total CPU busy, percent.
    pub cpu: Limit,
    /// Memory used, percent.
    pub memory: Limit,
    /// Each filesystem's used share, percent.
    pub filesystem: Limit,
    /// Load over one minute, per core (`above` 2.0 means 2 × the core count).
    pub load_per_core: Limit,
    /// Hottest sensor, °C.
    pub temperature: Limit,
    /// Devices whose SMART health check failed.
    pub smart_failed: Limit,
    /// Failed systemd units.
    pub failed_units: Limit,
}

impl Default for Thresholds {
    fn default() -> Thresholds {
        let warning = |above, margin, reports| Limit {
            above,
            margin,
            reports,
            level: Level::Warning,
        };
        Thresholds {
            cpu: warning(90.0, 5.0, 3),
            memory: warning(90.0, 5.0, 3),
            filesystem: warning(90.0, 2.0, 2),
            load_per_core: warning(2.0, 0.5, 3),
            temperature: warning(85.0, 5.0, 2),
            smart_failed: Limit {
                above: 0.0,
                margin: 0.0,
                reports: 1,
                level: Level::Critical,
            },
            failed_units: warning(0.0, 0.0, 1),
        }
    }
}

/// Which limits apply to which host: a host's own set, else the first group whose patterns
/// match its name, else the defaults. Each set is complete: the configuration layers a group's
/// values over the defaults and a host's over its group's when it is read.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ThresholdPolicy {
    pub default: Thresholds,
    /// In the order of the configuration: the first match wins.
    pub groups: Vec<HostGroup>,
    /// Hosts with limits of their own, by exact name.
    pub hosts: Vec<HostLimits>,
}

/// A named set of hosts sharing limits.
#[derive(Clone, Debug, PartialEq)]
pub struct HostGroup {
    pub name: String,
    /// Host name patterns: `*` any run of characters, `?` one character; case-insensitive.
    pub patterns: Vec<String>,
    pub thresholds: Thresholds,
}

/// One host's own limits.
#[derive(Clone, Debug, PartialEq)]
pub struct HostLimits {
    pub host: String,
    /// The group whose limits it was layered over, if any.
    pub group: Option<String>,
    pub thresholds: Thresholds,
}

/// Where a host's limits come from, for the console.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", content = "name", rename_all = "snake_case")]
pub enum Origin {
    Default,
    Group(String),
    Host(String),
}

impl ThresholdPolicy {
    /// The limits for `host` and where they come from.
    pub fn for_host(&self, host: &str) -> (&Thresholds, Origin) {
        if let Some(h) = self
            .hosts
            .iter()
            .find(|h| h.host.eq_ignore_ascii_case(host))
        {
            return (&h.thresholds, Origin::Host(h.host.clone()));
        }
        match self.group_of(host) {
            Some(g) => (&g.thresholds, Origin::Group(g.name.clone())),
            None => (&self.default, Origin::Default),
        }
    }

    /// The first group whose patterns match `host`.
    pub fn group_of(&self, host: &str) -> Option<&HostGroup> {
        self.groups
            .iter()
            .find(|g| g.patterns.iter().any(|p| glob_match(p, host)))
    }
}

/// `*` matches any run of characters (none included), `?` exactly one; ASCII case-insensitive.
pub fn glob_match(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = pattern.chars().map(|c| c.to_ascii_lowercase()).collect();
    let n: Vec<char> = name.chars().map(|c| c.to_ascii_lowercase()).collect();
    // Iterative matcher with one backtrack point (the last `*`): linear in practice.
    let (mut pi, mut ni) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ni < n.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == n[ni]) {
            pi += 1;
            ni += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ni));
            pi += 1;
        } else if let Some((sp, sn)) = star {
            pi = sp + 1;
            ni = sn + 1;
            star = Some((sp, sn + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

/// One figure of a report checked against its limit.
#[derive(Clone, Debug, PartialEq)]
pub struct Check {
    /// Stable key of the threshold in the host's state: `cpu`, `memory`, `fs:/var`, `load1`,
    /// `temperature`, `smart`, `units`.
    pub key: String,
    /// The alert's resource: the host, or `host:/mount` for a filesystem.
    pub resource: String,
    /// What the alert is about, for its message.
    pub what: String,
    pub value: f64,
    pub limit: Limit,
}

/// The checks a report gives. `cores` comes from the inventory (or the per-core figures).
pub fn checks(report: &Report, cores: u32, t: &Thresholds) -> Vec<Check> {
    let host = &report.host;
    let check = |key: &str, what: &str, value: f64, limit: Limit| Check {
        key: key.to_owned(),
        resource: host.clone(),
        what: what.to_owned(),
        value,
        limit,
    };
    let mut out = vec![check("cpu", "CPU usage", report.cpu.total_percent, t.cpu)];
    if let Some(p) = percent(report.memory.used_bytes, report.memory.total_bytes) {
        out.push(check("memory", "memory usage", p, t.memory));
    }
    for fs in &report.filesystems {
        out.push(Check {
            key: format!("fs:{}", fs.mount),
            resource: format!("{host}:{}", fs.mount),
            what: format!("filesystem {} usage", fs.mount),
            value: fs.used_percent,
            limit: t.filesystem,
        });
    }
    if cores > 0 {
        let per_core = t.load_per_core;
        let cores = f64::from(cores);
        out.push(check(
            "load1",
            "load",
            report.load.one,
            Limit {
                above: per_core.above * cores,
                margin: per_core.margin * cores,
                ..per_core
            },
        ));
    }
    if let Some(max) = max_temperature(report) {
        out.push(check("temperature", "temperature", max, t.temperature));
    }
    if let Some(devices) = &report.smart {
        let failed = devices.iter().filter(|d| !d.passed).count() as f64;
        out.push(check(
            "smart",
            "disks failing their SMART check",
            failed,
            t.smart_failed,
        ));
    }
    if let Some(units) = &report.systemd_failed_units {
        out.push(check(
            "units",
            "failed systemd units",
            units.len() as f64,
            t.failed_units,
        ));
    }
    out
}

pub fn percent(used: u64, total: u64) -> Option<f64> {
    (total > 0).then(|| used as f64 * 100.0 / total as f64)
}

pub fn max_temperature(report: &Report) -> Option<f64> {
    report
        .temperatures
        .iter()
        .map(|t| t.celsius)
        .filter(|c| c.is_finite())
        .reduce(f64::max)
}

/// One threshold's state in the store.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    /// Consecutive reports over the limit.
    #[serde(default)]
    pub over: u32,
    /// Its alert is raised.
    #[serde(default)]
    pub raised: bool,
    /// The level of the raised alert: 1 warning, 2 critical (for the health score).
    #[serde(default)]
    pub level: u8,
}

/// A host's thresholds' states, by key.
pub type States = BTreeMap<String, State>;

/// A change to tell the pipeline about.
#[derive(Clone, Debug, PartialEq)]
pub enum Transition {
    Raise(Check),
    Clear(Check),
}

/// Applies a report's checks to the states; returns the alerts to raise or clear.
pub fn apply(states: &mut States, checks: Vec<Check>) -> Vec<Transition> {
    let mut out = Vec::new();
    for check in checks {
        let state = states.entry(check.key.clone()).or_default();
        let limit = check.limit;
        if check.value > limit.above {
            state.over = state.over.saturating_add(1);
            if !state.raised && state.over >= limit.reports.max(1) {
                state.raised = true;
                state.level = limit.level as u8;
                out.push(Transition::Raise(check));
            }
        } else {
            state.over = 0;
            if state.raised && check.value <= limit.above - limit.margin {
                state.raised = false;
                state.level = 0;
                out.push(Transition::Clear(check));
            }
        }
    }
    out
}

/// True while one of the thresholds is crossed (the agent then reports at its fast interval).
pub fn any_crossed(states: &States) -> bool {
    states.values().any(|s| s.over > 0 || s.raised)
}

/// 100 minus penalties per raised threshold alert (warning 15, critical 30) and per threshold
/// crossed but not yet long enough (5); 0 when the host is unreachable.
pub fn health(states: &States, unreachable: bool) -> u8 {
    if unreachable {
        return 0;
    }
    let penalty: u32 = states
        .values()
        .map(|s| match (s.raised, s.level) {
            (true, 2) => 30,
            (true, _) => 15,
            (false, _) if s.over > 0 => 5,
            _ => 0,
        })
        .sum();
    100u32.saturating_sub(penalty) as u8
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn globs_match_whole_names_case_insensitively() {
        assert!(glob_match("db-*", "DB-1"));
        assert!(glob_match("db-*", "db-"));
        assert!(!glob_match("db-*", "web-db-1"));
        assert!(glob_match("*-prod", "pay-prod"));
        assert!(glob_match("pg?", "pg1"));
        assert!(!glob_match("pg?", "pg12"));
        assert!(glob_match("a*b*c", "axxbyyc"));
        assert!(!glob_match("a*b*c", "axxbyy"));
        assert!(glob_match("*", ""));
    }

    #[test]
    fn a_host_uses_its_own_limits_else_its_first_group_else_the_defaults() {
        let mut db = Thresholds::default();
        db.filesystem.above = 80.0;
        let mut own = db.clone();
        own.filesystem.above = 97.0;
        let policy = ThresholdPolicy {
            default: Thresholds::default(),
            groups: vec![
                HostGroup {
                    name: "databases".into(),
                    patterns: vec!["db-*".into(), "pg?".into()],
                    thresholds: db.clone(),
                },
                HostGroup {
                    name: "all-db".into(),
                    patterns: vec!["*db*".into()],
                    thresholds: Thresholds::default(),
                },
            ],
            hosts: vec![HostLimits {
                host: "db-archive".into(),
                group: Some("databases".into()),
                thresholds: own.clone(),
            }],
        };
        assert_eq!(
            policy.for_host("db-archive"),
            (&own, Origin::Host("db-archive".into()))
        );
        assert_eq!(
            policy.for_host("db-1"),
            (&db, Origin::Group("databases".into()))
        );
        assert_eq!(policy.for_host("pg2").1, Origin::Group("databases".into()));
        assert_eq!(policy.for_host("web").1, Origin::Default);
        assert_eq!(policy.for_host("olddb").1, Origin::Group("all-db".into()));
    }

    fn check(value: f64) -> Check {
        Check {
            key: "fs:/".into(),
            resource: "h:/".into(),
            what: "fs".into(),
            value,
            limit: Thresholds::default().filesystem,
        }
    }

    #[test]
    fn duration_then_hysteresis() {
        let mut s = States::new();
        assert!(apply(&mut s, vec![check(95.0)]).is_empty());
        assert!(any_crossed(&s));
        assert!(matches!(
            apply(&mut s, vec![check(95.0)])[..],
            [Transition::Raise(_)]
        ));
        assert!(apply(&mut s, vec![check(96.0)]).is_empty());
        // Under the limit but within the margin: stays raised.
        assert!(apply(&mut s, vec![check(89.0)]).is_empty());
        assert!(s["fs:/"].raised);
        assert!(matches!(
            apply(&mut s, vec![check(50.0)])[..],
            [Transition::Clear(_)]
        ));
        assert!(!any_crossed(&s));
        assert_eq!(health(&s, false), 100);
    }

    #[test]
    fn health_counts_raised_alerts() {
        let mut s = States::new();
        s.insert(
            "a".into(),
            State {
                over: 3,
                raised: true,
                level: 1,
            },
        );
        s.insert(
            "b".into(),
            State {
                over: 1,
                raised: true,
                level: 2,
            },
        );
        assert_eq!(health(&s, false), 55);
        assert_eq!(health(&s, true), 0);
    }
}
