//! The incidents module end to end on the backend `VIGIE_TEST_DATABASE` selects: numbering
//! under concurrency, the state machine, each role's rights on each step over the API, mails in
//! the outbox, the board alerts through the real pipeline, attachments, and the console pages.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod export;
mod pages;

use std::path::PathBuf;
use std::sync::Arc;

use actix_web::dev::{Service, ServiceResponse};
use actix_web::{App, test, web};
use serde_json::{Value, json};
use vigie_alerts::pipeline::{Pipeline, PipelineSettings};
use vigie_alerts::repo::{self, AlertFilter};
use vigie_alerts::rules::RuleSet;
use vigie_auth::NewUser;
use vigie_core::audit::Actor;
use vigie_core::domain::Domains;
use vigie_core::role::{PermissionSet, Role};
use vigie_core::store::Store;
use vigie_core::testing::TestDb;
use vigie_incidents::IncidentsSettings;
use vigie_incidents::workflow::{self, Doer, Env, NewIncident};

pub(crate) struct Hub {
    pub(crate) _db: TestDb,
    pub(crate) store: Store,
    pub(crate) pipeline: Pipeline,
    /// Token per login.
    pub(crate) tokens: std::collections::HashMap<String, String>,
    pub(crate) ids: std::collections::HashMap<String, i64>,
    pub(crate) settings: IncidentsSettings,
}

pub(crate) const ROLES: [Role; 5] = [
    Role::Operator,
    Role::Manager,
    Role::Oncall,
    Role::Admin,
    Role::User,
];

impl Hub {
    pub(crate) async fn new() -> Hub {
        let db = TestDb::create().await.expect("test database");
        let store = db.store().await.expect("store");
        let rules = RuleSet::shipped(&Domains::default()).expect("rules");
        let (pipeline, writer) =
            Pipeline::new(store.clone(), PipelineSettings::default(), Arc::new(rules));
        tokio::spawn(writer.run());
        let settings = IncidentsSettings::new(db.dir.join("data"));
        let mut hub = Hub {
            _db: db,
            store,
            pipeline,
            tokens: Default::default(),
            ids: Default::default(),
            settings,
        };
        for role in ROLES {
            hub.user(role.as_str(), role).await;
        }
        hub.user("oncall2", Role::Oncall).await;
        hub.user("manager2", Role::Manager).await;
        // The manager heads the network domain, manager2 the systems domain.
        for (login, domain) in [("manager", "network"), ("manager2", "systems")] {
            let mut tx = hub.store.begin().await.unwrap();
            vigie_auth::contacts::set_domains(&mut tx, hub.ids[login], &[domain.to_owned()])
                .await
                .unwrap();
            tx.commit().await.unwrap();
        }
        hub
    }

    async fn user(&mut self, login: &str, role: Role) {
        let id = vigie_auth::create_user(
            &self.store,
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
        .expect("user");
        let token = vigie_auth::create_token(&self.store, login, None)
            .await
            .expect("token");
        self.tokens.insert(login.into(), token);
        self.ids.insert(login.into(), id);
    }

    pub(crate) fn doer(&self, login: &str, role: Role) -> Doer {
        Doer {
            actor: Actor {
                user_id: self.ids[login],
                login: login.into(),
                role,
            },
            permissions: PermissionSet::of_role(role),
            ip: None,
        }
    }

    pub(crate) fn data_dir(&self) -> PathBuf {
        self.settings.data_dir.clone()
    }
}

async fn app(
    h: &Hub,
    settings: IncidentsSettings,
) -> impl Service<actix_http::Request, Response = ServiceResponse, Error = actix_web::Error> {
    test::init_service(
        App::new()
            .app_data(web::Data::new(h.store.clone()))
            .app_data(web::Data::new(h.pipeline.clone()))
            .app_data(web::Data::new(settings))
            .configure(vigie_incidents::api::configure),
    )
    .await
}

pub(crate) struct Answer {
    status: u16,
    body: Value,
    headers: actix_web::http::header::HeaderMap,
    bytes: Vec<u8>,
}

async fn call<S>(
    app: &S,
    token: Option<&str>,
    method: &str,
    uri: &str,
    body: Option<Value>,
) -> Answer
where
    S: Service<actix_http::Request, Response = ServiceResponse, Error = actix_web::Error>,
{
    let mut req = match method {
        "GET" => test::TestRequest::get(),
        "DELETE" => test::TestRequest::delete(),
        "PATCH" => test::TestRequest::patch(),
        _ => test::TestRequest::post(),
    }
    .uri(uri);
    if let Some(t) = token {
        req = req.insert_header(("Authorization", format!("Bearer {t}")));
    }
    if let Some(b) = body {
        req = req
            .insert_header(("Content-Type", "application/json"))
            .set_payload(b.to_string());
    }
    raw(app, req).await
}

async fn raw<S>(app: &S, req: test::TestRequest) -> Answer
where
    S: Service<actix_http::Request, Response = ServiceResponse, Error = actix_web::Error>,
{
    let resp = test::call_service(app, req.to_request()).await;
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let bytes = test::read_body(resp).await.to_vec();
    Answer {
        status,
        body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        headers,
        bytes,
    }
}

fn new_incident(domain: &str) -> Value {
    json!({"domain": domain, "title": "Lien WAN coupé à Dakar", "criticality": "red",
           "detection": "phone", "description": "Plus de trafic depuis 10 h.", "category": "network"})
}

/// Opens an incident as the operator and walks it to `state`; returns its id.
async fn incident_in<S>(app: &S, h: &Hub, domain: &str, state: &str) -> i64
where
    S: Service<actix_http::Request, Response = ServiceResponse, Error = actix_web::Error>,
{
    let op = Some(h.tokens["operator"].as_str());
    let a = call(
        app,
        op,
        "POST",
        "/api/v1/incidents",
        Some(new_incident(domain)),
    )
    .await;
    assert_eq!(a.status, 201, "{:?}", a.body);
    let id = a.body["id"].as_i64().unwrap();
    let steps: &[(&str, Value)] = match state {
        "created" => &[],
        "qualified" => &[("qualify", json!({"category": "wan", "criticality": "red"}))],
        "transferred" => &[
            ("qualify", json!({"category": "wan", "criticality": "red"})),
            ("transfer", json!({"to": ["oncall"]})),
        ],
        "resolved" => &[
            ("qualify", json!({"category": "wan", "criticality": "red"})),
            ("transfer", json!({"to": ["oncall"]})),
            (
                "resolve",
                json!({"text": "Routeur redémarré", "minutes": 15, "final": true}),
            ),
        ],
        _ => panic!("state {state}"),
    };
    for (step, body) in steps {
        let a = call(
            app,
            op,
            "POST",
            &format!("/api/v1/incidents/{id}/{step}"),
            Some(body.clone()),
        )
        .await;
        assert_eq!(a.status, 200, "{step}: {:?}", a.body);
    }
    id
}

async fn count(store: &Store, sql: &str) -> i64 {
    vigie_core::on_pool!(store, pool => sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(sql.to_owned()))
        .fetch_one(pool).await)
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn references_count_per_year_and_domain_without_gaps_under_concurrency() {
    let h = Hub::new().await;
    let domains = Domains::default();
    let mut tasks = tokio::task::JoinSet::new();
    for n in 0..40 {
        let store = h.store.clone();
        let domains = domains.clone();
        let doer = h.doer("operator", Role::Operator);
        let data = h.data_dir();
        tasks.spawn(async move {
            let env = Env {
                store: &store,
                domains: &domains,
                base_url: "http://hub",
                data_dir: &data,
            };
            let domain = if n % 3 == 0 { "systems" } else { "network" };
            let new = NewIncident {
                domain: domain.into(),
                title: format!("incident {n}"),
                criticality: "orange".into(),
                detection: "visual".into(),
                ..NewIncident::default()
            };
            workflow::open(&env, &doer, &new).await.map(|d| d.incident)
        });
    }
    let mut net = Vec::new();
    let mut sys = Vec::new();
    while let Some(r) = tasks.join_next().await {
        let i = r.unwrap().expect("every concurrent opening succeeds");
        let year = i.year;
        match i.domain.as_str() {
            "network" => {
                assert_eq!(i.reference, format!("{year}/NET/{}", i.number));
                net.push(i.number);
            }
            _ => {
                assert_eq!(i.reference, format!("{year}/SYS/{}", i.number));
                sys.push(i.number);
            }
        }
    }
    net.sort_unstable();
    sys.sort_unstable();
    assert_eq!(net, (1..=26).collect::<Vec<_>>());
    assert_eq!(sys, (1..=14).collect::<Vec<_>>());
    // A refused opening (unknown alert) gives its number back.
    let env = Env {
        store: &h.store,
        domains: &domains,
        base_url: "http://hub",
        data_dir: &h.data_dir(),
    };
    let bad = NewIncident {
        domain: "systems".into(),
        title: "x".into(),
        criticality: "green".into(),
        detection: "alert".into(),
        alert_id: Some(999_999),
        ..NewIncident::default()
    };
    let doer = h.doer("operator", Role::Operator);
    assert!(workflow::open(&env, &doer, &bad).await.is_err());
    let good = NewIncident {
        alert_id: None,
        ..bad
    };
    let i = workflow::open(&env, &doer, &good).await.unwrap().incident;
    assert_eq!(i.number, 15);
}

#[tokio::test]
async fn the_state_machine_allows_its_steps_and_refuses_the_others() {
    let h = Hub::new().await;
    let app = app(&h, h.settings.clone()).await;
    let op = Some(h.tokens["operator"].as_str());
    let id = incident_in(&app, &h, "network", "created").await;
    let url = |s: &str| format!("/api/v1/incidents/{id}/{s}");
    let resolve = json!({"text": "fixed", "minutes": 5, "final": true});
    let partial = json!({"text": "looking", "minutes": 5, "final": false});
    let qualify = json!({"category": "wan", "criticality": "orange"});
    let state = |a: &Answer| a.body["state"].as_str().unwrap_or_default().to_owned();

    // created: no transfer, resolve or close yet.
    for (step, body) in [
        ("transfer", Some(json!({"to": ["oncall"]}))),
        ("resolve", Some(resolve.clone())),
        ("close", None),
    ] {
        let a = call(&app, op, "POST", &url(step), body).await;
        assert_eq!(a.status, 409, "{step} from created: {:?}", a.body);
        assert_eq!(state(&a), "created");
        assert_eq!(a.body["step"], step);
    }
    let a = call(&app, op, "POST", &url("qualify"), Some(qualify.clone())).await;
    assert_eq!((a.status, state(&a)), (200, "qualified".into()));
    assert!(a.body["time_to_acknowledge_secs"].is_i64());
    assert!(a.body["time_to_resolve_secs"].is_null());
    let a = call(&app, op, "POST", &url("resolve"), Some(resolve.clone())).await;
    assert_eq!((a.status, state(&a)), (409, "qualified".into()));
    let a = call(
        &app,
        op,
        "POST",
        &url("transfer"),
        Some(json!({"to": ["oncall", "oncall2"]})),
    )
    .await;
    assert_eq!((a.status, state(&a)), (200, "transferred".into()));
    assert_eq!(a.body["people"].as_array().unwrap().len(), 2);
    let a = call(&app, op, "POST", &url("close"), None).await;
    assert_eq!((a.status, state(&a)), (409, "transferred".into()));
    let a = call(&app, op, "POST", &url("resolve"), Some(partial.clone())).await;
    assert_eq!((a.status, state(&a)), (200, "in_progress".into()));
    let a = call(&app, op, "POST", &url("resolve"), Some(resolve.clone())).await;
    assert_eq!((a.status, state(&a)), (200, "resolved".into()));
    assert!(a.body["time_to_resolve_secs"].is_i64());
    assert_eq!(a.body["minutes_spent"], 10);
    let a = call(&app, op, "POST", &url("resolve"), Some(resolve.clone())).await;
    assert_eq!((a.status, state(&a)), (409, "resolved".into()));
    // resolved ⇄ in progress.
    let a = call(&app, op, "POST", &url("resolve"), Some(partial.clone())).await;
    assert_eq!((a.status, state(&a)), (200, "in_progress".into()));
    assert!(a.body["time_to_resolve_secs"].is_null());
    let a = call(&app, op, "POST", &url("resolve"), Some(resolve.clone())).await;
    assert_eq!((a.status, state(&a)), (200, "resolved".into()));
    let a = call(&app, op, "POST", &url("qualify"), Some(qualify.clone())).await;
    assert_eq!((a.status, state(&a)), (409, "resolved".into()));
    let a = call(&app, op, "POST", &url("close"), None).await;
    assert_eq!((a.status, state(&a)), (200, "closed".into()));
    assert!(a.body["closed_at"].is_string());
    for (step, body) in [
        ("qualify", Some(qualify.clone())),
        ("transfer", Some(json!({"to": ["oncall"]}))),
        ("resolve", Some(partial.clone())),
        ("close", None),
    ] {
        let before = count(
            &h.store,
            &format!("SELECT COUNT(*) FROM incident_events WHERE incident_id = {id}"),
        )
        .await;
        let a = call(&app, op, "POST", &url(step), body).await;
        assert_eq!((a.status, state(&a)), (409, "closed".into()), "{step}");
        let after = count(
            &h.store,
            &format!("SELECT COUNT(*) FROM incident_events WHERE incident_id = {id}"),
        )
        .await;
        assert_eq!(before, after, "a refused step writes nothing");
    }
    let a = call(
        &app,
        op,
        "PATCH",
        &format!("/api/v1/incidents/{id}"),
        Some(json!({"title": "x"})),
    )
    .await;
    assert_eq!(a.status, 409);
    let a = call(&app, op, "DELETE", &format!("/api/v1/incidents/{id}"), None).await;
    assert_eq!((a.status, state(&a)), (200, "deleted".into()));
    let a = call(&app, op, "DELETE", &format!("/api/v1/incidents/{id}"), None).await;
    assert_eq!((a.status, state(&a)), (409, "deleted".into()));
    // The timeline kept every step.
    let a = call(&app, op, "GET", &format!("/api/v1/incidents/{id}"), None).await;
    let kinds: Vec<&str> = a.body["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["kind"].as_str())
        .filter(|k| *k != "mail")
        .collect();
    assert_eq!(
        kinds,
        [
            "opened",
            "qualified",
            "transferred",
            "resolution",
            "resolution",
            "resolution",
            "resolution",
            "closed",
            "deleted"
        ]
    );
    // Deleted incidents leave the lists.
    let a = call(&app, op, "GET", "/api/v1/incidents", None).await;
    assert!(
        a.body["incidents"]
            .as_array()
            .unwrap()
            .iter()
            .all(|i| i["id"] != id)
    );
}

#[tokio::test]
async fn each_role_may_take_exactly_its_steps() {
    let h = Hub::new().await;
    let app = app(&h, h.settings.clone()).await;
    let mut failures = Vec::new();
    for role in ROLES {
        let login = role.as_str();
        let token = Some(h.tokens[login].as_str());
        let people = role != Role::Admin;
        let mut expect = |what: &str, got: u16, allowed: bool, ok: u16| {
            let want = if allowed { ok } else { 403 };
            if got != want {
                failures.push(format!("{login} {what}: {got} (expected {want})"));
            }
        };
        let a = call(
            &app,
            token,
            "POST",
            "/api/v1/incidents",
            Some(new_incident("network")),
        )
        .await;
        expect("open", a.status, people, 201);
        let a = call(&app, token, "GET", "/api/v1/incidents", None).await;
        expect("list", a.status, people, 200);
        let id = incident_in(&app, &h, "network", "created").await;
        let a = call(&app, token, "GET", &format!("/api/v1/incidents/{id}"), None).await;
        expect("show", a.status, people, 200);
        let a = call(
            &app,
            token,
            "PATCH",
            &format!("/api/v1/incidents/{id}"),
            Some(json!({"comments": "vu"})),
        )
        .await;
        expect("edit another's", a.status, role == Role::Operator, 200);
        let a = call(
            &app,
            token,
            "POST",
            &format!("/api/v1/incidents/{id}/qualify"),
            Some(json!({"category": "wan", "criticality": "red"})),
        )
        .await;
        expect("qualify", a.status, people, 200);
        let id = incident_in(&app, &h, "network", "qualified").await;
        let a = call(
            &app,
            token,
            "POST",
            &format!("/api/v1/incidents/{id}/transfer"),
            Some(json!({"to": ["oncall"]})),
        )
        .await;
        expect("transfer", a.status, role == Role::Operator, 200);
        let id = incident_in(&app, &h, "network", "transferred").await;
        let a = call(
            &app,
            token,
            "POST",
            &format!("/api/v1/incidents/{id}/resolve"),
            Some(json!({"text": "ok", "minutes": 1, "final": true})),
        )
        .await;
        expect(
            "resolve",
            a.status,
            matches!(role, Role::Operator | Role::Manager | Role::Oncall),
            200,
        );
        let id = incident_in(&app, &h, "network", "resolved").await;
        let a = call(
            &app,
            token,
            "POST",
            &format!("/api/v1/incidents/{id}/close"),
            None,
        )
        .await;
        expect("close", a.status, role == Role::Operator, 200);
        let a = call(
            &app,
            token,
            "DELETE",
            &format!("/api/v1/incidents/{id}"),
            None,
        )
        .await;
        expect("delete", a.status, role == Role::Operator, 200);
        // The opener edits their own incident.
        if people {
            let a = call(
                &app,
                token,
                "POST",
                "/api/v1/incidents",
                Some(new_incident("systems")),
            )
            .await;
            let own = a.body["id"].as_i64().unwrap();
            let a = call(
                &app,
                token,
                "PATCH",
                &format!("/api/v1/incidents/{own}"),
                Some(json!({"title": "Titre corrigé", "follow": true})),
            )
            .await;
            expect("edit own", a.status, true, 200);
            if a.status == 200 {
                assert_eq!(a.body["title"], "Titre corrigé");
                assert_eq!(a.body["follow"], true);
            }
        }
    }
    let a = call(&app, None, "GET", "/api/v1/incidents", None).await;
    if a.status != 401 {
        failures.push(format!("no token: {}", a.status));
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

#[tokio::test]
async fn bad_input_names_its_field_and_unknown_incidents_are_404() {
    let h = Hub::new().await;
    let app = app(&h, h.settings.clone()).await;
    let op = Some(h.tokens["operator"].as_str());
    let cases = [
        (
            json!({"domain": "mars", "title": "t", "criticality": "red", "detection": "visual"}),
            "domain",
        ),
        (
            json!({"domain": "network", "title": "", "criticality": "red", "detection": "visual"}),
            "title",
        ),
        (
            json!({"domain": "network", "title": "t", "criticality": "purple", "detection": "visual"}),
            "criticality",
        ),
        (
            json!({"domain": "network", "title": "t", "criticality": "red", "detection": "pigeon"}),
            "detection",
        ),
        (
            json!({"domain": "network", "title": "t", "criticality": "red", "detection": "visual", "followers": ["user"]}),
            "followers",
        ),
        (
            json!({"domain": "network", "title": "t", "criticality": "red", "detection": "visual", "colour": 1}),
            "colour",
        ),
        (
            json!({"domain": "network", "title": 3, "criticality": "red", "detection": "visual"}),
            "title",
        ),
    ];
    for (body, field) in cases {
        let a = call(&app, op, "POST", "/api/v1/incidents", Some(body)).await;
        assert_eq!(a.status, 400, "{field}: {:?}", a.body);
        assert_eq!(a.body["problems"][0]["field"], field, "{:?}", a.body);
    }
    assert_eq!(count(&h.store, "SELECT COUNT(*) FROM incidents").await, 0);
    assert_eq!(
        count(&h.store, "SELECT COUNT(*) FROM incident_counters").await,
        0
    );
    let id = incident_in(&app, &h, "network", "qualified").await;
    let a = call(
        &app,
        op,
        "POST",
        &format!("/api/v1/incidents/{id}/transfer"),
        Some(json!({"to": ["manager"]})),
    )
    .await;
    assert_eq!(
        (a.status, a.body["problems"][0]["field"].clone()),
        (400, json!("to"))
    );
    let a = call(
        &app,
        op,
        "POST",
        &format!("/api/v1/incidents/{id}/transfer"),
        Some(json!({"to": []})),
    )
    .await;
    assert_eq!(a.status, 400);
    let id2 = incident_in(&app, &h, "network", "transferred").await;
    let a = call(
        &app,
        op,
        "POST",
        &format!("/api/v1/incidents/{id2}/resolve"),
        Some(json!({"text": "", "minutes": 1})),
    )
    .await;
    assert_eq!(
        (a.status, a.body["problems"][0]["field"].clone()),
        (400, json!("text"))
    );
    let a = call(
        &app,
        op,
        "POST",
        &format!("/api/v1/incidents/{id2}/resolve"),
        Some(json!({"text": "x", "minutes": -3})),
    )
    .await;
    assert_eq!(
        (a.status, a.body["problems"][0]["field"].clone()),
        (400, json!("minutes"))
    );
    for (method, uri) in [
        ("GET", "/api/v1/incidents/424242"),
        ("POST", "/api/v1/incidents/424242/close"),
        ("DELETE", "/api/v1/incidents/424242"),
    ] {
        let a = call(&app, op, method, uri, None).await;
        assert_eq!(a.status, 404, "{method} {uri}");
    }
    let a = call(&app, op, "GET", "/api/v1/incidents?state=lost", None).await;
    assert_eq!(
        (a.status, a.body["problems"][0]["field"].clone()),
        (400, json!("state"))
    );
}

#[tokio::test]
async fn lists_follow_the_roles_and_filters_and_page() {
    let h = Hub::new().await;
    let app = app(&h, h.settings.clone()).await;
    let net = incident_in(&app, &h, "network", "transferred").await;
    let sys = incident_in(&app, &h, "systems", "created").await;
    let ids = |a: &Answer| -> Vec<i64> {
        a.body["incidents"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["id"].as_i64().unwrap())
            .collect()
    };
    let get = |login: &str, q: &str| {
        let token = h.tokens[login].clone();
        let uri = format!("/api/v1/incidents{q}");
        let app = &app;
        async move { call(app, Some(&token), "GET", &uri, None).await }
    };
    let all = get("operator", "").await;
    assert_eq!(ids(&all), [sys, net]);
    assert_eq!(all.body["durations"]["incidents"], 2);
    assert_eq!(
        all.body["durations"]["acknowledged"], 1,
        "the transferred one"
    );
    assert_eq!(all.body["durations"]["resolved"], 0);
    assert!(all.body["durations"]["mean_time_to_acknowledge_secs"].is_i64());
    assert_eq!(
        ids(&get("manager", "").await),
        [net],
        "a manager sees their domains'"
    );
    assert_eq!(ids(&get("manager2", "").await), [sys]);
    assert_eq!(ids(&get("oncall", "").await), [sys, net]);
    assert_eq!(
        ids(&get("oncall", "?view=mine").await),
        [net],
        "transferred to me"
    );
    assert_eq!(ids(&get("oncall2", "?view=mine").await), Vec::<i64>::new());
    assert_eq!(ids(&get("operator", "?state=created").await), [sys]);
    assert_eq!(ids(&get("operator", "?domain=network").await), [net]);
    assert_eq!(ids(&get("operator", "?q=dakar").await), [sys, net]);
    assert_eq!(
        ids(&get("operator", "?q=nothing-like-this").await),
        Vec::<i64>::new()
    );
    assert_eq!(
        ids(&get("operator", "?criticality=green").await),
        Vec::<i64>::new()
    );
    assert_eq!(
        ids(&get("operator", "?from=2000-01-01&to=2000-01-02").await),
        Vec::<i64>::new()
    );
    let a = get("operator", "?limit=1").await;
    assert_eq!((ids(&a), a.body["next"].as_i64()), (vec![sys], Some(sys)));
    let a = get("operator", &format!("?limit=1&before={sys}")).await;
    assert_eq!(ids(&a), [net]);
    // Everyone can open any incident read-only.
    let a = get("manager2", &format!("/{net}")).await;
    assert_eq!(
        (
            a.status,
            a.body["reference"].as_str().map(|r| r.contains("/NET/"))
        ),
        (200, Some(true))
    );
}

async fn outbox(store: &Store, kind: &str) -> Vec<(String, String, String)> {
    vigie_core::on_pool!(store, pool => sqlx::query_as::<_, (String, String, String)>(
        "SELECT recipient, subject, body_text FROM outbox WHERE kind = $1 ORDER BY id")
        .bind(kind)
        .fetch_all(pool).await)
    .unwrap()
}

#[tokio::test]
async fn mails_are_queued_with_each_step() {
    let h = Hub::new().await;
    let app = app(&h, h.settings.clone()).await;
    let user = Some(h.tokens["user"].as_str());
    let op = Some(h.tokens["operator"].as_str());
    let mut body = new_incident("network");
    body["followers"] = json!(["oncall2"]);
    body["follow"] = json!(true);
    let a = call(&app, user, "POST", "/api/v1/incidents", Some(body)).await;
    assert_eq!(a.status, 201, "{:?}", a.body);
    let id = a.body["id"].as_i64().unwrap();
    let reference = a.body["reference"].as_str().unwrap().to_owned();
    let to = |v: Vec<(String, String, String)>| v.into_iter().map(|m| m.0).collect::<Vec<_>>();
    let opened = outbox(&h.store, "incident.opened").await;
    assert_eq!(
        to(opened.clone()),
        ["oncall2@example.org", "manager@example.org"]
    );
    assert!(opened[0].1.contains(&reference), "{}", opened[0].1);
    assert!(
        opened[0].2.contains(&format!("/incidents/{id}")),
        "{}",
        opened[0].2
    );
    for step in [
        ("qualify", json!({"category": "wan", "criticality": "red"})),
        ("transfer", json!({"to": ["oncall"]})),
    ] {
        let a = call(
            &app,
            op,
            "POST",
            &format!("/api/v1/incidents/{id}/{}", step.0),
            Some(step.1),
        )
        .await;
        assert_eq!(a.status, 200);
    }
    assert_eq!(
        to(outbox(&h.store, "incident.transferred").await),
        ["oncall@example.org", "manager@example.org"]
    );
    let oncall = Some(h.tokens["oncall"].as_str());
    let a = call(
        &app,
        oncall,
        "POST",
        &format!("/api/v1/incidents/{id}/resolve"),
        Some(json!({"text": "Câble remplacé", "minutes": 30, "final": true})),
    )
    .await;
    assert_eq!(a.status, 200);
    let resolved = outbox(&h.store, "incident.resolved").await;
    assert_eq!(
        to(resolved.clone()),
        [
            "user@example.org",
            "oncall@example.org",
            "oncall2@example.org"
        ]
    );
    assert!(resolved[0].2.contains("Câble remplacé"));
    let a = call(
        &app,
        op,
        "POST",
        &format!("/api/v1/incidents/{id}/close"),
        None,
    )
    .await;
    assert_eq!(a.status, 200);
    assert_eq!(
        to(outbox(&h.store, "incident.closed").await),
        ["user@example.org"]
    );
    // Each mail is on the timeline.
    let a = call(&app, op, "GET", &format!("/api/v1/incidents/{id}"), None).await;
    let mails = a.body["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "mail")
        .count();
    assert_eq!(mails, 2 + 2 + 3 + 1);
    // Without follow, the opener is not mailed at resolution.
    let id = incident_in(&app, &h, "systems", "transferred").await;
    let a = call(
        &app,
        op,
        "POST",
        &format!("/api/v1/incidents/{id}/resolve"),
        Some(json!({"text": "ok", "minutes": 1, "final": true})),
    )
    .await;
    assert_eq!(a.status, 200);
    let resolved = to(outbox(&h.store, "incident.resolved").await);
    assert_eq!(resolved.len(), 4, "{resolved:?}");
    assert!(!resolved[3..].contains(&"operator@example.org".to_owned()));
}

async fn wait_alert(
    store: &Store,
    pred: impl Fn(&vigie_alerts::model::Alert) -> bool,
) -> Option<vigie_alerts::model::Alert> {
    for _ in 0..100 {
        let all = repo::list(
            store,
            &AlertFilter {
                limit: 1000,
                ..AlertFilter::default()
            },
        )
        .await
        .unwrap();
        if let Some(a) = all.into_iter().find(|a| pred(a)) {
            return Some(a);
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    None
}

#[tokio::test]
async fn opening_and_resolving_raise_board_alerts_and_an_alert_links_its_incident() {
    let h = Hub::new().await;
    let app = app(&h, h.settings.clone()).await;
    let op = Some(h.tokens["operator"].as_str());
    // An alert on the board, then an incident opened from it.
    let mut r = vigie_source::RawRecord::new("tests", "router-1", "interface down");
    r.domain = Some("network".into());
    let out = vigie_source::Ingest::submit(
        &h.pipeline,
        vigie_source::Submission {
            records: vec![r],
            checkpoint: None,
        },
    )
    .await
    .unwrap();
    let alert_id = out[0].alert_id.unwrap();
    let mut body = new_incident("network");
    body["detection"] = json!("alert");
    body["alert_id"] = json!(alert_id);
    let a = call(&app, op, "POST", "/api/v1/incidents", Some(body)).await;
    assert_eq!(a.status, 201, "{:?}", a.body);
    let id = a.body["id"].as_i64().unwrap();
    let reference = a.body["reference"].as_str().unwrap().to_owned();
    let linked = repo::get(&h.store, alert_id).await.unwrap().unwrap();
    assert_eq!(linked.incident_id, Some(id));
    let event = |a: &vigie_alerts::model::Alert| {
        a.attributes
            .0
            .get("event")
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    let opened = wait_alert(&h.store, |a| {
        a.source == "incidents" && a.resource == reference
    })
    .await
    .expect("opening alert");
    assert_eq!((opened.severity, opened.domain.as_str()), (2, "network"));
    assert_eq!(event(&opened).as_deref(), Some("incident.opened"));
    for (step, b) in [
        ("qualify", json!({"category": "wan", "criticality": "red"})),
        ("transfer", json!({"to": ["oncall"]})),
        (
            "resolve",
            json!({"text": "ok", "minutes": 3, "final": true}),
        ),
    ] {
        let a = call(
            &app,
            op,
            "POST",
            &format!("/api/v1/incidents/{id}/{step}"),
            Some(b),
        )
        .await;
        assert_eq!(a.status, 200);
    }
    let resolved = wait_alert(&h.store, |a| {
        a.resource == reference && event(a).as_deref() == Some("incident.resolved")
    })
    .await;
    assert!(resolved.is_some(), "resolution alert");
    let cleared = wait_alert(&h.store, |a| a.id == opened.id && a.cleared_at.is_some()).await;
    assert!(
        cleared.is_some(),
        "the opening alert is cleared at the resolution"
    );
    // Opening from an alert is for those who see the board.
    let mut body = new_incident("network");
    body["alert_id"] = json!(alert_id);
    let a = call(
        &app,
        Some(h.tokens["user"].as_str()),
        "POST",
        "/api/v1/incidents",
        Some(body),
    )
    .await;
    assert_eq!(a.status, 403, "{:?}", a.body);
    // An unknown alert refuses the opening.
    let mut body = new_incident("network");
    body["alert_id"] = json!(987_654);
    let a = call(&app, op, "POST", "/api/v1/incidents", Some(body)).await;
    assert_eq!(
        (a.status, a.body["problems"][0]["field"].clone()),
        (400, json!("alert_id"))
    );
}

#[tokio::test]
async fn attachments_are_sniffed_limited_served_safely_and_deleted_with_their_incident() {
    let h = Hub::new().await;
    let mut settings = h.settings.clone();
    settings.attachment_max = 4096;
    let app = app(&h, settings).await;
    let op = h.tokens["operator"].clone();
    let id = incident_in(&app, &h, "network", "created").await;
    let upload = |name: &str, bytes: Vec<u8>, token: &str| {
        test::TestRequest::post()
            .uri(&format!("/api/v1/incidents/{id}/attachments?name={name}"))
            .insert_header(("Authorization", format!("Bearer {token}")))
            .insert_header(("Content-Type", "application/octet-stream"))
            .set_payload(bytes)
    };
    let png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec();
    let a = raw(&app, upload("capture%20%C3%A9cran.exe", png.clone(), &op)).await;
    assert_eq!(a.status, 201, "{:?}", a.body);
    assert_eq!(a.body["content_type"], "image/png");
    assert_eq!(a.body["file_name"], "capture écran.exe");
    let aid = a.body["id"].as_i64().unwrap();
    // Multipart works too.
    let body = b"--b0undary\r\nContent-Disposition: form-data; name=\"file\"; filename=\"notes.csv\"\r\nContent-Type: text/html\r\n\r\nhost;state\r\nr1;down\r\n--b0undary--\r\n".to_vec();
    let req = test::TestRequest::post()
        .uri(&format!("/api/v1/incidents/{id}/attachments"))
        .insert_header(("Authorization", format!("Bearer {op}")))
        .insert_header(("Content-Type", "multipart/form-data; boundary=b0undary"))
        .set_payload(body);
    let a = raw(&app, req).await;
    assert_eq!(
        (a.status, a.body["content_type"].clone()),
        (201, json!("text/csv")),
        "{:?}",
        a.body
    );
    for (name, bytes, status) in [
        ("x.png", b"MZ\x90\x00\x03\x00\x00\x00".to_vec(), 415),
        (
            "x.txt",
            b"<!DOCTYPE html><script>alert(1)</script>".to_vec(),
            415,
        ),
        ("big.txt", vec![b'a'; 5000], 413),
        ("empty.txt", Vec::new(), 400),
    ] {
        let a = raw(&app, upload(name, bytes, &op)).await;
        assert_eq!(a.status, status, "{name}: {:?}", a.body);
    }
    // Someone who may not touch the incident (admin) cannot attach.
    let a = raw(&app, upload("x.png", png.clone(), &h.tokens["admin"])).await;
    assert_eq!(a.status, 403);
    assert_eq!(
        count(&h.store, "SELECT COUNT(*) FROM incident_attachments").await,
        2
    );
    let files = |dir: PathBuf| std::fs::read_dir(dir).map(|d| d.count()).unwrap_or(0);
    let incident_dir = h.data_dir().join("attachments").join(id.to_string());
    assert_eq!(
        files(incident_dir.clone()),
        2,
        "refused uploads leave no file"
    );
    let req = test::TestRequest::get()
        .uri(&format!("/api/v1/incidents/{id}/attachments/{aid}"))
        .insert_header(("Authorization", format!("Bearer {}", h.tokens["user"])));
    let a = raw(&app, req).await;
    assert_eq!(a.status, 200);
    assert_eq!(a.bytes, png);
    assert_eq!(a.headers.get("content-type").unwrap(), "image/png");
    assert_eq!(a.headers.get("x-content-type-options").unwrap(), "nosniff");
    let cd = a
        .headers
        .get("content-disposition")
        .unwrap()
        .to_str()
        .unwrap();
    assert!(cd.starts_with("attachment; "), "{cd}");
    assert!(
        cd.contains("filename*=UTF-8''capture%20%C3%A9cran.exe"),
        "{cd}"
    );
    // Deleting the incident removes the rows and the files.
    let a = call(
        &app,
        Some(&op),
        "DELETE",
        &format!("/api/v1/incidents/{id}"),
        None,
    )
    .await;
    assert_eq!(a.status, 200);
    assert_eq!(
        count(&h.store, "SELECT COUNT(*) FROM incident_attachments").await,
        0
    );
    assert_eq!(files(incident_dir), 0);
    let req = test::TestRequest::get()
        .uri(&format!("/api/v1/incidents/{id}/attachments/{aid}"))
        .insert_header(("Authorization", format!("Bearer {op}")));
    assert_eq!(raw(&app, req).await.status, 404);
}
