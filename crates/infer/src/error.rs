//! Errors of the inference crate: each names the file or directory at fault, and says what
//! was expected there, so a wrong `--model`/`--adapter` argument is fixable from the message.

use std::path::PathBuf;

/// What can go wrong while loading a predictor or predicting.
#[derive(Debug, thiserror::Error)]
pub enum InferError {
    /// The model directory does not exist (or is not a directory).
    #[error("{}: model directory not found", path.display())]
    NoModelDir {
        /// The path given.
        path: PathBuf,
    },
    /// A file the model or adapter needs is absent.
    #[error("{}: missing {what}", path.display())]
    MissingFile {
        /// The file that was looked for.
        path: PathBuf,
        /// What it should have held.
        what: String,
    },
    /// A PEFT adapter directory was given where a model directory was expected.
    #[error(
        "{}: this is a PEFT adapter directory (it has adapter_config.json but no config.json), \
         not a model; give it as the adapter, with its base model as the model",
        dir.display()
    )]
    AdapterGivenAsModel {
        /// The directory.
        dir: PathBuf,
    },
    /// A model directory was given where a PEFT adapter directory was expected.
    #[error(
        "{}: this is a model directory (it has config.json but no adapter_config.json), not a \
         PEFT adapter; give it as the model",
        dir.display()
    )]
    ModelGivenAsAdapter {
        /// The directory.
        dir: PathBuf,
    },
    /// The model is not a classifier over two or more labels (e.g. a one-output regression head).
    #[error(
        "{}: the model has {found} label; classification needs at least 2",
        path.display()
    )]
    TooFewLabels {
        /// The `config.json`.
        path: PathBuf,
        /// Its number of labels.
        found: usize,
    },
    /// Neither the checkpoint nor the adapter has a trained classifier head: predictions would
    /// come from a randomly initialised one.
    #[error(
        "{}: no classification head (`classifier.*`){}; predictions would be random. \
         Give a fine-tuned model, or a base model with the adapter trained on it",
        weights.display(),
        adapter.as_ref().map(|a| format!(", and the adapter {} has none either", a.display())).unwrap_or_default()
    )]
    NoClassifierHead {
        /// The model weights file.
        weights: PathBuf,
        /// The adapter weights file, when an adapter was given.
        adapter: Option<PathBuf>,
    },
    /// The tokenizer produces ids the model's embedding table does not have: it belongs to
    /// another model.
    #[error(
        "{}: the tokenizer has {tokenizer_vocab} tokens but the model ({}) has vocab_size \
         {model_vocab}; the tokenizer belongs to another model",
        tokenizer.display(),
        config.display()
    )]
    VocabMismatch {
        /// The tokenizer file.
        tokenizer: PathBuf,
        /// Its vocabulary size, added tokens included.
        tokenizer_vocab: usize,
        /// The model's `config.json`.
        config: PathBuf,
        /// `vocab_size` from it.
        model_vocab: usize,
    },
    /// Two adapters were given the same name.
    #[error("two adapters are named {name:?}; each needs its own name")]
    DuplicateAdapter {
        /// The name.
        name: String,
    },
    /// An option out of range.
    #[error("invalid {name} = {value}: expected {expected}")]
    InvalidOption {
        /// The option.
        name: &'static str,
        /// The value given.
        value: usize,
        /// The accepted range.
        expected: &'static str,
    },
    /// Options that cannot go together.
    #[error("{name} = {value}: needs {expected}")]
    InvalidSetting {
        /// The option.
        name: &'static str,
        /// The value given.
        value: String,
        /// What it needs.
        expected: &'static str,
    },
    /// Loading or running the model failed.
    #[error(transparent)]
    Bert(#[from] imdb_lora_encoder::EncoderError),
    /// Resolving files or tokenising failed.
    #[error(transparent)]
    Data(#[from] imdb_lora_data::Error),
    /// The model's output could not be read back.
    #[error("reading the model's output: {0}")]
    Output(String),
}
