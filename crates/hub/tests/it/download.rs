//! End-to-end tests of the Hub client against the loopback mirror over `shared/hub`: the real
//! download path (HTTP, cache layout, verification, offline use) and its failure modes.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use imdb_lora_hub::{HubClient, HubConfig, HubError as Error, Repo, RepoType, Source};
use imdb_lora_hub_mirror::{Fault, HubMirror, MIRROR_COMMIT};
use imdb_lora_progress::{Event, Recorder, Unit};
use imdb_lora_testkit::shared::{IMDB_DATASET, MINILM_REPO};

// The client knows no model or dataset; these are the names the CLI passes it
// (`imdb_lora_data::imdb`, `imdb_lora_encoder::files`), spelled out so the tests pin the Hub layout.
/// Train split file inside [`IMDB_DATASET`].
const IMDB_TRAIN_FILE: &str = "plain_text/train-00000-of-00001.parquet";
/// Test split file inside [`IMDB_DATASET`].
const IMDB_TEST_FILE: &str = "plain_text/test-00000-of-00001.parquet";
/// A renamed repository on the Hub (now `google-bert/bert-base-uncased`), the CLI's default model.
const DEFAULT_MODEL: &str = "bert-base-uncased";
/// A BERT checkpoint's files.
const MODEL_REQUIRED_FILES: [&str; 2] = ["config.json", "model.safetensors"];
/// Its tokenizer files, fetched when present.
const MODEL_OPTIONAL_FILES: [&str; 4] = [
    "tokenizer.json",
    "vocab.txt",
    "tokenizer_config.json",
    "special_tokens_map.json",
];

/// Local paths of the IMDb splits.
#[derive(Debug, PartialEq, Eq)]
struct DatasetFiles {
    train: PathBuf,
    test: PathBuf,
}

/// The IMDb splits, fetched as the CLI fetches them.
fn fetch_imdb(client: &HubClient, source: &Source) -> imdb_lora_hub::Result<DatasetFiles> {
    let [train, test] = source
        .fetch(client, [IMDB_TRAIN_FILE, IMDB_TEST_FILE], [])?
        .required;
    Ok(DatasetFiles { train, test })
}

/// Local paths of a model's files.
struct ModelFiles {
    config: PathBuf,
    weights: PathBuf,
    tokenizer_json: Option<PathBuf>,
    vocab: Option<PathBuf>,
    tokenizer_config: Option<PathBuf>,
}

/// A model's files, fetched as the CLI fetches them.
fn fetch_model(client: &HubClient, source: &Source) -> imdb_lora_hub::Result<ModelFiles> {
    let fetched = source.fetch(client, MODEL_REQUIRED_FILES, MODEL_OPTIONAL_FILES)?;
    let [config, weights] = fetched.required;
    let [tokenizer_json, vocab, tokenizer_config, _special] = fetched.optional;
    Ok(ModelFiles {
        config,
        weights,
        tokenizer_json,
        vocab,
        tokenizer_config,
    })
}

/// sha256 of every shared file, from the committed `SHA256SUMS` (independent of our hashing code).
fn sums() -> HashMap<String, String> {
    imdb_lora_testkit::shared::sha256_sums().unwrap_or_else(|e| panic!("{e}"))
}

/// `shared/hub`, or a test failure that says where it was looked for and how to point at it.
pub(crate) fn hub_root() -> PathBuf {
    imdb_lora_testkit::shared::hub_root().unwrap_or_else(|e| panic!("{e}"))
}

fn client(endpoint: &str, cache: &Path) -> HubClient {
    HubClient::new(HubConfig::new(endpoint, cache).with_progress(false))
}

fn minilm() -> Repo {
    Repo::model(MINILM_REPO).unwrap()
}

/// Every file under `dir` (recursively), as paths relative to `dir`.
fn files_under(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = fs::read_dir(&d) else { continue };
        for e in rd {
            let p = e.unwrap().path();
            if p.is_dir() && !p.is_symlink() {
                stack.push(p);
            } else {
                out.push(p.strip_prefix(dir).unwrap().display().to_string());
            }
        }
    }
    out.sort();
    out
}

/// After a failed download: no partial file, no blob, no snapshot entry, no ref.
pub(crate) fn assert_cache_clean(cache: &Path) {
    let left = files_under(cache);
    assert!(
        left.is_empty(),
        "cache should hold nothing after a failed download, found {left:?}"
    );
}

#[test]
fn dataset_download_fills_the_hf_cache_and_is_reused() {
    let mirror = HubMirror::start(&hub_root()).unwrap();
    let cache = tempfile::tempdir().unwrap();
    let c = client(&mirror.endpoint(), cache.path());
    let src = Source::parse(IMDB_DATASET, RepoType::Dataset).unwrap();

    let files = fetch_imdb(&c, &src).unwrap();
    let sums = sums();
    let repo_dir = cache.path().join("datasets--stanfordnlp--imdb");
    for (path, file) in [
        (&files.train, IMDB_TRAIN_FILE),
        (&files.test, IMDB_TEST_FILE),
    ] {
        let expected_sha = &sums[&format!("datasets/stanfordnlp/imdb/resolve/main/{file}")];
        // Python's layout: snapshots/<commit>/<file> -> ../../../blobs/<sha256> (relative symlink).
        assert_eq!(
            *path,
            repo_dir.join("snapshots").join(MIRROR_COMMIT).join(file)
        );
        let link = fs::read_link(path).unwrap();
        assert_eq!(
            link,
            PathBuf::from(format!("../../../blobs/{expected_sha}"))
        );
        let shared = hub_root()
            .join("datasets/stanfordnlp/imdb/resolve/main")
            .join(file);
        assert_eq!(
            fs::read(path).unwrap(),
            fs::read(shared).unwrap(),
            "{file} content"
        );
        assert!(repo_dir.join("blobs").join(expected_sha).is_file());
    }
    assert_eq!(
        fs::read_to_string(repo_dir.join("refs/main")).unwrap(),
        MIRROR_COMMIT
    );
    let gets = |m: &HubMirror| m.requests().iter().filter(|r| r.method == "GET").count();
    assert_eq!(gets(&mirror), 2);

    // Online again: metadata is re-checked (HEAD) but nothing is downloaded.
    let again = fetch_imdb(&c, &src).unwrap();
    assert_eq!(again, files);
    assert_eq!(
        gets(&mirror),
        2,
        "cached blobs must not be downloaded again"
    );

    // Offline: no request at all, same paths.
    let before = mirror.requests().len();
    let offline =
        HubClient::new(HubConfig::new(&mirror.endpoint(), cache.path()).with_offline(true));
    assert_eq!(fetch_imdb(&offline, &src).unwrap(), files);
    assert_eq!(
        mirror.requests().len(),
        before,
        "offline mode must not touch the network"
    );

    // Endpoint gone: the cached copy is used.
    let endpoint = mirror.endpoint();
    drop(mirror);
    assert_eq!(
        fetch_imdb(&client(&endpoint, cache.path()), &src).unwrap(),
        files
    );
}

#[test]
fn realistic_hub_lfs_redirects_git_etags_and_renamed_repos() {
    // Like huggingface.co: large files 302 to a CDN with X-Linked-Etag (sha256), small ones carry
    // their git blob id; and `bert-base-uncased` answers with a relative 307 (renamed repository),
    // here pointing at the MiniLM files so the default model id can be exercised offline.
    let mirror = HubMirror::builder(&hub_root())
        .realistic(true)
        .lfs_threshold(1 << 20)
        .alias(DEFAULT_MODEL, MINILM_REPO)
        .start()
        .unwrap();
    let cache = tempfile::tempdir().unwrap();
    let c = client(&mirror.endpoint(), cache.path());
    let src = Source::parse(DEFAULT_MODEL, RepoType::Model).unwrap();
    let files = fetch_model(&c, &src).unwrap();

    let sums = sums();
    let shared_dir = hub_root().join(MINILM_REPO).join("resolve/main");
    let weights_sha = &sums[&format!("{MINILM_REPO}/resolve/main/model.safetensors")];
    let repo_dir = cache.path().join("models--bert-base-uncased");
    assert_eq!(
        fs::read_link(&files.weights).unwrap(),
        PathBuf::from(format!("../../blobs/{weights_sha}"))
    );
    for (path, name) in [
        (&files.weights, "model.safetensors"),
        (&files.config, "config.json"),
        (files.tokenizer_json.as_ref().unwrap(), "tokenizer.json"),
        (files.vocab.as_ref().unwrap(), "vocab.txt"),
        (
            files.tokenizer_config.as_ref().unwrap(),
            "tokenizer_config.json",
        ),
    ] {
        assert_eq!(
            fs::read(path).unwrap(),
            fs::read(shared_dir.join(name)).unwrap(),
            "{name}"
        );
        assert!(path.starts_with(repo_dir.join("snapshots").join(MIRROR_COMMIT)));
    }
    // Small files are stored under their git blob id (40 hex), like Python does.
    let config_blob = fs::read_link(&files.config).unwrap();
    let blob_name = config_blob.file_name().unwrap().to_str().unwrap();
    assert_eq!(blob_name.len(), 40, "{blob_name}");

    let log = mirror.requests();
    assert!(
        log.iter()
            .any(|r| r.status == 307 && r.target.starts_with("/bert-base-uncased/")),
        "{log:?}"
    );
    assert!(
        log.iter()
            .any(|r| r.status == 302 && r.target.ends_with("/model.safetensors")),
        "{log:?}"
    );
    assert!(
        log.iter()
            .any(|r| r.method == "GET" && r.target.starts_with("/_lfs/")),
        "{log:?}"
    );
}

#[test]
fn missing_file_is_a_404_error_naming_url_and_file() {
    let mirror = HubMirror::start(&hub_root()).unwrap();
    let cache = tempfile::tempdir().unwrap();
    let c = client(&mirror.endpoint(), cache.path());
    let err = c.download(&minilm(), "pytorch_model.bin").unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, Error::NotFound { .. }), "{msg}");
    assert!(
        msg.contains(&format!(
            "{}/{MINILM_REPO}/resolve/main/pytorch_model.bin",
            mirror.endpoint()
        )),
        "{msg}"
    );
    assert_eq!(
        c.download_optional(&minilm(), "pytorch_model.bin").unwrap(),
        None
    );
    let err = c
        .download(&Repo::model("nobody/nothing").unwrap(), "config.json")
        .unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }), "{err}");
    assert_cache_clean(cache.path());
}

#[test]
fn truncated_body_is_rejected_and_nothing_is_cached() {
    let mirror = HubMirror::start(&hub_root()).unwrap();
    mirror.set_fault(Some(Fault::TruncateBody { keep: 1000 }));
    let cache = tempfile::tempdir().unwrap();
    let c = client(&mirror.endpoint(), cache.path());
    let err = c.download(&minilm(), "tokenizer.json").unwrap_err();
    let msg = err.to_string();
    assert!(
        matches!(
            err,
            Error::Truncated {
                received: 1000,
                expected: 466_247,
                ..
            }
        ),
        "{msg}"
    );
    assert!(
        msg.contains("tokenizer.json") && msg.contains(&mirror.endpoint()),
        "{msg}"
    );
    assert_cache_clean(cache.path());

    // The failure leaves no trace that could block a later, good download.
    mirror.set_fault(None);
    let p = c.download(&minilm(), "tokenizer.json").unwrap();
    assert_eq!(fs::metadata(p).unwrap().len(), 466_247);
}

#[test]
fn wrong_checksum_deletes_the_file_and_says_so() {
    let mirror = HubMirror::start(&hub_root()).unwrap();
    mirror.set_fault(Some(Fault::WrongChecksum));
    let cache = tempfile::tempdir().unwrap();
    let c = client(&mirror.endpoint(), cache.path());
    let err = c.download(&minilm(), "vocab.txt").unwrap_err();
    let msg = err.to_string();
    let real = &sums()[&format!("{MINILM_REPO}/resolve/main/vocab.txt")];
    match &err {
        Error::ChecksumMismatch {
            download,
            algorithm,
            expected,
            actual,
        } => {
            assert_eq!(*algorithm, "sha256");
            assert_eq!(
                actual, real,
                "the digest of what arrived is the true sha256"
            );
            assert_ne!(expected, real);
            assert!(!download.partial.exists());
            assert_eq!(download.file, "vocab.txt");
        }
        other => panic!("expected a checksum mismatch, got {other}"),
    }
    assert!(
        msg.contains("vocab.txt") && msg.contains("deleted") && msg.contains(&mirror.endpoint()),
        "{msg}"
    );
    assert_cache_clean(cache.path());
}

#[test]
fn wrong_git_blob_id_is_detected_too() {
    let mirror = HubMirror::builder(&hub_root())
        .realistic(true)
        .start()
        .unwrap();
    mirror.set_fault(Some(Fault::WrongChecksum));
    let cache = tempfile::tempdir().unwrap();
    let err = client(&mirror.endpoint(), cache.path())
        .download(&minilm(), "config.json")
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::ChecksumMismatch {
                algorithm: "git-sha1",
                ..
            }
        ),
        "{err}"
    );
    assert_cache_clean(cache.path());
}

#[test]
fn server_dying_mid_file_leaves_no_partial_file() {
    let mirror = HubMirror::start(&hub_root()).unwrap();
    mirror.set_fault(Some(Fault::DropConnection { after: 3_000_000 }));
    let cache = tempfile::tempdir().unwrap();
    let c = client(&mirror.endpoint(), cache.path());
    let repo = Repo::dataset(IMDB_DATASET).unwrap();
    let err = c.download(&repo, IMDB_TEST_FILE).unwrap_err();
    let msg = err.to_string();
    // ureq reports the early close as a read error; either way the byte count is short.
    match &err {
        Error::Transfer {
            received, expected, ..
        }
        | Error::Truncated {
            received, expected, ..
        } => {
            assert!(*received <= 3_000_000 && *expected == 20_042_008, "{msg}");
        }
        other => panic!("expected a transfer error, got {other}"),
    }
    assert!(
        msg.contains("test-00000-of-00001.parquet") && msg.contains(&mirror.endpoint()),
        "{msg}"
    );
    assert_cache_clean(cache.path());
}

#[test]
fn server_errors_and_unreachable_endpoints_are_reported() {
    let mirror = HubMirror::start(&hub_root()).unwrap();
    mirror.set_fault(Some(Fault::Status(503)));
    let cache = tempfile::tempdir().unwrap();
    let c = client(&mirror.endpoint(), cache.path());
    let err = c.download(&minilm(), "config.json").unwrap_err();
    assert!(
        matches!(err, Error::HttpStatus { status: 503, .. }),
        "{err}"
    );
    mirror.set_fault(Some(Fault::Status(401)));
    let err = c.download(&minilm(), "config.json").unwrap_err();
    assert!(
        matches!(err, Error::Unauthorized { status: 401, .. }),
        "{err}"
    );

    let endpoint = mirror.endpoint();
    drop(mirror);
    let err = client(&endpoint, cache.path())
        .download(&minilm(), "config.json")
        .unwrap_err();
    assert!(matches!(err, Error::Http { method: "HEAD", .. }), "{err}");
    assert!(err.to_string().contains(&endpoint), "{err}");
    assert_cache_clean(cache.path());
}

#[test]
fn offline_mode_without_cache_says_what_is_missing() {
    let cache = tempfile::tempdir().unwrap();
    let c = HubClient::new(HubConfig::new("http://127.0.0.1:9", cache.path()).with_offline(true));
    let err = c.download(&minilm(), "config.json").unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, Error::NotCached { .. }), "{msg}");
    assert!(
        msg.contains("config.json") && msg.contains(MINILM_REPO) && msg.contains("offline"),
        "{msg}"
    );
    assert_eq!(c.download_optional(&minilm(), "config.json").unwrap(), None);
}

#[test]
fn pinned_commit_revision_resolves_online_and_offline() {
    let mirror = HubMirror::start(&hub_root()).unwrap();
    let cache = tempfile::tempdir().unwrap();
    let repo = minilm().with_revision(MIRROR_COMMIT).unwrap();
    let p = client(&mirror.endpoint(), cache.path())
        .download(&repo, "config.json")
        .unwrap();
    // A commit revision needs no ref file.
    assert!(
        !cache
            .path()
            .join("models--sentence-transformers--all-MiniLM-L6-v2/refs")
            .exists()
    );
    let offline =
        HubClient::new(HubConfig::new(&mirror.endpoint(), cache.path()).with_offline(true));
    assert_eq!(offline.download(&repo, "config.json").unwrap(), p);
    // `main` was never resolved, so offline it is unknown.
    assert!(matches!(
        offline.download(&minilm(), "config.json"),
        Err(Error::NotCached { .. })
    ));
}

#[test]
fn large_downloads_report_their_bytes_small_ones_nothing() {
    let mirror = HubMirror::start(&hub_root()).unwrap();
    let cache = tempfile::tempdir().unwrap();
    let recorder = Recorder::new();
    let c = HubClient::new(HubConfig::new(&mirror.endpoint(), cache.path()))
        .with_progress(Arc::new(recorder.clone()));
    let repo = Repo::dataset(IMDB_DATASET).unwrap();
    c.download(&repo, IMDB_TEST_FILE).unwrap();
    c.download(&minilm(), "config.json").unwrap();
    let events = recorder.events();
    assert_eq!(
        events.first(),
        Some(&Event::Start {
            label: IMDB_TEST_FILE.into(),
            total: Some(20_042_008),
            unit: Unit::Bytes
        })
    );
    assert_eq!(recorder.advanced(IMDB_TEST_FILE), 20_042_008);
    assert_eq!(
        events.last(),
        Some(&Event::Finish {
            label: IMDB_TEST_FILE.into()
        })
    );
    assert!(
        events
            .iter()
            .all(|e| !matches!(e, Event::Start { label, .. } if label == "config.json")),
        "{events:?}"
    );

    // Progress off (HF_HUB_DISABLE_PROGRESS_BARS): nothing reported, even for a large file.
    let quiet = Recorder::new();
    let other_cache = tempfile::tempdir().unwrap();
    HubClient::new(HubConfig::new(&mirror.endpoint(), other_cache.path()).with_progress(false))
        .with_progress(Arc::new(quiet.clone()))
        .download(&repo, IMDB_TEST_FILE)
        .unwrap();
    assert!(quiet.events().is_empty());
}
