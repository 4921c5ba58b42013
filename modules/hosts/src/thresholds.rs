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

/// The defaults, used for every host (per-host and per-group settings are not done yet).
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
