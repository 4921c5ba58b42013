//! The library: writes, search, ranking, filters, suggestions and bad input.

use vigie_core::role::Role;
use vigie_kb::{Draft, Filters, KbError};

use crate::{articles, draft, hub, kb_audit, person};

fn ids(hits: &[vigie_kb::Hit]) -> Vec<i64> {
    hits.iter().map(|h| h.id).collect()
}

#[tokio::test]
async fn create_edit_delete_with_audit_entries() {
    let h = hub().await;
    let op = person(&h.store, "op", Role::Operator).await;
    let mut d = draft(
        "  Imprimante bloquée  ",
        "Plus rien ne sort.",
        "Vider la file d'attente.",
    );
    d.tags = vec!["Impression".into(), "impression".into(), " hp ".into()];
    d.domain = Some("systems".into());
    d.incident_id = Some(12);
    d.incident_reference = Some("2026/SYS/3".into());
    let id = vigie_kb::create(&h.store, &op.actor, Some("192.0.2.1"), &d)
        .await
        .unwrap();
    let a = vigie_kb::get(&h.store, id).await.unwrap().unwrap();
    assert_eq!(a.title, "Imprimante bloquée", "trimmed");
    assert_eq!(a.tags, ["hp", "impression"], "lower-cased, unique, sorted");
    assert_eq!(a.domain.as_deref(), Some("systems"));
    assert_eq!(a.author, "op");
    assert_eq!(a.author_id, Some(op.actor.user_id));
    assert_eq!(a.incidents.len(), 1);
    assert_eq!(a.incidents[0].incident_id, 12);
    assert_eq!(a.incidents[0].reference.as_deref(), Some("2026/SYS/3"));
    assert_eq!(
        vigie_kb::for_incident(&h.store, 12).await.unwrap(),
        [(id, "Imprimante bloquée".to_owned())]
    );

    let mut e = draft("Imprimante HP bloquée", "", "Redémarrer le spouleur.");
    e.tags = vec!["spouleur".into()];
    vigie_kb::update(&h.store, &op.actor, None, id, &e)
        .await
        .unwrap();
    let a = vigie_kb::get(&h.store, id).await.unwrap().unwrap();
    assert_eq!(a.title, "Imprimante HP bloquée");
    assert_eq!(a.tags, ["spouleur"]);
    assert_eq!(a.domain, None);
    assert_eq!(a.updated_by.as_deref(), Some("op"));
    assert_eq!(a.incidents.len(), 1, "the incident link stays");
    // The index follows the edit: the old resolution's words are gone, the new ones found.
    let none = Filters::default();
    assert!(
        vigie_kb::search(&h.store, "attente", &none, 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        ids(&vigie_kb::search(&h.store, "spouleur", &none, 10)
            .await
            .unwrap()),
        [id]
    );

    assert!(
        vigie_kb::delete(&h.store, &op.actor, None, id)
            .await
            .unwrap()
    );
    assert!(vigie_kb::get(&h.store, id).await.unwrap().is_none());
    assert!(
        !vigie_kb::delete(&h.store, &op.actor, None, id)
            .await
            .unwrap()
    );
    assert!(
        vigie_kb::search(&h.store, "spouleur", &none, 10)
            .await
            .unwrap()
            .is_empty(),
        "a deleted article leaves the index"
    );
    assert!(
        vigie_kb::for_incident(&h.store, 12)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(kb_audit(&h.store).await, 3, "create, update, delete");
    assert!(matches!(
        vigie_kb::update(&h.store, &op.actor, None, id, &e).await,
        Err(KbError::NotFound)
    ));
}

#[tokio::test]
async fn a_closed_incident_turned_into_an_article_is_found_by_its_resolution() {
    let h = hub().await;
    let user = person(&h.store, "jeanne", Role::User).await;
    // What the incidents module fills from a closed incident.
    let from_incident = Draft {
        title: "VPN inaccessible depuis le siège".into(),
        symptoms: "Les postes du siège n'ouvrent plus le tunnel.".into(),
        cause: "Certificat expiré sur la passerelle.".into(),
        resolution: "Renouveler le certificat puis redémarrer la passerelle IPsec.".into(),
        domain: Some("network".into()),
        tags: vec!["vpn".into()],
        incident_id: Some(41),
        incident_reference: Some("2026/NET/7".into()),
    };
    let id = vigie_kb::create(&h.store, &user.actor, None, &from_incident)
        .await
        .unwrap();
    vigie_kb::create(
        &h.store,
        &user.actor,
        None,
        &draft("Disque plein", "Alerte disque.", "Purger les journaux."),
    )
    .await
    .unwrap();
    let none = Filters::default();
    for q in [
        "renouveler certificat",
        "redemarrer passerelle",
        "REDÉMARRER",
        "ipsec",
    ] {
        let hits = vigie_kb::search(&h.store, q, &none, 10).await.unwrap();
        assert_eq!(ids(&hits), [id], "query {q:?}");
    }
    let hits = vigie_kb::search(&h.store, "redemarrer", &none, 10)
        .await
        .unwrap();
    assert_eq!(hits[0].title, "VPN inaccessible depuis le siège");
    assert_eq!(hits[0].tags, ["vpn"]);
    assert_eq!(hits[0].domain.as_deref(), Some("network"));
    assert!(
        hits[0]
            .pieces
            .iter()
            .any(|p| p.hit && p.text == "redémarrer"),
        "the word found is highlighted: {:?}",
        hits[0].pieces
    );
    assert!(hits[0].snippet.contains("redémarrer la passerelle"));
}

#[tokio::test]
async fn search_ignores_accents_both_ways_and_ligatures() {
    let h = hub().await;
    let user = person(&h.store, "u", Role::User).await;
    let accented = vigie_kb::create(
        &h.store,
        &user.actor,
        None,
        &draft("Serveur figé", "", "Il faut redémarrer le serveur."),
    )
    .await
    .unwrap();
    let plain = vigie_kb::create(
        &h.store,
        &user.actor,
        None,
        &draft("Routeur", "", "Penser a creer une regle de pare-feu."),
    )
    .await
    .unwrap();
    let ligature = vigie_kb::create(
        &h.store,
        &user.actor,
        None,
        &draft("Cœur de réseau", "", "Basculer sur le second cœur."),
    )
    .await
    .unwrap();
    let none = Filters::default();
    let find = |q: &'static str| {
        let store = h.store.clone();
        let none = none.clone();
        async move { ids(&vigie_kb::search(&store, q, &none, 10).await.unwrap()) }
    };
    assert_eq!(find("redemarrer").await, [accented]);
    assert_eq!(find("Redémarrer").await, [accented]);
    assert_eq!(find("fige").await, [accented]);
    assert_eq!(find("créer règle").await, [plain]);
    assert_eq!(find("CREER").await, [plain]);
    assert_eq!(find("coeur").await, [ligature]);
    assert_eq!(find("cœur").await, [ligature]);
    assert!(find("inexistant").await.is_empty());
    // All the words are required.
    assert!(find("redemarrer routeur").await.is_empty());
}

#[tokio::test]
async fn a_title_match_ranks_first_and_the_last_word_is_a_prefix() {
    let h = hub().await;
    let user = person(&h.store, "u", Role::User).await;
    let in_body = vigie_kb::create(
        &h.store,
        &user.actor,
        None,
        &draft(
            "Réseau lent",
            "Les utilisateurs se plaignent.",
            "Le commutateur du deuxième étage saturait; remplacer le commutateur.",
        ),
    )
    .await
    .unwrap();
    let in_title = vigie_kb::create(
        &h.store,
        &user.actor,
        None,
        &draft("Commutateur en panne", "", "Changer l'alimentation."),
    )
    .await
    .unwrap();
    let none = Filters::default();
    let hits = vigie_kb::search(&h.store, "commutateur", &none, 10)
        .await
        .unwrap();
    assert_eq!(ids(&hits), [in_title, in_body], "title first");
    assert!(hits[0].score > hits[1].score);

    // Prefix of the last word, accents ignored.
    let hits = vigie_kb::search(&h.store, "commut", &none, 10)
        .await
        .unwrap();
    assert_eq!(hits.len(), 2);
    let hits = vigie_kb::search(&h.store, "alimentation chang", &none, 10)
        .await
        .unwrap();
    assert_eq!(ids(&hits), [in_title]);
    let hits = vigie_kb::search(&h.store, "deuxi", &none, 10)
        .await
        .unwrap();
    assert_eq!(ids(&hits), [in_body]);
    // Only the last word is a prefix.
    assert!(
        vigie_kb::search(&h.store, "alim changer", &none, 10)
            .await
            .unwrap()
            .is_empty()
    );
    // The limit holds.
    assert_eq!(
        vigie_kb::search(&h.store, "commutateur", &none, 1)
            .await
            .unwrap()
            .len(),
        1
    );
}

#[tokio::test]
async fn filters_by_domain_and_tag_and_recent_articles() {
    let h = hub().await;
    let user = person(&h.store, "u", Role::User).await;
    let mut a = draft("Sauvegarde échouée", "", "Relancer la sauvegarde.");
    a.domain = Some("systems".into());
    a.tags = vec!["backup".into()];
    let a = vigie_kb::create(&h.store, &user.actor, None, &a)
        .await
        .unwrap();
    let mut b = draft(
        "Sauvegarde réseau",
        "",
        "Relancer la sauvegarde du routeur.",
    );
    b.domain = Some("network".into());
    b.tags = vec!["routeur".into(), "backup".into()];
    let b = vigie_kb::create(&h.store, &user.actor, None, &b)
        .await
        .unwrap();
    let only = |domain: Option<&str>, tag: Option<&str>| Filters {
        domain: domain.map(str::to_owned),
        tag: tag.map(str::to_owned),
    };
    let hits = vigie_kb::search(&h.store, "sauvegarde", &only(Some("network"), None), 10)
        .await
        .unwrap();
    assert_eq!(ids(&hits), [b]);
    let hits = vigie_kb::search(&h.store, "sauvegarde", &only(None, Some("Routeur")), 10)
        .await
        .unwrap();
    assert_eq!(ids(&hits), [b]);
    let hits = vigie_kb::search(&h.store, "sauvegarde", &only(None, Some("backup")), 10)
        .await
        .unwrap();
    assert_eq!(hits.len(), 2);
    let recent = vigie_kb::recent(&h.store, &Filters::default(), 10)
        .await
        .unwrap();
    assert_eq!(ids(&recent), [b, a], "newest first");
    assert_eq!(recent[0].tags, ["backup", "routeur"]);
    let recent = vigie_kb::recent(&h.store, &only(Some("systems"), None), 10)
        .await
        .unwrap();
    assert_eq!(ids(&recent), [a]);
    let (domains, tags) = vigie_kb::repo::facets(&h.store).await.unwrap();
    assert_eq!(domains, ["network", "systems"]);
    assert_eq!(tags, ["backup", "routeur"]);
}

#[tokio::test]
async fn suggest_returns_the_closest_article_for_an_incident_text() {
    let h = hub().await;
    let user = person(&h.store, "u", Role::User).await;
    let mut mail = draft(
        "Messagerie indisponible",
        "Outlook n'arrive plus à se connecter au serveur Exchange.",
        "Redémarrer le service de transport Exchange.",
    );
    mail.domain = Some("applications".into());
    let mail = vigie_kb::create(&h.store, &user.actor, None, &mail)
        .await
        .unwrap();
    let mut disk = draft(
        "Disque plein sur le serveur de fichiers",
        "Les utilisateurs ne peuvent plus enregistrer.",
        "Purger les fichiers temporaires.",
    );
    disk.domain = Some("systems".into());
    let disk = vigie_kb::create(&h.store, &user.actor, None, &disk)
        .await
        .unwrap();
    vigie_kb::create(
        &h.store,
        &user.actor,
        None,
        &draft("Imprimante", "", "Changer le toner."),
    )
    .await
    .unwrap();

    let text = "Le serveur Exchange ne répond plus — les utilisateurs n'ont plus de messagerie \
                depuis ce matin";
    let hits = vigie_kb::suggest(&h.store, text, None, 5).await.unwrap();
    assert_eq!(hits.first().map(|h| h.id), Some(mail), "{hits:?}");
    assert!(
        ids(&hits).contains(&disk),
        "shares `serveur`, `utilisateurs`"
    );
    assert_eq!(hits.len(), 2, "the printer article shares nothing");
    let hits = vigie_kb::suggest(&h.store, text, Some("systems"), 5)
        .await
        .unwrap();
    assert_eq!(ids(&hits), [disk], "restricted to the domain");
    // Only stop words: nothing to look for.
    assert!(
        vigie_kb::suggest(&h.store, "le la les de the and", None, 5)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        vigie_kb::suggest(&h.store, "", None, 5)
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn bad_input_is_refused_with_nothing_stored() {
    let h = hub().await;
    let user = person(&h.store, "u", Role::User).await;
    let fields = |r: Result<i64, KbError>| match r {
        Err(KbError::Invalid(problems)) => problems.iter().map(|p| p.field).collect::<Vec<_>>(),
        other => panic!("expected invalid, got {other:?}"),
    };
    let create = |d: Draft| {
        let store = h.store.clone();
        let actor = user.actor.clone();
        async move { vigie_kb::create(&store, &actor, None, &d).await }
    };
    assert_eq!(
        fields(create(draft("  ", "", "")).await),
        ["title", "resolution"]
    );
    assert_eq!(
        fields(create(draft(&"x".repeat(201), "", "ok")).await),
        ["title"]
    );
    assert_eq!(
        fields(create(draft("two\nlines", "", "ok")).await),
        ["title"]
    );
    assert_eq!(
        fields(create(draft("t", &"é".repeat(20_001), "ok")).await),
        ["symptoms"]
    );
    let mut d = draft("t", "", "ok");
    d.domain = Some("Réseau; DROP".into());
    assert_eq!(fields(create(d).await), ["domain"]);
    let mut d = draft("t", "", "ok");
    d.tags = (0..21).map(|i| format!("tag{i}")).collect();
    assert_eq!(fields(create(d).await), ["tags"]);
    let mut d = draft("t", "", "ok");
    d.tags = vec!["a,b".into()];
    assert_eq!(fields(create(d).await), ["tags"]);
    let mut d = draft("t", "", "ok");
    d.incident_id = Some(0);
    assert_eq!(fields(create(d).await), ["incident_id"]);
    let mut d = draft("t", "", "ok");
    d.incident_id = Some(3);
    d.incident_reference = Some("r".repeat(101));
    assert_eq!(fields(create(d).await), ["incident_reference"]);
    assert_eq!(articles(&h.store).await, 0);
    assert_eq!(kb_audit(&h.store).await, 0);

    // An edit with bad input changes nothing either.
    let id = create(draft("Bon titre", "", "Bonne résolution"))
        .await
        .unwrap();
    assert!(matches!(
        vigie_kb::update(&h.store, &user.actor, None, id, &draft("", "", "x")).await,
        Err(KbError::Invalid(_))
    ));
    assert_eq!(
        vigie_kb::get(&h.store, id).await.unwrap().unwrap().title,
        "Bon titre"
    );
    assert_eq!(kb_audit(&h.store).await, 1);

    // Search text: empty, too long, no word.
    let none = Filters::default();
    for q in ["", "   ", "?!… —"] {
        match vigie_kb::search(&h.store, q, &none, 10).await {
            Err(KbError::Invalid(p)) => assert_eq!(p[0].field, "q", "{q:?}"),
            other => panic!("{q:?}: {other:?}"),
        }
    }
    assert!(matches!(
        vigie_kb::search(&h.store, &"a".repeat(201), &none, 10).await,
        Err(KbError::Invalid(_))
    ));
    // Query syntax of either backend is only text here.
    for q in [
        "\"bon\" OR titre*",
        "bon & !titre | (x)",
        "titre:* NEAR(bon)",
        "'; DROP TABLE kb_articles; --",
    ] {
        vigie_kb::search(&h.store, q, &none, 10)
            .await
            .unwrap_or_else(|e| panic!("{q:?}: {e}"));
    }
    assert_eq!(
        ids(&vigie_kb::search(&h.store, "\"bon\" titre*", &none, 10)
            .await
            .unwrap()),
        [id]
    );
    assert_eq!(articles(&h.store).await, 1);
}
