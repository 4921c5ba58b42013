//! GLPI and ManageEngine rows become qualified alerts, updated and cleared with their source.

use serde_json::json;
use vigie_poll::Outcome;

use crate::support::{GLPI_SCHEMA, MANAGEENGINE_SCHEMA, MyDb, ticket_insert};
use crate::{alert, alerts, def, hub, poller};

#[tokio::test]
async fn glpi_tickets_become_alerts_that_follow_the_ticket() {
    let h = hub().await;
    let db = MyDb::create("glpi").await;
    db.exec(GLPI_SCHEMA).await;
    db.exec(&format!(
        "{};\n{};\n\
         INSERT INTO glpi_computers (id,entities_id,name,serial,otherserial,states_id,locations_id,is_deleted,is_dynamic,date_mod) \
           VALUES (88,0,'PC-COMPTA-04','5CG1234XYZ','INV-00412',1,5,0,1,'2025-01-10 18:00:00')",
        ticket_insert(4521, "VPN down for branch office", 2, 4, 3, 4, "2025-01-14 09:40:05"),
        ticket_insert(4522, "Core switch down", 1, 5, 5, 6, "2025-01-14 09:41:00"),
    ))
    .await;
    let d = def("glpi-prod", "glpi", &db.url);
    let mut p = poller(
        &h.store,
        &h.pipeline,
        &d,
        json!({"base_url": "https://glpi.example.org"}),
    );
    let outcome = p.cycle().await;
    assert!(
        matches!(
            outcome,
            Outcome::Committed {
                records: 2,
                effective: 2,
                ..
            }
        ),
        "{outcome:?}"
    );

    let vpn = alert(&h.store, "glpi-ticket-4521").await;
    assert_eq!(vpn.source, "glpi-prod");
    assert_eq!(vpn.domain, "helpdesk");
    assert_eq!(vpn.severity, 1);
    assert_eq!(vpn.state, "new");
    assert_eq!(
        vpn.attributes.0["url"],
        json!("https://glpi.example.org/front/ticket.form.php?id=4521")
    );
    assert_eq!(alert(&h.store, "glpi-ticket-4522").await.severity, 2);
    // Computers are equipment.
    let equipment = vigie_sources::repo::list_equipment(&h.store, Some("glpi-prod"), false)
        .await
        .unwrap();
    assert_eq!(equipment.len(), 1);
    assert_eq!(equipment[0].name, "PC-COMPTA-04");
    assert_eq!(equipment[0].kind, "computer");

    // The ticket's priority goes up: the same alert, at its new level, counted once more.
    db.exec("UPDATE glpi_tickets SET urgency = 5, priority = 5, date_mod = '2025-01-14 10:00:00' WHERE id = 4521").await;
    p.cycle().await;
    let vpn2 = alert(&h.store, "glpi-ticket-4521").await;
    assert_eq!(vpn2.id, vpn.id);
    assert_eq!(vpn2.severity, 2);
    assert!(vpn2.message.contains("very high"), "{}", vpn2.message);

    // Solved: cleared.
    db.exec("UPDATE glpi_tickets SET status = 5, solvedate = '2025-01-14 11:00:00', date_mod = '2025-01-14 11:00:00' WHERE id = 4521").await;
    p.cycle().await;
    let solved = alert(&h.store, "glpi-ticket-4521").await;
    assert_eq!(solved.state, "cleared");
    assert!(solved.cleared_at.is_some());

    // Reopened by the requester: raised again.
    db.exec("UPDATE glpi_tickets SET status = 2, date_mod = '2025-01-14 12:00:00' WHERE id = 4521")
        .await;
    p.cycle().await;
    let reopened = alert(&h.store, "glpi-ticket-4521").await;
    assert_eq!(reopened.id, vpn.id);
    assert_eq!(reopened.state, "new");
    assert_eq!(reopened.reopen_count, 1);

    // Closed, then put in the trash: stays cleared.
    db.exec("UPDATE glpi_tickets SET status = 6, date_mod = '2025-01-14 13:00:00' WHERE id = 4521")
        .await;
    p.cycle().await;
    assert_eq!(alert(&h.store, "glpi-ticket-4521").await.state, "cleared");
    assert_eq!(alerts(&h.store).await.len(), 2, "one alert per ticket");
    db.drop_db().await;
}

#[tokio::test]
async fn manageengine_alerts_are_qualified_and_cleared() {
    let h = hub().await;
    let db = MyDb::create("me").await;
    db.exec(MANAGEENGINE_SCHEMA).await;
    let t0: i64 = 1_736_845_320_000;
    db.exec(&format!(
        "INSERT INTO AM_ManagedObject (RESOURCEID,RESOURCENAME,TYPE,DISPLAYNAME,DESCRIPTION) VALUES \
         (10000342,'srv-db-02_MySQL_3306','MYSQL-DB-server','MySQL prod',''),(10000500,'Payments','HAI','Payments','');\n\
         INSERT INTO Alert (ID,SOURCE,CATEGORY,SEVERITY,MMESSAGE,CREATETIME,MODTIME) VALUES \
         (20222737,'10000342','3001',1,'MySQL prod is down. Connection refused',{t0},{t0})"
    ))
    .await;
    let d = def("me-prod", "manageengine", &db.url);
    let mut p = poller(&h.store, &h.pipeline, &d, json!({}));
    assert!(p.cycle().await.is_success());
    let down = alert(&h.store, "me-10000342-3001").await;
    assert_eq!(down.resource, "MySQL prod");
    assert_eq!(down.severity, 2);
    assert_eq!(down.source_severity, Some(1));
    assert_eq!(down.domain, "applications");
    let monitors = vigie_sources::repo::list_equipment(&h.store, Some("me-prod"), false)
        .await
        .unwrap();
    assert_eq!(monitors.len(), 2);

    // Severity drops to warning, then clear.
    db.exec(&format!("UPDATE Alert SET SEVERITY = 4, MMESSAGE = 'MySQL prod slow', MODTIME = {} WHERE ID = 20222737", t0 + 60_000)).await;
    p.cycle().await;
    let warning = alert(&h.store, "me-10000342-3001").await;
    assert_eq!(
        (warning.id, warning.severity, warning.state.as_str()),
        (down.id, 1, "new")
    );
    db.exec(&format!("UPDATE Alert SET SEVERITY = 5, MMESSAGE = 'MySQL prod is up', MODTIME = {} WHERE ID = 20222737", t0 + 120_000)).await;
    p.cycle().await;
    assert_eq!(alert(&h.store, "me-10000342-3001").await.state, "cleared");

    // A monitor deleted in Applications Manager is marked removed at the next full listing.
    db.exec("DELETE FROM AM_ManagedObject WHERE RESOURCEID = 10000500")
        .await;
    let equipment = vigie_poll::EquipmentBatch {
        items: Vec::new(),
        complete_kinds: vec!["service".into()],
    };
    vigie_sources::repo::store_equipment(&h.store, "me-prod", &equipment)
        .await
        .unwrap();
    let all = vigie_sources::repo::list_equipment(&h.store, Some("me-prod"), true)
        .await
        .unwrap();
    let payments = all.iter().find(|e| e.name == "Payments").unwrap();
    assert!(payments.removed);
    db.drop_db().await;
}

#[tokio::test]
async fn the_sources_api_lists_health_and_asks_on_demand() {
    use actix_web::{App, test, web};
    let h = hub().await;
    let db = MyDb::create("me").await;
    db.exec(MANAGEENGINE_SCHEMA).await;
    db.exec(
        "INSERT INTO AM_ManagedObject (RESOURCEID,RESOURCENAME,TYPE,DISPLAYNAME) VALUES (10000342,'db','MYSQL-DB-server','MySQL prod');\n\
         INSERT INTO AM_MO_DowntimeData (RESID,DOWNTIME,UPTIME,TYPE) VALUES (10000342,1736845320000,1736848920000,1)",
    )
    .await;
    let good = def("me-prod", "manageengine", &db.url);
    let mut bad = def("custom", "sql", &db.url);
    bad.kind = "sql".into();
    // A stored query that is not a SELECT: the source is kept, misconfigured, with the reason.
    vigie_sources::repo::save_settings(
        &h.store,
        "custom",
        &json!({"query": "DELETE FROM Alert WHERE ID > :watermark ORDER BY ID", "watermark": {"id_column": "ID"}, "mapping": {"resource": "SOURCE", "message": "MMESSAGE"}}),
        None,
    )
    .await
    .unwrap();
    let sources = vigie_sources::Sources::start(
        h.store.clone(),
        std::sync::Arc::new(h.pipeline.clone()),
        vec![good, bad],
    )
    .await;
    let user = vigie_auth::create_user(
        &h.store,
        vigie_auth::NewUser {
            login: "op".into(),
            role: vigie_core::role::Role::Operator,
            email: None,
            display_name: None,
            password: None,
            must_change_password: false,
        },
    )
    .await
    .unwrap();
    assert!(user > 0);
    let token = vigie_auth::create_token(&h.store, "op", None)
        .await
        .unwrap();
    let app = test::init_service(
        App::new()
            .app_data(web::Data::new(h.store.clone()))
            .app_data(web::Data::new(sources.clone()))
            .configure(vigie_sources::configure),
    )
    .await;
    // Wait for the first poll of the good source.
    for _ in 0..50 {
        if sources
            .health()
            .iter()
            .any(|s| s.source == "me-prod" && s.last_success.is_some())
        {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let req = test::TestRequest::get()
        .uri("/api/v1/sources")
        .insert_header(("Authorization", format!("Bearer {token}")))
        .to_request();
    let lines: serde_json::Value = test::call_and_read_body_json(&app, req).await;
    let lines = lines.as_array().unwrap();
    assert_eq!(lines.len(), 2);
    let custom = lines.iter().find(|l| l["name"] == "custom").unwrap();
    assert_eq!(custom["state"], "misconfigured");
    assert!(
        custom["last_error"]
            .as_str()
            .unwrap()
            .contains("must be a SELECT"),
        "{custom}"
    );
    let me = lines.iter().find(|l| l["name"] == "me-prod").unwrap();
    assert_eq!(me["state"], "ok", "{me}");
    assert!(me["last_success"].is_string());
    assert!(me["lag"].as_i64().unwrap() <= 5);

    let req = test::TestRequest::get()
        .uri("/api/v1/sources/me-prod/unavailability?resource=MySQL%20prod&from=2025-01-14T00:00:00Z&to=2025-01-15T00:00:00Z")
        .insert_header(("Authorization", format!("Bearer {token}")))
        .to_request();
    let answer: serde_json::Value = test::call_and_read_body_json(&app, req).await;
    assert_eq!(answer["answer"], "unavailability");
    assert_eq!(answer["periods"].as_array().unwrap().len(), 1);
    assert_eq!(answer["periods"][0]["start"], "2025-01-14T09:02:00Z");

    let req = test::TestRequest::get()
        .uri("/api/v1/sources/me-prod/statistics?resource=MySQL%20prod&from=2025-01-14T00:00:00Z&to=2025-01-15T00:00:00Z")
        .insert_header(("Authorization", format!("Bearer {token}")))
        .to_request();
    let stats: serde_json::Value = test::call_and_read_body_json(&app, req).await;
    assert_eq!(stats["downtime_seconds"], 3600);
    assert_eq!(stats["outages"], 1);

    // Without a token: 401.
    let req = test::TestRequest::get().uri("/api/v1/sources").to_request();
    assert_eq!(test::call_service(&app, req).await.status(), 401);

    // The administrator changes a source's settings: checked, stored, the poller restarted.
    vigie_auth::create_user(
        &h.store,
        vigie_auth::NewUser {
            login: "adm".into(),
            role: vigie_core::role::Role::Admin,
            email: None,
            display_name: None,
            password: None,
            must_change_password: false,
        },
    )
    .await
    .unwrap();
    let admin = vigie_auth::create_token(&h.store, "adm", None)
        .await
        .unwrap();
    let put = |body: serde_json::Value, bearer: &str| {
        test::TestRequest::put()
            .uri("/api/v1/sources/me-prod/settings")
            .insert_header(("Authorization", format!("Bearer {bearer}")))
            .set_json(body)
            .to_request()
    };
    let resp = test::call_service(&app, put(json!({"severity": {"1": "critical"}}), &admin)).await;
    assert_eq!(resp.status(), 400);
    let answer: serde_json::Value = test::read_body_json(resp).await;
    assert!(
        answer["problems"][0]["problem"]
            .as_str()
            .unwrap()
            .contains("unknown field `severity`"),
        "{answer}"
    );
    let resp = test::call_service(&app, put(json!({"domain": "systems"}), &token)).await;
    assert_eq!(resp.status(), 403, "operators do not administer sources");
    let resp = test::call_service(
        &app,
        put(
            json!({"domain": "systems", "poll": {"timeout_seconds": 10}}),
            &admin,
        ),
    )
    .await;
    assert_eq!(resp.status(), 204);
    assert_eq!(
        vigie_sources::repo::load_settings(&h.store, "me-prod")
            .await
            .unwrap(),
        json!({"domain": "systems", "poll": {"timeout_seconds": 10}})
    );
    db.exec("INSERT INTO Alert (ID,SOURCE,CATEGORY,SEVERITY,MMESSAGE,CREATETIME,MODTIME) VALUES (1,'10000342','3001',1,'down',1736845320000,1736845320000)").await;
    let mut found = None;
    for _ in 0..50 {
        if let Some(a) = crate::alerts(&h.store)
            .await
            .into_iter()
            .find(|a| a.source == "me-prod")
        {
            found = Some(a);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(
        found.expect("polled with the new settings").domain,
        "systems"
    );
    sources.stop(std::time::Duration::from_secs(2)).await;
    db.drop_db().await;
}
