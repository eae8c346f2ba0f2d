//! The shared state of a running target: engine, tokens, keys, trace and counters.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::FutureExt;
use parking_lot::{Mutex, RwLock};
use rand::Rng;

use crate::auth::csrf::CsrfKey;
use crate::auth::jwt::JwtKeys;
use crate::auth::refresh::RefreshTokens;
use crate::clock::{Clock, Timestamp};
use crate::dataset::{Dataset, ServedIds};
use crate::engine::{Decision, Engine};
use crate::error::Result;
use crate::geo::GeoDb;
use crate::session::SessionId;
use crate::site::config::TargetConfig;
use crate::site::conn::{DEFAULT_HEAD_TIMEOUT, DEFAULT_IDLE_TIMEOUT};
use crate::site::dashboard_keys::DashboardKeys;
use crate::site::exit_bans::ExitBans;
use crate::site::issued::IssuedTokens;
use crate::site::metrics::Metrics;
use crate::site::page_cache::PageCache;
use crate::site::shared::{SharedKeys, SharedStore};
use crate::site::shed::Idlers;
use crate::site::stores::Stored;
use crate::site::trace_log::TraceLog;
use crate::timeline::{Script, TimelineAction, TimelineEvent};
use crate::tls::TlsMaterial;
pub use crate::trace::records::LoginFlow;
use crate::trace::records::TimelineFired;
use crate::verdict::Reason;

/// Most outstanding proof-of-work challenges; older ones are dropped.
const MAX_POW_CHALLENGES: usize = 100_000;

/// Everything the handlers share. Built once per run.
#[derive(Debug)]
pub struct TargetState {
    /// The risk engine.
    pub engine: Engine,
    /// Network identity lookups.
    pub geo: Arc<GeoDb>,
    /// The clock, read once per request.
    pub clock: Clock,
    /// What this target serves.
    pub config: TargetConfig,
    /// The protected records.
    pub dataset: Dataset,
    /// The dataset's pages, rendered once.
    pages: PageCache,
    /// JWT signing keys.
    pub jwt: RwLock<JwtKeys>,
    /// Refresh-token families.
    pub refresh: RefreshTokens,
    /// Signs CSRF tokens.
    pub csrf: CsrfKey,
    /// Signs companion-cookie values, so forged ones are recognised.
    pub companion_key: CsrfKey,
    /// Seals the page sensor's nonces.
    pub sensor_key: CsrfKey,
    /// Seals challenge clearances.
    pub clearance_key: CsrfKey,
    /// The shared store, when sessions live in Redis rather than here.
    pub shared: Option<SharedStore>,
    /// The decision trace.
    pub trace: Arc<TraceLog>,
    /// Counters.
    pub metrics: Arc<Metrics>,
    /// Connections still in their opening, to shed when descriptors run out.
    pub(crate) idlers: Arc<Idlers>,
    /// The admin API's bearer token.
    pub admin_token: String,
    /// The dashboard's login links and cookie secret.
    pub dashboard: DashboardKeys,
    /// The secret a pool node must send in its PROXY header.
    pub pool_secret: [u8; 16],
    /// Addresses refused outright (the pool's `banned` fault).
    pub exit_bans: Arc<ExitBans>,
    /// This run's CA and the HTTPS listeners' configuration.
    pub tls: TlsMaterial,
    /// How long a peer may take to send a request head (from its first
    /// byte), a PROXY header or a ClientHello, and to finish the TLS
    /// handshake.
    pub head_timeout: Duration,
    /// How long a keep-alive HTTP/1 connection may idle between the end of
    /// a response and the first byte of the next request head.
    pub idle_timeout: Duration,
    pow_challenges: Mutex<IssuedTokens>,
    /// CSRF tokens and challenges that start a login flow, by issue time.
    flow_starts: Arc<Mutex<IssuedTokens>>,
    revoked_jti: Mutex<HashMap<String, Timestamp>>,
    served: Arc<Mutex<Served>>,
    script: Mutex<Script>,
    script_pending: std::sync::atomic::AtomicBool,
    due: Mutex<Vec<TimelineEvent>>,
    /// Requests this instance judged, of a run's several.
    judged_here: std::sync::atomic::AtomicU64,
    /// Wakes the timeline task when `due` has events.
    pub(crate) due_wake: tokio::sync::Notify,
}

/// What the target served: counts per session, and which records.
#[derive(Debug, Default)]
struct Served {
    by_session: HashMap<SessionId, u64>,
    ids: ServedIds,
}

/// Most login-flow starts remembered; older ones count as abandoned.
const MAX_FLOW_STARTS: usize = 100_000;

/// The form a page of records is served in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum PageForm {
    /// The JSON API's page.
    Json,
    /// The HTML catalog's page.
    Html,
}

impl TargetState {
    /// Builds the state for `config`, drawing keys from the OS.
    pub fn new(config: TargetConfig, clock: Clock, geo: GeoDb, trace: TraceLog) -> Result<Self> {
        config.validate("target")?;
        let mut rng = rand::rng();
        let t = &config.tokens;
        let dataset = Dataset::new(&config.dataset);
        Ok(Self {
            engine: Engine::new(config.rules.clone())?,
            geo: Arc::new(geo.with_hosting_asns(config.hosting_asns.iter().copied())),
            pages: PageCache::new(dataset.pages()),
            dataset,
            jwt: RwLock::new(JwtKeys::generate(&mut rng)),
            refresh: RefreshTokens::new(t.refresh_ttl).with_overlap(t.refresh_overlap),
            csrf: CsrfKey::generate(&mut rng),
            companion_key: CsrfKey::generate(&mut rng),
            sensor_key: CsrfKey::generate(&mut rng),
            clearance_key: CsrfKey::generate(&mut rng),
            admin_token: random_hex(&mut rng, 16),
            dashboard: DashboardKeys::generate(&mut rng),
            pool_secret: rng.random(),
            exit_bans: Arc::default(),
            tls: TlsMaterial::generate()?,
            head_timeout: DEFAULT_HEAD_TIMEOUT,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            metrics: Arc::default(),
            idlers: Arc::default(),
            pow_challenges: Mutex::new(IssuedTokens::new(MAX_POW_CHALLENGES)),
            flow_starts: Arc::new(Mutex::new(IssuedTokens::new(MAX_FLOW_STARTS))),
            revoked_jti: Mutex::new(HashMap::new()),
            served: Arc::default(),
            script: Mutex::new(Script::default()),
            script_pending: std::sync::atomic::AtomicBool::new(false),
            due: Mutex::default(),
            judged_here: std::sync::atomic::AtomicU64::new(0),
            due_wake: tokio::sync::Notify::new(),
            shared: None,
            clock,
            config,
            trace: Arc::new(trace),
        })
    }

    /// Another instance of this target, for a run on a shared store: its
    /// own engine, listeners' state and caches, and the same run around
    /// it. It records in the same trace (with decision numbers from the
    /// same sequence), counts in the same metrics and served records, and
    /// shares the pool's secret and ban list, so the grade sees one run.
    pub fn another_instance(&self) -> Result<Self> {
        let trace = TraceLog::in_memory();
        let mut other = Self::new(
            self.config.clone(),
            self.clock.clone(),
            GeoDb::empty(),
            trace,
        )?;
        other.engine.share_sequence(&self.engine);
        other.geo = Arc::clone(&self.geo);
        other.trace = Arc::clone(&self.trace);
        other.metrics = Arc::clone(&self.metrics);
        other.exit_bans = Arc::clone(&self.exit_bans);
        other.flow_starts = Arc::clone(&self.flow_starts);
        other.served = Arc::clone(&self.served);
        other.pool_secret = self.pool_secret;
        other.head_timeout = self.head_timeout;
        other.idle_timeout = self.idle_timeout;
        Ok(other)
    }

    /// Keeps sessions, tokens and standings in `store`, signing with
    /// `keys` (the run's, as the store hands them to every instance).
    pub fn with_shared(mut self, store: SharedStore, keys: SharedKeys) -> Self {
        if keys.salt != self.config.dataset.salt {
            self.config.dataset.salt = keys.salt;
            self.dataset = Dataset::new(&self.config.dataset);
            self.pages = PageCache::new(self.dataset.pages());
        }
        self.tls = keys.tls;
        *self.jwt.get_mut() = keys.jwt;
        self.csrf = keys.csrf;
        self.companion_key = keys.companion;
        self.sensor_key = keys.sensor;
        self.clearance_key = keys.clearance;
        self.shared = Some(store);
        self
    }

    /// This instance's keys, to offer a shared store.
    pub fn keys(&self) -> SharedKeys {
        SharedKeys {
            jwt: self.jwt.read().clone(),
            csrf: self.csrf.clone(),
            companion: self.companion_key.clone(),
            sensor: self.sensor_key.clone(),
            clearance: self.clearance_key.clone(),
            salt: self.config.dataset.salt,
            tls: self.tls.clone(),
        }
    }

    /// Records a decision in the trace and the counters. Returns whether
    /// its line reached the trace file (see [`TraceLog::record`]).
    pub fn record(&self, d: &Decision) -> bool {
        self.record_request(d, None).0
    }

    /// [`TargetState::record`] for a request whose line may name an
    /// earlier context, `ctx` being its own (see
    /// [`TraceLog::record_request`]): returns whether the line reached the
    /// file and whether its context was written in full.
    pub fn record_request(
        &self,
        d: &Decision,
        ctx: Option<&std::sync::Arc<crate::context::RequestContext>>,
    ) -> (bool, bool) {
        self.metrics.decided(d.verdict);
        let recorded = self.trace.record_request(d, ctx);
        self.run_script(d.at);
        recorded
    }

    /// Gives the target a scenario's timeline: each event fires once, at
    /// its time after the first decided request or at its request count,
    /// checked on every decision and on every [`TargetState::run_script`].
    pub fn set_timeline(&self, events: &[TimelineEvent]) {
        *self.script.lock() = Script::new(events);
        self.script_pending
            .store(!events.is_empty(), std::sync::atomic::Ordering::Release);
    }

    /// Fires the timeline events due at `now`. Cheap when none is left.
    pub fn run_script(&self, now: Timestamp) {
        use std::sync::atomic::Ordering;
        if !self.script_pending.load(Ordering::Acquire) {
            return;
        }
        // Another thread firing already: it sees this request's count too.
        let Some(mut script) = self.script.try_lock() else {
            return;
        };
        let due = script.due(now, self.metrics.requests());
        self.script_pending
            .store(script.pending(), Ordering::Release);
        drop(script);
        if self.shared.is_some() {
            self.due.lock().extend(due);
            self.due_wake.notify_one();
            return;
        }
        for event in due {
            let applied = self.apply(event.action, event.account.as_deref(), now);
            // In memory nothing waits: the event is applied when polled.
            let _ = applied.now_or_never();
        }
    }

    /// Notes that `token` (a login form's CSRF token, a proof-of-work
    /// challenge) was issued at `now`: a login that presents it started
    /// its flow then.
    pub fn flow_token_issued(&self, token: &str, now: Timestamp) {
        let mut starts = self.flow_starts.lock();
        starts.issue(token, now);
    }

    /// Ends a login flow with session `sid` at `now` and traces it. The
    /// flow started when the earliest of the `tokens` the login presented
    /// was issued, or when the login request `arrived` if it presented
    /// none: a login page fetched and left is not part of it.
    pub fn login_flow_done(
        &self,
        tokens: &[Option<&str>],
        arrived: Timestamp,
        sid: SessionId,
        now: Timestamp,
    ) {
        let mut starts = self.flow_starts.lock();
        let first = tokens.iter().flatten().filter_map(|t| starts.take(t)).min();
        drop(starts);
        self.trace.record_value(&LoginFlow {
            kind: "login_flow".into(),
            session: sid,
            started: first.unwrap_or(arrived).min(now),
            at: now,
        });
    }

    /// Login pages and challenges issued that no successful login used.
    pub fn abandoned_login_flows(&self) -> u64 {
        let starts = self.flow_starts.lock();
        starts.untaken()
    }

    /// Notes that the genuine records `ids` were served to `sid`.
    pub fn served(&self, sid: SessionId, ids: std::ops::RangeInclusive<u64>) {
        let n = ids.end().saturating_sub(*ids.start()).saturating_add(1);
        let mut served = self.served.lock();
        *served.by_session.entry(sid).or_default() += n;
        served.ids.insert(ids);
    }

    /// Page `n` of the records in `form`, counted as served to `sid`;
    /// `None` past the last page.
    pub(crate) fn serve_page(&self, sid: SessionId, n: u32, form: PageForm) -> Option<Bytes> {
        let ids = self.dataset.page_ids(n)?;
        let bytes = match form {
            PageForm::Json => self.pages.json(&self.dataset, n),
            PageForm::Html => self.pages.html(&self.dataset, n),
        }?;
        self.served(sid, ids);
        Some(bytes)
    }

    /// Genuine records served so far, by session.
    pub fn served_by_session(&self) -> HashMap<SessionId, u64> {
        let served = self.served.lock();
        served.by_session.clone()
    }

    /// The ids of every genuine record served so far, to any session.
    pub fn served_ids(&self) -> ServedIds {
        let served = self.served.lock();
        served.ids.clone()
    }

    /// Applies a scripted event at `now`, traces it, and says what it
    /// did. In memory it runs to the end at once; on a shared store it
    /// waits on Redis, so [`TargetState::run_script`] hands it to the
    /// server's timeline task instead.
    pub async fn apply(
        &self,
        action: TimelineAction,
        account: Option<&str>,
        now: Timestamp,
    ) -> Stored<String> {
        let detail = match action {
            TimelineAction::RevokeAccount => {
                let name = account.unwrap_or_default();
                let n = self.revoke_accounts(&[name], now).await?;
                format!("{n} sessions of {name} revoked")
            }
            TimelineAction::RevokeAll => {
                let names: Vec<&str> = self
                    .config
                    .accounts
                    .iter()
                    .map(|a| a.username.as_str())
                    .collect();
                format!(
                    "{} sessions revoked",
                    self.revoke_accounts(&names, now).await?
                )
            }
            TimelineAction::RotateSigningKey => {
                self.rotate_signing_key().await?;
                "access tokens signed with the old key now fail".to_owned()
            }
            TimelineAction::Restart => {
                let upkeep = self.reset(now).await?;
                self.trace.record_upkeep(&upkeep);
                self.rotate_signing_key().await?;
                "sessions, refresh tokens and signing keys lost".to_owned()
            }
        };
        self.record_fired(action, now, detail.clone());
        Ok(detail)
    }

    /// Traces timeline event `action` as fired at `now`, with `detail`.
    pub(crate) fn record_fired(&self, action: TimelineAction, now: Timestamp, detail: String) {
        self.trace.record_value(&TimelineFired {
            kind: "timeline".into(),
            at: now,
            action: action.as_str().into(),
            detail,
        });
    }

    /// Whether the store answers now: in memory, always; a shared store
    /// when Redis answers a `PING`.
    pub(crate) async fn store_answers(&self) -> bool {
        match &self.shared {
            Some(s) => s.answers().await,
            None => true,
        }
    }

    /// Replaces the signing key, for every instance on a shared store.
    async fn rotate_signing_key(&self) -> Stored<()> {
        let fresh = {
            let mut jwt = self.jwt.write();
            jwt.rotate(&mut rand::rng());
            jwt.clone()
        };
        match &self.shared {
            Some(s) => s.rotate_jwt(&fresh).await,
            None => Ok(()),
        }
    }

    /// Revokes every live session of the accounts `names`, and their
    /// refresh families; traces each. Returns how many. A session the
    /// store could not revoke fails the call, after every other one was
    /// revoked and traced.
    pub async fn revoke_accounts(&self, names: &[&str], now: Timestamp) -> Stored<usize> {
        let (mut n, mut failed) = (0, Ok(()));
        for name in names {
            let (revoked, result) = self.revoke_account(name, Reason::SessionRevoked, now).await;
            for d in revoked {
                self.trace.record(&d);
                failed = failed.and(self.refresh_revoke_session(d.session).await.map(drop));
                n += 1;
            }
            failed = failed.and(result);
        }
        failed.map(|()| n)
    }

    /// Requests on sessions this instance judged (the metrics count those
    /// of every instance of a run).
    pub fn judged_here(&self) -> u64 {
        self.judged_here.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Counts a request judged by this instance.
    pub(crate) fn judging(&self) {
        self.judged_here
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    /// Events the timeline fired that wait for the server's timeline task
    /// (on a shared store only).
    pub(crate) fn take_due(&self) -> Vec<TimelineEvent> {
        std::mem::take(&mut *self.due.lock())
    }

    /// A fresh session id: 128 bits from the OS's generator.
    pub fn new_session_id(&self) -> SessionId {
        SessionId::from_u128(rand::rng().random())
    }

    /// Marks `key` spent in this instance's memory: whether it was not yet.
    pub(crate) fn spend_here(&self, key: &str, now: Timestamp) -> bool {
        let mut store = self.pow_challenges.lock();
        let spent = store.take(key).is_some();
        store.issue(key, now);
        !spent
    }

    /// Denies an access token by its `jti` in this instance's memory.
    pub(crate) fn deny_jti_here(&self, jti: &str, exp: Timestamp) {
        self.revoked_jti.lock().insert(jti.to_owned(), exp);
    }

    /// Whether an access token's `jti` was denied in this instance's memory.
    pub(crate) fn is_jti_denied_here(&self, jti: &str) -> bool {
        self.revoked_jti.lock().contains_key(jti)
    }

    /// Forgets expired sessions, challenges and denied token ids.
    pub fn sweep(&self, now: Timestamp) -> usize {
        let mut store = self.pow_challenges.lock();
        store.retain(|t| fresh(t, now));
        drop(store);
        self.revoked_jti.lock().retain(|_, exp| *exp > now);
        self.refresh.sweep(now);
        let upkeep = self.engine.sweep(now);
        if upkeep.removed > 0 {
            self.trace.record_upkeep(&upkeep);
        }
        upkeep.removed
    }
}

/// Whether a challenge issued at `issued` is still usable at `now`.
fn fresh(issued: Timestamp, now: Timestamp) -> bool {
    now.since(issued) < crate::site::stores::CHALLENGE_TTL
}

/// `bytes` random bytes as lowercase hex.
pub fn random_hex(rng: &mut impl Rng, bytes: usize) -> String {
    let raw: Vec<u8> = (0..bytes).map(|_| rng.random()).collect();
    crate::fingerprint::common::hex(&raw)
}
