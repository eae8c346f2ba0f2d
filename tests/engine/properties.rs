//! Property tests of the pinning logic, on synthetic contexts that isolate one signal each.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::Duration;

use proptest::prelude::*;
use sessionrange::{
    Action, CountryCode, Engine, EngineConfig, Location, NetworkClass, NetworkInfo, Reason,
    RequestContext, SessionId, Timestamp, Verdict, replay,
};

use crate::helpers::T0;

/// A context on a synthetic network, with the birth companion cookies.
fn base() -> RequestContext {
    let network = NetworkInfo {
        asn: Some(7922),
        org: Some(Arc::from("Comcast")),
        country: CountryCode::parse("US"),
        class: NetworkClass::Residential,
        location: Some(Location {
            lat: 39.95,
            lon: -75.16,
        }),
    };
    let headers = [
        ("host", "t"),
        ("user-agent", "ua/1"),
        ("accept", "*/*"),
        ("accept-language", "en-US"),
        ("cookie", "_rid=r1; _sensor=s1"),
    ];
    RequestContext::from_headers(
        Some(IpAddr::V4(Ipv4Addr::new(104, 28, 12, 7))),
        network,
        headers,
    )
    .with_tls(Some("ja3".into()), Some("ja4-a".into()))
}

fn companions() -> Vec<(String, String)> {
    vec![
        ("_rid".into(), "r1".into()),
        ("_sensor".into(), "s1".into()),
    ]
}

#[derive(Clone, Copy, Debug)]
enum Drift {
    Ip,
    Asn,
    Class,
    Country,
    UserAgent,
    Ja4,
    CompanionMissing,
    CompanionAltered,
}

fn drift_strategy() -> impl Strategy<Value = Drift> {
    prop_oneof![
        Just(Drift::Ip),
        Just(Drift::Asn),
        Just(Drift::Class),
        Just(Drift::Country),
        Just(Drift::UserAgent),
        Just(Drift::Ja4),
        Just(Drift::CompanionMissing),
        Just(Drift::CompanionAltered),
    ]
}

/// Applies one drift to the base context, sets its rule to revoke, and
/// returns the reason it must produce.
fn drifted(d: Drift, cfg: &mut EngineConfig) -> (RequestContext, Reason) {
    let mut ctx = base();
    let reason = match d {
        Drift::Ip => {
            cfg.ip_drift.action = Action::Revoke;
            ctx.ip = Some(IpAddr::V4(Ipv4Addr::new(104, 28, 99, 1)));
            Reason::IpDrift
        }
        Drift::Asn => {
            cfg.asn_drift.action = Action::Revoke;
            ctx.network.asn = Some(7018);
            Reason::AsnDrift
        }
        Drift::Class => {
            cfg.network_class_drift.action = Action::Revoke;
            ctx.network.class = NetworkClass::Datacenter;
            Reason::NetworkClassDrift
        }
        Drift::Country => {
            cfg.geo_drift.action = Action::Revoke;
            ctx.network.country = CountryCode::parse("CA");
            Reason::GeoDrift
        }
        Drift::UserAgent => {
            ctx.user_agent = Some("other/2".into());
            Reason::UserAgentDrift
        }
        Drift::Ja4 => {
            ctx.ja4 = Some("ja4-b".into());
            Reason::TlsFingerprintDrift
        }
        Drift::CompanionMissing => {
            cfg.companion_cookies.missing = Action::Revoke;
            ctx.cookies.retain(|(n, _)| n != "_sensor");
            Reason::CompanionCookieMissing
        }
        Drift::CompanionAltered => {
            cfg.companion_cookies.altered = Action::Revoke;
            ctx.cookies[0].1 = "forged".into();
            Reason::CompanionCookieAltered
        }
    };
    (ctx, reason)
}

fn ms(t: u64) -> Timestamp {
    T0.plus(Duration::from_millis(t))
}

fn new_engine(cfg: EngineConfig) -> Engine {
    Engine::new(cfg).expect("valid config")
}

/// One step of a random workload on a few sessions.
#[derive(Clone, Debug)]
enum Op {
    Login(u8),
    Request(u8, u8),
    Release(u8),
    Logout(u8),
}

fn op_strategy() -> impl Strategy<Value = (u64, Op)> {
    let op = prop_oneof![
        1 => (0u8..3).prop_map(Op::Login),
        8 => ((0u8..3), (0u8..6)).prop_map(|(s, v)| Op::Request(s, v)),
        1 => (0u8..3).prop_map(Op::Release),
        1 => (0u8..3).prop_map(Op::Logout),
    ];
    (0u64..900_000, op)
}

/// Variant `v` of the client: mostly the base, sometimes drifted.
fn variant(v: u8) -> RequestContext {
    let mut ctx = base();
    match v {
        0..=2 => {}
        3 => ctx.network.asn = Some(16509),
        4 => ctx.user_agent = Some("bot/9".into()),
        _ => ctx.cookies.clear(),
    }
    ctx
}

fn run(e: &Engine, ops: &[(u64, Op)]) -> Vec<sessionrange::Decision> {
    let mut t = 0;
    ops.iter()
        .map(|(gap, op)| {
            t += gap;
            let sid = |s: &u8| SessionId::from_u128(u128::from(*s) + 1);
            match op {
                Op::Login(s) => e.login(sid(s), "acct", base(), companions(), ms(t)),
                Op::Request(s, v) => e.decide(sid(s), variant(*v), ms(t)),
                Op::Release(s) => e.release(sid(s), ms(t)),
                Op::Logout(s) => e.revoke(sid(s), Reason::LoggedOut, ms(t)),
            }
        })
        .collect()
}

fn short_idle() -> EngineConfig {
    let mut cfg = EngineConfig::default();
    cfg.lifetime.idle_ttl = Duration::from_secs(600);
    cfg.concurrency.in_flight_action = Action::Challenge;
    cfg.concurrency.max_in_flight = 3;
    cfg
}

proptest! {
    #[test]
    fn a_session_used_only_from_its_birth_context_lives_until_its_ttl(
        gaps in prop::collection::vec(100u64..=1_800_000, 1..200)
    ) {
        let cfg = EngineConfig::default();
        let ttl = cfg.lifetime.absolute_ttl.as_millis() as u64;
        let e = new_engine(cfg);
        let sid = SessionId::from_u128(1);
        e.login(sid, "acct", base(), companions(), ms(0));
        let mut t = 0;
        for gap in gaps {
            t += gap;
            if t > ttl {
                break;
            }
            let d = e.decide(sid, base(), ms(t));
            prop_assert_eq!(d.verdict, Verdict::Allow, "at {} ms: {:?}", t, d.fired);
        }
    }

    #[test]
    fn a_drift_whose_rule_revokes_invalidates_on_the_first_drifted_request(
        clean in 0usize..30, drift in drift_strategy()
    ) {
        let mut cfg = EngineConfig::default();
        let (ctx, reason) = drifted(drift, &mut cfg);
        let e = new_engine(cfg);
        let sid = SessionId::from_u128(1);
        e.login(sid, "acct", base(), companions(), ms(0));
        for i in 0..clean {
            prop_assert_eq!(e.decide(sid, base(), ms(1000 * (i as u64 + 1))).verdict, Verdict::Allow);
        }
        let d = e.decide(sid, ctx, ms(1000 * (clean as u64 + 1)));
        prop_assert_eq!(d.verdict, Verdict::Revoke(reason));
    }

    #[test]
    fn a_revoked_or_expired_session_never_gets_allow_again(
        ops in prop::collection::vec(op_strategy(), 1..120)
    ) {
        let e = new_engine(short_idle());
        let decisions = run(&e, &ops);
        let mut dead = std::collections::HashSet::new();
        for d in &decisions {
            match d.kind {
                sessionrange::DecisionKind::Login { .. } => {
                    dead.remove(&d.session);
                }
                sessionrange::DecisionKind::Request => {
                    if dead.contains(&d.session) {
                        prop_assert!(d.verdict.is_terminal(), "{:?} after death", d.verdict);
                        prop_assert!(d.on_dead_session);
                    }
                    if d.verdict.is_terminal() && d.account.is_some() {
                        dead.insert(d.session);
                    }
                }
                _ => {}
            }
        }
    }

    #[test]
    fn decisions_are_deterministic_and_replay_exactly(
        ops in prop::collection::vec(op_strategy(), 1..120)
    ) {
        let a = run(&new_engine(short_idle()), &ops);
        let b = run(&new_engine(short_idle()), &ops);
        let verdicts = |ds: &[sessionrange::Decision]| ds.iter().map(|d| d.verdict).collect::<Vec<_>>();
        prop_assert_eq!(verdicts(&a), verdicts(&b));
        let diffs = replay(short_idle(), &a).expect("valid config");
        prop_assert!(diffs.is_empty(), "{:?}", diffs);
    }

    #[test]
    fn velocity_fires_exactly_when_rate_plus_burst_is_exceeded(
        rate in 1u32..20, burst in 1u32..10,
        steps in prop::collection::vec(0u64..400, 1..60)
    ) {
        let mut cfg = EngineConfig::default();
        cfg.session_velocity.rate = f64::from(rate);
        cfg.session_velocity.burst = burst;
        cfg.account_velocity.action = Action::Off;
        let (period, tolerance) = (cfg.session_velocity.interval_us(), cfg.session_velocity.tolerance_us());
        let e = new_engine(cfg);
        let sid = SessionId::from_u128(1);
        e.login(sid, "acct", base(), companions(), ms(0));
        let times: Vec<u64> = steps.iter().scan(0, |t, s| { *t += s; Some(*t) }).collect();
        let violates = |j: usize| (0..j).any(|i| {
            let span = (times[j] - times[i]) * 1000;
            span + tolerance < (j - i) as u64 * period
        });
        let first_violation = (0..times.len()).find(|&j| violates(j));
        for (j, t) in times.iter().enumerate() {
            let v = e.decide(sid, base(), ms(*t)).verdict;
            if Some(j) == first_violation {
                prop_assert_eq!(v, Verdict::Challenge(Reason::VelocityExceeded), "request {}", j);
                break;
            }
            prop_assert_eq!(v, Verdict::Allow, "request {} at {} ms", j, t);
        }
    }

    #[test]
    fn escalation_bans_exactly_at_the_nth_invalidation_inside_the_window(
        n in 1u32..6, gap_s in 1u64..600
    ) {
        let mut cfg = EngineConfig::default();
        cfg.escalation.invalidations = n;
        let e = new_engine(cfg);
        let mut drift = base();
        drift.user_agent = Some("other/2".into());
        for k in 1..=n {
            let t = ms(u64::from(k) * gap_s * 1000);
            let sid = SessionId::from_u128(u128::from(k));
            prop_assert_eq!(e.login(sid, "acct", base(), companions(), t).verdict, Verdict::Allow);
            let v = e.decide(sid, drift.clone(), t).verdict;
            let want = if k == n { Verdict::Ban(Reason::UserAgentDrift) } else { Verdict::Revoke(Reason::UserAgentDrift) };
            prop_assert_eq!(v, want, "invalidation {}", k);
        }
    }

    #[test]
    fn the_engine_never_panics_on_arbitrary_contexts(
        cases in prop::collection::vec(arbitrary_context(), 1..40),
        times in prop::collection::vec(any::<u64>(), 40),
    ) {
        let mut cfg = EngineConfig::default();
        cfg.robotic_cadence.action = Action::Revoke;
        cfg.concurrency.max_asns = 1;
        cfg.concurrency.in_flight_action = Action::Challenge;
        cfg.fingerprint = sessionrange::config::FingerprintConfig {
            user_agent: Action::Log, accept_language: Action::Log, header_order: Action::Log,
            http: Action::Log, ja4: Action::Log, ja3: Action::Log,
        };
        let e = new_engine(cfg);
        for (i, (ctx, t)) in cases.into_iter().zip(times).enumerate() {
            let sid = SessionId::from_u128((i % 3) as u128);
            let now = Timestamp::from_millis(t);
            let d = if i % 5 == 0 {
                e.login(sid, "acct", ctx, companions(), now)
            } else {
                e.decide(sid, ctx, now)
            };
            let json = serde_json::to_string(&d).expect("every decision serializes");
            prop_assert!(!json.is_empty());
        }
        let _ = e.sweep(Timestamp::from_millis(u64::MAX));
    }
}

fn arbitrary_context() -> impl Strategy<Value = RequestContext> {
    let network = (
        any::<Option<u32>>(),
        any::<Option<String>>(),
        "[A-Z]{2}",
        0usize..5,
        any::<Option<(f64, f64)>>(),
    )
        .prop_map(|(asn, org, cc, class, loc)| NetworkInfo {
            asn,
            org: org.map(Arc::from),
            country: CountryCode::parse(&cc),
            class: [
                NetworkClass::Residential,
                NetworkClass::Datacenter,
                NetworkClass::Mobile,
                NetworkClass::Corporate,
                NetworkClass::Unknown,
            ][class],
            location: loc.map(|(lat, lon)| Location { lat, lon }),
        });
    let headers = prop::collection::vec((".{0,12}", ".{0,40}"), 0..12);
    (
        any::<Option<IpAddr>>(),
        network,
        headers,
        any::<Option<String>>(),
        any::<Option<String>>(),
    )
        .prop_map(|(ip, network, headers, ja3, ja4)| {
            let pairs = headers.iter().map(|(n, v)| (n.as_str(), v.as_str()));
            RequestContext::from_headers(ip, network, pairs).with_tls(ja3, ja4)
        })
}
