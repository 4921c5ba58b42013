//! Fingerprints: which fields make two records "the same alert". Configurable per source and per
//! rule; the default is source, resource, domain and event.

use std::borrow::Cow;

use blake2::{Blake2b512, Digest};

use crate::candidate::Candidate;

/// One field that takes part in a fingerprint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FingerprintField {
    Source,
    Resource,
    Domain,
    /// The `event` attribute when the source names its events, else the message with its
    /// variable parts (numbers) masked, so that "disk 91% full" and "disk 92% full" match.
    Event,
    /// The message exactly as stored.
    Message,
    Severity,
    SourceSeverity,
    SourceRef,
    /// `attributes.KEY`.
    Attribute(String),
}

/// The ordered list of fields a fingerprint is made of.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FingerprintSpec(Vec<FingerprintField>);

/// The names accepted in configuration, for messages.
pub const FIELD_NAMES: &str = "source, resource, domain, event, message, severity, source_severity, source_ref, attributes.KEY";

impl FingerprintSpec {
    /// Parses configured field names; the error names the bad entry.
    pub fn parse<S: AsRef<str>>(names: &[S]) -> Result<FingerprintSpec, String> {
        if names.is_empty() {
            return Err(format!("is empty: name at least one of {FIELD_NAMES}"));
        }
        let mut fields = Vec::with_capacity(names.len());
        for name in names {
            let name = name.as_ref();
            let field = match name {
                "source" => FingerprintField::Source,
                "resource" => FingerprintField::Resource,
                "domain" => FingerprintField::Domain,
                "event" => FingerprintField::Event,
                "message" => FingerprintField::Message,
                "severity" => FingerprintField::Severity,
                "source_severity" => FingerprintField::SourceSeverity,
                "source_ref" => FingerprintField::SourceRef,
                other => match other.strip_prefix("attributes.") {
                    Some(key) if !key.is_empty() => FingerprintField::Attribute(key.to_owned()),
                    _ => {
                        return Err(format!(
                            "has an unknown field `{other}`: expected one of {FIELD_NAMES}"
                        ));
                    }
                },
            };
            if fields.contains(&field) {
                return Err(format!("names `{name}` twice"));
            }
            fields.push(field);
        }
        Ok(FingerprintSpec(fields))
    }

    pub fn fields(&self) -> &[FingerprintField] {
        &self.0
    }

    /// The fingerprint of a qualified candidate: a hex digest of the chosen fields.
    pub fn compute(&self, c: &Candidate) -> String {
        let mut hasher = Blake2b512::new();
        for field in &self.0 {
            let part: Cow<'_, str> = match field {
                FingerprintField::Source => Cow::Borrowed(&c.source),
                FingerprintField::Resource => Cow::Borrowed(&c.resource),
                FingerprintField::Domain => Cow::Borrowed(c.domain.as_deref().unwrap_or_default()),
                FingerprintField::Event => Cow::Owned(event_of(c)),
                FingerprintField::Message => Cow::Borrowed(&c.message),
                FingerprintField::Severity => {
                    Cow::Owned(c.level.map(|l| l.to_string()).unwrap_or_default())
                }
                FingerprintField::SourceSeverity => {
                    Cow::Owned(c.source_severity.map(|s| s.to_string()).unwrap_or_default())
                }
                FingerprintField::SourceRef => {
                    Cow::Borrowed(c.source_ref.as_deref().unwrap_or_default())
                }
                FingerprintField::Attribute(key) => {
                    Cow::Owned(c.attribute_text(key).unwrap_or_default())
                }
            };
            // Length-prefixed, so that ("ab", "c") and ("a", "bc") differ.
            hasher.update((part.len() as u64).to_le_bytes());
            hasher.update(part.as_bytes());
        }
        let digest = hasher.finalize();
        digest[..16].iter().map(|b| format!("{b:02x}")).collect()
    }
}

impl Default for FingerprintSpec {
    fn default() -> FingerprintSpec {
        FingerprintSpec(vec![
            FingerprintField::Source,
            FingerprintField::Resource,
            FingerprintField::Domain,
            FingerprintField::Event,
        ])
    }
}

/// A digest of what a record says (not where it comes from): two deliveries of one reference
/// with the same digest are the same record; with different digests, the source updated it.
pub fn content_digest(c: &Candidate) -> String {
    let mut hasher = Blake2b512::new();
    let level = c.level.map(|l| l.to_string()).unwrap_or_default();
    let source_severity = c.source_severity.map(|s| s.to_string()).unwrap_or_default();
    // Serialising a map of JSON values cannot fail; an empty text would only make two records
    // look alike, never lose one.
    let attributes = serde_json::to_string(&c.attributes).unwrap_or_default();
    let raw = c.raw.as_ref().map(ToString::to_string).unwrap_or_default();
    let parts: [&str; 8] = [
        &c.resource,
        &c.message,
        c.domain.as_deref().unwrap_or_default(),
        &level,
        &source_severity,
        &attributes,
        &raw,
        if c.clear { "clear" } else { "raise" },
    ];
    for part in parts {
        hasher.update((part.len() as u64).to_le_bytes());
        hasher.update(part.as_bytes());
    }
    let digest = hasher.finalize();
    digest[..16].iter().map(|b| format!("{b:02x}")).collect()
}

/// Whether the candidate names its event (then clears can match by fingerprint).
pub fn has_event(c: &Candidate) -> bool {
    c.attribute_text("event").is_some_and(|e| !e.is_empty())
}

fn event_of(c: &Candidate) -> String {
    match c.attribute_text("event") {
        Some(e) if !e.is_empty() => e,
        _ => message_template(&c.message),
    }
}

/// The message with every run of digits replaced by `#`, and case folded.
pub fn message_template(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut in_digits = false;
    for ch in message.chars() {
        if ch.is_ascii_digit() {
            if !in_digits {
                out.push('#');
            }
            in_digits = true;
        } else {
            in_digits = false;
            out.extend(ch.to_lowercase());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use vigie_source::RawRecord;

    fn candidate(resource: &str, message: &str) -> Candidate {
        let mut c = Candidate::from_raw(RawRecord::new("nagios", resource, message));
        c.domain = Some("systems".into());
        c
    }

    #[test]
    fn parse_accepts_known_fields_and_names_bad_ones() {
        assert!(FingerprintSpec::parse(&["source", "attributes.ifname"]).is_ok());
        let err = FingerprintSpec::parse(&["source", "host"])
            .err()
            .unwrap_or_default();
        assert!(err.contains("`host`"), "{err}");
        assert!(FingerprintSpec::parse::<&str>(&[]).is_err());
        assert!(FingerprintSpec::parse(&["source", "source"]).is_err());
        assert!(FingerprintSpec::parse(&["attributes."]).is_err());
    }

    #[test]
    fn default_fingerprint_masks_numbers_but_not_resources() {
        let spec = FingerprintSpec::default();
        let a = spec.compute(&candidate("srv1", "Disk /var 91% full"));
        let b = spec.compute(&candidate("srv1", "disk /var 92% full"));
        let c = spec.compute(&candidate("srv2", "Disk /var 91% full"));
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_eq!(a.len(), 32);
    }

    #[test]
    fn event_attribute_wins_over_message() {
        let spec = FingerprintSpec::default();
        let mut a = candidate("srv1", "link down");
        let mut b = candidate("srv1", "link up again");
        a.attributes.insert("event".into(), "link".into());
        b.attributes.insert("event".into(), "link".into());
        assert_eq!(spec.compute(&a), spec.compute(&b));
        assert!(has_event(&a));
    }

    #[test]
    fn template_folds_digit_runs() {
        assert_eq!(
            message_template("CPU 99.5% on core 3"),
            "cpu #.#% on core #"
        );
    }
}
