//! What the target recorded during a run, read back from its trace.

use std::collections::HashMap;
use std::path::Path;

use crate::clock::Timestamp;
use crate::engine::{Decision, DecisionKind};
use crate::error::{Error, Result};
use crate::pool::ProxyEvent;
use crate::session::SessionId;
use crate::target::attempts::{LoginAttempt, RefusedRequest, TokenRefresh};
use crate::target::state::LoginFlow;
use crate::trace::ContextRefs;
use crate::verdict::Verdict;

/// A scripted target-side event, as the runner traces it.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TimelineFired {
    /// Always `"timeline"`.
    #[serde(rename = "type")]
    pub kind: String,
    /// When it fired.
    pub at: Timestamp,
    /// What it did, as written in the scenario.
    pub action: String,
    /// Details, such as the account or the sessions affected.
    pub detail: String,
}

/// Every line of a run's trace that grading uses, in trace order.
#[derive(Clone, Debug, Default)]
pub struct TraceFacts {
    /// Engine decisions.
    pub decisions: Vec<Decision>,
    /// Proxy events.
    pub proxy: Vec<ProxyEvent>,
    /// Finished login flows.
    pub login_flows: Vec<LoginFlow>,
    /// Scripted events that fired.
    pub timeline: Vec<TimelineFired>,
    /// Every login attempt, with its outcome.
    pub login_attempts: Vec<LoginAttempt>,
    /// Requests refused before the engine judged them.
    pub refused: Vec<RefusedRequest>,
    /// Refresh-token exchanges.
    pub refreshes: Vec<TokenRefresh>,
}

impl TraceFacts {
    /// Parses JSON Lines trace text; `path` names the file in errors. A
    /// line of an unknown type is skipped; a malformed line is an error
    /// naming the file and line.
    pub fn parse(text: &str, path: &Path) -> Result<Self> {
        let (mut facts, mut refs) = (Self::default(), ContextRefs::default());
        for (i, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            facts.add(line, &mut refs).map_err(|message| Error::Trace {
                path: path.to_owned(),
                line: i + 1,
                message,
            })?;
        }
        Ok(facts)
    }

    /// Adds one line. A context reference that names no earlier line is
    /// an error, as bad JSON is.
    fn add(&mut self, line: &str, refs: &mut ContextRefs) -> std::result::Result<(), String> {
        let json = |e: serde_json::Error| e.to_string();
        let value: serde_json::Value = serde_json::from_str(line).map_err(json)?;
        match value.get("type").and_then(|t| t.as_str()) {
            None | Some("decision") => {
                let mut d: Decision = serde_json::from_value(value).map_err(json)?;
                let resolved = refs.resolve(&mut d);
                self.decisions.push(d);
                resolved?;
            }
            Some("proxy") => self
                .proxy
                .push(serde_json::from_value(value).map_err(json)?),
            Some("login_flow") => self
                .login_flows
                .push(serde_json::from_value(value).map_err(json)?),
            Some("timeline") => self
                .timeline
                .push(serde_json::from_value(value).map_err(json)?),
            Some("login_attempt") => self
                .login_attempts
                .push(serde_json::from_value(value).map_err(json)?),
            Some("refused") => self
                .refused
                .push(serde_json::from_value(value).map_err(json)?),
            Some("token_refresh") => self
                .refreshes
                .push(serde_json::from_value(value).map_err(json)?),
            Some(_) => {}
        }
        Ok(())
    }

    /// Reads and parses a trace file.
    pub fn read(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        Self::parse(&text, path)
    }

    /// Each session's life, keyed by id, in order of birth. A request
    /// decided within `grace` of the one that revealed its session's death
    /// was in flight when the client could first know; later ones are
    /// zombies.
    pub fn sessions(&self, grace: std::time::Duration) -> Vec<SessionLife<'_>> {
        let mut order: Vec<SessionId> = Vec::new();
        let mut lives: HashMap<SessionId, SessionLife<'_>> = HashMap::new();
        for d in &self.decisions {
            let life = lives.entry(d.session).or_insert_with(|| {
                order.push(d.session);
                SessionLife {
                    id: d.session,
                    birth: None,
                    death: None,
                    revealed: None,
                    in_flight: Vec::new(),
                    zombies: Vec::new(),
                    requests: Vec::new(),
                    in_flight_allowance: 0,
                }
            });
            life.add(d, grace);
        }
        order
            .into_iter()
            .filter_map(|id| lives.remove(&id))
            .collect()
    }
}

/// One session as the trace saw it.
#[derive(Clone, Debug)]
pub struct SessionLife<'a> {
    /// The session.
    pub id: SessionId,
    /// Its login decision, if it was born in this trace.
    pub birth: Option<&'a Decision>,
    /// The decision that ended it (the first verdict that left it dead).
    pub death: Option<&'a Decision>,
    /// The request that showed the client it was dead: the fatal request
    /// itself, or the first request after a death the client did not cause.
    pub revealed: Option<&'a Decision>,
    /// Requests after the revealing one, within the grace and within the
    /// session's own concurrency: sent, most likely, before its answer
    /// reached the client.
    pub in_flight: Vec<&'a Decision>,
    /// How many requests after the reveal may count as in flight: one less
    /// than the most requests the session made within one grace before.
    pub in_flight_allowance: usize,
    /// Requests after the revealing one and its grace.
    pub zombies: Vec<&'a Decision>,
    /// Times of every request decision on it.
    pub requests: Vec<Timestamp>,
}

impl<'a> SessionLife<'a> {
    fn add(&mut self, d: &'a Decision, grace: std::time::Duration) {
        match d.kind {
            DecisionKind::Login { .. } if d.verdict == Verdict::Allow => self.birth = Some(d),
            DecisionKind::Login { .. } | DecisionKind::LoginGate | DecisionKind::Release => {}
            DecisionKind::Revoke { .. } => {
                if self.death.is_none() && d.verdict.is_terminal() {
                    self.death = Some(d);
                }
            }
            DecisionKind::Request => self.request(d, grace),
        }
    }

    fn request(&mut self, d: &'a Decision, grace: std::time::Duration) {
        self.requests.push(d.at);
        if let Some(rev) = self.revealed {
            let concurrent = self.in_flight.len() < self.in_flight_allowance;
            if d.at <= rev.at.plus(grace) && concurrent {
                self.in_flight.push(d);
            } else {
                self.zombies.push(d);
            }
            return;
        }
        if d.verdict.is_terminal() {
            if self.death.is_none() {
                self.death = Some(d);
            }
            self.revealed = Some(d);
            self.in_flight_allowance = most_within(&self.requests, grace).saturating_sub(1);
        }
    }

    /// Whether it was born by a login.
    pub fn born(&self) -> bool {
        self.birth.is_some()
    }

    /// When it was in use, from its birth to its death or its last request,
    /// whichever is later; `None` for a session not born in this trace.
    pub fn span(&self) -> Option<(Timestamp, Timestamp)> {
        let born = self.birth?.at;
        let last = self.requests.iter().copied().max().unwrap_or(born);
        let end = self.death.map_or(last, |d| d.at.max(last));
        Some((born, end.max(born)))
    }
}

/// The most of `times` (in order) that fall within one `window`: how many
/// requests a session had on their way at once.
fn most_within(times: &[Timestamp], window: std::time::Duration) -> usize {
    let (mut best, mut lo) = (0, 0);
    for hi in 0..times.len() {
        while times[hi] > times[lo].plus(window) {
            lo += 1;
        }
        best = best.max(hi + 1 - lo);
    }
    best
}
