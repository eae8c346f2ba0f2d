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

use crate::session::SessionId;
use crate::site::guard;
use crate::site::state::TargetState;
use crate::verdict::Reason;

type St = State<Arc<TargetState>>;

/// The admin router. Every route needs `Authorization: Bearer <admin token>`.
pub(crate) fn router(state: Arc<TargetState>) -> Router {
    Router::new()
        .route("/sessions", get(sessions))
        .route("/sessions/{sid}", get(session))
        .route("/accounts", get(accounts))
        .route("/accounts/{name}/revoke", post(revoke_account))
        .route("/events", get(events))
        .route("/ground-truth", get(ground_truth))
        .route("/reset", post(reset))
        .route("/metrics", get(metrics))
        .route_layer(middleware::from_fn_with_state(state.clone(), require_token))
        .with_state(state)
}

async fn require_token(State(st): St, req: Request, next: Next) -> Response {
    let ok = guard::bearer_token(req.headers())
        .is_some_and(|t| constant_time_eq(t.as_bytes(), st.admin_token.as_bytes()));
    if !ok {
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

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

async fn sessions(State(st): St) -> Response {
    Json(st.engine.sessions()).into_response()
}

async fn session(State(st): St, Path(sid): Path<String>) -> Response {
    match sid
        .parse::<SessionId>()
        .ok()
        .and_then(|sid| st.engine.session(sid))
    {
        Some(s) => Json(s).into_response(),
        None => (
            StatusCode::NOT_FOUND,
            Json(json!({ "error": "no such session" })),
        )
            .into_response(),
    }
}

async fn accounts(State(st): St) -> Response {
    Json(st.engine.accounts()).into_response()
}

async fn revoke_account(State(st): St, Path(name): Path<String>) -> Response {
    let decisions = st
        .engine
        .revoke_account(&name, Reason::SessionRevoked, st.clock.now());
    for d in &decisions {
        st.trace.record(d);
        st.refresh.revoke_session(d.session);
    }
    Json(json!({ "revoked": decisions.len() })).into_response()
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
    let upkeep = st.engine.reset(st.clock.now());
    st.trace.record_upkeep(&upkeep);
    st.refresh.clear();
    st.exit_bans.clear();
    Json(json!({ "reset": true })).into_response()
}

async fn metrics(State(st): St) -> Response {
    let mut text = st.metrics.render(st.engine.len());
    text.push_str(&st.trace.dropped().render());
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response()
}
