//! Criterion benches of the fingerprints from raw bytes: JA4 (alone and in all four forms) from a ClientHello, and JA4H.
//!
//! Inputs are conformance vectors: a Chrome-like TLS 1.3 hello with GREASE
//! and padding (`browsers-x509.pcapng`, 517 bytes), and the curl request
//! with cookies, a Referer and Accept-Language (`http1-with-cookies.pcapng`).
//! The goal is at most 2 µs for JA4 from bytes.
//!
//! Run with `cargo bench --bench fingerprint`.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use serde_json::Value;
use sessionrange::fingerprint::{self, ClientHello, decode_hex, ja4};
use sha2::{Digest, Sha256};

const HELLOS: &str = include_str!("../tests/data/fingerprint/ja4-clienthello.jsonl");
const HEADS: &str = include_str!("../tests/data/fingerprint/ja4h-http1.jsonl");

/// The hex field `key` of the first line of `jsonl` from `source`.
fn vector(jsonl: &str, source: &str, key: &str) -> Vec<u8> {
    jsonl
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).expect("vector line"))
        .find(|v| v["source"] == source)
        .and_then(|v| decode_hex(v[key].as_str()?))
        .expect("vector present")
}

fn tls(c: &mut Criterion) {
    let hello = vector(HELLOS, "browsers-x509.pcapng", "client_hello_hex");
    c.bench_function("ja4_from_bytes", |b| {
        b.iter(|| {
            let parsed = ClientHello::parse(black_box(&hello)).expect("hello");
            ja4::ja4_hash(&parsed)
        });
    });
    c.bench_function("ja4_all_forms_from_bytes", |b| {
        b.iter(|| {
            let parsed = ClientHello::parse(black_box(&hello)).expect("hello");
            ja4::ja4(&parsed)
        });
    });
    c.bench_function("tls_fingerprint_from_bytes (ja3 + 4 ja4 + stable)", |b| {
        b.iter(|| fingerprint::tls(black_box(&hello)).expect("hello"));
    });
    c.bench_function("client_hello_parse", |b| {
        b.iter(|| ClientHello::parse(black_box(&hello)).expect("hello"));
    });
    // Calibration: JA4 hashes four strings of about this size.
    let text = [b'0'; 128];
    c.bench_function("reference_sha256_128_bytes", |b| {
        b.iter(|| Sha256::digest(black_box(text)));
    });
}

fn http(c: &mut Criterion) {
    let head = vector(HEADS, "http1-with-cookies.pcapng", "request_head_hex");
    c.bench_function("ja4h_from_bytes", |b| {
        b.iter(|| fingerprint::http1(black_box(&head)).expect("head"));
    });
}

criterion_group!(benches, tls, http);
criterion_main!(benches);
