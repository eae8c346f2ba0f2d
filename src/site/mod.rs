//! The mock target: an axum server around the risk engine.
//!
//! Every protected request goes through [`guard::authorize`]: bearer JWT or
//! session cookie, then the client's address (with trusted-proxy headers),
//! its network, its headers, then the engine's verdict. Allowed requests get
//! real records; every other verdict gets the refusal its scenario chose.
//! README's "client contract" lists the routes.

pub mod admin;
pub mod api;
pub mod attempts;
pub mod client_ip;
pub mod config;
pub(crate) mod conn;
pub mod exit_bans;
pub mod guard;
pub mod handlers;
mod head_clock;
mod head_tap;
mod issued;
mod listeners;
pub mod login;
pub mod metrics;
mod opening;
pub mod pages;
pub mod peer;
pub mod respond;
mod server;
mod shed;
pub mod state;
mod streams;
pub mod trace_file;
pub mod trace_log;

pub use config::TargetConfig;
pub use server::{Addrs, Listeners, bind, check_loopback, raise_descriptor_limit, router, serve};
pub use state::TargetState;
pub use trace_file::{Dropped, TraceLimit};
pub use trace_log::TraceLog;
