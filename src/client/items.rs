//! A page of the JSON listing, keeping each record's text exactly as the API sent it.
//!
//! The output file holds the records as the API returned them, byte for
//! byte. Parsing into a `serde_json::Value` and printing it again would
//! reorder the keys, so a small scanner cuts each element of the `items`
//! array out of the body instead; the parsed value only supplies ids and
//! checks the cut.

use serde_json::Value;

/// One page of `GET /api/v1/items`.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct ItemPage {
    /// The page number the body claims.
    pub(crate) page: Option<u32>,
    /// Number of pages, when given.
    pub(crate) pages: Option<u32>,
    /// The next page, or `None` at the end.
    pub(crate) next: Option<u32>,
    /// Each record's id and its JSON text.
    pub(crate) items: Vec<(u64, String)>,
}

/// Reads a page body; `None` when it is not a listing page.
pub(crate) fn parse(body: &str) -> Option<ItemPage> {
    let value: Value = serde_json::from_str(body).ok()?;
    let parsed = value.get("items")?.as_array()?;
    let number = |name: &str| {
        value
            .get(name)
            .and_then(Value::as_u64)
            .and_then(|n| u32::try_from(n).ok())
    };
    let raw = element_texts(body, "items").filter(|raw| raw.len() == parsed.len());
    let mut items = Vec::with_capacity(parsed.len());
    for (i, item) in parsed.iter().enumerate() {
        let id = item.get("id")?.as_u64()?;
        let text = raw
            .as_ref()
            .map(|r| r[i])
            .filter(|t| serde_json::from_str::<Value>(t).ok().as_ref() == Some(item))
            .map_or_else(|| item.to_string(), str::to_owned);
        items.push((id, text));
    }
    Some(ItemPage {
        page: number("page"),
        pages: number("pages"),
        next: number("next"),
        items,
    })
}

/// The texts of the elements of the array under `key` in a top-level object.
fn element_texts<'a>(text: &'a str, key: &str) -> Option<Vec<&'a str>> {
    let b = text.as_bytes();
    let mut i = expect(b, ws(b, 0), b'{')?;
    loop {
        i = ws(b, i);
        let key_end = value_end(b, i).filter(|_| b.get(i) == Some(&b'"'))?;
        let name = &text[i + 1..key_end - 1];
        i = ws(b, expect(b, ws(b, key_end), b':')?);
        if name == key {
            return elements(text, i);
        }
        i = ws(b, value_end(b, i)?);
        match b.get(i)? {
            b',' => i += 1,
            _ => return None,
        }
    }
}

fn elements(text: &str, at: usize) -> Option<Vec<&str>> {
    let b = text.as_bytes();
    let mut i = expect(b, at, b'[')?;
    let mut out = Vec::new();
    loop {
        i = ws(b, i);
        if b.get(i) == Some(&b']') {
            return Some(out);
        }
        let end = value_end(b, i)?;
        out.push(&text[i..end]);
        i = ws(b, end);
        match b.get(i)? {
            b',' => i += 1,
            b']' => return Some(out),
            _ => return None,
        }
    }
}

/// The index just past the JSON value starting at `i`.
fn value_end(b: &[u8], i: usize) -> Option<usize> {
    match b.get(i)? {
        b'"' => string_end(b, i),
        b'{' | b'[' => {
            let mut depth = 0usize;
            let mut j = i;
            while j < b.len() {
                match b[j] {
                    b'"' => {
                        j = string_end(b, j)?;
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            return Some(j + 1);
                        }
                    }
                    _ => {}
                }
                j += 1;
            }
            None
        }
        _ => {
            let len = b[i..]
                .iter()
                .position(|c| matches!(c, b',' | b'}' | b']') || c.is_ascii_whitespace())
                .unwrap_or(b.len() - i);
            (len > 0).then_some(i + len)
        }
    }
}

/// The index just past the string whose opening quote is at `i`.
fn string_end(b: &[u8], i: usize) -> Option<usize> {
    let mut j = i + 1;
    while j < b.len() {
        match b[j] {
            b'\\' => j += 2,
            b'"' => return Some(j + 1),
            _ => j += 1,
        }
    }
    None
}

fn ws(b: &[u8], mut i: usize) -> usize {
    while b.get(i).is_some_and(u8::is_ascii_whitespace) {
        i += 1;
    }
    i
}

fn expect(b: &[u8], i: usize, c: u8) -> Option<usize> {
    (b.get(i) == Some(&c)).then_some(i + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_keep_their_text_and_key_order() {
        let body = r#"{"items":[{"id":2,"sku":"A-\"x\"","name":"Lamp {big}"}, {"id":3,"z":[1,{"a":"]"}],"b":null}],"page":1,"pages":4,"total":8,"next":2}"#;
        let page = parse(body).expect("a page");
        assert_eq!(page.page, Some(1));
        assert_eq!(page.pages, Some(4));
        assert_eq!(page.next, Some(2));
        assert_eq!(
            page.items,
            vec![
                (
                    2,
                    r#"{"id":2,"sku":"A-\"x\"","name":"Lamp {big}"}"#.to_owned()
                ),
                (3, r#"{"id":3,"z":[1,{"a":"]"}],"b":null}"#.to_owned()),
            ]
        );
    }

    #[test]
    fn the_items_key_may_come_anywhere_and_the_last_page_has_no_next() {
        let body = r#" { "page" : 3, "meta": {"items": [9]}, "items" : [ ] , "next" : null } "#;
        let page = parse(body).expect("a page");
        assert_eq!(page.next, None);
        assert!(page.items.is_empty());
    }

    #[test]
    fn not_a_page_is_none() {
        assert_eq!(parse("<html>"), None);
        assert_eq!(parse(r#"{"error":"blocked"}"#), None);
        assert_eq!(parse(r#"{"items":[{"sku":"no id"}]}"#), None);
    }
}
