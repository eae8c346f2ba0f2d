//! The built-in reference client: a well-behaved scraper, and nine ways to get it wrong.
//!
//! `sessionrange client` is what the runner grades when it is given no
//! client of its own, and the yardstick for the scenarios: with no
//! `--bug` it extracts every record without a single invalidation on a
//! plain scenario, and recovers from every refusal style when a scenario
//! is hostile. Each [`Bug`] flips one of its habits into a mistake real
//! scrapers make, so the grade (and the tests) can show that the range
//! catches it.
//!
//! Only with the `cli` feature (on by default), like the runner and the
//! report: a test that depends on sessionrange with `default-features =
//! false` gets the target and the pool without reqwest or clap.
//!
//! The client reads its instructions from the environment ([`ClientEnv`]):
//! the target's base URL, the proxies, the accounts file, the output file
//! and a deadline. It pages through `GET /api/v1/items`, writes each record
//! once to the output as JSON Lines, and returns a [`ClientSummary`].
//!
//! How it behaves:
//!
//! - **Sessions.** Cookie sessions from the login form (landing page first,
//!   for the companion cookies; CSRF, proof of work and TOTP when the form
//!   asks). When the target refuses cookies on data, it switches to bearer
//!   tokens from `POST /api/login`, renewed before they expire by one
//!   worker at a time (single flight).
//! - **Exits.** Each session is pinned to one exit for life: a static proxy
//!   (round-robin), a gateway sticky session with a fresh id, or direct.
//! - **Pacing.** Four requests per second per account, jittered ±35 %;
//!   `429 Retry-After` is obeyed and slows the pace for good.
//! - **Refusals.** Every style of the target is recognised (see
//!   `classify.rs`). A refused session is retired at once; a new one logs
//!   in on a fresh exit, preferably with another account, after a backoff,
//!   and the page that failed is fetched next. Banned accounts, and
//!   accounts invalidated twice, are not used again; dead or banned exits
//!   neither. With nothing usable left the client stops cleanly.

mod accounts;
mod catalog;
mod classify;
mod exits;
mod items;
mod jar;
mod login;
mod output;
mod pace;
mod queue;
mod session;
mod shared;
mod summary;
mod worker;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::time::Duration;

use anyhow::{Context as _, bail};
use parking_lot::Mutex;
use reqwest::Url;
use serde::Serialize;
use tokio::task::JoinSet;
use tokio::time::Instant;

pub use summary::ClientSummary;

use accounts::AccountBook;
use exits::ExitBook;
use output::Output;
use pace::Pacer;
use queue::Queue;
use shared::Shared;
use summary::Stats;
use worker::Worker;

/// A deliberate mistake, one behaviour of the good client flipped.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Bug {
    /// Send each request through a different exit, with the same session.
    RotateExitPerRequest,
    /// Send as fast as possible, with no gaps and no jitter.
    NoPacing,
    /// Drop the companion cookies after logging in.
    StripCompanionCookies,
    /// Let the workers use one session through different exits.
    ShareSessionAcrossExits,
    /// Take a `200` login page for an empty page of data and move on.
    IgnoreSoftLogout,
    /// Stop at the first refused session instead of logging in again.
    NoReauth,
    /// Let every worker refresh the tokens on its own, with the same refresh token.
    ParallelRefresh,
    /// Send the same request a few more times with a session that was refused.
    KeepUsingDeadSession,
    /// Log the same account in again on the same exit at once after each
    /// refusal, and run through the accounts until every one is banned.
    RetryBurnsAccounts,
    /// Switch TLS stacks mid-session (a TLS 1.2-only client once data
    /// came back): a new JA4 on a live session.
    SwitchTlsStack,
}

/// `sessionrange client` options.
#[derive(clap::Args, Debug, Clone)]
pub struct ClientArgs {
    /// Make one deliberate mistake, to check that the range catches it.
    #[arg(long, value_enum)]
    pub bug: Option<Bug>,
    /// Workers sharing the page queue.
    #[arg(long, default_value_t = 2)]
    pub workers: usize,
    /// Requests per second per account, on average.
    #[arg(long, default_value_t = 4.0)]
    pub rate: f64,
    /// Security invalidations after which an account is not used again
    /// (the target bans at its 3rd by default).
    #[arg(long, default_value_t = 2)]
    pub max_account_invalidations: u32,
    /// The longest one request may take.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    pub request_timeout: Duration,
    /// Print nothing on stderr while running.
    #[arg(long)]
    pub quiet: bool,
}

impl Default for ClientArgs {
    fn default() -> Self {
        Self {
            bug: None,
            workers: 2,
            rate: 4.0,
            max_account_invalidations: 2,
            request_timeout: Duration::from_secs(10),
            quiet: false,
        }
    }
}

impl ClientArgs {
    /// The default options with `bug`.
    pub fn with_bug(bug: Bug) -> Self {
        Self {
            bug: Some(bug),
            ..Self::default()
        }
    }
}

/// What the runner tells the client, through `SESSIONRANGE_*` variables.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientEnv {
    /// `SESSIONRANGE_TARGET`: the base URL, such as `http://127.0.0.1:41234`.
    pub target: String,
    /// `SESSIONRANGE_PROXIES`: static proxy URLs (comma-separated; may be empty).
    pub proxies: Vec<String>,
    /// `SESSIONRANGE_GATEWAY`: the rotating gateway's URL, if any.
    pub gateway: Option<String>,
    /// `SESSIONRANGE_ACCOUNTS`: a JSON array of `{username, password, totp_secret}`.
    pub accounts: PathBuf,
    /// `SESSIONRANGE_OUTPUT`: where to write the records, as JSON Lines.
    pub output: PathBuf,
    /// `SESSIONRANGE_SCENARIO`: the scenario's name.
    pub scenario: String,
    /// `SESSIONRANGE_DEADLINE`: Unix seconds by which the client must be done.
    pub deadline: u64,
    /// `SESSIONRANGE_CA_CERT`: the CA to trust when the target is `https`.
    pub ca_cert: Option<PathBuf>,
}

impl ClientEnv {
    /// Reads the process environment.
    pub fn from_env() -> anyhow::Result<Self> {
        Self::from_vars(|name| std::env::var(name).ok())
    }

    /// Reads the variables from `var`; an error names the variable that is
    /// missing or wrong.
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> anyhow::Result<Self> {
        let required = |name: &str| {
            var(name)
                .filter(|v| !v.trim().is_empty())
                .with_context(|| format!("{name} is not set"))
        };
        let optional = |name: &str| var(name).filter(|v| !v.trim().is_empty());
        let target = required("SESSIONRANGE_TARGET")?
            .trim()
            .trim_end_matches('/')
            .to_owned();
        Url::parse(&target)
            .with_context(|| format!("SESSIONRANGE_TARGET is not a URL: {target}"))?;
        let deadline = required("SESSIONRANGE_DEADLINE")?;
        let deadline = deadline
            .trim()
            .parse()
            .with_context(|| format!("SESSIONRANGE_DEADLINE is not Unix seconds: {deadline:?}"))?;
        let proxies = optional("SESSIONRANGE_PROXIES")
            .map(|p| {
                p.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default();
        Ok(Self {
            target,
            proxies,
            gateway: optional("SESSIONRANGE_GATEWAY").map(|g| g.trim().to_owned()),
            accounts: required("SESSIONRANGE_ACCOUNTS")?.into(),
            output: required("SESSIONRANGE_OUTPUT")?.into(),
            scenario: required("SESSIONRANGE_SCENARIO")?,
            deadline,
            ca_cert: optional("SESSIONRANGE_CA_CERT").map(PathBuf::from),
        })
    }
}

/// The CA of `SESSIONRANGE_CA_CERT`, if given.
fn ca(env: &ClientEnv) -> anyhow::Result<Option<Arc<[u8]>>> {
    let Some(path) = &env.ca_cert else {
        return Ok(None);
    };
    let pem = std::fs::read(path)
        .with_context(|| format!("reading SESSIONRANGE_CA_CERT {}", path.display()))?;
    reqwest::Certificate::from_pem(&pem).with_context(|| {
        format!(
            "SESSIONRANGE_CA_CERT {} is not a PEM certificate",
            path.display()
        )
    })?;
    Ok(Some(pem.into()))
}

/// Runs the client until every record is written, nothing usable is left,
/// or the deadline nears; the summary says which.
pub async fn run(env: ClientEnv, args: ClientArgs) -> anyhow::Result<ClientSummary> {
    if args.workers == 0 {
        bail!("--workers must be at least 1");
    }
    if !(args.rate.is_finite() && args.rate > 0.0) {
        bail!("--rate must be a positive number, got {}", args.rate);
    }
    let list = accounts::load(&env.accounts)?;
    let rate = (args.bug != Some(Bug::NoPacing)).then_some(args.rate);
    let limit = (args.bug != Some(Bug::RetryBurnsAccounts))
        .then_some(args.max_account_invalidations.max(1));
    let shared = Arc::new(Shared {
        bug: args.bug,
        workers: args.workers,
        base: Url::parse(&env.target).context("SESSIONRANGE_TARGET is not a URL")?,
        timeout: args.request_timeout,
        deadline: deadline(env.deadline),
        verbose: !args.quiet,
        pacers: list.iter().map(|_| Arc::new(Pacer::new(rate))).collect(),
        accounts: Mutex::new(AccountBook::new(list, limit)),
        exits: Mutex::new(ExitBook::new(
            &env.proxies,
            env.gateway.as_deref(),
            ca(&env)?,
        )?),
        queue: Queue::default(),
        output: Output::create(&env.output)?,
        stats: Arc::new(Stats::default()),
        jwt: AtomicBool::new(false),
        html: AtomicBool::new(false),
        slot: tokio::sync::Mutex::new(None),
        last_refused: Mutex::new(None),
        serial: AtomicU64::new(0),
    });
    let mut workers = JoinSet::new();
    for id in 0..args.workers {
        workers.spawn(Worker::new(id, Arc::clone(&shared)).run());
    }
    let all_done = async { while workers.join_next().await.is_some() {} };
    let in_time = tokio::time::timeout_at(shared.deadline, all_done)
        .await
        .is_ok();
    if !in_time {
        shared.queue.close();
        workers.shutdown().await;
    }
    Ok(summarize(&shared, &env, args.bug, !in_time))
}

fn summarize(sh: &Shared, env: &ClientEnv, bug: Option<Bug>, late: bool) -> ClientSummary {
    let mut s = sh.stats.snapshot();
    let (fetched, total) = sh.queue.progress();
    s.scenario = env.scenario.clone();
    s.bug = bug;
    s.records_written = sh.output.len();
    s.pages_fetched = s.pages_fetched.max(fetched as u64);
    s.pages_total = total;
    s.complete = sh.queue.is_complete();
    s.deadline_reached = late;
    if s.complete {
        s.gave_up = None;
    } else if late && s.gave_up.is_none() {
        s.gave_up = Some("the deadline came first".into());
    }
    let book = sh.accounts.lock();
    s.banned_accounts = book.retired(accounts::Retired::Banned);
    s.rested_accounts = book.retired(accounts::Retired::Rested);
    drop(book);
    s.dead_exits = sh.exits.lock().dead_labels();
    s
}

/// The instant to stop at: a little before the deadline, so the summary
/// is out in time.
fn deadline(unix_secs: u64) -> Instant {
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    let left = Duration::from_millis(unix_secs.saturating_mul(1000).saturating_sub(now_ms));
    let margin = (left / 10).min(Duration::from_secs(1));
    Instant::now() + (left - margin)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn vars(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |k| map.get(k).cloned()
    }

    const ALL: &[(&str, &str)] = &[
        ("SESSIONRANGE_TARGET", "http://127.0.0.1:4000/"),
        (
            "SESSIONRANGE_PROXIES",
            "http://a:b@127.0.0.1:1, http://a:b@127.0.0.1:2,",
        ),
        ("SESSIONRANGE_GATEWAY", ""),
        ("SESSIONRANGE_ACCOUNTS", "/tmp/accounts.json"),
        ("SESSIONRANGE_OUTPUT", "/tmp/out.jsonl"),
        ("SESSIONRANGE_SCENARIO", "baseline"),
        ("SESSIONRANGE_DEADLINE", "1790000000"),
    ];

    #[test]
    fn the_environment_is_read_and_tidied() {
        let env = ClientEnv::from_vars(vars(ALL)).expect("complete");
        assert_eq!(env.target, "http://127.0.0.1:4000");
        assert_eq!(env.proxies.len(), 2);
        assert_eq!(env.gateway, None);
        assert_eq!(env.deadline, 1_790_000_000);
    }

    #[test]
    fn a_missing_or_bad_variable_is_named() {
        for name in [
            "SESSIONRANGE_TARGET",
            "SESSIONRANGE_ACCOUNTS",
            "SESSIONRANGE_OUTPUT",
            "SESSIONRANGE_SCENARIO",
            "SESSIONRANGE_DEADLINE",
        ] {
            let some: Vec<(&str, &str)> = ALL.iter().copied().filter(|(k, _)| *k != name).collect();
            let err = ClientEnv::from_vars(vars(&some)).expect_err("missing");
            assert!(err.to_string().contains(name), "{err}");
        }
        let mut bad = ALL.to_vec();
        bad[6] = ("SESSIONRANGE_DEADLINE", "soon");
        let err = ClientEnv::from_vars(vars(&bad)).expect_err("bad deadline");
        assert!(err.to_string().contains("SESSIONRANGE_DEADLINE"), "{err}");
        let optional: Vec<(&str, &str)> = ALL
            .iter()
            .copied()
            .filter(|(k, _)| !k.ends_with("PROXIES") && !k.ends_with("GATEWAY"))
            .collect();
        assert!(ClientEnv::from_vars(vars(&optional)).is_ok());
    }

    #[test]
    fn bug_names_are_kebab_case() {
        use clap::ValueEnum as _;
        let names: Vec<String> = Bug::value_variants()
            .iter()
            .filter_map(|b| b.to_possible_value())
            .map(|v| v.get_name().to_owned())
            .collect();
        assert_eq!(
            names,
            [
                "rotate-exit-per-request",
                "no-pacing",
                "strip-companion-cookies",
                "share-session-across-exits",
                "ignore-soft-logout",
                "no-reauth",
                "parallel-refresh",
                "keep-using-dead-session",
                "retry-burns-accounts",
                "switch-tls-stack",
            ]
        );
        let json = serde_json::to_string(&Bug::NoPacing).expect("serializes");
        assert_eq!(json, "\"no-pacing\"");
    }
}
