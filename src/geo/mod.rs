//! Network identity from MaxMind DB files: who is behind an IP address.
//!
//! A [`GeoDb`] answers [`GeoDb::lookup`] with a [`NetworkInfo`]: the ASN and
//! organisation and the [`NetworkClass`](crate::NetworkClass) from an ASN database, the country
//! and location from a City or Country database. Either database may be
//! missing; an address found in neither is [`NetworkInfo::unknown`].
//!
//! The same code reads two kinds of files:
//!
//! - the fixtures in `geo-fixtures/`, built from the human-readable
//!   `geo-fixtures/ranges.toml` by `sessionrange geo build` and compiled into
//!   the binary ([`GeoDb::embedded`]);
//! - real MaxMind GeoLite2-ASN and GeoLite2-City or -Country files that a
//!   user drops in ([`GeoDb::open`]).
//!
//! ```
//! use sessionrange::{GeoDb, NetworkClass};
//!
//! let geo = GeoDb::embedded();
//! let home = geo.lookup("127.0.1.10".parse()?);
//! assert_eq!(home.asn, Some(7922));
//! assert_eq!(home.class, NetworkClass::Residential);
//! assert_eq!(geo.lookup("127.0.0.1".parse()?).class, NetworkClass::Unknown);
//! # Ok::<(), std::net::AddrParseError>(())
//! ```

#[cfg(feature = "cli")]
mod build;
mod fixture;
mod hosting;
mod mmdb;
mod record;

use std::borrow::Cow;
use std::collections::HashSet;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

#[cfg(feature = "cli")]
pub use build::{FixtureDatabases, build_fixtures};
pub use fixture::{FixtureRange, FixtureSet};
pub use hosting::{HOSTING_ASNS, HostingAsn, class_for_connection_type};

use self::mmdb::MmdbFile;
use self::record::{AsnEntry, PlaceEntry};
use crate::error::Result;
use crate::network::NetworkInfo;

/// Where `sessionrange geo build` reads the fixture source by default.
pub const FIXTURE_SOURCE: &str = "geo-fixtures/ranges.toml";
/// Where `sessionrange geo build` writes the fixture databases by default.
pub const FIXTURE_DIR: &str = "geo-fixtures";
/// File name of the fixture ASN database.
pub const ASN_FILE_NAME: &str = "asn.mmdb";
/// File name of the fixture City database.
pub const CITY_FILE_NAME: &str = "city.mmdb";
/// The `build_epoch` written to fixture metadata (2025-01-01T00:00:00Z).
///
/// It is fixed so that a rebuild of unchanged ranges is byte-identical.
pub const FIXTURE_BUILD_EPOCH: u64 = 1_735_689_600;

/// The fixture source compiled into the binary, for drawing addresses by class.
pub const EMBEDDED_RANGES: &str = include_str!("../../geo-fixtures/ranges.toml");

static EMBEDDED_ASN: &[u8] = include_bytes!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/geo-fixtures/asn.mmdb"
));
static EMBEDDED_CITY: &[u8] = include_bytes!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/geo-fixtures/city.mmdb"
));

/// Resolves IP addresses to the network behind them.
///
/// Lookups take `&self` and never fail; share one `GeoDb` behind an `Arc`.
/// Decoded records are cached inside the `GeoDb`, keyed by their place in
/// the file, so repeated lookups do not allocate.
#[derive(Debug)]
pub struct GeoDb {
    asn: Option<MmdbFile<AsnEntry>>,
    place: Option<MmdbFile<PlaceEntry>>,
    hosting: HashSet<u32>,
}

impl GeoDb {
    /// A `GeoDb` with no databases: every address is unknown.
    pub fn empty() -> Self {
        Self {
            asn: None,
            place: None,
            hosting: HOSTING_ASNS.iter().map(|h| h.asn).collect(),
        }
    }

    /// Opens an ASN database and a City or Country database; pass `None`
    /// for one you do not have.
    ///
    /// # Errors
    ///
    /// [`Error::GeoDb`](crate::Error::GeoDb) naming the file that is
    /// missing, unreadable or not a MaxMind DB.
    pub fn open(asn: Option<&Path>, city: Option<&Path>) -> Result<Self> {
        Ok(Self {
            asn: asn.map(MmdbFile::open).transpose()?,
            place: city.map(MmdbFile::open).transpose()?,
            ..Self::empty()
        })
    }

    /// The fixture databases compiled into the binary, so sessionrange
    /// works from any directory.
    ///
    /// # Panics
    ///
    /// Only if the committed fixture files are not MaxMind DBs, which the
    /// integration tests rule out.
    pub fn embedded() -> Self {
        Self::open_embedded().unwrap_or_else(|e| panic!("embedded geo fixtures are broken: {e}"))
    }

    fn open_embedded() -> Result<Self> {
        Ok(Self {
            asn: Some(embedded_file(ASN_FILE_NAME, EMBEDDED_ASN)?),
            place: Some(embedded_file(CITY_FILE_NAME, EMBEDDED_CITY)?),
            ..Self::empty()
        })
    }

    /// Adds `extra` ASNs to the hosting list, as a scenario may: a record
    /// from one of them that declares no class is a datacenter.
    #[must_use]
    pub fn with_hosting_asns(mut self, extra: impl IntoIterator<Item = u32>) -> Self {
        self.hosting.extend(extra);
        if let Some(asn) = &mut self.asn {
            // Cached classes were resolved against the old list.
            asn.forget_records();
        }
        self
    }

    /// Whether `asn` is on this database's hosting list.
    pub fn is_hosting_asn(&self, asn: u32) -> bool {
        self.hosting.contains(&asn)
    }

    /// The files behind this `GeoDb` with their `database_type`, for logs.
    pub fn sources(&self) -> Vec<(&Path, &str)> {
        let asn = self.asn.iter().map(|f| (f.path(), f.database_type()));
        let place = self.place.iter().map(|f| (f.path(), f.database_type()));
        asn.chain(place).collect()
    }

    /// What is known about the network of `ip`.
    ///
    /// IPv4-mapped IPv6 addresses (`::ffff:a.b.c.d`) are looked up as IPv4.
    pub fn lookup(&self, ip: IpAddr) -> NetworkInfo {
        let ip = ip.to_canonical();
        let mut info = NetworkInfo::unknown();
        if let Some(entry) = self.asn_entry(ip) {
            entry.fill(&mut info);
        }
        if let Some(entry) = self.place_entry(ip) {
            entry.fill(&mut info);
        }
        info
    }

    fn asn_entry(&self, ip: IpAddr) -> Option<AsnEntry> {
        let file = self.asn.as_ref()?;
        file.record(ip, |found| AsnEntry::decode(found, &self.hosting))
    }

    fn place_entry(&self, ip: IpAddr) -> Option<PlaceEntry> {
        self.place.as_ref()?.record(ip, PlaceEntry::decode)
    }
}

fn embedded_file<R: Clone>(name: &str, bytes: &'static [u8]) -> Result<MmdbFile<R>> {
    let path = PathBuf::from(format!("<embedded>/{FIXTURE_DIR}/{name}"));
    MmdbFile::from_bytes(path, Cow::Borrowed(bytes))
}

impl Default for GeoDb {
    fn default() -> Self {
        Self::empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::network::NetworkClass;

    fn embedded_class(ip: &str) -> NetworkClass {
        GeoDb::embedded()
            .lookup(ip.parse().expect("valid IP"))
            .class
    }

    #[test]
    fn empty_database_knows_nothing() {
        let info = GeoDb::empty().lookup("127.0.1.1".parse().expect("valid IP"));
        assert_eq!(info, NetworkInfo::unknown());
    }

    #[test]
    fn loopback_fixture_ranges_have_their_classes() {
        assert_eq!(embedded_class("127.0.1.1"), NetworkClass::Residential);
        assert_eq!(embedded_class("127.0.2.1"), NetworkClass::Datacenter);
        assert_eq!(embedded_class("127.0.3.1"), NetworkClass::Mobile);
        assert_eq!(embedded_class("127.0.0.1"), NetworkClass::Unknown);
    }

    #[test]
    fn geo_db_can_be_shared_across_threads() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<GeoDb>();
    }

    #[test]
    fn extending_the_hosting_list_is_visible() {
        let geo = GeoDb::empty().with_hosting_asns([64512]);
        assert!(geo.is_hosting_asn(64512));
        assert!(geo.is_hosting_asn(16509));
        assert!(!geo.is_hosting_asn(7922));
    }
}
