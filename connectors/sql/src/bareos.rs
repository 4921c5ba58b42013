//! A Bareos (or Bacula) catalog: finished jobs of the `Job` table become backup alerts.
//!
//! Schema: Bareos `core/src/cats/ddl/creates/postgresql.sql` (catalog 2230); PostgreSQL folds the
//! unquoted mixed-case names of the DDL to lower case, which the client matches without regard to
//! case, so the same statement reads Bacula's MySQL catalog too. Jobs are read once finished, in
//! `(EndTime, JobId)` order. `JobStatus` (the catalog's `Status` table): `T` completed clears the
//! job's alert, `W` terminated with warnings, `A` canceled, `D` verify differences and `I`
//! incomplete raise a warning, `E`/`e` errors and `f` fatal errors raise a critical alert.
//!
//! One alert per job resource (event `bareos-job-<Name>`): a failed night raises it, the next
//! successful run clears it. Times are `timestamp without time zone` in the director's zone:
//! `utc_offset_minutes` says how it relates to UTC.

use chrono::Utc;
use serde::Deserialize;
use serde_json::json;
use vigie_poll::text::{self, RESOURCE_MAX};
use vigie_poll::{Answer, Batch, BoxFuture, Key, Mark, Positions, Question, Source, SourceError};
use vigie_source::{Level, RawRecord};

use crate::SourceSpec;
use crate::client::{Client, ClientOptions, Param};
use crate::row::RowView;
use crate::stream::{after, settings, utc};

/// The settings of a Bareos/Bacula source (all optional).
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BareosSettings {
    pub batch: u32,
    pub settle_seconds: u32,
    /// Job types read (`B` backup, `C` copy, `g` migration, `V` verify, `R` restore, …).
    pub types: Vec<String>,
    /// The first read covers the jobs that ended in the last days only.
    pub initial_days: u32,
    /// The catalog's times minus this many minutes are UTC (the director's zone).
    pub utc_offset_minutes: i32,
    /// The domain of the alerts when the source's configuration names none.
    pub domain: String,
}

impl Default for BareosSettings {
    fn default() -> BareosSettings {
        BareosSettings {
            batch: 500,
            settle_seconds: 2,
            types: vec!["B".into()],
            initial_days: 1,
            utc_offset_minutes: 0,
            domain: "backup".into(),
        }
    }
}

/// Statuses of finished jobs (`jcr.h` `JS_*`).
const FINISHED: &str = "'T', 'W', 'E', 'e', 'f', 'A', 'D', 'I'";
const JOBS: &str = "jobs";

/// A Bareos/Bacula catalog.
pub struct Bareos {
    name: String,
    domain: String,
    settings: BareosSettings,
    client: Client,
}

impl Bareos {
    pub fn new(spec: &SourceSpec) -> Result<Bareos, SourceError> {
        let settings: BareosSettings = settings("Bareos", &spec.settings)?;
        if settings.batch == 0 {
            return Err(SourceError::Config("batch must be at least 1".into()));
        }
        if settings.types.is_empty()
            || settings
                .types
                .iter()
                .any(|t| t.chars().count() != 1 || !t.chars().all(|c| c.is_ascii_alphabetic()))
        {
            return Err(SourceError::Config(
                "types must list job type letters (B, C, g, V, …)".into(),
            ));
        }
        let client = Client::new(
            &spec.url,
            ClientOptions {
                init: Vec::new(),
                max_connections: 2,
            },
        )?;
        Ok(Bareos {
            name: spec.name.clone(),
            domain: spec
                .domain
                .clone()
                .unwrap_or_else(|| settings.domain.clone()),
            settings,
            client,
        })
    }

    async fn poll_inner(&self, position: Option<&str>) -> Result<Batch, SourceError> {
        let mut positions = Positions::parse(position)?;
        let mut batch = Batch::default();
        let mark = positions.get(JOBS).cloned();
        let mut params = Vec::new();
        let window = match &mark {
            Some(_) => after(Some("j.EndTime"), "j.JobId", mark.as_ref(), &mut params),
            None => {
                let since = Utc::now().naive_utc()
                    + chrono::Duration::minutes(i64::from(self.settings.utc_offset_minutes))
                    - chrono::Duration::days(i64::from(self.settings.initial_days));
                params.push(Param::Time(since));
                "j.EndTime >= ?".to_owned()
            }
        };
        let types = vec!["?"; self.settings.types.len()].join(", ");
        params.extend(self.settings.types.iter().map(|t| Param::Text(t.clone())));
        let sql = format!(
            "SELECT j.JobId, j.Job, j.Name, j.Type, j.Level, j.JobStatus, j.StartTime, j.EndTime, \
             j.JobFiles, j.JobBytes, j.JobErrors, c.Name AS ClientName \
             FROM Job j LEFT JOIN Client c ON c.ClientId = j.ClientId \
             WHERE {window} AND j.EndTime < {} AND j.Type IN ({types}) AND j.JobStatus IN ({FINISHED}) \
             ORDER BY j.EndTime, j.JobId LIMIT ?",
            self.client
                .dialect()
                .now_minus(self.settings.settle_seconds)
        );
        params.push(Param::Int(i64::from(self.settings.batch)));
        let rows = self.client.query(&sql, &params, false).await?;
        let full = rows.len() >= self.settings.batch as usize;
        batch.rows_read = rows.len() as u64;
        let mut last = mark;
        for i in 0..rows.len() {
            let row = RowView::new(&rows, i, "Job", "JobId");
            match self.job(&row) {
                Ok((record, key, id)) => {
                    batch.newest = batch.newest.max(record.occurred_at);
                    batch.records.push(record);
                    last = Some(Mark {
                        key: Some(key),
                        id,
                        initial: false,
                    });
                }
                Err(e) => {
                    batch.stopped = Some(e);
                    break;
                }
            }
        }
        if let Some(m) = last {
            positions.set(JOBS, m);
        }
        batch.more = full && batch.stopped.is_none();
        batch.position = Some(positions.encode());
        Ok(batch)
    }

    fn job(&self, row: &RowView<'_>) -> Result<(RawRecord, Key, i64), SourceError> {
        let id = row.int("JobId")?;
        let name = row.text("Name")?;
        let status = row.text("JobStatus")?.trim().to_owned();
        let ended = row
            .opt_time("EndTime")?
            .ok_or_else(|| SourceError::Data(format!("{}: EndTime is NULL", row.label())))?;
        let level_code = row.opt_text("Level")?.unwrap_or_default().trim().to_owned();
        let client = row.opt_text("ClientName")?.filter(|c| !c.is_empty());
        let errors = row.opt_int("JobErrors")?.unwrap_or(0);
        let (level, clear) = match status.as_str() {
            "T" => (Level::Low, true),
            "E" | "e" | "f" => (Level::Critical, false),
            _ => (Level::Warning, false),
        };
        let on = client
            .as_deref()
            .map(|c| format!(" on {c}"))
            .unwrap_or_default();
        let error_count = if errors > 0 {
            format!(", {errors} error(s)")
        } else {
            String::new()
        };
        let message = format!(
            "Backup job {name} ({}){on}: {}{error_count}",
            level_name(&level_code),
            status_text(&status)
        );
        let mut record = RawRecord::new(
            &self.name,
            text::one_line(&name, RESOURCE_MAX, "job"),
            text::message(&message, "backup job"),
        );
        record.source_ref = Some(format!("job/{id}"));
        record.domain = Some(self.domain.clone());
        record.level = Some(level);
        record.occurred_at = Some(utc(ended, self.settings.utc_offset_minutes));
        record.clear = clear;
        let mut attributes = serde_json::Map::new();
        attributes.insert("event".into(), json!(format!("bareos-job-{name}")));
        attributes.insert("job_id".into(), json!(id));
        attributes.insert("job_status".into(), json!(status));
        attributes.insert("job_level".into(), json!(level_code));
        if let Some(job) = row.opt_text("Job")? {
            attributes.insert("job".into(), json!(job));
        }
        if let Some(c) = client {
            attributes.insert("client".into(), json!(c));
        }
        for column in ["JobFiles", "JobBytes", "JobErrors"] {
            if let Some(v) = row.opt_int(column)? {
                attributes.insert(column.to_ascii_lowercase(), json!(v));
            }
        }
        record.attributes = attributes;
        record.raw = text::raw(row.to_json());
        Ok((record, Key::Time(ended), id))
    }
}

/// The catalog's `Status.JobStatusLong` texts of finished jobs.
pub fn status_text(status: &str) -> &'static str {
    match status {
        "T" => "completed successfully",
        "W" => "terminated with warnings",
        "e" => "non-fatal error",
        "E" => "terminated with errors",
        "A" => "canceled by user",
        "f" => "fatal error",
        "D" => "verify found differences",
        "I" => "incomplete job",
        _ => "finished",
    }
}

fn level_name(level: &str) -> &str {
    match level {
        "F" => "Full",
        "I" => "Incremental",
        "D" => "Differential",
        "f" => "VirtualFull",
        "" => "job",
        other => other,
    }
}

impl Source for Bareos {
    fn name(&self) -> &str {
        &self.name
    }

    fn kind(&self) -> &str {
        "bareos"
    }

    fn domain(&self) -> Option<&str> {
        Some(&self.domain)
    }

    fn poll<'a>(&'a self, position: Option<&'a str>) -> BoxFuture<'a, Result<Batch, SourceError>> {
        Box::pin(self.poll_inner(position))
    }

    fn ask<'a>(&'a self, _question: &'a Question) -> BoxFuture<'a, Result<Answer, SourceError>> {
        Box::pin(async {
            Err(SourceError::Unsupported(
                "a backup catalog holds jobs, not availability".into(),
            ))
        })
    }

    fn ping(&self) -> BoxFuture<'_, Result<(), SourceError>> {
        Box::pin(self.client.ping())
    }
}
