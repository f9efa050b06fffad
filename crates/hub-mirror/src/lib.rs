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
//! Plus: `HEAD`, single `Range` requests (`206`/`416`), 404 with the Hub's `X-Error-Code`, relative
//! `307` redirects for renamed repositories ([`HubMirrorBuilder::alias`]), and fault injection for
//! tests ([`Fault`]). The revision [`MIRROR_COMMIT`] is served from `resolve/main`, so URLs pinned to
//! the commit the mirror announced keep working. Hashes are computed once per file and cached.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime};

use sha1::Digest as _;

use crate::error::{Error, Result};
use crate::urlpath;

/// The commit sha every response announces in `X-Repo-Commit` (obviously fake, but 40 hex digits
/// as a real git commit id, so clients that validate it accept it).
pub const MIRROR_COMMIT: &str = "deadbeefdeadbeefdeadbeefdeadbeefdeadbeef";

/// Size from which realistic mode treats a file as stored in Git LFS (the Hub's own rule is per
/// `.gitattributes`; 10 MiB is the Hub's hard limit for non-LFS files, so it is a fair stand-in).
pub const DEFAULT_LFS_THRESHOLD: u64 = 10 * 1024 * 1024;

/// How long an idle keep-alive connection is kept before its thread gives up.
const IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// Upper bound on a request head; we only ever receive small GET/HEAD requests.
const MAX_HEAD_BYTES: usize = 16 * 1024;

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
}

impl HubMirrorBuilder {
    /// Listen on this address instead of `127.0.0.1:0` (a free loopback port).
    pub fn bind(mut self, addr: SocketAddr) -> Self {
        self.bind = addr;
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
    pub fn start(self) -> Result<HubMirror> {
        let root = self.root.clone();
        let io_err = |action: &'static str| {
            let root = root.clone();
            move |source| Error::Mirror {
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
            stop: AtomicBool::new(false),
            fault: Mutex::new(None),
            hashes: Mutex::new(HashMap::new()),
            log: Mutex::new(Vec::new()),
            conns: Mutex::new(HashMap::new()),
            workers: Mutex::new(Vec::new()),
            next_conn: AtomicU64::new(0),
        });
        let accept_shared = Arc::clone(&shared);
        let accept = std::thread::Builder::new()
            .name("hub-mirror-accept".into())
            .spawn(move || accept_loop(&accept_shared, &listener))
            .map_err(io_err("spawn the accept thread"))?;
        tracing::info!(root = %shared.root.display(), endpoint = %format!("http://{addr}"), "hub mirror started");
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
    pub fn start(root: &Path) -> Result<HubMirror> {
        Self::builder(root).start()
    }

    /// Configure a mirror over `root`.
    pub fn builder(root: &Path) -> HubMirrorBuilder {
        HubMirrorBuilder {
            root: root.to_path_buf(),
            bind: SocketAddr::from(([127, 0, 0, 1], 0)),
            realistic: false,
            lfs_threshold: DEFAULT_LFS_THRESHOLD,
            aliases: Vec::new(),
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

    /// Every request answered so far, in order.
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
        tracing::info!(endpoint = %format!("http://{}", self.shared.addr), "hub mirror stopped");
    }
}

#[derive(Debug, Clone)]
struct Hashes {
    len: u64,
    modified: Option<SystemTime>,
    sha256: String,
    git_sha1: String,
}

#[derive(Debug)]
struct Shared {
    root: PathBuf,
    addr: SocketAddr,
    realistic: bool,
    lfs_threshold: u64,
    aliases: Vec<(String, String)>,
    stop: AtomicBool,
    fault: Mutex<Option<Fault>>,
    hashes: Mutex<HashMap<PathBuf, Hashes>>,
    log: Mutex<Vec<MirrorRequest>>,
    conns: Mutex<HashMap<u64, TcpStream>>,
    workers: Mutex<Vec<JoinHandle<()>>>,
    next_conn: AtomicU64,
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

struct Request {
    method: String,
    target: String,
    close: bool,
    range: Option<String>,
}

/// Read one request head; `Ok(None)` on a clean end of the connection.
fn read_request(reader: &mut BufReader<TcpStream>) -> io::Result<Option<Request>> {
    let mut line = String::new();
    let mut total = 0;
    if reader.read_line(&mut line)? == 0 {
        return Ok(None);
    }
    total += line.len();
    let mut parts = line.split_whitespace();
    let (Some(method), Some(target), Some(version)) = (parts.next(), parts.next(), parts.next())
    else {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "malformed request line",
        ));
    };
    let mut req = Request {
        method: method.to_owned(),
        target: target.to_owned(),
        // HTTP/1.0 closes by default, HTTP/1.1 keeps alive.
        close: version == "HTTP/1.0",
        range: None,
    };
    loop {
        let mut header = String::new();
        let n = reader.read_line(&mut header)?;
        total += n;
        if n == 0 || total > MAX_HEAD_BYTES {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "truncated or oversized request head",
            ));
        }
        let header = header.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            let value = value.trim();
            match name.trim().to_ascii_lowercase().as_str() {
                "connection" => req.close = value.eq_ignore_ascii_case("close"),
                "range" => req.range = Some(value.to_owned()),
                _ => {}
            }
        }
    }
    Ok(Some(req))
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
        lock(&shared.log).push(MirrorRequest {
            method: req.method.clone(),
            target: req.target.clone(),
            status: reply.status,
        });
        let keep_alive = send(&mut writer, &req, reply, fault.as_ref())?;
        if !keep_alive || req.close {
            break;
        }
    }
    let _ = writer.shutdown(Shutdown::Both);
    Ok(())
}

enum Body {
    Empty,
    Text(String),
    /// A file slice: `offset`, `len`.
    File(PathBuf, u64, u64),
}

struct Reply {
    status: u16,
    headers: Vec<(&'static str, String)>,
    body: Body,
}

impl Reply {
    fn text(status: u16, msg: &str) -> Reply {
        Reply {
            status,
            headers: vec![("Content-Type", "text/plain; charset=utf-8".into())],
            body: Body::Text(format!("{msg}\n")),
        }
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        206 => "Partial Content",
        302 => "Found",
        307 => "Temporary Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        416 => "Range Not Satisfiable",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Status",
    }
}

/// Decode `/`-separated segments, refusing anything that could step outside the root.
fn safe_segments(raw: &str) -> Option<Vec<String>> {
    let mut out = Vec::new();
    for seg in raw.split('/') {
        let seg = urlpath::decode(seg)?;
        if seg.is_empty() || seg == "." || seg == ".." || seg.contains(['/', '\\', '\0']) {
            return None;
        }
        out.push(seg);
    }
    Some(out)
}

fn route(shared: &Shared, req: &Request, fault: Option<&Fault>) -> Reply {
    if req.method != "GET" && req.method != "HEAD" {
        let mut r = Reply::text(405, "only GET and HEAD are supported");
        r.headers.push(("Allow", "GET, HEAD".into()));
        return r;
    }
    let path = req.target.split(['?', '#']).next().unwrap_or("");
    let Some(path) = path.strip_prefix('/') else {
        return Reply::text(400, "request target must be an absolute path");
    };

    // CDN-like path used by realistic mode's LFS redirects: plain file, no Hub headers.
    if let Some(rel) = path.strip_prefix("_lfs/") {
        let Some(segs) = safe_segments(rel) else {
            return Reply::text(400, "invalid path");
        };
        let file = segs.iter().fold(shared.root.clone(), |p, s| p.join(s));
        if !file.is_file() {
            return not_found("EntryNotFound", "Entry not found");
        }
        return match file_hashes(shared, &file) {
            Ok(h) => {
                let mut headers = vec![("ETag", format!("\"{}\"", h.sha256))];
                headers.push(("Content-Type", "application/octet-stream".into()));
                file_reply(req, file, h.len, headers)
            }
            Err(e) => Reply::text(500, &format!("cannot hash file: {e}")),
        };
    }

    let Some((repo_raw, rest_raw)) = path.split_once("/resolve/") else {
        return not_found("EntryNotFound", "not a /resolve/ URL");
    };
    let Some((rev_raw, file_raw)) = rest_raw.split_once('/') else {
        return not_found("EntryNotFound", "no file after the revision");
    };
    let (Some(repo), Some(rev), Some(file_segs)) = (
        safe_segments(repo_raw),
        urlpath::decode(rev_raw),
        safe_segments(file_raw),
    ) else {
        return Reply::text(400, "invalid repository, revision or file path");
    };
    let repo = repo.join("/");

    if let Some((_, to)) = shared.aliases.iter().find(|(from, _)| *from == repo) {
        let query = req.target.find('?').map(|i| &req.target[i..]).unwrap_or("");
        return Reply {
            status: 307,
            headers: vec![(
                "Location",
                format!("/{to}/resolve/{rev_raw}/{file_raw}{query}"),
            )],
            body: Body::Empty,
        };
    }
    if let Some(Fault::Status(code)) = fault {
        return Reply::text(*code, "injected fault");
    }

    // The commit we announce must resolve too: clients re-request files pinned to it.
    let rev = if rev == MIRROR_COMMIT {
        "main".to_owned()
    } else {
        rev
    };
    if rev.is_empty() || rev == "." || rev == ".." || rev.contains(['/', '\\', '\0']) {
        return not_found("RevisionNotFound", "Invalid rev id");
    }
    let repo_dir = repo.split('/').fold(shared.root.clone(), |p, s| p.join(s));
    let rev_dir = repo_dir.join("resolve").join(&rev);
    let file = file_segs.iter().fold(rev_dir.clone(), |p, s| p.join(s));
    if !file.is_file() {
        return if !repo_dir.is_dir() {
            not_found("RepoNotFound", "Repository not found")
        } else if !rev_dir.is_dir() {
            not_found("RevisionNotFound", "Invalid rev id")
        } else {
            not_found("EntryNotFound", "Entry not found")
        };
    }
    let hashes = match file_hashes(shared, &file) {
        Ok(h) => h,
        Err(e) => return Reply::text(500, &format!("cannot hash file: {e}")),
    };
    let wrong = matches!(fault, Some(Fault::WrongChecksum));
    let sha256 = if wrong {
        corrupt(&hashes.sha256)
    } else {
        hashes.sha256.clone()
    };
    let git_sha1 = if wrong {
        corrupt(&hashes.git_sha1)
    } else {
        hashes.git_sha1.clone()
    };
    let commit = ("X-Repo-Commit", MIRROR_COMMIT.to_owned());

    if !shared.realistic {
        let headers = vec![
            commit,
            ("ETag", format!("\"{sha256}\"")),
            ("X-Linked-Etag", format!("\"{sha256}\"")),
            ("X-Linked-Size", hashes.len.to_string()),
            ("Content-Type", "application/octet-stream".into()),
        ];
        return file_reply(req, file, hashes.len, headers);
    }
    if hashes.len >= shared.lfs_threshold {
        let location = format!(
            "http://{}/_lfs/{}/resolve/{}/{}",
            shared.addr,
            urlpath::encode_path(&repo),
            urlpath::encode_component(&rev),
            urlpath::encode_path(&file_segs.join("/")),
        );
        return Reply {
            status: 302,
            headers: vec![
                commit,
                // The Hub's ETag here is the LFS pointer's git id, not the content's sha256.
                ("ETag", format!("\"{git_sha1}\"")),
                ("X-Linked-Etag", format!("\"{sha256}\"")),
                ("X-Linked-Size", hashes.len.to_string()),
                ("Location", location),
            ],
            body: Body::Empty,
        };
    }
    let headers = vec![
        commit,
        ("ETag", format!("\"{git_sha1}\"")),
        ("Content-Type", "application/octet-stream".into()),
    ];
    file_reply(req, file, hashes.len, headers)
}

fn not_found(code: &'static str, message: &str) -> Reply {
    let mut r = Reply::text(404, message);
    r.headers.push(("X-Error-Code", code.into()));
    r.headers.push(("X-Error-Message", message.into()));
    r
}

/// Change the last hex digit: a well-formed but wrong digest.
fn corrupt(hex_digest: &str) -> String {
    let mut s = hex_digest.to_owned();
    if let Some(last) = s.pop() {
        s.push(if last == '0' { '1' } else { '0' });
    }
    s
}

/// A 200/206/416 reply for a file, honouring a single `Range: bytes=...`.
fn file_reply(
    req: &Request,
    file: PathBuf,
    len: u64,
    mut headers: Vec<(&'static str, String)>,
) -> Reply {
    headers.push(("Accept-Ranges", "bytes".into()));
    let Some(range) = req.range.as_deref() else {
        return Reply {
            status: 200,
            headers,
            body: Body::File(file, 0, len),
        };
    };
    match parse_range(range, len) {
        RangeSpec::Ignore => Reply {
            status: 200,
            headers,
            body: Body::File(file, 0, len),
        },
        RangeSpec::Unsatisfiable => {
            headers.push(("Content-Range", format!("bytes */{len}")));
            Reply {
                status: 416,
                headers,
                body: Body::Empty,
            }
        }
        RangeSpec::Slice(start, end) => {
            headers.push(("Content-Range", format!("bytes {start}-{end}/{len}")));
            Reply {
                status: 206,
                headers,
                body: Body::File(file, start, end - start + 1),
            }
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
enum RangeSpec {
    /// Not a single byte range we understand: serve the whole file (RFC 9110 allows ignoring).
    Ignore,
    Unsatisfiable,
    /// Inclusive byte range.
    Slice(u64, u64),
}

fn parse_range(spec: &str, len: u64) -> RangeSpec {
    let Some(spec) = spec.trim().strip_prefix("bytes=") else {
        return RangeSpec::Ignore;
    };
    if spec.contains(',') {
        return RangeSpec::Ignore;
    }
    let Some((a, b)) = spec.split_once('-') else {
        return RangeSpec::Ignore;
    };
    let (a, b) = (a.trim(), b.trim());
    let parsed = match (a.is_empty(), b.is_empty()) {
        // bytes=-N: the last N bytes.
        (true, false) => b
            .parse::<u64>()
            .ok()
            .map(|n| (len.saturating_sub(n), len.checked_sub(1), n == 0)),
        (false, true) => a
            .parse::<u64>()
            .ok()
            .map(|s| (s, len.checked_sub(1), false)),
        (false, false) => match (a.parse::<u64>(), b.parse::<u64>()) {
            (Ok(s), Ok(e)) if s <= e => Some((s, Some(e.min(len.saturating_sub(1))), false)),
            _ => None,
        },
        (true, true) => None,
    };
    match parsed {
        None => RangeSpec::Ignore,
        Some((_, _, true)) | Some((_, None, _)) => RangeSpec::Unsatisfiable,
        Some((s, Some(e), false)) if s < len && s <= e => RangeSpec::Slice(s, e),
        Some(_) => RangeSpec::Unsatisfiable,
    }
}

fn file_hashes(shared: &Shared, file: &Path) -> io::Result<Hashes> {
    let meta = std::fs::metadata(file)?;
    let modified = meta.modified().ok();
    if let Some(h) = lock(&shared.hashes).get(file)
        && h.len == meta.len()
        && h.modified == modified
    {
        return Ok(h.clone());
    }
    // Hash outside the lock: a 90 MB model takes a moment and other requests must not wait.
    let mut f = File::open(file)?;
    let mut sha256 = sha2::Sha256::new();
    let mut sha1 = sha1::Sha1::new();
    sha1.update(format!("blob {}\0", meta.len()).as_bytes());
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        sha256.update(&buf[..n]);
        sha1.update(&buf[..n]);
    }
    let h = Hashes {
        len: meta.len(),
        modified,
        sha256: hex::encode(sha256.finalize()),
        git_sha1: hex::encode(sha1.finalize()),
    };
    lock(&shared.hashes).insert(file.to_path_buf(), h.clone());
    Ok(h)
}

/// Write the reply; returns whether the connection may be reused.
fn send(w: &mut TcpStream, req: &Request, reply: Reply, fault: Option<&Fault>) -> io::Result<bool> {
    let head_only = req.method == "HEAD";
    let (declared, to_send, drop_after) = match &reply.body {
        Body::Empty => (0, 0, false),
        Body::Text(t) => (t.len() as u64, t.len() as u64, false),
        Body::File(_, _, len) => match fault {
            Some(Fault::TruncateBody { keep }) => ((*len).min(*keep), (*len).min(*keep), false),
            Some(Fault::DropConnection { after }) => (*len, (*len).min(*after), true),
            _ => (*len, *len, false),
        },
    };
    let mut head = format!("HTTP/1.1 {} {}\r\n", reply.status, reason(reply.status));
    for (k, v) in &reply.headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str(&format!("Content-Length: {declared}\r\n"));
    if drop_after && !head_only {
        head.push_str("Connection: close\r\n");
    }
    head.push_str("\r\n");
    w.write_all(head.as_bytes())?;
    if !head_only {
        match reply.body {
            Body::Empty => {}
            Body::Text(t) => w.write_all(t.as_bytes())?,
            Body::File(path, offset, _) => {
                let mut f = File::open(&path)?;
                f.seek(SeekFrom::Start(offset))?;
                io::copy(&mut f.take(to_send), w)?;
            }
        }
    }
    w.flush()?;
    if drop_after && !head_only {
        // The server "goes away": no more bytes, connection closed.
        let _ = w.shutdown(Shutdown::Both);
        return Ok(false);
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_ranges() {
        assert_eq!(parse_range("bytes=0-9", 100), RangeSpec::Slice(0, 9));
        assert_eq!(parse_range("bytes=90-", 100), RangeSpec::Slice(90, 99));
        assert_eq!(parse_range("bytes=-10", 100), RangeSpec::Slice(90, 99));
        assert_eq!(parse_range("bytes=50-500", 100), RangeSpec::Slice(50, 99));
        assert_eq!(parse_range("bytes=100-", 100), RangeSpec::Unsatisfiable);
        assert_eq!(parse_range("bytes=-0", 100), RangeSpec::Unsatisfiable);
        assert_eq!(parse_range("bytes=0-1,5-6", 100), RangeSpec::Ignore);
        assert_eq!(parse_range("items=0-1", 100), RangeSpec::Ignore);
        assert_eq!(parse_range("bytes=9-3", 100), RangeSpec::Ignore);
        assert_eq!(parse_range("bytes=0-", 0), RangeSpec::Unsatisfiable);
    }

    #[test]
    fn rejects_escaping_segments() {
        assert!(safe_segments("a/b/c.txt").is_some());
        assert!(safe_segments("a/../b").is_none());
        assert!(safe_segments("a/%2E%2E/b").is_none());
        assert!(safe_segments("a//b").is_none());
        assert!(safe_segments("a/%2Fetc").is_none());
    }

    #[test]
    fn corrupt_changes_exactly_one_digit() {
        let d = "ab".repeat(32);
        let c = corrupt(&d);
        assert_ne!(c, d);
        assert_eq!(c.len(), d.len());
        assert_eq!(c[..63], d[..63]);
    }
}
