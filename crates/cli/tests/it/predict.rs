//! `imdb-lora predict` as a user runs it: MiniLM + an adapter written by PEFT, texts from the
//! arguments or stdin, a JSON array on stdout in input order; a missing model directory is a
//! clean error naming the path.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

pub(crate) fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// all-MiniLM-L6-v2 in `../shared` (or `$IMDB_LORA_SHARED`); fails loudly when absent.
pub(crate) fn minilm() -> PathBuf {
    imdb_lora_testkit::shared::minilm_dir().unwrap_or_else(|e| panic!("{e}"))
}

pub(crate) fn adapter() -> PathBuf {
    repo().join("fixtures/peft/minilm/adapter")
}

fn predict(args: &[&str], stdin: Option<&str>) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_imdb-lora"));
    cmd.arg("predict")
        .args(["--model".as_ref(), minilm().as_os_str()])
        .args(["--adapter".as_ref(), adapter().as_os_str()])
        .args(args)
        // Never reach for the network from a test.
        .env("HF_HUB_OFFLINE", "1")
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    if let Some(text) = stdin {
        child
            .stdin
            .take()
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
    }
    child.wait_with_output().unwrap()
}

fn parse(out: &Output) -> Vec<serde_json::Value> {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "exit {:?}: {stderr}", out.status);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    });
    v.as_array().unwrap().clone()
}

/// PEFT's logits for the first two fixture sentences, as softmax probabilities.
fn peft_probs() -> Vec<(f64, f64)> {
    let bytes = std::fs::read(repo().join("fixtures/peft/minilm/expected.safetensors")).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let logits: Vec<f64> = st
        .tensor("logits")
        .unwrap()
        .data()
        .chunks_exact(4)
        .map(|c| f64::from(f32::from_le_bytes(c.try_into().unwrap())))
        .collect();
    logits
        .chunks_exact(2)
        .map(|l| {
            let (e0, e1) = (l[0].exp(), l[1].exp());
            (e0 / (e0 + e1), e1 / (e0 + e1))
        })
        .collect()
}

const TEXTS: [&str; 2] = [
    "A great movie.",
    "The plot was predictable, but the acting was strong enough to keep me watching until the end.",
];

/// `order[i]` is the index in [`TEXTS`] (and in PEFT's logits) of the i-th text given.
fn check(preds: &[serde_json::Value], order: &[usize]) {
    assert_eq!(preds.len(), order.len());
    let want = peft_probs();
    for (p, &i) in preds.iter().zip(order) {
        let text = TEXTS[i];
        let obj = p.as_object().unwrap();
        let mut keys: Vec<&str> = obj.keys().map(String::as_str).collect();
        keys.sort();
        assert_eq!(
            keys,
            ["label", "neg_prob", "pos_prob", "probs", "score", "text"]
        );
        assert_eq!(p["text"], text, "input order");
        let (neg, pos) = (
            p["neg_prob"].as_f64().unwrap(),
            p["pos_prob"].as_f64().unwrap(),
        );
        assert!((neg + pos - 1.0).abs() < 1e-9, "{p}");
        assert_eq!(p["label"], if pos > neg { "pos" } else { "neg" });
        // The shape every model shares: the predicted class's score, every class's probability.
        assert_eq!(p["score"].as_f64().unwrap(), neg.max(pos));
        assert_eq!(
            (p["probs"]["neg"].as_f64(), p["probs"]["pos"].as_f64()),
            (Some(neg), Some(pos))
        );
        assert!(
            (neg - want[i].0).abs() < 1e-4 && (pos - want[i].1).abs() < 1e-4,
            "{p} vs PEFT {:?}",
            want[i]
        );
    }
}

#[test]
fn predicts_texts_from_arguments_in_order_with_peft_probabilities() {
    let out = predict(&["--max-len", "64", TEXTS[0], TEXTS[1]], None);
    check(&parse(&out), &[0, 1]);
    // Logs go to stderr only; stdout is exactly the JSON array.
    assert!(
        String::from_utf8_lossy(&out.stdout)
            .trim_start()
            .starts_with('[')
    );
}

#[test]
fn reads_one_text_per_line_from_stdin() {
    let out = predict(
        &["--batch-size", "1"],
        Some(&format!("{}\r\n{}\n", TEXTS[1], TEXTS[0])),
    );
    check(&parse(&out), &[1, 0]);
}

/// `--jsonl`: one compact object per line, written as each batch finishes (batches of one
/// here), the same predictions as the array.
#[test]
fn jsonl_writes_one_prediction_per_line() {
    let out = predict(
        &["--jsonl", "--batch-size", "1"],
        Some(&format!("{}\n{}\n", TEXTS[0], TEXTS[1])),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    check(&lines, &[0, 1]);
}

#[test]
fn missing_model_directory_is_a_clean_error_naming_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such-model");
    let out = Command::new(env!("CARGO_BIN_EXE_imdb-lora"))
        .args(["predict", "--model"])
        .arg(&missing)
        .arg("some text")
        .env("HF_HUB_OFFLINE", "1")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains(&missing.display().to_string()), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(out.stdout.is_empty());
}
