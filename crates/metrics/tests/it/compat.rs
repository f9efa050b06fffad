//! Backward compatibility of `metrics.json`: files written by older versions in the binary
//! layout (schema 1, IMDb runs) still read, as the same run with its per-class metrics derived.
//!
//! `fixtures/v1_*.json` were written by the schema-1 writer before the N-class extension
//! existed (testkit's `rising_run(2)` and `balanced_run` with three epochs);
//! `docs/results/gpu_h200_minilm_rust_metrics.json` is a real run's file.

use std::path::{Path, PathBuf};

use imdb_lora_metrics::{MetricsFile, RunMetrics};
use imdb_lora_testkit::metrics::{balanced_run, binary_file, rising_run};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/it/fixtures")
        .join(name)
}

fn results(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../docs/results")
        .join(name)
}

#[test]
fn schema_1_samples_read_as_the_runs_they_were_written_from() {
    let cases = [
        ("v1_rising_run.json", rising_run(2)),
        (
            "v1_balanced_run.json",
            balanced_run(&[(437, 416), (451, 428), (440, 447)]),
        ),
    ];
    for (name, m) in cases {
        assert_eq!(
            MetricsFile::read(&fixture(name)).unwrap(),
            binary_file(m),
            "{name}"
        );
    }
}

#[test]
fn a_real_runs_file_reads_and_writes_back_as_the_current_schema() {
    let path = results("gpu_h200_minilm_rust_metrics.json");
    let file = MetricsFile::read(&path).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let again = dir.path().join("metrics.json");
    file.write_atomic(&again).unwrap();
    assert_eq!(MetricsFile::read(&again).unwrap(), file);
    // Every number of the old file is kept: its keys, with `classes` added and the version.
    let old: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let mut new: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&again).unwrap()).unwrap();
    let object = new.as_object_mut().unwrap();
    assert!(object.remove("classes").is_some());
    object.insert("schema_version".into(), 1.into());
    assert_eq!(new, old);
}

fn read_run(path: &Path) -> RunMetrics {
    MetricsFile::read(path).unwrap().run
}

#[test]
fn a_file_from_before_lr_schedule_and_clipping_still_reads() {
    // Written before `lr_schedule` and `max_grad_norm` existed: their defaults apply.
    let m = read_run(&results("gpu_h200_minilm_rust_default_recipe_metrics.json"));
    assert_eq!(m.config.lr_schedule, "linear");
    assert_eq!(m.config.max_grad_norm, None);
    assert_eq!(m.epochs.len(), 1);
}
