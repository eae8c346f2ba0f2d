//! Reading the answer to a data request: a page of JSON, or which kind of refusal it is.
//!
//! The target dresses refusals in the styles real sites use (README, "How
//! refusals look"). This is the one place that tells them apart, from the
//! status, the headers and the body alone, so the rest of the client works
//! with an [`Outcome`] and never looks at raw responses.

use std::time::Duration;

use reqwest::header::HeaderMap;
use serde_json::Value;

use crate::site::guard::SESSION_COOKIE;
use crate::verdict::Reason;

/// How a session-ending refusal looked, named after the target's styles.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Style {
    /// `401` with `WWW-Authenticate: Bearer error="invalid_token"`.
    Rfc6750,
    /// `401` with `{"error":"SESSION_INVALIDATED_SECURITY"}`.
    Json401,
    /// `403` block page or `{"error":"blocked"}`.
    Block403,
    /// `302`/`303` to `/login`.
    RedirectLogin,
    /// `200` whose body is the login form.
    SoftLogin,
    /// `401` `SESSION_EXPIRED`: a natural end, not an invalidation.
    Expired,
    /// `403 invalid_grant` `REFRESH_TOKEN_REUSE` on a refresh.
    RefreshReuse,
    /// `429` that also clears the session cookie: a revocation dressed as
    /// a rate limit (or, for bearer tokens, a `429` that does not go away).
    RateLimit429,
}

impl Style {
    /// The name used in the summary, as the scenario files spell styles.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Rfc6750 => "rfc6750",
            Self::Json401 => "json-401",
            Self::Block403 => "block-403",
            Self::RedirectLogin => "redirect-login",
            Self::SoftLogin => "soft-login",
            Self::Expired => "expired",
            Self::RefreshReuse => "refresh-reuse",
            Self::RateLimit429 => "rate-limit-429",
        }
    }
}

/// What one answer to a data request means for the client.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Outcome {
    /// `200` with a JSON body: the data.
    Data(String),
    /// The session is over. `security` is false for natural expiry and
    /// explicit revocations (logout, an operator), whose reason says so.
    Ended {
        /// How the refusal looked.
        style: Style,
        /// The reason code, when the refusal names one.
        reason: Option<String>,
        /// Whether it counts as a security invalidation.
        security: bool,
    },
    /// The bearer token expired: refresh it and try again.
    TokenExpired,
    /// The request carried no credential the route accepts.
    LoginRequired,
    /// A challenge interstitial: this request is refused, the session lives.
    Challenge(Option<String>),
    /// Too fast: wait this long.
    RateLimited(Duration),
    /// The account is banned.
    AccountBanned,
    /// The exit's address is banned.
    ExitBanned,
    /// The proxy itself failed: `407`, `408`, `502`, `503`, `504`.
    ProxyFailure(u16),
    /// `404`: no such page.
    NotFound,
    /// Anything else.
    Unexpected(u16),
}

/// Reads one answer. `body` is the whole body as text.
pub(crate) fn classify(status: u16, headers: &HeaderMap, body: &str) -> Outcome {
    let json: Option<Value> = serde_json::from_str(body).ok();
    let field = |name: &str| {
        json.as_ref()
            .and_then(|v| v.get(name))
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    match status {
        200 if is_login_form(body) => ended(Style::SoftLogin, None),
        200 if json.is_some() => Outcome::Data(body.to_owned()),
        301..=303 | 307 | 308 => redirect(headers),
        401 => unauthorized(headers, field("error").as_deref(), field("reason"), body),
        403 => forbidden(headers, field("error").as_deref(), field("reason"), body),
        404 => Outcome::NotFound,
        429 if clears_session(headers)
            || field("session").as_deref() == Some("revoked")
            || header(headers, "www-authenticate").is_some_and(|v| v.contains("invalid_token")) =>
        {
            ended(Style::RateLimit429, field("reason"))
        }
        429 => Outcome::RateLimited(retry_after(headers)),
        407 | 408 | 502..=504 => Outcome::ProxyFailure(status),
        other => Outcome::Unexpected(other),
    }
}

/// Whether `body` is the target's login form, served where data was expected.
pub(crate) fn is_login_form(body: &str) -> bool {
    body.contains("id=\"login-form\"")
}

/// Whether a reason code is a security invalidation. Unknown codes count
/// as security: a client cannot tell, so it is careful.
pub(crate) fn is_security(code: Option<&str>) -> bool {
    code.and_then(|c| serde_json::from_value::<Reason>(Value::from(c)).ok())
        .is_none_or(Reason::is_security)
}

/// Whether the answer deletes the session cookie: the target does so
/// whenever a refusal ends a cookie session, whatever its style.
fn clears_session(headers: &HeaderMap) -> bool {
    let prefix = format!("{SESSION_COOKIE}=;");
    headers
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|c| c.starts_with(&prefix))
}

pub(crate) fn ended(style: Style, reason: Option<String>) -> Outcome {
    let security = style != Style::Expired && is_security(reason.as_deref());
    Outcome::Ended {
        style,
        reason,
        security,
    }
}

fn redirect(headers: &HeaderMap) -> Outcome {
    let location = header(headers, "location").unwrap_or_default();
    if !location.contains("/login") {
        return Outcome::Unexpected(302);
    }
    let reason = location
        .split_once("reason=")
        .map(|(_, r)| r.split('&').next().unwrap_or(r).to_owned());
    ended(Style::RedirectLogin, reason)
}

fn unauthorized(
    headers: &HeaderMap,
    error: Option<&str>,
    reason: Option<String>,
    body: &str,
) -> Outcome {
    let www = header(headers, "www-authenticate").unwrap_or_default();
    let description = auth_param(&www, "error_description");
    match error {
        Some("SESSION_EXPIRED") => ended(Style::Expired, reason),
        Some("SESSION_INVALIDATED_SECURITY") => ended(Style::Json401, reason),
        Some("login_required") => Outcome::LoginRequired,
        _ if body.contains("SESSION_EXPIRED") => ended(Style::Expired, reason),
        _ if auth_param(&www, "error").as_deref() == Some("invalid_token") => {
            bearer_refusal(description.or(reason))
        }
        Some("invalid_token") => bearer_refusal(reason),
        _ if www.to_ascii_lowercase().starts_with("bearer") => Outcome::LoginRequired,
        _ => Outcome::Unexpected(401),
    }
}

/// An RFC 6750 `invalid_token`: an expired JWT, a dead session, or a token
/// the target no longer knows.
fn bearer_refusal(code: Option<String>) -> Outcome {
    match code.as_deref() {
        Some("expired") => Outcome::TokenExpired,
        // JWT-level codes: the token is unusable, not the session judged.
        Some(
            "revoked" | "malformed" | "bad_signature" | "unknown_key" | "unsupported_algorithm",
        ) => ended(Style::Expired, code),
        _ => ended(Style::Rfc6750, code),
    }
}

fn forbidden(
    headers: &HeaderMap,
    error: Option<&str>,
    reason: Option<String>,
    body: &str,
) -> Outcome {
    let challenge = header(headers, "x-sessionrange-challenge");
    if challenge.is_some() || header(headers, "cf-mitigated").as_deref() == Some("challenge") {
        return Outcome::Challenge(challenge);
    }
    let code = reason.or_else(|| html_code(body));
    if error == Some("ACCOUNT_BANNED") || body.contains("ACCOUNT_BANNED") {
        return Outcome::AccountBanned;
    }
    if code.as_deref() == Some("IP_BANNED") {
        return Outcome::ExitBanned;
    }
    if error == Some("invalid_grant") {
        return ended(Style::RefreshReuse, code);
    }
    if error == Some("blocked") || body.contains("Access denied") {
        return ended(Style::Block403, code);
    }
    Outcome::Unexpected(403)
}

/// The reason code of an HTML block page: its first `<code>` element.
fn html_code(body: &str) -> Option<String> {
    let start = body.find("<code>")? + "<code>".len();
    let len = body[start..].find("</code>")?;
    Some(body[start..start + len].to_owned())
}

fn retry_after(headers: &HeaderMap) -> Duration {
    let secs = header(headers, "retry-after").and_then(|v| v.trim().parse::<u64>().ok());
    Duration::from_secs(secs.unwrap_or(1).clamp(1, 300))
}

fn header(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// The value of `name="value"` (or `name=value`) in an auth challenge.
fn auth_param(challenge: &str, name: &str) -> Option<String> {
    let mut rest = challenge;
    while let Some(at) = rest.find(name) {
        let before = rest[..at].chars().next_back();
        let after = &rest[at + name.len()..];
        rest = after;
        if before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_') {
            continue;
        }
        let Some(value) = after.trim_start().strip_prefix('=') else {
            continue;
        };
        let value = value.trim_start();
        return Some(match value.strip_prefix('"') {
            Some(quoted) => quoted.split('"').next().unwrap_or("").to_owned(),
            None => value.split([',', ' ']).next().unwrap_or("").to_owned(),
        });
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::{HeaderName, HeaderValue};

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (n, v) in pairs {
            h.insert(
                HeaderName::from_bytes(n.as_bytes()).expect("name"),
                HeaderValue::from_str(v).expect("value"),
            );
        }
        h
    }

    fn security(style: Style, reason: &str) -> Outcome {
        Outcome::Ended {
            style,
            reason: Some(reason.to_owned()),
            security: true,
        }
    }

    #[test]
    fn a_json_page_is_data_and_a_login_form_is_a_soft_logout() {
        let page = r#"{"items":[],"page":1,"pages":1,"total":0,"next":null}"#;
        assert_eq!(
            classify(200, &HeaderMap::new(), page),
            Outcome::Data(page.to_owned())
        );
        let form = "<form id=\"login-form\" method=\"post\">";
        assert_eq!(
            classify(200, &HeaderMap::new(), form),
            Outcome::Ended {
                style: Style::SoftLogin,
                reason: None,
                security: true
            }
        );
        assert_eq!(
            classify(200, &HeaderMap::new(), "<p>hi</p>"),
            Outcome::Unexpected(200)
        );
    }

    #[test]
    fn rfc6750_tells_expired_tokens_from_dead_sessions() {
        let www = |d: &str| {
            headers(&[(
                "www-authenticate",
                &format!(
                    "Bearer realm=\"sessionrange\", error=\"invalid_token\", error_description=\"{d}\""
                ),
            )])
        };
        let body = r#"{"error":"invalid_token","reason":"ASN_DRIFT"}"#;
        assert_eq!(
            classify(401, &www("ASN_DRIFT"), body),
            security(Style::Rfc6750, "ASN_DRIFT")
        );
        assert_eq!(
            classify(
                401,
                &www("expired"),
                r#"{"error":"invalid_token","reason":"expired"}"#
            ),
            Outcome::TokenExpired
        );
        let revoked = classify(401, &www("SESSION_REVOKED"), "");
        assert!(matches!(
            revoked,
            Outcome::Ended {
                security: false,
                ..
            }
        ));
    }

    #[test]
    fn json_401_and_expiry_are_read_from_the_body() {
        let h = headers(&[("www-authenticate", "Bearer error=\"invalid_token\"")]);
        let sec = r#"{"error":"SESSION_INVALIDATED_SECURITY","reason":"GEO_DRIFT"}"#;
        assert_eq!(
            classify(401, &HeaderMap::new(), sec),
            security(Style::Json401, "GEO_DRIFT")
        );
        let exp = r#"{"error":"SESSION_EXPIRED","reason":"IDLE_TIMEOUT"}"#;
        assert_eq!(
            classify(401, &h, exp),
            Outcome::Ended {
                style: Style::Expired,
                reason: Some("IDLE_TIMEOUT".into()),
                security: false
            }
        );
        let login = headers(&[("www-authenticate", "Bearer realm=\"sessionrange\"")]);
        assert_eq!(
            classify(401, &login, r#"{"error":"login_required"}"#),
            Outcome::LoginRequired
        );
    }

    #[test]
    fn forbidden_answers_are_told_apart() {
        let none = HeaderMap::new();
        let challenge = headers(&[
            ("cf-mitigated", "challenge"),
            ("x-sessionrange-challenge", "COMPANION_COOKIE_MISSING"),
        ]);
        assert_eq!(
            classify(403, &challenge, "<html>"),
            Outcome::Challenge(Some("COMPANION_COOKIE_MISSING".into()))
        );
        assert_eq!(
            classify(403, &none, r#"{"error":"ACCOUNT_BANNED"}"#),
            Outcome::AccountBanned
        );
        assert_eq!(
            classify(403, &none, "<p>Error code: <code>ACCOUNT_BANNED</code></p>"),
            Outcome::AccountBanned
        );
        assert_eq!(
            classify(403, &none, r#"{"error":"blocked","reason":"IP_BANNED"}"#),
            Outcome::ExitBanned
        );
        assert_eq!(
            classify(
                403,
                &none,
                "<h1>Access denied</h1><p>Reason: <code>IP_BANNED</code>"
            ),
            Outcome::ExitBanned
        );
        assert_eq!(
            classify(403, &none, r#"{"error":"blocked","reason":"ASN_DRIFT"}"#),
            security(Style::Block403, "ASN_DRIFT")
        );
        assert_eq!(
            classify(
                403,
                &none,
                "<h1>Access denied</h1><p>Reason: <code>GEO_DRIFT</code>"
            ),
            security(Style::Block403, "GEO_DRIFT")
        );
        let reuse = r#"{"error":"invalid_grant","reason":"REFRESH_TOKEN_REUSE"}"#;
        assert_eq!(
            classify(403, &none, reuse),
            security(Style::RefreshReuse, "REFRESH_TOKEN_REUSE")
        );
    }

    #[test]
    fn redirects_rate_limits_and_proxy_errors() {
        let to = headers(&[("location", "/login?reason=USER_AGENT_DRIFT")]);
        assert_eq!(
            classify(302, &to, ""),
            security(Style::RedirectLogin, "USER_AGENT_DRIFT")
        );
        let elsewhere = headers(&[("location", "/account")]);
        assert_eq!(classify(303, &elsewhere, ""), Outcome::Unexpected(302));
        let slow = headers(&[("retry-after", "7")]);
        assert_eq!(
            classify(429, &slow, ""),
            Outcome::RateLimited(Duration::from_secs(7))
        );
        assert_eq!(
            classify(429, &HeaderMap::new(), ""),
            Outcome::RateLimited(Duration::from_secs(1))
        );
        let revoked = headers(&[
            ("retry-after", "1"),
            ("set-cookie", "sr_session=; Path=/; Max-Age=0; HttpOnly"),
        ]);
        let body = r#"{"error":"RATE_LIMITED","reason":"VELOCITY_EXCEEDED","retry_after":1}"#;
        assert_eq!(
            classify(429, &revoked, body),
            security(Style::RateLimit429, "VELOCITY_EXCEEDED")
        );
        // A bearer client has no cookie to lose: the body and header say it.
        let bearer = r#"{"error":"RATE_LIMITED","reason":"VELOCITY_EXCEEDED","retry_after":1,"session":"revoked"}"#;
        assert_eq!(
            classify(429, &HeaderMap::new(), bearer),
            security(Style::RateLimit429, "VELOCITY_EXCEEDED")
        );
        let dead = headers(&[("www-authenticate", "Bearer error=\"invalid_token\"")]);
        assert!(matches!(
            classify(429, &dead, ""),
            Outcome::Ended {
                style: Style::RateLimit429,
                ..
            }
        ));
        for status in [407, 408, 502, 503, 504] {
            assert_eq!(
                classify(status, &HeaderMap::new(), ""),
                Outcome::ProxyFailure(status)
            );
        }
        assert_eq!(classify(404, &HeaderMap::new(), "{}"), Outcome::NotFound);
        assert_eq!(
            classify(500, &HeaderMap::new(), ""),
            Outcome::Unexpected(500)
        );
    }

    #[test]
    fn auth_params_are_found_quoted_or_bare() {
        let c = "Bearer realm=\"x\", error=\"invalid_token\", error_description=\"ASN_DRIFT\"";
        assert_eq!(auth_param(c, "error").as_deref(), Some("invalid_token"));
        assert_eq!(
            auth_param(c, "error_description").as_deref(),
            Some("ASN_DRIFT")
        );
        assert_eq!(
            auth_param("Bearer error=bare, x=1", "error").as_deref(),
            Some("bare")
        );
        assert_eq!(auth_param("Bearer realm=\"x\"", "error"), None);
    }

    #[test]
    fn unknown_reasons_count_as_security() {
        assert!(is_security(None));
        assert!(is_security(Some("SOMETHING_NEW")));
        assert!(is_security(Some("ASN_DRIFT")));
        assert!(!is_security(Some("LOGGED_OUT")));
        assert!(!is_security(Some("MAX_USES")));
    }
}
