//! The gate every protected request passes: credentials, context, the engine's verdict.

use std::borrow::Cow;
use std::sync::Arc;

use axum::extract::{FromRequestParts, MatchedPath};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};

use crate::auth::sensor;
use crate::clock::Timestamp;
use crate::context::RequestContext;
use crate::fingerprint::TlsFingerprint;
use crate::session::SessionId;
use crate::site::attempts::{self, RefusalReason};
use crate::site::challenge;
use crate::site::client_ip::{self, ClientIp, IpSource};
use crate::site::pages;
use crate::site::peer::Peer;
use crate::site::respond::{self, Refusal};
use crate::site::state::TargetState;
use crate::trace::MAX_REFERENCE_DISTANCE;
use crate::verdict::{Action, Evidence, Firing, Verdict};

pub(crate) use crate::site::respond::clear_cookie;

/// The session cookie's name.
pub(crate) const SESSION_COOKIE: &str = "sr_session";
/// The CSRF double-submit cookie's name.
pub(crate) const CSRF_COOKIE: &str = "sr_csrf";

/// A request the engine allowed. Dropping it ends the request for the
/// in-flight rule.
#[derive(Debug)]
pub struct Authorized {
    state: Arc<TargetState>,
    /// The session.
    pub sid: SessionId,
    /// Its account.
    pub account: Arc<str>,
    /// Whether it came with a bearer token rather than a cookie.
    pub bearer: bool,
}

/// A protected handler takes `Authorized` as an argument: the request is
/// authorized (credentials checked, the engine asked, the decision traced)
/// before the handler runs, and a refusal is answered for it. Put it after
/// the handler's other extractors, so a request they reject is never
/// decided.
impl FromRequestParts<Arc<TargetState>> for Authorized {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        st: &Arc<TargetState>,
    ) -> Result<Self, Self::Rejection> {
        // The listener's peer is read in place; only in process is one made.
        if let Some(peer) = parts.extensions.get::<Peer>() {
            return authorize(st, peer, &parts.headers, route(parts)).await;
        }
        let peer = Peer::from_request_parts(parts, st)
            .await
            .map_err(IntoResponse::into_response)?;
        authorize(st, &peer, &parts.headers, route(parts)).await
    }
}

/// The route a request matched, as the router names it.
fn route(parts: &Parts) -> &str {
    let route = parts.extensions.get::<MatchedPath>();
    route.map_or("?", MatchedPath::as_str)
}

impl Drop for Authorized {
    fn drop(&mut self) {
        release(&self.state, self.sid);
    }
}

/// Ends an allowed request on `sid` for the in-flight rule: at once in
/// memory, in a task of its own on a shared store.
pub(crate) fn release(st: &Arc<TargetState>, sid: SessionId) {
    if !st.engine.tracks_in_flight() {
        return;
    }
    let now = st.clock.now();
    if st.shared.is_none() {
        trace_release(st, &st.engine.release(sid, now));
        return;
    }
    let st = Arc::clone(st);
    tokio::spawn(async move {
        match st.release(sid, now).await {
            Ok(d) => trace_release(&st, &d),
            Err(_) => st.metrics.store_unavailable(),
        }
    });
}

/// Releases only change verdicts when the in-flight rule can refuse;
/// when it only logs, replay needs no release lines.
fn trace_release(st: &TargetState, d: &crate::engine::Decision) {
    if st.engine.config().concurrency.in_flight_action > Action::Log {
        st.trace.record(d);
    }
}

/// Who is calling, as the target sees it.
pub(crate) fn client(st: &TargetState, peer: &Peer, headers: &HeaderMap) -> ClientIp {
    let mut who = client_ip::resolve(peer.addr.ip(), headers, &st.config.trusted_proxies);
    if (peer.via_pool || peer.via_balancer) && who.source == IpSource::Socket {
        who.source = IpSource::ProxyProtocol;
    }
    who
}

/// The request context of a request from `client`, over a connection
/// whose first ClientHello gave `tls` (none for plain HTTP).
pub(crate) fn context(
    st: &TargetState,
    client: &ClientIp,
    tls: Option<&TlsFingerprint>,
    headers: &HeaderMap,
) -> RequestContext {
    let pairs = headers
        .iter()
        .map(|(n, v)| (n.as_str(), v.to_str().unwrap_or("")));
    let mut ctx = RequestContext::from_headers(Some(client.ip), st.geo.lookup(client.ip), pairs);
    if st.config.sensor.enabled {
        // Read from the headers: the context keeps cookies cut to 1 KiB.
        let (nonce, cookie) = (
            cookie(headers, sensor::NONCE_COOKIE),
            cookie(headers, sensor::SENSOR_COOKIE),
        );
        ctx.sensor = Some(sensor::check(&st.sensor_key, ctx.ip, nonce, cookie));
    }
    ctx.clearance = challenge::presented(st, &ctx);
    match tls {
        Some(t) => ctx.with_tls_fingerprint(t),
        None => ctx,
    }
}

/// `context_of` when the line it names is at most
/// [`MAX_REFERENCE_DISTANCE`] decisions before `seq`; past it the context
/// is written in full again, so a reader of the recent trace (64 MiB, far
/// more than this many lines) always finds the line named.
fn near(context_of: Option<u64>, seq: u64) -> Option<u64> {
    context_of.filter(|of| seq.saturating_sub(*of) <= MAX_REFERENCE_DISTANCE)
}

/// The request's context: the connection's last one when the headers
/// repeat it, with the `seq` of the decision that traced it; otherwise a
/// fresh one.
fn memo_context(
    st: &TargetState,
    peer: &Peer,
    headers: &HeaderMap,
) -> (Arc<RequestContext>, Option<u64>) {
    if let Some((ctx, seq)) = peer.memo.as_ref().and_then(|m| m.get(headers)) {
        return (ctx, Some(seq));
    }
    let who = client(st, peer, headers);
    let ctx = context(st, &who, peer.tls.as_deref(), headers);
    (Arc::new(ctx), None)
}

/// The value of the cookie `name` in the request.
pub(crate) fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    let name = name.as_bytes();
    // A `Cookie` line that is not visible ASCII is garbage as a whole, as
    // it is to the request context.
    let pairs = headers
        .get_all(header::COOKIE)
        .iter()
        .filter(|v| v.to_str().is_ok())
        .flat_map(|v| v.as_bytes().split(|&b| b == b';'))
        .filter_map(|p| memchr::memchr(b'=', p).map(|eq| p.split_at(eq)));
    let (_, value) = pairs.into_iter().find(|(n, _)| n.trim_ascii() == name)?;
    std::str::from_utf8(value[1..].trim_ascii()).ok()
}

enum Credential {
    Bearer(SessionId),
    Cookie(SessionId),
}

/// Checks credentials and asks the engine. `Err` is the response to send.
/// A request to `route` (the router's name for it, such as
/// `/api/v1/items/{id}`) refused before the engine decides, for want of
/// usable credentials, is traced as a `refused` line.
pub async fn authorize(
    st: &Arc<TargetState>,
    peer: &Peer,
    headers: &HeaderMap,
    route: &str,
) -> Result<Authorized, Response> {
    let now = st.clock.now();
    let credential = credential(st, headers, now)
        .await
        .map_err(|(reason, response)| {
            let who = client(st, peer, headers);
            attempts::refused(st, Cow::Owned(route.to_owned()), who.ip, reason);
            response
        })?;
    let (sid, bearer) = match credential {
        Credential::Bearer(sid) => (sid, true),
        Credential::Cookie(sid) => (sid, false),
    };
    let (ctx, context_of) = memo_context(st, peer, headers);
    let mut d = match st.decide(sid, Arc::clone(&ctx), now).await {
        Ok(d) => d,
        Err(e) => {
            let json = bearer || respond::wants_json(headers);
            return Err(unjudged(
                st,
                peer,
                headers,
                Cow::Owned(route.to_owned()),
                &e,
                json,
            ));
        }
    };
    // A reference never names a line of an older trace file.
    let reference = near(context_of, d.seq).filter(|of| *of >= st.trace.floor());
    if let Some(of) = reference {
        d.context = None;
        d.context_of = Some(of);
    }
    // Traced in full first, so the line a later reference names exists;
    // a line that did not reach the file is never named.
    let (written, full) = st.record_request(&d, Some(&ctx));
    if let (true, Some(memo), true) = (full, &peer.memo, written) {
        memo.put(headers, ctx, d.seq);
    }
    let retry = retry_after(&d.fired);
    match (d.verdict, d.account) {
        (Verdict::Allow, Some(account)) => Ok(Authorized {
            state: Arc::clone(st),
            sid,
            account,
            bearer,
        }),
        (verdict, _) => Err(refusal(st, verdict, bearer, headers, retry)),
    }
}

/// The answer to a request the shared store could not judge: traced as
/// a `refused` line for `route`, counted, and answered `503`
/// `STORE_UNAVAILABLE` (JSON when `json`).
pub(crate) fn unjudged(
    st: &TargetState,
    peer: &Peer,
    headers: &HeaderMap,
    route: Cow<'static, str>,
    e: &crate::site::shared::Unavailable,
    json: bool,
) -> Response {
    let who = client(st, peer, headers);
    attempts::refused(st, route, who.ip, RefusalReason::StoreUnavailable);
    st.metrics.store_unavailable();
    respond::store_unavailable(&e.0, json)
}

/// The request's session, or why there is none and the answer to send.
async fn credential(
    st: &TargetState,
    headers: &HeaderMap,
    now: Timestamp,
) -> Result<Credential, (RefusalReason, Response)> {
    let wants_json = respond::wants_json(headers);
    let auth = st.config.auth;
    if let Some(token) = bearer_token(headers).filter(|_| auth.bearer()) {
        let bad = |code: &str| (RefusalReason::TokenInvalid, invalid_token(code));
        let claims = st.verify_jwt(token, now).await.map_err(|e| bad(e.code()))?;
        let unavailable = |e: crate::site::shared::Unavailable| {
            st.metrics.store_unavailable();
            let r = respond::store_unavailable(&e.0, true);
            (RefusalReason::StoreUnavailable, r)
        };
        if st.is_jti_denied(&claims.jti).await.map_err(unavailable)? {
            return Err(bad("revoked"));
        }
        let sid = claims.sid.parse().map_err(|_| bad("malformed"))?;
        return Ok(Credential::Bearer(sid));
    }
    let required = |clear| {
        (
            RefusalReason::LoginRequired,
            login_required(wants_json, clear),
        )
    };
    match cookie(headers, SESSION_COOKIE).filter(|_| auth.cookies()) {
        Some(value) => match value.parse() {
            Ok(sid) => Ok(Credential::Cookie(sid)),
            Err(_) => Err(required(true)),
        },
        None => Err(required(false)),
    }
}

/// The bearer token of the `Authorization` header, if any.
pub(crate) fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = v.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// 401 for a bad bearer token, per RFC 6750.
pub(crate) fn invalid_token(code: &str) -> Response {
    let challenge = format!(
        "Bearer realm=\"sessionrange\", error=\"invalid_token\", error_description=\"{code}\""
    );
    let body = serde_json::json!({ "error": "invalid_token", "reason": code });
    (
        StatusCode::UNAUTHORIZED,
        [
            (header::WWW_AUTHENTICATE, challenge),
            (header::CACHE_CONTROL, "no-store".to_owned()),
        ],
        axum::Json(body),
    )
        .into_response()
}

/// No usable credentials: a redirect to the login page, or a bare 401.
fn login_required(wants_json: bool, clear: bool) -> Response {
    let mut r = if wants_json {
        let body = serde_json::json!({ "error": "login_required" });
        let challenge = [(header::WWW_AUTHENTICATE, "Bearer realm=\"sessionrange\"")];
        (StatusCode::UNAUTHORIZED, challenge, axum::Json(body)).into_response()
    } else {
        Redirect::to("/login").into_response()
    };
    let no_store = header::HeaderValue::from_static("no-store");
    r.headers_mut().insert(header::CACHE_CONTROL, no_store);
    if clear {
        clear_cookie(&mut r, SESSION_COOKIE);
    }
    r
}

/// The response to a verdict other than allow.
pub(crate) fn refusal(
    st: &TargetState,
    verdict: Verdict,
    bearer: bool,
    headers: &HeaderMap,
    retry: Option<u64>,
) -> Response {
    let wants_json = respond::wants_json(headers) || bearer;
    let clear = (!bearer).then_some(SESSION_COOKIE);
    match verdict {
        Verdict::Allow => StatusCode::NO_CONTENT.into_response(),
        Verdict::Ban(_) => {
            let mut r = respond::banned(wants_json);
            if let Some(name) = clear {
                clear_cookie(&mut r, name);
            }
            r
        }
        Verdict::Expire(reason) => respond::expired(reason, wants_json, clear),
        Verdict::Challenge(reason) | Verdict::Revoke(reason) => {
            let challenge = matches!(verdict, Verdict::Challenge(_));
            let style = st.config.responses.style(reason, challenge, bearer);
            if style == respond::ResponseStyle::JsChallenge {
                let mut r = challenge::page(st, reason.code());
                if let Some(name) = clear.filter(|_| !challenge) {
                    clear_cookie(&mut r, name);
                }
                return r;
            }
            // Only the soft-login style shows the form: render it, and mint
            // its CSRF token, only then.
            let soft = style == respond::ResponseStyle::SoftLogin;
            let csrf = soft.then(|| st.csrf.issue(&mut rand::rng()));
            let login_html = csrf.as_deref().map_or_else(String::new, |csrf| {
                pages::login(
                    &st.config,
                    &pages::LoginForm {
                        csrf,
                        ..Default::default()
                    },
                )
            });
            let refusal = Refusal {
                style,
                reason,
                wants_json,
                retry_after_secs: retry,
                clear_cookie: if challenge { None } else { clear },
                ends_session: !challenge,
                login_html: &login_html,
            };
            let mut r = respond::refuse(&refusal);
            if let Some(csrf) = &csrf {
                add_csrf_cookie(&mut r, csrf);
            }
            r
        }
    }
}

/// Seconds until a rate-limited request would be allowed, from the evidence.
pub(crate) fn retry_after(fired: &[Firing]) -> Option<u64> {
    fired.iter().find_map(|f| match f.evidence {
        Evidence::Rate { retry_after_ms, .. } => Some(retry_after_ms.div_ceil(1000).max(1)),
        _ => None,
    })
}

/// Sets the CSRF double-submit cookie.
pub(crate) fn add_csrf_cookie(r: &mut Response, token: &str) {
    let cookie = respond::site_cookie(CSRF_COOKIE.to_owned(), token);
    respond::append_set_cookie(
        r,
        &respond::set_cookie_value(&cookie.http_only(true).build()),
    );
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    #[test]
    fn a_cookie_line_that_is_not_visible_ascii_counts_for_nothing() {
        let mut h = HeaderMap::new();
        h.append(
            header::COOKIE,
            HeaderValue::from_static("a=1;  sr_session = abc ; b=2"),
        );
        assert_eq!(cookie(&h, SESSION_COOKIE), Some("abc"));
        assert_eq!(cookie(&h, "b"), Some("2"));
        assert_eq!(cookie(&h, "sr"), None);
        let mut h = HeaderMap::new();
        let garbage = HeaderValue::from_bytes(b"pref=\xc3\xa9; sr_session=abc").expect("obs-text");
        h.append(header::COOKIE, garbage);
        assert_eq!(cookie(&h, SESSION_COOKIE), None);
        h.append(header::COOKIE, HeaderValue::from_static("sr_session=def"));
        assert_eq!(cookie(&h, SESSION_COOKIE), Some("def"));
    }

    #[test]
    fn a_context_is_named_only_within_the_reference_distance() {
        assert_eq!(near(Some(5), 5 + MAX_REFERENCE_DISTANCE), Some(5));
        assert_eq!(near(Some(5), 6 + MAX_REFERENCE_DISTANCE), None);
        assert_eq!(near(None, 7), None);
    }
}
