//! Making a source's text fit the pipeline's limits, so that one odd row never gets a whole
//! submission refused: one-line identifiers without control characters, messages without NUL,
//! lengths cut at a character boundary.

use serde_json::Value;

/// The pipeline's limits (`vigie-alerts` `Limits::default`), which connectors stay under.
pub const RESOURCE_MAX: usize = 255;
pub const SOURCE_REF_MAX: usize = 255;
pub const MESSAGE_MAX_BYTES: usize = 16 * 1024;
pub const RAW_MAX_BYTES: usize = 200 * 1024;

/// One line: control characters become spaces, runs of spaces are kept, the ends are trimmed,
/// and at most `max` characters are kept. `fallback` when nothing is left.
pub fn one_line(text: &str, max: usize, fallback: &str) -> String {
    let cleaned: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let trimmed = cleaned.trim();
    let out: String = trimmed.chars().take(max).collect();
    let out = out.trim_end().to_owned();
    if out.is_empty() {
        fallback.chars().take(max).collect()
    } else {
        out
    }
}

/// A message: NUL characters removed, at most [`MESSAGE_MAX_BYTES`] bytes (cut at a character
/// boundary, marked with `…`), `fallback` when empty.
pub fn message(text: &str, fallback: &str) -> String {
    let cleaned = text.replace('\0', "");
    let trimmed = cleaned.trim();
    if trimmed.is_empty() {
        return fallback.to_owned();
    }
    if trimmed.len() <= MESSAGE_MAX_BYTES {
        return trimmed.to_owned();
    }
    let mut end = MESSAGE_MAX_BYTES - '…'.len_utf8();
    while !trimmed.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &trimmed[..end])
}

/// A JSON value without NUL characters in its strings; `None` when it is too large to keep.
pub fn raw(value: Value) -> Option<Value> {
    let value = strip_nul(value);
    let size = serde_json::to_string(&value).map_or(usize::MAX, |s| s.len());
    (size <= RAW_MAX_BYTES).then_some(value)
}

fn strip_nul(value: Value) -> Value {
    match value {
        Value::String(s) if s.contains('\0') => Value::String(s.replace('\0', "")),
        Value::Array(items) => Value::Array(items.into_iter().map(strip_nul).collect()),
        Value::Object(map) => {
            Value::Object(map.into_iter().map(|(k, v)| (k, strip_nul(v))).collect())
        }
        other => other,
    }
}

/// Text from HTML as tools store it (GLPI's ticket contents): tags removed, the common entities
/// decoded (also when the whole text was entity-encoded first), blank runs folded.
pub fn html_to_text(html: &str) -> String {
    // GLPI 9.x/10.x may store the HTML itself entity-encoded (`&#60;p&#62;`): decode once first.
    let once = decode_entities(html);
    let mut out = String::with_capacity(once.len());
    let mut in_tag = false;
    for c in once.chars() {
        match c {
            '<' => {
                in_tag = true;
                out.push(' ');
            }
            '>' if in_tag => in_tag = false,
            _ if !in_tag => out.push(c),
            _ => {}
        }
    }
    let decoded = decode_entities(&out);
    decoded.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn decode_entities(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        let tail = &rest[i..];
        let Some(end) = tail[..tail.len().min(12)].find(';') else {
            out.push('&');
            rest = &tail[1..];
            continue;
        };
        let entity = &tail[1..end];
        let decoded = match entity {
            "lt" => Some('<'),
            "gt" => Some('>'),
            "amp" => Some('&'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            "nbsp" => Some(' '),
            _ => entity
                .strip_prefix("#x")
                .or_else(|| entity.strip_prefix("#X"))
                .and_then(|h| u32::from_str_radix(h, 16).ok())
                .or_else(|| entity.strip_prefix('#').and_then(|d| d.parse().ok()))
                .and_then(char::from_u32),
        };
        match decoded {
            Some(c) => {
                out.push(c);
                rest = &tail[end + 1..];
            }
            None => {
                out.push('&');
                rest = &tail[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_removes_controls_and_cuts() {
        assert_eq!(one_line(" a\tb\nc ", 10, "x"), "a b c");
        assert_eq!(one_line("éééé", 2, "x"), "éé");
        assert_eq!(one_line(" \n ", 5, "fallback"), "fallb");
    }

    #[test]
    fn message_is_cut_at_a_char_boundary() {
        let long = "é".repeat(MESSAGE_MAX_BYTES);
        let m = message(&long, "x");
        assert!(m.len() <= MESSAGE_MAX_BYTES);
        assert!(m.ends_with('…'));
        assert_eq!(message("a\0b", "x"), "ab");
        assert_eq!(message("  ", "empty"), "empty");
    }

    #[test]
    fn html_is_flattened_even_when_encoded() {
        assert_eq!(
            html_to_text("&#60;p&#62;Users cannot connect&#60;/p&#62;"),
            "Users cannot connect"
        );
        assert_eq!(html_to_text("<p>a &amp; b</p><p>c&nbsp;d</p>"), "a & b c d");
        assert_eq!(html_to_text("x & y"), "x & y");
    }

    #[test]
    fn raw_strips_nul_and_refuses_huge_values() {
        let v = raw(serde_json::json!({"a": "x\0y"}));
        assert_eq!(v, Some(serde_json::json!({"a": "xy"})));
        assert_eq!(raw(Value::String("x".repeat(RAW_MAX_BYTES + 1))), None);
    }
}
