//! Short-lived HS256 access tokens, signed with a key generated per run.
//!
//! Only HS256 with the current key id is accepted. Anything else (`alg:
//! none`, RS256 or ES256 headers, an HS/RS confusion attempt, a token signed
//! by a key that was rotated out) is refused with a [`TokenError`] whose
//! [`code`](TokenError::code) the shell puts in its RFC 6750 error response.
//!
//! Tokens are issued with `jsonwebtoken` and verified here, on every
//! request, with the same RustCrypto HMAC: `jsonwebtoken::decode` reads the
//! header twice and the claims twice, which made verification the costliest
//! step of a bearer request (see DESIGN.md). A property test holds this
//! verifier to `jsonwebtoken`'s verdict on mutated tokens.

use std::fmt;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::Timestamp;

/// The longest token [`JwtKeys::verify`] looks at; longer input is malformed.
pub const MAX_TOKEN_LEN: usize = 8 * 1024;

/// The only algorithm accepted, as it appears in the header.
const ALG: &str = "HS256";

/// The claims of an access token.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct AccessClaims {
    /// The account name.
    pub sub: String,
    /// The engine session, as a [`SessionId`](crate::SessionId) in hex.
    pub sid: String,
    /// A unique token id.
    pub jti: String,
    /// Issued at, in seconds since the epoch.
    pub iat: u64,
    /// Expires at, in seconds since the epoch.
    pub exp: u64,
}

/// Why an access token was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Not a JWT: wrong shape, bad base64 or JSON, missing claims, too long.
    #[error("malformed token")]
    Malformed,
    /// The signature does not match the key named by the header.
    #[error("bad signature")]
    Signature,
    /// The token expired, even counting the clock-skew grace.
    #[error("token expired")]
    Expired,
    /// The header names an algorithm other than HS256.
    #[error("unsupported algorithm")]
    Algorithm,
    /// The header names no key, or a key that is not the current one.
    #[error("unknown signing key")]
    UnknownKey,
}

impl TokenError {
    /// A stable, machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Malformed => "malformed",
            Self::Signature => "bad_signature",
            Self::Expired => "expired",
            Self::Algorithm => "unsupported_algorithm",
            Self::UnknownKey => "unknown_key",
        }
    }
}

/// The run's signing key and its key id (`kid`).
///
/// Retired keys are not kept: nothing may verify with them, and a token
/// naming one is refused as [`TokenError::UnknownKey`] like any foreign key.
#[derive(Clone)]
pub struct JwtKeys {
    kid: String,
    secret: Vec<u8>,
    encoding: EncodingKey,
    /// HMAC-SHA256 keyed with the secret, cloned for each verification.
    mac: Hmac<Sha256>,
}

impl fmt::Debug for JwtKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwtKeys")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl JwtKeys {
    /// A fresh 256-bit secret with a random key id.
    pub fn generate(rng: &mut impl rand::Rng) -> Self {
        let kid: [u8; 8] = rng.random();
        let secret: [u8; 32] = rng.random();
        Self::from_secret(hex(&kid), &secret)
    }

    /// A key with the given id and secret.
    pub fn from_secret(kid: impl Into<String>, secret: &[u8]) -> Self {
        Self {
            kid: kid.into(),
            secret: secret.to_vec(),
            encoding: EncodingKey::from_secret(secret),
            mac: Hmac::new_from_slice(secret).expect("HMAC takes keys of any length"),
        }
    }

    /// The secret, for a shared store to hand to other instances.
    pub(crate) fn secret(&self) -> &[u8] {
        &self.secret
    }

    /// The current key id.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// Replaces the key with a fresh one; every token issued so far is then
    /// refused with [`TokenError::UnknownKey`].
    pub fn rotate(&mut self, rng: &mut impl rand::Rng) {
        *self = Self::generate(rng);
    }

    /// Signs `claims` with the current key.
    pub fn issue(&self, claims: &AccessClaims) -> String {
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, claims, &self.encoding)
            .expect("HS256 signing of plain strings and integers cannot fail")
    }

    /// Checks a presented token: shape, algorithm, key id, signature, then
    /// expiry against `now` with `skew` of grace. Never panics.
    pub fn verify(
        &self,
        token: &str,
        now: Timestamp,
        skew: Duration,
    ) -> Result<AccessClaims, TokenError> {
        if token.len() > MAX_TOKEN_LEN {
            return Err(TokenError::Malformed);
        }
        let (header_part, payload, signature) = split(token)?;
        let header = RawHeader::parse(header_part)?;
        if header.alg != ALG {
            return Err(TokenError::Algorithm);
        }
        if header.kid.as_deref() != Some(self.kid.as_str()) {
            return Err(TokenError::UnknownKey);
        }
        let signing_input = &token[..header_part.len() + 1 + payload.len()];
        let signature = decode(signature)?;
        let mut mac = self.mac.clone();
        mac.update(signing_input.as_bytes());
        mac.verify_slice(&signature)
            .map_err(|_| TokenError::Signature)?;
        let claims: AccessClaims =
            serde_json::from_slice(&decode(payload)?).map_err(|_| TokenError::Malformed)?;
        check_expiry(&claims, now, skew)?;
        Ok(claims)
    }
}

/// The three parts of a compact JWS: header, payload, signature.
fn split(token: &str) -> Result<(&str, &str, &str), TokenError> {
    let mut parts = token.split('.');
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(h), Some(p), Some(s), None) => Ok((h, p, s)),
        _ => Err(TokenError::Malformed),
    }
}

/// One base64url part, unpadded.
fn decode(part: &str) -> Result<Vec<u8>, TokenError> {
    URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| TokenError::Malformed)
}

/// The header fields read before the signature is checked.
#[derive(Deserialize)]
struct RawHeader {
    alg: String,
    #[serde(default)]
    kid: Option<String>,
}

impl RawHeader {
    /// Reads the encoded header part.
    fn parse(header: &str) -> Result<Self, TokenError> {
        serde_json::from_slice(&decode(header)?).map_err(|_| TokenError::Malformed)
    }
}

/// A token is valid strictly before `exp + skew`.
fn check_expiry(claims: &AccessClaims, now: Timestamp, skew: Duration) -> Result<(), TokenError> {
    let deadline = Timestamp::from_secs(claims.exp).plus(skew);
    if now >= deadline {
        return Err(TokenError::Expired);
    }
    Ok(())
}

/// Lowercase hex.
fn hex(bytes: &[u8]) -> String {
    crate::fingerprint::common::hex(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    const T0: u64 = 1_790_000_000;

    fn rng() -> StdRng {
        StdRng::seed_from_u64(7)
    }

    fn claims() -> AccessClaims {
        AccessClaims {
            sub: "alice".into(),
            sid: "00000000000000000000000000005e55".into(),
            jti: "j1".into(),
            iat: T0,
            exp: T0 + 300,
        }
    }

    fn at(secs: u64) -> Timestamp {
        Timestamp::from_secs(secs)
    }

    fn b64(s: &str) -> String {
        URL_SAFE_NO_PAD.encode(s)
    }

    /// A token with a hand-written header and payload and a junk signature.
    fn hand_built(header: &str, payload: &str) -> String {
        format!("{}.{}.{}", b64(header), b64(payload), b64("sig"))
    }

    /// `jsonwebtoken`'s own verification of a token of key `k` (secret
    /// `secret`): HS256, `exp` and `sub` required, expiry not checked.
    fn reference_decode(token: &str) -> Result<AccessClaims, jsonwebtoken::errors::ErrorKind> {
        let mut v = jsonwebtoken::Validation::new(Algorithm::HS256);
        v.validate_exp = false;
        v.required_spec_claims = ["exp", "sub"].map(str::to_owned).into();
        let key = jsonwebtoken::DecodingKey::from_secret(b"secret");
        jsonwebtoken::decode::<AccessClaims>(token, &key, &v)
            .map(|t| t.claims)
            .map_err(|e| e.into_kind())
    }

    fn payload() -> String {
        serde_json::to_string(&claims()).expect("claims serialize")
    }

    #[test]
    fn issued_token_verifies_and_round_trips() {
        let keys = JwtKeys::generate(&mut rng());
        let token = keys.issue(&claims());
        assert_eq!(keys.verify(&token, at(T0), Duration::ZERO), Ok(claims()));
    }

    #[test]
    fn expired_token_is_refused_unless_within_skew() {
        let keys = JwtKeys::generate(&mut rng());
        let token = keys.issue(&claims());
        let late = at(T0 + 310);
        let err = keys.verify(&token, late, Duration::ZERO);
        assert_eq!(err, Err(TokenError::Expired));
        assert!(keys.verify(&token, late, Duration::from_secs(30)).is_ok());
        let later = at(T0 + 330);
        let err = keys.verify(&token, later, Duration::from_secs(30));
        assert_eq!(err, Err(TokenError::Expired));
    }

    #[test]
    fn token_is_expired_at_exactly_exp() {
        let keys = JwtKeys::generate(&mut rng());
        let token = keys.issue(&claims());
        let err = keys.verify(&token, at(T0 + 300), Duration::ZERO);
        assert_eq!(err, Err(TokenError::Expired));
        let just_before = Timestamp::from_millis((T0 + 300) * 1000 - 1);
        assert!(keys.verify(&token, just_before, Duration::ZERO).is_ok());
    }

    #[test]
    fn tampered_payload_has_a_bad_signature() {
        let keys = JwtKeys::generate(&mut rng());
        let token = keys.issue(&claims());
        let parts: Vec<&str> = token.split('.').collect();
        let evil = AccessClaims {
            sub: "admin".into(),
            ..claims()
        };
        let evil = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&evil).expect("serialize"));
        let forged = format!("{}.{}.{}", parts[0], evil, parts[2]);
        let err = keys.verify(&forged, at(T0), Duration::ZERO);
        assert_eq!(err, Err(TokenError::Signature));
    }

    #[test]
    fn token_signed_by_another_key_with_our_kid_has_a_bad_signature() {
        let keys = JwtKeys::generate(&mut rng());
        let forger = JwtKeys::from_secret(keys.kid(), b"guessed secret");
        let token = forger.issue(&claims());
        let err = keys.verify(&token, at(T0), Duration::ZERO);
        assert_eq!(err, Err(TokenError::Signature));
    }

    #[test]
    fn token_with_a_foreign_kid_is_from_an_unknown_key() {
        let keys = JwtKeys::generate(&mut rng());
        let other = JwtKeys::generate(&mut StdRng::seed_from_u64(8));
        let err = keys.verify(&other.issue(&claims()), at(T0), Duration::ZERO);
        assert_eq!(err, Err(TokenError::UnknownKey));
    }

    #[test]
    fn token_without_kid_is_from_an_unknown_key() {
        let keys = JwtKeys::generate(&mut rng());
        let token = hand_built(r#"{"alg":"HS256","typ":"JWT"}"#, &payload());
        let err = keys.verify(&token, at(T0), Duration::ZERO);
        assert_eq!(err, Err(TokenError::UnknownKey));
    }

    #[test]
    fn alg_none_is_refused() {
        let keys = JwtKeys::generate(&mut rng());
        let header = format!(r#"{{"alg":"none","kid":"{}"}}"#, keys.kid());
        let token = format!("{}.{}.", b64(&header), b64(&payload()));
        let err = keys.verify(&token, at(T0), Duration::ZERO);
        assert_eq!(err, Err(TokenError::Algorithm));
    }

    #[test]
    fn rs256_and_es256_headers_are_refused() {
        let keys = JwtKeys::generate(&mut rng());
        for alg in ["RS256", "ES256", "HS512", "hs256"] {
            let header = format!(r#"{{"alg":"{alg}","kid":"{}"}}"#, keys.kid());
            let token = hand_built(&header, &payload());
            let err = keys.verify(&token, at(T0), Duration::ZERO);
            assert_eq!(err, Err(TokenError::Algorithm), "{alg}");
        }
    }

    #[test]
    fn hs_rs_confusion_is_refused() {
        // A correct HMAC-SHA256 over a header that says RS256: the label
        // and the key type disagree, so the token is refused before any
        // signature check, even though the MAC itself is valid.
        use hmac::{Hmac, Mac};
        let secret = b"the verifier's key";
        let keys = JwtKeys::from_secret("k1", secret);
        let signing_input = format!(
            "{}.{}",
            b64(r#"{"alg":"RS256","kid":"k1"}"#),
            b64(&payload())
        );
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret).expect("any key length");
        mac.update(signing_input.as_bytes());
        let sig = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
        let token = format!("{signing_input}.{sig}");
        let err = keys.verify(&token, at(T0), Duration::ZERO);
        assert_eq!(err, Err(TokenError::Algorithm));
    }

    #[test]
    fn rotation_invalidates_old_tokens() {
        let mut r = rng();
        let mut keys = JwtKeys::generate(&mut r);
        let old = keys.issue(&claims());
        let old_kid = keys.kid().to_owned();
        keys.rotate(&mut r);
        assert_ne!(keys.kid(), old_kid);
        let err = keys.verify(&old, at(T0), Duration::ZERO);
        assert_eq!(err, Err(TokenError::UnknownKey));
        let new = keys.issue(&claims());
        assert!(keys.verify(&new, at(T0), Duration::ZERO).is_ok());
    }

    #[test]
    fn garbage_is_malformed() {
        let keys = JwtKeys::generate(&mut rng());
        let long = "a".repeat(MAX_TOKEN_LEN + 1);
        let junk = [
            "",
            "...",
            "abc",
            "a.b",
            "a.b.c.d",
            "!!!.???.***",
            long.as_str(),
        ];
        for token in junk {
            let err = keys.verify(token, at(T0), Duration::ZERO);
            assert_eq!(err, Err(TokenError::Malformed), "{token:.20}");
        }
    }

    #[test]
    fn missing_claims_are_malformed() {
        let keys = JwtKeys::generate(&mut rng());
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some(keys.kid().into());
        let partial = serde_json::json!({ "sub": "alice", "exp": T0 + 300 });
        let token = jsonwebtoken::encode(&header, &partial, &keys.encoding).expect("encode");
        let err = keys.verify(&token, at(T0), Duration::ZERO);
        assert_eq!(err, Err(TokenError::Malformed));
    }

    #[test]
    fn error_codes_are_stable() {
        assert_eq!(TokenError::Signature.code(), "bad_signature");
        assert_eq!(TokenError::Algorithm.code(), "unsupported_algorithm");
        assert_eq!(TokenError::Expired.to_string(), "token expired");
    }

    #[test]
    fn debug_does_not_print_the_secret() {
        let keys = JwtKeys::from_secret("k1", b"super secret");
        let shown = format!("{keys:?}");
        assert!(shown.contains("k1") && !shown.contains("super"));
    }

    fn junk_part() -> impl Strategy<Value = String> {
        proptest::collection::vec(any::<u8>(), 0..64).prop_map(|b| URL_SAFE_NO_PAD.encode(b))
    }

    proptest! {
        #[test]
        fn arbitrary_strings_never_panic(s in ".{0,200}") {
            let keys = JwtKeys::from_secret("k", b"secret");
            prop_assert!(keys.verify(&s, at(T0), Duration::ZERO).is_err());
        }

        #[test]
        fn three_part_base64_junk_never_panics(a in junk_part(), b in junk_part(), c in junk_part()) {
            let keys = JwtKeys::from_secret("k", b"secret");
            let token = format!("{a}.{b}.{c}");
            prop_assert!(keys.verify(&token, at(T0), Duration::ZERO).is_err());
        }

        /// The verifier agrees with `jsonwebtoken::decode` on every
        /// one-character change or cut of a valid token: both accept it
        /// or both refuse it, and a bad MAC is a bad signature to both.
        #[test]
        fn verdicts_match_jsonwebtoken_on_mutated_tokens(
            sub in "\\PC{0,12}",
            at_index in any::<prop::sample::Index>(),
            with in prop::sample::select(b"AQgw_-.=xyz09 ".to_vec()),
            cut in any::<bool>(),
        ) {
            let keys = JwtKeys::from_secret("k", b"secret");
            let token = keys.issue(&AccessClaims { sub, ..claims() });
            let mut bytes = token.clone().into_bytes();
            let i = at_index.index(bytes.len());
            if cut { bytes.truncate(i) } else { bytes[i] = with }
            let mutated = String::from_utf8(bytes).expect("ASCII");
            let ours = keys.verify(&mutated, at(T0), Duration::ZERO);
            let theirs = reference_decode(&mutated);
            prop_assert_eq!(ours.is_ok(), theirs.is_ok(), "{} / {:?} / {:?}", mutated, ours, theirs);
            if let (Ok(ours), Ok(theirs)) = (&ours, &theirs) {
                prop_assert_eq!(ours, theirs);
            }
            let bad_mac = theirs.as_ref().err() == Some(&jsonwebtoken::errors::ErrorKind::InvalidSignature);
            let header_kept = mutated.split('.').next() == token.split('.').next();
            if bad_mac && header_kept {
                prop_assert_eq!(ours, Err(TokenError::Signature));
            }
        }

        #[test]
        fn valid_header_with_junk_never_verifies(b in junk_part(), c in junk_part()) {
            let keys = JwtKeys::from_secret("k", b"secret");
            let token = format!("{}.{b}.{c}", b64(r#"{"alg":"HS256","kid":"k"}"#));
            prop_assert!(keys.verify(&token, at(T0), Duration::ZERO).is_err());
        }
    }
}
