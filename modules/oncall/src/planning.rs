//! The planning: people and teams on duty per domain, periods with an index (lowest told first),
//! weekly rotations and one-off overrides, and who is on duty at a given moment.
//!
//! Everything is computed from the stored planning on demand (nothing is materialised): a
//! [`Plan`] holds a domain's rows that touch a time window, and [`Plan::assignments_at`] answers
//! for one instant. [`on_duty`] and [`coverage`] both go through it, so the calendar shows exactly
//! what routing will use. Edits live in `planning_edit`.

use std::collections::{BTreeSet, HashMap};

use chrono::{DateTime, Duration, LocalResult, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;
use serde::Serialize;
use vigie_auth::contacts::{self, Contact};
use vigie_core::on_pool;
use vigie_core::store::{Store, StoreError};

use crate::OncallError;

/// One person on duty, as routing, incidents and the API need them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct OnDuty {
    pub user_id: i64,
    pub login: String,
    pub name: String,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub lang: Option<String>,
    /// Lowest is told first.
    pub index: i32,
}

/// The people on duty for `domain` at `at`, lowest index first (ties by login). This signature
/// is the contract other modules rely on.
pub async fn on_duty(
    store: &Store,
    domain: &str,
    at: DateTime<Utc>,
) -> Result<Vec<OnDuty>, OncallError> {
    let plan = Plan::load(store, domain, at, at + Duration::microseconds(1)).await?;
    let people = People::load(store, &plan).await?;
    Ok(people.resolve(&plan.assignments_at(at)).0)
}

/// Longest window [`coverage`] computes (the month view needs six weeks at most).
pub const COVERAGE_MAX_DAYS: i64 = 62;

/// Something wrong with the planning during a slot.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Conflict {
    /// Different people planned by different entries at the same index: who is told first is
    /// then a matter of logins, not of the planning.
    SameIndex { index: i32, logins: Vec<String> },
    /// A person planned while on holiday (an override with nobody replacing them).
    OnHoliday { login: String },
    /// A disabled (or deleted) user is still planned: they are left out.
    Disabled { login: String },
}

/// A stretch of time during which the people on duty do not change.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Slot {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    /// As [`on_duty`] answers during the slot.
    pub people: Vec<OnDuty>,
    /// Nobody on duty.
    pub gap: bool,
    pub conflicts: Vec<Conflict>,
}

/// The domain's planning over `[from, to)` as consecutive slots, each with its people, whether
/// it is a gap and its conflicts. Windows over [`COVERAGE_MAX_DAYS`] are refused.
pub async fn coverage(
    store: &Store,
    domain: &str,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Vec<Slot>, OncallError> {
    if to <= from {
        return Err(OncallError::Invalid {
            field: "to",
            problem: "must be after `from`".into(),
        });
    }
    if to - from > Duration::days(COVERAGE_MAX_DAYS) {
        return Err(OncallError::Invalid {
            field: "to",
            problem: format!("the window is longer than {COVERAGE_MAX_DAYS} days"),
        });
    }
    let plan = Plan::load(store, domain, from, to).await?;
    let people = People::load(store, &plan).await?;
    let mut slots: Vec<Slot> = Vec::new();
    let points = plan.change_points(from, to);
    for pair in points.windows(2) {
        let (a, b) = (pair[0], pair[1]);
        let (duty, conflicts) = people.resolve(&plan.assignments_at(a));
        if let Some(last) = slots.last_mut()
            && last.people == duty
            && last.conflicts == conflicts
        {
            last.to = b;
            continue;
        }
        slots.push(Slot {
            from: a,
            to: b,
            gap: duty.is_empty(),
            people: duty,
            conflicts,
        });
    }
    Ok(slots)
}

/// Where an assignment comes from: two entries of the planning giving the same index to
/// different people is a conflict, the members of one team period are not.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Origin {
    Period(i64),
    Rotation(i64),
}

/// One person planned at one index at one instant, before disabled users are left out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Assignment {
    pub user_id: i64,
    pub index: i32,
    pub origin: Origin,
    /// The holiday that took this person off duty, if one did (they are not on duty then).
    pub holiday: Option<i64>,
}

#[derive(Clone, Debug, sqlx::FromRow)]
struct PeriodRow {
    id: i64,
    user_id: Option<i64>,
    team_id: Option<i64>,
    starts_at: DateTime<Utc>,
    ends_at: DateTime<Utc>,
    idx: i32,
}

#[derive(Clone, Debug, sqlx::FromRow)]
struct RotationRow {
    id: i64,
    idx: i32,
    anchor: DateTime<Utc>,
    time_zone: String,
    length_days: i32,
    ends_at: Option<DateTime<Utc>>,
}

#[derive(Clone, Debug, sqlx::FromRow)]
struct OverrideRow {
    id: i64,
    starts_at: DateTime<Utc>,
    ends_at: DateTime<Utc>,
    replaced_id: i64,
    replacement_id: Option<i64>,
}

/// A rotation ready to answer "whose turn is it": the handover is at the anchor's local
/// weekday and time in its zone, so it stays at 09:00 local across daylight-saving changes.
#[derive(Clone, Debug)]
pub struct Rotation {
    pub id: i64,
    pub index: i32,
    pub anchor: DateTime<Utc>,
    pub tz: Tz,
    pub length_days: i64,
    pub ends_at: Option<DateTime<Utc>>,
    /// User ids in turn order.
    pub members: Vec<i64>,
    anchor_local: NaiveDateTime,
}

/// A local time to UTC: the earlier instant when the clock goes back, the first instant after
/// the gap when it jumps forward.
fn local_to_utc(tz: Tz, local: NaiveDateTime) -> DateTime<Utc> {
    match tz.from_local_datetime(&local) {
        LocalResult::Single(t) | LocalResult::Ambiguous(t, _) => t.with_timezone(&Utc),
        LocalResult::None => {
            let later = local + Duration::hours(1);
            tz.from_local_datetime(&later)
                .earliest()
                .map_or_else(|| Utc.from_utc_datetime(&local), |t| t.with_timezone(&Utc))
        }
    }
}

impl Rotation {
    pub fn new(
        id: i64,
        index: i32,
        anchor: DateTime<Utc>,
        tz: Tz,
        length_days: i64,
        ends_at: Option<DateTime<Utc>>,
        members: Vec<i64>,
    ) -> Rotation {
        Rotation {
            id,
            index,
            anchor,
            tz,
            length_days: length_days.max(1),
            ends_at,
            members,
            anchor_local: anchor.with_timezone(&tz).naive_local(),
        }
    }

    /// The start of turn `k` (turn 0 starts at the anchor).
    pub fn handover(&self, k: i64) -> DateTime<Utc> {
        if k == 0 {
            return self.anchor;
        }
        local_to_utc(
            self.tz,
            self.anchor_local + Duration::days(k * self.length_days),
        )
    }

    fn active(&self, at: DateTime<Utc>) -> bool {
        at >= self.anchor && self.ends_at.is_none_or(|e| at < e)
    }

    /// The turn running at `at`, if the rotation runs then.
    pub fn turn_at(&self, at: DateTime<Utc>) -> Option<i64> {
        if !self.active(at) {
            return None;
        }
        let local = at.with_timezone(&self.tz).naive_local();
        let span = self.length_days * 86_400;
        let mut k = (local - self.anchor_local)
            .num_seconds()
            .div_euclid(span)
            .max(0);
        // The local estimate can be off by one around a daylight-saving change.
        while k > 0 && self.handover(k) > at {
            k -= 1;
        }
        while self.handover(k + 1) <= at {
            k += 1;
        }
        Some(k)
    }

    /// Who is on duty at `at` by this rotation.
    pub fn member_at(&self, at: DateTime<Utc>) -> Option<i64> {
        let k = self.turn_at(at)?;
        let n = i64::try_from(self.members.len()).ok().filter(|n| *n > 0)?;
        let position = usize::try_from(k.rem_euclid(n)).ok()?;
        self.members.get(position).copied()
    }
}

/// A domain's planning rows that touch a window.
#[derive(Clone, Debug, Default)]
pub struct Plan {
    periods: Vec<PeriodRow>,
    rotations: Vec<Rotation>,
    overrides: Vec<OverrideRow>,
    teams: HashMap<i64, Vec<i64>>,
}

impl Plan {
    /// Reads the rows of `domain` that touch `[from, to)`.
    pub async fn load(
        store: &Store,
        domain: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Plan, StoreError> {
        let periods = on_pool!(store, pool => sqlx::query_as::<_, PeriodRow>(
            "SELECT id, user_id, team_id, starts_at, ends_at, idx FROM oncall_periods
             WHERE domain = $1 AND starts_at < $3 AND ends_at > $2 ORDER BY id",
        )
        .bind(domain)
        .bind(from)
        .bind(to)
        .fetch_all(pool)
        .await)?;
        let rotation_rows = on_pool!(store, pool => sqlx::query_as::<_, RotationRow>(
            "SELECT id, idx, anchor, time_zone, length_days, ends_at FROM oncall_rotations
             WHERE domain = $1 AND anchor < $3 AND (ends_at IS NULL OR ends_at > $2) ORDER BY id",
        )
        .bind(domain)
        .bind(from)
        .bind(to)
        .fetch_all(pool)
        .await)?;
        let members = on_pool!(store, pool => sqlx::query_as::<_, (i64, i64)>(
            "SELECT m.rotation_id, m.user_id FROM oncall_rotation_members m
             JOIN oncall_rotations r ON r.id = m.rotation_id
             WHERE r.domain = $1 ORDER BY m.rotation_id, m.position",
        )
        .bind(domain)
        .fetch_all(pool)
        .await)?;
        let overrides = on_pool!(store, pool => sqlx::query_as::<_, OverrideRow>(
            "SELECT id, starts_at, ends_at, replaced_id, replacement_id FROM oncall_overrides
             WHERE domain = $1 AND starts_at < $3 AND ends_at > $2 ORDER BY id",
        )
        .bind(domain)
        .bind(from)
        .bind(to)
        .fetch_all(pool)
        .await)?;
        let team_rows = on_pool!(store, pool => sqlx::query_as::<_, (i64, i64)>(
            "SELECT m.team_id, m.user_id FROM oncall_team_members m
             JOIN oncall_teams t ON t.id = m.team_id WHERE t.domain = $1
             ORDER BY m.team_id, m.user_id",
        )
        .bind(domain)
        .fetch_all(pool)
        .await)?;
        let mut by_rotation: HashMap<i64, Vec<i64>> = HashMap::new();
        for (rotation, user) in members {
            by_rotation.entry(rotation).or_default().push(user);
        }
        let rotations = rotation_rows
            .into_iter()
            .map(|r| {
                // An unknown zone name cannot be stored (checked on save); UTC is the safe fall-back.
                let tz = r.time_zone.parse::<Tz>().unwrap_or(Tz::UTC);
                Rotation::new(
                    r.id,
                    r.idx,
                    r.anchor,
                    tz,
                    i64::from(r.length_days),
                    r.ends_at,
                    by_rotation.remove(&r.id).unwrap_or_default(),
                )
            })
            .collect();
        let mut teams: HashMap<i64, Vec<i64>> = HashMap::new();
        for (team, user) in team_rows {
            teams.entry(team).or_default().push(user);
        }
        Ok(Plan {
            periods,
            rotations,
            overrides,
            teams,
        })
    }

    /// Every user id the plan mentions.
    fn user_ids(&self) -> BTreeSet<i64> {
        let mut ids = BTreeSet::new();
        for p in &self.periods {
            ids.extend(p.user_id);
            if let Some(t) = p.team_id {
                ids.extend(self.teams.get(&t).into_iter().flatten().copied());
            }
        }
        for r in &self.rotations {
            ids.extend(r.members.iter().copied());
        }
        for o in &self.overrides {
            ids.insert(o.replaced_id);
            ids.extend(o.replacement_id);
        }
        ids
    }

    /// The instants in `[from, to]` where the answer may change, sorted, `from` and `to`
    /// included.
    fn change_points(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> Vec<DateTime<Utc>> {
        let mut points = BTreeSet::from([from, to]);
        let mut add = |t: DateTime<Utc>| {
            if t > from && t < to {
                points.insert(t);
            }
        };
        for p in &self.periods {
            add(p.starts_at);
            add(p.ends_at);
        }
        for o in &self.overrides {
            add(o.starts_at);
            add(o.ends_at);
        }
        for r in &self.rotations {
            add(r.anchor);
            if let Some(e) = r.ends_at {
                add(e);
            }
            let first = r.turn_at(from.max(r.anchor)).unwrap_or(0);
            // A window holds at most COVERAGE_MAX_DAYS handovers (daily rotations).
            for k in first + 1..first + 2 + COVERAGE_MAX_DAYS {
                let t = r.handover(k);
                if t >= to {
                    break;
                }
                add(t);
            }
        }
        points.into_iter().collect()
    }

    /// Who the planning puts on duty at `at`, overrides applied (a holiday keeps the person in
    /// the list, marked, so that the conflict can be shown), disabled users not yet left out.
    pub fn assignments_at(&self, at: DateTime<Utc>) -> Vec<Assignment> {
        let mut list = Vec::new();
        for p in self
            .periods
            .iter()
            .filter(|p| p.starts_at <= at && at < p.ends_at)
        {
            let origin = Origin::Period(p.id);
            let users: Vec<i64> = match (p.user_id, p.team_id) {
                (Some(u), _) => vec![u],
                (None, Some(t)) => self.teams.get(&t).cloned().unwrap_or_default(),
                (None, None) => Vec::new(),
            };
            list.extend(users.into_iter().map(|user_id| Assignment {
                user_id,
                index: p.idx,
                origin,
                holiday: None,
            }));
        }
        for r in &self.rotations {
            if let Some(user_id) = r.member_at(at) {
                list.push(Assignment {
                    user_id,
                    index: r.index,
                    origin: Origin::Rotation(r.id),
                    holiday: None,
                });
            }
        }
        for o in self
            .overrides
            .iter()
            .filter(|o| o.starts_at <= at && at < o.ends_at)
        {
            for a in list
                .iter_mut()
                .filter(|a| a.user_id == o.replaced_id && a.holiday.is_none())
            {
                match o.replacement_id {
                    Some(r) => a.user_id = r,
                    None => a.holiday = Some(o.id),
                }
            }
        }
        list
    }
}

/// The people a plan mentions: contacts of the enabled ones, logins of the others.
struct People {
    enabled: HashMap<i64, Contact>,
    disabled: HashMap<i64, String>,
}

impl People {
    async fn load(store: &Store, plan: &Plan) -> Result<People, OncallError> {
        let ids: Vec<i64> = plan.user_ids().into_iter().collect();
        let enabled: HashMap<i64, Contact> = contacts::contacts(store, &ids)
            .await?
            .into_iter()
            .map(|c| (c.user_id, c))
            .collect();
        let mut disabled = HashMap::new();
        for id in ids.iter().filter(|id| !enabled.contains_key(id)) {
            let login = vigie_auth::get_user(store, *id)
                .await?
                .map_or_else(|| format!("#{id}"), |u| u.login);
            disabled.insert(*id, login);
        }
        Ok(People { enabled, disabled })
    }

    fn login(&self, id: i64) -> String {
        self.enabled
            .get(&id)
            .map(|c| c.login.clone())
            .or_else(|| self.disabled.get(&id).cloned())
            .unwrap_or_else(|| format!("#{id}"))
    }

    /// The people on duty (one line per person, lowest index kept, by index then login) and the
    /// conflicts of the moment.
    fn resolve(&self, list: &[Assignment]) -> (Vec<OnDuty>, Vec<Conflict>) {
        let mut conflicts = Vec::new();
        let mut seen_off = BTreeSet::new();
        for a in list {
            if a.holiday.is_some() {
                if seen_off.insert(("h", a.user_id)) {
                    conflicts.push(Conflict::OnHoliday {
                        login: self.login(a.user_id),
                    });
                }
            } else if !self.enabled.contains_key(&a.user_id) && seen_off.insert(("d", a.user_id)) {
                conflicts.push(Conflict::Disabled {
                    login: self.login(a.user_id),
                });
            }
        }
        let live: Vec<&Assignment> = list
            .iter()
            .filter(|a| a.holiday.is_none() && self.enabled.contains_key(&a.user_id))
            .collect();
        // Same index, different people, from different entries.
        let indexes: BTreeSet<i32> = live.iter().map(|a| a.index).collect();
        for index in indexes {
            let at: Vec<&&Assignment> = live.iter().filter(|a| a.index == index).collect();
            let users: BTreeSet<i64> = at.iter().map(|a| a.user_id).collect();
            let origins: BTreeSet<Origin> = at.iter().map(|a| a.origin).collect();
            if users.len() > 1 && origins.len() > 1 {
                let mut logins: Vec<String> = users.iter().map(|u| self.login(*u)).collect();
                logins.sort();
                conflicts.push(Conflict::SameIndex { index, logins });
            }
        }
        let mut best: HashMap<i64, i32> = HashMap::new();
        for a in &live {
            let e = best.entry(a.user_id).or_insert(a.index);
            *e = (*e).min(a.index);
        }
        let mut duty: Vec<OnDuty> = best
            .into_iter()
            .filter_map(|(id, index)| {
                let c = self.enabled.get(&id)?;
                Some(OnDuty {
                    user_id: id,
                    login: c.login.clone(),
                    name: c.name.clone(),
                    email: c.email.clone(),
                    phone: c.phone.clone(),
                    lang: c.lang.clone(),
                    index,
                })
            })
            .collect();
        duty.sort_by(|a, b| a.index.cmp(&b.index).then_with(|| a.login.cmp(&b.login)));
        (duty, conflicts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_default()
    }

    #[test]
    fn weekly_rotation_hands_over_at_local_time_across_dst() {
        // Monday 2026-03-23 09:00 in Paris (UTC+1), weekly; summer time starts on 2026-03-29.
        let tz: Tz = "Europe/Paris".parse().unwrap_or(Tz::UTC);
        let r = Rotation::new(
            1,
            1,
            utc("2026-03-23T08:00:00Z"),
            tz,
            7,
            None,
            vec![10, 20, 30],
        );
        assert_eq!(r.member_at(utc("2026-03-23T07:59:59Z")), None);
        assert_eq!(r.member_at(utc("2026-03-23T08:00:00Z")), Some(10));
        // The next handover is Monday 09:00 summer time, 07:00 UTC.
        assert_eq!(r.handover(1), utc("2026-03-30T07:00:00Z"));
        assert_eq!(r.member_at(utc("2026-03-30T06:59:59Z")), Some(10));
        assert_eq!(r.member_at(utc("2026-03-30T07:00:00Z")), Some(20));
        assert_eq!(r.member_at(utc("2026-04-06T07:00:00Z")), Some(30));
        assert_eq!(r.member_at(utc("2026-04-13T07:00:00Z")), Some(10));
    }
}
