//! Behind a real HAProxy in TCP mode: PROXY v1 and v2 from a trusted balancer name the client, TLS passthrough keeps the client's own JA4, and nobody else's PROXY header is believed.

use std::net::{SocketAddr, TcpListener as StdListener, TcpStream as StdStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sessionrange::TargetServer;
use sessionrange::engine::DecisionKind;

use crate::helpers::*;

/// The client's own address: another loopback address than HAProxy's.
const CLIENT: &str = "127.0.0.9";

/// A running HAProxy with an HTTP frontend (`send-proxy`, v1) and an HTTPS
/// one (TLS passthrough, `send-proxy-v2`) in front of `target`; stopped on
/// drop.
struct Haproxy {
    child: Child,
    http: u16,
    https: u16,
    _dir: TempDir,
}

impl Drop for Haproxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A loopback port free right now (HAProxy cannot report the one it got).
fn free_port() -> u16 {
    let l = StdListener::bind("127.0.0.1:0").expect("a port");
    l.local_addr().expect("its address").port()
}

/// The configuration the README gives, on this test's ports, with one
/// server line per target in each backend (round robin, per connection).
fn config(http: u16, https: u16, targets: &[&TargetServer]) -> String {
    let servers = |addr: fn(&TargetServer) -> SocketAddr, proxy: &str| -> String {
        let line =
            |(i, t): (usize, &&TargetServer)| format!("  server target{i} {} {proxy}\n", addr(t));
        targets.iter().enumerate().map(line).collect()
    };
    format!(
        "defaults\n  mode tcp\n  timeout connect 5s\n  timeout client 30s\n  timeout server 30s\n\n\
         frontend http_in\n  bind 127.0.0.1:{http}\n  default_backend http_out\n\
         backend http_out\n  balance roundrobin\n{}\n\
         frontend https_in\n  bind 127.0.0.1:{https}\n  default_backend https_out\n\
         backend https_out\n  balance roundrobin\n{}",
        servers(TargetServer::addr, "send-proxy"),
        servers(TargetServer::https_addr, "send-proxy-v2"),
    )
}

/// Starts HAProxy (Debian's `haproxy`), or `None` when it is not installed
/// and SESSIONRANGE_REQUIRE_HAPROXY is not `1`.
fn haproxy(targets: &[&TargetServer]) -> Option<Haproxy> {
    let installed = Command::new("haproxy").arg("-v").output().is_ok();
    let required = std::env::var("SESSIONRANGE_REQUIRE_HAPROXY").is_ok_and(|v| v == "1");
    assert!(installed || !required, "haproxy is required here");
    if !installed {
        return None;
    }
    let dir = TempDir::new("haproxy");
    let (http, https) = (free_port(), free_port());
    let cfg = dir.join("haproxy.cfg");
    std::fs::write(&cfg, config(http, https, targets)).expect("the config is written");
    let child = Command::new("haproxy")
        .args(["-db", "-f"])
        .arg(&cfg)
        .stdout(Stdio::null())
        .spawn()
        .expect("haproxy starts");
    let proxy = Haproxy {
        child,
        http,
        https,
        _dir: dir,
    };
    // Until both frontends accept, for at most 10 s.
    let started = Instant::now();
    while [http, https]
        .iter()
        .any(|p| StdStream::connect(("127.0.0.1", *p)).is_err())
    {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "haproxy never listened"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    Some(proxy)
}

/// A client on [`CLIENT`] that trusts the target's CA.
fn client(target: &TargetServer) -> reqwest::Client {
    let ca = reqwest::Certificate::from_pem(target.ca_pem().as_bytes()).expect("a PEM CA");
    reqwest::Client::builder()
        .add_root_certificate(ca)
        .local_address(CLIENT.parse::<std::net::IpAddr>().ok())
        .user_agent(USER_AGENT)
        .build()
        .expect("a client")
}

async fn echo(client: &reqwest::Client, url: &str) -> Value {
    let res = client.get(url).send().await.expect("an answer");
    res.json().await.expect("the echo")
}

fn balanced_target_config() -> sessionrange::site::config::TargetConfig {
    let balancer = serde_json::from_value(json!(["127.0.0.1/32"])).expect("a network");
    sessionrange::site::config::TargetConfig {
        proxy_protocol_from: balancer,
        ..Default::default()
    }
}

#[tokio::test]
async fn behind_haproxy_the_target_sees_the_clients_address_and_its_own_ja4() {
    let (target, _clock) = start(balanced_target_config()).await;
    let Some(proxy) = haproxy(&[&target]) else {
        return;
    };
    let client = client(&target);
    let direct = echo(&client, &target.https_url("/__range/fingerprint")).await;
    assert_eq!(direct["ip"], CLIENT);
    let path = "/__range/fingerprint";
    let tls = echo(&client, &format!("https://127.0.0.1:{}{path}", proxy.https)).await;
    assert_eq!(tls["ip"], CLIENT, "PROXY v2 names the client: {tls}");
    assert_eq!(tls["ip_source"], "proxy_protocol");
    assert_eq!(direct["ip_source"], "socket");
    assert_eq!(
        tls["ja4"], direct["ja4"],
        "TLS passthrough keeps the client's JA4"
    );
    assert!(tls["ja4"].is_string());
    let plain = echo(&client, &format!("http://127.0.0.1:{}{path}", proxy.http)).await;
    assert_eq!(plain["ip"], CLIENT, "PROXY v1 names the client: {plain}");
}

/// Sends `bytes` from a socket on `local` to `to`; returns the answer
/// (empty when the target closed the connection without one).
async fn raw(local: &str, to: SocketAddr, bytes: &[u8]) -> String {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let socket = tokio::net::TcpSocket::new_v4().expect("a socket");
    socket
        .bind(format!("{local}:0").parse().expect("an address"))
        .expect("bound");
    let mut s = socket.connect(to).await.expect("connects");
    s.write_all(bytes).await.expect("sent");
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut answer));
    assert!(read.await.is_ok(), "the target neither answered nor closed");
    String::from_utf8_lossy(&answer).into_owned()
}

#[tokio::test]
async fn a_proxy_header_is_believed_from_the_balancer_only_and_required_from_it() {
    let (target, _clock) = start(balanced_target_config()).await;
    let request = b"GET /__range/fingerprint HTTP/1.1\r\nhost: t\r\nconnection: close\r\n\r\n";
    let mut with = b"PROXY TCP4 127.0.3.7 127.0.0.1 4000 80\r\n".to_vec();
    with.extend_from_slice(request);
    // From the balancer's address, a header names the client.
    let answer = raw("127.0.0.1", target.addr(), &with).await;
    assert!(answer.contains("\"ip\":\"127.0.3.7\""), "{answer}");
    // From the balancer without a header: dropped unanswered.
    assert_eq!(raw("127.0.0.1", target.addr(), request).await, "");
    // From anyone else, a header is not read: a bad request, and the
    // client is judged by its socket.
    let answer = raw(CLIENT, target.addr(), &with).await;
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    let answer = raw(CLIENT, target.addr(), request).await;
    assert!(answer.contains(&format!("\"ip\":\"{CLIENT}\"")), "{answer}");
}

/// The balanced config on the shared store at `url`.
fn shared_config(url: &str) -> sessionrange::site::config::TargetConfig {
    sessionrange::site::config::TargetConfig {
        store: Some(url.to_owned()),
        ..balanced_target_config()
    }
}

#[tokio::test]
async fn two_instances_behind_haproxy_share_sessions_and_see_the_clients_address_and_ja4() {
    let Some(redis) = crate::redis::Redis::start("balanced") else {
        return;
    };
    let start = || {
        TargetServer::builder()
            .config(shared_config(&redis.url()))
            .start()
    };
    let a = start().await.expect("instance A");
    let b = start().await.expect("instance B");
    let Some(proxy) = haproxy(&[&a, &b]) else {
        return;
    };
    let direct = echo(&client(&a), &a.https_url("/__range/fingerprint")).await;
    // A new connection per request: HAProxy deals them out in turn.
    let ca = reqwest::Certificate::from_pem(a.ca_pem().as_bytes()).expect("the shared CA");
    let api = reqwest::Client::builder()
        .add_root_certificate(ca)
        .local_address(CLIENT.parse::<std::net::IpAddr>().ok())
        .user_agent(USER_AGENT)
        .pool_max_idle_per_host(0)
        .build()
        .expect("a client");
    let base = format!("https://127.0.0.1:{}", proxy.https);
    let login = json!({"username": "alice", "password": "wonderland"});
    let res = api
        .post(format!("{base}/api/login"))
        .json(&login)
        .send()
        .await
        .expect("an answer");
    let tokens: Value = json_body(res, reqwest::StatusCode::OK).await;
    let access = tokens["access_token"].as_str().expect("a token");
    for page in 1..=4 {
        let url = format!("{base}/api/v1/items?page={page}");
        let res = api
            .get(url)
            .bearer_auth(access)
            .send()
            .await
            .expect("an answer");
        assert_eq!(res.status(), reqwest::StatusCode::OK, "page {page}");
    }
    let judged = |t: &TargetServer| {
        let requests = t
            .events()
            .into_iter()
            .filter(|d| d.kind == DecisionKind::Request);
        requests
            .map(|d| d.context.expect("a context"))
            .collect::<Vec<_>>()
    };
    let (on_a, on_b) = (judged(&a), judged(&b));
    assert!(
        !on_a.is_empty() && !on_b.is_empty(),
        "both served: {} and {}",
        on_a.len(),
        on_b.len()
    );
    for ctx in on_a.iter().chain(&on_b) {
        assert_eq!(ctx.ip, CLIENT.parse().ok(), "the client's own address");
        assert_eq!(
            ctx.ja4.as_deref(),
            direct["ja4"].as_str(),
            "the client's own JA4"
        );
    }
}
