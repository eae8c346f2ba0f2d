//! Logging a session in: the browser form (CSRF, proof of work, TOTP) or the JSON API.
//!
//! Both start at the landing page, as a browser would, which sets the
//! companion cookies the target then expects back on every request. Login
//! steps skip the pacer: the target rates requests made with a session,
//! and a slow login only makes the re-login overhead worse.

use crate::client::catalog::unescape;
use reqwest::Method;
use serde_json::{Value, json};

use crate::auth::{pow, totp};
use crate::client::accounts::Account;
use crate::client::classify::{self, Outcome};
use crate::client::session::{Extra, HTML, JSON, Reply, SendError, Session, Tokens, unix_now};
use crate::clock::Timestamp;
use crate::site::guard::SESSION_COOKIE;

/// Attempts per login before a refusal is believed.
const ATTEMPTS: usize = 2;

/// Why a login failed.
#[derive(Debug)]
pub(crate) enum LoginFailure {
    /// The account is banned.
    Banned,
    /// The credentials or a login step were refused, with the target's word.
    Refused(String),
    /// The exit's address is banned.
    ExitBanned,
    /// This login is not the scenario's way in (`AUTH_MODE`): the form
    /// where only bearer tokens count.
    AuthMode,
    /// The request got no answer.
    Send(SendError),
    /// Anything else.
    Unexpected(String),
}

impl std::fmt::Display for LoginFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Banned => f.write_str("the account is banned"),
            Self::Refused(why) => write!(f, "refused: {why}"),
            Self::ExitBanned => f.write_str("the exit's address is banned"),
            Self::AuthMode => f.write_str("this login is not accepted here (AUTH_MODE)"),
            Self::Send(e) => write!(f, "no answer: {e:?}"),
            Self::Unexpected(what) => f.write_str(what),
        }
    }
}

impl From<SendError> for LoginFailure {
    fn from(e: SendError) -> Self {
        Self::Send(e)
    }
}

/// Logs in through the form; returns the companion cookie names.
pub(crate) async fn form(
    sess: &Session,
    worker: usize,
    account: &Account,
) -> Result<Vec<String>, LoginFailure> {
    let companions = landing(sess, worker).await?;
    let mut last = String::new();
    for _ in 0..ATTEMPTS {
        let page = get(sess, worker, "/login", HTML).await?;
        if page.status != 200 {
            return Err(refusal(&page));
        }
        let fields = form_fields(&page.body, account).await?;
        let pairs: Vec<(&str, String)> = fields.iter().map(|(k, v)| (*k, v.clone())).collect();
        let extra = Extra {
            form: Some(&pairs),
            unpaced: true,
            ..Extra::default()
        };
        let res = sess
            .send(worker, Method::POST, "/login", HTML, extra)
            .await?;
        let location = res
            .headers
            .get("location")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        match res.status {
            302 | 303 if location.contains("/account") => {
                if let Some(cookie) = sess.jar.get(SESSION_COOKIE) {
                    let _ = sess.cookie.set(cookie);
                    return Ok(companions);
                }
                last = "the login set no session cookie".into();
            }
            401 => last = alert(&res.body).unwrap_or_else(|| "401".into()),
            403 if res.body.contains("CSRF") => last = "the CSRF token was refused".into(),
            403 if res.body.contains("AUTH_MODE") => return Err(LoginFailure::AuthMode),
            403 => return Err(refusal(&res)),
            status => last = format!("login answered {status}"),
        }
    }
    Err(LoginFailure::Refused(last))
}

/// Logs in through `POST /api/login`; stores the tokens in the session and
/// returns the companion cookie names.
pub(crate) async fn api(
    sess: &Session,
    worker: usize,
    account: &Account,
) -> Result<Vec<String>, LoginFailure> {
    let companions = landing(sess, worker).await?;
    let mut last = String::new();
    for _ in 0..ATTEMPTS {
        let mut body = json!({ "username": account.username, "password": account.password });
        if let Some(code) = account.totp_secret.as_deref().and_then(totp_code) {
            body["totp"] = json!(code);
        }
        let ch = get(sess, worker, "/api/login/challenge", JSON).await?;
        match ch.status {
            200 => {
                let v: Value = serde_json::from_str(&ch.body).unwrap_or_default();
                let challenge = v["challenge"].as_str().unwrap_or_default().to_owned();
                let bits = v["bits"].as_u64().unwrap_or(0).min(32) as u8;
                body["pow_nonce"] = json!(solve(&challenge, bits).await?);
                body["pow_challenge"] = json!(challenge);
            }
            404 => {}
            _ => return Err(refusal(&ch)),
        }
        let extra = Extra {
            json: Some(&body),
            unpaced: true,
            ..Extra::default()
        };
        let res = sess
            .send(worker, Method::POST, "/api/login", JSON, extra)
            .await?;
        match res.status {
            200 => {
                let tokens = Tokens::parse(&res.body, 0, unix_now()).ok_or_else(|| {
                    LoginFailure::Unexpected("no tokens in the login answer".into())
                })?;
                *sess.tokens.lock().await = Some(tokens);
                return Ok(companions);
            }
            401 => last = error_code(&res.body).unwrap_or_else(|| "401".into()),
            _ => return Err(refusal(&res)),
        }
    }
    Err(LoginFailure::Refused(last))
}

/// `GET /`: returns the names of the cookies it set (the companions).
async fn landing(sess: &Session, worker: usize) -> Result<Vec<String>, LoginFailure> {
    let before = sess.jar.names();
    let res = get(sess, worker, "/", HTML).await?;
    if res.status != 200 {
        return Err(refusal(&res));
    }
    let names = sess.jar.names();
    Ok(names.into_iter().filter(|n| !before.contains(n)).collect())
}

async fn get(
    sess: &Session,
    worker: usize,
    path: &str,
    accept: &'static str,
) -> Result<Reply, SendError> {
    let extra = Extra {
        unpaced: true,
        ..Extra::default()
    };
    sess.send(worker, Method::GET, path, accept, extra).await
}

/// The fields to post: the form's hidden fields, the credentials, and
/// the proof of work and one-time code when the form asks for them.
async fn form_fields(
    html: &str,
    account: &Account,
) -> Result<Vec<(&'static str, String)>, LoginFailure> {
    let csrf = input_attr(html, "csrf", "value")
        .ok_or_else(|| LoginFailure::Unexpected("the login form has no csrf field".into()))?;
    let mut fields = vec![
        ("csrf", csrf),
        ("username", account.username.clone()),
        ("password", account.password.clone()),
    ];
    if let Some(challenge) = input_attr(html, "pow_challenge", "value") {
        let bits = input_attr(html, "pow_challenge", "data-bits")
            .and_then(|b| b.parse::<u8>().ok())
            .unwrap_or(0)
            .min(32);
        let nonce = solve(&challenge, bits).await?;
        fields.push(("pow_challenge", challenge));
        fields.push(("pow_nonce", nonce));
    }
    if html.contains("name=\"totp\"") {
        let code = account.totp_secret.as_deref().and_then(totp_code);
        fields.push(("totp", code.unwrap_or_default()));
    }
    Ok(fields)
}

/// Finds a proof-of-work nonce off the async threads.
async fn solve(challenge: &str, bits: u8) -> Result<String, LoginFailure> {
    let challenge = challenge.to_owned();
    tokio::task::spawn_blocking(move || pow::solve(&challenge, bits))
        .await
        .map_err(|e| LoginFailure::Unexpected(format!("proof of work failed: {e}")))
}

/// The current TOTP code for a base32 secret.
fn totp_code(secret: &str) -> Option<String> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    totp::code_at(secret, Timestamp::from_millis(now))
}

/// What a refused login step means.
fn refusal(res: &Reply) -> LoginFailure {
    match classify::classify(res.status, &res.headers, &res.body) {
        Outcome::AccountBanned => LoginFailure::Banned,
        Outcome::ExitBanned => LoginFailure::ExitBanned,
        Outcome::ProxyFailure(status) => LoginFailure::Send(SendError::Transport {
            exit: res.exit.clone(),
            what: format!("the proxy answered {status}"),
        }),
        _ => LoginFailure::Unexpected(format!("login step answered {}", res.status)),
    }
}

/// The attribute `attr` of the `<input>` whose name is `name`, unescaped.
pub(crate) fn input_attr(html: &str, name: &str, attr: &str) -> Option<String> {
    let at = html.find(&format!("name=\"{name}\""))?;
    let start = html[..at].rfind('<')?;
    let end = at + html[at..].find('>')?;
    let tag = &html[start..end];
    let key = format!(" {attr}=\"");
    let from = tag.find(&key)? + key.len();
    let len = tag[from..].find('"')?;
    Some(unescape(&tag[from..from + len]))
}

/// The message of the form's error alert.
fn alert(html: &str) -> Option<String> {
    let from = html.find("role=\"alert\">")? + "role=\"alert\">".len();
    let len = html[from..].find('<')?;
    Some(unescape(&html[from..from + len]))
}

fn error_code(body: &str) -> Option<String> {
    let v: Value = serde_json::from_str(body).ok()?;
    Some(v.get("error")?.as_str()?.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::site::config::TargetConfig;
    use crate::site::pages::{LoginForm, login};

    #[test]
    fn the_target_form_yields_its_fields() {
        let mut cfg = TargetConfig::default();
        cfg.login.pow_bits = 6;
        cfg.login.totp = true;
        let form = LoginForm {
            csrf: "tok&en",
            pow_challenge: Some("00ff"),
            error: Some("Wrong username or password."),
            sensor_nonce: None,
        };
        let html = login(&cfg, &form);
        assert_eq!(
            input_attr(&html, "csrf", "value").as_deref(),
            Some("tok&en")
        );
        assert_eq!(
            input_attr(&html, "pow_challenge", "value").as_deref(),
            Some("00ff")
        );
        assert_eq!(
            input_attr(&html, "pow_challenge", "data-bits").as_deref(),
            Some("6")
        );
        assert_eq!(input_attr(&html, "totp", "value"), None);
        assert!(html.contains("name=\"totp\""));
        assert_eq!(alert(&html).as_deref(), Some("Wrong username or password."));
    }

    #[tokio::test]
    async fn form_fields_solve_the_proof_of_work_and_add_the_code() {
        let mut cfg = TargetConfig::default();
        cfg.login.pow_bits = 8;
        cfg.login.totp = true;
        let html = login(
            &cfg,
            &LoginForm {
                csrf: "c",
                pow_challenge: Some("0123456789abcdef0123456789abcdef"),
                error: None,
                sensor_nonce: None,
            },
        );
        let account = Account {
            username: "alice".into(),
            password: "pw".into(),
            totp_secret: Some("JBSWY3DPEHPK3PXP".into()),
        };
        let fields = form_fields(&html, &account).await.expect("fields");
        let get = |k: &str| fields.iter().find(|(n, _)| *n == k).map(|(_, v)| v.clone());
        let nonce = get("pow_nonce").expect("a nonce");
        assert!(pow::verify("0123456789abcdef0123456789abcdef", &nonce, 8));
        assert_eq!(get("totp").map(|c| c.len()), Some(6));
        assert_eq!(get("csrf").as_deref(), Some("c"));
    }
}
