//! A short-lived cache of authenticated tokens, so that a busy integration does not cost one
//! store round trip per request.
//!
//! Entries live [`TokenCache::TTL`]: a token revoked (or a user disabled) by another hub process
//! stops working within that delay; [`TokenCache::forget`] makes it immediate in this process.
//! Failed look-ups are never cached.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::guard::Caller;

#[derive(Debug, Default)]
pub struct TokenCache {
    entries: Mutex<HashMap<String, (Caller, Instant)>>,
}

impl TokenCache {
    pub const TTL: Duration = Duration::from_secs(10);
    /// Beyond this many entries the cache starts over, so memory stays bounded.
    const MAX_ENTRIES: usize = 10_000;

    /// The caller for a token digest, if cached and fresh.
    pub fn get(&self, digest: &str) -> Option<Caller> {
        let entries = self.entries.lock().ok()?;
        entries
            .get(digest)
            .filter(|(_, at)| at.elapsed() < Self::TTL)
            .map(|(caller, _)| caller.clone())
    }

    pub fn put(&self, digest: String, caller: Caller) {
        if let Ok(mut entries) = self.entries.lock() {
            if entries.len() >= Self::MAX_ENTRIES {
                entries.clear();
            }
            entries.insert(digest, (caller, Instant::now()));
        }
    }

    /// Forgets every token of a user (revoked, disabled, role changed).
    pub fn forget(&self, user_id: i64) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.retain(|_, (caller, _)| caller.user_id != user_id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vigie_core::role::Role;

    #[test]
    fn entries_are_kept_then_forgotten() {
        let cache = TokenCache::default();
        let caller = Caller {
            user_id: 7,
            login: "ops".into(),
            role: Role::Operator,
            permissions: vigie_core::role::PermissionSet::of_role(Role::Operator),
        };
        assert_eq!(cache.get("d"), None);
        cache.put("d".into(), caller.clone());
        assert_eq!(cache.get("d"), Some(caller));
        cache.forget(7);
        assert_eq!(cache.get("d"), None);
    }
}
