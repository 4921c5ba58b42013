//! Collection: reads `/proc` and `/sys` directly (no sysinfo crate) and turns counter deltas
//! between two samples into rates.
//!
//! The first report after start takes a baseline sample and waits a moment (at most a second)
//! before the real one, so that even `--once` has rates. Later reports use the previous report's
//! sample, so rates cover the whole interval. `systemctl` and `smartctl` are external commands,
//! run under a time limit and less often than reports (their last answer is repeated in
//! between). Only Linux is collected; elsewhere the figures are empty and the code still builds.

pub mod parse;

#[cfg(unix)]
pub mod command;
#[cfg(target_os = "linux")]
mod linux;

use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};
use std::time::{Duration, Instant};

use chrono::Utc;

use crate::report::{
    Cpu, FailedUnit, Filesystem, Inventory, Load, Memory, NetworkInterface, Process, Processes,
    Report, SCHEMA_VERSION, SmartDevice, Temperature,
};
use parse::{CpuTimes, DiskCounters, NetCounters, PidStat, Stat};

/// Processes listed in each top list.
pub const TOP: usize = 5;

/// Counters read at one instant; rates come from two of them.
#[derive(Debug, Default)]
pub struct Sample {
    pub at: Option<Instant>,
    pub stat: Stat,
    pub disks: HashMap<(u32, u32), DiskCounters>,
    pub disk_by_name: HashMap<String, (u32, u32)>,
    pub nets: Vec<(String, NetCounters)>,
    pub procs: Vec<PidStat>,
}

/// Busy share between two readings, in percent, rounded to 0.01.
pub fn cpu_percent(prev: CpuTimes, cur: CpuTimes) -> f64 {
    let total = cur.total.saturating_sub(prev.total);
    if total == 0 {
        return 0.0;
    }
    let busy = cur.busy.saturating_sub(prev.busy).min(total);
    round2(busy as f64 * 100.0 / total as f64)
}

/// Per-second rate of a counter; a counter that went back (reset, wrapped, device re-created)
/// gives 0 for that interval rather than a huge number.
pub fn per_sec(prev: u64, cur: u64, secs: f64) -> u64 {
    if secs <= 0.0 {
        return 0;
    }
    (cur.saturating_sub(prev) as f64 / secs).round() as u64
}

pub fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// Per-core and total CPU from two `/proc/stat` readings.
pub fn cpu_between(prev: &Stat, cur: &Stat) -> Cpu {
    Cpu {
        total_percent: cpu_percent(prev.total, cur.total),
        per_core_percent: cur
            .cores
            .iter()
            .enumerate()
            .map(|(i, c)| prev.cores.get(i).map_or(0.0, |p| cpu_percent(*p, *c)))
            .collect(),
    }
}

/// Interface rates from two `/proc/net/dev` readings; an interface new since the last reading
/// shows zeros until the next one.
pub fn network_between(
    prev: &[(String, NetCounters)],
    cur: &[(String, NetCounters)],
    secs: f64,
) -> Vec<NetworkInterface> {
    cur.iter()
        .map(|(name, c)| {
            let p = prev.iter().find(|(n, _)| n == name).map_or(*c, |(_, p)| *p);
            NetworkInterface {
                name: name.clone(),
                rx_bytes_per_sec: per_sec(p.rx_bytes, c.rx_bytes, secs),
                tx_bytes_per_sec: per_sec(p.tx_bytes, c.tx_bytes, secs),
                rx_errors: c.rx_errors.saturating_sub(p.rx_errors),
                tx_errors: c.tx_errors.saturating_sub(p.tx_errors),
                rx_drops: c.rx_drops.saturating_sub(p.rx_drops),
                tx_drops: c.tx_drops.saturating_sub(p.tx_drops),
            }
        })
        .collect()
}

/// Process count and the top lists. CPU is the ticks used since the last reading over the
/// ticks elapsed; a process that was not there before counts all its ticks (it started within
/// the interval), and a pid reused by a new process is told apart by its start time.
pub fn processes_between(
    prev: &[PidStat],
    cur: &[PidStat],
    secs: f64,
    ticks_per_sec: u64,
    page_size: u64,
) -> Processes {
    let before: HashMap<u32, (u64, u64)> =
        prev.iter().map(|p| (p.pid, (p.start, p.ticks))).collect();
    let elapsed_ticks = secs * ticks_per_sec as f64;
    let mut rows: Vec<Process> = cur
        .iter()
        .map(|p| {
            let used = match before.get(&p.pid) {
                Some((start, ticks)) if *start == p.start => p.ticks.saturating_sub(*ticks),
                _ => p.ticks,
            };
            let cpu = if elapsed_ticks > 0.0 {
                used as f64 * 100.0 / elapsed_ticks
            } else {
                0.0
            };
            Process {
                pid: p.pid,
                name: p.name.clone(),
                cpu_percent: round2(cpu),
                rss_bytes: p.rss_pages * page_size,
            }
        })
        .collect();
    let count = u32::try_from(rows.len()).unwrap_or(u32::MAX);
    rows.sort_by(|a, b| {
        b.cpu_percent
            .total_cmp(&a.cpu_percent)
            .then(a.pid.cmp(&b.pid))
    });
    let top_cpu = rows.iter().take(TOP).cloned().collect();
    rows.sort_by(|a, b| b.rss_bytes.cmp(&a.rss_bytes).then(a.pid.cmp(&b.pid)));
    rows.truncate(TOP);
    Processes {
        count,
        top_cpu,
        top_memory: rows,
    }
}

/// Report ids: host, a random token drawn at start, and a sequence number. Unique across
/// restarts without any state on disk, and readable in the hub's logs.
#[derive(Debug)]
pub struct IdGen {
    run: u64,
    seq: u64,
}

impl IdGen {
    pub fn new() -> IdGen {
        // std's hasher keys are drawn from the OS's random source: enough for a nonce.
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u128(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default()
                .as_nanos(),
        );
        h.write_u32(std::process::id());
        IdGen {
            run: h.finish(),
            seq: 0,
        }
    }

    pub fn next(&mut self, host: &str) -> String {
        self.seq += 1;
        format!("{host}-{:016x}-{}", self.run, self.seq)
    }
}

impl Default for IdGen {
    fn default() -> Self {
        IdGen::new()
    }
}

/// A slow probe's last answer and when it was taken.
struct Cached<T> {
    value: T,
    at: Option<Instant>,
}

impl<T: Clone> Cached<T> {
    fn get(&mut self, every: Duration, probe: impl FnOnce() -> T) -> T {
        if self.at.is_none_or(|at| at.elapsed() >= every) {
            self.value = probe();
            self.at = Some(Instant::now());
        }
        self.value.clone()
    }
}

/// How the collector behaves; from the configuration.
#[derive(Debug, Clone)]
pub struct Settings {
    pub host: String,
    pub inventory_interval: Duration,
    pub units_interval: Duration,
    pub smart_interval: Duration,
    pub smartctl: String,
}

/// Keeps what rates and slow probes need between reports.
pub struct Collector {
    settings: Settings,
    ids: IdGen,
    prev: Option<Sample>,
    last_inventory: Option<Instant>,
    units: Cached<Option<Vec<FailedUnit>>>,
    smart: Cached<Option<Vec<SmartDevice>>>,
    #[cfg(target_os = "linux")]
    os: linux::State,
}

impl Collector {
    pub fn new(settings: Settings) -> Collector {
        Collector {
            settings,
            ids: IdGen::new(),
            prev: None,
            last_inventory: None,
            units: Cached {
                value: None,
                at: None,
            },
            smart: Cached {
                value: None,
                at: None,
            },
            #[cfg(target_os = "linux")]
            os: linux::State::default(),
        }
    }

    pub fn host(&self) -> &str {
        &self.settings.host
    }

    /// Collects one report. `baseline` is the pause between the two samples of the first
    /// report; `interval` goes into the report as the time until the next one.
    pub fn collect(
        &mut self,
        interval: Duration,
        baseline: Duration,
        dropped_reports: u64,
    ) -> Report {
        let mut cur = self.sample();
        let prev = match self.prev.take() {
            Some(p) => p,
            None => {
                std::thread::sleep(baseline);
                std::mem::replace(&mut cur, self.sample())
            }
        };
        let secs = match (prev.at, cur.at) {
            (Some(a), Some(b)) => b.duration_since(a).as_secs_f64(),
            _ => 0.0,
        };
        let inventory = if self
            .last_inventory
            .is_none_or(|t| t.elapsed() >= self.settings.inventory_interval)
        {
            self.last_inventory = Some(Instant::now());
            Some(self.inventory(&cur))
        } else {
            None
        };
        let (memory, swap, load, uptime_secs) = self.gauges();
        let filesystems = self.filesystems(&prev, &cur, secs);
        let temperatures = self.temperatures();
        let (ticks, page) = clock();
        let units_every = self.settings.units_interval;
        let smart_every = self.settings.smart_interval;
        let smartctl = self.settings.smartctl.clone();
        let report = Report {
            schema_version: SCHEMA_VERSION,
            id: self.ids.next(&self.settings.host),
            host: self.settings.host.clone(),
            collected_at: Utc::now(),
            interval_secs: interval.as_secs_f64(),
            uptime_secs,
            inventory,
            cpu: cpu_between(&prev.stat, &cur.stat),
            load,
            memory,
            swap,
            filesystems,
            network: network_between(&prev.nets, &cur.nets, secs),
            temperatures,
            processes: processes_between(&prev.procs, &cur.procs, secs, ticks, page),
            systemd_failed_units: self.units.get(units_every, failed_units),
            smart: self.smart.get(smart_every, || smart(&smartctl)),
            dropped_reports,
        };
        // Names are only needed for the next top lists' pids and start times: keep it lean.
        cur.procs.iter_mut().for_each(|p| p.name = String::new());
        self.prev = Some(cur);
        report
    }

    #[cfg(target_os = "linux")]
    fn sample(&mut self) -> Sample {
        self.os.sample()
    }
    #[cfg(not(target_os = "linux"))]
    fn sample(&mut self) -> Sample {
        Sample {
            at: Some(Instant::now()),
            ..Sample::default()
        }
    }

    #[cfg(target_os = "linux")]
    fn gauges(&mut self) -> (Memory, Memory, Load, u64) {
        linux::gauges()
    }
    #[cfg(not(target_os = "linux"))]
    fn gauges(&mut self) -> (Memory, Memory, Load, u64) {
        (Memory::default(), Memory::default(), Load::default(), 0)
    }

    #[cfg(target_os = "linux")]
    fn filesystems(&mut self, prev: &Sample, cur: &Sample, secs: f64) -> Vec<Filesystem> {
        self.os.filesystems(prev, cur, secs)
    }
    #[cfg(not(target_os = "linux"))]
    fn filesystems(&mut self, _: &Sample, _: &Sample, _: f64) -> Vec<Filesystem> {
        Vec::new()
    }

    #[cfg(target_os = "linux")]
    fn temperatures(&mut self) -> Vec<Temperature> {
        linux::temperatures()
    }
    #[cfg(not(target_os = "linux"))]
    fn temperatures(&mut self) -> Vec<Temperature> {
        Vec::new()
    }

    fn inventory(&self, cur: &Sample) -> Inventory {
        #[cfg(target_os = "linux")]
        let mut inv = linux::inventory();
        #[cfg(not(target_os = "linux"))]
        let mut inv = Inventory {
            os: Some(std::env::consts::OS.to_owned()),
            ..Inventory::default()
        };
        inv.hostname = self.settings.host.clone();
        inv.arch = std::env::consts::ARCH.to_owned();
        inv.agent_version = env!("CARGO_PKG_VERSION").to_owned();
        if inv.cpu_cores == 0 {
            inv.cpu_cores = u32::try_from(cur.stat.cores.len()).unwrap_or(u32::MAX);
        }
        if inv.cpu_cores == 0 {
            inv.cpu_cores = std::thread::available_parallelism()
                .map_or(1, |n| u32::try_from(n.get()).unwrap_or(1));
        }
        inv
    }
}

/// Clock ticks per second and page size, for process figures.
fn clock() -> (u64, u64) {
    #[cfg(unix)]
    {
        (
            rustix::param::clock_ticks_per_second(),
            rustix::param::page_size() as u64,
        )
    }
    #[cfg(not(unix))]
    {
        (100, 4096)
    }
}

/// The system's host name, for when the configuration gives none.
pub fn system_host_name() -> Option<String> {
    #[cfg(unix)]
    let name = rustix::system::uname()
        .nodename()
        .to_string_lossy()
        .into_owned();
    #[cfg(not(unix))]
    let name = std::env::var("COMPUTERNAME").unwrap_or_default();
    // Keep the short, valid form: the hub knows hosts by name.
    let name = name.trim().to_owned();
    crate::config::check_host(&name).is_ok().then_some(name)
}

fn failed_units() -> Option<Vec<FailedUnit>> {
    #[cfg(target_os = "linux")]
    {
        command::failed_units()
    }
    #[cfg(not(target_os = "linux"))]
    {
        None
    }
}

fn smart(smartctl: &str) -> Option<Vec<SmartDevice>> {
    #[cfg(target_os = "linux")]
    {
        command::smart(smartctl)
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = smartctl;
        None
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use parse::parse_stat;

    #[test]
    fn cpu_rates_from_two_stat_readings() {
        let a = parse_stat(
            "cpu 100 0 100 800 0 0 0 0\ncpu0 50 0 50 400 0 0 0 0\ncpu1 50 0 50 400 0 0 0 0\n",
        );
        // +100 busy and +100 idle overall; core 0 fully busy, core 1 fully idle.
        let b = parse_stat(
            "cpu 150 0 150 900 0 0 0 0\ncpu0 100 0 100 400 0 0 0 0\ncpu1 50 0 50 500 0 0 0 0\n",
        );
        let cpu = cpu_between(&a, &b);
        assert_eq!(cpu.total_percent, 50.0);
        assert_eq!(cpu.per_core_percent, [100.0, 0.0]);
        // No time elapsed: zero, not NaN.
        assert_eq!(cpu_between(&a, &a).total_percent, 0.0);
    }

    #[test]
    fn iowait_counts_as_idle() {
        let a = parse_stat("cpu 0 0 0 0 0 0 0 0\n");
        let b = parse_stat("cpu 10 0 0 60 30 0 0 0\n");
        assert_eq!(cpu_between(&a, &b).total_percent, 10.0);
    }

    #[test]
    fn counter_rates() {
        assert_eq!(per_sec(1000, 3000, 2.0), 1000);
        assert_eq!(per_sec(5000, 100, 2.0), 0, "reset counter gives 0");
        assert_eq!(per_sec(0, 100, 0.0), 0);
    }

    #[test]
    fn network_rates_and_error_deltas() {
        let c = |rx, err| NetCounters {
            rx_bytes: rx,
            rx_errors: err,
            ..NetCounters::default()
        };
        let prev = vec![("eth0".to_owned(), c(1000, 2))];
        let cur = vec![
            ("eth0".to_owned(), c(31_000, 5)),
            ("wg0".to_owned(), c(500, 0)),
        ];
        let n = network_between(&prev, &cur, 10.0);
        assert_eq!(n[0].rx_bytes_per_sec, 3000);
        assert_eq!(n[0].rx_errors, 3);
        assert_eq!(n[1].name, "wg0");
        assert_eq!(n[1].rx_bytes_per_sec, 0);
    }

    fn p(pid: u32, start: u64, ticks: u64, rss: u64) -> PidStat {
        PidStat {
            pid,
            name: format!("p{pid}"),
            ticks,
            start,
            rss_pages: rss,
        }
    }

    #[test]
    fn top_processes() {
        let prev = vec![p(1, 1, 100, 10), p(2, 2, 100, 20), p(3, 3, 0, 5)];
        // pid 3 was reused by a new process (other start time): all its ticks are new.
        let cur = vec![
            p(1, 1, 150, 10),
            p(2, 2, 300, 20),
            p(3, 9, 20, 5),
            p(4, 8, 10, 1),
        ];
        let procs: Vec<PidStat> = (10..20)
            .map(|i| p(i, i.into(), 0, 100 + u64::from(i)))
            .collect();
        let cur: Vec<PidStat> = cur.into_iter().chain(procs).collect();
        // 2 s at 100 ticks/s = 200 ticks per core.
        let r = processes_between(&prev, &cur, 2.0, 100, 4096);
        assert_eq!(r.count, 14);
        let cpu: Vec<(u32, f64)> = r.top_cpu.iter().map(|x| (x.pid, x.cpu_percent)).collect();
        assert_eq!(cpu, [(2, 100.0), (1, 25.0), (3, 10.0), (4, 5.0), (10, 0.0)]);
        let mem: Vec<u32> = r.top_memory.iter().map(|x| x.pid).collect();
        assert_eq!(mem, [19, 18, 17, 16, 15]);
        assert_eq!(r.top_memory[0].rss_bytes, 119 * 4096);
    }

    #[test]
    fn ids_are_unique_and_ordered() {
        let mut a = IdGen::new();
        let mut b = IdGen::new();
        let (a1, a2, b1) = (a.next("web-1"), a.next("web-1"), b.next("web-1"));
        assert!(a1.starts_with("web-1-") && a1.ends_with("-1"));
        assert!(a2.ends_with("-2"));
        assert_ne!(a1, b1, "two runs draw different tokens");
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn collects_this_host() {
        let mut c = Collector::new(Settings {
            host: "test-host".into(),
            inventory_interval: Duration::from_secs(3600),
            units_interval: Duration::from_secs(3600),
            smart_interval: Duration::from_secs(3600),
            smartctl: "/nonexistent/smartctl".into(),
        });
        let r = c.collect(Duration::from_secs(30), Duration::from_millis(100), 7);
        assert_eq!(r.host, "test-host");
        assert_eq!(r.dropped_reports, 7);
        assert!(r.memory.total_bytes > 0);
        assert!(r.memory.used_bytes <= r.memory.total_bytes);
        assert!(!r.cpu.per_core_percent.is_empty());
        assert!((0.0..=100.0).contains(&r.cpu.total_percent));
        assert!(r.processes.count > 0);
        assert!(
            r.processes
                .top_memory
                .iter()
                .any(|p| p.pid == std::process::id())
                || r.processes.count > TOP as u32
        );
        assert!(
            r.inventory
                .as_ref()
                .is_some_and(|i| i.memory_bytes > 0 && i.kernel.is_some())
        );
        assert_eq!(r.smart, None, "no smartctl at that path");
        let second = c.collect(Duration::from_secs(30), Duration::ZERO, 0);
        assert!(second.inventory.is_none(), "inventory only once an hour");
        assert_ne!(second.id, r.id);
    }
}
