//! The data pipeline: read labelled texts (IMDb's parquet splits and the user's own parquet,
//! CSV/TSV and JSON Lines files alike, through [`table`]), take seeded subsets, tokenise with the
//! model's own tokenizer and form dynamically padded batches. Getting the files is someone
//! else's job (the `hub` crate, composed by the CLI, with the names in [`imdb`] and [`table`]):
//! this crate reads local paths. It knows nothing about models, HTTP or Burn: batches are plain
//! `Vec<i64>`s.
//!
//! # Modules
//! * [`table`]: data files (parquet, CSV/TSV, JSON Lines): columns, labels to classes (the one
//!   place "at least two classes" is checked), stratified hold-out, split files in a directory
//!   or a Hub snapshot ([`table::load_dataset`]); every dataset is read into [`Review`]s.
//! * [`imdb`]: the default dataset's Hub id and class names.
//! * [`subset`]: machine-independent seeded shuffles and (balanced) subsets ([`SubsetSpec`]).
//! * [`tokenize`]: [`TextTokenizer`] from `tokenizer.json` or `vocab.txt` ([`TokenizerFiles`]),
//!   truncation to `max_len`, no padding, parallel encoding.
//! * [`batch`]: [`Batcher`] producing [`Batch`]es padded to the longest sequence, optional length
//!   bucketing, [`PaddingStats`].
//!
//! # Decisions
//! * Rows keep their 0-based index in the source split ([`Review::row`], [`Encoded::row`],
//!   [`Batch::rows`]) through subsetting and batching, so any prediction is traceable to a row.
//! * SMALL_RUN subsets are balanced (label 0 gets the odd row) and drawn from ChaCha8 with our own
//!   Fisher–Yates, so the same seed gives the same rows on every machine and `rand` version.
//! * Truncation keeps the head of the text (`[CLS]` + first `max_len - 2` tokens + `[SEP]`), as
//!   the Python tokenizer's default `truncation=True` does.
//! * Batch tensors are `i64` (what Burn's int tensors and `input_ids` in Python use).

pub mod batch;
mod error;
mod example;
pub mod imdb;
pub mod long_text;
pub mod subset;
pub mod table;
pub mod tokenize;
mod validation;

use std::path::{Path, PathBuf};

pub use crate::batch::{
    Batch, Batcher, BatcherConfig, EpochBatches, PaddingStats, SUGGESTED_BUCKET_WINDOW, collate,
};
pub use crate::error::{BoxError, Error, Result};
pub use crate::example::Review;
pub use crate::long_text::{LongText, RecordedLongText};
pub use crate::subset::{LabelCounts, SubsetSpec};
pub use crate::tokenize::{
    DEFAULT_MAX_LEN, Encoded, Side, TextTokenizer, TokenizeStats, TokenizerFiles, Tokens,
};
pub use crate::validation::split_validation;

/// A split read, subset and tokenised: what training and evaluation consume.
#[derive(Clone, Debug)]
pub struct TokenizedSplit {
    /// The (first) file it came from.
    pub path: PathBuf,
    /// The examples, in subset (shuffled) order or file order.
    pub examples: Vec<Encoded>,
    /// Per-label counts of `examples`.
    pub counts: LabelCounts,
    /// Tokenisation statistics.
    pub stats: TokenizeStats,
}

/// Examples already read (by [`table::load_dataset`]) from `path`: select the rows `subset`
/// asks for (stratified over every class when balanced) and tokenise them.
pub fn prepare_split(
    path: &Path,
    reviews: Vec<Review>,
    tokenizer: &TextTokenizer,
    subset: &SubsetSpec,
) -> Result<TokenizedSplit> {
    let what = path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    let (reviews, counts) = subset::select(reviews, subset, &what)?;
    tokenize_split(path, &reviews, counts, tokenizer, &what)
}

/// [`prepare_split`] with a validation split carved from the selected texts first
/// ([`split_validation`]: `fraction` of each class, seeded): (train, validation).
///
/// # Errors
/// As [`prepare_split`] and [`split_validation`].
pub fn prepare_split_with_validation(
    path: &Path,
    reviews: Vec<Review>,
    tokenizer: &TextTokenizer,
    subset: &SubsetSpec,
    fraction: f64,
) -> Result<(TokenizedSplit, TokenizedSplit)> {
    let what = path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    let (reviews, _) = subset::select(reviews, subset, &what)?;
    let (train, val) = split_validation(reviews, fraction, subset.seed)?;
    let counts = |r: &[Review]| LabelCounts::of(r.iter().map(|r| &r.label));
    let (train_counts, val_counts) = (counts(&train), counts(&val));
    Ok((
        tokenize_split(path, &train, train_counts, tokenizer, &what)?,
        tokenize_split(path, &val, val_counts, tokenizer, &what)?,
    ))
}

fn tokenize_split(
    path: &Path,
    reviews: &[Review],
    counts: LabelCounts,
    tokenizer: &TextTokenizer,
    what: &str,
) -> Result<TokenizedSplit> {
    let (examples, stats) = tokenizer.encode_reviews(reviews, what)?;
    Ok(TokenizedSplit {
        path: path.to_path_buf(),
        examples,
        counts,
        stats,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prepare_split_subsets_then_tokenises_keeping_rows() {
        let dir = tempfile::tempdir().unwrap();
        let vocab = dir.path().join("vocab.txt");
        std::fs::write(&vocab, "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\ngood\nbad\n").unwrap();
        let tok = TextTokenizer::from_vocab(&vocab, true, 8).unwrap();
        let p = dir.path().join("s.csv");
        let mut csv = String::from("text,label\n");
        for i in 0..20 {
            csv += if i < 10 { "bad,0\n" } else { "good good,1\n" };
        }
        std::fs::write(&p, csv).unwrap();
        let (reviews, classes) = table::read_file(&p, &table::TableSpec::default()).unwrap();
        assert_eq!(classes.names(), ["0", "1"]);

        let s = prepare_split(&p, reviews.clone(), &tok, &SubsetSpec::balanced(6, 1)).unwrap();
        assert_eq!(s.counts, LabelCounts::binary(3, 3));
        for e in &s.examples {
            let expected = if e.row < 10 {
                vec![2, 6, 3]
            } else {
                vec![2, 5, 5, 3]
            };
            assert_eq!(e.ids, expected, "row {}", e.row);
            assert_eq!(e.label, u32::from(e.row >= 10));
        }
        let all = prepare_split(&p, reviews, &tok, &SubsetSpec::full(1)).unwrap();
        let mut rows: Vec<usize> = all.examples.iter().map(|e| e.row).collect();
        rows.sort_unstable();
        assert_eq!(rows, (0..20).collect::<Vec<_>>());
        assert_eq!(all.stats.tokens, 10 * 3 + 10 * 4);
    }
}
