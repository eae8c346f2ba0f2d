//! Sentences for reports: which rule fired, when, on what evidence, through which exits.

use std::collections::HashMap;
use std::net::IpAddr;

use crate::clock::Timestamp;
use crate::engine::Decision;
use crate::trace::proxy::{ProxyEvent, ProxyWhat};
use crate::verdict::{Evidence, Firing};

/// Exit names by address, learnt from the pool's `exit_chosen` events.
#[derive(Clone, Debug, Default)]
pub struct ExitNames(HashMap<IpAddr, String>);

impl ExitNames {
    /// Collects the names of every exit the pool used.
    pub fn from_events(events: &[ProxyEvent]) -> Self {
        let mut names = Self::default();
        for e in events {
            names.add(e);
        }
        names
    }

    /// Learns the exit `e` names, if any; the first name of an address stays.
    pub fn add(&mut self, e: &ProxyEvent) {
        let exit = match &e.what {
            ProxyWhat::ExitChosen { exit, .. } | ProxyWhat::StickyRenewed { exit, .. } => exit,
            ProxyWhat::StickyRotated { to, .. } => to,
            _ => return,
        };
        self.0.entry(exit.ip).or_insert_with(|| e.node.clone());
    }

    /// The exit `ip` belongs to, if it came through the pool.
    pub fn name(&self, ip: Option<IpAddr>) -> Option<&str> {
        self.0.get(&ip?).map(String::as_str)
    }
}

/// Seconds since `start`, as `t=12.4s`.
pub fn at(t: Timestamp, start: Timestamp) -> String {
    format!("t={:.1}s", t.since(start).as_secs_f64())
}

/// Why a session died, for example `ASN_DRIFT at t=12.4s: AS7922
/// (residential, Comcast) → AS16509 (datacenter, Amazon), via exit home → cloud`.
pub fn death(
    death: &Decision,
    birth: Option<&Decision>,
    start: Timestamp,
    exits: &ExitNames,
) -> String {
    let code = death.verdict.reason().map_or("UNKNOWN", |r| r.code());
    let mut out = format!("{code} at {}", at(death.at, start));
    let firing = death
        .fired
        .iter()
        .find(|f| Some(f.reason) == death.verdict.reason())
        .or(death.fired.first());
    if let Some(f) = firing {
        out.push_str(": ");
        out.push_str(&evidence(f));
    }
    let ip = |d: &Decision| d.context.as_ref().and_then(|c| c.ip);
    let born = birth.and_then(|b| exits.name(ip(b)));
    let now = exits.name(ip(death));
    match (born, now) {
        (Some(a), Some(b)) if a != b => out.push_str(&format!(", via exit {a} → {b}")),
        (Some(a), _) | (None, Some(a)) => out.push_str(&format!(", via exit {a}")),
        (None, None) => {}
    }
    out
}

/// One side of a network change: `AS7922 (residential, Comcast)`.
fn network(asn: Option<u32>, org: Option<&str>, class: impl std::fmt::Display) -> String {
    let asn = asn.map_or("AS?".to_owned(), |a| format!("AS{a}"));
    match org {
        Some(org) => format!("{asn} ({class}, {org})"),
        None => format!("{asn} ({class})"),
    }
}

/// A firing's evidence in a few words.
pub fn evidence(f: &Firing) -> String {
    match &f.evidence {
        Evidence::Ip { .. }
        | Evidence::Network { .. }
        | Evidence::Country { .. }
        | Evidence::Text { .. } => change(&f.evidence),
        other => measured(other),
    }
}

/// A value that changed since birth: `birth → live`.
fn change(e: &Evidence) -> String {
    let opt = |v: Option<String>| v.unwrap_or_else(|| "none".to_owned());
    match e {
        Evidence::Ip { birth, live } => format!(
            "{} → {}",
            opt(birth.map(|i| i.to_string())),
            opt(live.map(|i| i.to_string()))
        ),
        Evidence::Network {
            birth_asn,
            birth_org,
            birth_class,
            live_asn,
            live_org,
            live_class,
        } => format!(
            "{} → {}",
            network(*birth_asn, birth_org.as_deref(), birth_class),
            network(*live_asn, live_org.as_deref(), live_class)
        ),
        Evidence::Country { birth, live } => format!(
            "{} → {}",
            opt(birth.map(|c| c.to_string())),
            opt(live.map(|c| c.to_string()))
        ),
        Evidence::Text { birth, live } => {
            format!(
                "{:?} → {:?}",
                birth.as_deref().unwrap_or(""),
                live.as_deref().unwrap_or("")
            )
        }
        _ => String::new(),
    }
}

/// A rule's measure against its limit.
fn measured(e: &Evidence) -> String {
    match e {
        Evidence::Travel {
            km,
            seconds,
            kmh,
            limit_kmh,
        } => format!("{km:.0} km in {seconds:.1} s = {kmh:.0} km/h (limit {limit_kmh:.0})"),
        Evidence::Cookie { name, got, .. } => match got {
            Some(_) => format!("companion cookie {name} came back altered"),
            None => format!("companion cookie {name} went missing"),
        },
        Evidence::Count { measured, limit } => format!("{measured} against a limit of {limit}"),
        Evidence::Rate {
            per_second, burst, ..
        } => format!("over {per_second}/s with a burst of {burst}"),
        Evidence::Cadence {
            gaps,
            mean_ms,
            cv,
            max_cv,
        } => {
            format!("{gaps} gaps of {mean_ms:.0} ms on average, CV {cv:.3} (human: above {max_cv})")
        }
        Evidence::Age { age_ms, limit_ms } => format!(
            "{:.1} s old, limit {:.1} s",
            *age_ms as f64 / 1e3,
            *limit_ms as f64 / 1e3
        ),
        Evidence::Escalation {
            invalidations,
            limit,
            ..
        } => format!("{invalidations} invalidations, limit {limit}"),
        Evidence::Sensor { problem } => problem.clone(),
        Evidence::Claim { claimed, sent } => format!(
            "the sensor claims {claimed:?}, the request sent {:?}",
            sent.as_deref().unwrap_or("")
        ),
        Evidence::Clearance { standing, via } => match standing.as_str() {
            "valid" => format!("a clearance solved by the {} answered it", via.as_str()),
            what => format!(
                "a clearance presented with another {}",
                what.replace('_', " ")
            ),
        },
        Evidence::Automation { markers } => format!("automation markers: {}", markers.join(", ")),
        _ => String::new(),
    }
}
