//! Serving accepted connections by hand: plain or TLS, with what the listener knows about its peer.
//!
//! Every listener (plain HTTP, HTTPS, the pool's and the admin API's)
//! accepts here rather than through `axum::serve`. That lets each request carry
//! its raw head (for JA4H), the connection's ClientHello fingerprints and
//! the exit the pool vouched for, and lets slow peers and idle
//! connections (HTTP/1 and h2) be timed out and counted. On shutdown a listener stops accepting and lets its open
//! connections finish what they are serving, as `axum::serve` does.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use futures_util::FutureExt;
use hyper::Version;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use nix::errno::Errno;
use rustls::ServerConfig;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tower::ServiceExt;

use crate::fingerprint;
use crate::site::head_clock::HeadClock;
use crate::site::head_tap::{self, HeadTap, Tapped};
use crate::site::metrics::ListenerStats;
use crate::site::opening::{self, Protocol};
use crate::site::peer::{ConnTls, ContextMemo, Peer, RawHead};
use crate::site::shed::Idlers;
use crate::site::streams::{StreamGuard, Streams, Tracked};
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
    /// Set when `addr` is an exit the pool vouched for.
    pub(crate) via_pool: bool,
    /// Set when `addr` came from a trusted load balancer's PROXY header.
    pub(crate) via_balancer: bool,
    /// The first ClientHello's fingerprints, over TLS.
    pub(crate) tls: Option<ConnTls>,
}

impl PeerFacts {
    /// A peer known by its socket address only.
    pub(crate) fn socket(addr: SocketAddr) -> Self {
        Self {
            addr,
            via_pool: false,
            via_balancer: false,
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
    /// The target's silent connections, every listener's.
    idlers: Arc<Idlers>,
    /// Turns `true` when connections should finish and close.
    drain: watch::Receiver<bool>,
}

impl Listening {
    /// Runs `step` within the head timeout; `None`, counted, if the peer
    /// was too slow, or if it was shed to free a descriptor meanwhile.
    pub(crate) async fn in_time<T>(&self, step: impl Future<Output = T>) -> Option<T> {
        let idling = self.idlers.enter();
        tokio::select! {
            done = tokio::time::timeout(self.head_timeout, step) => {
                if done.is_err() {
                    self.stats.timed_out();
                }
                done.ok()
            }
            () = idling.shed() => {
                self.stats.shed();
                None
            }
        }
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
    (app, timeouts, stats, idlers): (Router, Timeouts, Arc<ListenerStats>, Arc<Idlers>),
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
        idlers,
        drain: draining,
    };
    let mut backoff = ACCEPT_BACKOFF_MIN;
    let mut conns = JoinSet::new();
    tokio::pin!(stop);
    loop {
        tokio::select! {
            () = &mut stop => break,
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
            accepted = listener.accept() => {
                let (stream, addr) = match accepted {
                    Ok(accepted) => accepted,
                    Err(e) => {
                        backoff = accept_failed(&e, backoff, &listening.idlers).await;
                        continue;
                    }
                };
                backoff = ACCEPT_BACKOFF_MIN;
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

/// What every request of one connection carries into the router.
struct ConnFacts {
    heads: HeadTap,
    memo: Arc<ContextMemo>,
    facts: PeerFacts,
    /// Counted for h2 only: HTTP/1 idles on the [`HeadClock`].
    streams: Option<Streams>,
}

impl ConnFacts {
    /// Gives `req` its [`Peer`] (with its raw head): one extension, so a
    /// request costs one insertion, not one per fact; returns the guard
    /// of its h2 stream.
    fn attach(&self, req: &mut hyper::Request<Incoming>) -> Option<StreamGuard> {
        let head = match req.version() {
            Version::HTTP_10 | Version::HTTP_11 => self.heads.take_head(req.method().as_str()),
            _ => Some(head_tap::synthesize(req.method().as_str(), req.headers())),
        };
        let peer = Peer {
            addr: self.facts.addr,
            via_pool: self.facts.via_pool,
            via_balancer: self.facts.via_balancer,
            tls: self.facts.tls.as_ref().map(|t| Arc::clone(&t.0)),
            head: head.map(|h| Arc::new(RawHead::new(h))),
            memo: Some(Arc::clone(&self.memo)),
        };
        req.extensions_mut().insert(peer);
        self.streams.as_ref().map(Streams::open)
    }
}

/// The first wait after `accept` failed for want of descriptors or memory.
const ACCEPT_BACKOFF_MIN: Duration = Duration::from_millis(10);
/// The longest wait; it doubles up to this while `accept` keeps failing.
const ACCEPT_BACKOFF_MAX: Duration = Duration::from_millis(160);
/// Silent connections shed each time `accept` runs out of descriptors.
const SHED_BATCH: usize = 16;

/// After a failed `accept`: when descriptors (or kernel memory) ran out,
/// sheds the oldest silent connections and waits `backoff`, rather than
/// spinning on a listener that stays readable; returns the next backoff.
/// Other errors (a peer that reset while queued) retry at once.
async fn accept_failed(e: &std::io::Error, backoff: Duration, idlers: &Idlers) -> Duration {
    if !out_of_descriptors(e) {
        return ACCEPT_BACKOFF_MIN;
    }
    idlers.shed_oldest(SHED_BATCH);
    back_off(backoff).await
}

/// Whether a failed `accept` ran out of descriptors or kernel memory: the
/// listener stays readable, so accepting again at once would spin.
pub(crate) fn out_of_descriptors(e: &std::io::Error) -> bool {
    [Errno::EMFILE, Errno::ENFILE, Errno::ENOBUFS, Errno::ENOMEM]
        .iter()
        .any(|errno| e.raw_os_error() == Some(*errno as i32))
}

/// Waits `backoff`; returns the next, doubled up to the longest.
pub(crate) async fn back_off(backoff: Duration) -> Duration {
    tokio::time::sleep(backoff).await;
    (backoff * 2).min(ACCEPT_BACKOFF_MAX)
}

/// The first wait of [`back_off`].
pub(crate) const FIRST_BACKOFF: Duration = ACCEPT_BACKOFF_MIN;

/// Serves HTTP/1.1 or h2 on `io` until the peer goes, idles too long or
/// the listener drains. The opening (the bytes that tell the protocol; for
/// h2 the preface and SETTINGS) must come within the head timeout. Each
/// request carries its head as sent (see [`RawHead`]).
pub(crate) async fn serve<I>(io: I, listening: Listening, facts: PeerFacts)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let tap = HeadTap::default();
    let mut io = Tapped::new(io, tap.clone());
    let Some(Some((protocol, opening))) = listening.in_time(opening::read(&mut io)).await else {
        return;
    };
    let streams = (protocol == Protocol::H2).then(Streams::default);
    let conn_facts = Arc::new(ConnFacts {
        heads: tap.clone(),
        memo: Arc::new(ContextMemo::default()),
        facts,
        streams: streams.clone(),
    });
    let app = listening.app.clone();
    let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
        let stream = conn_facts.attach(&mut req);
        let answer = app.clone().oneshot(req);
        answer.map(|res| res.map(|r| r.map(|body| Tracked::new(body, stream))))
    });
    let clock = HeadClock::new(tap, listening.idle_timeout);
    let builder = builder(&listening, clock.clone(), protocol);
    let io = TokioIo::new(Prefixed::new(opening, io));
    let conn = builder.serve_connection_with_upgrades(io, service);
    tokio::pin!(conn);
    let idle = idle_h2(streams, listening.idle_timeout);
    let (result, idled) = tokio::select! {
        result = conn.as_mut() => (result, false),
        () = draining(listening.drain.clone()) => {
            conn.as_mut().graceful_shutdown();
            (conn.await, false)
        }
        () = idle => {
            // A peer that never answers the GOAWAY's PING must not hold on.
            conn.as_mut().graceful_shutdown();
            let _ = tokio::time::timeout(listening.head_timeout, conn).await;
            (Ok(()), true)
        }
    };
    let timed_out = result.err().is_some_and(|e| {
        e.downcast_ref::<hyper::Error>()
            .is_some_and(hyper::Error::is_timeout)
    });
    if idled || clock.idle_expired() {
        listening.stats.idle_timed_out();
    } else if timed_out {
        listening.stats.timed_out();
    }
}

/// Resolves when an h2 connection has had no open stream for `idle`;
/// never for HTTP/1, whose idle wait runs on its [`HeadClock`].
async fn idle_h2(streams: Option<Streams>, idle: Duration) {
    match streams {
        Some(streams) => streams.idle_for(idle).await,
        None => std::future::pending().await,
    }
}

/// The largest h2 header list (after HPACK decoding) a request may carry.
/// With 16 KiB frames it also caps a header block at 5 CONTINUATION frames.
pub(crate) const H2_MAX_HEADER_LIST: u32 = 32 * 1024;
/// Streams one h2 connection may have open at once (nginx's default is 128).
pub(crate) const H2_MAX_CONCURRENT_STREAMS: u32 = 128;
/// Streams the client may reset before the server accepted them, at once,
/// before the connection is closed with `ENHANCE_YOUR_CALM`: the rapid
/// reset defence (h2's own default).
pub(crate) const H2_MAX_PENDING_RESETS: usize = 20;
/// Streams the server may reset for a client's protocol errors before the
/// connection is closed with `ENHANCE_YOUR_CALM` (hyper's default).
pub(crate) const H2_MAX_ERROR_RESETS: usize = 1024;
/// Response bytes buffered per stream for a client that does not read.
pub(crate) const H2_MAX_SEND_BUF: usize = 64 * 1024;

/// HTTP/1.1 or h2, whichever the opening said, so hyper never detects the
/// version itself (without a time limit). Over HTTP/1 the header-read
/// timeout runs on `clock`, which allows the idle timeout before a head's
/// first byte. Over h2, the limits above apply, and a PING every idle
/// timeout that is not answered within the head timeout closes the
/// connection; a connection with no open stream is closed by `serve`.
fn builder(
    listening: &Listening,
    clock: HeadClock,
    protocol: Protocol,
) -> auto::Builder<TokioExecutor> {
    let builder = auto::Builder::new(TokioExecutor::new());
    let mut builder = match protocol {
        Protocol::Http1 => builder.http1_only(),
        Protocol::H2 => builder.http2_only(),
    };
    builder
        .http1()
        .timer(clock)
        .header_read_timeout(listening.head_timeout);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size(H2_MAX_HEADER_LIST)
        .max_concurrent_streams(H2_MAX_CONCURRENT_STREAMS)
        .max_pending_accept_reset_streams(H2_MAX_PENDING_RESETS)
        .max_local_error_reset_streams(H2_MAX_ERROR_RESETS)
        .max_send_buf_size(H2_MAX_SEND_BUF)
        .keep_alive_interval(listening.idle_timeout)
        .keep_alive_timeout(listening.head_timeout);
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
