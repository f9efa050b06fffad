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

    // ----- parquet -----
    /// The parquet file has zero bytes.
    #[error("{path}: file is empty (0 bytes), expected a parquet file", path = path.display())]
    EmptyFile {
        /// The file.
        path: PathBuf,
    },
    /// The parquet file is valid but holds no rows.
    #[error("{path}: parquet file has no rows, expected at least one review", path = path.display())]
    NoRows {
        /// The file.
        path: PathBuf,
    },
    /// The footer's row count disagrees with its row groups' (a damaged or forged file).
    #[error(
        "{path}: parquet footer declares {declared} rows but its row groups hold {in_row_groups}; the file is damaged",
        path = path.display()
    )]
    RowCountMismatch {
        /// The file.
        path: PathBuf,
        /// The footer's `num_rows`.
        declared: i64,
        /// The sum of the row groups' `num_rows`.
        in_row_groups: i64,
    },
    /// The parquet reader failed (corrupt file, unsupported encoding, ...).
    #[error("{path}: cannot read parquet: {source}", path = path.display())]
    Parquet {
        /// The file.
        path: PathBuf,
        /// The parquet error.
        #[source]
        source: parquet::errors::ParquetError,
    },
    /// A column chunk's byte range (from the footer) is not inside the file.
    #[error(
        "{path}: row group {row_group}, column {column:?}: the footer gives its data offset {start} and size {size}, not a range inside the file's {len} bytes; the file is damaged",
        path = path.display()
    )]
    ColumnChunkOutOfFile {
        /// The file.
        path: PathBuf,
        /// 0-based row group.
        row_group: usize,
        /// The column's path in the schema.
        column: String,
        /// The chunk's first byte as declared (dictionary page, else first data page).
        start: i64,
        /// Its declared compressed size.
        size: i64,
        /// The file's size.
        len: u64,
    },
    /// The parquet library panicked on the file (a damage it does not check for); caught and
    /// reported instead of ending the program.
    #[error(
        "{path}: cannot read parquet from row {row} on: the file is damaged (the parquet library failed: {message})",
        path = path.display()
    )]
    ParquetPanic {
        /// The file.
        path: PathBuf,
        /// First row (0-based) of the batch being decoded (0 while opening).
        row: usize,
        /// The library's panic message.
        message: String,
    },
    /// Decoding a record batch failed.
    #[error("{path}: cannot decode the record batch starting at row {row}: {source}", path = path.display())]
    Arrow {
        /// The file.
        path: PathBuf,
        /// First row (0-based, in the file) of the failing batch.
        row: usize,
        /// The arrow error.
        #[source]
        source: arrow_schema::ArrowError,
    },
    /// A required column is absent.
    #[error("{path}: column {column:?} is missing; found columns {found:?}", path = path.display())]
    MissingColumn {
        /// The file.
        path: PathBuf,
        /// The missing column.
        column: &'static str,
        /// The columns the file has.
        found: Vec<String>,
    },
    /// A column has an unusable type.
    #[error("{path}: column {column:?} has type {found}, expected {expected}", path = path.display())]
    WrongType {
        /// The file.
        path: PathBuf,
        /// The column.
        column: &'static str,
        /// Accepted types.
        expected: &'static str,
        /// The arrow type found.
        found: String,
    },
    /// A null where a value is required.
    #[error("{path}: column {column:?} row {row}: null, expected {expected}", path = path.display())]
    NullValue {
        /// The file.
        path: PathBuf,
        /// The column.
        column: &'static str,
        /// 0-based row in the file.
        row: usize,
        /// What the value should have been.
        expected: &'static str,
    },
    /// A label that is not 0 or 1.
    #[error("{path}: column \"label\" row {row}: value {value}, expected 0 (negative) or 1 (positive)", path = path.display())]
    LabelOutOfRange {
        /// The file.
        path: PathBuf,
        /// 0-based row in the file.
        row: usize,
        /// The value found (as i128 so any integer type fits).
        value: i128,
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
