//! Second-factor codes: RFC 6238 TOTP with SHA-1, 6 digits, 30 s steps.
//!
//! A code from the step before or after the current one is accepted too
//! (±1 step of clock drift, as RFC 6238 §5.2 recommends). Secrets are
//! base32 (RFC 4648), as authenticator apps show them; case, spaces and
//! `=` padding are ignored. Secrets shorter than RFC 4226's 128 bits are
//! accepted, since real services still hand out 80-bit ones.
//!
//! The target does not remember used steps, so a code can be replayed
//! within its window; RFC 6238 leaves that check to the verifier.

use totp_rs::{Algorithm, Builder, Secret, Totp};

use crate::Timestamp;

/// Digits per code.
pub const DIGITS: u8 = 6;

/// Seconds per step.
pub const STEP_SECS: u64 = 30;

/// The longest base32 secret accepted (1280 bits).
const MAX_SECRET_LEN: usize = 256;

/// Whether `code` is valid for `secret_base32` at `now`, give or take a
/// step. A bad secret or a code that is not six ASCII digits is `false`.
pub fn verify(secret_base32: &str, code: &str, now: Timestamp) -> bool {
    totp(secret_base32).is_some_and(|t| t.check(code, now.as_secs()).is_some())
}

/// The code for `secret_base32` at `now`, or `None` if the secret is not
/// base32. For reference clients and tests.
pub fn code_at(secret_base32: &str, now: Timestamp) -> Option<String> {
    totp(secret_base32).map(|t| t.generate(now.as_secs()).to_string())
}

/// A SHA-1, 6-digit, 30 s generator with one step of skew.
///
/// Built unchecked because totp-rs refuses secrets under 128 bits; every
/// parameter it would check is a constant here, and the secret is never
/// empty.
fn totp(secret_base32: &str) -> Option<Totp> {
    let secret = decode_secret(secret_base32)?;
    let totp = Builder::new()
        .with_algorithm(Algorithm::SHA1)
        .with_digits(DIGITS)
        .with_step_duration(STEP_SECS)
        .with_skew(1)
        .with_secret(secret)
        .build_noncompliant();
    Some(totp)
}

fn decode_secret(secret_base32: &str) -> Option<Secret> {
    if secret_base32.len() > MAX_SECRET_LEN {
        return None;
    }
    let cleaned: String = secret_base32
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '=')
        .map(|c| c.to_ascii_uppercase())
        .collect();
    let secret = Secret::try_from_base32(cleaned).ok()?;
    (!secret.as_bytes().is_empty()).then_some(secret)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// "12345678901234567890" in ASCII, the RFC 6238 SHA-1 test secret.
    const RFC_SECRET: &str = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";

    fn at(secs: u64) -> Timestamp {
        Timestamp::from_secs(secs)
    }

    #[test]
    fn matches_rfc_6238_sha1_vectors_truncated_to_six_digits() {
        let vectors = [
            (59, "287082"),
            (1_111_111_109, "081804"),
            (1_111_111_111, "050471"),
            (1_234_567_890, "005924"),
            (2_000_000_000, "279037"),
        ];
        for (t, code) in vectors {
            assert_eq!(code_at(RFC_SECRET, at(t)).as_deref(), Some(code), "T={t}");
            assert!(verify(RFC_SECRET, code, at(t)), "T={t}");
        }
    }

    #[test]
    fn accepts_one_step_of_drift_but_not_two() {
        let code = code_at(RFC_SECRET, at(1_234_567_890)).expect("valid secret");
        assert!(verify(RFC_SECRET, &code, at(1_234_567_890 + 30)));
        assert!(verify(RFC_SECRET, &code, at(1_234_567_890 - 30)));
        assert!(!verify(RFC_SECRET, &code, at(1_234_567_890 + 90)));
    }

    #[test]
    fn wrong_codes_fail() {
        let now = at(59);
        for code in ["287083", "28708", "2870820", "+87082", "abcdef", ""] {
            assert!(!verify(RFC_SECRET, code, now), "{code}");
        }
    }

    #[test]
    fn bad_secrets_fail_without_panicking() {
        let now = at(59);
        let long = "A".repeat(MAX_SECRET_LEN + 1);
        for secret in ["", "====", "not base32!", "GEZ1", "ü", long.as_str()] {
            assert!(!verify(secret, "287082", now), "{secret:.10}");
            assert_eq!(code_at(secret, now), None, "{secret:.10}");
        }
    }

    #[test]
    fn lowercase_spaced_and_short_secrets_work() {
        let spaced = "gezd gnbv gy3t qojq gezd gnbv gy3t qojq";
        assert_eq!(code_at(spaced, at(59)).as_deref(), Some("287082"));
        // 80-bit secrets are common in the wild.
        assert!(code_at("JBSWY3DPEHPK3PXP", at(59)).is_some());
    }
}
