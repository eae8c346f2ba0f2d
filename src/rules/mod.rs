//! The rules: small pure checks of a live context against a session.
//!
//! Each check takes its config, the session, the live context and `now`,
//! and returns a [`Firing`] when it fires. A check whose action is `off`
//! is not evaluated at all.
//!
//! Precedence: lifetimes are checked first, so natural expiry is reported
//! as expiry. Then every security rule runs; the strongest action wins, and
//! among equal actions the earlier rule in `evaluate`'s order wins.

pub mod browser;
pub mod concurrency;
pub mod fingerprint;
pub mod lifetime;
pub(crate) mod login;
pub mod network;
pub mod velocity;

use crate::clock::Timestamp;
use crate::config::EngineConfig;
use crate::context::RequestContext;
use crate::session::{Account, Session};
use crate::verdict::{Action, Evidence, Firing, Reason, RuleName};

/// Builds a firing, or nothing when the action is `off`.
pub(crate) fn fire(
    rule: RuleName,
    reason: Reason,
    action: Action,
    evidence: Evidence,
) -> Option<Firing> {
    (action != Action::Off).then_some(Firing {
        rule,
        reason,
        action,
        evidence,
    })
}

/// Rate-limit state to write back if the request conformed.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct RateUpdate {
    /// The session's new GCRA arrival time.
    pub(crate) session_tat_us: Option<u64>,
    /// The account's new GCRA arrival time.
    pub(crate) account_tat_us: Option<u64>,
}

/// Runs every security rule in precedence order, pushing what fires.
pub(crate) fn evaluate(
    cfg: &EngineConfig,
    s: &Session,
    account: &Account,
    ctx: &RequestContext,
    now: Timestamp,
    fired: &mut Vec<Firing>,
) -> RateUpdate {
    fired.extend(network::ip_drift(&cfg.ip_drift, s, ctx));
    fired.extend(network::asn_drift(cfg.asn_drift.action, s, ctx));
    fired.extend(network::class_drift(cfg.network_class_drift.action, s, ctx));
    fired.extend(network::geo_drift(cfg.geo_drift.action, s, ctx));
    fired.extend(network::impossible_travel(
        &cfg.impossible_travel,
        s,
        ctx,
        now,
    ));
    fingerprint::check_all(&cfg.fingerprint, s, ctx, fired);
    fingerprint::companions(&cfg.companion_cookies, s, ctx, fired);
    fired.extend(browser::sensor(&cfg.sensor, ctx));
    fired.extend(browser::automation(&cfg.automation, ctx));
    fired.extend(browser::clearance(&cfg.clearance, ctx, now));
    fired.extend(concurrency::distinct_ips(&cfg.concurrency, s, ctx, now));
    fired.extend(concurrency::in_flight(&cfg.concurrency, s));
    let session_rate = velocity::check(
        &cfg.session_velocity,
        RuleName::SessionVelocity,
        s.velocity_tat_us,
        now,
    );
    let account_rate = velocity::check(
        &cfg.account_velocity,
        RuleName::AccountVelocity,
        account.velocity_tat_us,
        now,
    );
    let update = RateUpdate {
        session_tat_us: conformed(session_rate, fired),
        account_tat_us: conformed(account_rate, fired),
    };
    fired.extend(velocity::cadence(&cfg.robotic_cadence, s, now));
    update
}

/// The new arrival time of a conforming outcome; a firing is pushed.
pub(crate) fn conformed(outcome: velocity::Outcome, fired: &mut Vec<Firing>) -> Option<u64> {
    match outcome {
        velocity::Outcome::Off => None,
        velocity::Outcome::Conforms(tat) => Some(tat),
        velocity::Outcome::Fires(f) => {
            fired.push(f);
            None
        }
    }
}

/// The firing that decides the verdict: the strongest action, earliest rule
/// first. `log` firings never decide.
pub(crate) fn strongest(fired: &[Firing]) -> Option<&Firing> {
    fired
        .iter()
        .filter(|f| f.action > Action::Log)
        .reduce(|best, f| if f.action > best.action { f } else { best })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn firing(rule: RuleName, action: Action) -> Firing {
        Firing {
            rule,
            reason: Reason::IpDrift,
            action,
            evidence: Evidence::Count {
                measured: 1,
                limit: 0,
            },
        }
    }

    #[test]
    fn strongest_prefers_action_then_order_and_ignores_log() {
        let f = [
            firing(RuleName::IpDrift, Action::Log),
            firing(RuleName::AsnDrift, Action::Challenge),
            firing(RuleName::GeoDrift, Action::Revoke),
            firing(RuleName::UserAgent, Action::Revoke),
        ];
        assert_eq!(strongest(&f).map(|f| f.rule), Some(RuleName::GeoDrift));
        assert_eq!(strongest(&f[..1]).map(|f| f.rule), None);
        assert!(
            fire(
                RuleName::IpDrift,
                Reason::IpDrift,
                Action::Off,
                f[0].evidence.clone()
            )
            .is_none()
        );
    }
}
