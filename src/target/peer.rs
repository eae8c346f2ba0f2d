//! The TCP peer of a request: a socket address, or an exit vouched for by the pool's PROXY header.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;

use crate::fingerprint::{HttpFingerprint, TlsFingerprint};

/// Who sent the request at the transport level.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Peer {
    /// The peer address: the socket peer, or the exit named by the pool.
    pub addr: SocketAddr,
    /// Whether the address came from a PROXY protocol header on the pool
    /// listener rather than from the socket.
    pub via_pool: bool,
    /// The fingerprints of the connection's first ClientHello, over TLS.
    pub tls: Option<Arc<TlsFingerprint>>,
    /// JA4H of this request's raw head (HTTP/1 on the HTTPS and pool listeners).
    pub ja4h: Option<Arc<HttpFingerprint>>,
}

/// Set on each HTTP/1 request whose raw head was tapped.
#[derive(Clone, Debug)]
pub(crate) struct ConnJa4h(pub(crate) Arc<HttpFingerprint>);

/// Set by the TLS listeners on every request of a connection.
#[derive(Clone, Debug)]
pub(crate) struct ConnTls(pub(crate) Arc<TlsFingerprint>);

/// Set by the pool listener on every request of a connection it accepted.
#[derive(Clone, Copy, Debug)]
pub(crate) struct PoolExit(pub(crate) SocketAddr);

impl<S: Send + Sync> FromRequestParts<S> for Peer {
    type Rejection = <ConnectInfo<SocketAddr> as FromRequestParts<S>>::Rejection;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let tls = parts.extensions.get::<ConnTls>().map(|t| t.0.clone());
        let ja4h = parts.extensions.get::<ConnJa4h>().map(|t| t.0.clone());
        if let Some(PoolExit(addr)) = parts.extensions.get::<PoolExit>() {
            return Ok(Self {
                addr: *addr,
                via_pool: true,
                tls,
                ja4h,
            });
        }
        let ConnectInfo(addr) = ConnectInfo::<SocketAddr>::from_request_parts(parts, state).await?;
        Ok(Self {
            addr,
            via_pool: false,
            tls,
            ja4h,
        })
    }
}
