//! The console's own pages, and the helpers they share.

mod account;
mod assets;
mod audit;
mod auth;
mod home;
mod menus;
mod security;
mod users;

use std::collections::BTreeMap;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use tera::Context;
use vigie_auth::Problem;
use vigie_core::role::Permission;

use crate::Console;
use crate::error::PageError;
use crate::form::FormData;
use crate::i18n::Lang;
use crate::viewer::Viewer;

pub(crate) fn configure(cfg: &mut web::ServiceConfig) {
    assets::configure(cfg);
    auth::configure(cfg);
    home::configure(cfg);
    account::configure(cfg);
    users::configure(cfg);
    menus::configure(cfg);
    security::configure(cfg);
    audit::configure(cfg);
}

/// A page for the logged-in viewer.
pub(crate) fn page(
    console: &Console,
    viewer: &Viewer,
    name: &str,
    context: Context,
) -> HttpResponse {
    console
        .renderer
        .page(StatusCode::OK, name, viewer.lang, Some(viewer), context)
}

/// A page answered with another status (a form re-displayed with its errors: 422).
pub(crate) fn page_status(
    console: &Console,
    viewer: &Viewer,
    status: StatusCode,
    name: &str,
    context: Context,
) -> HttpResponse {
    console
        .renderer
        .page(status, name, viewer.lang, Some(viewer), context)
}

/// Field → message in the viewer's language, for the form's template.
pub(crate) fn field_errors(
    console: &Console,
    lang: Lang,
    problems: &[Problem],
) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for (field, key) in problems {
        out.entry((*field).to_owned()).or_insert_with(|| {
            console
                .renderer
                .locales
                .text(lang, &format!("problems.{key}"))
        });
    }
    out
}

/// Reads a form body and checks its CSRF token against the viewer's session.
pub(crate) fn form(viewer: &Viewer, body: &web::Bytes) -> Result<FormData, PageError> {
    let form = FormData::parse(body);
    viewer.check_csrf(form.get("_csrf"))?;
    Ok(form)
}

/// Refuses unless the viewer holds the permission, then gives a fresh context.
pub(crate) fn allowed(viewer: &Viewer, permission: Permission) -> Result<Context, PageError> {
    viewer.require(permission)?;
    Ok(Context::new())
}

/// A local path to go back to after a login; anything else (another site, `//host`) is refused.
pub(crate) fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n)
            if n.starts_with('/')
                && !n.starts_with("//")
                && !n.starts_with("/\\")
                && !n.chars().any(|c| c.is_control())
                && n.len() <= 2000 =>
        {
            n.to_owned()
        }
        _ => "/".to_owned(),
    }
}

/// The query string as a map (first value of each key).
pub(crate) fn query(req: &HttpRequest) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for (k, v) in form_urlencoded::parse(req.query_string().as_bytes()) {
        out.entry(k.into_owned())
            .or_insert_with(|| v.chars().take(500).collect());
    }
    out
}

/// Whether a time zone name is one the hub knows (IANA names).
pub(crate) fn valid_timezone(name: &str) -> bool {
    name.parse::<chrono_tz::Tz>().is_ok()
}

#[cfg(test)]
mod tests {
    use super::safe_next;

    #[test]
    fn only_local_paths_are_followed_after_login() {
        assert_eq!(safe_next(Some("/alerts?x=1")), "/alerts?x=1");
        assert_eq!(safe_next(Some("//evil.example")), "/");
        assert_eq!(safe_next(Some("/\\evil.example")), "/");
        assert_eq!(safe_next(Some("https://evil.example/")), "/");
        assert_eq!(safe_next(None), "/");
    }
}
