//! `Range`: one scenario's whole stack (target, listeners, proxy pool, CA, trace), started by one call.
//!
//! `sessionrange serve`, `sessionrange run`, [`TargetServer`] and Rust
//! tests all start their stack here, so the wiring of the target's four
//! listeners to the pool's upstream is written once.
//!
//! [`TargetServer`]: crate::TargetServer

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::clock::Clock;
use crate::engine::Decision;
use crate::error::{Error, Result};
use crate::geo::GeoDb;
use crate::pool::{PoolConfig, ProxyPool, Timeouts, Upstream};
use crate::scenario::Scenario;
pub use crate::site::Addrs;
use crate::site::{Listeners, TargetConfig, TargetState, TraceLog, raise_descriptor_limit};
use crate::timeline::TimelineEvent;

/// A scenario's target and proxy pool, serving on loopback. It stops
/// when dropped, or drains with [`Range::stop`].
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use sessionrange::{Range, Scenario};
///
/// let range = Range::start(&Scenario::named("sticky-expiry")?).await?;
/// let gateway = range.pool().gateway().expect("the scenario has a gateway");
/// let proxy = reqwest::Proxy::http(&gateway.url)?;
/// let client = reqwest::Client::builder().proxy(proxy).build()?;
/// let page = client.get(range.url("/login")).send().await?;
/// assert_eq!(page.status(), 200);
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Range {
    state: Arc<TargetState>,
    addrs: Addrs,
    pool: ProxyPool,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<std::io::Result<()>>>,
    /// The other instances of a run on a shared store.
    others: Vec<Instance>,
}

/// One more target instance: its state, listeners and serving task.
#[derive(Debug)]
struct Instance {
    state: Arc<TargetState>,
    addrs: Addrs,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<std::io::Result<()>>>,
}

impl Instance {
    /// Serves `state` on fresh loopback listeners.
    async fn start(state: TargetState) -> Result<Self> {
        let loopback = SocketAddr::from(([127, 0, 0, 1], 0));
        let listeners = Listeners::bind(loopback, loopback).await?;
        let addrs = listeners.addrs()?;
        let state = Arc::new(state);
        let (stop, task) = serve(Arc::clone(&state), listeners);
        Ok(Self {
            state,
            addrs,
            stop: Some(stop),
            task: Some(task),
        })
    }

    /// Asks it to stop and waits until it has.
    async fn stop(&mut self) -> Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match self.task.take() {
            Some(task) => served(task.await),
            None => Ok(()),
        }
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// Serves `state` on `listeners` until the returned sender fires.
fn serve(
    state: Arc<TargetState>,
    listeners: Listeners,
) -> (oneshot::Sender<()>, JoinHandle<std::io::Result<()>>) {
    let (stop, stopped) = oneshot::channel();
    let shutdown = async move {
        let _ = stopped.await;
    };
    (
        stop,
        tokio::spawn(crate::site::serve(state, listeners, shutdown)),
    )
}

/// Configures a [`Range`] before starting it.
#[derive(Debug)]
#[must_use = "a builder does nothing until `start` is called"]
pub struct RangeBuilder {
    target: TargetConfig,
    pool: PoolConfig,
    timeline: Vec<TimelineEvent>,
    clock: Option<Clock>,
    geo: Option<GeoDb>,
    trace: Option<TraceLog>,
    seed: Option<u64>,
    bind: (SocketAddr, SocketAddr),
    head_timeout: Option<Duration>,
    idle_timeout: Option<Duration>,
    pool_timeouts: Timeouts,
    instances: usize,
    namespace: String,
}

impl RangeBuilder {
    /// A stack serving `target` with the proxy pool `pool` and no timeline.
    pub fn new(target: TargetConfig, pool: PoolConfig) -> Self {
        let loopback = SocketAddr::from(([127, 0, 0, 1], 0));
        Self {
            target,
            pool,
            timeline: Vec::new(),
            clock: None,
            geo: None,
            trace: None,
            seed: None,
            bind: (loopback, loopback),
            head_timeout: None,
            idle_timeout: None,
            pool_timeouts: Timeouts::default(),
            instances: 1,
            namespace: crate::site::shared::DEFAULT_NAMESPACE.to_owned(),
        }
    }

    /// Starts `n` target instances on the configuration's shared store
    /// (one when there is none), the pool spreading its upstream
    /// connections over them in turn.
    pub fn instances(mut self, n: usize) -> Self {
        self.instances = n.max(1);
        self
    }

    /// Keeps the shared store's keys under `namespace` instead of `sr:`:
    /// a run's own, so that it starts from nothing and leaves nothing.
    pub fn store_namespace(mut self, namespace: impl Into<String>) -> Self {
        self.namespace = namespace.into();
        self
    }

    /// Serves this target configuration instead; its records keep the
    /// configuration's own salt unless [`RangeBuilder::seed`] comes after.
    pub fn target(mut self, target: TargetConfig) -> Self {
        self.seed = Some(target.dataset.salt);
        self.target = target;
        self
    }

    /// Fires these timeline events (revocations, key rotations) when due.
    pub fn timeline(mut self, events: &[TimelineEvent]) -> Self {
        self.timeline = events.to_vec();
        self
    }

    /// Uses this clock (a manual one, for tests) instead of the system clock.
    pub fn clock(mut self, clock: Clock) -> Self {
        self.clock = Some(clock);
        self
    }

    /// Uses this geo database instead of the embedded fixtures.
    pub fn geo(mut self, geo: GeoDb) -> Self {
        self.geo = Some(geo);
        self
    }

    /// Records decisions in this trace instead of one kept in memory.
    pub fn trace(mut self, trace: TraceLog) -> Self {
        self.trace = Some(trace);
        self
    }

    /// Salts the served records with `seed` (a fresh random salt when
    /// unset, so no record can be known in advance); the same seed serves
    /// the same records again.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    /// Binds the public and admin listeners here instead of
    /// `127.0.0.1:0`; the HTTPS and upstream listeners take free ports on
    /// the public address. Only loopback addresses are accepted.
    pub fn bind(mut self, public: SocketAddr, admin: SocketAddr) -> Self {
        self.bind = (public, admin);
        self
    }

    /// Gives peers this long, instead of 5 s, to send a request head, a
    /// PROXY header or a ClientHello, and to finish the TLS handshake.
    pub fn head_timeout(mut self, timeout: Duration) -> Self {
        self.head_timeout = Some(timeout);
        self
    }

    /// Lets a keep-alive HTTP/1 connection idle this long, instead of 75 s,
    /// before the next request head; then it is closed.
    pub fn idle_timeout(mut self, timeout: Duration) -> Self {
        self.idle_timeout = Some(timeout);
        self
    }

    /// How long the pool waits on its clients (defaults: 10 s for a head,
    /// 120 s idle).
    pub fn pool_timeouts(mut self, timeouts: Timeouts) -> Self {
        self.pool_timeouts = timeouts;
        self
    }

    /// Binds the listeners, starts the pool on them, then serves.
    pub async fn start(mut self) -> Result<Range> {
        // A limit that cannot be raised leaves the one there is.
        let _ = raise_descriptor_limit();
        let listeners = Listeners::bind(self.bind.0, self.bind.1).await?;
        let addrs = listeners.addrs()?;
        let state = Arc::new(shared(self.state()?, &self.namespace).await?);
        state.set_timeline(&self.timeline);
        let mut others = Vec::new();
        if state.shared.is_some() {
            for _ in 1..self.instances {
                let other = shared(state.another_instance()?, &self.namespace).await?;
                others.push(Instance::start(other).await?);
            }
        }
        let upstream = Upstream::new(state.clone(), &addrs)
            .spread_over(others.iter().map(|i| i.addrs.upstream));
        let pool = ProxyPool::start_with(&self.pool, upstream, self.pool_timeouts).await?;
        let (stop, task) = serve(state.clone(), listeners);
        Ok(Range {
            state,
            addrs,
            pool,
            stop: Some(stop),
            task: Some(task),
            others,
        })
    }

    /// The target's state, salted and timed as configured.
    fn state(&mut self) -> Result<TargetState> {
        let mut config = self.target.clone();
        config.dataset.salt = self.seed.unwrap_or_else(rand::random);
        let trace = self.trace.take().unwrap_or_else(TraceLog::in_memory);
        let clock = self.clock.take().unwrap_or_else(Clock::system);
        let geo = self.geo.take().unwrap_or_else(GeoDb::embedded);
        let mut state = TargetState::new(config, clock, geo, trace)?;
        if let Some(timeout) = self.head_timeout {
            state.head_timeout = timeout;
        }
        if let Some(timeout) = self.idle_timeout {
            state.idle_timeout = timeout;
        }
        Ok(state)
    }
}

/// `state` on the shared store its config names, holding the run's keys
/// from there; `state` as it is when it names none.
pub(crate) async fn shared(state: TargetState, namespace: &str) -> Result<TargetState> {
    let Some(url) = state.config.store.clone() else {
        return Ok(state);
    };
    let store = crate::site::shared::SharedStore::connect(&url, namespace).await?;
    let keys = store
        .adopt_keys(&state.keys())
        .await
        .map_err(|e| crate::Error::config("target.store", e.to_string()))?;
    Ok(state.with_shared(store, keys))
}

impl Range {
    /// Starts `scenario`'s target, pool and timeline on free loopback
    /// ports, with the system clock and a trace kept in memory.
    pub async fn start(scenario: &Scenario) -> Result<Self> {
        Self::builder(scenario).start().await
    }

    /// A builder for `scenario`'s stack, to set the clock, trace, seed
    /// or addresses first.
    pub fn builder(scenario: &Scenario) -> RangeBuilder {
        RangeBuilder::new(scenario.target.clone(), scenario.pool.clone())
            .timeline(&scenario.timeline)
            .instances(scenario.run.instances)
    }

    /// The bound addresses.
    pub fn addrs(&self) -> Addrs {
        self.addrs
    }

    /// The public URL of `path`, such as `http://127.0.0.1:41234/login`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addrs.public)
    }

    /// The HTTPS URL of `path`; clients must trust [`Range::ca_pem`].
    pub fn https_url(&self, path: &str) -> String {
        format!("https://{}{path}", self.addrs.https)
    }

    /// The admin URL of `path`; requests need [`Range::admin_token`].
    pub fn admin_url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addrs.admin)
    }

    /// The admin API's bearer token.
    pub fn admin_token(&self) -> &str {
        &self.state.admin_token
    }

    /// This run's CA certificate, PEM.
    pub fn ca_pem(&self) -> &str {
        &self.state.tls.ca_pem
    }

    /// The proxy pool: its exits, gateway and sticky URLs.
    pub fn pool(&self) -> &ProxyPool {
        &self.pool
    }

    /// What another proxy pool needs to reach this target.
    pub fn upstream(&self) -> Upstream {
        Upstream::new(Arc::clone(&self.state), &self.addrs)
    }

    /// Every decision so far, in trace order (from the recent trace kept
    /// in memory).
    pub fn events(&self) -> Vec<Decision> {
        self.state.trace.decisions()
    }

    /// The states of every instance, this one first.
    pub fn instances(&self) -> Vec<&Arc<TargetState>> {
        let others = self.others.iter().map(|i| &i.state);
        std::iter::once(&self.state).chain(others).collect()
    }

    /// The shared state, for assertions on the engine or the dataset.
    pub fn state(&self) -> &Arc<TargetState> {
        &self.state
    }

    /// Serves until `shutdown` resolves (or a listener fails), then stops
    /// like [`Range::stop`].
    pub async fn run_until(mut self, shutdown: impl Future<Output = ()>) -> Result<()> {
        let Some(mut task) = self.task.take() else {
            return Ok(());
        };
        tokio::select! {
            () = shutdown => {}
            ended = &mut task => return served(ended),
        }
        self.task = Some(task);
        self.stop().await
    }

    /// Stops the pool, then the target once its open connections finish
    /// what they are serving.
    pub async fn stop(mut self) -> Result<()> {
        self.pool.close();
        for other in &mut self.others {
            other.stop().await?;
        }
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match self.task.take() {
            Some(task) => served(task.await),
            None => Ok(()),
        }
    }
}

/// The result of the serving task, as the crate's error.
fn served(ended: std::result::Result<std::io::Result<()>, tokio::task::JoinError>) -> Result<()> {
    match ended {
        Ok(result) => result.map_err(|e| Error::io("listener", e)),
        Err(e) => Err(Error::io("listener", std::io::Error::other(e))),
    }
}

impl Drop for Range {
    fn drop(&mut self) {
        self.pool.close();
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}
