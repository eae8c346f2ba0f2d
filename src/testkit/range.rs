//! The kit's in-process range: a scenario's whole stack on tokio's paused clock, a client function run against it, graded like `run`.
//!
//! The stack is the one `sessionrange run` starts (target, listeners,
//! proxy pool, CA, trace), on a runtime whose clock is paused: tokio
//! jumps over every wait when nothing is ready to run, so a client that
//! paces itself at four requests a second crawls in milliseconds what
//! takes seconds on a real clock. The target's manual [`Clock`] follows
//! that time, so its rules (rates, TTLs, sticky sessions, timed faults,
//! the timeline) see the same time the client does.

use std::fmt::Display;
use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::task::{JoinError, LocalSet};

use crate::clock::{Clock, Timestamp};
use crate::contract::{self, RunPaths};
use crate::error::{Error, Result};
use crate::grade::{Criterion, Metrics, Outcome};
use crate::range::Range;
use crate::scenario::Scenario;
use crate::site::config::AccountSpec;
use crate::site::{TargetState, TraceLog};
use crate::testkit::invariants::{Invariant, Trace, Violation};

/// How often the target's clock catches up with tokio's; the most the
/// target's time lags behind the client's.
const TICK: Duration = Duration::from_millis(1);
/// The trace a kit run keeps in memory for its [`Trace`]: enough for a
/// scenario's worth of decisions.
const TRACE_BYTES: usize = 256 << 20;
/// The dataset salt when none is set, so that a case replays the same.
const DEFAULT_SEED: u64 = 0x5e55_1012;

/// What a client function is told: the `SESSIONRANGE_*` contract of
/// `sessionrange run`, as values and as the variables themselves.
#[derive(Clone, Debug)]
pub struct KitEnv {
    /// The base URL, such as `http://127.0.0.1:41234` (HTTPS when the
    /// scenario asks for it).
    pub target: String,
    /// The static proxies' URLs, with their credentials.
    pub proxies: Vec<String>,
    /// The rotating gateway's URL, if the pool has one.
    pub gateway: Option<String>,
    /// The accounts to log in with.
    pub accounts: Vec<AccountSpec>,
    /// The accounts, as the JSON file `run` gives a client.
    pub accounts_file: PathBuf,
    /// Where to write the records, one JSON object per line.
    pub output: PathBuf,
    /// The run's CA certificate, PEM, for an HTTPS target.
    pub ca_pem: String,
    /// The scenario's name.
    pub scenario: String,
    /// Unix seconds by which the client must be done.
    pub deadline: u64,
    vars: Vec<(String, String)>,
}

impl KitEnv {
    /// The `SESSIONRANGE_*` variables (and, over HTTPS, the trust
    /// variables) that `run` would set.
    pub fn vars(&self) -> &[(String, String)] {
        &self.vars
    }

    /// One of [`KitEnv::vars`], by name.
    pub fn var(&self, name: &str) -> Option<&str> {
        let found = self.vars.iter().find(|(k, _)| k == name);
        found.map(|(_, v)| v.as_str())
    }
}

/// One client run on the kit's range: the grade `run` would give, the
/// trace, and how the client function ended.
#[derive(Debug)]
pub struct KitRun {
    /// The scenario's name.
    pub scenario: String,
    /// Pass, fail or inconclusive, as `run` says it.
    pub outcome: Outcome,
    /// The criteria, the client's own first.
    pub criteria: Vec<Criterion>,
    /// Everything measured.
    pub metrics: Metrics,
    /// Every line the target and the pool wrote.
    pub trace: Trace,
    /// The time the run took on the range's clock.
    pub elapsed: Duration,
}

impl KitRun {
    /// The criteria that failed.
    pub fn failed(&self) -> Vec<&Criterion> {
        self.criteria.iter().filter(|c| !c.passed).collect()
    }

    /// The violations of `invariants` in the trace, in trace order.
    pub fn violations(&self, invariants: &[Invariant]) -> Vec<Violation> {
        self.trace.check(invariants)
    }

    /// The outcome and each failed criterion with its details, one per
    /// line: what a failing test should print.
    pub fn card(&self) -> String {
        let mut card = format!("{}: {}\n", self.scenario, self.outcome.word());
        for c in self.failed() {
            card.push_str(&format!(
                "  {}: {} (wanted {})\n",
                c.name, c.value, c.threshold
            ));
            for d in &c.details {
                card.push_str(&format!("    {d}\n"));
            }
        }
        card
    }
}

/// Runs client functions on a scenario's stack on a paused clock.
///
/// See the [module](crate::testkit) for an example.
#[derive(Clone, Debug)]
#[must_use = "a kit does nothing until `run` is called"]
pub struct Kit {
    scenario: Scenario,
    seed: u64,
    keep: Option<PathBuf>,
}

impl Kit {
    /// A kit for `scenario`, with a fixed dataset salt.
    pub fn new(scenario: &Scenario) -> Self {
        Self {
            scenario: scenario.clone(),
            seed: DEFAULT_SEED,
            keep: None,
        }
    }

    /// Salts the served records with `seed` instead of the fixed default.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Keeps the run's files (accounts, output, CA) in `dir` instead of
    /// a temporary folder removed after the run.
    pub fn keep_files(mut self, dir: impl Into<PathBuf>) -> Self {
        self.keep = Some(dir.into());
        self
    }

    /// Starts the stack on a paused current-thread runtime of its own,
    /// runs `client` against it until it returns or the scenario's
    /// timeout passes (on the paused clock), and grades it. An `Err` from
    /// the client, a panic or the timeout fails the `client` criterion;
    /// only a stack that cannot start is an `Err` here.
    pub fn run<F, Fut, E>(&self, client: F) -> Result<KitRun>
    where
        F: FnOnce(KitEnv) -> Fut,
        Fut: Future<Output = std::result::Result<(), E>> + 'static,
        E: Display + 'static,
    {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .start_paused(true)
            .build()
            .map_err(|e| Error::io("the kit's runtime", e))?;
        let dir = self.keep.clone().unwrap_or_else(temporary_dir);
        let ran = LocalSet::new().block_on(&runtime, self.run_in(&dir, client));
        if self.keep.is_none() {
            let _ = std::fs::remove_dir_all(&dir);
        }
        ran
    }

    async fn run_in<F, Fut, E>(&self, dir: &std::path::Path, client: F) -> Result<KitRun>
    where
        F: FnOnce(KitEnv) -> Fut,
        Fut: Future<Output = std::result::Result<(), E>> + 'static,
        E: Display + 'static,
    {
        let scenario = &self.scenario;
        let paths = RunPaths::create(dir)?;
        let clock = Clock::manual(Clock::system().now());
        let range = self.start(clock.clone(), &paths).await?;
        let state = range.state().clone();
        let started = clock.now();
        let follow = tokio::task::spawn_local(follow_time(clock.clone(), state.clone()));
        let env = kit_env(scenario, &range, &paths, started);
        let task = tokio::task::spawn_local(client(env));
        let ended = tokio::time::timeout(scenario.run.timeout, task).await;
        let stopped = ended.is_err();
        let client = client_criterion(ended, scenario.run.timeout);
        follow.abort();
        let ended = clock.now();
        let _ = range.stop().await;
        let finished = contract::grade_finished(scenario, &state, &paths.output, started, ended);
        let (metrics, mut criteria) = (finished.metrics, finished.criteria);
        criteria.insert(0, client);
        // Records the client chose not to fetch: one stopped at its
        // deadline is not charged twice (its criterion already failed).
        let left = state.served_ids().len() < u64::from(state.dataset.len());
        let work_left = left && !stopped;
        let trace = Trace::from_lines(&state.trace.recent(), scenario.grade.in_flight_grace)?;
        Ok(KitRun {
            scenario: scenario.name.clone(),
            outcome: Outcome::of(&criteria),
            criteria,
            metrics,
            trace: trace.with_work_left(work_left),
            elapsed: ended.since(started),
        })
    }

    /// The scenario's stack on `clock`, its trace graded as written and
    /// kept in memory, its CA and accounts written for the client.
    async fn start(&self, clock: Clock, paths: &RunPaths) -> Result<Range> {
        let trace = TraceLog::in_memory()
            .keeping_recent(TRACE_BYTES)
            .grading(self.scenario.grade.in_flight_grace);
        let range = Range::builder(&self.scenario)
            .seed(self.seed)
            .clock(clock)
            .trace(trace)
            .start()
            .await?;
        contract::hand_over(&range, &self.scenario, paths)?;
        Ok(range)
    }
}

/// A fresh folder under the system's temporary directory.
fn temporary_dir() -> PathBuf {
    let name = format!(
        "sessionrange-kit-{}-{:016x}",
        std::process::id(),
        rand::random::<u64>()
    );
    std::env::temp_dir().join(name)
}

/// Keeps the target's manual clock on tokio's (paused) time, and fires
/// the timeline when due, as the runner does.
async fn follow_time(clock: Clock, state: Arc<TargetState>) {
    let (start, origin) = (clock.now(), tokio::time::Instant::now());
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let now = start.plus(origin.elapsed());
        clock.set(now);
        state.run_script(now);
    }
}

/// The client function's environment: `run`'s contract for this range.
fn kit_env(scenario: &Scenario, range: &Range, paths: &RunPaths, started: Timestamp) -> KitEnv {
    let deadline = started.plus(scenario.run.timeout);
    let target = contract::base_url(scenario, range);
    let vars = contract::environment(scenario, &target, range.pool(), paths, deadline);
    KitEnv {
        target,
        proxies: range.pool().exits().iter().map(|e| e.url.clone()).collect(),
        gateway: range.pool().gateway().map(|g| g.url.clone()),
        accounts: scenario.target.accounts.clone(),
        accounts_file: paths.accounts.clone(),
        output: paths.output.clone(),
        ca_pem: range.ca_pem().to_owned(),
        scenario: scenario.name.clone(),
        deadline: deadline.as_secs(),
        vars,
    }
}

/// The client's criterion: its function returned `Ok` before the
/// scenario's timeout.
fn client_criterion<E: Display>(
    ended: std::result::Result<
        std::result::Result<std::result::Result<(), E>, JoinError>,
        tokio::time::error::Elapsed,
    >,
    timeout: Duration,
) -> Criterion {
    let value = match ended {
        Ok(Ok(Ok(()))) => None,
        Ok(Ok(Err(e))) => Some(format!("returned an error: {e}")),
        Ok(Err(e)) if e.is_panic() => Some(format!("panicked: {}", panic_text(e))),
        Ok(Err(_)) => Some("was cancelled".to_owned()),
        Err(_) => Some(format!("ran past the scenario's timeout of {timeout:?}")),
    };
    Criterion {
        name: "client".into(),
        passed: value.is_none(),
        value: value.clone().unwrap_or_else(|| "returned Ok".into()),
        threshold: "Ok before the timeout".into(),
        details: value
            .map(|v| vec![format!("the client function {v}")])
            .unwrap_or_default(),
    }
}

/// A panic's message, when it is a string.
fn panic_text(e: JoinError) -> String {
    let payload = e.into_panic();
    let text = payload.downcast_ref::<&str>().map(|s| (*s).to_owned());
    text.or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "with a payload that is not text".into())
}
