//! `[target] direct = "refuse"`: only requests through the pool reach the site; the fingerprint echo stays open.

use reqwest::StatusCode;
use serde_json::json;
use sessionrange::site::TargetConfig;
use sessionrange::site::config::DirectAccess;

use crate::helpers::*;
use crate::pool::{TWO_EXITS, start_pool, url};

fn refusing() -> TargetConfig {
    TargetConfig {
        direct: Some(DirectAccess::Refuse),
        ..TargetConfig::default()
    }
}

#[tokio::test]
async fn direct_requests_get_the_403_block_page_and_pool_requests_pass() {
    let (target, _clock) = start(refusing()).await;
    let pool = start_pool(&target, TWO_EXITS).await;
    let browser = Browser::new(&target);
    for path in ["/", "/login", "/catalog?page=1"] {
        let res = browser.fetch(path).await;
        assert_eq!(res.status(), StatusCode::FORBIDDEN, "{path}");
        assert_eq!(header(&res, "cache-control"), "no-store");
        assert!(res.text().await.expect("a page").contains("DIRECT_ACCESS"));
    }
    let res = Api::new(&target).login_raw("alice", "wonderland").await;
    let body = json_body(res, StatusCode::FORBIDDEN).await;
    assert_eq!(body, json!({"error": "blocked", "reason": "DIRECT_ACCESS"}));
    // Over HTTPS too.
    let ca = reqwest::Certificate::from_pem(target.ca_pem().as_bytes()).expect("the CA");
    let tls = reqwest::Client::builder()
        .add_root_certificate(ca)
        .build()
        .expect("client");
    let res = tls.get(target.https_url("/")).send().await.expect("answer");
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    // The echo stays reachable, to see what the target sees.
    let res = browser.fetch("/__range/fingerprint").await;
    assert_eq!(res.status(), StatusCode::OK);

    let api = Api::through(&target, &url(&pool, "home"));
    let tokens = api.login("alice", "wonderland").await;
    let res = api.get_with("/api/v1/items?page=1", &tokens.access).await;
    assert_eq!(res.status(), StatusCode::OK);

    let refused = trace_lines(&target, "refused");
    let routes: Vec<&str> = refused.iter().filter_map(|r| r["route"].as_str()).collect();
    assert_eq!(routes, ["/", "/login", "/catalog", "/api/login", "/"]);
    assert!(refused.iter().all(|r| r["reason"] == "DIRECT_ACCESS"));
    assert!(refused.iter().all(|r| r["ip"] == "127.0.0.1"));
}

#[tokio::test]
async fn a_target_that_allows_direct_access_serves_everyone() {
    let cfg = TargetConfig {
        direct: Some(DirectAccess::Allow),
        ..TargetConfig::default()
    };
    for cfg in [cfg, TargetConfig::default()] {
        let (target, _clock) = start(cfg).await;
        Browser::new(&target).log_in("alice", "wonderland").await;
    }
}
