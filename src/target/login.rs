//! Login checks shared by the form and the API: credentials, proof of work, TOTP, companions.

use axum::http::HeaderMap;

use crate::auth::{pow, totp};
use crate::clock::Timestamp;
use crate::target::guard;
use crate::target::state::TargetState;

/// Why a login was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LoginError {
    /// Unknown user or wrong password.
    Credentials,
    /// The proof-of-work step is on and no valid solution came.
    ProofOfWork,
    /// The TOTP step is on and no valid code came.
    Totp,
}

impl LoginError {
    /// A stable code for JSON answers.
    pub fn code(self) -> &'static str {
        match self {
            Self::Credentials => "invalid_credentials",
            Self::ProofOfWork => "pow_required",
            Self::Totp => "totp_required",
        }
    }

    /// A message for the login form.
    pub fn message(self) -> &'static str {
        match self {
            Self::Credentials => "Wrong username or password.",
            Self::ProofOfWork => "The proof of work is missing or wrong.",
            Self::Totp => "The one-time code is missing or wrong.",
        }
    }
}

/// What a client submits to log in.
#[derive(Clone, Debug, Default, serde::Deserialize)]
pub struct Credentials {
    /// Login name.
    #[serde(default)]
    pub username: String,
    /// Password.
    #[serde(default)]
    pub password: String,
    /// One-time code, when the TOTP step is on.
    #[serde(default)]
    pub totp: Option<String>,
    /// The proof-of-work challenge the target issued.
    #[serde(default)]
    pub pow_challenge: Option<String>,
    /// The client's solution.
    #[serde(default)]
    pub pow_nonce: Option<String>,
    /// The CSRF token (form login only).
    #[serde(default)]
    pub csrf: Option<String>,
}

/// Checks credentials and every configured login step.
pub fn verify(st: &TargetState, c: &Credentials, now: Timestamp) -> Result<(), LoginError> {
    let account = st
        .config
        .account(&c.username)
        .filter(|a| a.password == c.password);
    let account = account.ok_or(LoginError::Credentials)?;
    let bits = st.config.login.pow_bits;
    if bits > 0 {
        let (ch, nonce) = (c.pow_challenge.as_deref(), c.pow_nonce.as_deref());
        let solved = ch
            .zip(nonce)
            .is_some_and(|(ch, n)| st.take_pow(ch, now) && pow::verify(ch, n, bits));
        if !solved {
            return Err(LoginError::ProofOfWork);
        }
    }
    if let (true, Some(secret)) = (st.config.login.totp, account.totp_secret.as_deref()) {
        let code = c.totp.as_deref().unwrap_or_default();
        if !totp::verify(secret, code, now) {
            return Err(LoginError::Totp);
        }
    }
    Ok(())
}

/// The companion cookies for a login: the genuine ones the client brought
/// back, and fresh ones for the rest when `mint` is true. Returns the full
/// set and the `Set-Cookie` values for the fresh ones.
pub fn companions(
    st: &TargetState,
    headers: &HeaderMap,
    mint: bool,
) -> (Vec<(String, String)>, Vec<String>) {
    let (mut set, mut fresh) = (Vec::new(), Vec::new());
    for name in &st.config.companions.names {
        match guard::cookie(headers, name).filter(|v| st.companion_key.verify(v, v)) {
            Some(v) => set.push((name.clone(), v.to_owned())),
            None if mint => {
                let v = st.companion_key.issue(&mut rand::rng());
                fresh.push(format!(
                    "{name}={v}; Path=/; Max-Age=31536000; SameSite=Lax"
                ));
                set.push((name.clone(), v));
            }
            None => {}
        }
    }
    (set, fresh)
}
