//! One instance's requests on one session, decided together.
//!
//! The first request to find its session idle leads; requests that come
//! while it works wait in the session's queue. The leader decides its
//! batch on one read of the records and writes the result back with one
//! conditional write, then hands the lead to the first waiter, which takes
//! the whole queue as its batch. So requests of one session never race
//! each other for its record inside one instance (only instances race, and
//! the version check settles that), and a busy session costs a round trip
//! or two per batch rather than per request.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use parking_lot::Mutex;
use tokio::sync::oneshot;

use super::Unavailable;
use crate::clock::Timestamp;
use crate::context::RequestContext;
use crate::engine::{Decision, Engine};
use crate::session::{Account, Session, SessionId};
use crate::verdict::Reason;

/// What a request asks of its session's record.
pub(crate) enum Op {
    /// Judge a request made in this context.
    Decide(Arc<RequestContext>, Timestamp),
    /// Revoke the session for this reason.
    Revoke(Reason, Timestamp),
    /// End an allowed request.
    Release(Timestamp),
}

impl Op {
    /// The engine's decision on the held records (`None`: no such session).
    pub(crate) fn apply(
        &self,
        engine: &Engine,
        sid: SessionId,
        held: Option<(&mut Session, &mut Account)>,
    ) -> Decision {
        match self {
            Self::Decide(ctx, now) => engine.decide_held(sid, held, Arc::clone(ctx), *now),
            Self::Revoke(reason, now) => engine.revoke_held(sid, held, *reason, *now),
            Self::Release(now) => engine.release_held(sid, held.map(|(s, _)| s), *now),
        }
    }
}

/// What a waiting request is told.
pub(crate) enum Turn {
    /// Its decision, made in someone else's batch.
    Done(Result<Decision, Unavailable>),
    /// Lead the next batch, starting with this request's own op.
    Lead(Op),
}

/// A request waiting for its session.
struct Waiting {
    op: Op,
    tx: oneshot::Sender<Turn>,
}

/// The sessions being decided in this instance, each with its waiters.
#[derive(Default)]
pub(crate) struct Queues(Mutex<HashMap<SessionId, VecDeque<Waiting>>>);

impl std::fmt::Debug for Queues {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Queues({} sessions busy)", self.0.lock().len())
    }
}

/// A lead held: dropped, it passes to the next waiter, so that a leader
/// whose request went away never leaves its session stuck.
pub(crate) struct Lead<'a> {
    queues: &'a Queues,
    sid: SessionId,
}

impl Drop for Lead<'_> {
    fn drop(&mut self) {
        let mut q = self.queues.0.lock();
        while let Some(next) = q.get_mut(&self.sid).and_then(VecDeque::pop_front) {
            // A waiter whose request went away cannot lead: try the next.
            if next.tx.send(Turn::Lead(next.op)).is_ok() {
                return;
            }
        }
        q.remove(&self.sid);
    }
}

impl Queues {
    /// Joins session `sid`'s queue with `op`: the lead at once when the
    /// session is idle, else a turn to wait for.
    pub(crate) fn join(
        &self,
        sid: SessionId,
        op: Op,
    ) -> Result<(Lead<'_>, Op), oneshot::Receiver<Turn>> {
        let mut q = self.0.lock();
        match q.get_mut(&sid) {
            Some(waiting) => {
                let (tx, rx) = oneshot::channel();
                waiting.push_back(Waiting { op, tx });
                Err(rx)
            }
            None => {
                q.insert(sid, VecDeque::new());
                Ok((self.lead(sid), op))
            }
        }
    }

    /// The lead of `sid`, for a waiter told to take it.
    pub(crate) fn lead(&self, sid: SessionId) -> Lead<'_> {
        Lead { queues: self, sid }
    }

    /// The leader's batch: its `own` op, then everyone waiting on `sid`
    /// now, with where each waiter's answer goes.
    pub(crate) fn take(&self, sid: SessionId, own: Op) -> (Vec<Op>, Vec<oneshot::Sender<Turn>>) {
        let mut q = self.0.lock();
        let waiting = q.get_mut(&sid).map(std::mem::take).unwrap_or_default();
        drop(q);
        let mut ops = Vec::with_capacity(1 + waiting.len());
        ops.push(own);
        let mut txs = Vec::with_capacity(waiting.len());
        for w in waiting {
            ops.push(w.op);
            txs.push(w.tx);
        }
        (ops, txs)
    }
}
