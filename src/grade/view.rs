//! What the HTML report and the dashboard draw of a run, summed up from its trace as it is written: sessions with their marks, births and deaths, the pool's moves.
//!
//! Pure: it takes decisions and trace lines and gives a bounded view.
//! The runner feeds it every event as the target records it (as it does
//! grading), so a client that edits the trace file cannot draw in its
//! report. However many decisions a run made, each session keeps at most
//! [`BUCKETS`] marks and at most [`MAX_SESSIONS`] sessions are drawn, so
//! a hammering client's report stays under about 2 MB.

use std::time::Duration;

use crate::clock::Timestamp;
use crate::engine::{Decision, DecisionKind};
use crate::grade::marks::Marks;
use crate::grade::{ExitNames, FactsBuilder, SessionLife, TraceFacts};
use crate::session::SessionId;
use crate::trace::TraceLine;
use crate::trace::proxy::ProxyWhat;
use crate::verdict::{Reason, Verdict};

/// Marks across the run's span, per session.
pub const BUCKETS: usize = 120;
/// Sessions drawn at most: the dead ones first, then the busiest.
pub const MAX_SESSIONS: usize = 100;
/// Pool and timeline events drawn at most.
pub const MAX_EVENTS: usize = 200;

/// How a request went, in the order a mark shows the worst of them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Mark {
    /// Served.
    Allowed,
    /// Sent after the session died, within the in-flight grace.
    InFlight,
    /// Refused on a live session (a challenge, or the fatal request).
    Refused,
    /// Sent after the session died, past the grace: a zombie.
    Zombie,
}

impl Mark {
    /// Its CSS class and legend word.
    pub fn name(self) -> &'static str {
        match self {
            Self::Allowed => "allowed",
            Self::InFlight => "in-flight",
            Self::Refused => "refused",
            Self::Zombie => "zombie",
        }
    }
}

/// The parts of a request context the report compares.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Ctx {
    /// Field name and value, in display order.
    pub fields: Vec<(&'static str, String)>,
}

impl Ctx {
    /// `d`'s context, its exit named as the pool named it.
    fn of(d: &Decision, exits: &ExitNames) -> Option<Self> {
        let c = d.context.as_ref()?;
        let exit = exits.name(c.ip).unwrap_or("").to_owned();
        let asn = c
            .network
            .asn
            .map_or_else(|| "unknown".into(), |a| format!("AS{a}"));
        let org = c.network.org.as_deref().unwrap_or("").to_owned();
        let fields = vec![
            ("exit", exit),
            ("address", c.ip.map(|ip| ip.to_string()).unwrap_or_default()),
            ("ASN", asn),
            ("network class", c.network.class.to_string()),
            ("organisation", org),
            (
                "country",
                c.network.country.map(|c| c.to_string()).unwrap_or_default(),
            ),
            (
                "JA4",
                c.ja4_stable
                    .clone()
                    .or_else(|| c.ja4.clone())
                    .unwrap_or_default(),
            ),
            ("User-Agent", c.user_agent.clone().unwrap_or_default()),
        ];
        Some(Self { fields })
    }

    /// Whether field `name` differs in `other`.
    pub fn differs(&self, other: &Self, name: &str) -> bool {
        self.get(name) != other.get(name)
    }

    /// The value of field `name`, if it has one.
    pub fn get(&self, name: &str) -> Option<&str> {
        let field = self.fields.iter().find(|(n, _)| *n == name);
        field.map(|(_, v)| v.as_str())
    }
}

/// One session as drawn.
#[derive(Clone, Debug, PartialEq)]
pub struct SessionView {
    /// The session id.
    pub id: SessionId,
    /// Its account.
    pub account: String,
    /// When it was born, from the run's start.
    pub born: Option<Duration>,
    /// Its birth context.
    pub birth: Option<Ctx>,
    /// How it died, if it did.
    pub death: Option<Death>,
    /// Each bucket that saw a request, in time order.
    pub marks: Vec<Bucket>,
    /// Requests on it.
    pub requests: u64,
    /// Most requests within one second.
    pub peak_rate: u64,
    /// Requests the grade counts as zombies.
    pub zombies: u64,
}

/// The requests of one time bucket of a session.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bucket {
    /// Which of the [`BUCKETS`].
    pub index: usize,
    /// The worst mark among its requests.
    pub mark: Mark,
    /// How many requests.
    pub requests: u32,
    /// The reason of the worst refusal, if one was refused.
    pub reason: Option<Reason>,
}

/// How a session died.
#[derive(Clone, Debug, PartialEq)]
pub struct Death {
    /// When, from the run's start.
    pub at: Duration,
    /// The verdict, such as `revoke(ASN_DRIFT)`.
    pub verdict: String,
    /// The context of the decision that killed it.
    pub context: Option<Ctx>,
}

/// A pool or timeline event on the run's axis.
#[derive(Clone, Debug, PartialEq)]
pub struct EventView {
    /// When, from the run's start.
    pub at: Duration,
    /// `rotation`, `fault` or `timeline`.
    pub kind: &'static str,
    /// What happened, as a sentence.
    pub text: String,
}

/// One scenario's run, as the report draws it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RunView {
    /// The run's span, from its first to its last event.
    pub span: Duration,
    /// The sessions drawn.
    pub sessions: Vec<SessionView>,
    /// Sessions left out of the drawing.
    pub omitted: usize,
    /// Pool moves and timeline actions, in time order.
    pub events: Vec<EventView>,
    /// Trace lines that could not be parsed. (A decision that names the
    /// context of one never seen, as the first lines of a tail do, was
    /// read: it counts, without its context.)
    pub unreadable: u64,
}

/// Sums a trace up for grading and for drawing at once, as it is
/// written or read: the [`FactsBuilder`] grading reads, each session's
/// marks bucketed online (see [`Marks`]), and the first pool and timeline
/// events. Its memory grows with sessions, not requests.
#[derive(Debug)]
pub struct ViewBuilder {
    facts: FactsBuilder,
    marks: Marks,
    events: Vec<(Timestamp, &'static str, String)>,
    last: Option<Timestamp>,
    unreadable: u64,
}

impl ViewBuilder {
    /// An empty builder; `grace` is the scenario's in-flight grace.
    pub fn new(grace: Duration) -> Self {
        Self {
            facts: FactsBuilder::new(grace),
            marks: Marks::default(),
            events: Vec::new(),
            last: None,
            unreadable: 0,
        }
    }

    /// The in-flight grace it sorts late requests with.
    pub fn grace(&self) -> Duration {
        self.facts.grace()
    }

    /// Adds one trace line; a line that cannot be read is counted.
    pub fn add_line(&mut self, line: &str) {
        if line.trim().is_empty() {
            return;
        }
        match TraceLine::parse(line) {
            Ok(Some(parsed)) => self.add(&parsed),
            Ok(None) => {}
            Err(_) => self.unreadable += 1,
        }
    }

    /// Adds one parsed line.
    pub fn add(&mut self, line: &TraceLine) {
        match line {
            TraceLine::Decision(d) => return self.add_decision(d),
            TraceLine::Proxy(p) => {
                let kind = match &p.what {
                    ProxyWhat::StickyRotated { .. } => Some("rotation"),
                    ProxyWhat::Fault { .. } => Some("fault"),
                    _ => None,
                };
                self.saw(p.at);
                if let Some(kind) = kind {
                    self.event(p.at, kind, || p.describe());
                }
            }
            TraceLine::Timeline(t) => {
                self.saw(t.at);
                self.event(t.at, "timeline", || format!("{}: {}", t.action, t.detail));
            }
            _ => {}
        }
        // Only a decision can fail to add, and decisions went above.
        let _ = self.facts.add(line);
    }

    /// Adds one decision, as the engine made it (its context in full or
    /// by reference).
    pub fn add_decision(&mut self, d: &Decision) {
        self.saw(d.at);
        if matches!(d.kind, DecisionKind::Login { .. }) && d.verdict == Verdict::Allow {
            self.marks.track(d.session);
        }
        // A context named by a reference never seen leaves the decision
        // without its context: it still counts.
        let (_, mark) = self.facts.add_marked(d);
        if let Some(mark) = mark {
            self.marks.add(d.session, d.at, mark, d.verdict.reason());
        }
    }

    /// Keeps an event, up to a few times what is drawn (the trace is in
    /// time order, nearly: the first ones are the ones drawn).
    fn event(&mut self, at: Timestamp, kind: &'static str, text: impl FnOnce() -> String) {
        if self.events.len() < 4 * MAX_EVENTS {
            self.events.push((at, kind, text()));
        }
    }

    fn saw(&mut self, at: Timestamp) {
        self.marks.start(at);
        self.last = Some(self.last.map_or(at, |l| l.max(at)));
    }

    /// The summary grading reads, and the view: sessions ranked and
    /// bucketed, events in order.
    pub fn finish(self) -> (TraceFacts, RunView) {
        let start = self.marks.origin().unwrap_or(Timestamp::EPOCH);
        let last = self.last.unwrap_or(start);
        let span = last.since(start).max(Duration::from_millis(1));
        let facts: TraceFacts = self.facts.finish();
        let mut lives: Vec<&SessionLife> =
            facts.lives.iter().filter(|l| l.birth.is_some()).collect();
        lives.sort_by_key(|l| (l.death.is_none(), std::cmp::Reverse(l.requests)));
        let omitted = lives.len().saturating_sub(MAX_SESSIONS);
        let drawn = lives.into_iter().take(MAX_SESSIONS);
        let sessions = drawn
            .map(|l| session_view(l, self.marks.drawn(l.id, span), start, &facts.exits))
            .collect();
        let mut events = self.events;
        events.sort_by_key(|e| e.0);
        let events = events
            .into_iter()
            .take(MAX_EVENTS)
            .map(|(at, kind, text)| EventView {
                at: at.since(start),
                kind,
                text,
            });
        let view = RunView {
            span,
            sessions,
            omitted,
            events: events.collect(),
            unreadable: self.unreadable,
        };
        (facts, view)
    }
}

/// One session's view: its marks (bucketed already), birth and death.
fn session_view(
    life: &SessionLife,
    marks: Vec<Bucket>,
    start: Timestamp,
    exits: &ExitNames,
) -> SessionView {
    let birth = life.birth.as_ref();
    SessionView {
        id: life.id,
        account: birth
            .and_then(|b| b.account.as_deref())
            .unwrap_or("")
            .to_owned(),
        born: birth.map(|b| b.at.since(start)),
        birth: birth.and_then(|b| Ctx::of(b, exits)),
        death: life.death.as_ref().map(|d| Death {
            at: d.at.since(start),
            verdict: d.verdict.to_string(),
            context: Ctx::of(d, exits)
                .or_else(|| life.revealed.as_ref().and_then(|r| Ctx::of(r, exits))),
        }),
        marks,
        requests: life.requests,
        peak_rate: life.peak_rate,
        zombies: life.zombies,
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::config::EngineConfig;
    use crate::context::RequestContext;
    use crate::engine::Engine;
    use crate::network::NetworkInfo;

    /// `n` decisions over `sessions` sessions, as trace lines: each
    /// session logs in, then its requests come round-robin, a millisecond
    /// apart; every tenth session switches User-Agent halfway.
    pub(crate) fn trace(n: usize, sessions: u128) -> Vec<String> {
        let engine = Engine::new(EngineConfig::default()).expect("valid");
        let ctx = |ua: &str| {
            RequestContext::from_headers(
                "127.0.1.9".parse().ok(),
                NetworkInfo::unknown(),
                [("user-agent", ua)],
            )
        };
        let mut lines = Vec::new();
        let start = Timestamp::from_secs(1_000);
        for s in 0..sessions {
            let d = engine.login(
                SessionId::from_u128(s + 1),
                "alice",
                ctx("curl/8"),
                vec![],
                start,
            );
            lines.push(serde_json::to_string(&d).expect("serializes"));
        }
        for i in 0..n {
            let s = (i as u128) % sessions;
            let ua = if s.is_multiple_of(10) && i > n / 2 {
                "python/3"
            } else {
                "curl/8"
            };
            let at = start.plus(Duration::from_millis(i as u64));
            let d = engine.decide(SessionId::from_u128(s + 1), ctx(ua), at);
            lines.push(serde_json::to_string(&d).expect("serializes"));
        }
        lines
    }

    #[test]
    fn a_long_trace_gives_a_bounded_view() {
        let mut builder = ViewBuilder::new(Duration::from_millis(200));
        for line in trace(50_000, 1_000) {
            builder.add_line(&line);
        }
        builder.add_line("{not json");
        let (_, view) = builder.finish();
        assert_eq!(view.sessions.len(), MAX_SESSIONS);
        assert_eq!(view.omitted, 1_000 - MAX_SESSIONS);
        assert_eq!(view.unreadable, 1);
        assert!(view.sessions.iter().all(|s| s.marks.len() <= BUCKETS));
        // The dead come first, and their marks show refusals and zombies.
        let dead = view
            .sessions
            .iter()
            .take_while(|s| s.death.is_some())
            .count();
        assert_eq!(dead, 100, "every tenth of 1,000 sessions died");
        let worst = view.sessions[0].marks.iter().map(|m| m.mark).max();
        assert_eq!(worst, Some(Mark::Zombie));
    }

    #[test]
    fn a_drift_death_shows_both_contexts_and_what_changed() {
        let mut builder = ViewBuilder::new(Duration::from_millis(200));
        for line in trace(40, 2) {
            builder.add_line(&line);
        }
        let (_, view) = builder.finish();
        let dead = &view.sessions[0];
        let death = dead.death.as_ref().expect("the first session died");
        let (birth, died) = (
            dead.birth.as_ref().expect("born"),
            death.context.as_ref().expect("a context"),
        );
        assert!(birth.differs(died, "User-Agent"));
        assert!(!birth.differs(died, "address"));
        assert_eq!(death.verdict, "revoke(USER_AGENT_DRIFT)");
    }
}
