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
//! The functional core first, then the shells around it, each depending
//! only on those before it:
//!
//! - **engine core** (pure, `now` passed in): [`engine`], [`rules`] and
//!   [`config`], with the session, context and verdict types re-exported
//!   here ([`Session`], [`RequestContext`], [`Verdict`], ...);
//! - [`trace`]: every trace line type and the one parser of them;
//! - [`grade`]: the trace's summary turned into metrics and criteria (pure);
//! - [`site`]: the mock target (axum router, listeners, the trace log);
//!   [`fingerprint`], [`tls`], [`geo`], [`auth`] and [`dataset`] serve it;
//! - [`pool`]: the proxy pool in front of the site;
//! - [`Range`]: one scenario's whole stack started by one call
//!   ([`TargetServer`] is a range without a pool);
//! - `runner`: runs a client against a range, reaps it, grades it;
//! - `report`: the card, JSON, JUnit and Markdown;
//! - `client`: the reference client behind `sessionrange client`.
//!
//! The last three, with the command line, come with the default `cli`
//! feature; a test crate can leave it out (`default-features = false`).
//!
//! A test needs only the types re-exported here: [`Range`],
//! [`TargetServer`], [`TargetConfig`], [`ProxyPool`], [`PoolConfig`],
//! [`Scenario`], [`Clock`].

pub mod auth;
#[cfg(feature = "cli")]
pub mod client;
mod clock;
pub mod config;
mod context;
pub mod contract;
pub mod dataset;
pub mod engine;
mod error;
pub mod fingerprint;
#[cfg(any(feature = "cli", feature = "testkit"))]
pub mod fuzz;
pub mod geo;
pub mod grade;
mod intern;
mod network;
pub mod pool;
pub mod proxy_protocol;
mod range;
#[cfg(feature = "cli")]
pub mod report;
pub mod rules;
#[cfg(feature = "cli")]
pub mod runner;
pub mod scenario;
mod session;
pub mod site;
mod store;
mod target_server;
#[cfg(feature = "testkit")]
pub mod testkit;
pub mod timeline;
pub mod tls;
mod toml_file;
pub mod trace;
mod verdict;

pub use clock::{Clock, Timestamp};
pub use config::EngineConfig;
pub use context::{BirthContext, RequestContext};
pub use engine::{Decision, DecisionKind, Engine, replay};
pub use error::{Error, Result};
pub use geo::GeoDb;
pub use grade::Outcome;
pub use network::{CountryCode, Location, NetworkClass, NetworkInfo};
pub use pool::{PoolConfig, ProxyPool};
pub use range::{Addrs, Range, RangeBuilder};
pub use scenario::Scenario;
pub use session::{Account, Session, SessionId, SessionState};
pub use site::TargetConfig;
pub use target_server::{TargetServer, TargetServerBuilder};
pub use verdict::{Action, Evidence, Firing, Reason, RuleName, Verdict};

/// README's Rust blocks, run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
