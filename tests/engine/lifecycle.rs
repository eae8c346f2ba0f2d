//! Lifetimes, dead sessions, escalation, explicit revocation, replay and the store's bounds.

use std::time::Duration;

use sessionrange::{
    Action, Decision, Engine, EngineConfig, Reason, RuleName, SessionId, Verdict, replay,
};

use crate::helpers::*;

fn short_lives(c: &mut EngineConfig) {
    c.lifetime.absolute_ttl = Duration::from_secs(600);
    c.lifetime.idle_ttl = Duration::from_secs(60);
    c.lifetime.skew_grace = Duration::from_secs(2);
}

#[test]
fn absolute_ttl_expires_with_its_own_code_after_the_grace() {
    let e = engine(short_lives);
    let c = Client::new("127.0.1.10");
    let sid = login(&e, 1, "alice", &c, at(0));
    for t in (50..=600).step_by(50) {
        assert_eq!(request(&e, sid, &c, at(t)).verdict, Verdict::Allow);
    }
    assert_eq!(
        request(&e, sid, &c, at(602)).verdict,
        Verdict::Allow,
        "inside the grace"
    );
    let d = request(&e, sid, &c, at_ms(602_001));
    assert_eq!(d.verdict, Verdict::Expire(Reason::SessionExpired));
    assert_eq!(d.fired[0].rule, RuleName::AbsoluteTtl);
}

#[test]
fn idle_timeout_expires_and_is_not_a_security_invalidation() {
    let e = engine(short_lives);
    let c = Client::new("127.0.1.10");
    for n in 0..5 {
        let sid = login(&e, n, "alice", &c, at(0));
        assert_eq!(
            request(&e, sid, &c, at(63)).verdict,
            Verdict::Expire(Reason::IdleTimeout)
        );
    }
    let account = e.account("alice").expect("account exists");
    assert!(account.invalidations.is_empty());
    assert!(!account.is_banned(at(63)));
}

#[test]
fn max_uses_expires_on_the_next_request() {
    let e = engine(|c| c.lifetime.max_uses = 3);
    let c = Client::new("127.0.1.10");
    let sid = login(&e, 1, "alice", &c, at(0));
    for t in 1..=3 {
        assert_eq!(request(&e, sid, &c, at(t)).verdict, Verdict::Allow);
    }
    assert_eq!(
        request(&e, sid, &c, at(4)).verdict,
        Verdict::Expire(Reason::MaxUses)
    );
}

#[test]
fn expiry_is_checked_before_drift() {
    let e = engine(short_lives);
    let c = Client::new("127.0.1.10");
    let sid = login(&e, 1, "alice", &c, at(0));
    let d = request(&e, sid, &c.from("127.0.2.10"), at(100));
    assert_eq!(d.verdict, Verdict::Expire(Reason::IdleTimeout));
}

#[test]
fn unknown_session_expires_as_unknown() {
    let e = engine(|_| {});
    let d = request(
        &e,
        SessionId::from_u128(99),
        &Client::new("127.0.1.10"),
        at(0),
    );
    assert_eq!(d.verdict, Verdict::Expire(Reason::SessionUnknown));
    assert_eq!(d.account, None);
}

#[test]
fn a_dead_session_repeats_its_verdict_and_is_marked_dead() {
    let e = engine(|_| {});
    let c = Client::new("127.0.1.10");
    let sid = login(&e, 1, "alice", &c, at(0));
    let first = request(&e, sid, &c.from("127.0.2.10"), at(1));
    assert!(!first.on_dead_session);
    for t in 2..5 {
        let d = request(&e, sid, &c, at(t));
        assert_eq!(d.verdict, Verdict::Revoke(Reason::AsnDrift));
        assert!(d.on_dead_session);
    }
}

#[test]
fn escalation_bans_the_account_at_the_third_invalidation() {
    let e = engine(|_| {});
    let c = Client::new("127.0.1.10");
    let aws = c.from("127.0.2.10");
    for n in 1..=2 {
        let sid = login(&e, n, "alice", &c, at(n as u64 * 10));
        assert_eq!(
            request(&e, sid, &aws, at(n as u64 * 10 + 1)).verdict,
            Verdict::Revoke(Reason::AsnDrift)
        );
    }
    let sid = login(&e, 3, "alice", &c, at(30));
    let d = request(&e, sid, &aws, at(31));
    assert_eq!(d.verdict, Verdict::Ban(Reason::AsnDrift));
    assert!(d.fired.iter().any(|f| f.rule == RuleName::Escalation));
    let refused = e.login(
        SessionId::from_u128(4),
        "alice",
        c.ctx(),
        companions(),
        at(40),
    );
    assert_eq!(refused.verdict, Verdict::Ban(Reason::AccountBanned));
    assert!(e.session(SessionId::from_u128(4)).is_none());
    let bob = login(&e, 5, "bob", &c, at(40));
    assert_eq!(request(&e, bob, &c, at(41)).verdict, Verdict::Allow);
    login(&e, 6, "alice", &c, at(31 + 3600));
}

#[test]
fn a_ban_kills_the_accounts_other_live_sessions() {
    let e = engine(|c| c.fingerprint.user_agent = Action::Ban);
    let c = Client::new("127.0.1.10");
    let keep = login(&e, 1, "alice", &c, at(0));
    let bad = login(&e, 2, "alice", &c, at(0));
    let d = request(
        &e,
        bad,
        &Client {
            user_agent: "curl/8".into(),
            ..c.clone()
        },
        at(1),
    );
    assert_eq!(d.verdict, Verdict::Ban(Reason::UserAgentDrift));
    assert_eq!(
        request(&e, keep, &c, at(2)).verdict,
        Verdict::Ban(Reason::AccountBanned)
    );
}

#[test]
fn logout_and_operator_revocations_do_not_escalate() {
    let e = engine(|_| {});
    let c = Client::new("127.0.1.10");
    for n in 0..5 {
        let sid = login(&e, n, "alice", &c, at(0));
        assert_eq!(
            e.revoke(sid, Reason::LoggedOut, at(1)).verdict,
            Verdict::Revoke(Reason::LoggedOut)
        );
    }
    assert!(!e.account("alice").expect("exists").is_banned(at(2)));
    let a = login(&e, 10, "bob", &c, at(0));
    let b = login(&e, 11, "bob", &c, at(0));
    let decisions = e.revoke_account("bob", Reason::SessionRevoked, at(1));
    assert_eq!(decisions.len(), 2);
    for sid in [a, b] {
        assert_eq!(
            request(&e, sid, &c, at(2)).verdict,
            Verdict::Revoke(Reason::SessionRevoked)
        );
    }
}

#[test]
fn refresh_token_reuse_counts_towards_escalation() {
    let e = engine(|c| c.escalation.invalidations = 1);
    let c = Client::new("127.0.1.10");
    let sid = login(&e, 1, "alice", &c, at(0));
    let d = e.revoke(sid, Reason::RefreshTokenReuse, at(1));
    assert_eq!(d.verdict, Verdict::Ban(Reason::RefreshTokenReuse));
    let again = e.revoke(sid, Reason::RefreshTokenReuse, at(2));
    assert!(again.on_dead_session);
}

/// A mixed run: logins, clean requests, drifts, explicit revocations.
fn mixed_trace(e: &Engine) -> Vec<Decision> {
    let c = Client::new("127.0.1.10");
    let mut trace = Vec::new();
    for n in 0..6u64 {
        let sid = SessionId::from_u128(u128::from(n) + 1);
        trace.push(e.login(
            sid,
            if n % 2 == 0 { "alice" } else { "bob" },
            c.ctx(),
            companions(),
            at(n * 100),
        ));
        for i in 0..5 {
            trace.push(e.decide(sid, c.ctx(), at(n * 100 + i)));
        }
        let drift = match n {
            0 => c.from("127.0.2.10"),
            1 => Client {
                cookies: vec![],
                ..c.clone()
            },
            2 => c.from("127.0.3.10"),
            3 => c.from("127.0.1.99"),
            _ => c.from("127.0.4.10"),
        };
        trace.push(e.decide(sid, drift.ctx(), at(n * 100 + 6)));
        trace.push(e.decide(sid, c.ctx(), at(n * 100 + 7)));
    }
    trace.push(e.revoke(SessionId::from_u128(3), Reason::LoggedOut, at(900)));
    trace
}

#[test]
fn a_json_trace_replays_to_the_same_verdicts() {
    let e = engine(|_| {});
    let trace = mixed_trace(&e);
    let lines: Vec<String> = trace
        .iter()
        .map(|d| serde_json::to_string(d).expect("serializes"))
        .collect();
    let parsed: Vec<Decision> = lines
        .iter()
        .map(|l| serde_json::from_str(l).expect("parses"))
        .collect();
    assert_eq!(parsed, trace);
    let diffs = replay(EngineConfig::default(), &parsed).expect("valid config");
    assert!(diffs.is_empty(), "{diffs:?}");
    let verdicts: Vec<_> = trace.iter().map(|d| d.verdict).collect();
    assert!(
        verdicts.contains(&Verdict::Ban(Reason::AsnDrift)),
        "{verdicts:?}"
    );
}

#[test]
fn replay_with_other_rules_reports_the_differences() {
    let e = engine(|_| {});
    let trace = mixed_trace(&e);
    let mut lenient = EngineConfig::default();
    lenient.asn_drift.action = Action::Log;
    let diffs = replay(lenient, &trace).expect("valid config");
    assert!(!diffs.is_empty());
    assert!(
        diffs
            .iter()
            .any(|(was, _)| was.verdict.reason() == Some(Reason::AsnDrift))
    );
}

#[test]
fn the_store_is_bounded_and_evicts_dead_sessions_first() {
    let e = engine(|c| {
        c.store.max_sessions = 64;
        c.store.shards = 4;
    });
    let c = Client::new("127.0.1.10");
    let first = login(&e, 0, "alice", &c, at(0));
    for n in 1..64 {
        login(&e, n, "alice", &c, at(1));
    }
    for n in 64..1000 {
        let d = e.login(
            SessionId::from_u128(n),
            "alice",
            c.ctx(),
            companions(),
            at(1),
        );
        assert_eq!(d.verdict, Verdict::Challenge(Reason::SessionStoreFull));
        assert_eq!(e.len(), 64);
    }
    assert!(
        e.session(first).is_some(),
        "a live session is never evicted"
    );
    e.revoke(first, Reason::LoggedOut, at(2));
    login(&e, 1000, "alice", &c, at(3));
    assert!(e.session(first).is_none(), "the dead session made room");
}

#[test]
fn sweep_forgets_sessions_past_their_ttls() {
    let e = engine(short_lives);
    let c = Client::new("127.0.1.10");
    let old = login(&e, 1, "alice", &c, at(0));
    let fresh = login(&e, 2, "alice", &c, at(100));
    assert_eq!(e.sweep(at(110)).removed, 1);
    assert!(e.session(old).is_none());
    assert!(e.session(fresh).is_some());
    assert_eq!(
        request(&e, old, &c, at(111)).verdict,
        Verdict::Expire(Reason::SessionUnknown)
    );
}

#[test]
#[cfg(feature = "cli")]
fn the_replay_command_reads_a_trace_file_and_reports_differences() {
    let e = engine(|_| {});
    let trace = mixed_trace(&e);
    let dir = std::env::temp_dir().join(format!("sessionrange-replay-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("trace.jsonl");
    let lines: Vec<String> = trace
        .iter()
        .map(|d| serde_json::to_string(d).expect("json"))
        .collect();
    std::fs::write(&path, lines.join("\n")).expect("write trace");
    let rules = dir.join("lenient.toml");
    let lenient = "[asn_drift]\naction = \"log\"\n[network_class_drift]\naction = \"log\"\n[geo_drift]\naction = \"log\"\n[impossible_travel]\naction = \"log\"\n";
    std::fs::write(&rules, lenient).expect("write rules");
    let run = |extra: &[&std::path::Path]| {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_sessionrange"));
        cmd.arg("replay").arg(&path);
        if let Some(r) = extra.first() {
            cmd.arg("--rules").arg(r);
        }
        let out = cmd.output().expect("runs");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("utf-8")
    };
    let same = run(&[]);
    assert!(
        same.ends_with(&format!("{} decisions replayed, 0 differ\n", trace.len())),
        "{same}"
    );
    let lenient = run(&[&rules]);
    assert!(
        lenient.contains("recorded revoke(ASN_DRIFT) -> replayed allow"),
        "{lenient}"
    );
    std::fs::write(&path, "{\"broken\": true}\n").expect("write");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_sessionrange"))
        .arg("replay")
        .arg(&path)
        .output()
        .expect("runs");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("trace.jsonl:1:"), "{err}");
}

#[test]
fn escalation_set_to_log_records_the_threshold_without_banning() {
    let e = engine(|c| c.escalation.action = Action::Log);
    let c = Client::new("127.0.1.10");
    let aws = c.from("127.0.2.10");
    for n in 1..=3u64 {
        let sid = login(&e, u128::from(n), "alice", &c, at(n * 10));
        let d = request(&e, sid, &aws, at(n * 10 + 1));
        assert_eq!(d.verdict, Verdict::Revoke(Reason::AsnDrift));
        let logged = d
            .fired
            .iter()
            .any(|f| f.rule == RuleName::Escalation && f.action == Action::Log);
        assert_eq!(logged, n == 3, "invalidation {n}");
    }
    assert!(!e.account("alice").expect("exists").is_banned(at(40)));
}
