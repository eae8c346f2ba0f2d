//! The JSON API: login, token refresh and revocation, and the protected items.

use std::borrow::Cow;
use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::auth::jwt::AccessClaims;
use crate::auth::refresh::RefreshOutcome;
use crate::clock::Timestamp;
use crate::session::SessionId;
use crate::site::attempts::{
    self, Attempt, LoginRefusal, LoginVia, RefreshOutcome as TraceOutcome,
};
use crate::site::guard::{self, Authorized};
use crate::site::handlers::{PageParam, delay};
use crate::site::login::{self, Credentials};
use crate::site::peer::Peer;
use crate::site::state::{PageForm, TargetState, random_hex};
use crate::site::stores::Stored;
use crate::site::{challenge, respond};
use crate::verdict::{Reason, Verdict};

type St = State<Arc<TargetState>>;

fn error(status: StatusCode, code: &str, detail: Option<&str>) -> Response {
    let mut body = json!({ "error": code });
    if let Some(d) = detail {
        body["reason"] = json!(d);
    }
    (status, [(header::CACHE_CONTROL, "no-store")], Json(body)).into_response()
}

/// Parses a JSON or form body; anything else is a 400.
fn parse<T: DeserializeOwned>(headers: &HeaderMap, body: &Bytes) -> Result<T, Response> {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let parsed = if ct.starts_with("application/x-www-form-urlencoded") {
        serde_urlencoded::from_bytes(body).map_err(|e| e.to_string())
    } else {
        serde_json::from_slice(body).map_err(|e| e.to_string())
    };
    parsed.map_err(|e| error(StatusCode::BAD_REQUEST, "invalid_request", Some(&e)))
}

/// The tokens a login or refresh returns.
#[derive(Debug, Serialize)]
struct TokenResponse {
    access_token: String,
    token_type: &'static str,
    expires_in: u64,
    refresh_token: String,
}

fn tokens(
    st: &TargetState,
    sid: SessionId,
    account: &str,
    refresh: String,
    now: Timestamp,
) -> Response {
    let ttl = st.config.tokens.access_ttl.as_secs();
    let claims = AccessClaims {
        sub: account.to_owned(),
        sid: sid.to_string(),
        jti: random_hex(&mut rand::rng(), 16),
        iat: now.as_secs(),
        exp: now.as_secs() + ttl,
    };
    let access_token = st.jwt.read().issue(&claims);
    let body = TokenResponse {
        access_token,
        token_type: "Bearer",
        expires_in: ttl,
        refresh_token: refresh,
    };
    ([(header::CACHE_CONTROL, "no-store")], Json(body)).into_response()
}

/// `GET /api/login/challenge`: a proof-of-work challenge for the API login.
pub(crate) async fn challenge(State(st): St) -> Response {
    if st.config.login.pow_bits == 0 {
        return error(
            StatusCode::NOT_FOUND,
            "not_found",
            Some("proof of work is off"),
        );
    }
    let ch = st.pow_challenge(st.clock.now());
    Json(json!({ "challenge": ch, "bits": st.config.login.pow_bits })).into_response()
}

/// `POST /api/login`: JSON credentials in, a JWT access token and a
/// refresh token out. Every attempt is traced with its outcome.
pub(crate) async fn login(State(st): St, peer: Peer, headers: HeaderMap, body: Bytes) -> Response {
    let arrived = st.clock.now();
    let who = guard::client(&st, &peer, &headers);
    let attempt = Attempt::new(&st, LoginVia::Api, who.ip);
    let creds: Credentials = match parse(&headers, &body) {
        Ok(c) => c,
        Err(r) => {
            attempt.refused(None, LoginRefusal::Malformed);
            return r;
        }
    };
    let pre = if !st.config.auth.bearer() {
        Err(LoginRefusal::AuthMode)
    } else if !challenge::cleared_for_login(&st, &peer, &who, &headers, arrived) {
        Err(LoginRefusal::ClearanceRequired)
    } else {
        login::check_companions(&st, &headers)
    };
    if let Err(e) = pre {
        attempt.refused(Some(&creds.username), e);
        return respond::blocked(e.code(), true);
    }
    delay(&st).await;
    let now = st.clock.now();
    let new = login::NewSession {
        peer: &peer,
        who: &who,
        headers: &headers,
        arrived,
    };
    // The key is checked first, so that a store that cannot give it
    // leaves no session behind.
    if let Err(e) = st.current_signing_key().await {
        attempt.refused(Some(&creds.username), LoginRefusal::StoreUnavailable);
        st.metrics.store_unavailable();
        return respond::store_unavailable(&e.0, true);
    }
    match login::complete(&attempt, &new, &creds, false, now).await {
        Ok((sid, _)) => {
            let refresh = random_hex(&mut rand::rng(), 32);
            match st.refresh_start(sid, &creds.username, &refresh, now).await {
                Ok(()) => tokens(&st, sid, &creds.username, refresh, now),
                Err(e) => {
                    guard::unjudged(&st, &peer, &headers, Cow::Borrowed("/api/login"), &e, true)
                }
            }
        }
        Err(e) => match (e.reason, e.retry_after) {
            (LoginRefusal::AccountBanned, _) => {
                error(StatusCode::FORBIDDEN, "ACCOUNT_BANNED", None)
            }
            (r, Some(secs)) => login::limited(r, secs, true),
            (r, None) => error(StatusCode::UNAUTHORIZED, login::api_code(r), None),
        },
    }
}

/// A refresh or revocation request.
#[derive(Debug, Deserialize)]
struct TokenRequest {
    #[serde(default)]
    refresh_token: Option<String>,
    #[serde(default)]
    token: Option<String>,
}

/// `POST /api/token/refresh`: rotates the refresh token. Reusing a rotated
/// token outside the overlap window revokes the whole family and the session.
pub(crate) async fn refresh(
    State(st): St,
    peer: Peer,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let req: TokenRequest = match parse(&headers, &body) {
        Ok(r) => r,
        Err(r) => return r,
    };
    let Some(presented) = req.refresh_token.or(req.token) else {
        return error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            Some("refresh_token is required"),
        );
    };
    match judged_refresh(&st, &peer, &headers, &presented).await {
        Ok(r) => r,
        Err(e) => guard::unjudged(&st, &peer, &headers, Cow::Borrowed(REFRESH), &e, true),
    }
}

/// The refresh route, as traced.
const REFRESH: &str = "/api/token/refresh";

/// The refresh is a request in the session's context: the engine judges
/// it first, so a challenge refuses this refresh without burning the token.
async fn judged_refresh(
    st: &Arc<TargetState>,
    peer: &Peer,
    headers: &HeaderMap,
    presented: &str,
) -> Stored<Response> {
    let now = st.clock.now();
    let mut live = st.refresh_session_of(presented).await?;
    if let Some(s) = live {
        live = st.refresh_is_live(s, now).await?.then_some(s);
    }
    if let Some(session) = live {
        let who = guard::client(st, peer, headers);
        let ctx = guard::context(st, &who, peer.tls.as_deref(), headers);
        let d = st.decide(session, Arc::new(ctx), now).await?;
        st.record(&d);
        if d.verdict != Verdict::Allow {
            if d.verdict.is_terminal() {
                st.refresh_revoke_session(session).await?;
            }
            attempts::refreshed(st, Some(session), TraceOutcome::Refused);
            let retry = guard::retry_after(&d.fired);
            return Ok(guard::refusal(st, d.verdict, true, headers, retry));
        }
        guard::release(st, session);
    }
    rotate(st, presented, now).await
}

/// Rotates `presented` and answers with the new pair or why not.
async fn rotate(st: &TargetState, presented: &str, now: Timestamp) -> Stored<Response> {
    let fresh = random_hex(&mut rand::rng(), 32);
    let outcome = st.refresh_rotate(presented, &fresh, now).await?;
    if outcome.is_accepted() {
        st.current_signing_key().await?;
    }
    Ok(match outcome {
        RefreshOutcome::Rotated { session, account } => {
            attempts::refreshed(st, Some(session), TraceOutcome::Rotated);
            tokens(st, session, &account, fresh, now)
        }
        RefreshOutcome::Overlap { session, account } => {
            attempts::refreshed(st, Some(session), TraceOutcome::Overlap);
            tokens(st, session, &account, fresh, now)
        }
        RefreshOutcome::Reuse { session, .. } => {
            let d = st.revoke(session, Reason::RefreshTokenReuse, now).await?;
            st.record(&d);
            attempts::refreshed(st, Some(session), TraceOutcome::Reused);
            error(
                StatusCode::FORBIDDEN,
                "invalid_grant",
                Some(Reason::RefreshTokenReuse.code()),
            )
        }
        other => {
            attempts::refreshed(st, None, TraceOutcome::Invalid);
            error(
                StatusCode::BAD_REQUEST,
                "invalid_grant",
                Some(outcome_code(&other)),
            )
        }
    })
}

fn outcome_code(o: &RefreshOutcome) -> &'static str {
    match o {
        RefreshOutcome::Revoked => "revoked",
        RefreshOutcome::Expired => "expired",
        _ => "unknown",
    }
}

/// `POST /api/token/revoke`: RFC 7009. Answers 200 even for unknown tokens.
pub(crate) async fn revoke(State(st): St, peer: Peer, headers: HeaderMap, body: Bytes) -> Response {
    let req: TokenRequest = match parse(&headers, &body) {
        Ok(r) => r,
        Err(r) => return r,
    };
    let Some(token) = req.token.or(req.refresh_token) else {
        return error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            Some("token is required"),
        );
    };
    match revoke_token(&st, &token).await {
        Ok(()) => (StatusCode::OK, [(header::CACHE_CONTROL, "no-store")]).into_response(),
        Err(e) => guard::unjudged(
            &st,
            &peer,
            &headers,
            Cow::Borrowed("/api/token/revoke"),
            &e,
            true,
        ),
    }
}

/// Revokes a refresh token's family and session, or denies an access token.
async fn revoke_token(st: &TargetState, token: &str) -> Stored<()> {
    let now = st.clock.now();
    if let Some(session) = st.refresh_revoke_token(token).await? {
        let d = st.revoke(session, Reason::LoggedOut, now).await?;
        st.record(&d);
        return Ok(());
    }
    let verified = st.jwt.read().verify(token, now, st.config.tokens.skew);
    if let Ok(claims) = verified {
        let exp = Timestamp::from_secs(claims.exp).plus(st.config.tokens.skew);
        st.deny_jti(&claims.jti, exp, now).await?;
    }
    Ok(())
}

/// `GET /api/v1/items?page=N`: a JSON page of records.
pub(crate) async fn items(State(st): St, PageParam(page): PageParam, auth: Authorized) -> Response {
    match st.serve_page(auth.sid, page, PageForm::Json) {
        Some(page) => ([(header::CONTENT_TYPE, "application/json")], page).into_response(),
        None => error(StatusCode::NOT_FOUND, "not_found", Some("no such page")),
    }
}

/// `GET /api/v1/items/{id}`: one record.
pub(crate) async fn item(State(st): St, Path(id): Path<String>, auth: Authorized) -> Response {
    match id.parse::<u64>().ok().and_then(|id| st.dataset.record(id)) {
        Some(record) => {
            st.served(auth.sid, record.id..=record.id);
            Json(record).into_response()
        }
        None => error(StatusCode::NOT_FOUND, "not_found", Some("no such item")),
    }
}
