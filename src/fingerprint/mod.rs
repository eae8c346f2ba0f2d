//! Client fingerprints from raw bytes: JA3 and JA4 from a TLS ClientHello, JA4H from an HTTP/1.x request head.
//!
//! Pure: no I/O, no clock. [`tls`] takes the client's first bytes on a
//! TLS connection (from the record header on), [`http1`] a plaintext
//! request head, and [`from_bytes`] tells the two apart. Vectors from the
//! FoxIO repository (in `tests/data/fingerprint/`) are the acceptance
//! oracle.
//!
//! For drift detection across reconnections of one client, compare
//! [`TlsFingerprint::ja4_stable`]: JA3 changes on every connection of
//! browsers that permute extensions, and plain JA4 changes with padding,
//! session resumption and HelloRetryRequest.

pub mod client_hello;
pub(crate) mod common;
pub mod ja3;
pub mod ja4;
pub mod ja4h;
mod reader;
mod records;
pub mod request_head;

use serde::{Deserialize, Serialize};

pub use client_hello::{ClientHello, HelloError};
pub use request_head::{HeadError, RequestHead};

/// JA3 and JA4 fingerprints of one ClientHello.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TlsFingerprint {
    /// The JA3 string.
    pub ja3: String,
    /// The MD5 of `ja3`, lowercase hex.
    pub ja3_hash: String,
    /// JA4: sorted and hashed.
    pub ja4: String,
    /// JA4 raw: sorted lists.
    pub ja4_r: String,
    /// JA4 original order, hashed.
    pub ja4_o: String,
    /// JA4 original order, raw.
    pub ja4_ro: String,
    /// JA4 without padding, pre_shared_key, early_data and the retry
    /// cookie: compare this one across reconnections (see
    /// [`ja4::ja4_stable`]); the session pin does.
    pub ja4_stable: String,
}

impl TlsFingerprint {
    /// Every fingerprint of a parsed ClientHello.
    pub fn from_hello(hello: &ClientHello) -> Self {
        let ja3 = ja3::ja3(hello);
        let ja4 = ja4::ja4(hello);
        Self {
            ja3: ja3.full,
            ja3_hash: ja3.hash,
            ja4: ja4.ja4,
            ja4_r: ja4.ja4_r,
            ja4_o: ja4.ja4_o,
            ja4_ro: ja4.ja4_ro,
            ja4_stable: ja4::ja4_stable(hello),
        }
    }
}

/// JA4H of one HTTP/1.x request head.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HttpFingerprint {
    /// JA4H, hashed.
    pub ja4h: String,
    /// Raw, cookies sorted by name.
    pub ja4h_r: String,
    /// Raw, cookies in wire order.
    pub ja4h_ro: String,
}

/// A fingerprint of whichever the bytes hold.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Fingerprints {
    /// A TLS ClientHello.
    Tls(TlsFingerprint),
    /// A plaintext HTTP/1.x request head.
    Http(HttpFingerprint),
}

/// Why [`fingerprint`] found nothing.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FingerprintError {
    /// The bytes start with a TLS handshake record but hold no usable ClientHello.
    #[error(transparent)]
    Tls(#[from] HelloError),
    /// The bytes are not a usable HTTP/1.x request head.
    #[error(transparent)]
    Http(#[from] HeadError),
}

/// JA3 and JA4 from the bytes of a TLS connection, from the first record header on.
pub fn tls(bytes: &[u8]) -> Result<TlsFingerprint, HelloError> {
    ClientHello::parse(bytes).map(|hello| TlsFingerprint::from_hello(&hello))
}

/// JA4H from an HTTP/1.x request head (request line and headers up to the empty line).
pub fn http1(head: &[u8]) -> Result<HttpFingerprint, HeadError> {
    RequestHead::parse(head).map(|head| ja4h::ja4h(&head))
}

/// TLS if the first byte is `0x16` (a handshake record), else an HTTP request head.
pub fn fingerprint(bytes: &[u8]) -> Result<Fingerprints, FingerprintError> {
    if bytes.first() == Some(&0x16) {
        Ok(Fingerprints::Tls(tls(bytes)?))
    } else {
        Ok(Fingerprints::Http(http1(bytes)?))
    }
}

/// [`fingerprint`], without the reason when there is none.
pub fn from_bytes(bytes: &[u8]) -> Option<Fingerprints> {
    fingerprint(bytes).ok()
}

/// Decodes hex (either case; whitespace ignored), as the vectors and a
/// command line carry bytes. `None` for a stray character or an odd count.
pub fn decode_hex(text: &str) -> Option<Vec<u8>> {
    let digits: Vec<u8> = text
        .bytes()
        .filter(|b| !b.is_ascii_whitespace())
        .map(|b| {
            char::from(b)
                .to_digit(16)
                .and_then(|d| u8::try_from(d).ok())
        })
        .collect::<Option<_>>()?;
    let pairs = digits.chunks_exact(2);
    if !pairs.remainder().is_empty() {
        return None;
    }
    Some(
        pairs
            .map(|p| p.iter().fold(0, |acc, d| acc << 4 | d))
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_the_kind() {
        let http = from_bytes(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n");
        assert!(matches!(http, Some(Fingerprints::Http(_))));
        assert_eq!(
            fingerprint(&[0x16, 3, 1]),
            Err(HelloError::Incomplete { needed: 6 }.into())
        );
        assert_eq!(from_bytes(b""), None);
    }

    #[test]
    fn hex() {
        assert_eq!(decode_hex("16 03\n0A"), Some(vec![0x16, 3, 10]));
        assert_eq!(decode_hex("160"), None);
        assert_eq!(decode_hex("zz"), None);
    }
}
