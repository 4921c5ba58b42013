//! The report an agent sends to `POST /api/v1/agent/report`: the one contract between the agent
//! and the hub.
//!
//! Kept free of anything but serde and chrono so the hub can depend on this crate with
//! `default-features = false`. Sections and lists default when absent so that a hub can read the
//! reports of an older agent; `schema_version` changes only when a field changes meaning.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Version of this model. The hub may refuse versions it does not know.
pub const SCHEMA_VERSION: u32 = 1;

/// One report: the figures collected at `collected_at`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub schema_version: u32,
    /// Unique per report (host, per-run random token, sequence): a replayed report keeps its id,
    /// so the hub can ignore one it already stored.
    pub id: String,
    pub host: String,
    pub collected_at: DateTime<Utc>,
    /// Seconds until the next report is due (the fast interval while the hub asked for it).
    pub interval_secs: f64,
    #[serde(default)]
    pub uptime_secs: u64,
    /// Sent in the first report after start, then every `inventory_interval`.
    #[serde(default)]
    pub inventory: Option<Inventory>,
    #[serde(default)]
    pub cpu: Cpu,
    #[serde(default)]
    pub load: Load,
    #[serde(default)]
    pub memory: Memory,
    #[serde(default)]
    pub swap: Memory,
    #[serde(default)]
    pub filesystems: Vec<Filesystem>,
    #[serde(default)]
    pub network: Vec<NetworkInterface>,
    /// Empty when the kernel exposes no sensor (virtual machines, containers).
    #[serde(default)]
    pub temperatures: Vec<Temperature>,
    #[serde(default)]
    pub processes: Processes,
    /// `None` when systemd is not the init system; `Some(empty)` when nothing failed.
    #[serde(default)]
    pub systemd_failed_units: Option<Vec<FailedUnit>>,
    /// `None` when `smartctl` is not installed.
    #[serde(default)]
    pub smart: Option<Vec<SmartDevice>>,
    /// Reports this agent discarded (spool bounds, refused by the hub) since the last report that
    /// carried such a count.
    #[serde(default)]
    pub dropped_reports: u64,
}

/// What the host is; changes rarely, so it is not in every report.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Inventory {
    pub hostname: String,
    /// `PRETTY_NAME` of os-release on Linux.
    pub os: Option<String>,
    pub kernel: Option<String>,
    pub arch: String,
    pub cpu_model: Option<String>,
    pub cpu_cores: u32,
    pub memory_bytes: u64,
    /// Non-loopback, non-link-local IP addresses.
    #[serde(default)]
    pub addresses: Vec<String>,
    pub agent_version: String,
}

/// Busy share of CPU time over the last interval, in percent (0–100).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Cpu {
    pub total_percent: f64,
    #[serde(default)]
    pub per_core_percent: Vec<f64>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Load {
    pub one: f64,
    pub five: f64,
    pub fifteen: f64,
}

/// Memory or swap. `used = total - available` for memory (the kernel's own estimate of what can
/// be given to programs), `total - free` for swap.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Memory {
    pub total_bytes: u64,
    pub used_bytes: u64,
    pub available_bytes: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Filesystem {
    pub mount: String,
    pub fs_type: String,
    pub device: String,
    pub total_bytes: u64,
    pub used_bytes: u64,
    /// Space an unprivileged user can still write (excludes the root reserve).
    pub available_bytes: u64,
    /// `used / (used + available)`, as `df` computes it.
    pub used_percent: f64,
    /// `None` when the filesystem has no fixed inode table (btrfs, some network filesystems).
    pub inodes_total: Option<u64>,
    pub inodes_used: Option<u64>,
    /// `None` when no block device statistics match the filesystem (network, btrfs, zfs).
    pub read_bytes_per_sec: Option<u64>,
    pub write_bytes_per_sec: Option<u64>,
}

/// Rates are per second over the last interval; error and drop counts are the increase over it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NetworkInterface {
    pub name: String,
    pub rx_bytes_per_sec: u64,
    pub tx_bytes_per_sec: u64,
    pub rx_errors: u64,
    pub tx_errors: u64,
    pub rx_drops: u64,
    pub tx_drops: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Temperature {
    pub label: String,
    pub celsius: f64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Processes {
    pub count: u32,
    /// At most five, busiest first.
    #[serde(default)]
    pub top_cpu: Vec<Process>,
    /// At most five, largest resident set first.
    #[serde(default)]
    pub top_memory: Vec<Process>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Process {
    pub pid: u32,
    pub name: String,
    /// Share of one core over the last interval: can exceed 100 for a multi-threaded process.
    pub cpu_percent: f64,
    pub rss_bytes: u64,
}

/// One line of `systemctl --failed`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FailedUnit {
    pub unit: String,
    pub load: String,
    pub active: String,
    pub sub: String,
    pub description: String,
}

/// Overall health from `smartctl -H`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SmartDevice {
    pub device: String,
    pub model: Option<String>,
    pub passed: bool,
}

/// What the hub answers to an accepted report. Only `fast` matters to the agent.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HubAnswer {
    /// `true` while one of this host's thresholds is crossed: report at the fast interval until
    /// an answer says `false`.
    #[serde(default)]
    pub fast: Option<bool>,
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn minimal_report_parses_with_defaults() {
        let json = r#"{"schema_version":1,"id":"h-1-1","host":"h",
            "collected_at":"2026-01-02T03:04:05Z","interval_secs":30}"#;
        let r: Report = serde_json::from_str(json).unwrap();
        assert_eq!(r.host, "h");
        assert_eq!(r.interval_secs, 30.0);
        assert!(r.filesystems.is_empty());
        assert_eq!(r.systemd_failed_units, None);
        assert_eq!(r.smart, None);
        assert_eq!(r.dropped_reports, 0);
    }

    #[test]
    fn missing_id_is_an_error_naming_it() {
        let json = r#"{"schema_version":1,"host":"h","collected_at":"2026-01-02T03:04:05Z",
            "interval_secs":30}"#;
        let err = serde_json::from_str::<Report>(json)
            .unwrap_err()
            .to_string();
        assert!(err.contains("`id`"), "{err}");
    }

    #[test]
    fn none_and_empty_stay_distinct_through_json() {
        let mut r: Report = serde_json::from_str(
            r#"{"schema_version":1,"id":"x","host":"h","collected_at":"2026-01-02T03:04:05Z",
            "interval_secs":10}"#,
        )
        .unwrap();
        r.systemd_failed_units = Some(vec![]);
        let back: Report = serde_json::from_str(&serde_json::to_string(&r).unwrap()).unwrap();
        assert_eq!(back.systemd_failed_units, Some(vec![]));
        assert_eq!(back.smart, None);
        assert_eq!(back, r);
    }

    #[test]
    fn hub_answer_fast_is_optional() {
        let a: HubAnswer = serde_json::from_str(r#"{"ids":[3],"fast":true}"#).unwrap();
        assert_eq!(a.fast, Some(true));
        let a: HubAnswer = serde_json::from_str("{}").unwrap();
        assert_eq!(a.fast, None);
    }
}
