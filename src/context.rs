//! The context of a request, and the birth context a session keeps from its login.

use std::net::IpAddr;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use smallvec::SmallVec;

use crate::fingerprint::TlsFingerprint;
use crate::intern::Interner;
use crate::network::NetworkInfo;

/// Everything the engine knows about one request, built once per request.
///
/// The shell fills it from the socket, the geo database and the request
/// head; the engine only reads it. It is serializable because every
/// decision event carries the context it was made on, so that the decision
/// can be replayed.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RequestContext {
    /// The client address, after any trusted-proxy resolution.
    pub ip: Option<IpAddr>,
    /// What the geo database says about `ip`.
    pub network: NetworkInfo,
    /// The `User-Agent` header, if sent.
    pub user_agent: Option<String>,
    /// The `Accept-Language` header, if sent.
    pub accept_language: Option<String>,
    /// Header names in the order they arrived, lowercased.
    pub header_order: Vec<String>,
    /// Cookies sent, as name and value, in the order they arrived.
    pub cookies: Vec<(String, String)>,
    /// A fingerprint of the stable part of the header order (`http_fingerprint` in this module).
    pub http_fingerprint: String,
    /// JA3 hash of the connection's first ClientHello, when TLS is on.
    pub ja3: Option<String>,
    /// JA4 of the connection's first ClientHello, when TLS is on.
    pub ja4: Option<String>,
    /// The stable JA4 of that hello (see [`crate::fingerprint::ja4::ja4_stable`]):
    /// what the `fingerprint.ja4` rule compares. Traces written before it
    /// existed have none; the rule then compares `ja4`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ja4_stable: Option<String>,
    /// The page sensor's cookie as the target read it, when the target
    /// runs a sensor (see [`crate::auth::sensor`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sensor: Option<crate::auth::sensor::Reading>,
    /// The challenge clearance the request presented, when the target
    /// sealed it (see [`crate::auth::clearance`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clearance: Option<crate::auth::clearance::Clearance>,
}

impl RequestContext {
    /// Builds a context from an address, its network and the request's
    /// headers in wire order.
    ///
    /// ```
    /// use sessionrange::{NetworkInfo, RequestContext};
    ///
    /// let ctx = RequestContext::from_headers(
    ///     "127.0.1.7".parse().ok(),
    ///     NetworkInfo::unknown(),
    ///     [("Host", "shop"), ("User-Agent", "curl/8"), ("Cookie", "a=1; b=2")],
    /// );
    /// assert_eq!(ctx.user_agent.as_deref(), Some("curl/8"));
    /// assert_eq!(ctx.cookie("b"), Some("2"));
    /// assert_eq!(ctx.header_order, ["host", "user-agent", "cookie"]);
    /// ```
    pub fn from_headers<'a>(
        ip: Option<IpAddr>,
        network: NetworkInfo,
        headers: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Self {
        let mut ctx = Self {
            ip,
            network,
            ..Self::default()
        };
        for (name, value) in headers {
            ctx.add_header(name, value);
        }
        ctx.http_fingerprint = http_fingerprint(&ctx.header_order);
        ctx
    }

    fn add_header(&mut self, name: &str, value: &str) {
        let lower = cut(name, MAX_HEADER_BYTES).to_ascii_lowercase();
        match lower.as_str() {
            "user-agent" => self.user_agent = Some(cut(value, MAX_HEADER_BYTES).to_owned()),
            "accept-language" => {
                self.accept_language = Some(cut(value, MAX_HEADER_BYTES).to_owned())
            }
            "cookie" => {
                let room = MAX_COOKIES.saturating_sub(self.cookies.len());
                let cookies = parse_cookie_header(value).take(room);
                self.cookies
                    .extend(cookies.map(|(n, v)| (cut_owned(n), cut_owned(v))));
            }
            _ => {}
        }
        self.header_order.push(lower);
    }

    /// Adds TLS fingerprints of the connection, without a stable JA4: the
    /// `fingerprint.ja4` rule then compares the plain JA4.
    #[must_use]
    pub fn with_tls(mut self, ja3: Option<String>, ja4: Option<String>) -> Self {
        self.ja3 = ja3;
        self.ja4 = ja4;
        self.ja4_stable = None;
        self
    }

    /// Adds every TLS fingerprint of the connection's first ClientHello:
    /// the JA3 hash, the plain JA4 and the stable JA4.
    #[must_use]
    pub fn with_tls_fingerprint(mut self, tls: &TlsFingerprint) -> Self {
        self.ja3 = Some(tls.ja3_hash.clone());
        self.ja4 = Some(tls.ja4.clone());
        self.ja4_stable = Some(tls.ja4_stable.clone());
        self
    }

    /// The value of the first cookie named `name`.
    pub fn cookie(&self, name: &str) -> Option<&str> {
        self.cookies
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// The longest header name or value kept, in bytes; longer ones are cut at
/// a character boundary, at birth and on every request alike, so a client
/// cannot make the engine store megabytes per session.
pub(crate) const MAX_HEADER_BYTES: usize = 1024;

/// Most cookies kept from one request.
pub(crate) const MAX_COOKIES: usize = 64;

fn cut_owned(mut s: String) -> String {
    let len = cut(&s, MAX_HEADER_BYTES).len();
    s.truncate(len);
    s
}

/// Splits a `Cookie` header into name/value pairs, skipping pieces that are
/// not `name=value`. Garbage never fails: it is simply not a cookie.
pub(crate) fn parse_cookie_header(value: &str) -> impl Iterator<Item = (String, String)> + '_ {
    value.split(';').filter_map(|piece| {
        let (name, value) = piece.split_once('=')?;
        let name = name.trim();
        if name.is_empty() {
            return None;
        }
        let value = value.trim().trim_matches('"');
        Some((name.to_owned(), value.to_owned()))
    })
}

/// Headers whose presence depends on the request, not on the client: a
/// `POST` adds a body's headers, a revisit adds validators. They are left
/// out of the header-order fingerprint so one client keeps one fingerprint.
const REQUEST_SPECIFIC_HEADERS: &[&str] = &[
    "cookie",
    "referer",
    "content-length",
    "content-type",
    "authorization",
    "origin",
    "if-none-match",
    "if-modified-since",
    "cache-control",
    "pragma",
    "x-csrf-token",
    "x-forwarded-for",
    "forwarded",
];

/// A fingerprint of a client's HTTP stack: the first 12 hex digits of the
/// SHA-256 of its stable header names in order, joined with commas (the
/// shape of JA4H's second part).
pub(crate) fn http_fingerprint(header_order: &[String]) -> String {
    let mut hasher = Sha256::new();
    let stable = header_order
        .iter()
        .filter(|n| !REQUEST_SPECIFIC_HEADERS.contains(&n.as_str()));
    for (i, name) in stable.enumerate() {
        if i > 0 {
            hasher.update(b",");
        }
        hasher.update(name.as_bytes());
    }
    let digest = hasher.finalize();
    crate::fingerprint::common::hex(&digest[..6])
}

/// Whether two header orders disagree: some pair of names present in both
/// appears in opposite orders. Names present in only one are ignored, so a
/// `POST` that adds `content-type` is not a mutation.
pub(crate) fn header_order_conflicts(birth: &str, live: &[String]) -> bool {
    if same_order(birth, live) {
        return false;
    }
    let names: SmallVec<[&str; 24]> = birth.split(',').filter(|s| !s.is_empty()).collect();
    // A name sent twice (split cookies, repeated headers) counts where it
    // first appeared, on both sides.
    let first = names
        .iter()
        .enumerate()
        .filter(|(i, n)| !names[..*i].contains(n));
    let positions = first.filter_map(|(_, name)| live.iter().position(|l| l == name));
    let mut last = None;
    for p in positions {
        if last.is_some_and(|l| p < l) {
            return true;
        }
        last = Some(p);
    }
    false
}

/// Whether `live`, joined with commas, is exactly `birth`: the common case,
/// checked without splitting or allocating.
fn same_order(birth: &str, live: &[String]) -> bool {
    let mut rest = birth.as_bytes();
    for (i, name) in live.iter().enumerate() {
        if i > 0 {
            let Some(r) = rest.strip_prefix(b",") else {
                return false;
            };
            rest = r;
        }
        let Some(r) = rest.strip_prefix(name.as_bytes()) else {
            return false;
        };
        rest = r;
    }
    rest.is_empty()
}

/// The snapshot of a session's context taken at login.
///
/// Strings are interned, so a million sessions born from the same client
/// stack share one copy of its User-Agent and header order.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BirthContext {
    /// Client address at login.
    pub ip: Option<IpAddr>,
    /// Network identity at login.
    pub network: NetworkInfo,
    /// User-Agent at login.
    pub user_agent: Option<Arc<str>>,
    /// Accept-Language at login.
    pub accept_language: Option<Arc<str>>,
    /// Header names at login, lowercased, joined with commas.
    pub header_order: Arc<str>,
    /// HTTP fingerprint at login.
    pub http_fingerprint: Arc<str>,
    /// JA3 at login.
    pub ja3: Option<Arc<str>>,
    /// JA4 at login.
    pub ja4: Option<Arc<str>>,
    /// Stable JA4 at login, when the login's context had one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ja4_stable: Option<Arc<str>>,
    /// The companion cookies the target set for this client.
    pub companions: Companions,
    /// What the page's sensor claimed at login, when it checked out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sensor: Option<Arc<crate::auth::sensor::Signals>>,
}

impl BirthContext {
    /// Takes the snapshot of `ctx`, with the companion cookies the target set.
    pub(crate) fn capture(
        ctx: &RequestContext,
        companions: &[(String, String)],
        interner: &Interner,
    ) -> Self {
        let opt = |s: &Option<String>| s.as_deref().map(|s| interner.intern(s));
        let mut network = ctx.network.clone();
        network.org = network.org.map(|o| interner.intern(&o));
        Self {
            ip: ctx.ip,
            network,
            user_agent: opt(&ctx.user_agent),
            accept_language: opt(&ctx.accept_language),
            header_order: interner.intern(&ctx.header_order.join(",")),
            http_fingerprint: interner.intern(&ctx.http_fingerprint),
            ja3: opt(&ctx.ja3),
            ja4: opt(&ctx.ja4),
            ja4_stable: opt(&ctx.ja4_stable),
            companions: Companions::with_names(companions, |n| interner.intern(n)),
            sensor: match &ctx.sensor {
                Some(crate::auth::sensor::Reading::Valid(s)) => Some(Arc::new(s.clone())),
                _ => None,
            },
        }
    }
}

/// The companion cookies of one session.
///
/// A million sessions should cost neither a million small allocations per
/// cookie nor a cache miss per request to check them. So the names, which
/// every session of a target shares, are interned; the values, which are
/// per session, are packed into one allocation; and a 64-bit digest of the
/// values lets the common case (every cookie came back unchanged) be
/// checked without touching that allocation.
///
/// Names and values are packed behind their length, written as one `char`
/// (code point = byte length), so any byte may appear in either. A part
/// longer than [`Companions::MAX_PART`] bytes (RFC 6265 budgets 4096 bytes
/// for a whole cookie) is cut at a character boundary below that limit.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Companions {
    names: Arc<str>,
    values: Box<str>,
    digest: u64,
}

/// A companion cookie that did not come back as it was set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CompanionMismatch<'a> {
    /// The cookie's name.
    pub name: &'a str,
    /// The value the target set.
    pub expected: &'a str,
    /// The value that came back, if any.
    pub got: Option<&'a str>,
}

impl Companions {
    /// The longest name or value kept, in bytes.
    pub const MAX_PART: usize = 0xD000;

    /// Packs `pairs`.
    pub fn new(pairs: &[(String, String)]) -> Self {
        Self::with_names(pairs, |n| Arc::from(n))
    }

    /// Packs `pairs`, getting the shared copy of the packed names from `share`.
    pub(crate) fn with_names(
        pairs: &[(String, String)],
        share: impl FnOnce(&str) -> Arc<str>,
    ) -> Self {
        let names: String = pack(pairs.iter().map(|(n, _)| n.as_str()));
        let values = pack(pairs.iter().map(|(_, v)| v.as_str()));
        let digest = digest(unpack(&values));
        Self {
            names: share(&names),
            values: values.into_boxed_str(),
            digest,
        }
    }

    /// The pairs, in the order they were set.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        unpack(&self.names).zip(unpack(&self.values))
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// The first companion cookie that `live` does not return unchanged.
    pub fn first_mismatch<'a>(
        &'a self,
        live: impl Fn(&str) -> Option<&'a str>,
    ) -> Option<CompanionMismatch<'a>> {
        let mut all_there = true;
        let fast = unpack(&self.names).map(|name| {
            let v = live(name);
            all_there &= v.is_some();
            v.unwrap_or_default()
        });
        if digest(fast) == self.digest && all_there {
            return None;
        }
        self.iter().find_map(|(name, expected)| {
            let got = live(name);
            (got != Some(expected)).then_some(CompanionMismatch {
                name,
                expected,
                got,
            })
        })
    }
}

fn pack<'a>(parts: impl Iterator<Item = &'a str>) -> String {
    let mut packed = String::new();
    for part in parts {
        let part = cut(part, Companions::MAX_PART);
        // Lengths up to MAX_PART lie below the surrogate range.
        packed.push(char::from_u32(part.len() as u32).unwrap_or('\0'));
        packed.push_str(part);
    }
    packed
}

fn unpack(mut rest: &str) -> impl Iterator<Item = &str> {
    std::iter::from_fn(move || {
        let mut chars = rest.chars();
        let len = chars.next()? as usize;
        let tail = chars.as_str();
        let part = tail.get(..len)?;
        rest = &tail[len..];
        Some(part)
    })
}

fn digest<'a>(values: impl Iterator<Item = &'a str>) -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = foldhash::fast::FixedState::with_seed(0xc0_0c1e).build_hasher();
    for v in values {
        h.write(v.as_bytes());
        h.write_u8(0xff);
    }
    h.finish()
}

fn cut(s: &str, max: usize) -> &str {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

impl Serialize for Companions {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.iter())
    }
}

impl<'de> Deserialize<'de> for Companions {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Vec::<(String, String)>::deserialize(d).map(|pairs| Self::new(&pairs))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn garbage_cookie_pieces_are_skipped() {
        let got: Vec<_> = parse_cookie_header("a=1;;=x; junk ; b = \"2\"; c=").collect();
        let want = [("a", "1"), ("b", "2"), ("c", "")];
        let want: Vec<_> = want
            .iter()
            .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
            .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn http_fingerprint_ignores_request_specific_headers() {
        let get = names(&["host", "user-agent", "accept", "cookie"]);
        let post = names(&[
            "host",
            "user-agent",
            "accept",
            "content-type",
            "content-length",
        ]);
        assert_eq!(http_fingerprint(&get), http_fingerprint(&post));
        let other = names(&["host", "accept", "user-agent"]);
        assert_ne!(http_fingerprint(&get), http_fingerprint(&other));
        assert_eq!(http_fingerprint(&get).len(), 12);
    }

    #[test]
    fn companions_round_trip_any_bytes() {
        let pairs = vec![
            ("_rid".to_owned(), "a:1;b".to_owned()),
            ("".to_owned(), "é\u{0}9:".to_owned()),
        ];
        let c = Companions::new(&pairs);
        let back: Vec<_> = c
            .iter()
            .map(|(n, v)| (n.to_owned(), v.to_owned()))
            .collect();
        assert_eq!(back, pairs);
        let json = serde_json::to_string(&c).expect("serializes");
        assert_eq!(
            serde_json::from_str::<Companions>(&json).expect("parses"),
            c
        );
        assert!(Companions::new(&[]).is_empty());
        let live = |n: &str| match n {
            "_rid" => Some("a:1;b"),
            _ => Some("changed"),
        };
        let m = c.first_mismatch(live).expect("second value changed");
        assert_eq!(
            (m.name, m.expected, m.got),
            ("", "é\u{0}9:", Some("changed"))
        );
        assert!(
            c.first_mismatch(|n| pairs.iter().find(|p| p.0 == n).map(|p| p.1.as_str()))
                .is_none()
        );
        let m = c.first_mismatch(|_| None).expect("all missing");
        assert_eq!(m.got, None);
    }

    #[test]
    fn a_repeated_login_header_is_not_a_conflict() {
        let birth = "host,accept,user-agent,accept";
        let live = names(&["host", "accept", "user-agent", "accept", "content-type"]);
        assert!(!header_order_conflicts(birth, &live));
    }

    #[test]
    fn long_header_values_are_cut() {
        let ua = "x".repeat(300_000);
        let ctx = RequestContext::from_headers(
            None,
            NetworkInfo::unknown(),
            [("user-agent", ua.as_str())],
        );
        assert_eq!(ctx.user_agent.map(|u| u.len()), Some(MAX_HEADER_BYTES));
    }

    #[test]
    fn header_order_conflict_needs_a_swapped_pair() {
        let birth = "host,user-agent,accept";
        let same_plus = names(&["host", "user-agent", "content-type", "accept"]);
        assert!(!header_order_conflicts(birth, &same_plus));
        let fewer = names(&["host", "accept"]);
        assert!(!header_order_conflicts(birth, &fewer));
        let swapped = names(&["host", "accept", "user-agent"]);
        assert!(header_order_conflicts(birth, &swapped));
        let same = names(&["host", "user-agent", "accept"]);
        assert!(!header_order_conflicts(birth, &same));
        assert!(!header_order_conflicts("", &[]));
    }
}
