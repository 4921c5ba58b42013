//! The console's Supervision › Unavailability and Statistics pages through the console's real
//! session handling, asking live sources served over TDS by pysqlbridge (the mssql connector's
//! test bridge): WhatsUp Gold's periods and statistics, Orion's node report, refusals and an
//! unreachable source as messages, bad input next to its field (422), permissions (403). The
//! viewer's time zone is Europe/Paris, so every time typed and shown is shifted by one hour.

use actix_web::cookie::Cookie;
use actix_web::{App, test, web};
use serde_json::{Value, json};
use vigie_auth::session::{SessionPolicy, open};
use vigie_auth::{NewUser, create_user};
use vigie_console::{Console, ConsoleSettings};
use vigie_core::audit::Actor;
use vigie_core::role::Role;
use vigie_core::store::Store;

use crate::bridge::{Bridge, JsonServer, free_port};
use crate::{def, hub};

fn fixture(path: &str) -> String {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../connectors/mssql/tests/fixtures")
        .join(path)
        .to_string_lossy()
        .into_owned()
}

/// WhatsUp Gold's state changes (the connector tests' log): srv-mail-01 down 08:00–08:05 UTC,
/// srv-file-01 down since 09:03, sw-lab in maintenance since 08:30.
fn state_log() -> Value {
    let row = |id: i64, monitor: i64, state: i64, start: &str, end: Option<&str>, result: &str| {
        json!({
            "nActiveMonitorStateChangeLogID": id, "nPivotActiveMonitorTypeToDeviceID": monitor,
            "nMonitorStateID": state, "dStartTime": start, "dEndTime": end, "sResult": result
        })
    };
    json!([
        row(
            7788120,
            90212,
            4,
            "2025-01-14 08:00:00",
            Some("2025-01-14 08:05:00"),
            "SMTP timed out"
        ),
        row(7788121, 90212, 1, "2025-01-14 08:05:00", None, ""),
        row(
            7788123,
            90211,
            4,
            "2025-01-14 09:03:00",
            None,
            "Ping timed out after 3 retries"
        ),
        row(7788124, 90213, 6, "2025-01-14 08:30:00", None, ""),
    ])
}

/// A console session of a new user of `role`: the cookie's value.
async fn session(store: &Store, login: &str, role: Role) -> String {
    let user_id = create_user(
        store,
        NewUser {
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
    let actor = Actor {
        user_id,
        login: login.into(),
        role,
    };
    open(store, &actor, None, None, SessionPolicy::default(), false)
        .await
        .unwrap()
}

/// `GET uri` as the session `who`, in `lang`: (status, body).
macro_rules! get {
    ($app:expr, $uri:expr, $who:expr) => {
        get!($app, $uri, $who, "en")
    };
    ($app:expr, $uri:expr, $who:expr, $lang:expr) => {{
        let req = test::TestRequest::get()
            .uri($uri)
            .insert_header(("Accept-Language", $lang))
            .insert_header(("Accept", "text/html"))
            .cookie(Cookie::new("vigie_session", $who.clone()))
            .to_request();
        let resp = test::call_service($app, req).await;
        let status = resp.status().as_u16();
        let body = String::from_utf8(test::read_body(resp).await.to_vec()).unwrap();
        (status, body)
    }};
}

/// The text of every element marked `data-test="{name}"` (up to its first tag inside).
fn cells(html: &str, name: &str) -> Vec<String> {
    let marker = format!("data-test=\"{name}\"");
    html.match_indices(&marker)
        .map(|(i, _)| {
            let rest = &html[i..];
            let start = rest.find('>').map_or(0, |j| j + 1);
            rest[start..start + rest[start..].find('<').unwrap_or(0)]
                .trim()
                .to_owned()
        })
        .collect()
}

#[tokio::test]
async fn the_pages_ask_the_sources_and_show_their_answers() {
    let h = hub().await;
    let http = JsonServer::start();
    http.set("ActiveMonitorStateChangeLog", state_log());
    let mut tables: Vec<Value> = [
        "orion/Nodes",
        "orion/CPULoad",
        "whatsup/Device",
        "whatsup/NetworkInterface",
        "whatsup/DeviceGroup",
        "whatsup/PivotDeviceToGroup",
        "whatsup/ActiveMonitorType",
        "whatsup/PivotActiveMonitorTypeToDevice",
        "whatsup/MonitorState",
    ]
    .iter()
    .map(|t| {
        json!({
            "name": t.rsplit('/').next().unwrap(),
            "csv": fixture(&format!("{t}.csv")),
        })
    })
    .collect();
    tables.push(http.table("ActiveMonitorStateChangeLog", 0.2));
    let bridge = Bridge::start(Value::Array(tables));
    // Only Orion's nodes are polled: the bridge serves no SysLog, Traps or alerts.
    let only_nodes = json!({"syslog": false, "traps": false, "alerts": false});
    vigie_sources::repo::save_settings(&h.store, "orion", &only_nodes, None)
        .await
        .unwrap();
    let nowhere = format!(
        "mssql://vigie:pw@127.0.0.1:{}/WhatsUp?connect_timeout=3",
        free_port()
    );
    let mut off = def("off", "whatsup", &bridge.url("WhatsUp"));
    off.enabled = false;
    let sources = vigie_sources::Sources::start(
        h.store.clone(),
        std::sync::Arc::new(h.pipeline.clone()),
        vec![
            def("orion", "solarwinds", &bridge.url("SolarWindsOrion")),
            def("wug", "whatsup", &bridge.url("WhatsUp")),
            def("down", "whatsup", &nowhere),
            off,
        ],
    )
    .await;
    let operator = session(&h.store, "op", Role::Operator).await;
    let oncall = session(&h.store, "oc", Role::Oncall).await;
    let settings = ConsoleSettings {
        timezone: "Europe/Paris".parse().unwrap(),
        ..ConsoleSettings::default()
    };
    let paris = settings.timezone;
    let console = Console::start(settings, &h.store).await.unwrap();
    let app = test::init_service(
        App::new()
            .app_data(web::Data::new(h.store.clone()))
            .app_data(web::Data::new(console))
            .app_data(web::Data::new(sources.clone()))
            .configure(vigie_sources::admin::configure),
    )
    .await;
    let app = &app;

    // The first visit: the form, the last 7 days, the sources that answer first; a disabled
    // source is not offered.
    let (status, body) = get!(app, "/supervision/unavailability", operator);
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("data-test=\"ask-form\""), "{body}");
    let wug_at = body.find("<option value=\"wug\"").expect("wug offered");
    let orion_at = body.find("<option value=\"orion\"").expect("orion offered");
    assert!(wug_at < orion_at, "the answering sources first");
    assert!(
        body[orion_at..].contains("(does not answer this question)"),
        "{body}"
    );
    assert!(!body.contains("value=\"off\""), "{body}");
    assert!(body.contains("Times in Europe&#x2F;Paris"), "{body}");
    let today = chrono::Utc::now()
        .with_timezone(&paris)
        .format("%Y-%m-%dT")
        .to_string();
    assert!(
        body.contains(&format!(
            "name=\"to\" type=\"datetime-local\" value=\"{today}"
        )),
        "{body}"
    );

    // WhatsUp Gold's periods, in the viewer's time zone (UTC+1 in January).
    let (status, body) = get!(
        app,
        "/supervision/unavailability?source=wug&resource=srv-mail-01&from=2025-01-14T08:00&to=2025-01-14T13:00",
        operator
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(cells(&body, "start"), ["2025-01-14 09:00:00"], "{body}");
    assert_eq!(cells(&body, "end"), ["2025-01-14 09:05:00"]);
    assert_eq!(cells(&body, "duration"), ["5 min"]);
    assert!(body.contains("SMTP timed out") && body.contains("Outage"));
    assert!(body.contains("data-seconds=\"300\">5 min"), "the total");
    assert!(
        body.contains("value=\"srv-mail-01\""),
        "the form keeps what was typed"
    );

    // A period still open: "ongoing", counted up to the end of the range.
    let (status, body) = get!(
        app,
        "/supervision/unavailability?source=wug&resource=sw-lab&from=2025-01-14T01:00&to=2025-01-14T13:00",
        operator
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(cells(&body, "start"), ["2025-01-14 09:30:00"], "{body}");
    assert!(body.contains("<strong>ongoing</strong>"), "{body}");
    assert!(body.contains("Maintenance"));
    assert!(body.contains("data-seconds=\"12600\">3 h 30 min"), "{body}");

    let (status, body) = get!(
        app,
        "/supervision/unavailability?source=wug&resource=sw-lab&from=2025-01-14T01:00&to=2025-01-14T13:00",
        operator,
        "fr"
    );
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("<strong>en cours</strong>"), "{body}");
    assert!(body.contains("1 période(s)"), "{body}");

    // WhatsUp Gold's statistics.
    let (status, body) = get!(
        app,
        "/supervision/statistics?source=wug&resource=srv-mail-01&from=2025-01-14T09:00&to=2025-01-14T10:00",
        operator
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(cells(&body, "outages"), ["1"], "{body}");
    assert_eq!(cells(&body, "downtime"), ["5 min"]);
    assert_eq!(cells(&body, "mttr"), ["5 min"]);
    assert_eq!(cells(&body, "availability"), ["91.67 %"]);

    let (status, body) = get!(
        app,
        "/supervision/statistics?source=wug&resource=srv-mail-01&from=2025-01-14T09:00&to=2025-01-14T10:00",
        operator,
        "fr"
    );
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("Temps moyen de rétablissement"), "{body}");

    // Orion: the node report, its CPU and memory now and its history.
    let (status, body) = get!(
        app,
        "/supervision/statistics?source=orion&resource=rtr-paris&from=2025-01-14T08:30&to=2025-01-14T11:00",
        operator
    );
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("data-test=\"node-result\""), "{body}");
    assert!(cells(&body, "node-status")[0].starts_with("up"), "{body}");
    assert_eq!(cells(&body, "cpu"), ["37 %"], "{body}");
    assert_eq!(cells(&body, "memory"), ["61 %"]);
    assert_eq!(cells(&body, "avg-load"), ["35 %", "37 %"]);
    assert!(
        body.contains("2025-01-14 09:00:00"),
        "the first sample, Paris time"
    );
    assert!(body.contains("5.24 GB"), "{body}");
    // In French: the labels and the units of the locale.
    let (status, body) = get!(
        app,
        "/supervision/statistics?source=orion&resource=rtr-paris&from=2025-01-14T08:30&to=2025-01-14T11:00",
        operator,
        "fr"
    );
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("Charge processeur") && body.contains("5.24 Go"));

    // A source that does not answer the question, one that cannot be reached, a node the source
    // does not know: a message on the page, not an error page.
    let (status, body) = get!(
        app,
        "/supervision/unavailability?source=orion&resource=rtr-paris&from=2025-01-14T08:00&to=2025-01-14T13:00",
        operator
    );
    assert_eq!(status, 200, "{body}");
    let problem = cells(&body, "ask-problem");
    assert!(
        problem[0].starts_with("This source does not answer this question:")
            && problem[0].contains("node report"),
        "{body}"
    );
    let (status, body) = get!(
        app,
        "/supervision/unavailability?source=down&resource=srv-mail-01",
        operator
    );
    assert_eq!(status, 200, "{body}");
    assert!(
        cells(&body, "ask-problem")[0].starts_with("The source cannot be reached:"),
        "{body}"
    );
    let (status, body) = get!(
        app,
        "/supervision/statistics?source=orion&resource=nowhere",
        operator,
        "fr"
    );
    assert_eq!(status, 200, "{body}");
    assert!(
        cells(&body, "ask-problem")[0].contains("no node `nowhere`"),
        "{body}"
    );

    // Bad input: the form again (422), the message next to its field.
    for (uri, field, text) in [
        (
            "/supervision/unavailability?source=wug&resource=",
            "resource",
            "The resource is required.",
        ),
        (
            "/supervision/unavailability?source=wug&resource=x&from=2025-01-14T10:00&to=2025-01-14T10:00",
            "from",
            "The start must be before the end.",
        ),
        (
            "/supervision/statistics?source=wug&resource=x&from=yesterday",
            "from",
            "Not a date and time.",
        ),
        (
            "/supervision/statistics?source=nobody&resource=x",
            "source",
            "No running source has this name.",
        ),
        (
            "/supervision/statistics?source=off&resource=x",
            "source",
            "No running source has this name.",
        ),
    ] {
        let (status, body) = get!(app, uri, operator);
        assert_eq!(status, 422, "{uri}: {body}");
        assert_eq!(
            cells(&body, "ask-form").len(),
            1,
            "{uri}: the form is shown"
        );
        let marker = format!("data-error=\"{field}\">{text}</p>");
        assert!(body.contains(&marker), "{uri}: {body}");
        assert!(!body.contains("data-test=\"ask-problem\""), "{uri}");
    }
    let (status, body) = get!(
        app,
        "/supervision/unavailability?source=wug&resource=",
        operator,
        "fr"
    );
    assert_eq!(status, 422);
    assert!(body.contains("La ressource est obligatoire."), "{body}");

    // The on-call role has neither permission.
    for uri in [
        "/supervision/unavailability",
        "/supervision/statistics",
        "/supervision/statistics?source=wug&resource=srv-mail-01",
    ] {
        let (status, _) = get!(app, uri, oncall);
        assert_eq!(status, 403, "{uri}");
    }
    sources.stop(std::time::Duration::from_secs(2)).await;
}
