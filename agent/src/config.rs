//! Settings: command line over environment over TOML file over defaults.
//!
//! The file is read into a plain TOML table and each key is checked by hand, so that every error
//! names its key (and an unknown key is an error, not a silently ignored typo).

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::transport::HubUrl;

pub const USAGE: &str = "\
Usage: vigie-agent --hub URL --token TOKEN [--interval 30s] [--once]

Collects this host's figures and reports them to a Vigie hub.

Options:
  --hub URL             hub base URL (https://vigie.example.org)
  --token TOKEN         host token from `vigie agent token --host NAME`
                        (better: VIGIE_AGENT_TOKEN, or token_file in the config file)
  --interval DURATION   normal report interval (default 30s)
  --fast-interval DUR   interval while the hub says a threshold is crossed (default 10s)
  --once                print one report as JSON on stdout and exit (sends nothing)
  --config FILE         TOML file with the same keys (see agent.example.toml)
  --host NAME           host name to report (default: the system's)
  --spool-dir DIR       where undelivered reports wait (default /var/lib/vigie-agent/spool)
  --verbose             debug log lines
  -h, --help            this text
  -V, --version         version

Durations: 500ms, 30s, 5m, 1h, 7d. Flags override the file; VIGIE_AGENT_TOKEN overrides the file's
token. Exit code 2 on a configuration error.
";

/// One configuration problem, named by its key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub key: String,
    pub message: String,
}

impl ConfigError {
    fn new(key: &str, message: impl Into<String>) -> ConfigError {
        ConfigError {
            key: key.to_owned(),
            message: message.into(),
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "`{}`: {}", self.key, self.message)
    }
}

/// What the command line asked for.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Cli {
    pub config: Option<PathBuf>,
    pub hub: Option<String>,
    pub token: Option<String>,
    pub interval: Option<String>,
    pub fast_interval: Option<String>,
    pub host: Option<String>,
    pub spool_dir: Option<String>,
    pub once: bool,
    pub verbose: bool,
    pub help: bool,
    pub version: bool,
}

/// Parses the arguments after the program name. Accepts `--key value` and `--key=value`.
pub fn parse_args<I: IntoIterator<Item = String>>(args: I) -> Result<Cli, ConfigError> {
    let mut cli = Cli::default();
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_owned(), Some(v.to_owned())),
            _ => (arg.clone(), None),
        };
        let boolean = |cli: &mut Cli, set: fn(&mut Cli)| match inline {
            Some(_) => Err(ConfigError::new(&flag, "takes no value")),
            None => {
                set(cli);
                Ok(())
            }
        };
        match flag.as_str() {
            "--once" => boolean(&mut cli, |c| c.once = true)?,
            "--verbose" | "-v" => boolean(&mut cli, |c| c.verbose = true)?,
            "--help" | "-h" => boolean(&mut cli, |c| c.help = true)?,
            "--version" | "-V" => boolean(&mut cli, |c| c.version = true)?,
            "--config" | "--hub" | "--token" | "--interval" | "--fast-interval" | "--host"
            | "--spool-dir" => {
                let value = match inline {
                    Some(v) => v,
                    None => args
                        .next()
                        .filter(|v| !v.starts_with("--"))
                        .ok_or_else(|| ConfigError::new(&flag, "needs a value"))?,
                };
                let slot = match flag.as_str() {
                    "--config" => {
                        cli.config = Some(PathBuf::from(value));
                        continue;
                    }
                    "--hub" => &mut cli.hub,
                    "--token" => &mut cli.token,
                    "--interval" => &mut cli.interval,
                    "--fast-interval" => &mut cli.fast_interval,
                    "--host" => &mut cli.host,
                    _ => &mut cli.spool_dir,
                };
                *slot = Some(value);
            }
            other => {
                return Err(ConfigError::new(other, "unknown argument (see --help)"));
            }
        }
    }
    Ok(cli)
}

/// The agent's settings, checked.
#[derive(Debug, Clone)]
pub struct Config {
    /// `None` only with `once`.
    pub hub: Option<HubUrl>,
    pub token: Option<String>,
    pub interval: Duration,
    /// Never longer than `interval`.
    pub fast_interval: Duration,
    /// Host name override; `None` takes the system's.
    pub host: Option<String>,
    pub spool_dir: PathBuf,
    pub spool_max_bytes: u64,
    pub spool_max_age: Duration,
    pub ca_file: Option<PathBuf>,
    pub pin_sha256: Option<[u8; 32]>,
    /// Connect, read and write timeout of one HTTP exchange.
    pub timeout: Duration,
    pub inventory_interval: Duration,
    /// How often `systemctl --failed` runs; in between the last answer is repeated.
    pub units_interval: Duration,
    /// How often `smartctl` runs (it may wake sleeping disks).
    pub smart_interval: Duration,
    pub smartctl: String,
    pub once: bool,
    pub verbose: bool,
}

impl Config {
    pub fn defaults() -> Config {
        Config {
            hub: None,
            token: None,
            interval: Duration::from_secs(30),
            fast_interval: Duration::from_secs(10),
            host: None,
            spool_dir: PathBuf::from("/var/lib/vigie-agent/spool"),
            spool_max_bytes: 50 * 1024 * 1024,
            spool_max_age: Duration::from_secs(7 * 86_400),
            ca_file: None,
            pin_sha256: None,
            timeout: Duration::from_secs(10),
            inventory_interval: Duration::from_secs(3600),
            units_interval: Duration::from_secs(60),
            smart_interval: Duration::from_secs(3600),
            smartctl: "smartctl".to_owned(),
            once: false,
            verbose: false,
        }
    }

    /// Merges file, environment (`env` looks a variable up) and command line, then checks the
    /// result. Every problem found is returned, not just the first.
    pub fn load(
        cli: &Cli,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Config, Vec<ConfigError>> {
        let mut cfg = Config::defaults();
        let mut errors = Vec::new();
        let mut raw = Raw::default();
        if let Some(path) = &cli.config {
            match std::fs::read_to_string(path) {
                Ok(text) => read_file(&text, &mut raw, &mut errors),
                Err(e) => errors.push(ConfigError::new(
                    "config",
                    format!("cannot read {}: {e}", path.display()),
                )),
            }
        }
        // Command line over environment over file.
        if let Some(t) = env("VIGIE_AGENT_TOKEN").filter(|t| !t.is_empty()) {
            raw.token = Some(t);
            raw.token_file = None;
        }
        let over = |slot: &mut Option<String>, v: &Option<String>| {
            if v.is_some() {
                slot.clone_from(v);
            }
        };
        over(&mut raw.hub, &cli.hub);
        over(&mut raw.interval, &cli.interval);
        over(&mut raw.fast_interval, &cli.fast_interval);
        over(&mut raw.host, &cli.host);
        over(&mut raw.spool_dir, &cli.spool_dir);
        if cli.token.is_some() {
            raw.token.clone_from(&cli.token);
            raw.token_file = None;
        }
        cfg.once = cli.once;
        cfg.verbose = cli.verbose;
        raw.apply(&mut cfg, &mut errors);

        // Without a readable file, "missing" keys would only be noise.
        if !cfg.once && !errors.iter().any(|e| e.key == "config") {
            if cfg.hub.is_none() && !errors.iter().any(|e| e.key == "hub") {
                errors.push(ConfigError::new(
                    "hub",
                    "missing: give --hub URL or `hub` in the config file",
                ));
            }
            if cfg.token.is_none() && !errors.iter().any(|e| e.key.starts_with("token")) {
                errors.push(ConfigError::new(
                    "token",
                    "missing: give --token, VIGIE_AGENT_TOKEN, or `token`/`token_file` in the config file",
                ));
            }
        }
        if errors.is_empty() {
            Ok(cfg)
        } else {
            Err(errors)
        }
    }
}

/// Values as written, before checking; strings so that file and flags share one parser.
#[derive(Debug, Default)]
struct Raw {
    hub: Option<String>,
    token: Option<String>,
    token_file: Option<String>,
    interval: Option<String>,
    fast_interval: Option<String>,
    host: Option<String>,
    spool_dir: Option<String>,
    spool_max_bytes: Option<String>,
    spool_max_age: Option<String>,
    ca_file: Option<String>,
    pin_sha256: Option<String>,
    timeout: Option<String>,
    inventory_interval: Option<String>,
    units_interval: Option<String>,
    smart_interval: Option<String>,
    smartctl: Option<String>,
}

fn read_file(text: &str, raw: &mut Raw, errors: &mut Vec<ConfigError>) {
    let table: toml::Table = match text.parse() {
        Ok(t) => t,
        Err(e) => {
            errors.push(ConfigError::new("config", format!("not valid TOML: {e}")));
            return;
        }
    };
    for (key, value) in table {
        if !KEYS.contains(&key.as_str()) {
            errors.push(ConfigError::new(&key, "unknown key"));
            continue;
        }
        let text = match &value {
            toml::Value::String(s) => s.clone(),
            // Bare numbers: seconds for durations, bytes for sizes.
            toml::Value::Integer(i) if key_takes_number(&key) => i.to_string(),
            _ => {
                let want = if key_takes_number(&key) {
                    "a string or a number"
                } else {
                    "a string"
                };
                errors.push(ConfigError::new(
                    &key,
                    format!("must be {want}, not {}", value.type_str()),
                ));
                continue;
            }
        };
        let slot = match key.as_str() {
            "hub" => &mut raw.hub,
            "token" => &mut raw.token,
            "token_file" => &mut raw.token_file,
            "interval" => &mut raw.interval,
            "fast_interval" => &mut raw.fast_interval,
            "host" => &mut raw.host,
            "spool_dir" => &mut raw.spool_dir,
            "spool_max_bytes" => &mut raw.spool_max_bytes,
            "spool_max_age" => &mut raw.spool_max_age,
            "ca_file" => &mut raw.ca_file,
            "pin_sha256" => &mut raw.pin_sha256,
            "timeout" => &mut raw.timeout,
            "inventory_interval" => &mut raw.inventory_interval,
            "units_interval" => &mut raw.units_interval,
            "smart_interval" => &mut raw.smart_interval,
            "smartctl" => &mut raw.smartctl,
            _ => {
                errors.push(ConfigError::new(&key, "unknown key"));
                continue;
            }
        };
        *slot = Some(text);
    }
}

/// Every key the file may hold.
const KEYS: &[&str] = &[
    "hub",
    "token",
    "token_file",
    "interval",
    "fast_interval",
    "host",
    "spool_dir",
    "spool_max_bytes",
    "spool_max_age",
    "ca_file",
    "pin_sha256",
    "timeout",
    "inventory_interval",
    "units_interval",
    "smart_interval",
    "smartctl",
];

fn key_takes_number(key: &str) -> bool {
    matches!(
        key,
        "interval"
            | "fast_interval"
            | "spool_max_bytes"
            | "spool_max_age"
            | "timeout"
            | "inventory_interval"
            | "units_interval"
            | "smart_interval"
    )
}

impl Raw {
    fn apply(self, cfg: &mut Config, errors: &mut Vec<ConfigError>) {
        let mut dur = |key: &str, v: Option<String>, min: Duration, slot: &mut Duration| {
            if let Some(v) = v {
                match parse_duration(&v) {
                    Ok(d) if d >= min => *slot = d,
                    Ok(_) => {
                        errors.push(ConfigError::new(key, format!("must be at least {min:?}")))
                    }
                    Err(e) => errors.push(ConfigError::new(key, e)),
                }
            }
        };
        let ms = Duration::from_millis;
        dur("interval", self.interval, ms(100), &mut cfg.interval);
        dur(
            "fast_interval",
            self.fast_interval,
            ms(100),
            &mut cfg.fast_interval,
        );
        dur(
            "spool_max_age",
            self.spool_max_age,
            ms(1000),
            &mut cfg.spool_max_age,
        );
        dur("timeout", self.timeout, ms(100), &mut cfg.timeout);
        dur(
            "inventory_interval",
            self.inventory_interval,
            ms(1000),
            &mut cfg.inventory_interval,
        );
        dur(
            "units_interval",
            self.units_interval,
            ms(100),
            &mut cfg.units_interval,
        );
        dur(
            "smart_interval",
            self.smart_interval,
            ms(1000),
            &mut cfg.smart_interval,
        );
        // A fast interval longer than the normal one would slow the agent down on alarm.
        cfg.fast_interval = cfg.fast_interval.min(cfg.interval);

        if let Some(v) = self.spool_max_bytes {
            match parse_size(&v) {
                Ok(n) => cfg.spool_max_bytes = n,
                Err(e) => errors.push(ConfigError::new("spool_max_bytes", e)),
            }
        }
        if let Some(v) = self.hub {
            match HubUrl::parse(&v) {
                Ok(u) => cfg.hub = Some(u),
                Err(e) => errors.push(ConfigError::new("hub", e)),
            }
        }
        if let Some(t) = self.token {
            match check_token(&t) {
                Ok(()) => cfg.token = Some(t),
                Err(e) => errors.push(ConfigError::new("token", e)),
            }
        } else if let Some(path) = self.token_file {
            match std::fs::read_to_string(&path) {
                Ok(t) => {
                    let t = t.trim().to_owned();
                    match check_token(&t) {
                        Ok(()) => cfg.token = Some(t),
                        Err(e) => {
                            errors.push(ConfigError::new("token_file", format!("{path}: {e}")))
                        }
                    }
                }
                Err(e) => errors.push(ConfigError::new(
                    "token_file",
                    format!("cannot read {path}: {e}"),
                )),
            }
        }
        if let Some(h) = self.host {
            match check_host(&h) {
                Ok(()) => cfg.host = Some(h),
                Err(e) => errors.push(ConfigError::new("host", e)),
            }
        }
        if let Some(d) = self.spool_dir {
            if d.is_empty() {
                errors.push(ConfigError::new("spool_dir", "must not be empty"));
            } else {
                cfg.spool_dir = PathBuf::from(d);
            }
        }
        if let Some(p) = self.pin_sha256 {
            match parse_fingerprint(&p) {
                Ok(f) => cfg.pin_sha256 = Some(f),
                Err(e) => errors.push(ConfigError::new("pin_sha256", e)),
            }
        }
        if let Some(p) = self.ca_file {
            if cfg.pin_sha256.is_some() {
                errors.push(ConfigError::new(
                    "ca_file",
                    "cannot be combined with `pin_sha256`: choose one",
                ));
            } else {
                match crate::transport::load_ca_file(Path::new(&p)) {
                    Ok(_) => cfg.ca_file = Some(PathBuf::from(p)),
                    Err(e) => errors.push(ConfigError::new("ca_file", e)),
                }
            }
        }
        if let Some(s) = self.smartctl {
            if s.is_empty() {
                errors.push(ConfigError::new("smartctl", "must not be empty"));
            } else {
                cfg.smartctl = s;
            }
        }
    }
}

fn check_token(t: &str) -> Result<(), String> {
    if t.is_empty() {
        return Err("must not be empty".into());
    }
    if !t.chars().all(|c| c.is_ascii_graphic()) {
        return Err("must be printable ASCII without spaces".into());
    }
    Ok(())
}

/// Host names go into report ids and spool files: keep them to DNS-like characters.
pub fn check_host(h: &str) -> Result<(), String> {
    if h.is_empty() || h.len() > 253 {
        return Err("must be 1 to 253 characters".into());
    }
    if !h
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
    {
        return Err(format!(
            "{h:?}: only letters, digits, '.', '-' and '_' are allowed"
        ));
    }
    Ok(())
}

/// `500ms`, `30s`, `5m`, `1h`, `7d`; a bare number is seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let bad = || format!("{s:?} is not a duration (use e.g. 500ms, 30s, 5m, 1h, 7d)");
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (digits, unit) = s.split_at(split);
    let n: u64 = digits.parse().map_err(|_| bad())?;
    let ms_per_unit: u64 = match unit.trim() {
        "ms" => 1,
        "" | "s" => 1000,
        "m" | "min" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return Err(bad()),
    };
    n.checked_mul(ms_per_unit)
        .map(Duration::from_millis)
        .ok_or_else(bad)
}

/// `52428800`, `512KiB`, `50MiB`, `1GiB` (K, M, G are binary too; KB, MB, GB are decimal).
pub fn parse_size(s: &str) -> Result<u64, String> {
    let bad = || format!("{s:?} is not a size (use e.g. 50MiB, 512KiB, 1GiB or a byte count)");
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (digits, unit) = s.split_at(split);
    let n: u64 = digits.parse().map_err(|_| bad())?;
    let mult: u64 = match unit.trim() {
        "" | "B" => 1,
        "K" | "KiB" => 1 << 10,
        "M" | "MiB" => 1 << 20,
        "G" | "GiB" => 1 << 30,
        "KB" => 1000,
        "MB" => 1_000_000,
        "GB" => 1_000_000_000,
        _ => return Err(bad()),
    };
    n.checked_mul(mult).ok_or_else(bad)
}

/// 64 hex digits, colons allowed (as `openssl x509 -fingerprint -sha256` prints them).
pub fn parse_fingerprint(s: &str) -> Result<[u8; 32], String> {
    let hex: String = s
        .chars()
        .filter(|c| *c != ':' && !c.is_whitespace())
        .collect();
    let bad = || "must be the certificate's SHA-256 as 64 hex digits (colons allowed)".to_owned();
    if hex.len() != 64 || !hex.is_ascii() {
        return Err(bad());
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).map_err(|_| bad())?;
    }
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30s").unwrap(), Duration::from_secs(30));
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("5m").unwrap(), Duration::from_secs(300));
        assert_eq!(parse_duration("1h").unwrap(), Duration::from_secs(3600));
        assert_eq!(
            parse_duration("7d").unwrap(),
            Duration::from_secs(7 * 86_400)
        );
        assert_eq!(parse_duration("45").unwrap(), Duration::from_secs(45));
        assert!(parse_duration("3x").unwrap_err().contains("\"3x\""));
        assert!(parse_duration("s").is_err());
        assert!(parse_duration("-5s").is_err());
        assert!(parse_duration("99999999999999999999d").is_err());
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("50MiB").unwrap(), 50 * 1024 * 1024);
        assert_eq!(parse_size("50M").unwrap(), 50 * 1024 * 1024);
        assert_eq!(parse_size("2KB").unwrap(), 2000);
        assert_eq!(parse_size("1234").unwrap(), 1234);
        assert!(parse_size("12 apples").is_err());
    }

    #[test]
    fn fingerprints() {
        let colons = "AB:".repeat(31) + "CD";
        let f = parse_fingerprint(&colons).unwrap();
        assert_eq!(f[0], 0xab);
        assert_eq!(f[31], 0xcd);
        assert!(parse_fingerprint("abcd").is_err());
        assert!(parse_fingerprint(&"zz".repeat(32)).is_err());
    }

    #[test]
    fn arguments_both_forms() {
        let cli = parse_args(args(&[
            "--hub",
            "https://h",
            "--token=abc",
            "--interval",
            "5s",
            "--once",
        ]))
        .unwrap();
        assert_eq!(cli.hub.as_deref(), Some("https://h"));
        assert_eq!(cli.token.as_deref(), Some("abc"));
        assert_eq!(cli.interval.as_deref(), Some("5s"));
        assert!(cli.once);
        let err = parse_args(args(&["--hub"])).unwrap_err();
        assert_eq!(err.key, "--hub");
        let err = parse_args(args(&["--intervall", "5s"])).unwrap_err();
        assert_eq!(err.key, "--intervall");
        assert!(parse_args(args(&["--once=yes"])).is_err());
    }

    #[test]
    fn once_needs_neither_hub_nor_token() {
        let cli = parse_args(args(&["--once"])).unwrap();
        let cfg = Config::load(&cli, &no_env).unwrap();
        assert!(cfg.once);
        assert!(cfg.hub.is_none());
    }

    #[test]
    fn missing_hub_and_token_are_named() {
        let errs = Config::load(&Cli::default(), &no_env).unwrap_err();
        let keys: Vec<_> = errs.iter().map(|e| e.key.as_str()).collect();
        assert_eq!(keys, ["hub", "token"]);
    }

    /// A file in a directory of its own, both removed at the end of the test.
    struct TempFile(PathBuf);

    impl std::ops::Deref for TempFile {
        type Target = PathBuf;
        fn deref(&self) -> &PathBuf {
            &self.0
        }
    }

    impl Drop for TempFile {
        fn drop(&mut self) {
            if let Some(dir) = self.0.parent() {
                let _ = std::fs::remove_dir_all(dir);
            }
        }
    }

    fn temp_file(name: &str, text: &str) -> TempFile {
        let dir =
            std::env::temp_dir().join(format!("vigie-agent-cfg-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("agent.toml");
        std::fs::write(&path, text).unwrap();
        TempFile(path)
    }

    #[test]
    fn file_then_env_then_flags() {
        let path = temp_file(
            "layers",
            r#"
hub = "https://file.example"
token = "file-token"
interval = "1m"
fast_interval = 5
spool_max_bytes = "1MiB"
spool_max_age = "2d"
host = "web-1"
"#,
        );
        let cli = parse_args(args(&[
            "--config",
            path.to_str().unwrap(),
            "--interval",
            "20s",
        ]))
        .unwrap();
        let env = |k: &str| (k == "VIGIE_AGENT_TOKEN").then(|| "env-token".to_owned());
        let cfg = Config::load(&cli, &env).unwrap();
        assert_eq!(cfg.hub.unwrap().base(), "https://file.example");
        assert_eq!(cfg.token.as_deref(), Some("env-token"));
        assert_eq!(cfg.interval, Duration::from_secs(20));
        assert_eq!(cfg.fast_interval, Duration::from_secs(5));
        assert_eq!(cfg.spool_max_bytes, 1 << 20);
        assert_eq!(cfg.spool_max_age, Duration::from_secs(2 * 86_400));
        assert_eq!(cfg.host.as_deref(), Some("web-1"));

        let cli = parse_args(args(&[
            "--config",
            path.to_str().unwrap(),
            "--token",
            "flag-token",
        ]))
        .unwrap();
        let cfg = Config::load(&cli, &env).unwrap();
        assert_eq!(cfg.token.as_deref(), Some("flag-token"));
        assert_eq!(cfg.interval, Duration::from_secs(60));
    }

    #[test]
    fn every_bad_key_is_named() {
        let path = temp_file(
            "bad",
            r#"
hub = "ftp://x"
token = "t"
interval = "3x"
intervall = "5s"
spool_max_bytes = true
pin_sha256 = "nope"
host = "has space"
"#,
        );
        let cli = parse_args(args(&["--config", path.to_str().unwrap()])).unwrap();
        let errs = Config::load(&cli, &no_env).unwrap_err();
        let mut keys: Vec<_> = errs.iter().map(|e| e.key.clone()).collect();
        keys.sort();
        assert_eq!(
            keys,
            [
                "host",
                "hub",
                "interval",
                "intervall",
                "pin_sha256",
                "spool_max_bytes"
            ]
        );
        let shown = errs
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("\n");
        assert!(shown.contains("`intervall`: unknown key"), "{shown}");
    }

    #[test]
    fn fast_interval_never_exceeds_interval() {
        let cli = parse_args(args(&["--once", "--interval", "2s"])).unwrap();
        let cfg = Config::load(&cli, &no_env).unwrap();
        assert_eq!(cfg.fast_interval, Duration::from_secs(2));
    }

    #[test]
    fn the_packaged_example_is_valid_and_shows_the_defaults() {
        let example = include_str!("../packaging/agent.example.toml");
        let token = temp_file("example-token", "tok\n");
        let text = example.replace(
            "/run/credentials/vigie-agent.service/token",
            token.to_str().unwrap(),
        );
        let path = temp_file("example", &text);
        let cli = parse_args(args(&["--config", path.to_str().unwrap()])).unwrap();
        let cfg = Config::load(&cli, &no_env).unwrap();
        let d = Config::defaults();
        assert_eq!(cfg.token.as_deref(), Some("tok"));
        assert_eq!(cfg.interval, d.interval);
        assert_eq!(cfg.fast_interval, d.fast_interval);
        assert_eq!(cfg.spool_dir, d.spool_dir);
        assert_eq!(cfg.spool_max_bytes, d.spool_max_bytes);
        assert_eq!(cfg.spool_max_age, d.spool_max_age);
        assert_eq!(cfg.timeout, d.timeout);
        assert_eq!(cfg.inventory_interval, d.inventory_interval);
        assert_eq!(cfg.units_interval, d.units_interval);
        assert_eq!(cfg.smart_interval, d.smart_interval);
        assert_eq!(cfg.smartctl, d.smartctl);
        // Every key the agent knows is documented there.
        for key in KEYS {
            assert!(
                example.contains(&format!("{key} =")),
                "{key} not in agent.example.toml"
            );
        }
    }

    #[test]
    fn token_file_is_read_and_trimmed() {
        let token = temp_file("tok", "secret-1\n");
        let path = temp_file(
            "tokfile",
            &format!(
                "hub = \"http://127.0.0.1:1\"\ntoken_file = {:?}\n",
                token.to_str().unwrap()
            ),
        );
        let cli = parse_args(args(&["--config", path.to_str().unwrap()])).unwrap();
        let cfg = Config::load(&cli, &no_env).unwrap();
        assert_eq!(cfg.token.as_deref(), Some("secret-1"));
    }
}
