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
            P::AdminUsers | P::AdminMenus | P::OncallEdit | P::AdminSources | P::AdminRules => {
                self == R::Admin
            }
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
}
