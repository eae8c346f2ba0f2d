//! Addresses the target refuses outright: exits banned by the pool's `banned` fault.

use std::collections::HashSet;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::RwLock;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;

use crate::target::peer::Peer;
use crate::target::state::TargetState;
use crate::target::{guard, respond};

/// The banned addresses. Empty almost always, so the check is one atomic load.
#[derive(Debug, Default)]
pub struct ExitBans {
    any: AtomicBool,
    ips: RwLock<HashSet<IpAddr>>,
}

impl ExitBans {
    /// Bans `ip`; returns whether it was not banned before.
    pub fn ban(&self, ip: IpAddr) -> bool {
        let mut ips = self.ips.write().unwrap_or_else(|e| e.into_inner());
        self.any.store(true, Ordering::Release);
        ips.insert(ip)
    }

    /// Whether `ip` is banned.
    pub fn contains(&self, ip: IpAddr) -> bool {
        self.any.load(Ordering::Acquire)
            && self
                .ips
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .contains(&ip)
    }

    /// Lifts every ban.
    pub fn clear(&self) {
        let mut ips = self.ips.write().unwrap_or_else(|e| e.into_inner());
        ips.clear();
        self.any.store(false, Ordering::Release);
    }

    /// The banned addresses, sorted.
    pub fn list(&self) -> Vec<IpAddr> {
        let ips = self.ips.read().unwrap_or_else(|e| e.into_inner());
        let mut list: Vec<IpAddr> = ips.iter().copied().collect();
        list.sort();
        list
    }
}

/// Middleware: a request from a banned address gets the 403 block page
/// with code `IP_BANNED`, whatever the route.
pub(crate) async fn refuse_banned(
    State(st): State<Arc<TargetState>>,
    peer: Peer,
    req: Request,
    next: Next,
) -> Response {
    if st.exit_bans.any.load(Ordering::Acquire) {
        let who = guard::client(&st, &peer, req.headers());
        // Behind the pool, the exit itself is judged too: a forwarding
        // header must not lift an exit's ban.
        let exit = peer.via_pool.then_some(peer.addr.ip());
        if st.exit_bans.contains(who.ip) || exit.is_some_and(|ip| st.exit_bans.contains(ip)) {
            st.metrics.ip_banned();
            return respond::ip_banned(respond::wants_json(req.headers()));
        }
    }
    next.run(req).await
}
