//! Reports the hub has not acknowledged yet, one file each, so none is lost while the hub or the
//! network is down.
//!
//! - A file is named by a number that only grows (microseconds since the epoch, bumped past the
//!   last name used), zero-padded: name order is collection order, and replay goes oldest first.
//! - Written as `NAME.tmp`, synced, then renamed to `NAME.json`: a crash leaves either the whole
//!   report or a `.tmp` that the next start deletes.
//! - Bounded by total size and by age (taken from the name); the oldest go first. Each drop is
//!   counted, plus the drops the dropped report itself was carrying, in the `dropped` file, so
//!   the count survives a restart and reaches the hub in the next report.
//! - A file that cannot be a report (not JSON, no `id`) is moved to `corrupt/` (the newest
//!   [`KEEP_CORRUPT`] are kept for inspection) and counted as dropped: it never blocks the queue.
//! - A file is removed only after the hub acknowledged it.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Corrupt files kept in `corrupt/` for a look; older ones are deleted.
pub const KEEP_CORRUPT: usize = 16;
/// Larger files are not reports from this agent.
const MAX_FILE: u64 = 16 << 20;
const DROPPED_FILE: &str = "dropped";
const CORRUPT_DIR: &str = "corrupt";

/// A spooled report: its name's number.
pub type Entry = u128;

/// Why a spooled report could not be read.
#[derive(Debug)]
pub enum ReadError {
    /// Unreadable or not a report: moved aside (or deleted) and counted already.
    Corrupt(String),
    /// Deleted by someone else: forgotten, not counted.
    Gone,
}

pub struct Spool {
    dir: PathBuf,
    max_bytes: u64,
    max_age: Duration,
    /// Entry → size in bytes.
    entries: BTreeMap<Entry, u64>,
    total: u64,
    dropped: u64,
    last_name: Entry,
}

impl Spool {
    /// Opens (creating it if needed) the spool directory: deletes leftover temporary files,
    /// moves misnamed files aside, and loads the dropped count.
    pub fn open(dir: &Path, max_bytes: u64, max_age: Duration) -> io::Result<Spool> {
        fs::create_dir_all(dir)?;
        let mut spool = Spool {
            dir: dir.to_owned(),
            max_bytes,
            max_age,
            entries: BTreeMap::new(),
            total: 0,
            dropped: 0,
            last_name: 0,
        };
        spool.dropped = match fs::read_to_string(dir.join(DROPPED_FILE)) {
            Ok(s) => s.trim().parse().unwrap_or_else(|_| {
                crate::warn!(
                    "spool: {} is unreadable, dropped count restarts at 0",
                    dir.join(DROPPED_FILE).display()
                );
                0
            }),
            Err(_) => 0,
        };
        for item in fs::read_dir(dir)? {
            let item = item?;
            let name = item.file_name();
            let Some(name) = name.to_str() else { continue };
            let path = item.path();
            if name.ends_with(".tmp") {
                crate::info!("spool: removing unfinished {}", path.display());
                let _ = fs::remove_file(&path);
                continue;
            }
            let Some(stem) = name.strip_suffix(".json") else {
                continue;
            };
            let meta = item.metadata()?;
            match stem.parse::<Entry>() {
                Ok(n) if meta.is_file() && stem.len() == 20 => {
                    spool.entries.insert(n, meta.len());
                    spool.total += meta.len();
                    spool.last_name = spool.last_name.max(n);
                }
                _ => {
                    spool.set_aside_path(&path, "not a spool file name");
                    spool.dropped += 1;
                }
            }
        }
        spool.save_dropped();
        Ok(spool)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn total_bytes(&self) -> u64 {
        self.total
    }

    /// Reports dropped and not yet carried by a report.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// A report carrying `n` drops has been delivered or spooled.
    pub fn settle_dropped(&mut self, n: u64) {
        if n > 0 {
            self.dropped = self.dropped.saturating_sub(n);
            self.save_dropped();
        }
    }

    /// Counts reports lost outside the spool (refused by the hub, or unwritable).
    pub fn count_dropped(&mut self, n: u64) {
        if n > 0 {
            self.dropped = self.dropped.saturating_add(n);
            self.save_dropped();
        }
    }

    pub fn oldest(&self) -> Option<Entry> {
        self.entries.keys().next().copied()
    }

    fn path(&self, entry: Entry) -> PathBuf {
        self.dir.join(format!("{entry:020}.json"))
    }

    /// Adds a report, then applies the bounds (which may drop it at once if it alone is larger
    /// than the size bound).
    pub fn push(&mut self, report: &[u8], now: SystemTime) -> io::Result<Entry> {
        let micros = now
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_micros();
        let entry = micros.max(self.last_name + 1);
        let path = self.path(entry);
        let tmp = path.with_extension("tmp");
        let written = (|| {
            let mut f = File::create(&tmp)?;
            f.write_all(report)?;
            f.sync_all()?;
            fs::rename(&tmp, &path)
        })();
        if let Err(e) = written {
            let _ = fs::remove_file(&tmp);
            return Err(e);
        }
        sync_dir(&self.dir);
        self.last_name = entry;
        self.entries.insert(entry, report.len() as u64);
        self.total += report.len() as u64;
        self.enforce(now);
        Ok(entry)
    }

    /// Drops the oldest reports while one is older than the age bound or the total is over the
    /// size bound. Returns how many went.
    pub fn enforce(&mut self, now: SystemTime) -> usize {
        let now_micros = now
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_micros();
        let oldest_kept = now_micros.saturating_sub(self.max_age.as_micros());
        let mut gone = 0;
        while let Some((&entry, _)) = self.entries.first_key_value() {
            if entry >= oldest_kept && self.total <= self.max_bytes {
                break;
            }
            let why = if entry < oldest_kept {
                "older than spool_max_age"
            } else {
                "spool over spool_max_bytes"
            };
            self.drop_entry(entry, why);
            gone += 1;
        }
        gone
    }

    /// Reads a report; a corrupt one is moved aside and counted, and the caller goes on.
    pub fn read(&mut self, entry: Entry) -> Result<Vec<u8>, ReadError> {
        let path = self.path(entry);
        let bytes = match fs::metadata(&path) {
            Ok(m) if m.len() > MAX_FILE => Err(format!("{} bytes", m.len())),
            Ok(_) => fs::read(&path).map_err(|e| e.to_string()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                // Deleted behind our back: nothing to send, nothing to count.
                self.forget(entry);
                return Err(ReadError::Gone);
            }
            Err(e) => Err(e.to_string()),
        };
        match bytes.and_then(|b| check_report(&b).map(|()| b)) {
            Ok(b) => Ok(b),
            Err(problem) => {
                self.set_aside_path(&path, &problem);
                self.forget(entry);
                self.count_dropped(1);
                Err(ReadError::Corrupt(problem))
            }
        }
    }

    /// The hub acknowledged this report.
    pub fn remove(&mut self, entry: Entry) {
        if let Err(e) = fs::remove_file(self.path(entry))
            && e.kind() != io::ErrorKind::NotFound
        {
            crate::error!("spool: cannot remove {}: {e}", self.path(entry).display());
        }
        self.forget(entry);
    }

    /// Removes a report that fell out of the bounds (or that the hub will never take), counting
    /// it and the drops it carried, with a log line.
    pub fn drop_entry(&mut self, entry: Entry, why: &str) {
        crate::warn!("spool: dropping {} ({why})", self.path(entry).display());
        self.discard(entry);
    }

    /// [`Spool::drop_entry`] without the log line, for callers that log a summary.
    pub fn discard(&mut self, entry: Entry) {
        let path = self.path(entry);
        let carried = fs::read(&path)
            .ok()
            .and_then(|b| serde_json::from_slice::<Carried>(&b).ok())
            .map_or(0, |c| c.dropped_reports);
        if let Err(e) = fs::remove_file(&path)
            && e.kind() != io::ErrorKind::NotFound
        {
            crate::error!("spool: cannot remove {}: {e}", path.display());
        }
        self.forget(entry);
        self.count_dropped(1 + carried);
    }

    fn forget(&mut self, entry: Entry) {
        if let Some(size) = self.entries.remove(&entry) {
            self.total -= size;
        }
    }

    fn set_aside_path(&self, path: &Path, problem: &str) {
        let corrupt = self.dir.join(CORRUPT_DIR);
        let target = path.file_name().map(|n| corrupt.join(n));
        let moved = target.as_ref().is_some_and(|t| {
            fs::create_dir_all(&corrupt)
                .and_then(|()| fs::rename(path, t))
                .is_ok()
        });
        if moved {
            crate::error!(
                "spool: {} is corrupt ({problem}); moved to {}",
                path.display(),
                corrupt.display()
            );
            prune_corrupt(&corrupt);
        } else {
            crate::error!(
                "spool: {} is corrupt ({problem}); deleting it",
                path.display()
            );
            let _ = fs::remove_file(path);
        }
    }

    fn save_dropped(&self) {
        let path = self.dir.join(DROPPED_FILE);
        let tmp = self.dir.join("dropped.tmp");
        let result =
            fs::write(&tmp, format!("{}\n", self.dropped)).and_then(|()| fs::rename(&tmp, &path));
        if let Err(e) = result {
            crate::error!(
                "spool: cannot save the dropped count in {}: {e}",
                path.display()
            );
        }
    }
}

/// The part of a spooled report read when dropping it.
#[derive(serde::Deserialize)]
struct Carried {
    #[serde(default)]
    dropped_reports: u64,
}

/// A spooled file must at least be a JSON object with a string `id`; the hub judges the rest.
fn check_report(bytes: &[u8]) -> Result<(), String> {
    #[derive(serde::Deserialize)]
    struct Head {
        id: String,
    }
    match serde_json::from_slice::<Head>(bytes) {
        Ok(h) if !h.id.is_empty() => Ok(()),
        Ok(_) => Err("empty id".into()),
        Err(e) => Err(format!("not a report: {e}")),
    }
}

fn prune_corrupt(dir: &Path) {
    let Ok(items) = fs::read_dir(dir) else { return };
    let mut names: Vec<PathBuf> = items.filter_map(|i| i.ok().map(|i| i.path())).collect();
    names.sort();
    let excess = names.len().saturating_sub(KEEP_CORRUPT);
    for old in &names[..excess] {
        let _ = fs::remove_file(old);
    }
}

/// Makes a rename durable; best effort (not every platform can open a directory).
fn sync_dir(dir: &Path) {
    #[cfg(unix)]
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
    #[cfg(not(unix))]
    let _ = dir;
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    struct TempDir(PathBuf);
    impl TempDir {
        fn new(name: &str) -> TempDir {
            let nanos = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap()
                .as_nanos();
            let p = std::env::temp_dir()
                .join(format!("vigie-spool-{}-{name}-{nanos}", std::process::id()));
            fs::create_dir_all(&p).unwrap();
            TempDir(p)
        }
    }
    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    fn report(id: &str, dropped: u64) -> Vec<u8> {
        format!(r#"{{"schema_version":1,"id":"{id}","host":"h","dropped_reports":{dropped},"pad":"{}"}}"#, "x".repeat(100))
            .into_bytes()
    }

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_700_000_000 + secs)
    }

    fn id_of(bytes: &[u8]) -> String {
        serde_json::from_slice::<serde_json::Value>(bytes).unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    fn json_files(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.ends_with(".json"))
            .collect();
        v.sort();
        v
    }

    #[test]
    fn replays_in_push_order_even_when_the_clock_goes_back() {
        let t = TempDir::new("order");
        let mut s = Spool::open(&t.0, 1 << 20, Duration::from_secs(3600)).unwrap();
        s.push(&report("a", 0), at(100)).unwrap();
        s.push(&report("b", 0), at(50)).unwrap(); // clock stepped back
        s.push(&report("c", 0), at(100)).unwrap(); // same instant
        let mut seen = Vec::new();
        while let Some(e) = s.oldest() {
            seen.push(id_of(&s.read(e).unwrap()));
            s.remove(e);
        }
        assert_eq!(seen, ["a", "b", "c"]);
        assert!(json_files(&t.0).is_empty());
        assert_eq!(s.total_bytes(), 0);
    }

    #[test]
    fn order_survives_a_restart() {
        let t = TempDir::new("restart");
        {
            let mut s = Spool::open(&t.0, 1 << 20, Duration::from_secs(3600)).unwrap();
            s.push(&report("a", 0), at(10)).unwrap();
            s.push(&report("b", 0), at(20)).unwrap();
        }
        let mut s = Spool::open(&t.0, 1 << 20, Duration::from_secs(3600)).unwrap();
        assert_eq!(s.len(), 2);
        s.push(&report("c", 0), at(5)).unwrap(); // earlier clock after restart: still last
        let first = s.oldest().unwrap();
        assert_eq!(id_of(&s.read(first).unwrap()), "a");
        let names = json_files(&t.0);
        assert_eq!(names.len(), 3);
        assert!(names.iter().all(|n| n.len() == 25), "{names:?}");
        let last = fs::read(t.0.join(&names[2])).unwrap();
        assert_eq!(id_of(&last), "c");
    }

    #[test]
    fn size_bound_drops_oldest_first_and_counts() {
        let t = TempDir::new("size");
        let one = report("a", 0).len() as u64;
        let mut s = Spool::open(&t.0, 3 * one, Duration::from_secs(3600)).unwrap();
        for (i, id) in ["a", "b", "c", "d", "e"].iter().enumerate() {
            s.push(&report(id, 0), at(i as u64)).unwrap();
        }
        assert_eq!(s.len(), 3);
        assert!(s.total_bytes() <= 3 * one);
        assert_eq!(s.dropped(), 2);
        let e = s.oldest().unwrap();
        assert_eq!(id_of(&s.read(e).unwrap()), "c");
        // The count is persisted.
        drop(s);
        let s = Spool::open(&t.0, 3 * one, Duration::from_secs(3600)).unwrap();
        assert_eq!(s.dropped(), 2);
    }

    #[test]
    fn age_bound_drops_old_reports_and_adds_what_they_carried() {
        let t = TempDir::new("age");
        let mut s = Spool::open(&t.0, 1 << 20, Duration::from_secs(60)).unwrap();
        s.push(&report("old", 4), at(0)).unwrap();
        s.push(&report("mid", 0), at(30)).unwrap();
        s.push(&report("new", 0), at(70)).unwrap(); // "old" is now 70 s old
        assert_eq!(s.len(), 2);
        assert_eq!(s.dropped(), 1 + 4);
        assert_eq!(s.enforce(at(95)), 1); // "mid" turns 65 s old
        assert_eq!(s.dropped(), 6);
        let e = s.oldest().unwrap();
        assert_eq!(id_of(&s.read(e).unwrap()), "new");
    }

    #[test]
    fn settle_subtracts_only_what_was_carried() {
        let t = TempDir::new("settle");
        let mut s = Spool::open(&t.0, 1 << 20, Duration::from_secs(60)).unwrap();
        s.count_dropped(3);
        let carried = s.dropped();
        s.count_dropped(2); // dropped meanwhile
        s.settle_dropped(carried);
        assert_eq!(s.dropped(), 2);
    }

    #[test]
    fn writes_leave_no_temporary_file_and_stale_ones_are_removed() {
        let t = TempDir::new("atomic");
        fs::write(t.0.join("00000000000000000001.tmp"), b"{half").unwrap();
        let mut s = Spool::open(&t.0, 1 << 20, Duration::from_secs(3600)).unwrap();
        assert!(!t.0.join("00000000000000000001.tmp").exists());
        s.push(&report("a", 0), at(1)).unwrap();
        let names: Vec<String> = fs::read_dir(&t.0)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert!(names.iter().all(|n| !n.ends_with(".tmp")), "{names:?}");
        let name = json_files(&t.0).remove(0);
        assert_eq!(fs::read(t.0.join(name)).unwrap(), report("a", 0));
    }

    #[test]
    fn corrupt_files_are_set_aside_counted_and_skipped() {
        let t = TempDir::new("corrupt");
        let mut s = Spool::open(&t.0, 1 << 20, Duration::from_secs(3600)).unwrap();
        let a = s.push(&report("a", 0), at(1)).unwrap();
        let b = s.push(&report("b", 0), at(2)).unwrap();
        s.push(&report("c", 0), at(3)).unwrap();
        fs::write(s.path(a), b"\0\0garbage").unwrap();
        fs::write(s.path(b), b"{\"no_id\":1}").unwrap();
        fs::write(t.0.join("junk.json"), b"{}").unwrap();

        let mut s = Spool::open(&t.0, 1 << 20, Duration::from_secs(3600)).unwrap();
        assert_eq!(s.dropped(), 1, "misnamed file counted at open");
        let mut delivered = Vec::new();
        let mut corrupt = 0;
        while let Some(e) = s.oldest() {
            match s.read(e) {
                Ok(b) => {
                    delivered.push(id_of(&b));
                    s.remove(e);
                }
                Err(ReadError::Corrupt(_)) => corrupt += 1,
                Err(ReadError::Gone) => panic!("gone"),
            }
        }
        assert_eq!(delivered, ["c"]);
        assert_eq!(corrupt, 2);
        assert_eq!(s.dropped(), 3);
        let aside = fs::read_dir(t.0.join(CORRUPT_DIR)).unwrap().count();
        assert_eq!(aside, 3);
    }

    #[test]
    fn corrupt_directory_is_bounded() {
        let t = TempDir::new("prune");
        let mut s = Spool::open(&t.0, 1 << 20, Duration::from_secs(3600)).unwrap();
        for i in 0..(KEEP_CORRUPT as u64 + 5) {
            let e = s.push(b"nope", at(i)).unwrap();
            assert!(matches!(s.read(e), Err(ReadError::Corrupt(_))));
        }
        assert_eq!(
            fs::read_dir(t.0.join(CORRUPT_DIR)).unwrap().count(),
            KEEP_CORRUPT
        );
        assert!(s.is_empty());
    }
}
