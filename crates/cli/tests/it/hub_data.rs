//! Another Hub dataset than IMDb, through the loopback mirror as from huggingface.co: its file
//! list read from the Hub API, its sharded `data/` split files (ClassLabel names in the parquet
//! metadata) downloaded, verified and then used offline; a dataset whose default branch has no
//! data files read from the auto-converted parquet branch; a missing one refused by name.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use imdb_lora_hub_mirror::{HubMirror, MIRROR_COMMIT};

const TOPICS: [&str; 4] = ["World", "Sports", "Business", "Sci/Tech"];

fn minilm() -> PathBuf {
    imdb_lora_testkit::shared::minilm_dir().unwrap_or_else(|e| panic!("{e}"))
}

/// `fixtures/table/hub_sharded`: 8 training and 4 test headlines in `data/` shards.
fn sharded_fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/table/hub_sharded")
}

fn copy(from: &Path, to: &Path) {
    std::fs::create_dir_all(to.parent().unwrap()).unwrap();
    std::fs::copy(from, to).unwrap();
}

/// A mirror tree with `someone/topics` (the fixture as on the Hub) and `someone/scripted` (a
/// loading script on `main`, parquet files on `refs/convert/parquet`).
fn mirror_tree(root: &Path) {
    let fixture = sharded_fixture();
    let topics = root.join("datasets/someone/topics/resolve/main");
    for f in [
        "README.md",
        "data/train-00000-of-00002.parquet",
        "data/train-00001-of-00002.parquet",
        "data/test-00000-of-00001.parquet",
    ] {
        copy(&fixture.join(f), &topics.join(f));
    }
    let scripted = root.join("datasets/someone/scripted/resolve");
    std::fs::create_dir_all(scripted.join("main")).unwrap();
    std::fs::write(scripted.join("main/scripted.py"), "# a loading script\n").unwrap();
    let converted = scripted.join("refs/convert/parquet/default");
    copy(
        &fixture.join("data/train-00000-of-00002.parquet"),
        &converted.join("train/0000.parquet"),
    );
    copy(
        &fixture.join("data/train-00001-of-00002.parquet"),
        &converted.join("train/0001.parquet"),
    );
    copy(
        &fixture.join("data/test-00000-of-00001.parquet"),
        &converted.join("test/0000.parquet"),
    );
}

fn imdb_lora(endpoint: &str, hf_home: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_imdb-lora"))
        .args(args)
        .env("HF_ENDPOINT", endpoint)
        .env("HF_HOME", hf_home)
        .env_remove("HF_HUB_OFFLINE")
        .env_remove("SMALL_RUN")
        .output()
        .unwrap()
}

fn ok(out: Output) -> Output {
    assert!(
        out.status.success(),
        "exit {:?}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn json(path: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(path).unwrap())
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn a_hub_dataset_is_listed_fetched_and_trained_on_offline() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("mirror");
    mirror_tree(&root);
    let mirror = HubMirror::start(&root).unwrap();
    let endpoint = mirror.endpoint();
    let hf_home = dir.path().join("hf");
    let model = minilm();
    let model = model.to_str().unwrap();

    ok(imdb_lora(
        &endpoint,
        &hf_home,
        &["download", "--model", model, "--data", "someone/topics"],
    ));
    // The split files (not the README) are in the cache, at the commit the API named.
    let snapshot = hf_home
        .join("hub/datasets--someone--topics/snapshots")
        .join(MIRROR_COMMIT);
    let mut cached = Vec::new();
    for e in std::fs::read_dir(snapshot.join("data")).unwrap() {
        cached.push(e.unwrap().file_name().to_string_lossy().into_owned());
    }
    cached.sort();
    assert_eq!(
        cached,
        [
            "test-00000-of-00001.parquet",
            "train-00000-of-00002.parquet",
            "train-00001-of-00002.parquet"
        ]
    );
    assert!(!snapshot.join("README.md").exists());
    let targets: Vec<String> = mirror.requests().into_iter().map(|r| r.target).collect();
    assert!(
        targets.contains(&"/api/datasets/someone/topics/revision/main".to_owned()),
        "{targets:?}"
    );

    // Offline, from the cache alone: the classes are the parquet files' ClassLabel names.
    drop(mirror);
    let out = dir.path().join("run");
    ok(imdb_lora(
        "http://127.0.0.1:9",
        &hf_home,
        &[
            "train",
            "--offline",
            "--model",
            model,
            "--data",
            "someone/topics",
            "--epochs",
            "1",
            "--batch-size",
            "4",
            "--max-len",
            "16",
            "--out",
            out.to_str().unwrap(),
        ],
    ));
    let metrics = imdb_lora_metrics::MetricsFile::read(&out.join("metrics.json")).unwrap();
    let classes = &metrics.classes;
    assert_eq!(classes.names().collect::<Vec<_>>(), TOPICS);
    assert_eq!(
        (metrics.run.config.train_n, metrics.run.config.test_n),
        (8, 4)
    );
    let split = json(&out.join("split.json"));
    assert_eq!(
        split["train_files"],
        serde_json::json!([
            snapshot.join("data/train-00000-of-00002.parquet"),
            snapshot.join("data/train-00001-of-00002.parquet")
        ])
    );
    let config = json(&out.join("model/config.json"));
    assert_eq!(config["id2label"]["3"], "Sci/Tech");
}

#[test]
fn a_dataset_without_data_files_is_read_from_its_converted_parquet_branch() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("mirror");
    mirror_tree(&root);
    let mirror = HubMirror::start(&root).unwrap();
    let hf_home = dir.path().join("hf");
    let model = minilm();
    let out = dir.path().join("run");
    ok(imdb_lora(
        &mirror.endpoint(),
        &hf_home,
        &[
            "train",
            "--model",
            model.to_str().unwrap(),
            "--data",
            "someone/scripted",
            "--stop-after-steps",
            "0",
            "--max-len",
            "16",
            "--out",
            out.to_str().unwrap(),
        ],
    ));
    let split = json(&out.join("split.json"));
    let train: Vec<String> = split["train_files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(train.len(), 2, "{train:?}");
    assert!(
        train[0].ends_with("default/train/0000.parquet"),
        "{train:?}"
    );
    assert!(
        train[1].ends_with("default/train/0001.parquet"),
        "{train:?}"
    );
    assert_eq!(split["classes"], serde_json::json!(TOPICS));
    let targets: Vec<String> = mirror.requests().into_iter().map(|r| r.target).collect();
    assert!(
        targets
            .iter()
            .any(|t| t == "/api/datasets/someone/scripted/revision/refs%2Fconvert%2Fparquet"),
        "{targets:?}"
    );

    // A dataset the Hub does not have is refused by name, before anything is trained.
    let missing = imdb_lora(
        &mirror.endpoint(),
        &hf_home,
        &[
            "train",
            "--model",
            model.to_str().unwrap(),
            "--data",
            "someone/nothing",
            "--out",
            dir.path().join("none").to_str().unwrap(),
        ],
    );
    assert!(!missing.status.success());
    let stderr = String::from_utf8_lossy(&missing.stderr);
    assert!(
        stderr.contains("someone/nothing") && stderr.contains("not found"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
}
