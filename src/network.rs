//! Network identity: what an IP address says about who is calling.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// The kind of network an address belongs to.
///
/// Risk engines treat a move between classes (a session born on a home
/// connection that shows up from a cloud provider) as its own signal.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NetworkClass {
    /// A consumer ISP: cable, DSL, fibre.
    Residential,
    /// A hosting or cloud provider.
    Datacenter,
    /// A cellular carrier.
    Mobile,
    /// A company's own network.
    Corporate,
    /// Not known.
    #[default]
    Unknown,
}

impl NetworkClass {
    /// The lowercase name used in files and events.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Residential => "residential",
            Self::Datacenter => "datacenter",
            Self::Mobile => "mobile",
            Self::Corporate => "corporate",
            Self::Unknown => "unknown",
        }
    }
}

impl fmt::Display for NetworkClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for NetworkClass {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "residential" => Ok(Self::Residential),
            "datacenter" => Ok(Self::Datacenter),
            "mobile" => Ok(Self::Mobile),
            "corporate" => Ok(Self::Corporate),
            "unknown" => Ok(Self::Unknown),
            other => Err(format!(
                "unknown network class {other:?}; expected residential, datacenter, mobile, corporate or unknown"
            )),
        }
    }
}

/// An ISO 3166-1 alpha-2 country code, stored in two bytes.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CountryCode([u8; 2]);

impl CountryCode {
    /// Parses a two-letter code; case is folded to upper.
    pub fn parse(s: &str) -> Option<Self> {
        match s.as_bytes() {
            [a, b] if a.is_ascii_alphabetic() && b.is_ascii_alphabetic() => {
                Some(Self([a.to_ascii_uppercase(), b.to_ascii_uppercase()]))
            }
            _ => None,
        }
    }

    /// The code as a string slice, such as `"US"`.
    pub fn as_str(&self) -> &str {
        // Only ASCII letters are ever stored.
        std::str::from_utf8(&self.0).unwrap_or("??")
    }
}

impl fmt::Debug for CountryCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.as_str())
    }
}

impl fmt::Display for CountryCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for CountryCode {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for CountryCode {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s).ok_or_else(|| {
            serde::de::Error::custom(format!("{s:?} is not a two-letter country code"))
        })
    }
}

/// A point on the globe, in degrees.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Location {
    /// Latitude, -90 to 90.
    pub lat: f64,
    /// Longitude, -180 to 180.
    pub lon: f64,
}

impl Location {
    /// Great-circle distance to `other` in kilometres (haversine formula).
    pub fn distance_km(&self, other: &Location) -> f64 {
        const EARTH_RADIUS_KM: f64 = 6371.0;
        let (p1, p2) = (self.lat.to_radians(), other.lat.to_radians());
        let dp = p2 - p1;
        let dl = (other.lon - self.lon).to_radians();
        let a = (dp / 2.0).sin().powi(2) + p1.cos() * p2.cos() * (dl / 2.0).sin().powi(2);
        2.0 * EARTH_RADIUS_KM * a.sqrt().clamp(0.0, 1.0).asin()
    }
}

/// What sessionrange knows about the network behind an IP address.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct NetworkInfo {
    /// Autonomous system number, if known.
    pub asn: Option<u32>,
    /// The AS organisation, such as `"Comcast Cable Communications, LLC"`.
    pub org: Option<Arc<str>>,
    /// Country of the address, if known.
    pub country: Option<CountryCode>,
    /// The network class.
    pub class: NetworkClass,
    /// Approximate location, if known.
    pub location: Option<Location>,
}

impl NetworkInfo {
    /// The network of an address found in no database.
    pub fn unknown() -> Self {
        Self::default()
    }

    /// A short human label: `AS7922 (residential, Comcast Cable Communications, LLC)`.
    pub fn label(&self) -> String {
        let asn = self
            .asn
            .map_or_else(|| "AS?".to_owned(), |a| format!("AS{a}"));
        match &self.org {
            Some(org) => format!("{asn} ({}, {org})", self.class),
            None => format!("{asn} ({})", self.class),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distance_new_york_to_london_is_about_5570_km() {
        let nyc = Location {
            lat: 40.7128,
            lon: -74.0060,
        };
        let lon = Location {
            lat: 51.5074,
            lon: -0.1278,
        };
        let d = nyc.distance_km(&lon);
        assert!((d - 5570.0).abs() < 20.0, "{d}");
        assert_eq!(nyc.distance_km(&nyc), 0.0);
    }

    #[test]
    fn country_codes_fold_case_and_refuse_junk() {
        assert_eq!(
            CountryCode::parse("us").map(|c| c.to_string()),
            Some("US".into())
        );
        assert!(CountryCode::parse("USA").is_none());
        assert!(CountryCode::parse("1A").is_none());
        assert!(CountryCode::parse("é").is_none());
    }

    #[test]
    fn network_class_round_trips_through_its_name() {
        for c in [
            NetworkClass::Residential,
            NetworkClass::Datacenter,
            NetworkClass::Mobile,
            NetworkClass::Corporate,
            NetworkClass::Unknown,
        ] {
            assert_eq!(c.as_str().parse::<NetworkClass>(), Ok(c));
        }
        assert!("cloud".parse::<NetworkClass>().is_err());
    }
}
