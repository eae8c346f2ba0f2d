//! The trace: its line types, and reading it back (one JSON object per line, as the target writes them).

use std::collections::{HashMap, VecDeque};
use std::path::Path;
use std::sync::Arc;

use crate::context::RequestContext;
use crate::engine::{Decision, Entry, Upkeep};
use crate::error::{Error, Result};

pub mod proxy;
pub mod records;

pub use proxy::ProxyEvent;
pub use records::{LoginAttempt, LoginFlow, RefusedRequest, TimelineFired, TokenRefresh};

/// How far back, in decisions, a trace line may name the line that holds
/// its context (`context_of`). Past it the target writes the context in
/// full again, so a reader keeps no more than this many contexts back.
pub const MAX_REFERENCE_DISTANCE: u64 = 10_000;

/// Puts back the contexts that decision lines give by reference
/// (`context_of`). Feed it every decision in trace order. It keeps the
/// contexts of the last [`MAX_REFERENCE_DISTANCE`] decisions (twice that,
/// for lines written slightly out of `seq` order), no more.
#[derive(Debug, Default)]
pub struct ContextRefs {
    by_seq: HashMap<u64, Arc<RequestContext>>,
    order: VecDeque<u64>,
    newest: u64,
}

impl ContextRefs {
    /// Remembers `d`'s context, or fills it in from the decision it names.
    /// `Err` carries a reference to no line seen so far (a trace cut short
    /// at its start); the context then stays empty.
    pub fn resolve(&mut self, d: &mut Decision) -> std::result::Result<(), String> {
        if d.context.is_none() {
            d.context = self.context_of(d)?;
        } else {
            let _ = self.context_of(d)?;
        }
        Ok(())
    }

    /// `d`'s context: its own, which is remembered, or the one of the
    /// decision it names. `Err` for a reference to no line seen so far.
    pub fn context_of(
        &mut self,
        d: &Decision,
    ) -> std::result::Result<Option<Arc<RequestContext>>, String> {
        match (&d.context, d.context_of) {
            (Some(ctx), _) => {
                self.remember(d.seq, ctx);
                Ok(Some(Arc::clone(ctx)))
            }
            (None, Some(of)) => match self.by_seq.get(&of) {
                Some(ctx) => Ok(Some(Arc::clone(ctx))),
                None => Err(format!(
                    "context_of {of} names no earlier decision with a context"
                )),
            },
            (None, None) => Ok(None),
        }
    }

    /// Keeps `ctx` under `seq`, forgetting contexts too far back to be named.
    fn remember(&mut self, seq: u64, ctx: &Arc<RequestContext>) {
        self.by_seq.insert(seq, Arc::clone(ctx));
        self.order.push_back(seq);
        self.newest = self.newest.max(seq);
        let oldest = self.newest.saturating_sub(2 * MAX_REFERENCE_DISTANCE);
        while let Some(&seq) = self.order.front().filter(|s| **s < oldest) {
            self.order.pop_front();
            self.by_seq.remove(&seq);
        }
    }

    /// How many contexts are kept.
    pub fn len(&self) -> usize {
        self.by_seq.len()
    }

    /// Whether none is kept.
    pub fn is_empty(&self) -> bool {
        self.by_seq.is_empty()
    }
}

/// One trace line, parsed: every type of line the target and the pool
/// write that a reader uses. The one parser of trace lines: replay, the
/// grade and the readers below all go through it.
#[derive(Debug)]
pub enum TraceLine {
    /// An engine decision (boxed: it is far larger than the others).
    Decision(Box<Decision>),
    /// An engine reset or sweep.
    Upkeep(Upkeep),
    /// A proxy event.
    Proxy(ProxyEvent),
    /// A finished login flow.
    LoginFlow(LoginFlow),
    /// A scripted event.
    Timeline(TimelineFired),
    /// A login attempt.
    LoginAttempt(LoginAttempt),
    /// A request refused before the engine.
    Refused(RefusedRequest),
    /// A refresh-token exchange.
    Refresh(TokenRefresh),
    /// An answer to the JavaScript challenge.
    Challenge(records::ChallengeAnswer),
}

impl TraceLine {
    /// Parses one line by its `"type"` (a line without one is a
    /// decision); `None` for a type no reader uses.
    pub fn parse(line: &str) -> serde_json::Result<Option<Self>> {
        use serde_json::from_value as from;
        let value: serde_json::Value = serde_json::from_str(line)?;
        let ty = value.get("type").and_then(|t| t.as_str());
        Ok(Some(match ty {
            None | Some("decision") => Self::Decision(from(value)?),
            Some("upkeep") => Self::Upkeep(from(value)?),
            Some("proxy") => Self::Proxy(from(value)?),
            Some("login_flow") => Self::LoginFlow(from(value)?),
            Some("timeline") => Self::Timeline(from(value)?),
            Some(records::LOGIN_ATTEMPT) => Self::LoginAttempt(from(value)?),
            Some(records::REFUSED) => Self::Refused(from(value)?),
            Some(records::TOKEN_REFRESH) => Self::Refresh(from(value)?),
            Some(records::CHALLENGE) => Self::Challenge(from(value)?),
            Some(_) => return Ok(None),
        }))
    }

    /// The replayable entry this line is, if it is one.
    pub fn into_entry(self) -> Option<Entry> {
        match self {
            Self::Decision(d) => Some(Entry::Decision(d)),
            Self::Upkeep(u) => Some(Entry::Upkeep(u)),
            _ => None,
        }
    }
}

/// Parses one trace line: a decision, or `None` for another type of event
/// (a line whose `"type"` is present and not `"decision"`).
pub fn parse_line(line: &str) -> serde_json::Result<Option<Decision>> {
    Ok(match parse_entry(line)? {
        Some(Entry::Decision(d)) => Some(*d),
        _ => None,
    })
}

/// Parses one trace line into a replayable entry, or `None` for events
/// replay does not need (proxy events, for instance).
pub fn parse_entry(line: &str) -> serde_json::Result<Option<Entry>> {
    Ok(TraceLine::parse(line)?.and_then(TraceLine::into_entry))
}

/// Parses a JSON Lines trace into its replayable entries. Blank lines and
/// other events are skipped; a malformed line is an error that names the
/// file and the line.
/// Contexts given by reference are put back.
pub fn parse_entries(text: &str, path: &Path) -> Result<Vec<Entry>> {
    let (mut entries, mut refs) = (Vec::new(), ContextRefs::default());
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let error = |message: String| Error::Trace {
            path: path.to_owned(),
            line: i + 1,
            message,
        };
        let parsed = parse_entry(line).map_err(|e| error(e.to_string()))?;
        if let Some(Entry::Decision(mut d)) = parsed {
            refs.resolve(&mut d).map_err(error)?;
            entries.push(Entry::Decision(d));
        } else {
            entries.extend(parsed);
        }
    }
    Ok(entries)
}

/// Parses a JSON Lines trace into its decisions only.
pub fn parse_trace(text: &str, path: &Path) -> Result<Vec<Decision>> {
    let entries = parse_entries(text, path)?;
    let decisions = entries.into_iter().filter_map(|e| match e {
        Entry::Decision(d) => Some(*d),
        Entry::Upkeep(_) => None,
    });
    Ok(decisions.collect())
}

/// Reads and parses the JSON Lines trace at `path` into replayable entries.
pub fn read_entries(path: &Path) -> Result<Vec<Entry>> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    parse_entries(&text, path)
}

/// Reads and parses the JSON Lines trace at `path`.
pub fn read_trace(path: &Path) -> Result<Vec<Decision>> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    parse_trace(&text, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_context_given_by_reference_is_put_back_and_a_dangling_one_is_an_error() {
        let ctx = RequestContext {
            ip: "127.0.0.1".parse().ok(),
            ..RequestContext::default()
        };
        let ctx = serde_json::to_string(&ctx).expect("a context");
        let line = |seq: u64, context: &str| {
            format!(
                r#"{{"seq":{seq},"at":1,"kind":"request","session":"00000000000000000000000000000001","account":"a",{context},"fired":[],"verdict":"allow","on_dead_session":false}}"#
            )
        };
        let full = line(3, &format!(r#""context":{ctx}"#));
        let by_ref = line(4, r#""context_of":3"#);
        let dangling = line(5, r#""context_of":99"#);
        let text = [full.as_str(), &by_ref].join("\n");
        let ds = parse_trace(&text, Path::new("t.jsonl")).expect("parses");
        let ip = ds[1].context.as_ref().and_then(|c| c.ip);
        assert_eq!(ip, "127.0.0.1".parse().ok());
        assert_eq!(ds[1].context_of, Some(3));
        let text = [full.as_str(), &by_ref, &dangling].join("\n");
        let err = parse_trace(&text, Path::new("t.jsonl")).expect_err("dangling");
        assert!(err.to_string().starts_with("t.jsonl:3:"), "{err}");
        assert!(err.to_string().contains("context_of 99"), "{err}");
    }

    fn request(seq: u64) -> Decision {
        Decision {
            seq,
            at: crate::clock::Timestamp::from_millis(seq),
            kind: crate::engine::DecisionKind::Request,
            session: crate::session::SessionId::from_u128(1),
            account: None,
            context: None,
            context_of: None,
            fired: Vec::new(),
            verdict: crate::verdict::Verdict::Allow,
            on_dead_session: false,
        }
    }

    #[test]
    fn contexts_too_far_back_to_be_named_are_forgotten() {
        let mut refs = ContextRefs::default();
        let ctx = Arc::new(RequestContext::default());
        for seq in 0..(5 * MAX_REFERENCE_DISTANCE) {
            let mut d = request(seq);
            d.context = Some(Arc::clone(&ctx));
            refs.resolve(&mut d).expect("a full context");
        }
        assert!(
            refs.len() as u64 <= 2 * MAX_REFERENCE_DISTANCE + 1,
            "{}",
            refs.len()
        );
        let mut near = request(5 * MAX_REFERENCE_DISTANCE);
        near.context_of = Some(4 * MAX_REFERENCE_DISTANCE);
        refs.resolve(&mut near).expect("a line in reach");
        assert!(near.context.is_some());
    }

    #[test]
    fn a_bad_line_is_named() {
        let err = parse_trace("\n{\"nope\": 1}\n", Path::new("t.jsonl")).expect_err("bad line");
        assert!(err.to_string().starts_with("t.jsonl:2:"), "{err}");
        assert!(
            parse_trace("\n  \n", Path::new("t.jsonl"))
                .expect("blank")
                .is_empty()
        );
    }
}
