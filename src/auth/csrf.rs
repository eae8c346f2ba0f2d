//! Signed double-submit CSRF tokens for the login form.
//!
//! The form page puts the same token in a cookie and in a hidden field. A
//! `POST` is accepted only if both come back, are equal, and carry a valid
//! HMAC under the run's key, so a cross-site attacker can neither read the
//! cookie nor mint a token of their own.
//!
//! A token is `nonce "." tag`: `nonce` is 16 random bytes in unpadded
//! base64url (22 characters) and `tag` is HMAC-SHA256 over the nonce's
//! ASCII characters, in unpadded base64url (43 characters).

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// The longest token [`CsrfKey::verify`] looks at.
const MAX_TOKEN_LEN: usize = 128;
/// The longest sealed token [`CsrfKey::unseal`] looks at.
const MAX_SEALED_LEN: usize = 1024;

/// The run's CSRF signing key.
#[derive(Clone)]
pub struct CsrfKey([u8; 32]);

impl fmt::Debug for CsrfKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CsrfKey(..)")
    }
}

impl CsrfKey {
    /// The key with these bytes: a shared store hands keys back this way.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The key's bytes, for a shared store to hand to other instances.
    pub(crate) fn bytes(&self) -> [u8; 32] {
        self.0
    }

    /// A fresh 256-bit key.
    pub fn generate(rng: &mut impl rand::Rng) -> Self {
        Self(rng.random())
    }

    /// A fresh token, for both the cookie and the form field.
    pub fn issue(&self, rng: &mut impl rand::Rng) -> String {
        let nonce: [u8; 16] = rng.random();
        let nonce = URL_SAFE_NO_PAD.encode(nonce);
        let tag = URL_SAFE_NO_PAD.encode(self.mac(&nonce).finalize().into_bytes());
        format!("{nonce}.{tag}")
    }

    /// Whether the form's token and the cookie's token are present, equal
    /// and signed by this key. Comparisons are constant-time.
    pub fn verify(&self, form_token: &str, cookie_token: &str) -> bool {
        if form_token.is_empty() || form_token.len() > MAX_TOKEN_LEN {
            return false;
        }
        if !constant_time_eq(form_token.as_bytes(), cookie_token.as_bytes()) {
            return false;
        }
        self.is_signed(form_token)
    }

    /// `payload "." tag`: `payload` (which must hold no `.`) with its HMAC
    /// tag in unpadded base64url.
    pub fn seal(&self, payload: &str) -> String {
        let tag = URL_SAFE_NO_PAD.encode(self.mac(payload).finalize().into_bytes());
        format!("{payload}.{tag}")
    }

    /// The payload of a token [`CsrfKey::seal`] made, if its tag is this
    /// key's (checked in constant time).
    pub fn unseal<'a>(&self, token: &'a str) -> Option<&'a str> {
        if token.len() > MAX_SEALED_LEN {
            return None;
        }
        let (payload, _) = token.rsplit_once('.')?;
        self.is_signed(token).then_some(payload)
    }

    fn is_signed(&self, token: &str) -> bool {
        let Some((nonce, tag)) = token.split_once('.') else {
            return false;
        };
        let Ok(tag) = URL_SAFE_NO_PAD.decode(tag) else {
            return false;
        };
        self.mac(nonce).verify_slice(&tag).is_ok()
    }

    /// The HMAC of `parts`, one after the other.
    pub(crate) fn tag(&self, parts: &[&[u8]]) -> [u8; 32] {
        let mut mac = HmacSha256::new_from_slice(&self.0).expect("HMAC takes keys of any length");
        for p in parts {
            mac.update(p);
        }
        mac.finalize().into_bytes().into()
    }

    fn mac(&self, nonce: &str) -> HmacSha256 {
        let mut mac = HmacSha256::new_from_slice(&self.0).expect("HMAC takes keys of any length");
        mac.update(nonce.as_bytes());
        mac
    }
}

/// Equality whose time depends only on the lengths.
pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    fn setup() -> (CsrfKey, StdRng) {
        let mut rng = StdRng::seed_from_u64(3);
        (CsrfKey::generate(&mut rng), rng)
    }

    #[test]
    fn issued_token_verifies_when_form_and_cookie_match() {
        let (key, mut rng) = setup();
        let token = key.issue(&mut rng);
        assert_eq!(token.len(), 22 + 1 + 43);
        assert!(key.verify(&token, &token));
    }

    #[test]
    fn mismatched_or_missing_tokens_fail() {
        let (key, mut rng) = setup();
        let a = key.issue(&mut rng);
        let b = key.issue(&mut rng);
        assert_ne!(a, b);
        assert!(!key.verify(&a, &b));
        assert!(!key.verify(&a, ""));
        assert!(!key.verify("", &a));
        assert!(!key.verify("", ""));
    }

    #[test]
    fn unsigned_or_foreign_tokens_fail_even_when_both_match() {
        let (key, mut rng) = setup();
        let other = CsrfKey::generate(&mut rng);
        let foreign = other.issue(&mut rng);
        assert!(!key.verify(&foreign, &foreign));
        let token = key.issue(&mut rng);
        let (nonce, tag) = token.split_once('.').expect("nonce.tag");
        let swapped = format!("{}.{tag}", nonce.replace('A', "B") + "x");
        for bad in ["nodot", "a.b", "a.!!!", &swapped, nonce] {
            assert!(!key.verify(bad, bad), "{bad}");
        }
    }

    #[test]
    fn overlong_tokens_fail() {
        let (key, _) = setup();
        let long = "a".repeat(MAX_TOKEN_LEN + 1);
        assert!(!key.verify(&long, &long));
    }

    #[test]
    fn debug_hides_the_key() {
        let (key, _) = setup();
        assert_eq!(format!("{key:?}"), "CsrfKey(..)");
    }
}
