//! Routing one request: request faults, proxy credentials, the target and the exit.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use base64::Engine as _;
use hyper::body::Incoming;
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};

use crate::clock::Timestamp;
use crate::pool::config::FaultKind;
use crate::pool::exits::{ExitInfo, StickyRoute, split_sticky, valid_sticky_id};
use crate::pool::faults::RequestFaults;
use crate::pool::forward::{connect, forward};
use crate::pool::node::{Body, BoxError, Conn, Exits, HANG_LIMIT, Node, refused, text};
use crate::trace::proxy::ProxyWhat;

/// Serves one request of a client connection: its faults, credentials,
/// target and exit, then the CONNECT tunnel or the forwarded request.
pub(super) async fn handle(
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
