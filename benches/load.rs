//! Load benchmark: authenticated requests per second through the whole
//! target pipeline, against a plain handler in the same run.
//!
//! The pipeline: a cookie session, the client's address and its geo lookup,
//! every rule evaluated (rate, cadence and in-flight rules set to `log` so
//! that the load itself is not refused), and the trace appended to a file.
//! The baseline: an axum handler on its own loopback listener that serves
//! the same route, `GET /api/v1/items?page=1`, reading the page number the
//! same way and answering with the same JSON page, with no session at all.
//!
//! One reqwest client with keep-alive per worker (each worker logged in
//! with its own session) loads both, in back-to-back rounds bounded in time
//! and count, and the median ratio of the pairs is printed. Two passes: one
//! where each worker repeats its headers, as keep-alive clients do (the
//! target then reuses the connection's request context), and one where
//! every request sends a different `Accept` value, so every request's
//! context is built and traced in full.
//!
//! Run with `cargo bench --bench load`.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Json;
use axum::extract::Query;
use axum::routing::get;
use common::{Headers, PageQuery, ROUND_TIME, WORKERS, clients, config, median, range, round};
use sessionrange::TargetServer;
use sessionrange::dataset::{Dataset, DatasetConfig};

const ROUNDS: usize = 15;

async fn plain_server(dataset: DatasetConfig) -> SocketAddr {
    let data = Arc::new(Dataset::new(&dataset));
    let app = axum::Router::new().route(
        "/api/v1/items",
        get(move |Query(q): Query<PageQuery>| {
            let data = data.clone();
            async move { Json(data.page(q.page.unwrap_or(1))) }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind plain");
    let addr = listener.local_addr().expect("plain address");
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let dir = std::env::temp_dir().join(format!("sessionrange-load-{}", std::process::id()));
        let target = TargetServer::builder()
            .config(config())
            .trace(dir.join("trace.jsonl"))
            .start()
            .await
            .expect("target starts");
        let plain = plain_server(DatasetConfig::default()).await;
        let client = clients(&target, None).await;
        let path = "/api/v1/items?page=1";
        let (plain_url, target_url) = (format!("http://{plain}{path}"), target.url(path));
        for headers in [Headers::Repeated, Headers::Varied] {
            round(&client, &plain_url, headers).await;
            round(&client, &target_url, headers).await;
            let (mut p, mut t, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
            for _ in 0..ROUNDS {
                let plain = round(&client, &plain_url, headers).await;
                let full = round(&client, &target_url, headers).await;
                p.push(plain);
                t.push(full);
                ratios.push(full / plain);
            }
            let (lo, hi) = range(&ratios);
            let (p, t, r) = (median(p), median(t), median(ratios));
            let label = match headers {
                Headers::Repeated => "load",
                Headers::Varied => "load, headers varied per request",
            };
            println!("{label}: plain handler {p:.0} req/s, full pipeline {t:.0} req/s (medians)");
            println!("{label}: ratio {r:.3} (median of {ROUNDS} back-to-back pairs, range {lo:.3} to {hi:.3}; goal >= 0.85)");
        }
        println!("load: {WORKERS} keep-alive workers with a session each, rounds of {} ms, trace at {}", ROUND_TIME.as_millis(), dir.display());
        let _ = std::fs::remove_dir_all(&dir);
    });
}
