//! JUnit XML: a scenario is a testsuite, a criterion a testcase, metrics are properties.

use std::time::Duration;

use quick_junit::{NonSuccessKind, Property, Report, TestCase, TestCaseStatus, TestSuite};

use crate::runner::{RunReport, ScenarioReport};

/// The run as JUnit XML, for CI systems that read test results.
pub fn junit(report: &RunReport) -> String {
    let mut r = Report::new("sessionrange");
    for s in &report.scenarios {
        r.add_test_suite(suite(s));
    }
    r.to_string().unwrap_or_default()
}

fn suite(s: &ScenarioReport) -> TestSuite {
    let mut suite = TestSuite::new(s.scenario.as_str());
    suite.set_time(Duration::from_secs_f64(s.client.seconds.max(0.0)));
    for (name, value) in properties(s) {
        suite.add_property(Property::new(name, value));
    }
    for c in &s.criteria {
        let status = if c.passed {
            TestCaseStatus::success()
        } else {
            let mut st = TestCaseStatus::non_success(NonSuccessKind::Failure);
            st.set_message(format!("{} (wanted {})", c.value, c.threshold));
            st.set_description(c.details.join("\n"));
            st
        };
        let mut case = TestCase::new(c.name.as_str(), status);
        case.set_classname(format!("sessionrange.{}", s.scenario));
        suite.add_test_case(case);
    }
    suite
}

fn properties(s: &ScenarioReport) -> Vec<(String, String)> {
    let m = &s.metrics;
    let mut props = vec![
        ("completeness".to_owned(), format!("{:.4}", m.completeness)),
        ("records".to_owned(), m.output.unique_correct.to_string()),
        ("dataset_size".to_owned(), m.dataset_size.to_string()),
        ("duplicates".to_owned(), m.output.duplicates.to_string()),
        ("wrong_lines".to_owned(), m.output.wrong().to_string()),
        (
            "sessions_created".to_owned(),
            m.sessions_created.to_string(),
        ),
        ("mortality".to_owned(), format!("{:.4}", m.mortality)),
        (
            "reauth_overhead".to_owned(),
            format!("{:.4}", m.reauth_overhead),
        ),
        (
            "session_yield".to_owned(),
            format!("{:.2}", m.session_yield),
        ),
        ("zombie_requests".to_owned(), m.zombie_requests.to_string()),
        (
            "time_to_detect_seconds".to_owned(),
            format!("{:.2}", m.time_to_detect_seconds),
        ),
        (
            "accounts_banned".to_owned(),
            m.accounts_banned.len().to_string(),
        ),
        ("peak_rate".to_owned(), format!("{:.0}", m.peak_rate)),
        ("requests".to_owned(), m.requests.to_string()),
    ];
    for (reason, n) in &m.sessions_invalidated {
        props.push((format!("invalidated.{reason}"), n.to_string()));
    }
    for (reason, n) in &m.sessions_expired {
        props.push((format!("expired.{reason}"), n.to_string()));
    }
    props
}
