//! Serving one accepted connection by hand: plain or TLS, with what the listener knows about its peer.
//!
//! The public plain-HTTP listener goes through `axum::serve`. The pool
//! listener (PROXY header first) and the HTTPS listener (ClientHello read
//! first) accept by hand, and then serve the same router here, with the
//! peer's address, its exit and its TLS fingerprints set on every request.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::Version;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use rustls::ServerConfig;
use std::future::Future;
use tokio::io::{AsyncRead, AsyncWrite};

use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tower::ServiceExt;

use crate::fingerprint;
use crate::target::head_tap::{HeadTap, Tapped};
use crate::target::peer::{ConnJa4h, ConnTls, PoolExit};
use crate::tls::{HelloRead, Prefixed, read_client_hello};

/// How long a peer may take to send a request head, or its ClientHello.
pub(crate) const HEAD_TIMEOUT: Duration = Duration::from_secs(5);

/// Who is on the other end, as the listener learnt it.
#[derive(Clone, Debug)]
pub(crate) struct PeerFacts {
    /// The socket peer, or the exit the pool vouched for.
    pub(crate) addr: SocketAddr,
    /// Set when the pool vouched for `addr`.
    pub(crate) exit: Option<PoolExit>,
    /// The first ClientHello's fingerprints, over TLS.
    pub(crate) tls: Option<ConnTls>,
}

/// Accepts connections until `stop` resolves and hands each to `handle`
/// in a task of its own; returning drops every open connection.
pub(crate) async fn accept_loop<F, Fut>(
    listener: TcpListener,
    stop: impl Future<Output = ()>,
    mut handle: F,
) -> std::io::Result<()>
where
    F: FnMut(TcpStream, SocketAddr) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let mut conns = JoinSet::new();
    tokio::pin!(stop);
    loop {
        tokio::select! {
            () = &mut stop => return Ok(()),
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
            accepted = listener.accept() => {
                let Ok((stream, addr)) = accepted else { continue };
                let _ = stream.set_nodelay(true);
                conns.spawn(handle(stream, addr));
            }
        }
    }
}

/// Serves HTTP/1.1 or h2 on `io` until the peer goes. Over HTTP/1 the
/// raw request heads are tapped for JA4H, with header case and order as sent.
pub(crate) async fn serve<I>(io: I, app: Router, facts: PeerFacts)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let tap = HeadTap::default();
    let heads = tap.clone();
    let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
        let http1 = matches!(req.version(), Version::HTTP_10 | Version::HTTP_11);
        let head = http1
            .then(|| heads.take_head(req.method().as_str()))
            .flatten();
        let ja4h = head.and_then(|h| fingerprint::http1(&h).ok());
        let ext = req.extensions_mut();
        if let Some(ja4h) = ja4h {
            ext.insert(ConnJa4h(Arc::new(ja4h)));
        }
        ext.insert(ConnectInfo::<SocketAddr>(facts.addr));
        if let Some(exit) = facts.exit {
            ext.insert(exit);
        }
        if let Some(tls) = &facts.tls {
            ext.insert(tls.clone());
        }
        app.clone().oneshot(req)
    });
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(HEAD_TIMEOUT);
    let _ = builder
        .serve_connection_with_upgrades(TokioIo::new(Tapped::new(io, tap)), service)
        .await;
}

/// Reads the first ClientHello (bounded in time), fingerprints it, replays
/// it into rustls and serves the decrypted connection. Anything that is
/// not a TLS client hello, or a handshake that fails, closes the connection.
pub(crate) async fn serve_tls(
    mut stream: TcpStream,
    config: Arc<ServerConfig>,
    app: Router,
    mut facts: PeerFacts,
) {
    let read = tokio::time::timeout(HEAD_TIMEOUT, read_client_hello(&mut stream)).await;
    let Ok(HelloRead::Hello(hello)) = read else {
        return;
    };
    facts.tls = fingerprint::tls(&hello).ok().map(|f| ConnTls(Arc::new(f)));
    let acceptor = tokio_rustls::TlsAcceptor::from(config);
    let handshake = acceptor.accept(Prefixed::new(hello, stream));
    let Ok(Ok(tls)) = tokio::time::timeout(HEAD_TIMEOUT, handshake).await else {
        return;
    };
    serve(tls, app, facts).await;
}
