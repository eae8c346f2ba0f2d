//! Whether a scenario's trap actually fired during a run: a run that never met its trap is not a pass.
//!
//! A scenario names its traps in `[grade] traps`; each is checked against
//! the trace. A trap counts only when it met a session *in use*, one the
//! target served records to: a trap fired on a throwaway session (a login
//! made only to spend a request counter or to kill an exit) tested nothing.
//! A fast client can finish before a timed event, a careful one can dodge
//! it: in each case the card says which trap never fired and the run is
//! inconclusive, never a pass.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::engine::{Decision, DecisionKind};
use crate::grade::explain::ExitNames;
use crate::grade::facts::TraceFacts;
use crate::pool::{FaultKind, ProxyWhat};
use crate::session::SessionId;
use crate::target::attempts::RefreshOutcome;
use crate::verdict::{Reason, Verdict};

/// One trap a run must have met.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Trap {
    /// The target revoked a live session on an operator's order (a
    /// timeline event): `SESSION_REVOKED` on a session in use.
    SessionRevoked,
    /// A session outlived its absolute TTL and was refused for it.
    SessionExpired,
    /// A session idled out and was refused for it.
    IdleTimeout,
    /// An access token ran out while its session lived, and was refreshed.
    TokenExpired,
    /// A session's exit moved under it: one of its requests came from
    /// another address than its login.
    ExitMoved,
    /// An exit of the pool died (the `dies` fault fired).
    ExitDied,
}

impl Trap {
    /// The name used in scenario files.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::SessionRevoked => "session_revoked",
            Self::SessionExpired => "session_expired",
            Self::IdleTimeout => "idle_timeout",
            Self::TokenExpired => "token_expired",
            Self::ExitMoved => "exit_moved",
            Self::ExitDied => "exit_died",
        }
    }

    /// What it takes, as the card says it when it never happened.
    pub fn never(self) -> &'static str {
        match self {
            Self::SessionRevoked => "no session in use was revoked by the target",
            Self::SessionExpired => "no session in use was refused for outliving its TTL",
            Self::IdleTimeout => "no session in use was refused for idling out",
            Self::TokenExpired => "no session in use had its access token refreshed",
            Self::ExitMoved => "no session in use saw its exit move under it",
            Self::ExitDied => "no exit died under a session in use",
        }
    }

    /// How many times it met a session in use: one `served` records.
    pub fn count(self, facts: &TraceFacts, served: &HashMap<SessionId, u64>) -> u64 {
        let used = |s: &SessionId| served.get(s).is_some_and(|n| *n > 0);
        let decisions = facts.decisions.iter().filter(|d| used(&d.session));
        let n = match self {
            Self::SessionRevoked => decisions
                .filter(|d| matches!(d.kind, DecisionKind::Revoke { .. }))
                .filter(|d| d.verdict == Verdict::Revoke(Reason::SessionRevoked))
                .count(),
            Self::SessionExpired => expiries(decisions, Reason::SessionExpired),
            Self::IdleTimeout => expiries(decisions, Reason::IdleTimeout),
            Self::TokenExpired => facts
                .refreshes
                .iter()
                .filter(|r| r.outcome == RefreshOutcome::Rotated)
                .filter(|r| r.session.as_ref().is_some_and(used))
                .count(),
            Self::ExitMoved => moves(decisions),
            Self::ExitDied => deaths_under_sessions(facts, &used),
        };
        n as u64
    }
}

/// Requests refused because their session had expired for `reason`.
fn expiries<'a>(decisions: impl Iterator<Item = &'a Decision>, reason: Reason) -> usize {
    decisions
        .filter(|d| d.kind == DecisionKind::Request && d.verdict == Verdict::Expire(reason))
        .count()
}

/// Requests of a session from another address than its login.
fn moves<'a>(decisions: impl Iterator<Item = &'a Decision>) -> usize {
    let mut born: HashMap<SessionId, Option<IpAddr>> = HashMap::new();
    let mut n = 0;
    for d in decisions {
        let ip = d.context.as_ref().and_then(|c| c.ip);
        match d.kind {
            DecisionKind::Login { .. } if d.verdict == Verdict::Allow => {
                born.insert(d.session, ip);
            }
            DecisionKind::Request => {
                let birth = born.get(&d.session).copied().flatten();
                n += usize::from(birth.is_some() && ip.is_some() && birth != ip);
            }
            _ => {}
        }
    }
    n
}

/// Sessions in use that were born on an exit that later died.
fn deaths_under_sessions(facts: &TraceFacts, used: &dyn Fn(&SessionId) -> bool) -> usize {
    let dead: HashSet<&str> = facts
        .proxy
        .iter()
        .filter(|e| {
            matches!(
                e.what,
                ProxyWhat::Fault {
                    fault: FaultKind::Dies,
                    ..
                }
            )
        })
        .map(|e| e.node.as_str())
        .collect();
    let names = ExitNames::from_events(&facts.proxy);
    let on_dead = |d: &&Decision| {
        let ip = d.context.as_ref().and_then(|c| c.ip);
        names.name(ip).is_some_and(|n| dead.contains(n))
    };
    facts
        .decisions
        .iter()
        .filter(|d| matches!(d.kind, DecisionKind::Login { .. }) && d.verdict == Verdict::Allow)
        .filter(|d| used(&d.session))
        .filter(on_dead)
        .count()
}

/// The `trap` criterion's parts: a count per trap.
pub fn check(
    traps: &[Trap],
    facts: &TraceFacts,
    served: &HashMap<SessionId, u64>,
) -> Vec<(Trap, u64)> {
    traps.iter().map(|t| (*t, t.count(facts, served))).collect()
}
