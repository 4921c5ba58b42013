//! Domains: the families of supervised resources (network & telecom, systems, …). The list is
//! configurable; every alert and incident belongs to one of them.

/// One domain as configured.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DomainDef {
    /// Stable identifier used in the store, the API and the rules (`network`).
    pub id: String,
    /// Short code used in incident references (`YEAR/CODE/N`).
    pub code: String,
    pub label_en: String,
    pub label_fr: String,
}

impl DomainDef {
    fn new(id: &str, code: &str, label_en: &str, label_fr: &str) -> DomainDef {
        DomainDef {
            id: id.to_owned(),
            code: code.to_owned(),
            label_en: label_en.to_owned(),
            label_fr: label_fr.to_owned(),
        }
    }
}

/// The configured list of domains.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Domains(Vec<DomainDef>);

impl Domains {
    pub fn new(list: Vec<DomainDef>) -> Domains {
        Domains(list)
    }

    pub fn contains(&self, id: &str) -> bool {
        self.0.iter().any(|d| d.id == id)
    }

    pub fn get(&self, id: &str) -> Option<&DomainDef> {
        self.0.iter().find(|d| d.id == id)
    }

    pub fn ids(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(|d| d.id.as_str())
    }

    pub fn list(&self) -> &[DomainDef] {
        &self.0
    }
}

impl Default for Domains {
    /// The domains named by the design study.
    fn default() -> Domains {
        Domains(vec![
            DomainDef::new("network", "NET", "Network & telecom", "Réseaux & télécoms"),
            DomainDef::new("systems", "SYS", "Systems", "Systèmes"),
            DomainDef::new(
                "applications",
                "APP",
                "Databases & applications",
                "Bases de données & applications",
            ),
            DomainDef::new("backup", "BAK", "Backups", "Sauvegardes"),
            DomainDef::new("helpdesk", "HLP", "Helpdesk", "Assistance"),
            DomainDef::new("incident", "INC", "Incidents", "Incidents"),
        ])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_domains_are_the_studys() {
        let d = Domains::default();
        let ids: Vec<_> = d.ids().collect();
        assert_eq!(
            ids,
            [
                "network",
                "systems",
                "applications",
                "backup",
                "helpdesk",
                "incident"
            ]
        );
        assert!(d.contains("backup"));
        assert!(!d.contains("Network"));
        assert_eq!(d.get("network").map(|x| x.code.as_str()), Some("NET"));
    }
}
