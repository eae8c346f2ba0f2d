//! Credentials of the mock login target: the token logic behind its forms and API.
//!
//! Everything here is functional core: no I/O, no clock, no global
//! randomness. Functions that need the time take `now`; functions that need
//! random bytes take an `&mut impl rand::Rng` (the shell passes
//! `rand::rng()`, tests a seeded `StdRng`).
//!
//! How the target uses the pieces:
//!
//! 1. **Login form.** The form page sets a [`csrf`] token in a cookie and in
//!    a hidden field; the `POST` must carry both, equal and signed by the
//!    run's [`csrf::CsrfKey`] (signed double-submit).
//! 2. **Optional steps.** A scenario can demand a proof of work (the
//!    tunable-cost CAPTCHA stand-in, [`pow`]) and a second factor ([`totp`],
//!    RFC 6238) before the password is accepted.
//! 3. **API login.** A successful login creates an engine session and
//!    returns a short-lived HS256 access token ([`jwt`]) plus an opaque
//!    refresh token whose family is bound to that session ([`refresh`]).
//!    A bad access token gets RFC 6750's
//!    `401 WWW-Authenticate: Bearer error="invalid_token"`.
//! 4. **Refresh.** Each refresh rotates the refresh token. Presenting an
//!    already rotated token outside the overlap window is reuse: the family
//!    is revoked and the shell revokes the session with
//!    `REFRESH_TOKEN_REUSE`, as Auth0 does.
//! 5. **Revocation.** The RFC 7009 endpoint revokes a token's whole family
//!    and answers 200 even for unknown tokens.
//!
//! Signing keys are generated per run; [`jwt::JwtKeys::rotate`] simulates a
//! "rotate the signing key" event that invalidates every access token.

pub mod clearance;
pub mod csrf;
pub mod jwt;
pub mod pow;
pub mod refresh;
pub mod sensor;
pub mod totp;
