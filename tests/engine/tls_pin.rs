//! The JA4 pin against real client stacks: padding that comes and goes is the same client, another stack is not, and old traces replay.

use serde_json::Value;
use sessionrange::fingerprint::{self, TlsFingerprint, decode_hex};
use sessionrange::{Decision, EngineConfig, Reason, RequestContext, SessionId, Verdict, replay};

use crate::helpers::{Client, at, companions, engine};

const LIVE: &str = include_str!("../data/fingerprint/live-clienthellos.jsonl");

/// The fingerprints of every live hello of `client` with SNI `sni`.
fn hellos(client: &str, sni: &str) -> Vec<TlsFingerprint> {
    LIVE.lines()
        .map(|l| serde_json::from_str::<Value>(l).expect("vector line is JSON"))
        .filter(|v| v["client"] == client && v["sni"] == sni)
        .map(|v| {
            let hex = v["hello_hex"].as_str().expect("hello_hex");
            fingerprint::tls(&decode_hex(hex).expect("hex")).expect("hello parses")
        })
        .collect()
}

/// Two hellos of one curl_cffi Chrome client, one with padding and one without.
fn padding_pair() -> (TlsFingerprint, TlsFingerprint) {
    let all = hellos("curl_cffi chrome120", "ip");
    let first = all.first().expect("chrome120 hellos").clone();
    let other = all
        .iter()
        .find(|f| f.ja4 != first.ja4)
        .expect("a hello whose plain JA4 differs")
        .clone();
    (first, other)
}

fn ctx(client: &Client, tls: &TlsFingerprint) -> RequestContext {
    client.ctx().with_tls_fingerprint(tls)
}

#[test]
fn padding_that_comes_and_goes_is_not_drift_but_another_stack_is() {
    let (born, padded_otherwise) = padding_pair();
    assert_eq!(born.ja4_stable, padded_otherwise.ja4_stable);
    let firefox = hellos("curl_cffi firefox133", "ip");
    let firefox = firefox.first().expect("firefox hellos");
    let e = engine(|_| {});
    let c = Client::new("127.0.1.10");
    let sid = SessionId::from_u128(1);
    let d = e.login(sid, "alice", ctx(&c, &born), companions(), at(0));
    assert_eq!(d.verdict, Verdict::Allow);
    for (n, tls) in [&padded_otherwise, &born, &padded_otherwise]
        .iter()
        .enumerate()
    {
        let d = e.decide(sid, ctx(&c, tls), at(1 + n as u64));
        assert_eq!(d.verdict, Verdict::Allow, "reconnection {n}: {}", tls.ja4);
    }
    let d = e.decide(sid, ctx(&c, firefox), at(10));
    assert_eq!(d.verdict, Verdict::Revoke(Reason::TlsFingerprintDrift));
}

/// A trace written before contexts carried `ja4_stable`.
fn without_stable_ja4(trace: &[Decision]) -> Vec<Decision> {
    trace
        .iter()
        .map(|d| {
            let mut line = serde_json::to_value(d).expect("serializes");
            if let Some(ctx) = line.get_mut("context").and_then(Value::as_object_mut) {
                ctx.remove("ja4_stable");
            }
            assert!(!line.to_string().contains("ja4_stable"));
            serde_json::from_value(line).expect("an old line still parses")
        })
        .collect()
}

#[test]
fn an_old_trace_without_the_stable_ja4_replays_on_the_plain_ja4() {
    let (born, padded_otherwise) = padding_pair();
    let e = engine(|_| {});
    let c = Client::new("127.0.1.10");
    let sid = SessionId::from_u128(7);
    let mut trace = vec![e.login(sid, "alice", ctx(&c, &born), companions(), at(0))];
    trace.push(e.decide(sid, ctx(&c, &born), at(1)));
    trace.push(e.decide(sid, ctx(&c, &padded_otherwise), at(2)));
    assert_eq!(trace[2].verdict, Verdict::Allow, "the stable JA4 held");
    let diffs = replay(EngineConfig::default(), &trace).expect("valid config");
    assert!(diffs.is_empty(), "{diffs:?}");
    // The same requests as an old sessionrange traced them: JA4 changed,
    // and it revoked. Without a stable JA4 the replay compares the plain
    // one, so the old verdict comes out again.
    let mut old = without_stable_ja4(&trace);
    old[2].verdict = Verdict::Revoke(Reason::TlsFingerprintDrift);
    let diffs = replay(EngineConfig::default(), &old).expect("valid config");
    assert!(diffs.is_empty(), "{diffs:?}");
}
