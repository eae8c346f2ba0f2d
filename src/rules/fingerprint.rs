//! Fingerprint mutation and companion cookies: is this still the client that logged in?

use std::sync::Arc;

use crate::config::{CompanionConfig, FingerprintConfig};
use crate::context::{RequestContext, header_order_conflicts};
use crate::session::Session;
use crate::verdict::{Action, Evidence, Firing, Reason, RuleName};

use super::fire;

/// Compares one optional string with its birth value. Absent on both sides
/// is no drift; present on one side only is.
fn text(
    rule: RuleName,
    reason: Reason,
    action: Action,
    birth: &Option<Arc<str>>,
    live: &Option<String>,
) -> Option<Firing> {
    if action == Action::Off || birth.as_deref() == live.as_deref() {
        return None;
    }
    let evidence = Evidence::Text {
        birth: birth.clone(),
        live: live.clone(),
    };
    fire(rule, reason, action, evidence)
}

/// Every fingerprint check, in precedence order: User-Agent, JA4, JA3,
/// HTTP fingerprint, header order, Accept-Language.
pub(crate) fn check_all(
    cfg: &FingerprintConfig,
    s: &Session,
    ctx: &RequestContext,
    fired: &mut Vec<Firing>,
) {
    let b = &s.birth;
    let tls = Reason::TlsFingerprintDrift;
    fired.extend(text(
        RuleName::UserAgent,
        Reason::UserAgentDrift,
        cfg.user_agent,
        &b.user_agent,
        &ctx.user_agent,
    ));
    let (birth_ja4, live_ja4) = ja4_pair(s, ctx);
    fired.extend(text(RuleName::Ja4, tls, cfg.ja4, birth_ja4, live_ja4));
    fired.extend(text(RuleName::Ja3, tls, cfg.ja3, &b.ja3, &ctx.ja3));
    fired.extend(http(cfg.http, s, ctx));
    fired.extend(header_order(cfg.header_order, s, ctx));
    let al = Reason::AcceptLanguageDrift;
    fired.extend(text(
        RuleName::AcceptLanguage,
        al,
        cfg.accept_language,
        &b.accept_language,
        &ctx.accept_language,
    ));
}

/// The JA4 values the `ja4` rule compares: the stable JA4 at birth and
/// now when both contexts have one, else the plain JA4 (traces written
/// before contexts carried a stable JA4, and contexts built without it).
/// Comparing a stable JA4 with a plain one would be drift by construction.
fn ja4_pair<'a>(
    s: &'a Session,
    ctx: &'a RequestContext,
) -> (&'a Option<Arc<str>>, &'a Option<String>) {
    let b = &s.birth;
    if b.ja4_stable.is_some() && ctx.ja4_stable.is_some() {
        (&b.ja4_stable, &ctx.ja4_stable)
    } else {
        (&b.ja4, &ctx.ja4)
    }
}

fn http(action: Action, s: &Session, ctx: &RequestContext) -> Option<Firing> {
    if action == Action::Off || *s.birth.http_fingerprint == *ctx.http_fingerprint {
        return None;
    }
    let evidence = Evidence::Text {
        birth: Some(s.birth.http_fingerprint.clone()),
        live: Some(ctx.http_fingerprint.clone()),
    };
    fire(
        RuleName::HttpFingerprint,
        Reason::HttpFingerprintDrift,
        action,
        evidence,
    )
}

fn header_order(action: Action, s: &Session, ctx: &RequestContext) -> Option<Firing> {
    if action == Action::Off || !header_order_conflicts(&s.birth.header_order, &ctx.header_order) {
        return None;
    }
    let evidence = Evidence::Text {
        birth: Some(s.birth.header_order.clone()),
        live: Some(ctx.header_order.join(",")),
    };
    fire(
        RuleName::HeaderOrder,
        Reason::HeaderOrderDrift,
        action,
        evidence,
    )
}

/// Companion cookies: each one set at birth must come back unchanged.
/// Reports the first missing or altered cookie.
pub(crate) fn companions(
    cfg: &CompanionConfig,
    s: &Session,
    ctx: &RequestContext,
    fired: &mut Vec<Firing>,
) {
    let Some(m) = s.birth.companions.first_mismatch(|name| ctx.cookie(name)) else {
        return;
    };
    let (reason, action) = match m.got {
        Some(_) => (Reason::CompanionCookieAltered, cfg.altered),
        None => (Reason::CompanionCookieMissing, cfg.missing),
    };
    let evidence = Evidence::Cookie {
        name: m.name.to_owned(),
        expected: m.expected.to_owned(),
        got: m.got.map(str::to_owned),
    };
    fired.extend(fire(RuleName::CompanionCookies, reason, action, evidence));
}
