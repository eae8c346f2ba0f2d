//! `sessionrange fuzz`: scenario variants drawn around a base scenario, a client run on each, and the first failure shrunk to a scenario file that replays it.
//!
//! [`search`] is the pure search and shrink over proptest strategies,
//! [`space`] the variants and the grade that keeps each honest, [`run`]
//! the shell that runs the client on them.

#[cfg(feature = "cli")]
pub mod run;
pub mod search;
pub mod space;
