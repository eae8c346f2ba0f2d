//! The test kit on the reference client: every invariant held on drawn variants, each bug caught on its scenario, and one found and shrunk by proptest, all in process on the paused clock.

use proptest::test_runner::{Config, TestCaseError, TestError, TestRunner};
use sessionrange::client::{self, Bug, ClientArgs, ClientEnv};
use sessionrange::fuzz::search::runner;
use sessionrange::testkit::{Invariant, Kit, KitEnv, KitRun, strategies};
use sessionrange::trace::proxy::ProxyWhat;
use sessionrange::{Outcome, Scenario};

/// The reference client, in process, on the kit's environment.
async fn reference(env: KitEnv, bug: Option<Bug>) -> anyhow::Result<()> {
    let env = ClientEnv::from_vars(|name| env.var(name).map(str::to_owned))?;
    let args = ClientArgs {
        bug,
        quiet: true,
        ..ClientArgs::default()
    };
    client::run(env, args).await.map(|_| ())
}

fn run(scenario: &Scenario, bug: Option<Bug>) -> KitRun {
    Kit::new(scenario)
        .run(|env| reference(env, bug))
        .expect("the stack starts")
}

fn names(run: &KitRun) -> Vec<&'static str> {
    let mut names: Vec<_> = run
        .violations(&Invariant::ALL)
        .iter()
        .map(|v| v.invariant.name())
        .collect();
    names.dedup();
    names
}

/// A runner drawing from `seed`, as `sessionrange fuzz --seed` does.
fn seeded(seed: u64, config: Config) -> TestRunner {
    TestRunner::new_with_rng(config, runner(seed).new_rng())
}

/// A case passes when the grade does not fail it and no invariant broke.
fn holds(run: &KitRun) -> Result<(), TestCaseError> {
    let violations = run.violations(&Invariant::ALL);
    if run.outcome == Outcome::Fail || !violations.is_empty() {
        let broken: Vec<String> = violations.iter().map(ToString::to_string).collect();
        return Err(TestCaseError::fail(format!("{}{broken:#?}", run.card())));
    }
    Ok(())
}

#[test]
fn the_good_client_holds_every_invariant_on_drawn_variants() {
    for (base, seed, cases_here) in [("baseline", 7, 24), ("sticky-expiry", 8, 8)] {
        let base = Scenario::named(base).expect("bundled");
        // PROPTEST_CASES runs a longer sweep (README gives the figures).
        let cases = std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|c| c.parse().ok());
        let config = Config {
            cases: cases.unwrap_or(cases_here),
            failure_persistence: None,
            ..Config::default()
        };
        let mut runner = seeded(seed, config);
        let checked = runner.run(&strategies::scenarios(&base), |scenario| {
            holds(&run(&scenario, None))
        });
        if let Err(e) = checked {
            panic!("seed {seed}: {e}");
        }
    }
}

/// Each bug on the bundled scenario that catches it: the failed
/// criterion, and the invariant it breaks (when one covers it).
const BUGS: [(Bug, &str, &str, Option<&str>); 10] = [
    (
        Bug::RotateExitPerRequest,
        "asn-drift",
        "mortality",
        Some("session_keeps_its_network"),
    ),
    (
        Bug::NoPacing,
        "velocity",
        "mortality",
        Some("refusal_answered_on_fresh_exit"),
    ),
    (
        Bug::StripCompanionCookies,
        "companion-cookies",
        "mortality",
        None,
    ),
    (
        Bug::ShareSessionAcrossExits,
        "concurrent-use",
        "mortality",
        None,
    ),
    (Bug::IgnoreSoftLogout, "soft-logout", "completeness", None),
    (
        Bug::NoReauth,
        "ttl-expiry",
        "completeness",
        Some("refusal_answered_on_fresh_exit"),
    ),
    (Bug::ParallelRefresh, "refresh-rotation", "mortality", None),
    (
        Bug::KeepUsingDeadSession,
        "sticky-expiry",
        "zombie_requests",
        Some("no_zombie_requests"),
    ),
    (
        Bug::RetryBurnsAccounts,
        "escalation",
        "accounts_banned",
        Some("refusal_answered_on_fresh_exit"),
    ),
    (Bug::SwitchTlsStack, "tls-drift", "mortality", None),
];

#[test]
fn each_bug_fails_its_scenario_and_the_good_client_passes_it() {
    for (bug, name, criterion, invariant) in BUGS {
        let scenario = Scenario::named(name).expect("bundled");
        let good = run(&scenario, None);
        assert_eq!(good.outcome, Outcome::Pass, "{}", good.card());
        assert_eq!(names(&good), Vec::<&str>::new(), "{name}: the good client");
        let bad = run(&scenario, Some(bug));
        let failed: Vec<&str> = bad.failed().iter().map(|c| c.name.as_str()).collect();
        assert!(
            failed.contains(&criterion),
            "{bug:?} on {name}: {}",
            bad.card()
        );
        if let Some(invariant) = invariant {
            assert!(
                names(&bad).contains(&invariant),
                "{bug:?} on {name}: {:?}",
                names(&bad)
            );
        }
    }
}

#[test]
fn proptest_finds_a_bug_and_shrinks_it_to_the_one_knob_that_matters() {
    let base = Scenario::named("baseline").expect("bundled");
    let config = Config {
        cases: 16,
        max_shrink_iters: 64,
        failure_persistence: None,
        ..Config::default()
    };
    let mut runner = seeded(3, config);
    let found = runner.run(&strategies::variants(), |variant| {
        let scenario = variant.apply(&base, "baseline-variant");
        holds(&run(&scenario, Some(Bug::KeepUsingDeadSession)))
    });
    let Err(TestError::Fail(why, minimal)) = found else {
        panic!("no variant caught keep-using-dead-session: {found:?}");
    };
    assert!(why.message().contains("no_zombie_requests"), "{why}");
    // One knob is left, and it is one that kills a session under the
    // client: a revocation (which seed 3 shrinks to), or the moving gateway.
    let knobs = minimal.describe();
    assert_eq!(knobs.len(), 1, "{knobs:?}");
    assert!(
        knobs[0].contains("revoked") || knobs[0].contains("gateway"),
        "{knobs:?}"
    );
}

#[test]
fn a_client_that_errs_panics_or_hangs_fails_the_client_criterion() {
    let scenario = Scenario::named("baseline").expect("bundled");
    let kit = Kit::new(&scenario);
    let erred = kit.run(|_| async { Err::<(), _>("no route to the target") });
    let panicked = kit.run(|_| async {
        panic!("the parser fell over");
        #[allow(unreachable_code)]
        Ok::<(), String>(())
    });
    let hung = kit.run(|_| async {
        std::future::pending::<()>().await;
        Ok::<(), String>(())
    });
    let said = |run: Result<KitRun, sessionrange::Error>| {
        let run = run.expect("the stack starts");
        assert_eq!(run.outcome, Outcome::Fail);
        run.criteria[0].value.clone()
    };
    assert_eq!(said(erred), "returned an error: no route to the target");
    assert_eq!(said(panicked), "panicked: the parser fell over");
    assert_eq!(said(hung), "ran past the scenario's timeout of 15s");
}

#[test]
fn the_good_client_survives_any_fault_of_one_exit() {
    let base = Scenario::named("baseline").expect("bundled");
    let config = Config {
        cases: 16,
        failure_persistence: None,
        ..Config::default()
    };
    let fired = std::cell::Cell::new(0);
    let checked = seeded(5, config).run(&strategies::faults(), |fault| {
        let mut scenario = base.clone();
        scenario.pool.exits[0].faults = vec![fault];
        let run = run(&scenario, None);
        let faults = run.trace.proxy_events().iter();
        if faults
            .filter(|e| matches!(e.what, ProxyWhat::Fault { .. }))
            .count()
            > 0
        {
            fired.set(fired.get() + 1);
        }
        holds(&run)
    });
    if let Err(e) = checked {
        panic!("{e}");
    }
    assert!(fired.get() >= 8, "only {} of 16 faults fired", fired.get());
}

#[test]
fn a_client_stopped_at_its_deadline_is_charged_once() {
    // No re-login after a refusal, then a hang: the timeout fails the
    // client criterion, and the refusal invariant does not say it again.
    let scenario = Scenario::named("ttl-expiry").expect("bundled");
    let run = Kit::new(&scenario)
        .run(|env| async move {
            reference(env, Some(Bug::NoReauth)).await?;
            std::future::pending::<()>().await;
            anyhow::Ok(())
        })
        .expect("the stack starts");
    assert!(
        run.criteria[0].value.starts_with("ran past"),
        "{}",
        run.card()
    );
    assert_eq!(names(&run), Vec::<&str>::new());
}
