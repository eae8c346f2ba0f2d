//! The built-in reference client against a live target and proxy pool: the good client reads
//! every record without being refused, and each `--bug` gets caught.

#![cfg(feature = "cli")]

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use sessionrange::TargetServer;
use sessionrange::client::{self, Bug, ClientArgs, ClientEnv, ClientSummary};
use sessionrange::pool::{PoolConfig, ProxyPool};
use sessionrange::site::config::AccountSpec;
use sessionrange::site::{TargetConfig, TargetState};
use sessionrange::timeline::TimelineAction;
use sessionrange::{Action, Decision, DecisionKind, Reason, SessionId, Verdict};

/// Two static exits on different networks: Comcast and Amazon.
const TWO_EXITS: &str = r#"
    seed = 7
    user = "scraper"
    password = "hunter2"
    [[exits]]
    name = "home"
    ip = "127.0.1.20"
    [[exits]]
    name = "cloud"
    ip = "127.0.2.20"
"#;

/// One static exit.
const ONE_EXIT: &str = r#"
    seed = 7
    user = "scraper"
    password = "hunter2"
    [[exits]]
    name = "home"
    ip = "127.0.1.20"
"#;

/// A gateway only, with long sticky sessions.
const GATEWAY: &str = r#"
    seed = 3
    user = "scraper"
    password = "hunter2"
    [gateway]
    ranges = ["127.0.1.30/32", "127.0.2.30/32"]
    sticky_ttl = "10m"
    idle_ttl = "2m"
"#;

/// Three exits: one dies, one gets banned, one holds.
const FAULTY_EXITS: &str = r#"
    seed = 9
    user = "scraper"
    password = "hunter2"
    [[exits]]
    name = "home"
    ip = "127.0.1.20"
    [[exits.faults]]
    kind = "dies"
    after_requests = 6
    [[exits]]
    name = "cloud"
    ip = "127.0.2.20"
    [[exits.faults]]
    kind = "banned"
    after_requests = 8
    [[exits]]
    name = "mobile"
    ip = "127.0.3.20"
"#;

/// A target, a pool in front of it, and a scratch directory for the
/// accounts and output files.
struct Range {
    target: TargetServer,
    pool: ProxyPool,
    dir: PathBuf,
}

impl Range {
    async fn start(name: &str, cfg: TargetConfig, pool: &str) -> Self {
        let dir =
            std::env::temp_dir().join(format!("sessionrange-client-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a scratch directory");
        let accounts = serde_json::to_string(&cfg.accounts).expect("accounts serialize");
        std::fs::write(dir.join("accounts.json"), accounts).expect("accounts written");
        let target = TargetServer::builder()
            .config(cfg)
            .start()
            .await
            .expect("the target starts");
        let pool_cfg: PoolConfig = toml::from_str(pool).expect("a valid pool");
        let pool = ProxyPool::start(&pool_cfg, target.upstream())
            .await
            .expect("the pool starts");
        Self { target, pool, dir }
    }

    /// The environment the runner would give: every static exit and the
    /// gateway, if the pool has them.
    fn env(&self) -> ClientEnv {
        let base = self.target.url("");
        assert!(!base.ends_with('/'), "{base}");
        ClientEnv {
            target: base,
            proxies: self.pool.exits().iter().map(|e| e.url.clone()).collect(),
            gateway: self.pool.gateway().map(|g| g.url.clone()),
            accounts: self.dir.join("accounts.json"),
            output: self.dir.join("out.jsonl"),
            scenario: "test".into(),
            deadline: unix_now() + 60,
            ca_cert: None,
        }
    }

    async fn run(&self, args: ClientArgs) -> ClientSummary {
        client::run(self.env(), args)
            .await
            .expect("the client runs")
    }

    fn state(&self) -> Arc<TargetState> {
        Arc::clone(self.target.state())
    }

    /// The output file's records.
    fn records(&self) -> Vec<Value> {
        let text = std::fs::read_to_string(self.dir.join("out.jsonl")).expect("an output file");
        text.lines()
            .map(|l| serde_json::from_str(l).expect("one JSON record a line"))
            .collect()
    }

    /// Fails unless the output holds every genuine record exactly once.
    fn assert_every_record_once(&self) {
        let dataset = &self.target.state().dataset;
        let records = self.records();
        let mut ids: Vec<u64> = records
            .iter()
            .map(|r| r["id"].as_u64().expect("an id"))
            .collect();
        ids.sort_unstable();
        let expected: Vec<u64> = (1..=u64::from(dataset.len())).collect();
        assert_eq!(ids, expected, "every id exactly once");
        for r in &records {
            let id = r["id"].as_u64().expect("an id");
            let truth = serde_json::to_value(dataset.record(id)).expect("serializes");
            assert_eq!(r, &truth, "record {id} as the API served it");
        }
    }

    fn events(&self) -> Vec<Decision> {
        self.target.events()
    }

    /// Every verdict other than allow.
    fn refusals(&self) -> Vec<Verdict> {
        self.events()
            .into_iter()
            .map(|d| d.verdict)
            .filter(|v| *v != Verdict::Allow)
            .collect()
    }

    /// Whether some session died (revoked or banned) for `reason`.
    fn killed_for(&self, reason: Reason) -> bool {
        self.refusals()
            .iter()
            .any(|v| matches!(v, Verdict::Revoke(r) | Verdict::Ban(r) if *r == reason))
    }
}

impl Drop for Range {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_secs()
}

fn config(size: u32, page_size: u32) -> TargetConfig {
    let mut cfg = TargetConfig::default();
    cfg.dataset.size = size;
    cfg.dataset.page_size = page_size;
    cfg
}

/// Rules strict enough that only a careful client gets through: regular
/// gaps, a burst, a swapped header or a missing companion cookie revoke.
fn strict(size: u32, page_size: u32) -> TargetConfig {
    let mut cfg = config(size, page_size);
    let r = &mut cfg.rules;
    r.robotic_cadence.action = Action::Revoke;
    r.session_velocity.action = Action::Revoke;
    r.session_velocity.rate = 8.0;
    r.session_velocity.burst = 5;
    r.fingerprint.header_order = Action::Revoke;
    r.fingerprint.http = Action::Revoke;
    r.companion_cookies.missing = Action::Revoke;
    r.companion_cookies.altered = Action::Revoke;
    cfg
}

/// Request decisions sent with a session after one of its requests was
/// already refused as dead: requests a client should never make.
fn zombies(events: &[Decision]) -> usize {
    let mut dead: HashSet<SessionId> = HashSet::new();
    let mut count = 0;
    for d in events.iter().filter(|d| d.kind == DecisionKind::Request) {
        if dead.contains(&d.session) {
            count += 1;
        } else if d.verdict.is_terminal() {
            dead.insert(d.session);
        }
    }
    count
}

/// The most request decisions any one session had inside one second.
fn peak_rate(events: &[Decision]) -> usize {
    let mut times: HashMap<SessionId, Vec<u64>> = HashMap::new();
    for d in events.iter().filter(|d| d.kind == DecisionKind::Request) {
        times.entry(d.session).or_default().push(d.at.as_millis());
    }
    times
        .values()
        .map(|t| {
            (0..t.len())
                .map(|i| t[i..].iter().take_while(|x| **x < t[i] + 1000).count())
                .max()
                .unwrap_or(0)
        })
        .max()
        .unwrap_or(0)
}

/// Fires a timeline action once the target has decided `requests` requests,
/// the way the runner fires a scenario's `at_request` events.
fn fire_after(state: Arc<TargetState>, requests: usize, action: TimelineAction) {
    tokio::spawn(async move {
        loop {
            let decided = state
                .trace
                .decisions()
                .iter()
                .filter(|d| d.kind == DecisionKind::Request)
                .count();
            if decided >= requests {
                let applied = state.apply(action, None, state.clock.now()).await;
                applied.expect("an in-memory target applies it");
                return;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    });
}

fn quiet() -> ClientArgs {
    ClientArgs {
        quiet: std::env::var_os("CLIENT_LOG").is_none(),
        ..ClientArgs::default()
    }
}

fn bug(bug: Bug) -> ClientArgs {
    ClientArgs {
        bug: Some(bug),
        ..quiet()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn good_client_reads_every_record_once_through_two_exits_and_is_never_refused() {
    let range = Range::start("good", strict(100, 5), TWO_EXITS).await;
    let summary = range.run(quiet()).await;
    assert!(summary.complete, "{summary:#?}");
    assert_eq!(summary.records_written, 100);
    assert_eq!(summary.pages_total, Some(20));
    range.assert_every_record_once();
    assert_eq!(range.refusals(), vec![], "{summary:#?}");
    assert_eq!(summary.invalidation_count(), 0);
    assert_eq!(
        (summary.logins, summary.auth.as_deref()),
        (2, Some("cookie"))
    );
    let events = range.events();
    let births: HashSet<String> = events
        .iter()
        .filter(|d| matches!(d.kind, DecisionKind::Login { .. }))
        .filter_map(|d| d.context.as_ref()?.ip.map(|ip| ip.to_string()))
        .collect();
    let both = HashSet::from(["127.0.1.20".to_owned(), "127.0.2.20".to_owned()]);
    assert_eq!(births, both, "one session on each exit");
    assert!(
        peak_rate(&events) <= 7,
        "peak {} per second",
        peak_rate(&events)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn good_client_crawls_the_html_catalog_where_the_site_has_no_api() {
    let mut cfg = strict(60, 5);
    cfg.surfaces = vec![sessionrange::site::config::Surface::Html];
    cfg.direct = Some(sessionrange::site::config::DirectAccess::Refuse);
    let range = Range::start("html", cfg, TWO_EXITS).await;
    let summary = range.run(quiet()).await;
    assert!(summary.complete, "{summary:#?}");
    assert_eq!(summary.records_written, 60);
    range.assert_every_record_once();
    assert_eq!(range.refusals(), vec![], "{summary:#?}");
    assert_eq!(summary.auth.as_deref(), Some("cookie"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn good_client_uses_bearer_tokens_when_cookies_are_refused_and_refreshes_once_at_a_time() {
    let mut cfg = config(60, 3);
    cfg.auth = sessionrange::site::config::AuthMode::Jwt;
    cfg.tokens.access_ttl = Duration::from_secs(2);
    cfg.tokens.skew = Duration::ZERO;
    cfg.login.pow_bits = 8;
    cfg.login.totp = true;
    cfg.accounts = vec![AccountSpec {
        username: "carol".into(),
        password: "christmas".into(),
        totp_secret: Some("JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP".into()),
    }];
    let range = Range::start("jwt", cfg, GATEWAY).await;
    let summary = range.run(quiet()).await;
    assert!(summary.complete, "{summary:#?}");
    range.assert_every_record_once();
    assert_eq!(summary.auth.as_deref(), Some("jwt"));
    assert!(summary.refreshes >= 2, "{summary:#?}");
    // The form login, refused for its auth mode, then one API login.
    assert_eq!(summary.login_failures, 1, "{summary:#?}");
    assert_eq!(
        range.refusals(),
        vec![],
        "no refresh token reused, nothing expired"
    );
    assert_eq!(summary.logins, 2, "both count as logins: {summary:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn good_client_moves_off_a_dead_exit_and_a_banned_one() {
    let range = Range::start("faulty", config(100, 5), FAULTY_EXITS).await;
    let summary = range.run(quiet()).await;
    assert!(summary.complete, "{summary:#?}");
    range.assert_every_record_once();
    assert!(summary.exit_failures >= 1, "{summary:#?}");
    assert!(summary.exit_bans >= 1, "{summary:#?}");
    assert_eq!(summary.dead_exits.len(), 2, "{summary:#?}");
    assert_eq!(range.refusals(), vec![], "no session ever changed exit");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn good_client_logs_in_again_when_sessions_expire_and_never_reuses_a_dead_one() {
    let mut cfg = config(60, 5);
    cfg.rules.lifetime.max_uses = 4;
    let range = Range::start("expiry", cfg, ONE_EXIT).await;
    let summary = range.run(quiet()).await;
    assert!(summary.complete, "{summary:#?}");
    range.assert_every_record_once();
    assert!(summary.invalidations["expired"] >= 1, "{summary:#?}");
    assert_eq!(summary.security_invalidations, 0);
    assert!(
        summary.rested_accounts.is_empty(),
        "expiry is no invalidation"
    );
    assert_eq!(zombies(&range.events()), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn good_client_recognises_every_refusal_style_and_resumes_at_the_failed_page() {
    let styles = [
        ("rfc6750", "rfc6750"),
        ("json-401", "expired"), // an operator's revocation is no security matter
        ("block-403", "block-403"),
        ("redirect-login", "redirect-login"),
        ("soft-login", "soft-login"),
    ];
    for (style, counted) in styles {
        let mut cfg = config(60, 5);
        cfg.responses.security = serde_json::from_value(Value::from(style)).expect("a style");
        let range = Range::start(&format!("style-{style}"), cfg, ONE_EXIT).await;
        fire_after(range.state(), 4, TimelineAction::RevokeAll);
        let summary = range.run(quiet()).await;
        assert!(summary.complete, "{style}: {summary:#?}");
        range.assert_every_record_once();
        assert!(
            summary.invalidations.get(counted).copied().unwrap_or(0) >= 1,
            "{style}: {summary:#?}"
        );
        assert_eq!(zombies(&range.events()), 0, "{style}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn good_client_rests_accounts_before_they_are_banned_and_stops_cleanly() {
    let mut cfg = config(200, 10);
    cfg.rules.session_velocity.action = Action::Revoke;
    cfg.rules.session_velocity.rate = 1.0;
    cfg.rules.session_velocity.burst = 2;
    let range = Range::start("rest", cfg, TWO_EXITS).await;
    let summary = range.run(quiet()).await;
    assert!(
        !range
            .refusals()
            .iter()
            .any(|v| matches!(v, Verdict::Ban(_)))
    );
    assert!(summary.banned_accounts.is_empty(), "{summary:#?}");
    assert_eq!(summary.rested_accounts.len(), 2, "{summary:#?}");
    assert!(
        !summary.complete && summary.gave_up.is_some(),
        "{summary:#?}"
    );
    assert_eq!(zombies(&range.events()), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_burns_accounts_gets_them_banned() {
    let mut cfg = config(200, 10);
    cfg.rules.session_velocity.action = Action::Revoke;
    cfg.rules.session_velocity.rate = 1.0;
    cfg.rules.session_velocity.burst = 2;
    let range = Range::start("burn", cfg, TWO_EXITS).await;
    let summary = range.run(bug(Bug::RetryBurnsAccounts)).await;
    assert!(
        range
            .refusals()
            .iter()
            .any(|v| matches!(v, Verdict::Ban(_))),
        "{summary:#?}"
    );
    assert!(!summary.banned_accounts.is_empty(), "{summary:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_pacing_is_revoked_for_its_rate() {
    let range = Range::start("no-pacing", strict(100, 5), TWO_EXITS).await;
    let summary = range.run(bug(Bug::NoPacing)).await;
    assert!(
        range.killed_for(Reason::VelocityExceeded) || range.killed_for(Reason::RoboticCadence),
        "{:?} {summary:#?}",
        range.refusals()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotating_the_exit_per_request_dies_of_asn_drift() {
    let range = Range::start("rotate", config(100, 20), TWO_EXITS).await;
    let summary = range.run(bug(Bug::RotateExitPerRequest)).await;
    assert!(range.killed_for(Reason::AsnDrift), "{summary:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sharing_a_session_across_exits_dies_of_asn_drift() {
    let range = Range::start("share", config(100, 20), TWO_EXITS).await;
    let summary = range.run(bug(Bug::ShareSessionAcrossExits)).await;
    assert!(range.killed_for(Reason::AsnDrift), "{summary:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stripping_companion_cookies_is_challenged() {
    let range = Range::start("strip", config(100, 20), ONE_EXIT).await;
    let args = ClientArgs {
        max_account_invalidations: 1,
        ..bug(Bug::StripCompanionCookies)
    };
    let summary = range.run(args).await;
    let challenged = range
        .refusals()
        .contains(&Verdict::Challenge(Reason::CompanionCookieMissing));
    assert!(challenged, "{summary:#?}");
    assert!(
        summary.challenges >= 1 && summary.records_written == 0,
        "{summary:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keeping_a_dead_session_sends_zombie_requests() {
    let mut cfg = config(60, 5);
    cfg.rules.lifetime.max_uses = 4;
    let range = Range::start("zombie", cfg, ONE_EXIT).await;
    let summary = range.run(bug(Bug::KeepUsingDeadSession)).await;
    assert!(zombies(&range.events()) >= 3, "{summary:#?}");
    assert!(summary.dead_session_requests >= 3);
    let on_dead = range.events().iter().filter(|d| d.on_dead_session).count();
    assert!(on_dead >= 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ignoring_a_soft_logout_loses_records() {
    let mut cfg = config(60, 5);
    cfg.responses.security = serde_json::from_value(Value::from("soft-login")).expect("a style");
    let range = Range::start("soft", cfg, ONE_EXIT).await;
    fire_after(range.state(), 4, TimelineAction::RevokeAll);
    let summary = range.run(bug(Bug::IgnoreSoftLogout)).await;
    assert!(summary.records_written < 60, "{summary:#?}");
    assert!(
        !summary.invalidations.contains_key("soft-login"),
        "never noticed: {summary:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_reauth_stops_at_the_first_refused_session() {
    let range = Range::start("no-reauth", config(60, 5), ONE_EXIT).await;
    fire_after(range.state(), 4, TimelineAction::RevokeAll);
    let summary = range.run(bug(Bug::NoReauth)).await;
    assert!(
        !summary.complete && summary.records_written < 60,
        "{summary:#?}"
    );
    assert!(summary.gave_up.is_some());
    assert!(summary.logins <= 2, "{summary:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refreshing_in_parallel_reuses_a_rotated_refresh_token() {
    let mut cfg = config(60, 3);
    cfg.auth = sessionrange::site::config::AuthMode::Jwt;
    cfg.tokens.access_ttl = Duration::from_secs(2);
    cfg.tokens.skew = Duration::ZERO;
    let range = Range::start("parallel-refresh", cfg, ONE_EXIT).await;
    let summary = range.run(bug(Bug::ParallelRefresh)).await;
    assert!(range.killed_for(Reason::RefreshTokenReuse), "{summary:#?}");
    assert!(
        summary.invalidations.contains_key("refresh-reuse"),
        "{summary:#?}"
    );
}
