//! One opened `.mmdb` file with a cache of its decoded records.
//!
//! Many networks share one record in the data section, so records are
//! decoded once per data offset and cloned from the cache afterwards: a
//! warm lookup walks the search tree and clones an `Arc<str>`, nothing more.

use std::borrow::Cow;
use std::collections::HashMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use maxminddb::{LookupResult, Reader};
use parking_lot::RwLock;

use crate::error::{Error, Result};

/// The bytes behind a reader: a file read at open, or a fixture compiled in.
pub(super) type Bytes = Cow<'static, [u8]>;

/// A found record, before decoding.
pub(super) type Found<'a> = LookupResult<'a, Bytes>;

/// An opened MaxMind DB whose decoded records of type `R` are cached.
///
/// The cache grows with the distinct records actually looked up, and never
/// past the number of records in the file.
pub(super) struct MmdbFile<R> {
    path: PathBuf,
    reader: Reader<Bytes>,
    cache: RwLock<HashMap<usize, R>>,
}

impl<R: Clone> MmdbFile<R> {
    /// Reads and opens the database at `path`.
    pub(super) fn open(path: &Path) -> Result<Self> {
        let bytes =
            std::fs::read(path).map_err(|e| geo_error(path, format!("cannot read: {e}")))?;
        Self::from_bytes(path.to_owned(), Cow::Owned(bytes))
    }

    /// Opens a database already in memory; `path` names it in errors.
    pub(super) fn from_bytes(path: PathBuf, bytes: Bytes) -> Result<Self> {
        let reader = Reader::from_source(bytes)
            .map_err(|e| geo_error(&path, format!("not a valid MaxMind DB: {e}")))?;
        Ok(Self {
            path,
            reader,
            cache: RwLock::new(HashMap::new()),
        })
    }

    /// The file this database was read from.
    pub(super) fn path(&self) -> &Path {
        &self.path
    }

    /// The `database_type` from the file's metadata.
    pub(super) fn database_type(&self) -> &str {
        &self.reader.metadata().database_type
    }

    /// The record for `ip`, decoded by `decode` on first sight.
    ///
    /// `None` when the address is in no network, or its record cannot be
    /// decoded: a lookup never fails.
    pub(super) fn record(
        &self,
        ip: IpAddr,
        decode: impl FnOnce(&Found<'_>) -> Option<R>,
    ) -> Option<R> {
        let found = self.reader.lookup(ip).ok()?;
        let offset = found.offset()?;
        if let Some(hit) = self.cached(offset) {
            return Some(hit);
        }
        let record = decode(&found)?;
        self.remember(offset, record.clone());
        Some(record)
    }

    /// Empties the cache, for when the decoding rules change.
    pub(super) fn forget_records(&mut self) {
        self.cache.get_mut().clear();
    }

    fn cached(&self, offset: usize) -> Option<R> {
        let cache = self.cache.read();
        cache.get(&offset).cloned()
    }

    fn remember(&self, offset: usize, record: R) {
        let mut cache = self.cache.write();
        cache.insert(offset, record);
    }
}

impl<R> std::fmt::Debug for MmdbFile<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MmdbFile")
            .field("path", &self.path)
            .field("database_type", &self.reader.metadata().database_type)
            .finish_non_exhaustive()
    }
}

fn geo_error(path: &Path, message: String) -> Error {
    Error::GeoDb {
        path: path.to_owned(),
        message,
    }
}
