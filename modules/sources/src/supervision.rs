//! The supervision pages that ask a source now, on demand (issue 9):
//!
//! | route | permission | question |
//! | --- | --- | --- |
//! | `GET /supervision/unavailability` | supervision view | `Unavailability`: the periods, with their total |
//! | `GET /supervision/statistics` | equipment statistics | `NodeReport` of a SolarWinds source, else `Statistics` |
//!
//! One GET form (source, resource, from, to in the viewer's time zone; the last 7 days by
//! default). Bad input comes back as the form (422) with the message next to its field; a source
//! that refuses the question, is not running or cannot be reached is a message on the page, never
//! an error page. Nothing is stored, hence GET and no CSRF token.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{DateTime, NaiveDateTime, TimeZone, Utc};
use serde::Serialize;
use std::collections::BTreeMap;
use tera::Context;
use vigie_console::{Console, FormData, PageError, Viewer};
use vigie_core::role::Permission;
use vigie_poll::{Answer, NodeReport, Period, Question, SourceError, State, Statistics};

use crate::admin::page;
use crate::api::ASK_TIMEOUT;
use crate::sources::{AskError, Sources};

/// The default range of the form: the last 7 days, as the API's.
const DEFAULT_DAYS: i64 = 7;

/// The console routes of these pages; need `web::Data` of [`Console`] and, to ask anything, of
/// [`Sources`] (without it the form says that no source runs in this process).
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/supervision/unavailability", web::get().to(unavailability))
        .route("/supervision/statistics", web::get().to(statistics));
}

/// Which page asks.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Ask {
    Unavailability,
    Statistics,
}

impl Ask {
    fn permission(self) -> Permission {
        match self {
            Ask::Unavailability => Permission::SupervisionView,
            Ask::Statistics => Permission::EquipmentStats,
        }
    }

    fn path(self) -> &'static str {
        match self {
            Ask::Unavailability => "/supervision/unavailability",
            Ask::Statistics => "/supervision/statistics",
        }
    }

    fn template(self) -> &'static str {
        match self {
            Ask::Unavailability => "sources/unavailability.html",
            Ask::Statistics => "sources/statistics.html",
        }
    }

    /// Whether sources of `kind` answer this page's question (their connectors' `ask`): such
    /// sources come first in the list; the others stay offered, their refusal says why.
    fn answered_by(self, kind: &str) -> bool {
        match self {
            Ask::Unavailability => matches!(kind, "whatsup" | "manageengine"),
            Ask::Statistics => matches!(kind, "whatsup" | "manageengine" | "solarwinds"),
        }
    }

    /// The question for a source of `kind`: Orion answers node reports and no statistics.
    fn question(
        self,
        kind: &str,
        resource: String,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Question {
        match self {
            Ask::Unavailability => Question::Unavailability { resource, from, to },
            Ask::Statistics if kind == "solarwinds" => Question::NodeReport { resource, from, to },
            Ask::Statistics => Question::Statistics { resource, from, to },
        }
    }
}

/// A source offered in the form.
#[derive(Serialize)]
struct SourceOption {
    name: String,
    kind: String,
    kind_label: String,
    /// Its kind answers this page's question.
    answers: bool,
}

/// The enabled sources, those that answer first, then by name.
fn options(viewer: &Viewer, sources: Option<&Sources>, ask: Ask) -> Vec<SourceOption> {
    let mut out: Vec<SourceOption> = sources
        .map(Sources::health)
        .unwrap_or_default()
        .into_iter()
        .filter(|h| h.state != State::Disabled)
        .map(|h| {
            let key = format!("sources.kinds.{}", h.kind);
            let label = viewer.text(&key);
            SourceOption {
                answers: ask.answered_by(&h.kind),
                kind_label: if label == key { h.kind.clone() } else { label },
                name: h.source,
                kind: h.kind,
            }
        })
        .collect();
    out.sort_by(|a, b| b.answers.cmp(&a.answers).then_with(|| a.name.cmp(&b.name)));
    out
}

/// The form as typed (shown back as is).
#[derive(Serialize, Default)]
struct AskForm {
    source: String,
    resource: String,
    from: String,
    to: String,
}

/// A `datetime-local` value in `tz`; `None` when it is not one.
fn local_time<Z: TimeZone>(tz: &Z, text: &str) -> Option<DateTime<Utc>> {
    let naive = NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M")
        .or_else(|_| NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S"))
        .ok()?;
    tz.from_local_datetime(&naive)
        .earliest()
        .map(|t| t.with_timezone(&Utc))
}

/// A time as a `datetime-local` value in `tz`.
fn local_input<Z: TimeZone>(t: DateTime<Utc>, tz: &Z) -> String
where
    Z::Offset: std::fmt::Display,
{
    t.with_timezone(tz).format("%Y-%m-%dT%H:%M").to_string()
}

/// What a valid form asks.
struct Valid {
    source: String,
    kind: String,
    resource: String,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
}

/// Checks the form; each problem is a message for its field. Empty times take the defaults
/// (to: now; from: 7 days before `to`), written back into the form.
fn validate(
    viewer: &Viewer,
    form: &mut AskForm,
    offered: &[SourceOption],
    now: DateTime<Utc>,
) -> Result<Valid, BTreeMap<String, String>> {
    let mut errors = BTreeMap::new();
    let kind = if form.source.is_empty() {
        errors.insert(
            "source".into(),
            viewer.text("sources.ask.err_source_required"),
        );
        None
    } else {
        let kind = offered
            .iter()
            .find(|o| o.name == form.source)
            .map(|o| o.kind.clone());
        if kind.is_none() {
            errors.insert(
                "source".into(),
                viewer.text("sources.ask.err_source_unknown"),
            );
        }
        kind
    };
    if form.resource.is_empty() {
        errors.insert(
            "resource".into(),
            viewer.text("sources.ask.err_resource_required"),
        );
    }
    let mut time = |field: &str, text: &str| -> Option<DateTime<Utc>> {
        let t = local_time(&viewer.tz, text);
        if t.is_none() {
            errors.insert(field.into(), viewer.text("sources.ask.err_time"));
        }
        t
    };
    let to = if form.to.is_empty() {
        form.to = local_input(now, &viewer.tz);
        Some(now)
    } else {
        time("to", &form.to)
    };
    let from = match (form.from.is_empty(), to) {
        (true, Some(to)) => {
            let from = to - chrono::Duration::days(DEFAULT_DAYS);
            form.from = local_input(from, &viewer.tz);
            Some(from)
        }
        (true, None) => None,
        (false, _) => time("from", &form.from),
    };
    if let (Some(from), Some(to)) = (from, to)
        && from >= to
    {
        errors.insert("from".into(), viewer.text("sources.ask.err_order"));
    }
    match (kind, from, to) {
        (Some(kind), Some(from), Some(to)) if errors.is_empty() => Ok(Valid {
            source: form.source.clone(),
            kind,
            resource: form.resource.clone(),
            from,
            to,
        }),
        _ => Err(errors),
    }
}

/// A duration for people: `45 s`, `5 min`, `2 h 05 min`, `3 d 04 h 10 min` (the day's unit
/// from the locale).
fn duration(viewer: &Viewer, secs: i64) -> String {
    let secs = secs.max(0);
    let (d, h, m, s) = (
        secs / 86_400,
        secs % 86_400 / 3600,
        secs % 3600 / 60,
        secs % 60,
    );
    if d > 0 {
        format!(
            "{d} {} {h:02} h {m:02} min",
            viewer.text("sources.ask.day_unit")
        )
    } else if h > 0 {
        format!("{h} h {m:02} min")
    } else if m > 0 && s > 0 {
        format!("{m} min {s:02} s")
    } else if m > 0 {
        format!("{m} min")
    } else {
        format!("{s} s")
    }
}

/// A period's kind in the viewer's language; a kind the page does not know is shown as given.
fn kind_label(viewer: &Viewer, kind: &str) -> String {
    match kind {
        "outage" | "maintenance" => viewer.text(&format!("sources.ask.kind_{kind}")),
        other => other.to_owned(),
    }
}

/// One line of the periods' table.
#[derive(Serialize)]
struct PeriodLine {
    start: DateTime<Utc>,
    end: Option<DateTime<Utc>>,
    /// Up to its end, or up to the range's end (or now) while it lasts.
    seconds: i64,
    duration: String,
    kind: String,
    kind_label: String,
    detail: Option<String>,
}

/// The periods' total, all kinds, and per kind.
#[derive(Serialize)]
struct Total {
    label: String,
    count: usize,
    seconds: i64,
    duration: String,
}

fn periods_view(
    viewer: &Viewer,
    periods: Vec<Period>,
    to: DateTime<Utc>,
    now: DateTime<Utc>,
) -> (Vec<PeriodLine>, Vec<Total>) {
    let open_until = to.min(now);
    let lines: Vec<PeriodLine> = periods
        .into_iter()
        .map(|p| {
            let seconds = (p.end.unwrap_or(open_until) - p.start).num_seconds().max(0);
            PeriodLine {
                start: p.start,
                end: p.end,
                seconds,
                duration: duration(viewer, seconds),
                kind_label: kind_label(viewer, &p.kind),
                kind: p.kind,
                detail: p.detail,
            }
        })
        .collect();
    let mut by_kind: BTreeMap<&str, (usize, i64)> = BTreeMap::new();
    for l in &lines {
        let e = by_kind.entry(l.kind.as_str()).or_default();
        e.0 += 1;
        e.1 += l.seconds;
    }
    let all: i64 = lines.iter().map(|l| l.seconds).sum();
    let mut totals = vec![Total {
        label: viewer.text("sources.ask.total"),
        count: lines.len(),
        seconds: all,
        duration: duration(viewer, all),
    }];
    if by_kind.len() > 1 {
        totals.extend(by_kind.iter().map(|(kind, (count, secs))| Total {
            label: kind_label(viewer, kind),
            count: *count,
            seconds: *secs,
            duration: duration(viewer, *secs),
        }));
    }
    (lines, totals)
}

/// The statistics as the page shows them.
#[derive(Serialize)]
struct StatsView {
    outages: u32,
    downtime: String,
    maintenance: String,
    availability_percent: f64,
    mttr: Option<String>,
    longest: Option<String>,
}

fn stats_view(viewer: &Viewer, s: &Statistics) -> StatsView {
    StatsView {
        outages: s.outages,
        downtime: duration(viewer, s.downtime_seconds),
        maintenance: duration(viewer, s.maintenance_seconds),
        availability_percent: s.availability_percent,
        mttr: s.mean_time_to_repair_seconds.map(|x| duration(viewer, x)),
        longest: s.longest_outage_seconds.map(|x| duration(viewer, x)),
    }
}

/// Bytes for people, in decimal units named by the locale (`5.24 GB`, `5.24 Go`).
fn bytes(viewer: &Viewer, b: f64) -> String {
    let (value, unit) = if b >= 1e9 {
        (b / 1e9, "sources.ask.unit_gb")
    } else if b >= 1e6 {
        (b / 1e6, "sources.ask.unit_mb")
    } else {
        (b / 1e3, "sources.ask.unit_kb")
    };
    format!("{value:.2} {}", viewer.text(unit))
}

/// One point of a node's history.
#[derive(Serialize)]
struct SampleLine {
    at: DateTime<Utc>,
    avg_load: Option<f64>,
    avg_memory_used: Option<String>,
}

/// A node's report as the page shows it.
#[derive(Serialize)]
struct NodeView {
    node_id: i64,
    caption: String,
    status: String,
    status_code: Option<i64>,
    status_description: Option<String>,
    cpu_load: Option<f64>,
    percent_memory_used: Option<f64>,
    history: Vec<SampleLine>,
}

fn node_view(viewer: &Viewer, r: NodeReport) -> NodeView {
    NodeView {
        node_id: r.node_id,
        caption: r.caption,
        status: r.status,
        status_code: r.status_code,
        status_description: r.status_description,
        cpu_load: r.cpu_load,
        percent_memory_used: r.percent_memory_used,
        history: r
            .history
            .into_iter()
            .map(|h| SampleLine {
                at: h.at,
                avg_load: h.avg_load,
                avg_memory_used: h.avg_memory_used.map(|b| bytes(viewer, b)),
            })
            .collect(),
    }
}

/// Why the source gave no answer, in the viewer's language with the source's own reason.
fn ask_problem(viewer: &Viewer, e: &AskError) -> String {
    let (key, detail) = match e {
        AskError::UnknownSource(_) => ("sources.ask.err_source_unknown", String::new()),
        AskError::NotRunning(_) => ("sources.ask.not_running", String::new()),
        AskError::Source(SourceError::Unsupported(m)) => ("sources.ask.unsupported", m.clone()),
        AskError::Source(SourceError::Timeout(d)) => {
            ("sources.ask.timeout", format!("({} s)", d.as_secs()))
        }
        AskError::Source(e @ (SourceError::Unreachable(_) | SourceError::Login(_))) => {
            ("sources.ask.unreachable", e.to_string())
        }
        AskError::Source(e) => ("sources.ask.failed", e.to_string()),
    };
    let text = viewer.text(key);
    if detail.is_empty() {
        text
    } else {
        format!("{text} {detail}")
    }
}

async fn unavailability(
    req: HttpRequest,
    viewer: Viewer,
    console: web::Data<Console>,
    sources: Option<web::Data<Sources>>,
) -> Result<HttpResponse, PageError> {
    show(
        Ask::Unavailability,
        &req,
        &viewer,
        &console,
        sources.as_ref().map(|d| d.get_ref()),
    )
    .await
}

async fn statistics(
    req: HttpRequest,
    viewer: Viewer,
    console: web::Data<Console>,
    sources: Option<web::Data<Sources>>,
) -> Result<HttpResponse, PageError> {
    show(
        Ask::Statistics,
        &req,
        &viewer,
        &console,
        sources.as_ref().map(|d| d.get_ref()),
    )
    .await
}

/// The form, and once submitted (any of its fields in the query) the answer, the message of a
/// source that gave none, or the form's problems (422).
async fn show(
    ask: Ask,
    req: &HttpRequest,
    viewer: &Viewer,
    console: &Console,
    sources: Option<&Sources>,
) -> Result<HttpResponse, PageError> {
    viewer.require(ask.permission())?;
    let query = FormData::parse(req.query_string().as_bytes());
    let field = |name: &str| query.text(name).trim().to_owned();
    let offered = options(viewer, sources, ask);
    let now = Utc::now();
    let mut form = AskForm {
        source: field("source"),
        resource: field("resource"),
        from: field("from"),
        to: field("to"),
    };
    let submitted = ["source", "resource", "from", "to"]
        .iter()
        .any(|k| query.get(k).is_some());
    let mut context = Context::new();
    context.insert("action", ask.path());
    let mut status = StatusCode::OK;
    let mut errors = BTreeMap::new();
    if !submitted {
        // A first visit: the source that answers, the last 7 days.
        form.source = offered
            .iter()
            .find(|o| o.answers)
            .map(|o| o.name.clone())
            .unwrap_or_default();
        form.to = local_input(now, &viewer.tz);
        form.from = local_input(now - chrono::Duration::days(DEFAULT_DAYS), &viewer.tz);
    } else {
        match validate(viewer, &mut form, &offered, now) {
            Err(e) => {
                errors = e;
                status = StatusCode::UNPROCESSABLE_ENTITY;
            }
            Ok(valid) => {
                let question = ask.question(&valid.kind, valid.resource, valid.from, valid.to);
                let answer = match sources {
                    Some(s) => s.ask(&valid.source, &question, ASK_TIMEOUT).await,
                    None => Err(AskError::UnknownSource(valid.source.clone())),
                };
                context.insert("from_utc", &valid.from);
                context.insert("to_utc", &valid.to);
                match answer {
                    Ok(answer) => insert_answer(&mut context, viewer, answer, valid.to, now),
                    Err(AskError::UnknownSource(_)) => {
                        // Removed since the list was read.
                        errors.insert(
                            "source".into(),
                            viewer.text("sources.ask.err_source_unknown"),
                        );
                        status = StatusCode::UNPROCESSABLE_ENTITY;
                    }
                    Err(e) => {
                        tracing::info!(source = %valid.source, error = %e, "A source gave no answer to a console question.");
                        context.insert("problem", &ask_problem(viewer, &e));
                    }
                }
            }
        }
    }
    context.insert("form", &form);
    context.insert("sources", &offered);
    context.insert("errors", &errors);
    Ok(page(console, viewer, status, ask.template(), context))
}

fn insert_answer(
    context: &mut Context,
    viewer: &Viewer,
    answer: Answer,
    to: DateTime<Utc>,
    now: DateTime<Utc>,
) {
    match answer {
        Answer::Unavailability { resource, periods } => {
            let (lines, totals) = periods_view(viewer, periods, to, now);
            context.insert("resource", &resource);
            context.insert("periods", &lines);
            context.insert("totals", &totals);
        }
        Answer::Statistics(s) => {
            context.insert("resource", &s.resource);
            context.insert("stats", &stats_view(viewer, &s));
        }
        Answer::NodeReport(r) => {
            context.insert("resource", &r.caption);
            context.insert("node", &node_view(viewer, r));
        }
    }
}
