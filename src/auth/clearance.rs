//! The clearance cookie: proof that a client solved the JavaScript challenge, bound to its address, User-Agent and TLS stack, with a TTL.
//!
//! Like Cloudflare's `cf_clearance`, it answers later challenges for as
//! long as it lives, but only for the client that earned it: the address
//! it solved from, the User-Agent it sent and the stable JA4 of its TLS
//! stack (none over plain HTTP). Presented by anything else, it is a drift
//! like any other (`CLEARANCE_DRIFT`).
//!
//! The cookie is the claim as JSON in unpadded base64url, then `.` and an
//! HMAC tag under the target's key ([`crate::auth::csrf::CsrfKey::seal`]).

use std::net::IpAddr;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::auth::csrf::CsrfKey;
use crate::clock::Timestamp;
use crate::context::RequestContext;

/// The cookie's name.
pub const COOKIE: &str = "sr_clearance";
/// Where the challenge's answer is posted.
pub const VERIFY_ROUTE: &str = "/_sr/challenge";

/// Who solved a challenge, as far as the target can tell.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Solver {
    /// The page's own script: it sent its marker and the browser's
    /// signals, whose User-Agent is the request's.
    Page,
    /// Anything else: a client that computed the answer itself.
    Client,
}

impl Solver {
    /// `page` or `client`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Page => "page",
            Self::Client => "client",
        }
    }
}

/// What a clearance is bound to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Clearance {
    /// The address it was solved from.
    pub ip: Option<IpAddr>,
    /// The first 16 hex digits of the SHA-256 of the solver's User-Agent.
    pub ua: String,
    /// The stable JA4 of the solver's TLS stack, if it came over TLS.
    pub ja4: Option<String>,
    /// When it stops answering challenges.
    pub expires: Timestamp,
    /// Who solved it.
    pub via: Solver,
}

/// The digest of a User-Agent a clearance keeps.
pub fn ua_digest(ua: Option<&str>) -> String {
    let digest = Sha256::digest(ua.unwrap_or("").as_bytes());
    crate::fingerprint::common::hex(&digest[..8])
}

/// How a clearance stands against a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Standing {
    /// It was earned by this client and still lives: challenges pass.
    Valid,
    /// Its TTL ran out: it counts for nothing.
    Expired,
    /// It was earned from another address, User-Agent or TLS stack.
    Drifted(&'static str),
}

impl Clearance {
    /// The clearance `ctx`'s client earns at `now` for `ttl`.
    pub fn earn(
        ctx: &RequestContext,
        now: Timestamp,
        ttl: std::time::Duration,
        via: Solver,
    ) -> Self {
        Self {
            ip: ctx.ip,
            ua: ua_digest(ctx.user_agent.as_deref()),
            ja4: ctx.ja4_stable.clone(),
            expires: now.plus(ttl),
            via,
        }
    }

    /// How it stands for a request of `ctx` at `now`: what drifted first
    /// (`address`, `user_agent`, `tls_stack`), else whether it lives.
    pub fn standing(&self, ctx: &RequestContext, now: Timestamp) -> Standing {
        if now >= self.expires {
            return Standing::Expired;
        }
        if self.ip != ctx.ip {
            return Standing::Drifted("address");
        }
        if self.ua != ua_digest(ctx.user_agent.as_deref()) {
            return Standing::Drifted("user_agent");
        }
        if self.ja4 != ctx.ja4_stable {
            return Standing::Drifted("tls_stack");
        }
        Standing::Valid
    }

    /// The cookie's value, sealed under `key`.
    pub fn seal(&self, key: &CsrfKey) -> String {
        let json = serde_json::to_string(self).unwrap_or_default();
        key.seal(&URL_SAFE_NO_PAD.encode(json))
    }

    /// The clearance a cookie holds, if `key` sealed it.
    pub fn open(key: &CsrfKey, cookie: &str) -> Option<Self> {
        let payload = key.unseal(cookie)?;
        let json = URL_SAFE_NO_PAD.decode(payload).ok()?;
        serde_json::from_slice(&json).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::network::NetworkInfo;
    use std::time::Duration;

    fn ctx(ip: &str, ua: &str) -> RequestContext {
        RequestContext::from_headers(
            ip.parse().ok(),
            NetworkInfo::unknown(),
            [("user-agent", ua)],
        )
    }

    #[test]
    fn a_clearance_holds_for_its_client_until_it_expires() {
        let t0 = Timestamp::from_secs(1_000);
        let c = Clearance::earn(
            &ctx("127.0.1.20", "Chrome"),
            t0,
            Duration::from_secs(60),
            Solver::Page,
        );
        let at = |s: u64| Timestamp::from_secs(1_000 + s);
        assert_eq!(
            c.standing(&ctx("127.0.1.20", "Chrome"), at(59)),
            Standing::Valid
        );
        assert_eq!(
            c.standing(&ctx("127.0.1.20", "Chrome"), at(60)),
            Standing::Expired
        );
        assert_eq!(
            c.standing(&ctx("127.0.2.20", "Chrome"), at(1)),
            Standing::Drifted("address")
        );
        assert_eq!(
            c.standing(&ctx("127.0.1.20", "curl"), at(1)),
            Standing::Drifted("user_agent")
        );
        let mut tls = ctx("127.0.1.20", "Chrome");
        tls.ja4_stable = Some("t13d".into());
        assert_eq!(c.standing(&tls, at(1)), Standing::Drifted("tls_stack"));
    }

    #[test]
    fn only_a_sealed_clearance_opens() {
        let key = CsrfKey::generate(&mut rand::rng());
        let c = Clearance::earn(
            &ctx("127.0.1.20", "Chrome"),
            Timestamp::from_secs(5),
            Duration::from_secs(9),
            Solver::Client,
        );
        let sealed = c.seal(&key);
        assert_eq!(Clearance::open(&key, &sealed), Some(c.clone()));
        let other = CsrfKey::generate(&mut rand::rng());
        assert_eq!(Clearance::open(&other, &sealed), None);
        // A claim rewritten to another address keeps no valid tag.
        let (payload, tag) = sealed.rsplit_once('.').expect("sealed");
        let mut moved = c;
        moved.ip = "127.0.2.20".parse().ok();
        let forged = format!(
            "{}.{tag}",
            URL_SAFE_NO_PAD.encode(serde_json::to_string(&moved).expect("json"))
        );
        assert_ne!(forged.split_once('.').map(|p| p.0), Some(payload));
        assert_eq!(Clearance::open(&key, &forged), None);
        for garbage in ["", ".", "a.b", "%%%.###"] {
            assert_eq!(Clearance::open(&key, garbage), None);
        }
    }
}
