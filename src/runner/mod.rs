//! `sessionrange run`: start the target and the pool, run the client under test, grade it.
//!
//! This is the imperative shell of grading. For each scenario it binds a
//! target and its proxy pool on free loopback ports, writes the accounts
//! file, runs the client command in a process group of its own with the
//! `SESSIONRANGE_*` environment, fires the scenario's timeline, kills the
//! group at the deadline, and hands the trace and the client's output to
//! the pure [`crate::grade`].
//!
//! Only with the `cli` feature (on by default), which also brings nix's
//! process and signal calls that the reaper needs.

pub mod process;
pub mod reaper;
pub mod select;
mod status;

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Serialize;
use tokio::process::Child;
use tokio::sync::watch;

use crate::clock::Timestamp;
use crate::contract::{self, RunPaths};
use crate::error::{Error, Result};
use crate::grade::{Criterion, Metrics, RunView};
use crate::range::Range;
use crate::scenario::Scenario;
use crate::site::{TargetState, TraceLimit, TraceLog};

pub use crate::contract::files;
pub use crate::grade::Outcome;
pub use process::ClientExit;
pub use status::Status;

/// One scenario's result.
#[derive(Clone, Debug, Serialize)]
pub struct ScenarioReport {
    /// The scenario's name.
    pub scenario: String,
    /// What it tests.
    pub description: String,
    /// Whether every criterion passed.
    pub passed: bool,
    /// Pass, fail, or inconclusive: every criterion but the trap passed,
    /// and the trap never fired, so the run tested nothing.
    pub outcome: Outcome,
    /// How the client ended.
    pub client: ClientExit,
    /// Everything measured.
    pub metrics: Metrics,
    /// Pass/fail lines, the client's own first.
    pub criteria: Vec<Criterion>,
    /// Proxy moves that happened, as sentences (sticky rotations, faults).
    pub proxy_notes: Vec<String>,
    /// Requests each target instance judged, when the run had several
    /// (`[run] instances`); empty otherwise.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub instances: Vec<u64>,
    /// The salt this run mixed into the dataset; `run --seed` with it
    /// serves the same records again.
    pub seed: u64,
    /// Where the trace, the output and the client's log are.
    pub run_dir: PathBuf,
    /// What the HTML report draws of the run: summed up from the trace as
    /// the target wrote it, never read back from the file.
    #[serde(skip)]
    pub view: RunView,
}

/// A whole run: every scenario, in order.
#[derive(Clone, Debug, Default, Serialize)]
pub struct RunReport {
    /// The scenarios that ran.
    pub scenarios: Vec<ScenarioReport>,
    /// Whether the run was interrupted.
    pub interrupted: bool,
}

impl RunReport {
    /// Whether every scenario passed.
    pub fn passed(&self) -> bool {
        !self.scenarios.is_empty() && self.scenarios.iter().all(|s| s.passed)
    }

    /// The exit code, following pytest: 0 all passed, 1 some criteria
    /// failed, 2 interrupted, 5 nothing ran. (3 and 4 come from errors.)
    pub fn exit_code(&self) -> i32 {
        if self.interrupted {
            2
        } else if self.scenarios.is_empty() {
            5
        } else if self.passed() {
            0
        } else {
            1
        }
    }
}

/// What to run and where.
#[derive(Clone, Debug)]
pub struct RunOptions {
    /// The client command: program and arguments.
    pub command: Vec<String>,
    /// The directory each scenario's run directory goes under.
    pub out_dir: PathBuf,
    /// Live one-line status on stderr.
    pub status: Status,
    /// The dataset salt, to reproduce a run; a fresh random one per
    /// scenario when `None`, so that no record can be known in advance.
    pub seed: Option<u64>,
    /// Whether every child process of this process is a client's: true in
    /// the `sessionrange run` binary, so orphans that cleared their
    /// environment are killed too (see [`reaper`]).
    pub sole_parent: bool,
    /// Print a one-time link to each scenario's live dashboard on stderr
    /// as it starts.
    pub dashboard: bool,
}

/// Runs every scenario in order; stops early when `stop` turns true.
/// An error (a port that cannot be bound, a client that cannot start)
/// ends the run and is returned with the reports made so far.
pub async fn run_all(
    scenarios: &[Scenario],
    opts: &RunOptions,
    stop: watch::Receiver<bool>,
) -> (RunReport, Option<Error>) {
    let mut report = RunReport::default();
    for scenario in scenarios {
        if *stop.borrow() {
            report.interrupted = true;
            break;
        }
        match run_scenario(scenario, opts, stop.clone()).await {
            Ok(s) => {
                report.interrupted |= s.client.interrupted;
                report.scenarios.push(s);
            }
            Err(e) => return (report, Some(e)),
        }
    }
    (report, None)
}

/// Runs `scenario` once and grades it. `stop` turning true interrupts it.
pub async fn run_scenario(
    scenario: &Scenario,
    opts: &RunOptions,
    stop: watch::Receiver<bool>,
) -> Result<ScenarioReport> {
    let paths = RunPaths::create(&opts.out_dir.join(&scenario.name))?;
    let seed = opts.seed.unwrap_or_else(rand::random);
    let range = start_range(scenario, seed, &paths).await?;
    let state = range.state().clone();
    if opts.dashboard {
        opts.status.clear();
        let token = state.dashboard.issue_link();
        let admin = range.addrs().admin;
        eprintln!(
            "{}: dashboard http://{admin}/dashboard/login?token={token}",
            scenario.name
        );
    }
    let clock = state.clock.clone();
    let started = clock.now();
    let deadline = started.plus(scenario.run.timeout);
    let reaper = reaper::Reaper::new(opts.sole_parent);
    let base = contract::base_url(scenario, &range);
    let mut env = contract::environment(scenario, &base, range.pool(), &paths, deadline);
    env.push(reaper.env());
    let child = process::spawn(&opts.command, &env, &paths.log)?;
    let watch = Watch {
        scenario,
        opts,
        state: &state,
        paths: &paths,
        started,
    };
    let mut exit = watch.supervise(child, stop, &reaper).await;
    let spread: Vec<u64> = range.instances().iter().map(|s| s.judged_here()).collect();
    let ended = clock.now();
    exit.seconds = ended.since(started).as_secs_f64();
    opts.status.clear();
    // The trace's summary is complete whether or not a listener failed.
    let _ = range.stop().await;
    let mut report = grade_run(scenario, &state, &paths, &exit, started, ended)?;
    if let Some(store) = &state.shared {
        // The run's namespace holds nothing anyone will read again.
        let _ = store.forget_all().await;
    }
    report.seed = seed;
    if spread.len() > 1 {
        report.instances = spread;
    }
    let path = paths.dir.join("report.json");
    std::fs::write(
        &path,
        serde_json::to_vec_pretty(&report).unwrap_or_default(),
    )
    .map_err(|e| Error::io(path, e))?;
    Ok(report)
}

/// Recent trace a run keeps in memory: nothing reads it but the admin API,
/// which no client is told of.
pub const RUN_RECENT_BYTES: usize = 1 << 20;

/// The trace of a run, as the runner opens it: written to `path`, summed
/// up for grading as it is written (with the scenario's in-flight
/// `grace`), cut at the default size limit (the grade does not read the
/// file), and with little recent trace kept in memory. Its memory
/// grows with the run's sessions, not its requests.
pub fn graded_trace(path: &Path, grace: Duration) -> Result<TraceLog> {
    Ok(TraceLog::open_limited(path, Some(TraceLimit::default()))?
        .keeping_recent(RUN_RECENT_BYTES)
        .grading(grace))
}

/// Starts `scenario`'s stack for a run: its records salted with `seed`,
/// its trace graded as it is written, and the client's files written.
async fn start_range(scenario: &Scenario, seed: u64, paths: &RunPaths) -> Result<Range> {
    let trace = graded_trace(&paths.trace, scenario.grade.in_flight_grace)?;
    // On a shared store, a namespace of the run's own: it starts from
    // nothing and is forgotten when graded.
    let namespace = format!(
        "sr:run-{}:",
        crate::site::state::random_hex(&mut rand::rng(), 8)
    );
    let range = Range::builder(scenario)
        .seed(seed)
        .trace(trace)
        .store_namespace(namespace)
        .start()
        .await?;
    contract::hand_over(&range, scenario, paths)?;
    Ok(range)
}

/// What the runner watches while the client runs.
struct Watch<'a> {
    scenario: &'a Scenario,
    opts: &'a RunOptions,
    state: &'a TargetState,
    paths: &'a RunPaths,
    started: Timestamp,
}

impl Watch<'_> {
    /// Waits for the client to exit, its deadline or `stop`, firing the
    /// timeline and showing the status meanwhile; then kills its group.
    async fn supervise(
        &self,
        mut child: Child,
        mut stop: watch::Receiver<bool>,
        reaper: &reaper::Reaper,
    ) -> ClientExit {
        let pid = child.id();
        let mut tick = tokio::time::interval(Duration::from_millis(100));
        let timeout = tokio::time::sleep(self.scenario.run.timeout);
        tokio::pin!(timeout);
        let command = &self.opts.command;
        let mut exit = ClientExit {
            command: command.clone(),
            ..ClientExit::default()
        };
        loop {
            tokio::select! {
                status = child.wait() => {
                    let secs = self.state.clock.now().since(self.started).as_secs_f64();
                    if let Ok(s) = status {
                        exit = process::exit_of(s, command, secs);
                    }
                    break;
                }
                () = &mut timeout => {
                    exit.timed_out = true;
                    break;
                }
                _ = stop.wait_for(|s| *s) => {
                    exit.interrupted = true;
                    break;
                }
                _ = tick.tick() => {
                    self.state.run_script(self.state.clock.now());
                    let output = &self.paths.output;
                    self.opts.status.show(self.scenario, self.state, output, self.started);
                }
            }
        }
        process::kill_group(&mut child, pid, reaper).await;
        exit
    }
}

fn grade_run(
    scenario: &Scenario,
    state: &TargetState,
    paths: &RunPaths,
    exit: &ClientExit,
    started: Timestamp,
    ended: Timestamp,
) -> Result<ScenarioReport> {
    let finished = contract::grade_finished(scenario, state, &paths.output, started, ended);
    let mut criteria = finished.criteria;
    criteria.insert(0, client_criterion(exit, &paths.log));
    let outcome = Outcome::of(&criteria);
    Ok(ScenarioReport {
        scenario: scenario.name.clone(),
        description: scenario.description.clone(),
        passed: outcome == Outcome::Pass,
        outcome,
        client: exit.clone(),
        metrics: finished.metrics,
        criteria,
        proxy_notes: finished.proxy_notes,
        instances: Vec::new(),
        seed: 0,
        run_dir: paths.dir.clone(),
        view: finished.view,
    })
}

/// The client's own criterion: it exited 0 before its deadline.
fn client_criterion(exit: &ClientExit, log: &Path) -> Criterion {
    let mut details = vec![format!("the client {}", exit.describe())];
    let tail = process::log_tail(log, 5);
    if !tail.is_empty() {
        details.push(format!("last lines of {}:", log.display()));
        details.extend(tail.into_iter().map(|l| format!("  {l}")));
    }
    let passed = exit.ok();
    Criterion {
        name: "client".into(),
        passed,
        value: exit.describe(),
        threshold: "exit 0 before the deadline".into(),
        details: if passed { Vec::new() } else { details },
    }
}
