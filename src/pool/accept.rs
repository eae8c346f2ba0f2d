//! Accepting client connections: the listener loop, connection faults and the first request head.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use hyper::StatusCode;
use hyper_util::rt::{TokioIo, TokioTimer};
use parking_lot::Mutex;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

use crate::pool::config::FaultKind;
use crate::pool::node::{Conn, HANG_LIMIT, Node, refused};
use crate::pool::route::handle;
use crate::pool::stream::ClientStream;
use crate::site::conn;
use crate::trace::proxy::ProxyWhat;

/// Largest first request head read before handing the connection to hyper.
const MAX_HEAD: usize = 64 * 1024;

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
        upstream: Mutex::new(Vec::new()),
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
