//! Message templates: per kind, channel and language; the administrator's version (table
//! `notify_templates`) else the built-in default (`defaults/en.toml`, `defaults/fr.toml`).
//! Tera syntax; HTML bodies are auto-escaped, subjects and texts are not (they are not HTML).
//! A template is checked against a sample context before it is saved, so a saved template
//! renders; the error names the part and the line.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use vigie_core::audit::{self, Actor, Entry};
use vigie_core::store::Store;
use vigie_core::{on_pool, on_tx};

use crate::{Channel, NotifyError};

/// A message's texts, ready to queue.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Rendered {
    pub subject: String,
    pub text: String,
    pub html: Option<String>,
}

/// The languages templates exist in; anything else falls back to the first.
pub const LANGS: [&str; 2] = ["en", "fr"];

/// The source of one template: what the administrator edits.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
pub struct Source {
    #[serde(default)]
    pub subject: String,
    pub text: String,
    #[serde(default)]
    pub html: Option<String>,
}

type Defaults = BTreeMap<String, BTreeMap<String, Source>>;

/// The built-in templates of one language: kind → channel → source.
fn defaults(lang: &str) -> &'static Defaults {
    static EN: OnceLock<Defaults> = OnceLock::new();
    static FR: OnceLock<Defaults> = OnceLock::new();
    let (cell, text) = if lang == "fr" {
        (&FR, include_str!("../defaults/fr.toml"))
    } else {
        (&EN, include_str!("../defaults/en.toml"))
    };
    cell.get_or_init(|| match toml::from_str(text) {
        Ok(d) => d,
        Err(e) => {
            // A test parses both files: this cannot ship broken.
            tracing::error!(error = %e, lang, "The built-in notification templates do not parse.");
            Defaults::new()
        }
    })
}

/// The kinds that have built-in templates, sorted.
pub fn builtin_kinds() -> Vec<String> {
    defaults("en").keys().cloned().collect()
}

/// The built-in template, if any.
pub fn builtin(kind: &str, channel: Channel, lang: &str) -> Option<Source> {
    defaults(normalize_lang(lang))
        .get(kind)
        .and_then(|c| c.get(channel.as_str()))
        .cloned()
}

fn normalize_lang(lang: &str) -> &'static str {
    let base = lang.split(['-', '_']).next().unwrap_or_default();
    LANGS
        .into_iter()
        .find(|l| l.eq_ignore_ascii_case(base))
        .unwrap_or(LANGS[0])
}

/// The administrator's template, if one is stored.
pub async fn stored(
    store: &Store,
    kind: &str,
    channel: Channel,
    lang: &str,
) -> Result<Option<Source>, NotifyError> {
    let row = on_pool!(store, pool => sqlx::query_as::<_, (String, String, Option<String>)>(
        "SELECT subject, body_text, body_html FROM notify_templates
         WHERE kind = $1 AND channel = $2 AND lang = $3",
    )
    .bind(kind)
    .bind(channel.as_str())
    .bind(lang)
    .fetch_optional(pool)
    .await)?;
    Ok(row.map(|(subject, text, html)| Source {
        subject,
        text,
        html,
    }))
}

/// Renders the administrator's template (else the built-in default) for (kind, channel, lang).
/// A stored template that fails at run time (a variable the caller did not give) is logged and
/// the built-in default is used instead, so a message is still sent.
pub async fn render(
    store: &Store,
    kind: &str,
    channel: Channel,
    lang: &str,
    context: &Value,
) -> Result<Rendered, NotifyError> {
    let lang = normalize_lang(lang);
    let builtin = builtin(kind, channel, lang);
    if let Some(source) = stored(store, kind, channel, lang).await? {
        match render_source(&source, context) {
            Ok(r) => return Ok(r),
            Err(e) if builtin.is_some() => {
                tracing::warn!(kind, channel = channel.as_str(), lang, error = %e,
                    "A stored notification template failed; the built-in one is used.");
            }
            Err(e) => return Err(e),
        }
    }
    match builtin {
        Some(source) => render_source(&source, context),
        None => Err(NotifyError::NoTemplate {
            kind: kind.to_owned(),
            channel: channel.as_str().to_owned(),
        }),
    }
}

/// Renders one template's parts.
pub fn render_source(source: &Source, context: &Value) -> Result<Rendered, NotifyError> {
    let context = tera::Context::from_value(context.clone())
        .map_err(|e| NotifyError::invalid("context", e.to_string()))?;
    let subject = render_one("subject", &source.subject, &context, false)?;
    // A subject is one line.
    let subject = subject.split_whitespace().collect::<Vec<_>>().join(" ");
    let text = render_one("text", &source.text, &context, false)?;
    let html = match &source.html {
        Some(h) if !h.trim().is_empty() => Some(render_one("html", h, &context, true)?),
        _ => None,
    };
    Ok(Rendered {
        subject,
        text: text.trim().to_owned(),
        html,
    })
}

/// Renders `text` (a Tera template) for the error's `field`.
pub fn render_one(
    field: &str,
    text: &str,
    context: &tera::Context,
    autoescape: bool,
) -> Result<String, NotifyError> {
    let mut tera = tera::Tera::default();
    let name = if autoescape { "t.html" } else { "t.txt" };
    if !autoescape {
        tera.autoescape_on(vec![]);
    }
    tera.add_raw_template(name, text)
        .map_err(|e| template_error(field, text, &e))?;
    tera.render(name, context)
        .map_err(|e| template_error(field, text, &e))
}

/// The message of a Tera error with its causes, and the line it points at: the parser gives
/// `--> L:C`; a render error names a variable or filter, found back in the source.
fn template_error(field: &str, text: &str, e: &tera::Error) -> NotifyError {
    let mut message = e.to_string();
    let mut cause = std::error::Error::source(e);
    while let Some(c) = cause {
        message.push_str(": ");
        message.push_str(&c.to_string());
        cause = c.source();
    }
    // Drop Tera's internal template name, which would only confuse.
    let message = message
        .replace("Failed to parse 't.txt'", "syntax error")
        .replace("Failed to parse 't.html'", "syntax error")
        .replace("Failed to render 't.txt'", "cannot render")
        .replace("Failed to render 't.html'", "cannot render");
    let line = parse_line(&message).or_else(|| named_line(&message, text));
    let message = message.split_whitespace().collect::<Vec<_>>().join(" ");
    NotifyError::Template {
        field: field.to_owned(),
        line,
        message,
    }
}

/// `--> 3:7` in a parse error.
fn parse_line(message: &str) -> Option<usize> {
    let at = message.find("--> ")?;
    let rest = &message[at + 4..];
    rest.split(':').next()?.trim().parse().ok()
}

/// The first line of `text` holding the first quoted name of the message (Tera quotes
/// variables with back-quotes, filters and functions with single quotes).
fn named_line(message: &str, text: &str) -> Option<usize> {
    let start = message.find(['`', '\''])?;
    let quote = message[start..].chars().next()?;
    let start = start + 1;
    let len = message[start..].find(quote)?;
    let name = &message[start..start + len];
    if name.is_empty() {
        return None;
    }
    let last = name.rsplit('.').next().unwrap_or(name);
    text.lines()
        .position(|l| l.contains(name))
        .or_else(|| text.lines().position(|l| l.contains(last)))
        .map(|i| i + 1)
}

/// A context with every documented variable, to check templates before they are saved.
pub fn sample_context() -> Value {
    json!({
        "kind": "alert.routed",
        "lang": "en",
        "hub_url": "https://vigie.example.org",
        "recipient": { "name": "Ada Lovelace", "login": "ada" },
        "alert": {
            "id": 42,
            "level": "critical",
            "domain": "network",
            "source": "zabbix",
            "resource": "core-sw-1",
            "message": "Link down on port 12",
            "critical_zone": true,
            "count": 3,
            "first_seen": "2026-11-21T09:00:00Z",
            "last_seen": "2026-11-21T09:05:00Z",
            "url": "https://vigie.example.org/alerts/42",
        },
        "escalation": { "step": 2, "index": 2, "after_minutes": 10 },
        "ack_url": "https://vigie.example.org/ack/abc",
        "incident": {
            "id": 7,
            "title": "Network outage in building B",
            "domain": "network",
            "level": "critical",
            "state": "open",
            "owner": "ada",
            "from": "grace",
            "to": "ada",
            "resolution": "Replaced the switch",
            "url": "https://vigie.example.org/incidents/7",
        },
    })
}

/// Checks a template against the sample context; the error names the part and the line.
pub fn validate(source: &Source, channel: Channel) -> Result<(), NotifyError> {
    if source.text.trim().is_empty() {
        return Err(NotifyError::invalid("text", "required"));
    }
    if channel == Channel::Mail && source.subject.trim().is_empty() {
        return Err(NotifyError::invalid("subject", "required for mail"));
    }
    for (name, text) in [
        ("subject", source.subject.as_str()),
        ("text", source.text.as_str()),
        ("html", source.html.as_deref().unwrap_or("")),
    ] {
        if text.len() > 65_536 {
            return Err(NotifyError::invalid(name, "longer than 65536 bytes"));
        }
    }
    render_source(source, &sample_context()).map(drop)
}

/// Saves the administrator's template after checking that it renders; audited.
pub async fn save(
    store: &Store,
    actor: &Actor,
    ip: Option<&str>,
    kind: &str,
    channel: Channel,
    lang: &str,
    source: &Source,
) -> Result<(), NotifyError> {
    check_key(kind, lang)?;
    validate(source, channel)?;
    let before = stored(store, kind, channel, lang).await?;
    let mut tx = store.begin().await?;
    let html = source.html.as_ref().filter(|h| !h.trim().is_empty());
    on_tx!(&mut tx, conn => sqlx::query(
        "INSERT INTO notify_templates (kind, channel, lang, subject, body_text, body_html,
                                       updated_at, updated_by)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
         ON CONFLICT (kind, channel, lang) DO UPDATE SET subject = excluded.subject,
             body_text = excluded.body_text, body_html = excluded.body_html,
             updated_at = excluded.updated_at, updated_by = excluded.updated_by",
    )
    .bind(kind)
    .bind(channel.as_str())
    .bind(lang)
    .bind(&source.subject)
    .bind(&source.text)
    .bind(html)
    .bind(vigie_core::time::now())
    .bind(actor.user_id)
    .execute(conn)
    .await
    .map(drop))?;
    let mut entry = Entry::new(Some(actor), ip, "notify.template.save");
    entry.target_kind = Some("notify_template");
    entry.target_id = Some(format!("{kind}/{}/{lang}", channel.as_str()));
    entry.before = before.map(|b| json!(b));
    entry.after = Some(json!(source));
    audit::record(&mut tx, entry).await?;
    tx.commit().await?;
    Ok(())
}

/// Drops the administrator's template: the built-in default applies again; audited.
pub async fn reset(
    store: &Store,
    actor: &Actor,
    ip: Option<&str>,
    kind: &str,
    channel: Channel,
    lang: &str,
) -> Result<bool, NotifyError> {
    check_key(kind, lang)?;
    let before = stored(store, kind, channel, lang).await?;
    let Some(before) = before else {
        return Ok(false);
    };
    let mut tx = store.begin().await?;
    on_tx!(&mut tx, conn => sqlx::query(
        "DELETE FROM notify_templates WHERE kind = $1 AND channel = $2 AND lang = $3",
    )
    .bind(kind)
    .bind(channel.as_str())
    .bind(lang)
    .execute(conn)
    .await
    .map(drop))?;
    let mut entry = Entry::new(Some(actor), ip, "notify.template.reset");
    entry.target_kind = Some("notify_template");
    entry.target_id = Some(format!("{kind}/{}/{lang}", channel.as_str()));
    entry.before = Some(json!(before));
    audit::record(&mut tx, entry).await?;
    tx.commit().await?;
    Ok(true)
}

fn check_key(kind: &str, lang: &str) -> Result<(), NotifyError> {
    let ok = !kind.is_empty()
        && kind.len() <= 64
        && kind
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if !ok {
        return Err(NotifyError::invalid(
            "kind",
            "letters, digits, '.', '_' or '-' (at most 64)",
        ));
    }
    if !LANGS.contains(&lang) {
        return Err(NotifyError::invalid("lang", "en or fr"));
    }
    Ok(())
}

/// One template as the administrator's list shows it.
#[derive(Clone, Debug, Serialize)]
pub struct Listed {
    pub kind: String,
    pub channel: &'static str,
    pub lang: &'static str,
    pub customised: bool,
}

/// Every (kind, channel, lang) with a built-in or stored template.
pub async fn list(store: &Store) -> Result<Vec<Listed>, NotifyError> {
    let rows = on_pool!(store, pool => sqlx::query_as::<_, (String, String, String)>(
        "SELECT kind, channel, lang FROM notify_templates",
    )
    .fetch_all(pool)
    .await)?;
    let mut keys: BTreeMap<(String, &'static str, &'static str), bool> = BTreeMap::new();
    for lang in LANGS {
        for (kind, channels) in defaults(lang) {
            for channel in channels.keys() {
                if let Some(c) = Channel::parse(channel) {
                    keys.insert((kind.clone(), c.as_str(), lang), false);
                }
            }
        }
    }
    for (kind, channel, lang) in rows {
        if let (Some(c), Some(l)) = (
            Channel::parse(&channel),
            LANGS.into_iter().find(|l| *l == lang),
        ) {
            keys.insert((kind, c.as_str(), l), true);
        }
    }
    Ok(keys
        .into_iter()
        .map(|((kind, channel, lang), customised)| Listed {
            kind,
            channel,
            lang,
            customised,
        })
        .collect())
}
