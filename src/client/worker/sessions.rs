//! How a worker gets a session: the shared one or its own, a login on a fresh exit, failures.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use tokio::time::Instant;

use crate::client::Bug;
use crate::client::accounts::Retired;
use crate::client::exits::{Exit, ExitId};
use crate::client::login::{self, LoginFailure};
use crate::client::session::{SendError, Session, SessionSpec};
use crate::client::worker::{Flow, Worker};

/// Login attempts per new session before a worker gives up.
const LOGIN_ATTEMPTS: u32 = 8;

impl Worker {
    /// Retires `sess`; returns whether this call did (and released its account).
    pub(super) fn retire(&mut self, sess: &Arc<Session>) -> bool {
        if self.own.as_ref().is_some_and(|s| s.serial == sess.serial) {
            self.own = None;
        }
        let first = sess.kill();
        if first {
            self.sh.accounts.lock().released(sess.account);
        }
        first
    }

    /// A live session: the shared one in JWT mode, else this worker's.
    pub(super) async fn session(&mut self) -> Result<Arc<Session>, String> {
        let shares =
            self.sh.jwt.load(Ordering::Acquire) || self.sh.has(Bug::ShareSessionAcrossExits);
        if shares {
            let sh = Arc::clone(&self.sh);
            let mut slot = sh.slot.lock().await;
            if let Some(s) = slot.as_ref().filter(|s| !s.is_dead()) {
                return Ok(Arc::clone(s));
            }
            let s = self.login().await?;
            *slot = Some(Arc::clone(&s));
            return Ok(s);
        }
        if let Some(s) = self.own.as_ref().filter(|s| !s.is_dead()) {
            return Ok(Arc::clone(s));
        }
        let s = self.login().await?;
        self.own = Some(Arc::clone(&s));
        Ok(s)
    }

    async fn login(&mut self) -> Result<Arc<Session>, String> {
        for _ in 0..LOGIN_ATTEMPTS {
            if Instant::now() >= self.sh.deadline {
                return Err("the deadline passed".into());
            }
            let last = self.sh.last_refused.lock().clone();
            let account = self.pick_account(last.as_ref().map(|l| l.1))?;
            let exits = self.pick_exits(last.as_ref().map(|l| &l.0));
            if exits.is_empty() {
                self.sh.accounts.lock().released(account);
                return Err("no usable exit left".into());
            }
            let sess = self.new_session(account, exits)?;
            let creds = self.sh.accounts.lock().get(account).clone();
            let jwt = self.sh.jwt.load(Ordering::Acquire);
            let result = if jwt {
                login::api(&sess, self.id, &creds).await
            } else {
                login::form(&sess, self.id, &creds).await
            };
            match result {
                Ok(companions) => return Ok(self.logged_in(sess, &companions, jwt)),
                Err(failure) => self.login_failed(&sess, failure).await?,
            }
        }
        Err(format!("{LOGIN_ATTEMPTS} logins in a row failed"))
    }

    fn pick_account(&self, last: Option<usize>) -> Result<usize, String> {
        let mut book = self.sh.accounts.lock();
        let pick = match last {
            Some(a) if self.sh.has(Bug::RetryBurnsAccounts) => book.same_or_next(a).ok_or(false),
            _ => book.pick(last),
        };
        pick.map_err(|busy| match busy {
            true => "every usable account is busy in another session".into(),
            false => "no usable account left".into(),
        })
    }

    fn pick_exits(&self, last: Option<&ExitId>) -> Vec<Exit> {
        let mut book = self.sh.exits.lock();
        let spread = if self.sh.has(Bug::RotateExitPerRequest) {
            4.max(self.sh.workers)
        } else if self.sh.has(Bug::ShareSessionAcrossExits) {
            self.sh.workers
        } else {
            1
        };
        if spread > 1 {
            return book.several(spread);
        }
        let exit = match last {
            Some(id) if self.sh.has(Bug::RetryBurnsAccounts) => book.again(id),
            _ => book.fresh(last),
        };
        exit.into_iter().collect()
    }

    fn new_session(&self, account: usize, exits: Vec<Exit>) -> Result<Session, String> {
        let spec = SessionSpec {
            serial: self.sh.serial.fetch_add(1, Ordering::Relaxed) + 1,
            account,
            exits,
            rotate: self.sh.has(Bug::RotateExitPerRequest),
            switch_tls: self.sh.has(Bug::SwitchTlsStack),
            pacer: Arc::clone(&self.sh.pacers[account]),
            stats: Arc::clone(&self.sh.stats),
            base: self.sh.base.clone(),
            timeout: self.sh.timeout,
            deadline: self.sh.deadline,
        };
        Session::new(spec).map_err(|e| format!("cannot build an HTTP client: {e:#}"))
    }

    fn logged_in(&self, sess: Session, companions: &[String], jwt: bool) -> Arc<Session> {
        if self.sh.has(Bug::StripCompanionCookies) {
            for name in companions {
                sess.jar.remove(name);
            }
        }
        let name = {
            let mut book = self.sh.accounts.lock();
            book.logged_in(sess.account);
            book.get(sess.account).username.clone()
        };
        let mode = if jwt { "jwt" } else { "cookie" };
        self.sh.stats.update(|s| {
            s.logins += 1;
            s.auth = Some(mode.to_owned());
        });
        self.sh.log(format_args!(
            "worker {}: session #{} logged in as {name} through {} ({mode})",
            self.id,
            sess.serial,
            sess.home().label()
        ));
        Arc::new(sess)
    }

    /// Takes note of a failed login; `Err` when the worker should stop.
    async fn login_failed(&mut self, sess: &Session, failure: LoginFailure) -> Result<(), String> {
        sess.kill();
        self.sh.accounts.lock().released(sess.account);
        self.sh.stats.update(|s| s.login_failures += 1);
        let name = self.sh.accounts.lock().get(sess.account).username.clone();
        self.sh.log(format_args!(
            "worker {}: login as {name} through {} failed: {failure}",
            self.id,
            sess.home().label()
        ));
        match failure {
            LoginFailure::Banned => self
                .sh
                .accounts
                .lock()
                .retire(sess.account, Retired::Banned),
            // The form is refused where only bearer tokens count: use the API.
            LoginFailure::AuthMode => self.sh.jwt.store(true, Ordering::Release),
            LoginFailure::Refused(_) => {
                self.sh
                    .accounts
                    .lock()
                    .retire(sess.account, Retired::LoginFailed);
            }
            LoginFailure::ExitBanned => {
                self.sh.stats.update(|s| s.exit_bans += 1);
                self.sh.exits.lock().failed(&sess.home().id);
            }
            LoginFailure::Send(SendError::Transport { exit, .. }) => {
                self.sh.stats.update(|s| s.exit_failures += 1);
                self.sh.exits.lock().failed(&exit);
            }
            LoginFailure::Send(_) => return Err("the deadline passed".into()),
            LoginFailure::Unexpected(_) => {
                if let Some(Flow::Stop(why)) = self.strike() {
                    return Err(why);
                }
                self.backoff().await;
            }
        }
        Ok(())
    }
}
