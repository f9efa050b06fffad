//! [`ModelFiles`]: where a model's files are, however they were found (a model directory, a
//! snapshot in the Hugging Face cache): what [`crate::Predictor::from_model_files`] loads.

use std::path::PathBuf;

use imdb_lora_data::TokenizerFiles;

/// Local paths of a model's files.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModelFiles {
    /// Where they came from (`directory ...`, `model owner/name@main`).
    pub source: String,
    /// `config.json`.
    pub config: PathBuf,
    /// `model.safetensors`.
    pub weights: PathBuf,
    /// `tokenizer.json`, if the model has one.
    pub tokenizer_json: Option<PathBuf>,
    /// `vocab.txt`, if the model has one.
    pub vocab: Option<PathBuf>,
    /// `tokenizer_config.json`, if the model has one.
    pub tokenizer_config: Option<PathBuf>,
}

impl ModelFiles {
    /// The tokenizer's files, for [`imdb_lora_data::TextTokenizer::from_files`].
    pub fn tokenizer_files(&self) -> TokenizerFiles {
        TokenizerFiles {
            source: self.source.clone(),
            tokenizer_json: self.tokenizer_json.clone(),
            vocab: self.vocab.clone(),
            tokenizer_config: self.tokenizer_config.clone(),
        }
    }
}
