//! Debian's Chromium, driven through its chromedriver on a loopback port of the test's own.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::wd::WebDriverCompatibleCommand;
use fantoccini::{Client, ClientBuilder};
use serde_json::{Value, json};

/// The chromedriver Debian's `chromium-driver` installs.
const DRIVER: &str = "/usr/bin/chromedriver";
/// Flags for a headless Chromium as root on a closed network: no
/// sandbox (root), no calls home, a profile of its own.
const FLAGS: [&str; 9] = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1100,1500",
];

/// A chromedriver process, killed on drop.
pub(crate) struct Driver {
    child: Child,
    port: u16,
    profile: std::path::PathBuf,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

/// Starts chromedriver, or `None` when it is not installed (CI sets
/// SESSIONRANGE_REQUIRE_BROWSER=1 so a missing one fails instead).
pub(crate) fn driver() -> Option<Driver> {
    let required = std::env::var("SESSIONRANGE_REQUIRE_BROWSER").is_ok_and(|v| v == "1");
    let there = std::path::Path::new(DRIVER).exists();
    assert!(
        there || !required,
        "{DRIVER} (Debian's chromium-driver) is required here"
    );
    if !there {
        eprintln!("skipped: {DRIVER} is not installed");
        return None;
    }
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let child = Command::new(DRIVER)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromedriver starts");
    let profile = std::env::temp_dir().join(format!("sessionrange-chromium-{port}"));
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "chromedriver did not listen on {port}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    Some(Driver {
        child,
        port,
        profile,
    })
}

impl Driver {
    /// A new headless Chromium session that keeps the browser's console.
    pub(crate) async fn browser(&self) -> Client {
        let mut args: Vec<String> = FLAGS.iter().map(|f| (*f).to_owned()).collect();
        args.push(format!("--user-data-dir={}", self.profile.display()));
        let caps = json!({
            "goog:chromeOptions": { "binary": "/usr/bin/chromium", "args": args },
            "goog:loggingPrefs": { "browser": "ALL" },
        });
        let Value::Object(caps) = caps else {
            unreachable!("an object")
        };
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        ClientBuilder::new(connector)
            .capabilities(caps)
            .connect(&format!("http://127.0.0.1:{}", self.port))
            .await
            .expect("a Chromium session")
    }
}

/// chromedriver's `POST /session/{id}/se/log`: the browser console so far.
#[derive(Debug)]
struct BrowserLog;

impl WebDriverCompatibleCommand for BrowserLog {
    fn endpoint(
        &self,
        base: &url::Url,
        session: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base.join(&format!("session/{}/se/log", session.unwrap_or_default()))
    }

    fn method_and_body(&self, _: &url::Url) -> (http::Method, Option<String>) {
        let body = json!({ "type": "browser" }).to_string();
        (http::Method::POST, Some(body))
    }
}

/// The console's warnings and errors (level `WARNING` or `SEVERE`).
pub(crate) async fn console_problems(browser: &Client) -> Vec<String> {
    let log = browser
        .issue_cmd(BrowserLog)
        .await
        .expect("the browser log");
    let entries = log.as_array().cloned().unwrap_or_default();
    entries
        .iter()
        .filter(|e| matches!(e["level"].as_str(), Some("SEVERE" | "WARNING")))
        .map(|e| e["message"].as_str().unwrap_or_default().to_owned())
        .collect()
}

/// A screenshot of the page as it is: checked not to be blank (a blank
/// page compresses to a few kilobytes), and kept as `name` in
/// $SESSIONRANGE_SCREENSHOTS when that is set (README's pictures).
pub(crate) async fn screenshot(browser: &Client, name: &str) {
    let shot = browser.screenshot().await.expect("a screenshot");
    let png = shot.starts_with(b"\x89PNG");
    assert!(
        png && shot.len() > 30_000,
        "a blank page? {} bytes",
        shot.len()
    );
    if let Ok(to) = std::env::var("SESSIONRANGE_SCREENSHOTS") {
        std::fs::write(std::path::Path::new(&to).join(name), &shot).expect("saved");
    }
}
