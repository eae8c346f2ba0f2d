//! Lifetimes: absolute TTL, idle TTL and max uses. Natural expiry, never a security event.

use crate::clock::{Timestamp, millis};
use crate::config::LifetimeConfig;
use crate::session::Session;
use crate::verdict::{Action, Evidence, Firing, Reason, RuleName};

/// The first lifetime the session has outlived at `now`, if any.
///
/// Both TTLs get the clock-skew grace. Max uses counts served requests:
/// with `max_uses = 3` the fourth request expires the session.
pub(crate) fn check(cfg: &LifetimeConfig, s: &Session, now: Timestamp) -> Option<Firing> {
    let grace = millis(cfg.skew_grace);
    let age = millis(now.since(s.created));
    let limit = millis(cfg.absolute_ttl).saturating_add(grace);
    if age > limit {
        return Some(expiry(
            RuleName::AbsoluteTtl,
            Reason::SessionExpired,
            age,
            limit,
        ));
    }
    let idle = millis(now.since(s.last_seen));
    let limit = millis(cfg.idle_ttl).saturating_add(grace);
    if idle > limit {
        return Some(expiry(RuleName::IdleTtl, Reason::IdleTimeout, idle, limit));
    }
    if cfg.max_uses > 0 && s.uses >= cfg.max_uses {
        let evidence = Evidence::Count {
            measured: s.uses.saturating_add(1),
            limit: cfg.max_uses,
        };
        return Some(Firing {
            rule: RuleName::MaxUses,
            reason: Reason::MaxUses,
            action: Action::Revoke,
            evidence,
        });
    }
    None
}

fn expiry(rule: RuleName, reason: Reason, age_ms: u64, limit_ms: u64) -> Firing {
    Firing {
        rule,
        reason,
        action: Action::Revoke,
        evidence: Evidence::Age { age_ms, limit_ms },
    }
}
