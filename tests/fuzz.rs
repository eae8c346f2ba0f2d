//! `sessionrange fuzz` against the reference client: a bug is found from the baseline, shrunk, confirmed and written as a scenario that `run` replays; the good client passes what is drawn.

#![cfg(feature = "cli")]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use sessionrange::scenario::Scenario;

const BIN: &str = env!("CARGO_BIN_EXE_sessionrange");

/// A folder removed at the end of the test.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("sr-fuzz-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("a temp dir");
        Self(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs the binary with `args`.
fn sessionrange(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .output()
        .expect("sessionrange runs")
}

/// The reference client, with `bug` if any, as a command after `--`.
fn client(bug: Option<&str>) -> Vec<&str> {
    let mut c = vec![BIN, "client"];
    if let Some(bug) = bug {
        c.extend(["--bug", bug]);
    }
    c
}

/// `sessionrange fuzz` on the baseline with a small budget.
fn fuzz(out: &Path, seed: &str, runs: &str, bug: Option<&str>) -> Output {
    let out = out.to_str().expect("a UTF-8 path");
    let mut args = vec![
        "fuzz",
        "baseline",
        "--seed",
        seed,
        "--runs",
        runs,
        "--parallel",
        "2",
        "--shrink-runs",
        "6",
        "--confirm",
        "1",
        "--quiet",
        "--out",
        out,
        "--",
    ];
    args.extend(client(bug));
    sessionrange(&args)
}

#[test]
fn a_bug_is_found_from_the_baseline_and_its_minimal_scenario_replays_with_run() {
    let dir = TempDir::new("rotate");
    let found = fuzz(&dir.0, "3", "4", Some("rotate-exit-per-request"));
    let card = String::from_utf8_lossy(&found.stdout);
    assert_eq!(found.status.code(), Some(1), "{card}");
    assert!(
        card.contains("(ASN_DRIFT)") && card.contains("reproduced: 1 of 1"),
        "{card}"
    );
    let minimal = dir.0.join("fuzz-3").join("minimal.toml");
    let scenario = Scenario::load(&minimal).expect("a scenario file run reads");
    let report: serde_json::Value = serde_json::from_slice(
        &std::fs::read(dir.0.join("fuzz-3").join("fuzz.json")).expect("fuzz.json"),
    )
    .expect("JSON");
    assert_eq!(report["failure"]["cause"]["code"], "ASN_DRIFT");
    assert_eq!(scenario.name, "baseline-minimal");

    let path = minimal.to_str().expect("a UTF-8 path");
    let (out, json) = (dir.0.join("replay"), dir.0.join("replay.json"));
    let replay = |bug| {
        let (out, json) = (out.to_str().expect("UTF-8"), json.to_str().expect("UTF-8"));
        let mut args = vec!["run", path, "--quiet", "--out", out, "--json", json, "--"];
        args.extend(client(bug));
        let card = String::from_utf8_lossy(&sessionrange(&args).stdout).into_owned();
        let report: serde_json::Value =
            serde_json::from_slice(&std::fs::read(json).expect("the JSON report")).expect("JSON");
        (
            card,
            report["scenarios"][0]["outcome"]
                .as_str()
                .map(str::to_owned),
        )
    };
    let (bad_card, bad) = replay(Some("rotate-exit-per-request"));
    assert_eq!(bad.as_deref(), Some("fail"), "{bad_card}");
    assert!(bad_card.contains("ASN_DRIFT"), "{bad_card}");
    // The minimal variant is honest: the careful client does not fail it
    // (a variant whose trap never fired for it is inconclusive, not failed).
    let (good_card, good) = replay(None);
    assert_ne!(good.as_deref(), Some("fail"), "{good_card}");
}

#[test]
fn the_reference_client_passes_every_variant_drawn() {
    let dir = TempDir::new("good");
    let out = fuzz(&dir.0, "11", "6", None);
    let card = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{card}");
    assert!(
        card.contains("6 variants") && card.contains("no failure"),
        "{card}"
    );
}

#[test]
fn a_base_scenario_that_is_neither_a_file_nor_bundled_is_a_usage_error() {
    let out = sessionrange(&["fuzz", "no-such-scenario", "--runs", "1"]);
    assert_eq!(out.status.code(), Some(4));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no-such-scenario"), "{err}");
}
