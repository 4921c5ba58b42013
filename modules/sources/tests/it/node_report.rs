//! The node report over the API: an Orion source served over TDS by pysqlbridge (the mssql
//! connector's test bridge) answers `GET /api/v1/sources/{name}/node`; a WhatsUp Gold source
//! refuses the question with a 422 that names why.

use actix_web::{App, test, web};
use serde_json::{Value, json};

use crate::bridge::Bridge;
use crate::{def, hub};

fn fixture(name: &str) -> String {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../connectors/mssql/tests/fixtures/orion")
        .join(name)
        .to_string_lossy()
        .into_owned()
}

#[tokio::test]
async fn the_node_route_asks_orion_and_other_kinds_refuse_it() {
    let h = hub().await;
    let bridge = Bridge::start(json!([
        {"name": "Nodes", "csv": fixture("Nodes.csv")},
        {"name": "CPULoad", "csv": fixture("CPULoad.csv")},
    ]));
    let url = bridge.url("SolarWindsOrion");
    // Only the nodes are polled: the bridge serves no SysLog, Traps or alerts.
    let only_nodes = json!({"syslog": false, "traps": false, "alerts": false});
    vigie_sources::repo::save_settings(&h.store, "orion", &only_nodes, None)
        .await
        .unwrap();
    let sources = vigie_sources::Sources::start(
        h.store.clone(),
        std::sync::Arc::new(h.pipeline.clone()),
        vec![
            def("orion", "solarwinds", &url),
            def("wug", "whatsup", &url),
        ],
    )
    .await;
    for login in ["op", "oc"] {
        let role = if login == "op" {
            vigie_core::role::Role::Operator
        } else {
            vigie_core::role::Role::Oncall
        };
        vigie_auth::create_user(
            &h.store,
            vigie_auth::NewUser {
                login: login.into(),
                role,
                email: None,
                display_name: None,
                password: None,
                must_change_password: false,
            },
        )
        .await
        .unwrap();
    }
    let op = vigie_auth::create_token(&h.store, "op", None)
        .await
        .unwrap();
    let oncall = vigie_auth::create_token(&h.store, "oc", None)
        .await
        .unwrap();
    let app = test::init_service(
        App::new()
            .app_data(web::Data::new(h.store.clone()))
            .app_data(web::Data::new(sources.clone()))
            .configure(vigie_sources::configure),
    )
    .await;
    let get = |uri: &str, token: &str| {
        test::TestRequest::get()
            .uri(uri)
            .insert_header(("Authorization", format!("Bearer {token}")))
            .to_request()
    };

    let range = "from=2025-01-14T07:30:00Z&to=2025-01-14T10:00:00Z";
    let resp = test::call_service(
        &app,
        get(
            &format!("/api/v1/sources/orion/node?resource=rtr-paris&{range}"),
            &op,
        ),
    )
    .await;
    assert_eq!(resp.status(), 200);
    let report: Value = test::read_body_json(resp).await;
    assert_eq!(report["answer"], "node_report", "{report}");
    assert_eq!(report["node_id"], 43);
    assert_eq!(report["status"], "up");
    assert_eq!(report["status_code"], 1);
    assert_eq!(report["cpu_load"], 37.0);
    assert_eq!(report["percent_memory_used"], 61.0);
    let history = report["history"].as_array().unwrap();
    assert_eq!(history.len(), 2, "{report}");
    assert_eq!(history[0]["at"], "2025-01-14T08:00:00Z");
    assert_eq!(history[0]["avg_load"], 35.0);
    assert_eq!(history[1]["avg_load"], 37.0);
    assert_eq!(history[1]["avg_memory_used"], 5.24e9);

    // A node Orion does not know: 422, named.
    let resp = test::call_service(
        &app,
        get(
            &format!("/api/v1/sources/orion/node?resource=nowhere&{range}"),
            &op,
        ),
    )
    .await;
    assert_eq!(resp.status(), 422);
    let body: Value = test::read_body_json(resp).await;
    assert!(body.to_string().contains("no node `nowhere`"), "{body}");

    // WhatsUp Gold does not answer node reports: 422 with the reason.
    let resp = test::call_service(
        &app,
        get(
            &format!("/api/v1/sources/wug/node?resource=core-sw1&{range}"),
            &op,
        ),
    )
    .await;
    assert_eq!(resp.status(), 422);
    let body: Value = test::read_body_json(resp).await;
    assert!(
        body.to_string().contains("comes from SolarWinds Orion"),
        "{body}"
    );

    // The resource is required; the on-call role lacks the statistics permission; an unknown
    // source is a 404.
    let resp = test::call_service(&app, get("/api/v1/sources/orion/node", &op)).await;
    assert_eq!(resp.status(), 400);
    let resp = test::call_service(
        &app,
        get("/api/v1/sources/orion/node?resource=rtr-paris", &oncall),
    )
    .await;
    assert_eq!(resp.status(), 403);
    let resp = test::call_service(
        &app,
        get("/api/v1/sources/nobody/node?resource=rtr-paris", &op),
    )
    .await;
    assert_eq!(resp.status(), 404);
    sources.stop(std::time::Duration::from_secs(2)).await;
}
