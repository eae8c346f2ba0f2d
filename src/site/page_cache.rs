//! Each page of records rendered once per run: every later request for it gets the same bytes.
//!
//! The dataset never changes during a run (its salt is fixed at start), so
//! rendering a page's JSON or HTML again for each request only repeats
//! work. The first request for a page renders it; later ones clone its
//! [`Bytes`]. The cache is bounded: past [`MAX_CACHED_PAGES`] pages or
//! [`MAX_CACHED_BYTES`] bytes, pages are rendered per request as before,
//! so a huge dataset costs time, not memory.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;

use crate::dataset::{Dataset, render_catalog_html};

/// Pages whose bytes may be kept, per form (JSON and HTML).
pub(crate) const MAX_CACHED_PAGES: usize = 10_000;
/// Bytes of rendered pages kept, both forms together.
pub(crate) const MAX_CACHED_BYTES: usize = 64 << 20;

/// The rendered pages of one run's dataset.
#[derive(Debug)]
pub(crate) struct PageCache {
    json: Vec<OnceLock<Bytes>>,
    html: Vec<OnceLock<Bytes>>,
    /// Bytes kept so far.
    kept: AtomicUsize,
}

impl PageCache {
    /// An empty cache for a dataset of `pages` pages.
    pub(crate) fn new(pages: u32) -> Self {
        let slots = (pages as usize).min(MAX_CACHED_PAGES);
        Self {
            json: (0..slots).map(|_| OnceLock::new()).collect(),
            html: (0..slots).map(|_| OnceLock::new()).collect(),
            kept: AtomicUsize::new(0),
        }
    }

    /// Page `n` as the JSON API sends it; `None` past the last page.
    pub(crate) fn json(&self, data: &Dataset, n: u32) -> Option<Bytes> {
        self.get(&self.json, n, || {
            let page = data.page(n)?;
            serde_json::to_vec(&page).ok()
        })
    }

    /// Page `n` as the HTML catalog sends it; `None` past the last page.
    pub(crate) fn html(&self, data: &Dataset, n: u32) -> Option<Bytes> {
        self.get(&self.html, n, || {
            Some(render_catalog_html(&data.page(n)?).into_bytes())
        })
    }

    fn get(
        &self,
        slots: &[OnceLock<Bytes>],
        n: u32,
        render: impl FnOnce() -> Option<Vec<u8>>,
    ) -> Option<Bytes> {
        let slot = (n as usize).checked_sub(1).and_then(|i| slots.get(i));
        if let Some(bytes) = slot.and_then(OnceLock::get) {
            return Some(bytes.clone());
        }
        let bytes = Bytes::from(render()?);
        if let Some(slot) = slot.filter(|_| self.reserve(bytes.len())) {
            // Another request may have rendered it first: both are the same.
            let _ = slot.set(bytes.clone());
        }
        Some(bytes)
    }

    /// Counts `len` more bytes kept, unless that passes the bound.
    fn reserve(&self, len: usize) -> bool {
        self.kept
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |kept| {
                kept.checked_add(len).filter(|&k| k <= MAX_CACHED_BYTES)
            })
            .is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataset::DatasetConfig;

    #[test]
    fn cached_pages_are_the_pages_the_dataset_renders() {
        let data = Dataset::new(&DatasetConfig::default());
        let cache = PageCache::new(data.pages());
        for _ in 0..2 {
            for n in [1, data.pages()] {
                let page = data.page(n).expect("a page");
                let json = cache.json(&data, n).expect("json");
                assert_eq!(json, serde_json::to_vec(&page).expect("serializes"));
                let html = cache.html(&data, n).expect("html");
                assert_eq!(html, render_catalog_html(&page).into_bytes());
            }
        }
        assert!(cache.json(&data, 0).is_none());
        assert!(cache.json(&data, data.pages() + 1).is_none());
    }

    #[test]
    fn past_the_bound_pages_are_rendered_and_not_kept() {
        let data = Dataset::new(&DatasetConfig {
            size: 20_000,
            page_size: 1,
            ..DatasetConfig::default()
        });
        let cache = PageCache::new(data.pages());
        assert_eq!(cache.json.len(), MAX_CACHED_PAGES);
        let last = cache.json(&data, data.pages()).expect("the last page");
        assert_eq!(
            last,
            serde_json::to_vec(&data.page(data.pages())).expect("json")
        );
        cache.kept.store(MAX_CACHED_BYTES, Ordering::Relaxed);
        assert!(cache.json(&data, 1).is_some());
        assert!(
            cache.json[0].get().is_none(),
            "over the byte bound, nothing is kept"
        );
    }
}
