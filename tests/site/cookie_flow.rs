//! The form-login cookie flow: landing, CSRF, catalog, drift through a trusted hop, every refusal style.

use reqwest::{Response, StatusCode};
use serde_json::{Value, json};
use sessionrange::site::config::ResponseStyle;
use sessionrange::{Reason, Verdict};

use crate::helpers::*;

/// What a refused request looks like in one style.
struct Expected {
    style: ResponseStyle,
    status: StatusCode,
    /// Marker headers and their exact values.
    markers: &'static [(&'static str, &'static str)],
    /// Text the body must contain.
    body: &'static str,
}

fn every_style() -> [Expected; 7] {
    let e = |style, status, markers, body| Expected {
        style,
        status,
        markers,
        body,
    };
    [
        e(
            ResponseStyle::Rfc6750,
            StatusCode::UNAUTHORIZED,
            &[(
                "www-authenticate",
                "Bearer realm=\"sessionrange\", error=\"invalid_token\", error_description=\"ASN_DRIFT\"",
            )],
            r#"{"error":"invalid_token","reason":"ASN_DRIFT"}"#,
        ),
        e(
            ResponseStyle::Json401,
            StatusCode::UNAUTHORIZED,
            &[],
            r#"{"error":"SESSION_INVALIDATED_SECURITY","reason":"ASN_DRIFT"}"#,
        ),
        e(
            ResponseStyle::Block403,
            StatusCode::FORBIDDEN,
            &[],
            "<p>Reason: <code>ASN_DRIFT</code></p>",
        ),
        e(
            ResponseStyle::RedirectLogin,
            StatusCode::FOUND,
            &[("location", "/login?reason=ASN_DRIFT")],
            "",
        ),
        e(
            ResponseStyle::SoftLogin,
            StatusCode::OK,
            &[],
            "id=\"login-form\"",
        ),
        e(
            ResponseStyle::Challenge,
            StatusCode::FORBIDDEN,
            &[
                ("cf-mitigated", "challenge"),
                ("x-sessionrange-challenge", "ASN_DRIFT"),
            ],
            "data-reason=\"ASN_DRIFT\"",
        ),
        e(
            ResponseStyle::RateLimit429,
            StatusCode::TOO_MANY_REQUESTS,
            &[("retry-after", "1")],
            "Too Many Requests (ASN_DRIFT)",
        ),
    ]
}

/// Logs alice in from Comcast and reads a page; returns the browser.
async fn logged_in_on_comcast(target: &sessionrange::TargetServer) -> Browser {
    let browser = Browser::via(target, COMCAST);
    browser.log_in("alice", "wonderland").await;
    let page = browser.read_catalog(1).await;
    assert!(page.contains("<title>Catalog: page 1 of 20</title>"));
    assert_eq!(page.matches("<tr data-id=").count(), 25);
    browser
}

async fn check_refusal(res: Response, want: &Expected) {
    let style = format!("{:?}", want.style);
    assert_eq!(res.status(), want.status, "{style}");
    assert_eq!(header(&res, "cache-control"), "no-store", "{style}");
    for (name, value) in want.markers {
        assert_eq!(header(&res, name), *value, "{style}: {name}");
    }
    assert!(
        clears_cookie(&res, "sr_session"),
        "{style} clears the cookie"
    );
    let soft = want.style == ResponseStyle::SoftLogin;
    if soft {
        assert!(res.headers().get("www-authenticate").is_none());
        assert!(res.headers().get("cf-mitigated").is_none());
        assert!(set_cookies(&res).iter().any(|c| c.starts_with("sr_csrf=")));
    }
    let body = res.text().await.expect("a body");
    assert!(
        body.contains(want.body),
        "{style}: body {body:.300} lacks {}",
        want.body
    );
    if soft {
        assert!(
            body.contains("name=\"csrf\""),
            "soft login is a usable form"
        );
    }
}

#[tokio::test]
async fn every_response_style_refuses_a_session_that_drifts_to_another_asn() {
    for want in every_style() {
        let mut cfg = behind_proxy();
        cfg.responses.security = want.style;
        let (target, _clock) = start(cfg).await;
        let mut browser = logged_in_on_comcast(&target).await;

        browser.move_to(AMAZON);
        let res = browser.fetch("/catalog?page=2").await;
        check_refusal(res, &want).await;

        assert_eq!(
            last_verdict(&target),
            Verdict::Revoke(Reason::AsnDrift),
            "{:?}",
            want.style
        );
        assert_eq!(browser.cookie("sr_session"), None, "the jar dropped it");
        // Back home, with no session cookie: the login page again.
        browser.move_to(COMCAST);
        let res = browser.fetch("/catalog?page=2").await;
        assert_eq!(res.status(), StatusCode::SEE_OTHER);
        assert_eq!(header(&res, "location"), "/login");
    }
}

#[tokio::test]
async fn the_same_styles_apply_when_chosen_by_reason() {
    for want in every_style() {
        let mut cfg = behind_proxy();
        cfg.responses.security = ResponseStyle::Block403;
        cfg.responses.by_reason.insert(Reason::AsnDrift, want.style);
        let (target, _clock) = start(cfg).await;
        let mut browser = logged_in_on_comcast(&target).await;
        browser.move_to(AMAZON);
        check_refusal(browser.fetch("/account").await, &want).await;
    }
}

#[tokio::test]
async fn a_reason_without_an_override_keeps_the_security_style() {
    let mut cfg = behind_proxy();
    cfg.responses.security = ResponseStyle::Block403;
    cfg.responses
        .by_reason
        .insert(Reason::AsnDrift, ResponseStyle::Json401);
    let (target, _clock) = start(cfg).await;
    let browser = logged_in_on_comcast(&target).await;
    let res = browser
        .get("/catalog?page=1")
        .header("user-agent", "python-requests/2.32")
        .header("accept", "application/json")
        .send()
        .await
        .expect("the target answers");
    let body = json_body(res, StatusCode::FORBIDDEN).await;
    assert_eq!(
        body,
        json!({"error": "blocked", "reason": "USER_AGENT_DRIFT"})
    );
}

#[tokio::test]
async fn the_landing_page_sets_companion_cookies_and_login_binds_them() {
    let (target, _clock) = start(behind_proxy()).await;
    let browser = Browser::via(&target, COMCAST);
    let res = browser.fetch("/").await;
    assert_eq!(res.status(), StatusCode::OK);
    let set = set_cookies(&res);
    for name in ["_sr_aid", "_sr_sensor"] {
        assert!(
            set.iter()
                .any(|c| c.starts_with(&format!("{name}=")) && c.contains("Max-Age=31536000")),
            "{name} in {set:?}"
        );
    }
    let aid = browser.cookie("_sr_aid").expect("_sr_aid stored");
    // A second visit keeps the genuine cookies instead of minting new ones.
    let again = browser.fetch("/").await;
    assert!(set_cookies(&again).is_empty(), "nothing new to set");

    browser.log_in("alice", "wonderland").await;
    assert_eq!(browser.cookie("_sr_aid"), Some(aid.clone()));
    let sessions = Admin::new(&target).json("/sessions").await;
    let companions = sessions[0]["birth"]["companions"].to_string();
    assert!(companions.contains("_sr_aid"), "{companions}");
    assert!(companions.contains(&aid), "{companions}");
}

#[tokio::test]
async fn stripping_a_companion_cookie_is_challenged_and_the_session_survives() {
    let (target, _clock) = start(behind_proxy()).await;
    let browser = logged_in_on_comcast(&target).await;
    let sensor = browser.cookie("_sr_sensor").expect("the sensor cookie");

    browser.strip_cookie("_sr_sensor");
    assert_eq!(browser.cookie("_sr_sensor"), None);
    let res = browser.fetch("/catalog?page=2").await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    assert_eq!(header(&res, "cf-mitigated"), "challenge");
    assert_eq!(
        header(&res, "x-sessionrange-challenge"),
        "COMPANION_COOKIE_MISSING"
    );
    assert!(!clears_cookie(&res, "sr_session"), "a challenge keeps it");
    assert!(res.text().await.expect("body").contains("Just a moment..."));
    assert_eq!(
        last_verdict(&target),
        Verdict::Challenge(Reason::CompanionCookieMissing)
    );

    browser.set_cookie("_sr_sensor", "forged-value");
    let res = browser.fetch("/catalog?page=2").await;
    assert_eq!(
        header(&res, "x-sessionrange-challenge"),
        "COMPANION_COOKIE_ALTERED"
    );

    browser.set_cookie("_sr_sensor", &sensor);
    browser.read_catalog(2).await;
    let sessions = Admin::new(&target).json("/sessions").await;
    assert_eq!(sessions[0]["state"], json!({"state": "active"}));
}

#[tokio::test]
async fn the_account_page_greets_the_user_and_logout_ends_the_session() {
    let (target, _clock) = start(behind_proxy()).await;
    let browser = logged_in_on_comcast(&target).await;
    let old = browser.cookie("sr_session").expect("a session");
    let res = browser.fetch("/account").await;
    assert_eq!(res.status(), StatusCode::OK);
    assert!(
        res.text()
            .await
            .expect("body")
            .contains("<span id=\"account\">alice</span>")
    );

    let res = browser.post("/logout").send().await.expect("logout");
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert!(clears_cookie(&res, "sr_session"));
    assert_eq!(browser.cookie("sr_session"), None);

    // Presenting the old cookie again repeats the explicit verdict.
    browser.set_cookie("sr_session", &old);
    let res = browser.fetch("/account").await;
    assert_eq!(res.status(), StatusCode::FOUND);
    assert_eq!(header(&res, "location"), "/login?reason=LOGGED_OUT");
    let accounts: Value = Admin::new(&target).json("/accounts").await;
    assert_eq!(accounts["alice"]["invalidations"], json!([]));
}

#[tokio::test]
async fn moving_within_the_same_asn_is_only_logged() {
    let (target, _clock) = start(behind_proxy()).await;
    let mut browser = logged_in_on_comcast(&target).await;
    browser.move_to(COMCAST_OTHER);
    browser.read_catalog(2).await;
    let d = last_decision(&target);
    assert_eq!(d.verdict, Verdict::Allow);
    let fired: Vec<Reason> = d.fired.iter().map(|f| f.reason).collect();
    assert_eq!(fired, [Reason::IpDrift], "logged, not acted on");
}

#[tokio::test]
async fn the_soft_login_form_served_after_a_drift_logs_back_in() {
    let mut cfg = behind_proxy();
    cfg.responses.security = ResponseStyle::SoftLogin;
    let (target, _clock) = start(cfg).await;
    let mut browser = logged_in_on_comcast(&target).await;
    browser.move_to(AMAZON);
    let res = browser.fetch("/catalog?page=2").await;
    assert_eq!(res.status(), StatusCode::OK);
    let form = res.text().await.expect("the login form");
    let fields = [
        ("csrf", csrf_of(&form)),
        ("username", "alice".to_owned()),
        ("password", "wonderland".to_owned()),
    ];
    let res = browser.post_login(&fields).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER, "born again on Amazon");
    let page = browser.read_catalog(2).await;
    assert!(!page.contains("id=\"login-form\""));
}
