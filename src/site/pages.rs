//! The HTML the target serves: landing page, login form, account page.

pub(crate) use crate::dataset::escape_html as escape;
use crate::site::config::TargetConfig;

fn page(title: &str, body: &str) -> String {
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{}</title></head>\n<body>\n{body}\n</body></html>\n",
        escape(title)
    )
}

/// The public landing page, running the sensor under `nonce` when the
/// target runs one.
pub(crate) fn landing(nonce: Option<&str>) -> String {
    let body = format!(
        "<h1>sessionrange shop</h1>\n<p><a href=\"/login\">Sign in</a> to see the catalog.</p>{}",
        sensor_tag(nonce)
    );
    page("sessionrange shop", &body)
}

/// The script tag of the page sensor, or nothing.
pub(crate) fn sensor_tag(nonce: Option<&str>) -> String {
    nonce
        .map(|n| {
            format!(
                "\n<script id=\"sr-sensor\" src=\"{SENSOR_SCRIPT}\" data-nonce=\"{}\"></script>",
                escape(n)
            )
        })
        .unwrap_or_default()
}

/// Where the page sensor's script is served.
pub(crate) const SENSOR_SCRIPT: &str = "/_sr/sensor.js";

/// The page sensor's script (and the challenge's solver).
pub(crate) const SENSOR_JS: &str = include_str!("assets/sensor.js");

/// What the login form needs besides the config.
#[derive(Clone, Debug, Default)]
pub(crate) struct LoginForm<'a> {
    /// The CSRF token to embed.
    pub csrf: &'a str,
    /// The proof-of-work challenge, when that step is on.
    pub pow_challenge: Option<&'a str>,
    /// An error to show above the form.
    pub error: Option<&'a str>,
    /// The sensor's nonce, when the target runs a sensor.
    pub sensor_nonce: Option<&'a str>,
}

/// The login form. It carries `id="login-form"`, which clients use to
/// recognise a login page served where data was expected.
pub(crate) fn login(cfg: &TargetConfig, form: &LoginForm<'_>) -> String {
    let mut fields = String::new();
    fields.push_str(&format!(
        "<input type=\"hidden\" name=\"csrf\" value=\"{}\">\n",
        escape(form.csrf)
    ));
    fields
        .push_str("<label>Username <input name=\"username\" autocomplete=\"username\"></label>\n");
    fields.push_str("<label>Password <input name=\"password\" type=\"password\"></label>\n");
    if let Some(ch) = form.pow_challenge {
        fields.push_str(&format!(
            "<input type=\"hidden\" name=\"pow_challenge\" value=\"{}\" data-bits=\"{}\">\n<label>Proof of work <input name=\"pow_nonce\"></label>\n",
            escape(ch),
            cfg.login.pow_bits
        ));
    }
    if cfg.login.totp {
        fields
            .push_str("<label>One-time code <input name=\"totp\" inputmode=\"numeric\"></label>\n");
    }
    let error = form
        .error
        .map(|e| format!("<p class=\"error\" role=\"alert\">{}</p>\n", escape(e)))
        .unwrap_or_default();
    let body = format!(
        "<h1>Sign in</h1>\n{error}<form id=\"login-form\" method=\"post\" action=\"/login\">\n{fields}<button type=\"submit\">Sign in</button>\n</form>{}",
        sensor_tag(form.sensor_nonce)
    );
    page("Sign in", &body)
}

/// The page a logged-in user lands on.
pub(crate) fn account(username: &str) -> String {
    let body = format!(
        "<h1>Welcome, <span id=\"account\">{}</span></h1>\n<p><a href=\"/catalog?page=1\">Catalog</a></p>\n<form method=\"post\" action=\"/logout\"><button>Sign out</button></form>",
        escape(username)
    );
    page("Your account", &body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn login_form_escapes_and_shows_the_optional_steps() {
        let mut cfg = TargetConfig::default();
        let plain = login(
            &cfg,
            &LoginForm {
                csrf: "a\"b",
                ..Default::default()
            },
        );
        assert!(plain.contains("value=\"a&quot;b\""));
        assert!(plain.contains("id=\"login-form\""));
        assert!(!plain.contains("pow_nonce") && !plain.contains("totp"));
        cfg.login.pow_bits = 8;
        cfg.login.totp = true;
        let form = LoginForm {
            csrf: "t",
            pow_challenge: Some("abcd"),
            error: Some("<bad>"),
            sensor_nonce: Some("n\"1"),
        };
        let full = login(&cfg, &form);
        assert!(full.contains("name=\"pow_nonce\"") && full.contains("data-bits=\"8\""));
        assert!(full.contains("name=\"totp\""));
        assert!(full.contains("&lt;bad&gt;"));
        assert!(full.contains("id=\"sr-sensor\"") && full.contains("data-nonce=\"n&quot;1\""));
    }
}
