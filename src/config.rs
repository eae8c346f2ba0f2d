//! Rule configuration: every rule's action and limits, with realistic defaults.
//!
//! Files written by users parse into these types with unknown fields
//! refused, and [`EngineConfig::validate`] names the dotted path of any
//! impossible value.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::verdict::Action;

/// The whole rule set of an engine.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EngineConfig {
    /// Absolute TTL, idle TTL, max uses, clock-skew grace.
    pub lifetime: LifetimeConfig,
    /// Client address changes.
    pub ip_drift: IpDriftConfig,
    /// Autonomous system changes.
    pub asn_drift: RuleConfig,
    /// Network class changes (residential to datacenter, ...).
    pub network_class_drift: RuleConfig,
    /// Country changes.
    pub geo_drift: RuleConfig,
    /// Moves faster than a traveller could.
    pub impossible_travel: TravelConfig,
    /// Client fingerprint mutations.
    pub fingerprint: FingerprintConfig,
    /// Companion cookies stripped or altered.
    pub companion_cookies: CompanionConfig,
    /// The page sensor's cookie missing, invalid, or disagreeing with the
    /// request (only when the target runs a sensor).
    pub sensor: SensorConfig,
    /// Automation markers in the sensor's signals.
    pub automation: AutomationConfig,
    /// A challenge clearance presented by another client.
    pub clearance: ClearanceConfig,
    /// One session used from many places at once.
    pub concurrency: ConcurrencyConfig,
    /// Per-session rate limit.
    pub session_velocity: VelocityConfig,
    /// Per-account rate limit, across all of an account's sessions.
    pub account_velocity: VelocityConfig,
    /// Login attempts per client address.
    #[serde(deserialize_with = "LoginVelocityConfig::ip_over_default")]
    pub login_velocity_ip: LoginVelocityConfig,
    /// Login attempts per account, from every address.
    #[serde(deserialize_with = "LoginVelocityConfig::account_over_default")]
    pub login_velocity_account: LoginVelocityConfig,
    /// Inter-request gaps too regular to be human.
    pub robotic_cadence: CadenceConfig,
    /// Repeated invalidations ban the account.
    pub escalation: EscalationConfig,
    /// Session store limits.
    pub store: StoreConfig,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            lifetime: LifetimeConfig::default(),
            ip_drift: IpDriftConfig::default(),
            asn_drift: RuleConfig::default(),
            network_class_drift: RuleConfig::default(),
            geo_drift: RuleConfig::default(),
            impossible_travel: TravelConfig::default(),
            fingerprint: FingerprintConfig::default(),
            companion_cookies: CompanionConfig::default(),
            sensor: SensorConfig::default(),
            automation: AutomationConfig::default(),
            clearance: ClearanceConfig::default(),
            concurrency: ConcurrencyConfig::default(),
            session_velocity: VelocityConfig::default(),
            account_velocity: VelocityConfig::default(),
            login_velocity_ip: LoginVelocityConfig::per_ip(),
            login_velocity_account: LoginVelocityConfig::per_account(),
            robotic_cadence: CadenceConfig::default(),
            escalation: EscalationConfig::default(),
            store: StoreConfig::default(),
        }
    }
}

/// A rule that has only an action.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleConfig {
    /// What happens when the rule fires.
    pub action: Action,
}

impl Default for RuleConfig {
    fn default() -> Self {
        Self {
            action: Action::Revoke,
        }
    }
}

/// The page sensor: each case has its action, all `off` by default.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SensorConfig {
    /// No sensor cookie came back (`SENSOR_MISSING`).
    pub missing: Action,
    /// A sensor cookie that does not check out (`SENSOR_INVALID`).
    pub invalid: Action,
    /// A sensor whose User-Agent is not the request's (`SENSOR_MISMATCH`).
    pub mismatch: Action,
}

/// Automation markers in the sensor's signals (`AUTOMATION_DETECTED`);
/// `off` by default.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AutomationConfig {
    /// What happens when a marker shows.
    pub action: Action,
}

/// A challenge clearance from another address, User-Agent or TLS stack
/// (`CLEARANCE_DRIFT`); `off` by default.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClearanceConfig {
    /// What happens when a clearance drifted.
    pub drift: Action,
}

/// Session lifetimes. Natural expiry is reported as expiry, never as a
/// security invalidation.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LifetimeConfig {
    /// Time from login after which the session expires.
    #[serde(with = "humantime_serde")]
    pub absolute_ttl: Duration,
    /// Time without requests after which the session expires.
    #[serde(with = "humantime_serde")]
    pub idle_ttl: Duration,
    /// Allowed requests per session; 0 means unlimited.
    pub max_uses: u64,
    /// Grace added to both TTLs, for clock skew.
    #[serde(with = "humantime_serde")]
    pub skew_grace: Duration,
}

impl Default for LifetimeConfig {
    fn default() -> Self {
        // Keycloak's SSO Session Max and Idle: 10 h and 30 min.
        Self {
            absolute_ttl: Duration::from_secs(10 * 3600),
            idle_ttl: Duration::from_secs(30 * 60),
            max_uses: 0,
            skew_grace: Duration::from_secs(5),
        }
    }
}

/// How far an address may move before [`crate::Reason::IpDrift`] fires.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IpTolerance {
    /// Any change of address fires.
    Exact,
    /// Changes inside the same /24 (IPv4) or /64 (IPv6) are tolerated.
    #[default]
    Prefix,
    /// Changes inside the same autonomous system are tolerated.
    Asn,
}

/// The IP drift rule.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IpDriftConfig {
    /// What happens when the rule fires.
    pub action: Action,
    /// How far the address may move.
    pub tolerance: IpTolerance,
}

impl Default for IpDriftConfig {
    fn default() -> Self {
        // IP changes are scored, not fatal, at AWS and PerimeterX.
        Self {
            action: Action::Log,
            tolerance: IpTolerance::Prefix,
        }
    }
}

/// The impossible-travel rule.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TravelConfig {
    /// What happens when the rule fires.
    pub action: Action,
    /// The highest believable speed, in km/h.
    pub max_kmh: f64,
    /// Moves shorter than this are geolocation noise and never fire.
    pub min_km: f64,
}

impl Default for TravelConfig {
    fn default() -> Self {
        // Curity's "impossible journey" default.
        Self {
            action: Action::Revoke,
            max_kmh: 250.0,
            min_km: 100.0,
        }
    }
}

/// Actions for each client fingerprint.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FingerprintConfig {
    /// User-Agent change (a hard fail at PerimeterX).
    pub user_agent: Action,
    /// Accept-Language change.
    pub accept_language: Action,
    /// A swapped pair in the header order.
    pub header_order: Action,
    /// HTTP fingerprint change.
    pub http: Action,
    /// TLS JA4 change.
    pub ja4: Action,
    /// TLS JA3 change; off by default because browsers permute TLS
    /// extensions on every connection.
    pub ja3: Action,
}

impl Default for FingerprintConfig {
    fn default() -> Self {
        Self {
            user_agent: Action::Revoke,
            accept_language: Action::Log,
            header_order: Action::Log,
            http: Action::Log,
            ja4: Action::Revoke,
            ja3: Action::Off,
        }
    }
}

/// Actions for companion cookies.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CompanionConfig {
    /// A companion cookie did not come back.
    pub missing: Action,
    /// A companion cookie came back altered.
    pub altered: Action,
}

impl Default for CompanionConfig {
    fn default() -> Self {
        Self {
            missing: Action::Challenge,
            altered: Action::Challenge,
        }
    }
}

/// Concurrent use of one session.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConcurrencyConfig {
    /// What happens when too many addresses share the session.
    pub action: Action,
    /// Most distinct addresses allowed inside `window`.
    pub max_ips: u32,
    /// Most distinct ASNs allowed inside `window`; 0 means unlimited.
    pub max_asns: u32,
    /// The window over which addresses are counted.
    #[serde(with = "humantime_serde")]
    pub window: Duration,
    /// What happens when too many requests are in flight.
    pub in_flight_action: Action,
    /// Most requests in flight at once on one session.
    pub max_in_flight: u32,
}

impl Default for ConcurrencyConfig {
    fn default() -> Self {
        Self {
            action: Action::Revoke,
            max_ips: 2,
            max_asns: 0,
            window: Duration::from_secs(60),
            in_flight_action: Action::Off,
            max_in_flight: 8,
        }
    }
}

/// A GCRA rate limit: `rate` requests per `per`, plus `burst` at once.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct VelocityConfig {
    /// What happens when the limit is exceeded.
    pub action: Action,
    /// Sustained requests allowed per `per`.
    pub rate: f64,
    /// The period of `rate`.
    #[serde(with = "humantime_serde")]
    pub per: Duration,
    /// Requests allowed at once, on top of the sustained rate.
    pub burst: u32,
}

impl Default for VelocityConfig {
    fn default() -> Self {
        Self {
            action: Action::Challenge,
            rate: 10.0,
            per: Duration::from_secs(1),
            burst: 20,
        }
    }
}

impl VelocityConfig {
    /// The GCRA emission interval, in microseconds.
    pub fn interval_us(&self) -> u64 {
        let us = self.per.as_secs_f64() * 1e6 / self.rate;
        // Validation keeps `rate` positive and finite; clamp all the same.
        us.clamp(1.0, u64::MAX as f64) as u64
    }

    /// The GCRA tolerance: `burst - 1` emission intervals, in microseconds.
    pub fn tolerance_us(&self) -> u64 {
        self.interval_us()
            .saturating_mul(u64::from(self.burst.saturating_sub(1)))
    }
}

/// A GCRA limit on login attempts, per address or per account.
///
/// `challenge` refuses the attempt (429 with `Retry-After`); `ban` refuses
/// it and bans the account (per-account rule) or refuses every login from
/// the address (per-address rule) for `ban_ttl`. `revoke` is refused: a
/// login has no session yet to revoke.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginVelocityConfig {
    /// What happens when the limit is exceeded.
    pub action: Action,
    /// Sustained attempts allowed per `per`.
    pub rate: f64,
    /// The period of `rate`.
    #[serde(with = "humantime_serde")]
    pub per: Duration,
    /// Attempts allowed at once, on top of the sustained rate.
    pub burst: u32,
    /// How long a `ban` lasts.
    #[serde(with = "humantime_serde")]
    pub ban_ttl: Duration,
}

impl LoginVelocityConfig {
    /// The per-address default: 10 attempts/s with a burst of 30.
    pub fn per_ip() -> Self {
        Self::limit(10.0, 30)
    }

    /// The per-account default: 5 attempts/s with a burst of 20.
    pub fn per_account() -> Self {
        Self::limit(5.0, 20)
    }

    fn limit(rate: f64, burst: u32) -> Self {
        Self {
            action: Action::Challenge,
            rate,
            per: Duration::from_secs(1),
            burst,
            ban_ttl: Duration::from_secs(15 * 60),
        }
    }

    fn ip_over_default<'de, D: serde::Deserializer<'de>>(
        d: D,
    ) -> std::result::Result<Self, D::Error> {
        LoginVelocityPatch::deserialize(d).map(|p| p.over(Self::per_ip()))
    }

    fn account_over_default<'de, D: serde::Deserializer<'de>>(
        d: D,
    ) -> std::result::Result<Self, D::Error> {
        LoginVelocityPatch::deserialize(d).map(|p| p.over(Self::per_account()))
    }

    /// The same limit as a plain GCRA rate limit.
    pub fn velocity(&self) -> VelocityConfig {
        VelocityConfig {
            action: self.action,
            rate: self.rate,
            per: self.per,
            burst: self.burst,
        }
    }

    fn validate(&self, field: &str) -> Result<()> {
        self.velocity().validate(field)?;
        positive(&format!("{field}.ban_ttl"), self.ban_ttl)?;
        if self.action == Action::Revoke {
            return Err(Error::config(
                format!("{field}.action"),
                "must be off, log, challenge or ban (a login has no session to revoke)",
            ));
        }
        Ok(())
    }
}

/// A login velocity table as written: the fields it leaves out keep the
/// defaults of its own rule (the two rules have different defaults).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LoginVelocityPatch {
    action: Option<Action>,
    rate: Option<f64>,
    #[serde(default, with = "humantime_serde")]
    per: Option<Duration>,
    burst: Option<u32>,
    #[serde(default, with = "humantime_serde")]
    ban_ttl: Option<Duration>,
}

impl LoginVelocityPatch {
    fn over(self, base: LoginVelocityConfig) -> LoginVelocityConfig {
        LoginVelocityConfig {
            action: self.action.unwrap_or(base.action),
            rate: self.rate.unwrap_or(base.rate),
            per: self.per.unwrap_or(base.per),
            burst: self.burst.unwrap_or(base.burst),
            ban_ttl: self.ban_ttl.unwrap_or(base.ban_ttl),
        }
    }
}

/// Robotic cadence: inter-request gaps too regular over the last requests.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CadenceConfig {
    /// What happens when the rule fires. Off by default.
    pub action: Action,
    /// How many recent gaps to look at (3 to 15).
    pub gaps: u32,
    /// Fire when the gaps' coefficient of variation is below this.
    pub max_cv: f64,
}

impl Default for CadenceConfig {
    fn default() -> Self {
        Self {
            action: Action::Off,
            gaps: 10,
            max_cv: 0.05,
        }
    }
}

/// Escalation: repeated invalidations of one account ban it.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EscalationConfig {
    /// `ban` to escalate, `off` (or `log`) not to.
    pub action: Action,
    /// Security invalidations inside `window` that ban the account.
    pub invalidations: u32,
    /// The window over which invalidations are counted.
    #[serde(with = "humantime_serde")]
    pub window: Duration,
    /// How long a ban lasts.
    #[serde(with = "humantime_serde")]
    pub ban_ttl: Duration,
}

impl Default for EscalationConfig {
    fn default() -> Self {
        Self {
            action: Action::Ban,
            invalidations: 3,
            window: Duration::from_secs(3600),
            ban_ttl: Duration::from_secs(3600),
        }
    }
}

/// Limits of the session store.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    /// Most sessions held, enforced per shard. A login into a full shard
    /// first forgets sessions past their TTLs and dead ones; if the shard
    /// is still full of live sessions, the login is refused with
    /// `SESSION_STORE_FULL`. A live session is never evicted.
    pub max_sessions: usize,
    /// Number of independently locked shards (a power of two).
    pub shards: usize,
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            max_sessions: 2_000_000,
            shards: 64,
        }
    }
}

impl EngineConfig {
    /// Checks every value; the error names the field under `prefix`
    /// (such as `"rules"`).
    pub fn validate(&self, prefix: &str) -> Result<()> {
        let at = |field: &str| format!("{prefix}.{field}");
        let l = &self.lifetime;
        positive(&at("lifetime.absolute_ttl"), l.absolute_ttl)?;
        positive(&at("lifetime.idle_ttl"), l.idle_ttl)?;
        let t = &self.impossible_travel;
        finite_positive(&at("impossible_travel.max_kmh"), t.max_kmh)?;
        if !(t.min_km.is_finite() && t.min_km >= 0.0) {
            return Err(Error::config(
                at("impossible_travel.min_km"),
                "must be 0 or more",
            ));
        }
        let c = &self.concurrency;
        at_least(&at("concurrency.max_ips"), c.max_ips.into(), 1)?;
        at_least(&at("concurrency.max_in_flight"), c.max_in_flight.into(), 1)?;
        positive(&at("concurrency.window"), c.window)?;
        self.session_velocity.validate(&at("session_velocity"))?;
        self.account_velocity.validate(&at("account_velocity"))?;
        self.login_velocity_ip.validate(&at("login_velocity_ip"))?;
        (self.login_velocity_account).validate(&at("login_velocity_account"))?;
        let r = &self.robotic_cadence;
        if !(3..=15).contains(&r.gaps) {
            return Err(Error::config(
                at("robotic_cadence.gaps"),
                "must be between 3 and 15",
            ));
        }
        finite_positive(&at("robotic_cadence.max_cv"), r.max_cv)?;
        let e = &self.escalation;
        at_least(&at("escalation.invalidations"), e.invalidations.into(), 1)?;
        positive(&at("escalation.window"), e.window)?;
        positive(&at("escalation.ban_ttl"), e.ban_ttl)?;
        if matches!(e.action, Action::Challenge | Action::Revoke) {
            return Err(Error::config(
                at("escalation.action"),
                "must be off, log or ban",
            ));
        }
        let s = &self.store;
        at_least(&at("store.max_sessions"), s.max_sessions as u64, 1)?;
        if !s.shards.is_power_of_two() || s.shards > 4096 {
            return Err(Error::config(
                at("store.shards"),
                "must be a power of two up to 4096",
            ));
        }
        Ok(())
    }
}

impl VelocityConfig {
    fn validate(&self, field: &str) -> Result<()> {
        finite_positive(&format!("{field}.rate"), self.rate)?;
        positive(&format!("{field}.per"), self.per)?;
        at_least(&format!("{field}.burst"), self.burst.into(), 1)
    }
}

fn positive(field: &str, d: Duration) -> Result<()> {
    if d.is_zero() {
        return Err(Error::config(field, "must be longer than zero"));
    }
    Ok(())
}

fn finite_positive(field: &str, x: f64) -> Result<()> {
    if !(x.is_finite() && x > 0.0) {
        return Err(Error::config(
            field,
            format!("must be a positive number, got {x}"),
        ));
    }
    Ok(())
}

fn at_least(field: &str, x: u64, min: u64) -> Result<()> {
    if x < min {
        return Err(Error::config(
            field,
            format!("must be at least {min}, got {x}"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        EngineConfig::default()
            .validate("rules")
            .expect("defaults validate");
    }

    #[test]
    fn toml_with_durations_parses_and_unknown_fields_are_refused() {
        let cfg: EngineConfig = toml::from_str(
            "[lifetime]\nidle_ttl = \"2m\"\n[session_velocity]\naction = \"revoke\"\nrate = 2\nburst = 3\n",
        )
        .expect("parses");
        assert_eq!(cfg.lifetime.idle_ttl, Duration::from_secs(120));
        assert_eq!(cfg.session_velocity.action, Action::Revoke);
        let err = toml::from_str::<EngineConfig>("[lifetime]\nidle = \"2m\"\n")
            .expect_err("unknown field");
        assert!(err.to_string().contains("idle"), "{err}");
    }

    #[test]
    fn impossible_values_name_their_field() {
        let mut cfg = EngineConfig::default();
        cfg.session_velocity.rate = 0.0;
        let err = cfg.validate("rules").expect_err("zero rate");
        assert!(
            err.to_string().contains("rules.session_velocity.rate"),
            "{err}"
        );
        let mut cfg = EngineConfig::default();
        cfg.store.shards = 3;
        let err = cfg.validate("rules").expect_err("shards");
        assert!(err.to_string().contains("rules.store.shards"), "{err}");
    }

    #[test]
    fn gcra_interval_and_tolerance_follow_rate_and_burst() {
        let v = VelocityConfig {
            action: Action::Challenge,
            rate: 4.0,
            per: Duration::from_secs(1),
            burst: 3,
        };
        assert_eq!(v.interval_us(), 250_000);
        assert_eq!(v.tolerance_us(), 500_000);
    }
}
