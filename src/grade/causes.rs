//! Why records are missing: pages never served, requests refused by reason, logins refused by reason.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::grade::facts::TraceFacts;

/// The causes of the records a client did not extract, counted.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Missing {
    /// Records of the dataset the target never served to this run.
    pub never_served: u64,
    /// Records served but not written correctly in the output.
    pub served_not_written: u64,
    /// Requests the engine refused, by verdict and reason
    /// (`challenge(VELOCITY_EXCEEDED)`), and requests refused before it
    /// (`refused(LOGIN_REQUIRED)`).
    pub requests_refused: BTreeMap<String, u64>,
    /// Login attempts refused, by reason.
    pub logins_refused: BTreeMap<String, u64>,
    /// Logins that produced a session.
    pub logins_ok: u64,
}

impl Missing {
    /// Counts the causes from the trace and the record counts.
    pub fn count(facts: &TraceFacts, dataset: u64, served: u64, correct: u64) -> Self {
        Self {
            never_served: dataset.saturating_sub(served),
            served_not_written: served.saturating_sub(correct),
            requests_refused: facts.requests_refused.clone(),
            logins_refused: facts.logins_refused.clone(),
            logins_ok: facts.logins_ok,
        }
    }

    /// Sentences for the report card, most telling first; none when
    /// nothing is missing.
    pub fn sentences(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.never_served > 0 {
            out.push(format!(
                "{} records were never served: their pages were never requested, or every request for them was refused",
                self.never_served
            ));
        }
        if self.served_not_written > 0 {
            out.push(format!(
                "{} records were served but are not in the output as served",
                self.served_not_written
            ));
        }
        if !self.requests_refused.is_empty() {
            out.push(format!(
                "requests refused: {}",
                counts(&self.requests_refused)
            ));
        }
        if !self.logins_refused.is_empty() {
            out.push(format!(
                "logins refused: {} ({} logins succeeded)",
                counts(&self.logins_refused),
                self.logins_ok
            ));
        }
        out
    }
}

/// `3 × challenge(VELOCITY_EXCEEDED), 1 × refused(LOGIN_REQUIRED)`, most first.
fn counts(map: &BTreeMap<String, u64>) -> String {
    let mut list: Vec<(&String, &u64)> = map.iter().collect();
    list.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    let parts: Vec<String> = list.iter().map(|(k, n)| format!("{n} × {k}")).collect();
    parts.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_list_the_commonest_cause_first() {
        let map = BTreeMap::from([("a X".to_owned(), 1), ("b Y".to_owned(), 3)]);
        assert_eq!(counts(&map), "3 × b Y, 1 × a X");
    }

    #[test]
    fn nothing_missing_says_nothing() {
        let m = Missing::count(&TraceFacts::default(), 10, 10, 10);
        assert!(m.sentences().is_empty());
        let m = Missing::count(&TraceFacts::default(), 10, 4, 3);
        assert_eq!((m.never_served, m.served_not_written), (6, 1));
        assert_eq!(m.sentences().len(), 2);
    }
}
