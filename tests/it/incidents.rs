//! Incidents in the real hub: the routes are mounted (API before the console's catch-all), the
//! attachments land under the configured data directory, the board gets the incident's alert,
//! and the console's pages answer the logged-in operator.

use serde_json::json;

use crate::support::{Browser, Env};

#[tokio::test]
async fn an_incident_is_opened_attached_and_shown_by_the_hub() {
    let env = Env::new().await;
    let op = env.token("op", "operator").await;
    let hub = env.serve().await;
    let body = json!({"domain": "network", "title": "Lien WAN coupé", "criticality": "red",
                      "detection": "phone"});
    let a = hub
        .post_json("/api/v1/incidents", Some(&op), &body.to_string())
        .await;
    assert_eq!(a.status, 201, "{}", a.body);
    let incident = a.json();
    let id = incident["id"].as_i64().expect("id");
    let reference = incident["reference"]
        .as_str()
        .expect("reference")
        .to_owned();
    assert!(reference.ends_with("/NET/1"), "{reference}");

    let a = hub
        .request(
            "POST",
            &format!("/api/v1/incidents/{id}/attachments?name=trace.txt"),
            Some(&op),
            Some("application/octet-stream"),
            b"ping: timeout\n",
        )
        .await;
    assert_eq!(a.status, 201, "{}", a.body);
    let dir = env
        .dir()
        .join("data")
        .join("attachments")
        .join(id.to_string());
    assert_eq!(
        std::fs::read_dir(&dir).map(|d| d.count()).unwrap_or(0),
        1,
        "{dir:?}"
    );

    let mut found = false;
    for _ in 0..50 {
        let a = hub.get("/api/v1/alerts?source=incidents", Some(&op)).await;
        if a.body.contains(&reference) {
            found = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(found, "the board alert of the opening");

    let mut browser = Browser::new(&hub);
    let login = browser.login("op", "a-long-enough-password").await;
    assert_eq!(login.status, 303, "{}", login.body);
    let page = browser.get(&format!("/incidents/{id}")).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("trace.txt"));
    let list = browser.get("/incidents").await;
    assert_eq!(list.status, 200);
    assert!(list.body.contains(&format!("/incidents/{id}\"")));
    hub.stop().await;
}

/// Issue 5's "done when": a closed incident turned into an article is found by a search for
/// words of its resolution, and the article is suggested to whoever opens a similar incident.
#[tokio::test]
async fn a_closed_incident_becomes_an_article_found_by_its_resolution() {
    let env = Env::new().await;
    let op = env.token("op", "operator").await;
    env.token("astreinte", "oncall").await;
    let hub = env.serve().await;
    let body = json!({"domain": "network", "title": "Tunnel IPsec vers l'agence tombé",
                      "description": "Plus de trafic vers Thiès depuis 8 h", "criticality": "red",
                      "detection": "phone"});
    let a = hub
        .post_json("/api/v1/incidents", Some(&op), &body.to_string())
        .await;
    assert_eq!(a.status, 201, "{}", a.body);
    let id = a.json()["id"].as_i64().expect("id");
    let step = |path: &str, body: serde_json::Value| {
        let path = format!("/api/v1/incidents/{id}/{path}");
        let hub = &hub;
        let op = op.clone();
        async move {
            let a = hub.post_json(&path, Some(&op), &body.to_string()).await;
            assert!(a.status < 300, "{path}: {} {}", a.status, a.body);
        }
    };
    step("qualify", json!({"category": "vpn", "criticality": "red"})).await;
    step("transfer", json!({"to": ["astreinte"]})).await;
    step(
        "resolve",
        json!({"text": "Renouvelé le certificat expiré de la passerelle puis redémarré le tunnel",
               "minutes": 45, "final": true}),
    )
    .await;
    step("close", json!({})).await;

    let mut browser = Browser::new(&hub);
    assert_eq!(
        browser.login("op", "a-long-enough-password").await.status,
        303
    );
    let form = browser.get(&format!("/kb/new?incident={id}")).await;
    assert_eq!(form.status, 200, "{}", form.body);
    assert!(
        form.body.contains("Renouvelé le certificat expiré"),
        "the resolution is prefilled: {}",
        form.body
    );
    assert!(form.body.contains("data-test=\"kb-from-incident\""));
    let id_text = id.to_string();
    let saved = browser
        .post(
            "/kb/new",
            &[
                ("title", "Tunnel IPsec vers l'agence tombé"),
                ("symptoms", "Plus de trafic vers Thiès depuis 8 h"),
                (
                    "resolution",
                    "Renouvelé le certificat expiré de la passerelle puis redémarré le tunnel",
                ),
                ("domain", "network"),
                ("tags", "vpn"),
                ("incident_id", &id_text),
            ],
        )
        .await;
    assert_eq!(saved.status, 303, "{}", saved.body);

    // Words of the resolution, without their accents.
    let found = hub
        .get("/api/v1/kb?q=certificat%20redemarre", Some(&op))
        .await;
    assert_eq!(found.status, 200, "{}", found.body);
    assert!(found.body.contains("Tunnel IPsec"), "{}", found.body);
    let article = browser
        .get(saved.header("location").expect("location"))
        .await;
    assert!(
        article.body.contains(&format!("/incidents/{id}")),
        "linked to its incident"
    );

    // Someone opens a similar incident: the article is suggested.
    let body = json!({"domain": "network", "title": "Tunnel IPsec de Thiès en panne",
                      "criticality": "orange", "detection": "visual"});
    let a = hub
        .post_json("/api/v1/incidents", Some(&op), &body.to_string())
        .await;
    let second = a.json()["id"].as_i64().expect("id");
    let page = browser.get(&format!("/incidents/{second}")).await;
    assert!(
        page.body.contains("Tunnel IPsec vers l&#x27;agence tombé")
            || page.body.contains("Tunnel IPsec vers l'agence tombé"),
        "the article is suggested: {}",
        page.body
    );
    hub.stop().await;
}
