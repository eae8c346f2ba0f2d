//! A bounded string interner, so that sessions born from one client share strings.

use std::collections::HashSet;
use std::sync::Arc;

use parking_lot::Mutex;

/// Interns strings as `Arc<str>`.
///
/// Only logins intern, so one mutex is enough. The set is bounded: past
/// `capacity` distinct strings (a client sending random User-Agents), new
/// strings are allocated on their own instead of growing the set forever.
#[derive(Debug)]
pub(crate) struct Interner {
    set: Mutex<HashSet<Arc<str>>>,
    capacity: usize,
}

impl Interner {
    /// An interner that holds at most `capacity` distinct strings.
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            set: Mutex::new(HashSet::new()),
            capacity,
        }
    }

    /// Forgets every interned string (strings in use stay alive).
    pub(crate) fn clear(&self) {
        self.set.lock().clear();
    }

    /// The shared copy of `s`.
    pub(crate) fn intern(&self, s: &str) -> Arc<str> {
        let mut set = self.set.lock();
        if let Some(found) = set.get(s) {
            return Arc::clone(found);
        }
        let fresh: Arc<str> = Arc::from(s);
        if set.len() < self.capacity {
            set.insert(Arc::clone(&fresh));
        }
        fresh
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interned_strings_share_one_allocation_until_full() {
        let i = Interner::new(1);
        let a = i.intern("curl/8");
        let b = i.intern("curl/8");
        assert!(Arc::ptr_eq(&a, &b));
        let c = i.intern("wget");
        let d = i.intern("wget");
        assert_eq!(c, d);
        assert!(!Arc::ptr_eq(&c, &d));
    }
}
