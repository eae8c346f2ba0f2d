//! The protected data behind the login wall, generated from a seed so the ground truth is known.
//!
//! Every [`Record`] is a pure function of `(seed, id)`, computed with a
//! fixed splitmix64 mixer and fixed word lists rather than `rand`, so the
//! values for a given seed are stable forever: across runs, machines and
//! crate versions. A grader regenerates the same [`Dataset`] and compares
//! what a client scraped with [`Dataset::record`].
//!
//! A run mixes a random *salt* into the seed ([`DatasetConfig::salt`]),
//! so that no record can be computed before the run: only this run's
//! target knows them, and only what it served counts (see [`ServedIds`]).
//! Salt 0 leaves the seed's values unchanged.
//!
//! [`Dataset::decoy`] makes plausible records that are *not* ground truth,
//! for soft-logout and honeypot answers: a client that stores them has
//! been fooled, and [`Dataset::is_genuine`] says so.
//!
//! ```
//! use sessionrange::dataset::{Dataset, DatasetConfig};
//!
//! let data = Dataset::new(&DatasetConfig::default());
//! let first = data.page(1).expect("page 1 exists");
//! assert_eq!(first.items.len(), 25);
//! assert!(data.is_genuine(&first.items[0]));
//! assert!(!data.is_genuine(&data.decoy(1)));
//! ```

use std::fmt::Write as _;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// How big the dataset is, how it is paged, and which seed generates it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct DatasetConfig {
    /// Number of records; ids run `1..=size`.
    pub size: u32,
    /// Records per catalog page.
    pub page_size: u32,
    /// The seed every value is derived from.
    pub seed: u64,
    /// Mixed into the seed by whoever runs the target (`run` and `serve`
    /// draw one per run unless `--seed` gives it): never read from a
    /// scenario file, so a client cannot know the records in advance.
    #[serde(skip)]
    pub salt: u64,
}

impl Default for DatasetConfig {
    fn default() -> Self {
        Self {
            size: 500,
            page_size: 25,
            seed: 7,
            salt: 0,
        }
    }
}

impl DatasetConfig {
    /// Checks every value; the error names the field under `prefix`
    /// (such as `"dataset"`).
    pub fn validate(&self, prefix: &str) -> Result<()> {
        if self.size < 1 {
            return Err(Error::config(
                format!("{prefix}.size"),
                "must be at least 1",
            ));
        }
        if !(1..=1000).contains(&self.page_size) {
            return Err(Error::config(
                format!("{prefix}.page_size"),
                format!("must be between 1 and 1000, got {}", self.page_size),
            ));
        }
        Ok(())
    }
}

/// One product of the catalog.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Record {
    /// 1-based id, unique in the dataset.
    pub id: u64,
    /// Stock-keeping unit, such as `"TOO-000042-7F3A"`.
    pub sku: String,
    /// Product name: an adjective and a noun.
    pub name: String,
    /// Product category.
    pub category: String,
    /// Price as a decimal string such as `"19.99"`, to avoid float noise.
    pub price: String,
    /// ISO 4217 currency code.
    pub currency: String,
    /// Units in stock.
    pub stock: u32,
    /// Last update, RFC 3339 in UTC, within the year before 2025-01-01.
    pub updated_at: String,
}

impl Record {
    /// The field names, in the order the API writes them.
    pub const FIELDS: [&'static str; 8] = [
        "id",
        "sku",
        "name",
        "category",
        "price",
        "currency",
        "stock",
        "updated_at",
    ];
}

/// One page of the catalog listing.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Page {
    /// The records on this page, in id order.
    pub items: Vec<Record>,
    /// This page's 1-based number.
    pub page: u32,
    /// Number of pages in the dataset.
    pub pages: u32,
    /// Number of records in the dataset.
    pub total: u32,
    /// The next page's number, if there is one.
    pub next: Option<u32>,
}

/// The ground-truth catalog: a pure function of its config.
#[derive(Clone, Debug)]
pub struct Dataset {
    size: u32,
    page_size: u32,
    seed: u64,
}

/// Mixed into the seed to draw decoys from a stream of their own.
const DECOY_SALT: u64 = 0xDEC0_7DEC_0700_0001;
/// 2025-01-01T00:00:00Z: `updated_at` lies in the year before it.
const BASE_SECS: u64 = 1_735_689_600;
const YEAR_SECS: u64 = 365 * 86_400;

const CATEGORIES: &[&str] = &[
    "Tools", "Garden", "Kitchen", "Office", "Outdoor", "Lighting", "Audio", "Toys",
];
const ADJECTIVES: &[&str] = &[
    "Compact",
    "Deluxe",
    "Rugged",
    "Silent",
    "Smart",
    "Classic",
    "Portable",
    "Heavy-Duty",
    "Wireless",
    "Ergonomic",
    "Vintage",
    "Modular",
    "Foldable",
    "Premium",
    "Eco",
    "Mini",
];
const NOUNS: &[&str] = &[
    "Lamp",
    "Kettle",
    "Drill",
    "Speaker",
    "Planter",
    "Stapler",
    "Lantern",
    "Blender",
    "Wrench",
    "Headset",
    "Trowel",
    "Desk Organizer",
    "Tent",
    "Robot",
    "Toaster",
    "Hammock",
];
const CURRENCIES: &[&str] = &["USD", "USD", "USD", "EUR", "GBP"];
const CENTS: &[u32] = &[0, 49, 95, 99, 99];

impl Dataset {
    /// The dataset a config describes. The config is expected to be
    /// validated; a zero page size is treated as 1.
    pub fn new(config: &DatasetConfig) -> Self {
        Self {
            size: config.size,
            page_size: config.page_size.max(1),
            seed: config.seed ^ config.salt,
        }
    }

    /// Number of records.
    pub fn len(&self) -> u32 {
        self.size
    }

    /// Whether the dataset has no records (only with an unvalidated config).
    pub fn is_empty(&self) -> bool {
        self.size == 0
    }

    /// Number of pages.
    pub fn pages(&self) -> u32 {
        self.size.div_ceil(self.page_size)
    }

    /// The genuine record with this id, or `None` outside `1..=len()`.
    pub fn record(&self, id: u64) -> Option<Record> {
        (1..=u64::from(self.size))
            .contains(&id)
            .then(|| build(id, &Draws::new(self.seed, id)))
    }

    /// Every genuine record, in id order.
    pub fn iter(&self) -> impl Iterator<Item = Record> + '_ {
        (1..=u64::from(self.size)).map(|id| build(id, &Draws::new(self.seed, id)))
    }

    /// Page `n` (1-based) of genuine records, or `None` outside `1..=pages()`.
    pub fn page(&self, n: u32) -> Option<Page> {
        let ids = self.page_ids(n)?;
        let items = ids.filter_map(|id| self.record(id)).collect();
        Some(self.frame(n, items))
    }

    /// A plausible record with this id that is not ground truth. Its `sku`
    /// always differs from the genuine one; the other fields are drawn from
    /// a stream of their own and usually differ too.
    pub fn decoy(&self, id: u64) -> Record {
        let genuine = Draws::new(self.seed, id);
        let mut d = Draws::new(self.seed ^ DECOY_SALT, id);
        d.suffix = genuine.suffix ^ (1 + d.suffix % 0xFFFF);
        build(id, &d)
    }

    /// A page of decoys shaped like page `n`, for soft-logout and honeypot
    /// answers. Outside `1..=pages()` its list of items is empty.
    pub fn decoy_page(&self, n: u32) -> Page {
        let items = match self.page_ids(n) {
            Some(ids) => ids.map(|id| self.decoy(id)).collect(),
            None => Vec::new(),
        };
        self.frame(n, items)
    }

    /// Whether `record` is exactly the ground truth for its id.
    pub fn is_genuine(&self, record: &Record) -> bool {
        self.record(record.id).is_some_and(|g| g == *record)
    }

    /// The ids on page `n`, or `None` outside `1..=pages()`.
    pub fn page_ids(&self, n: u32) -> Option<std::ops::RangeInclusive<u64>> {
        if n == 0 || n > self.pages() {
            return None;
        }
        let first = u64::from(n - 1) * u64::from(self.page_size) + 1;
        let last = (first + u64::from(self.page_size) - 1).min(u64::from(self.size));
        Some(first..=last)
    }

    fn frame(&self, n: u32, items: Vec<Record>) -> Page {
        let pages = self.pages();
        Page {
            items,
            page: n,
            pages,
            total: self.size,
            next: (n >= 1 && n < pages).then(|| n + 1),
        }
    }
}

/// The ids of the records a target served, as a bit set: what a run's
/// grade counts, so that a record the client did not get from this run's
/// target never counts, however it was obtained.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ServedIds {
    words: Vec<u64>,
    count: u64,
}

impl ServedIds {
    /// Marks every id in `ids` as served.
    pub fn insert(&mut self, ids: std::ops::RangeInclusive<u64>) {
        for id in ids {
            let (word, bit) = ((id / 64) as usize, id % 64);
            if self.words.len() <= word {
                self.words.resize(word + 1, 0);
            }
            if self.words[word] & (1 << bit) == 0 {
                self.words[word] |= 1 << bit;
                self.count += 1;
            }
        }
    }

    /// Whether `id` was served.
    pub fn contains(&self, id: u64) -> bool {
        let word = usize::try_from(id / 64).ok();
        word.and_then(|w| self.words.get(w))
            .is_some_and(|w| w & (1 << (id % 64)) != 0)
    }

    /// How many distinct ids were served.
    pub fn len(&self) -> u64 {
        self.count
    }

    /// Whether nothing was served.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }
}

/// The raw random draws behind one record. The order in which
/// [`Draws::new`] takes them is part of the stability promise: append
/// new fields at the end, never reorder.
struct Draws {
    category: u64,
    adjective: u64,
    noun: u64,
    suffix: u64,
    price: u64,
    currency: u64,
    stock: u64,
    updated: u64,
}

impl Draws {
    fn new(seed: u64, id: u64) -> Self {
        let mut s = Stream(splitmix64(seed ^ splitmix64(id)));
        Self {
            category: s.next(),
            adjective: s.next(),
            noun: s.next(),
            suffix: s.next(),
            price: s.next(),
            currency: s.next(),
            stock: s.next(),
            updated: s.next(),
        }
    }
}

fn build(id: u64, d: &Draws) -> Record {
    let category = pick(CATEGORIES, d.category);
    let prefix: String = category.chars().take(3).collect();
    Record {
        id,
        sku: format!(
            "{}-{id:06}-{:04X}",
            prefix.to_uppercase(),
            d.suffix & 0xFFFF
        ),
        name: format!("{} {}", pick(ADJECTIVES, d.adjective), pick(NOUNS, d.noun)),
        category: category.to_owned(),
        price: price(d.price),
        currency: pick(CURRENCIES, d.currency).to_owned(),
        stock: stock(d.stock),
        updated_at: updated_at(d.updated),
    }
}

fn price(x: u64) -> String {
    let units = 1 + (x >> 8) % 499;
    let cents = CENTS[(x & 0xFF) as usize % CENTS.len()];
    format!("{units}.{cents:02}")
}

/// About one record in ten is out of stock.
fn stock(x: u64) -> u32 {
    if x.is_multiple_of(10) {
        0
    } else {
        (x >> 8) as u32 % 500 + 1
    }
}

fn updated_at(x: u64) -> String {
    let at = SystemTime::UNIX_EPOCH + Duration::from_secs(BASE_SECS - x % YEAR_SECS);
    humantime::format_rfc3339_seconds(at).to_string()
}

fn pick(list: &[&'static str], x: u64) -> &'static str {
    list[(x % list.len() as u64) as usize]
}

/// A splitmix64 sequence: fixed forever, unlike `rand`'s generators.
struct Stream(u64);

impl Stream {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        mix(self.0)
    }
}

fn splitmix64(x: u64) -> u64 {
    mix(x.wrapping_add(0x9E37_79B9_7F4A_7C15))
}

fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The catalog page as HTML: one `<tr data-id="…">` per record with one
/// cell per field, classed with the JSON API's field names (`sku`, `name`,
/// `category`, `price`, `currency`, `stock`, `updated_at`), so an HTML
/// scraper and an API scraper write the same record; and `<a rel="next" href="/catalog?page=N">`
/// when there is a next page. All text is HTML-escaped.
pub fn render_catalog_html(page: &Page) -> String {
    let mut html = format!(
        "<!doctype html>\n<html lang=\"en\">\n<head><meta charset=\"utf-8\">\
         <title>Catalog: page {} of {}</title></head>\n<body>\n<h1>Catalog</h1>\n\
         <table id=\"catalog\">\n<thead><tr><th>SKU</th><th>Name</th><th>Category</th>\
         <th>Price</th><th>Currency</th><th>Stock</th><th>Updated</th></tr></thead>\n<tbody>\n",
        page.page, page.pages
    );
    for r in &page.items {
        push_row(&mut html, r);
    }
    html.push_str("</tbody>\n</table>\n");
    if let Some(next) = page.next {
        let _ = writeln!(
            html,
            "<a rel=\"next\" href=\"/catalog?page={next}\">Next</a>"
        );
    }
    html.push_str("</body>\n</html>\n");
    html
}

fn push_row(html: &mut String, r: &Record) {
    let _ = writeln!(
        html,
        "<tr data-id=\"{}\"><td class=\"sku\">{}</td><td class=\"name\">{}</td>\
         <td class=\"category\">{}</td><td class=\"price\">{}</td><td class=\"currency\">{}</td>\
         <td class=\"stock\">{}</td><td class=\"updated_at\">{}</td></tr>",
        r.id,
        escape_html(&r.sku),
        escape_html(&r.name),
        escape_html(&r.category),
        escape_html(&r.price),
        escape_html(&r.currency),
        r.stock,
        escape_html(&r.updated_at),
    );
}

/// Escapes text for HTML content and double- or single-quoted attributes.
pub fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(size: u32, page_size: u32, seed: u64) -> Dataset {
        Dataset::new(&DatasetConfig {
            size,
            page_size,
            seed,
            salt: 0,
        })
    }

    #[test]
    fn same_seed_gives_same_records() {
        let a: Vec<_> = data(50, 10, 7).iter().collect();
        let b: Vec<_> = data(50, 10, 7).iter().collect();
        assert_eq!(a, b);
    }

    #[test]
    fn different_seeds_give_different_records() {
        let a: Vec<_> = data(50, 10, 7).iter().collect();
        let b: Vec<_> = data(50, 10, 8).iter().collect();
        let same = a.iter().zip(&b).filter(|(x, y)| x == y).count();
        assert_eq!(same, 0);
    }

    #[test]
    fn values_are_pinned_for_the_default_seed() {
        let r = Dataset::new(&DatasetConfig::default())
            .record(1)
            .expect("record 1");
        let json = serde_json::to_string(&r).expect("serializes");
        assert_eq!(json, PINNED_RECORD_1);
    }

    /// Changing this breaks every stored ground truth: the values are a
    /// promise, not an implementation detail.
    const PINNED_RECORD_1: &str = r#"{"id":1,"sku":"LIG-000001-0F38","name":"Portable Planter","category":"Lighting","price":"337.49","currency":"USD","stock":226,"updated_at":"2024-08-31T05:42:01Z"}"#;

    #[test]
    fn the_mixer_is_reference_splitmix64() {
        // First output of splitmix64 seeded with 0 (Vigna's reference code).
        assert_eq!(splitmix64(0), 0xE220_A839_7B1D_CDAF);
    }

    #[test]
    fn records_look_plausible() {
        for r in data(200, 10, 7).iter() {
            assert_eq!(r.sku.len(), 15, "{r:?}");
            assert!(r.sku.starts_with(&r.category[..3].to_uppercase()), "{r:?}");
            let (units, cents) = r.price.split_once('.').expect("decimal price");
            assert!(units.parse::<u32>().is_ok() && cents.len() == 2, "{r:?}");
            assert!(r.updated_at.starts_with("2024-") || r.updated_at.starts_with("2025-"));
            assert!(r.updated_at.ends_with('Z'));
        }
    }

    #[test]
    fn pages_cover_ids_without_gaps() {
        let d = data(53, 10, 1);
        assert_eq!(d.pages(), 6);
        let ids: Vec<u64> = (1..=d.pages())
            .flat_map(|n| d.page(n).expect("page").items)
            .map(|r| r.id)
            .collect();
        assert_eq!(ids, (1..=53).collect::<Vec<_>>());
    }

    #[test]
    fn last_page_is_partial_and_has_no_next() {
        let d = data(53, 10, 1);
        let last = d.page(6).expect("last page");
        assert_eq!(last.items.len(), 3);
        assert_eq!((last.page, last.pages, last.total), (6, 6, 53));
        assert_eq!(last.next, None);
        assert_eq!(d.page(5).expect("page 5").next, Some(6));
    }

    #[test]
    fn out_of_range_pages_and_ids_are_none() {
        let d = data(53, 10, 1);
        assert!(d.page(0).is_none());
        assert!(d.page(7).is_none());
        assert!(d.record(0).is_none());
        assert!(d.record(54).is_none());
        assert!(d.decoy_page(7).items.is_empty());
    }

    #[test]
    fn decoys_are_never_genuine() {
        let d = data(500, 25, 7);
        for id in 1..=500 {
            let decoy = d.decoy(id);
            assert_eq!(decoy.id, id);
            assert_ne!(decoy.sku, d.record(id).expect("genuine").sku);
            assert!(!d.is_genuine(&decoy));
        }
        assert!(d.decoy_page(3).items.iter().all(|r| !d.is_genuine(r)));
        assert!(d.iter().all(|r| d.is_genuine(&r)));
    }

    #[test]
    fn decoy_page_is_shaped_like_the_real_one() {
        let d = data(53, 10, 1);
        let (real, fake) = (d.page(6).expect("page"), d.decoy_page(6));
        assert_eq!(
            (fake.page, fake.pages, fake.total, fake.next),
            (6, 6, 53, None)
        );
        let ids = |p: &Page| p.items.iter().map(|r| r.id).collect::<Vec<_>>();
        assert_eq!(ids(&real), ids(&fake));
    }

    #[test]
    fn html_lists_every_record_and_links_the_next_page() {
        let d = data(30, 10, 1);
        let html = render_catalog_html(&d.page(1).expect("page"));
        assert_eq!(html.matches("<tr data-id=").count(), 10);
        assert!(html.contains("<tr data-id=\"1\">"));
        assert!(html.contains("<a rel=\"next\" href=\"/catalog?page=2\">"));
        for class in &Record::FIELDS[1..] {
            assert!(html.contains(&format!("<td class=\"{class}\"")), "{class}");
        }
        let last = render_catalog_html(&d.page(3).expect("page"));
        assert!(!last.contains("rel=\"next\""));
    }

    #[test]
    fn salt_changes_every_record_and_zero_changes_none() {
        let config = DatasetConfig::default();
        let plain: Vec<_> = Dataset::new(&config).iter().collect();
        let salted = DatasetConfig {
            salt: 0x5A17,
            ..config.clone()
        };
        let same = Dataset::new(&salted)
            .iter()
            .zip(&plain)
            .filter(|(a, b)| a == *b)
            .count();
        assert_eq!(same, 0);
        let unsalted = DatasetConfig { salt: 0, ..config };
        assert_eq!(Dataset::new(&unsalted).iter().collect::<Vec<_>>(), plain);
    }

    #[test]
    fn a_scenario_file_cannot_set_the_salt() {
        let err = serde_json::from_str::<DatasetConfig>(r#"{"salt":1}"#).expect_err("refused");
        assert!(err.to_string().contains("salt"), "{err}");
    }

    #[test]
    fn served_ids_count_each_id_once() {
        let mut s = ServedIds::default();
        assert!(s.is_empty() && !s.contains(0) && !s.contains(u64::MAX));
        s.insert(3..=5);
        s.insert(5..=70);
        s.insert(70..=70);
        assert_eq!(s.len(), 68);
        assert!(s.contains(3) && s.contains(64) && s.contains(70));
        assert!(!s.contains(2) && !s.contains(71) && !s.contains(10_000));
    }

    #[test]
    fn html_escapes_text() {
        let mut r = data(1, 1, 1).record(1).expect("record");
        r.name = "<script>alert('x')</script> & \"co\"".into();
        let page = Page {
            items: vec![r],
            page: 1,
            pages: 1,
            total: 1,
            next: None,
        };
        let html = render_catalog_html(&page);
        assert!(!html.contains("<script>"));
        assert!(
            html.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;co&quot;")
        );
    }

    #[test]
    fn validation_names_the_field() {
        let bad = |size, page_size| DatasetConfig {
            size,
            page_size,
            seed: 1,
            salt: 0,
        };
        let field = |c: DatasetConfig| match c.validate("dataset") {
            Err(Error::Config { field, .. }) => field,
            other => panic!("expected a config error, got {other:?}"),
        };
        assert_eq!(field(bad(0, 10)), "dataset.size");
        assert_eq!(field(bad(10, 0)), "dataset.page_size");
        assert_eq!(field(bad(10, 1001)), "dataset.page_size");
        assert!(DatasetConfig::default().validate("dataset").is_ok());
    }

    #[test]
    fn config_refuses_unknown_fields_and_fills_defaults() {
        let c: DatasetConfig = serde_json::from_str(r#"{"size":9}"#).expect("parses");
        assert_eq!((c.size, c.page_size, c.seed), (9, 25, 7));
        assert!(serde_json::from_str::<DatasetConfig>(r#"{"sise":9}"#).is_err());
    }
}
