//! Reading the Linux kernel's files. Any file missing or unreadable gives an empty or zero
//! figure for that part of the report, never an error: a report with holes is better than none.

use std::collections::HashMap;
use std::fs;
use std::io::Read;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use super::parse::{self, Mount};
use super::{Sample, per_sec, round2};
use crate::report::{Filesystem, Inventory, Load, Memory, Temperature};

/// How long statvfs on a network filesystem may take before the mount is skipped.
const NETWORK_STATFS_LIMIT: Duration = Duration::from_secs(2);

/// Reads a kernel text file. Not `fs::read_to_string`: its size probe (statx + lseek) doubles
/// the system calls for files whose size the kernel reports as 0 anyway.
fn read(path: &str) -> String {
    let mut out = Vec::with_capacity(4096);
    let _ = fs::File::open(path).and_then(|f| f.take(u64::MAX).read_to_end(&mut out));
    String::from_utf8(out).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

#[derive(Default)]
pub(super) struct State {
    /// Network mounts whose statvfs is still stuck in a helper thread: skipped until it ends.
    stuck: HashMap<String, Arc<AtomicBool>>,
    /// Reused for the many `/proc/PID/stat` reads.
    buf: Vec<u8>,
    path: String,
}

impl State {
    pub(super) fn sample(&mut self) -> Sample {
        let mut s = Sample {
            stat: parse::parse_stat(&read("/proc/stat")),
            ..Sample::default()
        };
        for d in parse::parse_diskstats(&read("/proc/diskstats")) {
            s.disk_by_name.insert(d.name, d.dev);
            s.disks.insert(d.dev, d.counters);
        }
        s.nets = parse::parse_net_dev(&read("/proc/net/dev"));
        s.procs = self.processes();
        s.at = Some(Instant::now());
        s
    }

    /// One `/proc/PID/stat` per process, read with a single `read` into a reused buffer: the
    /// kernel produces the whole line at once, and this loop is most of the agent's CPU time.
    fn processes(&mut self) -> Vec<parse::PidStat> {
        let mut out = Vec::new();
        let Ok(dir) = fs::read_dir("/proc") else {
            return out;
        };
        self.buf.resize(4096, 0);
        for entry in dir.flatten() {
            let name = entry.file_name();
            let Some(pid) = name
                .to_str()
                .filter(|n| n.bytes().all(|b| b.is_ascii_digit()))
            else {
                continue;
            };
            self.path.clear();
            self.path.push_str("/proc/");
            self.path.push_str(pid);
            self.path.push_str("/stat");
            // A process may end between the listing and the read: skip it.
            let Ok(n) = fs::File::open(&self.path).and_then(|mut f| f.read(&mut self.buf)) else {
                continue;
            };
            if let Some(p) = parse::parse_pid_stat(&String::from_utf8_lossy(&self.buf[..n])) {
                out.push(p);
            }
        }
        out
    }

    pub(super) fn filesystems(
        &mut self,
        prev: &Sample,
        cur: &Sample,
        secs: f64,
    ) -> Vec<Filesystem> {
        self.stuck.retain(|_, done| !done.load(Ordering::Relaxed));
        let mounts =
            parse::select_filesystems(parse::parse_mountinfo(&read("/proc/self/mountinfo")));
        let mut out = Vec::with_capacity(mounts.len());
        for m in mounts {
            let Some(vfs) = self.statvfs(&m) else {
                continue;
            };
            let frsize = if vfs.f_frsize > 0 {
                vfs.f_frsize
            } else {
                vfs.f_bsize
            };
            let total = vfs.f_blocks.saturating_mul(frsize);
            let used = vfs
                .f_blocks
                .saturating_sub(vfs.f_bfree)
                .saturating_mul(frsize);
            let available = vfs.f_bavail.saturating_mul(frsize);
            if total == 0 {
                continue;
            }
            let used_percent = if used + available > 0 {
                round2(used as f64 * 100.0 / (used + available) as f64)
            } else {
                0.0
            };
            let (inodes_total, inodes_used) = if vfs.f_files > 0 {
                (
                    Some(vfs.f_files),
                    Some(vfs.f_files.saturating_sub(vfs.f_ffree)),
                )
            } else {
                (None, None)
            };
            let dev = block_device(&m, cur);
            let io = dev.and_then(|d| Some((prev.disks.get(&d)?, cur.disks.get(&d)?)));
            out.push(Filesystem {
                mount: m.mount,
                fs_type: m.fs_type,
                device: m.source,
                total_bytes: total,
                used_bytes: used,
                available_bytes: available,
                used_percent,
                inodes_total,
                inodes_used,
                read_bytes_per_sec: io.map(|(p, c)| per_sec(p.read_bytes, c.read_bytes, secs)),
                write_bytes_per_sec: io.map(|(p, c)| per_sec(p.write_bytes, c.write_bytes, secs)),
            });
        }
        out
    }

    /// statvfs; on a network filesystem, in a helper thread with a time limit, because a dead
    /// server makes the call block (possibly forever).
    fn statvfs(&mut self, m: &Mount) -> Option<rustix::fs::StatVfs> {
        if !parse::is_network_fs(&m.fs_type) {
            return rustix::fs::statvfs(m.mount.as_str()).ok();
        }
        if self.stuck.contains_key(&m.mount) {
            return None;
        }
        let (tx, rx) = mpsc::channel();
        let done = Arc::new(AtomicBool::new(false));
        let (path, flag) = (m.mount.clone(), done.clone());
        let spawned = std::thread::Builder::new()
            .stack_size(64 * 1024)
            .spawn(move || {
                let _ = tx.send(rustix::fs::statvfs(path.as_str()).ok());
                flag.store(true, Ordering::Relaxed);
            });
        if spawned.is_err() {
            return None;
        }
        match rx.recv_timeout(NETWORK_STATFS_LIMIT) {
            Ok(v) => v,
            Err(_) => {
                crate::warn!(
                    "{} ({}) does not answer; skipped until it does",
                    m.mount,
                    m.source
                );
                self.stuck.insert(m.mount.clone(), done);
                None
            }
        }
    }
}

/// The diskstats entry of a mount: by device number, or by the source's device name (btrfs and
/// device-mapper mounts show another number than their block device).
fn block_device(m: &Mount, cur: &Sample) -> Option<(u32, u32)> {
    if cur.disks.contains_key(&m.dev) {
        return Some(m.dev);
    }
    if !m.source.starts_with("/dev/") {
        return None;
    }
    let real = fs::canonicalize(&m.source).ok()?;
    let name = real.file_name()?.to_str()?;
    cur.disk_by_name.get(name).copied()
}

pub(super) fn gauges() -> (Memory, Memory, Load, u64) {
    let m = parse::parse_meminfo(&read("/proc/meminfo"));
    let memory = Memory {
        total_bytes: m.mem_total,
        used_bytes: m.mem_total - m.mem_available,
        available_bytes: m.mem_available,
    };
    let swap = Memory {
        total_bytes: m.swap_total,
        used_bytes: m.swap_total - m.swap_free,
        available_bytes: m.swap_free,
    };
    let load = parse::parse_loadavg(&read("/proc/loadavg")).unwrap_or_default();
    let uptime = parse::parse_uptime(&read("/proc/uptime")).unwrap_or(0);
    (memory, swap, load, uptime)
}

/// hwmon sensors (`tempN_input`, millidegrees); thermal zones only when hwmon has none, since
/// most zones are also hwmon devices.
pub(super) fn temperatures() -> Vec<Temperature> {
    let mut out = Vec::new();
    if let Ok(dir) = fs::read_dir("/sys/class/hwmon") {
        let mut chips: Vec<_> = dir.flatten().map(|e| e.path()).collect();
        chips.sort();
        for chip in chips {
            let chip_name = fs::read_to_string(chip.join("name"))
                .map(|s| s.trim().to_owned())
                .unwrap_or_default();
            let Ok(files) = fs::read_dir(&chip) else {
                continue;
            };
            let mut inputs: Vec<String> = files
                .flatten()
                .filter_map(|f| f.file_name().into_string().ok())
                .filter(|n| n.starts_with("temp") && n.ends_with("_input"))
                .collect();
            inputs.sort();
            for input in inputs {
                let Some(celsius) = millidegrees(&chip.join(&input)) else {
                    continue;
                };
                let stem = input.trim_end_matches("_input");
                let label = fs::read_to_string(chip.join(format!("{stem}_label")))
                    .map(|s| s.trim().to_owned())
                    .unwrap_or_else(|_| stem.to_owned());
                let label = if chip_name.is_empty() {
                    label
                } else {
                    format!("{chip_name} {label}")
                };
                out.push(Temperature { label, celsius });
            }
        }
    }
    if out.is_empty()
        && let Ok(dir) = fs::read_dir("/sys/class/thermal")
    {
        let mut zones: Vec<_> = dir
            .flatten()
            .map(|e| e.path())
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with("thermal_zone"))
            })
            .collect();
        zones.sort();
        for zone in zones {
            let Some(celsius) = millidegrees(&zone.join("temp")) else {
                continue;
            };
            let kind = fs::read_to_string(zone.join("type"))
                .map(|s| s.trim().to_owned())
                .unwrap_or_default();
            let name = zone
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default()
                .to_owned();
            out.push(Temperature {
                label: if kind.is_empty() { name } else { kind },
                celsius,
            });
        }
    }
    out
}

/// A sensor value in °C, rounded to 0.1; absurd readings (unplugged probes) are left out.
fn millidegrees(path: &Path) -> Option<f64> {
    let milli: i64 = fs::read_to_string(path).ok()?.trim().parse().ok()?;
    let c = (milli as f64 / 100.0).round() / 10.0;
    (-60.0..=250.0).contains(&c).then_some(c)
}

pub(super) fn inventory() -> Inventory {
    let uts = rustix::system::uname();
    let os = fs::read_to_string("/etc/os-release")
        .or_else(|_| fs::read_to_string("/usr/lib/os-release"))
        .ok()
        .and_then(|t| parse::parse_os_release(&t));
    let mut addresses = parse::parse_fib_trie_local(&read("/proc/net/fib_trie"));
    addresses.extend(parse::parse_if_inet6(&read("/proc/net/if_inet6")));
    Inventory {
        os,
        kernel: Some(uts.release().to_string_lossy().into_owned()),
        cpu_model: parse::parse_cpu_model(&read("/proc/cpuinfo")),
        memory_bytes: parse::parse_meminfo(&read("/proc/meminfo")).mem_total,
        addresses,
        ..Inventory::default()
    }
}
