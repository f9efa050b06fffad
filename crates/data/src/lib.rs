//! The IMDb data pipeline: read and validate the parquet splits, take seeded subsets, tokenise
//! with BERT's WordPiece tokenizer and form dynamically padded batches. Getting the files is
//! someone else's job (the `hub` crate, composed by the CLI, with the names in [`imdb`]): this
//! crate reads local paths. It knows nothing about models, HTTP or Burn: batches are plain
//! `Vec<i64>`s.
//!
//! # Modules
//! * [`imdb`]: the dataset's Hub repository and split file names.
//! * [`reader`]: streaming, projected, validating parquet reader ([`read_reviews`]).
//! * [`subset`]: machine-independent seeded shuffles and (balanced) subsets ([`SubsetSpec`]).
//! * [`tokenize`]: [`TextTokenizer`] from `tokenizer.json` or `vocab.txt` ([`TokenizerFiles`]),
//!   truncation to `max_len`, no padding, parallel encoding.
//! * [`table`]: the user's own data files (parquet, CSV/TSV, JSON Lines): columns, labels to
//!   classes, stratified hold-out, split files in a directory ([`table::load_dataset`]).
//! * [`batch`]: [`Batcher`] producing [`Batch`]es padded to the longest sequence, optional length
//!   bucketing, [`PaddingStats`].
//!
//! # Decisions
//! * Rows keep their 0-based index in the source file ([`Review::row`], [`Encoded::row`],
//!   [`Batch::rows`]) through subsetting and batching, so any prediction is traceable to a review.
//! * SMALL_RUN subsets are balanced (label 0 gets the odd row) and drawn from ChaCha8 with our own
//!   Fisher–Yates, so the same seed gives the same rows on every machine and `rand` version.
//! * Truncation keeps the head of the review (`[CLS]` + first `max_len - 2` tokens + `[SEP]`), as
//!   the Python tokenizer's default `truncation=True` does.
//! * Batch tensors are `i64` (what Burn's int tensors and `input_ids` in Python use).

pub mod batch;
mod error;
pub mod imdb;
pub mod reader;
pub mod subset;
pub mod table;
pub mod tokenize;

use std::path::{Path, PathBuf};

pub use crate::batch::{
    Batch, Batcher, BatcherConfig, EpochBatches, PaddingStats, SUGGESTED_BUCKET_WINDOW, collate,
};
pub use crate::error::{BoxError, Error, Result};
pub use crate::reader::{Review, ReviewReader, read_reviews};
pub use crate::subset::{LabelCounts, SubsetSpec};
pub use crate::tokenize::{DEFAULT_MAX_LEN, Encoded, TextTokenizer, TokenizeStats, TokenizerFiles};

/// A dataset split.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Split {
    /// 25,000 training reviews.
    Train,
    /// 25,000 test reviews.
    Test,
}

impl Split {
    /// "train" or "test".
    pub fn name(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Test => "test",
        }
    }

    /// The split's parquet file inside the [`imdb::DATASET`] repository.
    pub fn file(self) -> &'static str {
        match self {
            Split::Train => imdb::TRAIN_FILE,
            Split::Test => imdb::TEST_FILE,
        }
    }
}

/// A split read, subset and tokenised: what training and evaluation consume.
#[derive(Clone, Debug)]
pub struct TokenizedSplit {
    /// The parquet file it came from.
    pub path: PathBuf,
    /// The examples, in subset (shuffled) order or file order.
    pub examples: Vec<Encoded>,
    /// Per-label counts of `examples`.
    pub counts: LabelCounts,
    /// Tokenisation statistics.
    pub stats: TokenizeStats,
}

/// Read `path`, select the rows `subset` asks for, and tokenise them.
pub fn load_split(
    path: &Path,
    tokenizer: &TextTokenizer,
    subset: &SubsetSpec,
) -> Result<TokenizedSplit> {
    let _span = tracing::debug_span!("load_split", path = %path.display()).entered();
    let what = path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    let reviews = read_reviews(path)?;
    let (reviews, counts) = subset::select(reviews, subset, &what)?;
    tokenize_split(path, &reviews, counts, tokenizer, &what)
}

/// [`load_split`] for examples already read (e.g. by [`table::load_dataset`]) from `path`:
/// select the rows `subset` asks for (stratified over every class when balanced) and
/// tokenise them.
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

/// Read and tokenise every row of `path`, in file order (the throughput benchmark's unit of work).
pub fn read_and_tokenize(path: &Path, tokenizer: &TextTokenizer) -> Result<TokenizedSplit> {
    let _span = tracing::debug_span!("read_and_tokenize", path = %path.display()).entered();
    let what = path.display().to_string();
    let reviews = read_reviews(path)?;
    let counts = LabelCounts::of(reviews.iter().map(|r| &r.label));
    tokenize_split(path, &reviews, counts, tokenizer, &what)
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
    fn load_split_subsets_then_tokenises_keeping_rows() {
        let dir = tempfile::tempdir().unwrap();
        let vocab = dir.path().join("vocab.txt");
        std::fs::write(&vocab, "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\ngood\nbad\n").unwrap();
        let tok = TextTokenizer::from_vocab(&vocab, true, 8).unwrap();
        let p = dir.path().join("s.parquet");
        let texts: Vec<&str> = (0..20)
            .map(|i| if i < 10 { "bad" } else { "good good" })
            .collect();
        let labels: Vec<i64> = (0..20).map(|i| i64::from(i >= 10)).collect();
        reader::test_files::write_reviews(&p, &texts, &labels);

        let s = load_split(&p, &tok, &SubsetSpec::balanced(6, 1)).unwrap();
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
        let all = read_and_tokenize(&p, &tok).unwrap();
        assert_eq!(
            all.examples.iter().map(|e| e.row).collect::<Vec<_>>(),
            (0..20).collect::<Vec<_>>()
        );
        assert_eq!(all.stats.tokens, 10 * 3 + 10 * 4);
    }
}
