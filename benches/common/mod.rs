//! Shared by the load benchmarks: logged-in keep-alive workers, timed rounds, medians.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use sessionrange::Action;
use sessionrange::{TargetConfig, TargetServer};

/// Concurrent keep-alive workers per round.
pub(crate) const WORKERS: usize = 16;
/// How long one round loads a server.
pub(crate) const ROUND_TIME: Duration = Duration::from_millis(1000);
/// A bound on requests per round, so a round always stops.
const MAX_REQUESTS_PER_ROUND: u64 = 200_000;

/// The default target with the rules that a load would trip (rates,
/// cadence, in-flight) set to `log`: every rule still runs.
pub(crate) fn config() -> TargetConfig {
    let mut cfg = TargetConfig::default();
    let r = &mut cfg.rules;
    r.session_velocity.action = Action::Log;
    r.account_velocity.action = Action::Log;
    r.robotic_cadence.action = Action::Log;
    r.concurrency.in_flight_action = Action::Log;
    r.fingerprint.ja3 = Action::Log;
    cfg
}

/// A client builder, through `proxy` when given.
fn builder(proxy: Option<&str>) -> reqwest::ClientBuilder {
    let b = reqwest::Client::builder();
    match proxy {
        Some(p) => b.proxy(reqwest::Proxy::http(p).expect("a proxy URL")),
        None => b,
    }
}

/// The CSRF token of the login form.
pub(crate) fn csrf_token(html: &str) -> &str {
    html.split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("csrf token in the form")
}

/// Logs in through the form and returns the `Cookie` header the session needs.
async fn log_in(target: &TargetServer, proxy: Option<&str>, user: &str, password: &str) -> String {
    let jar = Arc::new(reqwest::cookie::Jar::default());
    let client = builder(proxy)
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
    let csrf = csrf_token(&html);
    let params = [("csrf", csrf), ("username", user), ("password", password)];
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

/// One client per worker, each with its own session cookie born on the
/// path it will use (direct, or through `proxy`), as a crawler with
/// several logged-in workers would run.
pub(crate) async fn clients(target: &TargetServer, proxy: Option<&str>) -> Vec<reqwest::Client> {
    let mut clients = Vec::with_capacity(WORKERS);
    for i in 0..WORKERS {
        let (user, password) = if i % 2 == 0 {
            ("alice", "wonderland")
        } else {
            ("bob", "builder")
        };
        let cookie = log_in(target, proxy, user, password).await;
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert(
            reqwest::header::COOKIE,
            cookie.parse().expect("cookie header"),
        );
        let client = builder(proxy)
            .default_headers(headers)
            .build()
            .expect("client");
        clients.push(client);
    }
    clients
}

/// Whether a worker sends the same headers on every request, as a
/// keep-alive client does, or varies one value so that no two requests
/// of a connection have the same headers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Headers {
    /// Every request of a worker sends the same headers.
    Repeated,
    /// Each request sends a different `Accept` value.
    Varied,
}

/// Loads `url` with every worker for one round, with repeated or varied
/// headers; returns requests per second.
pub(crate) async fn round(clients: &[reqwest::Client], url: &str, headers: Headers) -> f64 {
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
                    let mut req = client.get(&url);
                    if headers == Headers::Varied {
                        let n = done.load(Ordering::Relaxed);
                        req = req.header(
                            reqwest::header::ACCEPT,
                            format!("application/json, */*;n={n}"),
                        );
                    }
                    let r = req.send().await.expect("request");
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

/// The median of `v`.
pub(crate) fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// The smallest and largest of `v`.
pub(crate) fn range(v: &[f64]) -> (f64, f64) {
    let lo = v.iter().copied().fold(f64::MAX, f64::min);
    let hi = v.iter().copied().fold(0.0, f64::max);
    (lo, hi)
}

/// The `page` query parameter, as the target reads it, for the plain
/// handlers the benches compare against.
/// (The proxy bench serves no plain page.)
#[allow(dead_code)]
#[derive(Debug, serde::Deserialize)]
pub(crate) struct PageQuery {
    /// 1-based page number; 1 when left out.
    pub(crate) page: Option<u32>,
}
