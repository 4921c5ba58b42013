//! `mssql://` URLs: what a source's `url` says about the server, the login, TLS, the timeouts and
//! the pool, read once when the source is built so that a bad URL is refused before any poll.
//!
//! ```text
//! mssql://user:password@host:1433/Database?encrypt=required&ca=/etc/vigie/orion-ca.pem
//! mssql://user:password@host/Database?encrypt=trust            (TLS, any certificate accepted)
//! mssql://user:password@host\INSTANCE/Database?encrypt=off     (only the login is encrypted)
//! ```
//!
//! Query keys: `encrypt` (`required`, the default; `off`; `none`; `trust` = required and any
//! certificate), `trust_server_certificate` (`true`/`false`), `ca` (a PEM or DER file the server's
//! certificate must chain to), `connect_timeout` and `query_timeout` (seconds), `pool` (connections
//! kept, 1..16), `application_name`, `auth` (`sql`, the only one this build has: `auth=windows`
//! and a `DOMAIN%5Cuser` login are refused with the reason, see `NO_WINDOWS_LOGIN`).

use std::time::Duration;

use vigie_poll::SourceError;

/// How the connection is encrypted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encrypt {
    /// TLS for the whole session (the default).
    Required,
    /// TLS for the login packet only, as SQL Server does when encryption is "off".
    Off,
    /// No TLS at all (servers configured without a certificate; a real SQL Server still asks for
    /// the login to be encrypted unless it has no certificate).
    None,
}

/// Which server certificates are accepted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Trust {
    /// The system's roots (`/etc/ssl/certs`), host name checked.
    System,
    /// Any certificate: no protection against a man in the middle.
    Any,
    /// Certificates signed by this CA file (PEM or DER).
    Ca(String),
}

/// A parsed `mssql://` URL.
#[derive(Clone, PartialEq, Eq)]
pub struct MssqlUrl {
    pub host: String,
    pub port: u16,
    /// A named instance (`host\INSTANCE`), resolved by its port: give the port explicitly.
    pub instance: Option<String>,
    pub database: String,
    pub user: String,
    pub password: String,
    pub encrypt: Encrypt,
    pub trust: Trust,
    pub connect_timeout: Duration,
    pub query_timeout: Duration,
    pub pool: usize,
    pub application_name: String,
}

impl std::fmt::Debug for MssqlUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MssqlUrl")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("instance", &self.instance)
            .field("database", &self.database)
            .field("user", &self.user)
            .field("password", &"***")
            .field("encrypt", &self.encrypt)
            .field("trust", &self.trust)
            .field("connect_timeout", &self.connect_timeout)
            .field("query_timeout", &self.query_timeout)
            .field("pool", &self.pool)
            .finish()
    }
}

/// Why a Windows login is refused: tiberius's NTLM on Linux (feature `sspi-rs`) needs `sspi`
/// 0.18, which pins release candidates of the RustCrypto crates the workspace holds in their
/// stable versions, so it cannot be built here (docs/mssql.md, Connection).
const NO_WINDOWS_LOGIN: &str = "asks for a Windows (NTLM) login: this build reads SQL Server with SQL logins only, Windows authentication is not available on Linux (see docs/mssql.md)";

fn bad(url: &str, what: impl std::fmt::Display) -> SourceError {
    SourceError::Config(format!("the URL `{}` {what}", redact(url)))
}

/// The URL with its password replaced, for messages and logs.
pub fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let (authority, tail) = match rest.find(['/', '?']) {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split_once(':').map_or(userinfo, |(u, _)| u);
            format!("{scheme}://{user}:***@{host}{tail}")
        }
        None => url.to_owned(),
    }
}

/// `%XX` sequences decoded (passwords often hold `@`, `:` or `/`).
fn decode(url: &str, part: &str, what: &str) -> Result<String, SourceError> {
    let bytes = part.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = part
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| bad(url, format!("has a bad %-escape in its {what}")))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| bad(url, format!("has a {what} that is not UTF-8")))
}

fn seconds(url: &str, key: &str, value: &str) -> Result<Duration, SourceError> {
    value
        .parse::<f64>()
        .ok()
        .filter(|s| *s > 0.0 && *s <= 3600.0)
        .map(Duration::from_secs_f64)
        .ok_or_else(|| {
            bad(
                url,
                format!("has `{key}={value}`: expected seconds between 0 and 3600"),
            )
        })
}

impl MssqlUrl {
    /// Reads a `mssql://` (or `sqlserver://`) URL; the error names what is wrong, never the
    /// password.
    pub fn parse(url: &str) -> Result<MssqlUrl, SourceError> {
        let (scheme, rest) = url
            .split_once("://")
            .ok_or_else(|| bad(url, "is not a mssql:// URL"))?;
        if !matches!(scheme.to_ascii_lowercase().as_str(), "mssql" | "sqlserver") {
            return Err(bad(url, "is not a mssql:// URL"));
        }
        let (main, query) = match rest.split_once('?') {
            Some((m, q)) => (m, Some(q)),
            None => (rest, None),
        };
        let (authority, path) = match main.split_once('/') {
            Some((a, p)) => (a, p),
            None => (main, ""),
        };
        let (userinfo, hostport) = authority
            .rsplit_once('@')
            .ok_or_else(|| bad(url, "names no login (mssql://user:password@host/Database)"))?;
        let (user, password) = match userinfo.split_once(':') {
            Some((u, p)) => (decode(url, u, "user")?, decode(url, p, "password")?),
            None => (decode(url, userinfo, "user")?, String::new()),
        };
        if user.is_empty() {
            return Err(bad(url, "names no user"));
        }
        // SQL Server refuses a backslash in a SQL login's name: `DOMAIN\user` is a Windows login.
        if user.contains('\\') {
            return Err(bad(url, NO_WINDOWS_LOGIN));
        }
        let (host_part, port) = match hostport.rsplit_once(':') {
            Some((h, p)) if !h.ends_with(']') || h.starts_with('[') => {
                let port = p
                    .parse::<u16>()
                    .ok()
                    .filter(|p| *p > 0)
                    .ok_or_else(|| bad(url, format!("has a bad port `{p}`")))?;
                (h, port)
            }
            _ => (hostport, 1433),
        };
        let (host, instance) = match host_part.split_once('\\') {
            Some((h, i)) => (h, Some(decode(url, i, "instance")?)),
            None => match host_part.split_once("%5C").or(host_part.split_once("%5c")) {
                Some((h, i)) => (h, Some(decode(url, i, "instance")?)),
                None => (host_part, None),
            },
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if host.is_empty() {
            return Err(bad(url, "names no host"));
        }
        let database = decode(url, path.trim_end_matches('/'), "database")?;
        if database.is_empty() {
            return Err(bad(
                url,
                "names no database (mssql://user:password@host/Database)",
            ));
        }
        let mut parsed = MssqlUrl {
            host: host.to_owned(),
            port,
            instance,
            database,
            user,
            password,
            encrypt: Encrypt::Required,
            trust: Trust::System,
            connect_timeout: Duration::from_secs(10),
            query_timeout: Duration::from_secs(30),
            pool: 2,
            application_name: "vigie".into(),
        };
        let mut trust_any = false;
        for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            let value = decode(url, value, key)?;
            match key.to_ascii_lowercase().as_str() {
                "encrypt" => match value.to_ascii_lowercase().as_str() {
                    "required" | "true" | "yes" | "mandatory" | "strict" => {
                        parsed.encrypt = Encrypt::Required;
                    }
                    "off" | "false" | "no" | "optional" => parsed.encrypt = Encrypt::Off,
                    "none" | "not_supported" => parsed.encrypt = Encrypt::None,
                    "trust" => {
                        parsed.encrypt = Encrypt::Required;
                        trust_any = true;
                    }
                    other => {
                        return Err(bad(
                            url,
                            format!("has `encrypt={other}`: expected required, off, none or trust"),
                        ));
                    }
                },
                "trust_server_certificate" | "trustservercertificate" | "trust_cert" => {
                    trust_any = match value.to_ascii_lowercase().as_str() {
                        "true" | "yes" | "1" => true,
                        "false" | "no" | "0" => false,
                        other => {
                            return Err(bad(
                                url,
                                format!("has `{key}={other}`: expected true or false"),
                            ));
                        }
                    }
                }
                "ca" | "trust_cert_ca" => {
                    if value.is_empty() {
                        return Err(bad(url, "has an empty `ca`"));
                    }
                    parsed.trust = Trust::Ca(value);
                }
                "connect_timeout" => parsed.connect_timeout = seconds(url, key, &value)?,
                "query_timeout" => parsed.query_timeout = seconds(url, key, &value)?,
                "pool" => {
                    parsed.pool = value
                        .parse::<usize>()
                        .ok()
                        .filter(|n| (1..=16).contains(n))
                        .ok_or_else(|| bad(url, format!("has `pool={value}`: expected 1 to 16")))?;
                }
                "application_name" | "app" => parsed.application_name = value,
                "auth" => match value.to_ascii_lowercase().as_str() {
                    "sql" | "" => {}
                    "windows" | "ntlm" | "integrated" | "kerberos" => {
                        return Err(bad(url, NO_WINDOWS_LOGIN));
                    }
                    other => {
                        return Err(bad(url, format!("has `auth={other}`: expected sql")));
                    }
                },
                other => {
                    return Err(bad(
                        url,
                        format!(
                            "has an unknown key `{other}` (expected encrypt, trust_server_certificate, ca, connect_timeout, query_timeout, pool, application_name, auth)"
                        ),
                    ));
                }
            }
        }
        if trust_any {
            if matches!(parsed.trust, Trust::Ca(_)) {
                return Err(bad(
                    url,
                    "both trusts any certificate and names a `ca`: choose one",
                ));
            }
            parsed.trust = Trust::Any;
        }
        Ok(parsed)
    }

    /// The driver's configuration.
    pub fn config(&self) -> tiberius::Config {
        let mut config = tiberius::Config::new();
        config.host(&self.host);
        config.port(self.port);
        if let Some(instance) = &self.instance {
            config.instance_name(instance);
        }
        config.database(&self.database);
        config.application_name(&self.application_name);
        config.authentication(tiberius::AuthMethod::sql_server(&self.user, &self.password));
        config.encryption(match self.encrypt {
            Encrypt::Required => tiberius::EncryptionLevel::Required,
            Encrypt::Off => tiberius::EncryptionLevel::Off,
            Encrypt::None => tiberius::EncryptionLevel::NotSupported,
        });
        match &self.trust {
            Trust::System => {}
            Trust::Any => config.trust_cert(),
            Trust::Ca(path) => config.trust_cert_ca(path),
        }
        config.handshake_timeout(Some(self.connect_timeout));
        config.command_timeout(Some(self.query_timeout));
        config
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn full_url() {
        let u = MssqlUrl::parse(
            "mssql://vigie:p%40ss%3Aw@db.corp:14330/SolarWindsOrion?encrypt=required&ca=/etc/ca.pem&query_timeout=5&pool=3",
        )
        .unwrap();
        assert_eq!(u.host, "db.corp");
        assert_eq!(u.port, 14330);
        assert_eq!(u.user, "vigie");
        assert_eq!(u.password, "p@ss:w");
        assert_eq!(u.database, "SolarWindsOrion");
        assert_eq!(u.encrypt, Encrypt::Required);
        assert_eq!(u.trust, Trust::Ca("/etc/ca.pem".into()));
        assert_eq!(u.query_timeout, Duration::from_secs(5));
        assert_eq!(u.pool, 3);
        assert!(!format!("{u:?}").contains("p@ss"));
    }

    #[test]
    fn defaults_and_modes() {
        let u = MssqlUrl::parse("mssql://sa:pw@h/WhatsUp").unwrap();
        assert_eq!(
            (u.port, u.encrypt, u.trust.clone()),
            (1433, Encrypt::Required, Trust::System)
        );
        let u = MssqlUrl::parse("mssql://sa:pw@h/WhatsUp?encrypt=trust").unwrap();
        assert_eq!((u.encrypt, u.trust), (Encrypt::Required, Trust::Any));
        let u = MssqlUrl::parse(
            "sqlserver://sa:pw@h\\WUG:1500/WhatsUp?encrypt=off&trust_server_certificate=true",
        )
        .unwrap();
        assert_eq!(u.instance.as_deref(), Some("WUG"));
        assert_eq!(u.port, 1500);
        assert_eq!((u.encrypt, u.trust), (Encrypt::Off, Trust::Any));
    }

    #[test]
    fn refused_with_the_reason_and_no_password() {
        for (url, needle) in [
            ("mysql://a:secret@h/db", "not a mssql"),
            ("mssql://h/db", "no login"),
            ("mssql://a:secret@h", "no database"),
            ("mssql://a:secret@h:x/db", "bad port"),
            ("mssql://a:secret@h/db?encrypt=maybe", "encrypt=maybe"),
            ("mssql://a:secret@h/db?pool=99", "pool=99"),
            ("mssql://a:secret@h/db?colour=red", "unknown key `colour`"),
            ("mssql://a:secret@h/db?auth=windows", "Windows (NTLM) login"),
            ("mssql://CORP%5Csvc:secret@h/db", "Windows (NTLM) login"),
            ("mssql://CORP\\svc:secret@h/db", "Windows (NTLM) login"),
            ("mssql://a:secret@h/db?encrypt=trust&ca=/x", "choose one"),
        ] {
            let e = MssqlUrl::parse(url).unwrap_err().to_string();
            assert!(e.contains(needle), "{url}: {e}");
            assert!(!e.contains("secret"), "{url}: {e}");
        }
        assert_eq!(
            redact("mssql://a:secret@h:1/db?encrypt=off"),
            "mssql://a:***@h:1/db?encrypt=off"
        );
    }
}
