//! The XML form of incidents (docs/incidents-xml.md): the export of one incident or a selection
//! and the archive files. Root `<incidents version="1">`, one `<incident>` per incident with
//! every field as a child element, then its people, resolution lines, timeline and attachments
//! (their bytes in base64 when asked, always in archives).
//!
//! Written and read with quick-xml's event API rather than serde so that text comes back exactly
//! as it went out: serde's reader trims leading and trailing spaces, and XML parsers turn `\r\n`
//! into `\n`. Carriage returns are written as `&#13;`; a text holding characters XML 1.0
//! cannot carry at all (control characters) is written in base64 with `encoding="base64"`.
//! Reading builds a small tree first, so that every error names the element and its line.

use std::fmt::Write as _;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use chrono::{DateTime, SecondsFormat, Utc};
use quick_xml::events::Event;
use serde_json::Value;

use crate::error::IncidentsError;
use crate::model::{
    Attachment, Criticality, Detection, Incident, IncidentFull, Person, Resolution, State,
    TimelineEntry,
};

/// The format's version, written in the root element; files of another version are refused.
pub const VERSION: &str = "1";

/// One incident to write, with its attachments' bytes when they go along.
#[derive(Clone, Debug)]
pub struct Item {
    pub full: IncidentFull,
    /// One entry per attachment, in the order of `full.attachments`: `Some(bytes)` when the
    /// bytes go into the file (`None` when the stored file was lost). `None` for the whole
    /// list: metadata only.
    pub data: Option<Vec<Option<Vec<u8>>>>,
}

/// What the root element says of a file (for the list of archives).
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Header {
    pub version: String,
    pub exported_at: Option<String>,
    pub count: Option<i64>,
    pub first_opened: Option<String>,
    pub last_opened: Option<String>,
}

fn time(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

/// Whether XML 1.0 can carry the character at all (even as a character reference).
fn xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
}

/// Escapes text content; `\r` becomes a character reference so that it survives parsing.
fn escape_text(s: &str, out: &mut String) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\r' => out.push_str("&#13;"),
            c => out.push(c),
        }
    }
}

struct W {
    out: String,
}

impl W {
    fn indent(&mut self, depth: usize) {
        for _ in 0..depth {
            self.out.push_str("  ");
        }
    }

    fn text(&mut self, depth: usize, name: &str, value: &str) {
        self.indent(depth);
        if value.chars().all(xml_char) {
            let _ = write!(self.out, "<{name}>");
            escape_text(value, &mut self.out);
        } else {
            let _ = write!(
                self.out,
                "<{name} encoding=\"base64\">{}",
                B64.encode(value.as_bytes())
            );
        }
        let _ = writeln!(self.out, "</{name}>");
    }

    fn opt(&mut self, depth: usize, name: &str, value: Option<&str>) {
        if let Some(v) = value {
            self.text(depth, name, v);
        }
    }

    fn open(&mut self, depth: usize, name: &str) {
        self.indent(depth);
        let _ = writeln!(self.out, "<{name}>");
    }

    fn close(&mut self, depth: usize, name: &str) {
        self.indent(depth);
        let _ = writeln!(self.out, "</{name}>");
    }
}

/// The whole document for `items`.
pub fn write(items: &[Item]) -> String {
    let opened = items.iter().map(|i| i.full.incident.opened_at);
    let first = opened.clone().min().map(|t| time(&t));
    let last = opened.max().map(|t| time(&t));
    let mut w = W {
        out: String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"),
    };
    let _ = write!(
        w.out,
        "<incidents version=\"{VERSION}\" exported_at=\"{}\" count=\"{}\"",
        time(&vigie_core::time::now()),
        items.len()
    );
    if let (Some(f), Some(l)) = (first, last) {
        let _ = write!(w.out, " first_opened=\"{f}\" last_opened=\"{l}\"");
    }
    w.out.push_str(">\n");
    for item in items {
        write_incident(&mut w, item);
    }
    w.out.push_str("</incidents>\n");
    w.out
}

fn write_incident(w: &mut W, item: &Item) {
    let f = &item.full;
    let i = &f.incident;
    w.open(1, "incident");
    w.text(2, "id", &i.id.to_string());
    w.text(2, "reference", &i.reference);
    w.text(2, "year", &i.year.to_string());
    w.text(2, "number", &i.number.to_string());
    w.text(2, "domain", &i.domain);
    w.text(2, "category", &i.category);
    w.text(2, "criticality", &i.criticality);
    w.text(2, "title", &i.title);
    w.text(2, "description", &i.description);
    w.text(2, "comments", &i.comments);
    w.text(2, "detection", &i.detection);
    w.opt(2, "alert_id", i.alert_id.map(|v| v.to_string()).as_deref());
    w.opt(
        2,
        "opener_id",
        i.opener_id.map(|v| v.to_string()).as_deref(),
    );
    w.text(2, "opener_login", &i.opener_login);
    w.text(2, "opened_at", &time(&i.opened_at));
    w.text(2, "state", &i.state);
    w.text(2, "follow", if i.follow { "true" } else { "false" });
    for (name, t) in [
        ("acknowledged_at", &i.acknowledged_at),
        ("resolved_at", &i.resolved_at),
        ("closed_at", &i.closed_at),
        ("deleted_at", &i.deleted_at),
    ] {
        w.opt(2, name, t.as_ref().map(time).as_deref());
    }
    w.text(2, "updated_at", &time(&i.updated_at));
    w.opt(
        2,
        "time_to_acknowledge_secs",
        i.time_to_acknowledge_secs.map(|v| v.to_string()).as_deref(),
    );
    w.opt(
        2,
        "time_to_resolve_secs",
        i.time_to_resolve_secs.map(|v| v.to_string()).as_deref(),
    );
    w.text(2, "minutes_spent", &f.minutes_spent.to_string());
    w.open(2, "people");
    for p in &f.people {
        w.open(3, "person");
        w.text(4, "user_id", &p.user_id.to_string());
        w.text(4, "login", &p.login);
        w.text(4, "kind", &p.kind);
        w.text(4, "added_at", &time(&p.added_at));
        w.opt(4, "added_by", p.added_by.as_deref());
        w.close(3, "person");
    }
    w.close(2, "people");
    w.open(2, "resolutions");
    for r in &f.resolutions {
        w.open(3, "resolution");
        w.text(4, "id", &r.id.to_string());
        w.text(4, "text", &r.text);
        w.text(4, "minutes", &r.minutes.to_string());
        w.text(4, "final", if r.is_final { "true" } else { "false" });
        w.text(4, "author_login", &r.author_login);
        w.text(4, "at", &time(&r.at));
        w.close(3, "resolution");
    }
    w.close(2, "resolutions");
    w.open(2, "timeline");
    for e in &f.timeline {
        w.open(3, "event");
        w.text(4, "id", &e.id.to_string());
        w.text(4, "at", &time(&e.at));
        w.opt(4, "actor_login", e.actor_login.as_deref());
        w.text(4, "kind", &e.kind);
        w.opt(4, "from_state", e.from_state.as_deref());
        w.opt(4, "to_state", e.to_state.as_deref());
        w.text(4, "details", &e.details.to_string());
        w.close(3, "event");
    }
    w.close(2, "timeline");
    w.open(2, "attachments");
    for (n, a) in f.attachments.iter().enumerate() {
        w.open(3, "attachment");
        w.text(4, "id", &a.id.to_string());
        w.text(4, "file_name", &a.file_name);
        w.text(4, "content_type", &a.content_type);
        w.text(4, "size", &a.size.to_string());
        w.text(4, "uploaded_by", &a.uploaded_by);
        w.text(4, "uploaded_at", &time(&a.uploaded_at));
        if let Some(Some(bytes)) = item.data.as_ref().and_then(|d| d.get(n)) {
            w.indent(4);
            let _ = writeln!(
                w.out,
                "<data encoding=\"base64\">{}</data>",
                B64.encode(bytes)
            );
        }
        w.close(3, "attachment");
    }
    w.close(2, "attachments");
    w.close(1, "incident");
}

// ---------------------------------------------------------------------------------------------
// Reading.

/// One element of a parsed document.
#[derive(Debug, Default)]
struct Node {
    name: String,
    attrs: Vec<(String, String)>,
    children: Vec<Node>,
    /// The text directly inside, exactly as written (references resolved).
    text: String,
    line: usize,
}

fn bad(problem: impl Into<String>) -> IncidentsError {
    IncidentsError::invalid("file", problem)
}

/// The line (from 1) of byte offset `pos`.
struct Lines<'a> {
    bytes: &'a [u8],
    pos: usize,
    line: usize,
}

impl Lines<'_> {
    fn at(&mut self, pos: usize) -> usize {
        let pos = pos.min(self.bytes.len());
        if pos >= self.pos {
            self.line += memchr::memchr_iter(b'\n', &self.bytes[self.pos..pos]).count();
            self.pos = pos;
        }
        self.line
    }
}

fn resolve_ref(name: &str) -> Option<char> {
    match name {
        "amp" => Some('&'),
        "lt" => Some('<'),
        "gt" => Some('>'),
        "quot" => Some('"'),
        "apos" => Some('\''),
        _ => {
            let code = if let Some(hex) = name.strip_prefix("#x") {
                u32::from_str_radix(hex, 16).ok()
            } else if let Some(dec) = name.strip_prefix('#') {
                dec.parse().ok()
            } else {
                None
            };
            code.and_then(char::from_u32).filter(|c| xml_char(*c))
        }
    }
}

fn element(e: &quick_xml::events::BytesStart<'_>, line: usize) -> Result<Node, IncidentsError> {
    let name = String::from(e.name().as_ref());
    let mut attrs = Vec::new();
    for a in e.attributes() {
        let a = a.map_err(|err| bad(format!("line {line}, <{name}>: bad attribute ({err})")))?;
        let key = String::from(a.key.as_ref());
        let value = quick_xml::escape::unescape(&a.value)
            .map_err(|err| bad(format!("line {line}, <{name}>: attribute `{key}`: {err}")))?
            .into_owned();
        attrs.push((key, value));
    }
    Ok(Node {
        name,
        attrs,
        line,
        ..Node::default()
    })
}

/// Parses a whole document into its root element; any syntax error names its line.
fn parse_tree(bytes: &[u8]) -> Result<Node, IncidentsError> {
    let mut reader = quick_xml::Reader::from_reader(bytes);
    reader.config_mut().check_end_names = true;
    let mut lines = Lines {
        bytes,
        pos: 0,
        line: 1,
    };
    let mut stack: Vec<Node> = Vec::new();
    let mut root: Option<Node> = None;
    loop {
        let start = reader.buffer_position() as usize;
        let event = reader.read_event().map_err(|e| {
            let line = lines.at(reader.error_position() as usize);
            bad(format!("line {line}: malformed XML ({e})"))
        })?;
        let line = lines.at(start);
        let misplaced = |what: &str| bad(format!("line {line}: {what} outside the root element"));
        match event {
            Event::Start(e) => {
                if root.is_some() {
                    return Err(misplaced("an element"));
                }
                stack.push(element(&e, line)?);
            }
            Event::Empty(e) => {
                let node = element(&e, line)?;
                match stack.last_mut() {
                    Some(parent) => parent.children.push(node),
                    None if root.is_none() => root = Some(node),
                    None => return Err(misplaced("an element")),
                }
            }
            Event::End(_) => {
                let Some(node) = stack.pop() else {
                    return Err(bad(format!("line {line}: unexpected closing tag")));
                };
                match stack.last_mut() {
                    Some(parent) => parent.children.push(node),
                    None => root = Some(node),
                }
            }
            Event::Text(t) => {
                let raw = t.into_inner();
                match stack.last_mut() {
                    Some(node) => node.text.push_str(&raw),
                    None if raw.trim().is_empty() => {}
                    None => return Err(misplaced("text")),
                }
            }
            Event::CData(c) => {
                let raw = c.into_inner();
                match stack.last_mut() {
                    Some(node) => node.text.push_str(&raw),
                    None => return Err(misplaced("text")),
                }
            }
            Event::GeneralRef(r) => {
                let name = r.into_inner();
                let c = resolve_ref(&name)
                    .ok_or_else(|| bad(format!("line {line}: unknown reference `&{name};`")))?;
                match stack.last_mut() {
                    Some(node) => node.text.push(c),
                    None => return Err(misplaced("text")),
                }
            }
            Event::DocType(_) => {
                return Err(bad(format!("line {line}: a DOCTYPE is not accepted")));
            }
            Event::Decl(_) | Event::PI(_) | Event::Comment(_) => {}
            Event::Eof => break,
        }
    }
    if let Some(open) = stack.last() {
        return Err(bad(format!(
            "line {}: <{}> is never closed",
            open.line, open.name
        )));
    }
    root.ok_or_else(|| bad("the file has no root element"))
}

impl Node {
    fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    fn child(&self, name: &str) -> Option<&Node> {
        self.children.iter().find(|c| c.name == name)
    }

    fn where_(&self, ctx: &str) -> String {
        format!("line {}, <{}>{ctx}", self.line, self.name)
    }

    /// The text of a leaf element (decoded when in base64).
    fn value(&self, ctx: &str) -> Result<String, IncidentsError> {
        if let Some(c) = self.children.first() {
            return Err(bad(format!(
                "{}: unexpected element <{}> (line {})",
                self.where_(ctx),
                c.name,
                c.line
            )));
        }
        match self.attr("encoding") {
            None => Ok(self.text.clone()),
            Some("base64") => B64
                .decode(self.text.trim())
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .ok_or_else(|| bad(format!("{}: invalid base64 text", self.where_(ctx)))),
            Some(other) => Err(bad(format!(
                "{}: unknown encoding `{other}`",
                self.where_(ctx)
            ))),
        }
    }

    fn opt_text(&self, name: &str, ctx: &str) -> Result<Option<String>, IncidentsError> {
        self.child(name).map(|c| c.value(ctx)).transpose()
    }

    fn req_text(&self, name: &str, ctx: &str) -> Result<String, IncidentsError> {
        self.opt_text(name, ctx)?
            .ok_or_else(|| bad(format!("{}: missing <{name}>", self.where_(ctx))))
    }

    fn parsed<T>(
        &self,
        name: &str,
        ctx: &str,
        what: &str,
        parse: impl Fn(&str) -> Option<T>,
    ) -> Result<Option<T>, IncidentsError> {
        let Some(c) = self.child(name) else {
            return Ok(None);
        };
        let raw = c.value(ctx)?;
        parse(raw.trim())
            .map(Some)
            .ok_or_else(|| bad(format!("{}: `{raw}` is not {what}", c.where_(ctx))))
    }

    fn req<T>(
        &self,
        name: &str,
        ctx: &str,
        what: &str,
        parse: impl Fn(&str) -> Option<T>,
    ) -> Result<T, IncidentsError> {
        self.parsed(name, ctx, what, parse)?
            .ok_or_else(|| bad(format!("{}: missing <{name}>", self.where_(ctx))))
    }

    fn int(&self, name: &str, ctx: &str) -> Result<Option<i64>, IncidentsError> {
        self.parsed(name, ctx, "a whole number", |s| s.parse().ok())
    }

    fn req_int(&self, name: &str, ctx: &str) -> Result<i64, IncidentsError> {
        self.req(name, ctx, "a whole number", |s| s.parse().ok())
    }

    fn time(&self, name: &str, ctx: &str) -> Result<Option<DateTime<Utc>>, IncidentsError> {
        self.parsed(name, ctx, "an RFC 3339 time", parse_time)
    }

    fn req_time(&self, name: &str, ctx: &str) -> Result<DateTime<Utc>, IncidentsError> {
        self.req(name, ctx, "an RFC 3339 time", parse_time)
    }

    fn req_bool(&self, name: &str, ctx: &str) -> Result<bool, IncidentsError> {
        self.req(name, ctx, "true or false", |s| match s {
            "true" | "1" => Some(true),
            "false" | "0" => Some(false),
            _ => None,
        })
    }

    /// The `<item>` children of the list element `list` (which must be present).
    fn list(&self, list: &str, item: &str, ctx: &str) -> Result<Vec<&Node>, IncidentsError> {
        let l = self
            .child(list)
            .ok_or_else(|| bad(format!("{}: missing <{list}>", self.where_(ctx))))?;
        if let Some(other) = l.children.iter().find(|c| c.name != item) {
            return Err(bad(format!(
                "{}: unexpected element <{}> in <{list}>, expected <{item}>",
                other.where_(ctx),
                other.name
            )));
        }
        Ok(l.children.iter().collect())
    }
}

fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// Reads what the root element says, without reading the rest (for the list of archives).
pub fn header(bytes: &[u8]) -> Result<Header, IncidentsError> {
    let mut reader = quick_xml::Reader::from_reader(bytes);
    loop {
        match reader
            .read_event()
            .map_err(|e| bad(format!("malformed XML ({e})")))?
        {
            Event::Start(e) | Event::Empty(e) => {
                let node = element(&e, 1)?;
                if node.name != "incidents" {
                    return Err(bad(format!(
                        "the root element is <{}>, expected <incidents>",
                        node.name
                    )));
                }
                let get = |k: &str| node.attr(k).map(str::to_owned);
                return Ok(Header {
                    version: get("version").unwrap_or_default(),
                    exported_at: get("exported_at"),
                    count: get("count").and_then(|c| c.parse().ok()),
                    first_opened: get("first_opened"),
                    last_opened: get("last_opened"),
                });
            }
            Event::Eof => return Err(bad("the file has no root element")),
            _ => {}
        }
    }
}

/// Parses and checks a whole document: syntax, version, every required element and value. The
/// first problem is returned, naming its element and line; nothing is half-read.
pub fn read(bytes: &[u8]) -> Result<Vec<Item>, IncidentsError> {
    let root = parse_tree(bytes)?;
    if root.name != "incidents" {
        return Err(bad(format!(
            "line {}: the root element is <{}>, expected <incidents>",
            root.line, root.name
        )));
    }
    match root.attr("version") {
        Some(VERSION) => {}
        Some(v) => {
            return Err(bad(format!(
                "line {}: unknown version `{v}` of <incidents> (this hub reads version {VERSION})",
                root.line
            )));
        }
        None => {
            return Err(bad(format!(
                "line {}: <incidents> has no version attribute",
                root.line
            )));
        }
    }
    let mut items = Vec::with_capacity(root.children.len());
    for node in &root.children {
        if node.name != "incident" {
            return Err(bad(format!(
                "line {}: unexpected element <{}> in <incidents>",
                node.line, node.name
            )));
        }
        items.push(read_incident(node)?);
    }
    Ok(items)
}

fn read_incident(n: &Node) -> Result<Item, IncidentsError> {
    // Errors name the incident by its reference once it is known.
    let reference = n.req_text("reference", "")?;
    let ctx = format!(" of incident {reference}");
    let ctx = ctx.as_str();
    let state = n.req("state", ctx, "a state", |s| {
        State::parse(s).map(|st| st.as_str().to_owned())
    })?;
    let criticality = n.req("criticality", ctx, "green, orange or red", |s| {
        Criticality::parse(s).map(|c| c.as_str().to_owned())
    })?;
    let detection = n.req("detection", ctx, "phone, mail, visual or alert", |s| {
        Detection::parse(s).map(|d| d.as_str().to_owned())
    })?;
    let incident = Incident {
        id: n.req_int("id", ctx)?,
        reference: reference.clone(),
        year: n.req_int("year", ctx)?,
        number: n.req_int("number", ctx)?,
        domain: n.req_text("domain", ctx)?,
        category: n.req_text("category", ctx)?,
        criticality,
        title: n.req_text("title", ctx)?,
        description: n.req_text("description", ctx)?,
        comments: n.req_text("comments", ctx)?,
        detection,
        alert_id: n.int("alert_id", ctx)?,
        opener_id: n.int("opener_id", ctx)?,
        opener_login: n.req_text("opener_login", ctx)?,
        opened_at: n.req_time("opened_at", ctx)?,
        state,
        follow: n.req_bool("follow", ctx)?,
        acknowledged_at: n.time("acknowledged_at", ctx)?,
        resolved_at: n.time("resolved_at", ctx)?,
        closed_at: n.time("closed_at", ctx)?,
        deleted_at: n.time("deleted_at", ctx)?,
        updated_at: n.req_time("updated_at", ctx)?,
        time_to_acknowledge_secs: None,
        time_to_resolve_secs: None,
    }
    .computed();
    if incident.title.trim().is_empty() {
        return Err(bad(format!("{}: <title> is empty", n.where_(ctx))));
    }
    let mut people = Vec::new();
    for p in n.list("people", "person", ctx)? {
        let kind = p.req_text("kind", ctx)?;
        if !matches!(kind.as_str(), "assignee" | "follower") {
            return Err(bad(format!(
                "{}: <kind> `{kind}` is not assignee or follower",
                p.where_(ctx)
            )));
        }
        people.push(Person {
            user_id: p.req_int("user_id", ctx)?,
            login: p.req_text("login", ctx)?,
            kind,
            added_at: p.req_time("added_at", ctx)?,
            added_by: p.opt_text("added_by", ctx)?,
        });
    }
    let mut resolutions = Vec::new();
    for r in n.list("resolutions", "resolution", ctx)? {
        let minutes = r.req_int("minutes", ctx)?;
        if minutes < 0 {
            return Err(bad(format!("{}: <minutes> is negative", r.where_(ctx))));
        }
        resolutions.push(Resolution {
            id: r.req_int("id", ctx)?,
            text: r.req_text("text", ctx)?,
            minutes,
            is_final: r.req_bool("final", ctx)?,
            author_login: r.req_text("author_login", ctx)?,
            at: r.req_time("at", ctx)?,
        });
    }
    let mut timeline = Vec::new();
    for e in n.list("timeline", "event", ctx)? {
        let raw = e.req_text("details", ctx)?;
        let details: Value = serde_json::from_str(&raw)
            .map_err(|err| bad(format!("{}: <details> is not JSON ({err})", e.where_(ctx))))?;
        timeline.push(TimelineEntry {
            id: e.req_int("id", ctx)?,
            at: e.req_time("at", ctx)?,
            actor_login: e.opt_text("actor_login", ctx)?,
            kind: e.req_text("kind", ctx)?,
            from_state: e.opt_text("from_state", ctx)?,
            to_state: e.opt_text("to_state", ctx)?,
            details,
        });
    }
    let mut attachments = Vec::new();
    let mut data = Vec::new();
    for a in n.list("attachments", "attachment", ctx)? {
        let size = a.req_int("size", ctx)?;
        let bytes = match a.child("data") {
            None => None,
            Some(d) => {
                if d.attr("encoding") != Some("base64") {
                    return Err(bad(format!(
                        "{}: <data> must have encoding=\"base64\"",
                        d.where_(ctx)
                    )));
                }
                let clean: String = d.text.split_ascii_whitespace().collect();
                let b = B64
                    .decode(clean.as_bytes())
                    .map_err(|err| bad(format!("{}: invalid base64 ({err})", d.where_(ctx))))?;
                if b.len() as i64 != size {
                    return Err(bad(format!(
                        "{}: {} bytes, but <size> says {size}",
                        d.where_(ctx),
                        b.len()
                    )));
                }
                Some(b)
            }
        };
        let file_name = a.req_text("file_name", ctx)?;
        attachments.push(Attachment {
            id: a.req_int("id", ctx)?,
            incident_id: incident.id,
            file_name: crate::attachments::clean_name(&file_name),
            content_type: a.req_text("content_type", ctx)?,
            size,
            storage_key: String::new(),
            uploaded_by: a.req_text("uploaded_by", ctx)?,
            uploaded_at: a.req_time("uploaded_at", ctx)?,
        });
        data.push(bytes);
    }
    let minutes_spent = resolutions.iter().map(|r| r.minutes).sum();
    Ok(Item {
        full: IncidentFull {
            incident,
            people,
            resolutions,
            timeline,
            attachments,
            minutes_spent,
        },
        data: Some(data),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_survives_exactly() {
        let mut s = String::new();
        escape_text("  a\r\nb <&> ", &mut s);
        assert_eq!(s, "  a&#13;\nb &lt;&amp;&gt; ");
        let doc = format!(
            "<incidents version=\"1\"><x>{s}</x><y encoding=\"base64\">AQI=</y></incidents>"
        );
        let root = parse_tree(doc.as_bytes()).unwrap_or_default();
        assert_eq!(root.children[0].text, "  a\r\nb <&> ");
        assert_eq!(
            root.children[1].value("").ok().as_deref(),
            Some("\u{1}\u{2}")
        );
        let mut w = W { out: String::new() };
        w.text(0, "t", "bell\u{7}");
        assert_eq!(w.out, "<t encoding=\"base64\">YmVsbAc=</t>\n");
    }

    #[test]
    fn errors_name_the_line() {
        let e = parse_tree(
            b"<incidents version=\"1\">\n<incident>\n<title>x</titel>\n</incident></incidents>",
        )
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
        assert!(e.contains("line 3"), "{e}");
        let e = read(b"<incidents version=\"2\"/>")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(e.contains("unknown version `2`"), "{e}");
    }
}
