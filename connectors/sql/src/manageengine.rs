//! ManageEngine Applications Manager (its MySQL, or its bundled PostgreSQL): the `Alert` table
//! becomes alerts, `AM_ManagedObject` becomes equipment (monitors, and monitor groups as
//! services), and `AM_MO_DowntimeData` answers the on-demand questions (unavailability periods
//! and statistics of a monitor).
//!
//! The schema is reconstructed (see the reference SOURCES.md §5): `Alert` holds the current state
//! per monitor (`SOURCE` = the monitor's `RESOURCEID` as text) and attribute (`CATEGORY`), updated
//! in place; `MODTIME` (epoch milliseconds) changes on every update, so the table is read
//! incrementally on `(MODTIME, ID)`. Severities are the vendor's 1 critical, 4 warning, 5 clear
//! (2 major, 3 minor and 6 info are the Web NMS codes it inherits, **unverified**; the mapping is
//! a setting). `AM_MO_DowntimeData(RESID, DOWNTIME, UPTIME, TYPE)` is seen only in public code:
//! times are epoch milliseconds, `UPTIME = 0` while the monitor is still down, and `TYPE 2` is
//! taken for scheduled maintenance (**unverified**, the `maintenance_types` setting).
//!
//! A monitor attribute's alert is one alert (event `me-<resource>-<category>`): a change of
//! severity updates it, a clear (5) clears it, a new problem after a clear reopens it.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::json;
use vigie_poll::stats::answer_from_periods;
use vigie_poll::text::{self, RESOURCE_MAX};
use vigie_poll::{
    Answer, Batch, BoxFuture, Equipment, Key, Mark, Period, Positions, Question, Source,
    SourceError,
};
use vigie_source::{Level, RawRecord};

use crate::SourceSpec;
use crate::client::{Client, ClientOptions, Param};
use crate::row::RowView;
use crate::stream::{after, from_epoch_ms, link, settings};

/// The settings of a ManageEngine source (all optional).
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ManageEngineSettings {
    /// Applications Manager's web address, for links to monitors.
    pub base_url: Option<String>,
    pub batch: u32,
    /// Alerts changed this recently (seconds) wait for the next poll.
    pub settle_seconds: u32,
    /// What each severity becomes: `critical`, `warning`, `low`, `clear` or `ignore`.
    pub severities: BTreeMap<String, String>,
    /// What a severity missing from `severities` becomes.
    pub other_severities: String,
    /// Monitors are read into the equipment list.
    pub monitors: bool,
    /// How often the monitors are read again (seconds).
    pub monitors_every_seconds: u64,
    /// `AM_MO_DowntimeData.TYPE` values that are scheduled maintenance, not outages.
    pub maintenance_types: Vec<i64>,
    /// The domain of the alerts when the source's configuration names none.
    pub domain: String,
}

impl Default for ManageEngineSettings {
    fn default() -> ManageEngineSettings {
        let severities = [
            ("1", "critical"),
            ("2", "critical"),
            ("3", "warning"),
            ("4", "warning"),
            ("5", "clear"),
            ("6", "low"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        ManageEngineSettings {
            base_url: None,
            batch: 500,
            settle_seconds: 2,
            severities,
            other_severities: "warning".into(),
            monitors: true,
            monitors_every_seconds: 300,
            maintenance_types: vec![2],
            domain: "applications".into(),
        }
    }
}

/// What a source severity becomes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mapped {
    Raise(Level),
    Clear,
    Ignore,
}

/// Reads `critical`, `warning`, `low`, `clear`, `ignore` (or `2`, `1`, `0`).
pub fn parse_mapped(text: &str) -> Option<Mapped> {
    match text.trim().to_ascii_lowercase().as_str() {
        "critical" | "2" => Some(Mapped::Raise(Level::Critical)),
        "warning" | "1" => Some(Mapped::Raise(Level::Warning)),
        "low" | "0" => Some(Mapped::Raise(Level::Low)),
        "clear" => Some(Mapped::Clear),
        "ignore" | "drop" => Some(Mapped::Ignore),
        _ => None,
    }
}

const ALERTS: &str = "alerts";

/// An Applications Manager database.
pub struct ManageEngine {
    name: String,
    domain: String,
    settings: ManageEngineSettings,
    severities: HashMap<i64, Mapped>,
    other: Mapped,
    client: Client,
    last_monitor_scan: Mutex<Option<Instant>>,
}

impl ManageEngine {
    pub fn new(spec: &SourceSpec) -> Result<ManageEngine, SourceError> {
        let settings: ManageEngineSettings = settings("ManageEngine", &spec.settings)?;
        if settings.batch == 0 {
            return Err(SourceError::Config("batch must be at least 1".into()));
        }
        let mut severities = HashMap::new();
        for (code, target) in &settings.severities {
            let code: i64 = code.trim().parse().map_err(|_| {
                SourceError::Config(format!("severities: `{code}` is not a severity number"))
            })?;
            let mapped = parse_mapped(target).ok_or_else(|| {
                SourceError::Config(format!(
                    "severities.{code}: `{target}` is not one of critical, warning, low, clear, ignore"
                ))
            })?;
            severities.insert(code, mapped);
        }
        let other = parse_mapped(&settings.other_severities).ok_or_else(|| {
            SourceError::Config(format!(
                "other_severities: `{}` is not one of critical, warning, low, clear, ignore",
                settings.other_severities
            ))
        })?;
        let client = Client::new(
            &spec.url,
            ClientOptions {
                init: Vec::new(),
                max_connections: 2,
            },
        )?;
        Ok(ManageEngine {
            name: spec.name.clone(),
            domain: spec
                .domain
                .clone()
                .unwrap_or_else(|| settings.domain.clone()),
            settings,
            severities,
            other,
            client,
            last_monitor_scan: Mutex::new(None),
        })
    }

    async fn read_alerts(
        &self,
        positions: &mut Positions,
        batch: &mut Batch,
    ) -> Result<(), SourceError> {
        let mark = positions.get(ALERTS).cloned();
        let initial = positions.initial(ALERTS);
        let mut params = Vec::new();
        let window = after(Some("a.MODTIME"), "a.ID", mark.as_ref(), &mut params);
        let sql = format!(
            "SELECT a.ID, a.SOURCE, a.CATEGORY, a.SEVERITY, a.MMESSAGE, a.CREATETIME, a.MODTIME \
             FROM Alert a WHERE {window} AND a.MODTIME < {} - ? \
             ORDER BY a.MODTIME, a.ID LIMIT ?",
            self.client.dialect().epoch_ms_now()
        );
        params.push(Param::Int(i64::from(self.settings.settle_seconds) * 1000));
        params.push(Param::Int(i64::from(self.settings.batch)));
        let rows = self.client.query(&sql, &params, false).await?;
        let full = rows.len() >= self.settings.batch as usize;
        batch.rows_read += rows.len() as u64;
        let monitors = if rows.is_empty() {
            HashMap::new()
        } else {
            self.monitor_names(&rows).await?
        };
        let mut last = mark;
        for i in 0..rows.len() {
            let row = RowView::new(&rows, i, "Alert", "ID");
            match self.alert(&row, &monitors) {
                Ok((record, modtime, id)) => {
                    if let Some(record) = record {
                        if let Some(t) = record.occurred_at {
                            batch.newest = batch.newest.max(Some(t));
                        }
                        if !(initial && record.clear) {
                            batch.records.push(record);
                        }
                    }
                    last = Some(Mark {
                        key: Some(Key::Number(modtime)),
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
        if let Some(mut m) = last {
            m.initial = initial && (full || batch.stopped.is_some());
            positions.set(ALERTS, m);
        }
        batch.more |= full && batch.stopped.is_none();
        Ok(())
    }

    /// The monitors named by a batch of alerts: `RESOURCEID → (name, type)`.
    async fn monitor_names(
        &self,
        alerts: &crate::client::Rows,
    ) -> Result<HashMap<String, (String, Option<String>)>, SourceError> {
        let Some(col) = alerts.column("SOURCE") else {
            return Ok(HashMap::new());
        };
        let mut ids: Vec<i64> = alerts
            .rows
            .iter()
            .filter_map(|r| match r.get(col) {
                Some(crate::client::Cell::Text(s)) => s.trim().parse().ok(),
                Some(crate::client::Cell::Int(n)) => Some(*n),
                _ => None,
            })
            .collect();
        ids.sort_unstable();
        ids.dedup();
        if ids.is_empty() {
            return Ok(HashMap::new());
        }
        let marks = vec!["?"; ids.len()].join(", ");
        let sql = format!(
            "SELECT RESOURCEID, RESOURCENAME, DISPLAYNAME, TYPE FROM AM_ManagedObject \
             WHERE RESOURCEID IN ({marks})"
        );
        let params: Vec<Param> = ids.into_iter().map(Param::Int).collect();
        let rows = self.client.query(&sql, &params, false).await?;
        let mut out = HashMap::new();
        for i in 0..rows.len() {
            let row = RowView::new(&rows, i, "AM_ManagedObject", "RESOURCEID");
            let id = row.int("RESOURCEID")?;
            let name = row
                .opt_text("DISPLAYNAME")?
                .filter(|n| !n.trim().is_empty())
                .or(row
                    .opt_text("RESOURCENAME")?
                    .filter(|n| !n.trim().is_empty()))
                .unwrap_or_else(|| format!("monitor {id}"));
            out.insert(id.to_string(), (name, row.opt_text("TYPE")?));
        }
        Ok(out)
    }

    /// One `Alert` row as a record (`None` when its severity is ignored), with its watermark.
    fn alert(
        &self,
        row: &RowView<'_>,
        monitors: &HashMap<String, (String, Option<String>)>,
    ) -> Result<(Option<RawRecord>, i64, i64), SourceError> {
        let id = row.int("ID")?;
        let modtime = row.int("MODTIME")?;
        let resource_id = row.text("SOURCE")?.trim().to_owned();
        if resource_id.is_empty() {
            return Err(SourceError::Data(format!(
                "{}: column `SOURCE` is empty",
                row.label()
            )));
        }
        let category = row
            .opt_text("CATEGORY")?
            .unwrap_or_default()
            .trim()
            .to_owned();
        // The vendor's own screens read a missing severity as "clear".
        let severity = row.opt_int("SEVERITY")?.unwrap_or(5);
        let mapped = self
            .severities
            .get(&severity)
            .copied()
            .unwrap_or(self.other);
        let (level, clear) = match mapped {
            Mapped::Ignore => return Ok((None, modtime, id)),
            Mapped::Clear => (Level::Low, true),
            Mapped::Raise(level) => (level, false),
        };
        let (monitor, monitor_type) = monitors
            .get(&resource_id)
            .cloned()
            .unwrap_or_else(|| (format!("monitor {resource_id}"), None));
        let text_in = row.opt_text("MMESSAGE")?.unwrap_or_default();
        let message = text::html_to_text(&text_in);
        let fallback = format!("{monitor}: severity {severity}");
        let mut record = RawRecord::new(
            &self.name,
            text::one_line(&monitor, RESOURCE_MAX, "monitor"),
            text::message(&message, &fallback),
        );
        record.source_ref = Some(format!("alert/{id}@{modtime}/{severity}"));
        record.domain = Some(self.domain.clone());
        record.level = Some(level);
        record.source_severity = i32::try_from(severity).ok();
        record.occurred_at = from_epoch_ms(modtime);
        record.clear = clear;
        let mut attributes = serde_json::Map::new();
        attributes.insert(
            "event".into(),
            json!(format!("me-{resource_id}-{category}")),
        );
        attributes.insert("resource_id".into(), json!(resource_id));
        attributes.insert("category".into(), json!(category));
        attributes.insert("severity_name".into(), json!(severity_name(severity)));
        if let Some(t) = monitor_type {
            attributes.insert("monitor_type".into(), json!(t));
        }
        if let Some(created) = row.opt_int("CREATETIME")?.and_then(from_epoch_ms) {
            attributes.insert("created_at".into(), json!(created.to_rfc3339()));
        }
        if let Some(base) = &self.settings.base_url {
            attributes.insert(
                "url".into(),
                json!(link(
                    base,
                    &format!(
                        "showresource.do?resourceid={resource_id}&method=showResourceForResourceID"
                    )
                )),
            );
        }
        record.attributes = attributes;
        record.raw = text::raw(row.to_json());
        Ok((Some(record), modtime, id))
    }

    fn monitors_due(&self) -> bool {
        if !self.settings.monitors {
            return false;
        }
        let every = Duration::from_secs(self.settings.monitors_every_seconds.max(1));
        match self.last_monitor_scan.lock() {
            Ok(last) => last.is_none_or(|t| t.elapsed() >= every),
            Err(_) => true,
        }
    }

    async fn read_monitors(&self, batch: &mut Batch) -> Result<(), SourceError> {
        let rows = self
            .client
            .query(
                "SELECT RESOURCEID, RESOURCENAME, TYPE, DISPLAYNAME, DESCRIPTION \
                 FROM AM_ManagedObject ORDER BY RESOURCEID",
                &[],
                false,
            )
            .await?;
        let mut items = Vec::with_capacity(rows.len());
        for i in 0..rows.len() {
            let row = RowView::new(&rows, i, "AM_ManagedObject", "RESOURCEID");
            let id = row.int("RESOURCEID")?;
            let name = row
                .opt_text("DISPLAYNAME")?
                .filter(|n| !n.trim().is_empty())
                .or(row
                    .opt_text("RESOURCENAME")?
                    .filter(|n| !n.trim().is_empty()))
                .unwrap_or_else(|| format!("monitor {id}"));
            let monitor_type = row.opt_text("TYPE")?.unwrap_or_default();
            let mut attributes = serde_json::Map::new();
            attributes.insert("resource_id".into(), json!(id));
            attributes.insert("monitor_type".into(), json!(monitor_type));
            if let Some(r) = row.opt_text("RESOURCENAME")? {
                attributes.insert("resource_name".into(), json!(r));
            }
            if let Some(d) = row.opt_text("DESCRIPTION")?.filter(|d| !d.is_empty()) {
                attributes.insert("description".into(), json!(text::message(&d, "")));
            }
            if let Some(base) = &self.settings.base_url {
                attributes.insert(
                    "url".into(),
                    json!(link(
                        base,
                        &format!(
                            "showresource.do?resourceid={id}&method=showResourceForResourceID"
                        )
                    )),
                );
            }
            // Monitor groups ("HAI") are the services and applications made of monitors.
            let kind = if monitor_type == "HAI" {
                "service"
            } else {
                "monitor"
            };
            items.push(Equipment {
                source_ref: format!("monitor/{id}"),
                name: text::one_line(&name, RESOURCE_MAX, "monitor"),
                kind: kind.into(),
                domain: Some(self.domain.clone()),
                status: None,
                attributes,
                removed: false,
                updated_at: None,
            });
        }
        batch.rows_read += rows.len() as u64;
        batch.equipment.items.extend(items);
        batch.equipment.complete_kinds = vec!["monitor".into(), "service".into()];
        if let Ok(mut last) = self.last_monitor_scan.lock() {
            *last = Some(Instant::now());
        }
        Ok(())
    }

    async fn poll_inner(&self, position: Option<&str>) -> Result<Batch, SourceError> {
        let mut positions = Positions::parse(position)?;
        let mut batch = Batch::default();
        self.read_alerts(&mut positions, &mut batch).await?;
        if batch.stopped.is_none()
            && self.monitors_due()
            && let Err(e) = self.read_monitors(&mut batch).await
        {
            batch.stopped = Some(e);
        }
        batch.position = Some(positions.encode());
        Ok(batch)
    }

    /// The monitor's `RESOURCEID`: the resource as a number, or looked up by name.
    async fn resource_id(&self, resource: &str) -> Result<i64, SourceError> {
        if let Ok(id) = resource.trim().parse::<i64>() {
            return Ok(id);
        }
        let rows = self
            .client
            .query(
                "SELECT RESOURCEID FROM AM_ManagedObject WHERE DISPLAYNAME = ? OR RESOURCENAME = ? \
                 ORDER BY RESOURCEID LIMIT 1",
                &[Param::Text(resource.into()), Param::Text(resource.into())],
                false,
            )
            .await?;
        if rows.is_empty() {
            return Err(SourceError::Unsupported(format!(
                "no monitor named `{}` in Applications Manager",
                text::one_line(resource, 100, "")
            )));
        }
        RowView::new(&rows, 0, "AM_ManagedObject", "RESOURCEID").int("RESOURCEID")
    }

    /// The downtimes of a monitor overlapping `[from, to)`, clipped to it.
    async fn periods(
        &self,
        resource: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<Period>, SourceError> {
        let id = self.resource_id(resource).await?;
        let (from_ms, to_ms) = (from.timestamp_millis(), to.timestamp_millis());
        let rows = self
            .client
            .query(
                "SELECT DOWNTIME, UPTIME, TYPE FROM AM_MO_DowntimeData \
                 WHERE RESID = ? AND DOWNTIME < ? AND (UPTIME = 0 OR UPTIME IS NULL OR UPTIME > ?) \
                 ORDER BY DOWNTIME",
                &[Param::Int(id), Param::Int(to_ms), Param::Int(from_ms)],
                false,
            )
            .await?;
        let mut periods = Vec::with_capacity(rows.len());
        for i in 0..rows.len() {
            let row = RowView::new(&rows, i, "AM_MO_DowntimeData", "DOWNTIME");
            let down = row.int("DOWNTIME")?;
            let up = row.opt_int("UPTIME")?.filter(|u| *u > 0);
            let kind = row.opt_int("TYPE")?.unwrap_or(1);
            let start = from_epoch_ms(down.max(from_ms)).unwrap_or(from);
            let end = up.and_then(|u| from_epoch_ms(u.min(to_ms)));
            periods.push(Period {
                start,
                end,
                kind: if self.settings.maintenance_types.contains(&kind) {
                    "maintenance".into()
                } else {
                    "outage".into()
                },
                detail: Some(format!("type {kind}")),
            });
        }
        Ok(periods)
    }
}

/// The severity labels of Applications Manager (1, 4, 5 from the vendor; the others inherited
/// from Web NMS, unverified).
pub fn severity_name(severity: i64) -> &'static str {
    match severity {
        1 => "Critical",
        2 => "Major",
        3 => "Minor",
        4 => "Warning",
        5 => "Clear",
        6 => "Info",
        _ => "Unknown",
    }
}

impl Source for ManageEngine {
    fn name(&self) -> &str {
        &self.name
    }

    fn kind(&self) -> &str {
        "manageengine"
    }

    fn domain(&self) -> Option<&str> {
        Some(&self.domain)
    }

    fn poll<'a>(&'a self, position: Option<&'a str>) -> BoxFuture<'a, Result<Batch, SourceError>> {
        Box::pin(self.poll_inner(position))
    }

    fn ask<'a>(&'a self, question: &'a Question) -> BoxFuture<'a, Result<Answer, SourceError>> {
        Box::pin(answer_from_periods(
            question,
            "ManageEngine",
            |resource, from, to| self.periods(resource, from, to),
        ))
    }

    fn ping(&self) -> BoxFuture<'_, Result<(), SourceError>> {
        Box::pin(self.client.ping())
    }
}
