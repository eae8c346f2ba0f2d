//! Counters for the admin API's Prometheus-style `/metrics`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;

use crate::verdict::{Reason, Verdict};

/// What the target has done since it started (or since the last reset).
#[derive(Debug, Default)]
pub struct Metrics {
    logins: AtomicU64,
    login_failures: AtomicU64,
    by_verdict: [AtomicU64; 5],
    by_reason: Mutex<BTreeMap<Reason, u64>>,
    ip_banned: AtomicU64,
    store_unavailable: AtomicU64,
    listeners: [Arc<ListenerStats>; 4],
}

/// The listeners whose connections are counted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Listener {
    /// Plain HTTP for clients.
    Public,
    /// The proxy pool's upstream (PROXY v2 first).
    Pool,
    /// HTTPS for clients.
    Https,
    /// The admin API.
    Admin,
}

impl Listener {
    const ALL: [Listener; 4] = [
        Listener::Public,
        Listener::Pool,
        Listener::Https,
        Listener::Admin,
    ];

    fn index(self) -> usize {
        match self {
            Listener::Public => 0,
            Listener::Pool => 1,
            Listener::Https => 2,
            Listener::Admin => 3,
        }
    }

    fn label(self) -> &'static str {
        match self {
            Listener::Public => "public",
            Listener::Pool => "pool",
            Listener::Https => "https",
            Listener::Admin => "admin",
        }
    }
}

/// Connections of one listener: how many are open, how many were closed
/// because the peer was too slow to send its first bytes (a PROXY header,
/// a ClientHello, the TLS handshake or a request head), and how many were
/// closed idle between requests.
#[derive(Debug, Default)]
pub struct ListenerStats {
    accepted: AtomicU64,
    closed: AtomicU64,
    timed_out: AtomicU64,
    idle_timed_out: AtomicU64,
    shed: AtomicU64,
}

impl ListenerStats {
    /// Counts an accepted connection, until the returned guard drops.
    pub fn open(self: &Arc<Self>) -> OpenConnection {
        self.accepted.fetch_add(1, Ordering::Relaxed);
        OpenConnection(Arc::clone(self))
    }

    /// Counts a connection closed for its peer's slowness.
    pub fn timed_out(&self) {
        self.timed_out.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a keep-alive connection closed for idling between requests.
    pub fn idle_timed_out(&self) {
        self.idle_timed_out.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a silent connection closed to free its descriptor.
    pub fn shed(&self) {
        self.shed.fetch_add(1, Ordering::Relaxed);
    }

    /// Silent connections closed to free descriptors so far.
    pub fn sheds(&self) -> u64 {
        self.shed.load(Ordering::Relaxed)
    }

    /// Keep-alive connections closed for idling between requests so far.
    pub fn idle_timeouts(&self) -> u64 {
        self.idle_timed_out.load(Ordering::Relaxed)
    }

    /// Connections accepted and not yet closed.
    pub fn open_now(&self) -> u64 {
        let closed = self.closed.load(Ordering::Relaxed);
        self.accepted.load(Ordering::Relaxed).saturating_sub(closed)
    }

    /// Connections closed for a slow peer so far.
    pub fn timeouts(&self) -> u64 {
        self.timed_out.load(Ordering::Relaxed)
    }
}

/// One open connection; dropping it counts the connection closed.
#[derive(Debug)]
pub struct OpenConnection(Arc<ListenerStats>);

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.0.closed.fetch_add(1, Ordering::Relaxed);
    }
}

const VERDICTS: [&str; 5] = ["allow", "challenge", "expire", "revoke", "ban"];

impl Metrics {
    /// Counts a decision on a request.
    pub fn decided(&self, v: Verdict) {
        let i = match v {
            Verdict::Allow => 0,
            Verdict::Challenge(_) => 1,
            Verdict::Expire(_) => 2,
            Verdict::Revoke(_) => 3,
            Verdict::Ban(_) => 4,
        };
        self.by_verdict[i].fetch_add(1, Ordering::Relaxed);
        if let Some(r) = v.reason() {
            *self.by_reason.lock().entry(r).or_default() += 1;
        }
    }

    /// Counts a login attempt.
    pub fn login(&self, ok: bool) {
        let c = if ok {
            &self.logins
        } else {
            &self.login_failures
        };
        c.fetch_add(1, Ordering::Relaxed);
    }

    /// Requests decided so far, whatever the verdict.
    pub fn requests(&self) -> u64 {
        self.by_verdict
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .sum()
    }

    /// Successful logins so far.
    pub fn logins(&self) -> u64 {
        self.logins.load(Ordering::Relaxed)
    }

    /// Counts a request refused because its address is banned.
    pub fn ip_banned(&self) {
        self.ip_banned.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a request answered `503` because the shared store was unreachable.
    pub fn store_unavailable(&self) {
        self.store_unavailable.fetch_add(1, Ordering::Relaxed);
    }

    /// Requests answered `503` because the shared store was unreachable.
    pub fn store_unavailables(&self) -> u64 {
        self.store_unavailable.load(Ordering::Relaxed)
    }

    /// The connection counts of `listener`.
    pub fn listener(&self, listener: Listener) -> &Arc<ListenerStats> {
        &self.listeners[listener.index()]
    }

    /// One line for people: logins and decisions by verdict.
    pub fn summary(&self) -> String {
        let counts: Vec<String> = VERDICTS
            .iter()
            .zip(&self.by_verdict)
            .map(|(name, c)| format!("{name} {}", c.load(Ordering::Relaxed)))
            .collect();
        let ok = self.logins.load(Ordering::Relaxed);
        let failed = self.login_failures.load(Ordering::Relaxed);
        format!(
            "{ok} logins ({failed} failed); requests: {}",
            counts.join(", ")
        )
    }

    /// The per-listener lines: open connections, slow-peer and idle timeouts.
    fn render_listeners(&self, out: &mut String) {
        type Count = fn(&ListenerStats) -> u64;
        let per_listener: [(&str, &str, Count); 4] = [
            ("open_connections", "gauge", ListenerStats::open_now),
            (
                "slow_peer_timeouts_total",
                "counter",
                ListenerStats::timeouts,
            ),
            (
                "idle_timeouts_total",
                "counter",
                ListenerStats::idle_timeouts,
            ),
            ("shed_connections_total", "counter", ListenerStats::sheds),
        ];
        for (name, kind, count) in per_listener {
            let _ = writeln!(out, "# TYPE sessionrange_{name} {kind}");
            for l in Listener::ALL {
                let n = count(self.listener(l));
                let _ = writeln!(out, "sessionrange_{name}{{listener=\"{}\"}} {n}", l.label());
            }
        }
    }

    /// Every count, in the Prometheus text format; the sessions gauge
    /// only when the store could count them (`None` while a shared store
    /// is away: the counts, the outage's included, still answer).
    pub fn render(&self, live_sessions: Option<usize>) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "# TYPE sessionrange_logins_total counter");
        let _ = writeln!(
            out,
            "sessionrange_logins_total{{result=\"ok\"}} {}",
            self.logins.load(Ordering::Relaxed)
        );
        let failed = self.login_failures.load(Ordering::Relaxed);
        let _ = writeln!(
            out,
            "sessionrange_logins_total{{result=\"failed\"}} {failed}"
        );
        let _ = writeln!(out, "# TYPE sessionrange_decisions_total counter");
        for (name, c) in VERDICTS.iter().zip(&self.by_verdict) {
            let n = c.load(Ordering::Relaxed);
            let _ = writeln!(
                out,
                "sessionrange_decisions_total{{verdict=\"{name}\"}} {n}"
            );
        }
        let _ = writeln!(out, "# TYPE sessionrange_reasons_total counter");
        for (r, n) in self.by_reason.lock().iter() {
            let _ = writeln!(out, "sessionrange_reasons_total{{reason=\"{r}\"}} {n}");
        }
        let _ = writeln!(out, "# TYPE sessionrange_ip_banned_total counter");
        let banned = self.ip_banned.load(Ordering::Relaxed);
        let _ = writeln!(out, "sessionrange_ip_banned_total {banned}");
        let _ = writeln!(out, "# TYPE sessionrange_store_unavailable_total counter");
        let down = self.store_unavailables();
        let _ = writeln!(out, "sessionrange_store_unavailable_total {down}");
        self.render_listeners(&mut out);
        if let Some(n) = live_sessions {
            let _ = writeln!(out, "# TYPE sessionrange_sessions gauge");
            let _ = writeln!(out, "sessionrange_sessions {n}");
        }
        out
    }
}
