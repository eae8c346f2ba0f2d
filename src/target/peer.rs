//! The TCP peer of a request: a socket address, or an exit vouched for by the pool's PROXY header.

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;

use crate::fingerprint::{self, HttpFingerprint, TlsFingerprint};

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
    /// This request's head as sent, for JA4H.
    pub head: Option<Arc<RawHead>>,
}

impl Peer {
    /// JA4H of this request, when its head was seen and parses.
    pub fn ja4h(&self) -> Option<&HttpFingerprint> {
        self.head.as_deref().and_then(RawHead::ja4h)
    }
}

/// A request's head as the client sent it: over HTTP/1 the tapped bytes,
/// header names in their case and order; over h2 the decoded header list.
/// Its JA4H is computed on first use, so requests that never ask pay
/// only for the copy.
#[derive(Debug)]
pub struct RawHead {
    bytes: Vec<u8>,
    ja4h: OnceLock<Option<HttpFingerprint>>,
}

impl RawHead {
    /// A head from its bytes (request line, header lines, empty line).
    pub fn new(bytes: Vec<u8>) -> Self {
        Self {
            bytes,
            ja4h: OnceLock::new(),
        }
    }

    /// JA4H of the head; `None` if it does not parse.
    pub fn ja4h(&self) -> Option<&HttpFingerprint> {
        self.ja4h
            .get_or_init(|| fingerprint::http1(&self.bytes).ok())
            .as_ref()
    }
}

impl PartialEq for RawHead {
    fn eq(&self, other: &Self) -> bool {
        self.bytes == other.bytes
    }
}

impl Eq for RawHead {}

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
        let head = parts.extensions.get::<Arc<RawHead>>().cloned();
        if let Some(PoolExit(addr)) = parts.extensions.get::<PoolExit>() {
            return Ok(Self {
                addr: *addr,
                via_pool: true,
                tls,
                head,
            });
        }
        let ConnectInfo(addr) = ConnectInfo::<SocketAddr>::from_request_parts(parts, state).await?;
        Ok(Self {
            addr,
            via_pool: false,
            tls,
            head,
        })
    }
}
