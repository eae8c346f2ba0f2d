//! Whether a scenario's trap actually fired during a run: a run that never met its trap is not a pass.
//!
//! A scenario names its traps in `[grade] traps`; each is checked against
//! the trace. A trap counts only when it met a session *in use*, one the
//! target served records to: a trap fired on a throwaway session (a login
//! made only to spend a request counter or to kill an exit) tested nothing.
//! A fast client can finish before a timed event, a careful one can dodge
//! it: in each case the card says which trap never fired and the run is
//! inconclusive, never a pass.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::grade::facts::{SessionLife, TraceFacts};
use crate::session::SessionId;

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
        let lives = facts.lives.iter().filter(|l| used(&l.id));
        match self {
            Self::SessionRevoked => lives.map(|l| l.operator_revocations).sum(),
            Self::SessionExpired => lives.map(|l| l.ttl_expiries).sum(),
            Self::IdleTimeout => lives.map(|l| l.idle_expiries).sum(),
            Self::TokenExpired => facts
                .rotations
                .iter()
                .filter(|(s, _)| used(s))
                .map(|(_, n)| *n)
                .sum(),
            Self::ExitMoved => lives.map(|l| l.exit_moves).sum(),
            Self::ExitDied => lives.filter(|l| born_on_dead_exit(facts, l)).count() as u64,
        }
    }
}

/// Whether `life` was born on an exit that later died.
fn born_on_dead_exit(facts: &TraceFacts, life: &SessionLife) -> bool {
    let ip = life
        .birth
        .as_ref()
        .and_then(|b| b.context.as_ref())
        .and_then(|c| c.ip);
    facts
        .exits
        .name(ip)
        .is_some_and(|n| facts.dead_exits.contains(n))
}

/// The `trap` criterion's parts: a count per trap.
pub fn check(
    traps: &[Trap],
    facts: &TraceFacts,
    served: &HashMap<SessionId, u64>,
) -> Vec<(Trap, u64)> {
    traps.iter().map(|t| (*t, t.count(facts, served))).collect()
}
