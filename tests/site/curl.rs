//! The real `curl` with a cookie jar against the target: the flow the serve banner suggests.

use std::path::{Path, PathBuf};
use std::process::Command;

use sessionrange::{Reason, Verdict};

use crate::helpers::*;

/// Whether `curl` can be run.
fn curl_available() -> bool {
    Command::new("curl")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Runs curl with a cookie jar and `args`; returns its stdout.
fn curl(jar: &Path, args: &[&str]) -> String {
    let jar = jar.to_str().expect("a UTF-8 path");
    let out = Command::new("curl")
        .args(["--silent", "--show-error", "--max-time", "10"])
        .args(["--cookie", jar, "--cookie-jar", jar])
        .args(args)
        .output()
        .expect("curl runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "curl {args:?}: {stderr}");
    String::from_utf8(out.stdout).expect("UTF-8 output")
}

/// Runs curl discarding the body; returns "STATUS REDIRECT_URL".
fn status(jar: &Path, args: &[&str]) -> String {
    let format = ["-o", "/dev/null", "-w", "%{http_code} %{redirect_url}"];
    curl(jar, &[&format[..], args].concat())
}

/// The whole flow, blocking: landing, login page, form login, catalog,
/// drift, and the request after it.
fn cookie_flow(base: &str, jar: &Path) -> Vec<String> {
    let url = |p: &str| format!("{base}{p}");
    let mut seen = Vec::new();
    curl(jar, &["-o", "/dev/null", &url("/")]);
    let csrf = csrf_of(&curl(jar, &[&url("/login")]));
    let form = format!("csrf={csrf}&username=alice&password=wonderland");
    seen.push(status(jar, &["-d", &form, &url("/login")]));
    let catalog = curl(jar, &[&url("/catalog?page=1")]);
    seen.push(format!("rows {}", catalog.matches("<tr data-id=").count()));
    let hop = "X-Forwarded-For: 127.0.2.10";
    seen.push(status(jar, &["-H", hop, &url("/catalog?page=2")]));
    seen.push(status(jar, &[&url("/catalog?page=2")]));
    seen
}

#[tokio::test]
async fn curl_with_a_cookie_jar_logs_in_reads_and_is_sent_to_login_after_drift() {
    if !curl_available() {
        println!("curl is not on PATH: skipping the curl cookie-flow test");
        return;
    }
    let (target, _clock) = start(behind_proxy()).await;
    let dir = TempDir::new("curl");
    let jar: PathBuf = dir.join("jar.txt");
    let base = target.url("");
    let jar_path = jar.clone();
    let seen = tokio::task::spawn_blocking(move || cookie_flow(&base, &jar_path))
        .await
        .expect("the curl flow finishes");

    let base = target.url("");
    assert_eq!(seen[0], format!("303 {base}/account"), "form login");
    assert_eq!(seen[1], "rows 25", "catalog page 1");
    assert_eq!(
        seen[2],
        format!("302 {base}/login?reason=ASN_DRIFT"),
        "drift through a trusted hop"
    );
    assert_eq!(seen[3], format!("303 {base}/login"), "the cookie is gone");
    let events = target.events();
    let drift = events
        .iter()
        .find(|d| d.verdict != Verdict::Allow)
        .expect("a refusal");
    assert_eq!(drift.verdict, Verdict::Revoke(Reason::AsnDrift));
    let jar_text = std::fs::read_to_string(&jar).expect("the jar");
    assert!(jar_text.contains("_sr_aid"), "companions kept:\n{jar_text}");
    assert!(
        !jar_text.contains("sr_session\t"),
        "session cleared:\n{jar_text}"
    );
}
