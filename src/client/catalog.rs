//! A page of the HTML catalog, read back into the records the JSON API would have sent.
//!
//! Where a target serves no API (`surfaces = ["html"]`), the client crawls
//! `GET /catalog?page=N`: a table with one `<tr data-id>` per record, a
//! cell per field classed with the API's field name, the page numbers in
//! the title and `<a rel="next">` to the next page.

use crate::client::items::ItemPage;
use crate::dataset::Record;

/// Reads a catalog page; `None` when it is not one, or a row is broken.
pub(crate) fn parse(html: &str) -> Option<ItemPage> {
    if !html.contains("<table id=\"catalog\">") {
        return None;
    }
    let title = between(html, "<title>Catalog: page ", "</title>")?;
    let (page, pages) = title.split_once(" of ")?;
    let next = between(html, "rel=\"next\" href=\"/catalog?page=", "\"");
    let mut items = Vec::new();
    for row in html.split("<tr data-id=\"").skip(1) {
        let row = row.split("</tr>").next()?;
        let record = record(row)?;
        items.push((record.id, serde_json::to_string(&record).ok()?));
    }
    Some(ItemPage {
        page: page.parse().ok(),
        pages: pages.parse().ok(),
        next: next.and_then(|n| n.parse().ok()),
        items,
    })
}

/// One row, from just after `<tr data-id="` to its `</tr>`.
fn record(row: &str) -> Option<Record> {
    let (id, cells) = row.split_once('"')?;
    let cell = |class: &str| {
        let open = format!("<td class=\"{class}\"");
        let after = &cells[cells.find(&open)? + open.len()..];
        let content = &after[after.find('>')? + 1..];
        Some(unescape(&content[..content.find("</td>")?]))
    };
    Some(Record {
        id: id.parse().ok()?,
        sku: cell("sku")?,
        name: cell("name")?,
        category: cell("category")?,
        price: cell("price")?,
        currency: cell("currency")?,
        stock: cell("stock")?.parse().ok()?,
        updated_at: cell("updated_at")?,
    })
}

/// The text between the first `start` and the next `end`.
fn between<'a>(text: &'a str, start: &str, end: &str) -> Option<&'a str> {
    let rest = &text[text.find(start)? + start.len()..];
    Some(&rest[..rest.find(end)?])
}

/// Undoes the target's HTML escaping (`&amp;` last, so `&amp;lt;` stays `&lt;`).
pub(crate) fn unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataset::{Dataset, DatasetConfig, render_catalog_html};

    #[test]
    fn every_catalog_row_reads_back_as_the_record_the_api_serves() {
        let dataset = Dataset::new(&DatasetConfig::default());
        let first = dataset.page(1).expect("a first page");
        let parsed = parse(&render_catalog_html(&first)).expect("a catalog page");
        assert_eq!((parsed.page, parsed.next), (Some(1), first.next));
        assert_eq!(parsed.pages, Some(first.pages));
        assert_eq!(parsed.items.len(), first.items.len());
        for ((id, text), record) in parsed.items.iter().zip(&first.items) {
            assert_eq!(*id, record.id);
            let back: Record = serde_json::from_str(text).expect("JSON");
            assert_eq!(&back, record);
            assert!(dataset.is_genuine(&back));
        }
        let last = dataset.page(first.pages).expect("a last page");
        let parsed = parse(&render_catalog_html(&last)).expect("a catalog page");
        assert_eq!(parsed.next, None);
        assert_eq!(unescape("a &amp;lt; b &#39;c&#39;"), "a &lt; b 'c'");
        assert!(parse("<h1>Sign in</h1>").is_none());
    }
}
