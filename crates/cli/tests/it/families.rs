//! Every encoder family through the binary, as a user runs it: a tiny random checkpoint of
//! each (`fixtures/families/*/bare`, no head) fine-tuned on a slice of AG News, evaluated, and
//! predicted with; the saved model directory is of the family's own class, with its tokenizer,
//! and the adapter names the family's default LoRA targets.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

fn family(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures")
        .join(name)
        .join("bare")
}

fn imdb_lora(args: &[&str]) -> Output {
    let out = Command::new(env!("CARGO_BIN_EXE_imdb-lora"))
        .args(args)
        .env("HF_HUB_OFFLINE", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{args:?}: exit {:?}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn json(path: &std::path::Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(path).unwrap())
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn every_family_trains_saves_its_own_class_and_predicts() {
    let ag_news = imdb_lora_testkit::shared::ag_news_dir()
        .unwrap_or_else(|e| panic!("{e}"))
        .join("test.csv");
    // DeBERTa's pooler and ModernBERT's head.dense are not in a bare checkpoint: drawn fresh,
    // they are trained and saved with the adapter here (`--modules-to-save`), so the adapter
    // alone reproduces the run (PEFT's default would leave them frozen at the draw).
    let none: &[&str] = &[];
    for (name, architecture, targets, extra) in [
        (
            "families/roberta",
            "RobertaForSequenceClassification",
            &["query", "value"][..],
            none,
        ),
        (
            "families/xlm-roberta",
            "XLMRobertaForSequenceClassification",
            &["query", "value"],
            none,
        ),
        (
            "families/electra",
            "ElectraForSequenceClassification",
            &["query", "value"],
            none,
        ),
        (
            "families/distilbert",
            "DistilBertForSequenceClassification",
            &["q_lin", "v_lin"],
            none,
        ),
        (
            "modern/deberta-v2",
            "DebertaV2ForSequenceClassification",
            &["query_proj", "value_proj"],
            &["--modules-to-save", "classifier,pooler"][..],
        ),
        (
            "modern/modernbert",
            "ModernBertForSequenceClassification",
            &["Wqkv"],
            &["--modules-to-save", "classifier,head"],
        ),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("run");
        let model = family(name);
        let mut args = vec![
            "train",
            "--model",
            model.to_str().unwrap(),
            "--data",
            ag_news.to_str().unwrap(),
            "--text-column",
            "2,3",
            "--label-column",
            "1",
            "--test-fraction",
            "0.2",
            "--train-n",
            "32",
            "--test-n",
            "16",
            "--max-len",
            "24",
            "--epochs",
            "1",
            "--out",
            out.to_str().unwrap(),
        ];
        args.extend(extra);
        imdb_lora(&args);
        let saved = out.join("model");
        let config = json(&saved.join("config.json"));
        assert_eq!(config["architectures"][0], architecture, "{name}");
        assert_eq!(config["id2label"]["1"], "Sports", "{name}");
        assert!(saved.join("tokenizer.json").is_file(), "{name}");
        let adapter = json(&saved.join("adapter/adapter_config.json"));
        assert_eq!(
            adapter["target_modules"],
            serde_json::json!(targets),
            "{name}"
        );
        let metrics = json(&out.join("metrics.json"));
        assert_eq!(metrics["epochs"].as_array().unwrap().len(), 1, "{name}");

        let predicted = imdb_lora(&[
            "predict",
            "--model",
            saved.to_str().unwrap(),
            "Stocks rallied as the Fed cut rates",
        ]);
        let results: serde_json::Value = serde_json::from_slice(&predicted.stdout).unwrap();
        let probs = results[0]["probs"].as_object().unwrap();
        assert_eq!(probs.len(), 4, "{name}");
        let sum: f64 = probs.values().map(|p| p.as_f64().unwrap()).sum();
        assert!((sum - 1.0).abs() < 1e-6, "{name}: {sum}");
        // The base model with the adapter predicts what the merged model does.
        let with_adapter = imdb_lora(&[
            "predict",
            "--model",
            model.to_str().unwrap(),
            "--adapter",
            saved.join("adapter").to_str().unwrap(),
            "Stocks rallied as the Fed cut rates",
        ]);
        let again: serde_json::Value = serde_json::from_slice(&with_adapter.stdout).unwrap();
        // A PEFT adapter carries no class names; the saved model's config.json beside it
        // (the run layout, `model/adapter/`) gives them.
        for (label, p) in probs {
            let q = again[0]["probs"][label].as_f64().unwrap();
            assert!(
                (p.as_f64().unwrap() - q).abs() < 1e-5,
                "{name} {label}: {p} vs {q}"
            );
        }
    }
}
