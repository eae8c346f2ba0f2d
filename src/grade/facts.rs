//! What the target recorded during a run, summed up from its trace.
//!
//! A [`TraceFacts`] keeps what grading needs and no more: per session its
//! birth, death and revealing decisions and counts, for the run counters
//! and the few events the report names. Its size grows with the number of
//! sessions, not with the number of requests; [`FactsBuilder`] builds it
//! one trace line at a time.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;
use std::time::Duration;

use crate::clock::Timestamp;
use crate::engine::Decision;
use crate::error::{Error, Result};
use crate::grade::explain::ExitNames;
use crate::session::SessionId;

pub use crate::grade::builder::FactsBuilder;
pub use crate::trace::records::TimelineFired;

/// What grading uses of a run's trace, summed up line by line.
#[derive(Clone, Debug, Default)]
pub struct TraceFacts {
    /// The in-flight grace the sessions' late requests were sorted with.
    pub grace: Duration,
    /// Each session's life, in order of its first decision.
    pub lives: Vec<SessionLife>,
    /// Exit names by address, from the pool's events.
    pub exits: ExitNames,
    /// Exits that died (the `dies` fault).
    pub dead_exits: BTreeSet<String>,
    /// The pool's notable moves (sticky rotations and faults), the first
    /// [`crate::grade::builder::MAX_PROXY_NOTES`] as sentences.
    pub proxy_notes: Vec<String>,
    /// Finished login flows.
    pub login_flows: u64,
    /// Seconds spent in them, summed in trace order.
    pub login_seconds: f64,
    /// Scripted events that fired.
    pub timeline: Vec<TimelineFired>,
    /// Requests the engine refused, by verdict and reason
    /// (`challenge(VELOCITY_EXCEEDED)`), and requests refused before it
    /// (`refused(LOGIN_REQUIRED)`).
    pub requests_refused: BTreeMap<String, u64>,
    /// Login attempts refused, by reason.
    pub logins_refused: BTreeMap<String, u64>,
    /// Login attempts that produced a session.
    pub logins_ok: u64,
    /// Refresh-token exchanges that rotated an access token, by session.
    pub rotations: HashMap<SessionId, u64>,
    /// Decisions on sessions never born in this trace, past the first
    /// [`crate::grade::builder::MAX_UNBORN`] such sessions: counted, not
    /// tracked one by one, so a flood of made-up session ids cannot grow
    /// grading's memory.
    pub untracked_requests: u64,
    /// Answers to the JavaScript challenge: `page` and `client` for those
    /// solved (by the page's script, or by the client's own code), `wrong`
    /// for the others.
    pub challenges: BTreeMap<String, u64>,
}

impl TraceFacts {
    /// Parses JSON Lines trace text, sorting late requests with the
    /// default in-flight grace; `path` names the file in errors. A line of
    /// an unknown type is skipped; a malformed line is an error naming the
    /// file and line.
    pub fn parse(text: &str, path: &Path) -> Result<Self> {
        Self::parse_with_grace(text, path, crate::grade::DEFAULT_IN_FLIGHT_GRACE)
    }

    /// [`TraceFacts::parse`] with the scenario's in-flight grace.
    pub fn parse_with_grace(text: &str, path: &Path, grace: Duration) -> Result<Self> {
        let mut facts = FactsBuilder::new(grace);
        for (i, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            facts.add_line(line).map_err(|message| Error::Trace {
                path: path.to_owned(),
                line: i + 1,
                message,
            })?;
        }
        Ok(facts.finish())
    }

    /// Reads and parses a trace file (see [`TraceFacts::parse`]).
    pub fn read(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        Self::parse(&text, path)
    }
}

/// One session as the trace saw it.
#[derive(Clone, Debug)]
pub struct SessionLife {
    /// The session.
    pub id: SessionId,
    /// Its login decision, if it was born in this trace.
    pub birth: Option<Decision>,
    /// The decision that ended it (the first verdict that left it dead).
    pub death: Option<Decision>,
    /// The request that showed the client it was dead: the fatal request
    /// itself, or the first request after a death the client did not cause.
    pub revealed: Option<Decision>,
    /// Requests after the revealing one, within the grace and within the
    /// session's own concurrency: sent, most likely, before its answer
    /// reached the client.
    pub in_flight: u64,
    /// How many requests after the reveal may count as in flight: one less
    /// than the most requests the session made within one grace before.
    pub in_flight_allowance: usize,
    /// Requests after the revealing one, past its grace or its allowance.
    pub zombies: u64,
    /// When the last of those (in trace order) arrived.
    pub last_zombie: Option<Timestamp>,
    /// Request decisions on it.
    pub requests: u64,
    /// The latest of their times.
    pub last_request: Option<Timestamp>,
    /// Most of its requests within one second.
    pub peak_rate: u64,
    /// Revocations on an operator's order (`SESSION_REVOKED`).
    pub operator_revocations: u64,
    /// Requests refused for outliving its absolute TTL.
    pub ttl_expiries: u64,
    /// Requests refused for idling out.
    pub idle_expiries: u64,
    /// Requests from another address than its login.
    pub exit_moves: u64,
}

impl SessionLife {
    /// A session of which nothing is known yet.
    pub fn new(id: SessionId) -> Self {
        Self {
            id,
            birth: None,
            death: None,
            revealed: None,
            in_flight: 0,
            in_flight_allowance: 0,
            zombies: 0,
            last_zombie: None,
            requests: 0,
            last_request: None,
            peak_rate: 0,
            operator_revocations: 0,
            ttl_expiries: 0,
            idle_expiries: 0,
            exit_moves: 0,
        }
    }

    /// Whether it was born by a login.
    pub fn born(&self) -> bool {
        self.birth.is_some()
    }

    /// When it was in use, from its birth to its death or its last request,
    /// whichever is later; `None` for a session not born in this trace.
    pub fn span(&self) -> Option<(Timestamp, Timestamp)> {
        let born = self.birth.as_ref()?.at;
        let last = self.last_request.unwrap_or(born);
        let end = self.death.as_ref().map_or(last, |d| d.at.max(last));
        Some((born, end.max(born)))
    }
}
