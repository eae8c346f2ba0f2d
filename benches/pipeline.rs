//! Criterion benches of one authenticated request through the target's
//! router, in process: the same cookie request the load bench sends,
//! against the same page from a plain handler, and the guard alone.
//!
//! No sockets, so the figures are steady enough to compare one change of
//! the request path with the next. The load bench (`benches/load.rs`)
//! remains the figure of record: it includes the connection, the client
//! and the scheduler.

#[allow(dead_code)]
mod common;

use std::hint::black_box;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::{ConnectInfo, Query};
use axum::http::{HeaderMap, Request, header};
use axum::routing::get;
use criterion::{Criterion, criterion_group, criterion_main};
use http_body_util::BodyExt;
use sessionrange::dataset::Dataset;

use sessionrange::site::bench::{ContextMemo, Peer, authorize};
use sessionrange::site::{TargetState, TraceLog, router};
use sessionrange::{Clock, GeoDb};
use tower::ServiceExt;

const USER_AGENT: &str = "reqwest/0.12";

fn peer() -> SocketAddr {
    "127.0.0.1:40000".parse().expect("peer address")
}

/// A request as reqwest sends it, from `peer()`.
fn request(method: &str, uri: &str, cookie: &str, body: Option<String>) -> Request<Body> {
    let mut b = Request::builder()
        .method(method)
        .uri(uri)
        .header(header::HOST, "127.0.0.1")
        .header(header::ACCEPT, "*/*")
        .header(header::USER_AGENT, USER_AGENT);
    if !cookie.is_empty() {
        b = b.header(header::COOKIE, cookie);
    }
    if body.is_some() {
        b = b.header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
    }
    let mut r = b
        .body(body.map_or_else(Body::empty, Body::from))
        .expect("request");
    r.extensions_mut().insert(ConnectInfo(peer()));
    r
}

/// Adds the `Set-Cookie` values of `headers` to a `Cookie` header value.
fn keep_cookies(jar: &mut Vec<String>, headers: &HeaderMap) {
    for v in headers.get_all(header::SET_COOKIE) {
        let v = v.to_str().expect("ascii cookie");
        let pair = v.split(';').next().expect("a pair");
        let name = pair.split('=').next().expect("a name");
        jar.retain(|c| !c.starts_with(&format!("{name}=")));
        jar.push(pair.to_owned());
    }
}

/// Logs in through the form, as the load bench's workers do, and returns
/// the `Cookie` header value of the session.
async fn log_in(app: &axum::Router) -> String {
    let mut jar = Vec::new();
    for path in ["/", "/login"] {
        let r = app
            .clone()
            .oneshot(request("GET", path, &jar.join("; "), None))
            .await
            .expect("page");
        keep_cookies(&mut jar, r.headers());
        if path == "/login" {
            let html = r.into_body().collect().await.expect("html").to_bytes();
            let html = String::from_utf8_lossy(&html).into_owned();
            let csrf = common::csrf_token(&html);
            let form = format!("csrf={csrf}&username=alice&password=wonderland");
            let r = app
                .clone()
                .oneshot(request("POST", "/login", &jar.join("; "), Some(form)))
                .await
                .expect("login");
            assert!(r.status().is_redirection(), "login: {}", r.status());
            keep_cookies(&mut jar, r.headers());
        }
    }
    jar.join("; ")
}

/// The `page` query parameter, as the target reads it, for the plain handler.
#[derive(Debug, serde::Deserialize)]
struct PageQuery {
    /// 1-based page number; 1 when left out.
    page: Option<u32>,
}

async fn send(app: &axum::Router, req: Request<Body>) -> usize {
    let r = app.clone().oneshot(req).await.expect("response");
    assert!(r.status().is_success(), "refused: {}", r.status());
    r.into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes()
        .len()
}

fn pipeline(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let dir = std::env::temp_dir().join(format!("sessionrange-pipeline-{}", std::process::id()));
    let trace = TraceLog::open(&dir.join("trace.jsonl")).expect("trace");
    let geo = GeoDb::embedded();
    let state = TargetState::new(common::config(), Clock::system(), geo, trace).expect("state");
    let state = Arc::new(state);
    let app = router(state.clone());
    let cookie = rt.block_on(log_in(&app));
    let data = Arc::new(Dataset::new(&state.config.dataset));
    let plain = axum::Router::new().route(
        "/api/v1/items",
        get(move |Query(q): Query<PageQuery>| {
            let data = data.clone();
            async move { Json(data.page(q.page.unwrap_or(1))) }
        }),
    );
    let uri = "/api/v1/items?page=1";
    c.bench_function("pipeline/plain_handler", |b| {
        b.iter(|| black_box(rt.block_on(send(&plain, request("GET", uri, &cookie, None)))));
    });
    // One keep-alive connection: its requests share one context memo.
    let memo = Arc::new(ContextMemo::default());
    let on_connection = || {
        let mut r = request("GET", uri, &cookie, None);
        r.extensions_mut().insert(Arc::clone(&memo));
        r
    };
    c.bench_function("pipeline/target_items", |b| {
        b.iter(|| black_box(rt.block_on(send(&app, on_connection()))));
    });
    let headers = request("GET", uri, &cookie, None).headers().clone();
    let peer = Peer {
        addr: peer(),
        via_pool: false,
        via_balancer: false,
        tls: None,
        head: None,
        memo: None,
    };
    c.bench_function("pipeline/authorize_fresh_context", |b| {
        b.iter(|| black_box(authorized(&state, &peer, &headers)));
    });
    let peer = Peer {
        memo: Some(memo.clone()),
        ..peer
    };
    c.bench_function("pipeline/authorize_repeated_headers", |b| {
        b.iter(|| black_box(authorized(&state, &peer, &headers)));
    });
    let _ = std::fs::remove_dir_all(&dir);
}

/// Whether the in-memory target authorizes a request for items: it never
/// waits, so the authorization is ready at its first poll.
fn authorized(state: &Arc<TargetState>, peer: &Peer, headers: &HeaderMap) -> bool {
    use futures_util::FutureExt;
    let decided = authorize(state, peer, headers, "/api/v1/items").now_or_never();
    decided.expect("an in-memory target never waits").is_ok()
}

criterion_group!(benches, pipeline);
criterion_main!(benches);
