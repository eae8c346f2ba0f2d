//! When scripted faults fire: counts, time and seeded chance, decided without I/O.

use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::clock::Timestamp;
use crate::pool::config::{FaultConfig, FaultKind};

/// The faults of one proxy node and what it has served so far.
#[derive(Debug)]
pub struct FaultPlan {
    faults: Vec<FaultConfig>,
    started: Timestamp,
    requests: u64,
    connections: u64,
    rng: StdRng,
}

/// What the faults say about one new connection.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ConnectionFaults {
    /// Faults that fired, in configuration order.
    pub fired: Vec<FaultKind>,
    /// Reset the connection after this many bytes sent to the client.
    pub reset_after: Option<u64>,
    /// Send at most this many bytes per second to the client.
    pub bytes_per_sec: Option<u64>,
}

/// What the faults say about one request.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RequestFaults {
    /// Faults that fired, in configuration order.
    pub fired: Vec<FaultKind>,
    /// Wait this long before forwarding.
    pub delay: Option<Duration>,
}

impl ConnectionFaults {
    /// Whether `kind` fired.
    pub fn has(&self, kind: FaultKind) -> bool {
        self.fired.contains(&kind)
    }
}

impl RequestFaults {
    /// Whether `kind` fired.
    pub fn has(&self, kind: FaultKind) -> bool {
        self.fired.contains(&kind)
    }
}

impl FaultPlan {
    /// A plan for `faults`, with time counted from `started`.
    pub fn new(faults: Vec<FaultConfig>, seed: u64, started: Timestamp) -> Self {
        Self {
            faults,
            started,
            requests: 0,
            connections: 0,
            rng: StdRng::seed_from_u64(seed),
        }
    }

    /// Whether the plan holds any fault at all.
    pub fn is_empty(&self) -> bool {
        self.faults.is_empty()
    }

    /// Counts a new connection and judges the faults that act on
    /// connections: `reset`, `bandwidth`, and `dies` or `hangs` triggered
    /// by a connection count.
    pub fn on_connection(&mut self, now: Timestamp) -> ConnectionFaults {
        self.connections += 1;
        let mut out = ConnectionFaults::default();
        for i in 0..self.faults.len() {
            let f = &self.faults[i];
            if !f.per_connection() || !self.fires(i, now) {
                continue;
            }
            let f = &self.faults[i];
            out.fired.push(f.kind);
            match f.kind {
                FaultKind::Reset => out.reset_after = f.after_bytes,
                FaultKind::Bandwidth => out.bytes_per_sec = f.bytes_per_sec,
                _ => {}
            }
        }
        out
    }

    /// Counts a request (a CONNECT counts as one) and judges the faults
    /// that act on requests: all the others.
    pub fn on_request(&mut self, now: Timestamp) -> RequestFaults {
        self.requests += 1;
        let mut out = RequestFaults::default();
        for i in 0..self.faults.len() {
            if self.faults[i].per_connection() || !self.fires(i, now) {
                continue;
            }
            let f = &self.faults[i];
            out.fired.push(f.kind);
            if f.kind == FaultKind::Latency {
                let base = f.latency.unwrap_or_default();
                let jitter = f.jitter.unwrap_or_default();
                let delay = jittered(base, jitter, &mut self.rng);
                out.delay = Some(out.delay.unwrap_or_default().saturating_add(delay));
            }
        }
        out
    }

    /// Whether fault `i` is active at `now` and wins its draw.
    fn fires(&mut self, i: usize, now: Timestamp) -> bool {
        let f = &self.faults[i];
        let active = f.after_requests.is_none_or(|n| self.requests > n)
            && f.after_connections.is_none_or(|n| self.connections > n)
            && f.after.is_none_or(|d| now.since(self.started) >= d);
        if !active {
            return false;
        }
        let p = f.probability;
        // Always draw, so one fault's outcome never shifts another's.
        let roll: f64 = self.rng.random();
        p >= 1.0 || roll < p
    }
}

/// `base` ± up to `jitter`, uniformly, never below zero.
fn jittered(base: Duration, jitter: Duration, rng: &mut StdRng) -> Duration {
    if jitter.is_zero() {
        return base;
    }
    let j = jitter.as_micros() as i128;
    let offset = rng.random_range(-j..=j);
    let micros = (base.as_micros() as i128 + offset).max(0);
    Duration::from_micros(micros as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fault(kind: FaultKind) -> FaultConfig {
        FaultConfig::new(kind)
    }

    const T0: Timestamp = Timestamp::from_secs(1_000);

    #[test]
    fn request_counts_arm_a_fault_after_the_nth_request() {
        let mut f = fault(FaultKind::Connect502);
        f.after_requests = Some(2);
        let mut plan = FaultPlan::new(vec![f], 1, T0);
        let fired: Vec<bool> = (0..4)
            .map(|_| plan.on_request(T0).has(FaultKind::Connect502))
            .collect();
        assert_eq!(fired, [false, false, true, true]);
    }

    #[test]
    fn time_and_connection_triggers_combine() {
        let mut f = fault(FaultKind::Reset);
        f.after_bytes = Some(10);
        f.after_connections = Some(1);
        f.after = Some(Duration::from_secs(5));
        let mut plan = FaultPlan::new(vec![f], 1, T0);
        assert!(plan.on_connection(T0).fired.is_empty(), "first connection");
        assert!(plan.on_connection(T0).fired.is_empty(), "too early");
        let later = plan.on_connection(T0.plus(Duration::from_secs(5)));
        assert_eq!(later.reset_after, Some(10));
        // Connection-level faults are not judged on requests.
        assert!(
            plan.on_request(T0.plus(Duration::from_secs(9)))
                .fired
                .is_empty()
        );
    }

    #[test]
    fn probability_follows_the_seed() {
        let mut f = fault(FaultKind::Auth407);
        f.probability = 0.3;
        let run = |seed| {
            let mut plan = FaultPlan::new(vec![f.clone()], seed, T0);
            (0..1000)
                .map(|_| plan.on_request(T0).has(FaultKind::Auth407))
                .collect::<Vec<_>>()
        };
        let a = run(42);
        assert_eq!(a, run(42));
        let hits = a.iter().filter(|h| **h).count();
        assert!((220..380).contains(&hits), "{hits} of 1000 at p = 0.3");
        let mut never = fault(FaultKind::Auth407);
        never.probability = 0.0;
        let mut plan = FaultPlan::new(vec![never], 42, T0);
        assert!((0..100).all(|_| plan.on_request(T0).fired.is_empty()));
    }

    #[test]
    fn latency_stays_within_its_jitter() {
        let mut f = fault(FaultKind::Latency);
        f.latency = Some(Duration::from_millis(100));
        f.jitter = Some(Duration::from_millis(20));
        let mut plan = FaultPlan::new(vec![f], 3, T0);
        for _ in 0..500 {
            let d = plan.on_request(T0).delay.expect("latency fires");
            assert!(
                d >= Duration::from_millis(80) && d <= Duration::from_millis(120),
                "{d:?}"
            );
        }
    }

    #[test]
    fn dies_and_hangs_are_judged_where_their_trigger_counts() {
        let mut dies = fault(FaultKind::Dies);
        dies.after_connections = Some(1);
        let mut plan = FaultPlan::new(vec![dies], 1, T0);
        assert!(!plan.on_connection(T0).has(FaultKind::Dies));
        assert!(!plan.on_request(T0).has(FaultKind::Dies));
        assert!(plan.on_connection(T0).has(FaultKind::Dies));
        assert!(
            !plan.on_request(T0).has(FaultKind::Dies),
            "never judged twice"
        );
        let mut hangs = fault(FaultKind::Hangs);
        hangs.after = Some(Duration::from_secs(1));
        let mut plan = FaultPlan::new(vec![hangs], 1, T0);
        let later = T0.plus(Duration::from_secs(1));
        assert!(!plan.on_connection(later).has(FaultKind::Hangs));
        assert!(plan.on_request(later).has(FaultKind::Hangs));
    }
}
