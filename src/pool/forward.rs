//! Relaying a routed request to the target: CONNECT tunnels and absolute-form requests.

use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::client::conn::http1::SendRequest;
use hyper::header::{self, HeaderMap, HeaderName, HeaderValue};
use hyper::{Request, Response, StatusCode, Uri};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::pool::node::{Body, BoxError, Conn, Node, refused, text};
use crate::trace::proxy::ProxyWhat;

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

/// Answers a CONNECT and splices the tunnel to the target.
pub(super) async fn connect(
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
pub(super) async fn forward(
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
    conn.upstream.lock().push((pool, exit, sender));
    let (mut parts, body) = res.into_parts();
    parts.headers = end_to_end(&parts.headers);
    Ok(Response::from_parts(parts, body.boxed()))
}

/// The connection's upstream sender to the instance at `pool` for `exit`,
/// and whether it was reused: reused while it is open and from the same
/// exit (unless `fresh`), else a new connection with its PROXY header.
/// Connections to other instances stay kept for their turn.
async fn upstream_for(
    node: &Node,
    conn: &Conn,
    exit: IpAddr,
    pool: SocketAddr,
    fresh: bool,
) -> std::io::Result<(SendRequest<Incoming>, bool)> {
    let cached = {
        let mut kept = conn.upstream.lock();
        let at = kept.iter().position(|(p, _, _)| *p == pool);
        at.map(|i| kept.swap_remove(i))
    };
    if let Some((_, ip, mut sender)) = cached
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
