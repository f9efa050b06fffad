//! Locating the project's read-only shared data (`../shared`: the Hub-shaped tree with IMDb and
//! all-MiniLM-L6-v2, and `data/ag_news`), for tests and benchmarks of every crate.
//!
//! `IMDB_LORA_SHARED` overrides the default, which is the `shared/` directory beside the repository
//! (fixed at compile time from this crate's manifest directory). A missing directory is an error
//! with a clear message, never a skipped test: CI always has it.

use std::path::{Path, PathBuf};

/// Environment variable that overrides the shared directory.
pub const SHARED_ENV: &str = "IMDB_LORA_SHARED";
/// The all-MiniLM-L6-v2 repository in the shared hub tree.
pub const MINILM_REPO: &str = "sentence-transformers/all-MiniLM-L6-v2";
/// The IMDb dataset repository in the shared hub tree.
pub const IMDB_DATASET: &str = "stanfordnlp/imdb";

/// The shared directory is not where it was looked for.
#[derive(Debug, thiserror::Error)]
#[error("shared test data not found at {} ({how}): expected a directory with hub/ inside", path.display())]
pub struct SharedMissing {
    /// Where it was looked for.
    pub path: PathBuf,
    /// Why there.
    pub how: &'static str,
}

/// The shared directory.
///
/// # Errors
/// [`SharedMissing`] when it has no `hub/` inside.
pub fn shared_dir() -> Result<PathBuf, SharedMissing> {
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
        Err(SharedMissing { path, how })
    }
}

/// `shared/hub`: serve it with the loopback Hub mirror.
///
/// # Errors
/// [`SharedMissing`].
pub fn hub_root() -> Result<PathBuf, SharedMissing> {
    Ok(shared_dir()?.join("hub"))
}

/// A file of the IMDb dataset inside the shared hub tree, e.g.
/// `plain_text/test-00000-of-00001.parquet`.
///
/// # Errors
/// [`SharedMissing`].
pub fn imdb_file(file: &str) -> Result<PathBuf, SharedMissing> {
    Ok(hub_root()?
        .join("datasets")
        .join(IMDB_DATASET)
        .join("resolve/main")
        .join(file))
}

/// sha256 of every file in the shared hub tree, keyed by its path inside it, from the committed
/// `SHA256SUMS` (independent of the project's own hashing code).
///
/// # Errors
/// [`SharedMissing`] when the tree is missing; an unreadable `SHA256SUMS` reads as empty, so the
/// test that looks a file up fails naming it.
pub fn sha256_sums() -> Result<std::collections::HashMap<String, String>, SharedMissing> {
    let text = std::fs::read_to_string(hub_root()?.join("SHA256SUMS")).unwrap_or_default();
    Ok(text
        .lines()
        .filter_map(|l| l.split_once("  "))
        .map(|(h, p)| (p.trim_start_matches("./").to_owned(), h.to_owned()))
        .collect())
}

/// `shared/data/ag_news`: the AG News test set as published (headerless `test.csv`: class
/// 1–4, title, description; `classes.txt`).
///
/// # Errors
/// [`SharedMissing`].
pub fn ag_news_dir() -> Result<PathBuf, SharedMissing> {
    Ok(shared_dir()?.join("data/ag_news"))
}

/// The all-MiniLM-L6-v2 model directory (config, weights, tokenizer files).
///
/// # Errors
/// [`SharedMissing`].
pub fn minilm_dir() -> Result<PathBuf, SharedMissing> {
    Ok(hub_root()?.join(MINILM_REPO).join("resolve/main"))
}

/// Copies all-MiniLM-L6-v2 ([`minilm_dir`]) into `dir` with `key: value` (a JSON value as
/// text) added to its `config.json`: a saved model as training writes one with a setting of
/// its own (e.g. the long-text rule, `imdb_lora_long_text`).
///
/// # Panics
/// When the shared model is missing or a file cannot be copied or written (a test helper).
pub fn write_minilm_with(dir: &Path, key: &str, value: &str) {
    let src = minilm_dir().unwrap_or_else(|e| panic!("{e}"));
    for entry in std::fs::read_dir(&src).unwrap_or_else(|e| panic!("{}: {e}", src.display())) {
        let entry = entry.unwrap_or_else(|e| panic!("{}: {e}", src.display()));
        std::fs::copy(entry.path(), dir.join(entry.file_name()))
            .unwrap_or_else(|e| panic!("{}: {e}", entry.path().display()));
    }
    let path = dir.join("config.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    // The config is one JSON object: the new key goes first.
    let with = text.replacen('{', &format!("{{\n  {key:?}: {value},"), 1);
    std::fs::write(&path, with).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shared_paths_point_into_the_hub_tree() {
        // CI always has ../shared; a missing one is an error, never a skip.
        let root = hub_root().unwrap();
        assert!(minilm_dir().unwrap().join("config.json").is_file());
        assert!(
            imdb_file("plain_text/test-00000-of-00001.parquet")
                .unwrap()
                .is_file()
        );
        assert!(root.is_dir());
        assert!(ag_news_dir().unwrap().join("test.csv").is_file());
    }
}
