//! Administration › Security: which roles must log in with a second factor.

use actix_web::{HttpResponse, web};
use vigie_auth::login;
use vigie_core::role::{Permission, Role};
use vigie_core::store::Store;

use super::{allowed, form, page};
use crate::error::{PageError, see_other};
use crate::viewer::flash;
use crate::{Console, Viewer};

pub(super) fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/admin/security", web::get().to(show))
        .route("/admin/security", web::post().to(save));
}

async fn show(
    viewer: Viewer,
    console: web::Data<Console>,
    store: web::Data<Store>,
) -> Result<HttpResponse, PageError> {
    let mut context = allowed(&viewer, Permission::AdminSecurity)?;
    let roles: Vec<(&str, String, bool)> = login::totp_requirements(&store)
        .await?
        .into_iter()
        .map(|(role, required)| {
            (
                role.as_str(),
                viewer.text(&format!("role.{}", role.as_str())),
                required,
            )
        })
        .collect();
    context.insert("roles", &roles);
    context.insert("lockout_threshold", &console.settings.lockout.threshold);
    context.insert(
        "lockout_minutes",
        &(console.settings.lockout.base.as_secs() / 60).max(1),
    );
    context.insert(
        "idle_minutes",
        &(console.settings.sessions.idle.as_secs() / 60),
    );
    context.insert(
        "lifetime_hours",
        &(console.settings.sessions.lifetime.as_secs() / 3600),
    );
    Ok(page(
        &console,
        &viewer,
        "console/admin/security.html",
        context,
    ))
}

async fn save(
    viewer: Viewer,
    body: web::Bytes,
    store: web::Data<Store>,
) -> Result<HttpResponse, PageError> {
    viewer.require(Permission::AdminSecurity)?;
    let data = form(&viewer, &body)?;
    let required: Vec<Role> = data
        .all("totp")
        .into_iter()
        .filter_map(|r| r.parse().ok())
        .collect();
    let actor = viewer.actor();
    login::set_totp_requirements(&store, &actor, viewer.ip(), &required).await?;
    flash(&store, &viewer, "success", "security.saved", None).await?;
    Ok(see_other("/admin/security"))
}
