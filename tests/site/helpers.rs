//! Shared setup: targets on a manual clock, a cookie-keeping browser, an API client and the admin API.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use reqwest::cookie::{CookieStore, Jar};
use reqwest::redirect::Policy;
use reqwest::{Client, RequestBuilder, Response, StatusCode, Url};
use serde::Serialize;
use serde_json::{Value, json};
use sessionrange::TargetServer;
use sessionrange::site::config::TargetConfig;
use sessionrange::{Clock, Decision, Timestamp, Verdict};

/// A fixed start time for every target on a manual clock.
pub(crate) const T0: Timestamp = Timestamp::from_secs(1_790_000_000);

/// AS7922 Comcast, residential, US.
pub(crate) const COMCAST: &str = "127.0.1.10";
/// AS16509 Amazon, datacenter, US.
pub(crate) const AMAZON: &str = "127.0.2.10";
/// AS3320 Deutsche Telekom, residential, DE.
pub(crate) const TELEKOM: &str = "127.0.4.7";
/// AS7922 Comcast again, in another /24.
pub(crate) const COMCAST_OTHER: &str = "127.0.5.10";

/// The User-Agent every test client sends.
pub(crate) const USER_AGENT: &str = "range-test/1 (sessionrange integration tests)";

/// The default config, with the test client's socket peer (127.0.0.1)
/// trusted, so `X-Forwarded-For` presents another network.
pub(crate) fn behind_proxy() -> TargetConfig {
    let trusted = json!(["127.0.0.1"]);
    TargetConfig {
        trusted_proxies: serde_json::from_value(trusted).expect("a valid trusted proxy list"),
        ..TargetConfig::default()
    }
}

/// A target with `cfg` on a manual clock starting at [`T0`], and the clock.
pub(crate) async fn start(cfg: TargetConfig) -> (TargetServer, Clock) {
    let clock = Clock::manual(T0);
    let target = TargetServer::builder()
        .config(cfg)
        .clock(clock.clone())
        .start()
        .await
        .expect("the target starts");
    (target, clock)
}

/// The trace's lines of type `kind`, as JSON values, oldest first.
pub(crate) fn trace_lines(target: &TargetServer, kind: &str) -> Vec<Value> {
    let recent = target.state().trace.recent();
    let values = recent
        .iter()
        .map(|l| serde_json::from_str::<Value>(l).expect("each line is JSON"));
    values.filter(|v| v["type"] == kind).collect()
}

/// Moves a manual clock forward by `secs` seconds.
pub(crate) fn advance(clock: &Clock, secs: u64) {
    clock.advance(Duration::from_secs(secs));
}

/// The verdict of the last decision the target recorded.
pub(crate) fn last_verdict(target: &TargetServer) -> Verdict {
    last_decision(target).verdict
}

/// The last decision the target recorded.
pub(crate) fn last_decision(target: &TargetServer) -> Decision {
    target.events().pop().expect("at least one decision")
}

/// The value of the hidden `<input name="NAME" value="...">` of a page.
pub(crate) fn hidden_input(html: &str, name: &str) -> Option<String> {
    let at = html.find(&format!("name=\"{name}\""))?;
    let rest = &html[at..];
    let end = rest.find('>')?;
    let value = rest[..end].split("value=\"").nth(1)?;
    Some(value.split('"').next()?.to_owned())
}

/// The CSRF token of a login page.
pub(crate) fn csrf_of(html: &str) -> String {
    hidden_input(html, "csrf").expect("the login page has a csrf field")
}

/// A header as text, or "" when absent.
pub(crate) fn header(res: &Response, name: &str) -> String {
    res.headers()
        .get(name)
        .map(|v| v.to_str().expect("an ASCII header").to_owned())
        .unwrap_or_default()
}

/// Every `Set-Cookie` of a response.
pub(crate) fn set_cookies(res: &Response) -> Vec<String> {
    res.headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().expect("an ASCII cookie").to_owned())
        .collect()
}

/// Whether the response deletes the cookie `name`.
pub(crate) fn clears_cookie(res: &Response, name: &str) -> bool {
    set_cookies(res)
        .iter()
        .any(|c| c.starts_with(&format!("{name}=;")) && c.contains("Max-Age=0"))
}

/// Fails unless `status` is below 500.
pub(crate) fn assert_not_5xx(status: StatusCode, what: &str) {
    assert!(
        !status.is_server_error(),
        "{what}: the target answered {status}"
    );
}

/// A client as a test builds it: no redirects followed, a fixed User-Agent.
fn client_builder() -> reqwest::ClientBuilder {
    Client::builder()
        .redirect(Policy::none())
        .user_agent(USER_AGENT)
        .timeout(Duration::from_secs(10))
}

/// A browser-like client: a cookie jar, no automatic redirects, and the
/// address it presents through a trusted `X-Forwarded-For` hop.
pub(crate) struct Browser {
    client: Client,
    jar: Arc<Jar>,
    base: Url,
    forwarded_for: Option<String>,
}

impl Browser {
    /// A browser with an empty jar that sends no forwarding header.
    pub(crate) fn new(target: &TargetServer) -> Self {
        let jar = Arc::new(Jar::default());
        Self::with_jar(target, jar, None)
    }

    /// A browser that presents `ip` through `X-Forwarded-For`.
    pub(crate) fn via(target: &TargetServer, ip: &str) -> Self {
        let mut b = Self::new(target);
        b.forwarded_for = Some(ip.to_owned());
        b
    }

    /// A browser whose sockets are bound to the loopback address `ip`.
    pub(crate) fn bound(target: &TargetServer, ip: &str) -> Self {
        Self::with_jar(target, Arc::new(Jar::default()), Some(ip))
    }

    /// The same cookie jar, on sockets bound to another loopback address.
    pub(crate) fn rebound(&self, target: &TargetServer, ip: &str) -> Self {
        Self::with_jar(target, Arc::clone(&self.jar), Some(ip))
    }

    fn with_jar(target: &TargetServer, jar: Arc<Jar>, local: Option<&str>) -> Self {
        let mut builder = client_builder().cookie_provider(Arc::clone(&jar));
        if let Some(ip) = local {
            let ip: IpAddr = ip.parse().expect("a loopback address");
            builder = builder.local_address(ip);
        }
        Self {
            client: builder.build().expect("the client builds"),
            jar,
            base: target.url("/").parse().expect("the target's URL"),
            forwarded_for: None,
        }
    }

    /// From now on, presents `ip` through `X-Forwarded-For`.
    pub(crate) fn move_to(&mut self, ip: &str) {
        self.forwarded_for = Some(ip.to_owned());
    }

    /// The same cookie jar and address, talking to another instance.
    pub(crate) fn on(&self, target: &TargetServer) -> Self {
        let mut b = Self::with_jar(target, Arc::clone(&self.jar), None);
        b.forwarded_for = self.forwarded_for.clone();
        b
    }

    fn url(&self, path: &str) -> Url {
        self.base.join(path).expect("a path")
    }

    fn hop(&self, rb: RequestBuilder) -> RequestBuilder {
        match &self.forwarded_for {
            Some(ip) => rb.header("x-forwarded-for", ip),
            None => rb,
        }
    }

    /// A GET of `path`, ready to send.
    pub(crate) fn get(&self, path: &str) -> RequestBuilder {
        self.hop(self.client.get(self.url(path)))
    }

    /// An empty POST of `path`, ready to send.
    pub(crate) fn post(&self, path: &str) -> RequestBuilder {
        self.hop(self.client.post(self.url(path)))
    }

    /// A form POST of `fields` to `path`, ready to send.
    pub(crate) fn post_form<T: Serialize + ?Sized>(
        &self,
        path: &str,
        fields: &T,
    ) -> RequestBuilder {
        self.hop(self.client.post(self.url(path))).form(fields)
    }

    /// Sends a GET of `path`.
    pub(crate) async fn fetch(&self, path: &str) -> Response {
        self.get(path).send().await.expect("the target answers")
    }

    /// The value of the cookie `name` the browser would send.
    pub(crate) fn cookie(&self, name: &str) -> Option<String> {
        let header = self.jar.cookies(&self.base)?;
        let text = header.to_str().expect("ASCII cookies").to_owned();
        text.split("; ")
            .filter_map(|p| p.split_once('='))
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.to_owned())
    }

    /// Stores a cookie as if the target had set it.
    pub(crate) fn set_cookie(&self, name: &str, value: &str) {
        self.jar
            .add_cookie_str(&format!("{name}={value}; Path=/"), &self.base);
    }

    /// Deletes the cookie `name` from the jar.
    pub(crate) fn strip_cookie(&self, name: &str) {
        self.jar
            .add_cookie_str(&format!("{name}=; Path=/; Max-Age=0"), &self.base);
    }

    /// Visits the landing page, which sets the companion cookies.
    pub(crate) async fn land(&self) {
        let res = self.fetch("/").await;
        assert_eq!(res.status(), StatusCode::OK, "landing page");
    }

    /// Posts `fields` to the login form as they are.
    pub(crate) async fn post_login<T: Serialize + ?Sized>(&self, fields: &T) -> Response {
        self.post_form("/login", fields)
            .send()
            .await
            .expect("the target answers")
    }

    /// Fetches the login form and returns its HTML.
    pub(crate) async fn login_page(&self) -> String {
        let res = self.fetch("/login").await;
        assert_eq!(res.status(), StatusCode::OK, "login page");
        res.text().await.expect("the login page")
    }

    /// Submits the login form with the CSRF token of a fresh login page.
    pub(crate) async fn submit_login(&self, user: &str, password: &str) -> Response {
        let csrf = csrf_of(&self.login_page().await);
        let fields = [("csrf", &*csrf), ("username", user), ("password", password)];
        self.post_form("/login", &fields)
            .send()
            .await
            .expect("the target answers")
    }

    /// Lands, logs in with the form and checks the redirect to `/account`.
    pub(crate) async fn log_in(&self, user: &str, password: &str) {
        self.land().await;
        let res = self.submit_login(user, password).await;
        assert_eq!(res.status(), StatusCode::SEE_OTHER, "form login of {user}");
        assert_eq!(header(&res, "location"), "/account");
        assert!(self.cookie("sr_session").is_some(), "a session cookie");
    }

    /// Reads catalog page `n` and checks it is served.
    pub(crate) async fn read_catalog(&self, n: u32) -> String {
        let res = self.fetch(&format!("/catalog?page={n}")).await;
        assert_eq!(res.status(), StatusCode::OK, "catalog page {n}");
        res.text().await.expect("a catalog page")
    }
}

/// An access token and a refresh token.
#[derive(Clone, Debug)]
pub(crate) struct Tokens {
    pub(crate) access: String,
    pub(crate) refresh: String,
}

impl Tokens {
    /// Reads the token response of a login or refresh.
    pub(crate) async fn from_response(res: Response) -> Self {
        assert_eq!(res.status(), StatusCode::OK, "a token response");
        assert_eq!(header(&res, "cache-control"), "no-store");
        let body: Value = res.json().await.expect("a JSON token response");
        assert_eq!(body["token_type"], "Bearer");
        let field = |f: &str| body[f].as_str().expect("a token").to_owned();
        Self {
            access: field("access_token"),
            refresh: field("refresh_token"),
        }
    }
}

/// A JSON API client with no cookies, optionally behind a trusted hop.
pub(crate) struct Api {
    client: Client,
    base: String,
    forwarded_for: Option<String>,
}

impl Api {
    /// An API client that presents the socket peer itself.
    pub(crate) fn new(target: &TargetServer) -> Self {
        Self {
            client: client_builder().build().expect("the client builds"),
            base: target.url(""),
            forwarded_for: None,
        }
    }

    /// An API client that reaches the target through the proxy at `proxy`.
    pub(crate) fn through(target: &TargetServer, proxy: &str) -> Self {
        let proxy = reqwest::Proxy::all(proxy).expect("a proxy URL");
        Self {
            client: client_builder()
                .proxy(proxy)
                .build()
                .expect("the client builds"),
            ..Self::new(target)
        }
    }

    /// An API client that presents `ip` through `X-Forwarded-For`.
    pub(crate) fn via(target: &TargetServer, ip: &str) -> Self {
        Self {
            forwarded_for: Some(ip.to_owned()),
            ..Self::new(target)
        }
    }

    /// From now on, presents `ip` through `X-Forwarded-For`.
    pub(crate) fn move_to(&mut self, ip: &str) {
        self.forwarded_for = Some(ip.to_owned());
    }

    fn hop(&self, rb: RequestBuilder) -> RequestBuilder {
        let rb = rb.header("accept", "application/json");
        match &self.forwarded_for {
            Some(ip) => rb.header("x-forwarded-for", ip),
            None => rb,
        }
    }

    /// A GET of `path`, ready to send.
    pub(crate) fn get(&self, path: &str) -> RequestBuilder {
        self.hop(self.client.get(format!("{}{path}", self.base)))
    }

    /// A POST of `path`, ready to send.
    pub(crate) fn post(&self, path: &str) -> RequestBuilder {
        self.hop(self.client.post(format!("{}{path}", self.base)))
    }

    /// Sends `body` as JSON to `path`.
    pub(crate) async fn post_json(&self, path: &str, body: &Value) -> Response {
        self.post(path)
            .json(body)
            .send()
            .await
            .expect("the target answers")
    }

    /// `POST /api/login` with these credentials.
    pub(crate) async fn login_raw(&self, user: &str, password: &str) -> Response {
        let body = json!({ "username": user, "password": password });
        self.post_json("/api/login", &body).await
    }

    /// Logs in and returns the tokens.
    pub(crate) async fn login(&self, user: &str, password: &str) -> Tokens {
        Tokens::from_response(self.login_raw(user, password).await).await
    }

    /// `POST /api/token/refresh` with `refresh`.
    pub(crate) async fn refresh(&self, refresh: &str) -> Response {
        let body = json!({ "refresh_token": refresh });
        self.post_json("/api/token/refresh", &body).await
    }

    /// `POST /api/token/revoke` with `token`, expecting RFC 7009's 200.
    pub(crate) async fn revoke(&self, token: &str) {
        let res = self
            .post_json("/api/token/revoke", &json!({ "token": token }))
            .await;
        assert_eq!(res.status(), StatusCode::OK, "revocation answers 200");
    }

    /// A GET of `path` with `Authorization: Bearer access`.
    pub(crate) async fn get_with(&self, path: &str, access: &str) -> Response {
        self.get(path)
            .bearer_auth(access)
            .send()
            .await
            .expect("the target answers")
    }
}

/// Reads the JSON body and checks the status.
pub(crate) async fn json_body(res: Response, status: StatusCode) -> Value {
    assert_eq!(res.status(), status, "status of {}", res.url());
    res.json().await.expect("a JSON body")
}

/// The admin API of a target, with its token.
pub(crate) struct Admin {
    client: Client,
    base: String,
    token: String,
}

impl Admin {
    /// The admin API of `target`.
    pub(crate) fn new(target: &TargetServer) -> Self {
        Self {
            client: client_builder().build().expect("the client builds"),
            base: target.admin_url(""),
            token: target.admin_token().to_owned(),
        }
    }

    /// An authorized GET of `path`, ready to send.
    pub(crate) fn get(&self, path: &str) -> RequestBuilder {
        self.client
            .get(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
    }

    /// An authorized POST of `path`, ready to send.
    pub(crate) fn post(&self, path: &str) -> RequestBuilder {
        self.client
            .post(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
    }

    /// GETs `path` and parses the JSON answer.
    pub(crate) async fn json(&self, path: &str) -> Value {
        let res = self.get(path).send().await.expect("the admin API answers");
        json_body(res, StatusCode::OK).await
    }

    /// GETs `path` and returns its lines.
    pub(crate) async fn lines(&self, path: &str) -> Vec<String> {
        let res = self.get(path).send().await.expect("the admin API answers");
        assert_eq!(res.status(), StatusCode::OK, "{path}");
        let text = res.text().await.expect("a text body");
        text.lines().map(str::to_owned).collect()
    }

    /// The security invalidations recorded on `account`.
    pub(crate) async fn invalidations(&self, account: &str) -> Vec<Value> {
        let accounts = self.json("/accounts").await;
        let list = &accounts[account]["invalidations"];
        list.as_array().cloned().unwrap_or_default()
    }
}

/// A directory under the system's temp dir, removed on drop.
pub(crate) struct TempDir(PathBuf);

impl TempDir {
    /// A fresh, empty directory whose name contains `label`.
    pub(crate) fn new(label: &str) -> Self {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let name = format!("sessionrange-{label}-{}-{n}", std::process::id());
        let dir = std::env::temp_dir().join(name);
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("a temp dir");
        Self(dir)
    }

    /// The path of `name` inside the directory.
    pub(crate) fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }

    /// The directory.
    #[cfg_attr(
        not(feature = "cli"),
        allow(dead_code, reason = "only the binary's tests use it")
    )]
    pub(crate) fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
