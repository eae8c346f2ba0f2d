//! Pacing: jittered gaps between requests, shared by every session of an account.
//!
//! The target limits each session and each account (GCRA), and flags gaps
//! that are too regular (the robotic-cadence rule measures their
//! coefficient of variation). So each request reserves the next slot of
//! its account's pacer, and slots are a base gap apart, stretched or
//! shrunk by a uniform jitter of ±35 % (a coefficient of variation near
//! 0.2, far above any sane cadence threshold). The shortest gap is then
//! 0.65 of the mean, so at 4 requests per second no one-second window
//! ever holds more than 7 requests. A `429` slows the pacer down for the
//! rest of the run.

use std::time::Duration;

use parking_lot::Mutex;
use rand::Rng as _;
use tokio::time::Instant;

/// How far a gap strays from the base, either way.
const JITTER: f64 = 0.35;
/// The most a pacer slows down, as a multiple of its base gap.
const MAX_SLOWDOWN: f64 = 4.0;

/// The request slots of one account.
#[derive(Debug)]
pub(crate) struct Pacer {
    /// The mean gap; `None` paces nothing (`--bug no-pacing`).
    base: Option<Duration>,
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    next: Instant,
    slowdown: f64,
}

impl Pacer {
    /// A pacer for `rate` requests per second, or none at all.
    pub(crate) fn new(rate: Option<f64>) -> Self {
        Self {
            base: rate.map(|r| Duration::from_secs_f64(1.0 / r)),
            state: Mutex::new(State {
                next: Instant::now(),
                slowdown: 1.0,
            }),
        }
    }

    /// Waits for this request's slot.
    pub(crate) async fn wait(&self) {
        if let Some(at) = self.reserve(Instant::now()) {
            tokio::time::sleep_until(at).await;
        }
    }

    /// Takes the next slot at or after `now`; `None` when nothing is paced.
    fn reserve(&self, now: Instant) -> Option<Instant> {
        let base = self.base?;
        let mut s = self.state.lock();
        let at = s.next.max(now);
        let factor = rand::rng().random_range(1.0 - JITTER..1.0 + JITTER);
        s.next = at + base.mul_f64(factor * s.slowdown);
        Some(at)
    }

    /// Pushes the next slot back by `pause` and makes every later gap
    /// longer, after the target said `429`.
    pub(crate) fn slow_down(&self, pause: Duration) {
        let mut s = self.state.lock();
        s.slowdown = (s.slowdown * 1.5).min(MAX_SLOWDOWN);
        s.next = s.next.max(Instant::now() + pause);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gaps(pacer: &Pacer, n: usize) -> Vec<f64> {
        let now = Instant::now();
        let slots: Vec<Instant> = (0..n).filter_map(|_| pacer.reserve(now)).collect();
        slots
            .windows(2)
            .map(|w| w[1].duration_since(w[0]).as_secs_f64())
            .collect()
    }

    #[test]
    fn gaps_are_jittered_around_the_base() {
        let gaps = gaps(&Pacer::new(Some(10.0)), 200);
        let mean = gaps.iter().sum::<f64>() / gaps.len() as f64;
        let var = gaps.iter().map(|g| (g - mean).powi(2)).sum::<f64>() / gaps.len() as f64;
        assert!((0.09..0.11).contains(&mean), "mean gap {mean}");
        assert!(var.sqrt() / mean > 0.15, "too regular");
        assert!(gaps.iter().all(|g| (0.0649..0.1351).contains(g)));
    }

    #[test]
    fn slowing_down_pushes_the_next_slot_and_stretches_gaps() {
        let pacer = Pacer::new(Some(10.0));
        let now = Instant::now();
        pacer.slow_down(Duration::from_secs(2));
        let first = pacer.reserve(now).expect("paced");
        assert!(first >= now + Duration::from_secs(2));
        let gaps = gaps(&pacer, 50);
        assert!(gaps.iter().all(|g| *g > 0.089), "gaps are 1.5 times longer");
    }

    #[test]
    fn no_pacer_never_waits() {
        assert_eq!(Pacer::new(None).reserve(Instant::now()), None);
    }
}
