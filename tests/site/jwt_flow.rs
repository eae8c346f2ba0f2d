//! The bearer flow: API login, items, refresh rotation and reuse, refresh races, RFC 7009 revocation.

use std::time::Duration;

use reqwest::{Response, StatusCode};
use serde_json::{Value, json};
use sessionrange::site::TargetConfig;
use sessionrange::{Action, Reason, Verdict};

use crate::helpers::*;

/// Checks a refusal of a bearer token: RFC 6750's 401 with `reason`.
async fn assert_invalid_token(res: Response, reason: &str) {
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "{reason}");
    assert_eq!(header(&res, "cache-control"), "no-store", "{reason}");
    let challenge = header(&res, "www-authenticate");
    assert!(challenge.starts_with("Bearer "), "{challenge}");
    assert!(challenge.contains("error=\"invalid_token\""), "{challenge}");
    assert!(
        challenge.contains(&format!("error_description=\"{reason}\"")),
        "{challenge}"
    );
    let body: Value = res.json().await.expect("a JSON body");
    assert_eq!(body, json!({"error": "invalid_token", "reason": reason}));
}

/// Checks an allowed read of `path`.
async fn assert_reads(api: &Api, path: &str, access: &str) -> Value {
    json_body(api.get_with(path, access).await, StatusCode::OK).await
}

#[tokio::test]
async fn api_login_issues_tokens_that_read_pages_and_items() {
    let (target, _clock) = start(TargetConfig::default()).await;
    let api = Api::new(&target);
    let res = api.login_raw("alice", "wonderland").await;
    assert_eq!(res.status(), StatusCode::OK);
    let body: Value = res.json().await.expect("a token response");
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 300);
    let access = body["access_token"].as_str().expect("an access token");
    assert_eq!(access.split('.').count(), 3, "a compact JWS");

    let page = assert_reads(&api, "/api/v1/items?page=1", access).await;
    assert_eq!(page["page"], 1);
    assert_eq!(page["total"], 500);
    assert_eq!(page["next"], 2);
    assert_eq!(page["items"].as_array().expect("items").len(), 25);
    let first = page["items"][0].clone();
    let item = assert_reads(&api, "/api/v1/items/1", access).await;
    assert_eq!(item, first);

    let missing = api.get_with("/api/v1/items/501", access).await;
    assert_eq!(
        json_body(missing, StatusCode::NOT_FOUND).await["error"],
        "not_found"
    );
    let res = api
        .get("/api/v1/items?page=1")
        .send()
        .await
        .expect("answer");
    assert_eq!(header(&res, "cache-control"), "no-store");
    assert_eq!(
        json_body(res, StatusCode::UNAUTHORIZED).await,
        json!({"error": "login_required"})
    );
}

#[tokio::test]
async fn refresh_rotates_and_reusing_the_old_token_revokes_the_family_and_session() {
    let (target, _clock) = start(TargetConfig::default()).await;
    let api = Api::new(&target);
    let first = api.login("alice", "wonderland").await;
    let second = Tokens::from_response(api.refresh(&first.refresh).await).await;
    assert_ne!(second.refresh, first.refresh);
    assert_ne!(second.access, first.access);
    assert_reads(&api, "/api/v1/items?page=2", &second.access).await;
    let third = Tokens::from_response(api.refresh(&second.refresh).await).await;

    let res = api.refresh(&first.refresh).await;
    let body = json_body(res, StatusCode::FORBIDDEN).await;
    assert_eq!(
        body,
        json!({"error": "invalid_grant", "reason": "REFRESH_TOKEN_REUSE"})
    );
    assert_eq!(
        last_verdict(&target),
        Verdict::Revoke(Reason::RefreshTokenReuse)
    );

    // The newest tokens of the family are dead too.
    let res = api.get_with("/api/v1/items?page=1", &third.access).await;
    assert_invalid_token(res, "REFRESH_TOKEN_REUSE").await;
    let res = api.refresh(&third.refresh).await;
    assert_eq!(
        json_body(res, StatusCode::BAD_REQUEST).await,
        json!({"error": "invalid_grant", "reason": "revoked"})
    );
    // Reuse is a security invalidation of the account.
    let invalidations = Admin::new(&target).invalidations("alice").await;
    assert_eq!(invalidations.len(), 1);
    assert_eq!(invalidations[0][1], "REFRESH_TOKEN_REUSE");
}

/// Two refreshes with the same token, sent at once.
async fn race(api: &Api, refresh: &str) -> (Response, Response) {
    tokio::join!(api.refresh(refresh), api.refresh(refresh))
}

#[tokio::test]
async fn a_parallel_refresh_race_without_overlap_kills_the_family() {
    let (target, _clock) = start(TargetConfig::default()).await;
    let api = Api::new(&target);
    let login = api.login("alice", "wonderland").await;
    let (a, b) = race(&api, &login.refresh).await;
    let mut statuses = [a.status(), b.status()];
    statuses.sort();
    assert_eq!(statuses, [StatusCode::OK, StatusCode::FORBIDDEN]);
    let (winner, loser) = if a.status() == StatusCode::OK {
        (a, b)
    } else {
        (b, a)
    };
    let loser = json_body(loser, StatusCode::FORBIDDEN).await;
    assert_eq!(loser["reason"], "REFRESH_TOKEN_REUSE");
    let won = Tokens::from_response(winner).await;

    let res = api.get_with("/api/v1/items?page=1", &won.access).await;
    assert_invalid_token(res, "REFRESH_TOKEN_REUSE").await;
    let res = api.refresh(&won.refresh).await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST, "the family is dead");
}

#[tokio::test]
async fn a_parallel_refresh_race_within_the_overlap_keeps_the_session() {
    let mut cfg = TargetConfig::default();
    cfg.tokens.refresh_overlap = Duration::from_secs(30);
    let (target, _clock) = start(cfg).await;
    let api = Api::new(&target);
    let login = api.login("alice", "wonderland").await;
    let (a, b) = race(&api, &login.refresh).await;
    let a = Tokens::from_response(a).await;
    let b = Tokens::from_response(b).await;
    assert_ne!(a.refresh, b.refresh);
    assert_reads(&api, "/api/v1/items?page=1", &a.access).await;
    assert_reads(&api, "/api/v1/items?page=2", &b.access).await;
    let next = Tokens::from_response(api.refresh(&b.refresh).await).await;
    assert_reads(&api, "/api/v1/items?page=3", &next.access).await;
    assert!(Admin::new(&target).invalidations("alice").await.is_empty());
}

#[tokio::test]
async fn a_previous_refresh_token_after_the_overlap_window_is_reuse() {
    let mut cfg = TargetConfig::default();
    cfg.tokens.refresh_overlap = Duration::from_secs(30);
    let (target, clock) = start(cfg).await;
    let api = Api::new(&target);
    let login = api.login("alice", "wonderland").await;
    Tokens::from_response(api.refresh(&login.refresh).await).await;
    advance(&clock, 31);
    let res = api.refresh(&login.refresh).await;
    assert_eq!(
        json_body(res, StatusCode::FORBIDDEN).await["reason"],
        "REFRESH_TOKEN_REUSE"
    );
}

#[tokio::test]
async fn revocation_answers_200_even_for_unknown_tokens() {
    let (target, _clock) = start(TargetConfig::default()).await;
    let api = Api::new(&target);
    api.revoke("never-issued").await;
    api.revoke("a.b.c").await;
    let res = api
        .post("/api/token/revoke")
        .form(&[("token", "unknown"), ("token_type_hint", "refresh_token")])
        .send()
        .await
        .expect("answer");
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(header(&res, "cache-control"), "no-store");
}

#[tokio::test]
async fn revoking_an_access_token_makes_only_that_token_unusable() {
    let (target, _clock) = start(TargetConfig::default()).await;
    let api = Api::new(&target);
    let login = api.login("alice", "wonderland").await;
    assert_reads(&api, "/api/v1/items?page=1", &login.access).await;
    api.revoke(&login.access).await;
    let res = api.get_with("/api/v1/items?page=1", &login.access).await;
    assert_invalid_token(res, "revoked").await;
    // The session and its refresh family live on.
    let fresh = Tokens::from_response(api.refresh(&login.refresh).await).await;
    assert_reads(&api, "/api/v1/items?page=1", &fresh.access).await;
}

#[tokio::test]
async fn revoking_a_refresh_token_ends_the_session() {
    let (target, _clock) = start(TargetConfig::default()).await;
    let api = Api::new(&target);
    let login = api.login("alice", "wonderland").await;
    api.revoke(&login.refresh).await;
    let res = api.get_with("/api/v1/items?page=1", &login.access).await;
    assert_invalid_token(res, "LOGGED_OUT").await;
    let res = api.refresh(&login.refresh).await;
    assert_eq!(
        json_body(res, StatusCode::BAD_REQUEST).await["reason"],
        "revoked"
    );
    // An explicit logout is not a security invalidation.
    assert!(Admin::new(&target).invalidations("alice").await.is_empty());
}

#[tokio::test]
async fn a_bearer_session_that_drifts_gets_the_bearer_style() {
    let (target, _clock) = start(behind_proxy()).await;
    let mut api = Api::via(&target, COMCAST);
    let login = api.login("bob", "builder").await;
    assert_reads(&api, "/api/v1/items?page=1", &login.access).await;
    api.move_to(TELEKOM);
    let res = api.get_with("/api/v1/items?page=2", &login.access).await;
    assert!(!clears_cookie(&res, "sr_session"), "bearer has no cookie");
    assert_invalid_token(res, "ASN_DRIFT").await;
    // Refreshing from the new network does not resurrect it.
    let res = api.refresh(&login.refresh).await;
    assert_invalid_token(res, "ASN_DRIFT").await;
}

#[tokio::test]
async fn a_burst_past_the_rate_limit_gets_429_and_the_session_survives() {
    let (target, clock) = start(TargetConfig::default()).await;
    let api = Api::new(&target);
    let login = api.login("alice", "wonderland").await;
    // The clock stands still: the whole burst of 20 arrives at once.
    for n in 1..=20 {
        let res = api.get_with("/api/v1/items/1", &login.access).await;
        assert_eq!(res.status(), StatusCode::OK, "request {n} is in the burst");
    }
    let res = api.get_with("/api/v1/items/1", &login.access).await;
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(header(&res, "retry-after"), "1");
    let body: Value = res.json().await.expect("JSON");
    assert_eq!(
        body,
        json!({"error": "RATE_LIMITED", "reason": "VELOCITY_EXCEEDED", "retry_after": 1, "session": "active"})
    );
    assert_eq!(
        last_verdict(&target),
        Verdict::Challenge(Reason::VelocityExceeded)
    );
    advance(&clock, 1);
    assert_reads(&api, "/api/v1/items/1", &login.access).await;
    assert!(Admin::new(&target).invalidations("alice").await.is_empty());
}

#[tokio::test]
async fn a_challenged_refresh_keeps_its_token_usable() {
    let mut cfg = TargetConfig::default();
    cfg.rules.session_velocity.burst = 1;
    let (target, clock) = start(cfg).await;
    let api = Api::new(&target);
    let login = api.login("alice", "wonderland").await;
    let first = Tokens::from_response(api.refresh(&login.refresh).await).await;
    // Same instant: the burst of one is spent, so this refresh is challenged.
    let res = api.refresh(&first.refresh).await;
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    advance(&clock, 1);
    let again = api.refresh(&first.refresh).await;
    assert_eq!(
        again.status(),
        StatusCode::OK,
        "the challenged token still works"
    );
}

#[tokio::test]
async fn refreshes_do_not_leave_requests_in_flight() {
    let mut cfg = TargetConfig::default();
    cfg.rules.concurrency.in_flight_action = Action::Challenge;
    cfg.rules.concurrency.max_in_flight = 2;
    let (target, clock) = start(cfg).await;
    let api = Api::new(&target);
    let mut tokens = api.login("alice", "wonderland").await;
    for _ in 0..4 {
        advance(&clock, 1);
        tokens = Tokens::from_response(api.refresh(&tokens.refresh).await).await;
    }
    assert_reads(&api, "/api/v1/items/1", &tokens.access).await;
}
