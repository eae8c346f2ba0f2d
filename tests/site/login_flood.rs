//! Login floods: the login velocity rules answer 429 and the session store refuses rather than evicts.

use reqwest::StatusCode;
use serde_json::Value;
use sessionrange::TargetServer;

use crate::helpers::*;

/// The reason of each `login_attempt` line, oldest first (`null` for a success).
fn attempt_reasons(target: &TargetServer) -> Vec<Value> {
    let lines = trace_lines(target, "login_attempt").into_iter();
    lines.map(|l| l["reason"].clone()).collect()
}

/// The last `login_attempt` line.
fn last_attempt(target: &TargetServer) -> Value {
    let lines = trace_lines(target, "login_attempt");
    lines.last().expect("a login attempt").clone()
}

#[tokio::test]
async fn a_login_flood_from_one_address_is_refused_while_another_address_logs_in() {
    let (target, _clock) = start(behind_proxy()).await;
    let flood = Api::via(&target, COMCAST);
    // Wrong names: the address rule counts every attempt that reaches
    // the credential check (burst 30 at one instant).
    for _ in 0..30 {
        let res = flood.login_raw("mallory", "guess").await;
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    }
    let res = flood.login_raw("alice", "wonderland").await;
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(header(&res, "retry-after"), "1");
    let body: Value = res.json().await.expect("a JSON refusal");
    assert_eq!(body["reason"], "LOGIN_VELOCITY_EXCEEDED");
    let line = last_attempt(&target);
    assert_eq!(line["reason"], "LOGIN_VELOCITY_EXCEEDED");
    assert_eq!(line["account"], "alice");
    assert_eq!(line["ip"], COMCAST);

    // The form login from the flooding address is refused the same way.
    let browser = Browser::via(&target, COMCAST);
    let res = browser.submit_login("bob", "builder").await;
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(header(&res, "retry-after"), "1");
    assert!(browser.cookie("sr_session").is_none());

    // Another address is untouched, and so is the account.
    let other = Api::via(&target, AMAZON);
    other.login("alice", "wonderland").await;
    Browser::via(&target, TELEKOM)
        .log_in("bob", "builder")
        .await;
    let refused = attempt_reasons(&target)
        .iter()
        .filter(|r| *r == "LOGIN_VELOCITY_EXCEEDED")
        .count();
    assert_eq!(refused, 2);
}

#[tokio::test]
async fn a_login_flood_on_one_account_is_refused_while_other_accounts_log_in() {
    let (target, clock) = start(behind_proxy()).await;
    // Twenty attempts on alice from five addresses, none past its own limit.
    for i in 0..20 {
        let ip = format!("127.0.1.{}", 20 + i % 5);
        let res = Api::via(&target, &ip).login_raw("alice", "guess").await;
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "attempt {i}");
    }
    let api = Api::via(&target, TELEKOM);
    let res = api.login_raw("alice", "wonderland").await;
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(!header(&res, "retry-after").is_empty());
    assert_eq!(last_attempt(&target)["reason"], "LOGIN_VELOCITY_EXCEEDED");
    let res = Browser::via(&target, TELEKOM)
        .submit_login("alice", "wonderland")
        .await;
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);

    // bob logs in from the same address; alice again once the rate allows.
    api.login("bob", "builder").await;
    advance(&clock, 1);
    api.login("alice", "wonderland").await;
}

#[tokio::test]
async fn a_full_store_refuses_new_sessions_instead_of_evicting_live_ones() {
    let mut cfg = behind_proxy();
    cfg.rules.store.max_sessions = 8;
    let (target, _clock) = start(cfg).await;
    let api = Api::via(&target, COMCAST);
    let mut live = Vec::new();
    for _ in 0..8 {
        live.push(api.login("alice", "wonderland").await);
    }
    let res = api.login_raw("bob", "builder").await;
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(!header(&res, "retry-after").is_empty());
    let body: Value = res.json().await.expect("a JSON refusal");
    assert_eq!(body["reason"], "SESSION_STORE_FULL");
    let line = last_attempt(&target);
    assert_eq!(line["reason"], "SESSION_STORE_FULL");
    assert_eq!(line["outcome"], "refused");
    let res = Browser::via(&target, COMCAST)
        .submit_login("bob", "builder")
        .await;
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);

    for (i, tokens) in live.iter().enumerate() {
        let res = api.get_with("/api/v1/items?page=1", &tokens.access).await;
        assert_eq!(res.status(), StatusCode::OK, "session {i} still works");
    }
    // A dead session makes room: logging one out lets the next login in.
    let res = api
        .post("/logout")
        .bearer_auth(&live[0].access)
        .send()
        .await
        .expect("answer");
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    api.login("bob", "builder").await;
}
