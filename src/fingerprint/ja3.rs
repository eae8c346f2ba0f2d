//! JA3 (salesforce): `SSLVersion,Ciphers,Extensions,EllipticCurves,EcPointFormats` and its MD5.
//!
//! Decimal values in wire order, `-`-joined, GREASE removed; SSLVersion is
//! the ClientHello `legacy_version` (so `771` for TLS 1.3 too). An absent
//! list leaves its field empty, commas kept. Chrome and Firefox permute
//! their extensions on every connection, so JA3 is not stable for them:
//! compare JA4 across connections instead.

use md5::{Digest, Md5};

use super::client_hello::ClientHello;
use super::common::{is_grease, push_hex_byte};

/// A JA3 fingerprint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ja3 {
    /// The JA3 string (Wireshark's `ja3_full`).
    pub full: String,
    /// The lowercase hex MD5 of `full` (Wireshark's `ja3`).
    pub hash: String,
}

/// Computes JA3 from a parsed ClientHello.
pub fn ja3(hello: &ClientHello) -> Ja3 {
    let not_grease = |v: &u16| !is_grease(*v);
    let mut full = String::with_capacity(256);
    push_decimal(&mut full, hello.legacy_version);
    full.push(',');
    join(
        &mut full,
        hello.cipher_suites.iter().copied().filter(not_grease),
    );
    full.push(',');
    join(&mut full, hello.extension_types().filter(not_grease));
    full.push(',');
    join(
        &mut full,
        hello.supported_groups.iter().copied().filter(not_grease),
    );
    full.push(',');
    join(&mut full, hello.ec_point_formats.iter().copied());
    let hash = md5_hex(full.as_bytes());
    Ja3 { full, hash }
}

fn join<T: Into<u16>>(out: &mut String, values: impl Iterator<Item = T>) {
    for (i, v) in values.enumerate() {
        if i > 0 {
            out.push('-');
        }
        push_decimal(out, v.into());
    }
}

/// Appends `v` in decimal, without the formatting machinery.
fn push_decimal(out: &mut String, v: u16) {
    let mut digits = [0u8; 5];
    let mut n = v;
    let mut start = digits.len();
    loop {
        start -= 1;
        if let Some(slot) = digits.get_mut(start) {
            *slot = b'0' + (n % 10) as u8;
        }
        n /= 10;
        if n == 0 || start == 0 {
            break;
        }
    }
    for &d in digits.get(start..).unwrap_or_default() {
        out.push(char::from(d));
    }
}

fn md5_hex(data: &[u8]) -> String {
    let mut out = String::with_capacity(32);
    for byte in Md5::digest(data) {
        push_hex_byte(&mut out, byte);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_lists_keep_their_commas() {
        let mut hello = ClientHello::default();
        hello.legacy_version = 0x0301;
        hello.cipher_suites = smallvec::smallvec![0x0a0a, 0x2f, 0x35];
        let ja3 = ja3(&hello);
        assert_eq!(ja3.full, "769,47-53,,,");
        assert_eq!(ja3.hash.len(), 32);
        let mut n = String::new();
        for v in [0, 7, 10, 771, 65535] {
            push_decimal(&mut n, v);
            n.push(' ');
        }
        assert_eq!(n, "0 7 10 771 65535 ");
    }
}
