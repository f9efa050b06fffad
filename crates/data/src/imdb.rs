//! The IMDb dataset's names on the Hugging Face Hub: what the CLI asks the Hub client for, and
//! what [`crate::Split::file`] maps a split to.

/// The dataset repository.
pub const DATASET: &str = "stanfordnlp/imdb";
/// The repository's former id, which the Hub redirects to [`DATASET`].
pub const OLD_ID: &str = "imdb";
/// The train split's parquet file inside [`DATASET`].
pub const TRAIN_FILE: &str = "plain_text/train-00000-of-00001.parquet";
/// The test split's parquet file inside [`DATASET`].
pub const TEST_FILE: &str = "plain_text/test-00000-of-00001.parquet";
