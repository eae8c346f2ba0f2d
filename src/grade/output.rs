//! The client's output file checked against ground truth: correct, duplicate, decoy and garbage lines.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::dataset::{Dataset, Record};

/// Lines kept as examples per kind of problem.
const EXAMPLES: usize = 5;

/// The client's records, judged.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct OutputCheck {
    /// Non-blank lines read.
    pub lines: u64,
    /// Distinct ids whose record equals the ground truth.
    pub unique_correct: u64,
    /// Lines repeating an id already written (correct or not).
    pub duplicates: u64,
    /// Records with a real id but wrong or missing fields: decoys or corruption.
    pub decoys: u64,
    /// Lines that are not a record at all (not JSON, no `id`, unknown id).
    pub garbage: u64,
    /// A few offending lines, by problem, for the report.
    pub examples: BTreeMap<String, Vec<String>>,
}

impl OutputCheck {
    /// Judges JSON Lines `text` against `dataset`.
    pub fn check(text: &str, dataset: &Dataset) -> Self {
        let mut out = Self::default();
        let mut seen = BTreeSet::new();
        let mut correct = BTreeSet::new();
        for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
            out.lines += 1;
            let value: Option<serde_json::Value> = serde_json::from_str(line).ok();
            let id = value.as_ref().and_then(|v| v.get("id")?.as_u64());
            let Some(id) = id.filter(|id| dataset.record(*id).is_some()) else {
                out.garbage += 1;
                out.example("garbage", line);
                continue;
            };
            if !seen.insert(id) {
                out.duplicates += 1;
                out.example("duplicate", line);
            }
            let record = value.and_then(|v| serde_json::from_value::<Record>(v).ok());
            if record.is_some_and(|r| dataset.is_genuine(&r)) {
                correct.insert(id);
            } else {
                out.decoys += 1;
                out.example("decoy", line);
            }
        }
        out.unique_correct = correct.len() as u64;
        out
    }

    fn example(&mut self, kind: &str, line: &str) {
        let list = self.examples.entry(kind.to_owned()).or_default();
        if list.len() < EXAMPLES {
            let short: String = line.chars().take(160).collect();
            list.push(short);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataset::DatasetConfig;

    #[test]
    fn sorts_lines_into_correct_duplicate_decoy_and_garbage() {
        let data = Dataset::new(&DatasetConfig::default());
        let line = |r: &Record| serde_json::to_string(r).expect("json");
        let (a, b) = (data.record(1).expect("1"), data.record(2).expect("2"));
        let text = [
            line(&a),
            line(&a),
            line(&b),
            line(&data.decoy(3)),
            "not json".to_owned(),
            "{\"id\": 999999999}".to_owned(),
            String::new(),
        ]
        .join("\n");
        let c = OutputCheck::check(&text, &data);
        assert_eq!(
            (c.lines, c.unique_correct, c.duplicates, c.decoys, c.garbage),
            (6, 2, 1, 1, 2)
        );
        assert_eq!(c.examples["garbage"].len(), 2);
    }
}
