//! The servers under load: the target and its pool, the static floor over HTTP and HTTPS, and a bare TCP relay.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use axum::Router;
use axum::http::{HeaderValue, header};
use axum::routing::get;
use axum::serve::ListenerExt;
use bytes::Bytes;
use rustls::ServerConfig;
use sessionrange::pool::{PoolConfig, ProxyPool};
use sessionrange::{TargetConfig, TargetServer};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

/// The pool: one static exit on a residential fixture address, with
/// credentials, as a client of a paid proxy pool uses it.
const POOL: &str = r#"
    user = "bench"
    password = "bench"
    [[exits]]
    name = "home"
    ip = "127.0.1.20"
"#;

/// The pool's credentials, `user:password`.
pub(crate) const POOL_USER: &str = "bench:bench";

/// The page the floor serves: the target's bytes and Content-Type.
#[derive(Clone, Debug)]
pub(crate) struct Page {
    /// The response body, exactly as the target sent it.
    pub(crate) body: Bytes,
    /// The target's Content-Type.
    pub(crate) content_type: HeaderValue,
}

/// The target with its trace appended to `trace`, and a pool in front of it.
pub(crate) async fn target(config: TargetConfig, trace: &Path) -> (TargetServer, ProxyPool) {
    let target = TargetServer::builder()
        .config(config)
        .trace(trace)
        .start()
        .await
        .expect("the target starts");
    let pool_config: PoolConfig = toml::from_str(POOL).expect("the pool's config");
    let pool = ProxyPool::start(&pool_config, target.upstream())
        .await
        .expect("the pool starts");
    (target, pool)
}

/// The static floor: `GET /api/v1/items` answers `page`, whatever the
/// query, with no state, no session and no trace.
fn floor_app(page: Page) -> Router {
    let handler = move || {
        let page = page.clone();
        async move { ([(header::CONTENT_TYPE, page.content_type)], page.body) }
    };
    Router::new().route("/api/v1/items", get(handler))
}

/// Serves the floor over plain HTTP with `axum::serve` (TCP_NODELAY, as
/// the target sets it).
pub(crate) async fn floor(page: Page) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind the floor");
    let addr = listener.local_addr().expect("the floor's address");
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    tokio::spawn(async move { axum::serve(listener, floor_app(page)).await });
    addr
}

/// Serves the floor over TLS with the target's rustls configuration (its
/// certificate, ALPN and no resumption), still with `axum::serve`.
pub(crate) async fn https_floor(page: Page, tls: Arc<ServerConfig>) -> SocketAddr {
    let tcp = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind the HTTPS floor");
    let addr = tcp.local_addr().expect("the HTTPS floor's address");
    let listener = TlsListener {
        tcp,
        acceptor: TlsAcceptor::from(tls),
    };
    tokio::spawn(async move { axum::serve(listener, floor_app(page)).await });
    addr
}

/// A TCP listener whose connections are handed over after the TLS handshake.
struct TlsListener {
    /// Where connections arrive.
    tcp: TcpListener,
    /// The target's rustls configuration.
    acceptor: TlsAcceptor,
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let Ok((tcp, addr)) = self.tcp.accept().await else {
                continue;
            };
            let _ = tcp.set_nodelay(true);
            if let Ok(tls) = self.acceptor.accept(tcp).await {
                return (tls, addr);
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.tcp.local_addr()
    }
}

/// A bare TCP relay to `to` (accept, connect, copy both ways): the floor
/// of any extra hop on this machine, for the proxy's added latency.
pub(crate) async fn tcp_relay(to: SocketAddr) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind the relay");
    let addr = listener.local_addr().expect("the relay's address");
    tokio::spawn(async move {
        while let Ok((mut client, _)) = listener.accept().await {
            tokio::spawn(async move {
                let _ = client.set_nodelay(true);
                let mut up = TcpStream::connect(to).await.expect("the relay's upstream");
                let _ = up.set_nodelay(true);
                let _ = tokio::io::copy_bidirectional(&mut client, &mut up).await;
            });
        }
    });
    addr
}
