//! The hosts in the console (General supervision): the list with status, health and key figures,
//! and a host's page with its charts over a chosen range, inventory, raised thresholds and
//! unavailability periods. Permission `supervision_view`, checked on the server.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{Duration, Utc};
use serde::Serialize;
use tera::Context;
use vigie_console::{Console, FormData, PageError, Viewer};
use vigie_core::role::Permission;
use vigie_core::store::Store;

use crate::thresholds::Thresholds;
use crate::{HostsSettings, chart, repo};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/hosts", web::get().to(list))
        .route("/hosts/{name}", web::get().to(host))
        .route("/hosts/{name}/revoke", web::post().to(revoke));
}

async fn list(
    viewer: Viewer,
    console: web::Data<Console>,
    store: web::Data<Store>,
) -> Result<HttpResponse, PageError> {
    viewer.require(Permission::SupervisionView)?;
    let mut context = Context::new();
    context.insert("hosts", &repo::list_hosts(&store).await?);
    Ok(console.renderer.page(
        StatusCode::OK,
        "hosts/list.html",
        viewer.lang,
        Some(&viewer),
        context,
    ))
}

/// One chart of the host page.
#[derive(Serialize)]
struct Chart {
    metric: String,
    svg: String,
    last: Option<f64>,
    max: Option<f64>,
    unit: &'static str,
}

const RANGES: [(&str, i64); 4] = [("1h", 1), ("6h", 6), ("24h", 24), ("7d", 168)];

async fn host(
    req: HttpRequest,
    viewer: Viewer,
    name: web::Path<String>,
    console: web::Data<Console>,
    store: web::Data<Store>,
) -> Result<HttpResponse, PageError> {
    viewer.require(Permission::SupervisionView)?;
    let Some(line) = repo::list_hosts(&store)
        .await?
        .into_iter()
        .find(|h| h.name == *name)
    else {
        return Err(PageError::NotFound(viewer.lang));
    };
    let Some(host_id) = repo::host_id(&store, &name).await? else {
        return Err(PageError::NotFound(viewer.lang));
    };
    let query = FormData::parse(req.query_string().as_bytes());
    let range = query.get("range").unwrap_or("6h");
    let hours = RANGES
        .iter()
        .find(|(r, _)| *r == range)
        .map_or(6, |(_, h)| *h);
    let to = Utc::now();
    let from = to - Duration::hours(hours);
    let mut charts = Vec::new();
    for metric in repo::metric_names(&store, host_id, from).await? {
        let points = repo::series(&store, host_id, &metric, from, to, 5000).await?;
        let percent =
            metric == "cpu" || metric == "memory" || metric == "swap" || metric.starts_with("fs:");
        let unit = if percent {
            "%"
        } else if metric.starts_with("net:") {
            "B/s"
        } else if metric == "temperature" {
            "°C"
        } else {
            ""
        };
        charts.push(Chart {
            svg: chart::line(&points, from, to, percent),
            last: points.last().map(|p| p.value),
            max: points.iter().map(|p| p.value).reduce(f64::max),
            unit,
            metric,
        });
    }
    let mut context = Context::new();
    context.insert("host", &line);
    context.insert("charts", &charts);
    context.insert("range", range);
    context.insert(
        "ranges",
        &RANGES.iter().map(|(r, _)| *r).collect::<Vec<_>>(),
    );
    context.insert("downtimes", &repo::downtimes(&store, host_id).await?);
    let settings = req.app_data::<web::Data<HostsSettings>>().cloned();
    let settings = settings.unwrap_or_else(|| web::Data::new(HostsSettings::default()));
    let (limits, origin) = settings.thresholds.for_host(&line.name);
    context.insert("limits_origin", &origin);
    context.insert("limits", &limit_rows(limits));
    context.insert(
        "can_revoke",
        &viewer.permissions.contains(Permission::EquipmentAdmin),
    );
    context.insert(
        "inventory",
        &line
            .inventory
            .as_ref()
            .map(|i| serde_json::to_string_pretty(i).unwrap_or_default()),
    );
    Ok(console.renderer.page(
        StatusCode::OK,
        "hosts/host.html",
        viewer.lang,
        Some(&viewer),
        context,
    ))
}

/// Revokes the host's agent tokens (a stolen or retired machine): its reports are refused from
/// now on. For those who administer equipment; audited.
async fn revoke(
    viewer: Viewer,
    name: web::Path<String>,
    body: web::Bytes,
    store: web::Data<Store>,
) -> Result<HttpResponse, PageError> {
    viewer.require(Permission::EquipmentAdmin)?;
    let form = FormData::parse(&body);
    viewer.check_csrf(form.get("_csrf"))?;
    if repo::host_id(&store, &name).await?.is_none() {
        return Err(PageError::NotFound(viewer.lang));
    }
    let revoked = repo::revoke_tokens(&store, &name).await?;
    let actor = viewer.actor();
    vigie_core::audit::record_alone(
        &store,
        vigie_core::audit::Entry::new(Some(&actor), viewer.ip(), "host.tokens_revoke")
            .target("host", name.as_str(), name.as_str())
            .change(None, Some(serde_json::json!({ "revoked": revoked }))),
    )
    .await?;
    vigie_console::flash(
        &store,
        &viewer,
        "success",
        "hosts.revoked",
        Some(name.to_string()),
    )
    .await?;
    Ok(vigie_console::see_other(&format!(
        "/hosts/{}",
        form_urlencoded_path(&name)
    )))
}

/// A host name for a path (names are letters, digits, `.`, `-`, `_`; anything else is encoded).
fn form_urlencoded_path(name: &str) -> String {
    name.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'.' | b'-' | b'_' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// One threshold as the host page lists it.
#[derive(Serialize)]
struct LimitRow {
    /// Its label's key in the locale files.
    label: &'static str,
    above: f64,
    margin: f64,
    reports: u32,
    /// `"0"` to `"2"`, the key of the level's label.
    level: String,
}

fn limit_rows(t: &Thresholds) -> Vec<LimitRow> {
    [
        ("limit_cpu", t.cpu),
        ("limit_memory", t.memory),
        ("limit_filesystem", t.filesystem),
        ("limit_load_per_core", t.load_per_core),
        ("limit_temperature", t.temperature),
        ("limit_smart_failed", t.smart_failed),
        ("limit_failed_units", t.failed_units),
    ]
    .into_iter()
    .map(|(label, l)| LimitRow {
        label,
        above: l.above,
        margin: l.margin,
        reports: l.reports,
        level: (l.level as u8).to_string(),
    })
    .collect()
}
