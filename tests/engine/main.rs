//! Black-box tests of the risk engine: rules, lifetimes, escalation, replay, properties and the JA4 pin on real hellos.

mod helpers;
mod lifecycle;
mod login_gate;
mod properties;
mod rules;
mod tls_pin;
