//! The client side of a proxy connection: bytes already read, a bandwidth cap, a reset after N bytes.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::{Instant, Sleep};

/// A client connection as the proxy serves it.
///
/// Reads first replay `prefix` (the request head the proxy read itself),
/// then come from the socket. Writes to the client obey the connection's
/// faults: a token-bucket bandwidth cap, and a reset after a byte budget,
/// which is sent as a real TCP RST (`SO_LINGER` 0, then close).
#[derive(Debug)]
pub(crate) struct ClientStream {
    inner: TcpStream,
    prefix: Vec<u8>,
    prefix_at: usize,
    reset_after: Option<u64>,
    cap: Option<Bucket>,
}

#[derive(Debug)]
struct Bucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    last: Instant,
    wait: Option<Pin<Box<Sleep>>>,
}

impl ClientStream {
    /// Wraps `inner`, replaying `prefix` first.
    pub(crate) fn new(inner: TcpStream, prefix: Vec<u8>) -> Self {
        Self {
            inner,
            prefix,
            prefix_at: 0,
            reset_after: None,
            cap: None,
        }
    }

    /// Resets the connection once `bytes` have been sent to the client.
    pub(crate) fn reset_after(mut self, bytes: Option<u64>) -> Self {
        self.reset_after = bytes;
        self
    }

    /// Sends at most `rate` bytes per second to the client, with a tenth
    /// of a second of burst.
    pub(crate) fn bandwidth(mut self, rate: Option<u64>) -> Self {
        self.cap = rate.map(|r| {
            let rate = r.max(1) as f64;
            let burst = (rate / 10.0).max(1.0);
            Bucket {
                rate,
                burst,
                tokens: burst,
                last: Instant::now(),
                wait: None,
            }
        });
        self
    }

    /// Aborts the connection with a TCP RST.
    fn reset(&self) -> io::Error {
        let _ = socket2::SockRef::from(&self.inner).set_linger(Some(Duration::ZERO));
        io::Error::new(io::ErrorKind::ConnectionReset, "reset fault fired")
    }
}

impl Bucket {
    /// Waits until at least one byte may be sent; returns how many may.
    fn poll_allowance(&mut self, cx: &mut Context<'_>) -> Poll<usize> {
        loop {
            if let Some(wait) = self.wait.as_mut() {
                ready!(wait.as_mut().poll(cx));
                self.wait = None;
            }
            let now = Instant::now();
            let elapsed = now.duration_since(self.last).as_secs_f64();
            self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
            self.last = now;
            if self.tokens >= 1.0 {
                return Poll::Ready(self.tokens as usize);
            }
            let needed = (1.0 - self.tokens) / self.rate;
            self.wait = Some(Box::pin(tokio::time::sleep(Duration::from_secs_f64(
                needed,
            ))));
        }
    }
}

impl AsyncRead for ClientStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if this.prefix_at < this.prefix.len() {
            let rest = &this.prefix[this.prefix_at..];
            let n = rest.len().min(buf.remaining());
            buf.put_slice(&rest[..n]);
            this.prefix_at += n;
            if this.prefix_at == this.prefix.len() {
                this.prefix = Vec::new();
                this.prefix_at = 0;
            }
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for ClientStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        let mut len = buf.len();
        if let Some(left) = this.reset_after {
            if left == 0 {
                return Poll::Ready(Err(this.reset()));
            }
            len = len.min(usize::try_from(left).unwrap_or(usize::MAX));
        }
        if let Some(cap) = this.cap.as_mut() {
            len = len.min(ready!(cap.poll_allowance(cx)));
        }
        let n = ready!(Pin::new(&mut this.inner).poll_write(cx, &buf[..len]))?;
        if let Some(cap) = this.cap.as_mut() {
            cap.tokens -= n as f64;
        }
        if let Some(left) = this.reset_after.as_mut() {
            *left -= n as u64;
        }
        Poll::Ready(Ok(n))
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.reset_after == Some(0) {
            return Poll::Ready(Err(self.reset()));
        }
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
