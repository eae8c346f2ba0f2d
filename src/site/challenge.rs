//! The JavaScript challenge: a page whose script runs a proof of work and posts it, and the clearance cookie a right answer earns.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use crate::auth::clearance::{self, Clearance, Solver, Standing};
use crate::auth::pow;
use crate::auth::sensor::Signals;
use crate::clock::Timestamp;
use crate::context::RequestContext;
use crate::site::client_ip::ClientIp;
use crate::site::peer::Peer;
use crate::site::state::TargetState;
use crate::site::{guard, pages, respond};
use crate::trace::records::{CHALLENGE, ChallengeAnswer};

/// The longest `back` path followed after a solve.
const MAX_BACK: usize = 2048;

/// The challenge page for a refusal with `code`: a fresh challenge in a
/// form the page's script solves and posts to [`clearance::VERIFY_ROUTE`].
pub(crate) fn page(st: &TargetState, code: &str) -> Response {
    let ch = st.page_challenge(st.clock.now());
    let form = format!(
        "<form id=\"sr-challenge\" method=\"post\" action=\"{route}\" data-bits=\"{bits}\">\
         <input type=\"hidden\" name=\"challenge\" value=\"{ch}\">\
         <input type=\"hidden\" name=\"nonce\"><input type=\"hidden\" name=\"solver\">\
         <input type=\"hidden\" name=\"signals\"><input type=\"hidden\" name=\"back\"></form>\
         <script src=\"{script}\"></script>",
        route = clearance::VERIFY_ROUTE,
        bits = st.config.clearance.bits,
        script = pages::SENSOR_SCRIPT,
    );
    respond::interstitial(code, &form)
}

/// Whether a login may go on: always, unless `[target.clearance]
/// at_login` asks for a living clearance of this very client.
pub(crate) fn cleared_for_login(
    st: &TargetState,
    peer: &Peer,
    who: &ClientIp,
    headers: &HeaderMap,
    now: Timestamp,
) -> bool {
    if !st.config.clearance.at_login {
        return true;
    }
    let ctx = guard::context(st, who, peer.tls.as_deref(), headers);
    let c = ctx.clearance.as_ref();
    c.is_some_and(|c| c.standing(&ctx, now) == Standing::Valid)
}

/// The clearance a request's cookie holds, if the target sealed it.
pub(crate) fn presented(st: &TargetState, ctx: &RequestContext) -> Option<Clearance> {
    let cookie = ctx.cookie(clearance::COOKIE)?;
    Clearance::open(&st.clearance_key, cookie)
}

/// What the challenge's form posts.
#[derive(Debug, Default, Deserialize)]
struct Answer {
    #[serde(default)]
    challenge: String,
    #[serde(default)]
    nonce: String,
    /// `page` when the page's script posted it.
    #[serde(default)]
    solver: String,
    /// The browser's signals, as the script read them (JSON).
    #[serde(default)]
    signals: String,
    /// Where the challenged request went.
    #[serde(default)]
    back: String,
}

/// `POST /_sr/challenge`: a right, fresh, unspent answer earns the
/// clearance cookie and a `303` back where the challenge was met; any
/// other answer gets a new challenge page. Every answer is traced.
pub(crate) async fn verify(
    State(st): State<Arc<TargetState>>,
    peer: Peer,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let now = st.clock.now();
    let who = guard::client(&st, &peer, &headers);
    let ctx = guard::context(&st, &who, peer.tls.as_deref(), &headers);
    let answer: Answer = serde_urlencoded::from_bytes(&body).unwrap_or_default();
    let bits = st.config.clearance.bits;
    let taken = match st.take_page_challenge(&answer.challenge, now).await {
        Ok(taken) => taken,
        Err(e) => {
            let route = std::borrow::Cow::Borrowed(clearance::VERIFY_ROUTE);
            let json = respond::wants_json(&headers);
            return guard::unjudged(&st, &peer, &headers, route, &e, json);
        }
    };
    let right = taken && pow::verify(&answer.challenge, &answer.nonce, bits);
    let solved_by = right.then(|| solver(&answer, &ctx));
    st.trace.record_value(&ChallengeAnswer {
        kind: CHALLENGE.into(),
        at: now,
        ip: who.ip,
        solved_by,
    });
    let Some(via) = solved_by else {
        return page(&st, "CHALLENGE_FAILED");
    };
    let earned = Clearance::earn(&ctx, now, st.config.clearance.ttl, via);
    let ttl = cookie::time::Duration::seconds(st.config.clearance.ttl.as_secs() as i64);
    let cookie = respond::site_cookie(clearance::COOKIE.to_owned(), earned.seal(&st.clearance_key));
    let set = respond::set_cookie_value(&cookie.http_only(true).max_age(ttl).build());
    let mut r = Redirect::to(back(&answer.back)).into_response();
    respond::append_set_cookie(&mut r, &set);
    r
}

/// Who solved it: the page's script says so and sends the browser's
/// signals, whose User-Agent is the request's; anything else is the
/// client's own code. (A client that copies both is counted as the page:
/// no answer can prove which code computed it.)
fn solver(a: &Answer, ctx: &RequestContext) -> Solver {
    let signals: Option<Signals> = serde_json::from_str(&a.signals).ok();
    let agrees = signals.is_some_and(|s| s.claims(ctx.user_agent.as_deref()));
    if a.solver == "page" && agrees {
        Solver::Page
    } else {
        Solver::Client
    }
}

/// Where to send the client after a solve: its own path on this site, or `/`.
fn back(path: &str) -> &str {
    let local = path.starts_with('/') && !path.starts_with("//") && !path.contains('\\');
    if local && path.len() <= MAX_BACK && path.bytes().all(|b| b.is_ascii_graphic()) {
        path
    } else {
        "/"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_local_paths_are_followed_back() {
        assert_eq!(back("/catalog?page=3"), "/catalog?page=3");
        for away in [
            "https://evil.test/",
            "//evil.test/",
            "/\\evil",
            "",
            "catalog",
            "/a b",
        ] {
            assert_eq!(back(away), "/", "{away}");
        }
        assert_eq!(back(&format!("/{}", "a".repeat(MAX_BACK))), "/");
    }
}
