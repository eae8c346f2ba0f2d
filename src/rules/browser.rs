//! Browser-grade rules, fed by the page's sensor: is it there, does it check out, does it agree with the request, and does it show automation?

use crate::auth::clearance::Standing;
use crate::auth::sensor::Reading;
use crate::clock::Timestamp;
use crate::config::{AutomationConfig, ClearanceConfig, SensorConfig};
use crate::context::RequestContext;
use crate::rules::fire;
use crate::verdict::{Action, Evidence, Firing, Reason, RuleName};

/// The sensor: missing, invalid, or claiming another User-Agent than the
/// request sent. Silent when the target runs no sensor (`ctx.sensor` is
/// `None`).
pub(crate) fn sensor(cfg: &SensorConfig, ctx: &RequestContext) -> Option<Firing> {
    let problem = |p: &str| Evidence::Sensor {
        problem: p.to_owned(),
    };
    match ctx.sensor.as_ref()? {
        Reading::Missing => fire(
            RuleName::Sensor,
            Reason::SensorMissing,
            cfg.missing,
            problem("no sensor cookie came back: the page's script did not run"),
        ),
        Reading::Invalid { why } => fire(
            RuleName::Sensor,
            Reason::SensorInvalid,
            cfg.invalid,
            problem(why),
        ),
        Reading::Valid(s) if !s.claims(ctx.user_agent.as_deref()) => fire(
            RuleName::Sensor,
            Reason::SensorMismatch,
            cfg.mismatch,
            Evidence::Claim {
                claimed: s.ua.clone(),
                sent: ctx.user_agent.clone(),
            },
        ),
        Reading::Valid(_) => None,
    }
}

/// Automation markers in a valid sensor's signals, or a headless
/// User-Agent sent with it.
pub(crate) fn automation(cfg: &AutomationConfig, ctx: &RequestContext) -> Option<Firing> {
    let Some(Reading::Valid(s)) = ctx.sensor.as_ref() else {
        return None;
    };
    let markers = s.automation_markers(ctx.user_agent.as_deref());
    if markers.is_empty() {
        return None;
    }
    let markers = markers.into_iter().map(str::to_owned).collect();
    fire(
        RuleName::Automation,
        Reason::AutomationDetected,
        cfg.action,
        Evidence::Automation { markers },
    )
}

/// A clearance presented by another client than the one that earned it.
pub(crate) fn clearance(
    cfg: &ClearanceConfig,
    ctx: &RequestContext,
    now: Timestamp,
) -> Option<Firing> {
    let c = ctx.clearance.as_ref()?;
    let Standing::Drifted(what) = c.standing(ctx, now) else {
        return None;
    };
    let evidence = Evidence::Clearance {
        standing: what.to_owned(),
        via: c.via,
    };
    fire(
        RuleName::Clearance,
        Reason::ClearanceDrift,
        cfg.drift,
        evidence,
    )
}

/// Whether the request's clearance answers every challenge that fired (a
/// drift rule's, on a clearance of this very client, still alive); if so
/// the answer is recorded as a `log` firing.
pub(crate) fn clearance_answers(
    ctx: &RequestContext,
    now: Timestamp,
    fired: &mut Vec<Firing>,
) -> bool {
    let Some(c) = ctx.clearance.as_ref() else {
        return false;
    };
    let answerable = fired
        .iter()
        .filter(|f| f.action == Action::Challenge)
        .all(|f| f.rule.is_drift());
    if !answerable || c.standing(ctx, now) != Standing::Valid {
        return false;
    }
    let evidence = Evidence::Clearance {
        standing: "valid".to_owned(),
        via: c.via,
    };
    fired.extend(fire(
        RuleName::Clearance,
        Reason::ClearancePassed,
        Action::Log,
        evidence,
    ));
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::sensor::Signals;
    use crate::network::NetworkInfo;

    fn ctx(ua: &str, sensor: Option<Reading>) -> RequestContext {
        let mut c =
            RequestContext::from_headers(None, NetworkInfo::unknown(), [("user-agent", ua)]);
        c.sensor = sensor;
        c
    }

    fn signals(ua: &str) -> Signals {
        Signals {
            ua: ua.into(),
            languages: "en-US".into(),
            plugins: 5,
            ..Signals::default()
        }
    }

    const ON: SensorConfig = SensorConfig {
        missing: Action::Revoke,
        invalid: Action::Revoke,
        mismatch: Action::Challenge,
    };

    #[test]
    fn each_sensor_case_has_its_reason() {
        let reason = |c: &RequestContext| sensor(&ON, c).map(|f| f.reason);
        assert_eq!(reason(&ctx("a", None)), None, "no sensor on the target");
        assert_eq!(
            reason(&ctx("a", Some(Reading::Missing))),
            Some(Reason::SensorMissing)
        );
        let invalid = Reading::Invalid { why: "x".into() };
        assert_eq!(
            reason(&ctx("a", Some(invalid))),
            Some(Reason::SensorInvalid)
        );
        let valid = |ua| Some(Reading::Valid(signals(ua)));
        assert_eq!(reason(&ctx("a", valid("b"))), Some(Reason::SensorMismatch));
        assert_eq!(reason(&ctx("a", valid("a"))), None);
        assert_eq!(
            sensor(&SensorConfig::default(), &ctx("a", Some(Reading::Missing))),
            None
        );
    }

    #[test]
    fn automation_fires_on_markers_only() {
        let cfg = AutomationConfig {
            action: Action::Revoke,
        };
        let clean = ctx("a", Some(Reading::Valid(signals("a"))));
        assert_eq!(automation(&cfg, &clean), None);
        let stock = Signals {
            webdriver: true,
            ..signals("HeadlessChrome/156")
        };
        let f = automation(
            &cfg,
            &ctx("HeadlessChrome/156", Some(Reading::Valid(stock))),
        );
        let f = f.expect("fires");
        assert_eq!(f.reason, Reason::AutomationDetected);
        let want = Evidence::Automation {
            markers: vec!["webdriver".into(), "headless_user_agent".into()],
        };
        assert_eq!(f.evidence, want);
        assert_eq!(automation(&cfg, &ctx("a", Some(Reading::Missing))), None);
    }
}
