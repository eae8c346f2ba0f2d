//! Reading decision traces back: one JSON decision per line, as the target writes them.

use std::path::Path;

use crate::engine::Decision;
use crate::error::{Error, Result};

/// Parses one trace line: a decision, or `None` for another type of event
/// (a line whose `"type"` is present and not `"decision"`).
pub fn parse_line(line: &str) -> serde_json::Result<Option<Decision>> {
    let value: serde_json::Value = serde_json::from_str(line)?;
    match value.get("type").and_then(|t| t.as_str()) {
        Some(t) if t != "decision" => Ok(None),
        _ => serde_json::from_value(value).map(Some),
    }
}

/// Parses a JSON Lines trace into its decisions. Blank lines and other
/// events are skipped; a malformed line is an error that names the file
/// and the line.
pub fn parse_trace(text: &str, path: &Path) -> Result<Vec<Decision>> {
    let mut decisions = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let parsed = parse_line(line).map_err(|e| Error::Trace {
            path: path.to_owned(),
            line: i + 1,
            message: e.to_string(),
        })?;
        decisions.extend(parsed);
    }
    Ok(decisions)
}

/// Reads and parses the JSON Lines trace at `path`.
pub fn read_trace(path: &Path) -> Result<Vec<Decision>> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    parse_trace(&text, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bad_line_is_named() {
        let err = parse_trace("\n{\"nope\": 1}\n", Path::new("t.jsonl")).expect_err("bad line");
        assert!(err.to_string().starts_with("t.jsonl:2:"), "{err}");
        assert!(
            parse_trace("\n  \n", Path::new("t.jsonl"))
                .expect("blank")
                .is_empty()
        );
    }
}
