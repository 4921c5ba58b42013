//! Templates: every built-in renders in both languages; the administrator's version wins; a
//! template that does not render is refused with its line.

use serde_json::json;
use vigie_notify::templates::{self, Source};
use vigie_notify::{Channel, NotifyError, render};

use crate::support::db;

#[tokio::test]
async fn every_builtin_template_renders_in_both_languages() {
    let db = db().await;
    let kinds = templates::builtin_kinds();
    for kind in [
        "alert.routed",
        "alert.escalated",
        "incident.opened",
        "incident.transferred",
        "incident.resolved",
        "incident.closed",
    ] {
        assert!(kinds.iter().any(|k| k == kind), "{kind}");
        for lang in ["en", "fr"] {
            for channel in Channel::ALL {
                let r = render(&db.store, kind, channel, lang, &templates::sample_context())
                    .await
                    .unwrap_or_else(|e| panic!("{kind} {channel:?} {lang}: {e}"));
                assert!(!r.text.is_empty());
                if channel == Channel::Mail {
                    assert!(!r.subject.is_empty() && r.html.is_some(), "{kind} {lang}");
                }
            }
            // A minimal context renders too (optional variables have defaults).
            let minimal = json!({
                "alert": { "level": "warning", "domain": "d", "source": "s", "resource": "r",
                           "message": "m", "first_seen": "t" },
                "incident": { "id": 1, "title": "t", "domain": "d" },
            });
            render(&db.store, kind, Channel::Mail, lang, &minimal)
                .await
                .unwrap();
        }
    }
    let fr = render(
        &db.store,
        "incident.resolved",
        Channel::Mail,
        "fr-FR",
        &templates::sample_context(),
    )
    .await
    .unwrap();
    assert!(fr.subject.contains("résolu"), "{}", fr.subject);
    let other = render(
        &db.store,
        "incident.resolved",
        Channel::Mail,
        "de",
        &templates::sample_context(),
    )
    .await
    .unwrap();
    assert!(
        other.subject.contains("resolved"),
        "unknown languages fall back to English"
    );
    assert!(matches!(
        render(&db.store, "no.such.kind", Channel::Mail, "en", &json!({})).await,
        Err(NotifyError::NoTemplate { .. })
    ));
}

#[tokio::test]
async fn the_administrators_template_wins_and_a_broken_one_is_refused_with_its_line() {
    let db = db().await;
    let actor = crate::admin(&db.store).await;
    let good = Source {
        subject: "ALERTE {{ alert.resource }}".into(),
        text: "Bonjour\n{{ alert.message | upper }}".into(),
        html: Some("<b>{{ alert.message }}</b>".into()),
    };
    templates::save(
        &db.store,
        &actor,
        None,
        "alert.routed",
        Channel::Mail,
        "fr",
        &good,
    )
    .await
    .unwrap();
    let ctx = json!({ "alert": { "resource": "sw", "message": "a<b" } });
    let r = render(&db.store, "alert.routed", Channel::Mail, "fr", &ctx)
        .await
        .unwrap();
    assert_eq!(r.subject, "ALERTE sw");
    assert_eq!(r.text, "Bonjour\nA<B");
    assert_eq!(r.html.as_deref(), Some("<b>a&lt;b</b>"));

    // An unknown filter on line 3 of the text.
    let broken = Source {
        subject: "ok".into(),
        text: "line one\nline two\n{{ alert.message | shout }}\n".into(),
        html: None,
    };
    let e = templates::save(
        &db.store,
        &actor,
        None,
        "alert.routed",
        Channel::Mail,
        "fr",
        &broken,
    )
    .await
    .unwrap_err();
    match &e {
        NotifyError::Template { field, line, .. } => {
            assert_eq!(field, "text");
            assert_eq!(*line, Some(3), "{e}");
        }
        other => panic!("{other:?}"),
    }
    // A syntax error on line 2 of the HTML.
    let broken = Source {
        subject: "ok".into(),
        text: "ok".into(),
        html: Some("<p>\n{% if alert.level %}\n</p>".into()),
    };
    let e = templates::save(
        &db.store,
        &actor,
        None,
        "alert.routed",
        Channel::Mail,
        "fr",
        &broken,
    )
    .await
    .unwrap_err();
    assert!(
        matches!(&e, NotifyError::Template { field, line: Some(_), .. } if field == "html"),
        "{e}"
    );
    // An unknown variable names its line.
    let broken = Source {
        subject: "ok".into(),
        text: "a\n{{ alert.nope }}".into(),
        html: None,
    };
    let e = templates::save(
        &db.store,
        &actor,
        None,
        "alert.routed",
        Channel::Sms,
        "fr",
        &broken,
    )
    .await
    .unwrap_err();
    assert!(
        matches!(&e, NotifyError::Template { line: Some(2), .. }),
        "{e}"
    );
    assert!(e.to_string().starts_with("text: line 2: "), "{e}");
    // Refused saves changed nothing.
    let r = render(&db.store, "alert.routed", Channel::Mail, "fr", &ctx)
        .await
        .unwrap();
    assert_eq!(r.subject, "ALERTE sw");
    let listed = templates::list(&db.store).await.unwrap();
    assert!(listed.iter().any(|l| l.kind == "alert.routed"
        && l.channel == "mail"
        && l.lang == "fr"
        && l.customised));
    assert!(listed.iter().any(|l| l.kind == "alert.routed"
        && l.channel == "mail"
        && l.lang == "en"
        && !l.customised));

    // Reset: the built-in applies again.
    assert!(
        templates::reset(&db.store, &actor, None, "alert.routed", Channel::Mail, "fr")
            .await
            .unwrap()
    );
    let r = render(
        &db.store,
        "alert.routed",
        Channel::Mail,
        "fr",
        &templates::sample_context(),
    )
    .await
    .unwrap();
    assert!(r.subject.starts_with("[Vigie]"));
    // Bad keys are refused with their field.
    let e = templates::save(
        &db.store,
        &actor,
        None,
        "bad kind!",
        Channel::Mail,
        "fr",
        &good,
    )
    .await
    .unwrap_err();
    assert!(e.to_string().starts_with("kind:"));
    let e = templates::save(
        &db.store,
        &actor,
        None,
        "alert.routed",
        Channel::Mail,
        "de",
        &good,
    )
    .await
    .unwrap_err();
    assert!(e.to_string().starts_with("lang:"));
}
