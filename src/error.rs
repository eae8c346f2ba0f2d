//! The one error type of sessionrange: every failure that is not a verdict.

use std::path::PathBuf;

/// Everything that can go wrong in sessionrange outside of a risk decision.
///
/// A revoked session or a failed grade is a *value* ([`crate::Verdict`]),
/// never an `Error`. Errors are reserved for bad input and broken I/O, and
/// each variant names what it was reading.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A MaxMind DB file could not be opened or is not a valid database.
    #[error("geo database {path}: {message}")]
    GeoDb {
        /// The file that failed.
        path: PathBuf,
        /// What was wrong with it.
        message: String,
    },
    /// The human-readable geo fixture source is malformed.
    #[error("geo fixture {path}: {message}")]
    GeoFixture {
        /// The fixture source file.
        path: PathBuf,
        /// What was wrong, with the line and field where known.
        message: String,
    },
    /// A configuration value is invalid; `field` is its dotted path.
    #[error("invalid config field `{field}`: {message}")]
    Config {
        /// Dotted path of the offending field, such as `rules.velocity.rate`.
        field: String,
        /// Why the value was refused.
        message: String,
    },
    /// A scenario file is malformed or holds an impossible value.
    #[error("{path}:{}: field `{field}`: {message}", line.map_or_else(|| "?".to_owned(), |l| l.to_string()))]
    Scenario {
        /// The scenario file.
        path: PathBuf,
        /// The 1-based line, when it could be found.
        line: Option<usize>,
        /// Dotted path of the field.
        field: String,
        /// What was wrong.
        message: String,
    },
    /// A line of a decision trace is not a decision.
    #[error("{path}:{line}: {message}")]
    Trace {
        /// The trace file.
        path: PathBuf,
        /// The 1-based line number.
        line: usize,
        /// What was wrong with it.
        message: String,
    },
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file involved.
        path: PathBuf,
        /// The underlying I/O error.
        source: std::io::Error,
    },
}

impl Error {
    /// Builds a [`Error::Config`] for the field at `field`.
    pub fn config(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Config {
            field: field.into(),
            message: message.into(),
        }
    }

    /// Builds an [`Error::Io`] that names `path`.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            path: path.into(),
            source,
        }
    }
}

/// The result type of sessionrange's fallible functions.
pub type Result<T, E = Error> = std::result::Result<T, E>;
