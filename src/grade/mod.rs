//! The grade: what a client achieved and what it cost, from the target's trace and the client's output.
//!
//! Grading is pure: it reads the parsed trace ([`TraceFacts`]), the judged
//! output file ([`OutputCheck`]) and the records served per session, and
//! returns metrics and one pass/fail criterion per threshold of the
//! scenario. Every failed criterion carries sentences that say which rule
//! fired, when, and on what evidence.

pub mod explain;
pub mod facts;
pub mod output;

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::clock::Timestamp;
use crate::error::{Error, Result};
use crate::session::SessionId;
use crate::verdict::Verdict;

pub use explain::ExitNames;
pub use facts::{SessionLife, TimelineFired, TraceFacts};
pub use output::OutputCheck;

/// Details kept per failed criterion.
const MAX_DETAILS: usize = 20;

/// A scenario's pass marks. Each criterion is always measured; these say
/// what passes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GradeConfig {
    /// Least share of the dataset the client must extract correctly.
    pub min_completeness: f64,
    /// Most duplicate lines.
    pub max_duplicates: u64,
    /// Most wrong lines: mismatched, unserved or garbage.
    #[serde(alias = "max_decoys")]
    pub max_wrong_lines: u64,
    /// Most invalidated sessions over sessions created.
    pub max_mortality: f64,
    /// Most time in login flows over the crawl's duration.
    pub max_reauth_overhead: f64,
    /// Least records served per session created, if set.
    pub min_yield: Option<f64>,
    /// Most requests on sessions after they were shown to be dead.
    pub max_zombies: u64,
    /// Longest a client may keep using a session after it was shown dead.
    #[serde(with = "humantime_serde")]
    pub max_time_to_detect: Duration,
    /// Most accounts banned.
    pub max_banned_accounts: u64,
    /// Most requests any session made in one second, if set.
    pub max_peak_rate: Option<f64>,
}

impl Default for GradeConfig {
    fn default() -> Self {
        Self {
            min_completeness: 1.0,
            max_duplicates: 0,
            max_wrong_lines: 0,
            max_mortality: 0.0,
            max_reauth_overhead: 0.5,
            min_yield: None,
            max_zombies: 0,
            max_time_to_detect: Duration::ZERO,
            max_banned_accounts: 0,
            max_peak_rate: None,
        }
    }
}

impl GradeConfig {
    /// Checks the thresholds; errors name `prefix.field`.
    pub fn validate(&self, prefix: &str) -> Result<()> {
        let share = [
            ("min_completeness", self.min_completeness),
            ("max_mortality", self.max_mortality),
        ];
        for (name, v) in share {
            if !(0.0..=1.0).contains(&v) {
                return Err(Error::config(
                    format!("{prefix}.{name}"),
                    "must be within 0..=1",
                ));
            }
        }
        let positive = [
            ("max_reauth_overhead", Some(self.max_reauth_overhead)),
            ("min_yield", self.min_yield),
            ("max_peak_rate", self.max_peak_rate),
        ];
        for (name, v) in positive {
            if v.is_some_and(|v| !v.is_finite() || v < 0.0) {
                return Err(Error::config(
                    format!("{prefix}.{name}"),
                    "must be a number ≥ 0",
                ));
            }
        }
        Ok(())
    }
}

/// Everything a run measured.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Metrics {
    /// Records in the ground truth.
    pub dataset_size: u64,
    /// The client's output, judged.
    pub output: OutputCheck,
    /// Unique correct records over the dataset size.
    pub completeness: f64,
    /// Sessions created by a login.
    pub sessions_created: u64,
    /// Sessions that ended naturally, by reason code.
    pub sessions_expired: BTreeMap<String, u64>,
    /// Sessions invalidated for security, by reason code.
    pub sessions_invalidated: BTreeMap<String, u64>,
    /// Invalidated sessions over sessions created.
    pub mortality: f64,
    /// Seconds spent in login flows.
    pub login_seconds: f64,
    /// Seconds the crawl took.
    pub crawl_seconds: f64,
    /// Login time over crawl time.
    pub reauth_overhead: f64,
    /// Genuine records the target served, counting repeats.
    pub records_served: u64,
    /// Distinct genuine records the target served.
    pub records_unique: u64,
    /// Records served per session created.
    pub session_yield: f64,
    /// Requests on sessions after they were shown to be dead.
    pub zombie_requests: u64,
    /// Longest use of a session after it was shown dead, in seconds.
    pub time_to_detect_seconds: f64,
    /// Accounts banned.
    pub accounts_banned: Vec<String>,
    /// Most requests one session made within one second.
    pub peak_rate: f64,
    /// Requests the engine decided.
    pub requests: u64,
}

/// One pass/fail line of the report card.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Criterion {
    /// Stable name, such as `mortality`.
    pub name: String,
    /// Whether it passed.
    pub passed: bool,
    /// The measured value, formatted.
    pub value: String,
    /// The threshold, formatted (`≥ 1.00`, `≤ 0`).
    pub threshold: String,
    /// For a failure: what happened, one sentence each.
    pub details: Vec<String>,
}

/// What grading needs besides the trace and the output.
#[derive(Clone, Debug)]
pub struct RunFacts<'a> {
    /// The parsed trace.
    pub trace: &'a TraceFacts,
    /// The judged output.
    pub output: OutputCheck,
    /// Records in the ground truth.
    pub dataset_size: u64,
    /// Genuine records served, by session.
    pub served: &'a HashMap<SessionId, u64>,
    /// Distinct genuine records served to any session.
    pub served_unique: u64,
    /// When the client started.
    pub started: Timestamp,
    /// When the client ended.
    pub ended: Timestamp,
}

/// Measures a run and judges it against `config`.
pub fn grade(run: &RunFacts<'_>, config: &GradeConfig) -> (Metrics, Vec<Criterion>) {
    let lives = run.trace.sessions();
    let exits = ExitNames::from_events(&run.trace.proxy);
    let m = measure(run, &lives);
    let mut out = Vec::new();
    let mut push =
        |name: &str, passed: bool, value: String, threshold: String, details: Vec<String>| {
            let details = if passed {
                Vec::new()
            } else {
                details.into_iter().take(MAX_DETAILS).collect()
            };
            out.push(Criterion {
                name: name.to_owned(),
                passed,
                value,
                threshold,
                details,
            });
        };
    let o = &m.output;
    push(
        "completeness",
        m.completeness + 1e-9 >= config.min_completeness,
        format!("{:.3}", m.completeness),
        format!("≥ {:.3}", config.min_completeness),
        [
            vec![format!(
                "{} of {} records extracted correctly ({} lines written; {} records served by this run's target)",
                o.unique_correct, m.dataset_size, o.lines, m.records_unique
            )],
            silence(&m),
            deaths(&lives, run.started, &exits),
        ]
        .concat(),
    );
    push(
        "duplicates",
        o.duplicates <= config.max_duplicates,
        o.duplicates.to_string(),
        format!("≤ {}", config.max_duplicates),
        examples(o, "duplicate"),
    );
    push(
        "wrong_lines",
        o.wrong() <= config.max_wrong_lines,
        o.wrong().to_string(),
        format!("≤ {}", config.max_wrong_lines),
        [
            vec![format!(
                "{} mismatched, {} unserved, {} garbage",
                o.mismatched, o.unserved, o.garbage
            )],
            examples(o, "mismatched"),
            examples(o, "unserved"),
            examples(o, "garbage"),
        ]
        .concat(),
    );
    push(
        "mortality",
        m.mortality <= config.max_mortality + 1e-9,
        format!("{:.3}", m.mortality),
        format!("≤ {:.3}", config.max_mortality),
        invalidations(&lives, run.started, &exits),
    );
    push(
        "reauth_overhead",
        m.reauth_overhead <= config.max_reauth_overhead + 1e-9,
        format!("{:.3}", m.reauth_overhead),
        format!("≤ {:.3}", config.max_reauth_overhead),
        vec![format!(
            "{:.1} s in {} login flows over a {:.1} s crawl",
            m.login_seconds,
            run.trace.login_flows.len(),
            m.crawl_seconds
        )],
    );
    if let Some(min) = config.min_yield {
        push(
            "session_yield",
            m.session_yield + 1e-9 >= min,
            format!("{:.1}", m.session_yield),
            format!("≥ {min:.1}"),
            vec![format!(
                "{} records over {} sessions",
                m.records_served, m.sessions_created
            )],
        );
    }
    push(
        "zombie_requests",
        m.zombie_requests <= config.max_zombies,
        m.zombie_requests.to_string(),
        format!("≤ {}", config.max_zombies),
        zombies(&lives, run.started),
    );
    push(
        "time_to_detect",
        m.time_to_detect_seconds <= config.max_time_to_detect.as_secs_f64() + 1e-9,
        seconds(m.time_to_detect_seconds),
        format!("≤ {}", seconds(config.max_time_to_detect.as_secs_f64())),
        zombies(&lives, run.started),
    );
    push(
        "accounts_banned",
        m.accounts_banned.len() as u64 <= config.max_banned_accounts,
        m.accounts_banned.len().to_string(),
        format!("≤ {}", config.max_banned_accounts),
        bans(&lives, run.started, &exits),
    );
    if let Some(max) = config.max_peak_rate {
        push(
            "peak_rate",
            m.peak_rate <= max + 1e-9,
            format!("{:.0}/s", m.peak_rate),
            format!("≤ {max:.0}/s"),
            vec![format!(
                "a session made {:.0} requests within one second",
                m.peak_rate
            )],
        );
    }
    (m, out)
}

fn measure(run: &RunFacts<'_>, lives: &[SessionLife<'_>]) -> Metrics {
    let mut m = Metrics {
        dataset_size: run.dataset_size,
        output: run.output.clone(),
        ..Metrics::default()
    };
    m.completeness = ratio(m.output.unique_correct as f64, m.dataset_size as f64);
    for life in lives {
        m.sessions_created += u64::from(life.born());
        m.requests += life.requests.len() as u64;
        m.zombie_requests += life.zombies.len() as u64;
        if let (Some(rev), Some(last)) = (life.revealed, life.zombies.last()) {
            m.time_to_detect_seconds = m
                .time_to_detect_seconds
                .max(last.at.since(rev.at).as_secs_f64());
        }
        m.peak_rate = m.peak_rate.max(peak(&life.requests));
        let Some(death) = life.death else { continue };
        match death.verdict {
            Verdict::Expire(r) => *m.sessions_expired.entry(r.code().to_owned()).or_default() += 1,
            Verdict::Revoke(r) | Verdict::Ban(r) if r.is_security() => {
                *m.sessions_invalidated
                    .entry(r.code().to_owned())
                    .or_default() += 1;
            }
            _ => {}
        }
        if let (Verdict::Ban(_), Some(account)) = (death.verdict, &death.account)
            && !m.accounts_banned.iter().any(|a| a.as_str() == &**account)
        {
            m.accounts_banned.push(account.to_string());
        }
    }
    let invalidated: u64 = m.sessions_invalidated.values().sum();
    m.mortality = ratio(invalidated as f64, m.sessions_created as f64);
    m.login_seconds = run
        .trace
        .login_flows
        .iter()
        .map(|f| f.at.since(f.started).as_secs_f64())
        .sum::<f64>()
        + 0.0; // an empty float sum is -0.0
    m.crawl_seconds = run.ended.since(run.started).as_secs_f64();
    m.reauth_overhead = ratio(m.login_seconds, m.crawl_seconds);
    m.records_served = run.served.values().sum();
    m.records_unique = run.served_unique;
    m.session_yield = ratio(m.records_served as f64, m.sessions_created as f64);
    m
}

/// Seconds to the millisecond, so a failing value never reads as its
/// threshold (`0.023s`, not `0.0s`).
fn seconds(s: f64) -> String {
    format!("{s:.3}s")
}

fn ratio(a: f64, b: f64) -> f64 {
    if b > 0.0 { a / b } else { 0.0 }
}

/// The most requests inside any one-second window.
fn peak(times: &[Timestamp]) -> f64 {
    let mut sorted: Vec<u64> = times.iter().map(|t| t.as_millis()).collect();
    sorted.sort_unstable();
    let (mut best, mut lo) = (0usize, 0usize);
    for hi in 0..sorted.len() {
        while sorted[hi] - sorted[lo] >= 1000 {
            lo += 1;
        }
        best = best.max(hi - lo + 1);
    }
    best as f64
}

fn examples(o: &OutputCheck, kind: &str) -> Vec<String> {
    o.examples
        .get(kind)
        .map(|lines| lines.iter().map(|l| format!("{kind}: {l}")).collect())
        .unwrap_or_default()
}

/// Every session death, whatever its kind: what cut the crawl short.
fn deaths(lives: &[SessionLife<'_>], start: Timestamp, exits: &ExitNames) -> Vec<String> {
    lives
        .iter()
        .filter_map(|l| {
            Some(format!(
                "session ended: {}",
                explain::death(l.death?, l.birth, start, exits)
            ))
        })
        .collect()
}

/// A sentence for a client that never reached the target at all.
fn silence(m: &Metrics) -> Vec<String> {
    (m.sessions_created == 0 && m.requests == 0)
        .then(|| {
            "the client never logged in and asked the target for nothing: \
             only records served by this run's target count"
                .to_owned()
        })
        .into_iter()
        .collect()
}

fn invalidations(lives: &[SessionLife<'_>], start: Timestamp, exits: &ExitNames) -> Vec<String> {
    lives
        .iter()
        .filter_map(|l| {
            let d = l.death?;
            let security = d.verdict.reason().is_some_and(|r| r.is_security());
            (security && !matches!(d.verdict, Verdict::Expire(_)))
                .then(|| explain::death(d, l.birth, start, exits))
        })
        .collect()
}

fn zombies(lives: &[SessionLife<'_>], start: Timestamp) -> Vec<String> {
    lives
        .iter()
        .filter(|l| !l.zombies.is_empty())
        .filter_map(|l| {
            let rev = l.revealed?;
            let last = l.zombies.last()?;
            Some(format!(
                "session {}: {} more requests after {} at {}, the last at {}",
                short(l.id),
                l.zombies.len(),
                rev.verdict,
                explain::at(rev.at, start),
                explain::at(last.at, start)
            ))
        })
        .collect()
}

fn bans(lives: &[SessionLife<'_>], start: Timestamp, exits: &ExitNames) -> Vec<String> {
    lives
        .iter()
        .filter_map(|l| {
            let d = l.death.filter(|d| matches!(d.verdict, Verdict::Ban(_)))?;
            let account = d.account.as_deref().unwrap_or("?");
            Some(format!(
                "account {account}: {}",
                explain::death(d, l.birth, start, exits)
            ))
        })
        .collect()
}

fn short(id: SessionId) -> String {
    id.to_string().chars().take(8).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peak_counts_the_busiest_second() {
        let t = |ms| Timestamp::from_millis(ms);
        assert_eq!(peak(&[]), 0.0);
        assert_eq!(peak(&[t(0), t(100), t(999), t(1000), t(1001)]), 4.0);
        assert_eq!(peak(&[t(0), t(2000), t(4000)]), 1.0);
    }

    #[test]
    fn thresholds_are_validated() {
        let mut g = GradeConfig::default();
        g.validate("grade").expect("defaults are valid");
        g.max_mortality = 2.0;
        assert!(g.validate("grade").is_err());
        g.max_mortality = 0.1;
        g.max_peak_rate = Some(-1.0);
        let err = g.validate("grade").expect_err("negative");
        assert!(err.to_string().contains("grade.max_peak_rate"), "{err}");
    }
}
