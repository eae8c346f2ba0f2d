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
use smallvec::SmallVec;

use super::common::{
    ZERO_HASH, ascii, is_grease, push_count2, push_hash12, push_hash12_of_lists, push_hex_list,
};

/// A list of cipher, extension or signature-algorithm values: on the
/// stack for every hello browsers and libraries send.
type Small = SmallVec<[u16; 64]>;

/// `padding`: its presence depends on the hello's size.
const EXT_PADDING: u16 = 0x0015;
/// `pre_shared_key`: present only when resuming.
const EXT_PRE_SHARED_KEY: u16 = 0x0029;
/// `early_data`: present only with 0-RTT, dropped after a HelloRetryRequest.
const EXT_EARLY_DATA: u16 = 0x002a;
/// `cookie`: sent only in the second hello, echoing a HelloRetryRequest.
const EXT_COOKIE: u16 = 0x002c;

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
    let f = Fields::new(hello, &[]);
    let sorted = Raw::new(&f, f.sorted_ciphers(), f.sorted_extensions());
    let original = Raw::new(&f, f.ciphers(), f.extensions());
    Ja4 {
        ja4: f.hashed(&sorted),
        ja4_o: f.hashed(&original),
        ja4_r: ascii(sorted.text),
        ja4_ro: ascii(original.text),
    }
}

/// The JA4 fingerprint alone (`ja4`, sorted and hashed), without the
/// raw and original-order forms [`ja4`] also builds.
pub fn ja4_hash(hello: &ClientHello) -> String {
    Fields::new(hello, &[]).sorted_hash()
}

/// JA4 without `padding` (0x0015), `pre_shared_key` (0x0029),
/// `early_data` (0x002a) and `cookie` (0x002c) in the extension count and
/// list: the form to compare across reconnections of one client.
///
/// Exactly: part a's extension count (characters 7–8) counts the
/// extensions JA4 counts minus those four; part b (the cipher hash) is
/// JA4's, since no extension is in it; part c hashes the sorted extension
/// list without SNI, ALPN and those four, then `_` and the signature
/// algorithms, as JA4 does (`000000000000` when nothing but SNI and ALPN
/// is left). Version, SNI flag, cipher count and ALPN characters are
/// JA4's. A hello with none of the four has a stable JA4 equal to its JA4.
///
/// Those come and go with the hello's size, session resumption, 0-RTT
/// and HelloRetryRequest: Chrome stacks add padding only when a GREASE ECH
/// payload of random size leaves the hello under 512 bytes, and the second
/// ClientHello after an HRR drops padding and early_data and echoes the
/// server's cookie. None of that is a different client, so the stable form
/// keeps it from looking like drift.
pub fn ja4_stable(hello: &ClientHello) -> String {
    let skip = [EXT_PADDING, EXT_PRE_SHARED_KEY, EXT_EARLY_DATA, EXT_COOKIE];
    Fields::new(hello, &skip).sorted_hash()
}

/// The GREASE-free lists of one hello (minus `skip`ped extensions), and part a.
struct Fields<'h> {
    hello: &'h ClientHello,
    skip: &'h [u16],
    a: String,
    /// Part b hashes to zeros.
    no_ciphers: bool,
    /// Part c hashes to zeros.
    only_sni_alpn: bool,
}

impl<'h> Fields<'h> {
    fn new(hello: &'h ClientHello, skip: &'h [u16]) -> Self {
        let mut f = Self {
            hello,
            skip,
            a: String::with_capacity(10),
            no_ciphers: false,
            only_sni_alpn: false,
        };
        let ciphers = f.ciphers().count();
        let (mut extensions, mut others) = (0, 0);
        for t in f.extensions() {
            extensions += 1;
            others += usize::from(!sni_or_alpn(t));
        }
        f.no_ciphers = ciphers == 0;
        f.only_sni_alpn = others == 0;
        f.a.push('t');
        f.a.push_str(version(hello));
        f.a.push(if hello.has_sni { 'd' } else { 'i' });
        push_count2(&mut f.a, ciphers);
        push_count2(&mut f.a, extensions);
        f.a.extend(alpn(hello));
        f
    }

    fn ciphers(&self) -> impl Iterator<Item = u16> + use<'h> {
        self.hello
            .cipher_suites
            .iter()
            .copied()
            .filter(|&v| !is_grease(v))
    }

    fn extensions(&self) -> impl Iterator<Item = u16> + use<'h> {
        let skip = self.skip;
        self.hello
            .extension_types()
            .filter(move |&t| !is_grease(t) && !skip.contains(&t))
    }

    fn sigalgs(&self) -> impl Iterator<Item = u16> + use<'h> {
        self.hello
            .signature_algorithms
            .iter()
            .copied()
            .filter(|&v| !is_grease(v))
    }

    fn sorted_ciphers(&self) -> Small {
        let mut v: Small = self.ciphers().collect();
        v.sort_unstable();
        v
    }

    /// Sorted, without SNI and ALPN.
    fn sorted_extensions(&self) -> Small {
        let mut v: Small = self.extensions().filter(|&t| !sni_or_alpn(t)).collect();
        v.sort_unstable();
        v
    }

    /// The sorted form, hashed, without building the raw text.
    fn sorted_hash(&self) -> String {
        self.joined(
            |out| push_hash12_of_lists(out, &[&self.sorted_ciphers()]),
            |out| {
                let sigalgs: Small = self.sigalgs().collect();
                push_hash12_of_lists(out, &[&self.sorted_extensions(), &sigalgs]);
            },
        )
    }

    /// `a_b_c` with b and c hashed; an empty cipher list, or no extension
    /// other than SNI and ALPN, gives `000000000000` (in both the sorted
    /// and the original-order form, as in the FoxIO vectors).
    fn hashed(&self, raw: &Raw) -> String {
        self.joined(
            |out| push_hash12(out, raw.b()),
            |out| push_hash12(out, raw.c()),
        )
    }

    /// `a_b_c`, where `b` and `c` append their hashes; a part with nothing
    /// to hash shows `000000000000` instead.
    fn joined(&self, b: impl FnOnce(&mut String), c: impl FnOnce(&mut String)) -> String {
        let mut out = String::with_capacity(self.a.len() + 26);
        out.push_str(&self.a);
        out.push('_');
        if self.no_ciphers {
            out.push_str(ZERO_HASH);
        } else {
            b(&mut out);
        }
        out.push('_');
        if self.only_sni_alpn {
            out.push_str(ZERO_HASH);
        } else {
            c(&mut out);
        }
        out
    }
}

fn sni_or_alpn(t: u16) -> bool {
    t == EXT_SERVER_NAME || t == EXT_ALPN
}

/// A raw form, `a_b_c`, where c is the extensions, then `_` and the
/// signature algorithms if there are any; the hashed forms hash b and c
/// straight out of it.
struct Raw {
    text: Vec<u8>,
    b_start: usize,
    b_end: usize,
}

impl Raw {
    fn new(
        f: &Fields<'_>,
        ciphers: impl IntoIterator<Item = u16>,
        extensions: impl IntoIterator<Item = u16>,
    ) -> Self {
        let h = f.hello;
        let values = h.cipher_suites.len() + h.extension_count() + h.signature_algorithms.len();
        let mut text = Vec::with_capacity(f.a.len() + 5 * values + 3);
        text.extend_from_slice(f.a.as_bytes());
        text.push(b'_');
        let b_start = text.len();
        push_hex_list(&mut text, ciphers);
        let b_end = text.len();
        text.push(b'_');
        push_hex_list(&mut text, extensions);
        let mut sigalgs = f.sigalgs().peekable();
        if sigalgs.peek().is_some() {
            text.push(b'_');
            push_hex_list(&mut text, sigalgs);
        }
        Self {
            text,
            b_start,
            b_end,
        }
    }

    fn b(&self) -> &[u8] {
        self.text.get(self.b_start..self.b_end).unwrap_or_default()
    }

    fn c(&self) -> &[u8] {
        self.text.get(self.b_end + 1..).unwrap_or_default()
    }
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
    match hello.alpn.first().map(|name| name.as_slice()) {
        Some([first, .., last]) => [show(first), show(last)],
        Some([only]) => [show(only), show(only)],
        _ => ['0', '0'],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hello_with_alpn(name: &[u8]) -> ClientHello {
        let mut hello = ClientHello::default();
        hello.alpn = smallvec::smallvec![name.into()];
        hello
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
        let mut hello = ClientHello::default();
        hello.legacy_version = 0x0303;
        hello.supported_versions = smallvec::smallvec![0x7a7a, 0x0304, 0x0303];
        assert_eq!(version(&hello), "13");
        hello.supported_versions = smallvec::smallvec![0x3a3a];
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
