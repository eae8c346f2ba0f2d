//! Criterion benches of the pure core: `decide` on the allow and drift paths at
//! 1k, 100k and 1M live sessions, and a geo lookup.
//!
//! The clock is manual: every iteration moves time 1 ms forward and visits
//! sessions in a fixed pseudo-random permutation, so each session sees one
//! request per `n` ms (well under its rate limit and idle TTL) and caches
//! see a realistic spread of sessions.

use std::hint::black_box;
use std::net::IpAddr;
use std::time::Duration;

use criterion::{BatchSize, BenchmarkId, Criterion, criterion_group, criterion_main};
use sessionrange::{Action, Engine, EngineConfig, GeoDb, RequestContext, SessionId, Timestamp};

const T0: Timestamp = Timestamp::from_secs(1_790_000_000);
const SIZES: [u64; 3] = [1_000, 100_000, 1_000_000];
/// A prime that divides none of `SIZES`, so `i * STRIDE % n` visits every session once per `n` steps.
const STRIDE: u64 = 1_000_003;

fn context(geo: &GeoDb, ip: &str) -> RequestContext {
    let ip: IpAddr = ip.parse().expect("bench address");
    let headers = [
        ("host", "target.test"),
        (
            "user-agent",
            "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
        ),
        ("accept", "text/html,application/xhtml+xml"),
        ("accept-language", "en-US,en;q=0.5"),
        ("accept-encoding", "gzip, deflate, br"),
        ("cookie", "_rid=5f2c9a7e1b3d4c6a; _sensor=3:8f1e2d"),
    ];
    RequestContext::from_headers(Some(ip), geo.lookup(ip), headers)
        .with_tls(None, Some("t13d1715h2_5b57614c22b0_3d5424432f57".into()))
}

fn companions() -> Vec<(String, String)> {
    vec![
        ("_rid".into(), "5f2c9a7e1b3d4c6a".into()),
        ("_sensor".into(), "3:8f1e2d".into()),
    ]
}

/// An engine with `n` live sessions, one account each, all rules at their
/// defaults except lifetimes long enough to outlast the measurement.
fn populated(n: u64, geo: &GeoDb, drift_action: Action) -> Engine {
    let mut cfg = EngineConfig::default();
    cfg.lifetime.absolute_ttl = Duration::from_secs(30 * 86_400);
    cfg.lifetime.idle_ttl = Duration::from_secs(7 * 86_400);
    cfg.asn_drift.action = drift_action;
    cfg.network_class_drift.action = drift_action;
    let engine = Engine::new(cfg).expect("bench config is valid");
    let birth = context(geo, "127.0.1.20");
    for i in 0..n {
        let sid = SessionId::from_u128(u128::from(i) + 1);
        engine.login(sid, &format!("user{i}"), birth.clone(), companions(), T0);
    }
    engine
}

fn bench_decide(c: &mut Criterion, name: &str, live_ip: &str, action: Action) {
    let geo = GeoDb::embedded();
    let live = context(&geo, live_ip);
    let mut group = c.benchmark_group(format!("decide/{name}"));
    for n in SIZES {
        let engine = populated(n, &geo, action);
        let mut i = 0u64;
        group.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, &n| {
            b.iter_batched(
                || {
                    i += 1;
                    let sid = SessionId::from_u128(u128::from(i * STRIDE % n) + 1);
                    (sid, live.clone(), T0.plus(Duration::from_millis(i)))
                },
                |(sid, ctx, now)| black_box(engine.decide(sid, ctx, now)),
                BatchSize::SmallInput,
            )
        });
    }
    group.finish();
}

fn decide_allow(c: &mut Criterion) {
    bench_decide(c, "allow", "127.0.1.20", Action::Revoke);
}

/// The drift path: every request comes from a datacenter, and ASN and
/// class drift are set to `challenge` so the session survives to be
/// measured again. Three rules fire and build evidence on each request.
fn decide_drift(c: &mut Criterion) {
    bench_decide(c, "drift", "127.0.2.20", Action::Challenge);
}

fn geo_lookup(c: &mut Criterion) {
    let geo = GeoDb::embedded();
    let ips: Vec<IpAddr> = [
        "127.0.1.20",
        "18.212.4.4",
        "104.28.12.9",
        "2601::1",
        "203.0.113.9",
    ]
    .iter()
    .map(|s| s.parse().expect("bench address"))
    .collect();
    let mut i = 0;
    c.bench_function("geo/lookup", |b| {
        b.iter(|| {
            i = (i + 1) % ips.len();
            black_box(geo.lookup(ips[i]))
        })
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(4)).sample_size(60);
    targets = decide_allow, decide_drift, geo_lookup
}
criterion_main!(benches);
