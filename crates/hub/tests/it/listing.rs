//! A repository's file list through the Hub API (`api/{models|datasets}/<id>/revision/<rev>`)
//! against the loopback mirror: the commit and files, revisions with `/` (the auto-converted
//! parquet branch), renamed repositories, the 404s, and the cached listing offline.

use std::fs;
use std::path::Path;

use imdb_lora_hub::{HubClient, HubConfig, HubError, Repo};
use imdb_lora_hub_mirror::{HubMirror, MIRROR_COMMIT};
use imdb_lora_testkit::shared::{IMDB_DATASET, MINILM_REPO};

use crate::download::hub_root;

fn client(endpoint: &str, cache: &Path) -> HubClient {
    HubClient::new(HubConfig::new(endpoint, cache).with_progress(false))
}

fn put(root: &Path, rel: &str, bytes: &[u8]) {
    let p = root.join(rel);
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    fs::write(p, bytes).unwrap();
}

#[test]
fn the_hub_api_lists_a_datasets_files_and_commit() {
    let mirror = HubMirror::start(&hub_root()).unwrap();
    let cache = tempfile::tempdir().unwrap();
    let c = client(&mirror.endpoint(), cache.path());
    let listed = c.list_files(&Repo::dataset(IMDB_DATASET).unwrap()).unwrap();
    assert_eq!(listed.commit, MIRROR_COMMIT);
    for f in [
        "plain_text/train-00000-of-00001.parquet",
        "plain_text/test-00000-of-00001.parquet",
    ] {
        assert!(listed.files.contains(&f.to_owned()), "{:?}", listed.files);
    }
    assert_eq!(
        listed.snapshot,
        cache
            .path()
            .join("datasets--stanfordnlp--imdb/snapshots")
            .join(MIRROR_COMMIT)
    );
    // Models are listed under api/models/.
    let model = c.list_files(&Repo::model(MINILM_REPO).unwrap()).unwrap();
    assert!(model.files.contains(&"config.json".to_owned()));
    let targets: Vec<String> = mirror.requests().into_iter().map(|r| r.target).collect();
    assert_eq!(
        targets,
        [
            "/api/datasets/stanfordnlp/imdb/revision/main".to_owned(),
            format!("/api/models/{MINILM_REPO}/revision/main"),
        ]
    );
}

#[test]
fn the_converted_parquet_branch_is_listed_and_downloaded_at_its_commit() {
    let root = tempfile::tempdir().unwrap();
    let base = "datasets/someone/news/resolve";
    put(root.path(), &format!("{base}/main/README.md"), b"# news\n");
    put(
        root.path(),
        &format!("{base}/refs/convert/parquet/default/train/0000.parquet"),
        b"PAR1 not really",
    );
    let mirror = HubMirror::builder(root.path())
        .realistic(true)
        .lfs_threshold(4)
        .start()
        .unwrap();
    let cache = tempfile::tempdir().unwrap();
    let c = client(&mirror.endpoint(), cache.path());
    let repo = Repo::dataset("someone/news")
        .unwrap()
        .with_revision("refs/convert/parquet")
        .unwrap();
    let listed = c.list_files(&repo).unwrap();
    assert_eq!(listed.files, ["default/train/0000.parquet"]);
    assert!(
        mirror.requests()[0]
            .target
            .ends_with("/revision/refs%2Fconvert%2Fparquet")
    );
    // Downloaded at the listed commit (through the CDN-like redirect, the revision a path).
    let at = repo.clone().with_revision(&listed.commit).unwrap();
    let path = c.download(&at, "default/train/0000.parquet").unwrap();
    assert_eq!(path, listed.snapshot.join("default/train/0000.parquet"));
    assert_eq!(fs::read(&path).unwrap(), b"PAR1 not really");
    // The main branch lists its own files.
    let main = c
        .list_files(&Repo::dataset("someone/news").unwrap())
        .unwrap();
    assert_eq!(main.files, ["README.md"]);
}

#[test]
fn missing_repositories_and_revisions_are_named() {
    let mirror = HubMirror::start(&hub_root()).unwrap();
    let cache = tempfile::tempdir().unwrap();
    let c = client(&mirror.endpoint(), cache.path());
    let err = c
        .list_files(&Repo::dataset("nobody/nothing").unwrap())
        .unwrap_err();
    assert!(matches!(err, HubError::RepoNotFound { .. }), "{err}");
    assert!(err.to_string().contains("nobody/nothing@main"), "{err}");
    let rev = Repo::dataset(IMDB_DATASET)
        .unwrap()
        .with_revision("v9")
        .unwrap();
    let err = c.list_files(&rev).unwrap_err();
    assert!(matches!(err, HubError::RepoNotFound { .. }), "{err}");
    assert!(err.to_string().contains("stanfordnlp/imdb@v9"), "{err}");
    // Not a Hub: a 200 that is no API answer.
    let root = tempfile::tempdir().unwrap();
    put(root.path(), "x", b"");
    let other = HubMirror::start(root.path()).unwrap();
    let bad = client(&format!("{}/_lfs", other.endpoint()), cache.path());
    let err = bad.list_files(&Repo::dataset("x/y").unwrap()).unwrap_err();
    assert!(
        matches!(
            err,
            HubError::RepoNotFound { .. } | HubError::BadListing { .. }
        ),
        "{err}"
    );
}

#[test]
fn renamed_repositories_are_followed() {
    let mirror = HubMirror::builder(&hub_root())
        .alias("datasets/imdb", "datasets/stanfordnlp/imdb")
        .start()
        .unwrap();
    let cache = tempfile::tempdir().unwrap();
    let c = client(&mirror.endpoint(), cache.path());
    let listed = c.list_files(&Repo::dataset("imdb").unwrap()).unwrap();
    assert!(listed.files.iter().any(|f| f.starts_with("plain_text/")));
    let statuses: Vec<u16> = mirror.requests().into_iter().map(|r| r.status).collect();
    assert_eq!(statuses, [307, 200]);
}

#[test]
fn offline_the_cached_snapshot_is_listed() {
    let mirror = HubMirror::start(&hub_root()).unwrap();
    let cache = tempfile::tempdir().unwrap();
    let repo = Repo::model(MINILM_REPO).unwrap();
    let offline = HubClient::new(
        HubConfig::new(&mirror.endpoint(), cache.path())
            .with_progress(false)
            .with_offline(true),
    );
    let err = offline.list_files(&repo).unwrap_err();
    assert!(matches!(err, HubError::NotCached { .. }), "{err}");
    let online = client(&mirror.endpoint(), cache.path());
    online.download(&repo, "config.json").unwrap();
    let listed = offline.list_files(&repo).unwrap();
    assert_eq!(listed.files, ["config.json"]);
    assert_eq!(listed.commit, MIRROR_COMMIT);
    // An unreachable endpoint falls back to the same cached listing.
    drop(mirror);
    let gone = client("http://127.0.0.1:9", cache.path());
    assert_eq!(gone.list_files(&repo).unwrap().files, ["config.json"]);
}
