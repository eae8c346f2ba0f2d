//! Every login attempt and every request refused before the engine decides is a trace line the grade can parse.

use reqwest::StatusCode;
use serde_json::json;
use sessionrange::TargetServer;
use sessionrange::site::config::{AccountSpec, AuthMode, TargetConfig};
use sessionrange::trace::records::{
    AttemptOutcome, LOGIN_ATTEMPT, LoginAttempt, LoginRefusal, LoginVia, REFUSED, RefusalReason,
    RefusedRequest,
};

use crate::helpers::*;

/// The trace's lines of type `kind`, parsed as `T`.
fn lines_of<T: serde::de::DeserializeOwned>(target: &TargetServer, kind: &str) -> Vec<T> {
    let values = trace_lines(target, kind).into_iter();
    values
        .map(|v| serde_json::from_value(v).expect("the documented shape"))
        .collect()
}

fn attempts(target: &TargetServer) -> Vec<LoginAttempt> {
    lines_of(target, LOGIN_ATTEMPT)
}

type Seen = (LoginVia, Option<String>, Option<LoginRefusal>);

/// What each login attempt of the trace was: via, account, refusal.
fn seen(target: &TargetServer) -> Vec<Seen> {
    let all = attempts(target);
    all.into_iter()
        .map(|a| (a.via, a.account, a.reason))
        .collect()
}

fn e(via: LoginVia, account: Option<&str>, reason: Option<LoginRefusal>) -> Seen {
    (via, account.map(str::to_owned), reason)
}

#[tokio::test]
async fn every_form_login_is_traced_with_its_outcome_and_session() {
    let (target, _clock) = start(behind_proxy()).await;
    let browser = Browser::via(&target, COMCAST);
    let res = browser.submit_login("alice", "nope").await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let res = browser.submit_login("mallory", "x").await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let creds = [
        ("csrf", "forged"),
        ("username", "bob"),
        ("password", "builder"),
    ];
    let res = browser.post_login(&creds).await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    browser.log_in("alice", "wonderland").await;

    let all = attempts(&target);
    let form = LoginVia::Form;
    assert_eq!(
        seen(&target),
        [
            e(form, Some("alice"), Some(LoginRefusal::BadCredentials)),
            e(form, None, Some(LoginRefusal::BadCredentials)),
            e(form, Some("bob"), Some(LoginRefusal::CsrfInvalid)),
            e(form, Some("alice"), None),
        ]
    );
    let ok = all.last().expect("the login");
    assert_eq!(ok.outcome, AttemptOutcome::Ok);
    assert_eq!(ok.ip.to_string(), COMCAST);
    let sid = browser.cookie("sr_session").expect("a session");
    assert_eq!(ok.session.map(|s| s.to_string()), Some(sid));
    assert!(
        all[..3]
            .iter()
            .all(|a| a.outcome == AttemptOutcome::Refused)
    );
    assert!(all[..3].iter().all(|a| a.session.is_none()));
}

#[tokio::test]
async fn every_api_login_is_traced_malformed_and_banned_included() {
    let mut cfg = behind_proxy();
    cfg.rules.escalation.invalidations = 1;
    let (target, _clock) = start(cfg).await;
    let mut api = Api::via(&target, COMCAST);
    let res = api
        .post("/api/login")
        .body("{not json")
        .send()
        .await
        .expect("answer");
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let res = api.login_raw("alice", "nope").await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let tokens = api.login("alice", "wonderland").await;
    // A move to another ASN revokes, and the first invalidation bans.
    api.move_to(AMAZON);
    let res = api.get_with("/api/v1/items?page=1", &tokens.access).await;
    assert_ne!(res.status(), StatusCode::OK);
    let res = api.login_raw("alice", "wonderland").await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);

    let api_ = LoginVia::Api;
    assert_eq!(
        seen(&target),
        [
            e(api_, None, Some(LoginRefusal::Malformed)),
            e(api_, Some("alice"), Some(LoginRefusal::BadCredentials)),
            e(api_, Some("alice"), None),
            e(api_, Some("alice"), Some(LoginRefusal::AccountBanned)),
        ]
    );
    assert_eq!(attempts(&target)[3].ip.to_string(), AMAZON);
}

#[tokio::test]
async fn totp_and_proof_of_work_refusals_have_codes_of_their_own() {
    const SECRET: &str = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP";
    let mut cfg = TargetConfig::default();
    cfg.login.totp = true;
    cfg.accounts[0] = AccountSpec {
        username: "alice".into(),
        password: "wonderland".into(),
        totp_secret: Some(SECRET.into()),
    };
    let (target, _clock) = start(cfg.clone()).await;
    let api = Api::new(&target);
    let res = api.login_raw("alice", "wonderland").await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let wrong = json!({"username": "alice", "password": "wonderland", "totp": "000000x"});
    let res = api.post_json("/api/login", &wrong).await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let reasons: Vec<_> = attempts(&target).iter().map(|a| a.reason).collect();
    let (missing, invalid) = (LoginRefusal::TotpMissing, LoginRefusal::TotpInvalid);
    assert_eq!(reasons, [Some(missing), Some(invalid)]);

    cfg.login.totp = false;
    cfg.login.pow_bits = 8;
    let (target, _clock) = start(cfg).await;
    let res = Api::new(&target).login_raw("bob", "builder").await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let reasons: Vec<_> = attempts(&target).iter().map(|a| a.reason).collect();
    assert_eq!(reasons, [Some(LoginRefusal::PowInvalid)]);
}

#[tokio::test]
async fn a_form_login_under_jwt_only_is_refused_for_its_auth_mode_not_given_a_dead_cookie() {
    let cfg = TargetConfig {
        auth: AuthMode::Jwt,
        ..TargetConfig::default()
    };
    let (target, _clock) = start(cfg).await;
    let browser = Browser::new(&target);
    browser.land().await;
    let res = browser.submit_login("alice", "wonderland").await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    assert!(
        res.text()
            .await
            .expect("a block page")
            .contains("AUTH_MODE")
    );
    assert_eq!(browser.cookie("sr_session"), None, "no cookie handed out");
    let form = LoginVia::Form;
    assert_eq!(
        seen(&target),
        [e(form, Some("alice"), Some(LoginRefusal::AuthMode))]
    );
    // The API login is the way in.
    Api::new(&target).login("alice", "wonderland").await;
}

#[tokio::test]
async fn an_api_login_under_cookie_only_is_refused_for_its_auth_mode() {
    let cfg = TargetConfig {
        auth: AuthMode::Cookie,
        ..TargetConfig::default()
    };
    let (target, _clock) = start(cfg).await;
    let res = Api::new(&target).login_raw("alice", "wonderland").await;
    let body = json_body(res, StatusCode::FORBIDDEN).await;
    assert_eq!(body, json!({"error": "blocked", "reason": "AUTH_MODE"}));
    let api = LoginVia::Api;
    assert_eq!(
        seen(&target),
        [e(api, Some("alice"), Some(LoginRefusal::AuthMode))]
    );
    Browser::new(&target).log_in("alice", "wonderland").await;
}

#[tokio::test]
async fn requests_refused_before_the_engine_are_traced_with_route_and_reason() {
    let (target, _clock) = start(behind_proxy()).await;
    let browser = Browser::via(&target, COMCAST);
    let res = browser.fetch("/catalog?page=2").await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER, "to the login page");
    let api = Api::via(&target, AMAZON);
    let res = api.get("/api/v1/items/3").send().await.expect("answer");
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let res = api.get_with("/api/v1/items?page=1", "not.a.jwt").await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    // A public route refuses nothing.
    assert_eq!(browser.fetch("/").await.status(), StatusCode::OK);

    let lines: Vec<RefusedRequest> = lines_of(&target, REFUSED);
    let refused: Vec<_> = lines
        .iter()
        .map(|r| (r.route.as_ref(), r.ip.to_string(), r.reason))
        .collect();
    assert_eq!(
        refused,
        [
            ("/catalog", COMCAST.to_owned(), RefusalReason::LoginRequired),
            (
                "/api/v1/items/{id}",
                AMAZON.to_owned(),
                RefusalReason::LoginRequired
            ),
            (
                "/api/v1/items",
                AMAZON.to_owned(),
                RefusalReason::TokenInvalid
            ),
        ]
    );
    assert!(lines.iter().all(|l| l.at == T0));
}

#[tokio::test]
async fn with_companions_at_login_both_logins_refuse_a_client_that_skipped_the_landing_page() {
    let mut cfg = TargetConfig::default();
    cfg.companions.at_login = true;
    let (target, _clock) = start(cfg).await;
    // The form: no landing page, then an altered cookie, then as a browser does.
    let browser = Browser::new(&target);
    let res = browser.submit_login("alice", "wonderland").await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    assert!(
        res.text()
            .await
            .expect("a page")
            .contains("COMPANION_COOKIE_MISSING")
    );
    browser.land().await;
    let genuine = browser
        .cookie("_sr_sensor")
        .expect("set by the landing page");
    browser.set_cookie("_sr_sensor", &format!("{genuine}x"));
    let res = browser.submit_login("alice", "wonderland").await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    browser.set_cookie("_sr_sensor", &genuine);
    let res = browser.submit_login("alice", "wonderland").await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    // The API: the same rule, in JSON.
    let res = Api::new(&target).login_raw("bob", "builder").await;
    let body = json_body(res, StatusCode::FORBIDDEN).await;
    assert_eq!(
        body,
        json!({"error": "blocked", "reason": "COMPANION_COOKIE_MISSING"})
    );
    let jar = browser.cookie("_sr_aid").expect("an id");
    let api = Api::new(&target);
    let cookies = format!("_sr_aid={jar}; _sr_sensor={genuine}");
    let body = json!({"username": "bob", "password": "builder"});
    let res = api
        .post("/api/login")
        .header("cookie", cookies)
        .json(&body)
        .send()
        .await;
    assert_eq!(res.expect("answer").status(), StatusCode::OK);

    let form = LoginVia::Form;
    let (missing, altered) = (
        Some(LoginRefusal::CompanionCookieMissing),
        Some(LoginRefusal::CompanionCookieAltered),
    );
    assert_eq!(
        seen(&target),
        [
            e(form, Some("alice"), missing),
            e(form, Some("alice"), altered),
            e(form, Some("alice"), None),
            e(LoginVia::Api, Some("bob"), missing),
            e(LoginVia::Api, Some("bob"), None),
        ]
    );
}

#[tokio::test]
async fn companions_at_login_is_on_where_the_pack_tests_companion_cookies() {
    let pack = sessionrange::scenario::Scenario::bundled().expect("the pack");
    let on: Vec<&str> = pack
        .iter()
        .filter(|s| s.target.companions.at_login)
        .map(|s| s.name.as_str())
        .collect();
    assert_eq!(on, ["companion-cookies", "mixed"]);
}
