//! The engine: applies the rules to every request and keeps session and account state.
//!
//! It is synchronous and does no I/O. Every method takes `now`; the shell
//! reads the clock once per request. Every call returns one [`Decision`],
//! a serializable event that carries everything needed to replay it.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

use crate::clock::{Timestamp, millis};
use crate::config::{EngineConfig, StoreConfig};
use crate::context::{BirthContext, RequestContext};
use crate::intern::Interner;
use crate::rules::login::{ADDRESSES_PER_SHARD, AddressStanding};
use crate::rules::{self, lifetime, login};
use crate::session::{Account, Session, SessionId, SessionState};
use crate::store::{Map, Shards};
use crate::verdict::{Action, Evidence, Firing, Reason, RuleName, Verdict};

mod replay;

pub use replay::{Entry, Upkeep, UpkeepAction, replay, replay_entries};

/// What kind of call produced a decision.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum DecisionKind {
    /// A login that creates the session.
    Login {
        /// The companion cookies the target set for this client.
        companions: Vec<(String, String)>,
    },
    /// A login attempt judged by the login velocity rules before its
    /// credentials are checked; `session` is the id a login would use.
    LoginGate,
    /// A request presenting the session.
    Request,
    /// The end of an allowed request (tracked for the in-flight rule).
    Release,
    /// An explicit revocation: logout, token reuse, an operator's order.
    Revoke {
        /// Why the session was revoked.
        cause: Reason,
    },
}

/// One decision event: what was decided, when, on what evidence.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Decision {
    /// Order of the decision within this engine; replay follows it.
    pub seq: u64,
    /// When it was made.
    pub at: Timestamp,
    /// What produced it.
    #[serde(flatten)]
    pub kind: DecisionKind,
    /// The session.
    pub session: SessionId,
    /// The session's account, when the session is known.
    pub account: Option<Arc<str>>,
    /// The request's context, for logins and requests. In the trace it is
    /// left out when `context_of` is set; trace readers put it back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<Arc<RequestContext>>,
    /// The `seq` of an earlier decision in the same trace whose context
    /// this request repeats exactly: a client that sends the same headers
    /// over one connection costs one context line, not one per request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context_of: Option<u64>,
    /// Every rule that fired, with the values it measured.
    pub fired: Vec<Firing>,
    /// The verdict.
    #[serde(flatten)]
    pub verdict: Verdict,
    /// Whether the session was already dead before this decision.
    pub on_dead_session: bool,
}

/// A session risk engine. Share it behind an `Arc`; every method takes `&self`.
///
/// ```
/// use sessionrange::{Engine, EngineConfig, NetworkInfo, RequestContext, SessionId, Timestamp, Verdict, Reason};
///
/// let engine = Engine::new(EngineConfig::default()).expect("valid config");
/// let ua = |s: &str| RequestContext::from_headers("127.0.1.9".parse().ok(), NetworkInfo::unknown(), [("user-agent", s)]);
/// let sid = SessionId::from_u128(7);
/// let now = Timestamp::from_secs(1_000);
/// engine.login(sid, "alice", ua("curl/8"), vec![], now);
/// assert_eq!(engine.decide(sid, ua("curl/8"), now).verdict, Verdict::Allow);
/// assert_eq!(engine.decide(sid, ua("python"), now).verdict, Verdict::Revoke(Reason::UserAgentDrift));
/// ```
#[derive(Debug)]
pub struct Engine {
    config: EngineConfig,
    sessions: Shards<SessionId, Box<Session>>,
    accounts: Shards<Arc<str>, Arc<Mutex<Account>>>,
    addresses: Shards<IpAddr, AddressStanding>,
    interner: Interner,
    seq: Arc<AtomicU64>,
}

impl Engine {
    /// An engine with these rules, after validating them.
    pub fn new(config: EngineConfig) -> crate::Result<Self> {
        config.validate("rules")?;
        Ok(Self {
            sessions: Shards::new(session_shards(&config.store)),
            accounts: Shards::new(config.store.shards),
            addresses: Shards::new(config.store.shards),
            interner: Interner::new(65_536),
            seq: Arc::new(AtomicU64::new(0)),
            config,
        })
    }

    /// The rules in force.
    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    /// The shared standing of account `name`, created on first use.
    fn standing(&self, name: &Arc<str>) -> Arc<Mutex<Account>> {
        let mut accounts = self.accounts.shard(&**name);
        Arc::clone(accounts.entry(name.clone()).or_default())
    }

    /// The one shared copy of `name`.
    pub(crate) fn intern(&self, name: &str) -> Arc<str> {
        self.interner.intern(name)
    }

    /// Numbers decisions from `other`'s sequence from now on: engines of
    /// one run that write one trace never give two decisions one number.
    pub(crate) fn share_sequence(&mut self, other: &Engine) {
        self.seq = Arc::clone(&other.seq);
    }

    fn next_seq(&self) -> u64 {
        self.seq.fetch_add(1, Ordering::Relaxed)
    }

    /// Logs `account` in with session id `sid`, recording the birth context.
    ///
    /// A banned account gets [`Verdict::Ban`] with `ACCOUNT_BANNED` and no
    /// session. When the session's shard of the store is full of live
    /// sessions (after forgetting those past their TTLs and dead ones) the
    /// login gets `challenge(SESSION_STORE_FULL)` and no session: a live
    /// session is never evicted. Lock order everywhere: session shard,
    /// then account shard.
    pub fn login(
        &self,
        sid: SessionId,
        account: &str,
        ctx: impl Into<Arc<RequestContext>>,
        companions: Vec<(String, String)>,
        now: Timestamp,
    ) -> Decision {
        let name = self.interner.intern(account);
        let mut shard = self.sessions.shard(&sid);
        let standing = self.standing(&name);
        let banned = standing.lock().is_banned(now);
        let room = banned || self.make_room(&mut shard, sid, now);
        let login = Login {
            sid,
            name,
            banned,
            room,
            companions,
        };
        let (d, session) = self.login_held(login, standing, ctx.into(), now);
        if let Some(session) = session {
            shard.insert(sid, Box::new(session));
        }
        d
    }

    /// Whether `shard` has room for session `sid`, after forgetting what
    /// may be forgotten when it is full.
    fn make_room(
        &self,
        shard: &mut Map<SessionId, Box<Session>>,
        sid: SessionId,
        now: Timestamp,
    ) -> bool {
        let full = |s: &Map<SessionId, Box<Session>>| {
            s.len() >= self.shard_capacity() && !s.contains_key(&sid)
        };
        if full(shard) {
            self.evict(shard, now);
        }
        !full(shard)
    }

    /// Decides a login whose account standing and room the caller looked
    /// up: the new session, if one is born, is the caller's to keep.
    /// `standing` is what the session will point at for its account.
    pub(crate) fn login_held(
        &self,
        login: Login,
        standing: Arc<Mutex<Account>>,
        ctx: Arc<RequestContext>,
        now: Timestamp,
    ) -> (Decision, Option<Session>) {
        let Login {
            sid,
            name,
            banned,
            room,
            companions,
        } = login;
        let (verdict, session) = if banned {
            (Verdict::Ban(Reason::AccountBanned), None)
        } else if !room {
            (Verdict::Challenge(Reason::SessionStoreFull), None)
        } else {
            let birth = BirthContext::capture(&ctx, &companions, &self.interner);
            let session = Session::new(sid, name.clone(), standing, birth, now);
            (Verdict::Allow, Some(session))
        };
        let mut d = self.event(
            self.next_seq(),
            now,
            DecisionKind::Login { companions },
            sid,
            Some(name),
            verdict,
        );
        d.context = Some(ctx);
        (d, session)
    }

    /// Judges a login attempt by the login velocity rules, before its
    /// credentials are checked and before any session exists: per client
    /// address (`ctx.ip`) and per account (`account`, when the name is one
    /// the target knows; `None` leaves the account rule out, so that made-up
    /// names cannot grow the engine's state).
    ///
    /// `allow` admits the attempt and counts it against both limits;
    /// `challenge(LOGIN_VELOCITY_EXCEEDED)` refuses it; `ban(...)` refuses
    /// it and bans the account, or every login from the address, for the
    /// rule's `ban_ttl`. A refused attempt counts against neither limit.
    /// `sid` is the id the login would give its session.
    pub fn admit_login(
        &self,
        sid: SessionId,
        account: Option<&str>,
        ctx: impl Into<Arc<RequestContext>>,
        now: Timestamp,
    ) -> Decision {
        let ctx = ctx.into();
        let name = account.map(|a| self.interner.intern(a));
        let standing = name.as_ref().map(|n| self.standing(n));
        let mut address = ctx.ip.map(|ip| (ip, self.addresses.shard(&ip)));
        let mut acct = standing.as_deref().map(Mutex::lock);
        let mut ip_state = address
            .as_ref()
            .map(|(ip, m)| m.get(ip).copied().unwrap_or_default());
        let held = (acct.as_deref_mut(), ip_state.as_mut());
        let d = self.admit_login_held(sid, name, held, ctx, now);
        if let (Some((ip, shard)), Some(st)) = (address.as_mut(), ip_state) {
            remember_address(shard, *ip, st, now);
        }
        d
    }

    /// Judges a login attempt on standings the caller looked up and will
    /// keep: the account's (when known) and the client address's (when
    /// the context has one). Both are updated in place.
    pub(crate) fn admit_login_held(
        &self,
        sid: SessionId,
        name: Option<Arc<str>>,
        held: (Option<&mut Account>, Option<&mut AddressStanding>),
        ctx: Arc<RequestContext>,
        now: Timestamp,
    ) -> Decision {
        let (acct, ip_state) = held;
        let j = self.judge_login(ip_state.as_deref().copied(), acct.as_deref(), now);
        let admitted = j.verdict == Verdict::Allow;
        let ban = |rule, ttl| bans(&j.fired, rule).then_some(ttl);
        if let Some(st) = ip_state {
            let ttl = self.config.login_velocity_ip.ban_ttl;
            let ban = ban(RuleName::LoginVelocityIp, ttl);
            let key = (&mut st.tat_us, &mut st.banned_until);
            settle(key, j.ip_tat, admitted, ban, now);
        }
        if let Some(a) = acct {
            let ttl = self.config.login_velocity_account.ban_ttl;
            let ban = ban(RuleName::LoginVelocityAccount, ttl);
            let key = (&mut a.login_tat_us, &mut a.banned_until);
            a.bans += u32::from(settle(key, j.acct_tat, admitted, ban, now));
        }
        let seq = self.next_seq();
        let mut d = self.event(seq, now, DecisionKind::LoginGate, sid, name, j.verdict);
        d.context = Some(ctx);
        d.fired = j.fired;
        d
    }

    /// Runs both login velocity rules on an attempt, changing nothing.
    fn judge_login(
        &self,
        ip: Option<AddressStanding>,
        acct: Option<&Account>,
        now: Timestamp,
    ) -> LoginJudgement {
        let mut fired = Vec::new();
        let ip_tat = ip.and_then(|a| {
            let (cfg, rule) = (&self.config.login_velocity_ip, RuleName::LoginVelocityIp);
            let outcome = login::check(cfg, rule, a.tat_us, a.banned_until, now);
            rules::conformed(outcome, &mut fired)
        });
        let acct_tat = acct.and_then(|a| {
            let cfg = &self.config.login_velocity_account;
            let outcome = login::check(
                cfg,
                RuleName::LoginVelocityAccount,
                a.login_tat_us,
                None,
                now,
            );
            rules::conformed(outcome, &mut fired)
        });
        let verdict = match rules::strongest(&fired).map(|f| (f.action, f.reason)) {
            None => Verdict::Allow,
            Some((Action::Ban, r)) => Verdict::Ban(r),
            Some((_, r)) => Verdict::Challenge(r),
        };
        LoginJudgement {
            verdict,
            fired,
            ip_tat,
            acct_tat,
        }
    }

    /// Decides whether the session `sid` may serve a request made in `ctx`.
    ///
    /// Precedence: an unknown session expires (`SESSION_UNKNOWN`); a dead
    /// session repeats its verdict; a banned account bans; lifetimes
    /// expire; then the strongest security rule decides, and a revocation
    /// may escalate to a ban of the account.
    pub fn decide(
        &self,
        sid: SessionId,
        ctx: impl Into<Arc<RequestContext>>,
        now: Timestamp,
    ) -> Decision {
        let mut shard = self.sessions.shard(&sid);
        match shard.get_mut(&sid) {
            Some(s) => {
                let standing = Arc::clone(&s.standing);
                let held = Some((&mut **s, &mut *standing.lock()));
                self.decide_held(sid, held, ctx.into(), now)
            }
            None => self.decide_held(sid, None, ctx.into(), now),
        }
    }

    /// [`Engine::decide`] on a session and account standing the caller
    /// looked up and will keep; `None` when the session is unknown.
    pub(crate) fn decide_held(
        &self,
        sid: SessionId,
        held: Option<(&mut Session, &mut Account)>,
        ctx: Arc<RequestContext>,
        now: Timestamp,
    ) -> Decision {
        let unknown = Verdict::Expire(Reason::SessionUnknown);
        let mut d = self.event(0, now, DecisionKind::Request, sid, None, unknown);
        if let Some((s, acct)) = held {
            d.account = Some(s.account.clone());
            d.on_dead_session = !s.is_active();
            d.verdict = self.judge(s, acct, &ctx, now, &mut d.fired);
        }
        d.seq = self.next_seq();
        d.context = Some(ctx);
        d
    }

    fn judge(
        &self,
        s: &mut Session,
        acct: &mut Account,
        ctx: &RequestContext,
        now: Timestamp,
        fired: &mut Vec<Firing>,
    ) -> Verdict {
        if let Some(v) = s.state.dead_verdict() {
            return v;
        }
        if acct.is_banned(now) {
            s.state = SessionState::Revoked(Reason::AccountBanned);
            return Verdict::Ban(Reason::AccountBanned);
        }
        if let Some(f) = lifetime::check(&self.config.lifetime, s, now) {
            s.state = SessionState::Expired(f.reason);
            let reason = f.reason;
            fired.push(f);
            return Verdict::Expire(reason);
        }
        let rates = rules::evaluate(&self.config, s, acct, ctx, now, fired);
        let decided = rules::strongest(fired).map(|f| (f.action, f.reason));
        let verdict = match decided {
            None => Verdict::Allow,
            Some((Action::Challenge, _)) if rules::browser::clearance_answers(ctx, now, fired) => {
                Verdict::Allow
            }
            Some((Action::Challenge, r)) => Verdict::Challenge(r),
            Some((action, r)) => self.invalidate(s, acct, r, action == Action::Ban, now, fired),
        };
        if !verdict.is_terminal() {
            observe(s, acct, ctx, now, rates, verdict == Verdict::Allow);
            if self.config.robotic_cadence.action != Action::Off {
                s.push_recent(now);
            }
            if verdict == Verdict::Allow && self.tracks_in_flight() {
                s.in_flight = s.in_flight.saturating_add(1);
            }
        }
        verdict
    }

    /// Revokes `s` for `reason` and applies escalation. Returns the verdict.
    fn invalidate(
        &self,
        s: &mut Session,
        acct: &mut Account,
        reason: Reason,
        ban_now: bool,
        now: Timestamp,
        fired: &mut Vec<Firing>,
    ) -> Verdict {
        s.state = SessionState::Revoked(reason);
        if !reason.is_security() {
            return Verdict::Revoke(reason);
        }
        let e = &self.config.escalation;
        let count = acct.record_invalidation(now, reason, e.window);
        let reached = count >= e.invalidations;
        if reached && e.action == Action::Log {
            fired.push(escalation(count, e.invalidations, Action::Log, None));
        }
        let escalates = e.action == Action::Ban && reached;
        if !(ban_now || escalates) || acct.is_banned(now) {
            return if acct.is_banned(now) {
                Verdict::Ban(reason)
            } else {
                Verdict::Revoke(reason)
            };
        }
        let until = now.plus(e.ban_ttl);
        acct.banned_until = Some(until);
        acct.bans += 1;
        if escalates {
            fired.push(escalation(count, e.invalidations, Action::Ban, Some(until)));
        }
        Verdict::Ban(reason)
    }

    /// Whether the in-flight rule is on, so the shell must call [`Engine::release`].
    pub fn tracks_in_flight(&self) -> bool {
        self.config.concurrency.in_flight_action != Action::Off
    }

    /// Marks the end of an allowed request on `sid`.
    pub fn release(&self, sid: SessionId, now: Timestamp) -> Decision {
        let mut shard = self.sessions.shard(&sid);
        self.release_held(sid, shard.get_mut(&sid).map(|s| &mut **s), now)
    }

    /// [`Engine::release`] on a session the caller looked up and will keep.
    pub(crate) fn release_held(
        &self,
        sid: SessionId,
        s: Option<&mut Session>,
        now: Timestamp,
    ) -> Decision {
        let account = s.map(|s| {
            s.in_flight = s.in_flight.saturating_sub(1);
            s.account.clone()
        });
        let seq = self.next_seq();
        self.event(
            seq,
            now,
            DecisionKind::Release,
            sid,
            account,
            Verdict::Allow,
        )
    }

    /// Revokes one session explicitly: logout (`LOGGED_OUT`), refresh-token
    /// reuse (`REFRESH_TOKEN_REUSE`), an operator (`SESSION_REVOKED`).
    /// Security reasons count towards escalation.
    pub fn revoke(&self, sid: SessionId, reason: Reason, now: Timestamp) -> Decision {
        let mut shard = self.sessions.shard(&sid);
        match shard.get_mut(&sid) {
            Some(s) => {
                let standing = Arc::clone(&s.standing);
                let held = Some((&mut **s, &mut *standing.lock()));
                self.revoke_held(sid, held, reason, now)
            }
            None => self.revoke_held(sid, None, reason, now),
        }
    }

    /// [`Engine::revoke`] on a session and account standing the caller
    /// looked up and will keep; `None` when the session is unknown.
    pub(crate) fn revoke_held(
        &self,
        sid: SessionId,
        held: Option<(&mut Session, &mut Account)>,
        reason: Reason,
        now: Timestamp,
    ) -> Decision {
        let mut fired = Vec::new();
        let (account, verdict, was_dead) = match held {
            None => (None, Verdict::Expire(Reason::SessionUnknown), false),
            Some((s, acct)) => {
                let was_dead = !s.is_active();
                let verdict = match s.state.dead_verdict() {
                    Some(v) => v,
                    None => self.invalidate(s, acct, reason, false, now, &mut fired),
                };
                (Some(s.account.clone()), verdict, was_dead)
            }
        };
        let seq = self.next_seq();
        let mut d = self.event(
            seq,
            now,
            DecisionKind::Revoke { cause: reason },
            sid,
            account,
            verdict,
        );
        d.fired = fired;
        d.on_dead_session = was_dead;
        d
    }

    /// Revokes every live session of `account`.
    pub fn revoke_account(&self, account: &str, reason: Reason, now: Timestamp) -> Vec<Decision> {
        let ids: Vec<SessionId> = self
            .sessions
            .each()
            .flat_map(|shard| {
                let live = shard
                    .values()
                    .filter(|s| s.is_active() && &*s.account == account);
                live.map(|s| s.id).collect::<Vec<_>>()
            })
            .collect();
        ids.into_iter()
            .map(|sid| self.revoke(sid, reason, now))
            .collect()
    }

    fn event(
        &self,
        seq: u64,
        at: Timestamp,
        kind: DecisionKind,
        session: SessionId,
        account: Option<Arc<str>>,
        verdict: Verdict,
    ) -> Decision {
        Decision {
            seq,
            at,
            kind,
            session,
            account,
            context: None,
            context_of: None,
            fired: Vec::new(),
            verdict,
            on_dead_session: false,
        }
    }

    /// A copy of one session's state.
    pub fn session(&self, sid: SessionId) -> Option<Session> {
        self.sessions.shard(&sid).get(&sid).map(|s| (**s).clone())
    }

    /// Copies of every session's state, in no particular order.
    pub fn sessions(&self) -> Vec<Session> {
        let shards = self.sessions.each();
        shards
            .flat_map(|s| s.values().map(|b| (**b).clone()).collect::<Vec<_>>())
            .collect()
    }

    /// A copy of one account's standing.
    pub fn account(&self, name: &str) -> Option<Account> {
        self.accounts
            .shard(name)
            .get(name)
            .map(|a| a.lock().clone())
    }

    /// Copies of every account's standing, by name.
    pub fn accounts(&self) -> HashMap<Arc<str>, Account> {
        let shards = self.accounts.each();
        shards
            .flat_map(|s| {
                s.iter()
                    .map(|(k, v)| (k.clone(), v.lock().clone()))
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    /// Forgets every session and account, as if the target restarted.
    ///
    /// Every shard is locked before the sequence number is taken, so no
    /// decision can fall between the reset's place in the trace and its effect.
    pub fn reset(&self, now: Timestamp) -> Upkeep {
        let mut shards: Vec<_> = self.sessions.each().collect();
        let upkeep = self.upkeep_record(
            UpkeepAction::Reset,
            now,
            shards.iter().map(|s| s.len()).sum(),
        );
        shards.iter_mut().for_each(|s| s.clear());
        drop(shards);
        self.accounts.each().for_each(|mut a| a.clear());
        self.addresses.each().for_each(|mut a| a.clear());
        self.interner.clear();
        upkeep
    }

    /// A numbered record of housekeeping done at `at`.
    pub(crate) fn upkeep_record(
        &self,
        action: UpkeepAction,
        at: Timestamp,
        removed: usize,
    ) -> Upkeep {
        Upkeep {
            seq: self.next_seq(),
            at,
            action,
            removed,
        }
    }

    /// Sessions held, live and dead.
    pub fn len(&self) -> usize {
        self.sessions.len()
    }

    /// Whether no session is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Forgets every session whose TTLs have run out at `now`, dead or
    /// alive; a client presenting one later gets `SESSION_UNKNOWN`. The
    /// returned record says how many went; trace it so replay forgets them too.
    pub fn sweep(&self, now: Timestamp) -> Upkeep {
        let mut shards: Vec<_> = self.sessions.each().collect();
        let mut upkeep = self.upkeep_record(UpkeepAction::Sweep, now, 0);
        for shard in &mut shards {
            let before = shard.len();
            shard.retain(|_, s| !self.outlived(s, now));
            upkeep.removed += before - shard.len();
        }
        drop(shards);
        self.addresses
            .each()
            .for_each(|mut a| a.retain(|_, st| st.matters(now)));
        upkeep
    }

    /// When the engine forgets `s` (see [`Engine::sweep`]): the first
    /// moment it has outlived one of its TTLs.
    pub(crate) fn forgotten_at(&self, s: &Session) -> Timestamp {
        let l = &self.config.lifetime;
        let grace = l.skew_grace + Duration::from_millis(1);
        let idle = s.last_seen.plus(l.idle_ttl + grace);
        self.forgotten_by(s.created).min(idle)
    }

    /// The latest the engine forgets a session born at `created`, however
    /// busy it is: when it outlives its absolute TTL.
    pub(crate) fn forgotten_by(&self, created: Timestamp) -> Timestamp {
        let l = &self.config.lifetime;
        created.plus(l.absolute_ttl + l.skew_grace + Duration::from_millis(1))
    }

    fn outlived(&self, s: &Session, now: Timestamp) -> bool {
        let l = &self.config.lifetime;
        let grace = millis(l.skew_grace);
        millis(now.since(s.created)) > millis(l.absolute_ttl) + grace
            || millis(now.since(s.last_seen)) > millis(l.idle_ttl) + grace
    }

    fn shard_capacity(&self) -> usize {
        self.config
            .store
            .max_sessions
            .div_ceil(self.sessions.count())
    }

    /// Makes room in a full shard: first everything that has outlived its
    /// TTLs, then dead sessions. Live sessions stay: a flood of logins
    /// must not log everyone else out.
    fn evict(&self, shard: &mut Map<SessionId, Box<Session>>, now: Timestamp) {
        shard.retain(|_, s| !self.outlived(s, now));
        if shard.len() < self.shard_capacity() {
            return;
        }
        shard.retain(|_, s| s.is_active());
    }

    /// Applies a recorded decision again and returns the new decision.
    /// Feeding a trace, in `seq` order, to an engine with the same rules
    /// reproduces every verdict.
    pub fn apply(&self, d: &Decision) -> Decision {
        let ctx = d.context.clone().unwrap_or_default();
        match &d.kind {
            DecisionKind::Login { companions } => {
                let account = d.account.as_deref().unwrap_or_default();
                self.login(d.session, account, ctx, companions.clone(), d.at)
            }
            DecisionKind::LoginGate => self.admit_login(d.session, d.account.as_deref(), ctx, d.at),
            DecisionKind::Request => self.decide(d.session, ctx, d.at),
            DecisionKind::Release => self.release(d.session, d.at),
            DecisionKind::Revoke { cause } => self.revoke(d.session, *cause, d.at),
        }
    }
}

/// A login to decide, with what the caller found in its store.
pub(crate) struct Login {
    /// The new session's id.
    pub(crate) sid: SessionId,
    /// The account, interned.
    pub(crate) name: Arc<str>,
    /// Whether the account is banned now.
    pub(crate) banned: bool,
    /// Whether the store has room for the session.
    pub(crate) room: bool,
    /// The companion cookies set for the client.
    pub(crate) companions: Vec<(String, String)>,
}

/// What the login velocity rules found on one attempt.
struct LoginJudgement {
    verdict: Verdict,
    fired: Vec<Firing>,
    /// The address's new arrival time, when it conformed.
    ip_tat: Option<u64>,
    /// The account's new arrival time, when it conformed.
    acct_tat: Option<u64>,
}

/// What a login attempt leaves on one key, given as its (arrival time,
/// ban end): an admitted attempt advances the limit; `ban` (a ban by the
/// key's rule, with its length) starts a ban unless one lasts. Returns
/// whether a ban started.
fn settle(
    key: (&mut u64, &mut Option<Timestamp>),
    tat: Option<u64>,
    admitted: bool,
    ban: Option<std::time::Duration>,
    now: Timestamp,
) -> bool {
    let (tat_us, banned_until) = key;
    if let Some(t) = tat.filter(|_| admitted) {
        *tat_us = t;
    }
    let banned = banned_until.is_some_and(|u| now < u);
    match ban {
        Some(ttl) if !banned => {
            *banned_until = Some(now.plus(ttl));
            true
        }
        _ => false,
    }
}

/// Whether `rule` fired with `ban`.
fn bans(fired: &[Firing], rule: RuleName) -> bool {
    fired
        .iter()
        .any(|f| f.rule == rule && f.action == Action::Ban)
}

/// Stores an address's login standing in its shard of the bounded table:
/// when the shard is full, addresses whose limits have run out go first,
/// then the one closest to conforming again.
fn remember_address(
    shard: &mut Map<IpAddr, AddressStanding>,
    ip: IpAddr,
    st: AddressStanding,
    now: Timestamp,
) {
    if !shard.contains_key(&ip) && shard.len() >= ADDRESSES_PER_SHARD {
        shard.retain(|_, a| a.matters(now));
        if shard.len() >= ADDRESSES_PER_SHARD {
            let first = shard
                .iter()
                .min_by_key(|(k, a)| (a.banned_until, a.tat_us, **k));
            if let Some(k) = first.map(|(k, _)| *k) {
                shard.remove(&k);
            }
        }
    }
    if st == AddressStanding::default() {
        shard.remove(&ip);
    } else {
        shard.insert(ip, st);
    }
}

/// Sessions a shard of the store holds at least, unless the whole store
/// is smaller: a login is refused when its own shard is full, so small
/// stores use fewer shards to refuse close to `max_sessions`.
const MIN_SESSIONS_PER_SHARD: usize = 1024;

/// The number of session shards for `store`: `store.shards`, halved until
/// each holds at least [`MIN_SESSIONS_PER_SHARD`] (one shard at least).
fn session_shards(store: &StoreConfig) -> usize {
    let mut n = store.shards.max(1);
    while n > 1 && store.max_sessions / n < MIN_SESSIONS_PER_SHARD {
        n /= 2;
    }
    n
}

/// The firing of the escalation rule: `count` invalidations against `limit`.
fn escalation(count: u32, limit: u32, action: Action, until: Option<Timestamp>) -> Firing {
    Firing {
        rule: RuleName::Escalation,
        reason: Reason::AccountBanned,
        action,
        evidence: Evidence::Escalation {
            invalidations: count,
            limit,
            banned_until_ms: until.map_or(0, Timestamp::as_millis),
        },
    }
}

/// Records what a surviving request changed: last seen, address, location,
/// cadence, use count and conforming rate-limit state.
fn observe(
    s: &mut Session,
    acct: &mut Account,
    ctx: &RequestContext,
    now: Timestamp,
    rates: rules::RateUpdate,
    served: bool,
) {
    s.last_seen = s.last_seen.max(now);
    s.sight(ctx.ip, ctx.network.asn, now);
    if let Some(loc) = ctx.network.location {
        s.last_location = Some((loc, now));
    }
    if let Some(tat) = rates.session_tat_us {
        s.velocity_tat_us = tat;
    }
    if let Some(tat) = rates.account_tat_us {
        acct.velocity_tat_us = tat;
    }
    if served {
        s.uses = s.uses.saturating_add(1);
    }
}
