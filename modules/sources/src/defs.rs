//! Sources defined in the console (table `source_defs`, migration `0014_source_defs`), next to the
//! configuration file's `[[sources]]`.
//!
//! The URL is stored without its password; the password is sealed by [`crate::secrets`] and put
//! back into the URL in memory only, when the poller is started. Every change is one transaction
//! with its audit entry (the URL shown there has no password, and the password never appears).
//! The connector settings are the source's `source_settings` line, written in the same
//! transaction.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Value, json};
use vigie_core::audit::{self, Actor, Entry};
use vigie_core::domain::Domains;
use vigie_core::on_pool;
use vigie_core::on_tx;
use vigie_core::store::{Store, StoreError, StoreTx};
use vigie_core::time::now;

use crate::secrets::{self, KeyStore, Sealed, SecretsError};
use crate::sources::{SourceDef, Sources, build};

/// The kinds a console source may have, and the URL schemes each accepts.
pub const KINDS: [(&str, &[&str]); 6] = [
    ("sql", &["mysql", "postgres", "postgresql"]),
    ("glpi", &["mysql"]),
    ("manageengine", &["mysql", "postgres", "postgresql"]),
    ("bareos", &["mysql", "postgres", "postgresql"]),
    ("whatsup", &["mssql"]),
    ("solarwinds", &["mssql"]),
];

/// Longest poll interval accepted (a week).
const MAX_INTERVAL_SECONDS: u64 = 7 * 86_400;

/// A console source as stored (never its password).
#[derive(Clone, Debug, Serialize)]
pub struct StoredSource {
    pub id: i64,
    pub name: String,
    pub kind: String,
    /// Without the password.
    pub url: String,
    pub has_password: bool,
    pub interval_seconds: i64,
    pub enabled: bool,
    pub domain: String,
    /// The connector settings (`null` when none).
    pub settings: Value,
    pub created_at: DateTime<Utc>,
    pub created_by: Option<String>,
    pub updated_at: DateTime<Utc>,
    pub updated_by: Option<String>,
    #[serde(skip)]
    sealed: Option<Sealed>,
}

#[derive(sqlx::FromRow)]
struct Row {
    id: i64,
    name: String,
    kind: String,
    url: String,
    password_nonce: Option<String>,
    password_cipher: Option<String>,
    interval_seconds: i64,
    enabled: bool,
    domain: String,
    created_at: DateTime<Utc>,
    created_by: Option<String>,
    updated_at: DateTime<Utc>,
    updated_by: Option<String>,
    settings: Option<String>,
}

impl From<Row> for StoredSource {
    fn from(r: Row) -> StoredSource {
        let sealed = match (r.password_nonce, r.password_cipher) {
            (Some(nonce), Some(cipher)) => Some(Sealed { nonce, cipher }),
            _ => None,
        };
        StoredSource {
            id: r.id,
            name: r.name,
            kind: r.kind,
            url: r.url,
            has_password: sealed.is_some(),
            interval_seconds: r.interval_seconds,
            enabled: r.enabled,
            domain: r.domain,
            settings: r
                .settings
                .and_then(|s| serde_json::from_str(&s).ok())
                .unwrap_or(Value::Null),
            created_at: r.created_at,
            created_by: r.created_by,
            updated_at: r.updated_at,
            updated_by: r.updated_by,
            sealed,
        }
    }
}

const SELECT: &str = "SELECT d.id, d.name, d.kind, d.url, d.password_nonce, d.password_cipher, \
    d.interval_seconds, d.enabled, d.domain, d.created_at, d.created_by, d.updated_at, \
    d.updated_by, s.settings FROM source_defs d LEFT JOIN source_settings s ON s.source = d.name";

/// What the form sends. `password` empty: keep the stored one (on edit), none (on create).
#[derive(Clone, Default)]
pub struct Draft {
    pub name: String,
    pub kind: String,
    pub url: String,
    pub password: String,
    pub interval_seconds: String,
    pub enabled: bool,
    pub domain: String,
    /// JSON text; empty for none.
    pub settings: String,
}

impl std::fmt::Debug for Draft {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Draft")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .field("url", &vigie_sql::client::redact_url(&self.url))
            .field("password", &(!self.password.is_empty()).then_some("***"))
            .field("interval_seconds", &self.interval_seconds)
            .field("enabled", &self.enabled)
            .field("domain", &self.domain)
            .finish()
    }
}

/// One thing wrong with a draft: the field, the locale key of the message, and details (the
/// connector's reason for the settings), never a password.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Problem {
    pub field: &'static str,
    pub key: &'static str,
    pub detail: String,
}

impl Problem {
    fn new(field: &'static str, key: &'static str, detail: impl Into<String>) -> Problem {
        Problem {
            field,
            key,
            detail: detail.into(),
        }
    }
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.field, self.detail)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DefsError {
    #[error("invalid source: {}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Invalid(Vec<Problem>),
    #[error("no source named `{0}` is defined in the console")]
    NotFound(String),
    #[error(transparent)]
    Secrets(#[from] SecretsError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for DefsError {
    fn from(e: sqlx::Error) -> DefsError {
        DefsError::Store(e.into())
    }
}

/// What a draft is checked against: the configured domains and the names of the configuration
/// file's sources (which the console cannot take).
pub struct Check<'a> {
    pub domains: &'a Domains,
    pub config_names: &'a [String],
}

/// Every console source, by name.
pub async fn list(store: &Store) -> Result<Vec<StoredSource>, StoreError> {
    let sql = format!("{SELECT} ORDER BY d.name");
    let rows: Vec<Row> = on_pool!(store, pool => sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .fetch_all(pool)
        .await)?;
    Ok(rows.into_iter().map(StoredSource::from).collect())
}

/// One console source.
pub async fn get(store: &Store, name: &str) -> Result<Option<StoredSource>, StoreError> {
    let sql = format!("{SELECT} WHERE d.name = $1");
    let row: Option<Row> = on_pool!(store, pool => sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(name)
        .fetch_optional(pool)
        .await)?;
    Ok(row.map(StoredSource::from))
}

async fn get_tx(tx: &mut StoreTx, name: &str) -> Result<Option<StoredSource>, StoreError> {
    let sql = format!("{SELECT} WHERE d.name = $1");
    let row: Option<Row> = on_tx!(tx, conn => sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(name)
        .fetch_optional(&mut *conn)
        .await)?;
    Ok(row.map(StoredSource::from))
}

/// A draft checked: what will be stored.
struct Valid {
    kind: String,
    /// Without password.
    url: String,
    /// A new password (from the field, or taken out of the URL); `None` keeps/has none.
    password: Option<String>,
    interval: u64,
    enabled: bool,
    domain: String,
    settings: Value,
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| matches!(c, 'a'..='z' | '0'..='9' | '_' | '.' | '-'))
}

/// Checks a draft. `name` is the source's name (the draft's on create, the path's on edit);
/// `has_password` whether a password is already stored.
fn validate(
    check: &Check<'_>,
    name: &str,
    draft: &Draft,
    has_password: bool,
) -> Result<Valid, Vec<Problem>> {
    let mut problems = Vec::new();
    if !valid_name(name) {
        problems.push(Problem::new(
            "name",
            "sources.err_name",
            "1 to 64 lowercase letters, digits, `_`, `.` and `-`",
        ));
    } else if check.config_names.iter().any(|n| n == name) {
        problems.push(Problem::new(
            "name",
            "sources.err_name_config",
            format!("`{name}` is a source of the configuration file"),
        ));
    }
    let kind = draft.kind.trim();
    let schemes = KINDS.iter().find(|(k, _)| *k == kind).map(|(_, s)| *s);
    if schemes.is_none() {
        problems.push(Problem::new(
            "kind",
            "sources.err_kind",
            format!("unknown kind `{kind}`"),
        ));
    }
    let (url, url_password) = split_password(draft.url.trim());
    match parse_url(&url) {
        None => problems.push(Problem::new(
            "url",
            "sources.err_url",
            "expected SCHEME://USER@HOST[:PORT]/DATABASE",
        )),
        Some(parts) => {
            if let Some(schemes) = schemes
                && !schemes.contains(&parts.scheme)
            {
                problems.push(Problem::new(
                    "url",
                    "sources.err_url_scheme",
                    format!(
                        "a {kind} source is read through {}",
                        schemes
                            .iter()
                            .map(|s| format!("{s}://"))
                            .collect::<Vec<_>>()
                            .join(" or ")
                    ),
                ));
            }
        }
    }
    let password = match (draft.password.is_empty(), url_password) {
        (false, _) => Some(draft.password.clone()),
        (true, Some(p)) => Some(p),
        (true, None) => None,
    };
    if (password.is_some() || has_password) && parse_url(&url).is_some_and(|p| p.user.is_empty()) {
        problems.push(Problem::new(
            "url",
            "sources.err_url_user",
            "a password needs a user in the URL (SCHEME://USER@HOST/…)",
        ));
    }
    let interval = match draft.interval_seconds.trim().parse::<u64>() {
        Ok(n) if (1..=MAX_INTERVAL_SECONDS).contains(&n) => n,
        _ => {
            problems.push(Problem::new(
                "interval_seconds",
                "sources.err_interval",
                "a whole number of seconds from 1 to 604800",
            ));
            1
        }
    };
    let domain = draft.domain.trim().to_owned();
    if !check.domains.contains(&domain) {
        problems.push(Problem::new(
            "domain",
            "sources.err_domain",
            format!("unknown domain `{domain}`"),
        ));
    }
    let settings = if draft.settings.trim().is_empty() {
        Value::Null
    } else {
        match serde_json::from_str::<Value>(&draft.settings) {
            Ok(v @ Value::Object(_)) => v,
            Ok(_) => {
                problems.push(Problem::new(
                    "settings",
                    "sources.err_settings_json",
                    "expected a JSON object",
                ));
                Value::Null
            }
            Err(e) => {
                problems.push(Problem::new(
                    "settings",
                    "sources.err_settings_json",
                    e.to_string(),
                ));
                Value::Null
            }
        }
    };
    // The connector checks its settings (the query of a `sql` source, its mapping) by building.
    if problems.is_empty() {
        let def = SourceDef {
            name: name.to_owned(),
            kind: kind.to_owned(),
            url: url.clone(),
            interval: std::time::Duration::from_secs(interval),
            enabled: draft.enabled,
            domain: Some(domain.clone()),
        };
        if let Err(e) = build(&def, settings.clone()) {
            problems.push(Problem::new(
                "settings",
                "sources.err_settings",
                e.to_string(),
            ));
        }
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    Ok(Valid {
        kind: kind.to_owned(),
        url,
        password,
        interval,
        enabled: draft.enabled,
        domain,
        settings,
    })
}

struct UrlParts<'a> {
    scheme: &'a str,
    user: &'a str,
}

fn parse_url(url: &str) -> Option<UrlParts<'_>> {
    let (scheme, rest) = url.split_once("://")?;
    if scheme.is_empty() || url.chars().any(char::is_whitespace) {
        return None;
    }
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let (user, host) = match authority.rsplit_once('@') {
        Some((userinfo, host)) => (userinfo.split(':').next().unwrap_or_default(), host),
        None => ("", authority),
    };
    if host.is_empty() || host.starts_with(':') {
        return None;
    }
    Some(UrlParts { scheme, user })
}

/// The URL without its password, and the password it carried (percent-decoded).
pub fn split_password(url: &str) -> (String, Option<String>) {
    let Some((scheme, rest)) = url.split_once("://") else {
        return (url.to_owned(), None);
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    let Some((userinfo, host)) = authority.rsplit_once('@') else {
        return (url.to_owned(), None);
    };
    match userinfo.split_once(':') {
        Some((user, password)) => (
            format!("{scheme}://{user}@{host}{tail}"),
            (!password.is_empty()).then(|| percent_decode(password)),
        ),
        None => (url.to_owned(), None),
    }
}

/// The URL with `password` put in its user information (percent-encoded), for the connector.
pub fn with_password(url: &str, password: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    let Some((user, host)) = authority.rsplit_once('@') else {
        return url.to_owned();
    };
    let user = user.split(':').next().unwrap_or_default();
    format!(
        "{scheme}://{user}:{}@{host}{tail}",
        percent_encode(password)
    )
}

fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let Ok(hex) = std::str::from_utf8(&bytes[i + 1..i + 3])
            && let Ok(b) = u8::from_str_radix(hex, 16)
        {
            out.push(b);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The audit's picture of a source: never the password.
fn audit_view(name: &str, v: &Valid, password_changed: bool) -> Value {
    json!({
        "name": name,
        "kind": v.kind,
        "url": v.url,
        "interval_seconds": v.interval,
        "enabled": v.enabled,
        "domain": v.domain,
        "password_changed": password_changed,
        "settings": v.settings,
    })
}

fn stored_view(s: &StoredSource) -> Value {
    json!({
        "name": s.name,
        "kind": s.kind,
        "url": s.url,
        "interval_seconds": s.interval_seconds,
        "enabled": s.enabled,
        "domain": s.domain,
        "settings": s.settings,
    })
}

async fn write_settings(
    tx: &mut StoreTx,
    name: &str,
    settings: &Value,
    actor: Option<&Actor>,
) -> Result<(), StoreError> {
    if settings.is_null() {
        on_tx!(tx, conn => sqlx::query("DELETE FROM source_settings WHERE source = $1")
            .bind(name)
            .execute(&mut *conn)
            .await
            .map(drop))?;
        return Ok(());
    }
    on_tx!(tx, conn => sqlx::query(
        "INSERT INTO source_settings (source, settings, updated_at, updated_by) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (source) DO UPDATE SET settings = excluded.settings, \
         updated_at = excluded.updated_at, updated_by = excluded.updated_by",
    )
    .bind(name)
    .bind(settings.to_string())
    .bind(now())
    .bind(actor.map(|a| a.login.clone()))
    .execute(&mut *conn)
    .await
    .map(drop))?;
    Ok(())
}

/// Defines a new console source. Invalid drafts change nothing.
pub async fn create(
    store: &Store,
    keys: &KeyStore,
    check: &Check<'_>,
    draft: &Draft,
    actor: Option<&Actor>,
    ip: Option<&str>,
) -> Result<StoredSource, DefsError> {
    let name = draft.name.trim().to_owned();
    let valid = validate(check, &name, draft, false).map_err(DefsError::Invalid)?;
    let sealed = match &valid.password {
        Some(p) => Some(secrets::seal(&keys.key()?, &name, p)?),
        None => None,
    };
    let mut tx = store.begin().await?;
    if get_tx(&mut tx, &name).await?.is_some() {
        return Err(DefsError::Invalid(vec![Problem::new(
            "name",
            "sources.err_name_taken",
            format!("a source named `{name}` already exists"),
        )]));
    }
    let at = now();
    let login = actor.map(|a| a.login.clone());
    on_tx!(&mut tx, conn => sqlx::query(
        "INSERT INTO source_defs (name, kind, url, password_nonce, password_cipher, interval_seconds, \
         enabled, domain, created_at, created_by, updated_at, updated_by) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
    )
    .bind(&name)
    .bind(&valid.kind)
    .bind(&valid.url)
    .bind(sealed.as_ref().map(|s| s.nonce.clone()))
    .bind(sealed.as_ref().map(|s| s.cipher.clone()))
    .bind(i64::try_from(valid.interval).unwrap_or(i64::MAX))
    .bind(valid.enabled)
    .bind(&valid.domain)
    .bind(at)
    .bind(&login)
    .bind(at)
    .bind(&login)
    .execute(&mut *conn)
    .await
    .map(drop))?;
    write_settings(&mut tx, &name, &valid.settings, actor).await?;
    audit::record(
        &mut tx,
        Entry::new(actor, ip, "source.create")
            .target("source", &name, &name)
            .change(
                None,
                Some(audit_view(&name, &valid, valid.password.is_some())),
            ),
    )
    .await?;
    let stored = get_tx(&mut tx, &name)
        .await?
        .ok_or_else(|| DefsError::NotFound(name.clone()))?;
    tx.commit().await?;
    Ok(stored)
}

/// Changes a console source; an empty password keeps the stored one.
pub async fn update(
    store: &Store,
    keys: &KeyStore,
    check: &Check<'_>,
    name: &str,
    draft: &Draft,
    actor: Option<&Actor>,
    ip: Option<&str>,
) -> Result<StoredSource, DefsError> {
    let before = get(store, name)
        .await?
        .ok_or_else(|| DefsError::NotFound(name.to_owned()))?;
    let valid = validate(check, name, draft, before.has_password).map_err(DefsError::Invalid)?;
    let sealed = match &valid.password {
        Some(p) => Some(secrets::seal(&keys.key()?, name, p)?),
        None => before.sealed.clone(),
    };
    let mut tx = store.begin().await?;
    let login = actor.map(|a| a.login.clone());
    let changed = on_tx!(&mut tx, conn => sqlx::query(
        "UPDATE source_defs SET kind = $1, url = $2, password_nonce = $3, password_cipher = $4, \
         interval_seconds = $5, enabled = $6, domain = $7, updated_at = $8, updated_by = $9 \
         WHERE name = $10",
    )
    .bind(&valid.kind)
    .bind(&valid.url)
    .bind(sealed.as_ref().map(|s| s.nonce.clone()))
    .bind(sealed.as_ref().map(|s| s.cipher.clone()))
    .bind(i64::try_from(valid.interval).unwrap_or(i64::MAX))
    .bind(valid.enabled)
    .bind(&valid.domain)
    .bind(now())
    .bind(&login)
    .bind(name)
    .execute(&mut *conn)
    .await
    .map(|r| r.rows_affected()))?;
    if changed == 0 {
        return Err(DefsError::NotFound(name.to_owned()));
    }
    write_settings(&mut tx, name, &valid.settings, actor).await?;
    audit::record(
        &mut tx,
        Entry::new(actor, ip, "source.update")
            .target("source", name, name)
            .change(
                Some(stored_view(&before)),
                Some(audit_view(name, &valid, valid.password.is_some())),
            ),
    )
    .await?;
    let stored = get_tx(&mut tx, name)
        .await?
        .ok_or_else(|| DefsError::NotFound(name.to_owned()))?;
    tx.commit().await?;
    Ok(stored)
}

/// Enables or disables a console source.
pub async fn set_enabled(
    store: &Store,
    name: &str,
    enabled: bool,
    actor: Option<&Actor>,
    ip: Option<&str>,
) -> Result<StoredSource, DefsError> {
    let mut tx = store.begin().await?;
    let changed = on_tx!(&mut tx, conn => sqlx::query(
        "UPDATE source_defs SET enabled = $1, updated_at = $2, updated_by = $3 WHERE name = $4",
    )
    .bind(enabled)
    .bind(now())
    .bind(actor.map(|a| a.login.clone()))
    .bind(name)
    .execute(&mut *conn)
    .await
    .map(|r| r.rows_affected()))?;
    if changed == 0 {
        return Err(DefsError::NotFound(name.to_owned()));
    }
    audit::record(
        &mut tx,
        Entry::new(
            actor,
            ip,
            if enabled {
                "source.enable"
            } else {
                "source.disable"
            },
        )
        .target("source", name, name)
        .change(
            Some(json!({ "enabled": !enabled })),
            Some(json!({ "enabled": enabled })),
        ),
    )
    .await?;
    let stored = get_tx(&mut tx, name)
        .await?
        .ok_or_else(|| DefsError::NotFound(name.to_owned()))?;
    tx.commit().await?;
    Ok(stored)
}

/// Deletes a console source with its settings and health line. Its watermark is kept, so a
/// source defined again under the same name does not store the same rows twice.
pub async fn delete(
    store: &Store,
    name: &str,
    actor: Option<&Actor>,
    ip: Option<&str>,
) -> Result<(), DefsError> {
    let mut tx = store.begin().await?;
    let before = get_tx(&mut tx, name)
        .await?
        .ok_or_else(|| DefsError::NotFound(name.to_owned()))?;
    for sql in [
        "DELETE FROM source_defs WHERE name = $1",
        "DELETE FROM source_settings WHERE source = $1",
        "DELETE FROM source_health WHERE source = $1",
    ] {
        on_tx!(&mut tx, conn => sqlx::query(sql)
            .bind(name)
            .execute(&mut *conn)
            .await
            .map(drop))?;
    }
    audit::record(
        &mut tx,
        Entry::new(actor, ip, "source.delete")
            .target("source", name, name)
            .change(Some(stored_view(&before)), None),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// The definition the poller runs: the password decrypted into the URL, in memory only.
pub fn runtime_def(keys: &KeyStore, s: &StoredSource) -> Result<SourceDef, SecretsError> {
    let url = match &s.sealed {
        Some(sealed) => with_password(&s.url, &secrets::open(&keys.key()?, &s.name, sealed)?),
        None => s.url.clone(),
    };
    Ok(SourceDef {
        name: s.name.clone(),
        kind: s.kind.clone(),
        url,
        interval: std::time::Duration::from_secs(u64::try_from(s.interval_seconds).unwrap_or(1)),
        enabled: s.enabled,
        domain: Some(s.domain.clone()),
    })
}

/// The definition as far as it can be known without the password (for a health line).
fn public_def(s: &StoredSource) -> SourceDef {
    SourceDef {
        name: s.name.clone(),
        kind: s.kind.clone(),
        url: s.url.clone(),
        interval: std::time::Duration::from_secs(u64::try_from(s.interval_seconds).unwrap_or(1)),
        enabled: s.enabled,
        domain: Some(s.domain.clone()),
    }
}

/// (Re)starts one console source's poller; a password that cannot be decrypted leaves the source
/// misconfigured with the reason on its health line.
pub async fn launch(sources: &Sources, keys: &KeyStore, s: &StoredSource) {
    match runtime_def(keys, s) {
        Ok(def) => sources.define(def).await,
        Err(e) => {
            tracing::error!(source = %s.name, error = %e, "Console source not polled.");
            sources.define_failed(public_def(s), e.to_string()).await;
        }
    }
}

/// At start: launches every console source next to the configuration file's (started before).
/// A stored source whose name the configuration file took since is left alone, with a log line.
pub async fn launch_stored(sources: &Sources, store: &Store, keys: &KeyStore) {
    let stored = match list(store).await {
        Ok(list) => list,
        Err(e) => {
            tracing::error!(error = %e, "Cannot read the sources defined in the console.");
            return;
        }
    };
    for s in &stored {
        if sources.def(&s.name).is_some() {
            tracing::error!(source = %s.name, "A source of the configuration file has the name of a console source; the console's is not polled.");
            continue;
        }
        launch(sources, keys, s).await;
    }
}

/// A console source's definition for `vigie source test NAME` (password decrypted).
pub async fn find_def(
    store: &Store,
    keys: &KeyStore,
    name: &str,
) -> Result<Option<SourceDef>, DefsError> {
    match get(store, name).await? {
        Some(s) => Ok(Some(runtime_def(keys, &s)?)),
        None => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn password_taken_out_of_and_put_back_into_urls() {
        let (url, pw) = split_password("postgres://vigie:p%40ss@db:5432/events?sslmode=disable");
        assert_eq!(url, "postgres://vigie@db:5432/events?sslmode=disable");
        assert_eq!(pw.as_deref(), Some("p@ss"));
        assert_eq!(
            with_password(&url, "p@ss/:x"),
            "postgres://vigie:p%40ss%2F%3Ax@db:5432/events?sslmode=disable"
        );
        assert_eq!(
            split_password("mysql://u@h/d"),
            ("mysql://u@h/d".into(), None)
        );
        assert_eq!(with_password("mysql://h/d", "x"), "mysql://h/d");
    }

    #[test]
    fn urls_checked() {
        assert!(parse_url("postgres://u@h/d").is_some());
        assert!(parse_url("postgres://").is_none());
        assert!(parse_url("nothing").is_none());
        assert_eq!(parse_url("mysql://glpi@db/glpi").unwrap().user, "glpi");
    }
}
