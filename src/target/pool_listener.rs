//! The listener only the proxy pool may use: each connection opens with a PROXY v2 header.
//!
//! The public listener never reads PROXY headers; to it they are just a
//! malformed request. This one reads exactly one header per connection,
//! checks the run's pool secret, and then serves the same router with the
//! exit address in place of the socket peer.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tower::ServiceExt;

use crate::proxy_protocol;
use crate::target::peer::PoolExit;
use crate::target::state::TargetState;

/// How long a pool connection may take to send its PROXY header, and
/// then each request head.
const HEADER_TIMEOUT: Duration = Duration::from_secs(5);

/// Accepts pool connections until `stop` resolves; open connections are
/// dropped with the returned future.
pub(crate) async fn serve_pool(
    state: Arc<TargetState>,
    listener: TcpListener,
    app: Router,
    stop: impl std::future::Future<Output = ()>,
) -> std::io::Result<()> {
    let mut conns = JoinSet::new();
    tokio::pin!(stop);
    loop {
        tokio::select! {
            () = &mut stop => return Ok(()),
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                conns.spawn(connection(Arc::clone(&state), stream, app.clone()));
            }
        }
    }
}

async fn connection(state: Arc<TargetState>, mut stream: TcpStream, app: Router) {
    let _ = stream.set_nodelay(true);
    let read = proxy_protocol::read(&mut stream, &state.pool_secret);
    // Anything but a header with this run's secret is dropped unanswered:
    // only the pool speaks here, and nobody else deserves a diagnosis.
    let Ok(Ok(exit)) = tokio::time::timeout(HEADER_TIMEOUT, read).await else {
        return;
    };
    let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
        req.extensions_mut().insert(PoolExit(exit));
        req.extensions_mut().insert(ConnectInfo::<SocketAddr>(exit));
        app.clone().oneshot(req)
    });
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT);
    let _ = builder
        .serve_connection_with_upgrades(TokioIo::new(stream), service)
        .await;
}
