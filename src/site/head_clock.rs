//! hyper's header-read timer, split in two: a keep-alive idle wait until a request head's first byte, then the head timeout from that byte.
//!
//! hyper's HTTP/1 server starts its `header_read_timeout` whenever it
//! waits for a request head, so on a keep-alive connection the time a
//! client spends idle between requests counts against the head timeout.
//! [`HeadClock`] is the [`Timer`] that timeout runs on. The first head of a
//! connection gets the head timeout from the start, as the rest of the
//! opening does. Every later wait first allows the idle timeout for the
//! first byte of the next head to arrive (seen through the connection's
//! [`HeadTap`]), and only then the head timeout, from that byte.
//!
//! hyper asks for a new timer for every head. Registering a tokio timer
//! for each one, and cancelling it as soon as the head arrives, cost a
//! busy connection more than any rule did; so each connection keeps one
//! alarm, armed across its waits. A wait re-arms it only when it needs an
//! earlier deadline, or when the alarm went off before the wait's own
//! deadline; on a busy keep-alive connection it is re-armed about once
//! per idle timeout rather than once per request.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use hyper::rt::{Sleep, Timer};
use parking_lot::Mutex;
use tokio::time::Instant;

use crate::site::head_tap::HeadTap;

/// The header-read timer of one HTTP/1 connection.
#[derive(Clone, Debug)]
pub(crate) struct HeadClock {
    tap: HeadTap,
    idle: Duration,
    shared: Arc<Shared>,
}

/// What the waits of one connection share.
#[derive(Debug, Default)]
struct Shared {
    /// Set once the first head's wait has begun; later waits start idle.
    opened: AtomicBool,
    /// Set when a wait ran out before the next head's first byte came.
    idle_expired: AtomicBool,
    /// The connection's one timer, from its first wait on.
    alarm: Mutex<Option<Pin<Box<tokio::time::Sleep>>>>,
}

impl HeadClock {
    /// A timer that allows `idle` between requests, reading the
    /// connection's bytes through `tap`.
    pub(crate) fn new(tap: HeadTap, idle: Duration) -> Self {
        Self {
            tap,
            idle,
            shared: Arc::default(),
        }
    }

    /// Whether the connection was closed for idling between requests,
    /// rather than for a head that started and did not finish.
    pub(crate) fn idle_expired(&self) -> bool {
        self.shared.idle_expired.load(Ordering::Relaxed)
    }

    /// A wait for a head that hyper allows `head` for, from `start`.
    fn wait(&self, start: Instant, head: Duration) -> HeadWait {
        let first = !self.shared.opened.swap(true, Ordering::Relaxed);
        let idle_since = (!first && !self.tap.head_begun()).then(|| self.tap.reads());
        let limit = if idle_since.is_some() {
            self.idle
        } else {
            head
        };
        HeadWait {
            deadline: start + limit,
            head,
            idle_since,
            tap: self.tap.clone(),
            shared: Arc::clone(&self.shared),
        }
    }
}

impl Timer for HeadClock {
    fn sleep(&self, duration: Duration) -> Pin<Box<dyn Sleep>> {
        Box::pin(self.wait(Instant::now(), duration))
    }

    /// hyper's deadline is its `now()` plus the head timeout.
    fn sleep_until(&self, deadline: std::time::Instant) -> Pin<Box<dyn Sleep>> {
        let head = deadline.saturating_duration_since(std::time::Instant::now());
        Box::pin(self.wait(Instant::now(), head))
    }
}

/// One wait for a request head: idle until its first byte, then the head timeout.
#[derive(Debug)]
struct HeadWait {
    /// When this wait runs out.
    deadline: Instant,
    head: Duration,
    /// While idle: the tap's read count when the wait began.
    idle_since: Option<u64>,
    tap: HeadTap,
    shared: Arc<Shared>,
}

impl Future for HeadWait {
    type Output = ();

    /// hyper polls this each time the connection wakes without a whole
    /// head, so a read that brought the first byte is seen here at once.
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = &mut *self;
        if this.idle_since.is_some_and(|mark| this.tap.reads() != mark) {
            this.idle_since = None;
            this.deadline = Instant::now() + this.head;
        }
        let deadline = this.deadline;
        let mut alarm = this.shared.alarm.lock();
        let alarm = alarm.get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        loop {
            if alarm.deadline() > deadline {
                alarm.as_mut().reset(deadline);
            }
            if alarm.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            if Instant::now() >= deadline {
                break;
            }
            // It went off for an earlier wait: on to this one's deadline.
            alarm.as_mut().reset(deadline);
        }
        if this.idle_since.is_some() {
            this.shared.idle_expired.store(true, Ordering::Relaxed);
        }
        Poll::Ready(())
    }
}

impl Sleep for HeadWait {}
