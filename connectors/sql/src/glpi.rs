//! GLPI (10.x, MySQL/MariaDB): tickets become helpdesk alerts, computers become equipment.
//!
//! Both tables are read incrementally on `(date_mod, id)`: GLPI sets `date_mod` on every change,
//! and has an index on it (the primary key completes it into `(date_mod, id)` in InnoDB), so a
//! poll costs one short index range whatever the table's size. Rows changed in the last
//! `settle_seconds` (by the database's clock) are left for the next poll: a row written in the
//! same second as the last one read, or by a transaction still open, is never jumped over.
//!
//! A ticket is one alert: its identity is the `event` attribute `glpi-ticket-<id>`, so every
//! version of the ticket (new, assigned, priority changed) updates the same alert, and a solved
//! (5) or closed (6) ticket, or one put in the trash, clears it. A solved ticket reopened raises
//! it again. Each version's reference is `ticket/<id>@<date_mod>/<status>`: reading a version
//! twice (a poll repeated after a crash) stores nothing twice.
//!
//! Level: the ticket's priority (1 very low … 6 major, GLPI's urgency × impact matrix) through
//! `priority_levels`, by default very low/low → 0, medium/high → 1, very high/major → 2.

use std::collections::{BTreeMap, HashMap};

use serde::Deserialize;
use serde_json::{Value, json};
use vigie_poll::text::{self, RESOURCE_MAX};
use vigie_poll::{
    Answer, Batch, BoxFuture, Equipment, Key, Mark, Positions, Question, Source, SourceError,
};
use vigie_source::{Level, RawRecord};

use crate::SourceSpec;
use crate::client::{Client, ClientOptions, Param, Rows};
use crate::row::RowView;
use crate::stream::{after, link, settings, utc};

/// The settings of a GLPI source (all optional).
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GlpiSettings {
    /// GLPI's web address (`https://glpi.example.org`), for links to tickets and computers.
    pub base_url: Option<String>,
    /// Rows read per table and poll, at most.
    pub batch: u32,
    /// Rows changed this recently (seconds, by the database's clock) wait for the next poll.
    pub settle_seconds: u32,
    /// The level of each priority 1..6 (0 low, 1 warning, 2 critical).
    pub priority_levels: [u8; 6],
    /// Requests (type 2) raise alerts too, not only incidents (type 1).
    pub requests: bool,
    /// Computers are read into the equipment list.
    pub computers: bool,
    /// The domain of the alerts when the source's configuration names none.
    pub domain: String,
}

impl Default for GlpiSettings {
    fn default() -> GlpiSettings {
        GlpiSettings {
            base_url: None,
            batch: 500,
            settle_seconds: 2,
            priority_levels: [0, 0, 1, 1, 2, 2],
            requests: true,
            computers: true,
            domain: "helpdesk".into(),
        }
    }
}

const TICKETS: &str = "tickets";
const COMPUTERS: &str = "computers";

/// A GLPI database.
pub struct Glpi {
    name: String,
    domain: String,
    settings: GlpiSettings,
    client: Client,
}

impl Glpi {
    pub fn new(spec: &SourceSpec) -> Result<Glpi, SourceError> {
        let settings: GlpiSettings = settings("GLPI", &spec.settings)?;
        if settings.batch == 0 {
            return Err(SourceError::Config("batch must be at least 1".into()));
        }
        if let Some(bad) = settings.priority_levels.iter().find(|l| **l > 2) {
            return Err(SourceError::Config(format!(
                "priority_levels holds {bad}: levels are 0, 1 or 2"
            )));
        }
        let client = Client::new(
            &spec.url,
            ClientOptions {
                // TIMESTAMP columns are read in UTC whatever the server's zone.
                init: vec!["SET time_zone = '+00:00'".into()],
                max_connections: 2,
            },
        )?;
        Ok(Glpi {
            name: spec.name.clone(),
            domain: spec
                .domain
                .clone()
                .unwrap_or_else(|| settings.domain.clone()),
            settings,
            client,
        })
    }

    async fn read_tickets(
        &self,
        positions: &mut Positions,
        batch: &mut Batch,
    ) -> Result<(), SourceError> {
        let mark = positions.get(TICKETS).cloned();
        let initial = positions.initial(TICKETS);
        let mut params = Vec::new();
        let window = after(Some("t.date_mod"), "t.id", mark.as_ref(), &mut params);
        let types = if self.settings.requests {
            ""
        } else {
            " AND t.type = 1"
        };
        let sql = format!(
            "SELECT t.id, t.entities_id, t.name, t.date, t.date_mod, t.solvedate, t.closedate, \
             t.status, t.urgency, t.impact, t.priority, t.type, t.is_deleted, t.itilcategories_id, \
             c.completename AS category \
             FROM glpi_tickets t LEFT JOIN glpi_itilcategories c ON c.id = t.itilcategories_id \
             WHERE {window} AND t.date_mod < {}{types} \
             ORDER BY t.date_mod, t.id LIMIT ?",
            self.client
                .dialect()
                .now_minus(self.settings.settle_seconds)
        );
        params.push(Param::Int(i64::from(self.settings.batch)));
        let rows = self.client.query(&sql, &params, false).await?;
        let items = if rows.is_empty() {
            HashMap::new()
        } else {
            self.linked_items(&rows).await?
        };
        let full = rows.len() >= self.settings.batch as usize;
        batch.rows_read += rows.len() as u64;
        let mut last = mark;
        for i in 0..rows.len() {
            let row = RowView::new(&rows, i, "glpi_tickets", "id");
            match self.ticket(&row, &items) {
                Ok((record, key, id)) => {
                    if let Key::Time(t) = &key {
                        batch.newest = batch.newest.max(Some(utc(*t, 0)));
                    }
                    // A first read has no alert of ours to clear.
                    if !(initial && record.clear) {
                        batch.records.push(record);
                    }
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
        if let Some(mut m) = last {
            m.initial = initial && (full || batch.stopped.is_some());
            positions.set(TICKETS, m);
        }
        batch.more |= full && batch.stopped.is_none();
        Ok(())
    }

    /// The computers (and other items) linked to the tickets of a batch: `{ticket: ["Computer PC-1"]}`.
    async fn linked_items(&self, tickets: &Rows) -> Result<HashMap<i64, Vec<String>>, SourceError> {
        let Some(col) = tickets.column("id") else {
            return Ok(HashMap::new());
        };
        let ids: Vec<i64> = tickets
            .rows
            .iter()
            .filter_map(|r| match r.get(col) {
                Some(crate::client::Cell::Int(n)) => Some(*n),
                _ => None,
            })
            .collect();
        if ids.is_empty() {
            return Ok(HashMap::new());
        }
        let marks = vec!["?"; ids.len()].join(", ");
        let sql = format!(
            "SELECT it.tickets_id, it.itemtype, it.items_id, c.name \
             FROM glpi_items_tickets it LEFT JOIN glpi_computers c \
             ON it.itemtype = 'Computer' AND c.id = it.items_id \
             WHERE it.tickets_id IN ({marks}) ORDER BY it.tickets_id, it.id"
        );
        let params: Vec<Param> = ids.into_iter().map(Param::Int).collect();
        let rows = self.client.query(&sql, &params, false).await?;
        let mut out: HashMap<i64, Vec<String>> = HashMap::new();
        for i in 0..rows.len() {
            let row = RowView::new(&rows, i, "glpi_items_tickets", "tickets_id");
            let ticket = row.int("tickets_id")?;
            let itemtype = row.opt_text("itemtype")?.unwrap_or_default();
            let name = match row.opt_text("name")? {
                Some(n) if !n.trim().is_empty() => n,
                _ => format!("#{}", row.opt_int("items_id")?.unwrap_or_default()),
            };
            out.entry(ticket).or_default().push(text::one_line(
                &format!("{itemtype} {name}"),
                200,
                "item",
            ));
        }
        Ok(out)
    }

    /// One ticket row as a record, with its watermark.
    fn ticket(
        &self,
        row: &RowView<'_>,
        items: &HashMap<i64, Vec<String>>,
    ) -> Result<(RawRecord, Key, i64), SourceError> {
        let id = row.int("id")?;
        let modified = row
            .opt_time("date_mod")?
            .ok_or_else(|| SourceError::Data(format!("{}: date_mod is NULL", row.label())))?;
        let status = row.int("status")?;
        let priority = row.opt_int("priority")?.unwrap_or(3);
        let urgency = row.opt_int("urgency")?.unwrap_or(3);
        let impact = row.opt_int("impact")?.unwrap_or(3);
        let kind = row.opt_int("type")?.unwrap_or(1);
        let deleted = row.opt_int("is_deleted")?.unwrap_or(0) != 0;
        let name = row.opt_text("name")?.filter(|n| !n.trim().is_empty());
        let category = row.opt_text("category")?.filter(|c| !c.trim().is_empty());
        let opened = row.opt_time("date")?;

        // Priority 1..6 (urgency when the priority is out of range).
        let rank = if (1..=6).contains(&priority) {
            priority
        } else {
            urgency.clamp(1, 5)
        };
        let level = match self.settings.priority_levels[(rank - 1) as usize] {
            0 => Level::Low,
            1 => Level::Warning,
            _ => Level::Critical,
        };
        let clear = deleted || status == 5 || status == 6;
        let title = name.clone().unwrap_or_else(|| format!("Ticket #{id}"));
        let state = if deleted {
            "in the trash".to_owned()
        } else {
            status_name(status).to_lowercase()
        };
        let message = if clear {
            format!("#{id} {title} ({state})")
        } else {
            format!(
                "#{id} {title} ({state}, priority {})",
                priority_name(rank).to_lowercase()
            )
        };

        let mut record = RawRecord::new(
            &self.name,
            text::one_line(&format!("ticket {id}"), RESOURCE_MAX, "ticket"),
            text::message(&message, "GLPI ticket"),
        );
        let stamp = modified.format("%Y-%m-%dT%H:%M:%S").to_string();
        record.source_ref = Some(format!(
            "ticket/{id}@{stamp}/{status}{}",
            if deleted { "/deleted" } else { "" }
        ));
        record.domain = Some(self.domain.clone());
        record.level = Some(level);
        record.source_severity = i32::try_from(rank).ok();
        record.occurred_at = Some(utc(
            if clear {
                modified
            } else {
                opened.unwrap_or(modified)
            },
            0,
        ));
        record.clear = clear;
        let mut attributes = BTreeMap::new();
        attributes.insert("event", json!(format!("glpi-ticket-{id}")));
        attributes.insert("ticket_id", json!(id));
        attributes.insert("status", json!(status));
        attributes.insert("status_name", json!(status_name(status)));
        attributes.insert("priority", json!(rank));
        attributes.insert("priority_name", json!(priority_name(rank)));
        attributes.insert("urgency", json!(urgency));
        attributes.insert("impact", json!(impact));
        attributes.insert(
            "ticket_type",
            json!(if kind == 2 { "request" } else { "incident" }),
        );
        if let Some(c) = category {
            attributes.insert("category", json!(c));
        }
        if let Some(e) = row.opt_int("entities_id")? {
            attributes.insert("entity_id", json!(e));
        }
        if let Some(list) = items.get(&id) {
            attributes.insert("items", json!(list));
        }
        if let Some(base) = &self.settings.base_url {
            attributes.insert(
                "url",
                json!(link(base, &format!("front/ticket.form.php?id={id}"))),
            );
        }
        record.attributes = attributes
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect();
        record.raw = text::raw(row.to_json());
        Ok((record, Key::Time(modified), id))
    }

    async fn read_computers(
        &self,
        positions: &mut Positions,
        batch: &mut Batch,
    ) -> Result<(), SourceError> {
        let mark = positions.get(COMPUTERS).cloned();
        let mut params = Vec::new();
        let window = after(Some("date_mod"), "id", mark.as_ref(), &mut params);
        let sql = format!(
            "SELECT id, entities_id, name, serial, otherserial, states_id, locations_id, \
             is_deleted, is_template, is_dynamic, uuid, date_mod \
             FROM glpi_computers WHERE {window} AND date_mod < {} \
             ORDER BY date_mod, id LIMIT ?",
            self.client
                .dialect()
                .now_minus(self.settings.settle_seconds)
        );
        params.push(Param::Int(i64::from(self.settings.batch)));
        let rows = self.client.query(&sql, &params, false).await?;
        let full = rows.len() >= self.settings.batch as usize;
        batch.rows_read += rows.len() as u64;
        let mut last = mark;
        for i in 0..rows.len() {
            let row = RowView::new(&rows, i, "glpi_computers", "id");
            match self.computer(&row) {
                Ok((item, key, id)) => {
                    batch.equipment.items.push(item);
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
            positions.set(COMPUTERS, m);
        }
        batch.more |= full && batch.stopped.is_none();
        Ok(())
    }

    fn computer(&self, row: &RowView<'_>) -> Result<(Equipment, Key, i64), SourceError> {
        let id = row.int("id")?;
        let modified = row
            .opt_time("date_mod")?
            .ok_or_else(|| SourceError::Data(format!("{}: date_mod is NULL", row.label())))?;
        let name = row
            .opt_text("name")?
            .filter(|n| !n.trim().is_empty())
            .unwrap_or_else(|| format!("computer {id}"));
        let mut attributes = serde_json::Map::new();
        for column in ["serial", "otherserial", "uuid"] {
            if let Some(v) = row.opt_text(column)?.filter(|v| !v.is_empty()) {
                attributes.insert(column.into(), Value::String(v));
            }
        }
        for column in ["entities_id", "states_id", "locations_id", "is_dynamic"] {
            if let Some(v) = row.opt_int(column)? {
                attributes.insert(column.into(), json!(v));
            }
        }
        if let Some(base) = &self.settings.base_url {
            attributes.insert(
                "url".into(),
                json!(link(base, &format!("front/computer.form.php?id={id}"))),
            );
        }
        let removed = row.opt_int("is_deleted")?.unwrap_or(0) != 0
            || row.opt_int("is_template")?.unwrap_or(0) != 0;
        let status = row
            .opt_int("states_id")?
            .filter(|s| *s != 0)
            .map(|s| format!("state {s}"));
        Ok((
            Equipment {
                source_ref: format!("computer/{id}"),
                name: text::one_line(&name, RESOURCE_MAX, "computer"),
                kind: "computer".into(),
                domain: Some("systems".into()),
                status,
                attributes,
                removed,
                updated_at: Some(utc(modified, 0)),
            },
            Key::Time(modified),
            id,
        ))
    }

    async fn poll_inner(&self, position: Option<&str>) -> Result<Batch, SourceError> {
        let mut positions = Positions::parse(position)?;
        let mut batch = Batch::default();
        self.read_tickets(&mut positions, &mut batch).await?;
        if self.settings.computers && batch.stopped.is_none() {
            // Tickets read so far are committed even when the computers cannot be read.
            if let Err(e) = self.read_computers(&mut positions, &mut batch).await {
                batch.stopped = Some(e);
            }
        }
        batch.position = Some(positions.encode());
        Ok(batch)
    }
}

/// GLPI's status labels (`CommonITILObject`).
pub fn status_name(status: i64) -> &'static str {
    match status {
        1 => "New",
        2 => "Processing (assigned)",
        3 => "Processing (planned)",
        4 => "Pending",
        5 => "Solved",
        6 => "Closed",
        7 => "Accepted",
        8 => "Observed",
        10 => "Approval",
        _ => "Unknown status",
    }
}

/// GLPI's priority labels (`CommonITILObject::getPriorityName`).
pub fn priority_name(priority: i64) -> &'static str {
    match priority {
        1 => "Very low",
        2 => "Low",
        3 => "Medium",
        4 => "High",
        5 => "Very high",
        6 => "Major",
        _ => "Unknown",
    }
}

impl Source for Glpi {
    fn name(&self) -> &str {
        &self.name
    }

    fn kind(&self) -> &str {
        "glpi"
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
                "GLPI holds tickets and inventory, not availability".into(),
            ))
        })
    }

    fn ping(&self) -> BoxFuture<'_, Result<(), SourceError>> {
        Box::pin(self.client.ping())
    }
}
