//! The administrator's changes to the planning (periods, rotations, overrides, teams) and the
//! lists the edit page shows. Each change is checked first (the first problem is returned as
//! [`OncallError::Invalid`] with the field and the locale key of the explanation; nothing is
//! stored), then written in one transaction with its audit entry.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use serde::Serialize;
use serde_json::json;
use vigie_core::audit::{self, Actor, Entry};
use vigie_core::domain::Domains;
use vigie_core::store::{Store, StoreError, StoreTx};
use vigie_core::time::{now, to_store_precision};
use vigie_core::{on_pool, on_tx};

use crate::OncallError;

/// Longest free text (note, reason, names).
const TEXT_MAX: usize = 200;
/// Most members of a rotation or a team.
const MEMBERS_MAX: usize = 50;

fn invalid(field: &'static str, key: &str) -> OncallError {
    OncallError::Invalid {
        field,
        problem: key.to_owned(),
    }
}

/// A new explicit period: a person (`login`) or a team (`team_id`), not both.
#[derive(Clone, Debug, Default, Serialize)]
pub struct PeriodInput {
    pub domain: String,
    pub login: String,
    pub team_id: Option<i64>,
    /// `None`: missing or unreadable.
    pub starts_at: Option<DateTime<Utc>>,
    pub ends_at: Option<DateTime<Utc>>,
    pub index: Option<i32>,
    pub note: String,
}

/// A new rotation: `members` (logins) take turns of `length_days` from `anchor`.
#[derive(Clone, Debug, Default, Serialize)]
pub struct RotationInput {
    pub domain: String,
    pub name: String,
    pub index: Option<i32>,
    pub anchor: Option<DateTime<Utc>>,
    pub time_zone: String,
    pub length_days: Option<i32>,
    pub ends_at: Option<DateTime<Utc>>,
    pub members: Vec<String>,
}

/// A new override: `replaced` is off duty, `replacement` takes their place (empty: a holiday).
#[derive(Clone, Debug, Default, Serialize)]
pub struct OverrideInput {
    pub domain: String,
    pub starts_at: Option<DateTime<Utc>>,
    pub ends_at: Option<DateTime<Utc>>,
    pub replaced: String,
    pub replacement: String,
    pub reason: String,
}

/// A new team of a domain.
#[derive(Clone, Debug, Default, Serialize)]
pub struct TeamInput {
    pub domain: String,
    pub name: String,
    pub members: Vec<String>,
}

fn check_domain(domains: &Domains, domain: &str) -> Result<(), OncallError> {
    if domains.contains(domain) {
        Ok(())
    } else {
        Err(invalid("domain", "oncall.err_domain"))
    }
}

fn check_text(field: &'static str, text: &str) -> Result<(), OncallError> {
    if text.chars().count() > TEXT_MAX || text.chars().any(char::is_control) {
        Err(invalid(field, "oncall.err_text"))
    } else {
        Ok(())
    }
}

/// A name that is not empty once trimmed, and is a valid text.
fn check_name(name: &str) -> Result<&str, OncallError> {
    let name = name.trim();
    if name.is_empty() {
        return Err(invalid("name", "oncall.err_name"));
    }
    check_text("name", name)?;
    Ok(name)
}

fn check_span(
    starts_at: Option<DateTime<Utc>>,
    ends_at: Option<DateTime<Utc>>,
) -> Result<(DateTime<Utc>, DateTime<Utc>), OncallError> {
    let starts_at = starts_at.ok_or_else(|| invalid("starts_at", "oncall.err_time"))?;
    let ends_at = ends_at.ok_or_else(|| invalid("ends_at", "oncall.err_time"))?;
    if ends_at <= starts_at {
        return Err(invalid("ends_at", "oncall.err_end_before_start"));
    }
    Ok((to_store_precision(starts_at), to_store_precision(ends_at)))
}

fn check_index(index: Option<i32>) -> Result<i32, OncallError> {
    index
        .filter(|i| (1..=99).contains(i))
        .ok_or_else(|| invalid("index", "oncall.err_index"))
}

/// An enabled user by login, else the field's problem.
async fn enabled_user(store: &Store, field: &'static str, login: &str) -> Result<i64, OncallError> {
    match vigie_auth::get_user_by_login(store, login.trim()).await? {
        Some(u) if !u.disabled => Ok(u.id),
        _ => Err(invalid(field, "oncall.err_user")),
    }
}

async fn members(
    store: &Store,
    field: &'static str,
    logins: &[String],
) -> Result<Vec<i64>, OncallError> {
    let logins: Vec<&str> = logins
        .iter()
        .map(|l| l.trim())
        .filter(|l| !l.is_empty())
        .collect();
    if logins.is_empty() || logins.len() > MEMBERS_MAX {
        return Err(invalid(field, "oncall.err_members"));
    }
    let mut ids = Vec::new();
    for login in logins {
        ids.push(enabled_user(store, field, login).await?);
    }
    Ok(ids)
}

async fn insert_id(
    tx: &mut StoreTx,
    sql: &'static str,
    binds: Binds<'_>,
) -> Result<i64, StoreError> {
    let id = on_tx!(tx, conn => {
        let mut q = sqlx::query_scalar::<_, i64>(sql);
        for b in binds.0 {
            q = match b {
                Bind::Text(v) => q.bind(v),
                Bind::OptId(v) => q.bind(v),
                Bind::Int(v) => q.bind(v),
                Bind::Time(v) => q.bind(v),
                Bind::OptTime(v) => q.bind(v),
            };
        }
        q.fetch_one(conn).await
    })?;
    Ok(id)
}

/// Values bound in order to an insert (one code path for both backends).
struct Binds<'a>(Vec<Bind<'a>>);

enum Bind<'a> {
    Text(&'a str),
    OptId(Option<i64>),
    Int(i32),
    Time(DateTime<Utc>),
    OptTime(Option<DateTime<Utc>>),
}

async fn exec(tx: &mut StoreTx, sql: &'static str, id: i64) -> Result<u64, StoreError> {
    Ok(on_tx!(tx, conn => sqlx::query(sql)
        .bind(id)
        .execute(conn)
        .await
        .map(|r| r.rows_affected()))?)
}

/// The member rows of a new rotation or team, in order.
struct Members<'a> {
    /// Binds the new row's id, then the position when `positioned`, then the user id.
    sql: &'static str,
    positioned: bool,
    ids: &'a [i64],
}

/// A new entry of the planning: its row, its members and its audit entry (an addition).
struct Addition<'a> {
    insert: &'static str,
    binds: Binds<'a>,
    members: Option<Members<'a>>,
    action: &'static str,
    target: &'static str,
    label: String,
    after: serde_json::Value,
}

/// Writes an already checked addition in one transaction; returns the new id.
async fn add(
    store: &Store,
    actor: &Actor,
    ip: Option<&str>,
    a: Addition<'_>,
) -> Result<i64, OncallError> {
    let mut tx = store.begin().await?;
    let id = insert_id(&mut tx, a.insert, a.binds).await?;
    if let Some(m) = &a.members {
        for (position, user_id) in m.ids.iter().enumerate() {
            let position = i32::try_from(position).unwrap_or(i32::MAX);
            on_tx!(&mut tx, conn => {
                let q = sqlx::query(m.sql).bind(id);
                let q = if m.positioned { q.bind(position) } else { q };
                q.bind(*user_id).execute(conn).await.map(drop)
            })
            .map_err(StoreError::from)?;
        }
    }
    audit::record(
        &mut tx,
        Entry::new(Some(actor), ip, a.action)
            .target(a.target, id, a.label)
            .change(None, Some(a.after)),
    )
    .await?;
    tx.commit().await?;
    Ok(id)
}

/// Adds a period; returns its id.
pub async fn add_period(
    store: &Store,
    actor: &Actor,
    ip: Option<&str>,
    domains: &Domains,
    input: &PeriodInput,
) -> Result<i64, OncallError> {
    check_domain(domains, &input.domain)?;
    let login = input.login.trim();
    let (user_id, team) = match (login.is_empty(), input.team_id) {
        (false, None) => (Some(enabled_user(store, "user", login).await?), None),
        (true, Some(team_id)) => {
            let team = team_by_id(store, team_id)
                .await?
                .filter(|t| t.domain == input.domain)
                .ok_or_else(|| invalid("team", "oncall.err_team"))?;
            (None, Some(team))
        }
        _ => return Err(invalid("user", "oncall.err_who")),
    };
    let (starts_at, ends_at) = check_span(input.starts_at, input.ends_at)?;
    let index = check_index(input.index)?;
    let note = input.note.trim();
    check_text("note", note)?;
    let who = match &team {
        Some(t) => format!("team {}", t.name),
        None => login.to_owned(),
    };
    let addition = Addition {
        insert: "INSERT INTO oncall_periods (domain, user_id, team_id, starts_at, ends_at, idx,
                                             note, created_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
        binds: Binds(vec![
            Bind::Text(&input.domain),
            Bind::OptId(user_id),
            Bind::OptId(team.as_ref().map(|t| t.id)),
            Bind::Time(starts_at),
            Bind::Time(ends_at),
            Bind::Int(index),
            Bind::Text(note),
            Bind::Time(now()),
        ]),
        members: None,
        action: "oncall.period_add",
        target: "oncall_period",
        label: format!("{} {who}", input.domain),
        after: json!({
            "domain": input.domain, "user": user_id.map(|_| login),
            "team": team.as_ref().map(|t| &t.name), "starts_at": starts_at,
            "ends_at": ends_at, "index": index, "note": note,
        }),
    };
    add(store, actor, ip, addition).await
}

/// Adds a rotation with its members in turn order; returns its id.
pub async fn add_rotation(
    store: &Store,
    actor: &Actor,
    ip: Option<&str>,
    domains: &Domains,
    input: &RotationInput,
) -> Result<i64, OncallError> {
    check_domain(domains, &input.domain)?;
    let name = check_name(&input.name)?;
    let index = check_index(input.index)?;
    let anchor = input
        .anchor
        .map(to_store_precision)
        .ok_or_else(|| invalid("anchor", "oncall.err_time"))?;
    let tz_name = input.time_zone.trim();
    if tz_name.parse::<Tz>().is_err() {
        return Err(invalid("time_zone", "oncall.err_time_zone"));
    }
    let length = input
        .length_days
        .filter(|l| (1..=28).contains(l))
        .ok_or_else(|| invalid("length_days", "oncall.err_length"))?;
    let ends_at = input.ends_at.map(to_store_precision);
    if ends_at.is_some_and(|e| e <= anchor) {
        return Err(invalid("ends_at", "oncall.err_end_before_start"));
    }
    let ids = members(store, "members", &input.members).await?;
    let logins: Vec<&str> = input
        .members
        .iter()
        .map(|l| l.trim())
        .filter(|l| !l.is_empty())
        .collect();
    let addition = Addition {
        insert: "INSERT INTO oncall_rotations (domain, name, idx, anchor, time_zone, length_days,
                                               ends_at, created_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
        binds: Binds(vec![
            Bind::Text(&input.domain),
            Bind::Text(name),
            Bind::Int(index),
            Bind::Time(anchor),
            Bind::Text(tz_name),
            Bind::Int(length),
            Bind::OptTime(ends_at),
            Bind::Time(now()),
        ]),
        members: Some(Members {
            sql: "INSERT INTO oncall_rotation_members (rotation_id, position, user_id)
                  VALUES ($1, $2, $3)",
            positioned: true,
            ids: &ids,
        }),
        action: "oncall.rotation_add",
        target: "oncall_rotation",
        label: format!("{} {name}", input.domain),
        after: json!({
            "domain": input.domain, "name": name, "index": index, "anchor": anchor,
            "time_zone": tz_name, "length_days": length, "ends_at": ends_at,
            "members": logins,
        }),
    };
    add(store, actor, ip, addition).await
}

/// Adds an override (a swap, or a holiday when `replacement` is empty); returns its id.
pub async fn add_override(
    store: &Store,
    actor: &Actor,
    ip: Option<&str>,
    domains: &Domains,
    input: &OverrideInput,
) -> Result<i64, OncallError> {
    check_domain(domains, &input.domain)?;
    let replaced_login = input.replaced.trim();
    // The person replaced may since have been disabled: any known login will do.
    let replaced = vigie_auth::get_user_by_login(store, replaced_login)
        .await?
        .ok_or_else(|| invalid("replaced", "oncall.err_user"))?
        .id;
    let replacement_login = input.replacement.trim();
    let replacement = if replacement_login.is_empty() {
        None
    } else {
        Some(enabled_user(store, "replacement", replacement_login).await?)
    };
    if replacement == Some(replaced) {
        return Err(invalid("replacement", "oncall.err_same_person"));
    }
    let (starts_at, ends_at) = check_span(input.starts_at, input.ends_at)?;
    let reason = input.reason.trim();
    check_text("reason", reason)?;
    let addition = Addition {
        insert: "INSERT INTO oncall_overrides (domain, starts_at, ends_at, replaced_id,
                                               replacement_id, reason, created_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
        binds: Binds(vec![
            Bind::Text(&input.domain),
            Bind::Time(starts_at),
            Bind::Time(ends_at),
            Bind::OptId(Some(replaced)),
            Bind::OptId(replacement),
            Bind::Text(reason),
            Bind::Time(now()),
        ]),
        members: None,
        action: "oncall.override_add",
        target: "oncall_override",
        label: format!("{} {replaced_login}", input.domain),
        after: json!({
            "domain": input.domain, "replaced": replaced_login,
            "replacement": replacement.map(|_| replacement_login),
            "starts_at": starts_at, "ends_at": ends_at, "reason": reason,
        }),
    };
    add(store, actor, ip, addition).await
}

/// Adds a team of a domain with its members; returns its id.
pub async fn add_team(
    store: &Store,
    actor: &Actor,
    ip: Option<&str>,
    domains: &Domains,
    input: &TeamInput,
) -> Result<i64, OncallError> {
    check_domain(domains, &input.domain)?;
    let name = check_name(&input.name)?;
    if list_teams(store, &input.domain)
        .await?
        .iter()
        .any(|t| t.name == name)
    {
        return Err(invalid("name", "oncall.err_team_exists"));
    }
    let mut ids = members(store, "members", &input.members).await?;
    ids.sort_unstable();
    ids.dedup();
    let addition = Addition {
        insert: "INSERT INTO oncall_teams (domain, name, created_at) VALUES ($1, $2, $3)
                 RETURNING id",
        binds: Binds(vec![
            Bind::Text(&input.domain),
            Bind::Text(name),
            Bind::Time(now()),
        ]),
        members: Some(Members {
            sql: "INSERT INTO oncall_team_members (team_id, user_id) VALUES ($1, $2)",
            positioned: false,
            ids: &ids,
        }),
        action: "oncall.team_add",
        target: "oncall_team",
        label: format!("{} {name}", input.domain),
        after: json!({"domain": input.domain, "name": name, "members": input.members}),
    };
    add(store, actor, ip, addition).await
}

/// What can be removed from the planning.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Period,
    Rotation,
    Override,
    Team,
}

impl Kind {
    fn table(self) -> (&'static str, &'static str, &'static str) {
        match self {
            Kind::Period => (
                "SELECT domain FROM oncall_periods WHERE id = $1",
                "DELETE FROM oncall_periods WHERE id = $1",
                "oncall_period",
            ),
            Kind::Rotation => (
                "SELECT domain FROM oncall_rotations WHERE id = $1",
                "DELETE FROM oncall_rotations WHERE id = $1",
                "oncall_rotation",
            ),
            Kind::Override => (
                "SELECT domain FROM oncall_overrides WHERE id = $1",
                "DELETE FROM oncall_overrides WHERE id = $1",
                "oncall_override",
            ),
            Kind::Team => (
                "SELECT domain FROM oncall_teams WHERE id = $1",
                "DELETE FROM oncall_teams WHERE id = $1",
                "oncall_team",
            ),
        }
    }
}

/// Removes one entry of the planning (a team's periods go with it); returns its domain.
/// [`OncallError::NotFound`] when there is no such entry.
pub async fn remove(
    store: &Store,
    actor: &Actor,
    ip: Option<&str>,
    kind: Kind,
    id: i64,
) -> Result<String, OncallError> {
    let (select, delete, target) = kind.table();
    let mut tx = store.begin().await?;
    let domain = on_tx!(&mut tx, conn => sqlx::query_scalar::<_, String>(select)
        .bind(id)
        .fetch_optional(conn)
        .await)
    .map_err(StoreError::from)?
    .ok_or(OncallError::NotFound)?;
    if kind == Kind::Rotation {
        exec(
            &mut tx,
            "DELETE FROM oncall_rotation_members WHERE rotation_id = $1",
            id,
        )
        .await?;
    }
    if kind == Kind::Team {
        exec(&mut tx, "DELETE FROM oncall_periods WHERE team_id = $1", id).await?;
        exec(
            &mut tx,
            "DELETE FROM oncall_team_members WHERE team_id = $1",
            id,
        )
        .await?;
    }
    exec(&mut tx, delete, id).await?;
    let action = format!("oncall.{}_remove", target.trim_start_matches("oncall_"));
    audit::record(
        &mut tx,
        Entry::new(Some(actor), ip, &action)
            .target(target, id, domain.clone())
            .change(Some(json!({"id": id, "domain": domain})), None),
    )
    .await?;
    tx.commit().await?;
    Ok(domain)
}

/// A period as the edit page lists it.
#[derive(Clone, Debug, Serialize, sqlx::FromRow)]
pub struct PeriodView {
    pub id: i64,
    pub user_id: Option<i64>,
    pub team_id: Option<i64>,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub idx: i32,
    pub note: String,
    /// The person's login or the team's name (filled after reading).
    #[sqlx(skip)]
    pub who: String,
}

/// A rotation as the edit page lists it.
#[derive(Clone, Debug, Serialize, sqlx::FromRow)]
pub struct RotationView {
    pub id: i64,
    pub name: String,
    pub idx: i32,
    pub anchor: DateTime<Utc>,
    pub time_zone: String,
    pub length_days: i32,
    pub ends_at: Option<DateTime<Utc>>,
    /// Logins in turn order.
    #[sqlx(skip)]
    pub members: Vec<String>,
}

/// An override as the edit page lists it.
#[derive(Clone, Debug, Serialize, sqlx::FromRow)]
pub struct OverrideView {
    pub id: i64,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub replaced_id: i64,
    pub replacement_id: Option<i64>,
    pub reason: String,
    #[sqlx(skip)]
    pub replaced: String,
    /// `None`: a holiday.
    #[sqlx(skip)]
    pub replacement: Option<String>,
}

/// A team with its members' logins.
#[derive(Clone, Debug, Serialize, sqlx::FromRow)]
pub struct TeamView {
    pub id: i64,
    pub domain: String,
    pub name: String,
    #[sqlx(skip)]
    pub members: Vec<String>,
}

/// Logins of user ids (read through the auth module).
async fn logins(
    store: &Store,
    ids: impl IntoIterator<Item = i64>,
) -> Result<HashMap<i64, String>, OncallError> {
    let mut map = HashMap::new();
    for id in ids {
        if let std::collections::hash_map::Entry::Vacant(e) = map.entry(id) {
            let login = vigie_auth::get_user(store, id)
                .await?
                .map_or_else(|| format!("#{id}"), |u| u.login);
            e.insert(login);
        }
    }
    Ok(map)
}

fn login_of(map: &HashMap<i64, String>, id: i64) -> String {
    map.get(&id).cloned().unwrap_or_else(|| format!("#{id}"))
}

/// The domain's periods that end after `since`, by start.
pub async fn list_periods(
    store: &Store,
    domain: &str,
    since: DateTime<Utc>,
) -> Result<Vec<PeriodView>, OncallError> {
    let mut rows = on_pool!(store, pool => sqlx::query_as::<_, PeriodView>(
        "SELECT id, user_id, team_id, starts_at, ends_at, idx, note FROM oncall_periods
         WHERE domain = $1 AND ends_at > $2 ORDER BY starts_at, idx, id",
    )
    .bind(domain)
    .bind(since)
    .fetch_all(pool)
    .await)
    .map_err(StoreError::from)?;
    let names = logins(store, rows.iter().filter_map(|r| r.user_id)).await?;
    let teams: HashMap<i64, String> = list_teams(store, domain)
        .await?
        .into_iter()
        .map(|t| (t.id, t.name))
        .collect();
    for r in &mut rows {
        r.who = match (r.user_id, r.team_id) {
            (Some(u), _) => login_of(&names, u),
            (None, Some(t)) => teams.get(&t).cloned().unwrap_or_default(),
            (None, None) => String::new(),
        };
    }
    Ok(rows)
}

/// The domain's rotations (ended ones included), by index then name.
pub async fn list_rotations(store: &Store, domain: &str) -> Result<Vec<RotationView>, OncallError> {
    let mut rows = on_pool!(store, pool => sqlx::query_as::<_, RotationView>(
        "SELECT id, name, idx, anchor, time_zone, length_days, ends_at FROM oncall_rotations
         WHERE domain = $1 ORDER BY idx, name, id",
    )
    .bind(domain)
    .fetch_all(pool)
    .await)
    .map_err(StoreError::from)?;
    let members = on_pool!(store, pool => sqlx::query_as::<_, (i64, i64)>(
        "SELECT m.rotation_id, m.user_id FROM oncall_rotation_members m
         JOIN oncall_rotations r ON r.id = m.rotation_id WHERE r.domain = $1
         ORDER BY m.rotation_id, m.position",
    )
    .bind(domain)
    .fetch_all(pool)
    .await)
    .map_err(StoreError::from)?;
    let names = logins(store, members.iter().map(|(_, u)| *u)).await?;
    for r in &mut rows {
        r.members = members
            .iter()
            .filter(|(rot, _)| *rot == r.id)
            .map(|(_, u)| login_of(&names, *u))
            .collect();
    }
    Ok(rows)
}

/// The domain's overrides that end after `since`, by start.
pub async fn list_overrides(
    store: &Store,
    domain: &str,
    since: DateTime<Utc>,
) -> Result<Vec<OverrideView>, OncallError> {
    let mut rows = on_pool!(store, pool => sqlx::query_as::<_, OverrideView>(
        "SELECT id, starts_at, ends_at, replaced_id, replacement_id, reason FROM oncall_overrides
         WHERE domain = $1 AND ends_at > $2 ORDER BY starts_at, id",
    )
    .bind(domain)
    .bind(since)
    .fetch_all(pool)
    .await)
    .map_err(StoreError::from)?;
    let names = logins(
        store,
        rows.iter()
            .flat_map(|r| std::iter::once(r.replaced_id).chain(r.replacement_id)),
    )
    .await?;
    for r in &mut rows {
        r.replaced = login_of(&names, r.replaced_id);
        r.replacement = r.replacement_id.map(|u| login_of(&names, u));
    }
    Ok(rows)
}

/// The domain's teams with their members, by name.
pub async fn list_teams(store: &Store, domain: &str) -> Result<Vec<TeamView>, OncallError> {
    let mut rows = on_pool!(store, pool => sqlx::query_as::<_, TeamView>(
        "SELECT id, domain, name FROM oncall_teams WHERE domain = $1 ORDER BY name, id",
    )
    .bind(domain)
    .fetch_all(pool)
    .await)
    .map_err(StoreError::from)?;
    let members = on_pool!(store, pool => sqlx::query_as::<_, (i64, i64)>(
        "SELECT m.team_id, m.user_id FROM oncall_team_members m
         JOIN oncall_teams t ON t.id = m.team_id WHERE t.domain = $1 ORDER BY m.team_id",
    )
    .bind(domain)
    .fetch_all(pool)
    .await)
    .map_err(StoreError::from)?;
    let names = logins(store, members.iter().map(|(_, u)| *u)).await?;
    for t in &mut rows {
        t.members = members
            .iter()
            .filter(|(team, _)| *team == t.id)
            .map(|(_, u)| login_of(&names, *u))
            .collect();
        t.members.sort();
    }
    Ok(rows)
}

async fn team_by_id(store: &Store, id: i64) -> Result<Option<TeamView>, OncallError> {
    let row = on_pool!(store, pool => sqlx::query_as::<_, TeamView>(
        "SELECT id, domain, name FROM oncall_teams WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(pool)
    .await)
    .map_err(StoreError::from)?;
    Ok(row)
}
