//! The two languages of the console. Every string shown comes from `locales/en.toml` or
//! `locales/fr.toml` (embedded at build time); templates read them as `t.section.key`, Rust code
//! through [`Locales::text`]. Both files must have exactly the same keys (a test checks it).

use std::collections::BTreeMap;

use serde_json::Value;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Lang {
    En,
    Fr,
}

impl Lang {
    pub const ALL: [Lang; 2] = [Lang::En, Lang::Fr];

    pub fn code(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::Fr => "fr",
        }
    }

    pub fn parse(code: &str) -> Option<Lang> {
        match code.trim().to_ascii_lowercase().as_str() {
            "en" => Some(Lang::En),
            "fr" => Some(Lang::Fr),
            _ => None,
        }
    }

    /// The language for a request: the user's choice, else the best of `Accept-Language`
    /// (by quality, then order), else the configured default.
    pub fn negotiate(user: Option<&str>, accept_language: Option<&str>, default: Lang) -> Lang {
        if let Some(lang) = user.and_then(Lang::parse) {
            return lang;
        }
        let mut best: Option<(f32, usize, Lang)> = None;
        for (i, part) in accept_language.unwrap_or_default().split(',').enumerate() {
            let mut pieces = part.split(';');
            let tag = pieces.next().unwrap_or_default().trim();
            let primary = tag.split('-').next().unwrap_or_default();
            let Some(lang) = Lang::parse(primary) else {
                continue;
            };
            let q = pieces
                .filter_map(|p| p.trim().strip_prefix("q="))
                .find_map(|q| q.parse::<f32>().ok())
                .unwrap_or(1.0);
            if q <= 0.0 {
                continue;
            }
            let better = match best {
                None => true,
                Some((bq, bi, _)) => q > bq || (q == bq && i < bi),
            };
            if better {
                best = Some((q, i, lang));
            }
        }
        best.map_or(default, |(_, _, lang)| lang)
    }
}

/// Both languages' strings, as a tree (for templates) and flat (for code).
#[derive(Debug)]
pub struct Locales {
    trees: [Value; 2],
    flat: [BTreeMap<String, String>; 2],
}

#[derive(Debug, thiserror::Error)]
pub enum LocaleError {
    #[error("locale file {0}.toml is missing")]
    Missing(&'static str),
    #[error("locale file {lang}.toml: {problem}")]
    Invalid { lang: &'static str, problem: String },
}

fn flatten(prefix: &str, value: &Value, out: &mut BTreeMap<String, String>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(&key, v, out);
            }
        }
        Value::String(s) => {
            out.insert(prefix.to_owned(), s.clone());
        }
        other => {
            out.insert(prefix.to_owned(), other.to_string());
        }
    }
}

impl Locales {
    /// Parses the embedded locale files.
    pub fn load() -> Result<Locales, LocaleError> {
        Locales::from_sources(crate::embedded::LOCALES)
    }

    pub fn from_sources(sources: &[(&str, &str)]) -> Result<Locales, LocaleError> {
        // `en.toml` holds the console's strings; a module adds its own in `<module>.en.toml`
        // (top-level sections must not collide).
        let parse = |lang: Lang| -> Result<Value, LocaleError> {
            let suffix = format!(".{}", lang.code());
            let mut merged = serde_json::Map::new();
            let mut found = false;
            for (name, text) in sources {
                if *name != lang.code() && !name.ends_with(&suffix) {
                    continue;
                }
                found = true;
                let table: toml::Table =
                    toml::from_str(text).map_err(|e| LocaleError::Invalid {
                        lang: lang.code(),
                        problem: format!("{name}.toml: {e}"),
                    })?;
                for (key, value) in table {
                    let value = serde_json::to_value(value).map_err(|e| LocaleError::Invalid {
                        lang: lang.code(),
                        problem: e.to_string(),
                    })?;
                    if merged.insert(key.clone(), value).is_some() {
                        return Err(LocaleError::Invalid {
                            lang: lang.code(),
                            problem: format!("{name}.toml: section [{key}] is defined twice"),
                        });
                    }
                }
            }
            if !found {
                return Err(LocaleError::Missing(lang.code()));
            }
            Ok(Value::Object(merged))
        };
        let en = parse(Lang::En)?;
        let fr = parse(Lang::Fr)?;
        let mut flat_en = BTreeMap::new();
        let mut flat_fr = BTreeMap::new();
        flatten("", &en, &mut flat_en);
        flatten("", &fr, &mut flat_fr);
        Ok(Locales {
            trees: [en, fr],
            flat: [flat_en, flat_fr],
        })
    }

    fn index(lang: Lang) -> usize {
        match lang {
            Lang::En => 0,
            Lang::Fr => 1,
        }
    }

    /// The tree templates read as `t`.
    pub fn tree(&self, lang: Lang) -> &Value {
        &self.trees[Self::index(lang)]
    }

    /// One string; a missing key shows as the key itself (and is caught by the tests).
    pub fn text(&self, lang: Lang, key: &str) -> String {
        self.flat[Self::index(lang)]
            .get(key)
            .cloned()
            .unwrap_or_else(|| key.to_owned())
    }

    pub fn has(&self, lang: Lang, key: &str) -> bool {
        self.flat[Self::index(lang)].contains_key(key)
    }

    /// Keys present in one language and not the other.
    pub fn differences(&self) -> Vec<String> {
        let [en, fr] = &self.flat;
        let mut out: Vec<String> = en
            .keys()
            .filter(|k| !fr.contains_key(*k))
            .map(|k| format!("fr lacks {k}"))
            .collect();
        out.extend(
            fr.keys()
                .filter(|k| !en.contains_key(*k))
                .map(|k| format!("en lacks {k}")),
        );
        out
    }

    pub fn keys(&self, lang: Lang) -> impl Iterator<Item = &String> {
        self.flat[Self::index(lang)].keys()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negotiation_prefers_user_then_header_quality_then_default() {
        assert_eq!(Lang::negotiate(Some("fr"), Some("en"), Lang::En), Lang::Fr);
        assert_eq!(
            Lang::negotiate(None, Some("en-GB,fr;q=0.8"), Lang::Fr),
            Lang::En
        );
        assert_eq!(
            Lang::negotiate(None, Some("de,fr-CA;q=0.5,en;q=0.4"), Lang::En),
            Lang::Fr
        );
        assert_eq!(Lang::negotiate(None, Some("de, es"), Lang::Fr), Lang::Fr);
        assert_eq!(Lang::negotiate(None, Some("en;q=0"), Lang::Fr), Lang::Fr);
        assert_eq!(Lang::negotiate(Some("xx"), None, Lang::En), Lang::En);
    }

    #[test]
    fn shipped_locales_parse_and_have_the_same_keys() -> Result<(), LocaleError> {
        let locales = Locales::load()?;
        assert_eq!(locales.differences(), Vec::<String>::new());
        assert!(locales.keys(Lang::En).count() > 100);
        assert_ne!(
            locales.text(Lang::En, "auth.login"),
            locales.text(Lang::Fr, "auth.login")
        );
        for lang in Lang::ALL {
            for key in locales.keys(lang) {
                assert!(
                    !locales.text(lang, key).trim().is_empty(),
                    "{key} is empty in {lang:?}"
                );
            }
        }
        Ok(())
    }
}
