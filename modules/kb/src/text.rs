//! Text handling shared by both backends: accent folding (the same in the index and in queries,
//! so "redemarrer" finds "redémarrer" and back), words, stop words, the backends' query strings
//! and the snippet shown under a hit.

use serde::Serialize;
use unicode_normalization::UnicodeNormalization;
use unicode_normalization::char::is_combining_mark;

/// Longest word kept in a query (longer ones are cut: nobody types them, and they bound the query).
const WORD_MAX: usize = 40;

/// Lower case without diacritics: `É` → `e`, `ç` → `c`, `œ` → `oe`, `æ` → `ae`, `ß` → `ss`.
/// Characters with no decomposition are kept as they are (lower-cased).
pub fn fold(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.nfd() {
        if is_combining_mark(c) {
            continue;
        }
        for l in c.to_lowercase() {
            match l {
                'œ' => out.push_str("oe"),
                'æ' => out.push_str("ae"),
                'ß' => out.push_str("ss"),
                'ø' => out.push('o'),
                'đ' => out.push('d'),
                'ł' => out.push('l'),
                other => out.push(other),
            }
        }
    }
    out
}

/// The folded words of a text: runs of letters and digits (everything else separates, as the
/// SQLite `unicode61` tokenizer and PostgreSQL's parser do), each at most [`WORD_MAX`] long.
/// Only letters and digits remain, so a word is safe inside either backend's query syntax.
pub fn words(text: &str) -> Vec<String> {
    fold(text)
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(|w| w.chars().take(WORD_MAX).collect())
        .collect()
}

/// Common French and English words (folded), left out of suggestions and of AND searches:
/// they say nothing of the problem.
const STOP_WORDS: &[&str] = &[
    // French
    "a", "afin", "ai", "aie", "ainsi", "alors", "au", "aucun", "aussi", "autre", "aux", "avec",
    "avoir", "c", "ca", "car", "ce", "ceci", "cela", "celle", "celui", "ces", "cet", "cette",
    "chez", "comme", "comment", "d", "dans", "de", "depuis", "des", "deja", "donc", "dont", "du",
    "elle", "elles", "en", "encore", "entre", "est", "et", "etaient", "etait", "ete", "etre", "eu",
    "fait", "faut", "il", "ils", "j", "je", "jusqu", "l", "la", "le", "les", "leur", "leurs",
    "lors", "lui", "m", "ma", "mais", "me", "meme", "mes", "moi", "mon", "n", "ne", "ni", "nos",
    "notre", "nous", "on", "ont", "ou", "par", "pas", "peu", "peut", "plus", "pour", "pourquoi",
    "qu", "quand", "que", "quel", "quelle", "qui", "s", "sa", "sans", "se", "sera", "ses", "si",
    "son", "sont", "sous", "suis", "sur", "t", "ta", "te", "tes", "toi", "ton", "tous", "tout",
    "tres", "tu", "un", "une", "vers", "via", "vos", "votre", "vous", "y", // English
    "about", "after", "all", "also", "am", "an", "and", "any", "are", "as", "at", "be", "been",
    "before", "being", "but", "by", "can", "cannot", "could", "did", "do", "does", "doing", "for",
    "from", "had", "has", "have", "having", "he", "her", "here", "him", "his", "how", "i", "if",
    "in", "into", "is", "it", "its", "me", "more", "my", "no", "not", "now", "of", "off", "on",
    "once", "only", "or", "other", "our", "out", "over", "same", "she", "should", "so", "some",
    "such", "than", "that", "the", "their", "them", "then", "there", "these", "they", "this",
    "those", "through", "to", "too", "under", "until", "up", "very", "was", "we", "were", "what",
    "when", "where", "which", "while", "who", "why", "will", "with", "would", "you", "your",
];

pub fn is_stop_word(word: &str) -> bool {
    STOP_WORDS.contains(&word)
}

/// The words a search looks for, all required: stop words are left out unless nothing else is
/// left (a search for "le" still looks for "le").
pub fn search_terms(query: &str, max: usize) -> Vec<String> {
    let all = words(query);
    let mut significant: Vec<String> = all.iter().filter(|w| !is_stop_word(w)).cloned().collect();
    if significant.is_empty() {
        significant = all;
    }
    dedupe(significant, max)
}

/// The words a suggestion looks for, any of them: no stop words, no single letters.
pub fn suggest_terms(text: &str, max: usize) -> Vec<String> {
    let significant = words(text)
        .into_iter()
        .filter(|w| w.chars().count() >= 2 && !is_stop_word(w))
        .collect();
    dedupe(significant, max)
}

fn dedupe(words: Vec<String>, max: usize) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for w in words {
        if !out.contains(&w) {
            out.push(w);
        }
        if out.len() == max {
            break;
        }
    }
    out
}

/// How the terms combine.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Combine {
    /// Every term, the last one as a prefix (what a search box wants while typing).
    AllLastPrefix,
    /// Any term (suggestions).
    Any,
}

/// An FTS5 `MATCH` expression: each term quoted, `*` for a prefix, implicit AND or `OR`.
pub fn fts5_query(terms: &[String], combine: Combine) -> String {
    let last = terms.len().saturating_sub(1);
    let parts: Vec<String> = terms
        .iter()
        .enumerate()
        .map(|(i, t)| {
            if combine == Combine::AllLastPrefix && i == last {
                format!("\"{t}\"*")
            } else {
                format!("\"{t}\"")
            }
        })
        .collect();
    match combine {
        Combine::AllLastPrefix => parts.join(" "),
        Combine::Any => parts.join(" OR "),
    }
}

/// A `to_tsquery` expression: each term quoted, `:*` for a prefix, `&` or `|`.
pub fn tsquery(terms: &[String], combine: Combine) -> String {
    let last = terms.len().saturating_sub(1);
    let parts: Vec<String> = terms
        .iter()
        .enumerate()
        .map(|(i, t)| {
            if combine == Combine::AllLastPrefix && i == last {
                format!("'{t}':*")
            } else {
                format!("'{t}'")
            }
        })
        .collect();
    match combine {
        Combine::AllLastPrefix => parts.join(" & "),
        Combine::Any => parts.join(" | "),
    }
}

/// One piece of a snippet: highlighted when it is a word of the query.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct Piece {
    pub text: String,
    pub hit: bool,
}

/// Whether a folded word of the text answers a term of the query: the same word, a word the
/// term starts (prefix search), or one sharing a long stem with it (PostgreSQL stems French).
fn answers(word: &str, term: &str) -> bool {
    if word.starts_with(term) {
        return true;
    }
    let common = word
        .chars()
        .zip(term.chars())
        .take_while(|(a, b)| a == b)
        .count();
    common >= 5 && common + 3 >= term.chars().count()
}

/// Characters of context in a snippet.
const SNIPPET_CHARS: usize = 220;

/// A short excerpt of `text` around the first word that answers one of `terms`, cut into pieces
/// (the words answering highlighted). Without an answering word, the start of the text.
pub fn snippet(text: &str, terms: &[String]) -> Vec<Piece> {
    let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    // Words with their char ranges in the (whitespace-normalised) text.
    let chars: Vec<char> = text.chars().collect();
    let mut spans: Vec<(usize, usize, bool)> = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        if chars[i].is_alphanumeric() {
            let start = i;
            while i < chars.len() && chars[i].is_alphanumeric() {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            let folded = fold(&word);
            let hit = terms.iter().any(|t| answers(&folded, t));
            spans.push((start, i, hit));
        } else {
            i += 1;
        }
    }
    let first = spans.iter().find(|s| s.2).map_or(0, |s| s.0);
    let mut from = first.saturating_sub(SNIPPET_CHARS / 3);
    // Start at a word boundary.
    while from > 0 && chars[from - 1].is_alphanumeric() {
        from -= 1;
    }
    let mut to = (from + SNIPPET_CHARS).min(chars.len());
    while to < chars.len() && chars[to].is_alphanumeric() {
        to += 1;
    }
    let mut pieces: Vec<Piece> = Vec::new();
    let mut push = |text: String, hit: bool| {
        if text.is_empty() {
            return;
        }
        match pieces.last_mut() {
            Some(last) if last.hit == hit => last.text.push_str(&text),
            _ => pieces.push(Piece { text, hit }),
        }
    };
    if from > 0 {
        push("… ".into(), false);
    }
    let mut at = from;
    for &(start, end, hit) in spans.iter().filter(|s| s.0 >= from && s.1 <= to) {
        push(chars[at..start].iter().collect(), false);
        push(chars[start..end].iter().collect(), hit);
        at = end;
    }
    push(chars[at..to].iter().collect(), false);
    if to < chars.len() {
        push(" …".into(), false);
    }
    pieces
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folding_removes_accents_and_splits_ligatures() {
        assert_eq!(
            fold("Redémarrer le SERVEUR à Noël"),
            "redemarrer le serveur a noel"
        );
        assert_eq!(
            fold("Cœur ÆGIS façade straße"),
            "coeur aegis facade strasse"
        );
        assert_eq!(fold("ÉÈÊËÀÂÎÏÔÙÛÜŸÇ"), "eeeeaaiiouuuyc");
    }

    #[test]
    fn words_drop_punctuation_and_stop_words() {
        assert_eq!(
            words("L'imprimante (HP-4000) s'arrête."),
            ["l", "imprimante", "hp", "4000", "s", "arrete"]
        );
        assert_eq!(
            search_terms("le serveur de fichiers", 10),
            ["serveur", "fichiers"]
        );
        assert_eq!(search_terms("le la", 10), ["le", "la"]);
        assert_eq!(
            suggest_terms("The VPN is down: le VPN ne répond plus", 10),
            ["vpn", "down", "repond"]
        );
    }

    #[test]
    fn queries_quote_terms() {
        let terms = vec!["redemarrer".to_owned(), "serv".to_owned()];
        assert_eq!(
            fts5_query(&terms, Combine::AllLastPrefix),
            "\"redemarrer\" \"serv\"*"
        );
        assert_eq!(
            fts5_query(&terms, Combine::Any),
            "\"redemarrer\" OR \"serv\""
        );
        assert_eq!(
            tsquery(&terms, Combine::AllLastPrefix),
            "'redemarrer' & 'serv':*"
        );
        assert_eq!(tsquery(&terms, Combine::Any), "'redemarrer' | 'serv'");
    }

    #[test]
    fn snippets_highlight_answering_words() {
        let pieces = snippet(
            "Il faut redémarrer le service d'impression.",
            &["redemarrer".to_owned()],
        );
        assert_eq!(
            pieces,
            [
                Piece {
                    text: "Il faut ".into(),
                    hit: false
                },
                Piece {
                    text: "redémarrer".into(),
                    hit: true
                },
                Piece {
                    text: " le service d'impression.".into(),
                    hit: false
                },
            ]
        );
        let long = format!("{} clé USB {}", "mot ".repeat(200), "fin ".repeat(200));
        let pieces = snippet(&long, &["cle".to_owned()]);
        assert_eq!(pieces[0].text.chars().next(), Some('…'));
        assert!(pieces.iter().any(|p| p.hit && p.text == "clé"));
        assert!(pieces.last().is_some_and(|p| p.text.ends_with('…')));
        let total: usize = pieces.iter().map(|p| p.text.chars().count()).sum();
        assert!(total < 260, "{total}");
    }
}
