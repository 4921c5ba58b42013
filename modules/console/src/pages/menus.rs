//! Administration › Menus: the menu table, create, edit, delete, assign to users. Checks
//! `AdminMenus` on the server; every change is audited with its before and after.

use std::collections::{BTreeMap, HashSet};

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use serde::Serialize;
use tera::Context;
use vigie_auth::menus::{self, MenuEntry, MenuForm};
use vigie_auth::{AuthError, Problem};
use vigie_core::audit::Entry;
use vigie_core::role::{Permission, Role};
use vigie_core::store::Store;

use super::{allowed, field_errors, form, page, page_status};
use crate::error::{PageError, see_other};
use crate::form::FormData;
use crate::viewer::flash;
use crate::{Console, Viewer};

pub(super) fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/admin/menus", web::get().to(table))
        .route("/admin/menus/new", web::get().to(new_form))
        .route("/admin/menus/new", web::post().to(create))
        .route("/admin/menus/{id}/edit", web::get().to(edit_form))
        .route("/admin/menus/{id}/edit", web::post().to(update))
        .route("/admin/menus/{id}/delete", web::post().to(delete))
        .route("/admin/menus/{id}/users", web::get().to(users_form))
        .route("/admin/menus/{id}/users", web::post().to(users_submit));
}

async fn table(
    viewer: Viewer,
    console: web::Data<Console>,
    store: web::Data<Store>,
) -> Result<HttpResponse, PageError> {
    let mut context = allowed(&viewer, Permission::AdminMenus)?;
    context.insert("entries", &menus::list(&store).await?);
    Ok(page(&console, &viewer, "console/admin/menus.html", context))
}

fn groups(entries: &[MenuEntry]) -> Vec<(i64, String, String)> {
    entries
        .iter()
        .filter(|e| e.menu.is_group())
        .map(|e| (e.menu.id, e.menu.label_en.clone(), e.menu.label_fr.clone()))
        .collect()
}

fn form_context(
    viewer: &Viewer,
    entries: &[MenuEntry],
    form: &MenuForm,
    errors: BTreeMap<String, String>,
    builtin: bool,
) -> Context {
    let mut context = Context::new();
    context.insert("menu", form);
    context.insert("groups", &groups(entries));
    context.insert(
        "permissions",
        &Permission::ALL.iter().map(|p| p.code()).collect::<Vec<_>>(),
    );
    context.insert(
        "roles",
        &Role::ALL
            .into_iter()
            .map(|r| (r.as_str(), viewer.text(&format!("role.{}", r.as_str()))))
            .collect::<Vec<_>>(),
    );
    context.insert("errors", &errors);
    context.insert("builtin", &builtin);
    context
}

async fn new_form(
    viewer: Viewer,
    console: web::Data<Console>,
    store: web::Data<Store>,
) -> Result<HttpResponse, PageError> {
    viewer.require(Permission::AdminMenus)?;
    let entries = menus::list(&store).await?;
    let form = MenuForm {
        position: 100,
        ..MenuForm::default()
    };
    let mut context = form_context(&viewer, &entries, &form, BTreeMap::new(), false);
    context.insert("creating", &true);
    Ok(page(
        &console,
        &viewer,
        "console/admin/menu_form.html",
        context,
    ))
}

fn menu_form(form: &FormData) -> (MenuForm, Vec<Problem>) {
    let optional = |name: &str| Some(form.text(name).trim().to_owned()).filter(|s| !s.is_empty());
    let mut problems = Vec::new();
    let position = match form.text("position").trim().parse::<i32>() {
        Ok(n) => n,
        Err(_) => {
            problems.push(("position", "position_range"));
            0
        }
    };
    let parent_id = match optional("parent_id") {
        None => None,
        Some(p) => match p.parse::<i64>() {
            Ok(id) => Some(id),
            Err(_) => {
                problems.push(("parent_id", "parent_group"));
                None
            }
        },
    };
    let menu = MenuForm {
        code: form.text("code").trim().to_owned(),
        parent_id,
        label_en: form.text("label_en"),
        label_fr: form.text("label_fr"),
        path: optional("path"),
        permission: optional("permission"),
        position,
        roles: form.all("role").into_iter().map(str::to_owned).collect(),
    };
    (menu, problems)
}

fn audit_view(form: &MenuForm) -> serde_json::Value {
    serde_json::to_value(form).unwrap_or_default()
}

async fn create(
    viewer: Viewer,
    body: web::Bytes,
    console: web::Data<Console>,
    store: web::Data<Store>,
) -> Result<HttpResponse, PageError> {
    viewer.require(Permission::AdminMenus)?;
    let data = form(&viewer, &body)?;
    let entries = menus::list(&store).await?;
    let (menu, mut problems) = menu_form(&data);
    let group_ids: Vec<i64> = groups(&entries).into_iter().map(|g| g.0).collect();
    problems.extend(menus::validate(&menu, &group_ids, false));
    let result = if problems.is_empty() {
        let mut tx = store.begin().await?;
        match menus::create(&mut tx, &menu).await {
            Ok(id) => {
                let actor = viewer.actor();
                vigie_core::audit::record(
                    &mut tx,
                    Entry::new(Some(&actor), viewer.ip(), "menu.create")
                        .target("menu", id, &menu.code)
                        .change(None, Some(audit_view(&menu))),
                )
                .await?;
                tx.commit().await?;
                Ok(())
            }
            Err(e) => Err(e),
        }
    } else {
        Err(AuthError::Form(problems))
    };
    match result {
        Ok(()) => {
            flash(
                &store,
                &viewer,
                "success",
                "menus.created",
                Some(menu.code.clone()),
            )
            .await?;
            Ok(see_other("/admin/menus"))
        }
        Err(AuthError::Form(problems)) => {
            let mut context = form_context(
                &viewer,
                &entries,
                &menu,
                field_errors(&console, viewer.lang, &problems),
                false,
            );
            context.insert("creating", &true);
            Ok(page_status(
                &console,
                &viewer,
                StatusCode::UNPROCESSABLE_ENTITY,
                "console/admin/menu_form.html",
                context,
            ))
        }
        Err(e) => Err(e.into()),
    }
}

fn entry_form(e: &MenuEntry) -> MenuForm {
    MenuForm {
        code: e.menu.code.clone(),
        parent_id: e.menu.parent_id,
        label_en: e.menu.label_en.clone(),
        label_fr: e.menu.label_fr.clone(),
        path: e.menu.path.clone(),
        permission: e.menu.permission.clone(),
        position: e.menu.position,
        roles: e.roles.clone(),
    }
}

async fn load(
    viewer: &Viewer,
    store: &Store,
    id: i64,
) -> Result<(Vec<MenuEntry>, MenuEntry), PageError> {
    let entries = menus::list(store).await?;
    let entry = entries
        .iter()
        .find(|e| e.menu.id == id)
        .cloned()
        .ok_or(PageError::NotFound(viewer.lang))?;
    Ok((entries, entry))
}

async fn edit_form(
    viewer: Viewer,
    id: web::Path<i64>,
    console: web::Data<Console>,
    store: web::Data<Store>,
) -> Result<HttpResponse, PageError> {
    viewer.require(Permission::AdminMenus)?;
    let (entries, entry) = load(&viewer, &store, *id).await?;
    let mut context = form_context(
        &viewer,
        &entries,
        &entry_form(&entry),
        BTreeMap::new(),
        entry.menu.builtin,
    );
    context.insert("menu_id", &entry.menu.id);
    Ok(page(
        &console,
        &viewer,
        "console/admin/menu_form.html",
        context,
    ))
}

async fn update(
    viewer: Viewer,
    id: web::Path<i64>,
    body: web::Bytes,
    console: web::Data<Console>,
    store: web::Data<Store>,
) -> Result<HttpResponse, PageError> {
    viewer.require(Permission::AdminMenus)?;
    let data = form(&viewer, &body)?;
    let (entries, entry) = load(&viewer, &store, *id).await?;
    let builtin = entry.menu.builtin;
    let (mut menu, mut problems) = menu_form(&data);
    if builtin {
        // What routes depend on stays as shipped, whatever the form sent.
        menu.code = entry.menu.code.clone();
        menu.path = entry.menu.path.clone();
        menu.permission = entry.menu.permission.clone();
        menu.parent_id = entry.menu.parent_id;
    }
    let group_ids: Vec<i64> = groups(&entries)
        .into_iter()
        .map(|g| g.0)
        .filter(|g| *g != entry.menu.id)
        .collect();
    problems.extend(menus::validate(&menu, &group_ids, builtin));
    let before = entry_form(&entry);
    let result = if problems.is_empty() {
        let mut tx = store.begin().await?;
        match menus::update(&mut tx, entry.menu.id, &menu, builtin).await {
            Ok(()) => {
                let actor = viewer.actor();
                vigie_core::audit::record(
                    &mut tx,
                    Entry::new(Some(&actor), viewer.ip(), "menu.update")
                        .target("menu", entry.menu.id, &menu.code)
                        .change(Some(audit_view(&before)), Some(audit_view(&menu))),
                )
                .await?;
                tx.commit().await?;
                Ok(())
            }
            Err(e) => Err(e),
        }
    } else {
        Err(AuthError::Form(problems))
    };
    match result {
        Ok(()) => {
            flash(
                &store,
                &viewer,
                "success",
                "menus.updated",
                Some(menu.code.clone()),
            )
            .await?;
            Ok(see_other("/admin/menus"))
        }
        Err(AuthError::Form(problems)) => {
            let mut context = form_context(
                &viewer,
                &entries,
                &menu,
                field_errors(&console, viewer.lang, &problems),
                builtin,
            );
            context.insert("menu_id", &entry.menu.id);
            Ok(page_status(
                &console,
                &viewer,
                StatusCode::UNPROCESSABLE_ENTITY,
                "console/admin/menu_form.html",
                context,
            ))
        }
        Err(e) => Err(e.into()),
    }
}

async fn delete(
    viewer: Viewer,
    id: web::Path<i64>,
    body: web::Bytes,
    store: web::Data<Store>,
) -> Result<HttpResponse, PageError> {
    viewer.require(Permission::AdminMenus)?;
    form(&viewer, &body)?;
    let (_, entry) = load(&viewer, &store, *id).await?;
    if entry.menu.builtin {
        flash(
            &store,
            &viewer,
            "error",
            "menus.builtin_kept",
            Some(entry.menu.code.clone()),
        )
        .await?;
        return Ok(see_other("/admin/menus"));
    }
    let mut tx = store.begin().await?;
    menus::delete(&mut tx, entry.menu.id).await?;
    let actor = viewer.actor();
    vigie_core::audit::record(
        &mut tx,
        Entry::new(Some(&actor), viewer.ip(), "menu.delete")
            .target("menu", entry.menu.id, &entry.menu.code)
            .change(Some(audit_view(&entry_form(&entry))), None),
    )
    .await?;
    tx.commit().await?;
    flash(
        &store,
        &viewer,
        "success",
        "menus.deleted",
        Some(entry.menu.code),
    )
    .await?;
    Ok(see_other("/admin/menus"))
}

/// One user's line on the "assign to users" page.
#[derive(Serialize)]
struct Assignee {
    id: i64,
    login: String,
    name: String,
    role: String,
    enabled: bool,
}

async fn assignees(store: &Store, entry: &MenuEntry) -> Result<Vec<Assignee>, PageError> {
    let users = vigie_auth::search_users(store, None, false, None, 500).await?;
    let mut out = Vec::new();
    for u in users {
        let role = u.role();
        if !entry.menu.within(role) {
            continue;
        }
        let user_menus = menus::for_user(store, u.id, role).await?;
        let enabled = user_menus
            .iter()
            .any(|m| m.id == entry.menu.id && m.enabled(role));
        out.push(Assignee {
            id: u.id,
            name: u.name(),
            login: u.login,
            role: u.role,
            enabled,
        });
    }
    Ok(out)
}

async fn users_form(
    viewer: Viewer,
    id: web::Path<i64>,
    console: web::Data<Console>,
    store: web::Data<Store>,
) -> Result<HttpResponse, PageError> {
    let mut context = allowed(&viewer, Permission::AdminMenus)?;
    let (_, entry) = load(&viewer, &store, *id).await?;
    if entry.menu.is_group() {
        return Err(PageError::NotFound(viewer.lang));
    }
    context.insert("entry", &entry);
    context.insert("assignees", &assignees(&store, &entry).await?);
    Ok(page(
        &console,
        &viewer,
        "console/admin/menu_users.html",
        context,
    ))
}

async fn users_submit(
    viewer: Viewer,
    id: web::Path<i64>,
    body: web::Bytes,
    store: web::Data<Store>,
) -> Result<HttpResponse, PageError> {
    viewer.require(Permission::AdminMenus)?;
    let data = form(&viewer, &body)?;
    let (_, entry) = load(&viewer, &store, *id).await?;
    let wanted: HashSet<i64> = data.ids("user");
    let before = assignees(&store, &entry).await?;
    let mut tx = store.begin().await?;
    let mut changed = Vec::new();
    for a in &before {
        let want = wanted.contains(&a.id);
        if want == a.enabled {
            continue;
        }
        // Nobody takes the administration of users or menus away from themselves.
        if a.id == viewer.user.user_id
            && !want
            && matches!(entry.menu.code.as_str(), "admin.users" | "admin.menus")
        {
            continue;
        }
        let role: Role = a.role.parse().unwrap_or(Role::User);
        let user_menus = menus::for_user(&store, a.id, role).await?;
        let mine: Vec<_> = user_menus
            .into_iter()
            .filter(|m| m.id == entry.menu.id)
            .collect();
        let set: HashSet<i64> = if want {
            HashSet::from([entry.menu.id])
        } else {
            HashSet::new()
        };
        menus::set_user_choices(&mut tx, a.id, &mine, role, &set).await?;
        changed.push(serde_json::json!({"login": a.login, "enabled": want}));
    }
    let actor = viewer.actor();
    vigie_core::audit::record(
        &mut tx,
        Entry::new(Some(&actor), viewer.ip(), "menu.assign")
            .target("menu", entry.menu.id, &entry.menu.code)
            .change(None, Some(serde_json::json!(changed))),
    )
    .await?;
    tx.commit().await?;
    flash(
        &store,
        &viewer,
        "success",
        "menus.assigned",
        Some(entry.menu.code.clone()),
    )
    .await?;
    Ok(see_other("/admin/menus"))
}
