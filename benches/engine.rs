//! Criterion benches of the pure core: `decide` on the allow and drift paths at
//! 1k, 100k and 1M live sessions, and a geo lookup.
//!
//! The clock is manual: every iteration moves time 1 ms forward and visits
//! sessions in a fixed pseudo-random permutation, so each session sees one
//! request per `n` ms (well under its rate limit and idle TTL) and caches
//! see a realistic spread of sessions.

use std::hint::black_box;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use sessionrange::{Action, Engine, EngineConfig, GeoDb, RequestContext, SessionId, Timestamp};

type Map<K, V> = std::collections::HashMap<K, V, foldhash::fast::FixedState>;

const T0: Timestamp = Timestamp::from_secs(1_790_000_000);
const SIZES: [u64; 3] = [1_000, 100_000, 1_000_000];
const ACCOUNTS: u64 = 1_000;
/// A prime that divides none of `SIZES`, so `i * STRIDE % n` visits every session once per `n` steps.
const STRIDE: u64 = 1_000_003;
/// Requests prepared at a time; their contexts are built and their
/// decisions dropped outside the timed loop.
const CHUNK: usize = 4_096;

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

/// An engine with `n` live sessions spread over at most [`ACCOUNTS`]
/// accounts, all rules at their defaults except lifetimes long enough to
/// outlast the measurement. At one request per millisecond, each account
/// sees about one request per second: under its rate limit.
fn populated(n: u64, geo: &GeoDb, drift_action: Action) -> Engine {
    let mut cfg = EngineConfig::default();
    cfg.lifetime.absolute_ttl = Duration::from_secs(30 * 86_400);
    cfg.lifetime.idle_ttl = Duration::from_secs(7 * 86_400);
    cfg.asn_drift.action = drift_action;
    cfg.network_class_drift.action = drift_action;
    cfg.geo_drift.action = drift_action;
    cfg.impossible_travel.action = drift_action;
    let engine = Engine::new(cfg).expect("bench config is valid");
    let birth = context(geo, "127.0.1.20");
    for i in 0..n {
        let sid = SessionId::from_u128(u128::from(i) + 1);
        engine.login(
            sid,
            &format!("user{}", i % ACCOUNTS),
            birth.clone(),
            companions(),
            T0,
        );
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
            b.iter_custom(|iters| {
                let mut timed = Duration::ZERO;
                let mut outputs = Vec::with_capacity(CHUNK);
                let mut left = iters;
                while left > 0 {
                    let chunk = left.min(CHUNK as u64);
                    left -= chunk;
                    let inputs: Vec<_> = (0..chunk)
                        .map(|_| {
                            i += 1;
                            let sid = SessionId::from_u128(u128::from(i * STRIDE % n) + 1);
                            (sid, live.clone(), T0.plus(Duration::from_millis(i)))
                        })
                        .collect();
                    let start = Instant::now();
                    for (sid, ctx, now) in inputs {
                        outputs.push(black_box(engine.decide(sid, ctx, now)));
                    }
                    timed += start.elapsed();
                    outputs.clear();
                }
                timed
            })
        });
    }
    group.finish();
}

fn decide_allow(c: &mut Criterion) {
    bench_decide(c, "allow", "127.0.1.20", Action::Revoke);
}

/// The drift path: every request comes from a datacenter 200 km away, and
/// the network rules are set to `challenge` so the session survives to be
/// measured again. IP, ASN, class and travel rules fire and build evidence
/// on every request.
fn decide_drift(c: &mut Criterion) {
    bench_decide(c, "drift", "127.0.2.20", Action::Challenge);
}

/// The memory-hierarchy floor, in the same run: a bare sharded map of
/// 400-byte boxed values (the size of a `Session`), looked up in the same
/// order, with each lookup depending on the last as `decide` calls do.
/// What `decide` costs above this at 1M sessions is the engine's own work.
fn bare_map_floor(c: &mut Criterion) {
    type Value = Box<[u64; 50]>;
    let mut group = c.benchmark_group("floor/bare_map_lookup");
    for n in SIZES {
        let mut shards: Vec<Map<u128, Value>> = (0..64).map(|_| Map::default()).collect();
        let shard_of = |k: u128| (k as usize).wrapping_mul(31) & 63;
        for i in 0..n {
            let k = u128::from(i) + 1;
            shards[shard_of(k)].insert(k, Box::new([i; 50]));
        }
        let (mut i, mut dep) = (0u64, 0u64);
        group.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, &n| {
            b.iter(|| {
                i += 1;
                let k = u128::from((i * STRIDE + (dep & 1)) % n) + 1;
                let v = shards[shard_of(k)]
                    .get(&k)
                    .map_or(0, |v| v[0] + v[10] + v[25] + v[40]);
                dep = black_box(v);
            })
        });
    }
    group.finish();
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
    targets = decide_allow, decide_drift, bare_map_floor, geo_lookup
}
criterion_main!(benches);
