//! Login velocity: GCRA limits on login attempts per client address and per account.
//!
//! A login has no session yet, so these rules run on their own entry point
//! ([`crate::Engine::admit_login`]), before credentials are checked. Their
//! state is one arrival time per key; an address also remembers a ban.

use crate::clock::{Timestamp, millis};
use crate::config::LoginVelocityConfig;
use crate::verdict::{Action, Evidence, Firing, Reason, RuleName};

use super::velocity::{self, Outcome};

/// Addresses remembered per shard of the address table; past it, the
/// addresses whose limits have run out are forgotten first.
pub(crate) const ADDRESSES_PER_SHARD: usize = 1024;

/// What the engine remembers of one client address's login attempts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) struct AddressStanding {
    /// GCRA theoretical arrival time of its next attempt, in microseconds.
    pub(crate) tat_us: u64,
    /// The end of a ban by the per-address rule.
    pub(crate) banned_until: Option<Timestamp>,
}

impl AddressStanding {
    /// Whether forgetting it would change a verdict: its limit has not run
    /// out or it is banned.
    pub(crate) fn matters(&self, now: Timestamp) -> bool {
        self.tat_us > now.as_millis().saturating_mul(1000)
            || self.banned_until.is_some_and(|u| now < u)
    }
}

/// Checks one login limit. `banned_until` is the key's ban by this rule:
/// while it lasts every attempt fires with `ban`.
pub(crate) fn check(
    cfg: &LoginVelocityConfig,
    rule: RuleName,
    tat_us: u64,
    banned_until: Option<Timestamp>,
    now: Timestamp,
) -> Outcome {
    if cfg.action == Action::Off {
        return Outcome::Off;
    }
    if let Some(until) = banned_until.filter(|u| now < *u) {
        return Outcome::Fires(firing(cfg, rule, Action::Ban, millis(until.since(now))));
    }
    match velocity::check(&cfg.velocity(), rule, tat_us, now) {
        Outcome::Fires(f) => {
            let wait_ms = match (cfg.action, f.evidence) {
                (Action::Ban, _) => millis(cfg.ban_ttl),
                (_, Evidence::Rate { retry_after_ms, .. }) => retry_after_ms,
                _ => 0,
            };
            Outcome::Fires(firing(cfg, rule, f.action, wait_ms))
        }
        other => other,
    }
}

fn firing(cfg: &LoginVelocityConfig, rule: RuleName, action: Action, wait_ms: u64) -> Firing {
    Firing {
        rule,
        reason: Reason::LoginVelocityExceeded,
        action,
        evidence: Evidence::Rate {
            per_second: cfg.rate / cfg.per.as_secs_f64(),
            burst: cfg.burst,
            retry_after_ms: wait_ms,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_ban_fires_until_it_ends_then_the_rate_applies_again() {
        let cfg = LoginVelocityConfig::per_ip();
        let now = Timestamp::from_secs(100);
        let until = Some(Timestamp::from_secs(160));
        let rule = RuleName::LoginVelocityIp;
        match check(&cfg, rule, 0, until, now) {
            Outcome::Fires(f) => {
                assert_eq!(f.action, Action::Ban);
                assert_eq!(f.reason, Reason::LoginVelocityExceeded);
            }
            other => panic!("expected a ban, got {other:?}"),
        }
        let later = Timestamp::from_secs(160);
        assert!(matches!(
            check(&cfg, rule, 0, until, later),
            Outcome::Conforms(_)
        ));
        let standing = AddressStanding {
            tat_us: 0,
            banned_until: until,
        };
        assert!(standing.matters(now) && !standing.matters(later));
    }
}
