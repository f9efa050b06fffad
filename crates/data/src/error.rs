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

    // ----- Hub sources -----
    /// A repository id that the Hub would not accept.
    #[error("invalid repository id {id:?}: {reason}")]
    InvalidRepoId {
        /// The id as given.
        id: String,
        /// Why it is rejected.
        reason: &'static str,
    },
    /// A file name inside a repository that could escape the cache or is otherwise unusable.
    #[error("invalid file name {file:?}: {reason}")]
    InvalidFileName {
        /// The name as given.
        file: String,
        /// Why it is rejected.
        reason: &'static str,
    },
    /// A local directory source does not contain a requested file.
    #[error("{file} not found in local directory {dir} (looked at: {tried})", dir = dir.display())]
    LocalFileMissing {
        /// The local source directory.
        dir: PathBuf,
        /// The repository-relative file name.
        file: String,
        /// The paths that were tried, comma separated.
        tried: String,
    },
    /// A model source provides neither `tokenizer.json` nor `vocab.txt`.
    #[error("model source {source_desc} has neither tokenizer.json nor vocab.txt; cannot tokenise")]
    NoTokenizerFiles {
        /// The source (directory or repository id).
        source_desc: String,
    },
    /// The HTTP request could not be made or its body could not be read.
    #[error("{method} {url}: {source}")]
    Http {
        /// HTTP method.
        method: &'static str,
        /// The URL requested.
        url: String,
        /// The transport error.
        #[source]
        source: Box<ureq::Error>,
    },
    /// The Hub has no such repository, revision or file.
    #[error(
        "{url}: not found (HTTP 404): check the repository id, revision and file name of {file}"
    )]
    NotFound {
        /// The URL requested.
        url: String,
        /// The repository-relative file name.
        file: String,
    },
    /// The Hub refused access (private or gated repository).
    #[error(
        "{url}: HTTP {status}: access denied; the repository may be private or gated (set HF_TOKEN)"
    )]
    Unauthorized {
        /// The URL requested.
        url: String,
        /// 401 or 403.
        status: u16,
    },
    /// Any other unexpected HTTP status.
    #[error("{method} {url}: HTTP {status}, expected {expected}")]
    HttpStatus {
        /// HTTP method.
        method: &'static str,
        /// The URL requested.
        url: String,
        /// The status received.
        status: u16,
        /// What was expected instead.
        expected: &'static str,
    },
    /// The server followed redirects in a loop or too deep.
    #[error("{url}: more than {limit} redirects")]
    TooManyRedirects {
        /// The URL where we gave up.
        url: String,
        /// The redirect limit.
        limit: u32,
    },
    /// A header the Hub always sends is missing (the endpoint is probably not a Hub).
    #[error(
        "{url}: response lacks header {header}; expected it from a Hugging Face Hub endpoint ({why})"
    )]
    MissingHeader {
        /// The URL requested.
        url: String,
        /// The header name.
        header: &'static str,
        /// What it is needed for.
        why: &'static str,
    },
    /// A header has a value we cannot use.
    #[error("{url}: header {header} is {found:?}, expected {expected}")]
    BadHeader {
        /// The URL requested.
        url: String,
        /// The header name.
        header: &'static str,
        /// Its value.
        found: String,
        /// What a valid value looks like.
        expected: &'static str,
    },
    /// The body ended before the announced size (or the server sends fewer bytes than announced).
    #[error(
        "{}: download of {} incomplete: got {received} bytes, the server announced {expected}; \
         partial file {} deleted",
        .download.url, .download.file, .download.partial.display()
    )]
    Truncated {
        /// Which download.
        download: Box<PartialDownload>,
        /// Bytes received (or the length the server's GET response declared).
        received: u64,
        /// Bytes announced by the Hub metadata.
        expected: u64,
    },
    /// The body is longer than the announced size.
    #[error(
        "{}: download of {} too long: more than the {expected} bytes the server announced; \
         partial file {} deleted",
        .download.url, .download.file, .download.partial.display()
    )]
    Oversized {
        /// Which download.
        download: Box<PartialDownload>,
        /// Bytes announced by the Hub metadata.
        expected: u64,
    },
    /// The downloaded bytes do not hash to the announced ETag.
    #[error(
        "{}: checksum mismatch for {}: the server announced {algorithm} {expected}, the downloaded \
         bytes hash to {actual}; file {} deleted",
        .download.url, .download.file, .download.partial.display()
    )]
    ChecksumMismatch {
        /// Which download.
        download: Box<PartialDownload>,
        /// "sha256" or "git-sha1".
        algorithm: &'static str,
        /// The announced digest (hex).
        expected: String,
        /// The digest of what arrived (hex).
        actual: String,
    },
    /// The connection failed while the body was streaming.
    #[error(
        "{}: transfer of {} failed after {received} of {expected} bytes: {source}; \
         partial file {} deleted",
        .download.url, .download.file, .download.partial.display()
    )]
    Transfer {
        /// Which download.
        download: Box<PartialDownload>,
        /// Bytes received before the failure.
        received: u64,
        /// Bytes announced.
        expected: u64,
        /// The read error.
        #[source]
        source: std::io::Error,
    },
    /// Offline mode (or the Hub is unreachable) and the file is not in the cache.
    #[error(
        "{file} of {repo} is not in the Hugging Face cache {cache} and {why}",
        cache = cache.display()
    )]
    NotCached {
        /// The repository (kind, id and revision).
        repo: String,
        /// The repository-relative file name.
        file: String,
        /// The cache directory searched.
        cache: PathBuf,
        /// Why the network was not used ("offline mode is on" / the connection error).
        why: String,
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
    /// The parquet reader failed (corrupt file, unsupported encoding, ...).
    #[error("{path}: cannot read parquet: {source}", path = path.display())]
    Parquet {
        /// The file.
        path: PathBuf,
        /// The parquet error.
        #[source]
        source: parquet::errors::ParquetError,
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
        label: Option<u8>,
        /// Rows asked for.
        requested: usize,
        /// Rows present.
        available: usize,
    },

    // ----- tokenisation -----
    /// Loading or configuring the tokenizer failed.
    #[error("{path}: cannot load tokenizer: {source}", path = path.display())]
    TokenizerLoad {
        /// The tokenizer.json or vocab.txt file.
        path: PathBuf,
        /// The tokenizers error.
        #[source]
        source: BoxError,
    },
    /// The tokenizer lacks a special token BERT needs.
    #[error("{path}: tokenizer has no {token} token, expected a BERT WordPiece vocabulary", path = path.display())]
    MissingSpecialToken {
        /// The tokenizer file.
        path: PathBuf,
        /// The token ("`[CLS]`", "`[SEP]`", "`[PAD]`").
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

    // ----- mirror -----
    /// The loopback Hub mirror could not start.
    #[error("hub mirror over {root}: cannot {action}: {source}", root = root.display())]
    Mirror {
        /// The directory served.
        root: PathBuf,
        /// What failed ("bind 127.0.0.1:0", ...).
        action: &'static str,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },

    // ----- shared data -----
    /// The shared data directory (`IMDB_LORA_SHARED` or `../shared`) is missing.
    #[error("shared data directory {path} not found ({how}); it must hold hub/ (see shared/README.md)", path = path.display())]
    SharedMissing {
        /// The path that was checked.
        path: PathBuf,
        /// How it was chosen (env var or default).
        how: &'static str,
    },
}

/// Which download failed: the URL, the repository file and the temp file that held the partial
/// data (already deleted when the error is returned). Boxed in errors to keep `Result`s small.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartialDownload {
    /// The URL downloaded.
    pub url: String,
    /// The repository-relative file name.
    pub file: String,
    /// The temporary file that was removed.
    pub partial: PathBuf,
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
