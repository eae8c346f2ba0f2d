//! The grading matrix: the reference client passes every bundled scenario, each bug fails the scenario built to catch it, and a bug passes where it does no harm.
//!
//! Beside the reference client's `--bug`s, a scraper written from README
//! alone (`tests/clients/scraper.py`, Python `requests`) runs with each of
//! its trap-ignoring switches against the scenario built to catch it, and
//! without switches against the scenarios a careful client must pass; and
//! `clients/minimal.py` must pass exactly the scenarios README says. The
//! browser scenarios (`scenarios/browser/`) fail the reference client and
//! the scraper with their named cause; `clients/playwright.py` (Debian's
//! Chromium) passes them, and fails `automation` with `--stock`; the
//! scraper that reimplements the scripts passes them, its challenges
//! counted as its own code's.

#![cfg(feature = "cli")]

#[path = "common/python.rs"]
mod python;
#[path = "common/redis.rs"]
mod redis;
use python::python_requests;

use std::path::{Path, PathBuf};

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

/// The README scraper's switches: each ignores one trap, and the scenario
/// must fail it on the criterion named, with the phrase in its details.
const IGNORING: &[(&str, &str, &str, &str)] = &[
    ("--direct", "baseline", "completeness", "DIRECT_ACCESS"),
    (
        "--api-no-cookies",
        "companion-cookies",
        "completeness",
        "COMPANION_COOKIE_MISSING",
    ),
    (
        "--no-refresh",
        "refresh-rotation",
        "session_yield",
        "re-logins",
    ),
    (
        "--no-relogin",
        "ttl-expiry",
        "completeness",
        "SESSION_EXPIRED",
    ),
    ("--no-relogin", "sticky-expiry", "completeness", "ASN_DRIFT"),
    ("--no-pacing", "velocity", "mortality", "VELOCITY_EXCEEDED"),
    ("--no-pacing", "mixed", "mortality", "VELOCITY_EXCEEDED"),
    (
        "--reuse-after-stall",
        "idle-timeout",
        "zombie_requests",
        "more requests after",
    ),
    (
        "--login-per-page",
        "ip-drift-tolerated",
        "session_yield",
        "re-logins",
    ),
    (
        "--rotate-user-agent",
        "ua-drift",
        "mortality",
        "USER_AGENT_DRIFT",
    ),
    // It does no proof of work: the login steps stop it.
    ("", "login-cost", "completeness", "POW_INVALID"),
    // It speaks only JSON: an HTML-only site gives it nothing.
    ("", "soft-logout", "completeness", "SURFACE_ABSENT"),
];

/// Scenarios the README scraper, without switches, must pass.
const CAREFUL_PASSES: &[&str] = &[
    "baseline",
    "asn-drift",
    "sticky-expiry",
    "ip-drift-tolerated",
    "ua-drift",
    "velocity",
    "concurrent-use",
    "companion-cookies",
    "ttl-expiry",
    "idle-timeout",
    "refresh-rotation",
    "escalation",
    "mixed",
    "tls-drift",
];

/// The scenarios `clients/minimal.py` passes, as README lists them: those
/// whose traps punish mistakes it does not make.
const MINIMAL_PASSES: &[&str] = &[
    "baseline",
    "concurrent-use",
    "tls-drift",
    "ua-drift",
    "velocity",
];

/// A bundled scenario, or one of `scenarios/browser/`.
fn scenario(name: &str) -> Scenario {
    let bundled = Scenario::bundled().expect("the bundled pack loads");
    if let Some(s) = bundled.into_iter().find(|s| s.name == name) {
        return s;
    }
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("scenarios/browser")
        .join(format!("{name}.toml"));
    Scenario::load(&path).unwrap_or_else(|e| panic!("no scenario {name}: {e}"))
}

/// The browser scenarios: each client, its flag, the scenario, and what
/// it must come to. HTTP-only clients fail with the named cause; the
/// Playwright client passes, and fails `automation` with Playwright's
/// stock settings.
const BROWSER: &[(&str, &str, &str, Expect)] = &[
    (
        "reference",
        "",
        "js-sensor",
        Expect::Fail("mortality", "SENSOR_MISSING"),
    ),
    (
        "reference",
        "",
        "automation",
        Expect::Fail("mortality", "SENSOR_MISSING"),
    ),
    (
        "tests/clients/scraper.py",
        "",
        "js-sensor",
        Expect::Fail("mortality", "SENSOR_MISSING"),
    ),
    (
        "tests/clients/scraper.py",
        "",
        "automation",
        Expect::Fail("mortality", "SENSOR_MISSING"),
    ),
    (
        "reference",
        "",
        "js-challenge",
        Expect::Fail("completeness", "CLEARANCE_REQUIRED"),
    ),
    (
        "tests/clients/scraper.py",
        "",
        "js-challenge",
        Expect::Fail("completeness", "CLEARANCE_REQUIRED"),
    ),
    (
        "clients/playwright.py",
        "",
        "js-challenge",
        Expect::SolvedBy("page"),
    ),
    (
        "tests/clients/scraper.py",
        "--reimplement-js",
        "js-challenge",
        Expect::SolvedBy("client"),
    ),
    (
        "tests/clients/scraper.py",
        "--reimplement-js",
        "js-sensor",
        Expect::Pass,
    ),
    (
        "tests/clients/scraper.py",
        "--reimplement-js",
        "automation",
        Expect::Pass,
    ),
    ("clients/playwright.py", "", "js-sensor", Expect::Pass),
    ("clients/playwright.py", "", "automation", Expect::Pass),
    (
        "clients/playwright.py",
        "--stock",
        "automation",
        Expect::Fail("mortality", "AUTOMATION_DETECTED"),
    ),
];

/// Whether Python Playwright and Debian's Chromium are here; CI sets
/// SESSIONRANGE_REQUIRE_BROWSER=1 so a missing one fails instead.
fn playwright() -> bool {
    let ok = Path::new("/usr/bin/chromium").exists()
        && std::process::Command::new("python3")
            .args(["-c", "import playwright.sync_api"])
            .output()
            .is_ok_and(|o| o.status.success());
    let required = std::env::var("SESSIONRANGE_REQUIRE_BROWSER").is_ok_and(|v| v == "1");
    assert!(
        ok || !required,
        "Python Playwright and /usr/bin/chromium are required here"
    );
    ok
}

fn browser_jobs() -> Vec<Job> {
    let job = |(client, flag, name, expect): &(&str, &str, &str, Expect)| match *client {
        "reference" => Job::reference(name, None, *expect),
        script => Job::python(script, name, flag, *expect),
    };
    BROWSER.iter().map(job).collect()
}

/// Where every run of this test goes; kept when the test fails.
fn root() -> PathBuf {
    std::env::temp_dir().join(format!("sessionrange-matrix-{}", std::process::id()))
}

/// What a run must come to.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Expect {
    /// Every criterion passes.
    Pass,
    /// This criterion fails, and one of its details has this phrase.
    Fail(&'static str, &'static str),
    /// Some criterion fails.
    FailAny,
    /// Every criterion passes, and the card counts every challenge as
    /// solved by this solver (`page` or `client`).
    SolvedBy(&'static str),
}

/// One run of the matrix.
struct Job {
    tag: String,
    scenario: Scenario,
    command: Vec<String>,
    expect: Expect,
}

impl Job {
    fn reference(scenario: &str, bug: Option<&str>, expect: Expect) -> Self {
        let mut command = vec![BIN.to_owned(), "client".to_owned()];
        command.extend(
            bug.map(|b| ["--bug".to_owned(), b.to_owned()])
                .into_iter()
                .flatten(),
        );
        Self {
            tag: format!("reference {}", bug.unwrap_or("(no bug)")),
            scenario: self::scenario(scenario),
            command,
            expect,
        }
    }

    fn python(script: &str, scenario: &str, flag: &str, expect: Expect) -> Self {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(script);
        let mut command = vec!["python3".to_owned(), path.to_string_lossy().into_owned()];
        command.extend((!flag.is_empty()).then(|| flag.to_owned()));
        Self {
            tag: format!("{script} {flag}"),
            scenario: self::scenario(scenario),
            command,
            expect,
        }
    }

    /// What is wrong with `report` for this job, if anything.
    fn problem(&self, report: &ScenarioReport) -> Option<String> {
        let name = &report.scenario;
        let ok = match self.expect {
            Expect::Pass => report.passed,
            Expect::FailAny => !report.passed,
            Expect::SolvedBy(who) => {
                let c = &report.metrics.challenges;
                let solved = c.get(who).is_some_and(|n| *n > 0);
                report.passed && solved && c.keys().all(|k| k == who)
            }
            Expect::Fail(criterion, phrase) => report
                .criteria
                .iter()
                .find(|c| c.name == criterion && !c.passed)
                .is_some_and(|c| c.details.iter().any(|d| d.contains(phrase))),
        };
        // On several instances, a passing client was judged by each.
        let n = self.scenario.run.instances;
        let spread = report.instances.len() == n && report.instances.iter().all(|j| *j > 0);
        let ok = ok && (n < 2 || self.expect != Expect::Pass || spread);
        (!ok).then(|| {
            format!(
                "{} on {name}: wanted {:?}:\n{}",
                self.tag,
                self.expect,
                card(report)
            )
        })
    }
}

/// Shared by the tests of this binary, which run at once.
static PERMITS: Semaphore = Semaphore::const_new(PARALLEL);

/// Runs every job, at most [`PARALLEL`] at a time in this whole binary,
/// each in `root()/<set>/<n>`; returns the problems.
async fn run_all(set: &str, jobs: Vec<Job>) -> Vec<String> {
    let (_stop, rx) = watch::channel(false);
    let mut tasks = Vec::new();
    for (n, job) in jobs.into_iter().enumerate() {
        let opts = RunOptions {
            command: job.command.clone(),
            out_dir: root().join(set).join(format!("{n:02}")),
            status: Status::Off,
            seed: None,
            sole_parent: false,
            dashboard: false,
        };
        let rx = rx.clone();
        tasks.push(tokio::spawn(async move {
            let _permit = PERMITS.acquire().await.expect("a permit");
            let report = runner::run_scenario(&job.scenario, &opts, rx).await;
            let report = report.unwrap_or_else(|e| panic!("{}: {e}", job.scenario.name));
            job.problem(&report)
        }));
    }
    let mut problems = Vec::new();
    for t in tasks {
        problems.extend(t.await.expect("a run"));
    }
    problems
}

fn card(r: &ScenarioReport) -> String {
    sessionrange::report::card(&sessionrange::runner::RunReport {
        scenarios: vec![r.clone()],
        interrupted: false,
    })
}

fn reference_jobs() -> Vec<Job> {
    let bundled = Scenario::bundled().expect("bundled");
    let mut jobs: Vec<Job> = bundled
        .iter()
        .map(|s| Job::reference(&s.name, None, Expect::Pass))
        .collect();
    jobs.extend(BUGS.iter().map(|(bug, name, criterion, phrase)| {
        Job::reference(name, Some(bug), Expect::Fail(criterion, phrase))
    }));
    jobs.extend(
        HARMLESS
            .iter()
            .map(|(bug, name)| Job::reference(name, Some(bug), Expect::Pass)),
    );
    jobs
}

fn python_jobs() -> Vec<Job> {
    let scraper = "tests/clients/scraper.py";
    let mut jobs: Vec<Job> = IGNORING
        .iter()
        .map(|(flag, name, criterion, phrase)| {
            Job::python(scraper, name, flag, Expect::Fail(criterion, phrase))
        })
        .collect();
    jobs.extend(
        CAREFUL_PASSES
            .iter()
            .map(|name| Job::python(scraper, name, "", Expect::Pass)),
    );
    for s in Scenario::bundled().expect("bundled") {
        let expect = if MINIMAL_PASSES.contains(&s.name.as_str()) {
            Expect::Pass
        } else {
            Expect::FailAny
        };
        jobs.push(Job::python("clients/minimal.py", &s.name, "", expect));
    }
    jobs
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_reference_client_passes_everything_and_each_bug_fails_its_scenario() {
    let problems = run_all("reference", reference_jobs()).await;
    assert!(problems.is_empty(), "{}", problems.join("\n\n"));
    let _ = std::fs::remove_dir_all(root().join("reference"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_readme_scraper_passes_when_careful_and_fails_each_trap_it_ignores() {
    if !python_requests() {
        return;
    }
    let problems = run_all("python", python_jobs()).await;
    assert!(problems.is_empty(), "{}", problems.join("\n\n"));
    let _ = std::fs::remove_dir_all(root().join("python"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_scenarios_fail_http_clients_by_name_and_pass_a_browser() {
    if !python_requests() || !playwright() {
        return;
    }
    let problems = run_all("browser", browser_jobs()).await;
    assert!(problems.is_empty(), "{}", problems.join("\n\n"));
    let _ = std::fs::remove_dir_all(root().join("browser"));
}

/// The bundled pack and its bugs again, each scenario on two target
/// instances sharing a real Redis: the grade does not change, and each
/// instance judged some of every passing client's requests.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_two_instances_sharing_redis_the_pack_grades_as_in_memory() {
    let Some(redis) = redis::Redis::start("matrix") else {
        return;
    };
    let mut jobs = reference_jobs();
    for job in &mut jobs {
        job.scenario.target.store = Some(redis.url());
        job.scenario.run.instances = 2;
        job.scenario.validate().expect("a valid scenario");
    }
    let problems = run_all("shared", jobs).await;
    assert!(problems.is_empty(), "{}", problems.join("\n\n"));
    let _ = std::fs::remove_dir_all(root().join("shared"));
}

#[test]
fn every_bundled_scenario_has_a_client_that_ignores_its_trap_and_fails() {
    let caught: Vec<&str> = BUGS
        .iter()
        .map(|(_, name, _, _)| *name)
        .chain(IGNORING.iter().map(|(_, name, _, _)| *name))
        .collect();
    for s in Scenario::bundled().expect("bundled") {
        assert!(
            caught.contains(&s.name.as_str()),
            "nothing in the matrix fails {}",
            s.name
        );
    }
}
