//! SolarWinds Orion (`kind = "solarwinds"`, database `SolarWindsOrion`), after the reference
//! SOURCES.md §3:
//!
//! - `SysLog`, read on `MsgID` → alerts by the study's mapping (severity 0–1 critical, 2 warning,
//!   3–4 low, 5–7 not alerts; message = host + message; domain network; date = `DateTime`). The
//!   `_UNICODE` columns win over the `_ANSI` ones when set.
//! - `Traps`, read on `TrapID` → alerts, the trap type and its varbinds (`TrapVarbinds`) kept.
//! - `AlertActive` + `AlertObjects` + `AlertConfigurations` → one alert per triggered alert object
//!   (Orion's severity mapped); an alert that leaves `AlertActive` (reset) is cleared. The set of
//!   active alerts is kept in the committed position, so a reset seen after a restart still clears.
//! - `Nodes` → equipment with Orion's status mapped (a code not in the list shows as `unknown`,
//!   its number kept); on demand, a node's status, CPU, memory and `CPULoad` history.
//!
//! Every code table is a setting; codes nobody listed are raised at `unknown_level`, never dropped.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, json};
use vigie_poll::text::{self, RESOURCE_MAX};
use vigie_poll::{Answer, Batch, BoxFuture, Equipment, Question, Source, SourceError};
use vigie_source::{Level, RawRecord};

use crate::Spec;
use crate::client::{Client, Param, Rows};
use crate::map::{Mapped, code_table, parse_level, recent_column, settings, table_name, utc};
use crate::row::RowView;

/// The settings of an Orion source (all optional).
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OrionSettings {
    /// Rows read per table and poll.
    pub batch: u32,
    /// Syslog rows and traps received this recently (seconds, by the server's clock) wait for the
    /// next poll.
    pub settle_seconds: u32,
    /// The first read of `SysLog`/`Traps` starts this many rows before the newest.
    pub initial_rows: u32,
    pub syslog: bool,
    pub traps: bool,
    pub alerts: bool,
    pub nodes: bool,
    pub nodes_every_seconds: u64,
    /// `SysLogSeverity` → critical, warning, low, clear, ignore.
    pub syslog_levels: BTreeMap<String, String>,
    /// `AlertConfigurations.Severity` → level.
    pub alert_levels: BTreeMap<String, String>,
    pub trap_level: String,
    /// The level of a code no table lists (shown as `unknown`, the code kept).
    pub unknown_level: String,
    /// Read `TrapVarbinds` for the traps' varbinds.
    pub varbinds: bool,
    /// The server's offset from UTC in minutes (Orion stores local times).
    pub utc_offset_minutes: i32,
    pub schema: String,
    /// Orion's web address, for links to nodes.
    pub base_url: Option<String>,
    pub domain: String,
}

impl Default for OrionSettings {
    fn default() -> OrionSettings {
        let table = |pairs: &[(&str, &str)]| {
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect()
        };
        OrionSettings {
            batch: 1000,
            settle_seconds: 2,
            initial_rows: 1000,
            syslog: true,
            traps: true,
            alerts: true,
            nodes: true,
            nodes_every_seconds: 300,
            syslog_levels: table(&[
                ("0", "critical"),
                ("1", "critical"),
                ("2", "warning"),
                ("3", "low"),
                ("4", "low"),
                ("5", "ignore"),
                ("6", "ignore"),
                ("7", "ignore"),
            ]),
            alert_levels: table(&[
                ("0", "low"),
                ("1", "warning"),
                ("2", "critical"),
                ("3", "critical"),
                ("4", "low"),
            ]),
            trap_level: "warning".into(),
            unknown_level: "warning".into(),
            varbinds: true,
            utc_offset_minutes: 0,
            schema: "dbo".into(),
            base_url: None,
            domain: "network".into(),
        }
    }
}

/// Orion's node status codes (Opserver's list, with 25 and 28–30 from a second reader).
pub fn node_status(code: i64) -> Option<&'static str> {
    Some(match code {
        0 => "unknown",
        1 => "up",
        2 => "down",
        3 => "warning",
        4 => "shutdown",
        5 => "testing",
        6 => "dormant",
        7 => "not present",
        8 => "lower layer down",
        9 => "unmanaged",
        10 => "unplugged",
        11 => "external",
        12 => "unreachable",
        14 => "critical",
        15 => "partly available",
        16 => "misconfigured",
        17 => "could not poll",
        19 => "unconfirmed",
        22 => "active",
        24 => "inactive",
        25 => "expired",
        26 => "monitoring disabled",
        27 => "disabled",
        28 => "not licensed",
        29 => "other",
        30 => "not running",
        _ => return None,
    })
}

/// Orion's alert severities (community queries; no vendor document found).
pub fn alert_severity_name(code: i64) -> &'static str {
    match code {
        0 => "informational",
        1 => "warning",
        2 => "critical",
        3 => "serious",
        4 => "notice",
        _ => "unknown",
    }
}

/// An active alert as remembered in the position, to clear it once it resets.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct ActiveRef {
    resource: String,
    event: String,
}

/// The committed position of an Orion source.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
struct OrionPosition {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    syslog: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    traps: Option<i64>,
    /// `AlertActiveID` → its alert; `None` before the first read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    active: Option<BTreeMap<String, ActiveRef>>,
}

fn parse_position(position: Option<&str>) -> Result<OrionPosition, SourceError> {
    match position.map(str::trim) {
        None | Some("") => Ok(OrionPosition::default()),
        Some(text) => serde_json::from_str(text).map_err(|e| {
            SourceError::Config(format!(
                "the stored watermark `{}` cannot be read ({e}); delete the source's checkpoint to read it again",
                text::one_line(text, 200, "")
            ))
        }),
    }
}

struct Tables {
    syslog: String,
    traps: String,
    varbinds: String,
    active: String,
    objects: String,
    configurations: String,
    nodes: String,
    cpu: String,
}

/// A SolarWinds Orion database.
pub struct Orion {
    name: String,
    domain: String,
    settings: OrionSettings,
    syslog_levels: HashMap<i64, Mapped>,
    alert_levels: HashMap<i64, Mapped>,
    trap_level: Level,
    unknown_level: Level,
    tables: Tables,
    client: Client,
    last_nodes: Mutex<Option<Instant>>,
}

/// A node's figures, on demand (defined with the question, in vigie-poll).
pub use vigie_poll::{LoadSample, NodeReport};

impl Orion {
    pub fn new(spec: &Spec) -> Result<Orion, SourceError> {
        let settings: OrionSettings = settings("solarwinds", &spec.settings)?;
        if settings.batch == 0 {
            return Err(SourceError::Config("batch must be at least 1".into()));
        }
        let t = |key: &str, name: &str| table_name(key, &settings.schema, name);
        let tables = Tables {
            syslog: t("SysLog", "SysLog")?,
            traps: t("Traps", "Traps")?,
            varbinds: t("TrapVarbinds", "TrapVarbinds")?,
            active: t("AlertActive", "AlertActive")?,
            objects: t("AlertObjects", "AlertObjects")?,
            configurations: t("AlertConfigurations", "AlertConfigurations")?,
            nodes: t("Nodes", "Nodes")?,
            cpu: t("CPULoad", "CPULoad")?,
        };
        Ok(Orion {
            name: spec.name.clone(),
            domain: spec
                .domain
                .clone()
                .unwrap_or_else(|| settings.domain.clone()),
            syslog_levels: code_table("syslog_levels", &settings.syslog_levels)?,
            alert_levels: code_table("alert_levels", &settings.alert_levels)?,
            trap_level: parse_level("trap_level", &settings.trap_level)?,
            unknown_level: parse_level("unknown_level", &settings.unknown_level)?,
            tables,
            client: Client::new(&spec.url)?,
            settings,
            last_nodes: Mutex::new(None),
        })
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    fn record(&self, resource: &str, message: &str, fallback: &str) -> RawRecord {
        let mut r = RawRecord::new(
            &self.name,
            text::one_line(resource, RESOURCE_MAX, "unknown host"),
            text::message(message, fallback),
        );
        r.domain = Some(self.domain.clone());
        r
    }

    /// The statement a poll sends for `SysLog` (`@P1` = the last `MsgID` read): a range of the
    /// clustered primary key, so SQL Server seeks to the new rows. Public for the benchmark.
    pub fn syslog_sql(&self) -> String {
        format!(
            "SELECT TOP ({}) MsgID, DateTime, IP, Acknowledged, SysLogFacility, SysLogSeverity, \
             Hostname_ANSI, Hostname_UNICODE, NodeID, MessageType_ANSI, MessageType_UNICODE, \
             Message_ANSI, Message_UNICODE, SysLogTag_ANSI, SysLogTag_UNICODE, {} \
             FROM {} WHERE MsgID > @P1 ORDER BY MsgID",
            self.settings.batch,
            recent_column("DateTime", self.settings.settle_seconds),
            self.tables.syslog
        )
    }

    /// Where the first read of an id-ordered table starts: `initial_rows` before its newest.
    async fn start_of(&self, table: &str, id: &str) -> Result<i64, SourceError> {
        let rows = self
            .client
            .query(
                table,
                &format!("SELECT MAX({id}) AS newest FROM {table}"),
                &[],
            )
            .await?;
        let newest = if rows.is_empty() {
            None
        } else {
            RowView::new(&rows, 0, table, "newest").opt_int("newest")?
        };
        Ok(newest.map_or(0, |n| n - i64::from(self.settings.initial_rows)))
    }

    async fn read_syslog(
        &self,
        position: &mut OrionPosition,
        batch: &mut Batch,
    ) -> Result<(), SourceError> {
        let after = match position.syslog {
            Some(id) => id,
            None => self.start_of(&self.tables.syslog, "MsgID").await?,
        };
        let sql = self.syslog_sql();
        let rows = self
            .client
            .query("SysLog", &sql, &[Param::Int(after)])
            .await?;
        batch.rows_read += rows.len() as u64;
        batch.more |= rows.len() >= self.settings.batch as usize;
        let mut last = after;
        for i in 0..rows.len() {
            let row = RowView::new(&rows, i, "SysLog", "MsgID");
            if row.opt_int("vigie_recent").ok().flatten() == Some(1) {
                batch.more = false;
                break;
            }
            match self.syslog_row(&row) {
                Ok((id, record)) => {
                    if let Some(r) = record {
                        batch.newest = batch.newest.max(r.occurred_at);
                        batch.records.push(r);
                    }
                    last = id;
                }
                Err(e) => {
                    batch.stopped.get_or_insert(e);
                    batch.more = false;
                    break;
                }
            }
        }
        position.syslog = Some(last);
        Ok(())
    }

    /// The Unicode column when set, else the ANSI one.
    fn either(row: &RowView<'_>, base: &str) -> Result<Option<String>, SourceError> {
        Ok(match row.opt_nonblank(&format!("{base}_UNICODE"))? {
            Some(s) => Some(s),
            None => row.opt_nonblank(&format!("{base}_ANSI"))?,
        })
    }

    fn syslog_row(&self, row: &RowView<'_>) -> Result<(i64, Option<RawRecord>), SourceError> {
        let id = row.int("MsgID")?;
        let severity = row.int("SysLogSeverity")?;
        let (level, known) = match self.syslog_levels.get(&severity) {
            Some(Mapped::Raise(level)) => (*level, true),
            Some(Mapped::Ignore) | Some(Mapped::Clear) => return Ok((id, None)),
            None => (self.unknown_level, false),
        };
        let ip = row.opt_nonblank("IP")?;
        let host = Self::either(row, "Hostname")?
            .or(ip.clone())
            .unwrap_or_else(|| "unknown host".into());
        let message = Self::either(row, "Message")?.unwrap_or_default();
        let message_type = Self::either(row, "MessageType")?;
        let tag = Self::either(row, "SysLogTag")?;
        let mut r = self.record(
            &host,
            &format!("{host} {message}"),
            &format!("{host}: syslog severity {severity}"),
        );
        r.source_ref = Some(format!("syslog/{id}"));
        r.level = Some(level);
        r.source_severity = i32::try_from(severity).ok();
        r.occurred_at = Some(utc(row.time("DateTime")?, self.settings.utc_offset_minutes));
        let mut a = Map::new();
        if let Some(t) = message_type.as_ref().or(tag.as_ref()) {
            a.insert("event".into(), json!(format!("syslog:{t}")));
        }
        a.insert("kind".into(), json!("syslog"));
        if let Some(f) = row.opt_int("SysLogFacility")? {
            a.insert("facility".into(), json!(f));
        }
        if let Some(ip) = ip {
            a.insert("ip".into(), json!(ip));
        }
        if let Some(n) = row.opt_int("NodeID")?.filter(|n| *n != 0) {
            a.insert("node_id".into(), json!(n));
        }
        if let Some(t) = message_type {
            a.insert("message_type".into(), json!(t));
        }
        if let Some(t) = tag {
            a.insert("tag".into(), json!(t));
        }
        if !known {
            a.insert("severity_unknown".into(), json!(true));
            a.insert("status".into(), json!("unknown"));
        }
        r.attributes = a;
        r.raw = text::raw(row.to_json());
        Ok((id, Some(r)))
    }

    async fn read_traps(
        &self,
        position: &mut OrionPosition,
        batch: &mut Batch,
    ) -> Result<(), SourceError> {
        let after = match position.traps {
            Some(id) => id,
            None => self.start_of(&self.tables.traps, "TrapID").await?,
        };
        let sql = format!(
            "SELECT TOP ({}) TrapID, DateTime, IPAddress, Community_ANSI, Community_Unicode, \
             Tag_ANSI, Tag_Unicode, Hostname_ANSI, Hostname_Unicode, NodeID, TrapType, Message, {} \
             FROM {} WHERE TrapID > @P1 ORDER BY TrapID",
            self.settings.batch,
            recent_column("DateTime", self.settings.settle_seconds),
            self.tables.traps
        );
        let rows = self
            .client
            .query("Traps", &sql, &[Param::Int(after)])
            .await?;
        batch.rows_read += rows.len() as u64;
        let full = rows.len() >= self.settings.batch as usize;
        let varbinds = if self.settings.varbinds && !rows.is_empty() {
            self.varbinds(&rows).await?
        } else {
            HashMap::new()
        };
        let mut last = after;
        let mut stopped = false;
        for i in 0..rows.len() {
            let row = RowView::new(&rows, i, "Traps", "TrapID");
            if row.opt_int("vigie_recent").ok().flatten() == Some(1) {
                stopped = true;
                break;
            }
            match self.trap_row(&row, &varbinds) {
                Ok((id, r)) => {
                    batch.newest = batch.newest.max(r.occurred_at);
                    batch.records.push(r);
                    last = id;
                }
                Err(e) => {
                    batch.stopped.get_or_insert(e);
                    stopped = true;
                    break;
                }
            }
        }
        batch.more |= full && !stopped;
        position.traps = Some(last);
        Ok(())
    }

    async fn varbinds(
        &self,
        traps: &Rows,
    ) -> Result<HashMap<i64, Vec<serde_json::Value>>, SourceError> {
        let Some(col) = traps.column("TrapID") else {
            return Ok(HashMap::new());
        };
        let ids: Vec<i64> = traps
            .rows
            .iter()
            .filter_map(|r| match r.get(col) {
                Some(crate::client::Cell::Int(n)) => Some(*n),
                _ => None,
            })
            .collect();
        let (Some(lo), Some(hi)) = (ids.iter().min(), ids.iter().max()) else {
            return Ok(HashMap::new());
        };
        let sql = format!(
            "SELECT TrapID, TrapIndex, OID, OIDName, OIDValue FROM {} \
             WHERE TrapID >= @P1 AND TrapID <= @P2 ORDER BY TrapID, TrapIndex",
            self.tables.varbinds
        );
        let rows = self
            .client
            .query("TrapVarbinds", &sql, &[Param::Int(*lo), Param::Int(*hi)])
            .await?;
        let mut out: HashMap<i64, Vec<serde_json::Value>> = HashMap::new();
        for i in 0..rows.len() {
            let row = RowView::new(&rows, i, "TrapVarbinds", "TrapID");
            out.entry(row.int("TrapID")?).or_default().push(json!({
                "oid": row.opt_text("OID")?,
                "name": row.opt_text("OIDName")?,
                "value": row.opt_text("OIDValue")?,
            }));
        }
        Ok(out)
    }

    fn trap_row(
        &self,
        row: &RowView<'_>,
        varbinds: &HashMap<i64, Vec<serde_json::Value>>,
    ) -> Result<(i64, RawRecord), SourceError> {
        let id = row.int("TrapID")?;
        let ip = row.opt_nonblank("IPAddress")?;
        let host = match row.opt_nonblank("Hostname_Unicode")? {
            Some(h) => Some(h),
            None => row.opt_nonblank("Hostname_ANSI")?,
        }
        .or(ip.clone())
        .unwrap_or_else(|| "unknown host".into());
        let trap_type = row
            .opt_nonblank("TrapType")?
            .unwrap_or_else(|| "trap".into());
        let message = row.opt_nonblank("Message")?.unwrap_or_default();
        let mut r = self.record(
            &host,
            &format!("{host} {trap_type} {message}"),
            &format!("{host}: {trap_type}"),
        );
        r.source_ref = Some(format!("trap/{id}"));
        r.level = Some(self.trap_level);
        r.occurred_at = Some(utc(row.time("DateTime")?, self.settings.utc_offset_minutes));
        let mut a = Map::new();
        a.insert("event".into(), json!(format!("trap:{trap_type}")));
        a.insert("kind".into(), json!("trap"));
        a.insert("trap_type".into(), json!(trap_type));
        if let Some(ip) = ip {
            a.insert("ip".into(), json!(ip));
        }
        if let Some(n) = row.opt_int("NodeID")?.filter(|n| *n != 0) {
            a.insert("node_id".into(), json!(n));
        }
        r.attributes = a;
        let mut raw = row.to_json();
        if let serde_json::Value::Object(m) = &mut raw {
            m.insert(
                "varbinds".into(),
                json!(varbinds.get(&id).cloned().unwrap_or_default()),
            );
        }
        r.raw = text::raw(raw);
        Ok((id, r))
    }

    async fn read_active(
        &self,
        position: &mut OrionPosition,
        batch: &mut Batch,
    ) -> Result<(), SourceError> {
        let sql = format!(
            "SELECT aa.AlertActiveID, aa.AlertObjectID, aa.TriggeredDateTime, aa.TriggeredMessage, \
             aa.Acknowledged, aa.AcknowledgedBy, ao.AlertID, ao.EntityCaption, ao.EntityType, \
             ao.EntityNetObjectId, ao.RelatedNodeCaption, ao.RelatedNodeId, ac.Name, ac.Severity \
             FROM {} aa JOIN {} ao ON ao.AlertObjectID = aa.AlertObjectID \
             JOIN {} ac ON ac.AlertID = ao.AlertID ORDER BY aa.AlertActiveID",
            self.tables.active, self.tables.objects, self.tables.configurations
        );
        let rows = self.client.query("AlertActive", &sql, &[]).await?;
        batch.rows_read += rows.len() as u64;
        let before = position.active.take().unwrap_or_default();
        let mut now_active = BTreeMap::new();
        for i in 0..rows.len() {
            let row = RowView::new(&rows, i, "AlertActive", "AlertActiveID");
            let id = match row.int("AlertActiveID") {
                Ok(id) => id,
                Err(e) => {
                    // The set is only complete when every row was read: keep the old one.
                    position.active = Some(before);
                    batch.stopped.get_or_insert(e);
                    return Ok(());
                }
            };
            let key = id.to_string();
            if let Some(known) = before.get(&key) {
                now_active.insert(key, known.clone());
                continue;
            }
            match self.active_row(&row, id) {
                Ok((r, known)) => {
                    batch.newest = batch.newest.max(r.occurred_at);
                    batch.records.push(r);
                    now_active.insert(key, known);
                }
                Err(e) => {
                    position.active = Some(before);
                    batch.stopped.get_or_insert(e);
                    return Ok(());
                }
            }
        }
        for (id, gone) in &before {
            if now_active.contains_key(id) {
                continue;
            }
            let mut r = self.record(
                &gone.resource,
                &format!("{}: Orion alert reset", gone.resource),
                "Orion alert reset",
            );
            r.source_ref = Some(format!("alert-active/{id}/reset"));
            r.clear = true;
            r.occurred_at = Some(Utc::now());
            r.attributes.insert("event".into(), json!(gone.event));
            r.attributes.insert("kind".into(), json!("alert"));
            batch.records.push(r);
        }
        position.active = Some(now_active);
        Ok(())
    }

    fn active_row(
        &self,
        row: &RowView<'_>,
        id: i64,
    ) -> Result<(RawRecord, ActiveRef), SourceError> {
        let object = row.int("AlertObjectID")?;
        let severity = row.opt_int("Severity")?;
        let (level, known) = match severity.and_then(|s| self.alert_levels.get(&s)) {
            Some(Mapped::Raise(level)) => (*level, true),
            // A severity mapped to clear or ignore still marks an active alert: keep it low.
            Some(_) => (Level::Low, true),
            None => (self.unknown_level, false),
        };
        let resource = match row.opt_nonblank("EntityCaption")? {
            Some(c) => c,
            None => row
                .opt_nonblank("RelatedNodeCaption")?
                .unwrap_or_else(|| format!("alert object {object}")),
        };
        let name = row
            .opt_nonblank("Name")?
            .unwrap_or_else(|| "Orion alert".into());
        let message = row.opt_nonblank("TriggeredMessage")?;
        let event = format!("orion-alert-{object}");
        let text_out = match &message {
            Some(m) => format!("{resource}: {name}: {m}"),
            None => format!("{resource}: {name}"),
        };
        let mut r = self.record(&resource, &text_out, &name);
        r.source_ref = Some(format!("alert-active/{id}"));
        r.level = Some(level);
        r.source_severity = severity.and_then(|s| i32::try_from(s).ok());
        r.occurred_at = row
            .opt_time("TriggeredDateTime")?
            .map(|t| utc(t, self.settings.utc_offset_minutes));
        let mut a = Map::new();
        a.insert("event".into(), json!(event));
        a.insert("kind".into(), json!("alert"));
        a.insert("alert_name".into(), json!(name));
        a.insert(
            "severity_name".into(),
            json!(severity.map_or("unknown", alert_severity_name)),
        );
        if !known {
            a.insert("status".into(), json!("unknown"));
            a.insert("severity_code".into(), json!(severity));
        }
        if let Some(t) = row.opt_nonblank("EntityType")? {
            a.insert("entity_type".into(), json!(t));
        }
        if let Some(n) = row.opt_nonblank("EntityNetObjectId")? {
            a.insert("net_object".into(), json!(n));
        }
        if let Some(n) = row.opt_int("RelatedNodeId")? {
            a.insert("node_id".into(), json!(n));
            if let Some(base) = &self.settings.base_url {
                a.insert(
                    "url".into(),
                    json!(format!(
                        "{}/Orion/NetPerfMon/NodeDetails.aspx?NetObject=N:{n}",
                        base.trim_end_matches('/')
                    )),
                );
            }
        }
        if let Some(by) = row.opt_nonblank("AcknowledgedBy")? {
            a.insert("acknowledged_by".into(), json!(by));
        }
        r.attributes = a;
        r.raw = text::raw(row.to_json());
        let resource = r.resource.clone();
        Ok((r, ActiveRef { resource, event }))
    }

    fn nodes_due(&self) -> bool {
        if !self.settings.nodes {
            return false;
        }
        let every = Duration::from_secs(self.settings.nodes_every_seconds.max(1));
        match self.last_nodes.lock() {
            Ok(last) => last.is_none_or(|t| t.elapsed() >= every),
            Err(_) => true,
        }
    }

    fn nodes_sql(&self, filter: &str) -> String {
        format!(
            "SELECT NodeID, Caption, IP_Address, DNS, SysName, Vendor, MachineType, ObjectSubType, \
             Status, StatusDescription, UnManaged, CPULoad, PercentMemoryUsed, LastBoot, LastSync \
             FROM {} {filter} ORDER BY NodeID",
            self.tables.nodes
        )
    }

    async fn read_nodes(&self, batch: &mut Batch) -> Result<(), SourceError> {
        let rows = self.client.query("Nodes", &self.nodes_sql(""), &[]).await?;
        batch.rows_read += rows.len() as u64;
        let mut items = Vec::with_capacity(rows.len());
        for i in 0..rows.len() {
            let row = RowView::new(&rows, i, "Nodes", "NodeID");
            items.push(self.node(&row)?);
        }
        batch.equipment.items.extend(items);
        batch.equipment.complete_kinds.push("node".into());
        if let Ok(mut last) = self.last_nodes.lock() {
            *last = Some(Instant::now());
        }
        Ok(())
    }

    /// A node's status: Orion's code mapped, `unknown` for a code not in the list.
    fn status(row: &RowView<'_>) -> Result<(String, Option<i64>), SourceError> {
        let code = row.opt_int("Status")?;
        let name = code.and_then(node_status).unwrap_or("unknown");
        Ok((name.to_owned(), code))
    }

    fn node(&self, row: &RowView<'_>) -> Result<Equipment, SourceError> {
        let id = row.int("NodeID")?;
        let caption = row
            .opt_nonblank("Caption")?
            .unwrap_or_else(|| format!("node {id}"));
        let (status, code) = Self::status(row)?;
        let mut a = Map::new();
        a.insert("node_id".into(), json!(id));
        a.insert("status_code".into(), json!(code));
        if code.is_some_and(|c| node_status(c).is_none()) {
            a.insert("status_unknown".into(), json!(true));
        }
        for (key, column) in [
            ("address", "IP_Address"),
            ("dns", "DNS"),
            ("sys_name", "SysName"),
            ("vendor", "Vendor"),
            ("machine_type", "MachineType"),
            ("polling", "ObjectSubType"),
            ("status_description", "StatusDescription"),
        ] {
            if let Some(v) = row.opt_nonblank(column)? {
                a.insert(key.into(), json!(v));
            }
        }
        if let Some(cpu) = row.opt_float("CPULoad")?.filter(|c| *c >= 0.0) {
            a.insert("cpu_load".into(), json!(cpu));
        }
        if let Some(m) = row.opt_float("PercentMemoryUsed")?.filter(|c| *c >= 0.0) {
            a.insert("percent_memory_used".into(), json!(m));
        }
        if let Some(b) = row.opt_time("LastBoot")? {
            a.insert(
                "last_boot".into(),
                json!(utc(b, self.settings.utc_offset_minutes).to_rfc3339()),
            );
        }
        if row.opt_bool("UnManaged")?.unwrap_or(false) {
            a.insert("unmanaged".into(), json!(true));
        }
        if let Some(base) = &self.settings.base_url {
            a.insert(
                "url".into(),
                json!(format!(
                    "{}/Orion/NetPerfMon/NodeDetails.aspx?NetObject=N:{id}",
                    base.trim_end_matches('/')
                )),
            );
        }
        Ok(Equipment {
            source_ref: format!("node/{id}"),
            name: text::one_line(&caption, RESOURCE_MAX, "node"),
            kind: "node".into(),
            domain: Some(self.domain.clone()),
            status: Some(status),
            attributes: a,
            removed: false,
            updated_at: row
                .opt_time("LastSync")?
                .map(|t| utc(t, self.settings.utc_offset_minutes)),
        })
    }

    /// A node's current status, CPU and memory, and its `CPULoad` history over `[from, to)`. The
    /// node is named by its `NodeID`, `node/ID` or its caption.
    pub async fn node_report(
        &self,
        node: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<NodeReport, SourceError> {
        let key = node.trim().trim_start_matches("node/");
        let rows = match key.parse::<i64>() {
            Ok(id) => {
                self.client
                    .query(
                        "Nodes",
                        &self.nodes_sql("WHERE NodeID = @P1"),
                        &[Param::Int(id)],
                    )
                    .await?
            }
            Err(_) => {
                self.client
                    .query(
                        "Nodes",
                        &self.nodes_sql("WHERE Caption = @P1"),
                        &[Param::Text(key.to_owned())],
                    )
                    .await?
            }
        };
        if rows.is_empty() {
            return Err(SourceError::Unsupported(format!(
                "no node `{}` in Orion",
                text::one_line(node, 100, "")
            )));
        }
        let row = RowView::new(&rows, 0, "Nodes", "NodeID");
        let node_id = row.int("NodeID")?;
        let (status, status_code) = Self::status(&row)?;
        let offset = self.settings.utc_offset_minutes;
        let sql = format!(
            "SELECT DateTime, AvgLoad, AvgMemoryUsed FROM {} \
             WHERE NodeID = @P1 AND DateTime >= CAST(@P2 AS datetime) AND DateTime < CAST(@P3 AS datetime) \
             ORDER BY DateTime",
            self.tables.cpu
        );
        let hist = self
            .client
            .query(
                "CPULoad",
                &sql,
                &[
                    Param::Int(node_id),
                    Param::Text(crate::map::local_text(from, offset)),
                    Param::Text(crate::map::local_text(to, offset)),
                ],
            )
            .await?;
        let mut history = Vec::with_capacity(hist.len());
        for i in 0..hist.len() {
            let h = RowView::new(&hist, i, "CPULoad", "DateTime");
            history.push(LoadSample {
                at: utc(h.time("DateTime")?, offset),
                avg_load: h.opt_float("AvgLoad")?.filter(|v| *v >= 0.0),
                avg_memory_used: h.opt_float("AvgMemoryUsed")?.filter(|v| *v >= 0.0),
            });
        }
        Ok(NodeReport {
            node_id,
            caption: row
                .opt_nonblank("Caption")?
                .unwrap_or_else(|| format!("node {node_id}")),
            status,
            status_code,
            status_description: row.opt_nonblank("StatusDescription")?,
            cpu_load: row.opt_float("CPULoad")?.filter(|c| *c >= 0.0),
            percent_memory_used: row.opt_float("PercentMemoryUsed")?.filter(|c| *c >= 0.0),
            from,
            to,
            history,
        })
    }

    async fn poll_inner(&self, position: Option<&str>) -> Result<Batch, SourceError> {
        let mut pos = parse_position(position)?;
        let mut batch = Batch::default();
        if self.settings.syslog {
            self.read_syslog(&mut pos, &mut batch).await?;
        }
        // A bad row stops its own table only: the others are still read.
        if self.settings.traps {
            self.read_traps(&mut pos, &mut batch).await?;
        }
        if self.settings.alerts {
            self.read_active(&mut pos, &mut batch).await?;
        }
        if self.nodes_due()
            && let Err(e) = self.read_nodes(&mut batch).await
        {
            batch.stopped.get_or_insert(e);
        }
        batch.position = serde_json::to_string(&pos).ok();
        Ok(batch)
    }
}

impl Source for Orion {
    fn name(&self) -> &str {
        &self.name
    }

    fn kind(&self) -> &str {
        "solarwinds"
    }

    fn domain(&self) -> Option<&str> {
        Some(&self.domain)
    }

    fn poll<'a>(&'a self, position: Option<&'a str>) -> BoxFuture<'a, Result<Batch, SourceError>> {
        Box::pin(self.poll_inner(position))
    }

    fn ask<'a>(&'a self, question: &'a Question) -> BoxFuture<'a, Result<Answer, SourceError>> {
        Box::pin(async move {
            match question {
                Question::NodeReport { resource, from, to } => {
                    if to <= from {
                        return Err(SourceError::Config(
                            "the range ends before it starts".into(),
                        ));
                    }
                    Ok(Answer::NodeReport(
                        self.node_report(resource, *from, *to).await?,
                    ))
                }
                Question::Unavailability { .. } | Question::Statistics { .. } => {
                    Err(SourceError::Unsupported(format!(
                        "Orion keeps no unavailability periods for `{}` in the tables Vigie reads; ask for the node report",
                        text::one_line(question.resource(), 100, "")
                    )))
                }
            }
        })
    }

    fn ping(&self) -> BoxFuture<'_, Result<(), SourceError>> {
        Box::pin(self.client.ping())
    }
}
