//! WhatsUp Gold (`kind = "whatsup"`, database `WhatsUp`), after the reconstructed reference
//! SOURCES.md §4, so table names and state meanings are settings:
//!
//! - `ActiveMonitorStateChangeLog` joined to `PivotActiveMonitorTypeToDevice`, `Device`,
//!   `ActiveMonitorType`, `MonitorState` and `NetworkInterface`, read on its log id: a monitor
//!   going down (internal state 1) raises its alert (event `wug-monitor-<pivot id>`), an up state
//!   (3) clears it, maintenance (2) clears the outage and raises nothing. A down row still open
//!   (`dEndTime` NULL) is remembered in the position and looked at again on every poll: when its
//!   `dEndTime` is set, the alert is cleared. A state Vigie does not know raises the alert at
//!   `unknown_level`, its code kept.
//! - The first read does not replay the log's history: it raises what is down now (open rows)
//!   and starts after the newest row.
//! - `Device` + `NetworkInterface` + `PivotDeviceToGroup`/`DeviceGroup` → equipment (address,
//!   groups, status from the worst state, maintenance mode).
//! - On demand: a device's (or a monitor's) outage and maintenance periods over a range, and the
//!   statistics computed from them.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, json};
use vigie_poll::stats::answer_from_periods;
use vigie_poll::text::{self, RESOURCE_MAX};
use vigie_poll::{
    Answer, Batch, BoxFuture, Equipment, MaintenanceSpan, Period, Question, Source, SourceError,
};
use vigie_source::{Level, RawRecord};

use crate::Spec;
use crate::client::{Client, Param};
use crate::map::{local_text, parse_level, recent_column, settings, table_name, utc};
use crate::row::RowView;

/// What a monitor state means to Vigie.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Meaning {
    Down,
    Up,
    Maintenance,
    Unknown,
    Ignore,
}

impl Meaning {
    fn parse(key: &str, text: &str) -> Result<Meaning, SourceError> {
        match text.trim().to_ascii_lowercase().as_str() {
            "down" => Ok(Meaning::Down),
            "up" => Ok(Meaning::Up),
            "maintenance" => Ok(Meaning::Maintenance),
            "unknown" => Ok(Meaning::Unknown),
            "ignore" => Ok(Meaning::Ignore),
            other => Err(SourceError::Config(format!(
                "{key}: `{other}` is not one of down, up, maintenance, unknown, ignore"
            ))),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Meaning::Down => "down",
            Meaning::Up => "up",
            Meaning::Maintenance => "maintenance",
            Meaning::Unknown => "unknown",
            Meaning::Ignore => "ignore",
        }
    }
}

/// The table names (WhatsUp's own by default).
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WhatsUpTables {
    pub state_change_log: String,
    pub monitor_to_device: String,
    pub device: String,
    pub network_interface: String,
    pub monitor_type: String,
    pub monitor_state: String,
    pub device_group: String,
    pub device_to_group: String,
}

impl Default for WhatsUpTables {
    fn default() -> WhatsUpTables {
        WhatsUpTables {
            state_change_log: "ActiveMonitorStateChangeLog".into(),
            monitor_to_device: "PivotActiveMonitorTypeToDevice".into(),
            device: "Device".into(),
            network_interface: "NetworkInterface".into(),
            monitor_type: "ActiveMonitorType".into(),
            monitor_state: "MonitorState".into(),
            device_group: "DeviceGroup".into(),
            device_to_group: "PivotDeviceToGroup".into(),
        }
    }
}

/// The settings of a WhatsUp Gold source (all optional).
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WhatsUpSettings {
    pub batch: u32,
    /// Log rows starting this recently (seconds, by the server's clock) wait for the next poll.
    pub settle_seconds: u32,
    /// `MonitorState.nInternalMonitorState` → down, up, maintenance, unknown, ignore.
    pub internal_states: BTreeMap<String, String>,
    /// `nMonitorStateID` → meaning, over `internal_states` (install-specific states).
    pub states: BTreeMap<String, String>,
    pub down_level: String,
    /// The level of a state nobody listed, and of `unknown` states.
    pub unknown_level: String,
    pub devices: bool,
    pub devices_every_seconds: u64,
    /// The server's offset from UTC in minutes (WhatsUp stores local times).
    pub utc_offset_minutes: i32,
    pub schema: String,
    pub tables: WhatsUpTables,
    pub domain: String,
}

impl Default for WhatsUpSettings {
    fn default() -> WhatsUpSettings {
        WhatsUpSettings {
            batch: 1000,
            settle_seconds: 2,
            internal_states: [
                ("1", "down"),
                ("2", "maintenance"),
                ("3", "up"),
                ("-1", "unknown"),
            ]
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
            states: BTreeMap::new(),
            down_level: "critical".into(),
            unknown_level: "warning".into(),
            devices: true,
            devices_every_seconds: 300,
            utc_offset_minutes: 0,
            schema: "dbo".into(),
            tables: WhatsUpTables::default(),
            domain: "network".into(),
        }
    }
}

/// An open down (or unknown) period, remembered until it ends.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct OpenRef {
    monitor: i64,
    resource: String,
    event: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
struct WhatsUpPosition {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    log: Option<i64>,
    /// Log id → its open period.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    open: BTreeMap<String, OpenRef>,
}

struct Tables {
    log: String,
    pivot: String,
    device: String,
    interface: String,
    monitor_type: String,
    state: String,
    group: String,
    device_group: String,
}

/// A monitor currently in maintenance (the source of a maintenance window).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Maintenance {
    pub device: String,
    pub monitor: String,
    pub since: DateTime<Utc>,
}

/// A WhatsUp Gold database.
pub struct WhatsUp {
    name: String,
    domain: String,
    settings: WhatsUpSettings,
    internal: HashMap<i64, Meaning>,
    states: HashMap<i64, Meaning>,
    down_level: Level,
    unknown_level: Level,
    tables: Tables,
    client: Client,
    last_devices: Mutex<Option<Instant>>,
}

fn meanings(
    key: &str,
    table: &BTreeMap<String, String>,
) -> Result<HashMap<i64, Meaning>, SourceError> {
    let mut out = HashMap::new();
    for (code, text) in table {
        let n: i64 = code
            .trim()
            .parse()
            .map_err(|_| SourceError::Config(format!("{key}: `{code}` is not a state number")))?;
        out.insert(n, Meaning::parse(&format!("{key}.{code}"), text)?);
    }
    Ok(out)
}

impl WhatsUp {
    pub fn new(spec: &Spec) -> Result<WhatsUp, SourceError> {
        let settings: WhatsUpSettings = settings("whatsup", &spec.settings)?;
        if settings.batch == 0 {
            return Err(SourceError::Config("batch must be at least 1".into()));
        }
        let s = &settings.schema;
        let n = &settings.tables;
        let tables = Tables {
            log: table_name("tables.state_change_log", s, &n.state_change_log)?,
            pivot: table_name("tables.monitor_to_device", s, &n.monitor_to_device)?,
            device: table_name("tables.device", s, &n.device)?,
            interface: table_name("tables.network_interface", s, &n.network_interface)?,
            monitor_type: table_name("tables.monitor_type", s, &n.monitor_type)?,
            state: table_name("tables.monitor_state", s, &n.monitor_state)?,
            group: table_name("tables.device_group", s, &n.device_group)?,
            device_group: table_name("tables.device_to_group", s, &n.device_to_group)?,
        };
        Ok(WhatsUp {
            name: spec.name.clone(),
            domain: spec
                .domain
                .clone()
                .unwrap_or_else(|| settings.domain.clone()),
            internal: meanings("internal_states", &settings.internal_states)?,
            states: meanings("states", &settings.states)?,
            down_level: parse_level("down_level", &settings.down_level)?,
            unknown_level: parse_level("unknown_level", &settings.unknown_level)?,
            tables,
            client: Client::new(&spec.url)?,
            settings,
            last_devices: Mutex::new(None),
        })
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The meaning of a state; `(Unknown, false)` for a state nobody listed.
    fn meaning(&self, state_id: Option<i64>, internal: Option<i64>) -> (Meaning, bool) {
        if let Some(m) = state_id.and_then(|s| self.states.get(&s)) {
            return (*m, true);
        }
        match internal.and_then(|i| self.internal.get(&i)) {
            Some(m) => (*m, true),
            None => (Meaning::Unknown, false),
        }
    }

    fn log_sql(&self, top: Option<u32>, filter: &str) -> String {
        let top = top.map(|n| format!("TOP ({n}) ")).unwrap_or_default();
        format!(
            "SELECT {top}l.nActiveMonitorStateChangeLogID, l.nPivotActiveMonitorTypeToDeviceID, \
             l.nMonitorStateID, l.dStartTime, l.dEndTime, l.sResult, p.nDeviceID, \
             d.sDisplayName, t.sMonitorTypeName, s.sStateName, s.nInternalMonitorState, \
             n.sNetworkAddress, {} \
             FROM {} l \
             JOIN {} p ON p.nPivotActiveMonitorTypeToDeviceID = l.nPivotActiveMonitorTypeToDeviceID \
             JOIN {} d ON d.nDeviceID = p.nDeviceID \
             LEFT JOIN {} t ON t.nActiveMonitorTypeID = p.nActiveMonitorTypeID \
             LEFT JOIN {} s ON s.nMonitorStateID = l.nMonitorStateID \
             LEFT JOIN {} n ON n.nNetworkInterfaceID = d.nDefaultNetworkInterfaceID \
             WHERE {filter} ORDER BY l.nActiveMonitorStateChangeLogID",
            recent_column("l.dStartTime", self.settings.settle_seconds),
            self.tables.log,
            self.tables.pivot,
            self.tables.device,
            self.tables.monitor_type,
            self.tables.state,
            self.tables.interface
        )
    }

    fn record(&self, resource: &str, message: &str, event: &str) -> RawRecord {
        let mut r = RawRecord::new(
            &self.name,
            text::one_line(resource, RESOURCE_MAX, "device"),
            text::message(message, event),
        );
        r.domain = Some(self.domain.clone());
        r.attributes.insert("event".into(), json!(event));
        r
    }

    /// Maps one log row: the records it gives and whether it opens a period to watch.
    fn log_row(
        &self,
        row: &RowView<'_>,
        open: &mut BTreeMap<String, OpenRef>,
        initial: bool,
        out: &mut Vec<RawRecord>,
    ) -> Result<(), SourceError> {
        let id = row.int("nActiveMonitorStateChangeLogID")?;
        let monitor = row.int("nPivotActiveMonitorTypeToDeviceID")?;
        let state_id = row.opt_int("nMonitorStateID")?;
        let internal = row.opt_int("nInternalMonitorState")?;
        let (meaning, known) = self.meaning(state_id, internal);
        let device = row.opt_nonblank("sDisplayName")?.unwrap_or_else(|| {
            format!(
                "device {}",
                row.opt_int("nDeviceID").ok().flatten().unwrap_or(0)
            )
        });
        let monitor_type = row
            .opt_nonblank("sMonitorTypeName")?
            .unwrap_or_else(|| "monitor".into());
        let state_name = row
            .opt_nonblank("sStateName")?
            .unwrap_or_else(|| format!("state {}", state_id.unwrap_or(0)));
        let result = row.opt_nonblank("sResult")?;
        let start = utc(row.time("dStartTime")?, self.settings.utc_offset_minutes);
        let end = row
            .opt_time("dEndTime")?
            .map(|t| utc(t, self.settings.utc_offset_minutes));
        let event = format!("wug-monitor-{monitor}");
        // A new state of a monitor ends its previous period.
        open.retain(|_, o| o.monitor != monitor);
        let message = match &result {
            Some(r) => format!("{device} {monitor_type}: {state_name}: {r}"),
            None => format!("{device} {monitor_type}: {state_name}"),
        };
        let mut r = self.record(&device, &message, &event);
        r.source_ref = Some(format!("log/{id}"));
        r.occurred_at = Some(start);
        r.source_severity = internal.and_then(|i| i32::try_from(i).ok());
        let a = &mut r.attributes;
        a.insert("monitor_id".into(), json!(monitor));
        a.insert("monitor_type".into(), json!(monitor_type));
        a.insert("state".into(), json!(meaning.name()));
        a.insert("state_name".into(), json!(state_name));
        a.insert("state_id".into(), json!(state_id));
        a.insert("internal_state".into(), json!(internal));
        if let Some(addr) = row.opt_nonblank("sNetworkAddress")? {
            a.insert("address".into(), json!(addr));
        }
        if !known {
            a.insert("state_unknown".into(), json!(true));
        }
        r.raw = text::raw(row.to_json());
        let level = match meaning {
            Meaning::Down => self.down_level,
            Meaning::Unknown => self.unknown_level,
            Meaning::Up | Meaning::Maintenance => {
                if !initial {
                    r.clear = true;
                    r.level = Some(Level::Low);
                    out.push(r);
                }
                return Ok(());
            }
            Meaning::Ignore => return Ok(()),
        };
        r.level = Some(level);
        let resource = r.resource.clone();
        out.push(r);
        match end {
            None => {
                open.insert(
                    id.to_string(),
                    OpenRef {
                        monitor,
                        resource,
                        event,
                    },
                );
            }
            Some(end) => {
                // Already over when read: cleared at once.
                let mut c = self.record(
                    &resource,
                    &format!("{device} {monitor_type}: period ended"),
                    &event,
                );
                c.source_ref = Some(format!("log/{id}/end"));
                c.occurred_at = Some(end);
                c.clear = true;
                out.push(c);
            }
        }
        Ok(())
    }

    async fn read_log(
        &self,
        pos: &mut WhatsUpPosition,
        batch: &mut Batch,
    ) -> Result<(), SourceError> {
        let (rows, initial) = match pos.log {
            Some(after) => (
                self.client
                    .query(
                        "ActiveMonitorStateChangeLog",
                        &self.log_sql(
                            Some(self.settings.batch),
                            "l.nActiveMonitorStateChangeLogID > @P1",
                        ),
                        &[Param::Int(after)],
                    )
                    .await?,
                false,
            ),
            None => {
                let newest = self
                    .client
                    .query(
                        "ActiveMonitorStateChangeLog",
                        &format!(
                            "SELECT MAX(nActiveMonitorStateChangeLogID) AS newest FROM {}",
                            self.tables.log
                        ),
                        &[],
                    )
                    .await?;
                let newest = if newest.is_empty() {
                    None
                } else {
                    RowView::new(&newest, 0, "ActiveMonitorStateChangeLog", "newest")
                        .opt_int("newest")?
                };
                let newest = newest.unwrap_or(0);
                pos.log = Some(newest);
                (
                    self.client
                        .query(
                            "ActiveMonitorStateChangeLog",
                            &self.log_sql(
                                None,
                                "l.dEndTime IS NULL AND l.nActiveMonitorStateChangeLogID <= @P1",
                            ),
                            &[Param::Int(newest)],
                        )
                        .await?,
                    true,
                )
            }
        };
        batch.rows_read += rows.len() as u64;
        if !initial {
            batch.more |= rows.len() >= self.settings.batch as usize;
        }
        for i in 0..rows.len() {
            let row = RowView::new(
                &rows,
                i,
                "ActiveMonitorStateChangeLog",
                "nActiveMonitorStateChangeLogID",
            );
            if !initial && row.opt_int("vigie_recent").ok().flatten() == Some(1) {
                batch.more = false;
                break;
            }
            let mut out = Vec::new();
            match self.log_row(&row, &mut pos.open, initial, &mut out) {
                Ok(()) => {
                    for r in out {
                        batch.newest = batch.newest.max(r.occurred_at);
                        batch.records.push(r);
                    }
                    if !initial {
                        pos.log = Some(row.int("nActiveMonitorStateChangeLogID")?);
                    }
                }
                Err(e) => {
                    batch.stopped = Some(e);
                    batch.more = false;
                    break;
                }
            }
        }
        Ok(())
    }

    /// Looks again at the open periods: those whose `dEndTime` is now set (or whose row is gone)
    /// are cleared.
    async fn close_ended(
        &self,
        pos: &mut WhatsUpPosition,
        batch: &mut Batch,
    ) -> Result<(), SourceError> {
        let ids: Vec<i64> = pos.open.keys().filter_map(|k| k.parse().ok()).collect();
        for chunk in ids.chunks(500) {
            let list: Vec<String> = chunk.iter().map(i64::to_string).collect();
            let sql = format!(
                "SELECT nActiveMonitorStateChangeLogID, dEndTime FROM {} \
                 WHERE nActiveMonitorStateChangeLogID IN ({})",
                self.tables.log,
                list.join(", ")
            );
            let rows = self
                .client
                .query("ActiveMonitorStateChangeLog", &sql, &[])
                .await?;
            batch.rows_read += rows.len() as u64;
            let mut still_open = Vec::new();
            for i in 0..rows.len() {
                let row = RowView::new(
                    &rows,
                    i,
                    "ActiveMonitorStateChangeLog",
                    "nActiveMonitorStateChangeLogID",
                );
                let id = row.int("nActiveMonitorStateChangeLogID")?;
                match row.opt_time("dEndTime")? {
                    None => still_open.push(id),
                    Some(end) => {
                        if let Some(o) = pos.open.remove(&id.to_string()) {
                            let mut c = self.record(
                                &o.resource,
                                &format!("{}: period ended", o.resource),
                                &o.event,
                            );
                            c.source_ref = Some(format!("log/{id}/end"));
                            c.occurred_at = Some(utc(end, self.settings.utc_offset_minutes));
                            c.clear = true;
                            batch.records.push(c);
                        }
                    }
                }
            }
            for id in chunk {
                if !still_open.contains(id)
                    && let Some(o) = pos.open.remove(&id.to_string())
                {
                    // The row was purged from the log: its period is over.
                    let mut c = self.record(
                        &o.resource,
                        &format!("{}: period ended", o.resource),
                        &o.event,
                    );
                    c.source_ref = Some(format!("log/{id}/end"));
                    c.clear = true;
                    batch.records.push(c);
                }
            }
        }
        Ok(())
    }

    fn devices_due(&self) -> bool {
        if !self.settings.devices {
            return false;
        }
        let every = Duration::from_secs(self.settings.devices_every_seconds.max(1));
        match self.last_devices.lock() {
            Ok(last) => last.is_none_or(|t| t.elapsed() >= every),
            Err(_) => true,
        }
    }

    async fn read_devices(&self, batch: &mut Batch) -> Result<(), SourceError> {
        let groups_sql = format!(
            "SELECT pg.nDeviceID, g.sGroupName FROM {} pg JOIN {} g ON g.nDeviceGroupID = pg.nDeviceGroupID \
             ORDER BY pg.nDeviceID, g.sGroupName",
            self.tables.device_group, self.tables.group
        );
        let group_rows = self.client.query("DeviceGroup", &groups_sql, &[]).await?;
        let mut groups: HashMap<i64, Vec<String>> = HashMap::new();
        for i in 0..group_rows.len() {
            let row = RowView::new(&group_rows, i, "PivotDeviceToGroup", "nDeviceID");
            if let Some(name) = row.opt_nonblank("sGroupName")? {
                groups.entry(row.int("nDeviceID")?).or_default().push(name);
            }
        }
        let sql = format!(
            "SELECT d.nDeviceID, d.sDisplayName, d.nDeviceTypeID, d.nWorstStateID, d.bRemoved, \
             d.bManualMaintenanceMode, d.sNote, n.sNetworkAddress, n.sNetworkName, s.sStateName, \
             s.nInternalMonitorState \
             FROM {} d LEFT JOIN {} n ON n.nNetworkInterfaceID = d.nDefaultNetworkInterfaceID \
             LEFT JOIN {} s ON s.nMonitorStateID = d.nWorstStateID ORDER BY d.nDeviceID",
            self.tables.device, self.tables.interface, self.tables.state
        );
        let rows = self.client.query("Device", &sql, &[]).await?;
        batch.rows_read += (rows.len() + group_rows.len()) as u64;
        for i in 0..rows.len() {
            let row = RowView::new(&rows, i, "Device", "nDeviceID");
            let id = row.int("nDeviceID")?;
            let name = row
                .opt_nonblank("sDisplayName")?
                .unwrap_or_else(|| format!("device {id}"));
            let worst = row.opt_int("nWorstStateID")?;
            let internal = row.opt_int("nInternalMonitorState")?;
            let (meaning, known) = self.meaning(worst, internal);
            let maintenance = row.opt_bool("bManualMaintenanceMode")?.unwrap_or(false);
            let status = if maintenance {
                "maintenance"
            } else {
                match meaning {
                    Meaning::Ignore => "unknown",
                    m => m.name(),
                }
            };
            let mut a = Map::new();
            a.insert("device_id".into(), json!(id));
            a.insert(
                "groups".into(),
                json!(groups.remove(&id).unwrap_or_default()),
            );
            a.insert("worst_state_id".into(), json!(worst));
            a.insert("internal_state".into(), json!(internal));
            if !known {
                a.insert("state_unknown".into(), json!(true));
            }
            for (key, column) in [
                ("address", "sNetworkAddress"),
                ("network_name", "sNetworkName"),
                ("state_name", "sStateName"),
                ("note", "sNote"),
            ] {
                if let Some(v) = row.opt_nonblank(column)? {
                    a.insert(key.into(), json!(v));
                }
            }
            if let Some(t) = row.opt_int("nDeviceTypeID")? {
                a.insert("device_type_id".into(), json!(t));
            }
            if maintenance {
                a.insert("maintenance_mode".into(), json!(true));
            }
            batch.equipment.items.push(Equipment {
                source_ref: format!("device/{id}"),
                name: text::one_line(&name, RESOURCE_MAX, "device"),
                kind: "device".into(),
                domain: Some(self.domain.clone()),
                status: Some(status.into()),
                attributes: a,
                removed: row.opt_bool("bRemoved")?.unwrap_or(false),
                updated_at: None,
            });
        }
        batch.equipment.complete_kinds.push("device".into());
        if let Ok(mut last) = self.last_devices.lock() {
            *last = Some(Instant::now());
        }
        Ok(())
    }

    async fn poll_inner(&self, position: Option<&str>) -> Result<Batch, SourceError> {
        let mut pos: WhatsUpPosition = match position.map(str::trim) {
            None | Some("") => WhatsUpPosition::default(),
            Some(t) => serde_json::from_str(t).map_err(|e| {
                SourceError::Config(format!(
                    "the stored watermark `{}` cannot be read ({e}); delete the source's checkpoint to read it again",
                    text::one_line(t, 200, "")
                ))
            })?,
        };
        let mut batch = Batch::default();
        let was_initial = pos.log.is_none();
        self.read_log(&mut pos, &mut batch).await?;
        // Then the periods still open: a new state of their monitor (read just above) has already
        // taken them over; the others are cleared when their `dEndTime` is set.
        if !was_initial && batch.stopped.is_none() {
            self.close_ended(&mut pos, &mut batch).await?;
        }
        if self.devices_due()
            && let Err(e) = self.read_devices(&mut batch).await
        {
            batch.stopped.get_or_insert(e);
        }
        // What is in maintenance now becomes the hub's maintenance windows (a full snapshot; on
        // an error the windows are left as they are).
        match self.maintenance_now().await {
            Ok(now) => {
                batch.maintenance = Some(
                    now.into_iter()
                        .filter(|m| !m.device.is_empty())
                        .map(|m| MaintenanceSpan {
                            resource: text::one_line(&m.device, RESOURCE_MAX, "device"),
                            since: m.since,
                            what: m.monitor,
                        })
                        .collect(),
                );
            }
            Err(e) => {
                tracing::warn!(source = %self.name, error = %e, "Cannot read the monitors in maintenance.");
            }
        }
        batch.position = serde_json::to_string(&pos).ok();
        Ok(batch)
    }

    /// The monitor ids of a resource: `monitor/ID`, `device/ID`, a device id, or a device name.
    async fn target(&self, resource: &str) -> Result<(String, i64), SourceError> {
        let r = resource.trim();
        if let Some(m) = r
            .strip_prefix("monitor/")
            .and_then(|m| m.parse::<i64>().ok())
        {
            return Ok(("p.nPivotActiveMonitorTypeToDeviceID".into(), m));
        }
        if let Ok(d) = r.strip_prefix("device/").unwrap_or(r).parse::<i64>() {
            return Ok(("p.nDeviceID".into(), d));
        }
        let rows = self
            .client
            .query(
                "Device",
                &format!(
                    "SELECT TOP (1) nDeviceID FROM {} WHERE sDisplayName = @P1 ORDER BY nDeviceID",
                    self.tables.device
                ),
                &[Param::Text(r.to_owned())],
            )
            .await?;
        if rows.is_empty() {
            return Err(SourceError::Unsupported(format!(
                "no device named `{}` in WhatsUp Gold",
                text::one_line(r, 100, "")
            )));
        }
        Ok((
            "p.nDeviceID".into(),
            RowView::new(&rows, 0, "Device", "nDeviceID").int("nDeviceID")?,
        ))
    }

    /// Outage and maintenance periods of a device or monitor overlapping `[from, to)`, clipped.
    pub async fn periods(
        &self,
        resource: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<Period>, SourceError> {
        let (column, id) = self.target(resource).await?;
        let offset = self.settings.utc_offset_minutes;
        let filter = format!(
            "{column} = @P1 AND l.dStartTime < CAST(@P2 AS datetime) \
             AND (l.dEndTime IS NULL OR l.dEndTime > CAST(@P3 AS datetime))"
        );
        let rows = self
            .client
            .query(
                "ActiveMonitorStateChangeLog",
                &self.log_sql(None, &filter),
                &[
                    Param::Int(id),
                    Param::Text(local_text(to, offset)),
                    Param::Text(local_text(from, offset)),
                ],
            )
            .await?;
        let mut periods = Vec::new();
        for i in 0..rows.len() {
            let row = RowView::new(
                &rows,
                i,
                "ActiveMonitorStateChangeLog",
                "nActiveMonitorStateChangeLogID",
            );
            let (meaning, _) = self.meaning(
                row.opt_int("nMonitorStateID")?,
                row.opt_int("nInternalMonitorState")?,
            );
            let kind = match meaning {
                Meaning::Down | Meaning::Unknown => "outage",
                Meaning::Maintenance => "maintenance",
                Meaning::Up | Meaning::Ignore => continue,
            };
            let start = utc(row.time("dStartTime")?, offset).max(from);
            let end = row.opt_time("dEndTime")?.map(|t| utc(t, offset).min(to));
            let monitor = row.opt_nonblank("sMonitorTypeName")?.unwrap_or_default();
            let state = row.opt_nonblank("sStateName")?.unwrap_or_default();
            let detail = match row.opt_nonblank("sResult")? {
                Some(r) => format!("{monitor}: {state}: {r}"),
                None => format!("{monitor}: {state}"),
            };
            periods.push(Period {
                start,
                end,
                kind: kind.into(),
                detail: Some(text::one_line(&detail, 500, "")),
            });
        }
        periods.sort_by_key(|p| p.start);
        Ok(periods)
    }

    /// The monitors in maintenance now (open rows of a maintenance state): what a maintenance
    /// window of the hub is made from.
    pub async fn maintenance_now(&self) -> Result<Vec<Maintenance>, SourceError> {
        let rows = self
            .client
            .query(
                "ActiveMonitorStateChangeLog",
                &self.log_sql(None, "l.dEndTime IS NULL"),
                &[],
            )
            .await?;
        let mut out = Vec::new();
        for i in 0..rows.len() {
            let row = RowView::new(
                &rows,
                i,
                "ActiveMonitorStateChangeLog",
                "nActiveMonitorStateChangeLogID",
            );
            let (meaning, _) = self.meaning(
                row.opt_int("nMonitorStateID")?,
                row.opt_int("nInternalMonitorState")?,
            );
            if meaning == Meaning::Maintenance {
                out.push(Maintenance {
                    device: row.opt_nonblank("sDisplayName")?.unwrap_or_default(),
                    monitor: row.opt_nonblank("sMonitorTypeName")?.unwrap_or_default(),
                    since: utc(row.time("dStartTime")?, self.settings.utc_offset_minutes),
                });
            }
        }
        Ok(out)
    }
}

impl Source for WhatsUp {
    fn name(&self) -> &str {
        &self.name
    }

    fn kind(&self) -> &str {
        "whatsup"
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
            "WhatsUp Gold",
            |resource, from, to| self.periods(resource, from, to),
        ))
    }

    fn ping(&self) -> BoxFuture<'_, Result<(), SourceError>> {
        Box::pin(self.client.ping())
    }
}
