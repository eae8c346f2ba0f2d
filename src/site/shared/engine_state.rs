//! The engine's state in the shared store: sessions, account standings
//! and client addresses' login standings, each decided by the pure engine
//! and written back only if no other instance wrote it first.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use super::batch::{Op, Turn};
use super::{MAX_TRIES, SharedStore, Unavailable, Versioned, Write, contended, text, version_of};
use crate::clock::Timestamp;
use crate::context::RequestContext;
use crate::engine::{Decision, Engine, Login, Upkeep, UpkeepAction};
use crate::rules::login::AddressStanding;
use crate::session::{Account, Live, Session, SessionId};
use crate::verdict::Reason;

/// How long Redis keeps a session after the engine would forget it: a
/// late request still learns why its session ended (`IDLE_TIMEOUT`, not
/// `SESSION_UNKNOWN`), as it does from the in-memory store until its
/// once-a-minute sweep.
const KEPT_AFTER_DEATH: Duration = Duration::from_secs(10 * 60);

/// How much longer than it needs a session's key is kept when its expiry
/// is set: every request moves the moment the engine would forget the
/// session, and with this slack most writes leave the key's expiry alone
/// (one `PEXPIRE` a minute for a busy session, not one per request).
const EXPIRY_SLACK: Duration = Duration::from_secs(60);

/// What the keys of sessions' records start with after the namespace. The
/// live state has no field names (see [`Live`]): a change to its fields
/// takes a new prefix, so that records of the old layout read as unknown
/// sessions, whose clients log in again, rather than as `503`s. `s:` held
/// the JSON layout.
const SESSIONS: &str = "s2:";

/// Sessions whose last write an instance remembers; past it, it forgets
/// them all and reads each once more.
const CACHED_SESSIONS: usize = 65_536;

/// A session and its account's standing, as read.
#[derive(Clone, Debug)]
pub(super) struct Held {
    session: Versioned<Session>,
    account: Versioned<Account>,
    keys: Keys,
    /// Until when this instance last set the session's key to live
    /// ([`Timestamp::EPOCH`]: not known, as when read).
    kept: Timestamp,
}

/// Where a session and its account's standing are kept, formatted once
/// when read and kept with them.
#[derive(Clone, Debug)]
struct Keys {
    /// The session's hash.
    session: Arc<str>,
    /// Its account's standing.
    account: Arc<str>,
}

impl SharedStore {
    /// The write of session `s`, read at `version`, living until the engine
    /// would forget it, and until when its key then lives. A key `kept`
    /// long enough already is left as it is; one that is not is set to
    /// live [`EXPIRY_SLACK`] longer than it needs. Every expiry set is
    /// later than the last (a session is forgotten later the later it was
    /// seen), so what an instance set itself is a floor.
    fn session_write(
        engine: &Engine,
        s: &Session,
        key: Arc<str>,
        (version, kept): (u64, Timestamp),
        now: Timestamp,
    ) -> Result<(Write, Timestamp), Unavailable> {
        let needed = engine.forgotten_at(s).plus(KEPT_AFTER_DEATH);
        // Room for a session seen from a few addresses, in one allocation.
        let live = postcard::to_extend(&s.live(), Vec::with_capacity(256))?;
        let write = Write::bytes(key, version, live);
        if kept >= needed {
            return Ok((write, kept));
        }
        let until = needed.plus(EXPIRY_SLACK);
        Ok((write.expiring(until.since(now)), until))
    }

    fn session_key(&self, sid: SessionId) -> String {
        self.keyed(SESSIONS, &sid)
    }

    fn account_key(&self, name: &str) -> String {
        self.keyed("a:", &name)
    }

    /// The set of an account's session ids, for revoking them all.
    fn index_key(&self, name: &str) -> String {
        self.keyed("as:", &name)
    }

    fn address_key(&self, ip: IpAddr) -> String {
        self.keyed("ip:", &ip)
    }
}

impl SharedStore {
    /// Loads session `sid` and its account's standing, in one round trip.
    async fn hold(&self, sid: SessionId) -> Result<Option<Held>, Unavailable> {
        let mut call = self.load.prepare_invoke();
        let session_key = self.session_key(sid);
        call.key(&session_key).arg(self.key("a:"));
        let got: Vec<Option<Vec<u8>>> = call.invoke_async(&mut self.conn()).await?;
        let [v, d, b, name, av, ad] = <[Option<Vec<u8>>; 6]>::try_from(got).unwrap_or_default();
        let Some(name) = text(name).map_err(|e| unreadable(sid, &e))? else {
            return Ok(None);
        };
        let keys = Keys {
            session: session_key.into(),
            account: self.account_key(&name).into(),
        };
        Ok(Some(Held {
            session: session_of(sid, [v, d, b, Some(name.into_bytes())])?,
            account: Versioned::read(text(av)?, text(ad)?)?,
            keys,
            kept: Timestamp::EPOCH,
        }))
    }

    /// The fields of one session's record, read alone (for listings).
    async fn session_fields(&self, sid: SessionId) -> Result<[Option<Vec<u8>>; 4], Unavailable> {
        let mut conn = self.conn();
        let (v, d, b, a) = redis::cmd("HMGET")
            .arg(self.session_key(sid))
            .arg("v")
            .arg("d")
            .arg("b")
            .arg("a")
            .query_async(&mut conn)
            .await?;
        Ok([v, d, b, a])
    }

    /// Decides `op` on session `sid`, in a batch with this instance's
    /// other requests on it (see [`super::batch`]).
    async fn on_session(
        &self,
        engine: &Engine,
        sid: SessionId,
        op: Op,
    ) -> Result<Decision, Unavailable> {
        let (lead, own) = match self.queues.join(sid, op) {
            Ok(led) => led,
            Err(turn) => match turn.await {
                Ok(Turn::Done(decided)) => return decided,
                Ok(Turn::Lead(op)) => (self.queues.lead(sid), op),
                Err(_) => {
                    return Err(Unavailable(
                        "the request deciding this one went away".into(),
                    ));
                }
            },
        };
        let (ops, waiters) = self.queues.take(sid, own);
        let decided = self.decide_batch(engine, sid, &ops).await;
        drop(lead);
        match decided {
            Ok(ds) => {
                let mut ds = ds.into_iter();
                let own = ds.next();
                for (tx, d) in waiters.into_iter().zip(ds) {
                    let _ = tx.send(Turn::Done(Ok(d)));
                }
                own.ok_or_else(|| Unavailable("a batch lost its own decision".into()))
            }
            Err(e) => {
                for tx in waiters {
                    let _ = tx.send(Turn::Done(Err(e.clone())));
                }
                Err(e)
            }
        }
    }

    /// Decides `ops` in order on one read of `sid`'s records (this
    /// instance's last write of them when it has it) and writes the
    /// result back, until no other instance wrote in between.
    async fn decide_batch(
        &self,
        engine: &Engine,
        sid: SessionId,
        ops: &[Op],
    ) -> Result<Vec<Decision>, Unavailable> {
        let mut known = self.cache.lock().remove(&sid);
        for _ in 0..MAX_TRIES {
            let cached = known.is_some();
            let held = match known.take() {
                Some(h) => Some(h),
                None => self.hold(sid).await?,
            };
            let unknown = || ops.iter().map(|op| op.apply(engine, sid, None)).collect();
            let Some(Held {
                session,
                account,
                keys,
                kept,
            }) = held
            else {
                return Ok(unknown());
            };
            let Some(mut s) = session.value else {
                return Ok(unknown());
            };
            let before = account.value.unwrap_or_default();
            let mut acct = before.clone();
            let ds: Vec<Decision> = ops
                .iter()
                .map(|op| op.apply(engine, sid, Some((&mut s, &mut acct))))
                .collect();
            if unchanged(ops, &ds) {
                // A dead session stays dead: its verdict needs no write.
                let held = Held {
                    session: Versioned {
                        version: session.version,
                        value: Some(s),
                    },
                    account: Versioned {
                        version: account.version,
                        value: Some(acct),
                    },
                    keys,
                    kept,
                };
                if !cached || self.still_there(&held).await? {
                    self.remember(sid, held);
                    return Ok(ds);
                }
                continue;
            }
            let at = ds.last().map_or(Timestamp::EPOCH, |d| d.at);
            let read = (session.version, account.version, keys, kept);
            if self.commit(engine, s, (before, acct), read, at).await? {
                return Ok(ds);
            }
        }
        Err(contended("the session"))
    }

    /// Writes session `s` and its account's standing (`(before, after)`
    /// the batch) back, if neither moved since they were read at the
    /// versions of `read`; remembers what it wrote. `false` if one moved.
    async fn commit(
        &self,
        engine: &Engine,
        s: Session,
        (before, acct): (Account, Account),
        (session_v, account_v, keys, kept): (u64, u64, Keys, Timestamp),
        at: Timestamp,
    ) -> Result<bool, Unavailable> {
        let (sid, changed) = (s.id, acct != before);
        let akey = Arc::clone(&keys.account);
        let account_write = match changed {
            true => Write::of(akey, account_v, &acct)?,
            false => Write::guard(akey, account_v),
        };
        let skey = Arc::clone(&keys.session);
        let (session_write, kept) = Self::session_write(engine, &s, skey, (session_v, kept), at)?;
        let writes = vec![session_write, account_write];
        if !self.write(writes).await? {
            return Ok(false);
        }
        let account = Versioned {
            version: account_v + u64::from(changed),
            value: Some(acct),
        };
        let session = Versioned {
            version: session_v + 1,
            value: Some(s),
        };
        self.remember(
            sid,
            Held {
                session,
                account,
                keys,
                kept,
            },
        );
        Ok(true)
    }

    /// Whether a session this instance remembers is still in the store as
    /// it left it: a dead one is answered without a write, and a reset or
    /// its key's expiry may have removed it since (the answer is then
    /// `SESSION_UNKNOWN`, as from every other instance).
    async fn still_there(&self, held: &Held) -> Result<bool, Unavailable> {
        let key = Arc::clone(&held.keys.session);
        self.write(vec![Write::guard(key, held.session.version)])
            .await
    }

    /// Keeps `held` as this instance's last write of `sid`'s records.
    fn remember(&self, sid: SessionId, held: Held) {
        let mut cache = self.cache.lock();
        if cache.len() >= CACHED_SESSIONS {
            cache.clear();
        }
        cache.insert(sid, held);
    }

    /// [`Engine::decide`] on the shared store.
    pub async fn decide(
        &self,
        engine: &Engine,
        sid: SessionId,
        ctx: Arc<RequestContext>,
        now: Timestamp,
    ) -> Result<Decision, Unavailable> {
        self.on_session(engine, sid, Op::Decide(ctx, now)).await
    }

    /// [`Engine::revoke`] on the shared store.
    pub async fn revoke(
        &self,
        engine: &Engine,
        sid: SessionId,
        reason: Reason,
        now: Timestamp,
    ) -> Result<Decision, Unavailable> {
        self.on_session(engine, sid, Op::Revoke(reason, now)).await
    }

    /// [`Engine::release`] on the shared store.
    pub async fn release(
        &self,
        engine: &Engine,
        sid: SessionId,
        now: Timestamp,
    ) -> Result<Decision, Unavailable> {
        self.on_session(engine, sid, Op::Release(now)).await
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
        let key = self.session_key(sid).into();
        let (mut write, _) =
            Self::session_write(engine, &session, key, (0, Timestamp::EPOCH), now)?;
        let birth = serde_json::to_string(&session.birth)?;
        write.born = Some(format!("{birth}\0{account}"));
        if !self.write(vec![write]).await? {
            return Err(Unavailable(format!("session {sid} already exists")));
        }
        // The index outlives every session in it, however busy: each was
        // born at the latest now, and none outlives its absolute TTL.
        let index = self.index_key(account);
        let last = engine
            .forgotten_by(now)
            .plus(KEPT_AFTER_DEATH + EXPIRY_SLACK);
        let mut pipe = redis::pipe();
        pipe.sadd(&index, sid.to_string()).ignore();
        pipe.pexpire(&index, last.since(now).as_millis() as i64)
            .ignore();
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
            // Both at once: the connection pipelines them.
            let (acct, ip) = tokio::try_join!(
                self.read_opt::<Account>(akey.as_deref()),
                self.read_opt::<AddressStanding>(ikey.as_deref()),
            )?;
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
            if self.write(writes).await? {
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

    /// [`Engine::revoke_account`] on the shared store: the revocations
    /// made, and the first session it could not revoke, if any. A session
    /// whose record cannot be read or written does not stop the others
    /// from being revoked, and what was revoked is returned either way.
    pub async fn revoke_account(
        &self,
        engine: &Engine,
        account: &str,
        reason: Reason,
        now: Timestamp,
    ) -> (Vec<Decision>, Result<(), Unavailable>) {
        let ids: Vec<String> = match redis::cmd("SMEMBERS")
            .arg(self.index_key(account))
            .query_async(&mut self.conn())
            .await
        {
            Ok(ids) => ids,
            Err(e) => return (Vec::new(), Err(e.into())),
        };
        let (mut out, mut gone, mut failed) = (Vec::new(), Vec::new(), Ok(()));
        for sid in ids.iter().filter_map(|s| s.parse::<SessionId>().ok()) {
            match self.revoke(engine, sid, reason, now).await {
                Ok(d) if d.account.is_none() => gone.push(sid.to_string()),
                Ok(d) if !d.on_dead_session => out.push(d),
                Ok(_) => {}
                Err(e) => failed = failed.and(Err(e)),
            }
        }
        // Sessions Redis forgot leave the index here.
        if !gone.is_empty() {
            let mut conn = self.conn();
            let forgot = redis::cmd("SREM")
                .arg(self.index_key(account))
                .arg(&gone)
                .query_async::<()>(&mut conn)
                .await;
            failed = failed.and(forgot.map_err(Unavailable::from));
        }
        (out, failed)
    }

    /// Every session the store holds that reads back. A record that does
    /// not is left out: one hand-edited record must not hide the others
    /// (it is refused with `503` when used, and [`Self::session`] names
    /// what is wrong with it).
    pub async fn sessions(&self) -> Result<Vec<Session>, Unavailable> {
        let mut out = Vec::new();
        let prefix = self.key(SESSIONS);
        for key in self.scan(&format!("{SESSIONS}*")).await? {
            let hex = key.strip_prefix(&prefix).unwrap_or_default();
            let Ok(sid) = hex.parse::<SessionId>() else {
                continue;
            };
            let fields = self.session_fields(sid).await?;
            if let Ok(Versioned { value: Some(s), .. }) = session_of(sid, fields) {
                out.push(s);
            }
        }
        Ok(out)
    }

    /// One session, if the store holds it.
    pub async fn session(&self, sid: SessionId) -> Result<Option<Session>, Unavailable> {
        Ok(session_of(sid, self.session_fields(sid).await?)?.value)
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
        Ok(self.scan(&format!("{SESSIONS}*")).await?.len())
    }

    /// Forgets every session, standing, refresh family and token of the
    /// run, as a restart of a target without a shared store would: the
    /// keys stay.
    pub async fn reset(&self, engine: &Engine, now: Timestamp) -> Result<Upkeep, Unavailable> {
        let sessions = self.scan(&format!("{SESSIONS}*")).await?;
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

/// Whether deciding `ops` changed nothing: every request and revocation
/// met a session already dead, which repeats its verdict and is left as
/// it was (a release may still lower the in-flight count).
fn unchanged(ops: &[Op], ds: &[Decision]) -> bool {
    let no_release = ops.iter().all(|op| !matches!(op, Op::Release(_)));
    no_release && ds.iter().all(|d| d.on_dead_session)
}

/// Session `sid`'s record from the fields of its hash: its version, live
/// state, birth context and account. A record that is not that session's
/// (another session's live state or account, bytes past its end) is an
/// error naming the session, never another session.
fn session_of(
    sid: SessionId,
    fields: [Option<Vec<u8>>; 4],
) -> Result<Versioned<Session>, Unavailable> {
    read_session(sid, fields).map_err(|e| unreadable(sid, &e))
}

/// What went wrong reading session `sid`'s record, naming it.
fn unreadable(sid: SessionId, e: &Unavailable) -> Unavailable {
    Unavailable(format!(
        "the record of session {sid} does not read back: {}",
        e.0
    ))
}

/// [`session_of`], its errors not yet naming the session.
fn read_session(
    sid: SessionId,
    [v, d, b, a]: [Option<Vec<u8>>; 4],
) -> Result<Versioned<Session>, Unavailable> {
    let version = version_of(text(v)?.as_deref())?;
    let (Some(d), Some(b)) = (d, b) else {
        return Ok(Versioned {
            version,
            value: None,
        });
    };
    let (live, rest) = postcard::take_from_bytes::<Live>(&d)?;
    let account = text(a)?;
    if !rest.is_empty() || live.id() != sid || account.as_deref() != Some(live.account()) {
        return Err(Unavailable("it holds another session's state".into()));
    }
    let birth = serde_json::from_slice(&b)?;
    Ok(Versioned {
        version,
        value: Some(Session::from_parts(live, birth)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::EngineConfig;
    use crate::network::NetworkInfo;

    /// A session written as its live state and birth context reads back
    /// whole: cadence ring, sightings and all. Returns the engine, the
    /// session's id and its live state as written.
    fn written() -> (Engine, SessionId, Vec<u8>) {
        let mut config = EngineConfig::default();
        config.robotic_cadence.action = crate::verdict::Action::Log;
        let engine = Engine::new(config).expect("valid rules");
        let ctx = |ip: &str| {
            let headers = [("user-agent", "curl/8"), ("accept-language", "fr")];
            RequestContext::from_headers(ip.parse().ok(), NetworkInfo::unknown(), headers)
        };
        let sid = SessionId::from_u128(9);
        let at = |ms| Timestamp::from_millis(ms);
        let companions = vec![("_sr_aid".to_owned(), "a1".to_owned())];
        engine.login(sid, "alice", ctx("127.0.1.9"), companions, at(1_000));
        for (i, ip) in ["127.0.1.9", "127.0.1.10", "127.0.1.9"].iter().enumerate() {
            engine.decide(sid, ctx(ip), at(2_000 + 100 * i as u64));
        }
        let s = engine.session(sid).expect("the session");
        let live = postcard::to_allocvec(&s.live()).expect("live state");
        let birth = serde_json::to_vec(&s.birth).expect("birth");
        let fields = |live: &[u8], account: &str| {
            let (v, d) = (b"3".to_vec(), live.to_vec());
            [Some(v), Some(d), Some(birth.clone()), Some(account.into())]
        };
        let back = session_of(sid, fields(&live, "alice")).expect("reads back");
        assert_eq!(back.version, 3);
        let back = back.value.expect("a session");
        let json = |s: &Session| serde_json::to_value(s).expect("json");
        assert_eq!(json(&back), json(&s));
        assert!(back.recent.is_some(), "the cadence ring is kept");
        assert_eq!(back.sightings.len(), 2);
        (engine, sid, live)
    }

    /// A session written as its live state and birth context reads back
    /// whole (see [`written`]).
    #[test]
    fn a_session_reads_back_from_its_live_state_and_birth() {
        written();
    }

    /// A record that does not read back as the session of its key is an
    /// error, never a session: cut short, with bytes past its end, filed
    /// under another session's key or account, or with a cadence ring
    /// whose cursor points outside it (which indexed out of bounds).
    #[test]
    fn a_record_that_is_not_its_keys_session_is_an_error() {
        let (engine, sid, live) = written();
        let s = engine.session(sid).expect("the session");
        let birth = serde_json::to_vec(&s.birth).expect("birth");
        let fields = |live: Vec<u8>, account: &str| {
            [
                Some(b"3".to_vec()),
                Some(live),
                Some(birth.clone()),
                Some(account.into()),
            ]
        };
        let read = |sid, live, account| session_of(sid, fields(live, account));
        assert!(read(sid, live.clone(), "alice").is_ok());
        let cut = live[..live.len() - 1].to_vec();
        assert!(read(sid, cut, "alice").is_err(), "cut short");
        let mut longer = live.clone();
        longer.push(0);
        assert!(read(sid, longer, "alice").is_err(), "bytes past its end");
        let other = SessionId::from_u128(10);
        assert!(read(other, live.clone(), "alice").is_err(), "another key");
        assert!(read(sid, live.clone(), "bob").is_err(), "another account");
        // The ring is the last field: its length, then its cursor.
        let mut cursor = live.clone();
        *cursor.last_mut().expect("a byte") = 200;
        assert!(
            read(sid, cursor, "alice").is_err(),
            "a cursor out of the ring"
        );
        let mut len = live;
        let at = len.len() - 2;
        len[at] = 200;
        assert!(read(sid, len, "alice").is_err(), "a length past the ring");
    }
}
