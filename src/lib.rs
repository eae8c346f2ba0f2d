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
