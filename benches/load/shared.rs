//! The shared target under load: one instance on Redis against one in memory, and two instances on Redis against one, in the same run.
//!
//! A real `redis-server` (Debian's, no persistence) on a port of its own;
//! every target has the bench configuration with the login velocity
//! rules off (each lane logs in many sessions at once), its trace on disk.
//! Lanes of `--connections` keep-alive connections (32 by default):
//!
//! - each connection with a session of its own, as a crawler's workers
//!   hold one each: in memory, on Redis with one instance, and on Redis
//!   with two (the connections alternate between them; each session is
//!   judged by whichever instance its connection reached);
//! - every connection on one session: in memory and on Redis with one
//!   instance, the worst case for the store (one record every request
//!   reads and writes).
//!
//! The ratios are taken turn by turn, as in the full bench.

use sessionrange::{Action, TargetConfig, TargetServer};

use crate::generator::Lane;
use crate::modes::{Setup, turns};
use crate::redis::Redis;
use crate::session::form_login;
use crate::wire::Route;
use crate::{Args, report, servers};

/// The memory lane with a session per connection.
const MEMORY: usize = 0;
/// Redis, one instance, a session per connection.
const ONE: usize = 1;
/// Redis, two instances, a session per connection.
const TWO: usize = 2;
/// Memory, one session on every connection.
const MEMORY_HOT: usize = 3;
/// Redis, one instance, one session on every connection.
const ONE_HOT: usize = 4;

/// The bench configuration on `store`, with no login limit.
fn config(store: Option<String>) -> TargetConfig {
    let mut cfg = crate::common::config();
    cfg.rules.login_velocity_ip.action = Action::Off;
    cfg.rules.login_velocity_account.action = Action::Off;
    cfg.store = store;
    cfg
}

/// Runs the shared-store lanes and prints their ratios.
pub(crate) fn run(s: &Setup, args: &Args) {
    let Some(redis) = Redis::start_with("bench", false) else {
        println!("load: redis-server is not installed: the shared bench is skipped");
        return;
    };
    let trace = |name: &str| s.dir.join(format!("{name}.jsonl"));
    let start = |name: &str, store| s.servers.block_on(target(config(store), &trace(name)));
    let memory = start("memory", None);
    let a = start("redis-a", Some(redis.url()));
    let b = start("redis-b", Some(redis.url()));
    s.client.block_on(async {
        let mut lanes = lanes(&memory, &a, &b, args.connections).await;
        let (cpu, started) = (redis.cpu_seconds(), std::time::Instant::now());
        let rates = turns(&mut lanes, args.round(), args.pairs()).await;
        // Three of the five lanes use Redis; it idles through the others.
        let busy = started.elapsed().as_secs_f64() * 3.0 / 5.0;
        let redis_cores = (redis.cpu_seconds() - cpu) / busy;
        println!("load: cpu redis-server          {redis_cores:.2} cores while its lanes ran");
        for (lane, r) in lanes.iter().zip(&rates) {
            report::rates(lane.name, r);
        }
        report::cpu(&lanes);
        report::ratio("Redis x1 / memory", &rates[ONE], &rates[MEMORY], 0.5);
        let busy = lanes[ONE].cores() + redis_cores;
        report::scaling("Redis x2 / Redis x1", &rates[TWO], &rates[ONE], 1.6, busy);
        report::context(
            "one session: Redis / memory",
            &rates[ONE_HOT],
            &rates[MEMORY_HOT],
        );
    });
    drop((memory, a, b));
}

/// A target on the servers' runtime, its trace appended to `trace`.
async fn target(config: TargetConfig, trace: &std::path::Path) -> TargetServer {
    servers::target(config, trace).await.0
}

/// The five lanes, each connection logged in on the instance it talks to.
async fn lanes(memory: &TargetServer, a: &TargetServer, b: &TargetServer, n: usize) -> Vec<Lane> {
    let (m, ra, rb) = (
        Route::plain(memory.addr()),
        Route::plain(a.addr()),
        Route::plain(b.addr()),
    );
    let mut lanes = Vec::new();
    for (name, routes) in [
        ("memory, session per connection", vec![&m]),
        ("Redis x1, session per connection", vec![&ra]),
        ("Redis x2, session per connection", vec![&ra, &rb]),
    ] {
        let mut plan = Vec::with_capacity(n);
        for i in 0..n {
            let route = routes[i % routes.len()];
            let cookie = form_login(route, "alice", "wonderland").await;
            plan.push((route, cookie.page_request(route)));
        }
        lanes.push(Lane::open_each(name, plan).await);
    }
    for (name, route) in [("memory, one session", &m), ("Redis x1, one session", &ra)] {
        let cookie = form_login(route, "alice", "wonderland").await;
        lanes.push(Lane::open(name, route, cookie.page_request(route), n).await);
    }
    lanes
}
