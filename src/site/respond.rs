//! How the target refuses a request, in the styles real sites use.
//!
//! A refused request can look like an OAuth resource server (`401` with
//! `WWW-Authenticate: Bearer`), an app's JSON API, a bot-manager block
//! page, a redirect to the login form, a silent `200` login form, a
//! Cloudflare-like challenge interstitial or a `429`. Which one a scenario
//! picks decides which clients notice at all: Crawlee retires sessions on
//! 401, 403 and 429 but not on a `200` login form, and Scrapy follows the
//! redirect without a second thought.
//!
//! Every refusal carries `Cache-Control: no-store` and, when asked, a
//! `Set-Cookie` that clears the session cookie.

use axum::Json;
use axum::http::StatusCode;
use axum::http::header::{self, HeaderMap, HeaderName, HeaderValue};
use axum::response::{Html, IntoResponse, Response};
use cookie::{Cookie, CookieBuilder, SameSite};

use serde_json::json;
use sha2::{Digest, Sha256};

pub(crate) use crate::site::config::ResponseStyle;
use crate::verdict::Reason;

/// Everything [`refuse`] needs to answer one refused request.
#[derive(Clone, Debug)]
pub(crate) struct Refusal<'a> {
    /// The style of answer.
    pub style: ResponseStyle,
    /// Why the request was refused.
    pub reason: Reason,
    /// Whether the client asked for JSON (see [`wants_json`]).
    pub wants_json: bool,
    /// `Retry-After` for [`ResponseStyle::RateLimit429`]; 1 s when `None`.
    pub retry_after_secs: Option<u64>,
    /// The session cookie to clear, if any.
    pub clear_cookie: Option<&'a str>,
    /// Whether the session is dead after this answer (a revoke, not a
    /// challenge): a `429` then says so, so that waiting is not mistaken
    /// for the cure.
    pub ends_session: bool,
    /// The login form page, the body of [`ResponseStyle::SoftLogin`].
    pub login_html: &'a str,
}

/// The marker header of the challenge style, after Cloudflare's.
pub(crate) const CF_MITIGATED: &str = "cf-mitigated";
/// The header that names the reason code of a challenge.
pub(crate) const CHALLENGE_HEADER: &str = "x-sessionrange-challenge";

/// Answers a refused request in the style `r.style` asks for.
pub(crate) fn refuse(r: &Refusal<'_>) -> Response {
    let code = r.reason.code();
    let mut res = match r.style {
        ResponseStyle::Rfc6750 => rfc6750(code),
        ResponseStyle::Json401 => json_401(r.reason),
        ResponseStyle::Block403 => block_403(code, r.wants_json),
        ResponseStyle::RedirectLogin => redirect_login(code),
        ResponseStyle::SoftLogin => Html(r.login_html.to_owned()).into_response(),
        ResponseStyle::Challenge | ResponseStyle::JsChallenge => challenge(code),
        ResponseStyle::RateLimit429 => {
            rate_limited(code, r.wants_json, r.retry_after_secs, r.ends_session)
        }
    };
    finish(&mut res, r.clear_cookie);
    res
}

/// Whether the client asked for JSON: `Accept` or `Content-Type` mentions
/// `application/json`. A bare `*/*` does not count.
pub(crate) fn wants_json(headers: &HeaderMap) -> bool {
    [header::ACCEPT, header::CONTENT_TYPE].iter().any(|name| {
        headers.get_all(name).iter().any(|v| {
            v.to_str()
                .is_ok_and(|s| s.to_ascii_lowercase().contains("application/json"))
        })
    })
}

/// The answer for a banned account: `403` with `ACCOUNT_BANNED`.
pub(crate) fn banned(wants_json: bool) -> Response {
    let code = Reason::AccountBanned.code();
    let mut res = if wants_json {
        Json(json!({ "error": code })).into_response()
    } else {
        let body = format!(
            "<p>This account has been suspended for suspicious activity.</p>\
             <p>Error code: <code>{code}</code></p>"
        );
        Html(page("Account suspended", &body)).into_response()
    };
    *res.status_mut() = StatusCode::FORBIDDEN;
    finish(&mut res, None);
    res
}

/// The answer for a session that ended naturally: `401` with
/// `SESSION_EXPIRED`, distinct from every security invalidation.
pub(crate) fn expired(reason: Reason, wants_json: bool, clear_cookie: Option<&str>) -> Response {
    let code = reason.code();
    let mut res = if wants_json {
        Json(json!({ "error": "SESSION_EXPIRED", "reason": code })).into_response()
    } else {
        let body = format!(
            "<p>Your session has expired. Please <a href=\"/login\">log in</a> again.</p>\
             <p>SESSION_EXPIRED: <code>{code}</code></p>"
        );
        Html(page("Session expired", &body)).into_response()
    };
    *res.status_mut() = StatusCode::UNAUTHORIZED;
    set(
        &mut res,
        header::WWW_AUTHENTICATE,
        "Bearer error=\"invalid_token\"",
    );
    finish(&mut res, clear_cookie);
    res
}

fn rfc6750(code: &str) -> Response {
    let mut res = Json(json!({ "error": "invalid_token", "reason": code })).into_response();
    *res.status_mut() = StatusCode::UNAUTHORIZED;
    let challenge = format!(
        "Bearer realm=\"sessionrange\", error=\"invalid_token\", error_description=\"{code}\""
    );
    set(&mut res, header::WWW_AUTHENTICATE, &challenge);
    res
}

/// Security invalidations say so; natural ends say `SESSION_EXPIRED`.
fn json_401(reason: Reason) -> Response {
    let error = if reason.is_security() {
        "SESSION_INVALIDATED_SECURITY"
    } else {
        "SESSION_EXPIRED"
    };
    let body = json!({ "error": error, "reason": reason.code() });
    (StatusCode::UNAUTHORIZED, Json(body)).into_response()
}

/// The answer to a request the shared session store could not judge:
/// `503` with `Retry-After: 1`, code `STORE_UNAVAILABLE` and what failed.
pub(crate) fn store_unavailable(detail: &str, wants_json: bool) -> Response {
    let code = "STORE_UNAVAILABLE";
    let mut res = if wants_json {
        let body =
            json!({ "error": "UNAVAILABLE", "reason": code, "detail": detail, "retry_after": 1 });
        Json(body).into_response()
    } else {
        let body = format!(
            "<h1>Service unavailable</h1><p>The request was not judged: <code>{code}</code>.</p>\
             <p>{}</p><p>Retry after 1 s.</p>",
            crate::dataset::escape_html(detail)
        );
        Html(page("Service unavailable", &body)).into_response()
    };
    *res.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
    set(&mut res, header::RETRY_AFTER, "1");
    finish(&mut res, None);
    res
}

/// The 403 block page for a banned address: code `IP_BANNED`.
pub(crate) fn ip_banned(wants_json: bool) -> Response {
    blocked("IP_BANNED", wants_json)
}

/// A login refused for a limit, with `Retry-After: secs`: `429`
/// `{"error":"RATE_LIMITED","reason":CODE,"retry_after":secs}` when
/// `unavailable` is false, else `503` with `"error":"UNAVAILABLE"`; an
/// HTML page when the client does not ask for JSON.
pub(crate) fn login_limited(
    code: &str,
    unavailable: bool,
    secs: u64,
    wants_json: bool,
) -> Response {
    let (status, error) = if unavailable {
        (StatusCode::SERVICE_UNAVAILABLE, "UNAVAILABLE")
    } else {
        (StatusCode::TOO_MANY_REQUESTS, "RATE_LIMITED")
    };
    let mut res = if wants_json {
        let body = json!({ "error": error, "reason": code, "retry_after": secs });
        Json(body).into_response()
    } else {
        let body = format!(
            "<h1>Try again later</h1><p>Login refused: <code>{code}</code>. \
             Retry after {secs} s.</p>"
        );
        Html(page("Try again later", &body)).into_response()
    };
    *res.status_mut() = status;
    set(&mut res, header::RETRY_AFTER, &secs.to_string());
    finish(&mut res, None);
    res
}

/// The 403 block page (or `{"error":"blocked","reason":CODE}`) for a
/// request refused outright with `code`.
pub(crate) fn blocked(code: &str, wants_json: bool) -> Response {
    let mut res = block_403(code, wants_json);
    finish(&mut res, None);
    res
}

fn block_403(code: &str, wants_json: bool) -> Response {
    if wants_json {
        let body = json!({ "error": "blocked", "reason": code });
        return (StatusCode::FORBIDDEN, Json(body)).into_response();
    }
    let body = format!(
        "<h1>Access denied</h1>\
         <p>You don't have permission to access this resource.</p>\
         <p>Reason: <code>{code}</code></p>\
         <p>Reference <span class=\"reference\">{}</span></p>",
        reference(code)
    );
    (StatusCode::FORBIDDEN, Html(page("Access denied", &body))).into_response()
}

fn redirect_login(code: &str) -> Response {
    let mut res = StatusCode::FOUND.into_response();
    set(&mut res, header::LOCATION, &format!("/login?reason={code}"));
    res
}

fn challenge(code: &str) -> Response {
    interstitial(code, "")
}

/// The challenge interstitial (`403`, `cf-mitigated: challenge`, the
/// reason in `x-sessionrange-challenge`), with `solver` (a form and its
/// script, or nothing) in it.
pub(crate) fn interstitial(code: &str, solver: &str) -> Response {
    let body = format!(
        "<div id=\"challenge-stage\" class=\"challenge\" data-reason=\"{code}\">\
         <h1>Checking your browser before accessing the site.</h1>\
         <p>This process is automatic. Please wait a moment.</p>{solver}\
         <noscript>Enable JavaScript and cookies to continue.</noscript></div>"
    );
    let mut res = (StatusCode::FORBIDDEN, Html(page("Just a moment...", &body))).into_response();
    set(&mut res, HeaderName::from_static(CF_MITIGATED), "challenge");
    set(&mut res, HeaderName::from_static(CHALLENGE_HEADER), code);
    res
}

fn rate_limited(code: &str, wants_json: bool, retry_after: Option<u64>, ends: bool) -> Response {
    let secs = retry_after.unwrap_or(1);
    let session = if ends { "revoked" } else { "active" };
    let mut res = if wants_json {
        let body = json!({ "error": "RATE_LIMITED", "reason": code, "retry_after": secs, "session": session });
        Json(body).into_response()
    } else if ends {
        format!("Too Many Requests ({code}). Your session has ended; sign in again.\n")
            .into_response()
    } else {
        format!("Too Many Requests ({code}). Retry after {secs} s.\n").into_response()
    };
    *res.status_mut() = StatusCode::TOO_MANY_REQUESTS;
    set(&mut res, header::RETRY_AFTER, &secs.to_string());
    if ends {
        // Bearer clients have no cookie to lose: tell them the token is dead.
        let value = format!("Bearer error=\"invalid_token\", error_description=\"{code}\"");
        set(&mut res, header::WWW_AUTHENTICATE, &value);
    }
    res
}

/// Adds what every refusal carries: `no-store` and the cookie clearing.
fn finish(res: &mut Response, clear: Option<&str>) {
    set(res, header::CACHE_CONTROL, "no-store");
    if let Some(name) = clear {
        clear_cookie(res, name);
    }
}

/// Adds a `Set-Cookie` that deletes the cookie `name`.
pub(crate) fn clear_cookie(res: &mut Response, name: &str) {
    let cookie = site_cookie(name.to_owned(), "")
        .max_age(cookie::time::Duration::ZERO)
        .expires(cookie::time::OffsetDateTime::UNIX_EPOCH)
        .http_only(true);
    append_set_cookie(res, &set_cookie_value(&cookie.build()));
}

/// A cookie as the site sets them all: `Path=/`, `SameSite=Lax`.
pub(crate) fn site_cookie(name: String, value: impl Into<String>) -> CookieBuilder<'static> {
    Cookie::build((name, value.into()))
        .path("/")
        .same_site(SameSite::Lax)
}

/// The `Set-Cookie` value of `cookie`, attributes in the order the site
/// has always sent: `Path`, `Max-Age`, `Expires`, then `HttpOnly`,
/// `SameSite` and `Secure` (the `cookie` crate writes the flags first).
pub(crate) fn set_cookie_value(cookie: &Cookie<'_>) -> String {
    let mut place = cookie.clone();
    place.set_http_only(None);
    place.set_same_site(None);
    place.set_secure(None);
    let mut value = place.to_string();
    if cookie.http_only() == Some(true) {
        value.push_str("; HttpOnly");
    }
    if let Some(same_site) = cookie.same_site() {
        value.push_str(&format!("; SameSite={same_site}"));
    }
    if cookie.secure() == Some(true) {
        value.push_str("; Secure");
    }
    value
}

/// Appends a `Set-Cookie` of `value`; one that is not a valid header value
/// (a name with a newline) is dropped.
pub(crate) fn append_set_cookie(res: &mut Response, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        res.headers_mut().append(header::SET_COOKIE, v);
    }
}

/// Sets a header; a value that is not a valid header value is dropped.
fn set(res: &mut Response, name: HeaderName, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        res.headers_mut().insert(name, v);
    }
}

/// An id-like reference for the block page, stable per reason code.
fn reference(code: &str) -> String {
    let digest = Sha256::digest(format!("sessionrange/{code}").as_bytes());
    let hex = crate::fingerprint::common::hex(&digest[..8]);
    format!("18.{}.{}", &hex[..8], &hex[8..])
}

fn page(title: &str, body: &str) -> String {
    format!(
        "<!doctype html>\n<html lang=\"en\">\n<head><meta charset=\"utf-8\">\
         <title>{title}</title></head>\n<body>\n{body}\n</body>\n</html>\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::to_bytes;

    const LOGIN: &str = "<form action=\"/login\" method=\"post\">login</form>";

    fn refusal(style: ResponseStyle, reason: Reason) -> Refusal<'static> {
        Refusal {
            style,
            reason,
            wants_json: false,
            retry_after_secs: None,
            clear_cookie: Some("sid"),
            ends_session: true,
            login_html: LOGIN,
        }
    }

    #[tokio::test]
    async fn a_revoking_429_says_the_session_ended_and_a_challenge_429_does_not() {
        let mut r = refusal(ResponseStyle::RateLimit429, Reason::VelocityExceeded);
        r.wants_json = true;
        let ended = refuse(&r);
        assert!(ended.headers().contains_key(header::WWW_AUTHENTICATE));
        assert!(body(ended).await.contains("\"session\":\"revoked\""));
        r.ends_session = false;
        let waiting = refuse(&r);
        assert!(!waiting.headers().contains_key(header::WWW_AUTHENTICATE));
        assert!(body(waiting).await.contains("\"session\":\"active\""));
    }

    async fn body(res: Response) -> String {
        let bytes = to_bytes(res.into_body(), 1 << 20).await.expect("body");
        String::from_utf8(bytes.to_vec()).expect("utf-8")
    }

    fn header<'a>(res: &'a Response, name: &str) -> &'a str {
        res.headers()
            .get(name)
            .map_or("", |v| v.to_str().expect("ascii header"))
    }

    fn assert_common(res: &Response) {
        assert_eq!(header(res, "cache-control"), "no-store");
        assert_eq!(
            header(res, "set-cookie"),
            "sid=; Path=/; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT; HttpOnly; SameSite=Lax"
        );
    }

    #[test]
    fn site_cookies_keep_their_attribute_order() {
        let session = site_cookie("sr_session".to_owned(), "ab").http_only(true);
        assert_eq!(
            set_cookie_value(&session.build()),
            "sr_session=ab; Path=/; HttpOnly; SameSite=Lax"
        );
        let a_year = cookie::time::Duration::days(365);
        let companion = site_cookie("_sr_aid".to_owned(), "v").max_age(a_year);
        assert_eq!(
            set_cookie_value(&companion.build()),
            "_sr_aid=v; Path=/; Max-Age=31536000; SameSite=Lax"
        );
        let secure = site_cookie("s".to_owned(), "v").secure(true).build();
        assert_eq!(
            set_cookie_value(&secure),
            "s=v; Path=/; SameSite=Lax; Secure"
        );
    }

    #[test]
    fn styles_serialize_with_their_config_names() {
        let names = [
            (ResponseStyle::Rfc6750, "rfc6750"),
            (ResponseStyle::Json401, "json-401"),
            (ResponseStyle::Block403, "block-403"),
            (ResponseStyle::RedirectLogin, "redirect-login"),
            (ResponseStyle::SoftLogin, "soft-login"),
            (ResponseStyle::Challenge, "challenge"),
            (ResponseStyle::RateLimit429, "rate-limit-429"),
        ];
        for (style, name) in names {
            let json = serde_json::to_string(&style).expect("serializes");
            assert_eq!(json, format!("\"{name}\""));
            let back: ResponseStyle = serde_json::from_str(&json).expect("parses");
            assert_eq!(back, style);
        }
    }

    #[tokio::test]
    async fn rfc6750_sends_a_bearer_challenge_with_the_code() {
        let res = refuse(&refusal(ResponseStyle::Rfc6750, Reason::AsnDrift));
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
        assert_common(&res);
        assert_eq!(
            header(&res, "www-authenticate"),
            "Bearer realm=\"sessionrange\", error=\"invalid_token\", error_description=\"ASN_DRIFT\""
        );
        assert_eq!(
            body(res).await,
            r#"{"error":"invalid_token","reason":"ASN_DRIFT"}"#
        );
    }

    #[tokio::test]
    async fn json_401_tells_security_from_expiry() {
        let res = refuse(&refusal(ResponseStyle::Json401, Reason::IpDrift));
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
        assert_common(&res);
        assert_eq!(
            body(res).await,
            r#"{"error":"SESSION_INVALIDATED_SECURITY","reason":"IP_DRIFT"}"#
        );
        let res = refuse(&refusal(ResponseStyle::Json401, Reason::IdleTimeout));
        assert_eq!(
            body(res).await,
            r#"{"error":"SESSION_EXPIRED","reason":"IDLE_TIMEOUT"}"#
        );
    }

    #[tokio::test]
    async fn block_403_is_html_or_json_as_asked() {
        let res = refuse(&refusal(ResponseStyle::Block403, Reason::VelocityExceeded));
        assert_eq!(res.status(), StatusCode::FORBIDDEN);
        assert_common(&res);
        assert!(header(&res, "content-type").starts_with("text/html"));
        let html = body(res).await;
        assert!(html.contains("<title>Access denied</title>"));
        assert!(html.contains("VELOCITY_EXCEEDED"));
        assert!(html.contains("Reference <span class=\"reference\">18."));
        let mut r = refusal(ResponseStyle::Block403, Reason::VelocityExceeded);
        r.wants_json = true;
        let res = refuse(&r);
        assert_eq!(res.status(), StatusCode::FORBIDDEN);
        assert_eq!(
            body(res).await,
            r#"{"error":"blocked","reason":"VELOCITY_EXCEEDED"}"#
        );
    }

    #[tokio::test]
    async fn redirect_login_points_at_the_login_form() {
        let res = refuse(&refusal(
            ResponseStyle::RedirectLogin,
            Reason::UserAgentDrift,
        ));
        assert_eq!(res.status(), StatusCode::FOUND);
        assert_common(&res);
        assert_eq!(header(&res, "location"), "/login?reason=USER_AGENT_DRIFT");
    }

    #[tokio::test]
    async fn soft_login_is_a_plain_200_login_form() {
        let res = refuse(&refusal(ResponseStyle::SoftLogin, Reason::GeoDrift));
        assert_eq!(res.status(), StatusCode::OK);
        assert_common(&res);
        assert!(header(&res, "content-type").starts_with("text/html"));
        assert!(res.headers().get("www-authenticate").is_none());
        assert!(res.headers().get(CF_MITIGATED).is_none());
        assert_eq!(body(res).await, LOGIN);
    }

    #[tokio::test]
    async fn challenge_is_always_html_with_marker_headers() {
        let mut r = refusal(ResponseStyle::Challenge, Reason::CompanionCookieMissing);
        r.wants_json = true;
        let res = refuse(&r);
        assert_eq!(res.status(), StatusCode::FORBIDDEN);
        assert_common(&res);
        assert!(header(&res, "content-type").starts_with("text/html"));
        assert_eq!(header(&res, "cf-mitigated"), "challenge");
        assert_eq!(
            header(&res, "x-sessionrange-challenge"),
            "COMPANION_COOKIE_MISSING"
        );
        assert!(body(res).await.contains("<title>Just a moment...</title>"));
    }

    #[tokio::test]
    async fn rate_limit_sends_retry_after() {
        let res = refuse(&refusal(
            ResponseStyle::RateLimit429,
            Reason::VelocityExceeded,
        ));
        assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_common(&res);
        assert_eq!(header(&res, "retry-after"), "1");
        assert!(body(res).await.contains("VELOCITY_EXCEEDED"));
        let mut r = refusal(ResponseStyle::RateLimit429, Reason::VelocityExceeded);
        (r.wants_json, r.retry_after_secs) = (true, Some(7));
        let res = refuse(&r);
        assert_eq!(header(&res, "retry-after"), "7");
        assert_eq!(
            body(res).await,
            r#"{"error":"RATE_LIMITED","reason":"VELOCITY_EXCEEDED","retry_after":7,"session":"revoked"}"#
        );
    }

    #[tokio::test]
    async fn no_cookie_is_cleared_unless_asked() {
        let mut r = refusal(ResponseStyle::Json401, Reason::IpDrift);
        r.clear_cookie = None;
        let res = refuse(&r);
        assert!(res.headers().get("set-cookie").is_none());
        assert_eq!(header(&res, "cache-control"), "no-store");
    }

    #[tokio::test]
    async fn banned_is_403_account_banned() {
        let res = banned(true);
        assert_eq!(res.status(), StatusCode::FORBIDDEN);
        assert_eq!(header(&res, "cache-control"), "no-store");
        assert_eq!(body(res).await, r#"{"error":"ACCOUNT_BANNED"}"#);
        let res = banned(false);
        assert!(header(&res, "content-type").starts_with("text/html"));
        assert!(body(res).await.contains("ACCOUNT_BANNED"));
    }

    #[tokio::test]
    async fn expired_is_401_session_expired_and_clears_the_cookie() {
        let res = expired(Reason::SessionExpired, true, Some("sid"));
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
        assert_common(&res);
        assert_eq!(
            header(&res, "www-authenticate"),
            "Bearer error=\"invalid_token\""
        );
        assert_eq!(
            body(res).await,
            r#"{"error":"SESSION_EXPIRED","reason":"SESSION_EXPIRED"}"#
        );
        let res = expired(Reason::IdleTimeout, false, None);
        assert!(body(res).await.contains("IDLE_TIMEOUT"));
    }

    #[test]
    fn wants_json_reads_accept_and_content_type() {
        let with = |name: &str, value: &str| {
            let mut h = HeaderMap::new();
            h.insert(
                HeaderName::from_bytes(name.as_bytes()).expect("name"),
                HeaderValue::from_str(value).expect("value"),
            );
            wants_json(&h)
        };
        assert!(with("accept", "application/json, text/plain, */*"));
        assert!(with("content-type", "Application/JSON; charset=utf-8"));
        assert!(!with("accept", "*/*"));
        assert!(!with("accept", "text/html,application/xhtml+xml"));
        assert!(!wants_json(&HeaderMap::new()));
    }

    #[test]
    fn an_invalid_cookie_name_is_dropped_not_a_panic() {
        let mut r = refusal(ResponseStyle::Json401, Reason::IpDrift);
        r.clear_cookie = Some("bad\nname");
        let res = refuse(&r);
        assert!(res.headers().get("set-cookie").is_none());
    }
}
