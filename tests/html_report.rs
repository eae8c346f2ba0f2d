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
        .args(["--", bin, "client", "--quiet", "--bug", bug])
        .status()
        .expect("sessionrange runs");
    assert_eq!(status.code(), Some(1), "the bug fails the scenario");
    html
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
