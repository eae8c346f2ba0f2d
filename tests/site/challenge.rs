//! The JavaScript challenge over HTTP: solved by a client of its own and as the page's script would, the clearance's bindings and TTL, wrong and replayed answers.

use reqwest::StatusCode;
use sessionrange::auth::clearance::Solver;
use sessionrange::auth::pow;
use sessionrange::site::config::ResponseStyle;
use sessionrange::site::config::TargetConfig;
use sessionrange::{Action, Reason, Verdict};

use crate::helpers::*;

const BITS: u8 = 8;

fn config() -> TargetConfig {
    let mut cfg = behind_proxy();
    cfg.clearance.bits = BITS;
    cfg.clearance.ttl = std::time::Duration::from_secs(60);
    cfg.clearance.at_login = true;
    cfg.responses.challenge = ResponseStyle::JsChallenge;
    cfg.rules.ip_drift.action = Action::Challenge;
    cfg.rules.clearance.drift = Action::Revoke;
    cfg.rules.escalation.action = Action::Off;
    cfg
}

/// The value of the hidden field `name` of a challenge page.
fn field(page: &str, name: &str) -> String {
    let at = page
        .find(&format!("name=\"{name}\" value=\""))
        .expect("the field");
    let rest = &page[at + name.len() + 15..];
    rest[..rest.find('"').expect("its end")].to_owned()
}

/// The least nonce that solves `challenge`, as the page's script finds it.
fn solve(challenge: &str) -> String {
    (0u64..)
        .map(|n| n.to_string())
        .find(|n| pow::verify(challenge, n, BITS))
        .expect("a nonce")
}

/// Asks for the login form, gets the challenge, and answers it as
/// `solver` (`page`, with the browser's signals, or a client of its own).
async fn pass_challenge(browser: &Browser, as_page: bool) -> reqwest::Response {
    let res = browser.fetch("/login").await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    assert_eq!(res.headers()["cf-mitigated"], "challenge");
    let page = res.text().await.expect("the challenge page");
    assert!(
        page.contains("id=\"sr-challenge\"") && page.contains(&format!("data-bits=\"{BITS}\""))
    );
    let challenge = field(&page, "challenge");
    let signals = format!(
        r#"{{"ua":"{USER_AGENT}","languages":"en","webdriver":false,"timezone":"UTC","screen":"1x1","plugins":1}}"#
    );
    let (solver, signals) = if as_page {
        ("page", signals.as_str())
    } else {
        ("", "")
    };
    let answer = [
        ("challenge", challenge.as_str()),
        ("nonce", &solve(&challenge)),
        ("solver", solver),
        ("signals", signals),
        ("back", "/login"),
    ];
    browser
        .post_form("/_sr/challenge", &answer)
        .send()
        .await
        .expect("an answer")
}

fn solvers(target: &sessionrange::TargetServer) -> Vec<Option<Solver>> {
    let lines = trace_lines(target, "challenge");
    lines
        .iter()
        .map(|l| serde_json::from_value(l["solved_by"].clone()).expect("a solver"))
        .collect()
}

#[tokio::test]
async fn a_solved_challenge_earns_a_clearance_that_lets_the_login_through() {
    let (target, _clock) = start(config()).await;
    let browser = Browser::via(&target, COMCAST);
    let res = pass_challenge(&browser, false).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(res.headers()["location"], "/login");
    assert!(browser.cookie("sr_clearance").is_some());
    browser.log_in("alice", "wonderland").await;
    browser.read_catalog(1).await;
    // Solved as the page's script does: counted as the page's.
    let other = Browser::via(&target, COMCAST_OTHER);
    assert_eq!(
        pass_challenge(&other, true).await.status(),
        StatusCode::SEE_OTHER
    );
    assert_eq!(solvers(&target), [Some(Solver::Client), Some(Solver::Page)]);
}

#[tokio::test]
async fn wrong_and_replayed_answers_earn_nothing() {
    let (target, _clock) = start(config()).await;
    let browser = Browser::via(&target, COMCAST);
    let page = browser.fetch("/login").await.text().await.expect("a page");
    let challenge = field(&page, "challenge");
    let wrong = (0u64..)
        .map(|n| n.to_string())
        .find(|n| !pow::verify(&challenge, n, BITS))
        .expect("a miss");
    for nonce in [wrong, solve(&challenge), solve(&challenge)] {
        let answer = [("challenge", challenge.as_str()), ("nonce", &nonce)];
        let res = browser
            .post_form("/_sr/challenge", &answer)
            .send()
            .await
            .expect("an answer");
        assert_eq!(
            res.status(),
            StatusCode::FORBIDDEN,
            "a fresh challenge instead"
        );
    }
    // The first wrong answer spent the challenge: a right one after it is stale.
    assert_eq!(solvers(&target), [None, None, None]);
    assert!(browser.cookie("sr_clearance").is_none());
    let res = browser
        .post_login(&[("username", "alice"), ("password", "wonderland")])
        .await;
    assert_eq!(
        res.status(),
        StatusCode::FORBIDDEN,
        "no clearance, no login"
    );
    assert_eq!(res.headers()["cf-mitigated"], "challenge");
    let res = Api::new(&target).login_raw("bob", "builder").await;
    let body = json_body(res, StatusCode::FORBIDDEN).await;
    assert_eq!(body["reason"], "CLEARANCE_REQUIRED");
    let refused = trace_lines(&target, "login_attempt");
    assert_eq!(
        refused.last().expect("an attempt")["reason"],
        "CLEARANCE_REQUIRED"
    );
}

#[tokio::test]
async fn a_clearance_moved_to_another_exit_is_a_drift_and_one_past_its_ttl_is_none() {
    let (target, clock) = start(config()).await;
    let mut browser = Browser::via(&target, COMCAST);
    pass_challenge(&browser, true).await;
    browser.log_in("alice", "wonderland").await;
    browser.read_catalog(1).await;
    // Same session, same clearance, another address: the drift revokes.
    browser.move_to(COMCAST_OTHER);
    assert_ne!(
        browser.fetch("/catalog?page=2").await.status(),
        StatusCode::OK
    );
    assert_eq!(
        last_verdict(&target),
        Verdict::Revoke(Reason::ClearanceDrift)
    );
    // Back home, the clearance answers the login; past its TTL it does not.
    browser.move_to(COMCAST);
    browser.log_in("alice", "wonderland").await;
    advance(&clock, 61);
    let res = browser.fetch("/login").await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN, "the clearance expired");
}

#[tokio::test]
async fn a_clearance_answers_a_drift_challenge_on_the_address_that_earned_it() {
    let mut cfg = config();
    cfg.rules.clearance.drift = Action::Challenge;
    let (target, _clock) = start(cfg).await;
    let mut browser = Browser::via(&target, COMCAST);
    pass_challenge(&browser, true).await;
    browser.log_in("alice", "wonderland").await;
    browser.move_to(COMCAST_OTHER);
    let res = browser.fetch("/catalog?page=1").await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    assert_eq!(last_verdict(&target), Verdict::Challenge(Reason::IpDrift));
    // Solve again from here: the session carries on, the challenge answered.
    let page = res.text().await.expect("the challenge page");
    let challenge = field(&page, "challenge");
    let answer = [
        ("challenge", challenge.as_str()),
        ("nonce", &solve(&challenge)),
        ("back", "/catalog?page=1"),
    ];
    let res = browser
        .post_form("/_sr/challenge", &answer)
        .send()
        .await
        .expect("an answer");
    assert_eq!(res.headers()["location"], "/catalog?page=1");
    browser.read_catalog(1).await;
    let d = last_decision(&target);
    assert_eq!(d.verdict, Verdict::Allow);
    assert!(
        d.fired.iter().any(|f| f.reason == Reason::ClearancePassed),
        "{:?}",
        d.fired
    );
}

#[tokio::test]
async fn a_login_proof_of_work_and_a_page_challenge_do_not_answer_each_other() {
    let mut cfg = config();
    cfg.login.pow_bits = BITS;
    let (target, _clock) = start(cfg).await;
    // A login's challenge, posted to the page's verifier.
    let browser = Browser::via(&target, COMCAST);
    let issued = browser.fetch("/api/login/challenge").await;
    let issued: serde_json::Value = issued.json().await.expect("a challenge");
    let login_ch = issued["challenge"]
        .as_str()
        .expect("a challenge")
        .to_owned();
    let answer = [
        ("challenge", login_ch.as_str()),
        ("nonce", &solve(&login_ch)),
    ];
    let res = browser
        .post_form("/_sr/challenge", &answer)
        .send()
        .await
        .expect("an answer");
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    // A page's challenge (served to another client), given as a login's
    // proof of work by a client that holds a clearance.
    assert_eq!(
        pass_challenge(&browser, false).await.status(),
        StatusCode::SEE_OTHER
    );
    let other = Browser::via(&target, COMCAST_OTHER);
    let page = other
        .fetch("/login")
        .await
        .text()
        .await
        .expect("a challenge page");
    let page_ch = field(&page, "challenge");
    let csrf = csrf_of(&browser.login_page().await);
    let fields = [
        ("csrf", csrf.as_str()),
        ("username", "alice"),
        ("password", "wonderland"),
        ("pow_challenge", page_ch.as_str()),
        ("pow_nonce", &solve(&page_ch)),
    ];
    let res = browser.post_login(&fields).await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let attempts = trace_lines(&target, "login_attempt");
    assert_eq!(
        attempts.last().expect("an attempt")["reason"],
        "POW_INVALID"
    );
    assert_eq!(solvers(&target), [None, Some(Solver::Client)]);
}
