//! The hub's configuration: an optional TOML file, overridden by `VIGIE_*` environment
//! variables, turned into a validated [`Config`].
//!
//! Loading never stops at the first mistake: the file is parsed to a plain [`toml::Table`] and
//! walked section by section with a small [`Section`] reader that records every problem with its
//! key path (`http.listen`, `sources[1].url`) or, for the environment, the variable's name
//! (`VIGIE_HTTP_LISTEN`). `vigie check-config` prints the whole list at once, so an operator
//! fixes a file in one pass instead of one error per run.
//!
//! With no file and no environment every value has a default that lets `vigie serve` start on a
//! fresh machine: SQLite under `./data/`, HTTP on `127.0.0.1:8080`, syslog on `127.0.0.1:5514`.
//! `config/vigie.example.toml` documents every key; a test loads it so it cannot drift.

use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use toml::{Table, Value};
use vigie_alerts::fingerprint::FingerprintSpec;
use vigie_core::Level;
use vigie_core::domain::{DomainDef, Domains};
use vigie_core::store::redact_url;

/// Path of the config file when `--config` is not given.
const ENV_CONFIG: &str = "VIGIE_CONFIG";
const ENV_DATABASE_URL: &str = "VIGIE_DATABASE_URL";
const ENV_HTTP_LISTEN: &str = "VIGIE_HTTP_LISTEN";
const ENV_SYSLOG_LISTEN: &str = "VIGIE_SYSLOG_LISTEN";
const ENV_DATA_DIR: &str = "VIGIE_DATA_DIR";
const ENV_LOG: &str = "VIGIE_LOG";
const ENV_LOG_FORMAT: &str = "VIGIE_LOG_FORMAT";
const ENV_SMTP_URL: &str = "VIGIE_SMTP_URL";

/// Every variable [`load`] reads, to report the ones that are not valid UTF-8.
const ENV_VARS: [&str; 8] = [
    ENV_CONFIG,
    ENV_DATABASE_URL,
    ENV_HTTP_LISTEN,
    ENV_SYSLOG_LISTEN,
    ENV_DATA_DIR,
    ENV_LOG,
    ENV_LOG_FORMAT,
    ENV_SMTP_URL,
];

/// `smtp.from` when only `VIGIE_SMTP_URL` configures mail.
const DEFAULT_SMTP_FROM: &str = "vigie@localhost";

/// No configured duration may exceed a year: longer ones are mistakes, and capping them keeps
/// `Instant + duration` arithmetic elsewhere far from overflow.
const MAX_DURATION: Duration = Duration::from_secs(365 * 86_400);

const KIB: u64 = 1024;
const MIB: u64 = 1024 * 1024;

#[path = "config_hosts.rs"]
mod hosts;
#[path = "config_oncall.rs"]
mod oncall;

/// The validated configuration of the hub.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Config {
    pub(crate) database: DatabaseConfig,
    pub(crate) http: HttpConfig,
    pub(crate) syslog: SyslogConfig,
    /// Attachments, archives, spool; and the SQLite file when `database.url` is not set.
    /// A relative path is relative to the working directory.
    pub(crate) data_dir: PathBuf,
    pub(crate) log: LogConfig,
    pub(crate) console: ConsoleConfig,
    pub(crate) pipeline: PipelineConfig,
    /// `[[domains]]` replaces the whole default list when present.
    pub(crate) domains: Domains,
    /// `None` when neither `[smtp]` nor `VIGIE_SMTP_URL` is set: no mail is sent.
    pub(crate) smtp: Option<SmtpConfig>,
    /// `[notify]`, `[sms]`, `[[webhooks]]`: delivery of notifications (read by vigie-notify);
    /// its `smtp` is filled from `smtp` when the worker starts.
    pub(crate) notify: vigie_notify::NotifySettings,
    /// The database pollers, one per `[[sources]]` block, in file order.
    pub(crate) sources: Vec<SourceConfig>,
    /// `[hosts]`: host agents' reachability and threshold limits (see `config_hosts`).
    pub(crate) hosts: vigie_hosts::HostsSettings,
    /// `[oncall]`: routing defaults and acknowledgement links (see `config_oncall`).
    pub(crate) oncall: oncall::OncallConfig,
    /// `[incidents] archive_after`: closed incidents older than this go to the XML archive.
    pub(crate) incidents_archive_after: Duration,
    /// The file that was read, if any (for messages and for resolving relative paths).
    pub(crate) source_path: Option<PathBuf>,
}

/// `[database]`: where the store lives.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct DatabaseConfig {
    /// `sqlite://PATH` or `postgres://…`; defaults to `sqlite://{data_dir}/vigie.db`.
    pub(crate) url: String,
    pub(crate) max_connections: u32,
    /// How long a query waits for a free connection before the store counts as unavailable.
    pub(crate) acquire_timeout: Duration,
}

/// `[http]`: the console and the API.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct HttpConfig {
    pub(crate) listen: SocketAddr,
    /// Worker threads; `0` means one per core.
    pub(crate) workers: usize,
    /// Largest accepted request body; larger pushes get 413.
    pub(crate) max_body_bytes: usize,
    /// Most alerts accepted in one pushed JSON array.
    pub(crate) max_batch: usize,
    /// The URL users reach the console at, for links in mails; without a trailing `/`.
    pub(crate) public_url: Option<String>,
}

/// `[syslog]`: the receiver (UDP and TCP on the same address unless `udp`/`tcp` say otherwise,
/// optional TLS), its queue, and how long the messages are kept.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct SyslogConfig {
    pub(crate) listen: SocketAddr,
    /// `udp`/`tcp`: this listener's own address instead of `listen`; `""` turns it off.
    pub(crate) udp: Option<String>,
    pub(crate) tcp: Option<String>,
    /// `[syslog.tls]`: the RFC 5425 listener, paths resolved against the file's folder.
    pub(crate) tls: Option<vigie_logs::syslog::TlsConfig>,
    pub(crate) max_connections: usize,
    pub(crate) max_message_bytes: usize,
    pub(crate) queue_capacity: usize,
    pub(crate) idle_timeout: Duration,
    /// Zone of RFC 3164 times: `UTC` or a fixed offset (`+01:00`).
    pub(crate) timezone: String,
    pub(crate) source_name: String,
    /// Messages stored per transaction at most.
    pub(crate) batch_size: usize,
    /// Retention: days (0 = no age limit), rows and approximate bytes (0 = no limit).
    pub(crate) retention_days: u32,
    pub(crate) max_rows: u64,
    pub(crate) max_bytes: u64,
    pub(crate) purge_interval: Duration,
}

impl SyslogConfig {
    /// The receiver's own configuration (`vigie-syslog`), from this section.
    pub(crate) fn receiver(&self) -> vigie_logs::syslog::SyslogConfig {
        let listen = self.listen.to_string();
        vigie_logs::syslog::SyslogConfig {
            udp: self.udp.clone().unwrap_or_else(|| listen.clone()),
            tcp: self.tcp.clone().unwrap_or(listen),
            tls: self.tls.clone(),
            max_connections: self.max_connections,
            max_message_bytes: self.max_message_bytes,
            queue_capacity: self.queue_capacity,
            idle_timeout: format!("{}ms", self.idle_timeout.as_millis()),
            timezone: self.timezone.clone(),
            source_name: self.source_name.clone(),
        }
    }
}

/// `[console]`: the web console's language, time zone, sessions and lockout.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ConsoleConfig {
    /// `fr` or `en`: pages for people with no choice and no `Accept-Language` match.
    pub(crate) default_language: String,
    /// An IANA zone (`Africa/Dakar`): how times are shown to users who chose none.
    pub(crate) timezone: String,
    /// A session unused this long ends.
    pub(crate) session_idle: Duration,
    /// A session ends this long after the login, however active.
    pub(crate) session_lifetime: Duration,
    /// Wrong passwords in a row that lock an account.
    pub(crate) lockout_threshold: u32,
    /// The first lock's length; each further lock doubles it, up to `lockout_max`.
    pub(crate) lockout_base: Duration,
    pub(crate) lockout_max: Duration,
    /// How long an activation link mailed to a new user stays valid.
    pub(crate) activation_ttl: Duration,
}

/// `[log]`: the process's own logs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct LogConfig {
    /// A `tracing` filter (`info`, `vigie=debug,sqlx=warn`).
    pub(crate) filter: String,
    pub(crate) format: LogFormat,
}

/// How log lines are written on stderr.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum LogFormat {
    /// One readable line per event.
    Human,
    /// One JSON object per line, for log collectors.
    Json,
}

/// `[pipeline]`: ingestion between the sources and the store.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct PipelineConfig {
    /// Records waiting for the writer; when full, submitters wait up to `submit_timeout`.
    pub(crate) queue_capacity: usize,
    /// Most records the writer stores in one transaction.
    pub(crate) batch_max: usize,
    /// How long a submitter waits for room in the queue before giving up (push: 503).
    pub(crate) submit_timeout: Duration,
    /// Qualification rules; a relative path in the file is resolved against the file's folder.
    pub(crate) rules_file: Option<PathBuf>,
    /// The fields that make two records the same alert, unless a source or rule says otherwise.
    pub(crate) fingerprint: FingerprintSpec,
    /// The domain of records no source or rule places; always one of `domains`.
    pub(crate) default_domain: String,
    /// The level of records no source or rule qualifies.
    pub(crate) default_severity: Level,
    /// An alert raised again after a clear `flap_threshold` times within `flap_window` is flapping.
    pub(crate) flap_window: Duration,
    pub(crate) flap_threshold: u32,
    /// Archived alerts are purged this long after they were archived; deleted ones after
    /// `deleted_retention`.
    pub(crate) archive_retention: Duration,
    pub(crate) deleted_retention: Duration,
}

/// `[smtp]`: outgoing mail.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct SmtpConfig {
    /// `smtp://[user:pass@]host:port` (or `smtps://`); its password never appears in `Debug`.
    pub(crate) url: String,
    pub(crate) from: String,
}

/// One `[[sources]]` block: a database the hub polls.
#[derive(Clone, PartialEq)]
pub(crate) struct SourceConfig {
    /// Unique; becomes the `source` of the alerts it produces.
    pub(crate) name: String,
    pub(crate) kind: SourceKind,
    /// `mysql://`, `mssql://`, `postgres://` or `postgresql://`; its password never appears in
    /// `Debug`.
    pub(crate) url: String,
    /// Time between two polls.
    pub(crate) interval: Duration,
    /// A disabled source stays configured but is not polled.
    pub(crate) enabled: bool,
    /// The domain of this source's records unless a rule says otherwise; one of `domains`.
    pub(crate) domain: Option<String>,
    /// This source's own fingerprint fields, over the pipeline's.
    pub(crate) fingerprint: Option<FingerprintSpec>,
}

/// The product a source polls, which decides the connector used.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum SourceKind {
    Glpi,
    ManageEngine,
    WhatsUp,
    SolarWinds,
    Bareos,
    /// A generic SQL query.
    Sql,
}

impl SourceKind {
    /// Every kind, in the order of [`SourceKind::as_str`] names shown in messages.
    pub(crate) const ALL: [SourceKind; 6] = [
        SourceKind::Glpi,
        SourceKind::ManageEngine,
        SourceKind::WhatsUp,
        SourceKind::SolarWinds,
        SourceKind::Bareos,
        SourceKind::Sql,
    ];

    /// The name used in the configuration file.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            SourceKind::Glpi => "glpi",
            SourceKind::ManageEngine => "manageengine",
            SourceKind::WhatsUp => "whatsup",
            SourceKind::SolarWinds => "solarwinds",
            SourceKind::Bareos => "bareos",
            SourceKind::Sql => "sql",
        }
    }
}

impl fmt::Display for SourceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for SourceKind {
    type Err = String;

    fn from_str(s: &str) -> Result<SourceKind, String> {
        SourceKind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| {
                let names: Vec<_> = SourceKind::ALL.iter().map(|k| k.as_str()).collect();
                format!(
                    "unknown source kind `{s}` (expected one of: {})",
                    names.join(", ")
                )
            })
    }
}

// Hand-written `Debug`s: URLs may carry passwords, and configs end up in logs.
impl fmt::Debug for DatabaseConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DatabaseConfig")
            .field("url", &redact_url(&self.url))
            .field("max_connections", &self.max_connections)
            .field("acquire_timeout", &self.acquire_timeout)
            .finish()
    }
}

impl fmt::Debug for SmtpConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmtpConfig")
            .field("url", &redact_url(&self.url))
            .field("from", &self.from)
            .finish()
    }
}

impl fmt::Debug for SourceConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SourceConfig")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .field("url", &redact_url(&self.url))
            .field("interval", &self.interval)
            .field("enabled", &self.enabled)
            .field("domain", &self.domain)
            .field("fingerprint", &self.fingerprint)
            .finish()
    }
}

/// One thing wrong with the configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ConfigProblem {
    /// A dotted TOML path (`http.listen`, `sources[1].url`, `domains[0].code`), an environment
    /// variable's name (`VIGIE_HTTP_LISTEN`), or the file's path for an unreadable or
    /// syntactically broken file.
    pub(crate) key: String,
    pub(crate) reason: String,
}

impl fmt::Display for ConfigProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.key, self.reason)
    }
}

impl std::error::Error for ConfigProblem {}

impl Config {
    /// Every default, as with no file and no environment.
    #[allow(dead_code)] // used by unit tests of other modules of this binary
    pub(crate) fn default_for_tests() -> Config {
        Config::defaults()
    }

    fn defaults() -> Config {
        let data_dir = PathBuf::from("./data");
        Config {
            database: DatabaseConfig {
                url: default_database_url(&data_dir),
                max_connections: 8,
                acquire_timeout: Duration::from_secs(3),
            },
            http: HttpConfig {
                listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
                workers: 0,
                max_body_bytes: 4 * MIB as usize,
                max_batch: 1000,
                public_url: None,
            },
            syslog: SyslogConfig {
                listen: SocketAddr::from(([127, 0, 0, 1], 5514)),
                udp: None,
                tcp: None,
                tls: None,
                max_connections: 1000,
                max_message_bytes: 64 * KIB as usize,
                queue_capacity: 16_384,
                idle_timeout: Duration::from_secs(300),
                timezone: "UTC".to_owned(),
                source_name: "syslog".to_owned(),
                batch_size: 8000,
                retention_days: 30,
                max_rows: 0,
                max_bytes: 2 * 1024 * MIB,
                purge_interval: Duration::from_secs(60),
            },
            data_dir,
            log: LogConfig {
                filter: "info".to_owned(),
                format: LogFormat::Human,
            },
            console: ConsoleConfig {
                default_language: "fr".to_owned(),
                timezone: "UTC".to_owned(),
                session_idle: Duration::from_secs(30 * 60),
                session_lifetime: Duration::from_secs(12 * 3600),
                lockout_threshold: 5,
                lockout_base: Duration::from_secs(60),
                lockout_max: Duration::from_secs(3600),
                activation_ttl: Duration::from_secs(72 * 3600),
            },
            pipeline: PipelineConfig {
                queue_capacity: 10_000,
                batch_max: 2000,
                submit_timeout: Duration::from_secs(10),
                rules_file: None,
                fingerprint: FingerprintSpec::default(),
                default_domain: "systems".to_owned(),
                default_severity: Level::Warning,
                flap_window: Duration::from_secs(3600),
                flap_threshold: 3,
                archive_retention: Duration::from_secs(180 * 86_400),
                deleted_retention: Duration::from_secs(86_400),
            },
            domains: Domains::default(),
            smtp: None,
            notify: vigie_notify::NotifySettings::default(),
            hosts: vigie_hosts::HostsSettings::default(),
            oncall: oncall::OncallConfig::default(),
            incidents_archive_after: vigie_incidents::archive::DEFAULT_ARCHIVE_AFTER,
            sources: Vec::new(),
            source_path: None,
        }
    }
}

fn default_database_url(data_dir: &Path) -> String {
    format!("sqlite://{}", data_dir.join("vigie.db").display())
}

/// Loads the configuration from `file` (`--config`), else from `$VIGIE_CONFIG`, else from the
/// environment and the defaults alone; the environment overrides the file.
pub(crate) fn load(file: Option<&Path>) -> Result<Config, Vec<ConfigProblem>> {
    // `std::env::var` cannot tell "unset" from "not UTF-8" through an `Option`; report the
    // latter instead of silently ignoring the variable.
    let mut problems: Vec<ConfigProblem> = ENV_VARS
        .iter()
        .filter(|name| matches!(std::env::var(name), Err(std::env::VarError::NotUnicode(_))))
        .map(|name| ConfigProblem {
            key: (*name).to_owned(),
            reason: "is not valid UTF-8".to_owned(),
        })
        .collect();
    let loaded = load_from(file, &|name| std::env::var(name).ok());
    match loaded {
        Ok(config) if problems.is_empty() => Ok(config),
        Ok(_) => Err(problems),
        Err(more) => {
            problems.extend(more);
            Err(problems)
        }
    }
}

/// [`load`] with the environment given as a function, for tests. An empty variable counts as
/// unset. On failure, every problem found is returned, in file order, then the environment's.
pub(crate) fn load_from(
    file: Option<&Path>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Config, Vec<ConfigProblem>> {
    let env = |name: &str| env(name).filter(|v| !v.is_empty());
    let mut p = Problems::default();
    let path = file
        .map(Path::to_path_buf)
        .or_else(|| env(ENV_CONFIG).map(PathBuf::from));
    let mut loader = Loader {
        cfg: Config::defaults(),
        db_url: None,
        smtp_url_missing: false,
        smtp_url: None,
        smtp_from: None,
        base_dir: path
            .as_deref()
            .and_then(Path::parent)
            .map(Path::to_path_buf)
            .unwrap_or_default(),
    };
    if let Some(path) = &path
        && let Some(table) = read_table(path, &mut p)
    {
        loader.file(&table, &mut p);
    }
    loader.cfg.source_path = path;
    loader.environment(&env, &mut p);
    loader.finish(&mut p);
    if p.0.is_empty() {
        Ok(loader.cfg)
    } else {
        Err(p.0)
    }
}

fn read_table(path: &Path, p: &mut Problems) -> Option<Table> {
    let key = path.display().to_string();
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) => {
            p.add(key, format!("cannot read: {e}"));
            return None;
        }
    };
    match text.parse::<Table>() {
        Ok(table) => Some(table),
        Err(e) => {
            p.add(key, e.to_string().trim_end().to_owned());
            None
        }
    }
}

#[derive(Default)]
struct Problems(Vec<ConfigProblem>);

impl Problems {
    fn add(&mut self, key: impl Into<String>, reason: impl Into<String>) {
        self.0.push(ConfigProblem {
            key: key.into(),
            reason: reason.into(),
        });
    }
}

/// The configuration being built, with what must wait for the environment before it is final.
struct Loader {
    cfg: Config,
    /// `database.url` from the file, when set there.
    db_url: Option<String>,
    /// `[smtp]` is present without `url`.
    smtp_url_missing: bool,
    smtp_url: Option<String>,
    smtp_from: Option<String>,
    /// The config file's folder, for relative paths in it.
    base_dir: PathBuf,
}

impl Loader {
    fn file(&mut self, table: &Table, p: &mut Problems) {
        let mut root = Section::new(String::new(), table);
        if let Some(dir) = root.parsed(p, "data_dir", non_empty) {
            self.cfg.data_dir = PathBuf::from(dir);
        }
        if let Some(mut s) = root.section(p, "database") {
            self.db_url = s.parsed(p, "url", database_url);
            set(
                &mut self.cfg.database.max_connections,
                s.int_in(p, "max_connections", 1..=1000),
            );
            set(
                &mut self.cfg.database.acquire_timeout,
                s.duration(p, "acquire_timeout", Duration::from_millis(1)),
            );
            s.finish(p);
        }
        if let Some(mut s) = root.section(p, "http") {
            let http = &mut self.cfg.http;
            set(&mut http.listen, s.addr(p, "listen"));
            set(&mut http.workers, s.int_in(p, "workers", 0..=256));
            set(
                &mut http.max_body_bytes,
                s.int_in(p, "max_body_bytes", KIB..=256 * MIB),
            );
            set(&mut http.max_batch, s.int_in(p, "max_batch", 1..=100_000));
            http.public_url = s.parsed(p, "public_url", public_url);
            s.finish(p);
        }
        if let Some(mut s) = root.section(p, "syslog") {
            self.syslog(&mut s, p);
            s.finish(p);
        }
        if let Some(mut s) = root.section(p, "console") {
            let c = &mut self.cfg.console;
            set(
                &mut c.default_language,
                s.parsed(p, "default_language", language),
            );
            set(&mut c.timezone, s.parsed(p, "timezone", timezone));
            set(
                &mut c.session_idle,
                s.duration(p, "session_idle", Duration::from_secs(60)),
            );
            set(
                &mut c.session_lifetime,
                s.duration(p, "session_lifetime", Duration::from_secs(60)),
            );
            set(
                &mut c.lockout_threshold,
                s.int_in(p, "lockout_threshold", 1..=100),
            );
            set(
                &mut c.lockout_base,
                s.duration(p, "lockout_base", Duration::from_secs(1)),
            );
            set(
                &mut c.lockout_max,
                s.duration(p, "lockout_max", Duration::from_secs(1)),
            );
            set(
                &mut c.activation_ttl,
                s.duration(p, "activation_ttl", Duration::from_secs(60)),
            );
            if c.session_lifetime < c.session_idle {
                p.add(
                    "console.session_lifetime",
                    "must not be shorter than console.session_idle",
                );
            }
            if c.lockout_max < c.lockout_base {
                p.add(
                    "console.lockout_max",
                    "must not be shorter than console.lockout_base",
                );
            }
            s.finish(p);
        }
        if let Some(mut s) = root.section(p, "log") {
            set(&mut self.cfg.log.filter, s.parsed(p, "filter", log_filter));
            set(&mut self.cfg.log.format, s.parsed(p, "format", log_format));
            s.finish(p);
        }
        // Domains first: the pipeline and the sources refer to them.
        let known = root
            .sections(p, "domains")
            .map(|list| self.domains(list, p));
        let known = known.unwrap_or_else(|| self.cfg.domains.ids().map(str::to_owned).collect());
        let mut pipeline = root.section(p, "pipeline");
        if let Some(s) = &mut pipeline {
            self.pipeline(s, p);
        }
        let key = Section::key_of("pipeline", "default_domain");
        check_domain(&known, &self.cfg.pipeline.default_domain, &key, p);
        if let Some(s) = pipeline {
            s.finish(p);
        }
        if let Some(mut s) = root.section(p, "smtp") {
            // Not an error yet: `VIGIE_SMTP_URL` may provide it.
            self.smtp_url_missing = !s.has("url");
            self.smtp_url = s.parsed(p, "url", smtp_url);
            self.smtp_from = s.parsed(p, "from", mail_address);
            s.finish(p);
        }
        if let Some(list) = root.sections(p, "sources") {
            self.sources(list, &known, p);
        }
        if let Some(mut s) = root.section(p, "hosts") {
            hosts::read(&mut s, &mut self.cfg.hosts, p);
            s.finish(p);
        }
        if let Some(mut s) = root.section(p, "oncall") {
            oncall::read(&mut s, &mut self.cfg.oncall, p);
            s.finish(p);
        }
        if let Some(mut s) = root.section(p, "incidents") {
            set(
                &mut self.cfg.incidents_archive_after,
                s.duration(p, "archive_after", Duration::from_secs(86_400)),
            );
            s.finish(p);
        }
        // `[notify]`, `[sms]`, `[[webhooks]]`: the notify module reads them; problems keep keys.
        for key in ["notify", "sms", "webhooks"] {
            let _ = root.get(key);
        }
        let (notify, problems) = vigie_notify::file_config::from_toml(table);
        self.cfg.notify = notify;
        for (key, reason) in problems {
            p.add(key, reason);
        }
        root.finish(p);
    }

    /// Reads `[[domains]]`; returns every id written, even in invalid entries, so that
    /// references to them are not reported as unknown on top of the entry's own problem.
    fn domains(&mut self, list: Vec<Section<'_>>, p: &mut Problems) -> Vec<String> {
        if list.is_empty() {
            p.add("domains", "is empty: configure at least one domain");
        }
        let mut ids: Vec<String> = Vec::new();
        let mut defs = Vec::new();
        let mut first_ids = HashMap::new();
        let mut first_codes = HashMap::new();
        for mut s in list {
            let id = s.required(p, "id", domain_id);
            if let Some(id) = &id {
                unique(&mut first_ids, id, &s, "id", "domain id", p);
                ids.push(id.clone());
            }
            let code = s.required(p, "code", domain_code);
            if let Some(code) = &code {
                unique(&mut first_codes, code, &s, "code", "domain code", p);
            }
            let label_en = s.required(p, "label_en", non_empty);
            let label_fr = s.required(p, "label_fr", non_empty);
            if let (Some(id), Some(code), Some(label_en), Some(label_fr)) =
                (id, code, label_en, label_fr)
            {
                defs.push(DomainDef {
                    id,
                    code,
                    label_en,
                    label_fr,
                });
            }
            s.finish(p);
        }
        self.cfg.domains = Domains::new(defs);
        ids
    }

    fn pipeline(&mut self, s: &mut Section<'_>, p: &mut Problems) {
        let pl = &mut self.cfg.pipeline;
        set(
            &mut pl.queue_capacity,
            s.int_in(p, "queue_capacity", 1..=10_000_000),
        );
        set(&mut pl.batch_max, s.int_in(p, "batch_max", 1..=100_000));
        set(
            &mut pl.submit_timeout,
            s.duration(p, "submit_timeout", Duration::from_millis(1)),
        );
        pl.rules_file = s
            .parsed(p, "rules_file", non_empty)
            .map(|f| self.base_dir.join(f));
        set(&mut pl.fingerprint, s.fingerprint(p, "fingerprint"));
        set(&mut pl.default_domain, s.string(p, "default_domain"));
        if let Some(n) = s.u64_in(p, "default_severity", 0..=2) {
            set(&mut pl.default_severity, Level::from_number(n as i64));
        }
        set(
            &mut pl.flap_window,
            s.duration(p, "flap_window", Duration::from_secs(1)),
        );
        set(
            &mut pl.flap_threshold,
            s.int_in(p, "flap_threshold", 2..=1000),
        );
        set(
            &mut pl.archive_retention,
            s.duration(p, "archive_retention", Duration::from_secs(3600)),
        );
        set(
            &mut pl.deleted_retention,
            s.duration(p, "deleted_retention", Duration::from_secs(60)),
        );
    }

    fn sources(&mut self, list: Vec<Section<'_>>, domains: &[String], p: &mut Problems) {
        let mut first_names = HashMap::new();
        for mut s in list {
            let name = s.required(p, "name", source_name);
            if let Some(name) = &name {
                unique(&mut first_names, name, &s, "name", "source name", p);
            }
            let kind = s.required(p, "kind", SourceKind::from_str);
            let url = s.required(p, "url", source_url);
            let interval = s.duration(p, "interval", Duration::from_secs(1));
            let enabled = s.bool(p, "enabled");
            let domain = s.string(p, "domain");
            if let Some(domain) = &domain {
                check_domain(domains, domain, &s.key("domain"), p);
            }
            let fingerprint = s.fingerprint(p, "fingerprint");
            if let (Some(name), Some(kind), Some(url)) = (name, kind, url) {
                self.cfg.sources.push(SourceConfig {
                    name,
                    kind,
                    url,
                    interval: interval.unwrap_or(Duration::from_secs(60)),
                    enabled: enabled.unwrap_or(true),
                    domain,
                    fingerprint,
                });
            }
            s.finish(p);
        }
    }

    fn syslog(&mut self, s: &mut Section<'_>, p: &mut Problems) {
        let c = &mut self.cfg.syslog;
        set(&mut c.listen, s.addr(p, "listen"));
        let listener = |text: &str| -> Result<String, String> {
            let t = text.trim();
            if t.is_empty() {
                Ok(String::new())
            } else {
                parse_addr(t).map(|a| a.to_string())
            }
        };
        c.udp = s.parsed(p, "udp", listener);
        c.tcp = s.parsed(p, "tcp", listener);
        set(
            &mut c.max_connections,
            s.int_in(p, "max_connections", 1..=100_000),
        );
        set(
            &mut c.max_message_bytes,
            s.int_in(p, "max_message_bytes", 480..=MIB),
        );
        set(
            &mut c.queue_capacity,
            s.int_in(p, "queue_capacity", 1..=1_000_000),
        );
        set(
            &mut c.idle_timeout,
            s.duration(p, "idle_timeout", Duration::from_secs(1)),
        );
        set(
            &mut c.timezone,
            s.parsed(p, "timezone", |t| {
                vigie_logs::syslog::config::parse_timezone(t).map(|_| t.trim().to_owned())
            }),
        );
        set(&mut c.source_name, s.parsed(p, "source_name", source_name));
        set(&mut c.batch_size, s.int_in(p, "batch_size", 1..=10_000));
        set(
            &mut c.retention_days,
            s.int_in(p, "retention_days", 0..=36_500),
        );
        set(
            &mut c.max_rows,
            s.u64_in(p, "max_rows", 0..=i64::MAX as u64),
        );
        set(
            &mut c.max_bytes,
            s.u64_in(p, "max_bytes", 0..=i64::MAX as u64),
        );
        set(
            &mut c.purge_interval,
            s.duration(p, "purge_interval", Duration::from_secs(1)),
        );
        if let Some(mut t) = s.section(p, "tls") {
            let listen = t.required(p, "listen", |a| parse_addr(a).map(|a| a.to_string()));
            let cert_file = t.required(p, "cert_file", non_empty);
            let key_file = t.required(p, "key_file", non_empty);
            let client_ca_file = t.parsed(p, "client_ca_file", non_empty);
            if let (Some(listen), Some(cert), Some(key)) = (listen, cert_file, key_file) {
                c.tls = Some(vigie_logs::syslog::TlsConfig {
                    listen,
                    cert_file: self.base_dir.join(cert),
                    key_file: self.base_dir.join(key),
                    client_ca_file: client_ca_file.map(|f| self.base_dir.join(f)),
                });
            }
            t.finish(p);
        }
        // What only the receiver can check (the TLS files, above all), under the same keys.
        if let Err(problems) = c.receiver().validate("syslog") {
            for problem in problems {
                p.add(problem.key, problem.problem);
            }
        }
    }

    fn environment(&mut self, env: &dyn Fn(&str) -> Option<String>, p: &mut Problems) {
        let read = |p: &mut Problems, name: &str, parse: fn(&str) -> Result<String, String>| {
            env(name).and_then(|v| parse(&v).map_err(|e| p.add(name, e)).ok())
        };
        if let Some(dir) = env(ENV_DATA_DIR) {
            self.cfg.data_dir = PathBuf::from(dir);
        }
        if let Some(url) = read(p, ENV_DATABASE_URL, database_url) {
            self.db_url = Some(url);
        }
        for (name, slot) in [
            (ENV_HTTP_LISTEN, &mut self.cfg.http.listen),
            (ENV_SYSLOG_LISTEN, &mut self.cfg.syslog.listen),
        ] {
            if let Some(v) = env(name) {
                set(slot, parse_addr(&v).map_err(|e| p.add(name, e)).ok());
            }
        }
        // The variable is the address of both listeners, whatever the file said of each.
        if env(ENV_SYSLOG_LISTEN).is_some() {
            self.cfg.syslog.udp = None;
            self.cfg.syslog.tcp = None;
        }
        if let Some(filter) = read(p, ENV_LOG, log_filter) {
            self.cfg.log.filter = filter;
        }
        if let Some(v) = env(ENV_LOG_FORMAT) {
            set(
                &mut self.cfg.log.format,
                log_format(&v).map_err(|e| p.add(ENV_LOG_FORMAT, e)).ok(),
            );
        }
        if env(ENV_SMTP_URL).is_some() {
            // Even when invalid (then reported): a missing `smtp.url` is not news.
            self.smtp_url_missing = false;
        }
        if let Some(url) = read(p, ENV_SMTP_URL, smtp_url) {
            self.smtp_url = Some(url);
        }
    }

    /// What needs both the file and the environment.
    fn finish(&mut self, p: &mut Problems) {
        self.cfg.database.url = self
            .db_url
            .take()
            .unwrap_or_else(|| default_database_url(&self.cfg.data_dir));
        if let Some(url) = self.smtp_url.take() {
            // An invalid `from` was reported already; the default only stands in for a missing one.
            let from = self.smtp_from.take();
            let from = from.unwrap_or_else(|| DEFAULT_SMTP_FROM.to_owned());
            self.cfg.smtp = Some(SmtpConfig { url, from });
        } else if self.smtp_url_missing {
            p.add(
                "smtp.url",
                format!("missing (required in [smtp], or set {ENV_SMTP_URL})"),
            );
        }
    }
}

fn set<T>(slot: &mut T, value: Option<T>) {
    if let Some(value) = value {
        *slot = value;
    }
}

/// Reports `value` when an earlier element of the array (recorded in `first`) has it too.
fn unique(
    first: &mut HashMap<String, String>,
    value: &str,
    s: &Section<'_>,
    key: &str,
    what: &str,
    p: &mut Problems,
) {
    match first.get(value) {
        Some(earlier) => p.add(
            s.key(key),
            format!("duplicate {what} `{value}` (also {earlier})"),
        ),
        None => {
            first.insert(value.to_owned(), s.path.clone());
        }
    }
}

fn check_domain(known: &[String], id: &str, key: &str, p: &mut Problems) {
    if !known.iter().any(|k| k == id) {
        p.add(
            key,
            format!("unknown domain `{id}` (configured: {})", known.join(", ")),
        );
    }
}

/// A reader over one TOML table that records problems with their key path and remembers which
/// keys were read, so that [`Section::finish`] can flag every other key as unknown.
struct Section<'a> {
    /// `""` for the root, `http`, `sources[1]`.
    path: String,
    table: &'a Table,
    read: Vec<&'static str>,
}

impl<'a> Section<'a> {
    fn new(path: String, table: &'a Table) -> Section<'a> {
        Section {
            path,
            table,
            read: Vec::new(),
        }
    }

    fn key_of(path: &str, key: &str) -> String {
        if path.is_empty() {
            key.to_owned()
        } else {
            format!("{path}.{key}")
        }
    }

    /// The full path of `key` in this section.
    fn key(&self, key: &str) -> String {
        Section::key_of(&self.path, key)
    }

    fn has(&self, key: &str) -> bool {
        self.table.contains_key(key)
    }

    /// The raw value, marking the key as known.
    fn get(&mut self, key: &'static str) -> Option<&'a Value> {
        self.read.push(key);
        self.table.get(key)
    }

    fn wrong_type(&self, p: &mut Problems, key: &str, expected: &str, found: &Value) {
        p.add(
            self.key(key),
            format!("expected {expected}, found {}", a_type(found)),
        );
    }

    fn string(&mut self, p: &mut Problems, key: &'static str) -> Option<String> {
        let v = self.get(key)?;
        match v.as_str() {
            Some(s) => Some(s.to_owned()),
            None => {
                self.wrong_type(p, key, "a string", v);
                None
            }
        }
    }

    /// A string turned into `T` by `parse`, whose error is the reason.
    fn parsed<T>(
        &mut self,
        p: &mut Problems,
        key: &'static str,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Option<T> {
        let s = self.string(p, key)?;
        parse(&s).map_err(|e| p.add(self.key(key), e)).ok()
    }

    /// Like [`Section::parsed`], and missing is a problem.
    fn required<T>(
        &mut self,
        p: &mut Problems,
        key: &'static str,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Option<T> {
        if !self.has(key) {
            self.read.push(key);
            p.add(self.key(key), "missing (required)");
            return None;
        }
        self.parsed(p, key, parse)
    }

    fn u64_in(
        &mut self,
        p: &mut Problems,
        key: &'static str,
        range: RangeInclusive<u64>,
    ) -> Option<u64> {
        let v = self.get(key)?;
        let Some(n) = v.as_integer() else {
            self.wrong_type(p, key, "an integer", v);
            return None;
        };
        match u64::try_from(n) {
            Ok(n) if range.contains(&n) => Some(n),
            _ => {
                p.add(
                    self.key(key),
                    format!(
                        "must be between {} and {}, found {n}",
                        range.start(),
                        range.end()
                    ),
                );
                None
            }
        }
    }

    /// [`Section::u64_in`] converted to the field's type (the ranges all fit).
    fn int_in<T: TryFrom<u64>>(
        &mut self,
        p: &mut Problems,
        key: &'static str,
        range: RangeInclusive<u64>,
    ) -> Option<T> {
        self.u64_in(p, key, range).and_then(|n| T::try_from(n).ok())
    }

    fn bool(&mut self, p: &mut Problems, key: &'static str) -> Option<bool> {
        let v = self.get(key)?;
        let b = v.as_bool();
        if b.is_none() {
            self.wrong_type(p, key, "a boolean (true or false)", v);
        }
        b
    }

    /// A duration string (`"30s"`), at least `min`.
    fn duration(&mut self, p: &mut Problems, key: &'static str, min: Duration) -> Option<Duration> {
        let v = self.get(key)?;
        if v.as_str().is_none() {
            self.wrong_type(p, key, "a duration string such as \"30s\"", v);
            return None;
        }
        self.parsed(p, key, |s| {
            let d = parse_duration(s)?;
            if d < min {
                return Err(format!(
                    "must be at least {}, found `{s}`",
                    show_duration(min)
                ));
            }
            Ok(d)
        })
    }

    fn addr(&mut self, p: &mut Problems, key: &'static str) -> Option<SocketAddr> {
        self.parsed(p, key, parse_addr)
    }

    /// An array of strings; each bad element is reported as `key[i]`.
    fn strings(&mut self, p: &mut Problems, key: &'static str) -> Option<Vec<String>> {
        let v = self.get(key)?;
        let Some(items) = v.as_array() else {
            self.wrong_type(p, key, "an array of strings", v);
            return None;
        };
        let mut out = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            match item.as_str() {
                Some(s) => out.push(s.to_owned()),
                None => p.add(
                    format!("{}[{i}]", self.key(key)),
                    format!("expected a string, found {}", a_type(item)),
                ),
            }
        }
        (out.len() == items.len()).then_some(out)
    }

    fn fingerprint(&mut self, p: &mut Problems, key: &'static str) -> Option<FingerprintSpec> {
        let names = self.strings(p, key)?;
        FingerprintSpec::parse(&names)
            .map_err(|e| p.add(self.key(key), e))
            .ok()
    }

    /// A sub-table (`[http]`).
    fn section(&mut self, p: &mut Problems, key: &'static str) -> Option<Section<'a>> {
        let v = self.get(key)?;
        match v.as_table() {
            Some(t) => Some(Section::new(self.key(key), t)),
            None => {
                self.wrong_type(p, key, &format!("a table ([{}])", self.key(key)), v);
                None
            }
        }
    }

    /// An array of tables (`[[sources]]`), each element's path being `key[i]`.
    fn sections(&mut self, p: &mut Problems, key: &'static str) -> Option<Vec<Section<'a>>> {
        let v = self.get(key)?;
        let Some(items) = v.as_array() else {
            let expected = format!("an array of tables ([[{}]])", self.key(key));
            self.wrong_type(p, key, &expected, v);
            return None;
        };
        let mut out = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            let path = format!("{}[{i}]", self.key(key));
            match item.as_table() {
                Some(t) => out.push(Section::new(path, t)),
                None => p.add(path, format!("expected a table, found {}", a_type(item))),
            }
        }
        Some(out)
    }

    /// Flags every key that was not read.
    fn finish(self, p: &mut Problems) {
        let mut expected = self.read.clone();
        expected.sort_unstable();
        expected.dedup();
        for (key, value) in self.table {
            if self.read.contains(&key.as_str()) {
                continue;
            }
            let what = match value {
                Value::Table(_) => "unknown section",
                Value::Array(a) if !a.is_empty() && a.iter().all(Value::is_table) => {
                    "unknown section"
                }
                _ => "unknown key",
            };
            p.add(
                self.key(key),
                format!("{what} (expected one of: {})", expected.join(", ")),
            );
        }
    }
}

/// `"a string"`, `"an integer"`: the TOML type of `v` with its article.
fn a_type(v: &Value) -> String {
    let t = v.type_str();
    let article = if t.starts_with(['a', 'e', 'i', 'o', 'u']) {
        "an"
    } else {
        "a"
    };
    format!("{article} {t}")
}

fn non_empty(s: &str) -> Result<String, String> {
    if s.trim().is_empty() {
        Err("is empty".to_owned())
    } else {
        Ok(s.to_owned())
    }
}

/// `"500ms"`, `"30s"`, `"5m"`, `"1h"`, `"2d"`: a whole number and one unit.
fn parse_duration(s: &str) -> Result<Duration, String> {
    const UNITS: &str = "ms, s, m, h or d";
    let t = s.trim();
    if t.starts_with('-') {
        return Err(format!("`{s}` is negative: a duration is at least 0"));
    }
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    if number.is_empty() {
        return Err(format!(
            "`{s}` is not a duration: write a whole number and a unit ({UNITS}), e.g. \"30s\""
        ));
    }
    let unit = unit.trim_start();
    if unit.is_empty() {
        return Err(format!(
            "`{s}` has no unit: write e.g. \"{number}s\" (units: {UNITS})"
        ));
    }
    if unit.starts_with('.') {
        return Err(format!(
            "`{s}` is not a whole number: use a smaller unit (e.g. \"1500ms\" for 1.5s)"
        ));
    }
    let millis_per: u64 = match unit {
        "ms" => 1,
        "s" => 1000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        other => return Err(format!("`{s}` has an unknown unit `{other}` (use {UNITS})")),
    };
    let too_long = || {
        format!(
            "`{s}` is too long (at most {})",
            show_duration(MAX_DURATION)
        )
    };
    let n: u64 = number.parse().map_err(|_| too_long())?;
    let d = n
        .checked_mul(millis_per)
        .map(Duration::from_millis)
        .ok_or_else(too_long)?;
    if d > MAX_DURATION {
        return Err(too_long());
    }
    Ok(d)
}

/// A duration in the largest unit that writes it exactly, as the file would.
fn show_duration(d: Duration) -> String {
    let ms = d.as_millis();
    for (unit, per) in [
        ("d", 86_400_000),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1000),
    ] {
        if ms >= per && ms.is_multiple_of(per) {
            return format!("{}{unit}", ms / per);
        }
    }
    format!("{ms}ms")
}

fn parse_addr(s: &str) -> Result<SocketAddr, String> {
    SocketAddr::from_str(s)
        .map_err(|_| format!("`{s}` is not an address:port (use an IP, e.g. 127.0.0.1:8080)"))
}

/// The scheme of `url` if it is one of `schemes` and something follows it.
fn check_scheme(url: &str, schemes: &[&str], expected: &str) -> Result<String, String> {
    let shown = redact_url(url);
    match url.split_once(':') {
        Some((scheme, rest)) if schemes.contains(&scheme) => {
            if rest.trim_start_matches('/').is_empty() {
                Err(format!("`{shown}` names no host or path"))
            } else {
                Ok(url.to_owned())
            }
        }
        _ => Err(format!(
            "`{shown}` is not a supported URL: expected {expected}"
        )),
    }
}

fn database_url(url: &str) -> Result<String, String> {
    check_scheme(
        url,
        &["sqlite", "postgres", "postgresql"],
        "sqlite://PATH or postgres://…",
    )
}

fn source_url(url: &str) -> Result<String, String> {
    if !url.contains("://") {
        return Err(format!(
            "`{}` is not a supported URL: expected mysql://, mssql://, postgres:// or postgresql://",
            redact_url(url)
        ));
    }
    check_scheme(
        url,
        &["mysql", "mssql", "postgres", "postgresql"],
        "mysql://, mssql://, postgres:// or postgresql://",
    )
}

fn smtp_url(url: &str) -> Result<String, String> {
    if !url.contains("://") {
        return Err(format!(
            "`{}` is not a supported URL: expected smtp://[user:pass@]host:port",
            redact_url(url)
        ));
    }
    check_scheme(
        url,
        &["smtp", "smtps"],
        "smtp://[user:pass@]host:port or smtps://…",
    )
}

fn public_url(url: &str) -> Result<String, String> {
    let trimmed = url.trim_end_matches('/');
    let ok = ["http://", "https://"]
        .iter()
        .any(|s| trimmed.strip_prefix(s).is_some_and(|rest| !rest.is_empty()));
    if ok {
        Ok(trimmed.to_owned())
    } else {
        Err(format!(
            "`{url}` is not an http:// or https:// URL (e.g. https://vigie.example.org)"
        ))
    }
}

fn mail_address(s: &str) -> Result<String, String> {
    match s.split_once('@') {
        Some((user, host)) if !user.is_empty() && !host.is_empty() && !s.contains(' ') => {
            Ok(s.to_owned())
        }
        _ => Err(format!(
            "`{s}` is not a mail address (e.g. vigie@example.org)"
        )),
    }
}

fn language(s: &str) -> Result<String, String> {
    match s {
        "fr" | "en" => Ok(s.to_owned()),
        _ => Err(format!("unknown language `{s}` (expected fr or en)")),
    }
}

fn timezone(s: &str) -> Result<String, String> {
    s.parse::<chrono_tz::Tz>()
        .map(|_| s.to_owned())
        .map_err(|_| {
            format!("unknown time zone `{s}` (expected an IANA name such as Europe/Paris)")
        })
}

fn log_filter(s: &str) -> Result<String, String> {
    tracing_subscriber::EnvFilter::try_new(s)
        .map(|_| s.to_owned())
        .map_err(|e| {
            format!("`{s}` is not a log filter ({e}); e.g. \"info\" or \"vigie=debug,info\"")
        })
}

fn log_format(s: &str) -> Result<LogFormat, String> {
    match s {
        "human" => Ok(LogFormat::Human),
        "json" => Ok(LogFormat::Json),
        _ => Err(format!("unknown log format `{s}` (expected human or json)")),
    }
}

/// `s` if it is made of the characters `allowed` accepts and its length is in `len`.
fn identifier(
    s: &str,
    what: &str,
    len: RangeInclusive<usize>,
    allowed: fn(char) -> bool,
    rule: &str,
) -> Result<String, String> {
    if len.contains(&s.chars().count()) && s.chars().all(allowed) {
        Ok(s.to_owned())
    } else {
        Err(format!("`{s}` is not a valid {what} ({rule})"))
    }
}

fn domain_id(s: &str) -> Result<String, String> {
    identifier(
        s,
        "domain id",
        1..=usize::MAX,
        |c| matches!(c, 'a'..='z' | '0'..='9' | '_' | '-'),
        "lowercase letters, digits, `_` and `-`",
    )
}

fn domain_code(s: &str) -> Result<String, String> {
    identifier(
        s,
        "domain code",
        2..=8,
        |c| matches!(c, 'A'..='Z' | '0'..='9'),
        "2 to 8 uppercase letters or digits",
    )
}

fn source_name(s: &str) -> Result<String, String> {
    identifier(
        s,
        "source name",
        1..=usize::MAX,
        |c| matches!(c, 'a'..='z' | '0'..='9' | '_' | '.' | '-'),
        "lowercase letters, digits, `_`, `.` and `-`",
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    /// A temp file holding `text`, removed on drop.
    struct TempFile(PathBuf);

    impl TempFile {
        fn new(text: &str) -> TempFile {
            static N: AtomicUsize = AtomicUsize::new(0);
            let n = N.fetch_add(1, Ordering::Relaxed);
            let path = std::env::temp_dir()
                .join(format!("vigie-config-test-{}-{n}.toml", std::process::id()));
            std::fs::write(&path, text).unwrap();
            TempFile(path)
        }
    }

    impl Drop for TempFile {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    fn load_text(
        text: &str,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Config, Vec<ConfigProblem>> {
        let file = TempFile::new(text);
        load_from(Some(&file.0), env)
    }

    fn problems(text: &str) -> Vec<ConfigProblem> {
        match load_text(text, &no_env) {
            Ok(c) => panic!("expected problems, got {c:?}"),
            Err(p) => p,
        }
    }

    fn reason_of<'a>(problems: &'a [ConfigProblem], key: &str) -> &'a str {
        problems
            .iter()
            .find(|p| p.key == key)
            .map(|p| p.reason.as_str())
            .unwrap_or_else(|| panic!("no problem at `{key}` in {problems:#?}"))
    }

    #[test]
    fn defaults_without_file_or_env() {
        let c = load_from(None, &no_env).unwrap();
        assert_eq!(c.database.url, "sqlite://./data/vigie.db");
        assert_eq!(c.http.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(c.syslog.listen.to_string(), "127.0.0.1:5514");
        assert_eq!(c.data_dir, PathBuf::from("./data"));
        assert_eq!(c.log.filter, "info");
        assert_eq!(c.log.format, LogFormat::Human);
        assert_eq!(c.pipeline.default_domain, "systems");
        assert_eq!(c.pipeline.default_severity, Level::Warning);
        assert_eq!(c.http.max_body_bytes, 4 * 1024 * 1024);
        assert!(c.smtp.is_none() && c.sources.is_empty() && c.source_path.is_none());
        assert_eq!(c, Config::default_for_tests());
    }

    #[test]
    fn syslog_keys_are_read_and_checked_with_their_key() {
        let text = r#"
            [syslog]
            listen = "127.0.0.1:1514"
            udp = ""
            tcp = "0.0.0.0:1601"
            queue_capacity = 100
            retention_days = 7
            max_rows = 1000000
            purge_interval = "30s"
        "#;
        let c = load_text(text, &no_env).unwrap();
        let r = c.syslog.receiver();
        assert_eq!((r.udp.as_str(), r.tcp.as_str()), ("", "0.0.0.0:1601"));
        assert_eq!(r.queue_capacity, 100);
        assert_eq!((c.syslog.retention_days, c.syslog.max_rows), (7, 1_000_000));
        // The variable is the address of both listeners.
        let env = |name: &str| (name == "VIGIE_SYSLOG_LISTEN").then(|| "127.0.0.9:2514".to_owned());
        let r = load_text(text, &env).unwrap().syslog.receiver();
        assert_eq!(
            (r.udp.as_str(), r.tcp.as_str()),
            ("127.0.0.9:2514", "127.0.0.9:2514")
        );

        let p = problems(
            r#"
            [syslog]
            udp = "nowhere"
            queue_capacity = 0
            timezone = "Mars/Olympus"
            retention_days = -1
            purge_interval = "soon"
            [syslog.tls]
            listen = "0.0.0.0:6514"
            cert_file = "/nonexistent/cert.pem"
            key_file = "/nonexistent/key.pem"
        "#,
        );
        for key in [
            "syslog.udp",
            "syslog.queue_capacity",
            "syslog.timezone",
            "syslog.retention_days",
            "syslog.purge_interval",
            "syslog.tls.cert_file",
            "syslog.tls.key_file",
        ] {
            reason_of(&p, key);
        }
        assert!(reason_of(&p, "syslog.tls.cert_file").contains("/nonexistent/cert.pem"));
    }

    #[test]
    fn env_overrides_file_and_empty_env_is_unset() {
        let text = r#"
            [http]
            listen = "0.0.0.0:9000"
            [syslog]
            listen = "0.0.0.0:6514"
            [log]
            filter = "debug"
            format = "human"
            [database]
            url = "sqlite:///var/lib/vigie/file.db"
        "#;
        let env = |name: &str| {
            match name {
                "VIGIE_HTTP_LISTEN" => Some("127.0.0.2:8181"),
                "VIGIE_LOG_FORMAT" => Some("json"),
                "VIGIE_DATABASE_URL" => Some("postgres://vigie:s3cret@db:5432/vigie"),
                "VIGIE_SYSLOG_LISTEN" => Some(""),
                _ => None,
            }
            .map(str::to_owned)
        };
        let c = load_text(text, &env).unwrap();
        assert_eq!(c.http.listen.to_string(), "127.0.0.2:8181");
        assert_eq!(c.syslog.listen.to_string(), "0.0.0.0:6514");
        assert_eq!(c.log.filter, "debug");
        assert_eq!(c.log.format, LogFormat::Json);
        assert_eq!(c.database.url, "postgres://vigie:s3cret@db:5432/vigie");
        assert!(c.source_path.is_some());
    }

    #[test]
    fn vigie_config_names_the_file_and_smtp_url_env_defaults_from() {
        let file = TempFile::new("[http]\nlisten = \"127.0.0.1:7000\"\n");
        let path = file.0.display().to_string();
        let env = |name: &str| match name {
            "VIGIE_CONFIG" => Some(path.clone()),
            "VIGIE_SMTP_URL" => Some("smtp://u:pw@mail:25".to_owned()),
            _ => None,
        };
        let c = load_from(None, &env).unwrap();
        assert_eq!(c.http.listen.port(), 7000);
        assert_eq!(c.source_path.as_deref(), Some(file.0.as_path()));
        let smtp = c.smtp.unwrap();
        assert_eq!(smtp.url, "smtp://u:pw@mail:25");
        assert_eq!(smtp.from, "vigie@localhost");
    }

    #[test]
    fn data_dir_moves_the_default_database() {
        let env = |name: &str| (name == "VIGIE_DATA_DIR").then(|| "/srv/vigie".to_owned());
        let c = load_from(None, &env).unwrap();
        assert_eq!(c.data_dir, PathBuf::from("/srv/vigie"));
        assert_eq!(c.database.url, "sqlite:///srv/vigie/vigie.db");
        // The file's data_dir too, when the url is not set.
        let c = load_text("data_dir = \"/opt/v\"", &no_env).unwrap();
        assert_eq!(c.database.url, "sqlite:///opt/v/vigie.db");
    }

    #[test]
    fn every_problem_is_reported_with_its_key() {
        let p = problems(
            r#"
            colour = "blue"
            [http]
            listen = "localhost:80"
            max_batch = 0
            workers = "4"
            [database]
            acquire_timeout = "30"
            url = "mysql://x@y/z"
            [pipeline]
            submit_timeout = "-1s"
            queue_capacity = 20000000
            fingerprint = ["source", "host"]
            default_severity = 3
            [telemetry]
            on = true
            [[sources]]
            name = "glpi"
            kind = "glpi"
            url = "mysql://u:p@h/glpi"
            interval = "1x"
            [[sources]]
            name = "glpi"
            kind = "nagios"
            url = "http://h"
            domain = "space"
            pollrate = 3
            [[sources]]
            kind = "sql"
            url = "postgres://h/db"
            interval = "500ms"
            enabled = "yes"
            "#,
        );
        let expect = [
            ("colour", "unknown key"),
            ("telemetry", "unknown section"),
            (
                "http.listen",
                "`localhost:80` is not an address:port (use an IP, e.g. 127.0.0.1:8080)",
            ),
            ("http.max_batch", "must be between 1 and 100000, found 0"),
            ("http.workers", "expected an integer, found a string"),
            ("database.acquire_timeout", "has no unit"),
            ("database.url", "expected sqlite://PATH or postgres://"),
            ("pipeline.submit_timeout", "is negative"),
            ("pipeline.queue_capacity", "must be between 1 and 10000000"),
            ("pipeline.fingerprint", "unknown field `host`"),
            (
                "pipeline.default_severity",
                "must be between 0 and 2, found 3",
            ),
            ("sources[0].interval", "unknown unit `x`"),
            (
                "sources[1].name",
                "duplicate source name `glpi` (also sources[0])",
            ),
            ("sources[1].kind", "unknown source kind `nagios`"),
            ("sources[1].url", "expected mysql://"),
            ("sources[1].domain", "unknown domain `space`"),
            ("sources[1].pollrate", "unknown key (expected one of:"),
            ("sources[2].name", "missing (required)"),
            ("sources[2].interval", "must be at least 1s"),
            ("sources[2].enabled", "expected a boolean"),
        ];
        for (key, part) in expect {
            let reason = reason_of(&p, key);
            assert!(reason.contains(part), "{key}: `{reason}` lacks `{part}`");
        }
        assert_eq!(p.len(), expect.len(), "{p:#?}");
    }

    #[test]
    fn domains_are_validated_and_referenced() {
        let text = r#"
            [pipeline]
            default_domain = "net"
            [[domains]]
            id = "net"
            code = "NET"
            label_en = "Network"
            label_fr = "Réseau"
            [[domains]]
            id = "Net"
            code = "NET"
            label_en = "x"
            [[sources]]
            name = "nms"
            kind = "whatsup"
            url = "mssql://sa:pw@h/WhatsUp"
            domain = "systems"
        "#;
        let p = problems(text);
        assert!(reason_of(&p, "domains[1].id").contains("not a valid domain id"));
        assert!(reason_of(&p, "domains[1].code").contains("duplicate domain code `NET`"));
        assert_eq!(reason_of(&p, "domains[1].label_fr"), "missing (required)");
        assert!(reason_of(&p, "sources[0].domain").contains("unknown domain `systems`"));
        assert_eq!(p.len(), 4, "{p:#?}");
        // The default `systems` must exist in a custom list unless default_domain names another.
        let p = problems(
            "[[domains]]\nid = \"net\"\ncode = \"NET\"\nlabel_en = \"N\"\nlabel_fr = \"R\"\n",
        );
        assert!(reason_of(&p, "pipeline.default_domain").contains("`systems`"));
    }

    #[test]
    fn a_valid_file_is_read_fully() {
        let text = r#"
            [pipeline]
            rules_file = "rules.toml"
            default_severity = 2
            [http]
            public_url = "https://vigie.example.org/"
            [smtp]
            url = "smtp://127.0.0.1:2525"
            from = "vigie@example.org"
            [[sources]]
            name = "glpi-prod"
            kind = "glpi"
            url = "mysql://user:password@127.0.0.1:3306/glpi"
            interval = "30s"
            fingerprint = ["source", "source_ref"]
            [[sources]]
            name = "bareos"
            kind = "bareos"
            url = "postgresql://h/bareos"
            enabled = false
            domain = "backup"
        "#;
        let file = TempFile::new(text);
        let c = load_from(Some(&file.0), &no_env).unwrap();
        assert_eq!(
            c.pipeline.rules_file,
            Some(file.0.parent().unwrap().join("rules.toml"))
        );
        assert_eq!(c.pipeline.default_severity, Level::Critical);
        assert_eq!(c.smtp.as_ref().unwrap().from, "vigie@example.org");
        assert_eq!(c.sources.len(), 2);
        assert_eq!(c.sources[0].kind, SourceKind::Glpi);
        assert_eq!(c.sources[0].interval, Duration::from_secs(30));
        assert!(c.sources[0].fingerprint.is_some());
        assert!(c.sources[0].enabled);
        assert_eq!(c.sources[1].interval, Duration::from_secs(60));
        assert!(!c.sources[1].enabled);
        assert_eq!(c.sources[1].domain.as_deref(), Some("backup"));
        assert_eq!(
            c.http.public_url.as_deref(),
            Some("https://vigie.example.org")
        );
    }

    #[test]
    fn log_filter_and_public_url_are_checked() {
        let p = problems(
            "[log]\nfilter = \"vigie=loud\"\n[http]\npublic_url = \"vigie.example.org\"\n",
        );
        assert!(reason_of(&p, "log.filter").contains("not a log filter"));
        assert!(reason_of(&p, "http.public_url").contains("http://"));
        assert_eq!(p.len(), 2, "{p:#?}");
    }

    #[test]
    fn smtp_without_url_is_a_problem_unless_the_env_gives_it() {
        let text = "[smtp]\nfrom = \"a@b\"\n";
        let p = problems(text);
        assert!(reason_of(&p, "smtp.url").starts_with("missing"));
        let env = |n: &str| (n == "VIGIE_SMTP_URL").then(|| "smtp://h:25".to_owned());
        let c = load_text(text, &env).unwrap();
        assert_eq!(c.smtp.unwrap().from, "a@b");
    }

    #[test]
    fn env_problems_are_keyed_by_variable() {
        let env = |name: &str| {
            match name {
                "VIGIE_HTTP_LISTEN" => Some("localhost:80"),
                "VIGIE_DATABASE_URL" => Some("mysql://u:topsecret@h/db"),
                "VIGIE_LOG_FORMAT" => Some("xml"),
                "VIGIE_SMTP_URL" => Some("http://mail"),
                _ => None,
            }
            .map(str::to_owned)
        };
        let p = load_from(None, &env).unwrap_err();
        let keys: Vec<_> = p.iter().map(|p| p.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "VIGIE_DATABASE_URL",
                "VIGIE_HTTP_LISTEN",
                "VIGIE_LOG_FORMAT",
                "VIGIE_SMTP_URL"
            ]
        );
        // Problems are printed: they must not leak passwords either.
        assert!(!p[0].reason.contains("topsecret"), "{}", p[0].reason);
    }

    #[test]
    fn syntax_error_and_missing_file() {
        let file = TempFile::new("[http\nlisten = 1");
        let p = load_from(Some(&file.0), &no_env).unwrap_err();
        assert_eq!(p.len(), 1, "{p:#?}");
        assert_eq!(p[0].key, file.0.display().to_string());
        assert!(!p[0].reason.is_empty());

        let missing = std::env::temp_dir().join("vigie-config-test-does-not-exist.toml");
        let p = load_from(Some(&missing), &no_env).unwrap_err();
        assert_eq!(p[0].key, missing.display().to_string());
        assert!(p[0].reason.starts_with("cannot read: "), "{}", p[0].reason);
        assert_eq!(p[0].to_string(), format!("{}: {}", p[0].key, p[0].reason));
    }

    #[test]
    fn debug_redacts_passwords() {
        let text = r#"
            [database]
            url = "postgres://vigie:dbsecret@db/vigie"
            [smtp]
            url = "smtp://mailer:mailsecret@mail:587"
            [[sources]]
            name = "glpi"
            kind = "glpi"
            url = "mysql://glpi:srcsecret@h/glpi"
        "#;
        let c = load_text(text, &no_env).unwrap();
        let shown = format!("{c:?}");
        for secret in ["dbsecret", "mailsecret", "srcsecret"] {
            assert!(!shown.contains(secret), "{secret} in {shown}");
        }
        assert!(shown.contains("mysql://glpi:***@h/glpi"), "{shown}");
        // The values themselves are intact.
        assert_eq!(c.sources[0].url, "mysql://glpi:srcsecret@h/glpi");
    }

    #[test]
    fn durations() {
        let ok = [
            ("500ms", 500),
            ("30s", 30_000),
            ("5m", 300_000),
            ("1h", 3_600_000),
            ("2d", 172_800_000),
            ("0s", 0),
        ];
        for (s, ms) in ok {
            assert_eq!(parse_duration(s), Ok(Duration::from_millis(ms)), "{s}");
        }
        for (s, part) in [
            ("30", "has no unit"),
            ("-1s", "is negative"),
            ("1x", "unknown unit `x`"),
            ("1.5s", "whole number"),
            ("s", "is not a duration"),
            ("", "is not a duration"),
            ("400d", "too long"),
            ("99999999999999999999999s", "too long"),
        ] {
            let err = parse_duration(s).unwrap_err();
            assert!(err.contains(part), "{s}: {err}");
        }
        assert_eq!(show_duration(Duration::from_millis(1500)), "1500ms");
        assert_eq!(show_duration(Duration::from_secs(120)), "2m");
    }

    #[test]
    fn wrong_section_shapes() {
        let p = problems("http = 3\nsources = { name = \"x\" }\n[[log]]\nfilter = \"info\"\n");
        assert_eq!(
            reason_of(&p, "http"),
            "expected a table ([http]), found an integer"
        );
        assert!(reason_of(&p, "sources").contains("[[sources]]"));
        assert!(reason_of(&p, "log").contains("found an array"));
    }

    #[test]
    fn example_file_is_valid() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/vigie.example.toml");
        let c = load_from(Some(&path), &no_env).unwrap_or_else(|p| panic!("{p:#?}"));
        // It shows the defaults, so it reads as the defaults.
        let defaults = Config {
            source_path: Some(path.clone()),
            ..Config::default_for_tests()
        };
        assert_eq!(c, defaults);
    }

    #[test]
    fn example_file_documents_every_key() {
        let text = include_str!("../config/vigie.example.toml");
        for key in [
            "data_dir",
            "url",
            "max_connections",
            "acquire_timeout",
            "listen",
            "workers",
            "max_body_bytes",
            "max_batch",
            "public_url",
            "filter",
            "format",
            "queue_capacity",
            "batch_max",
            "submit_timeout",
            "rules_file",
            "fingerprint",
            "default_domain",
            "default_severity",
            "id",
            "code",
            "label_en",
            "label_fr",
            "from",
            "default_level",
            "escalation_delay",
            "link_ttl",
            "misses",
            "watch_every",
            "thresholds",
            "groups",
            "above",
            "margin",
            "reports",
            "level",
            "name",
            "kind",
            "interval",
            "enabled",
            "domain",
            "archive_after",
            "[smtp]",
            "[[sources]]",
            "[[domains]]",
            "VIGIE_DATA_DIR",
            "VIGIE_DATABASE_URL",
            "VIGIE_HTTP_LISTEN",
            "VIGIE_SYSLOG_LISTEN",
            "VIGIE_LOG",
            "VIGIE_LOG_FORMAT",
            "VIGIE_SMTP_URL",
        ] {
            assert!(text.contains(key), "{key} is not in the example");
        }
        for kind in SourceKind::ALL {
            assert!(text.contains(kind.as_str()), "{kind}");
        }
    }
}
