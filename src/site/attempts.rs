//! Tracing login attempts, refresh exchanges and requests refused before the engine decides.
//!
//! Decisions say why a session died; these lines say why a client never
//! got one, or why a request never reached the engine: every login
//! attempt (form and API) with its outcome, and every request refused
//! for missing credentials, a bad bearer token, direct access or a
//! banned exit. With them the grade can name the cause of every lost
//! record.

use std::borrow::Cow;
use std::net::IpAddr;

use crate::session::SessionId;
use crate::site::state::TargetState;
pub(crate) use crate::trace::records::{
    AttemptOutcome, LOGIN_ATTEMPT, LoginAttempt, LoginRefusal, LoginVia, REFUSED, RefreshOutcome,
    RefusalReason, RefusedRequest, TOKEN_REFRESH, TokenRefresh,
};

/// Traces the login attempts of one request: built once the client's
/// address is known, then told how the attempt ended.
#[derive(Debug)]
pub(crate) struct Attempt<'a> {
    st: &'a TargetState,
    via: LoginVia,
    ip: IpAddr,
}

impl<'a> Attempt<'a> {
    /// An attempt through `via` from `ip`.
    pub(crate) fn new(st: &'a TargetState, via: LoginVia, ip: IpAddr) -> Self {
        Self { st, via, ip }
    }

    /// The target's state.
    pub(crate) fn state(&self) -> &'a TargetState {
        self.st
    }

    /// Traces a refusal; `username` is what the client sent, if anything.
    pub(crate) fn refused(&self, username: Option<&str>, reason: LoginRefusal) {
        self.write(username, AttemptOutcome::Refused, Some(reason), None);
    }

    /// Traces a success with the session issued.
    pub(crate) fn ok(&self, username: &str, session: SessionId) {
        self.write(Some(username), AttemptOutcome::Ok, None, Some(session));
    }

    fn write(
        &self,
        username: Option<&str>,
        outcome: AttemptOutcome,
        reason: Option<LoginRefusal>,
        session: Option<SessionId>,
    ) {
        let account = username
            .filter(|u| self.st.config.account(u).is_some())
            .map(str::to_owned);
        self.st.trace.record_value(&LoginAttempt {
            kind: Cow::Borrowed(LOGIN_ATTEMPT),
            at: self.st.clock.now(),
            via: self.via,
            account,
            ip: self.ip,
            outcome,
            reason,
            session,
        });
    }
}

/// Traces a request to `route` from `ip` refused for `reason`.
pub(crate) fn refused(
    st: &TargetState,
    route: Cow<'static, str>,
    ip: IpAddr,
    reason: RefusalReason,
) {
    st.trace.record_value(&RefusedRequest {
        kind: Cow::Borrowed(REFUSED),
        at: st.clock.now(),
        route,
        ip,
        reason,
    });
}

/// Traces a refresh of `session`'s token that ended with `outcome`.
pub(crate) fn refreshed(st: &TargetState, session: Option<SessionId>, outcome: RefreshOutcome) {
    st.trace.record_value(&TokenRefresh {
        kind: Cow::Borrowed(TOKEN_REFRESH),
        at: st.clock.now(),
        session,
        outcome,
    });
}
