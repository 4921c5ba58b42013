//! Administration › Audit log: every administrative action and state change, searchable, newest
//! first, read-only (the tables refuse changes).

use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{NaiveDate, TimeZone};
use vigie_core::audit::{Filter, search};
use vigie_core::role::Permission;
use vigie_core::store::Store;

use super::{allowed, page, query};
use crate::error::PageError;
use crate::{Console, Viewer};

pub(super) fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/admin/audit", web::get().to(list));
}

const PAGE: u32 = 100;

/// A day typed in the form (`YYYY-MM-DD`), at midnight in the viewer's time zone.
fn day(
    viewer: &Viewer,
    text: Option<&String>,
    plus_days: i64,
) -> Option<chrono::DateTime<chrono::Utc>> {
    let date = NaiveDate::parse_from_str(text?.trim(), "%Y-%m-%d").ok()?;
    let midnight = (date + chrono::Duration::days(plus_days)).and_hms_opt(0, 0, 0)?;
    viewer
        .tz
        .from_local_datetime(&midnight)
        .earliest()
        .map(|t| t.with_timezone(&chrono::Utc))
}

async fn list(
    req: HttpRequest,
    viewer: Viewer,
    console: web::Data<Console>,
    store: web::Data<Store>,
) -> Result<HttpResponse, PageError> {
    let mut context = allowed(&viewer, Permission::AdminAudit)?;
    let q = query(&req);
    let non_empty = |k: &str| {
        q.get(k)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    };
    let filter = Filter {
        actor: non_empty("actor"),
        action: non_empty("action"),
        text: non_empty("q"),
        from: day(&viewer, q.get("from"), 0),
        to: day(&viewer, q.get("to"), 1),
        before_id: q.get("before").and_then(|b| b.parse().ok()),
        limit: PAGE + 1,
    };
    let mut rows = search(&store, &filter).await?;
    let more = rows.len() > PAGE as usize;
    rows.truncate(PAGE as usize);
    context.insert("older", &more.then(|| rows.last().map(|r| r.id)).flatten());
    context.insert("rows", &rows);
    for key in ["actor", "action", "q", "from", "to"] {
        context.insert(key, &q.get(key).cloned().unwrap_or_default());
    }
    Ok(page(&console, &viewer, "console/admin/audit.html", context))
}
