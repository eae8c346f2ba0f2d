//! One proxy node's shared state: its exits, fault plan and connections, and the responses it writes itself.

use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::client::conn::http1::SendRequest;
use hyper::header::{self, HeaderValue};
use hyper::{Response, StatusCode};
use parking_lot::Mutex;
use rand::SeedableRng;
use rand::rngs::StdRng;
use tokio::sync::{Semaphore, watch};

use crate::pool::config::FaultKind;
use crate::pool::exits::{ExitDraw, StickyTable};
use crate::pool::faults::FaultPlan;
use crate::pool::{Timeouts, Upstream};
use crate::trace::proxy::ProxyWhat;

/// Most client connections a node holds at once; more get `503`.
const MAX_CONNECTIONS: usize = 4096;
/// How long a `hangs` fault holds a connection at most.
pub(super) const HANG_LIMIT: Duration = Duration::from_secs(600);

/// A response body: the target's, relayed, or one the node writes itself.
pub(super) type Body = BoxBody<Bytes, hyper::Error>;
/// An error that ends the client connection.
pub(super) type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Where a node's requests go out from.
#[derive(Debug)]
pub(crate) enum Exits {
    /// Always this address.
    Static(IpAddr),
    /// Drawn per connection, or per sticky session.
    Gateway(Box<Gateway>),
}

/// A rotating gateway's draws and sticky sessions.
#[derive(Debug)]
pub(crate) struct Gateway {
    /// The networks drawn from.
    pub(super) draw: ExitDraw,
    /// Sticky sessions and their exits.
    pub(super) sticky: Mutex<StickyTable>,
    /// The seeded generator of draws.
    pub(super) rng: Mutex<StdRng>,
}

/// A proxy node and its shared state.
#[derive(Debug)]
pub(crate) struct Node {
    pub(crate) name: String,
    pub(crate) exits: Exits,
    /// Username and password the node asks for, if any.
    pub(crate) auth: Option<(String, String)>,
    pub(crate) faults: Mutex<FaultPlan>,
    pub(crate) up: Upstream,
    pub(crate) timeouts: Timeouts,
    /// Set to true when the node dies or the pool stops.
    pub(crate) stop: watch::Sender<bool>,
    pub(super) conns: AtomicU64,
    pub(super) permits: Arc<Semaphore>,
}

/// A kept-alive upstream connection: the instance's pool listener, the
/// exit it speaks for, and its sender.
pub(super) type Upstreamed = (SocketAddr, IpAddr, SendRequest<Incoming>);

/// One client connection.
#[derive(Debug)]
pub(super) struct Conn {
    pub(super) id: u64,
    pub(super) client: SocketAddr,
    pub(super) exit: Mutex<Option<IpAddr>>,
    /// Kept-alive upstream connections, one per target instance at most,
    /// each with the exit it speaks for.
    pub(super) upstream: Mutex<Vec<Upstreamed>>,
}

impl Node {
    /// A node that has served nothing yet.
    pub(crate) fn new(
        name: String,
        exits: Exits,
        auth: Option<(String, String)>,
        faults: FaultPlan,
        up: Upstream,
        timeouts: Timeouts,
    ) -> Self {
        Self {
            name,
            exits,
            auth,
            faults: Mutex::new(faults),
            up,
            timeouts,
            permits: Arc::new(Semaphore::new(MAX_CONNECTIONS)),
            stop: watch::channel(false).0,
            conns: AtomicU64::new(0),
        }
    }

    /// A gateway's exits, seeded.
    pub(crate) fn gateway_exits(draw: ExitDraw, ttl: Duration, idle: Duration, seed: u64) -> Exits {
        let ms = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        Exits::Gateway(Box::new(Gateway {
            draw,
            sticky: Mutex::new(StickyTable::new(ms(ttl), ms(idle))),
            rng: Mutex::new(StdRng::seed_from_u64(seed)),
        }))
    }

    /// Traces `what` on connection `conn`.
    pub(super) fn record(&self, conn: u64, what: ProxyWhat) {
        self.up.record(&self.name, conn, what);
    }

    /// Traces a fault that fired on connection `conn`.
    pub(super) fn fault(&self, conn: u64, fault: FaultKind, detail: String) {
        self.record(conn, ProxyWhat::Fault { fault, detail });
    }

    /// The node dies: its listener closes and every connection drops.
    pub(super) fn die(&self, conn: u64) {
        if !self.stop.send_replace(true) {
            self.fault(conn, FaultKind::Dies, "the proxy stopped listening".into());
        }
    }

    /// Resolves once the node dies or the pool stops.
    pub(super) async fn stopped(&self) {
        let mut rx = self.stop.subscribe();
        let _ = rx.wait_for(|s| *s).await;
    }
}

/// The trace event of a request refused with `status`.
pub(super) fn refused(status: StatusCode, reason: &str) -> ProxyWhat {
    ProxyWhat::Refused {
        status: status.as_u16(),
        reason: reason.to_owned(),
    }
}

/// A `text/plain` response the node writes itself.
pub(super) fn text(status: StatusCode, body: &str) -> Response<Body> {
    let mut res = Response::new(
        Full::new(Bytes::from(format!("{body}\n")))
            .map_err(|never: Infallible| match never {})
            .boxed(),
    );
    *res.status_mut() = status;
    let plain = HeaderValue::from_static("text/plain; charset=utf-8");
    res.headers_mut().insert(header::CONTENT_TYPE, plain);
    res
}
