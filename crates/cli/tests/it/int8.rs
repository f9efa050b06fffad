//! Int8 inference as a user runs it: `predict --quantize int8` against PEFT's probabilities,
//! `export --quantize int8` and the exported directory predicting without a flag, and
//! `eval --quantize int8 --compare-f32`.

use std::path::Path;
use std::process::{Command, Output};

use crate::predict::{adapter, minilm};

fn run(args: &[&std::ffi::OsStr]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_imdb-lora"))
        .args(args)
        .env("HF_HUB_OFFLINE", "1")
        .output()
        .unwrap()
}

fn ok_json(out: &Output) -> serde_json::Value {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "exit {:?}: {stderr}", out.status);
    serde_json::from_slice(&out.stdout).unwrap()
}

const TEXTS: [&str; 3] = [
    "A great movie.",
    "The plot was predictable, but the acting was strong enough to keep me watching until the end.",
    "Dull, loud and far too long; I wanted my two hours back.",
];

/// `pos_prob` of every prediction of a `predict` run.
fn pos_probs(v: &serde_json::Value) -> Vec<f64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|p| p["pos_prob"].as_f64().unwrap())
        .collect()
}

fn predict(model: &Path, extra: &[&str]) -> Vec<f64> {
    let mut args: Vec<&std::ffi::OsStr> =
        vec!["predict".as_ref(), "--model".as_ref(), model.as_os_str()];
    args.extend(extra.iter().map(std::ffi::OsStr::new));
    args.extend(TEXTS.iter().map(std::ffi::OsStr::new));
    pos_probs(&ok_json(&run(&args)))
}

#[test]
fn predict_in_int8_stays_near_f32_and_an_exported_int8_model_predicts_the_same() {
    let adapter = adapter();
    let with_adapter = ["--adapter", adapter.to_str().unwrap()];
    let f32 = predict(&minilm(), &with_adapter);
    let int8 = predict(
        &minilm(),
        &[&with_adapter[..], &["--quantize", "int8"]].concat(),
    );
    for (a, b) in f32.iter().zip(&int8) {
        assert!((a - b).abs() < 0.02, "f32 {f32:?} vs int8 {int8:?}");
        assert_eq!(*a > 0.5, *b > 0.5, "f32 {f32:?} vs int8 {int8:?}");
    }

    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("int8");
    let exported = ok_json(&run(&[
        "export".as_ref(),
        "--model".as_ref(),
        minilm().as_os_str(),
        "--adapter".as_ref(),
        adapter.as_os_str(),
        "--quantize".as_ref(),
        "int8".as_ref(),
        "--out".as_ref(),
        out.as_os_str(),
    ]));
    assert_eq!(exported["int8"], true);
    let ratio = exported["bytes"].as_f64().unwrap() / exported["source_bytes"].as_f64().unwrap();
    assert!(ratio < 0.3, "{exported}");
    // The exported directory runs in int8 as it is: no flag, no adapter.
    let reloaded = predict(&out, &[]);
    for (a, b) in int8.iter().zip(&reloaded) {
        assert!(
            (a - b).abs() < 1e-4,
            "in memory {int8:?} vs exported {reloaded:?}"
        );
    }
    // An existing, non-empty directory is never overwritten.
    let again = run(&[
        "export".as_ref(),
        "--model".as_ref(),
        minilm().as_os_str(),
        "--adapter".as_ref(),
        adapter.as_os_str(),
        "--out".as_ref(),
        out.as_os_str(),
    ]);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("not empty"));
    // Training refuses an int8 model as its base.
    let data = dir.path().join("reviews.csv");
    let rows: String = (0..40)
        .map(|i| format!("\"review {i}\",{}\n", i % 2))
        .collect();
    std::fs::write(&data, format!("text,label\n{rows}")).unwrap();
    let train = run(&[
        "train".as_ref(),
        "--model".as_ref(),
        out.as_os_str(),
        "--data".as_ref(),
        data.as_os_str(),
        "--out".as_ref(),
        dir.path().join("run").as_os_str(),
    ]);
    assert!(!train.status.success());
    assert!(
        String::from_utf8_lossy(&train.stderr).contains("is for inference"),
        "{}",
        String::from_utf8_lossy(&train.stderr)
    );
}

#[test]
fn eval_compares_int8_with_f32_on_the_same_texts() {
    let dir = tempfile::tempdir().unwrap();
    let merged = dir.path().join("merged");
    ok_json(&run(&[
        "export".as_ref(),
        "--model".as_ref(),
        minilm().as_os_str(),
        "--adapter".as_ref(),
        adapter().as_os_str(),
        "--out".as_ref(),
        merged.as_os_str(),
    ]));
    let data = dir.path().join("reviews.csv");
    let mut csv = String::from("text,label\n");
    for (i, t) in TEXTS.iter().cycle().take(12).enumerate() {
        csv.push_str(&format!(
            "\"{t} ({i})\",LABEL_{}\n",
            usize::from(i % 3 != 2)
        ));
    }
    std::fs::write(&data, csv).unwrap();
    let eval = |model: &Path, extra: &[&str]| {
        let mut args: Vec<&std::ffi::OsStr> = vec![
            "eval".as_ref(),
            "--saved".as_ref(),
            model.as_os_str(),
            "--data".as_ref(),
            data.as_os_str(),
        ];
        args.extend(extra.iter().map(std::ffi::OsStr::new));
        run(&args)
    };
    let v = ok_json(&eval(&merged, &["--quantize", "int8", "--compare-f32"]));
    let c = &v["compare_f32"];
    assert_eq!(c["texts"], 12);
    let agreement = c["label_agreement"].as_f64().unwrap();
    assert!(
        (0.0..=1.0).contains(&agreement) && agreement >= 11.0 / 12.0,
        "{c}"
    );
    assert!(c["max_abs_prob_diff"].as_f64().unwrap() < 0.05, "{c}");
    assert_eq!(c["f32"]["samples"], 12);
    // The f32 metrics are the model's own: eval without --quantize gives them.
    let plain = ok_json(&eval(&merged, &[]));
    assert_eq!(plain["accuracy"], c["f32"]["accuracy"]);

    // A model saved in int8 has no f32 weights to compare with.
    let int8 = dir.path().join("int8");
    ok_json(&run(&[
        "export".as_ref(),
        "--model".as_ref(),
        merged.as_os_str(),
        "--quantize".as_ref(),
        "int8".as_ref(),
        "--out".as_ref(),
        int8.as_os_str(),
    ]));
    let refused = eval(&int8, &["--quantize", "int8", "--compare-f32"]);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("no f32 weights"));
}
