//! `[oncall]`: the routing of alerts to the people on duty when a domain has no routing rule of
//! its own (rules are edited in the console), and the acknowledgement links.
//!
//! ```toml
//! [oncall]
//! default_level = 2            # lowest level routed: 2 critical, 1 warning, 0 low
//! escalation_delay = "15m"     # nobody acknowledged: the next index is told
//! link_ttl = "24h"             # how long an acknowledgement link in a message stays valid
//! ```

use std::time::Duration;

use super::{Problems, Section};

/// The `[oncall]` settings, applied over the engine's defaults.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct OncallConfig {
    pub(crate) default_level: i32,
    pub(crate) escalation_delay: Duration,
    pub(crate) link_ttl: Duration,
}

impl Default for OncallConfig {
    fn default() -> OncallConfig {
        let d = vigie_oncall::escalation::OncallSettings::default();
        OncallConfig {
            default_level: d.default_level,
            escalation_delay: d.escalation_delay,
            link_ttl: d.link_ttl,
        }
    }
}

impl OncallConfig {
    /// The engine's settings: these over the console's (address, time zone, language).
    pub(crate) fn apply(
        &self,
        mut settings: vigie_oncall::escalation::OncallSettings,
    ) -> vigie_oncall::escalation::OncallSettings {
        settings.default_level = self.default_level;
        settings.escalation_delay = self.escalation_delay;
        settings.link_ttl = self.link_ttl;
        settings
    }
}

/// Reads `[oncall]`.
pub(super) fn read(s: &mut Section<'_>, cfg: &mut OncallConfig, p: &mut Problems) {
    if let Some(n) = s.u64_in(p, "default_level", 0..=2) {
        cfg.default_level = n as i32;
    }
    if let Some(d) = s.duration(p, "escalation_delay", Duration::from_secs(60)) {
        cfg.escalation_delay = d;
    }
    if let Some(d) = s.duration(p, "link_ttl", Duration::from_secs(300)) {
        cfg.link_ttl = d;
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use std::time::Duration;

    use super::super::load_from;

    #[test]
    fn oncall_keys_are_read_and_checked() {
        let dir = std::env::temp_dir().join(format!("vigie-oncall-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("vigie.toml");
        std::fs::write(
            &file,
            "[oncall]\ndefault_level = 1\nescalation_delay = \"5m\"\nlink_ttl = \"2h\"\n",
        )
        .unwrap();
        let c = load_from(Some(&file), &|_| None).expect("valid");
        assert_eq!(c.oncall.default_level, 1);
        assert_eq!(c.oncall.escalation_delay, Duration::from_secs(300));
        assert_eq!(c.oncall.link_ttl, Duration::from_secs(7200));
        std::fs::write(
            &file,
            "[oncall]\ndefault_level = 3\nescalation_delay = \"10s\"\nspeed = 1\n",
        )
        .unwrap();
        let problems = load_from(Some(&file), &|_| None).expect_err("invalid");
        let _ = std::fs::remove_dir_all(&dir);
        let keys: Vec<&str> = problems.iter().map(|p| p.key.as_str()).collect();
        assert!(keys.contains(&"oncall.default_level"), "{problems:?}");
        assert!(keys.contains(&"oncall.escalation_delay"), "{problems:?}");
        assert!(keys.contains(&"oncall.speed"), "{problems:?}");
    }
}
