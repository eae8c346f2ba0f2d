//! The mock target: an axum server around the risk engine.
//!
//! Every protected request goes through `guard::authorize`: bearer JWT or
//! session cookie, then the client's address (with trusted-proxy headers),
//! its network, its headers, then the engine's verdict. Allowed requests get
//! real records; every other verdict gets the refusal its scenario chose.
//! README's "client contract" lists the routes.

pub(crate) mod admin;
pub(crate) mod api;
pub(crate) mod attempts;
mod challenge;
pub(crate) mod client_ip;
pub mod config;
pub(crate) mod conn;
#[cfg(feature = "cli")]
mod dashboard;
pub mod dashboard_keys;
pub(crate) mod exit_bans;
pub(crate) mod guard;
pub(crate) mod handlers;
mod head_clock;
mod head_tap;
mod issued;
mod listeners;
pub(crate) mod login;
pub mod metrics;
mod opening;
mod page_cache;
pub(crate) mod pages;
pub(crate) mod peer;
pub(crate) mod respond;
mod server;
pub mod shared;
mod shed;
pub mod state;
mod stores;
mod streams;
pub mod trace_file;
pub mod trace_log;

pub use config::TargetConfig;
pub use server::{Addrs, Listeners, bind, check_loopback, raise_descriptor_limit, router, serve};
pub use state::TargetState;
pub use trace_file::{Dropped, TraceLimit};
pub use trace_log::TraceLog;

/// The guard alone, outside the router, for `benches/pipeline.rs`: not
/// part of the library's interface.
#[doc(hidden)]
pub mod bench {
    pub use super::guard::authorize;
    pub use super::peer::{ContextMemo, Peer};
}
