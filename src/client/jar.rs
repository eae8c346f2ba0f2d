//! A session's cookie jar: one site, names to values, in the order they were first set.
//!
//! reqwest's own jar cannot forget a cookie on request or list what it
//! holds, and the client needs both (to know the companion cookies the
//! landing page set, and for `--bug strip-companion-cookies`). The client
//! talks to one origin, so domains and paths are not tracked.

use cookie::Cookie;
use cookie::time::{Duration, OffsetDateTime};
use parking_lot::Mutex;
use reqwest::Url;
use reqwest::cookie::CookieStore;
use reqwest::header::HeaderValue;

/// The cookies of one session.
#[derive(Debug, Default)]
pub(crate) struct SessionJar {
    cookies: Mutex<Vec<Cookie<'static>>>,
}

impl SessionJar {
    /// The value of the cookie `name`.
    pub(crate) fn get(&self, name: &str) -> Option<String> {
        let cookies = self.cookies.lock();
        let cookie = cookies.iter().find(|c| c.name() == name)?;
        Some(cookie.value().to_owned())
    }

    /// The names of every cookie held.
    pub(crate) fn names(&self) -> Vec<String> {
        self.cookies
            .lock()
            .iter()
            .map(|c| c.name().to_owned())
            .collect()
    }

    /// Forgets the cookie `name`.
    pub(crate) fn remove(&self, name: &str) {
        self.cookies.lock().retain(|c| c.name() != name);
    }

    /// Applies one `Set-Cookie` value: stores it, or deletes the cookie when
    /// it is already expired (`Max-Age` of 0 or less, or an `Expires` in the
    /// past). A value `cookie::Cookie::parse` refuses (no `=`, no name) is
    /// ignored.
    pub(crate) fn apply(&self, set_cookie: &str) {
        let Ok(cookie) = Cookie::parse(set_cookie) else {
            return;
        };
        let expired = cookie.max_age().is_some_and(|age| age <= Duration::ZERO)
            || (cookie.expires_datetime()).is_some_and(|at| at <= OffsetDateTime::now_utc());
        let mut cookies = self.cookies.lock();
        let at = cookies.iter().position(|c| c.name() == cookie.name());
        match (at, expired) {
            (Some(i), true) => {
                cookies.remove(i);
            }
            (Some(i), false) => cookies[i] = cookie.into_owned(),
            (None, false) => cookies.push(cookie.into_owned()),
            (None, true) => {}
        }
    }

    /// The `Cookie` header value, or `None` when the jar is empty.
    pub(crate) fn header(&self) -> Option<String> {
        let cookies = self.cookies.lock();
        let pairs: Vec<String> = cookies.iter().map(|c| c.stripped().to_string()).collect();
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
    fn expiry_follows_max_age_and_dates() {
        let jar = SessionJar::default();
        jar.apply("a=1; Expires=Wed, 21 Oct 2015 07:28:00 GMT");
        jar.apply("b=x==; Expires=Fri, 31 Dec 9999 23:59:59 GMT; Max-Age=60");
        jar.apply("c=\"quoted\"; path=/; max-age=31536000");
        assert_eq!(jar.header().as_deref(), Some("b=x==; c=\"quoted\""));
        jar.apply("b=; Max-Age=-1");
        jar.apply("c=gone; Expires=Sat, 01-Jan-2000 00:00:00 GMT");
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
