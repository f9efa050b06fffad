//! Fetching what a run needs, composed here because this is where both halves are known: the
//! file names come from the crates that define them (a checkpoint's from `imdb_lora_encoder::files`,
//! a dataset's split layout, IMDb's included, from `imdb_lora_data::table`), the fetching from the
//! `hub` client, which knows none of them.

use std::path::PathBuf;

use anyhow::Context as _;

use imdb_lora_data::table::{
    CLASSES_FILE, CONVERTED_PARQUET, SplitFiles, TableError, find_splits_in_files,
};
use imdb_lora_encoder::files::{REQUIRED_FILES, TOKENIZER_FILES};
use imdb_lora_hub::{HubClient, Repo, Source};
use imdb_lora_infer::ModelFiles;

/// The model fine-tuned by default.
pub const DEFAULT_MODEL: &str = "bert-base-uncased";

/// A Hub dataset's split files, fetched ([`fetch_dataset`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FetchedDataset {
    /// The splits found in the repository's file list, under `root`; the ones
    /// [`SplitFiles::used`] names are downloaded.
    pub splits: SplitFiles,
    /// The repository's snapshot directory in the cache (at the commit listed).
    pub root: PathBuf,
    /// That commit.
    pub commit: String,
}

/// Find a Hub dataset's split files the way `datasets` does and fetch the ones a run reads.
///
/// The repository's file list at the revision (the Hub API) is read with
/// [`imdb_lora_data::table::find_splits_in_files`]: split files at the top, in `data/`
/// (`data/train-00000-of-00002.parquet`) or in a configuration's folder. When the default
/// branch has none (a dataset with a loading script, or in a format not read here), the Hub's
/// auto-converted parquet branch ([`CONVERTED_PARQUET`]) is used, as `datasets` does. The split
/// files a run reads and any `classes.txt` beside them are downloaded (verified) at the commit
/// listed, so a push in between cannot mix revisions; the other splits (IMDb's `unsupervised`)
/// are not.
///
/// # Errors
/// The Hub client's ([`imdb_lora_hub::HubError`]) and the layout's ([`imdb_lora_data::table::TableError`]).
pub fn fetch_dataset(
    client: &HubClient,
    repo: &Repo,
    config: Option<&str>,
) -> anyhow::Result<FetchedDataset> {
    let listed = client.list_files(repo)?;
    // Layout errors name the snapshot folder the files would be in; say whose list it was.
    let listing_of = |repo: &Repo, files: &[String]| {
        format!(
            "the Hub's file list of {repo} ({} files: {})",
            files.len(),
            files.iter().take(8).cloned().collect::<Vec<_>>().join(", ")
        )
    };
    let (repo, listed, splits) = match find_splits_in_files(&listed.files, &listed.snapshot, config)
    {
        Ok(splits) => (repo.clone(), listed, splits),
        Err(e @ (TableError::NoSplit { .. } | TableError::NoSuchConfig { .. }))
            if repo.revision() == imdb_lora_hub::DEFAULT_REVISION =>
        {
            let first = anyhow::Error::new(e).context(listing_of(repo, &listed.files));
            let converted = repo.clone().with_revision(CONVERTED_PARQUET)?;
            let conv = match client.list_files(&converted) {
                Ok(l) => l,
                // No converted branch either: the default branch's finding is the one to report.
                Err(
                    imdb_lora_hub::HubError::RepoNotFound { .. }
                    | imdb_lora_hub::HubError::NotCached { .. },
                ) => {
                    return Err(first);
                }
                Err(other) => return Err(other.into()),
            };
            let splits = find_splits_in_files(&conv.files, &conv.snapshot, config)
                .with_context(|| listing_of(&converted, &conv.files))
                .with_context(|| format!("{first:#}; and its auto-converted parquet branch"))?;
            tracing::info!(
                "{repo}: no split files on the default branch; using the Hub's auto-converted \
                 parquet branch {CONVERTED_PARQUET}"
            );
            (converted, conv, splits)
        }
        Err(e) => return Err(anyhow::Error::new(e).context(listing_of(repo, &listed.files))),
    };
    let at = repo.clone().with_revision(&listed.commit)?;
    let mut wanted: Vec<String> = Vec::new();
    let rel = |path: &std::path::Path| -> anyhow::Result<String> {
        let rel = path.strip_prefix(&listed.snapshot)?;
        Ok(rel
            .components()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join("/"))
    };
    for split in splits.used() {
        for path in splits.get(split).unwrap_or_default() {
            wanted.push(rel(path)?);
        }
    }
    // A classes.txt at the top or beside the split files names the classes.
    let split_dir = rel(&splits.dir)?;
    for dir in ["", split_dir.as_str()] {
        let f = match dir {
            "" => CLASSES_FILE.to_owned(),
            d => format!("{d}/{CLASSES_FILE}"),
        };
        if listed.files.contains(&f) && !wanted.contains(&f) {
            wanted.push(f);
        }
    }
    tracing::info!(
        "{}: {} file(s) of {} in the repository ({})",
        repo,
        wanted.len(),
        listed.files.len(),
        splits.used().join(", ")
    );
    for f in &wanted {
        client.download(&at, f)?;
    }
    Ok(FetchedDataset {
        splits,
        root: listed.snapshot,
        commit: listed.commit,
    })
}

/// Resolve (download if needed) a model's config, weights and tokenizer files.
///
/// # Errors
/// The Hub client's, or [`imdb_lora_data::Error::NoTokenizerFiles`] when the model has neither
/// `tokenizer.json` nor `vocab.txt`.
pub fn fetch_model(client: &HubClient, source: &Source) -> anyhow::Result<ModelFiles> {
    let fetched = source.fetch(client, REQUIRED_FILES, TOKENIZER_FILES)?;
    let [config, weights] = fetched.required;
    // `special_tokens_map.json` is fetched so the snapshot is usable by Python tools too, but not
    // needed here.
    let [tokenizer_json, vocab, tokenizer_config, _special] = fetched.optional;
    if tokenizer_json.is_none() && vocab.is_none() {
        return Err(imdb_lora_data::Error::NoTokenizerFiles {
            source_desc: fetched.source,
        }
        .into());
    }
    Ok(ModelFiles {
        source: fetched.source,
        config,
        weights,
        tokenizer_json,
        vocab,
        tokenizer_config,
    })
}

#[cfg(test)]
mod tests {
    use std::fs;

    use imdb_lora_hub::HubConfig;

    use super::*;

    #[test]
    fn tokenizer_files_are_destructured_in_bert_order() {
        // fetch_model takes the optional files by position.
        use imdb_lora_data::tokenize::{TOKENIZER_CONFIG, TOKENIZER_JSON, VOCAB_FILE};
        assert_eq!(
            TOKENIZER_FILES[..3],
            [TOKENIZER_JSON, VOCAB_FILE, TOKENIZER_CONFIG]
        );
    }

    #[test]
    fn model_source_needs_a_tokenizer_file() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("config.json"), b"{}").unwrap();
        fs::write(dir.path().join("model.safetensors"), b"").unwrap();
        let client =
            HubClient::new(HubConfig::new("http://127.0.0.1:1", dir.path()).with_offline(true));
        let src = Source::Local(dir.path().to_path_buf());
        let err = fetch_model(&client, &src).unwrap_err();
        assert!(
            matches!(
                err.downcast_ref::<imdb_lora_data::Error>(),
                Some(imdb_lora_data::Error::NoTokenizerFiles { .. })
            ),
            "{err}"
        );
        fs::write(dir.path().join("vocab.txt"), b"[PAD]\n").unwrap();
        let files = fetch_model(&client, &src).unwrap();
        assert_eq!(files.vocab, Some(dir.path().join("vocab.txt")));
        assert_eq!(files.tokenizer_json, None);
    }
}
