//! The comparison harness behind `cargo xtask bench`: our `imdb-lora` binary against the
//! PyTorch + PEFT reference (`shared/peer/peft_imdb.py`) on the same machine, alternating runs:
//! matmul roofline, tokenisation, the train + eval workload (throughput, FLOP rate, peak
//! memory), and the time to a first prediction from a cold process. Prints a Markdown table and
//! writes `<out>/bench.md` and `<out>/bench.json` (every raw sample, medians, ratios).
//!
//! Our side is measured by `imdb-lora` itself and the `imdb-lora-perf` helper binary
//! (`crates/perf`), the reference's by `peft_imdb.py` and `scripts/bench/peer_micro.py`.
//! `peft_imdb.py` always runs through `scripts/bench/peft_imdb_family.py`, which changes nothing
//! but PEFT's LoRA targets, to the model family's defaults (`q_lin`/`v_lin` for DistilBERT; for
//! BERT, RoBERTa and ELECTRA the script's own `query`/`value`, so there it is the script as is). Both
//! kinds of process run through the same wrapper ([`measure`]), which records wall time and
//! exact peak RSS. Nothing fails on a target: the targets are reported, never asserted.
//! `--criterion` keeps the former behaviour (`cargo bench -p imdb-lora-perf`).

#![allow(clippy::print_stdout)] // the Markdown table on stdout is part of the interface

mod int8;
mod measure;
mod report;
mod serve;

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use serde::Serialize;
use serde_json::{Value, json};

pub use measure::{ChildArgs, child_main};
use measure::{IdleWait, Measured, Runner, tail, wait_idle};
use report::{Better, Machine, Row, median};

/// The review every "time to first prediction" run classifies.
const PREDICT_TEXT: &str =
    "A triumph from start to finish: the cast is superb and the story stays with you.";
/// Targets from the issue, on the ours/reference ratio.
const TARGET_TRAIN: f64 = 1.5;
const TARGET_INFERENCE: f64 = 2.0;
const TARGET_MEMORY: f64 = 0.5;
/// `imdb_lora_data::SUGGESTED_BUCKET_WINDOW` (xtask depends on no project crate but `fsio`): the
/// window of the bench's second variant of our training run.
const SUGGESTED_BUCKET_WINDOW: usize = 50;
/// Environment for every child: never touch the network.
const OFFLINE_ENV: [(&str, &str); 3] = [
    ("HF_HUB_OFFLINE", "1"),
    ("TRANSFORMERS_OFFLINE", "1"),
    ("HF_DATASETS_OFFLINE", "1"),
];

/// Options of `cargo xtask bench`.
#[derive(clap::Args, Debug)]
pub struct BenchArgs {
    /// Alternating ours/reference runs of the tokenisation and train + eval workloads
    /// (default 3; 1 with --quick).
    #[arg(long)]
    repeats: Option<usize>,
    /// Cold `predict` processes per side (default 5; 1 with --quick).
    #[arg(long)]
    predict_repeats: Option<usize>,
    /// Tiny sizes for CI: 32 train / 64 test reviews, max_len 64, tokenisation of 1,000
    /// reviews, one run of each.
    #[arg(long)]
    quick: bool,
    /// Measure our side only.
    #[arg(long)]
    no_peer: bool,
    /// Python of the reference's venv (torch, transformers, peft, pyarrow, numpy).
    #[arg(long, env = "PEER_PYTHON", default_value = "/tmp/peer/bin/python")]
    peer_python: PathBuf,
    /// Model directory (default: all-MiniLM-L6-v2 in $IMDB_LORA_SHARED/hub).
    #[arg(long)]
    model: Option<PathBuf>,
    /// Data directory holding plain_text/*.parquet (default: IMDb in $IMDB_LORA_SHARED/hub).
    #[arg(long)]
    data: Option<PathBuf>,
    /// Training reviews (default 512; 32 with --quick).
    #[arg(long)]
    train_n: Option<usize>,
    /// Test reviews (default 1024; 64 with --quick).
    #[arg(long)]
    test_n: Option<usize>,
    /// Truncation length (default 256; 64 with --quick).
    #[arg(long)]
    max_len: Option<usize>,
    /// Training batch size of both sides (the evaluation batch stays 64). Lower it where a
    /// long --max-len would not fit in memory (e.g. ModernBERT-base at 1024 on a 24 GB machine).
    #[arg(long, default_value_t = 16)]
    batch_size: usize,
    /// Reviews to tokenise (default all 25,000; 1,000 with --quick).
    #[arg(long)]
    tokenize_limit: Option<usize>,
    /// Our length-bucketing window in batches, as `imdb-lora train --bucket-window` (default
    /// 0, the binary's default: the reference's plain shuffled batches). Each repeat also
    /// runs ours once with the other batching (bucketed in windows of 50 when this is 0,
    /// plain otherwise) for a second training row.
    #[arg(long, default_value_t = 0)]
    bucket_window: usize,
    /// Skip that second run of ours with the other batching (its row stays empty): it saves a
    /// third of the train + eval time, and says nothing when every review is cut at max_len
    /// (all batches then pad to max_len either way).
    #[arg(long)]
    no_other_batching: bool,
    /// On a shared machine: before the matmul runs and each train + eval process, wait up to
    /// SECONDS for a 5-second window in which other processes used under 10 % of the CPU
    /// (then start anyway); each run records its wait and the others' share during it.
    #[arg(long, value_name = "SECONDS")]
    wait_idle: Option<f64>,
    /// Cargo profile both binaries are built with (`dev` builds land in target/debug).
    #[arg(long, default_value = "release")]
    profile: String,
    /// A prebuilt `imdb-lora` binary (skips its build).
    #[arg(long)]
    ours_bin: Option<PathBuf>,
    /// A prebuilt `imdb-lora-perf` binary (skips its build).
    #[arg(long, alias = "bench-bin")]
    perf_bin: Option<PathBuf>,
    /// Output directory for bench.md, bench.json and the last saved model.
    #[arg(long, default_value = "outputs/bench")]
    out: PathBuf,
    /// Benchmark `imdb-lora serve` instead: offline `predict` vs the server under
    /// --clients concurrent clients vs transformers' pipeline, on the same IMDb test reviews
    /// (bench/serve.rs); writes serve-bench.md and serve-bench.json.
    #[arg(long)]
    serve: bool,
    /// `--serve`: concurrent clients, each sending single reviews one at a time.
    #[arg(long, default_value_t = 64)]
    clients: usize,
    /// `--serve`: reviews sent per run (default 1024; 128 with --quick).
    #[arg(long)]
    serve_texts: Option<usize>,
    /// `--serve`: keep the clients going this many seconds on the last server, sampling its
    /// resident memory (0: no soak).
    #[arg(long, default_value_t = 0, value_name = "SECONDS")]
    soak: u64,
    /// `--serve`: the PEFT adapter served over --model (default: the MiniLM fixture adapter,
    /// fixtures/peft/minilm/adapter, when --model is the default).
    #[arg(long)]
    serve_adapter: Option<PathBuf>,
    /// Benchmark int8 evaluation instead: ours in f32 and int8 against PyTorch in f32 and with
    /// dynamic int8 quantisation, on the same --test-n reviews (bench/int8.rs); writes
    /// int8-bench.md and int8-bench.json. --model: a fine-tuned model directory (default:
    /// all-MiniLM-L6-v2 with the fixture adapter merged).
    #[arg(long, conflicts_with = "serve")]
    int8: bool,
    /// Run the criterion benchmarks instead (`cargo bench -p imdb-lora-perf ARGS...`).
    #[arg(long, num_args = 0.., allow_hyphen_values = true, value_name = "ARGS")]
    criterion: Option<Vec<String>>,
}

/// Workload sizes after `--quick` and overrides.
#[derive(Clone, Debug, Serialize)]
struct Sizes {
    train_n: usize,
    test_n: usize,
    max_len: usize,
    batch_size: usize,
    eval_batch_size: usize,
    epochs: usize,
    seed: u64,
    lr: f64,
    tokenize_limit: Option<usize>,
    /// Our training batches' length-bucketing window (0: off).
    bucket_window: usize,
    /// The window of the second variant of our training run: the other batching.
    other_window: usize,
    /// Whether that second variant runs (`--no-other-batching` turns it off).
    other_batching: bool,
    /// `--wait-idle`: the longest wait for a quiet machine before a measured run, seconds.
    wait_idle_s: Option<f64>,
    /// In-process passes per tokenisation process.
    tokenize_passes: usize,
    repeats: usize,
    predict_repeats: usize,
    matmul_sizes: Vec<usize>,
    matmul_repeats: usize,
}

impl Sizes {
    fn of(a: &BenchArgs) -> Result<Sizes> {
        let q = a.quick;
        let s = Sizes {
            train_n: a.train_n.unwrap_or(if q { 32 } else { 512 }),
            test_n: a.test_n.unwrap_or(if q { 64 } else { 1024 }),
            max_len: a.max_len.unwrap_or(if q { 64 } else { 256 }),
            batch_size: a.batch_size,
            eval_batch_size: 64,
            epochs: 1,
            seed: 42,
            lr: 2e-4,
            tokenize_limit: a.tokenize_limit.or(q.then_some(1000)),
            bucket_window: a.bucket_window,
            other_window: if a.bucket_window == 0 {
                SUGGESTED_BUCKET_WINDOW
            } else {
                0
            },
            other_batching: !a.no_other_batching,
            wait_idle_s: a.wait_idle,
            tokenize_passes: if q { 1 } else { 3 },
            repeats: a.repeats.unwrap_or(if q { 1 } else { 3 }),
            predict_repeats: a.predict_repeats.unwrap_or(if q { 1 } else { 5 }),
            matmul_sizes: vec![1024, 2048],
            matmul_repeats: if q { 3 } else { 5 },
        };
        if s.repeats == 0 || s.predict_repeats == 0 {
            bail!("--repeats and --predict-repeats must be at least 1");
        }
        if s.batch_size == 0 {
            bail!("--batch-size must be at least 1");
        }
        Ok(s)
    }
}

/// Where everything lives.
struct Paths {
    model: PathBuf,
    data: PathBuf,
    out: PathBuf,
    peft_imdb: PathBuf,
    /// `scripts/bench/peft_imdb_family.py`: runs `peft_imdb` unchanged but for PEFT's LoRA
    /// targets, the model family's defaults (DistilBERT's are `q_lin`/`v_lin`; the script's own
    /// `query`/`value` for every other family, so for BERT it is exactly `peft_imdb.py`).
    peft_family: PathBuf,
    peer_micro: PathBuf,
}

/// `p` made absolute, with `..` resolved when it exists.
fn absolute(p: &Path) -> Result<PathBuf> {
    match std::fs::canonicalize(p) {
        Ok(c) => Ok(c),
        Err(_) => std::path::absolute(p).with_context(|| format!("resolving {}", p.display())),
    }
}

impl Paths {
    fn of(a: &BenchArgs, workspace: &Path) -> Result<Paths> {
        let shared = std::env::var_os("IMDB_LORA_SHARED")
            .map(PathBuf::from)
            .unwrap_or_else(|| workspace.join("..").join("shared"));
        let hub = shared.join("hub");
        let model = a
            .model
            .clone()
            .unwrap_or_else(|| hub.join("sentence-transformers/all-MiniLM-L6-v2/resolve/main"));
        let data = a
            .data
            .clone()
            .unwrap_or_else(|| hub.join("datasets/stanfordnlp/imdb/resolve/main"));
        let p = Paths {
            model: absolute(&model)?,
            data: absolute(&data)?,
            out: absolute(&a.out)?,
            peft_imdb: absolute(&shared.join("peer").join("peft_imdb.py"))?,
            peft_family: workspace
                .join("scripts")
                .join("bench")
                .join("peft_imdb_family.py"),
            peer_micro: workspace
                .join("scripts")
                .join("bench")
                .join("peer_micro.py"),
        };
        if !p.model.join("config.json").is_file() {
            bail!(
                "model directory {} has no config.json (set --model or IMDB_LORA_SHARED)",
                p.model.display()
            );
        }
        for split in ["train", "test"] {
            let f = p
                .plain_text()
                .join(format!("{split}-00000-of-00001.parquet"));
            if !f.is_file() {
                bail!(
                    "{} is missing (set --data or IMDB_LORA_SHARED)",
                    f.display()
                );
            }
        }
        Ok(p)
    }

    fn plain_text(&self) -> PathBuf {
        self.data.join("plain_text")
    }
}

/// The reference's interpreter, if it is usable; else why not.
fn check_peer(python: &Path, paths: &Paths) -> Result<PathBuf, String> {
    if !python.exists() {
        return Err(format!("{} does not exist", python.display()));
    }
    for script in [&paths.peft_imdb, &paths.peft_family, &paths.peer_micro] {
        if !script.is_file() {
            return Err(format!("{} is missing", script.display()));
        }
    }
    let out = Command::new(python)
        .args(["-c", "import torch, transformers, peft, pyarrow, numpy"])
        .output()
        .map_err(|e| format!("cannot run {}: {e}", python.display()))?;
    if !out.status.success() {
        return Err(format!(
            "{} cannot import torch, transformers, peft, pyarrow and numpy: {}",
            python.display(),
            tail(String::from_utf8_lossy(&out.stderr).trim(), 500)
        ));
    }
    Ok(python.to_path_buf())
}

/// Builds `-p package [--bin bin]` with `profile` and returns the binary's path.
fn build(profile: &str, package: &str, bin: &str) -> Result<PathBuf> {
    let mut cmd = crate::cargo();
    cmd.args(["build", "--profile", profile, "-p", package, "--bin", bin]);
    crate::run(cmd)?;
    let target = crate::target_dir();
    let dir = match profile {
        "dev" | "test" => "debug",
        "bench" => "release",
        other => other,
    };
    let path = absolute(&target.join(dir).join(bin))?;
    if !path.is_file() {
        bail!("built {bin}, but {} does not exist", path.display());
    }
    Ok(path)
}

fn given_binary(p: &Path, what: &str) -> Result<PathBuf> {
    let p = absolute(p)?;
    if !p.is_file() {
        bail!("{what} {} does not exist", p.display());
    }
    Ok(p)
}

fn num(v: &Value, pointer: &str) -> Option<f64> {
    v.pointer(pointer).and_then(Value::as_f64)
}

fn req(v: &Value, pointer: &str, what: &str) -> Result<f64> {
    num(v, pointer).with_context(|| format!("{what}: no number at {pointer}"))
}

/// One train + eval process.
#[derive(Clone, Debug, Serialize)]
struct TrainRun {
    wall_s: f64,
    peak_rss_mib: f64,
    /// CPU seconds of the process.
    cpu_s: f64,
    /// Share of the machine's CPU that other processes took during the run (0: none).
    others_cpu_share: Option<f64>,
    /// The wait for a quiet machine before the run (`--wait-idle`).
    idle_wait: Option<IdleWait>,
    train_samples: f64,
    train_seconds: f64,
    train_samples_per_s: f64,
    eval_samples_per_s: f64,
    baseline_eval_samples_per_s: f64,
    baseline_accuracy: f64,
    accuracy: f64,
    /// What the process reported itself (the reference prints its own ru_maxrss).
    self_reported_peak_rss_mib: Option<f64>,
    /// metrics.json (ours) or the printed JSON line (reference).
    output: Value,
}

impl TrainRun {
    /// From `metrics.json` (ours) or `peft_imdb.py`'s line: the same pointers in both.
    fn of(m: &Measured, output: Value, what: &str) -> Result<TrainRun> {
        let train_samples_per_s = req(&output, "/epochs/0/train_samples_per_s", what)?;
        let train_seconds = req(&output, "/epochs/0/train_seconds", what)?;
        Ok(TrainRun {
            wall_s: m.wall_s,
            peak_rss_mib: m.peak_rss_mib,
            cpu_s: m.cpu_s,
            others_cpu_share: m.others_cpu_share,
            idle_wait: None,
            train_samples: (train_samples_per_s * train_seconds).round(),
            train_seconds,
            train_samples_per_s,
            eval_samples_per_s: req(&output, "/epochs/0/eval/samples_per_s", what)?,
            baseline_eval_samples_per_s: req(&output, "/baseline/samples_per_s", what)?,
            baseline_accuracy: req(&output, "/baseline/accuracy", what)?,
            accuracy: req(&output, "/epochs/0/eval/accuracy", what)?,
            self_reported_peak_rss_mib: num(&output, "/peak_rss_mib"),
            output,
        })
    }
}

/// A measured process and what it printed.
#[derive(Clone, Debug, Serialize)]
struct Sample {
    wall_s: f64,
    peak_rss_mib: f64,
    output: Value,
}

impl Sample {
    fn of(m: &Measured, output: Value) -> Sample {
        Sample {
            wall_s: m.wall_s,
            peak_rss_mib: m.peak_rss_mib,
            output,
        }
    }
}

/// Our side and the reference's of one measurement.
#[derive(Clone, Debug, Serialize)]
struct Pair<T> {
    ours: Vec<T>,
    reference: Vec<T>,
}

impl<T> Default for Pair<T> {
    fn default() -> Self {
        Pair {
            ours: Vec::new(),
            reference: Vec::new(),
        }
    }
}

struct Bench {
    runner: Runner,
    paths: Paths,
    sizes: Sizes,
    ours_bin: PathBuf,
    perf_bin: PathBuf,
    peer: Option<PathBuf>,
}

impl Bench {
    /// `--wait-idle`: waits for a quiet machine (or the limit) before a measured run.
    fn settle(&self) -> Option<IdleWait> {
        let limit = self.sizes.wait_idle_s?;
        let w = wait_idle(limit);
        eprintln!(
            "xtask bench: waited {:.0} s for a quiet machine ({})",
            w.waited_s,
            if w.reached {
                "reached".to_string()
            } else {
                format!(
                    "not reached: busy {}",
                    w.last_busy_share
                        .map_or("?".into(), |s| format!("{:.0} %", s * 100.0))
                )
            }
        );
        Some(w)
    }

    fn ours(&mut self, args: &[String]) -> Result<Measured> {
        let bin = self.ours_bin.clone();
        self.runner.run(&bin, args, &OFFLINE_ENV)
    }

    fn helper(&mut self, args: &[String]) -> Result<Measured> {
        let bin = self.perf_bin.clone();
        self.runner.run(&bin, args, &OFFLINE_ENV)
    }

    /// Runs `python script args` when the reference is enabled.
    fn peer(&mut self, script: &Path, args: &[String]) -> Result<Option<Measured>> {
        let Some(py) = self.peer.clone() else {
            return Ok(None);
        };
        let mut full = vec![script.display().to_string()];
        full.extend_from_slice(args);
        self.runner.run(&py, &full, &OFFLINE_ENV).map(Some)
    }

    fn micro(&mut self, args: &[String]) -> Result<Option<Measured>> {
        let script = self.paths.peer_micro.clone();
        self.peer(&script, args)
    }

    fn matmul(&mut self) -> Result<Pair<Value>> {
        let sizes = self
            .sizes
            .matmul_sizes
            .iter()
            .map(usize::to_string)
            .collect::<Vec<_>>()
            .join(",");
        let args = strings(&[
            "matmul",
            "--sizes",
            &sizes,
            "--repeats",
            &self.sizes.matmul_repeats.to_string(),
        ]);
        let mut pair = Pair::default();
        self.settle();
        pair.ours
            .push(self.helper(&args)?.json("imdb-lora-perf matmul")?);
        self.settle();
        if let Some(m) = self.micro(&args)? {
            pair.reference.push(m.last_json("peer_micro.py matmul")?);
        }
        Ok(pair)
    }

    fn tokenize(&mut self) -> Result<Pair<Sample>> {
        let mut args = strings(&[
            "tokenize",
            "--model",
            &self.paths.model.display().to_string(),
            "--data",
            &self.paths.data.display().to_string(),
            "--max-len",
            &self.sizes.max_len.to_string(),
            "--repeats",
            &self.sizes.tokenize_passes.to_string(),
        ]);
        if let Some(n) = self.sizes.tokenize_limit {
            args.extend(strings(&["--limit", &n.to_string()]));
        }
        let mut pair = Pair::default();
        for _ in 0..self.sizes.repeats {
            let m = self.helper(&args)?;
            pair.ours
                .push(Sample::of(&m, m.json("imdb-lora-perf tokenize")?));
            if let Some(m) = self.micro(&args)? {
                pair.reference
                    .push(Sample::of(&m, m.last_json("peer_micro.py tokenize")?));
            }
        }
        Ok(pair)
    }

    /// Model, data and subset sizes: the same for the training run and the FLOP count.
    fn workload_args(&self, test_n: usize) -> Vec<String> {
        let s = &self.sizes;
        strings(&[
            "--model",
            &self.paths.model.display().to_string(),
            "--data",
            &self.paths.data.display().to_string(),
            "--train-n",
            &s.train_n.to_string(),
            "--test-n",
            &test_n.to_string(),
            "--max-len",
            &s.max_len.to_string(),
        ])
    }

    /// `imdb-lora train` arguments for the workload on `test_n` test reviews, writing into
    /// `run_dir`.
    fn ours_train_args(&self, run_dir: &Path, bucket_window: usize, test_n: usize) -> Vec<String> {
        let s = &self.sizes;
        let mut args = strings(&["train"]);
        args.extend(self.workload_args(test_n));
        args.extend(strings(&[
            "--epochs",
            &s.epochs.to_string(),
            "--batch-size",
            &s.batch_size.to_string(),
            "--eval-batch-size",
            &s.eval_batch_size.to_string(),
            "--lr",
            &s.lr.to_string(),
            "--seed",
            &s.seed.to_string(),
            "--lr-schedule",
            "constant",
            "--warmup-ratio",
            "0",
            "--max-grad-norm",
            "0",
            "--checkpoint-every",
            "0",
            "--bucket-window",
            &bucket_window.to_string(),
            "--offline",
            // The reference draws no charts: neither may the process measured here.
            "--no-report",
            "--out",
            &run_dir.display().to_string(),
            "--log-level",
            "warn",
        ]));
        args
    }

    /// One `imdb-lora train` process and its `metrics.json`.
    fn ours_train(
        &mut self,
        run_dir: &Path,
        bucket_window: usize,
        test_n: usize,
    ) -> Result<TrainRun> {
        remove_dir(run_dir)?;
        let args = self.ours_train_args(run_dir, bucket_window, test_n);
        let idle_wait = self.settle();
        let m = self.ours(&args)?;
        let metrics_path = run_dir.join("metrics.json");
        let metrics: Value = serde_json::from_slice(
            &std::fs::read(&metrics_path)
                .with_context(|| format!("reading {}", metrics_path.display()))?,
        )
        .with_context(|| format!("parsing {}", metrics_path.display()))?;
        let mut run = TrainRun::of(&m, metrics, &metrics_path.display().to_string())?;
        run.idle_wait = idle_wait;
        Ok(run)
    }

    /// The workload, alternating: ours, the reference, and ours again with the other
    /// batching (`other_window`). Returns the pair and those other runs.
    fn train(&mut self) -> Result<(Pair<TrainRun>, Vec<TrainRun>)> {
        let s = self.sizes.clone();
        let scratch = self.paths.out.join("tmp");
        let kept_model = self.paths.out.join("model");
        let mut pair = Pair::default();
        let mut other = Vec::new();
        for i in 0..s.repeats {
            let run_dir = scratch.join(format!("ours-train-{i}"));
            pair.ours
                .push(self.ours_train(&run_dir, s.bucket_window, s.test_n)?);
            if i + 1 == s.repeats {
                remove_dir(&kept_model)?;
                std::fs::rename(run_dir.join("model"), &kept_model).with_context(|| {
                    format!("moving the saved model to {}", kept_model.display())
                })?;
            }
            remove_dir(&run_dir)?;

            let wrapper = self.paths.peft_family.clone();
            let peer_args = reference_train_args(&self.paths, &s);
            let idle_wait = if self.peer.is_some() {
                self.settle()
            } else {
                None
            };
            if let Some(m) = self.peer(&wrapper, &peer_args)? {
                let out = m.last_json("peft_imdb.py")?;
                let mut run = TrainRun::of(&m, out, "peft_imdb.py")?;
                run.idle_wait = idle_wait;
                pair.reference.push(run);
            }
            if s.other_batching {
                let run_dir = scratch.join(format!("ours-other-{i}"));
                // Only its training rate is reported: one evaluation batch, not the test set.
                let test_n = s.eval_batch_size.min(s.test_n);
                other.push(self.ours_train(&run_dir, s.other_window, test_n)?);
                remove_dir(&run_dir)?;
            }
        }
        let _ = std::fs::remove_dir(&scratch);
        Ok((pair, other))
    }

    fn flops(&mut self) -> Result<Pair<Value>> {
        let s = self.sizes.clone();
        let common = |batch: &str, eval_batch: &str| {
            let mut args = strings(&["flops"]);
            args.extend(self.workload_args(s.test_n));
            args.extend(strings(&[
                batch,
                &s.batch_size.to_string(),
                eval_batch,
                &s.eval_batch_size.to_string(),
                "--seed",
                &s.seed.to_string(),
            ]));
            args
        };
        let mut ours_args = common("--batch-size", "--eval-batch-size");
        ours_args.extend(strings(&["--bucket-window", &s.bucket_window.to_string()]));
        let peer_args = common("--batch", "--eval-batch");
        let mut pair = Pair::default();
        pair.ours
            .push(self.helper(&ours_args)?.json("imdb-lora-perf flops")?);
        if let Some(m) = self.micro(&peer_args)? {
            pair.reference.push(m.last_json("peer_micro.py flops")?);
        }
        Ok(pair)
    }

    fn predict(&mut self) -> Result<Pair<Sample>> {
        let model = self.paths.out.join("model").display().to_string();
        let ours_args = strings(&[
            "predict",
            "--model",
            &model,
            "--log-level",
            "warn",
            PREDICT_TEXT,
        ]);
        let peer_args = strings(&["predict", "--model", &model, PREDICT_TEXT]);
        let mut pair = Pair::default();
        for _ in 0..self.sizes.predict_repeats {
            let m = self.ours(&ours_args)?;
            pair.ours.push(Sample::of(&m, m.json("imdb-lora predict")?));
            if let Some(m) = self.micro(&peer_args)? {
                pair.reference
                    .push(Sample::of(&m, m.last_json("peer_micro.py predict")?));
            }
        }
        Ok(pair)
    }
}

/// Arguments of `peft_imdb_family.py` for the train + eval workload: the shared
/// `peft_imdb.py` to run, then that script's own arguments.
fn reference_train_args(paths: &Paths, s: &Sizes) -> Vec<String> {
    strings(&[
        "--peer-script",
        &paths.peft_imdb.display().to_string(),
        "--model",
        &paths.model.display().to_string(),
        "--data",
        &paths.plain_text().display().to_string(),
        "--train-n",
        &s.train_n.to_string(),
        "--test-n",
        &s.test_n.to_string(),
        "--max-len",
        &s.max_len.to_string(),
        "--epochs",
        &s.epochs.to_string(),
        "--batch",
        &s.batch_size.to_string(),
        "--eval-batch",
        &s.eval_batch_size.to_string(),
        "--lr",
        &s.lr.to_string(),
        "--seed",
        &s.seed.to_string(),
    ])
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| (*s).to_string()).collect()
}

fn remove_dir(p: &Path) -> Result<()> {
    match std::fs::remove_dir_all(p) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e).with_context(|| format!("removing {}", p.display())),
    }
}

/// How much of the machine other processes took during each train + eval run, in run order,
/// with the per-pair training ratio beside it (the machine may be shared).
fn contention_note(train: &Pair<TrainRun>) -> Option<String> {
    let pct = |t: &TrainRun| {
        let share = t
            .others_cpu_share
            .map_or("?".to_string(), |s| format!("{:.0} %", s * 100.0));
        match t.idle_wait {
            Some(w) if !w.reached => format!("{share} (no quiet window in {:.0} s)", w.waited_s),
            _ => share,
        }
    };
    let pairs: Vec<String> = train
        .ours
        .iter()
        .zip(&train.reference)
        .enumerate()
        .map(|(i, (o, r))| {
            format!(
                "run {}: ours {}, reference {} (train ratio {:.2}×, eval {:.2}×)",
                i + 1,
                pct(o),
                pct(r),
                o.train_samples_per_s / r.train_samples_per_s,
                o.eval_samples_per_s / r.eval_samples_per_s
            )
        })
        .collect();
    (!pairs.is_empty()).then(|| {
        format!(
            "Other processes' share of the machine's CPU during the train + eval processes \
             (0 % on an otherwise idle machine): {}.",
            pairs.join("; ")
        )
    })
}

/// Median over runs of `f`.
fn med<T>(runs: &[T], f: impl Fn(&T) -> Option<f64>) -> Option<f64> {
    median(&runs.iter().filter_map(f).collect::<Vec<_>>())
}

/// GFLOP/s of the matmul of size `n` in a `matmul` output.
fn matmul_rate(out: &[Value], n: usize) -> Option<f64> {
    out.first()?
        .get("sizes")?
        .as_array()?
        .iter()
        .find(|s| s.get("n").and_then(Value::as_u64) == Some(n as u64))
        .and_then(|s| num(s, "/gflops"))
}

/// The first probability of the positive class in a `predict` output (array or object).
fn pos_prob(v: &Value) -> Option<f64> {
    let first = match v {
        Value::Array(a) => a.first()?,
        other => other,
    };
    num(first, "/pos_prob")
}

/// Achieved GFLOP/s: the workload's FLOPs over the time the implementation reports for it.
fn achieved_gflops(flops: &[Value], part: &str, samples_per_s: Option<f64>) -> Option<f64> {
    let f = flops.first()?;
    let total = num(f, &format!("/{part}/flops"))?;
    let samples = num(f, &format!("/{part}/samples"))?;
    let seconds = samples / samples_per_s?;
    Some(total / seconds / 1e9)
}

struct Results {
    matmul: Pair<Value>,
    tokenize: Pair<Sample>,
    train: Pair<TrainRun>,
    /// Ours with the other batching (`Sizes::other_window`).
    train_other: Vec<TrainRun>,
    flops: Pair<Value>,
    predict: Pair<Sample>,
}

/// The summary table, section by section, and the roofline its GFLOP/s rows are set against.
fn summary(r: &Results, sizes: &Sizes) -> (Vec<Row>, Option<f64>) {
    let roofline = roofline(r, sizes);
    let mut rows = throughput_rows(r, sizes, roofline);
    rows.extend(train_process_rows(r));
    rows.extend(tokenize_rows(r));
    rows.extend(predict_rows(r));
    rows.extend(matmul_rows(r, sizes));
    rows.extend(accuracy_rows(r));
    (rows, roofline)
}

/// The best f32 matmul rate at the largest size, either stack.
fn roofline(r: &Results, sizes: &Sizes) -> Option<f64> {
    let largest = sizes.matmul_sizes.iter().copied().max().unwrap_or(2048);
    [
        matmul_rate(&r.matmul.ours, largest),
        matmul_rate(&r.matmul.reference, largest),
    ]
    .into_iter()
    .flatten()
    .reduce(f64::max)
}

/// Median over train + eval runs of one of their figures.
fn train_median(runs: &[TrainRun], f: fn(&TrainRun) -> f64) -> Option<f64> {
    med(runs, |x| Some(f(x)))
}

/// Median tokenisation rate of `key` (`/reviews` or `/tokens`) per second, over every
/// in-process pass of every process, pooled.
fn tokenize_rate(runs: &[Sample], key: &str) -> Option<f64> {
    let per_pass: Vec<f64> = runs
        .iter()
        .flat_map(|s| {
            let count = num(&s.output, key).unwrap_or(f64::NAN);
            s.output
                .get("seconds")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_f64)
                .map(move |sec| count / sec)
        })
        .collect();
    median(&per_pass)
}

/// Training and evaluation speed: samples/s (with the targets) and the FLOP rates
/// they give, against the roofline.
fn throughput_rows(r: &Results, sizes: &Sizes, roofline: Option<f64>) -> Vec<Row> {
    let (to, tr) = (&r.train.ours, &r.train.reference);
    let train_sps = (
        train_median(to, |x| x.train_samples_per_s),
        train_median(tr, |x| x.train_samples_per_s),
    );
    let eval_sps = (
        train_median(to, |x| x.eval_samples_per_s),
        train_median(tr, |x| x.eval_samples_per_s),
    );
    vec![
        Row::new(
            "train samples/s (epoch 1)",
            "samples/s",
            Better::Higher,
            train_sps.0,
            train_sps.1,
        )
        .with_target(TARGET_TRAIN),
        Row::new(
            &format!(
                "train samples/s, ours with --bucket-window {}",
                sizes.other_window
            ),
            "samples/s",
            Better::Higher,
            train_median(&r.train_other, |x| x.train_samples_per_s),
            train_sps.1,
        ),
        Row::new(
            "eval samples/s (after epoch 1)",
            "samples/s",
            Better::Higher,
            eval_sps.0,
            eval_sps.1,
        )
        .with_target(TARGET_INFERENCE),
        Row::new(
            "eval samples/s (baseline, first pass)",
            "samples/s",
            Better::Higher,
            train_median(to, |x| x.baseline_eval_samples_per_s),
            train_median(tr, |x| x.baseline_eval_samples_per_s),
        ),
        Row::new(
            "train GFLOP/s",
            "GFLOP/s",
            Better::Higher,
            achieved_gflops(&r.flops.ours, "train", train_sps.0),
            achieved_gflops(&r.flops.reference, "train", train_sps.1),
        )
        .with_roofline(roofline),
        Row::new(
            "eval GFLOP/s",
            "GFLOP/s",
            Better::Higher,
            achieved_gflops(&r.flops.ours, "eval", eval_sps.0),
            achieved_gflops(&r.flops.reference, "eval", eval_sps.1),
        )
        .with_roofline(roofline),
    ]
}

/// The train + eval process as a whole: peak memory (with the target) and wall time.
fn train_process_rows(r: &Results) -> Vec<Row> {
    let (to, tr) = (&r.train.ours, &r.train.reference);
    vec![
        Row::new(
            "peak RSS of the train + eval process",
            "MiB",
            Better::Lower,
            train_median(to, |x| x.peak_rss_mib),
            train_median(tr, |x| x.peak_rss_mib),
        )
        .with_target(TARGET_MEMORY),
        Row::new(
            "train + eval process wall time",
            "s",
            Better::Lower,
            train_median(to, |x| x.wall_s),
            train_median(tr, |x| x.wall_s),
        ),
    ]
}

/// Tokenisation rates, in reviews and in tokens.
fn tokenize_rows(r: &Results) -> Vec<Row> {
    vec![
        Row::new(
            "tokenisation reviews/s",
            "reviews/s",
            Better::Higher,
            tokenize_rate(&r.tokenize.ours, "/reviews"),
            tokenize_rate(&r.tokenize.reference, "/reviews"),
        ),
        Row::new(
            "tokenisation tokens/s",
            "tokens/s",
            Better::Higher,
            tokenize_rate(&r.tokenize.ours, "/tokens"),
            tokenize_rate(&r.tokenize.reference, "/tokens"),
        ),
    ]
}

/// The cold `predict` processes.
fn predict_rows(r: &Results) -> Vec<Row> {
    vec![
        Row::new(
            "time to first prediction (cold process)",
            "s",
            Better::Lower,
            med(&r.predict.ours, |s| Some(s.wall_s)),
            med(&r.predict.reference, |s| Some(s.wall_s)),
        ),
        Row::new(
            "peak RSS of the predict process",
            "MiB",
            Better::Lower,
            med(&r.predict.ours, |s| Some(s.peak_rss_mib)),
            med(&r.predict.reference, |s| Some(s.peak_rss_mib)),
        ),
    ]
}

/// One row per matmul size.
fn matmul_rows(r: &Results, sizes: &Sizes) -> Vec<Row> {
    sizes
        .matmul_sizes
        .iter()
        .map(|&n| {
            Row::new(
                &format!("matmul f32 {n}×{n}"),
                "GFLOP/s",
                Better::Higher,
                matmul_rate(&r.matmul.ours, n),
                matmul_rate(&r.matmul.reference, n),
            )
        })
        .collect()
}

/// Accuracy before and after training: a sanity check, not a comparison (no ratio).
fn accuracy_rows(r: &Results) -> Vec<Row> {
    let (to, tr) = (&r.train.ours, &r.train.reference);
    vec![
        Row::new(
            "accuracy, baseline",
            "%",
            Better::Neither,
            train_median(to, |x| x.baseline_accuracy),
            train_median(tr, |x| x.baseline_accuracy),
        ),
        Row::new(
            "accuracy after epoch 1",
            "%",
            Better::Neither,
            train_median(to, |x| x.accuracy),
            train_median(tr, |x| x.accuracy),
        ),
    ]
}

/// Cross-checks worth a line under the table.
fn checks(r: &Results, rows: &[Row]) -> Vec<String> {
    let mut notes = Vec::new();
    let over = rows.iter().any(|row| {
        [row.ours_pct_roofline, row.reference_pct_roofline]
            .into_iter()
            .flatten()
            .any(|p| p > 100.0)
    });
    if over {
        notes.push(
            "A rate above 100 % of the roofline means the matmul runs were slowed down (a busy \
             machine?): the roofline is a median of a few products; rerun on an idle machine."
                .into(),
        );
    }
    let tokens = |runs: &[Sample]| runs.first().and_then(|s| num(&s.output, "/tokens"));
    if let (Some(o), Some(p)) = (tokens(&r.tokenize.ours), tokens(&r.tokenize.reference)) {
        notes.push(if o == p {
            format!("Tokenisation: both produced the same number of tokens ({o}).")
        } else {
            format!("Tokenisation: token counts differ: ours {o}, reference {p}.")
        });
    }
    let refb = |v: &[Value]| v.first().and_then(|f| f.get("reference_batch").cloned());
    if let (Some(o), Some(p)) = (refb(&r.flops.ours), refb(&r.flops.reference)) {
        notes.push(if o == p {
            "FLOP formula: both implementations agree on the 16 × 256 reference batch.".into()
        } else {
            format!(
                "FLOP formula MISMATCH on the 16 × 256 reference batch: ours {o}, reference {p}."
            )
        });
    }
    for (name, runs, flops) in [
        ("ours", &r.train.ours, &r.flops.ours),
        ("reference", &r.train.reference, &r.flops.reference),
    ] {
        let counted = flops.first().and_then(|f| num(f, "/train/samples"));
        let trained = runs.first().map(|t| t.train_samples);
        if let (Some(c), Some(t)) = (counted, trained)
            && c != t
        {
            notes.push(format!(
                "{name}: the FLOP count covers {c} training samples but the run trained {t}."
            ));
        }
    }
    if let Some(line) = contention_note(&r.train) {
        notes.push(line);
    }
    let probs = |runs: &[Sample]| runs.first().and_then(|s| pos_prob(&s.output));
    if let (Some(o), Some(p)) = (probs(&r.predict.ours), probs(&r.predict.reference)) {
        notes.push(format!(
            "Prediction on the same saved model: pos_prob ours {o:.6}, reference {p:.6} \
             (|difference| {:.1e}).",
            (o - p).abs()
        ));
    }
    notes
}

fn markdown(
    machine: &Machine,
    sizes: &Sizes,
    paths: &Paths,
    rows: &[Row],
    roofline: Option<f64>,
    peer: Result<&Value, &str>,
    notes: &[String],
) -> String {
    let mut s = String::from("# imdb-lora vs transformers + PEFT\n\n");
    let peer_line = match peer {
        Ok(v) => format!(
            "torch {} ({} threads), transformers + PEFT",
            v.get("torch").and_then(Value::as_str).unwrap_or("?"),
            v.get("threads").map_or("?".into(), Value::to_string)
        ),
        Err(why) => format!("not measured: {why}"),
    };
    let roof = roofline.map_or("—".into(), |r| format!("{r:.1} GFLOP/s"));
    s += &format!(
        "- machine: {} CPUs (`nproc`), {}; load average {} at start, {} at end\n\
         - date: {}; commit {}; {}\n\
         - reference: {peer_line}\n\
         - workload: {} ({} train / {} test reviews, max_len {}, batch {} / eval batch {}, \
         {} epoch, seed {}); ours with {}; {} alternating run(s) per side, {} cold \
         predict run(s); tokenisation of {} train reviews × {} pass(es) per process\n\
         - roofline (best f32 matmul at the largest size, either stack): {roof}\n\n",
        machine.nproc,
        machine.cpu_model,
        machine.load_average_start,
        machine.load_average_end,
        machine.date_utc,
        machine.git_commit,
        machine.rustc,
        paths.model.display(),
        sizes.train_n,
        sizes.test_n,
        sizes.max_len,
        sizes.batch_size,
        sizes.eval_batch_size,
        sizes.epochs,
        sizes.seed,
        if sizes.bucket_window > 0 {
            format!(
                "training batches length-bucketed in windows of {} batches",
                sizes.bucket_window
            )
        } else {
            "plain shuffled training batches (its default, as the reference's)".to_string()
        },
        sizes.repeats,
        sizes.predict_repeats,
        sizes.tokenize_limit.map_or("all".into(), |n| n.to_string()),
        sizes.tokenize_passes,
    );
    s += &report::markdown_table(rows);
    s += "\nRatios are ours / reference: for speeds higher is better, for memory and times \
          lower is better. Targets (issue 8): training ≥ 1.5×, inference ≥ 2×, peak memory \
          ≤ 0.5×; reported, never asserted. Throughputs are what each program reports for its \
          own training epoch and evaluation passes; GFLOP/s = counted FLOPs (matrix products \
          only, padding included; see `crates/perf/src/flops.rs`) over that time. Peak RSS \
          is the kernel's ru_maxrss of each process. Time to first prediction is spawn → exit \
          of a process that loads the saved model and classifies one review.\n";
    if !notes.is_empty() {
        s += "\n";
        for n in notes {
            s += &format!("- {n}\n");
        }
    }
    s
}

/// Runs `cargo xtask bench`.
pub fn run(args: BenchArgs, workspace: &Path) -> Result<()> {
    if let Some(extra) = &args.criterion {
        let mut cmd = crate::cargo();
        cmd.args(["bench", "-p", "imdb-lora-perf"]).args(extra);
        return crate::run(cmd);
    }
    let sizes = Sizes::of(&args)?;
    let paths = Paths::of(&args, workspace)?;
    let peer = if args.no_peer {
        Err("--no-peer".to_string())
    } else {
        check_peer(&args.peer_python, &paths)
    };
    if let Err(why) = &peer {
        eprintln!("xtask bench: the reference is skipped: {why}");
    }
    let ours_bin = match &args.ours_bin {
        Some(p) => given_binary(p, "--ours-bin")?,
        None => build(&args.profile, "imdb-lora", "imdb-lora")?,
    };
    let perf_bin = match &args.perf_bin {
        Some(p) => given_binary(p, "--perf-bin")?,
        None => build(&args.profile, "imdb-lora-perf", "imdb-lora-perf")?,
    };
    if args.serve {
        let adapter = match (&args.serve_adapter, &args.model) {
            (Some(a), _) => Some(absolute(a)?),
            (None, None) => Some(absolute(
                &workspace
                    .join("fixtures")
                    .join("peft")
                    .join("minilm")
                    .join("adapter"),
            )?),
            (None, Some(_)) => None,
        };
        let setup = serve::ServeSetup {
            ours: &ours_bin,
            perf: &perf_bin,
            peer: peer.as_ref().ok().map(PathBuf::as_path),
            peer_micro: &paths.peer_micro,
            model: &paths.model,
            adapter,
            data: &paths.data,
            out: &paths.out,
            env: &OFFLINE_ENV,
        };
        let sizes = serve::ServeSizes {
            clients: args.clients,
            texts: args
                .serve_texts
                .unwrap_or(if args.quick { 128 } else { 1024 }),
            max_len: sizes.max_len,
            repeats: args.repeats.unwrap_or(if args.quick { 1 } else { 3 }),
            soak_s: args.soak,
        };
        let md = serve::run(&setup, &sizes)?;
        println!("{md}");
        return Ok(());
    }
    if args.int8 {
        let setup = int8::Int8Setup {
            ours: &ours_bin,
            perf: &perf_bin,
            peer: peer.as_ref().ok().map(PathBuf::as_path),
            script: workspace.join("scripts").join("bench").join("peer_int8.py"),
            model: &paths.model,
            adapter: absolute(&workspace.join("fixtures/peft/minilm/adapter"))?,
            data: &paths.data,
            out: &paths.out,
            env: &OFFLINE_ENV,
        };
        let sizes = int8::Int8Sizes {
            texts: sizes.test_n,
            max_len: sizes.max_len,
            batch: 64,
            repeats: sizes.repeats,
        };
        let md = int8::run(&setup, &sizes)?;
        println!("{md}");
        return Ok(());
    }
    std::fs::create_dir_all(&paths.out)
        .with_context(|| format!("creating {}", paths.out.display()))?;
    let load_average_start = report::load_average();
    let mut bench = Bench {
        runner: Runner::new(&paths.out.join("tmp"))?,
        paths,
        sizes: sizes.clone(),
        ours_bin,
        perf_bin,
        peer: peer.clone().ok(),
    };

    eprintln!("xtask bench: [1/5] matmul roofline");
    let matmul = bench.matmul()?;
    eprintln!("xtask bench: [2/5] tokenisation");
    let tokenize = bench.tokenize()?;
    eprintln!("xtask bench: [3/5] train + eval workload");
    let (train, train_other) = bench.train()?;
    eprintln!("xtask bench: [4/5] FLOP counts");
    let flops = bench.flops()?;
    eprintln!("xtask bench: [5/5] time to first prediction");
    let predict = bench.predict()?;
    let _ = std::fs::remove_dir(bench.paths.out.join("tmp"));

    let machine = Machine {
        nproc: std::thread::available_parallelism().map_or(0, usize::from),
        cpu_model: report::cpu_model(workspace),
        date_utc: report::now_utc(),
        git_commit: report::git_commit(workspace),
        rustc: report::rustc_version(workspace),
        load_average_start,
        load_average_end: report::load_average(),
    };
    let results = Results {
        matmul,
        tokenize,
        train,
        train_other,
        flops,
        predict,
    };
    let (rows, roofline) = summary(&results, &sizes);
    let notes = checks(&results, &rows);
    let peer_info = results.train.reference.first().map(|t| &t.output);
    let peer_for_md = match (&peer, peer_info) {
        (Ok(_), Some(v)) => Ok(v),
        (Ok(_), None) => Err("no run"),
        (Err(why), _) => Err(why.as_str()),
    };
    let md = markdown(
        &machine,
        &sizes,
        &bench.paths,
        &rows,
        roofline,
        peer_for_md,
        &notes,
    );
    let paths = &bench.paths;
    let doc = json!({
        "machine": machine,
        "sizes": sizes,
        "paths": {
            "model": paths.model,
            "data": paths.data,
            "ours_bin": bench.ours_bin,
            // The key predates the crate's rename; kept so bench.json's schema is unchanged.
            "bench_bin": bench.perf_bin,
            "peer_python": peer.as_ref().ok(),
            "saved_model": paths.out.join("model"),
        },
        "reference_skipped": peer.as_ref().err(),
        "roofline_gflops": roofline,
        "summary": rows,
        "notes": notes,
        "commands": bench.runner.log,
        "samples": {
            "matmul": results.matmul,
            "tokenize": results.tokenize,
            "train": results.train,
            "train_other": results.train_other,
            "flops": results.flops,
            "predict": results.predict,
        },
    });
    imdb_lora_fsio::write(
        &paths.out.join("bench.json"),
        serde_json::to_string_pretty(&doc)?.as_bytes(),
    )?;
    imdb_lora_fsio::write(&paths.out.join("bench.md"), md.as_bytes())?;
    println!("{md}");
    eprintln!(
        "xtask bench: wrote {} and {}",
        paths.out.join("bench.md").display(),
        paths.out.join("bench.json").display()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(clap::Parser)]
    struct Cli {
        #[command(flatten)]
        args: BenchArgs,
    }

    fn parse(args: &[&str]) -> BenchArgs {
        use clap::Parser;
        Cli::try_parse_from(std::iter::once("bench").chain(args.iter().copied()))
            .map(|c| c.args)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn criterion_takes_the_rest_of_the_line() {
        assert_eq!(parse(&[]).criterion, None);
        assert_eq!(parse(&["--criterion"]).criterion, Some(vec![]));
        let a = parse(&["--criterion", "--bench", "backends", "--", "layer_forward"]);
        assert_eq!(
            a.criterion,
            Some(strings(&["--bench", "backends", "--", "layer_forward"]))
        );
    }

    #[test]
    fn perf_bin_keeps_its_old_name_as_an_alias() {
        assert_eq!(
            parse(&["--perf-bin", "/x/imdb-lora-perf"]).perf_bin,
            Some(PathBuf::from("/x/imdb-lora-perf"))
        );
        assert_eq!(
            parse(&["--bench-bin", "/x/imdb-lora-perf"]).perf_bin,
            Some(PathBuf::from("/x/imdb-lora-perf"))
        );
    }

    #[test]
    fn quick_sizes() {
        let s = Sizes::of(&parse(&["--quick"])).unwrap();
        assert_eq!((s.train_n, s.test_n, s.max_len), (32, 64, 64));
        assert_eq!(
            (s.repeats, s.predict_repeats, s.tokenize_limit),
            (1, 1, Some(1000))
        );
        assert_eq!((s.batch_size, s.eval_batch_size), (16, 64));
        let s = Sizes::of(&parse(&["--quick", "--repeats", "2"])).unwrap();
        assert_eq!((s.repeats, s.train_n), (2, 32));
        let b = Sizes::of(&parse(&["--batch-size", "8"])).unwrap();
        assert_eq!((b.batch_size, b.eval_batch_size), (8, 64));
        assert!(Sizes::of(&parse(&["--batch-size", "0"])).is_err());
        assert!(s.other_batching);
        assert!(
            !Sizes::of(&parse(&["--no-other-batching"]))
                .unwrap()
                .other_batching
        );
        assert_eq!(s.wait_idle_s, None);
        let s = Sizes::of(&parse(&["--wait-idle", "600"])).unwrap();
        assert_eq!(s.wait_idle_s, Some(600.0));
        let s = Sizes::of(&parse(&["--repeats", "4"])).unwrap();
        assert_eq!((s.train_n, s.test_n, s.max_len), (512, 1024, 256));
        assert_eq!(
            (s.repeats, s.predict_repeats, s.tokenize_limit),
            (4, 5, None)
        );
        assert!(Sizes::of(&parse(&["--repeats", "0"])).is_err());
    }

    #[test]
    fn achieved_rate_is_flops_over_reported_time() {
        let flops = vec![json!({"train": {"flops": 4.0e9, "samples": 8}})];
        // 8 samples at 4 samples/s = 2 s → 2 GFLOP/s.
        assert_eq!(achieved_gflops(&flops, "train", Some(4.0)), Some(2.0));
        assert_eq!(achieved_gflops(&flops, "eval", Some(4.0)), None);
        assert_eq!(achieved_gflops(&[], "train", Some(4.0)), None);
    }

    #[test]
    fn predictions_parse_as_array_or_object() {
        assert_eq!(pos_prob(&json!([{"pos_prob": 0.25}])), Some(0.25));
        assert_eq!(pos_prob(&json!({"pos_prob": 0.5})), Some(0.5));
        assert_eq!(pos_prob(&json!([])), None);
    }

    #[test]
    fn summary_sections_keep_the_table_order() {
        let r = Results {
            matmul: Pair::default(),
            tokenize: Pair::default(),
            train: Pair::default(),
            train_other: Vec::new(),
            flops: Pair::default(),
            predict: Pair::default(),
        };
        let sizes = Sizes::of(&parse(&["--quick"])).unwrap();
        let (rows, roofline) = summary(&r, &sizes);
        assert_eq!(roofline, None);
        let metrics: Vec<&str> = rows.iter().map(|row| row.metric.as_str()).collect();
        assert_eq!(
            metrics,
            [
                "train samples/s (epoch 1)",
                "train samples/s, ours with --bucket-window 50",
                "eval samples/s (after epoch 1)",
                "eval samples/s (baseline, first pass)",
                "train GFLOP/s",
                "eval GFLOP/s",
                "peak RSS of the train + eval process",
                "train + eval process wall time",
                "tokenisation reviews/s",
                "tokenisation tokens/s",
                "time to first prediction (cold process)",
                "peak RSS of the predict process",
                "matmul f32 1024×1024",
                "matmul f32 2048×2048",
                "accuracy, baseline",
                "accuracy after epoch 1",
            ]
        );
    }

    #[test]
    fn the_reference_runs_the_shared_script_through_the_family_wrapper() {
        let paths = Paths {
            model: PathBuf::from("/m"),
            data: PathBuf::from("/d"),
            out: PathBuf::from("/o"),
            peft_imdb: PathBuf::from("/shared/peer/peft_imdb.py"),
            peft_family: PathBuf::from("/w/scripts/bench/peft_imdb_family.py"),
            peer_micro: PathBuf::from("/w/scripts/bench/peer_micro.py"),
        };
        let sizes = Sizes::of(&parse(&["--quick"])).unwrap();
        let args = reference_train_args(&paths, &sizes);
        assert_eq!(
            args[..6],
            strings(&[
                "--peer-script",
                "/shared/peer/peft_imdb.py",
                "--model",
                "/m",
                "--data",
                "/d/plain_text",
            ])
        );
        let value = |flag: &str| {
            let i = args.iter().position(|a| a == flag).unwrap();
            args[i + 1].clone()
        };
        assert_eq!(
            [value("--train-n"), value("--test-n"), value("--max-len")],
            ["32", "64", "64"].map(String::from)
        );
        assert_eq!(
            [value("--batch"), value("--eval-batch")],
            ["16", "64"].map(String::from)
        );
    }

    #[test]
    fn matmul_rates_by_size() {
        let out =
            vec![json!({"sizes": [{"n": 1024, "gflops": 10.0}, {"n": 2048, "gflops": 12.0}]})];
        assert_eq!(matmul_rate(&out, 2048), Some(12.0));
        assert_eq!(matmul_rate(&out, 512), None);
    }
}
