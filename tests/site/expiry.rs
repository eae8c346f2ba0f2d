//! Natural ends against security invalidations, and the ban that repeated invalidations bring.

use reqwest::StatusCode;
use serde_json::json;
use sessionrange::{Reason, Verdict};

use crate::helpers::*;

/// A JSON GET of `path` by `browser`.
async fn fetch_json(browser: &Browser, path: &str) -> reqwest::Response {
    browser
        .get(path)
        .header("accept", "application/json")
        .send()
        .await
        .expect("the target answers")
}

#[tokio::test]
async fn an_idle_timeout_is_an_expiry_and_not_an_invalidation() {
    let (target, clock) = start(behind_proxy()).await;
    let browser = Browser::via(&target, COMCAST);
    browser.log_in("alice", "wonderland").await;
    browser.read_catalog(1).await;
    advance(&clock, 29 * 60);
    browser.read_catalog(2).await;

    advance(&clock, 30 * 60 + 6);
    let res = fetch_json(&browser, "/catalog?page=3").await;
    assert!(clears_cookie(&res, "sr_session"));
    assert_eq!(header(&res, "cache-control"), "no-store");
    let body = json_body(res, StatusCode::UNAUTHORIZED).await;
    assert_eq!(
        body,
        json!({"error": "SESSION_EXPIRED", "reason": "IDLE_TIMEOUT"})
    );
    assert_eq!(last_verdict(&target), Verdict::Expire(Reason::IdleTimeout));
    assert_eq!(browser.cookie("sr_session"), None);

    let admin = Admin::new(&target);
    let accounts = admin.json("/accounts").await;
    assert_eq!(accounts["alice"]["invalidations"], json!([]));
    assert_eq!(accounts["alice"]["bans"], 0);
    let sessions = admin.json("/sessions").await;
    assert_eq!(
        sessions[0]["state"],
        json!({"state": "expired", "reason": "IDLE_TIMEOUT"})
    );
}

#[tokio::test]
async fn an_idle_timeout_in_html_says_session_expired() {
    let (target, clock) = start(behind_proxy()).await;
    let browser = Browser::via(&target, COMCAST);
    browser.log_in("alice", "wonderland").await;
    advance(&clock, 31 * 60);
    let res = browser.fetch("/account").await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert!(clears_cookie(&res, "sr_session"));
    let html = res.text().await.expect("a page");
    assert!(html.contains("SESSION_EXPIRED: <code>IDLE_TIMEOUT</code>"));
}

#[tokio::test]
async fn a_drift_is_a_security_invalidation_counted_on_the_account() {
    let (target, _clock) = start(behind_proxy()).await;
    let mut browser = Browser::via(&target, COMCAST);
    browser.log_in("alice", "wonderland").await;
    browser.read_catalog(1).await;
    browser.move_to(AMAZON);
    let res = fetch_json(&browser, "/catalog?page=2").await;
    assert_eq!(res.status(), StatusCode::FOUND, "redirect-login by default");
    assert_eq!(header(&res, "location"), "/login?reason=ASN_DRIFT");
    assert!(clears_cookie(&res, "sr_session"));

    let invalidations = Admin::new(&target).invalidations("alice").await;
    assert_eq!(invalidations.len(), 1);
    assert_eq!(invalidations[0][1], "ASN_DRIFT");
}

/// Logs alice in from Comcast, reads a page, then drifts to Amazon.
async fn drift_once(target: &sessionrange::TargetServer) -> reqwest::Response {
    let mut browser = Browser::via(target, COMCAST);
    browser.log_in("alice", "wonderland").await;
    browser.read_catalog(1).await;
    browser.move_to(AMAZON);
    browser.fetch("/catalog?page=2").await
}

#[tokio::test]
async fn three_drifts_ban_the_account_until_the_ban_ttl_passes() {
    let (target, clock) = start(behind_proxy()).await;
    let api = Api::via(&target, COMCAST);
    let standing = api.login("alice", "wonderland").await;
    for n in 1..=2 {
        let res = drift_once(&target).await;
        assert_eq!(res.status(), StatusCode::FOUND, "drift {n}");
        assert_eq!(header(&res, "location"), "/login?reason=ASN_DRIFT");
        advance(&clock, 60);
    }
    let res = drift_once(&target).await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN, "the third drift bans");
    assert!(clears_cookie(&res, "sr_session"));
    assert!(res.text().await.expect("a page").contains("ACCOUNT_BANNED"));
    assert_eq!(last_verdict(&target), Verdict::Ban(Reason::AsnDrift));
    // A session alice opened before the ban dies with it.
    let res = api.get_with("/api/v1/items?page=1", &standing.access).await;
    assert_eq!(
        json_body(res, StatusCode::FORBIDDEN).await,
        json!({"error": "ACCOUNT_BANNED"})
    );

    // Banned: neither the form nor the API lets alice in.
    let browser = Browser::via(&target, COMCAST);
    browser.land().await;
    let res = browser.submit_login("alice", "wonderland").await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    assert_eq!(browser.cookie("sr_session"), None);
    assert!(res.text().await.expect("a page").contains("ACCOUNT_BANNED"));
    let api = Api::via(&target, COMCAST);
    let res = api.login_raw("alice", "wonderland").await;
    assert_eq!(
        json_body(res, StatusCode::FORBIDDEN).await,
        json!({"error": "ACCOUNT_BANNED"})
    );
    // Bob is not alice.
    let bob = api.login("bob", "builder").await;
    let res = api.get_with("/api/v1/items?page=1", &bob.access).await;
    assert_eq!(res.status(), StatusCode::OK);
    let accounts = Admin::new(&target).json("/accounts").await;
    assert_eq!(accounts["alice"]["bans"], 1);
    assert_eq!(accounts["bob"]["bans"], 0);

    // An hour later the ban is over and the old invalidations left the window.
    advance(&clock, 3600);
    let again = api.login("alice", "wonderland").await;
    let res = api.get_with("/api/v1/items?page=1", &again.access).await;
    assert_eq!(res.status(), StatusCode::OK);
    let res = drift_once(&target).await;
    assert_eq!(res.status(), StatusCode::FOUND, "a plain revoke again");
}
