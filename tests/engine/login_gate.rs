//! The login velocity rules and the full session store, at the engine, on a manual clock.

use sessionrange::engine::{Entry, replay_entries};
use sessionrange::{Action, Decision, Engine, Reason, SessionId, Verdict};

use crate::helpers::*;

const HOME: &str = "127.0.1.10";
const CLOUD: &str = "127.0.2.10";

/// One login attempt on `account` from `ip` at `ms` after T0.
fn attempt(e: &Engine, n: u128, account: Option<&str>, ip: &str, ms: u64) -> Decision {
    let ctx = Client::new(HOME).from(ip).ctx();
    e.admit_login(SessionId::from_u128(n), account, ctx, at_ms(ms))
}

#[test]
fn an_address_gets_its_burst_at_once_then_its_rate_and_others_are_untouched() {
    let e = engine(|_| {});
    for n in 0..30 {
        assert_eq!(
            attempt(&e, n, None, HOME, 0).verdict,
            Verdict::Allow,
            "attempt {n}"
        );
    }
    let d = attempt(&e, 30, None, HOME, 0);
    assert_eq!(d.verdict, Verdict::Challenge(Reason::LoginVelocityExceeded));
    assert_eq!(d.fired.len(), 1);
    assert_eq!(d.fired[0].rule, sessionrange::RuleName::LoginVelocityIp);
    // A refused attempt costs nothing: 100 ms (one interval at 10/s) later
    // exactly one more is admitted.
    assert_eq!(attempt(&e, 31, None, HOME, 99).verdict, d.verdict);
    assert_eq!(attempt(&e, 32, None, HOME, 100).verdict, Verdict::Allow);
    assert_eq!(attempt(&e, 33, None, HOME, 100).verdict, d.verdict);
    assert_eq!(attempt(&e, 34, None, CLOUD, 100).verdict, Verdict::Allow);
}

#[test]
fn an_account_is_limited_across_addresses_and_unknown_names_are_not_tracked() {
    let e = engine(|_| {});
    for n in 0..20u8 {
        let ip = format!("127.0.1.{}", 20 + n);
        let d = attempt(&e, n.into(), Some("alice"), &ip, 0);
        assert_eq!(d.verdict, Verdict::Allow, "attempt {n}");
    }
    let d = attempt(&e, 20, Some("alice"), CLOUD, 0);
    assert_eq!(d.verdict, Verdict::Challenge(Reason::LoginVelocityExceeded));
    assert_eq!(
        d.fired[0].rule,
        sessionrange::RuleName::LoginVelocityAccount
    );
    assert_eq!(
        attempt(&e, 21, Some("bob"), CLOUD, 0).verdict,
        Verdict::Allow
    );
    assert_eq!(
        attempt(&e, 22, Some("alice"), CLOUD, 200).verdict,
        Verdict::Allow
    );
    assert!(e.account("mallory").is_none());
    attempt(&e, 23, None, CLOUD, 200);
    assert!(e.account("mallory").is_none());
}

#[test]
fn ban_bans_the_account_or_refuses_the_address_for_its_ttl() {
    let e = engine(|c| {
        c.login_velocity_account.action = Action::Ban;
        c.login_velocity_account.burst = 2;
        c.login_velocity_ip.action = Action::Ban;
        c.login_velocity_ip.burst = 3;
    });
    attempt(&e, 0, Some("alice"), HOME, 0);
    attempt(&e, 1, Some("alice"), CLOUD, 0);
    let d = attempt(&e, 2, Some("alice"), "127.0.4.7", 0);
    assert_eq!(d.verdict, Verdict::Ban(Reason::LoginVelocityExceeded));
    let alice = e.account("alice").expect("alice is known");
    assert!(alice.is_banned(at(899)) && !alice.is_banned(at(900)));
    let late = e.login(
        SessionId::from_u128(9),
        "alice",
        Client::new(HOME).ctx(),
        vec![],
        at(1),
    );
    assert_eq!(late.verdict, Verdict::Ban(Reason::AccountBanned));

    attempt(&e, 3, None, HOME, 0);
    attempt(&e, 4, None, HOME, 0);
    let d = attempt(&e, 5, None, HOME, 0);
    assert_eq!(d.verdict, Verdict::Ban(Reason::LoginVelocityExceeded));
    assert_eq!(attempt(&e, 6, None, HOME, 899_999).verdict, d.verdict);
    assert_eq!(attempt(&e, 7, None, HOME, 900_000).verdict, Verdict::Allow);
}

#[test]
fn login_gate_decisions_replay_exactly() {
    let e = engine(|c| c.login_velocity_ip.burst = 2);
    let trace: Vec<Entry> = (0..5)
        .map(|n| attempt(&e, n, Some("alice"), HOME, 10 * n as u64))
        .map(|d| Entry::Decision(Box::new(d)))
        .collect();
    let text = match &trace[2] {
        Entry::Decision(d) => serde_json::to_string(d).expect("json"),
        Entry::Upkeep(_) => unreachable!(),
    };
    assert!(text.contains(r#""kind":"login_gate""#), "{text}");
    let diffs = replay_entries(e.config().clone(), &trace).expect("replays");
    assert!(diffs.is_empty(), "{diffs:?}");
}

#[test]
fn revoke_is_refused_for_the_login_rules_and_unknown_keys_name_themselves() {
    let mut cfg = sessionrange::EngineConfig::default();
    cfg.login_velocity_account.action = Action::Revoke;
    let err = cfg.validate("rules").expect_err("revoke has no session");
    assert!(
        err.to_string()
            .contains("rules.login_velocity_account.action"),
        "{err}"
    );
    let cfg: sessionrange::EngineConfig =
        toml::from_str("[login_velocity_account]\nrate = 2\n").expect("parses");
    assert_eq!(cfg.login_velocity_account.rate, 2.0);
    assert_eq!(cfg.login_velocity_account.burst, 20, "the account default");
    assert_eq!(cfg.login_velocity_ip.burst, 30);
    let err = toml::from_str::<sessionrange::EngineConfig>("[login_velocity_ip]\nbursts = 2\n")
        .expect_err("unknown key");
    assert!(err.to_string().contains("bursts"), "{err}");
}

#[test]
fn a_full_store_refuses_logins_and_keeps_every_live_session() {
    let e = engine(|c| c.store.max_sessions = 8);
    let client = Client::new(HOME);
    let sids: Vec<SessionId> = (0..8)
        .map(|n| login(&e, n, "alice", &client, at(0)))
        .collect();
    let d = e.login(
        SessionId::from_u128(8),
        "bob",
        client.ctx(),
        companions(),
        at(1),
    );
    assert_eq!(d.verdict, Verdict::Challenge(Reason::SessionStoreFull));
    for sid in &sids {
        assert_eq!(request(&e, *sid, &client, at(2)).verdict, Verdict::Allow);
    }
    e.revoke(sids[0], Reason::LoggedOut, at(3));
    login(&e, 9, "bob", &client, at(4));
    assert_eq!(e.len(), 8);
}
