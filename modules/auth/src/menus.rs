//! The menu tree and what it grants.
//!
//! A menu leaf carries a [`Permission`] (or none, for a plain link). Who sees it: the roles of
//! `menu_roles` by default, overridden per user by the administrator (`user_menus`), and never
//! beyond the role's ceiling ([`Role::grants`], DOMAIN.md's matrix). The same data decides the
//! permissions the server checks: a permission of the role is withdrawn from a user when every
//! menu that carries it is disabled for them. A hidden menu is therefore never the protection;
//! the check is.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde::Serialize;
use vigie_core::role::{Permission, PermissionSet, Role};
use vigie_core::store::{Store, StoreError, StoreTx};
use vigie_core::{on_pool, on_tx};

use crate::error::{AuthError, Problem};

/// A menu shipped with the hub. Its code is fixed (routes and tests use it); its labels and
/// position are the administrator's to change.
#[derive(Clone, Copy, Debug)]
pub struct Builtin {
    pub code: &'static str,
    pub parent: Option<&'static str>,
    pub path: Option<&'static str>,
    pub permission: Option<Permission>,
    pub position: i32,
}

const fn group(code: &'static str, position: i32) -> Builtin {
    Builtin {
        code,
        parent: None,
        path: None,
        permission: None,
        position,
    }
}

const fn leaf(
    code: &'static str,
    parent: Option<&'static str>,
    path: Option<&'static str>,
    permission: Permission,
    position: i32,
) -> Builtin {
    Builtin {
        code,
        parent,
        path,
        permission: Some(permission),
        position,
    }
}

/// DOMAIN.md's menu matrix as a tree. Leaves without a path are entitlements to actions (they
/// show in the per-user choices, not in the navigation).
pub const BUILTIN: &[Builtin] = {
    use Permission as P;
    const SUP: Option<&str> = Some("supervision");
    const ALERTS: Option<&str> = Some("alerts");
    const INC: Option<&str> = Some("incidents");
    const ADM: Option<&str> = Some("admin");
    &[
        group("supervision", 10),
        leaf(
            "supervision.apps",
            SUP,
            Some("/supervision/apps"),
            P::SupervisionView,
            11,
        ),
        leaf(
            "supervision.equipment",
            SUP,
            Some("/supervision/equipment"),
            P::SupervisionView,
            12,
        ),
        leaf(
            "supervision.unavailability",
            SUP,
            Some("/supervision/unavailability"),
            P::SupervisionView,
            13,
        ),
        leaf(
            "supervision.equipment_edit",
            SUP,
            Some("/supervision/equipment/edit"),
            P::EquipmentEdit,
            14,
        ),
        leaf(
            "supervision.statistics",
            SUP,
            Some("/supervision/statistics"),
            P::EquipmentStats,
            15,
        ),
        leaf(
            "supervision.reports",
            SUP,
            Some("/supervision/reports"),
            P::ReportsGenerate,
            16,
        ),
        leaf(
            "supervision.equipment_admin",
            SUP,
            Some("/supervision/equipment/admin"),
            P::EquipmentAdmin,
            17,
        ),
        leaf(
            "supervision.logs",
            SUP,
            Some("/logs"),
            P::SupervisionView,
            18,
        ),
        leaf(
            "supervision.hosts",
            SUP,
            Some("/hosts"),
            P::SupervisionView,
            19,
        ),
        group("alerts", 20),
        leaf("alerts.list", ALERTS, Some("/alerts"), P::AlertsView, 21),
        leaf(
            "alerts.search",
            ALERTS,
            Some("/alerts/search"),
            P::AlertsView,
            22,
        ),
        leaf("alerts.actions", ALERTS, None, P::AlertsAct, 23),
        group("incidents", 30),
        leaf(
            "incidents.open",
            INC,
            Some("/incidents/new"),
            P::IncidentsOpen,
            31,
        ),
        leaf(
            "incidents.list",
            INC,
            Some("/incidents"),
            P::IncidentsOpen,
            32,
        ),
        leaf("incidents.qualify", INC, None, P::IncidentsQualify, 33),
        leaf("incidents.resolve", INC, None, P::IncidentsResolve, 34),
        leaf("incidents.manage", INC, None, P::IncidentsManage, 35),
        leaf(
            "incidents.archives",
            INC,
            Some("/incidents/archives"),
            P::IncidentsManage,
            36,
        ),
        leaf("kb", None, Some("/kb"), P::KnowledgeBase, 40),
        group("admin", 90),
        leaf("admin.users", ADM, Some("/admin/users"), P::AdminUsers, 91),
        leaf("admin.menus", ADM, Some("/admin/menus"), P::AdminMenus, 92),
        leaf(
            "admin.oncall.planning",
            ADM,
            Some("/oncall"),
            P::OncallView,
            93,
        ),
        leaf(
            "admin.oncall.edit",
            ADM,
            Some("/admin/oncall"),
            P::OncallEdit,
            94,
        ),
        leaf(
            "admin.sources",
            ADM,
            Some("/admin/sources"),
            P::AdminSources,
            95,
        ),
        leaf(
            "admin.security",
            ADM,
            Some("/admin/security"),
            P::AdminSecurity,
            96,
        ),
        leaf("admin.audit", ADM, Some("/admin/audit"), P::AdminAudit, 97),
        leaf(
            "admin.notifications",
            ADM,
            Some("/admin/notifications"),
            P::AdminUsers,
            98,
        ),
    ]
};

/// Inserts the built-in menus that are missing, with their default roles (the matrix). Safe to
/// run from several hub processes at once; never changes what the administrator edited.
pub async fn ensure_builtin(
    store: &Store,
    labels: &dyn Fn(&str) -> (String, String),
) -> Result<usize, StoreError> {
    let mut tx = store.begin().await?;
    let now = vigie_core::time::now();
    let mut ids: HashMap<&str, i64> = HashMap::new();
    let mut inserted = 0;
    for def in BUILTIN {
        let parent_id = def.parent.and_then(|p| ids.get(p).copied());
        let (label_en, label_fr) = labels(def.code);
        let new_id: Option<i64> = on_tx!(&mut tx, conn => sqlx::query_scalar(
            "INSERT INTO menus (code, parent_id, label_en, label_fr, path, permission, position, builtin, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, TRUE, $8, $8)
             ON CONFLICT (code) DO NOTHING RETURNING id",
        )
        .bind(def.code)
        .bind(parent_id)
        .bind(&label_en)
        .bind(&label_fr)
        .bind(def.path)
        .bind(def.permission.map(Permission::code))
        .bind(def.position)
        .bind(now)
        .fetch_optional(conn)
        .await)?;
        let id = match new_id {
            Some(id) => {
                inserted += 1;
                if let Some(p) = def.permission {
                    for role in Role::ALL.into_iter().filter(|r| r.grants(p)) {
                        on_tx!(&mut tx, conn => sqlx::query(
                            "INSERT INTO menu_roles (menu_id, role) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                        )
                        .bind(id)
                        .bind(role.as_str())
                        .execute(conn)
                        .await
                        .map(|r| r.rows_affected()))?;
                    }
                }
                id
            }
            None => {
                on_tx!(&mut tx, conn => sqlx::query_scalar("SELECT id FROM menus WHERE code = $1")
                .bind(def.code)
                .fetch_one(conn)
                .await)?
            }
        };
        ids.insert(def.code, id);
    }
    tx.commit().await?;
    Ok(inserted)
}

/// A menu as stored, with whether the user sees it.
#[derive(Clone, Debug, Serialize, sqlx::FromRow)]
pub struct Menu {
    pub id: i64,
    pub code: String,
    pub parent_id: Option<i64>,
    pub label_en: String,
    pub label_fr: String,
    pub path: Option<String>,
    pub permission: Option<String>,
    pub position: i32,
    pub builtin: bool,
    /// Granted by the user's role by default.
    pub by_role: bool,
    /// The administrator's choice for this user, when there is one.
    pub chosen: Option<bool>,
}

impl Menu {
    pub fn permission(&self) -> Option<Permission> {
        self.permission.as_deref().and_then(|p| p.parse().ok())
    }

    pub fn is_group(&self) -> bool {
        self.path.is_none() && self.permission.is_none()
    }

    /// Whether the role may ever have it (DOMAIN.md's matrix is the ceiling).
    pub fn within(&self, role: Role) -> bool {
        match (&self.permission, self.permission()) {
            (None, _) => true,
            (Some(_), Some(p)) => role.grants(p),
            // A permission this build does not know grants nothing.
            (Some(_), None) => false,
        }
    }

    /// Whether the user sees it (for a leaf).
    pub fn enabled(&self, role: Role) -> bool {
        !self.is_group() && self.within(role) && self.chosen.unwrap_or(self.by_role)
    }
}

/// Every menu, with the role's defaults and the user's choices.
pub async fn for_user(store: &Store, user_id: i64, role: Role) -> Result<Vec<Menu>, StoreError> {
    let rows = on_pool!(store, pool => sqlx::query_as::<_, Menu>(
        "SELECT m.id, m.code, m.parent_id, m.label_en, m.label_fr, m.path, m.permission, m.position, m.builtin,
                EXISTS (SELECT 1 FROM menu_roles r WHERE r.menu_id = m.id AND r.role = $1) AS by_role,
                (SELECT u.enabled FROM user_menus u WHERE u.menu_id = m.id AND u.user_id = $2) AS chosen
         FROM menus m ORDER BY m.position, m.id",
    )
    .bind(role.as_str())
    .bind(user_id)
    .fetch_all(pool)
    .await)?;
    Ok(rows)
}

/// The permissions a user holds: the role's, less those whose every menu is disabled for them.
pub fn permissions(menus: &[Menu], role: Role) -> PermissionSet {
    let mut carried: HashMap<Permission, bool> = HashMap::new();
    for m in menus.iter().filter(|m| !m.is_group()) {
        if let Some(p) = m.permission() {
            *carried.entry(p).or_default() |= m.enabled(role);
        }
    }
    let mut set = PermissionSet::of_role(role);
    for (p, any_enabled) in carried {
        if !any_enabled {
            set = set.without(p);
        }
    }
    set
}

/// The user's effective permissions, read from the store.
pub async fn effective_permissions(
    store: &Store,
    user_id: i64,
    role: Role,
) -> Result<PermissionSet, StoreError> {
    Ok(permissions(&for_user(store, user_id, role).await?, role))
}

/// One entry of the navigation.
#[derive(Clone, Debug, Serialize)]
pub struct NavItem {
    pub code: String,
    pub label: String,
    pub path: Option<String>,
    pub external: bool,
    pub children: Vec<NavItem>,
}

/// The navigation tree the user sees: enabled leaves with a path, under their groups; a group
/// with nothing visible is left out.
pub fn navigation(menus: &[Menu], role: Role, french: bool) -> Vec<NavItem> {
    let label = |m: &Menu| {
        if french {
            m.label_fr.clone()
        } else {
            m.label_en.clone()
        }
    };
    let item = |m: &Menu| NavItem {
        code: m.code.clone(),
        label: label(m),
        path: m.path.clone(),
        external: m.path.as_deref().is_some_and(|p| !p.starts_with('/')),
        children: Vec::new(),
    };
    let mut children: BTreeMap<i64, Vec<NavItem>> = BTreeMap::new();
    for m in menus {
        if let Some(parent) = m.parent_id
            && m.path.is_some()
            && m.enabled(role)
        {
            children.entry(parent).or_default().push(item(m));
        }
    }
    let mut nav = Vec::new();
    for m in menus.iter().filter(|m| m.parent_id.is_none()) {
        if m.is_group() {
            if let Some(kids) = children.remove(&m.id) {
                let mut group = item(m);
                group.children = kids;
                nav.push(group);
            }
        } else if m.path.is_some() && m.enabled(role) {
            nav.push(item(m));
        }
    }
    nav
}

/// Records the administrator's choices for a user: `enabled` lists the menus ticked among those
/// offered to the role. Only differences from the role's defaults are stored, so a later change
/// of a default reaches every user who was not set apart.
pub async fn set_user_choices(
    tx: &mut StoreTx,
    user_id: i64,
    menus: &[Menu],
    role: Role,
    enabled: &HashSet<i64>,
) -> Result<(), StoreError> {
    for m in menus.iter().filter(|m| !m.is_group() && m.within(role)) {
        let wanted = enabled.contains(&m.id);
        if wanted == m.by_role {
            on_tx!(&mut *tx, conn => sqlx::query("DELETE FROM user_menus WHERE user_id = $1 AND menu_id = $2")
                .bind(user_id)
                .bind(m.id)
                .execute(conn)
                .await
                .map(|r| r.rows_affected()))?;
        } else {
            on_tx!(&mut *tx, conn => sqlx::query(
                "INSERT INTO user_menus (user_id, menu_id, enabled) VALUES ($1, $2, $3)
                 ON CONFLICT (user_id, menu_id) DO UPDATE SET enabled = excluded.enabled",
            )
            .bind(user_id)
            .bind(m.id)
            .bind(wanted)
            .execute(conn)
            .await
            .map(|r| r.rows_affected()))?;
        }
    }
    Ok(())
}

/// A menu as the administrator edits it.
#[derive(Clone, Debug, Default, Serialize)]
pub struct MenuForm {
    pub code: String,
    pub parent_id: Option<i64>,
    pub label_en: String,
    pub label_fr: String,
    pub path: Option<String>,
    pub permission: Option<String>,
    pub position: i32,
    pub roles: Vec<String>,
}

/// A menu with its default roles, for the administrator's table.
#[derive(Clone, Debug, Serialize)]
pub struct MenuEntry {
    pub menu: Menu,
    pub roles: Vec<String>,
    pub parent_code: Option<String>,
}

/// Every menu with its default roles, in tree order.
pub async fn list(store: &Store) -> Result<Vec<MenuEntry>, StoreError> {
    // The role/user columns are irrelevant here; an impossible user id leaves them false/null.
    let menus = for_user(store, -1, Role::Admin).await?;
    let pairs: Vec<(i64, String)> = on_pool!(store, pool => sqlx::query_as(
        "SELECT menu_id, role FROM menu_roles ORDER BY menu_id, role",
    )
    .fetch_all(pool)
    .await)?;
    let mut roles: HashMap<i64, Vec<String>> = HashMap::new();
    for (id, role) in pairs {
        roles.entry(id).or_default().push(role);
    }
    let codes: HashMap<i64, String> = menus.iter().map(|m| (m.id, m.code.clone())).collect();
    Ok(menus
        .into_iter()
        .map(|m| MenuEntry {
            roles: roles.remove(&m.id).unwrap_or_default(),
            parent_code: m.parent_id.and_then(|p| codes.get(&p).cloned()),
            menu: m,
        })
        .collect())
}

pub async fn get(store: &Store, id: i64) -> Result<Option<MenuEntry>, StoreError> {
    Ok(list(store).await?.into_iter().find(|e| e.menu.id == id))
}

const LABEL_MAX: usize = 80;
const PATH_MAX: usize = 500;

fn problem(problems: &mut Vec<Problem>, field: &'static str, key: &'static str) {
    problems.push((field, key));
}

/// Checks a menu form; every problem with its field and the locale key (`problems.*`) that
/// explains it. `builtin` forms keep their code, path and
/// permission (routes depend on them).
pub fn validate(form: &MenuForm, groups: &[i64], builtin: bool) -> Vec<Problem> {
    let mut p = Vec::new();
    if !builtin {
        let code_ok = (1..=64).contains(&form.code.len())
            && form.code.chars().all(|c| {
                c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-')
            });
        if !code_ok {
            problem(&mut p, "code", "code_format");
        }
        if let Some(path) = &form.path {
            let internal = path.starts_with('/') && !path.starts_with("//");
            let external = path.starts_with("https://") || path.starts_with("http://");
            if path.len() > PATH_MAX
                || !(internal || external)
                || path.chars().any(|c| c.is_control() || c.is_whitespace())
            {
                problem(&mut p, "path", "path_format");
            }
        }
        if let Some(perm) = &form.permission
            && perm.parse::<Permission>().is_err()
        {
            problem(&mut p, "permission", "permission_unknown");
        }
        if let Some(parent) = form.parent_id
            && !groups.contains(&parent)
        {
            problem(&mut p, "parent_id", "parent_group");
        }
        if form.path.is_none() && form.permission.is_some() {
            problem(&mut p, "path", "path_required");
        }
    }
    for (field, label) in [("label_en", &form.label_en), ("label_fr", &form.label_fr)] {
        let n = label.trim().chars().count();
        if n == 0 || n > LABEL_MAX || label.chars().any(char::is_control) {
            problem(&mut p, field, "label_length");
        }
    }
    if !(0..=10_000).contains(&form.position) {
        problem(&mut p, "position", "position_range");
    }
    for role in &form.roles {
        if role.parse::<Role>().is_err() {
            problem(&mut p, "roles", "role_unknown");
        }
    }
    p
}

fn menu_error(problems: Vec<Problem>) -> AuthError {
    AuthError::Form(problems)
}

/// Creates a custom menu; returns its id.
pub async fn create(tx: &mut StoreTx, form: &MenuForm) -> Result<i64, AuthError> {
    let now = vigie_core::time::now();
    let result = on_tx!(&mut *tx, conn => sqlx::query_scalar::<_, i64>(
        "INSERT INTO menus (code, parent_id, label_en, label_fr, path, permission, position, builtin, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, FALSE, $8, $8) RETURNING id",
    )
    .bind(&form.code)
    .bind(form.parent_id)
    .bind(form.label_en.trim())
    .bind(form.label_fr.trim())
    .bind(&form.path)
    .bind(&form.permission)
    .bind(form.position)
    .bind(now)
    .fetch_one(conn)
    .await);
    let id = match result {
        Ok(id) => id,
        Err(sqlx::Error::Database(db)) if db.is_unique_violation() => {
            return Err(menu_error(vec![("code", "code_taken")]));
        }
        Err(e) => return Err(StoreError::from(e).into()),
    };
    set_roles(tx, id, form).await?;
    Ok(id)
}

async fn set_roles(tx: &mut StoreTx, id: i64, form: &MenuForm) -> Result<(), StoreError> {
    on_tx!(&mut *tx, conn => sqlx::query("DELETE FROM menu_roles WHERE menu_id = $1")
        .bind(id)
        .execute(conn)
        .await
        .map(|r| r.rows_affected()))?;
    let permission = form
        .permission
        .as_deref()
        .and_then(|p| p.parse::<Permission>().ok());
    for role in form.roles.iter().filter_map(|r| r.parse::<Role>().ok()) {
        // Never beyond the ceiling: a role that cannot hold the permission is not stored.
        if permission.is_some_and(|p| !role.grants(p)) {
            continue;
        }
        on_tx!(&mut *tx, conn => sqlx::query("INSERT INTO menu_roles (menu_id, role) VALUES ($1, $2)")
            .bind(id)
            .bind(role.as_str())
            .execute(conn)
            .await
            .map(|r| r.rows_affected()))?;
    }
    Ok(())
}

/// Updates a menu. Built-in menus keep their code, path, parent and permission.
pub async fn update(
    tx: &mut StoreTx,
    id: i64,
    form: &MenuForm,
    builtin: bool,
) -> Result<(), AuthError> {
    let now = vigie_core::time::now();
    let result = if builtin {
        on_tx!(&mut *tx, conn => sqlx::query(
            "UPDATE menus SET label_en = $1, label_fr = $2, position = $3, updated_at = $4 WHERE id = $5",
        )
        .bind(form.label_en.trim())
        .bind(form.label_fr.trim())
        .bind(form.position)
        .bind(now)
        .bind(id)
        .execute(conn)
        .await
        .map(|r| r.rows_affected()))
    } else {
        on_tx!(&mut *tx, conn => sqlx::query(
            "UPDATE menus SET code = $1, parent_id = $2, label_en = $3, label_fr = $4, path = $5,
                    permission = $6, position = $7, updated_at = $8 WHERE id = $9",
        )
        .bind(&form.code)
        .bind(form.parent_id)
        .bind(form.label_en.trim())
        .bind(form.label_fr.trim())
        .bind(&form.path)
        .bind(&form.permission)
        .bind(form.position)
        .bind(now)
        .bind(id)
        .execute(conn)
        .await
        .map(|r| r.rows_affected()))
    };
    match result {
        Ok(_) => {}
        Err(sqlx::Error::Database(db)) if db.is_unique_violation() => {
            return Err(menu_error(vec![("code", "code_taken")]));
        }
        Err(e) => return Err(StoreError::from(e).into()),
    }
    let mut form = form.clone();
    if builtin {
        // The permission of a built-in menu is its own, whatever the form said.
        form.permission = BUILTIN
            .iter()
            .find(|b| b.code == form.code)
            .and_then(|b| b.permission)
            .map(|p| p.code().to_owned());
    }
    set_roles(tx, id, &form).await?;
    Ok(())
}

/// Deletes a custom menu (and its children and user choices). Built-in menus cannot be deleted.
pub async fn delete(tx: &mut StoreTx, id: i64) -> Result<(), StoreError> {
    on_tx!(&mut *tx, conn => sqlx::query(
        "DELETE FROM user_menus WHERE menu_id IN (SELECT id FROM menus WHERE id = $1 OR parent_id = $1)",
    )
    .bind(id)
    .execute(conn)
    .await
    .map(|r| r.rows_affected()))?;
    on_tx!(&mut *tx, conn => sqlx::query(
        "DELETE FROM menu_roles WHERE menu_id IN (SELECT id FROM menus WHERE id = $1 OR parent_id = $1)",
    )
    .bind(id)
    .execute(conn)
    .await
    .map(|r| r.rows_affected()))?;
    on_tx!(&mut *tx, conn => sqlx::query("DELETE FROM menus WHERE parent_id = $1 AND NOT builtin")
        .bind(id)
        .execute(conn)
        .await
        .map(|r| r.rows_affected()))?;
    on_tx!(&mut *tx, conn => sqlx::query("DELETE FROM menus WHERE id = $1 AND NOT builtin")
        .bind(id)
        .execute(conn)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn menu(
        id: i64,
        code: &str,
        parent: Option<i64>,
        path: Option<&str>,
        p: Option<Permission>,
    ) -> Menu {
        Menu {
            id,
            code: code.into(),
            parent_id: parent,
            label_en: code.into(),
            label_fr: code.into(),
            path: path.map(Into::into),
            permission: p.map(|p| p.code().to_owned()),
            position: 0,
            builtin: true,
            by_role: false,
            chosen: None,
        }
    }

    #[test]
    fn builtin_tree_covers_every_menu_permission_once_per_leaf() {
        let codes: HashSet<_> = BUILTIN.iter().map(|b| b.code).collect();
        assert_eq!(codes.len(), BUILTIN.len(), "codes are unique");
        for b in BUILTIN {
            if let Some(parent) = b.parent {
                assert!(codes.contains(parent), "{} has a known parent", b.code);
            }
        }
        // Every permission a person can hold through the console has a menu; ingestion and
        // rules are API-only.
        for p in Permission::ALL {
            let has = BUILTIN.iter().any(|b| b.permission == Some(p));
            let api_only = matches!(p, Permission::AlertsIngest | Permission::AdminRules);
            assert_eq!(has, !api_only, "{p}");
        }
    }

    #[test]
    fn a_permission_is_withdrawn_only_when_all_its_menus_are_off() {
        let role = Role::Operator;
        let mut list = menu(
            2,
            "alerts.list",
            Some(1),
            Some("/alerts"),
            Some(Permission::AlertsView),
        );
        let mut search = menu(
            3,
            "alerts.search",
            Some(1),
            Some("/alerts/search"),
            Some(Permission::AlertsView),
        );
        list.by_role = true;
        search.by_role = true;
        let group = menu(1, "alerts", None, None, None);
        let menus = vec![group.clone(), list.clone(), search.clone()];
        assert!(permissions(&menus, role).contains(Permission::AlertsView));
        list.chosen = Some(false);
        let menus = vec![group.clone(), list.clone(), search.clone()];
        assert!(permissions(&menus, role).contains(Permission::AlertsView));
        let nav = navigation(&menus, role, false);
        assert_eq!(nav.len(), 1);
        assert_eq!(nav[0].children.len(), 1);
        search.chosen = Some(false);
        let menus = vec![group, list, search];
        assert!(!permissions(&menus, role).contains(Permission::AlertsView));
        assert!(
            navigation(&menus, role, false).is_empty(),
            "an empty group is hidden"
        );
        // A permission outside the role's ceiling never comes back through a choice.
        let mut edit = menu(4, "x", None, Some("/x"), Some(Permission::AdminUsers));
        edit.chosen = Some(true);
        assert!(!permissions(&[edit.clone()], role).contains(Permission::AdminUsers));
        assert!(!edit.enabled(role));
    }

    #[test]
    fn menu_forms_are_checked_field_by_field() {
        let form = MenuForm {
            code: "Bad Code".into(),
            path: Some("javascript:alert(1)".into()),
            permission: Some("root".into()),
            label_en: String::new(),
            label_fr: "ok".into(),
            position: -1,
            parent_id: Some(99),
            roles: vec!["boss".into()],
        };
        let fields: Vec<_> = validate(&form, &[1], false)
            .into_iter()
            .map(|(f, _)| f)
            .collect();
        for f in [
            "code",
            "path",
            "permission",
            "parent_id",
            "label_en",
            "position",
            "roles",
        ] {
            assert!(fields.contains(&f), "{f} in {fields:?}");
        }
        let good = MenuForm {
            code: "tools.nms".into(),
            path: Some("https://nms.example.org/".into()),
            label_en: "NMS".into(),
            label_fr: "NMS".into(),
            position: 5,
            parent_id: Some(1),
            roles: vec!["operator".into()],
            permission: None,
        };
        assert!(validate(&good, &[1], false).is_empty());
    }
}
