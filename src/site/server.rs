//! Running a target: the public router, the listeners, and `TargetServer` for Rust tests.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use tokio::net::TcpListener;

use crate::error::{Error, Result};
use crate::site::config::Surface;
use crate::site::metrics::Listener;
use crate::site::state::TargetState;
use crate::site::{admin, api, challenge, exit_bans, handlers, listeners, pages};

/// Largest request body the target reads: logins and token requests are small.
const MAX_BODY: usize = 64 * 1024;

/// The public router: the site surface clients see. The admin API is not
/// part of it, whatever the path. Routes of a surface the scenario leaves
/// out are not routed, so they answer `404` like any unknown path (and are
/// traced as refused, so a card can say why a client got nothing).
pub fn router(state: Arc<TargetState>) -> Router {
    let mut app = Router::new()
        .route("/", get(handlers::landing))
        .route(pages::SENSOR_SCRIPT, get(handlers::sensor_script))
        .route(
            crate::auth::clearance::VERIFY_ROUTE,
            post(challenge::verify),
        )
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
/// `Range` calls it at start.
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

/// The bound addresses of a target's four listeners.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Addrs {
    /// The site over plain HTTP, for clients.
    pub public: SocketAddr,
    /// The site over TLS (HTTP/1.1 and h2), with the ClientHello captured.
    pub https: SocketAddr,
    /// The admin API, behind the admin token.
    pub admin: SocketAddr,
    /// The proxy pool's way in: PROXY v2 headers from the pool only.
    pub upstream: SocketAddr,
}

/// The four listeners of a target.
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
    /// Binds the four listeners on loopback: public and admin where asked
    /// (port 0 picks a free port), HTTPS and the pool's upstream on free
    /// ports of the public address.
    pub async fn bind(public: SocketAddr, admin: SocketAddr) -> Result<Self> {
        let any = SocketAddr::new(public.ip(), 0);
        Ok(Self {
            public: bind(public).await?,
            admin: bind(admin).await?,
            pool: bind(any).await?,
            https: bind(any).await?,
        })
    }

    /// The bound addresses.
    pub fn addrs(&self) -> Result<Addrs> {
        Ok(Addrs {
            public: addr(&self.public)?,
            https: addr(&self.https)?,
            admin: addr(&self.admin)?,
            upstream: addr(&self.pool)?,
        })
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
    let timeline = tokio::spawn(timeline_forever(state.clone()));
    let sweeper = tokio::spawn(sweep_forever(state));
    tokio::spawn(async move {
        shutdown.await;
        let _ = tx.send(true);
    });
    let result = tokio::try_join!(public, admin, pool, https).map(|_| ());
    sweeper.abort();
    timeline.abort();
    result
}

/// Applies the timeline's events on a shared store, where applying one
/// waits on Redis: the request that fired it is not held up.
async fn timeline_forever(state: Arc<TargetState>) {
    loop {
        state.due_wake.notified().await;
        for event in state.take_due() {
            apply_until_done(&state, &event).await;
        }
    }
}

/// Applies `event`, again a second later while it fails. A store that
/// answers and still fails it three times (a record edited into
/// something that does not read back) would fail it every time: the event
/// is traced as fired, with what it could not do, and the events after it
/// go on. While the store cannot be reached, it waits for it.
async fn apply_until_done(state: &TargetState, event: &crate::timeline::TimelineEvent) {
    let account = event.account.as_deref();
    let mut answered = 0;
    loop {
        let now = state.clock.now();
        let Err(failed) = state.apply(event.action, account, now).await else {
            return;
        };
        state.metrics.store_unavailable();
        if state.store_answers().await {
            answered += 1;
        }
        if answered == 3 {
            let detail = format!("not applied whole: {}", failed.0);
            state.record_fired(event.action, now, detail);
            return;
        }
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    }
}

/// Forgets expired sessions and tokens once a minute.
async fn sweep_forever(state: Arc<TargetState>) {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(60));
    loop {
        tick.tick().await;
        state.sweep(state.clock.now());
    }
}
