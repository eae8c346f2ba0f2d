//! A connection's opening: the first bytes tell HTTP/1 from h2, read within the head timeout.
//!
//! hyper-util's automatic version detection reads those bytes with no
//! time limit, so a peer that sent nothing, or half an h2 preface, held
//! its connection for ever. The target reads them itself, inside the head
//! timeout, and then hands hyper the protocol and the bytes already read.
//! For h2 the opening is the preface and the client's first frame, its
//! SETTINGS; only then is an h2 connection open.

use tokio::io::{AsyncRead, AsyncReadExt};

/// The h2 connection preface (RFC 9113, section 3.4).
const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// The SETTINGS frame type.
const SETTINGS: u8 = 0x4;

/// The largest SETTINGS payload worth waiting for; a bigger first frame is
/// left for h2 to refuse (six bytes a setting, and there are few settings).
const MAX_SETTINGS: usize = 16_384;

/// What a connection speaks, as its first bytes say.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Protocol {
    /// HTTP/1.0 or HTTP/1.1.
    Http1,
    /// h2, cleartext with prior knowledge or over TLS.
    H2,
}

/// Reads until the first bytes tell the protocol: one byte that is not
/// the preface's means HTTP/1; h2 needs the whole preface and the first
/// frame after it. Returns the protocol and every byte read, to replay;
/// `None` if the peer left or failed first.
pub(crate) async fn read<I: AsyncRead + Unpin>(io: &mut I) -> Option<(Protocol, Vec<u8>)> {
    let mut got = Vec::with_capacity(1024);
    loop {
        if let Some(protocol) = protocol_of(&got) {
            return Some((protocol, got));
        }
        match io.read_buf(&mut got).await {
            Ok(0) | Err(_) => return None,
            Ok(_) => {}
        }
    }
}

/// The protocol `got` shows, or `None` while more bytes are needed.
fn protocol_of(got: &[u8]) -> Option<Protocol> {
    let n = got.len().min(PREFACE.len());
    if got[..n] != PREFACE[..n] {
        return Some(Protocol::Http1);
    }
    let frame = got.get(PREFACE.len()..)?;
    let header = frame.get(..9)?;
    let len = usize::from(header[0]) << 16 | usize::from(header[1]) << 8 | usize::from(header[2]);
    // A first frame that is not SETTINGS is h2's to refuse, at once.
    if header[3] != SETTINGS || len > MAX_SETTINGS {
        return Some(Protocol::H2);
    }
    (frame.len() >= 9 + len).then_some(Protocol::H2)
}

#[cfg(test)]
mod tests {
    use super::*;

    const EMPTY_SETTINGS: [u8; 9] = [0, 0, 0, SETTINGS, 0, 0, 0, 0, 0];

    #[test]
    fn a_method_is_http1_at_its_first_byte_that_differs_from_the_preface() {
        assert_eq!(protocol_of(b"G"), Some(Protocol::Http1));
        assert_eq!(protocol_of(b"POST / HTTP/1.1"), Some(Protocol::Http1));
        assert_eq!(protocol_of(b"PR"), None, "could still be the preface");
        assert_eq!(protocol_of(b""), None);
    }

    #[test]
    fn h2_needs_the_preface_and_its_whole_settings_frame() {
        assert_eq!(protocol_of(PREFACE), None);
        let mut bytes = [PREFACE, &EMPTY_SETTINGS[..5]].concat();
        assert_eq!(protocol_of(&bytes), None, "half a frame header");
        bytes = [PREFACE, &EMPTY_SETTINGS].concat();
        assert_eq!(protocol_of(&bytes), Some(Protocol::H2));
        let six = [0, 0, 6, SETTINGS, 0, 0, 0, 0, 0, 0, 3, 0, 0];
        bytes = [PREFACE, &six].concat();
        assert_eq!(protocol_of(&bytes), None, "two of six payload bytes");
        bytes.extend_from_slice(&[0, 100]);
        assert_eq!(protocol_of(&bytes), Some(Protocol::H2));
    }

    #[test]
    fn a_first_frame_that_is_not_settings_is_left_to_h2() {
        let headers = [0, 0, 1, 0x1, 0x4, 0, 0, 0, 1];
        let bytes = [PREFACE, &headers].concat();
        assert_eq!(protocol_of(&bytes), Some(Protocol::H2));
    }
}
