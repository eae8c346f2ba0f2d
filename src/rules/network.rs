//! Network drift: address, autonomous system, network class, country and travel.

use std::net::IpAddr;

use crate::clock::Timestamp;
use crate::config::{IpDriftConfig, IpTolerance, TravelConfig};
use crate::context::RequestContext;
use crate::session::Session;
use crate::verdict::{Action, Evidence, Firing, Reason, RuleName};

use super::fire;

/// Whether two addresses share a /24 (IPv4) or /64 (IPv6).
pub fn same_prefix(a: IpAddr, b: IpAddr) -> bool {
    match (a, b) {
        (IpAddr::V4(a), IpAddr::V4(b)) => a.octets()[..3] == b.octets()[..3],
        (IpAddr::V6(a), IpAddr::V6(b)) => a.octets()[..8] == b.octets()[..8],
        _ => false,
    }
}

/// IP drift, within the configured tolerance.
pub(crate) fn ip_drift(cfg: &IpDriftConfig, s: &Session, ctx: &RequestContext) -> Option<Firing> {
    if cfg.action == Action::Off || s.birth.ip == ctx.ip {
        return None;
    }
    let tolerated = match (cfg.tolerance, s.birth.ip, ctx.ip) {
        (IpTolerance::Exact, ..) => false,
        (IpTolerance::Prefix, Some(a), Some(b)) => same_prefix(a, b),
        (IpTolerance::Asn, ..) if s.birth.network.asn.is_some() => {
            s.birth.network.asn == ctx.network.asn
        }
        (IpTolerance::Asn, Some(a), Some(b)) => same_prefix(a, b),
        _ => false,
    };
    let evidence = Evidence::Ip {
        birth: s.birth.ip,
        live: ctx.ip,
    };
    (!tolerated).then(|| fire(RuleName::IpDrift, Reason::IpDrift, cfg.action, evidence))?
}

fn network_evidence(s: &Session, ctx: &RequestContext) -> Evidence {
    let (b, l) = (&s.birth.network, &ctx.network);
    Evidence::Network {
        birth_asn: b.asn,
        birth_org: b.org.clone(),
        birth_class: b.class,
        live_asn: l.asn,
        live_org: l.org.clone(),
        live_class: l.class,
    }
}

/// ASN drift. Two unknown ASNs are not a drift.
pub(crate) fn asn_drift(action: Action, s: &Session, ctx: &RequestContext) -> Option<Firing> {
    if action == Action::Off || s.birth.network.asn == ctx.network.asn {
        return None;
    }
    fire(
        RuleName::AsnDrift,
        Reason::AsnDrift,
        action,
        network_evidence(s, ctx),
    )
}

/// Network-class drift, such as residential to datacenter.
pub(crate) fn class_drift(action: Action, s: &Session, ctx: &RequestContext) -> Option<Firing> {
    if action == Action::Off || s.birth.network.class == ctx.network.class {
        return None;
    }
    let reason = Reason::NetworkClassDrift;
    fire(
        RuleName::NetworkClassDrift,
        reason,
        action,
        network_evidence(s, ctx),
    )
}

/// Country drift.
pub(crate) fn geo_drift(action: Action, s: &Session, ctx: &RequestContext) -> Option<Firing> {
    if action == Action::Off || s.birth.network.country == ctx.network.country {
        return None;
    }
    let evidence = Evidence::Country {
        birth: s.birth.network.country,
        live: ctx.network.country,
    };
    fire(RuleName::GeoDrift, Reason::GeoDrift, action, evidence)
}

/// Impossible travel: the speed from the last known location to this one.
pub(crate) fn impossible_travel(
    cfg: &TravelConfig,
    s: &Session,
    ctx: &RequestContext,
    now: Timestamp,
) -> Option<Firing> {
    if cfg.action == Action::Off {
        return None;
    }
    let ((from, then), to) = (s.last_location?, ctx.network.location?);
    if from == to {
        return None;
    }
    let km = from.distance_km(&to);
    if !km.is_finite() || km < cfg.min_km {
        return None;
    }
    let seconds = now.since(then).as_secs_f64();
    let kmh = if seconds > 0.0 {
        km / (seconds / 3600.0)
    } else {
        f64::INFINITY
    };
    if kmh <= cfg.max_kmh {
        return None;
    }
    let evidence = Evidence::Travel {
        km,
        seconds,
        kmh: if kmh.is_finite() { kmh } else { f64::MAX },
        limit_kmh: cfg.max_kmh,
    };
    fire(
        RuleName::ImpossibleTravel,
        Reason::ImpossibleTravel,
        cfg.action,
        evidence,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("test address")
    }

    #[test]
    fn prefixes_are_slash_24_and_slash_64() {
        assert!(same_prefix(ip("10.1.2.3"), ip("10.1.2.200")));
        assert!(!same_prefix(ip("10.1.2.3"), ip("10.1.3.3")));
        assert!(same_prefix(
            ip("2001:db8:0:1::1"),
            ip("2001:db8:0:1:ffff::9")
        ));
        assert!(!same_prefix(ip("2001:db8:0:1::1"), ip("2001:db8:0:2::1")));
        assert!(!same_prefix(ip("10.1.2.3"), ip("::ffff:10.1.2.3")));
    }
}
