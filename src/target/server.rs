//! Running a target: the public router, the listeners, and `TargetServer` for Rust tests.

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::clock::Clock;
use crate::engine::Decision;
use crate::error::{Error, Result};
use crate::geo::GeoDb;
use crate::target::config::TargetConfig;
use crate::target::state::TargetState;
use crate::target::trace_log::TraceLog;
use crate::target::{admin, api, handlers};

/// Largest request body the target reads: logins and token requests are small.
const MAX_BODY: usize = 64 * 1024;

/// The public router: the site surface clients see. The admin API is not
/// part of it, whatever the path.
pub fn router(state: Arc<TargetState>) -> Router {
    Router::new()
        .route("/", get(handlers::landing))
        .route(
            "/login",
            get(handlers::login_page).post(handlers::login_submit),
        )
        .route("/account", get(handlers::account))
        .route("/catalog", get(handlers::catalog))
        .route("/logout", post(handlers::logout))
        .route("/__range/fingerprint", get(handlers::fingerprint))
        .route("/api/login", post(api::login))
        .route("/api/login/challenge", get(api::challenge))
        .route("/api/token/refresh", post(api::refresh))
        .route("/api/token/revoke", post(api::revoke))
        .route("/api/v1/items", get(api::items))
        .route("/api/v1/items/{id}", get(api::item))
        .fallback(|| async { (StatusCode::NOT_FOUND, "not found\n").into_response() })
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

/// Binds a loopback listener.
pub async fn bind(addr: SocketAddr) -> Result<TcpListener> {
    check_loopback(addr)?;
    TcpListener::bind(addr)
        .await
        .map_err(|e| Error::io(addr.to_string(), e))
}

/// Serves the public and admin routers until `shutdown` resolves, then
/// finishes in-flight requests.
pub async fn serve(
    state: Arc<TargetState>,
    public: TcpListener,
    admin_listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let (tx, rx) = tokio::sync::watch::channel(false);
    let wait = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|stop| *stop).await;
    };
    let public_app = router(state.clone()).into_make_service_with_connect_info::<SocketAddr>();
    let admin_app =
        admin::router(state.clone()).into_make_service_with_connect_info::<SocketAddr>();
    let a = axum::serve(public, public_app).with_graceful_shutdown(wait(rx.clone()));
    let b = axum::serve(admin_listener, admin_app).with_graceful_shutdown(wait(rx));
    let sweeper = tokio::spawn(sweep_forever(state));
    tokio::spawn(async move {
        shutdown.await;
        let _ = tx.send(true);
    });
    let result = tokio::try_join!(a, b).map(|_| ());
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
/// ```no_run
/// # async fn demo() -> sessionrange::Result<()> {
/// use sessionrange::target::TargetServer;
///
/// let target = TargetServer::start().await?;
/// let page = reqwest::get(target.url("/login")).await;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct TargetServer {
    state: Arc<TargetState>,
    public: SocketAddr,
    admin: SocketAddr,
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

    /// Binds both listeners on `127.0.0.1:0` and starts serving.
    pub async fn start(self) -> Result<TargetServer> {
        let trace = match &self.trace {
            Some(p) => TraceLog::open(p)?,
            None => TraceLog::in_memory(),
        };
        let state = TargetState::new(
            self.config.unwrap_or_default(),
            self.clock.unwrap_or_else(Clock::system),
            self.geo.unwrap_or_else(GeoDb::embedded),
            trace,
        )?;
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
        let (public, admin) = (bind(loopback).await?, bind(loopback).await?);
        let addrs = (public.local_addr(), admin.local_addr());
        let (Ok(public_addr), Ok(admin_addr)) = addrs else {
            return Err(Error::config("addr", "could not read the bound addresses"));
        };
        let (stop, stopped) = oneshot::channel();
        let shutdown = async move {
            let _ = stopped.await;
        };
        let task = tokio::spawn(serve(state.clone(), public, admin, shutdown));
        Ok(Self {
            state,
            public: public_addr,
            admin: admin_addr,
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
