//! Who the client is: the socket peer, or a forwarding header from a trusted proxy.
//!
//! A forwarding header is just text the client may have written itself.
//! [`resolve`] honours `Forwarded` (RFC 7239) and `X-Forwarded-For` only
//! when the socket peer is a configured trusted proxy, and then takes the
//! rightmost address that is not itself a trusted proxy: the first hop
//! that no trusted party vouches for. Anything malformed falls back to the
//! peer, and a forwarding header from an untrusted peer is reported as
//! ignored, since it is most likely a spoofing attempt.

use std::fmt;
use std::net::{IpAddr, Ipv6Addr};

use axum::http::HeaderMap;
use ipnetwork::IpNetwork;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The networks whose forwarding headers are believed.
///
/// Serializes as a list of CIDR strings such as `["10.0.0.0/8", "::1"]`;
/// a bare address means that one address.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<IpNetwork>);

impl TrustedProxies {
    /// Trusts these networks.
    pub fn new(networks: Vec<IpNetwork>) -> Self {
        Self(networks)
    }

    /// Whether `ip` (IPv4-mapped IPv6 counts as IPv4) is a trusted proxy.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = normalise(ip);
        self.0.iter().any(|net| net.contains(ip))
    }
}

impl Serialize for TrustedProxies {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.iter().map(ToString::to_string))
    }
}

impl<'de> Deserialize<'de> for TrustedProxies {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let entries = Vec::<String>::deserialize(d)?;
        let parse = |s: &String| {
            s.parse::<IpNetwork>().map_err(|e| {
                serde::de::Error::custom(format!("trusted proxy {s:?} is not a CIDR network: {e}"))
            })
        };
        entries
            .iter()
            .map(parse)
            .collect::<Result<_, _>>()
            .map(Self)
    }
}

/// Where the client address came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum IpSource {
    /// The TCP peer itself.
    Socket,
    /// `X-Forwarded-For` from a trusted proxy.
    ForwardedFor,
    /// `Forwarded` (RFC 7239) from a trusted proxy.
    Forwarded,
    /// A PROXY protocol header (set by the server shell, never by [`resolve`]).
    ProxyProtocol,
}

/// The client address a request is judged by.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub(crate) struct ClientIp {
    /// The client's address.
    pub ip: IpAddr,
    /// Where it came from.
    pub source: IpSource,
    /// A forwarding header sent by an untrusted peer and ignored (likely
    /// spoofing), by its lowercase name.
    pub ignored_header: Option<String>,
}

impl fmt::Display for ClientIp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.ip)
    }
}

const FORWARDED: &str = "forwarded";
const X_FORWARDED_FOR: &str = "x-forwarded-for";

/// Resolves the client address of a request that arrived from `peer`.
///
/// Forwarding headers count only when `peer` is trusted; `Forwarded` wins
/// over `X-Forwarded-For`, several lines of one header concatenate in
/// order, and the client is the rightmost address that is not a trusted
/// proxy (the leftmost one if all are). A malformed header, or a hop
/// hidden behind `unknown` or `_obfuscated` before any untrusted address,
/// falls back to the peer. Never panics.
pub(crate) fn resolve(peer: IpAddr, headers: &HeaderMap, trusted: &TrustedProxies) -> ClientIp {
    let peer = normalise(peer);
    let socket = |ignored: Option<&str>| ClientIp {
        ip: peer,
        source: IpSource::Socket,
        ignored_header: ignored.map(str::to_owned),
    };
    let present = [FORWARDED, X_FORWARDED_FOR]
        .into_iter()
        .find(|name| headers.contains_key(*name));
    let Some(name) = present else {
        return socket(None);
    };
    if !trusted.contains(peer) {
        return socket(Some(name));
    }
    let (chain, source) = if name == FORWARDED {
        (forwarded_chain(headers), IpSource::Forwarded)
    } else {
        (forwarded_for_chain(headers), IpSource::ForwardedFor)
    };
    match chain.and_then(|c| client_of(&c, trusted)) {
        Some(ip) => ClientIp {
            ip,
            source,
            ignored_header: None,
        },
        None => socket(None),
    }
}

/// One hop of a forwarding chain.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Node {
    Ip(IpAddr),
    /// `unknown` or an obfuscated identifier such as `_hidden`.
    Hidden,
}

/// The rightmost address that is not a trusted proxy; the leftmost if all
/// are; `None` if a hidden hop comes first or the chain is empty.
fn client_of(chain: &[Node], trusted: &TrustedProxies) -> Option<IpAddr> {
    for node in chain.iter().rev() {
        match *node {
            Node::Ip(ip) if trusted.contains(ip) => {}
            Node::Ip(ip) => return Some(ip),
            Node::Hidden => return None,
        }
    }
    match chain.first() {
        Some(Node::Ip(ip)) => Some(*ip),
        _ => None,
    }
}

/// All lines of `name`, joined by commas; `None` if any is not text.
fn joined(headers: &HeaderMap, name: &str) -> Option<String> {
    let lines: Option<Vec<&str>> = headers
        .get_all(name)
        .iter()
        .map(|v| v.to_str().ok())
        .collect();
    Some(lines?.join(","))
}

fn forwarded_for_chain(headers: &HeaderMap) -> Option<Vec<Node>> {
    joined(headers, X_FORWARDED_FOR)?
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(node)
        .collect()
}

/// The `for=` of each element of `Forwarded`; an element without one is a
/// hidden hop.
fn forwarded_chain(headers: &HeaderMap) -> Option<Vec<Node>> {
    let text = joined(headers, FORWARDED)?;
    let mut chain = Vec::new();
    for element in split_unquoted(&text, ',') {
        if element.trim().is_empty() {
            continue;
        }
        chain.push(match for_value(element)? {
            Some(value) => node(&value)?,
            None => Node::Hidden,
        });
    }
    Some(chain)
}

/// The unquoted value of the `for` parameter of one element: `None` if
/// the element is malformed, `Some(None)` if it has no `for`.
fn for_value(element: &str) -> Option<Option<String>> {
    let mut found = None;
    for pair in split_unquoted(element, ';') {
        let pair = pair.trim();
        if pair.is_empty() {
            continue;
        }
        let (key, value) = pair.split_once('=')?;
        if key.trim().eq_ignore_ascii_case("for") {
            found = Some(unquote(value.trim())?);
        }
    }
    Some(found)
}

/// Splits on `sep` outside double-quoted strings (with `\` escapes).
fn split_unquoted(s: &str, sep: char) -> Vec<&str> {
    let (mut parts, mut start, mut quoted, mut escaped) = (Vec::new(), 0, false, false);
    for (i, c) in s.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            c if c == sep && !quoted => {
                parts.push(&s[start..i]);
                start = i + c.len_utf8();
            }
            _ => {}
        }
    }
    parts.push(&s[start..]);
    parts
}

/// A token, or a quoted string with its escapes removed.
fn unquote(v: &str) -> Option<String> {
    let Some(inner) = v.strip_prefix('"') else {
        return (!v.contains('"')).then(|| v.to_owned());
    };
    let inner = inner.strip_suffix('"')?;
    let (mut out, mut escaped) = (String::with_capacity(inner.len()), false);
    for c in inner.chars() {
        match c {
            '\\' if !escaped => escaped = true,
            '"' if !escaped => return None,
            c => {
                out.push(c);
                escaped = false;
            }
        }
    }
    (!escaped).then_some(out)
}

/// One node: an address with an optional port, `unknown` or `_obfuscated`.
fn node(s: &str) -> Option<Node> {
    if s.eq_ignore_ascii_case("unknown") || s.starts_with('_') {
        return Some(Node::Hidden);
    }
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Some(Node::Ip(normalise(ip)));
    }
    if let Some(rest) = s.strip_prefix('[') {
        let (addr, tail) = rest.split_once(']')?;
        let ip = addr.parse::<Ipv6Addr>().ok()?;
        return port_ok(tail).then(|| Node::Ip(normalise(IpAddr::V6(ip))));
    }
    let (addr, port) = s.rsplit_once(':')?;
    let ip = addr.parse::<std::net::Ipv4Addr>().ok()?;
    port_ok(&format!(":{port}")).then(|| Node::Ip(normalise(IpAddr::V4(ip))))
}

/// Empty, `:1234`, or an obfuscated `:_port`.
fn port_ok(tail: &str) -> bool {
    let Some(port) = tail.strip_prefix(':') else {
        return tail.is_empty();
    };
    let digits = !port.is_empty() && port.len() <= 5 && port.bytes().all(|b| b.is_ascii_digit());
    let hidden = port.len() > 1
        && port.starts_with('_')
        && port[1..]
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-');
    digits || hidden
}

/// IPv4-mapped IPv6 (`::ffff:a.b.c.d`) becomes plain IPv4.
fn normalise(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        IpAddr::V4(_) => ip,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;
    use proptest::prelude::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("address")
    }

    fn trusted(nets: &[&str]) -> TrustedProxies {
        TrustedProxies::new(nets.iter().map(|n| n.parse().expect("cidr")).collect())
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (name, value) in pairs {
            h.append(*name, HeaderValue::from_str(value).expect("header value"));
        }
        h
    }

    fn resolved(peer: &str, pairs: &[(&'static str, &str)], nets: &[&str]) -> ClientIp {
        resolve(ip(peer), &headers(pairs), &trusted(nets))
    }

    #[test]
    fn without_headers_the_client_is_the_peer() {
        let c = resolved("203.0.113.9", &[], &["10.0.0.0/8"]);
        assert_eq!(
            c,
            ClientIp {
                ip: ip("203.0.113.9"),
                source: IpSource::Socket,
                ignored_header: None
            }
        );
    }

    #[test]
    fn spoofed_forwarded_for_from_an_untrusted_peer_is_ignored() {
        let c = resolved(
            "203.0.113.9",
            &[("x-forwarded-for", "1.2.3.4")],
            &["10.0.0.0/8"],
        );
        assert_eq!(c.ip, ip("203.0.113.9"));
        assert_eq!(c.source, IpSource::Socket);
        assert_eq!(c.ignored_header.as_deref(), Some("x-forwarded-for"));
        let c = resolved("203.0.113.9", &[("forwarded", "for=1.2.3.4")], &[]);
        assert_eq!(c.ignored_header.as_deref(), Some("forwarded"));
    }

    #[test]
    fn one_trusted_hop_forwards_its_client() {
        let c = resolved(
            "10.0.0.2",
            &[("x-forwarded-for", "198.51.100.7")],
            &["10.0.0.0/8"],
        );
        assert_eq!(c.ip, ip("198.51.100.7"));
        assert_eq!(c.source, IpSource::ForwardedFor);
        assert_eq!(c.ignored_header, None);
    }

    #[test]
    fn a_chain_of_trusted_proxies_is_walked_right_to_left() {
        let xff = "6.6.6.6, 198.51.100.7, 10.0.0.5, 192.168.1.1";
        let nets = ["10.0.0.0/8", "192.168.0.0/16"];
        let c = resolved("10.0.0.2", &[("x-forwarded-for", xff)], &nets);
        assert_eq!(c.ip, ip("198.51.100.7"));
    }

    #[test]
    fn several_header_lines_concatenate_in_order() {
        let pairs = [
            ("x-forwarded-for", "198.51.100.7"),
            ("x-forwarded-for", "10.0.0.5"),
        ];
        assert_eq!(
            resolved("10.0.0.2", &pairs, &["10.0.0.0/8"]).ip,
            ip("198.51.100.7")
        );
    }

    #[test]
    fn when_every_hop_is_trusted_the_leftmost_is_the_client() {
        let c = resolved(
            "10.0.0.2",
            &[("x-forwarded-for", "10.1.1.1, 10.0.0.5")],
            &["10.0.0.0/8"],
        );
        assert_eq!(c.ip, ip("10.1.1.1"));
    }

    #[test]
    fn forwarded_parses_quoted_ipv6_with_port() {
        let fwd = r#"for="[2001:db8:cafe::17]:4711";proto=https, for=10.0.0.5"#;
        let c = resolved("10.0.0.2", &[("forwarded", fwd)], &["10.0.0.0/8"]);
        assert_eq!(c.ip, ip("2001:db8:cafe::17"));
        assert_eq!(c.source, IpSource::Forwarded);
    }

    #[test]
    fn forwarded_is_preferred_over_forwarded_for() {
        let pairs = [
            ("x-forwarded-for", "198.51.100.1"),
            ("forwarded", "For=198.51.100.2:8080;by=10.0.0.2"),
        ];
        let c = resolved("10.0.0.2", &pairs, &["10.0.0.0/8"]);
        assert_eq!((c.ip, c.source), (ip("198.51.100.2"), IpSource::Forwarded));
    }

    #[test]
    fn a_hidden_hop_stops_the_walk_and_falls_back_to_the_peer() {
        for fwd in [
            "for=198.51.100.2, for=_hidden",
            "for=unknown",
            "proto=https",
        ] {
            let c = resolved("10.0.0.2", &[("forwarded", fwd)], &["10.0.0.0/8"]);
            assert_eq!(
                (c.ip, c.source),
                (ip("10.0.0.2"), IpSource::Socket),
                "{fwd}"
            );
        }
        let fwd = "for=_hidden, for=198.51.100.2";
        let c = resolved("10.0.0.2", &[("forwarded", fwd)], &["10.0.0.0/8"]);
        assert_eq!(c.ip, ip("198.51.100.2"));
    }

    #[test]
    fn garbage_falls_back_to_the_peer() {
        let cases = [
            ("x-forwarded-for", "not an ip"),
            ("x-forwarded-for", "1.2.3.4:99999999"),
            ("x-forwarded-for", ""),
            ("forwarded", "for=\"[2001:db8::1\""),
            ("forwarded", "for"),
            ("forwarded", "for=\"unterminated"),
            ("forwarded", "for=300.1.1.1"),
        ];
        for pair in cases {
            let c = resolved("10.0.0.2", &[pair], &["10.0.0.0/8"]);
            assert_eq!(
                (c.ip, c.source),
                (ip("10.0.0.2"), IpSource::Socket),
                "{pair:?}"
            );
        }
    }

    #[test]
    fn ipv4_mapped_addresses_become_ipv4() {
        let c = resolved(
            "::ffff:10.0.0.2",
            &[("x-forwarded-for", "::ffff:198.51.100.7")],
            &["10.0.0.0/8"],
        );
        assert_eq!(c.ip, ip("198.51.100.7"));
        assert_eq!(
            resolved("::ffff:203.0.113.9", &[], &[]).ip,
            ip("203.0.113.9")
        );
    }

    #[test]
    fn trusted_proxies_round_trip_and_name_a_bad_entry() {
        let t: TrustedProxies = serde_json::from_str(r#"["10.0.0.0/8","::1"]"#).expect("parses");
        assert!(t.contains(ip("10.9.9.9")) && t.contains(ip("::1")));
        assert_eq!(
            serde_json::to_string(&t).expect("serializes"),
            r#"["10.0.0.0/8","::1/128"]"#
        );
        let err = serde_json::from_str::<TrustedProxies>(r#"["10.0.0.0/8","nope/99"]"#)
            .expect_err("refused");
        assert!(err.to_string().contains("\"nope/99\""), "{err}");
    }

    proptest! {
        #[test]
        fn never_panics_and_untrusted_peers_keep_their_address(
            xff in any::<Vec<u8>>(),
            fwd in r#"[0-9a-fA-F:.\[\]"_;,= forFOR\\]{0,48}"#,
            peer_trusted in any::<bool>(),
        ) {
            let mut h = HeaderMap::new();
            if let Ok(v) = HeaderValue::from_bytes(&xff) {
                h.append("x-forwarded-for", v);
            }
            if let Ok(v) = HeaderValue::from_str(&fwd) {
                h.append("forwarded", v);
            }
            let peer = if peer_trusted { ip("10.0.0.2") } else { ip("203.0.113.9") };
            let c = resolve(peer, &h, &trusted(&["10.0.0.0/8"]));
            if !peer_trusted || c.source == IpSource::Socket {
                prop_assert_eq!(c.ip, peer);
            }
        }
    }
}
