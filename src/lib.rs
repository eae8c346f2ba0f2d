//! sessionrange: a test range for stateful HTTP clients.
//!
//! The heart of the crate is a deterministic session risk engine: at login it
//! records a session's birth context, and on every request it compares the
//! live context with it and returns a [`Verdict`].

pub mod clock;
pub mod error;
pub mod network;

pub use clock::{Clock, Timestamp};
pub use error::{Error, Result};
pub use network::{CountryCode, Location, NetworkClass, NetworkInfo};
pub mod geo;
pub use geo::GeoDb;
pub mod config;
pub mod context;
pub mod engine;
mod intern;
pub mod rules;
pub mod session;
mod store;
pub mod verdict;

pub use config::EngineConfig;
pub use context::{BirthContext, RequestContext};
pub use engine::{Decision, DecisionKind, Engine, replay};
pub use session::{Account, Session, SessionId, SessionState};
pub use verdict::{Action, Evidence, Firing, Reason, RuleName, Verdict};
