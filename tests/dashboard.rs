//! The live dashboard of `serve`, in a real Chromium: a session appears and dies while the page watches, and nothing is shown without the link.

#[path = "common/browser.rs"]
mod browser;
#[path = "common/lines.rs"]
mod lines;

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use fantoccini::{Client, Locator};
use sessionrange::{NetworkInfo, Range, RequestContext, Scenario, SessionId};
use tokio::io::{AsyncBufReadExt as _, BufReader};
use tokio::process::{Child, Command};

/// What the banner of `serve` gives a test.
#[derive(Default)]
struct Banner {
    site: String,
    admin: String,
    dashboard: String,
    proxies: Vec<String>,
}

/// Starts `serve` on free ports and reads its banner.
async fn serve(trace: &std::path::Path) -> (tokio::process::Child, Banner) {
    let (child, mut lines) = lines::spawn_serve(&[], trace);
    let mut b = Banner::default();
    while let Some(line) = lines.next_line().await.expect("the banner") {
        let word = |prefix: &str| {
            line.trim_start()
                .strip_prefix(prefix)
                .map(|r| r.split_whitespace().next().unwrap_or("").to_owned())
        };
        if let Some(site) = word("site:") {
            b.site = site.trim_end_matches('/').to_owned();
        }
        if let Some(admin) = word("admin:") {
            b.admin = admin.trim_end_matches("/sessions").to_owned();
        }
        if let Some(link) = word("dashboard:") {
            b.dashboard = link;
        }
        for name in ["home", "cloud"] {
            if let Some(proxy) = word(name) {
                b.proxies.push(proxy);
            }
        }
        if b.proxies.len() == 2 {
            break;
        }
    }
    (child, b)
}

/// A client through `proxy` with `token` as its bearer.
fn through(proxy: &str) -> reqwest::Client {
    let proxy = reqwest::Proxy::all(proxy).expect("a proxy URL");
    reqwest::Client::builder()
        .proxy(proxy)
        .build()
        .expect("a client")
}

/// Waits until `css` matches an element whose text contains `text`.
async fn until(browser: &Client, css: &str, text: &str) -> bool {
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline {
        for e in browser
            .find_all(Locator::Css(css))
            .await
            .unwrap_or_default()
        {
            if e.text().await.unwrap_or_default().contains(text) {
                return true;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

#[tokio::test]
async fn a_session_appears_and_dies_on_the_dashboard_while_it_watches() {
    let Some(driver) = browser::driver() else {
        return;
    };
    let trace =
        std::env::temp_dir().join(format!("sessionrange-dash-{}.jsonl", std::process::id()));
    let (mut serve, banner) = serve(&trace).await;
    let plain = reqwest::Client::new();
    // Nothing without the link: not on the admin listener, not on the site.
    let bare = plain
        .get(format!("{}/dashboard", banner.admin))
        .send()
        .await
        .expect("admin");
    assert_eq!(bare.status(), 401);
    let public = through(&banner.proxies[0])
        .get(format!("{}/dashboard", banner.site))
        .send()
        .await;
    assert_eq!(public.expect("site").status(), 404);

    let browser = driver.browser().await;
    browser
        .goto(&banner.dashboard)
        .await
        .expect("the link opens");
    assert!(
        browser
            .current_url()
            .await
            .expect("a url")
            .path()
            .ends_with("/dashboard")
    );
    assert!(
        until(&browser, "#status", "live").await,
        "the event stream never opened"
    );

    // A session is born through one exit and dies through another.
    let home = through(&banner.proxies[0]);
    let login = serde_json::json!({"username": "alice", "password": "wonderland"});
    let token: serde_json::Value = home
        .post(format!("{}/api/login", banner.site))
        .json(&login)
        .send()
        .await
        .expect("login")
        .json()
        .await
        .expect("a token");
    let token = token["access_token"]
        .as_str()
        .expect("an access token")
        .to_owned();
    let page = |c: &reqwest::Client| {
        c.get(format!("{}/api/v1/items?page=1", banner.site))
            .bearer_auth(&token)
            .send()
    };
    assert_eq!(page(&home).await.expect("a page").status(), 200);
    assert!(
        until(&browser, "#sessions td", "active").await,
        "the session never appeared"
    );
    let _ = page(&through(&banner.proxies[1])).await.expect("an answer");
    assert!(
        until(&browser, "#sessions td", "revoked(ASN_DRIFT)").await,
        "the death never showed"
    );
    assert!(
        until(&browser, "#log li", "revoke(ASN_DRIFT)").await,
        "no live event"
    );
    assert!(
        until(&browser, "#timeline details.death summary", "ASN_DRIFT").await,
        "no timeline"
    );
    let changed: Vec<String> = {
        let cells = browser
            .find_all(Locator::Css("#timeline td.changed"))
            .await
            .expect("cells");
        let mut out = Vec::new();
        for c in cells {
            out.push(c.text().await.expect("text"));
        }
        out
    };
    assert!(
        changed.contains(&"AS7922".to_owned()) && changed.contains(&"AS16509".to_owned()),
        "{changed:?}"
    );

    // A button: revoke alice's sessions from the page (none are left alive, so
    // the status says it was done).
    let revoke = browser
        .find(Locator::Css("#accounts tr[data-account=alice] button"))
        .await
        .expect("a button");
    revoke.click().await.expect("clicks");
    assert!(
        until(&browser, "#status", "alice: done").await,
        "the button did nothing"
    );

    assert_eq!(
        browser::console_problems(&browser).await,
        Vec::<String>::new()
    );
    browser::screenshot(&browser, "dashboard.png").await;
    // The link worked once.
    let again = plain.get(&banner.dashboard).send().await.expect("admin");
    assert_eq!(again.status(), 401);
    browser.close().await.expect("closes");
    serve.start_kill().expect("stops");
    let _ = std::fs::remove_file(&trace);
}

/// Starts `run --dashboard` on the bundled `scenario` with the client
/// `command`, its runs in `dir`; returns the process and the dashboard
/// link it printed for the scenario.
async fn run_with_dashboard(scenario: &str, command: &[&str], dir: &Path) -> (Child, String) {
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("scenarios/{scenario}.toml"));
    let mut run = Command::new(env!("CARGO_BIN_EXE_sessionrange"))
        .arg("run")
        .arg(&file)
        .args(["--quiet", "--dashboard", "--out"])
        .arg(dir)
        .arg("--")
        .args(command)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("run starts");
    let mut lines = BufReader::new(run.stderr.take().expect("stderr")).lines();
    let link = lines::after_prefix(&mut lines, &format!("{scenario}: dashboard ")).await;
    (run, link.expect("a dashboard link on stderr"))
}

/// A client holding the dashboard's cookie of `range`, from a fresh link.
async fn logged_in(range: &Range) -> reqwest::Client {
    let client = reqwest::Client::builder()
        .cookie_store(true)
        .build()
        .expect("a client");
    let token = range.state().dashboard.issue_link();
    let link = range.admin_url(&format!("/dashboard/login?token={token}"));
    let opened = client.get(link).send().await.expect("opens");
    assert!(opened.status().is_success());
    client
}

#[tokio::test]
async fn run_prints_a_dashboard_link_that_opens_while_the_scenario_runs() {
    let dir = std::env::temp_dir().join(format!("sessionrange-dash-run-{}", std::process::id()));
    // A client that only waits: the scenario's range stays up meanwhile.
    let (mut run, link) = run_with_dashboard("baseline", &["sh", "-c", "sleep 3"], &dir).await;
    let no_redirect = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("a client");
    let opened = no_redirect
        .get(&link)
        .send()
        .await
        .expect("the link answers");
    assert_eq!(opened.status(), 303);
    let cookie = opened.headers()["set-cookie"]
        .to_str()
        .expect("text")
        .to_owned();
    assert!(
        cookie.contains("HttpOnly")
            && cookie.contains("SameSite=Strict")
            && cookie.contains("Path=/dashboard"),
        "{cookie}"
    );
    let pair = cookie.split(';').next().expect("name=value").to_owned();
    let base = link.split("/dashboard").next().expect("the admin base");
    let page = no_redirect
        .get(format!("{base}/dashboard/sessions"))
        .header("cookie", &pair)
        .send()
        .await;
    let page: serde_json::Value = page.expect("sessions").json().await.expect("json");
    assert_eq!(page["page"], 0);
    // No other page may frame the dashboard and click its buttons.
    let framed = no_redirect
        .get(format!("{base}/dashboard"))
        .header("cookie", &pair)
        .send()
        .await;
    let framed = framed.expect("the page");
    assert_eq!(framed.headers()["x-frame-options"], "DENY");
    // The cookie reads, but changes nothing without the dashboard's header.
    let forged = no_redirect
        .post(format!("{base}/dashboard/reset"))
        .header("cookie", &pair)
        .send()
        .await;
    assert_eq!(forged.expect("reset").status(), 401);
    let status = run.wait().await.expect("run ends");
    assert_eq!(status.code(), Some(1), "a client that writes nothing fails");
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn ten_thousand_sessions_come_a_page_at_a_time() {
    let range = Range::start(&Scenario::named("baseline").expect("bundled"))
        .await
        .expect("starts");
    let st = range.state();
    let now = st.clock.now();
    for i in 0..10_000u128 {
        let ip = "127.0.1.9".parse().ok();
        let ctx = RequestContext::from_headers(ip, NetworkInfo::unknown(), [("user-agent", "t")]);
        let d = st
            .engine
            .login(SessionId::from_u128(i + 1), "alice", ctx, vec![], now);
        st.trace.record(&d);
    }
    let client = logged_in(&range).await;
    let page = client
        .get(range.admin_url("/dashboard/sessions?page=1000"))
        .send()
        .await;
    let page: serde_json::Value = page.expect("a page").json().await.expect("json");
    let counts = (
        page["total"].as_u64(),
        page["pages"].as_u64(),
        page["page"].as_u64(),
    );
    assert_eq!(counts, (Some(10_000), Some(200), Some(199)));
    assert_eq!(page["sessions"].as_array().map(Vec::len), Some(50));
    let timeline = client
        .get(range.admin_url("/dashboard/timeline"))
        .send()
        .await;
    let timeline = timeline.expect("drawn").text().await.expect("html");
    assert!(timeline.matches("<g class=\"session\"").count() <= 100);
}

#[tokio::test]
async fn during_a_run_the_dashboard_shows_sessions_born_and_killed_live() {
    let Some(driver) = browser::driver() else {
        return;
    };
    let browser = driver.browser().await;
    let dir = std::env::temp_dir().join(format!("sessionrange-dash-live-{}", std::process::id()));
    let bin = env!("CARGO_BIN_EXE_sessionrange");
    // The gateway moves each sticky session after a second: sessions are
    // born and killed all through the run, which the bug drags out.
    let bug = [bin, "client", "--quiet", "--bug", "keep-using-dead-session"];
    let (mut run, link) = run_with_dashboard("sticky-expiry", &bug, &dir).await;
    browser.goto(&link).await.expect("the link opens");
    assert!(
        until(&browser, "#sessions td", "active").await,
        "no live session seen"
    );
    assert!(
        until(&browser, "#sessions td", "revoked(ASN_DRIFT)").await,
        "no death seen"
    );
    assert!(
        until(&browser, "#log li", "revoke(ASN_DRIFT)").await,
        "no live event"
    );
    assert_eq!(
        browser::console_problems(&browser).await,
        Vec::<String>::new()
    );
    browser.close().await.expect("closes");
    let _ = run.wait().await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn any_account_name_can_be_revoked_from_the_dashboard() {
    let range = Range::start(&Scenario::named("baseline").expect("bundled"))
        .await
        .expect("starts");
    let st = range.state();
    let ctx = RequestContext::from_headers(None, NetworkInfo::unknown(), [("user-agent", "t")]);
    st.engine
        .login(SessionId::from_u128(7), "..", ctx, vec![], st.clock.now());
    let client = logged_in(&range).await;
    let revoked: serde_json::Value = client
        .post(range.admin_url("/dashboard/revoke?account=.."))
        .header("x-sessionrange-dashboard", "1")
        .send()
        .await
        .expect("revokes")
        .json()
        .await
        .expect("json");
    assert_eq!(revoked["revoked"], 1);
}
