//! Proof of work: the login step that stands in for a CAPTCHA, with a cost
//! the scenario tunes in bits.
//!
//! # Wire format
//!
//! Clients in any language must compute exactly this:
//!
//! 1. The server sends a challenge: 16 bytes as 32 lowercase hex
//!    characters, e.g. `"3f9a…"`. Clients treat them as opaque; the
//!    target's own (see [`seal`]) carry when they were issued and a tag,
//!    so that any instance of a shared target can check one without
//!    asking a store.
//! 2. The client picks a nonce: 1 to 64 ASCII characters (reference
//!    clients use the decimal numbers `"0"`, `"1"`, `"2"`, …).
//! 3. The digest is `SHA-256(challenge ‖ ":" ‖ nonce)`, hashing the
//!    challenge *as its 32 ASCII hex characters* (not the decoded bytes),
//!    one colon byte `0x3A`, then the nonce's ASCII bytes. No newline,
//!    no padding.
//! 4. The nonce is accepted if the digest starts with at least `bits` zero
//!    bits, counting from the most significant bit of the first byte.
//!
//! Expected work is `2^bits` hashes: 16 bits takes milliseconds, 24 bits
//! about a second in a scripting language.

use sha2::{Digest, Sha256};

use crate::auth::csrf::{CsrfKey, constant_time_eq};
use crate::clock::Timestamp;
use crate::fingerprint::common::hex;

/// Who a sealed challenge is for: a tag for one never fits the other.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChallengeKind {
    /// A login's proof of work.
    Login,
    /// The JavaScript challenge page's.
    Page,
}

/// Bytes of a sealed challenge: issue time (seconds), randomness, tag.
const SEALED: (usize, usize, usize) = (4, 5, 7);

/// A fresh challenge of `kind` in the wire format (32 lowercase hex): its
/// issue time in seconds, 40 random bits, and 56 bits of `key`'s HMAC
/// over both and the kind.
pub fn seal(
    key: &CsrfKey,
    kind: ChallengeKind,
    now: Timestamp,
    rng: &mut impl rand::Rng,
) -> String {
    let (t, r, _) = SEALED;
    let mut raw = [0u8; 16];
    let secs = u32::try_from(now.as_millis() / 1000).unwrap_or(u32::MAX);
    raw[..t].copy_from_slice(&secs.to_be_bytes());
    rng.fill_bytes(&mut raw[t..t + r]);
    let tag = key.tag(&[&[kind as u8], &raw[..t + r]]);
    raw[t + r..].copy_from_slice(&tag[..16 - t - r]);
    hex(&raw)
}

/// When a challenge [`seal`] made with `key` for `kind` was issued (to the
/// second); `None` for any other string.
pub fn issued(key: &CsrfKey, kind: ChallengeKind, challenge: &str) -> Option<Timestamp> {
    let (t, r, _) = SEALED;
    if challenge.len() != 32
        || !challenge
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    {
        return None;
    }
    let raw: [u8; 16] = crate::fingerprint::decode_hex(challenge)?.try_into().ok()?;
    let tag = key.tag(&[&[kind as u8], &raw[..t + r]]);
    if !constant_time_eq(&tag[..16 - t - r], &raw[t + r..]) {
        return None;
    }
    let secs = u32::from_be_bytes(raw[..t].try_into().ok()?);
    Some(Timestamp::from_secs(u64::from(secs)))
}

/// The longest nonce accepted.
pub const MAX_NONCE_LEN: usize = 64;

/// A fresh challenge: 16 random bytes in lowercase hex.
pub fn challenge(rng: &mut impl rand::Rng) -> String {
    let bytes: [u8; 16] = rng.random();
    crate::fingerprint::common::hex(&bytes)
}

/// Whether `nonce` solves `challenge` at difficulty `bits`.
///
/// Empty nonces, nonces over [`MAX_NONCE_LEN`] bytes and non-ASCII nonces
/// are refused whatever their hash.
pub fn verify(challenge: &str, nonce: &str, bits: u8) -> bool {
    if nonce.is_empty() || nonce.len() > MAX_NONCE_LEN || !nonce.is_ascii() {
        return false;
    }
    let digest = prefix(challenge).chain_update(nonce).finalize();
    leading_zero_bits(&digest) >= u32::from(bits)
}

/// The first decimal nonce that solves `challenge` at difficulty `bits`.
///
/// Takes about `2^bits` hashes; meant for reference clients and tests.
pub fn solve(challenge: &str, bits: u8) -> String {
    let prefix = prefix(challenge);
    let mut n: u64 = 0;
    loop {
        let nonce = n.to_string();
        let digest = prefix.clone().chain_update(&nonce).finalize();
        if leading_zero_bits(&digest) >= u32::from(bits) {
            return nonce;
        }
        n += 1;
    }
}

/// The number of zero bits before the first one bit, most significant bit
/// of the first byte first.
pub fn leading_zero_bits(bytes: &[u8]) -> u32 {
    let mut count = 0;
    for &b in bytes {
        count += b.leading_zeros();
        if b != 0 {
            break;
        }
    }
    count
}

/// A hasher that has already absorbed `challenge ":"`.
fn prefix(challenge: &str) -> Sha256 {
    Sha256::new().chain_update(challenge).chain_update(b":")
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    fn a_challenge() -> String {
        challenge(&mut StdRng::seed_from_u64(1))
    }

    #[test]
    fn challenge_is_32_lowercase_hex_digits() {
        let c = a_challenge();
        assert_eq!(c.len(), 32);
        assert!(c.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')));
        assert_ne!(c, challenge(&mut StdRng::seed_from_u64(2)));
    }

    #[test]
    fn solutions_verify_for_every_difficulty_up_to_16_bits() {
        let c = a_challenge();
        for bits in 0..=16 {
            let nonce = solve(&c, bits);
            assert!(verify(&c, &nonce, bits), "bits {bits}");
        }
    }

    #[test]
    fn wrong_nonce_or_challenge_fails() {
        let c = a_challenge();
        let nonce = solve(&c, 16);
        // `solve` returns the smallest solution, so every smaller nonce fails.
        let n: u64 = nonce.parse().expect("decimal nonce");
        assert!(n > 0, "seeded challenge needs more than one try");
        assert!(!verify(&c, &(n - 1).to_string(), 16));
        assert!(!verify(&c, "not-a-solution", 16));
        let other = challenge(&mut StdRng::seed_from_u64(2));
        assert!(!verify(&other, &nonce, 16));
    }

    #[test]
    fn format_is_sha256_of_challenge_colon_nonce() {
        let c = "00112233445566778899aabbccddeeff";
        let nonce = solve(c, 8);
        let digest = Sha256::digest(format!("{c}:{nonce}").as_bytes());
        assert!(digest[0] == 0);
    }

    #[test]
    fn bad_nonces_are_refused() {
        let c = a_challenge();
        assert!(!verify(&c, "", 0));
        assert!(!verify(&c, &"1".repeat(MAX_NONCE_LEN + 1), 0));
        assert!(!verify(&c, "ünïcode", 0));
        assert!(verify(&c, &"1".repeat(MAX_NONCE_LEN), 0));
    }

    #[test]
    fn impossible_difficulty_is_refused() {
        assert!(!verify(&a_challenge(), "0", 255));
    }

    proptest::proptest! {
        /// A sealed challenge is wire-format hex, reads back its issue
        /// second under its own key and kind only, and any one-character
        /// edit makes it unreadable.
        #[test]
        fn sealed_challenges_read_back_only_as_sealed(
            secs in 0u64..u64::from(u32::MAX),
            seed: u64,
            at in 0usize..32,
            digit in 0u8..16,
        ) {
            let key = CsrfKey::from_bytes([7; 32]);
            let now = Timestamp::from_secs(secs);
            let c = seal(&key, ChallengeKind::Login, now, &mut StdRng::seed_from_u64(seed));
            proptest::prop_assert_eq!(c.len(), 32);
            proptest::prop_assert!(c.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')));
            proptest::prop_assert_eq!(issued(&key, ChallengeKind::Login, &c), Some(now));
            proptest::prop_assert_eq!(issued(&key, ChallengeKind::Page, &c), None);
            let other = CsrfKey::from_bytes([8; 32]);
            proptest::prop_assert_eq!(issued(&other, ChallengeKind::Login, &c), None);
            let mut edited = c.clone().into_bytes();
            let new = b"0123456789abcdef"[usize::from(digit)];
            proptest::prop_assume!(edited[at] != new);
            edited[at] = new;
            let edited = String::from_utf8(edited).expect("hex");
            proptest::prop_assert_eq!(issued(&key, ChallengeKind::Login, &edited), None);
        }
    }

    #[test]
    fn counts_leading_zero_bits() {
        assert_eq!(leading_zero_bits(&[]), 0);
        assert_eq!(leading_zero_bits(&[0x80]), 0);
        assert_eq!(leading_zero_bits(&[0x01]), 7);
        assert_eq!(leading_zero_bits(&[0x00, 0x10]), 11);
        assert_eq!(leading_zero_bits(&[0x00, 0x00]), 16);
    }
}
