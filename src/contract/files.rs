//! The files a client controls, read safely: regular files only, never blocking, never more than a limit.
//!
//! A client can put anything where its output is expected: a symbolic
//! link to `/dev/zero` (an endless read), a FIFO (a read that never
//! returns), a file of many gigabytes. The runner opens without following
//! links and without blocking, reads only regular files, and reads at most
//! a limit; the report says what was wrong instead of hanging or growing.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::Path;

/// Bytes of output allowed per record of the dataset, on top of a base.
pub const OUTPUT_BYTES_PER_RECORD: u64 = 4096;
/// Bytes of output always allowed.
pub const OUTPUT_BASE_BYTES: u64 = 1 << 20;

/// What was read of a client's file.
#[derive(Debug, Default)]
pub struct ClientFile {
    /// The bytes read (at most the limit).
    pub bytes: Vec<u8>,
    /// Whether the file existed.
    pub exists: bool,
    /// What was wrong with it, as a sentence, if anything.
    pub problem: Option<String>,
}

/// The most output the runner reads for a dataset of `records`.
pub fn output_limit(records: u64) -> u64 {
    OUTPUT_BASE_BYTES + records.saturating_mul(OUTPUT_BYTES_PER_RECORD)
}

/// Reads at most `limit` bytes of `path` from its start.
pub fn read_head(path: &Path, limit: u64) -> ClientFile {
    let mut file = match open(path) {
        Ok(f) => f,
        Err(out) => return out,
    };
    let mut bytes = Vec::new();
    let read = (&mut file).take(limit + 1).read_to_end(&mut bytes);
    let mut out = ClientFile {
        exists: true,
        ..ClientFile::default()
    };
    if let Err(e) = read {
        out.problem = Some(format!("{} could not be read: {e}", path.display()));
    }
    if bytes.len() as u64 > limit {
        bytes.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
        out.problem = Some(format!(
            "{} is larger than {limit} bytes: only the first {limit} were graded",
            path.display()
        ));
    }
    out.bytes = bytes;
    out
}

/// Reads the last `limit` bytes (or fewer) of `path`.
pub fn read_tail(path: &Path, limit: u64) -> ClientFile {
    let mut file = match open(path) {
        Ok(f) => f,
        Err(out) => return out,
    };
    let len = file.metadata().map_or(0, |m| m.len());
    let _ = file.seek(SeekFrom::Start(len.saturating_sub(limit)));
    let mut bytes = Vec::new();
    let _ = file.take(limit).read_to_end(&mut bytes);
    ClientFile {
        bytes,
        exists: true,
        problem: None,
    }
}

/// Opens `path` for reading if it is a regular file, without following a
/// link or blocking; else says why not (`problem`, or nothing when there
/// is no such file).
pub fn open(path: &Path) -> Result<File, ClientFile> {
    let flags = nix::libc::O_NONBLOCK | nix::libc::O_NOFOLLOW;
    let refused = |why: String| ClientFile {
        exists: true,
        problem: Some(format!("{} {why}: not read", path.display())),
        ..ClientFile::default()
    };
    let file = match OpenOptions::new().read(true).custom_flags(flags).open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(ClientFile::default()),
        Err(e) if e.raw_os_error() == Some(nix::libc::ELOOP) => {
            return Err(refused("is a symbolic link".into()));
        }
        Err(e) => return Err(refused(format!("could not be opened ({e})"))),
    };
    let kind = file.metadata().map(|m| m.file_type());
    match kind {
        Ok(t) if t.is_file() => Ok(file),
        Ok(t) if t.is_fifo() => Err(refused("is a FIFO, not a regular file".into())),
        Ok(t) if t.is_dir() => Err(refused("is a directory".into())),
        Ok(_) => Err(refused("is a device or socket, not a regular file".into())),
        Err(e) => Err(refused(format!("could not be examined ({e})"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp(name: &str) -> std::path::PathBuf {
        let dir =
            std::env::temp_dir().join(format!("sessionrange-files-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("a temp dir");
        dir
    }

    #[test]
    fn links_fifos_and_devices_are_refused_and_large_files_cut() {
        let dir = temp("kinds");
        let link = dir.join("zero");
        std::os::unix::fs::symlink("/dev/zero", &link).expect("a link");
        assert!(
            read_head(&link, 10)
                .problem
                .expect("refused")
                .contains("symbolic link")
        );
        let fifo = dir.join("fifo");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status();
        assert!(made.expect("mkfifo runs").success(), "a FIFO");
        assert!(
            read_head(&fifo, 10)
                .problem
                .expect("refused")
                .contains("FIFO")
        );
        let big = dir.join("big");
        std::fs::write(&big, vec![b'x'; 100]).expect("write");
        let head = read_head(&big, 10);
        assert_eq!(head.bytes.len(), 10);
        assert!(head.problem.expect("cut").contains("larger than 10 bytes"));
        assert_eq!(read_tail(&big, 7).bytes.len(), 7);
        let none = read_head(&dir.join("none"), 10);
        assert!(!none.exists && none.problem.is_none());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
