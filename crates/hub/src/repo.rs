//! Hub repositories: their kind, id and revision, the rules ids and file names must follow, and
//! where a repository's files live on the Hub (URLs) and in the cache (folder names).

use crate::error::{HubError, Result};
use crate::urlpath;

/// Revision used when none is given.
pub const DEFAULT_REVISION: &str = "main";

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
            return Err(HubError::InvalidRepoId {
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

    /// The Hub API URL of the repository at its revision, which lists its files and names the
    /// commit: `{endpoint}/api/{models|datasets}/{id}/revision/{revision}` (the revision escaped
    /// whole, `refs%2Fconvert%2Fparquet`), as Python's `model_info`/`dataset_info` request it.
    pub fn api_url(&self, endpoint: &str) -> String {
        let kind = match self.kind {
            RepoType::Model => "models",
            RepoType::Dataset => "datasets",
        };
        format!(
            "{}/api/{kind}/{}/revision/{}",
            endpoint.trim_end_matches('/'),
            self.id,
            urlpath::encode_component(&self.revision)
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
        Err(HubError::InvalidRepoId {
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
pub(crate) fn validate_file(file: &str) -> Result<()> {
    let bad = |reason| {
        Err(HubError::InvalidFileName {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repo_ids_follow_hub_rules() {
        assert!(Repo::model("bert-base-uncased").is_ok());
        assert!(Repo::model("sentence-transformers/all-MiniLM-L6-v2").is_ok());
        for bad in ["", "a/b/c", "a--b", "../x", "a/.x", "x y", "-a", "a/"] {
            let err = Repo::model(bad).unwrap_err();
            assert!(
                matches!(err, HubError::InvalidRepoId { .. }),
                "{bad:?} gave {err}"
            );
        }
        assert!(Repo::model("a").unwrap().with_revision("..").is_err());
        assert!(Repo::model("a").unwrap().with_revision("refs/pr/1").is_ok());
    }

    #[test]
    fn urls_and_cache_folders_match_the_hub_layout() {
        // The client knows no dataset: the IMDb names here are just a real example.
        let d = Repo::dataset("stanfordnlp/imdb").unwrap();
        assert_eq!(
            d.file_url("http://h/", "plain_text/train-00000-of-00001.parquet"),
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
        assert_eq!(
            m.api_url("https://hf.co/"),
            "https://hf.co/api/models/bert-base-uncased/revision/refs%2Fpr%2F1"
        );
        assert_eq!(
            d.api_url("http://h"),
            "http://h/api/datasets/stanfordnlp/imdb/revision/main"
        );
    }

    #[test]
    fn file_names_cannot_escape() {
        for bad in ["", "/etc/passwd", "a/../b", "a//b", "./a", "a\\b"] {
            assert!(validate_file(bad).is_err(), "{bad:?}");
        }
        assert!(validate_file("plain_text/train.parquet").is_ok());
    }
}
