//! `run --html`: one self-contained HTML file per run, each scenario with its card, a timeline of every session, how each died, and its missing records.
//!
//! [`model`] reads a scenario's trace into a bounded view (pure);
//! [`render`] writes the page with maud. This module reads the trace
//! files the runs left, line by line.

pub mod model;
pub mod render;

use std::io::{BufRead as _, BufReader, Read as _};
use std::path::{Path, PathBuf};

use crate::contract::files;
use crate::grade::DEFAULT_IN_FLIGHT_GRACE;
use crate::runner::{RunReport, ScenarioReport};
use crate::scenario::Scenario;
use crate::site::TraceLimit;
use crate::verdict::Action;

use model::{RunView, ViewBuilder};
use render::Section;

/// The page for `report`; `scenarios` give each scenario's in-flight
/// grace and session rate limit (defaults for a scenario not among them).
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
    let grace = scenario.map_or(DEFAULT_IN_FLIGHT_GRACE, |s| s.grade.in_flight_grace);
    let rate_limit = scenario.and_then(|s| {
        let v = &s.target.rules.session_velocity;
        (v.action != Action::Off).then(|| v.rate / v.per.as_secs_f64().max(0.001))
    });
    Section {
        report,
        view: read_view(&report.run_dir, grace),
        rate_limit,
    }
}

/// The view of the trace files in `run_dir`, oldest first (a trace cut
/// at its size limit left `trace.jsonl.N` … `trace.jsonl.1` before it).
pub fn read_view(run_dir: &Path, grace: std::time::Duration) -> RunView {
    let mut builder = ViewBuilder::new(grace);
    let current = run_dir.join("trace.jsonl");
    let mut files: Vec<PathBuf> = (1..=TraceLimit::default().keep)
        .rev()
        .map(|i| run_dir.join(format!("trace.jsonl.{i}")))
        .collect();
    files.push(current);
    for path in files {
        // The file sits beside the client's folder: open it as a file a
        // client could have replaced (no link, no FIFO, no device) and
        // read no more than a trace file ever holds.
        let file = match files::open(&path) {
            Ok(f) => f.take(TraceLimit::default().max_bytes),
            Err(refused) => {
                builder.refuse(refused.problem);
                continue;
            }
        };
        for line in BufReader::new(file).split(b'\n') {
            let Ok(line) = line else { break };
            builder.add_line(&String::from_utf8_lossy(&line));
        }
    }
    builder.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grade::Outcome;
    use crate::runner::ScenarioReport;

    /// A failed scenario's report whose run left `lines` as its trace.
    fn run_with(dir: &Path, lines: &[String]) -> RunReport {
        std::fs::create_dir_all(dir).expect("a run dir");
        std::fs::write(dir.join("trace.jsonl"), lines.join("\n")).expect("a trace");
        let scenario = ScenarioReport {
            scenario: "hammer<script>".into(),
            description: "many requests".into(),
            passed: false,
            outcome: Outcome::Fail,
            client: Default::default(),
            metrics: Default::default(),
            criteria: Vec::new(),
            proxy_notes: Vec::new(),
            seed: 0,
            run_dir: dir.to_owned(),
        };
        RunReport {
            scenarios: vec![scenario],
            interrupted: false,
        }
    }

    #[test]
    fn a_client_cannot_make_the_report_hang_or_read_without_end() {
        let dir =
            std::env::temp_dir().join(format!("sessionrange-html-fifo-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a run dir");
        let fifo = dir.join("trace.jsonl");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status();
        assert!(made.is_ok_and(|s| s.success()), "mkfifo");
        std::os::unix::fs::symlink("/dev/zero", dir.join("trace.jsonl.1")).expect("a link");
        let view = read_view(&dir, DEFAULT_IN_FLIGHT_GRACE);
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(view.sessions.len(), 0);
        assert!(
            view.refused.iter().any(|w| w.contains("FIFO")),
            "{:?}",
            view.refused
        );
        assert!(
            view.refused.iter().any(|w| w.contains("symbolic link")),
            "{:?}",
            view.refused
        );
    }

    #[test]
    fn a_hammering_run_renders_within_its_bound() {
        // SESSIONRANGE_HTML_DECISIONS=500000 prints README's size.
        let n = std::env::var("SESSIONRANGE_HTML_DECISIONS")
            .ok()
            .and_then(|v| v.parse().ok());
        let n: usize = n.unwrap_or(50_000);
        let dir = std::env::temp_dir().join(format!("sessionrange-html-{}", std::process::id()));
        let report = run_with(&dir, &model::tests::trace(n, 2_000));
        let page = html(&report, &[]);
        let _ = std::fs::remove_dir_all(&dir);
        eprintln!("{n} decisions: {} bytes", page.len());
        // README's bound: 100 sessions of 120 marks, 200 events.
        assert!(page.len() < 2_000_000, "{} bytes", page.len());
        assert!(page.contains("hammer&lt;script&gt;") && !page.contains("hammer<script>"));
        assert!(page.contains("1900 more sessions are not drawn"));
    }
}
