//! Which scenarios a run covers: files, directories of them, or the bundled pack.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::scenario::Scenario;

/// Loads every scenario named by `paths` (files, or directories whose
/// `*.toml` files are taken in name order); the bundled pack when `paths`
/// is empty. The first malformed file is an error naming file, line and field.
pub fn load(paths: &[PathBuf]) -> Result<Vec<Scenario>> {
    if paths.is_empty() {
        return Scenario::bundled();
    }
    let mut files = Vec::new();
    for p in paths {
        if p.is_dir() {
            files.extend(toml_files(p)?);
        } else {
            files.push(p.clone());
        }
    }
    files.iter().map(|f| Scenario::load(f)).collect()
}

fn toml_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let entries = std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    Ok(files)
}
