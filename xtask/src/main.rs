//! Project automation: `cargo xtask reproduce` runs the whole experiment (download →
//! baseline → fine-tune → eval → plots) by building and driving the `imdb-lora` binary;
//! `bench` compares the binary with the PyTorch + PEFT reference (`bench/`); `fuzz` runs the
//! fuzz harness (`fuzz.rs`, the `imdb-lora-fuzz` binary); `hub-mirror` serves a local
//! Hub-shaped tree.
//!
//! Deliberately light: it depends on no project crate but the leaf `fsio` (its files are
//! written as every other file of the project) and only shells out to cargo and to the binary
//! it builds, so it compiles in seconds.

#![allow(clippy::print_stderr)] // progress lines are this binary's interface

mod bench;
mod fuzz;
mod page_check;
mod served;
#[cfg(test)]
mod tidy;

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Parser)]
#[command(name = "xtask", about = "imdb-lora automation")]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Fetch the model and the IMDb parquet files into the Hugging Face cache.
    Download(Experiment),
    /// Evaluate the untrained adapters (accuracy near 50 %), checkpointed in `--out`.
    Baseline(Experiment),
    /// Fine-tune (resuming any interrupted run in `--out`), evaluating after each epoch.
    Finetune(Experiment),
    /// Evaluate the saved model in `--out/model` on the test subset.
    Eval(Experiment),
    /// Render the charts and report.md from `--out/metrics.json`.
    Plot(Experiment),
    /// All of the above, in order; each step skips work that is already complete.
    Reproduce(Experiment),
    /// Benchmark `imdb-lora` against the PyTorch + PEFT reference (or, with --criterion,
    /// run the criterion benchmarks).
    Bench(bench::BenchArgs),
    /// Feed the loaders mutated versions of real files (the `imdb-lora-fuzz` binary); fails
    /// on any crash.
    Fuzz(fuzz::FuzzArgs),
    /// Check the page `imdb-lora serve` serves at / in headless Chromium (Node.js,
    /// playwright-core, Debian's chromium) and write its screenshot.
    PageCheck(page_check::PageCheckArgs),
    /// Internal: run a command and record its wall time and peak RSS (used by `bench`).
    #[command(hide = true)]
    BenchChild(bench::ChildArgs),
    /// Serve a directory laid out like the Hub's URLs on 127.0.0.1.
    HubMirror {
        /// The tree to serve (e.g. ../shared/hub).
        dir: PathBuf,
        /// Address to bind.
        #[arg(long, default_value = "127.0.0.1:8765")]
        addr: String,
        /// Allow an address beyond loopback (the mirror serves without authentication).
        #[arg(long)]
        allow_remote: bool,
    },
}

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq, Debug)]
enum Backend {
    /// The default CPU backend (burn-flex).
    Cpu,
    /// NVIDIA GPUs through burn-cuda (needs the driver and NVRTC at run time).
    Cuda,
    /// Any GPU through wgpu: Vulkan (AMD, Intel, NVIDIA), Metal (Apple), DX12; Mesa's
    /// lavapipe runs it on a CPU (docs/GPU.md).
    Wgpu,
}

#[derive(Args, Clone, Debug)]
struct Experiment {
    /// SMALL_RUN: 4,000 train / 2,000 test reviews (also set by SMALL_RUN=1).
    #[arg(long, env = "SMALL_RUN", value_parser = clap::builder::BoolishValueParser::new(), default_value = "false")]
    small: bool,
    /// Which backend the binary is built for.
    #[arg(long, value_enum, default_value = "cpu")]
    backend: Backend,
    /// Model repo id or local directory.
    #[arg(long, default_value = "bert-base-uncased")]
    model: String,
    /// IMDb (a dataset repo id or a local directory holding its parquet files), or your own
    /// data: another Hub dataset id, a parquet/CSV/TSV/JSON Lines file or a directory of split
    /// files.
    #[arg(long, default_value = "stanfordnlp/imdb")]
    data: String,
    /// The configuration of a dataset with several (see `imdb-lora train --help`).
    #[arg(long)]
    data_config: Option<String>,
    /// Your data's test split file (see `imdb-lora train --help`).
    #[arg(long)]
    test_file: Option<PathBuf>,
    /// Hold out this fraction of your data as the test split, stratified by class.
    #[arg(long)]
    test_fraction: Option<f64>,
    /// Your data's text column(s): names or 1-based positions, comma-separated.
    #[arg(long)]
    text_column: Option<String>,
    /// Your data's label column: a name or a 1-based position.
    #[arg(long)]
    label_column: Option<String>,
    /// Class names in class order, comma-separated.
    #[arg(long)]
    label_names: Option<String>,
    /// Training examples (default: all — IMDb's 25,000 — or 4,000 with --small).
    #[arg(long)]
    train_n: Option<usize>,
    /// Test examples (default: all — IMDb's 25,000 — or 2,000 with --small).
    #[arg(long)]
    test_n: Option<usize>,
    /// Epochs.
    #[arg(long, default_value_t = 3)]
    epochs: usize,
    /// Truncation length in tokens.
    #[arg(long, default_value_t = 256)]
    max_len: usize,
    /// Training batch size.
    #[arg(long, default_value_t = 16)]
    batch_size: usize,
    /// Peak learning rate.
    #[arg(long, default_value_t = 2e-4)]
    lr: f64,
    /// Seed for subsets, data order, dropout and fresh weights.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Output directory.
    #[arg(long, default_value = "outputs/imdb_lora")]
    out: PathBuf,
    /// Never touch the network: use the Hugging Face cache or local directories only.
    #[arg(long)]
    offline: bool,
    /// Compute precision for training and evaluation: f32, or bf16 mixed precision (cuda,
    /// or the CPU where it is slower than f32; see `imdb-lora train --help`).
    #[arg(long, default_value = "f32", value_parser = ["f32", "bf16"])]
    precision: String,
}

impl Experiment {
    /// `(train, test)` subset sizes; `None`: all of the split.
    fn sizes(&self) -> Result<(Option<usize>, Option<usize>)> {
        if self.small && (self.train_n.is_some() || self.test_n.is_some()) {
            bail!("--small fixes 4,000/2,000 examples; drop it or drop --train-n/--test-n");
        }
        Ok(if self.small {
            (Some(4000), Some(2000))
        } else {
            (self.train_n, self.test_n)
        })
    }

    /// Arguments shared by every `imdb-lora` subcommand that reads the data.
    fn common(&self) -> Result<Vec<String>> {
        let (train_n, test_n) = self.sizes()?;
        let mut args = vec![
            "--model".into(),
            self.model.clone(),
            "--data".into(),
            self.data.clone(),
            "--max-len".into(),
            self.max_len.to_string(),
            "--seed".into(),
            self.seed.to_string(),
        ];
        for (flag, value) in [
            ("--train-n", train_n.map(|n| n.to_string())),
            ("--test-n", test_n.map(|n| n.to_string())),
            (
                "--test-file",
                self.test_file.as_ref().map(|p| p.display().to_string()),
            ),
            ("--data-config", self.data_config.clone()),
            ("--test-fraction", self.test_fraction.map(|f| f.to_string())),
            ("--text-column", self.text_column.clone()),
            ("--label-column", self.label_column.clone()),
            ("--label-names", self.label_names.clone()),
        ] {
            if let Some(value) = value {
                args.extend([flag.to_string(), value]);
            }
        }
        if self.offline {
            args.push("--offline".into());
        }
        Ok(args)
    }

    fn train_args(&self) -> Result<Vec<String>> {
        let mut args = vec!["train".to_string()];
        args.extend(self.common()?);
        args.extend([
            "--epochs".into(),
            self.epochs.to_string(),
            "--batch-size".into(),
            self.batch_size.to_string(),
            "--lr".into(),
            self.lr.to_string(),
            "--out".into(),
            self.out.display().to_string(),
            "--precision".into(),
            self.precision.clone(),
            // The `plot` step renders the report.
            "--no-report".into(),
        ]);
        Ok(args)
    }
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// `cargo` in the workspace root, without the variables `cargo run` set for xtask itself:
/// cargo compares `rerun-if-env-changed` variables against its own environment, so an
/// inherited `CARGO_PKG_NAME=xtask` made `ring`'s build script, and everything above it
/// (the whole Burn stack), rebuild on every `cargo xtask` call.
fn cargo() -> Command {
    let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cmd.current_dir(workspace_root());
    for (key, _) in std::env::vars_os() {
        let key_str = key.to_string_lossy();
        let from_cargo_run = key_str.starts_with("CARGO_PKG_")
            || matches!(
                key_str.as_ref(),
                "CARGO_MANIFEST_DIR"
                    | "CARGO_MANIFEST_PATH"
                    | "CARGO_CRATE_NAME"
                    | "CARGO_BIN_NAME"
                    | "CARGO_PRIMARY_PACKAGE"
            );
        if from_cargo_run {
            cmd.env_remove(&key);
        }
    }
    cmd
}

/// `cmd` as a user would type it: the program and its arguments, not the environment
/// changes (`Command`'s `Debug` prints every removed variable).
fn shown(cmd: &Command) -> String {
    std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .map(|a| a.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

fn run(mut cmd: Command) -> Result<()> {
    let line = shown(&cmd);
    eprintln!("xtask: {line}");
    let status = cmd
        .status()
        .with_context(|| format!("cannot start {line}"))?;
    if !status.success() {
        bail!("{line} failed with {status}");
    }
    Ok(())
}

/// Builds the binary for `backend` and returns its path.
fn build(backend: Backend) -> Result<PathBuf> {
    let mut cmd = cargo();
    cmd.args(["build", "--release", "-p", "imdb-lora"]);
    match backend {
        Backend::Cpu => {}
        Backend::Cuda => {
            cmd.args(["--features", "cuda"]);
        }
        Backend::Wgpu => {
            cmd.args(["--features", "wgpu"]);
        }
    }
    run(cmd)?;
    Ok(target_dir().join("release").join("imdb-lora"))
}

/// Where cargo puts build outputs: `$CARGO_TARGET_DIR`, else `<workspace>/target`.
fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"))
}

fn binary(bin: &Path, args: &[String]) -> Result<()> {
    let mut cmd = Command::new(bin);
    cmd.args(args);
    run(cmd)
}

fn download(bin: &Path, e: &Experiment) -> Result<()> {
    let mut args = vec!["download".to_string()];
    args.extend(e.common()?);
    binary(bin, &args)
}

fn baseline(bin: &Path, e: &Experiment) -> Result<()> {
    let mut args = e.train_args()?;
    args.extend(["--stop-after-steps".into(), "0".into()]);
    binary(bin, &args)
}

fn finetune(bin: &Path, e: &Experiment) -> Result<()> {
    binary(bin, &e.train_args()?)
}

/// Whether `artifact` exists and is newer than every input: our writers replace files
/// atomically, so an existing file is a complete one, and a newer input makes it stale.
fn up_to_date(artifact: &Path, inputs: &[PathBuf]) -> bool {
    let modified = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    match modified(artifact) {
        Some(done) => inputs
            .iter()
            .all(|i| modified(i).is_some_and(|t| t <= done)),
        None => false,
    }
}

fn eval(bin: &Path, e: &Experiment) -> Result<()> {
    let out = e.out.join("eval.json");
    if up_to_date(&out, &[e.out.join("model/model.safetensors")]) {
        eprintln!("xtask: {} is up to date; skipping eval", out.display());
        return Ok(());
    }
    // The run's own test rows, as its split.json recorded them.
    let mut args = vec!["eval".to_string(), e.out.display().to_string()];
    args.extend([
        "--out".into(),
        e.out.join("eval.json").display().to_string(),
        "--precision".into(),
        e.precision.clone(),
    ]);
    binary(bin, &args)
}

fn plot(bin: &Path, e: &Experiment) -> Result<()> {
    let report = e.out.join("report.md");
    if up_to_date(&report, &[e.out.join("metrics.json")]) {
        eprintln!("xtask: {} is up to date; skipping plot", report.display());
        return Ok(());
    }
    binary(
        bin,
        &[
            "plot".into(),
            "--metrics".into(),
            e.out.join("metrics.json").display().to_string(),
            "--out".into(),
            e.out.display().to_string(),
        ],
    )
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Cmd::Bench(args) => bench::run(args, &workspace_root()),
        Cmd::Fuzz(args) => fuzz::run(&args, &workspace_root()),
        Cmd::PageCheck(args) => page_check::run(&args, &workspace_root()),
        Cmd::BenchChild(args) => std::process::exit(bench::child_main(args)?),
        Cmd::HubMirror {
            dir,
            addr,
            allow_remote,
        } => {
            let bin = build(Backend::Cpu)?;
            let mut args = vec![
                "hub-mirror".into(),
                dir.display().to_string(),
                "--addr".into(),
                addr,
            ];
            if allow_remote {
                args.push("--allow-remote".into());
            }
            binary(&bin, &args)
        }
        Cmd::Download(e) => download(&build(e.backend)?, &e),
        Cmd::Baseline(e) => baseline(&build(e.backend)?, &e),
        Cmd::Finetune(e) => finetune(&build(e.backend)?, &e),
        Cmd::Eval(e) => eval(&build(e.backend)?, &e),
        Cmd::Plot(e) => plot(&build(e.backend)?, &e),
        Cmd::Reproduce(e) => {
            e.sizes()?;
            let bin = build(e.backend)?;
            download(&bin, &e)?;
            baseline(&bin, &e)?;
            finetune(&bin, &e)?;
            eval(&bin, &e)?;
            plot(&bin, &e)?;
            eprintln!("xtask: done; see {}/report.md", e.out.display());
            Ok(())
        }
    }
}
