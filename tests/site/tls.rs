//! HTTPS with real clients: fingerprints from the first ClientHello, stable per client, and drift between TLS stacks.

use std::process::Command;

use reqwest::StatusCode;
use serde_json::Value;
use sessionrange::TargetServer;
use sessionrange::site::config::TargetConfig;
use sessionrange::{Reason, Verdict};

use crate::helpers::*;
use crate::pool::{TWO_EXITS, start_pool, url};

/// Writes the target's CA next to a temp dir and returns its path.
fn ca_file(target: &TargetServer, dir: &TempDir) -> String {
    let path = dir.join("ca.pem");
    std::fs::write(&path, target.ca_pem()).expect("the CA is written");
    path.to_string_lossy().into_owned()
}

/// A reqwest client (rustls) that trusts the target's CA.
fn rustls_client(target: &TargetServer) -> reqwest::Client {
    let ca = reqwest::Certificate::from_pem(target.ca_pem().as_bytes()).expect("a PEM CA");
    reqwest::Client::builder()
        .add_root_certificate(ca)
        .user_agent(USER_AGENT)
        .build()
        .expect("a client")
}

/// Runs curl with `args`; returns its stdout, failing on a non-zero exit.
fn curl(args: &[&str]) -> String {
    let out = Command::new("curl")
        .args(["--silent", "--show-error", "--max-time", "10"])
        .args(args)
        .output()
        .expect("curl runs");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "curl {args:?}: {err}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f)
        .await
        .expect("the blocking task")
}

fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

#[tokio::test]
async fn each_client_gets_its_own_ja4_and_keeps_it_across_reconnections() {
    let (target, _clock) = start(TargetConfig::default()).await;
    let dir = TempDir::new("tls-stable");
    let echo = target.https_url("/__range/fingerprint");
    let ca = ca_file(&target, &dir);
    let mut reqwest_ja4 = Vec::new();
    for _ in 0..2 {
        let res = rustls_client(&target)
            .get(&echo)
            .send()
            .await
            .expect("https answers");
        let seen = json_body(res, StatusCode::OK).await;
        assert_eq!(seen["ip"], "127.0.0.1");
        assert!(
            seen["tls"]["ja3_hash"]
                .as_str()
                .is_some_and(|h| h.len() == 32),
            "{seen}"
        );
        assert!(
            seen["ja4_stable"]
                .as_str()
                .is_some_and(|j| j.starts_with("t13"))
                && seen["ja4_stable"] == seen["tls"]["ja4_stable"],
            "the echo shows the stable JA4 the session pin compares: {seen}"
        );
        reqwest_ja4.push(seen["ja4"].clone());
    }
    assert!(
        reqwest_ja4[0]
            .as_str()
            .is_some_and(|j| j.starts_with("t13")),
        "{reqwest_ja4:?}"
    );
    assert_eq!(
        reqwest_ja4[0], reqwest_ja4[1],
        "stable across new connections"
    );
    let (e, c) = (echo.clone(), ca.clone());
    let curl_seen =
        blocking(move || [curl(&["--cacert", &c, &e]), curl(&["--cacert", &c, &e])]).await;
    let curl_ja4: Vec<Value> = curl_seen.iter().map(|t| json(t)["ja4"].clone()).collect();
    assert_eq!(curl_ja4[0], curl_ja4[1], "curl is stable too");
    assert_ne!(curl_ja4[0], reqwest_ja4[0], "curl and rustls differ");
    let (e, c) = (echo.clone(), ca.clone());
    let openssl = blocking(move || {
        let host = e
            .trim_start_matches("https://")
            .split('/')
            .next()
            .unwrap_or_default()
            .to_owned();
        let out = Command::new("openssl")
            .args([
                "s_client", "-connect", &host, "-CAfile", &c, "-quiet", "-ign_eof",
            ])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn();
        let Ok(mut child) = out else { return None };
        if let Some(mut stdin) = child.stdin.take() {
            use std::io::Write;
            let _ = stdin.write_all(
                b"GET /__range/fingerprint HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
            );
        }
        let out = child.wait_with_output().ok()?;
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        text.find('{').map(|i| text[i..].trim().to_owned())
    })
    .await;
    let openssl = openssl.expect("openssl s_client answered");
    let openssl_ja4 = json(&openssl)["ja4"].clone();
    assert!(
        openssl_ja4.is_string() && openssl_ja4 != reqwest_ja4[0] && openssl_ja4 != curl_ja4[0],
        "{openssl}"
    );
}

#[tokio::test]
async fn a_session_born_with_curl_and_continued_with_rustls_is_revoked() {
    let (target, _clock) = start(TargetConfig::default()).await;
    let dir = TempDir::new("tls-drift");
    let ca = ca_file(&target, &dir);
    let login = target.https_url("/api/login");
    let body = r#"{"username":"alice","password":"wonderland"}"#;
    let ua = USER_AGENT.to_owned();
    let tokens = blocking(move || {
        curl(&[
            "--cacert",
            &ca,
            "-A",
            &ua,
            "-H",
            "content-type: application/json",
            "-d",
            body,
            &login,
        ])
    })
    .await;
    let access = json(&tokens)["access_token"]
        .as_str()
        .expect("a token")
        .to_owned();
    let res = rustls_client(&target)
        .get(target.https_url("/api/v1/items?page=1"))
        .bearer_auth(&access)
        .send()
        .await
        .expect("answered");
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        last_verdict(&target),
        Verdict::Revoke(Reason::TlsFingerprintDrift)
    );
}

#[tokio::test]
async fn through_a_connect_tunnel_the_target_sees_the_clients_own_hello_and_the_exit() {
    let (target, _clock) = start(TargetConfig::default()).await;
    let pool = start_pool(&target, TWO_EXITS).await;
    let dir = TempDir::new("tls-tunnel");
    let ca = ca_file(&target, &dir);
    let (echo, proxy) = (target.https_url("/__range/fingerprint"), url(&pool, "home"));
    let (e, c) = (echo.clone(), ca.clone());
    let direct = blocking(move || curl(&["--http1.1", "--cacert", &c, &e])).await;
    let tunnelled =
        blocking(move || curl(&["--http1.1", "--cacert", &ca, "-x", &proxy, &echo])).await;
    let (direct, tunnelled) = (json(&direct), json(&tunnelled));
    assert_eq!(tunnelled["ip"], "127.0.1.20");
    assert_eq!(tunnelled["ip_source"], "proxy_protocol");
    assert_eq!(
        tunnelled["ja4"], direct["ja4"],
        "the proxy does not touch the hello"
    );
    let ja4h = direct["ja4h"]["ja4h"]
        .as_str()
        .expect("JA4H from the raw head");
    assert!(
        ja4h.starts_with("ge11nn03"),
        "curl: GET, HTTP/1.1, no cookie, 3 headers: {ja4h}"
    );
    let raw = direct["ja4h"]["ja4h_ro"].as_str().expect("raw JA4H");
    assert!(
        raw.contains("Host,User-Agent,Accept"),
        "header case as sent: {raw}"
    );
    let events = crate::pool::proxy_events(&target);
    assert!(
        events
            .iter()
            .any(|e| matches!(e.what, sessionrange::pool::ProxyWhat::Tunnel { .. }))
    );
}

#[tokio::test]
async fn garbage_and_plain_http_on_the_https_port_are_closed_without_harm() {
    let (target, _clock) = start(TargetConfig::default()).await;
    for bytes in [
        &b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"[..],
        b"\x16\x03\x01\x00\x05\x02\x00\x00\x01\x00",
    ] {
        let (got, _) = crate::pool::raw(target.https_addr(), bytes).await;
        assert!(
            got.is_empty() || got.starts_with(b"\x15"),
            "closed (or a TLS alert): {got:?}"
        );
    }
    // The listener still serves real clients afterwards.
    let res = rustls_client(&target)
        .get(target.https_url("/"))
        .send()
        .await
        .expect("answered");
    assert_eq!(res.status(), StatusCode::OK);
}

#[tokio::test]
async fn plain_http_clients_have_no_tls_fingerprint() {
    let (target, _clock) = start(TargetConfig::default()).await;
    let res = Api::new(&target)
        .get("/__range/fingerprint")
        .send()
        .await
        .expect("answered");
    let seen = json_body(res, StatusCode::OK).await;
    assert!(seen["ja4"].is_null() && seen["tls"].is_null(), "{seen}");
    let _ = json(&seen.to_string());
}

#[tokio::test]
async fn python_requests_has_a_stable_ja4_of_its_own() {
    let python = Command::new("python3")
        .args(["-c", "import requests"])
        .output();
    let required = std::env::var("SESSIONRANGE_REQUIRE_PYTHON").is_ok_and(|v| v == "1");
    if !python.is_ok_and(|o| o.status.success()) {
        assert!(!required, "python3 with requests is required here");
        return;
    }
    let (target, _clock) = start(TargetConfig::default()).await;
    let dir = TempDir::new("tls-python");
    let ca = ca_file(&target, &dir);
    let echo = target.https_url("/__range/fingerprint");
    let script = "import json, sys, requests\n\
                  url, ca = sys.argv[1:3]\n\
                  print(json.dumps([requests.get(url, verify=ca).json()['ja4'] for _ in range(2)]))";
    let out = blocking(move || {
        Command::new("python3")
            .args(["-c", script, &echo, &ca])
            .output()
    })
    .await;
    let out = out.expect("python runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let ja4s = json(&String::from_utf8_lossy(&out.stdout));
    assert_eq!(ja4s[0], ja4s[1], "stable across its own connections");
    let rustls = rustls_client(&target)
        .get(target.https_url("/__range/fingerprint"))
        .send()
        .await;
    let rustls = json_body(rustls.expect("answered"), StatusCode::OK).await;
    assert!(
        ja4s[0].is_string() && ja4s[0] != rustls["ja4"],
        "{ja4s} vs {}",
        rustls["ja4"]
    );
}

#[tokio::test]
async fn every_request_gets_ja4h_over_http1_h2_and_cleartext_h2() {
    let (target, _clock) = start(TargetConfig::default()).await;
    let dir = TempDir::new("ja4h-everywhere");
    let ca = ca_file(&target, &dir);
    let (plain, secure) = (
        target.url("/__range/fingerprint"),
        target.https_url("/__range/fingerprint"),
    );
    let cases = [
        (
            vec!["--http1.1", plain.as_str()],
            "ge11nn03",
            "_Host,User-Agent,Accept_",
        ),
        (
            vec!["--http2-prior-knowledge", plain.as_str()],
            "ge20nn02",
            "_user-agent,accept_",
        ),
        (
            vec!["--http2", "--cacert", ca.as_str(), secure.as_str()],
            "ge20nn02",
            "_user-agent,accept_",
        ),
    ];
    for (args, prefix, names) in cases {
        let args: Vec<String> = args.into_iter().map(str::to_owned).collect();
        let seen = blocking(move || {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            curl(&args)
        })
        .await;
        let seen = json(&seen);
        let ja4h = seen["ja4h"]["ja4h"].as_str().unwrap_or_default();
        let raw = seen["ja4h"]["ja4h_ro"].as_str().unwrap_or_default();
        assert!(ja4h.starts_with(prefix), "{prefix}: {seen}");
        assert!(raw.contains(names), "{names} in {raw}");
    }
}
