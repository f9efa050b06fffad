//! A loopback Hugging Face Hub mirror: a small std-only, threaded HTTP/1.1 static server over a
//! directory laid out like the Hub's file URLs (`<repo>/resolve/<rev>/<file>`,
//! `datasets/<repo>/resolve/<rev>/<file>`), answering with the headers the Hub sends.
//!
//! It exists so that the real download path can be tested without the internet (our CI and
//! developer machines cannot reach the Hub), and so that air-gapped users can serve a copy of the
//! files they need. It is public API because the CLI (`hub-mirror`) and the end-to-end tests use it.
//!
//! What it answers, per request for an existing file:
//! * **simple mode** (default): `200`, `Content-Length`, `ETag` = `X-Linked-Etag` = `"<sha256>"`,
//!   `X-Linked-Size`, `X-Repo-Commit` = [`MIRROR_COMMIT`], `Accept-Ranges: bytes`;
//! * **realistic mode** ([`HubMirrorBuilder::realistic`]): like huggingface.co — files of at least
//!   the LFS threshold get `302` to a CDN-like path `/_lfs/...` with `X-Linked-Etag` (sha256),
//!   `X-Linked-Size`, `X-Repo-Commit` and an `ETag` that is *not* the sha256 (so a client must
//!   prefer `X-Linked-Etag`); smaller files get `200` with `ETag` = their git blob id (SHA-1).
//!
//! It listens on loopback (`127.0.0.1`) unless [`HubMirrorBuilder::allow_remote`] is set: it
//! serves files to anyone who connects, without authentication.
//!
//! Plus: `HEAD`, single `Range` requests (`206`/`416`), 404 with the Hub's `X-Error-Code`, relative
//! `307` redirects for renamed repositories ([`HubMirrorBuilder::alias`]), and fault injection for
//! tests ([`Fault`]). Revisions: `main` is served from `resolve/main` and announces
//! [`MIRROR_COMMIT`]; another branch or tag `<rev>` (`refs/convert/parquet` included, as nested
//! directories) is served from `resolve/<rev>` and announces a commit of its own derived from its
//! name, so URLs pinned to the commit the mirror announced keep reaching the same files; a
//! directory named by a commit id (40 hex digits) announces that commit; [`HubMirror::set_ref`]
//! points a branch at such a directory (and [`HubMirror::set_ref_after`] does it between two
//! requests, as a push would). Hashes are computed once per file and cached.
//!
//! The Hub API's repository info, `GET /api/{models|datasets}/<id>/revision/<rev>` (what Python's
//! `model_info`/`dataset_info` ask, and [`imdb_lora_hub::HubClient::list_files`]), is answered with the
//! revision's commit (`sha`) and files (`siblings`), listed from its directory.

mod http;
mod route;

use std::collections::HashMap;
use std::io::{self, BufReader};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::http::{read_request, send};
use crate::route::{Hashes, route};

/// The commit sha every response announces in `X-Repo-Commit` (obviously fake, but 40 hex digits
/// as a real git commit id, so clients that validate it accept it).
pub const MIRROR_COMMIT: &str = "deadbeefdeadbeefdeadbeefdeadbeefdeadbeef";

/// Size from which realistic mode treats a file as stored in Git LFS (the Hub's own rule is per
/// `.gitattributes`; 10 MiB is the Hub's hard limit for non-LFS files, so it is a fair stand-in).
pub const DEFAULT_LFS_THRESHOLD: u64 = 10 * 1024 * 1024;

/// How long an idle keep-alive connection is kept before its thread gives up.
const IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// Connections served at once by default; more are answered `503` and closed (a thread each).
pub const DEFAULT_MAX_CONNECTIONS: usize = 64;
/// Requests kept for [`HubMirror::requests`] by default; older ones are dropped.
pub const DEFAULT_LOG_CAPACITY: usize = 10_000;
/// A fault to inject into file responses (for testing clients' failure handling).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Send only the first `keep` bytes of each file body with a `Content-Length` that matches the
    /// short body, while the Hub metadata (`X-Linked-Size`) still announces the full size — what a
    /// broken proxy or cache does.
    TruncateBody {
        /// Bytes of the body to send.
        keep: u64,
    },
    /// Announce the full `Content-Length`, send `after` bytes, then close the connection: the
    /// server going away mid-file.
    DropConnection {
        /// Bytes of the body to send before closing.
        after: u64,
    },
    /// Announce wrong checksums (`ETag`/`X-Linked-Etag` with the last hex digit changed) while
    /// sending the right bytes.
    WrongChecksum,
    /// Answer every request under `/resolve/` with this HTTP status and a short text body.
    Status(u16),
    /// Send each file body `bytes` bytes at a time with a pause of `every` in between: a server
    /// that stays alive (no single read waits long) but would take ages to finish.
    Trickle {
        /// Bytes per burst (at least 1).
        bytes: u64,
        /// Pause after each burst.
        every: Duration,
    },
    /// Send each file body in full and then `extra` more bytes, without `Content-Length` (the
    /// body ends when the connection closes), while the metadata still announces the true size:
    /// a server sending more than it announced.
    Overlong {
        /// Bytes sent after the file.
        extra: u64,
    },
}

/// The mirror could not start.
#[derive(Debug, thiserror::Error)]
#[error("hub mirror over {root}: cannot {action}: {source}", root = root.display())]
pub struct MirrorError {
    /// The directory served.
    pub root: PathBuf,
    /// What failed ("bind the listening socket", ...).
    pub action: &'static str,
    /// The I/O error.
    #[source]
    pub source: io::Error,
}

/// One request the mirror answered (for tests asserting what a client did).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MirrorRequest {
    /// `GET`, `HEAD`, ...
    pub method: String,
    /// The request target as received (still percent-encoded).
    pub target: String,
    /// The status sent.
    pub status: u16,
}

/// Configures a [`HubMirror`] before starting it.
#[derive(Clone, Debug)]
pub struct HubMirrorBuilder {
    root: PathBuf,
    bind: SocketAddr,
    realistic: bool,
    lfs_threshold: u64,
    aliases: Vec<(String, String)>,
    max_connections: usize,
    log_capacity: usize,
    allow_remote: bool,
}

impl HubMirrorBuilder {
    /// Serve at most `n` connections at once (at least 1); more are answered `503` and closed.
    pub fn max_connections(mut self, n: usize) -> Self {
        self.max_connections = n.max(1);
        self
    }

    /// Keep at most `n` requests (at least 1) for [`HubMirror::requests`], dropping the oldest.
    pub fn log_capacity(mut self, n: usize) -> Self {
        self.log_capacity = n.max(1);
        self
    }

    /// Listen on this address instead of `127.0.0.1:0` (a free loopback port). An address other
    /// than loopback also needs [`HubMirrorBuilder::allow_remote`].
    pub fn bind(mut self, addr: SocketAddr) -> Self {
        self.bind = addr;
        self
    }

    /// Allow binding an address other than loopback (`0.0.0.0`, a LAN address): the mirror
    /// answers anyone who can connect, without authentication, so reaching it from other
    /// machines has to be asked for. Off by default: [`HubMirrorBuilder::start`] refuses.
    pub fn allow_remote(mut self, allow: bool) -> Self {
        self.allow_remote = allow;
        self
    }

    /// Emulate huggingface.co's LFS redirects and git-blob ETags (see the module docs).
    pub fn realistic(mut self, on: bool) -> Self {
        self.realistic = on;
        self
    }

    /// Size from which realistic mode redirects like an LFS file.
    pub fn lfs_threshold(mut self, bytes: u64) -> Self {
        self.lfs_threshold = bytes;
        self
    }

    /// Answer requests for repository path `from` with a relative `307` to `to`, as the Hub does
    /// for renamed repositories (e.g. `bert-base-uncased` → `google-bert/bert-base-uncased`).
    /// Paths are as in URLs: datasets include the `datasets/` prefix.
    pub fn alias(mut self, from: &str, to: &str) -> Self {
        self.aliases.push((
            from.trim_matches('/').to_owned(),
            to.trim_matches('/').to_owned(),
        ));
        self
    }

    /// Bind and start serving in background threads.
    pub fn start(self) -> Result<HubMirror, MirrorError> {
        let root = self.root.clone();
        let io_err = |action: &'static str| {
            let root = root.clone();
            move |source| MirrorError {
                root,
                action,
                source,
            }
        };
        if !self.root.is_dir() {
            return Err(io_err("open the root directory")(io::Error::new(
                io::ErrorKind::NotFound,
                "not a directory",
            )));
        }
        if !self.bind.ip().is_loopback() && !self.allow_remote {
            return Err(io_err("listen on a non-loopback address")(io::Error::new(
                io::ErrorKind::PermissionDenied,
                format!(
                    "{} is reachable from other machines and the mirror serves files to anyone \
                     who connects; bind 127.0.0.1, or opt in with allow_remote(true) \
                     (imdb-lora hub-mirror --allow-remote)",
                    self.bind
                ),
            )));
        }
        let listener = TcpListener::bind(self.bind).map_err(io_err("bind the listening socket"))?;
        let addr = listener
            .local_addr()
            .map_err(io_err("read the bound address"))?;
        let shared = Arc::new(Shared {
            root: self.root,
            addr,
            realistic: self.realistic,
            lfs_threshold: self.lfs_threshold,
            aliases: self.aliases,
            max_connections: self.max_connections,
            log_capacity: self.log_capacity,
            stop: AtomicBool::new(false),
            fault: Mutex::new(None),
            hashes: Mutex::new(HashMap::new()),
            log: Mutex::new(Vec::new()),
            refs: Mutex::new(HashMap::new()),
            pending_refs: Mutex::new(Vec::new()),
            branch_commits: Mutex::new(HashMap::new()),
            answered: AtomicU64::new(0),
            conns: Mutex::new(HashMap::new()),
            workers: Mutex::new(Vec::new()),
            next_conn: AtomicU64::new(0),
        });
        let accept_shared = Arc::clone(&shared);
        let accept = std::thread::Builder::new()
            .name("hub-mirror-accept".into())
            .spawn(move || accept_loop(&accept_shared, &listener))
            .map_err(io_err("spawn the accept thread"))?;
        // The binary serving it says where at INFO; tests start dozens.
        tracing::debug!(root = %shared.root.display(), endpoint = %format!("http://{addr}"), "hub mirror started");
        Ok(HubMirror {
            shared,
            accept: Some(accept),
        })
    }
}

/// A running loopback Hub mirror; stops (closing all connections) when dropped.
#[derive(Debug)]
pub struct HubMirror {
    shared: Arc<Shared>,
    accept: Option<JoinHandle<()>>,
}

impl HubMirror {
    /// Serve `root` on a free loopback port in simple mode.
    pub fn start(root: &Path) -> Result<HubMirror, MirrorError> {
        Self::builder(root).start()
    }

    /// Configure a mirror over `root`.
    pub fn builder(root: &Path) -> HubMirrorBuilder {
        HubMirrorBuilder {
            root: root.to_path_buf(),
            bind: SocketAddr::from(([127, 0, 0, 1], 0)),
            realistic: false,
            lfs_threshold: DEFAULT_LFS_THRESHOLD,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            log_capacity: DEFAULT_LOG_CAPACITY,
            aliases: Vec::new(),
            allow_remote: false,
        }
    }

    /// The base URL to use as `HF_ENDPOINT`, e.g. `http://127.0.0.1:41234`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.shared.addr)
    }

    /// The bound socket address.
    pub fn addr(&self) -> SocketAddr {
        self.shared.addr
    }

    /// Inject a fault into subsequent responses (`None` to serve correctly again).
    pub fn set_fault(&self, fault: Option<Fault>) {
        *lock(&self.shared.fault) = fault;
    }

    /// Point `branch` of `repo` (its URL path: `owner/name`, or `datasets/owner/name`) at
    /// `commit`: requests for the branch are then served from `resolve/<commit>/` and announce
    /// `X-Repo-Commit: <commit>` (give a 40-hex-digit name so clients accept it as a commit).
    pub fn set_ref(&self, repo: &str, branch: &str, commit: &str) {
        lock(&self.shared.refs).insert(
            (repo.trim_matches('/').to_owned(), branch.to_owned()),
            commit.to_owned(),
        );
    }

    /// As [`HubMirror::set_ref`], once `requests` more requests have been answered: a push
    /// landing between two of a client's requests (a test hook for revision pinning).
    pub fn set_ref_after(&self, requests: u64, repo: &str, branch: &str, commit: &str) {
        if requests == 0 {
            return self.set_ref(repo, branch, commit);
        }
        let mut pending = lock(&self.shared.pending_refs);
        pending.push(PendingRef {
            at: self.shared.answered.load(Ordering::SeqCst) + requests,
            repo: repo.trim_matches('/').to_owned(),
            branch: branch.to_owned(),
            commit: commit.to_owned(),
        });
    }

    /// The requests answered so far, in order (the most recent ones, up to the log capacity).
    pub fn requests(&self) -> Vec<MirrorRequest> {
        lock(&self.shared.log).clone()
    }

    /// Block until the mirror stops (for a foreground `hub-mirror` command: it runs until killed).
    pub fn wait(mut self) {
        if let Some(handle) = self.accept.take() {
            let _ = handle.join();
        }
    }
}

impl Drop for HubMirror {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        // `accept` blocks; a throwaway connection wakes it so it can see the stop flag.
        let _ = TcpStream::connect_timeout(&self.shared.addr, Duration::from_secs(1));
        if let Some(handle) = self.accept.take() {
            let _ = handle.join();
        }
        // Close live keep-alive connections so their threads end now rather than at the idle timeout.
        for (_, stream) in lock(&self.shared.conns).drain() {
            let _ = stream.shutdown(Shutdown::Both);
        }
        let workers: Vec<_> = lock(&self.shared.workers).drain(..).collect();
        for w in workers {
            let _ = w.join();
        }
        tracing::debug!(endpoint = %format!("http://{}", self.shared.addr), "hub mirror stopped");
    }
}

#[derive(Debug)]
struct Shared {
    root: PathBuf,
    addr: SocketAddr,
    realistic: bool,
    lfs_threshold: u64,
    aliases: Vec<(String, String)>,
    max_connections: usize,
    log_capacity: usize,
    stop: AtomicBool,
    fault: Mutex<Option<Fault>>,
    hashes: Mutex<HashMap<PathBuf, Hashes>>,
    log: Mutex<Vec<MirrorRequest>>,
    /// `(repository path, branch)` → the commit directory it points at ([`HubMirror::set_ref`]).
    refs: Mutex<HashMap<(String, String), String>>,
    /// Commit → branch directory, for the commits branches other than `main` announced.
    branch_commits: Mutex<HashMap<String, String>>,
    /// Ref moves waiting for the request count to reach theirs ([`HubMirror::set_ref_after`]).
    pending_refs: Mutex<Vec<PendingRef>>,
    /// Requests answered so far (the log is capped; this is not).
    answered: AtomicU64,
    conns: Mutex<HashMap<u64, TcpStream>>,
    workers: Mutex<Vec<JoinHandle<()>>>,
    next_conn: AtomicU64,
}

/// A ref move applied once `at` requests have been answered.
#[derive(Debug)]
struct PendingRef {
    at: u64,
    repo: String,
    branch: String,
    commit: String,
}

impl Shared {
    /// Count one answered request and apply the ref moves that were waiting for it.
    fn request_answered(&self) {
        let answered = self.answered.fetch_add(1, Ordering::SeqCst) + 1;
        let mut pending = lock(&self.pending_refs);
        if pending.is_empty() {
            return;
        }
        let mut refs = lock(&self.refs);
        pending.retain(|p| {
            if p.at > answered {
                return true;
            }
            refs.insert((p.repo.clone(), p.branch.clone()), p.commit.clone());
            false
        });
    }
}

/// Lock ignoring poisoning: a panicking connection thread must not take the whole mirror down, and
/// the guarded data (logs, caches) stays consistent at every await-free point.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn accept_loop(shared: &Arc<Shared>, listener: &TcpListener) {
    for stream in listener.incoming() {
        if shared.stop.load(Ordering::SeqCst) {
            break;
        }
        let stream = match stream {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "hub mirror: accept failed");
                continue;
            }
        };
        if lock(&shared.conns).len() >= shared.max_connections {
            refuse_busy(stream);
            continue;
        }
        let id = shared.next_conn.fetch_add(1, Ordering::Relaxed);
        if let Ok(clone) = stream.try_clone() {
            lock(&shared.conns).insert(id, clone);
        }
        let worker_shared = Arc::clone(shared);
        let spawned = std::thread::Builder::new()
            .name(format!("hub-mirror-conn-{id}"))
            .spawn(move || {
                if let Err(e) = serve_connection(&worker_shared, stream) {
                    tracing::debug!(error = %e, "hub mirror: connection ended with an error");
                }
                lock(&worker_shared.conns).remove(&id);
            });
        match spawned {
            Ok(handle) => {
                let mut workers = lock(&shared.workers);
                // A long-running mirror must not accumulate handles of finished connections.
                workers.retain(|h| !h.is_finished());
                workers.push(handle);
            }
            Err(e) => {
                tracing::warn!(error = %e, "hub mirror: cannot spawn a connection thread");
                lock(&shared.conns).remove(&id);
            }
        }
    }
}

/// Answers a connection over the limit with `503` and closes it, from the accept thread (a
/// short write; the client reads it or not).
fn refuse_busy(mut stream: TcpStream) {
    tracing::debug!("hub mirror: connection limit reached, answering 503");
    let _ = stream.set_write_timeout(Some(Duration::from_secs(1)));
    let _ = io::Write::write_all(
        &mut stream,
        b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nRetry-After: 1\r\nConnection: close\r\n\r\n",
    );
    let _ = stream.shutdown(Shutdown::Both);
}

fn serve_connection(shared: &Shared, stream: TcpStream) -> io::Result<()> {
    stream.set_read_timeout(Some(IDLE_TIMEOUT))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut writer = stream;
    while !shared.stop.load(Ordering::SeqCst) {
        let Some(req) = read_request(&mut reader)? else {
            break;
        };
        // One snapshot per request, so a fault changed mid-reply cannot split a response.
        let fault = lock(&shared.fault).clone();
        let reply = route(shared, &req, fault.as_ref());
        {
            let mut log = lock(&shared.log);
            if log.len() >= shared.log_capacity {
                // Drop the oldest half at once: amortised O(1) per request.
                let drop = log.len() - shared.log_capacity / 2;
                log.drain(..drop);
            }
            log.push(MirrorRequest {
                method: req.method.clone(),
                target: req.target.clone(),
                status: reply.status,
            });
        }
        shared.request_answered();
        let keep_alive = send(&mut writer, &req, reply, fault.as_ref())?;
        if !keep_alive || req.close {
            break;
        }
    }
    let _ = writer.shutdown(Shutdown::Both);
    Ok(())
}
