//! The listeners accepted by hand: the pool's (each connection opens with a PROXY v2 header) and HTTPS.
//!
//! The public listener never reads PROXY headers; to it they are just a
//! malformed request. This one reads exactly one header per connection,
//! checks the run's pool secret, and then serves the same router with the
//! exit address in place of the socket peer.

use std::sync::Arc;

use axum::Router;
use tokio::net::{TcpListener, TcpStream};

use crate::proxy_protocol;
use crate::target::conn::{self, HEAD_TIMEOUT, PeerFacts};
use crate::target::peer::PoolExit;
use crate::target::state::TargetState;

/// Accepts pool connections until `stop` resolves; open connections are
/// dropped with the returned future. After the PROXY header a connection
/// carries plain HTTP, or TLS from a client's CONNECT tunnel.
pub(crate) async fn serve_pool(
    state: Arc<TargetState>,
    listener: TcpListener,
    app: Router,
    stop: impl std::future::Future<Output = ()>,
) -> std::io::Result<()> {
    conn::accept_loop(listener, stop, move |stream, _| {
        connection(Arc::clone(&state), stream, app.clone())
    })
    .await
}

/// Accepts HTTPS connections until `stop` resolves: each one's first
/// ClientHello is read and fingerprinted before rustls sees it.
pub(crate) async fn serve_https(
    state: Arc<TargetState>,
    listener: TcpListener,
    app: Router,
    stop: impl std::future::Future<Output = ()>,
) -> std::io::Result<()> {
    conn::accept_loop(listener, stop, move |stream, addr| {
        let facts = PeerFacts {
            addr,
            exit: None,
            tls: None,
        };
        conn::serve_tls(stream, state.tls.server.clone(), app.clone(), facts)
    })
    .await
}

async fn connection(state: Arc<TargetState>, mut stream: TcpStream, app: Router) {
    let _ = stream.set_nodelay(true);
    let read = proxy_protocol::read(&mut stream, &state.pool_secret);
    // Anything but a header with this run's secret is dropped unanswered:
    // only the pool speaks here, and nobody else deserves a diagnosis.
    let Ok(Ok(exit)) = tokio::time::timeout(HEAD_TIMEOUT, read).await else {
        return;
    };
    let facts = PeerFacts {
        addr: exit,
        exit: Some(PoolExit(exit)),
        tls: None,
    };
    // Through a CONNECT tunnel the client speaks TLS to us: its own hello.
    let mut first = [0u8; 1];
    match stream.peek(&mut first).await {
        Ok(1) if first[0] == 0x16 => {
            conn::serve_tls(stream, state.tls.server.clone(), app, facts).await
        }
        Ok(1) => conn::serve(stream, app, facts).await,
        _ => {}
    }
}
