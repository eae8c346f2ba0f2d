//! Pieces shared by the fingerprints: GREASE, truncated SHA-256 and hex lists.

use sha2::{Digest, Sha256};

/// What a hashed part shows for an empty list.
pub(crate) const ZERO_HASH: &str = "000000000000";

/// Whether `v` is one of the 16 GREASE values of RFC 8701 (0x0a0a, 0x1a1a, ... 0xfafa).
pub(crate) fn is_grease(v: u16) -> bool {
    v & 0x0f0f == 0x0a0a && v >> 8 == v & 0xff
}

/// The first 12 lowercase hex characters of the SHA-256 of `data`.
pub(crate) fn hash12(data: &[u8]) -> String {
    let mut out = String::with_capacity(12);
    push_hash12(&mut out, data);
    out
}

/// Appends the first 12 lowercase hex characters of the SHA-256 of `data`.
pub(crate) fn push_hash12(out: &mut String, data: &[u8]) {
    let digest = Sha256::digest(data);
    let mut hex = [0u8; 12];
    for (pair, &byte) in hex.chunks_exact_mut(2).zip(digest.iter()) {
        pair.copy_from_slice(&hex_digits(byte));
    }
    out.push_str(std::str::from_utf8(&hex).unwrap_or(ZERO_HASH));
}

/// Appends `values` as 4-digit lowercase hex, comma-separated (to bytes:
/// pushing `char`s one by one onto a `String` costs a quarter of a JA4).
pub(crate) fn push_hex_list(out: &mut Vec<u8>, values: impl IntoIterator<Item = u16>) {
    for (i, v) in values.into_iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        let [hi, lo] = v.to_be_bytes();
        let ([a, b], [c, d]) = (hex_digits(hi), hex_digits(lo));
        out.extend_from_slice(&[a, b, c, d]);
    }
}

/// Appends the two lowercase hex digits of `byte`.
pub(crate) fn push_hex_byte(out: &mut String, byte: u8) {
    let [a, b] = hex_digits(byte);
    out.push(char::from(a));
    out.push(char::from(b));
}

fn hex_digits(byte: u8) -> [u8; 2] {
    let digit = |n: u8| if n < 10 { b'0' + n } else { b'a' + n - 10 };
    [digit(byte >> 4), digit(byte & 0x0f)]
}

/// Bytes that are ASCII by construction, as a `String` (no copy).
pub(crate) fn ascii(bytes: Vec<u8>) -> String {
    String::from_utf8(bytes).unwrap_or_default()
}

/// Appends a two-digit count, capped at 99.
pub(crate) fn push_count2(out: &mut String, n: usize) {
    let n = u8::try_from(n.min(99)).unwrap_or(99);
    out.push(char::from(b'0' + n / 10));
    out.push(char::from(b'0' + n % 10));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grease_is_exactly_the_sixteen_values() {
        let all: Vec<u16> = (0..=u16::MAX).filter(|&v| is_grease(v)).collect();
        assert_eq!(all.len(), 16);
        assert_eq!(all.first(), Some(&0x0a0a));
        assert_eq!(all.last(), Some(&0xfafa));
        assert!(!is_grease(0xfe0d));
    }

    #[test]
    fn hashes_match_the_research_notes() {
        let ciphers = "002f,0035,009c,009d,1301,1302,1303,c013,c014,c02b,c02c,c02f,c030,cca8,cca9";
        assert_eq!(hash12(ciphers.as_bytes()), "8daaf6152771");
        assert_eq!(hash12(b""), "e3b0c44298fc");
        let mut list = Vec::new();
        push_hex_list(&mut list, [0x2f, 0x1301, 0xfe0d]);
        assert_eq!(ascii(list), "002f,1301,fe0d");
        let mut n = String::new();
        push_count2(&mut n, 150);
        push_count2(&mut n, 7);
        assert_eq!(n, "9907");
    }
}
