//! Decoding ASN and City/Country records into the parts of a [`NetworkInfo`].
//!
//! Field names follow MaxMind's schemas, and every field is optional: a
//! record missing one yields less information, never an error.
//!
//! [`NetworkInfo`]: crate::network::NetworkInfo

use std::collections::HashSet;
use std::sync::Arc;

use serde::Deserialize;

use super::hosting::class_for_connection_type;
use super::mmdb::Found;
use crate::network::{CountryCode, Location, NetworkClass, NetworkInfo};

/// What an ASN database says about a network.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct AsnEntry {
    asn: Option<u32>,
    org: Option<Arc<str>>,
    class: NetworkClass,
}

impl AsnEntry {
    /// Decodes the record in `found`, resolving its class against `hosting`.
    pub(super) fn decode(found: &Found<'_>, hosting: &HashSet<u32>) -> Option<Self> {
        let raw: RawAsn<'_> = found.decode().ok()??;
        Some(Self {
            asn: raw.autonomous_system_number,
            org: raw.autonomous_system_organization.map(Arc::from),
            class: raw.class(hosting),
        })
    }

    /// Copies this entry into `info`.
    pub(super) fn fill(self, info: &mut NetworkInfo) {
        info.asn = self.asn;
        info.org = self.org;
        info.class = self.class;
    }
}

/// What a City or Country database says about a network.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) struct PlaceEntry {
    country: Option<CountryCode>,
    location: Option<Location>,
}

impl PlaceEntry {
    /// Decodes the record in `found`.
    pub(super) fn decode(found: &Found<'_>) -> Option<Self> {
        let raw: RawPlace<'_> = found.decode().ok()??;
        Some(raw.into())
    }

    /// Copies this entry into `info`.
    pub(super) fn fill(self, info: &mut NetworkInfo) {
        info.country = self.country;
        info.location = self.location;
    }
}

#[derive(Deserialize)]
struct RawAsn<'a> {
    autonomous_system_number: Option<u32>,
    #[serde(borrow)]
    autonomous_system_organization: Option<&'a str>,
    #[serde(borrow)]
    network_class: Option<&'a str>,
    #[serde(borrow)]
    connection_type: Option<&'a str>,
}

impl RawAsn<'_> {
    /// The declared class, else the connection type's, else the hosting list's.
    fn class(&self, hosting: &HashSet<u32>) -> NetworkClass {
        let declared = self.network_class.and_then(|c| c.parse().ok());
        declared
            .filter(|&c| c != NetworkClass::Unknown)
            .or_else(|| self.connection_type.and_then(class_for_connection_type))
            .or_else(|| {
                let asn = self.autonomous_system_number?;
                hosting.contains(&asn).then_some(NetworkClass::Datacenter)
            })
            .unwrap_or_default()
    }
}

#[derive(Deserialize)]
struct RawPlace<'a> {
    #[serde(borrow)]
    country: Option<RawCountry<'a>>,
    #[serde(borrow)]
    registered_country: Option<RawCountry<'a>>,
    location: Option<RawLocation>,
}

#[derive(Deserialize)]
struct RawCountry<'a> {
    #[serde(borrow)]
    iso_code: Option<&'a str>,
}

#[derive(Deserialize)]
struct RawLocation {
    latitude: Option<f64>,
    longitude: Option<f64>,
}

impl From<RawPlace<'_>> for PlaceEntry {
    fn from(raw: RawPlace<'_>) -> Self {
        let code = |c: Option<RawCountry<'_>>| c?.iso_code.and_then(CountryCode::parse);
        let location = raw.location.and_then(|l| {
            Some(Location {
                lat: l.latitude?,
                lon: l.longitude?,
            })
        });
        Self {
            country: code(raw.country).or_else(|| code(raw.registered_country)),
            location,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw_asn(
        asn: u32,
        class: Option<&'static str>,
        ctype: Option<&'static str>,
    ) -> RawAsn<'static> {
        RawAsn {
            autonomous_system_number: Some(asn),
            autonomous_system_organization: None,
            network_class: class,
            connection_type: ctype,
        }
    }

    #[test]
    fn declared_class_wins_over_connection_type_and_hosting_list() {
        let hosting = HashSet::from([64512]);
        let raw = raw_asn(64512, Some("mobile"), Some("Corporate"));
        assert_eq!(raw.class(&hosting), NetworkClass::Mobile);
    }

    #[test]
    fn connection_type_wins_over_hosting_list() {
        let hosting = HashSet::from([64512]);
        let raw = raw_asn(64512, Some("unknown"), Some("Cellular"));
        assert_eq!(raw.class(&hosting), NetworkClass::Mobile);
    }

    #[test]
    fn hosting_list_decides_when_the_record_is_silent() {
        let hosting = HashSet::from([64512]);
        assert_eq!(
            raw_asn(64512, None, None).class(&hosting),
            NetworkClass::Datacenter
        );
        assert_eq!(
            raw_asn(64513, None, None).class(&hosting),
            NetworkClass::Unknown
        );
        assert_eq!(
            raw_asn(64513, Some("cloud"), None).class(&hosting),
            NetworkClass::Unknown
        );
    }

    #[test]
    fn country_falls_back_to_registered_country() {
        let place = PlaceEntry::from(RawPlace {
            country: None,
            registered_country: Some(RawCountry {
                iso_code: Some("de"),
            }),
            location: Some(RawLocation {
                latitude: Some(1.0),
                longitude: None,
            }),
        });
        assert_eq!(place.country, CountryCode::parse("DE"));
        assert_eq!(place.location, None);
    }
}
