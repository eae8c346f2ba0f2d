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

pub mod files;
pub mod process;
pub mod reaper;
pub mod select;
mod status;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Serialize;
use tokio::process::Child;
use tokio::sync::watch;

use crate::clock::Timestamp;
use crate::error::{Error, Result};
use crate::grade::{self, Criterion, Metrics, OutputCheck, RunFacts};
use crate::pool::ProxyPool;
use crate::range::Range;
use crate::scenario::Scenario;
use crate::site::{TargetState, TraceLimit, TraceLog};

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
    /// The salt this run mixed into the dataset; `run --seed` with it
    /// serves the same records again.
    pub seed: u64,
    /// Where the trace, the output and the client's log are.
    pub run_dir: PathBuf,
}

/// How a scenario's run came out.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// Every criterion passed, the trap included.
    Pass,
    /// A criterion other than the trap failed.
    Fail,
    /// Everything passed but the scenario's trap never fired: the run
    /// tested nothing, and is not a pass.
    Inconclusive,
}

impl Outcome {
    /// The outcome of these criteria.
    pub fn of(criteria: &[Criterion]) -> Self {
        let failed = |c: &&Criterion| !c.passed;
        match criteria
            .iter()
            .filter(failed)
            .map(|c| c.name.as_str())
            .collect::<Vec<_>>()[..]
        {
            [] => Self::Pass,
            ["trap"] => Self::Inconclusive,
            _ => Self::Fail,
        }
    }

    /// The word on the card: `PASS`, `FAIL` or `INCONCLUSIVE`.
    pub fn word(self) -> &'static str {
        match self {
            Self::Pass => "PASS",
            Self::Fail => "FAIL",
            Self::Inconclusive => "INCONCLUSIVE",
        }
    }
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
    write_accounts(scenario, &paths.accounts)?;
    let state = range.state().clone();
    let clock = state.clock.clone();
    let started = clock.now();
    let deadline = started.plus(scenario.run.timeout);
    let reaper = reaper::Reaper::new(opts.sole_parent);
    let base = base_url(scenario, &range);
    let mut env = environment(scenario, &base, range.pool(), &paths, deadline);
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
    let ended = clock.now();
    exit.seconds = ended.since(started).as_secs_f64();
    opts.status.clear();
    // The trace's summary is complete whether or not a listener failed.
    let _ = range.stop().await;
    let mut report = grade_run(scenario, &state, &paths, &exit, started, ended)?;
    report.seed = seed;
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
/// its trace graded as it is written, and the run's CA files written.
async fn start_range(scenario: &Scenario, seed: u64, paths: &RunPaths) -> Result<Range> {
    let trace = graded_trace(&paths.trace, scenario.grade.in_flight_grace)?;
    let range = Range::builder(scenario)
        .seed(seed)
        .trace(trace)
        .start()
        .await?;
    range.state().tls.write_ca(&paths.ca)?;
    range.state().tls.write_bundle(&paths.ca_bundle)?;
    Ok(range)
}

/// The base URL the client is given: HTTPS when the scenario asks for it.
fn base_url(scenario: &Scenario, range: &Range) -> String {
    if scenario.run.https {
        range.https_url("")
    } else {
        range.url("")
    }
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

/// The files of one scenario's run. The client's files are in `client/`:
/// only what it is given (accounts, the CA) and what it writes (its
/// output). The trace, its log and the reports are beside that folder,
/// and the grade reads none of them back.
struct RunPaths {
    dir: PathBuf,
    trace: PathBuf,
    output: PathBuf,
    accounts: PathBuf,
    log: PathBuf,
    ca: PathBuf,
    ca_bundle: PathBuf,
}

impl RunPaths {
    /// Makes the run's folders, as absolute paths, and removes what an
    /// earlier run in the same place left, so that nothing stale is graded.
    fn create(dir: &Path) -> Result<Self> {
        let client = dir.join("client");
        std::fs::create_dir_all(&client).map_err(|e| Error::io(&client, e))?;
        let dir = std::fs::canonicalize(dir).map_err(|e| Error::io(dir, e))?;
        let client = dir.join("client");
        let paths = Self {
            trace: dir.join("trace.jsonl"),
            log: dir.join("client.log"),
            output: client.join("output.jsonl"),
            accounts: client.join("accounts.json"),
            ca: client.join("ca.pem"),
            ca_bundle: client.join("ca-bundle.pem"),
            dir,
        };
        let old_traces = (1..=TraceLimit::default().keep).map(|i| {
            let mut name = paths.trace.clone().into_os_string();
            name.push(format!(".{i}"));
            PathBuf::from(name)
        });
        for f in old_traces.collect::<Vec<_>>().iter().chain([
            &paths.trace,
            &paths.output,
            &paths.accounts,
            &paths.log,
            &paths.ca,
            &paths.ca_bundle,
        ]) {
            match std::fs::remove_file(f) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(Error::io(f, e)),
                _ => {}
            }
        }
        Ok(paths)
    }
}

fn write_accounts(scenario: &Scenario, path: &Path) -> Result<()> {
    let accounts: Vec<serde_json::Value> = scenario
        .target
        .accounts
        .iter()
        .map(|a| {
            serde_json::json!({
                "username": a.username,
                "password": a.password,
                "totp_secret": a.totp_secret,
            })
        })
        .collect();
    let text = serde_json::to_vec_pretty(&accounts).unwrap_or_default();
    std::fs::write(path, text).map_err(|e| Error::io(path, e))
}

/// The client contract: `SESSIONRANGE_*` variables, and for an HTTPS
/// target the conventional trust variables, pointed at the system roots
/// plus the run's CA: a user's own `REQUESTS_CA_BUNDLE` would otherwise
/// silently override what a client passes as `verify=`.
fn environment(
    scenario: &Scenario,
    base: &str,
    pool: &ProxyPool,
    paths: &RunPaths,
    deadline: Timestamp,
) -> Vec<(String, String)> {
    let proxies: Vec<&str> = pool.exits().iter().map(|e| e.url.as_str()).collect();
    let gateway = pool.gateway().map(|g| g.url.clone()).unwrap_or_default();
    let path = |p: &Path| p.to_string_lossy().into_owned();
    let mut env = vec![
        ("SESSIONRANGE_TARGET", base.to_owned()),
        ("SESSIONRANGE_CA_CERT", path(&paths.ca)),
        ("SESSIONRANGE_PROXIES", proxies.join(",")),
        ("SESSIONRANGE_GATEWAY", gateway),
        ("SESSIONRANGE_ACCOUNTS", path(&paths.accounts)),
        ("SESSIONRANGE_OUTPUT", path(&paths.output)),
        ("SESSIONRANGE_SCENARIO", scenario.name.clone()),
        ("SESSIONRANGE_DEADLINE", deadline.as_secs().to_string()),
    ];
    if scenario.run.https {
        for var in TRUST_VARIABLES {
            env.push((var, path(&paths.ca_bundle)));
        }
    }
    env.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
}

/// Variables that name the trust store of OpenSSL, Python requests, curl
/// and Node.
const TRUST_VARIABLES: [&str; 4] = [
    "SSL_CERT_FILE",
    "REQUESTS_CA_BUNDLE",
    "CURL_CA_BUNDLE",
    "NODE_EXTRA_CA_CERTS",
];

fn grade_run(
    scenario: &Scenario,
    state: &TargetState,
    paths: &RunPaths,
    exit: &ClientExit,
    started: Timestamp,
    ended: Timestamp,
) -> Result<ScenarioReport> {
    // The runner's own summary of the trace, made as it was written: the
    // file is for people, and a client could have edited it.
    let facts = state.trace.take_facts().unwrap_or_default();
    let limit = files::output_limit(u64::from(state.dataset.len()));
    let file = files::read_head(&paths.output, limit);
    let served: HashMap<_, _> = state.served_by_session();
    let served_ids = state.served_ids();
    let output = OutputCheck::check(
        &String::from_utf8_lossy(&file.bytes),
        &state.dataset,
        &served_ids,
    );
    let run = RunFacts {
        trace: &facts,
        output,
        dataset_size: u64::from(state.dataset.len()),
        served: &served,
        served_unique: served_ids.len(),
        abandoned_login_flows: state.abandoned_login_flows(),
        started,
        ended,
    };
    let (metrics, mut criteria) = grade::grade(&run, &scenario.grade);
    let problem = match (&file.problem, file.exists) {
        (Some(p), _) => Some(p.clone()),
        (None, false) => Some(format!("the client wrote no {}", paths.output.display())),
        (None, true) => None,
    };
    if let Some(p) = problem
        && let Some(c) = criteria.iter_mut().find(|c| c.name == "completeness")
    {
        c.passed = c.passed && file.problem.is_none();
        c.details.push(p);
    }
    criteria.insert(0, client_criterion(exit, &paths.log));
    let outcome = Outcome::of(&criteria);
    Ok(ScenarioReport {
        scenario: scenario.name.clone(),
        description: scenario.description.clone(),
        passed: outcome == Outcome::Pass,
        outcome,
        client: exit.clone(),
        metrics,
        criteria,
        proxy_notes: facts.proxy_notes.clone(),
        seed: 0,
        run_dir: paths.dir.clone(),
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
