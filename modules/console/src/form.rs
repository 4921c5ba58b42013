//! Reading `application/x-www-form-urlencoded` bodies, including repeated keys (checkboxes),
//! which the typed extractors do not keep.

use std::collections::HashSet;

/// The fields of a submitted form, in order.
#[derive(Clone, Debug, Default)]
pub struct FormData {
    pairs: Vec<(String, String)>,
}

/// Longest value kept for any one field; longer ones are cut (and then refused by the field's
/// own check, which is always shorter).
const VALUE_MAX: usize = 10_000;

impl FormData {
    pub fn parse(body: &[u8]) -> FormData {
        FormData {
            pairs: form_urlencoded::parse(body)
                .map(|(k, v)| (k.into_owned(), v.chars().take(VALUE_MAX).collect()))
                .collect(),
        }
    }

    /// The first value of a field.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The value, or empty.
    pub fn text(&self, name: &str) -> String {
        self.get(name).unwrap_or_default().to_owned()
    }

    /// Every value of a repeated field.
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.pairs
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// Every value of a repeated field that is a number.
    pub fn ids(&self, name: &str) -> HashSet<i64> {
        self.all(name)
            .iter()
            .filter_map(|v| v.parse().ok())
            .collect()
    }

    pub fn checked(&self, name: &str) -> bool {
        self.get(name).is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_and_encoded_fields_are_kept() {
        let f = FormData::parse(b"a=1&menu=3&menu=5&name=J%C3%A9r%C3%B4me+D&x=%3Cb%3E");
        assert_eq!(f.get("a"), Some("1"));
        assert_eq!(f.ids("menu"), HashSet::from([3, 5]));
        assert_eq!(f.text("name"), "Jérôme D");
        assert_eq!(f.text("x"), "<b>");
        assert_eq!(f.get("missing"), None);
        assert!(f.checked("a") && !f.checked("b"));
    }
}
