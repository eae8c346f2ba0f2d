//! The report card, in five shapes: a table for people, JSON, JUnit XML, a Markdown CI summary and a self-contained HTML page.
//!
//! Only with the `cli` feature (on by default): it reports on the runner's
//! runs.

pub mod html;
mod junit;
mod markdown;

use std::fmt::Write as _;

use crate::runner::{Outcome, RunReport, ScenarioReport};

pub use html::html;
pub use junit::junit;
pub use markdown::{MAX_SUMMARY_BYTES, markdown};

/// The report card for a terminal: one table per scenario, failures explained.
pub fn card(report: &RunReport) -> String {
    let mut out = String::new();
    for s in &report.scenarios {
        scenario_card(&mut out, s);
    }
    let passed = report.scenarios.iter().filter(|s| s.passed).count();
    let inconclusive = report
        .scenarios
        .iter()
        .filter(|s| s.outcome == Outcome::Inconclusive)
        .count();
    let _ = writeln!(
        out,
        "{passed} of {} scenarios passed{}{}",
        report.scenarios.len(),
        match inconclusive {
            0 => String::new(),
            n => format!(", {n} inconclusive (the trap never fired)"),
        },
        if report.interrupted {
            " (interrupted)"
        } else {
            ""
        }
    );
    out
}

/// Text for a terminal with every control character escaped (`\u{1b}`), so
/// nothing a client wrote (its log, its output) can move the cursor, clear
/// the screen or forge a line of the card.
pub fn terminal(text: &str) -> String {
    crate::grade::output::escape_controls(text)
}

fn scenario_card(out: &mut String, s: &ScenarioReport) {
    let verdict = s.outcome.word();
    let _ = writeln!(out, "{verdict}  {}  ({})", s.scenario, s.run_dir.display());
    let width = s.criteria.iter().map(|c| c.name.len()).max().unwrap_or(0);
    for c in &s.criteria {
        let mark = if c.passed { "ok  " } else { "FAIL" };
        let _ = writeln!(
            out,
            "  {mark} {:<width$}  {:<28}  {}",
            c.name,
            terminal(&c.value),
            c.threshold
        );
        for d in &c.details {
            let _ = writeln!(out, "         {}", terminal(d));
        }
    }
    let m = &s.metrics;
    let _ = writeln!(
        out,
        "  records {}/{}, sessions {} (invalidated {}, expired {}), {} requests, {} logins in {:.1} s",
        m.output.unique_correct,
        m.dataset_size,
        m.sessions_created,
        m.sessions_invalidated.values().sum::<u64>(),
        m.sessions_expired.values().sum::<u64>(),
        m.requests,
        m.sessions_created,
        m.login_seconds
    );
    if !m.challenges.is_empty() {
        let count = |k: &str| m.challenges.get(k).copied().unwrap_or(0);
        let _ = writeln!(
            out,
            "  challenges solved by the page's script {}, by the client's own code {}, answered wrong {}",
            count("page"),
            count("client"),
            count("wrong")
        );
    }
    for note in s.proxy_notes.iter().take(5) {
        let _ = writeln!(out, "  proxy: {note}");
    }
    if !s.instances.is_empty() {
        let each: Vec<String> = s.instances.iter().map(u64::to_string).collect();
        let _ = writeln!(
            out,
            "  instances: requests judged by each, {}",
            each.join(", ")
        );
    }
    out.push('\n');
}

#[cfg(test)]
mod tests {
    use super::terminal;

    #[test]
    fn client_text_cannot_forge_a_line_of_the_card() {
        let forged = "oops\r\u{1b}[2K  ok   client  exited 0\nPASS";
        let safe = terminal(forged);
        assert!(!safe.chars().any(char::is_control), "{safe}");
        assert!(safe.contains("\\u{1b}[2K") && safe.contains("\\r") && safe.contains("\\n"));
    }
}
