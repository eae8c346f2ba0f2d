//! The TCP peer of a request: a socket address, or an exit vouched for by the pool's PROXY header.

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};

use axum::extract::connect_info::MockConnectInfo;
use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{Extensions, HeaderMap};
use parking_lot::Mutex;

use crate::context::RequestContext;
use crate::fingerprint::{self, HttpFingerprint, TlsFingerprint};

/// Who sent the request at the transport level.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Peer {
    /// The peer address: the socket peer, or the exit named by the pool.
    pub addr: SocketAddr,
    /// Whether the address came from a PROXY protocol header on the pool
    /// listener rather than from the socket.
    pub via_pool: bool,
    /// Whether the address came from a trusted load balancer's PROXY
    /// header on a public listener.
    pub via_balancer: bool,
    /// The fingerprints of the connection's first ClientHello, over TLS.
    pub tls: Option<Arc<TlsFingerprint>>,
    /// This request's head as sent, for JA4H.
    pub head: Option<Arc<RawHead>>,
    /// The connection's last request context, to reuse when the headers repeat.
    pub memo: Option<Arc<ContextMemo>>,
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

/// One connection's last request context and the headers it was built
/// from. The peer, its TLS hello and the trusted proxies are fixed for the
/// connection and the geo database for the run, so a request whose headers
/// repeat the last ones (names, values and order) has the same context: it
/// is reused rather than rebuilt, and the trace refers to the line that
/// carried it rather than writing it again.
#[derive(Debug, Default)]
pub struct ContextMemo {
    last: Mutex<Option<Memo>>,
}

#[derive(Debug)]
struct Memo {
    headers: HeaderMap,
    context: Arc<RequestContext>,
    seq: u64,
}

impl ContextMemo {
    /// The context of the last request that sent exactly `headers`, with
    /// the `seq` of the trace line that carried it in full.
    pub fn get(&self, headers: &HeaderMap) -> Option<(Arc<RequestContext>, u64)> {
        let last = self.last.lock();
        let memo = last
            .as_ref()
            .filter(|m| m.headers.iter().eq(headers.iter()))?;
        Some((Arc::clone(&memo.context), memo.seq))
    }

    /// Remembers `context`, built from `headers` and traced in full at `seq`.
    pub fn put(&self, headers: &HeaderMap, context: Arc<RequestContext>, seq: u64) {
        let memo = Memo {
            headers: headers.clone(),
            context,
            seq,
        };
        *self.last.lock() = Some(memo);
    }
}

/// Memos are told apart by identity: one per connection.
impl PartialEq for ContextMemo {
    fn eq(&self, other: &Self) -> bool {
        std::ptr::eq(self, other)
    }
}

impl Eq for ContextMemo {}

impl PartialEq for RawHead {
    fn eq(&self, other: &Self) -> bool {
        self.bytes == other.bytes
    }
}

impl Eq for RawHead {}

/// What a TLS listener learnt of a connection's first ClientHello.
#[derive(Clone, Debug)]
pub(crate) struct ConnTls(pub(crate) Arc<TlsFingerprint>);

impl Peer {
    /// The peer of a request: the one its listener attached, or, in
    /// process, one made from `ConnectInfo` or `MockConnectInfo` (with a
    /// connection's memo if the caller put one in); `None` only when
    /// nothing names an address.
    pub fn from_extensions(ext: &Extensions) -> Option<Self> {
        if let Some(peer) = ext.get::<Peer>() {
            return Some(peer.clone());
        }
        let addr = ext
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0)
            .or_else(|| ext.get::<MockConnectInfo<SocketAddr>>().map(|c| c.0))?;
        Some(Self {
            addr,
            via_pool: false,
            via_balancer: false,
            tls: None,
            head: None,
            memo: ext.get::<Arc<ContextMemo>>().cloned(),
        })
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Peer {
    type Rejection = <ConnectInfo<SocketAddr> as FromRequestParts<S>>::Rejection;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        if let Some(peer) = Self::from_extensions(&parts.extensions) {
            return Ok(peer);
        }
        // No address at all: answer with `ConnectInfo`'s own rejection.
        let ConnectInfo(addr) = ConnectInfo::<SocketAddr>::from_request_parts(parts, state).await?;
        Ok(Self {
            addr,
            via_pool: false,
            via_balancer: false,
            tls: None,
            head: None,
            memo: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (n, v) in pairs {
            h.append(*n, axum::http::HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn a_memo_answers_only_for_the_same_names_values_and_order() {
        let memo = ContextMemo::default();
        let sent = headers(&[("host", "a"), ("user-agent", "curl/8")]);
        assert!(memo.get(&sent).is_none(), "empty at first");
        memo.put(&sent, Arc::new(RequestContext::default()), 7);
        assert_eq!(memo.get(&sent).map(|(_, seq)| seq), Some(7));
        let reordered = headers(&[("user-agent", "curl/8"), ("host", "a")]);
        let changed = headers(&[("host", "a"), ("user-agent", "curl/9")]);
        let longer = headers(&[("host", "a"), ("user-agent", "curl/8"), ("accept", "*/*")]);
        for other in [reordered, changed, longer] {
            assert!(memo.get(&other).is_none(), "{other:?}");
        }
    }
}
