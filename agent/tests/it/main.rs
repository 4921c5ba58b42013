//! Integration tests: the real `vigie-agent` binary against a stand-in hub (see `hub.rs`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod delivery;
mod hub;
mod once;
mod tls;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

pub(crate) const BIN: &str = env!("CARGO_BIN_EXE_vigie-agent");
pub(crate) const TOKEN: &str = "it-token-0123";

/// A directory removed at the end of the test.
pub(crate) struct TempDir(pub PathBuf);

impl TempDir {
    pub(crate) fn new(name: &str) -> TempDir {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let p = std::env::temp_dir().join(format!(
            "vigie-agent-it-{}-{name}-{nanos}",
            std::process::id()
        ));
        fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// Polls `cond` until it holds or `limit` passes.
pub(crate) fn wait_until(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + limit;
    while Instant::now() < end {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    cond()
}

/// Reports waiting in a spool directory.
pub(crate) fn spooled(dir: &Path) -> usize {
    fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .filter(|e| e.file_name().to_string_lossy().ends_with(".json"))
                .count()
        })
        .unwrap_or(0)
}

/// The sequence number at the end of a report id (`HOST-RUN-SEQ`).
pub(crate) fn seq(id: &str) -> u64 {
    id.rsplit('-').next().unwrap().parse().unwrap()
}

/// A running agent, stopped (SIGTERM, then kill) when dropped.
pub(crate) struct Agent {
    pub(crate) child: Child,
    pub(crate) dir: TempDir,
}

impl Agent {
    /// Starts the agent with a config file holding `hub`, a 200 ms interval, a spool under its
    /// own temporary directory, and `extra` lines (which replace the defaults of the keys they
    /// set). The token comes from VIGIE_AGENT_TOKEN.
    pub(crate) fn start(name: &str, hub: &str, extra: &str) -> Agent {
        Agent::start_with(name, hub, extra, |_| {})
    }

    /// As [`Agent::start`], after `prepare` was given the spool directory (created, empty).
    pub(crate) fn start_with(
        name: &str,
        hub: &str,
        extra: &str,
        prepare: impl FnOnce(&Path),
    ) -> Agent {
        let dir = TempDir::new(name);
        fs::create_dir_all(dir.0.join("spool")).unwrap();
        prepare(&dir.0.join("spool"));
        let spool = dir.0.join("spool").display().to_string();
        let defaults = [
            ("hub", hub),
            ("host", "it-host"),
            ("interval", "200ms"),
            ("fast_interval", "200ms"),
            ("spool_dir", spool.as_str()),
            ("timeout", "2s"),
            ("smartctl", "/nonexistent/smartctl"),
        ];
        let mut config = String::new();
        for (key, value) in defaults {
            if !extra
                .lines()
                .any(|l| l.split('=').next().is_some_and(|k| k.trim() == key))
            {
                config.push_str(&format!("{key} = \"{value}\"\n"));
            }
        }
        config.push_str(extra);
        config.push('\n');
        fs::write(dir.0.join("agent.toml"), config).unwrap();
        let log = fs::File::create(dir.0.join("agent.log")).unwrap();
        let child = Command::new(BIN)
            .arg("--config")
            .arg(dir.0.join("agent.toml"))
            .arg("--verbose")
            .env("VIGIE_AGENT_TOKEN", TOKEN)
            .env_remove("JOURNAL_STREAM")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        Agent { child, dir }
    }

    pub(crate) fn spool(&self) -> PathBuf {
        self.dir.0.join("spool")
    }

    pub(crate) fn log(&self) -> String {
        fs::read_to_string(self.dir.0.join("agent.log")).unwrap_or_default()
    }

    /// SIGTERM, then the exit status (killed after 10 s).
    pub(crate) fn stop(&mut self) -> ExitStatus {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let end = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            if Instant::now() > end {
                let _ = self.child.kill();
                return self.child.wait().unwrap();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
