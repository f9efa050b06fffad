//! Errors of the encoder crate: each names the file or key involved and what was expected.

use std::path::PathBuf;

/// What can go wrong while configuring, loading or saving a BERT model.
#[derive(Debug, thiserror::Error)]
pub enum EncoderError {
    /// A file could not be read.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// Writing a file (atomically, via a temporary file) failed.
    #[error("cannot write {}", path.display())]
    Write {
        /// The destination file.
        path: PathBuf,
        /// The failed step of the atomic write, naming the file it concerned.
        #[source]
        source: imdb_lora_fsio::Error,
    },
    /// `config.json` (or an adapter config) is not valid JSON of the expected shape.
    #[error("{}: invalid configuration: {source}", path.display())]
    Config {
        /// The file.
        path: PathBuf,
        /// serde's message, with line and column.
        #[source]
        source: serde_json::Error,
    },
    /// The configuration is for another architecture.
    /// A `model_type` no family of this crate implements.
    #[error(
        "{}: model_type {found:?} is not supported (supported: {supported})",
        path.display()
    )]
    UnsupportedModelType {
        /// The file.
        path: PathBuf,
        /// The `model_type` found.
        found: String,
        /// The supported ones, comma-separated.
        supported: String,
    },
    #[error("{}: {reason}", path.display())]
    InvalidConfig {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The safetensors file is corrupt or truncated.
    #[error("{}: not a valid safetensors file: {source}", path.display())]
    Safetensors {
        /// The file.
        path: PathBuf,
        /// The parser's error.
        #[source]
        source: safetensors::SafeTensorError,
    },
    /// The checkpoint has none of the key layouts this crate understands.
    #[error(
        "{}: no {family} weights found (looked for `{looked_for}`)",
        path.display()
    )]
    UnknownLayout {
        /// The file.
        path: PathBuf,
        /// The family the configuration names.
        family: String,
        /// The keys looked for.
        looked_for: String,
    },
    /// A required tensor is absent.
    #[error("{}: missing tensor `{key}`", path.display())]
    MissingTensor {
        /// The file.
        path: PathBuf,
        /// The full key.
        key: String,
    },
    /// A tensor's shape disagrees with the configuration.
    #[error("{}: tensor `{key}` has shape {found:?}, expected {expected:?}", path.display())]
    ShapeMismatch {
        /// The file.
        path: PathBuf,
        /// The full key.
        key: String,
        /// Shape implied by the configuration.
        expected: Vec<usize>,
        /// Shape stored in the file.
        found: Vec<usize>,
    },
    /// A tensor is stored in a type we cannot convert to f32.
    #[error("{}: tensor `{key}` has dtype {dtype}, expected F32, F16 or BF16", path.display())]
    UnsupportedDtype {
        /// The file.
        path: PathBuf,
        /// The full key.
        key: String,
        /// The stored dtype.
        dtype: String,
    },
    /// Keys a file carries that the model has no place for.
    #[error("{}: unexpected tensors {keys:?}", path.display())]
    UnexpectedTensors {
        /// The file.
        path: PathBuf,
        /// The keys left over.
        keys: Vec<String>,
    },
    /// A layer could not be quantised to int8, or stored int8 parts do not fit.
    #[error("{context}: {source}")]
    Int8 {
        /// Where (file and key, or module path).
        context: String,
        /// What is wrong.
        #[source]
        source: imdb_lora_kernels::int8::QuantizeError,
    },
    /// A LoRA configuration or adapter does not fit the model.
    #[error("{context}: {source}")]
    Lora {
        /// Where (file or module path).
        context: String,
        /// The LoRA crate's error.
        #[source]
        source: imdb_lora_lora::LoraError,
    },
    /// An adapter configuration the crate does not support.
    #[error("{}: {reason}", path.display())]
    UnsupportedAdapter {
        /// The adapter_config.json.
        path: PathBuf,
        /// What is unsupported.
        reason: String,
    },
    /// Input tensors that do not fit the model (sequence too long, token id out of range…).
    #[error("invalid input: {0}")]
    Input(String),
}
