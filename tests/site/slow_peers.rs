//! Slow peers: a half-sent request head, PROXY header or ClientHello is timed out, counted, and holds nothing afterwards.
//!
//! And idle keep-alive connections: the wait between a response and the
//! next request head has its own, longer timeout, counted apart.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use sessionrange::TargetServer;
use sessionrange::site::metrics::Listener;

use crate::pool::raw;

/// Short enough to keep the test quick, long enough for a loaded machine
/// to send a whole head well inside it.
const HEAD_TIMEOUT: Duration = Duration::from_millis(150);

async fn target(head_timeout: Duration) -> TargetServer {
    with_idle(head_timeout, Duration::from_secs(75)).await
}

async fn with_idle(head_timeout: Duration, idle_timeout: Duration) -> TargetServer {
    TargetServer::builder()
        .head_timeout(head_timeout)
        .idle_timeout(idle_timeout)
        .start()
        .await
        .expect("the target starts")
}

/// Waits (in runtime turns, bounded) until `listener` has `n` open connections.
pub(crate) async fn open_becomes(target: &TargetServer, listener: Listener, n: u64) -> bool {
    let stats = target.state().metrics.listener(listener);
    for _ in 0..10_000 {
        if stats.open_now() == n {
            return true;
        }
        tokio::task::yield_now().await;
    }
    false
}

/// The admin `/metrics` text.
pub(crate) async fn metrics(target: &TargetServer) -> String {
    reqwest::Client::new()
        .get(target.admin_url("/metrics"))
        .bearer_auth(target.admin_token())
        .send()
        .await
        .expect("metrics answer")
        .text()
        .await
        .expect("text")
}

#[tokio::test]
async fn a_half_sent_opening_is_timed_out_on_every_listener_and_frees_its_connection() {
    let target = target(HEAD_TIMEOUT).await;
    let cases = [
        (
            Listener::Public,
            target.addr(),
            &b"GET /catalog HTTP/1.1\r\nHost: x\r\nUser-Ag"[..],
        ),
        (
            Listener::Pool,
            target.upstream().pool_addr(),
            &b"\r\n\r\n\x00\r\nQUIT\n\x21\x11\x00\x54"[..],
        ),
        (
            Listener::Https,
            target.https_addr(),
            &b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"[..],
        ),
    ];
    for (listener, addr, opening) in cases {
        let (got, _) = raw(addr, opening).await;
        let text = String::from_utf8_lossy(&got);
        assert!(
            got.is_empty() || text.starts_with("HTTP/1.1 408"),
            "{listener:?}: closed without a page: {text}"
        );
        let stats = target.state().metrics.listener(listener);
        assert_eq!(stats.timeouts(), 1, "{listener:?}: counted once");
        assert!(
            open_becomes(&target, listener, 0).await,
            "{listener:?}: nothing held"
        );
    }
    let metrics = metrics(&target).await;
    for listener in ["public", "pool", "https"] {
        let timeouts =
            format!("sessionrange_slow_peer_timeouts_total{{listener=\"{listener}\"}} 1");
        let open = format!("sessionrange_open_connections{{listener=\"{listener}\"}} 0");
        assert!(
            metrics.lines().any(|l| l == timeouts),
            "{timeouts} in\n{metrics}"
        );
        assert!(metrics.lines().any(|l| l == open), "{open} in\n{metrics}");
    }
}

#[tokio::test]
async fn a_prompt_client_on_the_same_target_is_served_while_a_slow_one_waits() {
    // Long enough that the slow peer is still waiting when the check runs.
    let target = target(Duration::from_secs(60)).await;
    let slow = tokio::net::TcpStream::connect(target.https_addr())
        .await
        .expect("connects");
    assert!(open_becomes(&target, Listener::Https, 1).await, "accepted");
    let page = reqwest::get(target.url("/login")).await.expect("answered");
    assert_eq!(page.status(), reqwest::StatusCode::OK);
    let https = target.state().metrics.listener(Listener::Https);
    assert_eq!(https.open_now(), 1, "the slow one is still waiting");
    drop(slow);
    assert!(open_becomes(&target, Listener::Https, 0).await);
    assert_eq!(https.timeouts(), 0, "a peer that left is not a timeout");
}

const REQUEST: &[u8] = b"GET /__range/fingerprint HTTP/1.1\r\nHost: x\r\n\r\n";

/// Reads one response (head and `Content-Length` body) off `s`; `None` if
/// the connection closed first.
async fn response(s: &mut TcpStream) -> Option<String> {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let text = String::from_utf8_lossy(&got).into_owned();
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let length = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length: "))
                .and_then(|v| v.trim().parse::<usize>().ok())
                .unwrap_or(0);
            if body.len() >= length {
                return Some(head.to_owned());
            }
        }
        match s.read(&mut buf).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
}

/// Whether the target closes `s` within `limit`, reading whatever comes.
pub(crate) async fn closes_within(
    s: &mut (impl tokio::io::AsyncRead + Unpin + ?Sized),
    limit: Duration,
) -> bool {
    let mut buf = [0u8; 4096];
    let eof = async {
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    };
    tokio::time::timeout(limit, eof).await.is_ok()
}

/// A connection to the public listener that has had one request answered.
async fn served_once(target: &TargetServer) -> TcpStream {
    let mut s = TcpStream::connect(target.addr()).await.expect("connects");
    s.write_all(REQUEST).await.expect("sends");
    let head = response(&mut s).await.expect("the first answer");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    s
}

#[tokio::test]
async fn a_keep_alive_connection_outlives_the_head_timeout_between_requests() {
    let target = target(HEAD_TIMEOUT).await;
    let mut s = served_once(&target).await;
    // Idle for longer than the head timeout, far less than the idle one.
    tokio::time::sleep(HEAD_TIMEOUT * 3).await;
    s.write_all(REQUEST).await.expect("sends again");
    let again = response(&mut s).await;
    assert!(
        again.is_some_and(|h| h.starts_with("HTTP/1.1 200")),
        "the same connection serves the second request"
    );
    let public = target.state().metrics.listener(Listener::Public);
    assert_eq!(public.timeouts(), 0);
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed_at_the_idle_timeout_and_counted_apart() {
    // The head timeout is far longer, so a close well before it is the idle one.
    let target = with_idle(Duration::from_secs(5), HEAD_TIMEOUT).await;
    let mut s = served_once(&target).await;
    assert!(
        closes_within(&mut s, Duration::from_secs(2)).await,
        "closed once idle"
    );
    assert!(open_becomes(&target, Listener::Public, 0).await);
    let public = target.state().metrics.listener(Listener::Public);
    assert_eq!((public.idle_timeouts(), public.timeouts()), (1, 0));
    let metrics = metrics(&target).await;
    for line in [
        "sessionrange_idle_timeouts_total{listener=\"public\"} 1",
        "sessionrange_slow_peer_timeouts_total{listener=\"public\"} 0",
    ] {
        assert!(metrics.lines().any(|l| l == line), "{line} in\n{metrics}");
    }
}

#[tokio::test]
async fn a_head_begun_after_idling_gets_the_head_timeout_from_its_first_byte() {
    // The idle timeout is far longer, so a close well before it is the head one.
    let target = with_idle(HEAD_TIMEOUT, Duration::from_secs(60)).await;
    let mut s = served_once(&target).await;
    s.write_all(b"GET /account HTTP/1.1\r\nHo")
        .await
        .expect("half a head");
    assert!(
        closes_within(&mut s, Duration::from_secs(2)).await,
        "closed for the slow head"
    );
    assert!(open_becomes(&target, Listener::Public, 0).await);
    let public = target.state().metrics.listener(Listener::Public);
    assert_eq!((public.timeouts(), public.idle_timeouts()), (1, 0));
}

#[tokio::test]
async fn over_https_too_keep_alive_idles_past_the_head_timeout() {
    let target = target(HEAD_TIMEOUT).await;
    let ca = reqwest::Certificate::from_pem(target.ca_pem().as_bytes()).expect("a PEM CA");
    let client = reqwest::Client::builder()
        .add_root_certificate(ca)
        .http1_only()
        .build()
        .expect("a client");
    let url = target.https_url("/__range/fingerprint");
    let https = target.state().metrics.listener(Listener::Https);
    for n in 0..2 {
        let res = client.get(&url).send().await.expect("https answers");
        assert_eq!(res.status(), reqwest::StatusCode::OK, "request {n}");
        res.bytes().await.expect("body");
        tokio::time::sleep(HEAD_TIMEOUT * 3).await;
        assert_eq!(https.open_now(), 1, "one connection, still open after {n}");
    }
    assert_eq!((https.timeouts(), https.idle_timeouts()), (0, 0));
}
