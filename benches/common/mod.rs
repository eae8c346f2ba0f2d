//! Shared by the load and pipeline benchmarks: the bench target's configuration, the login form's token, medians.

use sessionrange::Action;
use sessionrange::TargetConfig;

/// The default target with the rules a load trips by design (session and
/// account velocity, robotic cadence, in-flight concurrency) off, so that
/// nothing is refused; every other rule is evaluated on every request.
/// `ja3` is at `log`: a plain HTTP client has no ClientHello to compare.
pub(crate) fn config() -> TargetConfig {
    let mut cfg = TargetConfig::default();
    let r = &mut cfg.rules;
    r.session_velocity.action = Action::Off;
    r.account_velocity.action = Action::Off;
    r.robotic_cadence.action = Action::Off;
    r.concurrency.in_flight_action = Action::Off;
    r.fingerprint.ja3 = Action::Log;
    cfg
}

/// The CSRF token of the login form.
pub(crate) fn csrf_token(html: &str) -> &str {
    html.split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("csrf token in the form")
}

/// The median of `v`.
pub(crate) fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// The smallest and largest of `v`.
pub(crate) fn range(v: &[f64]) -> (f64, f64) {
    let lo = v.iter().copied().fold(f64::MAX, f64::min);
    let hi = v.iter().copied().fold(0.0, f64::max);
    (lo, hi)
}
