//! Each rule, fired and not fired, through the engine's public API.

use std::time::Duration;

use sessionrange::config::IpTolerance;
use sessionrange::{Action, Evidence, NetworkClass, Reason, RuleName, Verdict};

use crate::helpers::*;

#[test]
fn allows_a_session_used_from_its_birth_context() {
    let e = engine(|_| {});
    let c = Client::new("127.0.1.10");
    let sid = login(&e, 1, "alice", &c, at(0));
    for i in 1..50 {
        let d = request(&e, sid, &c, at(i * 10));
        assert_eq!(d.verdict, Verdict::Allow);
        assert!(d.fired.is_empty(), "{:?}", d.fired);
    }
    assert_eq!(e.session(sid).map(|s| s.uses), Some(49));
}

#[test]
fn revokes_session_when_asn_changes_and_records_both_networks() {
    let e = engine(|_| {});
    let c = Client::new("127.0.1.10");
    let sid = login(&e, 1, "alice", &c, at(0));
    let d = request(&e, sid, &c.from("127.0.2.10"), at(5));
    assert_eq!(d.verdict, Verdict::Revoke(Reason::AsnDrift));
    let asn = d
        .fired
        .iter()
        .find(|f| f.rule == RuleName::AsnDrift)
        .expect("asn fired");
    match &asn.evidence {
        Evidence::Network {
            birth_asn,
            live_asn,
            birth_class,
            live_class,
            ..
        } => {
            assert_eq!((*birth_asn, *live_asn), (Some(7922), Some(16509)));
            assert_eq!(
                (*birth_class, *live_class),
                (NetworkClass::Residential, NetworkClass::Datacenter)
            );
        }
        other => panic!("unexpected evidence {other:?}"),
    }
    assert!(
        d.fired
            .iter()
            .any(|f| f.reason == Reason::NetworkClassDrift)
    );
    assert!(
        d.fired
            .iter()
            .any(|f| f.reason == Reason::IpDrift && f.action == Action::Log)
    );
}

#[test]
fn network_class_drift_is_its_own_signal() {
    let e = engine(|c| c.asn_drift.action = Action::Off);
    let c = Client::new("127.0.1.10");
    let sid = login(&e, 1, "alice", &c, at(0));
    let d = request(&e, sid, &c.from("127.0.3.10"), at(5));
    assert_eq!(d.verdict, Verdict::Revoke(Reason::NetworkClassDrift));
}

#[test]
fn ip_drift_tolerance_is_exact_prefix_or_asn() {
    let base = Client::new("127.0.1.10");
    let cases = [
        (IpTolerance::Exact, "127.0.1.11", true),
        (IpTolerance::Prefix, "127.0.1.11", false),
        (IpTolerance::Prefix, "127.0.5.11", true),
        (IpTolerance::Asn, "127.0.5.11", false),
        (IpTolerance::Asn, "127.0.2.11", true),
    ];
    for (tolerance, to, fires) in cases {
        let e = engine(|c| {
            c.ip_drift.action = Action::Revoke;
            c.ip_drift.tolerance = tolerance;
            c.asn_drift.action = Action::Off;
            c.network_class_drift.action = Action::Off;
        });
        let sid = login(&e, 1, "alice", &base, at(0));
        let d = request(&e, sid, &base.from(to), at(5));
        let want = if fires {
            Verdict::Revoke(Reason::IpDrift)
        } else {
            Verdict::Allow
        };
        assert_eq!(d.verdict, want, "{tolerance:?} to {to}");
    }
}

#[test]
fn ip_drift_logs_by_default_and_serves_the_request() {
    let e = engine(|_| {});
    let c = Client::new("127.0.1.10");
    let sid = login(&e, 1, "alice", &c, at(0));
    let d = request(&e, sid, &c.from("127.0.5.10"), at(5));
    assert_eq!(d.verdict, Verdict::Allow);
    assert_eq!(d.fired.len(), 1);
    assert_eq!(
        (d.fired[0].rule, d.fired[0].action),
        (RuleName::IpDrift, Action::Log)
    );
}

#[test]
fn revokes_session_when_country_changes() {
    let e = engine(|c| {
        c.asn_drift.action = Action::Off;
        c.impossible_travel.action = Action::Off;
    });
    let c = Client::new("127.0.1.10");
    let sid = login(&e, 1, "alice", &c, at(0));
    let d = request(&e, sid, &c.from("127.0.4.10"), at(5));
    assert_eq!(d.verdict, Verdict::Revoke(Reason::GeoDrift));
}

#[test]
fn impossible_travel_fires_on_a_fast_move_and_not_on_a_slow_one() {
    let only_travel = |c: &mut sessionrange::EngineConfig| {
        c.asn_drift.action = Action::Off;
        c.geo_drift.action = Action::Off;
        c.lifetime.idle_ttl = Duration::from_secs(7 * 86_400);
        c.lifetime.absolute_ttl = Duration::from_secs(7 * 86_400);
    };
    let c = Client::new("127.0.1.10");
    let e = engine(only_travel);
    let sid = login(&e, 1, "alice", &c, at(0));
    let d = request(&e, sid, &c.from("127.0.4.10"), at(3600));
    assert_eq!(d.verdict, Verdict::Revoke(Reason::ImpossibleTravel));
    match d
        .fired
        .iter()
        .find(|f| f.rule == RuleName::ImpossibleTravel)
        .map(|f| &f.evidence)
    {
        Some(Evidence::Travel { kmh, limit_kmh, .. }) => assert!(*kmh > *limit_kmh),
        other => panic!("unexpected {other:?}"),
    }
    let e = engine(only_travel);
    let sid = login(&e, 1, "alice", &c, at(0));
    let d = request(&e, sid, &c.from("127.0.4.10"), at(3 * 86_400));
    assert_eq!(d.verdict, Verdict::Allow);
}

#[test]
fn user_agent_and_ja4_mutations_revoke() {
    let e = engine(|_| {});
    let c = Client::new("127.0.1.10");
    let sid = login(&e, 1, "alice", &c, at(0));
    let d = request(
        &e,
        sid,
        &Client {
            user_agent: "python-requests/2.32".into(),
            ..c.clone()
        },
        at(1),
    );
    assert_eq!(d.verdict, Verdict::Revoke(Reason::UserAgentDrift));
    let sid = login(&e, 2, "bob", &c, at(0));
    let d = request(
        &e,
        sid,
        &Client {
            ja4: Some("t13d1715h2_5b57614c22b0_3d5424432f57".into()),
            ..c.clone()
        },
        at(1),
    );
    assert_eq!(d.verdict, Verdict::Revoke(Reason::TlsFingerprintDrift));
}

#[test]
fn ja3_drift_is_ignored_unless_opted_in() {
    let c = Client::new("127.0.1.10");
    let permuted = Client {
        ja3: Some("ja3-b".into()),
        ..c.clone()
    };
    let e = engine(|_| {});
    let sid = login(&e, 1, "alice", &c, at(0));
    assert_eq!(request(&e, sid, &permuted, at(1)).verdict, Verdict::Allow);
    let e = engine(|c| c.fingerprint.ja3 = Action::Revoke);
    let sid = login(&e, 1, "alice", &c, at(0));
    assert_eq!(
        request(&e, sid, &permuted, at(1)).verdict,
        Verdict::Revoke(Reason::TlsFingerprintDrift)
    );
}

#[test]
fn swapped_header_order_changes_both_header_signals() {
    let e = engine(|c| {
        c.fingerprint.header_order = Action::Challenge;
        c.fingerprint.http = Action::Revoke;
    });
    let c = Client::new("127.0.1.10");
    let sid = login(&e, 1, "alice", &c, at(0));
    let d = request(
        &e,
        sid,
        &Client {
            swap_headers: true,
            ..c
        },
        at(1),
    );
    assert_eq!(d.verdict, Verdict::Revoke(Reason::HttpFingerprintDrift));
    assert!(d.fired.iter().any(|f| f.reason == Reason::HeaderOrderDrift));
}

#[test]
fn accept_language_change_is_logged_by_default() {
    let e = engine(|_| {});
    let c = Client::new("127.0.1.10");
    let sid = login(&e, 1, "alice", &c, at(0));
    let d = request(
        &e,
        sid,
        &Client {
            accept_language: "de-DE".into(),
            ..c
        },
        at(1),
    );
    assert_eq!(d.verdict, Verdict::Allow);
    assert_eq!(d.fired[0].reason, Reason::AcceptLanguageDrift);
}

#[test]
fn stripped_companion_cookie_is_challenged_and_the_session_lives() {
    let e = engine(|_| {});
    let c = Client::new("127.0.1.10");
    let sid = login(&e, 1, "alice", &c, at(0));
    let stripped = Client {
        cookies: vec![("_rid".into(), "a1b2c3".into())],
        ..c.clone()
    };
    let d = request(&e, sid, &stripped, at(1));
    assert_eq!(
        d.verdict,
        Verdict::Challenge(Reason::CompanionCookieMissing)
    );
    match &d.fired[0].evidence {
        Evidence::Cookie { name, got, .. } => assert_eq!((&**name, got), ("_sensor", &None)),
        other => panic!("unexpected {other:?}"),
    }
    let altered = Client {
        cookies: vec![
            ("_rid".into(), "zzz".into()),
            ("_sensor".into(), "s-9".into()),
        ],
        ..c.clone()
    };
    assert_eq!(
        request(&e, sid, &altered, at(2)).verdict,
        Verdict::Challenge(Reason::CompanionCookieAltered)
    );
    assert_eq!(request(&e, sid, &c, at(3)).verdict, Verdict::Allow);
}

#[test]
fn companion_cookie_rule_can_be_made_to_revoke() {
    let e = engine(|c| c.companion_cookies.missing = Action::Revoke);
    let c = Client::new("127.0.1.10");
    let sid = login(&e, 1, "alice", &c, at(0));
    let d = request(
        &e,
        sid,
        &Client {
            cookies: vec![],
            ..c
        },
        at(1),
    );
    assert_eq!(d.verdict, Verdict::Revoke(Reason::CompanionCookieMissing));
}

#[test]
fn velocity_challenges_past_rate_plus_burst_then_recovers() {
    let e = engine(|c| {
        c.session_velocity.rate = 2.0;
        c.session_velocity.burst = 3;
    });
    let c = Client::new("127.0.1.10");
    let sid = login(&e, 1, "alice", &c, at(0));
    for _ in 0..3 {
        assert_eq!(request(&e, sid, &c, at(1)).verdict, Verdict::Allow);
    }
    let d = request(&e, sid, &c, at(1));
    assert_eq!(d.verdict, Verdict::Challenge(Reason::VelocityExceeded));
    match d.fired[0].evidence {
        Evidence::Rate { retry_after_ms, .. } => assert_eq!(retry_after_ms, 500),
        ref other => panic!("unexpected {other:?}"),
    }
    assert_eq!(request(&e, sid, &c, at_ms(1500)).verdict, Verdict::Allow);
}

#[test]
fn account_velocity_counts_every_session_of_the_account() {
    let e = engine(|c| {
        c.account_velocity.rate = 1.0;
        c.account_velocity.burst = 2;
    });
    let c = Client::new("127.0.1.10");
    let a = login(&e, 1, "alice", &c, at(0));
    let b = login(&e, 2, "alice", &c, at(0));
    assert_eq!(request(&e, a, &c, at(1)).verdict, Verdict::Allow);
    assert_eq!(request(&e, b, &c, at(1)).verdict, Verdict::Allow);
    let d = request(&e, a, &c, at(1));
    assert_eq!(d.verdict, Verdict::Challenge(Reason::VelocityExceeded));
    assert_eq!(d.fired[0].rule, RuleName::AccountVelocity);
    let other = login(&e, 3, "bob", &c, at(0));
    assert_eq!(request(&e, other, &c, at(1)).verdict, Verdict::Allow);
}

#[test]
fn robotic_cadence_fires_on_metronome_gaps_only() {
    let e = engine(|c| c.robotic_cadence.action = Action::Challenge);
    let c = Client::new("127.0.1.10");
    let sid = login(&e, 1, "alice", &c, at(0));
    let verdicts: Vec<_> = (1..=11)
        .map(|i| request(&e, sid, &c, at_ms(i * 1000)).verdict)
        .collect();
    assert!(
        verdicts[..10].iter().all(|v| *v == Verdict::Allow),
        "{verdicts:?}"
    );
    assert_eq!(verdicts[10], Verdict::Challenge(Reason::RoboticCadence));
    let sid = login(&e, 2, "bob", &c, at(0));
    let jitter = [
        700, 1900, 2400, 4100, 4600, 6300, 6900, 8800, 9100, 11_000, 11_900, 13_500,
    ];
    for ms in jitter {
        assert_eq!(request(&e, sid, &c, at_ms(ms)).verdict, Verdict::Allow);
    }
}

#[test]
fn concurrent_use_from_too_many_addresses_revokes() {
    let e = engine(|_| {});
    let c = Client::new("127.0.1.10");
    let sid = login(&e, 1, "alice", &c, at(0));
    assert_eq!(
        request(&e, sid, &c.from("127.0.1.11"), at(1)).verdict,
        Verdict::Allow
    );
    let d = request(&e, sid, &c.from("127.0.1.12"), at(2));
    assert_eq!(d.verdict, Verdict::Revoke(Reason::ConcurrentUse));
    assert_eq!(
        d.fired[0].evidence,
        Evidence::Count {
            measured: 3,
            limit: 2
        }
    );
}

#[test]
fn addresses_outside_the_window_are_not_concurrent() {
    let e = engine(|_| {});
    let c = Client::new("127.0.1.10");
    let sid = login(&e, 1, "alice", &c, at(0));
    assert_eq!(
        request(&e, sid, &c.from("127.0.1.11"), at(100)).verdict,
        Verdict::Allow
    );
    assert_eq!(
        request(&e, sid, &c.from("127.0.1.12"), at(200)).verdict,
        Verdict::Allow
    );
}

#[test]
fn too_many_requests_in_flight_are_challenged_until_released() {
    let e = engine(|c| {
        c.concurrency.in_flight_action = Action::Challenge;
        c.concurrency.max_in_flight = 2;
    });
    assert!(e.tracks_in_flight());
    let c = Client::new("127.0.1.10");
    let sid = login(&e, 1, "alice", &c, at(0));
    assert_eq!(request(&e, sid, &c, at(1)).verdict, Verdict::Allow);
    assert_eq!(request(&e, sid, &c, at(1)).verdict, Verdict::Allow);
    assert_eq!(
        request(&e, sid, &c, at(1)).verdict,
        Verdict::Challenge(Reason::ConcurrentUse)
    );
    e.release(sid, at(1));
    assert_eq!(request(&e, sid, &c, at(1)).verdict, Verdict::Allow);
}
