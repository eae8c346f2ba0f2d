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
    push_digest12(out, &Sha256::digest(data));
}

fn push_digest12(out: &mut String, digest: &[u8]) {
    let mut hex = [0u8; 12];
    for (pair, &byte) in hex.chunks_exact_mut(2).zip(digest.iter()) {
        pair.copy_from_slice(&hex_digits(byte));
    }
    out.push_str(std::str::from_utf8(&hex).unwrap_or(ZERO_HASH));
}

/// The first 12 lowercase hex characters of the SHA-256 of `lists`
/// written as 4-digit hex, comma-separated, the lists joined by `_`:
/// what [`push_hex_list`] and [`push_hash12`] give, without building the
/// text (it goes to the hasher through a small stack buffer).
pub(crate) fn push_hash12_of_lists(out: &mut String, lists: &[&[u16]]) {
    let mut hasher = Sha256::new();
    let mut buf = [0u8; 320];
    let mut used = 0;
    for (i, list) in lists.iter().enumerate() {
        for (j, &v) in list.iter().enumerate() {
            if used + 5 > buf.len() {
                hasher.update(&buf[..used]);
                used = 0;
            }
            if i > 0 && j == 0 {
                buf[used] = b'_';
                used += 1;
            } else if j > 0 {
                buf[used] = b',';
                used += 1;
            }
            let [hi, lo] = v.to_be_bytes();
            let ([a, b], [c, d]) = (hex_digits(hi), hex_digits(lo));
            buf[used..used + 4].copy_from_slice(&[a, b, c, d]);
            used += 4;
        }
    }
    hasher.update(&buf[..used]);
    push_digest12(out, &hasher.finalize());
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

/// `bytes` as lowercase hex: the crate's one hex encoder.
pub(crate) fn hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        push_hex_byte(&mut out, *b);
    }
    out
}

/// Appends the two lowercase hex digits of `byte`.
pub(crate) fn push_hex_byte(out: &mut String, byte: u8) {
    let [a, b] = hex_digits(byte);
    out.push(char::from(a));
    out.push(char::from(b));
}

fn hex_digits(byte: u8) -> [u8; 2] {
    HEX_PAIRS[usize::from(byte)]
}

/// The two lowercase hex digits of every byte value.
const HEX_PAIRS: [[u8; 2]; 256] = {
    let digits = b"0123456789abcdef";
    let mut table = [[0u8; 2]; 256];
    let mut i = 0;
    while i < 256 {
        table[i] = [digits[i >> 4], digits[i & 0x0f]];
        i += 1;
    }
    table
};

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
        let mut joined = String::new();
        push_hash12_of_lists(&mut joined, &[&[0x2f, 0x1301], &[], &[0x0403]]);
        assert_eq!(joined, hash12(b"002f,1301_0403"));
        let long: Vec<u16> = (0..500).collect();
        let mut text = Vec::new();
        push_hex_list(&mut text, long.iter().copied());
        let mut streamed = String::new();
        push_hash12_of_lists(&mut streamed, &[&long]);
        assert_eq!(streamed, hash12(&text), "lists longer than the buffer");
        let mut list = Vec::new();
        push_hex_list(&mut list, [0x2f, 0x1301, 0xfe0d]);
        assert_eq!(ascii(list), "002f,1301,fe0d");
        let mut n = String::new();
        push_count2(&mut n, 150);
        push_count2(&mut n, 7);
        assert_eq!(n, "9907");
    }
}
