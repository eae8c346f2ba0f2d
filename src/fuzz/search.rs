//! The search: draw cases from a proptest strategy, and shrink the first failure with proptest's own value trees while it keeps its cause.
//!
//! Pure and synchronous: the caller's `eval` runs a batch of cases (at
//! once, if it can) and says how each came out. Shrinking follows
//! proptest's runner (simplify after a failure, complicate after a pass),
//! with one difference that a fuzzer of whole runs needs: a simpler case
//! that fails for another reason counts as a pass, so the minimal case
//! fails the way the first one did.

use std::time::{Duration, Instant};

use proptest::strategy::{Strategy, ValueTree};
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};

/// How one case came out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict<C> {
    /// It passed.
    Pass,
    /// It failed, for this cause.
    Fail(C),
}

/// How long a search may go on.
#[derive(Clone, Copy, Debug)]
pub struct Budget {
    /// Cases drawn before giving up, shrinking aside.
    pub runs: u32,
    /// Cases run at once.
    pub batch: usize,
    /// Shrinking steps (cases run while shrinking) at most.
    pub shrink_steps: u32,
    /// Wall time for the whole search, shrinking included.
    pub time: Option<Duration>,
}

/// A failure and the smallest case found that fails the same way.
#[derive(Clone, Debug)]
pub struct Found<V, C> {
    /// The case drawn that failed first.
    pub first: V,
    /// The simplest case that still fails with `cause`.
    pub minimal: V,
    /// Why both fail.
    pub cause: C,
    /// Cases drawn before the failure, it included.
    pub drawn: u32,
    /// Cases run while shrinking.
    pub shrink_steps: u32,
    /// Simpler cases that still failed the same way.
    pub shrinks: u32,
}

/// What a search came to.
#[derive(Clone, Debug)]
pub struct Searched<V, C> {
    /// The failure, if one was found.
    pub found: Option<Found<V, C>>,
    /// Cases drawn in all.
    pub drawn: u32,
    /// Whether the time budget ran out first.
    pub out_of_time: bool,
}

/// The runner every search draws with: proptest's, on a ChaCha generator
/// seeded from `seed`, so a seed gives the same cases every time.
pub fn runner(seed: u64) -> TestRunner {
    let mut bytes = [0u8; 32];
    bytes[..8].copy_from_slice(&seed.to_le_bytes());
    let rng = TestRng::from_seed(RngAlgorithm::ChaCha, &bytes);
    TestRunner::new_with_rng(Config::default(), rng)
}

/// Draws cases from `strategy` in batches and shrinks the first failure.
pub fn search<S, C>(
    strategy: &S,
    seed: u64,
    budget: Budget,
    mut eval: impl FnMut(&[S::Value]) -> Vec<Verdict<C>>,
) -> Searched<S::Value, C>
where
    S: Strategy,
    S::Value: PartialEq,
    C: Clone + PartialEq,
{
    let started = Instant::now();
    let out_of_time = || budget.time.is_some_and(|t| started.elapsed() >= t);
    let mut runner = runner(seed);
    let mut drawn = 0;
    while drawn < budget.runs && !out_of_time() {
        let n = budget.batch.clamp(1, (budget.runs - drawn) as usize);
        let trees: Vec<S::Tree> = (0..n)
            .filter_map(|_| strategy.new_tree(&mut runner).ok())
            .collect();
        let cases: Vec<S::Value> = trees.iter().map(ValueTree::current).collect();
        let verdicts = eval(&cases);
        let failed = trees
            .into_iter()
            .zip(verdicts)
            .enumerate()
            .find_map(|(i, (t, v))| match v {
                Verdict::Fail(c) => Some((i, t, c)),
                Verdict::Pass => None,
            });
        if let Some((i, tree, cause)) = failed {
            drawn += i as u32 + 1;
            let found = shrink(
                tree,
                cause,
                drawn,
                budget.shrink_steps,
                &out_of_time,
                &mut eval,
            );
            return Searched {
                found: Some(found),
                drawn,
                out_of_time: out_of_time(),
            };
        }
        drawn += n as u32;
    }
    Searched {
        found: None,
        drawn,
        out_of_time: out_of_time(),
    }
}

/// Shrinks `tree`, whose current case failed with `cause`, one case at a
/// time; only a failure with the same cause counts as a failure. A step
/// that leaves the case as it was (a value the case does not use) is taken
/// without running it again.
fn shrink<T, C>(
    mut tree: T,
    mut cause: C,
    drawn: u32,
    max_steps: u32,
    out_of_time: &impl Fn() -> bool,
    eval: &mut impl FnMut(&[T::Value]) -> Vec<Verdict<C>>,
) -> Found<T::Value, C>
where
    T: ValueTree,
    T::Value: PartialEq,
    C: Clone + PartialEq,
{
    let first = tree.current();
    let mut minimal = tree.current();
    let (mut steps, mut shrinks) = (0, 0);
    let mut more = tree.simplify();
    while more && steps < max_steps && !out_of_time() {
        let case = tree.current();
        if case == minimal {
            more = tree.simplify();
            continue;
        }
        steps += 1;
        let verdict = eval(std::slice::from_ref(&case)).into_iter().next();
        if let Some(Verdict::Fail(c)) = verdict.filter(|v| *v == Verdict::Fail(cause.clone())) {
            // The same cause, as this case shows it.
            cause = c;
            minimal = case;
            shrinks += 1;
            more = tree.simplify();
        } else {
            more = tree.complicate();
        }
    }
    Found {
        first,
        minimal,
        cause,
        drawn,
        shrink_steps: steps,
        shrinks,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::arbitrary::any;
    use proptest::collection::vec;

    fn budget(runs: u32) -> Budget {
        Budget {
            runs,
            batch: 4,
            shrink_steps: 10_000,
            time: None,
        }
    }

    /// Fails a list whose sum passes 100 ("big"), or that holds a 7 ("seven").
    fn judge(cases: &[Vec<u32>]) -> Vec<Verdict<&'static str>> {
        cases
            .iter()
            .map(|v| match () {
                () if v.iter().sum::<u32>() > 100 => Verdict::Fail("big"),
                () if v.contains(&7) => Verdict::Fail("seven"),
                () => Verdict::Pass,
            })
            .collect()
    }

    #[test]
    fn a_failure_is_shrunk_to_a_minimal_case_with_the_same_cause() {
        let strategy = vec(0u32..60, 0..12);
        let searched = search(&strategy, 3, budget(200), judge);
        let found = searched.found.expect("some list fails");
        let minimal_fails = judge(std::slice::from_ref(&found.minimal));
        assert_eq!(minimal_fails, vec![Verdict::Fail(found.cause)]);
        let m = &found.minimal;
        match found.cause {
            // Locally minimal: no part can shrink or go without passing.
            "big" => {
                assert_eq!(m.iter().sum::<u32>(), 101, "{m:?}");
                let without = |i: usize| m.iter().sum::<u32>() - m[i];
                assert!((0..m.len()).all(|i| without(i) <= 100), "{m:?}");
            }
            _ => assert_eq!(*m, vec![7]),
        }
        assert!(found.shrinks > 0 && found.shrink_steps >= found.shrinks);
    }

    #[test]
    fn shrinking_never_trades_the_cause_for_another() {
        // Every list holding a 7 fails as "seven" unless its sum is big:
        // shrinking a big list passes through lists that hold a 7.
        for seed in 0..20 {
            let strategy = vec(0u32..60, 0..12);
            let searched = search(&strategy, seed, budget(200), judge);
            let Some(found) = searched.found else {
                continue;
            };
            let minimal = judge(std::slice::from_ref(&found.minimal));
            assert_eq!(minimal, vec![Verdict::Fail(found.cause)], "seed {seed}");
            let first = judge(std::slice::from_ref(&found.first));
            assert_eq!(first, vec![Verdict::Fail(found.cause)], "seed {seed}");
        }
    }

    #[test]
    fn a_seed_draws_the_same_cases_and_the_budget_bounds_the_draws() {
        let strategy = vec(0u32..1000, 0..5);
        let mut seen = Vec::new();
        let mut keep = |cases: &[Vec<u32>]| {
            seen.extend(cases.iter().cloned());
            vec![Verdict::<()>::Pass; cases.len()]
        };
        let searched = search(&strategy, 11, budget(10), &mut keep);
        assert!(searched.found.is_none());
        assert_eq!((searched.drawn, seen.len()), (10, 10));
        let mut again = Vec::new();
        search(&strategy, 11, budget(10), |cases: &[Vec<u32>]| {
            again.extend(cases.iter().cloned());
            vec![Verdict::<()>::Pass; cases.len()]
        });
        assert_eq!(seen, again);
    }

    #[test]
    fn a_step_that_changes_nothing_the_case_uses_is_not_run() {
        // The number counts only with the flag set; every case fails.
        let strategy = (any::<bool>(), 1u32..1000)
            .prop_map(|(flag, n)| if flag { (true, n) } else { (false, 0) });
        let all_fail = |cases: &[(bool, u32)]| vec![Verdict::Fail(()); cases.len()];
        for seed in 0..10 {
            let searched = search(&strategy, seed, budget(4), all_fail);
            let found = searched.found.expect("every case fails");
            assert_eq!(found.minimal, (false, 0));
            // One run drops the flag (if it was set); shrinking the
            // unused number then runs nothing.
            assert!(found.shrink_steps <= 1, "seed {seed}: {found:?}");
        }
    }

    #[test]
    fn the_time_budget_stops_a_search() {
        let strategy = vec(0u32..10, 0..3);
        let b = Budget {
            time: Some(Duration::ZERO),
            ..budget(1000)
        };
        let searched = search(&strategy, 1, b, |c: &[Vec<u32>]| {
            vec![Verdict::<()>::Pass; c.len()]
        });
        assert!(searched.out_of_time);
        assert_eq!(searched.drawn, 0);
    }
}
