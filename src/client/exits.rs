//! Where a session's requests leave from: a static proxy, a sticky gateway session, or direct.
//!
//! A session is pinned to one exit for its whole life, because the target
//! binds a session to the network it was born on. New sessions take static
//! proxies round-robin, skipping the exit the previous session died on;
//! when every static proxy is dead they fall back to the rotating gateway
//! with a fresh sticky id each; with no proxy at all they go direct.

use anyhow::Context as _;
use rand::Rng as _;
use reqwest::Url;

/// Failures in a row after which the gateway is given up on.
const GATEWAY_STRIKES: u32 = 4;

/// Which exit a session uses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum ExitId {
    /// The static proxy at this index of `SESSIONRANGE_PROXIES`.
    Static(usize),
    /// The gateway with this sticky id.
    Sticky(String),
    /// No proxy.
    Direct,
}

/// One exit: its id and the proxy URL to send through, credentials included.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Exit {
    /// Which exit.
    pub(crate) id: ExitId,
    /// The proxy URL; `None` for direct.
    pub(crate) proxy: Option<String>,
    /// The CA (PEM) to trust for an `https` target (`SESSIONRANGE_CA_CERT`).
    pub(crate) ca: Option<std::sync::Arc<[u8]>>,
}

impl Exit {
    /// A name for logs and the summary, without credentials.
    pub(crate) fn label(&self) -> String {
        let host = self
            .proxy
            .as_deref()
            .and_then(|p| Url::parse(p).ok())
            .map(|u| format!("{}:{}", u.host_str().unwrap_or("?"), u.port().unwrap_or(80)))
            .unwrap_or_default();
        match &self.id {
            ExitId::Static(i) => format!("proxy #{i} ({host})"),
            ExitId::Sticky(id) => format!("gateway session {id} ({host})"),
            ExitId::Direct => "direct".to_owned(),
        }
    }
}

/// Every exit the client may use, and which are dead.
#[derive(Debug)]
pub(crate) struct ExitBook {
    statics: Vec<Url>,
    dead: Vec<bool>,
    cursor: usize,
    gateway: Option<Url>,
    strikes: u32,
    sticky_seq: u64,
    ca: Option<std::sync::Arc<[u8]>>,
}

impl ExitBook {
    /// The exits of `SESSIONRANGE_PROXIES` and `SESSIONRANGE_GATEWAY`.
    pub(crate) fn new(
        proxies: &[String],
        gateway: Option<&str>,
        ca: Option<std::sync::Arc<[u8]>>,
    ) -> anyhow::Result<Self> {
        let parse = |s: &str| Url::parse(s).with_context(|| format!("bad proxy URL {s:?}"));
        let statics = proxies
            .iter()
            .map(|p| parse(p))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let gateway = gateway.map(parse).transpose()?;
        Ok(Self {
            dead: vec![false; statics.len()],
            statics,
            cursor: 0,
            gateway,
            strikes: 0,
            sticky_seq: 0,
            ca,
        })
    }

    /// An exit for a new session: the next live static proxy other than
    /// `avoid` when there is one, else a fresh gateway sticky session, else
    /// direct when no proxy was given. `None` when every exit is dead.
    pub(crate) fn fresh(&mut self, avoid: Option<&ExitId>) -> Option<Exit> {
        let n = self.statics.len();
        let live: Vec<usize> = (0..n)
            .map(|k| (self.cursor + k) % n)
            .filter(|&i| !self.dead[i])
            .collect();
        let pick = live
            .iter()
            .find(|&&i| avoid != Some(&ExitId::Static(i)))
            .or(live.first());
        if let Some(&i) = pick {
            self.cursor = (i + 1) % n;
            return Some(self.static_exit(i));
        }
        if self.gateway.is_some() {
            return self.sticky();
        }
        (n == 0).then_some(Exit {
            id: ExitId::Direct,
            proxy: None,
            ca: self.ca.clone(),
        })
    }

    /// The exit `id` again while it lives, else a fresh one.
    pub(crate) fn again(&mut self, id: &ExitId) -> Option<Exit> {
        match id {
            ExitId::Static(i) if !self.dead[*i] => Some(self.static_exit(*i)),
            ExitId::Sticky(s) if self.gateway_alive() => Some(self.sticky_exit(s)),
            _ => self.fresh(None),
        }
    }

    /// Up to `n` distinct exits, for the bugs that spread one session.
    pub(crate) fn several(&mut self, n: usize) -> Vec<Exit> {
        let mut out: Vec<Exit> = Vec::new();
        for _ in 0..n.max(1) {
            let avoid = out.last().map(|e| e.id.clone());
            match self.fresh(avoid.as_ref()) {
                Some(e) if !out.contains(&e) => out.push(e),
                _ => break,
            }
        }
        out
    }

    /// Records that `id` failed: a dead proxy, a proxy error or a banned
    /// address. A static proxy is never used again; the gateway is given
    /// up after several failures in a row.
    pub(crate) fn failed(&mut self, id: &ExitId) {
        match id {
            ExitId::Static(i) => self.dead[*i] = true,
            ExitId::Sticky(_) => self.strikes += 1,
            ExitId::Direct => {}
        }
    }

    /// Records that `id` served a request.
    pub(crate) fn worked(&mut self, id: &ExitId) {
        if matches!(id, ExitId::Sticky(_)) {
            self.strikes = 0;
        }
    }

    /// The dead exits, for the summary.
    pub(crate) fn dead_labels(&self) -> Vec<String> {
        let mut out: Vec<String> = (0..self.statics.len())
            .filter(|&i| self.dead[i])
            .map(|i| self.static_exit(i).label())
            .collect();
        if self.gateway.is_some() && !self.gateway_alive() {
            out.push("gateway".to_owned());
        }
        out
    }

    fn gateway_alive(&self) -> bool {
        self.strikes < GATEWAY_STRIKES
    }

    fn static_exit(&self, i: usize) -> Exit {
        Exit {
            id: ExitId::Static(i),
            proxy: Some(self.statics[i].to_string()),
            ca: self.ca.clone(),
        }
    }

    fn sticky(&mut self) -> Option<Exit> {
        if !self.gateway_alive() {
            return None;
        }
        self.sticky_seq += 1;
        let tag: u32 = rand::rng().random();
        let id = format!("c{}-{tag:08x}", self.sticky_seq);
        Some(self.sticky_exit(&id))
    }

    fn sticky_exit(&self, id: &str) -> Exit {
        let proxy = self.gateway.as_ref().map(|g| sticky_url(g, id));
        Exit {
            id: ExitId::Sticky(id.to_owned()),
            proxy,
            ca: self.ca.clone(),
        }
    }
}

/// The gateway URL asking for sticky session `id`: `user-session-<id>` as
/// the username, or `session-<id>` when the gateway has no username.
fn sticky_url(gateway: &Url, id: &str) -> String {
    let mut url = gateway.clone();
    let user = match gateway.username() {
        "" => format!("session-{id}"),
        u => format!("{u}-session-{id}"),
    };
    // An http URL always takes a username.
    let _ = url.set_username(&user);
    url.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn book(statics: usize, gateway: bool) -> ExitBook {
        let proxies: Vec<String> = (0..statics)
            .map(|i| format!("http://u:p@127.0.0.1:{}", 1000 + i))
            .collect();
        let gw = gateway.then_some("http://scraper:hunter2@127.0.0.1:2000");
        ExitBook::new(&proxies, gw, None).expect("valid URLs")
    }

    #[test]
    fn statics_go_round_robin_and_skip_the_exit_to_avoid() {
        let mut b = book(3, false);
        let ids: Vec<ExitId> = (0..4).filter_map(|_| b.fresh(None)).map(|e| e.id).collect();
        assert_eq!(
            ids,
            [0, 1, 2, 0].map(ExitId::Static).to_vec(),
            "round robin"
        );
        // The cursor is at 1; avoiding 1 gives 2.
        let next = b.fresh(Some(&ExitId::Static(1))).expect("an exit");
        assert_eq!(next.id, ExitId::Static(2));
    }

    #[test]
    fn dead_statics_fall_back_to_sticky_gateway_sessions() {
        let mut b = book(2, true);
        b.failed(&ExitId::Static(0));
        assert_eq!(
            b.fresh(Some(&ExitId::Static(1))).map(|e| e.id),
            Some(ExitId::Static(1))
        );
        b.failed(&ExitId::Static(1));
        let a = b.fresh(None).expect("the gateway");
        let c = b.fresh(None).expect("the gateway");
        let (ExitId::Sticky(x), ExitId::Sticky(y)) = (&a.id, &c.id) else {
            panic!("sticky exits: {a:?} {c:?}");
        };
        assert_ne!(x, y, "a fresh sticky id per session");
        let url = a.proxy.expect("a proxy URL");
        assert!(
            url.starts_with(&format!("http://scraper-session-{x}:hunter2@")),
            "{url}"
        );
        for _ in 0..GATEWAY_STRIKES {
            b.failed(&a.id);
        }
        assert_eq!(b.fresh(None), None, "every exit is dead");
        assert_eq!(b.dead_labels().len(), 3);
    }

    #[test]
    fn no_proxies_means_direct() {
        let mut b = book(0, false);
        assert_eq!(b.fresh(None).map(|e| e.id), Some(ExitId::Direct));
        assert_eq!(b.several(2).len(), 1);
    }

    #[test]
    fn sticky_ids_are_valid_and_usernames_optional() {
        let gw = Url::parse("http://127.0.0.1:2000").expect("url");
        assert_eq!(
            sticky_url(&gw, "c1-00ab"),
            "http://session-c1-00ab@127.0.0.1:2000/"
        );
        let mut b = book(0, true);
        let Some(Exit {
            id: ExitId::Sticky(id),
            ..
        }) = b.fresh(None)
        else {
            panic!("a sticky exit");
        };
        assert!(id.len() <= 64);
        assert!(
            id.bytes()
                .all(|c| c.is_ascii_alphanumeric() || b"._-".contains(&c))
        );
    }

    #[test]
    fn several_gives_distinct_exits() {
        let mut b = book(2, false);
        let ids: Vec<ExitId> = b.several(2).into_iter().map(|e| e.id).collect();
        assert_eq!(ids, vec![ExitId::Static(0), ExitId::Static(1)]);
        let mut g = book(0, true);
        assert_eq!(g.several(3).len(), 3);
    }
}
