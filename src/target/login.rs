//! Login checks shared by the form and the API: credentials, proof of work, TOTP, companions.

use axum::http::HeaderMap;

use crate::auth::{pow, totp};
use crate::clock::Timestamp;
use crate::session::SessionId;
use crate::target::attempts::{Attempt, LoginRefusal};
use crate::target::client_ip::ClientIp;
use crate::target::guard;
use crate::target::peer::Peer;
use crate::target::state::TargetState;
use crate::verdict::Verdict;

/// The code of a `401` JSON answer of the API login, as it always was.
pub fn api_code(e: LoginRefusal) -> &'static str {
    match e {
        LoginRefusal::PowInvalid => "pow_required",
        LoginRefusal::TotpMissing | LoginRefusal::TotpInvalid => "totp_required",
        _ => "invalid_credentials",
    }
}

/// The message the login form shows above itself.
pub fn message(e: LoginRefusal) -> &'static str {
    match e {
        LoginRefusal::PowInvalid => "The proof of work is missing or wrong.",
        LoginRefusal::TotpMissing | LoginRefusal::TotpInvalid => {
            "The one-time code is missing or wrong."
        }
        _ => "Wrong username or password.",
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
pub fn verify(st: &TargetState, c: &Credentials, now: Timestamp) -> Result<(), LoginRefusal> {
    let account = st
        .config
        .account(&c.username)
        .filter(|a| a.password == c.password);
    let account = account.ok_or(LoginRefusal::BadCredentials)?;
    let bits = st.config.login.pow_bits;
    if bits > 0 {
        let (ch, nonce) = (c.pow_challenge.as_deref(), c.pow_nonce.as_deref());
        let solved = ch
            .zip(nonce)
            .is_some_and(|(ch, n)| st.take_pow(ch, now) && pow::verify(ch, n, bits));
        if !solved {
            return Err(LoginRefusal::PowInvalid);
        }
    }
    if let (true, Some(secret)) = (st.config.login.totp, account.totp_secret.as_deref()) {
        let code = c.totp.as_deref().filter(|c| !c.is_empty());
        let code = code.ok_or(LoginRefusal::TotpMissing)?;
        if !totp::verify(secret, code, now) {
            return Err(LoginRefusal::TotpInvalid);
        }
    }
    Ok(())
}

/// With `[target.companions] at_login`, a login must bring back every
/// companion cookie the landing page set, as it set it.
pub fn check_companions(st: &TargetState, headers: &HeaderMap) -> Result<(), LoginRefusal> {
    if !st.config.companions.at_login {
        return Ok(());
    }
    for name in &st.config.companions.names {
        match guard::cookie(headers, name) {
            None => return Err(LoginRefusal::CompanionCookieMissing),
            Some(v) if !st.companion_key.verify(v, v) => {
                return Err(LoginRefusal::CompanionCookieAltered);
            }
            Some(_) => {}
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

/// Who is logging in, for [`complete`].
#[derive(Debug)]
pub struct NewSession<'a> {
    /// The transport peer.
    pub peer: &'a Peer,
    /// The client as the target sees it.
    pub who: &'a ClientIp,
    /// The login request's headers.
    pub headers: &'a HeaderMap,
    /// When the login request arrived, before any login delay.
    pub arrived: Timestamp,
}

/// What both logins share once their own checks passed: credentials and
/// login steps, then a session from the engine, with the decision and the
/// attempt traced and the login flow ended. Returns the session and the
/// `Set-Cookie` values of companion cookies minted for it (only when
/// `mint`); `Err(AccountBanned)` when the engine refused the account.
pub fn complete(
    attempt: &Attempt<'_>,
    new: &NewSession<'_>,
    creds: &Credentials,
    mint: bool,
    now: Timestamp,
) -> Result<(SessionId, Vec<String>), LoginRefusal> {
    let st = attempt.state();
    let user = creds.username.as_str();
    if let Err(e) = verify(st, creds, now) {
        st.metrics.login(false);
        attempt.refused(Some(user), e);
        return Err(e);
    }
    let (companions, fresh) = self::companions(st, new.headers, mint);
    let sid = st.new_session_id();
    let ctx = guard::context(st, new.who, new.peer.tls.as_deref(), new.headers);
    let d = st.engine.login(sid, user, ctx, companions, now);
    st.trace.record(&d);
    st.metrics.login(d.verdict == Verdict::Allow);
    if d.verdict != Verdict::Allow {
        attempt.refused(Some(user), LoginRefusal::AccountBanned);
        return Err(LoginRefusal::AccountBanned);
    }
    let tokens = [creds.csrf.as_deref(), creds.pow_challenge.as_deref()];
    st.login_flow_done(&tokens, new.arrived, sid, now);
    attempt.ok(user, sid);
    Ok((sid, fresh))
}
