//! The page sensor over HTTP: the nonce the pages give, a sensor computed as README says (a reimplementation), and forged, replayed, altered and lying ones.

use reqwest::StatusCode;
use sessionrange::auth::sensor::{self, Signals};
use sessionrange::site::config::TargetConfig;
use sessionrange::{Action, Reason};

use crate::helpers::*;

fn config() -> TargetConfig {
    let mut cfg = TargetConfig::default();
    cfg.sensor.enabled = true;
    cfg.rules.sensor.missing = Action::Revoke;
    cfg.rules.sensor.invalid = Action::Revoke;
    cfg.rules.sensor.mismatch = Action::Revoke;
    cfg.rules.automation.action = Action::Revoke;
    // Each case below kills a session of alice's: none bans her.
    cfg.rules.escalation.action = Action::Off;
    cfg
}

/// What a browser of this client's User-Agent would claim.
fn honest() -> Signals {
    Signals {
        ua: USER_AGENT.into(),
        languages: "en-US,en".into(),
        webdriver: false,
        timezone: "UTC".into(),
        screen: "1920x1080".into(),
        plugins: 5,
    }
}

/// A browser that landed, set `sensor` as its sensor cookie, logged in
/// and read one catalog page: the page's status.
async fn first_page(
    target: &sessionrange::TargetServer,
    sensor: impl Fn(&str) -> String,
) -> StatusCode {
    let browser = Browser::new(target);
    let page = browser
        .fetch("/")
        .await
        .text()
        .await
        .expect("the landing page");
    let nonce = browser
        .cookie(sensor::NONCE_COOKIE)
        .expect("the nonce cookie");
    assert!(page.contains(&format!("data-nonce=\"{nonce}\"")), "{page}");
    browser.set_cookie(sensor::SENSOR_COOKIE, &sensor(&nonce));
    browser.log_in("alice", "wonderland").await;
    browser.fetch("/catalog?page=1").await.status()
}

/// The reason of the last decision, which ended its session.
fn last_reason(target: &sessionrange::TargetServer) -> Option<Reason> {
    let decisions = target.state().trace.decisions();
    let verdict = decisions.last().expect("a decision").verdict;
    assert!(verdict.is_terminal(), "{verdict}");
    verdict.reason()
}

#[tokio::test]
async fn a_sensor_computed_as_readme_says_passes_and_every_forgery_is_named() {
    let (target, _clock) = start(config()).await;
    let ok = first_page(&target, |n| sensor::cookie(n, &honest())).await;
    assert_eq!(ok, StatusCode::OK, "a reimplemented sensor is a sensor");
    // Made under another nonce (another client's sensor, replayed).
    let replayed = sensor::cookie("someone-else.nonce", &honest());
    let status = first_page(&target, |_| replayed.clone()).await;
    assert_ne!(status, StatusCode::OK);
    assert_eq!(last_reason(&target), Some(Reason::SensorInvalid));
    // Its signals edited after the proof was made.
    let altered = |n: &str| sensor::cookie(n, &honest()).replacen('e', "f", 1);
    first_page(&target, altered).await;
    assert_eq!(last_reason(&target), Some(Reason::SensorInvalid));
    // Garbage.
    first_page(&target, |_| "%%%".into()).await;
    assert_eq!(last_reason(&target), Some(Reason::SensorInvalid));
    // Another User-Agent than the requests send.
    let other = Signals {
        ua: "Mozilla/5.0 (Windows NT 10.0) Chrome/156".into(),
        ..honest()
    };
    first_page(&target, |n| sensor::cookie(n, &other)).await;
    assert_eq!(last_reason(&target), Some(Reason::SensorMismatch));
    // An automated browser's own, honest, sensor.
    let stock = Signals {
        webdriver: true,
        ..honest()
    };
    first_page(&target, |n| sensor::cookie(n, &stock)).await;
    assert_eq!(last_reason(&target), Some(Reason::AutomationDetected));
}

#[tokio::test]
async fn no_script_no_sensor_and_the_birth_keeps_what_the_sensor_claimed() {
    let (target, _clock) = start(config()).await;
    let browser = Browser::new(&target);
    browser.land().await;
    browser.log_in("alice", "wonderland").await;
    assert_ne!(
        browser.fetch("/catalog?page=1").await.status(),
        StatusCode::OK
    );
    assert_eq!(last_reason(&target), Some(Reason::SensorMissing));
    // The script is served, and a session born with a sensor keeps its claim.
    let js = browser.fetch("/_sr/sensor.js").await;
    assert_eq!(js.status(), StatusCode::OK);
    assert!(js.text().await.expect("a script").contains("_sr_px"));
    first_page(&target, |n| sensor::cookie(n, &honest())).await;
    let login = target
        .state()
        .trace
        .decisions()
        .into_iter()
        .rev()
        .find(|d| matches!(d.kind, sessionrange::DecisionKind::Login { .. }));
    let ctx = login
        .and_then(|d| d.context)
        .expect("a login with its context");
    assert_eq!(ctx.sensor, Some(sensor::Reading::Valid(honest())));
}

#[tokio::test]
async fn a_target_without_the_sensor_sets_no_nonce_and_reads_no_cookie() {
    let (target, _clock) = start(TargetConfig::default()).await;
    let browser = Browser::new(&target);
    let page = browser
        .fetch("/")
        .await
        .text()
        .await
        .expect("the landing page");
    assert!(!page.contains("sr-sensor"));
    assert_eq!(browser.cookie(sensor::NONCE_COOKIE), None);
    browser.log_in("alice", "wonderland").await;
    browser.read_catalog(1).await;
    let d = target.state().trace.decisions();
    assert!(
        d.iter()
            .all(|d| d.context.as_ref().is_none_or(|c| c.sensor.is_none()))
    );
}

#[tokio::test]
async fn a_long_sensor_is_read_whole_and_one_carried_to_another_address_is_invalid() {
    let mut cfg = config();
    cfg.trusted_proxies = behind_proxy().trusted_proxies;
    let (target, _clock) = start(cfg).await;
    // Over 1 KiB: the context cuts cookie values, the sensor is read whole.
    let long = Signals {
        languages: "en-US,".repeat(80),
        timezone: "Etc/".repeat(120),
        ..honest()
    };
    let home = Browser::via(&target, COMCAST);
    home.land().await;
    let nonce = home.cookie(sensor::NONCE_COOKIE).expect("a nonce");
    let sensor = sensor::cookie(&nonce, &long);
    assert!(sensor.len() > 1024, "{} bytes", sensor.len());
    home.set_cookie(sensor::SENSOR_COOKIE, &sensor);
    home.log_in("alice", "wonderland").await;
    home.read_catalog(1).await;
    // The same nonce and sensor, carried to a client on another address.
    let away = Browser::via(&target, COMCAST_OTHER);
    away.set_cookie(sensor::NONCE_COOKIE, &nonce);
    away.set_cookie(sensor::SENSOR_COOKIE, &sensor);
    away.log_in("bob", "builder").await;
    assert_ne!(away.fetch("/catalog?page=1").await.status(), StatusCode::OK);
    assert_eq!(last_reason(&target), Some(Reason::SensorInvalid));
}
