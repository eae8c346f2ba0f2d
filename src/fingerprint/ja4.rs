//! JA4 (FoxIO, BSD-3-Clause): `a_b_c`, with its raw and original-order forms and a stable variant.
//!
//! * a: `t`, the TLS version (highest non-GREASE `supported_versions`,
//!   else `legacy_version`), `d`/`i` for SNI present or not, the cipher and
//!   extension counts (GREASE dropped, SNI and ALPN counted, capped at 99),
//!   and the first and last character of the first ALPN protocol (`00` if
//!   none; a character that is not ASCII alphanumeric shows as `9`, so the
//!   bytes `ba ad` give `99` as in the FoxIO vectors).
//! * b: the sorted cipher list as 4-digit hex, SHA-256, first 12 hex digits.
//! * c: the sorted extension list without SNI (0x0000) and ALPN (0x0010),
//!   then `_` and the `signature_algorithms` in wire order (the `_` only if
//!   there are any), hashed the same way.
//!
//! An empty cipher list, or no extension besides SNI and ALPN, hashes to
//! `000000000000`. The `_o` forms keep wire order and keep SNI and ALPN in
//! part c; the `_r` forms show the lists instead of their hashes. Only TCP
//! (`t`) is produced: this parser reads TLS records, not QUIC or DTLS.

use super::client_hello::{ClientHello, EXT_ALPN, EXT_SERVER_NAME};
use super::common::{ZERO_HASH, hex_list, is_grease, push_count2, push_hash12, push_hex_list};

/// `padding`: its presence depends on the hello's size.
const EXT_PADDING: u16 = 0x0015;
/// `pre_shared_key`: present only when resuming.
const EXT_PRE_SHARED_KEY: u16 = 0x0029;
/// `early_data`: present only with 0-RTT, dropped after a HelloRetryRequest.
const EXT_EARLY_DATA: u16 = 0x002a;

/// The four JA4 forms FoxIO tools print.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ja4 {
    /// `ja4`: sorted, hashed.
    pub ja4: String,
    /// `ja4_r`: sorted, raw.
    pub ja4_r: String,
    /// `ja4_o`: wire order, hashed, SNI and ALPN kept in part c.
    pub ja4_o: String,
    /// `ja4_ro`: wire order, raw, SNI and ALPN kept in part c.
    pub ja4_ro: String,
}

/// Computes the four JA4 forms of a parsed ClientHello.
pub fn ja4(hello: &ClientHello) -> Ja4 {
    let parts = Parts::new(hello, &[]);
    let (b_r, b_o) = (hex_list(&parts.sorted_ciphers()), hex_list(&parts.ciphers));
    let c_r = part_c(&parts.sorted_extensions(), &parts.sigalgs);
    let c_o = part_c(&parts.extensions, &parts.sigalgs);
    Ja4 {
        ja4: parts.hashed(&b_r, &c_r),
        ja4_o: parts.hashed(&b_o, &c_o),
        ja4_r: parts.raw(&b_r, &c_r),
        ja4_ro: parts.raw(&b_o, &c_o),
    }
}

/// JA4 without `padding` (0x0015), `pre_shared_key` (0x0029) and
/// `early_data` (0x002a) in the extension count and list: the form to
/// compare across reconnections of one client.
///
/// Those three come and go with the hello's size, session resumption and
/// 0-RTT, and the second ClientHello after a HelloRetryRequest drops
/// padding and early_data. None of that is a different client, so the
/// stable form keeps it from looking like drift. Everything else,
/// including the ALPN field, is as in `ja4`.
pub fn ja4_stable(hello: &ClientHello) -> String {
    let parts = Parts::new(hello, &[EXT_PADDING, EXT_PRE_SHARED_KEY, EXT_EARLY_DATA]);
    let b = hex_list(&parts.sorted_ciphers());
    let c = part_c(&parts.sorted_extensions(), &parts.sigalgs);
    parts.hashed(&b, &c)
}

/// The GREASE-free lists in wire order, and part a.
struct Parts {
    a: String,
    ciphers: Vec<u16>,
    extensions: Vec<u16>,
    sigalgs: Vec<u16>,
}

impl Parts {
    fn new(hello: &ClientHello, skip: &[u16]) -> Self {
        let ciphers = without_grease(hello.cipher_suites.iter().copied());
        let extensions = without_grease(hello.extension_types().filter(|t| !skip.contains(t)));
        let mut a = String::with_capacity(10);
        a.push('t');
        a.push_str(version(hello));
        a.push(if hello.has_sni { 'd' } else { 'i' });
        push_count2(&mut a, ciphers.len());
        push_count2(&mut a, extensions.len());
        a.extend(alpn(hello));
        let sigalgs = without_grease(hello.signature_algorithms.iter().copied());
        Self {
            a,
            ciphers,
            extensions,
            sigalgs,
        }
    }

    fn sorted_ciphers(&self) -> Vec<u16> {
        let mut v = self.ciphers.clone();
        v.sort_unstable();
        v
    }

    /// Sorted, without SNI and ALPN.
    fn sorted_extensions(&self) -> Vec<u16> {
        let mut v: Vec<u16> = self
            .extensions
            .iter()
            .copied()
            .filter(|&t| t != EXT_SERVER_NAME && t != EXT_ALPN)
            .collect();
        v.sort_unstable();
        v
    }

    /// `a_b_c` with b and c shown as they are.
    fn raw(&self, b: &str, c: &str) -> String {
        let mut out = String::with_capacity(self.a.len() + b.len() + c.len() + 2);
        out.push_str(&self.a);
        out.push('_');
        out.push_str(b);
        out.push('_');
        out.push_str(c);
        out
    }

    /// `a_b_c` with b and c hashed; an empty cipher list, or no extension
    /// other than SNI and ALPN, gives `000000000000` (in both the sorted
    /// and the original-order form, as in the FoxIO vectors).
    fn hashed(&self, b: &str, c: &str) -> String {
        let only_sni_alpn = self
            .extensions
            .iter()
            .all(|&t| t == EXT_SERVER_NAME || t == EXT_ALPN);
        let mut out = String::with_capacity(self.a.len() + 26);
        out.push_str(&self.a);
        for (raw, zero) in [(b, self.ciphers.is_empty()), (c, only_sni_alpn)] {
            out.push('_');
            if zero {
                out.push_str(ZERO_HASH);
            } else {
                push_hash12(&mut out, raw.as_bytes());
            }
        }
        out
    }
}

fn without_grease(values: impl Iterator<Item = u16>) -> Vec<u16> {
    values.filter(|&v| !is_grease(v)).collect()
}

/// Extensions, then `_` and signature algorithms if there are any.
fn part_c(extensions: &[u16], sigalgs: &[u16]) -> String {
    let mut out = String::with_capacity((extensions.len() + sigalgs.len() + 1) * 5);
    push_hex_list(&mut out, extensions);
    if !sigalgs.is_empty() {
        out.push('_');
        push_hex_list(&mut out, sigalgs);
    }
    out
}

fn version(hello: &ClientHello) -> &'static str {
    let offered = hello
        .supported_versions
        .iter()
        .copied()
        .filter(|&v| !is_grease(v))
        .max();
    match offered.unwrap_or(hello.legacy_version) {
        0x0304 => "13",
        0x0303 => "12",
        0x0302 => "11",
        0x0301 => "10",
        0x0300 => "s3",
        0x0002 => "s2",
        0xfeff => "d1",
        0xfefd => "d2",
        0xfefc => "d3",
        _ => "00",
    }
}

/// First and last character of the first ALPN protocol; `9` for a byte
/// that is not ASCII alphanumeric, `00` if there is no (non-empty) first protocol.
fn alpn(hello: &ClientHello) -> [char; 2] {
    let show = |b: &u8| {
        if b.is_ascii_alphanumeric() {
            char::from(*b)
        } else {
            '9'
        }
    };
    match hello.alpn.first().map(|name| &name[..]) {
        Some([first, .., last]) => [show(first), show(last)],
        Some([only]) => [show(only), show(only)],
        _ => ['0', '0'],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hello_with_alpn(name: &[u8]) -> ClientHello {
        ClientHello {
            alpn: vec![bytes::Bytes::copy_from_slice(name)],
            ..ClientHello::default()
        }
    }

    #[test]
    fn alpn_edges() {
        assert_eq!(alpn(&ClientHello::default()), ['0', '0']);
        assert_eq!(alpn(&hello_with_alpn(b"")), ['0', '0']);
        assert_eq!(alpn(&hello_with_alpn(b"h2")), ['h', '2']);
        assert_eq!(alpn(&hello_with_alpn(b"http/1.1")), ['h', '1']);
        assert_eq!(alpn(&hello_with_alpn(b"a")), ['a', 'a']);
        assert_eq!(alpn(&hello_with_alpn(&[0xba, 0xad])), ['9', '9']);
    }

    #[test]
    fn version_prefers_supported_versions_without_grease() {
        let mut hello = ClientHello {
            legacy_version: 0x0303,
            supported_versions: vec![0x7a7a, 0x0304, 0x0303],
            ..ClientHello::default()
        };
        assert_eq!(version(&hello), "13");
        hello.supported_versions = vec![0x3a3a];
        assert_eq!(version(&hello), "12");
        hello.legacy_version = 0x1234;
        assert_eq!(version(&hello), "00");
    }

    #[test]
    fn empty_hello_hashes_to_zeros() {
        let ja4 = ja4(&ClientHello::default());
        assert_eq!(ja4.ja4, "t00i000000_000000000000_000000000000");
        assert_eq!(ja4.ja4_r, "t00i000000__");
    }
}
