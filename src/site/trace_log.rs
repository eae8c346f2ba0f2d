//! The decision trace: every event appended to a JSON Lines file as it happens.
//!
//! Each line is written with one `write` call on an unbuffered file, so a
//! crash or Ctrl-C loses nothing that was already decided: the line is in
//! the kernel's hands before the response leaves. Recent lines are also
//! kept in memory for the admin API and fanned out to live followers.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use serde::Serialize;
use tokio::sync::broadcast;

use crate::context::RequestContext;
use crate::engine::{Decision, Upkeep};
use crate::error::Result;
use crate::grade::{RunView, TraceFacts, ViewBuilder};
use crate::site::trace_file::{Dropped, TraceFile, TraceLimit};
use crate::trace::{self, TraceLine};

/// Bytes of recent trace kept in memory for the admin API and tests.
pub const RECENT_BYTES: usize = 64 << 20;
/// Size of one in-memory chunk of lines.
const CHUNK: usize = 1 << 20;
/// A decision with its context is under 2 KiB.
const LINE_CAPACITY: usize = 2048;
/// A line buffer grown past this by an unusual line is not kept.
const MAX_KEPT_LINE: usize = 64 << 10;

thread_local! {
    /// Each thread serializes its lines into one reused buffer, so that
    /// tracing a decision allocates nothing.
    static LINE: RefCell<Vec<u8>> = RefCell::new(Vec::with_capacity(LINE_CAPACITY));
}

/// The trace of one target run.
#[derive(Debug)]
pub struct TraceLog {
    file: Option<TraceFile>,
    path: Option<PathBuf>,
    recent: Mutex<Recent>,
    live: broadcast::Sender<Arc<str>>,
    /// The run's own summary of every line, when it grades from it.
    graded: Option<Mutex<ViewBuilder>>,
}

/// Recent lines, newline-terminated, in large chunks: appending a line
/// costs no allocation of its own, and old chunks are dropped whole.
#[derive(Debug)]
struct Recent {
    chunks: VecDeque<Vec<u8>>,
    bytes: usize,
    budget: usize,
}

impl Default for Recent {
    fn default() -> Self {
        Self {
            chunks: VecDeque::new(),
            bytes: 0,
            budget: RECENT_BYTES,
        }
    }
}

impl Recent {
    /// The chunk to append to, starting a new one when the last is full.
    fn tail(&mut self) -> &mut Vec<u8> {
        if self.chunks.back().is_none_or(|c| c.len() >= CHUNK) {
            self.chunks.push_back(Vec::with_capacity(CHUNK + 8192));
        }
        let last = self.chunks.len() - 1;
        &mut self.chunks[last]
    }

    /// Drops the oldest chunks while more than the budget is kept.
    fn trim(&mut self) {
        while self.bytes > self.budget && self.chunks.len() > 1 {
            if let Some(old) = self.chunks.pop_front() {
                self.bytes -= old.len();
            }
        }
    }
}

impl TraceLog {
    /// A trace kept in memory only.
    pub fn in_memory() -> Self {
        Self {
            file: None,
            path: None,
            recent: Mutex::new(Recent::default()),
            live: broadcast::channel(4096).0,
            graded: None,
        }
    }

    /// Keeps about `bytes` of recent trace in memory (whole chunks of 1 MiB,
    /// at least one) instead of [`RECENT_BYTES`].
    #[must_use]
    pub fn keeping_recent(self, bytes: usize) -> Self {
        self.recent.lock().budget = bytes;
        self
    }

    /// Also sums up every event as it is recorded, for
    /// [`TraceLog::take_graded`]: the runner grades and draws its report
    /// from this summary, which no client can reach, and never from the
    /// file, which a client on the same machine could edit. The summary
    /// keeps what grading and drawing need per session, not the lines (see
    /// [`ViewBuilder`]); `grace` is the scenario's in-flight grace.
    #[must_use]
    pub fn grading(mut self, grace: Duration) -> Self {
        self.graded = Some(Mutex::new(ViewBuilder::new(grace)));
        self
    }

    /// The summary of every event recorded since the start, and the view
    /// the report draws (see [`TraceLog::grading`]), leaving an empty
    /// summary; `None` when the trace is not graded.
    pub fn take_graded(&self) -> Option<(TraceFacts, RunView)> {
        let graded = self.graded.as_ref()?;
        let mut graded = graded.lock();
        let grace = graded.grace();
        Some(std::mem::replace(&mut *graded, ViewBuilder::new(grace)).finish())
    }

    /// Feeds the summary, if the trace is graded.
    fn grade(&self, add: impl FnOnce(&mut ViewBuilder)) {
        if let Some(graded) = &self.graded {
            add(&mut graded.lock());
        }
    }

    /// A trace appended to `path`, creating its directory.
    pub fn open(path: &Path) -> Result<Self> {
        Self::open_limited(path, None)
    }

    /// A trace appended to `path`, creating its directory; with a limit,
    /// a full file is renamed `<path>.1` and a new one started (see
    /// [`TraceFile`]).
    pub fn open_limited(path: &Path, limit: Option<TraceLimit>) -> Result<Self> {
        Ok(Self {
            file: Some(TraceFile::open(path, limit)?),
            path: Some(path.to_owned()),
            ..Self::in_memory()
        })
    }

    /// The least `seq` a `context_of` written now may name: the first
    /// decision of the current trace file (0 without a file).
    pub fn floor(&self) -> u64 {
        self.file.as_ref().map_or(0, TraceFile::floor)
    }

    /// What the file's size limit has deleted so far.
    pub fn dropped(&self) -> Dropped {
        self.file
            .as_ref()
            .map(TraceFile::dropped)
            .unwrap_or_default()
    }

    /// Where the trace is written, if anywhere.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// Appends a decision. Returns whether the line reached the file (or
    /// whether there is no file): a write that failed, for a full disk,
    /// does not fail the request.
    pub fn record(&self, d: &Decision) -> bool {
        self.record_request(d, None).0
    }

    /// Appends a decision whose line names the context of an earlier one
    /// (`context_of`) when `ctx` is its own context: if the file was
    /// started anew since that decision, the context is written in full
    /// instead, so that no reference crosses files. Returns whether the
    /// line reached the file, and whether it was written with its context
    /// in full.
    pub fn record_request(&self, d: &Decision, ctx: Option<&Arc<RequestContext>>) -> (bool, bool) {
        if let Some(f) = &self.file {
            f.saw_seq(d.seq);
        }
        let full = |floor: u64| {
            let ctx = ctx.filter(|_| d.context_of.is_some_and(|of| of < floor))?;
            let whole = Decision {
                context: Some(Arc::clone(ctx)),
                context_of: None,
                ..d.clone()
            };
            let mut line = serde_json::to_vec(&TraceEvent::Decision(&whole)).ok()?;
            line.push(b'\n');
            Some(line)
        };
        let (written, _, redone) = self.write_event(&TraceEvent::Decision(d), full);
        // The engine's decisions all come here, whole: a context given
        // by reference names a decision already summed up.
        self.grade(|g| g.add_decision(d));
        (written, d.context.is_some() || redone)
    }

    /// Appends a reset or sweep of the engine.
    pub fn record_upkeep(&self, u: &Upkeep) {
        self.write_event(&TraceEvent::Upkeep(u), |_| None);
    }

    /// Appends any serializable event (proxy events, scripted events).
    ///
    /// The line is serialized outside any lock and written to the file
    /// with one `write` on an `O_APPEND` descriptor, which the kernel
    /// applies atomically, before this returns.
    ///
    /// Returns whether the event itself (not an error in its place)
    /// reached the file, or whether there is no file.
    pub fn record_value(&self, event: &impl Serialize) -> bool {
        let (written, parsed, _) = self.write_event(event, |_| None);
        if let Some(parsed) = parsed {
            self.grade(|g| g.add(&parsed));
        }
        written
    }

    /// Serializes and appends one event; returns whether it reached the
    /// file, when the trace is graded the event read back as grading sees
    /// it (parsed outside any lock), and whether `redo` gave the file
    /// another line (see [`TraceFile::write`]).
    fn write_event(
        &self,
        event: &impl Serialize,
        redo: impl FnOnce(u64) -> Option<Vec<u8>>,
    ) -> (bool, Option<TraceLine>, bool) {
        let mut redo = Some(redo);
        let mut write = |line: &mut Vec<u8>| {
            line.clear();
            let serialized = serde_json::to_writer(&mut *line, event);
            if let Err(e) = &serialized {
                line.clear();
                let msg = serde_json::json!({ "type": "trace_error", "error": e.to_string() });
                line.extend_from_slice(msg.to_string().as_bytes());
            }
            line.push(b'\n');
            let redo = redo.take();
            let (written, redone) = self.append(line, |floor| redo.and_then(|r| r(floor)));
            let parsed = self
                .graded
                .as_ref()
                .and_then(|_| std::str::from_utf8(&line[..line.len() - 1]).ok())
                .and_then(|text| TraceLine::parse(text).ok().flatten())
                .filter(|p| !matches!(p, TraceLine::Decision(_)));
            if line.capacity() > MAX_KEPT_LINE {
                *line = Vec::with_capacity(LINE_CAPACITY);
            }
            (written && serialized.is_ok(), parsed, redone)
        };
        // While a thread is being torn down its buffer may be gone already:
        // a line written then (a request dropped late) gets a buffer of its own.
        LINE.try_with(|line| write(&mut line.borrow_mut()))
            .unwrap_or_else(|_| write(&mut Vec::new()))
    }

    /// Writes one serialized, newline-terminated line everywhere it goes;
    /// returns whether it reached the file, or whether there is none.
    fn append(&self, line: &[u8], redo: impl FnOnce(u64) -> Option<Vec<u8>>) -> (bool, bool) {
        // A failed write (disk full) must not fail the request; the line
        // still reaches the in-memory trace and live followers.
        let mut redone = false;
        let written = self.file.as_ref().is_none_or(|file| {
            file.write(line, |floor| {
                let again = redo(floor);
                redone = again.is_some();
                again
            })
        });
        if self.live.receiver_count() > 0 {
            let text = String::from_utf8_lossy(&line[..line.len() - 1]);
            let _ = self.live.send(text.into());
        }
        let mut recent = self.recent.lock();
        recent.tail().extend_from_slice(line);
        recent.bytes += line.len();
        recent.trim();
        (written, redone)
    }

    /// The most recent lines, oldest first.
    pub fn recent(&self) -> Vec<Arc<str>> {
        let recent = self.recent.lock();
        let lines = recent.chunks.iter().flat_map(|c| c.split(|b| *b == b'\n'));
        lines
            .filter(|l| !l.is_empty())
            .map(|l| String::from_utf8_lossy(l).into())
            .collect()
    }

    /// The last `max` recent lines, oldest first: the lock is held while
    /// `max` lines are copied, however much recent trace there is.
    pub fn recent_tail(&self, max: usize) -> Vec<Arc<str>> {
        let recent = self.recent.lock();
        let chunks = recent.chunks.iter().rev();
        let lines = chunks.flat_map(|c| c.rsplit(|b| *b == b'\n'));
        let mut tail: Vec<Arc<str>> = lines
            .filter(|l| !l.is_empty())
            .take(max)
            .map(|l| String::from_utf8_lossy(l).into())
            .collect();
        drop(recent);
        tail.reverse();
        tail
    }

    /// The recent decisions, parsed back, with contexts given by
    /// reference put back. A reference to a line already dropped from
    /// memory leaves that decision without its context.
    pub fn decisions(&self) -> Vec<Decision> {
        let mut refs = trace::ContextRefs::default();
        let recent = self.recent();
        let parsed = recent
            .iter()
            .filter_map(|l| trace::parse_line(l).ok().flatten());
        parsed
            .map(|mut d| {
                let _ = refs.resolve(&mut d);
                d
            })
            .collect()
    }

    /// A receiver of every line appended from now on.
    pub fn follow(&self) -> broadcast::Receiver<Arc<str>> {
        self.live.subscribe()
    }
}

/// One line of the trace, tagged by its type.
#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum TraceEvent<'a> {
    Decision(&'a Decision),
    Upkeep(&'a Upkeep),
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::EngineConfig;
    use crate::engine::Engine;
    use crate::grade::SessionLife;
    use crate::grade::tests::ctx;
    use crate::grade::view::Mark;
    use crate::session::SessionId;
    use crate::trace::records::{LoginFlow, RefusalReason, RefusedRequest};
    use crate::verdict::Reason;
    use crate::{Clock, Timestamp};

    /// Records a short run through a graded trace: two sessions, one
    /// revoked and used on, contexts given by reference, a login flow and
    /// an early refusal.
    fn record_a_run(log: &TraceLog) {
        let engine = Engine::new(EngineConfig::default()).expect("engine");
        let at = |ms: u64| Timestamp::from_millis(1_790_000_000_000 + ms);
        for n in 1..=2u64 {
            let sid = SessionId::from_u128(u128::from(n));
            log.record(&engine.login(sid, "alice", ctx("127.0.1.9"), vec![], at(n)));
            let first = engine.decide(sid, ctx("127.0.1.9"), at(10 * n));
            log.record(&first);
            for i in 0..30 {
                let mut d = engine.decide(sid, ctx("127.0.1.9"), at(100 + 7 * i + n));
                (d.context, d.context_of) = (None, Some(first.seq));
                log.record(&d);
                log.record(&engine.release(sid, at(100 + 7 * i + n)));
            }
        }
        let sid = SessionId::from_u128(1);
        log.record(&engine.revoke(sid, Reason::SessionRevoked, at(400)));
        for ms in [500, 510, 900, 1_300] {
            log.record(&engine.decide(sid, ctx("127.0.2.9"), at(ms)));
        }
        log.record_value(&LoginFlow {
            kind: "login_flow".into(),
            session: sid,
            started: at(0),
            at: at(1),
        });
        log.record_value(&RefusedRequest {
            kind: "refused".into(),
            at: at(5),
            route: "/api/v1/items".into(),
            ip: "127.0.0.1".parse().expect("an address"),
            reason: RefusalReason::LoginRequired,
        });
    }

    /// What grading reads of a life.
    fn seen(l: &SessionLife) -> impl PartialEq + std::fmt::Debug + use<> {
        let counts = (
            l.in_flight,
            l.zombies,
            l.requests,
            l.peak_rate,
            l.exit_moves,
        );
        let times = (l.last_zombie, l.last_request, l.in_flight_allowance);
        (
            l.id,
            l.birth.clone(),
            l.death.clone(),
            l.revealed.clone(),
            counts,
            times,
        )
    }

    #[test]
    fn the_recent_tail_is_the_last_lines_in_order() {
        let log = TraceLog::in_memory();
        for i in 0..10 {
            log.record_value(&serde_json::json!({ "type": "note", "i": i }));
        }
        let tail = log.recent_tail(3);
        let i: Vec<String> = tail.iter().map(|l| l.to_string()).collect();
        assert_eq!(i.len(), 3);
        assert!(
            i[0].contains("\"i\":7") && i[2].contains("\"i\":9"),
            "{i:?}"
        );
        assert_eq!(log.recent_tail(100).len(), 10);
    }

    #[test]
    fn the_runners_summary_is_the_summary_of_its_trace_file() {
        let grace = Duration::from_millis(200);
        let log = TraceLog::in_memory().grading(grace);
        record_a_run(&log);
        let (live, drawn) = log.take_graded().expect("graded");
        let text = log.recent().join("\n");
        // The dashboard draws from lines: it sees what the report sees.
        let mut from_lines = ViewBuilder::new(grace);
        text.lines().for_each(|l| from_lines.add_line(l));
        assert_eq!(from_lines.finish().1, drawn);
        assert!(
            drawn.sessions[0]
                .marks
                .iter()
                .any(|b| b.mark == Mark::Zombie)
        );
        let path = std::path::Path::new("t.jsonl");
        let read = TraceFacts::parse_with_grace(&text, path, grace).expect("parses");
        let lives = |f: &TraceFacts| f.lives.iter().map(seen).collect::<Vec<_>>();
        assert_eq!(lives(&live), lives(&read));
        assert_eq!(live.requests_refused, read.requests_refused);
        assert_eq!((live.login_flows, live.login_seconds), (1, 0.001));
        assert_eq!((read.login_flows, read.login_seconds), (1, 0.001));
        let revoked = &live.lives[0];
        let sorted = (revoked.in_flight, revoked.zombies, revoked.exit_moves);
        assert_eq!(
            sorted,
            (1, 2, 4),
            "one in flight, two zombies, all four moved"
        );
        assert!(revoked.birth.as_ref().is_some_and(|b| b.context.is_some()));
        assert_eq!(
            live.requests_refused.get("refused(LOGIN_REQUIRED)"),
            Some(&1)
        );
    }

    #[test]
    fn no_reference_crosses_a_rotation_and_every_file_reads_on_its_own() {
        let dir = std::env::temp_dir().join(format!("sr-trace-log-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let path = dir.join("trace.jsonl");
        let limit = TraceLimit {
            max_bytes: 16 << 10,
            keep: 2,
        };
        let log = TraceLog::open_limited(&path, Some(limit)).expect("opens");
        let engine = Engine::new(EngineConfig::default()).expect("engine");
        let sid = SessionId::from_u128(7);
        let now = Clock::manual(Timestamp::from_secs(1_790_000_000)).now();
        let ctx = Arc::new(crate::grade::tests::ctx("127.0.1.9"));
        log.record(&engine.login(sid, "alice", Arc::clone(&ctx), vec![], now));
        let mut memo = None;
        for _ in 0..200 {
            let mut d = engine.decide(sid, Arc::clone(&ctx), now);
            // Named whatever the floor, as a request decided just before a
            // rotation is: the log writes the context in full then.
            if let Some(of) = memo {
                (d.context, d.context_of) = (None, Some(of));
            }
            let (written, full) = log.record_request(&d, Some(&ctx));
            if written && full {
                memo = Some(d.seq);
            }
        }
        assert!(log.dropped().rotations >= 3, "{:?}", log.dropped());
        for file in ["trace.jsonl", "trace.jsonl.1", "trace.jsonl.2"] {
            let decisions = crate::trace::read_trace(&dir.join(file)).expect("reads alone");
            assert!(decisions.iter().all(|d| d.context.is_some()), "{file}");
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}
