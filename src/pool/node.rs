//! One proxy node: a loopback HTTP forward proxy (absolute-form and CONNECT) in front of the target.

use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::client::conn::http1::SendRequest;
use hyper::header::{self, HeaderMap, HeaderName, HeaderValue};
use hyper::{Method, Request, Response, StatusCode, Uri};
use hyper_util::rt::{TokioIo, TokioTimer};
use parking_lot::Mutex;
use rand::SeedableRng;
use rand::rngs::StdRng;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;

use crate::clock::Timestamp;
use crate::pool::config::FaultKind;
use crate::pool::events::ProxyWhat;
use crate::pool::exits::{
    ExitDraw, ExitInfo, StickyRoute, StickyTable, split_sticky, valid_sticky_id,
};
use crate::pool::faults::{FaultPlan, RequestFaults};
use crate::pool::stream::ClientStream;
use crate::pool::{Timeouts, Upstream};
use crate::site::conn;

/// Largest first request head read before handing the connection to hyper.
const MAX_HEAD: usize = 64 * 1024;
/// Most client connections a node holds at once; more get `503`.
const MAX_CONNECTIONS: usize = 4096;
/// How long a `hangs` fault holds a connection at most.
const HANG_LIMIT: Duration = Duration::from_secs(600);

type Body = BoxBody<Bytes, hyper::Error>;
type BoxError = Box<dyn std::error::Error + Send + Sync>;

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
    draw: ExitDraw,
    /// Sticky sessions and their exits.
    sticky: Mutex<StickyTable>,
    /// The seeded generator of draws.
    rng: Mutex<StdRng>,
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
    conns: AtomicU64,
    permits: Arc<Semaphore>,
}

/// One client connection.
#[derive(Debug)]
struct Conn {
    id: u64,
    client: SocketAddr,
    exit: Mutex<Option<IpAddr>>,
    upstream: Mutex<Option<(IpAddr, SendRequest<Incoming>)>>,
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

    fn record(&self, conn: u64, what: ProxyWhat) {
        self.up.record(&self.name, conn, what);
    }

    fn fault(&self, conn: u64, fault: FaultKind, detail: String) {
        self.record(conn, ProxyWhat::Fault { fault, detail });
    }

    /// The node dies: its listener closes and every connection drops.
    fn die(&self, conn: u64) {
        if !self.stop.send_replace(true) {
            self.fault(conn, FaultKind::Dies, "the proxy stopped listening".into());
        }
    }

    async fn stopped(&self) {
        let mut rx = self.stop.subscribe();
        let _ = rx.wait_for(|s| *s).await;
    }
}

/// Accepts connections until the node dies or the pool stops. Returning
/// drops the listener (later connections are refused) and every
/// connection task.
pub(crate) async fn run(node: Arc<Node>, listener: TcpListener) {
    let mut tasks = JoinSet::new();
    let mut backoff = conn::FIRST_BACKOFF;
    loop {
        tokio::select! {
            () = node.stopped() => return,
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
            accepted = listener.accept() => {
                let (mut stream, client) = match accepted {
                    Ok(a) => { backoff = conn::FIRST_BACKOFF; a }
                    Err(e) => {
                        // Out of descriptors, accept again at once would spin.
                        if conn::out_of_descriptors(&e) {
                            backoff = conn::back_off(backoff).await;
                        }
                        continue;
                    }
                };
                let Ok(permit) = Arc::clone(&node.permits).try_acquire_owned() else {
                    let busy = bare_response(StatusCode::SERVICE_UNAVAILABLE);
                    tasks.spawn(async move { let _ = stream.write_all(&busy).await; });
                    continue;
                };
                let node = Arc::clone(&node);
                tasks.spawn(async move {
                    connection(node, stream, client).await;
                    drop(permit);
                });
            }
        }
    }
}

async fn connection(node: Arc<Node>, mut stream: TcpStream, client: SocketAddr) {
    let id = node.conns.fetch_add(1, Ordering::Relaxed) + 1;
    let _ = stream.set_nodelay(true);
    node.record(id, ProxyWhat::Connect { client });
    let now = node.up.now();
    let faults = node.faults.lock().on_connection(now);
    if faults.has(FaultKind::Dies) {
        // Like a process that dies: the kernel closes its sockets.
        return node.die(id);
    }
    if faults.has(FaultKind::Hangs) {
        node.fault(
            id,
            FaultKind::Hangs,
            "accepted the connection, never answering".into(),
        );
        return hang(&mut stream).await;
    }
    if let Some(rate) = faults.bytes_per_sec {
        node.fault(
            id,
            FaultKind::Bandwidth,
            format!("{rate} bytes/s to the client"),
        );
    }
    let Some(head) = first_head(&node, id, &mut stream).await else {
        return;
    };
    let traced = Arc::clone(&node);
    let on_reset = move |sent: u64| {
        let detail = format!("TCP RST after {sent} bytes to the client");
        traced.fault(id, FaultKind::Reset, detail);
    };
    let io = ClientStream::new(stream, head, node.timeouts.idle)
        .reset_after(faults.reset_after, on_reset)
        .bandwidth(faults.bytes_per_sec);
    let conn = Arc::new(Conn {
        id,
        client,
        exit: Mutex::new(None),
        upstream: Mutex::new(None),
    });
    let service_node = Arc::clone(&node);
    let service = hyper::service::service_fn(move |req| {
        handle(Arc::clone(&service_node), Arc::clone(&conn), req)
    });
    let serve = hyper::server::conn::http1::Builder::new()
        .preserve_header_case(true)
        .timer(TokioTimer::new())
        .header_read_timeout(node.timeouts.head)
        .serve_connection(TokioIo::new(io), service)
        .with_upgrades();
    tokio::select! {
        _ = serve => {}
        () = node.stopped() => {}
    }
}

/// The client's first request head, or `None` once it was refused (with
/// its status, traced) for sending none in time.
async fn first_head(node: &Node, id: u64, stream: &mut TcpStream) -> Option<Vec<u8>> {
    match read_head(stream, node.timeouts.head).await {
        Ok(head) => Some(head),
        Err(status) => {
            if let Some(status) = status {
                node.record(id, refused(status, "no complete request head"));
                let _ = stream.write_all(&bare_response(status)).await;
            }
            None
        }
    }
}

/// Reads the first request head, so that a client that sends nothing (or
/// half a head) gets a 408 rather than holding the connection, and one
/// that opens with a TLS record (an `https://` proxy URL) gets a 400 at
/// once. `Err(None)` means the client closed without a byte.
async fn read_head(
    stream: &mut TcpStream,
    timeout: Duration,
) -> Result<Vec<u8>, Option<StatusCode>> {
    let mut head = Vec::with_capacity(1024);
    let read = async {
        let mut chunk = [0u8; 4096];
        loop {
            let n = stream.read(&mut chunk).await.map_err(|_| None)?;
            if n == 0 {
                return Err(if head.is_empty() {
                    None
                } else {
                    Some(StatusCode::BAD_REQUEST)
                });
            }
            head.extend_from_slice(&chunk[..n]);
            if head[0] == 0x16 {
                return Err(Some(StatusCode::BAD_REQUEST));
            }
            let tail = &head[head.len().saturating_sub(n + 3)..];
            let ended =
                tail.windows(4).any(|w| w == b"\r\n\r\n") || tail.windows(2).any(|w| w == b"\n\n");
            if ended {
                return Ok(());
            }
            if head.len() > MAX_HEAD {
                return Err(Some(StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE));
            }
        }
    };
    match tokio::time::timeout(timeout, read).await {
        Ok(Ok(())) => Ok(head),
        Ok(Err(e)) => Err(e),
        Err(_) => Err(Some(StatusCode::REQUEST_TIMEOUT)),
    }
}

fn bare_response(status: StatusCode) -> Vec<u8> {
    let reason = status.canonical_reason().unwrap_or("");
    format!(
        "HTTP/1.1 {} {reason}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
        status.as_u16()
    )
    .into_bytes()
}

/// Reads and discards until the client gives up (or the hang limit).
async fn hang(stream: &mut TcpStream) {
    let drain = async {
        let mut sink = [0u8; 4096];
        while matches!(stream.read(&mut sink).await, Ok(n) if n > 0) {}
    };
    let _ = tokio::time::timeout(HANG_LIMIT, drain).await;
}

fn refused(status: StatusCode, reason: &str) -> ProxyWhat {
    ProxyWhat::Refused {
        status: status.as_u16(),
        reason: reason.to_owned(),
    }
}

/// A 502 for an upstream failure, traced with its cause.
fn bad_gateway(
    node: &Node,
    conn: u64,
    cause: &dyn std::fmt::Display,
    what: &str,
) -> Response<Body> {
    node.record(conn, refused(StatusCode::BAD_GATEWAY, &cause.to_string()));
    text(
        StatusCode::BAD_GATEWAY,
        &format!("sessionrange proxy: {what}"),
    )
}

fn text(status: StatusCode, body: &str) -> Response<Body> {
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

async fn handle(
    node: Arc<Node>,
    conn: Arc<Conn>,
    req: Request<Incoming>,
) -> Result<Response<Body>, BoxError> {
    let now = node.up.now();
    let faults = node.faults.lock().on_request(now);
    if faults.has(FaultKind::Dies) {
        node.die(conn.id);
        std::future::pending::<()>().await;
    }
    if faults.has(FaultKind::Hangs) {
        node.fault(
            conn.id,
            FaultKind::Hangs,
            format!("{} {} never answered", req.method(), req.uri()),
        );
        tokio::time::sleep(HANG_LIMIT).await;
        return Err("hang limit reached".into());
    }
    let refuse = |status: StatusCode, reason: &str| {
        node.record(conn.id, refused(status, reason));
        Ok(text(status, &format!("sessionrange proxy: {reason}")))
    };
    let sticky = match check_auth(&node, req.headers()) {
        Ok(sticky) => sticky,
        Err(reason) => return Ok(auth_required(&node, conn.id, reason)),
    };
    if faults.has(FaultKind::Auth407) {
        node.fault(conn.id, FaultKind::Auth407, "answered 407".into());
        return Ok(auth_required(&node, conn.id, "auth-407 fault"));
    }
    let Some(upstream) = target_of(&node, &req) else {
        if req.method() != Method::CONNECT && req.uri().authority().is_none() {
            return refuse(
                StatusCode::BAD_REQUEST,
                "not a proxy request: send an absolute URL or CONNECT",
            );
        }
        return refuse(
            StatusCode::FORBIDDEN,
            "only the sessionrange target is reachable through this proxy",
        );
    };
    if faults.has(FaultKind::Connect502) {
        node.fault(conn.id, FaultKind::Connect502, "answered 502".into());
        return Ok(text(
            StatusCode::BAD_GATEWAY,
            "sessionrange proxy: bad gateway",
        ));
    }
    let exit = choose_exit(&node, &conn, sticky.as_deref(), now);
    apply_request_faults(&node, conn.id, &faults, exit).await;
    if req.method() == Method::CONNECT {
        return connect(&node, &conn, req, exit, upstream, faults.delay).await;
    }
    forward(&node, &conn, req, exit, upstream).await
}

/// Checks Basic proxy credentials; returns the sticky session id asked for.
fn check_auth(node: &Node, headers: &HeaderMap) -> Result<Option<String>, &'static str> {
    let basic = headers
        .get(header::PROXY_AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("basic"))
        .map(|(_, b)| b)
        .and_then(|b| {
            base64::engine::general_purpose::STANDARD
                .decode(b.trim())
                .ok()
        })
        .and_then(|b| String::from_utf8(b).ok());
    let creds = basic.as_deref().and_then(|c| c.split_once(':'));
    let Some((user, password)) = creds else {
        return match node.auth {
            Some(_) if basic.is_some() => Err("malformed Proxy-Authorization"),
            Some(_) => Err("proxy credentials required"),
            None => Ok(None),
        };
    };
    let (base, sticky) = split_sticky(user);
    if sticky.is_some_and(|id| !valid_sticky_id(id)) {
        return Err("sticky session ids are 1 to 64 letters, digits, `-`, `_` or `.`");
    }
    match &node.auth {
        Some((u, p)) if base != u || password != p => Err("wrong proxy credentials"),
        _ => Ok(sticky.map(str::to_owned)),
    }
}

fn auth_required(node: &Node, conn: u64, reason: &str) -> Response<Body> {
    node.record(
        conn,
        refused(StatusCode::PROXY_AUTHENTICATION_REQUIRED, reason),
    );
    let mut res = text(
        StatusCode::PROXY_AUTHENTICATION_REQUIRED,
        &format!("sessionrange proxy: {reason}"),
    );
    let challenge = HeaderValue::from_static("Basic realm=\"sessionrange\"");
    res.headers_mut()
        .insert(header::PROXY_AUTHENTICATE, challenge);
    res
}

/// The pool listener behind the request's target, if it is the sessionrange target.
fn target_of(node: &Node, req: &Request<Incoming>) -> Option<SocketAddr> {
    let authority = req.uri().authority()?;
    let plain = req
        .uri()
        .scheme_str()
        .is_none_or(|s| s.eq_ignore_ascii_case("http"));
    if req.method() != Method::CONNECT && (req.uri().scheme().is_none() || !plain) {
        return None;
    }
    let port = authority.port_u16().unwrap_or(80);
    node.up.route(authority.host(), port)
}

/// Picks the exit of a request and traces every change of exit.
fn choose_exit(node: &Node, conn: &Conn, sticky: Option<&str>, now: Timestamp) -> IpAddr {
    let mut current = conn.exit.lock();
    let info = |ip| ExitInfo::lookup(ip, node.up.geo());
    let (ip, event) = match (&node.exits, sticky) {
        (Exits::Static(ip), _) => (*ip, None),
        (Exits::Gateway(g), Some(id)) => {
            let mut rng = g.rng.lock();
            let mut table = g.sticky.lock();
            let route = table.route(id, now, |avoid| g.draw.draw(&mut *rng, avoid));
            let session = id.to_owned();
            let event = match route {
                StickyRoute::New(ip) => Some(ProxyWhat::ExitChosen {
                    exit: info(ip),
                    sticky: Some(session),
                }),
                StickyRoute::Kept(ip) if *current != Some(ip) => Some(ProxyWhat::StickyRenewed {
                    session,
                    exit: info(ip),
                }),
                StickyRoute::Kept(_) => None,
                StickyRoute::Rotated { from, to, cause } => Some(ProxyWhat::StickyRotated {
                    session,
                    cause,
                    from: info(from),
                    to: info(to),
                }),
            };
            (route.exit(), event)
        }
        (Exits::Gateway(g), None) => match *current {
            Some(ip) => (ip, None),
            None => {
                let mut rng = g.rng.lock();
                (g.draw.draw(&mut *rng, None), None)
            }
        },
    };
    let chosen = event.is_none() && *current != Some(ip);
    let event = event.or_else(|| {
        chosen.then(|| ProxyWhat::ExitChosen {
            exit: info(ip),
            sticky: None,
        })
    });
    *current = Some(ip);
    drop(current);
    if let Some(event) = event {
        node.record(conn.id, event);
    }
    ip
}

/// Bans the exit and waits out the latency, as the faults say.
async fn apply_request_faults(node: &Node, conn: u64, faults: &RequestFaults, exit: IpAddr) {
    if faults.has(FaultKind::Banned) && node.up.ban(exit) {
        node.fault(conn, FaultKind::Banned, format!("the target bans {exit}"));
    }
    if let Some(delay) = faults.delay {
        node.fault(
            conn,
            FaultKind::Latency,
            format!("{} ms", delay.as_millis()),
        );
        tokio::time::sleep(delay).await;
    }
}

/// Answers a CONNECT and splices the tunnel to the target.
async fn connect(
    node: &Arc<Node>,
    conn: &Conn,
    req: Request<Incoming>,
    exit: IpAddr,
    pool: SocketAddr,
    delay: Option<Duration>,
) -> Result<Response<Body>, BoxError> {
    let mut upstream = match node.up.connect(exit, conn.client.port(), pool).await {
        Ok(s) => s,
        Err(e) => return Ok(bad_gateway(node, conn.id, &e, "target unreachable")),
    };
    let to = req
        .uri()
        .authority()
        .map(ToString::to_string)
        .unwrap_or_default();
    node.record(conn.id, ProxyWhat::Tunnel { to });
    let node = Arc::clone(node);
    tokio::spawn(async move {
        let Ok(upgraded) = hyper::upgrade::on(req).await else {
            return;
        };
        let mut client = TokioIo::new(upgraded);
        let pump = async {
            match delay {
                None => {
                    let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
                }
                Some(d) => delayed_pump(&mut client, &mut upstream, d).await,
            }
        };
        tokio::select! {
            () = pump => {}
            () = node.stopped() => {}
        }
    });
    Ok(Response::new(
        Full::new(Bytes::new())
            .map_err(|n: Infallible| match n {})
            .boxed(),
    ))
}

/// A tunnel where every chunk from the client waits `delay` first.
async fn delayed_pump(
    client: &mut TokioIo<hyper::upgrade::Upgraded>,
    upstream: &mut TcpStream,
    delay: Duration,
) {
    let (mut cr, mut cw) = tokio::io::split(client);
    let (mut ur, mut uw) = upstream.split();
    let to_target = async {
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            let n = cr.read(&mut buf).await?;
            if n == 0 {
                return uw.shutdown().await;
            }
            tokio::time::sleep(delay).await;
            uw.write_all(&buf[..n]).await?;
        }
    };
    let to_client = async {
        tokio::io::copy(&mut ur, &mut cw).await?;
        cw.shutdown().await
    };
    // The first error (a reset fault, a closed target) ends both halves.
    let _ = tokio::try_join!(to_target, to_client);
}

/// Forwards an absolute-form request over this connection's upstream
/// connection from `exit`, opening a new one when the exit changed.
async fn forward(
    node: &Node,
    conn: &Conn,
    req: Request<Incoming>,
    exit: IpAddr,
    pool: SocketAddr,
) -> Result<Response<Body>, BoxError> {
    let (mut parts, body) = req.into_parts();
    let host = parts.uri.authority().map(|a| a.as_str().to_owned());
    parts.uri = origin_form(&parts.uri);
    parts.headers = end_to_end(&parts.headers);
    // RFC 9112 3.2.2: the absolute-form authority is the Host.
    if let Some(host) = host.and_then(|h| HeaderValue::from_str(&h).ok()) {
        parts.headers.insert(header::HOST, host);
    }
    let mut out = Request::from_parts(parts, body);
    let mut fresh = false;
    let (res, sender) = loop {
        let (mut sender, reused) = match upstream_for(node, conn, exit, pool, fresh).await {
            Ok(s) => s,
            Err(e) => return Ok(bad_gateway(node, conn.id, &e, "target unreachable")),
        };
        match sender.try_send_request(out).await {
            Ok(res) => break (res, sender),
            // A kept-alive connection the target closed meanwhile: the
            // request was never sent, so send it on a new connection.
            Err(mut e) if reused && e.message().is_some() => {
                out = e.take_message().ok_or("request lost")?;
                fresh = true;
            }
            Err(e) => {
                let e = e.into_error();
                return Ok(bad_gateway(
                    node,
                    conn.id,
                    &e,
                    "the target closed the connection",
                ));
            }
        }
    };
    *conn.upstream.lock() = Some((exit, sender));
    let (mut parts, body) = res.into_parts();
    parts.headers = end_to_end(&parts.headers);
    Ok(Response::from_parts(parts, body.boxed()))
}

/// The connection's upstream sender for `exit`, and whether it was reused:
/// reused while it is open and from the same exit (unless `fresh`), else a
/// new connection with its PROXY header.
async fn upstream_for(
    node: &Node,
    conn: &Conn,
    exit: IpAddr,
    pool: SocketAddr,
    fresh: bool,
) -> std::io::Result<(SendRequest<Incoming>, bool)> {
    let cached = conn.upstream.lock().take();
    if let Some((ip, mut sender)) = cached
        && !fresh
        && ip == exit
        && sender.ready().await.is_ok()
    {
        return Ok((sender, true));
    }
    let stream = node.up.connect(exit, conn.client.port(), pool).await?;
    let (sender, connection) = hyper::client::conn::http1::Builder::new()
        .preserve_header_case(true)
        .handshake(TokioIo::new(stream))
        .await
        .map_err(std::io::Error::other)?;
    let mut stop = node.stop.subscribe();
    tokio::spawn(async move {
        tokio::select! {
            _ = connection => {}
            _ = stop.wait_for(|s| *s) => {}
        }
    });
    Ok((sender, false))
}

/// `http://host/path?q` → `/path?q`.
fn origin_form(uri: &Uri) -> Uri {
    let pq = uri.path_and_query().map_or("/", |pq| pq.as_str());
    pq.parse().unwrap_or_else(|_| Uri::from_static("/"))
}

/// Headers without hop-by-hop and proxy headers, in their original order.
fn end_to_end(headers: &HeaderMap) -> HeaderMap {
    let listed: Vec<String> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().to_ascii_lowercase())
        .collect();
    let hop = |name: &HeaderName| {
        matches!(
            name.as_str(),
            "connection"
                | "proxy-connection"
                | "keep-alive"
                | "proxy-authorization"
                | "proxy-authenticate"
                | "te"
                | "trailer"
                | "transfer-encoding"
                | "upgrade"
        ) || listed.iter().any(|l| l == name.as_str())
    };
    let mut out = HeaderMap::with_capacity(headers.len());
    for (name, value) in headers {
        if !hop(name) {
            out.append(name.clone(), value.clone());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origin_form_keeps_path_and_query() {
        let uri: Uri = "http://127.0.0.1:80/api/v1/items?page=2"
            .parse()
            .expect("uri");
        assert_eq!(origin_form(&uri), "/api/v1/items?page=2");
        let bare: Uri = "http://127.0.0.1:80".parse().expect("uri");
        assert_eq!(origin_form(&bare), "/");
    }

    #[test]
    fn hop_by_hop_headers_go_and_order_stays() {
        let mut h = HeaderMap::new();
        for (n, v) in [
            ("user-agent", "x"),
            ("proxy-authorization", "Basic eDp5"),
            ("connection", "keep-alive, x-hop"),
            ("x-hop", "1"),
            ("accept", "*/*"),
            ("cookie", "a=1"),
        ] {
            h.append(HeaderName::from_static(n), HeaderValue::from_static(v));
        }
        let out = end_to_end(&h);
        let names: Vec<&str> = out.keys().map(HeaderName::as_str).collect();
        assert_eq!(names, ["user-agent", "accept", "cookie"]);
    }
}
