//! Locating the project's read-only shared data (`../shared`: the Hub-shaped tree with IMDb and
//! all-MiniLM-L6-v2), for tests and benchmarks of every crate.
//!
//! `IMDB_LORA_SHARED` overrides the default, which is the `shared/` directory beside the repository
//! (fixed at compile time from this crate's manifest directory). A missing directory is an error
//! with a clear message, never a skipped test: CI always has it.

use std::path::PathBuf;

use crate::error::{Error, Result};
use crate::hub::{IMDB_DATASET, IMDB_TEST_FILE, IMDB_TRAIN_FILE};

/// Environment variable that overrides the shared directory.
pub const SHARED_ENV: &str = "IMDB_LORA_SHARED";
/// The all-MiniLM-L6-v2 repository in the shared hub tree.
pub const MINILM_REPO: &str = "sentence-transformers/all-MiniLM-L6-v2";

/// The shared directory.
pub fn shared_dir() -> Result<PathBuf> {
    let (path, how) = match std::env::var_os(SHARED_ENV).filter(|v| !v.is_empty()) {
        Some(p) => (PathBuf::from(p), "from IMDB_LORA_SHARED"),
        None => (
            PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared")),
            "default ../shared beside the repository; set IMDB_LORA_SHARED to override",
        ),
    };
    if path.join("hub").is_dir() {
        Ok(path)
    } else {
        Err(Error::SharedMissing { path, how })
    }
}

/// `shared/hub`: serve it with [`crate::mirror::HubMirror`].
pub fn hub_root() -> Result<PathBuf> {
    Ok(shared_dir()?.join("hub"))
}

/// A dataset split parquet file inside the shared hub tree.
pub fn imdb_file(split: crate::Split) -> Result<PathBuf> {
    let file = match split {
        crate::Split::Train => IMDB_TRAIN_FILE,
        crate::Split::Test => IMDB_TEST_FILE,
    };
    Ok(hub_root()?
        .join("datasets")
        .join(IMDB_DATASET)
        .join("resolve/main")
        .join(file))
}

/// The all-MiniLM-L6-v2 model directory (config, weights, tokenizer files).
pub fn minilm_dir() -> Result<PathBuf> {
    Ok(hub_root()?.join(MINILM_REPO).join("resolve/main"))
}
