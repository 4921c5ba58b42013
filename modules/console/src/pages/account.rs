//! The user's own account: preferences (language, time zone), password, second factor, API
//! tokens. Open to every logged-in user; each acts on the viewer only.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use qrcode::QrCode;
use qrcode::render::svg;
use tera::Context;
use vigie_auth::{AuthError, login};
use vigie_core::store::Store;

use super::{field_errors, form, page, page_status, valid_timezone};
use crate::error::{PageError, see_other};
use crate::viewer::flash;
use crate::{Console, Viewer};

pub(super) fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/account", web::get().to(profile))
        .route("/account", web::post().to(profile_submit))
        .route("/account/password", web::get().to(password_form))
        .route("/account/password", web::post().to(password_submit))
        .route("/account/totp", web::get().to(totp_page))
        .route("/account/totp", web::post().to(totp_confirm))
        .route("/account/totp/disable", web::post().to(totp_disable))
        .route("/account/tokens", web::get().to(tokens))
        .route("/account/tokens", web::post().to(token_create))
        .route("/account/tokens/{id}/revoke", web::post().to(token_revoke));
}

/// The account page; `typed` is the form as the user sent it (kept when it has problems).
async fn profile_page(
    viewer: &Viewer,
    console: &Console,
    store: &Store,
    typed: Option<(&str, &str)>,
    problems: &[vigie_auth::Problem],
) -> Result<HttpResponse, PageError> {
    let user = vigie_auth::get_user(store, viewer.user.user_id)
        .await?
        .ok_or(PageError::NotFound(viewer.lang))?;
    let (lang, timezone) = match typed {
        Some((lang, tz)) => (lang.to_owned(), tz.to_owned()),
        None => (
            user.lang.clone().unwrap_or_default(),
            user.timezone.clone().unwrap_or_default(),
        ),
    };
    let mut context = Context::new();
    context.insert("user", &user);
    context.insert("timezone", &timezone);
    context.insert("pref_lang", &lang);
    context.insert("errors", &field_errors(console, viewer.lang, problems));
    let status = if problems.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    Ok(page_status(
        console,
        viewer,
        status,
        "console/account/profile.html",
        context,
    ))
}

async fn profile(
    viewer: Viewer,
    console: web::Data<Console>,
    store: web::Data<Store>,
) -> Result<HttpResponse, PageError> {
    profile_page(&viewer, &console, &store, None, &[]).await
}

async fn profile_submit(
    viewer: Viewer,
    body: web::Bytes,
    console: web::Data<Console>,
    store: web::Data<Store>,
) -> Result<HttpResponse, PageError> {
    let form = form(&viewer, &body)?;
    let lang = form.text("lang");
    let timezone = form.text("timezone").trim().to_owned();
    let mut problems = Vec::new();
    if !matches!(lang.as_str(), "" | "en" | "fr") {
        problems.push(("lang", "lang_unknown"));
    }
    if !timezone.is_empty() && !valid_timezone(&timezone) {
        problems.push(("timezone", "timezone_unknown"));
    }
    if !problems.is_empty() {
        return profile_page(
            &viewer,
            &console,
            &store,
            Some((&lang, &timezone)),
            &problems,
        )
        .await;
    }
    let actor = viewer.actor();
    vigie_auth::set_preferences(
        &store,
        &actor,
        viewer.ip(),
        (!lang.is_empty()).then_some(lang.as_str()),
        (!timezone.is_empty()).then_some(timezone.as_str()),
    )
    .await?;
    flash(&store, &viewer, "success", "account.saved", None).await?;
    Ok(see_other("/account"))
}

async fn password_form(
    viewer: Viewer,
    console: web::Data<Console>,
) -> Result<HttpResponse, PageError> {
    let mut context = Context::new();
    context.insert(
        "errors",
        &std::collections::BTreeMap::<String, String>::new(),
    );
    context.insert("forced", &viewer.user.must_change_password);
    Ok(page(
        &console,
        &viewer,
        "console/account/password.html",
        context,
    ))
}

async fn password_submit(
    viewer: Viewer,
    body: web::Bytes,
    console: web::Data<Console>,
    store: web::Data<Store>,
) -> Result<HttpResponse, PageError> {
    let form = form(&viewer, &body)?;
    let new = form.text("password");
    let problem = vigie_auth::check_new_password(&new, &form.text("confirm"), &viewer.user.login);
    let result = match problem {
        Some(p) => Err(AuthError::Form(vec![p])),
        None => {
            let actor = viewer.actor();
            vigie_auth::change_password(
                &store,
                &actor,
                viewer.ip(),
                &form.text("current"),
                &new,
                viewer.user.session_id,
            )
            .await
        }
    };
    match result {
        Ok(()) => {
            flash(&store, &viewer, "success", "account.password_changed", None).await?;
            Ok(see_other("/account"))
        }
        Err(AuthError::Form(problems)) => {
            let mut context = Context::new();
            context.insert("errors", &field_errors(&console, viewer.lang, &problems));
            context.insert("forced", &viewer.user.must_change_password);
            Ok(page_status(
                &console,
                &viewer,
                StatusCode::UNPROCESSABLE_ENTITY,
                "console/account/password.html",
                context,
            ))
        }
        Err(e) => Err(e.into()),
    }
}

fn qr_svg(url: &str) -> String {
    match QrCode::new(url.as_bytes()) {
        Ok(code) => code
            .render::<svg::Color<'_>>()
            .min_dimensions(200, 200)
            .quiet_zone(true)
            .build(),
        Err(e) => {
            tracing::error!(error = %e, "Cannot draw the enrolment QR code.");
            String::new()
        }
    }
}

async fn totp_context(viewer: &Viewer, store: &Store) -> Result<Context, PageError> {
    let mut context = Context::new();
    let required = login::totp_required(store, viewer.user.role()).await?;
    context.insert("required", &required);
    context.insert("enabled", &viewer.user.totp_enabled);
    if !viewer.user.totp_enabled {
        let pending =
            login::pending_enrolment(store, viewer.user.user_id, &viewer.user.login).await?;
        let (secret, url) = match pending {
            Some(p) => p,
            None => login::start_enrolment(store, viewer.user.user_id, &viewer.user.login).await?,
        };
        context.insert("secret", &secret);
        context.insert("qr", &qr_svg(&url));
    }
    Ok(context)
}

async fn totp_page(
    viewer: Viewer,
    console: web::Data<Console>,
    store: web::Data<Store>,
) -> Result<HttpResponse, PageError> {
    let context = totp_context(&viewer, &store).await?;
    Ok(page(
        &console,
        &viewer,
        "console/account/totp.html",
        context,
    ))
}

async fn totp_confirm(
    viewer: Viewer,
    body: web::Bytes,
    console: web::Data<Console>,
    store: web::Data<Store>,
) -> Result<HttpResponse, PageError> {
    let form = form(&viewer, &body)?;
    let actor = viewer.actor();
    match login::confirm_enrolment(&store, &actor, viewer.ip(), &form.text("code")).await? {
        Some(codes) => {
            let mut context = Context::new();
            context.insert("codes", &codes);
            Ok(page(
                &console,
                &viewer,
                "console/account/recovery.html",
                context,
            ))
        }
        None => {
            let mut context = totp_context(&viewer, &store).await?;
            context.insert("error", &viewer.text("problems.totp_wrong"));
            Ok(page_status(
                &console,
                &viewer,
                StatusCode::UNPROCESSABLE_ENTITY,
                "console/account/totp.html",
                context,
            ))
        }
    }
}

async fn totp_disable(
    viewer: Viewer,
    body: web::Bytes,
    console: web::Data<Console>,
    store: web::Data<Store>,
) -> Result<HttpResponse, PageError> {
    let form = form(&viewer, &body)?;
    if login::totp_required(&store, viewer.user.role()).await? {
        return Err(PageError::Forbidden(viewer.lang));
    }
    let actor = viewer.actor();
    // The password is asked again: a session left open must not be enough to drop the factor.
    let ok = matches!(
        login::authenticate(
            &store,
            &actor.login,
            &form.text("password"),
            viewer.ip(),
            console.settings.lockout
        )
        .await?,
        login::Verdict::Accepted(_)
    );
    if !ok {
        let mut context = totp_context(&viewer, &store).await?;
        context.insert("error", &viewer.text("problems.password_wrong"));
        return Ok(page_status(
            &console,
            &viewer,
            StatusCode::UNPROCESSABLE_ENTITY,
            "console/account/totp.html",
            context,
        ));
    }
    login::disable_totp(&store, &actor, viewer.ip(), &actor).await?;
    flash(&store, &viewer, "success", "account.totp_disabled", None).await?;
    Ok(see_other("/account"))
}

async fn tokens_page(
    viewer: &Viewer,
    console: &Console,
    store: &Store,
    status: StatusCode,
    mut context: Context,
) -> Result<HttpResponse, PageError> {
    let list = vigie_auth::list_tokens(store, viewer.user.user_id).await?;
    context.insert("tokens", &list);
    if !context.contains_key("label") {
        context.insert("label", "");
    }
    if !context.contains_key("errors") {
        context.insert(
            "errors",
            &std::collections::BTreeMap::<String, String>::new(),
        );
    }
    Ok(page_status(
        console,
        viewer,
        status,
        "console/account/tokens.html",
        context,
    ))
}

async fn tokens(
    viewer: Viewer,
    console: web::Data<Console>,
    store: web::Data<Store>,
) -> Result<HttpResponse, PageError> {
    tokens_page(&viewer, &console, &store, StatusCode::OK, Context::new()).await
}

async fn token_create(
    viewer: Viewer,
    body: web::Bytes,
    console: web::Data<Console>,
    store: web::Data<Store>,
) -> Result<HttpResponse, PageError> {
    let form = form(&viewer, &body)?;
    let actor = viewer.actor();
    let mut context = Context::new();
    match vigie_auth::create_own_token(&store, &actor, viewer.ip(), &form.text("label")).await {
        Ok(token) => {
            context.insert("new_token", &token);
            tokens_page(&viewer, &console, &store, StatusCode::OK, context).await
        }
        Err(AuthError::Form(problems)) => {
            context.insert("errors", &field_errors(&console, viewer.lang, &problems));
            context.insert("label", &form.text("label"));
            tokens_page(
                &viewer,
                &console,
                &store,
                StatusCode::UNPROCESSABLE_ENTITY,
                context,
            )
            .await
        }
        Err(e) => Err(e.into()),
    }
}

async fn token_revoke(
    req: actix_web::HttpRequest,
    viewer: Viewer,
    id: web::Path<i64>,
    body: web::Bytes,
    store: web::Data<Store>,
) -> Result<HttpResponse, PageError> {
    form(&viewer, &body)?;
    let actor = viewer.actor();
    if !vigie_auth::revoke_own_token(&store, &actor, viewer.ip(), *id).await? {
        return Err(PageError::NotFound(viewer.lang));
    }
    // This process stops accepting it now; others within the cache's few seconds.
    if let Some(cache) = req.app_data::<web::Data<vigie_auth::TokenCache>>() {
        cache.forget(actor.user_id);
    }
    flash(&store, &viewer, "success", "account.token_revoked", None).await?;
    Ok(see_other("/account/tokens"))
}
