//! [`HubClient`]: the Hub protocol (metadata probe, download, verification) and the cache
//! layout it fills; see the crate documentation for the protocol step by step.

use std::fs;
use std::io::{Read, Write as _};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Once};
use std::time::Duration;

use ureq::Agent;

use crate::config::HubConfig;
use crate::error::{HubError, PartialDownload, Result};
use crate::repo::{Repo, validate_file};
use crate::verify::{DigestKind, Hasher, digest_kind};

/// Files at least this large get a progress task (small JSON files would only flicker).
const PROGRESS_MIN_BYTES: u64 = 4 * 1024 * 1024;
/// Redirect limit for both the metadata probe and the download.
const MAX_REDIRECTS: u32 = 10;
/// Read buffer for downloads.
const CHUNK: usize = 1 << 20;
/// A partial download untouched this long is a killed process's leftover, not a live write
/// (a live one writes at least every read timeout), and is swept by the next download into
/// the same cache directory. Generous, because other processes may share the cache.
pub const STALE_DOWNLOAD_AGE: Duration = Duration::from_secs(3600);

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

/// Largest Hub API answer read: a file list of about 100,000 files.
const MAX_LISTING_BYTES: u64 = 16 * 1024 * 1024;

/// A repository's files at one commit ([`HubClient::list_files`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RepoFiles {
    /// The commit the revision is: download the files at it
    /// (`repo.with_revision(&commit)`) so that they all come from the commit listed.
    pub commit: String,
    /// Every file, by its path in the repository, sorted.
    pub files: Vec<String>,
    /// `snapshots/<commit>` in the cache: where downloaded files are linked under their paths.
    pub snapshot: PathBuf,
}

/// What we read of the Hub API's repository info.
#[derive(serde::Deserialize)]
struct ApiInfo {
    sha: String,
    siblings: Vec<ApiSibling>,
}

#[derive(serde::Deserialize)]
struct ApiSibling {
    rfilename: String,
}

/// The commit and the sorted files of an API answer, or why it is unusable.
fn parse_listing(body: &[u8]) -> std::result::Result<(String, Vec<String>), String> {
    let info: ApiInfo = serde_json::from_slice(body)
        .map_err(|e| format!("expected the Hub API's JSON with `sha` and `siblings`: {e}"))?;
    if info.sha.is_empty() || !info.sha.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(format!("`sha` is {:?}, expected a commit id", info.sha));
    }
    let mut files = Vec::with_capacity(info.siblings.len());
    for s in info.siblings {
        validate_file(&s.rfilename).map_err(|e| format!("file {e}"))?;
        files.push(s.rfilename);
    }
    files.sort();
    files.dedup();
    Ok((info.sha, files))
}

/// Every file under `dir` as a `/`-joined path relative to it, sorted (links followed, hidden
/// entries skipped): a snapshot's files as the Hub would list them. The loopback mirror lists
/// a revision's folder with it too, so the client and the mirror cannot disagree.
///
/// # Errors
/// The first directory that cannot be read.
pub fn files_under(dir: &Path) -> std::io::Result<Vec<String>> {
    fn walk(dir: &Path, prefix: &str, out: &mut Vec<String>) -> std::io::Result<()> {
        for entry in fs::read_dir(dir)? {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') {
                continue;
            }
            let path = entry.path();
            let rel = format!("{prefix}{name}");
            if path.is_dir() {
                walk(&path, &format!("{rel}/"), out)?;
            } else if path.is_file() {
                out.push(rel);
            }
        }
        Ok(())
    }
    let mut files = Vec::new();
    walk(dir, "", &mut files)?;
    files.sort();
    Ok(files)
}

/// A file resolved to a local path, with the commit it belongs to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Resolved {
    /// `snapshots/<commit>/<file>` in the cache.
    pub(crate) path: PathBuf,
    /// The commit the revision resolved to (online: `X-Repo-Commit`; offline: `refs/<revision>`).
    pub(crate) commit: String,
}

/// A Hub client writing into the Hugging Face cache.
///
/// It reports the progress of large downloads to the [`imdb_lora_progress::Progress`] it holds
/// ([`HubClient::with_progress`]; [`imdb_lora_progress::Silent`] by default): the binary that builds the
/// client owns the display, and every download path (a [`crate::Source`], a fetch, a single file)
/// already goes through the client, so no call has to carry it.
#[derive(Debug, Clone)]
pub struct HubClient {
    config: HubConfig,
    progress: Arc<dyn imdb_lora_progress::Progress>,
    /// Never follows redirects: the metadata we need is on the redirect response itself.
    probe: Agent,
    /// Follows redirects (to the CDN) for the content.
    fetch: Agent,
    /// The token would travel in clear text ([`token_in_clear`]); warned about once per client
    /// (and its clones), at the first request that carries it.
    token_in_clear: bool,
    token_warning: Arc<Once>,
}

fn header<'a>(headers: &'a ureq::http::HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
}

/// Whether a token sent to `endpoint` crosses the network unencrypted: plain `http://` to a host
/// other than loopback (`localhost`, `127.0.0.0/8`, `::1`). A loopback mirror over http is the
/// normal air-gapped setup and never leaves the machine.
pub(crate) fn token_in_clear(endpoint: &str) -> bool {
    let Some((scheme, rest)) = endpoint.split_once("://") else {
        return false;
    };
    if !scheme.eq_ignore_ascii_case("http") {
        return false;
    }
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = match host_port.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => host_port.split(':').next().unwrap_or(""),
    };
    let loopback = host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    !loopback
}

/// Whether `e` is ureq's overall (global) timeout, directly or inside an I/O error from a body read.
fn is_deadline(e: &(dyn std::error::Error + 'static)) -> bool {
    let ureq_err = e.downcast_ref::<ureq::Error>().or_else(|| {
        e.downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
            .and_then(|inner| inner.downcast_ref::<ureq::Error>())
    });
    matches!(ureq_err, Some(ureq::Error::Timeout(ureq::Timeout::Global)))
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
            token_in_clear: config.token.is_some() && token_in_clear(&config.endpoint),
            token_warning: Arc::new(Once::new()),
            config,
            progress: Arc::new(imdb_lora_progress::Silent),
        }
    }

    /// Reports each download of at least 4 MiB to `progress` as a task labelled with the file
    /// name, counting bytes (unless [`HubConfig::progress`] is off).
    pub fn with_progress(mut self, progress: Arc<dyn imdb_lora_progress::Progress>) -> HubClient {
        self.progress = progress;
        self
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
        self.cached(repo, file).map(|r| r.path)
    }

    /// [`HubClient::cached_path`] with the commit it lies under.
    fn cached(&self, repo: &Repo, file: &str) -> Option<Resolved> {
        validate_file(file).ok()?;
        let commit = self.cached_commit(repo)?;
        let path = self.snapshot_dir(repo, &commit).join(file);
        path.is_file().then_some(Resolved { path, commit })
    }

    /// The commit the cache says the repository's revision is: the revision itself when it is a
    /// commit id, else what `refs/<revision>` holds.
    fn cached_commit(&self, repo: &Repo) -> Option<String> {
        let rev = repo.revision();
        let commit = if rev.len() == 40 && rev.bytes().all(|b| b.is_ascii_hexdigit()) {
            rev.to_owned()
        } else {
            fs::read_to_string(self.repo_dir(repo).join("refs").join(rev))
                .ok()?
                .trim()
                .to_owned()
        };
        (!commit.is_empty() && commit.bytes().all(|b| b.is_ascii_alphanumeric())).then_some(commit)
    }

    /// `snapshots/<commit>` of the repository in the cache: where its files of that commit are
    /// linked, under their repository paths.
    pub fn snapshot_dir(&self, repo: &Repo, commit: &str) -> PathBuf {
        self.repo_dir(repo).join("snapshots").join(commit)
    }

    /// The repository's files at its revision, and the commit the revision is.
    ///
    /// Online, the Hub API answers (`GET` [`Repo::api_url`], the request behind Python's
    /// `dataset_info`/`list_repo_files`): the commit (`sha`) and every file (`siblings`). Offline,
    /// or when the endpoint cannot be reached, the cached snapshot of the revision is listed
    /// instead, with a warning in the second case: only the files fetched before are there.
    ///
    /// # Errors
    /// [`HubError::RepoNotFound`] (no such repository or revision), [`HubError::Unauthorized`],
    /// [`HubError::BadListing`] (not the Hub API's JSON, a commit that is no commit id, a file
    /// name that could escape the cache), a transport error, or offline with nothing cached
    /// ([`HubError::NotCached`]).
    pub fn list_files(&self, repo: &Repo) -> Result<RepoFiles> {
        let _span = tracing::debug_span!("hub_list", repo = %repo).entered();
        let url = repo.api_url(&self.config.endpoint);
        if self.config.offline {
            return self
                .cached_listing(repo)
                .ok_or_else(|| HubError::NotCached {
                    repo: repo.to_string(),
                    file: "the file list".into(),
                    cache: self.config.cache_dir.clone(),
                    why: "offline mode is on (HF_HUB_OFFLINE or the offline flag)".into(),
                });
        }
        let body = match self.get_listing(&url, repo) {
            Ok(body) => body,
            Err(e @ HubError::Http { .. }) => {
                return match self.cached_listing(repo) {
                    Some(cached) => {
                        tracing::warn!(error = %e, "Hub unreachable, listing the cached files of {repo}");
                        Ok(cached)
                    }
                    None => Err(e),
                };
            }
            Err(e) => return Err(e),
        };
        let (commit, files) = parse_listing(&body).map_err(|reason| HubError::BadListing {
            url: url.clone(),
            repo: repo.to_string(),
            reason,
        })?;
        tracing::debug!(files = files.len(), commit = %commit, "listed");
        // Offline runs list the snapshot through the ref (what was fetched of it).
        self.write_ref(repo, &commit)?;
        Ok(RepoFiles {
            snapshot: self.snapshot_dir(repo, &commit),
            commit,
            files,
        })
    }

    /// Record in `refs/<revision>` that the revision is `commit` (unless the revision is that
    /// commit), as Python does: offline use finds the snapshot through it.
    fn write_ref(&self, repo: &Repo, commit: &str) -> Result<()> {
        if repo.revision() != commit {
            let ref_path = self.repo_dir(repo).join("refs").join(repo.revision());
            let current = fs::read_to_string(&ref_path).ok();
            if current.as_deref().map(str::trim) != Some(commit) {
                imdb_lora_fsio::write(&ref_path, commit.as_bytes())?;
            }
        }
        Ok(())
    }

    /// GET the API's JSON (at most [`MAX_LISTING_BYTES`]).
    fn get_listing(&self, url: &str, repo: &Repo) -> Result<Vec<u8>> {
        let deadline = self.config.download_deadline.for_size(MAX_LISTING_BYTES);
        let resp = self
            .get(url, "the file list", deadline)
            .map_err(|e| match e {
                HubError::NotFound { url, .. } => HubError::RepoNotFound {
                    url,
                    repo: repo.to_string(),
                },
                e => e,
            })?;
        let mut body = Vec::new();
        resp.into_body()
            .into_reader()
            .take(MAX_LISTING_BYTES + 1)
            .read_to_end(&mut body)
            .map_err(|e| HubError::io("read the file list from", url, e))?;
        if body.len() as u64 > MAX_LISTING_BYTES {
            return Err(HubError::BadListing {
                url: url.to_owned(),
                repo: repo.to_string(),
                reason: format!("longer than {MAX_LISTING_BYTES} bytes"),
            });
        }
        Ok(body)
    }

    /// The files of the revision's cached snapshot, if the cache knows the revision.
    fn cached_listing(&self, repo: &Repo) -> Option<RepoFiles> {
        let commit = self.cached_commit(repo)?;
        let snapshot = self.snapshot_dir(repo, &commit);
        let files = files_under(&snapshot).ok()?;
        Some(RepoFiles {
            commit,
            files,
            snapshot,
        })
    }

    fn auth_header(&self, url: &str) -> Option<String> {
        // Only the endpoint gets the token; a CDN URL is already signed and must not see it.
        let t = self.config.token.as_ref()?;
        if origin(url) != origin(&self.config.endpoint) {
            return None;
        }
        if self.token_in_clear {
            self.token_warning.call_once(|| {
                tracing::warn!(
                    endpoint = %self.config.endpoint,
                    "the Hub token (HF_TOKEN) is sent in clear text over plain http to {}: anyone on \
                     the way can read it; use https, or a mirror on this machine (127.0.0.1)",
                    self.config.endpoint
                );
            });
        }
        Some(format!("Bearer {t}"))
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
            let resp = req.call().map_err(|e| HubError::Http {
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
                        header(headers, "location").ok_or_else(|| HubError::MissingHeader {
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
                    return Err(HubError::NotFound {
                        url: current,
                        file: file.to_owned(),
                    });
                }
                401 | 403 => {
                    return Err(HubError::Unauthorized {
                        url: current,
                        status,
                    });
                }
                _ => {
                    return Err(HubError::HttpStatus {
                        method: "HEAD",
                        url: current,
                        status,
                        expected: "200 or a redirect",
                    });
                }
            }
        }
        Err(HubError::TooManyRedirects {
            url: current,
            limit: MAX_REDIRECTS,
        })
    }

    /// Download `file` of `repo` into the cache (or reuse it) and return its snapshot path.
    ///
    /// Each call resolves the revision afresh; [`crate::Source::fetch`] pins the files of one
    /// fetch to the commit its first file resolved to.
    pub fn download(&self, repo: &Repo, file: &str) -> Result<PathBuf> {
        self.download_resolved(repo, file).map(|r| r.path)
    }

    /// [`HubClient::download`], with the commit the file belongs to.
    pub(crate) fn download_resolved(&self, repo: &Repo, file: &str) -> Result<Resolved> {
        let _span = tracing::debug_span!("hub_download", repo = %repo, file).entered();
        validate_file(file)?;
        let not_cached = |why: String| HubError::NotCached {
            repo: repo.to_string(),
            file: file.to_owned(),
            cache: self.config.cache_dir.clone(),
            why,
        };
        if self.config.offline {
            let cached = self.cached(repo, file).ok_or_else(|| {
                not_cached("offline mode is on (HF_HUB_OFFLINE or the offline flag)".into())
            })?;
            tracing::info!("using cached {file}");
            tracing::debug!(path = %cached.path.display(), "offline");
            return Ok(cached);
        }
        let url = repo.file_url(&self.config.endpoint, file);
        let meta = match self.head(&url, file) {
            Ok(meta) => meta,
            Err(e @ HubError::Http { .. }) => {
                // Unreachable endpoint (not an HTTP error status): a cached copy is as good as the
                // Python tools consider it, so training can proceed on a plane.
                return match self.cached(repo, file) {
                    Some(cached) => {
                        tracing::warn!(error = %e, "Hub unreachable, using the cached {file}");
                        tracing::debug!(path = %cached.path.display(), "cached copy");
                        Ok(cached)
                    }
                    None => Err(e),
                };
            }
            Err(e) => return Err(e),
        };
        if !meta.commit.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(HubError::BadHeader {
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
            tracing::info!("using cached {file}");
            tracing::debug!(blob = %blob.display(), "cache hit");
        } else {
            self.fetch_blob(file, &meta, &blob)?;
            tracing::info!("downloaded {file} ({})", human_size(meta.size));
        }

        let linked = fs::metadata(&snapshot).is_ok_and(|m| m.is_file() && m.len() == meta.size);
        if !linked {
            // From snapshots/<commit>/<a>/<b> the blobs dir is one level up per path part, plus two.
            let ups = 1 + file.split('/').count();
            let rel = PathBuf::from("../".repeat(ups))
                .join("blobs")
                .join(&meta.etag);
            imdb_lora_fsio::symlink(&rel, &blob, &snapshot)?;
        }
        self.write_ref(repo, &meta.commit)?;
        tracing::debug!(path = %snapshot.display(), size = meta.size, commit = %meta.commit, "file ready");
        Ok(Resolved {
            path: snapshot,
            commit: meta.commit,
        })
    }

    /// As [`HubClient::download`], but a file the repository does not have (404, or absent from the
    /// cache when offline) is `Ok(None)`.
    pub fn download_optional(&self, repo: &Repo, file: &str) -> Result<Option<PathBuf>> {
        Ok(self.download_optional_resolved(repo, file)?.map(|r| r.path))
    }

    /// [`HubClient::download_optional`], with the commit the file belongs to.
    pub(crate) fn download_optional_resolved(
        &self,
        repo: &Repo,
        file: &str,
    ) -> Result<Option<Resolved>> {
        match self.download_resolved(repo, file) {
            Ok(r) => Ok(Some(r)),
            Err(HubError::NotFound { .. }) => Ok(None),
            Err(HubError::NotCached { .. }) if self.config.offline => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// GET the content into a temp file beside `blob`, verify it, rename it into place.
    ///
    /// Bounded twice over: the whole transfer must finish within
    /// [`HubConfig::download_deadline`] for the announced size, and at most one byte past the
    /// announced size is read (a longer body is [`HubError::Oversized`], never written).
    fn fetch_blob(&self, file: &str, meta: &FileMetadata, blob: &Path) -> Result<()> {
        let url = meta.download_url.as_str();
        if let Some(blobs) = blob.parent() {
            let swept = imdb_lora_fsio::sweep_temp_files(blobs, STALE_DOWNLOAD_AGE)?;
            if !swept.is_empty() {
                tracing::info!(
                    files = swept.len(),
                    "removed partial downloads a killed process left"
                );
                tracing::debug!(?swept, "removed partial downloads");
            }
        }
        let mut tmp = imdb_lora_fsio::AtomicFile::create(blob)?;
        let partial = tmp.temp_path().to_path_buf();
        // Every error below drops `tmp`, which deletes the partial file before the caller sees it.
        let at = || {
            Box::new(PartialDownload {
                url: url.to_owned(),
                file: file.to_owned(),
                partial: partial.clone(),
            })
        };
        let deadline = self.config.download_deadline.for_size(meta.size);
        let past_deadline = |received| HubError::DeadlineExceeded {
            download: at(),
            deadline,
            received,
            expected: meta.size,
        };
        tracing::debug!(
            url,
            size = meta.size,
            deadline_s = deadline.as_secs_f64(),
            "downloading"
        );

        let resp = self.get(url, file, deadline).map_err(|e| match e {
            HubError::Http { source, .. } if is_deadline(&*source) => past_deadline(0),
            e => e,
        })?;
        let declared = header(resp.headers(), "content-length").and_then(|v| v.parse::<u64>().ok());
        if let Some(declared) = declared.filter(|d| *d != meta.size) {
            // No point streaming a body that cannot be right.
            return Err(if declared < meta.size {
                HubError::Truncated {
                    download: at(),
                    received: declared,
                    expected: meta.size,
                }
            } else {
                HubError::Oversized {
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
        // Dropping the task (on success or any error below) ends it.
        let task = (self.config.progress && meta.size >= PROGRESS_MIN_BYTES).then(|| {
            self.progress
                .start(file, Some(meta.size), imdb_lora_progress::Unit::Bytes)
        });
        // One byte past the announced size is enough to know the body is too long.
        let mut reader = resp
            .into_body()
            .into_reader()
            .take(meta.size.saturating_add(1));
        let mut buf = vec![0u8; CHUNK];
        let mut received: u64 = 0;
        loop {
            let n = match reader.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) if is_deadline(&e) => return Err(past_deadline(received)),
                Err(source) => {
                    return Err(HubError::Transfer {
                        download: at(),
                        received,
                        expected: meta.size,
                        source,
                    });
                }
            };
            received += n as u64;
            if received > meta.size {
                return Err(HubError::Oversized {
                    download: at(),
                    expected: meta.size,
                });
            }
            hasher.update(&buf[..n]);
            tmp.write_all(&buf[..n])
                .map_err(|e| HubError::io("write", &partial, e))?;
            if let Some(task) = &task {
                task.advance(n as u64);
            }
        }
        if received != meta.size {
            return Err(HubError::Truncated {
                download: at(),
                received,
                expected: meta.size,
            });
        }
        if let Some((algorithm, actual)) = hasher.finish()
            && !actual.eq_ignore_ascii_case(&meta.etag)
        {
            return Err(HubError::ChecksumMismatch {
                download: at(),
                algorithm,
                expected: meta.etag.clone(),
                actual,
            });
        }
        tmp.commit()?;
        tracing::debug!(blob = %blob.display(), bytes = received, "downloaded and verified");
        Ok(())
    }

    /// GET `url` (following redirects to the CDN) with an overall `deadline` that also covers
    /// reading the body; any status but 200 is an error naming `file`.
    fn get(
        &self,
        url: &str,
        file: &str,
        deadline: Duration,
    ) -> Result<ureq::http::Response<ureq::Body>> {
        let mut req = self
            .fetch
            .get(url)
            .config()
            .timeout_global(Some(deadline))
            .build();
        if let Some(auth) = self.auth_header(url) {
            req = req.header("Authorization", auth);
        }
        let resp = req.call().map_err(|e| HubError::Http {
            method: "GET",
            url: url.to_owned(),
            source: Box::new(e),
        })?;
        match resp.status().as_u16() {
            200 => Ok(resp),
            404 => Err(HubError::NotFound {
                url: url.to_owned(),
                file: file.to_owned(),
            }),
            status @ (401 | 403) => Err(HubError::Unauthorized {
                url: url.to_owned(),
                status,
            }),
            status => Err(HubError::HttpStatus {
                method: "GET",
                url: url.to_owned(),
                status,
                expected: "200",
            }),
        }
    }
}

/// A byte count as a person reads it: `612 B`, `455.3 KiB`, `86.7 MiB`.
fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = UNITS[0];
    for next in &UNITS[1..] {
        if value < 1024.0 {
            break;
        }
        value /= 1024.0;
        unit = next;
    }
    format!("{value:.1} {unit}")
}

/// Turn HEAD response headers into metadata, preferring the LFS (`X-Linked-*`) headers.
fn parse_metadata(
    url: &str,
    headers: &ureq::http::HeaderMap,
    location: Option<&str>,
) -> Result<FileMetadata> {
    let missing = |header, why| HubError::MissingHeader {
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
        return Err(HubError::BadHeader {
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
    let size = raw_size.parse::<u64>().map_err(|_| HubError::BadHeader {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_as_a_person_reads_them() {
        assert_eq!(human_size(612), "612 B");
        assert_eq!(human_size(466_247), "455.3 KiB");
        assert_eq!(human_size(20_042_008), "19.1 MiB");
        assert_eq!(human_size(3 << 30), "3.0 GiB");
    }

    #[test]
    fn only_plain_http_beyond_loopback_exposes_a_token() {
        for exposed in [
            "http://192.0.2.1:9",
            "http://mirror.lan:8765/hub",
            "HTTP://10.0.0.5",
            "http://[2001:db8::1]:80",
            "http://127.0.0.1.evil.example",
        ] {
            assert!(token_in_clear(exposed), "{exposed}");
        }
        for safe in [
            "https://huggingface.co",
            "http://127.0.0.1:8765",
            "http://127.1.2.3",
            "http://localhost:8765/",
            "http://LOCALHOST",
            "http://[::1]:8765",
            "http://user@127.0.0.1:1",
            "not a url",
        ] {
            assert!(!token_in_clear(safe), "{safe}");
        }
    }

    #[test]
    fn api_listings_are_checked() {
        let (commit, files) = parse_listing(
            br#"{"id":"o/n","sha":"abc123","private":false,
                 "siblings":[{"rfilename":"data/train-00000-of-00001.parquet"},{"rfilename":"README.md"}]}"#,
        )
        .unwrap();
        assert_eq!(commit, "abc123");
        assert_eq!(files, ["README.md", "data/train-00000-of-00001.parquet"]);
        for (bad, says) in [
            (&br#"<html>"#[..], "expected the Hub API's JSON"),
            (br#"{"sha":"abc"}"#, "siblings"),
            (br#"{"sha":"../x","siblings":[]}"#, "expected a commit id"),
            (
                br#"{"sha":"a","siblings":[{"rfilename":"../../etc/passwd"}]}"#,
                "etc/passwd",
            ),
        ] {
            let err = parse_listing(bad).err().unwrap();
            assert!(err.contains(says), "{err}");
        }
    }

    #[test]
    fn origin_strips_the_path() {
        assert_eq!(origin("http://127.0.0.1:8/a/b"), "http://127.0.0.1:8");
        assert_eq!(origin("https://hf.co"), "https://hf.co");
    }
}
