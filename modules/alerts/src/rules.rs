//! The qualification rule engine: an ordered, declarative rule set (TOML) that turns a
//! [`Candidate`] into a qualified alert, or drops it as not significant.
//!
//! The format is documented for administrators at the top of `config/rules.toml`, the shipped
//! default, which carries the domain's reference mapping (syslog severity → level).
//!
//! Design choices, and why:
//! - The TOML is walked by hand (not deserialised with serde) so that *every* problem of a file is
//!   reported at once, each with its path (`rules[2].when.message`): an administrator fixing a
//!   rule file should not have to run `vigie check-config` once per mistake.
//! - Everything that can be checked at load time is: regexes and globs are compiled, domains are
//!   checked against the configured list, template variables are resolved (capture groups to
//!   their index). A loaded [`RuleSet`] cannot fail at run time.
//! - [`RuleSet::qualify`] runs for every record (50 000 records/s): a rule that does not match
//!   allocates nothing. Cheap conditions are tested before the regexes, attribute values are
//!   compared without copying them, and capture groups are only extracted once a rule has
//!   matched and its templates need them.

use std::collections::HashMap;
use std::fmt::{self, Write as _};
use std::path::Path;

use regex::{Captures, Regex};
use serde_json::Value as Json;
use toml::{Table, Value};
use vigie_core::Level;
use vigie_core::domain::Domains;
use vigie_source::RuleView;

use crate::candidate::Candidate;
use crate::fingerprint::FingerprintSpec;

/// One problem found while loading a rule file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RuleProblem {
    /// Where: `rules[2].when.message`, or the file for a problem with the whole file.
    pub path: String,
    pub problem: String,
}

impl RuleProblem {
    fn new(path: impl Into<String>, problem: impl Into<String>) -> RuleProblem {
        RuleProblem {
            path: path.into(),
            problem: problem.into(),
        }
    }
}

impl fmt::Display for RuleProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.problem)
    }
}

impl std::error::Error for RuleProblem {}

/// What the rules decided about a candidate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Store it (possibly changed by the rules).
    Keep,
    /// Not significant: the named rule dropped it.
    Drop { rule: String },
}

/// An ordered, validated set of qualification rules. Immutable once loaded: a reload builds a
/// new one and swaps it.
#[derive(Debug, Default)]
pub struct RuleSet {
    rules: Vec<Rule>,
}

/// The name under which a TOML syntax error is reported by [`RuleSet::from_toml_str`].
const DEFAULT_FILE_NAME: &str = "rules.toml";

impl RuleSet {
    /// Parses and validates a rule file. On failure, returns every problem found, not only the
    /// first.
    pub fn from_toml_str(text: &str, domains: &Domains) -> Result<RuleSet, Vec<RuleProblem>> {
        parse(text, domains, DEFAULT_FILE_NAME)
    }

    /// Reads a rule file. An unreadable file, or a file that is not TOML, is one problem whose
    /// path is the file's path.
    pub fn load(path: &Path, domains: &Domains) -> Result<RuleSet, Vec<RuleProblem>> {
        let shown = path.display().to_string();
        match std::fs::read_to_string(path) {
            Ok(text) => parse(&text, domains, &shown),
            Err(e) => Err(vec![RuleProblem::new(shown, format!("cannot read: {e}"))]),
        }
    }

    /// The rules shipped with the hub (`config/rules.toml`).
    pub fn shipped(domains: &Domains) -> Result<RuleSet, Vec<RuleProblem>> {
        RuleSet::from_toml_str(include_str!("../../../config/rules.toml"), domains)
    }

    /// No rules: every candidate is kept as it is.
    pub fn empty() -> RuleSet {
        RuleSet { rules: Vec::new() }
    }

    pub fn len(&self) -> usize {
        self.rules.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Runs the rules in order on the candidate, changing it in place. Stops at the first rule
    /// that matches unless that rule says `continue = true`; a matching `drop` rule stops at once.
    pub fn qualify(&self, c: &mut Candidate) -> Verdict {
        for rule in &self.rules {
            if !rule.when.matches(c) {
                continue;
            }
            c.rules.push(rule.name.clone());
            if rule.drop {
                return Verdict::Drop {
                    rule: rule.name.clone(),
                };
            }
            rule.apply(c);
            if !rule.go_on {
                break;
            }
        }
        Verdict::Keep
    }

    /// The rule that drops the record `view` describes, if the first rule it matches is a
    /// `drop` rule: then [`RuleSet::qualify`] would drop the built record too, since it stops at
    /// that rule and no earlier rule changed anything. `None` does not mean kept: the record has
    /// to be built and qualified.
    pub fn dropping(&self, view: &dyn RuleView) -> Option<&str> {
        let rule = self.rules.iter().find(|rule| rule.when.matches(view))?;
        rule.drop.then_some(rule.name.as_str())
    }
}

// ---------------------------------------------------------------------------------------------
// The compiled rules
// ---------------------------------------------------------------------------------------------

#[derive(Debug)]
struct Rule {
    name: String,
    /// `continue = true`: go on with the next rules after this one matched.
    go_on: bool,
    when: When,
    set: Set,
    default: Defaults,
    tags: Vec<String>,
    critical_zone: bool,
    drop: bool,
    fingerprint: Option<FingerprintSpec>,
    /// Whether a template refers to a capture group of `when.message`.
    needs_captures: bool,
}

/// Conditions, all of which must hold. An absent condition (`None`, empty list, zero mask) holds.
#[derive(Debug, Default)]
struct When {
    source: Vec<Glob>,
    resource: Vec<Glob>,
    resource_regex: Option<Regex>,
    domain: Vec<String>,
    /// Bit `n` set: facility `n` is accepted. `0`: no facility condition.
    facilities: u32,
    source_severity: Option<(i32, i32)>,
    has_severity: Option<bool>,
    has_source_severity: Option<bool>,
    clear: Option<bool>,
    message: Option<Regex>,
    attributes: Vec<(String, Vec<Glob>)>,
}

#[derive(Debug, Default)]
struct Set {
    domain: Option<String>,
    severity: Option<Level>,
    resource: Option<Template>,
    message: Option<Template>,
}

#[derive(Debug, Default)]
struct Defaults {
    domain: Option<String>,
    severity: Option<Level>,
}

impl When {
    /// Whether the candidate meets every condition. Allocates nothing.
    fn matches(&self, c: &dyn RuleView) -> bool {
        // Cheapest first; the regexes last.
        if self.clear.is_some_and(|want| c.clear() != want)
            || self
                .has_severity
                .is_some_and(|want| c.level_given() != want)
            || self
                .has_source_severity
                .is_some_and(|want| c.source_severity().is_some() != want)
        {
            return false;
        }
        if let Some((min, max)) = self.source_severity {
            match c.source_severity() {
                Some(s) if min <= s && s <= max => {}
                _ => return false,
            }
        }
        if !self.domain.is_empty() {
            match c.domain() {
                Some(d) if self.domain.iter().any(|want| want == d) => {}
                _ => return false,
            }
        }
        if self.facilities != 0 {
            match c.facility() {
                Some(f) if self.facilities & (1 << f) != 0 => {}
                _ => return false,
            }
        }
        if !any_glob(&self.source, c.source()) || !any_glob(&self.resource, c.resource()) {
            return false;
        }
        for (key, globs) in &self.attributes {
            let hit = c.attribute(key, &mut |text| globs.iter().any(|g| g.matches(text)));
            if hit != Some(true) {
                return false;
            }
        }
        if let Some(re) = &self.resource_regex
            && !re.is_match(c.resource())
        {
            return false;
        }
        if let Some(re) = &self.message
            && !re.is_match(c.message())
        {
            return false;
        }
        true
    }
}

/// An empty list is no condition; otherwise any glob may match.
fn any_glob(globs: &[Glob], text: &str) -> bool {
    globs.is_empty() || globs.iter().any(|g| g.matches(text))
}

impl Rule {
    /// Applies the actions of a matching (non-dropping) rule: set, then default, then tags,
    /// critical zone and fingerprint.
    fn apply(&self, c: &mut Candidate) {
        // Templates render against the candidate as it was when the rule matched, so both are
        // rendered before anything changes.
        let (resource, message) = {
            let captures = match (&self.when.message, self.needs_captures) {
                (Some(re), true) => re.captures(&c.message),
                _ => None,
            };
            let render = |t: &Option<Template>| t.as_ref().map(|t| t.render(c, captures.as_ref()));
            (render(&self.set.resource), render(&self.set.message))
        };
        if let Some(domain) = &self.set.domain {
            c.domain = Some(domain.clone());
        }
        if let Some(level) = self.set.severity {
            c.level = Some(level);
        }
        if let Some(resource) = resource {
            c.resource = resource;
        }
        if let Some(message) = message {
            c.message = message;
        }

        if c.domain.is_none() {
            c.domain.clone_from(&self.default.domain);
        }
        if c.level.is_none() {
            c.level = self.default.severity;
        }

        for tag in &self.tags {
            if !c.tags.contains(tag) {
                c.tags.push(tag.clone());
            }
        }
        if self.critical_zone {
            c.critical_zone = true;
        }
        if let Some(spec) = &self.fingerprint {
            c.fingerprint = Some(spec.clone());
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Attributes and facilities, read without allocating
// ---------------------------------------------------------------------------------------------

/// Calls `f` with the attribute's text exactly as [`Candidate::attribute_text`] renders it, but
/// without copying it: numbers are printed into a stack buffer. `None` when the attribute is
/// absent or not a scalar.
fn with_attribute_text<R>(c: &Candidate, key: &str, f: impl FnOnce(&str) -> R) -> Option<R> {
    match c.attributes.get(key)? {
        Json::String(s) => Some(f(s)),
        Json::Bool(b) => Some(f(if *b { "true" } else { "false" })),
        Json::Number(n) => {
            let mut buf = StackText::default();
            if write!(buf, "{n}").is_ok() {
                Some(f(buf.as_str()))
            } else {
                // Longer than any number serde_json prints; kept for correctness only.
                Some(f(&n.to_string()))
            }
        }
        _ => None,
    }
}

/// A small text buffer on the stack, for printing numbers without allocating.
struct StackText {
    buf: [u8; 64],
    len: usize,
}

impl Default for StackText {
    fn default() -> StackText {
        StackText {
            buf: [0; 64],
            len: 0,
        }
    }
}

impl StackText {
    fn as_str(&self) -> &str {
        // Only whole `&str`s are ever copied in, so the bytes are always valid UTF-8.
        std::str::from_utf8(&self.buf[..self.len]).unwrap_or_default()
    }
}

impl fmt::Write for StackText {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let end = self.len + s.len();
        let dest = self.buf.get_mut(self.len..end).ok_or(fmt::Error)?;
        dest.copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

/// Syslog facility names (syslog-ng's list), numbered by their position.
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

/// A facility given by name (any case) or by number (`"4"` too).
fn facility_number(text: &str) -> Option<u32> {
    if let Ok(n) = text.parse::<u32>() {
        return (n < 24).then_some(n);
    }
    FACILITIES
        .iter()
        .position(|name| name.eq_ignore_ascii_case(text))
        .and_then(|n| u32::try_from(n).ok())
}

/// The candidate's facility, from `attributes["facility"]`, a number or a name.
fn facility_of(c: &Candidate) -> Option<u32> {
    match c.attributes.get("facility")? {
        Json::Number(n) => n
            .as_u64()
            .filter(|n| *n < 24)
            .and_then(|n| u32::try_from(n).ok()),
        Json::String(s) => facility_number(s),
        _ => None,
    }
}

impl RuleView for Candidate {
    fn source(&self) -> &str {
        &self.source
    }
    fn resource(&self) -> &str {
        &self.resource
    }
    fn message(&self) -> &str {
        &self.message
    }
    fn source_severity(&self) -> Option<i32> {
        self.source_severity
    }
    fn facility(&self) -> Option<u32> {
        facility_of(self)
    }
    fn attribute(&self, key: &str, f: &mut dyn FnMut(&str) -> bool) -> Option<bool> {
        with_attribute_text(self, key, |text| f(text))
    }
    fn domain(&self) -> Option<&str> {
        self.domain.as_deref()
    }
    fn level_given(&self) -> bool {
        self.level_given
    }
    fn clear(&self) -> bool {
        self.clear
    }
}

// ---------------------------------------------------------------------------------------------
// Globs
// ---------------------------------------------------------------------------------------------

/// A shell-like pattern on a whole text: `*` any run of characters, `?` one character, `\`
/// escapes the next character. Case-sensitive, like the regexes.
#[derive(Debug)]
struct Glob {
    tokens: Vec<GlobToken>,
}

#[derive(Debug, PartialEq, Eq)]
enum GlobToken {
    Char(char),
    Any,
    Star,
}

impl Glob {
    fn parse(pattern: &str) -> Result<Glob, String> {
        if pattern.is_empty() {
            return Err("is an empty glob".into());
        }
        let mut tokens = Vec::with_capacity(pattern.len());
        let mut chars = pattern.chars();
        while let Some(ch) = chars.next() {
            let token = match ch {
                '*' => {
                    // `**` is the same as `*`; one star keeps the matcher linear.
                    if tokens.last() == Some(&GlobToken::Star) {
                        continue;
                    }
                    GlobToken::Star
                }
                '?' => GlobToken::Any,
                '\\' => match chars.next() {
                    Some(escaped) => GlobToken::Char(escaped),
                    None => return Err(format!("bad glob `{pattern}`: ends with a lone `\\`")),
                },
                '[' | ']' => {
                    // Refused rather than taken literally: someone writing `rtr-[0-9]*` expects
                    // a character class and would silently match nothing.
                    return Err(format!(
                        "bad glob `{pattern}`: character classes `[...]` are not supported \
                         (only `*` and `?`; write `\\{ch}` for a literal `{ch}`, or use a regex)"
                    ));
                }
                other => GlobToken::Char(other),
            };
            tokens.push(token);
        }
        Ok(Glob { tokens })
    }

    /// Whether the whole text matches. Iterative, backtracking only to the last star: linear in
    /// practice, and no allocation.
    fn matches(&self, text: &str) -> bool {
        let pattern = &self.tokens;
        let (mut p, mut t) = (0, 0); // token index, byte index in text
        // After a star: the token following it, and where in the text the star stopped.
        let mut star: Option<(usize, usize)> = None;
        loop {
            let next = text[t..].chars().next();
            match (pattern.get(p), next) {
                (None, None) => return true,
                (Some(GlobToken::Star), _) => {
                    p += 1;
                    star = Some((p, t));
                    continue;
                }
                (Some(GlobToken::Any), Some(ch)) => {
                    p += 1;
                    t += ch.len_utf8();
                    continue;
                }
                (Some(GlobToken::Char(want)), Some(ch)) if *want == ch => {
                    p += 1;
                    t += ch.len_utf8();
                    continue;
                }
                _ => {}
            }
            // Mismatch: let the last star swallow one more character, or fail.
            let Some((after_star, star_end)) = star else {
                return false;
            };
            let Some(ch) = text[star_end..].chars().next() else {
                return false;
            };
            let star_end = star_end + ch.len_utf8();
            star = Some((after_star, star_end));
            p = after_star;
            t = star_end;
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Templates
// ---------------------------------------------------------------------------------------------

/// A text with `{variables}`, resolved at load time.
#[derive(Debug)]
struct Template {
    parts: Vec<Part>,
}

#[derive(Debug)]
enum Part {
    Text(String),
    Resource,
    Message,
    Source,
    Domain,
    SourceSeverity,
    Attribute(String),
    /// A capture group of the rule's `when.message` regex, by index (named groups resolved).
    Group(usize),
}

const TEMPLATE_NAMES: &str =
    "resource, message, source, domain, source_severity, attributes.KEY, or a capture group";

/// What the template parser knows of the rule's `when.message` regex.
enum Groups<'a> {
    /// The rule has no `when.message`.
    None,
    /// It has one, but it did not compile (already reported): group references are not checked.
    Unknown,
    Regex(&'a Regex),
}

impl Template {
    /// Parses a template; each problem found is returned (a template may have several).
    fn parse(text: &str, groups: &Groups<'_>) -> Result<Template, Vec<String>> {
        let mut parts = Vec::new();
        let mut problems = Vec::new();
        let mut literal = String::new();
        let mut chars = text.chars().peekable();
        while let Some(ch) = chars.next() {
            match ch {
                '{' if chars.peek() == Some(&'{') => {
                    chars.next();
                    literal.push('{');
                }
                '}' if chars.peek() == Some(&'}') => {
                    chars.next();
                    literal.push('}');
                }
                '}' => problems.push("has a lone `}` (write `}}` for a literal brace)".to_owned()),
                '{' => {
                    let mut name = String::new();
                    let mut closed = false;
                    for ch in chars.by_ref() {
                        if ch == '}' {
                            closed = true;
                            break;
                        }
                        name.push(ch);
                    }
                    if !closed {
                        problems.push(format!(
                            "has an unclosed `{{{name}` (write `{{{{` for a literal brace)"
                        ));
                        break;
                    }
                    match variable(&name, groups) {
                        Ok(part) => {
                            if !literal.is_empty() {
                                parts.push(Part::Text(std::mem::take(&mut literal)));
                            }
                            parts.push(part);
                        }
                        Err(problem) => problems.push(problem),
                    }
                }
                other => literal.push(other),
            }
        }
        if !literal.is_empty() {
            parts.push(Part::Text(literal));
        }
        if problems.is_empty() {
            Ok(Template { parts })
        } else {
            Err(problems)
        }
    }

    fn uses_groups(&self) -> bool {
        self.parts.iter().any(|p| matches!(p, Part::Group(_)))
    }

    fn render(&self, c: &Candidate, captures: Option<&Captures<'_>>) -> String {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Text(text) => out.push_str(text),
                Part::Resource => out.push_str(&c.resource),
                Part::Message => out.push_str(&c.message),
                Part::Source => out.push_str(&c.source),
                Part::Domain => out.push_str(c.domain.as_deref().unwrap_or_default()),
                Part::SourceSeverity => {
                    if let Some(s) = c.source_severity {
                        let _ = write!(out, "{s}");
                    }
                }
                Part::Attribute(key) => {
                    with_attribute_text(c, key, |text| out.push_str(text));
                }
                Part::Group(index) => {
                    if let Some(m) = captures.and_then(|caps| caps.get(*index)) {
                        out.push_str(m.as_str());
                    }
                }
            }
        }
        out
    }
}

/// Resolves one `{name}` of a template.
fn variable(name: &str, groups: &Groups<'_>) -> Result<Part, String> {
    let bare = match name {
        "resource" => Some(Part::Resource),
        "message" => Some(Part::Message),
        "source" => Some(Part::Source),
        "domain" => Some(Part::Domain),
        "source_severity" => Some(Part::SourceSeverity),
        _ => None,
    };
    if let Some(part) = bare {
        if let Groups::Regex(re) = groups
            && re.capture_names().any(|n| n == Some(name))
        {
            return Err(format!(
                "`{{{name}}}` is ambiguous: `when.message` has a capture group of that name \
                 (rename the group)"
            ));
        }
        return Ok(part);
    }
    if let Some(key) = name.strip_prefix("attributes.") {
        if key.is_empty() {
            return Err("has `{attributes.}` with no attribute name".into());
        }
        return Ok(Part::Attribute(key.to_owned()));
    }
    if name.is_empty() {
        return Err(format!(
            "has an empty `{{}}`: expected one of {TEMPLATE_NAMES}"
        ));
    }
    let numbered = name.bytes().all(|b| b.is_ascii_digit());
    let re = match groups {
        Groups::Unknown => return Ok(Part::Group(name.parse().unwrap_or(0))),
        Groups::None if numbered => {
            return Err(format!(
                "refers to capture group `{{{name}}}` but the rule has no `when.message` regex"
            ));
        }
        Groups::None => {
            return Err(format!(
                "has an unknown variable `{{{name}}}`: expected one of {TEMPLATE_NAMES} of \
                 `when.message`"
            ));
        }
        Groups::Regex(re) => re,
    };
    if numbered {
        let count = re.captures_len();
        return match name.parse::<usize>() {
            Ok(index) if index < count => Ok(Part::Group(index)),
            _ => Err(format!(
                "refers to capture group `{{{name}}}` but `when.message` has {} group(s)",
                count - 1
            )),
        };
    }
    match re.capture_names().position(|n| n == Some(name)) {
        Some(index) => Ok(Part::Group(index)),
        None => {
            let named: Vec<String> = re
                .capture_names()
                .flatten()
                .map(|n| format!("`{n}`"))
                .collect();
            let named = if named.is_empty() {
                "none".to_owned()
            } else {
                named.join(", ")
            };
            Err(format!(
                "has an unknown variable `{{{name}}}`: not a variable ({TEMPLATE_NAMES}) nor a \
                 named group of `when.message` (named groups: {named})"
            ))
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Loading and validation
// ---------------------------------------------------------------------------------------------

const RULE_KEYS: &[&str] = &[
    "name",
    "continue",
    "when",
    "set",
    "default",
    "tags",
    "critical_zone",
    "drop",
    "fingerprint",
];
const WHEN_KEYS: &[&str] = &[
    "source",
    "resource",
    "resource_regex",
    "domain",
    "facility",
    "source_severity",
    "has_severity",
    "has_source_severity",
    "clear",
    "message",
    "attributes",
];
const SET_KEYS: &[&str] = &["domain", "severity", "resource", "message"];
const DEFAULT_KEYS: &[&str] = &["domain", "severity"];
const ACTION_KEYS: &str = "set, default, tags, critical_zone, drop, fingerprint";

fn parse(text: &str, domains: &Domains, file: &str) -> Result<RuleSet, Vec<RuleProblem>> {
    let table: Table = match text.parse() {
        Ok(table) => table,
        Err(e) => {
            let message = e.to_string();
            return Err(vec![RuleProblem::new(file, message.trim_end())]);
        }
    };
    let mut checker = Checker {
        domains,
        problems: Vec::new(),
    };
    let rules = checker.file(&table);
    if checker.problems.is_empty() {
        Ok(RuleSet { rules })
    } else {
        Err(checker.problems)
    }
}

/// Walks the parsed TOML, building rules and collecting every problem.
struct Checker<'d> {
    domains: &'d Domains,
    problems: Vec<RuleProblem>,
}

/// `parent.key`, quoting keys that are not bare TOML keys (`attributes."sd.origin.ip"`).
fn key_path(parent: &str, key: &str) -> String {
    let bare = !key.is_empty()
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    let key = if bare {
        key.to_owned()
    } else {
        format!("{key:?}")
    };
    if parent.is_empty() {
        key
    } else {
        format!("{parent}.{key}")
    }
}

impl Checker<'_> {
    fn problem(&mut self, path: impl Into<String>, problem: impl Into<String>) {
        self.problems.push(RuleProblem::new(path, problem));
    }

    fn wrong_type(&mut self, path: &str, expected: &str, found: &Value) {
        self.problem(
            path,
            format!("expected {expected}, found {}", found.type_str()),
        );
    }

    fn unknown_keys(&mut self, table: &Table, path: &str, known: &[&str]) {
        for key in table.keys() {
            if !known.contains(&key.as_str()) {
                self.problem(
                    key_path(path, key),
                    format!("unknown key (expected one of {})", known.join(", ")),
                );
            }
        }
    }

    fn file(&mut self, table: &Table) -> Vec<Rule> {
        self.unknown_keys(table, "", &["rules"]);
        let Some(value) = table.get("rules") else {
            return Vec::new();
        };
        let Value::Array(items) = value else {
            self.wrong_type("rules", "an array of tables (`[[rules]]`)", value);
            return Vec::new();
        };
        let mut names: HashMap<&str, usize> = HashMap::new();
        let mut rules = Vec::with_capacity(items.len());
        for (index, item) in items.iter().enumerate() {
            let path = format!("rules[{index}]");
            let Value::Table(rule) = item else {
                self.wrong_type(&path, "a table", item);
                continue;
            };
            if let Some(Value::String(name)) = rule.get("name")
                && !name.is_empty()
            {
                if let Some(first) = names.get(name.as_str()) {
                    self.problem(
                        format!("{path}.name"),
                        format!("duplicate name `{name}` (also rules[{first}])"),
                    );
                } else {
                    names.insert(name, index);
                }
            }
            if let Some(rule) = self.rule(&path, rule) {
                rules.push(rule);
            }
        }
        rules
    }

    /// One `[[rules]]` entry; `None` if it has problems (all of them recorded).
    fn rule(&mut self, path: &str, table: &Table) -> Option<Rule> {
        let before = self.problems.len();
        self.unknown_keys(table, path, RULE_KEYS);

        let name = match table.get("name") {
            None => {
                self.problem(format!("{path}.name"), "is required");
                None
            }
            Some(Value::String(name)) if name.trim().is_empty() => {
                self.problem(format!("{path}.name"), "is empty");
                None
            }
            Some(v) => self.string(&format!("{path}.name"), v).map(str::to_owned),
        };
        let go_on = self.opt_bool(table, path, "continue").unwrap_or(false);

        let (when, groups_state) = match table.get("when") {
            None => (When::default(), MessageRegex::Absent),
            Some(v) => match self.table(&format!("{path}.when"), v) {
                Some(t) => self.when(&format!("{path}.when"), t),
                None => (When::default(), MessageRegex::Bad),
            },
        };
        let groups = match (&groups_state, &when.message) {
            (MessageRegex::Absent, _) => Groups::None,
            (_, Some(re)) => Groups::Regex(re),
            (_, None) => Groups::Unknown,
        };

        let set = match table.get("set") {
            None => Set::default(),
            Some(v) => match self.table(&format!("{path}.set"), v) {
                Some(t) => self.set(&format!("{path}.set"), t, &groups),
                None => Set::default(),
            },
        };
        let default = match table.get("default") {
            None => Defaults::default(),
            Some(v) => match self.table(&format!("{path}.default"), v) {
                Some(t) => self.defaults(&format!("{path}.default"), t),
                None => Defaults::default(),
            },
        };
        if set.severity.is_some() && default.severity.is_some() {
            self.problem(
                format!("{path}.default.severity"),
                "has no effect: `set.severity` of the same rule always sets the level first",
            );
        }
        if set.domain.is_some() && default.domain.is_some() {
            self.problem(
                format!("{path}.default.domain"),
                "has no effect: `set.domain` of the same rule always sets the domain first",
            );
        }
        let tags = match table.get("tags") {
            None => Vec::new(),
            Some(v) => self.tags(&format!("{path}.tags"), v),
        };
        let critical_zone = self.opt_bool(table, path, "critical_zone").unwrap_or(false);
        let drop = self.opt_bool(table, path, "drop").unwrap_or(false);
        let fingerprint = match table.get("fingerprint") {
            None => None,
            Some(v) => self.fingerprint(&format!("{path}.fingerprint"), v),
        };

        self.actions(path, table, go_on);

        if self.problems.len() != before {
            return None;
        }
        let needs_captures = [&set.resource, &set.message]
            .into_iter()
            .flatten()
            .any(Template::uses_groups);
        Some(Rule {
            name: name?,
            go_on,
            when,
            set,
            default,
            tags,
            critical_zone,
            drop,
            fingerprint,
            needs_captures,
        })
    }

    /// Checks that the rule does something, and that `drop` stands alone. Judged on the keys
    /// present (not on what parsed) so that a mistyped action is not also reported as missing.
    fn actions(&mut self, path: &str, table: &Table, go_on: bool) {
        let present = |key: &str| match table.get(key) {
            None => false,
            Some(Value::Boolean(b)) => *b,
            Some(Value::Table(t)) => !t.is_empty(),
            Some(Value::Array(a)) => !a.is_empty(),
            Some(_) => true,
        };
        let others: Vec<&str> = ["set", "default", "tags", "critical_zone", "fingerprint"]
            .into_iter()
            .filter(|key| present(key))
            .collect();
        if present("drop") {
            if !others.is_empty() {
                self.problem(
                    format!("{path}.drop"),
                    format!(
                        "cannot be combined with other actions (found {}): a dropped record is \
                         not stored",
                        others.join(", ")
                    ),
                );
            }
            if go_on {
                self.problem(
                    format!("{path}.continue"),
                    "has no effect: a rule that drops stops the rules",
                );
            }
        } else if others.is_empty() {
            self.problem(
                path,
                format!("has no action: give it at least one of {ACTION_KEYS}"),
            );
        }
    }

    fn when(&mut self, path: &str, table: &Table) -> (When, MessageRegex) {
        self.unknown_keys(table, path, WHEN_KEYS);
        let mut when = When::default();
        let sub = |key: &str| format!("{path}.{key}");
        if let Some(v) = table.get("source") {
            when.source = self.globs(&sub("source"), v);
        }
        if let Some(v) = table.get("resource") {
            when.resource = self.globs(&sub("resource"), v);
        }
        if let Some(v) = table.get("resource_regex") {
            when.resource_regex = self.regex(&sub("resource_regex"), v);
        }
        if let Some(v) = table.get("domain") {
            let p = sub("domain");
            for (item_path, item) in self.one_or_many(&p, v) {
                if let Some(id) = self.domain(&item_path, item) {
                    when.domain.push(id);
                }
            }
        }
        if let Some(v) = table.get("facility") {
            let p = sub("facility");
            for (item_path, item) in self.one_or_many(&p, v) {
                if let Some(n) = self.facility(&item_path, item) {
                    when.facilities |= 1 << n;
                }
            }
        }
        if let Some(v) = table.get("source_severity") {
            when.source_severity = self.severity_range(&sub("source_severity"), v);
        }
        when.has_severity = self.opt_bool(table, path, "has_severity");
        when.has_source_severity = self.opt_bool(table, path, "has_source_severity");
        when.clear = self.opt_bool(table, path, "clear");
        let state = match table.get("message") {
            None => MessageRegex::Absent,
            Some(v) => {
                when.message = self.regex(&sub("message"), v);
                if when.message.is_some() {
                    MessageRegex::Compiled
                } else {
                    MessageRegex::Bad
                }
            }
        };
        if let Some(v) = table.get("attributes") {
            let p = sub("attributes");
            if let Some(attrs) = self.table(&p, v) {
                for (key, globs) in attrs {
                    let globs_path = key_path(&p, key);
                    let globs = self.globs(&globs_path, globs);
                    if !globs.is_empty() {
                        when.attributes.push((key.clone(), globs));
                    }
                }
            }
        }
        (when, state)
    }

    fn set(&mut self, path: &str, table: &Table, groups: &Groups<'_>) -> Set {
        self.unknown_keys(table, path, SET_KEYS);
        let sub = |key: &str| format!("{path}.{key}");
        Set {
            domain: table
                .get("domain")
                .and_then(|v| self.domain(&sub("domain"), v)),
            severity: table
                .get("severity")
                .and_then(|v| self.severity(&sub("severity"), v)),
            resource: table
                .get("resource")
                .and_then(|v| self.template(&sub("resource"), v, groups)),
            message: table
                .get("message")
                .and_then(|v| self.template(&sub("message"), v, groups)),
        }
    }

    fn defaults(&mut self, path: &str, table: &Table) -> Defaults {
        self.unknown_keys(table, path, DEFAULT_KEYS);
        let sub = |key: &str| format!("{path}.{key}");
        Defaults {
            domain: table
                .get("domain")
                .and_then(|v| self.domain(&sub("domain"), v)),
            severity: table
                .get("severity")
                .and_then(|v| self.severity(&sub("severity"), v)),
        }
    }

    // -- typed values --

    fn string<'v>(&mut self, path: &str, v: &'v Value) -> Option<&'v str> {
        match v {
            Value::String(s) => Some(s),
            other => {
                self.wrong_type(path, "a string", other);
                None
            }
        }
    }

    fn table<'v>(&mut self, path: &str, v: &'v Value) -> Option<&'v Table> {
        match v {
            Value::Table(t) => Some(t),
            other => {
                self.wrong_type(path, "a table", other);
                None
            }
        }
    }

    fn opt_bool(&mut self, table: &Table, path: &str, key: &str) -> Option<bool> {
        match table.get(key)? {
            Value::Boolean(b) => Some(*b),
            other => {
                self.wrong_type(&key_path(path, key), "true or false", other);
                None
            }
        }
    }

    /// A single value or an array of them, each with its own path. An empty array is a problem:
    /// "any of nothing" would never match, which is surely not what was meant.
    fn one_or_many<'v>(&mut self, path: &str, v: &'v Value) -> Vec<(String, &'v Value)> {
        match v {
            Value::Array(items) if items.is_empty() => {
                self.problem(
                    path,
                    "is an empty list: give at least one value, or remove it",
                );
                Vec::new()
            }
            Value::Array(items) => items
                .iter()
                .enumerate()
                .map(|(i, item)| (format!("{path}[{i}]"), item))
                .collect(),
            single => vec![(path.to_owned(), single)],
        }
    }

    fn globs(&mut self, path: &str, v: &Value) -> Vec<Glob> {
        let mut globs = Vec::new();
        for (item_path, item) in self.one_or_many(path, v) {
            let Some(text) = self.string(&item_path, item) else {
                continue;
            };
            match Glob::parse(text) {
                Ok(glob) => globs.push(glob),
                Err(problem) => self.problem(item_path, problem),
            }
        }
        globs
    }

    fn regex(&mut self, path: &str, v: &Value) -> Option<Regex> {
        let text = self.string(path, v)?;
        match Regex::new(text) {
            Ok(re) => Some(re),
            Err(e) => {
                self.problem(path, format!("invalid regex: {e}"));
                None
            }
        }
    }

    fn domain(&mut self, path: &str, v: &Value) -> Option<String> {
        let id = self.string(path, v)?;
        if self.domains.contains(id) {
            Some(id.to_owned())
        } else {
            let configured: Vec<&str> = self.domains.ids().collect();
            self.problem(
                path,
                format!(
                    "unknown domain `{id}` (configured domains: {})",
                    configured.join(", ")
                ),
            );
            None
        }
    }

    fn facility(&mut self, path: &str, v: &Value) -> Option<u32> {
        let found = match v {
            Value::Integer(n) => u32::try_from(*n).ok().filter(|n| *n < 24),
            Value::String(s) => FACILITIES
                .iter()
                .position(|name| name.eq_ignore_ascii_case(s))
                .and_then(|n| u32::try_from(n).ok()),
            other => {
                self.wrong_type(path, "a facility name or number", other);
                return None;
            }
        };
        if found.is_none() {
            let shown = match v {
                Value::String(s) => format!("`{s}`"),
                other => other.to_string(),
            };
            self.problem(
                path,
                format!(
                    "unknown facility {shown} (expected a number 0..23 or one of {})",
                    FACILITIES.join(" ")
                ),
            );
        }
        found
    }

    fn severity(&mut self, path: &str, v: &Value) -> Option<Level> {
        let Value::Integer(n) = v else {
            self.wrong_type(path, "an integer 0..2", v);
            return None;
        };
        let level = Level::from_number(*n);
        if level.is_none() {
            self.problem(
                path,
                format!("must be 0 (low), 1 (warning) or 2 (critical), found {n}"),
            );
        }
        level
    }

    fn source_severity(&mut self, path: &str, v: &Value) -> Option<i32> {
        let Value::Integer(n) = v else {
            self.wrong_type(path, "an integer", v);
            return None;
        };
        match i32::try_from(*n) {
            Ok(n) => Some(n),
            Err(_) => {
                self.problem(path, format!("{n} is out of range"));
                None
            }
        }
    }

    /// `3` or `[min, max]` (inclusive).
    fn severity_range(&mut self, path: &str, v: &Value) -> Option<(i32, i32)> {
        match v {
            Value::Array(items) => {
                let [min, max] = items.as_slice() else {
                    self.problem(
                        path,
                        format!(
                            "expected a range [min, max] of two integers, found {} value(s)",
                            items.len()
                        ),
                    );
                    return None;
                };
                let min = self.source_severity(&format!("{path}[0]"), min);
                let max = self.source_severity(&format!("{path}[1]"), max);
                let (min, max) = (min?, max?);
                if min > max {
                    self.problem(path, format!("range [{min}, {max}] is empty: min > max"));
                    return None;
                }
                Some((min, max))
            }
            single => self.source_severity(path, single).map(|n| (n, n)),
        }
    }

    fn template(&mut self, path: &str, v: &Value, groups: &Groups<'_>) -> Option<Template> {
        let text = self.string(path, v)?;
        match Template::parse(text, groups) {
            Ok(template) => Some(template),
            Err(problems) => {
                for problem in problems {
                    self.problem(path, problem);
                }
                None
            }
        }
    }

    fn tags(&mut self, path: &str, v: &Value) -> Vec<String> {
        let Value::Array(items) = v else {
            self.wrong_type(path, "an array of strings", v);
            return Vec::new();
        };
        let mut tags: Vec<String> = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            let item_path = format!("{path}[{i}]");
            match self.string(&item_path, item) {
                Some(tag) if tag.trim().is_empty() => self.problem(item_path, "is an empty tag"),
                Some(tag) if !tags.iter().any(|t| t == tag) => tags.push(tag.to_owned()),
                _ => {}
            }
        }
        tags
    }

    fn fingerprint(&mut self, path: &str, v: &Value) -> Option<FingerprintSpec> {
        let Value::Array(items) = v else {
            self.wrong_type(path, "an array of field names", v);
            return None;
        };
        let mut names = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            if let Some(name) = self.string(&format!("{path}[{i}]"), item) {
                names.push(name);
            }
        }
        if names.len() != items.len() {
            return None;
        }
        match FingerprintSpec::parse(&names) {
            Ok(spec) => Some(spec),
            Err(problem) => {
                self.problem(path, problem);
                None
            }
        }
    }
}

/// What became of a rule's `when.message`, for resolving template variables.
enum MessageRegex {
    Absent,
    Compiled,
    /// Present but unusable (already reported).
    Bad,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use serde_json::json;
    use vigie_source::RawRecord;

    fn domains() -> Domains {
        Domains::default()
    }

    fn rules(text: &str) -> RuleSet {
        match RuleSet::from_toml_str(text, &domains()) {
            Ok(set) => set,
            Err(problems) => panic!("unexpected problems: {problems:#?}"),
        }
    }

    fn problems(text: &str) -> Vec<RuleProblem> {
        match RuleSet::from_toml_str(text, &domains()) {
            Ok(set) => panic!("expected problems, loaded {} rules", set.len()),
            Err(problems) => problems,
        }
    }

    fn paths(problems: &[RuleProblem]) -> Vec<&str> {
        let mut paths: Vec<&str> = problems.iter().map(|p| p.path.as_str()).collect();
        paths.sort_unstable();
        paths
    }

    fn candidate(source: &str, resource: &str, message: &str) -> Candidate {
        Candidate::from_raw(RawRecord::new(source, resource, message))
    }

    fn syslog(severity: i32) -> Candidate {
        let mut raw = RawRecord::new("syslog", "rtr-01", "link down");
        raw.source_severity = Some(severity);
        Candidate::from_raw(raw)
    }

    // -- the shipped rules --

    #[test]
    fn shipped_rules_map_syslog_severities_to_levels() {
        let set = RuleSet::shipped(&domains()).unwrap();
        for (severity, level) in [
            (0, Level::Critical),
            (1, Level::Critical),
            (2, Level::Warning),
            (3, Level::Low),
            (4, Level::Low),
        ] {
            let mut c = syslog(severity);
            assert_eq!(set.qualify(&mut c), Verdict::Keep, "severity {severity}");
            assert_eq!(c.level, Some(level), "severity {severity}");
            assert_eq!(c.message, "rtr-01 link down");
            assert_eq!(c.resource, "rtr-01");
            assert_eq!(c.domain.as_deref(), Some("network"));
            assert_eq!(
                c.rules.len(),
                1,
                "one shipped rule per record: {:?}",
                c.rules
            );
        }
    }

    #[test]
    fn shipped_rules_drop_syslog_5_to_7() {
        let set = RuleSet::shipped(&domains()).unwrap();
        for severity in 5..=7 {
            let mut c = syslog(severity);
            assert!(
                matches!(set.qualify(&mut c), Verdict::Drop { .. }),
                "severity {severity}"
            );
        }
    }

    #[test]
    fn shipped_rules_keep_a_domain_the_source_gave() {
        let set = RuleSet::shipped(&domains()).unwrap();
        let mut c = syslog(1);
        c.domain = Some("systems".into());
        assert_eq!(set.qualify(&mut c), Verdict::Keep);
        assert_eq!(c.domain.as_deref(), Some("systems"));
        assert_eq!(c.level, Some(Level::Critical));
    }

    #[test]
    fn shipped_rules_leave_a_record_with_its_own_level_untouched() {
        let set = RuleSet::shipped(&domains()).unwrap();
        for severity in [0, 3, 6] {
            let mut raw = RawRecord::new("nagios", "srv1", "disk full");
            raw.level = Some(Level::Warning);
            raw.source_severity = Some(severity);
            let mut c = Candidate::from_raw(raw);
            let before = c.clone();
            assert_eq!(set.qualify(&mut c), Verdict::Keep);
            assert_eq!(c, before);
        }
    }

    #[test]
    fn shipped_examples_are_valid_once_uncommented() {
        let text = include_str!("../../../config/rules.toml");
        let start = text.find("# --- examples begin").unwrap();
        let end = text.find("# --- examples end").unwrap();
        let examples: String = text[start..end]
            .lines()
            .skip(1)
            .filter_map(|line| line.strip_prefix("# ").or(line.strip_prefix("#")))
            .filter(|line| !line.starts_with('#'))
            .map(|line| format!("{line}\n"))
            .collect();
        let set = rules(&examples);
        assert!(set.len() >= 3, "{examples}");
    }

    // -- order --

    #[test]
    fn first_matching_rule_stops_unless_continue() {
        let text = r#"
            [[rules]]
            name = "first"
            tags = ["a"]
            [[rules]]
            name = "second"
            tags = ["b"]
        "#;
        let mut c = candidate("s", "r", "m");
        assert_eq!(rules(text).qualify(&mut c), Verdict::Keep);
        assert_eq!(c.rules, ["first"]);
        assert_eq!(c.tags, ["a"]);

        let text = text.replace("name = \"first\"", "name = \"first\"\ncontinue = true");
        let mut c = candidate("s", "r", "m");
        rules(&text).qualify(&mut c);
        assert_eq!(c.rules, ["first", "second"]);
        assert_eq!(c.tags, ["a", "b"]);
    }

    #[test]
    fn a_later_rule_sees_what_an_earlier_one_set() {
        let set = rules(
            r#"
            [[rules]]
            name = "to-network"
            continue = true
            set = { domain = "network" }
            [[rules]]
            name = "network-only"
            when = { domain = "network" }
            tags = ["net"]
        "#,
        );
        let mut c = candidate("s", "r", "m");
        set.qualify(&mut c);
        assert_eq!(c.rules, ["to-network", "network-only"]);
        assert_eq!(c.tags, ["net"]);
    }

    #[test]
    fn drop_stops_at_once_and_names_the_rule() {
        let set = rules(
            r#"
            [[rules]]
            name = "noise"
            drop = true
            when = { message = "^debug" }
            [[rules]]
            name = "tag-all"
            tags = ["x"]
        "#,
        );
        let mut c = candidate("s", "r", "debug: hello");
        assert_eq!(
            set.qualify(&mut c),
            Verdict::Drop {
                rule: "noise".into()
            }
        );
        assert_eq!(c.rules, ["noise"]);
        assert!(c.tags.is_empty());

        let mut c = candidate("s", "r", "not debug");
        assert_eq!(set.qualify(&mut c), Verdict::Keep);
        assert_eq!(c.rules, ["tag-all"]);
    }

    #[test]
    fn empty_rule_set_keeps_everything() {
        let set = RuleSet::empty();
        assert!(set.is_empty());
        assert_eq!(set.len(), 0);
        let mut c = candidate("s", "r", "m");
        let before = c.clone();
        assert_eq!(set.qualify(&mut c), Verdict::Keep);
        assert_eq!(c, before);
        assert!(rules("").is_empty());
    }

    // -- actions --

    #[test]
    fn set_overrides_and_default_only_fills() {
        let set = rules(
            r#"
            [[rules]]
            name = "set"
            when = { source = "a" }
            set = { domain = "systems", severity = 2 }
            [[rules]]
            name = "default"
            when = { source = "b" }
            default = { domain = "systems", severity = 2 }
        "#,
        );
        let given = |source: &str| {
            let mut raw = RawRecord::new(source, "r", "m");
            raw.domain = Some("network".into());
            raw.level = Some(Level::Low);
            Candidate::from_raw(raw)
        };

        let mut c = given("a");
        set.qualify(&mut c);
        assert_eq!(c.domain.as_deref(), Some("systems"));
        assert_eq!(c.level, Some(Level::Critical));

        let mut c = given("b");
        set.qualify(&mut c);
        assert_eq!(c.domain.as_deref(), Some("network"));
        assert_eq!(c.level, Some(Level::Low));

        let mut c = candidate("b", "r", "m");
        set.qualify(&mut c);
        assert_eq!(c.domain.as_deref(), Some("systems"));
        assert_eq!(c.level, Some(Level::Critical));
    }

    #[test]
    fn default_does_not_override_an_earlier_rules_set() {
        let set = rules(
            r#"
            [[rules]]
            name = "set"
            continue = true
            set = { severity = 0 }
            [[rules]]
            name = "default"
            default = { severity = 2 }
        "#,
        );
        let mut c = candidate("s", "r", "m");
        set.qualify(&mut c);
        assert_eq!(c.level, Some(Level::Low));
        assert_eq!(c.rules, ["set", "default"]);
    }

    #[test]
    fn templates_use_named_and_numbered_captures() {
        let set = rules(
            r#"
            [[rules]]
            name = "ups"
            when = { message = '^UPS (?P<ups>\S+) on (battery|mains)' }
            set = { resource = "{ups}", message = "{{{ups}}} {2} (seen by {resource} via {source}, {0})" }
        "#,
        );
        let mut c = candidate("syslog", "sw-12", "UPS ups-3 on battery since 10:02");
        assert_eq!(set.qualify(&mut c), Verdict::Keep);
        assert_eq!(c.resource, "ups-3");
        assert_eq!(
            c.message,
            "{ups-3} battery (seen by sw-12 via syslog, UPS ups-3 on battery)"
        );
    }

    #[test]
    fn templates_render_domain_severity_and_attributes() {
        let set = rules(
            r#"
            [[rules]]
            name = "t"
            set = { domain = "backup", message = "[{domain}/{source_severity}] {attributes.job} {attributes.count} {attributes.missing}|" }
        "#,
        );
        let mut c = syslog(3);
        c.domain = Some("systems".into());
        c.attributes.insert("job".into(), json!("nightly"));
        c.attributes.insert("count".into(), json!(42));
        set.qualify(&mut c);
        // Rendered against the candidate as it matched: the old domain.
        assert_eq!(c.message, "[systems/3] nightly 42 |");
        assert_eq!(c.domain.as_deref(), Some("backup"));
    }

    #[test]
    fn critical_zone_and_tags_without_duplicates() {
        let set = rules(
            r#"
            [[rules]]
            name = "backbone"
            continue = true
            critical_zone = true
            tags = ["backbone", "wan"]
            when = { resource = "rtr-core-*" }
            [[rules]]
            name = "wan"
            tags = ["wan", "other"]
        "#,
        );
        let mut c = candidate("s", "rtr-core-01", "m");
        set.qualify(&mut c);
        assert!(c.critical_zone);
        assert_eq!(c.tags, ["backbone", "wan", "other"]);

        let mut c = candidate("s", "rtr-edge-01", "m");
        set.qualify(&mut c);
        assert!(!c.critical_zone);
        assert_eq!(c.tags, ["wan", "other"]);
    }

    #[test]
    fn fingerprint_override() {
        let set = rules(
            r#"
            [[rules]]
            name = "tickets"
            fingerprint = ["source", "source_ref"]
        "#,
        );
        let mut c = candidate("glpi", "r", "m");
        set.qualify(&mut c);
        let expected = FingerprintSpec::parse(&["source", "source_ref"]).unwrap();
        assert_eq!(c.fingerprint, Some(expected));
    }

    // -- conditions --

    fn tags_of(set: &RuleSet, mut c: Candidate) -> Vec<String> {
        set.qualify(&mut c);
        c.tags
    }

    #[test]
    fn globs_and_arrays_of_globs() {
        let set = rules(
            r#"
            [[rules]]
            name = "g"
            tags = ["hit"]
            when = { source = ["glpi-*", "ocs"], resource = "rtr-??-*" }
        "#,
        );
        assert_eq!(
            tags_of(&set, candidate("glpi-prod", "rtr-01-a", "m")),
            ["hit"]
        );
        assert_eq!(tags_of(&set, candidate("ocs", "rtr-01-", "m")), ["hit"]);
        assert!(tags_of(&set, candidate("ocs-x", "rtr-01-a", "m")).is_empty());
        assert!(tags_of(&set, candidate("glpi-prod", "rtr-1-a", "m")).is_empty());
        assert!(tags_of(&set, candidate("xglpi-prod", "rtr-01-a", "m")).is_empty());
    }

    #[test]
    fn glob_matcher() {
        let m = |p: &str, t: &str| Glob::parse(p).unwrap().matches(t);
        assert!(m("*", ""));
        assert!(m("a*b*c", "aXXbYYbc"));
        assert!(!m("a*b*c", "aXXbYYbcd"));
        assert!(m("*.example.com", "rtr.example.com"));
        assert!(!m("*.example.com", "example.com"));
        assert!(m("h?t", "hét"));
        assert!(m(r"50\*", "50*"));
        assert!(!m(r"50\*", "500"));
        assert!(m("**a", "ba"));
        assert!(!m("abc", "ab"));
        assert!(Glob::parse("rtr-[0-9]").is_err());
        assert!(Glob::parse("").is_err());
        assert!(Glob::parse("a\\").is_err());
    }

    #[test]
    fn resource_regex_message_and_flags() {
        let set = rules(
            r#"
            [[rules]]
            name = "r"
            tags = ["hit"]
            [rules.when]
            resource_regex = '^srv\d+$'
            message = "(?i)disk"
            clear = false
            has_source_severity = true
            source_severity = 4
            domain = ["systems", "applications"]
        "#,
        );
        let good = || {
            let mut c = syslog(4);
            c.resource = "srv12".into();
            c.message = "DISK full".into();
            c.domain = Some("applications".into());
            c
        };
        assert_eq!(tags_of(&set, good()), ["hit"]);
        let mut c = good();
        c.resource = "srv12b".into();
        assert!(tags_of(&set, c).is_empty());
        let mut c = good();
        c.message = "cpu".into();
        assert!(tags_of(&set, c).is_empty());
        let mut c = good();
        c.clear = true;
        assert!(tags_of(&set, c).is_empty());
        let mut c = good();
        c.source_severity = Some(3);
        assert!(tags_of(&set, c).is_empty());
        let mut c = good();
        c.source_severity = None;
        assert!(tags_of(&set, c).is_empty());
        let mut c = good();
        c.domain = None;
        assert!(tags_of(&set, c).is_empty());
        let mut c = good();
        c.domain = Some("network".into());
        assert!(tags_of(&set, c).is_empty());
    }

    #[test]
    fn facility_by_name_and_number() {
        let set = rules(
            r#"
            [[rules]]
            name = "f"
            tags = ["hit"]
            when = { facility = ["auth", 10, "local7"] }
        "#,
        );
        let with = |facility: serde_json::Value| {
            let mut c = candidate("s", "r", "m");
            c.attributes.insert("facility".into(), facility);
            tags_of(&set, c)
        };
        assert_eq!(with(json!(4)), ["hit"]);
        assert_eq!(with(json!("AUTH")), ["hit"]);
        assert_eq!(with(json!("authpriv")), ["hit"]);
        assert_eq!(with(json!("23")), ["hit"]);
        assert_eq!(with(json!(23)), ["hit"]);
        assert!(with(json!("kern")).is_empty());
        assert!(with(json!(0)).is_empty());
        assert!(with(json!(36)).is_empty());
        assert!(with(json!(true)).is_empty());
        assert!(tags_of(&set, candidate("s", "r", "m")).is_empty());
    }

    #[test]
    fn attributes_match_by_glob() {
        let set = rules(
            r#"
            [[rules]]
            name = "a"
            tags = ["hit"]
            when = { attributes = { app_name = "sshd", "sd.origin.ip" = ["10.*", "192.168.*"], pid = "1?" } }
        "#,
        );
        let with = |app: &str, ip: &str, pid: serde_json::Value| {
            let mut c = candidate("s", "r", "m");
            c.attributes.insert("app_name".into(), json!(app));
            c.attributes.insert("sd.origin.ip".into(), json!(ip));
            c.attributes.insert("pid".into(), pid);
            tags_of(&set, c)
        };
        assert_eq!(with("sshd", "10.1.2.3", json!(12)), ["hit"]);
        assert_eq!(with("sshd", "192.168.0.1", json!("17")), ["hit"]);
        assert!(with("sshd", "172.16.0.1", json!(12)).is_empty());
        assert!(with("cron", "10.1.2.3", json!(12)).is_empty());
        assert!(with("sshd", "10.1.2.3", json!(123)).is_empty());
        assert!(with("sshd", "10.1.2.3", json!(null)).is_empty());
    }

    #[test]
    fn has_severity_matches_whether_the_source_gave_a_level() {
        let set = rules(
            r#"
            [[rules]]
            name = "own-level"
            tags = ["own"]
            when = { has_severity = true }
        "#,
        );
        let mut raw = RawRecord::new("s", "r", "m");
        raw.level = Some(Level::Low);
        assert_eq!(tags_of(&set, Candidate::from_raw(raw)), ["own"]);
        assert!(tags_of(&set, candidate("s", "r", "m")).is_empty());
    }

    // -- validation --

    #[test]
    fn collects_several_problems_with_their_paths() {
        let found = problems(
            r#"
            [[rules]]
            name = "one"
            tags = ["x"]
            when = { hots = "rtr-*" }

            [[rules]]
            name = "two"
            tags = ["x"]
            when = { message = "(unclosed" }

            [[rules]]
            name = "three"
            set = { domain = "netwrk" }
        "#,
        );
        assert_eq!(
            paths(&found),
            [
                "rules[0].when.hots",
                "rules[1].when.message",
                "rules[2].set.domain"
            ],
            "{found:#?}"
        );
        let shown: Vec<String> = found.iter().map(ToString::to_string).collect();
        assert!(
            shown[0].starts_with("rules[0].when.hots: unknown key (expected one of source,"),
            "{shown:?}"
        );
        assert!(shown[1].contains("invalid regex"), "{shown:?}");
        assert!(shown[1].contains("unclosed group"), "{shown:?}");
        assert!(shown[2].contains("`netwrk`"), "{shown:?}");
        assert!(shown[2].contains("network, systems"), "{shown:?}");
    }

    #[test]
    fn reports_names_types_ranges_and_values() {
        let found = problems(
            r#"
            title = "x"
            [[rules]]
            tags = "x"
            continue = "yes"
            [rules.when]
            source_severity = [4, 1]
            facility = ["auth", "kernel", 24]
            source = ["rtr-[0-9]", 3]
            attributes = { app = [] }
            [rules.set]
            severity = 3
            colour = "red"

            [[rules]]
            name = "dup"
            drop = true
            continue = true
            tags = ["x"]
            fingerprint = ["source", "host"]

            [[rules]]
            name = "dup"
            [rules.default]
            severity = "high"

            [[rules]]
            name = "nothing"
            critical_zone = false
        "#,
        );
        assert_eq!(
            paths(&found),
            [
                "rules[0].continue",
                "rules[0].name",
                "rules[0].set.colour",
                "rules[0].set.severity",
                "rules[0].tags",
                "rules[0].when.attributes.app",
                "rules[0].when.facility[1]",
                "rules[0].when.facility[2]",
                "rules[0].when.source[0]",
                "rules[0].when.source[1]",
                "rules[0].when.source_severity",
                "rules[1].continue",
                "rules[1].drop",
                "rules[1].fingerprint",
                "rules[2].default.severity",
                "rules[2].name",
                "rules[3]",
                "title",
            ],
            "{found:#?}"
        );
        let find = |path: &str| {
            found
                .iter()
                .find(|p| p.path == path)
                .map(|p| p.problem.clone())
                .unwrap_or_default()
        };
        assert_eq!(find("rules[0].name"), "is required");
        assert_eq!(
            find("rules[0].tags"),
            "expected an array of strings, found string"
        );
        assert!(find("rules[0].when.facility[1]").contains("`kernel`"));
        assert!(find("rules[0].when.source_severity").contains("min > max"));
        assert!(find("rules[0].set.severity").contains("found 3"));
        assert!(find("rules[1].drop").contains("tags, fingerprint"));
        assert!(find("rules[1].fingerprint").contains("`host`"));
        assert!(find("rules[2].name").contains("also rules[1]"));
        assert!(find("rules[3]").contains("has no action"));
    }

    #[test]
    fn templates_are_checked_at_load() {
        let found = problems(
            r#"
            [[rules]]
            name = "no-regex"
            set = { message = "{1} {host}" }

            [[rules]]
            name = "missing-group"
            when = { message = '(?P<host>\S+) (\d+)' }
            set = { resource = "{host}", message = "{3} {name} {attributes.} {resource" }

            [[rules]]
            name = "braces"
            set = { message = "a } b {}" }

            [[rules]]
            name = "ambiguous"
            when = { message = '(?P<resource>\S+)' }
            set = { message = "{resource}" }
        "#,
        );
        let of = |path: &str| found.iter().filter(|p| p.path == path).count();
        assert_eq!(of("rules[0].set.message"), 2, "{found:#?}");
        assert_eq!(of("rules[1].set.message"), 4, "{found:#?}");
        assert_eq!(of("rules[1].set.resource"), 0, "{found:#?}");
        assert_eq!(of("rules[2].set.message"), 2, "{found:#?}");
        assert_eq!(of("rules[3].set.message"), 1, "{found:#?}");
        assert_eq!(found.len(), 9, "{found:#?}");
        assert!(found[0].problem.contains("no `when.message`"), "{found:#?}");
        assert!(
            found
                .iter()
                .any(|p| p.problem.contains("`{3}`") && p.problem.contains("2 group(s)")),
            "{found:#?}"
        );
    }

    #[test]
    fn a_bad_regex_does_not_cascade_into_template_problems() {
        let found = problems(
            r#"
            [[rules]]
            name = "r"
            when = { message = "(?P<x>" }
            set = { message = "{x} {1}" }
        "#,
        );
        assert_eq!(paths(&found), ["rules[0].when.message"], "{found:#?}");
    }

    #[test]
    fn toml_syntax_error_is_one_problem() {
        let found = problems("[[rules]]\nname = \"a\"\ntags = [\"x\"\n");
        assert_eq!(found.len(), 1, "{found:#?}");
        assert_eq!(found[0].path, "rules.toml");
        assert!(found[0].problem.contains("line"), "{found:#?}");
    }

    #[test]
    fn rules_must_be_an_array_of_tables() {
        let found = problems("rules = 3");
        assert_eq!(paths(&found), ["rules"]);
        let found = problems("rules = [1, { name = \"a\", drop = true }]");
        assert_eq!(paths(&found), ["rules[0]"]);
    }

    #[test]
    fn load_reports_an_unreadable_file_with_its_path() {
        let path = Path::new("/nonexistent/vigie/rules.toml");
        let found = RuleSet::load(path, &domains()).err().unwrap();
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].path, "/nonexistent/vigie/rules.toml");

        let dir = std::env::temp_dir().join(format!("vigie-rules-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("rules.toml");
        std::fs::write(&file, "[[rules]]\nname = \"a\"\ndrop = true\n").unwrap();
        let loaded = RuleSet::load(&file, &domains());
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(loaded.unwrap().len(), 1);
    }

    #[test]
    fn rule_set_is_shareable() {
        fn shareable<T: Send + Sync + fmt::Debug>() {}
        shareable::<RuleSet>();
    }
}
