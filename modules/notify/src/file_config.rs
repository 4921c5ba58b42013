//! Reads `[sms]`, `[[webhooks]]` and `[notify]` from the hub's configuration file, so that the
//! hub's loader (src/config.rs) only hands the tables over. Every problem names its key, like
//! the rest of the configuration.
//!
//! ```toml
//! [notify]
//! max_attempts = 8          # then the message is dead-lettered
//! retry_base = "5s"         # attempt n waits min(retry_base × 2^(n-1), retry_max)
//! retry_max = "10m"
//! [sms]                     # see config/sms-*.toml
//! url = "https://gateway.example/send"
//! body = '{"to": {{ to | json_encode() }}, "text": {{ text | json_encode() }}}'
//! [[webhooks]]
//! name = "ops-slack"
//! kind = "slack"            # slack, teams, discord or json
//! url = "https://hooks.slack.com/services/…"
//! ```

use std::collections::BTreeMap;
use std::time::Duration;

use toml::{Table, Value};

use crate::settings::{NotifySettings, SmsGateway, Webhook, WebhookKind, check_sms};

/// A problem with its dotted key (`sms.url`, `webhooks[2].kind`, `notify.max_attempts`).
pub type Problem = (String, String);

/// The notification settings of the file (SMTP excepted: `[smtp]` gives it), and its problems.
pub fn from_toml(root: &Table) -> (NotifySettings, Vec<Problem>) {
    let mut settings = NotifySettings::default();
    let mut p = Vec::new();
    match root.get("notify") {
        None => {}
        Some(Value::Table(t)) => notify(t, &mut settings, &mut p),
        Some(_) => p.push(("notify".into(), "expected a table ([notify])".into())),
    }
    match root.get("sms") {
        None => {}
        Some(Value::Table(t)) => settings.sms = sms(t, &mut p),
        Some(_) => p.push(("sms".into(), "expected a table ([sms])".into())),
    }
    match root.get("webhooks") {
        None => {}
        Some(Value::Array(items)) => {
            for (i, item) in items.iter().enumerate() {
                let key = format!("webhooks[{}]", i + 1);
                let Some(t) = item.as_table() else {
                    p.push((key, "expected a table ([[webhooks]])".into()));
                    continue;
                };
                if let Some(w) = webhook(t, &key, &mut p) {
                    if settings.webhooks.iter().any(|o| o.name == w.name) {
                        p.push((format!("{key}.name"), format!("`{}` is used twice", w.name)));
                    } else {
                        settings.webhooks.push(w);
                    }
                }
            }
        }
        Some(_) => p.push((
            "webhooks".into(),
            "expected an array of tables ([[webhooks]])".into(),
        )),
    }
    (settings, p)
}

/// One table being read: remembers the keys read, to report the unknown ones.
struct Reader<'a> {
    prefix: String,
    table: &'a Table,
    known: Vec<&'static str>,
}

impl<'a> Reader<'a> {
    fn new(prefix: &str, table: &'a Table) -> Reader<'a> {
        Reader {
            prefix: prefix.to_owned(),
            table,
            known: Vec::new(),
        }
    }

    fn key(&self, key: &str) -> String {
        format!("{}.{key}", self.prefix)
    }

    fn string(&mut self, p: &mut Vec<Problem>, key: &'static str) -> Option<String> {
        self.known.push(key);
        match self.table.get(key)? {
            Value::String(s) => Some(s.clone()),
            _ => {
                p.push((self.key(key), "expected a string".into()));
                None
            }
        }
    }

    fn int(&mut self, p: &mut Vec<Problem>, key: &'static str, min: i64, max: i64) -> Option<i64> {
        self.known.push(key);
        match self.table.get(key)? {
            Value::Integer(n) if (min..=max).contains(n) => Some(*n),
            _ => {
                p.push((
                    self.key(key),
                    format!("expected a whole number from {min} to {max}"),
                ));
                None
            }
        }
    }

    fn duration(
        &mut self,
        p: &mut Vec<Problem>,
        key: &'static str,
        min: Duration,
    ) -> Option<Duration> {
        let text = self.string(p, key)?;
        match parse_duration(&text) {
            Some(d) if d >= min && d <= Duration::from_secs(365 * 86_400) => Some(d),
            _ => {
                p.push((
                    self.key(key),
                    format!("`{text}` is not a duration such as \"30s\" (at least {min:?}, at most a year)"),
                ));
                None
            }
        }
    }

    fn headers(&mut self, p: &mut Vec<Problem>) -> BTreeMap<String, String> {
        self.known.push("headers");
        let mut out = BTreeMap::new();
        match self.table.get("headers") {
            None => {}
            Some(Value::Table(t)) => {
                for (name, value) in t {
                    let valid_name = !name.is_empty()
                        && name
                            .bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b"-_".contains(&b));
                    match value.as_str() {
                        Some(v) if valid_name && !v.contains(['\r', '\n']) => {
                            out.insert(name.clone(), v.to_owned());
                        }
                        _ => p.push((
                            format!("{}.headers.{name}", self.prefix),
                            "expected a header name and a one-line string value".into(),
                        )),
                    }
                }
            }
            Some(_) => p.push((self.key("headers"), "expected a table of strings".into())),
        }
        out
    }

    fn finish(self, p: &mut Vec<Problem>) {
        for key in self.table.keys() {
            if !self.known.contains(&key.as_str()) {
                let mut expected = self.known.clone();
                expected.sort_unstable();
                p.push((
                    format!("{}.{key}", self.prefix),
                    format!("unknown key (expected one of: {})", expected.join(", ")),
                ));
            }
        }
    }
}

fn http_url(text: &str) -> Result<(), String> {
    match reqwest::Url::parse(text) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host_str().is_some() => Ok(()),
        Ok(_) => Err(format!("`{text}` is not an http:// or https:// URL")),
        Err(e) => Err(format!("`{text}` is not a URL: {e}")),
    }
}

fn notify(t: &Table, s: &mut NotifySettings, p: &mut Vec<Problem>) {
    let mut r = Reader::new("notify", t);
    if let Some(n) = r.int(p, "max_attempts", 1, 100) {
        s.retry.max_attempts = n as u32;
    }
    if let Some(d) = r.duration(p, "retry_base", Duration::from_millis(10)) {
        s.retry.base = d;
    }
    if let Some(d) = r.duration(p, "retry_max", Duration::from_millis(10)) {
        s.retry.max = d;
    }
    if let Some(d) = r.duration(p, "poll_interval", Duration::from_millis(10)) {
        s.worker.poll_interval = d;
    }
    if let Some(n) = r.int(p, "batch", 1, 10_000) {
        s.worker.batch = n as u32;
    }
    if let Some(n) = r.int(p, "parallel", 1, 1024) {
        s.worker.parallel = n as usize;
    }
    if let Some(n) = r.int(p, "smtp_connections", 1, 256) {
        s.worker.smtp_connections = n as u32;
    }
    if let Some(d) = r.duration(p, "send_timeout", Duration::from_secs(1)) {
        s.worker.send_timeout = d;
    }
    if let Some(d) = r.duration(p, "lease", Duration::from_secs(5)) {
        s.worker.lease = d;
    }
    if s.retry.max < s.retry.base {
        p.push((
            "notify.retry_max".into(),
            "must not be shorter than notify.retry_base".into(),
        ));
    }
    if s.worker.lease <= s.worker.send_timeout {
        p.push((
            "notify.lease".into(),
            "must be longer than notify.send_timeout".into(),
        ));
    }
    r.finish(p);
}

fn sms(t: &Table, p: &mut Vec<Problem>) -> Option<SmsGateway> {
    let before = p.len();
    let mut r = Reader::new("sms", t);
    let url = r.string(p, "url");
    if url.is_none() && !t.contains_key("url") {
        p.push(("sms.url".into(), "missing (required in [sms])".into()));
    }
    let method = r.string(p, "method").unwrap_or_else(|| "POST".into());
    let headers = r.headers(p);
    let body = r.string(p, "body");
    let content_type = r.string(p, "content_type");
    let success_body = r.string(p, "success_body");
    let timeout = r.duration(p, "timeout", Duration::from_secs(1));
    r.finish(p);
    let gateway = SmsGateway {
        url: url?,
        method,
        headers,
        body,
        content_type,
        success_body,
        timeout_secs: timeout.map_or(10, |d| d.as_secs()),
    };
    // The URL may hold template tags: check it once rendered.
    let ctx = crate::settings::tera_context("+33612345678", "test");
    if let Ok(rendered) = crate::templates::render_one("url", &gateway.url, &ctx, false)
        && let Err(e) = http_url(rendered.trim())
    {
        p.push(("sms.url".into(), e));
    }
    if let Err((key, reason)) = check_sms(&gateway) {
        p.push((format!("sms.{key}"), reason));
    }
    (p.len() == before).then_some(gateway)
}

fn webhook(t: &Table, key: &str, p: &mut Vec<Problem>) -> Option<Webhook> {
    let before = p.len();
    let mut r = Reader::new(key, t);
    let name = r.string(p, "name");
    let kind = r.string(p, "kind");
    let url = r.string(p, "url");
    let headers = r.headers(p);
    let timeout = r.duration(p, "timeout", Duration::from_secs(1));
    r.finish(p);
    for (field, value) in [("name", &name), ("kind", &kind), ("url", &url)] {
        if value.is_none() && !t.contains_key(field) {
            p.push((format!("{key}.{field}"), "missing".into()));
        }
    }
    if let Some(n) = &name
        && (n.is_empty()
            || n.len() > 64
            || !n
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)))
    {
        p.push((
            format!("{key}.name"),
            "letters, digits, '-', '_' or '.' (at most 64)".into(),
        ));
    }
    let kind = match kind.as_deref() {
        Some("slack") => Some(WebhookKind::Slack),
        Some("teams") => Some(WebhookKind::Teams),
        Some("discord") => Some(WebhookKind::Discord),
        Some("json") => Some(WebhookKind::Json),
        Some(other) => {
            p.push((
                format!("{key}.kind"),
                format!("`{other}`: expected slack, teams, discord or json"),
            ));
            None
        }
        None => None,
    };
    if let Some(u) = &url
        && let Err(e) = http_url(u)
    {
        p.push((format!("{key}.url"), e));
    }
    if p.len() != before {
        return None;
    }
    Some(Webhook {
        name: name?,
        kind: kind?,
        url: url?,
        headers,
        timeout_secs: timeout.map_or(10, |d| d.as_secs()),
    })
}

/// `500ms`, `30s`, `5m`, `1h`, `2d`.
fn parse_duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit())?;
    let (n, unit) = text.split_at(split);
    let n: u64 = n.parse().ok()?;
    let ms = match unit {
        "ms" => 1,
        "s" => 1000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return None,
    };
    n.checked_mul(ms).map(Duration::from_millis)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn read(text: &str) -> (NotifySettings, Vec<Problem>) {
        from_toml(&text.parse::<Table>().unwrap())
    }

    #[test]
    fn a_full_configuration_reads() {
        let (s, p) = read(
            r#"
            [notify]
            max_attempts = 3
            retry_base = "2s"
            retry_max = "1m"
            [sms]
            url = "https://api.example/sms"
            headers = { Authorization = "Bearer x" }
            body = '{"to": {{ to | json_encode() }}}'
            success_body = '"ok"'
            [[webhooks]]
            name = "ops"
            kind = "teams"
            url = "https://example.webhook.office.com/x"
            "#,
        );
        assert!(p.is_empty(), "{p:?}");
        assert_eq!(s.retry.max_attempts, 3);
        assert_eq!(s.retry.delay(1), Duration::from_secs(2));
        assert_eq!(s.retry.delay(3), Duration::from_secs(8));
        assert_eq!(s.retry.delay(10), Duration::from_secs(60));
        assert_eq!(s.sms.unwrap().headers["Authorization"], "Bearer x");
        assert_eq!(s.webhooks[0].kind, WebhookKind::Teams);
    }

    #[test]
    fn problems_name_their_keys() {
        let (_, p) = read(
            r#"
            [notify]
            max_attempts = 0
            colour = "red"
            [sms]
            url = "ftp://x"
            body = "{{ to | nope }}"
            success_body = "("
            [[webhooks]]
            name = "a"
            kind = "irc"
            url = "https://x"
            [[webhooks]]
            kind = "slack"
            url = "nope"
            "#,
        );
        let keys: Vec<&str> = p.iter().map(|(k, _)| k.as_str()).collect();
        for key in [
            "notify.max_attempts",
            "notify.colour",
            "sms.url",
            "sms.body",
            "webhooks[1].kind",
            "webhooks[2].name",
            "webhooks[2].url",
        ] {
            assert!(keys.contains(&key), "{key} in {p:?}");
        }
    }

    #[test]
    fn the_shipped_sms_examples_read() {
        for text in [
            include_str!("../../../config/sms-twilio.toml"),
            include_str!("../../../config/sms-json-gateway.toml"),
            include_str!("../../../config/sms-kannel.toml"),
        ] {
            let (s, p) = read(text);
            assert!(p.is_empty(), "{p:?}");
            assert!(s.sms.is_some());
        }
    }
}
