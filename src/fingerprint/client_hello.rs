//! A strict, hand-written TLS ClientHello parser over raw TCP payload bytes.
//!
//! # Why not `tls-parser`
//!
//! `tls-parser` (0.12) parses extensions with `many0(complete(..))`: when a
//! known extension carries content it does not expect, it silently stops and
//! returns `Ok` with the rest of the list unparsed. A fingerprint computed
//! from that list is wrong without any error, which is the worst outcome for
//! a drift detector. It also has no notion of a hello split across records
//! or of "how many more bytes". This parser is about 200 lines, checks that
//! every length adds up exactly, never panics (only checked slicing), and
//! reports `Incomplete { needed }` so a reader knows how much more to read.

use smallvec::SmallVec;

use super::reader::{Reader, u16_list};
use super::records;

/// `server_name` (SNI).
pub const EXT_SERVER_NAME: u16 = 0x0000;
/// `supported_groups` (called `elliptic_curves` by JA3).
pub const EXT_SUPPORTED_GROUPS: u16 = 0x000a;
/// `ec_point_formats`.
pub const EXT_EC_POINT_FORMATS: u16 = 0x000b;
/// `signature_algorithms`.
pub const EXT_SIGNATURE_ALGORITHMS: u16 = 0x000d;
/// `application_layer_protocol_negotiation` (ALPN).
pub const EXT_ALPN: u16 = 0x0010;
/// `supported_versions`.
pub const EXT_SUPPORTED_VERSIONS: u16 = 0x002b;

/// Why bytes did not give a ClientHello.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum HelloError {
    /// A valid prefix: read at least `needed` more bytes and try again.
    #[error("incomplete ClientHello: at least {needed} more bytes needed")]
    Incomplete {
        /// A lower bound on the missing bytes (exact when the record and
        /// message lengths are already known and the message fits).
        needed: usize,
    },
    /// TLS framing, but lengths or contents do not add up.
    #[error("malformed ClientHello: {0}")]
    Malformed(String),
    /// The bytes do not start with a TLS handshake record (`16 03 0x`).
    #[error("not a TLS handshake record")]
    NotTls,
    /// A TLS handshake record, but its message is not a ClientHello.
    #[error("the TLS handshake message is not a ClientHello")]
    NotClientHello,
}

/// One extension as sent: its type and raw `extension_data`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Extension<'a> {
    /// The extension type (GREASE values included).
    pub kind: u16,
    /// The raw extension data, without the type and length.
    pub data: &'a [u8],
}

/// A list from a hello: on the stack for every hello that browsers and
/// TLS libraries send, so parsing one costs almost no allocation.
pub type List<T> = SmallVec<[T; 32]>;

/// An ALPN protocol name.
pub type ProtocolName = SmallVec<[u8; 16]>;

/// Where one extension's data sits in the extensions block (which is
/// under 64 KiB, so `u16` offsets do).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Span {
    kind: u16,
    start: u16,
    end: u16,
}

/// The fields of a ClientHello that fingerprints use, all in wire order
/// with GREASE values kept (the fingerprints drop them).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClientHello {
    /// `legacy_version` (0x0303 for TLS 1.2 and 1.3).
    pub legacy_version: u16,
    /// The offered cipher suites.
    pub cipher_suites: List<u16>,
    /// `supported_groups` (0x000a), empty if absent.
    pub supported_groups: List<u16>,
    /// `ec_point_formats` (0x000b), empty if absent.
    pub ec_point_formats: List<u8>,
    /// `signature_algorithms` (0x000d), empty if absent.
    pub signature_algorithms: List<u16>,
    /// ALPN protocol names as raw bytes (0x0010), empty if absent.
    pub alpn: SmallVec<[ProtocolName; 4]>,
    /// `supported_versions` (0x002b), empty if absent.
    pub supported_versions: List<u16>,
    /// Whether a `server_name` extension is present.
    pub has_sni: bool,
    /// The raw extensions block, and each extension's place in it (one
    /// copy of the block rather than one allocation per extension).
    block: Vec<u8>,
    spans: SmallVec<[Span; 24]>,
}

impl ClientHello {
    /// Parses the ClientHello at the start of `bytes`, which begin with the
    /// TLS record header (`16 03 xx LL LL`).
    ///
    /// The handshake message may span several consecutive handshake records.
    /// Bytes after the message are ignored. Never panics, whatever the input.
    pub fn parse(bytes: &[u8]) -> Result<Self, HelloError> {
        Self::parse_body(&records::client_hello_body(bytes)?)
    }

    /// Parses a ClientHello message body (after the 4-byte handshake header).
    pub fn parse_body(body: &[u8]) -> Result<Self, HelloError> {
        let mut r = Reader::new(body);
        let legacy_version = field(r.u16(), "legacy_version")?;
        field(r.take(32), "random")?;
        let session_id = field(r.vec8(), "legacy_session_id")?;
        if session_id.len() > 32 {
            return Err(malformed("legacy_session_id over 32 bytes"));
        }
        let ciphers = field(r.vec16(), "cipher_suites")?;
        let cipher_suites = field(u16_list(ciphers), "cipher_suites (odd length)")?;
        field(r.vec8(), "legacy_compression_methods")?;
        let mut hello = Self {
            legacy_version,
            cipher_suites,
            ..Self::default()
        };
        if r.is_empty() {
            return Ok(hello);
        }
        let extensions = field(r.vec16(), "extensions")?;
        if !r.is_empty() {
            return Err(malformed("bytes after the extensions"));
        }
        hello.read_extensions(extensions)?;
        Ok(hello)
    }

    /// Every extension, in wire order.
    pub fn extensions(&self) -> impl Iterator<Item = Extension<'_>> + '_ {
        self.spans.iter().map(|s| Extension {
            kind: s.kind,
            data: self
                .block
                .get(usize::from(s.start)..usize::from(s.end))
                .unwrap_or_default(),
        })
    }

    /// How many extensions were sent (GREASE included).
    pub fn extension_count(&self) -> usize {
        self.spans.len()
    }

    /// The extension types in wire order.
    pub fn extension_types(&self) -> impl Iterator<Item = u16> + '_ {
        self.spans.iter().map(|s| s.kind)
    }

    fn read_extensions(&mut self, block: &[u8]) -> Result<(), HelloError> {
        let mut r = Reader::new(block);
        while !r.is_empty() {
            let kind = field(r.u16(), "extension type")?;
            let data = field(r.vec16(), "extension data")?;
            self.decode(kind, data)
                .ok_or_else(|| malformed(&format!("extension 0x{kind:04x} has a bad body")))?;
            let end = r.offset();
            let start = end.saturating_sub(data.len());
            let (Ok(start), Ok(end)) = (u16::try_from(start), u16::try_from(end)) else {
                return Err(malformed("extensions block over 64 KiB"));
            };
            self.spans.push(Span { kind, start, end });
        }
        self.block = block.to_vec();
        Ok(())
    }

    /// Decodes the extensions fingerprints look into; `None` if malformed.
    fn decode(&mut self, kind: u16, data: &[u8]) -> Option<()> {
        match kind {
            EXT_SERVER_NAME => self.has_sni = true,
            EXT_SUPPORTED_GROUPS => self.supported_groups = u16_list(whole(data, Reader::vec16)?)?,
            EXT_EC_POINT_FORMATS => {
                self.ec_point_formats = SmallVec::from_slice(whole(data, Reader::vec8)?);
            }
            EXT_SIGNATURE_ALGORITHMS => {
                self.signature_algorithms = u16_list(whole(data, Reader::vec16)?)?;
            }
            EXT_ALPN => self.alpn = protocol_names(whole(data, Reader::vec16)?)?,
            EXT_SUPPORTED_VERSIONS => {
                self.supported_versions = u16_list(whole(data, Reader::vec8)?)?;
            }
            _ => {}
        }
        Some(())
    }
}

/// The one length-prefixed vector that fills `data` exactly.
fn whole<'a>(data: &'a [u8], read: fn(&mut Reader<'a>) -> Option<&'a [u8]>) -> Option<&'a [u8]> {
    let mut r = Reader::new(data);
    let inner = read(&mut r)?;
    r.is_empty().then_some(inner)
}

/// The ALPN `ProtocolNameList`: one-byte-length-prefixed names.
fn protocol_names(bytes: &[u8]) -> Option<SmallVec<[ProtocolName; 4]>> {
    let mut r = Reader::new(bytes);
    let mut names = SmallVec::new();
    while !r.is_empty() {
        names.push(SmallVec::from_slice(r.vec8()?));
    }
    Some(names)
}

fn field<T>(value: Option<T>, name: &str) -> Result<T, HelloError> {
    value.ok_or_else(|| malformed(&format!("truncated {name}")))
}

fn malformed(why: &str) -> HelloError {
    HelloError::Malformed(why.to_owned())
}
