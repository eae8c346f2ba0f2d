//! The trace file with a size limit: past it the file is renamed `trace.jsonl.1` and a new one started.
//!
//! A long `serve` must not fill a disk. When a line would take the file
//! past its limit, the file becomes `<path>.1` (`.1` becomes `.2`, and so
//! on), the oldest beyond [`TraceLimit::keep`] is deleted, and a new file
//! begins with a `trace_rotated` line that says what the limit has dropped
//! so far. No decision is lost inside the limit: a line is always written
//! whole to one file. A line in the new file never names a context
//! (`context_of`) in an older file: see [`TraceFile::floor`].

use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::RwLock;
use serde::Serialize;

use crate::clock::Timestamp;
use crate::error::{Error, Result};

/// Trace files are cut at 256 MiB by default.
pub const DEFAULT_TRACE_MAX: u64 = 256 << 20;

/// Old trace files kept by default, besides the one being written.
pub const DEFAULT_TRACE_KEEP: usize = 3;

/// How large a trace file may grow and how many old ones are kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TraceLimit {
    /// Bytes a file may hold; a single line larger than this still goes
    /// whole into a file of its own.
    pub max_bytes: u64,
    /// Old files kept (`<path>.1` to `<path>.<keep>`).
    pub keep: usize,
}

impl Default for TraceLimit {
    fn default() -> Self {
        Self {
            max_bytes: DEFAULT_TRACE_MAX,
            keep: DEFAULT_TRACE_KEEP,
        }
    }
}

impl Dropped {
    /// The counts in the Prometheus text format.
    pub fn render(&self) -> String {
        let rows = [
            ("rotations", self.rotations),
            ("dropped_files", self.files),
            ("dropped_lines", self.lines),
            ("dropped_bytes", self.bytes),
        ];
        rows.iter()
            .map(|(name, n)| {
                format!("# TYPE sessionrange_trace_{name}_total counter\nsessionrange_trace_{name}_total {n}\n")
            })
            .collect()
    }

    /// A sentence for the serve summary.
    pub fn sentence(&self) -> String {
        if self.rotations == 0 {
            return "the trace stayed within its size limit: nothing was dropped".to_owned();
        }
        format!(
            "the trace was started anew {} times at its size limit; {} old files were deleted ({} lines, {} bytes)",
            self.rotations, self.files, self.lines, self.bytes
        )
    }
}

/// Parses a size such as `256M`, `1G`, `512KiB` or `1000000` (bytes;
/// K, M and G are powers of 1024).
pub fn parse_size(text: &str) -> std::result::Result<u64, String> {
    let t = text.trim();
    let digits = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (n, unit) = t.split_at(digits);
    let n: u64 = n
        .parse()
        .map_err(|_| format!("`{text}` is not a size such as 256M"))?;
    let shift = match unit.trim().to_ascii_uppercase().as_str() {
        "" | "B" => 0,
        "K" | "KB" | "KIB" => 10,
        "M" | "MB" | "MIB" => 20,
        "G" | "GB" | "GIB" => 30,
        _ => return Err(format!("`{text}`: the unit is one of K, M, G")),
    };
    n.checked_mul(1 << shift)
        .ok_or_else(|| format!("`{text}` is too large"))
}

/// What the limit has deleted so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Dropped {
    /// Files started anew.
    pub rotations: u64,
    /// Old files deleted.
    #[serde(rename = "dropped_files")]
    pub files: u64,
    /// Lines in them (those this process wrote; a file found at start
    /// counts its bytes only).
    #[serde(rename = "dropped_lines")]
    pub lines: u64,
    /// Bytes in them.
    #[serde(rename = "dropped_bytes")]
    pub bytes: u64,
}

/// The first line of a file started by the limit.
#[derive(Serialize)]
struct Rotated<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    at: Timestamp,
    previous: &'a str,
    first_seq: u64,
    #[serde(flatten)]
    dropped: Dropped,
}

/// An append-only trace file, optionally limited in size.
#[derive(Debug)]
pub struct TraceFile {
    path: PathBuf,
    limit: Option<TraceLimit>,
    /// Read-locked to write a line (appends need no exclusion: the kernel
    /// applies each `O_APPEND` write whole), write-locked to start a new
    /// file.
    state: RwLock<FileState>,
    /// Bytes and lines in the current file; changed under the read lock
    /// by writers, reset under the write lock by a rotation.
    bytes: AtomicU64,
    lines: AtomicU64,
    floor: AtomicU64,
    newest_seq: AtomicU64,
}

#[derive(Debug)]
struct FileState {
    file: File,
    /// Lines and bytes of each old file, newest first.
    old: VecDeque<(u64, u64)>,
    dropped: Dropped,
}

impl TraceFile {
    /// Opens `path` for appending, creating its directory.
    pub fn open(path: &Path, limit: Option<TraceLimit>) -> Result<Self> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        }
        let file = append(path)?;
        let bytes = file.metadata().map_or(0, |m| m.len());
        let old = (1..=limit.map_or(0, |l| l.keep))
            .map_while(|i| std::fs::metadata(numbered(path, i)).ok())
            .map(|m| (0, m.len()))
            .collect();
        let state = FileState {
            file,
            old,
            dropped: Dropped::default(),
        };
        Ok(Self {
            path: path.to_owned(),
            limit,
            state: RwLock::new(state),
            bytes: AtomicU64::new(bytes),
            lines: AtomicU64::new(0),
            floor: AtomicU64::new(0),
            newest_seq: AtomicU64::new(0),
        })
    }

    /// The least `seq` a `context_of` written now may name: the first
    /// decision of the current file. Every decision before it is in an
    /// older file.
    pub fn floor(&self) -> u64 {
        self.floor.load(Ordering::Acquire)
    }

    /// Notes that a decision of this `seq` is being written.
    pub fn saw_seq(&self, seq: u64) {
        self.newest_seq.fetch_max(seq, Ordering::AcqRel);
    }

    /// What the limit has deleted so far.
    pub fn dropped(&self) -> Dropped {
        self.state.read().dropped
    }

    /// Writes one newline-terminated line, first starting a new file if it
    /// would take this one past the limit. `redo` is asked for the line
    /// again when a reference in it names a decision before [`Self::floor`]
    /// (the file was started anew since the line was made): it gets the
    /// floor and returns the line to write instead, if any. Returns whether
    /// the line reached the file.
    pub fn write(&self, line: &[u8], redo: impl FnOnce(u64) -> Option<Vec<u8>>) -> bool {
        if self.over(line.len()) {
            let mut st = self.state.write();
            if self.over(line.len()) {
                self.rotate(&mut st);
            }
        }
        let st = self.state.read();
        let again = redo(self.floor());
        let line = again.as_deref().unwrap_or(line);
        self.append_line(&st.file, line)
    }

    /// Whether a line of `len` bytes would take the current file past the
    /// limit. Lines written at the same moment may each pass this check,
    /// so a file can end a few lines past its limit.
    fn over(&self, len: usize) -> bool {
        let bytes = self.bytes.load(Ordering::Relaxed);
        self.limit
            .is_some_and(|l| bytes > 0 && bytes + len as u64 > l.max_bytes)
    }

    /// Appends `line` to `file` (the current one) and counts it.
    fn append_line(&self, mut file: &File, line: &[u8]) -> bool {
        let written = file.write_all(line).is_ok();
        if written {
            self.bytes.fetch_add(line.len() as u64, Ordering::Relaxed);
            self.lines.fetch_add(1, Ordering::Relaxed);
        }
        written
    }

    /// Renames the files one up, deletes the oldest beyond the limit, and
    /// starts a new file with a `trace_rotated` line. A rename that fails
    /// leaves the current file growing.
    fn rotate(&self, st: &mut FileState) {
        let Some(limit) = self.limit else { return };
        for i in (1..=limit.keep).rev() {
            let from = if i == 1 {
                self.path.clone()
            } else {
                numbered(&self.path, i - 1)
            };
            let _ = std::fs::rename(&from, numbered(&self.path, i));
        }
        if limit.keep == 0 {
            let _ = std::fs::remove_file(&self.path);
        }
        let Ok(file) = append(&self.path) else { return };
        let counts = (
            self.lines.load(Ordering::Relaxed),
            self.bytes.load(Ordering::Relaxed),
        );
        st.old.push_front(counts);
        while st.old.len() > limit.keep {
            let (lines, bytes) = st.old.pop_back().unwrap_or_default();
            st.dropped.files += 1;
            st.dropped.lines += lines;
            st.dropped.bytes += bytes;
        }
        st.dropped.rotations += 1;
        st.file = file;
        self.bytes.store(0, Ordering::Relaxed);
        self.lines.store(0, Ordering::Relaxed);
        let first_seq = self.newest_seq.load(Ordering::Acquire) + 1;
        self.floor.store(first_seq, Ordering::Release);
        let name = numbered(&self.path, 1);
        let previous = name
            .file_name()
            .map(|n| n.to_string_lossy())
            .unwrap_or_default();
        let head = Rotated {
            kind: "trace_rotated",
            at: crate::clock::Clock::system().now(),
            previous: &previous,
            first_seq,
            dropped: st.dropped,
        };
        let mut line = serde_json::to_vec(&head).unwrap_or_default();
        line.push(b'\n');
        self.append_line(&st.file, &line);
    }
}

/// `<path>.<n>`.
fn numbered(path: &Path, n: usize) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(format!(".{n}"));
    PathBuf::from(name)
}

fn append(path: &Path) -> Result<File> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| Error::io(path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_with_binary_units() {
        assert_eq!(parse_size("256M"), Ok(256 << 20));
        assert_eq!(parse_size("1 GiB"), Ok(1 << 30));
        assert_eq!(parse_size("1000"), Ok(1000));
        assert!(parse_size("12X").is_err());
        assert!(parse_size("M").is_err());
    }

    #[test]
    fn a_full_file_is_renamed_and_the_oldest_beyond_the_limit_counted_and_deleted() {
        let dir = std::env::temp_dir().join(format!("sr-trace-file-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let path = dir.join("trace.jsonl");
        let limit = TraceLimit {
            max_bytes: 300,
            keep: 2,
        };
        let f = TraceFile::open(&path, Some(limit)).expect("opens");
        let line = [b'x'; 39]
            .iter()
            .copied()
            .chain([b'\n'])
            .collect::<Vec<_>>();
        for _ in 0..20 {
            assert!(f.write(&line, |_| None));
        }
        let kept = |p: &Path| std::fs::read_to_string(p).unwrap_or_default();
        assert!(kept(&numbered(&path, 3)).is_empty(), "two old files kept");
        let d = f.dropped();
        assert!(d.rotations >= 3, "{d:?}");
        assert_eq!(d.files, d.rotations - 2, "all but two old files deleted");
        let head = kept(&path);
        assert!(head.starts_with(r#"{"type":"trace_rotated""#), "{head}");
        let says = format!(r#""dropped_files":{},"dropped_lines":{}"#, d.files, d.lines);
        assert!(head.contains(&says), "{head}");
        let kept_lines: usize = [path.clone(), numbered(&path, 1), numbered(&path, 2)]
            .iter()
            .map(|p| kept(p).lines().count())
            .sum();
        // Twenty lines and a head line per new file: each kept or counted.
        assert_eq!(kept_lines as u64 + d.lines, 20 + d.rotations);
        let all_kept = std::fs::metadata(&path).map_or(0, |m| m.len());
        assert!(all_kept <= 300, "a file stays within its limit");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn lines_written_from_many_threads_across_rotations_are_each_kept_whole_once() {
        let dir = std::env::temp_dir().join(format!("sr-trace-threads-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let path = dir.join("trace.jsonl");
        let limit = TraceLimit {
            max_bytes: 16 << 10,
            keep: 1000,
        };
        let f = TraceFile::open(&path, Some(limit)).expect("opens");
        std::thread::scope(|scope| {
            for t in 0..4 {
                let f = &f;
                scope.spawn(move || {
                    for n in 0..2000 {
                        let line = format!(
                            "{{\"thread\":{t},\"n\":{n},\"pad\":\"{}\"}}\n",
                            "y".repeat(n % 90)
                        );
                        assert!(f.write(line.as_bytes(), |_| None));
                    }
                });
            }
        });
        let d = f.dropped();
        assert!(d.rotations > 10, "{d:?}");
        assert_eq!(d.files, 0, "every old file kept");
        let mut seen = std::collections::HashSet::new();
        for p in std::iter::once(path.clone())
            .chain((1..=d.rotations as usize).map(|i| numbered(&path, i)))
        {
            let text = std::fs::read_to_string(&p).expect("a kept file");
            for line in text.lines() {
                let v: serde_json::Value = serde_json::from_str(line).expect("a whole line");
                if v.get("type").is_none() {
                    assert!(
                        seen.insert((v["thread"].as_u64(), v["n"].as_u64())),
                        "{line}"
                    );
                }
            }
        }
        assert_eq!(seen.len(), 4 * 2000, "every line once");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
