//! Scripted target-side events: at a time or a request count, revoke, rotate keys or restart.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::clock::Timestamp;
use crate::error::{Error, Result};

/// What a scripted event does to the target.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TimelineAction {
    /// Revokes every live session of `account` (`SESSION_REVOKED`).
    RevokeAccount,
    /// Revokes every live session of every account.
    RevokeAll,
    /// Rotates the JWT signing key: every access token issued so far fails.
    RotateSigningKey,
    /// Restarts the target: sessions, refresh tokens and keys are lost.
    Restart,
}

impl TimelineAction {
    /// The name used in scenario files and the trace.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::RevokeAccount => "revoke-account",
            Self::RevokeAll => "revoke-all",
            Self::RotateSigningKey => "rotate-signing-key",
            Self::Restart => "restart",
        }
    }
}

/// One scripted event: `at` a time since the client's first request to
/// the target, or `at_request` once the target has decided that many
/// requests. Timing from the first request, not from the client's start,
/// means a client that takes long to start still meets the event.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TimelineEvent {
    /// When, after the first request the target decided.
    #[serde(default, with = "humantime_serde")]
    pub at: Option<Duration>,
    /// When, in requests decided by the engine.
    #[serde(default)]
    pub at_request: Option<u64>,
    /// What happens.
    pub action: TimelineAction,
    /// The account, for `revoke-account`.
    #[serde(default)]
    pub account: Option<String>,
}

impl TimelineEvent {
    /// Checks the event; `accounts` are the scenario's account names.
    pub fn validate(&self, prefix: &str, accounts: &[&str]) -> Result<()> {
        if self.at.is_some() == self.at_request.is_some() {
            return Err(Error::config(
                format!("{prefix}.at"),
                "give exactly one of `at` (a duration) or `at_request` (a count)",
            ));
        }
        match (self.action, &self.account) {
            (TimelineAction::RevokeAccount, None) => Err(Error::config(
                format!("{prefix}.account"),
                "`revoke-account` needs the account to revoke",
            )),
            (TimelineAction::RevokeAccount, Some(a)) if !accounts.contains(&a.as_str()) => {
                Err(Error::config(
                    format!("{prefix}.account"),
                    format!("no account is named `{a}`"),
                ))
            }
            (TimelineAction::RevokeAccount, Some(_)) | (_, None) => Ok(()),
            (_, Some(_)) => Err(Error::config(
                format!("{prefix}.account"),
                "only `revoke-account` takes an account",
            )),
        }
    }

    /// Whether the event is due, `elapsed` after the start and with
    /// `requests` decided so far.
    pub fn due(&self, elapsed: Duration, requests: u64) -> bool {
        self.at.is_some_and(|t| elapsed >= t) || self.at_request.is_some_and(|n| requests >= n)
    }
}

/// A scenario's events and which have fired: pure bookkeeping, fed with
/// the time and the count of requests decided so far.
#[derive(Clone, Debug, Default)]
pub struct Script {
    events: Vec<(TimelineEvent, bool)>,
    origin: Option<Timestamp>,
}

impl Script {
    /// A script of `events`, none fired yet.
    pub fn new(events: &[TimelineEvent]) -> Self {
        Self {
            events: events.iter().map(|e| (e.clone(), false)).collect(),
            origin: None,
        }
    }

    /// Whether any event is still to fire.
    pub fn pending(&self) -> bool {
        self.events.iter().any(|(_, fired)| !fired)
    }

    /// The events due at `now` with `requests` decided, each returned
    /// once. The first call with `requests > 0` sets the time origin.
    pub fn due(&mut self, now: Timestamp, requests: u64) -> Vec<TimelineEvent> {
        if self.origin.is_none() && requests > 0 {
            self.origin = Some(now);
        }
        let Some(origin) = self.origin else {
            return Vec::new();
        };
        let elapsed = now.since(origin);
        let mut out = Vec::new();
        for (event, fired) in &mut self.events {
            if !*fired && event.due(elapsed, requests) {
                *fired = true;
                out.push(event.clone());
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_script_counts_time_from_the_first_request_and_fires_once() {
        let events = [
            event("at = \"1500ms\"\naction = \"revoke-all\""),
            event("at_request = 5\naction = \"restart\""),
        ];
        let mut script = Script::new(&events);
        let t = Timestamp::from_millis;
        assert!(
            script.due(t(10_000), 0).is_empty(),
            "no request yet: no origin"
        );
        assert!(script.due(t(20_000), 1).is_empty());
        assert!(script.due(t(21_499), 4).is_empty());
        let fired = script.due(t(21_500), 5);
        assert_eq!(fired.len(), 2);
        assert!(script.due(t(30_000), 50).is_empty() && !script.pending());
    }

    fn event(text: &str) -> TimelineEvent {
        toml::from_str(text).expect("an event")
    }

    #[test]
    fn events_need_one_trigger_and_the_right_account() {
        let ok = event("at = \"20s\"\naction = \"revoke-account\"\naccount = \"alice\"");
        ok.validate("timeline[0]", &["alice"]).expect("valid");
        assert!(ok.due(Duration::from_secs(20), 0));
        assert!(!ok.due(Duration::from_secs(19), 10_000));
        let both = event("at = \"1s\"\nat_request = 3\naction = \"restart\"");
        assert!(both.validate("t", &[]).is_err());
        let unknown = event("at_request = 3\naction = \"revoke-account\"\naccount = \"mallory\"");
        let err = unknown
            .validate("timeline[1]", &["alice"])
            .expect_err("unknown account");
        assert!(err.to_string().contains("timeline[1].account"), "{err}");
        let by_count = event("at_request = 300\naction = \"rotate-signing-key\"");
        by_count.validate("t", &[]).expect("valid");
        assert!(by_count.due(Duration::ZERO, 300) && !by_count.due(Duration::ZERO, 299));
    }
}
