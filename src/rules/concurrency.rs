//! Concurrent use: one session presented from many addresses, or too many requests at once.

use std::collections::HashSet;

use crate::clock::Timestamp;
use crate::config::ConcurrencyConfig;
use crate::context::RequestContext;
use crate::session::Session;
use crate::verdict::{Action, Evidence, Firing, Reason, RuleName};

use super::fire;

/// More than `max_ips` distinct addresses (or `max_asns` ASNs) inside the
/// window, counting this request's.
pub(crate) fn distinct_ips(
    cfg: &ConcurrencyConfig,
    s: &Session,
    ctx: &RequestContext,
    now: Timestamp,
) -> Option<Firing> {
    if cfg.action == Action::Off {
        return None;
    }
    let recent = s
        .sightings
        .iter()
        .filter(|x| x.ip != ctx.ip && now.since(x.last) <= cfg.window);
    let ips = 1 + recent.clone().count() as u64;
    if ips > u64::from(cfg.max_ips) {
        let evidence = Evidence::Count {
            measured: ips,
            limit: cfg.max_ips.into(),
        };
        return fire(
            RuleName::ConcurrentIps,
            Reason::ConcurrentUse,
            cfg.action,
            evidence,
        );
    }
    if cfg.max_asns == 0 {
        return None;
    }
    let asns: HashSet<_> = recent.map(|x| x.asn).chain([ctx.network.asn]).collect();
    let measured = asns.len() as u64;
    (measured > u64::from(cfg.max_asns)).then(|| {
        let evidence = Evidence::Count {
            measured,
            limit: cfg.max_asns.into(),
        };
        fire(
            RuleName::ConcurrentIps,
            Reason::ConcurrentUse,
            cfg.action,
            evidence,
        )
    })?
}

/// More than `max_in_flight` requests at once on the session, counting this one.
pub(crate) fn in_flight(cfg: &ConcurrencyConfig, s: &Session) -> Option<Firing> {
    let measured = u64::from(s.in_flight) + 1;
    if cfg.in_flight_action == Action::Off || measured <= u64::from(cfg.max_in_flight) {
        return None;
    }
    let evidence = Evidence::Count {
        measured,
        limit: cfg.max_in_flight.into(),
    };
    fire(
        RuleName::InFlight,
        Reason::ConcurrentUse,
        cfg.in_flight_action,
        evidence,
    )
}
