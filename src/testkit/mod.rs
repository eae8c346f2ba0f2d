//! The test kit: proptest strategies, trace invariants and an in-process range on a paused clock, for fuzzing a Rust client in its own tests.
//!
//! Behind the `testkit` feature. It has three parts:
//!
//! - [`strategies`]: realistic inputs (addresses from the geo fixtures
//!   with their ASN and class, real User-Agents with the JA4 of the same
//!   stack, request contexts, drift and fault sequences, and the
//!   scenario variants `sessionrange fuzz` draws);
//! - [`invariants`]: checks over a trace, each violation naming its
//!   session and decision ([`Invariant::ALL`]);
//! - [`Kit`]: a scenario's whole stack (target, proxy pool, timeline,
//!   CA) started in process on tokio's paused clock, a client function
//!   run against it, graded as `sessionrange run` grades, with its trace.
//!   The reference client's 2.3 s crawl of `baseline` takes 12 ms
//!   (`cargo bench --bench testkit`).
//!
//! The strategies feed the engine as well as the range; here, a session
//! seen from another network is never let through by the default rules:
//!
//! ```
//! use proptest::prelude::*;
//! use sessionrange::testkit::strategies::{Change, addresses, contexts};
//! use sessionrange::{Engine, EngineConfig, SessionId, Timestamp, Verdict};
//!
//! proptest!(|(born in contexts(), to in addresses())| {
//!     let engine = Engine::new(EngineConfig::default())?;
//!     let (sid, now) = (SessionId::from_u128(1), Timestamp::from_secs(1_000));
//!     engine.login(sid, "alice", born.clone(), vec![], now);
//!     let moved = Change::Address(to).apply(&born);
//!     let verdict = engine.decide(sid, moved.clone(), now.plus(std::time::Duration::from_secs(1))).verdict;
//!     if moved.network.asn != born.network.asn {
//!         prop_assert_ne!(verdict, Verdict::Allow);
//!     }
//! });
//! # Ok::<(), sessionrange::Error>(())
//! ```
//!
//! README's "The Rust test kit" has a whole client fuzzed on the range.

pub mod invariants;
mod range;
pub mod strategies;

pub use invariants::{Invariant, Trace, Violation};
pub use range::{Kit, KitEnv, KitRun};
