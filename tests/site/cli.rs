//! `sessionrange serve` as a process: the banner, a real request, and the errors it refuses to start with.

use std::process::{Output, Stdio};
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;
use tokio::process::Command;

use crate::helpers::*;
use crate::lines::spawn_serve;

const BIN: &str = env!("CARGO_BIN_EXE_sessionrange");

/// Runs `sessionrange serve ARGS` to completion, for the cases that must fail fast.
async fn serve_fails(args: &[&str]) -> (Output, String) {
    let run = Command::new(BIN)
        .arg("serve")
        .args(args)
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(10), run)
        .await
        .expect("serve exits within 10 s")
        .expect("the binary runs");
    assert!(!out.status.success(), "serve {args:?} must fail");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    (out, stderr)
}

#[tokio::test]
async fn serve_prints_its_url_and_serves_the_login_page() {
    let dir = TempDir::new("serve");
    let trace = dir.join("trace.jsonl");
    let (mut child, mut lines) = spawn_serve(&[], &trace);
    let (site, proxy, refused) = site_and_home(&mut lines).await;
    assert!(site.starts_with("http://127.0.0.1:"), "{site}");
    assert!(site.ends_with('/'), "{site}");
    assert!(refused, "the banner says direct access is refused");

    // The bundled scenario has a pool: straight to the site is refused.
    let res = reqwest::get(format!("{site}login"))
        .await
        .expect("the target answers");
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    assert!(res.text().await.expect("a page").contains("DIRECT_ACCESS"));

    // Through the scenario's pool: its `home` exit is a Comcast address.
    let via = reqwest::Client::builder()
        .proxy(reqwest::Proxy::all(&proxy).expect("a proxy URL"))
        .build()
        .expect("a client");
    let res = via
        .get(format!("{site}login"))
        .send()
        .await
        .expect("answer");
    assert_eq!(res.status(), StatusCode::OK);
    let html = res.text().await.expect("the login page");
    assert!(html.contains("id=\"login-form\""));
    let res = via
        .post(format!("{site}api/login"))
        .json(&serde_json::json!({"username": "alice", "password": "wonderland"}))
        .send()
        .await
        .expect("the target answers");
    assert_eq!(res.status(), StatusCode::OK);
    let written = std::fs::read_to_string(&trace).expect("the trace file");
    let types: Vec<String> = written
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).expect("JSON"))
        .map(|v| v["type"].as_str().unwrap_or_default().to_owned())
        .filter(|t| t != "proxy")
        .collect();
    assert_eq!(
        types,
        [
            "refused",
            "decision",
            "decision",
            "login_flow",
            "login_attempt"
        ],
        "the direct request, the login velocity gate, the login, its login flow and the login attempt are traced"
    );
    let seen = via.get(format!("{site}__range/fingerprint")).send().await;
    let seen = json_body(seen.expect("the proxy answers"), StatusCode::OK).await;
    assert_eq!(seen["ip"], "127.0.1.20", "through {proxy}");
    let direct = reqwest::get(format!("{site}__range/fingerprint")).await;
    assert_eq!(
        direct.expect("answer").status(),
        StatusCode::OK,
        "the echo stays open"
    );

    child.start_kill().expect("the server can be killed");
    let status = tokio::time::timeout(Duration::from_secs(10), child.wait())
        .await
        .expect("the server stops")
        .expect("its status");
    assert!(!status.success(), "killed, not exited");
}

#[tokio::test]
async fn serve_keeps_serving_and_stops_cleanly_when_nobody_reads_its_stdout() {
    let dir = TempDir::new("serve-closed-stdout");
    let trace = dir.join("trace.jsonl");
    let (mut child, mut lines) = spawn_serve(&[], &trace);
    let site = crate::lines::after_prefix(&mut lines, "  site:   ").await;
    let site = site.expect("the banner names the site");
    drop(lines); // whatever serve prints from now on meets a closed pipe
    let echo = reqwest::get(format!("{site}__range/fingerprint")).await;
    assert_eq!(echo.expect("still serving").status(), StatusCode::OK);
    let pid = nix::unistd::Pid::from_raw(i32::try_from(child.id().expect("a pid")).expect("a pid"));
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT).expect("interrupted");
    let status = tokio::time::timeout(Duration::from_secs(10), child.wait())
        .await
        .expect("the server stops")
        .expect("its status");
    assert_eq!(
        status.code(),
        Some(0),
        "a closed stdout is no reason to panic"
    );
}

#[tokio::test]
async fn serve_refuses_to_listen_beyond_loopback() {
    let dir = TempDir::new("serve-any");
    let trace_file = dir.join("runs/trace.jsonl");
    let trace = trace_file.to_str().expect("a UTF-8 path");
    let (_, stderr) = serve_fails(&["--addr", "0.0.0.0:0", "--trace", trace]).await;
    assert!(stderr.contains("0.0.0.0:0"), "{stderr}");
    assert!(stderr.contains("not a loopback address"), "{stderr}");
    let (_, stderr) = serve_fails(&[
        "--addr",
        "127.0.0.1:0",
        "--admin-addr",
        "0.0.0.0:0",
        "--trace",
        trace,
    ])
    .await;
    assert!(stderr.contains("not a loopback address"), "{stderr}");
    assert!(!dir.join("runs").exists(), "no trace left behind");
}

#[tokio::test]
async fn serve_names_the_file_and_line_of_a_bad_scenario() {
    let dir = TempDir::new("serve-bad");
    let trace = dir.join("trace.jsonl");
    let trace = trace.to_str().expect("a UTF-8 path");
    let cases = [
        (
            "unknown.toml",
            "name = \"bad\"\n\n[target.login]\npow_bits = 4\nfoo = 1\n",
            ":5:",
            "foo",
        ),
        (
            "impossible.toml",
            "name = \"bad\"\n[target.login]\n\npow_bits = 40\n",
            ":4:",
            "target.login.pow_bits",
        ),
    ];
    for (file, text, line, field) in cases {
        let path = dir.join(file);
        std::fs::write(&path, text).expect("the scenario is written");
        let path = path.to_str().expect("a UTF-8 path");
        let args = [
            "--scenario",
            path,
            "--addr",
            "127.0.0.1:0",
            "--trace",
            trace,
        ];
        let (_, stderr) = serve_fails(&args).await;
        assert!(stderr.contains(&format!("{path}{line}")), "{stderr}");
        assert!(stderr.contains(field), "{stderr}");
    }
    let missing = dir.join("missing.toml");
    let missing = missing.to_str().expect("a UTF-8 path");
    let (_, stderr) = serve_fails(&["--scenario", missing, "--trace", trace]).await;
    assert!(stderr.contains(missing), "{stderr}");
    assert!(
        dir.path().join("trace.jsonl").metadata().is_err(),
        "no trace opened"
    );
}

#[tokio::test]
async fn serve_cuts_its_trace_at_trace_max_and_keeps_three_old_files() {
    let dir = TempDir::new("serve-trace-max");
    let trace = dir.join("trace.jsonl");
    let (_child, mut lines) = spawn_serve(&["--trace-max", "2K"], &trace);
    let find_site = async {
        while let Some(line) = lines.next_line().await.expect("stdout") {
            if let Some(url) = line.strip_prefix("  site:   ") {
                return url.to_owned();
            }
        }
        panic!("the banner has no site line");
    };
    let site = tokio::time::timeout(Duration::from_secs(10), find_site)
        .await
        .expect("the banner within 10 s");
    // Each direct request is refused and traced: about 150 bytes a line.
    let client = reqwest::Client::new();
    for _ in 0..200 {
        let res = client
            .get(format!("{site}login"))
            .send()
            .await
            .expect("an answer");
        assert_eq!(res.status(), StatusCode::FORBIDDEN);
    }
    let name = |n: usize| dir.join(&format!("trace.jsonl.{n}"));
    for n in 1..=3 {
        let len = std::fs::metadata(name(n)).expect("an old file").len();
        assert!(len <= 2048, "file .{n} holds {len} bytes");
    }
    assert!(!name(4).exists(), "only three old files are kept");
    let current = std::fs::read_to_string(&trace).expect("the current file");
    let first: Value = serde_json::from_str(current.lines().next().expect("a line")).expect("JSON");
    assert_eq!(first["type"], "trace_rotated", "{first}");
    assert!(
        first["dropped_files"].as_u64().expect("a count") > 0,
        "{first}"
    );
}

/// The site URL and the `home` proxy URL of a `serve` banner, and whether
/// it says that direct access is refused.
async fn site_and_home(
    lines: &mut tokio::io::Lines<tokio::io::BufReader<tokio::process::ChildStdout>>,
) -> (String, String, bool) {
    let find = async {
        let (mut site, mut refused) = (None, false);
        while let Some(line) = lines.next_line().await.expect("stdout") {
            if let Some(url) = line.strip_prefix("  site:   ") {
                site = Some(url.to_owned());
            }
            refused |= line.starts_with("direct access is refused");
            let proxy = line.trim_start().strip_prefix("home").map(str::trim_start);
            if let (Some(site), Some(proxy)) = (&site, proxy) {
                let url = proxy.split_whitespace().next().expect("a proxy URL");
                return (site.clone(), url.to_owned(), refused);
            }
        }
        panic!("the banner has no site line or no `home` proxy");
    };
    tokio::time::timeout(Duration::from_secs(10), find)
        .await
        .expect("the banner within 10 s")
}

#[tokio::test]
async fn serve_restarted_on_the_same_redis_keeps_sessions_and_tokens() {
    let Some(redis) = crate::redis::Redis::start("serve") else {
        return;
    };
    let dir = TempDir::new("serve-store");
    let store = redis.url();
    let args = ["--store", store.as_str()];
    let (first, mut lines) = spawn_serve(&args, &dir.join("one.jsonl"));
    let (site, proxy, _) = site_and_home(&mut lines).await;
    let via = |proxy: &str| {
        let proxy = reqwest::Proxy::all(proxy).expect("a proxy URL");
        reqwest::Client::builder()
            .proxy(proxy)
            .build()
            .expect("a client")
    };
    let body = serde_json::json!({"username": "alice", "password": "wonderland"});
    let res = via(&proxy)
        .post(format!("{site}api/login"))
        .json(&body)
        .send()
        .await;
    let tokens = json_body(res.expect("the target answers"), StatusCode::OK).await;
    let access = tokens["access_token"].as_str().expect("a token").to_owned();
    drop(first);
    let (_second, mut lines) = spawn_serve(&args, &dir.join("two.jsonl"));
    let (site, proxy, _) = site_and_home(&mut lines).await;
    let res = via(&proxy)
        .get(format!("{site}api/v1/items?page=1"))
        .bearer_auth(&access)
        .send()
        .await;
    let page = json_body(res.expect("the target answers"), StatusCode::OK).await;
    assert_eq!(
        page["page"], 1,
        "the session born before the restart reads on"
    );
}
