//! A training process killed with SIGKILL at an arbitrary point, or stopped by Ctrl-C,
//! resumes from its last checkpoint and ends with exactly the metrics of an uninterrupted run
//! (same seed, CPU); a second run into a directory another run holds is refused, and so is a
//! checkpoint of another run, naming what differs.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use imdb_lora_metrics::{MetricsFile, RunMetrics};

/// all-MiniLM-L6-v2 in `../shared` (or `$IMDB_LORA_SHARED`); fails loudly when absent.
fn minilm() -> PathBuf {
    imdb_lora_testkit::shared::minilm_dir().unwrap_or_else(|e| panic!("{e}"))
}

fn train(out: &Path) -> Command {
    train_model(&minilm(), out)
}

fn train_model(model: &Path, out: &Path) -> Command {
    train_epochs(model, out, "2")
}

fn train_epochs(model: &Path, out: &Path, epochs: &str) -> Command {
    let data = minilm().join("../../../../datasets/stanfordnlp/imdb/resolve/main");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_imdb-lora"));
    cmd.args(["train", "--model"])
        .arg(model)
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
            epochs,
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

/// Waits (at most 5 minutes) until the run in `out` has written its last checkpoint `n`
/// times, or `child` has exited; returns how many writes were seen.
fn checkpoints_seen(out: &Path, n: usize, child: &mut std::process::Child) -> usize {
    let last = out.join("checkpoints/last.safetensors");
    let started = Instant::now();
    let mut seen = Vec::new();
    while started.elapsed() < Duration::from_secs(300) {
        if let Ok(t) = std::fs::metadata(&last).and_then(|m| m.modified())
            && !seen.contains(&t)
        {
            seen.push(t);
        }
        if seen.len() >= n || child.try_wait().unwrap().is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    seen.len()
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
    let expected = MetricsFile::read(&whole.join("metrics.json")).unwrap().run;

    // Kill once a few step checkpoints have replaced the baseline one: mid-training.
    let mut child = train(&killed).spawn().unwrap();
    let seen = checkpoints_seen(&killed, 3, &mut child);
    child.kill().ok(); // SIGKILL on Unix
    let status = child.wait().unwrap();
    assert!(seen >= 2, "the run never checkpointed past the baseline");
    assert!(
        !status.success(),
        "the run finished before it could be killed"
    );

    assert!(train(&killed).status().unwrap().success());
    let resumed = MetricsFile::read(&killed.join("metrics.json")).unwrap().run;
    assert_eq!(numbers(&resumed), numbers(&expected));
}

/// Ctrl-C (SIGINT) mid-training: the run finishes its step, writes a checkpoint, says how to
/// resume and exits with 130; the same command then ends exactly as an uninterrupted run.
#[test]
fn ctrl_c_checkpoints_says_how_to_resume_and_the_rerun_equals_an_uninterrupted_run() {
    let tmp = tempfile::tempdir().unwrap();
    let (whole, stopped) = (tmp.path().join("whole"), tmp.path().join("stopped"));
    assert!(train(&whole).status().unwrap().success());
    let expected = MetricsFile::read(&whole.join("metrics.json")).unwrap().run;

    let mut child = train(&stopped).stderr(Stdio::piped()).spawn().unwrap();
    // Once training has checkpointed past the baseline (checkpoints every step here).
    checkpoints_seen(&stopped, 2, &mut child);
    let sent = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    let result = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert_eq!(result.status.code(), Some(130), "{stderr}");
    assert!(
        stderr.contains("interrupted: stopping after the current step"),
        "{stderr}"
    );
    let said = stderr
        .lines()
        .find(|l| l.starts_with("interrupted at step "))
        .unwrap_or_else(|| panic!("no resume line: {stderr}"));
    // 48 examples in batches of 8 for 2 epochs: 12 steps; stopped before the end.
    let step: u64 = said["interrupted at step ".len()..]
        .split('/')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..12).contains(&step), "{said}");
    assert!(
        said.contains("/12 — run the same command again to resume")
            && said.contains("last.safetensors"),
        "{said}"
    );
    assert!(
        !stopped.join("model").exists(),
        "an interrupted run saved a model"
    );

    assert!(train(&stopped).status().unwrap().success());
    let resumed = MetricsFile::read(&stopped.join("metrics.json"))
        .unwrap()
        .run;
    assert_eq!(numbers(&resumed), numbers(&expected));
}

/// A finished run of one epoch goes on to two with `--resume-from`, its settings and
/// examples its own; a plain rerun with another epoch count is refused and says how.
#[test]
fn resume_from_continues_a_finished_run_to_more_epochs() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("run");
    assert!(
        train_epochs(&minilm(), &run, "1")
            .status()
            .unwrap()
            .success()
    );
    let one = MetricsFile::read(&run.join("metrics.json")).unwrap().run;
    let run_json = std::fs::read(run.join("run.json")).unwrap();

    let stderr = refused(&mut train(&run));
    assert!(
        stderr.contains("(train.epochs 1 → 2)") && stderr.contains("train --resume-from DIR"),
        "{stderr}"
    );
    assert_eq!(std::fs::read(run.join("run.json")).unwrap(), run_json);

    // The continued run saves its model into its own directory, nowhere else (it once went
    // to --out's default, ./outputs/imdb_lora, relative to wherever it ran).
    std::fs::remove_dir_all(run.join("model")).unwrap();
    let cwd = tempfile::tempdir().unwrap();
    let more = Command::new(env!("CARGO_BIN_EXE_imdb-lora"))
        .args(["train", "--resume-from"])
        .arg(&run)
        .args(["--epochs", "2"])
        .env("HF_HUB_OFFLINE", "1")
        .current_dir(cwd.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&more.stderr);
    assert!(more.status.success(), "{stderr}");
    assert!(run.join("model/adapter/adapter_model.safetensors").exists());
    assert!(
        !cwd.path().join("outputs").exists(),
        "nothing written where it ran"
    );
    // IMDb reviews are longer than 48 tokens: the log says so, once per split, as a warning.
    assert_eq!(
        stderr
            .matches("texts (100 %) are longer than --max-len 48 tokens and were cut")
            .count(),
        2,
        "{stderr}"
    );
    let two = MetricsFile::read(&run.join("metrics.json")).unwrap().run;
    assert_eq!((two.config.epochs, two.epochs.len()), (2, 2));
    // The first epoch is the one run before, untouched; the second was trained on.
    assert_eq!(numbers(&two)[..2], numbers(&one)[..]);
    let spec: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run.join("run.json")).unwrap()).unwrap();
    assert_eq!(spec["train"]["epochs"], 2);
    assert!(String::from_utf8_lossy(&more.stdout).contains("2 of 2 epochs"));
    // Options that would change the run do not go with it.
    let clash = Command::new(env!("CARGO_BIN_EXE_imdb-lora"))
        .args(["train", "--resume-from"])
        .arg(&run)
        .args(["--lr", "1e-3"])
        .output()
        .unwrap();
    assert_eq!(clash.status.code(), Some(2));
}

#[test]
fn a_second_run_into_the_same_directory_is_refused_at_once_naming_the_holder() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    // This test process plays the first run.
    let _held = imdb_lora_fsio::RunLock::acquire(&out).unwrap();
    let result = train(&out).stderr(Stdio::piped()).output().unwrap();
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert_eq!(result.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("process {}", std::process::id())),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    // Refused before the model or data were loaded: nothing written but the lock file.
    let written: Vec<_> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(
        written,
        [std::ffi::OsString::from(imdb_lora_fsio::LOCK_FILE)]
    );
}

#[test]
fn a_tokenizer_beyond_the_models_vocabulary_is_refused_before_any_work() {
    let dir = tempfile::tempdir().unwrap();
    let model = minilm_with(dir.path(), "config.json", |c| {
        c["vocab_size"] = 1000.into();
    });

    let out = dir.path().join("run");
    let stderr = refused(&mut train_model(&model, &out));
    assert!(
        stderr.contains("vocab_size") && stderr.contains("1000"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("dataset loaded"),
        "data was read first: {stderr}"
    );
    assert!(!out.join("metrics.json").exists());
}

#[test]
fn temp_files_a_killed_run_left_are_swept_by_the_next_run() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    std::fs::create_dir_all(out.join("checkpoints")).unwrap();
    // As a process killed mid-write leaves them (fsio's temp names), plus files to keep.
    let stale = [
        out.join(".metrics.json.x7Yq2b.incomplete"),
        out.join("checkpoints/.last.safetensors.Qk81Zc.incomplete"),
    ];
    let kept = out.join("checkpoints/last.safetensors.incomplete-notes");
    for f in stale.iter().chain([&kept]) {
        std::fs::write(f, b"partial").unwrap();
    }
    // A model the run refuses: the sweep happens first, under the lock.
    let model = minilm_with(dir.path(), "config.json", |c| {
        c["vocab_size"] = 1000.into();
    });
    refused(&mut train_model(&model, &out));
    for f in &stale {
        assert!(!f.exists(), "{} survived", f.display());
    }
    assert!(kept.exists());
}

/// Runs `cmd`, which must fail cleanly (exit 1, no panic); returns its stderr.
fn refused(cmd: &mut Command) -> String {
    let result = cmd.stderr(Stdio::piped()).output().unwrap();
    let stderr = String::from_utf8_lossy(&result.stderr).into_owned();
    assert_eq!(result.status.code(), Some(1), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    stderr
}

/// A copy of MiniLM (links to its files) with `edit` applied to its JSON file `file`.
fn minilm_with(dir: &Path, file: &str, edit: impl FnOnce(&mut serde_json::Value)) -> PathBuf {
    let model = dir.join("model");
    std::fs::create_dir(&model).unwrap();
    for entry in std::fs::read_dir(minilm()).unwrap() {
        let entry = entry.unwrap();
        if entry.file_name() != file {
            std::os::unix::fs::symlink(entry.path(), model.join(entry.file_name())).unwrap();
        }
    }
    let mut json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(minilm().join(file)).unwrap()).unwrap();
    edit(&mut json);
    std::fs::write(model.join(file), json.to_string()).unwrap();
    model
}

#[test]
fn a_tokenizer_with_ids_beyond_the_embedding_table_is_refused_naming_the_id() {
    let dir = tempfile::tempdir().unwrap();
    let model = minilm_with(dir.path(), "tokenizer.json", |t| {
        t["model"]["vocab"]["great"] = 90_000.into();
    });
    let out = dir.path().join("run");
    let stderr = refused(&mut train_model(&model, &out));
    assert!(
        stderr.contains("tokenizer.json") && stderr.contains("token id 90000"),
        "{stderr}"
    );
    assert!(!out.join("metrics.json").exists());

    // The same model through predict (the library's Predictor) is refused the same way.
    let adapter = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/peft/minilm/adapter");
    let stderr = refused(
        Command::new(env!("CARGO_BIN_EXE_imdb-lora"))
            .args(["predict", "--model"])
            .arg(&model)
            .arg("--adapter")
            .arg(&adapter)
            .arg("a great film"),
    );
    assert!(stderr.contains("token id 90000"), "{stderr}");
}

#[test]
fn a_tokenizer_with_type_ids_beyond_the_type_table_is_refused_naming_the_id() {
    let dir = tempfile::tempdir().unwrap();
    let model = minilm_with(dir.path(), "tokenizer.json", |t| {
        t["post_processor"]["single"][1]["Sequence"]["type_id"] = 5.into();
    });
    let out = dir.path().join("run");
    let stderr = refused(&mut train_model(&model, &out));
    assert!(
        stderr.contains("token type id 5") && stderr.contains("type_vocab_size is 2"),
        "{stderr}"
    );
    assert!(!out.join("metrics.json").exists());
}

#[test]
fn a_checkpoint_made_on_other_base_weights_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    // A MiniLM whose weights file is a real copy, so it can be changed afterwards.
    let model = minilm_with(dir.path(), "config.json", |_| {});
    let weights = model.join("model.safetensors");
    std::fs::remove_file(&weights).unwrap();
    std::fs::copy(minilm().join("model.safetensors"), &weights).unwrap();
    let out = dir.path().join("run");
    // Stop after one step: a resumable checkpoint.
    let status = train_model(&model, &out)
        .args(["--stop-after-steps", "1"])
        .status()
        .unwrap();
    assert!(status.success());
    assert!(out.join("checkpoints/last.safetensors").is_file());

    // The same model name, other weights (the last byte of the last tensor's data).
    let mut bytes = std::fs::read(&weights).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x01;
    std::fs::write(&weights, bytes).unwrap();
    let checkpoint = std::fs::read(out.join("checkpoints/last.safetensors")).unwrap();
    let stderr = refused(&mut train_model(&model, &out));
    assert!(stderr.contains("model_sha256 \""), "{stderr}");
    // Nothing already written is lost.
    assert_eq!(
        std::fs::read(out.join("checkpoints/last.safetensors")).unwrap(),
        checkpoint
    );
}
