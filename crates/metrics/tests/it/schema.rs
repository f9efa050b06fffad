//! Tests of the `metrics.json` schema: round trips, exact key layout, error
//! messages that name the file and field, and `validate()`'s checks.

use std::path::Path;

use imdb_lora_metrics::{MetricsError, MetricsFile, RunMetrics};
use imdb_lora_testkit::metrics::{binary_file, rising_run as sample};

/// `m` as written to `metrics.json` (with its per-class metrics, named neg and pos), as JSON.
fn json_of(m: RunMetrics) -> serde_json::Value {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("metrics.json");
    binary_file(m).write_atomic(&path).unwrap();
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

fn write_text(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn round_trips_through_write_atomic_and_read() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("metrics.json");
    let m = binary_file(sample(3));
    m.write_atomic(&path).unwrap();
    let back = MetricsFile::read(&path).unwrap();
    assert_eq!(back, m);
    assert!(std::fs::read_to_string(&path).unwrap().ends_with("}\n"));
}

#[test]
fn json_layout_is_the_documented_schema() {
    // Guards the file format against accidental renames: changing any key
    // here must come with a SCHEMA_VERSION bump.
    let v = json_of(sample(1));
    let keys = |v: &serde_json::Value| {
        let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
        k.sort();
        k
    };
    assert_eq!(
        keys(&v),
        [
            "baseline",
            "classes",
            "config",
            "epochs",
            "eval_samples_per_s",
            "schema_version",
            "total_params",
            "total_seconds",
            "train_samples_per_s",
            "trainable_params"
        ]
    );
    assert_eq!(
        keys(&v["config"]),
        [
            "backend",
            "batch_size",
            "data",
            "epochs",
            "lora_alpha",
            "lora_dropout",
            "lora_r",
            "lr",
            "lr_schedule",
            "max_grad_norm",
            "max_len",
            "model",
            "seed",
            "target_modules",
            "test_n",
            "train_n",
            "warmup_ratio",
            "weight_decay"
        ]
    );
    assert_eq!(
        keys(&v["baseline"]),
        [
            "accuracy",
            "confusion",
            "f1",
            "loss",
            "precision",
            "recall",
            "samples",
            "samples_per_s",
            "seconds"
        ]
    );
    assert_eq!(keys(&v["baseline"]["confusion"]), ["fn", "fp", "tn", "tp"]);
    assert_eq!(
        keys(&v["epochs"][0]),
        [
            "epoch",
            "eval",
            "train_loss",
            "train_samples_per_s",
            "train_seconds"
        ]
    );
    assert_eq!(v["schema_version"], 3);
}

#[test]
fn missing_file_error_names_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nope.json");
    let err = MetricsFile::read(&path).unwrap_err();
    assert!(matches!(err, MetricsError::Read { .. }), "{err:?}");
    assert!(err.to_string().contains("nope.json"), "{err}");
}

#[test]
fn malformed_json_error_names_file_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_text(
        dir.path(),
        "bad.json",
        "{\n  \"schema_version\": 1,\n  oops\n}",
    );
    let err = MetricsFile::read(&path).unwrap_err();
    match &err {
        MetricsError::Parse { line, column, .. } => {
            assert_eq!(*line, 3);
            assert!(*column > 0);
        }
        other => panic!("expected Parse, got {other:?}"),
    }
    let msg = err.to_string();
    assert!(msg.contains("bad.json") && msg.contains("line 3"), "{msg}");
}

#[test]
fn unknown_or_missing_keys_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let mut v = json_of(sample(1));
    v["config"]["lora_rank"] = 8.into();
    let path = write_text(dir.path(), "extra.json", &v.to_string());
    let err = MetricsFile::read(&path).unwrap_err();
    let source = std::error::Error::source(&err).unwrap().to_string();
    assert!(source.contains("lora_rank"), "{source}");

    let mut v = json_of(sample(1));
    v.as_object_mut().unwrap().remove("baseline");
    let path = write_text(dir.path(), "missing.json", &v.to_string());
    let err = MetricsFile::read(&path).unwrap_err();
    let source = std::error::Error::source(&err).unwrap().to_string();
    assert!(source.contains("missing field `baseline`"), "{source}");
}

#[test]
fn other_schema_version_is_reported_as_such() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_text(dir.path(), "v9.json", r#"{"schema_version": 9, "x": 1}"#);
    let err = MetricsFile::read(&path).unwrap_err();
    assert!(
        matches!(
            err,
            MetricsError::SchemaVersion {
                found: 9,
                expected: 3,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("v9.json"));
    assert!(err.to_string().contains("expected 3 (or 2 and 1"), "{err}");
}

#[test]
fn inconsistent_file_error_names_file_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let mut v = json_of(sample(2));
    v["epochs"][1]["epoch"] = 3.into();
    let path = write_text(dir.path(), "gap.json", &v.to_string());
    let err = MetricsFile::read(&path).unwrap_err();
    match &err {
        MetricsError::InvalidFile { source, .. } => assert_eq!(source.field, "epochs[1].epoch"),
        other => panic!("expected InvalidFile, got {other:?}"),
    }
    assert!(err.to_string().contains("gap.json"));
}

#[test]
fn valid_sample_passes_and_partial_runs_are_allowed() {
    sample(1).validate().unwrap();
    sample(3).validate().unwrap();
    let mut partial = sample(3);
    partial.epochs.truncate(1);
    partial.validate().unwrap();
}

fn field_of(m: &RunMetrics) -> String {
    m.validate().unwrap_err().field
}

#[test]
fn validate_names_the_offending_field() {
    let mut m = sample(2);
    m.epochs[1].eval.accuracy = 1.5;
    assert_eq!(field_of(&m), "epochs[1].eval.accuracy");

    let mut m = sample(2);
    m.baseline.f1 = 0.123; // in range but not what the confusion matrix says
    assert_eq!(field_of(&m), "baseline.f1");

    let mut m = sample(2);
    m.epochs[0].eval.confusion.tp += 1;
    assert_eq!(field_of(&m), "epochs[0].eval.accuracy");

    let mut m = sample(2);
    m.epochs[0].eval.samples += 1;
    assert_eq!(field_of(&m), "epochs[0].eval.confusion");

    let mut m = sample(2);
    m.config.test_n = 999;
    assert_eq!(field_of(&m), "baseline.samples");

    let mut m = sample(2);
    m.epochs.swap(0, 1);
    assert_eq!(field_of(&m), "epochs[0].epoch");

    let mut m = sample(2);
    m.config.epochs = 1;
    assert_eq!(field_of(&m), "epochs");

    let mut m = sample(1);
    m.trainable_params = m.total_params + 1;
    assert_eq!(field_of(&m), "trainable_params");

    let mut m = sample(1);
    m.baseline.loss = -0.1;
    assert_eq!(field_of(&m), "baseline.loss");

    let mut m = sample(1);
    m.epochs[0].train_seconds = f64::INFINITY;
    assert_eq!(field_of(&m), "epochs[0].train_seconds");

    let mut m = sample(1);
    m.config.warmup_ratio = 1.5;
    assert_eq!(field_of(&m), "config.warmup_ratio");

    let mut m = sample(1);
    m.config.lora_dropout = 1.0;
    assert_eq!(field_of(&m), "config.lora_dropout");

    let mut m = sample(1);
    m.config.target_modules.clear();
    assert_eq!(field_of(&m), "config.target_modules");

    let mut m = sample(1);
    m.config.batch_size = 0;
    assert_eq!(field_of(&m), "config.batch_size");

    // Only the version written is valid in memory (a legacy file's 1 is upgraded on reading).
    let mut m = sample(1);
    m.schema_version = 1;
    assert_eq!(field_of(&m), "schema_version");
    let mut m = sample(1);
    m.schema_version = 2;
    assert_eq!(field_of(&m), "schema_version");
    let mut m = sample(1);
    m.schema_version = 4;
    assert_eq!(field_of(&m), "schema_version");
    let mut m = sample(1);
    m.schema_version = 0;
    assert_eq!(field_of(&m), "schema_version");
}

/// Found by the fuzz harness (crates/fuzz/regressions/metrics/): a confusion count of 2^64 - 1
/// overflowed the sums behind `total()` and the ratios — a panic in debug builds, a wrapped
/// sum in release — before validation could refuse the file.
#[test]
fn confusion_counts_whose_sum_overflows_are_refused_naming_the_field() {
    let mut m = sample(1);
    m.baseline.confusion.tp = u64::MAX;
    assert_eq!(field_of(&m), "baseline.confusion");
    let mut m = sample(1);
    m.epochs[0].eval.confusion.fn_ = u64::MAX - 1;
    m.epochs[0].eval.confusion.fp = 3;
    assert_eq!(field_of(&m), "epochs[0].eval.confusion");
    // The ratios of such a matrix are computed without overflow too.
    let c = imdb_lora_metrics::ConfusionMatrix {
        tp: u64::MAX,
        fp: u64::MAX,
        tn: u64::MAX,
        fn_: u64::MAX,
    };
    assert_eq!(
        (c.accuracy(), c.precision(), c.recall(), c.f1()),
        (0.5, 0.5, 0.5, 0.5)
    );
    assert_eq!((c.total(), c.checked_total()), (u64::MAX, None));

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("metrics.json");
    let mut v = json_of(sample(1));
    v["baseline"]["confusion"]["tp"] = u64::MAX.into();
    std::fs::write(&path, v.to_string()).unwrap();
    let err = MetricsFile::read(&path).unwrap_err();
    assert!(err.to_string().contains("metrics.json"), "{err}");
    match &err {
        MetricsError::InvalidFile { source, .. } => assert_eq!(source.field, "baseline.confusion"),
        other => panic!("expected InvalidFile, got {other:?}"),
    }
}

#[test]
fn write_atomic_refuses_invalid_metrics_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("metrics.json");
    let mut m = binary_file(sample(1));
    m.run.epochs[0].eval.recall = 2.0;
    let err = m.write_atomic(&path).unwrap_err();
    assert!(matches!(err, MetricsError::Invalid(_)), "{err:?}");
    assert!(!path.exists());
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[test]
fn best_and_final_epoch() {
    let mut m = sample(3);
    assert_eq!(m.final_epoch().unwrap().epoch, 3);
    // sample() makes accuracy increase with the epoch.
    assert_eq!(m.best_epoch().unwrap().epoch, 3);
    m.epochs[0].eval = m.epochs[2].eval;
    // Ties go to the earliest epoch.
    assert_eq!(m.best_epoch().unwrap().epoch, 1);
    m.epochs.clear();
    assert!(m.final_epoch().is_none() && m.best_epoch().is_none());
    assert!((sample(1).trainable_fraction() - 296_450.0 / 109_779_460.0).abs() < 1e-15);
}

/// A run with a validation split: its epochs count the validation texts, the final `test`
/// the test set's; the selection names a trained epoch; both only with `config.val_n`.
#[test]
fn validation_runs_record_their_selection_and_final_test() {
    let with_val = || {
        let mut m = sample(3);
        m.config.val_n = Some(1000);
        m.config.test_n = 1000;
        m.test = Some(m.epochs[1].eval);
        m.selection = Some(imdb_lora_metrics::Selection {
            metric: "f1".into(),
            best_epoch: 2,
            best_value: m.epochs[1].eval.f1,
            load_best: true,
            patience: Some(1),
            stopped_early: false,
        });
        m
    };
    let m = with_val();
    m.validate().unwrap();
    assert_eq!(m.after(), Some(&m.epochs[1].eval));
    assert_eq!(m.best_epoch().unwrap().epoch, 2);
    assert_eq!(m.selection.as_ref().unwrap().saved_epoch(3), 2);

    // Written and read back, the new keys included.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("metrics.json");
    let file = binary_file(m.clone());
    assert!(file.classes.test.is_some());
    file.write_atomic(&path).unwrap();
    assert_eq!(MetricsFile::read(&path).unwrap(), file);

    let mut bad = with_val();
    bad.config.val_n = None;
    assert_eq!(field_of(&bad), "test");
    let mut bad = with_val();
    bad.test = None;
    bad.config.val_n = None;
    assert_eq!(field_of(&bad), "selection");
    let mut bad = with_val();
    bad.selection.as_mut().unwrap().best_epoch = 4;
    assert_eq!(field_of(&bad), "selection.best_epoch");
    let mut bad = with_val();
    bad.selection.as_mut().unwrap().metric = "auc".into();
    assert_eq!(field_of(&bad), "selection.metric");
    let mut bad = with_val();
    bad.config.val_n = Some(999);
    assert_eq!(field_of(&bad), "epochs[0].eval.samples");
    // A test evaluation beside an epoch's: only with a validation split, over the test set.
    let mut ok = with_val();
    ok.epochs[0].test = ok.test;
    ok.validate().unwrap();
    let mut bad = ok.clone();
    bad.epochs[0].test.as_mut().unwrap().samples = 16;
    assert_eq!(field_of(&bad), "epochs[0].test.confusion");
    let mut bad = sample(3);
    bad.epochs[0].test = Some(bad.epochs[0].eval);
    assert_eq!(field_of(&bad), "epochs[0].test");
    let mut bad = with_val();
    bad.config.class_weights = Some(vec![1.0, 0.0]);
    assert_eq!(field_of(&bad), "config.class_weights[1]");
    // Per-class metrics exactly when the final test is recorded.
    let mut bad = binary_file(with_val());
    bad.classes.test = None;
    assert_eq!(bad.validate().unwrap_err().field, "classes.test");
}
