//! The pool with curl and Python `requests`, bad input to the proxies, and PROXY headers where they do not belong.

use crate::python::python_requests;

use std::process::Command;

use serde_json::Value;
use sessionrange::proxy_protocol;
use sessionrange::site::config::TargetConfig;
use sessionrange::{Reason, Verdict};

use crate::helpers::*;
use crate::pool::{TWO_EXITS, proxy_get, raw, start_pool, url};

/// Runs curl with `args`; returns (exit code, stdout).
fn curl(args: &[&str]) -> (i32, String) {
    let out = Command::new("curl")
        .args(["--silent", "--max-time", "10"])
        .args(args)
        .output()
        .expect("curl runs");
    let code = out.status.code().unwrap_or(-1);
    (code, String::from_utf8_lossy(&out.stdout).into_owned())
}

fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

#[tokio::test]
async fn curl_reaches_the_target_through_plain_proxying_and_connect_tunnels() {
    let (target, _clock) = start(TargetConfig::default()).await;
    let pool = start_pool(&target, TWO_EXITS).await;
    let proxy = url(&pool, "home");
    let echo = target.url("/__range/fingerprint");
    let run = move |extra: &'static [&'static str]| {
        let (proxy, echo) = (proxy.clone(), echo.clone());
        tokio::task::spawn_blocking(move || {
            let args = [&["-x", proxy.as_str()], extra, &[echo.as_str()]].concat();
            curl(&args)
        })
    };
    let (code, plain) = run(&[]).await.expect("curl ran");
    assert_eq!(code, 0);
    let plain = json(&plain);
    assert_eq!(plain["ip"], "127.0.1.20");
    assert_eq!(plain["ip_source"], "proxy_protocol");
    // -p: CONNECT to the target, then HTTP inside the tunnel.
    let (code, tunnel) = run(&["-p"]).await.expect("curl ran");
    assert_eq!(code, 0);
    assert_eq!(json(&tunnel)["ip"], "127.0.1.20");
    let connects = crate::pool::proxy_events(&target);
    assert!(connects.len() >= 4, "two connections traced: {connects:?}");
}

#[tokio::test]
async fn curl_sees_407_and_502_as_proxy_errors() {
    let (target, _clock) = start(TargetConfig::default()).await;
    let text = format!("{TWO_EXITS}\n[[exits.faults]]\nkind = \"connect-502\"\n");
    let pool = start_pool(&target, &text).await;
    let addr = pool.exit("cloud").expect("cloud").addr.to_string();
    let wrong = format!("http://scraper:wrong@{addr}");
    let right = url(&pool, "cloud");
    let echo = target.url("/__range/fingerprint");
    let (denied, tunnel) = tokio::task::spawn_blocking(move || {
        let status = ["-o", "/dev/null", "-w", "%{http_code}"];
        let denied = curl(&[&status[..], &["-x", &wrong, &echo]].concat());
        let tunnel = curl(&["-p", "-x", &right, &echo]);
        (denied, tunnel)
    })
    .await
    .expect("curl ran");
    assert_eq!(denied, (0, "407".to_owned()));
    // curl: (56) CONNECT tunnel failed, response 502.
    assert_eq!(tunnel.0, 56, "curl exit code for a failed CONNECT");
}

const PYTHON_CLIENT: &str = r#"
import json, sys, requests
target, home, cloud = sys.argv[1:4]
s = requests.Session()
s.proxies = {"http": home, "https": home}
tok = s.post(target + "/api/login", json={"username": "alice", "password": "wonderland"}).json()
auth = {"Authorization": "Bearer " + tok["access_token"]}
out = [s.get(target + "/__range/fingerprint").json()["ip"]]
out.append(s.get(target + "/api/v1/items?page=1", headers=auth).status_code)
s.proxies = {"http": cloud, "https": cloud}
r = s.get(target + "/api/v1/items?page=2", headers=auth)
out.append(r.status_code)
out.append(r.headers.get("WWW-Authenticate"))
print(json.dumps(out))
"#;

#[tokio::test]
async fn python_requests_logs_in_through_one_exit_and_is_revoked_on_another() {
    if !python_requests() {
        eprintln!("skipped: python3 with requests is not installed");
        return;
    }
    let (target, _clock) = start(TargetConfig::default()).await;
    let pool = start_pool(&target, TWO_EXITS).await;
    let args = [target.url(""), url(&pool, "home"), url(&pool, "cloud")];
    let out = tokio::task::spawn_blocking(move || {
        Command::new("python3")
            .arg("-c")
            .arg(PYTHON_CLIENT)
            .args(&args)
            .output()
            .expect("python runs")
    })
    .await
    .expect("python ran");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "python failed: {stderr}");
    let got = json(&String::from_utf8_lossy(&out.stdout));
    assert_eq!(got[0], "127.0.1.20");
    assert_eq!(got[1], 200);
    assert_eq!(got[2], 401);
    assert!(
        got[3].as_str().is_some_and(|h| h.contains("invalid_token")),
        "{got}"
    );
    assert_eq!(last_verdict(&target), Verdict::Revoke(Reason::AsnDrift));
}

#[tokio::test]
async fn bad_proxy_requests_get_clear_4xx_answers() {
    let (target, _clock) = start(TargetConfig::default()).await;
    let pool = start_pool(&target, TWO_EXITS).await;
    let addr = pool.exit("home").expect("home").addr;
    let auth = "Proxy-Authorization: Basic c2NyYXBlcjpodW50ZXIy\r\n";
    let cases: Vec<(String, &str)> = vec![
        ("\x16\x03\x01garbage\r\n\r\n".into(), "HTTP/1.1 400"),
        (
            "GET /login HTTP/1.1\r\nHost: x\r\n\r\n"
                .replace("\r\n\r\n", &format!("\r\n{auth}\r\n")),
            "HTTP/1.1 400",
        ),
        (
            format!("CONNECT 127.0.0.1:22 HTTP/1.1\r\nHost: 127.0.0.1:22\r\n{auth}\r\n"),
            "HTTP/1.1 403",
        ),
        (
            format!("GET http://example.com/ HTTP/1.1\r\nHost: example.com\r\n{auth}\r\n"),
            "HTTP/1.1 403",
        ),
        (
            format!("GET {} HTTP/1.1\r\nHost: x\r\n\r\n", target.url("/")),
            "HTTP/1.1 407",
        ),
        (
            format!(
                "GET {} HTTP/1.1\r\nHost: x\r\nProxy-Authorization: Basic !!!\r\n\r\n",
                target.url("/")
            ),
            "HTTP/1.1 407",
        ),
        // Nothing at all, and half a head: both time out with 408.
        (String::new(), "HTTP/1.1 408"),
        (
            "GET http://127.0.0.1/ HTTP/1.1\r\nHost: 127.".into(),
            "HTTP/1.1 408",
        ),
    ];
    for (request, expected) in cases {
        let (got, _) = raw(addr, request.as_bytes()).await;
        let text = String::from_utf8_lossy(&got);
        assert!(text.starts_with(expected), "{request:?} -> {text:?}");
    }
    // The node still serves well-formed requests.
    let (got, _) = raw(addr, &proxy_get(&target, "/")).await;
    assert!(
        got.starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&got)
    );
}

/// A PROXY header naming an Amazon exit, with a guessed secret, then a request.
fn forged_request(target: &sessionrange::TargetServer) -> Vec<u8> {
    let exit = "127.0.2.20:1000".parse().expect("addr");
    let mut request = proxy_protocol::encode(exit, target.addr(), b"a guess at the secret");
    request.extend_from_slice(b"GET /__range/fingerprint HTTP/1.1\r\nHost: x\r\n\r\n");
    request
}

#[tokio::test]
async fn the_public_listener_never_honours_a_proxy_header() {
    let (target, _clock) = start(TargetConfig::default()).await;
    let (got, _) = raw(target.addr(), &forged_request(&target)).await;
    let text = String::from_utf8_lossy(&got);
    assert!(text.starts_with("HTTP/1.1 400"), "{text}");
    assert!(!text.contains("127.0.2.20"), "{text}");
}

#[tokio::test]
async fn the_pool_listener_refuses_anyone_without_the_run_secret() {
    let (target, _clock) = start(TargetConfig::default()).await;
    let upstream_addr = target.upstream().pool_addr();
    let (got, _) = raw(upstream_addr, &forged_request(&target)).await;
    assert!(
        got.is_empty(),
        "closed without an answer: {}",
        String::from_utf8_lossy(&got)
    );
    let (got, _) = raw(upstream_addr, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await;
    assert!(got.is_empty(), "plain HTTP is refused too");
}
