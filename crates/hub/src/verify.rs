//! Verifying a download against the ETag the Hub announced: the sha256 of the content for LFS
//! files, the git blob id (SHA-1 of `"blob <len>\0" + content`) for the others.

use sha1::Digest as _;

/// Which digest an ETag is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum DigestKind {
    Sha256,
    GitSha1,
    Unknown,
}

pub(crate) fn digest_kind(etag: &str) -> DigestKind {
    let hex = etag.bytes().all(|b| b.is_ascii_hexdigit());
    match (hex, etag.len()) {
        (true, 64) => DigestKind::Sha256,
        (true, 40) => DigestKind::GitSha1,
        _ => DigestKind::Unknown,
    }
}

/// Running digest of a download, matching the ETag's kind.
pub(crate) enum Hasher {
    Sha256(sha2::Sha256),
    GitSha1(sha1::Sha1),
    None,
}

impl Hasher {
    pub(crate) fn new(kind: DigestKind, size: u64) -> Hasher {
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

    pub(crate) fn update(&mut self, bytes: &[u8]) {
        match self {
            Hasher::Sha256(h) => h.update(bytes),
            Hasher::GitSha1(h) => h.update(bytes),
            Hasher::None => {}
        }
    }

    /// (algorithm name, hex digest); `None` when there is nothing to verify against.
    pub(crate) fn finish(self) -> Option<(&'static str, String)> {
        match self {
            Hasher::Sha256(h) => Some(("sha256", hex::encode(h.finalize()))),
            Hasher::GitSha1(h) => Some(("git-sha1", hex::encode(h.finalize()))),
            Hasher::None => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
