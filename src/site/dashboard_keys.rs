//! The dashboard's keys: one-time login links, and the secret of the cookie they set.
//!
//! A browser cannot send the admin API's bearer token, so `serve` prints
//! a link that works once: it sets an HttpOnly cookie holding a secret of
//! its own, which the admin listener then accepts like the token.

use std::collections::HashSet;

use parking_lot::Mutex;
use rand::Rng;

use crate::site::state::random_hex;

/// Links not yet used that are remembered; issuing more forgets them all.
const MAX_LINKS: usize = 64;

/// The dashboard's cookie secret and its unused login links.
#[derive(Debug)]
pub struct DashboardKeys {
    secret: String,
    links: Mutex<HashSet<String>>,
}

impl DashboardKeys {
    /// Fresh keys.
    pub fn generate(rng: &mut impl Rng) -> Self {
        Self {
            secret: random_hex(rng, 16),
            links: Mutex::new(HashSet::new()),
        }
    }

    /// The cookie's value.
    pub fn secret(&self) -> &str {
        &self.secret
    }

    /// A new one-time login token.
    pub fn issue_link(&self) -> String {
        let token = random_hex(&mut rand::rng(), 16);
        let mut links = self.links.lock();
        if links.len() >= MAX_LINKS {
            links.clear();
        }
        links.insert(token.clone());
        token
    }

    /// Uses `token` up: true once for each issued token, never again.
    pub fn redeem(&self, token: &str) -> bool {
        self.links.lock().remove(token)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_link_works_once_and_a_made_up_one_never() {
        let keys = DashboardKeys::generate(&mut rand::rng());
        let link = keys.issue_link();
        assert!(!keys.redeem("0123456789abcdef0123456789abcdef"));
        assert!(keys.redeem(&link));
        assert!(!keys.redeem(&link));
        assert_ne!(keys.issue_link(), keys.issue_link());
        assert_eq!(keys.secret().len(), 32);
    }
}
