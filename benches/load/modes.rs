//! The bench's modes: every lane against its baseline, the floor against wrk, another server against the pipeline, the page's bytes.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use nix::sys::resource::UsageWho;
use sessionrange::{ProxyPool, TargetServer};
use tokio::runtime::Runtime;

use crate::common::config;
use crate::generator::{Lane, cpu_seconds, hyper_round};
use crate::servers::{self, POOL_USER, Page};
use crate::session::{Credential, PAGE, api_login, fetch_page, form_login};
use crate::wire::{ACCEPT, Extra, Route, USER_AGENT};
use crate::{Args, Mode, report};

/// A bound on any round's count: far above what this machine serves.
const MAX_RATE: f64 = 400_000.0;
/// Blocks of sequential requests per path for the latency figures.
const LATENCY_BLOCKS: usize = 20;
/// Sequential requests per block.
const LATENCY_BLOCK: usize = 100;

/// The floor lane: the first of a turn.
const FLOOR: usize = 0;
/// The cookie session, direct.
const COOKIE: usize = 1;
/// The bearer JWT, direct.
const JWT: usize = 2;
/// The cookie session through the pool's exit.
const EXIT: usize = 3;
/// The HTTPS floor.
const HTTPS_FLOOR: usize = 4;
/// The cookie session over HTTPS.
const HTTPS: usize = 5;
/// The cookie session through a bare TCP relay: the last of a turn.
const RELAY: usize = 6;

/// What every mode starts from: the two runtimes, the target (trace on
/// disk) with its pool, a cookie session logged in directly, and page 1.
pub(crate) struct Setup {
    /// The servers' runtime: one worker per core.
    pub(crate) servers: Runtime,
    /// The generator's runtime: one thread, like `wrk -t1`.
    pub(crate) client: Runtime,
    /// The target, its trace appended to a file under `dir`.
    pub(crate) target: TargetServer,
    /// The pool in front of it, with one static exit.
    pub(crate) pool: ProxyPool,
    /// Plain HTTP straight to the target.
    pub(crate) direct: Route,
    /// The cookie session logged in on `direct`.
    pub(crate) cookie: Credential,
    /// Page 1 as the target served it: what the floors serve.
    pub(crate) page: Page,
    /// The run's folder, removed at the end.
    pub(crate) dir: PathBuf,
}

impl Setup {
    /// Starts the runtimes and the target, logs in and fetches page 1.
    fn start() -> Self {
        let servers = Runtime::new().expect("the servers' runtime");
        let client = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("the generator's runtime");
        let dir = std::env::temp_dir().join(format!("sessionrange-load-{}", std::process::id()));
        let trace = dir.join("trace.jsonl");
        let (target, pool) = servers.block_on(servers::target(config(), &trace));
        let direct = Route::plain(target.addr());
        let (cookie, page) = client.block_on(async {
            let cookie = form_login(&direct, "alice", "wonderland").await;
            let page = fetch_page(&direct, &cookie).await;
            (cookie, page)
        });
        Self {
            servers,
            client,
            target,
            pool,
            direct,
            cookie,
            page,
            dir,
        }
    }

    /// Stops the servers and removes the trace.
    fn finish(self) {
        drop((self.pool, self.target));
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Runs the mode `args` asks for.
pub(crate) fn run(args: &Args) {
    let setup = Setup::start();
    match &args.mode {
        Mode::PrintPage => {
            let mut out = std::io::stdout();
            out.write_all(&setup.page.body).expect("write the page");
        }
        Mode::FloorOnly => floor_only(&setup, args),
        Mode::Url(url) => other_server(&setup, args, url),
        Mode::Full => full(&setup, args),
        Mode::Shared => crate::shared::run(&setup, args),
    }
    setup.finish();
}

/// A round's count bound.
pub(crate) fn max(round: Duration) -> u64 {
    (MAX_RATE * round.as_secs_f64()) as u64
}

/// One warm-up turn, then `pairs` turns of one round per lane; returns
/// each lane's rates, turn by turn.
pub(crate) async fn turns(lanes: &mut [Lane], round: Duration, pairs: usize) -> Vec<Vec<f64>> {
    let mut rates = vec![Vec::new(); lanes.len()];
    for turn in 0..=pairs {
        for (lane, r) in lanes.iter_mut().zip(rates.iter_mut()) {
            let rate = lane.round(round, max(round)).await;
            if turn > 0 {
                r.push(rate);
            }
        }
    }
    rates
}

/// Every lane, every ratio, then the proxy's added latency.
fn full(s: &Setup, args: &Args) {
    let tls = s.target.state().tls.server.clone();
    let floor = s.servers.block_on(servers::floor(s.page.clone()));
    let https_floor = s
        .servers
        .block_on(servers::https_floor(s.page.clone(), tls));
    let relay = s.servers.block_on(servers::tcp_relay(s.target.addr()));
    let started = Instant::now();
    let sent = s.client.block_on(async {
        let mut lanes = lanes(s, floor, https_floor, relay, args.connections).await;
        let rates = turns(&mut lanes, args.round(), args.pairs()).await;
        for (lane, r) in lanes.iter().zip(&rates) {
            report::rates(lane.name, r);
        }
        report::cpu(&lanes);
        if args.verbose {
            lanes
                .iter()
                .zip(&rates)
                .for_each(|(l, r)| report::each(l.name, r));
        }
        report::ratio("cookie / floor", &rates[COOKIE], &rates[FLOOR], 0.75);
        report::ratio("JWT / floor", &rates[JWT], &rates[FLOOR], 0.65);
        report::ratio(
            "HTTPS / HTTPS floor",
            &rates[HTTPS],
            &rates[HTTPS_FLOOR],
            0.75,
        );
        report::ratio(
            "pool exit / direct cookie",
            &rates[EXIT],
            &rates[COOKIE],
            0.8,
        );
        report::context("bare relay / direct cookie", &rates[RELAY], &rates[COOKIE]);
        let route = Route::plain(relay);
        let request = s.cookie.page_request(&route);
        let mut relay = Lane::open("relay", &route, request, 1).await;
        let (direct, exit) = lanes.split_at_mut(EXIT);
        latency(&mut direct[COOKIE], &mut exit[0], &mut relay).await;
        let pipeline = [COOKIE, JWT, EXIT, HTTPS].map(|i| lanes[i].sent);
        pipeline.iter().sum::<u64>() + relay.sent
    });
    let (connections, pairs) = (args.connections, args.pairs());
    let ms = args.round().as_millis();
    println!(
        "load: {connections} keep-alive connections per lane, {pairs} turns of {ms} ms rounds after one warm-up turn, {:.0} s of load",
        started.elapsed().as_secs_f64()
    );
    trace_note(s, sent);
}

/// What the trace took on disk per request of the pipeline.
fn trace_note(s: &Setup, requests: u64) {
    let path = s.dir.join("trace.jsonl");
    let bytes: u64 = std::fs::read_dir(&s.dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|f| f.metadata().ok())
        .map(|m| m.len())
        .sum();
    let per = bytes as f64 / requests.max(1) as f64;
    println!(
        "load: the trace ({}) took {:.0} MB, {per:.0} bytes per pipeline request",
        path.display(),
        bytes as f64 / 1e6
    );
}

/// The lanes of a turn, each logged in on its own path.
async fn lanes(
    s: &Setup,
    floor: SocketAddr,
    https_floor: SocketAddr,
    relay: SocketAddr,
    n: usize,
) -> Vec<Lane> {
    let ca = s.target.ca_pem();
    let https = Route::tls(s.target.https_addr(), ca);
    let exit = s.pool.exit("home").expect("the pool's exit").addr;
    let pooled = Route::proxied(s.target.addr(), exit, POOL_USER);
    let jwt = api_login(&s.direct, "bob", "builder").await;
    let https_cookie = form_login(&https, "alice", "wonderland").await;
    let pool_cookie = form_login(&pooled, "alice", "wonderland").await;
    let (floor, https_floor) = (Route::plain(floor), Route::tls(https_floor, ca));
    let relay = Route::plain(relay);
    let plan = [
        ("floor", &floor, &s.cookie),
        ("pipeline, cookie", &s.direct, &s.cookie),
        ("pipeline, JWT", &s.direct, &jwt),
        ("pipeline, pool exit", &pooled, &pool_cookie),
        ("HTTPS floor", &https_floor, &s.cookie),
        ("pipeline, HTTPS cookie", &https, &https_cookie),
        ("pipeline, bare relay", &relay, &s.cookie),
    ];
    let mut lanes = Vec::with_capacity(plan.len());
    for (name, route, credential) in plan {
        let request = credential.page_request(route);
        lanes.push(Lane::open(name, route, request, n).await);
    }
    lanes
}

/// Sequential requests on one connection of each path, in alternating
/// blocks, so that a slow moment of the host falls on all three.
async fn latency(direct: &mut Lane, exit: &mut Lane, relay: &mut Lane) {
    let (mut d, mut e, mut r) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..LATENCY_BLOCKS {
        d.extend(direct.latencies(LATENCY_BLOCK).await);
        e.extend(exit.latencies(LATENCY_BLOCK).await);
        r.extend(relay.latencies(LATENCY_BLOCK).await);
    }
    report::latency(d, e, r, 50.0);
}

/// One client's rounds on the floor: requests per second, and the CPU it
/// spent on each request (its own thread, or the wrk process).
#[derive(Default)]
struct Client {
    /// Requests per second, round by round.
    rates: Vec<f64>,
    /// CPU seconds over all rounds.
    cpu: f64,
    /// Requests over all rounds.
    requests: f64,
}

impl Client {
    /// Adds a round of `requests` served at `rate` that cost `cpu` seconds.
    fn add(&mut self, rate: f64, requests: f64, cpu: f64) {
        self.rates.push(rate);
        self.requests += requests;
        self.cpu += cpu;
    }

    /// Prints the rounds and the CPU per request.
    fn report(&self, name: &str) {
        report::rates(name, &self.rates);
        let us = 1e6 * self.cpu / self.requests.max(1.0);
        println!("load: {name:<22} {us:.2} us of CPU per request");
    }
}

/// The floor with this generator, with hyper's HTTP/1 client and with
/// `wrk -t1` (when on PATH), in turns of equal length on the same server.
fn floor_only(s: &Setup, args: &Args) {
    let addr = s.servers.block_on(servers::floor(s.page.clone()));
    let url = format!("http://{addr}{PAGE}");
    let (n, round) = (args.connections, args.round());
    println!(
        "floor: {url}, {n} connections, rounds of {} s",
        round.as_secs_f64()
    );
    let route = Route::plain(addr);
    let headers = [
        ("host", addr.to_string()),
        ("user-agent", USER_AGENT.to_owned()),
        ("accept", ACCEPT.to_owned()),
        ("cookie", s.cookie.value.clone()),
    ];
    let request = s.cookie.page_request(&route);
    let mut lane = s.client.block_on(Lane::open("floor", &route, request, n));
    let (mut ours, mut hyper, mut wrk) = (Client::default(), Client::default(), Client::default());
    let thread = || cpu_seconds(UsageWho::RUSAGE_THREAD);
    for _ in 0..args.pairs() {
        let (cpu, sent) = (thread(), lane.sent);
        let rate = s.client.block_on(lane.round(round, max(round)));
        ours.add(rate, (lane.sent - sent) as f64, thread() - cpu);
        let (cpu, t) = (thread(), Instant::now());
        let rate = s
            .client
            .block_on(hyper_round(addr, PAGE, &headers, n, (round, max(round))));
        hyper.add(rate, rate * t.elapsed().as_secs_f64(), thread() - cpu);
        let cpu = cpu_seconds(UsageWho::RUSAGE_CHILDREN);
        if let Some((rate, requests)) = run_wrk(&url, &s.cookie, n, round) {
            wrk.add(rate, requests, cpu_seconds(UsageWho::RUSAGE_CHILDREN) - cpu);
        }
    }
    ours.report("this generator");
    hyper.report("hyper client::conn");
    if wrk.rates.is_empty() {
        println!("floor: wrk is not on PATH; nothing to compare with");
        return;
    }
    wrk.report("wrk -t1");
    report::ratio("this generator / wrk", &ours.rates, &wrk.rates, 1.0);
    report::ratio("hyper client::conn / wrk", &hyper.rates, &wrk.rates, 1.0);
}

/// `wrk -t1` on `url` with the same headers for one round: its requests
/// per second and its count, or `None` without wrk.
fn run_wrk(url: &str, cookie: &Credential, n: usize, round: Duration) -> Option<(f64, f64)> {
    let out = std::process::Command::new("wrk")
        .arg("-t1")
        .arg(format!("-c{n}"))
        .arg(format!("-d{}s", round.as_secs().max(1)))
        .args(["-H", &format!("User-Agent: {USER_AGENT}")])
        .args(["-H", &format!("Accept: {ACCEPT}")])
        .args(["-H", &format!("{}: {}", cookie.name, cookie.value)])
        .arg(url)
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let number = |prefix: &str| {
        let line = text.lines().find(|l| l.contains(prefix))?;
        let word = match prefix {
            "Requests/sec:" => line.split_whitespace().nth(1),
            _ => line.split_whitespace().next(),
        };
        word?.parse::<f64>().ok()
    };
    Some((number("Requests/sec:")?, number(" requests in ")?))
}

/// Another server's page (`--url`, plain HTTP on loopback) against the
/// cookie pipeline, loaded with the same generator and request headers;
/// the other server is loaded alone for `--warmup` first.
fn other_server(s: &Setup, args: &Args, url: &str) {
    let rest = url.strip_prefix("http://").expect("an http:// URL");
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let addr: SocketAddr = authority.parse().expect("an IP address and port");
    assert!(addr.ip().is_loopback(), "only loopback servers are loaded");
    let path = if path.is_empty() { "/" } else { path };
    let route = Route::plain(addr);
    let extra = Extra {
        credential: Some((s.cookie.name, &s.cookie.value)),
        body: None,
    };
    let (n, round) = (args.connections, args.round());
    s.client.block_on(async {
        let mut other =
            Lane::open("other server", &route, route.request("GET", path, extra), n).await;
        let started = Instant::now();
        while started.elapsed() < args.warmup {
            let r = other.round(round, max(round)).await;
            println!("load: warm-up, other server {} req/s", report::rate(r));
        }
        let request = s.cookie.page_request(&s.direct);
        let pipeline = Lane::open("pipeline, cookie", &s.direct, request, n).await;
        let mut lanes = [other, pipeline];
        let rates = turns(&mut lanes, round, args.pairs()).await;
        report::rates("other server", &rates[0]);
        report::rates("pipeline, cookie", &rates[1]);
        report::ratio("pipeline / other server", &rates[1], &rates[0], 4.0);
    });
}
