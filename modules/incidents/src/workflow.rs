//! The life of an incident: opening, then the steps the state machine allows, each checked
//! against the doer's permissions on the server and run in one transaction (the incident's new
//! state, its timeline, its mails in the outbox, the audit entry). A refused step changes nothing.
//!
//! The board alert of an opening or a resolution is returned to the caller ([`Done::records`]),
//! who submits it to the pipeline after the commit ([`raise`]).

use std::collections::BTreeSet;
use std::path::PathBuf;

use chrono::{DateTime, Datelike, Utc};
use serde_json::{Value, json};
use vigie_auth::contacts::{self, Contact};
use vigie_core::audit::{Actor, Entry};
use vigie_core::domain::Domains;
use vigie_core::role::{Permission, PermissionSet, Role};
use vigie_core::store::{Store, StoreError, StoreTx};
use vigie_core::time::now;
use vigie_core::{on_pool, on_tx};
use vigie_source::{Ingest, Level, RawRecord, Submission};

use crate::error::IncidentsError;
use crate::mail;
use crate::model::{self, Criticality, Detection, Incident, State};

/// The source name of the board alerts incidents raise.
pub const SOURCE: &str = "incidents";

const TITLE_MAX: usize = 200;
const TEXT_MAX: usize = 10_000;
const CATEGORY_MAX: usize = 100;
const MINUTES_MAX: i64 = 1_000_000;

/// Who does a step: their identity, effective permissions and address (for the audit log).
#[derive(Clone, Debug)]
pub struct Doer {
    pub actor: Actor,
    pub permissions: PermissionSet,
    pub ip: Option<String>,
}

impl Doer {
    fn require(&self, permission: Permission, step: &str) -> Result<(), IncidentsError> {
        if self.permissions.contains(permission) {
            Ok(())
        } else {
            Err(IncidentsError::Forbidden(format!(
                "your role does not allow you to {step} incidents"
            )))
        }
    }

    /// Whether this person may do `step` on `incident` (its state aside): the pages show only
    /// the forms that pass, the steps check it again.
    pub fn may(&self, step: Step, incident: &Incident) -> bool {
        let opener = incident.opener_id == Some(self.actor.user_id);
        let p = |perm| self.permissions.contains(perm);
        match step {
            Step::Edit => {
                p(Permission::IncidentsManage) || (opener && p(Permission::IncidentsOpen))
            }
            Step::Qualify => p(Permission::IncidentsQualify),
            Step::Transfer | Step::Close | Step::Delete => p(Permission::IncidentsManage),
            Step::Resolve { .. } => p(Permission::IncidentsResolve),
            Step::Attach => {
                p(Permission::IncidentsManage)
                    || p(Permission::IncidentsResolve)
                    || (opener && p(Permission::IncidentsOpen))
            }
        }
    }
}

/// What the steps need from the hub.
#[derive(Clone, Copy)]
pub struct Env<'a> {
    pub store: &'a Store,
    pub domains: &'a Domains,
    /// The console's address, for the links in mails.
    pub base_url: &'a str,
    /// Where attachments are kept (`{data_dir}/attachments/…`).
    pub data_dir: &'a std::path::Path,
}

/// A step after opening.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// Change the title, description, comments, detection source, follow flag.
    Edit,
    /// Set type and criticality.
    Qualify,
    /// Hand to on-call people.
    Transfer,
    /// Add a resolution line; the final one resolves.
    Resolve {
        is_final: bool,
    },
    Close,
    Delete,
    /// Add an attachment.
    Attach,
}

impl Step {
    pub fn name(self) -> &'static str {
        match self {
            Step::Edit => "edit",
            Step::Qualify => "qualify",
            Step::Transfer => "transfer",
            Step::Resolve { .. } => "resolve",
            Step::Close => "close",
            Step::Delete => "delete",
            Step::Attach => "attach",
        }
    }

    /// The state the step leads to from `from`, or why the state machine refuses it.
    pub fn next(self, from: State) -> Result<State, &'static str> {
        use State as S;
        match (self, from) {
            (Step::Delete, S::Deleted | S::Archived) => Err(""),
            (Step::Delete, _) => Ok(S::Deleted),
            (Step::Close, S::Resolved) => Ok(S::Closed),
            (Step::Close, _) => Err(": only a resolved incident can be closed"),
            (_, S::Closed | S::Archived | S::Deleted) => Err(""),
            (Step::Edit | Step::Attach, s) => Ok(s),
            (Step::Qualify, S::Created | S::Qualified) => Ok(S::Qualified),
            (Step::Qualify, s @ (S::Transferred | S::InProgress)) => Ok(s),
            (Step::Qualify, _) => Err(": it is already resolved"),
            (Step::Transfer, S::Qualified | S::Transferred) => Ok(S::Transferred),
            (Step::Transfer, S::InProgress) => Ok(S::InProgress),
            (Step::Transfer, S::Created) => Err(": qualify it first"),
            (Step::Transfer, _) => Err(": it is already resolved"),
            (Step::Resolve { is_final: true }, S::Transferred | S::InProgress) => Ok(S::Resolved),
            (Step::Resolve { is_final: false }, S::Transferred | S::InProgress | S::Resolved) => {
                Ok(S::InProgress)
            }
            (Step::Resolve { is_final: true }, S::Resolved) => Err(": it is already resolved"),
            (Step::Resolve { .. }, _) => Err(": transfer it to on-call people first"),
        }
    }

    /// Whether the step is possible from `state` (for the pages).
    pub fn possible(self, state: &str) -> bool {
        State::parse(state).is_some_and(|s| self.next(s).is_ok())
    }
}

/// The result of a step: the incident as it is now, and the board alerts to raise.
#[derive(Debug)]
pub struct Done {
    pub incident: Incident,
    pub records: Vec<RawRecord>,
}

/// Submits the board alerts of a committed step. A failure is logged: the step stands.
pub async fn raise(ingest: Option<&dyn Ingest>, records: Vec<RawRecord>) {
    if records.is_empty() {
        return;
    }
    let Some(ingest) = ingest else {
        tracing::warn!("No pipeline: the incident's board alert was not raised.");
        return;
    };
    if let Err(e) = ingest
        .submit(Submission {
            records,
            checkpoint: None,
        })
        .await
    {
        tracing::error!(error = %e, "The incident's board alert could not be submitted.");
    }
}

fn board_record(incident: &Incident, event: &str, message: String, clear: bool) -> RawRecord {
    let mut r = RawRecord::new(SOURCE, &incident.reference, message);
    r.domain = Some(incident.domain.clone());
    r.level = incident
        .criticality()
        .and_then(|c| Level::from_number(c.level().into()));
    r.occurred_at = Some(incident.updated_at);
    r.attributes.insert("event".into(), json!(event));
    r.attributes
        .insert("incident_id".into(), json!(incident.id));
    r.clear = clear;
    r
}

// ---------------------------------------------------------------------------------------------
// Input checks.

/// The value trimmed, present when required and at most `max` characters long.
fn bounded<'v>(
    field: &str,
    value: &'v str,
    max: usize,
    required: bool,
) -> Result<&'v str, IncidentsError> {
    let v = value.trim();
    if required && v.is_empty() {
        return Err(IncidentsError::invalid(field, "is required"));
    }
    if v.chars().count() > max {
        return Err(IncidentsError::invalid(
            field,
            format!("must be at most {max} characters"),
        ));
    }
    Ok(v)
}

fn one_line(
    field: &str,
    value: &str,
    max: usize,
    required: bool,
) -> Result<String, IncidentsError> {
    let v = bounded(field, value, max, required)?;
    if v.chars().any(char::is_control) {
        return Err(IncidentsError::invalid(field, "must be one line of text"));
    }
    Ok(v.to_owned())
}

fn long_text(field: &str, value: &str, required: bool) -> Result<String, IncidentsError> {
    let v = bounded(field, value, TEXT_MAX, required)?;
    if v.chars()
        .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
    {
        return Err(IncidentsError::invalid(field, "has control characters"));
    }
    Ok(v.replace("\r\n", "\n"))
}

fn criticality(value: &str) -> Result<Criticality, IncidentsError> {
    Criticality::parse(value.trim())
        .ok_or_else(|| IncidentsError::invalid("criticality", "must be green, orange or red"))
}

fn detection(value: &str) -> Result<Detection, IncidentsError> {
    Detection::parse(value.trim())
        .ok_or_else(|| IncidentsError::invalid("detection", "must be phone, mail, visual or alert"))
}

/// The enabled on-call people of `logins` (each once); the error names `field`.
pub async fn oncall_people(
    store: &Store,
    field: &str,
    logins: &[String],
) -> Result<Vec<Contact>, IncidentsError> {
    let mut ids = Vec::new();
    let mut seen = BTreeSet::new();
    for login in logins.iter().map(|l| l.trim()).filter(|l| !l.is_empty()) {
        if !seen.insert(login.to_owned()) {
            continue;
        }
        match vigie_auth::get_user_by_login(store, login).await? {
            Some(u) if !u.disabled && u.role() == Role::Oncall => ids.push(u.id),
            _ => {
                return Err(IncidentsError::invalid(
                    field,
                    format!("`{login}` is not an enabled on-call person"),
                ));
            }
        }
    }
    Ok(contacts::contacts(store, &ids).await?)
}

// ---------------------------------------------------------------------------------------------
// Statements shared by the steps.

#[allow(clippy::too_many_arguments)] // one timeline line: each argument is one of its columns
async fn event(
    tx: &mut StoreTx,
    incident_id: i64,
    at: DateTime<Utc>,
    actor: Option<&Actor>,
    kind: &str,
    from: Option<&str>,
    to: Option<&str>,
    details: Value,
) -> Result<(), StoreError> {
    on_tx!(tx, conn => sqlx::query(
        "INSERT INTO incident_events (incident_id, at, actor_id, actor_login, kind, from_state, to_state, details)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(incident_id)
    .bind(at)
    .bind(actor.map(|a| a.user_id))
    .bind(actor.map(|a| a.login.clone()))
    .bind(kind)
    .bind(from)
    .bind(to)
    .bind(details.to_string())
    .execute(conn)
    .await
    .map(drop))?;
    Ok(())
}

/// Queues one mail per contact having an address, each with its timeline line.
#[allow(clippy::too_many_arguments)] // the mail's cause, recipients and words
async fn mail_all(
    tx: &mut StoreTx,
    env: &Env<'_>,
    incident: &Incident,
    at: DateTime<Utc>,
    actor: &Actor,
    kind: &'static str,
    to: &[Contact],
    note: Option<&str>,
) -> Result<(), StoreError> {
    let mut sent = BTreeSet::new();
    for c in to {
        let Some(email) = c.email.as_deref().filter(|e| !e.is_empty()) else {
            continue;
        };
        if !sent.insert(c.user_id) {
            continue;
        }
        let m = mail::compose(env, incident, kind, c, &actor.login, note);
        vigie_notify::enqueue(
            tx,
            &vigie_notify::Mail {
                to: email.to_owned(),
                subject: m.0,
                text: m.1,
                html: None,
                kind,
                user_id: Some(c.user_id),
            },
        )
        .await?;
        event(
            tx,
            incident.id,
            at,
            Some(actor),
            "mail",
            None,
            None,
            json!({"kind": kind, "to": c.login}),
        )
        .await?;
    }
    Ok(())
}

async fn audit(
    tx: &mut StoreTx,
    doer: &Doer,
    action: &str,
    incident: &Incident,
    before: Option<Value>,
    after: Value,
) -> Result<(), StoreError> {
    vigie_core::audit::record(
        tx,
        Entry::new(Some(&doer.actor), doer.ip.as_deref(), action)
            .target("incident", incident.id, incident.reference.as_str())
            .change(before, Some(after)),
    )
    .await
}

/// Locks the incident's row for the step (the first statement of the transaction, so that two
/// steps on the same incident run one after the other on both backends) and reads it.
async fn lock(tx: &mut StoreTx, id: i64, at: DateTime<Utc>) -> Result<Incident, IncidentsError> {
    let n = on_tx!(tx, conn => sqlx::query("UPDATE incidents SET updated_at = $1 WHERE id = $2")
        .bind(at)
        .bind(id)
        .execute(conn)
        .await
        .map(|r| r.rows_affected()))
    .map_err(StoreError::from)?;
    if n == 0 {
        return Err(IncidentsError::NotFound(id));
    }
    model::get_tx(tx, id)
        .await?
        .ok_or(IncidentsError::NotFound(id))
}

/// Locks, checks the doer's right on this incident and the state machine: the state after.
async fn begin_step(
    tx: &mut StoreTx,
    doer: &Doer,
    id: i64,
    step: Step,
    at: DateTime<Utc>,
) -> Result<(Incident, State, State), IncidentsError> {
    let incident = lock(tx, id, at).await?;
    if !doer.may(step, &incident) {
        return Err(IncidentsError::Forbidden(format!(
            "your role does not allow you to {} this incident",
            step.name()
        )));
    }
    let from = incident.state().unwrap_or(State::Created);
    let to = step.next(from).map_err(|hint| IncidentsError::Conflict {
        step: step.name(),
        state: incident.state.clone(),
        hint,
    })?;
    Ok((incident, from, to))
}

async fn set_state(
    tx: &mut StoreTx,
    id: i64,
    to: State,
    at: DateTime<Utc>,
    acknowledged: bool,
) -> Result<(), StoreError> {
    on_tx!(tx, conn => sqlx::query(
        "UPDATE incidents SET state = $1, updated_at = $2,
                acknowledged_at = CASE WHEN $3 THEN COALESCE(acknowledged_at, $2) ELSE acknowledged_at END
         WHERE id = $4",
    )
    .bind(to.as_str())
    .bind(at)
    .bind(acknowledged)
    .bind(id)
    .execute(conn)
    .await
    .map(drop))?;
    Ok(())
}

/// The incident as it is before a step's transaction: what the step needs from other modules
/// (contacts) is read before the transaction, so that a step holds one connection only.
async fn peek(store: &Store, id: i64) -> Result<Incident, IncidentsError> {
    model::get(store, id)
        .await?
        .ok_or(IncidentsError::NotFound(id))
}

async fn reread(tx: &mut StoreTx, id: i64) -> Result<Incident, IncidentsError> {
    model::get_tx(tx, id)
        .await?
        .ok_or(IncidentsError::NotFound(id))
}

/// A step's transaction once [`begin_step`] agreed: the row locked, the states before and after.
struct Run {
    tx: StoreTx,
    id: i64,
    at: DateTime<Utc>,
    before: Incident,
    from: State,
    to: State,
}

impl Run {
    async fn begin(env: &Env<'_>, doer: &Doer, id: i64, step: Step) -> Result<Run, IncidentsError> {
        let at = now();
        let mut tx = env.store.begin().await?;
        let (before, from, to) = begin_step(&mut tx, doer, id, step, at).await?;
        Ok(Run {
            tx,
            id,
            at,
            before,
            from,
            to,
        })
    }

    /// Sets the state the step leads to; `stamp`, when given, is the statement that records the
    /// moment of the step (`$1` the moment, `$2` the id).
    async fn change_state(
        &mut self,
        acknowledged: bool,
        stamp: Option<&'static str>,
    ) -> Result<(), IncidentsError> {
        set_state(&mut self.tx, self.id, self.to, self.at, acknowledged).await?;
        if let Some(sql) = stamp {
            on_tx!(&mut self.tx, conn => sqlx::query(sql)
                .bind(self.at)
                .bind(self.id)
                .execute(conn)
                .await
                .map(drop))
            .map_err(StoreError::from)?;
        }
        Ok(())
    }

    /// The timeline line of the change of state; the incident as it is now.
    async fn record(
        &mut self,
        doer: &Doer,
        kind: &str,
        details: Value,
    ) -> Result<Incident, IncidentsError> {
        event(
            &mut self.tx,
            self.id,
            self.at,
            Some(&doer.actor),
            kind,
            Some(self.from.as_str()),
            Some(self.to.as_str()),
            details,
        )
        .await?;
        reread(&mut self.tx, self.id).await
    }

    /// The audit entry of the change of state (`{"state": to}` and the fields of `extra`),
    /// then the commit.
    async fn commit(
        mut self,
        doer: &Doer,
        action: &str,
        after: &Incident,
        extra: Value,
    ) -> Result<(), IncidentsError> {
        let mut new = serde_json::Map::new();
        new.insert("state".into(), json!(self.to.as_str()));
        if let Value::Object(extra) = extra {
            new.extend(extra);
        }
        audit(
            &mut self.tx,
            doer,
            action,
            after,
            Some(json!({"state": self.from.as_str()})),
            Value::Object(new),
        )
        .await?;
        self.tx.commit().await?;
        Ok(())
    }
}

impl Done {
    /// A step that raises no board alert.
    fn quiet(incident: Incident) -> Done {
        Done {
            incident,
            records: Vec::new(),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Opening.

/// An incident to open.
#[derive(Clone, Debug, Default, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NewIncident {
    pub domain: String,
    /// Type / category.
    pub category: String,
    pub criticality: String,
    pub title: String,
    pub description: String,
    pub comments: String,
    /// `phone`, `mail`, `visual`, `alert`.
    pub detection: String,
    pub alert_id: Option<i64>,
    /// The opener wants the resolution mailed (suivi).
    pub follow: bool,
    /// Logins of on-call people chosen to follow it (mailed now and at resolution).
    pub followers: Vec<String>,
}

/// Opens an incident: its reference takes the next number of (year, domain) in the same
/// transaction as everything else.
pub async fn open(env: &Env<'_>, doer: &Doer, new: &NewIncident) -> Result<Done, IncidentsError> {
    doer.require(Permission::IncidentsOpen, "open")?;
    let domain = new.domain.trim();
    let Some(def) = env.domains.get(domain) else {
        return Err(IncidentsError::invalid(
            "domain",
            format!(
                "`{domain}` is not a domain: one of {}",
                env.domains.ids().collect::<Vec<_>>().join(", ")
            ),
        ));
    };
    let title = one_line("title", &new.title, TITLE_MAX, true)?;
    let category = one_line("category", &new.category, CATEGORY_MAX, false)?;
    let criticality = criticality(&new.criticality)?;
    let detection = detection(&new.detection)?;
    let description = long_text("description", &new.description, false)?;
    let comments = long_text("comments", &new.comments, false)?;
    if new.alert_id.is_some_and(|a| a <= 0) {
        return Err(IncidentsError::invalid("alert_id", "must be an alert's id"));
    }
    // Opening from an alert is for those who see the alert board (DOMAIN.md: the operator).
    if new.alert_id.is_some() {
        doer.require(Permission::AlertsView, "open from an alert")?;
    }
    let followers = oncall_people(env.store, "followers", &new.followers).await?;
    let managers = contacts::managers_of(env.store, domain).await?;
    let at = now();
    let year = i64::from(at.year());

    let mut tx = env.store.begin().await?;
    // First statement: takes the (year, domain) counter's row lock (PostgreSQL) or the write lock
    // (SQLite) until the commit, so concurrent openings get consecutive numbers.
    let number: i64 = on_tx!(&mut tx, conn => sqlx::query_scalar(
        "INSERT INTO incident_counters (year, domain, last) VALUES ($1, $2, 1)
         ON CONFLICT (year, domain) DO UPDATE SET last = incident_counters.last + 1
         RETURNING last",
    )
    .bind(year)
    .bind(domain)
    .fetch_one(conn)
    .await)
    .map_err(StoreError::from)?;
    let reference = format!("{year}/{}/{number}", def.code);
    let id: i64 = on_tx!(&mut tx, conn => sqlx::query_scalar(
        "INSERT INTO incidents (reference, year, number, domain, category, criticality, title,
                description, comments, detection, alert_id, opener_id, opener_login, opened_at,
                state, follow, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, 'created', $15, $14)
         RETURNING id",
    )
    .bind(&reference)
    .bind(year)
    .bind(number)
    .bind(domain)
    .bind(&category)
    .bind(criticality.as_str())
    .bind(&title)
    .bind(&description)
    .bind(&comments)
    .bind(detection.as_str())
    .bind(new.alert_id)
    .bind(doer.actor.user_id)
    .bind(&doer.actor.login)
    .bind(at)
    .bind(new.follow)
    .fetch_one(conn)
    .await)
    .map_err(StoreError::from)?;
    if let Some(alert_id) = new.alert_id
        && !vigie_alerts::actions::link_incident(&mut tx, alert_id, id).await?
    {
        return Err(IncidentsError::invalid(
            "alert_id",
            format!("no alert {alert_id}"),
        ));
    }
    add_people(&mut tx, id, &followers, "follower", &doer.actor.login, at).await?;
    let incident = reread(&mut tx, id).await?;
    event(
        &mut tx,
        id,
        at,
        Some(&doer.actor),
        "opened",
        None,
        Some(State::Created.as_str()),
        json!({
            "reference": reference, "domain": domain, "category": category,
            "criticality": criticality.as_str(), "title": title, "detection": detection.as_str(),
            "alert_id": new.alert_id, "follow": new.follow,
            "followers": followers.iter().map(|c| &c.login).collect::<Vec<_>>(),
        }),
    )
    .await?;
    for recipients in [&followers, &managers] {
        let (actor, cause) = (&doer.actor, "incident.opened");
        mail_all(&mut tx, env, &incident, at, actor, cause, recipients, None).await?;
    }
    audit(
        &mut tx,
        doer,
        "incident.open",
        &incident,
        None,
        json!({"reference": reference, "state": "created"}),
    )
    .await?;
    tx.commit().await?;
    let message = format!("Incident {reference} opened: {title}");
    let record = board_record(&incident, "incident.opened", message, false);
    Ok(Done {
        incident,
        records: vec![record],
    })
}

async fn add_people(
    tx: &mut StoreTx,
    id: i64,
    people: &[Contact],
    kind: &str,
    by: &str,
    at: DateTime<Utc>,
) -> Result<(), StoreError> {
    for c in people {
        on_tx!(tx, conn => sqlx::query(
            "INSERT INTO incident_people (incident_id, user_id, login, kind, added_at, added_by)
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (incident_id, user_id, kind) DO NOTHING",
        )
        .bind(id)
        .bind(c.user_id)
        .bind(&c.login)
        .bind(kind)
        .bind(at)
        .bind(by)
        .execute(conn)
        .await
        .map(drop))?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Steps.

/// The fields an edit may change (`None`: unchanged).
#[derive(Clone, Debug, Default, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Edit {
    pub title: Option<String>,
    pub description: Option<String>,
    pub comments: Option<String>,
    pub detection: Option<String>,
    pub follow: Option<bool>,
}

/// Edits an incident (operator, or its opener).
pub async fn edit(env: &Env<'_>, doer: &Doer, id: i64, e: &Edit) -> Result<Done, IncidentsError> {
    let title = e
        .title
        .as_deref()
        .map(|t| one_line("title", t, TITLE_MAX, true))
        .transpose()?;
    let description = e
        .description
        .as_deref()
        .map(|t| long_text("description", t, false))
        .transpose()?;
    let comments = e
        .comments
        .as_deref()
        .map(|t| long_text("comments", t, false))
        .transpose()?;
    let detection = e.detection.as_deref().map(detection).transpose()?;
    let Run {
        mut tx, at, before, ..
    } = Run::begin(env, doer, id, Step::Edit).await?;
    on_tx!(&mut tx, conn => sqlx::query(
        "UPDATE incidents SET title = COALESCE($1, title), description = COALESCE($2, description),
                comments = COALESCE($3, comments), detection = COALESCE($4, detection),
                follow = COALESCE($5, follow), updated_at = $6
         WHERE id = $7",
    )
    .bind(&title)
    .bind(&description)
    .bind(&comments)
    .bind(detection.map(Detection::as_str))
    .bind(e.follow)
    .bind(at)
    .bind(id)
    .execute(conn)
    .await
    .map(drop))
    .map_err(StoreError::from)?;
    let after = reread(&mut tx, id).await?;
    let mut changed = serde_json::Map::new();
    let old = edit_view(&before);
    let new = edit_view(&after);
    for (k, v) in new.as_object().into_iter().flatten() {
        if old.get(k) != Some(v) {
            changed.insert(k.clone(), json!({"from": old.get(k), "to": v}));
        }
    }
    event(
        &mut tx,
        id,
        at,
        Some(&doer.actor),
        "edited",
        None,
        None,
        Value::Object(changed),
    )
    .await?;
    audit(&mut tx, doer, "incident.edit", &after, Some(old), new).await?;
    tx.commit().await?;
    Ok(Done::quiet(after))
}

fn edit_view(i: &Incident) -> Value {
    json!({"title": i.title, "description": i.description, "comments": i.comments,
           "detection": i.detection, "follow": i.follow})
}

/// Qualification: type/category and criticality.
#[derive(Clone, Debug, Default, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Qualify {
    pub category: String,
    pub criticality: String,
}

pub async fn qualify(
    env: &Env<'_>,
    doer: &Doer,
    id: i64,
    q: &Qualify,
) -> Result<Done, IncidentsError> {
    doer.require(Permission::IncidentsQualify, "qualify")?;
    let category = one_line("category", &q.category, CATEGORY_MAX, true)?;
    let crit = criticality(&q.criticality)?;
    let mut run = Run::begin(env, doer, id, Step::Qualify).await?;
    on_tx!(&mut run.tx, conn => sqlx::query(
        "UPDATE incidents SET category = $1, criticality = $2 WHERE id = $3",
    )
    .bind(&category)
    .bind(crit.as_str())
    .bind(id)
    .execute(conn)
    .await
    .map(drop))
    .map_err(StoreError::from)?;
    run.change_state(true, None).await?;
    let details = json!({
        "category": {"from": run.before.category, "to": category},
        "criticality": {"from": run.before.criticality, "to": crit.as_str()},
    });
    let after = run.record(doer, "qualified", details.clone()).await?;
    let extra = json!({"detail": details});
    run.commit(doer, "incident.qualify", &after, extra).await?;
    Ok(Done::quiet(after))
}

/// Transfers to on-call people (by login): each is mailed, the domain's managers are told.
pub async fn transfer(
    env: &Env<'_>,
    doer: &Doer,
    id: i64,
    logins: &[String],
) -> Result<Done, IncidentsError> {
    doer.require(Permission::IncidentsManage, "transfer")?;
    let people = oncall_people(env.store, "to", logins).await?;
    if people.is_empty() {
        return Err(IncidentsError::invalid(
            "to",
            "name at least one on-call person to transfer to",
        ));
    }
    // The domain never changes after opening.
    let managers = contacts::managers_of(env.store, &peek(env.store, id).await?.domain).await?;
    let mut run = Run::begin(env, doer, id, Step::Transfer).await?;
    let at = run.at;
    add_people(&mut run.tx, id, &people, "assignee", &doer.actor.login, at).await?;
    run.change_state(true, None).await?;
    let names: Vec<&String> = people.iter().map(|c| &c.login).collect();
    let after = run
        .record(doer, "transferred", json!({"to": names}))
        .await?;
    let note = names
        .iter()
        .map(|s| s.as_str())
        .collect::<Vec<_>>()
        .join(", ");
    for recipients in [&people, &managers] {
        let (actor, cause, note) = (&doer.actor, "incident.transferred", Some(note.as_str()));
        mail_all(&mut run.tx, env, &after, at, actor, cause, recipients, note).await?;
    }
    let extra = json!({"to": names});
    run.commit(doer, "incident.transfer", &after, extra).await?;
    Ok(Done::quiet(after))
}

/// A resolution line.
#[derive(Clone, Debug, Default, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NewResolution {
    pub text: String,
    /// Time spent, in minutes.
    pub minutes: i64,
    /// Final: the incident is resolved; else it is (or goes back) in progress.
    #[serde(rename = "final")]
    pub is_final: bool,
}

/// Adds a resolution line: the state becomes `resolved` (final) or `in_progress`; the opener
/// (when following) and every person of the incident are mailed; the board gets an alert.
pub async fn resolve(
    env: &Env<'_>,
    doer: &Doer,
    id: i64,
    r: &NewResolution,
) -> Result<Done, IncidentsError> {
    doer.require(Permission::IncidentsResolve, "resolve")?;
    let text = long_text("text", &r.text, true)?;
    if !(0..=MINUTES_MAX).contains(&r.minutes) {
        return Err(IncidentsError::invalid(
            "minutes",
            format!("must be 0 to {MINUTES_MAX}"),
        ));
    }
    let step = Step::Resolve {
        is_final: r.is_final,
    };
    // The opener when following, and everyone following or in charge.
    let current = peek(env.store, id).await?;
    let mut ids: Vec<i64> = Vec::new();
    if current.follow
        && let Some(opener) = current.opener_id
    {
        ids.push(opener);
    }
    let people: Vec<i64> = on_pool!(env.store, pool => sqlx::query_scalar(
        "SELECT DISTINCT user_id FROM incident_people WHERE incident_id = $1 ORDER BY user_id",
    )
    .bind(id)
    .fetch_all(pool)
    .await)
    .map_err(StoreError::from)?;
    ids.extend(people);
    let recipients = contacts::contacts(env.store, &ids).await?;
    let mut run = Run::begin(env, doer, id, step).await?;
    let at = run.at;
    let resolution_id: i64 = on_tx!(&mut run.tx, conn => sqlx::query_scalar(
        "INSERT INTO incident_resolutions (incident_id, text, minutes, final, author_id, author_login, at)
         VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
    )
    .bind(id)
    .bind(&text)
    .bind(r.minutes)
    .bind(r.is_final)
    .bind(doer.actor.user_id)
    .bind(&doer.actor.login)
    .bind(at)
    .fetch_one(conn)
    .await)
    .map_err(StoreError::from)?;
    run.change_state(true, None).await?;
    on_tx!(&mut run.tx, conn => sqlx::query(
        "UPDATE incidents SET resolved_at = CASE WHEN $1 THEN $2 ELSE NULL END WHERE id = $3",
    )
    .bind(r.is_final)
    .bind(at)
    .bind(id)
    .execute(conn)
    .await
    .map(drop))
    .map_err(StoreError::from)?;
    let details = json!({"resolution_id": resolution_id, "final": r.is_final, "minutes": r.minutes, "text": text});
    let after = run.record(doer, "resolution", details).await?;
    mail_all(
        &mut run.tx,
        env,
        &after,
        at,
        &doer.actor,
        "incident.resolved",
        &recipients,
        Some(&text),
    )
    .await?;
    let extra = json!({"final": r.is_final, "minutes": r.minutes});
    run.commit(doer, "incident.resolve", &after, extra).await?;
    let mut records = Vec::new();
    if r.is_final {
        // The opening's alert is over; the resolution's alert tells the operators.
        records.push(board_record(
            &after,
            "incident.opened",
            format!("Incident {} resolved", after.reference),
            true,
        ));
        records.push(board_record(
            &after,
            "incident.resolved",
            format!("Incident {} resolved: {}", after.reference, after.title),
            false,
        ));
    } else {
        records.push(board_record(
            &after,
            "incident.progress",
            format!("Incident {} in progress: {}", after.reference, after.title),
            false,
        ));
    }
    Ok(Done {
        incident: after,
        records,
    })
}

/// Closes a resolved incident (operator); the opener is mailed. Copying it into the knowledge
/// base is the caller's next page (see [`crate::kb_copy_url`]).
pub async fn close(env: &Env<'_>, doer: &Doer, id: i64) -> Result<Done, IncidentsError> {
    doer.require(Permission::IncidentsManage, "close")?;
    let opener = match peek(env.store, id).await?.opener_id {
        Some(o) => contacts::contacts(env.store, &[o]).await?,
        None => Vec::new(),
    };
    let mut run = Run::begin(env, doer, id, Step::Close).await?;
    let at = run.at;
    let stamp = "UPDATE incidents SET closed_at = $1 WHERE id = $2";
    run.change_state(false, Some(stamp)).await?;
    let after = run.record(doer, "closed", json!({})).await?;
    mail_all(
        &mut run.tx,
        env,
        &after,
        at,
        &doer.actor,
        "incident.closed",
        &opener,
        None,
    )
    .await?;
    run.commit(doer, "incident.close", &after, json!({}))
        .await?;
    Ok(Done::quiet(after))
}

/// Deletes an incident (operator): its state becomes `deleted` (the reference is never given
/// again), its attachments go (rows in the transaction, files after the commit).
pub async fn delete(env: &Env<'_>, doer: &Doer, id: i64) -> Result<Done, IncidentsError> {
    doer.require(Permission::IncidentsManage, "delete")?;
    let mut run = Run::begin(env, doer, id, Step::Delete).await?;
    let keys = crate::attachments::delete_rows(&mut run.tx, id).await?;
    let stamp = "UPDATE incidents SET deleted_at = $1 WHERE id = $2";
    run.change_state(false, Some(stamp)).await?;
    let details = json!({"attachments": keys.len()});
    let after = run.record(doer, "deleted", details).await?;
    run.commit(doer, "incident.delete", &after, json!({}))
        .await?;
    crate::attachments::remove_files(env.data_dir, &keys);
    Ok(Done::quiet(after))
}

/// Records an attachment (its file already written at `key`) in one transaction; the caller
/// removes the file when this fails.
pub async fn attach(
    env: &Env<'_>,
    doer: &Doer,
    id: i64,
    file: &crate::attachments::Stored,
) -> Result<model::Attachment, IncidentsError> {
    let Run {
        mut tx,
        at,
        before: incident,
        ..
    } = Run::begin(env, doer, id, Step::Attach).await?;
    let attachment_id: i64 = on_tx!(&mut tx, conn => sqlx::query_scalar(
        "INSERT INTO incident_attachments (incident_id, file_name, content_type, size, storage_key, uploaded_by, uploaded_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
    )
    .bind(id)
    .bind(&file.file_name)
    .bind(file.content_type)
    .bind(file.size as i64)
    .bind(&file.key)
    .bind(&doer.actor.login)
    .bind(at)
    .fetch_one(conn)
    .await)
    .map_err(StoreError::from)?;
    event(
        &mut tx,
        id,
        at,
        Some(&doer.actor),
        "attachment",
        None,
        None,
        json!({"id": attachment_id, "file_name": file.file_name, "content_type": file.content_type, "size": file.size}),
    )
    .await?;
    audit(
        &mut tx,
        doer,
        "incident.attach",
        &incident,
        None,
        json!({"file_name": file.file_name, "size": file.size}),
    )
    .await?;
    tx.commit().await?;
    Ok(model::Attachment {
        id: attachment_id,
        incident_id: id,
        file_name: file.file_name.clone(),
        content_type: file.content_type.to_owned(),
        size: file.size as i64,
        storage_key: file.key.clone(),
        uploaded_by: doer.actor.login.clone(),
        uploaded_at: at,
    })
}

/// The routes of the steps, in the pages and the API: the permission each asks for before
/// anything is read (the step checks the doer's right on the incident again).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route {
    Edit,
    Qualify,
    Transfer,
    Resolve,
    Close,
    Delete,
}

impl Route {
    pub const ALL: [Route; 6] = [
        Route::Edit,
        Route::Qualify,
        Route::Transfer,
        Route::Resolve,
        Route::Close,
        Route::Delete,
    ];

    /// The last segment of the route's path.
    pub fn name(self) -> &'static str {
        match self {
            Route::Edit => "edit",
            Route::Qualify => "qualify",
            Route::Transfer => "transfer",
            Route::Resolve => "resolve",
            Route::Close => "close",
            Route::Delete => "delete",
        }
    }

    pub fn permission(self) -> Permission {
        match self {
            Route::Edit => Permission::IncidentsOpen,
            Route::Qualify => Permission::IncidentsQualify,
            Route::Resolve => Permission::IncidentsResolve,
            Route::Transfer | Route::Close | Route::Delete => Permission::IncidentsManage,
        }
    }
}

/// A step after opening with what it needs: the one door the API and the pages go through.
pub enum Input {
    Edit(Edit),
    Qualify(Qualify),
    /// The logins of the on-call people.
    Transfer(Vec<String>),
    Resolve(NewResolution),
    Close,
    Delete,
}

impl Input {
    pub async fn run(&self, env: &Env<'_>, doer: &Doer, id: i64) -> Result<Done, IncidentsError> {
        match self {
            Input::Edit(e) => edit(env, doer, id, e).await,
            Input::Qualify(q) => qualify(env, doer, id, q).await,
            Input::Transfer(to) => transfer(env, doer, id, to).await,
            Input::Resolve(r) => resolve(env, doer, id, r).await,
            Input::Close => close(env, doer, id).await,
            Input::Delete => delete(env, doer, id).await,
        }
    }
}

/// Where the attachments of the hub live.
pub fn attachments_dir(data_dir: &std::path::Path) -> PathBuf {
    data_dir.join("attachments")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_state_machine_follows_the_domain() {
        use State as S;
        let fin = Step::Resolve { is_final: true };
        let part = Step::Resolve { is_final: false };
        assert_eq!(Step::Qualify.next(S::Created), Ok(S::Qualified));
        assert!(Step::Transfer.next(S::Created).is_err());
        assert_eq!(Step::Transfer.next(S::Qualified), Ok(S::Transferred));
        assert!(fin.next(S::Qualified).is_err());
        assert_eq!(fin.next(S::Transferred), Ok(S::Resolved));
        assert_eq!(part.next(S::Resolved), Ok(S::InProgress));
        assert_eq!(fin.next(S::InProgress), Ok(S::Resolved));
        assert!(fin.next(S::Resolved).is_err());
        assert!(Step::Close.next(S::InProgress).is_err());
        assert_eq!(Step::Close.next(S::Resolved), Ok(S::Closed));
        for s in [S::Closed, S::Archived, S::Deleted] {
            for step in [
                Step::Edit,
                Step::Qualify,
                Step::Transfer,
                fin,
                part,
                Step::Close,
            ] {
                assert!(step.next(s).is_err(), "{step:?} from {s:?}");
            }
        }
        assert_eq!(Step::Delete.next(S::Closed), Ok(S::Deleted));
        assert!(Step::Delete.next(S::Deleted).is_err());
    }
}
