//! Property tests: the ClientHello, request-head and PROXY v2 parsers never panic, whatever the bytes.
//!
//! Inputs stay under 600 bytes so that 100 000 cases per property run in
//! a few seconds in a debug build. Besides arbitrary bytes, the strategies
//! build inputs that get past the first checks: well-framed records with
//! random bodies, and the conformance vectors re-framed into random
//! records, byte-edited and truncated.

use std::net::SocketAddr;
use std::sync::LazyLock;

use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::{Index, select};
use proptest::test_runner::{Config, RngAlgorithm};
use serde_json::Value;
use sessionrange::fingerprint::{self, ClientHello, HelloError, decode_hex};
use sessionrange::proxy_protocol;

const CASES: u32 = 100_000;
/// Cases for the full JA3/JA4 computation on mutated vectors: SHA-256
/// unoptimized costs about 200 µs a hello in a debug build.
const FINGERPRINT_CASES: u32 = 25_000;
const MAX_LEN: usize = 600;

/// XorShift, not the default ChaCha: in a debug build ChaCha alone costs
/// about 40 µs a case, XorShift about 1 µs.
fn config(cases: u32) -> Config {
    Config {
        cases,
        rng_algorithm: RngAlgorithm::XorShift,
        ..Config::default()
    }
}

fn column(text: &str, key: &str) -> Vec<Vec<u8>> {
    let mut out: Vec<Vec<u8>> = text
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).expect("vector line"))
        .map(|v| decode_hex(v[key].as_str().expect("hex field")).expect("hex"))
        .collect();
    out.sort();
    out.dedup();
    out
}

static HELLOS: LazyLock<Vec<Vec<u8>>> = LazyLock::new(|| {
    column(
        include_str!("data/fingerprint/ja4-clienthello.jsonl"),
        "client_hello_hex",
    )
});
static HEADS: LazyLock<Vec<Vec<u8>>> = LazyLock::new(|| {
    column(
        include_str!("data/fingerprint/ja4h-http1.jsonl"),
        "request_head_hex",
    )
});

/// Random bytes of a random length below `max`.
///
/// Expanded from a seed: a `vec(any::<u8>())` builds one value tree per
/// byte, which makes 100 000 cases take minutes in a debug build. The
/// length still shrinks, and a failing seed replays.
fn random_bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
    (0..max, any::<u64>()).prop_map(|(len, mut seed)| {
        let mut out = Vec::with_capacity(len + 8);
        while out.len() < len {
            // splitmix64
            seed = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = seed;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            out.extend((z ^ (z >> 31)).to_le_bytes());
        }
        out.truncate(len);
        out
    })
}

/// Bytes that pass the record and handshake headers, with a random body.
fn framed_hello() -> impl Strategy<Value = Vec<u8>> {
    (random_bytes(MAX_LEN - 9), any::<bool>()).prop_map(|(body, honest)| {
        let len = body.len();
        let hs = if honest { len } else { len ^ 0x15 };
        let record = u16::try_from(if honest { len + 4 } else { len }).unwrap_or(0);
        let mut out = vec![0x16, 3, 1];
        out.extend(record.to_be_bytes());
        out.extend([1, 0, (hs >> 8) as u8, hs as u8]);
        out.extend(body);
        out
    })
}

/// Single-byte edits: a position (as an index) and a new value.
fn edits() -> impl Strategy<Value = Vec<(Index, u8)>> {
    let byte = prop_oneof![
        any::<u8>(),
        select(vec![
            0u8, 1, 0xff, 0x16, 0x0a, b'\r', b'\n', b':', b';', b'='
        ])
    ];
    vec((any::<Index>(), byte), 0..6)
}

fn apply(mut bytes: Vec<u8>, edits: &[(Index, u8)], cut: Option<Index>) -> Vec<u8> {
    if !bytes.is_empty() {
        for (at, value) in edits {
            let i = at.index(bytes.len());
            bytes[i] = *value;
        }
    }
    if let Some(cut) = cut {
        bytes.truncate(cut.index(bytes.len() + 1));
    }
    bytes
}

/// Moves the handshake message of a one-record hello into records ending at `cuts`.
fn reframe(hello: &[u8], cuts: &[Index]) -> Vec<u8> {
    let (header, message) = hello.split_at(5);
    let mut ends: Vec<usize> = cuts.iter().map(|c| c.index(message.len())).collect();
    ends.push(message.len());
    ends.sort_unstable();
    ends.dedup();
    let mut out = Vec::new();
    let mut start = 0;
    for end in ends.into_iter().filter(|&e| e > 0) {
        out.extend_from_slice(&header[..3]);
        out.extend((u16::try_from(end - start).unwrap_or(0)).to_be_bytes());
        out.extend_from_slice(&message[start..end]);
        start = end;
    }
    out
}

/// Checks what any outcome must look like.
fn check_tls(bytes: &[u8]) -> Result<(), TestCaseError> {
    match fingerprint::tls(bytes) {
        Ok(fp) => {
            prop_assert_eq!(fp.ja4.len(), 36);
            prop_assert_eq!(fp.ja4_stable.len(), 36);
            prop_assert_eq!(fp.ja3_hash.len(), 32);
        }
        Err(HelloError::Incomplete { needed }) => prop_assert!(needed >= 1),
        Err(_) => {}
    }
    Ok(())
}

fn check_http(bytes: &[u8]) -> Result<(), TestCaseError> {
    if let Ok(fp) = fingerprint::http1(bytes) {
        prop_assert_eq!(fp.ja4h.len(), 51, "{}", fp.ja4h);
    }
    Ok(())
}

/// A vector hello re-framed into records ending at `cuts`, then edited and cut.
fn mutated_hello() -> impl Strategy<Value = (Vec<u8>, Vec<u8>, bool)> {
    (
        any::<Index>(),
        vec(any::<Index>(), 0..4),
        edits(),
        proptest::option::of(any::<Index>()),
    )
        .prop_map(|(pick, cuts, edits, cut)| {
            let hello = pick.get(&HELLOS).clone();
            let reframed = reframe(&hello, &cuts);
            let unchanged = edits.is_empty() && cut.is_none();
            (hello, apply(reframed, &edits, cut), unchanged)
        })
}

proptest! {
    #![proptest_config(config(CASES))]

    #[test]
    fn client_hello_parser_never_panics_on_arbitrary_bytes(
        bytes in prop_oneof![random_bytes(MAX_LEN), framed_hello()],
    ) {
        check_tls(&bytes)?;
    }

    #[test]
    fn client_hello_parser_never_panics_on_mutated_vectors(
        (hello, mutated, unchanged) in mutated_hello(),
    ) {
        let got = ClientHello::parse(&mutated);
        if let Err(HelloError::Incomplete { needed }) = got {
            prop_assert!(needed >= 1);
        }
        if unchanged {
            prop_assert_eq!(got, ClientHello::parse(&hello));
        }
    }

    #[test]
    fn request_head_parser_never_panics(
        random in random_bytes(MAX_LEN),
        pick in any::<Index>(),
        edits in edits(),
        cut in proptest::option::of(any::<Index>()),
    ) {
        check_http(&random)?;
        let head = pick.get(&HEADS).clone();
        check_http(&apply(head, &edits, cut))?;
    }

    #[test]
    fn proxy_protocol_parse_never_panics(
        random in random_bytes(MAX_LEN),
        v6 in any::<bool>(),
        edits in edits(),
        cut in proptest::option::of(any::<Index>()),
    ) {
        let secret = b"pool-secret";
        let _ = proxy_protocol::parse(&random, secret);
        let mut signed = b"\r\n\r\n\0\r\nQUIT\n\x21\x11".to_vec();
        signed.extend(&random);
        let _ = proxy_protocol::parse(&signed, secret);
        let source: SocketAddr = if v6 { "[2001:db8::7]:4000" } else { "127.0.1.20:4000" }
            .parse()
            .expect("address");
        let header = proxy_protocol::encode(source, "127.0.0.1:8080".parse().expect("address"), secret);
        let _ = proxy_protocol::parse(&apply(header, &edits, cut), secret);
    }
}

proptest! {
    #![proptest_config(config(FINGERPRINT_CASES))]

    #[test]
    fn fingerprints_never_panic_on_mutated_vectors((_, mutated, _) in mutated_hello()) {
        check_tls(&mutated)?;
    }
}
