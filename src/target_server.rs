//! `TargetServer`: a target alone (no proxy pool, no timeline) on random loopback ports, for Rust tests.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::clock::Clock;
use crate::engine::Decision;
use crate::error::Result;
use crate::geo::GeoDb;
use crate::pool::{PoolConfig, Upstream};
use crate::range::{Range, RangeBuilder};
use crate::site::{TargetConfig, TargetState, TraceLog};

/// A target on random loopback ports, for tests: a [`Range`] with no
/// proxy pool and no timeline. It stops when dropped.
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
    range: Range,
}

/// Configures a [`TargetServer`] before starting it: a [`RangeBuilder`]
/// with no pool, whose records keep the configuration's own salt.
#[derive(Debug)]
#[must_use = "a builder does nothing until `start` is called"]
pub struct TargetServerBuilder {
    range: RangeBuilder,
    trace: Option<PathBuf>,
}

impl Default for TargetServerBuilder {
    fn default() -> Self {
        let config = TargetConfig::default();
        let salt = config.dataset.salt;
        Self {
            range: RangeBuilder::new(config, PoolConfig::default()).seed(salt),
            trace: None,
        }
    }
}

impl TargetServerBuilder {
    /// Serves this configuration instead of the defaults.
    pub fn config(mut self, config: TargetConfig) -> Self {
        self.range = self.range.target(config);
        self
    }

    /// Appends the trace to this file as well as keeping it in memory.
    pub fn trace(mut self, path: impl Into<PathBuf>) -> Self {
        self.trace = Some(path.into());
        self
    }

    /// See [`RangeBuilder::clock`].
    pub fn clock(self, clock: Clock) -> Self {
        self.map(|r| r.clock(clock))
    }

    /// See [`RangeBuilder::geo`].
    pub fn geo(self, geo: GeoDb) -> Self {
        self.map(|r| r.geo(geo))
    }

    /// See [`RangeBuilder::head_timeout`].
    pub fn head_timeout(self, timeout: Duration) -> Self {
        self.map(|r| r.head_timeout(timeout))
    }

    /// See [`RangeBuilder::idle_timeout`].
    pub fn idle_timeout(self, timeout: Duration) -> Self {
        self.map(|r| r.idle_timeout(timeout))
    }

    fn map(mut self, f: impl FnOnce(RangeBuilder) -> RangeBuilder) -> Self {
        self.range = f(self.range);
        self
    }

    /// Binds the four listeners on `127.0.0.1:0` and starts serving. The
    /// records are salted with the configuration's own salt.
    pub async fn start(self) -> Result<TargetServer> {
        let mut range = self.range;
        if let Some(path) = &self.trace {
            range = range.trace(TraceLog::open(path)?);
        }
        Ok(TargetServer {
            range: range.start().await?,
        })
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

    /// The public URL of `path`, such as `http://127.0.0.1:41234/login`.
    pub fn url(&self, path: &str) -> String {
        self.range.url(path)
    }

    /// The public listener's address.
    pub fn addr(&self) -> SocketAddr {
        self.range.addrs().public
    }

    /// The HTTPS URL of `path`, such as `https://127.0.0.1:41235/login`;
    /// clients must trust [`TargetServer::ca_pem`].
    pub fn https_url(&self, path: &str) -> String {
        self.range.https_url(path)
    }

    /// The HTTPS listener's address.
    pub fn https_addr(&self) -> SocketAddr {
        self.range.addrs().https
    }

    /// This run's CA certificate, PEM.
    pub fn ca_pem(&self) -> &str {
        self.range.ca_pem()
    }

    /// The admin URL of `path`.
    pub fn admin_url(&self, path: &str) -> String {
        self.range.admin_url(path)
    }

    /// The admin API's bearer token.
    pub fn admin_token(&self) -> &str {
        self.range.admin_token()
    }

    /// The admin listener's address.
    pub fn admin(&self) -> SocketAddr {
        self.range.addrs().admin
    }

    /// What a proxy pool needs to reach this target.
    pub fn upstream(&self) -> Upstream {
        self.range.upstream()
    }

    /// Every decision so far, in trace order.
    pub fn events(&self) -> Vec<Decision> {
        self.range.events()
    }

    /// The shared state, for assertions on the engine or the dataset.
    pub fn state(&self) -> &Arc<TargetState> {
        self.range.state()
    }
}
