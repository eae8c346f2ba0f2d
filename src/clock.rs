//! The one source of "now": the system clock, or a manual clock for tests.
//!
//! Nothing in the engine reads the wall clock. The shell reads a [`Clock`]
//! once per request and passes the [`Timestamp`] down.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

/// A point in time: milliseconds since the Unix epoch.
///
/// Milliseconds are fine-grained enough for every rule (the tightest is a
/// rate limit of a few hundred requests per second) and keep events small.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Timestamp(u64);

impl Timestamp {
    /// The Unix epoch.
    pub const EPOCH: Self = Self(0);

    /// A timestamp `ms` milliseconds after the Unix epoch.
    pub const fn from_millis(ms: u64) -> Self {
        Self(ms)
    }

    /// A timestamp `s` seconds after the Unix epoch.
    pub const fn from_secs(s: u64) -> Self {
        Self(s.saturating_mul(1000))
    }

    /// Milliseconds since the Unix epoch.
    pub const fn as_millis(self) -> u64 {
        self.0
    }

    /// Whole seconds since the Unix epoch.
    pub const fn as_secs(self) -> u64 {
        self.0 / 1000
    }

    /// This timestamp moved forward by `d` (saturating).
    pub fn plus(self, d: Duration) -> Self {
        Self(self.0.saturating_add(millis(d)))
    }

    /// The time from `earlier` to `self`, or zero if `earlier` is later.
    pub fn since(self, earlier: Self) -> Duration {
        Duration::from_millis(self.0.saturating_sub(earlier.0))
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = UNIX_EPOCH + Duration::from_millis(self.0);
        write!(f, "{}", humantime::format_rfc3339_millis(t))
    }
}

/// A duration in whole milliseconds, saturating at `u64::MAX`.
pub(crate) fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// The source of "now" for the whole crate. Cheap to clone.
///
/// Clones of a manual clock share one time, so a test can hold one clone
/// and advance the time that a server sees through another.
///
/// ```
/// use sessionrange::{Clock, Timestamp};
/// use std::time::Duration;
///
/// let clock = Clock::manual(Timestamp::from_secs(1_000));
/// let shared = clock.clone();
/// shared.advance(Duration::from_secs(5));
/// assert_eq!(clock.now(), Timestamp::from_secs(1_005));
/// ```
#[derive(Clone, Debug)]
pub struct Clock(Source);

#[derive(Clone, Debug)]
enum Source {
    System,
    Manual(Arc<AtomicU64>),
}

impl Clock {
    /// The wall clock.
    pub fn system() -> Self {
        Self(Source::System)
    }

    /// A clock that stands still at `start` until advanced.
    pub fn manual(start: Timestamp) -> Self {
        Self(Source::Manual(Arc::new(AtomicU64::new(start.0))))
    }

    /// The current time.
    pub fn now(&self) -> Timestamp {
        match &self.0 {
            Source::System => {
                let since = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .unwrap_or_default();
                Timestamp(millis(since))
            }
            Source::Manual(t) => Timestamp(t.load(Ordering::SeqCst)),
        }
    }

    /// Whether this is a manual clock.
    pub fn is_manual(&self) -> bool {
        matches!(self.0, Source::Manual(_))
    }

    /// Moves a manual clock forward by `d`. Does nothing on the system clock.
    pub fn advance(&self, d: Duration) {
        if let Source::Manual(t) = &self.0 {
            t.fetch_add(millis(d), Ordering::SeqCst);
        }
    }

    /// Sets a manual clock to `to`. Does nothing on the system clock.
    pub fn set(&self, to: Timestamp) {
        if let Source::Manual(t) = &self.0 {
            t.store(to.0, Ordering::SeqCst);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_clones_share_time() {
        let a = Clock::manual(Timestamp::from_secs(10));
        let b = a.clone();
        b.advance(Duration::from_millis(1500));
        assert_eq!(a.now(), Timestamp::from_millis(11_500));
        a.set(Timestamp::from_secs(3));
        assert_eq!(b.now(), Timestamp::from_secs(3));
    }

    #[test]
    fn system_clock_ignores_advance_and_moves_on_its_own() {
        let c = Clock::system();
        let before = c.now();
        c.advance(Duration::from_secs(3600));
        assert!(c.now() >= before);
        assert!(c.now() < before.plus(Duration::from_secs(60)));
        assert!(!c.is_manual());
    }

    #[test]
    fn since_saturates_at_zero() {
        let a = Timestamp::from_secs(5);
        assert_eq!(a.since(Timestamp::from_secs(9)), Duration::ZERO);
        assert_eq!(Timestamp::from_secs(9).since(a), Duration::from_secs(4));
    }
}
