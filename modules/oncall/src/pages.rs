//! The planning in the console: `/oncall`, the week or month calendar of a domain that everyone
//! can see (`oncall_view`), with who is on duty now, gaps and conflicts; `/admin/oncall`, the
//! administrator's page (`oncall_edit`) to add and remove periods, rotations, overrides and teams.
//! Permissions are checked on the server before anything else; forms carry the CSRF token.

use std::collections::BTreeMap;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;
use serde::Serialize;
use tera::Context;
use vigie_console::{Console, FormData, PageError, Viewer, flash, see_other};
use vigie_core::domain::Domains;
use vigie_core::role::Permission;
use vigie_core::store::Store;

use crate::OncallError;
use crate::api::domains;
use crate::planning::{self, Conflict, OnDuty, Slot};
use crate::planning_edit::{self as edit, Kind};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/oncall", web::get().to(calendar))
        .route("/admin/oncall", web::get().to(admin))
        .route(
            "/admin/oncall/periods",
            web::post().to(add::<edit::PeriodInput>),
        )
        .route(
            "/admin/oncall/rotations",
            web::post().to(add::<edit::RotationInput>),
        )
        .route(
            "/admin/oncall/overrides",
            web::post().to(add::<edit::OverrideInput>),
        )
        .route(
            "/admin/oncall/teams",
            web::post().to(add::<edit::TeamInput>),
        )
        .route("/admin/oncall/{kind}/{id}/delete", web::post().to(remove));
}

fn render(
    console: &Console,
    viewer: &Viewer,
    status: StatusCode,
    name: &str,
    c: Context,
) -> HttpResponse {
    console
        .renderer
        .page(status, name, viewer.lang, Some(viewer), c)
}

fn page_error(viewer: &Viewer, e: OncallError) -> PageError {
    match e {
        OncallError::Store(s) => s.into(),
        OncallError::Auth(a) => a.into(),
        OncallError::NotFound => PageError::NotFound(viewer.lang),
        OncallError::Invalid { .. } => PageError::BadRequest(viewer.lang, "error.bad_request"),
    }
}

/// A domain for a select: id and label in the viewer's language.
#[derive(Serialize)]
struct DomainChoice {
    id: String,
    label: String,
}

fn domain_choices(viewer: &Viewer, domains: &Domains) -> Vec<DomainChoice> {
    domains
        .list()
        .iter()
        .map(|d| DomainChoice {
            id: d.id.clone(),
            label: match viewer.lang {
                vigie_console::Lang::Fr => d.label_fr.clone(),
                vigie_console::Lang::En => d.label_en.clone(),
            },
        })
        .collect()
}

/// The domain asked for, else the viewer's first configured domain, else the first configured.
async fn chosen_domain(
    viewer: &Viewer,
    store: &Store,
    domains: &Domains,
    asked: Option<&str>,
) -> Result<String, PageError> {
    if let Some(d) = asked.filter(|d| domains.contains(d)) {
        return Ok(d.to_owned());
    }
    let mine = vigie_auth::contacts::domains_of(store, viewer.user.user_id).await?;
    Ok(mine
        .into_iter()
        .find(|d| domains.contains(d))
        .or_else(|| domains.ids().next().map(str::to_owned))
        .unwrap_or_default())
}

/// Local midnight of `day` in `tz`, as UTC.
fn local_midnight(tz: Tz, day: NaiveDate) -> DateTime<Utc> {
    let naive = day.and_hms_opt(0, 0, 0).unwrap_or_default();
    tz.from_local_datetime(&naive)
        .earliest()
        .or_else(|| {
            tz.from_local_datetime(&(naive + Duration::hours(1)))
                .earliest()
        })
        .map_or_else(|| Utc.from_utc_datetime(&naive), |t| t.with_timezone(&Utc))
}

/// A stretch of one day of the calendar.
#[derive(Serialize)]
struct Piece {
    from: String,
    to: String,
    people: Vec<OnDuty>,
    gap: bool,
    conflicts: Vec<Conflict>,
    now: bool,
}

#[derive(Serialize)]
struct Day {
    date: String,
    weekday: &'static str,
    day: u32,
    today: bool,
    /// Outside the month shown (month view's leading and trailing days).
    outside: bool,
    pieces: Vec<Piece>,
    gaps: bool,
    conflicts: bool,
}

const WEEKDAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

fn days_of(
    tz: Tz,
    first: NaiveDate,
    count: i64,
    month: Option<u32>,
    slots: &[Slot],
    now: DateTime<Utc>,
) -> Vec<Day> {
    let today = now.with_timezone(&tz).date_naive();
    let mut days = Vec::new();
    for offset in 0..count {
        let date = first + Duration::days(offset);
        let start = local_midnight(tz, date);
        let end = local_midnight(tz, date + Duration::days(1));
        let mut pieces = Vec::new();
        for s in slots.iter().filter(|s| s.from < end && s.to > start) {
            let a = s.from.max(start);
            let b = s.to.min(end);
            pieces.push(Piece {
                from: a.with_timezone(&tz).format("%H:%M").to_string(),
                to: if b == end {
                    "24:00".to_owned()
                } else {
                    b.with_timezone(&tz).format("%H:%M").to_string()
                },
                people: s.people.clone(),
                gap: s.gap,
                conflicts: s.conflicts.clone(),
                now: a <= now && now < b,
            });
        }
        let weekday = WEEKDAYS
            .get(date.weekday().num_days_from_monday() as usize)
            .copied()
            .unwrap_or("mon");
        days.push(Day {
            date: date.format("%Y-%m-%d").to_string(),
            weekday,
            day: date.day(),
            today: date == today,
            outside: month.is_some_and(|m| m != date.month()),
            gaps: pieces.iter().any(|p| p.gap),
            conflicts: pieces.iter().any(|p| !p.conflicts.is_empty()),
            pieces,
        });
    }
    days
}

/// Who is on duty now in one domain (the calendar's header).
#[derive(Serialize)]
struct NowLine {
    domain: String,
    label: String,
    people: Vec<OnDuty>,
}

async fn calendar(
    req: HttpRequest,
    viewer: Viewer,
    console: web::Data<Console>,
    store: web::Data<Store>,
) -> Result<HttpResponse, PageError> {
    viewer.require(Permission::OncallView)?;
    let query = FormData::parse(req.query_string().as_bytes());
    let domains = domains(&req);
    let domain = chosen_domain(&viewer, &store, &domains, query.get("domain")).await?;
    let month_view = query.get("view") == Some("month");
    let tz = viewer.tz;
    let now = vigie_core::time::now();
    let today = now.with_timezone(&tz).date_naive();
    let date = query
        .get("date")
        .and_then(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok())
        .unwrap_or(today);
    let (first, count, month, prev, next) = if month_view {
        let month_start = date.with_day(1).unwrap_or(date);
        let next_month = (month_start + Duration::days(32))
            .with_day(1)
            .unwrap_or(month_start);
        let prev_month = (month_start - Duration::days(1))
            .with_day(1)
            .unwrap_or(month_start);
        // Whole weeks, Monday first.
        let first =
            month_start - Duration::days(i64::from(month_start.weekday().num_days_from_monday()));
        let last = next_month - Duration::days(1);
        let end = last + Duration::days(6 - i64::from(last.weekday().num_days_from_monday()));
        let count = (end - first).num_days() + 1;
        (
            first,
            count,
            Some(month_start.month()),
            prev_month,
            next_month,
        )
    } else {
        let first = date - Duration::days(i64::from(date.weekday().num_days_from_monday()));
        (
            first,
            7,
            None,
            first - Duration::days(7),
            first + Duration::days(7),
        )
    };
    let from = local_midnight(tz, first);
    let to = local_midnight(tz, first + Duration::days(count));
    let slots = planning::coverage(&store, &domain, from, to)
        .await
        .map_err(|e| page_error(&viewer, e))?;
    let choices = domain_choices(&viewer, &domains);
    let mut now_lines = Vec::new();
    for d in &choices {
        now_lines.push(NowLine {
            domain: d.id.clone(),
            label: d.label.clone(),
            people: planning::on_duty(&store, &d.id, now)
                .await
                .map_err(|e| page_error(&viewer, e))?,
        });
    }
    let mut context = Context::new();
    context.insert("view", if month_view { "month" } else { "week" });
    context.insert("domain", &domain);
    context.insert(
        "domain_label",
        &choices
            .iter()
            .find(|d| d.id == domain)
            .map(|d| d.label.clone())
            .unwrap_or_default(),
    );
    context.insert("domains", &choices);
    context.insert("now_lines", &now_lines);
    context.insert("days", &days_of(tz, first, count, month, &slots, now));
    context.insert("first", &first.format("%Y-%m-%d").to_string());
    // What the date field shows: the month's first day, or the week's Monday.
    let shown = match month {
        Some(_) => date.with_day(1).unwrap_or(date),
        None => first,
    };
    context.insert("shown", &shown.format("%Y-%m-%d").to_string());
    context.insert(
        "last",
        &(first + Duration::days(count - 1))
            .format("%Y-%m-%d")
            .to_string(),
    );
    context.insert("month_key", &format!("m{:02}", date.month()));
    context.insert("year", &date.year());
    context.insert("prev", &prev.format("%Y-%m-%d").to_string());
    context.insert("next", &next.format("%Y-%m-%d").to_string());
    context.insert("today", &today.format("%Y-%m-%d").to_string());
    context.insert("gaps", &slots.iter().filter(|s| s.gap).count());
    context.insert(
        "conflicts",
        &slots.iter().filter(|s| !s.conflicts.is_empty()).count(),
    );
    context.insert(
        "can_edit",
        &viewer.permissions.contains(Permission::OncallEdit),
    );
    Ok(render(
        &console,
        &viewer,
        StatusCode::OK,
        "oncall/calendar.html",
        context,
    ))
}

/// A person for the edit page's selects.
#[derive(Serialize)]
struct Person {
    login: String,
    name: String,
}

async fn admin_context(
    viewer: &Viewer,
    store: &Store,
    domains: &Domains,
    domain: &str,
    values: BTreeMap<String, String>,
    errors: BTreeMap<String, String>,
) -> Result<Context, PageError> {
    let since = vigie_core::time::now() - Duration::days(1);
    let e = |e| page_error(viewer, e);
    let people: Vec<Person> = vigie_auth::search_users(store, None, false, None, 1000)
        .await?
        .into_iter()
        .map(|u| Person {
            name: u.name(),
            login: u.login,
        })
        .collect();
    let mut context = Context::new();
    context.insert("domain", domain);
    context.insert("domains", &domain_choices(viewer, domains));
    context.insert(
        "periods",
        &edit::list_periods(store, domain, since).await.map_err(e)?,
    );
    context.insert(
        "rotations",
        &edit::list_rotations(store, domain).await.map_err(e)?,
    );
    context.insert(
        "overrides",
        &edit::list_overrides(store, domain, since)
            .await
            .map_err(e)?,
    );
    context.insert("teams", &edit::list_teams(store, domain).await.map_err(e)?);
    context.insert("people", &people);
    context.insert("v", &values);
    context.insert("errors", &errors);
    Ok(context)
}

async fn admin(
    req: HttpRequest,
    viewer: Viewer,
    console: web::Data<Console>,
    store: web::Data<Store>,
) -> Result<HttpResponse, PageError> {
    viewer.require(Permission::OncallEdit)?;
    let query = FormData::parse(req.query_string().as_bytes());
    let domains = domains(&req);
    let domain = chosen_domain(&viewer, &store, &domains, query.get("domain")).await?;
    let values = default_values(&viewer);
    let context =
        admin_context(&viewer, &store, &domains, &domain, values, BTreeMap::new()).await?;
    Ok(render(
        &console,
        &viewer,
        StatusCode::OK,
        "oncall/admin.html",
        context,
    ))
}

/// The fields of the edit page's forms, kept when a form is shown again with its problem.
const FIELDS: &[&str] = &[
    "p_user",
    "p_team",
    "p_starts_at",
    "p_ends_at",
    "p_index",
    "p_note",
    "r_name",
    "r_index",
    "r_anchor",
    "r_time_zone",
    "r_length_days",
    "r_members",
    "r_ends_at",
    "o_replaced",
    "o_replacement",
    "o_starts_at",
    "o_ends_at",
    "o_reason",
    "t_name",
    "t_members",
];

/// What the edit page's forms start with.
fn default_values(viewer: &Viewer) -> BTreeMap<String, String> {
    let mut values = BTreeMap::new();
    values.insert("r_time_zone".to_owned(), viewer.tz.name().to_owned());
    values.insert("r_length_days".to_owned(), "7".to_owned());
    values.insert("p_index".to_owned(), "1".to_owned());
    values.insert("r_index".to_owned(), "1".to_owned());
    values
}

/// A `datetime-local` value in `tz`.
fn local_time(tz: Tz, text: &str) -> Option<DateTime<Utc>> {
    let text = text.trim();
    let naive = NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M")
        .or_else(|_| NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S"))
        .ok()?;
    tz.from_local_datetime(&naive)
        .earliest()
        .map(|t| t.with_timezone(&Utc))
}

fn int<T: std::str::FromStr>(text: &str) -> Option<T> {
    text.trim().parse().ok()
}

fn logins(text: &str) -> Vec<String> {
    text.split([',', '\n', ' ', ';'])
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect()
}

/// A POSTed form of the edit page, once the permission and the CSRF token are checked.
fn posted(viewer: &Viewer, body: &[u8]) -> Result<FormData, PageError> {
    viewer.require(Permission::OncallEdit)?;
    let form = FormData::parse(body);
    viewer.check_csrf(form.get("_csrf"))?;
    Ok(form)
}

/// After a change that worked: the message, then back to the edit page on the domain.
async fn back(
    store: &Store,
    viewer: &Viewer,
    key: &str,
    domain: &str,
) -> Result<HttpResponse, PageError> {
    flash(store, viewer, "success", key, None).await?;
    Ok(see_other(&format!(
        "/admin/oncall?domain={}",
        encode(domain)
    )))
}

/// Reads a POSTed form of the edit page: permission, CSRF, the submitted values and the domain.
fn read_form(
    req: &HttpRequest,
    viewer: &Viewer,
    body: &[u8],
) -> Result<(FormData, Domains, String), PageError> {
    let form = posted(viewer, body)?;
    let domains = domains(req);
    let domain = form.text("domain").trim().to_owned();
    Ok((form, domains, domain))
}

/// After a change: back to the edit page, or the page again with the problem next to its field
/// (prefixed with the form's prefix) and the values typed.
#[allow(clippy::too_many_arguments)]
async fn outcome(
    viewer: &Viewer,
    console: &Console,
    store: &Store,
    domains: &Domains,
    domain: &str,
    form: &FormData,
    prefix: &str,
    result: Result<i64, OncallError>,
) -> Result<HttpResponse, PageError> {
    match result {
        Ok(_) => back(store, viewer, "oncall.saved", domain).await,
        Err(OncallError::Invalid { field, problem }) => {
            let key = if field == "domain" {
                "domain".to_owned()
            } else {
                format!("{prefix}{field}")
            };
            let mut errors = BTreeMap::new();
            errors.insert(key, viewer.text(&problem));
            let mut values = default_values(viewer);
            for name in FIELDS {
                if let Some(v) = form.get(name) {
                    values.insert((*name).to_owned(), v.to_owned());
                }
            }
            let shown = if domains.contains(domain) {
                domain.to_owned()
            } else {
                domains.ids().next().unwrap_or_default().to_owned()
            };
            let context = admin_context(viewer, store, domains, &shown, values, errors).await?;
            Ok(render(
                console,
                viewer,
                StatusCode::UNPROCESSABLE_ENTITY,
                "oncall/admin.html",
                context,
            ))
        }
        Err(e) => Err(page_error(viewer, e)),
    }
}

fn encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'.' | b'-' | b'_' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// What saving an add form gives: the new entry's id, or why nothing was saved.
type Saved = Result<i64, OncallError>;

/// One of the edit page's add forms: the prefix of its fields, how its values are read and
/// what saves them.
trait AddForm: Sized {
    const PREFIX: &'static str;
    /// The change typed, or the problem of a value that cannot be read.
    fn read(viewer: &Viewer, form: &FormData, domain: String) -> Result<Self, OncallError>;
    async fn save(&self, store: &Store, viewer: &Viewer, domains: &Domains) -> Saved;
}

/// The POST of an add form: read, save, then back to the page or the form again with the problem.
async fn add<F: AddForm>(
    req: HttpRequest,
    viewer: Viewer,
    body: web::Bytes,
    console: web::Data<Console>,
    store: web::Data<Store>,
) -> Result<HttpResponse, PageError> {
    let (form, domains, domain) = read_form(&req, &viewer, &body)?;
    let result = match F::read(&viewer, &form, domain.clone()) {
        Ok(input) => input.save(&store, &viewer, &domains).await,
        Err(e) => Err(e),
    };
    outcome(
        &viewer,
        &console,
        &store,
        &domains,
        &domain,
        &form,
        F::PREFIX,
        result,
    )
    .await
}

impl AddForm for edit::PeriodInput {
    const PREFIX: &'static str = "p_";

    fn read(viewer: &Viewer, form: &FormData, domain: String) -> Result<Self, OncallError> {
        Ok(edit::PeriodInput {
            domain,
            login: form.text("p_user"),
            team_id: int(&form.text("p_team")),
            starts_at: local_time(viewer.tz, &form.text("p_starts_at")),
            ends_at: local_time(viewer.tz, &form.text("p_ends_at")),
            index: int(&form.text("p_index")),
            note: form.text("p_note"),
        })
    }

    async fn save(&self, store: &Store, viewer: &Viewer, domains: &Domains) -> Saved {
        edit::add_period(store, &viewer.actor(), viewer.ip(), domains, self).await
    }
}

impl AddForm for edit::RotationInput {
    const PREFIX: &'static str = "r_";

    fn read(viewer: &Viewer, form: &FormData, domain: String) -> Result<Self, OncallError> {
        let time_zone = form.text("r_time_zone").trim().to_owned();
        // The anchor is read in the rotation's own zone (its handover time is local there).
        let zone = time_zone.parse::<Tz>().unwrap_or(viewer.tz);
        let ends_text = form.text("r_ends_at");
        let input = edit::RotationInput {
            domain,
            name: form.text("r_name"),
            index: int(&form.text("r_index")),
            anchor: local_time(zone, &form.text("r_anchor")),
            time_zone,
            length_days: int(&form.text("r_length_days")),
            ends_at: local_time(zone, &ends_text),
            members: logins(&form.text("r_members")),
        };
        if !ends_text.trim().is_empty() && input.ends_at.is_none() {
            return Err(OncallError::Invalid {
                field: "ends_at",
                problem: "oncall.err_time".into(),
            });
        }
        Ok(input)
    }

    async fn save(&self, store: &Store, viewer: &Viewer, domains: &Domains) -> Saved {
        edit::add_rotation(store, &viewer.actor(), viewer.ip(), domains, self).await
    }
}

impl AddForm for edit::OverrideInput {
    const PREFIX: &'static str = "o_";

    fn read(viewer: &Viewer, form: &FormData, domain: String) -> Result<Self, OncallError> {
        Ok(edit::OverrideInput {
            domain,
            starts_at: local_time(viewer.tz, &form.text("o_starts_at")),
            ends_at: local_time(viewer.tz, &form.text("o_ends_at")),
            replaced: form.text("o_replaced"),
            replacement: form.text("o_replacement"),
            reason: form.text("o_reason"),
        })
    }

    async fn save(&self, store: &Store, viewer: &Viewer, domains: &Domains) -> Saved {
        edit::add_override(store, &viewer.actor(), viewer.ip(), domains, self).await
    }
}

impl AddForm for edit::TeamInput {
    const PREFIX: &'static str = "t_";

    fn read(_viewer: &Viewer, form: &FormData, domain: String) -> Result<Self, OncallError> {
        Ok(edit::TeamInput {
            domain,
            name: form.text("t_name"),
            members: logins(&form.text("t_members")),
        })
    }

    async fn save(&self, store: &Store, viewer: &Viewer, domains: &Domains) -> Saved {
        edit::add_team(store, &viewer.actor(), viewer.ip(), domains, self).await
    }
}

async fn remove(
    viewer: Viewer,
    path: web::Path<(String, i64)>,
    body: web::Bytes,
    store: web::Data<Store>,
) -> Result<HttpResponse, PageError> {
    posted(&viewer, &body)?;
    let (kind, id) = path.into_inner();
    let kind = match kind.as_str() {
        "periods" => Kind::Period,
        "rotations" => Kind::Rotation,
        "overrides" => Kind::Override,
        "teams" => Kind::Team,
        _ => return Err(PageError::NotFound(viewer.lang)),
    };
    let domain = edit::remove(&store, &viewer.actor(), viewer.ip(), kind, id)
        .await
        .map_err(|e| page_error(&viewer, e))?;
    back(&store, &viewer, "oncall.removed", &domain).await
}
