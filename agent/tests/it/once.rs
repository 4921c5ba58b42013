//! `--once`, `--help` and configuration errors, as a user sees them.

use std::process::Command;
use std::time::{Duration, Instant};

use vigie_agent::report::{Report, SCHEMA_VERSION};

use crate::{BIN, TempDir};

#[test]
fn once_prints_a_full_report_without_a_hub() {
    let started = Instant::now();
    let out = Command::new(BIN)
        .args(["--once", "--host", "it-once"])
        .env_remove("VIGIE_AGENT_TOKEN")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(started.elapsed() < Duration::from_secs(20));
    // Read it the way the hub will.
    let r: Report = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r.schema_version, SCHEMA_VERSION);
    assert_eq!(r.host, "it-once");
    assert!(r.id.starts_with("it-once-"));
    assert!(!r.cpu.per_core_percent.is_empty(), "cpu cores");
    assert!(r.memory.total_bytes > 0);
    assert!(!r.filesystems.is_empty(), "at least one filesystem");
    assert!(
        r.filesystems
            .iter()
            .all(|f| f.total_bytes > 0 && f.used_percent <= 100.0)
    );
    let inv = r.inventory.expect("inventory in the first report");
    assert!(inv.cpu_cores > 0);
    assert_eq!(inv.memory_bytes, r.memory.total_bytes);
    assert!(r.processes.count > 0 && !r.processes.top_memory.is_empty());
    assert_eq!(r.interval_secs, 30.0);
    // Pretty-printed, as promised for humans checking a host.
    assert!(String::from_utf8_lossy(&out.stdout).contains("\n  \"host\": \"it-once\""));
}

#[test]
fn help_shows_the_documented_usage() {
    let out = Command::new(BIN).arg("--help").output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("vigie-agent --hub URL --token TOKEN [--interval 30s] [--once]"),
        "{text}"
    );
}

#[test]
fn bad_config_exits_2_naming_each_key() {
    let dir = TempDir::new("badcfg");
    let path = dir.0.join("agent.toml");
    std::fs::write(
        &path,
        "hub = \"https://hub\"\ntoken = \"t\"\ninterval = \"3x\"\nbogus = 1\n",
    )
    .unwrap();
    let out = Command::new(BIN)
        .arg("--config")
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("`interval`") && err.contains("\"3x\""),
        "{err}"
    );
    assert!(err.contains("`bogus`: unknown key"), "{err}");
}

#[test]
fn missing_hub_and_token_exit_2() {
    let out = Command::new(BIN)
        .env_remove("VIGIE_AGENT_TOKEN")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("`hub`") && err.contains("`token`"), "{err}");
    let out = Command::new(BIN)
        .args(["--hub", "https://h", "--interval"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("`--interval`: needs a value"));
}
