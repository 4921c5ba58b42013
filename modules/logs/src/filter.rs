//! The filters of the message list, read from a query string, shared by the API, the viewer, the
//! live tail and the CSV export so that they all mean the same thing.
//!
//! - `host`: exact host name; `app`: exact application name;
//! - `severity=N` (a number 0–7 or a name, `err`): N **or more severe**, i.e. numeric ≤ N, as
//!   operators think of "errors and worse";
//! - `facility`: one facility, by number (0–23) or name (`auth`, `local7`);
//! - `q`: text searched in the message, case-insensitively (Unicode lowercase);
//! - `from`, `to`: reception time, `from` included, `to` excluded; RFC 3339 in the API, also the
//!   browser's `datetime-local` (`2026-11-21T08:30`) or a bare date in the viewer's time zone;
//! - `before`, `after`: keyset bounds on the id (older than / newer than);
//! - `limit`: the page size.
//!
//! Every problem is reported at once, each under its parameter's name.

use chrono::{DateTime, NaiveDate, NaiveDateTime, TimeZone as _, Utc};
use vigie_core::http::FieldProblem;
use vigie_syslog::parse::{facility_name, severity_name};

/// Longest value of one filter (a host, a search text).
const VALUE_MAX: usize = 256;
/// The API's default page and its largest.
pub const LIMIT_DEFAULT: u32 = 100;
pub const LIMIT_MAX: u32 = 1000;

/// What the list shows; every part optional.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LogFilter {
    pub host: Option<String>,
    /// Messages of this severity or more severe (numerically lower or equal).
    pub severity: Option<u8>,
    pub facility: Option<u8>,
    pub app: Option<String>,
    /// Searched in the message.
    pub text: Option<String>,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    /// Only messages with a smaller id (the next page of a newest-first list).
    pub before: Option<i64>,
    /// Only messages with a larger id (the live tail).
    pub after: Option<i64>,
    pub limit: u32,
}

/// Who reads the query: the API is strict about unknown parameters and wants RFC 3339 times; the
/// console's pages ignore what is not a filter (their own switches) and read local times in the
/// viewer's zone.
#[derive(Clone, Copy, Debug)]
pub enum Reader {
    Api,
    Page(chrono_tz::Tz),
}

/// The parameters a filter is made of, in the order the viewer's form shows them.
pub const KEYS: [&str; 10] = [
    "host", "facility", "severity", "app", "q", "from", "to", "before", "after", "limit",
];

impl LogFilter {
    /// Parses a query string; `limit` falls back to `default_limit` and is capped at `max_limit`.
    pub fn parse(
        query: &str,
        reader: Reader,
        default_limit: u32,
        max_limit: u32,
    ) -> Result<LogFilter, Vec<FieldProblem>> {
        let mut filter = LogFilter {
            limit: default_limit,
            ..LogFilter::default()
        };
        let mut problems = Vec::new();
        let mut problem = |field: &str, text: String| {
            problems.push(FieldProblem {
                field: field.to_owned(),
                problem: text,
            })
        };
        for (key, value) in form_urlencoded::parse(query.as_bytes()) {
            let value = value.trim();
            let known = KEYS.contains(&key.as_ref());
            if !known {
                if matches!(reader, Reader::Api) {
                    problem(
                        &key,
                        format!("is not a known parameter ({})", KEYS.join(", ")),
                    );
                }
                continue;
            }
            if value.is_empty() {
                continue;
            }
            if value.chars().count() > VALUE_MAX {
                problem(&key, format!("is longer than {VALUE_MAX} characters"));
                continue;
            }
            match key.as_ref() {
                "host" => filter.host = Some(value.to_owned()),
                "app" => filter.app = Some(value.to_owned()),
                "q" => filter.text = Some(value.to_owned()),
                "severity" => match parse_severity(value) {
                    Some(n) => filter.severity = Some(n),
                    None => problem(
                        "severity",
                        format!("`{value}` is not a severity: 0 (emerg) to 7 (debug), or its name"),
                    ),
                },
                "facility" => match parse_facility(value) {
                    Some(n) => filter.facility = Some(n),
                    None => problem(
                        "facility",
                        format!(
                            "`{value}` is not a facility: 0 to 23, or a name such as auth or local7"
                        ),
                    ),
                },
                "from" | "to" => match parse_time(value, reader) {
                    Some(t) if key == "from" => filter.from = Some(t),
                    Some(t) => filter.to = Some(t),
                    None => problem(
                        &key,
                        format!("`{value}` is not a time such as 2026-11-21T08:30:00Z (RFC 3339)"),
                    ),
                },
                "before" | "after" => match value.parse::<i64>() {
                    Ok(id) if id > 0 => {
                        if key == "before" {
                            filter.before = Some(id);
                        } else {
                            filter.after = Some(id);
                        }
                    }
                    _ => problem(&key, format!("`{value}` is not a message id")),
                },
                "limit" => match value.parse::<u32>() {
                    Ok(n) if (1..=max_limit).contains(&n) => filter.limit = n,
                    _ => problem(
                        "limit",
                        format!("`{value}` is not a number from 1 to {max_limit}"),
                    ),
                },
                _ => {}
            }
        }
        if let (Some(from), Some(to)) = (filter.from, filter.to)
            && from >= to
        {
            problem("to", "must be after `from`".into());
        }
        if problems.is_empty() {
            Ok(filter)
        } else {
            Err(problems)
        }
    }

    /// The filter as query parameters (without the keyset bounds and the limit), for the links
    /// of the viewer: next page, export, live tail.
    pub fn to_query(&self) -> String {
        let mut out = form_urlencoded::Serializer::new(String::new());
        let mut put = |k: &str, v: Option<String>| {
            if let Some(v) = v {
                out.append_pair(k, &v);
            }
        };
        put("host", self.host.clone());
        put("facility", self.facility.map(|f| f.to_string()));
        put("severity", self.severity.map(|s| s.to_string()));
        put("app", self.app.clone());
        put("q", self.text.clone());
        put("from", self.from.map(|t| t.to_rfc3339()));
        put("to", self.to.map(|t| t.to_rfc3339()));
        out.finish()
    }
}

/// `3`, `err`, `error`, `warning`, `warn`… (any case).
pub fn parse_severity(text: &str) -> Option<u8> {
    if let Ok(n) = text.parse::<u8>() {
        return (n <= 7).then_some(n);
    }
    let lower = text.to_ascii_lowercase();
    let alias = match lower.as_str() {
        "emergency" | "panic" => "emerg",
        "critical" => "crit",
        "error" => "err",
        "warn" => "warning",
        "information" | "informational" => "info",
        other => other,
    };
    (0..=7u8).find(|n| severity_name(*n) == Some(alias))
}

/// `4`, `auth`, `local7` (any case).
pub fn parse_facility(text: &str) -> Option<u8> {
    if let Ok(n) = text.parse::<u8>() {
        return (n <= 23).then_some(n);
    }
    let lower = text.to_ascii_lowercase();
    (0..=23u8).find(|n| facility_name(*n) == Some(lower.as_str()))
}

/// RFC 3339 always; for the console also a local date and time (the `datetime-local` input,
/// with or without seconds) or a date, in the viewer's time zone.
fn parse_time(text: &str, reader: Reader) -> Option<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Some(t.with_timezone(&Utc));
    }
    let Reader::Page(tz) = reader else {
        return None;
    };
    let local = [
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%d %H:%M:%S",
        "%Y-%m-%d %H:%M",
    ]
    .iter()
    .find_map(|f| NaiveDateTime::parse_from_str(text, f).ok())
    .or_else(|| {
        NaiveDate::parse_from_str(text, "%Y-%m-%d")
            .ok()
            .and_then(|d| d.and_hms_opt(0, 0, 0))
    })?;
    tz.from_local_datetime(&local)
        .earliest()
        .map(|t| t.with_timezone(&Utc))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    fn api(q: &str) -> Result<LogFilter, Vec<(String, String)>> {
        LogFilter::parse(q, Reader::Api, LIMIT_DEFAULT, LIMIT_MAX)
            .map_err(|ps| ps.into_iter().map(|p| (p.field, p.problem)).collect())
    }

    #[test]
    fn reads_every_filter() {
        let f = api("host=rtr1&severity=err&facility=local7&app=sshd&q=link%20down&from=2026-11-21T08:00:00Z&to=2026-11-21T10:00:00%2B01:00&before=90&after=10&limit=5").unwrap();
        assert_eq!(f.host.as_deref(), Some("rtr1"));
        assert_eq!(f.severity, Some(3));
        assert_eq!(f.facility, Some(23));
        assert_eq!(f.app.as_deref(), Some("sshd"));
        assert_eq!(f.text.as_deref(), Some("link down"));
        assert_eq!(f.from.unwrap().to_rfc3339(), "2026-11-21T08:00:00+00:00");
        assert_eq!(f.to.unwrap().to_rfc3339(), "2026-11-21T09:00:00+00:00");
        assert_eq!((f.before, f.after, f.limit), (Some(90), Some(10), 5));
        assert_eq!(api("").unwrap().limit, LIMIT_DEFAULT);
        assert_eq!(api("severity=4").unwrap().severity, Some(4));
        assert_eq!(api("severity=Warning").unwrap().severity, Some(4));
        assert_eq!(api("facility=4").unwrap().facility, Some(4));
        assert_eq!(
            api("host=").unwrap().host,
            None,
            "an empty value is no filter"
        );
    }

    #[test]
    fn every_problem_names_its_field() {
        let problems = api(
            "severity=8&facility=mars&from=yesterday&to=2026-13-01&before=x&limit=0&colour=red",
        )
        .unwrap_err();
        let fields: Vec<&str> = problems.iter().map(|p| p.0.as_str()).collect();
        assert_eq!(
            fields,
            [
                "severity", "facility", "from", "to", "before", "limit", "colour"
            ]
        );
        let p = api("from=2026-11-21T09:00:00Z&to=2026-11-21T08:00:00Z").unwrap_err();
        assert_eq!(p[0].0, "to");
        // The API takes no local times.
        assert_eq!(api("from=2026-11-21T08:30").unwrap_err()[0].0, "from");
    }

    #[test]
    fn pages_read_local_times_and_ignore_their_switches() {
        let paris: chrono_tz::Tz = "Europe/Paris".parse().unwrap();
        let f = LogFilter::parse(
            "from=2026-11-21T08:30&to=2026-11-22&live=1",
            Reader::Page(paris),
            100,
            500,
        )
        .unwrap();
        assert_eq!(f.from.unwrap().to_rfc3339(), "2026-11-21T07:30:00+00:00");
        assert_eq!(f.to.unwrap().to_rfc3339(), "2026-11-21T23:00:00+00:00");
        let q = f.to_query();
        assert!(q.contains("from=2026-11-21T07%3A30%3A00%2B00%3A00"), "{q}");
    }
}
