//! `--precision bf16` through the binary (train → eval → predict on MiniLM and IMDb, offline):
//! the run records its precision, the saved model keeps the base checkpoint's dtype unless
//! `--save-dtype` says otherwise, and an unknown precision is refused by name.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use imdb_lora_metrics::MetricsFile;

fn minilm() -> PathBuf {
    imdb_lora_testkit::shared::minilm_dir().unwrap_or_else(|e| panic!("{e}"))
}

fn imdb() -> PathBuf {
    minilm().join("../../../../datasets/stanfordnlp/imdb/resolve/main")
}

fn bin(args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_imdb-lora"));
    cmd.args(args).env("HF_HUB_OFFLINE", "1");
    cmd
}

fn ok(mut cmd: Command) -> Output {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn train(out: &Path, extra: &[&str]) -> Command {
    let mut cmd = bin(&["train", "--model"]);
    cmd.arg(minilm()).arg("--data").arg(imdb()).args([
        "--test-n",
        "32",
        "--max-len",
        "48",
        "--epochs",
        "1",
        "--batch-size",
        "8",
        "--checkpoint-every",
        "0",
        "--seed",
        "3",
    ]);
    cmd.args(extra).arg("--out").arg(out);
    cmd
}

/// The safetensors dtype of `key` in `file`.
fn dtype_of(file: &Path, key: &str) -> safetensors::Dtype {
    let bytes = std::fs::read(file).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    st.tensor(key).unwrap().dtype()
}

fn config_dtype(model: &Path) -> String {
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(model.join("config.json")).unwrap()).unwrap();
    json["dtype"].as_str().unwrap().to_string()
}

#[test]
fn bf16_run_trains_evaluates_predicts_and_saves_the_base_dtype() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    ok(train(&out, &["--train-n", "48", "--precision", "bf16"]));
    let m = MetricsFile::read(&out.join("metrics.json")).unwrap().run;
    assert_eq!(m.config.precision.as_deref(), Some("bf16"));
    assert_eq!(m.epochs.len(), 1);
    assert!(m.epochs[0].train_loss.is_finite());

    // MiniLM is an f32 checkpoint: the merged model is saved in f32, merged into the
    // full-precision weights (not the rounded bf16 copies the run computed with).
    let model = out.join("model");
    let weights = model.join("model.safetensors");
    let key = "bert.encoder.layer.0.attention.self.query.weight";
    assert_eq!(dtype_of(&weights, key), safetensors::Dtype::F32);
    assert_eq!(config_dtype(&model), "float32");

    let eval_json = tmp.path().join("eval.json");
    let saved = model.to_str().unwrap();
    let mut eval = bin(&["eval", "--saved", saved, "--precision", "bf16"]);
    eval.arg("--data").arg(imdb());
    eval.args(["--test-n", "32", "--max-len", "48", "--seed", "3", "--out"])
        .arg(&eval_json);
    ok(eval);
    let eval: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&eval_json).unwrap()).unwrap();
    let accuracy = eval["accuracy"].as_f64().unwrap();
    // The run's own last evaluation, to the one review bf16 rounding may flip.
    let during = m.epochs[0].eval.accuracy;
    assert!(
        (accuracy - during).abs() <= 1.0 / 32.0 + 1e-9,
        "eval {accuracy} vs run {during}"
    );

    let predicted = ok(bin(&[
        "predict",
        "--model",
        saved,
        "--precision",
        "bf16",
        "A wonderful film.",
        "Dreadful.",
    ]));
    let preds: serde_json::Value = serde_json::from_slice(&predicted.stdout).unwrap();
    for p in preds.as_array().unwrap() {
        let sum = p["neg_prob"].as_f64().unwrap() + p["pos_prob"].as_f64().unwrap();
        assert!((sum - 1.0).abs() < 1e-6, "{p}");
    }
}

#[test]
fn save_dtype_overrides_the_base_dtype() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    ok(train(&out, &["--train-n", "16", "--save-dtype", "f16"]));
    let model = out.join("model");
    let key = "classifier.weight";
    assert_eq!(
        dtype_of(&model.join("model.safetensors"), key),
        safetensors::Dtype::F16
    );
    assert_eq!(config_dtype(&model), "float16");
    // An f16 checkpoint loads (widened to f32) and predicts.
    let predicted = ok(bin(&[
        "predict",
        "--model",
        model.to_str().unwrap(),
        "Superb.",
    ]));
    let preds: serde_json::Value = serde_json::from_slice(&predicted.stdout).unwrap();
    let p = &preds[0];
    let sum = p["neg_prob"].as_f64().unwrap() + p["pos_prob"].as_f64().unwrap();
    assert!((sum - 1.0).abs() < 1e-6, "{p}");
    // An f32 run records no precision: its metrics.json is what it always was.
    let m = MetricsFile::read(&out.join("metrics.json")).unwrap().run;
    assert_eq!(m.config.precision, None);
    // The adapter stays f32: its factors were trained in f32.
    let adapter = model.join("adapter/adapter_model.safetensors");
    let bytes = std::fs::read(&adapter).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    assert!(
        st.tensors()
            .iter()
            .all(|(_, t)| t.dtype() == safetensors::Dtype::F32)
    );
}

#[test]
fn unknown_precision_is_refused_by_name() {
    let out = bin(&["predict", "--model", "x", "--precision", "fp8", "t"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("fp8") && err.contains("bf16"), "{err}");
}
