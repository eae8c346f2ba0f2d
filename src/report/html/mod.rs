//! `run --html`: one self-contained HTML file per run, each scenario with its card, a timeline of every session, how each died, and its missing records.
//!
//! Each scenario's report carries its view ([`crate::grade::view`]),
//! summed up from the trace as the target recorded it: the trace file
//! beside the client's folder is never read back, since the client could
//! have written to it. [`render`] writes the page with maud.

pub mod render;

use crate::runner::{RunReport, ScenarioReport};
use crate::scenario::Scenario;
use crate::verdict::Action;

use render::Section;

/// The page for `report`; `scenarios` give each scenario's session rate
/// limit (none for a scenario not among them).
pub fn html(report: &RunReport, scenarios: &[Scenario]) -> String {
    let sections: Vec<Section<'_>> = report
        .scenarios
        .iter()
        .map(|r| {
            let scenario = scenarios.iter().find(|s| s.name == r.scenario);
            section(r, scenario)
        })
        .collect();
    render::page("sessionrange report", &sections)
}

fn section<'a>(report: &'a ScenarioReport, scenario: Option<&Scenario>) -> Section<'a> {
    let rate_limit = scenario.and_then(|s| {
        let v = &s.target.rules.session_velocity;
        (v.action != Action::Off).then(|| v.rate / v.per.as_secs_f64().max(0.001))
    });
    Section { report, rate_limit }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grade::view::tests::trace;
    use crate::grade::{DEFAULT_IN_FLIGHT_GRACE, Outcome, ViewBuilder};
    use crate::runner::ScenarioReport;

    /// A failed scenario's report whose target recorded `lines`.
    fn run_with(lines: &[String]) -> RunReport {
        let mut view = ViewBuilder::new(DEFAULT_IN_FLIGHT_GRACE);
        lines.iter().for_each(|l| view.add_line(l));
        let scenario = ScenarioReport {
            scenario: "hammer<script>".into(),
            description: "many requests".into(),
            passed: false,
            outcome: Outcome::Fail,
            client: Default::default(),
            metrics: Default::default(),
            criteria: Vec::new(),
            proxy_notes: Vec::new(),
            instances: Vec::new(),
            seed: 0,
            run_dir: "runs/hammer".into(),
            view: view.finish().1,
        };
        RunReport {
            scenarios: vec![scenario],
            interrupted: false,
        }
    }

    #[test]
    fn a_hammering_run_renders_within_its_bound() {
        // SESSIONRANGE_HTML_DECISIONS=500000 prints README's size.
        let n = std::env::var("SESSIONRANGE_HTML_DECISIONS")
            .ok()
            .and_then(|v| v.parse().ok());
        let n: usize = n.unwrap_or(50_000);
        let page = html(&run_with(&trace(n, 2_000)), &[]);
        eprintln!("{n} decisions: {} bytes", page.len());
        // README's bound: 100 sessions of 120 marks, 200 events.
        assert!(page.len() < 2_000_000, "{} bytes", page.len());
        assert!(page.contains("hammer&lt;script&gt;") && !page.contains("hammer<script>"));
        assert!(page.contains("1900 more sessions are not drawn"));
    }
}
