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
    for &byte in digest.iter().take(6) {
        push_hex_byte(out, byte);
    }
}

/// `values` as 4-digit lowercase hex, comma-separated.
pub(crate) fn hex_list(values: &[u16]) -> String {
    let mut out = String::with_capacity(values.len() * 5);
    push_hex_list(&mut out, values);
    out
}

/// Appends `values` as 4-digit lowercase hex, comma-separated.
pub(crate) fn push_hex_list(out: &mut String, values: &[u16]) {
    for (i, &v) in values.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let [hi, lo] = v.to_be_bytes();
        push_hex_byte(out, hi);
        push_hex_byte(out, lo);
    }
}

/// Appends two lowercase hex digits (formatting machinery is most of the
/// cost of a fingerprint otherwise).
pub(crate) fn push_hex_byte(out: &mut String, byte: u8) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for nibble in [byte >> 4, byte & 0x0f] {
        out.push(char::from(
            DIGITS.get(usize::from(nibble)).copied().unwrap_or(b'0'),
        ));
    }
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
        assert_eq!(hex_list(&[0x2f, 0x1301]), "002f,1301");
        let mut n = String::new();
        push_count2(&mut n, 150);
        push_count2(&mut n, 7);
        assert_eq!(n, "9907");
    }
}
