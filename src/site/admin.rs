//! The admin API: a separate loopback listener behind a bearer token.
//!
//! It serves sessions with their birth context, accounts, the event stream,
//! ground truth, reset and metrics. None of these routes exist on the public
//! listener.

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::body::Body;
use axum::extract::{Path, Query, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::json;
use tokio_stream::StreamExt;
use tokio_stream::wrappers::BroadcastStream;

use crate::auth::csrf::constant_time_eq;
use crate::session::SessionId;
use crate::site::guard;
use crate::site::state::TargetState;
use crate::site::stores::Stored;

type St = State<Arc<TargetState>>;

/// The admin router. Every route needs `Authorization: Bearer <admin token>`.
pub(crate) fn router(state: Arc<TargetState>) -> Router {
    let router = Router::new()
        .route("/sessions", get(sessions))
        .route("/sessions/{sid}", get(session))
        .route("/accounts", get(accounts))
        .route("/accounts/{name}/revoke", post(revoke_account))
        .route("/events", get(events))
        .route("/ground-truth", get(ground_truth))
        .route("/reset", post(reset))
        .route("/metrics", get(metrics))
        .route("/dashboard/links", post(dashboard_link))
        .route("/dashboard/accounts", get(accounts))
        .route("/dashboard/revoke", post(revoke_named))
        .route("/dashboard/reset", post(reset));
    #[cfg(feature = "cli")]
    let router = router.merge(crate::site::dashboard::router());
    router
        .route_layer(middleware::from_fn_with_state(state.clone(), require_token))
        .merge(login_route())
        .with_state(state)
}

/// The one route outside the token: a one-time login link of the
/// dashboard (only with the `cli` feature, which serves the page).
fn login_route() -> Router<Arc<TargetState>> {
    #[cfg(feature = "cli")]
    return Router::new().route("/dashboard/login", get(crate::site::dashboard::login));
    #[cfg(not(feature = "cli"))]
    Router::new()
}

/// `POST /dashboard/links`: a new one-time link to the dashboard.
async fn dashboard_link(State(st): St) -> Response {
    let path = format!("/dashboard/login?token={}", st.dashboard.issue_link());
    Json(json!({ "path": path })).into_response()
}

/// The header the dashboard's own changes carry: a page of another origin
/// cannot set it, so the cookie alone changes nothing.
pub(crate) const DASHBOARD_HEADER: &str = "x-sessionrange-dashboard";

/// The admin token as a bearer, or the dashboard's cookie (with its
/// header on anything but a read).
fn authorized(st: &TargetState, req: &Request) -> bool {
    let same = |given: &str, secret: &str| constant_time_eq(given.as_bytes(), secret.as_bytes());
    if guard::bearer_token(req.headers()).is_some_and(|t| same(t, &st.admin_token)) {
        return true;
    }
    let cookie = guard::cookie(req.headers(), st.dashboard.cookie_name());
    let read = req.method() == axum::http::Method::GET;
    cookie.is_some_and(|c| st.dashboard.accepts(c))
        && (read || req.headers().contains_key(DASHBOARD_HEADER))
}

async fn require_token(State(st): St, req: Request, next: Next) -> Response {
    if !authorized(&st, &req) {
        let challenge = [(
            header::WWW_AUTHENTICATE,
            "Bearer realm=\"sessionrange-admin\"",
        )];
        return (
            StatusCode::UNAUTHORIZED,
            challenge,
            Json(json!({ "error": "unauthorized" })),
        )
            .into_response();
    }
    next.run(req).await
}

/// The JSON of what the stores gave, or `503` when a shared one could not be read.
pub(crate) fn stored<T: serde::Serialize>(st: &TargetState, got: Stored<T>) -> Response {
    match got {
        Ok(v) => Json(v).into_response(),
        Err(e) => {
            st.metrics.store_unavailable();
            crate::site::respond::store_unavailable(&e.0, true)
        }
    }
}

async fn sessions(State(st): St) -> Response {
    stored(&st, st.all_sessions().await)
}

async fn session(State(st): St, Path(sid): Path<String>) -> Response {
    let Ok(sid) = sid.parse::<SessionId>() else {
        return no_such_session();
    };
    match st.one_session(sid).await {
        Ok(None) => no_such_session(),
        got => stored(&st, got),
    }
}

fn no_such_session() -> Response {
    let body = Json(json!({ "error": "no such session" }));
    (StatusCode::NOT_FOUND, body).into_response()
}

async fn accounts(State(st): St) -> Response {
    let all = st.all_accounts().await;
    stored(
        &st,
        all.map(|a| a.into_iter().collect::<std::collections::BTreeMap<_, _>>()),
    )
}

async fn revoke_account(State(st): St, Path(name): Path<String>) -> Response {
    let revoked = st.revoke_accounts(&[&name], st.clock.now()).await;
    stored(&st, revoked.map(|n| json!({ "revoked": n })))
}

/// `?account=NAME`: any name, `..` included, which a path could not carry.
#[derive(Debug, Deserialize)]
struct AccountQuery {
    account: String,
}

/// `POST /dashboard/revoke?account=NAME`: the dashboard's revoke button.
async fn revoke_named(st: St, Query(q): Query<AccountQuery>) -> Response {
    revoke_account(st, Path(q.account)).await
}

/// `?follow=true` keeps the stream open and sends new lines as they come.
#[derive(Debug, Deserialize)]
struct EventsQuery {
    #[serde(default)]
    follow: bool,
}

async fn events(State(st): St, Query(q): Query<EventsQuery>) -> Response {
    let live = q.follow.then(|| st.trace.follow());
    let recent: String = st.trace.recent().iter().map(|l| format!("{l}\n")).collect();
    let head = tokio_stream::once(Ok::<_, std::io::Error>(recent));
    let body = match live {
        None => Body::from_stream(head),
        Some(rx) => {
            let tail =
                BroadcastStream::new(rx).filter_map(|line| line.ok().map(|l| Ok(format!("{l}\n"))));
            Body::from_stream(head.chain(tail))
        }
    };
    ([(header::CONTENT_TYPE, "application/x-ndjson")], body).into_response()
}

async fn ground_truth(State(st): St) -> Response {
    let lines: String = st
        .dataset
        .iter()
        .filter_map(|r| serde_json::to_string(&r).ok())
        .map(|l| l + "\n")
        .collect();
    ([(header::CONTENT_TYPE, "application/x-ndjson")], lines).into_response()
}

async fn reset(State(st): St) -> Response {
    let upkeep = match st.reset(st.clock.now()).await {
        Ok(u) => u,
        Err(e) => return stored::<()>(&st, Err(e)),
    };
    st.trace.record_upkeep(&upkeep);
    st.exit_bans.clear();
    Json(json!({ "reset": true })).into_response()
}

async fn metrics(State(st): St) -> Response {
    let sessions = st.session_count().await.ok();
    let mut text = st.metrics.render(sessions);
    text.push_str(&st.trace.dropped().render());
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response()
}
