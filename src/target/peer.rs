//! The TCP peer of a request: a socket address, or an exit vouched for by the pool's PROXY header.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;

/// Who sent the request at the transport level.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Peer {
    /// The peer address: the socket peer, or the exit named by the pool.
    pub addr: SocketAddr,
    /// Whether the address came from a PROXY protocol header on the pool
    /// listener rather than from the socket.
    pub via_pool: bool,
}

/// Set by the pool listener on every request of a connection it accepted.
#[derive(Clone, Copy, Debug)]
pub(crate) struct PoolExit(pub(crate) SocketAddr);

impl<S: Send + Sync> FromRequestParts<S> for Peer {
    type Rejection = <ConnectInfo<SocketAddr> as FromRequestParts<S>>::Rejection;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        if let Some(PoolExit(addr)) = parts.extensions.get::<PoolExit>() {
            return Ok(Self {
                addr: *addr,
                via_pool: true,
            });
        }
        let ConnectInfo(addr) = ConnectInfo::<SocketAddr>::from_request_parts(parts, state).await?;
        Ok(Self {
            addr,
            via_pool: false,
        })
    }
}
