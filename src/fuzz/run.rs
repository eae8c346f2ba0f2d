//! The shell of `sessionrange fuzz`: run the client on each variant, shrink the first failure, confirm it, and write the minimal scenario with its report.

use std::path::{Path, PathBuf};

use serde::Serialize;
use tokio::runtime::Runtime;
use tokio::sync::watch;

use crate::error::{Error, Result};
use crate::fuzz::search::{self, Budget, Verdict};
use crate::fuzz::space::{self, Variant};
use crate::runner::{self, Outcome, RunOptions, ScenarioReport, Status};
use crate::scenario::Scenario;

/// What `sessionrange fuzz` is asked to do.
#[derive(Clone, Debug)]
pub struct FuzzOptions {
    /// The scenario the variants are drawn around.
    pub base: Scenario,
    /// The client command.
    pub command: Vec<String>,
    /// Where the runs, the minimal scenario and the report go.
    pub out_dir: PathBuf,
    /// The seed of the draws: the same seed draws the same variants.
    pub seed: u64,
    /// How many variants, how many at once, how long.
    pub budget: Budget,
    /// Runs of the minimal case, to tell a steady failure from a flaky one.
    pub confirm: u32,
    /// Live status on stderr.
    pub status: Status,
}

/// Why a run failed: the criterion that says most about it (see
/// `CAUSE_ORDER`), and the first reason code (such as `ASN_DRIFT`) its
/// explanation names.
///
/// Two causes are the same when they name the same criterion and the same
/// reason code, counting `mortality` and `completeness` as one criterion:
/// a variant shrunk from one where the gateway's moves were expected can
/// show the same `ASN_DRIFT` deaths under `mortality` rather than
/// `completeness`, and it is the same failure; an account banned for
/// `ASN_DRIFT` is not.
#[derive(Clone, Debug, Eq, Serialize)]
pub struct Cause {
    /// The criterion, such as `mortality`.
    pub criterion: String,
    /// The reason code, if the explanation names one.
    pub code: Option<String>,
}

impl Cause {
    /// The cause of a failed report; `None` for a pass, and for an
    /// inconclusive run (its trap never fired: it tested nothing).
    pub fn of(report: &ScenarioReport) -> Option<Self> {
        if report.outcome != Outcome::Fail {
            return None;
        }
        let failed = report
            .criteria
            .iter()
            .filter(|c| !c.passed && c.name != "trap")
            .min_by_key(|c| {
                let rank = CAUSE_ORDER.iter().position(|n| *n == c.name);
                rank.unwrap_or(CAUSE_ORDER.len())
            })?;
        let code = failed
            .details
            .iter()
            .flat_map(|d| d.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')))
            .find(|w| is_reason_code(w))
            .map(str::to_owned);
        Some(Self {
            criterion: failed.name.clone(),
            code,
        })
    }
}

impl Cause {
    /// What identifies the cause: its criterion (sessions lost, whether
    /// counted as mortality or as missing records) and its code.
    fn key(&self) -> (&str, Option<&str>) {
        let criterion = match self.criterion.as_str() {
            "mortality" | "completeness" => "sessions lost",
            other => other,
        };
        (criterion, self.code.as_deref())
    }
}

impl PartialEq for Cause {
    fn eq(&self, other: &Self) -> bool {
        self.key() == other.key()
    }
}

impl std::fmt::Display for Cause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.code {
            Some(code) => write!(f, "{} ({code})", self.criterion),
            None => f.write_str(&self.criterion),
        }
    }
}

/// Failed criteria in the order they are taken as a run's cause: what
/// killed sessions or spent accounts before what it cost in records, and
/// the client's own exit last (a buggy client often runs until it is
/// killed at the deadline, whatever went wrong). The `trap` criterion is
/// never a cause: it says a variant tested nothing.
const CAUSE_ORDER: &[&str] = &[
    "mortality",
    "zombie_requests",
    "accounts_banned",
    "completeness",
    "client",
];

/// A reason code: capitals, digits and underscores, with an underscore.
fn is_reason_code(word: &str) -> bool {
    word.len() >= 5
        && word.contains('_')
        && word.starts_with(|c: char| c.is_ascii_uppercase())
        && word
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
}

/// The failure a fuzz run found, shrunk and confirmed.
#[derive(Clone, Debug, Serialize)]
pub struct Failure {
    /// Why it fails.
    pub cause: Cause,
    /// What the first failing variant changed from the base scenario.
    pub first: Vec<String>,
    /// What the minimal variant changes.
    pub minimal: Vec<String>,
    /// The minimal variant as a scenario file.
    pub minimal_file: PathBuf,
    /// Variants drawn up to the failure.
    pub drawn: u32,
    /// Runs spent shrinking.
    pub shrink_steps: u32,
    /// Simpler variants that still failed the same way.
    pub shrinks: u32,
    /// Re-runs of the minimal case that failed with the same cause.
    pub confirmed: u32,
    /// Re-runs of the minimal case.
    pub confirm_runs: u32,
    /// The report of the minimal case's last re-run.
    pub report: Option<ScenarioReport>,
}

/// What a fuzz run came to.
#[derive(Clone, Debug, Serialize)]
pub struct FuzzReport {
    /// The base scenario's name.
    pub base: String,
    /// The seed: `--seed` with it draws the same variants.
    pub seed: u64,
    /// Variants run before the search stopped (shrinking aside).
    pub drawn: u32,
    /// Whether the time budget ended the search.
    pub out_of_time: bool,
    /// The failure, if one was found.
    pub failure: Option<Failure>,
    /// Where the runs went.
    pub out_dir: PathBuf,
}

impl FuzzReport {
    /// The exit code: 0 nothing failed, 1 a failure that reproduced, 6 a
    /// failure that did not reproduce when run again (a flaky client).
    pub fn exit_code(&self) -> i32 {
        match &self.failure {
            None => 0,
            Some(f) if f.confirmed > 0 || f.confirm_runs == 0 => 1,
            Some(_) => 6,
        }
    }

    /// Writes the report as pretty JSON to `path`.
    pub fn write_json(&self, path: &Path) -> Result<()> {
        let bytes = serde_json::to_vec_pretty(self).unwrap_or_default();
        std::fs::write(path, bytes).map_err(|e| Error::io(path, e))
    }

    /// The report as the terminal shows it: what was found, how it
    /// shrank, whether it reproduced, and the minimal run's card.
    pub fn card(&self) -> String {
        let mut out = format!(
            "sessionrange fuzz: {} variants of `{}` drawn with seed {}{}\n",
            self.drawn,
            self.base,
            self.seed,
            if self.out_of_time {
                ", until the time budget ran out"
            } else {
                ""
            }
        );
        let Some(f) = &self.failure else {
            out += "no failure: the client passed every variant\n";
            return out;
        };
        out += &format!(
            "FAIL {}: found at variant {}, shrunk in {} runs ({} simpler variants failed the same way)\n",
            f.cause, f.drawn, f.shrink_steps, f.shrinks
        );
        out += &format!("  first variant: {}\n", f.first.join("; "));
        out += &format!("  minimal variant: {}\n", f.minimal.join("; "));
        out += &match (f.confirmed, f.confirm_runs) {
            (_, 0) => "  not run again\n".to_owned(),
            (0, n) => format!(
                "  did NOT reproduce: {n} re-runs of the minimal variant passed or failed otherwise (a flaky client?)\n"
            ),
            (k, n) => format!("  reproduced: {k} of {n} re-runs failed the same way\n"),
        };
        out += &format!(
            "  replay: sessionrange run {} -- CLIENT\n",
            f.minimal_file.display()
        );
        if let Some(r) = &f.report {
            let run = crate::runner::RunReport {
                scenarios: vec![r.clone()],
                interrupted: false,
            };
            out += &crate::report::card(&run);
        }
        out
    }

    /// The minimal case's last re-run as a run report, for JUnit and the
    /// summary: empty when nothing failed.
    pub fn run_report(&self) -> crate::runner::RunReport {
        let scenarios = self
            .failure
            .as_ref()
            .and_then(|f| f.report.clone())
            .into_iter()
            .collect();
        crate::runner::RunReport {
            scenarios,
            interrupted: false,
        }
    }
}

/// Runs a fuzz session: draws variants of `opts.base`, runs the client on
/// each, shrinks the first failure and confirms it. `stop` turning true
/// ends it early with what was found.
pub fn fuzz(opts: &FuzzOptions, rt: &Runtime, stop: &watch::Receiver<bool>) -> Result<FuzzReport> {
    std::fs::create_dir_all(&opts.out_dir).map_err(|e| Error::io(&opts.out_dir, e))?;
    let strategy = space::variants();
    let mut runs = Runs::new(opts, rt, stop);
    let searched = search::search(&strategy, opts.seed, opts.budget, |cases| runs.eval(cases));
    if let Some(e) = runs.error.take() {
        return Err(e);
    }
    let failure = match searched.found {
        Some(found) => Some(runs.settle(found)?),
        None => None,
    };
    let report = FuzzReport {
        base: opts.base.name.clone(),
        seed: opts.seed,
        drawn: searched.drawn,
        out_of_time: searched.out_of_time,
        failure,
        out_dir: opts.out_dir.clone(),
    };
    report.write_json(&opts.out_dir.join("fuzz.json"))?;
    Ok(report)
}

/// The client's runs, numbered in the order they start.
struct Runs<'a> {
    opts: &'a FuzzOptions,
    rt: &'a Runtime,
    stop: &'a watch::Receiver<bool>,
    next: u32,
    /// The first error that stopped a run (a port, a client that cannot start).
    error: Option<Error>,
}

impl<'a> Runs<'a> {
    fn new(opts: &'a FuzzOptions, rt: &'a Runtime, stop: &'a watch::Receiver<bool>) -> Self {
        Self {
            opts,
            rt,
            stop,
            next: 0,
            error: None,
        }
    }

    /// Runs the client on each variant at once and judges each run.
    fn eval(&mut self, cases: &[Variant]) -> Vec<Verdict<Cause>> {
        if self.error.is_some() || *self.stop.borrow() {
            return vec![Verdict::Pass; cases.len()];
        }
        let scenarios: Result<Vec<Scenario>> = cases.iter().map(|v| self.scenario(v)).collect();
        let scenarios = match scenarios {
            Ok(scenarios) => scenarios,
            Err(e) => {
                self.error.get_or_insert(e);
                return vec![Verdict::Pass; cases.len()];
            }
        };
        self.run_all(&scenarios)
            .into_iter()
            .map(|r| match r {
                Ok(report) => Cause::of(&report).map_or(Verdict::Pass, Verdict::Fail),
                Err(e) => {
                    self.error.get_or_insert(e);
                    Verdict::Pass
                }
            })
            .collect()
    }

    /// The next run's scenario: the variant applied to the base, named
    /// after its run.
    fn scenario(&mut self, v: &Variant) -> Result<Scenario> {
        self.next += 1;
        let name = format!("{}-v{}", self.opts.base.name, self.next);
        Ok(v.scenario(&self.opts.base, &name)?.1)
    }

    /// Runs scenarios at once, each in its own directory and on its own
    /// ports. Only a run alone may reap every child of this process: with
    /// others running, their clients are children too.
    fn run_all(&self, scenarios: &[Scenario]) -> Vec<Result<ScenarioReport>> {
        let opts = RunOptions {
            command: self.opts.command.clone(),
            out_dir: self.opts.out_dir.clone(),
            status: self.opts.status,
            seed: None,
            sole_parent: scenarios.len() == 1,
            dashboard: false,
        };
        let runs = scenarios
            .iter()
            .map(|s| runner::run_scenario(s, &opts, self.stop.clone()));
        self.rt.block_on(futures_util::future::join_all(runs))
    }

    /// Writes the minimal case, runs it again to confirm, and describes
    /// the failure.
    fn settle(&mut self, found: search::Found<Variant, Cause>) -> Result<Failure> {
        let path = self.opts.out_dir.join("minimal.toml");
        let name = format!("{}-minimal", self.opts.base.name);
        let (text, minimal) = found.minimal.scenario(&self.opts.base, &name)?;
        write_scenario(&path, &text, self.opts, &found.cause)?;
        let mut failure = Failure {
            cause: found.cause.clone(),
            first: found.first.describe(),
            minimal: found.minimal.describe(),
            minimal_file: path,
            drawn: found.drawn,
            shrink_steps: found.shrink_steps,
            shrinks: found.shrinks,
            confirmed: 0,
            confirm_runs: 0,
            report: None,
        };
        for k in 1..=self.opts.confirm {
            if *self.stop.borrow() {
                break;
            }
            // Each re-run in a directory of its own.
            let again = Scenario {
                name: format!("{name}-r{k}"),
                ..minimal.clone()
            };
            let report = self.run_all(std::slice::from_ref(&again)).remove(0)?;
            failure.confirm_runs += 1;
            if Cause::of(&report).as_ref() == Some(&found.cause) {
                failure.confirmed += 1;
            }
            failure.report = Some(report);
        }
        Ok(failure)
    }
}

/// Writes a scenario file that `run` replays, with a header that says
/// where it came from.
fn write_scenario(path: &Path, text: &str, opts: &FuzzOptions, cause: &Cause) -> Result<()> {
    let header = format!(
        "# The smallest variant of `{}` found failing with {cause} by\n\
         # `sessionrange fuzz --seed {}`. Replay it with:\n\
         #   sessionrange run {} -- CLIENT\n\n",
        opts.base.name,
        opts.seed,
        path.display()
    );
    std::fs::write(path, header + text).map_err(|e| Error::io(path, e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grade::{Criterion, Metrics};

    fn failing(name: &str, details: &[&str]) -> Criterion {
        Criterion {
            name: name.to_owned(),
            passed: false,
            value: String::new(),
            threshold: String::new(),
            details: details.iter().map(|d| (*d).to_owned()).collect(),
        }
    }

    fn report(criteria: Vec<Criterion>) -> ScenarioReport {
        ScenarioReport {
            scenario: "s".into(),
            description: String::new(),
            passed: false,
            outcome: Outcome::of(&criteria),
            client: Default::default(),
            metrics: Metrics::default(),
            criteria,
            proxy_notes: Vec::new(),
            instances: Vec::new(),
            seed: 0,
            run_dir: PathBuf::new(),
            view: Default::default(),
        }
    }

    #[test]
    fn a_cause_is_what_killed_sessions_before_what_it_cost_and_never_the_trap() {
        let r = report(vec![
            failing(
                "trap",
                &["the trap never fired, so this run tested nothing"],
            ),
            failing("completeness", &["requests refused: 4 × revoke(ASN_DRIFT)"]),
            failing("mortality", &["ASN_DRIFT at t=0.2s: AS7922 → AS16509"]),
        ]);
        let cause = Cause::of(&r).expect("a failure");
        assert_eq!(cause.criterion, "mortality");
        assert_eq!(cause.code.as_deref(), Some("ASN_DRIFT"));
        assert_eq!(cause.to_string(), "mortality (ASN_DRIFT)");
        let only_trap = report(vec![failing("trap", &["never fired"])]);
        assert_eq!(only_trap.outcome, Outcome::Inconclusive);
        assert_eq!(Cause::of(&only_trap), None, "a variant that tested nothing");
        let plain = report(vec![failing("wrong_lines", &["3 lines were not records"])]);
        assert_eq!(Cause::of(&plain).map(|c| c.code), Some(None));
        let shown_elsewhere = report(vec![failing("completeness", &["4 × revoke(ASN_DRIFT)"])]);
        assert_eq!(
            Cause::of(&shown_elsewhere),
            Some(cause.clone()),
            "the same deaths"
        );
        let banned = report(vec![failing(
            "accounts_banned",
            &["alice banned: ASN_DRIFT"],
        )]);
        assert_ne!(Cause::of(&banned), Some(cause), "a ban is another failure");
    }
}
