//! Shared setup: a client that builds request contexts, resolved through the fixture geo database.

use std::sync::OnceLock;
use std::time::Duration;

use sessionrange::{Decision, Engine, EngineConfig, GeoDb, RequestContext, SessionId, Timestamp};

/// The embedded fixture databases, opened once per test binary.
pub(crate) fn geo() -> &'static GeoDb {
    static GEO: OnceLock<GeoDb> = OnceLock::new();
    GEO.get_or_init(GeoDb::embedded)
}

/// A fixed start time for every test.
pub(crate) const T0: Timestamp = Timestamp::from_secs(1_790_000_000);

/// `s` seconds after [`T0`].
pub(crate) fn at(s: u64) -> Timestamp {
    T0.plus(Duration::from_secs(s))
}

/// `ms` milliseconds after [`T0`].
pub(crate) fn at_ms(ms: u64) -> Timestamp {
    T0.plus(Duration::from_millis(ms))
}

/// A simulated client: an address, a User-Agent, TLS fingerprints and cookies.
#[derive(Clone, Debug)]
pub(crate) struct Client {
    pub(crate) ip: String,
    pub(crate) user_agent: String,
    pub(crate) accept_language: String,
    pub(crate) ja3: Option<String>,
    pub(crate) ja4: Option<String>,
    pub(crate) cookies: Vec<(String, String)>,
    pub(crate) swap_headers: bool,
}

impl Client {
    /// A residential client on Comcast (127.0.1.0/24) with the companion cookies of [`companions`].
    pub(crate) fn new(ip: &str) -> Self {
        Self {
            ip: ip.to_owned(),
            user_agent: "Mozilla/5.0 (X11; Linux x86_64) range-test/1".to_owned(),
            accept_language: "en-US,en;q=0.9".to_owned(),
            ja3: Some("ja3-a".to_owned()),
            ja4: Some("t13d1516h2_8daaf6152771_e5627efa2ab1".to_owned()),
            cookies: companions(),
            swap_headers: false,
        }
    }

    /// The same client on another address.
    pub(crate) fn from(&self, ip: &str) -> Self {
        Self {
            ip: ip.to_owned(),
            ..self.clone()
        }
    }

    /// The request context this client presents.
    pub(crate) fn ctx(&self) -> RequestContext {
        let ip = self.ip.parse().expect("test address");
        let cookie = self
            .cookies
            .iter()
            .map(|(n, v)| format!("{n}={v}"))
            .collect::<Vec<_>>()
            .join("; ");
        let mut headers = vec![
            ("host", "target.test"),
            ("user-agent", self.user_agent.as_str()),
            ("accept", "*/*"),
            ("accept-language", self.accept_language.as_str()),
        ];
        if self.swap_headers {
            headers.swap(1, 2);
        }
        if !cookie.is_empty() {
            headers.push(("cookie", cookie.as_str()));
        }
        RequestContext::from_headers(Some(ip), geo().lookup(ip), headers)
            .with_tls(self.ja3.clone(), self.ja4.clone())
    }
}

/// The companion cookies the target set at birth in these tests.
pub(crate) fn companions() -> Vec<(String, String)> {
    vec![
        ("_rid".to_owned(), "a1b2c3".to_owned()),
        ("_sensor".to_owned(), "s-9".to_owned()),
    ]
}

/// An engine with `tweak` applied to the default rules.
pub(crate) fn engine(tweak: impl FnOnce(&mut EngineConfig)) -> Engine {
    let mut cfg = EngineConfig::default();
    tweak(&mut cfg);
    Engine::new(cfg).expect("test config is valid")
}

/// Logs `account` in as `client` at `now` with session id `n`.
pub(crate) fn login(
    e: &Engine,
    n: u128,
    account: &str,
    client: &Client,
    now: Timestamp,
) -> SessionId {
    let sid = SessionId::from_u128(n);
    let d = e.login(sid, account, client.ctx(), companions(), now);
    assert_eq!(
        d.verdict,
        sessionrange::Verdict::Allow,
        "login of {account}"
    );
    sid
}

/// One request by `client` on `sid` at `now`.
pub(crate) fn request(e: &Engine, sid: SessionId, client: &Client, now: Timestamp) -> Decision {
    e.decide(sid, client.ctx(), now)
}
