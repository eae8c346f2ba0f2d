//! The target's trace lines other than decisions: login attempts and flows, refused requests, refresh exchanges, timeline events.
//!
//! Decisions say why a session died; these lines say why a client never
//! got one, or why a request never reached the engine: every login
//! attempt (form and API) with its outcome, and every request refused
//! for missing credentials, a bad bearer token, direct access or a
//! banned exit. With them the grade can name the cause of every lost
//! record. The site writes them (`site::attempts`); the grade
//! reads them.

use std::borrow::Cow;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::clock::Timestamp;
use crate::session::SessionId;

/// The `type` of a [`LoginAttempt`] line.
pub const LOGIN_ATTEMPT: &str = "login_attempt";
/// The `type` of a [`RefusedRequest`] line.
pub const REFUSED: &str = "refused";

/// Which login a client used.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LoginVia {
    /// `POST /login`, the HTML form.
    Form,
    /// `POST /api/login`, JSON.
    Api,
}

/// How a login attempt ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AttemptOutcome {
    /// A session was issued.
    Ok,
    /// No session: see the reason.
    Refused,
}

/// Why a login was refused. Serialized as the stable code, such as
/// `"BAD_CREDENTIALS"`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum LoginRefusal {
    /// Unknown user or wrong password.
    BadCredentials,
    /// The form's CSRF field and cookie were missing or did not match.
    CsrfInvalid,
    /// Proof of work is on and no valid solution came.
    PowInvalid,
    /// TOTP is on and no code came.
    TotpMissing,
    /// TOTP is on and the code was wrong.
    TotpInvalid,
    /// The account is banned.
    AccountBanned,
    /// `[target.companions] at_login`: a companion cookie the landing page sets did not come.
    CompanionCookieMissing,
    /// `[target.companions] at_login`: a companion cookie came with a value the target never set.
    CompanionCookieAltered,
    /// This login gives credentials the scenario does not accept
    /// (the form under `auth = "jwt"`, the API under `auth = "cookie"`).
    AuthMode,
    /// The body could not be read as a login.
    Malformed,
    /// The address or the account attempted logins faster than the login
    /// velocity rules allow (`429` with `Retry-After`).
    LoginVelocityExceeded,
    /// The session store is full of live sessions (`503` with `Retry-After`).
    SessionStoreFull,
    /// `[target.clearance] at_login`: no clearance of the client's own
    /// came (the form answers with the challenge page).
    ClearanceRequired,
    /// The shared session store could not be reached (`503`): the login
    /// was not judged.
    StoreUnavailable,
}

impl LoginRefusal {
    /// The stable code, as serialized.
    pub fn code(self) -> &'static str {
        match self {
            Self::BadCredentials => "BAD_CREDENTIALS",
            Self::CsrfInvalid => "CSRF_INVALID",
            Self::PowInvalid => "POW_INVALID",
            Self::TotpMissing => "TOTP_MISSING",
            Self::TotpInvalid => "TOTP_INVALID",
            Self::AccountBanned => "ACCOUNT_BANNED",
            Self::CompanionCookieMissing => "COMPANION_COOKIE_MISSING",
            Self::CompanionCookieAltered => "COMPANION_COOKIE_ALTERED",
            Self::AuthMode => "AUTH_MODE",
            Self::Malformed => "MALFORMED",
            Self::LoginVelocityExceeded => "LOGIN_VELOCITY_EXCEEDED",
            Self::SessionStoreFull => "SESSION_STORE_FULL",
            Self::ClearanceRequired => "CLEARANCE_REQUIRED",
            Self::StoreUnavailable => "STORE_UNAVAILABLE",
        }
    }
}

/// One login attempt and its outcome: a trace line of type `login_attempt`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoginAttempt {
    /// Always [`LOGIN_ATTEMPT`].
    #[serde(rename = "type")]
    pub kind: Cow<'static, str>,
    /// When the target answered.
    pub at: Timestamp,
    /// Form or API.
    pub via: LoginVia,
    /// The account named, when the name is one of the scenario's accounts.
    pub account: Option<String>,
    /// The client's address as the target judged it (the exit, behind the pool).
    pub ip: IpAddr,
    /// Whether a session came out.
    pub outcome: AttemptOutcome,
    /// Why not, when refused.
    pub reason: Option<LoginRefusal>,
    /// The session issued, when one was.
    pub session: Option<SessionId>,
}

/// Why a request was refused before the engine judged it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RefusalReason {
    /// A protected route with no usable session cookie or bearer token.
    LoginRequired,
    /// A bearer token that is expired, forged, malformed or revoked.
    TokenInvalid,
    /// `[target] direct = "refuse"`: the request did not come through the pool.
    DirectAccess,
    /// The client's address (or exit) is banned.
    IpBanned,
    /// The route belongs to a surface the scenario leaves out
    /// (`[target] surfaces`): the JSON API of an HTML-only site, say.
    SurfaceAbsent,
    /// `[target.clearance] at_login`: the login form was asked for without
    /// a clearance, and the challenge page came instead.
    ClearanceRequired,
    /// The shared session store could not be reached: the request was
    /// answered `503` without being judged.
    StoreUnavailable,
}

impl RefusalReason {
    /// The stable code, as serialized.
    pub fn code(self) -> &'static str {
        match self {
            Self::LoginRequired => "LOGIN_REQUIRED",
            Self::TokenInvalid => "TOKEN_INVALID",
            Self::DirectAccess => "DIRECT_ACCESS",
            Self::IpBanned => "IP_BANNED",
            Self::SurfaceAbsent => "SURFACE_ABSENT",
            Self::ClearanceRequired => "CLEARANCE_REQUIRED",
            Self::StoreUnavailable => "STORE_UNAVAILABLE",
        }
    }
}

/// A request refused before the engine decided: a trace line of type `refused`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefusedRequest {
    /// Always [`REFUSED`].
    #[serde(rename = "type")]
    pub kind: Cow<'static, str>,
    /// When the target answered.
    pub at: Timestamp,
    /// The route as the router names it, such as `/api/v1/items` or
    /// `/api/v1/items/{id}` (the request path when no route matched).
    pub route: Cow<'static, str>,
    /// The client's address as the target judged it.
    pub ip: IpAddr,
    /// Why.
    pub reason: RefusalReason,
}

/// The `type` of a [`ChallengeAnswer`] line.
pub const CHALLENGE: &str = "challenge";

/// An answer posted to the JavaScript challenge: a trace line of type
/// `challenge`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChallengeAnswer {
    /// Always [`CHALLENGE`].
    #[serde(rename = "type")]
    pub kind: Cow<'static, str>,
    /// When the target answered.
    pub at: Timestamp,
    /// The client's address as the target judged it.
    pub ip: IpAddr,
    /// Who solved it, when it was solved; `None` when the answer was
    /// wrong, stale or spent.
    pub solved_by: Option<crate::auth::clearance::Solver>,
}

/// The `type` of a [`TokenRefresh`] line.
pub const TOKEN_REFRESH: &str = "token_refresh";

/// How a refresh ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RefreshOutcome {
    /// The token was rotated: a new pair was issued.
    Rotated,
    /// A just-rotated token came back inside the overlap window: the
    /// same new pair again.
    Overlap,
    /// A rotated token came back: the family and the session are revoked.
    Reused,
    /// The engine refused the refresh as a request of its session.
    Refused,
    /// The token was revoked, expired or never issued.
    Invalid,
}

/// One refresh-token exchange: a trace line of type `token_refresh`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenRefresh {
    /// Always [`TOKEN_REFRESH`].
    #[serde(rename = "type")]
    pub kind: Cow<'static, str>,
    /// When the target answered.
    pub at: Timestamp,
    /// The session of the token, when it is known.
    pub session: Option<SessionId>,
    /// How it ended.
    pub outcome: RefreshOutcome,
}

/// A trace line for a finished login flow: how long the client spent
/// logging in, from its first login-flow request to the new session.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoginFlow {
    /// Always `"login_flow"`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The session the flow ended with.
    pub session: SessionId,
    /// The first login-flow request (login page, challenge, or the login itself).
    pub started: Timestamp,
    /// When the session was issued.
    pub at: Timestamp,
}

/// A scripted target-side event, as the runner traces it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TimelineFired {
    /// Always `"timeline"`.
    #[serde(rename = "type")]
    pub kind: String,
    /// When it fired.
    pub at: Timestamp,
    /// What it did, as written in the scenario.
    pub action: String,
    /// Details, such as the account or the sessions affected.
    pub detail: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_serialize_with_their_type_and_stable_codes() {
        let line = LoginAttempt {
            kind: Cow::Borrowed(LOGIN_ATTEMPT),
            at: Timestamp::from_millis(1_500),
            via: LoginVia::Form,
            account: None,
            ip: "127.0.1.20".parse().expect("ip"),
            outcome: AttemptOutcome::Refused,
            reason: Some(LoginRefusal::CsrfInvalid),
            session: None,
        };
        let text = serde_json::to_string(&line).expect("json");
        assert_eq!(
            text,
            r#"{"type":"login_attempt","at":1500,"via":"form","account":null,"ip":"127.0.1.20","outcome":"refused","reason":"CSRF_INVALID","session":null}"#
        );
        let back: LoginAttempt = serde_json::from_str(&text).expect("parses back");
        assert_eq!(back, line);
        for r in [
            LoginRefusal::TotpMissing,
            LoginRefusal::CompanionCookieAltered,
            LoginRefusal::LoginVelocityExceeded,
            LoginRefusal::SessionStoreFull,
        ] {
            assert_eq!(
                serde_json::to_value(r).expect("json"),
                serde_json::json!(r.code())
            );
        }
        let v = serde_json::to_value(RefusalReason::DirectAccess).expect("json");
        assert_eq!(v, "DIRECT_ACCESS");
    }
}
