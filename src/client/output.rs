//! The output file: JSON Lines, each record once, flushed line by line.
//!
//! Every line is written and flushed before the worker moves on, so a run
//! stopped at its deadline (or killed) loses nothing already extracted.

use std::collections::HashSet;
use std::fs::File;
use std::io::Write as _;
use std::path::Path;

use anyhow::Context as _;
use parking_lot::Mutex;

/// The records written so far.
#[derive(Debug)]
pub(crate) struct Output {
    inner: Mutex<Inner>,
}

#[derive(Debug)]
struct Inner {
    file: File,
    seen: HashSet<u64>,
}

impl Output {
    /// Creates (or truncates) the file at `path`.
    pub(crate) fn create(path: &Path) -> anyhow::Result<Self> {
        let file = File::create(path)
            .with_context(|| format!("cannot create the output file {}", path.display()))?;
        Ok(Self {
            inner: Mutex::new(Inner {
                file,
                seen: HashSet::new(),
            }),
        })
    }

    /// Writes the records not written before; returns how many were new.
    pub(crate) fn write(&self, records: &[(u64, String)]) -> anyhow::Result<u64> {
        let mut inner = self.inner.lock();
        let mut new = 0;
        for (id, text) in records {
            if !inner.seen.insert(*id) {
                continue;
            }
            let line = format!("{text}\n");
            inner
                .file
                .write_all(line.as_bytes())
                .and_then(|()| inner.file.flush())
                .context("cannot write the output file")?;
            new += 1;
        }
        Ok(new)
    }

    /// The number of distinct records written.
    pub(crate) fn len(&self) -> u64 {
        let inner = self.inner.lock();
        inner.seen.len() as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_record_is_written_once() {
        let dir = std::env::temp_dir().join(format!("sr-output-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("out.jsonl");
        let out = Output::create(&path).expect("creates");
        let a = (1, r#"{"id":1}"#.to_owned());
        let b = (2, r#"{"id":2}"#.to_owned());
        assert_eq!(out.write(&[a.clone(), b]).expect("writes"), 2);
        assert_eq!(out.write(&[a]).expect("writes"), 0);
        assert_eq!(out.len(), 2);
        let text = std::fs::read_to_string(&path).expect("reads");
        assert_eq!(text, "{\"id\":1}\n{\"id\":2}\n");
        let _ = std::fs::remove_dir_all(dir);
    }
}
