//! Black-box tests of the mock target over real loopback sockets.

mod admin;
mod attempts;
mod bad_input;
mod balancer;
#[cfg(feature = "cli")]
mod challenge;
mod cli;
mod cookie_flow;
mod curl;
#[cfg(feature = "cli")]
mod descriptors;
mod direct;
mod expiry;
mod h2_abuse;
mod helpers;
mod hostile;
mod identity;
mod jwt_flow;
#[path = "../common/lines.rs"]
mod lines;
mod login;
mod login_flood;
mod pool;
mod pool_clients;
mod pool_edges;
#[path = "../common/python.rs"]
mod python;
#[path = "../common/redis.rs"]
mod redis;
mod scenario_traps;
mod sensor;
mod shared_store;
mod slow_peers;
mod surfaces;
mod tls;
mod trace;
