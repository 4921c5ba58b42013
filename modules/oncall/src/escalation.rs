//! Escalation when nobody acknowledges: the engine that routes each new alert to the people on
//! duty (through [`crate::routing`]) and, step by step, tells the next index and then the
//! domain's managers until someone acknowledges.
//!
//! The state lives in the store (`oncall_escalations`), so a restarted hub picks the chain up
//! where it was. Each step is one transaction: the escalation row moves on only if it is still
//! at the step this process read (two hub processes never take the same step twice), and the
//! step's messages are queued in that transaction with de-duplication keys
//! (`esc:{alert}:{round}:{step}:{user}:{channel}`), so a step's messages exist once, exactly
//! when the step was committed.
//!
//! [`Engine::tick`] is the step logic with an explicit `now`, which tests drive; [`spawn`] runs
//! it every few seconds and routes alerts as soon as the pipeline publishes them.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Value, json};
use tokio::sync::{broadcast, watch};
use tokio::task::{JoinHandle, JoinSet};
use vigie_alerts::maintenance::{self, Window};
use vigie_alerts::model::{Alert, AlertEvent, Change};
use vigie_alerts::pipeline::Pipeline;
use vigie_alerts::repo::{self, AlertFilter};
use vigie_core::store::{Backend, Marks, Store, StoreError, StoreTx};
use vigie_core::{on_pool, on_tx};
use vigie_notify::templates::{self, Source};
use vigie_notify::{Channel, Message};

use crate::planning::OnDuty;
use crate::{OncallError, ack, prefs, routing};

/// What the engine is configured with (`[oncall]`).
#[derive(Clone, Debug)]
pub struct OncallSettings {
    /// The lowest level routed when a domain has no routing rule (2: critical only).
    pub default_level: i32,
    /// How long nobody may acknowledge before the next index is told, when a domain has no rule.
    pub escalation_delay: Duration,
    /// How often due steps are looked for.
    pub sweep_interval: Duration,
    /// How long an acknowledgement link stays valid.
    pub link_ttl: Duration,
    /// The hub's address as users reach it (links in messages), without a trailing slash.
    pub base_url: String,
    /// The hub's time zone: the routing rules' time-of-day windows, and quiet hours of users
    /// who chose no time zone.
    pub timezone: chrono_tz::Tz,
    /// Messages' language for users who chose none.
    pub default_lang: String,
}

impl Default for OncallSettings {
    fn default() -> OncallSettings {
        OncallSettings {
            default_level: 2,
            escalation_delay: Duration::from_secs(15 * 60),
            sweep_interval: Duration::from_secs(5),
            link_ttl: Duration::from_secs(24 * 3600),
            base_url: "http://127.0.0.1:8080".into(),
            timezone: chrono_tz::UTC,
            default_lang: "fr".into(),
        }
    }
}

impl OncallSettings {
    /// The defaults, with the console's address, time zone and language.
    pub fn for_console(console: &vigie_console::Console) -> OncallSettings {
        OncallSettings {
            base_url: console.base_url(),
            timezone: console.settings.timezone,
            default_lang: console.settings.default_lang.code().to_owned(),
            ..OncallSettings::default()
        }
    }
}

/// The answer of a [`Roster`].
pub type RosterFuture<'a> =
    Pin<Box<dyn Future<Output = Result<Vec<OnDuty>, OncallError>> + Send + 'a>>;

/// Who is on duty: the planning in the hub, a fixed list in tests.
pub trait Roster: Send + Sync {
    /// The people on duty for `domain` at `at`, lowest index first.
    fn on_duty<'a>(
        &'a self,
        store: &'a Store,
        domain: &'a str,
        at: DateTime<Utc>,
    ) -> RosterFuture<'a>;
}

/// The planning of this crate ([`crate::planning::on_duty`]).
pub struct Planning;

impl Roster for Planning {
    fn on_duty<'a>(
        &'a self,
        store: &'a Store,
        domain: &'a str,
        at: DateTime<Utc>,
    ) -> RosterFuture<'a> {
        Box::pin(crate::planning::on_duty(store, domain, at))
    }
}

/// One alert's escalation as stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct Escalation {
    pub alert_id: i64,
    pub domain: String,
    pub rule_id: Option<i64>,
    /// Grows each time a cleared alert comes back and is routed again.
    pub round: i32,
    /// Steps taken in this round.
    pub step: i32,
    /// The planning index told last.
    pub last_index: Option<i32>,
    pub managers_told: bool,
    pub delay_minutes: i32,
    /// `active`, `acknowledged`, `exhausted` or `cancelled`.
    pub state: String,
    pub next_at: Option<DateTime<Utc>>,
    pub started_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub acknowledged_by: Option<i64>,
    pub acknowledged_login: Option<String>,
    pub acknowledged_at: Option<DateTime<Utc>>,
    /// `board`, `link` or `sms`.
    pub acknowledged_via: Option<String>,
}

const ESCALATION_COLUMNS: &str = "alert_id, domain, rule_id, round, step, last_index, \
    managers_told, delay_minutes, state, next_at, started_at, updated_at, acknowledged_by, \
    acknowledged_login, acknowledged_at, acknowledged_via";

/// The escalation of an alert, if it was ever routed.
pub async fn get(store: &Store, alert_id: i64) -> Result<Option<Escalation>, OncallError> {
    let sql = format!("SELECT {ESCALATION_COLUMNS} FROM oncall_escalations WHERE alert_id = $1");
    Ok(
        on_pool!(store, pool => sqlx::query_as::<_, Escalation>(sqlx::AssertSqlSafe(sql))
        .bind(alert_id)
        .fetch_optional(pool)
        .await)
        .map_err(StoreError::from)?,
    )
}

/// One step as recorded: who was told, on which channels.
#[derive(Clone, Debug, Serialize, sqlx::FromRow)]
pub struct StepLine {
    pub round: i32,
    pub step: i32,
    pub at: DateTime<Utc>,
    /// `duty` or `managers`.
    pub target: String,
    pub duty_index: Option<i32>,
    /// JSON array of `{user_id, login, channels, held}`.
    pub told: String,
}

/// The steps of an alert's escalation, oldest first.
pub async fn steps(store: &Store, alert_id: i64) -> Result<Vec<StepLine>, OncallError> {
    Ok(on_pool!(store, pool => sqlx::query_as::<_, StepLine>(
        "SELECT round, step, at, target, duty_index, told FROM oncall_escalation_steps
         WHERE alert_id = $1 ORDER BY round, step",
    )
    .bind(alert_id)
    .fetch_all(pool)
    .await)
    .map_err(StoreError::from)?)
}

/// Marks an active escalation acknowledged (the chain stops) in the caller's transaction;
/// returns whether it was active.
pub async fn mark_acknowledged(
    tx: &mut StoreTx,
    alert_id: i64,
    user_id: Option<i64>,
    login: Option<&str>,
    via: &str,
    at: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let n = on_tx!(tx, conn => sqlx::query(
        "UPDATE oncall_escalations SET state = 'acknowledged', next_at = NULL, updated_at = $1,
                acknowledged_by = $2, acknowledged_login = $3, acknowledged_at = $1,
                acknowledged_via = $4
         WHERE alert_id = $5 AND state = 'active'",
    )
    .bind(at)
    .bind(user_id)
    .bind(login)
    .bind(via)
    .bind(alert_id)
    .execute(conn)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(n > 0)
}

/// What a tick did, for logs and tests.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TickReport {
    /// Steps taken (someone told).
    pub steps: usize,
    /// Chains ended: acknowledged on the board, exhausted, or cancelled.
    pub ended: usize,
}

/// A person to tell at a step.
#[derive(Clone, Debug)]
struct Person {
    user_id: i64,
    login: String,
    name: String,
    email: Option<String>,
    phone: Option<String>,
    lang: Option<String>,
}

impl From<&OnDuty> for Person {
    fn from(p: &OnDuty) -> Person {
        Person {
            user_id: p.user_id,
            login: p.login.clone(),
            name: p.name.clone(),
            email: p.email.clone(),
            phone: p.phone.clone(),
            lang: p.lang.clone(),
        }
    }
}

impl From<&vigie_auth::contacts::Contact> for Person {
    fn from(c: &vigie_auth::contacts::Contact) -> Person {
        Person {
            user_id: c.user_id,
            login: c.login.clone(),
            name: c.name.clone(),
            email: c.email.clone(),
            phone: c.phone.clone(),
            lang: c.lang.clone(),
        }
    }
}

/// Who the next step tells.
enum Next {
    Duty(i32, Vec<Person>),
    Managers(Vec<Person>),
    Exhausted,
}

/// One person's share of a step.
struct Told {
    person: Person,
    token: Option<String>,
    /// The code the person can answer the SMS with ("ACK code"), when told by SMS.
    sms_code: Option<String>,
    channels: Vec<&'static str>,
    held: bool,
}

/// Where a chain stands before its next step.
#[derive(Clone, Copy, Debug)]
struct Cursor {
    round: i32,
    /// Steps taken in the round.
    step: i32,
    last_index: Option<i32>,
    managers_told: bool,
    delay_minutes: i32,
}

impl Cursor {
    fn of(e: &Escalation) -> Cursor {
        Cursor {
            round: e.round,
            step: e.step,
            last_index: e.last_index,
            managers_told: e.managers_told,
            delay_minutes: e.delay_minutes,
        }
    }
}

/// A step ready to write: who is told, and their messages.
struct StepPlan {
    /// `duty` or `managers`.
    target: &'static str,
    duty_index: Option<i32>,
    told: Vec<Told>,
    messages: Vec<Message>,
}

impl StepPlan {
    /// Whether anyone will get a message.
    fn reached(&self) -> bool {
        !self.messages.is_empty()
    }
}

/// What the store answers the same way for every alert of a batch (or of a tick), asked once.
#[derive(Default)]
struct Memo {
    rules: HashMap<String, Vec<routing::Rule>>,
    duty: HashMap<String, Vec<OnDuty>>,
    managers: HashMap<String, Vec<Person>>,
    prefs: HashMap<i64, prefs::Prefs>,
    tz: HashMap<i64, chrono_tz::Tz>,
    templates: HashMap<TemplateKey, Option<Source>>,
}

/// A template's kind, channel and language.
type TemplateKey = (String, &'static str, &'static str);

/// A message template parsed once, rendered like `vigie_notify::templates::render_source`:
/// subject on one line, text trimmed, only the HTML body escaped.
struct Compiled {
    source: Source,
    tera: tera::Tera,
    html: bool,
}

impl Compiled {
    fn new(source: &Source) -> Result<Compiled, tera::Error> {
        let mut tera = tera::Tera::default();
        tera.autoescape_on(vec![".html"]);
        tera.add_raw_template("subject.txt", &source.subject)?;
        tera.add_raw_template("text.txt", &source.text)?;
        let html = source.html.as_ref().is_some_and(|h| !h.trim().is_empty());
        if let Some(h) = source.html.as_ref().filter(|_| html) {
            tera.add_raw_template("body.html", h)?;
        }
        Ok(Compiled {
            source: source.clone(),
            tera,
            html,
        })
    }

    fn render(&self, context: &tera::Context) -> Result<vigie_notify::Rendered, tera::Error> {
        let subject = self.tera.render("subject.txt", context)?;
        let text = self.tera.render("text.txt", context)?;
        let html = if self.html {
            Some(self.tera.render("body.html", context)?)
        } else {
            None
        };
        Ok(vigie_notify::Rendered {
            subject: subject.split_whitespace().collect::<Vec<_>>().join(" "),
            text: text.trim().to_owned(),
            html,
        })
    }
}

/// One alert of a batch, decided: how its chain starts.
struct Start {
    alert_id: i64,
    domain: String,
    /// The round it replaces when a cleared alert came back.
    restart: Option<i32>,
    rule_id: Option<i64>,
    cursor: Cursor,
    plan: Option<StepPlan>,
}

/// The maintenance windows and when they were read.
type CachedWindows = (Instant, Arc<Vec<Window>>);

/// The routing and escalation engine: cheap to clone.
#[derive(Clone)]
pub struct Engine {
    store: Store,
    settings: Arc<OncallSettings>,
    roster: Arc<dyn Roster>,
    /// The maintenance windows, read at most every few seconds.
    windows: Arc<Mutex<Option<CachedWindows>>>,
    /// Message templates, parsed once.
    compiled: Arc<Mutex<CompiledCache>>,
}

/// Compiled templates by key and origin (stored by the administrator, or built in).
type CompiledCache = HashMap<(TemplateKey, bool), Arc<Compiled>>;

/// Alerts routed in one transaction at most (the write lock is held that long on SQLite).
const BATCH: usize = 250;

impl Engine {
    /// An engine over the planning.
    pub fn new(store: Store, settings: OncallSettings) -> Engine {
        Engine::with_roster(store, settings, Arc::new(Planning))
    }

    /// An engine over another source of who is on duty.
    pub fn with_roster(store: Store, settings: OncallSettings, roster: Arc<dyn Roster>) -> Engine {
        Engine {
            store,
            settings: Arc::new(settings),
            roster,
            windows: Arc::new(Mutex::new(None)),
            compiled: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    pub fn settings(&self) -> &OncallSettings {
        &self.settings
    }

    async fn windows(&self) -> Result<Arc<Vec<Window>>, OncallError> {
        if let Ok(slot) = self.windows.lock()
            && let Some((at, w)) = slot.as_ref()
            && at.elapsed() < Duration::from_secs(2)
        {
            return Ok(w.clone());
        }
        let fresh = Arc::new(maintenance::list(&self.store).await?);
        if let Ok(mut slot) = self.windows.lock() {
            *slot = Some((Instant::now(), fresh.clone()));
        }
        Ok(fresh)
    }

    /// Whether an active maintenance window covers the alert (the mark may not be set yet: the
    /// live feed sets it after the commit, at the same time as this engine reads the alert).
    async fn in_maintenance(&self, alert: &Alert, now: DateTime<Utc>) -> Result<bool, OncallError> {
        if alert.in_maintenance {
            return Ok(true);
        }
        Ok(self
            .windows()
            .await?
            .iter()
            .any(|w| w.active_at(now) && w.covers(&alert.domain, &alert.resource)))
    }

    /// Routes an alert if it should be (see [`Engine::route_many`]); whether a chain started.
    pub async fn route(&self, alert_id: i64, now: DateTime<Utc>) -> Result<bool, OncallError> {
        Ok(self.route_many(&[alert_id], now).await? > 0)
    }

    /// Routes the alerts that should be: at or above their domain's level, matching a rule,
    /// not in maintenance, open, not already escalating (a cleared alert that came back starts
    /// a new round, unless it flaps: told once, not at every reopen). The first step is taken
    /// at once, in the transaction that starts the chain. Returns how many chains started.
    pub async fn route_many(&self, ids: &[i64], now: DateTime<Utc>) -> Result<usize, OncallError> {
        let mut ids = ids.to_vec();
        ids.sort_unstable();
        ids.dedup();
        // PostgreSQL commits concurrent transactions together: a burst goes out faster in a
        // few parallel chunks. SQLite has one writer at a time.
        let parallel = match self.store.backend() {
            Backend::Postgres => 4,
            Backend::Sqlite => 1,
        };
        let size = ids.len().div_ceil(parallel).clamp(1, BATCH);
        let mut started = 0;
        let mut chunks = ids.chunks(size);
        loop {
            let mut tasks = JoinSet::new();
            for chunk in chunks.by_ref().take(parallel) {
                let engine = self.clone();
                let chunk = chunk.to_vec();
                tasks.spawn(async move { engine.route_chunk(&chunk, now).await });
            }
            if tasks.is_empty() {
                break;
            }
            while let Some(done) = tasks.join_next().await {
                match done {
                    Ok(result) => started += result?,
                    Err(e) => return Err(task_failed(&e)),
                }
            }
        }
        Ok(started)
    }

    async fn route_chunk(&self, ids: &[i64], now: DateTime<Utc>) -> Result<usize, OncallError> {
        let existing = escalations_of(&self.store, ids).await?;
        let alerts = self.load_alerts(ids, &existing).await?;
        let mut memo = Memo::default();
        let mut starts = Vec::new();
        for alert in alerts {
            if !matches!(alert.state.as_str(), "new" | "transferred") {
                continue;
            }
            let restart = match existing.get(&alert.id) {
                None => None,
                Some(e) if e.state == "active" => continue,
                Some(e) => {
                    let reopened = alert.reopened_at.is_some_and(|r| r > e.updated_at);
                    if alert.flapping || alert.state != "new" || !reopened {
                        continue;
                    }
                    Some(e.round)
                }
            };
            if self.in_maintenance(&alert, now).await? {
                continue;
            }
            if !memo.rules.contains_key(&alert.domain) {
                let rules = routing::for_domain(&self.store, &alert.domain).await?;
                memo.rules.insert(alert.domain.clone(), rules);
            }
            let rules = memo.rules.get(&alert.domain).map_or(&[][..], Vec::as_slice);
            let Some(rule) = routing::rule_among(rules, &self.settings, &alert, now) else {
                continue;
            };
            let cursor = Cursor {
                round: restart.map_or(1, |r| r + 1),
                step: 0,
                last_index: None,
                managers_told: false,
                delay_minutes: rule.escalation_minutes,
            };
            let plan = self.plan(&mut memo, &alert, &cursor, now).await?;
            starts.push(Start {
                alert_id: alert.id,
                domain: alert.domain.clone(),
                restart,
                rule_id: rule.id,
                cursor,
                plan,
            });
        }
        if starts.is_empty() {
            return Ok(0);
        }
        let mut tx = self.store.begin().await?;
        // Where each chain starts: its first step taken, or exhausted when nobody is there.
        let first = |s: &Start| match &s.plan {
            Some(plan) => (
                "active",
                1,
                plan.duty_index,
                plan.target == "managers",
                Some(self.next_at(&s.cursor, plan, now)),
            ),
            None => ("exhausted", 0, None, false, None),
        };
        let mut begun: HashSet<i64> = HashSet::new();
        let fresh: Vec<&Start> = starts.iter().filter(|s| s.restart.is_none()).collect();
        if !fresh.is_empty() {
            let mut marks = Marks::new(self.store.backend());
            let sql = format!(
                "INSERT INTO oncall_escalations (alert_id, domain, rule_id, round, step, last_index,
                        managers_told, delay_minutes, state, next_at, started_at, updated_at)
                 VALUES {} ON CONFLICT (alert_id) DO NOTHING RETURNING alert_id",
                marks.rows(fresh.len(), 12)
            );
            let ids: Vec<i64> = on_tx!(&mut tx, conn => {
                let mut q = sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(sql));
                for s in &fresh {
                    let (state, step, last_index, managers_told, next_at) = first(s);
                    q = q
                        .bind(s.alert_id)
                        .bind(&s.domain)
                        .bind(s.rule_id)
                        .bind(s.cursor.round)
                        .bind(step)
                        .bind(last_index)
                        .bind(managers_told)
                        .bind(s.cursor.delay_minutes)
                        .bind(state)
                        .bind(next_at)
                        .bind(now)
                        .bind(now);
                }
                q.fetch_all(conn).await
            })
            .map_err(StoreError::from)?;
            begun.extend(ids);
        }
        for s in &starts {
            let Some(round) = s.restart else {
                continue;
            };
            let (state, step, last_index, managers_told, next_at) = first(s);
            let n = on_tx!(&mut tx, conn => sqlx::query(
                "UPDATE oncall_escalations SET round = $1, step = $2, last_index = $3,
                        managers_told = $4, state = $5, rule_id = $6, delay_minutes = $7,
                        next_at = $8, started_at = $9, updated_at = $9, acknowledged_by = NULL,
                        acknowledged_login = NULL, acknowledged_at = NULL,
                        acknowledged_via = NULL
                 WHERE alert_id = $10 AND round = $11 AND state <> 'active'",
            )
            .bind(s.cursor.round)
            .bind(step)
            .bind(last_index)
            .bind(managers_told)
            .bind(state)
            .bind(s.rule_id)
            .bind(s.cursor.delay_minutes)
            .bind(next_at)
            .bind(now)
            .bind(s.alert_id)
            .bind(round)
            .execute(conn)
            .await
            .map(|r| r.rows_affected()))
            .map_err(StoreError::from)?;
            if n > 0 {
                begun.insert(s.alert_id);
            }
        }
        // Chains another hub process started meanwhile are left to it.
        let mut steps = Vec::new();
        for s in starts.iter().filter(|s| begun.contains(&s.alert_id)) {
            match &s.plan {
                Some(plan) => steps.push((s.alert_id, s.cursor, plan)),
                None => tracing::warn!(
                    alert_id = s.alert_id,
                    "Nobody on duty and no manager for the alert's domain: nobody was told."
                ),
            }
        }
        let messages = self.write_steps(&mut tx, &steps, now).await?;
        tx.commit().await?;
        if messages > 0 {
            vigie_notify::wake();
        }
        metrics::counter!("vigie_oncall_routed_total").increment(begun.len() as u64);
        Ok(begun.len())
    }

    /// The alerts of `ids` that may need routing, read a few at a time.
    async fn load_alerts(
        &self,
        ids: &[i64],
        existing: &HashMap<i64, Escalation>,
    ) -> Result<Vec<Alert>, OncallError> {
        let wanted: Vec<i64> = ids
            .iter()
            .copied()
            .filter(|id| existing.get(id).is_none_or(|e| e.state != "active"))
            .collect();
        let mut alerts = Vec::with_capacity(wanted.len());
        for chunk in wanted.chunks(16) {
            let mut reads = JoinSet::new();
            for id in chunk {
                let store = self.store.clone();
                let id = *id;
                reads.spawn(async move { repo::get(&store, id).await });
            }
            while let Some(read) = reads.join_next().await {
                match read {
                    Ok(Ok(Some(alert))) => alerts.push(alert),
                    Ok(Ok(None)) => {}
                    Ok(Err(e)) => return Err(e.into()),
                    Err(e) => return Err(task_failed(&e)),
                }
            }
        }
        alerts.sort_by_key(|a| a.id);
        Ok(alerts)
    }

    /// When the step after `plan` is due: after the delay, or at once when nobody could be
    /// reached (no channel, or quiet hours).
    fn next_at(&self, cursor: &Cursor, plan: &StepPlan, now: DateTime<Utc>) -> DateTime<Utc> {
        if plan.reached() {
            now + chrono::Duration::minutes(i64::from(cursor.delay_minutes))
        } else {
            now
        }
    }

    /// Stops the chain of an alert that is over (cleared, archived, deleted).
    pub async fn cancel(&self, alert_id: i64, now: DateTime<Utc>) -> Result<bool, OncallError> {
        let n = on_pool!(&self.store, pool => sqlx::query(
            "UPDATE oncall_escalations SET state = 'cancelled', next_at = NULL, updated_at = $1
             WHERE alert_id = $2 AND state = 'active'",
        )
        .bind(now)
        .bind(alert_id)
        .execute(pool)
        .await
        .map(|r| r.rows_affected()))
        .map_err(StoreError::from)?;
        Ok(n > 0)
    }

    /// Takes every step due at `now`: the next index, then the managers, then the end of the
    /// chain; a chain whose alert was acknowledged on the board or is over stops instead.
    pub async fn tick(&self, now: DateTime<Utc>) -> Result<TickReport, OncallError> {
        let due: Vec<i64> = on_pool!(&self.store, pool => sqlx::query_scalar(
            "SELECT alert_id FROM oncall_escalations WHERE state = 'active' AND next_at <= $1
             ORDER BY next_at, alert_id LIMIT 500",
        )
        .bind(now)
        .fetch_all(pool)
        .await)
        .map_err(StoreError::from)?;
        let mut report = TickReport::default();
        let mut memo = Memo::default();
        for alert_id in due {
            match self.advance(&mut memo, alert_id, now).await {
                Ok(Some(true)) => report.steps += 1,
                Ok(Some(false)) => report.ended += 1,
                Ok(None) => {}
                Err(e) => tracing::warn!(alert_id, error = %e, "Cannot take an escalation step."),
            }
        }
        Ok(report)
    }

    /// Routes the open alerts seen lately that were never routed (an event lost to a lagging
    /// subscriber or to a stop between the commit and the routing).
    pub async fn catch_up(&self, now: DateTime<Utc>) -> Result<usize, OncallError> {
        let lowest = routing::lowest_level(&self.store, &self.settings).await?;
        let recent = repo::list(
            &self.store,
            &AlertFilter {
                states: vec!["new".into()],
                severities: (lowest..=2).collect(),
                seen_from: Some(now - chrono::Duration::minutes(10)),
                limit: 500,
                ..AlertFilter::default()
            },
        )
        .await?;
        let ids: Vec<i64> = recent.iter().map(|a| a.id).collect();
        let existing = escalations_of(&self.store, &ids).await?;
        let missing: Vec<i64> = ids
            .into_iter()
            .filter(|id| !existing.contains_key(id))
            .collect();
        if missing.is_empty() {
            return Ok(0);
        }
        self.route_many(&missing, now).await
    }

    /// One due step of one alert. `Some(true)`: someone was told; `Some(false)`: the chain
    /// ended; `None`: nothing to do (not due, or another process took it).
    async fn advance(
        &self,
        memo: &mut Memo,
        alert_id: i64,
        now: DateTime<Utc>,
    ) -> Result<Option<bool>, OncallError> {
        let Some(alert) = repo::get(&self.store, alert_id).await? else {
            return Ok(self.cancel(alert_id, now).await?.then_some(false));
        };
        let Some(esc) = get(&self.store, alert.id).await? else {
            return Ok(None);
        };
        if esc.state != "active" || esc.next_at.is_none_or(|t| t > now) {
            return Ok(None);
        }
        if alert.state == "acknowledged" {
            // Acknowledged on the board: the chain stops.
            let user = match &alert.acknowledged_by {
                Some(login) => vigie_auth::get_user_by_login(&self.store, login).await?,
                None => None,
            };
            let mut tx = self.store.begin().await?;
            let done = mark_acknowledged(
                &mut tx,
                alert.id,
                user.map(|u| u.id),
                alert.acknowledged_by.as_deref(),
                "board",
                now,
            )
            .await?;
            tx.commit().await?;
            return Ok(done.then_some(false));
        }
        // Deferred by an operator, or over: the chain stops.
        if !matches!(alert.state.as_str(), "new" | "transferred")
            || self.in_maintenance(&alert, now).await?
        {
            return Ok(self.cancel(alert.id, now).await?.then_some(false));
        }
        let cursor = Cursor::of(&esc);
        let Some(plan) = self.plan(memo, &alert, &cursor, now).await? else {
            let n = on_pool!(&self.store, pool => sqlx::query(
                "UPDATE oncall_escalations SET state = 'exhausted', next_at = NULL, updated_at = $1
                 WHERE alert_id = $2 AND round = $3 AND step = $4 AND state = 'active'",
            )
            .bind(now)
            .bind(alert.id)
            .bind(esc.round)
            .bind(esc.step)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))
            .map_err(StoreError::from)?;
            if n > 0 {
                tracing::warn!(alert_id = alert.id, domain = %alert.domain,
                    "Nobody acknowledged the alert: the escalation chain is exhausted.");
                metrics::counter!("vigie_oncall_exhausted_total").increment(1);
            }
            return Ok((n > 0).then_some(false));
        };
        let mut tx = self.store.begin().await?;
        let moved = on_tx!(&mut tx, conn => sqlx::query(
            "UPDATE oncall_escalations SET step = $1, last_index = COALESCE($2, last_index),
                    managers_told = (managers_told OR $3), next_at = $4, updated_at = $5
             WHERE alert_id = $6 AND round = $7 AND step = $8 AND state = 'active'",
        )
        .bind(esc.step + 1)
        .bind(plan.duty_index)
        .bind(plan.target == "managers")
        .bind(self.next_at(&cursor, &plan, now))
        .bind(now)
        .bind(alert.id)
        .bind(esc.round)
        .bind(esc.step)
        .execute(conn)
        .await
        .map(|r| r.rows_affected()))
        .map_err(StoreError::from)?;
        if moved == 0 {
            // Another hub process took this step.
            return Ok(None);
        }
        self.write_steps(&mut tx, &[(alert.id, cursor, &plan)], now)
            .await?;
        tx.commit().await?;
        if plan.reached() {
            vigie_notify::wake();
        }
        Ok(Some(true))
    }

    /// Writes steps in the caller's transaction (which moved their chains on): the links, the
    /// messages (de-duplicated by step), the steps' lines, several rows per statement. Returns
    /// how many messages were queued.
    async fn write_steps(
        &self,
        tx: &mut StoreTx,
        steps: &[(i64, Cursor, &StepPlan)],
        now: DateTime<Utc>,
    ) -> Result<usize, OncallError> {
        if steps.is_empty() {
            return Ok(0);
        }
        let ttl = chrono::Duration::from_std(self.settings.link_ttl)
            .unwrap_or(chrono::Duration::hours(24));
        let links: Vec<(i64, &Cursor, &Told, &str)> = steps
            .iter()
            .flat_map(|(alert_id, cursor, plan)| {
                plan.told.iter().filter_map(move |t| {
                    t.token
                        .as_deref()
                        .map(|token| (*alert_id, cursor, t, token))
                })
            })
            .collect();
        for chunk in links.chunks(500) {
            let mut marks = Marks::new(self.store.backend());
            let sql = format!(
                "INSERT INTO oncall_ack_links (digest, sms_code, alert_id, user_id, round, step,
                        created_at, expires_at) VALUES {}",
                marks.rows(chunk.len(), 8)
            );
            on_tx!(&mut *tx, conn => {
                let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
                for (alert_id, cursor, t, token) in chunk {
                    q = q
                        .bind(vigie_core::secret::token_digest(token))
                        .bind(t.sms_code.as_deref())
                        .bind(*alert_id)
                        .bind(t.person.user_id)
                        .bind(cursor.round)
                        .bind(cursor.step + 1)
                        .bind(now)
                        .bind(now + ttl);
                }
                q.execute(conn).await.map(drop)
            })
            .map_err(StoreError::from)?;
        }
        let mut queued = 0;
        for (_, _, plan) in steps {
            for message in &plan.messages {
                vigie_notify::enqueue_message(tx, message).await?;
                queued += 1;
            }
        }
        for chunk in steps.chunks(500) {
            let mut marks = Marks::new(self.store.backend());
            let sql = format!(
                "INSERT INTO oncall_escalation_steps (alert_id, round, step, at, target, duty_index,
                        told) VALUES {} ON CONFLICT (alert_id, round, step) DO NOTHING",
                marks.rows(chunk.len(), 7)
            );
            on_tx!(&mut *tx, conn => {
                let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
                for (alert_id, cursor, plan) in chunk {
                    q = q
                        .bind(*alert_id)
                        .bind(cursor.round)
                        .bind(cursor.step + 1)
                        .bind(now)
                        .bind(plan.target)
                        .bind(plan.duty_index)
                        .bind(told_json(plan));
                }
                q.execute(conn).await.map(drop)
            })
            .map_err(StoreError::from)?;
        }
        for (alert_id, cursor, plan) in steps {
            metrics::counter!("vigie_oncall_steps_total", "target" => plan.target).increment(1);
            tracing::debug!(alert_id, step = cursor.step + 1, target = plan.target,
                index = ?plan.duty_index, messages = plan.messages.len(), "On-call step taken.");
        }
        Ok(queued)
    }

    /// The next step of a chain, prepared (`None`: nobody left to tell).
    async fn plan(
        &self,
        memo: &mut Memo,
        alert: &Alert,
        cursor: &Cursor,
        now: DateTime<Utc>,
    ) -> Result<Option<StepPlan>, OncallError> {
        let (target, duty_index, people) = match self.next(memo, &alert.domain, cursor, now).await?
        {
            Next::Duty(index, people) => ("duty", Some(index), people),
            Next::Managers(people) => ("managers", None, people),
            Next::Exhausted => return Ok(None),
        };
        let kind = if cursor.step == 0 && target == "duty" {
            "alert.routed"
        } else {
            "alert.escalated"
        };
        let mut plan = StepPlan {
            target,
            duty_index,
            told: Vec::with_capacity(people.len()),
            messages: Vec::new(),
        };
        for person in people {
            self.prepare(
                memo, alert, cursor, kind, duty_index, person, now, &mut plan,
            )
            .await?;
        }
        Ok(Some(plan))
    }

    /// The next people to tell: the next index of the planning after the one told last, then
    /// the managers, then nobody.
    async fn next(
        &self,
        memo: &mut Memo,
        domain: &str,
        cursor: &Cursor,
        now: DateTime<Utc>,
    ) -> Result<Next, OncallError> {
        if cursor.managers_told {
            return Ok(Next::Exhausted);
        }
        if !memo.duty.contains_key(domain) {
            let duty = self.roster.on_duty(&self.store, domain, now).await?;
            memo.duty.insert(domain.to_owned(), duty);
        }
        let duty = memo.duty.get(domain).map_or(&[][..], Vec::as_slice);
        let next_index = duty
            .iter()
            .map(|p| p.index)
            .filter(|i| cursor.last_index.is_none_or(|last| *i > last))
            .min();
        if let Some(index) = next_index {
            let mut seen = BTreeSet::new();
            let people = duty
                .iter()
                .filter(|p| p.index == index && seen.insert(p.user_id))
                .map(Person::from)
                .collect();
            return Ok(Next::Duty(index, people));
        }
        if !memo.managers.contains_key(domain) {
            let managers = vigie_auth::contacts::managers_of(&self.store, domain).await?;
            memo.managers.insert(
                domain.to_owned(),
                managers.iter().map(Person::from).collect(),
            );
        }
        match memo.managers.get(domain) {
            Some(m) if !m.is_empty() => Ok(Next::Managers(m.clone())),
            _ => Ok(Next::Exhausted),
        }
    }

    /// One person's share of a step: their channels (preferences and details), quiet hours (a
    /// critical alert still goes through), their link, the messages in their language.
    #[allow(clippy::too_many_arguments)] // the step's parts; a struct would only rename them
    async fn prepare(
        &self,
        memo: &mut Memo,
        alert: &Alert,
        cursor: &Cursor,
        kind: &'static str,
        duty_index: Option<i32>,
        person: Person,
        now: DateTime<Utc>,
        plan: &mut StepPlan,
    ) -> Result<(), OncallError> {
        let prefs = match memo.prefs.get(&person.user_id) {
            Some(p) => p.clone(),
            None => {
                let p = prefs::load(&self.store, person.user_id).await?;
                memo.prefs.insert(person.user_id, p.clone());
                p
            }
        };
        let held = alert.severity < 2
            && prefs.has_quiet_hours()
            && prefs.quiet_at(now, self.user_tz(memo, person.user_id).await?);
        let mut channels: Vec<(Channel, String)> = Vec::new();
        if !held {
            if prefs.mail
                && let Some(email) = person.email.as_deref().filter(|e| !e.trim().is_empty())
            {
                channels.push((Channel::Mail, email.trim().to_owned()));
            }
            if prefs.sms
                && let Some(phone) = person.phone.as_deref().filter(|p| !p.trim().is_empty())
            {
                channels.push((Channel::Sms, phone.trim().to_owned()));
            }
        }
        if channels.is_empty() {
            plan.told.push(Told {
                person,
                token: None,
                sms_code: None,
                channels: Vec::new(),
                held,
            });
            return Ok(());
        }
        let token = ack::new_token()?;
        let sms_code = if channels.iter().any(|(c, _)| *c == Channel::Sms) {
            Some(ack::new_sms_code()?)
        } else {
            None
        };
        let lang = template_lang(
            person
                .lang
                .as_deref()
                .filter(|l| !l.is_empty())
                .unwrap_or(&self.settings.default_lang),
        );
        let step = cursor.step + 1;
        let value = self.context(
            alert,
            cursor,
            kind,
            duty_index,
            &person,
            lang,
            (&token, sms_code.as_deref()),
        );
        let context = tera::Context::from_value(value.clone()).unwrap_or_default();
        for (channel, recipient) in &channels {
            let rendered = self
                .render(memo, kind, *channel, lang, (&context, &value), alert)
                .await?;
            let mut text = rendered.text;
            // The gateway's callback takes "ACK code" as the answer to the SMS.
            if let Some(code) = sms_code.as_deref().filter(|_| *channel == Channel::Sms)
                && !text.contains(code)
            {
                text.push_str(&format!(" ACK {code}"));
            }
            plan.messages.push(Message {
                channel: *channel,
                recipient: recipient.clone(),
                subject: rendered.subject,
                text,
                html: rendered.html,
                kind: kind.to_owned(),
                user_id: Some(person.user_id),
                dedupe_key: Some(format!(
                    "esc:{}:{}:{}:{}:{}",
                    alert.id,
                    cursor.round,
                    step,
                    person.user_id,
                    channel.as_str()
                )),
            });
        }
        plan.told.push(Told {
            token: Some(token),
            sms_code,
            channels: channels.iter().map(|(c, _)| c.as_str()).collect(),
            person,
            held,
        });
        Ok(())
    }

    /// A message rendered as `vigie_notify::render` would (the administrator's template, else
    /// the built-in one), with the templates read once per batch.
    async fn render(
        &self,
        memo: &mut Memo,
        kind: &'static str,
        channel: Channel,
        lang: &'static str,
        (context, value): (&tera::Context, &Value),
        alert: &Alert,
    ) -> Result<vigie_notify::Rendered, OncallError> {
        let key = (kind.to_owned(), channel.as_str(), lang);
        if !memo.templates.contains_key(&key) {
            let stored = match templates::stored(&self.store, kind, channel, lang).await {
                Ok(s) => s,
                Err(vigie_notify::NotifyError::Store(e)) => return Err(e.into()),
                Err(e) => {
                    tracing::warn!(kind, error = %e, "Cannot read a stored notification template.");
                    None
                }
            };
            memo.templates.insert(key.clone(), stored);
        }
        let stored = memo.templates.get(&key).cloned().flatten();
        if let Some(source) = stored {
            match self.compiled(&key, &source, true) {
                Ok(compiled) => match compiled.render(context) {
                    Ok(r) => return Ok(r),
                    Err(e) => tracing::warn!(kind, error = %e,
                        "A stored notification template failed; the built-in one is used."),
                },
                Err(e) => tracing::warn!(kind, error = %e,
                    "A stored notification template does not parse; the built-in one is used."),
            }
        }
        let rendered = templates::builtin(kind, channel, lang).map(|source| {
            self.compiled(&key, &source, false)
                .and_then(|c| c.render(context))
        });
        match rendered {
            Some(Ok(r)) => Ok(r),
            other => {
                if let Some(Err(e)) = other {
                    tracing::warn!(kind, error = %e, "Cannot render an on-call message; a plain one is sent.");
                }
                Ok(fallback(alert, value))
            }
        }
    }

    /// The template compiled once (parsing is most of a render's cost): recompiled when the
    /// administrator's version changes.
    fn compiled(
        &self,
        key: &TemplateKey,
        source: &Source,
        stored: bool,
    ) -> Result<Arc<Compiled>, tera::Error> {
        let slot = (key.clone(), stored);
        if let Ok(cache) = self.compiled.lock()
            && let Some(c) = cache.get(&slot)
            && c.source == *source
        {
            return Ok(c.clone());
        }
        let compiled = Arc::new(Compiled::new(source)?);
        if let Ok(mut cache) = self.compiled.lock() {
            cache.insert(slot, compiled.clone());
        }
        Ok(compiled)
    }

    async fn user_tz(&self, memo: &mut Memo, user_id: i64) -> Result<chrono_tz::Tz, OncallError> {
        if let Some(tz) = memo.tz.get(&user_id) {
            return Ok(*tz);
        }
        let user = vigie_auth::get_user(&self.store, user_id).await?;
        let tz = user
            .and_then(|u| u.timezone)
            .and_then(|tz| tz.parse().ok())
            .unwrap_or(self.settings.timezone);
        memo.tz.insert(user_id, tz);
        Ok(tz)
    }

    /// The context of the message templates (see `vigie_notify::templates::sample_context`).
    #[allow(clippy::too_many_arguments)] // the step's parts; a struct would only rename them
    fn context(
        &self,
        alert: &Alert,
        cursor: &Cursor,
        kind: &str,
        duty_index: Option<i32>,
        person: &Person,
        lang: &str,
        (token, sms_code): (&str, Option<&str>),
    ) -> Value {
        let base = &self.settings.base_url;
        let step = cursor.step + 1;
        json!({
            "kind": kind,
            "lang": lang,
            "hub_url": base,
            "recipient": { "name": person.name, "login": person.login },
            "alert": {
                "id": alert.id,
                "level": level_name(alert.severity),
                "domain": alert.domain,
                "source": alert.source,
                "resource": alert.resource,
                "message": alert.message,
                "critical_zone": alert.critical_zone,
                "count": alert.count,
                "first_seen": alert.occurred_at.to_rfc3339(),
                "last_seen": alert.last_seen.to_rfc3339(),
                "url": format!("{base}/alerts/{}", alert.id),
            },
            "escalation": {
                "step": step,
                "index": duty_index,
                "after_minutes": if step > 1 { Some(cursor.delay_minutes) } else { None },
            },
            "ack_url": format!("{base}/ack/{token}"),
            "ack_code": sms_code,
        })
    }
}

/// Who a step told, for its line: `[{user_id, login, channels, held}]`.
fn told_json(plan: &StepPlan) -> String {
    let told: Vec<Value> = plan
        .told
        .iter()
        .map(|t| {
            json!({
                "user_id": t.person.user_id,
                "login": t.person.login,
                "channels": t.channels,
                "held": t.held,
            })
        })
        .collect();
    Value::Array(told).to_string()
}

/// A task of the engine that panicked or was cancelled, as an error.
fn task_failed(e: &tokio::task::JoinError) -> OncallError {
    OncallError::Store(StoreError::Query(sqlx::Error::Protocol(format!(
        "an on-call task failed: {e}"
    ))))
}

/// The language templates exist in for a user's language (`fr`, else `en`).
fn template_lang(lang: &str) -> &'static str {
    let base = lang.split(['-', '_']).next().unwrap_or_default();
    if base.eq_ignore_ascii_case("fr") {
        "fr"
    } else {
        "en"
    }
}

/// The escalations of some alerts, by alert.
async fn escalations_of(
    store: &Store,
    ids: &[i64],
) -> Result<HashMap<i64, Escalation>, OncallError> {
    let mut out = HashMap::new();
    for chunk in ids.chunks(500) {
        let mut marks = Marks::new(store.backend());
        let sql = format!(
            "SELECT {ESCALATION_COLUMNS} FROM oncall_escalations WHERE alert_id IN ({})",
            marks.list(chunk.len())
        );
        let rows = on_pool!(store, pool => {
            let mut q = sqlx::query_as::<_, Escalation>(sqlx::AssertSqlSafe(sql));
            for id in chunk {
                q = q.bind(id);
            }
            q.fetch_all(pool).await
        })
        .map_err(StoreError::from)?;
        out.extend(rows.into_iter().map(|e| (e.alert_id, e)));
    }
    Ok(out)
}

/// `low`, `warning`, `critical`.
pub fn level_name(severity: i32) -> &'static str {
    match severity {
        2 => "critical",
        1 => "warning",
        _ => "low",
    }
}

/// A plain message when no template renders: the alert still reaches the person.
fn fallback(alert: &Alert, context: &Value) -> vigie_notify::Rendered {
    let ack = context["ack_url"].as_str().unwrap_or_default();
    vigie_notify::Rendered {
        subject: format!(
            "[Vigie] {} {}: {}",
            level_name(alert.severity),
            alert.domain,
            alert.resource
        ),
        text: format!("{}\n{}\n{ack}", alert.resource, alert.message),
        html: None,
    }
}

/// Runs the engine over the planning until `stop` turns true: routes each alert the pipeline
/// publishes at once, and every `sweep_interval` takes the due steps and routes what was missed.
pub fn spawn(
    store: Store,
    pipeline: &Pipeline,
    settings: OncallSettings,
    stop: watch::Receiver<bool>,
) -> JoinHandle<()> {
    spawn_engine(Engine::new(store, settings), pipeline, stop)
}

/// Sweeps between two catch-ups.
const CATCH_UP_EVERY: u64 = 12;

/// [`spawn`] with a given engine (tests give theirs a roster).
pub fn spawn_engine(
    engine: Engine,
    pipeline: &Pipeline,
    mut stop: watch::Receiver<bool>,
) -> JoinHandle<()> {
    let mut events = pipeline.subscribe();
    tokio::spawn(async move {
        let mut sweep = tokio::time::interval(
            engine
                .settings
                .sweep_interval
                .max(Duration::from_millis(100)),
        );
        sweep.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut open = true;
        let mut sweeps: u64 = 0;
        loop {
            tokio::select! {
                changed = stop.changed() => {
                    if changed.is_err() || *stop.borrow() {
                        break;
                    }
                }
                event = events.recv(), if open => match event {
                    Ok(first) => {
                        let mut batch = vec![first];
                        while batch.len() < 1024 {
                            match events.try_recv() {
                                Ok(e) => batch.push(e),
                                Err(_) => break,
                            }
                        }
                        handle(&engine, batch).await;
                    }
                    Err(broadcast::error::RecvError::Lagged(missed)) => {
                        tracing::warn!(missed, "The on-call engine lagged behind the pipeline; catching up.");
                        if let Err(e) = engine.catch_up(vigie_core::time::now()).await {
                            tracing::warn!(error = %e, "On-call catch-up failed.");
                        }
                    }
                    Err(broadcast::error::RecvError::Closed) => open = false,
                },
                _ = sweep.tick() => {
                    let now = vigie_core::time::now();
                    // What was missed (a stop between a commit and its routing): at start,
                    // then about every minute.
                    if sweeps.is_multiple_of(CATCH_UP_EVERY)
                        && let Err(e) = engine.catch_up(now).await
                    {
                        tracing::warn!(error = %e, "On-call catch-up failed.");
                    }
                    sweeps = sweeps.wrapping_add(1);
                    if let Err(e) = engine.tick(now).await {
                        tracing::warn!(error = %e, "On-call escalation sweep failed.");
                    }
                }
            }
        }
    })
}

/// Routes (or stops) the alerts of a batch of events: the routing of a burst is decided and
/// written a few hundred alerts per transaction.
async fn handle(engine: &Engine, batch: Vec<AlertEvent>) {
    let mut last: HashMap<i64, (Change, Option<i32>)> = HashMap::new();
    for e in batch {
        last.insert(e.alert_id, (e.change, e.severity));
    }
    // Alerts below every rule's level are not read at all: a flood of low alerts would
    // otherwise cost a read per alert for nothing.
    let lowest = match routing::lowest_level(&engine.store, &engine.settings).await {
        Ok(level) => Some(level),
        Err(e) => {
            tracing::warn!(error = %e, "Cannot read the routing rules' lowest level; every alert is read.");
            None
        }
    };
    let now = vigie_core::time::now();
    let mut route = Vec::with_capacity(last.len());
    for (alert_id, (change, severity)) in last {
        if change != Change::Cleared
            && let (Some(lowest), Some(severity)) = (lowest, severity)
            && severity < lowest
        {
            continue;
        }
        match change {
            Change::Cleared => {
                if let Err(e) = engine.cancel(alert_id, now).await {
                    tracing::warn!(alert_id, error = %e, "Cannot stop an escalation.");
                }
            }
            Change::Created | Change::Updated => route.push(alert_id),
        }
    }
    if let Err(e) = engine.route_many(&route, now).await {
        tracing::warn!(alerts = route.len(), error = %e,
            "Cannot route alerts to the people on duty; the sweep tries again.");
    }
}
