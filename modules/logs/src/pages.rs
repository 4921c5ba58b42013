//! The log viewer in the console: the filtered list (`/logs`), its live tail (`/logs/tail`, JSON
//! polled by `static/logs.js`), its CSV export (`/logs/export.csv`) and the messages of a host
//! around a time (`/logs/around`, linked from an alert).
//!
//! Every route takes the session's [`Viewer`] and checks `supervision_view` first. Times are
//! shown in the viewer's time zone, and the times typed in the filters are read in it.

use actix_web::http::StatusCode;
use actix_web::http::header::{CONTENT_DISPOSITION, CONTENT_TYPE};
use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{DateTime, Utc};
use serde::Serialize;
use tera::Context;
use vigie_console::{Console, PageError, Viewer};
use vigie_core::http::FieldProblem;
use vigie_core::role::Permission;
use vigie_syslog::parse::{facility_name, severity_name};

use crate::MessagesStore;
use crate::error::LogsError;
use crate::filter::{LogFilter, Reader};
use crate::repo::{self, StoredMessage};

/// Messages per page of the viewer.
const PAGE: u32 = 100;
/// The largest page asked with `limit`.
const PAGE_MAX: u32 = 500;
/// New messages sent to a live tail per poll at most (a busier tail skips to the newest).
const TAIL_MAX: u32 = 200;
/// Rows of one CSV export at most; the answer says when the view had more.
pub const EXPORT_MAX: usize = 50_000;
/// Rows read per query while exporting.
const EXPORT_CHUNK: u32 = 1000;
/// The window of `/logs/around`, on each side of the time.
const AROUND: chrono::Duration = chrono::Duration::minutes(5);
/// Messages shown by `/logs/around` at most.
const AROUND_MAX: u32 = 500;

/// One choice of a select: its value and its label.
#[derive(Serialize)]
struct Choice {
    value: u8,
    /// The value as the form sends it back, to mark the selected choice.
    key: String,
    name: &'static str,
}

/// The filter as the form shows it back (times in the viewer's zone, for `datetime-local`).
#[derive(Serialize, Default)]
struct FormValues {
    host: String,
    facility: String,
    severity: String,
    app: String,
    q: String,
    from: String,
    to: String,
}

fn local_input(t: Option<DateTime<Utc>>, tz: chrono_tz::Tz) -> String {
    t.map(|t| t.with_timezone(&tz).format("%Y-%m-%dT%H:%M:%S").to_string())
        .unwrap_or_default()
}

impl FormValues {
    fn of(f: &LogFilter, tz: chrono_tz::Tz) -> FormValues {
        FormValues {
            host: f.host.clone().unwrap_or_default(),
            facility: f.facility.map(|n| n.to_string()).unwrap_or_default(),
            severity: f.severity.map(|n| n.to_string()).unwrap_or_default(),
            app: f.app.clone().unwrap_or_default(),
            q: f.text.clone().unwrap_or_default(),
            from: local_input(f.from, tz),
            to: local_input(f.to, tz),
        }
    }

    /// What was typed, shown back when it could not be read.
    fn raw(req: &HttpRequest) -> FormValues {
        let mut v = FormValues::default();
        for (k, val) in form_urlencoded::parse(req.query_string().as_bytes()) {
            let val: String = val.chars().take(300).collect();
            match k.as_ref() {
                "host" => v.host = val,
                "facility" => v.facility = val,
                "severity" => v.severity = val,
                "app" => v.app = val,
                "q" => v.q = val,
                "from" => v.from = val,
                "to" => v.to = val,
                _ => {}
            }
        }
        v
    }
}

/// What every rendering of the list needs besides the rows.
fn base_context(viewer: &Viewer, form: &FormValues) -> Context {
    let mut context = Context::new();
    context.insert("form", form);
    context.insert(
        "facilities",
        &(0..=23u8)
            .filter_map(|n| {
                facility_name(n).map(|name| Choice {
                    value: n,
                    key: n.to_string(),
                    name,
                })
            })
            .collect::<Vec<_>>(),
    );
    context.insert(
        "severities",
        &(0..=7u8)
            .filter_map(|n| {
                severity_name(n).map(|name| Choice {
                    value: n,
                    key: n.to_string(),
                    name,
                })
            })
            .collect::<Vec<_>>(),
    );
    context.insert("tz", viewer.tz.name());
    context
}

/// A page with the viewer's frame.
fn render(
    console: &Console,
    viewer: &Viewer,
    status: StatusCode,
    context: Context,
) -> HttpResponse {
    console
        .renderer
        .page(status, "logs/list.html", viewer.lang, Some(viewer), context)
}

/// The list again, empty, with what could not be read: 400, each field named.
fn bad_request(
    req: &HttpRequest,
    console: &Console,
    viewer: &Viewer,
    problems: &[FieldProblem],
) -> HttpResponse {
    let mut context = base_context(viewer, &FormValues::raw(req));
    context.insert("problems", problems);
    context.insert("rows", &Vec::<StoredMessage>::new());
    render(console, viewer, StatusCode::BAD_REQUEST, context)
}

/// `GET /logs`: the filtered list, newest first, a page at a time.
pub(crate) async fn list(
    req: HttpRequest,
    viewer: Viewer,
    console: web::Data<Console>,
    store: web::Data<MessagesStore>,
) -> Result<HttpResponse, PageError> {
    viewer.require(Permission::SupervisionView)?;
    let mut filter =
        match LogFilter::parse(req.query_string(), Reader::Page(viewer.tz), PAGE, PAGE_MAX) {
            Ok(f) => f,
            Err(problems) => return Ok(bad_request(&req, &console, &viewer, &problems)),
        };
    // The tail's bound is not a filter of the list.
    filter.after = None;
    let page = filter.limit;
    filter.limit = page + 1;
    let mut rows = repo::list(store.store(), &filter).await?;
    let older = rows.len() > page as usize;
    rows.truncate(page as usize);
    let mut context = base_context(&viewer, &FormValues::of(&filter, viewer.tz));
    context.insert("query", &filter.to_query());
    context.insert("older", &older.then(|| rows.last().map(|r| r.id)).flatten());
    context.insert("first_page", &filter.before.is_none());
    context.insert("last_id", &rows.first().map_or(0, |r| r.id));
    context.insert("rows", &rows);
    Ok(render(&console, &viewer, StatusCode::OK, context))
}

/// `GET /logs/around?host=H&at=TIME`: the host's messages five minutes either side of a time
/// (an alert's), oldest first so that they read as a story.
pub(crate) async fn around(
    req: HttpRequest,
    viewer: Viewer,
    console: web::Data<Console>,
    store: web::Data<MessagesStore>,
) -> Result<HttpResponse, PageError> {
    viewer.require(Permission::SupervisionView)?;
    let mut host = None;
    let mut at = None;
    let mut problems = Vec::new();
    for (k, v) in form_urlencoded::parse(req.query_string().as_bytes()) {
        match k.as_ref() {
            "host" if !v.trim().is_empty() && v.chars().count() <= 255 => {
                host = Some(v.trim().to_owned())
            }
            "at" => match DateTime::parse_from_rfc3339(v.trim()) {
                Ok(t) => at = Some(t.with_timezone(&Utc)),
                Err(_) => problems.push(FieldProblem {
                    field: "at".into(),
                    problem: format!("`{v}` is not an RFC 3339 time"),
                }),
            },
            _ => {}
        }
    }
    if host.is_none() {
        problems.push(FieldProblem {
            field: "host".into(),
            problem: "is required".into(),
        });
    }
    let (Some(host), Some(at), true) = (host, at, problems.is_empty()) else {
        if !problems.iter().any(|p| p.field == "at") && at.is_none() {
            problems.push(FieldProblem {
                field: "at".into(),
                problem: "is required".into(),
            });
        }
        return Ok(bad_request(&req, &console, &viewer, &problems));
    };
    let filter = LogFilter {
        host: Some(host.clone()),
        from: Some(at - AROUND),
        to: Some(at + AROUND),
        limit: AROUND_MAX,
        ..LogFilter::default()
    };
    let mut rows = repo::list(store.store(), &filter).await?;
    rows.reverse();
    let mut context = base_context(&viewer, &FormValues::of(&filter, viewer.tz));
    context.insert("query", &filter.to_query());
    context.insert("around_host", &host);
    context.insert("around_at", &at);
    context.insert("first_page", &false);
    context.insert("older", &None::<i64>);
    context.insert("last_id", &0);
    context.insert("rows", &rows);
    Ok(render(&console, &viewer, StatusCode::OK, context))
}

/// A row of the live tail, ready to show (time already in the viewer's zone).
#[derive(Serialize)]
struct TailRow {
    id: i64,
    time: String,
    host: String,
    facility: Option<&'static str>,
    severity: Option<i32>,
    severity_name: Option<&'static str>,
    app: String,
    message: String,
}

#[derive(Serialize)]
struct Tail {
    /// Newest first.
    rows: Vec<TailRow>,
    /// The id to poll after next time.
    last_id: i64,
}

/// `GET /logs/tail?after=ID&…filters`: the messages newer than `after`, newest first, at most
/// [`TAIL_MAX`].
pub(crate) async fn tail(
    req: HttpRequest,
    viewer: Viewer,
    store: web::Data<MessagesStore>,
) -> Result<HttpResponse, PageError> {
    viewer.require(Permission::SupervisionView)?;
    let filter = match LogFilter::parse(
        req.query_string(),
        Reader::Page(viewer.tz),
        TAIL_MAX,
        TAIL_MAX,
    ) {
        Ok(f) => LogFilter {
            before: None,
            limit: TAIL_MAX,
            ..f
        },
        Err(problems) => {
            return Ok(actix_web::ResponseError::error_response(
                &LogsError::Invalid(problems),
            ));
        }
    };
    let rows = repo::list(store.store(), &filter).await?;
    let last_id = rows.first().map_or(filter.after.unwrap_or(0), |r| r.id);
    let tz = viewer.tz;
    let rows = rows
        .into_iter()
        .map(|m| TailRow {
            id: m.id,
            time: m
                .received_at
                .with_timezone(&tz)
                .format("%Y-%m-%d %H:%M:%S")
                .to_string(),
            host: m.host,
            facility: m.facility_name,
            severity: m.severity,
            severity_name: m.severity_name,
            app: m.app_name.unwrap_or_default(),
            message: m.message,
        })
        .collect();
    Ok(HttpResponse::Ok().json(Tail { rows, last_id }))
}

/// `GET /logs/export.csv?…filters`: the filtered view as CSV, newest first, at most
/// [`EXPORT_MAX`] rows (`X-Export-Truncated: true` when the view had more).
pub(crate) async fn export(
    req: HttpRequest,
    viewer: Viewer,
    store: web::Data<MessagesStore>,
) -> Result<HttpResponse, PageError> {
    viewer.require(Permission::SupervisionView)?;
    let mut filter = match LogFilter::parse(
        req.query_string(),
        Reader::Page(viewer.tz),
        EXPORT_CHUNK,
        EXPORT_CHUNK,
    ) {
        Ok(f) => f,
        Err(problems) => {
            return Ok(actix_web::ResponseError::error_response(
                &LogsError::Invalid(problems),
            ));
        }
    };
    filter.limit = EXPORT_CHUNK;
    let mut out = csv::Writer::from_writer(Vec::new());
    let header = [
        "id",
        "received_at",
        "host",
        "sender",
        "transport",
        "facility",
        "severity",
        "severity_name",
        "app_name",
        "proc_id",
        "msg_id",
        "timestamp",
        "variant",
        "message",
    ];
    let csv_error = |e: csv::Error| PageError::Internal(format!("CSV export: {e}"));
    out.write_record(header).map_err(csv_error)?;
    let mut written = 0usize;
    let mut truncated = false;
    let tz = viewer.tz;
    let time = |t: DateTime<Utc>| {
        t.with_timezone(&tz)
            .format("%Y-%m-%d %H:%M:%S%:z")
            .to_string()
    };
    'pages: loop {
        let rows = repo::list(store.store(), &filter).await?;
        let full = rows.len() == filter.limit as usize;
        for m in &rows {
            if written == EXPORT_MAX {
                truncated = true;
                break 'pages;
            }
            out.write_record([
                m.id.to_string(),
                time(m.received_at),
                cell(&m.host),
                cell(&m.sender),
                m.transport.clone(),
                m.facility_name.unwrap_or_default().to_owned(),
                m.severity.map(|s| s.to_string()).unwrap_or_default(),
                m.severity_name.unwrap_or_default().to_owned(),
                cell(m.app_name.as_deref().unwrap_or_default()),
                cell(m.proc_id.as_deref().unwrap_or_default()),
                cell(m.msg_id.as_deref().unwrap_or_default()),
                m.timestamp.map(time).unwrap_or_default(),
                m.variant.clone(),
                cell(&m.message),
            ])
            .map_err(csv_error)?;
            written += 1;
        }
        match (full, rows.last()) {
            (true, Some(last)) => filter.before = Some(last.id),
            _ => break,
        }
    }
    let body = out
        .into_inner()
        .map_err(|e| PageError::Internal(format!("CSV export: {e}")))?;
    let name = format!(
        "vigie-syslog-{}.csv",
        Utc::now().with_timezone(&tz).format("%Y%m%d-%H%M%S")
    );
    let mut response = HttpResponse::Ok();
    response
        .insert_header((CONTENT_TYPE, "text/csv; charset=utf-8"))
        .insert_header((
            CONTENT_DISPOSITION,
            format!("attachment; filename=\"{name}\""),
        ))
        .insert_header(("X-Export-Rows", written.to_string()));
    if truncated {
        response.insert_header(("X-Export-Truncated", "true"));
    }
    Ok(response.body(body))
}

/// A text cell made safe for spreadsheets: a cell that starts with `=`, `+`, `-`, `@` (or a tab
/// or carriage return, which some spreadsheets skip before reading a formula) is prefixed with a
/// quote, so it is shown as text instead of being run as a formula. Quoting of commas, quotes
/// and line breaks is the CSV writer's.
pub fn cell(text: &str) -> String {
    match text.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') => format!("'{text}"),
        _ => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::cell;

    #[test]
    fn formulas_are_neutralised() {
        assert_eq!(cell("=HYPERLINK(\"x\")"), "'=HYPERLINK(\"x\")");
        assert_eq!(cell("+1"), "'+1");
        assert_eq!(cell("-2+3"), "'-2+3");
        assert_eq!(cell("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(cell("\t=1"), "'\t=1");
        assert_eq!(cell("link down"), "link down");
        assert_eq!(cell(""), "");
    }
}
