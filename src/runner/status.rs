//! The live one-line status of a running scenario, on stderr.

use std::io::{IsTerminal, Write};
use std::path::Path;

use crate::clock::Timestamp;
use crate::scenario::Scenario;
use crate::site::TargetState;

/// Whether and how progress is shown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// Nothing (tests, `--quiet`).
    Off,
    /// One line redrawn in place, when stderr is a terminal.
    Live,
}

impl Status {
    /// `Live` when stderr is a terminal, else `Off`.
    pub fn auto() -> Self {
        if std::io::stderr().is_terminal() {
            Self::Live
        } else {
            Self::Off
        }
    }

    /// Redraws the line for `scenario`.
    pub fn show(self, scenario: &Scenario, state: &TargetState, output: &Path, started: Timestamp) {
        if self == Self::Off {
            return;
        }
        let limit = crate::runner::files::output_limit(u64::from(scenario.target.dataset.size));
        let records = crate::runner::files::read_head(output, limit)
            .bytes
            .iter()
            .filter(|c| **c == b'\n')
            .count();
        let elapsed = state.clock.now().since(started).as_secs_f64();
        let line = format!(
            "{:<20} {elapsed:>5.1}s  requests {:>6}  logins {:>3}  records {records}/{}",
            scenario.name,
            state.metrics.requests(),
            state.metrics.logins(),
            scenario.target.dataset.size,
        );
        let mut err = std::io::stderr().lock();
        let _ = write!(err, "\r\x1b[2K{line}");
        let _ = err.flush();
    }

    /// Clears the line.
    pub fn clear(self) {
        if self == Self::Live {
            let mut err = std::io::stderr().lock();
            let _ = write!(err, "\r\x1b[2K");
            let _ = err.flush();
        }
    }
}
