//! Serving accepted connections by hand: plain or TLS, with what the listener knows about its peer.
//!
//! The client-facing listeners (plain HTTP, HTTPS and the pool's) accept
//! here rather than through `axum::serve`. That lets each request carry
//! its raw head (for JA4H), the connection's ClientHello fingerprints and
//! the exit the pool vouched for, and lets slow peers be timed out and
//! counted. On shutdown a listener stops accepting and lets its open
//! connections finish what they are serving, as `axum::serve` does.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::Version;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use rustls::ServerConfig;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tower::ServiceExt;

use crate::fingerprint;
use crate::target::head_clock::HeadClock;
use crate::target::head_tap::{self, HeadTap, Tapped};
use crate::target::metrics::ListenerStats;
use crate::target::peer::{ConnTls, ContextMemo, PoolExit, RawHead};
use crate::tls::{HelloRead, Prefixed, read_client_hello};

/// How long a peer may take, by default, to send a request head (from its
/// first byte), a PROXY header or its ClientHello, and to finish the TLS
/// handshake.
pub(crate) const DEFAULT_HEAD_TIMEOUT: Duration = Duration::from_secs(5);

/// How long, by default, a keep-alive connection may idle between the end
/// of a response and the first byte of the next request head: nginx's
/// `keepalive_timeout`.
pub(crate) const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(75);

/// The two waits a client-facing listener allows.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Timeouts {
    /// See [`DEFAULT_HEAD_TIMEOUT`].
    pub(crate) head: Duration,
    /// See [`DEFAULT_IDLE_TIMEOUT`].
    pub(crate) idle: Duration,
}

/// How long open connections get to finish after shutdown is asked for;
/// whatever is still open then is dropped.
const DRAIN_LIMIT: Duration = Duration::from_secs(10);

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

impl PeerFacts {
    /// A peer known by its socket address only.
    pub(crate) fn socket(addr: SocketAddr) -> Self {
        Self {
            addr,
            exit: None,
            tls: None,
        }
    }
}

/// What every connection of one listener shares.
#[derive(Clone, Debug)]
pub(crate) struct Listening {
    /// The router requests go to.
    pub(crate) app: Router,
    /// See [`DEFAULT_HEAD_TIMEOUT`].
    pub(crate) head_timeout: Duration,
    /// See [`DEFAULT_IDLE_TIMEOUT`].
    pub(crate) idle_timeout: Duration,
    /// This listener's connection counts.
    pub(crate) stats: Arc<ListenerStats>,
    /// Turns `true` when connections should finish and close.
    drain: watch::Receiver<bool>,
}

impl Listening {
    /// Runs `step` within the head timeout; `None`, counted, if the peer was too slow.
    pub(crate) async fn in_time<T>(&self, step: impl Future<Output = T>) -> Option<T> {
        let done = tokio::time::timeout(self.head_timeout, step).await;
        if done.is_err() {
            self.stats.timed_out();
        }
        done.ok()
    }
}

/// Accepts connections until `stop` resolves and hands each to `handle`
/// in a task of its own. Then it stops accepting, asks open connections
/// to finish (idle keep-alive ones close at once) and waits for them, at
/// most [`DRAIN_LIMIT`].
///
/// Connections go to `app`, get the head timeout for their opening and
/// each request head and the idle timeout between requests, and are
/// counted in `stats`.
pub(crate) async fn accept_loop<F, Fut>(
    listener: TcpListener,
    (app, timeouts, stats): (Router, Timeouts, Arc<ListenerStats>),
    stop: impl Future<Output = ()>,
    mut handle: F,
) -> std::io::Result<()>
where
    F: FnMut(TcpStream, SocketAddr, Listening) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let (drain, draining) = watch::channel(false);
    let listening = Listening {
        app,
        head_timeout: timeouts.head,
        idle_timeout: timeouts.idle,
        stats,
        drain: draining,
    };
    let mut conns = JoinSet::new();
    tokio::pin!(stop);
    loop {
        tokio::select! {
            () = &mut stop => break,
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
            accepted = listener.accept() => {
                let Ok((stream, addr)) = accepted else { continue };
                let _ = stream.set_nodelay(true);
                let open = listening.stats.open();
                let served = handle(stream, addr, listening.clone());
                conns.spawn(async move {
                    served.await;
                    drop(open);
                });
            }
        }
    }
    drop(listener);
    let _ = drain.send(true);
    let finished = async { while conns.join_next().await.is_some() {} };
    let _ = tokio::time::timeout(DRAIN_LIMIT, finished).await;
    Ok(())
}

/// Serves HTTP/1.1 or h2 on `io` until the peer goes or the listener
/// drains. Each request carries its head as sent (see [`RawHead`]).
pub(crate) async fn serve<I>(io: I, listening: Listening, facts: PeerFacts)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let tap = HeadTap::default();
    let heads = tap.clone();
    let memo = Arc::new(ContextMemo::default());
    let app = listening.app.clone();
    let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
        let head = match req.version() {
            Version::HTTP_10 | Version::HTTP_11 => heads.take_head(req.method().as_str()),
            _ => Some(head_tap::synthesize(req.method().as_str(), req.headers())),
        };
        let ext = req.extensions_mut();
        if let Some(head) = head {
            ext.insert(Arc::new(RawHead::new(head)));
        }
        ext.insert(Arc::clone(&memo));
        ext.insert(ConnectInfo::<SocketAddr>(facts.addr));
        if let Some(exit) = facts.exit {
            ext.insert(exit);
        }
        if let Some(tls) = &facts.tls {
            ext.insert(tls.clone());
        }
        app.clone().oneshot(req)
    });
    let clock = HeadClock::new(tap.clone(), listening.idle_timeout);
    let builder = builder(&listening, clock.clone());
    let conn = builder.serve_connection_with_upgrades(TokioIo::new(Tapped::new(io, tap)), service);
    tokio::pin!(conn);
    let result = tokio::select! {
        result = conn.as_mut() => result,
        () = draining(listening.drain.clone()) => {
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    };
    let timed_out = result.err().is_some_and(|e| {
        e.downcast_ref::<hyper::Error>()
            .is_some_and(hyper::Error::is_timeout)
    });
    if clock.idle_expired() {
        listening.stats.idle_timed_out();
    } else if timed_out {
        listening.stats.timed_out();
    }
}

/// HTTP/1.1 and h2. Over HTTP/1 the header-read timeout runs on `clock`,
/// which allows the idle timeout before a head's first byte. hyper's h2
/// server has no header or idle timeout: an idle h2 connection stays open
/// until the client closes it or the listener drains.
fn builder(listening: &Listening, clock: HeadClock) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(clock)
        .header_read_timeout(listening.head_timeout);
    builder
}

/// Resolves when the listener asks its connections to finish.
async fn draining(mut drain: watch::Receiver<bool>) {
    let _ = drain.wait_for(|d| *d).await;
}

/// Reads the first ClientHello (bounded in time), fingerprints it, replays
/// it into rustls and serves the decrypted connection. Anything that is
/// not a TLS client hello, or a handshake that fails, closes the connection.
pub(crate) async fn serve_tls(
    mut stream: TcpStream,
    config: Arc<ServerConfig>,
    listening: Listening,
    mut facts: PeerFacts,
) {
    let read = listening.in_time(read_client_hello(&mut stream)).await;
    let Some(HelloRead::Hello(hello)) = read else {
        return;
    };
    facts.tls = fingerprint::tls(&hello).ok().map(|f| ConnTls(Arc::new(f)));
    let acceptor = tokio_rustls::TlsAcceptor::from(config);
    let handshake = acceptor.accept(Prefixed::new(hello, stream));
    let Some(Ok(tls)) = listening.in_time(handshake).await else {
        return;
    };
    serve(tls, listening, facts).await;
}
