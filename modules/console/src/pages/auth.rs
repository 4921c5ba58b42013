//! Logging in and out, and activating an account.
//!
//! The login is a small state machine kept in the store (`login_challenges`), referenced by the
//! `vigie_pending` cookie: password → (second factor) → ("already connected elsewhere?") →
//! session. Forms shown before a session exists carry a CSRF token that must match the
//! `vigie_csrf` cookie (double submit).

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use tera::Context;
use vigie_auth::login::{self, Verdict};
use vigie_auth::session::{self, Stage};
use vigie_core::audit::{Actor, Entry};
use vigie_core::secret::{constant_time_eq, new_token};
use vigie_core::store::Store;

use super::{field_errors, query, safe_next};
use crate::Console;
use crate::error::{PageError, encode, see_other};
use crate::form::FormData;
use crate::i18n::Lang;
use crate::viewer::{
    PENDING_COOKIE, PRE_CSRF_COOKIE, SESSION_COOKIE, client_ip, cookie, removal, request_lang,
    secure,
};

pub(super) fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/login", web::get().to(login_form))
        .route("/login", web::post().to(login_submit))
        .route("/login/totp", web::get().to(totp_form))
        .route("/login/totp", web::post().to(totp_submit))
        .route("/login/confirm", web::get().to(confirm_form))
        .route("/login/confirm", web::post().to(confirm_submit))
        .route("/logout", web::post().to(logout))
        .route("/activate/{token}", web::get().to(activate_form))
        .route("/activate/{token}", web::post().to(activate_submit));
}

/// The pre-session CSRF token: the cookie's, or a new one (set on the answer).
fn pre_csrf(req: &HttpRequest) -> (String, bool) {
    match req.cookie(PRE_CSRF_COOKIE) {
        Some(c) if c.value().len() >= 32 => (c.value().to_owned(), false),
        _ => (new_token("pre").unwrap_or_default(), true),
    }
}

fn check_pre_csrf(req: &HttpRequest, form: &FormData, lang: Lang) -> Result<(), PageError> {
    let cookie = req.cookie(PRE_CSRF_COOKIE);
    match (cookie, form.get("_csrf")) {
        (Some(c), Some(f))
            if !f.is_empty() && constant_time_eq(c.value().as_bytes(), f.as_bytes()) =>
        {
            Ok(())
        }
        _ => {
            tracing::warn!(path = %req.path(), "Form refused: missing or wrong CSRF token (no session).");
            Err(PageError::Csrf(lang))
        }
    }
}

/// Renders a page shown before login, setting the CSRF cookie when it is new.
fn bare_page(
    req: &HttpRequest,
    console: &Console,
    status: StatusCode,
    template: &str,
    lang: Lang,
    mut context: Context,
) -> HttpResponse {
    let (token, fresh) = pre_csrf(req);
    context.insert("csrf", &token);
    let mut response = console.renderer.page(status, template, lang, None, context);
    if fresh {
        let _ = response.add_cookie(&cookie(PRE_CSRF_COOKIE, token, secure(req, console)));
    }
    response
}

async fn has_session(req: &HttpRequest, store: &Store, console: &Console) -> bool {
    match req.cookie(SESSION_COOKIE) {
        Some(c) => matches!(
            session::lookup(store, c.value(), console.settings.sessions).await,
            Ok(Ok(_))
        ),
        None => false,
    }
}

async fn login_form(
    req: HttpRequest,
    console: web::Data<Console>,
    store: web::Data<Store>,
) -> Result<HttpResponse, PageError> {
    let q = query(&req);
    if has_session(&req, &store, &console).await {
        return Ok(see_other(&safe_next(q.get("next").map(String::as_str))));
    }
    let lang = request_lang(&req, console.settings.default_lang);
    let mut context = Context::new();
    context.insert("next", &safe_next(q.get("next").map(String::as_str)));
    context.insert("login", "");
    for notice in ["expired", "bye", "activated", "cancelled", "restart"] {
        if q.contains_key(notice) {
            context.insert("notice", notice);
        }
    }
    Ok(bare_page(
        &req,
        &console,
        StatusCode::OK,
        "console/login.html",
        lang,
        context,
    ))
}

fn refused(
    req: &HttpRequest,
    console: &Console,
    lang: Lang,
    login: &str,
    next: &str,
) -> HttpResponse {
    let mut context = Context::new();
    context.insert("next", next);
    context.insert("login", login);
    context.insert(
        "error",
        &console.renderer.locales.text(lang, "auth.refused"),
    );
    bare_page(
        req,
        console,
        StatusCode::UNAUTHORIZED,
        "console/login.html",
        lang,
        context,
    )
}

async fn login_submit(
    req: HttpRequest,
    body: web::Bytes,
    console: web::Data<Console>,
    store: web::Data<Store>,
) -> Result<HttpResponse, PageError> {
    let lang = request_lang(&req, console.settings.default_lang);
    let form = FormData::parse(&body);
    check_pre_csrf(&req, &form, lang)?;
    let next = safe_next(form.get("next"));
    let login_name: String = form.text("login").trim().chars().take(200).collect();
    let password = form.text("password");
    let ip = client_ip(&req);
    if login_name.is_empty() || password.is_empty() {
        return Ok(refused(&req, &console, lang, &login_name, &next));
    }
    let verdict = login::authenticate(
        &store,
        &login_name,
        &password,
        ip.as_deref(),
        console.settings.lockout,
    )
    .await?;
    let accepted = match verdict {
        Verdict::Refused => return Ok(refused(&req, &console, lang, &login_name, &next)),
        Verdict::Accepted(a) => a,
    };
    if accepted.totp_enabled {
        let token =
            session::challenge(&store, accepted.actor.user_id, Stage::Totp, ip.as_deref()).await?;
        let mut response = see_other(&format!("/login/totp?next={}", encode(&next)));
        let _ = response.add_cookie(&cookie(PENDING_COOKIE, token, secure(&req, &console)));
        return Ok(response);
    }
    after_factors(&req, &console, &store, &accepted.actor, &next).await
}

/// The credentials are complete: ask about another open session, or open this one.
async fn after_factors(
    req: &HttpRequest,
    console: &Console,
    store: &Store,
    actor: &Actor,
    next: &str,
) -> Result<HttpResponse, PageError> {
    let ip = client_ip(req);
    if session::has_open_session(store, actor.user_id, console.settings.sessions).await? {
        let token = session::challenge(store, actor.user_id, Stage::Confirm, ip.as_deref()).await?;
        let mut response = see_other(&format!("/login/confirm?next={}", encode(next)));
        let _ = response.add_cookie(&cookie(PENDING_COOKIE, token, secure(req, console)));
        return Ok(response);
    }
    open_session(req, console, store, actor, next, false).await
}

async fn open_session(
    req: &HttpRequest,
    console: &Console,
    store: &Store,
    actor: &Actor,
    next: &str,
    replace: bool,
) -> Result<HttpResponse, PageError> {
    let ip = client_ip(req);
    let agent = req
        .headers()
        .get(actix_web::http::header::USER_AGENT)
        .and_then(|v| v.to_str().ok());
    let token = session::open(
        store,
        actor,
        ip.as_deref(),
        agent,
        console.settings.sessions,
        replace,
    )
    .await?;
    let secure = secure(req, console);
    let mut response = see_other(next);
    let _ = response.add_cookie(&cookie(SESSION_COOKIE, token, secure));
    let _ = response.add_cookie(&removal(PENDING_COOKIE, secure));
    Ok(response)
}

/// The live challenge of the pending cookie at the expected stage, with its user.
async fn pending(
    req: &HttpRequest,
    store: &Store,
    stage: Stage,
) -> Result<Option<(String, Actor, i32)>, PageError> {
    let Some(token) = req.cookie(PENDING_COOKIE).map(|c| c.value().to_owned()) else {
        return Ok(None);
    };
    let Some((user_id, found, attempts)) = session::challenge_get(store, &token).await? else {
        return Ok(None);
    };
    if found != stage {
        return Ok(None);
    }
    let Some(user) = vigie_auth::get_user(store, user_id).await? else {
        return Ok(None);
    };
    if user.disabled {
        return Ok(None);
    }
    let actor = Actor {
        user_id,
        login: user.login.clone(),
        role: user.role(),
    };
    Ok(Some((token, actor, attempts)))
}

fn restart() -> HttpResponse {
    see_other("/login?restart=1")
}

/// The page of a login step, shown only while that step's challenge is live.
async fn step_form(
    req: HttpRequest,
    console: web::Data<Console>,
    store: web::Data<Store>,
    stage: Stage,
    template: &str,
) -> Result<HttpResponse, PageError> {
    let lang = request_lang(&req, console.settings.default_lang);
    if pending(&req, &store, stage).await?.is_none() {
        return Ok(restart());
    }
    let mut context = Context::new();
    context.insert(
        "next",
        &safe_next(query(&req).get("next").map(String::as_str)),
    );
    Ok(bare_page(
        &req,
        &console,
        StatusCode::OK,
        template,
        lang,
        context,
    ))
}

async fn totp_form(
    req: HttpRequest,
    console: web::Data<Console>,
    store: web::Data<Store>,
) -> Result<HttpResponse, PageError> {
    step_form(req, console, store, Stage::Totp, "console/login_totp.html").await
}

async fn totp_submit(
    req: HttpRequest,
    body: web::Bytes,
    console: web::Data<Console>,
    store: web::Data<Store>,
) -> Result<HttpResponse, PageError> {
    let lang = request_lang(&req, console.settings.default_lang);
    let form = FormData::parse(&body);
    check_pre_csrf(&req, &form, lang)?;
    let next = safe_next(form.get("next"));
    let Some((token, actor, _)) = pending(&req, &store, Stage::Totp).await? else {
        return Ok(restart());
    };
    if login::verify_second_factor(&store, &actor, &form.text("code")).await? {
        session::challenge_drop(&store, &token).await?;
        return after_factors(&req, &console, &store, &actor, &next).await;
    }
    let ip = client_ip(&req);
    let attempts = session::challenge_failed(&store, &token).await?;
    vigie_core::audit::record_alone(
        &store,
        Entry::new(Some(&actor), ip.as_deref(), "auth.login_failed")
            .target("user", actor.user_id, &actor.login)
            .change(
                None,
                Some(serde_json::json!({"reason": "bad_second_factor", "attempts": attempts})),
            ),
    )
    .await?;
    if attempts >= session::CHALLENGE_ATTEMPTS {
        session::challenge_drop(&store, &token).await?;
        return Ok(restart());
    }
    let mut context = Context::new();
    context.insert("next", &next);
    context.insert(
        "error",
        &console.renderer.locales.text(lang, "auth.totp_wrong"),
    );
    Ok(bare_page(
        &req,
        &console,
        StatusCode::UNAUTHORIZED,
        "console/login_totp.html",
        lang,
        context,
    ))
}

async fn confirm_form(
    req: HttpRequest,
    console: web::Data<Console>,
    store: web::Data<Store>,
) -> Result<HttpResponse, PageError> {
    step_form(
        req,
        console,
        store,
        Stage::Confirm,
        "console/login_confirm.html",
    )
    .await
}

async fn confirm_submit(
    req: HttpRequest,
    body: web::Bytes,
    console: web::Data<Console>,
    store: web::Data<Store>,
) -> Result<HttpResponse, PageError> {
    let lang = request_lang(&req, console.settings.default_lang);
    let form = FormData::parse(&body);
    check_pre_csrf(&req, &form, lang)?;
    let next = safe_next(form.get("next"));
    let Some((token, actor, _)) = pending(&req, &store, Stage::Confirm).await? else {
        return Ok(restart());
    };
    session::challenge_drop(&store, &token).await?;
    if form.get("choice") == Some("continue") {
        return open_session(&req, &console, &store, &actor, &next, true).await;
    }
    let ip = client_ip(&req);
    vigie_core::audit::record_alone(
        &store,
        Entry::new(Some(&actor), ip.as_deref(), "auth.login_cancelled").target(
            "user",
            actor.user_id,
            &actor.login,
        ),
    )
    .await?;
    let mut response = see_other("/login?cancelled=1");
    let _ = response.add_cookie(&removal(PENDING_COOKIE, secure(&req, &console)));
    Ok(response)
}

async fn logout(
    req: HttpRequest,
    viewer: crate::Viewer,
    body: web::Bytes,
    console: web::Data<Console>,
    store: web::Data<Store>,
) -> Result<HttpResponse, PageError> {
    super::form(&viewer, &body)?;
    session::logout(&store, &viewer.user, viewer.ip()).await?;
    let mut response = see_other("/login?bye=1");
    let _ = response.add_cookie(&removal(SESSION_COOKIE, secure(&req, &console)));
    Ok(response)
}

async fn activate_form(
    req: HttpRequest,
    token: web::Path<String>,
    console: web::Data<Console>,
    store: web::Data<Store>,
) -> Result<HttpResponse, PageError> {
    let user = vigie_auth::peek_link(&store, &token).await?;
    let lang = match &user {
        Some(u) => Lang::negotiate(
            u.lang.as_deref(),
            None,
            request_lang(&req, console.settings.default_lang),
        ),
        None => request_lang(&req, console.settings.default_lang),
    };
    let mut context = Context::new();
    match user {
        Some(u) => {
            context.insert("login", &u.login);
            context.insert("valid", &true);
        }
        None => context.insert("valid", &false),
    }
    context.insert(
        "errors",
        &std::collections::BTreeMap::<String, String>::new(),
    );
    Ok(bare_page(
        &req,
        &console,
        StatusCode::OK,
        "console/activate.html",
        lang,
        context,
    ))
}

async fn activate_submit(
    req: HttpRequest,
    token: web::Path<String>,
    body: web::Bytes,
    console: web::Data<Console>,
    store: web::Data<Store>,
) -> Result<HttpResponse, PageError> {
    let lang = request_lang(&req, console.settings.default_lang);
    let form = FormData::parse(&body);
    check_pre_csrf(&req, &form, lang)?;
    let Some(user) = vigie_auth::peek_link(&store, &token).await? else {
        let mut context = Context::new();
        context.insert("valid", &false);
        context.insert(
            "errors",
            &std::collections::BTreeMap::<String, String>::new(),
        );
        return Ok(bare_page(
            &req,
            &console,
            StatusCode::GONE,
            "console/activate.html",
            lang,
            context,
        ));
    };
    let password = form.text("password");
    let confirm = form.text("confirm");
    if let Some(problem) = vigie_auth::check_new_password(&password, &confirm, &user.login) {
        let mut context = Context::new();
        context.insert("valid", &true);
        context.insert("login", &user.login);
        context.insert("errors", &field_errors(&console, lang, &[problem]));
        return Ok(bare_page(
            &req,
            &console,
            StatusCode::UNPROCESSABLE_ENTITY,
            "console/activate.html",
            lang,
            context,
        ));
    }
    let ip = client_ip(&req);
    match vigie_auth::use_link(&store, &token, &password, ip.as_deref()).await {
        Ok(_) => Ok(see_other("/login?activated=1")),
        Err(vigie_auth::AuthError::LinkInvalid) => {
            let mut context = Context::new();
            context.insert("valid", &false);
            context.insert(
                "errors",
                &std::collections::BTreeMap::<String, String>::new(),
            );
            Ok(bare_page(
                &req,
                &console,
                StatusCode::GONE,
                "console/activate.html",
                lang,
                context,
            ))
        }
        Err(e) => Err(e.into()),
    }
}
