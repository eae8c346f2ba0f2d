//! Running a target: the public router, the listeners, and `TargetServer` for Rust tests.

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::clock::Clock;
use crate::engine::Decision;
use crate::error::{Error, Result};
use crate::geo::GeoDb;
use crate::pool::Upstream;
use crate::site::config::{Surface, TargetConfig};
use crate::site::metrics::Listener;
use crate::site::state::TargetState;
use crate::site::trace_log::TraceLog;
use crate::site::{admin, api, exit_bans, handlers, listeners};

/// Largest request body the target reads: logins and token requests are small.
const MAX_BODY: usize = 64 * 1024;

/// The public router: the site surface clients see. The admin API is not
/// part of it, whatever the path. Routes of a surface the scenario leaves
/// out are not routed, so they answer `404` like any unknown path (and are
/// traced as refused, so a card can say why a client got nothing).
pub fn router(state: Arc<TargetState>) -> Router {
    let mut app = Router::new()
        .route("/", get(handlers::landing))
        .route("/logout", post(handlers::logout))
        .route(exit_bans::FINGERPRINT_ROUTE, get(handlers::fingerprint));
    if state.config.serves(Surface::Html) {
        app = app
            .route(
                "/login",
                get(handlers::login_page).post(handlers::login_submit),
            )
            .route("/account", get(handlers::account))
            .route("/catalog", get(handlers::catalog));
    }
    if state.config.serves(Surface::Api) {
        app = app
            .route("/api/login", post(api::login))
            .route("/api/login/challenge", get(api::challenge))
            .route("/api/token/refresh", post(api::refresh))
            .route("/api/token/revoke", post(api::revoke))
            .route("/api/v1/items", get(api::items))
            .route("/api/v1/items/{id}", get(api::item));
    }
    app.fallback(handlers::not_found)
        .layer(exit_bans::RefuseBannedLayer(state.clone()))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(state)
}

/// Refuses addresses outside loopback: the range never listens on a network.
pub fn check_loopback(addr: SocketAddr) -> Result<()> {
    if addr.ip().is_loopback() {
        return Ok(());
    }
    Err(Error::config(
        "addr",
        format!("{addr} is not a loopback address; sessionrange binds 127.0.0.0/8 or ::1 only"),
    ))
}

/// Raises this process's soft limit on open descriptors to its hard limit,
/// so that a flood of silent connections meets the most room the system
/// allows before the accept loop has to shed any; returns the new limit.
/// `serve` and [`TargetServer`] call it at start.
pub fn raise_descriptor_limit() -> std::io::Result<u64> {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE)?;
    if soft < hard {
        setrlimit(Resource::RLIMIT_NOFILE, hard, hard)?;
    }
    Ok(hard)
}

/// Binds a loopback listener.
pub async fn bind(addr: SocketAddr) -> Result<TcpListener> {
    check_loopback(addr)?;
    TcpListener::bind(addr)
        .await
        .map_err(|e| Error::io(addr.to_string(), e))
}

/// The three listeners of a target.
#[derive(Debug)]
pub struct Listeners {
    /// The site, for clients.
    pub public: TcpListener,
    /// The admin API.
    pub admin: TcpListener,
    /// The proxy pool's upstream: PROXY v2 headers only.
    pub pool: TcpListener,
    /// The site over TLS (HTTP/1.1 and h2), with the ClientHello captured.
    pub https: TcpListener,
}

impl Listeners {
    /// Binds the three listeners on loopback; port 0 picks free ports.
    pub async fn bind(public: SocketAddr, admin: SocketAddr) -> Result<Self> {
        let any = SocketAddr::new(public.ip(), 0);
        Ok(Self {
            public: bind(public).await?,
            admin: bind(admin).await?,
            pool: bind(any).await?,
            https: bind(any).await?,
        })
    }

    /// The bound addresses: public, admin, pool.
    pub fn addrs(&self) -> Result<(SocketAddr, SocketAddr, SocketAddr)> {
        Ok((addr(&self.public)?, addr(&self.admin)?, addr(&self.pool)?))
    }

    /// The HTTPS listener's address.
    pub fn https_addr(&self) -> Result<SocketAddr> {
        addr(&self.https)
    }
}

fn addr(l: &TcpListener) -> Result<SocketAddr> {
    l.local_addr()
        .map_err(|e| Error::config("addr", format!("cannot read a bound address: {e}")))
}

/// Serves every listener until `shutdown` resolves, then lets open
/// connections finish what they are serving.
pub async fn serve(
    state: Arc<TargetState>,
    listeners: Listeners,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let (tx, rx) = tokio::sync::watch::channel(false);
    let wait = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|stop| *stop).await;
    };
    let app = router(state.clone());
    let admin_app = admin::router(state.clone());
    let serve = |listener, which, app: &Router| {
        listeners::serve_listener(
            state.clone(),
            listener,
            which,
            app.clone(),
            wait(rx.clone()),
        )
    };
    let public = serve(listeners.public, Listener::Public, &app);
    let pool = serve(listeners.pool, Listener::Pool, &app);
    let https = serve(listeners.https, Listener::Https, &app);
    let admin = serve(listeners.admin, Listener::Admin, &admin_app);
    let sweeper = tokio::spawn(sweep_forever(state));
    tokio::spawn(async move {
        shutdown.await;
        let _ = tx.send(true);
    });
    let result = tokio::try_join!(public, admin, pool, https).map(|_| ());
    sweeper.abort();
    result
}

/// Forgets expired sessions and tokens once a minute.
async fn sweep_forever(state: Arc<TargetState>) {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(60));
    loop {
        tick.tick().await;
        state.sweep(state.clock.now());
    }
}

/// A target on random loopback ports, for tests. It stops when dropped.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use sessionrange::{Clock, TargetConfig, TargetServer, Timestamp};
///
/// let clock = Clock::manual(Timestamp::from_secs(1_790_000_000));
/// let target = TargetServer::builder()
///     .config(TargetConfig::default())
///     .clock(clock.clone())
///     .start()
///     .await?;
/// let page = reqwest::get(target.url("/login")).await?;
/// assert_eq!(page.status(), 200);
/// clock.advance(std::time::Duration::from_secs(31 * 60)); // idle timeout, without sleeping
/// assert!(target.events().is_empty(), "a login page decides nothing");
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct TargetServer {
    state: Arc<TargetState>,
    public: SocketAddr,
    admin: SocketAddr,
    pool: SocketAddr,
    https: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<std::io::Result<()>>,
}

/// Configures a [`TargetServer`] before starting it.
#[derive(Debug, Default)]
#[must_use = "a builder does nothing until `start` is called"]
pub struct TargetServerBuilder {
    config: Option<TargetConfig>,
    clock: Option<Clock>,
    geo: Option<GeoDb>,
    trace: Option<PathBuf>,
    head_timeout: Option<Duration>,
    idle_timeout: Option<Duration>,
}

impl TargetServerBuilder {
    /// Serves this configuration instead of the defaults.
    pub fn config(mut self, config: TargetConfig) -> Self {
        self.config = Some(config);
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

    /// Appends the trace to this file as well as keeping it in memory.
    pub fn trace(mut self, path: impl Into<PathBuf>) -> Self {
        self.trace = Some(path.into());
        self
    }

    /// Gives peers this long, instead of 5 s, to send a request head (from
    /// its first byte), a PROXY header or a ClientHello, and to finish the
    /// TLS handshake.
    pub fn head_timeout(mut self, timeout: Duration) -> Self {
        self.head_timeout = Some(timeout);
        self
    }

    /// Lets a keep-alive HTTP/1 connection idle this long, instead of 75 s,
    /// between the end of a response and the first byte of the next
    /// request head; then it is closed and counted as idle, not slow.
    pub fn idle_timeout(mut self, timeout: Duration) -> Self {
        self.idle_timeout = Some(timeout);
        self
    }

    /// Binds both listeners on `127.0.0.1:0` and starts serving.
    pub async fn start(self) -> Result<TargetServer> {
        // A limit that cannot be raised leaves the one there is.
        let _ = raise_descriptor_limit();
        let trace = match &self.trace {
            Some(p) => TraceLog::open(p)?,
            None => TraceLog::in_memory(),
        };
        let mut state = TargetState::new(
            self.config.unwrap_or_default(),
            self.clock.unwrap_or_else(Clock::system),
            self.geo.unwrap_or_else(GeoDb::embedded),
            trace,
        )?;
        if let Some(timeout) = self.head_timeout {
            state.head_timeout = timeout;
        }
        if let Some(timeout) = self.idle_timeout {
            state.idle_timeout = timeout;
        }
        TargetServer::serve(Arc::new(state)).await
    }
}

impl TargetServer {
    /// A target with the default configuration and the system clock.
    pub async fn start() -> Result<Self> {
        Self::builder().start().await
    }

    /// A builder for a configured target.
    pub fn builder() -> TargetServerBuilder {
        TargetServerBuilder::default()
    }

    async fn serve(state: Arc<TargetState>) -> Result<Self> {
        let loopback = SocketAddr::from(([127, 0, 0, 1], 0));
        let listeners = Listeners::bind(loopback, loopback).await?;
        let (public, admin, pool) = listeners.addrs()?;
        let https = listeners.https_addr()?;
        let (stop, stopped) = oneshot::channel();
        let shutdown = async move {
            let _ = stopped.await;
        };
        let task = tokio::spawn(serve(state.clone(), listeners, shutdown));
        Ok(Self {
            state,
            public,
            admin,
            pool,
            https,
            stop: Some(stop),
            task,
        })
    }

    /// The public URL of `path`, such as `http://127.0.0.1:41234/login`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.public)
    }

    /// The public listener's address.
    pub fn addr(&self) -> SocketAddr {
        self.public
    }

    /// The HTTPS URL of `path`, such as `https://127.0.0.1:41235/login`;
    /// clients must trust [`TargetServer::ca_pem`].
    pub fn https_url(&self, path: &str) -> String {
        format!("https://{}{path}", self.https)
    }

    /// The HTTPS listener's address.
    pub fn https_addr(&self) -> SocketAddr {
        self.https
    }

    /// This run's CA certificate, PEM.
    pub fn ca_pem(&self) -> &str {
        &self.state.tls.ca_pem
    }

    /// The admin URL of `path`.
    pub fn admin_url(&self, path: &str) -> String {
        format!("http://{}{path}", self.admin)
    }

    /// The admin API's bearer token.
    pub fn admin_token(&self) -> &str {
        &self.state.admin_token
    }

    /// The admin listener's address.
    pub fn admin(&self) -> SocketAddr {
        self.admin
    }

    /// What a proxy pool needs to reach this target.
    pub fn upstream(&self) -> Upstream {
        Upstream::new(Arc::clone(&self.state), self.public, self.pool).with_https(self.https)
    }

    /// Every decision so far, in trace order.
    pub fn events(&self) -> Vec<Decision> {
        self.state.trace.decisions()
    }

    /// The shared state, for assertions on the engine or the dataset.
    pub fn state(&self) -> &Arc<TargetState> {
        &self.state
    }
}

impl Drop for TargetServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.task.abort();
    }
}
