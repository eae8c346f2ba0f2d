//! The grading matrix: the reference client passes every bundled scenario, each bug fails the scenario built to catch it, and a bug passes where it does no harm.

use std::path::PathBuf;
use std::sync::Arc;

use sessionrange::runner::{self, RunOptions, ScenarioReport, Status};
use sessionrange::scenario::Scenario;
use tokio::sync::{Semaphore, watch};

const BIN: &str = env!("CARGO_BIN_EXE_sessionrange");
/// Scenarios run at once: each has its own ports, files and client.
const PARALLEL: usize = 4;

/// Each bug, the scenario that targets it, the criterion it must fail and
/// a phrase its explanation must contain.
const BUGS: &[(&str, &str, &str, &str)] = &[
    (
        "rotate-exit-per-request",
        "asn-drift",
        "mortality",
        "ASN_DRIFT",
    ),
    ("no-pacing", "velocity", "mortality", "VELOCITY_EXCEEDED"),
    (
        "strip-companion-cookies",
        "companion-cookies",
        "mortality",
        "COMPANION_COOKIE",
    ),
    (
        "share-session-across-exits",
        "concurrent-use",
        "mortality",
        "CONCURRENT_USE",
    ),
    (
        "ignore-soft-logout",
        "soft-logout",
        "completeness",
        "records extracted",
    ),
    (
        "no-reauth",
        "ttl-expiry",
        "completeness",
        "records extracted",
    ),
    (
        "parallel-refresh",
        "refresh-rotation",
        "mortality",
        "REFRESH_TOKEN_REUSE",
    ),
    (
        "keep-using-dead-session",
        "sticky-expiry",
        "zombie_requests",
        "more requests after",
    ),
    (
        "retry-burns-accounts",
        "escalation",
        "accounts_banned",
        "account",
    ),
    (
        "switch-tls-stack",
        "tls-drift",
        "mortality",
        "TLS_FINGERPRINT_DRIFT",
    ),
];

/// A bug and a scenario it must not affect.
const HARMLESS: &[(&str, &str)] = &[("parallel-refresh", "baseline")];

fn scenario(name: &str) -> Scenario {
    Scenario::bundled()
        .expect("the bundled pack loads")
        .into_iter()
        .find(|s| s.name == name)
        .unwrap_or_else(|| panic!("no bundled scenario {name}"))
}

/// Where every run of this test goes; kept when the test fails.
fn root() -> PathBuf {
    std::env::temp_dir().join(format!("sessionrange-matrix-{}", std::process::id()))
}

fn out_dir(tag: &str) -> PathBuf {
    root().join(tag)
}

/// Runs every (scenario, bug) pair, at most [`PARALLEL`] at a time.
async fn run_all(
    runs: Vec<(Scenario, Option<&'static str>)>,
) -> Vec<(Option<&'static str>, ScenarioReport)> {
    let permits = Arc::new(Semaphore::new(PARALLEL));
    let (_stop, rx) = watch::channel(false);
    let mut tasks = Vec::new();
    for (scenario, bug) in runs {
        let mut command = vec![BIN.to_owned(), "client".to_owned()];
        if let Some(b) = bug {
            command.extend(["--bug".to_owned(), b.to_owned()]);
        }
        let opts = RunOptions {
            command,
            out_dir: out_dir(bug.unwrap_or("good")),
            status: Status::Off,
            seed: None,
        };
        let (permits, rx) = (permits.clone(), rx.clone());
        tasks.push(tokio::spawn(async move {
            let _permit = permits.acquire_owned().await.expect("a permit");
            let report = runner::run_scenario(&scenario, &opts, rx).await;
            (
                bug,
                report.unwrap_or_else(|e| panic!("{}: {e}", scenario.name)),
            )
        }));
    }
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.expect("a run"));
    }
    out
}

fn card(r: &ScenarioReport) -> String {
    sessionrange::report::card(&sessionrange::runner::RunReport {
        scenarios: vec![r.clone()],
        interrupted: false,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_reference_client_passes_everything_and_each_bug_fails_its_scenario() {
    let mut runs: Vec<(Scenario, Option<&'static str>)> = Scenario::bundled()
        .expect("bundled")
        .into_iter()
        .map(|s| (s, None))
        .collect();
    runs.extend(
        BUGS.iter()
            .map(|(bug, name, _, _)| (scenario(name), Some(*bug))),
    );
    runs.extend(
        HARMLESS
            .iter()
            .map(|(bug, name)| (scenario(name), Some(*bug))),
    );
    let results = run_all(runs).await;
    let mut problems = Vec::new();
    for (bug, report) in &results {
        let name = report.scenario.as_str();
        match bug {
            None if !report.passed => {
                problems.push(format!("good client failed {name}:\n{}", card(report)))
            }
            None => {}
            Some(bug) => {
                let targeted = BUGS.iter().find(|(b, s, _, _)| b == bug && *s == name);
                match targeted {
                    Some((_, _, criterion, phrase)) => {
                        let failed = report
                            .criteria
                            .iter()
                            .find(|c| c.name == *criterion && !c.passed);
                        let explained =
                            failed.is_some_and(|c| c.details.iter().any(|d| d.contains(phrase)));
                        if !explained {
                            problems.push(format!(
                                "--bug {bug} on {name}: wanted `{criterion}` to fail mentioning {phrase:?}:\n{}",
                                card(report)
                            ));
                        }
                    }
                    None if !report.passed => {
                        problems.push(format!(
                            "--bug {bug} should not affect {name}:\n{}",
                            card(report)
                        ));
                    }
                    None => {}
                }
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n\n"));
    let _ = std::fs::remove_dir_all(root());
}
