//! Velocity: a GCRA rate limit per session and per account, and robotic cadence.

use crate::clock::Timestamp;
use crate::config::{CadenceConfig, VelocityConfig};
use crate::session::Session;
use crate::verdict::{Action, Evidence, Firing, Reason, RuleName};

use super::fire;

/// What a rate check found.
#[derive(Debug)]
pub(crate) enum Outcome {
    /// The rule is off.
    Off,
    /// The request conforms; this is the new theoretical arrival time.
    Conforms(u64),
    /// The request exceeds the rate and burst.
    Fires(Firing),
}

/// The GCRA test: a request at `now_us` conforms when it is no earlier than
/// the theoretical arrival time minus the tolerance. On success it returns
/// the new arrival time; on failure, how long until a request would conform.
///
/// A conforming sequence therefore never has more than `burst` requests at
/// one instant, nor more than `burst + d / interval` over any span `d`.
pub fn gcra(tat_us: u64, now_us: u64, interval_us: u64, tolerance_us: u64) -> Result<u64, u64> {
    let earliest = tat_us.saturating_sub(tolerance_us);
    if now_us < earliest {
        return Err(earliest - now_us);
    }
    Ok(tat_us.max(now_us).saturating_add(interval_us))
}

/// Checks one rate limit against its stored arrival time.
pub(crate) fn check(cfg: &VelocityConfig, rule: RuleName, tat_us: u64, now: Timestamp) -> Outcome {
    if cfg.action == Action::Off {
        return Outcome::Off;
    }
    let now_us = now.as_millis().saturating_mul(1000);
    match gcra(tat_us, now_us, cfg.interval_us(), cfg.tolerance_us()) {
        Ok(tat) => Outcome::Conforms(tat),
        Err(wait_us) => {
            let evidence = Evidence::Rate {
                per_second: cfg.rate / cfg.per.as_secs_f64(),
                burst: cfg.burst,
                retry_after_ms: wait_us.div_ceil(1000),
            };
            match fire(rule, Reason::VelocityExceeded, cfg.action, evidence) {
                Some(f) => Outcome::Fires(f),
                None => Outcome::Off,
            }
        }
    }
}

/// Robotic cadence: the last `gaps` inter-request gaps, including the one
/// ending now, have a coefficient of variation below `max_cv`.
pub(crate) fn cadence(cfg: &CadenceConfig, s: &Session, now: Timestamp) -> Option<Firing> {
    if cfg.action == Action::Off {
        return None;
    }
    let want = cfg.gaps as usize;
    let now_ms = u32::try_from(now.since(s.created).as_millis()).unwrap_or(u32::MAX);
    let times: Vec<f64> = s
        .recent_times(want)
        .chain([now_ms])
        .map(f64::from)
        .collect();
    if times.len() < want + 1 {
        return None;
    }
    let gaps: Vec<f64> = times.windows(2).map(|w| w[1] - w[0]).collect();
    let n = gaps.len() as f64;
    let mean = gaps.iter().sum::<f64>() / n;
    if mean <= 0.0 {
        return None;
    }
    let var = gaps.iter().map(|g| (g - mean).powi(2)).sum::<f64>() / n;
    let cv = var.sqrt() / mean;
    if cv >= cfg.max_cv {
        return None;
    }
    let evidence = Evidence::Cadence {
        gaps: gaps.len(),
        mean_ms: mean,
        cv,
        max_cv: cfg.max_cv,
    };
    fire(
        RuleName::RoboticCadence,
        Reason::RoboticCadence,
        cfg.action,
        evidence,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gcra_allows_burst_at_once_then_the_rate() {
        let (t, tol) = (100, 200); // burst 3
        let mut tat = 0;
        for _ in 0..3 {
            tat = gcra(tat, 1000, t, tol).expect("inside burst");
        }
        assert_eq!(gcra(tat, 1000, t, tol), Err(100));
        assert!(gcra(tat, 1100, t, tol).is_ok());
    }
}
