//! What the mirror answers to a request: the Hub's URL layout (`<repo>/resolve/<rev>/<file>`),
//! renamed repositories, the CDN-like `/_lfs/` path, the 404s the Hub gives, and the headers of
//! simple and realistic mode; plus the per-file hashes those headers announce.

use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use imdb_lora_hub::urlpath;
use sha1::Digest as _;

use crate::http::{Body, Reply, Request, file_reply};
use crate::{Fault, MIRROR_COMMIT, Shared, lock};

/// A file's size and digests, kept until its size or modification time changes.
#[derive(Debug, Clone)]
pub(crate) struct Hashes {
    len: u64,
    modified: Option<SystemTime>,
    sha256: String,
    git_sha1: String,
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

/// Answer one request: the steps below each either produce what the next needs or the reply that
/// ends the request early (`Err(reply)`).
pub(crate) fn route(shared: &Shared, req: &Request, fault: Option<&Fault>) -> Reply {
    match try_route(shared, req, fault) {
        Ok(reply) | Err(reply) => reply,
    }
}

fn try_route(shared: &Shared, req: &Request, fault: Option<&Fault>) -> Result<Reply, Reply> {
    let path = request_path(req)?;
    // CDN-like path used by realistic mode's LFS redirects: plain file, no Hub headers.
    if let Some(rel) = path.strip_prefix("_lfs/") {
        return serve_lfs(shared, req, rel);
    }
    if let Some(rest) = path.strip_prefix("api/") {
        return serve_listing(shared, req, rest);
    }
    let target = ResolveTarget::parse(path)?;
    if let Some(to) = shared.alias_of(&target.repo) {
        return Ok(alias_redirect(req, to, &target));
    }
    if let Some(Fault::Status(code)) = fault {
        return Ok(Reply::text(*code, "injected fault"));
    }
    let rev = target.revision(shared)?;
    let file = locate(shared, &target, &rev.dir)?;
    let hashes = hash(shared, &file)?;
    let digests = Digests::announced(&hashes, fault);
    Ok(if !shared.realistic {
        simple_reply(req, file, &rev.commit, &hashes, &digests)
    } else if hashes.len >= shared.lfs_threshold {
        lfs_redirect(shared, &target, &rev, &hashes, &digests)
    } else {
        small_file_reply(req, file, &rev.commit, &hashes, &digests)
    })
}

/// The request target's path without the leading `/`, query or fragment; only GET and HEAD.
fn request_path(req: &Request) -> Result<&str, Reply> {
    if req.method != "GET" && req.method != "HEAD" {
        let mut r = Reply::text(405, "only GET and HEAD are supported");
        r.headers.push(("Allow", "GET, HEAD".into()));
        return Err(r);
    }
    let path = req.target.split(['?', '#']).next().unwrap_or("");
    path.strip_prefix('/')
        .ok_or_else(|| Reply::text(400, "request target must be an absolute path"))
}

/// A file under the root, served as a CDN would: its sha256 as ETag and nothing of the Hub's.
fn serve_lfs(shared: &Shared, req: &Request, rel: &str) -> Result<Reply, Reply> {
    let segs = safe_segments(rel).ok_or_else(|| Reply::text(400, "invalid path"))?;
    let file = segs.iter().fold(shared.root.clone(), |p, s| p.join(s));
    if !file.is_file() {
        return Err(not_found("EntryNotFound", "Entry not found"));
    }
    let h = hash(shared, &file)?;
    let headers = vec![
        ("ETag", format!("\"{}\"", h.sha256)),
        ("Content-Type", "application/octet-stream".into()),
    ];
    Ok(file_reply(req, file, h.len, headers))
}

/// `<repo>/resolve/<rev>/<file>`, decoded and checked; the raw pieces are kept for redirects.
struct ResolveTarget<'a> {
    /// `owner/name`, or `datasets/owner/name`.
    repo: String,
    rev_raw: &'a str,
    /// Decoded, not yet checked: an alias redirects whatever the revision is.
    rev: String,
    file_raw: &'a str,
    file_segs: Vec<String>,
}

impl<'a> ResolveTarget<'a> {
    fn parse(path: &'a str) -> Result<Self, Reply> {
        let (repo_raw, rest_raw) = path
            .split_once("/resolve/")
            .ok_or_else(|| not_found("EntryNotFound", "not a /resolve/ URL"))?;
        let (rev_raw, file_raw) = rest_raw
            .split_once('/')
            .ok_or_else(|| not_found("EntryNotFound", "no file after the revision"))?;
        let (Some(repo), Some(rev), Some(file_segs)) = (
            safe_segments(repo_raw),
            urlpath::decode(rev_raw),
            safe_segments(file_raw),
        ) else {
            return Err(Reply::text(
                400,
                "invalid repository, revision or file path",
            ));
        };
        Ok(ResolveTarget {
            repo: repo.join("/"),
            rev_raw,
            rev,
            file_raw,
            file_segs,
        })
    }

    /// Where the revision's files are and which commit to announce: a branch moved by
    /// [`crate::HubMirror::set_ref`] is its commit; [`MIRROR_COMMIT`] is `main` (clients
    /// re-request files pinned to the commit we announced); a commit id announces itself; any
    /// other revision is its own directory announcing [`MIRROR_COMMIT`]. Nothing may step outside
    /// the repository.
    fn revision(&self, shared: &Shared) -> Result<Revision, Reply> {
        resolve_revision(shared, &self.repo, &self.rev)
    }
}

/// [`ResolveTarget::revision`] for repository path `repo` (`datasets/` prefix for datasets). A
/// revision with `/` (`refs/convert/parquet`, the Hub's auto-converted parquet branch) is a
/// directory path under `resolve/`, each part checked.
fn resolve_revision(shared: &Shared, repo: &str, rev: &str) -> Result<Revision, Reply> {
    let rev = lock(&shared.refs)
        .get(&(repo.to_owned(), rev.to_owned()))
        .cloned()
        .unwrap_or_else(|| rev.to_owned());
    let (dir, commit) = if rev == MIRROR_COMMIT || rev == "main" {
        ("main".to_owned(), MIRROR_COMMIT.to_owned())
    } else if rev.len() == 40 && rev.bytes().all(|b| b.is_ascii_hexdigit()) {
        // A commit announced for a branch, or a directory named by a commit.
        match lock(&shared.branch_commits).get(&rev) {
            Some(dir) => (dir.clone(), rev),
            None => (rev.clone(), rev),
        }
    } else {
        let commit = branch_commit(&rev);
        lock(&shared.branch_commits).insert(commit.clone(), rev.clone());
        (rev, commit)
    };
    let bad_part = |p: &str| p.is_empty() || p == "." || p == ".." || p.contains(['\\', '\0']);
    if dir.split('/').any(bad_part) {
        return Err(not_found("RevisionNotFound", "Invalid rev id"));
    }
    Ok(Revision { dir, commit })
}

/// The commit a branch or tag other than `main` announces: its own (so a client that pins later
/// requests to it gets that branch's files, not `main`'s), derived from its name.
fn branch_commit(rev: &str) -> String {
    hex::encode(sha1::Sha1::digest(
        format!("mirror branch {rev}").as_bytes(),
    ))
}

/// `api/{models|datasets}/<id>[/revision/<rev>]`: the repository's commit and files as the Hub
/// API's repository info answers them (`id`, `sha`, `siblings: [{"rfilename"}]`), listed from
/// the revision's directory. A renamed repository redirects as file URLs do.
fn serve_listing(shared: &Shared, req: &Request, rest: &str) -> Result<Reply, Reply> {
    let (prefix, kind, rest) = if let Some(r) = rest.strip_prefix("datasets/") {
        ("datasets/", "datasets", r)
    } else if let Some(r) = rest.strip_prefix("models/") {
        ("", "models", r)
    } else {
        return Err(not_found("EntryNotFound", "unknown API route"));
    };
    let (id_raw, rev_raw) = rest.split_once("/revision/").unwrap_or((rest, "main"));
    let (Some(id), Some(rev)) = (safe_segments(id_raw), urlpath::decode(rev_raw)) else {
        return Err(Reply::text(400, "invalid repository or revision"));
    };
    if id.len() > 2 {
        return Err(not_found("RepoNotFound", "Repository not found"));
    }
    let repo = format!("{prefix}{}", id.join("/"));
    if let Some(to) = shared.alias_of(&repo) {
        let to = to.strip_prefix("datasets/").unwrap_or(to);
        let query = req.target.find('?').map(|i| &req.target[i..]).unwrap_or("");
        return Ok(Reply {
            status: 307,
            headers: vec![(
                "Location",
                format!("/api/{kind}/{to}/revision/{rev_raw}{query}"),
            )],
            body: Body::Empty,
        });
    }
    let rev = resolve_revision(shared, &repo, &rev)?;
    let repo_dir = repo.split('/').fold(shared.root.clone(), |p, s| p.join(s));
    let rev_dir = rev
        .dir
        .split('/')
        .fold(repo_dir.join("resolve"), |p, s| p.join(s));
    if !repo_dir.is_dir() {
        return Err(not_found("RepoNotFound", "Repository not found"));
    }
    if !rev_dir.is_dir() {
        return Err(not_found("RevisionNotFound", "Invalid rev id"));
    }
    let files = imdb_lora_hub::files_under(&rev_dir)
        .map_err(|e| Reply::text(500, &format!("cannot list files: {e}")))?;
    let siblings: Vec<serde_json::Value> = files
        .into_iter()
        .map(|f| serde_json::json!({ "rfilename": f }))
        .collect();
    let info = serde_json::json!({
        "_id": rev.commit,
        "id": id.join("/"),
        "sha": rev.commit,
        "private": false,
        "disabled": false,
        "siblings": siblings,
    });
    Ok(Reply {
        status: 200,
        headers: vec![("Content-Type", "application/json; charset=utf-8".into())],
        body: Body::Text(info.to_string()),
    })
}

/// A revision resolved: the directory under `resolve/` and the commit announced.
struct Revision {
    dir: String,
    commit: String,
}

impl Shared {
    /// Where a renamed repository now lives.
    fn alias_of(&self, repo: &str) -> Option<&str> {
        self.aliases
            .iter()
            .find(|(from, _)| from == repo)
            .map(|(_, to)| to.as_str())
    }
}

/// A relative `307` to the same file under the repository's new name, query kept.
fn alias_redirect(req: &Request, to: &str, target: &ResolveTarget<'_>) -> Reply {
    let query = req.target.find('?').map(|i| &req.target[i..]).unwrap_or("");
    Reply {
        status: 307,
        headers: vec![(
            "Location",
            format!(
                "/{to}/resolve/{}/{}{query}",
                target.rev_raw, target.file_raw
            ),
        )],
        body: Body::Empty,
    }
}

/// The file on disk (`rev` from [`ResolveTarget::revision`]), or the 404 the Hub gives
/// (missing repository, revision or entry).
fn locate(shared: &Shared, target: &ResolveTarget<'_>, rev: &str) -> Result<PathBuf, Reply> {
    let repo_dir = target
        .repo
        .split('/')
        .fold(shared.root.clone(), |p, s| p.join(s));
    let rev_dir = rev
        .split('/')
        .fold(repo_dir.join("resolve"), |p, s| p.join(s));
    let file = target
        .file_segs
        .iter()
        .fold(rev_dir.clone(), |p, s| p.join(s));
    if file.is_file() {
        Ok(file)
    } else if !repo_dir.is_dir() {
        Err(not_found("RepoNotFound", "Repository not found"))
    } else if !rev_dir.is_dir() {
        Err(not_found("RevisionNotFound", "Invalid rev id"))
    } else {
        Err(not_found("EntryNotFound", "Entry not found"))
    }
}

/// [`file_hashes`], a failure being a `500`.
fn hash(shared: &Shared, file: &Path) -> Result<Hashes, Reply> {
    file_hashes(shared, file).map_err(|e| Reply::text(500, &format!("cannot hash file: {e}")))
}

/// The digests a reply announces: the true ones, or with [`Fault::WrongChecksum`] wrong ones.
struct Digests {
    sha256: String,
    git_sha1: String,
}

impl Digests {
    fn announced(hashes: &Hashes, fault: Option<&Fault>) -> Digests {
        if matches!(fault, Some(Fault::WrongChecksum)) {
            Digests {
                sha256: corrupt(&hashes.sha256),
                git_sha1: corrupt(&hashes.git_sha1),
            }
        } else {
            Digests {
                sha256: hashes.sha256.clone(),
                git_sha1: hashes.git_sha1.clone(),
            }
        }
    }
}

fn commit_header(commit: &str) -> (&'static str, String) {
    ("X-Repo-Commit", commit.to_owned())
}

/// Simple mode: every file answered directly, with the LFS headers (sha256 ETag, linked size).
fn simple_reply(
    req: &Request,
    file: PathBuf,
    commit: &str,
    hashes: &Hashes,
    digests: &Digests,
) -> Reply {
    let headers = vec![
        commit_header(commit),
        ("ETag", format!("\"{}\"", digests.sha256)),
        ("X-Linked-Etag", format!("\"{}\"", digests.sha256)),
        ("X-Linked-Size", hashes.len.to_string()),
        ("Content-Type", "application/octet-stream".into()),
    ];
    file_reply(req, file, hashes.len, headers)
}

/// Realistic mode, large file: a `302` to the CDN-like `/_lfs/` path with the LFS metadata.
fn lfs_redirect(
    shared: &Shared,
    target: &ResolveTarget<'_>,
    rev: &Revision,
    hashes: &Hashes,
    digests: &Digests,
) -> Reply {
    let location = format!(
        "http://{}/_lfs/{}/resolve/{}/{}",
        shared.addr,
        urlpath::encode_path(&target.repo),
        urlpath::encode_path(&rev.dir),
        urlpath::encode_path(&target.file_segs.join("/")),
    );
    Reply {
        status: 302,
        headers: vec![
            commit_header(&rev.commit),
            // The Hub's ETag here is the LFS pointer's git id, not the content's sha256.
            ("ETag", format!("\"{}\"", digests.git_sha1)),
            ("X-Linked-Etag", format!("\"{}\"", digests.sha256)),
            ("X-Linked-Size", hashes.len.to_string()),
            ("Location", location),
        ],
        body: Body::Empty,
    }
}

/// Realistic mode, small file: answered directly, ETag = its git blob id.
fn small_file_reply(
    req: &Request,
    file: PathBuf,
    commit: &str,
    hashes: &Hashes,
    digests: &Digests,
) -> Reply {
    let headers = vec![
        commit_header(commit),
        ("ETag", format!("\"{}\"", digests.git_sha1)),
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

#[cfg(test)]
mod tests {
    use super::*;

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
