//! What a client run did: records, logins, and every refusal it met, by kind.

use std::collections::BTreeMap;

use parking_lot::Mutex;
use serde::Serialize;

use crate::client::Bug;

/// The result of [`run`](crate::client::run), printed as JSON by
/// `sessionrange client`.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct ClientSummary {
    /// The scenario name the runner gave.
    pub scenario: String,
    /// The deliberate mistake this run made, if any.
    pub bug: Option<Bug>,
    /// How the client authenticated: `cookie` or `jwt` (`None` before any login).
    pub auth: Option<String>,
    /// Distinct records written to the output file.
    pub records_written: u64,
    /// Listing pages fetched.
    pub pages_fetched: u64,
    /// Pages in the listing, when known.
    pub pages_total: Option<u32>,
    /// Whether every page was fetched and the end of the listing seen.
    pub complete: bool,
    /// HTTP requests sent, logins included.
    pub requests: u64,
    /// Successful logins.
    pub logins: u64,
    /// Failed login attempts.
    pub login_failures: u64,
    /// Access-token refreshes that succeeded.
    pub refreshes: u64,
    /// Sessions that ended on a refusal, by the style the refusal came in
    /// (`rfc6750`, `json-401`, `block-403`, `redirect-login`, `soft-login`,
    /// `refresh-reuse`, and `expired` for natural ends).
    pub invalidations: BTreeMap<String, u64>,
    /// Of those, how many were for a security reason.
    pub security_invalidations: u64,
    /// Challenge interstitials met (the session was retired all the same).
    pub challenges: u64,
    /// `429` answers waited out.
    pub rate_limited: u64,
    /// Refusals that said the account is banned.
    pub account_bans: u64,
    /// Refusals that said the exit's address is banned.
    pub exit_bans: u64,
    /// Proxy failures: refused or reset connections, timeouts, 407, 502.
    pub exit_failures: u64,
    /// Requests sent again with a session already refused (only with
    /// `--bug keep-using-dead-session`).
    pub dead_session_requests: u64,
    /// Accounts the target banned.
    pub banned_accounts: Vec<String>,
    /// Accounts the client stopped using after too many invalidations.
    pub rested_accounts: Vec<String>,
    /// Exits the client stopped using.
    pub dead_exits: Vec<String>,
    /// Whether the run was cut short by the deadline.
    pub deadline_reached: bool,
    /// Why the client stopped early, when it did.
    pub gave_up: Option<String>,
}

impl ClientSummary {
    /// Every session-ending refusal, of every style.
    pub fn invalidation_count(&self) -> u64 {
        self.invalidations.values().sum()
    }
}

/// The summary, updated by every worker as the run goes.
#[derive(Debug, Default)]
pub(crate) struct Stats {
    inner: Mutex<ClientSummary>,
}

impl Stats {
    /// Changes the summary.
    pub(crate) fn update(&self, f: impl FnOnce(&mut ClientSummary)) {
        f(&mut self.inner.lock());
    }

    /// A copy of the summary as it stands.
    pub(crate) fn snapshot(&self) -> ClientSummary {
        self.inner.lock().clone()
    }
}
