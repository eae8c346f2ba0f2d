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
                let _ = writeln!(out, "  - {}", inert(d));
            }
        }
    }
    if report.interrupted {
        out.push_str("\n_The run was interrupted._\n");
    }
    truncate(out)
}

/// Text that renders as itself in GitHub Markdown: HTML (comments, tags)
/// and Markdown syntax (links, images, emphasis, tables) escaped, control
/// characters dropped. Details carry client text (its log, its output).
fn inert(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\\' | '`' | '*' | '_' | '[' | ']' | '(' | ')' | '!' | '#' | '|' | '~' => {
                out.push('\\');
                out.push(c);
            }
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    out
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

#[cfg(test)]
mod tests {
    use super::inert;

    #[test]
    fn client_text_cannot_hide_html_or_links_in_the_summary() {
        let evil = "<!-- hide --> ![x](http://e/x.png) [ok](javascript:1) | a **b**\u{1b}[2J";
        let safe = inert(evil);
        assert!(!safe.contains("<!--") && !safe.contains("!["), "{safe}");
        assert!(!safe.contains("](") && !safe.contains('\u{1b}'), "{safe}");
        assert!(safe.contains("&lt;\\!-- hide --&gt;"), "{safe}");
    }
}
