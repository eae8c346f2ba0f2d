//! `[target] surfaces`: the routes of an absent surface answer 404, the others work as before.

use reqwest::StatusCode;
use sessionrange::site::TargetConfig;
use sessionrange::site::config::Surface;

use crate::helpers::*;

fn only(surface: Surface) -> TargetConfig {
    TargetConfig {
        surfaces: vec![surface],
        ..TargetConfig::default()
    }
}

#[tokio::test]
async fn an_html_only_target_has_no_api_routes() {
    let (target, _clock) = start(only(Surface::Html)).await;
    let api = Api::new(&target);
    let res = api.login_raw("alice", "wonderland").await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    for path in [
        "/api/login/challenge",
        "/api/v1/items?page=1",
        "/api/v1/items/1",
    ] {
        let res = api.get(path).send().await.expect("answer");
        assert_eq!(res.status(), StatusCode::NOT_FOUND, "{path}");
    }
    for path in ["/api/token/refresh", "/api/token/revoke"] {
        let res = api.post(path).send().await.expect("answer");
        assert_eq!(res.status(), StatusCode::NOT_FOUND, "{path}");
    }
    let refused = trace_lines(&target, "refused");
    let routes: Vec<&str> = refused.iter().filter_map(|r| r["route"].as_str()).collect();
    assert_eq!(
        routes,
        [
            "/api/login",
            "/api/login/challenge",
            "/api/v1/items",
            "/api/v1/items/{id}",
            "/api/token/refresh",
            "/api/token/revoke"
        ],
        "each request for a left-out surface is traced, so a card can say why"
    );
    assert!(refused.iter().all(|r| r["reason"] == "SURFACE_ABSENT"));
    let res = api.get("/api/v2/nothing").send().await.expect("answer");
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        trace_lines(&target, "refused").len(),
        6,
        "a typo is not traced"
    );
    let browser = Browser::new(&target);
    browser.log_in("alice", "wonderland").await;
    assert!(browser.read_catalog(1).await.contains("data-id=\"1\""));
    assert_eq!(browser.fetch("/account").await.status(), StatusCode::OK);
}

#[tokio::test]
async fn an_api_only_target_has_no_form_catalog_or_account() {
    let (target, _clock) = start(only(Surface::Api)).await;
    let browser = Browser::new(&target);
    browser.land().await;
    for path in ["/login", "/catalog?page=1", "/account"] {
        let res = browser.fetch(path).await;
        assert_eq!(res.status(), StatusCode::NOT_FOUND, "{path}");
    }
    let creds = [("username", "alice"), ("password", "wonderland")];
    let res = browser.post_login(&creds).await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    let api = Api::new(&target);
    let tokens = api.login("alice", "wonderland").await;
    let res = api.get_with("/api/v1/items?page=1", &tokens.access).await;
    assert_eq!(res.status(), StatusCode::OK);
}

#[tokio::test]
async fn soft_logout_is_html_only_and_impossible_surface_choices_are_refused() {
    let pack = sessionrange::scenario::Scenario::bundled().expect("the pack");
    for s in &pack {
        let want = if s.name == "soft-logout" {
            vec![Surface::Html]
        } else {
            vec![Surface::Html, Surface::Api]
        };
        assert_eq!(s.target.surfaces, want, "{}", s.name);
    }
    let path = std::path::Path::new("s.toml");
    for (text, line) in [
        ("name = \"x\"\n[target]\nsurfaces = []\n", 3),
        (
            "name = \"x\"\n[target]\nauth = \"jwt\"\nsurfaces = [\"html\"]\n",
            4,
        ),
        (
            "name = \"x\"\n[target]\nauth = \"cookie\"\nsurfaces = [\"api\"]\n",
            4,
        ),
        (
            "name = \"x\"\n[target]\nsurfaces = [\"html\", \"html\"]\n",
            3,
        ),
        ("name = \"x\"\n[target]\nsurfaces = [\"graphql\"]\n", 3),
    ] {
        let err = sessionrange::scenario::Scenario::parse(text, path).expect_err(text);
        let msg = err.to_string();
        assert!(msg.starts_with(&format!("s.toml:{line}:")), "{text}: {msg}");
        assert!(msg.contains("surfaces"), "{msg}");
    }
}
