//! The edit functions refuse bad input with the field at fault and store nothing; good input is
//! stored with its audit entry, and removed with another.

use vigie_core::domain::Domains;
use vigie_core::role::Role;
use vigie_oncall::OncallError;
use vigie_oncall::planning_edit::{
    self as edit, Kind, OverrideInput, PeriodInput, RotationInput, TeamInput,
};

use crate::{admin, audits, db, planning_rows, t, user};

fn field(r: Result<i64, OncallError>) -> &'static str {
    match r {
        Err(OncallError::Invalid { field, .. }) => field,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

fn good_period() -> PeriodInput {
    PeriodInput {
        domain: "network".into(),
        login: "alice".into(),
        team_id: None,
        starts_at: Some(t("2026-11-02T08:00:00Z")),
        ends_at: Some(t("2026-11-03T08:00:00Z")),
        index: Some(1),
        note: "first week".into(),
    }
}

#[tokio::test]
async fn bad_input_is_refused_with_its_field_and_nothing_is_stored() {
    let d = db().await;
    let s = &d.store;
    let a = admin(s).await;
    let domains = Domains::default();
    user(s, "alice", Role::Oncall).await;
    let gone = user(s, "gone", Role::Oncall).await;
    vigie_auth::set_disabled(s, &a, None, gone, true)
        .await
        .unwrap();
    let audits_before = audits(s).await;

    let period = |change: &dyn Fn(&mut PeriodInput)| {
        let mut p = good_period();
        change(&mut p);
        p
    };
    let cases: Vec<(PeriodInput, &str)> = vec![
        (
            period(&|p| p.ends_at = Some(t("2026-11-02T07:00:00Z"))),
            "ends_at",
        ),
        (period(&|p| p.ends_at = p.starts_at), "ends_at"),
        (period(&|p| p.starts_at = None), "starts_at"),
        (period(&|p| p.login = "nobody".into()), "user"),
        (period(&|p| p.login = "gone".into()), "user"),
        (period(&|p| p.login = String::new()), "user"),
        (period(&|p| p.team_id = Some(1)), "user"),
        (period(&|p| p.domain = "mars".into()), "domain"),
        (period(&|p| p.index = Some(0)), "index"),
        (period(&|p| p.index = None), "index"),
        (period(&|p| p.note = "a\nb".into()), "note"),
    ];
    for (input, expected) in cases {
        let r = edit::add_period(s, &a, None, &domains, &input).await;
        assert_eq!(field(r), expected, "{input:?}");
    }
    let team_period = PeriodInput {
        login: String::new(),
        team_id: Some(999),
        ..good_period()
    };
    assert_eq!(
        field(edit::add_period(s, &a, None, &domains, &team_period).await),
        "team"
    );

    let rotation = RotationInput {
        domain: "network".into(),
        name: "weekly".into(),
        index: Some(1),
        anchor: Some(t("2026-11-02T08:00:00Z")),
        time_zone: "Europe/Paris".into(),
        length_days: Some(7),
        ends_at: None,
        members: vec!["alice".into()],
    };
    let rotation_cases: Vec<(RotationInput, &str)> = vec![
        (
            RotationInput {
                time_zone: "Mars/Olympus".into(),
                ..rotation.clone()
            },
            "time_zone",
        ),
        (
            RotationInput {
                members: vec![],
                ..rotation.clone()
            },
            "members",
        ),
        (
            RotationInput {
                members: vec!["alice".into(), "nobody".into()],
                ..rotation.clone()
            },
            "members",
        ),
        (
            RotationInput {
                length_days: Some(0),
                ..rotation.clone()
            },
            "length_days",
        ),
        (
            RotationInput {
                index: Some(-1),
                ..rotation.clone()
            },
            "index",
        ),
        (
            RotationInput {
                name: " ".into(),
                ..rotation.clone()
            },
            "name",
        ),
        (
            RotationInput {
                anchor: None,
                ..rotation.clone()
            },
            "anchor",
        ),
        (
            RotationInput {
                ends_at: Some(t("2026-11-01T00:00:00Z")),
                ..rotation.clone()
            },
            "ends_at",
        ),
        (
            RotationInput {
                domain: "mars".into(),
                ..rotation.clone()
            },
            "domain",
        ),
    ];
    for (input, expected) in rotation_cases {
        let r = edit::add_rotation(s, &a, None, &domains, &input).await;
        assert_eq!(field(r), expected, "{input:?}");
    }

    let swap = OverrideInput {
        domain: "network".into(),
        starts_at: Some(t("2026-11-02T08:00:00Z")),
        ends_at: Some(t("2026-11-03T08:00:00Z")),
        replaced: "alice".into(),
        replacement: String::new(),
        reason: "holiday".into(),
    };
    let override_cases: Vec<(OverrideInput, &str)> = vec![
        (
            OverrideInput {
                replacement: "alice".into(),
                ..swap.clone()
            },
            "replacement",
        ),
        (
            OverrideInput {
                replacement: "gone".into(),
                ..swap.clone()
            },
            "replacement",
        ),
        (
            OverrideInput {
                replaced: "nobody".into(),
                ..swap.clone()
            },
            "replaced",
        ),
        (
            OverrideInput {
                ends_at: Some(t("2026-11-01T00:00:00Z")),
                ..swap.clone()
            },
            "ends_at",
        ),
    ];
    for (input, expected) in override_cases {
        let r = edit::add_override(s, &a, None, &domains, &input).await;
        assert_eq!(field(r), expected, "{input:?}");
    }
    let team = TeamInput {
        domain: "network".into(),
        name: "N1".into(),
        members: vec!["nobody".into()],
    };
    assert_eq!(
        field(edit::add_team(s, &a, None, &domains, &team).await),
        "members"
    );

    assert_eq!(planning_rows(s).await, 0, "nothing stored");
    assert_eq!(audits(s).await, audits_before, "no audit entry");

    // The good ones are stored, each with its audit entry, and removed the same way.
    let id = edit::add_period(s, &a, None, &domains, &good_period())
        .await
        .unwrap();
    let r = edit::add_rotation(s, &a, None, &domains, &rotation)
        .await
        .unwrap();
    let o = edit::add_override(s, &a, None, &domains, &swap)
        .await
        .unwrap();
    assert_eq!(planning_rows(s).await, 4);
    assert_eq!(audits(s).await, audits_before + 3);
    let listed = edit::list_periods(s, "network", t("2026-11-01T00:00:00Z"))
        .await
        .unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].who, "alice");
    let rotations = edit::list_rotations(s, "network").await.unwrap();
    assert_eq!(rotations[0].members, vec!["alice".to_owned()]);
    let overrides = edit::list_overrides(s, "network", t("2026-11-01T00:00:00Z"))
        .await
        .unwrap();
    assert_eq!(overrides[0].replacement, None);

    assert_eq!(
        edit::remove(s, &a, None, Kind::Period, id).await.unwrap(),
        "network"
    );
    edit::remove(s, &a, None, Kind::Rotation, r).await.unwrap();
    edit::remove(s, &a, None, Kind::Override, o).await.unwrap();
    assert_eq!(planning_rows(s).await, 0);
    assert_eq!(audits(s).await, audits_before + 6);
    assert!(matches!(
        edit::remove(s, &a, None, Kind::Period, id).await,
        Err(OncallError::NotFound)
    ));
}
