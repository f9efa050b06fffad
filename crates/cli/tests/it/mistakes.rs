//! The common mistakes, as a new user makes them, and the one line each gets: every cause said
//! once, files called files, a path that is not there never silently taken for a Hub id (and
//! said so when a repository id-shaped name was taken for one). Messages asserted verbatim:
//! they are the point.

use std::path::{Path, PathBuf};
use std::process::Command;

fn minilm() -> PathBuf {
    imdb_lora_testkit::shared::minilm_dir().unwrap_or_else(|e| panic!("{e}"))
}

/// Runs `imdb-lora args` offline with its own empty Hugging Face cache, expects exit status 1
/// and returns stderr's last line.
fn error_line(hf_home: &Path, args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_imdb-lora"))
        .args(args)
        .env("HF_HUB_OFFLINE", "1")
        .env("HF_HOME", hf_home)
        .env_remove("SMALL_RUN")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    stderr.lines().last().unwrap_or_default().to_owned()
}

#[test]
fn completions_are_printed_for_each_shell() {
    for (shell, marker) in [
        ("bash", "_imdb__lora()"),
        ("zsh", "#compdef imdb-lora"),
        ("fish", "complete -c imdb-lora"),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_imdb-lora"))
            .args(["completions", shell])
            .output()
            .unwrap();
        let script = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{shell}");
        assert!(script.contains(marker), "{shell}: {script}");
        assert!(script.contains("resume-from"), "{shell}: train's options");
    }
}

#[test]
fn common_mistakes_get_one_clear_line_each() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let hf = d.join("hf");
    let model = minilm();
    let model = model.to_str().unwrap();
    let csv = d.join("reviews.csv");
    std::fs::write(&csv, "text,label\ngood,1\nbad,0\nfine,1\nawful,0\n").unwrap();
    let csv = csv.to_str().unwrap();
    let out = d.join("run");
    let out = out.to_str().unwrap();
    let train = |extra: &[&str]| {
        let mut args = vec!["train", "--test-fraction", "0.5", "--out", out];
        args.extend(extra);
        error_line(&hf, &args)
    };
    let not_here = "no such file or directory; it looks like a local path, so it was not taken \
                    as a Hub repository id";

    // A model directory that is not there.
    let missing = d.join("no/such/model");
    let missing = missing.to_str().unwrap();
    assert_eq!(
        train(&["--model", missing, "--data", csv]),
        format!("error: {missing}: {not_here}")
    );
    // A model given as one of its files.
    let config = format!("{model}/config.json");
    assert_eq!(
        train(&["--model", &config, "--data", csv]),
        format!(
            "error: {config}: a file, not a directory; it looks like a local path, so it was \
             not taken as a Hub repository id"
        )
    );
    // A data file that is not there.
    let no_data = d.join("missing.csv");
    let no_data = no_data.to_str().unwrap();
    assert_eq!(
        train(&["--model", model, "--data", no_data]),
        format!("error: {no_data}: {not_here}")
    );
    // A relative name with one slash is a Hub id; offline and not cached, it says so.
    assert_eq!(
        train(&["--model", model, "--data", "data/imdb"]),
        format!(
            "error: --data data/imdb: not a file or directory here, so it was taken as a Hub \
             dataset id: the file list of dataset data/imdb@main is not in the Hugging Face \
             cache {}/hub and offline mode is on (HF_HUB_OFFLINE or the offline flag)",
            hf.display()
        )
    );
    // A column that is not there.
    assert_eq!(
        train(&[
            "--model",
            model,
            "--data",
            csv,
            "--text-column",
            "review_text"
        ]),
        format!("error: {csv}: no column \"review_text\"; columns found: \"text\", \"label\"")
    );
    // --out is a file.
    let notes = d.join("notes.txt");
    std::fs::write(&notes, "notes").unwrap();
    let notes = notes.to_str().unwrap();
    assert_eq!(
        error_line(
            &hf,
            &["train", "--model", model, "--data", csv, "--out", notes]
        ),
        format!(
            "error: {notes}: not a directory (a file is there); choose another output directory"
        )
    );
    assert_eq!(std::fs::read_to_string(notes).unwrap(), "notes");
    // A training size given to eval, which reads the test part only.
    assert_eq!(
        error_line(
            &hf,
            &["eval", "--saved", model, "--data", csv, "--train-n", "5"]
        ),
        "error: --train-n does not apply to eval, which evaluates the test part (--test-n \
         sizes it)"
    );
    // plot without a metrics.json.
    let metrics = d.join("nope/metrics.json");
    assert_eq!(
        error_line(
            &hf,
            &[
                "plot",
                "--metrics",
                metrics.to_str().unwrap(),
                "--out",
                d.to_str().unwrap()
            ]
        ),
        format!(
            "error: cannot read metrics file {}: No such file or directory (os error 2)",
            metrics.display()
        )
    );
}

/// Nothing on stdin: a warning saying so, an empty array (valid JSON), success.
#[test]
fn predict_with_nothing_on_stdin_says_so() {
    let model =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/families/roberta/seqcls");
    let out = Command::new(env!("CARGO_BIN_EXE_imdb-lora"))
        .args(["predict", "--model"])
        .arg(&model)
        .env("HF_HUB_OFFLINE", "1")
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "[]\n");
    assert!(
        stderr.lines().next() == Some("warning: no texts to classify"),
        "{stderr}"
    );
}
