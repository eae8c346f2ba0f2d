//! The dashboard's keys: one-time login links, and the cookies they set.
//!
//! A browser cannot send the admin API's bearer token, so `serve` prints
//! a link that works once: it sets an HttpOnly cookie holding a secret of
//! its own, which the admin listener then accepts like the token for
//! reads. Each link mints its own secret. The cookie's name carries this
//! target's id, so two targets on one host do not overwrite each other's.

use std::collections::HashSet;

use parking_lot::Mutex;
use rand::Rng;

use crate::auth::csrf::constant_time_eq;
use crate::site::state::random_hex;

/// Links not yet used, and cookies given out, remembered at most; past
/// that the oldest set is forgotten whole.
const MAX_KEYS: usize = 64;

/// The dashboard's cookie name, its secrets and its unused login links.
#[derive(Debug)]
pub struct DashboardKeys {
    cookie: String,
    links: Mutex<HashSet<String>>,
    secrets: Mutex<HashSet<String>>,
}

impl DashboardKeys {
    /// Fresh keys.
    pub fn generate(rng: &mut impl Rng) -> Self {
        Self {
            cookie: format!("sr_admin_{}", random_hex(rng, 4)),
            links: Mutex::new(HashSet::new()),
            secrets: Mutex::new(HashSet::new()),
        }
    }

    /// The cookie's name: `sr_admin_` and this target's id.
    pub fn cookie_name(&self) -> &str {
        &self.cookie
    }

    /// A new one-time login token.
    pub fn issue_link(&self) -> String {
        remember(&self.links, random_hex(&mut rand::rng(), 16))
    }

    /// Uses `token` up: a new cookie secret once for each issued token,
    /// `None` ever after and for a made-up one.
    pub fn redeem(&self, token: &str) -> Option<String> {
        if !self.links.lock().remove(token) {
            return None;
        }
        Some(remember(&self.secrets, random_hex(&mut rand::rng(), 16)))
    }

    /// Whether `secret` is a cookie a link gave out.
    pub fn accepts(&self, secret: &str) -> bool {
        let same = |s: &String| constant_time_eq(s.as_bytes(), secret.as_bytes());
        self.secrets
            .lock()
            .iter()
            .fold(false, |found, s| found | same(s))
    }
}

/// Adds `key` to `set` (forgetting the set when full) and returns it.
fn remember(set: &Mutex<HashSet<String>>, key: String) -> String {
    let mut set = set.lock();
    if set.len() >= MAX_KEYS {
        set.clear();
    }
    set.insert(key.clone());
    key
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_link_works_once_and_mints_a_cookie_of_its_own() {
        let keys = DashboardKeys::generate(&mut rand::rng());
        let (one, two) = (keys.issue_link(), keys.issue_link());
        assert_eq!(keys.redeem("0123456789abcdef0123456789abcdef"), None);
        let first = keys.redeem(&one).expect("a cookie");
        assert_eq!(keys.redeem(&one), None);
        let second = keys.redeem(&two).expect("a cookie");
        assert_ne!(first, second);
        assert!(keys.accepts(&first) && keys.accepts(&second));
        assert!(!keys.accepts("") && !keys.accepts(&one));
        let other = DashboardKeys::generate(&mut rand::rng());
        assert_ne!(keys.cookie_name(), other.cookie_name());
        assert!(keys.cookie_name().starts_with("sr_admin_"));
    }
}
