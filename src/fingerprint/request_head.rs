//! A strict HTTP/1.x request-head parser that keeps header names' case and order as sent.

/// The largest head accepted (request line and headers).
pub const MAX_HEAD: usize = 64 * 1024;

/// Why bytes are not an HTTP/1.x request head.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum HeadError {
    /// No empty line yet: read more.
    #[error("incomplete request head: no empty line yet")]
    Incomplete,
    /// Not a well-formed request line and header lines.
    #[error("malformed request head: {0}")]
    Malformed(String),
}

/// A request line and its header lines, borrowed from the input.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestHead<'a> {
    /// The method token, as sent (`GET`, `M-SEARCH`...).
    pub method: &'a [u8],
    /// The version digits without the dot (`11` for `HTTP/1.1`, `20` for `HTTP/2`).
    pub version: String,
    /// Header `(name, value)` pairs in wire order, names in their sent
    /// case, values trimmed of surrounding spaces and tabs.
    pub headers: Vec<(&'a [u8], &'a [u8])>,
}

impl<'a> RequestHead<'a> {
    /// Parses the head at the start of `bytes`, up to and including the
    /// first empty line (CRLF or bare LF line ends). Bytes after it (a
    /// body, a pipelined request) are ignored. Never panics.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, HeadError> {
        let mut lines = Lines {
            rest: bytes,
            used: 0,
        };
        let request_line = lines.next_line()?;
        let (method, version) = request_line_parts(request_line)?;
        let mut headers = Vec::new();
        loop {
            let line = lines.next_line()?;
            if line.is_empty() {
                return Ok(Self {
                    method,
                    version,
                    headers,
                });
            }
            headers.push(header(line)?);
        }
    }

    /// The values of the headers named `name` (ASCII case-insensitive), in order.
    pub fn values<'s>(&'s self, name: &'s str) -> impl Iterator<Item = &'a [u8]> + 's {
        self.headers
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name.as_bytes()))
            .map(|(_, v)| *v)
    }
}

/// Splits lines off the front, CR stripped, within [`MAX_HEAD`].
struct Lines<'a> {
    rest: &'a [u8],
    used: usize,
}

impl<'a> Lines<'a> {
    fn next_line(&mut self) -> Result<&'a [u8], HeadError> {
        let Some(end) = self.rest.iter().position(|&b| b == b'\n') else {
            return Err(if self.used + self.rest.len() > MAX_HEAD {
                malformed("head over 64 KiB")
            } else {
                HeadError::Incomplete
            });
        };
        self.used += end + 1;
        if self.used > MAX_HEAD {
            return Err(malformed("head over 64 KiB"));
        }
        let line = self.rest.get(..end).unwrap_or_default();
        self.rest = self.rest.get(end + 1..).unwrap_or_default();
        Ok(line.strip_suffix(b"\r").unwrap_or(line))
    }
}

/// `METHOD SP target SP HTTP/x.y`; the target may itself hold spaces.
fn request_line_parts(line: &[u8]) -> Result<(&[u8], String), HeadError> {
    let first = line.iter().position(|&b| b == b' ');
    let last = line.iter().rposition(|&b| b == b' ');
    let (Some(first), Some(last)) = (first, last) else {
        return Err(malformed("request line without method, target and version"));
    };
    let method = line.get(..first).unwrap_or_default();
    if first == last || !is_token(method) {
        return Err(malformed("bad request line"));
    }
    let version = version_digits(line.get(last + 1..).unwrap_or_default())
        .ok_or_else(|| malformed("bad HTTP version"))?;
    Ok((method, version))
}

/// `HTTP/1.1` → `11`, `HTTP/2` → `20`: the digits without the dot,
/// padded with `0` to two.
fn version_digits(token: &[u8]) -> Option<String> {
    let digits = token.strip_prefix(b"HTTP/")?;
    let ok = match digits {
        [major] => major.is_ascii_digit(),
        [major, b'.', minor] => major.is_ascii_digit() && minor.is_ascii_digit(),
        _ => false,
    };
    if !ok {
        return None;
    }
    let mut out: String = digits
        .iter()
        .filter(|&&b| b != b'.')
        .map(|&b| char::from(b))
        .collect();
    if out.len() < 2 {
        out.push('0');
    }
    Some(out)
}

/// `name: value`, where the name is a non-empty token (so no leading
/// whitespace: obsolete line folding is refused).
fn header(line: &[u8]) -> Result<(&[u8], &[u8]), HeadError> {
    let colon = line
        .iter()
        .position(|&b| b == b':')
        .ok_or_else(|| malformed("header line without a colon"))?;
    let name = line.get(..colon).unwrap_or_default();
    if !is_token(name) {
        return Err(malformed("bad header name"));
    }
    let value = line.get(colon + 1..).unwrap_or_default();
    Ok((name, value.trim_ascii()))
}

/// A non-empty RFC 9110 token.
fn is_token(bytes: &[u8]) -> bool {
    !bytes.is_empty()
        && bytes
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

fn malformed(why: &str) -> HeadError {
    HeadError::Malformed(why.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_case_order_and_bare_lf() {
        let head =
            RequestHead::parse(b"GET / HTTP/1.0\nUser-Agent:\nX-a: 1 \n\nbody").expect("head");
        assert_eq!(head.method, b"GET");
        assert_eq!(head.version, "10");
        assert_eq!(
            head.headers,
            vec![(&b"User-Agent"[..], &b""[..]), (&b"X-a"[..], &b"1"[..])]
        );
    }

    #[test]
    fn target_with_spaces_and_http2() {
        let head = RequestHead::parse(b"GET /Hello Arkime HTTP/2\r\n\r\n").expect("head");
        assert_eq!(head.version, "20");
        assert!(head.headers.is_empty());
    }

    #[test]
    fn errors() {
        assert_eq!(
            RequestHead::parse(b"GET / HTTP/1.1\r\nHost: a\r\n"),
            Err(HeadError::Incomplete)
        );
        let bad = |b: &[u8]| matches!(RequestHead::parse(b), Err(HeadError::Malformed(_)));
        assert!(bad(b"GET /\r\n\r\n"));
        assert!(bad(b"GET / HTTP/1.1.1\r\n\r\n"));
        assert!(bad(b"GET / HTTP/1.1\r\nno colon\r\n\r\n"));
        assert!(bad(b"GET / HTTP/1.1\r\n folded: x\r\n\r\n"));
        assert!(bad(b"\r\n\r\n"));
        let huge = vec![b'a'; MAX_HEAD + 1];
        assert!(bad(&huge));
    }
}
