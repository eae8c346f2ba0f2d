//! What the workers of one run share: accounts, exits, pacers, the queue, the output, the counters.
//!
//! Locks here are `std` mutexes held for a few statements, never across
//! an `.await`; the one exception is the shared session slot, a tokio
//! mutex held while one worker logs in so the others wait for its session.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::time::Duration;

use parking_lot::Mutex;
use reqwest::Url;
use tokio::time::Instant;

use crate::client::Bug;
use crate::client::accounts::AccountBook;
use crate::client::exits::{ExitBook, ExitId};
use crate::client::output::Output;
use crate::client::pace::Pacer;
use crate::client::queue::Queue;
use crate::client::session::Session;
use crate::client::summary::Stats;

/// What every worker shares.
#[derive(Debug)]
pub(crate) struct Shared {
    /// The deliberate mistake, if any.
    pub(crate) bug: Option<Bug>,
    /// The number of workers.
    pub(crate) workers: usize,
    /// The target's base URL.
    pub(crate) base: Url,
    /// The longest one request may take.
    pub(crate) timeout: Duration,
    /// When the run must be over.
    pub(crate) deadline: Instant,
    /// Log to stderr.
    pub(crate) verbose: bool,
    /// The accounts.
    pub(crate) accounts: Mutex<AccountBook>,
    /// The exits.
    pub(crate) exits: Mutex<ExitBook>,
    /// One pacer per account.
    pub(crate) pacers: Vec<Arc<Pacer>>,
    /// The pages.
    pub(crate) queue: Queue,
    /// The records.
    pub(crate) output: Output,
    /// The counters.
    pub(crate) stats: Arc<Stats>,
    /// Whether cookies were refused and the client uses bearer tokens.
    pub(crate) jwt: AtomicBool,
    /// Whether the site has no JSON API and the client crawls `/catalog`.
    pub(crate) html: AtomicBool,
    /// The session workers share in JWT mode (and with
    /// `--bug share-session-across-exits`).
    pub(crate) slot: tokio::sync::Mutex<Option<Arc<Session>>>,
    /// The exit and account of the last session that was refused.
    pub(crate) last_refused: Mutex<Option<(ExitId, usize)>>,
    /// Session numbers.
    pub(crate) serial: AtomicU64,
}

impl Shared {
    /// Whether the run makes the mistake `bug`.
    pub(crate) fn has(&self, bug: Bug) -> bool {
        self.bug == Some(bug)
    }

    /// Logs a line to stderr, unless quiet.
    pub(crate) fn log(&self, msg: impl std::fmt::Display) {
        if self.verbose {
            eprintln!("sessionrange client: {msg}");
        }
    }

    /// Sleeps for `d`, but not past the deadline.
    pub(crate) async fn sleep(&self, d: Duration) {
        let until = (Instant::now() + d).min(self.deadline);
        tokio::time::sleep_until(until).await;
    }

    /// Records why the run stopped early (the first reason wins).
    pub(crate) fn give_up(&self, why: &str) {
        self.log(format_args!("giving up: {why}"));
        self.stats.update(|s| {
            s.gave_up.get_or_insert_with(|| why.to_owned());
        });
    }
}
