//! Load benchmark: the target's full pipeline against the static floor, in the same run.
//!
//! The floor is an axum server that answers `GET /api/v1/items` with the
//! very bytes (and Content-Type) the target sends for page 1, fetched from
//! it once at start: no session, no rule, no trace. The pipeline is the
//! target with the bench configuration (the rate, cadence and in-flight
//! rules off, so the load is not refused; every other rule evaluated), its
//! trace appended to a file on disk.
//!
//! Lanes, each with its own keep-alive connections (32 by default) and
//! its own session logged in on its own path: the floor, the cookie
//! session (the form login, companion cookies included), a bearer JWT
//! (`POST /api/login`, the signature verified on every request), the
//! HTTPS floor (the target's certificate and rustls configuration) and
//! the cookie session over HTTPS, the cookie session through a static
//! exit of the proxy pool, and the direct cookie session through a bare
//! TCP relay (the least any extra hop costs; printed without a goal). One
//! turn loads every lane for one round (1 s);
//! after a warm-up turn, each ratio is taken per turn and its median and
//! range printed beside its goal. Then the latency the proxy adds:
//! sequential requests on one connection, direct, through the exit and
//! through a bare TCP relay, in alternating blocks.
//!
//! The load generator (`generator`, on `wire`) runs on its own
//! single-threaded runtime, like `wrk -t1`; the servers run on another.
//!
//! Run with `cargo bench --bench load`. Other modes (after `--`):
//! `--shared` loads the target on a real Redis (one instance, then two)
//! against the target in memory (see `shared`);
//! `--floor-only` measures the floor with this generator, with hyper's
//! client and with wrk (when on PATH), in turns; `--print-page` writes the
//! page's bytes to stdout; `--url URL` loads another server's page against
//! the cookie pipeline (`--warmup SECS` first). `--connections N`,
//! `--pairs N` and `--secs S` change the shape; `--verbose` prints every
//! round's figure as well.

#[path = "../common/mod.rs"]
mod common;
mod generator;
mod modes;
#[path = "../../tests/common/redis.rs"]
#[allow(
    dead_code,
    reason = "the bench starts a Redis without persistence only"
)]
mod redis;
mod report;
mod servers;
mod session;
mod shared;
mod wire;

use std::time::Duration;

/// What a run does.
#[derive(Clone, Debug, PartialEq)]
enum Mode {
    /// Every lane, every ratio, the proxy's latency.
    Full,
    /// The floor with this generator, hyper's client and wrk.
    FloorOnly,
    /// The page's bytes to stdout.
    PrintPage,
    /// Another server's page against the cookie pipeline.
    Url(String),
    /// The target on a shared Redis store against the target in memory.
    Shared,
}

/// The command line.
#[derive(Clone, Debug)]
struct Args {
    mode: Mode,
    /// Keep-alive connections per lane.
    connections: usize,
    /// Measured turns (pairs of rounds), after one warm-up turn; by
    /// default 9, or 3 for the floor check.
    pairs: Option<usize>,
    /// One round's length; by default 1 s, or 5 s for the floor check
    /// (wrk's `-d5s`).
    round: Option<Duration>,
    /// With `--url`: how long to load the other server before measuring.
    warmup: Duration,
    /// Every round's figure too, in the order they ran (`--verbose`).
    verbose: bool,
}

impl Args {
    /// Parses the arguments; `None` for `--list` (cargo's listing of
    /// benches, which has nothing to list here).
    fn parse() -> Option<Self> {
        let mut args = Args {
            mode: Mode::Full,
            connections: 32,
            pairs: None,
            round: None,
            warmup: Duration::ZERO,
            verbose: false,
        };
        let mut it = std::env::args().skip(1);
        while let Some(a) = it.next() {
            let mut value = || it.next().unwrap_or_else(|| panic!("{a} needs a value"));
            match a.as_str() {
                "--list" => return None,
                "--bench" => {}
                "--floor-only" => args.mode = Mode::FloorOnly,
                "--print-page" => args.mode = Mode::PrintPage,
                "--shared" => args.mode = Mode::Shared,
                "--verbose" => args.verbose = true,
                "--url" => args.mode = Mode::Url(value()),
                "--connections" => args.connections = number(&value()),
                "--pairs" => args.pairs = Some(number(&value())),
                "--secs" => args.round = Some(Duration::from_secs_f64(number(&value()))),
                "--warmup" => args.warmup = Duration::from_secs_f64(number(&value())),
                other => panic!("unknown argument {other}: see benches/load/main.rs"),
            }
        }
        Some(args)
    }

    /// Measured turns.
    fn pairs(&self) -> usize {
        let default = if self.mode == Mode::FloorOnly { 3 } else { 9 };
        self.pairs.unwrap_or(default)
    }

    /// One round's length.
    fn round(&self) -> Duration {
        let default = if self.mode == Mode::FloorOnly { 5 } else { 1 };
        self.round.unwrap_or(Duration::from_secs(default))
    }
}

/// A number argument.
fn number<T: std::str::FromStr>(text: &str) -> T {
    text.parse()
        .unwrap_or_else(|_| panic!("{text} is not a number"))
}

/// Parses the command line and runs its mode.
fn main() {
    let Some(args) = Args::parse() else {
        return;
    };
    modes::run(&args);
}
