//! The sensor cookie: browser signals a page's script collects, bound to a nonce the target issued, that the target can check.
//!
//! # Wire format
//!
//! A browser client never needs this (the landing page's script does it);
//! a client that does not run JavaScript must compute exactly this, as
//! real scrapers reimplement a vendor's sensor:
//!
//! 1. The landing page sets the cookie `_sr_sz` (the nonce, opaque, sealed
//!    by the target with the address it was issued to) and gives the same
//!    value to its script in the `data-nonce` attribute of
//!    `<script id="sr-sensor">`.
//! 2. The script collects the signals as a JSON object with these keys:
//!    `ua` (`navigator.userAgent`), `languages` (`navigator.languages`
//!    joined with `,`), `webdriver` (`navigator.webdriver === true`),
//!    `timezone` (the `Intl` time zone), `screen` (`"WIDTHxHEIGHT"`),
//!    `plugins` (`navigator.plugins.length`).
//! 3. `payload` is that JSON in unpadded base64url; `proof` is the
//!    lowercase hex SHA-256 of the ASCII string `nonce ":" payload`.
//! 4. The cookie `_sr_px` is `payload "." proof`.
//!
//! The target checks the nonce's signature, recomputes the proof and reads
//! the signals. A sensor cookie taken from another client carries another
//! nonce's proof; one whose signals were edited no longer matches its
//! proof. What it claims is then compared with the request (its
//! User-Agent against the header) by the `sensor` rule, and read for
//! automation markers by the `automation` rule.

use std::net::IpAddr;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::auth::csrf::CsrfKey;

/// The cookie holding the nonce.
pub const NONCE_COOKIE: &str = "_sr_sz";
/// The cookie the script sets.
pub const SENSOR_COOKIE: &str = "_sr_px";
/// The longest sensor cookie read, in bytes.
pub const MAX_COOKIE_LEN: usize = 2048;
/// The longest text signal kept, in bytes.
const MAX_SIGNAL_LEN: usize = 512;

/// What a sensor claims about the browser that ran it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Signals {
    /// `navigator.userAgent`.
    pub ua: String,
    /// `navigator.languages`, joined with commas.
    pub languages: String,
    /// `navigator.webdriver`.
    pub webdriver: bool,
    /// The time zone `Intl` reports.
    pub timezone: String,
    /// `screen.width` x `screen.height`.
    pub screen: String,
    /// `navigator.plugins.length`.
    pub plugins: u32,
}

impl Signals {
    /// The markers of an automated browser these signals show, by name:
    /// `webdriver`, `headless_user_agent` (claimed or sent),
    /// `user_agent_mismatch` (the browser's own User-Agent is not the one
    /// its requests send: an override on the wire only), `no_plugins`,
    /// `no_languages`. Empty for a browser that shows none.
    pub fn automation_markers(&self, header_ua: Option<&str>) -> Vec<&'static str> {
        let headless = |ua: &str| ua.contains("HeadlessChrome");
        let markers = [
            (self.webdriver, "webdriver"),
            (
                headless(&self.ua) || header_ua.is_some_and(headless),
                "headless_user_agent",
            ),
            (!self.claims(header_ua), "user_agent_mismatch"),
            (self.plugins == 0, "no_plugins"),
            (self.languages.trim().is_empty(), "no_languages"),
        ];
        markers
            .into_iter()
            .filter(|(on, _)| *on)
            .map(|(_, name)| name)
            .collect()
    }

    /// Whether the signals claim the User-Agent a request sent.
    pub fn claims(&self, header_ua: Option<&str>) -> bool {
        header_ua == Some(self.ua.as_str())
    }

    fn fits(&self) -> bool {
        [&self.ua, &self.languages, &self.timezone, &self.screen]
            .iter()
            .all(|s| s.len() <= MAX_SIGNAL_LEN)
    }
}

/// A fresh nonce for a page served to `ip`: random, with the address it
/// was issued to, sealed under `key` (opaque to the client).
pub fn issue_nonce(key: &CsrfKey, ip: IpAddr, rng: &mut impl rand::Rng) -> String {
    let id: [u8; 12] = rng.random();
    let id = crate::fingerprint::common::hex(&id);
    key.seal(&URL_SAFE_NO_PAD.encode(format!("{id}|{ip}")))
}

/// The address a nonce was issued to, if `key` sealed it.
pub fn nonce_address(key: &CsrfKey, nonce: &str) -> Option<IpAddr> {
    let payload = URL_SAFE_NO_PAD.decode(key.unseal(nonce)?).ok()?;
    let text = String::from_utf8(payload).ok()?;
    text.split_once('|')?.1.parse().ok()
}

/// What the target makes of a request from `ip` with these cookies: no
/// nonce of its own is a missing sensor; a nonce issued to another
/// address (a sensor carried to another client) makes the sensor invalid.
pub fn check(
    key: &CsrfKey,
    ip: Option<IpAddr>,
    nonce: Option<&str>,
    cookie: Option<&str>,
) -> Reading {
    let Some((nonce, issued_to)) = nonce.and_then(|n| Some((n, nonce_address(key, n)?))) else {
        return Reading::Missing;
    };
    if cookie.is_some() && Some(issued_to) != ip {
        return Reading::Invalid {
            why: "the sensor's nonce was issued to another address".to_owned(),
        };
    }
    read(Some(nonce), cookie)
}

/// What the target made of a request's sensor cookie.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Reading {
    /// No sensor cookie, or no nonce to check it against.
    Missing,
    /// A sensor cookie that does not check out, and why.
    Invalid {
        /// What was wrong, as a phrase.
        why: String,
    },
    /// A sensor cookie bound to the nonce, with what it claims.
    Valid(Signals),
}

/// The proof a sensor of `payload` under `nonce` carries.
pub fn proof(nonce: &str, payload: &str) -> String {
    let digest = Sha256::new()
        .chain_update(nonce.as_bytes())
        .chain_update(b":")
        .chain_update(payload.as_bytes())
        .finalize();
    crate::fingerprint::common::hex(&digest)
}

/// The sensor cookie for `signals` under `nonce`, as the script sets it.
pub fn cookie(nonce: &str, signals: &Signals) -> String {
    let json = serde_json::to_string(signals).unwrap_or_default();
    let payload = URL_SAFE_NO_PAD.encode(json);
    let proof = proof(nonce, &payload);
    format!("{payload}.{proof}")
}

/// Reads a sensor cookie against the nonce the target issued (`None`
/// when the request brought no nonce the target signed).
pub fn read(nonce: Option<&str>, cookie: Option<&str>) -> Reading {
    let (Some(nonce), Some(cookie)) = (nonce, cookie) else {
        return Reading::Missing;
    };
    let invalid = |why: &str| Reading::Invalid {
        why: why.to_owned(),
    };
    if cookie.len() > MAX_COOKIE_LEN {
        return invalid("the sensor cookie is too long");
    }
    let Some((payload, claimed)) = cookie.split_once('.') else {
        return invalid("the sensor cookie has no proof");
    };
    let expected = proof(nonce, payload);
    if !crate::auth::csrf::constant_time_eq(expected.as_bytes(), claimed.as_bytes()) {
        return invalid("the proof does not match the nonce and the signals");
    }
    let Ok(json) = URL_SAFE_NO_PAD.decode(payload) else {
        return invalid("the signals are not base64url");
    };
    match serde_json::from_slice::<Signals>(&json) {
        Ok(s) if s.fits() => Reading::Valid(s),
        Ok(_) => invalid("a signal is too long"),
        Err(_) => invalid("the signals are not the sensor's JSON"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn chrome() -> Signals {
        Signals {
            ua: "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0.0.0 Safari/537.36".into(),
            languages: "en-US,en".into(),
            webdriver: false,
            timezone: "UTC".into(),
            screen: "1280x720".into(),
            plugins: 5,
        }
    }

    #[test]
    fn a_sensor_reads_back_under_its_own_nonce_only() {
        let c = cookie("n1.sig", &chrome());
        assert_eq!(read(Some("n1.sig"), Some(&c)), Reading::Valid(chrome()));
        let elsewhere = read(Some("n2.sig"), Some(&c));
        assert!(
            matches!(elsewhere, Reading::Invalid { .. }),
            "{elsewhere:?}"
        );
        assert_eq!(read(None, Some(&c)), Reading::Missing);
        assert_eq!(read(Some("n1.sig"), None), Reading::Missing);
    }

    #[test]
    fn a_nonce_holds_its_address_and_a_sensor_carried_elsewhere_is_invalid() {
        let key = CsrfKey::generate(&mut rand::rng());
        let (home, away): (IpAddr, IpAddr) = (
            "127.0.1.20".parse().expect("an address"),
            "127.0.5.20".parse().expect("an address"),
        );
        let nonce = issue_nonce(&key, home, &mut rand::rng());
        assert_eq!(nonce_address(&key, &nonce), Some(home));
        let c = cookie(&nonce, &chrome());
        assert_eq!(
            check(&key, Some(home), Some(&nonce), Some(&c)),
            Reading::Valid(chrome())
        );
        let carried = check(&key, Some(away), Some(&nonce), Some(&c));
        assert!(matches!(carried, Reading::Invalid { .. }), "{carried:?}");
        assert_eq!(
            check(&key, Some(away), Some(&nonce), None),
            Reading::Missing
        );
        let other = CsrfKey::generate(&mut rand::rng());
        assert_eq!(
            check(&other, Some(home), Some(&nonce), Some(&c)),
            Reading::Missing
        );
        assert_eq!(nonce_address(&key, "garbage.tag"), None);
    }

    #[test]
    fn forged_and_garbage_cookies_are_invalid_never_a_panic() {
        for bad in ["", ".", "abc", "abc.def", &"x".repeat(5000), "é.é"] {
            let r = read(Some("n"), Some(bad));
            assert!(matches!(r, Reading::Invalid { .. }), "{bad:?}: {r:?}");
        }
        // A proof that matches but signals that are not the sensor's JSON.
        let payload = URL_SAFE_NO_PAD.encode(br#"{"ua":1}"#);
        let c = format!("{payload}.{}", proof("n", &payload));
        assert!(matches!(read(Some("n"), Some(&c)), Reading::Invalid { .. }));
    }

    #[test]
    fn automation_markers_name_each_signal() {
        let own = |s: &Signals| s.automation_markers(Some(&s.ua));
        assert!(own(&chrome()).is_empty());
        let stock = Signals {
            ua: "Mozilla/5.0 HeadlessChrome/156.0.0.0".into(),
            webdriver: true,
            ..chrome()
        };
        assert_eq!(own(&stock), ["webdriver", "headless_user_agent"]);
        let sent = chrome().automation_markers(Some("HeadlessChrome/156"));
        assert_eq!(sent, ["headless_user_agent", "user_agent_mismatch"]);
        let bare = Signals {
            plugins: 0,
            languages: String::new(),
            ..chrome()
        };
        assert_eq!(own(&bare), ["no_plugins", "no_languages"]);
    }

    fn signals() -> impl Strategy<Value = Signals> {
        let text = "[ -~]{0,40}";
        (text, text, any::<bool>(), text, text, 0u32..10).prop_map(
            |(ua, languages, webdriver, timezone, screen, plugins)| Signals {
                ua,
                languages,
                webdriver,
                timezone,
                screen,
                plugins,
            },
        )
    }

    proptest! {
        #[test]
        fn any_sensor_reads_back_and_any_edit_breaks_it(
            s in signals(), nonce in "[A-Za-z0-9_.-]{1,60}", other in "[A-Za-z0-9_.-]{1,60}",
            at in any::<prop::sample::Index>(), byte in any::<u8>(),
        ) {
            let c = cookie(&nonce, &s);
            prop_assert_eq!(read(Some(&nonce), Some(&c)), Reading::Valid(s.clone()));
            // Replayed under another session's nonce.
            if other != nonce {
                let replayed = read(Some(&other), Some(&c));
                let invalid = matches!(replayed, Reading::Invalid { .. });
                prop_assert!(invalid);
            }
            // Any one byte altered.
            let mut bytes = c.clone().into_bytes();
            let i = at.index(bytes.len());
            if bytes[i] != byte {
                bytes[i] = byte;
                let altered = String::from_utf8_lossy(&bytes).into_owned();
                let r = read(Some(&nonce), Some(&altered));
                let invalid = matches!(r, Reading::Invalid { .. });
                prop_assert!(invalid, "{:?}", r);
            }
        }
    }
}
