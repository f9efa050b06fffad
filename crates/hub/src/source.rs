//! [`Source`]: where files come from (a local directory, or a Hub repository fetched through a
//! [`HubClient`]), and [`Source::fetch`], the one entry point for "these files of this source".

use std::path::{Path, PathBuf};

use crate::client::{HubClient, Resolved};
use crate::error::{HubError, Result};
use crate::repo::{Repo, RepoType, validate_file};

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
            return Err(HubError::NotADirectory {
                path: path.to_path_buf(),
                is_file: path.is_file(),
            });
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
                tried.iter().find(|p| p.is_file()).cloned().ok_or_else(|| {
                    HubError::LocalFileMissing {
                        dir: dir.clone(),
                        file: file.to_owned(),
                        tried: tried
                            .iter()
                            .map(|p| p.display().to_string())
                            .collect::<Vec<_>>()
                            .join(", "),
                    }
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
                Err(HubError::LocalFileMissing { .. }) => Ok(None),
                Err(e) => Err(e),
            },
        }
    }

    /// Resolves (downloading if needed) the `required` files, then the `optional` ones, in order;
    /// the first failure ends the fetch. An optional file the source lacks is `None`.
    ///
    /// All files of a repository come from one commit: the first file resolves the revision (a
    /// branch such as `main`) to a commit, and the others are requested at that commit, so a push
    /// between two files cannot mix two revisions (a model's config from one, its weights from
    /// another). [`Fetched::commit`] says which.
    ///
    /// The client knows no model or dataset: callers name the files (a model's checkpoint and
    /// tokenizer files, a dataset's splits).
    ///
    /// # Errors
    /// The first [`HubError`] of [`Source::resolve`] or [`Source::resolve_optional`].
    pub fn fetch<const R: usize, const O: usize>(
        &self,
        client: &HubClient,
        required: [&str; R],
        optional: [&str; O],
    ) -> Result<Fetched<R, O>> {
        let _span = tracing::debug_span!("fetch", source = %self.describe()).entered();
        let mut fetched = Fetched {
            source: self.describe(),
            required: std::array::from_fn(|_| PathBuf::new()),
            optional: std::array::from_fn(|_| None),
            commit: None,
        };
        let Source::Hub(repo) = self else {
            for (path, file) in fetched.required.iter_mut().zip(required) {
                *path = self.resolve(client, file)?;
            }
            for (path, file) in fetched.optional.iter_mut().zip(optional) {
                *path = self.resolve_optional(client, file)?;
            }
            return Ok(fetched);
        };
        // The repository at the first file's commit, once it is known.
        let mut at: Option<Repo> = None;
        for (path, file) in fetched.required.iter_mut().zip(required) {
            let r = client.download_resolved(at.as_ref().unwrap_or(repo), file)?;
            pin(&mut at, repo, &r)?;
            *path = r.path;
        }
        for (path, file) in fetched.optional.iter_mut().zip(optional) {
            let r = client.download_optional_resolved(at.as_ref().unwrap_or(repo), file)?;
            if let Some(r) = &r {
                pin(&mut at, repo, r)?;
            }
            *path = r.map(|r| r.path);
        }
        fetched.commit = at.map(|r| r.revision().to_owned());
        Ok(fetched)
    }
}

/// Pin `at` to the commit `resolved` came from, unless already pinned.
fn pin(at: &mut Option<Repo>, repo: &Repo, resolved: &Resolved) -> Result<()> {
    if at.is_none() {
        tracing::debug!(commit = %resolved.commit, "the fetch's other files are requested at this commit");
        *at = Some(repo.clone().with_revision(&resolved.commit)?);
    }
    Ok(())
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
/// The local paths of the files [`Source::fetch`] was asked for, in the order they were asked for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fetched<const R: usize, const O: usize> {
    /// Where they came from ([`Source::describe`]).
    pub source: String,
    /// The required files.
    pub required: [PathBuf; R],
    /// The optional files; `None` where the source does not have one.
    pub optional: [Option<PathBuf>; O],
    /// The commit every file came from (a repository with at least one file found); `None` for
    /// a local directory.
    pub commit: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    use crate::config::HubConfig;

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
        assert_eq!(
            err.to_string(),
            format!(
                "{}: no such file or directory; it looks like a local path, so it was not \
                 taken as a Hub repository id",
                missing.display()
            )
        );
        let file = dir.path().join("config.json");
        fs::write(&file, "{}").unwrap();
        let err = Source::parse(file.to_str().unwrap(), RepoType::Model).unwrap_err();
        assert!(
            err.to_string()
                .starts_with(&format!("{}: a file, not a directory;", file.display())),
            "{err}"
        );
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
        // The IMDb split names, as the CLI passes them.
        let files = src
            .fetch(
                &client,
                [
                    "plain_text/train-00000-of-00001.parquet",
                    "plain_text/test-00000-of-00001.parquet",
                ],
                [],
            )
            .unwrap();
        let [train, test] = files.required;
        assert_eq!(fs::read(train).unwrap(), b"x");
        assert_eq!(fs::read(test).unwrap(), b"y");
        assert_eq!(src.resolve_optional(&client, "vocab.txt").unwrap(), None);
        let err = src.resolve(&client, "config.json").unwrap_err();
        assert!(
            matches!(err, HubError::LocalFileMissing { .. })
                && err.to_string().contains("config.json"),
            "{err}"
        );
    }
}
