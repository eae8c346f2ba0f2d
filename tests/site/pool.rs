//! The proxy pool end to end with reqwest: exit identity, drift through exits, sticky expiry, faults.

use std::io::ErrorKind;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::Value;
use sessionrange::TargetServer;
use sessionrange::pool::{PoolConfig, ProxyEvent, ProxyPool, ProxyWhat, RotateCause, Timeouts};
use sessionrange::site::config::TargetConfig;
use sessionrange::{Reason, Verdict};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::*;

/// Two static exits on different networks, with credentials.
pub(crate) const TWO_EXITS: &str = r#"
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

/// How long the pools of these tests wait on their clients.
const TIMEOUTS: Timeouts = Timeouts {
    head: Duration::from_millis(300),
    idle: Duration::from_millis(500),
};

/// A pool from TOML text in front of `target`.
pub(crate) async fn start_pool(target: &TargetServer, toml_text: &str) -> ProxyPool {
    let config: PoolConfig = toml::from_str(toml_text).expect("a valid pool");
    ProxyPool::start_with(&config, target.upstream(), TIMEOUTS)
        .await
        .expect("the pool starts")
}

/// The URL of the static exit `name`.
pub(crate) fn url(pool: &ProxyPool, name: &str) -> String {
    pool.exit(name).expect("the exit exists").url.clone()
}

/// The proxy events the target has traced so far.
pub(crate) fn proxy_events(target: &TargetServer) -> Vec<ProxyEvent> {
    let lines = target.state().trace.recent();
    lines.iter().filter_map(|l| ProxyEvent::parse(l)).collect()
}

/// Whether a `fault` event of `kind` was traced.
fn fault_traced(target: &TargetServer, kind: &str) -> bool {
    proxy_events(target).iter().any(|e| match &e.what {
        ProxyWhat::Fault { fault, .. } => fault.as_str() == kind,
        _ => false,
    })
}

/// What the target sees of a client behind `proxy`.
async fn seen(target: &TargetServer, proxy: &str) -> Value {
    let res = Api::through(target, proxy)
        .get("/__range/fingerprint")
        .send()
        .await;
    json_body(res.expect("the proxy answers"), StatusCode::OK).await
}

/// Sends `bytes` to `addr` and reads until EOF, error or 5 s.
pub(crate) async fn raw(addr: SocketAddr, bytes: &[u8]) -> (Vec<u8>, Option<ErrorKind>) {
    let mut s = TcpStream::connect(addr).await.expect("the proxy accepts");
    s.write_all(bytes).await.expect("the request is sent");
    let mut got = Vec::new();
    let read = async {
        let mut buf = [0u8; 4096];
        loop {
            match s.read(&mut buf).await {
                Ok(0) => return None,
                Ok(n) => got.extend_from_slice(&buf[..n]),
                Err(e) => return Some(e.kind()),
            }
        }
    };
    let end = tokio::time::timeout(Duration::from_secs(5), read)
        .await
        .expect("the proxy ends the exchange");
    (got, end)
}

/// Whether connecting to `addr` is refused, once the node's listener has
/// had its turns of the runtime to close.
pub(crate) async fn refuses_connections(addr: SocketAddr) -> bool {
    for _ in 0..100 {
        match TcpStream::connect(addr).await {
            Err(e) => return e.kind() == ErrorKind::ConnectionRefused,
            Ok(_) => tokio::task::yield_now().await,
        }
    }
    false
}

/// A proxy request for `path` on the target, with the pool's credentials.
pub(crate) fn proxy_get(target: &TargetServer, path: &str) -> Vec<u8> {
    format!(
        "GET {} HTTP/1.1\r\nHost: {}\r\nProxy-Authorization: Basic c2NyYXBlcjpodW50ZXIy\r\n\r\n",
        target.url(path),
        target.addr()
    )
    .into_bytes()
}

#[tokio::test]
async fn each_exit_presents_its_own_network_through_proxy_protocol() {
    let (target, _clock) = start(TargetConfig::default()).await;
    let pool = start_pool(&target, TWO_EXITS).await;
    let home = seen(&target, &url(&pool, "home")).await;
    assert_eq!(home["ip"], "127.0.1.20");
    assert_eq!(home["ip_source"], "proxy_protocol");
    assert_eq!(home["network"]["asn"], 7922);
    let cloud = seen(&target, &url(&pool, "cloud")).await;
    assert_eq!(cloud["ip"], "127.0.2.20");
    assert_eq!(cloud["network"]["class"], "datacenter");
    // Proxy headers never reach the target.
    let order = home["header_order"].as_array().expect("header order");
    assert!(
        !order
            .iter()
            .any(|h| h.as_str().is_some_and(|h| h.starts_with("proxy-")))
    );
    let events = proxy_events(&target);
    assert!(
        events
            .iter()
            .any(|e| matches!(e.what, ProxyWhat::Connect { .. }))
    );
    assert!(
        events
            .iter()
            .any(|e| e.node == "cloud" && matches!(e.what, ProxyWhat::ExitChosen { .. }))
    );
}

#[tokio::test]
async fn a_session_born_on_one_exit_and_used_from_another_dies_of_asn_drift() {
    let (target, _clock) = start(TargetConfig::default()).await;
    let pool = start_pool(&target, TWO_EXITS).await;
    let home = Api::through(&target, &url(&pool, "home"));
    let tokens = home.login("alice", "wonderland").await;
    let ok = home.get_with("/api/v1/items?page=1", &tokens.access).await;
    assert_eq!(ok.status(), StatusCode::OK);
    let cloud = Api::through(&target, &url(&pool, "cloud"));
    let moved = cloud.get_with("/api/v1/items?page=2", &tokens.access).await;
    assert_eq!(moved.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(last_verdict(&target), Verdict::Revoke(Reason::AsnDrift));
}

/// A gateway with exactly two exits, one per network, so every move is drift.
const GATEWAY: &str = r#"
    seed = 3
    user = "scraper"
    password = "hunter2"
    [gateway]
    ranges = ["127.0.1.20/32", "127.0.2.20/32"]
    sticky_ttl = "30s"
    idle_ttl = "20s"
"#;

#[tokio::test]
async fn sticky_sessions_hold_their_exit_until_the_sticky_ttl_then_move_and_drift() {
    let (target, clock) = start(TargetConfig::default()).await;
    let pool = start_pool(&target, GATEWAY).await;
    let sticky = pool.sticky_url("crawl1").expect("a gateway");
    let api = Api::through(&target, &sticky);
    let tokens = api.login("alice", "wonderland").await;
    for _ in 0..2 {
        advance(&clock, 14);
        let res = api.get_with("/api/v1/items?page=1", &tokens.access).await;
        assert_eq!(res.status(), StatusCode::OK, "the sticky exit holds");
    }
    // A second client with the same session id gets the same exit.
    let again = seen(&target, &sticky).await["ip"].clone();
    advance(&clock, 3); // 31 s since the session was born: the sticky TTL ran out.
    let res = api.get_with("/api/v1/items?page=1", &tokens.access).await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(last_verdict(&target), Verdict::Revoke(Reason::AsnDrift));
    let rotated = proxy_events(&target)
        .into_iter()
        .find_map(|e| match e.what {
            ProxyWhat::StickyRotated {
                session,
                cause,
                from,
                to,
            } => Some((session, cause, from, to)),
            _ => None,
        });
    let (session, cause, from, to) = rotated.expect("the rotation is traced");
    assert_eq!(
        (session.as_str(), cause),
        ("crawl1", RotateCause::StickyTtl)
    );
    assert_eq!(from.ip.to_string(), again.as_str().expect("an ip"));
    assert_ne!(from.network.asn, to.network.asn, "{from} -> {to}");
    let said = proxy_events(&target)
        .iter()
        .find(|e| matches!(e.what, ProxyWhat::StickyRotated { .. }))
        .map(ProxyEvent::describe)
        .expect("the rotation");
    assert!(
        said.contains("outlived its sticky TTL")
            && said.contains("AS7922")
            && said.contains("AS16509"),
        "{said}"
    );
}

#[tokio::test]
async fn an_idle_sticky_session_moves_and_unsticky_connections_draw_fresh_exits() {
    let (target, clock) = start(TargetConfig::default()).await;
    let pool = start_pool(&target, GATEWAY).await;
    let sticky = pool.sticky_url("s9").expect("a gateway");
    let first = seen(&target, &sticky).await["ip"].clone();
    advance(&clock, 20);
    let after_idle = seen(&target, &sticky).await["ip"].clone();
    assert_ne!(first, after_idle, "idle for the idle TTL: moved");
    let moved = proxy_events(&target).iter().any(|e| {
        matches!(
            &e.what,
            ProxyWhat::StickyRotated {
                cause: RotateCause::IdleTtl,
                ..
            }
        )
    });
    assert!(moved, "the idle rotation is traced");
    // Without a session id, each new connection draws an exit.
    let gateway = pool.gateway().expect("a gateway").url.clone();
    let mut ips = std::collections::HashSet::new();
    for _ in 0..12 {
        ips.insert(seen(&target, &gateway).await["ip"].to_string());
    }
    assert_eq!(
        ips.len(),
        2,
        "both exits drawn over 12 connections: {ips:?}"
    );
}

#[tokio::test]
async fn a_dying_exit_drops_the_request_then_refuses_connections() {
    let (target, _clock) = start(TargetConfig::default()).await;
    let text = format!("{TWO_EXITS}\n[[exits.faults]]\nkind = \"dies\"\nafter_requests = 1\n");
    let pool = start_pool(&target, &text).await;
    let cloud = url(&pool, "cloud");
    let api = Api::through(&target, &cloud);
    let ok = api
        .get("/__range/fingerprint")
        .send()
        .await
        .expect("the first request");
    assert_eq!(ok.status(), StatusCode::OK);
    let err = api
        .get("/__range/fingerprint")
        .send()
        .await
        .expect_err("the proxy died");
    assert!(
        !err.is_status(),
        "a socket error, not an HTTP status: {err}"
    );
    let addr = pool.exit("cloud").expect("cloud").addr;
    assert!(
        refuses_connections(addr).await,
        "connections to a dead proxy are refused"
    );
    assert!(fault_traced(&target, "dies"));
    // The other exit lives on.
    assert_eq!(seen(&target, &url(&pool, "home")).await["ip"], "127.0.1.20");
}

#[tokio::test]
async fn a_hanging_exit_accepts_and_never_answers() {
    let (target, _clock) = start(TargetConfig::default()).await;
    let text = format!("{TWO_EXITS}\n[[exits.faults]]\nkind = \"hangs\"\n");
    let pool = start_pool(&target, &text).await;
    let client = reqwest::Client::builder()
        .proxy(reqwest::Proxy::all(url(&pool, "cloud")).expect("proxy"))
        .timeout(Duration::from_millis(400))
        .build()
        .expect("client");
    let err = client
        .get(target.url("/"))
        .send()
        .await
        .expect_err("no answer");
    assert!(err.is_timeout(), "{err}");
    assert!(fault_traced(&target, "hangs"));
}

#[tokio::test]
async fn latency_delays_every_request_by_at_least_its_floor() {
    let (target, _clock) = start(TargetConfig::default()).await;
    let fault = "[[exits.faults]]\nkind = \"latency\"\nlatency = \"150ms\"\njitter = \"20ms\"\n";
    let pool = start_pool(&target, &format!("{TWO_EXITS}\n{fault}")).await;
    let api = Api::through(&target, &url(&pool, "cloud"));
    for _ in 0..2 {
        let t = Instant::now();
        let res = api
            .get("/__range/fingerprint")
            .send()
            .await
            .expect("answered");
        assert_eq!(res.status(), StatusCode::OK);
        assert!(
            t.elapsed() >= Duration::from_millis(130),
            "{:?}",
            t.elapsed()
        );
    }
    assert!(fault_traced(&target, "latency"));
}

#[tokio::test]
async fn a_bandwidth_cap_slows_the_body_to_its_rate() {
    let (target, _clock) = start(TargetConfig::default()).await;
    let fault = "[[exits.faults]]\nkind = \"bandwidth\"\nbytes_per_sec = 1000\n";
    let pool = start_pool(&target, &format!("{TWO_EXITS}\n{fault}")).await;
    let api = Api::through(&target, &url(&pool, "cloud"));
    let t = Instant::now();
    let body = api
        .get("/login")
        .send()
        .await
        .expect("answered")
        .bytes()
        .await
        .expect("body");
    let floor = (body.len() as f64 - 100.0) / 1000.0;
    assert!(
        floor > 0.1,
        "the page is big enough to measure: {} bytes",
        body.len()
    );
    assert!(
        t.elapsed().as_secs_f64() >= floor,
        "{:?} for {} bytes",
        t.elapsed(),
        body.len()
    );
}

#[tokio::test]
async fn a_reset_fault_is_a_tcp_reset_after_its_byte_budget() {
    let (target, _clock) = start(TargetConfig::default()).await;
    let fault = "[[exits.faults]]\nkind = \"reset\"\nafter_bytes = 64\n";
    let pool = start_pool(&target, &format!("{TWO_EXITS}\n{fault}")).await;
    let addr = pool.exit("cloud").expect("cloud").addr;
    let (got, end) = raw(addr, &proxy_get(&target, "/login")).await;
    assert_eq!(
        end,
        Some(ErrorKind::ConnectionReset),
        "read {} bytes",
        got.len()
    );
    assert!(got.len() <= 64, "{} bytes before the reset", got.len());
    let err = Api::through(&target, &url(&pool, "cloud"))
        .get("/login")
        .send()
        .await;
    assert!(
        err.is_err(),
        "reqwest sees a broken connection, not a status"
    );
}

#[tokio::test]
async fn auth_and_connect_faults_answer_407_and_502() {
    let (target, _clock) = start(TargetConfig::default()).await;
    let faults = "[[exits.faults]]\nkind = \"auth-407\"\nafter_requests = 1\n";
    let pool = start_pool(&target, &format!("{TWO_EXITS}\n{faults}")).await;
    let api = Api::through(&target, &url(&pool, "cloud"));
    assert_eq!(
        api.get("/").send().await.expect("ok").status(),
        StatusCode::OK
    );
    let res = api.get("/").send().await.expect("answered");
    assert_eq!(res.status(), StatusCode::PROXY_AUTHENTICATION_REQUIRED);
    assert_eq!(
        header(&res, "proxy-authenticate"),
        "Basic realm=\"sessionrange\""
    );

    let (target, _clock) = start(TargetConfig::default()).await;
    let faults = "[[exits.faults]]\nkind = \"connect-502\"\n";
    let failing = start_pool(&target, &format!("{TWO_EXITS}\n{faults}")).await;
    let addr = failing.exit("cloud").expect("cloud").addr;
    let connect = format!(
        "CONNECT {0} HTTP/1.1\r\nHost: {0}\r\nProxy-Authorization: Basic c2NyYXBlcjpodW50ZXIy\r\n\r\n",
        target.addr()
    );
    let (got, _) = raw(addr, connect.as_bytes()).await;
    assert!(
        got.starts_with(b"HTTP/1.1 502"),
        "{}",
        String::from_utf8_lossy(&got)
    );
    assert!(fault_traced(&target, "connect-502"));
}

#[tokio::test]
async fn a_banned_exit_gets_403_from_the_target_while_others_pass() {
    let (target, _clock) = start(TargetConfig::default()).await;
    let fault = "[[exits.faults]]\nkind = \"banned\"\nafter_requests = 1\n";
    let pool = start_pool(&target, &format!("{TWO_EXITS}\n{fault}")).await;
    let cloud = Api::through(&target, &url(&pool, "cloud"));
    assert_eq!(
        cloud.get("/").send().await.expect("ok").status(),
        StatusCode::OK
    );
    for _ in 0..2 {
        let res = cloud
            .get("/__range/fingerprint")
            .send()
            .await
            .expect("answered");
        let body = json_body(res, StatusCode::FORBIDDEN).await;
        assert_eq!(body["reason"], "IP_BANNED");
    }
    assert_eq!(seen(&target, &url(&pool, "home")).await["ip"], "127.0.1.20");
    assert!(fault_traced(&target, "banned"));
    let refused = trace_lines(&target, "refused");
    let line = serde_json::json!({"type": "refused", "route": "/__range/fingerprint",
        "ip": "127.0.2.20", "reason": "IP_BANNED"});
    assert_eq!(
        refused.len(),
        2,
        "each refused request is traced: {refused:?}"
    );
    for mut r in refused {
        r.as_object_mut().expect("an object").remove("at");
        assert_eq!(r, line);
    }
    assert_eq!(
        target.state().exit_bans.list(),
        ["127.0.2.20".parse::<std::net::IpAddr>().expect("ip")]
    );
}

#[tokio::test]
async fn faults_can_fire_by_time_with_a_seeded_probability() {
    let (target, clock) = start(TargetConfig::default()).await;
    let fault = "[[exits.faults]]\nkind = \"auth-407\"\nafter = \"60s\"\nprobability = 0.5\n";
    let pool = start_pool(&target, &format!("{TWO_EXITS}\n{fault}")).await;
    let api = Api::through(&target, &url(&pool, "cloud"));
    let status = |api: &Api| {
        let rb = api.get("/");
        async move { rb.send().await.expect("answered").status() }
    };
    for _ in 0..5 {
        assert_eq!(
            status(&api).await,
            StatusCode::OK,
            "before the trigger time"
        );
    }
    advance(&clock, 60);
    let mut seen_407 = 0;
    for _ in 0..40 {
        if status(&api).await == StatusCode::PROXY_AUTHENTICATION_REQUIRED {
            seen_407 += 1;
        }
    }
    assert!((8..=32).contains(&seen_407), "{seen_407} of 40 at p = 0.5");
}
