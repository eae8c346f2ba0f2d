//! JA4H (FoxIO; FoxIO License 1.1, see the research notes): `a_b_c_d` from an HTTP/1.x request head.
//!
//! * a (12 chars): method code (the FoxIO Wireshark table: `GET` → `ge`,
//!   `M-SEARCH` → `ms`, an unknown method → `00`), version (`10`, `11`),
//!   `c`/`n` for a Cookie header, `r`/`n` for a Referer header, the header
//!   count without Cookie and Referer (capped at 99), and the first
//!   Accept-Language value (up to `,` or `;`) reduced to ASCII letters and
//!   digits (and the wildcard `*`), lowercased, cut to 4 and padded with
//!   `0` (`0000` if absent, `*000` for `*`).
//! * b: the header names in wire order and sent case, Cookie and Referer
//!   left out, comma-joined, SHA-256, first 12 hex (an empty list hashes
//!   the empty string, as FoxIO does).
//! * c: cookie names sorted (byte order), d: `name=value` pairs sorted by
//!   name; both `000000000000` without a Cookie header.
//!
//! Cookies are the `;`-separated pieces of every Cookie header, trimmed;
//! a piece without `=` is dropped (as Wireshark does). Header names are
//! matched ASCII case-insensitively. The raw forms always have four
//! `_`-separated fields and no trailing comma (`ge10nn000000___` for a
//! bare request), which equals Wireshark's `ja4h_r` exactly.

use super::HttpFingerprint;
use super::common::{ZERO_HASH, hash12, push_count2};
use super::request_head::RequestHead;

/// Method codes from the FoxIO Wireshark plugin (`packet-ja4.c`).
const METHODS: &[(&str, &str)] = &[
    ("ACL", "ac"),
    ("BASELINE-CONTROL", "ba"),
    ("BIND", "bi"),
    ("CHECKIN", "cn"),
    ("CHECKOUT", "ct"),
    ("CONNECT", "co"),
    ("COPY", "cy"),
    ("DELETE", "de"),
    ("GET", "ge"),
    ("HEAD", "he"),
    ("LABEL", "la"),
    ("LINK", "li"),
    ("LOCK", "lo"),
    ("MERGE", "me"),
    ("MKACTIVITY", "ma"),
    ("MKCALENDAR", "mc"),
    ("MKCOL", "ml"),
    ("MKREDIRECTREF", "mr"),
    ("MKWORKSPACE", "mw"),
    ("MOVE", "mo"),
    ("M-SEARCH", "ms"),
    ("NOTIFY", "no"),
    ("OPTIONS", "op"),
    ("PATCH", "pa"),
    ("POST", "po"),
    ("PRI", "pr"),
    ("PROPFIND", "pf"),
    ("PROPPATCH", "pp"),
    ("PURGE", "pr"),
    ("PUT", "pu"),
    ("REBIND", "rb"),
    ("REPORT", "rp"),
    ("SEARCH", "se"),
    ("SUBSCRIBE", "su"),
    ("TRACE", "tr"),
    ("UNBIND", "ub"),
    ("UNCHECKOUT", "uc"),
    ("UNLINK", "ui"),
    ("UNLOCK", "uo"),
    ("UNSUBSCRIBE", "un"),
    ("UPDATE", "up"),
    ("UPDATEREDIRECTREF", "ur"),
    ("VERSION-CONTROL", "ve"),
];

/// Computes JA4H and its raw forms from a parsed request head.
pub fn ja4h(head: &RequestHead<'_>) -> HttpFingerprint {
    let names: Vec<&[u8]> = head
        .headers
        .iter()
        .map(|(n, _)| *n)
        .filter(|n| !is(n, "cookie") && !is(n, "referer"))
        .collect();
    let has_cookie = head.values("cookie").next().is_some();
    let mut a = String::with_capacity(12);
    a.push_str(method_code(head.method));
    a.push_str(&head.version);
    a.push(if has_cookie { 'c' } else { 'n' });
    let has_referer = head.values("referer").next().is_some();
    a.push(if has_referer { 'r' } else { 'n' });
    push_count2(&mut a, names.len());
    a.push_str(&language(head.values("accept-language").next()));
    let b = names.join(&b","[..]);
    let wire = cookies(head);
    let mut sorted = wire.clone();
    sorted.sort_by(|x, y| x.0.cmp(y.0));
    let (c_o, d_o) = cookie_lists(&wire);
    let (c, d) = cookie_lists(&sorted);
    let hash = |raw: &[u8]| {
        if has_cookie {
            hash12(raw)
        } else {
            ZERO_HASH.to_owned()
        }
    };
    let text = |raw: &[u8]| String::from_utf8_lossy(raw).into_owned();
    HttpFingerprint {
        ja4h: format!("{a}_{}_{}_{}", hash12(&b), hash(&c), hash(&d)),
        ja4h_r: format!("{a}_{}_{}_{}", text(&b), text(&c), text(&d)),
        ja4h_ro: format!("{a}_{}_{}_{}", text(&b), text(&c_o), text(&d_o)),
    }
}

fn is(name: &[u8], lower: &str) -> bool {
    name.eq_ignore_ascii_case(lower.as_bytes())
}

fn method_code(method: &[u8]) -> &'static str {
    METHODS
        .iter()
        .find(|(name, _)| method.eq_ignore_ascii_case(name.as_bytes()))
        .map_or("00", |(_, code)| code)
}

/// `en-US,en;q=0.9` → `enus`, `da, en-GB` → `da00`, `*` → `*000`,
/// absent → `0000`.
///
/// A language range is ASCII letters and digits joined by `-`, or the
/// wildcard `*` (RFC 9110, 12.5.4). FoxIO's Python and Rust code drop the
/// `-` and keep the rest, so `*` stays; any other byte (only a malformed
/// header has one) is dropped, which keeps the field four ASCII characters.
fn language(value: Option<&[u8]>) -> String {
    let first = value
        .unwrap_or_default()
        .split(|&b| b == b',' || b == b';')
        .next()
        .unwrap_or_default();
    let mut out: String = first
        .iter()
        .filter(|b| b.is_ascii_alphanumeric() || **b == b'*')
        .take(4)
        .map(|b| char::from(b.to_ascii_lowercase()))
        .collect();
    while out.len() < 4 {
        out.push('0');
    }
    out
}

/// `(name, name=value)` for every cookie, in wire order.
fn cookies<'a>(head: &RequestHead<'a>) -> Vec<(&'a [u8], &'a [u8])> {
    head.values("cookie")
        .flat_map(|v| v.split(|&b| b == b';'))
        .map(<[u8]>::trim_ascii)
        .filter_map(|pair| {
            let eq = pair.iter().position(|&b| b == b'=')?;
            Some((pair.get(..eq)?, pair))
        })
        .collect()
}

/// The comma-joined names and the comma-joined pairs.
fn cookie_lists(cookies: &[(&[u8], &[u8])]) -> (Vec<u8>, Vec<u8>) {
    let names: Vec<&[u8]> = cookies.iter().map(|c| c.0).collect();
    let pairs: Vec<&[u8]> = cookies.iter().map(|c| c.1).collect();
    (names.join(&b","[..]), pairs.join(&b","[..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fingerprint(head: &[u8]) -> HttpFingerprint {
        ja4h(&RequestHead::parse(head).expect("head"))
    }

    #[test]
    fn research_notes_example() {
        let fp = fingerprint(
            b"GET / HTTP/1.1\r\nHost: localhost:8000\r\nUser-Agent: curl/8.1.2\r\nAccept: */*\r\n\
              Referer: https://fake.example\r\nCookie: yummy_cookie=choco; tasty_cookie=strawberry\r\n\
              Accept-Language: da, en-GB;q=0.8, en;q=0.7\r\n\r\n",
        );
        assert_eq!(
            fp.ja4h,
            "ge11cr04da00_8ddaef5d77af_280f366eaa04_c2fb0fe53442"
        );
        assert!(
            fp.ja4h_ro
                .ends_with("_yummy_cookie,tasty_cookie_yummy_cookie=choco,tasty_cookie=strawberry")
        );
    }

    #[test]
    fn bare_request_and_unknown_method() {
        let fp = fingerprint(b"BREW /pot HTTP/1.0\r\n\r\n");
        assert_eq!(
            fp.ja4h,
            "0010nn000000_e3b0c44298fc_000000000000_000000000000"
        );
        assert_eq!(fp.ja4h_r, "0010nn000000___");
        assert_eq!(language(Some(b"es-419")), "es41");
    }

    #[test]
    fn accept_language_wildcard_is_kept() {
        assert_eq!(language(Some(b"*")), "*000");
        assert_eq!(language(Some(b"*;q=0.5, en")), "*000");
        let fp = fingerprint(b"GET / HTTP/1.1\r\nHost: a\r\nAccept-Language: *\r\n\r\n");
        assert!(fp.ja4h.starts_with("ge11nn02*000_"), "{}", fp.ja4h);
    }
}
