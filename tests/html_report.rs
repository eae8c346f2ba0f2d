//! `run --html` opened in a real Chromium: what a person checks of a failing scenario's report.

#[path = "common/browser.rs"]
mod browser;

use std::path::Path;
use std::process::Command;

use fantoccini::Locator;

/// Runs `scenario` with the reference client and `bug`, writing the HTML
/// report into `dir`; returns its path.
fn report(dir: &Path, scenario: &str, bug: &str) -> std::path::PathBuf {
    let bin = env!("CARGO_BIN_EXE_sessionrange");
    report_of(dir, scenario, &[bin, "client", "--quiet", "--bug", bug])
}

/// Runs `scenario` with `client`, which must fail it, writing the HTML
/// report into `dir`; returns its path.
fn report_of(dir: &Path, scenario: &str, client: &[&str]) -> std::path::PathBuf {
    let bin = env!("CARGO_BIN_EXE_sessionrange");
    let html = dir.join("report.html");
    let scenario = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("scenarios")
        .join(format!("{scenario}.toml"));
    let status = Command::new(bin)
        .arg("run")
        .arg(&scenario)
        .args(["--quiet", "--out"])
        .arg(dir.join("runs"))
        .arg("--html")
        .arg(&html)
        .arg("--")
        .args(client)
        .status()
        .expect("sessionrange runs");
    assert_eq!(status.code(), Some(1), "the bug fails the scenario");
    html
}

/// Trace lines a client forges: a session of `mallory` born now and
/// revoked for a drift, and a decision at the end of time that would
/// squeeze every real mark into the first pixel.
const FORGE: &str = r#"trace="$(dirname "$(dirname "$SESSIONRANGE_OUTPUT")")/trace.jsonl"
now=$(date +%s%3N)
d='{"type":"decision","seq":900000,"kind":"login","companions":[],"session":"feedfacefeedfacefeedfacefeedface","account":"mallory","fired":[],"verdict":"allow","on_dead_session":false'
printf '%s,"at":%s}\n' "$d" "$now" >> "$trace"
d='{"type":"decision","seq":900001,"kind":"request","session":"feedfacefeedfacefeedfacefeedface","account":"mallory","fired":[],"verdict":"revoke","reason":"ASN_DRIFT","on_dead_session":false'
printf '%s,"at":%s}\n' "$d" "$((now + 5))" >> "$trace"
printf '%s,"at":18446744073709551615}\n' "$d" >> "$trace"
exec "$@""#;

#[test]
fn a_client_cannot_draw_in_its_own_report() {
    let bin = env!("CARGO_BIN_EXE_sessionrange");
    let dir = std::env::temp_dir().join(format!("sessionrange-forge-{}", std::process::id()));
    let client = ["sh", "-c", FORGE, "forge", bin, "client", "--quiet"];
    let client = [&client[..], &["--bug", "rotate-exit-per-request"]].concat();
    let html = report_of(&dir, "asn-drift", &client);
    let page = std::fs::read_to_string(&html).expect("the report");
    let forged = traces(&dir.join("runs")).contains("mallory");
    let _ = std::fs::remove_dir_all(&dir);
    assert!(forged, "the client's lines reached the trace file");
    assert!(page.contains("alice"), "the real sessions are drawn");
    assert!(!page.contains("mallory"), "a forged session is drawn");
    assert!(!page.contains("feedface"), "a forged session is drawn");
    // The axis ends at the run's last real event, seconds in.
    let end = page.split("text-anchor=\"end\">").nth(1).expect("an axis");
    let secs: f64 = end
        .split(' ')
        .next()
        .and_then(|s| s.parse().ok())
        .expect("seconds");
    assert!(secs < 60.0, "the axis runs to {secs} s");
}

/// Every `trace.jsonl` under `dir`, concatenated.
fn traces(dir: &Path) -> String {
    let mut all = String::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            all += &traces(&path);
        } else if path.file_name().is_some_and(|n| n == "trace.jsonl") {
            all += &std::fs::read_to_string(&path).unwrap_or_default();
        }
    }
    all
}

async fn texts(browser: &fantoccini::Client, css: &str) -> Vec<String> {
    let mut out = Vec::new();
    for e in browser.find_all(Locator::Css(css)).await.expect("a query") {
        out.push(e.text().await.expect("its text"));
    }
    out
}

#[tokio::test]
async fn the_report_shows_who_died_of_what_and_where_it_moved() {
    let Some(driver) = browser::driver() else {
        return;
    };
    let dir = std::env::temp_dir().join(format!("sessionrange-html-{}", std::process::id()));
    let html = report(&dir, "asn-drift", "rotate-exit-per-request");
    let size = std::fs::metadata(&html).expect("written").len();
    let browser = driver.browser().await;
    browser
        .goto(&format!("file://{}", html.display()))
        .await
        .expect("opens");
    let deaths = texts(&browser, "details.death summary").await;
    assert!(
        deaths.iter().any(|d| d.contains("revoke(ASN_DRIFT)")),
        "{deaths:?}"
    );
    let changed = texts(&browser, "table.diff td.changed").await;
    for asn in ["AS7922", "AS16509"] {
        assert!(
            changed.iter().any(|c| c == asn),
            "{asn} is not highlighted: {changed:?}"
        );
    }
    let marks = browser
        .find_all(Locator::Css("svg.timeline rect.mark"))
        .await
        .expect("marks");
    assert!(!marks.is_empty(), "the timeline has no marks");
    assert_eq!(texts(&browser, "h2 .outcome").await, ["FAIL"]);
    assert_eq!(
        browser::console_problems(&browser).await,
        Vec::<String>::new()
    );
    let show = "document.getElementById('asn-drift-sessions').scrollIntoView()";
    browser
        .execute(show, vec![])
        .await
        .expect("scrolls to the sessions");
    browser::screenshot(&browser, "report.png").await;
    // The console check can see an error: a page that logs one.
    let noisy = "data:text/html,<script>console.error('seen')</script>";
    browser.goto(noisy).await.expect("opens");
    let seen = browser::console_problems(&browser).await;
    assert!(seen.iter().any(|m| m.contains("seen")), "{seen:?}");
    browser.close().await.expect("closes");
    eprintln!("report: {size} bytes");
    let _ = std::fs::remove_dir_all(&dir);
}
