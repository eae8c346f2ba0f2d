//! sessionrange: a test range for stateful HTTP clients.
//!
//! The heart of the crate is a deterministic session risk engine. At login
//! it records a session's birth context (address, network, client
//! fingerprints, companion cookies); on every request it compares the live
//! context with it and returns a [`Verdict`] with a stable [`Reason`] code.
//! The engine is synchronous, does no I/O and takes `now` as an argument,
//! so every decision can be replayed from its trace.
//!
//! # Quick start
//!
//! ```
//! use sessionrange::{Engine, EngineConfig, GeoDb, Reason, RequestContext, SessionId, Timestamp, Verdict};
//!
//! let geo = GeoDb::embedded();
//! let engine = Engine::new(EngineConfig::default())?;
//! let from = |ip: &str| {
//!     let ip = ip.parse().expect("address");
//!     RequestContext::from_headers(Some(ip), geo.lookup(ip), [("user-agent", "scraper/1.0")])
//! };
//! let sid = SessionId::from_u128(0x5e55);
//! let now = Timestamp::from_secs(1_790_000_000);
//!
//! // Born on a Comcast line (127.0.1.0/24 in the fixtures)...
//! engine.login(sid, "alice", from("127.0.1.10"), vec![], now);
//! assert_eq!(engine.decide(sid, from("127.0.1.10"), now).verdict, Verdict::Allow);
//! // ...and presented from Amazon (127.0.2.0/24): the session dies.
//! let d = engine.decide(sid, from("127.0.2.10"), now);
//! assert_eq!(d.verdict, Verdict::Revoke(Reason::AsnDrift));
//! # Ok::<(), sessionrange::Error>(())
//! ```
//!
//! # Layout
//!
//! The functional core first, then the shells around it: [`engine`],
//! [`rules`], [`session`], [`context`], [`verdict`] and [`config`] are the
//! risk engine (pure, `now` passed in); [`site`] is the mock target (axum
//! handlers, listeners, the trace); [`pool`] the proxy pool; [`runner`]
//! runs a client and reaps it; [`grade`] turns the trace's summary into
//! metrics and criteria (pure); [`report`] writes the card, JSON, JUnit and
//! Markdown. [`fingerprint`], [`tls`], [`geo`], [`auth`] and [`dataset`]
//! serve the site; [`client`] is the reference client behind
//! `sessionrange client`. A test needs only the types re-exported here:
//! [`TargetServer`], [`TargetConfig`], [`ProxyPool`], [`PoolConfig`],
//! [`Scenario`], [`Clock`].

pub mod auth;
#[cfg(feature = "cli")]
pub mod client;
pub mod clock;
pub mod config;
pub mod context;
pub mod dataset;
pub mod engine;
pub mod error;
pub mod fingerprint;
pub mod geo;
pub mod grade;
mod intern;
pub mod network;
pub mod pool;
pub mod proxy_protocol;
#[cfg(feature = "cli")]
pub mod report;
pub mod rules;
#[cfg(feature = "cli")]
pub mod runner;
pub mod scenario;
pub mod session;
pub mod site;
mod store;
pub mod timeline;
pub mod tls;
mod toml_file;
pub mod trace;
pub mod verdict;

pub use clock::{Clock, Timestamp};
pub use config::EngineConfig;
pub use context::{BirthContext, RequestContext};
pub use engine::{Decision, DecisionKind, Engine, replay};
pub use error::{Error, Result};
pub use geo::GeoDb;
pub use network::{CountryCode, Location, NetworkClass, NetworkInfo};
pub use pool::{PoolConfig, ProxyPool};
pub use scenario::Scenario;
pub use session::{Account, Session, SessionId, SessionState};
pub use site::{TargetConfig, TargetServer};
pub use verdict::{Action, Evidence, Firing, Reason, RuleName, Verdict};
