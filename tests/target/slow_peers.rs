//! Slow peers: a half-sent request head, PROXY header or ClientHello is timed out, counted, and holds nothing afterwards.

use std::time::Duration;

use sessionrange::target::TargetServer;
use sessionrange::target::metrics::Listener;

use crate::pool::raw;

/// Short enough to keep the test quick, long enough for a loaded machine
/// to send a whole head well inside it.
const HEAD_TIMEOUT: Duration = Duration::from_millis(150);

async fn target(head_timeout: Duration) -> TargetServer {
    TargetServer::builder()
        .head_timeout(head_timeout)
        .start()
        .await
        .expect("the target starts")
}

/// Waits (in runtime turns, bounded) until `listener` has `n` open connections.
async fn open_becomes(target: &TargetServer, listener: Listener, n: u64) -> bool {
    let stats = target.state().metrics.listener(listener);
    for _ in 0..10_000 {
        if stats.open_now() == n {
            return true;
        }
        tokio::task::yield_now().await;
    }
    false
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
    let metrics = reqwest::Client::new()
        .get(target.admin_url("/metrics"))
        .bearer_auth(target.admin_token())
        .send()
        .await
        .expect("metrics answer")
        .text()
        .await
        .expect("text");
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
