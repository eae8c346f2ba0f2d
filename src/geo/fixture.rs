//! The human-readable geo fixture source: `[[range]]` tables in TOML.
//!
//! Each range maps one network to the identity sessionrange should report
//! for it. The file is validated once at load, and every error names the
//! file, the line and the field at fault.

use std::path::{Path, PathBuf};

use ipnetwork::IpNetwork;
use serde::{Deserialize, Deserializer};
use toml::Spanned;

use crate::error::{Error, Result};
use crate::network::{CountryCode, Location, NetworkClass};

/// One network of the fixture source and the identity it maps to.
#[derive(Clone, Debug, PartialEq)]
pub struct FixtureRange {
    /// The network, with no host bits set.
    pub network: IpNetwork,
    /// Autonomous system number.
    pub asn: u32,
    /// The AS organisation.
    pub org: String,
    /// The declared class; `None` leaves it to the hosting-ASN list.
    pub class: Option<NetworkClass>,
    /// Country of the range.
    pub country: Option<CountryCode>,
    /// City name, for people reading the database.
    pub city: Option<String>,
    /// Approximate location.
    pub location: Option<Location>,
    /// The line of the `network` key in the source, for error messages.
    pub line: usize,
}

/// A parsed and validated fixture source file.
#[derive(Clone, Debug, PartialEq)]
pub struct FixtureSet {
    path: PathBuf,
    ranges: Vec<FixtureRange>,
}

impl FixtureSet {
    /// Reads and validates the fixture source at `path`.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] if the file cannot be read, [`Error::GeoFixture`] if it
    /// is malformed.
    pub fn load(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        Self::parse(&text, path)
    }

    /// Parses fixture source `text`; `path` is only used in error messages.
    ///
    /// # Errors
    ///
    /// [`Error::GeoFixture`] naming the line and field of the first problem.
    pub fn parse(text: &str, path: impl Into<PathBuf>) -> Result<Self> {
        let path = path.into();
        let file = deserialize(text).map_err(|message| fixture_error(&path, message))?;
        let ranges = file.range.into_iter().map(|r| r.into_range(text)).collect();
        let set = Self { path, ranges };
        set.validate()?;
        Ok(set)
    }

    /// The file the set was read from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The ranges, in file order.
    pub fn ranges(&self) -> &[FixtureRange] {
        &self.ranges
    }

    /// Builds an [`Error::GeoFixture`] about the network of `range`.
    pub(crate) fn error_at(&self, range: &FixtureRange, message: impl std::fmt::Display) -> Error {
        let index = self.ranges.iter().position(|r| r.line == range.line);
        let field = format!("range[{}].network", index.unwrap_or_default());
        let line = range.line;
        fixture_error(
            &self.path,
            format!("line {line}, field `{field}`: {message}"),
        )
    }

    fn validate(&self) -> Result<()> {
        for (i, range) in self.ranges.iter().enumerate() {
            if let Some(reason) = unwritable(range.network) {
                return Err(self.error_at(range, reason));
            }
            let earlier = self.ranges[..i].iter().find(|r| r.network == range.network);
            if let Some(earlier) = earlier {
                let msg = format!(
                    "{} is already listed on line {}",
                    range.network, earlier.line
                );
                return Err(self.error_at(range, msg));
            }
        }
        Ok(())
    }
}

fn fixture_error(path: &Path, message: String) -> Error {
    Error::GeoFixture {
        path: path.to_owned(),
        message,
    }
}

/// IPv6 space a fixture network may not touch: IPv4 lives under `::/96`,
/// and the IPv4-mapped, Teredo and 6to4 ranges alias it.
const RESERVED_FOR_IPV4: [&str; 4] = ["::/96", "::ffff:0:0/96", "2001::/32", "2002::/16"];

/// Why `network` cannot be written to an IPv6 database holding IPv4, if so.
fn unwritable(network: IpNetwork) -> Option<String> {
    let IpNetwork::V6(v6) = network else {
        return None;
    };
    RESERVED_FOR_IPV4
        .iter()
        .filter_map(|s| s.parse::<ipnetwork::Ipv6Network>().ok())
        .find(|r| r.contains(v6.network()) || v6.contains(r.network()))
        .map(|r| format!("{network} overlaps {r}, where the database keeps or aliases IPv4"))
}

/// Deserializes the file, turning errors into `line N, field X: message`.
fn deserialize(text: &str) -> std::result::Result<SourceFile, String> {
    crate::toml_file::deserialize(text).map_err(|p| p.to_string())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SourceFile {
    #[serde(default)]
    range: Vec<SourceRange>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SourceRange {
    network: Spanned<Network>,
    asn: std::num::NonZeroU32,
    #[serde(deserialize_with = "non_empty")]
    org: String,
    #[serde(default)]
    class: Option<NetworkClass>,
    #[serde(default)]
    country: Option<CountryCode>,
    #[serde(default, deserialize_with = "non_empty_option")]
    city: Option<String>,
    #[serde(default)]
    location: Option<SourceLocation>,
}

impl SourceRange {
    fn into_range(self, text: &str) -> FixtureRange {
        FixtureRange {
            line: crate::toml_file::line_of(text, self.network.span().start),
            network: self.network.into_inner().0,
            asn: self.asn.get(),
            org: self.org,
            class: self.class,
            country: self.country,
            city: self.city,
            location: self.location.map(|l| Location {
                lat: l.lat,
                lon: l.lon,
            }),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SourceLocation {
    #[serde(deserialize_with = "latitude")]
    lat: f64,
    #[serde(deserialize_with = "longitude")]
    lon: f64,
}

/// A network written in CIDR form with no host bits set.
struct Network(IpNetwork);

impl<'de> Deserialize<'de> for Network {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        parse_network(&text)
            .map(Network)
            .map_err(serde::de::Error::custom)
    }
}

fn parse_network(text: &str) -> std::result::Result<IpNetwork, String> {
    if !text.contains('/') {
        return Err(format!("{text:?} needs a prefix length, such as {text}/24"));
    }
    let network: IpNetwork = text
        .parse()
        .map_err(|e| format!("{text:?} is not a CIDR network: {e}"))?;
    if network.ip() != network.network() {
        let fixed = format!("{}/{}", network.network(), network.prefix());
        return Err(format!(
            "{text:?} has host bits set; did you mean {fixed:?}?"
        ));
    }
    Ok(network)
}

fn non_empty<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<String, D::Error> {
    let s = String::deserialize(d)?;
    if s.trim().is_empty() {
        return Err(serde::de::Error::custom("must not be empty"));
    }
    Ok(s)
}

fn non_empty_option<'de, D>(d: D) -> std::result::Result<Option<String>, D::Error>
where
    D: Deserializer<'de>,
{
    non_empty(d).map(Some)
}

fn latitude<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<f64, D::Error> {
    degrees(d, 90.0)
}

fn longitude<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<f64, D::Error> {
    degrees(d, 180.0)
}

fn degrees<'de, D: Deserializer<'de>>(d: D, limit: f64) -> std::result::Result<f64, D::Error> {
    let value = f64::deserialize(d)?;
    if !(-limit..=limit).contains(&value) {
        let msg = format!("{value} is out of range; expected -{limit} to {limit}");
        return Err(serde::de::Error::custom(msg));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
[[range]]
network = "73.0.0.0/8"
asn = 7922
org = "Comcast Cable Communications, LLC"
class = "residential"
country = "us"
city = "Philadelphia"
location = { lat = 39.95, lon = -75.16 }

[[range]]
network = "2a01:4f8::/32"
asn = 24940
org = "Hetzner Online GmbH"
"#;

    fn error_of(text: &str) -> String {
        match FixtureSet::parse(text, "ranges.toml") {
            Ok(_) => panic!("expected an error for:\n{text}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn parses_ranges_with_and_without_optional_fields() {
        let set = FixtureSet::parse(GOOD, "ranges.toml").expect("valid source");
        let [comcast, hetzner] = set.ranges() else {
            panic!("two ranges expected");
        };
        assert_eq!(comcast.line, 3);
        assert_eq!(comcast.country.map(|c| c.to_string()), Some("US".into()));
        assert_eq!(
            comcast.location,
            Some(Location {
                lat: 39.95,
                lon: -75.16
            })
        );
        assert_eq!(hetzner.class, None);
        assert_eq!(hetzner.location, None);
        assert_eq!(hetzner.line, 12);
    }

    #[test]
    fn refuses_networks_with_host_bits_or_no_prefix() {
        assert!(parse_network("73.1.0.0/8").is_err_and(|e| e.contains("73.0.0.0/8")));
        assert!(parse_network("73.1.2.3").is_err_and(|e| e.contains("prefix length")));
        assert!(parse_network("2601::/20").is_ok());
    }

    #[test]
    fn refuses_ipv6_networks_over_ipv4_space() {
        let net = |s: &str| s.parse::<IpNetwork>().expect("valid CIDR");
        assert!(unwritable(net("2002:c000::/24")).is_some());
        assert!(unwritable(net("::/0")).is_some());
        assert!(unwritable(net("2001::/32")).is_some());
        assert!(unwritable(net("2001:41d0::/32")).is_none());
        assert!(unwritable(net("10.0.0.0/8")).is_none());
    }

    #[test]
    fn names_line_and_field_of_a_bad_value() {
        let text = GOOD.replace("class = \"residential\"", "class = \"cloud\"");
        let msg = error_of(&text);
        assert!(msg.contains("ranges.toml"), "{msg}");
        assert!(msg.contains("line 6, field `range[0].class`"), "{msg}");
    }

    #[test]
    fn names_line_and_field_of_an_out_of_range_latitude() {
        let text = GOOD.replace("lat = 39.95", "lat = 139.95");
        let msg = error_of(&text);
        assert!(
            msg.contains("line 9, field `range[0].location.lat`"),
            "{msg}"
        );
    }

    #[test]
    fn reports_duplicate_networks_with_both_lines() {
        let text = GOOD.replace("2a01:4f8::/32", "73.0.0.0/8");
        let msg = error_of(&text);
        assert!(msg.contains("line 12, field `range[1].network`"), "{msg}");
        assert!(msg.contains("already listed on line 3"), "{msg}");
    }
}
