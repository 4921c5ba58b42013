//! From a [`SyslogMessage`] to the pipeline's [`RawRecord`]: what the qualification rules see.
//!
//! The record carries the syslog severity as `source_severity` and no level nor domain: the
//! rules decide (the shipped ones are DOMAIN.md's reference mapping: 0–1 critical, 2 warning,
//! 3–4 low, 5–7 dropped, domain network, message "host message").
//!
//! The message is the syslog text alone, not "host message": the shipped rules already build
//! the alert's message as `{resource} {message}`, and the resource is the host, so prefixing it
//! here would show the host twice.
//!
//! A record must never be refused by the pipeline's normalisation (one refused record refuses its
//! whole submission), so every part is kept within its limits there: the message is cut to
//! 16 KiB and never empty, the resource is one line of at most 255 characters, and structured
//! data larger than [`MAX_STRUCTURED_DATA`] is left out of the attributes (the raw JSON keeps the
//! raw line, where it still is).
//!
//! The record's `raw` is `{"line", "received_at", "sender"}`: the line as received and how it
//! came. The parsed fields are attributes already; a copy of them in `raw` cost more than the
//! parsing itself, for every message (most of which a rule drops).

use std::borrow::Cow;
use std::cell::OnceCell;

use serde_json::{Map, Value};
use vigie_source::{RawRecord, RuleView, serialised_len};

use crate::parse::SyslogMessage;

/// The longest message a record carries (the pipeline refuses longer ones).
pub const MAX_RECORD_MESSAGE: usize = 16 * 1024;
/// The longest resource (the pipeline refuses longer ones).
const MAX_RESOURCE_CHARS: usize = 255;
/// Serialised structured data above this is not copied into the attributes.
pub const MAX_STRUCTURED_DATA: usize = 12 * 1024;
/// The raw line as kept in the record's `raw` JSON.
const MAX_RAW_LINE: usize = 16 * 1024;

/// The record of one message, for source `source` (the configured `source_name`).
///
/// Attributes, for rules to match on: `facility` (number) and `facility_name`, `severity` and
/// `severity_name`, `app_name`, `proc_id`, `msg_id`, `sender` (IP address), `transport`,
/// `protocol`, `structured_data` (the object) and, for each structured-data parameter,
/// `sd.ID.PARAM` with its value (as `rules.toml`'s `"sd.origin.ip"` example expects).
pub fn to_record(msg: &SyslogMessage, source: &str) -> RawRecord {
    let mut record = RawRecord::new(source, resource(msg), record_message(msg));
    record.source_severity = msg.severity.map(i32::from);
    record.occurred_at = msg.timestamp.map(|t| t.to_utc());

    let a = &mut record.attributes;
    if let Some(f) = msg.facility {
        a.insert("facility".into(), f.into());
    }
    if let Some(name) = msg.facility_name() {
        a.insert("facility_name".into(), name.into());
    }
    if let Some(s) = msg.severity {
        a.insert("severity".into(), s.into());
    }
    if let Some(name) = msg.severity_name() {
        a.insert("severity_name".into(), name.into());
    }
    for (key, value) in [
        ("app_name", &msg.app_name),
        ("proc_id", &msg.proc_id),
        ("msg_id", &msg.msg_id),
    ] {
        if let Some(v) = value {
            a.insert(key.into(), cut(v, 255).into());
        }
    }
    a.insert("sender".into(), msg.sender.ip().to_string().into());
    a.insert("transport".into(), msg.transport.name().into());
    a.insert("protocol".into(), msg.protocol.name().into());
    if msg.truncated {
        a.insert("truncated".into(), true.into());
    }
    if structured_data_fits(msg) {
        a.insert(
            "structured_data".into(),
            Value::Object(msg.structured_data.clone()),
        );
        for (id, params) in &msg.structured_data {
            let Value::Object(params) = params else {
                continue;
            };
            for (name, value) in params {
                a.insert(format!("sd.{id}.{name}"), flat(value));
            }
        }
    } else if !msg.structured_data.is_empty() {
        a.insert("structured_data_omitted".into(), true.into());
    }

    // The line itself and how it came, nothing more: every parsed field is already an
    // attribute, and this object is built for every message, most of which a rule then drops.
    let mut raw = Map::with_capacity(3);
    raw.insert(
        "line".into(),
        Value::String(cut(&msg.raw, MAX_RAW_LINE).to_owned()),
    );
    raw.insert(
        "received_at".into(),
        Value::String(msg.received_at.to_rfc3339()),
    );
    raw.insert("sender".into(), Value::String(msg.sender.to_string()));
    let raw = Value::Object(raw);
    record.raw = Some(raw);
    record
}

/// The record's message: the text (or the raw line when there is none), cut to what the
/// pipeline takes, never empty.
fn record_message(msg: &SyslogMessage) -> &str {
    let text = msg.message.trim();
    let text = if text.is_empty() {
        msg.raw.trim()
    } else {
        text
    };
    if text.is_empty() {
        "(empty syslog message)"
    } else {
        cut(text, MAX_RECORD_MESSAGE)
    }
}

/// The host, or the sender's address when the host cannot be a resource.
fn resource(msg: &SyslogMessage) -> Cow<'_, str> {
    let host = msg.host.trim();
    if host.is_empty() || host.contains(char::is_control) {
        return Cow::Owned(msg.sender.ip().to_string());
    }
    match host.char_indices().nth(MAX_RESOURCE_CHARS) {
        Some((end, _)) => Cow::Borrowed(&host[..end]),
        None => Cow::Borrowed(host),
    }
}

/// Whether the structured data goes into the attributes (there is some, and not too much).
fn structured_data_fits(msg: &SyslogMessage) -> bool {
    !msg.structured_data.is_empty() && serialised_len(&msg.structured_data) <= MAX_STRUCTURED_DATA
}

/// A message as the rules would read its record, without building the record (its attribute
/// map and raw JSON cost more than the rules, and a rule drops most syslog lines): for
/// [`vigie_source::Ingest::screen`]. Answers exactly what [`to_record`] puts in the record.
pub struct RecordView<'a> {
    msg: &'a SyslogMessage,
    source: &'a str,
    resource: Cow<'a, str>,
    /// Whether the structured data is in the attributes; measured only if a rule asks.
    sd_fits: OnceCell<bool>,
}

impl<'a> RecordView<'a> {
    pub fn new(msg: &'a SyslogMessage, source: &'a str) -> RecordView<'a> {
        RecordView {
            msg,
            source,
            resource: resource(msg),
            sd_fits: OnceCell::new(),
        }
    }

    fn sd_fits(&self) -> bool {
        *self.sd_fits.get_or_init(|| structured_data_fits(self.msg))
    }

    /// `sd.ID.PARAM`: the last parameter whose key this is, as [`to_record`] inserts them in
    /// order (an id or a name with a dot can give two of them the same key).
    fn structured_attribute(&self, key: &str) -> Option<Value> {
        let wanted = key.strip_prefix("sd.")?;
        if !self.sd_fits() {
            return None;
        }
        let mut found = None;
        for (id, params) in &self.msg.structured_data {
            let Value::Object(params) = params else {
                continue;
            };
            let Some(name) = wanted
                .strip_prefix(id.as_str())
                .and_then(|rest| rest.strip_prefix('.'))
            else {
                continue;
            };
            if let Some(value) = params.get(name) {
                found = Some(flat(value));
            }
        }
        found
    }
}

impl RuleView for RecordView<'_> {
    fn source(&self) -> &str {
        self.source.trim()
    }

    fn resource(&self) -> &str {
        self.resource.trim()
    }

    fn message(&self) -> &str {
        record_message(self.msg)
    }

    fn source_severity(&self) -> Option<i32> {
        self.msg.severity.map(i32::from)
    }

    fn facility(&self) -> Option<u32> {
        self.msg.facility.map(u32::from).filter(|f| *f < 24)
    }

    fn attribute(&self, key: &str, f: &mut dyn FnMut(&str) -> bool) -> Option<bool> {
        let m = self.msg;
        let text: Cow<'_, str> = match key {
            "facility" => m.facility?.to_string().into(),
            "facility_name" => m.facility_name()?.into(),
            "severity" => m.severity?.to_string().into(),
            "severity_name" => m.severity_name()?.into(),
            "app_name" => cut(m.app_name.as_deref()?, 255).into(),
            "proc_id" => cut(m.proc_id.as_deref()?, 255).into(),
            "msg_id" => cut(m.msg_id.as_deref()?, 255).into(),
            "sender" => m.sender.ip().to_string().into(),
            "transport" => m.transport.name().into(),
            "protocol" => m.protocol.name().into(),
            "truncated" if m.truncated => "true".into(),
            "structured_data_omitted" if !m.structured_data.is_empty() && !self.sd_fits() => {
                "true".into()
            }
            _ => match self.structured_attribute(key)? {
                Value::String(s) => s.into(),
                Value::Number(n) => n.to_string().into(),
                Value::Bool(b) => b.to_string().into(),
                _ => return None,
            },
        };
        Some(f(&text))
    }
}

/// A parameter's value as one attribute: repeated values joined with `,`.
fn flat(value: &Value) -> Value {
    match value {
        Value::Array(values) => Value::String(
            values
                .iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join(","),
        ),
        other => other.clone(),
    }
}

/// At most `max` bytes of `text`, cut on a character boundary.
fn cut(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use chrono::{DateTime, FixedOffset};
    use serde_json::json;

    use super::*;
    use crate::parse::{Origin, ParseOptions, Transport, parse};

    fn message(line: &[u8]) -> SyslogMessage {
        parse(
            line,
            false,
            Origin {
                sender: "10.1.2.3:40000".parse().unwrap(),
                transport: Transport::Tcp,
                received_at: DateTime::parse_from_rfc3339("2024-10-12T00:00:00Z")
                    .unwrap()
                    .to_utc(),
            },
            &ParseOptions {
                timezone: FixedOffset::east_opt(0).unwrap(),
            },
        )
    }

    #[test]
    fn maps_the_reference_fields() {
        let m = message(
            b"<34>Oct 11 22:14:15 mymachine su: 'su root' failed for lonvick on /dev/pts/8",
        );
        let r = to_record(&m, "syslog");
        assert_eq!(r.source, "syslog");
        assert_eq!(r.resource, "mymachine");
        assert_eq!(r.message, "'su root' failed for lonvick on /dev/pts/8");
        assert_eq!(r.source_severity, Some(2));
        assert_eq!(r.level, None);
        assert_eq!(r.domain, None);
        assert_eq!(r.source_ref, None);
        assert!(!r.clear);
        assert_eq!(
            r.occurred_at,
            Some(
                DateTime::parse_from_rfc3339("2024-10-11T22:14:15Z")
                    .unwrap()
                    .to_utc()
            )
        );
        assert_eq!(r.attributes["facility"], json!(4));
        assert_eq!(r.attributes["facility_name"], json!("auth"));
        assert_eq!(r.attributes["severity"], json!(2));
        assert_eq!(r.attributes["app_name"], json!("su"));
        assert_eq!(r.attributes["sender"], json!("10.1.2.3"));
        assert!(!r.attributes.contains_key("msg_id"));
        let raw = r.raw.unwrap();
        assert_eq!(raw["line"], m.raw);
        assert_eq!(raw["sender"], "10.1.2.3:40000");
        assert_eq!(raw["received_at"], "2024-10-12T00:00:00+00:00");
    }

    #[test]
    fn structured_data_becomes_matchable_attributes() {
        let m = message(
            br#"<165>1 2003-10-11T22:14:15.003Z h evntslog - ID47 [origin ip="192.0.2.1" ip="192.0.2.2"][meta sequenceId="7"] text"#,
        );
        let r = to_record(&m, "syslog-dc1");
        assert_eq!(r.source, "syslog-dc1");
        assert_eq!(r.attributes["sd.origin.ip"], json!("192.0.2.1,192.0.2.2"));
        assert_eq!(r.attributes["sd.meta.sequenceId"], json!("7"));
        assert_eq!(r.attributes["msg_id"], json!("ID47"));
        assert_eq!(
            r.attributes["structured_data"]["meta"],
            json!({"sequenceId": "7"})
        );
    }

    /// An attribute as the rules read it from a record (strings, numbers, booleans as text).
    fn as_text(value: &Value) -> Option<String> {
        match value {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            Value::Bool(b) => Some(b.to_string()),
            _ => None,
        }
    }

    fn view_text(view: &RecordView<'_>, key: &str) -> Option<String> {
        let mut seen = None;
        view.attribute(key, &mut |text| {
            seen = Some(text.to_owned());
            true
        })?;
        seen
    }

    #[test]
    fn the_view_answers_what_the_record_holds() {
        let sd_too_big = format!(
            r#"<11>1 2024-01-01T00:00:00Z h app - - [big v="{}"] x"#,
            "v".repeat(MAX_STRUCTURED_DATA)
        );
        let lines: Vec<(Vec<u8>, bool)> = vec![
            (b"<34>Oct 11 22:14:15 mymachine su: 'su root' failed".to_vec(), false),
            (br#"<165>1 2003-10-11T22:14:15.003Z h evntslog 42 ID47 [origin ip="192.0.2.1" ip="192.0.2.2"][meta sequenceId="7"] text"#.to_vec(), false),
            // Two parameters with the same attribute key: the one the record keeps is the view's.
            (br#"<14>1 2024-01-01T00:00:00Z h app - - [a.b c="first"][a b.c="second"] x"#.to_vec(), false),
            (br#"<14>1 2024-01-01T00:00:00Z  app - - - "#.to_vec(), false),
            (b"<190>Nov 21 08:30:01 rtr-01 ios: %SEC-6-IPACCESSLOGP: list 110 permitted".to_vec(), true),
            (b"no priority at all".to_vec(), false),
            (b"".to_vec(), false),
            (sd_too_big.into_bytes(), false),
        ];
        let absent = [
            "truncated",
            "structured_data_omitted",
            "sd.origin",
            "sd.",
            "sd.nothing.here",
            "unknown",
            "structured_data",
        ];
        for (line, truncated) in &lines {
            let mut m = message(line);
            m.truncated = *truncated;
            let record = to_record(&m, " syslog ");
            let view = RecordView::new(&m, " syslog ");
            let shown = String::from_utf8_lossy(line);
            assert_eq!(view.source(), record.source.trim(), "{shown}");
            assert_eq!(view.resource(), record.resource.trim(), "{shown}");
            assert_eq!(view.message(), record.message, "{shown}");
            assert_eq!(view.source_severity(), record.source_severity, "{shown}");
            assert_eq!(
                view.facility(),
                record
                    .attributes
                    .get("facility")
                    .and_then(Value::as_u64)
                    .map(|f| f as u32),
                "{shown}"
            );
            let keys = record.attributes.keys().map(String::as_str).chain(absent);
            for key in keys {
                let expected = record.attributes.get(key).and_then(as_text);
                assert_eq!(view_text(&view, key), expected, "{shown}: {key}");
            }
        }
        // The cases above do reach the parts they are about.
        let dotted = to_record(&message(&lines[2].0), "s");
        assert!(dotted.attributes.contains_key("sd.a.b.c"));
        let big = message(&lines[7].0);
        assert_eq!(
            view_text(&RecordView::new(&big, "s"), "structured_data_omitted").as_deref(),
            Some("true")
        );
        let mut truncated = message(&lines[4].0);
        truncated.truncated = true;
        assert_eq!(
            view_text(&RecordView::new(&truncated, "s"), "truncated").as_deref(),
            Some("true")
        );
    }

    #[test]
    fn never_produces_a_record_the_pipeline_refuses() {
        // An empty message takes the raw line; nothing at all still gives a message.
        let m = message(br#"<165>1 2003-10-11T22:14:15.003Z h app - - [x a="1"]"#);
        assert_eq!(m.message, "");
        assert_eq!(to_record(&m, "syslog").message, m.raw);
        let r = to_record(&message(b""), "syslog");
        assert_eq!(r.message, "(empty syslog message)");
        assert_eq!(r.resource, "10.1.2.3");

        // A huge message is cut on a character boundary.
        let mut line = b"<11>Oct 11 22:14:15 h app: ".to_vec();
        line.extend("é".repeat(20_000).as_bytes());
        let r = to_record(&message(&line), "syslog");
        assert!(r.message.len() <= MAX_RECORD_MESSAGE);
        assert!(r.message.len() > MAX_RECORD_MESSAGE - 2);

        // A host too long for a resource is cut.
        let long_host = format!("<11>1 2024-01-01T00:00:00Z {} app - - - x", "h".repeat(300));
        let r = to_record(&message(long_host.as_bytes()), "syslog");
        assert_eq!(r.resource.len(), 255);

        // Huge structured data stays out of the attributes.
        let big = format!(
            r#"<11>1 2024-01-01T00:00:00Z h app - - [big v="{}"] x"#,
            "v".repeat(MAX_STRUCTURED_DATA)
        );
        let r = to_record(&message(big.as_bytes()), "syslog");
        assert!(!r.attributes.contains_key("structured_data"));
        assert_eq!(r.attributes["structured_data_omitted"], json!(true));
        assert!(serde_json::to_vec(&r.attributes).unwrap().len() < 64 * 1024);
        assert!(serde_json::to_vec(&r.raw).unwrap().len() < 256 * 1024);
    }
}
