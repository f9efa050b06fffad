//! The Hub client's error type: every failure names the URL or file, the repository and what was
//! expected versus what was found, so a user can act on it without a debugger.

use std::path::PathBuf;

/// Shorthand for results of this crate.
pub type Result<T, E = HubError> = std::result::Result<T, E>;

/// Everything that can go wrong resolving or downloading a file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HubError {
    // ----- local files -----
    /// A source that looks like a path (it starts with `/`, `.` or `~`, or has more than one
    /// `/`) is not a directory here; it is not taken as a repository id.
    #[error(
        "{path}: {}; it looks like a local path, so it was not taken as a Hub repository id",
        if *is_file { "a file, not a directory" } else { "no such file or directory" },
        path = path.display()
    )]
    NotADirectory {
        /// The path given.
        path: PathBuf,
        /// Whether it is a file (else nothing is there).
        is_file: bool,
    },
    /// An I/O operation on a local file or directory failed.
    #[error("cannot {action} {path}: {source}", path = path.display())]
    Io {
        /// What we were doing ("open local directory", "write", ...).
        action: String,
        /// The file or directory concerned.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// Creating a file in the cache (a blob, a snapshot link, a ref) failed.
    #[error(transparent)]
    File(#[from] imdb_lora_fsio::Error),

    // ----- sources -----
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

    // ----- HTTP -----
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
    /// The Hub has no such repository or revision (asked for its file list).
    #[error(
        "{url}: not found (HTTP 404): no {repo} on the Hub; check the repository id and revision"
    )]
    RepoNotFound {
        /// The API URL requested.
        url: String,
        /// The repository (kind, id and revision).
        repo: String,
    },
    /// The Hub's file list of a repository is not what the Hub API sends.
    #[error("{url}: unusable file list of {repo}: {reason}")]
    BadListing {
        /// The API URL requested.
        url: String,
        /// The repository (kind, id and revision).
        repo: String,
        /// What is wrong with it.
        reason: String,
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

    // ----- verification -----
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

    /// The download did not finish within its overall deadline (a stalled or trickling server).
    #[error(
        "{}: download of {} did not finish within its deadline of {} s ({received} of {expected} \
         bytes received); partial file {} deleted; for a slower link set {}=<seconds>",
        .download.url, .download.file, fmt_secs(*.deadline), .download.partial.display(),
        crate::config::DEADLINE_VAR
    )]
    DeadlineExceeded {
        /// Which download.
        download: Box<PartialDownload>,
        /// The deadline ([`crate::HubConfig::download_deadline`] for the announced size).
        deadline: std::time::Duration,
        /// Bytes received before it passed.
        received: u64,
        /// Bytes announced.
        expected: u64,
    },

    // ----- cache -----
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

/// Seconds as a person reads them: `1`, `1.5`, `13548`.
fn fmt_secs(d: std::time::Duration) -> String {
    let s = d.as_secs_f64();
    if s.fract() == 0.0 {
        format!("{s:.0}")
    } else {
        format!("{s:.1}")
    }
}

impl HubError {
    /// Build a [`HubError::Io`]: a small helper because every local file operation needs it.
    pub(crate) fn io(
        action: impl Into<String>,
        path: impl Into<PathBuf>,
        source: std::io::Error,
    ) -> Self {
        HubError::Io {
            action: action.into(),
            path: path.into(),
            source,
        }
    }
}
