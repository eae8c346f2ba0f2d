//! Login checks shared by the form and the API: credentials, proof of work, TOTP, companions.

use axum::http::HeaderMap;

use crate::auth::{pow, totp};
use crate::clock::Timestamp;
use crate::engine::Decision;
use crate::session::SessionId;
use crate::site::attempts::{Attempt, LoginRefusal};
use crate::site::client_ip::ClientIp;
use crate::site::guard;
use crate::site::peer::Peer;
use crate::site::respond;
use crate::site::state::TargetState;
use crate::verdict::{Evidence, Reason, Verdict};

/// Seconds a client is told to wait when the session store is full: the
/// target forgets expired sessions once a minute.
pub(crate) const STORE_FULL_RETRY_SECS: u64 = 60;

/// Why a login got no session, and for a limit when to try again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Refused {
    /// The refusal, as traced.
    pub reason: LoginRefusal,
    /// Seconds until a new attempt may succeed (`Retry-After`), for
    /// `LOGIN_VELOCITY_EXCEEDED` and `SESSION_STORE_FULL`.
    pub retry_after: Option<u64>,
}

impl From<LoginRefusal> for Refused {
    fn from(reason: LoginRefusal) -> Self {
        Self {
            reason,
            retry_after: None,
        }
    }
}

/// The code of a `401` JSON answer of the API login, as it always was.
pub(crate) fn api_code(e: LoginRefusal) -> &'static str {
    match e {
        LoginRefusal::PowInvalid => "pow_required",
        LoginRefusal::TotpMissing | LoginRefusal::TotpInvalid => "totp_required",
        _ => "invalid_credentials",
    }
}

/// The message the login form shows above itself.
pub(crate) fn message(e: LoginRefusal) -> &'static str {
    match e {
        LoginRefusal::PowInvalid => "The proof of work is missing or wrong.",
        LoginRefusal::TotpMissing | LoginRefusal::TotpInvalid => {
            "The one-time code is missing or wrong."
        }
        _ => "Wrong username or password.",
    }
}

/// The answer to a login refused for a limit: `503` for a full session
/// store, `429` otherwise, each with `Retry-After: secs`.
pub(crate) fn limited(e: LoginRefusal, secs: u64, wants_json: bool) -> axum::response::Response {
    let unavailable = matches!(
        e,
        LoginRefusal::SessionStoreFull | LoginRefusal::StoreUnavailable
    );
    crate::site::respond::login_limited(e.code(), unavailable, secs, wants_json)
}

/// What a client submits to log in.
#[derive(Clone, Debug, Default, serde::Deserialize)]
pub(crate) struct Credentials {
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
pub(crate) async fn verify(
    st: &TargetState,
    c: &Credentials,
    now: Timestamp,
) -> Result<(), LoginRefusal> {
    // The proof of work first: each guess of a password costs a solved
    // challenge, and a wrong password is not told apart from a missing
    // solution.
    let bits = st.config.login.pow_bits;
    if bits > 0 {
        let (ch, nonce) = (c.pow_challenge.as_deref(), c.pow_nonce.as_deref());
        let Some((ch, n)) = ch.zip(nonce) else {
            return Err(LoginRefusal::PowInvalid);
        };
        let taken = st
            .take_pow(ch, now)
            .await
            .map_err(|_| LoginRefusal::StoreUnavailable)?;
        if !(taken && pow::verify(ch, n, bits)) {
            return Err(LoginRefusal::PowInvalid);
        }
    }
    let account = st
        .config
        .account(&c.username)
        .filter(|a| a.password == c.password);
    let account = account.ok_or(LoginRefusal::BadCredentials)?;
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
pub(crate) fn check_companions(st: &TargetState, headers: &HeaderMap) -> Result<(), LoginRefusal> {
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
pub(crate) fn companions(
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
                let a_year = cookie::time::Duration::days(365);
                let cookie = respond::site_cookie(name.clone(), v.clone()).max_age(a_year);
                fresh.push(respond::set_cookie_value(&cookie.build()));
                set.push((name.clone(), v));
            }
            None => {}
        }
    }
    (set, fresh)
}

/// Who is logging in, for [`complete`].
#[derive(Debug)]
pub(crate) struct NewSession<'a> {
    /// The transport peer.
    pub peer: &'a Peer,
    /// The client as the target sees it.
    pub who: &'a ClientIp,
    /// The login request's headers.
    pub headers: &'a HeaderMap,
    /// When the login request arrived, before any login delay.
    pub arrived: Timestamp,
}

/// What both logins share once their own checks passed: the login
/// velocity rules, credentials and login steps, then a session from the
/// engine, with the decisions and the attempt traced and the login flow
/// ended. Returns the session and the `Set-Cookie` values of companion
/// cookies minted for it (only when `mint`).
pub(crate) async fn complete(
    attempt: &Attempt<'_>,
    new: &NewSession<'_>,
    creds: &Credentials,
    mint: bool,
    now: Timestamp,
) -> Result<(SessionId, Vec<String>), Refused> {
    let st = attempt.state();
    let user = creds.username.as_str();
    let sid = st.new_session_id();
    let ctx = std::sync::Arc::new(guard::context(
        st,
        new.who,
        new.peer.tls.as_deref(),
        new.headers,
    ));
    let mut checked = admit(st, sid, user, &ctx, now).await;
    if checked.is_ok() {
        checked = verify(st, creds, now).await.map_err(Refused::from);
    }
    if let Err(e) = checked {
        st.metrics.login(false);
        attempt.refused(Some(user), e.reason);
        return Err(e);
    }
    let (companions, fresh) = self::companions(st, new.headers, mint);
    let d = match st.login(sid, user, ctx, companions, now).await {
        Ok(d) => d,
        Err(_) => {
            attempt.refused(Some(user), LoginRefusal::StoreUnavailable);
            return Err(unavailable());
        }
    };
    st.trace.record(&d);
    st.metrics.login(d.verdict == Verdict::Allow);
    if let Some(e) = login_refusal(d.verdict) {
        attempt.refused(Some(user), e.reason);
        return Err(e);
    }
    let tokens = [creds.csrf.as_deref(), creds.pow_challenge.as_deref()];
    st.login_flow_done(&tokens, new.arrived, sid, now);
    attempt.ok(user, sid);
    Ok((sid, fresh))
}

/// Asks the engine's login velocity rules about this attempt and traces
/// the decision. The account counts only when it is one of the scenario's.
async fn admit(
    st: &TargetState,
    sid: SessionId,
    user: &str,
    ctx: &std::sync::Arc<crate::context::RequestContext>,
    now: Timestamp,
) -> Result<(), Refused> {
    let known = st.config.account(user).map(|a| a.username.as_str());
    let d = st
        .admit_login(sid, known, ctx.clone(), now)
        .await
        .map_err(|_| unavailable())?;
    st.trace.record(&d);
    if d.verdict == Verdict::Allow {
        return Ok(());
    }
    Err(Refused {
        reason: LoginRefusal::LoginVelocityExceeded,
        retry_after: Some(retry_after(&d)),
    })
}

/// The refusal of a login that the shared store could not judge.
fn unavailable() -> Refused {
    Refused {
        reason: LoginRefusal::StoreUnavailable,
        retry_after: Some(1),
    }
}

/// The longest wait any fired limit asks for, in whole seconds (1 at least).
fn retry_after(d: &Decision) -> u64 {
    let waits = d.fired.iter().filter_map(|f| match f.evidence {
        Evidence::Rate { retry_after_ms, .. } => Some(retry_after_ms),
        _ => None,
    });
    waits.max().unwrap_or(0).div_ceil(1000).max(1)
}

/// The refusal of a login the engine did not allow.
fn login_refusal(v: Verdict) -> Option<Refused> {
    match v {
        Verdict::Allow => None,
        Verdict::Challenge(Reason::SessionStoreFull) => Some(Refused {
            reason: LoginRefusal::SessionStoreFull,
            retry_after: Some(STORE_FULL_RETRY_SECS),
        }),
        _ => Some(LoginRefusal::AccountBanned.into()),
    }
}
