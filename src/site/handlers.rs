//! The browser-facing routes: landing page, form login, account, HTML catalog, logout, echo.

use std::borrow::Cow;
use std::net::IpAddr;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{FromRequestParts, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use serde::Deserialize;

use crate::auth::sensor;
use crate::session::SessionId;
use crate::site::attempts::{self, Attempt, LoginRefusal, LoginVia, RefusalReason};
use crate::site::guard::{self, Authorized, CSRF_COOKIE, SESSION_COOKIE};
use crate::site::login::{self, Credentials};
use crate::site::peer::Peer;
use crate::site::state::{PageForm, TargetState};
use crate::site::{challenge, pages, respond};
use crate::verdict::Reason;

type St = State<Arc<TargetState>>;

/// `GET /`: the landing page; sets the companion cookies the client
/// lacks, and the sensor's nonce when the target runs a sensor.
pub(crate) async fn landing(State(st): St, peer: Peer, headers: HeaderMap) -> Response {
    let (_, mut fresh) = login::companions(&st, &headers, true);
    let ip = guard::client(&st, &peer, &headers).ip;
    let (nonce, set) = sensor_nonce(&st, &headers, ip);
    fresh.extend(set);
    let mut r = Html(pages::landing(nonce.as_deref())).into_response();
    append_cookies(&mut r, &fresh);
    r
}

/// `GET /_sr/sensor.js`: the page sensor's script.
pub(crate) async fn sensor_script() -> Response {
    let js = "text/javascript; charset=utf-8";
    ([(header::CONTENT_TYPE, js)], pages::SENSOR_JS).into_response()
}

/// The sensor's nonce for a page served to `ip`: the client's own when the
/// target issued it to this address, a fresh one (with its `Set-Cookie`)
/// otherwise; nothing when the target runs no sensor.
fn sensor_nonce(
    st: &TargetState,
    headers: &HeaderMap,
    ip: IpAddr,
) -> (Option<String>, Option<String>) {
    if !st.config.sensor.enabled {
        return (None, None);
    }
    let kept = guard::cookie(headers, sensor::NONCE_COOKIE)
        .filter(|n| sensor::nonce_address(&st.sensor_key, n) == Some(ip));
    if let Some(n) = kept {
        return (Some(n.to_owned()), None);
    }
    let nonce = sensor::issue_nonce(&st.sensor_key, ip, &mut rand::rng());
    let cookie = respond::site_cookie(sensor::NONCE_COOKIE.to_owned(), nonce.clone());
    let set = respond::set_cookie_value(&cookie.http_only(true).build());
    (Some(nonce), Some(set))
}

/// `GET /login`: the login form, with a CSRF token and any PoW challenge;
/// the challenge page instead while a clearance is needed and missing.
pub(crate) async fn login_page(State(st): St, peer: Peer, headers: HeaderMap) -> Response {
    let who = guard::client(&st, &peer, &headers);
    if !challenge::cleared_for_login(&st, &peer, &who, &headers, st.clock.now()) {
        let route = Cow::Borrowed("/login");
        attempts::refused(&st, route, who.ip, RefusalReason::ClearanceRequired);
        return challenge::page(&st, LoginRefusal::ClearanceRequired.code());
    }
    login_form(&st, &headers, who.ip, None, StatusCode::OK)
}

fn login_form(
    st: &TargetState,
    headers: &HeaderMap,
    ip: IpAddr,
    error: Option<&str>,
    status: StatusCode,
) -> Response {
    let mut rng = rand::rng();
    let csrf = st.csrf.issue(&mut rng);
    st.flow_token_issued(&csrf, st.clock.now());
    let pow = (st.config.login.pow_bits > 0).then(|| st.pow_challenge(st.clock.now()));
    let (nonce, set) = sensor_nonce(st, headers, ip);
    let form = pages::LoginForm {
        csrf: &csrf,
        pow_challenge: pow.as_deref(),
        error,
        sensor_nonce: nonce.as_deref(),
    };
    let mut r = (status, Html(pages::login(&st.config, &form))).into_response();
    guard::add_csrf_cookie(&mut r, &csrf);
    append_cookies(&mut r, &set.into_iter().collect::<Vec<_>>());
    r
}

/// `POST /login`: checks the body, the auth mode, CSRF, companion
/// cookies, credentials and login steps, then issues the session cookie
/// and redirects to `/account`. Every attempt is traced with its outcome.
pub(crate) async fn login_submit(
    State(st): St,
    peer: Peer,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let arrived = st.clock.now();
    let who = guard::client(&st, &peer, &headers);
    let attempt = Attempt::new(&st, LoginVia::Form, who.ip);
    let creds = match form_credentials(&headers, &body) {
        Ok(c) => c,
        Err(r) => {
            attempt.refused(None, LoginRefusal::Malformed);
            return r;
        }
    };
    if !challenge::cleared_for_login(&st, &peer, &who, &headers, arrived) {
        attempt.refused(Some(&creds.username), LoginRefusal::ClearanceRequired);
        return challenge::page(&st, LoginRefusal::ClearanceRequired.code());
    }
    if let Err(e) = form_precheck(&st, &headers, &creds) {
        attempt.refused(Some(&creds.username), e);
        return match e {
            LoginRefusal::CsrfInvalid => csrf_refused(),
            _ => respond::blocked(e.code(), respond::wants_json(&headers)),
        };
    }
    delay(&st).await;
    let new = login::NewSession {
        peer: &peer,
        who: &who,
        headers: &headers,
        arrived,
    };
    match login::complete(&attempt, &new, &creds, true, st.clock.now()).await {
        Ok((sid, fresh)) => {
            let mut r = Redirect::to("/account").into_response();
            append_cookies(&mut r, &fresh);
            append_cookies(&mut r, &[session_cookie(sid)]);
            r
        }
        Err(e) => match (e.reason, e.retry_after) {
            (LoginRefusal::AccountBanned, _) => respond::banned(false),
            (r, Some(secs)) => login::limited(r, secs, respond::wants_json(&headers)),
            (r, None) => login_form(
                &st,
                &headers,
                who.ip,
                Some(login::message(r)),
                StatusCode::UNAUTHORIZED,
            ),
        },
    }
}

/// The form's fields; anything but a urlencoded form is refused.
fn form_credentials(headers: &HeaderMap, body: &Bytes) -> Result<Credentials, Response> {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    if !ct.is_some_and(|c| c.starts_with("application/x-www-form-urlencoded")) {
        let msg = "<h1>Unsupported form</h1><p>Send application/x-www-form-urlencoded.</p>";
        return Err((StatusCode::UNSUPPORTED_MEDIA_TYPE, Html(msg)).into_response());
    }
    serde_urlencoded::from_bytes(body).map_err(|e| {
        let msg = format!(
            "<h1>Bad request</h1><p>The login form could not be read: {}</p>",
            pages::escape(&e.to_string())
        );
        (StatusCode::BAD_REQUEST, Html(msg)).into_response()
    })
}

/// What the form login refuses before it looks at the credentials.
fn form_precheck(
    st: &TargetState,
    headers: &HeaderMap,
    creds: &Credentials,
) -> Result<(), LoginRefusal> {
    if !st.config.auth.cookies() {
        return Err(LoginRefusal::AuthMode);
    }
    let csrf_ok = guard::cookie(headers, CSRF_COOKIE)
        .zip(creds.csrf.as_deref())
        .is_some_and(|(cookie, form)| st.csrf.verify(form, cookie));
    if !csrf_ok {
        return Err(LoginRefusal::CsrfInvalid);
    }
    login::check_companions(st, headers)
}

fn csrf_refused() -> Response {
    let body = "<h1>Forbidden</h1><p>CSRF token missing or invalid.</p>";
    (StatusCode::FORBIDDEN, Html(body)).into_response()
}

/// Waits out the configured login delay.
pub(crate) async fn delay(st: &TargetState) {
    let d = st.config.login.delay;
    if !d.is_zero() {
        tokio::time::sleep(d).await;
    }
}

fn session_cookie(sid: SessionId) -> String {
    let cookie = respond::site_cookie(SESSION_COOKIE.to_owned(), sid.to_string());
    respond::set_cookie_value(&cookie.http_only(true).build())
}

fn append_cookies(r: &mut Response, cookies: &[String]) {
    for c in cookies {
        respond::append_set_cookie(r, c);
    }
}

/// `GET /account`: who you are.
pub(crate) async fn account(auth: Authorized) -> Response {
    Html(pages::account(&auth.account)).into_response()
}

/// The `page` query parameter.
#[derive(Debug, Deserialize)]
pub(crate) struct PageQuery {
    /// 1-based page number; 1 when left out.
    pub page: Option<u32>,
}

/// The `page` query parameter, read straight from the commonest query
/// strings (none, or `page=` and digits alone) and through `Query`
/// otherwise, so every other query is read, and refused, as `Query`
/// reads it.
#[derive(Debug)]
pub(crate) struct PageParam(pub u32);

impl<S: Send + Sync> FromRequestParts<S> for PageParam {
    type Rejection = QueryRejection;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let quick = match parts.uri.query() {
            None => Some(1),
            Some(q) => q
                .strip_prefix("page=")
                .filter(|n| !n.is_empty() && n.len() <= 9 && n.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|n| n.parse().ok()),
        };
        if let Some(page) = quick {
            return Ok(Self(page));
        }
        let Query(q) = Query::<PageQuery>::from_request_parts(parts, state).await?;
        Ok(Self(q.page.unwrap_or(1)))
    }
}

/// `GET /catalog?page=N`: an HTML page of records.
pub(crate) async fn catalog(
    State(st): St,
    PageParam(page): PageParam,
    auth: Authorized,
) -> Response {
    match st.serve_page(auth.sid, page, PageForm::Html) {
        Some(page) => Html(page).into_response(),
        None => (StatusCode::NOT_FOUND, Html("<h1>No such page</h1>")).into_response(),
    }
}

/// `POST /logout`: ends the session and its refresh-token family.
pub(crate) async fn logout(State(st): St, peer: Peer, headers: HeaderMap) -> Response {
    let sid = guard::bearer_token(&headers)
        .and_then(|t| {
            st.jwt
                .read()
                .verify(t, st.clock.now(), st.config.tokens.skew)
                .ok()
        })
        .and_then(|c| c.sid.parse::<SessionId>().ok())
        .or_else(|| guard::cookie(&headers, SESSION_COOKIE)?.parse().ok());
    if let Some(sid) = sid {
        let ended = async {
            let d = st.revoke(sid, Reason::LoggedOut, st.clock.now()).await?;
            st.record(&d);
            st.refresh_revoke_session(sid).await
        };
        if let Err(e) = ended.await {
            let json = respond::wants_json(&headers);
            return guard::unjudged(&st, &peer, &headers, Cow::Borrowed("/logout"), &e, json);
        }
    }
    let mut r = Redirect::to("/login").into_response();
    *r.status_mut() = StatusCode::SEE_OTHER;
    guard::clear_cookie(&mut r, SESSION_COOKIE);
    r
}

/// `GET /__range/fingerprint`: what the target sees of the caller.
pub(crate) async fn fingerprint(State(st): St, peer: Peer, headers: HeaderMap) -> Response {
    let who = guard::client(&st, &peer, &headers);
    let ctx = guard::context(&st, &who, peer.tls.as_deref(), &headers);
    let cookie_names: Vec<&str> = ctx.cookies.iter().map(|(n, _)| n.as_str()).collect();
    let body = serde_json::json!({
        "ip": who.ip,
        "ip_source": who.source,
        "peer": peer.addr.ip(),
        "ignored_header": who.ignored_header,
        "network": ctx.network,
        "user_agent": ctx.user_agent,
        "accept_language": ctx.accept_language,
        "header_order": ctx.header_order,
        "cookie_names": cookie_names,
        "http_fingerprint": ctx.http_fingerprint,
        "ja3": ctx.ja3,
        "ja4": ctx.ja4,
        "ja4_stable": ctx.ja4_stable,
        "tls": peer.tls.as_deref(),
        "ja4h": peer.ja4h(),
    });
    axum::Json(body).into_response()
}

/// Every route of the HTML and API surfaces, as the router names them.
const SURFACE_ROUTES: [&str; 9] = [
    "/login",
    "/account",
    "/catalog",
    "/api/login",
    "/api/login/challenge",
    "/api/token/refresh",
    "/api/token/revoke",
    "/api/v1/items",
    "/api/v1/items/{id}",
];

/// The route a path would take on a site serving every surface.
fn surface_route(path: &str) -> Option<&'static str> {
    if path.starts_with("/api/v1/items/") && path.len() > "/api/v1/items/".len() {
        return Some("/api/v1/items/{id}");
    }
    SURFACE_ROUTES.iter().copied().find(|r| *r == path)
}

/// The fallback: `404` for any path no route serves; a route of a surface
/// the scenario leaves out is traced as refused with `SURFACE_ABSENT`.
pub(crate) async fn not_found(State(st): St, peer: Peer, headers: HeaderMap, uri: Uri) -> Response {
    if let Some(route) = surface_route(uri.path()) {
        let who = guard::client(&st, &peer, &headers);
        attempts::refused(
            &st,
            Cow::Borrowed(route),
            who.ip,
            RefusalReason::SurfaceAbsent,
        );
    }
    (StatusCode::NOT_FOUND, "not found\n").into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What `extract` makes of the query `q`: a page, or the rejection's status.
    async fn read<T, F>(q: &str, extract: F) -> Result<u32, StatusCode>
    where
        T: FromRequestParts<(), Rejection = QueryRejection>,
        F: Fn(T) -> u32,
    {
        let uri = if q.is_empty() {
            "/catalog".to_owned()
        } else {
            format!("/catalog?{q}")
        };
        let (mut parts, ()) = axum::http::Request::get(uri)
            .body(())
            .expect("a request")
            .into_parts();
        T::from_request_parts(&mut parts, &())
            .await
            .map(extract)
            .map_err(|e| e.status())
    }

    #[tokio::test]
    async fn the_quick_page_reading_agrees_with_query() {
        let queries = [
            "",
            "page=1",
            "page=007",
            "page=4294967295",
            "page=4294967296",
            "page=",
            "page=1&x=2",
            "x=1",
            "page=+1",
            "page=1%30",
            "page=-1",
            "page=abc",
            "page=99999999999",
            "page=2&page=3",
            "PAGE=2",
        ];
        for q in queries {
            let quick = read(q, |PageParam(p)| p).await;
            let query = read(q, |Query(p): Query<PageQuery>| p.page.unwrap_or(1)).await;
            assert_eq!(quick, query, "{q}");
        }
    }
}
