//! Requests the target refuses outright: exits banned by the pool's `banned` fault, and direct access where the scenario has a pool.

use std::borrow::Cow;
use std::collections::HashSet;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use std::future::{Ready, ready};
use std::task::{Context, Poll};

use axum::extract::{MatchedPath, Request};
use axum::response::Response;
use futures_util::future::Either;
use parking_lot::RwLock;
use tower::{Layer, Service};

use crate::site::attempts::{self, RefusalReason};
use crate::site::peer::Peer;
use crate::site::state::TargetState;
use crate::site::{guard, respond};

/// The fingerprint echo, open to direct requests: it shows what the target sees.
pub(crate) const FINGERPRINT_ROUTE: &str = "/__range/fingerprint";

/// The banned addresses. Empty almost always, so the check is one atomic load.
#[derive(Debug, Default)]
pub struct ExitBans {
    any: AtomicBool,
    ips: RwLock<HashSet<IpAddr>>,
}

impl ExitBans {
    /// Bans `ip`; returns whether it was not banned before.
    pub fn ban(&self, ip: IpAddr) -> bool {
        let mut ips = self.ips.write();
        self.any.store(true, Ordering::Release);
        ips.insert(ip)
    }

    /// Whether `ip` is banned.
    pub fn contains(&self, ip: IpAddr) -> bool {
        self.any.load(Ordering::Acquire) && self.ips.read().contains(&ip)
    }

    /// Lifts every ban.
    pub fn clear(&self) {
        let mut ips = self.ips.write();
        ips.clear();
        self.any.store(false, Ordering::Release);
    }

    /// The banned addresses, sorted.
    pub fn list(&self) -> Vec<IpAddr> {
        let ips = self.ips.read();
        let mut list: Vec<IpAddr> = ips.iter().copied().collect();
        list.sort();
        list
    }
}

/// The layer that refuses banned addresses on every route.
#[derive(Clone, Debug)]
pub(crate) struct RefuseBannedLayer(pub(crate) Arc<TargetState>);

impl<S> Layer<S> for RefuseBannedLayer {
    type Service = RefuseBanned<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RefuseBanned {
            inner,
            st: Arc::clone(&self.0),
        }
    }
}

/// A request from a banned address gets the 403 block page with code
/// `IP_BANNED`, and one that bypassed the pool where the scenario refuses
/// that gets it with `DIRECT_ACCESS`, whatever the route (the fingerprint
/// echo excepted for direct access); both are traced as `refused` lines.
/// Every other request goes on. With no ban in force and direct access
/// allowed the check is one atomic load and one comparison.
#[derive(Clone, Debug)]
pub(crate) struct RefuseBanned<S> {
    inner: S,
    st: Arc<TargetState>,
}

impl<S> Service<Request> for RefuseBanned<S>
where
    S: Service<Request, Response = Response>,
{
    type Response = Response;
    type Error = S::Error;
    type Future = Either<Ready<Result<Response, S::Error>>, S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request) -> Self::Future {
        match refusal(&self.st, &req) {
            Some(r) => Either::Left(ready(Ok(r))),
            None => Either::Right(self.inner.call(req)),
        }
    }
}

/// The route a refused request asked for, as the router names it.
fn route(req: &Request) -> Cow<'static, str> {
    match req.extensions().get::<MatchedPath>() {
        Some(m) => Cow::Owned(m.as_str().to_owned()),
        None => Cow::Owned(req.uri().path().chars().take(256).collect()),
    }
}

/// Whether the request bypassed the pool where the scenario refuses that.
fn is_refused_direct(st: &TargetState, req: &Request) -> bool {
    st.config.refuses_direct()
        && !req.extensions().get::<Peer>().is_some_and(|p| p.via_pool)
        && req.uri().path() != FINGERPRINT_ROUTE
}

fn refusal(st: &TargetState, req: &Request) -> Option<Response> {
    let direct = is_refused_direct(st, req);
    if !direct && !st.exit_bans.any.load(Ordering::Acquire) {
        return None;
    }
    let peer = Peer::from_extensions(req.extensions())?;
    let who = guard::client(st, &peer, req.headers());
    let wants_json = respond::wants_json(req.headers());
    if direct {
        attempts::refused(st, route(req), who.ip, RefusalReason::DirectAccess);
        return Some(respond::blocked(
            RefusalReason::DirectAccess.code(),
            wants_json,
        ));
    }
    // Behind the pool, the exit itself is judged too: a forwarding
    // header must not lift an exit's ban.
    let exit = peer.via_pool.then_some(peer.addr.ip());
    if st.exit_bans.contains(who.ip) || exit.is_some_and(|ip| st.exit_bans.contains(ip)) {
        st.metrics.ip_banned();
        attempts::refused(st, route(req), who.ip, RefusalReason::IpBanned);
        return Some(respond::ip_banned(wants_json));
    }
    None
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use axum::body::Body;
    use axum::extract::connect_info::MockConnectInfo;
    use axum::http::{Request, StatusCode};
    use tower::ServiceExt;

    use crate::clock::Clock;
    use crate::geo::GeoDb;
    use crate::site::{TargetConfig, TargetState, TraceLog, router};

    #[tokio::test]
    async fn a_router_in_process_refuses_a_banned_address_named_by_mock_connect_info() {
        let state = TargetState::new(
            TargetConfig::default(),
            Clock::system(),
            GeoDb::embedded(),
            TraceLog::in_memory(),
        )
        .expect("state");
        let state = std::sync::Arc::new(state);
        let banned: SocketAddr = "127.0.2.9:4000".parse().expect("address");
        let other: SocketAddr = "127.0.1.9:4000".parse().expect("address");
        state.exit_bans.ban(banned.ip());
        for (peer, status) in [(banned, StatusCode::FORBIDDEN), (other, StatusCode::OK)] {
            let app = router(state.clone()).layer(MockConnectInfo(peer));
            let req = Request::get("/").body(Body::empty()).expect("request");
            let res = app.oneshot(req).await.expect("response");
            assert_eq!(res.status(), status, "{peer}");
        }
    }
}
