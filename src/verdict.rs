//! Verdicts, their stable reason codes, and the evidence of each rule that fired.

use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::network::{CountryCode, NetworkClass};

/// What the engine decided about one request. A value, never an error.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "verdict", content = "reason", rename_all = "lowercase")]
pub enum Verdict {
    /// Serve the request.
    Allow,
    /// Refuse this request with a challenge; the session lives on.
    Challenge(Reason),
    /// The session ended naturally (TTL, idle, max uses, unknown).
    Expire(Reason),
    /// The session was invalidated: for a security reason, or explicitly
    /// (logout, an operator); [`Reason::is_security`] tells which.
    Revoke(Reason),
    /// The session's account is banned.
    Ban(Reason),
}

impl Verdict {
    /// The reason code, or `None` for [`Verdict::Allow`].
    pub fn reason(self) -> Option<Reason> {
        match self {
            Self::Allow => None,
            Self::Challenge(r) | Self::Expire(r) | Self::Revoke(r) | Self::Ban(r) => Some(r),
        }
    }

    /// Whether the session is dead after this verdict.
    pub fn is_terminal(self) -> bool {
        matches!(self, Self::Expire(_) | Self::Revoke(_) | Self::Ban(_))
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Allow => f.write_str("allow"),
            Self::Challenge(r) => write!(f, "challenge({r})"),
            Self::Expire(r) => write!(f, "expire({r})"),
            Self::Revoke(r) => write!(f, "revoke({r})"),
            Self::Ban(r) => write!(f, "ban({r})"),
        }
    }
}

macro_rules! reasons {
    ($($(#[$doc:meta])* $variant:ident = $code:literal, security = $sec:literal;)*) => {
        /// A stable, machine-readable reason code. README lists them all.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[non_exhaustive]
        pub enum Reason {
            $($(#[$doc])* #[serde(rename = $code)] $variant,)*
        }

        impl Reason {
            /// Every reason code, in documentation order.
            pub const ALL: &'static [Reason] = &[$(Reason::$variant,)*];

            /// The code, such as `"IP_DRIFT"`.
            pub fn code(self) -> &'static str {
                match self { $(Self::$variant => $code,)* }
            }

            /// Whether this is a security invalidation (counted towards
            /// escalation and session mortality), as opposed to natural
            /// expiry or an explicit logout.
            pub fn is_security(self) -> bool {
                match self { $(Self::$variant => $sec,)* }
            }
        }
    };
}

reasons! {
    /// The session outlived its absolute TTL.
    SessionExpired = "SESSION_EXPIRED", security = false;
    /// The session was idle longer than its idle TTL.
    IdleTimeout = "IDLE_TIMEOUT", security = false;
    /// The session was used its maximum number of times.
    MaxUses = "MAX_USES", security = false;
    /// The presented session does not exist (never issued, or forgotten).
    SessionUnknown = "SESSION_UNKNOWN", security = false;
    /// The client logged out.
    LoggedOut = "LOGGED_OUT", security = false;
    /// The target revoked the session on an operator's order.
    SessionRevoked = "SESSION_REVOKED", security = false;
    /// The client IP changed beyond the configured tolerance.
    IpDrift = "IP_DRIFT", security = true;
    /// The client's autonomous system changed.
    AsnDrift = "ASN_DRIFT", security = true;
    /// The client's network class changed (say residential to datacenter).
    NetworkClassDrift = "NETWORK_CLASS_DRIFT", security = true;
    /// The client's country changed.
    GeoDrift = "GEO_DRIFT", security = true;
    /// The client moved faster than a traveller could.
    ImpossibleTravel = "IMPOSSIBLE_TRAVEL", security = true;
    /// The User-Agent changed.
    UserAgentDrift = "USER_AGENT_DRIFT", security = true;
    /// The Accept-Language changed.
    AcceptLanguageDrift = "ACCEPT_LANGUAGE_DRIFT", security = true;
    /// The relative order of header names changed.
    HeaderOrderDrift = "HEADER_ORDER_DRIFT", security = true;
    /// The TLS fingerprint (JA4, or JA3 when enabled) changed.
    TlsFingerprintDrift = "TLS_FINGERPRINT_DRIFT", security = true;
    /// The HTTP fingerprint changed.
    HttpFingerprintDrift = "HTTP_FINGERPRINT_DRIFT", security = true;
    /// The session or account sent requests faster than its rate and burst.
    VelocityExceeded = "VELOCITY_EXCEEDED", security = true;
    /// An address or an account attempted logins faster than its rate and burst.
    LoginVelocityExceeded = "LOGIN_VELOCITY_EXCEEDED", security = true;
    /// Inter-request gaps were too regular to be human.
    RoboticCadence = "ROBOTIC_CADENCE", security = true;
    /// The session was used from too many addresses at once, or had too many requests in flight.
    ConcurrentUse = "CONCURRENT_USE", security = true;
    /// A companion cookie set at birth did not come back.
    CompanionCookieMissing = "COMPANION_COOKIE_MISSING", security = true;
    /// A companion cookie came back with another value.
    CompanionCookieAltered = "COMPANION_COOKIE_ALTERED", security = true;
    /// A rotated refresh token was used again.
    RefreshTokenReuse = "REFRESH_TOKEN_REUSE", security = true;
    /// The account is banned.
    AccountBanned = "ACCOUNT_BANNED", security = true;
    /// The session store is full of live sessions: a login gets no session.
    SessionStoreFull = "SESSION_STORE_FULL", security = false;
    /// The page's sensor cookie did not come back (the client ran no script).
    SensorMissing = "SENSOR_MISSING", security = true;
    /// The sensor cookie was forged, altered, or made under another nonce.
    SensorInvalid = "SENSOR_INVALID", security = true;
    /// The sensor's signals disagree with the request (its User-Agent).
    SensorMismatch = "SENSOR_MISMATCH", security = true;
    /// The sensor showed an automated browser (`navigator.webdriver`,
    /// a headless User-Agent, no plugins, no languages).
    AutomationDetected = "AUTOMATION_DETECTED", security = true;
    /// A challenge clearance came from another address, User-Agent or TLS stack.
    ClearanceDrift = "CLEARANCE_DRIFT", security = true;
    /// A valid challenge clearance answered a drift rule's challenge
    /// (recorded with `log`; the request is served).
    ClearancePassed = "CLEARANCE_PASSED", security = false;
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// What a rule does when it fires.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// The rule is not evaluated.
    #[default]
    Off,
    /// The rule is evaluated and recorded; the request is served.
    Log,
    /// The request is refused with a challenge; the session lives.
    Challenge,
    /// The session is revoked.
    Revoke,
    /// The session is revoked and its account banned at once.
    Ban,
}

/// The name of a rule, as written in config files and events.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[allow(missing_docs)]
pub enum RuleName {
    AbsoluteTtl,
    IdleTtl,
    MaxUses,
    IpDrift,
    AsnDrift,
    NetworkClassDrift,
    GeoDrift,
    ImpossibleTravel,
    UserAgent,
    Ja4,
    Ja3,
    HttpFingerprint,
    HeaderOrder,
    AcceptLanguage,
    CompanionCookies,
    ConcurrentIps,
    InFlight,
    SessionVelocity,
    AccountVelocity,
    LoginVelocityIp,
    LoginVelocityAccount,
    RoboticCadence,
    Escalation,
    AccountBan,
    Sensor,
    Automation,
    Clearance,
}

impl RuleName {
    /// Whether the rule compares the live client with its birth (network
    /// or fingerprint): the challenges a clearance answers.
    pub fn is_drift(self) -> bool {
        matches!(
            self,
            Self::IpDrift
                | Self::AsnDrift
                | Self::NetworkClassDrift
                | Self::GeoDrift
                | Self::ImpossibleTravel
                | Self::UserAgent
                | Self::Ja4
                | Self::Ja3
                | Self::HttpFingerprint
                | Self::HeaderOrder
                | Self::AcceptLanguage
        )
    }
}

/// One rule that fired on a request: what it measured and what it asked for.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Firing {
    /// Which rule.
    pub rule: RuleName,
    /// Its reason code.
    pub reason: Reason,
    /// The action configured for it.
    pub action: Action,
    /// The values it compared.
    pub evidence: Evidence,
}

/// The values a rule measured when it fired.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Evidence {
    /// An address change.
    Ip {
        /// Address at birth.
        birth: Option<IpAddr>,
        /// Address now.
        live: Option<IpAddr>,
    },
    /// A network change: ASN, organisation and class before and after.
    Network {
        /// ASN at birth.
        birth_asn: Option<u32>,
        /// Organisation at birth.
        birth_org: Option<Arc<str>>,
        /// Class at birth.
        birth_class: NetworkClass,
        /// ASN now.
        live_asn: Option<u32>,
        /// Organisation now.
        live_org: Option<Arc<str>>,
        /// Class now.
        live_class: NetworkClass,
    },
    /// A country change.
    Country {
        /// Country at birth.
        birth: Option<CountryCode>,
        /// Country now.
        live: Option<CountryCode>,
    },
    /// A move between two locations.
    Travel {
        /// Distance in kilometres.
        km: f64,
        /// Time between the two requests, in seconds.
        seconds: f64,
        /// Implied speed.
        kmh: f64,
        /// The configured limit.
        limit_kmh: f64,
    },
    /// A string that changed (User-Agent, fingerprints, header order).
    Text {
        /// Value at birth.
        birth: Option<Arc<str>>,
        /// Value now.
        live: Option<String>,
    },
    /// A companion cookie that went missing or changed.
    Cookie {
        /// The cookie's name.
        name: String,
        /// The value the target set.
        expected: String,
        /// The value that came back, if any.
        got: Option<String>,
    },
    /// A count against its limit (distinct IPs, requests in flight, uses).
    Count {
        /// What was measured.
        measured: u64,
        /// The configured limit.
        limit: u64,
    },
    /// A rate limit was exceeded.
    Rate {
        /// Allowed requests per second.
        per_second: f64,
        /// Allowed burst.
        burst: u32,
        /// When a request would be allowed again, in milliseconds.
        retry_after_ms: u64,
    },
    /// Gaps between requests were too regular.
    Cadence {
        /// Number of gaps looked at.
        gaps: usize,
        /// Mean gap in milliseconds.
        mean_ms: f64,
        /// Coefficient of variation of the gaps.
        cv: f64,
        /// The configured threshold below which the rule fires.
        max_cv: f64,
    },
    /// A lifetime was exceeded.
    Age {
        /// Age measured, in milliseconds.
        age_ms: u64,
        /// The limit, in milliseconds.
        limit_ms: u64,
    },
    /// A sensor cookie that is missing or does not check out.
    Sensor {
        /// What was wrong.
        problem: String,
    },
    /// A sensor's claim that disagrees with what the request sent.
    Claim {
        /// What the sensor claimed (its User-Agent).
        claimed: String,
        /// What the request sent.
        sent: Option<String>,
    },
    /// A challenge clearance: what it was bound to that drifted, or
    /// `valid` when it answered a challenge.
    Clearance {
        /// `address`, `user_agent`, `tls_stack`, or `valid`.
        standing: String,
        /// Who solved the challenge that earned it.
        via: crate::auth::clearance::Solver,
    },
    /// Markers of an automated browser.
    Automation {
        /// Each marker seen, such as `webdriver`.
        markers: Vec<String>,
    },
    /// An account reached its invalidation limit.
    Escalation {
        /// Invalidations of the account inside the window.
        invalidations: u32,
        /// The configured limit.
        limit: u32,
        /// When the ban ends, in milliseconds since the Unix epoch; 0 when
        /// the escalation rule only logs.
        banned_until_ms: u64,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdicts_serialize_with_their_reason_code() {
        let v = Verdict::Revoke(Reason::AsnDrift);
        let json = serde_json::to_string(&v).expect("serializes");
        assert_eq!(json, r#"{"verdict":"revoke","reason":"ASN_DRIFT"}"#);
        let back: Verdict = serde_json::from_str(&json).expect("parses");
        assert_eq!(back, v);
        assert_eq!(
            serde_json::to_string(&Verdict::Allow).expect("ok"),
            r#"{"verdict":"allow"}"#
        );
    }

    #[test]
    fn reason_codes_are_unique_and_screaming_snake_case() {
        let mut codes: Vec<_> = Reason::ALL.iter().map(|r| r.code()).collect();
        assert!(
            codes
                .iter()
                .all(|c| c.chars().all(|ch| ch.is_ascii_uppercase() || ch == '_'))
        );
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), Reason::ALL.len());
    }

    #[test]
    fn natural_expiry_is_not_a_security_reason() {
        assert!(!Reason::SessionExpired.is_security());
        assert!(!Reason::IdleTimeout.is_security());
        assert!(Reason::IpDrift.is_security());
    }

    #[test]
    fn stronger_actions_compare_greater() {
        assert!(Action::Ban > Action::Revoke);
        assert!(Action::Revoke > Action::Challenge);
        assert!(Action::Challenge > Action::Log);
        assert!(Action::Log > Action::Off);
    }
}
