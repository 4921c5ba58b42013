//! Normalisation: the first step of the pipeline. Every record, whatever its source, is checked
//! here before anything is written; a record that fails is refused with the field and the reason.

use serde_json::{Map, Value};
use vigie_core::domain::Domains;
use vigie_source::{RawRecord, RecordError, serialised_len};

use crate::candidate::Candidate;

/// Size limits of a record's parts.
#[derive(Clone, Debug)]
pub struct Limits {
    pub source: usize,
    pub resource: usize,
    pub source_ref: usize,
    pub message: usize,
    /// Serialised size of `attributes`.
    pub attributes: usize,
    /// Serialised size of `raw`.
    pub raw: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            source: 100,
            resource: 255,
            source_ref: 255,
            message: 16 * 1024,
            attributes: 64 * 1024,
            raw: 256 * 1024,
        }
    }
}

/// Checks one record and turns it into a [`Candidate`]. All problems of the record are pushed to
/// `problems`; `None` when there was at least one.
pub fn normalize(
    index: usize,
    mut raw: RawRecord,
    domains: &Domains,
    limits: &Limits,
    problems: &mut Vec<RecordError>,
) -> Option<Candidate> {
    let before = problems.len();
    let mut problem = |field: &'static str, problem: String| {
        problems.push(RecordError {
            index,
            field,
            problem,
        })
    };

    trim_in_place(&mut raw.source);
    trim_in_place(&mut raw.resource);
    if let Some(p) = single_line("source", &raw.source, limits.source) {
        problem("source", p);
    }
    if let Some(p) = single_line("resource", &raw.resource, limits.resource) {
        problem("resource", p);
    }
    if let Some(r) = &raw.source_ref
        && let Some(p) = single_line("source_ref", r, limits.source_ref)
    {
        problem("source_ref", p);
    }
    if raw.message.trim().is_empty() {
        problem("message", "is empty".into());
    } else if raw.message.len() > limits.message {
        problem(
            "message",
            format!(
                "is {} bytes long, over the limit of {}",
                raw.message.len(),
                limits.message
            ),
        );
    } else if raw.message.contains('\0') {
        problem("message", "contains a NUL character".into());
    }
    if let Some(domain) = &raw.domain
        && !domains.contains(domain)
    {
        problem(
            "domain",
            format!(
                "`{domain}` is not a configured domain (expected one of {})",
                domains.ids().collect::<Vec<_>>().join(", ")
            ),
        );
    }
    if !raw.attributes.is_empty()
        && let Some(p) = json_problem(
            &raw.attributes,
            object_scan(&raw.attributes),
            limits.attributes,
        )
    {
        problem("attributes", p);
    }
    if let Some(value) = &raw.raw
        && let Some(p) = json_problem(value, scan(value), limits.raw)
    {
        problem("raw", p);
    }
    if problems.len() > before {
        return None;
    }
    Some(Candidate::from_raw(raw))
}

/// A one-line identifier: not empty, not too long, no control characters.
fn single_line(name: &str, value: &str, max: usize) -> Option<String> {
    if value.is_empty() {
        Some("is empty".into())
    } else if value.chars().count() > max {
        Some(format!("is longer than {max} characters"))
    } else if value.chars().any(char::is_control) {
        Some(format!(
            "contains a control character (a {name} is one line of text)"
        ))
    } else {
        None
    }
}

/// Problems of a JSON part: too large once serialised, or holding a NUL (PostgreSQL refuses it).
/// The part is serialised (into a counter, nothing kept) only when its [`Scan`] bound is over
/// the limit: most records are far below it, and this runs for every record of every source.
fn json_problem(value: &impl serde::Serialize, scan: Scan, max: usize) -> Option<String> {
    if scan.bound > max {
        let size = serialised_len(value);
        if size > max {
            return Some(format!(
                "is {size} bytes once serialised, over the limit of {max}"
            ));
        }
    }
    if scan.has_nul {
        return Some("contains a NUL character".into());
    }
    None
}

/// What one walk of a JSON part tells: an upper bound of its serialised size (every byte of a
/// string counted as the longest escape, `\u00XX`, every number as 24 characters) and whether a
/// string or key holds a NUL.
#[derive(Clone, Copy, Default)]
struct Scan {
    bound: usize,
    has_nul: bool,
}

impl Scan {
    fn add(&mut self, other: Scan) {
        self.bound = self.bound.saturating_add(other.bound);
        self.has_nul |= other.has_nul;
    }
}

fn text_scan(text: &str) -> Scan {
    Scan {
        bound: text.len().saturating_mul(6).saturating_add(2),
        has_nul: text.as_bytes().contains(&0),
    }
}

fn scan(value: &Value) -> Scan {
    match value {
        Value::Null | Value::Bool(_) => Scan {
            bound: 5,
            has_nul: false,
        },
        Value::Number(_) => Scan {
            bound: 24,
            has_nul: false,
        },
        Value::String(s) => text_scan(s),
        Value::Array(items) => {
            let mut total = Scan {
                bound: 2 + items.len(),
                has_nul: false,
            };
            for item in items {
                total.add(scan(item));
            }
            total
        }
        Value::Object(map) => object_scan(map),
    }
}

fn object_scan(map: &Map<String, Value>) -> Scan {
    let mut total = Scan {
        bound: 2 + 2 * map.len(),
        has_nul: false,
    };
    for (key, value) in map {
        total.add(text_scan(key));
        total.add(scan(value));
    }
    total
}

/// Trims without a new allocation when there is nothing to trim (nearly always).
fn trim_in_place(text: &mut String) {
    let trimmed = text.trim();
    if trimmed.len() != text.len() {
        *text = trimmed.to_owned();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(raw: RawRecord) -> Vec<RecordError> {
        let mut problems = Vec::new();
        normalize(
            7,
            raw,
            &Domains::default(),
            &Limits::default(),
            &mut problems,
        );
        problems
    }

    #[test]
    fn a_good_record_passes_trimmed() {
        let mut problems = Vec::new();
        let c = normalize(
            0,
            RawRecord::new(" nagios ", " srv1 ", "down"),
            &Domains::default(),
            &Limits::default(),
            &mut problems,
        );
        assert!(problems.is_empty());
        assert_eq!(
            c.map(|c| (c.source, c.resource)),
            Some(("nagios".into(), "srv1".into()))
        );
    }

    #[test]
    fn every_problem_is_named() {
        let mut raw = RawRecord::new("", "a\nb", "  ");
        raw.domain = Some("Network".into());
        raw.source_ref = Some(String::new());
        raw.attributes
            .insert("k".into(), Value::String("x\0y".into()));
        let fields: Vec<_> = check(raw).iter().map(|p| (p.index, p.field)).collect();
        assert_eq!(
            fields,
            [
                (7, "source"),
                (7, "resource"),
                (7, "source_ref"),
                (7, "message"),
                (7, "domain"),
                (7, "attributes")
            ]
        );
    }

    #[test]
    fn oversized_parts_are_refused() {
        let raw = RawRecord::new("s", "r", "m".repeat(16 * 1024 + 1));
        assert_eq!(check(raw)[0].field, "message");
        let mut raw = RawRecord::new("s", "r", "m");
        raw.raw = Some(Value::String("x".repeat(300 * 1024)));
        assert_eq!(check(raw)[0].field, "raw");
    }
}
