//! `imdb-lora` built with `--features wgpu`, as a user runs it, on a small slice of the real
//! IMDb data with the real all-MiniLM-L6-v2: train (baseline, an epoch, evaluation, the saved
//! model), evaluate the saved model, and predict with it.

use std::process::Command;

use super::*;

#[test]
fn the_binary_trains_and_predicts_on_wgpu() {
    let Some(_device) = device() else { return };
    let _lock = device_lock();
    let imdb = imdb_lora_testkit::shared::imdb_file("").unwrap_or_else(|e| panic!("{e}"));
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let run = |args: &[&str]| {
        let output = Command::new(env!("CARGO_BIN_EXE_imdb-lora"))
            .args(args)
            .env("HF_HUB_OFFLINE", "1")
            .env_remove("SMALL_RUN")
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "imdb-lora {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        output
    };
    let model = minilm_dir();
    // The slice both train and eval read: 32 reviews each, 32 tokens.
    let slice = [
        "--model",
        model.to_str().unwrap(),
        "--data",
        imdb.to_str().unwrap(),
        "--train-n",
        "32",
        "--test-n",
        "32",
        "--max-len",
        "32",
    ];
    let out_dir = out.to_str().unwrap();
    let train_args = [
        &["train"][..],
        &slice,
        &["--epochs", "1", "--batch-size", "8", "--out", out_dir],
    ]
    .concat();
    let train = run(&train_args);
    let log = String::from_utf8_lossy(&train.stderr);
    assert!(log.contains("wgpu adapter:"), "{log}");
    let metrics = imdb_lora_metrics::MetricsFile::read(&out.join("metrics.json"))
        .unwrap()
        .run;
    assert_eq!(metrics.config.backend, "wgpu");
    let last = metrics.final_epoch().unwrap();
    assert!(last.train_loss.is_finite() && last.eval.loss.is_finite());
    assert_eq!(last.eval.confusion.total(), 32);

    // eval of the saved model (adapters merged into the weights) on the same test slice gives
    // the run's last accuracy, to one borderline review.
    let eval_out = dir.path().join("eval.json");
    let saved = out.join("model");
    let eval_args = [
        "eval",
        out_dir,
        "--saved",
        saved.to_str().unwrap(),
        "--out",
        eval_out.to_str().unwrap(),
    ];
    run(&eval_args);
    let eval: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&eval_out).unwrap()).unwrap();
    assert!(
        (eval["accuracy"].as_f64().unwrap() - last.eval.accuracy).abs() <= 1.0 / 32.0,
        "{eval}"
    );

    let predicted = run(&[
        "predict",
        "--model",
        saved.to_str().unwrap(),
        "A wonderful, moving film.",
    ]);
    let p: serde_json::Value = serde_json::from_slice(&predicted.stdout).unwrap();
    let (neg, pos) = (
        p[0]["neg_prob"].as_f64().unwrap(),
        p[0]["pos_prob"].as_f64().unwrap(),
    );
    assert!((neg + pos - 1.0).abs() < 1e-5, "{p}");
}
