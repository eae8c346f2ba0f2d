//! Open h2 streams of one connection, so that a connection at rest can be closed after the idle timeout.
//!
//! hyper's h2 server has no idle timeout: a connection with no open
//! stream stays open as long as the client keeps it. A stream counts as
//! open from the moment its request reaches the router until its response
//! body is dropped (sent, or reset by the client), so a long response
//! (the admin event stream) keeps its connection alive.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use bytes::Bytes;
use hyper::body::{Frame, SizeHint};
use tokio::sync::watch;

/// How many streams of a connection are open.
#[derive(Clone, Debug)]
pub(crate) struct Streams(Arc<watch::Sender<usize>>);

impl Default for Streams {
    fn default() -> Self {
        Self(Arc::new(watch::Sender::new(0)))
    }
}

impl Streams {
    /// Counts a stream open until the returned guard drops.
    pub(crate) fn open(&self) -> StreamGuard {
        self.0.send_modify(|n| *n += 1);
        StreamGuard(self.clone())
    }

    /// Resolves once no stream has been open for `idle` at a stretch.
    pub(crate) async fn idle_for(&self, idle: Duration) {
        let mut open = self.0.subscribe();
        loop {
            if open.wait_for(|n| *n == 0).await.is_err() {
                return std::future::pending().await;
            }
            let busy = tokio::time::timeout(idle, open.wait_for(|n| *n > 0)).await;
            if busy.is_err() {
                return;
            }
        }
    }
}

/// One open stream; dropping it counts the stream closed.
#[derive(Debug)]
pub(crate) struct StreamGuard(Streams);

impl Drop for StreamGuard {
    fn drop(&mut self) {
        self.0.0.send_modify(|n| *n = n.saturating_sub(1));
    }
}

/// A response body that keeps its stream counted open until it is dropped.
#[derive(Debug)]
pub(crate) struct Tracked {
    body: Body,
    _stream: Option<StreamGuard>,
}

impl Tracked {
    /// `body`, holding `stream` (h2) or nothing (HTTP/1) until it drops.
    pub(crate) fn new(body: Body, stream: Option<StreamGuard>) -> Self {
        Self {
            body,
            _stream: stream,
        }
    }
}

impl hyper::body::Body for Tracked {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn idle_only_after_the_last_stream_closed_for_the_whole_wait() {
        let streams = Streams::default();
        let idle = Duration::from_millis(100);
        let guard = streams.open();
        let waiting = tokio::time::timeout(idle * 3, streams.idle_for(idle));
        let later = async {
            tokio::time::sleep(idle * 5 / 2).await;
            drop(guard);
        };
        let (idled, ()) = tokio::join!(waiting, later);
        assert!(idled.is_err(), "a stream was open until 250 ms");
        let start = tokio::time::Instant::now();
        streams.idle_for(idle).await;
        assert!(start.elapsed() >= idle);
    }
}
