//! Building the fixture `.mmdb` files from their TOML source.
//!
//! Only with the `cli` feature (`sessionrange geo build`): the built files
//! are committed in `geo-fixtures/` and compiled in with `include_bytes!`,
//! so reading them needs no writer.
//!
//! The output follows MaxMind's own schemas, so [`GeoDb`](super::GeoDb)
//! reads fixtures and real GeoLite2 files through one code path: the ASN
//! database carries `autonomous_system_number` and
//! `autonomous_system_organization` (plus our `network_class`), the City
//! database `country.iso_code`, `registered_country.iso_code`, `city.names.en`
//! and `location.latitude` / `location.longitude`.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use ipnetwork::IpNetwork;
use mmdb_writer::ipnet::IpNet;
use mmdb_writer::{IpVersion, Ipv4Aliasing, ReservedNetworks, Value, Writer};

use super::fixture::{FixtureRange, FixtureSet};
use super::{ASN_FILE_NAME, CITY_FILE_NAME, FIXTURE_BUILD_EPOCH};
use crate::error::{Error, Result};

const DESCRIPTION: &str = "sessionrange test fixture: invented records, not real network data";

/// The two databases built from a [`FixtureSet`], as bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FixtureDatabases {
    /// The ASN database (`sessionrange-fixture-ASN`).
    pub asn: Vec<u8>,
    /// The City database (`sessionrange-fixture-City`).
    pub city: Vec<u8>,
}

impl FixtureSet {
    /// Builds the ASN and City databases for these ranges.
    ///
    /// Less specific networks are written first, so a more specific range
    /// wins wherever two overlap, whatever their order in the file.
    ///
    /// # Errors
    ///
    /// [`Error::GeoFixture`] naming the range the writer refused.
    pub fn to_databases(&self) -> Result<FixtureDatabases> {
        let mut asn = writer("ASN");
        let mut city = writer("City");
        for range in self.by_specificity() {
            let net = ip_net(range.network);
            let written = asn.insert_value(net, asn_record(range)).and_then(|()| {
                city_record(range).map_or(Ok(()), |value| city.insert_value(net, value))
            });
            written.map_err(|e| self.error_at(range, e))?;
        }
        let bytes = |w: &Writer| w.to_bytes().map_err(|e| self.whole_file_error(e));
        Ok(FixtureDatabases {
            asn: bytes(&asn)?,
            city: bytes(&city)?,
        })
    }

    fn by_specificity(&self) -> Vec<&FixtureRange> {
        let mut ranges: Vec<&FixtureRange> = self.ranges().iter().collect();
        ranges.sort_by_key(|r| (r.network.is_ipv4(), r.network.prefix()));
        ranges
    }

    fn whole_file_error(&self, error: mmdb_writer::Error) -> Error {
        Error::GeoFixture {
            path: self.path().to_owned(),
            message: format!("cannot write the database: {error}"),
        }
    }
}

/// Reads the fixture source at `source` and writes [`ASN_FILE_NAME`] and
/// [`CITY_FILE_NAME`] into `out_dir`, returning the paths written.
///
/// # Errors
///
/// [`Error::GeoFixture`] for a malformed source, [`Error::Io`] if a file
/// cannot be read or written.
pub fn build_fixtures(source: &Path, out_dir: &Path) -> Result<Vec<PathBuf>> {
    let databases = FixtureSet::load(source)?.to_databases()?;
    std::fs::create_dir_all(out_dir).map_err(|e| Error::io(out_dir, e))?;
    let files = [
        (ASN_FILE_NAME, databases.asn),
        (CITY_FILE_NAME, databases.city),
    ];
    let mut written = Vec::with_capacity(files.len());
    for (name, bytes) in files {
        let path = out_dir.join(name);
        std::fs::write(&path, bytes).map_err(|e| Error::io(&path, e))?;
        written.push(path);
    }
    Ok(written)
}

fn writer(kind: &str) -> Writer {
    Writer::builder(format!("sessionrange-fixture-{kind}"))
        .description(&[("en", DESCRIPTION)])
        .ip_version(IpVersion::V6)
        .ipv4_aliasing(Ipv4Aliasing::Enabled)
        // Loopback (127.0.0.0/8) is reserved, and the fixtures need it.
        .reserved_networks(ReservedNetworks::Included)
        .build_epoch(SystemTime::UNIX_EPOCH + Duration::from_secs(FIXTURE_BUILD_EPOCH))
        .build()
}

fn ip_net(network: IpNetwork) -> IpNet {
    match network {
        IpNetwork::V4(v4) => IpNet::V4(
            mmdb_writer::ipnet::Ipv4Net::new(v4.network(), v4.prefix())
                .unwrap_or_else(|_| unreachable!("ipnetwork prefixes are in range")),
        ),
        IpNetwork::V6(v6) => IpNet::V6(
            mmdb_writer::ipnet::Ipv6Net::new(v6.network(), v6.prefix())
                .unwrap_or_else(|_| unreachable!("ipnetwork prefixes are in range")),
        ),
    }
}

fn asn_record(range: &FixtureRange) -> Value {
    let mut fields = vec![
        ("autonomous_system_number", Value::U32(range.asn)),
        (
            "autonomous_system_organization",
            Value::from(range.org.as_str()),
        ),
    ];
    if let Some(class) = range.class {
        fields.push(("network_class", Value::from(class.as_str())));
    }
    Value::map(fields)
}

fn city_record(range: &FixtureRange) -> Option<Value> {
    let mut fields = Vec::new();
    if let Some(country) = range.country {
        fields.push(("country", iso_code(country.as_str())));
        fields.push(("registered_country", iso_code(country.as_str())));
    }
    if let Some(city) = &range.city {
        let names = Value::map([("en", Value::from(city.as_str()))]);
        fields.push(("city", Value::map([("names", names)])));
    }
    if let Some(location) = range.location {
        let lat = ("latitude", Value::Double(location.lat));
        let lon = ("longitude", Value::Double(location.lon));
        fields.push(("location", Value::map([lat, lon])));
    }
    (!fields.is_empty()).then(|| Value::map(fields))
}

fn iso_code(code: &str) -> Value {
    Value::map([("iso_code", Value::from(code))])
}

#[cfg(test)]
mod tests {
    use super::*;

    const SOURCE: &str = r#"
[[range]]
network = "10.0.0.0/8"
asn = 64512
org = "Outer"

[[range]]
network = "10.1.0.0/16"
asn = 64513
org = "Inner"
class = "corporate"
country = "DE"
location = { lat = 52.5, lon = 13.4 }
"#;

    fn set() -> FixtureSet {
        FixtureSet::parse(SOURCE, "test.toml").expect("valid source")
    }

    #[test]
    fn writes_less_specific_ranges_first() {
        let order: Vec<u32> = set().by_specificity().iter().map(|r| r.asn).collect();
        assert_eq!(order, [64512, 64513]);
    }

    #[test]
    fn builds_identical_bytes_twice() {
        let set = set();
        let first = set.to_databases().expect("builds");
        assert_eq!(first, set.to_databases().expect("builds"));
    }

    #[test]
    fn leaves_ranges_without_place_out_of_the_city_record() {
        let [outer, inner] = set().ranges().to_vec().try_into().expect("two ranges");
        assert_eq!(city_record(&outer), None);
        let Some(Value::Map(place)) = city_record(&inner) else {
            panic!("inner range has a place");
        };
        let keys: Vec<&str> = place.keys().map(String::as_str).collect();
        assert_eq!(keys, ["country", "location", "registered_country"]);
    }

    #[test]
    fn omits_network_class_when_undeclared() {
        let Value::Map(outer) = asn_record(&set().ranges()[0]) else {
            panic!("a map");
        };
        assert!(!outer.contains_key("network_class"));
    }
}
