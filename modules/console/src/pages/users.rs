//! Administration › Users: list with search, create (then the activation mail), show, edit
//! (then the "your account changed" mail), disable/enable, resend the activation link. Every
//! handler checks `AdminUsers` on the server.

use std::collections::{BTreeMap, HashSet};

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Serialize;
use tera::Context;
use vigie_auth::menus::{self, MenuEntry};
use vigie_auth::{AuthError, Person, PersonForm, User};
use vigie_core::domain::Domains;
use vigie_core::role::{Permission, Role};
use vigie_core::store::Store;
use vigie_notify::Mail;

use super::{allowed, field_errors, form, page, page_status, query, valid_timezone};
use crate::error::{PageError, see_other};
use crate::form::FormData;
use crate::i18n::Lang;
use crate::viewer::flash;
use crate::{Console, Viewer};

pub(super) fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/admin/users", web::get().to(list))
        .route("/admin/users/new", web::get().to(new_form))
        .route("/admin/users/new", web::post().to(create))
        .route("/admin/users/{id}", web::get().to(show))
        .route("/admin/users/{id}/edit", web::get().to(edit_form))
        .route("/admin/users/{id}/edit", web::post().to(update))
        .route(
            "/admin/users/{id}/{action:disable|enable}",
            web::post().to(set_disabled),
        )
        .route("/admin/users/{id}/activation", web::post().to(resend));
}

const PAGE: i64 = 50;

async fn list(
    req: HttpRequest,
    viewer: Viewer,
    console: web::Data<Console>,
    store: web::Data<Store>,
) -> Result<HttpResponse, PageError> {
    let mut context = allowed(&viewer, Permission::AdminUsers)?;
    let q = query(&req);
    let text = q.get("q").cloned().unwrap_or_default();
    let include_disabled = q.get("disabled").is_some_and(|v| v == "1");
    let users = vigie_auth::search_users(
        &store,
        Some(&text),
        include_disabled,
        q.get("after").map(String::as_str),
        PAGE + 1,
    )
    .await?;
    let more = users.len() as i64 > PAGE;
    let users: Vec<User> = users.into_iter().take(PAGE as usize).collect();
    context.insert(
        "next_after",
        &more
            .then(|| users.last().map(|u| u.login.clone()))
            .flatten(),
    );
    context.insert("users", &users);
    context.insert("q", &text);
    context.insert("include_disabled", &include_disabled);
    Ok(page(&console, &viewer, "console/admin/users.html", context))
}

/// One menu checkbox of the user form.
#[derive(Serialize)]
struct MenuChoice {
    id: i64,
    code: String,
    label: String,
    group: String,
    /// Roles that may have it (the matrix's ceiling), for the form's script.
    offered: Vec<&'static str>,
    /// Roles that have it by default.
    defaults: Vec<String>,
    checked: bool,
    offered_now: bool,
}

fn choices(
    entries: &[MenuEntry],
    lang: Lang,
    role: Option<Role>,
    checked: &dyn Fn(&MenuEntry) -> bool,
) -> Vec<MenuChoice> {
    let label = |e: &MenuEntry| {
        if lang == Lang::Fr {
            e.menu.label_fr.clone()
        } else {
            e.menu.label_en.clone()
        }
    };
    let labels: BTreeMap<i64, String> = entries.iter().map(|e| (e.menu.id, label(e))).collect();
    entries
        .iter()
        .filter(|e| !e.menu.is_group())
        .map(|e| MenuChoice {
            id: e.menu.id,
            code: e.menu.code.clone(),
            label: label(e),
            group: e
                .menu
                .parent_id
                .and_then(|p| labels.get(&p).cloned())
                .unwrap_or_default(),
            offered: Role::ALL
                .into_iter()
                .filter(|r| e.menu.within(*r))
                .map(Role::as_str)
                .collect(),
            defaults: e.roles.clone(),
            checked: checked(e),
            offered_now: role.is_some_and(|r| e.menu.within(r)),
        })
        .collect()
}

fn roles(viewer: &Viewer) -> Vec<(&'static str, String)> {
    Role::ALL
        .into_iter()
        .map(|r| (r.as_str(), viewer.text(&format!("role.{}", r.as_str()))))
        .collect()
}

fn form_context(
    viewer: &Viewer,
    person: &PersonForm,
    menu_choices: Vec<MenuChoice>,
    errors: BTreeMap<String, String>,
) -> Context {
    let mut context = Context::new();
    context.insert("person", person);
    context.insert("menus", &menu_choices);
    context.insert("roles", &roles(viewer));
    context.insert("errors", &errors);
    context
}

/// A domain's checkbox on the user form (managers head their domains; on-call people are
/// planned per domain).
#[derive(Serialize)]
struct DomainChoice {
    id: String,
    label: String,
    checked: bool,
}

/// The configured domains (the hub registers them; the defaults otherwise).
fn configured_domains(req: &HttpRequest) -> Domains {
    req.app_data::<web::Data<Domains>>()
        .map_or_else(Domains::default, |d| d.get_ref().clone())
}

fn domain_choices(req: &HttpRequest, lang: Lang, ticked: &[String]) -> Vec<DomainChoice> {
    configured_domains(req)
        .list()
        .iter()
        .map(|d| DomainChoice {
            id: d.id.clone(),
            label: match lang {
                Lang::Fr => d.label_fr.clone(),
                Lang::En => d.label_en.clone(),
            },
            checked: ticked.contains(&d.id),
        })
        .collect()
}

/// The domains ticked in a submitted form, configured ones only, sorted.
fn ticked_domains(req: &HttpRequest, form: &FormData) -> Vec<String> {
    let domains = configured_domains(req);
    let mut ticked: Vec<String> = form
        .all("domain")
        .into_iter()
        .filter(|d| domains.contains(d))
        .map(str::to_owned)
        .collect();
    ticked.sort();
    ticked.dedup();
    ticked
}

async fn new_form(
    req: HttpRequest,
    viewer: Viewer,
    console: web::Data<Console>,
    store: web::Data<Store>,
) -> Result<HttpResponse, PageError> {
    viewer.require(Permission::AdminUsers)?;
    let entries = menus::list(&store).await?;
    let person = PersonForm {
        role: "operator".into(),
        ..PersonForm::default()
    };
    let menu_choices = choices(&entries, viewer.lang, Some(Role::Operator), &|e| {
        e.roles.iter().any(|r| r == "operator")
    });
    let mut context = form_context(&viewer, &person, menu_choices, BTreeMap::new());
    context.insert("creating", &true);
    context.insert("user_domains", &domain_choices(&req, viewer.lang, &[]));
    Ok(page(
        &console,
        &viewer,
        "console/admin/user_form.html",
        context,
    ))
}

fn person_form(form: &FormData) -> PersonForm {
    PersonForm {
        login: form.text("login"),
        matricule: form.text("matricule"),
        last_name: form.text("last_name"),
        first_name: form.text("first_name"),
        email: form.text("email"),
        phone: form.text("phone"),
        job_title: form.text("job_title"),
        department: form.text("department"),
        role: form.text("role"),
        lang: form.text("lang"),
        timezone: form.text("timezone"),
    }
}

/// The mail with the activation link, in the new user's language.
fn activation_mail(console: &Console, user: &User, token: &str) -> Mail {
    let lang = Lang::negotiate(user.lang.as_deref(), None, console.settings.default_lang);
    let locales = &console.renderer.locales;
    let link = format!("{}/activate/{token}", console.base_url());
    let hours = console.settings.links.activation_ttl.as_secs() / 3600;
    let text = locales
        .text(lang, "mail.activation_body")
        .replace("{name}", &user.name())
        .replace("{login}", &user.login)
        .replace("{link}", &link)
        .replace("{hours}", &hours.to_string());
    Mail {
        to: user.email.clone().unwrap_or_default(),
        subject: locales.text(lang, "mail.activation_subject"),
        text,
        html: None,
        kind: "user.activation",
        user_id: Some(user.id),
    }
}

/// The mail telling a user their account changed.
fn changed_mail(console: &Console, user: &User) -> Mail {
    let lang = Lang::negotiate(user.lang.as_deref(), None, console.settings.default_lang);
    let locales = &console.renderer.locales;
    let text = locales
        .text(lang, "mail.changed_body")
        .replace("{name}", &user.name())
        .replace("{login}", &user.login)
        .replace(
            "{role}",
            &locales.text(lang, &format!("role.{}", user.role)),
        )
        .replace("{link}", &format!("{}/account", console.base_url()));
    Mail {
        to: user.email.clone().unwrap_or_default(),
        subject: locales.text(lang, "mail.changed_subject"),
        text,
        html: None,
        kind: "user.changed",
        user_id: Some(user.id),
    }
}

/// A person's form as posted (create and edit share it): the fields, the menus and domains
/// ticked, and how to show it again with its problems.
struct PostedPerson {
    form: PersonForm,
    ticked: HashSet<i64>,
    wanted: Vec<String>,
    picked: Vec<DomainChoice>,
}

impl PostedPerson {
    fn read(req: &HttpRequest, viewer: &Viewer, form: &FormData) -> PostedPerson {
        let wanted = ticked_domains(req, form);
        PostedPerson {
            form: person_form(form),
            ticked: form.ids("menu"),
            picked: domain_choices(req, viewer.lang, &wanted),
            wanted,
        }
    }

    /// The checked person, with the domains ticked.
    fn checked(&self) -> Result<Person, Vec<vigie_auth::Problem>> {
        vigie_auth::check_person(&self.form, &valid_timezone).map(|p| Person {
            domains: Some(self.wanted.clone()),
            ..p
        })
    }

    /// The form again (422) with its problems next to their fields.
    async fn redisplay(
        &self,
        viewer: &Viewer,
        console: &Console,
        store: &Store,
        problems: &[vigie_auth::Problem],
        editing: Option<i64>,
    ) -> Result<HttpResponse, PageError> {
        let entries = menus::list(store).await?;
        let role = self.form.role.parse::<Role>().ok();
        let menu_choices = choices(&entries, viewer.lang, role, &|e| {
            self.ticked.contains(&e.menu.id)
        });
        let mut context = form_context(
            viewer,
            &self.form,
            menu_choices,
            field_errors(console, viewer.lang, problems),
        );
        context.insert("user_domains", &self.picked);
        match editing {
            Some(id) => context.insert("user_id", &id),
            None => context.insert("creating", &true),
        }
        Ok(page_status(
            console,
            viewer,
            StatusCode::UNPROCESSABLE_ENTITY,
            "console/admin/user_form.html",
            context,
        ))
    }
}

async fn create(
    req: HttpRequest,
    viewer: Viewer,
    body: web::Bytes,
    console: web::Data<Console>,
    store: web::Data<Store>,
) -> Result<HttpResponse, PageError> {
    viewer.require(Permission::AdminUsers)?;
    let form = form(&viewer, &body)?;
    let posted = PostedPerson::read(&req, &viewer, &form);
    let person = match posted.checked() {
        Ok(p) => p,
        Err(problems) => {
            return posted
                .redisplay(&viewer, &console, &store, &problems, None)
                .await;
        }
    };
    let actor = viewer.actor();
    let mail = |user: &User, token: &str| activation_mail(&console, user, token);
    match vigie_auth::create_person(
        &store,
        &actor,
        viewer.ip(),
        &person,
        Some(&posted.ticked),
        console.settings.links,
        &mail,
    )
    .await
    {
        Ok(id) => {
            flash(
                &store,
                &viewer,
                "success",
                "users.created",
                Some(person.login.clone()),
            )
            .await?;
            Ok(see_other(&format!("/admin/users/{id}")))
        }
        Err(AuthError::Form(problems)) => {
            posted
                .redisplay(&viewer, &console, &store, &problems, None)
                .await
        }
        Err(e) => Err(e.into()),
    }
}

async fn load_user(viewer: &Viewer, store: &Store, id: i64) -> Result<User, PageError> {
    vigie_auth::get_user(store, id)
        .await?
        .ok_or(PageError::NotFound(viewer.lang))
}

async fn show(
    viewer: Viewer,
    id: web::Path<i64>,
    console: web::Data<Console>,
    store: web::Data<Store>,
) -> Result<HttpResponse, PageError> {
    let mut context = allowed(&viewer, Permission::AdminUsers)?;
    let user = load_user(&viewer, &store, *id).await?;
    let role = user.role();
    let user_menus = menus::for_user(&store, user.id, role).await?;
    let french = viewer.lang == Lang::Fr;
    let enabled: Vec<String> = user_menus
        .iter()
        .filter(|m| m.enabled(role))
        .map(|m| {
            if french {
                m.label_fr.clone()
            } else {
                m.label_en.clone()
            }
        })
        .collect();
    let history = vigie_core::audit::search(
        &store,
        &vigie_core::audit::Filter {
            text: Some(user.login.clone()),
            limit: 20,
            ..Default::default()
        },
    )
    .await?;
    context.insert("user", &user);
    context.insert("user_name", &user.name());
    context.insert("enabled_menus", &enabled);
    context.insert("history", &history);
    context.insert("is_self", &(user.id == viewer.user.user_id));
    Ok(page(
        &console,
        &viewer,
        "console/admin/user_show.html",
        context,
    ))
}

async fn edit_form(
    req: HttpRequest,
    viewer: Viewer,
    id: web::Path<i64>,
    console: web::Data<Console>,
    store: web::Data<Store>,
) -> Result<HttpResponse, PageError> {
    viewer.require(Permission::AdminUsers)?;
    let user = load_user(&viewer, &store, *id).await?;
    let role = user.role();
    let user_menus = menus::for_user(&store, user.id, role).await?;
    let enabled: HashSet<i64> = user_menus
        .iter()
        .filter(|m| m.enabled(role))
        .map(|m| m.id)
        .collect();
    let entries = menus::list(&store).await?;
    let person = PersonForm {
        login: user.login.clone(),
        matricule: user.matricule.clone().unwrap_or_default(),
        last_name: user.last_name.clone().unwrap_or_default(),
        first_name: user.first_name.clone().unwrap_or_default(),
        email: user.email.clone().unwrap_or_default(),
        phone: user.phone.clone().unwrap_or_default(),
        job_title: user.job_title.clone().unwrap_or_default(),
        department: user.department.clone().unwrap_or_default(),
        role: user.role.clone(),
        lang: user.lang.clone().unwrap_or_default(),
        timezone: user.timezone.clone().unwrap_or_default(),
    };
    let menu_choices = choices(&entries, viewer.lang, Some(role), &|e| {
        enabled.contains(&e.menu.id)
    });
    let mut context = form_context(&viewer, &person, menu_choices, BTreeMap::new());
    context.insert("user_id", &user.id);
    let current = vigie_auth::contacts::domains_of(&store, user.id).await?;
    context.insert("user_domains", &domain_choices(&req, viewer.lang, &current));
    Ok(page(
        &console,
        &viewer,
        "console/admin/user_form.html",
        context,
    ))
}

async fn update(
    req: HttpRequest,
    viewer: Viewer,
    id: web::Path<i64>,
    body: web::Bytes,
    console: web::Data<Console>,
    store: web::Data<Store>,
) -> Result<HttpResponse, PageError> {
    viewer.require(Permission::AdminUsers)?;
    let form = form(&viewer, &body)?;
    let user = load_user(&viewer, &store, *id).await?;
    let posted = PostedPerson::read(&req, &viewer, &form);
    let person = match posted.checked() {
        Ok(p) => p,
        Err(problems) => {
            return posted
                .redisplay(&viewer, &console, &store, &problems, Some(user.id))
                .await;
        }
    };
    // An administrator cannot take away their own administration (nobody could give it back).
    if user.id == viewer.user.user_id {
        let keeps_admin = person.role == Role::Admin;
        let entries = menus::list(&store).await?;
        let keeps_menus = entries
            .iter()
            .filter(|e| matches!(e.menu.code.as_str(), "admin.users" | "admin.menus"))
            .all(|e| posted.ticked.contains(&e.menu.id));
        if !keeps_admin || !keeps_menus {
            let problems = [("role", "self_lockout")];
            return posted
                .redisplay(&viewer, &console, &store, &problems, Some(user.id))
                .await;
        }
    }
    let actor = viewer.actor();
    let mail = |u: &User| changed_mail(&console, u);
    match vigie_auth::update_person(
        &store,
        &actor,
        viewer.ip(),
        user.id,
        &person,
        Some(&posted.ticked),
        &mail,
    )
    .await
    {
        Ok(()) => {
            flash(
                &store,
                &viewer,
                "success",
                "users.updated",
                Some(person.login.clone()),
            )
            .await?;
            Ok(see_other(&format!("/admin/users/{}", user.id)))
        }
        Err(AuthError::Form(problems)) => {
            posted
                .redisplay(&viewer, &console, &store, &problems, Some(user.id))
                .await
        }
        Err(e) => Err(e.into()),
    }
}

/// `POST /admin/users/{id}/disable` and `/enable`: one handler, the last segment says which.
async fn set_disabled(
    req: HttpRequest,
    viewer: Viewer,
    path: web::Path<(i64, String)>,
    body: web::Bytes,
    store: web::Data<Store>,
) -> Result<HttpResponse, PageError> {
    viewer.require(Permission::AdminUsers)?;
    form(&viewer, &body)?;
    let (id, action) = path.into_inner();
    let disabled = action == "disable";
    let user = load_user(&viewer, &store, id).await?;
    if user.id == viewer.user.user_id {
        flash(&store, &viewer, "error", "users.not_yourself", None).await?;
        return Ok(see_other(&format!("/admin/users/{id}")));
    }
    let actor = viewer.actor();
    vigie_auth::set_disabled(&store, &actor, viewer.ip(), id, disabled).await?;
    // This process stops accepting the user's tokens now; others within the cache's seconds.
    if let Some(cache) = req.app_data::<web::Data<vigie_auth::TokenCache>>() {
        cache.forget(id);
    }
    let key = if disabled {
        "users.disabled_done"
    } else {
        "users.enabled_done"
    };
    flash(&store, &viewer, "success", key, Some(user.login)).await?;
    Ok(see_other(&format!("/admin/users/{id}")))
}

async fn resend(
    viewer: Viewer,
    id: web::Path<i64>,
    body: web::Bytes,
    console: web::Data<Console>,
    store: web::Data<Store>,
) -> Result<HttpResponse, PageError> {
    viewer.require(Permission::AdminUsers)?;
    form(&viewer, &body)?;
    let user = load_user(&viewer, &store, *id).await?;
    let actor = viewer.actor();
    let mail = |u: &User, token: &str| activation_mail(&console, u, token);
    vigie_auth::resend_activation(
        &store,
        &actor,
        viewer.ip(),
        user.id,
        console.settings.links,
        &mail,
    )
    .await?;
    flash(
        &store,
        &viewer,
        "success",
        "users.activation_sent",
        Some(user.login),
    )
    .await?;
    Ok(see_other(&format!("/admin/users/{}", user.id)))
}
