//! The grade: what a client achieved and what it cost, from the target's trace and the client's output.
//!
//! Grading is pure: it reads the summed-up trace ([`TraceFacts`]), the judged
//! output file ([`OutputCheck`]) and the records served per session, and
//! returns metrics and one pass/fail criterion per threshold of the
//! scenario. Every failed criterion carries sentences that say which rule
//! fired, when, and on what evidence.

pub mod builder;
pub mod causes;
mod criteria;
pub mod explain;
pub mod facts;
pub mod marks;
pub mod output;
pub mod traps;
pub mod view;

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::clock::Timestamp;
use crate::error::{Error, Result};
use crate::session::SessionId;
use crate::verdict::{Reason, Verdict};

pub use builder::FactsBuilder;
pub use causes::Missing;
pub use explain::ExitNames;
pub use facts::{SessionLife, TimelineFired, TraceFacts};
pub use output::OutputCheck;
pub use traps::Trap;
pub use view::{RunView, ViewBuilder};

/// Requests on a dead session this soon after the revealing answer were
/// already on their way: a client with 16 requests in flight cannot call
/// them back.
pub const DEFAULT_IN_FLIGHT_GRACE: Duration = Duration::from_millis(200);

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
    /// Security reasons the scenario causes on purpose (a sticky exit that
    /// moves between networks kills every session it carries): such
    /// invalidations are counted and reported, but not in mortality.
    pub expected_invalidations: Vec<Reason>,
    /// Most time in login flows over the crawl's duration.
    pub max_reauth_overhead: f64,
    /// Least records served per session created, if set.
    pub min_yield: Option<f64>,
    /// Most requests on sessions after they were shown to be dead (past
    /// the in-flight grace).
    pub max_zombies: u64,
    /// How long after the request that revealed a death a request on the
    /// same session still counts as in flight rather than as a zombie.
    #[serde(with = "humantime_serde")]
    pub in_flight_grace: Duration,
    /// Longest a client may keep using a session after it was shown dead.
    #[serde(with = "humantime_serde")]
    pub max_time_to_detect: Duration,
    /// Most accounts banned.
    pub max_banned_accounts: u64,
    /// Most requests any session made in one second, if set.
    pub max_peak_rate: Option<f64>,
    /// The traps the run must have met; a run that met none of one fails
    /// the `trap` criterion, however well the client did otherwise.
    pub traps: Vec<Trap>,
}

impl Default for GradeConfig {
    fn default() -> Self {
        Self {
            min_completeness: 1.0,
            max_duplicates: 0,
            max_wrong_lines: 0,
            max_mortality: 0.0,
            expected_invalidations: Vec::new(),
            max_reauth_overhead: 0.5,
            min_yield: None,
            max_zombies: 0,
            in_flight_grace: DEFAULT_IN_FLIGHT_GRACE,
            max_time_to_detect: Duration::ZERO,
            max_banned_accounts: 0,
            max_peak_rate: None,
            traps: Vec::new(),
        }
    }
}

impl GradeConfig {
    /// Checks the thresholds; errors name `prefix.field`.
    pub fn validate(&self, prefix: &str) -> Result<()> {
        if let Some(r) = self
            .expected_invalidations
            .iter()
            .find(|r| !r.is_security())
        {
            return Err(Error::config(
                format!("{prefix}.expected_invalidations"),
                format!("{r} is not a security reason: only those count in mortality"),
            ));
        }
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
    /// Of those, the ones for reasons the scenario causes on purpose.
    pub expected_invalidations: u64,
    /// Invalidated sessions, less the expected ones, over sessions created.
    pub mortality: f64,
    /// Seconds spent in login flows, summed over parallel workers: each
    /// from the page or challenge the successful login presented.
    pub login_seconds: f64,
    /// Login pages and challenges that led to no session (not timed).
    pub abandoned_login_flows: u64,
    /// Seconds sessions were in use (birth to death or last request),
    /// summed over parallel sessions.
    pub session_seconds: f64,
    /// Seconds the client ran.
    pub crawl_seconds: f64,
    /// Login time over login plus session time: the share of each
    /// worker's working time spent logging in.
    pub reauth_overhead: f64,
    /// Genuine records the target served, counting repeats.
    pub records_served: u64,
    /// Distinct genuine records the target served.
    pub records_unique: u64,
    /// Why records are missing, counted.
    pub missing: Missing,
    /// Most sessions in use at the same time: the client's workers.
    pub workers: u64,
    /// Sessions created beyond the workers' first ones.
    pub relogins: u64,
    /// Records served per re-login, plus one: parallel first logins are
    /// not waste, re-logins are.
    pub session_yield: f64,
    /// Requests on sessions after they were shown to be dead, past the
    /// in-flight grace.
    pub zombie_requests: u64,
    /// Requests on dead sessions within the in-flight grace.
    pub in_flight_requests: u64,
    /// Longest use of a session after it was shown dead, in seconds.
    pub time_to_detect_seconds: f64,
    /// Accounts banned.
    pub accounts_banned: Vec<String>,
    /// Most requests one session made within one second.
    pub peak_rate: f64,
    /// Requests the engine decided.
    pub requests: u64,
    /// Answers to the JavaScript challenge, by who solved them (`page`,
    /// `client`) or `wrong`.
    pub challenges: BTreeMap<String, u64>,
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
    /// The trace, summed up with the scenario's in-flight grace
    /// ([`GradeConfig::in_flight_grace`]).
    pub trace: &'a TraceFacts,
    /// The judged output.
    pub output: OutputCheck,
    /// Records in the ground truth.
    pub dataset_size: u64,
    /// Genuine records served, by session.
    pub served: &'a HashMap<SessionId, u64>,
    /// Distinct genuine records served to any session.
    pub served_unique: u64,
    /// Login pages and challenges issued that no successful login used.
    pub abandoned_login_flows: u64,
    /// When the client started.
    pub started: Timestamp,
    /// When the client ended.
    pub ended: Timestamp,
}

/// Measures a run and judges it against `config`.
pub fn grade(run: &RunFacts<'_>, config: &GradeConfig) -> (Metrics, Vec<Criterion>) {
    let lives = &run.trace.lives;
    let m = measure(run, lives, &config.expected_invalidations);
    let judge = criteria::Judge {
        run,
        config,
        m: &m,
        lives,
        exits: &run.trace.exits,
    };
    let criteria = judge.all();
    (m, criteria)
}

fn measure(run: &RunFacts<'_>, lives: &[SessionLife], expected: &[Reason]) -> Metrics {
    let mut m = Metrics {
        dataset_size: run.dataset_size,
        output: run.output.clone(),
        ..Metrics::default()
    };
    m.completeness = ratio(m.output.unique_correct as f64, m.dataset_size as f64);
    for life in lives {
        measure_life(&mut m, life);
    }
    let invalidated: u64 = m.sessions_invalidated.values().sum();
    // A set of reasons: one listed twice is still excused once.
    let expected: std::collections::BTreeSet<&str> = expected.iter().map(|r| r.code()).collect();
    m.expected_invalidations = expected
        .iter()
        .filter_map(|code| m.sessions_invalidated.get(*code))
        .sum();
    let unexpected = invalidated - m.expected_invalidations;
    m.mortality = ratio(unexpected as f64, m.sessions_created as f64);
    m.login_seconds = run.trace.login_seconds + 0.0;
    let spans: Vec<_> = lives.iter().filter_map(SessionLife::span).collect();
    m.session_seconds = spans
        .iter()
        .map(|(a, b)| b.since(*a).as_secs_f64())
        .sum::<f64>()
        + 0.0;
    m.crawl_seconds = run.ended.since(run.started).as_secs_f64();
    m.reauth_overhead = ratio(m.login_seconds, m.login_seconds + m.session_seconds);
    m.records_served = run.served.values().sum();
    m.records_unique = run.served_unique;
    m.abandoned_login_flows = run.abandoned_login_flows;
    m.missing = Missing::count(
        run.trace,
        m.dataset_size,
        m.records_unique,
        m.output.unique_correct,
    );
    m.requests += run.trace.untracked_requests;
    m.challenges = run.trace.challenges.clone();
    m.workers = most_at_once(&spans);
    m.relogins = m.sessions_created.saturating_sub(m.workers);
    m.session_yield = m.records_served as f64 / (1 + m.relogins) as f64;
    m
}

/// Adds one session's counts to `m`.
fn measure_life(m: &mut Metrics, life: &SessionLife) {
    m.sessions_created += u64::from(life.born());
    m.requests += life.requests;
    m.zombie_requests += life.zombies;
    m.in_flight_requests += life.in_flight;
    if let (Some(rev), Some(last)) = (&life.revealed, life.last_zombie) {
        let late = last.since(rev.at).as_secs_f64();
        m.time_to_detect_seconds = m.time_to_detect_seconds.max(late);
    }
    m.peak_rate = m.peak_rate.max(life.peak_rate as f64);
    let Some(death) = &life.death else { return };
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

/// The most spans that overlap at one instant.
fn most_at_once(spans: &[(Timestamp, Timestamp)]) -> u64 {
    // Starts sort before ends at the same instant: a session born as
    // another dies counts as overlapping it only if both are in use.
    let mut edges: Vec<(Timestamp, i64)> = spans
        .iter()
        .flat_map(|(a, b)| [(*a, 1), (*b, -1)])
        .collect();
    edges.sort_by_key(|&(t, step)| (t, -step));
    let (mut now, mut most) = (0i64, 0i64);
    for (_, step) in edges {
        now += step;
        most = most.max(now);
    }
    most.unsigned_abs()
}

fn ratio(a: f64, b: f64) -> f64 {
    if b > 0.0 { a / b } else { 0.0 }
}

/// How a scenario's run came out.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// Every criterion passed, the trap included.
    Pass,
    /// A criterion other than the trap failed.
    Fail,
    /// Everything passed but the scenario's trap never fired: the run
    /// tested nothing, and is not a pass.
    Inconclusive,
}

impl Outcome {
    /// The outcome of these criteria.
    pub fn of(criteria: &[Criterion]) -> Self {
        let failed = |c: &&Criterion| !c.passed;
        match criteria
            .iter()
            .filter(failed)
            .map(|c| c.name.as_str())
            .collect::<Vec<_>>()[..]
        {
            [] => Self::Pass,
            ["trap"] => Self::Inconclusive,
            _ => Self::Fail,
        }
    }

    /// The word on the card: `PASS`, `FAIL` or `INCONCLUSIVE`.
    pub fn word(self) -> &'static str {
        match self {
            Self::Pass => "PASS",
            Self::Fail => "FAIL",
            Self::Inconclusive => "INCONCLUSIVE",
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::config::EngineConfig;
    use crate::context::RequestContext;
    use crate::engine::{Decision, Engine};
    use crate::geo::GeoDb;
    use crate::trace::records::LoginFlow;
    use crate::verdict::{Action, Reason};

    fn at(ms: u64) -> Timestamp {
        Timestamp::from_millis(1_790_000_000_000 + ms)
    }

    /// A request context from `ip`, as the embedded geo data sees it.
    pub(crate) fn ctx(ip: &str) -> RequestContext {
        let ip = ip.parse().expect("an address");
        RequestContext::from_headers(
            Some(ip),
            GeoDb::embedded().lookup(ip),
            [("user-agent", "t")],
        )
    }

    /// A client of `workers` sessions, each logging in for 500 ms from
    /// `at(0)` and then making a request every 100 ms for ten seconds;
    /// each session is served 50 records.
    fn workers(engine: &Engine, n: u128) -> (TraceFacts, HashMap<SessionId, u64>) {
        let mut facts = FactsBuilder::new(DEFAULT_IN_FLIGHT_GRACE);
        let mut push = |d: Decision| facts.add_decision(&d).expect("a full context");
        let mut served = HashMap::new();
        let mut flows = Vec::new();
        for w in 0..n {
            let sid = SessionId::from_u128(w + 1);
            push(engine.login(sid, "alice", ctx("127.0.1.9"), vec![], at(500)));
            flows.push(LoginFlow {
                kind: "login_flow".into(),
                session: sid,
                started: at(0),
                at: at(500),
            });
            for i in 1..=100 {
                push(engine.decide(sid, ctx("127.0.1.9"), at(500 + i * 100)));
            }
            served.insert(sid, 50);
        }
        for f in &flows {
            facts.add_login_flow(f);
        }
        (facts.finish(), served)
    }

    fn run_of<'a>(
        facts: &'a TraceFacts,
        served: &'a HashMap<SessionId, u64>,
        end: u64,
    ) -> RunFacts<'a> {
        RunFacts {
            trace: facts,
            output: OutputCheck::default(),
            dataset_size: 200,
            served,
            served_unique: served.values().sum(),
            abandoned_login_flows: 0,
            started: at(0),
            ended: at(end),
        }
    }

    fn graded(facts: &TraceFacts, served: &HashMap<SessionId, u64>, end: u64) -> Metrics {
        grade(&run_of(facts, served, end), &GradeConfig::default()).0
    }

    #[test]
    fn idling_and_parallel_workers_change_neither_overhead_nor_yield() {
        let mut rules = EngineConfig::default();
        rules.session_velocity.action = Action::Off;
        rules.account_velocity.action = Action::Off;
        rules.concurrency.action = Action::Off;
        let (one, one_served) = workers(&Engine::new(rules.clone()).expect("engine"), 1);
        let (four, four_served) = workers(&Engine::new(rules).expect("engine"), 4);
        let busy = graded(&one, &one_served, 11_000);
        let idle = graded(&one, &one_served, 100_000);
        let parallel = graded(&four, &four_served, 11_000);
        assert!((busy.reauth_overhead - 0.5 / 10.5).abs() < 1e-9, "{busy:?}");
        assert_eq!(
            idle.reauth_overhead, busy.reauth_overhead,
            "idling after the crawl"
        );
        assert!((parallel.reauth_overhead - busy.reauth_overhead).abs() < 1e-9);
        assert_eq!((parallel.workers, parallel.relogins), (4, 0));
        assert_eq!(
            parallel.session_yield, 200.0,
            "four first logins are not re-logins"
        );
        assert_eq!(busy.session_yield, 50.0);
    }

    /// A session that sends requests at `before` (ms), is revoked at 900 ms,
    /// then sends requests at `after`; graded.
    fn revoked_between(before: &[u64], after: &[u64]) -> (Metrics, Vec<Criterion>) {
        let engine = Engine::new(EngineConfig::default()).expect("engine");
        let sid = SessionId::from_u128(9);
        let mut facts = FactsBuilder::new(DEFAULT_IN_FLIGHT_GRACE);
        let mut push = |d: Decision| facts.add_decision(&d).expect("a full context");
        push(engine.login(sid, "alice", ctx("127.0.1.9"), vec![], at(0)));
        for ms in before {
            push(engine.decide(sid, ctx("127.0.1.9"), at(*ms)));
            push(engine.release(sid, at(*ms)));
        }
        push(engine.revoke(sid, Reason::SessionRevoked, at(900)));
        for ms in after {
            push(engine.decide(sid, ctx("127.0.1.9"), at(*ms)));
        }
        let none = HashMap::new();
        grade(
            &run_of(&facts.finish(), &none, 2_000),
            &GradeConfig::default(),
        )
    }

    #[test]
    fn a_concurrent_clients_requests_already_in_flight_at_a_death_are_not_zombies() {
        // Bursts of three: after the revealing request, two more were on
        // their way; a third and a late one were sent after it.
        let (m, criteria) = revoked_between(&[100, 110, 120], &[1_000, 1_005, 1_010, 1_015, 1_500]);
        assert_eq!((m.in_flight_requests, m.zombie_requests), (2, 2));
        assert!((m.time_to_detect_seconds - 0.5).abs() < 1e-9);
        let ttd = criteria
            .iter()
            .find(|c| c.name == "time_to_detect")
            .expect("ttd");
        assert_eq!(
            (ttd.value.as_str(), ttd.threshold.as_str()),
            ("0.500s", "≤ 0.000s")
        );
    }

    #[test]
    fn fast_retries_of_a_sequential_client_are_zombies_however_soon() {
        let (m, _) = revoked_between(&[100, 400, 700], &[1_000, 1_002, 1_004, 1_006]);
        assert_eq!((m.in_flight_requests, m.zombie_requests), (0, 3));
    }

    #[test]
    fn a_banned_account_is_listed_once_with_its_first_ban() {
        let mut rules = EngineConfig::default();
        rules.asn_drift.action = Action::Ban;
        let engine = Engine::new(rules).expect("engine");
        let mut facts = FactsBuilder::new(DEFAULT_IN_FLIGHT_GRACE);
        let mut push = |d: Decision| facts.add_decision(&d).expect("a full context");
        for n in 1..=3 {
            let sid = SessionId::from_u128(n);
            push(engine.login(sid, "alice", ctx("127.0.1.9"), vec![], at(0)));
        }
        for n in 1..=3 {
            let sid = SessionId::from_u128(n);
            push(engine.decide(sid, ctx("127.0.2.9"), at(100 * n as u64)));
        }
        let none = HashMap::new();
        let facts = facts.finish();
        let (m, criteria) = grade(&run_of(&facts, &none, 1_000), &GradeConfig::default());
        assert_eq!(m.accounts_banned, ["alice"]);
        let bans = criteria
            .iter()
            .find(|c| c.name == "accounts_banned")
            .expect("bans");
        assert_eq!(bans.details.len(), 1, "{:?}", bans.details);
        assert!(bans.details[0].contains("ASN_DRIFT"), "{:?}", bans.details);
    }

    #[test]
    fn a_reason_listed_twice_as_expected_is_excused_once() {
        // Two sessions die of ASN_DRIFT, each moved to another network.
        let engine = Engine::new(EngineConfig::default()).expect("engine");
        let mut facts = FactsBuilder::new(DEFAULT_IN_FLIGHT_GRACE);
        let mut push = |d: Decision| facts.add_decision(&d).expect("a full context");
        for (n, to) in [(1, "127.0.2.9"), (2, "127.0.3.9")] {
            let sid = SessionId::from_u128(n);
            push(engine.login(sid, "alice", ctx("127.0.1.9"), vec![], at(0)));
            push(engine.decide(sid, ctx(to), at(100)));
        }
        let facts = facts.finish();
        let none = HashMap::new();
        let mortality = |expected: Vec<Reason>| {
            let config = GradeConfig {
                expected_invalidations: expected,
                ..GradeConfig::default()
            };
            grade(&run_of(&facts, &none, 1_000), &config).0
        };
        let once = mortality(vec![Reason::AsnDrift]);
        let twice = mortality(vec![Reason::AsnDrift, Reason::AsnDrift]);
        assert_eq!(once.expected_invalidations, 2, "{once:?}");
        assert_eq!(twice.expected_invalidations, once.expected_invalidations);
        assert_eq!(twice.mortality, once.mortality);
    }

    #[test]
    fn thresholds_are_validated() {
        let mut g = GradeConfig::default();
        g.validate("grade").expect("defaults are valid");
        g.max_mortality = 2.0;
        assert!(g.validate("grade").is_err());
        g.max_mortality = 0.1;
        g.expected_invalidations = vec![Reason::IdleTimeout];
        let err = g.validate("grade").expect_err("not a security reason");
        assert!(err.to_string().contains("expected_invalidations"), "{err}");
        g.expected_invalidations = vec![Reason::AsnDrift];
        g.max_peak_rate = Some(-1.0);
        let err = g.validate("grade").expect_err("negative");
        assert!(err.to_string().contains("grade.max_peak_rate"), "{err}");
    }
}
