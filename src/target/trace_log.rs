//! The decision trace: every event appended to a JSON Lines file as it happens.
//!
//! Each line is written with one `write` call on an unbuffered file, so a
//! crash or Ctrl-C loses nothing that was already decided: the line is in
//! the kernel's hands before the response leaves. Recent lines are also
//! kept in memory for the admin API and fanned out to live followers.

use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde::Serialize;
use tokio::sync::broadcast;

use crate::engine::Decision;
use crate::error::{Error, Result};
use crate::trace;

/// How many recent lines the admin API can return.
const RECENT_LINES: usize = 100_000;

/// The trace of one target run.
#[derive(Debug)]
pub struct TraceLog {
    file: Option<Mutex<File>>,
    path: Option<PathBuf>,
    recent: Mutex<VecDeque<Arc<str>>>,
    live: broadcast::Sender<Arc<str>>,
}

impl TraceLog {
    /// A trace kept in memory only.
    pub fn in_memory() -> Self {
        Self {
            file: None,
            path: None,
            recent: Mutex::new(VecDeque::new()),
            live: broadcast::channel(4096).0,
        }
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
            file: Some(Mutex::new(file)),
            path: Some(path.to_owned()),
            ..Self::in_memory()
        })
    }

    /// Where the trace is written, if anywhere.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// Appends a decision.
    pub fn record(&self, d: &Decision) {
        self.record_value(&TraceEvent::Decision(d));
    }

    /// Appends any serializable event (proxy events, scripted events).
    pub fn record_value(&self, event: &impl Serialize) {
        match serde_json::to_string(event) {
            Ok(line) => self.append(line),
            Err(e) => self.append(format!(
                "{{\"type\":\"trace_error\",\"error\":{:?}}}",
                e.to_string()
            )),
        }
    }

    fn append(&self, mut line: String) {
        line.push('\n');
        if let Some(file) = &self.file {
            let mut f = file.lock().unwrap_or_else(|e| e.into_inner());
            // A failed write (disk full) must not fail the request; the
            // line still reaches the in-memory trace and live followers.
            let _ = f.write_all(line.as_bytes());
        }
        line.pop();
        let line: Arc<str> = line.into();
        let mut recent = self.recent.lock().unwrap_or_else(|e| e.into_inner());
        if recent.len() == RECENT_LINES {
            recent.pop_front();
        }
        recent.push_back(line.clone());
        drop(recent);
        let _ = self.live.send(line);
    }

    /// The most recent lines, oldest first.
    pub fn recent(&self) -> Vec<Arc<str>> {
        let recent = self.recent.lock().unwrap_or_else(|e| e.into_inner());
        recent.iter().cloned().collect()
    }

    /// The recent decisions, parsed back.
    pub fn decisions(&self) -> Vec<Decision> {
        let recent = self.recent();
        recent
            .iter()
            .filter_map(|l| trace::parse_line(l).ok().flatten())
            .collect()
    }

    /// A receiver of every line appended from now on.
    pub fn follow(&self) -> broadcast::Receiver<Arc<str>> {
        self.live.subscribe()
    }

    /// Forgets the in-memory lines (the file is kept).
    pub fn clear_recent(&self) {
        self.recent
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }
}

/// One line of the trace, tagged by its type.
#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum TraceEvent<'a> {
    Decision(&'a Decision),
}
