//! Resolving model and dataset files: a local directory, or a Hugging Face Hub repository fetched
//! into (and reused from) the shared Hugging Face cache by a small, verifying client over `ureq`.
//!
//! We use our own client rather than the `hf-hub` crate because integrity is the point: a download
//! is written to a temp file in the cache's `blobs/` directory, its size and digest are checked
//! against what the Hub announced, and only then is it renamed into place. Any failure deletes the
//! partial file, so the cache never holds a complete-looking but wrong entry.
//!
//! Protocol (the same as the Python `huggingface_hub` client):
//! 1. `HEAD {endpoint}/{repo}/resolve/{revision}/{file}` (datasets: `{endpoint}/datasets/{repo}/...`)
//!    without following redirects, except relative ones (renamed repositories). The answer carries
//!    `X-Repo-Commit`, the ETag (`X-Linked-Etag` for LFS files, else `ETag`) and the size
//!    (`X-Linked-Size`, else `Content-Length`); LFS files answer `302` to a CDN `Location`.
//! 2. If `blobs/<etag>` is already in the cache with the announced size, nothing is downloaded.
//!    Otherwise `GET` the file (following redirects) into `blobs/<etag>.<pid>-<n>.incomplete`.
//! 3. Verify: byte count = announced size; if the ETag is 64 hex digits it is the sha256 of the
//!    content (LFS); if 40 hex digits it is the git blob id, SHA-1 of `"blob <len>\0" + content`.
//!    Other ETags (not from the Hub) get the size check only, with a warning.
//! 4. Rename into `blobs/<etag>`, symlink `snapshots/<commit>/<file>` → `../../blobs/<etag>`
//!    (relative, like Python; copied where symlinks do not exist), write `refs/<revision>`.
//!
//! Cache location: `HF_HUB_CACHE`, else `HF_HOME/hub`, else `$XDG_CACHE_HOME/huggingface/hub`,
//! else `~/.cache/huggingface/hub` — the same as Python, so files fetched by either are reused.
//! Offline (`HF_HUB_OFFLINE=1` or [`HubConfig::offline`]) resolves from the cache only, through
//! `refs/<revision>`. When online but the endpoint is unreachable, a cached copy is used with a
//! warning (as Python does). `HF_TOKEN` is sent as a bearer token to the endpoint (never to a CDN).

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

use sha1::Digest as _;
use ureq::Agent;

use crate::atomic::{self, TempFile};
use crate::error::{Error, PartialDownload, Result};
use crate::urlpath;

/// The public Hub.
pub const DEFAULT_ENDPOINT: &str = "https://huggingface.co";
/// Revision used when none is given.
pub const DEFAULT_REVISION: &str = "main";
/// The model fine-tuned by default.
pub const DEFAULT_MODEL: &str = "bert-base-uncased";
/// The IMDb dataset repository.
pub const IMDB_DATASET: &str = "stanfordnlp/imdb";
/// Train split file inside [`IMDB_DATASET`].
pub const IMDB_TRAIN_FILE: &str = "plain_text/train-00000-of-00001.parquet";
/// Test split file inside [`IMDB_DATASET`].
pub const IMDB_TEST_FILE: &str = "plain_text/test-00000-of-00001.parquet";
/// Model files that must exist.
pub const MODEL_REQUIRED_FILES: [&str; 2] = ["config.json", "model.safetensors"];
/// Model files fetched when the repository has them (tokenisation needs one of the first two).
pub const MODEL_OPTIONAL_FILES: [&str; 4] = [
    "tokenizer.json",
    "vocab.txt",
    "tokenizer_config.json",
    "special_tokens_map.json",
];

/// Files at least this large get a progress bar (small JSON files would only flicker).
const PROGRESS_MIN_BYTES: u64 = 4 * 1024 * 1024;
/// Redirect limit for both the metadata probe and the download.
const MAX_REDIRECTS: u32 = 10;
/// Read buffer for downloads.
const CHUNK: usize = 1 << 20;

/// Whether a repository holds a model or a dataset (they live under different URL and cache paths).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RepoType {
    /// `{endpoint}/{id}/resolve/...`, cache folder `models--owner--name`.
    Model,
    /// `{endpoint}/datasets/{id}/resolve/...`, cache folder `datasets--owner--name`.
    Dataset,
}

impl RepoType {
    fn url_prefix(self) -> &'static str {
        match self {
            RepoType::Model => "",
            RepoType::Dataset => "datasets/",
        }
    }

    fn cache_prefix(self) -> &'static str {
        match self {
            RepoType::Model => "models",
            RepoType::Dataset => "datasets",
        }
    }
}

/// A Hub repository at a revision.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Repo {
    id: String,
    kind: RepoType,
    revision: String,
}

impl Repo {
    /// A repository at [`DEFAULT_REVISION`]; `id` is `name` or `owner/name` as on the Hub.
    pub fn new(id: &str, kind: RepoType) -> Result<Repo> {
        validate_repo_id(id)?;
        Ok(Repo {
            id: id.to_owned(),
            kind,
            revision: DEFAULT_REVISION.to_owned(),
        })
    }

    /// A model repository.
    pub fn model(id: &str) -> Result<Repo> {
        Repo::new(id, RepoType::Model)
    }

    /// A dataset repository.
    pub fn dataset(id: &str) -> Result<Repo> {
        Repo::new(id, RepoType::Dataset)
    }

    /// The same repository at another revision (branch, tag or commit sha).
    pub fn with_revision(mut self, revision: &str) -> Result<Repo> {
        if revision.is_empty()
            || revision
                .split('/')
                .any(|s| s.is_empty() || s == "." || s == "..")
        {
            return Err(Error::InvalidRepoId {
                id: format!("{}@{revision}", self.id),
                reason: "the revision must be a branch, tag or commit without empty or '..' parts",
            });
        }
        self.revision = revision.to_owned();
        Ok(self)
    }

    /// The repository id, e.g. `stanfordnlp/imdb`.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Model or dataset.
    pub fn kind(&self) -> RepoType {
        self.kind
    }

    /// The revision asked for.
    pub fn revision(&self) -> &str {
        &self.revision
    }

    /// The cache folder name, e.g. `datasets--stanfordnlp--imdb`.
    pub fn cache_folder(&self) -> String {
        format!(
            "{}--{}",
            self.kind.cache_prefix(),
            self.id.replace('/', "--")
        )
    }

    /// The `resolve` URL of `file` under `endpoint`.
    pub fn file_url(&self, endpoint: &str, file: &str) -> String {
        format!(
            "{}/{}{}/resolve/{}/{}",
            endpoint.trim_end_matches('/'),
            self.kind.url_prefix(),
            self.id,
            urlpath::encode_component(&self.revision),
            urlpath::encode_path(file)
        )
    }
}

impl std::fmt::Display for Repo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self.kind {
            RepoType::Model => "model",
            RepoType::Dataset => "dataset",
        };
        write!(f, "{kind} {}@{}", self.id, self.revision)
    }
}

/// The Hub's rules for ids (one or two segments of `[A-Za-z0-9._-]`, no `--` or `..`, no leading or
/// trailing `-`/`.`), which also keeps ids safe to use in cache folder names.
fn validate_repo_id(id: &str) -> Result<()> {
    let bad = |reason| {
        Err(Error::InvalidRepoId {
            id: id.to_owned(),
            reason,
        })
    };
    let segs: Vec<&str> = id.split('/').collect();
    if segs.len() > 2 {
        return bad("expected `name` or `owner/name`");
    }
    for seg in segs {
        if seg.is_empty() || seg.len() > 96 {
            return bad("each part must have 1 to 96 characters");
        }
        if !seg
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        {
            return bad("only letters, digits, '-', '_' and '.' are allowed");
        }
        if seg.contains("--") || seg.contains("..") {
            return bad("'--' and '..' are not allowed");
        }
        if seg.starts_with(['-', '.']) || seg.ends_with(['-', '.']) {
            return bad("parts cannot start or end with '-' or '.'");
        }
    }
    Ok(())
}

/// Repository-relative file names must not escape the snapshot directory.
fn validate_file(file: &str) -> Result<()> {
    let bad = |reason| {
        Err(Error::InvalidFileName {
            file: file.to_owned(),
            reason,
        })
    };
    if file.is_empty() || file.starts_with('/') || file.contains(['\\', '\0']) {
        return bad("expected a relative path with '/' separators");
    }
    if file
        .split('/')
        .any(|s| s.is_empty() || s == "." || s == "..")
    {
        return bad("empty, '.' and '..' path parts are not allowed");
    }
    Ok(())
}

/// Where and how to talk to the Hub.
#[derive(Clone)]
pub struct HubConfig {
    /// Base URL, e.g. `https://huggingface.co` or a mirror's `http://127.0.0.1:PORT`.
    pub endpoint: String,
    /// The hub cache directory (holding `models--*`/`datasets--*` folders).
    pub cache_dir: PathBuf,
    /// Never touch the network; resolve from the cache only.
    pub offline: bool,
    /// Bearer token for private or gated repositories.
    pub token: Option<String>,
    /// Show progress bars for large downloads (on a terminal only).
    pub progress: bool,
    /// Connection timeout.
    pub connect_timeout: Duration,
    /// Longest wait for any single read (a stalled server fails instead of hanging forever).
    pub read_timeout: Duration,
}

impl std::fmt::Debug for HubConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the token (logs end up in CI output).
        f.debug_struct("HubConfig")
            .field("endpoint", &self.endpoint)
            .field("cache_dir", &self.cache_dir)
            .field("offline", &self.offline)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("progress", &self.progress)
            .field("connect_timeout", &self.connect_timeout)
            .field("read_timeout", &self.read_timeout)
            .finish()
    }
}

fn truthy(v: Option<String>) -> bool {
    v.is_some_and(|v| {
        matches!(
            v.trim().to_ascii_uppercase().as_str(),
            "1" | "ON" | "YES" | "TRUE"
        )
    })
}

impl HubConfig {
    /// A configuration for `endpoint` and `cache_dir`, online, no token, progress bars on.
    pub fn new(endpoint: &str, cache_dir: &Path) -> HubConfig {
        HubConfig {
            endpoint: endpoint.trim_end_matches('/').to_owned(),
            cache_dir: cache_dir.to_path_buf(),
            offline: false,
            token: None,
            progress: true,
            connect_timeout: Duration::from_secs(10),
            read_timeout: Duration::from_secs(60),
        }
    }

    /// The configuration the Python tools would use, from the process environment.
    pub fn from_env() -> HubConfig {
        Self::from_vars(|k| std::env::var(k).ok())
    }

    /// As [`HubConfig::from_env`], reading variables through `var` (testable without touching the
    /// process environment). Reads `HF_ENDPOINT`, `HF_HUB_CACHE` (or the older
    /// `HUGGINGFACE_HUB_CACHE`), `HF_HOME`, `XDG_CACHE_HOME`, `HOME`, `HF_HUB_OFFLINE`, `HF_TOKEN`,
    /// `HF_HUB_DISABLE_PROGRESS_BARS`.
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> HubConfig {
        let get = |k: &str| var(k).filter(|v| !v.trim().is_empty());
        let home = get("HOME").map(PathBuf::from);
        let expand = |p: String| match (p.strip_prefix("~/"), &home) {
            (Some(rest), Some(h)) => h.join(rest),
            _ => PathBuf::from(p),
        };
        let hf_home =
            get("HF_HOME")
                .map(&expand)
                .unwrap_or_else(|| match (get("XDG_CACHE_HOME"), &home) {
                    (Some(x), _) => expand(x).join("huggingface"),
                    (None, Some(h)) => h.join(".cache").join("huggingface"),
                    (None, None) => PathBuf::from(".cache").join("huggingface"),
                });
        let cache_dir = get("HF_HUB_CACHE")
            .or_else(|| get("HUGGINGFACE_HUB_CACHE"))
            .map(&expand)
            .unwrap_or_else(|| hf_home.join("hub"));
        let endpoint = get("HF_ENDPOINT").unwrap_or_else(|| DEFAULT_ENDPOINT.to_owned());
        let mut cfg = HubConfig::new(&endpoint, &cache_dir);
        cfg.offline = truthy(var("HF_HUB_OFFLINE"));
        cfg.token = get("HF_TOKEN");
        cfg.progress = !truthy(var("HF_HUB_DISABLE_PROGRESS_BARS"));
        cfg
    }

    /// Set offline mode (e.g. from a `--offline` flag; `HF_HUB_OFFLINE` is read by `from_env`).
    pub fn with_offline(mut self, offline: bool) -> HubConfig {
        self.offline = offline;
        self
    }

    /// Replace the endpoint.
    pub fn with_endpoint(mut self, endpoint: &str) -> HubConfig {
        self.endpoint = endpoint.trim_end_matches('/').to_owned();
        self
    }

    /// Replace the cache directory.
    pub fn with_cache_dir(mut self, cache_dir: &Path) -> HubConfig {
        self.cache_dir = cache_dir.to_path_buf();
        self
    }

    /// Turn progress bars on or off.
    pub fn with_progress(mut self, progress: bool) -> HubConfig {
        self.progress = progress;
        self
    }
}

/// What the Hub announced for a file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileMetadata {
    /// The commit the revision resolved to (`X-Repo-Commit`).
    pub commit: String,
    /// Normalised ETag (no quotes, no `W/`): sha256 for LFS files, git blob id otherwise.
    pub etag: String,
    /// Size in bytes.
    pub size: u64,
    /// Where to GET the content (the CDN `Location` for LFS files, else the resolve URL).
    pub download_url: String,
}

/// Which digest an ETag is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum DigestKind {
    Sha256,
    GitSha1,
    Unknown,
}

fn digest_kind(etag: &str) -> DigestKind {
    let hex = etag.bytes().all(|b| b.is_ascii_hexdigit());
    match (hex, etag.len()) {
        (true, 64) => DigestKind::Sha256,
        (true, 40) => DigestKind::GitSha1,
        _ => DigestKind::Unknown,
    }
}

/// Running digest of a download, matching the ETag's kind.
enum Hasher {
    Sha256(sha2::Sha256),
    GitSha1(sha1::Sha1),
    None,
}

impl Hasher {
    fn new(kind: DigestKind, size: u64) -> Hasher {
        match kind {
            DigestKind::Sha256 => Hasher::Sha256(sha2::Sha256::new()),
            DigestKind::GitSha1 => {
                let mut h = sha1::Sha1::new();
                // A git blob id hashes a header with the announced size, then the content.
                h.update(format!("blob {size}\0").as_bytes());
                Hasher::GitSha1(h)
            }
            DigestKind::Unknown => Hasher::None,
        }
    }

    fn update(&mut self, bytes: &[u8]) {
        match self {
            Hasher::Sha256(h) => h.update(bytes),
            Hasher::GitSha1(h) => h.update(bytes),
            Hasher::None => {}
        }
    }

    /// (algorithm name, hex digest); `None` when there is nothing to verify against.
    fn finish(self) -> Option<(&'static str, String)> {
        match self {
            Hasher::Sha256(h) => Some(("sha256", hex::encode(h.finalize()))),
            Hasher::GitSha1(h) => Some(("git-sha1", hex::encode(h.finalize()))),
            Hasher::None => None,
        }
    }
}

/// A Hub client writing into the Hugging Face cache.
#[derive(Debug, Clone)]
pub struct HubClient {
    config: HubConfig,
    /// Never follows redirects: the metadata we need is on the redirect response itself.
    probe: Agent,
    /// Follows redirects (to the CDN) for the content.
    fetch: Agent,
}

fn header<'a>(headers: &'a ureq::http::HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
}

/// `scheme://host[:port]` of an absolute URL.
fn origin(url: &str) -> &str {
    let after_scheme = url.find("://").map_or(0, |i| i + 3);
    match url[after_scheme..].find('/') {
        Some(i) => &url[..after_scheme + i],
        None => url,
    }
}

impl HubClient {
    /// A client for `config`.
    pub fn new(config: HubConfig) -> HubClient {
        let agent = |redirects: u32| -> Agent {
            Agent::config_builder()
                .max_redirects(redirects)
                // Statuses are errors we word ourselves, with the URL and the file.
                .http_status_as_error(false)
                // Hashes and sizes are of the raw file: no transparent decompression.
                .accept_encoding("identity")
                .user_agent(concat!("imdb-lora/", env!("CARGO_PKG_VERSION"), " (ureq)"))
                .timeout_connect(Some(config.connect_timeout))
                .timeout_recv_response(Some(config.read_timeout))
                .timeout_per_read(Some(config.read_timeout))
                .build()
                .into()
        };
        HubClient {
            probe: agent(0),
            fetch: agent(MAX_REDIRECTS),
            config,
        }
    }

    /// A client configured from the environment ([`HubConfig::from_env`]).
    pub fn from_env() -> HubClient {
        HubClient::new(HubConfig::from_env())
    }

    /// The configuration in use.
    pub fn config(&self) -> &HubConfig {
        &self.config
    }

    fn repo_dir(&self, repo: &Repo) -> PathBuf {
        self.config.cache_dir.join(repo.cache_folder())
    }

    /// The cached snapshot path of `file` at the repository's revision, if present; no network.
    pub fn cached_path(&self, repo: &Repo, file: &str) -> Option<PathBuf> {
        validate_file(file).ok()?;
        let dir = self.repo_dir(repo);
        let rev = repo.revision();
        let commit = if rev.len() == 40 && rev.bytes().all(|b| b.is_ascii_hexdigit()) {
            rev.to_owned()
        } else {
            fs::read_to_string(dir.join("refs").join(rev))
                .ok()?
                .trim()
                .to_owned()
        };
        if commit.is_empty() || !commit.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return None;
        }
        let path = dir.join("snapshots").join(commit).join(file);
        path.is_file().then_some(path)
    }

    fn auth_header(&self, url: &str) -> Option<String> {
        // Only the endpoint gets the token; a CDN URL is already signed and must not see it.
        let t = self.config.token.as_ref()?;
        (origin(url) == origin(&self.config.endpoint)).then(|| format!("Bearer {t}"))
    }

    /// Ask the endpoint what `file` currently is (commit, ETag, size, where to download it).
    pub fn metadata(&self, repo: &Repo, file: &str) -> Result<FileMetadata> {
        validate_file(file)?;
        let url = repo.file_url(&self.config.endpoint, file);
        self.head(&url, file)
    }

    fn head(&self, url: &str, file: &str) -> Result<FileMetadata> {
        let mut current = url.to_owned();
        for _ in 0..=MAX_REDIRECTS {
            let mut req = self.probe.head(&current);
            if let Some(auth) = self.auth_header(&current) {
                req = req.header("Authorization", auth);
            }
            let resp = req.call().map_err(|e| Error::Http {
                method: "HEAD",
                url: current.clone(),
                source: Box::new(e),
            })?;
            let status = resp.status().as_u16();
            let headers = resp.headers();
            tracing::debug!(url = %current, status, "HEAD");
            match status {
                200..=299 => return parse_metadata(&current, headers, None),
                300..=399 => {
                    let location =
                        header(headers, "location").ok_or_else(|| Error::MissingHeader {
                            url: current.clone(),
                            header: "Location",
                            why: "a redirect must say where to",
                        })?;
                    let relative = location.starts_with('/') && !location.starts_with("//");
                    if !relative && header(headers, "x-repo-commit").is_some() {
                        // An LFS file: metadata here, content at the CDN.
                        return parse_metadata(&current, headers, Some(location));
                    }
                    current = if relative {
                        format!("{}{location}", origin(&current))
                    } else {
                        location.to_owned()
                    };
                }
                404 => {
                    return Err(Error::NotFound {
                        url: current,
                        file: file.to_owned(),
                    });
                }
                401 | 403 => {
                    return Err(Error::Unauthorized {
                        url: current,
                        status,
                    });
                }
                _ => {
                    return Err(Error::HttpStatus {
                        method: "HEAD",
                        url: current,
                        status,
                        expected: "200 or a redirect",
                    });
                }
            }
        }
        Err(Error::TooManyRedirects {
            url: current,
            limit: MAX_REDIRECTS,
        })
    }

    /// Download `file` of `repo` into the cache (or reuse it) and return its snapshot path.
    pub fn download(&self, repo: &Repo, file: &str) -> Result<PathBuf> {
        let _span = tracing::info_span!("hub_download", repo = %repo, file).entered();
        validate_file(file)?;
        let not_cached = |why: String| Error::NotCached {
            repo: repo.to_string(),
            file: file.to_owned(),
            cache: self.config.cache_dir.clone(),
            why,
        };
        if self.config.offline {
            return self.cached_path(repo, file).ok_or_else(|| {
                not_cached("offline mode is on (HF_HUB_OFFLINE or the offline flag)".into())
            });
        }
        let url = repo.file_url(&self.config.endpoint, file);
        let meta = match self.head(&url, file) {
            Ok(meta) => meta,
            Err(e @ Error::Http { .. }) => {
                // Unreachable endpoint (not an HTTP error status): a cached copy is as good as the
                // Python tools consider it, so training can proceed on a plane.
                return match self.cached_path(repo, file) {
                    Some(p) => {
                        tracing::warn!(error = %e, path = %p.display(), "Hub unreachable, using the cached file");
                        Ok(p)
                    }
                    None => Err(e),
                };
            }
            Err(e) => return Err(e),
        };
        if !meta.commit.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(Error::BadHeader {
                url,
                header: "X-Repo-Commit",
                found: meta.commit,
                expected: "a commit id (letters and digits)",
            });
        }

        let dir = self.repo_dir(repo);
        let blob = dir.join("blobs").join(&meta.etag);
        let snapshot = dir.join("snapshots").join(&meta.commit).join(file);
        let have_blob = fs::metadata(&blob).is_ok_and(|m| m.is_file() && m.len() == meta.size);
        if have_blob {
            tracing::debug!(blob = %blob.display(), "cache hit");
        } else {
            self.fetch_blob(file, &meta, &blob)?;
        }

        let linked = fs::metadata(&snapshot).is_ok_and(|m| m.is_file() && m.len() == meta.size);
        if !linked {
            // From snapshots/<commit>/<a>/<b> the blobs dir is one level up per path part, plus two.
            let ups = 1 + file.split('/').count();
            let rel = PathBuf::from("../".repeat(ups))
                .join("blobs")
                .join(&meta.etag);
            atomic::symlink_atomic(&rel, &blob, &snapshot)?;
        }
        if repo.revision() != meta.commit {
            let ref_path = dir.join("refs").join(repo.revision());
            let current = fs::read_to_string(&ref_path).ok();
            if current.as_deref().map(str::trim) != Some(meta.commit.as_str()) {
                atomic::write_atomic(&ref_path, meta.commit.as_bytes())?;
            }
        }
        tracing::info!(path = %snapshot.display(), size = meta.size, commit = %meta.commit, "file ready");
        Ok(snapshot)
    }

    /// As [`HubClient::download`], but a file the repository does not have (404, or absent from the
    /// cache when offline) is `Ok(None)`.
    pub fn download_optional(&self, repo: &Repo, file: &str) -> Result<Option<PathBuf>> {
        match self.download(repo, file) {
            Ok(p) => Ok(Some(p)),
            Err(Error::NotFound { .. }) => Ok(None),
            Err(Error::NotCached { .. }) if self.config.offline => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// GET the content into a temp file beside `blob`, verify it, rename it into place.
    fn fetch_blob(&self, file: &str, meta: &FileMetadata, blob: &Path) -> Result<()> {
        let url = meta.download_url.as_str();
        let mut tmp = TempFile::beside(blob)?;
        let partial = tmp.path().to_path_buf();
        // Every error below drops `tmp`, which deletes the partial file before the caller sees it.
        let at = || {
            Box::new(PartialDownload {
                url: url.to_owned(),
                file: file.to_owned(),
                partial: partial.clone(),
            })
        };
        tracing::info!(url, size = meta.size, "downloading");

        let mut req = self.fetch.get(url);
        if let Some(auth) = self.auth_header(url) {
            req = req.header("Authorization", auth);
        }
        let resp = req.call().map_err(|e| Error::Http {
            method: "GET",
            url: url.to_owned(),
            source: Box::new(e),
        })?;
        let status = resp.status().as_u16();
        match status {
            200 => {}
            404 => {
                return Err(Error::NotFound {
                    url: url.to_owned(),
                    file: file.to_owned(),
                });
            }
            401 | 403 => {
                return Err(Error::Unauthorized {
                    url: url.to_owned(),
                    status,
                });
            }
            _ => {
                return Err(Error::HttpStatus {
                    method: "GET",
                    url: url.to_owned(),
                    status,
                    expected: "200",
                });
            }
        }
        let declared = header(resp.headers(), "content-length").and_then(|v| v.parse::<u64>().ok());
        if let Some(declared) = declared.filter(|d| *d != meta.size) {
            // No point streaming a body that cannot be right.
            return Err(if declared < meta.size {
                Error::Truncated {
                    download: at(),
                    received: declared,
                    expected: meta.size,
                }
            } else {
                Error::Oversized {
                    download: at(),
                    expected: meta.size,
                }
            });
        }

        let kind = digest_kind(&meta.etag);
        if kind == DigestKind::Unknown {
            tracing::warn!(etag = %meta.etag, url, "ETag is neither a sha256 nor a git blob id: only the size is verified");
        }
        let mut hasher = Hasher::new(kind, meta.size);
        let bar = self.progress_bar(file, meta.size);
        let mut reader = resp.into_body().into_reader();
        let mut buf = vec![0u8; CHUNK];
        let mut received: u64 = 0;
        loop {
            let n = match reader.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(source) => {
                    if let Some(b) = &bar {
                        b.abandon();
                    }
                    return Err(Error::Transfer {
                        download: at(),
                        received,
                        expected: meta.size,
                        source,
                    });
                }
            };
            received += n as u64;
            if received > meta.size {
                return Err(Error::Oversized {
                    download: at(),
                    expected: meta.size,
                });
            }
            hasher.update(&buf[..n]);
            tmp.write_all(&buf[..n])?;
            if let Some(b) = &bar {
                b.inc(n as u64);
            }
        }
        if let Some(b) = &bar {
            b.finish_and_clear();
        }
        if received != meta.size {
            return Err(Error::Truncated {
                download: at(),
                received,
                expected: meta.size,
            });
        }
        if let Some((algorithm, actual)) = hasher.finish()
            && !actual.eq_ignore_ascii_case(&meta.etag)
        {
            return Err(Error::ChecksumMismatch {
                download: at(),
                algorithm,
                expected: meta.etag.clone(),
                actual,
            });
        }
        tmp.persist(blob)?;
        tracing::info!(blob = %blob.display(), bytes = received, "downloaded and verified");
        Ok(())
    }

    fn progress_bar(&self, file: &str, size: u64) -> Option<indicatif::ProgressBar> {
        if !self.config.progress || size < PROGRESS_MIN_BYTES {
            return None;
        }
        // Draws on stderr only when it is a terminal, so logs and CI output stay clean.
        let bar = indicatif::ProgressBar::new(size);
        if let Ok(style) = indicatif::ProgressStyle::with_template(
            "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
        ) {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.set_message(file.to_owned());
        Some(bar)
    }
}

/// Turn HEAD response headers into metadata, preferring the LFS (`X-Linked-*`) headers.
fn parse_metadata(
    url: &str,
    headers: &ureq::http::HeaderMap,
    location: Option<&str>,
) -> Result<FileMetadata> {
    let missing = |header, why| Error::MissingHeader {
        url: url.to_owned(),
        header,
        why,
    };
    let commit = header(headers, "x-repo-commit")
        .ok_or_else(|| missing("X-Repo-Commit", "it names the snapshot the file belongs to"))?;
    let (etag_name, raw_etag) = match header(headers, "x-linked-etag") {
        Some(v) => ("X-Linked-Etag", v),
        None => (
            "ETag",
            header(headers, "etag")
                .ok_or_else(|| missing("ETag", "it identifies and verifies the file"))?,
        ),
    };
    let etag = raw_etag
        .trim_start_matches("W/")
        .trim_matches('"')
        .to_owned();
    if etag.is_empty()
        || etag == "."
        || etag == ".."
        || !etag
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    {
        return Err(Error::BadHeader {
            url: url.to_owned(),
            header: etag_name,
            found: raw_etag.to_owned(),
            expected: "a quoted digest such as \"<64 hex digits>\"",
        });
    }
    let (size_name, raw_size) = match header(headers, "x-linked-size") {
        Some(v) => ("X-Linked-Size", v),
        None => (
            "Content-Length",
            header(headers, "content-length")
                .ok_or_else(|| missing("Content-Length", "the size is verified"))?,
        ),
    };
    let size = raw_size.parse::<u64>().map_err(|_| Error::BadHeader {
        url: url.to_owned(),
        header: size_name,
        found: raw_size.to_owned(),
        expected: "a byte count",
    })?;
    Ok(FileMetadata {
        commit: commit.to_owned(),
        etag,
        size,
        download_url: location.unwrap_or(url).to_owned(),
    })
}

/// Where files come from: a local directory, or a Hub repository.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// A directory holding the files (by their repository path, or just by file name).
    Local(PathBuf),
    /// A Hub repository.
    Hub(Repo),
}

impl Source {
    /// Interpret `spec`: an existing directory is [`Source::Local`] (as in `transformers`, a local
    /// directory wins over a repository of the same name); something that looks like a path but does
    /// not exist is an error; otherwise a repository id, optionally `id@revision`.
    pub fn parse(spec: &str, kind: RepoType) -> Result<Source> {
        let path = Path::new(spec);
        if path.is_dir() {
            return Ok(Source::Local(path.to_path_buf()));
        }
        let looks_like_path = spec.starts_with(['/', '.', '~'])
            || spec.contains('\\')
            || spec
                .split('@')
                .next()
                .is_some_and(|s| s.matches('/').count() > 1);
        if looks_like_path {
            return Err(Error::io(
                "open local directory",
                path,
                std::io::Error::new(std::io::ErrorKind::NotFound, "no such directory"),
            ));
        }
        match spec.split_once('@') {
            Some((id, rev)) => Ok(Source::Hub(Repo::new(id, kind)?.with_revision(rev)?)),
            None => Ok(Source::Hub(Repo::new(spec, kind)?)),
        }
    }

    /// Human-readable description for logs and errors.
    pub fn describe(&self) -> String {
        match self {
            Source::Local(p) => format!("directory {}", p.display()),
            Source::Hub(r) => r.to_string(),
        }
    }

    /// The local path of `file` (repository-relative), downloading it if needed.
    pub fn resolve(&self, client: &HubClient, file: &str) -> Result<PathBuf> {
        match self {
            Source::Hub(repo) => client.download(repo, file),
            Source::Local(dir) => {
                validate_file(file)?;
                let tried = local_candidates(dir, file);
                tried
                    .iter()
                    .find(|p| p.is_file())
                    .cloned()
                    .ok_or_else(|| Error::LocalFileMissing {
                        dir: dir.clone(),
                        file: file.to_owned(),
                        tried: tried
                            .iter()
                            .map(|p| p.display().to_string())
                            .collect::<Vec<_>>()
                            .join(", "),
                    })
            }
        }
    }

    /// As [`Source::resolve`], but a file the source lacks is `Ok(None)`.
    pub fn resolve_optional(&self, client: &HubClient, file: &str) -> Result<Option<PathBuf>> {
        match self {
            Source::Hub(repo) => client.download_optional(repo, file),
            Source::Local(_) => match self.resolve(client, file) {
                Ok(p) => Ok(Some(p)),
                Err(Error::LocalFileMissing { .. }) => Ok(None),
                Err(e) => Err(e),
            },
        }
    }
}

/// A local directory may hold the repository tree (`plain_text/train-...parquet`) or just the files
/// (`train-...parquet`), as in `shared/README.md`'s `--data .../plain_text` example.
fn local_candidates(dir: &Path, file: &str) -> Vec<PathBuf> {
    let mut out = vec![file.split('/').fold(dir.to_path_buf(), |p, s| p.join(s))];
    if let Some((_, base)) = file.rsplit_once('/') {
        out.push(dir.join(base));
    }
    out
}

/// Local paths of the IMDb splits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DatasetFiles {
    /// Train split parquet.
    pub train: PathBuf,
    /// Test split parquet.
    pub test: PathBuf,
}

/// Resolve (download if needed) the IMDb train and test parquet files.
pub fn fetch_imdb(client: &HubClient, source: &Source) -> Result<DatasetFiles> {
    let _span = tracing::info_span!("fetch_imdb", source = %source.describe()).entered();
    Ok(DatasetFiles {
        train: source.resolve(client, IMDB_TRAIN_FILE)?,
        test: source.resolve(client, IMDB_TEST_FILE)?,
    })
}

/// Local paths of a model's files.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModelFiles {
    /// Where they came from ([`Source::describe`]).
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

/// Resolve (download if needed) a model's config, weights and tokenizer files.
pub fn fetch_model(client: &HubClient, source: &Source) -> Result<ModelFiles> {
    let _span = tracing::info_span!("fetch_model", source = %source.describe()).entered();
    let [config, weights] = MODEL_REQUIRED_FILES.map(|f| source.resolve(client, f));
    let [tokenizer_json, vocab, tokenizer_config, _special] =
        MODEL_OPTIONAL_FILES.map(|f| source.resolve_optional(client, f));
    let files = ModelFiles {
        source: source.describe(),
        config: config?,
        weights: weights?,
        tokenizer_json: tokenizer_json?,
        vocab: vocab?,
        tokenizer_config: tokenizer_config?,
    };
    // `special_tokens_map.json` is fetched so the snapshot is usable by Python tools too, but not
    // needed here; a failure to get it must still surface.
    _special?;
    if files.tokenizer_json.is_none() && files.vocab.is_none() {
        return Err(Error::NoTokenizerFiles {
            source_desc: files.source,
        });
    }
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn repo_ids_follow_hub_rules() {
        assert!(Repo::model("bert-base-uncased").is_ok());
        assert!(Repo::model("sentence-transformers/all-MiniLM-L6-v2").is_ok());
        for bad in ["", "a/b/c", "a--b", "../x", "a/.x", "x y", "-a", "a/"] {
            let err = Repo::model(bad).unwrap_err();
            assert!(
                matches!(err, Error::InvalidRepoId { .. }),
                "{bad:?} gave {err}"
            );
        }
        assert!(Repo::model("a").unwrap().with_revision("..").is_err());
        assert!(Repo::model("a").unwrap().with_revision("refs/pr/1").is_ok());
    }

    #[test]
    fn urls_and_cache_folders_match_the_hub_layout() {
        let d = Repo::dataset(IMDB_DATASET).unwrap();
        assert_eq!(
            d.file_url("http://h/", IMDB_TRAIN_FILE),
            "http://h/datasets/stanfordnlp/imdb/resolve/main/plain_text/train-00000-of-00001.parquet"
        );
        assert_eq!(d.cache_folder(), "datasets--stanfordnlp--imdb");
        let m = Repo::model("bert-base-uncased")
            .unwrap()
            .with_revision("refs/pr/1")
            .unwrap();
        assert_eq!(
            m.file_url("https://hf.co", "config.json"),
            "https://hf.co/bert-base-uncased/resolve/refs%2Fpr%2F1/config.json"
        );
        assert_eq!(m.cache_folder(), "models--bert-base-uncased");
    }

    #[test]
    fn file_names_cannot_escape() {
        for bad in ["", "/etc/passwd", "a/../b", "a//b", "./a", "a\\b"] {
            assert!(validate_file(bad).is_err(), "{bad:?}");
        }
        assert!(validate_file("plain_text/train.parquet").is_ok());
    }

    fn vars(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let m: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).into(), (*v).into()))
            .collect();
        move |k| m.get(k).cloned()
    }

    #[test]
    fn config_from_env_follows_python_precedence() {
        let c = HubConfig::from_vars(vars(&[("HOME", "/home/u")]));
        assert_eq!(c.endpoint, DEFAULT_ENDPOINT);
        assert_eq!(c.cache_dir, PathBuf::from("/home/u/.cache/huggingface/hub"));
        assert!(!c.offline && c.progress && c.token.is_none());

        let c = HubConfig::from_vars(vars(&[("HOME", "/home/u"), ("XDG_CACHE_HOME", "/x")]));
        assert_eq!(c.cache_dir, PathBuf::from("/x/huggingface/hub"));

        let c = HubConfig::from_vars(vars(&[
            ("HOME", "/home/u"),
            ("XDG_CACHE_HOME", "/x"),
            ("HF_HOME", "~/hf"),
            ("HF_ENDPOINT", "http://127.0.0.1:9/"),
            ("HF_HUB_OFFLINE", "1"),
            ("HF_TOKEN", "secret"),
            ("HF_HUB_DISABLE_PROGRESS_BARS", "true"),
        ]));
        assert_eq!(c.cache_dir, PathBuf::from("/home/u/hf/hub"));
        assert_eq!(c.endpoint, "http://127.0.0.1:9");
        assert!(c.offline && !c.progress);
        assert_eq!(c.token.as_deref(), Some("secret"));
        assert!(
            !format!("{c:?}").contains("secret"),
            "Debug must redact the token"
        );

        let c = HubConfig::from_vars(vars(&[
            ("HF_HOME", "/hf"),
            ("HF_HUB_CACHE", "/cache"),
            ("HF_HUB_OFFLINE", "0"),
        ]));
        assert_eq!(c.cache_dir, PathBuf::from("/cache"));
        assert!(!c.offline);
    }

    #[test]
    fn etags_are_classified_by_shape() {
        assert_eq!(digest_kind(&"a".repeat(64)), DigestKind::Sha256);
        assert_eq!(digest_kind(&"0".repeat(40)), DigestKind::GitSha1);
        assert_eq!(digest_kind("abc-123"), DigestKind::Unknown);
    }

    #[test]
    fn git_blob_hash_matches_git() {
        // `printf 'hello\n' | git hash-object --stdin`
        let mut h = Hasher::new(DigestKind::GitSha1, 6);
        h.update(b"hello\n");
        assert_eq!(
            h.finish().unwrap().1,
            "ce013625030ba8dba906f756967f9e9ca394464a"
        );
    }

    #[test]
    fn origin_strips_the_path() {
        assert_eq!(origin("http://127.0.0.1:8/a/b"), "http://127.0.0.1:8");
        assert_eq!(origin("https://hf.co"), "https://hf.co");
    }

    #[test]
    fn source_parse_distinguishes_dirs_and_repo_ids() {
        let dir = tempfile::tempdir().unwrap();
        let s = Source::parse(dir.path().to_str().unwrap(), RepoType::Model).unwrap();
        assert_eq!(s, Source::Local(dir.path().to_path_buf()));
        let s = Source::parse("bert-base-uncased@v1", RepoType::Model).unwrap();
        assert_eq!(
            s,
            Source::Hub(
                Repo::model("bert-base-uncased")
                    .unwrap()
                    .with_revision("v1")
                    .unwrap()
            )
        );
        let missing = dir.path().join("nope");
        let err = Source::parse(missing.to_str().unwrap(), RepoType::Model).unwrap_err();
        assert!(err.to_string().contains("nope"), "{err}");
    }

    #[test]
    fn local_source_finds_files_by_repo_path_or_basename() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir_all(dir.path().join("plain_text")).unwrap();
        fs::write(
            dir.path().join("plain_text/train-00000-of-00001.parquet"),
            b"x",
        )
        .unwrap();
        fs::write(dir.path().join("test-00000-of-00001.parquet"), b"y").unwrap();
        let client =
            HubClient::new(HubConfig::new("http://127.0.0.1:1", dir.path()).with_offline(true));
        let src = Source::Local(dir.path().to_path_buf());
        let files = fetch_imdb(&client, &src).unwrap();
        assert_eq!(fs::read(files.train).unwrap(), b"x");
        assert_eq!(fs::read(files.test).unwrap(), b"y");
        assert_eq!(src.resolve_optional(&client, "vocab.txt").unwrap(), None);
        let err = src.resolve(&client, "config.json").unwrap_err();
        assert!(
            matches!(err, Error::LocalFileMissing { .. })
                && err.to_string().contains("config.json"),
            "{err}"
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
        assert!(matches!(err, Error::NoTokenizerFiles { .. }), "{err}");
        fs::write(dir.path().join("vocab.txt"), b"[PAD]\n").unwrap();
        let files = fetch_model(&client, &src).unwrap();
        assert_eq!(files.vocab, Some(dir.path().join("vocab.txt")));
        assert_eq!(files.tokenizer_json, None);
    }
}
