//! Roles and permissions: the default menu matrix of the domain as a closed set.
//!
//! Every action checks a [`Permission`] on the server; menus are only a view of the same data.

use std::fmt;
use std::str::FromStr;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    Admin,
    Operator,
    Manager,
    Oncall,
    User,
}

impl Role {
    pub const ALL: [Role; 5] = [
        Role::Admin,
        Role::Operator,
        Role::Manager,
        Role::Oncall,
        Role::User,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Operator => "operator",
            Role::Manager => "manager",
            Role::Oncall => "oncall",
            Role::User => "user",
        }
    }

    /// Whether this role holds `permission` by default (DOMAIN.md's matrix).
    pub fn grants(self, permission: Permission) -> bool {
        use Permission as P;
        use Role as R;
        match permission {
            P::AdminUsers
            | P::AdminMenus
            | P::AdminAudit
            | P::AdminSecurity
            | P::OncallEdit
            | P::AdminSources
            | P::AdminRules => self == R::Admin,
            P::OncallView => true,
            P::SupervisionView | P::EquipmentStats | P::ReportsGenerate | P::AlertsView => {
                matches!(self, R::Operator | R::Manager)
            }
            P::EquipmentEdit | P::AlertsAct | P::IncidentsManage => self == R::Operator,
            P::EquipmentAdmin => self == R::Manager,
            // Pushing alerts is what integrations do: their tokens belong to an operator or to
            // the administrator who set the integration up.
            P::AlertsIngest => matches!(self, R::Operator | R::Admin),
            P::IncidentsOpen | P::IncidentsQualify | P::KnowledgeBase => {
                matches!(self, R::Operator | R::Manager | R::Oncall | R::User)
            }
            P::IncidentsResolve => matches!(self, R::Operator | R::Manager | R::Oncall),
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, thiserror::Error)]
#[error("unknown role `{0}`: expected one of admin, operator, manager, oncall, user")]
pub struct UnknownRole(pub String);

impl FromStr for Role {
    type Err = UnknownRole;

    fn from_str(s: &str) -> Result<Role, UnknownRole> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| UnknownRole(s.to_owned()))
    }
}

/// Everything a user can be allowed to do. Closed on purpose: a new action gets a variant and a
/// line in [`Role::grants`], never a string comparison.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Permission {
    AdminUsers,
    AdminMenus,
    /// Reading the audit log.
    AdminAudit,
    /// Security settings: which roles must use a second factor.
    AdminSecurity,
    AdminSources,
    AdminRules,
    OncallView,
    OncallEdit,
    SupervisionView,
    EquipmentEdit,
    EquipmentStats,
    EquipmentAdmin,
    ReportsGenerate,
    AlertsView,
    /// Transfer, defer, archive, delete.
    AlertsAct,
    AlertsIngest,
    IncidentsOpen,
    IncidentsResolve,
    /// Transfer, edit, close, delete.
    IncidentsManage,
    IncidentsQualify,
    KnowledgeBase,
}

impl Permission {
    pub const ALL: [Permission; 21] = [
        Permission::AdminUsers,
        Permission::AdminMenus,
        Permission::AdminAudit,
        Permission::AdminSecurity,
        Permission::AdminSources,
        Permission::AdminRules,
        Permission::OncallView,
        Permission::OncallEdit,
        Permission::SupervisionView,
        Permission::EquipmentEdit,
        Permission::EquipmentStats,
        Permission::EquipmentAdmin,
        Permission::ReportsGenerate,
        Permission::AlertsView,
        Permission::AlertsAct,
        Permission::AlertsIngest,
        Permission::IncidentsOpen,
        Permission::IncidentsResolve,
        Permission::IncidentsManage,
        Permission::IncidentsQualify,
        Permission::KnowledgeBase,
    ];

    /// The stable name stored with menus and shown to administrators.
    pub fn code(self) -> &'static str {
        match self {
            Permission::AdminUsers => "admin_users",
            Permission::AdminMenus => "admin_menus",
            Permission::AdminAudit => "admin_audit",
            Permission::AdminSecurity => "admin_security",
            Permission::AdminSources => "admin_sources",
            Permission::AdminRules => "admin_rules",
            Permission::OncallView => "oncall_view",
            Permission::OncallEdit => "oncall_edit",
            Permission::SupervisionView => "supervision_view",
            Permission::EquipmentEdit => "equipment_edit",
            Permission::EquipmentStats => "equipment_stats",
            Permission::EquipmentAdmin => "equipment_admin",
            Permission::ReportsGenerate => "reports_generate",
            Permission::AlertsView => "alerts_view",
            Permission::AlertsAct => "alerts_act",
            Permission::AlertsIngest => "alerts_ingest",
            Permission::IncidentsOpen => "incidents_open",
            Permission::IncidentsResolve => "incidents_resolve",
            Permission::IncidentsManage => "incidents_manage",
            Permission::IncidentsQualify => "incidents_qualify",
            Permission::KnowledgeBase => "knowledge_base",
        }
    }

    fn bit(self) -> u32 {
        1 << (self as u32)
    }
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

#[derive(Debug, thiserror::Error)]
#[error("unknown permission `{0}`")]
pub struct UnknownPermission(pub String);

impl FromStr for Permission {
    type Err = UnknownPermission;

    fn from_str(s: &str) -> Result<Permission, UnknownPermission> {
        Permission::ALL
            .into_iter()
            .find(|p| p.code() == s)
            .ok_or_else(|| UnknownPermission(s.to_owned()))
    }
}

/// The permissions one user actually holds: their role's, less those the administrator turned
/// off for them by disabling every menu that carries it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct PermissionSet(u32);

impl PermissionSet {
    /// Everything the role holds by default.
    pub fn of_role(role: Role) -> PermissionSet {
        Permission::ALL
            .into_iter()
            .filter(|p| role.grants(*p))
            .fold(PermissionSet::default(), |set, p| set.with(p))
    }

    pub fn with(self, permission: Permission) -> PermissionSet {
        PermissionSet(self.0 | permission.bit())
    }

    pub fn without(self, permission: Permission) -> PermissionSet {
        PermissionSet(self.0 & !permission.bit())
    }

    pub fn contains(self, permission: Permission) -> bool {
        self.0 & permission.bit() != 0
    }

    pub fn iter(self) -> impl Iterator<Item = Permission> {
        Permission::ALL
            .into_iter()
            .filter(move |p| self.contains(*p))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_parse_and_print() {
        for role in Role::ALL {
            assert_eq!(role.as_str().parse::<Role>().ok(), Some(role));
        }
        assert!("root".parse::<Role>().is_err());
        assert!("Admin".parse::<Role>().is_err());
    }

    #[test]
    fn matrix_rows_match_the_domain() {
        use Permission as P;
        let holders = |p: Permission| -> Vec<&str> {
            Role::ALL
                .into_iter()
                .filter(|r| r.grants(p))
                .map(Role::as_str)
                .collect()
        };
        assert_eq!(holders(P::AdminUsers), ["admin"]);
        assert_eq!(holders(P::AlertsView), ["operator", "manager"]);
        assert_eq!(holders(P::AlertsAct), ["operator"]);
        assert_eq!(
            holders(P::IncidentsResolve),
            ["operator", "manager", "oncall"]
        );
        assert_eq!(
            holders(P::IncidentsQualify),
            ["operator", "manager", "oncall", "user"]
        );
        assert_eq!(holders(P::EquipmentAdmin), ["manager"]);
        assert_eq!(holders(P::OncallView).len(), 5);
    }

    #[test]
    fn permissions_parse_print_and_fit_a_set() {
        for p in Permission::ALL {
            assert_eq!(p.code().parse::<Permission>().ok(), Some(p));
        }
        assert!("everything".parse::<Permission>().is_err());
        let set = PermissionSet::of_role(Role::Manager);
        assert!(set.contains(Permission::AlertsView));
        assert!(!set.contains(Permission::AlertsAct));
        assert!(
            !set.without(Permission::AlertsView)
                .contains(Permission::AlertsView)
        );
        assert_eq!(
            set.iter().count(),
            Permission::ALL
                .iter()
                .filter(|p| Role::Manager.grants(**p))
                .count()
        );
    }
}
