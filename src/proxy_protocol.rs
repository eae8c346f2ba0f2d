//! PROXY protocol v2 between the pool and the target: who the exit is, vouched for by a secret.
//!
//! A pool node opens each upstream connection with a binary PROXY v2
//! header (built and parsed with the `ppp` crate) whose source address is
//! the exit's address. The header also carries a per-run secret in an
//! application-specific TLV (type `0xE0`), so that only the pool can speak
//! for an exit: any other local process that connects to the target's
//! pool listener is refused.

use std::net::{IpAddr, SocketAddr};

use ppp::v2::{self, Addresses, Builder, Command, Protocol, Version};
use tokio::io::{AsyncRead, AsyncReadExt};

use crate::auth::csrf::constant_time_eq;

/// The TLV type that carries the pool secret (0xE0 to 0xEF are reserved
/// for applications).
pub const SECRET_TLV: u8 = 0xE0;
/// The 12-byte signature every v2 header starts with.
const SIGNATURE: &[u8; 12] = b"\r\n\r\n\0\r\nQUIT\n";
/// Largest header accepted: addresses plus a few small TLVs.
const MAX_HEADER: usize = 512;

/// Why a PROXY header was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum HeaderError {
    /// The connection closed before a whole header arrived.
    #[error("the connection closed inside the PROXY header")]
    Truncated,
    /// The bytes are not a PROXY v2 header.
    #[error("not a valid PROXY protocol header: {0}")]
    Malformed(String),
    /// A LOCAL command or a non-IP address family: no client to speak for.
    #[error("the PROXY header names no TCP client address")]
    NoAddress,
    /// The secret TLV is missing or wrong: not sent by this run's pool.
    #[error("the PROXY header does not carry this run's pool secret")]
    BadSecret,
}

/// The header a pool node sends: `source` is the exit, `dest` the target.
pub fn encode(source: SocketAddr, dest: SocketAddr, secret: &[u8]) -> Vec<u8> {
    let addresses: Addresses = match (source, dest) {
        (s @ SocketAddr::V4(_), d @ SocketAddr::V4(_)) => (s, d).into(),
        (s, d) => (SocketAddr::V6(v6(s)), SocketAddr::V6(v6(d))).into(),
    };
    let built = Builder::with_addresses(Version::Two | Command::Proxy, Protocol::Stream, addresses)
        .write_tlv(SECRET_TLV, secret)
        .and_then(Builder::build);
    // Writing into a Vec cannot fail, and the TLV is far below 64 KiB.
    built.unwrap_or_default()
}

fn v6(addr: SocketAddr) -> std::net::SocketAddrV6 {
    let ip = match addr.ip() {
        IpAddr::V4(v4) => v4.to_ipv6_mapped(),
        IpAddr::V6(v6) => v6,
    };
    std::net::SocketAddrV6::new(ip, addr.port(), 0, 0)
}

/// The client a v2 header names: a PROXY command over TCP.
fn source(header: &v2::Header<'_>) -> Result<SocketAddr, HeaderError> {
    if header.command != Command::Proxy || header.protocol != Protocol::Stream {
        return Err(HeaderError::NoAddress);
    }
    match header.addresses {
        Addresses::IPv4(a) => Ok(SocketAddr::from((a.source_address, a.source_port))),
        Addresses::IPv6(a) => {
            let ip = a.source_address;
            let ip = ip.to_ipv4_mapped().map_or(IpAddr::V6(ip), IpAddr::V4);
            Ok(SocketAddr::new(ip, a.source_port))
        }
        _ => Err(HeaderError::NoAddress),
    }
}

/// Parses one complete header from `bytes` and checks the secret.
///
/// Returns the client (exit) address. Never panics, whatever the input.
pub fn parse(bytes: &[u8], secret: &[u8]) -> Result<SocketAddr, HeaderError> {
    let header = v2::Header::try_from(bytes).map_err(|e| HeaderError::Malformed(e.to_string()))?;
    let source = source(&header)?;
    let vouched = header
        .tlvs()
        .filter_map(|t| t.ok())
        .any(|t| t.kind == SECRET_TLV && constant_time_eq(&t.value, secret));
    if !vouched {
        return Err(HeaderError::BadSecret);
    }
    Ok(source)
}

/// Reads exactly one header from `io` (and nothing after it) and parses it.
///
/// The caller bounds the time this may take.
pub async fn read<R: AsyncRead + Unpin>(
    io: &mut R,
    secret: &[u8],
) -> Result<SocketAddr, HeaderError> {
    let mut buf = vec![0u8; 12];
    io.read_exact(&mut buf)
        .await
        .map_err(|_| HeaderError::Truncated)?;
    if buf != SIGNATURE {
        return Err(HeaderError::Malformed("bad signature".into()));
    }
    read_v2_rest(io, &mut buf).await?;
    parse(&buf, secret)
}

/// Reads the rest of a v2 header whose 12-byte signature is in `buf`.
async fn read_v2_rest<R: AsyncRead + Unpin>(
    io: &mut R,
    buf: &mut Vec<u8>,
) -> Result<(), HeaderError> {
    buf.resize(16, 0);
    io.read_exact(&mut buf[12..])
        .await
        .map_err(|_| HeaderError::Truncated)?;
    let len = usize::from(u16::from_be_bytes([buf[14], buf[15]]));
    if 16 + len > MAX_HEADER {
        return Err(HeaderError::Malformed(format!(
            "{len}-byte header is too long"
        )));
    }
    buf.resize(16 + len, 0);
    io.read_exact(&mut buf[16..])
        .await
        .map_err(|_| HeaderError::Truncated)?;
    Ok(())
}

/// The longest v1 header (the specification's bound, CRLF included).
const MAX_V1: usize = 107;

/// Reads one header of a trusted load balancer, v1 or v2, and nothing
/// after it: the client's address, or `None` when the header names none
/// (a v2 LOCAL header, such as a health check, or v1 `UNKNOWN`): then the
/// connection is the balancer's own.
///
/// The caller bounds the time this may take.
pub async fn read_trusted<R: AsyncRead + Unpin>(
    io: &mut R,
) -> Result<Option<SocketAddr>, HeaderError> {
    let mut buf = vec![0u8; 12];
    io.read_exact(&mut buf)
        .await
        .map_err(|_| HeaderError::Truncated)?;
    if buf == SIGNATURE {
        read_v2_rest(io, &mut buf).await?;
        let header =
            v2::Header::try_from(&buf[..]).map_err(|e| HeaderError::Malformed(e.to_string()))?;
        return match source(&header) {
            Err(HeaderError::NoAddress) => Ok(None),
            other => other.map(Some),
        };
    }
    if !buf.starts_with(b"PROXY ") {
        return Err(HeaderError::Malformed(
            "neither a v1 nor a v2 header".into(),
        ));
    }
    while !buf.ends_with(b"\r\n") {
        if buf.len() >= MAX_V1 {
            return Err(HeaderError::Malformed("v1 header too long".into()));
        }
        let byte = io.read_u8().await.map_err(|_| HeaderError::Truncated)?;
        buf.push(byte);
    }
    v1_source(&buf)
}

/// The client a v1 header names (`None` for `UNKNOWN`).
fn v1_source(bytes: &[u8]) -> Result<Option<SocketAddr>, HeaderError> {
    let header =
        ppp::v1::Header::try_from(bytes).map_err(|e| HeaderError::Malformed(e.to_string()))?;
    Ok(match header.addresses {
        ppp::v1::Addresses::Tcp4(a) => Some(SocketAddr::from((a.source_address, a.source_port))),
        ppp::v1::Addresses::Tcp6(a) => Some(SocketAddr::from((a.source_address, a.source_port))),
        ppp::v1::Addresses::Unknown => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> SocketAddr {
        s.parse().expect("address")
    }

    #[test]
    fn round_trips_v4_and_v6_sources() {
        for src in ["127.0.1.20:40000", "[2001:db8::7]:40000"] {
            let bytes = encode(addr(src), addr("127.0.0.1:8080"), b"k");
            assert_eq!(parse(&bytes, b"k"), Ok(addr(src)));
        }
    }

    fn trusted(bytes: &[u8]) -> Result<Option<SocketAddr>, HeaderError> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a runtime");
        rt.block_on(read_trusted(&mut &bytes[..]))
    }

    #[test]
    fn a_balancers_header_is_read_in_either_version_and_garbage_is_refused() {
        let v1 = b"PROXY TCP4 127.0.3.7 127.0.0.1 4000 80\r\nGET /";
        assert_eq!(trusted(v1), Ok(Some(addr("127.0.3.7:4000"))));
        let v6 = b"PROXY TCP6 2001:db8::7 ::1 4000 80\r\n";
        assert_eq!(trusted(v6), Ok(Some(addr("[2001:db8::7]:4000"))));
        assert_eq!(trusted(b"PROXY UNKNOWN\r\n"), Ok(None));
        let v2 = encode(addr("127.0.3.8:5000"), addr("127.0.0.1:443"), b"any");
        assert_eq!(trusted(&v2), Ok(Some(addr("127.0.3.8:5000"))));
        let local = Builder::with_addresses(
            Version::Two | Command::Local,
            Protocol::Unspecified,
            Addresses::Unspecified,
        )
        .build()
        .expect("a LOCAL header");
        assert_eq!(trusted(&local), Ok(None));
        let long = [b"PROXY TCP4 ".as_slice(), &[b'1'; 200]].concat();
        for bad in [
            &b"GET / HTTP/1.1\r\n\r\n"[..],
            b"PROXY",
            b"PROXY TCP4 x y 1 2\r\n",
            &long,
            &v2[..20],
        ] {
            assert!(trusted(bad).is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn refuses_a_wrong_or_missing_secret() {
        let bytes = encode(addr("127.0.1.20:1"), addr("127.0.0.1:2"), b"right");
        assert_eq!(parse(&bytes, b"wrong"), Err(HeaderError::BadSecret));
    }

    #[test]
    fn refuses_garbage_and_truncation_without_panicking() {
        let bytes = encode(addr("127.0.1.20:1"), addr("127.0.0.1:2"), b"k");
        for cut in 0..bytes.len() {
            assert!(parse(&bytes[..cut], b"k").is_err(), "cut at {cut}");
        }
        assert!(parse(b"GET / HTTP/1.1\r\n\r\n", b"k").is_err());
    }

    #[test]
    fn refuses_local_and_datagram_headers() {
        let (src, dst) = (addr("127.0.1.20:1"), addr("127.0.0.1:2"));
        let build = |command, protocol| {
            Builder::with_addresses(Version::Two | command, protocol, (src, dst))
                .write_tlv(SECRET_TLV, b"k")
                .and_then(Builder::build)
                .expect("a header")
        };
        let local = build(Command::Local, Protocol::Stream);
        assert_eq!(parse(&local, b"k"), Err(HeaderError::NoAddress));
        let udp = build(Command::Proxy, Protocol::Datagram);
        assert_eq!(parse(&udp, b"k"), Err(HeaderError::NoAddress));
        assert_eq!(
            parse(&build(Command::Proxy, Protocol::Stream), b"k"),
            Ok(src)
        );
    }

    #[tokio::test]
    async fn reads_exactly_the_header_from_a_stream() {
        let mut bytes = encode(addr("127.0.2.9:5"), addr("127.0.0.1:2"), b"k");
        bytes.extend_from_slice(b"GET /");
        let mut io = &bytes[..];
        assert_eq!(read(&mut io, b"k").await, Ok(addr("127.0.2.9:5")));
        assert_eq!(io, b"GET /");
        let mut short = &bytes[..10];
        assert_eq!(read(&mut short, b"k").await, Err(HeaderError::Truncated));
    }
}
