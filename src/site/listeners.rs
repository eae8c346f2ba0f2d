//! The client-facing listeners: plain HTTP, HTTPS, and the pool's (each connection opens with a PROXY v2 header).
//!
//! The public listeners read a PROXY header (v1 or v2) only from the load
//! balancers `target.proxy_protocol_from` lists, and require one from
//! them; from anyone else a header is just a malformed request. The pool
//! listener reads exactly one header per
//! connection, checks the run's pool secret, and then serves the same
//! router with the exit address in place of the socket peer.

use std::future::Future;
use std::sync::Arc;

use axum::Router;
use tokio::net::{TcpListener, TcpStream};

use crate::proxy_protocol;
use crate::site::conn::{self, Listening, PeerFacts};
use crate::site::metrics::Listener;
use crate::site::state::TargetState;

/// Accepts connections on `listener` until `stop` resolves, then drains
/// them. Public connections are served as they come; HTTPS ones have
/// their first ClientHello read and fingerprinted before rustls sees it;
/// pool ones start with a PROXY header, then carry plain HTTP or the TLS
/// of a client's CONNECT tunnel.
pub(crate) async fn serve_listener(
    state: Arc<TargetState>,
    listener: TcpListener,
    which: Listener,
    app: Router,
    stop: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let stats = Arc::clone(state.metrics.listener(which));
    let timeouts = conn::Timeouts {
        head: state.head_timeout,
        idle: state.idle_timeout,
    };
    let settings = (app, timeouts, stats, Arc::clone(&state.idlers));
    conn::accept_loop(listener, settings, stop, move |stream, addr, l| {
        let state = Arc::clone(&state);
        async move {
            let balanced = matches!(which, Listener::Public | Listener::Https)
                && state.config.proxy_protocol_from.contains(addr.ip());
            if balanced {
                return balancer_connection(state, stream, l, which).await;
            }
            match which {
                Listener::Public | Listener::Admin => {
                    conn::serve(stream, l, PeerFacts::socket(addr)).await
                }
                Listener::Https => {
                    let config = state.tls.server.clone();
                    conn::serve_tls(stream, config, l, PeerFacts::socket(addr)).await;
                }
                Listener::Pool => pool_connection(state, stream, l).await,
            }
        }
    })
    .await
}

/// A connection from a trusted load balancer: its PROXY header (v1 or v2)
/// names the client, then the client's own HTTP or TLS follows, whose
/// ClientHello is fingerprinted as if it came straight. A connection
/// without a valid header in time is dropped unanswered.
async fn balancer_connection(
    state: Arc<TargetState>,
    mut stream: TcpStream,
    l: Listening,
    which: Listener,
) {
    let read = l.in_time(proxy_protocol::read_trusted(&mut stream));
    let Some(Ok(client)) = read.await else {
        return;
    };
    let socket = stream.peer_addr();
    let Some(addr) = client.or(socket.ok()) else {
        return;
    };
    let facts = PeerFacts {
        addr,
        via_pool: false,
        via_balancer: client.is_some(),
        tls: None,
    };
    match which {
        Listener::Https => conn::serve_tls(stream, state.tls.server.clone(), l, facts).await,
        _ => conn::serve(stream, l, facts).await,
    }
}

async fn pool_connection(state: Arc<TargetState>, mut stream: TcpStream, l: Listening) {
    let read = l.in_time(proxy_protocol::read(&mut stream, &state.pool_secret));
    // Anything but a header with this run's secret is dropped unanswered:
    // only the pool speaks here, and nobody else deserves a diagnosis.
    let Some(Ok(exit)) = read.await else {
        return;
    };
    let facts = PeerFacts {
        addr: exit,
        via_pool: true,
        via_balancer: false,
        tls: None,
    };
    // Through a CONNECT tunnel the client speaks TLS to us: its own hello.
    // Within the head timeout: a pool node that opened the connection and
    // then sent nothing must not hold it.
    let mut first = [0u8; 1];
    match l.in_time(stream.peek(&mut first)).await {
        Some(Ok(1)) if first[0] == 0x16 => {
            conn::serve_tls(stream, state.tls.server.clone(), l, facts).await
        }
        Some(Ok(1)) => conn::serve(stream, l, facts).await,
        _ => {}
    }
}
