#!/usr/bin/env python3
"""Checks the geo fixture databases with MaxMind's own Python reader.

An independent second opinion on the Rust writer: this script reads
ranges.toml with Python's tomllib and looks every range up with the
`maxminddb` package, through both of its readers (the C extension built on
libmaxminddb, and the pure-Python one). It shares no code with sessionrange.

Usage: check_mmdb.py RANGES.toml ASN.mmdb CITY.mmdb
Needs Python 3.11+ and `pip install maxminddb`. Exits 0 when every check
passes, 1 with a list of problems otherwise.
"""

import ipaddress
import sys
import tomllib

import maxminddb

BUILD_EPOCH = 1_735_689_600


def expect(problems, what, got, want):
    if got != want:
        problems.append(f"{what}: got {got!r}, want {want!r}")


def expected_asn(rng):
    record = {
        "autonomous_system_number": rng["asn"],
        "autonomous_system_organization": rng["org"],
    }
    if "class" in rng:
        record["network_class"] = rng["class"]
    return record


def expected_city(rng):
    record = {}
    if "country" in rng:
        code = {"iso_code": rng["country"].upper()}
        record["country"] = code
        record["registered_country"] = code
    if "city" in rng:
        record["city"] = {"names": {"en": rng["city"]}}
    if "location" in rng:
        loc = rng["location"]
        record["location"] = {"latitude": loc["lat"], "longitude": loc["lon"]}
    return record or None


def check_range(asn_db, city_db, rng, problems):
    net = ipaddress.ip_network(rng["network"])
    for ip in (net.network_address, net.broadcast_address):
        where = f"{rng['network']} at {ip}"
        record, prefix = asn_db.get_with_prefix_len(ip)
        expect(problems, f"ASN record of {where}", record, expected_asn(rng))
        expect(problems, f"ASN prefix of {where}", prefix, net.prefixlen)
        record, _ = city_db.get_with_prefix_len(ip)
        expect(problems, f"City record of {where}", record, expected_city(rng))


def check_metadata(db, kind, problems):
    meta = db.metadata()
    expect(problems, f"{kind} database_type", meta.database_type, f"sessionrange-fixture-{kind}")
    expect(problems, f"{kind} ip_version", meta.ip_version, 6)
    expect(problems, f"{kind} build_epoch", meta.build_epoch, BUILD_EPOCH)


def check_specials(asn_db, problems):
    """IPv4-mapped IPv6 finds the IPv4 record; 127.0.0.1 finds nothing."""
    mapped = asn_db.get("::ffff:127.0.1.1")
    expect(problems, "ASN of ::ffff:127.0.1.1", mapped and mapped["autonomous_system_number"], 7922)
    expect(problems, "record of 127.0.0.1", asn_db.get("127.0.0.1"), None)


def check_with(mode, name, paths, ranges):
    problems = []
    source, asn_path, city_path = paths
    with maxminddb.open_database(asn_path, mode) as asn_db, maxminddb.open_database(
        city_path, mode
    ) as city_db:
        check_metadata(asn_db, "ASN", problems)
        check_metadata(city_db, "City", problems)
        for rng in ranges:
            check_range(asn_db, city_db, rng, problems)
        check_specials(asn_db, problems)
    print(f"{name} reader: {len(ranges)} ranges of {source}, {len(problems)} problems")
    return [f"[{name}] {p}" for p in problems]


def main(argv):
    if len(argv) != 4:
        print(__doc__, file=sys.stderr)
        return 2
    with open(argv[1], "rb") as f:
        ranges = tomllib.load(f)["range"]
    readers = [(maxminddb.MODE_FILE, "pure-Python")]
    if hasattr(maxminddb, "extension"):
        readers.append((maxminddb.MODE_MMAP_EXT, "libmaxminddb"))
    problems = []
    for mode, name in readers:
        problems += check_with(mode, name, argv[1:], ranges)
    for problem in problems:
        print(problem)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
