//! `sessionrange run` end to end: bad clients, deadlines, exit codes, and the grading matrix with the reference client.

#![cfg(feature = "cli")]

#[path = "common/python.rs"]
mod python;
use python::python_requests;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use sessionrange::runner::{self, RunOptions, ScenarioReport, Status};
use sessionrange::scenario::Scenario;
use tokio::sync::watch;

const BIN: &str = env!("CARGO_BIN_EXE_sessionrange");

/// A fresh directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> Self {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let dir =
            std::env::temp_dir().join(format!("sessionrange-{tag}-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a temp dir");
        Self(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A small scenario with a short deadline, for clients that misbehave.
fn quick(timeout: &str) -> Scenario {
    let text = format!(
        "name = \"quick\"\n[target.dataset]\nsize = 20\npage_size = 10\n[run]\ntimeout = \"{timeout}\"\n"
    );
    Scenario::parse(&text, Path::new("quick.toml")).expect("a valid scenario")
}

async fn run(scenario: &Scenario, command: &[&str], dir: &Path) -> ScenarioReport {
    let opts = RunOptions {
        command: command.iter().map(|s| (*s).to_owned()).collect(),
        out_dir: dir.to_owned(),
        status: Status::Off,
        seed: None,
        sole_parent: false,
        dashboard: false,
    };
    let (_tx, rx) = watch::channel(false);
    runner::run_scenario(scenario, &opts, rx)
        .await
        .expect("the run completes")
}

/// The report card of one scenario, for assertion messages.
fn card(r: &ScenarioReport) -> String {
    sessionrange::report::card(&sessionrange::runner::RunReport {
        scenarios: vec![r.clone()],
        interrupted: false,
    })
}

fn criterion<'a>(r: &'a ScenarioReport, name: &str) -> &'a sessionrange::grade::Criterion {
    r.criteria
        .iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("no criterion {name}"))
}

#[tokio::test]
async fn a_crashing_client_fails_the_client_criterion_and_keeps_the_report() {
    let dir = TempDir::new("crash");
    let r = run(
        &quick("5s"),
        &["sh", "-c", "echo 'about to crash' >&2; kill -SEGV $$"],
        &dir.0,
    )
    .await;
    assert!(!r.passed);
    let c = criterion(&r, "client");
    assert!(!c.passed);
    assert_eq!(r.client.signal, Some(11), "{:?}", r.client);
    assert!(
        c.details.iter().any(|d| d.contains("about to crash")),
        "{:?}",
        c.details
    );
    assert!(r.run_dir.join("report.json").exists());
    assert!(r.run_dir.join("trace.jsonl").exists());
}

#[tokio::test]
async fn garbage_or_no_output_is_graded_not_fatal() {
    let dir = TempDir::new("garbage");
    let r = run(
        &quick("5s"),
        &[
            "sh",
            "-c",
            "printf 'x\\n{\"id\":1}\\n' > \"$SESSIONRANGE_OUTPUT\"",
        ],
        &dir.0,
    )
    .await;
    assert!(criterion(&r, "client").passed);
    assert_eq!(r.metrics.output.garbage, 1);
    assert_eq!(r.metrics.output.unserved, 1, "an id it was never served");
    assert!(!criterion(&r, "wrong_lines").passed);
    let r = run(&quick("5s"), &["true"], &dir.0).await;
    assert_eq!(r.metrics.output.lines, 0);
    assert!(
        criterion(&r, "completeness")
            .details
            .iter()
            .any(|d| d.contains("wrote no"))
    );
}

#[tokio::test]
async fn a_client_past_its_deadline_is_killed_with_its_whole_process_group() {
    let dir = TempDir::new("deadline");
    let marker = dir.0.join("child.pid");
    let script = format!("sleep 60 & echo $! > {}; wait", marker.display());
    let r = run(&quick("1s"), &["sh", "-c", &script], &dir.0).await;
    assert!(r.client.timed_out);
    assert!(!criterion(&r, "client").passed);
    assert!(dead(&marker), "the client's own child was killed too");
}

/// Whether the process whose pid is in `file` is gone (or a zombie) now.
fn dead(file: &Path) -> bool {
    let pid = std::fs::read_to_string(file).expect("a pid was written");
    let stat = std::fs::read_to_string(format!("/proc/{}/stat", pid.trim())).ok();
    let state = stat
        .as_deref()
        .and_then(|s| s.rsplit(") ").next())
        .and_then(|s| s.chars().next());
    matches!(state, None | Some('Z' | 'X'))
}

#[tokio::test]
async fn nothing_the_client_started_outlives_its_scenario() {
    let dir = TempDir::new("orphans");
    let (bg, daemon) = (dir.0.join("bg.pid"), dir.0.join("daemon.pid"));
    // A background child left behind by a client that exits at once, and a
    // grandchild in a session of its own, out of the client's group.
    let script = format!(
        "sleep 31 & echo $! > {bg}; setsid sh -c 'echo $$ > {daemon}; exec sleep 31' & \
         while [ ! -s {daemon} ]; do sleep 0.05; done; exit 0",
        bg = bg.display(),
        daemon = daemon.display()
    );
    let r = run(&quick("5s"), &["sh", "-c", &script], &dir.0).await;
    assert!(criterion(&r, "client").passed, "{}", card(&r));
    assert!(dead(&bg), "the background child was killed");
    assert!(dead(&daemon), "the setsid grandchild was killed");
}

#[test]
fn the_binary_kills_an_orphan_that_cleared_its_environment() {
    let dir = TempDir::new("bare-orphan");
    let quick = dir.0.join("quick.toml");
    std::fs::write(
        &quick,
        "name = \"quick\"\n[target.dataset]\nsize = 10\n[run]\ntimeout = \"5s\"\n",
    )
    .expect("write");
    let pid = dir.0.join("bare.pid");
    let script = format!(
        "env -i setsid sh -c 'echo $$ > {pid}; exec sleep 31' & \
         while [ ! -s {pid} ]; do sleep 0.05; done; exit 0",
        pid = pid.display()
    );
    let (code, card) = cli(
        &[
            "run",
            "--quiet",
            &quick.to_string_lossy(),
            "--",
            "sh",
            "-c",
            &script,
        ],
        &dir.0,
    );
    assert_eq!(code, 1, "{card}");
    // The binary has exited; its orphan was its child, killed before.
    for _ in 0..50 {
        if dead(&pid) {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("the orphan with no environment outlived the run");
}

#[tokio::test]
async fn the_client_sees_the_contract_environment() {
    let dir = TempDir::new("env");
    let text = format!(
        "{}\n[pool]\nuser = \"u\"\npassword = \"p\"\n[[pool.exits]]\nname = \"a\"\nip = \"127.0.1.20\"\n[pool.gateway]\nclasses = [\"mobile\"]\n",
        "name = \"env\"\n[run]\ntimeout = \"5s\""
    );
    let scenario = Scenario::parse(&text, Path::new("env.toml")).expect("valid");
    let dump = dir.0.join("env.txt");
    let script = format!("env | grep ^SESSIONRANGE_ | sort > {}", dump.display());
    run(&scenario, &["sh", "-c", &script], &dir.0).await;
    let env = std::fs::read_to_string(&dump).expect("the dump");
    for var in [
        "TARGET=http://127.0.0.1:",
        "PROXIES=http://u:p@127.0.0.1:",
        "GATEWAY=http://u:p@127.0.0.1:",
        "SCENARIO=env",
        "DEADLINE=",
        "OUTPUT=",
        "ACCOUNTS=",
    ] {
        assert!(
            env.contains(&format!("SESSIONRANGE_{var}")),
            "{var} missing from\n{env}"
        );
    }
    let accounts_line = env
        .lines()
        .find(|l| l.starts_with("SESSIONRANGE_ACCOUNTS="))
        .expect("accounts");
    let accounts: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(&accounts_line["SESSIONRANGE_ACCOUNTS=".len()..]).expect("file"),
    )
    .expect("JSON");
    assert_eq!(accounts[0]["username"], "alice");
    assert!(accounts[0]["totp_secret"].is_null());
    let output = env
        .lines()
        .find_map(|l| l.strip_prefix("SESSIONRANGE_OUTPUT="))
        .map(PathBuf::from)
        .expect("output");
    assert!(output.is_absolute(), "{}", output.display());
    let folder = output.parent().expect("a folder");
    assert!(
        folder.ends_with("client"),
        "the client's own folder: {}",
        folder.display()
    );
    assert!(folder.join("accounts.json").exists());
    assert!(
        !folder.join("trace.jsonl").exists(),
        "the trace is not in the client's folder"
    );
}

/// Runs the binary; returns its exit code and stdout.
fn cli(args: &[&str], cwd: &Path) -> (i32, String) {
    let out = Command::new(BIN)
        .args(args)
        .current_dir(cwd)
        .output()
        .expect("the binary runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[test]
fn exit_codes_follow_pytest() {
    let dir = TempDir::new("codes");
    let bad = dir.0.join("bad.toml");
    std::fs::write(&bad, "name = \"bad\"\n[run]\ntimeout = \"1s\"\nspeed = 3\n").expect("write");
    let good = dir.0.join("quick.toml");
    std::fs::write(
        &good,
        "name = \"quick\"\n[target.dataset]\nsize = 20\npage_size = 10\n[run]\ntimeout = \"3s\"\n",
    )
    .expect("write");
    let empty = dir.0.join("empty");
    std::fs::create_dir_all(&empty).expect("mkdir");
    let p = |p: &Path| p.to_string_lossy().into_owned();
    let (code, out) = cli(&["run", "--quiet", &p(&bad), "--", "true"], &dir.0);
    assert_eq!(code, 4, "a scenario error");
    assert!(
        !out.contains("scenarios passed"),
        "no card before a usage error: {out}"
    );
    let (code, _) = cli(&["run", "--quiet", &p(&empty), "--", "true"], &dir.0);
    assert_eq!(code, 5, "nothing ran");
    let (code, _) = cli(
        &["run", "--quiet", &p(&good), "--", "/nonexistent/client"],
        &dir.0,
    );
    assert_eq!(code, 4, "a client that cannot start");
    let json = dir.0.join("r.json");
    let junit = dir.0.join("j.xml");
    let summary = dir.0.join("s.md");
    let (code, card) = cli(
        &[
            "run",
            "--quiet",
            &p(&good),
            "--json",
            &p(&json),
            "--junit",
            &p(&junit),
            "--summary",
            &p(&summary),
            "--",
            "true",
        ],
        &dir.0,
    );
    assert_eq!(code, 1, "criteria failed");
    assert!(card.contains("FAIL  quick"), "{card}");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).expect("json")).expect("JSON");
    assert_eq!(report["scenarios"][0]["scenario"], "quick");
    let xml = std::fs::read_to_string(&junit).expect("junit");
    assert!(
        xml.contains("<testsuite name=\"quick\"")
            && xml.contains("<testcase name=\"completeness\""),
        "{xml}"
    );
    assert!(xml.contains("<property name=\"completeness\""), "{xml}");
    let md = std::fs::read_to_string(&summary).expect("summary");
    assert!(md.contains("| `quick` | ❌ fail"), "{md}");
    let (code, _) = cli(
        &[
            "run",
            "--quiet",
            &p(&good),
            "--",
            "python3",
            &p(&Path::new(env!("CARGO_MANIFEST_DIR")).join("clients/minimal.py")),
        ],
        &dir.0,
    );
    assert!(code == 0 || code == 1, "the minimal client runs: {code}");
}

#[test]
fn the_minimal_clients_pass_the_baseline() {
    let dir = TempDir::new("minimal");
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let baseline = root.join("scenarios/baseline.toml");
    let p = |p: &Path| p.to_string_lossy().into_owned();
    let python_ok = Command::new("python3")
        .args(["-c", "import requests"])
        .output()
        .is_ok_and(|o| o.status.success());
    if python_ok {
        let (code, card) = cli(
            &[
                "run",
                "--quiet",
                &p(&baseline),
                "--",
                "python3",
                &p(&root.join("clients/minimal.py")),
            ],
            &dir.0,
        );
        assert_eq!(code, 0, "{card}");
    }
    let jq_ok = Command::new("jq")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if jq_ok {
        let (code, card) = cli(
            &[
                "run",
                "--quiet",
                &p(&baseline),
                "--",
                "sh",
                &p(&root.join("clients/minimal.sh")),
            ],
            &dir.0,
        );
        assert_eq!(code, 0, "{card}");
    }
}

#[tokio::test]
async fn timeline_events_fire_by_request_count_and_time_and_the_reference_client_recovers() {
    let dir = TempDir::new("timeline");
    let text = r#"
        name = "timeline"
        [target]
        auth = "jwt"
        [target.dataset]
        size = 200
        page_size = 10
        [[timeline]]
        at_request = 5
        action = "rotate-signing-key"
        [[timeline]]
        at = "1200ms"
        action = "restart"
        [[timeline]]
        at_request = 12
        action = "revoke-account"
        account = "bob"
        [run]
        timeout = "15s"
    "#;
    let scenario = Scenario::parse(text, Path::new("timeline.toml")).expect("valid");
    let r = run(&scenario, &[BIN, "client"], &dir.0).await;
    let card = card(&r);
    assert!(r.passed, "{card}");
    let facts =
        sessionrange::grade::TraceFacts::read(&r.run_dir.join("trace.jsonl")).expect("trace");
    let mut actions: Vec<&str> = facts.timeline.iter().map(|t| t.action.as_str()).collect();
    actions.sort_unstable();
    assert_eq!(
        actions,
        ["restart", "revoke-account", "rotate-signing-key"],
        "{card}"
    );
}

/// Runs the binary on a slow client, sends it `signal` once the client
/// runs, and checks the run stopped as interrupted with its report written
/// and its client dead.
fn interrupted_by(signal: nix::sys::signal::Signal) {
    use nix::sys::signal::kill;
    use nix::unistd::Pid;
    let dir = TempDir::new("interrupt");
    let scenario = dir.0.join("slow.toml");
    std::fs::write(&scenario, "name = \"slow\"\n[run]\ntimeout = \"15s\"\n").expect("write");
    let json = dir.0.join("r.json");
    let marker = dir.0.join("client.pid");
    let script = format!("echo $$ > {}; exec sleep 30", marker.display());
    let mut child = Command::new(BIN)
        .args(["run", "--quiet", "--json"])
        .arg(&json)
        .arg(&scenario)
        .args(["--", "sh", "-c", &script])
        .current_dir(&dir.0)
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("the binary starts");
    // Wait for the client to be running: an event, not a timer.
    for _ in 0..500 {
        if std::fs::metadata(&marker).is_ok_and(|m| m.len() > 0) {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let pid = Pid::from_raw(i32::try_from(child.id()).expect("a pid"));
    kill(pid, signal).expect("the signal is sent");
    let status = child.wait().expect("the run ends");
    assert_eq!(status.code(), Some(2), "{signal}: interrupted");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).expect("the JSON report"))
            .expect("JSON");
    assert_eq!(report["interrupted"], true, "{signal}");
    assert_eq!(report["scenarios"][0]["client"]["interrupted"], true);
    assert!(dead(&marker), "{signal}: the client was stopped");
}

#[test]
fn ctrl_c_interrupts_the_run_kills_the_client_and_still_writes_the_report() {
    interrupted_by(nix::sys::signal::Signal::SIGINT);
}

#[test]
fn sigterm_and_sighup_stop_a_run_like_ctrl_c() {
    interrupted_by(nix::sys::signal::Signal::SIGTERM);
    interrupted_by(nix::sys::signal::Signal::SIGHUP);
}

#[tokio::test]
async fn the_reference_client_passes_the_baseline_over_https() {
    let dir = TempDir::new("https");
    let mut scenario = Scenario::bundled()
        .expect("bundled")
        .into_iter()
        .find(|s| s.name == "baseline")
        .expect("baseline");
    scenario.run.https = true;
    let r = run(&scenario, &[BIN, "client"], &dir.0).await;
    let card = card(&r);
    assert!(r.passed, "{card}");
    let decisions = sessionrange::trace::read_trace(&r.run_dir.join("trace.jsonl")).expect("trace");
    let ja4 = decisions
        .iter()
        .find_map(|d| d.context.as_ref()?.ja4.clone());
    assert!(
        ja4.is_some_and(|j| j.starts_with("t1")),
        "requests carry the client's JA4"
    );
}

/// The records a client could make up without asking the target: the
/// scenario's own dataset, with the salt it knows (none, or a `--seed`).
fn made_up_records(scenario: &Scenario, salt: u64, dir: &Path) -> PathBuf {
    let mut config = scenario.target.dataset.clone();
    config.salt = salt;
    let lines: Vec<String> = sessionrange::dataset::Dataset::new(&config)
        .iter()
        .map(|r| serde_json::to_string(&r).expect("json"))
        .collect();
    let path = dir.join(format!("made-up-{salt}.jsonl"));
    std::fs::write(&path, lines.join("\n")).expect("write");
    path
}

#[tokio::test]
async fn records_the_target_never_served_count_for_nothing_even_with_the_seed_known() {
    let dir = TempDir::new("made-up");
    let scenario = quick("5s");
    for salt in [0, 42] {
        let records = made_up_records(&scenario, salt, &dir.0);
        let script = format!("cp {} \"$SESSIONRANGE_OUTPUT\"", records.display());
        let opts = RunOptions {
            command: vec!["sh".into(), "-c".into(), script],
            out_dir: dir.0.clone(),
            status: Status::Off,
            seed: Some(42),
            sole_parent: false,
            dashboard: false,
        };
        let (_tx, rx) = watch::channel(false);
        let r = runner::run_scenario(&scenario, &opts, rx)
            .await
            .expect("a run");
        let out = &r.metrics.output;
        assert_eq!(out.unique_correct, 0, "{}", card(&r));
        assert_eq!(out.unserved, 20, "salt {salt}: {}", card(&r));
        let c = criterion(&r, "completeness");
        assert!(!c.passed);
        assert!(
            c.details
                .iter()
                .any(|d| d.contains("no login and no request")),
            "{c:?}"
        );
        assert!(!criterion(&r, "wrong_lines").passed);
    }
}

#[tokio::test]
async fn each_run_serves_records_no_other_run_serves() {
    let dir = TempDir::new("salted");
    let scenario = quick("10s");
    let a = run(&scenario, &[BIN, "client"], &dir.0.join("a")).await;
    let b = run(&scenario, &[BIN, "client"], &dir.0.join("b")).await;
    assert!(a.passed && b.passed, "{}\n{}", card(&a), card(&b));
    assert_ne!(a.seed, b.seed);
    let read = |r: &ScenarioReport| {
        std::fs::read_to_string(r.run_dir.join("client/output.jsonl")).expect("output")
    };
    let first = |text: &str| text.lines().next().map(str::to_owned);
    let (out_a, out_b) = (read(&a), read(&b));
    assert_ne!(first(&out_a), first(&out_b), "the same records in two runs");
    let mut config = scenario.target.dataset.clone();
    config.salt = a.seed;
    let replayed = sessionrange::dataset::Dataset::new(&config);
    let line: serde_json::Value =
        serde_json::from_str(&first(&out_a).expect("a line")).expect("json");
    let id = line["id"].as_u64().expect("an id");
    let truth = serde_json::to_value(replayed.record(id).expect("a record")).expect("json");
    assert_eq!(
        line, truth,
        "the report's seed gives the run's records back"
    );
}

#[tokio::test]
async fn editing_the_trace_file_changes_nothing_in_the_grade() {
    let dir = TempDir::new("tamper");
    // The client finds the trace beside its own folder, then cuts it short
    // and appends a line that is not JSON.
    let tamper = "d=$(dirname \"$(dirname \"$SESSIONRANGE_OUTPUT\")\"); \
                  : > \"$d/trace.jsonl\"; echo '{not json' >> \"$d/trace.jsonl\"";
    let velocity = Scenario::bundled()
        .expect("bundled")
        .into_iter()
        .find(|s| s.name == "velocity")
        .expect("velocity");
    let failing = format!("{BIN} client --bug no-pacing; {tamper}");
    let r = run(&velocity, &["sh", "-c", &failing], &dir.0.join("f")).await;
    let c = criterion(&r, "mortality");
    assert!(!c.passed, "{}", card(&r));
    assert!(
        c.details.iter().any(|d| d.contains("VELOCITY_EXCEEDED")),
        "{}",
        card(&r)
    );
    let passing = format!("{BIN} client; {tamper}");
    let r = run(&quick("10s"), &["sh", "-c", &passing], &dir.0.join("p")).await;
    assert!(r.passed, "{}", card(&r));
    let trace = std::fs::read_to_string(r.run_dir.join("trace.jsonl")).expect("the file stays");
    assert_eq!(
        trace, "{not json\n",
        "the file is the client's to spoil, not the grade's"
    );
}

/// A requests client that trusts the run's CA the way users write it
/// (`session.verify`), and one that trusts whatever the environment says.
const TRUSTING_CLIENT: &str = r#"
import os, requests
url = os.environ["SESSIONRANGE_TARGET"] + "/__range/fingerprint"
s = requests.Session()
s.verify = os.environ["SESSIONRANGE_CA_CERT"]
s.get(url).raise_for_status()
requests.get(url).raise_for_status()
bundle = open(os.environ["SSL_CERT_FILE"]).read()
print("certificates in the bundle:", bundle.count("BEGIN CERTIFICATE"))
"#;

#[test]
fn https_clients_trust_the_run_even_with_a_users_own_ca_bundle_set() {
    if !python_requests() {
        return;
    }
    let dir = TempDir::new("trust");
    let scenario = dir.0.join("tls.toml");
    std::fs::write(
        &scenario,
        "name = \"tls\"\n[target.dataset]\nsize = 10\n[run]\nhttps = true\ntimeout = \"10s\"\n",
    )
    .expect("write");
    let json = dir.0.join("r.json");
    let out = Command::new(BIN)
        .args(["run", "--quiet", "--json"])
        .arg(&json)
        .arg(&scenario)
        .args(["--", "python3", "-c", TRUSTING_CLIENT])
        .env("REQUESTS_CA_BUNDLE", "/nonexistent/corporate-ca.pem")
        .env("SSL_CERT_FILE", "/nonexistent/corporate-ca.pem")
        .current_dir(&dir.0)
        .output()
        .expect("the binary runs");
    let card = String::from_utf8_lossy(&out.stdout);
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).expect("report")).expect("JSON");
    let client = &report["scenarios"][0]["client"];
    assert_eq!(client["code"], 0, "{card}");
    let run_dir = PathBuf::from(report["scenarios"][0]["run_dir"].as_str().expect("dir"));
    let log = std::fs::read_to_string(run_dir.join("client.log")).expect("log");
    assert!(log.contains("certificates in the bundle:"), "{log}");
}

/// A 20-record scenario that revokes every session once, `when`, and
/// names that as its trap.
fn revoking(name: &str, when: &str) -> Scenario {
    let text = format!(
        "name = \"{name}\"\n[target.dataset]\nsize = 20\npage_size = 10\n\
         [[timeline]]\n{when}\naction = \"revoke-all\"\n\
         [grade]\ntraps = [\"session_revoked\"]\n[run]\ntimeout = \"10s\"\n"
    );
    Scenario::parse(&text, Path::new("revoking.toml")).expect("a valid scenario")
}

#[tokio::test]
async fn a_run_whose_trap_never_fired_is_not_a_pass() {
    let dir = TempDir::new("unfired");
    let scenario = revoking("late", "at = \"60s\"");
    let r = run(&scenario, &[BIN, "client"], &dir.0).await;
    assert!(!r.passed, "{}", card(&r));
    assert_eq!(r.outcome, runner::Outcome::Inconclusive);
    assert!(card(&r).starts_with("INCONCLUSIVE  late"), "{}", card(&r));
    let trap = criterion(&r, "trap");
    assert!(!trap.passed);
    assert_eq!(trap.value, "session_revoked ×0");
    assert!(
        trap.details[0].contains("no session in use was revoked"),
        "{:?}",
        trap.details
    );
    assert!(
        criterion(&r, "completeness").passed,
        "everything else passed"
    );
}

/// Spends the scenario's request counter on a throwaway session that is
/// served nothing, then crawls with a fresh one the revocation never meets.
const THROWAWAY_CLIENT: &str = r#"
import json, os, requests
t = os.environ["SESSIONRANGE_TARGET"]
acc = json.load(open(os.environ["SESSIONRANGE_ACCOUNTS"]))[0]
def login():
    s = requests.Session()
    tok = s.post(t + "/api/login", json={"username": acc["username"], "password": acc["password"]}).json()
    s.headers["Authorization"] = "Bearer " + tok["access_token"]
    return s
dummy = login()
for _ in range(3):
    dummy.get(t + "/api/v1/items", params={"page": 999})
s, page = login(), 1
with open(os.environ["SESSIONRANGE_OUTPUT"], "w") as out:
    while page:
        body = s.get(t + "/api/v1/items", params={"page": page}).json()
        for item in body["items"]:
            out.write(json.dumps(item) + "\n")
        page = body["next"]
"#;

#[tokio::test]
async fn a_trap_spent_on_a_throwaway_session_is_not_met() {
    if !python_requests() {
        return;
    }
    let dir = TempDir::new("throwaway");
    let scenario = revoking("throwaway", "at_request = 3");
    let r = run(&scenario, &["python3", "-c", THROWAWAY_CLIENT], &dir.0).await;
    assert!(criterion(&r, "completeness").passed, "{}", card(&r));
    assert_eq!(r.outcome, runner::Outcome::Inconclusive, "{}", card(&r));
    assert_eq!(criterion(&r, "trap").value, "session_revoked ×0");
}

#[tokio::test]
async fn an_output_that_is_a_link_a_fifo_or_huge_gives_a_report_not_a_hang() {
    let dir = TempDir::new("hostile-output");
    let cases = [
        (
            "ln -s /dev/zero \"$SESSIONRANGE_OUTPUT\"",
            "is a symbolic link",
        ),
        ("mkfifo \"$SESSIONRANGE_OUTPUT\"", "is a FIFO"),
        (
            "head -c 5000000 /dev/zero > \"$SESSIONRANGE_OUTPUT\"",
            "larger than",
        ),
    ];
    for (n, (script, said)) in cases.iter().enumerate() {
        let (scenario, out) = (quick("5s"), dir.0.join(n.to_string()));
        let r = tokio::time::timeout(
            Duration::from_secs(30),
            run(&scenario, &["sh", "-c", script], &out),
        )
        .await
        .unwrap_or_else(|_| panic!("{script}: the run hung"));
        let c = criterion(&r, "completeness");
        assert!(!c.passed, "{script}");
        assert!(
            c.details.iter().any(|d| d.contains(said)),
            "{script}: {c:?}"
        );
    }
}

#[tokio::test]
async fn a_clients_log_cannot_forge_the_card_or_the_summary() {
    let dir = TempDir::new("forge");
    let script = "printf 'x\\r\\033[2K  ok   client  exited 0\\n<!-- hidden --> ![i](http://e/i.png)\\n' >&2; exit 3";
    let r = run(&quick("5s"), &["sh", "-c", script], &dir.0).await;
    let text = card(&r);
    assert!(
        text.contains("\\u{1b}[2K"),
        "the escape is shown, not obeyed: {text}"
    );
    assert!(!text.contains('\u{1b}') && !text.contains('\r'), "{text}");
    let md = sessionrange::report::markdown(&sessionrange::runner::RunReport {
        scenarios: vec![r],
        interrupted: false,
    });
    assert!(!md.contains("<!--") && !md.contains("!["), "{md}");
}
