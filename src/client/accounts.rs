//! The accounts to log in with, and which of them are still worth using.
//!
//! The target bans an account at its Nth security invalidation inside a
//! window (3 in an hour by default). So the client spreads logins over its
//! accounts and counts each account's *exposure*: the invalidations (and
//! unsolvable challenges) it has had plus its live sessions, each of which
//! may yet be invalidated. A login takes the account with the least
//! exposure, and never one whose exposure would reach `limit`; an account
//! invalidated `limit` times is rested for the rest of the run. So even
//! sessions dying together cannot push an account past `limit`. Banned
//! accounts and accounts whose credentials fail are never used again.

use std::path::Path;

use anyhow::Context as _;
use serde::Deserialize;

/// One account of `SESSIONRANGE_ACCOUNTS`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub(crate) struct Account {
    /// The login name.
    pub(crate) username: String,
    /// The password.
    pub(crate) password: String,
    /// Base32 TOTP secret, when the account has a second factor.
    #[serde(default)]
    pub(crate) totp_secret: Option<String>,
}

/// Reads the accounts file: a JSON array of accounts.
pub(crate) fn load(path: &Path) -> anyhow::Result<Vec<Account>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the accounts file {}", path.display()))?;
    serde_json::from_str(&text)
        .with_context(|| format!("{} is not a JSON array of accounts", path.display()))
}

/// Why an account is out of use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Retired {
    /// The target banned it.
    Banned,
    /// Its credentials or login steps failed.
    LoginFailed,
    /// It reached the client's invalidation limit.
    Rested,
}

#[derive(Clone, Debug, Default)]
struct Standing {
    retired: Option<Retired>,
    invalidations: u32,
    live: u32,
    logins: u32,
}

/// The accounts and how each stands.
#[derive(Debug)]
pub(crate) struct AccountBook {
    accounts: Vec<Account>,
    standing: Vec<Standing>,
    /// Invalidations that rest an account; `None` never rests one.
    limit: Option<u32>,
}

impl AccountBook {
    /// A book over `accounts`, resting each after `limit` invalidations.
    pub(crate) fn new(accounts: Vec<Account>, limit: Option<u32>) -> Self {
        Self {
            standing: vec![Standing::default(); accounts.len()],
            accounts,
            limit,
        }
    }

    /// Account `i`.
    pub(crate) fn get(&self, i: usize) -> &Account {
        &self.accounts[i]
    }

    /// The usable account with the least exposure, then other than
    /// `avoid`, then with the fewest logins. Marks it as having one more
    /// live session. `Err` says why there is none: `true` when some account
    /// will be usable again once a live session ends.
    pub(crate) fn pick(&mut self, avoid: Option<usize>) -> Result<usize, bool> {
        let exposure = |s: &Standing| s.invalidations + s.live;
        let open = |i: &usize| self.standing[*i].retired.is_none();
        let safe = |i: &usize| self.limit.is_none_or(|l| exposure(&self.standing[*i]) < l);
        let key = |i: &usize| {
            let s = &self.standing[*i];
            (exposure(s), Some(*i) == avoid, s.logins, *i)
        };
        let all = 0..self.accounts.len();
        let Some(i) = all.clone().filter(open).filter(safe).min_by_key(key) else {
            return Err(all.clone().any(|i| open(&i)));
        };
        self.standing[i].live += 1;
        Ok(i)
    }

    /// Account `i` again if it is usable, else the next usable one in order.
    pub(crate) fn same_or_next(&mut self, i: usize) -> Option<usize> {
        let n = self.accounts.len();
        let i = (0..n)
            .map(|k| (i + k) % n)
            .find(|j| self.standing[*j].retired.is_none())?;
        self.standing[i].live += 1;
        Some(i)
    }

    /// A login of account `i` succeeded.
    pub(crate) fn logged_in(&mut self, i: usize) {
        self.standing[i].logins += 1;
    }

    /// A session of account `i` ended (for any reason, or was never born).
    pub(crate) fn released(&mut self, i: usize) {
        let live = &mut self.standing[i].live;
        *live = live.saturating_sub(1);
    }

    /// A session of account `i` was invalidated for a security reason, or
    /// met a challenge it cannot solve.
    pub(crate) fn invalidated(&mut self, i: usize) {
        let s = &mut self.standing[i];
        s.invalidations += 1;
        if self.limit.is_some_and(|l| s.invalidations >= l) && s.retired.is_none() {
            s.retired = Some(Retired::Rested);
        }
    }

    /// Takes account `i` out of use for good.
    pub(crate) fn retire(&mut self, i: usize, why: Retired) {
        let s = &mut self.standing[i];
        if s.retired != Some(Retired::Banned) {
            s.retired = Some(why);
        }
    }

    /// The names of the accounts retired for `why`.
    pub(crate) fn retired(&self, why: Retired) -> Vec<String> {
        (0..self.accounts.len())
            .filter(|&i| self.standing[i].retired == Some(why))
            .map(|i| self.accounts[i].username.clone())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accounts(n: usize) -> Vec<Account> {
        (0..n)
            .map(|i| Account {
                username: format!("user{i}"),
                password: "pw".into(),
                totp_secret: None,
            })
            .collect()
    }

    #[test]
    fn the_accounts_file_is_a_json_array() {
        let json = r#"[{"username":"a","password":"b","totp_secret":null},
                       {"username":"c","password":"d","totp_secret":"JBSWY3DPEHPK3PXP"}]"#;
        let parsed: Vec<Account> = serde_json::from_str(json).expect("parses");
        assert_eq!(parsed[1].totp_secret.as_deref(), Some("JBSWY3DPEHPK3PXP"));
        assert!(load(Path::new("/nonexistent/accounts.json")).is_err());
    }

    #[test]
    fn logins_spread_over_accounts_and_avoid_the_last_one() {
        let mut book = AccountBook::new(accounts(3), Some(2));
        assert_eq!(book.pick(None), Ok(0));
        assert_eq!(book.pick(None), Ok(1));
        book.released(0);
        book.invalidated(0);
        assert_eq!(book.pick(Some(0)), Ok(2), "least exposure");
        book.released(2);
        book.released(1);
        assert_eq!(
            book.pick(Some(1)),
            Ok(2),
            "equal exposure: not the last one"
        );
        assert_eq!(book.pick(None), Ok(1));
        assert_eq!(book.pick(None), Ok(0));
        assert_eq!(
            book.pick(None),
            Ok(1),
            "exposure 1 is still under the limit"
        );
        assert_eq!(book.pick(None), Ok(2));
        assert_eq!(book.pick(None), Err(true), "busy, not used up");
    }

    #[test]
    fn sessions_dying_together_never_push_an_account_past_the_limit() {
        let mut book = AccountBook::new(accounts(1), Some(2));
        assert_eq!(book.pick(None), Ok(0));
        assert_eq!(book.pick(None), Ok(0));
        for _ in 0..2 {
            book.released(0);
            book.invalidated(0);
        }
        assert_eq!(book.pick(None), Err(false));
    }

    #[test]
    fn accounts_rest_at_the_limit_and_bans_stick() {
        let mut book = AccountBook::new(accounts(2), Some(2));
        book.invalidated(0);
        book.invalidated(0);
        book.retire(1, Retired::Banned);
        book.retire(1, Retired::LoginFailed);
        assert_eq!(book.pick(None), Err(false));
        assert_eq!(book.retired(Retired::Rested), vec!["user0".to_owned()]);
        assert_eq!(book.retired(Retired::Banned), vec!["user1".to_owned()]);
    }

    #[test]
    fn without_a_limit_the_same_account_comes_back() {
        let mut book = AccountBook::new(accounts(3), None);
        for _ in 0..5 {
            book.invalidated(1);
        }
        assert_eq!(book.same_or_next(1), Some(1));
        book.retire(1, Retired::Banned);
        assert_eq!(book.same_or_next(1), Some(2));
        book.retire(2, Retired::Banned);
        assert_eq!(book.same_or_next(1), Some(0));
    }
}
