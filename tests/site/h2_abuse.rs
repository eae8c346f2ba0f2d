//! h2 abuse on the public (h2c prior knowledge) and HTTPS (ALPN h2) listeners: rapid reset and a CONTINUATION flood.
//!
//! Frames are written by hand on a raw socket. The abusive connection must
//! be closed (with a `GOAWAY`) well before any timeout could close it, the
//! process must not grow without bound, and a normal client must still be
//! served.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use sessionrange::TargetServer;
use sessionrange::site::metrics::Listener;

use crate::hostile::{PREFACE, SETTINGS, connect};

/// Far shorter than the default timeouts (5 s head, 75 s idle) the target
/// keeps here, so only the abuse itself can have closed the connection.
const LIMIT: Duration = Duration::from_secs(3);
/// Streams opened and reset, or CONTINUATION frames sent, per connection.
const FLOOD: u32 = 5_000;

/// One h2 frame: a 9-byte header and `payload`.
fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = u32::try_from(payload.len()).expect("a small payload");
    let mut out = len.to_be_bytes()[1..].to_vec();
    out.extend_from_slice(&[kind, flags]);
    out.extend_from_slice(&stream.to_be_bytes());
    out.extend_from_slice(payload);
    out
}

const HEADERS: u8 = 0x1;
const RST_STREAM: u8 = 0x3;
const GOAWAY: u8 = 0x7;
const CONTINUATION: u8 = 0x9;
/// The GOAWAY error code for a peer that asks too much.
const ENHANCE_YOUR_CALM: u32 = 0xb;
const END_STREAM: u8 = 0x1;
const END_HEADERS: u8 = 0x4;

/// `GET /` with `:scheme` `scheme` (HPACK static indices) and authority `x`.
fn request_block(https: bool) -> Vec<u8> {
    let scheme = if https { 0x87 } else { 0x86 };
    vec![0x82, scheme, 0x84, 0x01, 0x01, b'x']
}

/// HEADERS then RST_STREAM (CANCEL), on [`FLOOD`] streams.
fn rapid_reset(https: bool) -> Vec<u8> {
    let block = request_block(https);
    let mut out = [PREFACE, SETTINGS].concat();
    for n in 0..FLOOD {
        let stream = 2 * n + 1;
        out.extend(frame(HEADERS, END_STREAM | END_HEADERS, stream, &block));
        out.extend(frame(RST_STREAM, 0, stream, &8u32.to_be_bytes()));
    }
    out
}

/// HEADERS without END_HEADERS, then [`FLOOD`] CONTINUATION frames that
/// never end the header block.
fn continuation_flood(https: bool) -> Vec<u8> {
    let mut out = [PREFACE, SETTINGS].concat();
    out.extend(frame(HEADERS, END_STREAM, 1, &request_block(https)));
    // Literal header fields, never indexed: name `a`, value 1,000 bytes.
    let mut field = vec![0x10, 0x01, b'a', 0x7f, 0xe9, 0x06];
    field.resize(field.len() + 1_000, b'v');
    for _ in 0..FLOOD {
        out.extend(frame(CONTINUATION, 0, 1, &field));
    }
    out
}

/// The error code of the first GOAWAY among the frames the server sent.
fn goaway(mut got: &[u8]) -> Option<u32> {
    while got.len() >= 9 {
        let len = usize::from(got[0]) << 16 | usize::from(got[1]) << 8 | usize::from(got[2]);
        let payload = got.get(9..9 + len)?;
        if got[3] == GOAWAY {
            let code = payload.get(4..8)?;
            return Some(u32::from_be_bytes(code.try_into().ok()?));
        }
        got = &got[9 + len..];
    }
    None
}

/// Sends `abuse` to `listener` and returns what the server sent before
/// closing; `None` if it kept the connection open past [`LIMIT`].
async fn abuse(target: &TargetServer, listener: Listener, abuse: Vec<u8>) -> Option<Vec<u8>> {
    let (mut read, mut write) = tokio::io::split(connect(target, listener).await);
    // The server may stop reading once it has had enough: ignore the error.
    let writer = tokio::spawn(async move {
        let _ = write.write_all(&abuse).await;
        write
    });
    let mut got = Vec::new();
    let closed = tokio::time::timeout(LIMIT, read.read_to_end(&mut got)).await;
    writer.abort();
    closed.ok().map(|_| got)
}

/// This process's resident memory, in KiB.
fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("a VmRSS line")
}

/// A normal HTTP/1 request on `listener` is answered.
async fn still_served(target: &TargetServer, https: bool) {
    let ca = reqwest::Certificate::from_pem(target.ca_pem().as_bytes()).expect("a PEM CA");
    let client = reqwest::Client::builder()
        .add_root_certificate(ca)
        .build()
        .expect("a client");
    let url = if https {
        target.https_url("/__range/fingerprint")
    } else {
        target.url("/__range/fingerprint")
    };
    let res = client
        .get(url)
        .send()
        .await
        .expect("a normal client is served");
    assert_eq!(res.status(), reqwest::StatusCode::OK);
}

async fn check(pattern: &str, make: fn(bool) -> Vec<u8>) {
    let target = TargetServer::start().await.expect("the target starts");
    let before = rss_kib();
    for (listener, https) in [(Listener::Public, false), (Listener::Https, true)] {
        for round in 0..3 {
            let got = abuse(&target, listener, make(https)).await;
            let got = got.unwrap_or_else(|| panic!("{pattern} on {listener:?}: left open"));
            let code = goaway(&got);
            assert!(
                code == Some(ENHANCE_YOUR_CALM),
                "{pattern} on {listener:?}, round {round}: GOAWAY ENHANCE_YOUR_CALM, got {code:?}"
            );
        }
        still_served(&target, https).await;
    }
    let grown = rss_kib().saturating_sub(before);
    assert!(grown < 64 * 1024, "{pattern}: grew {grown} KiB");
}

#[tokio::test]
async fn rapid_reset_gets_a_goaway_and_the_target_serves_on() {
    check("rapid reset", rapid_reset).await;
}

#[tokio::test]
async fn an_endless_continuation_flood_gets_a_goaway_and_the_target_serves_on() {
    check("CONTINUATION flood", continuation_flood).await;
}
