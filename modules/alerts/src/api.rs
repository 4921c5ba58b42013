//! The alerts HTTP API: push (`POST /api/v1/alerts`), list and show, and the rules reload.
//!
//! Controllers are thin: authenticate, check the permission, parse, call the pipeline or the
//! repository, answer. A pushed batch is all or nothing: one bad element rejects the batch, and
//! the answer lists every problem with its element's position and field.

use std::path::PathBuf;

use actix_web::http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use vigie_auth::Caller;
use vigie_core::Level;
use vigie_core::http::FieldProblem;
use vigie_core::role::Permission;
use vigie_core::store::Store;
use vigie_source::{Effect, IngestError, RawRecord, Submission};

use crate::error::AlertsError;
use crate::pipeline::Pipeline;
use crate::repo::{self, AlertFilter};

/// Limits of the push API.
#[derive(Clone, Debug)]
pub struct ApiLimits {
    pub max_body_bytes: usize,
    pub max_batch: usize,
}

/// Where the rules are reloaded from (`None`: the shipped rules).
#[derive(Clone, Debug)]
pub struct RulesFile(pub Option<PathBuf>);

/// Mounts the module's routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/api/v1/alerts")
            .route(web::post().to(push))
            .route(web::get().to(list)),
    )
    .service(web::resource("/api/v1/alerts/{id}").route(web::get().to(show)))
    .service(web::resource("/api/v1/rules/reload").route(web::post().to(reload_rules)));
}

/// An alert as a tool pushes it (INTERFACE.md).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PushedAlert {
    source: String,
    resource: String,
    message: String,
    #[serde(default)]
    source_ref: Option<Value>,
    #[serde(default)]
    domain: Option<String>,
    #[serde(default)]
    severity: Option<i64>,
    #[serde(default)]
    source_severity: Option<i64>,
    #[serde(default)]
    occurred_at: Option<String>,
    #[serde(default)]
    attributes: Option<Map<String, Value>>,
    #[serde(default)]
    raw: Option<Value>,
    #[serde(default)]
    clear: Option<bool>,
}

#[derive(Serialize)]
struct PushResult {
    id: Option<i64>,
    effect: &'static str,
}

#[derive(Serialize)]
struct PushAnswer {
    /// One per pushed alert, in order: the alert it was stored in (null when dropped by a rule
    /// or when a clear found nothing to clear).
    ids: Vec<Option<i64>>,
    results: Vec<PushResult>,
}

async fn push(
    req: HttpRequest,
    caller: Caller,
    body: web::Payload,
    pipeline: web::Data<Pipeline>,
    limits: web::Data<ApiLimits>,
) -> Result<HttpResponse, AlertsError> {
    caller.require(Permission::AlertsIngest)?;
    if let Some(content_type) = req.headers().get(CONTENT_TYPE) {
        let ct = content_type
            .to_str()
            .unwrap_or_default()
            .to_ascii_lowercase();
        let essence = ct.split(';').next().unwrap_or_default().trim();
        if essence != "application/json" && !essence.ends_with("+json") {
            return Err(AlertsError::UnsupportedMediaType);
        }
    }
    let too_large = || {
        AlertsError::TooLarge(format!(
            "the body is over the limit of {} bytes; send smaller batches",
            limits.max_body_bytes
        ))
    };
    let announced = req
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if announced.is_some_and(|n| n > limits.max_body_bytes) {
        return Err(too_large());
    }
    let bytes = body
        .to_bytes_limited(limits.max_body_bytes)
        .await
        .map_err(|_| too_large())?
        .map_err(|e| {
            AlertsError::Invalid(vec![FieldProblem {
                field: "body".into(),
                problem: format!("could not be read: {e}"),
            }])
        })?;

    let (pushed, batch) = parse_body(&bytes)?;
    if pushed.len() > limits.max_batch {
        return Err(AlertsError::TooLarge(format!(
            "a batch of {} alerts is over the limit of {}",
            pushed.len(),
            limits.max_batch
        )));
    }
    let records = to_records(pushed, batch)?;
    let outcomes = pipeline
        .submit(Submission {
            records,
            checkpoint: None,
        })
        .await
        .map_err(|e| match e {
            // A single alert's problems are named without the batch position.
            IngestError::Invalid(problems) if !batch => AlertsError::Invalid(
                problems
                    .into_iter()
                    .map(|p| FieldProblem {
                        field: p.field.into(),
                        problem: p.problem,
                    })
                    .collect(),
            ),
            other => AlertsError::Ingest(other),
        })?;
    let answer = PushAnswer {
        ids: outcomes.iter().map(|o| o.alert_id).collect(),
        results: outcomes
            .iter()
            .map(|o| PushResult {
                id: o.alert_id,
                effect: Effect::name(o.effect),
            })
            .collect(),
    };
    Ok(HttpResponse::Accepted().json(answer))
}

/// Parses one object or an array of objects; returns them and whether it was an array.
fn parse_body(bytes: &[u8]) -> Result<(Vec<PushedAlert>, bool), AlertsError> {
    let first = bytes.iter().find(|b| !b.is_ascii_whitespace()).copied();
    let batch = first == Some(b'[');
    if first.is_none() {
        return Err(invalid(
            "body",
            "is empty: send a JSON object or an array of objects",
        ));
    }
    if !batch && first != Some(b'{') {
        return Err(invalid(
            "body",
            "must be a JSON object or an array of objects",
        ));
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let parsed = if batch {
        serde_path_to_error::deserialize::<_, Vec<PushedAlert>>(&mut de)
    } else {
        serde_path_to_error::deserialize::<_, PushedAlert>(&mut de).map(|a| vec![a])
    };
    let alerts = parsed.map_err(|e| {
        let path = e.path().to_string();
        AlertsError::Invalid(vec![json_problem(&path, e.inner())])
    })?;
    de.end()
        .map_err(|e| AlertsError::Invalid(vec![json_problem("", &e)]))?;
    if batch && alerts.is_empty() {
        return Err(invalid(
            "body",
            "is an empty array: send at least one alert",
        ));
    }
    Ok((alerts, batch))
}

/// Names the field of a serde error: the path, completed with the field a `missing field` or
/// `unknown field` message is about.
fn json_problem(path: &str, e: &serde_json::Error) -> FieldProblem {
    let message = e.to_string();
    let named = ["missing field `", "unknown field `"]
        .iter()
        .find_map(|prefix| message.strip_prefix(prefix))
        .and_then(|rest| rest.split('`').next());
    // Syntax errors have no meaningful path (serde_path_to_error says `?`): the body is at fault.
    let path = if path == "." || e.is_syntax() || e.is_eof() {
        ""
    } else {
        path
    };
    let field = match (named, path) {
        (Some(name), p) if p == name || p.ends_with(&format!(".{name}")) => p.to_owned(),
        (Some(name), "") => name.to_owned(),
        (Some(name), p) => format!("{p}.{name}"),
        (None, "") => "body".to_owned(),
        (None, p) => p.to_owned(),
    };
    let problem = if e.is_syntax() || e.is_eof() {
        format!("is not valid JSON: {message}")
    } else {
        // serde's own position ("at line 1 column 42") is noise once the field is named.
        message
            .split(" at line ")
            .next()
            .unwrap_or(&message)
            .to_owned()
    };
    FieldProblem { field, problem }
}

fn invalid(field: &str, problem: &str) -> AlertsError {
    AlertsError::Invalid(vec![FieldProblem {
        field: field.into(),
        problem: problem.into(),
    }])
}

/// Checks what JSON typing cannot (ranges, time formats) and builds the records.
fn to_records(pushed: Vec<PushedAlert>, batch: bool) -> Result<Vec<RawRecord>, AlertsError> {
    let mut problems = Vec::new();
    let mut records = Vec::with_capacity(pushed.len());
    for (i, p) in pushed.into_iter().enumerate() {
        let mut problem = |field: &str, text: String| {
            let field = if batch {
                format!("[{i}].{field}")
            } else {
                field.to_owned()
            };
            problems.push(FieldProblem {
                field,
                problem: text,
            });
        };
        let level = match p.severity {
            None => None,
            Some(n) => {
                let level = Level::from_number(n);
                if level.is_none() {
                    problem(
                        "severity",
                        format!("{n} is out of range: 0 (low), 1 (warning) or 2 (critical)"),
                    );
                }
                level
            }
        };
        let source_severity = match p.source_severity.map(i32::try_from) {
            None => None,
            Some(Ok(n)) => Some(n),
            Some(Err(_)) => {
                problem(
                    "source_severity",
                    "is out of the 32-bit integer range".into(),
                );
                None
            }
        };
        let source_ref = match p.source_ref {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s),
            Some(Value::Number(n)) if n.is_i64() || n.is_u64() => Some(n.to_string()),
            Some(_) => {
                problem("source_ref", "must be a string or an integer".into());
                None
            }
        };
        let occurred_at = match p.occurred_at.as_deref().map(DateTime::parse_from_rfc3339) {
            None => None,
            Some(Ok(t)) => Some(t.with_timezone(&Utc)),
            Some(Err(e)) => {
                problem(
                    "occurred_at",
                    format!(
                        "`{}` is not an RFC 3339 time such as 2026-11-21T08:30:00Z ({e})",
                        p.occurred_at.as_deref().unwrap_or_default()
                    ),
                );
                None
            }
        };
        let mut record = RawRecord::new(p.source, p.resource, p.message);
        record.source_ref = source_ref;
        record.domain = p.domain;
        record.level = level;
        record.source_severity = source_severity;
        record.occurred_at = occurred_at;
        record.attributes = p.attributes.unwrap_or_default();
        record.raw = p.raw;
        record.clear = p.clear.unwrap_or(false);
        records.push(record);
    }
    if problems.is_empty() {
        Ok(records)
    } else {
        Err(AlertsError::Invalid(problems))
    }
}

const STATES: [&str; 7] = [
    "new",
    "transferred",
    "acknowledged",
    "deferred",
    "cleared",
    "archived",
    "deleted",
];

const LIST_LIMIT_DEFAULT: u32 = 100;
/// Longest value of one list filter (a search text, a resource name).
const FILTER_VALUE_MAX: usize = 256;
const LIST_LIMIT_MAX: u32 = 1000;

/// Parses the list's query string; every bad parameter is reported.
fn parse_filter(query: &str) -> Result<AlertFilter, AlertsError> {
    let pairs = web::Query::<Vec<(String, String)>>::from_query(query)
        .map_err(|e| invalid("query", &format!("cannot be parsed: {e}")))?
        .into_inner();
    let mut filter = AlertFilter {
        limit: LIST_LIMIT_DEFAULT,
        ..AlertFilter::default()
    };
    let mut problems = Vec::new();
    let mut problem = |field: &str, text: String| {
        problems.push(FieldProblem {
            field: field.into(),
            problem: text,
        })
    };
    let list = |v: &str| -> Vec<String> {
        v.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect()
    };
    let time = |v: &str| DateTime::parse_from_rfc3339(v).map(|t| t.with_timezone(&Utc));
    for (key, value) in pairs {
        if value.chars().count() > FILTER_VALUE_MAX {
            problem(
                &key,
                format!("is longer than {FILTER_VALUE_MAX} characters"),
            );
            continue;
        }
        match key.as_str() {
            "state" => {
                for s in list(&value) {
                    if STATES.contains(&s.as_str()) {
                        filter.states.push(s);
                    } else {
                        problem(
                            "state",
                            format!("`{s}` is not a state (expected {})", STATES.join(", ")),
                        );
                    }
                }
            }
            "severity" => {
                for s in list(&value) {
                    match s.parse::<i64>().ok().and_then(Level::from_number) {
                        Some(l) => filter.severities.push(l.number()),
                        None => problem("severity", format!("`{s}` is not 0, 1 or 2")),
                    }
                }
            }
            "domain" => filter.domains.extend(list(&value)),
            "source" => filter.sources.extend(list(&value)),
            "resource" => filter.resource = Some(value),
            "q" => filter.text = Some(value).filter(|v| !v.trim().is_empty()),
            "from" => match time(&value) {
                Ok(t) => filter.seen_from = Some(t),
                Err(_) => problem("from", format!("`{value}` is not an RFC 3339 time")),
            },
            "to" => match time(&value) {
                Ok(t) => filter.seen_to = Some(t),
                Err(_) => problem("to", format!("`{value}` is not an RFC 3339 time")),
            },
            "before" => match value.parse::<i64>() {
                Ok(id) => filter.after_id = Some(id),
                Err(_) => problem("before", format!("`{value}` is not an alert id")),
            },
            "limit" => match value.parse::<u32>() {
                Ok(n) if (1..=LIST_LIMIT_MAX).contains(&n) => filter.limit = n,
                _ => problem(
                    "limit",
                    format!("`{value}` is not a number from 1 to {LIST_LIMIT_MAX}"),
                ),
            },
            other => problem(
                other,
                "is not a known parameter (state, severity, domain, source, resource, q, from, to, before, limit)".into(),
            ),
        }
    }
    if problems.is_empty() {
        Ok(filter)
    } else {
        Err(AlertsError::Invalid(problems))
    }
}

/// `GET /api/v1/alerts`: newest first (by last seen). When the page is full, the
/// `X-Next-Before` header carries the id to pass as `before` for the next page.
async fn list(
    req: HttpRequest,
    caller: Caller,
    store: web::Data<Store>,
) -> Result<HttpResponse, AlertsError> {
    caller.require(Permission::AlertsView)?;
    let filter = parse_filter(req.query_string())?;
    let alerts = repo::list(&store, &filter).await?;
    let mut response = HttpResponse::Ok();
    if alerts.len() == filter.limit as usize
        && let Some(last) = alerts.last()
    {
        response.insert_header(("X-Next-Before", last.id.to_string()));
    }
    Ok(response.json(alerts))
}

async fn show(
    req: HttpRequest,
    caller: Caller,
    store: web::Data<Store>,
) -> Result<HttpResponse, AlertsError> {
    caller.require(Permission::AlertsView)?;
    let raw_id = req.match_info().get("id").unwrap_or_default();
    let id = raw_id
        .parse::<i64>()
        .map_err(|_| invalid("id", &format!("`{raw_id}` is not an alert id")))?;
    let alert = repo::get(&store, id)
        .await?
        .ok_or(AlertsError::NotFound(id))?;
    Ok(HttpResponse::Ok().json(alert))
}

#[derive(Serialize)]
struct ReloadAnswer {
    rules: usize,
}

/// `POST /api/v1/rules/reload` (administrator): re-reads the rules file. A file with problems
/// leaves the rules in force unchanged and lists every problem.
async fn reload_rules(
    caller: Caller,
    pipeline: web::Data<Pipeline>,
    file: web::Data<RulesFile>,
) -> Result<HttpResponse, AlertsError> {
    caller.require(Permission::AdminRules)?;
    let count = pipeline
        .reload_rules(file.0.as_deref())
        .map_err(AlertsError::RulesInvalid)?;
    tracing::info!(rules = count, by = %caller.login, "Qualification rules reloaded.");
    Ok(HttpResponse::Ok().json(ReloadAnswer { rules: count }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problems(body: &str) -> Vec<(String, String)> {
        let result = parse_body(body.as_bytes()).and_then(|(p, batch)| to_records(p, batch));
        match result {
            Err(AlertsError::Invalid(ps)) => ps.into_iter().map(|p| (p.field, p.problem)).collect(),
            Err(other) => vec![("?".into(), other.to_string())],
            Ok(_) => Vec::new(),
        }
    }

    #[test]
    fn a_good_single_alert_and_batch_parse() {
        let one = r#"{"source":"s","resource":"r","message":"m","severity":2,"source_ref":42}"#;
        let Ok((alerts, batch)) = parse_body(one.as_bytes()) else {
            panic!("single alert refused");
        };
        assert!(!batch);
        let records = to_records(alerts, batch).map_err(|e| e.to_string());
        assert_eq!(
            records.map(|r| (r[0].level, r[0].source_ref.clone())),
            Ok((Some(Level::Critical), Some("42".into())))
        );
        assert!(problems(&format!("[{one},{one}]")).is_empty());
    }

    #[test]
    fn problems_name_the_field() {
        let p = problems(r#"{"source":"s","resource":"r"}"#);
        assert_eq!(p[0].0, "message", "{p:?}");
        let p = problems(
            r#"[{"source":"s","resource":"r","message":"m"},{"source":"s","resource":"r","message":"m","sevrity":1}]"#,
        );
        assert_eq!(p[0].0, "[1].sevrity", "{p:?}");
        let p = problems(r#"{"source":"s","resource":"r","message":"m","severity":"high"}"#);
        assert_eq!(p[0].0, "severity", "{p:?}");
        let p = problems(r#"{"source":"s","resource":"r","message":"m","severity":5}"#);
        assert_eq!(p[0].0, "severity");
        assert!(p[0].1.contains("out of range"), "{p:?}");
        let p =
            problems(r#"[{"source":"s","resource":"r","message":"m","occurred_at":"yesterday"}]"#);
        assert_eq!(p[0].0, "[0].occurred_at");
        let p = problems(r#"{"source":"s""#);
        assert_eq!(p[0].0, "body", "{p:?}");
        assert!(p[0].1.contains("not valid JSON"), "{p:?}");
        assert_eq!(problems("[]")[0].0, "body");
        assert_eq!(problems("42")[0].0, "body");
        let p = problems(r#"{"source":"s","resource":"r","message":"m"} {}"#);
        assert_eq!(p[0].0, "body", "{p:?}");
    }

    #[test]
    fn list_filters_are_checked() {
        let f =
            parse_filter("state=new,cleared&severity=2&limit=10&q=disk").map_err(|e| e.to_string());
        assert_eq!(
            f.map(|f| (f.states, f.severities, f.limit, f.text)),
            Ok((
                vec!["new".to_owned(), "cleared".to_owned()],
                vec![2],
                10,
                Some("disk".to_owned())
            ))
        );
        let long = format!("q={}", "x".repeat(300));
        assert!(matches!(parse_filter(&long), Err(AlertsError::Invalid(ps)) if ps[0].field == "q"));
        match parse_filter("state=open&severity=9&limit=0&color=red") {
            Err(AlertsError::Invalid(ps)) => {
                let fields: Vec<_> = ps.iter().map(|p| p.field.as_str()).collect();
                assert_eq!(fields, ["state", "severity", "limit", "color"]);
            }
            other => panic!("expected problems, got {other:?}"),
        }
    }
}
