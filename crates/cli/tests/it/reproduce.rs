//! End to end, as a newcomer runs it: download through a loopback Hub mirror of
//! `../shared/hub`, baseline, fine-tune, evaluate the saved model, plot, predict — on a tiny
//! slice of the real IMDb data with the real all-MiniLM-L6-v2 — then check every artifact.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use imdb_lora_hub_mirror::HubMirror;
use imdb_lora_metrics::{EvalMetrics, MetricsFile};

const MODEL: &str = "sentence-transformers/all-MiniLM-L6-v2";

/// `../shared/hub` (or `$IMDB_LORA_SHARED/hub`); fails loudly when absent.
fn shared_hub() -> PathBuf {
    imdb_lora_testkit::shared::hub_root().unwrap_or_else(|e| panic!("{e}"))
}

struct Env {
    endpoint: String,
    hf_home: PathBuf,
}

impl Env {
    fn run(&self, args: &[&str]) -> Output {
        let out = Command::new(env!("CARGO_BIN_EXE_imdb-lora"))
            .args(args)
            .env("HF_ENDPOINT", &self.endpoint)
            .env("HF_HOME", &self.hf_home)
            .env_remove("HF_HUB_OFFLINE")
            .env_remove("SMALL_RUN")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "imdb-lora {args:?} failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }
}

fn slice_args(out: &Path) -> Vec<String> {
    [
        "--model",
        MODEL,
        "--train-n",
        "64",
        "--test-n",
        "64",
        "--max-len",
        "64",
        "--seed",
        "7",
    ]
    .iter()
    .map(|s| s.to_string())
    .chain(["--out".to_string(), out.display().to_string()])
    .collect()
}

fn png_size(path: &Path) -> (u32, u32) {
    let bytes = std::fs::read(path).unwrap();
    assert_eq!(
        &bytes[..8],
        b"\x89PNG\r\n\x1a\n",
        "{} is not a PNG",
        path.display()
    );
    assert!(
        bytes.len() > 20_000,
        "{} is suspiciously small",
        path.display()
    );
    let be = |i: usize| u32::from_be_bytes(bytes[i..i + 4].try_into().unwrap());
    (be(16), be(20))
}

#[test]
fn reproduce_on_a_tiny_slice_through_the_hub_mirror() {
    let mirror = HubMirror::start(&shared_hub()).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let env = Env {
        endpoint: mirror.endpoint(),
        hf_home: tmp.path().join("hf"),
    };
    let out = tmp.path().join("run");
    let out_s = out.display().to_string();

    env.run(&["download", "--model", MODEL]);
    assert!(
        env.hf_home
            .join("hub/models--sentence-transformers--all-MiniLM-L6-v2")
            .is_dir()
    );
    assert!(env.hf_home.join("hub/datasets--stanfordnlp--imdb").is_dir());

    let mut train: Vec<String> = vec!["train".into()];
    train.extend(slice_args(&out));
    train.extend(["--epochs", "1", "--batch-size", "16"].map(String::from));
    let train: Vec<&str> = train.iter().map(String::as_str).collect();
    // Baseline only first (what `cargo xtask baseline` runs), then the fine-tune resumes.
    let mut baseline = train.clone();
    baseline.extend(["--stop-after-steps", "0"]);
    env.run(&baseline);
    let partial = MetricsFile::read(&out.join("metrics.json")).unwrap().run;
    assert!(partial.epochs.is_empty());
    env.run(&train);

    let m = MetricsFile::read(&out.join("metrics.json")).unwrap().run;
    assert_eq!(
        (m.config.train_n, m.config.test_n, m.epochs.len()),
        (64, 64, 1)
    );
    assert_eq!(m.baseline.accuracy, partial.baseline.accuracy);
    assert_eq!(m.trainable_params, 74_498);
    assert_eq!(m.baseline.confusion.total(), 64);

    // The saved model reproduces the final evaluation (merging changes only rounding).
    let eval_json = out.join("eval.json");
    let eval_s = eval_json.display().to_string();
    let saved = out.join("model");
    let saved_s = saved.display().to_string();
    let mut eval: Vec<&str> = vec!["eval", "--saved", &saved_s, "--out", &eval_s];
    eval.extend(["--test-n", "64", "--max-len", "64", "--seed", "7"]);
    env.run(&eval);
    // The headline numbers, then IMDb's classes as any run's: neg and pos.
    let mut v: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&eval_json).unwrap()).unwrap();
    let classes = v.as_object_mut().unwrap().remove("classes").unwrap();
    assert_eq!(classes["per_class"][0]["name"], "neg");
    assert_eq!(classes["per_class"][1]["name"], "pos");
    let e: EvalMetrics = serde_json::from_value(v).unwrap();
    let last = m.final_epoch().unwrap();
    assert_eq!(e.samples, 64);
    assert!(
        (e.accuracy - last.eval.accuracy).abs() <= 1.0 / 64.0,
        "{} vs {}",
        e.accuracy,
        last.eval.accuracy
    );

    let config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(saved.join("config.json")).unwrap()).unwrap();
    assert_eq!(config["id2label"]["1"], "pos");
    assert_eq!(config["architectures"][0], "BertForSequenceClassification");
    assert!(saved.join("tokenizer.json").is_file() || saved.join("vocab.txt").is_file());
    let adapter_cfg: serde_json::Value =
        serde_json::from_slice(&std::fs::read(saved.join("adapter/adapter_config.json")).unwrap())
            .unwrap();
    assert_eq!(
        (adapter_cfg["peft_type"].as_str(), adapter_cfg["r"].as_u64()),
        (Some("LORA"), Some(8))
    );
    let bytes = std::fs::read(saved.join("adapter/adapter_model.safetensors")).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    assert_eq!(st.len(), 6 * 2 * 2 + 2);
    assert!(
        st.names()
            .iter()
            .all(|k| k.starts_with("base_model.model."))
    );

    env.run(&[
        "plot",
        "--metrics",
        &format!("{out_s}/metrics.json"),
        "--out",
        &out_s,
    ]);
    for chart in ["bar_chart", "line_chart"] {
        assert_eq!(
            png_size(&out.join(format!("images/{chart}.png"))),
            (1000, 600)
        );
        let svg = std::fs::read_to_string(out.join(format!("images/{chart}.svg"))).unwrap();
        assert!(svg.contains("<svg"));
    }
    let report = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(
        report.contains("images/bar_chart.png") && report.contains(MODEL),
        "{report}"
    );

    // Saved model, and base model + our PEFT adapter, predict the same.
    let texts = [
        "An absolute delight, I loved every minute.",
        "Dull, badly acted and far too long.",
    ];
    let predict = |extra: &[&str]| -> serde_json::Value {
        let mut args = vec!["predict"];
        args.extend_from_slice(extra);
        args.extend_from_slice(&texts);
        serde_json::from_slice(&env.run(&args).stdout).unwrap()
    };
    let a = predict(&["--model", &saved_s]);
    let adapter_s = saved.join("adapter").display().to_string();
    let b = predict(&["--model", MODEL, "--adapter", &adapter_s]);
    for (i, text) in texts.iter().enumerate() {
        assert_eq!(a[i]["text"], *text);
        let (neg, pos) = (
            a[i]["neg_prob"].as_f64().unwrap(),
            a[i]["pos_prob"].as_f64().unwrap(),
        );
        assert!((neg + pos - 1.0).abs() < 1e-6);
        assert_eq!(a[i]["label"], if pos > neg { "pos" } else { "neg" });
        assert!(
            (pos - b[i]["pos_prob"].as_f64().unwrap()).abs() < 1e-4,
            "{a} vs {b}"
        );
    }

    // Running the fine-tune again finds the finished checkpoint and changes nothing.
    env.run(&train);
    assert_eq!(
        MetricsFile::read(&out.join("metrics.json"))
            .unwrap()
            .run
            .epochs,
        m.epochs
    );
}
