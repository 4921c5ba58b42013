//! Backups: what backup scripts report (`vigie backup report`, `POST /api/v1/backups`), the
//! watcher that turns the reports into alerts, and the expected jobs whose missing report raises
//! "backup missing".
//!
//! The hub's backup table is a source like the others: the watcher reads the new rows of
//! `backups` in id order and submits their alerts with its watermark (checkpoint `backups`) in
//! the same transaction, so a report is turned into an alert exactly once whatever the crashes.
//! - `error` raises a critical alert (event `backup-failed`, resource = the job);
//! - `ok` clears it; any report clears the job's "backup missing" alert;
//! - an expected job (schedule + deadline) with no report (received or ended) between a scheduled
//!   start and its deadline raises a warning (event `backup-missing`), once per missed run.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Datelike, Duration as Span, NaiveTime, Utc, Weekday};
use serde_json::{Map, Value, json};
use tokio::sync::{Notify, watch};
use vigie_core::Level;
use vigie_core::http::FieldProblem;
use vigie_core::store::Store;
use vigie_poll::text;
use vigie_source::{Checkpoint, Ingest, RawRecord, Submission};

use crate::repo::{self, Backup, NewBackup};

/// The `source` of backup alerts and the name of the watcher's checkpoint.
pub const BACKUP_SOURCE: &str = "backups";
pub const FAILED_EVENT: &str = "backup-failed";
pub const MISSING_EVENT: &str = "backup-missing";

const JOB_MAX: usize = 200;
const MESSAGE_MAX: usize = 4000;

/// Checks a report as the API receives it (a JSON object) and names every bad field.
pub fn parse_report(
    body: &Value,
    reported_by: Option<&str>,
) -> Result<NewBackup, Vec<FieldProblem>> {
    let mut problems = Vec::new();
    let mut problem = |field: &str, p: &str| {
        problems.push(FieldProblem {
            field: field.into(),
            problem: p.into(),
        })
    };
    let Some(map) = body.as_object() else {
        return Err(vec![FieldProblem {
            field: "body".into(),
            problem: "must be a JSON object with `job` and `status`".into(),
        }]);
    };
    for key in map.keys() {
        if !matches!(
            key.as_str(),
            "job" | "status" | "message" | "started" | "ended"
        ) {
            problem(
                key,
                "is not a field of a backup report (job, status, message, started, ended)",
            );
        }
    }
    let text_of = |key: &str, problem: &mut dyn FnMut(&str, &str)| -> Option<String> {
        match map.get(key) {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(_) => {
                problem(key, "must be a string");
                None
            }
        }
    };
    let job = text_of("job", &mut problem);
    let status = text_of("status", &mut problem);
    let message = text_of("message", &mut problem);
    let started = text_of("started", &mut problem);
    let ended = text_of("ended", &mut problem);
    match check_report(
        job.as_deref(),
        status.as_deref(),
        message.as_deref(),
        started.as_deref(),
        ended.as_deref(),
        reported_by,
    ) {
        Ok(b) if problems.is_empty() => Ok(b),
        Ok(_) => Err(problems),
        Err(more) => {
            for p in more {
                if !problems.iter().any(|q| q.field == p.field) {
                    problems.push(p);
                }
            }
            Err(problems)
        }
    }
}

/// Checks a report's parts (the command line gives them one by one).
pub fn check_report(
    job: Option<&str>,
    status: Option<&str>,
    message: Option<&str>,
    started: Option<&str>,
    ended: Option<&str>,
    reported_by: Option<&str>,
) -> Result<NewBackup, Vec<FieldProblem>> {
    let mut problems = Vec::new();
    let mut problem = |field: &str, p: String| {
        problems.push(FieldProblem {
            field: field.into(),
            problem: p,
        })
    };
    let job = job.map(str::trim).unwrap_or_default();
    if job.is_empty() {
        problem("job", "is required: the backup job's name".into());
    } else if job.chars().count() > JOB_MAX {
        problem("job", format!("is longer than {JOB_MAX} characters"));
    } else if job.chars().any(char::is_control) {
        problem("job", "must be one line without control characters".into());
    }
    let status = match status.map(str::trim) {
        Some("ok") => "ok",
        Some("error") => "error",
        Some(other) => {
            problem(
                "status",
                format!("`{}` is not `ok` or `error`", text::one_line(other, 40, "")),
            );
            ""
        }
        None => {
            problem("status", "is required: `ok` or `error`".into());
            ""
        }
    };
    let message = message.map(str::trim).filter(|m| !m.is_empty());
    if let Some(m) = message {
        if m.chars().count() > MESSAGE_MAX {
            problem(
                "message",
                format!("is longer than {MESSAGE_MAX} characters"),
            );
        } else if m.contains('\0') {
            problem("message", "contains a NUL character".into());
        }
    }
    let mut time = |field: &str, value: Option<&str>| -> Option<DateTime<Utc>> {
        let v = value?.trim();
        match DateTime::parse_from_rfc3339(v) {
            Ok(t) => Some(t.with_timezone(&Utc)),
            Err(_) => {
                problem(
                    field,
                    format!(
                        "`{}` is not an RFC 3339 time (2025-01-14T23:05:00Z)",
                        text::one_line(v, 40, "")
                    ),
                );
                None
            }
        }
    };
    let started_at = time("started", started);
    let ended_at = time("ended", ended);
    if let (Some(s), Some(e)) = (started_at, ended_at)
        && e < s
    {
        problem("ended", "is before `started`".into());
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    Ok(NewBackup {
        job: job.to_owned(),
        status: status.to_owned(),
        message: message.map(str::to_owned),
        started_at,
        ended_at,
        reported_by: reported_by.map(str::to_owned),
    })
}

/// When an expected job runs: days of the week and times of day, in UTC.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Schedule {
    days: [bool; 7],
    times: Vec<NaiveTime>,
}

impl Schedule {
    /// Parses `daily 23:00`, `weekdays 01:30`, `weekends 02:00`, `mon,wed,fri 02:30`,
    /// `daily 02:00,14:00`.
    pub fn parse(text: &str) -> Result<Schedule, String> {
        let mut parts = text.split_whitespace();
        let (Some(days), Some(times), None) = (parts.next(), parts.next(), parts.next()) else {
            return Err(
                "expected `DAYS HH:MM[,HH:MM…]` (days: daily, weekdays, weekends or mon,tue,…)"
                    .into(),
            );
        };
        let mut mask = [false; 7];
        match days.to_ascii_lowercase().as_str() {
            "daily" | "everyday" => mask = [true; 7],
            "weekdays" => mask[..5].fill(true),
            "weekends" => mask[5..].fill(true),
            list => {
                for d in list.split(',') {
                    let i = match d {
                        "mon" => 0,
                        "tue" => 1,
                        "wed" => 2,
                        "thu" => 3,
                        "fri" => 4,
                        "sat" => 5,
                        "sun" => 6,
                        other => {
                            return Err(format!(
                                "`{other}` is not a day (mon … sun, daily, weekdays, weekends)"
                            ));
                        }
                    };
                    mask[i] = true;
                }
            }
        }
        let mut list = Vec::new();
        for t in times.split(',') {
            let time = NaiveTime::parse_from_str(t, "%H:%M")
                .map_err(|_| format!("`{t}` is not a time of day (HH:MM)"))?;
            list.push(time);
        }
        list.sort();
        list.dedup();
        Ok(Schedule {
            days: mask,
            times: list,
        })
    }

    /// The latest scheduled start at or before `at`.
    pub fn last_due(&self, at: DateTime<Utc>) -> Option<DateTime<Utc>> {
        for back in 0..8 {
            let day = (at - Span::days(back)).date_naive();
            let index = match day.weekday() {
                Weekday::Mon => 0,
                Weekday::Tue => 1,
                Weekday::Wed => 2,
                Weekday::Thu => 3,
                Weekday::Fri => 4,
                Weekday::Sat => 5,
                Weekday::Sun => 6,
            };
            if !self.days[index] {
                continue;
            }
            let due = self
                .times
                .iter()
                .rev()
                .map(|t| day.and_time(*t).and_utc())
                .find(|d| *d <= at);
            if due.is_some() {
                return due;
            }
        }
        None
    }
}

/// Parses a deadline: seconds, or `90s`, `30m`, `2h`, `1d`.
pub fn parse_duration(value: &Value) -> Result<i64, String> {
    let seconds = match value {
        Value::Number(n) => n.as_i64().ok_or("must be a whole number of seconds")?,
        Value::String(s) => {
            let s = s.trim();
            let (digits, unit) =
                s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
            let n: i64 = digits
                .parse()
                .map_err(|_| format!("`{s}` is not a duration (90s, 30m, 2h, 1d)"))?;
            let factor = match unit {
                "" | "s" => 1,
                "m" => 60,
                "h" => 3600,
                "d" => 86_400,
                _ => return Err(format!("`{s}` is not a duration (90s, 30m, 2h, 1d)")),
            };
            n.saturating_mul(factor)
        }
        _ => return Err("must be a number of seconds or a duration (2h)".into()),
    };
    if seconds <= 0 || seconds > 7 * 86_400 {
        return Err("must be between 1 second and 7 days".into());
    }
    Ok(seconds)
}

/// How the watcher works.
#[derive(Clone, Debug)]
pub struct WatcherSettings {
    /// How often it looks for reports and missed deadlines (a report also wakes it at once).
    pub tick: Duration,
    /// Reports turned into alerts per transaction, at most.
    pub batch: u32,
    /// The domain of backup alerts.
    pub domain: Option<String>,
}

impl Default for WatcherSettings {
    fn default() -> WatcherSettings {
        WatcherSettings {
            tick: Duration::from_secs(15),
            batch: 500,
            domain: Some("backup".into()),
        }
    }
}

/// Wakes the watcher when a report was stored.
#[derive(Clone, Debug, Default)]
pub struct BackupNotifier(Arc<Notify>);

impl BackupNotifier {
    pub fn notify(&self) {
        self.0.notify_one();
    }
}

/// What one step of the watcher did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Step {
    pub reports: usize,
    pub missing: Vec<String>,
}

/// Turns reports into alerts and checks the expected jobs.
pub struct BackupWatcher {
    store: Store,
    ingest: Arc<dyn Ingest>,
    settings: WatcherSettings,
    notifier: BackupNotifier,
    /// The last scheduled run checked per job (each run is checked once).
    checked: HashMap<String, DateTime<Utc>>,
}

impl BackupWatcher {
    pub fn new(store: Store, ingest: Arc<dyn Ingest>, settings: WatcherSettings) -> BackupWatcher {
        BackupWatcher {
            store,
            ingest,
            settings,
            notifier: BackupNotifier::default(),
            checked: HashMap::new(),
        }
    }

    pub fn notifier(&self) -> BackupNotifier {
        self.notifier.clone()
    }

    /// Runs until told to stop.
    pub async fn run(mut self, mut stop: watch::Receiver<bool>) {
        loop {
            if let Err(e) = self.step(Utc::now()).await {
                tracing::warn!(error = %e, "Backup watcher step failed; retrying.");
            }
            tokio::select! {
                _ = tokio::time::sleep(self.settings.tick) => {}
                _ = self.notifier.0.notified() => {}
                changed = stop.changed() => {
                    if changed.is_err() || *stop.borrow() {
                        return;
                    }
                }
            }
        }
    }

    /// Processes the new reports, then the expected jobs' deadlines at `now`.
    pub async fn step(&mut self, now: DateTime<Utc>) -> Result<Step, String> {
        let mut step = Step::default();
        loop {
            let n = self.reports().await?;
            step.reports += n;
            if n < self.settings.batch as usize {
                break;
            }
        }
        step.missing = self.deadlines(now).await?;
        Ok(step)
    }

    async fn reports(&mut self) -> Result<usize, String> {
        let after = vigie_alerts::repo::checkpoint(&self.store, BACKUP_SOURCE)
            .await
            .map_err(|e| e.to_string())?
            .and_then(|p| p.trim().parse::<i64>().ok())
            .unwrap_or(0);
        let rows = repo::backups_after(&self.store, after, self.settings.batch)
            .await
            .map_err(|e| e.to_string())?;
        let Some(last) = rows.last().map(|b| b.id) else {
            return Ok(0);
        };
        let mut records = Vec::with_capacity(rows.len() * 2);
        for b in &rows {
            records.extend(self.report_records(b));
        }
        self.ingest
            .submit(Submission {
                records,
                checkpoint: Some(Checkpoint {
                    source: BACKUP_SOURCE.into(),
                    position: last.to_string(),
                }),
            })
            .await
            .map_err(|e| e.to_string())?;
        Ok(rows.len())
    }

    fn record(&self, job: &str, message: &str, event: &str) -> RawRecord {
        let mut r = RawRecord::new(
            BACKUP_SOURCE,
            text::one_line(job, text::RESOURCE_MAX, "backup"),
            text::message(message, "backup"),
        );
        r.domain = self.settings.domain.clone();
        r.attributes.insert("event".into(), json!(event));
        r.attributes.insert("job".into(), json!(job));
        r
    }

    /// A report's records: its own (raise or clear of the failure) and the clear of "missing".
    fn report_records(&self, b: &Backup) -> Vec<RawRecord> {
        let detail = b
            .message
            .as_deref()
            .map(|m| format!(": {m}"))
            .unwrap_or_default();
        let failed = b.status == "error";
        let message = if failed {
            format!("Backup job {} failed{detail}", b.job)
        } else {
            format!("Backup job {} succeeded{detail}", b.job)
        };
        let mut own = self.record(&b.job, &message, FAILED_EVENT);
        own.source_ref = Some(format!("backup/{}", b.id));
        own.level = Some(if failed { Level::Critical } else { Level::Low });
        own.clear = !failed;
        own.occurred_at = Some(b.ended_at.or(b.started_at).unwrap_or(b.received_at));
        own.attributes.insert("status".into(), json!(b.status));
        own.attributes.insert("report_id".into(), json!(b.id));
        let mut raw = Map::new();
        raw.insert("id".into(), json!(b.id));
        raw.insert("job".into(), json!(b.job));
        raw.insert("status".into(), json!(b.status));
        raw.insert("message".into(), json!(b.message));
        raw.insert("started".into(), json!(b.started_at));
        raw.insert("ended".into(), json!(b.ended_at));
        raw.insert("received".into(), json!(b.received_at));
        own.raw = text::raw(Value::Object(raw));
        let mut missing = self.record(
            &b.job,
            &format!("Backup job {} reported", b.job),
            MISSING_EVENT,
        );
        missing.level = Some(Level::Warning);
        missing.clear = true;
        vec![own, missing]
    }

    async fn deadlines(&mut self, now: DateTime<Utc>) -> Result<Vec<String>, String> {
        let jobs = repo::list_jobs(&self.store)
            .await
            .map_err(|e| e.to_string())?;
        let mut raised = Vec::new();
        for job in jobs.into_iter().filter(|j| j.enabled) {
            let schedule = match Schedule::parse(&job.schedule) {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(job = %job.job, error = %e, "Backup job schedule cannot be read.");
                    continue;
                }
            };
            let Some(due) = schedule.last_due(now - Span::seconds(job.deadline_seconds)) else {
                continue;
            };
            // No alert for runs scheduled before the job was expected.
            if due < job.created_at || self.checked.get(&job.job) == Some(&due) {
                continue;
            }
            let reported = repo::reported_since(&self.store, &job.job, due)
                .await
                .map_err(|e| e.to_string())?;
            if !reported {
                let deadline = due + Span::seconds(job.deadline_seconds);
                let message = format!(
                    "Backup job {} has not reported: run due at {} UTC, deadline {} UTC",
                    job.job,
                    due.format("%Y-%m-%d %H:%M"),
                    deadline.format("%Y-%m-%d %H:%M")
                );
                let mut r = self.record(&job.job, &message, MISSING_EVENT);
                r.source_ref = Some(format!(
                    "backup-missing/{}/{}",
                    job.job,
                    due.format("%Y-%m-%dT%H:%MZ")
                ));
                r.level = Some(Level::Warning);
                r.occurred_at = Some(deadline);
                r.attributes.insert("due".into(), json!(due));
                r.attributes.insert("schedule".into(), json!(job.schedule));
                self.ingest
                    .submit(Submission {
                        records: vec![r],
                        checkpoint: None,
                    })
                    .await
                    .map_err(|e| e.to_string())?;
                tracing::warn!(job = %job.job, due = %due, "Backup missing.");
                raised.push(job.job.clone());
            }
            self.checked.insert(job.job, due);
        }
        Ok(raised)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, 0)
            .single()
            .unwrap_or_default()
    }

    #[test]
    fn schedules_find_the_last_run() {
        let s = Schedule::parse("daily 23:00").ok();
        // 2025-01-14 is a Tuesday.
        assert_eq!(
            s.as_ref().and_then(|s| s.last_due(at(2025, 1, 14, 22, 0))),
            Some(at(2025, 1, 13, 23, 0))
        );
        assert_eq!(
            s.as_ref().and_then(|s| s.last_due(at(2025, 1, 14, 23, 0))),
            Some(at(2025, 1, 14, 23, 0))
        );
        let w = Schedule::parse("mon,fri 02:30,14:00").ok();
        assert_eq!(
            w.as_ref().and_then(|s| s.last_due(at(2025, 1, 14, 12, 0))),
            Some(at(2025, 1, 13, 14, 0))
        );
        let weekdays = Schedule::parse("weekdays 01:00").ok();
        // Sunday 2025-01-19 → Friday 17th.
        assert_eq!(
            weekdays.and_then(|s| s.last_due(at(2025, 1, 19, 12, 0))),
            Some(at(2025, 1, 17, 1, 0))
        );
        assert!(Schedule::parse("daily").is_err());
        assert!(Schedule::parse("someday 01:00").is_err());
        assert!(Schedule::parse("daily 25:00").is_err());
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration(&json!("2h")), Ok(7200));
        assert_eq!(parse_duration(&json!(90)), Ok(90));
        assert_eq!(parse_duration(&json!("30m")), Ok(1800));
        assert!(parse_duration(&json!("2 weeks")).is_err());
        assert!(parse_duration(&json!(0)).is_err());
        assert!(parse_duration(&json!("9d")).is_err());
    }

    #[test]
    fn reports_name_their_bad_fields() {
        let ok = parse_report(
            &json!({"job": "nightly", "status": "ok", "started": "2025-01-14T23:05:00Z"}),
            None,
        );
        assert_eq!(ok.as_ref().map(|b| b.job.as_str()), Ok("nightly"));
        let fields = |v: Value| -> Vec<String> {
            parse_report(&v, None)
                .err()
                .unwrap_or_default()
                .into_iter()
                .map(|p| p.field)
                .collect()
        };
        assert_eq!(fields(json!({"status": "ok"})), ["job"]);
        assert_eq!(fields(json!({"job": "x", "status": "fine"})), ["status"]);
        assert_eq!(
            fields(json!({"job": "x", "status": "ok", "started": "yesterday"})),
            ["started"]
        );
        assert_eq!(
            fields(
                json!({"job": "x", "status": "ok", "started": "2025-01-14T23:05:00Z", "ended": "2025-01-14T22:00:00Z"})
            ),
            ["ended"]
        );
        assert_eq!(
            fields(json!({"job": "x", "status": "ok", "extra": 1})),
            ["extra"]
        );
        assert_eq!(fields(json!({"job": 3, "status": "ok"})), ["job"]);
        assert_eq!(fields(json!([1])), ["body"]);
    }
}
