//! Black-box tests of the risk engine: rules, lifetimes, escalation, replay and properties.

mod helpers;
mod lifecycle;
mod properties;
mod rules;
