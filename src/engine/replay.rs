//! Upkeep records and replay: a trace fed back to a fresh engine.

use serde::{Deserialize, Serialize};

use super::{Decision, Engine};
use crate::clock::Timestamp;
use crate::config::EngineConfig;

/// Housekeeping that changes what the engine remembers without a request:
/// traced so that a replay forgets the same sessions at the same point.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Upkeep {
    /// Order among decisions.
    pub seq: u64,
    /// When it happened.
    pub at: Timestamp,
    /// What was done.
    pub action: UpkeepAction,
    /// How many sessions were forgotten.
    pub removed: usize,
}

/// The kinds of [`Upkeep`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UpkeepAction {
    /// Every session and account forgotten, as on a restart.
    Reset,
    /// Sessions past their TTLs forgotten.
    Sweep,
}

/// One replayable entry of a trace.
#[derive(Clone, Debug, PartialEq)]
pub enum Entry {
    /// A decision (boxed: it is far larger than an upkeep record).
    Decision(Box<Decision>),
    /// A reset or sweep.
    Upkeep(Upkeep),
}

impl Entry {
    fn seq(&self) -> u64 {
        match self {
            Self::Decision(d) => d.seq,
            Self::Upkeep(u) => u.seq,
        }
    }
}

/// Replays decisions against a fresh engine with `config` and returns the
/// decisions whose verdict came out differently, as (recorded, replayed).
pub fn replay(
    config: EngineConfig,
    trace: &[Decision],
) -> crate::Result<Vec<(Decision, Decision)>> {
    let entries: Vec<Entry> = trace
        .iter()
        .map(|d| Entry::Decision(Box::new(d.clone())))
        .collect();
    replay_entries(config, &entries)
}

/// Replays a whole trace, resets and sweeps included, in `seq` order.
pub fn replay_entries(
    config: EngineConfig,
    trace: &[Entry],
) -> crate::Result<Vec<(Decision, Decision)>> {
    let engine = Engine::new(config)?;
    let mut ordered: Vec<&Entry> = trace.iter().collect();
    ordered.sort_by_key(|e| e.seq());
    let mut diffs = Vec::new();
    for entry in ordered {
        match entry {
            Entry::Upkeep(u) if u.action == UpkeepAction::Reset => drop(engine.reset(u.at)),
            Entry::Upkeep(u) => drop(engine.sweep(u.at)),
            Entry::Decision(d) => {
                let again = engine.apply(d);
                if again.verdict != d.verdict {
                    diffs.push(((**d).clone(), again));
                }
            }
        }
    }
    Ok(diffs)
}
