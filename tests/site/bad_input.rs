//! Hostile and broken input: forged JWTs, garbage cookies, oversized headers and bodies, bad JSON and forms.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use reqwest::StatusCode;
use reqwest::header::HeaderValue;
use serde_json::{Value, json};
use sessionrange::site::TargetConfig;

use crate::helpers::*;

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn hs256(key: &[u8], input: &str) -> String {
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(key).expect("HMAC takes any key");
    mac.update(input.as_bytes());
    b64(&mac.finalize().into_bytes())
}

/// The decoded header and payload of a compact JWS.
fn parts(token: &str) -> (Value, Value) {
    let decode = |p: &str| -> Value {
        let bytes = URL_SAFE_NO_PAD.decode(p).expect("base64url");
        serde_json::from_slice(&bytes).expect("JSON")
    };
    let mut it = token.split('.');
    let header = decode(it.next().expect("a header"));
    let payload = decode(it.next().expect("a payload"));
    (header, payload)
}

/// A token with this header and payload, signed by `sign` over the signing input.
fn forge(header: &Value, payload: &Value, sign: impl Fn(&str) -> String) -> String {
    let input = format!(
        "{}.{}",
        b64(header.to_string().as_bytes()),
        b64(payload.to_string().as_bytes())
    );
    let sig = sign(&input);
    format!("{input}.{sig}")
}

#[tokio::test]
async fn forged_tampered_and_malformed_jwts_are_refused_with_401() {
    let (target, _clock) = start(TargetConfig::default()).await;
    let api = Api::new(&target);
    let real = api.login("alice", "wonderland").await.access;
    let (head, body) = parts(&real);
    let kid = head["kid"].as_str().expect("a kid").to_owned();
    let mut admin_body = body.clone();
    admin_body["sub"] = json!("admin");
    let real_sig = real.rsplit('.').next().expect("a signature").to_owned();

    let none = forge(&json!({"alg": "none", "kid": kid}), &admin_body, |_| {
        String::new()
    });
    let wrong_key = forge(
        &json!({"alg": "HS256", "kid": kid, "typ": "JWT"}),
        &admin_body,
        |i| hs256(b"guessed secret", i),
    );
    // HS/RS confusion: an RS256 label over an HMAC made with "public" key bytes.
    let confused = forge(&json!({"alg": "RS256", "kid": kid}), &body, |i| {
        hs256(b"-----BEGIN PUBLIC KEY-----", i)
    });
    let real_head = real.split('.').next().expect("a header");
    let tampered = format!(
        "{real_head}.{}.{real_sig}",
        b64(admin_body.to_string().as_bytes())
    );
    let foreign_kid = forge(&json!({"alg": "HS256", "kid": "other"}), &body, |i| {
        hs256(b"k", i)
    });
    let long = format!("{real}{}", "A".repeat(9000));
    let cases = [
        (none.as_str(), "unsupported_algorithm"),
        (wrong_key.as_str(), "bad_signature"),
        (confused.as_str(), "unsupported_algorithm"),
        (tampered.as_str(), "bad_signature"),
        (foreign_kid.as_str(), "unknown_key"),
        ("abc", "malformed"),
        ("a.b.c", "malformed"),
        ("....", "malformed"),
        ("e30.e30.e30", "malformed"),
        (long.as_str(), "malformed"),
    ];
    for (token, code) in cases {
        let res = api.get_with("/api/v1/items?page=1", token).await;
        assert_eq!(
            res.status(),
            StatusCode::UNAUTHORIZED,
            "{code}: {token:.40}"
        );
        let challenge = header(&res, "www-authenticate");
        assert!(challenge.contains("invalid_token"), "{challenge}");
        assert_eq!(header(&res, "cache-control"), "no-store");
        let body: Value = res.json().await.expect("JSON");
        assert_eq!(body["reason"], code, "{token:.40}");
    }
    // The genuine token still works.
    let res = api.get_with("/api/v1/items?page=1", &real).await;
    assert_eq!(res.status(), StatusCode::OK);
}

#[tokio::test]
async fn an_expired_access_token_is_refused_after_the_skew_grace() {
    let (target, clock) = start(TargetConfig::default()).await;
    let api = Api::new(&target);
    let tokens = api.login("alice", "wonderland").await;
    advance(&clock, 300 + 29);
    let res = api.get_with("/api/v1/items?page=1", &tokens.access).await;
    assert_eq!(res.status(), StatusCode::OK, "inside the 30 s grace");
    advance(&clock, 1);
    let res = api.get_with("/api/v1/items?page=1", &tokens.access).await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        res.json::<Value>().await.expect("JSON")["reason"],
        "expired"
    );
    let fresh = Tokens::from_response(api.refresh(&tokens.refresh).await).await;
    let res = api.get_with("/api/v1/items?page=1", &fresh.access).await;
    assert_eq!(
        res.status(),
        StatusCode::OK,
        "the refresh token outlives it"
    );
}

#[tokio::test]
async fn garbage_session_cookies_are_refused_without_a_server_error() {
    let (target, _clock) = start(TargetConfig::default()).await;
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("a client");
    let huge = format!("sr_session={}", "f".repeat(10 * 1024));
    // Each garbage cookie, and whether it names the session cookie (and
    // so gets a `Set-Cookie` that deletes it).
    let cookies = [
        ("sr_session=../../etc".to_owned(), true),
        ("sr_session=../../etc/passwd%00".to_owned(), true),
        (huge, true),
        ("sr_session=".to_owned(), true),
        ("=;;=;sr_session==".to_owned(), true),
        (format!("sr_session={}", "0".repeat(31) + "g"), true),
        ("sr_session".to_owned(), false),
    ];
    for (cookie, named) in &cookies {
        let url = target.url("/catalog?page=1");
        let res = client.get(&url).header("cookie", cookie).send().await;
        let res = res.expect("the target answers");
        assert_not_5xx(res.status(), cookie);
        assert_eq!(res.status(), StatusCode::SEE_OTHER, "{cookie:.40}");
        assert_eq!(header(&res, "location"), "/login");
        assert_eq!(header(&res, "cache-control"), "no-store");
        assert_eq!(clears_cookie(&res, "sr_session"), *named, "{cookie:.40}");
        let res = client
            .get(&url)
            .header("cookie", cookie)
            .header("accept", "application/json")
            .send()
            .await
            .expect("the target answers");
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "{cookie:.40}");
    }
    // Bytes that are not text are no cookie at all.
    let raw = HeaderValue::from_bytes(b"sr_session=\xff\xfe").expect("obs-text is allowed");
    let res = client
        .get(target.url("/api/v1/items"))
        .header("cookie", raw)
        .header("accept", "application/json")
        .send()
        .await
        .expect("the target answers");
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    // A well-formed id the target never issued is an expiry, not a 5xx.
    let unknown = format!("sr_session={}", "ab".repeat(16));
    let res = client
        .get(target.url("/account"))
        .header("cookie", unknown)
        .header("accept", "application/json")
        .send()
        .await
        .expect("the target answers");
    assert_eq!(
        json_body(res, StatusCode::UNAUTHORIZED).await,
        json!({"error": "SESSION_EXPIRED", "reason": "SESSION_UNKNOWN"})
    );
}

#[tokio::test]
async fn oversized_headers_and_bodies_are_refused_with_4xx() {
    let (target, _clock) = start(TargetConfig::default()).await;
    let api = Api::new(&target);
    let big = vec![b'{'; 65 * 1024];
    for path in ["/api/login", "/api/token/refresh", "/api/token/revoke"] {
        let res = api
            .post(path)
            .header("content-type", "application/json")
            .body(big.clone())
            .send()
            .await
            .expect("the target answers");
        assert_eq!(res.status(), StatusCode::PAYLOAD_TOO_LARGE, "{path}");
    }
    let browser = Browser::new(&target);
    let name = "u".repeat(70 * 1024);
    let res = browser
        .post_form("/login", &[("username", name.as_str())])
        .send()
        .await
        .expect("the target answers");
    assert_eq!(res.status(), StatusCode::PAYLOAD_TOO_LARGE);

    for size in [16 * 1024, 100 * 1024, 1024 * 1024] {
        let res = api
            .get("/api/v1/items")
            .header("x-padding", "p".repeat(size))
            .send()
            .await
            .expect("the target answers");
        assert!(res.status().is_client_error(), "{size}: {}", res.status());
    }
    let mut many = api.get("/api/v1/items");
    for i in 0..200 {
        many = many.header(format!("x-h{i}"), "v");
    }
    let res = many.send().await.expect("the target answers");
    assert!(res.status().is_client_error(), "{}", res.status());
}

#[tokio::test]
async fn bad_json_and_bad_form_data_are_4xx() {
    let (target, _clock) = start(TargetConfig::default()).await;
    let api = Api::new(&target);
    let bodies: [&[u8]; 6] = [
        b"{not json",
        b"",
        b"[1,2,3]",
        br#"{"username": 5, "password": []}"#,
        b"\xff\xfe\x00",
        br#"{"username":"alice","password":"wonderland""#,
    ];
    for path in ["/api/login", "/api/token/refresh", "/api/token/revoke"] {
        for body in bodies {
            let res = api
                .post(path)
                .header("content-type", "application/json")
                .body(body.to_vec())
                .send()
                .await
                .expect("the target answers");
            let shown = String::from_utf8_lossy(body);
            assert_eq!(res.status(), StatusCode::BAD_REQUEST, "{path} {shown}");
            let json: Value = res.json().await.expect("a JSON error");
            assert_eq!(json["error"], "invalid_request", "{path} {shown}");
        }
    }
    let res = api.post_json("/api/token/refresh", &json!({})).await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let res = api
        .post_json("/api/token/refresh", &json!({"refresh_token": "nope"}))
        .await;
    assert_eq!(
        json_body(res, StatusCode::BAD_REQUEST).await,
        json!({"error": "invalid_grant", "reason": "unknown"})
    );

    let browser = Browser::new(&target);
    let csrf = csrf_of(&browser.login_page().await);
    let forms = [
        (
            "csrf={csrf}&username=a&username=b",
            "application/x-www-form-urlencoded",
        ),
        ("csrf={csrf}&%%%&&&===", "application/x-www-form-urlencoded"),
        ("csrf={csrf}&username=alice", "text/plain"),
        ("{\"csrf\":\"{csrf}\"}", "application/json"),
    ];
    for (body, ct) in forms {
        let body = body.replace("{csrf}", &csrf);
        let res = browser
            .post("/login")
            .header("content-type", ct)
            .body(body.clone())
            .send()
            .await
            .expect("the target answers");
        let status = res.status();
        assert!(status.is_client_error(), "{body} {ct}: {status}");
    }

    browser.log_in("alice", "wonderland").await;
    let queries = [
        ("page=abc", StatusCode::BAD_REQUEST),
        ("page=-1", StatusCode::BAD_REQUEST),
        ("page=99999999999", StatusCode::BAD_REQUEST),
        ("page=0", StatusCode::NOT_FOUND),
        ("page=21", StatusCode::NOT_FOUND),
    ];
    for (query, status) in queries {
        let res = browser.fetch(&format!("/catalog?{query}")).await;
        assert_eq!(res.status(), status, "{query}");
    }
}
