//! A worker: takes pages off the shared queue, keeps a session alive, and answers every refusal.
//!
//! The rules a well-behaved worker keeps: one exit per session for its
//! whole life; a session that was refused is retired on the spot and
//! never sent again; a new session logs in on a fresh exit, preferably
//! with another account, after a backoff; the page that failed is the
//! next one fetched. Each `--bug` flips exactly one of these.

mod sessions;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use rand::Rng as _;
use reqwest::Method;

use crate::client::Bug;
use crate::client::accounts::Retired;
use crate::client::classify::{self, Outcome, Style, classify};
use crate::client::exits::{Exit, ExitId};
use crate::client::session::{Extra, HTML, JSON, SendError, Session, Tokens, unix_now};
use crate::client::shared::Shared;
use crate::client::{catalog, items};
use crate::site::guard::SESSION_COOKIE;

/// Failures in a row (refusals, proxy errors, odd answers) before a worker gives up.
const MAX_STRIKES: u32 = 12;
/// Requests `--bug keep-using-dead-session` sends with a refused session.
const DEAD_SESSION_RETRIES: u32 = 3;

/// What happened to one try at a page.
enum Event {
    /// The target (or a proxy) answered.
    Answer(Outcome),
    /// No answer.
    Lost(SendError),
    /// The tokens were renewed; try again.
    Renewed,
}

/// What the worker does next.
pub(super) enum Flow {
    Again,
    Done,
    Stop(String),
}

/// One worker.
#[derive(Debug)]
pub(crate) struct Worker {
    id: usize,
    sh: Arc<Shared>,
    own: Option<Arc<Session>>,
    strikes: u32,
    odd: u32,
    /// `429`s in a row, and on which session.
    limited: (u64, u32),
    renew: bool,
    /// The tokens of the last request.
    sent_with: Option<Tokens>,
    /// This worker's own copy of its session's tokens (`--bug parallel-refresh`).
    local: Option<(u64, Tokens)>,
}

impl Worker {
    /// Worker number `id`.
    pub(crate) fn new(id: usize, sh: Arc<Shared>) -> Self {
        Self {
            id,
            sh,
            own: None,
            strikes: 0,
            odd: 0,
            limited: (0, 0),
            renew: false,
            sent_with: None,
            local: None,
        }
    }

    /// Fetches pages until the listing is done or the worker gives up.
    pub(crate) async fn run(mut self) {
        while let Some(page) = self.sh.queue.take().await {
            if let Err(why) = self.page(page).await {
                self.sh.queue.retry(page);
                self.sh.give_up(&why);
                break;
            }
        }
        if let Some(s) = self.own.take() {
            self.retire(&s);
        }
    }

    async fn page(&mut self, page: u32) -> Result<(), String> {
        loop {
            let sess = self.session().await?;
            let event = self.try_page(&sess, page).await;
            let flow = match event {
                Event::Renewed | Event::Lost(SendError::Retired) => Flow::Again,
                Event::Lost(SendError::Deadline) => Flow::Stop("the deadline passed".into()),
                Event::Lost(SendError::Transport { exit, what }) => {
                    self.exit_failed(&sess, &exit, &what)
                }
                Event::Answer(outcome) => self.answer(&sess, page, outcome).await,
            };
            match flow {
                Flow::Again => {}
                Flow::Done => {
                    (self.strikes, self.odd) = (0, 0);
                    return Ok(());
                }
                Flow::Stop(why) => return Err(why),
            }
        }
    }

    async fn try_page(&mut self, sess: &Arc<Session>, page: u32) -> Event {
        let tokens = self.tokens(sess).await;
        if let Some(t) = &tokens
            && (self.renew || t.due(unix_now()))
        {
            self.renew = false;
            return self.renew(sess, t).await.unwrap_or(Event::Renewed);
        }
        let html = self.sh.html.load(Ordering::Acquire);
        let (path, accept) = page_request(html, page);
        let extra = Extra {
            bearer: tokens.as_ref().map(|t| t.access.as_str()),
            ..Extra::default()
        };
        self.sent_with = tokens.clone();
        match sess.send(self.id, Method::GET, &path, accept, extra).await {
            Ok(r) => {
                self.sh.exits.lock().worked(&r.exit);
                // No API route at all (a plain 404, not the API's JSON
                // "no such page"): the site is HTML only; crawl the catalog.
                if !html && r.status == 404 && !r.body.trim_start().starts_with('{') {
                    self.sh
                        .log("the target has no JSON API: crawling the HTML catalog");
                    self.sh.html.store(true, Ordering::Release);
                    return Event::Renewed;
                }
                Event::Answer(match html {
                    true if r.status == 200 && !classify::is_login_form(&r.body) => {
                        Outcome::Data(r.body)
                    }
                    _ => classify(r.status, &r.headers, &r.body),
                })
            }
            Err(e) => Event::Lost(e),
        }
    }

    /// The tokens to send: the session's, or this worker's own copy.
    async fn tokens(&mut self, sess: &Session) -> Option<Tokens> {
        if self.sh.has(Bug::ParallelRefresh)
            && let Some((serial, t)) = &self.local
            && *serial == sess.serial
        {
            return Some(t.clone());
        }
        let t = sess.tokens.lock().await.clone()?;
        self.local = Some((sess.serial, t.clone()));
        Some(t)
    }

    /// Renews the tokens; `None` when that worked.
    async fn renew(&mut self, sess: &Session, tokens: &Tokens) -> Option<Event> {
        let result = if self.sh.has(Bug::ParallelRefresh) {
            match sess.refresh_with(self.id, tokens).await {
                Ok(Ok(t)) => {
                    self.local = Some((sess.serial, t));
                    Ok(Ok(()))
                }
                Ok(Err(o)) => Ok(Err(o)),
                Err(e) => Err(e),
            }
        } else {
            sess.refresh_shared(self.id, tokens.generation).await
        };
        match result {
            Ok(Ok(())) => None,
            Ok(Err(outcome)) => Some(Event::Answer(outcome)),
            Err(e) => Some(Event::Lost(e)),
        }
    }

    async fn answer(&mut self, sess: &Arc<Session>, page: u32, outcome: Outcome) -> Flow {
        match outcome {
            Outcome::Data(body) => match self.parse_page(&body) {
                Some(p) => {
                    sess.mark_served();
                    self.limited = (0, 0);
                    self.store(page, &p)
                }
                None => self.odd_answer(sess, 200).await,
            },
            Outcome::NotFound => {
                self.sh.queue.done(page, None, None);
                Flow::Done
            }
            Outcome::TokenExpired => {
                self.renew = true;
                Flow::Again
            }
            Outcome::RateLimited(_) if self.limited_again(sess) => {
                // Waited out once already: a revoked bearer session answers
                // 429 for ever, so this one is taken for dead.
                let ended = classify::ended(Style::RateLimit429, None);
                self.refused(sess, page, ended).await
            }
            Outcome::RateLimited(pause) => self.wait_out(sess, pause).await,
            // Cookies refused on data by a session that just logged in:
            // the scenario is JWT-only. (A session whose cookie the target
            // deleted gets the same answer later; that is a dead session.)
            Outcome::LoginRequired
                if !self.sh.jwt.load(Ordering::Acquire)
                    && !sess.has_served()
                    && sess.jar.get(SESSION_COOKIE).is_some() =>
            {
                self.sh
                    .log("cookies are refused on data: switching to bearer tokens");
                self.sh.jwt.store(true, Ordering::Release);
                self.retire(sess);
                Flow::Again
            }
            Outcome::Ended {
                style: Style::SoftLogin,
                ..
            } if self.sh.has(Bug::IgnoreSoftLogout) => {
                self.sh.queue.done(page, Some(page + 1), None);
                Flow::Done
            }
            Outcome::ExitBanned => {
                self.sh.stats.update(|s| s.exit_bans += 1);
                self.exit_failed(sess, &sess.home().id.clone(), "its address is banned")
            }
            Outcome::ProxyFailure(status) => {
                let what = format!("the proxy answered {status}");
                self.exit_failed(sess, &sess.home().id.clone(), &what)
            }
            Outcome::Unexpected(status) => self.odd_answer(sess, status).await,
            refusal => self.refused(sess, page, refusal).await,
        }
    }

    /// Waits out a `429` on `sess`, with jitter, and tries again.
    async fn wait_out(&mut self, sess: &Session, pause: Duration) -> Flow {
        self.sh.stats.update(|s| s.rate_limited += 1);
        self.sh
            .log(format_args!("worker {}: 429, waiting {pause:?}", self.id));
        sess.slow_down(pause);
        let jitter = rand::rng().random_range(0..300);
        self.sh.sleep(pause + Duration::from_millis(jitter)).await;
        Flow::Again
    }

    /// Counts a `429` on `sess`; whether it is the second in a row.
    fn limited_again(&mut self, sess: &Session) -> bool {
        if self.limited.0 != sess.serial {
            self.limited = (sess.serial, 0);
        }
        self.limited.1 += 1;
        self.limited.1 > 1
    }

    fn store(&mut self, page: u32, p: &items::ItemPage) -> Flow {
        let new = match self.sh.output.write(&p.items) {
            Ok(n) => n,
            Err(e) => return Flow::Stop(format!("{e:#}")),
        };
        self.sh.stats.update(|s| s.pages_fetched += 1);
        self.sh.queue.done(page, p.next, p.pages);
        self.sh.log(format_args!(
            "worker {}: page {page}: {new} new records",
            self.id
        ));
        Flow::Done
    }

    /// A refusal that ends the session (or, for a challenge, makes it
    /// unusable): retire it, and log in again after a backoff.
    async fn refused(&mut self, sess: &Arc<Session>, page: u32, outcome: Outcome) -> Flow {
        if self.retire(sess) {
            self.count(sess, page, &outcome);
        }
        if self.sh.has(Bug::KeepUsingDeadSession) {
            self.use_dead_session(sess, page).await;
        }
        *self.sh.last_refused.lock() = Some((sess.home().id.clone(), sess.account));
        if self.sh.has(Bug::NoReauth) {
            self.sh.queue.close();
            return Flow::Stop(
                "a session was refused and --bug no-reauth never logs in again".into(),
            );
        }
        if let Some(stop) = self.strike() {
            return stop;
        }
        let natural = matches!(
            outcome,
            Outcome::Ended {
                security: false,
                ..
            }
        );
        if !natural && !self.sh.has(Bug::RetryBurnsAccounts) {
            self.backoff().await;
        }
        Flow::Again
    }

    /// Counts a refusal in the summary and against the account.
    fn count(&self, sess: &Session, page: u32, outcome: &Outcome) {
        let account = sess.account;
        match outcome {
            Outcome::Ended {
                style, security, ..
            } => {
                if *security {
                    self.sh.accounts.lock().invalidated(account);
                }
                self.sh.stats.update(|s| {
                    *s.invalidations.entry(style.name().to_owned()).or_default() += 1;
                    s.security_invalidations += u64::from(*security);
                });
            }
            Outcome::Challenge(_) => {
                // A challenge leaves the session alive, but one the client
                // cannot solve is as bad: it weighs on the account too.
                self.sh.accounts.lock().invalidated(account);
                self.sh.stats.update(|s| s.challenges += 1);
            }
            Outcome::AccountBanned => {
                self.sh.accounts.lock().retire(account, Retired::Banned);
                self.sh.stats.update(|s| s.account_bans += 1);
            }
            _ => self.sh.stats.update(|s| {
                *s.invalidations.entry("expired".to_owned()).or_default() += 1;
            }),
        }
        let name = self.sh.accounts.lock().get(account).username.clone();
        self.sh.log(format_args!(
            "worker {}: session #{} ({name}, {}) refused on page {page}: {outcome:?}",
            self.id,
            sess.serial,
            sess.home().label()
        ));
    }

    /// A listing page: the catalog's HTML where the site has no API.
    fn parse_page(&self, body: &str) -> Option<items::ItemPage> {
        match self.sh.html.load(Ordering::Acquire) {
            true => catalog::parse(body),
            false => items::parse(body),
        }
    }

    /// `--bug keep-using-dead-session`: the page again, with the same session.
    async fn use_dead_session(&mut self, sess: &Session, page: u32) {
        let (path, accept) = page_request(self.sh.html.load(Ordering::Acquire), page);
        for _ in 0..DEAD_SESSION_RETRIES {
            // Present the session again even where the target deleted the cookie.
            if let Some(cookie) = sess.cookie.get() {
                sess.jar.apply(&format!("{SESSION_COOKIE}={cookie}"));
            }
            let extra = Extra {
                bearer: self.sent_with.as_ref().map(|t| t.access.as_str()),
                even_if_dead: true,
                ..Extra::default()
            };
            let _ = sess.send(self.id, Method::GET, &path, accept, extra).await;
            self.sh.stats.update(|s| s.dead_session_requests += 1);
        }
    }

    fn exit_failed(&mut self, sess: &Arc<Session>, exit: &ExitId, what: &str) -> Flow {
        self.sh.stats.update(|s| s.exit_failures += 1);
        let label = sess
            .exits
            .iter()
            .find(|e| &e.id == exit)
            .map_or_else(|| "an exit".to_owned(), Exit::label);
        self.sh.log(format_args!(
            "worker {}: {label} failed ({what}); retiring session #{}",
            self.id, sess.serial
        ));
        self.sh.exits.lock().failed(exit);
        self.retire(sess);
        self.strike().unwrap_or(Flow::Again)
    }

    async fn odd_answer(&mut self, sess: &Arc<Session>, status: u16) -> Flow {
        self.odd += 1;
        self.sh.log(format_args!(
            "worker {}: unexpected answer {status} on session #{}",
            self.id, sess.serial
        ));
        if self.odd >= 3 {
            self.odd = 0;
            self.retire(sess);
        }
        if let Some(stop) = self.strike() {
            return stop;
        }
        self.backoff().await;
        Flow::Again
    }

    pub(super) fn strike(&mut self) -> Option<Flow> {
        self.strikes += 1;
        (self.strikes > MAX_STRIKES).then(|| Flow::Stop(format!("{MAX_STRIKES} failures in a row")))
    }

    pub(super) async fn backoff(&self) {
        let base = 0.25 * f64::from(1u32 << self.strikes.saturating_sub(1).min(5));
        let secs = base * rand::rng().random_range(0.75..1.25);
        self.sh.sleep(Duration::from_secs_f64(secs)).await;
    }
}

/// The path and `Accept` of listing page `page`: the JSON API, or the
/// HTML catalog when the site has no API.
fn page_request(html: bool, page: u32) -> (String, &'static str) {
    match html {
        true => (format!("/catalog?page={page}"), HTML),
        false => (format!("/api/v1/items?page={page}"), JSON),
    }
}
