//! A session's cookie jar: one site, names to values, in the order they were first set.
//!
//! reqwest's own jar cannot forget a cookie on request or list what it
//! holds, and the client needs both (to know the companion cookies the
//! landing page set, and for `--bug strip-companion-cookies`). The client
//! talks to one origin, so domains and paths are not tracked.

use parking_lot::Mutex;
use reqwest::Url;
use reqwest::cookie::CookieStore;
use reqwest::header::HeaderValue;

/// The cookies of one session.
#[derive(Debug, Default)]
pub(crate) struct SessionJar {
    cookies: Mutex<Vec<(String, String)>>,
}

impl SessionJar {
    /// The value of the cookie `name`.
    pub(crate) fn get(&self, name: &str) -> Option<String> {
        let cookies = self.cookies.lock();
        cookies
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
    }

    /// The names of every cookie held.
    pub(crate) fn names(&self) -> Vec<String> {
        let cookies = self.cookies.lock();
        cookies.iter().map(|(n, _)| n.clone()).collect()
    }

    /// Forgets the cookie `name`.
    pub(crate) fn remove(&self, name: &str) {
        let mut cookies = self.cookies.lock();
        cookies.retain(|(n, _)| n != name);
    }

    /// Applies one `Set-Cookie` value: stores it, or deletes the cookie when
    /// it is already expired (`Max-Age` of 0 or less, or an `Expires` in 1970).
    pub(crate) fn apply(&self, set_cookie: &str) {
        let mut parts = set_cookie.split(';');
        let Some((name, value)) = parts.next().and_then(|p| p.split_once('=')) else {
            return;
        };
        let (name, value) = (name.trim(), value.trim());
        if name.is_empty() {
            return;
        }
        let expired = parts.any(|attr| {
            let (k, v) = attr.split_once('=').unwrap_or((attr, ""));
            let (k, v) = (k.trim().to_ascii_lowercase(), v.trim());
            (k == "max-age" && v.parse::<i64>().is_ok_and(|s| s <= 0))
                || (k == "expires" && v.contains("1970"))
        });
        let mut cookies = self.cookies.lock();
        let at = cookies.iter().position(|(n, _)| n == name);
        match (at, expired) {
            (Some(i), true) => {
                cookies.remove(i);
            }
            (Some(i), false) => cookies[i].1 = value.to_owned(),
            (None, false) => cookies.push((name.to_owned(), value.to_owned())),
            (None, true) => {}
        }
    }

    /// The `Cookie` header value, or `None` when the jar is empty.
    pub(crate) fn header(&self) -> Option<String> {
        let cookies = self.cookies.lock();
        let pairs: Vec<String> = cookies.iter().map(|(n, v)| format!("{n}={v}")).collect();
        (!pairs.is_empty()).then(|| pairs.join("; "))
    }
}

impl CookieStore for SessionJar {
    fn set_cookies(&self, cookie_headers: &mut dyn Iterator<Item = &HeaderValue>, _url: &Url) {
        for value in cookie_headers {
            if let Ok(text) = value.to_str() {
                self.apply(text);
            }
        }
    }

    fn cookies(&self, _url: &Url) -> Option<HeaderValue> {
        self.header().and_then(|h| HeaderValue::from_str(&h).ok())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_set_replaced_and_cleared() {
        let jar = SessionJar::default();
        jar.apply("_sr_aid=a1; Path=/; Max-Age=31536000; SameSite=Lax");
        jar.apply("sr_session=s1; Path=/; HttpOnly; SameSite=Lax");
        assert_eq!(jar.header().as_deref(), Some("_sr_aid=a1; sr_session=s1"));
        jar.apply("_sr_aid=a2; Path=/");
        assert_eq!(jar.get("_sr_aid").as_deref(), Some("a2"));
        jar.apply(
            "sr_session=; Path=/; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT; HttpOnly",
        );
        assert_eq!(jar.names(), vec!["_sr_aid".to_owned()]);
        jar.remove("_sr_aid");
        assert_eq!(jar.header(), None);
    }

    #[test]
    fn garbage_is_ignored() {
        let jar = SessionJar::default();
        jar.apply("no equals sign");
        jar.apply("=value");
        assert_eq!(jar.header(), None);
    }
}
