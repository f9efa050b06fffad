//! `metrics.json` with per-class metrics, as every run writes it. A 4-class run round-trips
//! with the documented layout; a file of the old binary layout reads with its classes derived;
//! inconsistent class metrics are refused naming the field.

use std::path::{Path, PathBuf};

use imdb_lora_metrics::{
    EpochRecord, EvalAccumulator, LEGACY_SCHEMA_VERSION, MetricsError, MetricsFile, RunClasses,
    RunMetrics, SCHEMA_VERSION,
};
use imdb_lora_testkit::metrics::{
    AG_NEWS_CLASSES, binary_file, four_class_run, rising_run, run_config,
};
use serde_json::Value;

fn sorted_keys(v: &Value) -> Vec<String> {
    let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
    k.sort();
    k
}

/// `v` has exactly `expected` as keys, and `text` (the pretty JSON that `v` was parsed
/// from) has them in that order at `indent`, at their first occurrence.
fn assert_key_order(text: &str, v: &Value, indent: usize, expected: &[&str]) {
    let mut want: Vec<&str> = expected.to_vec();
    want.sort_unstable();
    assert_eq!(sorted_keys(v), want);
    let at = |key: &str| {
        let needle = format!("\n{}\"{key}\":", " ".repeat(indent));
        text.find(&needle)
            .unwrap_or_else(|| panic!("no {needle:?}"))
    };
    for pair in expected.windows(2) {
        assert!(at(pair[0]) < at(pair[1]), "{} before {}", pair[0], pair[1]);
    }
}

fn write_value(dir: &Path, name: &str, v: &Value) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, serde_json::to_string_pretty(v).unwrap()).unwrap();
    path
}

fn on_disk(file: &MetricsFile) -> (tempfile::TempDir, PathBuf, Value) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("metrics.json");
    file.write_atomic(&path).unwrap();
    let v: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    (dir, path, v)
}

#[test]
fn a_four_class_run_round_trips() {
    let file = four_class_run(3);
    assert_eq!(file.run.schema_version, SCHEMA_VERSION);
    assert_eq!(file.run.schema_version, 3);
    let (_dir, path, v) = on_disk(&file);

    let back = MetricsFile::read(&path).unwrap();
    assert_eq!(back, file);
    let classes = back.classes;
    assert_eq!(classes.names().collect::<Vec<_>>(), AG_NEWS_CLASSES);
    assert_eq!(classes.num_classes(), 4);
    assert_eq!(
        classes.final_epoch().unwrap(),
        classes.epochs.last().unwrap()
    );

    // The layout: the run's keys in their order, then `classes`.
    let text = std::fs::read_to_string(&path).unwrap();
    assert_eq!(v["schema_version"], 3);
    assert_key_order(
        &text,
        &v,
        2,
        &[
            "schema_version",
            "config",
            "trainable_params",
            "total_params",
            "baseline",
            "epochs",
            "train_samples_per_s",
            "eval_samples_per_s",
            "total_seconds",
            "classes",
        ],
    );
    // No binary matrix over four classes; the headline keys are otherwise a two-class run's.
    assert_eq!(
        sorted_keys(&v["epochs"][0]["eval"]),
        [
            "accuracy",
            "f1",
            "loss",
            "precision",
            "recall",
            "samples",
            "samples_per_s",
            "seconds"
        ]
    );
    assert_eq!(sorted_keys(&v["classes"]), ["baseline", "epochs"]);
    assert_key_order(
        &text,
        &v["classes"]["epochs"][2],
        6,
        &[
            "per_class",
            "macro_precision",
            "macro_recall",
            "macro_f1",
            "weighted_precision",
            "weighted_recall",
            "weighted_f1",
            "confusion",
        ],
    );
    assert_key_order(
        &text,
        &v["classes"]["baseline"]["per_class"][3],
        10,
        &["name", "precision", "recall", "f1", "support"],
    );
    assert_eq!(v["classes"]["baseline"]["per_class"][3]["name"], "Sci/Tech");
    assert_eq!(
        v["classes"]["baseline"]["confusion"][0],
        serde_json::json!([250, 50, 60, 40])
    );
}

#[test]
fn a_two_class_run_is_written_like_any_other() {
    let file = binary_file(rising_run(2));
    let (_dir, path, v) = on_disk(&file);
    assert_eq!(v["schema_version"], 3);
    assert_eq!(v["classes"]["baseline"]["per_class"][1]["name"], "pos");
    assert_eq!(MetricsFile::read(&path).unwrap(), file);
}

#[test]
fn a_legacy_binary_file_reads_with_its_classes_derived() {
    // Written by an older version: schema 1, no `classes`.
    let golden = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/fixtures/v1_rising_run.json");
    let text = std::fs::read_to_string(&golden).unwrap();
    assert!(text.contains("\"schema_version\": 1") && !text.contains("\"classes\""));
    let read = MetricsFile::read(&golden).unwrap();
    // Upgraded: the same run, its per-class metrics those of its binary matrices.
    assert_eq!(read, binary_file(rising_run(2)));
    let last = read.classes.final_epoch().unwrap();
    let binary = read.run.final_epoch().unwrap().eval.confusion;
    assert_eq!(
        last.confusion,
        [[binary.tn, binary.fp], [binary.fn_, binary.tp]]
    );
    assert_eq!(
        last.per_class[1].f1,
        read.run.final_epoch().unwrap().eval.f1
    );
}

#[test]
fn each_version_has_its_own_layout() {
    let dir = tempfile::tempdir().unwrap();
    let (_d, _, v) = on_disk(&four_class_run(1));

    // The current version without classes: the key is missing.
    let mut no_classes = v.clone();
    no_classes.as_object_mut().unwrap().remove("classes");
    let err = MetricsFile::read(&write_value(dir.path(), "a.json", &no_classes)).unwrap_err();
    assert!(matches!(err, MetricsError::Parse { .. }), "{err:?}");
    let source = std::error::Error::source(&err).unwrap().to_string();
    assert!(source.contains("missing field `classes`"), "{source}");

    // The legacy version with classes: an unknown key there.
    let mut v1 = v.clone();
    v1["schema_version"] = LEGACY_SCHEMA_VERSION.into();
    let err = MetricsFile::read(&write_value(dir.path(), "b.json", &v1)).unwrap_err();
    let source = std::error::Error::source(&err).unwrap().to_string();
    assert!(source.contains("unknown field `classes`"), "{source}");

    // In memory, only the version written.
    let mut file = four_class_run(1);
    file.run.schema_version = LEGACY_SCHEMA_VERSION;
    let err = file.validate().unwrap_err();
    assert_eq!(err.field, "schema_version");
    assert!(err.reason.contains("expected 3"), "{err}");
}

/// Reads `v` after `edit` and returns the field the refusal names.
fn refused_field(v: &Value, edit: impl FnOnce(&mut Value)) -> String {
    let dir = tempfile::tempdir().unwrap();
    let mut v = v.clone();
    edit(&mut v);
    let path = write_value(dir.path(), "classes.json", &v);
    match MetricsFile::read(&path) {
        Err(MetricsError::InvalidFile { path: p, source }) => {
            assert_eq!(p, path);
            source.field
        }
        other => panic!("expected InvalidFile, got {other:?}"),
    }
}

/// A change to a file's JSON.
type Edit = Box<dyn FnOnce(&mut Value)>;

fn add(v: &mut Value, delta: i64) {
    *v = (v.as_i64().unwrap() + delta).into();
}

#[test]
fn inconsistent_class_metrics_are_refused_naming_the_field() {
    let (_d, _, v) = on_disk(&four_class_run(2));
    let cases: Vec<(&str, Edit)> = vec![
        (
            "classes.epochs[1].per_class[2].support",
            Box::new(|v| add(&mut v["classes"]["epochs"][1]["per_class"][2]["support"], 1)),
        ),
        (
            "classes.baseline.confusion[3]",
            Box::new(|v| {
                v["classes"]["baseline"]["confusion"][3]
                    .as_array_mut()
                    .unwrap()
                    .pop();
            }),
        ),
        (
            "classes.baseline.confusion",
            Box::new(|v| {
                v["classes"]["baseline"]["confusion"]
                    .as_array_mut()
                    .unwrap()
                    .pop();
            }),
        ),
        (
            // Same row sum, so the support holds, but one more right: precision is off.
            "classes.epochs[0].per_class[0].precision",
            Box::new(|v| {
                add(&mut v["classes"]["epochs"][0]["confusion"][0][0], 1);
                add(&mut v["classes"]["epochs"][0]["confusion"][0][1], -1);
            }),
        ),
        (
            "classes.epochs[0].confusion",
            Box::new(|v| add(&mut v["classes"]["epochs"][0]["confusion"][0][0], 1)),
        ),
        (
            "classes.epochs",
            Box::new(|v| {
                v["classes"]["epochs"].as_array_mut().unwrap().pop();
            }),
        ),
        (
            "classes.epochs[1].per_class[1].name",
            Box::new(|v| v["classes"]["epochs"][1]["per_class"][1]["name"] = "Sport".into()),
        ),
        (
            "classes.baseline.per_class[3].name",
            Box::new(|v| v["classes"]["baseline"]["per_class"][3]["name"] = "World".into()),
        ),
        (
            "classes.baseline.per_class[0].name",
            Box::new(|v| v["classes"]["baseline"]["per_class"][0]["name"] = " ".into()),
        ),
        (
            "classes.baseline.per_class",
            Box::new(|v| {
                v["classes"]["baseline"]["per_class"]
                    .as_array_mut()
                    .unwrap()
                    .truncate(1);
            }),
        ),
        (
            "classes.baseline.macro_f1",
            Box::new(|v| v["classes"]["baseline"]["macro_f1"] = 0.5.into()),
        ),
        (
            "classes.epochs[1].weighted_recall",
            Box::new(|v| v["classes"]["epochs"][1]["weighted_recall"] = 0.1.into()),
        ),
        (
            // The headline F1 over four classes is the macro average, not one class's.
            "epochs[0].eval.f1",
            Box::new(|v| {
                v["epochs"][0]["eval"]["f1"] =
                    v["classes"]["epochs"][0]["per_class"][3]["f1"].clone()
            }),
        ),
        (
            "baseline.accuracy",
            Box::new(|v| v["baseline"]["accuracy"] = 0.3.into()),
        ),
    ];
    for (field, edit) in cases {
        assert_eq!(refused_field(&v, edit), field);
    }
}

#[test]
fn a_binary_matrix_over_four_classes_is_refused() {
    let mut file = four_class_run(1);
    let eval = &mut file.run.epochs[0].eval;
    // A binary matrix with the right accuracy (1,378 of 1,600 right) and ratios derived from
    // it: only the class check can object.
    assert!((eval.accuracy - 0.86125).abs() < 1e-12);
    let binary = imdb_lora_metrics::ConfusionMatrix {
        tp: 1000,
        fp: 111,
        tn: 378,
        fn_: 111,
    };
    *eval = imdb_lora_metrics::EvalMetrics::from_confusion(binary, eval.loss, eval.seconds);
    let err = file.validate().unwrap_err();
    assert_eq!(err.field, "epochs[0].eval.confusion", "{err}");
    assert!(
        err.reason.contains("no binary matrix over 4 classes"),
        "{err}"
    );
}

#[test]
fn an_accumulated_evaluation_makes_a_valid_file() {
    // What a training loop does: one accumulator per evaluation, batch by batch.
    let evaluate = |shift: usize| {
        let mut acc = EvalAccumulator::with_classes(4);
        for batch in 0..10u8 {
            let labels: Vec<u8> = (0..16).map(|i| (i + batch) % 4).collect();
            let preds: Vec<u8> = labels
                .iter()
                .enumerate()
                .map(|(i, &l)| if i % 8 < shift { (l + 1) % 4 } else { l })
                .collect();
            acc.update(&preds, &labels, 0.25 * shift as f64).unwrap();
        }
        (
            acc.finish(1.5),
            acc.class_metrics(&AG_NEWS_CLASSES).unwrap(),
        )
    };
    let (baseline, baseline_classes) = evaluate(6);
    let (eval, classes) = evaluate(1);
    let mut config = run_config(1);
    config.test_n = 160;
    let run = RunMetrics {
        schema_version: SCHEMA_VERSION,
        config,
        trainable_params: 10,
        total_params: 100,
        baseline,
        epochs: vec![EpochRecord {
            epoch: 1,
            train_loss: 0.3,
            train_seconds: 10.0,
            train_samples_per_s: 20.0,
            eval,
            test: None,
        }],
        train_samples_per_s: 20.0,
        eval_samples_per_s: 100.0,
        total_seconds: 13.0,
        selection: None,
        test: None,
    };
    let file = MetricsFile::new(
        run,
        RunClasses {
            baseline: baseline_classes,
            epochs: vec![classes],
            test: None,
        },
    );
    let (_d, path, _) = on_disk(&file);
    let back = MetricsFile::read(&path).unwrap();
    assert!((back.run.epochs[0].eval.accuracy - 0.875).abs() < 1e-12);
    assert_eq!(back, file);
}

#[test]
fn two_named_classes_keep_the_binary_headline() {
    let mut acc = EvalAccumulator::with_classes(2);
    acc.update(&[1u8, 1, 0, 0, 1], &[1u8, 0, 0, 1, 1], 0.5)
        .unwrap();
    let eval = acc.finish(1.0);
    let classes = acc.class_metrics(&["ham", "spam"]).unwrap();
    // Positive-class F1 (2·2 / (2·2 + 1 + 1)), not the macro average.
    assert!((eval.f1 - 2.0 / 3.0).abs() < 1e-12);
    assert!((classes.macro_f1 - (2.0 / 3.0 + 0.5) / 2.0).abs() < 1e-12);
    let mut config = run_config(1);
    config.test_n = 5;
    let run = RunMetrics {
        schema_version: SCHEMA_VERSION,
        config,
        trainable_params: 10,
        total_params: 100,
        baseline: eval,
        epochs: vec![EpochRecord {
            epoch: 1,
            train_loss: 0.3,
            train_seconds: 10.0,
            train_samples_per_s: 20.0,
            eval,
            test: None,
        }],
        train_samples_per_s: 20.0,
        eval_samples_per_s: 100.0,
        total_seconds: 13.0,
        selection: None,
        test: None,
    };
    let file = MetricsFile::new(
        run,
        RunClasses {
            baseline: classes.clone(),
            epochs: vec![classes],
            test: None,
        },
    );
    let (_d, path, v) = on_disk(&file);
    assert_eq!(v["schema_version"], 3);
    assert_eq!(v["baseline"]["confusion"]["tp"], 2);
    assert_eq!(MetricsFile::read(&path).unwrap(), file);

    // Two classes need the binary matrix.
    let field = refused_field(&v, |v| {
        v["epochs"][0]["eval"]
            .as_object_mut()
            .unwrap()
            .remove("confusion");
    });
    assert_eq!(field, "epochs[0].eval.confusion");
}

/// Every path to a leaf (number, string, null) or array of `v`, as JSON pointers.
fn pointers(v: &Value, at: String, out: &mut Vec<String>) {
    match v {
        Value::Object(map) => {
            for (k, child) in map {
                pointers(child, format!("{at}/{k}"), out);
            }
        }
        Value::Array(items) => {
            out.push(at.clone());
            for (i, child) in items.iter().enumerate() {
                pointers(child, format!("{at}/{i}"), out);
            }
        }
        _ => out.push(at),
    }
}

#[test]
fn no_single_change_to_a_schema_2_file_panics_the_reader() {
    // Each leaf of a 4-class file set to each of a few hostile values, each array emptied
    // and cut short: the reader returns the file or an error, never panics (and whatever it
    // accepts is valid).
    let (dir, path, v) = on_disk(&four_class_run(1));
    let mut all = Vec::new();
    pointers(&v, String::new(), &mut all);
    let hostile: Vec<Value> = vec![
        0.into(),
        1.into(),
        (-1).into(),
        u64::MAX.into(),
        (1u64 << 53).into(),
        1e308.into(),
        0.5.into(),
        "x".into(),
        Value::Null,
    ];
    let mut accepted = 0;
    let mut tried = 0;
    for pointer in &all {
        let mut edits: Vec<Value> = hostile.clone();
        if let Some(items) = v.pointer(pointer).and_then(Value::as_array) {
            edits = vec![
                Value::Array(Vec::new()),
                Value::Array(items[..items.len() / 2].to_vec()),
            ];
        }
        for edit in edits {
            let mut changed = v.clone();
            *changed.pointer_mut(pointer).unwrap() = edit;
            std::fs::write(&path, changed.to_string()).unwrap();
            tried += 1;
            if let Ok(file) = MetricsFile::read(&path) {
                file.validate().unwrap();
                accepted += 1;
            }
        }
    }
    drop(dir);
    assert!(tried > 1000, "{tried} edits");
    // Some edits are harmless (timings, names), most are refused.
    assert!(
        accepted > 0 && accepted < tried / 2,
        "{accepted} of {tried}"
    );
}
