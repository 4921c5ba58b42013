//! `[hosts]`: the hub's side of the host agents — how many missed intervals make a host
//! unreachable, and the threshold limits by default, per group of hosts and per host.
//!
//! ```toml
//! [hosts]
//! misses = 3
//! [hosts.thresholds]                 # every host
//! filesystem = { above = 90, margin = 2, reports = 2, level = "warning" }
//! [[hosts.groups]]                   # the first group whose pattern matches the host's name
//! name = "databases"
//! hosts = ["db-*", "pg?"]
//! thresholds.filesystem = { above = 80 }
//! [[hosts.host]]                     # one host's own limits, over its group's
//! name = "db-archive"
//! thresholds.filesystem = { above = 97 }
//! ```
//! Each limit may give any of its fields; the others come from the layer below.

use std::collections::HashMap;
use std::time::Duration;

use vigie_core::Level;
use vigie_hosts::HostsSettings;
use vigie_hosts::thresholds::{HostGroup, HostLimits, Limit, ThresholdPolicy, Thresholds};

use super::{Problems, Section, a_type, unique};

/// The limit keys of a thresholds table, and the field each sets.
const LIMITS: [&str; 7] = [
    "cpu",
    "memory",
    "filesystem",
    "load_per_core",
    "temperature",
    "smart_failed",
    "failed_units",
];

fn limit_mut<'t>(t: &'t mut Thresholds, key: &str) -> Option<&'t mut Limit> {
    Some(match key {
        "cpu" => &mut t.cpu,
        "memory" => &mut t.memory,
        "filesystem" => &mut t.filesystem,
        "load_per_core" => &mut t.load_per_core,
        "temperature" => &mut t.temperature,
        "smart_failed" => &mut t.smart_failed,
        "failed_units" => &mut t.failed_units,
        _ => return None,
    })
}

/// Reads `[hosts]` into `settings`.
pub(super) fn read(s: &mut Section<'_>, settings: &mut HostsSettings, p: &mut Problems) {
    if let Some(n) = s.int_in(p, "misses", 1..=1000) {
        settings.misses = n;
    }
    if let Some(d) = s.duration(p, "watch_every", Duration::from_secs(1)) {
        settings.watch_every = d;
    }
    let mut policy = ThresholdPolicy::default();
    if let Some(t) = s.section(p, "thresholds") {
        layer(t, &mut policy.default, p);
    }
    if let Some(list) = s.sections(p, "groups") {
        let mut first = HashMap::new();
        for mut g in list {
            let name = g.required(p, "name", non_empty);
            if let Some(name) = &name {
                unique(&mut first, name, &g, "name", "host group name", p);
            }
            let patterns = g.strings(p, "hosts");
            if patterns.as_ref().is_some_and(Vec::is_empty) || !g.has("hosts") {
                p.add(g.key("hosts"), "missing or empty: list host name patterns");
            }
            let mut thresholds = policy.default.clone();
            if let Some(t) = g.section(p, "thresholds") {
                layer(t, &mut thresholds, p);
            }
            if let (Some(name), Some(patterns)) = (name, patterns) {
                policy.groups.push(HostGroup {
                    name,
                    patterns,
                    thresholds,
                });
            }
            g.finish(p);
        }
    }
    if let Some(list) = s.sections(p, "host") {
        let mut first = HashMap::new();
        for mut h in list {
            let name = h.required(p, "name", non_empty);
            if let Some(name) = &name {
                unique(
                    &mut first,
                    &name.to_ascii_lowercase(),
                    &h,
                    "name",
                    "host",
                    p,
                );
            }
            let group = name.as_deref().and_then(|n| policy.group_of(n));
            let mut thresholds =
                group.map_or_else(|| policy.default.clone(), |g| g.thresholds.clone());
            let group = group.map(|g| g.name.clone());
            if let Some(t) = h.section(p, "thresholds") {
                layer(t, &mut thresholds, p);
            }
            if let Some(host) = name {
                policy.hosts.push(HostLimits {
                    host,
                    group,
                    thresholds,
                });
            }
            h.finish(p);
        }
    }
    settings.thresholds = policy;
}

fn non_empty(s: &str) -> Result<String, String> {
    if s.trim().is_empty() {
        Err("must not be empty".into())
    } else {
        Ok(s.trim().to_owned())
    }
}

/// Sets the limits a `thresholds` table gives over `into`.
fn layer(mut t: Section<'_>, into: &mut Thresholds, p: &mut Problems) {
    for key in LIMITS {
        let Some(mut l) = t.section(p, key) else {
            continue;
        };
        if let Some(limit) = limit_mut(into, key) {
            if let Some(v) = number(&mut l, p, "above") {
                limit.above = v;
            }
            if let Some(v) = number(&mut l, p, "margin") {
                if v < 0.0 {
                    p.add(l.key("margin"), format!("must not be negative, found {v}"));
                } else {
                    limit.margin = v;
                }
            }
            if let Some(n) = l.int_in(p, "reports", 1..=1000) {
                limit.reports = n;
            }
            if let Some(level) = l.parsed(p, "level", level) {
                limit.level = level;
            }
        }
        l.finish(p);
    }
    t.finish(p);
}

/// A number (integer or float), finite.
fn number(s: &mut Section<'_>, p: &mut Problems, key: &'static str) -> Option<f64> {
    let v = s.get(key)?;
    let n = v.as_float().or_else(|| v.as_integer().map(|i| i as f64));
    match n {
        Some(n) if n.is_finite() => Some(n),
        Some(n) => {
            p.add(s.key(key), format!("must be a finite number, found {n}"));
            None
        }
        None => {
            p.add(
                s.key(key),
                format!("expected a number, found {}", a_type(v)),
            );
            None
        }
    }
}

fn level(s: &str) -> Result<Level, String> {
    match s {
        "low" => Ok(Level::Low),
        "warning" => Ok(Level::Warning),
        "critical" => Ok(Level::Critical),
        other => Err(format!(
            "unknown level `{other}` (expected low, warning or critical)"
        )),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use vigie_hosts::thresholds::Origin;

    use super::super::{Config, ConfigProblem, load_from};

    fn load(text: &str) -> Result<Config, Vec<ConfigProblem>> {
        let dir = std::env::temp_dir().join(format!(
            "vigie-hosts-cfg-{}-{}",
            std::process::id(),
            text.len()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("vigie.toml");
        std::fs::write(&file, text).unwrap();
        let out = load_from(Some(&file), &|_| None);
        let _ = std::fs::remove_dir_all(&dir);
        out
    }

    #[test]
    fn limits_layer_default_then_group_then_host() {
        let c = load(
            r#"
            [hosts]
            misses = 5
            [hosts.thresholds]
            filesystem = { above = 85, margin = 3 }
            cpu = { level = "critical", reports = 4 }
            [[hosts.groups]]
            name = "databases"
            hosts = ["db-*", "pg?"]
            thresholds.filesystem = { above = 80 }
            [[hosts.host]]
            name = "db-archive"
            thresholds.filesystem = { reports = 5 }
            "#,
        )
        .expect("valid");
        let h = &c.hosts;
        assert_eq!(h.misses, 5);
        let (d, origin) = h.thresholds.for_host("web-1");
        assert_eq!(origin, Origin::Default);
        assert_eq!((d.filesystem.above, d.filesystem.margin), (85.0, 3.0));
        assert_eq!(d.cpu.reports, 4);
        assert_eq!(d.cpu.level, vigie_core::Level::Critical);
        let (g, origin) = h.thresholds.for_host("db-7");
        assert_eq!(origin, Origin::Group("databases".into()));
        // The group's filesystem limit over the defaults' margin, the defaults' CPU.
        assert_eq!((g.filesystem.above, g.filesystem.margin), (80.0, 3.0));
        assert_eq!(g.cpu.reports, 4);
        let (own, origin) = h.thresholds.for_host("DB-ARCHIVE");
        assert_eq!(origin, Origin::Host("db-archive".into()));
        assert_eq!(
            (own.filesystem.above, own.filesystem.reports),
            (80.0, 5),
            "the host's value over its group's"
        );
    }

    #[test]
    fn bad_limits_are_reported_with_their_key() {
        let problems = load(
            r#"
            [hosts]
            misses = 0
            [hosts.thresholds]
            cpu = { above = "ninety", margin = -1, level = "loud", colour = "red" }
            disk = { above = 1 }
            [[hosts.groups]]
            name = "g"
            [[hosts.groups]]
            name = "g"
            hosts = ["x*"]
            [[hosts.host]]
            thresholds.memory = { reports = 0 }
            "#,
        )
        .expect_err("invalid");
        let reason = |key: &str| {
            problems
                .iter()
                .find(|p| p.key == key)
                .map(|p| p.reason.clone())
                .unwrap_or_else(|| panic!("no problem at {key}: {problems:#?}"))
        };
        assert!(reason("hosts.misses").contains("between 1 and 1000"));
        assert!(reason("hosts.thresholds.cpu.above").contains("expected a number"));
        assert!(reason("hosts.thresholds.cpu.margin").contains("negative"));
        assert!(reason("hosts.thresholds.cpu.level").contains("unknown level `loud`"));
        assert!(reason("hosts.thresholds.cpu.colour").contains("unknown"));
        assert!(reason("hosts.thresholds.disk").contains("unknown"));
        assert!(reason("hosts.groups[0].hosts").contains("missing"));
        assert!(reason("hosts.groups[1].name").contains("duplicate host group name `g`"));
        assert!(reason("hosts.host[0].name").contains("missing"));
        assert!(reason("hosts.host[0].thresholds.memory.reports").contains("between 1 and 1000"));
    }
}
