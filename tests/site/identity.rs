//! Who the target thinks the client is: socket peers, trusted and spoofed forwarding headers, bound source addresses.

use reqwest::StatusCode;
use serde_json::{Value, json};
use sessionrange::site::TargetConfig;
use sessionrange::{Reason, Verdict};

use crate::helpers::*;

async fn echo(rb: reqwest::RequestBuilder) -> Value {
    let res = rb.send().await.expect("the target answers");
    json_body(res, StatusCode::OK).await
}

#[tokio::test]
async fn a_spoofed_forwarded_for_from_an_untrusted_peer_is_ignored() {
    let (target, _clock) = start(TargetConfig::default()).await;
    let browser = Browser::via(&target, AMAZON);
    let seen = echo(browser.get("/__range/fingerprint")).await;
    assert_eq!(seen["ip"], "127.0.0.1");
    assert_eq!(seen["peer"], "127.0.0.1");
    assert_eq!(seen["ip_source"], "socket");
    assert_eq!(seen["ignored_header"], "x-forwarded-for");
    assert_eq!(seen["network"]["asn"], Value::Null, "127.0.0.1 is unknown");

    let forwarded = browser
        .get("/__range/fingerprint")
        .header("forwarded", "for=127.0.4.7");
    let seen = echo(forwarded).await;
    assert_eq!(seen["ip_source"], "socket");
    assert_eq!(seen["ignored_header"], "forwarded");
}

#[tokio::test]
async fn spoofing_another_network_neither_helps_nor_hurts_an_untrusted_client() {
    let (target, _clock) = start(TargetConfig::default()).await;
    let mut browser = Browser::new(&target);
    browser.log_in("alice", "wonderland").await;
    browser.move_to(AMAZON);
    browser.read_catalog(1).await;
    browser.move_to(TELEKOM);
    browser.read_catalog(2).await;
    let d = last_decision(&target);
    assert_eq!(d.verdict, Verdict::Allow);
    let ip = d.context.expect("a request context").ip;
    assert_eq!(ip, Some("127.0.0.1".parse().expect("an address")));
    let network = [Reason::IpDrift, Reason::AsnDrift, Reason::GeoDrift];
    assert!(
        d.fired.iter().all(|f| !network.contains(&f.reason)),
        "{:?}",
        d.fired
    );
}

#[tokio::test]
async fn forwarded_from_a_trusted_peer_is_honoured() {
    let (target, _clock) = start(behind_proxy()).await;
    let browser = Browser::new(&target);
    let rb = browser
        .get("/__range/fingerprint")
        .header("forwarded", "for=127.0.4.7;proto=http;by=127.0.0.1");
    let seen = echo(rb).await;
    assert_eq!(seen["ip"], "127.0.4.7");
    assert_eq!(seen["peer"], "127.0.0.1");
    assert_eq!(seen["ip_source"], "forwarded");
    assert_eq!(seen["ignored_header"], Value::Null);
    assert_eq!(seen["network"]["asn"], 3320);
    assert_eq!(seen["network"]["country"], "DE");

    // Forwarded wins over X-Forwarded-For; quoted IPv4 with a port parses.
    let rb = browser
        .get("/__range/fingerprint")
        .header("x-forwarded-for", AMAZON)
        .header("forwarded", "for=\"127.0.1.10:4711\"");
    let seen = echo(rb).await;
    assert_eq!(
        (&seen["ip"], &seen["ip_source"]),
        (&json!(COMCAST), &json!("forwarded"))
    );
}

#[tokio::test]
async fn forwarded_for_from_a_trusted_peer_takes_the_rightmost_untrusted_hop() {
    let (target, _clock) = start(behind_proxy()).await;
    let browser = Browser::new(&target);
    let chain = format!("{TELEKOM}, {AMAZON}, 127.0.0.1");
    let seen = echo(
        browser
            .get("/__range/fingerprint")
            .header("x-forwarded-for", chain),
    )
    .await;
    assert_eq!(seen["ip"], AMAZON);
    assert_eq!(seen["ip_source"], "forwarded_for");
    assert_eq!(seen["network"]["class"], "datacenter");
    let seen = echo(
        browser
            .get("/__range/fingerprint")
            .header("x-forwarded-for", "garbage"),
    )
    .await;
    assert_eq!(
        (&seen["ip"], &seen["ip_source"]),
        (&json!("127.0.0.1"), &json!("socket"))
    );
}

#[tokio::test]
async fn a_socket_bound_to_another_loopback_network_is_seen_as_that_network() {
    let (target, _clock) = start(behind_proxy()).await;
    let browser = Browser::bound(&target, "127.0.1.5");
    let seen = echo(browser.get("/__range/fingerprint")).await;
    assert_eq!(seen["ip"], "127.0.1.5");
    assert_eq!(seen["peer"], "127.0.1.5");
    assert_eq!(seen["network"]["asn"], 7922);
    assert_eq!(seen["network"]["class"], "residential");
    // 127.0.1.5 is not a trusted proxy: its forwarding header is ignored.
    let spoofed = browser
        .get("/__range/fingerprint")
        .header("x-forwarded-for", AMAZON);
    let seen = echo(spoofed).await;
    assert_eq!(seen["ip"], "127.0.1.5");
    assert_eq!(seen["ignored_header"], "x-forwarded-for");
}

#[tokio::test]
async fn a_cookie_carried_to_another_source_address_is_revoked_for_asn_drift() {
    let (target, _clock) = start(TargetConfig::default()).await;
    let home = Browser::bound(&target, "127.0.1.5");
    home.log_in("alice", "wonderland").await;
    home.read_catalog(1).await;

    let cloud = home.rebound(&target, "127.0.2.5");
    let res = cloud.fetch("/catalog?page=2").await;
    assert_eq!(res.status(), StatusCode::FOUND);
    assert_eq!(header(&res, "location"), "/login?reason=ASN_DRIFT");
    assert!(clears_cookie(&res, "sr_session"));
    let d = last_decision(&target);
    assert_eq!(d.verdict, Verdict::Revoke(Reason::AsnDrift));
    let live = d.context.expect("a request context").ip;
    assert_eq!(live, Some("127.0.2.5".parse().expect("an address")));
    assert_eq!(home.cookie("sr_session"), None, "the shared jar dropped it");
}
