//! Fetching what a run needs, composed here because this is where both halves are known: the
//! file names come from the crates that define them (a BERT checkpoint's from `bert::files`, the
//! IMDb splits' from `data::imdb`), the fetching from the `hub` client, which knows neither.

use std::path::PathBuf;

use bert::files::{REQUIRED_FILES, TOKENIZER_FILES};
use hub::{HubClient, Source};
use infer::ModelFiles;

/// The model fine-tuned by default.
pub const DEFAULT_MODEL: &str = "bert-base-uncased";

/// Local paths of the IMDb splits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DatasetFiles {
    /// Train split parquet.
    pub train: PathBuf,
    /// Test split parquet.
    pub test: PathBuf,
}

/// Resolve (download if needed) the IMDb train and test parquet files.
pub fn fetch_imdb(client: &HubClient, source: &Source) -> anyhow::Result<DatasetFiles> {
    let [train, test] = source
        .fetch(client, [data::imdb::TRAIN_FILE, data::imdb::TEST_FILE], [])?
        .required;
    Ok(DatasetFiles { train, test })
}

/// Resolve (download if needed) a model's config, weights and tokenizer files.
///
/// # Errors
/// The Hub client's, or [`data::Error::NoTokenizerFiles`] when the model has neither
/// `tokenizer.json` nor `vocab.txt`.
pub fn fetch_model(client: &HubClient, source: &Source) -> anyhow::Result<ModelFiles> {
    let fetched = source.fetch(client, REQUIRED_FILES, TOKENIZER_FILES)?;
    let [config, weights] = fetched.required;
    // `special_tokens_map.json` is fetched so the snapshot is usable by Python tools too, but not
    // needed here.
    let [tokenizer_json, vocab, tokenizer_config, _special] = fetched.optional;
    if tokenizer_json.is_none() && vocab.is_none() {
        return Err(data::Error::NoTokenizerFiles {
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

    use hub::HubConfig;

    use super::*;

    #[test]
    fn tokenizer_files_are_destructured_in_bert_order() {
        // fetch_model takes the optional files by position.
        use data::tokenize::{TOKENIZER_CONFIG, TOKENIZER_JSON, VOCAB_FILE};
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
                err.downcast_ref::<data::Error>(),
                Some(data::Error::NoTokenizerFiles { .. })
            ),
            "{err}"
        );
        fs::write(dir.path().join("vocab.txt"), b"[PAD]\n").unwrap();
        let files = fetch_model(&client, &src).unwrap();
        assert_eq!(files.vocab, Some(dir.path().join("vocab.txt")));
        assert_eq!(files.tokenizer_json, None);
    }
}
