//! Each user's notification preferences: the channels they are told on (mail to their address,
//! SMS to their phone) and quiet hours, in their own time zone, during which only critical
//! alerts reach them. The page `/account/notifications` is open to every logged-in user, for
//! their own preferences only.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use chrono::{DateTime, Timelike, Utc};
use serde::Serialize;
use std::collections::HashMap;
use tera::Context;
use vigie_console::{Console, FormData, PageError, Viewer};
use vigie_core::audit::{Actor, Entry};
use vigie_core::store::{Store, StoreError};
use vigie_core::{on_pool, on_tx};

use crate::OncallError;
use crate::routing::{Problem, hhmm, in_window, parse_hhmm};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/account/notifications", web::get().to(page))
        .route("/account/notifications", web::post().to(submit));
}

/// One user's preferences; without a stored row, every channel and no quiet hours.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct Prefs {
    pub mail: bool,
    pub sms: bool,
    /// Minutes after midnight in the user's time zone; start > end wraps over midnight.
    pub quiet_start: Option<i32>,
    pub quiet_end: Option<i32>,
}

impl Default for Prefs {
    fn default() -> Prefs {
        Prefs {
            mail: true,
            sms: true,
            quiet_start: None,
            quiet_end: None,
        }
    }
}

impl Prefs {
    pub fn has_quiet_hours(&self) -> bool {
        self.quiet_start.is_some() && self.quiet_end.is_some()
    }

    /// Whether `at` falls in the quiet hours, read in the time zone `tz`.
    pub fn quiet_at(&self, at: DateTime<Utc>, tz: chrono_tz::Tz) -> bool {
        match (self.quiet_start, self.quiet_end) {
            (Some(start), Some(end)) if start != end => {
                let local = at.with_timezone(&tz);
                let minute = i32::try_from(local.hour() * 60 + local.minute()).unwrap_or(0);
                in_window(start, end, minute)
            }
            _ => false,
        }
    }
}

/// A user's preferences.
pub async fn load(store: &Store, user_id: i64) -> Result<Prefs, OncallError> {
    let row = on_pool!(store, pool => sqlx::query_as::<_, Prefs>(
        "SELECT mail, sms, quiet_start, quiet_end FROM oncall_notify_prefs WHERE user_id = $1",
    )
    .bind(user_id)
    .fetch_optional(pool)
    .await)
    .map_err(StoreError::from)?;
    Ok(row.unwrap_or_default())
}

/// The preferences as typed in the form.
#[derive(Clone, Debug, Default, Serialize)]
pub struct PrefsForm {
    pub mail: bool,
    pub sms: bool,
    pub quiet_start: String,
    pub quiet_end: String,
}

impl PrefsForm {
    pub fn of(prefs: &Prefs) -> PrefsForm {
        PrefsForm {
            mail: prefs.mail,
            sms: prefs.sms,
            quiet_start: prefs.quiet_start.map(hhmm).unwrap_or_default(),
            quiet_end: prefs.quiet_end.map(hhmm).unwrap_or_default(),
        }
    }
}

/// Checks the form against what the user can be reached at: mail needs an address, SMS a
/// phone number; quiet hours need both ends.
pub fn check(form: &PrefsForm, has_email: bool, has_phone: bool) -> Result<Prefs, Vec<Problem>> {
    let mut problems = Vec::new();
    if form.mail && !has_email {
        problems.push(("mail", "oncall_routing.problems.no_email"));
    }
    if form.sms && !has_phone {
        problems.push(("sms", "oncall_routing.problems.no_phone"));
    }
    let start = Some(form.quiet_start.trim()).filter(|t| !t.is_empty());
    let end = Some(form.quiet_end.trim()).filter(|t| !t.is_empty());
    let (quiet_start, quiet_end) = match (start, end) {
        (None, None) => (None, None),
        (Some(s), Some(e)) => {
            let (s, e) = (parse_hhmm(s), parse_hhmm(e));
            if s.is_none() {
                problems.push(("quiet_start", "oncall_routing.problems.time"));
            }
            if e.is_none() {
                problems.push(("quiet_end", "oncall_routing.problems.time"));
            }
            (s, e)
        }
        (None, Some(_)) => {
            problems.push(("quiet_start", "oncall_routing.problems.window_both"));
            (None, None)
        }
        (Some(_), None) => {
            problems.push(("quiet_end", "oncall_routing.problems.window_both"));
            (None, None)
        }
    };
    if !problems.is_empty() {
        return Err(problems);
    }
    Ok(Prefs {
        mail: form.mail,
        sms: form.sms,
        quiet_start,
        quiet_end,
    })
}

/// Stores a user's preferences; audited with the state before and after.
pub async fn save(
    store: &Store,
    actor: &Actor,
    ip: Option<&str>,
    user_id: i64,
    prefs: &Prefs,
) -> Result<(), OncallError> {
    let before = load(store, user_id).await?;
    let mut tx = store.begin().await?;
    on_tx!(&mut tx, conn => sqlx::query(
        "INSERT INTO oncall_notify_prefs (user_id, mail, sms, quiet_start, quiet_end, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (user_id) DO UPDATE SET mail = excluded.mail, sms = excluded.sms,
             quiet_start = excluded.quiet_start, quiet_end = excluded.quiet_end,
             updated_at = excluded.updated_at",
    )
    .bind(user_id)
    .bind(prefs.mail)
    .bind(prefs.sms)
    .bind(prefs.quiet_start)
    .bind(prefs.quiet_end)
    .bind(vigie_core::time::now())
    .execute(conn)
    .await
    .map(drop))
    .map_err(StoreError::from)?;
    vigie_core::audit::record(
        &mut tx,
        Entry::new(Some(actor), ip, "oncall.prefs_update")
            .target("user", user_id, actor.login.clone())
            .change(
                serde_json::to_value(&before).ok(),
                serde_json::to_value(prefs).ok(),
            ),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

fn page_error(e: OncallError, viewer: &Viewer) -> PageError {
    match e {
        OncallError::Store(s) => s.into(),
        OncallError::Auth(a) => a.into(),
        OncallError::NotFound => PageError::NotFound(viewer.lang),
        other => PageError::Internal(other.to_string()),
    }
}

async fn render(
    viewer: &Viewer,
    console: &Console,
    store: &Store,
    status: StatusCode,
    form: &PrefsForm,
    errors: HashMap<String, String>,
) -> Result<HttpResponse, PageError> {
    let user = vigie_auth::get_user(store, viewer.user.user_id)
        .await?
        .ok_or(PageError::NotFound(viewer.lang))?;
    let mut context = Context::new();
    context.insert("form", form);
    context.insert("errors", &errors);
    context.insert("email", &user.email);
    context.insert("phone", &user.phone);
    context.insert(
        "user_tz",
        &user.timezone.unwrap_or_else(|| viewer.tz.name().to_owned()),
    );
    Ok(console.renderer.page(
        status,
        "oncall/prefs_notifications.html",
        viewer.lang,
        Some(viewer),
        context,
    ))
}

async fn page(
    viewer: Viewer,
    console: web::Data<Console>,
    store: web::Data<Store>,
) -> Result<HttpResponse, PageError> {
    let prefs = load(&store, viewer.user.user_id)
        .await
        .map_err(|e| page_error(e, &viewer))?;
    render(
        &viewer,
        &console,
        &store,
        StatusCode::OK,
        &PrefsForm::of(&prefs),
        HashMap::new(),
    )
    .await
}

async fn submit(
    viewer: Viewer,
    body: web::Bytes,
    console: web::Data<Console>,
    store: web::Data<Store>,
) -> Result<HttpResponse, PageError> {
    let data = FormData::parse(&body);
    viewer.check_csrf(data.get("_csrf"))?;
    let form = PrefsForm {
        mail: data.checked("mail"),
        sms: data.checked("sms"),
        quiet_start: data.text("quiet_start"),
        quiet_end: data.text("quiet_end"),
    };
    let user = vigie_auth::get_user(&store, viewer.user.user_id)
        .await?
        .ok_or(PageError::NotFound(viewer.lang))?;
    let present = |v: &Option<String>| v.as_deref().is_some_and(|s| !s.trim().is_empty());
    match check(&form, present(&user.email), present(&user.phone)) {
        Err(problems) => {
            let errors = problems
                .iter()
                .map(|(field, key)| ((*field).to_owned(), viewer.text(key)))
                .collect();
            render(
                &viewer,
                &console,
                &store,
                StatusCode::UNPROCESSABLE_ENTITY,
                &form,
                errors,
            )
            .await
        }
        Ok(prefs) => {
            save(
                &store,
                &viewer.actor(),
                viewer.ip(),
                viewer.user.user_id,
                &prefs,
            )
            .await
            .map_err(|e| page_error(e, &viewer))?;
            vigie_console::flash(
                &store,
                &viewer,
                "success",
                "oncall_routing.prefs_saved",
                None,
            )
            .await?;
            Ok(vigie_console::see_other("/account/notifications"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quiet_hours_are_read_in_the_users_zone() {
        let prefs = Prefs {
            quiet_start: Some(22 * 60),
            quiet_end: Some(7 * 60),
            ..Prefs::default()
        };
        let at = |s: &str| {
            DateTime::parse_from_rfc3339(s)
                .map(|t| t.with_timezone(&Utc))
                .unwrap_or_default()
        };
        // 21:30 UTC is 22:30 in Paris (winter): quiet there, not in UTC.
        assert!(prefs.quiet_at(at("2026-11-21T21:30:00Z"), chrono_tz::Europe::Paris));
        assert!(!prefs.quiet_at(at("2026-11-21T21:30:00Z"), chrono_tz::UTC));
        assert!(prefs.quiet_at(at("2026-11-21T05:00:00Z"), chrono_tz::UTC));
        assert!(!Prefs::default().quiet_at(at("2026-11-21T23:00:00Z"), chrono_tz::UTC));
    }

    #[test]
    fn channels_need_the_details_to_reach_the_user() {
        let form = PrefsForm {
            mail: true,
            sms: true,
            quiet_start: "22:00".into(),
            quiet_end: String::new(),
        };
        let problems = check(&form, true, false).err().unwrap_or_default();
        let fields: Vec<&str> = problems.iter().map(|(f, _)| *f).collect();
        assert_eq!(fields, ["sms", "quiet_end"]);
        let ok = PrefsForm {
            mail: true,
            sms: false,
            quiet_start: "22:00".into(),
            quiet_end: "07:00".into(),
        };
        assert_eq!(
            check(&ok, true, false).ok(),
            Some(Prefs {
                mail: true,
                sms: false,
                quiet_start: Some(1320),
                quiet_end: Some(420)
            })
        );
    }
}
