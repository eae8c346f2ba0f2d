//! Conformance of `sessionrange::fingerprint` with the FoxIO-derived vectors in `tests/data/fingerprint/`.
//!
//! Every line of both files is checked, and all mismatches are reported
//! together. Also: hellos split across records, every proper prefix of a
//! hello, and the HelloRetryRequest pair under the stable JA4. The live
//! hellos of real client stacks (`live-clienthellos.jsonl`) check JA4 and
//! JA3 against independently computed values, and that the stable JA4 is
//! one value per client where the plain JA4 is not.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;
use sessionrange::fingerprint::{self, ClientHello, HelloError, TlsFingerprint, decode_hex};

const HELLOS: &str = include_str!("data/fingerprint/ja4-clienthello.jsonl");
const HEADS: &str = include_str!("data/fingerprint/ja4h-http1.jsonl");
const LIVE: &str = include_str!("data/fingerprint/live-clienthellos.jsonl");

fn lines(text: &str) -> Vec<Value> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).expect("vector line is JSON"))
        .collect()
}

fn field<'a>(line: &'a Value, key: &str) -> &'a str {
    line[key]
        .as_str()
        .unwrap_or_else(|| panic!("vector field {key}"))
}

fn bytes(line: &Value, key: &str) -> Vec<u8> {
    decode_hex(field(line, key)).expect("vector hex")
}

fn label(line: &Value) -> String {
    format!("{} stream {} ", line["source"], line["stream"])
}

/// Counts matches per form and keeps every mismatch.
#[derive(Default)]
struct Tally {
    /// Per form: (matched, checked).
    forms: BTreeMap<&'static str, (usize, usize)>,
    mismatches: Vec<String>,
}

impl Tally {
    fn check(&mut self, form: &'static str, at: &str, got: &str, want: &str) {
        if !self.count(form, got == want) {
            self.mismatches
                .push(format!("{at}{form}:\n  got  {got}\n  want {want}"));
        }
    }

    /// Counts a comparison that is reported but not required.
    fn count(&mut self, form: &'static str, matched: bool) -> bool {
        let entry = self.forms.entry(form).or_default();
        entry.0 += usize::from(matched);
        entry.1 += 1;
        matched
    }

    fn finish(self) {
        for (form, (matched, checked)) in &self.forms {
            eprintln!("{form}: {matched}/{checked} match");
        }
        assert!(
            self.mismatches.is_empty(),
            "{} mismatches:\n{}",
            self.mismatches.len(),
            self.mismatches.join("\n")
        );
    }
}

#[test]
fn every_client_hello_vector_matches_all_forms() {
    let vectors = lines(HELLOS);
    assert_eq!(vectors.len(), 160);
    let keys = HelloKeys {
        hex: "client_hello_hex",
        ja3_full: "ja3_full",
        ja3: "ja3",
    };
    check_hellos(&vectors, &keys, label).finish();
}

/// The field names of one vector file: the hello's bytes and JA3's two forms.
struct HelloKeys {
    hex: &'static str,
    ja3_full: &'static str,
    ja3: &'static str,
}

/// Checks the four JA4 forms and JA3 of every hello in `vectors`.
fn check_hellos(vectors: &[Value], keys: &HelloKeys, label: impl Fn(&Value) -> String) -> Tally {
    let mut tally = Tally::default();
    for line in vectors {
        let at = label(line);
        let fp = match fingerprint::tls(&bytes(line, keys.hex)) {
            Ok(fp) => fp,
            Err(e) => {
                tally.mismatches.push(format!("{at}: {e}"));
                continue;
            }
        };
        tally.check("ja4", &at, &fp.ja4, field(line, "ja4"));
        tally.check("ja4_r", &at, &fp.ja4_r, field(line, "ja4_r"));
        tally.check("ja4_o", &at, &fp.ja4_o, field(line, "ja4_o"));
        tally.check("ja4_ro", &at, &fp.ja4_ro, field(line, "ja4_ro"));
        tally.check("ja3_full", &at, &fp.ja3, field(line, keys.ja3_full));
        tally.check("ja3", &at, &fp.ja3_hash, field(line, keys.ja3));
    }
    tally
}

/// Drops the trailing `_` and `,` on which Wireshark and Python raw forms differ.
fn trimmed(raw: &str) -> &str {
    raw.trim_end_matches(['_', ','])
}

#[test]
fn every_ja4h_vector_matches() {
    let vectors = lines(HEADS);
    assert_eq!(vectors.len(), 110);
    let mut tally = Tally::default();
    for line in &vectors {
        let at = format!("{}frame {} ", label(line), line["frame"]);
        let fp = match fingerprint::http1(&bytes(line, "request_head_hex")) {
            Ok(fp) => fp,
            Err(e) => {
                tally.mismatches.push(format!("{at}: {e}"));
                continue;
            }
        };
        tally.check("ja4h", &at, &fp.ja4h, field(line, "ja4h"));
        let want_r = field(line, "ja4h_r");
        tally.check(
            "ja4h_r (trimmed)",
            &at,
            trimmed(&fp.ja4h_r),
            trimmed(want_r),
        );
        tally.count("ja4h_r (exact, Wireshark)", fp.ja4h_r == want_r);
        let want_ro = field(line, "ja4h_ro_wireshark");
        tally.check(
            "ja4h_ro (trimmed, Wireshark)",
            &at,
            trimmed(&fp.ja4h_ro),
            trimmed(want_ro),
        );
        if let Some(python) = line["ja4h_ro_python"].as_str() {
            let python = trimmed(python);
            tally.check(
                "ja4h_ro (trimmed, python)",
                &at,
                trimmed(&fp.ja4h_ro),
                python,
            );
        }
    }
    tally.finish();
}

/// The distinct hellos with their expected fingerprints.
fn distinct_hellos() -> Vec<(Vec<u8>, String, String)> {
    let mut seen = BTreeMap::new();
    for line in lines(HELLOS) {
        let hello = bytes(&line, "client_hello_hex");
        let want = (
            field(&line, "ja4").to_owned(),
            field(&line, "ja3_full").to_owned(),
        );
        seen.entry(hello).or_insert(want);
    }
    seen.into_iter()
        .map(|(h, (ja4, ja3))| (h, ja4, ja3))
        .collect()
}

/// Re-frames the handshake message of a one-record hello into records
/// that end at `cuts` (offsets into the message).
fn reframe(hello: &[u8], cuts: &[usize]) -> Vec<u8> {
    let (header, message) = hello.split_at(5);
    let mut out = Vec::new();
    let mut start = 0;
    for &end in cuts.iter().chain([&message.len()]) {
        let fragment = &message[start..end];
        out.extend_from_slice(&header[..3]);
        out.extend_from_slice(&u16::try_from(fragment.len()).expect("small").to_be_bytes());
        out.extend_from_slice(fragment);
        start = end;
    }
    out
}

fn assert_same(fp: &TlsFingerprint, ja4: &str, ja3: &str, what: &str) {
    assert_eq!((fp.ja4.as_str(), fp.ja3.as_str()), (ja4, ja3), "{what}");
}

#[test]
fn a_hello_split_across_two_records_at_every_offset() {
    for (hello, ja4, ja3) in distinct_hellos() {
        let whole = ClientHello::parse(&hello).expect("one record");
        let message_len = hello.len() - 5;
        for cut in 1..message_len {
            let split = reframe(&hello, &[cut]);
            let parsed = ClientHello::parse(&split).expect("split hello parses");
            assert!(parsed == whole, "cut at {cut}");
        }
        for cuts in [
            &[1][..],
            &[4],
            &[message_len - 1],
            &[1, 2, 3, 4, 5, message_len / 2],
        ] {
            let fp = fingerprint::tls(&reframe(&hello, cuts)).expect("split hello");
            assert_same(&fp, &ja4, &ja3, &format!("cuts {cuts:?}"));
        }
    }
}

/// Every proper prefix is `Incomplete` with a `needed` that does not
/// overshoot the real input, and the whole input gives the right value.
fn check_prefixes(input: &[u8], ja4: &str, ja3: &str) {
    for n in 0..input.len() {
        match fingerprint::tls(&input[..n]) {
            Err(HelloError::Incomplete { needed }) => {
                assert!(
                    needed >= 1 && n + needed <= input.len(),
                    "prefix {n}: needed {needed}"
                );
            }
            other => panic!("prefix {n} of {}: {other:?}", input.len()),
        }
    }
    assert_same(
        &fingerprint::tls(input).expect("whole input"),
        ja4,
        ja3,
        "whole",
    );
}

#[test]
fn every_proper_prefix_is_incomplete() {
    for (hello, ja4, ja3) in distinct_hellos() {
        check_prefixes(&hello, &ja4, &ja3);
        // Once the record and handshake headers are in, `needed` is exact.
        for n in 9..hello.len() {
            let got = fingerprint::tls(&hello[..n]);
            assert_eq!(
                got,
                Err(HelloError::Incomplete {
                    needed: hello.len() - n
                })
            );
        }
        let split = reframe(&hello, &[2, (hello.len() - 5) / 3]);
        check_prefixes(&split, &ja4, &ja3);
    }
}

#[test]
fn helloretryrequest_pair_has_one_stable_ja4() {
    let vectors = lines(HELLOS);
    let mut pairs = 0;
    for second in vectors.iter().filter(|l| l["hello_index"] == 2) {
        let first = vectors
            .iter()
            .find(|l| {
                l["hello_index"] == 1
                    && l["source"] == second["source"]
                    && l["stream"] == second["stream"]
            })
            .expect("first hello of the stream");
        let fp1 = fingerprint::tls(&bytes(first, "client_hello_hex")).expect("hello 1");
        let fp2 = fingerprint::tls(&bytes(second, "client_hello_hex")).expect("hello 2");
        assert_ne!(fp1.ja4, fp2.ja4, "padding changes plain JA4");
        assert_eq!(fp1.ja4_stable, fp2.ja4_stable, "{}", label(second));
        assert_eq!(fp2.ja4_stable, fp2.ja4, "hello 2 has no padding to drop");
        pairs += 1;
    }
    assert_eq!(pairs, 10);
}

#[test]
fn from_bytes_tells_tls_from_http() {
    let hello = bytes(&lines(HELLOS)[0], "client_hello_hex");
    let fp = fingerprint::from_bytes(&hello).expect("tls");
    let json = serde_json::to_value(&fp).expect("serialize");
    assert_eq!(json["kind"], "tls");
    assert_eq!(json["ja4"], lines(HELLOS)[0]["ja4"]);
    let head = bytes(&lines(HEADS)[0], "request_head_hex");
    assert!(matches!(
        fingerprint::from_bytes(&head),
        Some(fingerprint::Fingerprints::Http(_))
    ));
    assert_eq!(fingerprint::from_bytes(b"\x16\x03\x01\x00"), None);
}

/// A minimal TLS 1.3 ClientHello record with one cipher and `extensions`.
fn hello_with(extensions: &[(u16, &[u8])]) -> Vec<u8> {
    let mut exts = Vec::new();
    for (kind, data) in extensions {
        exts.extend_from_slice(&kind.to_be_bytes());
        exts.extend_from_slice(&u16::try_from(data.len()).expect("small").to_be_bytes());
        exts.extend_from_slice(data);
    }
    let mut body = vec![3, 3];
    body.extend_from_slice(&[7; 32]);
    body.extend_from_slice(&[0, 0, 2, 0x13, 0x01, 1, 0]);
    body.extend_from_slice(&u16::try_from(exts.len()).expect("small").to_be_bytes());
    body.extend_from_slice(&exts);
    let len = u32::try_from(body.len()).expect("small").to_be_bytes();
    let mut handshake = vec![1, len[1], len[2], len[3]];
    handshake.extend_from_slice(&body);
    let mut record = vec![0x16, 3, 1];
    record.extend_from_slice(&u16::try_from(handshake.len()).expect("small").to_be_bytes());
    record.extend_from_slice(&handshake);
    record
}

#[test]
fn the_retry_cookie_is_left_out_of_the_stable_ja4() {
    let versions: (u16, &[u8]) = (0x002b, &[2, 3, 4]);
    let key_share: (u16, &[u8]) = (0x0033, &[0, 0]);
    let first = fingerprint::tls(&hello_with(&[versions, key_share])).expect("hello 1");
    let cookie: (u16, &[u8]) = (0x002c, &[0, 2, 0xab, 0xcd]);
    let second = fingerprint::tls(&hello_with(&[versions, key_share, cookie])).expect("hello 2");
    assert_ne!(first.ja4, second.ja4, "the cookie counts in plain JA4");
    assert_eq!(first.ja4_stable, second.ja4_stable);
    assert!(first.ja4.starts_with("t13i0102"), "{}", first.ja4);
}

fn live_group(line: &Value) -> String {
    format!("{} ({})", field(line, "client"), field(line, "sni"))
}

#[test]
fn every_live_client_hello_matches_the_independent_ja4_and_ja3() {
    let vectors = lines(LIVE);
    assert_eq!(vectors.len(), 208);
    let keys = HelloKeys {
        hex: "hello_hex",
        ja3_full: "ja3",
        ja3: "ja3_hash",
    };
    check_hellos(&vectors, &keys, |line| format!("{} ", live_group(line))).finish();
}

#[test]
fn each_live_client_has_one_stable_ja4_where_plain_ja4_may_vary() {
    // Per client/SNI group: (plain JA4 values, stable JA4 values).
    let mut groups: BTreeMap<String, (BTreeSet<String>, BTreeSet<String>)> = BTreeMap::new();
    for line in &lines(LIVE) {
        let fp = fingerprint::tls(&bytes(line, "hello_hex")).expect("live hello parses");
        let group = groups.entry(live_group(line)).or_default();
        group.0.insert(fp.ja4);
        group.1.insert(fp.ja4_stable);
    }
    assert_eq!(groups.len(), 52);
    let unstable: Vec<&String> = groups
        .iter()
        .filter(|(_, (_, stable))| stable.len() != 1)
        .map(|(name, _)| name)
        .collect();
    assert!(
        unstable.is_empty(),
        "more than one stable JA4: {unstable:?}"
    );
    let varying: Vec<&str> = groups
        .iter()
        .filter(|(_, (plain, _))| plain.len() > 1)
        .map(|(name, _)| name.as_str())
        .collect();
    assert_eq!(
        varying,
        [
            "curl_cffi chrome120 (ip)",
            "curl_cffi chrome131_android (host)"
        ],
        "the groups whose plain JA4 alternates with padding"
    );
    // Leaving padding out merges the padding variants of those two groups
    // into the value other Chrome profiles have without padding, and
    // curl_cffi's Safari 18.0 profiles (padded) with its newest Safari
    // (unpadded), whose hellos differ in nothing else; the other plain
    // values stay apart.
    let plain: BTreeSet<&String> = groups.values().flat_map(|(plain, _)| plain).collect();
    let stable: BTreeSet<&String> = groups.values().flat_map(|(_, stable)| stable).collect();
    assert_eq!((plain.len(), stable.len()), (38, 34));
}
