//! The mock proxy pool: loopback forward proxies whose exits carry network identities.
//!
//! Each node is a real HTTP forward proxy (absolute-form requests and
//! CONNECT tunnels, optional Basic auth). It reaches the target through the
//! target's pool listener and opens every upstream connection with a PROXY
//! v2 header naming the exit address, so the target judges the request by
//! the exit's ASN, class and country. Static exits have one address each; a
//! rotating gateway draws a new exit per connection, or keeps one per
//! sticky session (`user-session-<id>`) until its TTL or idle TTL runs out.
//! Scripted faults reach the client as the real socket or HTTP errors.

mod accept;
pub mod config;
pub mod exits;
pub mod faults;
mod forward;
mod node;
mod route;
mod stream;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::task::JoinHandle;

use crate::clock::Timestamp;
use crate::error::Result;
use crate::geo::GeoDb;
use crate::proxy_protocol;
use crate::site::Addrs;
use crate::site::state::TargetState;

pub use crate::trace::proxy::{ProxyEvent, ProxyTag, ProxyWhat};
pub use config::{ExitConfig, FaultConfig, FaultKind, GatewayConfig, PoolConfig};
pub use exits::{ExitInfo, RotateCause};

use exits::ExitDraw;
use faults::FaultPlan;
use node::{Exits, Node};

/// How long a pool waits on its clients.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timeouts {
    /// To send a complete first request head; then `408`.
    pub head: Duration,
    /// With no byte moving either way on a connection or tunnel; then it
    /// is closed, so idle clients hold nothing.
    pub idle: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            head: Duration::from_secs(10),
            idle: Duration::from_secs(120),
        }
    }
}

/// What a pool needs from the target: where to connect, the secret that
/// vouches for its PROXY headers, the trace, the clock, the geo database
/// and the exit ban list.
#[derive(Clone, Debug)]
pub struct Upstream {
    state: Arc<TargetState>,
    public: SocketAddr,
    https: SocketAddr,
    /// The pool listeners of every instance, this one first.
    pools: Arc<[SocketAddr]>,
    /// The next instance to deal a connection to.
    next: Arc<std::sync::atomic::AtomicUsize>,
}

impl Upstream {
    /// The target serving `state` on `addrs`: requests for its public or
    /// HTTPS address go to its upstream listener (which tells TLS apart).
    pub fn new(state: Arc<TargetState>, addrs: &Addrs) -> Self {
        Self {
            state,
            public: addrs.public,
            https: addrs.https,
            pools: Arc::from([addrs.upstream]),
            next: Arc::default(),
        }
    }

    /// Deals upstream connections out in turn to this target's pool
    /// listener and `others` (other instances on one shared store).
    #[must_use]
    pub fn spread_over(mut self, others: impl IntoIterator<Item = SocketAddr>) -> Self {
        let mut pools = self.pools.to_vec();
        pools.extend(others);
        self.pools = Arc::from(pools);
        self
    }

    /// The target's pool listener, which only accepts PROXY v2 connections.
    pub fn pool_addr(&self) -> SocketAddr {
        self.pools[0]
    }

    /// The pool listener behind `host:port`, if that names the target.
    fn route(&self, host: &str, port: u16) -> Option<SocketAddr> {
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let named = host.eq_ignore_ascii_case("localhost")
            || host
                .parse::<IpAddr>()
                .is_ok_and(|ip| ip == self.public.ip());
        let ports = [self.public.port(), self.https.port()];
        (named && ports.contains(&port)).then(|| {
            let turn = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            self.pools[turn % self.pools.len()]
        })
    }

    /// Opens an upstream connection and sends the PROXY header for `exit`.
    async fn connect(
        &self,
        exit: IpAddr,
        port: u16,
        pool: SocketAddr,
    ) -> std::io::Result<TcpStream> {
        let mut stream = TcpStream::connect(pool).await?;
        stream.set_nodelay(true)?;
        let header = proxy_protocol::encode(
            SocketAddr::new(exit, port),
            self.public,
            &self.state.pool_secret,
        );
        stream.write_all(&header).await?;
        Ok(stream)
    }

    fn now(&self) -> Timestamp {
        self.state.clock.now()
    }

    fn geo(&self) -> &GeoDb {
        &self.state.geo
    }

    fn ban(&self, ip: IpAddr) -> bool {
        self.state.exit_bans.ban(ip)
    }

    fn record(&self, node: &str, conn: u64, what: ProxyWhat) {
        let event = ProxyEvent::new(self.now(), node, conn, what);
        self.state.trace.record_value(&event);
    }
}

/// One proxy URL of a running pool.
#[derive(Clone, Debug, PartialEq)]
pub struct ProxyUrl {
    /// The exit's name, or `gateway`.
    pub name: String,
    /// `http://user:pass@127.0.0.1:PORT`, ready for `curl -x` or any client.
    pub url: String,
    /// The node's listening address.
    pub addr: SocketAddr,
    /// The fixed exit of a static node; `None` for the gateway.
    pub exit: Option<ExitInfo>,
}

/// A running proxy pool. It stops when dropped.
#[derive(Debug)]
pub struct ProxyPool {
    exits: Vec<ProxyUrl>,
    gateway: Option<ProxyUrl>,
    user: Option<(String, String)>,
    nodes: Vec<Arc<Node>>,
    tasks: Vec<JoinHandle<()>>,
}

impl ProxyPool {
    /// Starts every node of `config` on free loopback ports.
    pub async fn start(config: &PoolConfig, upstream: Upstream) -> Result<Self> {
        Self::start_with(config, upstream, Timeouts::default()).await
    }

    /// Starts the pool with these client timeouts.
    pub async fn start_with(
        config: &PoolConfig,
        upstream: Upstream,
        timeouts: Timeouts,
    ) -> Result<Self> {
        config.validate("pool")?;
        let auth = config
            .user
            .clone()
            .map(|u| (u, config.password.clone().unwrap_or_default()));
        let started = upstream.now();
        let mut pool = Self {
            exits: Vec::new(),
            gateway: None,
            user: auth.clone(),
            nodes: Vec::new(),
            tasks: Vec::new(),
        };
        let loopback = SocketAddr::from(([127, 0, 0, 1], 0));
        for exit in &config.exits {
            let seed = node_seed(config.seed, &exit.name);
            let plan = FaultPlan::new(exit.faults.clone(), seed, started);
            let node = Node::new(
                exit.name.clone(),
                Exits::Static(exit.ip),
                auth.clone(),
                plan,
                upstream.clone(),
                timeouts,
            );
            let url = pool.spawn(node, loopback).await?;
            let info = ExitInfo::lookup(exit.ip, upstream.geo());
            pool.exits.push(ProxyUrl {
                exit: Some(info),
                ..url
            });
        }
        if let Some(g) = &config.gateway {
            let seed = node_seed(config.seed, "gateway");
            let exits = Node::gateway_exits(ExitDraw::new(g)?, g.sticky_ttl, g.idle_ttl, seed ^ 1);
            let plan = FaultPlan::new(g.faults.clone(), seed, started);
            let node = Node::new(
                "gateway".into(),
                exits,
                auth.clone(),
                plan,
                upstream.clone(),
                timeouts,
            );
            pool.gateway = Some(pool.spawn(node, loopback).await?);
        }
        Ok(pool)
    }

    async fn spawn(&mut self, node: Node, addr: SocketAddr) -> Result<ProxyUrl> {
        let listener = crate::site::bind(addr).await?;
        let addr = listener
            .local_addr()
            .map_err(|e| crate::Error::io(addr.to_string(), e))?;
        let url = ProxyUrl {
            name: node.name.clone(),
            url: proxy_url(self.user.as_ref(), None, addr),
            addr,
            exit: None,
        };
        let node = Arc::new(node);
        self.tasks
            .push(tokio::spawn(accept::run(Arc::clone(&node), listener)));
        self.nodes.push(node);
        Ok(url)
    }

    /// The static exits, in configuration order.
    pub fn exits(&self) -> &[ProxyUrl] {
        &self.exits
    }

    /// The static exit named `name`.
    pub fn exit(&self, name: &str) -> Option<&ProxyUrl> {
        self.exits.iter().find(|e| e.name == name)
    }

    /// The rotating gateway.
    pub fn gateway(&self) -> Option<&ProxyUrl> {
        self.gateway.as_ref()
    }

    /// The gateway URL with a sticky session: `user-session-<id>` as the
    /// username (`session-<id>` alone when the pool has no credentials).
    pub fn sticky_url(&self, session: &str) -> Option<String> {
        let g = self.gateway.as_ref()?;
        Some(proxy_url(self.user.as_ref(), Some(session), g.addr))
    }

    /// Every proxy URL: static exits first, then the gateway.
    pub fn urls(&self) -> Vec<&ProxyUrl> {
        self.exits.iter().chain(&self.gateway).collect()
    }
}

impl ProxyPool {
    /// Stops every node and the connections it serves, as dropping the
    /// pool does; a closed pool accepts nothing more.
    pub fn close(&self) {
        for node in &self.nodes {
            node.stop.send_replace(true);
        }
        for task in &self.tasks {
            task.abort();
        }
    }
}

impl Drop for ProxyPool {
    fn drop(&mut self) {
        self.close();
    }
}

/// A per-node seed: the pool seed mixed with the node's name (FNV-1a).
fn node_seed(seed: u64, name: &str) -> u64 {
    name.bytes().fold(seed ^ 0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// `http://[user[-session-id][:pass]@]addr`, percent-encoding the credentials.
fn proxy_url(auth: Option<&(String, String)>, session: Option<&str>, addr: SocketAddr) -> String {
    let user = match (auth, session) {
        (Some((u, _)), Some(s)) => format!("{u}-session-{s}"),
        (Some((u, _)), None) => u.clone(),
        (None, Some(s)) => format!("session-{s}"),
        (None, None) => return format!("http://{addr}"),
    };
    let pass = auth
        .map(|(_, p)| format!(":{}", encode(p)))
        .unwrap_or_default();
    format!("http://{}{pass}@{addr}", encode(&user))
}

/// Percent-encodes everything but RFC 3986 unreserved characters.
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_carry_encoded_credentials_and_sticky_ids() {
        let addr: SocketAddr = "127.0.0.1:3128".parse().expect("addr");
        let auth = ("scraper".to_owned(), "p@ss:w".to_owned());
        assert_eq!(proxy_url(None, None, addr), "http://127.0.0.1:3128");
        assert_eq!(
            proxy_url(Some(&auth), None, addr),
            "http://scraper:p%40ss%3Aw@127.0.0.1:3128"
        );
        assert_eq!(
            proxy_url(Some(&auth), Some("a1"), addr),
            "http://scraper-session-a1:p%40ss%3Aw@127.0.0.1:3128"
        );
        assert_eq!(
            proxy_url(None, Some("a1"), addr),
            "http://session-a1@127.0.0.1:3128"
        );
    }

    #[test]
    fn node_seeds_differ_by_name_and_repeat() {
        assert_eq!(node_seed(7, "a"), node_seed(7, "a"));
        assert_ne!(node_seed(7, "a"), node_seed(7, "b"));
        assert_ne!(node_seed(7, "a"), node_seed(8, "a"));
    }
}
