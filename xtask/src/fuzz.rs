//! `cargo xtask fuzz`: builds the `imdb-lora-fuzz` binary (or takes `--fuzz-bin`) and runs its
//! supervisor over the loader targets; the binary does the work (docs/FUZZING.md), this only
//! passes the options on and fails when it found a crash.

use std::path::PathBuf;
use std::process::Command;

use anyhow::{Context, Result, bail};
use clap::Args;

/// `cargo xtask fuzz` options.
#[derive(Args, Clone, Debug)]
pub struct FuzzArgs {
    /// Total time budget in seconds, split evenly over the targets.
    #[arg(long)]
    seconds: Option<f64>,
    /// Inputs per target instead of (or, with --seconds, as well as) a time budget.
    #[arg(long)]
    inputs: Option<u64>,
    /// One target (config, safetensors, tokenizer, adapter_config, adapter_model, parquet,
    /// checkpoint, metrics, csv, tsv, jsonl, split_json), or all.
    #[arg(long, default_value = "all")]
    target: String,
    /// The run's seed: input i of a target is a function of (target, seed, i).
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// A prebuilt `imdb-lora-fuzz` (default: build it with cargo, dev profile).
    #[arg(long)]
    fuzz_bin: Option<PathBuf>,
}

/// Runs the fuzzer; an error when it reports a crash (or cannot run).
pub fn run(args: &FuzzArgs, root: &std::path::Path) -> Result<()> {
    if args.seconds.is_none() && args.inputs.is_none() {
        bail!("give --seconds N (total budget) or --inputs N (per target)");
    }
    let bin = match &args.fuzz_bin {
        Some(p) => {
            if !p.is_file() {
                bail!("--fuzz-bin {} does not exist", p.display());
            }
            p.clone()
        }
        None => {
            let mut cmd = crate::cargo();
            cmd.args(["build", "-p", "imdb-lora-fuzz", "--bin", "imdb-lora-fuzz"]);
            crate::run(cmd)?;
            crate::target_dir().join("debug").join("imdb-lora-fuzz")
        }
    };
    let mut cmd = Command::new(&bin);
    cmd.args([
        "run",
        "--target",
        &args.target,
        "--seed",
        &args.seed.to_string(),
    ])
    .arg("--dir")
    .arg(root.join("crates").join("fuzz"));
    if let Some(s) = args.seconds {
        cmd.args(["--seconds", &s.to_string()]);
    }
    if let Some(n) = args.inputs {
        cmd.args(["--inputs", &n.to_string()]);
    }
    eprintln!("xtask: {cmd:?}");
    let status = cmd
        .status()
        .with_context(|| format!("cannot start {}", bin.display()))?;
    match status.code() {
        Some(0) => Ok(()),
        Some(1) => bail!(
            "the fuzzer found crashing inputs (written under crates/fuzz/regressions/; see \
             docs/FUZZING.md)"
        ),
        _ => bail!("{} failed with {status}", bin.display()),
    }
}
