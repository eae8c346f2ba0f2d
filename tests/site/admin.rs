//! The admin API on its own listener: sessions, accounts, events, ground truth, reset, metrics, and its walls.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use sessionrange::site::TargetConfig;

use crate::helpers::*;

/// Every admin route, with its method.
const ADMIN_ROUTES: [(&str, &str); 9] = [
    ("GET", "/sessions"),
    ("GET", "/sessions/000000000000000000000000000000ab"),
    ("GET", "/accounts"),
    ("POST", "/accounts/alice/revoke"),
    ("GET", "/events"),
    ("GET", "/events?follow=true"),
    ("GET", "/ground-truth"),
    ("POST", "/reset"),
    ("GET", "/metrics"),
];

#[tokio::test]
async fn sessions_are_listed_with_their_birth_context() {
    let (target, _clock) = start(behind_proxy()).await;
    let browser = Browser::via(&target, COMCAST);
    browser.log_in("alice", "wonderland").await;
    Api::via(&target, TELEKOM).login("bob", "builder").await;

    let admin = Admin::new(&target);
    let sessions = admin.json("/sessions").await;
    let sessions = sessions.as_array().expect("a list");
    assert_eq!(sessions.len(), 2);
    let of = |account: &str| -> &Value {
        sessions
            .iter()
            .find(|s| s["account"] == account)
            .expect("a session of the account")
    };
    let alice = of("alice");
    assert_eq!(alice["birth"]["ip"], COMCAST);
    assert_eq!(alice["birth"]["network"]["asn"], 7922);
    assert_eq!(alice["birth"]["network"]["class"], "residential");
    assert_eq!(alice["birth"]["user_agent"], USER_AGENT);
    assert_eq!(alice["created"], T0.as_millis());
    assert_eq!(alice["state"], json!({"state": "active"}));
    let bob = of("bob");
    assert_eq!(bob["birth"]["ip"], TELEKOM);
    assert_eq!(bob["birth"]["network"]["country"], "DE");

    let sid = browser.cookie("sr_session").expect("a session cookie");
    assert_eq!(alice["id"], sid.as_str());
    let one = admin.json(&format!("/sessions/{sid}")).await;
    assert_eq!(&one, alice);
    for missing in ["000000000000000000000000000000ab", "not-an-id"] {
        let res = admin
            .get(&format!("/sessions/{missing}"))
            .send()
            .await
            .expect("answer");
        assert_eq!(res.status(), StatusCode::NOT_FOUND, "{missing}");
    }
}

#[tokio::test]
async fn accounts_show_invalidations_and_bans_and_can_be_revoked() {
    let (target, _clock) = start(behind_proxy()).await;
    let mut browser = Browser::via(&target, COMCAST);
    browser.log_in("alice", "wonderland").await;
    let admin = Admin::new(&target);
    let accounts = admin.json("/accounts").await;
    assert_eq!(accounts["alice"]["invalidations"], json!([]));
    assert_eq!(accounts["alice"]["banned_until"], Value::Null);

    let res = admin
        .post("/accounts/alice/revoke")
        .send()
        .await
        .expect("answer");
    assert_eq!(json_body(res, StatusCode::OK).await, json!({"revoked": 1}));
    let res = browser.fetch("/account").await;
    assert_eq!(header(&res, "location"), "/login?reason=SESSION_REVOKED");
    assert!(
        admin.invalidations("alice").await.is_empty(),
        "an operator's order is not a security invalidation"
    );

    browser.log_in("alice", "wonderland").await;
    browser.move_to(AMAZON);
    browser.fetch("/account").await;
    let invalidations = admin.invalidations("alice").await;
    assert_eq!(invalidations.len(), 1);
    assert_eq!(invalidations[0][0], T0.as_millis());
    assert_eq!(invalidations[0][1], "ASN_DRIFT");
}

#[tokio::test]
async fn events_are_json_lines_of_decisions() {
    let (target, _clock) = start(behind_proxy()).await;
    let mut api = Api::via(&target, COMCAST);
    let tokens = api.login("alice", "wonderland").await;
    api.get_with("/api/v1/items?page=1", &tokens.access).await;
    api.move_to(AMAZON);
    api.get_with("/api/v1/items?page=2", &tokens.access).await;

    let res = Admin::new(&target)
        .get("/events")
        .send()
        .await
        .expect("answer");
    assert_eq!(header(&res, "content-type"), "application/x-ndjson");
    let text = res.text().await.expect("lines");
    let all: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("each line is JSON"))
        .collect();
    assert!(
        all.iter().any(|l| l["type"] == "login_flow"),
        "the login flow is traced"
    );
    let lines: Vec<Value> = all
        .into_iter()
        .filter(|l| l["type"] == "decision")
        .collect();
    assert_eq!(lines.len(), 4);
    let verdicts: Vec<(&Value, &Value, &Value)> = lines
        .iter()
        .map(|l| (&l["kind"], &l["verdict"], &l["reason"]))
        .collect();
    assert_eq!(
        verdicts,
        [
            (&json!("login_gate"), &json!("allow"), &Value::Null),
            (&json!("login"), &json!("allow"), &Value::Null),
            (&json!("request"), &json!("allow"), &Value::Null),
            (&json!("request"), &json!("revoke"), &json!("ASN_DRIFT")),
        ]
    );
    assert_eq!(lines[3]["context"]["ip"], AMAZON);
    assert_eq!(lines[3]["account"], "alice");
    assert_eq!(target.events().len(), 4);
}

#[tokio::test]
async fn following_events_streams_new_decisions_as_they_happen() {
    let (target, _clock) = start(TargetConfig::default()).await;
    let api = Api::new(&target);
    let tokens = api.login("alice", "wonderland").await;

    let mut stream = Admin::new(&target)
        .get("/events?follow=true")
        .send()
        .await
        .expect("the stream opens");
    assert_eq!(stream.status(), StatusCode::OK);
    for page in 1..=2 {
        let res = api
            .get_with(&format!("/api/v1/items?page={page}"), &tokens.access)
            .await;
        assert_eq!(res.status(), StatusCode::OK);
    }

    let mut text = String::new();
    for _ in 0..50 {
        let decisions = text.lines().filter(|l| l.contains("\"type\":\"decision\""));
        if decisions.count() >= 4 {
            break;
        }
        let next = tokio::time::timeout(Duration::from_secs(5), stream.chunk()).await;
        let chunk = next.expect("a line within 5 s").expect("the stream");
        let chunk = chunk.expect("the stream stays open");
        text.push_str(std::str::from_utf8(&chunk).expect("UTF-8"));
    }
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).expect("JSON"))
        .filter(|l| l["type"] == "decision")
        .collect();
    assert_eq!(
        lines.len(),
        4,
        "the past login's gate and login, then two live requests"
    );
    assert_eq!(
        (&lines[0]["kind"], &lines[1]["kind"]),
        (&json!("login_gate"), &json!("login"))
    );
    assert!(lines[2..].iter().all(|l| l["kind"] == "request"));
    assert!(lines[2..].iter().all(|l| l["verdict"] == "allow"));
}

#[tokio::test]
async fn ground_truth_holds_every_record_the_api_pages_serve() {
    let (target, clock) = start(TargetConfig::default()).await;
    let truth = Admin::new(&target).lines("/ground-truth").await;
    assert_eq!(truth.len(), 500, "the dataset's size");
    let truth: Vec<Value> = truth
        .iter()
        .map(|l| serde_json::from_str(l).expect("JSON"))
        .collect();

    let api = Api::new(&target);
    let tokens = api.login("alice", "wonderland").await;
    let mut scraped = Vec::new();
    let mut page = Some(1);
    while let Some(n) = page {
        advance(&clock, 1);
        let res = api
            .get_with(&format!("/api/v1/items?page={n}"), &tokens.access)
            .await;
        let body = json_body(res, StatusCode::OK).await;
        scraped.extend(body["items"].as_array().expect("items").iter().cloned());
        page = body["next"].as_u64();
    }
    assert_eq!(scraped.len(), 500);
    assert_eq!(scraped, truth);
}

#[tokio::test]
async fn reset_forgets_sessions_and_tokens() {
    let (target, _clock) = start(TargetConfig::default()).await;
    let browser = Browser::new(&target);
    browser.log_in("alice", "wonderland").await;
    let api = Api::new(&target);
    let tokens = api.login("bob", "builder").await;
    let admin = Admin::new(&target);
    assert_eq!(
        admin.json("/sessions").await.as_array().map(Vec::len),
        Some(2)
    );

    let res = admin.post("/reset").send().await.expect("answer");
    assert_eq!(json_body(res, StatusCode::OK).await, json!({"reset": true}));
    assert_eq!(admin.json("/sessions").await, json!([]));
    assert_eq!(admin.json("/accounts").await, json!({}));

    let res = browser
        .get("/account")
        .header("accept", "application/json")
        .send()
        .await
        .expect("answer");
    assert!(clears_cookie(&res, "sr_session"));
    assert_eq!(
        json_body(res, StatusCode::UNAUTHORIZED).await,
        json!({"error": "SESSION_EXPIRED", "reason": "SESSION_UNKNOWN"})
    );
    let res = api.get_with("/api/v1/items", &tokens.access).await;
    assert_eq!(
        json_body(res, StatusCode::UNAUTHORIZED).await,
        json!({"error": "SESSION_EXPIRED", "reason": "SESSION_UNKNOWN"})
    );
    let res = api.refresh(&tokens.refresh).await;
    assert_eq!(
        json_body(res, StatusCode::BAD_REQUEST).await["reason"],
        "unknown"
    );
}

#[tokio::test]
async fn metrics_are_prometheus_text() {
    let (target, _clock) = start(TargetConfig::default()).await;
    let api = Api::new(&target);
    let tokens = api.login("alice", "wonderland").await;
    api.login_raw("alice", "wrong").await;
    api.get_with("/api/v1/items", &tokens.access).await;
    let res = Admin::new(&target)
        .get("/metrics")
        .send()
        .await
        .expect("answer");
    assert_eq!(res.status(), StatusCode::OK);
    assert!(header(&res, "content-type").starts_with("text/plain; version=0.0.4"));
    let text = res.text().await.expect("text");
    for line in [
        "# TYPE sessionrange_logins_total counter",
        "sessionrange_logins_total{result=\"ok\"} 1",
        "sessionrange_logins_total{result=\"failed\"} 1",
        "sessionrange_decisions_total{verdict=\"allow\"} 1",
        "sessionrange_decisions_total{verdict=\"revoke\"} 0",
        "# TYPE sessionrange_sessions gauge",
        "sessionrange_sessions 1",
    ] {
        assert!(text.lines().any(|l| l == line), "{line} in\n{text}");
    }
}

#[tokio::test]
async fn the_admin_api_needs_its_token() {
    let (target, _clock) = start(TargetConfig::default()).await;
    let client = reqwest::Client::new();
    let token = target.admin_token().to_owned();
    for (method, path) in ADMIN_ROUTES {
        let url = target.admin_url(path);
        let attempts = [
            None,
            Some(format!("Bearer {}", "0".repeat(token.len()))),
            Some(format!("Bearer {token}x")),
            Some(format!("Basic {token}")),
            Some(token.clone()),
        ];
        for auth in attempts {
            let mut rb = match method {
                "POST" => client.post(&url),
                _ => client.get(&url),
            };
            if let Some(a) = &auth {
                rb = rb.header("authorization", a);
            }
            let res = rb.send().await.expect("answer");
            assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "{path} {auth:?}");
            assert_eq!(
                header(&res, "www-authenticate"),
                "Bearer realm=\"sessionrange-admin\""
            );
        }
    }
}

#[tokio::test]
async fn the_public_listener_never_serves_admin_routes() {
    let (target, _clock) = start(TargetConfig::default()).await;
    let browser = Browser::new(&target);
    browser.log_in("alice", "wonderland").await;
    let client = reqwest::Client::new();
    let token = target.admin_token().to_owned();
    let prefixes = ["", "/admin", "/__range", "/api"];
    for (method, path) in ADMIN_ROUTES {
        for prefix in prefixes {
            for auth in [None, Some(&token)] {
                let url = target.url(&format!("{prefix}{path}"));
                let mut rb = match method {
                    "POST" => client.post(&url),
                    _ => client.get(&url),
                };
                if let Some(t) = auth {
                    rb = rb.bearer_auth(t);
                }
                let res = rb.send().await.expect("answer");
                assert_eq!(res.status(), StatusCode::NOT_FOUND, "{method} {url}");
                let body = res.text().await.expect("body");
                assert_eq!(body, "not found\n", "{method} {url}");
            }
        }
    }
    // Nothing was reset or revoked through the public door.
    let sessions = Admin::new(&target).json("/sessions").await;
    assert_eq!(sessions[0]["state"], json!({"state": "active"}));
}
