//! Who is on duty (periods, rotations across the handover, overrides, disabled users, order)
//! and the coverage's gaps and conflicts.

use vigie_core::role::Role;
use vigie_oncall::on_duty;
use vigie_oncall::planning::{Conflict, coverage};

use crate::{admin, db, period, rotation, swap, t, user};

async fn logins(store: &vigie_core::store::Store, domain: &str, at: &str) -> Vec<(String, i32)> {
    on_duty(store, domain, t(at))
        .await
        .unwrap()
        .into_iter()
        .map(|p| (p.login, p.index))
        .collect()
}

fn pairs(list: &[(&str, i32)]) -> Vec<(String, i32)> {
    list.iter().map(|(l, i)| ((*l).to_owned(), *i)).collect()
}

#[tokio::test]
async fn periods_give_the_people_on_duty_by_index_then_login() {
    let d = db().await;
    let s = &d.store;
    let a = admin(s).await;
    for login in ["carol", "bob", "alice", "dave"] {
        user(s, login, Role::Oncall).await;
    }
    period(
        s,
        &a,
        "network",
        "carol",
        "2026-11-02T08:00:00Z",
        "2026-11-09T08:00:00Z",
        2,
    )
    .await;
    period(
        s,
        &a,
        "network",
        "bob",
        "2026-11-02T08:00:00Z",
        "2026-11-09T08:00:00Z",
        1,
    )
    .await;
    period(
        s,
        &a,
        "network",
        "alice",
        "2026-11-02T08:00:00Z",
        "2026-11-03T08:00:00Z",
        1,
    )
    .await;
    // Another domain and another week are not counted.
    period(
        s,
        &a,
        "systems",
        "dave",
        "2026-11-02T08:00:00Z",
        "2026-11-09T08:00:00Z",
        1,
    )
    .await;
    period(
        s,
        &a,
        "network",
        "dave",
        "2026-11-09T08:00:00Z",
        "2026-11-16T08:00:00Z",
        1,
    )
    .await;

    assert_eq!(
        logins(s, "network", "2026-11-02T08:00:00Z").await,
        pairs(&[("alice", 1), ("bob", 1), ("carol", 2)]),
        "the start is included, ties by login"
    );
    assert_eq!(
        logins(s, "network", "2026-11-03T08:00:00Z").await,
        pairs(&[("bob", 1), ("carol", 2)]),
        "the end is excluded"
    );
    assert_eq!(
        logins(s, "network", "2026-11-02T07:59:59Z").await,
        pairs(&[])
    );
    assert_eq!(
        logins(s, "network", "2026-11-09T08:00:00Z").await,
        pairs(&[("dave", 1)])
    );
    let people = on_duty(s, "network", t("2026-11-04T00:00:00Z"))
        .await
        .unwrap();
    assert_eq!(people[0].email.as_deref(), Some("bob@example.org"));
    assert_eq!(people[0].name, "bob");
    assert!(
        on_duty(s, "nowhere", t("2026-11-04T00:00:00Z"))
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn one_line_per_person_with_the_lowest_index() {
    let d = db().await;
    let s = &d.store;
    let a = admin(s).await;
    user(s, "alice", Role::Oncall).await;
    user(s, "bob", Role::Oncall).await;
    period(
        s,
        &a,
        "network",
        "alice",
        "2026-11-02T00:00:00Z",
        "2026-11-09T00:00:00Z",
        3,
    )
    .await;
    period(
        s,
        &a,
        "network",
        "bob",
        "2026-11-02T00:00:00Z",
        "2026-11-09T00:00:00Z",
        2,
    )
    .await;
    rotation(
        s,
        &a,
        "network",
        "2026-11-02T00:00:00Z",
        "UTC",
        &["alice"],
        1,
    )
    .await;
    assert_eq!(
        logins(s, "network", "2026-11-03T00:00:00Z").await,
        pairs(&[("alice", 1), ("bob", 2)])
    );
}

#[tokio::test]
async fn a_weekly_rotation_hands_over_at_its_local_time() {
    let d = db().await;
    let s = &d.store;
    let a = admin(s).await;
    for login in ["xavier", "yann", "zoe"] {
        user(s, login, Role::Oncall).await;
    }
    // Monday 2026-10-19 09:00 in Paris (UTC+2); winter time from 2026-10-25 (UTC+1).
    rotation(
        s,
        &a,
        "systems",
        "2026-10-19T07:00:00Z",
        "Europe/Paris",
        &["xavier", "yann", "zoe"],
        1,
    )
    .await;
    assert_eq!(
        logins(s, "systems", "2026-10-19T06:59:59Z").await,
        pairs(&[])
    );
    assert_eq!(
        logins(s, "systems", "2026-10-19T07:00:00Z").await,
        pairs(&[("xavier", 1)])
    );
    // The next handover is Monday 09:00 winter time: 08:00 UTC.
    assert_eq!(
        logins(s, "systems", "2026-10-26T07:30:00Z").await,
        pairs(&[("xavier", 1)])
    );
    assert_eq!(
        logins(s, "systems", "2026-10-26T08:00:00Z").await,
        pairs(&[("yann", 1)])
    );
    assert_eq!(
        logins(s, "systems", "2026-11-02T08:00:00Z").await,
        pairs(&[("zoe", 1)])
    );
    assert_eq!(
        logins(s, "systems", "2026-11-09T07:59:59Z").await,
        pairs(&[("zoe", 1)])
    );
    assert_eq!(
        logins(s, "systems", "2026-11-09T08:00:00Z").await,
        pairs(&[("xavier", 1)])
    );
}

#[tokio::test]
async fn overrides_swap_a_person_or_take_them_off_duty() {
    let d = db().await;
    let s = &d.store;
    let a = admin(s).await;
    for login in ["alice", "bob", "carol"] {
        user(s, login, Role::Oncall).await;
    }
    period(
        s,
        &a,
        "network",
        "alice",
        "2026-11-02T00:00:00Z",
        "2026-11-09T00:00:00Z",
        1,
    )
    .await;
    period(
        s,
        &a,
        "network",
        "carol",
        "2026-11-02T00:00:00Z",
        "2026-11-09T00:00:00Z",
        2,
    )
    .await;
    // A swap: bob takes alice's place (and index) on Tuesday.
    swap(
        s,
        &a,
        "network",
        "alice",
        "bob",
        "2026-11-03T00:00:00Z",
        "2026-11-04T00:00:00Z",
    )
    .await;
    // A holiday: carol is off duty on Wednesday, nobody replaces her.
    swap(
        s,
        &a,
        "network",
        "carol",
        "",
        "2026-11-04T00:00:00Z",
        "2026-11-05T00:00:00Z",
    )
    .await;

    assert_eq!(
        logins(s, "network", "2026-11-02T12:00:00Z").await,
        pairs(&[("alice", 1), ("carol", 2)])
    );
    assert_eq!(
        logins(s, "network", "2026-11-03T12:00:00Z").await,
        pairs(&[("bob", 1), ("carol", 2)])
    );
    assert_eq!(
        logins(s, "network", "2026-11-04T12:00:00Z").await,
        pairs(&[("alice", 1)])
    );
    assert_eq!(
        logins(s, "network", "2026-11-05T00:00:00Z").await,
        pairs(&[("alice", 1), ("carol", 2)])
    );
    // The calendar flags the holiday.
    let slots = coverage(
        s,
        "network",
        t("2026-11-04T00:00:00Z"),
        t("2026-11-05T00:00:00Z"),
    )
    .await
    .unwrap();
    assert_eq!(slots.len(), 1);
    assert_eq!(
        slots[0].conflicts,
        vec![Conflict::OnHoliday {
            login: "carol".into()
        }]
    );
    // A holiday of the only person on duty is a gap.
    swap(
        s,
        &a,
        "network",
        "alice",
        "",
        "2026-11-04T10:00:00Z",
        "2026-11-04T11:00:00Z",
    )
    .await;
    assert_eq!(
        logins(s, "network", "2026-11-04T10:30:00Z").await,
        pairs(&[])
    );
}

#[tokio::test]
async fn disabled_users_are_left_out_and_flagged() {
    let d = db().await;
    let s = &d.store;
    let a = admin(s).await;
    user(s, "alice", Role::Oncall).await;
    let bob = user(s, "bob", Role::Oncall).await;
    period(
        s,
        &a,
        "network",
        "alice",
        "2026-11-02T00:00:00Z",
        "2026-11-09T00:00:00Z",
        2,
    )
    .await;
    period(
        s,
        &a,
        "network",
        "bob",
        "2026-11-02T00:00:00Z",
        "2026-11-09T00:00:00Z",
        1,
    )
    .await;
    vigie_auth::set_disabled(s, &a, None, bob, true)
        .await
        .unwrap();
    assert_eq!(
        logins(s, "network", "2026-11-03T00:00:00Z").await,
        pairs(&[("alice", 2)])
    );
    let slots = coverage(
        s,
        "network",
        t("2026-11-03T00:00:00Z"),
        t("2026-11-04T00:00:00Z"),
    )
    .await
    .unwrap();
    assert_eq!(
        slots[0].conflicts,
        vec![Conflict::Disabled {
            login: "bob".into()
        }]
    );
}

#[tokio::test]
async fn a_team_period_puts_every_member_on_duty_without_conflict() {
    let d = db().await;
    let s = &d.store;
    let a = admin(s).await;
    user(s, "alice", Role::Oncall).await;
    user(s, "bob", Role::Oncall).await;
    let team = vigie_oncall::planning_edit::add_team(
        s,
        &a,
        None,
        &vigie_core::domain::Domains::default(),
        &vigie_oncall::planning_edit::TeamInput {
            domain: "network".into(),
            name: "N1".into(),
            members: vec!["bob".into(), "alice".into()],
        },
    )
    .await
    .unwrap();
    vigie_oncall::planning_edit::add_period(
        s,
        &a,
        None,
        &vigie_core::domain::Domains::default(),
        &vigie_oncall::planning_edit::PeriodInput {
            domain: "network".into(),
            team_id: Some(team),
            starts_at: Some(t("2026-11-02T00:00:00Z")),
            ends_at: Some(t("2026-11-03T00:00:00Z")),
            index: Some(1),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(
        logins(s, "network", "2026-11-02T12:00:00Z").await,
        pairs(&[("alice", 1), ("bob", 1)])
    );
    let slots = coverage(
        s,
        "network",
        t("2026-11-02T00:00:00Z"),
        t("2026-11-03T00:00:00Z"),
    )
    .await
    .unwrap();
    assert_eq!(slots.len(), 1);
    assert!(slots[0].conflicts.is_empty(), "{:?}", slots[0].conflicts);
}

#[tokio::test]
async fn coverage_shows_gaps_and_same_index_conflicts() {
    let d = db().await;
    let s = &d.store;
    let a = admin(s).await;
    user(s, "alice", Role::Oncall).await;
    user(s, "bob", Role::Oncall).await;
    period(
        s,
        &a,
        "network",
        "alice",
        "2026-11-02T08:00:00Z",
        "2026-11-02T12:00:00Z",
        1,
    )
    .await;
    period(
        s,
        &a,
        "network",
        "bob",
        "2026-11-02T10:00:00Z",
        "2026-11-02T14:00:00Z",
        1,
    )
    .await;
    let slots = coverage(
        s,
        "network",
        t("2026-11-02T00:00:00Z"),
        t("2026-11-03T00:00:00Z"),
    )
    .await
    .unwrap();
    let shape: Vec<(String, String, Vec<String>, bool, usize)> = slots
        .iter()
        .map(|s| {
            (
                s.from.format("%H:%M").to_string(),
                s.to.format("%d %H:%M").to_string(),
                s.people.iter().map(|p| p.login.clone()).collect(),
                s.gap,
                s.conflicts.len(),
            )
        })
        .collect();
    let expected = vec![
        ("00:00", "02 08:00", vec![], true, 0),
        ("08:00", "02 10:00", vec!["alice"], false, 0),
        ("10:00", "02 12:00", vec!["alice", "bob"], false, 1),
        ("12:00", "02 14:00", vec!["bob"], false, 0),
        ("14:00", "03 00:00", vec![], true, 0),
    ];
    let expected: Vec<(String, String, Vec<String>, bool, usize)> = expected
        .into_iter()
        .map(|(a, b, p, g, c)| {
            (
                a.to_owned(),
                b.to_owned(),
                p.into_iter().map(str::to_owned).collect(),
                g,
                c,
            )
        })
        .collect();
    assert_eq!(shape, expected);
    assert_eq!(
        slots[2].conflicts,
        vec![Conflict::SameIndex {
            index: 1,
            logins: vec!["alice".into(), "bob".into()]
        }]
    );
    // A rotation's handovers split the slots too; an over-long window is refused.
    assert!(
        coverage(
            s,
            "network",
            t("2026-01-01T00:00:00Z"),
            t("2026-06-01T00:00:00Z")
        )
        .await
        .is_err()
    );
}
