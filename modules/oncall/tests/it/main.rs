//! Integration tests of the on-call module against the store (each test on a fresh database of
//! the backend `VIGIE_TEST_DATABASE` selects): who is on duty, gaps and conflicts, the edit
//! functions' refusals, the API and the console pages.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod edits;
mod planning;
mod routing;
mod web;

use chrono::{DateTime, Utc};
use vigie_auth::{NewUser, create_user};
use vigie_core::audit::Actor;
use vigie_core::domain::Domains;
use vigie_core::role::Role;
use vigie_core::store::Store;
use vigie_core::testing::TestDb;
use vigie_oncall::planning_edit::{self as edit, OverrideInput, PeriodInput, RotationInput};

pub struct Db {
    pub _db: TestDb,
    pub store: Store,
}

pub async fn db() -> Db {
    let db = TestDb::create().await.expect("test database");
    let store = db.store().await.expect("store");
    Db { _db: db, store }
}

pub fn t(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

pub async fn user(store: &Store, login: &str, role: Role) -> i64 {
    create_user(
        store,
        NewUser {
            login: login.into(),
            role,
            email: Some(format!("{login}@example.org")),
            display_name: None,
            password: None,
            must_change_password: false,
        },
    )
    .await
    .unwrap()
}

/// The administrator who edits the planning in the tests.
pub async fn admin(store: &Store) -> Actor {
    let user_id = user(store, "boss", Role::Admin).await;
    Actor {
        user_id,
        login: "boss".into(),
        role: Role::Admin,
    }
}

pub async fn period(
    store: &Store,
    a: &Actor,
    domain: &str,
    login: &str,
    from: &str,
    to: &str,
    index: i32,
) -> i64 {
    edit::add_period(
        store,
        a,
        None,
        &Domains::default(),
        &PeriodInput {
            domain: domain.into(),
            login: login.into(),
            starts_at: Some(t(from)),
            ends_at: Some(t(to)),
            index: Some(index),
            ..PeriodInput::default()
        },
    )
    .await
    .unwrap()
}

pub async fn rotation(
    store: &Store,
    a: &Actor,
    domain: &str,
    anchor: &str,
    tz: &str,
    members: &[&str],
    index: i32,
) -> i64 {
    edit::add_rotation(
        store,
        a,
        None,
        &Domains::default(),
        &RotationInput {
            domain: domain.into(),
            name: "weekly".into(),
            index: Some(index),
            anchor: Some(t(anchor)),
            time_zone: tz.into(),
            length_days: Some(7),
            ends_at: None,
            members: members.iter().map(|m| (*m).to_owned()).collect(),
        },
    )
    .await
    .unwrap()
}

pub async fn swap(
    store: &Store,
    a: &Actor,
    domain: &str,
    replaced: &str,
    replacement: &str,
    from: &str,
    to: &str,
) -> i64 {
    edit::add_override(
        store,
        a,
        None,
        &Domains::default(),
        &OverrideInput {
            domain: domain.into(),
            starts_at: Some(t(from)),
            ends_at: Some(t(to)),
            replaced: replaced.into(),
            replacement: replacement.into(),
            reason: String::new(),
        },
    )
    .await
    .unwrap()
}

pub async fn count(store: &Store, sql: &'static str) -> i64 {
    vigie_core::on_pool!(store, pool => sqlx::query_scalar::<_, i64>(sql).fetch_one(pool).await)
        .unwrap()
}

/// Rows of the planning's tables, all together (to prove a refusal stored nothing).
pub async fn planning_rows(store: &Store) -> i64 {
    count(
        store,
        "SELECT (SELECT COUNT(*) FROM oncall_periods) + (SELECT COUNT(*) FROM oncall_rotations)
              + (SELECT COUNT(*) FROM oncall_rotation_members) + (SELECT COUNT(*) FROM oncall_overrides)
              + (SELECT COUNT(*) FROM oncall_teams) + (SELECT COUNT(*) FROM oncall_team_members)",
    )
    .await
}

pub async fn audits(store: &Store) -> i64 {
    count(
        store,
        "SELECT COUNT(*) FROM audit_log WHERE action LIKE 'oncall%'",
    )
    .await
}
