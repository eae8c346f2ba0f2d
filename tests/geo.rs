//! Black-box tests of network identity: the fixture databases, `GeoDb` and `geo build`.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::Command;

use maxminddb::Reader;
use mmdb_writer::{Value, Writer};
use serde_json::json;
use sessionrange::geo::{self, FixtureRange, FixtureSet};
use sessionrange::{CountryCode, Error, GeoDb, Location, NetworkClass, NetworkInfo};

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

fn manifest_path(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(relative)
}

fn committed(name: &str) -> PathBuf {
    manifest_path(geo::FIXTURE_DIR).join(name)
}

fn fixtures() -> FixtureSet {
    FixtureSet::load(manifest_path(geo::FIXTURE_SOURCE)).expect("the committed source is valid")
}

fn ip(text: &str) -> IpAddr {
    text.parse().expect("test IPs are valid")
}

/// A fresh, empty directory for one test.
fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("geo")
        .join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("can create a scratch directory");
    dir
}

fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// What `GeoDb` should report for `range`, given the hosting list.
fn expected_info(range: &FixtureRange, geo: &GeoDb) -> NetworkInfo {
    let hosting = geo
        .is_hosting_asn(range.asn)
        .then_some(NetworkClass::Datacenter);
    NetworkInfo {
        asn: Some(range.asn),
        org: Some(range.org.as_str().into()),
        country: range.country,
        class: range.class.or(hosting).unwrap_or_default(),
        location: range.location,
    }
}

/// Writes a MaxMind-style database holding `records` to `path`.
fn write_db(path: &Path, database_type: &str, records: Vec<(&str, Value)>) {
    let mut writer = Writer::new(database_type);
    for (network, value) in records {
        let network: mmdb_writer::ipnet::IpNet = network.parse().expect("valid CIDR");
        writer
            .insert_value(network, value)
            .expect("insertable network");
    }
    std::fs::write(path, writer.to_bytes().expect("serializes")).expect("can write the database");
}

fn asn_value(asn: u32, org: &str, extra: Option<(&str, &str)>) -> Value {
    let mut fields = vec![
        ("autonomous_system_number", Value::U32(asn)),
        ("autonomous_system_organization", Value::from(org)),
    ];
    fields.extend(extra.map(|(k, v)| (k, Value::from(v))));
    Value::map(fields)
}

fn assert_geo_db_error(result: sessionrange::Result<GeoDb>, path: &Path) -> String {
    match result {
        Err(Error::GeoDb { path: p, message }) => {
            assert_eq!(p, path);
            message
        }
        other => panic!(
            "expected Error::GeoDb for {}, got {other:?}",
            path.display()
        ),
    }
}

// ---------------------------------------------------------------------------
// (1) The committed databases are a fresh build of the committed source
// ---------------------------------------------------------------------------

#[test]
#[cfg(feature = "cli")]
fn committed_databases_equal_a_fresh_build() {
    let built = fixtures().to_databases().expect("the source builds");
    let hint = "stale fixture databases: run `cargo run -- geo build` and commit the result";
    assert!(built.asn == read(&committed(geo::ASN_FILE_NAME)), "{hint}");
    assert!(
        built.city == read(&committed(geo::CITY_FILE_NAME)),
        "{hint}"
    );
}

#[test]
#[cfg(feature = "cli")]
fn geo_build_command_writes_byte_identical_files() {
    let out = scratch("cli-build");
    let output = Command::new(env!("CARGO_BIN_EXE_sessionrange"))
        .args(["geo", "build", "--source"])
        .arg(manifest_path(geo::FIXTURE_SOURCE))
        .arg("--out")
        .arg(&out)
        .output()
        .expect("the binary runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    for name in [geo::ASN_FILE_NAME, geo::CITY_FILE_NAME] {
        assert!(
            read(&out.join(name)) == read(&committed(name)),
            "{name} differs"
        );
    }
}

// ---------------------------------------------------------------------------
// (2) Independent readers get the expected records back
// ---------------------------------------------------------------------------

fn expected_asn_json(range: &FixtureRange) -> serde_json::Value {
    let mut record = json!({
        "autonomous_system_number": range.asn,
        "autonomous_system_organization": range.org,
    });
    if let Some(class) = range.class {
        record["network_class"] = json!(class.as_str());
    }
    record
}

fn expected_city_json(range: &FixtureRange) -> serde_json::Value {
    let code = range.country.map(|c| json!({ "iso_code": c.as_str() }));
    let mut record = json!({ "country": code, "registered_country": code });
    if let Some(city) = &range.city {
        record["city"] = json!({ "names": { "en": city } });
    }
    if let Some(Location { lat, lon }) = range.location {
        record["location"] = json!({ "latitude": lat, "longitude": lon });
    }
    record
}

#[test]
fn generic_maxminddb_reader_finds_every_fixture_range() {
    let asn = Reader::open_readfile(committed(geo::ASN_FILE_NAME)).expect("valid ASN db");
    let city = Reader::open_readfile(committed(geo::CITY_FILE_NAME)).expect("valid City db");
    asn.verify().expect("ASN db passes maxminddb verification");
    city.verify()
        .expect("City db passes maxminddb verification");
    assert_eq!(asn.metadata().database_type, "sessionrange-fixture-ASN");
    assert_eq!(asn.metadata().build_epoch, geo::FIXTURE_BUILD_EPOCH);
    for range in fixtures().ranges() {
        let found = asn.lookup(range.network.network()).expect("lookup works");
        assert_eq!(found.network().expect("has a network"), range.network);
        let record: Option<serde_json::Value> = found.decode().expect("decodes");
        assert_eq!(record, Some(expected_asn_json(range)), "{}", range.network);
        let place = city
            .lookup(range.network.broadcast())
            .expect("lookup works");
        let record: serde_json::Value = place.decode().expect("decodes").expect("has a record");
        assert_eq!(record, expected_city_json(range), "{}", range.network);
    }
}

#[test]
fn generic_maxminddb_reader_finds_nothing_outside_the_ranges() {
    let asn = Reader::open_readfile(committed(geo::ASN_FILE_NAME)).expect("valid ASN db");
    for address in ["127.0.0.1", "127.0.10.1", "192.0.2.1", "2001:db8::1", "::1"] {
        let found = asn.lookup(ip(address)).expect("lookup works");
        assert!(!found.has_data(), "{address} should be in no range");
    }
}

/// Runs `geo-fixtures/check_mmdb.py`, which reads `ranges.toml` and both
/// databases with MaxMind's Python package (`pip install maxminddb`).
///
/// Skipped with a notice when python3 or the package is missing, unless
/// `SESSIONRANGE_REQUIRE_PYTHON=1`, as CI sets it.
#[test]
fn python_maxminddb_reader_agrees_with_the_source() {
    let required = std::env::var("SESSIONRANGE_REQUIRE_PYTHON").is_ok_and(|v| v == "1");
    let probe = Command::new("python3")
        .args(["-c", "import sys, tomllib, maxminddb; sys.exit(0)"])
        .output();
    if !probe.is_ok_and(|out| out.status.success()) {
        assert!(!required, "python3 >= 3.11 with `maxminddb` is required");
        eprintln!("SKIPPED: python3 >= 3.11 with `pip install maxminddb` not available");
        return;
    }
    let output = Command::new("python3")
        .arg(manifest_path("geo-fixtures/check_mmdb.py"))
        .arg(manifest_path(geo::FIXTURE_SOURCE))
        .arg(committed(geo::ASN_FILE_NAME))
        .arg(committed(geo::CITY_FILE_NAME))
        .output()
        .expect("python3 runs");
    let report = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{report}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(report.contains(", 0 problems"), "{report}");
}

// ---------------------------------------------------------------------------
// (3) GeoDb lookups
// ---------------------------------------------------------------------------

#[test]
fn residential_loopback_is_comcast_in_philadelphia() {
    let info = GeoDb::embedded().lookup(ip("127.0.1.42"));
    assert_eq!(info.asn, Some(7922));
    assert_eq!(
        info.org.as_deref(),
        Some("Comcast Cable Communications, LLC")
    );
    assert_eq!(info.class, NetworkClass::Residential);
    assert_eq!(info.country, CountryCode::parse("US"));
    assert_eq!(
        info.location,
        Some(Location {
            lat: 39.9526,
            lon: -75.1652
        })
    );
}

#[test]
fn every_network_class_has_a_fixture() {
    let geo = GeoDb::embedded();
    let cases = [
        ("104.28.12.7", 7922, NetworkClass::Residential),
        ("104.57.1.1", 7018, NetworkClass::Residential),
        ("172.56.1.1", 21928, NetworkClass::Mobile),
        ("18.212.3.4", 16509, NetworkClass::Datacenter),
        ("17.1.2.3", 714, NetworkClass::Corporate),
        ("128.32.1.1", 25, NetworkClass::Unknown),
    ];
    for (address, asn, class) in cases {
        let info = geo.lookup(ip(address));
        assert_eq!(
            (info.asn.unwrap_or(0), info.class),
            (asn, class),
            "{address}"
        );
    }
}

#[test]
fn loopback_ranges_cover_the_classes_and_two_continents() {
    let geo = GeoDb::embedded();
    let class = |a: &str| geo.lookup(ip(a)).class;
    assert_eq!(class("127.0.2.1"), NetworkClass::Datacenter);
    assert_eq!(class("127.0.3.1"), NetworkClass::Mobile);
    assert_eq!(class("127.0.6.1"), NetworkClass::Datacenter);
    assert_eq!(class("127.0.7.1"), NetworkClass::Corporate);
    let (home, abroad) = (geo.lookup(ip("127.0.1.1")), geo.lookup(ip("127.0.4.1")));
    assert_eq!(
        (abroad.asn, abroad.class),
        (Some(3320), NetworkClass::Residential)
    );
    assert_eq!(abroad.country, CountryCode::parse("DE"));
    let km = home
        .location
        .zip(abroad.location)
        .map(|(a, b)| a.distance_km(&b));
    assert!(km.is_some_and(|km| km > 6000.0), "{km:?}");
}

#[test]
fn same_asn_has_a_second_nearby_loopback_range() {
    let geo = GeoDb::embedded();
    let (a, b) = (geo.lookup(ip("127.0.1.1")), geo.lookup(ip("127.0.5.1")));
    assert_eq!((a.asn, b.asn), (Some(7922), Some(7922)));
    let km = a.location.zip(b.location).map(|(a, b)| a.distance_km(&b));
    assert!(km.is_some_and(|km| km < 50.0), "{km:?}");
}

#[test]
fn ipv6_ranges_resolve() {
    let geo = GeoDb::embedded();
    let comcast = geo.lookup(ip("2601:0:1234::1"));
    assert_eq!(
        (comcast.asn, comcast.class),
        (Some(7922), NetworkClass::Residential)
    );
    let tmobile = geo.lookup(ip("2607:fb90:1::1"));
    assert_eq!(
        (tmobile.asn, tmobile.class),
        (Some(21928), NetworkClass::Mobile)
    );
    let hetzner = geo.lookup(ip("2a01:4f8:1:2::3"));
    assert_eq!(hetzner.country, CountryCode::parse("DE"));
    assert_eq!(hetzner.class, NetworkClass::Datacenter);
}

#[test]
fn ipv4_mapped_ipv6_addresses_resolve_as_ipv4() {
    let geo = GeoDb::embedded();
    assert_eq!(
        geo.lookup(ip("::ffff:127.0.3.9")),
        geo.lookup(ip("127.0.3.9"))
    );
    assert_eq!(geo.lookup(ip("::ffff:127.0.3.9")).asn, Some(21928));
}

#[test]
fn addresses_in_no_range_are_unknown() {
    let geo = GeoDb::embedded();
    for address in [
        "127.0.0.1",
        "10.1.2.3",
        "192.0.2.1",
        "::1",
        "2001:db8::1",
        "fe80::1",
    ] {
        assert_eq!(geo.lookup(ip(address)), NetworkInfo::unknown(), "{address}");
    }
}

#[test]
fn lookups_match_the_source_for_every_range() {
    let geo = GeoDb::embedded();
    for range in fixtures().ranges() {
        let expected = expected_info(range, &geo);
        assert_eq!(
            geo.lookup(range.network.network()),
            expected,
            "{}",
            range.network
        );
        assert_eq!(
            geo.lookup(range.network.broadcast()),
            expected,
            "{}",
            range.network
        );
    }
}

#[test]
fn opened_files_answer_like_the_embedded_copy() {
    let asn = committed(geo::ASN_FILE_NAME);
    let city = committed(geo::CITY_FILE_NAME);
    let opened = GeoDb::open(Some(&asn), Some(&city)).expect("committed files open");
    let embedded = GeoDb::embedded();
    for range in fixtures().ranges() {
        let address = range.network.network();
        assert_eq!(
            opened.lookup(address),
            embedded.lookup(address),
            "{address}"
        );
    }
}

#[test]
fn either_database_may_be_absent() {
    let asn_only = GeoDb::open(Some(&committed(geo::ASN_FILE_NAME)), None).expect("opens");
    let info = asn_only.lookup(ip("127.0.4.1"));
    assert_eq!(
        (info.asn, info.country, info.location),
        (Some(3320), None, None)
    );
    let city_only = GeoDb::open(None, Some(&committed(geo::CITY_FILE_NAME))).expect("opens");
    let info = city_only.lookup(ip("127.0.4.1"));
    assert_eq!((info.asn, info.class), (None, NetworkClass::Unknown));
    assert_eq!(info.country, CountryCode::parse("DE"));
    let none = GeoDb::open(None, None).expect("nothing to open");
    assert_eq!(none.lookup(ip("127.0.4.1")), NetworkInfo::unknown());
}

#[test]
fn class_less_records_fall_back_to_the_hosting_list() {
    let geo = GeoDb::embedded();
    let contabo = geo.lookup(ip("161.97.1.1"));
    assert_eq!(
        (contabo.asn, contabo.class),
        (Some(51167), NetworkClass::Datacenter)
    );
    assert_eq!(geo.lookup(ip("127.0.9.1")).class, NetworkClass::Datacenter);
}

#[test]
fn a_scenario_can_extend_the_hosting_list() {
    let geo = GeoDb::embedded();
    assert_eq!(geo.lookup(ip("128.32.1.1")).class, NetworkClass::Unknown);
    // The same GeoDb, whose cache already holds the record, now extended.
    let geo = geo.with_hosting_asns([25]);
    assert_eq!(geo.lookup(ip("128.32.1.1")).class, NetworkClass::Datacenter);
    // A declared class still wins over the list.
    let geo = geo.with_hosting_asns([7922]);
    assert_eq!(geo.lookup(ip("127.0.1.1")).class, NetworkClass::Residential);
}

#[test]
fn reads_maxmind_style_asn_and_country_databases() {
    let dir = scratch("maxmind-style");
    let (asn_path, country_path) = (dir.join("GeoLite2-ASN.mmdb"), dir.join("Country.mmdb"));
    write_db(
        &asn_path,
        "GeoLite2-ASN",
        vec![
            (
                "203.0.113.0/25",
                asn_value(
                    64500,
                    "Example Mobile",
                    Some(("connection_type", "Cellular")),
                ),
            ),
            (
                "203.0.113.128/25",
                asn_value(
                    64501,
                    "Example Corp",
                    Some(("connection_type", "Corporate")),
                ),
            ),
            ("198.51.100.0/24", asn_value(16509, "AMAZON-02", None)),
            ("2001:db8::/32", asn_value(64502, "Example ISP", None)),
        ],
    );
    let registered = Value::map([("iso_code", Value::from("JP"))]);
    write_db(
        &country_path,
        "GeoLite2-Country",
        vec![(
            "203.0.113.0/24",
            Value::map([("registered_country", registered)]),
        )],
    );
    let geo = GeoDb::open(Some(&asn_path), Some(&country_path)).expect("opens");
    assert_eq!(geo.lookup(ip("203.0.113.1")).class, NetworkClass::Mobile);
    assert_eq!(
        geo.lookup(ip("203.0.113.200")).class,
        NetworkClass::Corporate
    );
    assert_eq!(
        geo.lookup(ip("198.51.100.7")).class,
        NetworkClass::Datacenter
    );
    let isp = geo.lookup(ip("2001:db8::5"));
    assert_eq!((isp.asn, isp.class), (Some(64502), NetworkClass::Unknown));
    let place = geo.lookup(ip("203.0.113.1"));
    assert_eq!(
        (place.country, place.location),
        (CountryCode::parse("JP"), None)
    );
}

// ---------------------------------------------------------------------------
// (4) Broken databases
// ---------------------------------------------------------------------------

#[test]
fn a_missing_database_is_an_error_naming_the_file() {
    let missing = scratch("missing").join("GeoLite2-ASN.mmdb");
    let message = assert_geo_db_error(GeoDb::open(Some(&missing), None), &missing);
    assert!(message.contains("cannot read"), "{message}");
    let shown = GeoDb::open(None, Some(&missing))
        .expect_err("missing")
        .to_string();
    assert!(shown.contains("GeoLite2-ASN.mmdb"), "{shown}");
}

#[test]
fn a_corrupt_database_is_an_error_naming_the_file() {
    let dir = scratch("corrupt");
    let garbage = dir.join("garbage.mmdb");
    std::fs::write(&garbage, b"this is not a MaxMind DB").expect("can write");
    let message = assert_geo_db_error(GeoDb::open(Some(&garbage), None), &garbage);
    assert!(message.contains("not a valid MaxMind DB"), "{message}");
    let truncated = dir.join("truncated.mmdb");
    let bytes = read(&committed(geo::CITY_FILE_NAME));
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).expect("can write");
    assert_geo_db_error(GeoDb::open(None, Some(&truncated)), &truncated);
}

// ---------------------------------------------------------------------------
// (5) Malformed fixture sources
// ---------------------------------------------------------------------------

const TWO_RANGES: &str = r#"# two ranges
[[range]]
network = "127.0.1.0/24"
asn = 7922
org = "Comcast Cable Communications, LLC"
class = "residential"

[[range]]
network = "127.0.2.0/24"
asn = 16509
org = "Amazon.com, Inc."
class = "datacenter"
"#;

fn fixture_error(test: &str, text: &str) -> (PathBuf, String) {
    let path = scratch(test).join("ranges.toml");
    std::fs::write(&path, text).expect("can write");
    match FixtureSet::load(&path) {
        Err(Error::GeoFixture { path: p, message }) => {
            assert_eq!(p, path);
            (path, message)
        }
        other => panic!("expected Error::GeoFixture, got {other:?}"),
    }
}

#[test]
fn a_bad_class_names_file_line_and_field() {
    let (_, message) = fixture_error(
        "bad-class",
        &TWO_RANGES.replace("\"datacenter\"", "\"cloud\""),
    );
    assert!(
        message.starts_with("line 12, field `range[1].class`:"),
        "{message}"
    );
    assert!(message.contains("cloud"), "{message}");
}

#[test]
fn an_unknown_field_names_file_line_and_field() {
    let (_, message) = fixture_error(
        "unknown-field",
        &TWO_RANGES.replace("asn = 16509", "asn = 16509\ncolour = 1"),
    );
    assert!(
        message.starts_with("line 11, field `range[1].colour`:"),
        "{message}"
    );
}

#[test]
fn a_network_with_host_bits_names_file_line_and_field() {
    let (path, message) = fixture_error(
        "host-bits",
        &TWO_RANGES.replace("127.0.1.0/24", "127.0.1.9/24"),
    );
    assert!(
        message.starts_with("line 3, field `range[0].network`:"),
        "{message}"
    );
    assert!(message.contains("127.0.1.0/24"), "{message}");
    let shown = FixtureSet::load(&path).expect_err("malformed").to_string();
    assert!(shown.contains(&path.display().to_string()), "{shown}");
}

#[test]
#[cfg(feature = "cli")]
fn geo_build_command_reports_a_malformed_source() {
    let (path, _) = fixture_error(
        "cli-malformed",
        &TWO_RANGES.replace("asn = 7922", "asn = \"AS7922\""),
    );
    let output = Command::new(env!("CARGO_BIN_EXE_sessionrange"))
        .args(["geo", "build", "--source"])
        .arg(&path)
        .arg("--out")
        .arg(scratch("malformed-out"))
        .output()
        .expect("the binary runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(
        stderr.contains("ranges.toml: line 4, field `range[0].asn`"),
        "{stderr}"
    );
}
