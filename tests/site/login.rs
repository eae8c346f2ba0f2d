//! The login steps: CSRF, credentials, proof of work and TOTP, on the form and the API.

use reqwest::StatusCode;
use serde_json::{Value, json};
use sessionrange::auth::{pow, totp};
use sessionrange::site::TargetConfig;
use sessionrange::site::config::AccountSpec;

use crate::helpers::*;

#[tokio::test]
async fn a_form_login_without_a_valid_csrf_token_is_forbidden() {
    let (target, _clock) = start(TargetConfig::default()).await;
    let browser = Browser::new(&target);
    let creds = [("username", "alice"), ("password", "wonderland")];
    // No login page visited: neither cookie nor field.
    let res = browser.post_login(&creds).await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    assert!(res.text().await.expect("body").contains("CSRF"));

    let csrf = csrf_of(&browser.login_page().await);
    // The cookie but no field.
    let res = browser.post_login(&creds).await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    // A field that differs from the cookie.
    let mut other = csrf.clone();
    other.replace_range(0..1, if other.starts_with('A') { "B" } else { "A" });
    let with = |token: &str| {
        [
            ("csrf", token.to_owned()),
            ("username", "alice".to_owned()),
            ("password", "wonderland".to_owned()),
        ]
    };
    let res = browser
        .post_form("/login", &with(&other))
        .send()
        .await
        .expect("answer");
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    // The field but no cookie.
    browser.strip_cookie("sr_csrf");
    let res = browser
        .post_form("/login", &with(&csrf))
        .send()
        .await
        .expect("answer");
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    assert_eq!(browser.cookie("sr_session"), None);
    // The same credentials with a matching pair get in.
    let csrf = csrf_of(&browser.login_page().await);
    let res = browser
        .post_form("/login", &with(&csrf))
        .send()
        .await
        .expect("answer");
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn wrong_passwords_and_unknown_users_are_401() {
    let (target, _clock) = start(TargetConfig::default()).await;
    let browser = Browser::new(&target);
    for (user, password) in [("alice", "nope"), ("mallory", "wonderland"), ("", "")] {
        let res = browser.submit_login(user, password).await;
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "{user}");
        let html = res.text().await.expect("the form again");
        assert!(html.contains("id=\"login-form\""));
        assert!(html.contains("Wrong username or password."));
        let res = Api::new(&target).login_raw(user, password).await;
        assert_eq!(
            json_body(res, StatusCode::UNAUTHORIZED).await,
            json!({"error": "invalid_credentials"})
        );
    }
    assert_eq!(browser.cookie("sr_session"), None);
}

/// Without a solution a wrong password and a right one look the same, and
/// a solution is spent on a wrong password: each guess costs one.
#[tokio::test]
async fn proof_of_work_comes_before_the_password_and_is_spent_on_a_wrong_one() {
    let (target, _clock) = start(with_pow(8)).await;
    let api = Api::new(&target);
    for password in ["nope", "wonderland"] {
        let res = api.login_raw("alice", password).await;
        let body = json_body(res, StatusCode::UNAUTHORIZED).await;
        assert_eq!(body, json!({"error": "pow_required"}), "{password}");
    }
    let issued = login_challenge(&api).await;
    let challenge = issued["challenge"].as_str().expect("a challenge");
    let nonce = pow::solve(challenge, 8);
    let login = |password: &str| {
        json!({"username": "alice", "password": password,
               "pow_challenge": challenge, "pow_nonce": nonce})
    };
    let res = api.post_json("/api/login", &login("nope")).await;
    let body = json_body(res, StatusCode::UNAUTHORIZED).await;
    assert_eq!(body["error"], "invalid_credentials");
    let res = api.post_json("/api/login", &login("wonderland")).await;
    let body = json_body(res, StatusCode::UNAUTHORIZED).await;
    assert_eq!(
        body,
        json!({"error": "pow_required"}),
        "spent on the wrong guess"
    );
}

/// The default target with a proof of work of `bits` at login.
fn with_pow(bits: u8) -> TargetConfig {
    let mut cfg = TargetConfig::default();
    cfg.login.pow_bits = bits;
    cfg
}

#[tokio::test]
async fn proof_of_work_is_required_and_a_solution_logs_in() {
    let (target, _clock) = start(with_pow(8)).await;

    let browser = Browser::new(&target);
    let res = browser.submit_login("alice", "wonderland").await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "no solution");
    assert!(res.text().await.expect("body").contains("proof of work"));
    let page = browser.login_page().await;
    let challenge = hidden_input(&page, "pow_challenge").expect("a challenge");
    assert!(page.contains("data-bits=\"8\""));
    let nonce = pow::solve(&challenge, 8);
    let fields = [
        ("csrf", csrf_of(&page)),
        ("username", "alice".to_owned()),
        ("password", "wonderland".to_owned()),
        ("pow_challenge", challenge.clone()),
        ("pow_nonce", nonce.clone()),
    ];
    let res = browser.post_login(&fields).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER, "solved");

    let api = Api::new(&target);
    let res = api.login_raw("alice", "wonderland").await;
    assert_eq!(
        json_body(res, StatusCode::UNAUTHORIZED).await,
        json!({"error": "pow_required"})
    );
    let issued = login_challenge(&api).await;
    assert_eq!(issued["bits"], 8);
    let challenge = issued["challenge"].as_str().expect("a challenge");
    let login = |nonce: &str| {
        json!({"username": "alice", "password": "wonderland",
               "pow_challenge": challenge, "pow_nonce": nonce})
    };
    let solved = login(&pow::solve(challenge, 8));
    let res = api.post_json("/api/login", &solved).await;
    Tokens::from_response(res).await;
    let res = api.post_json("/api/login", &solved).await;
    assert_eq!(
        res.status(),
        StatusCode::UNAUTHORIZED,
        "a challenge is single-use"
    );
    // A challenge the target never issued is refused even when solved.
    let made_up = "00112233445566778899aabbccddeeff";
    let res = api
        .post_json(
            "/api/login",
            &json!({"username": "alice", "password": "wonderland",
                    "pow_challenge": made_up, "pow_nonce": pow::solve(made_up, 8)}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
}

const SECRET: &str = "JBSWY3DPEHPK3PXP";

#[tokio::test]
async fn totp_is_required_for_accounts_with_a_secret() {
    let mut cfg = TargetConfig::default();
    cfg.login.totp = true;
    cfg.accounts[0] = AccountSpec {
        username: "alice".to_owned(),
        password: "wonderland".to_owned(),
        totp_secret: Some(SECRET.to_owned()),
    };
    let (target, clock) = start(cfg).await;
    let now = clock.now();
    let code = totp::code_at(SECRET, now).expect("a valid secret");
    let valid: Vec<String> = [-30i64, 0, 30]
        .iter()
        .filter_map(|d| {
            let t = sessionrange::Timestamp::from_secs(now.as_secs().saturating_add_signed(*d));
            totp::code_at(SECRET, t)
        })
        .collect();
    let wrong = (0..1_000_000u32)
        .map(|n| format!("{n:06}"))
        .find(|c| !valid.contains(c))
        .expect("a wrong code");

    let api = Api::new(&target);
    let attempt = |code: Option<&str>| {
        let mut body = json!({"username": "alice", "password": "wonderland"});
        if let Some(c) = code {
            body["totp"] = json!(c);
        }
        body
    };
    for bad in [None, Some(wrong.as_str()), Some("12345"), Some("abcdef")] {
        let res = api.post_json("/api/login", &attempt(bad)).await;
        assert_eq!(
            json_body(res, StatusCode::UNAUTHORIZED).await,
            json!({"error": "totp_required"}),
            "{bad:?}"
        );
    }
    Tokens::from_response(api.post_json("/api/login", &attempt(Some(&code))).await).await;
    // Bob has no secret and needs no code.
    api.login("bob", "builder").await;

    let browser = Browser::new(&target);
    let page = browser.login_page().await;
    assert!(page.contains("name=\"totp\""));
    let form = |code: &str| {
        [
            ("csrf", csrf_of(&page)),
            ("username", "alice".to_owned()),
            ("password", "wonderland".to_owned()),
            ("totp", code.to_owned()),
        ]
    };
    let res = browser
        .post_form("/login", &form(&wrong))
        .send()
        .await
        .expect("answer");
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert!(res.text().await.expect("body").contains("one-time code"));
    let page = browser.login_page().await;
    let fields = [
        ("csrf", csrf_of(&page)),
        ("username", "alice".to_owned()),
        ("password", "wonderland".to_owned()),
        ("totp", code),
    ];
    let res = browser.post_login(&fields).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn a_login_flow_starts_with_the_page_that_produced_the_session_not_an_abandoned_one() {
    let (target, clock) = start(TargetConfig::default()).await;
    let browser = Browser::new(&target);
    browser.land().await;
    // A login page fetched and left: it must not stretch the next flow.
    browser.login_page().await;
    advance(&clock, 4);
    let html = browser.login_page().await;
    advance(&clock, 1);
    let fields = [
        ("csrf", &*csrf_of(&html)),
        ("username", "alice"),
        ("password", "wonderland"),
    ];
    let res = browser.post_login(&fields).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let flows = trace_lines(&target, "login_flow");
    assert_eq!(flows.len(), 1);
    let took =
        flows[0]["at"].as_u64().expect("at") - flows[0]["started"].as_u64().expect("started");
    assert_eq!(
        took, 1_000,
        "from the page whose token the login presented: {flows:?}"
    );
    assert_eq!(
        target.state().abandoned_login_flows(),
        1,
        "the page left behind"
    );
    // An API login that presents no token starts its flow when it arrives.
    let api = Api::new(&target);
    api.login("bob", "builder").await;
    let flows = trace_lines(&target, "login_flow");
    assert_eq!(flows[1]["at"], flows[1]["started"], "{flows:?}");
}

/// A login challenge issued to `api`, as JSON.
async fn login_challenge(api: &Api) -> Value {
    let issued = api
        .get("/api/login/challenge")
        .send()
        .await
        .expect("answer");
    json_body(issued, StatusCode::OK).await
}
