//! The decision trace file: one JSON line per decision, written before the response, and replayable.

use std::path::Path;

use reqwest::StatusCode;
use serde_json::Value;
use sessionrange::TargetServer;
use sessionrange::site::config::TargetConfig;
use sessionrange::{Action, Clock, DecisionKind, Reason, Verdict, replay, trace};

use crate::helpers::*;

async fn start_traced(cfg: TargetConfig, path: &Path) -> (TargetServer, Clock) {
    let clock = Clock::manual(T0);
    let target = TargetServer::builder()
        .config(cfg)
        .clock(clock.clone())
        .trace(path)
        .start()
        .await
        .expect("the target starts");
    (target, clock)
}

/// The trace file's decision lines, parsed (login flows and other events
/// are lines too, of their own types).
fn lines(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).expect("the trace file");
    text.lines()
        .map(|l| serde_json::from_str::<Value>(l).expect("each line is JSON"))
        .filter(|v| v["type"] == "decision")
        .collect()
}

/// Checks the file holds exactly `n` lines and returns the last one.
fn last_line(path: &Path, n: usize) -> Value {
    let all = lines(path);
    assert_eq!(all.len(), n, "decision lines in the trace file");
    all.last().cloned().expect("a line")
}

#[tokio::test]
async fn every_decision_is_a_line_in_the_trace_file_by_the_time_the_response_arrives() {
    let dir = TempDir::new("trace");
    let path = dir.join("runs/1/trace.jsonl");
    let (target, _clock) = start_traced(behind_proxy(), &path).await;
    assert_eq!(lines(&path).len(), 0, "created empty, with its directory");

    let mut api = Api::via(&target, COMCAST);
    let tokens = api.login("alice", "wonderland").await;
    let line = last_line(&path, 2);
    assert_eq!(
        lines(&path)[0]["kind"],
        "login_gate",
        "the login velocity gate first"
    );
    assert_eq!(
        (&line["type"], &line["kind"]),
        (&"decision".into(), &"login".into())
    );
    assert_eq!(line["account"], "alice");
    assert_eq!(line["context"]["ip"], COMCAST);

    let res = api.get_with("/api/v1/items?page=1", &tokens.access).await;
    assert_eq!(res.status(), StatusCode::OK);
    let line = last_line(&path, 3);
    assert_eq!(
        (&line["kind"], &line["verdict"]),
        (&"request".into(), &"allow".into())
    );

    api.move_to(AMAZON);
    let res = api.get_with("/api/v1/items?page=2", &tokens.access).await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let line = last_line(&path, 4);
    assert_eq!(
        (&line["verdict"], &line["reason"]),
        (&"revoke".into(), &"ASN_DRIFT".into())
    );
    let rules: Vec<&Value> = line["fired"]
        .as_array()
        .expect("fired rules")
        .iter()
        .map(|f| &f["rule"])
        .collect();
    assert!(rules.contains(&&Value::from("asn_drift")), "{rules:?}");

    // The file and the in-memory trace agree.
    let from_file = trace::read_trace(&path).expect("the trace parses");
    assert_eq!(from_file, target.events());
}

#[tokio::test]
async fn repeated_headers_on_one_connection_are_traced_by_reference_and_read_back_in_full() {
    let dir = TempDir::new("context-refs");
    let path = dir.join("trace.jsonl");
    let (target, _clock) = start_traced(behind_proxy(), &path).await;
    let mut api = Api::via(&target, COMCAST);
    let tokens = api.login("alice", "wonderland").await;
    for page in 1..=3 {
        let res = api
            .get_with(&format!("/api/v1/items?page={page}"), &tokens.access)
            .await;
        assert_eq!(res.status(), StatusCode::OK);
        res.bytes()
            .await
            .expect("the page, read so the connection is reused");
    }
    api.move_to(AMAZON);
    let res = api.get_with("/api/v1/items?page=4", &tokens.access).await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);

    // On the wire: the first request of the connection carries its
    // context, the two that repeat its headers name that line, and the
    // one with a new X-Forwarded-For carries its own.
    let requests: Vec<Value> = lines(&path)
        .into_iter()
        .filter(|l| l["kind"] == "request")
        .collect();
    assert_eq!(requests.len(), 4);
    let first = &requests[0];
    assert_eq!(first["context"]["ip"], COMCAST);
    assert!(first.get("context_of").is_none(), "{first}");
    for repeat in &requests[1..3] {
        assert!(repeat.get("context").is_none(), "{repeat}");
        assert_eq!(repeat["context_of"], first["seq"], "{repeat}");
    }
    assert_eq!(requests[3]["context"]["ip"], AMAZON);
    assert!(requests[3].get("context_of").is_none());

    // Read back, every decision has its context, from the file as in memory.
    let decisions = trace::read_trace(&path).expect("the trace parses");
    let ips: Vec<String> = decisions
        .iter()
        .filter(|d| d.kind == DecisionKind::Request)
        .map(|d| {
            d.context
                .as_ref()
                .and_then(|c| c.ip)
                .expect("a context")
                .to_string()
        })
        .collect();
    assert_eq!(ips, [COMCAST, COMCAST, COMCAST, AMAZON]);
    assert_eq!(decisions, target.events());
}

/// A run that touches every kind of decision: logins, allows, a
/// challenge, a drift, refresh reuse and a logout.
async fn eventful_run(target: &TargetServer, clock: &Clock) {
    let mut browser = Browser::via(target, COMCAST);
    browser.log_in("alice", "wonderland").await;
    browser.read_catalog(1).await;
    let sensor = browser.cookie("_sr_sensor").expect("a sensor cookie");
    browser.strip_cookie("_sr_sensor");
    assert_eq!(
        browser.fetch("/catalog?page=2").await.status(),
        StatusCode::FORBIDDEN
    );
    browser.set_cookie("_sr_sensor", &sensor);
    advance(clock, 5);
    browser.read_catalog(2).await;
    browser.move_to(AMAZON);
    assert_eq!(
        browser.fetch("/catalog?page=3").await.status(),
        StatusCode::FOUND
    );

    let api = Api::via(target, TELEKOM);
    let first = api.login("bob", "builder").await;
    advance(clock, 5);
    Tokens::from_response(api.refresh(&first.refresh).await).await;
    assert_eq!(
        api.refresh(&first.refresh).await.status(),
        StatusCode::FORBIDDEN
    );

    let browser = Browser::via(target, COMCAST_OTHER);
    browser.log_in("bob", "builder").await;
    advance(clock, 31 * 60);
    let res = browser.fetch("/account").await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "idle timeout");
    browser.log_in("bob", "builder").await;
    browser.post("/logout").send().await.expect("logout");
}

#[tokio::test]
async fn the_trace_file_replays_to_the_same_verdicts() {
    let dir = TempDir::new("replay");
    let path = dir.join("trace.jsonl");
    let mut cfg = behind_proxy();
    cfg.rules.concurrency.in_flight_action = Action::Challenge;
    let rules = cfg.rules.clone();
    let (target, clock) = start_traced(cfg, &path).await;
    eventful_run(&target, &clock).await;

    let decisions = trace::read_trace(&path).expect("the trace parses");
    assert_eq!(decisions.len(), lines(&path).len());
    let verdicts: Vec<Verdict> = decisions.iter().map(|d| d.verdict).collect();
    for v in [
        Verdict::Challenge(Reason::CompanionCookieMissing),
        Verdict::Revoke(Reason::AsnDrift),
        Verdict::Revoke(Reason::RefreshTokenReuse),
        Verdict::Expire(Reason::IdleTimeout),
        Verdict::Revoke(Reason::LoggedOut),
    ] {
        assert!(verdicts.contains(&v), "{v} in the trace");
    }
    let releases = decisions.iter().filter(|d| d.kind == DecisionKind::Release);
    assert!(releases.count() > 0, "the in-flight rule records releases");
    let diffs = replay(rules.clone(), &decisions).expect("valid rules");
    assert!(diffs.is_empty(), "replay differs: {diffs:?}");

    // Replaying with a rule turned off changes exactly what it decided.
    let mut lenient = rules;
    lenient.asn_drift.action = Action::Off;
    lenient.network_class_drift.action = Action::Off;
    lenient.impossible_travel.action = Action::Off;
    let diffs = replay(lenient, &decisions).expect("valid rules");
    assert!(!diffs.is_empty());
    assert!(
        diffs
            .iter()
            .all(|(was, _)| was.session == diffs[0].0.session),
        "only the drifted session changes"
    );
    assert_eq!(diffs[0].0.verdict, Verdict::Revoke(Reason::AsnDrift));
}

#[tokio::test]
async fn a_reset_is_traced_so_replay_forgets_the_same_sessions() {
    let dir = TempDir::new("trace-reset");
    let path = dir.join("trace.jsonl");
    let (target, _clock) = start_traced(behind_proxy(), &path).await;
    let api = Api::via(&target, COMCAST);
    let tokens = api.login("alice", "wonderland").await;
    let ok = api.get_with("/api/v1/items?page=1", &tokens.access).await;
    assert_eq!(ok.status(), StatusCode::OK);
    let reset = reqwest::Client::new()
        .post(target.admin_url("/reset"))
        .bearer_auth(target.admin_token())
        .send()
        .await
        .expect("reset answers");
    assert_eq!(reset.status(), StatusCode::OK);
    let gone = api.get_with("/api/v1/items?page=1", &tokens.access).await;
    assert_eq!(gone.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        last_verdict(&target),
        Verdict::Expire(Reason::SessionUnknown)
    );

    let entries = trace::read_entries(&path).expect("the trace parses");
    assert!(
        entries
            .iter()
            .any(|e| matches!(e, sessionrange::engine::Entry::Upkeep(_)))
    );
    let diffs = sessionrange::engine::replay_entries(TargetConfig::default().rules, &entries)
        .expect("valid rules");
    assert!(diffs.is_empty(), "{diffs:?}");
}
