//! The variant space: traps drawn onto a base scenario, each with the grade that keeps it honest.
//!
//! A [`Variant`] is a set of knobs. Each knob mirrors a bundled scenario
//! (its settings and the `[grade]` lines that excuse what the environment
//! forces), so a careful client can pass every variant: the knob that
//! kills an exit leaves another alive, the gateway's moves are listed as
//! expected invalidations, rate limits stay above the pace a careful
//! client keeps, and every knob that costs sessions adds accounts. Knobs
//! shrink towards the base: an `Option` to `None`, a flag to `false`, a
//! list to fewer events, a number to its first value; the exit plan to
//! the base's own exits.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::path::Path;
use std::time::Duration;

use proptest::prelude::*;

use crate::config::IpTolerance;
use crate::error::{Error, Result};
use crate::grade::Trap;
use crate::pool::config::{ExitConfig, FaultConfig, FaultKind, GatewayConfig};
use crate::scenario::Scenario;
use crate::site::config::{AccountSpec, AuthMode, ResponseStyle};
use crate::timeline::{TimelineAction, TimelineEvent};
use crate::verdict::{Action, Reason};

/// Where the client's requests leave from.
#[derive(Clone, Debug, PartialEq)]
pub enum ExitPlan {
    /// The base's static exits; the first may die, and the second may be
    /// moved into the first one's network with concurrent use refused.
    Static {
        /// The first exit dies after this many requests (4 to 11: after
        /// a login, before the exit has carried its share).
        dies_after: Option<u64>,
        /// The exits share one network, and a session seen from two
        /// addresses at once is revoked (`CONCURRENT_USE`).
        one_network: bool,
    },
    /// No static exits: a rotating gateway whose sticky sessions move
    /// every `sticky_ms` milliseconds, each move a drift the grade expects.
    Gateway {
        /// Sticky and idle TTL, 1,000 to 1,200 ms: short enough that a
        /// baseline crawl of a few seconds sees its sessions move.
        sticky_ms: u64,
        /// A second security invalidation within the hour bans the
        /// account (the `escalation` scenario's rule).
        bans: bool,
    },
}

/// One variant: the knobs drawn, applied by [`Variant::apply`].
#[derive(Clone, Debug, PartialEq)]
pub struct Variant {
    /// Where requests leave from.
    pub exits: ExitPlan,
    /// `revoke-all` at these request counts (4 to 18).
    pub revokes: Vec<u64>,
    /// Security refusals answered with a 200 login form.
    pub soft_login: bool,
    /// Session velocity revoked past this rate per second (6 to 12) and burst (2 to 8).
    pub velocity: Option<(u32, u32)>,
    /// Companion cookies set at login, revoked when missing or altered.
    pub companions: bool,
    /// Sessions expire this many milliseconds after login (1,000 to 1,500).
    pub absolute_ttl_ms: Option<u64>,
    /// Bearer tokens only, access tokens living this many seconds (2 to 3),
    /// refresh tokens rotating with no overlap.
    pub jwt_access_secs: Option<u64>,
    /// The target over HTTPS, the JA4 pinned.
    pub https: bool,
}

/// The variants of a base scenario (applied to it by [`Variant::apply`]).
///
/// Proptest shrinks a tuple one element at a time, each as far as it
/// goes, and an `Option` by its inner value before `None`. So whether a
/// knob is there is a flag of its own, and the flags come first: the first
/// steps of a shrink drop knobs, and only the knobs that the failure needs
/// then have their numbers shrunk. A number of a knob that is not there
/// changes nothing, and the search does not run such a case again.
pub fn variants() -> BoxedStrategy<Variant> {
    let flags = (
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
        proptest::collection::btree_set(4u64..=18, 0..=2),
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
    );
    let numbers = (
        2u64..=3,
        1_000u64..=1_500,
        (6u32..=12, 2u32..=8),
        1_000u64..=1_200,
        4u64..=11,
    );
    (flags, numbers)
        .prop_map(|(f, n)| Variant::of(f, n))
        .boxed()
}

/// The knob flags, in shrinking order: HTTPS, short tokens, a short
/// lifetime, companions, a rate limit, soft logouts, revocations, the
/// gateway, bans (with the gateway), a dying exit, one network.
type Flags = (
    bool,
    bool,
    bool,
    bool,
    bool,
    bool,
    BTreeSet<u64>,
    bool,
    bool,
    bool,
    bool,
);
/// The knobs' numbers: access token seconds, lifetime ms, velocity rate
/// and burst, sticky ms, requests before the exit dies.
type Numbers = (u64, u64, (u32, u32), u64, u64);

impl Variant {
    /// The variant the flags `f` and numbers `n` say.
    fn of(f: Flags, n: Numbers) -> Self {
        let (
            https,
            jwt,
            ttl,
            companions,
            velocity,
            soft_login,
            revokes,
            gateway,
            bans,
            dies,
            one_net,
        ) = f;
        let (jwt_secs, ttl_ms, rate, sticky_ms, dies_after) = n;
        let exits = if gateway {
            ExitPlan::Gateway { sticky_ms, bans }
        } else {
            ExitPlan::Static {
                dies_after: dies.then_some(dies_after),
                one_network: one_net,
            }
        };
        Self {
            exits,
            revokes: revokes.into_iter().collect(),
            soft_login,
            velocity: velocity.then_some(rate),
            companions,
            absolute_ttl_ms: ttl.then_some(ttl_ms),
            jwt_access_secs: jwt.then_some(jwt_secs),
            https,
        }
    }

    /// The base scenario itself.
    pub fn base() -> Self {
        Self {
            exits: ExitPlan::Static {
                dies_after: None,
                one_network: false,
            },
            revokes: Vec::new(),
            soft_login: false,
            velocity: None,
            companions: false,
            absolute_ttl_ms: None,
            jwt_access_secs: None,
            https: false,
        }
    }

    /// `base` with this variant's knobs, named `name`, as a scenario file
    /// and as the scenario `run` reads back from that file (validated,
    /// its defaults decided).
    pub fn scenario(&self, base: &Scenario, name: &str) -> Result<(String, Scenario)> {
        let text = toml::to_string(&self.apply(base, name))
            .map_err(|e| Error::config("scenario", format!("cannot write it as TOML: {e}")))?;
        let back = Scenario::parse(&text, Path::new(&format!("{name}.toml")))?;
        Ok((text, back))
    }

    /// `base` with this variant's knobs, named `name`.
    pub fn apply(&self, base: &Scenario, name: &str) -> Scenario {
        let mut s = base.clone();
        s.name = name.to_owned();
        s.description = self.describe().join("; ");
        self.apply_exits(&mut s);
        self.apply_timeline(&mut s);
        self.apply_rules(&mut s);
        // On top of what the base's own traps cost, which its accounts cover.
        let extra = 4 * usize::from(matches!(self.exits, ExitPlan::Gateway { .. }))
            + 2 * self.revokes.len();
        add_accounts(&mut s, extra);
        dedup(&mut s.grade.traps);
        dedup(&mut s.grade.expected_invalidations);
        s
    }

    /// The exits: a death, one network, or the gateway alone.
    fn apply_exits(&self, s: &mut Scenario) {
        match self.exits {
            ExitPlan::Static {
                dies_after,
                one_network,
            } => {
                if let (Some(n), true) = (dies_after, s.pool.exits.len() >= 2) {
                    s.pool.exits[0].faults.push(dies(n, self.https));
                    s.grade.traps.push(Trap::ExitDied);
                    raise(&mut s.grade.max_reauth_overhead, 0.3);
                }
                if one_network {
                    one_network_exits(s);
                }
            }
            ExitPlan::Gateway { sticky_ms, bans } => gateway_only(s, sticky_ms, bans),
        }
    }

    /// Revocations of every session at request counts.
    fn apply_timeline(&self, s: &mut Scenario) {
        for &at in &self.revokes {
            s.timeline.push(TimelineEvent {
                at: None,
                at_request: Some(at),
                action: TimelineAction::RevokeAll,
                account: None,
            });
        }
        if !self.revokes.is_empty() {
            s.grade.traps.push(Trap::SessionRevoked);
            s.grade.max_zombies = 0;
        }
        if self.soft_login {
            s.target.responses.security = ResponseStyle::SoftLogin;
            s.target.responses.bearer = ResponseStyle::SoftLogin;
        }
    }

    /// Rate limits, companions, lifetimes, tokens and TLS.
    fn apply_rules(&self, s: &mut Scenario) {
        let rules = &mut s.target.rules;
        if let Some((rate, burst)) = self.velocity {
            rules.session_velocity.action = Action::Revoke;
            rules.session_velocity.rate = f64::from(rate);
            rules.session_velocity.per = Duration::from_secs(1);
            rules.session_velocity.burst = burst;
            s.grade.max_peak_rate = Some(8.0);
        }
        if self.companions {
            s.target.companions.at_login = true;
            rules.companion_cookies.missing = Action::Revoke;
            rules.companion_cookies.altered = Action::Revoke;
        }
        if let Some(ms) = self.absolute_ttl_ms {
            rules.lifetime.absolute_ttl = Duration::from_millis(ms);
            rules.lifetime.skew_grace = Duration::ZERO;
            s.grade.traps.push(Trap::SessionExpired);
            raise(&mut s.grade.max_reauth_overhead, 0.3);
        }
        if let Some(secs) = self.jwt_access_secs {
            s.target.auth = AuthMode::Jwt;
            let t = &mut s.target.tokens;
            t.access_ttl = Duration::from_secs(secs);
            t.refresh_overlap = Duration::ZERO;
            t.skew = Duration::ZERO;
            s.grade.traps.push(Trap::TokenExpired);
            s.grade.min_yield = None;
        }
        if self.https {
            s.run.https = true;
            rules.fingerprint.ja4 = Action::Revoke;
        }
    }

    /// What the variant changes from its base, a phrase per knob.
    pub fn describe(&self) -> Vec<String> {
        let mut out = self.describe_exits();
        if !self.revokes.is_empty() {
            let at: Vec<String> = self.revokes.iter().map(u64::to_string).collect();
            out.push(format!(
                "every session revoked at request {}",
                at.join(" and ")
            ));
        }
        if self.soft_login {
            out.push("security refusals answered with a 200 login form".to_owned());
        }
        if let Some((rate, burst)) = self.velocity {
            out.push(format!(
                "session velocity revoked past {rate}/s, burst {burst}"
            ));
        }
        if self.companions {
            out.push("companion cookies set at login, revoked when missing or altered".to_owned());
        }
        if let Some(ms) = self.absolute_ttl_ms {
            out.push(format!("sessions expire {ms} ms after login"));
        }
        if let Some(secs) = self.jwt_access_secs {
            out.push(format!("bearer tokens only, access tokens live {secs} s"));
        }
        if self.https {
            out.push("HTTPS, the JA4 pinned".to_owned());
        }
        if out.is_empty() {
            out.push("the base scenario as it is".to_owned());
        }
        out
    }
}

impl Variant {
    /// The exit plan's phrases.
    fn describe_exits(&self) -> Vec<String> {
        let mut out = Vec::new();
        match &self.exits {
            ExitPlan::Static {
                dies_after,
                one_network,
            } => {
                match (dies_after, self.https) {
                    (Some(n), false) => out.push(format!("the first exit dies after {n} requests")),
                    (Some(n), true) => {
                        out.push(format!("the first exit dies {} ms into the run", 300 * n));
                    }
                    (None, _) => {}
                }
                if *one_network {
                    out.push("both exits in one network, concurrent use revoked".to_owned());
                }
            }
            ExitPlan::Gateway { sticky_ms, bans } => {
                out.push(format!(
                    "no static exits: the gateway moves sticky sessions every {sticky_ms} ms"
                ));
                if *bans {
                    out.push("a second security invalidation bans the account".to_owned());
                }
            }
        }
        out
    }
}

/// A `dies` fault after `n` requests; over HTTPS, where a tunnel is one
/// request however many pages it carries, after `n` tenths of three
/// seconds instead.
fn dies(n: u64, https: bool) -> FaultConfig {
    FaultConfig {
        kind: FaultKind::Dies,
        after_requests: (!https).then_some(n),
        after_connections: None,
        after: https.then(|| Duration::from_millis(300 * n)),
        probability: 1.0,
        latency: None,
        jitter: None,
        bytes_per_sec: None,
        after_bytes: None,
    }
}

/// Puts every static exit in the first one's network (AS7922 in the
/// fixtures: 127.0.1.0/24 and 127.0.5.0/24) and revokes a session seen
/// from two addresses at once; drift inside the network is only logged.
fn one_network_exits(s: &mut Scenario) {
    for (i, exit) in s.pool.exits.iter_mut().enumerate() {
        let host = 20 + u8::try_from(i).unwrap_or(0);
        let net = if i == 0 { 1 } else { 5 };
        exit.ip = IpAddr::from([127, 0, net, host]);
    }
    let r = &mut s.target.rules;
    r.ip_drift.action = Action::Log;
    r.ip_drift.tolerance = IpTolerance::Asn;
    r.concurrency.action = Action::Revoke;
    r.concurrency.max_ips = 1;
    r.concurrency.window = Duration::from_secs(60);
}

/// Replaces the static exits with a gateway over four networks whose
/// sticky sessions move every `sticky_ms`: each move is a drift the
/// grade expects, and zombies are not allowed. Escalation only logs, or,
/// with `bans`, bans an account at its second security invalidation
/// within the hour; the grade then allows no banned account, which a
/// client that spreads its re-logins over its six accounts keeps to.
fn gateway_only(s: &mut Scenario, sticky_ms: u64, bans: bool) {
    s.pool.exits = Vec::<ExitConfig>::new();
    let ttl = Duration::from_millis(sticky_ms);
    let ranges = [1u8, 2, 3, 4].map(|n| format!("127.0.{n}.30/32"));
    s.pool.gateway = Some(GatewayConfig {
        ranges: ranges.iter().filter_map(|r| r.parse().ok()).collect(),
        classes: Vec::new(),
        sticky_ttl: ttl,
        idle_ttl: ttl,
        faults: Vec::new(),
    });
    let e = &mut s.target.rules.escalation;
    if bans {
        e.action = Action::Ban;
        e.invalidations = 2;
        e.window = Duration::from_secs(3600);
        e.ban_ttl = Duration::from_secs(3600);
        s.grade.max_banned_accounts = 0;
    } else {
        e.action = Action::Log;
    }
    s.grade.traps.push(Trap::ExitMoved);
    s.grade.expected_invalidations.extend([
        Reason::AsnDrift,
        Reason::NetworkClassDrift,
        Reason::GeoDrift,
        Reason::ImpossibleTravel,
    ]);
    s.grade.max_zombies = 0;
    raise(&mut s.grade.max_reauth_overhead, 0.4);
}

/// Adds `n` accounts, `extra-1` to `extra-n`.
fn add_accounts(s: &mut Scenario, n: usize) {
    s.target.accounts.extend((1..=n).map(|i| AccountSpec {
        username: format!("extra-{i}"),
        password: format!("extra-password-{i}"),
        totp_secret: None,
    }));
}

/// `at_least` if `value` is below it.
fn raise(value: &mut f64, at_least: f64) {
    *value = value.max(at_least);
}

/// Drops repeats, keeping the first of each.
fn dedup<T: PartialEq + Clone>(v: &mut Vec<T>) {
    let mut seen: Vec<T> = Vec::with_capacity(v.len());
    v.retain(|x| {
        let new = !seen.contains(x);
        if new {
            seen.push(x.clone());
        }
        new
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fuzz::search::runner;
    use proptest::strategy::ValueTree;

    #[test]
    fn every_bundled_scenario_survives_the_trip_through_a_file() {
        for base in Scenario::bundled().expect("the pack") {
            let (_, back) = Variant::base()
                .scenario(&base, &base.name)
                .expect("writes and reads back");
            let expected = Scenario {
                description: Variant::base().describe().join("; "),
                ..base.clone()
            };
            assert_eq!(back, expected, "{}", base.name);
        }
    }

    /// Whether no item of `v` repeats an earlier one.
    fn once<T: PartialEq>(v: &[T]) -> bool {
        (0..v.len()).all(|i| !v[..i].contains(&v[i]))
    }

    #[test]
    fn drawn_variants_are_valid_scenarios_that_keep_an_exit_and_enough_accounts() {
        // sticky-expiry already lists the gateway's trap and reasons: the
        // gateway knob must not list them twice.
        for name in ["baseline", "sticky-expiry"] {
            let base = Scenario::named(name).expect("a bundled scenario");
            let strategy = variants();
            let mut runner = runner(5);
            for i in 0..300 {
                let v = strategy.new_tree(&mut runner).expect("a variant").current();
                let (text, s) = v
                    .scenario(&base, &format!("v{i}"))
                    .expect("a valid scenario");
                let surviving = s.pool.exits.iter().filter(|e| e.faults.is_empty()).count();
                assert!(surviving >= 1 || s.pool.gateway.is_some(), "{text}");
                let gateway = matches!(v.exits, ExitPlan::Gateway { .. });
                let lost = 4 * usize::from(gateway) + 2 * v.revokes.len();
                let accounts = base.target.accounts.len() + lost;
                assert!(s.target.accounts.len() >= accounts, "{text}");
                assert!(once(&s.grade.traps), "{text}");
                assert!(once(&s.grade.expected_invalidations), "{text}");
                if let Some((rate, _)) = v.velocity {
                    // The reference client's default pace is 4 per second,
                    // at most 7 in any second: a limit of 6/s is honest.
                    assert!(rate >= 6, "{text}");
                }
            }
        }
    }

    #[test]
    fn the_base_variant_changes_nothing_but_the_name_and_description() {
        let base = Scenario::named("baseline").expect("baseline");
        let same = Variant::base().apply(&base, "baseline-v1");
        assert_eq!(
            same,
            Scenario {
                name: "baseline-v1".into(),
                description: "the base scenario as it is".into(),
                ..base
            }
        );
    }

    #[test]
    fn knobs_shrink_towards_the_base() {
        let strategy = variants();
        let mut runner = runner(9);
        for _ in 0..20 {
            let mut tree = strategy.new_tree(&mut runner).expect("a variant");
            while tree.simplify() {}
            assert_eq!(tree.current(), Variant::base());
        }
    }
}
