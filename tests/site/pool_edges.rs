//! The pool's edges: faults inside CONNECT tunnels, connection triggers, gateway faults, headers, idle clients.

use std::io::ErrorKind;
use std::net::SocketAddr;
use std::time::Duration;

use reqwest::StatusCode;
use sessionrange::TargetServer;
use sessionrange::pool::{ProxyEvent, ProxyWhat};
use sessionrange::site::config::TargetConfig;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::*;
use crate::pool::{TWO_EXITS, proxy_events, proxy_get, raw, refuses_connections, start_pool, url};

const AUTH: &str = "Proxy-Authorization: Basic c2NyYXBlcjpodW50ZXIy\r\n";

/// Opens a CONNECT tunnel to the target through `proxy`; returns the
/// stream after the proxy's 200.
async fn tunnel(proxy: SocketAddr, target: &TargetServer) -> TcpStream {
    let mut s = TcpStream::connect(proxy).await.expect("the proxy accepts");
    let connect = format!(
        "CONNECT {0} HTTP/1.1\r\nHost: {0}\r\n{AUTH}\r\n",
        target.addr()
    );
    s.write_all(connect.as_bytes()).await.expect("sent");
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut byte = [0u8; 1];
        let n = s.read(&mut byte).await.expect("the proxy answers");
        assert_eq!(n, 1, "the proxy closed before answering CONNECT");
        head.push(byte[0]);
    }
    assert!(
        head.starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&head)
    );
    s
}

/// Reads until EOF or error, at most 5 s.
async fn drain(s: &mut TcpStream) -> (usize, Option<ErrorKind>) {
    let read = async {
        let mut total = 0;
        let mut buf = [0u8; 4096];
        loop {
            match s.read(&mut buf).await {
                Ok(0) => return (total, None),
                Ok(n) => total += n,
                Err(e) => return (total, Some(e.kind())),
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(5), read)
        .await
        .expect("the connection ends")
}

#[tokio::test]
async fn a_reset_reaches_the_client_inside_a_latency_delayed_tunnel() {
    let (target, _clock) = start(TargetConfig::default()).await;
    let faults = "[[exits.faults]]\nkind = \"reset\"\nafter_bytes = 200\n\
                  [[exits.faults]]\nkind = \"latency\"\nlatency = \"20ms\"\n";
    let pool = start_pool(&target, &format!("{TWO_EXITS}\n{faults}")).await;
    let mut s = tunnel(pool.exit("cloud").expect("cloud").addr, &target).await;
    s.write_all(b"GET /login HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .expect("sent");
    let (got, end) = drain(&mut s).await;
    assert_eq!(end, Some(ErrorKind::ConnectionReset), "after {got} bytes");
    let traced = proxy_events(&target).iter().any(|e| {
        matches!(&e.what, ProxyWhat::Fault { detail, .. } if detail.starts_with("TCP RST after"))
    });
    assert!(traced, "the reset is traced when it fires");
}

#[tokio::test]
async fn a_connection_triggered_death_refuses_the_next_connection() {
    let (target, _clock) = start(TargetConfig::default()).await;
    let fault = "[[exits.faults]]\nkind = \"dies\"\nafter_connections = 1\n";
    let pool = start_pool(&target, &format!("{TWO_EXITS}\n{fault}")).await;
    let addr = pool.exit("cloud").expect("cloud").addr;
    let (first, _) = raw(addr, &proxy_get(&target, "/")).await;
    assert!(
        first.starts_with(b"HTTP/1.1 200"),
        "the first connection is served"
    );
    let (second, _) = raw(addr, &proxy_get(&target, "/")).await;
    assert!(second.is_empty(), "the second connection is cut");
    assert!(
        refuses_connections(addr).await,
        "then connections are refused"
    );
}

#[tokio::test]
async fn gateway_faults_ban_the_exit_it_drew() {
    let (target, _clock) = start(TargetConfig::default()).await;
    let text = r#"
        user = "scraper"
        password = "hunter2"
        [gateway]
        ranges = ["127.0.2.30/32"]
        [[gateway.faults]]
        kind = "banned"
        after_requests = 1
    "#;
    let pool = start_pool(&target, text).await;
    let api = Api::through(&target, &pool.gateway().expect("gateway").url);
    assert_eq!(
        api.get("/").send().await.expect("ok").status(),
        StatusCode::OK
    );
    let res = api.get("/").send().await.expect("answered");
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let banned = target.state().exit_bans.list();
    assert_eq!(
        banned,
        ["127.0.2.30".parse::<std::net::IpAddr>().expect("ip")]
    );
}

#[tokio::test]
async fn a_banned_exit_stays_banned_whatever_forwarding_header_comes_through() {
    let (target, _clock) = start(behind_proxy_everywhere()).await;
    let fault = "[[exits.faults]]\nkind = \"banned\"\n";
    let pool = start_pool(&target, &format!("{TWO_EXITS}\n{fault}")).await;
    let api = Api::through(&target, &url(&pool, "cloud"));
    let res = api
        .get("/")
        .header("x-forwarded-for", COMCAST)
        .send()
        .await
        .expect("answered");
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
}

/// Trusts every forwarding header, from anywhere.
fn behind_proxy_everywhere() -> TargetConfig {
    let trusted = serde_json::json!(["0.0.0.0/0", "::/0"]);
    TargetConfig {
        trusted_proxies: serde_json::from_value(trusted).expect("trusted proxies"),
        ..TargetConfig::default()
    }
}

#[tokio::test]
async fn credentials_and_sticky_ids_are_checked() {
    let (target, _clock) = start(TargetConfig::default()).await;
    let text = format!("{TWO_EXITS}\n[gateway]\nclasses = [\"mobile\"]\n");
    let pool = start_pool(&target, &text).await;
    let addr = pool.gateway().expect("gateway").addr;
    let long = "x".repeat(65);
    for user in [
        "scraper-session-a1:wrong",
        "other-session-a1:hunter2",
        &format!("scraper-session-{long}:hunter2"),
    ] {
        let proxy = format!("http://{user}@{addr}");
        let res = Api::through(&target, &proxy)
            .get("/")
            .send()
            .await
            .expect("answered");
        assert_eq!(
            res.status(),
            StatusCode::PROXY_AUTHENTICATION_REQUIRED,
            "{user}"
        );
    }
    let ok = Api::through(
        &target,
        &format!("http://scraper-session-a1:hunter2@{addr}"),
    );
    assert_eq!(
        ok.get("/").send().await.expect("ok").status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn proxy_and_hop_by_hop_headers_never_reach_the_target_and_host_is_the_target() {
    let (target, _clock) = start(TargetConfig::default()).await;
    let pool = start_pool(&target, TWO_EXITS).await;
    let request = format!(
        "GET {} HTTP/1.1\r\nHost: elsewhere.example\r\nUser-Agent: edge/1\r\n{AUTH}\
         Proxy-Connection: keep-alive\r\nConnection: x-hop\r\nX-Hop: 1\r\nAccept: */*\r\n\r\n",
        target.url("/__range/fingerprint")
    );
    let (got, _) = raw(pool.exit("home").expect("home").addr, request.as_bytes()).await;
    let text = String::from_utf8_lossy(&got);
    let body = text.split("\r\n\r\n").nth(1).expect("a body");
    let seen: serde_json::Value = serde_json::from_str(body.trim()).expect("JSON");
    let order: Vec<&str> = seen["header_order"]
        .as_array()
        .expect("header order")
        .iter()
        .filter_map(|h| h.as_str())
        .collect();
    assert_eq!(order, ["host", "user-agent", "accept"], "{text}");
}

#[tokio::test]
async fn only_the_target_is_reachable_and_only_over_plain_http_or_connect() {
    let (target, _clock) = start(TargetConfig::default()).await;
    let pool = start_pool(&target, TWO_EXITS).await;
    let addr = pool.exit("home").expect("home").addr;
    let wrong_port = SocketAddr::new(target.addr().ip(), target.admin().port());
    let cases = [
        format!("CONNECT {wrong_port} HTTP/1.1\r\nHost: {wrong_port}\r\n{AUTH}\r\n"),
        format!(
            "GET https://{0}/ HTTP/1.1\r\nHost: {0}\r\n{AUTH}\r\n",
            target.addr()
        ),
    ];
    for request in cases {
        let (got, _) = raw(addr, request.as_bytes()).await;
        let text = String::from_utf8_lossy(&got);
        assert!(text.starts_with("HTTP/1.1 403"), "{request:?} -> {text}");
    }
    let (got, _) = raw(addr, b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03").await;
    assert!(
        got.starts_with(b"HTTP/1.1 400"),
        "a TLS hello to a plain proxy: 400 at once"
    );
}

#[tokio::test]
async fn idle_tunnels_are_closed_after_the_idle_timeout() {
    let (target, _clock) = start(TargetConfig::default()).await;
    let pool = start_pool(&target, TWO_EXITS).await;
    let mut s = tunnel(pool.exit("home").expect("home").addr, &target).await;
    // Say nothing: the pool's idle timeout (500 ms in these tests) closes it.
    let (got, _) = drain(&mut s).await;
    assert_eq!(got, 0);
    let events: Vec<ProxyEvent> = proxy_events(&target);
    assert!(
        events
            .iter()
            .any(|e| matches!(e.what, ProxyWhat::Tunnel { .. }))
    );
}

#[tokio::test]
async fn an_ipv6_exit_is_judged_by_its_own_network() {
    let (target, _clock) = start(TargetConfig::default()).await;
    let text = "[[exits]]\nname = \"v6\"\nip = \"2003:1d15::20\"\n";
    let pool = start_pool(&target, text).await;
    let res = Api::through(&target, &url(&pool, "v6"))
        .get("/__range/fingerprint")
        .send()
        .await;
    let seen = json_body(res.expect("answered"), StatusCode::OK).await;
    assert_eq!(seen["ip"], "2003:1d15::20");
    assert_eq!(seen["network"]["asn"], 3320);
}
