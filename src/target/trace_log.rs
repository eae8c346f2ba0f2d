//! The decision trace: every event appended to a JSON Lines file as it happens.
//!
//! Each line is written with one `write` call on an unbuffered file, so a
//! crash or Ctrl-C loses nothing that was already decided: the line is in
//! the kernel's hands before the response leaves. Recent lines are also
//! kept in memory for the admin API and fanned out to live followers.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde::Serialize;
use tokio::sync::broadcast;

use crate::engine::{Decision, Upkeep};
use crate::error::{Error, Result};
use crate::trace;

/// Bytes of recent trace kept in memory for the admin API and tests.
const RECENT_BYTES: usize = 64 << 20;
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
    file: Option<File>,
    path: Option<PathBuf>,
    recent: Mutex<Recent>,
    live: broadcast::Sender<Arc<str>>,
    /// Every line, when the run keeps its own copy to grade from.
    kept: Option<Mutex<Vec<u8>>>,
}

/// Recent lines, newline-terminated, in large chunks: appending a line
/// costs no allocation of its own, and old chunks are dropped whole.
#[derive(Debug, Default)]
struct Recent {
    chunks: VecDeque<Vec<u8>>,
    bytes: usize,
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
        while self.bytes > RECENT_BYTES && self.chunks.len() > 1 {
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
            kept: None,
        }
    }

    /// Also keeps every line in memory, for [`TraceLog::take_kept`]: the
    /// runner grades from this copy, which no client can reach, and never
    /// from the file, which a client on the same machine could edit.
    #[must_use]
    pub fn keeping_all(mut self) -> Self {
        self.kept = Some(Mutex::new(Vec::new()));
        self
    }

    /// Every line kept since the start (see [`TraceLog::keeping_all`]),
    /// leaving the copy empty; empty when nothing is kept.
    pub fn take_kept(&self) -> Vec<u8> {
        self.kept.as_ref().map_or_else(Vec::new, |kept| {
            std::mem::take(&mut *kept.lock().unwrap_or_else(|e| e.into_inner()))
        })
    }

    /// A trace appended to `path`, creating its directory.
    pub fn open(path: &Path) -> Result<Self> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        }
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|e| Error::io(path, e))?;
        Ok(Self {
            file: Some(file),
            path: Some(path.to_owned()),
            ..Self::in_memory()
        })
    }

    /// Where the trace is written, if anywhere.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// Appends a decision. Returns whether the line reached the file (or
    /// whether there is no file): a write that failed, for a full disk,
    /// does not fail the request.
    pub fn record(&self, d: &Decision) -> bool {
        self.record_value(&TraceEvent::Decision(d))
    }

    /// Appends a reset or sweep of the engine.
    pub fn record_upkeep(&self, u: &Upkeep) {
        self.record_value(&TraceEvent::Upkeep(u));
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
        let write = |line: &mut Vec<u8>| {
            line.clear();
            let serialized = serde_json::to_writer(&mut *line, event);
            if let Err(e) = &serialized {
                line.clear();
                let msg = serde_json::json!({ "type": "trace_error", "error": e.to_string() });
                line.extend_from_slice(msg.to_string().as_bytes());
            }
            line.push(b'\n');
            let written = self.append(line);
            if line.capacity() > MAX_KEPT_LINE {
                *line = Vec::with_capacity(LINE_CAPACITY);
            }
            written && serialized.is_ok()
        };
        // While a thread is being torn down its buffer may be gone already:
        // a line written then (a request dropped late) gets a buffer of its own.
        LINE.try_with(|line| write(&mut line.borrow_mut()))
            .unwrap_or_else(|_| write(&mut Vec::new()))
    }

    /// Writes one serialized, newline-terminated line everywhere it goes;
    /// returns whether it reached the file, or whether there is none.
    fn append(&self, line: &[u8]) -> bool {
        // A failed write (disk full) must not fail the request; the line
        // still reaches the in-memory trace and live followers.
        let written = self
            .file
            .as_ref()
            .is_none_or(|mut file| file.write_all(line).is_ok());
        if self.live.receiver_count() > 0 {
            let text = String::from_utf8_lossy(&line[..line.len() - 1]);
            let _ = self.live.send(text.into());
        }
        if let Some(kept) = &self.kept {
            let mut kept = kept.lock().unwrap_or_else(|e| e.into_inner());
            kept.extend_from_slice(line);
        }
        let mut recent = self.recent.lock().unwrap_or_else(|e| e.into_inner());
        recent.tail().extend_from_slice(line);
        recent.bytes += line.len();
        recent.trim();
        written
    }

    /// The most recent lines, oldest first.
    pub fn recent(&self) -> Vec<Arc<str>> {
        let recent = self.recent.lock().unwrap_or_else(|e| e.into_inner());
        let lines = recent.chunks.iter().flat_map(|c| c.split(|b| *b == b'\n'));
        lines
            .filter(|l| !l.is_empty())
            .map(|l| String::from_utf8_lossy(l).into())
            .collect()
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
