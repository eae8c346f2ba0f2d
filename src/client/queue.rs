//! The page queue the workers share: discovery by `next`, retries at the failed page.
//!
//! Only page 1 is known at first. Each page fetched adds the pages its
//! `pages` and `next` fields reveal; a page whose `next` is null ends the
//! listing. A page that fails goes back to the queue and, being the lowest
//! pending page, is the next one handed out, so a worker resumes exactly
//! where the listing broke off.

use std::collections::BTreeSet;

use parking_lot::Mutex;
use tokio::sync::Notify;

/// The most pages one answer may reveal at once, against absurd `pages` fields.
const MAX_REVEAL: u32 = 100_000;

/// Pages to fetch, being fetched, and fetched.
#[derive(Debug, Default)]
pub(crate) struct Queue {
    state: Mutex<State>,
    changed: Notify,
}

#[derive(Debug)]
struct State {
    pending: BTreeSet<u32>,
    taken: BTreeSet<u32>,
    done: BTreeSet<u32>,
    /// The highest page known to exist.
    known: u32,
    /// The last page, once a page said `next: null`.
    last: Option<u32>,
    closed: bool,
}

impl Default for State {
    fn default() -> Self {
        Self {
            pending: BTreeSet::from([1]),
            taken: BTreeSet::new(),
            done: BTreeSet::new(),
            known: 1,
            last: None,
            closed: false,
        }
    }
}

impl Queue {
    /// The lowest pending page; waits while other workers hold pages that
    /// may reveal more. `None` when the listing is done or the queue closed.
    pub(crate) async fn take(&self) -> Option<u32> {
        loop {
            let changed = self.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            {
                let mut s = self.state.lock();
                if s.closed {
                    return None;
                }
                if let Some(page) = s.pending.pop_first() {
                    s.taken.insert(page);
                    return Some(page);
                }
                if s.taken.is_empty() {
                    return None;
                }
            }
            changed.await;
        }
    }

    /// Page `page` was fetched; it said `next` and, maybe, `pages`.
    pub(crate) fn done(&self, page: u32, next: Option<u32>, pages: Option<u32>) {
        let mut s = self.state.lock();
        s.taken.remove(&page);
        s.done.insert(page);
        match next {
            None => {
                s.last = Some(s.last.map_or(page, |l| l.min(page)));
                s.pending.retain(|p| *p <= page);
            }
            Some(next) => {
                let upper = next.max(pages.unwrap_or(0)).min(s.known + MAX_REVEAL);
                for p in s.known + 1..=upper {
                    if s.last.is_none_or(|l| p <= l) {
                        s.pending.insert(p);
                    }
                }
                s.known = s.known.max(upper);
                if !s.done.contains(&next) && !s.taken.contains(&next) {
                    s.pending.insert(next);
                }
            }
        }
        drop(s);
        self.changed.notify_waiters();
    }

    /// Page `page` failed; it goes back to the front of the queue.
    pub(crate) fn retry(&self, page: u32) {
        let mut s = self.state.lock();
        if s.taken.remove(&page) && !s.done.contains(&page) {
            s.pending.insert(page);
        }
        drop(s);
        self.changed.notify_waiters();
    }

    /// Stops handing out pages, waking every waiting worker.
    pub(crate) fn close(&self) {
        self.state.lock().closed = true;
        self.changed.notify_waiters();
    }

    /// Whether every page was fetched and the end of the listing seen.
    pub(crate) fn is_complete(&self) -> bool {
        let s = self.state.lock();
        s.last.is_some() && s.pending.is_empty() && s.taken.is_empty()
    }

    /// Pages fetched, and the number of pages when known.
    pub(crate) fn progress(&self) -> (usize, Option<u32>) {
        let s = self.state.lock();
        (s.done.len(), s.last.or((s.known > 1).then_some(s.known)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn pages_are_discovered_and_a_failed_page_comes_back_first() {
        let q = Queue::default();
        assert_eq!(q.take().await, Some(1));
        q.done(1, Some(2), Some(4));
        assert_eq!(q.take().await, Some(2));
        assert_eq!(q.take().await, Some(3));
        q.retry(2);
        assert_eq!(q.take().await, Some(2), "the failed page first");
        q.done(2, Some(3), Some(4));
        q.done(3, Some(4), Some(4));
        assert!(!q.is_complete());
        assert_eq!(q.take().await, Some(4));
        q.done(4, None, Some(4));
        assert_eq!(q.take().await, None);
        assert!(q.is_complete());
        assert_eq!(q.progress(), (4, Some(4)));
    }

    #[tokio::test]
    async fn a_waiting_worker_wakes_when_a_page_reveals_more() {
        let q = std::sync::Arc::new(Queue::default());
        assert_eq!(q.take().await, Some(1));
        let waiter = tokio::spawn({
            let q = q.clone();
            async move { q.take().await }
        });
        tokio::task::yield_now().await;
        q.done(1, Some(2), None);
        assert_eq!(waiter.await.expect("joins"), Some(2));
    }

    #[tokio::test]
    async fn the_end_of_the_listing_drops_pages_past_it_and_close_stops_all() {
        let q = Queue::default();
        assert_eq!(q.take().await, Some(1));
        q.done(1, Some(2), Some(5));
        assert_eq!(q.take().await, Some(2));
        q.done(2, None, None);
        assert_eq!(q.take().await, None);
        assert!(q.is_complete());
        let q = Queue::default();
        q.close();
        assert_eq!(q.take().await, None);
    }
}
