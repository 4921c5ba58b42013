//! The receiver's configuration (`[syslog]`), as written by the administrator, and its checked
//! form.
//!
//! [`SyslogConfig`] holds what the file says, as text where a value needs checking (addresses,
//! durations, the time zone), so that [`SyslogConfig::validate`] can report *every* problem at
//! once, each under its key (`syslog.tls.cert_file: cannot read …`), instead of the first one
//! serde trips on. A [`Settings`] only exists once everything checked out.
//!
//! # Privileged ports
//! The standard syslog port 514 (and 6514 for TLS is fine, being above 1024) is below 1024: on
//! Linux, binding it needs the `CAP_NET_BIND_SERVICE` capability, not root. Give it to the binary
//! (`setcap cap_net_bind_service=+ep /usr/bin/vigie`) or, under systemd, to the service
//! (`AmbientCapabilities=CAP_NET_BIND_SERVICE`). The default, `127.0.0.1:5514`, needs neither.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use chrono::{FixedOffset, Offset as _};
use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use serde::{Deserialize, Serialize};

/// The default address of both the UDP and the TCP listener (INTERFACE.md).
pub const DEFAULT_LISTEN: &str = "127.0.0.1:5514";

/// `[syslog]`, as the administrator writes it. Every key is optional; see [`Default`] for the
/// defaults.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SyslogConfig {
    /// `address:port` of the UDP listener; an empty string turns UDP off.
    pub udp: String,
    /// `address:port` of the TCP listener (both RFC 6587 framings); an empty string turns it off.
    pub tcp: String,
    /// The TLS listener (RFC 5425), off unless given.
    pub tls: Option<TlsConfig>,
    /// Open TCP and TLS connections at most, together; more are refused and counted.
    pub max_connections: usize,
    /// Longest message kept, in bytes; longer ones are truncated and flagged.
    pub max_message_bytes: usize,
    /// Messages waiting between the listeners and the store at most (the back-pressure queue).
    pub queue_capacity: usize,
    /// A TCP or TLS connection that sends nothing for this long is closed (`"5m"`, `"30s"`).
    pub idle_timeout: String,
    /// The zone of RFC 3164 times, which carry none: `"UTC"` or an offset such as `"+01:00"`.
    pub timezone: String,
    /// The source name records carry into the pipeline (and that rules match on).
    pub source_name: String,
}

/// `[syslog.tls]`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// `address:port`; RFC 5425's port is 6514.
    pub listen: String,
    /// The server's certificate chain, PEM, leaf first.
    pub cert_file: PathBuf,
    /// The server's private key, PEM (PKCS#8, PKCS#1 or SEC1).
    pub key_file: PathBuf,
    /// When given, clients must present a certificate signed by one of these CAs (PEM).
    #[serde(default)]
    pub client_ca_file: Option<PathBuf>,
}

impl Default for SyslogConfig {
    fn default() -> SyslogConfig {
        SyslogConfig {
            udp: DEFAULT_LISTEN.to_owned(),
            tcp: DEFAULT_LISTEN.to_owned(),
            tls: None,
            max_connections: 1000,
            max_message_bytes: 64 * 1024,
            queue_capacity: 16 * 1024,
            idle_timeout: "5m".to_owned(),
            timezone: "UTC".to_owned(),
            source_name: "syslog".to_owned(),
        }
    }
}

/// One problem of the configuration, under its key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigProblem {
    /// The key at fault, in full (`syslog.tls.cert_file`).
    pub key: String,
    pub problem: String,
}

impl fmt::Display for ConfigProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.key, self.problem)
    }
}

impl std::error::Error for ConfigProblem {}

/// The checked configuration the listeners run with.
#[derive(Clone)]
pub struct Settings {
    pub udp: Option<SocketAddr>,
    pub tcp: Option<SocketAddr>,
    pub tls: Option<TlsSettings>,
    pub max_connections: usize,
    pub max_message_bytes: usize,
    pub queue_capacity: usize,
    pub idle_timeout: Duration,
    pub timezone: FixedOffset,
    pub source_name: String,
}

/// The TLS listener, its certificates loaded.
#[derive(Clone)]
pub struct TlsSettings {
    pub listen: SocketAddr,
    pub server: Arc<ServerConfig>,
    /// Whether clients must present a certificate.
    pub client_auth: bool,
}

impl fmt::Debug for Settings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Settings")
            .field("udp", &self.udp)
            .field("tcp", &self.tcp)
            .field("tls", &self.tls.as_ref().map(|t| (t.listen, t.client_auth)))
            .field("max_connections", &self.max_connections)
            .field("max_message_bytes", &self.max_message_bytes)
            .field("queue_capacity", &self.queue_capacity)
            .field("idle_timeout", &self.idle_timeout)
            .field("timezone", &self.timezone)
            .field("source_name", &self.source_name)
            .finish()
    }
}

/// Largest message accepted as a setting: a UDP datagram cannot be longer, and a TCP frame this
/// long already takes a lot of memory per connection.
const MAX_MESSAGE_LIMIT: usize = 1024 * 1024;
/// Shortest message limit that still holds an RFC 5424 header and some text.
const MIN_MESSAGE_LIMIT: usize = 480;

impl SyslogConfig {
    /// Checks every key and loads the TLS files. `prefix` is the section's name in the file
    /// (`"syslog"`), put in front of each key reported.
    pub fn validate(&self, prefix: &str) -> Result<Settings, Vec<ConfigProblem>> {
        let mut problems = Vec::new();
        let mut problem = |key: &str, text: String| {
            problems.push(ConfigProblem {
                key: format!("{prefix}.{key}"),
                problem: text,
            })
        };

        let udp = optional_addr(&self.udp).unwrap_or_else(|e| {
            problem("udp", e);
            None
        });
        let tcp = optional_addr(&self.tcp).unwrap_or_else(|e| {
            problem("tcp", e);
            None
        });
        if self.max_connections == 0 {
            problem("max_connections", "must be at least 1".into());
        }
        if !(MIN_MESSAGE_LIMIT..=MAX_MESSAGE_LIMIT).contains(&self.max_message_bytes) {
            problem(
                "max_message_bytes",
                format!(
                    "{} is out of range: between {MIN_MESSAGE_LIMIT} and {MAX_MESSAGE_LIMIT}",
                    self.max_message_bytes
                ),
            );
        }
        if self.queue_capacity == 0 {
            problem("queue_capacity", "must be at least 1".into());
        }
        let idle_timeout = match parse_duration(&self.idle_timeout) {
            Ok(d) if d.is_zero() => {
                problem("idle_timeout", "must be longer than 0".into());
                Duration::from_secs(1)
            }
            Ok(d) => d,
            Err(e) => {
                problem("idle_timeout", e);
                Duration::from_secs(1)
            }
        };
        let timezone = parse_timezone(&self.timezone).unwrap_or_else(|e| {
            problem("timezone", e);
            utc()
        });
        let source_name = self.source_name.trim();
        if source_name.is_empty()
            || source_name.len() > 100
            || source_name.contains(char::is_control)
        {
            problem(
                "source_name",
                "must be one line of 1 to 100 characters".into(),
            );
        }
        let tls = match &self.tls {
            None => None,
            Some(t) => {
                let mut tls_problem =
                    |key: &str, text: String| problem(&format!("tls.{key}"), text);
                load_tls(t, &mut tls_problem)
            }
        };
        if self.udp.trim().is_empty() && self.tcp.trim().is_empty() && self.tls.is_none() {
            problem(
                "udp",
                "every listener is off (udp, tcp and tls): give at least one address".into(),
            );
        }
        if !problems.is_empty() {
            return Err(problems);
        }
        Ok(Settings {
            udp,
            tcp,
            tls,
            max_connections: self.max_connections,
            max_message_bytes: self.max_message_bytes,
            queue_capacity: self.queue_capacity,
            idle_timeout,
            timezone,
            source_name: source_name.to_owned(),
        })
    }
}

/// UTC as a fixed offset, for fallbacks that cannot fail.
fn utc() -> FixedOffset {
    chrono::Utc.fix()
}

/// An address, or `None` for an empty text (the listener is off).
fn optional_addr(text: &str) -> Result<Option<SocketAddr>, String> {
    let t = text.trim();
    if t.is_empty() {
        return Ok(None);
    }
    t.parse::<SocketAddr>().map(Some).map_err(|_| {
        format!("`{text}` is not an address:port (e.g. \"0.0.0.0:514\" or \"[::]:514\")")
    })
}

/// `"500ms"`, `"30s"`, `"5m"`, `"1h"`, `"2d"`: a whole number and a unit, as elsewhere in the
/// hub's configuration.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let per_unit: u64 = match unit.trim() {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => {
            return Err(format!(
                "`{text}` is not a duration: a whole number and a unit (ms, s, m, h or d), e.g. \"30s\""
            ));
        }
    };
    number
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(per_unit))
        .map(Duration::from_millis)
        .ok_or_else(|| {
            format!("`{text}` is not a duration: a whole number and a unit, e.g. \"30s\"")
        })
}

/// `"UTC"`, `"Z"`, `"+01:00"`, `"-0530"`, `"+02"`: a fixed offset from UTC.
///
/// Named zones with daylight saving time (`Europe/Paris`) are not accepted: they would need the
/// time zone database, and RFC 3164 senders in such zones are better fixed on the sender side
/// (send RFC 5424, or UTC).
pub fn parse_timezone(text: &str) -> Result<FixedOffset, String> {
    let t = text.trim();
    if t.eq_ignore_ascii_case("utc") || t.eq_ignore_ascii_case("z") || t.eq_ignore_ascii_case("gmt")
    {
        return Ok(utc());
    }
    let bad = || {
        format!(
            "`{text}` is not a time zone: \"UTC\" or an offset such as \"+01:00\" or \"-05:30\""
        )
    };
    let (sign, rest) = match t.as_bytes().first() {
        Some(b'+') => (1, &t[1..]),
        Some(b'-') => (-1, &t[1..]),
        _ => return Err(bad()),
    };
    let digits: String = rest.chars().filter(|c| *c != ':').collect();
    if !digits.chars().all(|c| c.is_ascii_digit()) || rest.matches(':').count() > 1 {
        return Err(bad());
    }
    let (hours, minutes) = match digits.len() {
        1 | 2 => (digits.parse::<i32>().map_err(|_| bad())?, 0),
        4 => (
            digits[..2].parse::<i32>().map_err(|_| bad())?,
            digits[2..].parse::<i32>().map_err(|_| bad())?,
        ),
        _ => return Err(bad()),
    };
    if hours > 14 || minutes > 59 {
        return Err(bad());
    }
    FixedOffset::east_opt(sign * (hours * 3600 + minutes * 60)).ok_or_else(bad)
}

/// Loads the certificates and builds the TLS server configuration, reporting each problem.
fn load_tls(t: &TlsConfig, problem: &mut dyn FnMut(&str, String)) -> Option<TlsSettings> {
    let listen = match t.listen.trim().parse::<SocketAddr>() {
        Ok(a) => Some(a),
        Err(_) => {
            problem(
                "listen",
                format!(
                    "`{}` is not an address:port (e.g. \"0.0.0.0:6514\")",
                    t.listen
                ),
            );
            None
        }
    };
    let certs = read_certs(&t.cert_file)
        .map_err(|e| problem("cert_file", e))
        .ok();
    let key = match PrivateKeyDer::from_pem_file(&t.key_file) {
        Ok(k) => Some(k),
        Err(e) => {
            problem("key_file", pem_problem(&t.key_file, "private key", &e));
            None
        }
    };
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let verifier = match &t.client_ca_file {
        None => Some(None),
        Some(path) => match read_certs(path) {
            Err(e) => {
                problem("client_ca_file", e);
                None
            }
            Ok(cas) => {
                let mut roots = rustls::RootCertStore::empty();
                let (added, _ignored) = roots.add_parsable_certificates(cas);
                if added == 0 {
                    problem(
                        "client_ca_file",
                        format!("{}: no usable CA certificate", path.display()),
                    );
                    None
                } else {
                    match WebPkiClientVerifier::builder_with_provider(
                        Arc::new(roots),
                        provider.clone(),
                    )
                    .build()
                    {
                        Ok(v) => Some(Some(v)),
                        Err(e) => {
                            problem("client_ca_file", format!("{}: {e}", path.display()));
                            None
                        }
                    }
                }
            }
        },
    };
    let (listen, certs, key, verifier) = (listen?, certs?, key?, verifier?);
    let client_auth = verifier.is_some();
    let builder =
        match ServerConfig::builder_with_provider(provider).with_safe_default_protocol_versions() {
            Ok(b) => b,
            Err(e) => {
                problem("listen", format!("TLS cannot be set up: {e}"));
                return None;
            }
        };
    let builder = match verifier {
        Some(v) => builder.with_client_cert_verifier(v),
        None => builder.with_no_client_auth(),
    };
    match builder.with_single_cert(certs, key) {
        Ok(server) => Some(TlsSettings {
            listen,
            server: Arc::new(server),
            client_auth,
        }),
        Err(e) => {
            problem(
                "key_file",
                format!(
                    "{} does not go with {}: {e}",
                    t.key_file.display(),
                    t.cert_file.display()
                ),
            );
            None
        }
    }
}

/// Every certificate of a PEM file; at least one.
fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let iter =
        CertificateDer::pem_file_iter(path).map_err(|e| pem_problem(path, "certificate", &e))?;
    let certs = iter
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem_problem(path, "certificate", &e))?;
    if certs.is_empty() {
        return Err(format!(
            "{}: no PEM certificate in the file",
            path.display()
        ));
    }
    Ok(certs)
}

fn pem_problem(path: &Path, what: &str, e: &rustls::pki_types::pem::Error) -> String {
    use rustls::pki_types::pem::Error;
    match e {
        Error::Io(io) => format!("cannot read {}: {io}", path.display()),
        Error::NoItemsFound => format!("{}: no PEM {what} in the file", path.display()),
        other => format!(
            "{}: not a valid PEM {what} file ({other:?})",
            path.display()
        ),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn defaults_validate_to_the_interface_addresses() {
        let s = SyslogConfig::default().validate("syslog").unwrap();
        assert_eq!(s.udp, Some("127.0.0.1:5514".parse().unwrap()));
        assert_eq!(s.tcp, Some("127.0.0.1:5514".parse().unwrap()));
        assert!(s.tls.is_none());
        assert_eq!(s.idle_timeout, Duration::from_secs(300));
        assert_eq!(s.timezone, utc());
        assert_eq!(s.max_message_bytes, 65536);
        assert_eq!(s.source_name, "syslog");
    }

    #[test]
    fn deserialises_from_toml_like_json_with_defaults() {
        let c: SyslogConfig = serde_json::from_value(serde_json::json!({
            "udp": "", "tcp": "0.0.0.0:514", "timezone": "+01:00",
            "tls": { "listen": "0.0.0.0:6514", "cert_file": "a.pem", "key_file": "b.pem" }
        }))
        .unwrap();
        assert_eq!(c.udp, "");
        assert_eq!(c.queue_capacity, SyslogConfig::default().queue_capacity);
        assert_eq!(c.tls.as_ref().unwrap().client_ca_file, None);
        let unknown = serde_json::from_value::<SyslogConfig>(serde_json::json!({"listen": "x"}));
        assert!(unknown.is_err(), "unknown keys are refused");
    }

    #[test]
    fn every_problem_is_reported_with_its_key() {
        let c = SyslogConfig {
            udp: "nowhere".into(),
            tcp: "1.2.3.4".into(),
            tls: Some(TlsConfig {
                listen: "0.0.0.0:6514".into(),
                cert_file: "/nonexistent/cert.pem".into(),
                key_file: "/nonexistent/key.pem".into(),
                client_ca_file: Some("/nonexistent/ca.pem".into()),
            }),
            max_connections: 0,
            max_message_bytes: 10,
            queue_capacity: 0,
            idle_timeout: "5 minutes".into(),
            timezone: "Europe/Paris".into(),
            source_name: " ".into(),
        };
        let problems = c.validate("syslog").unwrap_err();
        let keys: Vec<&str> = problems.iter().map(|p| p.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "syslog.udp",
                "syslog.tcp",
                "syslog.max_connections",
                "syslog.max_message_bytes",
                "syslog.queue_capacity",
                "syslog.idle_timeout",
                "syslog.timezone",
                "syslog.source_name",
                "syslog.tls.cert_file",
                "syslog.tls.key_file",
                "syslog.tls.client_ca_file",
            ]
        );
        assert!(
            problems[8]
                .to_string()
                .starts_with("syslog.tls.cert_file: cannot read /nonexistent/cert.pem"),
            "{}",
            problems[8]
        );
    }

    #[test]
    fn all_listeners_off_is_refused() {
        let c = SyslogConfig {
            udp: String::new(),
            tcp: " ".into(),
            ..SyslogConfig::default()
        };
        let problems = c.validate("syslog").unwrap_err();
        assert_eq!(problems.len(), 1);
        assert!(problems[0].problem.contains("every listener is off"));
    }

    #[test]
    fn time_zones() {
        let east = |s| FixedOffset::east_opt(s).unwrap();
        assert_eq!(parse_timezone("UTC"), Ok(east(0)));
        assert_eq!(parse_timezone("z"), Ok(east(0)));
        assert_eq!(parse_timezone("+01:00"), Ok(east(3600)));
        assert_eq!(parse_timezone("-05:30"), Ok(east(-19800)));
        assert_eq!(parse_timezone("+0200"), Ok(east(7200)));
        assert_eq!(parse_timezone("+2"), Ok(east(7200)));
        for bad in ["", "CET", "01:00", "+25:00", "+01:60", "+1:2:3", "+123"] {
            assert!(parse_timezone(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        for bad in ["", "5", "s", "1.5s", "-1s", "5 minutes"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }
}
