//! Hostile peers on every listener: silent, half-sent and idle connections are closed and counted.
//!
//! Each listener (public, HTTPS, pool, admin) gets the same openings: nothing
//! at all, half an HTTP/1 head, half an h2 preface, a whole preface and
//! nothing more, and a preface with its SETTINGS and then nothing. The
//! first four never finish an opening and are closed at the head timeout
//! as slow peers; the last is an h2 connection at rest, closed at the idle
//! timeout and counted as idle.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

use sessionrange::TargetServer;
use sessionrange::proxy_protocol;
use sessionrange::site::metrics::Listener;

use crate::slow_peers::{closes_within, open_becomes};

/// Short, so the test is quick; long enough for a loaded machine to send
/// a few bytes well inside it.
pub(crate) const HEAD: Duration = Duration::from_millis(200);
/// Twice the head timeout, so an idle close cannot pass for a slow one.
pub(crate) const IDLE: Duration = Duration::from_millis(400);
/// Far beyond either timeout: a connection still open then is never closed.
const LIMIT: Duration = Duration::from_secs(5);

/// The h2 connection preface.
pub(crate) const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
/// An empty SETTINGS frame.
pub(crate) const SETTINGS: &[u8] = &[0, 0, 0, 0x4, 0, 0, 0, 0, 0];

/// A byte stream to a listener, plain or TLS.
pub(crate) trait Duplex: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Duplex for T {}

/// A target with the short timeouts.
pub(crate) async fn short_target() -> TargetServer {
    TargetServer::builder()
        .head_timeout(HEAD)
        .idle_timeout(IDLE)
        .start()
        .await
        .expect("the target starts")
}

/// A connection to `listener` where HTTP begins: after the PROXY header
/// on the pool listener, after the TLS handshake (ALPN h2 offered first)
/// on HTTPS.
pub(crate) async fn connect(target: &TargetServer, listener: Listener) -> Box<dyn Duplex> {
    let addr = match listener {
        Listener::Public => target.addr(),
        Listener::Https => target.https_addr(),
        Listener::Pool => target.upstream().pool_addr(),
        Listener::Admin => target.admin(),
    };
    let mut tcp = TcpStream::connect(addr).await.expect("connects");
    match listener {
        Listener::Https => Box::new(tls(target, tcp).await),
        Listener::Pool => {
            let exit = SocketAddr::from(([127, 0, 1, 20], 40_000));
            let header = proxy_protocol::encode(exit, addr, &target.state().pool_secret);
            tcp.write_all(&header).await.expect("the PROXY header");
            Box::new(tcp)
        }
        _ => Box::new(tcp),
    }
}

/// A TLS client session that trusts the target's CA and offers h2 first.
async fn tls(target: &TargetServer, tcp: TcpStream) -> tokio_rustls::client::TlsStream<TcpStream> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in pem::parse_many(target.ca_pem()).expect("a PEM CA") {
        roots
            .add(CertificateDer::from(cert.into_contents()))
            .expect("a CA certificate");
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let name = ServerName::try_from("localhost").expect("a server name");
    tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
        .expect("the TLS handshake")
}

/// How long the target took to close `s` (reading and dropping whatever
/// it sends); `None` if it was still open after [`LIMIT`].
pub(crate) async fn time_to_close(s: &mut dyn Duplex, start: Instant) -> Option<Duration> {
    closes_within(s, LIMIT).await.then(|| start.elapsed())
}

/// Waits (in runtime turns, bounded) until `listener` has nothing open.
pub(crate) async fn none_open(target: &TargetServer, listener: Listener) -> bool {
    open_becomes(target, listener, 0).await
}

/// The openings, and whether each is an idle connection (else a slow one).
fn openings() -> Vec<(&'static str, Vec<u8>, bool)> {
    vec![
        ("nothing", Vec::new(), false),
        (
            "half an HTTP/1 head",
            b"GET /login HTTP/1.1\r\nHo".to_vec(),
            false,
        ),
        ("half a preface", PREFACE[..11].to_vec(), false),
        ("a preface and nothing", PREFACE.to_vec(), false),
        ("preface and SETTINGS", [PREFACE, SETTINGS].concat(), true),
    ]
}

/// Sends `opening` to `listener` and says how long the target took to close it.
async fn left_open(target: &TargetServer, listener: Listener, opening: &[u8]) -> Option<Duration> {
    let mut s = connect(target, listener).await;
    let start = Instant::now();
    s.write_all(opening).await.expect("the opening is sent");
    time_to_close(&mut *s, start).await
}

#[tokio::test]
async fn silent_and_half_sent_openings_are_closed_on_every_listener_and_counted() {
    let target = short_target().await;
    let listeners = [
        Listener::Public,
        Listener::Https,
        Listener::Pool,
        Listener::Admin,
    ];
    let mut cases = Vec::new();
    let shared = &target;
    for listener in listeners {
        for (name, opening, idle) in openings() {
            cases.push(async move {
                let took = left_open(shared, listener, &opening).await;
                (listener, name, idle, took)
            });
        }
    }
    for (listener, name, idle, took) in futures_util::future::join_all(cases).await {
        let took = took.unwrap_or_else(|| panic!("{listener:?}, {name}: never closed"));
        let least = if idle { IDLE } else { HEAD };
        assert!(
            took >= least,
            "{listener:?}, {name}: closed early, {took:?}"
        );
    }
    for listener in listeners {
        assert!(
            none_open(&target, listener).await,
            "{listener:?}: nothing held"
        );
        let stats = target.state().metrics.listener(listener);
        assert_eq!(
            (stats.timeouts(), stats.idle_timeouts()),
            (4, 1),
            "{listener:?}: four slow peers and one idle connection"
        );
    }
    let metrics = crate::slow_peers::metrics(&target).await;
    for line in [
        "sessionrange_slow_peer_timeouts_total{listener=\"admin\"} 4",
        "sessionrange_slow_peer_timeouts_total{listener=\"https\"} 4",
    ] {
        assert!(metrics.lines().any(|l| l == line), "{line} in\n{metrics}");
    }
}

/// An h2 client connection (prior knowledge or ALPN h2) to `listener`,
/// with its connection task; the task ends when the target closes it.
async fn h2_client(
    target: &TargetServer,
    listener: Listener,
) -> (
    hyper::client::conn::http2::SendRequest<http_body_util::Empty<bytes::Bytes>>,
    tokio::task::JoinHandle<()>,
) {
    let io = hyper_util::rt::TokioIo::new(connect(target, listener).await);
    let (send, conn) =
        hyper::client::conn::http2::handshake(hyper_util::rt::TokioExecutor::new(), io)
            .await
            .expect("the h2 handshake");
    let task = tokio::spawn(async move {
        let _ = conn.await;
    });
    (send, task)
}

/// A GET of `path` on `authority`, with the admin token.
fn get(target: &TargetServer, path: &str) -> hyper::Request<http_body_util::Empty<bytes::Bytes>> {
    hyper::Request::get(format!("http://localhost{path}"))
        .header("authorization", format!("Bearer {}", target.admin_token()))
        .body(http_body_util::Empty::new())
        .expect("a request")
}

#[tokio::test]
async fn an_h2_connection_with_no_open_stream_is_closed_at_the_idle_timeout() {
    let target = short_target().await;
    for listener in [Listener::Public, Listener::Https] {
        let (mut send, task) = h2_client(&target, listener).await;
        let res = send
            .send_request(get(&target, "/__range/fingerprint"))
            .await;
        assert_eq!(res.expect("answered").status(), 200, "{listener:?}");
        let start = Instant::now();
        tokio::time::timeout(LIMIT, task)
            .await
            .unwrap_or_else(|_| panic!("{listener:?}: an idle h2 connection stays open"))
            .expect("the client task");
        // The server's idle clock starts when it finished the stream, a
        // little before the client read the answer; the counts below say
        // which timer closed the connection.
        assert!(
            start.elapsed() >= IDLE - HEAD / 2,
            "{listener:?}: not before the idle timeout"
        );
        assert!(none_open(&target, listener).await);
        let stats = target.state().metrics.listener(listener);
        assert_eq!(
            (stats.idle_timeouts(), stats.timeouts()),
            (1, 0),
            "{listener:?}"
        );
    }
}

#[tokio::test]
async fn an_h2_stream_that_stays_open_keeps_its_connection_past_the_idle_timeout() {
    let target = short_target().await;
    let (mut send, task) = h2_client(&target, Listener::Admin).await;
    let res = send.send_request(get(&target, "/events?follow=true")).await;
    let res = res.expect("the event stream answers");
    assert_eq!(res.status(), 200);
    tokio::time::sleep(IDLE * 3).await;
    assert!(
        !task.is_finished(),
        "a following stream keeps the connection"
    );
    drop(res);
    tokio::time::timeout(LIMIT, task)
        .await
        .expect("closed once the stream ended and the idle timeout passed")
        .expect("the client task");
}
