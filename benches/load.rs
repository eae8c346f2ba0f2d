//! Load benchmark: authenticated requests per second through the whole
//! target pipeline, against a plain handler in the same run.
//!
//! The pipeline: a cookie session, the client's address and its geo lookup,
//! every rule evaluated (rate, cadence and in-flight rules set to `log` so
//! that the load itself is not refused), and the trace appended to a file.
//! The baseline: an axum handler on its own loopback listener that serves
//! the same JSON page with no session at all. One reqwest client with
//! keep-alive per worker (each worker logged in with its own session) loads
//! both, in back-to-back rounds bounded in time and count, and the median
//! ratio of the pairs is printed.
//!
//! Run with `cargo bench --bench load`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::Json;
use axum::routing::get;
use sessionrange::Action;
use sessionrange::dataset::{Dataset, DatasetConfig};
use sessionrange::target::{TargetConfig, TargetServer};

const WORKERS: usize = 16;
const ROUNDS: usize = 15;
const ROUND_TIME: Duration = Duration::from_millis(1000);
const MAX_REQUESTS_PER_ROUND: u64 = 200_000;

fn config() -> TargetConfig {
    let mut cfg = TargetConfig::default();
    let r = &mut cfg.rules;
    r.session_velocity.action = Action::Log;
    r.account_velocity.action = Action::Log;
    r.robotic_cadence.action = Action::Log;
    r.concurrency.in_flight_action = Action::Log;
    r.fingerprint.ja3 = Action::Log;
    cfg
}

async fn plain_server(dataset: DatasetConfig) -> SocketAddr {
    let data = Arc::new(Dataset::new(&dataset));
    let app = axum::Router::new().route(
        "/api/v1/items",
        get(move || {
            let data = data.clone();
            async move { Json(data.page(1)) }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind plain");
    let addr = listener.local_addr().expect("plain address");
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

/// Logs in through the form and returns the `Cookie` header the session needs.
async fn log_in(target: &TargetServer, user: &str, password: &str) -> String {
    let jar = Arc::new(reqwest::cookie::Jar::default());
    let client = reqwest::Client::builder()
        .cookie_provider(jar.clone())
        .build()
        .expect("client");
    client.get(target.url("/")).send().await.expect("landing");
    let form = client
        .get(target.url("/login"))
        .send()
        .await
        .expect("login page");
    let html = form.text().await.expect("login html");
    let csrf = html
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("csrf token in the form")
        .to_owned();
    let params = [
        ("csrf", csrf.as_str()),
        ("username", user),
        ("password", password),
    ];
    let r = client
        .post(target.url("/login"))
        .form(&params)
        .send()
        .await
        .expect("login");
    assert!(r.status().is_success(), "login failed: {}", r.status());
    let url = target.url("/").parse().expect("url");
    let cookies = reqwest::cookie::CookieStore::cookies(&*jar, &url).expect("session cookies");
    cookies.to_str().expect("ascii cookies").to_owned()
}

/// One client per worker, each with its own session cookie, as a crawler
/// with several logged-in workers would run.
async fn clients(target: &TargetServer) -> Vec<reqwest::Client> {
    let mut clients = Vec::with_capacity(WORKERS);
    for i in 0..WORKERS {
        let (user, password) = if i % 2 == 0 {
            ("alice", "wonderland")
        } else {
            ("bob", "builder")
        };
        let cookie = log_in(target, user, password).await;
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert(
            reqwest::header::COOKIE,
            cookie.parse().expect("cookie header"),
        );
        let client = reqwest::Client::builder()
            .default_headers(headers)
            .build()
            .expect("client");
        clients.push(client);
    }
    clients
}

/// Loads `url` with every worker for one round; returns requests per second.
/// Both servers get the same requests, session cookies included, so the
/// client does the same work for each.
async fn round(clients: &[reqwest::Client], url: &str) -> f64 {
    let done = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let tasks: Vec<_> = clients
        .iter()
        .map(|client| {
            let (client, url, done) = (client.clone(), url.to_owned(), done.clone());
            tokio::spawn(async move {
                while start.elapsed() < ROUND_TIME
                    && done.load(Ordering::Relaxed) < MAX_REQUESTS_PER_ROUND
                {
                    let r = client.get(&url).send().await.expect("request");
                    assert!(r.status().is_success(), "refused: {}", r.status());
                    r.bytes().await.expect("body");
                    done.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.expect("worker");
    }
    done.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
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
        let client = clients(&target).await;
        let (plain_url, target_url) = (format!("http://{plain}/api/v1/items"), target.url("/api/v1/items?page=1"));
        round(&client, &plain_url).await;
        round(&client, &target_url).await;
        let (mut p, mut t, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..ROUNDS {
            let plain = round(&client, &plain_url).await;
            let full = round(&client, &target_url).await;
            p.push(plain);
            t.push(full);
            ratios.push(full / plain);
        }
        let (lo, hi) = (ratios.iter().copied().fold(f64::MAX, f64::min), ratios.iter().copied().fold(0.0, f64::max));
        let (p, t, r) = (median(p), median(t), median(ratios));
        println!("load: plain handler {p:.0} req/s, full pipeline {t:.0} req/s (medians)");
        println!("load: ratio {r:.3} (median of {ROUNDS} back-to-back pairs, range {lo:.3} to {hi:.3}; goal >= 0.85)");
        println!("load: {WORKERS} keep-alive workers with a session each, rounds of {} ms, trace at {}", ROUND_TIME.as_millis(), dir.display());
        let _ = std::fs::remove_dir_all(&dir);
    });
}
