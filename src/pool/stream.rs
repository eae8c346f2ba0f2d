//! The client side of a proxy connection: bytes already read, a bandwidth cap, a reset after N bytes.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::{Instant, Sleep};

use crate::tls::Prefixed;

/// Called once when a reset fault fires, with the bytes sent before it.
type OnReset = Box<dyn FnOnce(u64) + Send>;

/// A client connection as the proxy serves it.
///
/// Reads first replay `prefix` (the request head the proxy read itself),
/// then come from the socket. Writes to the client obey the connection's
/// faults: a token-bucket bandwidth cap, and a reset after a byte budget,
/// which is sent as a real TCP RST (`SO_LINGER` 0, then close). When no
/// byte moves either way for the idle timeout, reads and writes fail with
/// `TimedOut`, which closes the connection or tunnel.
pub(crate) struct ClientStream {
    inner: Prefixed<TcpStream>,
    sent: u64,
    reset_after: Option<u64>,
    on_reset: Option<OnReset>,
    cap: Option<Bucket>,
    idle: Duration,
    deadline: Pin<Box<Sleep>>,
}

impl std::fmt::Debug for ClientStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientStream")
            .field("inner", &self.inner)
            .field("sent", &self.sent)
            .field("reset_after", &self.reset_after)
            .finish_non_exhaustive()
    }
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
    /// Wraps `inner`, replaying `prefix` first, closing after `idle`
    /// without traffic.
    pub(crate) fn new(inner: TcpStream, prefix: Vec<u8>, idle: Duration) -> Self {
        Self {
            inner: Prefixed::new(prefix, inner),
            sent: 0,
            reset_after: None,
            on_reset: None,
            cap: None,
            idle,
            deadline: Box::pin(tokio::time::sleep(idle)),
        }
    }

    /// Resets the connection once `bytes` have been sent to the client,
    /// and then calls `on_reset`.
    pub(crate) fn reset_after(
        mut self,
        bytes: Option<u64>,
        on_reset: impl FnOnce(u64) + Send + 'static,
    ) -> Self {
        self.reset_after = bytes;
        self.on_reset = bytes.map(|_| Box::new(on_reset) as OnReset);
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
    fn reset(&mut self) -> io::Error {
        let _ = socket2::SockRef::from(self.inner.get_ref()).set_linger(Some(Duration::ZERO));
        if let Some(report) = self.on_reset.take() {
            report(self.sent);
        }
        io::Error::new(io::ErrorKind::ConnectionReset, "reset fault fired")
    }

    /// Pushes the idle deadline back after traffic.
    fn touch(&mut self) {
        let at = tokio::time::Instant::now() + self.idle;
        self.deadline.as_mut().reset(at);
    }

    /// Fails the pending operation once the idle deadline passes.
    fn poll_idle(&mut self, cx: &mut Context<'_>) -> Poll<io::Error> {
        ready!(self.deadline.as_mut().poll(cx));
        Poll::Ready(io::Error::new(
            io::ErrorKind::TimedOut,
            "idle proxy connection",
        ))
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
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Pending => this.poll_idle(cx).map(Err),
            ready => {
                this.touch();
                ready
            }
        }
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
        let n = match Pin::new(&mut this.inner).poll_write(cx, &buf[..len]) {
            Poll::Pending => return this.poll_idle(cx).map(Err),
            Poll::Ready(r) => r?,
        };
        this.touch();
        this.sent += n as u64;
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
