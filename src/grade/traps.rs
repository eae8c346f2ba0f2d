//! Whether a scenario's trap actually fired during a run: a run that never met its trap is not a pass.
//!
//! A scenario names its traps in `[grade] traps`; each is checked against
//! the trace. A fast client can finish before a timed event, a slow one can
//! start after it, and a client that never reconnects never meets a dying
//! exit: in each case the card says which trap never fired, instead of
//! passing a client that was never tested.

use std::collections::HashMap;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::engine::DecisionKind;
use crate::grade::facts::TraceFacts;
use crate::pool::{FaultKind, ProxyWhat};
use crate::session::SessionId;
use crate::target::attempts::{RefreshOutcome, RefusalReason};
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
    /// An access token ran out while its session lived: it was refreshed,
    /// or presented after it expired.
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
            Self::SessionRevoked => "no live session was revoked by the target",
            Self::SessionExpired => "no session reached its absolute TTL while the client used it",
            Self::IdleTimeout => "no session idled out while the client used it",
            Self::TokenExpired => "no access token ran out while its session lived",
            Self::ExitMoved => "no session's exit moved under it",
            Self::ExitDied => "no exit of the pool died",
        }
    }

    /// How many times it fired in `facts`.
    pub fn count(self, facts: &TraceFacts) -> u64 {
        let n = match self {
            Self::SessionRevoked => facts
                .decisions
                .iter()
                .filter(|d| matches!(d.kind, DecisionKind::Revoke { .. }))
                .filter(|d| d.verdict == Verdict::Revoke(Reason::SessionRevoked))
                .count(),
            Self::SessionExpired => expiries(facts, Reason::SessionExpired),
            Self::IdleTimeout => expiries(facts, Reason::IdleTimeout),
            Self::TokenExpired => token_expiries(facts),
            Self::ExitMoved => moves(facts),
            Self::ExitDied => facts
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
                .count(),
        };
        n as u64
    }
}

/// Requests refused because their session had expired for `reason`.
fn expiries(facts: &TraceFacts, reason: Reason) -> usize {
    facts
        .decisions
        .iter()
        .filter(|d| d.kind == DecisionKind::Request && d.verdict == Verdict::Expire(reason))
        .count()
}

/// Refreshes that rotated a token, and requests refused for a bearer
/// token that was no longer valid.
fn token_expiries(facts: &TraceFacts) -> usize {
    let refreshed = facts
        .refreshes
        .iter()
        .filter(|r| r.outcome == RefreshOutcome::Rotated)
        .count();
    let stale = facts
        .refused
        .iter()
        .filter(|r| r.reason == RefusalReason::TokenInvalid)
        .count();
    refreshed + stale
}

/// Requests of a live session from another address than its login.
fn moves(facts: &TraceFacts) -> usize {
    let mut born: HashMap<SessionId, Option<IpAddr>> = HashMap::new();
    let mut n = 0;
    for d in &facts.decisions {
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

/// The `trap` criterion's parts: a count per trap, and whether all fired.
pub fn check(traps: &[Trap], facts: &TraceFacts) -> Vec<(Trap, u64)> {
    traps.iter().map(|t| (*t, t.count(facts))).collect()
}
