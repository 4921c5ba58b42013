//! The logged-in person behind a console request, and the checks every page makes with it:
//! the permission (server-side, whatever the menu shows) and, on forms, the CSRF token.

use std::future::Future;
use std::pin::Pin;

use actix_web::cookie::{Cookie, SameSite};
use actix_web::dev::Payload;
use actix_web::http::header::ACCEPT_LANGUAGE;
use actix_web::{FromRequest, HttpRequest, web};
use serde::Serialize;
use vigie_auth::menus::{self, NavItem};
use vigie_auth::session::{self, Flash, NoSession, SessionUser};
use vigie_core::role::{Permission, PermissionSet};
use vigie_core::secret::constant_time_eq;
use vigie_core::store::Store;

use crate::Console;
use crate::error::PageError;
use crate::i18n::Lang;
use crate::render::Renderer;

pub(crate) const SESSION_COOKIE: &str = "vigie_session";
/// The login in progress (between password, second factor and "already connected").
pub(crate) const PENDING_COOKIE: &str = "vigie_pending";
/// The CSRF token of forms shown before there is a session (login, activation).
pub(crate) const PRE_CSRF_COOKIE: &str = "vigie_csrf";

/// A flash message, resolved to the viewer's language.
#[derive(Clone, Debug, Serialize)]
pub struct FlashView {
    pub kind: String,
    pub text: String,
}

/// The logged-in user of a console request.
pub struct Viewer {
    pub user: SessionUser,
    pub lang: Lang,
    pub tz: chrono_tz::Tz,
    pub permissions: PermissionSet,
    pub nav: Vec<NavItem>,
    pub flash: Option<FlashView>,
    pub ip: Option<String>,
    /// The path of the request, for the navigation's current item.
    pub path: String,
}

impl Viewer {
    /// Refuses with 403 unless the viewer holds the permission.
    pub fn require(&self, permission: Permission) -> Result<(), PageError> {
        if self.permissions.contains(permission) {
            Ok(())
        } else {
            Err(PageError::Forbidden(self.lang))
        }
    }

    /// Refuses with 403 unless the form carries this session's CSRF token.
    pub fn check_csrf(&self, token: Option<&str>) -> Result<(), PageError> {
        match token {
            Some(t) if constant_time_eq(t.as_bytes(), self.user.csrf.as_bytes()) => Ok(()),
            _ => {
                tracing::warn!(login = %self.user.login, path = %self.path, "Form refused: missing or wrong CSRF token.");
                Err(PageError::Csrf(self.lang))
            }
        }
    }

    pub fn actor(&self) -> vigie_core::audit::Actor {
        self.user.actor()
    }

    pub fn ip(&self) -> Option<&str> {
        self.ip.as_deref()
    }

    pub fn text(&self, key: &str) -> String {
        Renderer::get().map_or_else(|_| key.to_owned(), |r| r.locales.text(self.lang, key))
    }
}

/// The client's address as the hub sees it (the TCP peer; proxies are not trusted).
pub(crate) fn client_ip(req: &HttpRequest) -> Option<String> {
    req.peer_addr().map(|a| a.ip().to_string())
}

/// The language for a request without a session.
pub(crate) fn request_lang(req: &HttpRequest, default: Lang) -> Lang {
    let header = req
        .headers()
        .get(ACCEPT_LANGUAGE)
        .and_then(|v| v.to_str().ok());
    Lang::negotiate(None, header, default)
}

/// Whether cookies must be `Secure`: the hub is reached over TLS, directly or as configured.
pub(crate) fn secure(req: &HttpRequest, console: &Console) -> bool {
    console
        .settings
        .public_url
        .as_deref()
        .is_some_and(|u| u.starts_with("https://"))
        || req.connection_info().scheme() == "https"
}

/// A cookie with the console's attributes: `HttpOnly`, `SameSite=Lax`, path `/`, `Secure` over
/// TLS, no expiry (the store decides how long a session lives).
pub(crate) fn cookie(name: &'static str, value: String, secure: bool) -> Cookie<'static> {
    Cookie::build(name, value)
        .path("/")
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(secure)
        .finish()
}

/// A cookie that removes `name`.
pub(crate) fn removal(name: &'static str, secure: bool) -> Cookie<'static> {
    let mut c = cookie(name, String::new(), secure);
    c.make_removal();
    c
}

/// Paths a user who must first change their password or enrol a second factor may still open.
fn allowed_while_gated(path: &str, gate: &str) -> bool {
    path == gate || path == "/logout" || path.starts_with("/static/")
}

async fn load(req: HttpRequest) -> Result<Viewer, PageError> {
    let path = req.path().to_owned();
    let next = match req.query_string() {
        "" => path.clone(),
        q => format!("{path}?{q}"),
    };
    let console = req
        .app_data::<web::Data<Console>>()
        .cloned()
        .ok_or_else(|| PageError::Internal("no console state registered".into()))?;
    let store = req
        .app_data::<web::Data<Store>>()
        .cloned()
        .ok_or_else(|| PageError::Internal("no store registered".into()))?;
    let Some(token) = req.cookie(SESSION_COOKIE).map(|c| c.value().to_owned()) else {
        return Err(PageError::Login {
            next,
            expired: false,
        });
    };
    let user = match session::lookup(&store, &token, console.settings.sessions).await? {
        Ok(user) => user,
        Err(reason) => {
            return Err(PageError::Login {
                next,
                expired: matches!(reason, NoSession::Expired | NoSession::Replaced),
            });
        }
    };
    let accept = req
        .headers()
        .get(ACCEPT_LANGUAGE)
        .and_then(|v| v.to_str().ok());
    let lang = Lang::negotiate(user.lang.as_deref(), accept, console.settings.default_lang);
    let role = user.role();
    if user.must_change_password && !allowed_while_gated(&path, "/account/password") {
        return Err(PageError::Redirect("/account/password".into()));
    }
    if !user.totp_enabled
        && !allowed_while_gated(&path, "/account/totp")
        && vigie_auth::login::totp_required(&store, role).await?
    {
        return Err(PageError::Redirect("/account/totp".into()));
    }
    let tz = user
        .timezone
        .as_deref()
        .and_then(|tz| tz.parse().ok())
        .unwrap_or(console.settings.timezone);
    let all_menus = menus::for_user(&store, user.user_id, role).await?;
    let permissions = menus::permissions(&all_menus, role);
    let nav = menus::navigation(&all_menus, role, lang == Lang::Fr);
    // Only pages show (and so consume) the flash message; scripts' requests (live tail, counts,
    // streams) leave it for the next page.
    let wants_page = req
        .headers()
        .get(actix_web::http::header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("text/html"));
    let pending = if wants_page {
        session::take_flash(&store, &user).await?
    } else {
        None
    };
    let flash = pending.map(|f: Flash| {
        let mut text =
            Renderer::get().map_or_else(|_| f.key.clone(), |r| r.locales.text(lang, &f.key));
        if let Some(arg) = f.arg {
            text = format!("{text} {arg}");
        }
        FlashView { kind: f.kind, text }
    });
    Ok(Viewer {
        user,
        lang,
        tz,
        permissions,
        nav,
        flash,
        ip: client_ip(&req),
        path,
    })
}

impl FromRequest for Viewer {
    type Error = PageError;
    type Future = Pin<Box<dyn Future<Output = Result<Viewer, PageError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        Box::pin(load(req.clone()))
    }
}

/// Leaves a message for the viewer's next page.
pub async fn flash(
    store: &Store,
    viewer: &Viewer,
    kind: &str,
    key: &str,
    arg: Option<String>,
) -> Result<(), PageError> {
    session::set_flash(
        store,
        viewer.user.session_id,
        &Flash {
            kind: kind.to_owned(),
            key: key.to_owned(),
            arg,
        },
    )
    .await?;
    Ok(())
}
