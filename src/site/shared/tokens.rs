//! Tokens in the shared store: refresh-token families, denied access
//! tokens and outstanding proof-of-work challenges, each with a time to
//! live so that Redis forgets them when the in-memory stores would.

use std::time::Duration;

use super::{MAX_TRIES, SharedStore, Unavailable, Write, contended};
use crate::auth::refresh::{Family, RefreshOutcome, TokenHash, digest};
use crate::clock::Timestamp;
use crate::fingerprint::common::hex;
use crate::session::SessionId;

/// How long a family and its tokens are kept after `now`.
fn family_life(f: &Family, now: Timestamp) -> Duration {
    f.expires().since(now).max(Duration::from_millis(1))
}

impl SharedStore {
    fn family_key(&self, sid: SessionId) -> String {
        self.keyed("rf:", &sid)
    }

    fn token_key(&self, hash: &TokenHash) -> String {
        self.keyed("rt:", &hex(hash))
    }

    /// Starts session `sid`'s refresh family with `token`.
    pub async fn refresh_start(
        &self,
        sid: SessionId,
        account: &str,
        token: &str,
        now: Timestamp,
        ttl: Duration,
    ) -> Result<(), Unavailable> {
        let hash = digest(token);
        let family = Family::start(account, hash, now, ttl);
        let life = family_life(&family, now).as_millis() as u64;
        let value = serde_json::to_string(&family)?;
        let mut pipe = redis::pipe();
        pipe.atomic();
        pipe.cmd("HSET")
            .arg(self.family_key(sid))
            .arg("v")
            .arg(1)
            .arg("d")
            .arg(value);
        pipe.cmd("PEXPIRE").arg(self.family_key(sid)).arg(life);
        pipe.cmd("SET")
            .arg(self.token_key(&hash))
            .arg(sid.to_string())
            .arg("PX")
            .arg(life);
        pipe.query_async::<()>(&mut self.conn()).await?;
        Ok(())
    }

    /// The session `token` belongs to, if it is known.
    pub async fn refresh_session_of(&self, token: &str) -> Result<Option<SessionId>, Unavailable> {
        let sid: Option<String> = redis::cmd("GET")
            .arg(self.token_key(&digest(token)))
            .query_async(&mut self.conn())
            .await?;
        Ok(sid.and_then(|s| s.parse().ok()))
    }

    /// Exchanges `presented` for `fresh`, as [`crate::auth::refresh::RefreshTokens::rotate`]
    /// does: two instances racing with one token rotate it once, and a
    /// reuse is found once.
    pub async fn refresh_rotate(
        &self,
        presented: &str,
        fresh: &str,
        now: Timestamp,
        windows: (Duration, Duration),
    ) -> Result<RefreshOutcome, Unavailable> {
        let Some(sid) = self.refresh_session_of(presented).await? else {
            return Ok(RefreshOutcome::Unknown);
        };
        let (hash, fresh) = (digest(presented), digest(fresh));
        for _ in 0..MAX_TRIES {
            let read = self.read::<Family>(&self.family_key(sid)).await?;
            let Some(mut family) = read.value else {
                return Ok(RefreshOutcome::Unknown);
            };
            let (outcome, forgotten) = family.rotate(sid, &hash, fresh, now, windows);
            if matches!(
                outcome,
                RefreshOutcome::Unknown | RefreshOutcome::Revoked | RefreshOutcome::Expired
            ) {
                return Ok(outcome);
            }
            let life = family_life(&family, now);
            let write = Write::of(self.family_key(sid), read.version, &family)?.expiring(life);
            if self.write(vec![write]).await? {
                self.after_rotate(sid, &outcome, fresh, forgotten, life)
                    .await?;
                return Ok(outcome);
            }
        }
        Err(contended("the refresh family"))
    }

    /// Indexes the fresh token of an accepted rotation and drops the one
    /// the family forgot.
    async fn after_rotate(
        &self,
        sid: SessionId,
        outcome: &RefreshOutcome,
        fresh: TokenHash,
        forgotten: Option<TokenHash>,
        life: Duration,
    ) -> Result<(), Unavailable> {
        if !outcome.is_accepted() && forgotten.is_none() {
            return Ok(());
        }
        let mut pipe = redis::pipe();
        if outcome.is_accepted() {
            let px = life.as_millis() as u64;
            pipe.cmd("SET")
                .arg(self.token_key(&fresh))
                .arg(sid.to_string())
                .arg("PX")
                .arg(px);
        }
        if let Some(old) = forgotten {
            pipe.cmd("UNLINK").arg(self.token_key(&old));
        }
        pipe.query_async::<()>(&mut self.conn()).await?;
        Ok(())
    }

    /// Revokes session `sid`'s family; whether it had one.
    pub async fn refresh_revoke_session(&self, sid: SessionId) -> Result<bool, Unavailable> {
        for _ in 0..MAX_TRIES {
            let read = self.read::<Family>(&self.family_key(sid)).await?;
            let Some(mut family) = read.value else {
                return Ok(false);
            };
            family.revoke();
            let write = Write::of(self.family_key(sid), read.version, &family)?;
            if self.write(vec![write]).await? {
                return Ok(true);
            }
        }
        Err(contended("the refresh family"))
    }

    /// Revokes the family of `token` and returns its session, if known.
    pub async fn refresh_revoke_token(
        &self,
        token: &str,
    ) -> Result<Option<SessionId>, Unavailable> {
        let Some(sid) = self.refresh_session_of(token).await? else {
            return Ok(None);
        };
        self.refresh_revoke_session(sid).await?;
        Ok(Some(sid))
    }

    /// Whether session `sid` has a family neither revoked nor expired.
    pub async fn refresh_is_live(
        &self,
        sid: SessionId,
        now: Timestamp,
    ) -> Result<bool, Unavailable> {
        let read = self.read::<Family>(&self.family_key(sid)).await?;
        Ok(read.value.is_some_and(|f| f.is_live(now)))
    }

    /// Denies an access token by its `jti` until `exp`.
    pub async fn deny_jti(
        &self,
        jti: &str,
        exp: Timestamp,
        now: Timestamp,
    ) -> Result<(), Unavailable> {
        let px = exp.since(now).as_millis().max(1) as u64;
        redis::cmd("SET")
            .arg(self.keyed("jti:", &jti))
            .arg(1)
            .arg("PX")
            .arg(px)
            .query_async::<()>(&mut self.conn())
            .await?;
        Ok(())
    }

    /// Whether an access token's `jti` was denied.
    pub async fn is_jti_denied(&self, jti: &str) -> Result<bool, Unavailable> {
        let n: u32 = redis::cmd("EXISTS")
            .arg(self.keyed("jti:", &jti))
            .query_async(&mut self.conn())
            .await?;
        Ok(n > 0)
    }

    /// Marks `key` spent for `ttl`: whether no instance spent it before.
    pub async fn spend(&self, key: &str, ttl: Duration) -> Result<bool, Unavailable> {
        let set: Option<String> = redis::cmd("SET")
            .arg(self.keyed("spent:", &key))
            .arg(1)
            .arg("NX")
            .arg("PX")
            .arg(ttl.as_millis() as u64)
            .query_async(&mut self.conn())
            .await?;
        Ok(set.is_some())
    }
}
