//! The crate's single error type: every failure names the file/URL, the column or header, the row
//! and what was expected versus what was found, so a user can act on it without a debugger.

use std::path::PathBuf;

/// Shorthand for results of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Boxed error of the `tokenizers` crate (it does not expose a concrete type).
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Everything that can go wrong in the data pipeline.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    // ----- local files -----
    /// An I/O operation on a local file or directory failed.
    #[error("cannot {action} {path}: {source}", path = path.display())]
    Io {
        /// What we were doing ("open", "create", "rename to ...", ...).
        action: String,
        /// The file or directory concerned.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },

    // ----- subsets -----
    /// A subset asks for more rows than there are.
    #[error("{what}: requested {requested} rows{label}, only {available} available", label = match label { Some(l) => format!(" with label {l}"), None => String::new() })]
    NotEnoughRows {
        /// What is being subset (e.g. a file name).
        what: String,
        /// Label concerned, for balanced subsets.
        label: Option<u32>,
        /// Rows asked for.
        requested: usize,
        /// Rows present.
        available: usize,
    },

    /// A validation split cannot be carved as asked.
    #[error("validation split (--val-fraction {fraction}): {reason}")]
    ValidationSplit {
        /// The fraction asked for.
        fraction: f64,
        /// Why not.
        reason: String,
    },

    /// A long-text rule that cannot work with the window asked for.
    #[error("{0}")]
    LongText(String),

    // ----- tokenisation -----
    /// A tokenizer source provides neither `tokenizer.json` nor `vocab.txt`.
    #[error("model source {source_desc} has neither tokenizer.json nor vocab.txt; cannot tokenise")]
    NoTokenizerFiles {
        /// The source (directory or repository id).
        source_desc: String,
    },
    /// Loading or configuring the tokenizer failed.
    #[error("{path}: cannot load tokenizer: {source}", path = path.display())]
    TokenizerLoad {
        /// The tokenizer.json or vocab.txt file.
        path: PathBuf,
        /// The tokenizers error.
        #[source]
        source: BoxError,
    },
    /// The tokenizer can emit an id the model's embedding table does not have.
    #[error(
        "{path}: the tokenizer can emit {kind} {id}, but the model's {table} is {size} (ids 0 to {last}); use the tokenizer that belongs to the model",
        path = path.display(),
        last = size.saturating_sub(1)
    )]
    IdOutOfRange {
        /// The tokenizer file.
        path: PathBuf,
        /// "token id" or "token type id".
        kind: &'static str,
        /// The largest id it can emit.
        id: u32,
        /// The model's table: "vocab_size" or "type_vocab_size".
        table: &'static str,
        /// That table's size.
        size: usize,
    },
    /// The tokenizer lacks a special token the models need.
    #[error("{path}: tokenizer has no {token} token", path = path.display())]
    MissingSpecialToken {
        /// The tokenizer file.
        path: PathBuf,
        /// The token (what was looked for).
        token: &'static str,
    },
    /// A `tokenizer_config.json` that is not valid JSON of the expected shape.
    #[error("{path}: cannot parse tokenizer config: {source}", path = path.display())]
    TokenizerConfig {
        /// The file.
        path: PathBuf,
        /// The JSON error.
        #[source]
        source: serde_json::Error,
    },
    /// `max_len` outside what BERT can take.
    #[error("max_len {found} out of range: expected {min}..={max} (the model's position limit)")]
    MaxLen {
        /// The value given.
        found: usize,
        /// Smallest useful value (`[CLS]` + `[SEP]`).
        min: usize,
        /// Largest supported value.
        max: usize,
    },
    /// Encoding texts failed.
    #[error("tokenising {what}: {source}")]
    Encode {
        /// Which texts (e.g. "25000 reviews of train.parquet").
        what: String,
        /// The tokenizers error.
        #[source]
        source: BoxError,
    },

    // ----- batching -----
    /// Invalid batcher settings.
    #[error("invalid batch setting {setting} = {found}: expected {expected}")]
    BatchConfig {
        /// Setting name.
        setting: &'static str,
        /// Value given.
        found: usize,
        /// Accepted range.
        expected: &'static str,
    },
}

impl Error {
    /// Build an [`Error::Io`]: a small helper because nearly every file operation needs it.
    pub(crate) fn io(
        action: impl Into<String>,
        path: impl Into<PathBuf>,
        source: std::io::Error,
    ) -> Self {
        Error::Io {
            action: action.into(),
            path: path.into(),
            source,
        }
    }
}

/// The text a panic carried (`panic!` with a literal or a formatted message), for the error
/// that reports a panic caught in a library (the parquet readers, the tokenizer file's parse).
pub(crate) fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "no message".into())
}
