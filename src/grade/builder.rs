//! Summing a trace up as it is written: one line, or one decision, at a time.
//!
//! [`FactsBuilder`] keeps per session only what grading needs (its birth,
//! death and revealing decisions, counts, and the requests of the last
//! second or so for the two sliding windows), so grading a run of any
//! length takes memory in proportion to its sessions, not its requests.
//! The runner feeds it every decision as the target makes it
//! (`TraceLog::grading` in the site); file readers feed it lines.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use crate::clock::Timestamp;
use crate::context::RequestContext;
use crate::engine::{Decision, DecisionKind};
use crate::grade::facts::{SessionLife, TraceFacts};
use crate::grade::view::Mark;
use crate::session::SessionId;
use crate::trace::proxy::{FaultKind, ProxyEvent, ProxyWhat};
use crate::trace::records::{AttemptOutcome, LoginAttempt, LoginFlow, RefreshOutcome};
use crate::trace::{ContextRefs, TraceLine};
use crate::verdict::{Reason, Verdict};

/// Proxy moves (sticky rotations and faults) kept as sentences for the report.
pub const MAX_PROXY_NOTES: usize = 50;
/// Sessions never born in the trace (made-up or forgotten session ids)
/// tracked one by one; decisions on more are only counted.
pub const MAX_UNBORN: usize = 10_000;

/// The window of the peak rate, in milliseconds.
const PEAK_WINDOW_MS: u64 = 1000;

/// How far out of time order a request may reach the trace and still be
/// counted exactly in its session's peak rate. Trace lines are written a
/// few microseconds after their decision's time; a line later than this
/// counts as if it had come at the last time already settled.
const SETTLE_MS: u64 = 1000;

/// Builds [`TraceFacts`] from a trace fed in order.
#[derive(Debug)]
pub struct FactsBuilder {
    facts: TraceFacts,
    index: HashMap<SessionId, usize>,
    lives: Vec<LifeBuilder>,
    refs: ContextRefs,
    /// Sessions tracked that were not born in this trace.
    unborn: usize,
}

impl FactsBuilder {
    /// An empty summary; requests on a dead session within `grace` of the
    /// one that revealed its death may count as in flight.
    pub fn new(grace: Duration) -> Self {
        Self {
            facts: TraceFacts {
                grace,
                ..TraceFacts::default()
            },
            index: HashMap::new(),
            lives: Vec::new(),
            refs: ContextRefs::default(),
            unborn: 0,
        }
    }

    /// Adds one trace line. A malformed line, or a context reference that
    /// names no earlier line, is an error; a line of a type grading does
    /// not use is skipped.
    pub fn add_line(&mut self, line: &str) -> std::result::Result<(), String> {
        match TraceLine::parse(line).map_err(|e| e.to_string())? {
            Some(parsed) => self.add(&parsed),
            None => Ok(()),
        }
    }

    /// Adds one parsed line (see [`FactsBuilder::add_line`]).
    pub fn add(&mut self, line: &TraceLine) -> std::result::Result<(), String> {
        match line {
            TraceLine::Decision(d) => return self.add_decision(d),
            TraceLine::Upkeep(_) => {}
            TraceLine::Proxy(e) => self.add_proxy(e),
            TraceLine::LoginFlow(f) => self.add_login_flow(f),
            TraceLine::Timeline(t) => self.facts.timeline.push(t.clone()),
            TraceLine::LoginAttempt(a) => self.add_login_attempt(a),
            TraceLine::Refused(r) => {
                let key = format!("refused({})", r.reason.code());
                *self.facts.requests_refused.entry(key).or_default() += 1;
            }
            TraceLine::Challenge(c) => {
                let key = c.solved_by.map_or("wrong", |s| s.as_str());
                *self.facts.challenges.entry(key.to_owned()).or_default() += 1;
            }
            TraceLine::Refresh(r) => {
                if let (RefreshOutcome::Rotated, Some(s)) = (r.outcome, r.session) {
                    *self.facts.rotations.entry(s).or_default() += 1;
                }
            }
        }
        Ok(())
    }

    /// Adds one decision, as the engine made it: its context in full, or
    /// named by `context_of`. A reference to no decision seen is an error
    /// (the decision still counts, without its context).
    pub fn add_decision(&mut self, d: &Decision) -> std::result::Result<(), String> {
        self.add_marked(d).0
    }

    /// Adds one decision (see [`FactsBuilder::add_decision`]) and says how
    /// a request on a session tracked here went, as grading counts it.
    pub fn add_marked(&mut self, d: &Decision) -> (std::result::Result<(), String>, Option<Mark>) {
        let resolved = self.refs.context_of(d);
        let ctx = resolved.as_ref().ok().cloned().flatten();
        if d.kind == DecisionKind::Request && d.verdict != Verdict::Allow {
            let key = d.verdict.to_string();
            *self.facts.requests_refused.entry(key).or_default() += 1;
        }
        if d.kind == DecisionKind::LoginGate {
            // A gate names the session a login would get; the login, if
            // any, follows in its own line.
            return (resolved.map(|_| ()), None);
        }
        let Some(i) = self.life_of(d) else {
            self.facts.untracked_requests += u64::from(d.kind == DecisionKind::Request);
            return (resolved.map(|_| ()), None);
        };
        let mark = self.lives[i].add(d, ctx, self.facts.grace);
        (resolved.map(|_| ()), mark)
    }

    /// The index of `d`'s session, made if need be; `None` for a session
    /// never born here once [`MAX_UNBORN`] such sessions are tracked.
    fn life_of(&mut self, d: &Decision) -> Option<usize> {
        if let Some(i) = self.index.get(&d.session) {
            return Some(*i);
        }
        let born = matches!(d.kind, DecisionKind::Login { .. });
        if !born && self.unborn >= MAX_UNBORN {
            return None;
        }
        self.unborn += usize::from(!born);
        let i = self.lives.len();
        self.index.insert(d.session, i);
        self.lives.push(LifeBuilder::new(d.session));
        Some(i)
    }

    /// Adds a proxy event: exit names, dead exits, notes.
    pub fn add_proxy(&mut self, e: &ProxyEvent) {
        self.facts.exits.add(e);
        match e.what {
            ProxyWhat::Fault {
                fault: FaultKind::Dies,
                ..
            } => {
                self.facts.dead_exits.insert(e.node.clone());
            }
            ProxyWhat::StickyRotated { .. } | ProxyWhat::Fault { .. } => {}
            _ => return,
        }
        if self.facts.proxy_notes.len() < MAX_PROXY_NOTES {
            self.facts.proxy_notes.push(e.describe());
        }
    }

    /// Adds a finished login flow: counted, and its time summed.
    pub fn add_login_flow(&mut self, f: &LoginFlow) {
        self.facts.login_flows += 1;
        self.facts.login_seconds += f.at.since(f.started).as_secs_f64();
    }

    fn add_login_attempt(&mut self, a: &LoginAttempt) {
        let reason = match (a.outcome, a.reason) {
            (AttemptOutcome::Ok, _) => {
                self.facts.logins_ok += 1;
                return;
            }
            (AttemptOutcome::Refused, Some(r)) => r.code(),
            (AttemptOutcome::Refused, None) => "UNKNOWN",
        };
        *self
            .facts
            .logins_refused
            .entry(reason.to_owned())
            .or_default() += 1;
    }

    /// The in-flight grace it sorts late requests with.
    pub fn grace(&self) -> Duration {
        self.facts.grace
    }

    /// Sessions seen so far.
    pub fn sessions(&self) -> usize {
        self.lives.len()
    }

    /// The summary of everything added.
    pub fn finish(self) -> TraceFacts {
        let mut facts = self.facts;
        facts.lives = self.lives.into_iter().map(LifeBuilder::finish).collect();
        facts
    }
}

/// One session's life while its trace is read.
#[derive(Debug)]
struct LifeBuilder {
    life: SessionLife,
    birth_ip: Option<IpAddr>,
    /// Requests within one grace of the latest, until the reveal.
    recent: VecDeque<Timestamp>,
    /// The most of `recent` at once so far.
    most: usize,
    peak: PeakWindow,
}

impl LifeBuilder {
    fn new(id: SessionId) -> Self {
        Self {
            life: SessionLife::new(id),
            birth_ip: None,
            recent: VecDeque::new(),
            most: 0,
            peak: PeakWindow::default(),
        }
    }

    /// Adds a decision; a request's mark is returned.
    fn add(
        &mut self,
        d: &Decision,
        ctx: Option<Arc<RequestContext>>,
        grace: Duration,
    ) -> Option<Mark> {
        let owned = |ctx: Option<Arc<RequestContext>>| Decision {
            context: ctx,
            ..d.clone()
        };
        match d.kind {
            DecisionKind::Login { .. } if d.verdict == Verdict::Allow => {
                self.birth_ip = ctx.as_ref().and_then(|c| c.ip);
                self.life.birth = Some(owned(ctx));
            }
            DecisionKind::Login { .. } | DecisionKind::LoginGate | DecisionKind::Release => {}
            DecisionKind::Revoke { .. } => {
                let by_operator = d.verdict == Verdict::Revoke(Reason::SessionRevoked);
                self.life.operator_revocations += u64::from(by_operator);
                if self.life.death.is_none() && d.verdict.is_terminal() {
                    self.life.death = Some(owned(ctx));
                }
            }
            DecisionKind::Request => {
                let ip = ctx.as_ref().and_then(|c| c.ip);
                self.count_request(d, ip);
                let (mark, reveals) = self.request(d, grace);
                if reveals {
                    let revealing = owned(ctx);
                    self.life.death.get_or_insert_with(|| revealing.clone());
                    self.life.revealed = Some(revealing);
                }
                return Some(mark);
            }
        }
        None
    }

    /// Counts a request for the traps and the peak rate.
    fn count_request(&mut self, d: &Decision, ip: Option<IpAddr>) {
        let life = &mut self.life;
        life.requests += 1;
        life.last_request = Some(life.last_request.map_or(d.at, |t| t.max(d.at)));
        life.ttl_expiries += u64::from(d.verdict == Verdict::Expire(Reason::SessionExpired));
        life.idle_expiries += u64::from(d.verdict == Verdict::Expire(Reason::IdleTimeout));
        let moved = self.birth_ip.is_some() && ip.is_some() && self.birth_ip != ip;
        life.exit_moves += u64::from(moved);
        self.peak.push(d.at);
    }

    /// Sorts a request: in flight or zombie after the reveal; before it,
    /// allowed or refused, and whether this one reveals the death.
    fn request(&mut self, d: &Decision, grace: Duration) -> (Mark, bool) {
        let life = &mut self.life;
        if let Some(rev) = &life.revealed {
            let concurrent = (life.in_flight as usize) < life.in_flight_allowance;
            if d.at <= rev.at.plus(grace) && concurrent {
                life.in_flight += 1;
                return (Mark::InFlight, false);
            }
            life.zombies += 1;
            life.last_zombie = Some(d.at);
            return (Mark::Zombie, false);
        }
        let mark = match d.verdict {
            Verdict::Allow => Mark::Allowed,
            _ => Mark::Refused,
        };
        self.recent.push_back(d.at);
        while self.recent.front().is_some_and(|t| d.at > t.plus(grace)) {
            self.recent.pop_front();
        }
        self.most = self.most.max(self.recent.len());
        if !d.verdict.is_terminal() {
            return (mark, false);
        }
        life.in_flight_allowance = self.most.saturating_sub(1);
        self.recent = VecDeque::new();
        (mark, true)
    }

    fn finish(mut self) -> SessionLife {
        self.life.peak_rate = self.peak.finish();
        self.life
    }
}

/// The most requests within one second, counted as they come: the times
/// of the last two seconds or so are kept, in order.
#[derive(Debug, Default)]
struct PeakWindow {
    /// Times in milliseconds, sorted; `times[..next]` are settled.
    times: VecDeque<u64>,
    next: usize,
    lo: usize,
    best: usize,
    newest: u64,
    floor: u64,
}

impl PeakWindow {
    fn push(&mut self, t: Timestamp) {
        let t = t.as_millis().max(self.floor);
        let pos = self.times.partition_point(|x| *x <= t);
        self.times.insert(pos, t);
        self.newest = self.newest.max(t);
        self.settle(self.newest.saturating_sub(SETTLE_MS));
    }

    /// Counts the window ending at each time up to `upto`, in time order,
    /// then forgets the times no later window can reach.
    fn settle(&mut self, upto: u64) {
        while let Some(&hi) = self.times.get(self.next).filter(|t| **t <= upto) {
            while hi - self.times[self.lo] >= PEAK_WINDOW_MS {
                self.lo += 1;
            }
            self.best = self.best.max(self.next + 1 - self.lo);
            self.floor = hi;
            self.next += 1;
        }
        self.times.drain(..self.lo);
        self.next -= self.lo;
        self.lo = 0;
    }

    fn finish(&mut self) -> u64 {
        self.settle(u64::MAX);
        self.best as u64
    }

    #[cfg(test)]
    fn kept(&self) -> usize {
        self.times.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::EngineConfig;
    use crate::engine::Engine;
    use crate::grade::tests::ctx;

    #[test]
    fn made_up_session_ids_are_counted_not_tracked_past_a_bound() {
        let engine = Engine::new(EngineConfig::default()).expect("engine");
        let mut b = FactsBuilder::new(Duration::from_millis(200));
        let now = Timestamp::from_millis(1_790_000_000_000);
        let extra = 500u64;
        for n in 0..(MAX_UNBORN as u64 + extra) {
            let sid = SessionId::from_u128(u128::from(n) + 1);
            b.add_decision(&engine.decide(sid, ctx("127.0.1.9"), now))
                .expect("a decision");
        }
        let born = SessionId::from_u128(u128::MAX);
        b.add_decision(&engine.login(born, "alice", ctx("127.0.1.9"), vec![], now))
            .expect("a login");
        let facts = b.finish();
        assert_eq!(
            facts.lives.len(),
            MAX_UNBORN + 1,
            "a login is always tracked"
        );
        assert_eq!(facts.untracked_requests, extra);
    }

    fn peak(ms: &[u64]) -> u64 {
        let mut w = PeakWindow::default();
        for t in ms {
            w.push(Timestamp::from_millis(*t));
        }
        w.finish()
    }

    #[test]
    fn peak_counts_the_busiest_second() {
        assert_eq!(peak(&[]), 0);
        assert_eq!(peak(&[0, 100, 999, 1000, 1001]), 4);
        assert_eq!(peak(&[0, 2000, 4000]), 1);
        // Slightly out of order, as concurrent lines reach the trace.
        assert_eq!(peak(&[1001, 0, 1000, 100, 999]), 4);
        assert_eq!(peak(&[5000, 5500, 4990, 5999, 6000]), 3);
    }

    /// The peak of the whole list, sorted: what the window must match.
    fn peak_sorted(ms: &[u64]) -> u64 {
        let mut sorted = ms.to_vec();
        sorted.sort_unstable();
        let (mut best, mut lo) = (0, 0);
        for hi in 0..sorted.len() {
            while sorted[hi] - sorted[lo] >= PEAK_WINDOW_MS {
                lo += 1;
            }
            best = best.max(hi + 1 - lo);
        }
        best as u64
    }

    #[test]
    fn the_peak_of_jittered_times_is_the_peak_of_the_sorted_times() {
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut ms = Vec::new();
        let mut now = 0;
        for _ in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            now += x % 7;
            ms.push((now + x % 300).saturating_sub(150));
        }
        assert_eq!(peak(&ms), peak_sorted(&ms));
    }

    #[test]
    fn the_peak_window_keeps_only_the_last_seconds() {
        let mut w = PeakWindow::default();
        for t in 0..100_000u64 {
            w.push(Timestamp::from_millis(t / 10));
        }
        assert!(
            w.kept() <= 10 * (PEAK_WINDOW_MS + SETTLE_MS) as usize + 10,
            "{}",
            w.kept()
        );
        assert_eq!(w.finish(), 10 * PEAK_WINDOW_MS);
    }
}
