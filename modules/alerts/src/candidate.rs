//! The record being qualified: a [`RawRecord`] after normalisation, carrying what the rules have
//! decided so far.

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use vigie_core::Level;
use vigie_source::RawRecord;

use crate::fingerprint::FingerprintSpec;

/// A record between normalisation and storage. Rules read and change it in place.
#[derive(Clone, Debug, PartialEq)]
pub struct Candidate {
    pub source: String,
    pub source_ref: Option<String>,
    pub resource: String,
    pub message: String,
    /// `None` until the source or a rule sets it; the pipeline's default fills it last.
    pub domain: Option<String>,
    /// `None` until the source or a rule sets it; the pipeline's default fills it last.
    pub level: Option<Level>,
    /// Whether the source itself carried a level (rules' `has_severity`).
    pub level_given: bool,
    pub source_severity: Option<i32>,
    /// When the source says it happened; the time of receipt when it does not say.
    pub occurred_at: Option<DateTime<Utc>>,
    pub attributes: Map<String, Value>,
    pub raw: Option<Value>,
    pub clear: bool,
    pub tags: Vec<String>,
    /// Set by a rule's `critical_zone = true`: the level is raised one step when the rules end.
    pub critical_zone: bool,
    /// A rule's own choice of fingerprint fields, over the source's and the pipeline's.
    pub fingerprint: Option<FingerprintSpec>,
    /// Names of the rules that matched, in order, kept on the alert for the operator.
    pub rules: Vec<String>,
}

impl Candidate {
    pub fn from_raw(raw: RawRecord) -> Candidate {
        Candidate {
            source: raw.source,
            source_ref: raw.source_ref,
            resource: raw.resource,
            message: raw.message,
            domain: raw.domain,
            level_given: raw.level.is_some(),
            level: raw.level,
            source_severity: raw.source_severity,
            occurred_at: raw.occurred_at,
            attributes: raw.attributes,
            raw: raw.raw,
            clear: raw.clear,
            tags: Vec::new(),
            critical_zone: false,
            fingerprint: None,
            rules: Vec::new(),
        }
    }

    /// An attribute as text, for matching and templates: strings as they are, numbers and
    /// booleans printed, anything else absent.
    pub fn attribute_text(&self, key: &str) -> Option<String> {
        match self.attributes.get(key)? {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            Value::Bool(b) => Some(b.to_string()),
            _ => None,
        }
    }
}
