//! A sharded, bounded map: many short critical sections instead of one lock.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hash};

use foldhash::fast::FixedState;
use parking_lot::{Mutex, MutexGuard};

/// One shard's map. foldhash with a fixed seed: several times faster than
/// SipHash on 16-byte keys, and deterministic. Keys are server-chosen
/// random session ids and configured account names, so an attacker cannot
/// pick colliding keys to insert.
pub(crate) type Map<K, V> = HashMap<K, V, FixedState>;

/// A map split into independently locked shards.
///
/// Locks are `parking_lot::Mutex`: every critical section is a few hundred
/// nanoseconds of pure computation and never spans an `.await`.
#[derive(Debug)]
pub(crate) struct Shards<K, V> {
    shards: Box<[Mutex<Map<K, V>>]>,
    mask: usize,
    hasher: FixedState,
}

impl<K: Hash + Eq, V> Shards<K, V> {
    /// `count` shards; `count` must be a power of two.
    pub(crate) fn new(count: usize) -> Self {
        let count = count.max(1).next_power_of_two();
        Self {
            shards: (0..count).map(|_| Mutex::new(Map::default())).collect(),
            mask: count - 1,
            // A seed other than the maps' own, so shard choice and bucket
            // choice use independent bits.
            hasher: FixedState::with_seed(0x5e55_10e5),
        }
    }

    /// The locked shard that holds `key`.
    pub(crate) fn shard<Q: Hash + ?Sized>(&self, key: &Q) -> MutexGuard<'_, Map<K, V>> {
        let i = (self.hasher.hash_one(key) as usize) & self.mask;
        self.shards[i].lock()
    }

    /// Every shard, locked one at a time.
    pub(crate) fn each(&self) -> impl Iterator<Item = MutexGuard<'_, Map<K, V>>> {
        self.shards.iter().map(Mutex::lock)
    }

    /// The number of shards.
    pub(crate) fn count(&self) -> usize {
        self.shards.len()
    }

    /// Entries across all shards.
    pub(crate) fn len(&self) -> usize {
        self.each().map(|s| s.len()).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_land_in_one_shard_consistently() {
        let s: Shards<u32, u32> = Shards::new(8);
        for k in 0..1000 {
            s.shard(&k).insert(k, k * 2);
        }
        assert_eq!(s.len(), 1000);
        assert_eq!(s.shard(&77).get(&77), Some(&154));
        assert!(s.each().all(|m| !m.is_empty()));
        assert_eq!(s.count(), 8);
    }
}
