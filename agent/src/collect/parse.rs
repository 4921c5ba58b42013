//! Parsers for the kernel's text files and the tools' outputs. Pure functions of the text, so
//! they are tested on fixtures on any platform; malformed lines are skipped, never fatal.

use std::collections::HashSet;

use crate::report::{FailedUnit, Load, SmartDevice};

/// Jiffies spent busy and in total, since boot.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CpuTimes {
    pub busy: u64,
    pub total: u64,
}

/// `/proc/stat`: the `cpu` line and the `cpuN` lines.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stat {
    pub total: CpuTimes,
    pub cores: Vec<CpuTimes>,
}

fn cpu_times(fields: &[u64]) -> CpuTimes {
    // user nice system idle iowait irq softirq steal [guest guest_nice]: guest time is already
    // counted in user and nice, so it is left out of the total.
    let total: u64 = fields.iter().take(8).sum();
    let idle = fields.get(3).copied().unwrap_or(0) + fields.get(4).copied().unwrap_or(0);
    CpuTimes {
        busy: total.saturating_sub(idle),
        total,
    }
}

pub fn parse_stat(text: &str) -> Stat {
    let mut stat = Stat::default();
    for line in text.lines() {
        let mut words = line.split_ascii_whitespace();
        let Some(name) = words.next() else { continue };
        let Some(rest) = name.strip_prefix("cpu") else {
            continue;
        };
        let fields: Vec<u64> = words.map_while(|w| w.parse().ok()).collect();
        if fields.len() < 4 {
            continue;
        }
        if rest.is_empty() {
            stat.total = cpu_times(&fields);
        } else if rest.parse::<u32>().is_ok() {
            stat.cores.push(cpu_times(&fields));
        }
    }
    stat
}

pub fn parse_loadavg(text: &str) -> Option<Load> {
    let mut w = text.split_ascii_whitespace().map(|w| w.parse::<f64>().ok());
    Some(Load {
        one: w.next()??,
        five: w.next()??,
        fifteen: w.next()??,
    })
}

/// `/proc/uptime`: whole seconds since boot.
pub fn parse_uptime(text: &str) -> Option<u64> {
    let secs: f64 = text.split_ascii_whitespace().next()?.parse().ok()?;
    Some(secs as u64)
}

/// The `/proc/meminfo` lines the report needs, in bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MemInfo {
    pub mem_total: u64,
    pub mem_available: u64,
    pub swap_total: u64,
    pub swap_free: u64,
}

pub fn parse_meminfo(text: &str) -> MemInfo {
    let (mut total, mut available, mut free, mut buffers, mut cached) = (0, None, 0, 0, 0);
    let (mut swap_total, mut swap_free) = (0, 0);
    for line in text.lines() {
        let Some((key, rest)) = line.split_once(':') else {
            continue;
        };
        let mut w = rest.split_ascii_whitespace();
        let Some(n) = w.next().and_then(|n| n.parse::<u64>().ok()) else {
            continue;
        };
        let bytes = if w.next() == Some("kB") { n * 1024 } else { n };
        match key {
            "MemTotal" => total = bytes,
            "MemAvailable" => available = Some(bytes),
            "MemFree" => free = bytes,
            "Buffers" => buffers = bytes,
            "Cached" => cached = bytes,
            "SwapTotal" => swap_total = bytes,
            "SwapFree" => swap_free = bytes,
            _ => {}
        }
    }
    // Kernels before 3.14 have no MemAvailable: approximate it.
    let mem_available = available.unwrap_or(free + buffers + cached).min(total);
    MemInfo {
        mem_total: total,
        mem_available,
        swap_total,
        swap_free: swap_free.min(swap_total),
    }
}

/// Bytes read and written by one block device since boot.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DiskCounters {
    pub read_bytes: u64,
    pub write_bytes: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiskLine {
    pub dev: (u32, u32),
    pub name: String,
    pub counters: DiskCounters,
}

/// `/proc/diskstats`. Sectors there are always 512 bytes, whatever the device's own size.
pub fn parse_diskstats(text: &str) -> Vec<DiskLine> {
    let mut out = Vec::new();
    for line in text.lines() {
        let w: Vec<&str> = line.split_ascii_whitespace().collect();
        if w.len() < 10 {
            continue;
        }
        let (Ok(major), Ok(minor), Ok(read), Ok(written)) = (
            w[0].parse(),
            w[1].parse(),
            w[5].parse::<u64>(),
            w[9].parse::<u64>(),
        ) else {
            continue;
        };
        out.push(DiskLine {
            dev: (major, minor),
            name: w[2].to_owned(),
            counters: DiskCounters {
                read_bytes: read * 512,
                write_bytes: written * 512,
            },
        });
    }
    out
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NetCounters {
    pub rx_bytes: u64,
    pub rx_errors: u64,
    pub rx_drops: u64,
    pub tx_bytes: u64,
    pub tx_errors: u64,
    pub tx_drops: u64,
}

/// `/proc/net/dev`, loopback left out.
pub fn parse_net_dev(text: &str) -> Vec<(String, NetCounters)> {
    let mut out = Vec::new();
    for line in text.lines() {
        let Some((name, rest)) = line.split_once(':') else {
            continue;
        };
        let name = name.trim();
        if name == "lo" || name.contains('|') {
            continue;
        }
        let f: Vec<u64> = rest
            .split_ascii_whitespace()
            .map_while(|w| w.parse().ok())
            .collect();
        if f.len() < 12 {
            continue;
        }
        out.push((
            name.to_owned(),
            NetCounters {
                rx_bytes: f[0],
                rx_errors: f[2],
                rx_drops: f[3],
                tx_bytes: f[8],
                tx_errors: f[10],
                tx_drops: f[11],
            },
        ));
    }
    out
}

/// One line of `/proc/self/mountinfo`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    pub dev: (u32, u32),
    pub mount: String,
    pub fs_type: String,
    pub source: String,
}

/// Undoes the kernel's octal escapes (`\040` for a space) in mount fields.
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 3 < b.len() {
            let oct = &b[i + 1..i + 4];
            if oct.iter().all(|c| (b'0'..=b'7').contains(c)) {
                let v = oct
                    .iter()
                    .fold(0u32, |acc, c| acc * 8 + u32::from(c - b'0'));
                if let Ok(v) = u8::try_from(v) {
                    out.push(v);
                    i += 4;
                    continue;
                }
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `/proc/self/mountinfo`: `ID PARENT MAJ:MIN ROOT MOUNT OPTS [OPTIONAL...] - TYPE SOURCE SUPER`.
pub fn parse_mountinfo(text: &str) -> Vec<Mount> {
    let mut out = Vec::new();
    for line in text.lines() {
        let Some((left, right)) = line.split_once(" - ") else {
            continue;
        };
        let l: Vec<&str> = left.split(' ').collect();
        let r: Vec<&str> = right.split(' ').collect();
        if l.len() < 5 || r.len() < 2 {
            continue;
        }
        let Some((maj, min)) = l[2].split_once(':') else {
            continue;
        };
        let (Ok(maj), Ok(min)) = (maj.parse(), min.parse()) else {
            continue;
        };
        out.push(Mount {
            dev: (maj, min),
            mount: unescape(l[4]),
            fs_type: r[0].to_owned(),
            source: unescape(r[1]),
        });
    }
    out
}

/// Filesystems that hold data someone cares about. Pseudo and read-only image filesystems
/// (proc, tmpfs, squashfs snaps…) are left out.
const DATA_FS: &[&str] = &[
    "ext2", "ext3", "ext4", "xfs", "btrfs", "zfs", "f2fs", "jfs", "reiserfs", "bcachefs", "nilfs2",
    "vfat", "msdos", "exfat", "ntfs", "ntfs3", "fuseblk", "hfsplus", "ocfs2", "gfs2",
];

/// Network filesystems: statvfs on a dead server can block, so they are probed with a time limit.
pub const NETWORK_FS: &[&str] = &[
    "nfs",
    "nfs4",
    "cifs",
    "smb3",
    "smbfs",
    "ceph",
    "glusterfs",
    "fuse.glusterfs",
    "fuse.sshfs",
    "9p",
    "virtiofs",
    "lustre",
    "fuse.cephfs",
];

pub fn is_network_fs(fs_type: &str) -> bool {
    NETWORK_FS.contains(&fs_type)
}

/// The mounts to report: data and network filesystems, plus an overlay root (containers); each
/// device once (bind mounts and btrfs subvolumes repeat it), at its first mount point.
pub fn select_filesystems(mounts: Vec<Mount>) -> Vec<Mount> {
    let mut seen: HashSet<((u32, u32), String)> = HashSet::new();
    let mut out = Vec::new();
    for m in mounts {
        let wanted = DATA_FS.contains(&m.fs_type.as_str())
            || is_network_fs(&m.fs_type)
            || (m.fs_type == "overlay" && m.mount == "/");
        // Network mounts share an anonymous device number per superblock; key by source too.
        if wanted && seen.insert((m.dev, m.source.clone())) {
            out.push(m);
        }
    }
    out
}

/// The fields of `/proc/PID/stat` the report needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PidStat {
    pub pid: u32,
    pub name: String,
    /// utime + stime, in clock ticks.
    pub ticks: u64,
    /// Start time since boot, in clock ticks: tells a reused pid from the old process.
    pub start: u64,
    pub rss_pages: u64,
}

pub fn parse_pid_stat(text: &str) -> Option<PidStat> {
    // The name is in parentheses and may itself hold spaces and parentheses: cut at the last ')'.
    let open = text.find('(')?;
    let close = text.rfind(')')?;
    let pid = text[..open].trim().parse().ok()?;
    let name = text.get(open + 1..close)?.to_owned();
    // Fields from the 3rd (state) on; the n-th field of proc(5) is at index n - 3.
    let f: Vec<&str> = text.get(close + 1..)?.split_ascii_whitespace().collect();
    let num = |n: usize| f.get(n - 3).and_then(|v| v.parse::<u64>().ok());
    Some(PidStat {
        pid,
        name,
        ticks: num(14)? + num(15)?,
        start: num(22)?,
        rss_pages: num(24)?,
    })
}

/// `PRETTY_NAME` from os-release.
pub fn parse_os_release(text: &str) -> Option<String> {
    let mut name = None;
    for line in text.lines() {
        if let Some((k, v)) = line.split_once('=') {
            let v = v.trim().trim_matches('"').trim_matches('\'').to_owned();
            match k.trim() {
                "PRETTY_NAME" if !v.is_empty() => return Some(v),
                "NAME" if !v.is_empty() => name = Some(v),
                _ => {}
            }
        }
    }
    name
}

/// The CPU model from `/proc/cpuinfo` (`model name` on x86, `Model`/`Hardware` on ARM boards).
pub fn parse_cpu_model(text: &str) -> Option<String> {
    let mut fallback = None;
    for line in text.lines() {
        let Some((k, v)) = line.split_once(':') else {
            continue;
        };
        let (k, v) = (k.trim(), v.trim());
        if v.is_empty() {
            continue;
        }
        match k {
            "model name" => return Some(v.to_owned()),
            "Model" | "Hardware" | "cpu model" | "cpu" if fallback.is_none() => {
                fallback = Some(v.to_owned())
            }
            _ => {}
        }
    }
    fallback
}

/// Local IPv4 addresses from `/proc/net/fib_trie`: the `/32 host LOCAL` leaves, loopback left
/// out. (No netlink: it would need a dependency for a list that changes rarely.)
pub fn parse_fib_trie_local(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut last: Option<&str> = None;
    for line in text.lines() {
        let t = line.trim_start();
        if let Some(addr) = t.strip_prefix("|-- ") {
            last = Some(addr.trim());
        } else if t.starts_with("/32 host LOCAL")
            && let Some(a) = last.take()
            && !a.starts_with("127.")
            && !out.iter().any(|o| o == a)
        {
            out.push(a.to_owned());
        }
    }
    out
}

/// Global IPv6 addresses from `/proc/net/if_inet6` (loopback and link-local left out).
pub fn parse_if_inet6(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in text.lines() {
        let w: Vec<&str> = line.split_ascii_whitespace().collect();
        if w.len() < 6 || w[0].len() != 32 {
            continue;
        }
        let Ok(bits) = u128::from_str_radix(w[0], 16) else {
            continue;
        };
        let ip = std::net::Ipv6Addr::from(bits);
        let scope = u8::from_str_radix(w[3], 16).unwrap_or(0);
        // Scope 0 is global; 0x20 link, 0x10 host.
        if scope == 0 && !ip.is_loopback() {
            out.push(ip.to_string());
        }
    }
    out
}

/// `systemctl --failed --plain --no-legend`: `UNIT LOAD ACTIVE SUB DESCRIPTION...`.
pub fn parse_failed_units(text: &str) -> Vec<FailedUnit> {
    let mut out = Vec::new();
    for line in text.lines() {
        // Some versions still print a status bullet.
        let line = line.trim().trim_start_matches(['●', '*', '×']).trim_start();
        let mut w = line
            .splitn(5, char::is_whitespace)
            .filter(|s| !s.is_empty());
        let (Some(unit), Some(load), Some(active), Some(sub)) =
            (w.next(), w.next(), w.next(), w.next())
        else {
            continue;
        };
        let description = line
            .split_whitespace()
            .skip(4)
            .collect::<Vec<_>>()
            .join(" ");
        out.push(FailedUnit {
            unit: unit.to_owned(),
            load: load.to_owned(),
            active: active.to_owned(),
            sub: sub.to_owned(),
            description,
        });
    }
    out
}

/// `smartctl --scan`: `DEVICE -d TYPE # comment`. The type is passed back to `smartctl -H`.
pub fn parse_smart_scan(text: &str) -> Vec<(String, Option<String>)> {
    let mut out = Vec::new();
    for line in text.lines() {
        let before_comment = line.split('#').next().unwrap_or_default();
        let w: Vec<&str> = before_comment.split_ascii_whitespace().collect();
        let Some(dev) = w.first() else { continue };
        if !dev.starts_with('/') {
            continue;
        }
        let kind = w
            .iter()
            .position(|x| *x == "-d")
            .and_then(|i| w.get(i + 1))
            .map(|s| (*s).to_owned());
        out.push(((*dev).to_owned(), kind));
    }
    out
}

/// `smartctl -H -j`: `None` when the answer has no verdict (no permission, no SMART).
pub fn parse_smart_health(device: &str, json: &[u8]) -> Option<SmartDevice> {
    let v: serde_json::Value = serde_json::from_slice(json).ok()?;
    let passed = v.get("smart_status")?.get("passed")?.as_bool()?;
    let model = ["model_name", "scsi_model_name", "model_family"]
        .iter()
        .find_map(|k| v.get(*k).and_then(|m| m.as_str()))
        .map(str::to_owned);
    Some(SmartDevice {
        device: device.to_owned(),
        model,
        passed,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    const STAT: &str = "\
cpu  10132153 290696 3084719 46828483 16683 0 25195 0 175628 0
cpu0 1393280 32966 572056 13343292 6130 0 17875 0 23933 0
cpu1 1335345 40568 611297 2952324 1836 0 2436 0 24113 0
intr 1462898 0 0
ctxt 115315
btime 1710000000
processes 20000
procs_running 2
cpufreq 3
";

    #[test]
    fn stat_total_and_cores() {
        let s = parse_stat(STAT);
        assert_eq!(s.cores.len(), 2);
        let total = 10132153 + 290696 + 3084719 + 46828483 + 16683 + 25195;
        assert_eq!(s.total.total, total);
        assert_eq!(s.total.busy, total - 46828483 - 16683);
        assert_eq!(s.cores[1].busy, 1335345 + 40568 + 611297 + 2436);
    }

    #[test]
    fn loadavg_and_uptime() {
        let l = parse_loadavg("0.52 1.25 2.00 2/345 12345\n").unwrap();
        assert_eq!((l.one, l.five, l.fifteen), (0.52, 1.25, 2.0));
        assert!(parse_loadavg("garbage").is_none());
        assert_eq!(parse_uptime("350735.47 234388.90\n"), Some(350735));
    }

    #[test]
    fn meminfo_in_bytes() {
        let m = parse_meminfo(
            "MemTotal:       16303428 kB\nMemFree:          512000 kB\nMemAvailable:    8000000 kB\n\
             Buffers:          100 kB\nCached:          1000 kB\nSwapTotal:       2097148 kB\n\
             SwapFree:        2000000 kB\nHugePages_Total:       0\n",
        );
        assert_eq!(m.mem_total, 16303428 * 1024);
        assert_eq!(m.mem_available, 8000000 * 1024);
        assert_eq!(m.swap_total, 2097148 * 1024);
        assert_eq!(m.swap_free, 2000000 * 1024);
        let old =
            parse_meminfo("MemTotal: 1000 kB\nMemFree: 100 kB\nBuffers: 50 kB\nCached: 200 kB\n");
        assert_eq!(old.mem_available, 350 * 1024);
    }

    #[test]
    fn diskstats_sectors_are_512_bytes() {
        let d = parse_diskstats(
            "   8       0 sda 1000 10 2048 500 2000 20 4096 800 0 900 1300 0 0 0 0\n\
             \x20 259       1 nvme0n1p1 5 0 8 1 0 0 0 0 0 1 1\n\
             broken line\n",
        );
        assert_eq!(d.len(), 2);
        assert_eq!(d[0].dev, (8, 0));
        assert_eq!(d[0].name, "sda");
        assert_eq!(
            d[0].counters,
            DiskCounters {
                read_bytes: 2048 * 512,
                write_bytes: 4096 * 512
            }
        );
        assert_eq!(d[1].name, "nvme0n1p1");
    }

    #[test]
    fn net_dev_skips_header_and_loopback() {
        let n = parse_net_dev(
            "Inter-|   Receive                                                |  Transmit\n \
             face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n    \
             lo: 1000 10 0 0 0 0 0 0 1000 10 0 0 0 0 0 0\n  \
             eth0: 123456 100 3 4 0 0 0 0 654321 90 5 6 0 0 0 0\n",
        );
        assert_eq!(n.len(), 1);
        assert_eq!(n[0].0, "eth0");
        assert_eq!(
            n[0].1,
            NetCounters {
                rx_bytes: 123456,
                rx_errors: 3,
                rx_drops: 4,
                tx_bytes: 654321,
                tx_errors: 5,
                tx_drops: 6
            }
        );
    }

    const MOUNTINFO: &str = "\
22 27 0:21 / /proc rw,relatime - proc proc rw
27 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw
28 27 8:17 / /srv/my\\040data rw,relatime - xfs /dev/sdb1 rw
29 27 8:17 / /mnt/bind rw,relatime - xfs /dev/sdb1 rw
30 27 0:45 / /home rw - btrfs /dev/sdc rw,subvol=/home
31 27 0:45 /snap /snapshots rw - btrfs /dev/sdc rw
32 27 0:50 / /mnt/nfs rw - nfs4 server:/export rw
33 27 7:0 / /snap/core/1 ro - squashfs /dev/loop0 ro
34 27 0:23 / /run rw - tmpfs tmpfs rw
";

    #[test]
    fn mountinfo_selection() {
        let all = parse_mountinfo(MOUNTINFO);
        assert_eq!(all.len(), 9);
        assert_eq!(all[2].mount, "/srv/my data");
        assert_eq!(all[1].dev, (254, 0));
        let picked = select_filesystems(all);
        let mounts: Vec<&str> = picked.iter().map(|m| m.mount.as_str()).collect();
        assert_eq!(mounts, ["/", "/srv/my data", "/home", "/mnt/nfs"]);
        assert_eq!(picked[3].fs_type, "nfs4");
        assert!(is_network_fs(&picked[3].fs_type));
    }

    #[test]
    fn overlay_root_counts_in_containers() {
        let m = parse_mountinfo(
            "1 0 0:30 / / rw - overlay overlay rw\n2 1 0:31 / /x rw - overlay overlay rw\n",
        );
        let picked = select_filesystems(m);
        assert_eq!(picked.len(), 1);
        assert_eq!(picked[0].mount, "/");
    }

    #[test]
    fn unescape_octal() {
        assert_eq!(unescape("a\\040b\\011c\\134d"), "a b\tc\\d");
        assert_eq!(unescape("end\\04"), "end\\04");
    }

    #[test]
    fn pid_stat_with_awkward_name() {
        let s = parse_pid_stat(
            "4242 (my (odd) proc) S 1 4242 4242 0 -1 4194560 1000 0 0 0 150 50 0 0 20 0 3 0 777 123456789 2500 \
             18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0",
        )
        .unwrap();
        assert_eq!(s.pid, 4242);
        assert_eq!(s.name, "my (odd) proc");
        assert_eq!(s.ticks, 200);
        assert_eq!(s.start, 777);
        assert_eq!(s.rss_pages, 2500);
        assert!(parse_pid_stat("12 (x) S 1").is_none());
    }

    #[test]
    fn os_release_and_cpu_model() {
        assert_eq!(
            parse_os_release(
                "NAME=\"Debian GNU/Linux\"\nPRETTY_NAME=\"Debian GNU/Linux 13 (trixie)\"\n"
            )
            .as_deref(),
            Some("Debian GNU/Linux 13 (trixie)")
        );
        assert_eq!(parse_os_release("NAME=Alpine\n").as_deref(), Some("Alpine"));
        assert_eq!(
            parse_cpu_model("processor\t: 0\nvendor_id\t: GenuineIntel\nmodel name\t: Intel(R) Xeon(R) CPU @ 2.20GHz\n")
                .as_deref(),
            Some("Intel(R) Xeon(R) CPU @ 2.20GHz")
        );
        assert_eq!(
            parse_cpu_model("processor : 0\nModel : Raspberry Pi 4\n").as_deref(),
            Some("Raspberry Pi 4")
        );
    }

    #[test]
    fn addresses() {
        let trie = "\
Main:
  +-- 0.0.0.0/0 3 0 5
     |-- 0.0.0.0
        /0 universe UNICAST
     +-- 127.0.0.0/8 2 0 2
        |-- 127.0.0.1
           /32 host LOCAL
     |-- 192.168.1.0
        /24 link UNICAST
     |-- 192.168.1.20
        /32 host LOCAL
Local:
     |-- 192.168.1.20
        /32 host LOCAL
";
        assert_eq!(parse_fib_trie_local(trie), ["192.168.1.20"]);
        let inet6 = "\
00000000000000000000000000000001 01 80 10 80       lo
fe800000000000000000000000000001 02 40 20 80     eth0
20010db8000000000000000000000042 02 40 00 00     eth0
";
        assert_eq!(parse_if_inet6(inet6), ["2001:db8::42"]);
    }

    #[test]
    fn failed_units() {
        let u = parse_failed_units(
            "nginx.service loaded failed failed A high performance web server\n\
             ● backup.timer  loaded failed failed Nightly backup\n\n",
        );
        assert_eq!(u.len(), 2);
        assert_eq!(u[0].unit, "nginx.service");
        assert_eq!(u[0].sub, "failed");
        assert_eq!(u[0].description, "A high performance web server");
        assert_eq!(u[1].unit, "backup.timer");
        assert_eq!(u[1].description, "Nightly backup");
    }

    #[test]
    fn smart_scan_and_health() {
        let scan = parse_smart_scan(
            "/dev/sda -d sat # /dev/sda [SAT], ATA device\n/dev/nvme0 -d nvme # /dev/nvme0, NVMe device\n# nothing\n",
        );
        assert_eq!(
            scan,
            [
                ("/dev/sda".to_owned(), Some("sat".to_owned())),
                ("/dev/nvme0".to_owned(), Some("nvme".to_owned()))
            ]
        );
        let ok = parse_smart_health(
            "/dev/sda",
            br#"{"smartctl":{"exit_status":0},"model_name":"WDC WD40","smart_status":{"passed":true}}"#,
        )
        .unwrap();
        assert!(ok.passed);
        assert_eq!(ok.model.as_deref(), Some("WDC WD40"));
        let bad = parse_smart_health("/dev/sdb", br#"{"smart_status":{"passed":false}}"#).unwrap();
        assert!(!bad.passed);
        assert!(parse_smart_health("/dev/sdc", br#"{"smartctl":{"exit_status":2}}"#).is_none());
        assert!(parse_smart_health("/dev/sdc", b"Permission denied").is_none());
    }
}
