//! Logging in as a client does, over the same wire the load uses: the form login with its companion cookies, and the API login for a bearer JWT.

use axum::http::HeaderValue;

use crate::common::csrf_token;
use crate::servers::Page;
use crate::wire::{Extra, Response, Route};

/// The path every load request asks for.
pub(crate) const PAGE: &str = "/api/v1/items?page=1";

/// A logged-in client's credential header: `Cookie` or `Authorization`.
#[derive(Clone, Debug)]
pub(crate) struct Credential {
    /// The header's name.
    pub(crate) name: &'static str,
    /// Its value.
    pub(crate) value: String,
}

impl Credential {
    /// The request for page 1 on `route` with this credential.
    pub(crate) fn page_request(&self, route: &Route) -> Vec<u8> {
        let extra = Extra {
            credential: Some((self.name, &self.value)),
            body: None,
        };
        route.request("GET", PAGE, extra)
    }
}

/// Cookies in the order they were set, as a browser sends them back.
#[derive(Default)]
struct Jar(Vec<(String, String)>);

impl Jar {
    /// Keeps every `Set-Cookie` of `r`, replacing a cookie of the same name.
    fn keep(&mut self, r: &Response) {
        for set in r.all("set-cookie") {
            let pair = set.split(';').next().unwrap_or_default();
            let (name, value) = pair.split_once('=').expect("a cookie pair");
            let (name, value) = (name.trim().to_owned(), value.trim().to_owned());
            self.0.retain(|(n, _)| *n != name);
            self.0.push((name, value));
        }
    }

    /// The `Cookie` header value, or `None` for an empty jar.
    fn header(&self) -> Option<String> {
        let pairs: Vec<String> = self.0.iter().map(|(n, v)| format!("{n}={v}")).collect();
        (!pairs.is_empty()).then(|| pairs.join("; "))
    }
}

/// Logs in through the form on `route` as a browser does (the landing
/// page for the companion cookies, the form for its CSRF token, the
/// POST), on one keep-alive connection; returns the `Cookie` header.
pub(crate) async fn form_login(route: &Route, user: &str, password: &str) -> Credential {
    let mut conn = route.connect().await;
    let mut jar = Jar::default();
    let mut html = String::new();
    for path in ["/", "/login"] {
        let cookie = jar.header();
        let extra = Extra {
            credential: cookie.as_deref().map(|c| ("Cookie", c)),
            body: None,
        };
        let r = conn
            .send(&route.request("GET", path, extra), true)
            .await
            .expect("a response");
        assert_eq!(r.status, 200, "GET {path}");
        jar.keep(&r);
        html = String::from_utf8_lossy(&r.body).into_owned();
    }
    let form = format!(
        "csrf={}&username={user}&password={password}",
        csrf_token(&html)
    );
    let cookie = jar
        .header()
        .expect("cookies from the landing page and the form");
    let extra = Extra {
        credential: Some(("Cookie", &cookie)),
        body: Some(("application/x-www-form-urlencoded", form.as_bytes())),
    };
    let r = conn
        .send(&route.request("POST", "/login", extra), true)
        .await
        .expect("a response");
    assert_eq!(r.status, 303, "the form login");
    jar.keep(&r);
    let value = jar.header().expect("a session cookie");
    assert!(value.contains("sr_session="), "no session cookie: {value}");
    Credential {
        name: "Cookie",
        value,
    }
}

/// Logs in through `POST /api/login` with JSON credentials; returns the
/// `Authorization: Bearer` header of the access token.
pub(crate) async fn api_login(route: &Route, user: &str, password: &str) -> Credential {
    let mut conn = route.connect().await;
    let body = serde_json::json!({ "username": user, "password": password }).to_string();
    let extra = Extra {
        credential: None,
        body: Some(("application/json", body.as_bytes())),
    };
    let r = conn
        .send(&route.request("POST", "/api/login", extra), true)
        .await
        .expect("a response");
    assert_eq!(r.status, 200, "the API login");
    let tokens: serde_json::Value = serde_json::from_slice(&r.body).expect("JSON tokens");
    let token = tokens["access_token"].as_str().expect("an access token");
    Credential {
        name: "Authorization",
        value: format!("Bearer {token}"),
    }
}

/// Page 1 as the target serves it to `credential`: its body and Content-Type.
pub(crate) async fn fetch_page(route: &Route, credential: &Credential) -> Page {
    let mut conn = route.connect().await;
    let r = conn
        .send(&credential.page_request(route), true)
        .await
        .expect("a response");
    assert_eq!(r.status, 200, "page 1");
    let content_type = r.all("content-type").next().expect("a Content-Type");
    let content_type = HeaderValue::from_str(content_type).expect("a header value");
    Page {
        body: r.body.into(),
        content_type,
    }
}
