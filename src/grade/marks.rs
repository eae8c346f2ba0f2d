//! Each session's requests as marks on a time axis, kept online: a streaming histogram whose buckets widen as the run goes on.
//!
//! The run's length is not known while it runs, so each session keeps
//! up to [`FINE`] buckets of one shared width, starting at one
//! millisecond. A request past the last bucket doubles the width and
//! merges every session's buckets pairwise, as often as needed. A session
//! therefore holds at most [`FINE`] small buckets however many requests
//! it makes, and the whole costs memory in proportion to sessions. At the
//! end the buckets are laid onto the [`BUCKETS`] of the drawing: each
//! drawn bucket is one or two of these.

use std::collections::HashMap;
use std::time::Duration;

use crate::clock::Timestamp;
use crate::grade::view::{BUCKETS, Bucket, Mark};
use crate::session::SessionId;
use crate::verdict::Reason;

/// Buckets per session while the run goes on: twice the drawing's, so
/// that a drawn bucket is never narrower than one of these.
pub const FINE: usize = 2 * BUCKETS;

/// One bucket while the run goes on (8 bytes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Fine {
    index: u16,
    mark: Mark,
    reason: Option<Reason>,
    requests: u32,
}

impl Fine {
    /// Takes `other`'s requests in: the worse mark wins, and with it its
    /// reason; on a tie the later reason, if any.
    fn absorb(&mut self, other: Self) {
        if other.mark >= self.mark {
            self.mark = other.mark;
            self.reason = other.reason.or(self.reason);
        }
        self.requests = self.requests.saturating_add(other.requests);
    }
}

/// Every drawn session's marks, bucketed as they come.
#[derive(Debug)]
pub struct Marks {
    origin: Option<Timestamp>,
    /// The width of a bucket, in milliseconds: a power of two.
    width: u64,
    sessions: HashMap<SessionId, Vec<Fine>>,
}

impl Default for Marks {
    fn default() -> Self {
        Self {
            origin: None,
            width: 1,
            sessions: HashMap::new(),
        }
    }
}

impl Marks {
    /// Sets the axis's zero at `at`, if nothing set it yet. A mark earlier
    /// than the zero goes in the first bucket.
    pub fn start(&mut self, at: Timestamp) {
        self.origin.get_or_insert(at);
    }

    /// The axis's zero, once something set it.
    pub fn origin(&self) -> Option<Timestamp> {
        self.origin
    }

    /// Marks are kept for `id` from now on.
    pub fn track(&mut self, id: SessionId) {
        self.sessions.entry(id).or_default();
    }

    /// Sessions tracked.
    pub fn sessions(&self) -> usize {
        self.sessions.len()
    }

    /// Adds one request of a tracked session; others are ignored.
    pub fn add(&mut self, id: SessionId, at: Timestamp, mark: Mark, reason: Option<Reason>) {
        if !self.sessions.contains_key(&id) {
            return;
        }
        let origin = *self.origin.get_or_insert(at);
        let ms = at.since(origin).as_millis();
        let ms = u64::try_from(ms).unwrap_or(u64::MAX);
        while ms / self.width >= FINE as u64 {
            self.widen();
        }
        let request = Fine {
            index: (ms / self.width) as u16,
            mark,
            reason,
            requests: 1,
        };
        if let Some(buckets) = self.sessions.get_mut(&id) {
            insert(buckets, request);
        }
    }

    /// Doubles the buckets' width, merging each session's pairwise.
    fn widen(&mut self) {
        self.width = self.width.saturating_mul(2);
        for buckets in self.sessions.values_mut() {
            for b in std::mem::take(buckets) {
                push_merged(
                    buckets,
                    Fine {
                        index: b.index / 2,
                        ..b
                    },
                );
            }
        }
    }

    /// `id`'s marks laid onto the drawing's [`BUCKETS`] over `span` from
    /// the axis's zero, in time order.
    pub fn drawn(&self, id: SessionId, span: Duration) -> Vec<Bucket> {
        let span_ms = u64::try_from(span.as_millis()).unwrap_or(u64::MAX).max(1);
        let mut out: Vec<Fine> = Vec::new();
        for f in self
            .sessions
            .get(&id)
            .map(Vec::as_slice)
            .unwrap_or_default()
        {
            let middle = u64::from(f.index) * self.width + self.width / 2;
            let index = drawn_index(middle.min(span_ms), span_ms);
            push_merged(&mut out, Fine { index, ..*f });
        }
        let drawn = out.into_iter().map(|f| Bucket {
            index: usize::from(f.index),
            mark: f.mark,
            requests: f.requests,
            reason: f.reason,
        });
        drawn.collect()
    }
}

/// Appends a bucket to buckets in index order, merged into the last if
/// it has the same index.
fn push_merged(buckets: &mut Vec<Fine>, b: Fine) {
    match buckets.last_mut() {
        Some(last) if last.index == b.index => last.absorb(b),
        _ => buckets.push(b),
    }
}

/// Puts a request into a session's buckets, kept in index order (the
/// trace is in time order, nearly, so it almost always goes last).
fn insert(buckets: &mut Vec<Fine>, request: Fine) {
    let at = buckets.partition_point(|b| b.index < request.index);
    match buckets.get_mut(at) {
        Some(b) if b.index == request.index => b.absorb(request),
        _ => buckets.insert(at, request),
    }
}

/// The drawn bucket of a moment `ms` into a span of `span_ms`.
fn drawn_index(ms: u64, span_ms: u64) -> u16 {
    let i = (u128::from(ms) * BUCKETS as u128) / u128::from(span_ms);
    i.min(BUCKETS as u128 - 1) as u16
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ms: u64) -> Timestamp {
        Timestamp::from_millis(1_000_000 + ms)
    }

    #[test]
    fn a_bucket_is_eight_bytes() {
        assert_eq!(std::mem::size_of::<Fine>(), 8);
    }

    #[test]
    fn a_long_run_keeps_at_most_fine_buckets_per_session() {
        let mut marks = Marks::default();
        let id = SessionId::from_u128(1);
        marks.start(at(0));
        marks.track(id);
        for ms in 0..100_000 {
            marks.add(id, at(ms), Mark::Allowed, None);
        }
        assert!(marks.sessions[&id].len() <= FINE);
        let drawn = marks.drawn(id, Duration::from_millis(100_000));
        assert_eq!(drawn.len(), BUCKETS, "every drawn bucket saw requests");
        let total: u32 = drawn.iter().map(|b| b.requests).sum();
        assert_eq!(total, 100_000, "no request is lost");
        // Each drawn bucket holds about a 120th of the run.
        for b in &drawn {
            assert!((b.requests as i64 - 833).abs() < 833, "{b:?}");
        }
    }

    #[test]
    fn the_worst_mark_and_its_reason_survive_merging() {
        let mut marks = Marks::default();
        let id = SessionId::from_u128(1);
        marks.start(at(0));
        marks.track(id);
        marks.add(id, at(10), Mark::Allowed, None);
        marks.add(id, at(11), Mark::Refused, Some(Reason::AsnDrift));
        marks.add(id, at(12), Mark::InFlight, None);
        marks.add(id, at(60_000), Mark::Zombie, None);
        let drawn = marks.drawn(id, Duration::from_millis(60_000));
        assert_eq!(drawn.len(), 2);
        assert_eq!(drawn[0].index, 0);
        assert_eq!(
            drawn[0].mark,
            Mark::Refused,
            "refused is worse than in flight"
        );
        assert_eq!(drawn[0].reason, Some(Reason::AsnDrift));
        assert_eq!(drawn[0].requests, 3);
        assert_eq!((drawn[1].index, drawn[1].mark), (BUCKETS - 1, Mark::Zombie));
    }

    #[test]
    fn late_and_early_lines_and_untracked_sessions() {
        let mut marks = Marks::default();
        let (id, other) = (SessionId::from_u128(1), SessionId::from_u128(2));
        marks.start(at(100));
        marks.track(id);
        marks.add(id, at(900), Mark::Allowed, None);
        marks.add(id, at(500), Mark::Refused, None);
        marks.add(id, at(0), Mark::Allowed, None);
        marks.add(other, at(700), Mark::Zombie, None);
        let drawn = marks.drawn(id, Duration::from_millis(800));
        let indices: Vec<usize> = drawn.iter().map(|b| b.index).collect();
        assert_eq!(indices, [0, 60, 119]);
        assert!(marks.drawn(other, Duration::from_millis(800)).is_empty());
        assert_eq!(marks.sessions(), 1);
    }
}
