//! A small, verifying Hugging Face Hub client over `ureq`: files of a local directory or of a Hub
//! repository, fetched into (and reused from) the Hugging Face cache shared with Python's
//! `huggingface_hub`. It knows no model and no dataset: callers name the files they need
//! ([`Source::fetch`]).
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
//!    Otherwise `GET` the file (following redirects) into a temp file beside the blob
//!    (`blobs/.<etag>.<random>.incomplete`, written through [`imdb_lora_fsio::AtomicFile`]). The transfer
//!    has an overall deadline scaled from the announced size ([`DownloadDeadline`]; a server that
//!    trickles bytes fails too, not only one that stalls), and reading stops one byte past the
//!    announced size (a longer body is an error, never written out). Partial downloads that a
//!    killed process left in `blobs/` are swept first, once untouched for
//!    [`STALE_DOWNLOAD_AGE`] (younger ones may be another process's download in progress).
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
//! warning (as Python does). `HF_TOKEN` is sent as a bearer token to the endpoint (never to a CDN);
//! over plain `http://` to a host other than loopback it travels in clear text, which the client
//! warns about once. A loopback mirror (`http://127.0.0.1:PORT`, the air-gapped setup) is not
//! warned about: its traffic never leaves the machine.
//!
//! File lists: [`HubClient::list_files`] asks `GET {endpoint}/api/{models|datasets}/{repo}/revision/{revision}`
//! (what Python's `model_info`/`dataset_info` ask) for the commit (`sha`) and the files
//! (`siblings`), at most 16 MiB of JSON; offline, or with the endpoint unreachable, the cached
//! snapshot of the revision is listed instead.
//!
//! [`Source::fetch`] pins a repository's files to one commit: the first file resolves the
//! revision to a commit (`X-Repo-Commit`), the others are requested at that commit, so a push
//! between two files cannot mix revisions.
//!
//! The library draws nothing: downloads of 4 MiB or more are reported to the
//! [`imdb_lora_progress::Progress`] given to [`HubClient::with_progress`], and it logs one INFO line per
//! file a person cares about ("downloaded config.json (612 B)", "using cached model.safetensors"),
//! URLs and cache paths at DEBUG.
//!
//! # Modules
//! * [`client`]: [`HubClient`] (metadata probe, download, verification, cache layout, file
//!   lists).
//! * [`config`]: [`HubConfig`], from the `HF_*` environment variables; [`DownloadDeadline`].
//! * [`repo`]: [`Repo`], [`RepoType`], id and file-name rules, URLs and cache folder names.
//! * [`source`]: [`Source`] (local directory or repository) and [`Source::fetch`].
//! * [`urlpath`]: percent-encoding of URL paths, shared with the loopback mirror.

pub mod client;
pub mod config;
mod error;
pub mod repo;
pub mod source;
pub mod urlpath;
mod verify;

pub use crate::client::{FileMetadata, HubClient, RepoFiles, STALE_DOWNLOAD_AGE, files_under};
pub use crate::config::{
    DEADLINE_VAR, DEFAULT_ENDPOINT, DownloadDeadline, HubConfig, MAX_DEADLINE,
};
pub use crate::error::{HubError, PartialDownload, Result};
pub use crate::repo::{DEFAULT_REVISION, Repo, RepoType};
pub use crate::source::{Fetched, Source};
