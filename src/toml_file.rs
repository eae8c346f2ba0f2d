//! Reading TOML files users write, with errors that name the line and the field.

use serde::de::DeserializeOwned;
use toml::de::{DeTable, DeValue};

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
    let field = field.filter(|f| f != "." && !f.is_empty());
    let start = error.span().map(|span| span.start);
    let start = start.or_else(|| field_start(text, field.as_deref()?));
    TomlProblem {
        line: start.map(|start| line_of(text, start)),
        field,
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

/// The 1-based line where the dotted `field` is written in `text`; see
/// [`field_start`].
pub(crate) fn field_line(text: &str, field: &str) -> Option<usize> {
    field_start(text, field).map(|start| line_of(text, start))
}

/// Where the dotted `field` (`pool.exits[1].faults[0].kind`) is written in
/// `text`, as a byte offset: the start of its key, or of its element in an
/// array, read off the parsed document's spans. A field left out (a default
/// found wrong) gets its nearest written parent; `None` when not even the
/// first segment is written.
fn field_start(text: &str, field: &str) -> Option<usize> {
    let document = DeTable::parse(text).ok()?;
    let mut here: Option<&DeValue<'_>> = None;
    let mut found = None;
    for step in steps(field) {
        let next = match (step, here) {
            (Some(Step::Key(key)), None) => key_in(document.get_ref(), key),
            (Some(Step::Key(key)), Some(DeValue::Table(table))) => key_in(table, key),
            (Some(Step::Index(i)), Some(DeValue::Array(array))) => {
                array.get(i).map(|v| (v.span().start, v.get_ref()))
            }
            _ => None,
        };
        let Some((start, value)) = next else { break };
        found = Some(start);
        here = Some(value);
    }
    found
}

/// The start of `key` in `table`, and its value.
fn key_in<'a, 'i>(table: &'a DeTable<'i>, key: &str) -> Option<(usize, &'a DeValue<'i>)> {
    let (key, value) = table.get_key_value(key)?;
    Some((key.span().start, value.get_ref()))
}

/// One step of a field path: a key, or an index into an array.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Step<'a> {
    Key(&'a str),
    Index(usize),
}

/// `exits[1].faults[0]` → `exits`, `1`, `faults`, `0`; `None` for a
/// segment that is no key or index (serde's `?`), where the walk stops.
fn steps(field: &str) -> impl Iterator<Item = Option<Step<'_>>> {
    field.split('.').flat_map(|part| {
        let mut pieces = part.split('[');
        let key = pieces.next().filter(|k| !k.is_empty()).map(Step::Key);
        let indices = pieces.map(|i| i.strip_suffix(']')?.parse().ok().map(Step::Index));
        key.map(Some).into_iter().chain(indices)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "name = \"x\"\n\n[target.rules.session_velocity]\nrate = 0\n\n[[target.accounts]]\nusername = \"a\"\n[[target.accounts]]\nusername = \"\"\n";

    #[test]
    fn finds_the_line_of_nested_and_indexed_fields() {
        assert_eq!(field_line(TEXT, "name"), Some(1));
        assert_eq!(
            field_line(TEXT, "target.rules.session_velocity.rate"),
            Some(4)
        );
        assert_eq!(field_line(TEXT, "target.accounts[1].username"), Some(9));
        assert_eq!(field_line(TEXT, "nothing"), None);
        assert_eq!(field_line(TEXT, "target.nothing"), Some(3), "its parent");
    }

    const NESTED: &str = "[[pool.exits]]\nname = \"a\"\n[[pool.exits.faults]]\nkind = \"dies\"\n\
                          [[pool.exits]]\nname = \"b\"\n[[pool.exits.faults]]\nkind = \"hangs\"\n\
                          [[pool.exits.faults]]\nkind = \"reset\"\n\
                          [pool.gateway]\nfaults = [\n  { kind = \"dies\" },\n  { kind = \"x\" },\n]\n\
                          [target]\nrules.session_velocity.rate = 0\n";

    #[test]
    fn arrays_of_tables_inside_arrays_of_tables_count_per_parent() {
        assert_eq!(field_line(NESTED, "pool.exits[0].faults[0].kind"), Some(4));
        assert_eq!(field_line(NESTED, "pool.exits[1].name"), Some(6));
        assert_eq!(field_line(NESTED, "pool.exits[1].faults[0].kind"), Some(8));
        assert_eq!(field_line(NESTED, "pool.exits[1].faults[1].kind"), Some(10));
        assert_eq!(field_line(NESTED, "pool.exits[1].faults[1]"), Some(9));
    }

    #[test]
    fn inline_arrays_and_dotted_keys_have_their_own_lines() {
        assert_eq!(field_line(NESTED, "pool.gateway.faults"), Some(12));
        assert_eq!(field_line(NESTED, "pool.gateway.faults[1]"), Some(14));
        assert_eq!(field_line(NESTED, "pool.gateway.faults[1].kind"), Some(14));
        assert_eq!(
            field_line(NESTED, "target.rules.session_velocity.rate"),
            Some(17)
        );
    }

    #[test]
    fn a_field_left_out_gets_its_nearest_written_parent() {
        assert_eq!(
            field_line(NESTED, "pool.exits[1].faults[1].after_bytes"),
            Some(9)
        );
        assert_eq!(field_line(NESTED, "pool.exits[7].name"), Some(1));
        assert_eq!(field_line(NESTED, "pool.exits[x].name"), Some(1));
        assert_eq!(field_line(NESTED, "grade.min_completeness"), None);
        assert_eq!(field_line("a = [", "a"), None, "not TOML");
    }

    #[test]
    fn steps_split_keys_and_indices() {
        let split: Vec<_> = steps("a.b[1][2].c").collect();
        let want = [
            Some(Step::Key("a")),
            Some(Step::Key("b")),
            Some(Step::Index(1)),
            Some(Step::Index(2)),
            Some(Step::Key("c")),
        ];
        assert_eq!(split, want);
        assert_eq!(
            steps("?[x").collect::<Vec<_>>(),
            [Some(Step::Key("?")), None]
        );
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
