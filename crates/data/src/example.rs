//! [`Review`]: one labelled example as read from a data file, before tokenisation — the one
//! example type every dataset (IMDb, a CSV, a Hub dataset) is read into.

/// One labelled example (IMDb calls them reviews).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Review {
    /// 0-based data row in its split (counted on across shards; kept through subsetting, for
    /// traceability).
    pub row: usize,
    /// The text (several text columns already joined).
    pub text: String,
    /// The class index, `0..n` for a dataset of `n` classes (IMDb: 0 = neg, 1 = pos).
    pub label: u32,
}
