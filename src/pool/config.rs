//! What a proxy pool offers: static exits, a rotating gateway, credentials and faults.

use std::net::IpAddr;
use std::time::Duration;

use ipnetwork::IpNetwork;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::network::NetworkClass;
pub use crate::trace::proxy::FaultKind;

/// A proxy pool: named static exits and an optional rotating gateway.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PoolConfig {
    /// Seeds every random draw: gateway exits, jitter, fault probabilities.
    pub seed: u64,
    /// Proxy username; `None` means the pool asks for no credentials.
    pub user: Option<String>,
    /// Proxy password, checked when `user` is set.
    pub password: Option<String>,
    /// Static exits, one proxy URL each.
    pub exits: Vec<ExitConfig>,
    /// The rotating gateway, if any.
    pub gateway: Option<GatewayConfig>,
}

/// A static exit: one proxy URL with a fixed exit address.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExitConfig {
    /// Name shown in URLs listings and the trace, such as `us-res`.
    pub name: String,
    /// The exit address the target sees; its ASN, class and country come
    /// from the geo database.
    pub ip: IpAddr,
    /// Faults of this exit.
    #[serde(default)]
    pub faults: Vec<FaultConfig>,
}

/// A rotating gateway: every new connection gets a new exit, unless the
/// username asks for a sticky session (`user-session-<id>`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GatewayConfig {
    /// Networks exits are drawn from.
    #[serde(default)]
    pub ranges: Vec<IpNetwork>,
    /// Network classes exits are drawn from, using the bundled fixture ranges.
    #[serde(default)]
    pub classes: Vec<NetworkClass>,
    /// How long a sticky session keeps its exit at most.
    #[serde(with = "humantime_serde", default = "default_sticky_ttl")]
    pub sticky_ttl: Duration,
    /// How long a sticky session keeps its exit without being used.
    #[serde(with = "humantime_serde", default = "default_idle_ttl")]
    pub idle_ttl: Duration,
    /// Faults of the gateway.
    #[serde(default)]
    pub faults: Vec<FaultConfig>,
}

fn default_sticky_ttl() -> Duration {
    Duration::from_secs(10 * 60)
}

fn default_idle_ttl() -> Duration {
    Duration::from_secs(60)
}

/// One scripted fault. It becomes active once every trigger given has been
/// reached, and then fires on each request (or connection, for `bandwidth`
/// and `reset`) with `probability`, drawn from the pool's seed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultConfig {
    /// What happens.
    pub kind: FaultKind,
    /// Active once this many requests have been served by the node.
    #[serde(default)]
    pub after_requests: Option<u64>,
    /// Active once this many connections have been accepted by the node.
    #[serde(default)]
    pub after_connections: Option<u64>,
    /// Active this long after the pool started.
    #[serde(default, with = "humantime_serde")]
    pub after: Option<Duration>,
    /// Chance that an active fault fires on a given request or connection.
    #[serde(default = "one")]
    pub probability: f64,
    /// Added delay, for `latency`.
    #[serde(default, with = "humantime_serde")]
    pub latency: Option<Duration>,
    /// Uniform jitter around `latency`.
    #[serde(default, with = "humantime_serde")]
    pub jitter: Option<Duration>,
    /// Bytes per second to the client, for `bandwidth`.
    #[serde(default)]
    pub bytes_per_sec: Option<u64>,
    /// Bytes sent to the client before the reset, for `reset`.
    #[serde(default)]
    pub after_bytes: Option<u64>,
}

fn one() -> f64 {
    1.0
}

impl FaultConfig {
    /// A fault of `kind`, active from the start, that always fires.
    pub fn new(kind: FaultKind) -> Self {
        Self {
            kind,
            after_requests: None,
            after_connections: None,
            after: None,
            probability: 1.0,
            latency: None,
            jitter: None,
            bytes_per_sec: None,
            after_bytes: None,
        }
    }

    /// Whether the fault is judged once per new connection rather than once
    /// per request: `reset` and `bandwidth` always, `dies` and `hangs` when
    /// they count connections. Each fault is judged at one place only, so
    /// `probability` means what it says.
    pub fn per_connection(&self) -> bool {
        self.kind.per_connection()
            || (matches!(self.kind, FaultKind::Dies | FaultKind::Hangs)
                && self.after_connections.is_some())
    }

    /// Checks the fault's fields; errors name `prefix.field`.
    pub fn validate(&self, prefix: &str) -> Result<()> {
        let field = |f: &str| format!("{prefix}.{f}");
        if !(0.0..=1.0).contains(&self.probability) {
            return Err(Error::config(field("probability"), "must be within 0..=1"));
        }
        let kind = self.kind;
        let needs = |present: bool, name: &str, wanted: FaultKind| -> Result<()> {
            match (present, kind == wanted) {
                (false, true) => Err(Error::config(
                    field(name),
                    format!("a `{}` fault needs `{name}`", kind.as_str()),
                )),
                (true, false) => Err(Error::config(
                    field(name),
                    format!("`{name}` only applies to `{}` faults", wanted.as_str()),
                )),
                _ => Ok(()),
            }
        };
        needs(self.latency.is_some(), "latency", FaultKind::Latency)?;
        needs(
            self.bytes_per_sec.is_some(),
            "bytes_per_sec",
            FaultKind::Bandwidth,
        )?;
        needs(self.after_bytes.is_some(), "after_bytes", FaultKind::Reset)?;
        if self.jitter.is_some() && kind != FaultKind::Latency {
            return Err(Error::config(
                field("jitter"),
                "only applies to `latency` faults",
            ));
        }
        let hour = Duration::from_secs(3600);
        for (name, d) in [("latency", self.latency), ("jitter", self.jitter)] {
            if d.is_some_and(|d| d > hour) {
                return Err(Error::config(field(name), "must be at most 1h"));
            }
        }
        if self.bytes_per_sec == Some(0) {
            return Err(Error::config(field("bytes_per_sec"), "must be at least 1"));
        }
        if kind.per_connection() && self.after_requests.is_some() {
            return Err(Error::config(
                field("after_requests"),
                format!(
                    "a `{}` fault is judged per connection; use `after_connections` or `after`",
                    kind.as_str()
                ),
            ));
        }
        Ok(())
    }
}

impl PoolConfig {
    /// Whether the pool has anything to start.
    pub fn is_empty(&self) -> bool {
        self.exits.is_empty() && self.gateway.is_none()
    }

    /// Checks names, credentials, ranges and faults; errors name `prefix.field`.
    pub fn validate(&self, prefix: &str) -> Result<()> {
        if self.password.is_some() && self.user.is_none() {
            return Err(Error::config(
                format!("{prefix}.password"),
                "a password needs a `user`",
            ));
        }
        if let Some(user) = &self.user
            && (user.is_empty() || user.contains(':') || user.contains("-session-"))
        {
            return Err(Error::config(
                format!("{prefix}.user"),
                "must be non-empty, without `:` or `-session-`",
            ));
        }
        let mut names = std::collections::HashSet::new();
        for (i, exit) in self.exits.iter().enumerate() {
            let at = format!("{prefix}.exits[{i}]");
            let valid_name = !exit.name.is_empty()
                && exit
                    .name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
            if !valid_name || exit.name == "gateway" {
                return Err(Error::config(
                    format!("{at}.name"),
                    "must be letters, digits, `-` or `_`, and not `gateway`",
                ));
            }
            if !names.insert(exit.name.as_str()) {
                return Err(Error::config(
                    format!("{at}.name"),
                    format!("exit `{}` is named twice", exit.name),
                ));
            }
            validate_faults(&exit.faults, &at)?;
        }
        if let Some(g) = &self.gateway {
            let at = format!("{prefix}.gateway");
            if g.ranges.is_empty() && g.classes.is_empty() {
                return Err(Error::config(
                    format!("{at}.ranges"),
                    "a gateway needs `ranges` or `classes` to draw exits from",
                ));
            }
            if g.sticky_ttl.is_zero() || g.idle_ttl.is_zero() {
                return Err(Error::config(
                    format!("{at}.sticky_ttl"),
                    "TTLs must be positive",
                ));
            }
            validate_faults(&g.faults, &at)?;
        }
        Ok(())
    }
}

fn validate_faults(faults: &[FaultConfig], at: &str) -> Result<()> {
    faults
        .iter()
        .enumerate()
        .try_for_each(|(i, f)| f.validate(&format!("{at}.faults[{i}]")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> PoolConfig {
        toml::from_str(text).expect("valid pool")
    }

    #[test]
    fn a_full_pool_parses_and_validates() {
        let pool = parse(
            r#"
            seed = 7
            user = "scraper"
            password = "pw"
            [[exits]]
            name = "us-res"
            ip = "127.0.1.20"
            [[exits.faults]]
            kind = "latency"
            latency = "20ms"
            jitter = "5ms"
            after_requests = 3
            [gateway]
            classes = ["residential"]
            sticky_ttl = "30s"
            idle_ttl = "5s"
            "#,
        );
        pool.validate("pool").expect("valid");
        assert_eq!(pool.exits[0].faults[0].kind, FaultKind::Latency);
        let g = pool.gateway.expect("gateway");
        assert_eq!(g.sticky_ttl, Duration::from_secs(30));
    }

    #[test]
    fn fault_fields_must_match_their_kind() {
        let mut f = FaultConfig::new(FaultKind::Reset);
        let err = f.validate("f").expect_err("reset needs after_bytes");
        assert!(err.to_string().contains("f.after_bytes"), "{err}");
        f.after_bytes = Some(10);
        f.latency = Some(Duration::from_millis(5));
        let err = f.validate("f").expect_err("latency on a reset");
        assert!(err.to_string().contains("f.latency"), "{err}");
        let mut p = FaultConfig::new(FaultKind::Dies);
        p.probability = 1.5;
        assert!(p.validate("f").is_err());
    }

    #[test]
    fn exit_names_are_unique_and_gateways_need_exits() {
        let twice = parse(
            "[[exits]]\nname = \"a\"\nip = \"127.0.1.2\"\n[[exits]]\nname = \"a\"\nip = \"127.0.1.3\"\n",
        );
        let err = twice.validate("pool").expect_err("duplicate");
        assert!(err.to_string().contains("pool.exits[1].name"), "{err}");
        let empty = parse("[gateway]\n");
        assert!(empty.validate("pool").is_err());
    }
}
