//! Refresh-token rotation with reuse detection, as Auth0 does it.
//!
//! Each login starts a *family* bound to an engine session. Every refresh
//! swaps the presented token for a fresh one. Presenting a token that was
//! already swapped is *reuse*: someone else holds a copy, so the whole
//! family is revoked (and the shell revokes the session with
//! `REFRESH_TOKEN_REUSE`). An optional overlap window tolerates the common
//! race of two parallel refreshes with the same token.
//!
//! Tokens are stored as SHA-256 hashes, never as presented.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::{SessionId, Timestamp};

/// How many tokens a family remembers. A token older than that is
/// forgotten and comes back as [`RefreshOutcome::Unknown`], not as reuse.
const MAX_REMEMBERED: usize = 256;

/// A SHA-256 hash of a refresh token.
pub(crate) type TokenHash = [u8; 32];

/// What a refresh attempt did.
#[derive(Clone, Debug, PartialEq, Eq)]
#[must_use]
pub enum RefreshOutcome {
    /// The presented token was current; the fresh one replaced it.
    Rotated {
        /// The family's session.
        session: SessionId,
        /// The family's account.
        account: String,
    },
    /// The presented token was superseded less than the overlap window ago
    /// and is at most one generation old; the fresh one is now current.
    Overlap {
        /// The family's session.
        session: SessionId,
        /// The family's account.
        account: String,
    },
    /// The presented token was already rotated: the family is now revoked,
    /// and the shell should revoke the session with `REFRESH_TOKEN_REUSE`.
    Reuse {
        /// The family's session.
        session: SessionId,
        /// The family's account.
        account: String,
    },
    /// The family was already revoked.
    Revoked,
    /// The family's current token is past its lifetime.
    Expired,
    /// No such token (never issued, or forgotten).
    Unknown,
}

impl RefreshOutcome {
    /// Whether the fresh token was issued.
    pub fn is_accepted(&self) -> bool {
        matches!(self, Self::Rotated { .. } | Self::Overlap { .. })
    }

    /// A stable, machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Rotated { .. } => "rotated",
            Self::Overlap { .. } => "overlap",
            Self::Reuse { .. } => "reuse",
            Self::Revoked => "revoked",
            Self::Expired => "expired",
            Self::Unknown => "unknown",
        }
    }
}

/// One token a family remembers.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Remembered {
    hash: TokenHash,
    generation: u32,
    /// When it stopped being current, if it did.
    superseded: Option<Timestamp>,
}

/// The tokens descended from one login, and how a refresh with one of
/// them goes. Both stores keep families whole: the in-memory one in a map,
/// the shared one as one record, so a refresh is decided on one value.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct Family {
    account: String,
    generation: u32,
    /// When the current token stops working.
    expires: Timestamp,
    revoked: bool,
    /// Every remembered token, oldest first; the last is current.
    tokens: VecDeque<Remembered>,
}

impl Family {
    /// A family whose first token hashes to `hash`.
    pub(crate) fn start(account: &str, hash: TokenHash, now: Timestamp, ttl: Duration) -> Self {
        let first = Remembered {
            hash,
            generation: 0,
            superseded: None,
        };
        Self {
            account: account.to_owned(),
            generation: 0,
            expires: now.plus(ttl),
            revoked: false,
            tokens: VecDeque::from([first]),
        }
    }

    /// When the family's current token stops working.
    pub(crate) fn expires(&self) -> Timestamp {
        self.expires
    }

    /// Whether the family is neither revoked nor expired at `now`.
    pub(crate) fn is_live(&self, now: Timestamp) -> bool {
        !self.revoked && now < self.expires
    }

    /// Revokes the family.
    pub(crate) fn revoke(&mut self) {
        self.revoked = true;
    }

    /// Every remembered token's hash.
    pub(crate) fn hashes(&self) -> impl Iterator<Item = &TokenHash> {
        self.tokens.iter().map(|t| &t.hash)
    }

    /// Decides a refresh of `session`'s family with the token hashing to
    /// `presented`, for the token hashing to `fresh`. Returns the outcome
    /// and the hash of a token forgotten to make room, if any.
    pub(crate) fn rotate(
        &mut self,
        session: SessionId,
        presented: &TokenHash,
        fresh: TokenHash,
        now: Timestamp,
        windows: (Duration, Duration),
    ) -> (RefreshOutcome, Option<TokenHash>) {
        let (ttl, overlap) = windows;
        let Some(entry) = self.tokens.iter().find(|t| &t.hash == presented) else {
            return (RefreshOutcome::Unknown, None);
        };
        let (generation, superseded) = (entry.generation, entry.superseded);
        if self.revoked {
            return (RefreshOutcome::Revoked, None);
        }
        if now >= self.expires {
            return (RefreshOutcome::Expired, None);
        }
        let account = self.account.clone();
        let tolerated = |at: Timestamp| {
            now.since(at) < overlap && generation.saturating_add(1) >= self.generation
        };
        let outcome = match superseded {
            None => RefreshOutcome::Rotated { session, account },
            Some(at) if tolerated(at) => RefreshOutcome::Overlap { session, account },
            Some(_) => {
                self.revoked = true;
                return (RefreshOutcome::Reuse { session, account }, None);
            }
        };
        (outcome, self.advance(generation, fresh, now, ttl))
    }

    /// Makes `fresh` current, one generation after the presented token's
    /// `generation`; returns the hash of a token forgotten to make room.
    fn advance(
        &mut self,
        generation: u32,
        fresh: TokenHash,
        now: Timestamp,
        ttl: Duration,
    ) -> Option<TokenHash> {
        if let Some(old) = self.tokens.back_mut() {
            old.superseded.get_or_insert(now);
        }
        let next = generation.saturating_add(1);
        self.generation = self.generation.max(next);
        self.expires = now.plus(ttl);
        self.tokens.push_back(Remembered {
            hash: fresh,
            generation: next,
            superseded: None,
        });
        if self.tokens.len() > MAX_REMEMBERED {
            return self.tokens.pop_front().map(|t| t.hash);
        }
        None
    }
}

#[derive(Debug, Default)]
struct State {
    families: HashMap<SessionId, Family>,
    /// The family of every remembered token.
    tokens: HashMap<TokenHash, SessionId>,
    /// Sessions in the order their families started, to forget the
    /// oldest first when there are too many.
    started: VecDeque<SessionId>,
}

/// Most refresh-token families kept; past it the oldest is forgotten (its
/// tokens then come back as unknown), so logins cannot grow memory forever.
pub const MAX_FAMILIES: usize = 1_000_000;

/// Refresh-token families, one per session.
///
/// A token works for `ttl` after it was issued, so each rotation extends
/// the family's life. Call [`sweep`](Self::sweep) now and then to forget
/// families whose tokens have all expired.
///
/// ```
/// use sessionrange::SessionId;
/// use sessionrange::Timestamp;
/// use sessionrange::auth::refresh::{RefreshOutcome, RefreshTokens};
/// use std::time::Duration;
///
/// let store = RefreshTokens::new(Duration::from_secs(3600));
/// let sid = SessionId::from_u128(1);
/// let now = Timestamp::from_secs(1_000);
/// store.start(sid, "alice", "t0".into(), now);
/// assert!(store.rotate("t0", "t1".into(), now).is_accepted());
/// // A second refresh with the same token is reuse: the family dies.
/// assert!(matches!(store.rotate("t0", "t2".into(), now), RefreshOutcome::Reuse { .. }));
/// assert_eq!(store.rotate("t1", "t3".into(), now), RefreshOutcome::Revoked);
/// ```
#[derive(Debug)]
pub struct RefreshTokens {
    ttl: Duration,
    overlap: Duration,
    max_families: usize,
    state: Mutex<State>,
}

impl RefreshTokens {
    /// A store whose tokens live `ttl` each, with no overlap window.
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            overlap: Duration::ZERO,
            max_families: MAX_FAMILIES,
            state: Mutex::default(),
        }
    }

    /// Sets the reuse window, as Auth0's: the previous generation's token,
    /// superseded less than `overlap` ago, may be exchanged again, as often
    /// as parallel workers race with it inside the window. Older tokens
    /// are always reuse.
    #[must_use]
    pub fn with_overlap(mut self, overlap: Duration) -> Self {
        self.overlap = overlap;
        self
    }

    /// Keeps at most `n` families (at least one) instead of [`MAX_FAMILIES`].
    #[must_use]
    pub fn with_max_families(mut self, n: usize) -> Self {
        self.max_families = n.max(1);
        self
    }

    /// Starts a family for a new login, replacing any earlier family of the
    /// same session. `token` must be fresh random bytes from the shell.
    pub fn start(&self, session: SessionId, account: &str, token: String, now: Timestamp) {
        let mut state = self.state.lock();
        state.forget(session);
        while state.families.len() >= self.max_families {
            match state.started.pop_front() {
                Some(oldest) => state.forget(oldest),
                None => break,
            }
        }
        state.started.push_back(session);
        let hash = digest(&token);
        state.tokens.insert(hash, session);
        let family = Family::start(account, hash, now, self.ttl);
        state.families.insert(session, family);
    }

    /// Exchanges `presented` for `fresh` (random bytes from the shell).
    pub fn rotate(&self, presented: &str, fresh: String, now: Timestamp) -> RefreshOutcome {
        let mut state = self.state.lock();
        let hash = digest(presented);
        let Some(&session) = state.tokens.get(&hash) else {
            return RefreshOutcome::Unknown;
        };
        let Some(family) = state.families.get_mut(&session) else {
            return RefreshOutcome::Unknown;
        };
        let fresh = digest(&fresh);
        let windows = (self.ttl, self.overlap);
        let (outcome, forgotten) = family.rotate(session, &hash, fresh, now, windows);
        if outcome.is_accepted() {
            state.tokens.insert(fresh, session);
        }
        if let Some(old) = forgotten {
            state.tokens.remove(&old);
        }
        outcome
    }

    /// The session a refresh token belongs to, without using it.
    pub fn session_of(&self, token: &str) -> Option<SessionId> {
        self.state.lock().tokens.get(&digest(token)).copied()
    }

    /// Revokes the family of `token` (RFC 7009) and returns its session,
    /// if the token was known; the endpoint answers 200 either way.
    pub fn revoke_token(&self, token: &str) -> Option<SessionId> {
        let mut state = self.state.lock();
        let session = state.tokens.get(&digest(token)).copied()?;
        state.revoke(session);
        Some(session)
    }

    /// Forgets every family, as if the target restarted.
    pub fn clear(&self) {
        *self.state.lock() = State::default();
    }

    /// Revokes the session's family. Returns whether it had one.
    pub fn revoke_session(&self, session: SessionId) -> bool {
        self.state.lock().revoke(session)
    }

    /// Whether the session has a family that is neither revoked nor expired.
    pub fn is_family_live(&self, session: SessionId, now: Timestamp) -> bool {
        self.state
            .lock()
            .families
            .get(&session)
            .is_some_and(|f| f.is_live(now))
    }

    /// Forgets families whose current token expired, revoked or not, and
    /// returns how many. Their tokens then come back as `Unknown`.
    pub fn sweep(&self, now: Timestamp) -> usize {
        let mut state = self.state.lock();
        let dead: Vec<SessionId> = state
            .families
            .iter()
            .filter(|(_, f)| now >= f.expires)
            .map(|(s, _)| *s)
            .collect();
        for session in &dead {
            state.forget(*session);
        }
        let State {
            families, started, ..
        } = &mut *state;
        started.retain(|s| families.contains_key(s));
        dead.len()
    }

    /// How many families are remembered, live or not.
    pub fn len(&self) -> usize {
        self.state.lock().families.len()
    }

    /// Whether no family is remembered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl State {
    fn revoke(&mut self, session: SessionId) -> bool {
        match self.families.get_mut(&session) {
            Some(family) => {
                family.revoke();
                true
            }
            None => false,
        }
    }

    /// Drops a family and all its tokens.
    fn forget(&mut self, session: SessionId) {
        if let Some(family) = self.families.remove(&session) {
            for hash in family.hashes() {
                self.tokens.remove(hash);
            }
        }
    }
}

/// The SHA-256 of a refresh token: what the stores keep.
pub(crate) fn digest(token: &str) -> TokenHash {
    Sha256::digest(token.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    const TTL: Duration = Duration::from_secs(3600);

    fn sid() -> SessionId {
        SessionId::from_u128(0x5e55)
    }

    fn at(secs: u64) -> Timestamp {
        Timestamp::from_secs(1_000 + secs)
    }

    fn started(overlap: Duration) -> RefreshTokens {
        let store = RefreshTokens::new(TTL).with_overlap(overlap);
        store.start(sid(), "alice", "a".into(), at(0));
        store
    }

    fn rotated() -> RefreshOutcome {
        RefreshOutcome::Rotated {
            session: sid(),
            account: "alice".into(),
        }
    }

    fn overlap() -> RefreshOutcome {
        RefreshOutcome::Overlap {
            session: sid(),
            account: "alice".into(),
        }
    }

    fn reuse() -> RefreshOutcome {
        RefreshOutcome::Reuse {
            session: sid(),
            account: "alice".into(),
        }
    }

    #[test]
    fn current_token_rotates_and_fresh_one_becomes_current() {
        let store = started(Duration::ZERO);
        assert_eq!(store.rotate("a", "b".into(), at(1)), rotated());
        assert_eq!(store.rotate("b", "c".into(), at(2)), rotated());
        assert!(store.is_family_live(sid(), at(2)));
    }

    #[test]
    fn parallel_refresh_without_overlap_kills_the_family() {
        let store = started(Duration::ZERO);
        assert_eq!(store.rotate("a", "b".into(), at(5)), rotated());
        assert_eq!(store.rotate("a", "c".into(), at(5)), reuse());
        assert!(!store.is_family_live(sid(), at(5)));
        // Even the winner's token is dead now.
        assert_eq!(
            store.rotate("b", "d".into(), at(6)),
            RefreshOutcome::Revoked
        );
        // The loser's fresh token was never handed out.
        assert_eq!(
            store.rotate("c", "e".into(), at(6)),
            RefreshOutcome::Unknown
        );
    }

    #[test]
    fn parallel_refresh_within_overlap_keeps_the_family() {
        let store = started(Duration::from_secs(30));
        assert_eq!(store.rotate("a", "b".into(), at(5)), rotated());
        assert_eq!(store.rotate("a", "c".into(), at(5)), overlap());
        assert!(store.is_family_live(sid(), at(5)));
        assert_eq!(store.rotate("c", "d".into(), at(6)), rotated());
    }

    #[test]
    fn three_way_race_within_overlap_is_tolerated() {
        let store = started(Duration::from_secs(30));
        assert_eq!(store.rotate("a", "b".into(), at(5)), rotated());
        assert_eq!(store.rotate("a", "c".into(), at(5)), overlap());
        assert_eq!(store.rotate("a", "d".into(), at(5)), overlap());
        // The race losers' tokens were superseded just now: still in the window.
        assert_eq!(store.rotate("b", "e".into(), at(6)), overlap());
        assert!(store.is_family_live(sid(), at(6)));
    }

    #[test]
    fn previous_token_after_the_overlap_window_is_reuse() {
        let store = started(Duration::from_secs(30));
        assert_eq!(store.rotate("a", "b".into(), at(5)), rotated());
        assert_eq!(store.rotate("a", "c".into(), at(35)), reuse());
        assert!(!store.is_family_live(sid(), at(35)));
    }

    #[test]
    fn third_generation_reuse_is_always_reuse() {
        for window in [Duration::ZERO, Duration::from_secs(30)] {
            let store = started(window);
            assert_eq!(store.rotate("a", "b".into(), at(1)), rotated());
            assert_eq!(store.rotate("b", "c".into(), at(1)), rotated());
            assert_eq!(store.rotate("a", "x".into(), at(1)), reuse(), "{window:?}");
            assert!(!store.is_family_live(sid(), at(1)));
        }
    }

    #[test]
    fn tokens_expire_after_ttl_and_rotation_extends_it() {
        let store = started(Duration::ZERO);
        assert_eq!(store.rotate("a", "b".into(), at(3000)), rotated());
        assert!(store.is_family_live(sid(), at(6000)));
        assert_eq!(
            store.rotate("b", "c".into(), at(6600)),
            RefreshOutcome::Expired
        );
        assert!(!store.is_family_live(sid(), at(6600)));
    }

    #[test]
    fn unknown_tokens_are_unknown() {
        let store = started(Duration::ZERO);
        assert_eq!(
            store.rotate("nope", "b".into(), at(1)),
            RefreshOutcome::Unknown
        );
        assert!(store.is_family_live(sid(), at(1)));
    }

    #[test]
    fn revoking_a_token_revokes_its_family() {
        let store = started(Duration::ZERO);
        assert_eq!(store.rotate("a", "b".into(), at(1)), rotated());
        assert!(store.revoke_token("a").is_some());
        assert!(store.revoke_token("never issued").is_none());
        assert_eq!(
            store.rotate("b", "c".into(), at(2)),
            RefreshOutcome::Revoked
        );
    }

    #[test]
    fn revoking_a_session_revokes_its_family() {
        let store = started(Duration::ZERO);
        assert!(store.revoke_session(sid()));
        assert!(!store.revoke_session(SessionId::from_u128(9)));
        assert_eq!(
            store.rotate("a", "b".into(), at(1)),
            RefreshOutcome::Revoked
        );
    }

    #[test]
    fn the_oldest_family_is_forgotten_past_the_cap() {
        let store = RefreshTokens::new(Duration::from_secs(60)).with_max_families(2);
        for (n, token) in ["t1", "t2", "t3"].iter().enumerate() {
            store.start(
                SessionId::from_u128(n as u128 + 1),
                "acct",
                (*token).to_owned(),
                at(0),
            );
        }
        assert_eq!(store.len(), 2);
        assert_eq!(
            store.rotate("t1", "x".into(), at(1)),
            RefreshOutcome::Unknown
        );
        assert!(store.rotate("t3", "y".into(), at(1)).is_accepted());
    }

    #[test]
    fn sweep_forgets_expired_families_only() {
        let store = started(Duration::ZERO);
        let other = SessionId::from_u128(2);
        store.start(other, "bob", "z".into(), at(3000));
        assert_eq!(store.sweep(at(3600)), 1);
        assert_eq!(store.len(), 1);
        assert_eq!(
            store.rotate("a", "b".into(), at(3600)),
            RefreshOutcome::Unknown
        );
        assert!(store.is_family_live(other, at(3600)));
    }

    #[test]
    fn restarting_a_session_replaces_its_family() {
        let store = started(Duration::ZERO);
        store.start(sid(), "alice", "fresh".into(), at(1));
        assert_eq!(
            store.rotate("a", "b".into(), at(2)),
            RefreshOutcome::Unknown
        );
        assert_eq!(store.rotate("fresh", "c".into(), at(2)), rotated());
    }

    #[test]
    fn a_family_remembers_a_bounded_number_of_tokens() {
        let store = started(Duration::ZERO);
        let mut presented = "a".to_owned();
        for i in 0..MAX_REMEMBERED + 10 {
            let fresh = format!("t{i}");
            assert_eq!(store.rotate(&presented, fresh.clone(), at(1)), rotated());
            presented = fresh;
        }
        assert_eq!(store.state.lock().tokens.len(), MAX_REMEMBERED);
        assert_eq!(
            store.rotate("a", "x".into(), at(1)),
            RefreshOutcome::Unknown
        );
        assert_eq!(store.rotate("t100", "x".into(), at(1)), reuse());
    }

    #[test]
    fn tokens_are_stored_hashed() {
        let store = started(Duration::ZERO);
        let state = store.state.lock();
        assert!(state.tokens.contains_key(&digest("a")));
        assert!(!format!("{:?}", state.tokens).contains("\"a\""));
    }
}
