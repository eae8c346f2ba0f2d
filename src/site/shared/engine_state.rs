//! The engine's state in the shared store: sessions, account standings
//! and client addresses' login standings, each decided by the pure engine
//! and written back only if no other instance wrote it first.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use super::{MAX_TRIES, SharedStore, Unavailable, Versioned, Write, contended};
use crate::clock::Timestamp;
use crate::context::RequestContext;
use crate::engine::{Decision, Engine, Login, Upkeep, UpkeepAction};
use crate::rules::login::AddressStanding;
use crate::session::{Account, Session, SessionId};
use crate::verdict::Reason;

/// How long Redis keeps a session after the engine would forget it: a
/// late request still learns why its session ended (`IDLE_TIMEOUT`, not
/// `SESSION_UNKNOWN`), as it does from the in-memory store until its
/// once-a-minute sweep.
const KEPT_AFTER_DEATH: Duration = Duration::from_secs(10 * 60);

/// A session and its account's standing, as read.
struct Held {
    session: Versioned<Session>,
    account: Versioned<Account>,
    name: String,
}

impl SharedStore {
    /// The write of session `s`, read at `version`, living until the engine
    /// would forget it.
    fn session_write(
        &self,
        engine: &Engine,
        s: &Session,
        version: u64,
        now: Timestamp,
    ) -> Result<Write, Unavailable> {
        let life = engine.forgotten_at(s).plus(KEPT_AFTER_DEATH).since(now);
        Ok(Write::of(self.session_key(s.id), version, s)?.expiring(life))
    }

    fn session_key(&self, sid: SessionId) -> String {
        self.key(&format!("s:{sid}"))
    }

    fn account_key(&self, name: &str) -> String {
        self.key(&format!("a:{name}"))
    }

    /// The set of an account's session ids, for revoking them all.
    fn index_key(&self, name: &str) -> String {
        self.key(&format!("as:{name}"))
    }

    fn address_key(&self, ip: IpAddr) -> String {
        self.key(&format!("ip:{ip}"))
    }
}

impl SharedStore {
    /// Loads session `sid` and its account's standing, in one round trip.
    async fn hold(&self, sid: SessionId) -> Result<Option<Held>, Unavailable> {
        let mut call = self.load.prepare_invoke();
        call.key(self.session_key(sid)).arg(self.key("a:"));
        let got: Vec<Option<String>> = call.invoke_async(&mut self.conn()).await?;
        let [v, d, name, av, ad] = <[Option<String>; 5]>::try_from(got).unwrap_or_default();
        let Some(name) = name else {
            return Ok(None);
        };
        Ok(Some(Held {
            session: Versioned::read(v, d)?,
            account: Versioned::read(av, ad)?,
            name,
        }))
    }

    /// Decides on session `sid` with `decide`, writing back what changed,
    /// until no other instance wrote in between.
    async fn on_session(
        &self,
        engine: &Engine,
        sid: SessionId,
        mut decide: impl FnMut(Option<(&mut Session, &mut Account)>) -> Decision,
    ) -> Result<Decision, Unavailable> {
        for _ in 0..MAX_TRIES {
            let Some(held) = self.hold(sid).await? else {
                return Ok(decide(None));
            };
            let Held {
                session,
                account,
                name,
            } = held;
            let Some(mut s) = session.value else {
                return Ok(decide(None));
            };
            let before = account.value.clone().unwrap_or_default();
            let mut acct = before.clone();
            let d = decide(Some((&mut s, &mut acct)));
            let mut writes = vec![self.session_write(engine, &s, session.version, d.at)?];
            if acct != before {
                writes.push(Write::of(self.account_key(&name), account.version, &acct)?);
            }
            if self.write(&writes).await? {
                return Ok(d);
            }
        }
        Err(contended("the session"))
    }

    /// [`Engine::decide`] on the shared store.
    pub async fn decide(
        &self,
        engine: &Engine,
        sid: SessionId,
        ctx: Arc<RequestContext>,
        now: Timestamp,
    ) -> Result<Decision, Unavailable> {
        self.on_session(engine, sid, |held| {
            engine.decide_held(sid, held, Arc::clone(&ctx), now)
        })
        .await
    }

    /// [`Engine::revoke`] on the shared store.
    pub async fn revoke(
        &self,
        engine: &Engine,
        sid: SessionId,
        reason: Reason,
        now: Timestamp,
    ) -> Result<Decision, Unavailable> {
        self.on_session(engine, sid, |held| {
            engine.revoke_held(sid, held, reason, now)
        })
        .await
    }

    /// [`Engine::release`] on the shared store.
    pub async fn release(
        &self,
        engine: &Engine,
        sid: SessionId,
        now: Timestamp,
    ) -> Result<Decision, Unavailable> {
        self.on_session(engine, sid, |held| {
            engine.release_held(sid, held.map(|(s, _)| s), now)
        })
        .await
    }

    /// [`Engine::login`] on the shared store. The store has no session
    /// limit of its own: Redis's `maxmemory` is the one to set.
    pub async fn login(
        &self,
        engine: &Engine,
        sid: SessionId,
        account: &str,
        ctx: Arc<RequestContext>,
        companions: Vec<(String, String)>,
        now: Timestamp,
    ) -> Result<Decision, Unavailable> {
        let standing: Versioned<Account> = self.read(&self.account_key(account)).await?;
        let banned = standing.value.is_some_and(|a| a.is_banned(now));
        let name = engine.intern(account);
        let login = Login {
            sid,
            name,
            banned,
            room: true,
            companions,
        };
        let (d, session) = engine.login_held(login, Arc::default(), ctx, now);
        let Some(session) = session else {
            return Ok(d);
        };
        let mut write = self.session_write(engine, &session, 0, now)?;
        write.account = Some(account.to_owned());
        let life = write.ttl;
        if !self.write(&[write]).await? {
            return Err(Unavailable(format!("session {sid} already exists")));
        }
        let index = self.index_key(account);
        let mut pipe = redis::pipe();
        pipe.sadd(&index, sid.to_string()).ignore();
        if let Some(life) = life {
            pipe.pexpire(&index, life.as_millis() as i64).ignore();
        }
        pipe.query_async::<()>(&mut self.conn()).await?;
        Ok(d)
    }

    /// [`Engine::admit_login`] on the shared store.
    pub async fn admit_login(
        &self,
        engine: &Engine,
        sid: SessionId,
        account: Option<&str>,
        ctx: Arc<RequestContext>,
        now: Timestamp,
    ) -> Result<Decision, Unavailable> {
        let akey = account.map(|a| self.account_key(a));
        let ikey = ctx.ip.map(|ip| self.address_key(ip));
        for _ in 0..MAX_TRIES {
            let acct = self.read_opt::<Account>(akey.as_deref()).await?;
            let ip = self.read_opt::<AddressStanding>(ikey.as_deref()).await?;
            let mut a = acct.as_ref().map(|r| r.value.clone().unwrap_or_default());
            let mut st = ip.as_ref().map(|r| r.value.unwrap_or_default());
            let name = account.map(|n| engine.intern(n));
            let held = (a.as_mut(), st.as_mut());
            let d = engine.admit_login_held(sid, name, held, Arc::clone(&ctx), now);
            let mut writes = Vec::new();
            if let (Some(key), Some(r), Some(a)) = (&akey, &acct, &a)
                && r.value.as_ref() != Some(a)
            {
                writes.push(Write::of(key.clone(), r.version, a)?);
            }
            if let (Some(key), Some(r), Some(st)) = (&ikey, &ip, st)
                && r.value != Some(st)
            {
                let w = Write::of(key.clone(), r.version, &st)?;
                writes.push(w.expiring(address_life(&st, now)));
            }
            if self.write(&writes).await? {
                return Ok(d);
            }
        }
        Err(contended("the login standing"))
    }

    async fn read_opt<T: serde::de::DeserializeOwned>(
        &self,
        key: Option<&str>,
    ) -> Result<Option<Versioned<T>>, Unavailable> {
        match key {
            Some(k) => Ok(Some(self.read(k).await?)),
            None => Ok(None),
        }
    }

    /// [`Engine::revoke_account`] on the shared store.
    pub async fn revoke_account(
        &self,
        engine: &Engine,
        account: &str,
        reason: Reason,
        now: Timestamp,
    ) -> Result<Vec<Decision>, Unavailable> {
        let ids: Vec<String> = redis::cmd("SMEMBERS")
            .arg(self.index_key(account))
            .query_async(&mut self.conn())
            .await?;
        let mut out = Vec::new();
        for sid in ids.iter().filter_map(|s| s.parse::<SessionId>().ok()) {
            let d = self.revoke(engine, sid, reason, now).await?;
            if !d.on_dead_session && d.account.is_some() {
                out.push(d);
            }
        }
        Ok(out)
    }

    /// Every session the store holds.
    pub async fn sessions(&self) -> Result<Vec<Session>, Unavailable> {
        let mut out = Vec::new();
        for key in self.scan("s:*").await? {
            if let Some(s) = self.read::<Session>(&key).await?.value {
                out.push(s);
            }
        }
        Ok(out)
    }

    /// One session, if the store holds it.
    pub async fn session(&self, sid: SessionId) -> Result<Option<Session>, Unavailable> {
        Ok(self.read::<Session>(&self.session_key(sid)).await?.value)
    }

    /// Every account standing the store holds, by name.
    pub async fn accounts(&self) -> Result<Vec<(String, Account)>, Unavailable> {
        let mut out = Vec::new();
        for key in self.scan("a:*").await? {
            let name = key.strip_prefix(&self.key("a:")).unwrap_or(&key);
            if let Some(a) = self.read::<Account>(&key).await?.value {
                out.push((name.to_owned(), a));
            }
        }
        Ok(out)
    }

    /// Sessions held, live and dead.
    pub async fn session_count(&self) -> Result<usize, Unavailable> {
        Ok(self.scan("s:*").await?.len())
    }

    /// Forgets every session, standing, refresh family and token of the
    /// run, as a restart of a target without a shared store would: the
    /// keys stay.
    pub async fn reset(&self, engine: &Engine, now: Timestamp) -> Result<Upkeep, Unavailable> {
        let sessions = self.scan("s:*").await?;
        let removed = sessions.len();
        let mut doomed = sessions;
        for pattern in ["a:*", "as:*", "ip:*", "rf:*", "rt:*", "jti:*", "spent:*"] {
            doomed.extend(self.scan(pattern).await?);
        }
        self.unlink(&doomed).await?;
        Ok(engine.upkeep_record(UpkeepAction::Reset, now, removed))
    }
}

/// How long an address's login standing matters after `now`.
fn address_life(st: &AddressStanding, now: Timestamp) -> Duration {
    let tat = Timestamp::from_millis(st.tat_us / 1000 + 1);
    let until = st.banned_until.map_or(tat, |b| b.max(tat));
    until.since(now).max(Duration::from_millis(1))
}
