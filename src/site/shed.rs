//! Connections that hold a descriptor and serve nothing yet, oldest first, so that running out of descriptors sheds them and not live clients.
//!
//! When `accept` fails with `EMFILE` or `ENFILE`, the accept loop closes
//! the oldest of these (peers still in their opening: PROXY header,
//! ClientHello, TLS handshake, the first bytes of HTTP) and backs off.
//! The registry is shared by every listener of a target: descriptors are
//! the process's, not a listener's.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;
use tokio::sync::Notify;

/// The silent connections of a target, in the order they began waiting.
#[derive(Debug, Default)]
pub(crate) struct Idlers {
    waiting: Mutex<BTreeMap<u64, Arc<Notify>>>,
    next: AtomicU64,
}

impl Idlers {
    /// Registers a connection as silent until the returned guard drops.
    pub(crate) fn enter(self: &Arc<Self>) -> Idling {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let shed = Arc::new(Notify::new());
        self.waiting.lock().insert(id, Arc::clone(&shed));
        Idling {
            idlers: Arc::clone(self),
            id,
            shed,
        }
    }

    /// Tells the `n` oldest silent connections to close; returns how many there were.
    pub(crate) fn shed_oldest(&self, n: usize) -> usize {
        let mut waiting = self.waiting.lock();
        let mut shed = 0;
        while shed < n {
            let Some((_, notify)) = waiting.pop_first() else {
                break;
            };
            notify.notify_one();
            shed += 1;
        }
        shed
    }
}

/// One silent connection's place in the registry.
#[derive(Debug)]
pub(crate) struct Idling {
    idlers: Arc<Idlers>,
    id: u64,
    shed: Arc<Notify>,
}

impl Idling {
    /// Resolves when the connection is to be closed to free its descriptor.
    pub(crate) async fn shed(&self) {
        self.shed.notified().await;
    }
}

impl Drop for Idling {
    fn drop(&mut self) {
        self.idlers.waiting.lock().remove(&self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_oldest_are_shed_first_and_a_finished_wait_is_forgotten() {
        let idlers = Arc::new(Idlers::default());
        let (old, done, young) = (idlers.enter(), idlers.enter(), idlers.enter());
        drop(done);
        assert_eq!(idlers.shed_oldest(1), 1);
        old.shed().await;
        assert_eq!(idlers.shed_oldest(5), 1, "only the young one is left");
        young.shed().await;
        assert_eq!(idlers.shed_oldest(5), 0);
    }
}
