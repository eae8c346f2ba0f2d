//! The client's output file checked against what this run's target served: correct, duplicate, mismatched, unserved and garbage lines.
//!
//! Each non-blank line is judged once and falls in exactly one category:
//!
//! - `garbage`: not a JSON object, no usable `id`, or an id outside the dataset;
//! - `unserved`: a real id whose record this run's target never served to
//!   any session of the run (whatever its fields say);
//! - `duplicate`: an id already written on an earlier line;
//! - `mismatched`: the first line of a served id, with a field that differs
//!   from what was served (the example names the first such field);
//! - correct: the first line of a served id, every field equal.
//!
//! Fields compare as the record's JSON form, see [`field_matches`].

use std::collections::{BTreeMap, HashSet};

use serde::Serialize;
use serde_json::{Map, Value};

use crate::dataset::{Dataset, Record, ServedIds};

/// Lines kept as examples per kind of problem.
const EXAMPLES: usize = 5;
/// Characters of a client's line kept in an example.
const EXAMPLE_CHARS: usize = 160;

/// The client's records, judged.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct OutputCheck {
    /// Non-blank lines read.
    pub lines: u64,
    /// Distinct ids whose first line equals the record that was served.
    pub unique_correct: u64,
    /// Lines repeating an id already written (correct or not).
    pub duplicates: u64,
    /// First lines of a served id with a field that differs from it.
    pub mismatched: u64,
    /// Lines with a real id whose record this run never served.
    pub unserved: u64,
    /// Lines that are not a record at all (not a JSON object, no `id`, unknown id).
    pub garbage: u64,
    /// A few offending lines, by problem, for the report.
    pub examples: BTreeMap<String, Vec<String>>,
}

/// What one line turned out to be.
enum Line {
    Correct,
    Duplicate,
    Mismatched(String),
    Unserved(u64),
    Garbage(&'static str),
}

impl OutputCheck {
    /// Judges JSON Lines `text` against `dataset`, counting only the
    /// records in `served`.
    pub fn check(text: &str, dataset: &Dataset, served: &ServedIds) -> Self {
        let mut out = Self::default();
        let mut seen = HashSet::new();
        for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
            out.lines += 1;
            match judge(line, dataset, served, &mut seen) {
                Line::Correct => out.unique_correct += 1,
                Line::Duplicate => {
                    out.duplicates += 1;
                    out.example("duplicate", &clip(line));
                }
                Line::Mismatched(why) => {
                    out.mismatched += 1;
                    out.example("mismatched", &why);
                }
                Line::Unserved(id) => {
                    out.unserved += 1;
                    out.example("unserved", &format!("id {id} was never served"));
                }
                Line::Garbage(why) => {
                    out.garbage += 1;
                    out.example("garbage", &format!("{why}: {}", clip(line)));
                }
            }
        }
        out
    }

    /// Lines that are wrong in any way but repetition.
    pub fn wrong(&self) -> u64 {
        self.mismatched + self.unserved + self.garbage
    }

    fn example(&mut self, kind: &str, text: &str) {
        let list = self.examples.entry(kind.to_owned()).or_default();
        if list.len() < EXAMPLES {
            list.push(text.to_owned());
        }
    }
}

fn judge(line: &str, data: &Dataset, served: &ServedIds, seen: &mut HashSet<u64>) -> Line {
    let Ok(Value::Object(found)) = serde_json::from_str::<Value>(line) else {
        return Line::Garbage("not a JSON object");
    };
    let Some(id) = found.get("id").and_then(as_integer) else {
        return Line::Garbage("no integer `id`");
    };
    let Some(truth) = data.record(id) else {
        return Line::Garbage("no record has this id");
    };
    if !seen.insert(id) {
        return Line::Duplicate;
    }
    if !served.contains(id) {
        return Line::Unserved(id);
    }
    match first_difference(&truth, &found) {
        Some(why) => Line::Mismatched(format!("id {id}: {why}")),
        None => Line::Correct,
    }
}

/// The first field of `truth` that `found` lacks or gets wrong, as a
/// sentence with the expected and found values; extra fields are ignored.
fn first_difference(truth: &Record, found: &Map<String, Value>) -> Option<String> {
    let Ok(Value::Object(expected)) = serde_json::to_value(truth) else {
        return Some("the record cannot be compared".into());
    };
    Record::FIELDS.iter().find_map(|&name| {
        let want = expected.get(name)?;
        match found.get(name) {
            None => Some(format!("field `{name}` is missing (expected {want})")),
            Some(got) if !field_matches(want, got) => Some(format!(
                "field `{name}`: expected {want}, found {}",
                clip(&got.to_string())
            )),
            Some(_) => None,
        }
    })
}

/// Whether a written value equals the served one. Integers (`id`,
/// `stock`) match a JSON integer or a string of the same decimal integer;
/// the decimal `price` matches a string or number of the same decimal
/// value (`"19.90"`, `"19.9"` and `19.9` are equal); every other field is
/// a string compared exactly after trimming surrounding white space.
pub fn field_matches(want: &Value, got: &Value) -> bool {
    match want {
        Value::Number(_) => as_integer(want).is_some() && as_integer(want) == as_integer(got),
        Value::String(w) if is_decimal(w) => {
            let text = match got {
                Value::String(s) => s.trim().to_owned(),
                Value::Number(n) => n.to_string(),
                _ => return false,
            };
            is_decimal(&text) && decimal_key(&text) == decimal_key(w)
        }
        Value::String(w) => got.as_str().is_some_and(|g| g.trim() == w),
        other => other == got,
    }
}

/// A JSON number with an integer value (`12`, `12.0`), or a string of
/// decimal digits (`"12"`; surrounding white space is ignored, a sign is not
/// a digit).
fn as_integer(v: &Value) -> Option<u64> {
    match v {
        Value::Number(n) => n.as_u64().or_else(|| {
            n.as_f64()
                .filter(|f| f.fract() == 0.0 && *f >= 0.0 && *f < 1e19)
                .map(|f| f as u64)
        }),
        Value::String(s) => {
            let digits = s.trim();
            let plain = !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit());
            plain.then(|| digits.parse().ok()).flatten()
        }
        _ => None,
    }
}

/// Digits with at most one decimal point: `19`, `19.9`, `19.90`.
fn is_decimal(s: &str) -> bool {
    let (units, frac) = s.split_once('.').unwrap_or((s, "0"));
    !units.is_empty()
        && !frac.is_empty()
        && units
            .bytes()
            .chain(frac.bytes())
            .all(|b| b.is_ascii_digit())
}

/// A decimal's value as text without leading or trailing zeros.
fn decimal_key(s: &str) -> (String, String) {
    let (units, frac) = s.split_once('.').unwrap_or((s, ""));
    let units = units.trim_start_matches('0');
    (units.to_owned(), frac.trim_end_matches('0').to_owned())
}

/// A client's text cut short for a report, with control characters escaped.
fn clip(text: &str) -> String {
    let cut = text
        .char_indices()
        .nth(EXAMPLE_CHARS)
        .map_or(text.len(), |(i, _)| i);
    escape_controls(&text[..cut])
}

/// `text` with every control character escaped (`\u{1b}`), so that
/// nothing a client wrote can move a terminal's cursor or forge a line.
pub fn escape_controls(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataset::DatasetConfig;
    use serde_json::json;

    fn served(ids: std::ops::RangeInclusive<u64>) -> ServedIds {
        let mut s = ServedIds::default();
        s.insert(ids);
        s
    }

    fn line(r: &Record) -> String {
        serde_json::to_string(r).expect("json")
    }

    #[test]
    fn sorts_lines_into_correct_duplicate_mismatched_unserved_and_garbage() {
        let data = Dataset::new(&DatasetConfig::default());
        let r = |id| data.record(id).expect("record");
        let text = [
            line(&r(1)),
            line(&r(1)),
            line(&r(2)),
            line(&data.decoy(3)),
            line(&r(40)),
            "not json".to_owned(),
            "[1, 2]".to_owned(),
            "{\"id\": 999999999}".to_owned(),
            String::new(),
        ]
        .join("\n");
        let c = OutputCheck::check(&text, &data, &served(1..=25));
        let counts = (c.lines, c.unique_correct, c.duplicates);
        assert_eq!(counts, (8, 2, 1));
        assert_eq!((c.mismatched, c.unserved, c.garbage), (1, 1, 3));
        assert_eq!(c.examples["unserved"], ["id 40 was never served"]);
        assert!(c.examples["garbage"][0].starts_with("not a JSON object"));
    }

    #[test]
    fn a_record_the_target_never_served_counts_for_nothing() {
        let data = Dataset::new(&DatasetConfig::default());
        let text: Vec<String> = data.iter().map(|r| line(&r)).collect();
        let c = OutputCheck::check(&text.join("\n"), &data, &ServedIds::default());
        assert_eq!((c.unique_correct, c.unserved), (0, 500));
    }

    #[test]
    fn a_mismatch_names_the_first_differing_field_with_both_values() {
        let data = Dataset::new(&DatasetConfig::default());
        let mut r = data.record(1).expect("record");
        r.price = "1.00".into();
        r.stock += 1;
        let c = OutputCheck::check(&line(&r), &data, &served(1..=1));
        let want = "id 1: field `price`: expected \"337.49\", found \"1.00\"";
        assert_eq!(c.examples["mismatched"], [want]);
        let c = OutputCheck::check("{\"id\": 1}", &data, &served(1..=1));
        assert!(c.examples["mismatched"][0].contains("`sku` is missing"));
    }

    #[test]
    fn numbers_and_numeric_strings_compare_by_value() {
        let data = Dataset::new(&DatasetConfig::default());
        let r = data.record(1).expect("record");
        let mut v = serde_json::to_value(&r).expect("json");
        v["id"] = json!("1");
        v["stock"] = json!(r.stock.to_string());
        v["price"] = json!(337.49);
        v["name"] = json!(format!("  {}\n", r.name));
        v["extra"] = json!("ignored");
        let c = OutputCheck::check(&v.to_string(), &data, &served(1..=1));
        assert_eq!(c.unique_correct, 1, "{c:?}");
        assert!(field_matches(&json!("19.90"), &json!("19.9")));
        assert!(field_matches(&json!("19.90"), &json!(19.9)));
        assert!(!field_matches(&json!("19.90"), &json!("19.09")));
        assert!(!field_matches(&json!(226), &json!("226.5")));
        assert!(!field_matches(&json!(226), &json!("+226")));
        assert!(field_matches(&json!(226), &json!(" 226 ")));
        assert!(!field_matches(&json!("USD"), &json!("usd")));
    }

    #[test]
    fn examples_escape_control_characters() {
        let data = Dataset::new(&DatasetConfig::default());
        let c = OutputCheck::check("\u{1b}[2Jok client", &data, &ServedIds::default());
        assert!(!c.examples["garbage"][0].contains('\u{1b}'));
    }
}
