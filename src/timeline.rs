//! Scripted target-side events: at a time or a request count, revoke, rotate keys or restart.

use std::time::Duration;

use serde::{Deserialize, Serialize};

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

/// One scripted event: `at` a time since the client started, or
/// `at_request` once the target has decided that many requests.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TimelineEvent {
    /// When, after the client started.
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

#[cfg(test)]
mod tests {
    use super::*;

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
