//! The home page, and the pages of modules whose screens arrive with their own issues: each
//! route exists and checks its permission now, so menus and permissions are complete.

use actix_web::{HttpRequest, HttpResponse, web};
use tera::Context;
use vigie_core::role::Permission;

use super::page;
use crate::error::PageError;
use crate::{Console, Viewer};

pub(super) fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/", web::get().to(home));
    for (path, permission, title) in PENDING {
        cfg.service(
            web::resource(*path)
                .app_data(Pending {
                    permission: *permission,
                    title,
                })
                .route(web::get().to(pending)),
        );
    }
}

/// Screens not built yet: path, permission, title key (`menu.*`). (The unavailability and
/// statistics screens are vigie-sources' `supervision` pages.)
pub(crate) const PENDING: &[(&str, Permission, &str)] = &[
    (
        "/supervision/apps",
        Permission::SupervisionView,
        "menu.supervision_apps",
    ),
    (
        "/supervision/equipment",
        Permission::SupervisionView,
        "menu.supervision_equipment",
    ),
    (
        "/supervision/equipment/edit",
        Permission::EquipmentEdit,
        "menu.supervision_equipment_edit",
    ),
    (
        "/supervision/reports",
        Permission::ReportsGenerate,
        "menu.supervision_reports",
    ),
    (
        "/supervision/equipment/admin",
        Permission::EquipmentAdmin,
        "menu.supervision_equipment_admin",
    ),
];

struct Pending {
    permission: Permission,
    title: &'static str,
}

async fn home(viewer: Viewer, console: web::Data<Console>) -> Result<HttpResponse, PageError> {
    let mut context = Context::new();
    context.insert("last_login", &viewer.user.created_at);
    Ok(page(&console, &viewer, "console/home.html", context))
}

async fn pending(
    req: HttpRequest,
    viewer: Viewer,
    console: web::Data<Console>,
) -> Result<HttpResponse, PageError> {
    let Some(p) = req.app_data::<Pending>() else {
        return Err(PageError::NotFound(viewer.lang));
    };
    viewer.require(p.permission)?;
    let mut context = Context::new();
    context.insert("title", &viewer.text(p.title));
    Ok(page(&console, &viewer, "console/pending.html", context))
}
