//! Reading TOML files users write, with errors that name the line and the field.

use serde::de::DeserializeOwned;

/// A problem in a TOML file: where, and what.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct TomlProblem {
    /// 1-based line, when known.
    pub(crate) line: Option<usize>,
    /// Dotted path of the field, when known.
    pub(crate) field: Option<String>,
    /// What was wrong.
    pub(crate) message: String,
}

impl std::fmt::Display for TomlProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (&self.line, &self.field) {
            (Some(line), Some(field)) => {
                write!(f, "line {line}, field `{field}`: {}", self.message)
            }
            (Some(line), None) => write!(f, "line {line}: {}", self.message),
            (None, Some(field)) => write!(f, "field `{field}`: {}", self.message),
            (None, None) => f.write_str(&self.message),
        }
    }
}

/// Deserializes `text`, turning errors into a [`TomlProblem`].
pub(crate) fn deserialize<T: DeserializeOwned>(text: &str) -> Result<T, TomlProblem> {
    let de = toml::Deserializer::parse(text).map_err(|e| problem(text, &e, None))?;
    serde_path_to_error::deserialize(de).map_err(|e| {
        let field = field_name(&e.path().to_string());
        problem(text, e.inner(), Some(field))
    })
}

/// The user-facing field path: `Spanned` adds a private segment to hide.
fn field_name(path: &str) -> String {
    let segments = path
        .split('.')
        .filter(|s| !s.starts_with("$__serde_spanned"));
    segments.collect::<Vec<_>>().join(".")
}

fn problem(text: &str, error: &toml::de::Error, field: Option<String>) -> TomlProblem {
    TomlProblem {
        line: error.span().map(|span| line_of(text, span.start)),
        field: field.filter(|f| f != "." && !f.is_empty()),
        message: error.message().trim_end().to_owned(),
    }
}

/// The 1-based line of byte `offset` in `text`.
pub(crate) fn line_of(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    text.as_bytes()[..end]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

/// The line where the dotted `field` is set, found by its table header
/// and key: `a.b.c` is `c = ...` under `[a.b]` (or `b.c = ...` under `[a]`).
/// Array indices (`accounts[1].name`) pick the n-th `[[...]]` table.
pub(crate) fn line_of_field(text: &str, field: &str) -> Option<usize> {
    let parts: Vec<&str> = field.split('.').collect();
    (0..parts.len()).rev().find_map(|split| {
        let (table, key) = (&parts[..split], parts[split..].join("."));
        find_key(text, table, &key)
    })
}

fn find_key(text: &str, table: &[&str], key: &str) -> Option<usize> {
    let (header, nth) = header_of(table);
    let key = strip_index(key).0;
    let mut in_table = header.is_empty();
    let mut seen = 0;
    for (i, line) in text.lines().enumerate() {
        let t = line.trim();
        if t.starts_with('[') {
            let name = t.trim_matches(|c| c == '[' || c == ']').trim();
            in_table = name == header && {
                seen += 1;
                seen == nth + 1
            };
            continue;
        }
        let is_key = t.split_once('=').is_some_and(|(k, _)| k.trim() == key);
        if in_table && is_key {
            return Some(i + 1);
        }
    }
    None
}

/// `["target", "accounts[1]"]` → (`"target.accounts"`, 1).
fn header_of(table: &[&str]) -> (String, usize) {
    let mut nth = 0;
    let names: Vec<&str> = table
        .iter()
        .map(|p| {
            let (name, index) = strip_index(p);
            nth = index.unwrap_or(0);
            name
        })
        .collect();
    (names.join("."), nth)
}

fn strip_index(part: &str) -> (&str, Option<usize>) {
    match part.split_once('[') {
        Some((name, rest)) => (name, rest.trim_end_matches(']').parse().ok()),
        None => (part, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "name = \"x\"\n\n[target.rules.session_velocity]\nrate = 0\n\n[[target.accounts]]\nusername = \"a\"\n[[target.accounts]]\nusername = \"\"\n";

    #[test]
    fn finds_the_line_of_nested_and_indexed_fields() {
        assert_eq!(line_of_field(TEXT, "name"), Some(1));
        assert_eq!(
            line_of_field(TEXT, "target.rules.session_velocity.rate"),
            Some(4)
        );
        assert_eq!(line_of_field(TEXT, "target.accounts[1].username"), Some(9));
        assert_eq!(line_of_field(TEXT, "target.nothing"), None);
    }

    #[test]
    fn field_names_hide_the_spanned_wrapper() {
        let path = "range[0].network.$__serde_spanned_private_value";
        assert_eq!(field_name(path), "range[0].network");
        assert_eq!(field_name("range[2].location.lat"), "range[2].location.lat");
    }

    #[test]
    fn line_of_counts_from_one() {
        assert_eq!(line_of("a\nb\nc", 0), 1);
        assert_eq!(line_of("a\nb\nc", 2), 2);
        assert_eq!(line_of("a\nb\nc", 99), 3);
    }

    #[test]
    fn deserialize_names_line_and_field() {
        #[derive(serde::Deserialize, Debug)]
        #[serde(deny_unknown_fields)]
        struct T {
            #[allow(dead_code)]
            n: u32,
        }
        let p = deserialize::<T>("\nn = \"x\"\n").expect_err("wrong type");
        assert_eq!((p.line, p.field.as_deref()), (Some(2), Some("n")));
    }
}
