//! TLS record layer: reassembles the first handshake message from consecutive handshake records.

use std::borrow::Cow;

use super::client_hello::HelloError;

/// Record header: content type, version, length.
const RECORD_HEADER: usize = 5;
/// Largest plaintext record fragment (RFC 8446 section 5.1).
const MAX_FRAGMENT: usize = 1 << 14;
/// Handshake header: message type and a 24-bit length.
const HANDSHAKE_HEADER: usize = 4;
/// Largest ClientHello body accepted.
pub(crate) const MAX_HANDSHAKE: usize = 64 * 1024;
const CONTENT_HANDSHAKE: u8 = 0x16;
const CLIENT_HELLO: u8 = 1;

/// The body of the ClientHello that starts at the first record of `bytes`
/// (borrowed when it fits in one record, copied when it spans several).
///
/// Bytes after the end of the message are ignored. Every loop iteration
/// consumes a non-empty record, so the loop ends within `bytes.len() / 6`
/// iterations.
pub(crate) fn client_hello_body(bytes: &[u8]) -> Result<Cow<'_, [u8]>, HelloError> {
    let mut message: Cow<'_, [u8]> = Cow::Borrowed(&[]);
    let mut pos = 0;
    loop {
        let first = pos == 0;
        let Some(header) = bytes.get(pos..pos + RECORD_HEADER) else {
            check_header_prefix(bytes.get(pos..).unwrap_or_default(), first)?;
            let have = bytes.len().saturating_sub(pos);
            return Err(incomplete(RECORD_HEADER - have, None, &message));
        };
        let len = fragment_len(header, first)?;
        let end = pos + RECORD_HEADER + len;
        let fragment = bytes
            .get(pos + RECORD_HEADER..end.min(bytes.len()))
            .unwrap_or_default();
        append(&mut message, fragment);
        if let Some(total) = message_len(&message)?
            && message.len() >= total
        {
            return Ok(strip_header(message, total));
        }
        if bytes.len() < end {
            return Err(incomplete(0, Some(end - bytes.len()), &message));
        }
        pos = end;
    }
}

/// Checks the bytes of a record header that has only partly arrived.
fn check_header_prefix(prefix: &[u8], first: bool) -> Result<(), HelloError> {
    let mut padded = [CONTENT_HANDSHAKE, 3, 1];
    for (slot, byte) in padded.iter_mut().zip(prefix) {
        *slot = *byte;
    }
    let [kind, major, minor] = padded;
    check_type_and_version(kind, major, minor, first)
}

/// Validates a whole record header and returns its fragment length.
fn fragment_len(header: &[u8], first: bool) -> Result<usize, HelloError> {
    let &[kind, major, minor, hi, lo] = header else {
        return Err(malformed("short record header"));
    };
    check_type_and_version(kind, major, minor, first)?;
    let len = usize::from(u16::from_be_bytes([hi, lo]));
    if len == 0 || len > MAX_FRAGMENT {
        return Err(malformed(&format!("record fragment length {len}")));
    }
    Ok(len)
}

fn check_type_and_version(kind: u8, major: u8, minor: u8, first: bool) -> Result<(), HelloError> {
    if kind == CONTENT_HANDSHAKE && major == 3 && minor <= 4 {
        return Ok(());
    }
    if first {
        Err(HelloError::NotTls)
    } else {
        Err(malformed(
            "a record inside the ClientHello is not a TLS handshake record",
        ))
    }
}

fn append<'a>(message: &mut Cow<'a, [u8]>, fragment: &'a [u8]) {
    if message.is_empty() {
        *message = Cow::Borrowed(fragment);
    } else {
        message.to_mut().extend_from_slice(fragment);
    }
}

/// The whole message length (header included) once the header is in.
fn message_len(message: &[u8]) -> Result<Option<usize>, HelloError> {
    match message.first() {
        None => return Ok(None),
        Some(&CLIENT_HELLO) => {}
        Some(_) => return Err(HelloError::NotClientHello),
    }
    let Some(&[_, a, b, c]) = message.get(..HANDSHAKE_HEADER) else {
        return Ok(None);
    };
    let body = usize::from(a) << 16 | usize::from(b) << 8 | usize::from(c);
    if body > MAX_HANDSHAKE {
        return Err(malformed(&format!(
            "ClientHello of {body} bytes is over 64 KiB"
        )));
    }
    Ok(Some(HANDSHAKE_HEADER + body))
}

/// The message body (header dropped), cut at `total`.
fn strip_header(message: Cow<'_, [u8]>, total: usize) -> Cow<'_, [u8]> {
    match message {
        Cow::Borrowed(b) => Cow::Borrowed(b.get(HANDSHAKE_HEADER..total).unwrap_or_default()),
        Cow::Owned(mut v) => {
            v.truncate(total);
            v.drain(..HANDSHAKE_HEADER.min(v.len()));
            Cow::Owned(v)
        }
    }
}

/// A lower bound on the bytes still missing.
///
/// `header_missing` bytes of a record header, then (if the current record
/// is cut) `record_missing` bytes of its fragment; whatever the message
/// still lacks beyond that needs at least one more record header.
fn incomplete(header_missing: usize, record_missing: Option<usize>, message: &[u8]) -> HelloError {
    let message_missing = match message_len(message) {
        Ok(Some(total)) => total.saturating_sub(message.len()),
        _ => HANDSHAKE_HEADER.saturating_sub(message.len()).max(1),
    };
    let needed = match record_missing {
        Some(in_record) if message_missing <= in_record => message_missing,
        Some(in_record) => in_record + RECORD_HEADER + (message_missing - in_record),
        None => header_missing + message_missing,
    };
    HelloError::Incomplete {
        needed: needed.max(1),
    }
}

fn malformed(why: &str) -> HelloError {
    HelloError::Malformed(why.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(fragment: &[u8]) -> Vec<u8> {
        let len = u16::try_from(fragment.len()).expect("small fragment");
        let mut out = vec![0x16, 3, 1];
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(fragment);
        out
    }

    #[test]
    fn one_record_is_borrowed() {
        let bytes = record(&[1, 0, 0, 2, 0xaa, 0xbb]);
        let body = client_hello_body(&bytes).expect("whole");
        assert!(matches!(body, Cow::Borrowed(_)));
        assert_eq!(&*body, &[0xaa, 0xbb]);
    }

    #[test]
    fn split_message_is_joined() {
        let mut bytes = record(&[1, 0]);
        bytes.extend(record(&[0, 3, 7]));
        bytes.extend(record(&[8, 9]));
        assert_eq!(&*client_hello_body(&bytes).expect("whole"), &[7, 8, 9]);
    }

    #[test]
    fn needed_counts_are_exact_when_known() {
        let bytes = record(&[1, 0, 0, 2, 0xaa, 0xbb]);
        let cut = |n: usize| client_hello_body(bytes.get(..n).expect("prefix"));
        assert_eq!(cut(0), Err(HelloError::Incomplete { needed: 5 + 4 }));
        assert_eq!(cut(9), Err(HelloError::Incomplete { needed: 2 }));
        assert_eq!(cut(10), Err(HelloError::Incomplete { needed: 1 }));
    }

    #[test]
    fn wrong_types_are_told_apart() {
        assert_eq!(client_hello_body(b"GET /"), Err(HelloError::NotTls));
        assert_eq!(client_hello_body(&[0x16, 2]), Err(HelloError::NotTls));
        let server_hello = record(&[2, 0, 0, 0]);
        assert_eq!(
            client_hello_body(&server_hello),
            Err(HelloError::NotClientHello)
        );
        let mut alert_inside = record(&[1, 0]);
        alert_inside.extend([0x15, 3, 3, 0, 2, 2, 40]);
        assert!(matches!(
            client_hello_body(&alert_inside),
            Err(HelloError::Malformed(_))
        ));
    }

    #[test]
    fn oversized_lengths_are_malformed() {
        assert!(matches!(
            client_hello_body(&[0x16, 3, 1, 0x40, 1]),
            Err(HelloError::Malformed(_))
        ));
        let big = record(&[1, 1, 0, 1]);
        assert!(matches!(
            client_hello_body(&big),
            Err(HelloError::Malformed(_))
        ));
    }
}
