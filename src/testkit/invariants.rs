//! Invariants of a careful client, checked over a trace: no session carried across an ASN change, no zombie requests, every refusal answered by a re-login on a fresh exit.
//!
//! Each check reads only the trace (the target's decisions and the
//! pool's moves), so it works on a [`KitRun`](crate::testkit::KitRun)'s
//! trace and on a `trace.jsonl` that `sessionrange run` wrote alike.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::net::IpAddr;
use std::path::Path;
use std::time::Duration;

use crate::clock::Timestamp;
use crate::engine::{Decision, DecisionKind};
use crate::error::{Error, Result};
use crate::grade::{FactsBuilder, TraceFacts};
use crate::session::SessionId;
use crate::trace::proxy::{ProxyEvent, ProxyWhat};
use crate::trace::{ContextRefs, TraceLine};

/// A trace, parsed: its decisions (contexts put back), the pool's
/// events, and the grade's summary of it.
#[derive(Debug)]
pub struct Trace {
    decisions: Vec<Decision>,
    proxy: Vec<ProxyEvent>,
    facts: TraceFacts,
    work_left: bool,
}

impl Trace {
    /// Parses trace text (JSON Lines, as the target writes it), sorting
    /// late requests with the in-flight `grace` as the grade does.
    pub fn parse(text: &str, grace: Duration) -> Result<Self> {
        let lines: Vec<&str> = text.lines().collect();
        Self::from_lines(&lines, grace)
    }

    /// Reads and parses a trace file, with the grade's default grace.
    pub fn read(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        let grace = crate::grade::DEFAULT_IN_FLIGHT_GRACE;
        Self::parse(&text, grace).map_err(|e| match e {
            Error::Trace { line, message, .. } => Error::Trace {
                path: path.to_owned(),
                line,
                message,
            },
            other => other,
        })
    }

    /// Parses trace lines; an error names the line (counted from 1).
    pub fn from_lines(lines: &[impl AsRef<str>], grace: Duration) -> Result<Self> {
        let mut trace = Self {
            decisions: Vec::new(),
            proxy: Vec::new(),
            facts: TraceFacts::default(),
            work_left: true,
        };
        let (mut facts, mut refs) = (FactsBuilder::new(grace), ContextRefs::default());
        for (i, line) in lines.iter().enumerate() {
            let error = |message: String| Error::Trace {
                path: "trace".into(),
                line: i + 1,
                message,
            };
            let line = line.as_ref();
            if line.trim().is_empty() {
                continue;
            }
            let parsed = TraceLine::parse(line).map_err(|e| error(e.to_string()))?;
            let Some(parsed) = parsed else { continue };
            facts.add(&parsed).map_err(error)?;
            match parsed {
                TraceLine::Decision(mut d) => {
                    let _ = refs.resolve(&mut d);
                    trace.decisions.push(*d);
                }
                TraceLine::Proxy(p) => trace.proxy.push(p),
                _ => {}
            }
        }
        trace.facts = facts.finish();
        Ok(trace)
    }

    /// Says whether the client ended on its own with records left
    /// unfetched (the kit knows, and says no for a client it stopped at
    /// its deadline; a trace file does not say, and is taken to have
    /// some).
    #[must_use]
    pub fn with_work_left(mut self, left: bool) -> Self {
        self.work_left = left;
        self
    }

    /// The decisions, in trace order.
    pub fn decisions(&self) -> &[Decision] {
        &self.decisions
    }

    /// The pool's events, in trace order.
    pub fn proxy_events(&self) -> &[ProxyEvent] {
        &self.proxy
    }

    /// The grade's summary of the trace.
    pub fn facts(&self) -> &TraceFacts {
        &self.facts
    }

    /// Every violation of `invariants`, sorted by time.
    pub fn check(&self, invariants: &[Invariant]) -> Vec<Violation> {
        let mut all: Vec<Violation> = invariants.iter().flat_map(|i| i.check(self)).collect();
        all.sort_by_key(|v| v.at);
        all
    }
}

/// A rule a careful client keeps, checked over a [`Trace`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Invariant {
    /// No session is carried across an ASN change: every request of a
    /// live session comes from the ASN it logged in from, unless the
    /// pool moved the session's sticky exit under it (a rotation the
    /// client could not see coming; the target's answer is the client's
    /// cue).
    SessionKeepsItsNetwork,
    /// No zombie requests: once a session was refused, the client sends
    /// nothing more on it, past the requests already in flight (the
    /// grade's definition, with the scenario's in-flight grace).
    NoZombieRequests,
    /// Every refusal is answered by a re-login while records are left
    /// to fetch (a client stopped at its deadline is not charged: its
    /// `client` criterion already failed); after a security refusal the first login that follows
    /// comes from a fresh exit: another address, or a sticky session the
    /// gateway had never seen.
    RefusalAnsweredOnFreshExit,
}

impl Invariant {
    /// All of them.
    pub const ALL: [Self; 3] = [
        Self::SessionKeepsItsNetwork,
        Self::NoZombieRequests,
        Self::RefusalAnsweredOnFreshExit,
    ];

    /// A stable name: `session_keeps_its_network`, `no_zombie_requests`,
    /// `refusal_answered_on_fresh_exit`.
    pub fn name(self) -> &'static str {
        match self {
            Self::SessionKeepsItsNetwork => "session_keeps_its_network",
            Self::NoZombieRequests => "no_zombie_requests",
            Self::RefusalAnsweredOnFreshExit => "refusal_answered_on_fresh_exit",
        }
    }

    /// Its violations in `trace`: at most one per session.
    pub fn check(self, trace: &Trace) -> Vec<Violation> {
        match self {
            Self::SessionKeepsItsNetwork => network_kept(trace),
            Self::NoZombieRequests => no_zombies(trace),
            Self::RefusalAnsweredOnFreshExit => refusals_answered(trace),
        }
    }
}

impl fmt::Display for Invariant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One broken invariant, with the decision that broke it.
#[derive(Clone, Debug, PartialEq)]
pub struct Violation {
    /// Which invariant.
    pub invariant: Invariant,
    /// The session concerned.
    pub session: SessionId,
    /// When it was broken.
    pub at: Timestamp,
    /// The `seq` of the decision that broke it, if one did.
    pub seq: Option<u64>,
    /// What happened, as a sentence.
    pub message: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: session {}: {}",
            self.invariant, self.session, self.message
        )?;
        if let Some(seq) = self.seq {
            write!(f, " (decision {seq})")?;
        }
        Ok(())
    }
}

/// A decision's address, from its context.
fn address(d: &Decision) -> Option<IpAddr> {
    d.context.as_ref().and_then(|c| c.ip)
}

/// A decision's ASN, from its context.
fn asn(d: &Decision) -> Option<u32> {
    d.context.as_ref().and_then(|c| c.network.asn)
}

/// How an ASN reads in a sentence.
fn asn_label(asn: Option<u32>) -> String {
    asn.map_or_else(|| "an unknown network".into(), |a| format!("AS{a}"))
}

fn violation(invariant: Invariant, d: &Decision, message: String) -> Violation {
    Violation {
        invariant,
        session: d.session,
        at: d.at,
        seq: Some(d.seq),
        message,
    }
}

/// [`Invariant::SessionKeepsItsNetwork`].
fn network_kept(trace: &Trace) -> Vec<Violation> {
    // (from, to) of every sticky rotation, with when it happened.
    let rotations: Vec<(IpAddr, IpAddr, Timestamp)> = trace
        .proxy
        .iter()
        .filter_map(|e| match &e.what {
            ProxyWhat::StickyRotated { from, to, .. } => Some((from.ip, to.ip, e.at)),
            _ => None,
        })
        .collect();
    let moved = |from: IpAddr, to: IpAddr, by: Timestamp| {
        rotations
            .iter()
            .any(|r| r.0 == from && r.1 == to && r.2 <= by)
    };
    // Each session's birth ASN and the last address it was seen on.
    let mut sessions: HashMap<SessionId, (Option<u32>, Option<IpAddr>)> = HashMap::new();
    let mut broken = HashSet::new();
    let mut out = Vec::new();
    for d in &trace.decisions {
        match d.kind {
            DecisionKind::Login { .. } => {
                sessions.insert(d.session, (asn(d), address(d)));
            }
            DecisionKind::Request if !d.on_dead_session => {
                let Some((born, last)) = sessions.get_mut(&d.session) else {
                    continue;
                };
                let (now_asn, now_ip) = (asn(d), address(d));
                let excused =
                    matches!((*last, now_ip), (Some(a), Some(b)) if a == b || moved(a, b, d.at));
                if now_asn != *born && !excused && broken.insert(d.session) {
                    let message = format!(
                        "born on {}, it was sent from {} ({}) by the client's own choice: no rotation of the pool moved it there",
                        asn_label(*born),
                        asn_label(now_asn),
                        now_ip.map_or_else(|| "no address".into(), |ip| ip.to_string()),
                    );
                    out.push(violation(Invariant::SessionKeepsItsNetwork, d, message));
                }
                *last = now_ip.or(*last);
            }
            _ => {}
        }
    }
    out
}

/// [`Invariant::NoZombieRequests`].
fn no_zombies(trace: &Trace) -> Vec<Violation> {
    let lives = trace.facts.lives.iter().filter(|l| l.zombies > 0);
    lives
        .map(|life| {
            let death = life.death.as_ref();
            let how = death.map_or_else(|| "refused".into(), |d| d.verdict.to_string());
            Violation {
                invariant: Invariant::NoZombieRequests,
                session: life.id,
                at: life.last_zombie.unwrap_or_default(),
                seq: death.map(|d| d.seq),
                message: format!(
                    "{} request(s) sent on it after it was {how}, past those in flight",
                    life.zombies
                ),
            }
        })
        .collect()
}

/// [`Invariant::RefusalAnsweredOnFreshExit`].
fn refusals_answered(trace: &Trace) -> Vec<Violation> {
    let logins: Vec<&Decision> = trace
        .decisions
        .iter()
        .filter(|d| matches!(d.kind, DecisionKind::Login { .. }))
        .collect();
    let stickies = new_stickies(trace);
    let mut out = Vec::new();
    for life in &trace.facts.lives {
        let (Some(death), Some(told)) = (&life.death, &life.revealed) else {
            continue;
        };
        let Some(reason) = death.verdict.reason() else {
            continue;
        };
        let next = logins.iter().find(|l| l.seq > told.seq);
        let message = match next {
            None if trace.work_left => Some(format!(
                "refused with {reason} and never followed by a login, with records left to fetch"
            )),
            Some(login) if reason.is_security() && !fresh_exit(&stickies, told, login) => {
                Some(format!(
                    "refused with {reason} from {}, and the next login came from the same exit",
                    address(told).map_or_else(|| "no address".into(), |ip| ip.to_string()),
                ))
            }
            _ => None,
        };
        if let Some(message) = message {
            out.push(violation(
                Invariant::RefusalAnsweredOnFreshExit,
                told,
                message,
            ));
        }
    }
    out
}

/// When and to which address the gateway first sent each sticky session
/// id: the exits a client asked afresh for.
fn new_stickies(trace: &Trace) -> Vec<(Timestamp, IpAddr)> {
    let mut seen = HashSet::new();
    let first = trace.proxy.iter().filter_map(|e| match &e.what {
        ProxyWhat::ExitChosen {
            exit,
            sticky: Some(id),
        } if seen.insert(id.as_str()) => Some((e.at, exit.ip)),
        _ => None,
    });
    first.collect()
}

/// Whether `login` came from an exit other than the one `refused` was
/// sent from: another address, or that address newly given to a sticky
/// session id (one of `stickies`) between the refusal and the login.
fn fresh_exit(stickies: &[(Timestamp, IpAddr)], refused: &Decision, login: &Decision) -> bool {
    let (Some(old), Some(new)) = (address(refused), address(login)) else {
        return true;
    };
    let chosen = |&(at, ip): &(Timestamp, IpAddr)| ip == new && at >= refused.at && at <= login.at;
    old != new || stickies.iter().any(chosen)
}
