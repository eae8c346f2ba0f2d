//! The report card's criteria: each measured value against its threshold, with sentences that explain a failure.

use crate::clock::Timestamp;
use crate::grade::explain::{self, ExitNames};
use crate::grade::facts::SessionLife;
use crate::grade::traps::{self, Trap};
use crate::grade::{Criterion, GradeConfig, Metrics, OutputCheck, RunFacts};
use crate::session::SessionId;
use crate::verdict::{Reason, Verdict};

/// Details kept per failed criterion.
const MAX_DETAILS: usize = 20;

/// Everything a criterion may look at.
pub(super) struct Judge<'a> {
    pub(super) run: &'a RunFacts<'a>,
    pub(super) config: &'a GradeConfig,
    pub(super) m: &'a Metrics,
    pub(super) lives: &'a [SessionLife],
    pub(super) exits: &'a ExitNames,
}

/// A criterion; a passed one keeps no details.
fn criterion(
    name: &str,
    passed: bool,
    value: String,
    threshold: String,
    details: Vec<String>,
) -> Criterion {
    let details = if passed {
        Vec::new()
    } else {
        details.into_iter().take(MAX_DETAILS).collect()
    };
    Criterion {
        name: name.to_owned(),
        passed,
        value,
        threshold,
        details,
    }
}

impl Judge<'_> {
    /// Every criterion, in report order.
    pub(super) fn all(&self) -> Vec<Criterion> {
        let mut out = Vec::new();
        if !self.config.traps.is_empty() {
            out.push(trap_criterion(&self.config.traps, self.run));
        }
        out.extend(self.output());
        out.extend(self.sessions());
        out.extend(self.ends());
        out
    }

    /// Completeness, duplicates and wrong lines.
    fn output(&self) -> Vec<Criterion> {
        let mut out = Vec::new();
        let o = &self.m.output;
        out.push(criterion(
        "completeness",
        self.m.completeness + 1e-9 >= self.config.min_completeness,
        format!("{:.3}", self.m.completeness),
        format!("≥ {:.3}", self.config.min_completeness),
        [
            vec![format!(
                "{} of {} records extracted correctly ({} lines written; {} records served by this run's target)",
                o.unique_correct, self.m.dataset_size, o.lines, self.m.records_unique
            )],
            silence(self.m),
            self.m.missing.sentences(),
            deaths(self.lives, self.run.started, self.exits),
        ]
        .concat(),
        ));
        out.push(criterion(
            "duplicates",
            o.duplicates <= self.config.max_duplicates,
            o.duplicates.to_string(),
            format!("≤ {}", self.config.max_duplicates),
            examples(o, "duplicate"),
        ));
        out.push(criterion(
            "wrong_lines",
            o.wrong() <= self.config.max_wrong_lines,
            o.wrong().to_string(),
            format!("≤ {}", self.config.max_wrong_lines),
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
        ));
        out
    }

    /// Mortality, re-authentication overhead and yield.
    fn sessions(&self) -> Vec<Criterion> {
        let mut out = Vec::new();
        out.push(criterion(
            "mortality",
            self.m.mortality <= self.config.max_mortality + 1e-9,
            format!("{:.3}", self.m.mortality),
            format!("≤ {:.3}", self.config.max_mortality),
            invalidations(
                self.lives,
                self.run.started,
                self.exits,
                &self.config.expected_invalidations,
            ),
        ));
        out.push(criterion(
            "reauth_overhead",
            self.m.reauth_overhead <= self.config.max_reauth_overhead + 1e-9,
            format!("{:.3}", self.m.reauth_overhead),
            format!("≤ {:.3}", self.config.max_reauth_overhead),
            vec![format!(
                "{:.1} s in {} login flows against {:.1} s of session use (summed over workers); \
             {} login pages or challenges led to no session and are not timed",
                self.m.login_seconds,
                self.run.trace.login_flows,
                self.m.session_seconds,
                self.m.abandoned_login_flows
            )],
        ));
        if let Some(min) = self.config.min_yield {
            out.push(criterion(
                "session_yield",
                self.m.session_yield + 1e-9 >= min,
                format!("{:.1}", self.m.session_yield),
                format!("≥ {min:.1}"),
                vec![format!(
                    "{} records served over {} re-logins ({} sessions, {} workers at most at once)",
                    self.m.records_served, self.m.relogins, self.m.sessions_created, self.m.workers
                )],
            ));
        }
        out
    }

    /// Zombies, time to detect, bans and the peak rate.
    fn ends(&self) -> Vec<Criterion> {
        let mut out = Vec::new();
        out.push(criterion(
            "zombie_requests",
            self.m.zombie_requests <= self.config.max_zombies,
            self.m.zombie_requests.to_string(),
            format!("≤ {}", self.config.max_zombies),
            zombies(self.lives, self.run.started),
        ));
        out.push(criterion(
            "time_to_detect",
            self.m.time_to_detect_seconds <= self.config.max_time_to_detect.as_secs_f64() + 1e-9,
            seconds(self.m.time_to_detect_seconds),
            format!(
                "≤ {}",
                seconds(self.config.max_time_to_detect.as_secs_f64())
            ),
            zombies(self.lives, self.run.started),
        ));
        out.push(criterion(
            "accounts_banned",
            self.m.accounts_banned.len() as u64 <= self.config.max_banned_accounts,
            self.m.accounts_banned.len().to_string(),
            format!("≤ {}", self.config.max_banned_accounts),
            bans(self.lives, self.run.started, self.exits),
        ));
        if let Some(max) = self.config.max_peak_rate {
            out.push(criterion(
                "peak_rate",
                self.m.peak_rate <= max + 1e-9,
                format!("{:.0}/s", self.m.peak_rate),
                format!("≤ {max:.0}/s"),
                vec![format!(
                    "a session made {:.0} requests within one second",
                    self.m.peak_rate
                )],
            ));
        }
        out
    }
}

/// Seconds to the millisecond, so a failing value never reads as its
/// threshold (`0.023s`, not `0.0s`).
fn seconds(s: f64) -> String {
    format!("{s:.3}s")
}

fn examples(o: &OutputCheck, kind: &str) -> Vec<String> {
    o.examples
        .get(kind)
        .map(|lines| lines.iter().map(|l| format!("{kind}: {l}")).collect())
        .unwrap_or_default()
}

/// Every session death, whatever its kind: what cut the crawl short.
fn deaths(lives: &[SessionLife], start: Timestamp, exits: &ExitNames) -> Vec<String> {
    let mut ended: Vec<_> = lives
        .iter()
        .filter_map(|l| Some((l.death.as_ref()?, l.birth.as_ref())))
        .collect();
    ended.sort_by_key(|(d, _)| d.at);
    ended
        .into_iter()
        .map(|(d, birth)| format!("session ended: {}", explain::death(d, birth, start, exits)))
        .collect()
}

/// Whether every trap of the scenario fired, with how often.
fn trap_criterion(list: &[Trap], run: &RunFacts<'_>) -> Criterion {
    let counts = traps::check(list, run.trace, run.served);
    let passed = counts.iter().all(|(_, n)| *n > 0);
    let value: Vec<String> = counts
        .iter()
        .map(|(t, n)| format!("{} ×{n}", t.as_str()))
        .collect();
    let details = counts
        .iter()
        .filter(|(_, n)| *n == 0)
        .map(|(t, _)| {
            format!(
                "the trap never fired, so this run tested nothing: {} (the client ran {:.1} s)",
                t.never(),
                run.ended.since(run.started).as_secs_f64()
            )
        })
        .collect();
    Criterion {
        name: "trap".to_owned(),
        passed,
        value: value.join(", "),
        threshold: "each fired at least once".to_owned(),
        details,
    }
}

/// A sentence for a client that never got a session: whether it sent
/// nothing the target could judge, or was refused (the causes say why).
fn silence(m: &Metrics) -> Vec<String> {
    if m.sessions_created > 0 || m.requests > 0 {
        return Vec::new();
    }
    let refused = m.missing.requests_refused.values().sum::<u64>()
        + m.missing.logins_refused.values().sum::<u64>();
    let text = if refused == 0 {
        "the client sent the target no login and no request for a record: \
         only records served by this run's target count"
    } else {
        "the client never got a session: only records served by this run's target count"
    };
    vec![text.to_owned()]
}

fn invalidations(
    lives: &[SessionLife],
    start: Timestamp,
    exits: &ExitNames,
    expected: &[Reason],
) -> Vec<String> {
    lives
        .iter()
        .filter_map(|l| {
            let d = l.death.as_ref()?;
            let reason = d.verdict.reason();
            let security = reason.is_some_and(|r| r.is_security() && !expected.contains(&r));
            (security && !matches!(d.verdict, Verdict::Expire(_)))
                .then(|| explain::death(d, l.birth.as_ref(), start, exits))
        })
        .collect()
}

fn zombies(lives: &[SessionLife], start: Timestamp) -> Vec<String> {
    lives
        .iter()
        .filter(|l| l.zombies > 0)
        .filter_map(|l| {
            let rev = l.revealed.as_ref()?;
            let last = l.last_zombie?;
            Some(format!(
                "session {}: {} more requests after {} at {} (past {} already in flight), the last at {}",
                short(l.id),
                l.zombies,
                rev.verdict,
                explain::at(rev.at, start),
                l.in_flight,
                explain::at(last, start)
            ))
        })
        .collect()
}

/// One line per banned account: when and why it was first banned.
fn bans(lives: &[SessionLife], start: Timestamp, exits: &ExitNames) -> Vec<String> {
    let mut banned: Vec<_> = lives
        .iter()
        .filter_map(|l| {
            let death = l.death.as_ref()?;
            matches!(death.verdict, Verdict::Ban(_)).then_some((death, l))
        })
        .collect();
    banned.sort_by_key(|(d, _)| d.at);
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::new();
    for (d, l) in banned {
        let account = d.account.as_deref().unwrap_or("?");
        if seen.insert(account.to_owned()) {
            out.push(format!(
                "account {account}: {}",
                explain::death(d, l.birth.as_ref(), start, exits)
            ));
        }
    }
    out
}

fn short(id: SessionId) -> String {
    id.to_string().chars().take(8).collect()
}
