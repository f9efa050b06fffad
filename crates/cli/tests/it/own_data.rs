//! Your own data through the binary, as a user runs it: AG News (a headerless CSV, 4 classes
//! numbered 1–4, names in classes.txt, title + description as the text, no test split) is
//! trained on, evaluated, plotted, saved with its class names and predicted with; bad data is
//! a clean error naming the file and what was expected.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

const CLASSES: [&str; 4] = ["World", "Sports", "Business", "Sci/Tech"];

fn minilm() -> PathBuf {
    imdb_lora_testkit::shared::minilm_dir().unwrap_or_else(|e| panic!("{e}"))
}

fn ag_news() -> PathBuf {
    imdb_lora_testkit::shared::ag_news_dir()
        .unwrap_or_else(|e| panic!("{e}"))
        .join("test.csv")
}

fn imdb_lora(args: &[&std::ffi::OsStr]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_imdb-lora"))
        .args(args)
        .env("HF_HUB_OFFLINE", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .unwrap()
}

fn ok(out: &Output) -> &Output {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "exit {:?}: {stderr}", out.status);
    out
}

/// The data options of every command below: a small stratified slice of AG News.
fn data_args(data: &Path) -> Vec<std::ffi::OsString> {
    let mut args: Vec<std::ffi::OsString> = vec!["--data".into(), data.as_os_str().to_owned()];
    for a in [
        "--text-column",
        "2,3",
        "--label-column",
        "1",
        "--test-fraction",
        "0.2",
        "--train-n",
        "64",
        "--test-n",
        "32",
        "--max-len",
        "48",
        "--seed",
        "7",
    ] {
        args.push(a.into());
    }
    args
}

fn os(args: &[std::ffi::OsString]) -> Vec<&std::ffi::OsStr> {
    args.iter().map(|a| a.as_os_str()).collect()
}

fn json(path: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(path).unwrap())
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn ag_news_trains_evaluates_plots_saves_names_and_predicts() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let mut train: Vec<std::ffi::OsString> =
        vec!["train".into(), "--model".into(), minilm().into()];
    train.extend(data_args(&ag_news()));
    for a in [
        "--epochs",
        "1",
        "--batch-size",
        "16",
        "--lr",
        "1e-3",
        "--out",
    ] {
        train.push(a.into());
    }
    train.push(out.clone().into());
    let trained = imdb_lora(&os(&train));
    ok(&trained);
    // The summary on stdout: before → after, and where every file is.
    let summary = String::from_utf8_lossy(&trained.stdout);
    let lines: Vec<&str> = summary.lines().collect();
    assert_eq!(lines.len(), 6, "{summary}");
    assert!(
        lines[0].contains("(4 classes: World, Sports, Business, Sci/Tech): 1 of 1 epochs, 64 training / 32 test examples"),
        "{summary}"
    );
    assert!(
        lines[1].starts_with("  accuracy  ") && lines[1].contains(" → "),
        "{summary}"
    );
    assert!(lines[2].starts_with("  macro-F1  "), "{summary}");
    for (line, path) in lines[3..]
        .iter()
        .zip(["metrics.json", "model", "report.md"])
    {
        assert!(
            line.contains(&out.join(path).display().to_string()),
            "{summary}"
        );
    }
    // The report is rendered by train itself; the stderr log names classes, not indices.
    assert!(out.join("report.md").is_file() && out.join("images/bar_chart.png").is_file());
    let log = String::from_utf8_lossy(&trained.stderr);
    assert!(
        log.contains("train: 64 examples (World 16, Sports 16, Business 16, Sci/Tech 16)"),
        "{log}"
    );

    // metrics.json: schema 2, the four named classes, every test example in each matrix.
    let metrics = imdb_lora_metrics::MetricsFile::read(&out.join("metrics.json")).unwrap();
    assert_eq!(
        metrics.run.schema_version,
        imdb_lora_metrics::SCHEMA_VERSION
    );
    let classes = &metrics.classes;
    assert_eq!(classes.names().collect::<Vec<_>>(), CLASSES);
    assert_eq!(
        (metrics.run.config.train_n, metrics.run.config.test_n),
        (64, 32)
    );
    let last = classes.final_epoch().unwrap();
    assert_eq!(last.confusion.iter().flatten().sum::<u64>(), 32);
    assert!(
        last.per_class.iter().all(|c| c.support == 8),
        "stratified: 8 per class"
    );

    // split.json names the rows of the CSV each part used, with the raw labels of the classes.
    let split = json(&out.join("split.json"));
    assert_eq!(split["raw_labels"], serde_json::json!(["1", "2", "3", "4"]));
    assert_eq!(split["classes"], serde_json::json!(CLASSES));
    let rows = |key: &str| -> Vec<u64> {
        split[key]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap())
            .collect()
    };
    let (train_rows, test_rows) = (rows("train_rows"), rows("test_rows"));
    assert_eq!((train_rows.len(), test_rows.len()), (64, 32));
    assert!(
        train_rows.iter().all(|r| !test_rows.contains(r)),
        "train and test are disjoint"
    );

    // The saved model carries the class names, as transformers reads them.
    let config = json(&out.join("model/config.json"));
    for (i, name) in CLASSES.iter().enumerate() {
        assert_eq!(config["id2label"][i.to_string()], *name);
        assert_eq!(config["label2id"][*name], i);
    }

    // eval of the saved model on the same test part gives the run's last numbers.
    let eval_out = dir.path().join("eval.json");
    let mut eval: Vec<std::ffi::OsString> = vec!["eval".into()];
    // The same options as train's but the training size, which eval refuses (it reads the
    // test part only).
    let mut same = data_args(&ag_news()).into_iter();
    while let Some(arg) = same.next() {
        match arg.to_str() {
            Some("--train-n") => {
                same.next();
            }
            _ => eval.push(arg),
        }
    }
    eval.extend(["--saved".into(), out.join("model").into()]);
    eval.extend(["--out".into(), eval_out.clone().into()]);
    ok(&imdb_lora(&os(&eval)));
    let e = json(&eval_out);
    let final_run = metrics.run.final_epoch().unwrap();
    assert!((e["accuracy"].as_f64().unwrap() - final_run.eval.accuracy).abs() < 1e-9);
    assert_eq!(e["classes"]["per_class"][3]["name"], "Sci/Tech");

    // `eval RUN_DIR` needs none of those options: the run's split.json has the test rows of
    // the headerless CSV (columns 2,3 and 1, a held-out fraction), metrics.json its max_len.
    let by_run = imdb_lora(&os(&["eval".into(), out.clone().into()]));
    ok(&by_run);
    let r: serde_json::Value = serde_json::from_slice(&by_run.stdout).unwrap();
    assert_eq!(r["samples"], e["samples"]);
    assert_eq!(r["accuracy"], e["accuracy"]);
    assert_eq!(r["classes"]["confusion"], e["classes"]["confusion"]);
    // Any labelled file on its own, in whole: its string labels read as the model's classes
    // (in the model's order, whatever order the file has them in).
    let lone = dir.path().join("lone.csv");
    std::fs::write(
        &lone,
        "text,label\nStocks fall,Business\nNew chip,Sci/Tech\nCup final,Sports\nSummit ends,World\nRates up,Business\n",
    )
    .unwrap();
    let on_file = imdb_lora(&os(&[
        "eval".into(),
        "--saved".into(),
        out.join("model").into(),
        "--data".into(),
        lone.clone().into(),
        "--max-len".into(),
        "48".into(),
    ]));
    ok(&on_file);
    let f: serde_json::Value = serde_json::from_slice(&on_file.stdout).unwrap();
    assert_eq!(f["samples"], 5);
    let supports: Vec<u64> = (0..4)
        .map(|i| f["classes"]["per_class"][i]["support"].as_u64().unwrap())
        .collect();
    // World, Sports, Business, Sci/Tech.
    assert_eq!(supports, [1, 1, 2, 1]);

    // Data options do not apply to a run directory: an error, not silently ignored.
    let refused = imdb_lora(&os(&[
        "eval".into(),
        out.clone().into(),
        "--train-n".into(),
        "5".into(),
    ]));
    assert_eq!(refused.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&refused.stderr)
            .contains("the argument '[RUN_DIR]' cannot be used with '--train-n <TRAIN_N>'")
    );

    // plot draws the per-class charts and names the classes in the report.
    let report_dir = dir.path().join("report");
    ok(&imdb_lora(&os(&[
        "plot".into(),
        "--metrics".into(),
        out.join("metrics.json").into(),
        "--out".into(),
        report_dir.clone().into(),
    ])));
    for stem in [
        "class_f1_chart",
        "confusion_heatmap",
        "bar_chart",
        "line_chart",
    ] {
        assert!(
            report_dir.join(format!("images/{stem}.png")).is_file(),
            "{stem}"
        );
    }
    let report = std::fs::read_to_string(report_dir.join("report.md")).unwrap();
    assert!(CLASSES.iter().all(|c| report.contains(c)), "{report}");

    // predict names the classes and gives every class's probability.
    let predicted = ok(&imdb_lora(&os(&[
        "predict".into(),
        "--model".into(),
        out.join("model").into(),
        "Stocks rallied as the central bank cut interest rates".into(),
    ])))
    .stdout
    .clone();
    let p: serde_json::Value = serde_json::from_slice(&predicted).unwrap();
    let p = &p[0];
    assert!(CLASSES.contains(&p["label"].as_str().unwrap()), "{p}");
    let probs = p["probs"].as_object().unwrap();
    assert_eq!(probs.len(), 4);
    // In class order on stdout (serde_json's map here sorts keys, so look at the text).
    let text = String::from_utf8_lossy(&predicted);
    let at: Vec<usize> = CLASSES
        .iter()
        .map(|c| text.find(&format!("\"{c}\":")).unwrap())
        .collect();
    assert!(at.windows(2).all(|w| w[0] < w[1]), "{text}");
    let sum: f64 = probs.values().map(|v| v.as_f64().unwrap()).sum();
    assert!((sum - 1.0).abs() < 1e-9, "{p}");
}

/// Runs `train` on `data` with `extra` options; it must fail cleanly. Returns stderr.
fn refused(data: &Path, extra: &[&str], out: &Path) -> String {
    let mut args: Vec<std::ffi::OsString> = vec!["train".into(), "--model".into(), minilm().into()];
    args.extend(["--data".into(), data.as_os_str().to_owned()]);
    args.extend(extra.iter().map(Into::into));
    args.extend(["--out".into(), out.as_os_str().to_owned()]);
    let result = imdb_lora(&os(&args));
    let stderr = String::from_utf8_lossy(&result.stderr).into_owned();
    assert_eq!(result.status.code(), Some(1), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    stderr
}

#[test]
fn bad_data_is_refused_naming_the_file_and_what_was_expected() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    // No such column: the message lists the columns the file has.
    let stderr = refused(
        &ag_news(),
        &[
            "--text-column",
            "2,9",
            "--label-column",
            "1",
            "--test-fraction",
            "0.2",
        ],
        &out,
    );
    assert!(
        stderr.contains("test.csv") && stderr.contains('9'),
        "{stderr}"
    );

    // One class only.
    let one = dir.path().join("one.csv");
    std::fs::write(&one, "text,label\na,x\nb,x\nc,x\nd,x\n").unwrap();
    let stderr = refused(&one, &["--test-fraction", "0.5"], &out);
    assert!(
        stderr.contains("one.csv") && stderr.contains("class"),
        "{stderr}"
    );

    // Float labels.
    let floats = dir.path().join("floats.jsonl");
    std::fs::write(
        &floats,
        "{\"text\": \"a\", \"label\": 0.5}\n{\"text\": \"b\", \"label\": 1.5}\n",
    )
    .unwrap();
    let stderr = refused(&floats, &["--test-fraction", "0.5"], &out);
    assert!(
        stderr.contains("floats.jsonl") && stderr.contains("label"),
        "{stderr}"
    );

    // Empty text, naming the row.
    let empty = dir.path().join("empty.tsv");
    std::fs::write(&empty, "text\tlabel\na\t0\n \t1\nc\t0\nd\t1\n").unwrap();
    let stderr = refused(&empty, &["--test-fraction", "0.5"], &out);
    assert!(
        stderr.contains("empty.tsv") && stderr.contains("row 1"),
        "{stderr}"
    );

    // Nothing was trained, so no metrics were written.
    assert!(!out.join("metrics.json").exists());
}

/// `--val-fraction` with `--load-best`, early stopping and class weights through the binary:
/// the validation rows are recorded apart from the training rows, the epochs count them, the
/// saved model is the selected epoch's (`eval RUN_DIR` reproduces the final test evaluation),
/// and resuming reads the validation split back. Choosing without one is refused first.
#[test]
fn a_validation_split_chooses_the_saved_model() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let mut args: Vec<std::ffi::OsString> = vec!["train".into(), "--model".into()];
    args.push(minilm().into_os_string());
    args.extend(data_args(&ag_news()));
    for a in [
        "--epochs",
        "2",
        "--lr",
        "5e-3",
        "--checkpoint-every",
        "0",
        "--no-report",
    ] {
        args.push(a.into());
    }
    args.extend(["--out".into(), out.clone().into_os_string()]);

    // Without a validation split, choosing an epoch is refused before anything is written.
    let mut refused = args.clone();
    refused.extend(["--metric-for-best".into(), "f1".into()]);
    let o = imdb_lora(&os(&refused));
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success() && stderr.contains("optimistic"),
        "{stderr}"
    );
    let mut bad_weights = args.clone();
    bad_weights.extend(["--class-weights".into(), "1,-2".into()]);
    let stderr = String::from_utf8_lossy(&imdb_lora(&os(&bad_weights)).stderr).into_owned();
    assert!(
        stderr.contains("\"-2\" is not a positive number"),
        "{stderr}"
    );
    assert!(!out.join("checkpoints").exists());

    for a in [
        "--val-fraction",
        "0.25",
        "--metric-for-best",
        "accuracy",
        "--load-best",
        "--early-stopping-patience",
        "3",
        "--class-weights",
        "auto",
    ] {
        args.push(a.into());
    }
    let o = imdb_lora(&os(&args));
    ok(&o);
    let summary = String::from_utf8_lossy(&o.stdout);
    assert!(
        summary.contains("chosen on validation accuracy"),
        "{summary}"
    );
    let split = json(&out.join("split.json"));
    let rows = |k: &str| -> Vec<u64> {
        split[k]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap())
            .collect()
    };
    let (train, val) = (rows("train_rows"), rows("val_rows"));
    assert_eq!(
        (train.len(), val.len()),
        (48, 16),
        "a quarter of 64, by class"
    );
    assert!(val.iter().all(|r| !train.contains(r)));
    assert_eq!(split["val_fraction"], 0.25);
    let m = json(&out.join("metrics.json"));
    assert_eq!(m["schema_version"], 3);
    assert_eq!(m["config"]["val_n"], 16);
    assert_eq!(m["config"]["class_weights"].as_array().unwrap().len(), 4);
    assert!(
        m["epochs"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["eval"]["samples"] == 16)
    );
    let sel = &m["selection"];
    assert_eq!(
        (sel["metric"].as_str(), sel["load_best"].as_bool()),
        (Some("accuracy"), Some(true))
    );
    assert_eq!(m["test"]["samples"], 32);
    // The saved model is what was tested at the end.
    let o = imdb_lora(&os(&["eval".into(), out.clone().into_os_string()]));
    ok(&o);
    let eval: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let close = |a: &serde_json::Value, b: &serde_json::Value| {
        (a.as_f64().unwrap() - b.as_f64().unwrap()).abs() < 1e-9
    };
    assert!(
        close(&eval["accuracy"], &m["test"]["accuracy"]),
        "{eval} vs {}",
        m["test"]
    );
    // Continued to a third epoch from its own split.json: the validation split comes back.
    let o = imdb_lora(&os(&[
        "train".into(),
        "--resume-from".into(),
        out.clone().into_os_string(),
        "--epochs".into(),
        "3".into(),
        "--no-report".into(),
    ]));
    ok(&o);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(stderr.contains("validation: 16 examples"), "{stderr}");
    let m = json(&out.join("metrics.json"));
    assert_eq!(m["epochs"].as_array().unwrap().len(), 3);
}

/// `--long-text window` through the binary: texts become overlapping windows for training,
/// evaluation counts texts (the mean of a text's windows' logits), the rule is recorded in
/// the saved model's config.json, and `eval` and `predict` apply it unasked.
#[test]
fn long_texts_as_windows_train_evaluate_and_predict_by_text() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let mut args: Vec<std::ffi::OsString> = vec!["train".into(), "--model".into()];
    args.push(minilm().into_os_string());
    args.extend(data_args(&ag_news()));
    for a in ["--epochs", "1", "--checkpoint-every", "0", "--no-report"] {
        args.push(a.into());
    }
    args.extend(["--out".into(), out.clone().into_os_string()]);
    let mut refused = args.clone();
    refused.extend(["--stride".into(), "4".into()]);
    let stderr = String::from_utf8_lossy(&imdb_lora(&os(&refused)).stderr).into_owned();
    assert!(
        stderr.contains("--stride is the overlap of --long-text window"),
        "{stderr}"
    );
    args.extend([
        "--long-text".into(),
        "window".into(),
        "--stride".into(),
        "8".into(),
    ]);
    let o = imdb_lora(&os(&args));
    ok(&o);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(
        stderr.contains("test: 32 examples") && stderr.contains("windows"),
        "{stderr}"
    );
    let m = json(&out.join("metrics.json"));
    assert_eq!(m["config"]["long_text"], "window, stride 8");
    assert_eq!(
        (
            m["config"]["test_n"].as_u64(),
            m["config"]["train_n"].as_u64()
        ),
        (Some(32), Some(64))
    );
    assert_eq!(m["epochs"][0]["eval"]["samples"], 32, "texts, not windows");
    let split = json(&out.join("split.json"));
    assert_eq!(split["test_rows"].as_array().unwrap().len(), 32);
    let config = json(&out.join("model/config.json"));
    assert_eq!(
        config["imdb_lora_long_text"],
        serde_json::json!({"rule": "window", "stride": 8, "max_len": 48})
    );
    // eval of the run directory applies the recorded rule: the last epoch's numbers again.
    let o = imdb_lora(&os(&["eval".into(), out.clone().into_os_string()]));
    ok(&o);
    let eval: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(eval["samples"], 32);
    let diff =
        eval["accuracy"].as_f64().unwrap() - m["epochs"][0]["eval"]["accuracy"].as_f64().unwrap();
    assert!(diff.abs() < 1e-9, "{eval}");
    // predict reads the rule from the model: a long text is answered, nothing cut.
    let long = "Stocks rallied on Wall Street today as investors cheered the central bank's \
                decision to cut interest rates again, sending the major indexes to records. \
                Bond yields fell, the dollar slipped against the euro and the yen, and oil \
                prices rose on hopes that cheaper money would lift demand for fuel next year.";
    let o = imdb_lora(&os(&[
        "predict".into(),
        "--model".into(),
        out.join("model").into_os_string(),
        long.into(),
    ]));
    ok(&o);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(!stderr.contains("left out"), "{stderr}");
}
