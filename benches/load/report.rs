//! Printing the figures: requests per second per lane, ratios of pairs against their goals, latencies.

use crate::common::{median, range};
use crate::generator::Lane;

/// Thousands separated by commas, for requests per second.
pub(crate) fn rate(r: f64) -> String {
    let digits = format!("{:.0}", r.max(0.0));
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// One lane's rounds: median and range.
pub(crate) fn rates(name: &str, rounds: &[f64]) {
    let (lo, hi) = range(rounds);
    println!(
        "load: {name:<22} {:>8} req/s median of {} rounds ({} to {})",
        rate(median(rounds.to_vec())),
        rounds.len(),
        rate(lo),
        rate(hi)
    );
}

/// CPU per lane, in cores (median of its rounds): the generator's
/// thread and the servers (the rest of the process).
pub(crate) fn cpu(lanes: &[Lane]) {
    for l in lanes {
        let (generator, servers) = l.cpu_medians();
        println!(
            "load: cpu {:<26} generator {generator:.2} cores, servers {servers:.2} cores",
            l.name
        );
    }
}

/// One lane's rounds in the order they ran, in thousands per second.
pub(crate) fn each(name: &str, rounds: &[f64]) {
    let k: Vec<String> = rounds.iter().map(|r| format!("{:.1}", r / 1e3)).collect();
    println!("load: rounds {name:<22} {} (k req/s)", k.join(" "));
}

/// The ratios of each pair of rounds `num[i] / den[i]`: their median,
/// and the median, count and range as printed.
fn pairs(num: &[f64], den: &[f64]) -> (f64, String) {
    let ratios: Vec<f64> = num.iter().zip(den).map(|(n, d)| n / d).collect();
    let (lo, hi) = range(&ratios);
    let n = ratios.len();
    let m = median(ratios);
    (
        m,
        format!("{m:.3} median of {n} pairs ({lo:.3} to {hi:.3})"),
    )
}

/// The ratio of each pair of rounds `num[i] / den[i]`: median, range and
/// the goal it is held to (at least `goal`).
pub(crate) fn ratio(label: &str, num: &[f64], den: &[f64], goal: f64) {
    let (m, summary) = pairs(num, den);
    let verdict = if m >= goal { "met" } else { "not met" };
    println!("load: ratio {label:<28} {summary}; goal >= {goal}: {verdict}");
}

/// [`ratio`] for a goal of scaling out: met only when the machine has the
/// cores for it. A lane that keeps `busy` cores busy (generator, servers
/// and Redis) scales by `goal` only if `busy * goal` cores exist; when
/// they do not, the goal is not measurable here, and says so.
pub(crate) fn scaling(label: &str, num: &[f64], den: &[f64], goal: f64, busy: f64) {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
    if busy * goal <= cores {
        return ratio(label, num, den, goal);
    }
    let (_, summary) = pairs(num, den);
    println!(
        "load: ratio {label:<28} {summary}; goal >= {goal}: not measurable on {cores} cores (the lane it scales keeps {busy:.2} busy; {goal}x needs {:.2})",
        busy * goal
    );
}

/// Median latencies of sequential requests, direct, through the exit and
/// through a bare TCP relay, and what the exit adds against its goal.
pub(crate) fn latency(direct: Vec<f64>, exit: Vec<f64>, relay: Vec<f64>, goal_us: f64) {
    let n = direct.len();
    let (d, e, r) = (median(direct), median(exit), median(relay));
    let added = e - d;
    let verdict = if added <= goal_us { "met" } else { "not met" };
    println!(
        "load: median latency, {n} sequential requests each: direct {d:.0} us, through the exit {e:.0} us, through a bare TCP relay {r:.0} us"
    );
    println!(
        "load: the proxy adds {added:.0} us at the median (goal <= {goal_us:.0} us: {verdict}); a bare TCP relay adds {:.0} us",
        r - d
    );
}

/// A ratio with no goal of its own, printed for what it shows.
pub(crate) fn context(label: &str, num: &[f64], den: &[f64]) {
    println!("load: ratio {label:<28} {}", pairs(num, den).1);
}
