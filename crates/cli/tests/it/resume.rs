//! A training process killed with SIGKILL at an arbitrary point resumes from its last
//! checkpoint and ends with exactly the metrics of an uninterrupted run (same seed, CPU).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use metrics::RunMetrics;

/// all-MiniLM-L6-v2 in `../shared` (or `$IMDB_LORA_SHARED`); fails loudly when absent.
fn minilm() -> PathBuf {
    testkit::shared::minilm_dir().unwrap_or_else(|e| panic!("{e}"))
}

fn train(out: &Path) -> Command {
    let model = minilm();
    let data = model.join("../../../../datasets/stanfordnlp/imdb/resolve/main");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_imdb-lora"));
    cmd.args(["train", "--model"])
        .arg(&model)
        .arg("--data")
        .arg(&data)
        .args([
            "--train-n",
            "48",
            "--test-n",
            "32",
            "--max-len",
            "48",
            "--epochs",
            "2",
        ])
        .args([
            "--batch-size",
            "8",
            "--checkpoint-every",
            "1",
            "--seed",
            "5",
            "--out",
        ])
        .arg(out)
        .env("HF_HUB_OFFLINE", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    cmd
}

/// Everything but wall-clock timings.
fn numbers(m: &RunMetrics) -> Vec<(f64, f64, f64)> {
    std::iter::once((0.0, m.baseline.accuracy, m.baseline.loss))
        .chain(
            m.epochs
                .iter()
                .map(|e| (e.train_loss, e.eval.accuracy, e.eval.loss)),
        )
        .collect()
}

#[test]
fn sigkill_mid_run_then_resume_equals_uninterrupted_run() {
    let tmp = tempfile::tempdir().unwrap();
    let (whole, killed) = (tmp.path().join("whole"), tmp.path().join("killed"));
    assert!(train(&whole).status().unwrap().success());
    let expected = RunMetrics::read(&whole.join("metrics.json")).unwrap();

    // Kill once a few step checkpoints have replaced the baseline one: mid-training.
    let mut child = train(&killed).spawn().unwrap();
    let last = killed.join("checkpoints/last.safetensors");
    let started = Instant::now();
    let mut seen = Vec::new();
    while started.elapsed() < Duration::from_secs(300) {
        if let Ok(t) = std::fs::metadata(&last).and_then(|m| m.modified())
            && !seen.contains(&t)
        {
            seen.push(t);
        }
        if seen.len() >= 3 || child.try_wait().unwrap().is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().ok(); // SIGKILL on Unix
    let status = child.wait().unwrap();
    assert!(
        seen.len() >= 2,
        "the run never checkpointed past the baseline"
    );
    assert!(
        !status.success(),
        "the run finished before it could be killed"
    );

    assert!(train(&killed).status().unwrap().success());
    let resumed = RunMetrics::read(&killed.join("metrics.json")).unwrap();
    assert_eq!(numbers(&resumed), numbers(&expected));
}
