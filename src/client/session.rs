//! One session: its cookie jar, the exit it is pinned to, its tokens and its account's pacer.
//!
//! A session owns one reqwest client per exit it uses, all sharing the
//! session's jar. A well-behaved session has exactly one. The two bugs
//! that spread a session over exits give it several: `rotate` picks the
//! next one on every request, and a session shared across exits gives
//! each worker its own.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use base64::Engine as _;
use reqwest::header::{self, HeaderMap, HeaderValue};
use reqwest::redirect::Policy;
use reqwest::{Client, Method, Proxy, Url};
use serde_json::{Value, json};
use tokio::time::Instant;

use crate::client::classify::{self, Outcome, Style};
use crate::client::exits::{Exit, ExitId};
use crate::client::jar::SessionJar;
use crate::client::pace::Pacer;
use crate::client::summary::Stats;

/// The User-Agent every request sends.
pub(crate) const USER_AGENT: &str = concat!("sessionrange-client/", env!("CARGO_PKG_VERSION"));
/// `Accept` for data and API requests: refusals then come as JSON.
pub(crate) const JSON: &str = "application/json";
/// `Accept` for pages a browser would load.
pub(crate) const HTML: &str = "text/html,application/xhtml+xml";

/// An answer from the target (or from a proxy).
#[derive(Debug)]
pub(crate) struct Reply {
    /// The status code.
    pub(crate) status: u16,
    /// The headers.
    pub(crate) headers: HeaderMap,
    /// The body as text.
    pub(crate) body: String,
    /// The exit it came through.
    pub(crate) exit: ExitId,
}

/// A request that was not answered.
#[derive(Debug)]
pub(crate) enum SendError {
    /// The session was retired while the request waited for its slot.
    Retired,
    /// The run's deadline passed.
    Deadline,
    /// The proxy or the connection failed.
    Transport {
        /// The exit it was sent through.
        exit: ExitId,
        /// What went wrong.
        what: String,
    },
}

/// What a request carries besides its method and path.
#[derive(Debug, Default)]
pub(crate) struct Extra<'a> {
    /// A bearer token.
    pub(crate) bearer: Option<&'a str>,
    /// A form body.
    pub(crate) form: Option<&'a [(&'a str, String)]>,
    /// A JSON body.
    pub(crate) json: Option<&'a Value>,
    /// Send even if the session was retired (`--bug keep-using-dead-session`).
    pub(crate) even_if_dead: bool,
    /// Skip the pacer: login steps, which the target does not rate.
    pub(crate) unpaced: bool,
}

/// A bearer token pair and when to renew it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Tokens {
    /// The access token (a JWT).
    pub(crate) access: String,
    /// The refresh token.
    pub(crate) refresh: String,
    /// The access token's expiry, Unix seconds.
    pub(crate) exp: u64,
    /// Its lifetime in seconds, as the target announced it.
    pub(crate) lifetime: u64,
    /// How many times this session's tokens were renewed.
    pub(crate) generation: u64,
}

impl Tokens {
    /// Reads a login or refresh answer.
    pub(crate) fn parse(body: &str, generation: u64, now: u64) -> Option<Self> {
        let v: Value = serde_json::from_str(body).ok()?;
        let access = v.get("access_token")?.as_str()?.to_owned();
        let lifetime = v.get("expires_in").and_then(Value::as_u64).unwrap_or(300);
        let exp = jwt_exp(&access).unwrap_or(now + lifetime);
        Some(Self {
            refresh: v.get("refresh_token")?.as_str()?.to_owned(),
            access,
            exp,
            lifetime,
            generation,
        })
    }

    /// Whether to renew now: within a fifth of its lifetime of expiry
    /// (at least 1 s, at most 30 s).
    pub(crate) fn due(&self, now: u64) -> bool {
        let margin = (self.lifetime / 5).clamp(1, 30);
        now + margin >= self.exp
    }
}

/// The `exp` claim of a JWT, read without checking the signature.
fn jwt_exp(token: &str) -> Option<u64> {
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    serde_json::from_slice::<Value>(&bytes)
        .ok()?
        .get("exp")?
        .as_u64()
}

/// The current Unix time in seconds.
pub(crate) fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// One session of one account.
#[derive(Debug)]
pub(crate) struct Session {
    /// A number for logs.
    pub(crate) serial: u64,
    /// The account's index in the account book.
    pub(crate) account: usize,
    /// The exits, one per client.
    pub(crate) exits: Vec<Exit>,
    clients: Vec<Client>,
    /// `--bug switch-tls-stack`: clients with another TLS setup (TLS 1.2
    /// only), used once the session has been served.
    switched: Option<Vec<Client>>,
    rotate: bool,
    turn: AtomicUsize,
    /// The cookies.
    pub(crate) jar: Arc<SessionJar>,
    pacer: Arc<Pacer>,
    stats: Arc<Stats>,
    base: Url,
    timeout: Duration,
    deadline: Instant,
    /// Bearer tokens, for sessions from the API login.
    pub(crate) tokens: tokio::sync::Mutex<Option<Tokens>>,
    /// The session cookie the login set, for cookie sessions.
    pub(crate) cookie: OnceLock<String>,
    dead: AtomicBool,
    served: AtomicBool,
}

/// What a session is built from.
#[derive(Debug)]
pub(crate) struct SessionSpec {
    /// A number for logs.
    pub(crate) serial: u64,
    /// The account's index.
    pub(crate) account: usize,
    /// The exits; the first one logs in.
    pub(crate) exits: Vec<Exit>,
    /// Whether every request takes the next exit (`--bug rotate-exit-per-request`).
    pub(crate) rotate: bool,
    /// Whether the session changes TLS stacks once served (`--bug switch-tls-stack`).
    pub(crate) switch_tls: bool,
    /// The account's pacer.
    pub(crate) pacer: Arc<Pacer>,
    /// The run's counters.
    pub(crate) stats: Arc<Stats>,
    /// The target's base URL.
    pub(crate) base: Url,
    /// The longest a request may take.
    pub(crate) timeout: Duration,
    /// When the run must be over.
    pub(crate) deadline: Instant,
}

impl Session {
    /// A session with an empty jar, not logged in yet.
    pub(crate) fn new(spec: SessionSpec) -> anyhow::Result<Self> {
        let jar = Arc::new(SessionJar::default());
        let clients = spec
            .exits
            .iter()
            .map(|e| client(e, &jar, false))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let switched = if spec.switch_tls {
            let alt = spec.exits.iter().map(|e| client(e, &jar, true));
            Some(alt.collect::<anyhow::Result<Vec<_>>>()?)
        } else {
            None
        };
        Ok(Self {
            serial: spec.serial,
            account: spec.account,
            exits: spec.exits,
            clients,
            switched,
            rotate: spec.rotate,
            turn: AtomicUsize::new(0),
            jar,
            pacer: spec.pacer,
            stats: spec.stats,
            base: spec.base,
            timeout: spec.timeout,
            deadline: spec.deadline,
            tokens: tokio::sync::Mutex::new(None),
            cookie: OnceLock::new(),
            dead: AtomicBool::new(false),
            served: AtomicBool::new(false),
        })
    }

    /// The exit the session was born on.
    pub(crate) fn home(&self) -> &Exit {
        &self.exits[0]
    }

    /// Notes that the session got data.
    pub(crate) fn mark_served(&self) {
        self.served.store(true, Ordering::Release);
    }

    /// Whether the session ever got data.
    pub(crate) fn has_served(&self) -> bool {
        self.served.load(Ordering::Acquire)
    }

    /// Whether the session was retired.
    pub(crate) fn is_dead(&self) -> bool {
        self.dead.load(Ordering::Acquire)
    }

    /// Retires the session: no request is sent with it again (short of
    /// `--bug keep-using-dead-session`, which calls [`Session::send`] anyway).
    pub(crate) fn kill(&self) -> bool {
        !self.dead.swap(true, Ordering::AcqRel)
    }

    /// Sends one request, waiting for the account's pacer first (unless
    /// `extra.unpaced`). `worker` picks the client of a session shared
    /// across exits.
    pub(crate) async fn send(
        &self,
        worker: usize,
        method: Method,
        path: &str,
        accept: &'static str,
        extra: Extra<'_>,
    ) -> Result<Reply, SendError> {
        let i = self.route(worker);
        let exit = self.exits[i].id.clone();
        if !extra.unpaced {
            self.pacer.wait().await;
        }
        if self.is_dead() && !extra.even_if_dead {
            return Err(SendError::Retired);
        }
        let left = self.deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(SendError::Deadline);
        }
        let url = self.base.join(path).map_err(|e| SendError::Transport {
            exit: exit.clone(),
            what: e.to_string(),
        })?;
        let clients = match &self.switched {
            Some(alt) if self.has_served() => alt,
            _ => &self.clients,
        };
        let mut req = clients[i]
            .request(method, url)
            .header(header::ACCEPT, accept)
            .timeout(self.timeout.min(left));
        if let Some(token) = extra.bearer {
            req = req.bearer_auth(token);
        }
        if let Some(form) = extra.form {
            req = req.form(form);
        }
        if let Some(json) = extra.json {
            req = req.json(json);
        }
        self.stats.update(|s| s.requests += 1);
        let failed = |e: reqwest::Error| SendError::Transport {
            exit: exit.clone(),
            what: describe(&e),
        };
        let res = req.send().await.map_err(failed)?;
        let status = res.status().as_u16();
        let headers = res.headers().clone();
        let body = res.text().await.map_err(failed)?;
        Ok(Reply {
            status,
            headers,
            body,
            exit,
        })
    }

    /// Slows the account's pacer after a `429`.
    pub(crate) fn slow_down(&self, pause: Duration) {
        self.pacer.slow_down(pause);
    }

    fn route(&self, worker: usize) -> usize {
        let n = self.clients.len();
        if self.rotate {
            self.turn.fetch_add(1, Ordering::Relaxed) % n
        } else {
            worker % n
        }
    }

    /// Renews the tokens unless another worker already did since
    /// `generation`: one refresh at a time per session, and the others
    /// reuse its result.
    pub(crate) async fn refresh_shared(
        &self,
        worker: usize,
        generation: u64,
    ) -> Result<Result<(), Outcome>, SendError> {
        let mut tokens = self.tokens.lock().await;
        let Some(current) = tokens.as_ref() else {
            return Ok(Err(Outcome::LoginRequired));
        };
        if current.generation != generation {
            return Ok(Ok(()));
        }
        let fresh = self.refresh_with(worker, current).await?;
        Ok(fresh.map(|t| *tokens = Some(t)))
    }

    /// Sends one refresh with `tokens`' refresh token, coordinating with
    /// nobody (the single-flight path wraps it; `--bug parallel-refresh`
    /// calls it directly).
    pub(crate) async fn refresh_with(
        &self,
        worker: usize,
        tokens: &Tokens,
    ) -> Result<Result<Tokens, Outcome>, SendError> {
        let body = json!({ "refresh_token": tokens.refresh });
        let extra = Extra {
            json: Some(&body),
            ..Extra::default()
        };
        let reply = self
            .send(worker, Method::POST, "/api/token/refresh", JSON, extra)
            .await?;
        let fresh = (reply.status == 200)
            .then(|| Tokens::parse(&reply.body, tokens.generation + 1, unix_now()))
            .flatten();
        Ok(match fresh {
            Some(t) => {
                self.stats.update(|s| s.refreshes += 1);
                Ok(t)
            }
            None => Err(refresh_refusal(&reply)),
        })
    }
}

/// What a refused refresh means: a `400 invalid_grant` is a family that
/// ended (expired, revoked, unknown), the rest reads like any refusal.
fn refresh_refusal(reply: &Reply) -> Outcome {
    if reply.status == 400 {
        return Outcome::Ended {
            style: Style::Expired,
            reason: Some("invalid_grant".into()),
            security: false,
        };
    }
    match classify::classify(reply.status, &reply.headers, &reply.body) {
        Outcome::Data(_) => Outcome::Unexpected(reply.status),
        other => other,
    }
}

/// A reqwest client for one exit: the session's jar, no redirects followed,
/// the same User-Agent and Accept-Language on every request.
fn client(exit: &Exit, jar: &Arc<SessionJar>, tls12_only: bool) -> anyhow::Result<Client> {
    let mut headers = HeaderMap::new();
    headers.insert(
        header::ACCEPT_LANGUAGE,
        HeaderValue::from_static("en-US,en;q=0.9"),
    );
    let mut b = Client::builder()
        .cookie_provider(Arc::clone(jar))
        .redirect(Policy::none())
        .user_agent(USER_AGENT)
        .default_headers(headers)
        .connect_timeout(Duration::from_secs(5));
    b = match &exit.proxy {
        Some(url) => b.proxy(Proxy::all(url.as_str())?),
        None => b.no_proxy(),
    };
    if tls12_only {
        b = b.max_tls_version(reqwest::tls::Version::TLS_1_2);
    }
    if let Some(pem) = &exit.ca {
        b = b.add_root_certificate(reqwest::Certificate::from_pem(pem)?);
    }
    Ok(b.build()?)
}

/// A transport error in a few words.
fn describe(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timeout"
    } else if e.is_connect() {
        "connect"
    } else if e.is_body() || e.is_decode() {
        "body"
    } else {
        "request"
    };
    let mut source: Option<&dyn std::error::Error> = Some(e);
    let mut last = String::new();
    while let Some(s) = source {
        last = s.to_string();
        source = s.source();
    }
    format!("{kind}: {last}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jwt(exp: u64) -> String {
        let claims = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(format!("{{\"sub\":\"a\",\"exp\":{exp}}}"));
        format!("eyJhbGciOiJIUzI1NiJ9.{claims}.sig")
    }

    #[test]
    fn tokens_take_their_expiry_from_the_jwt() {
        let body = json!({
            "access_token": jwt(1_000_100),
            "token_type": "Bearer",
            "expires_in": 100,
            "refresh_token": "r1",
        })
        .to_string();
        let t = Tokens::parse(&body, 0, 1_000_000).expect("tokens");
        assert_eq!(
            (t.exp, t.lifetime, t.refresh.as_str()),
            (1_000_100, 100, "r1")
        );
        assert!(!t.due(1_000_079));
        assert!(t.due(1_000_080));
        let opaque = json!({"access_token": "x", "expires_in": 2, "refresh_token": "r"});
        let t = Tokens::parse(&opaque.to_string(), 3, 50).expect("tokens");
        assert_eq!((t.exp, t.generation), (52, 3));
        assert!(t.due(51), "at least a second of margin");
        assert_eq!(Tokens::parse("{}", 0, 0), None);
    }
}
