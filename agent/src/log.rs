//! Log lines on stderr, without a logging framework.
//!
//! Under systemd (`JOURNAL_STREAM` set) each line starts with a `<N>` syslog priority, which the
//! journal turns into the entry's level; elsewhere lines carry a UTC timestamp and a level word.

use std::fmt;
#[cfg(not(test))]
use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Error = 3,
    Warn = 4,
    Info = 6,
    Debug = 7,
}

static MAX_LEVEL: AtomicU8 = AtomicU8::new(Level::Info as u8);
static JOURNAL: AtomicBool = AtomicBool::new(false);

/// Reads the environment once; `verbose` adds debug lines.
pub fn init(verbose: bool) {
    let level = if verbose { Level::Debug } else { Level::Info };
    MAX_LEVEL.store(level as u8, Ordering::Relaxed);
    JOURNAL.store(
        std::env::var_os("JOURNAL_STREAM").is_some(),
        Ordering::Relaxed,
    );
}

pub fn enabled(level: Level) -> bool {
    level as u8 <= MAX_LEVEL.load(Ordering::Relaxed)
}

pub fn write(level: Level, args: fmt::Arguments<'_>) {
    if !enabled(level) {
        return;
    }
    let line = if JOURNAL.load(Ordering::Relaxed) {
        format!("<{}>{args}", level as u8)
    } else {
        let word = match level {
            Level::Error => "ERROR",
            Level::Warn => "WARN",
            Level::Info => "INFO",
            Level::Debug => "DEBUG",
        };
        let now = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S%.3fZ");
        format!("{now} {word} vigie-agent: {args}")
    };
    // In unit tests, through the macro the test harness captures.
    #[cfg(test)]
    eprintln!("{line}");
    // A closed stderr must not stop the agent (eprintln! would panic): the line is lost.
    #[cfg(not(test))]
    let _ = writeln!(std::io::stderr(), "{line}");
}

#[macro_export]
macro_rules! error {
    ($($t:tt)*) => { $crate::log::write($crate::log::Level::Error, format_args!($($t)*)) };
}
#[macro_export]
macro_rules! warn {
    ($($t:tt)*) => { $crate::log::write($crate::log::Level::Warn, format_args!($($t)*)) };
}
#[macro_export]
macro_rules! info {
    ($($t:tt)*) => { $crate::log::write($crate::log::Level::Info, format_args!($($t)*)) };
}
#[macro_export]
macro_rules! debug {
    ($($t:tt)*) => { $crate::log::write($crate::log::Level::Debug, format_args!($($t)*)) };
}
