//! Backward compatibility of `metrics.json`: binary (IMDb) runs serialise byte for byte as
//! the schema-1 code wrote them, and files written by older versions still read.
//!
//! `fixtures/v1_*.json` were written by `RunMetrics::write_atomic` before the N-class
//! extension existed (testkit's `rising_run(2)` and `balanced_run` with three epochs);
//! `docs/results/gpu_h200_minilm_rust_metrics.json` is a real run's file.

use std::path::{Path, PathBuf};

use imdb_lora_metrics::RunMetrics;
use imdb_lora_testkit::metrics::{balanced_run, rising_run};

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

/// What `write_atomic` puts on disk for `m`.
fn written(m: &RunMetrics) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("metrics.json");
    m.write_atomic(&path).unwrap();
    std::fs::read(&path).unwrap()
}

#[test]
fn binary_samples_serialise_exactly_as_schema_1_did() {
    let cases = [
        ("v1_rising_run.json", rising_run(2)),
        (
            "v1_balanced_run.json",
            balanced_run(&[(437, 416), (451, 428), (440, 447)]),
        ),
    ];
    for (name, m) in cases {
        let golden = std::fs::read(fixture(name)).unwrap();
        assert_eq!(
            String::from_utf8(written(&m)).unwrap(),
            String::from_utf8(golden).unwrap(),
            "{name}"
        );
        assert_eq!(RunMetrics::read(&fixture(name)).unwrap(), m, "{name}");
    }
}

#[test]
fn a_real_runs_file_reads_and_writes_back_byte_for_byte() {
    let path = results("gpu_h200_minilm_rust_metrics.json");
    let m = RunMetrics::read(&path).unwrap();
    assert_eq!(m.schema_version, 1);
    assert_eq!(written(&m), std::fs::read(&path).unwrap());
}

#[test]
fn a_file_from_before_lr_schedule_and_clipping_still_reads() {
    // Written before `lr_schedule` and `max_grad_norm` existed: their defaults apply.
    let m = RunMetrics::read(&results("gpu_h200_minilm_rust_default_recipe_metrics.json")).unwrap();
    assert_eq!(m.config.lr_schedule, "linear");
    assert_eq!(m.config.max_grad_norm, None);
    assert_eq!(m.epochs.len(), 1);
}
