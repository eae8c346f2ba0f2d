//! The test kit's speed: the reference client's crawl of `baseline` on the kit's paused clock, against how long the same crawl takes on the range's clock (what a real clock would take).
//!
//! Each run prints the real time of one kit case and the time the crawl
//! took on the range's clock, and the ratio of the medians. Run with
//! `cargo bench --bench testkit`.

use std::time::{Duration, Instant};

use sessionrange::client::{self, ClientArgs, ClientEnv};
use sessionrange::testkit::{Kit, KitEnv};
use sessionrange::{Outcome, Scenario};

/// Cases measured.
const RUNS: usize = 7;

/// The reference client, in process, on the kit's environment.
async fn reference(env: KitEnv) -> anyhow::Result<()> {
    let env = ClientEnv::from_vars(|name| env.var(name).map(str::to_owned))?;
    let args = ClientArgs {
        quiet: true,
        ..ClientArgs::default()
    };
    client::run(env, args).await.map(|_| ())
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let scenario = Scenario::named("baseline").expect("bundled");
    let kit = Kit::new(&scenario);
    let (mut real, mut range) = (Vec::new(), Vec::new());
    for i in 0..RUNS {
        let started = Instant::now();
        let run = kit.run(reference).expect("the stack starts");
        let took = started.elapsed();
        assert_eq!(run.outcome, Outcome::Pass, "{}", run.card());
        println!(
            "case {i}: {took:>10.1?} real, {:>8.3?} on the range's clock",
            run.elapsed
        );
        real.push(took);
        range.push(run.elapsed);
    }
    let (real, range) = (median(real), median(range));
    let ratio = range.as_secs_f64() / real.as_secs_f64();
    println!(
        "median: {real:.1?} real for a crawl of {range:.3?}: {ratio:.0}x faster than its own time"
    );
}
