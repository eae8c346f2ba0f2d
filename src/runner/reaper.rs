//! Everything a client started, found and killed: its process group, and every process that carries the run's mark.
//!
//! A client's children can leave its process group (`setsid`, a double
//! fork), so a group kill is not enough. Each run puts a random mark in the
//! client's environment, which every descendant inherits unless it clears
//! its environment; the runner kills every process that carries the mark.
//! The runner is also the child subreaper of its process (Linux), so an
//! orphan that cleared its environment becomes the runner's child; the
//! `sessionrange run` binary, which starts no other processes, kills those
//! too ([`Reaper::sole_parent`]).

use std::collections::HashSet;
use std::path::Path;
use std::time::Duration;

use nix::sys::signal::{Signal, kill, killpg};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;

/// The environment variable that carries a run's mark.
pub const MARK_VAR: &str = "SESSIONRANGE_RUN_MARK";
/// Rounds of killing before giving up on a process that keeps forking.
const ROUNDS: usize = 200;
/// The pause between rounds.
const PAUSE: Duration = Duration::from_millis(10);

/// Finds and kills what one client started.
#[derive(Clone, Debug)]
pub struct Reaper {
    mark: String,
    /// Whether every child of this process is the client's (the binary).
    pub sole_parent: bool,
}

impl Reaper {
    /// A reaper with a fresh random mark; makes this process the subreaper
    /// of its descendants' orphans where the system allows it.
    pub fn new(sole_parent: bool) -> Self {
        let _ = nix::sys::prctl::set_child_subreaper(true);
        Self {
            mark: format!("{:032x}", rand::random::<u128>()),
            sole_parent,
        }
    }

    /// The `(variable, value)` to put in the client's environment.
    pub fn env(&self) -> (String, String) {
        (MARK_VAR.to_owned(), self.mark.clone())
    }

    /// Kills the group `group` and every marked process (and, as sole
    /// parent, every child of this process) until none is left; reaps
    /// those that were this process's children. Returns how many
    /// processes it killed.
    pub async fn kill_all(&self, group: Option<Pid>) -> usize {
        let (mut killed, mut ever) = (HashSet::new(), HashSet::new());
        for _ in 0..ROUNDS {
            if let Some(g) = group {
                let _ = killpg(g, Signal::SIGKILL);
            }
            let found = self.find(group);
            for pid in &found {
                if kill(*pid, Signal::SIGKILL).is_ok() {
                    killed.insert(*pid);
                    ever.insert(*pid);
                }
            }
            // Reap the killed that became this process's children; a
            // process that is not a child of ours answers ECHILD.
            killed.retain(|pid| {
                matches!(
                    waitpid(*pid, Some(WaitPidFlag::WNOHANG)),
                    Ok(WaitStatus::StillAlive)
                )
            });
            if found.is_empty() && killed.is_empty() {
                break;
            }
            tokio::time::sleep(PAUSE).await;
        }
        ever.len()
    }

    /// Live processes that carry the mark or are in the client's `group`,
    /// or are this process's children when it is the sole parent. A
    /// process killed a moment ago may still be exiting, its environment
    /// already gone: its group still names it until it is a zombie.
    fn find(&self, group: Option<Pid>) -> Vec<Pid> {
        let me = std::process::id();
        let needle = format!("{MARK_VAR}={}", self.mark);
        let Ok(dir) = std::fs::read_dir("/proc") else {
            return Vec::new();
        };
        dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
            .filter(|pid| *pid != me)
            .filter(|pid| {
                let proc = Path::new("/proc").join(pid.to_string());
                let stat = Stat::read(&proc);
                let alive = stat
                    .as_ref()
                    .is_some_and(|s| s.state != 'Z' && s.state != 'X');
                let ours = self.sole_parent && stat.as_ref().is_some_and(|s| s.ppid == me);
                let grouped = stat
                    .as_ref()
                    .is_some_and(|s| group.is_some_and(|g| g.as_raw() == s.pgrp));
                ours || (alive && (grouped || marked(&proc, needle.as_bytes())))
            })
            .filter_map(|pid| i32::try_from(pid).ok().map(Pid::from_raw))
            .collect()
    }
}

/// Whether the process's environment holds `needle` as one entry.
fn marked(proc: &Path, needle: &[u8]) -> bool {
    std::fs::read(proc.join("environ"))
        .is_ok_and(|env| env.split(|b| *b == 0).any(|entry| entry == needle))
}

/// The fields of `/proc/PID/stat` the reaper needs.
struct Stat {
    state: char,
    ppid: u32,
    /// The process group.
    pgrp: i32,
}

impl Stat {
    fn read(proc: &Path) -> Option<Self> {
        let text = std::fs::read_to_string(proc.join("stat")).ok()?;
        // The command name is in parentheses and may hold anything.
        let rest = text.rsplit_once(')')?.1;
        let mut fields = rest.split_whitespace();
        let state = fields.next()?.chars().next()?;
        let ppid = fields.next()?.parse().ok()?;
        let pgrp = fields.next()?.parse().ok()?;
        Some(Self { state, ppid, pgrp })
    }
}
