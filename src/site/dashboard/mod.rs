//! The live dashboard on the admin listener: sessions, accounts, the per-session timeline and the event stream, updating as the trace is written.
//!
//! Only with the `cli` feature: it draws with the HTML report's view. A
//! one-time link sets the cookie the admin listener accepts instead of
//! the bearer token; the page then reads the admin API and a stream of
//! server-sent events, and its buttons call the admin actions.

mod page;

use std::cmp::Reverse;
use std::convert::Infallible;
use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use futures_util::Stream;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio_stream::StreamExt as _;
use tokio_stream::wrappers::BroadcastStream;

use crate::clock::Timestamp;
use crate::grade::DEFAULT_IN_FLIGHT_GRACE;
use crate::grade::ViewBuilder;
use crate::report::html::render;
use crate::session::{Session, SessionState};
use crate::site::state::TargetState;

type St = State<Arc<TargetState>>;

/// Sessions per page of the sessions table.
pub(crate) const PER_PAGE: usize = 50;

/// The dashboard's routes, all behind the admin listener's check.
pub(crate) fn router() -> Router<Arc<TargetState>> {
    Router::new()
        .route("/dashboard", get(dashboard))
        .route("/dashboard/sessions", get(sessions))
        .route("/dashboard/timeline", get(timeline))
        .route("/dashboard/events", get(events))
}

/// `?token=` of a one-time link.
#[derive(Debug, Deserialize)]
pub(crate) struct LoginQuery {
    #[serde(default)]
    token: String,
}

/// `GET /dashboard/login?token=T`: a link that works once. It sets the
/// dashboard's cookie and sends the browser to the dashboard.
pub(crate) async fn login(State(st): St, Query(q): Query<LoginQuery>) -> Response {
    let Some(secret) = st.dashboard.redeem(&q.token) else {
        let text = "This dashboard link was already used or is wrong. `serve` prints one at \
                    start; POST /dashboard/links with the admin token makes another.";
        return (StatusCode::UNAUTHORIZED, text).into_response();
    };
    // Scoped to the dashboard's paths: a browser sends cookies to every
    // port of a host, and the public listener has no business with it.
    let name = st.dashboard.cookie_name();
    let cookie = format!("{name}={secret}; Path=/dashboard; HttpOnly; SameSite=Strict");
    ([(header::SET_COOKIE, cookie)], Redirect::to("/dashboard")).into_response()
}

/// The page, which no other page may frame (its buttons act).
async fn dashboard() -> Response {
    let deny = [
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::CONTENT_SECURITY_POLICY, "frame-ancestors 'none'"),
    ];
    (deny, Html(page::page())).into_response()
}

/// `?page=N`, from 0.
#[derive(Debug, Deserialize)]
struct PageQuery {
    #[serde(default)]
    page: usize,
}

/// A page of sessions, the most recently active first.
async fn sessions(State(st): St, Query(q): Query<PageQuery>) -> axum::response::Response {
    let mut all = match st.all_sessions().await {
        Ok(all) => all,
        Err(e) => return crate::site::admin::stored::<()>(&st, Err(e)),
    };
    all.sort_by_key(|s| Reverse((s.last_seen.max(s.created), s.id)));
    let pages = all.len().div_ceil(PER_PAGE).max(1);
    let page = q.page.min(pages - 1);
    let now = st.clock.now();
    let rows: Vec<Value> = all
        .iter()
        .skip(page * PER_PAGE)
        .take(PER_PAGE)
        .map(|s| row(s, now))
        .collect();
    let body = json!({ "total": all.len(), "page": page, "pages": pages, "sessions": rows });
    axum::response::IntoResponse::into_response(Json(body))
}

/// One session's row: its state, birth and last address.
fn row(s: &Session, now: Timestamp) -> Value {
    let state = match s.state {
        SessionState::Active => "active".to_owned(),
        SessionState::Expired(r) => format!("expired({r})"),
        SessionState::Revoked(r) => format!("revoked({r})"),
    };
    let b = &s.birth;
    let last = s.sightings.iter().max_by_key(|x| x.last);
    json!({
        "id": s.id.to_string(),
        "account": &*s.account,
        "state": state,
        "requests": s.uses,
        "age_s": now.since(s.created).as_secs_f64(),
        "birth": {
            "ip": b.ip.map(|ip| ip.to_string()),
            "asn": b.network.asn.map(|a| format!("AS{a}")),
            "class": b.network.class.to_string(),
            "ja4": b.ja4_stable.as_deref().or(b.ja4.as_deref()),
            "user_agent": b.user_agent.as_deref(),
        },
        "last": {
            "ip": last.and_then(|x| x.ip).map(|ip| ip.to_string()),
            "asn": last.and_then(|x| x.asn).map(|a| format!("AS{a}")),
        },
    })
}

/// Trace lines the timeline is drawn from, at most: the latest.
const TIMELINE_LINES: usize = 20_000;

/// The sessions' timeline and deaths, drawn from the latest trace lines
/// as the HTML report draws a run, off the workers that serve requests.
async fn timeline(State(st): St) -> Response {
    let lines = st.trace.recent_tail(TIMELINE_LINES);
    let drawn = tokio::task::spawn_blocking(move || {
        let mut view = ViewBuilder::new(DEFAULT_IN_FLIGHT_GRACE);
        for line in &lines {
            view.add_line(line);
        }
        render::live(&view.finish().1)
    });
    match drawn.await {
        Ok(html) => Html(html).into_response(),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

/// Every trace line from now on, as server-sent events.
async fn events(State(st): St) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let lines = BroadcastStream::new(st.trace.follow());
    let events = lines.filter_map(|l| l.ok().map(|line| Ok(Event::default().data(&*line))));
    Sse::new(events).keep_alive(KeepAlive::default())
}
