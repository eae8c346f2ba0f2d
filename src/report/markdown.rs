//! A Markdown summary sized for a GitHub step summary (`$GITHUB_STEP_SUMMARY`, under 1 MiB).

use std::fmt::Write as _;

use crate::runner::{Outcome, RunReport};

/// GitHub refuses step summaries over 1 MiB; stay well below.
pub const MAX_SUMMARY_BYTES: usize = 1000 * 1024;

/// The run as Markdown: one row per scenario, then each failure explained.
pub fn markdown(report: &RunReport) -> String {
    let mut out = String::from("## sessionrange report card\n\n");
    out.push_str(
        "| scenario | result | records | sessions | invalidated | zombies | failed criteria |\n",
    );
    out.push_str("|---|---|---|---|---|---|---|\n");
    for s in &report.scenarios {
        let m = &s.metrics;
        let failed: Vec<&str> = s
            .criteria
            .iter()
            .filter(|c| !c.passed)
            .map(|c| c.name.as_str())
            .collect();
        let _ = writeln!(
            out,
            "| `{}` | {} | {}/{} | {} | {} | {} | {} |",
            s.scenario,
            match s.outcome {
                Outcome::Pass => "✅ pass",
                Outcome::Fail => "❌ fail",
                Outcome::Inconclusive => "⚠️ inconclusive",
            },
            m.output.unique_correct,
            m.dataset_size,
            m.sessions_created,
            m.sessions_invalidated.values().sum::<u64>(),
            m.zombie_requests,
            if failed.is_empty() {
                "—".to_owned()
            } else {
                failed.join(", ")
            }
        );
    }
    let failures = report.scenarios.iter().filter(|s| !s.passed);
    for s in failures {
        let _ = writeln!(out, "\n### `{}`\n", s.scenario);
        for c in s.criteria.iter().filter(|c| !c.passed) {
            let _ = writeln!(
                out,
                "- **{}**: {} (wanted {})",
                c.name, c.value, c.threshold
            );
            for d in &c.details {
                let _ = writeln!(out, "  - {}", d.replace('|', "\\|"));
            }
        }
    }
    if report.interrupted {
        out.push_str("\n_The run was interrupted._\n");
    }
    truncate(out)
}

fn truncate(mut out: String) -> String {
    if out.len() <= MAX_SUMMARY_BYTES {
        return out;
    }
    let note = "\n\n_…cut to fit a step summary; see the JSON report for everything._\n";
    let mut cut = MAX_SUMMARY_BYTES - note.len();
    while !out.is_char_boundary(cut) {
        cut -= 1;
    }
    out.truncate(cut);
    out.push_str(note);
    out
}
