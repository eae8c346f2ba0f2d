//! What a target serves and how it behaves: accounts, data, login steps, tokens, responses, rules.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::config::EngineConfig;
use crate::dataset::DatasetConfig;
use crate::error::{Error, Result};
use crate::site::client_ip::TrustedProxies;
use crate::verdict::Reason;

/// Which credentials protected routes accept.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AuthMode {
    /// Only the session cookie from the form login.
    Cookie,
    /// Only bearer JWTs from the API login.
    Jwt,
    /// Either.
    #[default]
    Both,
}

impl AuthMode {
    /// Whether session cookies are accepted.
    pub fn cookies(self) -> bool {
        self != Self::Jwt
    }

    /// Whether bearer tokens are accepted.
    pub fn bearer(self) -> bool {
        self != Self::Cookie
    }
}

/// Whether the site answers requests that do not come through the pool.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DirectAccess {
    /// Every request on the public or HTTPS listener (not through the
    /// pool listener) gets the `403` block page with `DIRECT_ACCESS`,
    /// the way real targets refuse datacenter addresses; only
    /// `/__range/fingerprint` stays open.
    Refuse,
    /// Anyone may connect straight to the site.
    Allow,
}

/// A set of routes a target may serve.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Surface {
    /// The browser site: `GET`/`POST /login`, `/catalog`, `/account`.
    Html,
    /// The JSON API: `/api/login`, `/api/login/challenge`,
    /// `/api/token/*`, `/api/v1/items*`.
    Api,
}

/// One account that can log in.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountSpec {
    /// The login name.
    pub username: String,
    /// The password.
    pub password: String,
    /// Base32 TOTP secret; required at login when the TOTP step is on.
    #[serde(default)]
    pub totp_secret: Option<String>,
}

/// The companion cookies the landing page sets.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CompanionSpec {
    /// Cookie names: an analytics-style id and a sensor-style cookie by default.
    pub names: Vec<String>,
    /// Whether both logins refuse a client that does not bring back every
    /// companion cookie the landing page set, untouched (`403`,
    /// `COMPANION_COOKIE_MISSING` or `COMPANION_COOKIE_ALTERED`), as real
    /// targets refuse a login without their sensor cookie. Off by default.
    pub at_login: bool,
}

impl Default for CompanionSpec {
    fn default() -> Self {
        Self {
            names: vec!["_sr_aid".to_owned(), "_sr_sensor".to_owned()],
            at_login: false,
        }
    }
}

/// The page sensor (see [`crate::auth::sensor`]): when enabled, the
/// landing and login pages set a nonce cookie and run a script that sets
/// the sensor cookie, and every request's context carries what the target
/// made of it for the `sensor` and `automation` rules. Off by default.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SensorSpec {
    /// Whether the pages run the sensor.
    pub enabled: bool,
}

/// The JavaScript challenge (the `js-challenge` refusal style) and the
/// clearance cookie a solved one grants (see [`crate::auth::clearance`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClearanceSpec {
    /// The proof of work's difficulty, in leading zero bits (at most 24).
    pub bits: u8,
    /// How long a clearance answers challenges.
    #[serde(with = "humantime_serde")]
    pub ttl: Duration,
    /// Whether both logins need a clearance of the client's own: the login
    /// form answers with the challenge page until it has one, the API with
    /// `403` `CLEARANCE_REQUIRED`.
    pub at_login: bool,
}

impl ClearanceSpec {
    /// Refuses a difficulty past 24 bits and a lifetime of zero.
    fn validate(&self, at: &str) -> Result<()> {
        if self.bits > 24 {
            return Err(Error::config(format!("{at}.bits"), "must be at most 24"));
        }
        if self.ttl.is_zero() {
            return Err(Error::config(
                format!("{at}.ttl"),
                "must be longer than zero",
            ));
        }
        Ok(())
    }
}

impl Default for ClearanceSpec {
    fn default() -> Self {
        Self {
            bits: 16,
            ttl: Duration::from_secs(30 * 60),
            at_login: false,
        }
    }
}

/// Extra login steps, each optional.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LoginSteps {
    /// A fixed delay before a login answers.
    #[serde(with = "humantime_serde")]
    pub delay: Duration,
    /// Proof-of-work difficulty in leading zero bits; 0 turns it off.
    pub pow_bits: u8,
    /// Whether accounts with a TOTP secret must give a code.
    pub totp: bool,
}

/// Token lifetimes and refresh rotation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TokenConfig {
    /// JWT access token lifetime.
    #[serde(with = "humantime_serde")]
    pub access_ttl: Duration,
    /// Refresh token family lifetime.
    #[serde(with = "humantime_serde")]
    pub refresh_ttl: Duration,
    /// How long the previous refresh token stays usable after a rotation.
    #[serde(with = "humantime_serde")]
    pub refresh_overlap: Duration,
    /// Clock-skew grace on JWT expiry.
    #[serde(with = "humantime_serde")]
    pub skew: Duration,
}

impl Default for TokenConfig {
    fn default() -> Self {
        Self {
            access_ttl: Duration::from_secs(300),
            refresh_ttl: Duration::from_secs(24 * 3600),
            refresh_overlap: Duration::ZERO,
            skew: Duration::from_secs(30),
        }
    }
}

/// How the target answers a request it refuses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ResponseStyle {
    /// `401` with `WWW-Authenticate: Bearer error="invalid_token"` (RFC 6750).
    #[serde(rename = "rfc6750")]
    Rfc6750,
    /// `401` with an app-style JSON error.
    #[serde(rename = "json-401")]
    Json401,
    /// `403` block page (HTML, or JSON when the client asked for JSON).
    #[serde(rename = "block-403")]
    Block403,
    /// `302` to `/login?reason=CODE`.
    RedirectLogin,
    /// `200` with the login form: no status or header gives it away.
    SoftLogin,
    /// `403` HTML interstitial with `cf-mitigated: challenge`.
    Challenge,
    /// The same interstitial, solvable: its script runs a proof of work
    /// and posts it, and the target answers with a clearance cookie.
    JsChallenge,
    /// `429` with `Retry-After`.
    #[serde(rename = "rate-limit-429")]
    RateLimit429,
}

/// How refusals look, per kind of verdict and per reason.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ResponseConfig {
    /// Security invalidations of cookie sessions.
    pub security: ResponseStyle,
    /// Security invalidations of bearer tokens.
    pub bearer: ResponseStyle,
    /// Challenges.
    pub challenge: ResponseStyle,
    /// Overrides by reason code, such as `VELOCITY_EXCEEDED = "rate-limit-429"`.
    pub by_reason: BTreeMap<Reason, ResponseStyle>,
}

impl Default for ResponseConfig {
    fn default() -> Self {
        let mut by_reason = BTreeMap::new();
        by_reason.insert(Reason::VelocityExceeded, ResponseStyle::RateLimit429);
        Self {
            security: ResponseStyle::RedirectLogin,
            bearer: ResponseStyle::Rfc6750,
            challenge: ResponseStyle::Challenge,
            by_reason,
        }
    }
}

impl ResponseConfig {
    /// The style for a refusal with `reason`, of a challenge or not, on a
    /// bearer request or not.
    pub fn style(&self, reason: Reason, challenge: bool, bearer: bool) -> ResponseStyle {
        if let Some(style) = self.by_reason.get(&reason) {
            return *style;
        }
        match (challenge, bearer) {
            (true, _) => self.challenge,
            (false, true) => self.bearer,
            (false, false) => self.security,
        }
    }
}

/// A store must be a Redis URL the client library reads.
fn validate_store(store: Option<&str>, field: &str) -> Result<()> {
    let Some(url) = store else {
        return Ok(());
    };
    if !url.starts_with("redis://") {
        return Err(Error::config(
            field,
            "must be a redis:// URL, such as redis://127.0.0.1:6379/0",
        ));
    }
    redis::Client::open(url)
        .map(drop)
        .map_err(|e| Error::config(field, format!("{url}: {e}")))
}

/// Everything a target needs besides its clock and geo database.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TargetConfig {
    /// Which credentials protected routes accept.
    pub auth: AuthMode,
    /// Whether requests that bypass the pool are served. A scenario
    /// decides it when it loads (`refuse` when it has a pool, `allow`
    /// otherwise); left out of a config built by hand, it means `allow`.
    pub direct: Option<DirectAccess>,
    /// The routes served; those of a surface left out answer `404`. Both
    /// by default.
    pub surfaces: Vec<Surface>,
    /// Who can log in.
    pub accounts: Vec<AccountSpec>,
    /// The protected records.
    pub dataset: DatasetConfig,
    /// Companion cookies set by the landing page.
    pub companions: CompanionSpec,
    /// The page sensor: a script on the landing and login pages.
    pub sensor: SensorSpec,
    /// The JavaScript challenge and the clearance it grants.
    pub clearance: ClearanceSpec,
    /// Extra login steps.
    pub login: LoginSteps,
    /// Token lifetimes.
    pub tokens: TokenConfig,
    /// Refusal styles.
    pub responses: ResponseConfig,
    /// Peers whose X-Forwarded-For and Forwarded headers are believed.
    pub trusted_proxies: TrustedProxies,
    /// Load balancers whose PROXY protocol headers (v1 or v2) the public
    /// HTTP and HTTPS listeners read; empty (the default) reads none.
    pub proxy_protocol_from: TrustedProxies,
    /// ASNs added to the built-in hosting list.
    pub hosting_asns: Vec<u32>,
    /// Where sessions, tokens and keys live: `redis://HOST:PORT/DB` shares
    /// them between instances and keeps them across restarts; none (the
    /// default) keeps them in this process.
    pub store: Option<String>,
    /// The risk engine's rules.
    pub rules: EngineConfig,
}

impl Default for TargetConfig {
    fn default() -> Self {
        let account = |u: &str, p: &str| AccountSpec {
            username: u.to_owned(),
            password: p.to_owned(),
            totp_secret: None,
        };
        Self {
            auth: AuthMode::Both,
            direct: None,
            surfaces: vec![Surface::Html, Surface::Api],
            accounts: vec![account("alice", "wonderland"), account("bob", "builder")],
            dataset: DatasetConfig::default(),
            companions: CompanionSpec::default(),
            sensor: SensorSpec::default(),
            clearance: ClearanceSpec::default(),
            login: LoginSteps::default(),
            tokens: TokenConfig::default(),
            responses: ResponseConfig::default(),
            trusted_proxies: TrustedProxies::default(),
            proxy_protocol_from: TrustedProxies::default(),
            hosting_asns: Vec::new(),
            store: None,
            rules: EngineConfig::default(),
        }
    }
}

impl TargetConfig {
    /// Checks every value; errors name the field under `prefix`.
    pub fn validate(&self, prefix: &str) -> Result<()> {
        let at = |f: &str| format!("{prefix}.{f}");
        if self.accounts.is_empty() {
            return Err(Error::config(
                at("accounts"),
                "at least one account is needed",
            ));
        }
        for (i, a) in self.accounts.iter().enumerate() {
            if a.username.is_empty() || a.username.len() > 128 {
                return Err(Error::config(
                    at(&format!("accounts[{i}].username")),
                    "must be 1 to 128 bytes",
                ));
            }
            if self.login.totp
                && a.totp_secret.as_deref().is_some_and(|s| {
                    crate::auth::totp::code_at(s, crate::Timestamp::EPOCH).is_none()
                })
            {
                return Err(Error::config(
                    at(&format!("accounts[{i}].totp_secret")),
                    "is not a valid base32 TOTP secret",
                ));
            }
        }
        self.validate_surfaces(prefix)?;
        if self.login.pow_bits > 32 {
            return Err(Error::config(at("login.pow_bits"), "must be at most 32"));
        }
        self.clearance.validate(&at("clearance"))?;
        if self.tokens.access_ttl.is_zero() || self.tokens.refresh_ttl.is_zero() {
            return Err(Error::config(
                at("tokens"),
                "token lifetimes must be longer than zero",
            ));
        }
        for (i, n) in self.companions.names.iter().enumerate() {
            if n.is_empty()
                || !n
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
            {
                return Err(Error::config(
                    at(&format!("companions.names[{i}]")),
                    "must be letters, digits, '_' or '-'",
                ));
            }
        }
        self.dataset.validate(&at("dataset"))?;
        validate_store(self.store.as_deref(), &at("store"))?;
        self.rules.validate(&at("rules"))
    }

    /// Surfaces must be named once each, and offer a login whose
    /// credentials the auth mode accepts.
    fn validate_surfaces(&self, prefix: &str) -> Result<()> {
        let field = format!("{prefix}.surfaces");
        let s = &self.surfaces;
        if s.is_empty() || (1..s.len()).any(|i| s[..i].contains(&s[i])) {
            return Err(Error::config(
                field,
                "name \"html\", \"api\" or both, once each",
            ));
        }
        let needs = match self.auth {
            AuthMode::Jwt => Some((Surface::Api, "auth = \"jwt\" needs the \"api\" surface")),
            AuthMode::Cookie => Some((
                Surface::Html,
                "auth = \"cookie\" needs the \"html\" surface",
            )),
            AuthMode::Both => None,
        };
        match needs {
            Some((surface, message)) if !s.contains(&surface) => Err(Error::config(field, message)),
            _ => Ok(()),
        }
    }

    /// Whether the target serves `surface`.
    pub fn serves(&self, surface: Surface) -> bool {
        self.surfaces.contains(&surface)
    }

    /// Whether requests that bypass the pool are refused.
    pub fn refuses_direct(&self) -> bool {
        self.direct == Some(DirectAccess::Refuse)
    }

    /// The account named `username`.
    pub fn account(&self, username: &str) -> Option<&AccountSpec> {
        self.accounts.iter().find(|a| a.username == username)
    }
}
