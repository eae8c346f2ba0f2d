//! The target's stores, in its own memory or shared on Redis: one async
//! face over both, so a handler never asks which it runs on.

use std::sync::Arc;
use std::time::Duration;

use crate::auth::jwt::{AccessClaims, TokenError};
use crate::auth::pow::{self, ChallengeKind};
use crate::auth::refresh::RefreshOutcome;
use crate::clock::Timestamp;
use crate::context::RequestContext;
use crate::engine::{Decision, Upkeep};
use crate::session::{Account, Session, SessionId};
use crate::site::shared::Unavailable;
use crate::site::state::TargetState;
use crate::verdict::Reason;

/// What a call on the stores gives: the value, or why the store could not
/// be asked (only a shared store fails).
pub(crate) type Stored<T> = Result<T, Unavailable>;

impl TargetState {
    /// Judges a request on session `sid` (see [`crate::Engine::decide`]).
    pub async fn decide(
        &self,
        sid: SessionId,
        ctx: Arc<RequestContext>,
        now: Timestamp,
    ) -> Stored<Decision> {
        self.judging();
        match &self.shared {
            Some(s) => s.decide(&self.engine, sid, ctx, now).await,
            None => Ok(self.engine.decide(sid, ctx, now)),
        }
    }

    /// Logs `account` in as session `sid` (see [`crate::Engine::login`]).
    pub async fn login(
        &self,
        sid: SessionId,
        account: &str,
        ctx: Arc<RequestContext>,
        companions: Vec<(String, String)>,
        now: Timestamp,
    ) -> Stored<Decision> {
        match &self.shared {
            Some(s) => {
                s.login(&self.engine, sid, account, ctx, companions, now)
                    .await
            }
            None => Ok(self.engine.login(sid, account, ctx, companions, now)),
        }
    }

    /// Judges a login attempt (see [`crate::Engine::admit_login`]).
    pub async fn admit_login(
        &self,
        sid: SessionId,
        account: Option<&str>,
        ctx: Arc<RequestContext>,
        now: Timestamp,
    ) -> Stored<Decision> {
        match &self.shared {
            Some(s) => s.admit_login(&self.engine, sid, account, ctx, now).await,
            None => Ok(self.engine.admit_login(sid, account, ctx, now)),
        }
    }

    /// Ends an allowed request (see [`crate::Engine::release`]).
    pub async fn release(&self, sid: SessionId, now: Timestamp) -> Stored<Decision> {
        match &self.shared {
            Some(s) => s.release(&self.engine, sid, now).await,
            None => Ok(self.engine.release(sid, now)),
        }
    }

    /// Revokes one session (see [`crate::Engine::revoke`]).
    pub async fn revoke(&self, sid: SessionId, reason: Reason, now: Timestamp) -> Stored<Decision> {
        match &self.shared {
            Some(s) => s.revoke(&self.engine, sid, reason, now).await,
            None => Ok(self.engine.revoke(sid, reason, now)),
        }
    }

    /// Revokes every live session of `account`: the revocations made, and
    /// the first failure (a shared store's session it could not read or
    /// write), after every other session was revoked.
    pub async fn revoke_account(
        &self,
        account: &str,
        reason: Reason,
        now: Timestamp,
    ) -> (Vec<Decision>, Stored<()>) {
        match &self.shared {
            Some(s) => s.revoke_account(&self.engine, account, reason, now).await,
            None => (self.engine.revoke_account(account, reason, now), Ok(())),
        }
    }

    /// Forgets every session, standing and refresh family.
    pub async fn reset(&self, now: Timestamp) -> Stored<Upkeep> {
        self.refresh.clear();
        match &self.shared {
            Some(s) => s.reset(&self.engine, now).await,
            None => Ok(self.engine.reset(now)),
        }
    }

    /// Copies of every session.
    pub async fn all_sessions(&self) -> Stored<Vec<Session>> {
        match &self.shared {
            Some(s) => s.sessions().await,
            None => Ok(self.engine.sessions()),
        }
    }

    /// A copy of one session.
    pub async fn one_session(&self, sid: SessionId) -> Stored<Option<Session>> {
        match &self.shared {
            Some(s) => s.session(sid).await,
            None => Ok(self.engine.session(sid)),
        }
    }

    /// Copies of every account standing, by name.
    pub async fn all_accounts(&self) -> Stored<Vec<(String, Account)>> {
        match &self.shared {
            Some(s) => s.accounts().await,
            None => Ok(self
                .engine
                .accounts()
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect()),
        }
    }

    /// Sessions held, live and dead.
    pub async fn session_count(&self) -> Stored<usize> {
        match &self.shared {
            Some(s) => s.session_count().await,
            None => Ok(self.engine.len()),
        }
    }

    /// Starts session `sid`'s refresh-token family with `token`.
    pub async fn refresh_start(
        &self,
        sid: SessionId,
        account: &str,
        token: &str,
        now: Timestamp,
    ) -> Stored<()> {
        match &self.shared {
            Some(s) => {
                s.refresh_start(sid, account, token, now, self.config.tokens.refresh_ttl)
                    .await
            }
            None => {
                self.refresh.start(sid, account, token.to_owned(), now);
                Ok(())
            }
        }
    }

    /// Exchanges a refresh token for `fresh`.
    pub async fn refresh_rotate(
        &self,
        presented: &str,
        fresh: &str,
        now: Timestamp,
    ) -> Stored<RefreshOutcome> {
        let t = &self.config.tokens;
        match &self.shared {
            Some(s) => {
                s.refresh_rotate(presented, fresh, now, (t.refresh_ttl, t.refresh_overlap))
                    .await
            }
            None => Ok(self.refresh.rotate(presented, fresh.to_owned(), now)),
        }
    }

    /// The session a refresh token belongs to.
    pub async fn refresh_session_of(&self, token: &str) -> Stored<Option<SessionId>> {
        match &self.shared {
            Some(s) => s.refresh_session_of(token).await,
            None => Ok(self.refresh.session_of(token)),
        }
    }

    /// Whether session `sid` has a live refresh family.
    pub async fn refresh_is_live(&self, sid: SessionId, now: Timestamp) -> Stored<bool> {
        match &self.shared {
            Some(s) => s.refresh_is_live(sid, now).await,
            None => Ok(self.refresh.is_family_live(sid, now)),
        }
    }

    /// Revokes session `sid`'s refresh family.
    pub async fn refresh_revoke_session(&self, sid: SessionId) -> Stored<bool> {
        match &self.shared {
            Some(s) => s.refresh_revoke_session(sid).await,
            None => Ok(self.refresh.revoke_session(sid)),
        }
    }

    /// Revokes the family of a refresh token; its session, if known.
    pub async fn refresh_revoke_token(&self, token: &str) -> Stored<Option<SessionId>> {
        match &self.shared {
            Some(s) => s.refresh_revoke_token(token).await,
            None => Ok(self.refresh.revoke_token(token)),
        }
    }

    /// Verifies an access token. On a shared store a token naming a key
    /// this instance does not hold makes it read the run's keys again
    /// first: another instance may have rotated them.
    pub async fn verify_jwt(
        &self,
        token: &str,
        now: Timestamp,
    ) -> Result<AccessClaims, TokenError> {
        let skew = self.config.tokens.skew;
        let first = self.jwt.read().verify(token, now, skew);
        match (&self.shared, first) {
            // One read of the stored key id; the keys themselves only
            // when it moved, so a forged key id costs no more.
            (Some(_), Err(TokenError::UnknownKey)) if self.current_signing_key().await.is_ok() => {
                self.jwt.read().verify(token, now, skew)
            }
            (_, verified) => verified,
        }
    }

    /// Before issuing an access token on a shared store: takes up the run's
    /// signing key if another instance rotated it, so that no instance
    /// signs with a key the others dropped. One read per token issued.
    pub async fn current_signing_key(&self) -> Stored<()> {
        let Some(s) = &self.shared else {
            return Ok(());
        };
        let kid = s.signing_kid().await?;
        // Missing: Redis lost its data. This instance offers the run's
        // keys again, as it holds them, and takes whatever is stored.
        if kid.as_deref() != Some(self.jwt.read().kid()) {
            *self.jwt.write() = s.adopt_keys(&self.keys()).await?.jwt;
        }
        Ok(())
    }

    /// Denies an access token by its `jti` until it would have expired.
    pub async fn deny_jti(&self, jti: &str, exp: Timestamp, now: Timestamp) -> Stored<()> {
        match &self.shared {
            Some(s) => s.deny_jti(jti, exp, now).await,
            None => {
                self.deny_jti_here(jti, exp);
                Ok(())
            }
        }
    }

    /// Whether an access token's `jti` was revoked.
    pub async fn is_jti_denied(&self, jti: &str) -> Stored<bool> {
        match &self.shared {
            Some(s) => s.is_jti_denied(jti).await,
            None => Ok(self.is_jti_denied_here(jti)),
        }
    }

    /// A fresh proof-of-work challenge for a login, which starts a login
    /// flow (see [`TargetState::login_flow_done`]).
    pub fn pow_challenge(&self, now: Timestamp) -> String {
        let ch = pow::seal(&self.csrf, ChallengeKind::Login, now, &mut rand::rng());
        self.flow_token_issued(&ch, now);
        ch
    }

    /// Consumes a login's challenge: whether it is fresh and unspent.
    /// Each is accepted once, by any instance.
    pub async fn take_pow(&self, challenge: &str, now: Timestamp) -> Stored<bool> {
        self.take_challenge(ChallengeKind::Login, challenge, now)
            .await
    }

    /// A fresh challenge of the JavaScript challenge page: not a login
    /// flow of its own, and never one a login takes.
    pub fn page_challenge(&self, now: Timestamp) -> String {
        pow::seal(&self.csrf, ChallengeKind::Page, now, &mut rand::rng())
    }

    /// Consumes a challenge of the JavaScript challenge page.
    pub async fn take_page_challenge(&self, challenge: &str, now: Timestamp) -> Stored<bool> {
        self.take_challenge(ChallengeKind::Page, challenge, now)
            .await
    }

    /// Whether `challenge` is a fresh one of `kind` that this target sealed
    /// and no instance took before; it is taken. Sealed challenges need no
    /// store to be issued, so issuing one never waits on one.
    async fn take_challenge(
        &self,
        kind: ChallengeKind,
        challenge: &str,
        now: Timestamp,
    ) -> Stored<bool> {
        let issued = pow::issued(&self.csrf, kind, challenge);
        // Issue times are whole seconds: the TTL counts from that second.
        let fresh = |t: Timestamp| t <= now && now.since(t) < CHALLENGE_TTL;
        if !issued.is_some_and(fresh) {
            return Ok(false);
        }
        match &self.shared {
            Some(s) => s.spend(challenge, CHALLENGE_TTL).await,
            None => Ok(self.spend_here(challenge, now)),
        }
    }
}

/// How long a proof-of-work challenge stays valid.
pub(crate) const CHALLENGE_TTL: Duration = Duration::from_secs(5 * 60);
