//! Parsing one received syslog message (a UDP datagram or one TCP frame) into a
//! [`SyslogMessage`].
//!
//! Parsing never fails: what `syslog_loose` cannot read is kept as an [`Protocol::Unparsed`]
//! message, with the facility and severity of its `<PRI>` when it has one, so that a device
//! speaking an odd dialect still reaches the log viewer and the rules.
//!
//! The text is made safe once, here: invalid UTF-8 becomes U+FFFD, line breaks become spaces (a
//! message stays one line in the viewer), other control characters (NUL included) are removed,
//! tab is kept.
//!
//! # RFC 3164 times
//! An RFC 3164 time (`Oct 11 22:14:15`) has neither a year nor a zone.
//! - **Zone**: the configured one ([`ParseOptions::timezone`], UTC by default). Times with a zone
//!   (RFC 5424, RFC 3339 inside 3164) keep theirs.
//! - **Year**: of the years around the reception, the one that puts the time closest to the
//!   reception time without being more than a day after it ([`resolve_year`]). A December message
//!   received on the 1st of January gets last year; a sender whose clock runs a little ahead of
//!   ours around New Year still gets the new year.
//!
//! # Cisco IOS
//! IOS sends `<189>123: *Mar  1 00:00:09.123: %LINK-3-UPDOWN: …`: a sequence number, a clock
//! marker and milliseconds that RFC 3164 parsers do not expect. That shape is recognised before
//! `syslog_loose` runs. A time marked `*` (the device's clock is not synchronised, typically
//! "Mar 1" after a boot) is not trusted: the message has no timestamp and the reception time
//! stands for it; the raw line keeps what the device said.

use std::borrow::Cow;
use std::fmt;
use std::net::SocketAddr;

use chrono::{DateTime, Datelike as _, Duration, FixedOffset, Offset as _, TimeZone as _, Utc};
use serde_json::{Map, Value, json};
use syslog_loose::{IncompleteDate, ProcId, Variant};

/// How a message was read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Protocol {
    Rfc3164,
    Rfc5424,
    /// Not syslog as either RFC writes it: kept whole as the message.
    Unparsed,
}

impl Protocol {
    /// A stable lowercase name, stored and shown.
    pub fn name(self) -> &'static str {
        match self {
            Protocol::Rfc3164 => "rfc3164",
            Protocol::Rfc5424 => "rfc5424",
            Protocol::Unparsed => "unparsed",
        }
    }
}

/// Which listener received a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Transport {
    Udp,
    Tcp,
    Tls,
}

impl Transport {
    /// The `transport` label of the metrics.
    pub fn name(self) -> &'static str {
        match self {
            Transport::Udp => "udp",
            Transport::Tcp => "tcp",
            Transport::Tls => "tls",
        }
    }
}

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Where and when a message came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Origin {
    pub sender: SocketAddr,
    pub transport: Transport,
    pub received_at: DateTime<Utc>,
}

/// What parsing needs besides the bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ParseOptions {
    /// The zone of RFC 3164 times, which carry none.
    pub timezone: FixedOffset,
}

impl Default for ParseOptions {
    fn default() -> ParseOptions {
        ParseOptions {
            timezone: Utc.fix(),
        }
    }
}

/// One received syslog message, parsed as far as it goes.
#[derive(Clone, Debug, PartialEq)]
pub struct SyslogMessage {
    pub received_at: DateTime<Utc>,
    /// The peer the message came from (for UDP, the datagram's source; relays hide the device).
    pub sender: SocketAddr,
    pub transport: Transport,
    /// The host the message names, or the sender's IP address when it names none.
    pub host: String,
    /// `0..=23`.
    pub facility: Option<u8>,
    /// `0` emergency ..= `7` debug.
    pub severity: Option<u8>,
    /// The time the sender gave, in the sender's offset (or the configured zone for RFC 3164).
    pub timestamp: Option<DateTime<FixedOffset>>,
    pub app_name: Option<String>,
    pub proc_id: Option<String>,
    pub msg_id: Option<String>,
    /// RFC 5424 structured data: `{ "SD-ID": { "param": "value" } }`; a parameter given twice
    /// in one element holds an array of its values.
    pub structured_data: Map<String, Value>,
    pub message: String,
    /// The whole line as received, made safe (lossy UTF-8, no control characters but tab).
    pub raw: String,
    pub protocol: Protocol,
    /// The message was longer than the configured maximum and was cut.
    pub truncated: bool,
}

/// Facility names by number, the same list the rules accept (`config/rules.toml`).
const FACILITIES: [&str; 24] = [
    "kern",
    "user",
    "mail",
    "daemon",
    "auth",
    "syslog",
    "lpr",
    "news",
    "uucp",
    "cron",
    "authpriv",
    "ftp",
    "ntp",
    "security",
    "console",
    "solaris-cron",
    "local0",
    "local1",
    "local2",
    "local3",
    "local4",
    "local5",
    "local6",
    "local7",
];

const SEVERITIES: [&str; 8] = [
    "emerg", "alert", "crit", "err", "warning", "notice", "info", "debug",
];

/// The name of a facility number, as the rules spell it.
pub fn facility_name(facility: u8) -> Option<&'static str> {
    FACILITIES.get(usize::from(facility)).copied()
}

/// The name of a severity number (`emerg` .. `debug`).
pub fn severity_name(severity: u8) -> Option<&'static str> {
    SEVERITIES.get(usize::from(severity)).copied()
}

impl SyslogMessage {
    pub fn facility_name(&self) -> Option<&'static str> {
        self.facility.and_then(facility_name)
    }

    pub fn severity_name(&self) -> Option<&'static str> {
        self.severity.and_then(severity_name)
    }

    /// The message as a JSON object, every field named, absent ones `null`.
    pub fn to_json(&self) -> Value {
        json!({
            "received_at": self.received_at.to_rfc3339(),
            "sender": self.sender.to_string(),
            "transport": self.transport.name(),
            "host": self.host,
            "facility": self.facility,
            "facility_name": self.facility_name(),
            "severity": self.severity,
            "severity_name": self.severity_name(),
            "timestamp": self.timestamp.map(|t| t.to_rfc3339()),
            "app_name": self.app_name,
            "proc_id": self.proc_id,
            "msg_id": self.msg_id,
            "structured_data": self.structured_data,
            "message": self.message,
            "raw": self.raw,
            "protocol": self.protocol.name(),
            "truncated": self.truncated,
        })
    }
}

/// Parses one message. `truncated` says the bytes were cut to the configured maximum.
pub fn parse(
    bytes: &[u8],
    truncated: bool,
    origin: Origin,
    options: &ParseOptions,
) -> SyslogMessage {
    let raw = sanitize(bytes);
    let mut msg = SyslogMessage {
        received_at: origin.received_at,
        sender: origin.sender,
        transport: origin.transport,
        host: String::new(),
        facility: None,
        severity: None,
        timestamp: None,
        app_name: None,
        proc_id: None,
        msg_id: None,
        structured_data: Map::new(),
        message: String::new(),
        raw: String::new(),
        protocol: Protocol::Unparsed,
        truncated,
    };
    let zone = options.timezone;
    let received_at = origin.received_at;

    let pri = split_pri(&raw);
    if let Some((facility, severity, body)) = pri
        && let Some(cisco) = parse_cisco(body, received_at, zone)
    {
        msg.protocol = Protocol::Rfc3164;
        msg.facility = Some(facility);
        msg.severity = Some(severity);
        msg.timestamp = cisco.timestamp;
        msg.host = cisco.host.map(str::to_owned).unwrap_or_default();
        msg.message = cisco.message.to_owned();
    } else if let Ok(parsed) = syslog_loose::parse_message_with_year_exact_tz(
        &raw,
        |date| resolve_year(date, received_at, zone),
        Some(zone),
        Variant::Either,
    ) {
        msg.protocol = match parsed.protocol {
            syslog_loose::Protocol::RFC5424(_) => Protocol::Rfc5424,
            syslog_loose::Protocol::RFC3164 => Protocol::Rfc3164,
        };
        msg.facility = parsed.facility.map(|f| f as u8);
        msg.severity = parsed.severity.map(|s| s as u8);
        msg.timestamp = parsed.timestamp;
        msg.app_name = parsed.appname.map(str::to_owned);
        msg.proc_id = parsed.procid.map(|p| match p {
            ProcId::PID(n) => n.to_string(),
            ProcId::Name(s) => s.to_owned(),
        });
        msg.msg_id = parsed.msgid.map(str::to_owned);
        msg.structured_data = structured_data(&parsed.structured_data);
        let mut text = parsed.msg;
        match parsed.hostname {
            // A Cisco ASA line (`Mar 01 2024 00:00:09: %ASA-6-302013: …`) has no host: what
            // syslog_loose takes for one is the message's start.
            Some(h) if h.starts_with('%') && msg.protocol == Protocol::Rfc3164 => {
                if let Some(start) = offset_in(&raw, h) {
                    text = &raw[start..];
                }
                msg.app_name = None;
                msg.proc_id = None;
            }
            Some(h) => msg.host = h.to_owned(),
            None => {}
        }
        // RFC 5424 allows a byte order mark before a UTF-8 message.
        msg.message = text.trim_start_matches('\u{feff}').to_owned();
    } else {
        // Kept as it came; a leading `<PRI>` still gives facility and severity.
        match pri {
            Some((facility, severity, body)) => {
                msg.facility = Some(facility);
                msg.severity = Some(severity);
                msg.message = body.trim_start().to_owned();
            }
            None => msg.message = raw.clone(),
        }
    }
    if msg.host.is_empty() {
        msg.host = origin.sender.ip().to_string();
    }
    msg.raw = raw;
    msg
}

/// The byte offset of `part` inside `whole`, when `part` is a slice of it.
fn offset_in(whole: &str, part: &str) -> Option<usize> {
    let start = (part.as_ptr() as usize).checked_sub(whole.as_ptr() as usize)?;
    (start + part.len() <= whole.len() && whole.is_char_boundary(start)).then_some(start)
}

/// Lossy UTF-8, trimmed, line breaks turned into spaces, other control characters but tab
/// removed.
pub fn sanitize(bytes: &[u8]) -> String {
    // Most lines are printable ASCII: then only the spaces and tabs at the ends go, and the
    // character-by-character checks below (a tenth of the listeners' time) are not needed.
    if bytes
        .iter()
        .all(|&b| b == b'\t' || (0x20..0x7f).contains(&b))
    {
        return String::from_utf8_lossy(bytes.trim_ascii()).into_owned();
    }
    let text = String::from_utf8_lossy(bytes);
    let trimmed = text.trim_matches(|c: char| c.is_whitespace() || c.is_control());
    let unsafe_char = |c: char| c.is_control() && c != '\t';
    if !trimmed.contains(unsafe_char) {
        return match text {
            // Nothing to trim or replace: reuse the buffer.
            Cow::Owned(s) if s.len() == trimmed.len() => s,
            _ => trimmed.to_owned(),
        };
    }
    let mut out = String::with_capacity(trimmed.len());
    let mut after_break = false;
    for c in trimmed.chars() {
        if c == '\n' || c == '\r' {
            if !after_break {
                out.push(' ');
            }
            after_break = true;
            continue;
        }
        after_break = false;
        if !unsafe_char(c) {
            out.push(c);
        }
    }
    out
}

/// `<PRI>` at the start: (facility, severity, the rest). Only `0..=191` is a priority.
fn split_pri(line: &str) -> Option<(u8, u8, &str)> {
    let rest = line.strip_prefix('<')?;
    let end = rest.find('>')?;
    let digits = &rest[..end];
    if digits.is_empty() || digits.len() > 3 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let pri: u8 = digits.parse().ok().filter(|p| *p <= 191)?;
    Some((pri >> 3, pri & 7, &rest[end + 1..]))
}

/// The year of an RFC 3164 time, which has none: of the year of the reception (in `zone`) and
/// the years around it, the one that puts the time closest to `received_at` without being more
/// than a day after it.
///
/// The day of slack lets a sender whose clock is a little ahead of ours around New Year keep the
/// new year. A date that exists in none of the three years (29 February) yields the reception's
/// year, and the time then fails to parse.
pub fn resolve_year(date: IncompleteDate, received_at: DateTime<Utc>, zone: FixedOffset) -> i32 {
    let (month, day, hour, minute, second) = date;
    let year = received_at.with_timezone(&zone).year();
    let limit = received_at + Duration::days(1);
    [year + 1, year, year - 1]
        .into_iter()
        .find(|y| {
            zone.with_ymd_and_hms(*y, month, day, hour, minute, second)
                .single()
                .is_some_and(|t| t <= limit)
        })
        .unwrap_or(year)
}

/// Structured data as a JSON object; parameters repeated within an element become arrays.
fn structured_data(elements: &[syslog_loose::StructuredElement<&str>]) -> Map<String, Value> {
    let mut out = Map::new();
    for element in elements {
        let entry = out
            .entry(element.id.to_owned())
            .or_insert_with(|| Value::Object(Map::new()));
        let Value::Object(params) = entry else {
            continue;
        };
        for (name, value) in element.params() {
            match params.get_mut(*name) {
                None => {
                    params.insert((*name).to_owned(), Value::String(value));
                }
                Some(Value::Array(values)) => values.push(Value::String(value)),
                Some(first) => {
                    let first = first.take();
                    params.insert(
                        (*name).to_owned(),
                        Value::Array(vec![first, Value::String(value)]),
                    );
                }
            }
        }
    }
    out
}

/// A Cisco IOS line's parts, after the `<PRI>`.
struct Cisco<'a> {
    host: Option<&'a str>,
    timestamp: Option<DateTime<FixedOffset>>,
    message: &'a str,
}

/// `[SEQ: ][HOST: ][*|.]Mmm dd [yyyy ]hh:mm:ss[.fff][ ZONE]: MESSAGE`; `None` for any other
/// shape.
fn parse_cisco(body: &str, received_at: DateTime<Utc>, zone: FixedOffset) -> Option<Cisco<'_>> {
    let mut rest = body.trim_start();
    // The sequence number (`service sequence-numbers`).
    if let Some((seq, after)) = rest.split_once(": ")
        && !seq.is_empty()
        && seq.bytes().all(|b| b.is_ascii_digit())
    {
        rest = after.trim_start();
    }
    // The origin id (`logging origin-id hostname`): one word before the time.
    let mut host = None;
    if let Some((word, after)) = rest.split_once(": ")
        && !word.is_empty()
        && !word.contains(char::is_whitespace)
        && cisco_time(after.trim_start(), received_at, zone).is_some()
    {
        host = Some(word);
        rest = after.trim_start();
    }
    let (timestamp, message) = cisco_time(rest, received_at, zone)?;
    Some(Cisco {
        host,
        timestamp,
        message,
    })
}

/// `[*|.]Mmm dd [yyyy ]hh:mm:ss[.fff][ ZONE]: ` at the start of `s`: the time (`None` when the
/// device marks its clock unsynchronised) and what follows.
fn cisco_time(
    s: &str,
    received_at: DateTime<Utc>,
    zone: FixedOffset,
) -> Option<(Option<DateTime<FixedOffset>>, &str)> {
    let (trusted, s) = match s.as_bytes().first()? {
        b'*' => (false, &s[1..]),
        b'.' => (true, &s[1..]),
        _ => (true, s),
    };
    let month = month_number(s.get(..3)?)?;
    let s = s.get(3..)?;
    let s = s.strip_prefix(' ')?.trim_start_matches(' ');
    let (day, s) = take_number(s, 1, 2)?;
    let s = s.strip_prefix(' ')?.trim_start_matches(' ');
    let (year, s) = match take_number(s, 4, 4) {
        Some((y, after)) if after.starts_with(' ') => (Some(y), after.trim_start_matches(' ')),
        _ => (None, s),
    };
    let (hour, s) = take_number(s, 1, 2)?;
    let (minute, s) = take_number(s.strip_prefix(':')?, 2, 2)?;
    let (second, mut s) = take_number(s.strip_prefix(':')?, 2, 2)?;
    let mut nanos = 0;
    if let Some(after) = s.strip_prefix('.') {
        let digits = after.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 || digits > 9 {
            return None;
        }
        let frac: u32 = after[..digits].parse().ok()?;
        nanos = frac * 10u32.pow(9 - u32::try_from(digits).ok()?);
        s = &after[digits..];
    }
    // An optional zone name (`UTC`, `CET`): only UTC/GMT is understood, other names mean the
    // configured zone.
    let mut offset = zone;
    if let Some(after) = s.strip_prefix(' ') {
        // Cisco writes zone names in capitals; a lowercase word is a host or a tag.
        let len = after.bytes().take_while(u8::is_ascii_uppercase).count();
        if len == 0 || len > 5 {
            return None;
        }
        let name = &after[..len];
        if name.eq_ignore_ascii_case("UTC") || name.eq_ignore_ascii_case("GMT") {
            offset = Utc.fix();
        }
        s = &after[len..];
    }
    let message = s.strip_prefix(':')?.trim_start();
    if !trusted {
        return Some((None, message));
    }
    let year = match year {
        Some(y) => i32::try_from(y).ok()?,
        None => resolve_year((month, day, hour, minute, second), received_at, offset),
    };
    let time = offset
        .with_ymd_and_hms(year, month, day, hour, minute, second)
        .single()?
        .checked_add_signed(Duration::nanoseconds(i64::from(nanos)))?;
    Some((Some(time), message))
}

fn month_number(name: &str) -> Option<u32> {
    const MONTHS: [&str; 12] = [
        "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
    ];
    let n = MONTHS.iter().position(|m| m.eq_ignore_ascii_case(name))?;
    u32::try_from(n + 1).ok()
}

/// Between `min` and `max` ASCII digits at the start of `s`, and what follows.
fn take_number(s: &str, min: usize, max: usize) -> Option<(u32, &str)> {
    let len = s.bytes().take_while(u8::is_ascii_digit).count();
    if len < min || len > max {
        return None;
    }
    Some((s[..len].parse().ok()?, &s[len..]))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    fn origin(received: &str) -> Origin {
        Origin {
            sender: "192.0.2.7:514".parse().unwrap(),
            transport: Transport::Udp,
            received_at: DateTime::parse_from_rfc3339(received).unwrap().to_utc(),
        }
    }

    fn at(text: &str) -> DateTime<FixedOffset> {
        DateTime::parse_from_rfc3339(text).unwrap()
    }

    fn utc_options() -> ParseOptions {
        ParseOptions::default()
    }

    #[test]
    fn linux_rfc3164() {
        let m = parse(
            b"<34>Oct 11 22:14:15 mymachine su: 'su root' failed for lonvick on /dev/pts/8\n",
            false,
            origin("2024-10-12T08:00:00Z"),
            &utc_options(),
        );
        assert_eq!(m.protocol, Protocol::Rfc3164);
        assert_eq!((m.facility, m.severity), (Some(4), Some(2)));
        assert_eq!(m.facility_name(), Some("auth"));
        assert_eq!(m.severity_name(), Some("crit"));
        assert_eq!(m.host, "mymachine");
        assert_eq!(m.app_name.as_deref(), Some("su"));
        assert_eq!(m.timestamp, Some(at("2024-10-11T22:14:15Z")));
        assert_eq!(m.message, "'su root' failed for lonvick on /dev/pts/8");
        assert_eq!(
            m.raw,
            "<34>Oct 11 22:14:15 mymachine su: 'su root' failed for lonvick on /dev/pts/8"
        );
    }

    #[test]
    fn rfc3164_with_pid_and_configured_zone() {
        let options = ParseOptions {
            timezone: FixedOffset::east_opt(3600).unwrap(),
        };
        let m = parse(
            b"<13>Feb  5 17:32:18 web01 sshd[4123]: Accepted publickey for deploy",
            false,
            origin("2025-02-05T16:40:00Z"),
            &options,
        );
        assert_eq!(m.app_name.as_deref(), Some("sshd"));
        assert_eq!(m.proc_id.as_deref(), Some("4123"));
        assert_eq!(m.timestamp, Some(at("2025-02-05T17:32:18+01:00")));
        assert_eq!(m.timestamp.unwrap().to_utc(), at("2025-02-05T16:32:18Z"));
    }

    #[test]
    fn cisco_ios_with_sequence_number_and_unsynchronised_clock() {
        let m = parse(
            b"<189>123: *Mar  1 00:00:09.123: %LINK-3-UPDOWN: Interface GigabitEthernet0/1, changed state to down",
            false,
            origin("2025-06-01T10:00:00Z"),
            &utc_options(),
        );
        assert_eq!(m.protocol, Protocol::Rfc3164);
        assert_eq!((m.facility, m.severity), (Some(23), Some(5)));
        assert_eq!(m.facility_name(), Some("local7"));
        assert_eq!(m.host, "192.0.2.7", "no host in the line: the sender");
        assert_eq!(m.timestamp, None, "a `*` clock is not trusted");
        assert_eq!(
            m.message,
            "%LINK-3-UPDOWN: Interface GigabitEthernet0/1, changed state to down"
        );
    }

    #[test]
    fn cisco_ios_synchronised_clock_keeps_milliseconds_and_host() {
        let m = parse(
            b"<187>4521: rtr-core-1: Mar  1 12:30:09.250 UTC: %SYS-3-CPUHOG: Task ran for 2004 msec",
            false,
            origin("2025-03-01T12:31:00Z"),
            &ParseOptions {
                timezone: FixedOffset::east_opt(7200).unwrap(),
            },
        );
        assert_eq!(m.host, "rtr-core-1");
        assert_eq!(m.severity, Some(3));
        assert_eq!(m.timestamp, Some(at("2025-03-01T12:30:09.250Z")));
        assert_eq!(m.message, "%SYS-3-CPUHOG: Task ran for 2004 msec");
    }

    #[test]
    fn cisco_asa_has_no_host() {
        let m = parse(
            b"<166>Mar 01 2024 00:00:09: %ASA-6-302013: Built outbound TCP connection 1",
            false,
            origin("2024-03-01T00:00:10Z"),
            &utc_options(),
        );
        assert_eq!(m.host, "192.0.2.7");
        assert_eq!(m.timestamp, Some(at("2024-03-01T00:00:09Z")));
        assert_eq!(m.message, "%ASA-6-302013: Built outbound TCP connection 1");
    }

    #[test]
    fn rfc5424_examples() {
        // RFC 5424 §6.5, examples 1, 3 and 4.
        let m = parse(
            b"<34>1 2003-10-11T22:14:15.003Z mymachine.example.com su - ID47 - \xEF\xBB\xBF'su root' failed for lonvick on /dev/pts/8",
            false,
            origin("2003-10-11T22:14:16Z"),
            &utc_options(),
        );
        assert_eq!(m.protocol, Protocol::Rfc5424);
        assert_eq!(m.host, "mymachine.example.com");
        assert_eq!(m.app_name.as_deref(), Some("su"));
        assert_eq!(m.proc_id, None);
        assert_eq!(m.msg_id.as_deref(), Some("ID47"));
        assert_eq!(m.timestamp, Some(at("2003-10-11T22:14:15.003Z")));
        assert_eq!(
            m.message, "'su root' failed for lonvick on /dev/pts/8",
            "BOM dropped"
        );

        let m = parse(
            br#"<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 iut="3" eventSource="Application" eventID="1011"] An application event log entry..."#,
            false,
            origin("2003-10-11T22:14:16Z"),
            &utc_options(),
        );
        assert_eq!((m.facility, m.severity), (Some(20), Some(5)));
        assert_eq!(m.app_name.as_deref(), Some("evntslog"));
        assert_eq!(
            Value::Object(m.structured_data.clone()),
            json!({"exampleSDID@32473": {"iut": "3", "eventSource": "Application", "eventID": "1011"}})
        );
        assert_eq!(m.message, "An application event log entry...");

        let m = parse(
            br#"<165>1 2003-10-11T22:14:15.003-07:00 host - 8710 - [exampleSDID@32473 iut="3" eventSource="Application"][examplePriority@32473 class="high" class="low"]"#,
            false,
            origin("2003-10-12T05:14:16Z"),
            &utc_options(),
        );
        assert_eq!(m.proc_id.as_deref(), Some("8710"));
        assert_eq!(m.app_name, None);
        assert_eq!(m.timestamp, Some(at("2003-10-11T22:14:15.003-07:00")));
        assert_eq!(
            m.structured_data["examplePriority@32473"],
            json!({"class": ["high", "low"]})
        );
        assert_eq!(m.message, "");
    }

    #[test]
    fn escaped_structured_data_values_are_unescaped() {
        let m = parse(
            br#"<14>1 2024-01-02T03:04:05Z h app 1 - [meta note="a \"quoted\" \] bracket"] text"#,
            false,
            origin("2024-01-02T03:04:05Z"),
            &utc_options(),
        );
        assert_eq!(
            m.structured_data["meta"]["note"],
            json!(r#"a "quoted" ] bracket"#)
        );
        assert_eq!(m.message, "text");
    }

    #[test]
    fn invalid_utf8_and_control_characters_are_made_safe() {
        let m = parse(
            b"<13>Oct 11 22:14:15 host app: caf\xE9 \x00bad\x07 line\r\nnext\tcol\n",
            false,
            origin("2024-10-11T22:14:15Z"),
            &utc_options(),
        );
        assert_eq!(m.message, "caf\u{FFFD} bad line next\tcol");
        assert!(!m.raw.contains(|c: char| c.is_control() && c != '\t'));
        assert_eq!(m.protocol, Protocol::Rfc3164);
    }

    #[test]
    fn printable_lines_are_only_trimmed() {
        assert_eq!(sanitize(b" \t<13>a\tb  c \t "), "<13>a\tb  c");
        assert_eq!(sanitize(b"plain"), "plain");
        assert_eq!(sanitize(b" \t "), "");
        // One byte outside printable ASCII takes the careful way: DEL removed, the rest kept.
        assert_eq!(sanitize(b" a\x7fb "), "ab");
        assert_eq!(sanitize(b"\x0b a \x0c"), "a");
        assert_eq!(sanitize("d\u{e9}j\u{e0} ".as_bytes()), "d\u{e9}j\u{e0}");
    }

    #[test]
    fn empty_line_is_kept_as_an_empty_unparsed_message() {
        let m = parse(
            b"\r\n",
            false,
            origin("2024-10-11T22:14:15Z"),
            &utc_options(),
        );
        assert_eq!(m.protocol, Protocol::Unparsed);
        assert_eq!(m.message, "");
        assert_eq!(m.raw, "");
        assert_eq!(m.host, "192.0.2.7");
        assert_eq!(m.severity, None);
    }

    #[test]
    fn garbage_is_kept_whole_with_the_sender_as_host() {
        let m = parse(
            b"\x16\x03\x01\x02\x00 hello?? {not syslog}",
            true,
            origin("2024-10-11T22:14:15Z"),
            &utc_options(),
        );
        assert_eq!(m.protocol, Protocol::Unparsed);
        assert_eq!(m.host, "192.0.2.7");
        assert_eq!(m.message, "hello?? {not syslog}");
        assert_eq!((m.facility, m.severity, m.timestamp), (None, None, None));
        assert!(m.truncated);
    }

    #[test]
    fn unparsed_line_with_a_priority_keeps_facility_and_severity() {
        let m = parse(
            b"<11>just some text",
            false,
            origin("2024-10-11T22:14:15Z"),
            &utc_options(),
        );
        assert_eq!(m.protocol, Protocol::Unparsed);
        assert_eq!((m.facility, m.severity), (Some(1), Some(3)));
        assert_eq!(m.message, "just some text");
        assert_eq!(m.raw, "<11>just some text");
        // Out of range: not a priority.
        let m = parse(
            b"<192>text",
            false,
            origin("2024-10-11T22:14:15Z"),
            &utc_options(),
        );
        assert_eq!((m.facility, m.severity), (None, None));
        assert_eq!(m.message, "<192>text");
    }

    #[test]
    fn year_rollover() {
        let utc = FixedOffset::east_opt(0).unwrap();
        let received = |t: &str| DateTime::parse_from_rfc3339(t).unwrap().to_utc();
        // December, received in January: last year.
        assert_eq!(
            resolve_year((12, 31, 23, 59, 58), received("2025-01-01T00:00:03Z"), utc),
            2024
        );
        // Received on New Year's Eve from a clock a little ahead: next year.
        assert_eq!(
            resolve_year((1, 1, 0, 0, 5), received("2024-12-31T23:59:50Z"), utc),
            2025
        );
        // An ordinary day: this year.
        assert_eq!(
            resolve_year((6, 15, 12, 0, 0), received("2024-06-15T12:00:01Z"), utc),
            2024
        );
        // A few hours ahead is tolerated, more than a day is last year's.
        assert_eq!(
            resolve_year((6, 15, 20, 0, 0), received("2024-06-15T12:00:00Z"), utc),
            2024
        );
        assert_eq!(
            resolve_year((6, 17, 12, 0, 0), received("2024-06-15T12:00:00Z"), utc),
            2023
        );
        // The year is the zone's: 23:30 on 31 Dec UTC is already 2025 at +01:00.
        let plus1 = FixedOffset::east_opt(3600).unwrap();
        assert_eq!(
            resolve_year((1, 1, 0, 20, 0), received("2024-12-31T23:30:00Z"), plus1),
            2025
        );
        // 29 February only in leap years.
        assert_eq!(
            resolve_year((2, 29, 10, 0, 0), received("2025-03-01T00:00:00Z"), utc),
            2024
        );

        let m = parse(
            b"<34>Dec 31 23:59:58 fw01 kernel: drop",
            false,
            origin("2025-01-01T00:00:03Z"),
            &utc_options(),
        );
        assert_eq!(m.timestamp, Some(at("2024-12-31T23:59:58Z")));
    }

    #[test]
    fn json_names_every_field() {
        let m = parse(
            b"<34>Oct 11 22:14:15 mymachine su: x",
            false,
            origin("2024-10-11T22:14:15Z"),
            &utc_options(),
        );
        let j = m.to_json();
        assert_eq!(j["facility_name"], "auth");
        assert_eq!(j["severity_name"], "crit");
        assert_eq!(j["protocol"], "rfc3164");
        assert_eq!(j["sender"], "192.0.2.7:514");
        assert_eq!(j["msg_id"], Value::Null);
    }

    #[test]
    fn facility_names_follow_the_rules_list() {
        assert_eq!(facility_name(13), Some("security"));
        assert_eq!(facility_name(15), Some("solaris-cron"));
        assert_eq!(facility_name(24), None);
        assert_eq!(severity_name(7), Some("debug"));
        assert_eq!(severity_name(8), None);
    }
}
