//! The raw HTTP/1 request heads of a connection, as the client sent them, for JA4H.
//!
//! hyper lowercases header names and forgets their order on the wire; JA4H
//! needs both. [`Tapped`] copies every byte the client sends into a
//! [`HeadTap`], and the service takes each request's head back out of it.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use parking_lot::Mutex;
use tokio::io::{AsyncRead, ReadBuf};

/// Bytes kept at most; a body bigger than this between two heads is dropped.
const MAX_TAPPED: usize = 256 * 1024;

/// Bytes read from the client and not yet claimed by a request.
#[derive(Clone, Debug, Default)]
pub(crate) struct HeadTap(Arc<Mutex<TapBuf>>);

#[derive(Debug, Default)]
struct TapBuf {
    bytes: Vec<u8>,
    /// Body bytes of the last head still to come, to drop as they arrive.
    skip: usize,
    /// Reads that brought bytes, so far.
    reads: u64,
}

impl HeadTap {
    fn push(&self, mut data: &[u8]) {
        let mut tap = self.0.lock();
        if !data.is_empty() {
            tap.reads = tap.reads.wrapping_add(1);
        }
        let skipped = tap.skip.min(data.len());
        tap.skip -= skipped;
        data = &data[skipped..];
        if tap.bytes.len() + data.len() > MAX_TAPPED {
            tap.bytes.clear();
        }
        let keep = data.len().min(MAX_TAPPED);
        tap.bytes.extend_from_slice(&data[..keep]);
    }

    /// How many reads have brought bytes: a change means the client sent something.
    pub(crate) fn reads(&self) -> u64 {
        self.0.lock().reads
    }

    /// Whether the bytes not yet claimed by a request start a request line
    /// (a method, perhaps cut short): the next head has begun. Body bytes
    /// left over from a chunked request do not look like one.
    pub(crate) fn head_begun(&self) -> bool {
        let tap = self.0.lock();
        let rest = tap.bytes.trim_ascii_start();
        let method = rest
            .iter()
            .position(|b| !(b.is_ascii_uppercase() || *b == b'-'))
            .unwrap_or(rest.len());
        method > 0 && rest.get(method).is_none_or(|&b| b == b' ')
    }

    /// The next request head whose request line starts with `method`;
    /// what came before it, and the head's own body, are dropped.
    pub(crate) fn take_head(&self, method: &str) -> Option<Vec<u8>> {
        let mut tap = self.0.lock();
        let start = head_start(&tap.bytes, method.as_bytes())?;
        let rest = &tap.bytes[start..];
        let end = find(rest, b"\r\n\r\n")
            .map(|i| i + 4)
            .or_else(|| find(rest, b"\n\n").map(|i| i + 2))?;
        let head = rest[..end].to_vec();
        tap.bytes.drain(..start + end);
        let body = content_length(&head);
        let now = body.min(tap.bytes.len());
        tap.bytes.drain(..now);
        tap.skip = body - now;
        Some(head)
    }
}

/// The head of an h2 request, written in HTTP/1 syntax with version
/// `HTTP/2` so that JA4H reads it like any other: names as they arrived
/// (lowercase, as h2 requires) and in their order, pseudo-headers left out
/// as JA4H leaves them out. Repeated names come out together.
pub(crate) fn synthesize(method: &str, headers: &axum::http::HeaderMap) -> Vec<u8> {
    let mut head = Vec::with_capacity(512);
    head.extend_from_slice(method.as_bytes());
    head.extend_from_slice(b" / HTTP/2\r\n");
    for (name, value) in headers {
        head.extend_from_slice(name.as_str().as_bytes());
        head.extend_from_slice(b": ");
        head.extend_from_slice(value.as_bytes());
        head.extend_from_slice(b"\r\n");
    }
    head.extend_from_slice(b"\r\n");
    head
}

/// The `Content-Length` of a head, 0 when absent or unreadable.
fn content_length(head: &[u8]) -> usize {
    head.split(|&b| b == b'\n')
        .filter_map(|line| {
            let colon = memchr::memchr(b':', line)?;
            Some((line.get(..colon)?, line.get(colon + 1..)?))
        })
        .find(|(name, _)| name.trim_ascii().eq_ignore_ascii_case(b"content-length"))
        .and_then(|(_, v)| std::str::from_utf8(v.trim_ascii()).ok()?.parse().ok())
        .unwrap_or(0)
}

/// Where a request line `METHOD SP ... HTTP/1.x` starts, at a line start.
fn head_start(buf: &[u8], method: &[u8]) -> Option<usize> {
    let mut from = 0;
    while from < buf.len() {
        let line_end = find(&buf[from..], b"\n").map_or(buf.len(), |i| from + i);
        let line = &buf[from..line_end];
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let versioned = line.ends_with(b" HTTP/1.1") || line.ends_with(b" HTTP/1.0");
        if line.starts_with(method) && line.get(method.len()) == Some(&b' ') && versioned {
            return Some(from);
        }
        from = line_end + 1;
    }
    None
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    memchr::memmem::find(hay, needle)
}

/// A stream whose reads are copied into a [`HeadTap`].
#[derive(Debug)]
pub(crate) struct Tapped<S> {
    inner: S,
    tap: HeadTap,
}

impl<S> Tapped<S> {
    /// Taps `inner` into `tap`.
    pub(crate) fn new(inner: S, tap: HeadTap) -> Self {
        Self { inner, tap }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Tapped<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let this = &mut *self;
        let poll = Pin::new(&mut this.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = &poll {
            this.tap.push(&buf.filled()[before..]);
        }
        poll
    }
}

crate::tls::forward_async_write!(Tapped);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn takes_heads_in_order_and_skips_bodies() {
        let tap = HeadTap::default();
        tap.push(b"POST /login HTTP/1.1\r\nHost: x\r\nContent-Length: 21\r\n\r\nGET /not HTTP/1.1\r\n\r\n");
        tap.push(b"GET /a HTTP/1.1\r\nX-Case: 1\r\n\r\n");
        let first = tap.take_head("POST").expect("the POST head");
        assert!(first.ends_with(b"Content-Length: 21\r\n\r\n"));
        let second = tap.take_head("GET").expect("the GET head");
        assert_eq!(second, b"GET /a HTTP/1.1\r\nX-Case: 1\r\n\r\n");
        assert_eq!(tap.take_head("GET"), None);
    }

    #[test]
    fn a_head_has_begun_only_when_a_request_line_starts() {
        let tap = HeadTap::default();
        assert!(!tap.head_begun());
        tap.push(b"GET / HTTP/1.1\r\n\r\n");
        assert!(tap.head_begun());
        assert_eq!(tap.reads(), 1);
        tap.take_head("GET");
        assert!(!tap.head_begun(), "nothing left");
        tap.push(b"\r\nGE");
        assert!(tap.head_begun(), "a method cut short");
        let chunked = HeadTap::default();
        chunked.push(b"A\r\n0123456789\r\n0\r\n\r\n");
        assert!(!chunked.head_begun(), "a chunk size is not a method");
    }

    #[test]
    fn content_length_is_read_whatever_its_case_and_spacing() {
        assert_eq!(
            content_length(b"POST / HTTP/1.1\r\ncontent-LENGTH:  42 \r\n\r\n"),
            42
        );
        assert_eq!(content_length(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"), 0);
        assert_eq!(
            content_length(b"POST / HTTP/1.1\r\nContent-Length: 4x\r\n\r\n"),
            0
        );
        assert_eq!(
            content_length(b"POST / HTTP/1.1\nContent-Length: \xff\n\n"),
            0
        );
    }
}
