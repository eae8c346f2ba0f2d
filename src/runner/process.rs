//! The client under test as a process: its own process group, its log, its deadline, and a kill that reaches its children.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use serde::Serialize;
use tokio::process::{Child, Command};

use crate::error::{Error, Result};
use crate::runner::reaper::Reaper;

/// How long a client gets between SIGTERM and SIGKILL.
const GRACE: Duration = Duration::from_millis(500);

/// How the client's process ended.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct ClientExit {
    /// The command line.
    pub command: Vec<String>,
    /// Its exit code, when it exited by itself.
    pub code: Option<i32>,
    /// The signal that ended it, if any.
    pub signal: Option<i32>,
    /// Whether the runner killed it at the deadline.
    pub timed_out: bool,
    /// Whether the run was interrupted (Ctrl-C) while it ran.
    pub interrupted: bool,
    /// Seconds it ran.
    pub seconds: f64,
}

impl ClientExit {
    /// Whether it exited 0 by itself.
    pub fn ok(&self) -> bool {
        self.code == Some(0) && !self.timed_out && !self.interrupted
    }

    /// One line for people, to follow "the client".
    pub fn describe(&self) -> String {
        if self.interrupted {
            return format!(
                "was stopped after {:.1} s: the run was interrupted",
                self.seconds
            );
        }
        if self.timed_out {
            return format!("was killed at its deadline, after {:.1} s", self.seconds);
        }
        match (self.code, self.signal) {
            (Some(0), _) => format!("exited 0 after {:.1} s", self.seconds),
            (Some(c), _) => format!("exited with status {c} after {:.1} s", self.seconds),
            (None, Some(s)) => format!("died of signal {s} after {:.1} s", self.seconds),
            (None, None) => "ended without a status".into(),
        }
    }
}

/// Starts `command` in a process group of its own, with `env`, its stdin
/// closed and its output appended to `log`. It runs in the runner's own
/// folder, so that a command such as `python3 my_scraper.py` finds its
/// files; its own files are in the folder the environment points at.
pub fn spawn(command: &[String], env: &[(String, String)], log: &Path) -> Result<Child> {
    let (program, args) = command
        .split_first()
        .ok_or_else(|| Error::config("command", "the client command is empty"))?;
    let out = std::fs::File::create(log).map_err(|e| Error::io(log, e))?;
    let err = out.try_clone().map_err(|e| Error::io(log, e))?;
    Command::new(program)
        .args(args)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .process_group(0)
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| {
            Error::config(
                "command",
                format!("cannot start the client `{program}`: {e}"),
            )
        })
}

/// Stops the client and everything it started: SIGTERM to its process
/// group, SIGKILL after a grace period unless it exited, then SIGKILL to
/// the group and every process `reaper` finds, whether or not the client
/// itself already exited. `pid` is the client's, taken at spawn (a waited
/// child no longer reports it).
pub async fn kill_group(child: &mut Child, pid: Option<u32>, reaper: &Reaper) -> usize {
    let group = pid.and_then(|p| i32::try_from(p).ok()).map(Pid::from_raw);
    if let Some(g) = group {
        let _ = killpg(g, Signal::SIGTERM);
    }
    if tokio::time::timeout(GRACE, child.wait()).await.is_err() {
        if let Some(g) = group {
            let _ = killpg(g, Signal::SIGKILL);
        }
        let _ = child.wait().await;
    }
    reaper.kill_all(group).await
}

/// Reads an exit status into a [`ClientExit`].
pub fn exit_of(status: std::process::ExitStatus, command: &[String], seconds: f64) -> ClientExit {
    use std::os::unix::process::ExitStatusExt;
    ClientExit {
        command: command.to_vec(),
        code: status.code(),
        signal: status.signal(),
        timed_out: false,
        interrupted: false,
        seconds,
    }
}

/// The last `n` lines of the client's log, for reports.
pub fn log_tail(log: &Path, n: usize) -> Vec<String> {
    // The client could swap its log for anything: read its end, safely.
    let text = crate::runner::files::read_tail(log, 64 * 1024).bytes;
    let text = String::from_utf8_lossy(&text);
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..]
        .iter()
        .map(|l| l.chars().take(300).collect())
        .collect()
}
