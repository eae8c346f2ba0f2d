//! Reading decision traces back: one JSON decision per line, as the target writes them.

use std::path::Path;

use crate::engine::Decision;
use crate::error::{Error, Result};

/// Parses a JSON Lines trace. Blank lines are skipped; a malformed line is
/// an error that names the file and the line.
pub fn parse_trace(text: &str, path: &Path) -> Result<Vec<Decision>> {
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(i, line)| {
            serde_json::from_str(line).map_err(|e| Error::Trace {
                path: path.to_owned(),
                line: i + 1,
                message: e.to_string(),
            })
        })
        .collect()
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
