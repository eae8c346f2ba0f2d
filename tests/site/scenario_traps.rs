//! The bundled scenarios' traps fire: timings are checked on the target itself, on a manual clock.

use std::time::Duration;

use reqwest::StatusCode;
use sessionrange::pool::FaultKind;
use sessionrange::scenario::Scenario;
use sessionrange::site::TargetConfig;
use sessionrange::site::config::DirectAccess;
use sessionrange::{Reason, Verdict};

use crate::helpers::*;

/// A bundled scenario by name.
fn bundled(name: &str) -> Scenario {
    let all = Scenario::bundled().expect("the pack loads");
    all.into_iter()
        .find(|s| s.name == name)
        .expect("a bundled scenario")
}

/// The scenario's target, reachable directly so the test can drive it.
fn direct(s: &Scenario) -> TargetConfig {
    TargetConfig {
        direct: Some(DirectAccess::Allow),
        ..s.target.clone()
    }
}

#[tokio::test]
async fn idle_timeout_a_stall_of_the_exit_outlasts_the_idle_ttl_and_its_grace() {
    let s = bundled("idle-timeout");
    let stall = s.pool.exits[0]
        .faults
        .iter()
        .find(|f| f.kind == FaultKind::Latency)
        .and_then(|f| f.latency)
        .expect("a stalling exit");
    let (target, clock) = start(direct(&s)).await;
    let browser = Browser::new(&target);
    browser.log_in("alice", "wonderland").await;
    browser.read_catalog(1).await;
    clock.advance(stall);
    let res = browser.fetch("/catalog?page=2").await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "stalled {stall:?}");
    assert_eq!(last_verdict(&target), Verdict::Expire(Reason::IdleTimeout));
}

#[tokio::test]
async fn refresh_rotation_access_tokens_expire_well_inside_the_run() {
    let s = bundled("refresh-rotation");
    let ttl = s.target.tokens.access_ttl;
    let (target, clock) = start(direct(&s)).await;
    let api = Api::new(&target);
    let tokens = api.login("alice", "wonderland").await;
    clock.advance(ttl + Duration::from_secs(1));
    let res = api.get_with("/api/v1/items?page=1", &tokens.access).await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "{ttl:?} token");
    assert!(header(&res, "www-authenticate").contains("invalid_token"));
    // So the client must refresh, several times in a run.
    assert!((ttl + s.target.tokens.skew) * 3 <= s.run.timeout);
}

#[tokio::test]
async fn ttl_expiry_sessions_end_one_second_after_login() {
    let s = bundled("ttl-expiry");
    let (target, clock) = start(direct(&s)).await;
    let browser = Browser::new(&target);
    browser.log_in("alice", "wonderland").await;
    clock.advance(s.target.rules.lifetime.absolute_ttl + Duration::from_millis(1));
    let res = browser.fetch("/catalog?page=1").await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        last_verdict(&target),
        Verdict::Expire(Reason::SessionExpired)
    );
}
