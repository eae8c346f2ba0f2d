//! Two instances on one real Redis: any instance serves any request, a
//! revocation on one is seen on the other, a refresh race is decided once,
//! a restart keeps sessions, and a Redis outage is a `503`, never a guess.

use std::sync::Arc;

use futures_util::future::join_all;
use reqwest::StatusCode;
use serde_json::{Value, json};
use sessionrange::Action;
use sessionrange::TargetServer;
use sessionrange::engine::DecisionKind;
use sessionrange::site::TargetConfig;

use crate::helpers::*;
use crate::redis::Redis;

/// The default target on the shared store at `url`, behind the test
/// client's trusted hop so that `X-Forwarded-For` moves it.
fn on_store(url: &str) -> TargetConfig {
    TargetConfig {
        store: Some(url.to_owned()),
        ..behind_proxy()
    }
}

/// One instance on `url`, on the system clock: two instances share time.
async fn instance(url: &str) -> TargetServer {
    instance_with(on_store(url)).await
}

async fn instance_with(cfg: TargetConfig) -> TargetServer {
    TargetServer::builder()
        .config(cfg)
        .start()
        .await
        .expect("an instance starts on the shared store")
}

/// The verdict of the last request an instance judged: releases, which
/// a shared store traces from a task of their own, come after it.
fn last_request(target: &TargetServer) -> sessionrange::Decision {
    let events = target.events();
    let request = events
        .into_iter()
        .rev()
        .find(|d| d.kind == DecisionKind::Request);
    request.expect("a request was judged")
}

/// Every trace line of type `kind` of both instances.
fn lines_of(targets: &[&TargetServer], kind: &str) -> Vec<Value> {
    targets.iter().flat_map(|t| trace_lines(t, kind)).collect()
}

#[tokio::test]
async fn a_session_born_on_one_instance_is_served_judged_and_revoked_on_the_other() {
    let Some(redis) = Redis::start("two") else {
        return;
    };
    let (a, b) = (instance(&redis.url()).await, instance(&redis.url()).await);
    let on_a = Browser::via(&a, "127.0.1.10");
    on_a.log_in("alice", "wonderland").await;
    let on_b = on_a.on(&b);
    let page_a = on_a.read_catalog(1).await;
    assert_eq!(
        on_b.read_catalog(1).await,
        page_a,
        "both serve the same records"
    );

    // Drift seen by B is a revocation A knows at once. B's refusal clears
    // the jar's cookie: the client sends it to A again as it was.
    let sid = on_a.cookie("sr_session").expect("a session cookie");
    let mut moved = on_a.on(&b);
    moved.move_to("127.0.2.10");
    let res = moved.fetch("/catalog?page=2").await;
    assert_ne!(
        res.status(),
        StatusCode::OK,
        "B revokes the drifted session"
    );
    let on_b_verdict = last_request(&b).verdict;
    assert!(on_b_verdict.to_string().contains("DRIFT"), "{on_b_verdict}");
    on_a.set_cookie("sr_session", &sid);
    let res = on_a.fetch("/catalog?page=2").await;
    assert_ne!(res.status(), StatusCode::OK, "A refuses what B revoked");
    assert_eq!(
        last_request(&a).verdict,
        on_b_verdict,
        "A repeats B's verdict"
    );

    // An operator's revoke on A ends a new session on B.
    let again = Browser::via(&b, "127.0.1.10");
    again.log_in("alice", "wonderland").await;
    let res = Admin::new(&a)
        .post("/accounts/alice/revoke")
        .send()
        .await
        .expect("answers");
    assert_eq!(res.status(), StatusCode::OK);
    let res = again.fetch("/catalog?page=1").await;
    assert_ne!(res.status(), StatusCode::OK, "B refuses what A revoked");
    assert_eq!(
        last_request(&b).verdict.to_string(),
        "revoke(SESSION_REVOKED)"
    );
}

#[tokio::test]
async fn a_refresh_token_raced_on_two_instances_rotates_once_and_its_reuse_is_found_once() {
    let Some(redis) = Redis::start("refresh") else {
        return;
    };
    // No rate limit, so that every racer reaches the refresh-token store,
    // and no ban for the reuses, so that every round logs in.
    let mut cfg = on_store(&redis.url());
    let rules = &mut cfg.rules;
    rules.session_velocity.action = Action::Off;
    rules.account_velocity.action = Action::Off;
    rules.login_velocity_account.action = Action::Off;
    rules.login_velocity_ip.action = Action::Off;
    rules.escalation.action = Action::Off;
    let (a, b) = (instance_with(cfg.clone()).await, instance_with(cfg).await);
    for round in 0..8 {
        let tokens = Api::new(&a).login("alice", "wonderland").await;
        let racers = (0..8).map(|i| {
            let api = Api::new(if i % 2 == 0 { &a } else { &b });
            let token = tokens.refresh.clone();
            async move { api.refresh(&token).await.status() }
        });
        let statuses = join_all(racers).await;
        let ok = statuses.iter().filter(|s| **s == StatusCode::OK).count();
        assert_eq!(
            ok, 1,
            "round {round}: one rotation of eight racers: {statuses:?}"
        );
    }
    let outcomes: Vec<String> = lines_of(&[&a, &b], "token_refresh")
        .iter()
        .map(|l| l["outcome"].as_str().unwrap_or_default().to_owned())
        .collect();
    let count = |o: &str| outcomes.iter().filter(|x| *x == o).count();
    assert_eq!(count("rotated"), 8, "{outcomes:?}");
    assert_eq!(count("reused"), 8, "one reuse per family: {outcomes:?}");
    let revokes = lines_of(&[&a, &b], "decision");
    let reuse = revokes
        .iter()
        .filter(|d| d["cause"] == "REFRESH_TOKEN_REUSE")
        .count();
    assert_eq!(reuse, 8, "each family's session revoked once");
}

/// The session velocity rule allows a burst of 20 and 10 a second after.
/// Sixty requests at once, half on each instance, get 20 and a few more:
/// two instances that lost each other's counts would serve 40.
#[tokio::test]
async fn concurrent_requests_on_two_instances_lose_no_velocity_count() {
    let Some(redis) = Redis::start("counts") else {
        return;
    };
    let (a, b) = (instance(&redis.url()).await, instance(&redis.url()).await);
    let browser = Browser::via(&a, "127.0.1.10");
    browser.log_in("alice", "wonderland").await;
    let (on_a, on_b) = (Arc::new(browser.on(&a)), Arc::new(browser.on(&b)));
    let started = std::time::Instant::now();
    let reads = (0..60).map(|i| {
        let who = if i % 2 == 0 {
            Arc::clone(&on_a)
        } else {
            Arc::clone(&on_b)
        };
        async move { who.fetch("/catalog?page=1").await.status() }
    });
    let statuses = join_all(reads).await;
    let refill = (started.elapsed().as_secs_f64() * 10.0).ceil() as usize;
    let served = statuses.iter().filter(|s| **s == StatusCode::OK).count();
    assert!(
        served >= 20 && served <= 20 + refill,
        "{served} served, refill {refill}"
    );
    let sid = browser.cookie("sr_session").expect("a session");
    let session = Admin::new(&b).json(&format!("/sessions/{sid}")).await;
    assert_eq!(
        session["uses"], served,
        "every served request counted once: {session}"
    );
    let decided = lines_of(&[&a, &b], "decision");
    let challenged = decided
        .iter()
        .filter(|d| d["reason"] == "VELOCITY_EXCEEDED")
        .count();
    assert_eq!(served + challenged, 60, "every request judged once");
}

#[tokio::test]
async fn a_restarted_instance_keeps_every_session_and_token() {
    let Some(redis) = Redis::start("restart") else {
        return;
    };
    let first = instance(&redis.url()).await;
    let browser = Browser::via(&first, "127.0.1.10");
    browser.log_in("alice", "wonderland").await;
    let tokens = Api::via(&first, "127.0.1.11").login("bob", "builder").await;
    drop(first);
    let second = instance(&redis.url()).await;
    browser.on(&second).read_catalog(1).await;
    let api = Api::via(&second, "127.0.1.11");
    let res = api.get_with("/api/v1/items?page=1", &tokens.access).await;
    assert_eq!(
        res.status(),
        StatusCode::OK,
        "the access token still verifies"
    );
    let res = api.refresh(&tokens.refresh).await;
    assert_eq!(res.status(), StatusCode::OK, "the refresh family lives on");
}

#[tokio::test]
async fn a_redis_outage_is_a_503_that_judges_nothing_and_ends_when_redis_returns() {
    let Some(mut redis) = Redis::start("outage") else {
        return;
    };
    let target = instance(&redis.url()).await;
    let browser = Browser::via(&target, "127.0.1.10");
    browser.log_in("alice", "wonderland").await;
    redis.stop();
    let res = browser.fetch("/catalog?page=1").await;
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(header(&res, "retry-after"), "1");
    let body = res.text().await.expect("a body");
    assert!(body.contains("STORE_UNAVAILABLE"), "{body}");
    let refused = trace_lines(&target, "refused");
    assert_eq!(
        refused.last().expect("traced")["reason"],
        "STORE_UNAVAILABLE"
    );
    let api = Api::via(&target, "127.0.1.11");
    let res = api.login_raw("bob", "builder").await;
    assert_eq!(
        res.status(),
        StatusCode::SERVICE_UNAVAILABLE,
        "no login either"
    );
    let res = api.refresh("a-token").await;
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE, "no refresh");
    let refused = trace_lines(&target, "refused");
    let routes: Vec<&Value> = refused.iter().map(|l| &l["route"]).collect();
    assert!(
        routes.contains(&&Value::from("/api/token/refresh")),
        "traced: {routes:?}"
    );
    // The counts still answer, the outage's among them.
    let metrics = Admin::new(&target)
        .get("/metrics")
        .send()
        .await
        .expect("answers");
    assert_eq!(metrics.status(), StatusCode::OK);
    let text = metrics.text().await.expect("text");
    assert!(
        text.contains("sessionrange_store_unavailable_total 3"),
        "{text}"
    );
    redis.resume();
    let mut back = None;
    for _ in 0..100 {
        let res = browser.fetch("/catalog?page=1").await;
        if res.status() != StatusCode::SERVICE_UNAVAILABLE {
            back = Some(res.status());
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(
        back,
        Some(StatusCode::OK),
        "the session outlived the outage"
    );
}

#[tokio::test]
async fn a_run_with_two_instances_spreads_one_clients_requests_over_both() {
    let Some(redis) = Redis::start("spread") else {
        return;
    };
    let mut scenario = sessionrange::Scenario::named("baseline").expect("bundled");
    scenario.target.store = Some(redis.url());
    scenario.run.instances = 2;
    scenario.validate().expect("a valid scenario");
    let range = sessionrange::Range::builder(&scenario)
        .store_namespace("sr:spread-test:")
        .start()
        .await
        .expect("the range starts");
    let home = range.pool().urls()[0].url.clone();
    let proxy = reqwest::Proxy::all(&home).expect("a proxy URL");
    // One kept-alive connection to the proxy: the pool deals each
    // forwarded request to the next instance.
    let client = reqwest::Client::builder()
        .proxy(proxy)
        .build()
        .expect("a client");
    let login = serde_json::json!({"username": "alice", "password": "wonderland"});
    let res = client
        .post(range.url("/api/login"))
        .json(&login)
        .send()
        .await;
    let tokens = json_body(res.expect("an answer"), StatusCode::OK).await;
    let access = tokens["access_token"].as_str().expect("a token");
    for page in 1..=10 {
        let url = range.url(&format!("/api/v1/items?page={page}"));
        let res = client
            .get(url)
            .bearer_auth(access)
            .send()
            .await
            .expect("an answer");
        assert_eq!(res.status(), StatusCode::OK, "page {page}");
    }
    let judged: Vec<u64> = range.instances().iter().map(|s| s.judged_here()).collect();
    assert_eq!(judged.len(), 2);
    assert!(
        judged.iter().all(|n| *n > 0),
        "each instance judged some: {judged:?}"
    );
    assert_eq!(judged.iter().sum::<u64>(), 10);
    let requests = range
        .events()
        .into_iter()
        .filter(|d| d.kind == DecisionKind::Request);
    let mut seqs: Vec<u64> = requests.map(|d| d.seq).collect();
    let all = seqs.len();
    seqs.sort_unstable();
    seqs.dedup();
    assert_eq!(
        (seqs.len(), all),
        (10, 10),
        "one trace, one sequence: {seqs:?}"
    );
}

/// Many requests at once on one session of one instance: they wait their
/// turn for the record in the instance rather than race for it in Redis,
/// so none is refused for contention and every one is counted.
#[tokio::test]
async fn a_burst_on_one_session_of_one_instance_is_served_whole() {
    let Some(redis) = Redis::start("burst") else {
        return;
    };
    let mut cfg = on_store(&redis.url());
    cfg.rules.session_velocity.action = Action::Off;
    cfg.rules.account_velocity.action = Action::Off;
    let (a, b) = (instance_with(cfg.clone()).await, instance_with(cfg).await);
    let browser = Browser::via(&a, "127.0.1.10");
    browser.log_in("alice", "wonderland").await;
    let (on_a, on_b) = (Arc::new(browser.on(&a)), Arc::new(browser.on(&b)));
    let reads = (0..96).map(|i| {
        let who = if i % 3 == 0 {
            Arc::clone(&on_b)
        } else {
            Arc::clone(&on_a)
        };
        async move { who.fetch("/catalog?page=1").await.status() }
    });
    let statuses = join_all(reads).await;
    let served = statuses.iter().filter(|s| **s == StatusCode::OK).count();
    assert_eq!(served, 96, "{statuses:?}");
    let sid = browser.cookie("sr_session").expect("a session");
    let session = Admin::new(&a).json(&format!("/sessions/{sid}")).await;
    assert_eq!(session["uses"], 96, "{session}");
}

/// A signing key rotated on one instance is the key every instance signs
/// and checks with from then on: tokens from before are refused on both,
/// tokens from after are good on both.
#[tokio::test]
async fn a_signing_key_rotated_on_one_instance_signs_and_verifies_on_every_instance() {
    let Some(redis) = Redis::start("rotate") else {
        return;
    };
    let (a, b) = (instance(&redis.url()).await, instance(&redis.url()).await);
    let (on_a, on_b) = (Api::via(&a, "127.0.1.10"), Api::via(&b, "127.0.1.10"));
    let before = on_b.login("alice", "wonderland").await;
    let page = "/api/v1/items?page=1";
    assert_eq!(
        on_a.get_with(page, &before.access).await.status(),
        StatusCode::OK
    );
    let rotate = sessionrange::timeline::TimelineAction::RotateSigningKey;
    let now = a.state().clock.now();
    a.state().apply(rotate, None, now).await.expect("rotated");
    let after = on_b.login("bob", "builder").await;
    for api in [&on_a, &on_b] {
        assert_eq!(
            api.get_with(page, &after.access).await.status(),
            StatusCode::OK
        );
        let old = api.get_with(page, &before.access).await.status();
        assert_eq!(
            old,
            StatusCode::UNAUTHORIZED,
            "the old key is gone everywhere"
        );
    }
}

/// Redis restarted empty (no persistence) lost the run's keys with the
/// sessions: the instances offer theirs again, so logins go on and their
/// tokens are good on every instance.
#[tokio::test]
async fn a_store_that_lost_its_data_gets_the_run_keys_back_from_the_instances() {
    let Some(redis) = Redis::start("flushed") else {
        return;
    };
    let (a, b) = (instance(&redis.url()).await, instance(&redis.url()).await);
    let cli = |args: &[&str]| redis_cli(&redis, args);
    assert_eq!(cli(&["FLUSHDB"]), "OK");
    let tokens = Api::via(&a, "127.0.1.10")
        .login("alice", "wonderland")
        .await;
    let res = Api::via(&b, "127.0.1.10")
        .get_with("/api/v1/items?page=1", &tokens.access)
        .await;
    assert_eq!(res.status(), StatusCode::OK, "a token from A is good on B");
    assert_eq!(
        cli(&["HEXISTS", "sr:keys", "tls_ca"]),
        "1",
        "every key is back"
    );
}

/// A busy session's key lives ten minutes past the moment the engine
/// would forget it, yet its expiry is set about once a minute, not on
/// every request: a key given a minute of slack is left alone until the
/// slack is spent.
#[tokio::test]
async fn a_busy_sessions_key_outlives_it_and_its_expiry_is_set_once_a_minute() {
    let Some(redis) = Redis::start("expiry") else {
        return;
    };
    let mut cfg = on_store(&redis.url());
    cfg.rules.lifetime.idle_ttl = std::time::Duration::from_secs(120);
    cfg.rules.lifetime.skew_grace = std::time::Duration::ZERO;
    let (target, clock) = start(cfg).await;
    let cli = |args: &[&str]| redis_cli(&redis, args);
    let browser = Browser::via(&target, "127.0.1.10");
    browser.log_in("alice", "wonderland").await;
    let key = cli(&["--raw", "KEYS", "sr:s2:*"]);
    let expiries = || {
        let stats = cli(&["INFO", "commandstats"]);
        let line = stats.lines().find(|l| l.starts_with("cmdstat_pexpire:"));
        let calls = line.and_then(|l| l.split_once("calls=")?.1.split(',').next()?.parse().ok());
        calls.unwrap_or(0_u32)
    };
    // Idle TTL plus ten minutes, in milliseconds: never less than that.
    let needed = (120 + 600) * 1000;
    let mut ttls = Vec::new();
    assert_eq!(cli(&["CONFIG", "RESETSTAT"]), "OK");
    for _ in 0..20 {
        clock.advance(std::time::Duration::from_secs(1));
        assert_eq!(
            browser.fetch("/catalog?page=1").await.status(),
            StatusCode::OK
        );
        ttls.push(cli(&["PTTL", &key]).parse::<i64>().expect("a TTL"));
    }
    assert_eq!(expiries(), 1, "one expiry set over 20 requests in 20 s");
    clock.advance(std::time::Duration::from_secs(61));
    assert_eq!(
        browser.fetch("/catalog?page=1").await.status(),
        StatusCode::OK
    );
    assert_eq!(expiries(), 2, "the slack spent, the expiry is set again");
    let ttl = cli(&["PTTL", &key]).parse::<i64>().expect("a TTL");
    // The manual clock stood still between requests; Redis's did not,
    // by a few seconds at most in a slow test run.
    let slack = 10_000;
    // Set at the first request with a minute to spare, it still covers
    // the last, 19 s later, with 41 s to spare.
    for t in &ttls {
        assert!(
            *t > needed + 41_000 - slack,
            "the key outlives the session: {t} ms"
        );
    }
    assert!(
        ttl > needed + 60_000 - slack,
        "set with its slack: {ttl} ms"
    );
    assert!(ttl <= needed + 60_000, "no more than its slack: {ttl} ms");
}

/// What `redis-cli` prints for `args` against `redis`, trimmed.
fn redis_cli(redis: &Redis, args: &[&str]) -> String {
    let out = std::process::Command::new("redis-cli")
        .arg("-u")
        .arg(redis.url())
        .args(args)
        .output();
    String::from_utf8_lossy(&out.expect("redis-cli runs").stdout)
        .trim()
        .to_owned()
}

/// An operator's revoke of an account finds its sessions through an
/// index, which must live as long as the longest-lived of them: a busy
/// session lives to its absolute TTL, long past its idle TTL.
#[tokio::test]
async fn an_accounts_index_of_sessions_lives_as_long_as_a_busy_session_can() {
    let Some(redis) = Redis::start("index") else {
        return;
    };
    let mut cfg = on_store(&redis.url());
    let life = &mut cfg.rules.lifetime;
    life.idle_ttl = std::time::Duration::from_secs(120);
    life.absolute_ttl = std::time::Duration::from_secs(3600);
    life.skew_grace = std::time::Duration::ZERO;
    let (target, _clock) = start(cfg).await;
    Browser::via(&target, "127.0.1.10")
        .log_in("alice", "wonderland")
        .await;
    let ttl = redis_cli(&redis, &["PTTL", "sr:as:alice"]);
    let ttl = ttl.parse::<i64>().expect("a TTL");
    let longest = (3600 + 600) * 1000;
    assert!(
        ttl > longest,
        "the index outlives any session in it: {ttl} ms"
    );
}

/// A store URL that reaches a server speaking another protocol (a web
/// server on the port) is refused at start with a message that says so,
/// not with a bare parse error.
#[tokio::test]
async fn a_store_url_that_reaches_a_web_server_is_refused_with_a_clear_message() {
    use tokio::io::AsyncWriteExt;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a port");
    let port = listener.local_addr().expect("its address").port();
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            let _ = conn
                .write_all(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n")
                .await;
        }
    });
    let url = format!("redis://127.0.0.1:{port}/0");
    let started = TargetServer::builder().config(on_store(&url)).start().await;
    let Err(refused) = started.map(drop) else {
        panic!("a target started on a web server");
    };
    let refused = refused.to_string();
    assert!(refused.contains("target.store"), "{refused}");
    assert!(
        refused.contains("does not answer as a Redis server does"),
        "{refused}"
    );
}

/// A hand-edited record does not shield the rest of its account: the
/// operator's revoke walks past it, revokes and traces every other
/// session, and answers `503` naming what it could not read; listings
/// leave the record out and show the others.
#[tokio::test]
async fn an_accounts_revoke_walks_past_a_corrupt_session_and_revokes_the_rest() {
    let Some(redis) = Redis::start("corrupt") else {
        return;
    };
    let target = instance(&redis.url()).await;
    let (browsers, bad) = three_sessions_one_unreadable(&target, &redis).await;
    let (first, others): (Vec<&Browser>, Vec<&Browser>) = browsers
        .iter()
        .partition(|b| b.cookie("sr_session").as_deref() == Some(bad.as_str()));
    let key = format!("sr:s2:{bad}");
    let res = first[0].fetch("/catalog?page=1").await;
    assert_eq!(
        res.status(),
        StatusCode::SERVICE_UNAVAILABLE,
        "never served"
    );
    let sid = key.rsplit(':').next().expect("a session id");
    let res = Admin::new(&target)
        .get(&format!("/sessions/{sid}"))
        .send()
        .await
        .expect("answers");
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    let detail = res.text().await.expect("a body");
    assert!(detail.contains(&format!("session {sid}")), "{detail}");

    let admin = Admin::new(&target);
    let listed = admin.json("/sessions").await;
    assert_eq!(listed.as_array().map(Vec::len), Some(2), "{listed}");
    let res = admin
        .post("/accounts/alice/revoke")
        .send()
        .await
        .expect("answers");
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    for b in &others {
        let res = b.fetch("/catalog?page=1").await;
        assert_ne!(res.status(), StatusCode::OK, "revoked past the corrupt one");
    }
    let revokes = trace_lines(&target, "decision")
        .into_iter()
        .filter(|l| l["kind"] != "request" && l["reason"] == "SESSION_REVOKED")
        .count();
    assert_eq!(revokes, 2, "both revocations are traced");
}

/// An instance answers a dead session it remembers without writing, but
/// not once the record is gone (a reset elsewhere, or its key's expiry):
/// then the session is unknown, as every other instance says.
#[tokio::test]
async fn a_remembered_dead_session_is_unknown_once_its_record_is_gone() {
    let Some(redis) = Redis::start("gone") else {
        return;
    };
    let target = instance(&redis.url()).await;
    let browser = Browser::via(&target, "127.0.1.10");
    browser.log_in("alice", "wonderland").await;
    let sid = browser.cookie("sr_session").expect("a session cookie");
    assert_eq!(
        browser.fetch("/catalog?page=1").await.status(),
        StatusCode::OK
    );
    let res = browser.post("/logout").send().await.expect("logout");
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    browser.set_cookie("sr_session", &sid);
    browser.fetch("/catalog?page=1").await;
    assert_eq!(
        last_request(&target).verdict.to_string(),
        "revoke(LOGGED_OUT)"
    );

    let key = redis_cli(&redis, &["--raw", "KEYS", "sr:s2:*"]);
    assert_eq!(redis_cli(&redis, &["DEL", &key]), "1");
    browser.set_cookie("sr_session", &sid);
    browser.fetch("/catalog?page=1").await;
    let verdict = last_request(&target).verdict.to_string();
    assert!(verdict.contains("SESSION_UNKNOWN"), "{verdict}");
}

/// Three sessions of alice on `target`, each used once, and the id of
/// the one the index lists first, which the revoke walks first (the set's
/// order stays while the set does not change), now edited by hand into a
/// record that does not read back.
async fn three_sessions_one_unreadable(
    target: &TargetServer,
    redis: &Redis,
) -> (Vec<Browser>, String) {
    let cli = |args: &[&str]| redis_cli(redis, args);
    let browsers: Vec<Browser> = (10..13)
        .map(|i| Browser::via(target, &format!("127.0.1.{i}")))
        .collect();
    for b in &browsers {
        b.log_in("alice", "wonderland").await;
        assert_eq!(b.fetch("/catalog?page=1").await.status(), StatusCode::OK);
    }
    let listed = cli(&["--raw", "SMEMBERS", "sr:as:alice"]);
    let bad = listed
        .lines()
        .next()
        .expect("an indexed session")
        .to_owned();
    let key = format!("sr:s2:{bad}");
    assert_eq!(cli(&["HSET", &key, "d", "not a session"]), "0");
    assert!(cli(&["HINCRBY", &key, "v", "1"]).parse::<u64>().is_ok());
    (browsers, bad)
}

/// A scripted revoke that meets a record it cannot read, on a store that
/// answers, is traced as fired with what it could not do, and the events
/// after it fire: the timeline does not wait forever on a record.
#[tokio::test]
async fn a_timeline_event_that_meets_an_unreadable_record_does_not_stop_the_timeline() {
    let Some(redis) = Redis::start("timeline") else {
        return;
    };
    let target = instance(&redis.url()).await;
    let (browsers, bad) = three_sessions_one_unreadable(&target, &redis).await;
    let event = |action: &str| {
        let event = json!({ "at": "0s", "action": action, "account": "alice" });
        serde_json::from_value(event).expect("a timeline event")
    };
    target
        .state()
        .set_timeline(&[event("revoke-account"), event("rotate-signing-key")]);
    let good = browsers
        .iter()
        .find(|b| b.cookie("sr_session").as_deref() != Some(bad.as_str()))
        .expect("a readable session");
    good.fetch("/catalog?page=1").await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let fired = loop {
        let fired = trace_lines(&target, "timeline");
        if fired.len() == 2 || std::time::Instant::now() > deadline {
            break fired;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert_eq!(fired.len(), 2, "both events fired: {fired:?}");
    let detail = fired[0]["detail"].as_str().unwrap_or_default();
    assert!(detail.starts_with("not applied whole"), "{detail}");
    assert!(detail.contains(&format!("session {bad}")), "{detail}");
    assert_eq!(fired[1]["action"], "rotate-signing-key");
    let res = good.fetch("/catalog?page=1").await;
    assert_ne!(
        res.status(),
        StatusCode::OK,
        "the readable sessions were revoked"
    );
}
