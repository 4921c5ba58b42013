//! External commands (`systemctl`, `smartctl`) under a time limit: a command that hangs (a dying
//! disk, a stuck D-Bus) is killed and its figure left out; the agent never waits on it.
//!
//! The output pipe is read non-blocking on the agent's own thread, so no helper thread (and no
//! per-thread allocator arena) is needed.

use std::io::{ErrorKind, Read};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::parse;
use crate::report::{FailedUnit, SmartDevice};

/// Longest a single command may run.
pub const COMMAND_LIMIT: Duration = Duration::from_secs(10);
/// Longest the whole SMART probe may take, however many disks.
const SMART_BUDGET: Duration = Duration::from_secs(30);
const MAX_OUTPUT: usize = 4 << 20;

/// Runs `program args`, returns its stdout, or why not. The exit status is not judged: smartctl
/// uses it as a bit mask and still prints its JSON.
pub fn run(program: &Path, args: &[&str], limit: Duration) -> Result<Vec<u8>, String> {
    let mut child = Command::new(program)
        .args(args)
        .env("LC_ALL", "C")
        .env("SYSTEMD_PAGER", "")
        .env("SYSTEMD_COLORS", "0")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("{}: {e}", program.display()))?;
    let Some(mut out) = child.stdout.take() else {
        let _ = child.kill();
        let _ = child.wait();
        return Err("no output pipe".into());
    };
    if let Err(e) = rustix::io::ioctl_fionbio(&out, true) {
        let _ = child.kill();
        let _ = child.wait();
        return Err(format!("pipe: {e}"));
    }
    let deadline = Instant::now() + limit;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let mut eof = false;
    loop {
        while !eof {
            match out.read(&mut chunk) {
                Ok(0) => eof = true,
                Ok(n) if buf.len() + n <= MAX_OUTPUT => buf.extend_from_slice(&chunk[..n]),
                Ok(_) => eof = true, // too much: stop reading, the kill below ends it
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => eof = true,
            }
        }
        if eof && let Ok(Some(_)) = child.try_wait() {
            return Ok(buf);
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("{} timed out after {limit:?}", program.display()));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Finds a program on PATH or in the sbin directories (which an unprivileged user's PATH may
/// lack).
pub fn find_program(name: &str) -> Option<PathBuf> {
    if name.contains('/') {
        let p = PathBuf::from(name);
        return p.is_file().then_some(p);
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin", "/usr/local/sbin"].map(PathBuf::from))
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// `None` unless systemd is the running init system (`/run/systemd/system` exists, as
/// sd_booted(3) checks).
pub fn failed_units() -> Option<Vec<FailedUnit>> {
    if !Path::new("/run/systemd/system").is_dir() {
        return None;
    }
    let systemctl = find_program("systemctl")?;
    match run(
        &systemctl,
        &["--failed", "--plain", "--no-legend", "--no-pager"],
        COMMAND_LIMIT,
    ) {
        Ok(out) => Some(parse::parse_failed_units(&String::from_utf8_lossy(&out))),
        Err(e) => {
            crate::warn!("failed units not collected: {e}");
            None
        }
    }
}

/// `None` when smartctl is not installed; devices without a verdict (no permission, no SMART)
/// are left out with a log line.
pub fn smart(smartctl: &str) -> Option<Vec<SmartDevice>> {
    let program = find_program(smartctl)?;
    let started = Instant::now();
    let scan = match run(&program, &["--scan"], COMMAND_LIMIT) {
        Ok(out) => parse::parse_smart_scan(&String::from_utf8_lossy(&out)),
        Err(e) => {
            crate::warn!("smartctl --scan: {e}");
            return Some(Vec::new());
        }
    };
    let mut out = Vec::new();
    for (device, kind) in scan {
        let left = SMART_BUDGET.saturating_sub(started.elapsed());
        if left.is_zero() {
            crate::warn!(
                "SMART probe over its {SMART_BUDGET:?} budget; {device} and later disks skipped"
            );
            break;
        }
        let mut args = vec!["-H", "-j"];
        if let Some(k) = &kind {
            args.extend(["-d", k.as_str()]);
        }
        args.push(&device);
        match run(&program, &args, left.min(COMMAND_LIMIT)) {
            Ok(json) => match parse::parse_smart_health(&device, &json) {
                Some(d) => out.push(d),
                None => crate::warn!(
                    "smartctl gave no health verdict for {device} (permission? see the README's SMART section)"
                ),
            },
            Err(e) => crate::warn!("smartctl {device}: {e}"),
        }
    }
    Some(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn output_is_captured() {
        let out = run(
            Path::new("/bin/sh"),
            &["-c", "echo one; echo two"],
            Duration::from_secs(5),
        )
        .unwrap();
        assert_eq!(out, b"one\ntwo\n");
    }

    #[test]
    fn a_hanging_command_is_killed() {
        let start = Instant::now();
        let err = run(
            Path::new("/bin/sh"),
            &["-c", "sleep 30"],
            Duration::from_millis(300),
        )
        .unwrap_err();
        assert!(err.contains("timed out"), "{err}");
        assert!(start.elapsed() < Duration::from_secs(5));
    }

    #[test]
    fn large_output_does_not_deadlock() {
        // More than a pipe's 64 KiB buffer.
        let out = run(
            Path::new("/bin/sh"),
            &["-c", "head -c 300000 /dev/zero"],
            Duration::from_secs(10),
        )
        .unwrap();
        assert_eq!(out.len(), 300_000);
    }

    #[test]
    fn missing_programs() {
        assert!(run(Path::new("/nonexistent/x"), &[], Duration::from_secs(1)).is_err());
        assert!(find_program("/nonexistent/smartctl").is_none());
        assert!(smart("/nonexistent/smartctl").is_none());
        assert!(find_program("sh").is_some());
    }
}
