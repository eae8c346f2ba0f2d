//! Reading exactly the TLS records that carry a connection's first ClientHello.

use tokio::io::{AsyncRead, AsyncReadExt};

/// Largest ClientHello handshake message accepted.
const MAX_HELLO: usize = 64 * 1024;

/// What the start of a connection turned out to be.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HelloRead {
    /// Every byte read: the records that carry the whole first ClientHello,
    /// and nothing after them.
    Hello(Vec<u8>),
    /// Not a TLS handshake; the bytes read so far.
    NotTls(Vec<u8>),
    /// The peer closed (or the read failed) before a whole hello arrived.
    Closed,
    /// The hello claims more than 64 KiB.
    TooLarge,
}

/// Reads record by record until the first handshake message (which must
/// be a ClientHello) is complete; a hello split over several records or
/// TCP segments is put back together. Reads nothing past the last record
/// of the hello. The caller bounds the time it may take.
pub async fn read_client_hello<R: AsyncRead + Unpin>(io: &mut R) -> HelloRead {
    let mut raw = Vec::with_capacity(1024);
    let mut handshake = Vec::with_capacity(1024);
    loop {
        let start = raw.len();
        raw.resize(start + 5, 0);
        if io.read_exact(&mut raw[start..]).await.is_err() {
            return HelloRead::Closed;
        }
        let header = &raw[start..];
        if header[0] != 0x16 || header[1] != 0x03 {
            return HelloRead::NotTls(raw);
        }
        let len = usize::from(u16::from_be_bytes([header[3], header[4]]));
        if handshake.len() + len > MAX_HELLO + 4 {
            return HelloRead::TooLarge;
        }
        let body = raw.len();
        raw.resize(body + len, 0);
        if io.read_exact(&mut raw[body..]).await.is_err() {
            return HelloRead::Closed;
        }
        handshake.extend_from_slice(&raw[body..]);
        if let Some(done) = complete(&handshake) {
            return done.map_or(HelloRead::NotTls(raw.clone()), |()| HelloRead::Hello(raw));
        }
    }
}

/// `Some(Ok)` when the handshake bytes hold a whole ClientHello,
/// `Some(Err)` when they start another message, `None` when more is needed.
fn complete(handshake: &[u8]) -> Option<Result<(), ()>> {
    let header = handshake.get(..4)?;
    if header[0] != 1 {
        return Some(Err(()));
    }
    let len = usize::from(header[1]) << 16 | usize::from(header[2]) << 8 | usize::from(header[3]);
    (handshake.len() >= 4 + len).then_some(Ok(()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A record of type 0x16 carrying `payload`.
    fn record(payload: &[u8]) -> Vec<u8> {
        let len = u16::try_from(payload.len()).expect("small");
        let mut r = vec![0x16, 0x03, 0x01];
        r.extend_from_slice(&len.to_be_bytes());
        r.extend_from_slice(payload);
        r
    }

    /// A handshake message of type 1 with a `body_len`-byte body.
    fn hello(body_len: usize) -> Vec<u8> {
        let mut m = vec![1, 0, (body_len >> 8) as u8, body_len as u8];
        m.extend(std::iter::repeat_n(0xab, body_len));
        m
    }

    #[tokio::test]
    async fn reads_one_record_and_nothing_after_it() {
        let mut bytes = record(&hello(40));
        let first = bytes.len();
        bytes.extend_from_slice(b"NEXT");
        let mut io = &bytes[..];
        assert_eq!(
            read_client_hello(&mut io).await,
            HelloRead::Hello(bytes[..first].to_vec())
        );
        assert_eq!(io, b"NEXT");
    }

    #[tokio::test]
    async fn puts_a_hello_split_over_records_back_together() {
        let message = hello(300);
        let mut bytes = record(&message[..10]);
        bytes.extend(record(&message[10..200]));
        bytes.extend(record(&message[200..]));
        let mut io = &bytes[..];
        assert_eq!(
            read_client_hello(&mut io).await,
            HelloRead::Hello(bytes.clone())
        );
    }

    #[tokio::test]
    async fn tells_plain_http_truncation_and_other_messages_apart() {
        let mut io = &b"GET / HTTP/1.1\r\n\r\n"[..];
        assert!(matches!(
            read_client_hello(&mut io).await,
            HelloRead::NotTls(_)
        ));
        let whole = record(&hello(40));
        for cut in 0..whole.len() {
            let mut io = &whole[..cut];
            assert_eq!(
                read_client_hello(&mut io).await,
                HelloRead::Closed,
                "cut at {cut}"
            );
        }
        let mut io = &record(&[2, 0, 0, 0])[..];
        assert!(matches!(
            read_client_hello(&mut io).await,
            HelloRead::NotTls(_)
        ));
        let mut huge = vec![1, 0xff, 0xff, 0xff];
        huge.extend(std::iter::repeat_n(0, 100));
        let mut bytes = Vec::new();
        for _ in 0..6 {
            bytes.extend(record(&[0u8; 16_000]));
        }
        let mut first = record(&huge);
        first.extend(bytes);
        let mut io = &first[..];
        assert_eq!(read_client_hello(&mut io).await, HelloRead::TooLarge);
    }
}
