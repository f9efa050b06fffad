//! `imdb-lora-fuzz`: the fuzz harness's binary (`cargo xtask fuzz` runs it).
//!
//! * `run`: the supervisor: for each target, workers run inputs until the target's share of
//!   `--seconds` (or `--inputs` inputs) is spent; crashes are written to `regressions/<target>/`;
//!   a table of counts goes to stdout; the exit status is 1 when anything crashed.
//! * `replay FILE... --target T`: runs files through a target in-process and says how each
//!   ended (exit 1 on a panic).
//! * `gen`: writes input `--index` of a run with `--seed` (reproducing a crash from its name).
//! * `make-seeds`: writes the committed seed files.
//! * `worker` (hidden): what `run` starts.

#![allow(clippy::print_stdout, clippy::print_stderr)] // the report is this binary's interface

use std::alloc::System;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use cap::Cap;
use clap::{Parser, Subcommand};
use imdb_lora_fuzz::engine::{self, RunOptions, WorkerOptions};
use imdb_lora_fuzz::{Harness, Outcome, Target};

/// Counts live heap bytes; the worker sets a limit, past which an allocation fails and the
/// process aborts ("memory allocation of N bytes failed") — a crash the supervisor sees.
#[global_allocator]
static ALLOCATOR: Cap<System> = Cap::new(System, usize::MAX);

#[derive(Parser)]
#[command(
    name = "imdb-lora-fuzz",
    about = "Fuzz the loaders with mutated real files (stable Rust, no instrumentation)"
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Fuzz: each selected target gets an equal share of --seconds (or --inputs inputs).
    Run {
        /// A target (config, safetensors, tokenizer, adapter_config, adapter_model, parquet,
        /// checkpoint, metrics, csv, tsv, jsonl, split_json) or `all`; repeatable.
        #[arg(long, default_value = "all")]
        target: Vec<String>,
        /// Total time budget, split evenly over the targets.
        #[arg(long)]
        seconds: Option<f64>,
        /// Inputs per target (with --seconds: whichever ends first).
        #[arg(long)]
        inputs: Option<u64>,
        /// The run's seed: input i of a target is a function of (target, seed, i).
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// The fuzz crate's directory (holding seeds/).
        #[arg(long, default_value_os_t = imdb_lora_fuzz::crate_dir())]
        dir: PathBuf,
        /// Where crash files go (default: <dir>/regressions).
        #[arg(long)]
        crash_dir: Option<PathBuf>,
        /// Per-input time cap in seconds.
        #[arg(long, default_value_t = 10.0)]
        time_cap_s: f64,
        /// The worker's heap cap in MiB.
        #[arg(long, default_value_t = 512)]
        mem_cap_mib: usize,
    },
    /// Run files through a target in-process; exit 1 if any panics.
    Replay {
        /// The files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// The target.
        #[arg(long)]
        target: String,
    },
    /// Write input --index of a run of --target with --seed to --out.
    Gen {
        #[arg(long)]
        target: String,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        #[arg(long)]
        index: u64,
        #[arg(long)]
        out: PathBuf,
        #[arg(long, default_value_os_t = imdb_lora_fuzz::crate_dir())]
        dir: PathBuf,
    },
    /// Write the seed files under <dir>/seeds/.
    MakeSeeds {
        #[arg(long, default_value_os_t = imdb_lora_fuzz::crate_dir())]
        dir: PathBuf,
    },
    /// Internal: run inputs start..end of one target and report each on stdout.
    #[command(hide = true)]
    Worker {
        #[arg(long)]
        target: String,
        #[arg(long)]
        seed: u64,
        #[arg(long)]
        start: u64,
        #[arg(long)]
        end: Option<u64>,
        #[arg(long)]
        budget_ms: Option<u64>,
        #[arg(long)]
        mem_cap_mib: usize,
        #[arg(long)]
        dir: PathBuf,
        #[arg(long)]
        scratch: Option<PathBuf>,
    },
}

fn target(name: &str) -> Result<Target> {
    Target::from_name(name).with_context(|| {
        let names: Vec<&str> = Target::LOADERS.iter().map(|t| t.name()).collect();
        format!(
            "unknown target {name:?}; expected one of {}",
            names.join(", ")
        )
    })
}

fn targets(names: &[String]) -> Result<Vec<Target>> {
    let mut out = Vec::new();
    for name in names {
        if name == "all" {
            out.extend(Target::LOADERS);
        } else {
            out.push(target(name)?);
        }
    }
    out.dedup();
    Ok(out)
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("imdb-lora-fuzz: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Cmd::Run {
            target: names,
            seconds,
            inputs,
            seed,
            dir,
            crash_dir,
            time_cap_s,
            mem_cap_mib,
        } => {
            let targets = targets(&names)?;
            if seconds.is_none() && inputs.is_none() {
                bail!("give --seconds, --inputs or both");
            }
            let opts = RunOptions {
                seconds_per_target: seconds.map(|s| s / targets.len() as f64),
                inputs,
                seed,
                crash_dir: crash_dir.unwrap_or_else(|| dir.join("regressions")),
                dir,
                time_cap: Duration::from_secs_f64(time_cap_s),
                mem_cap: mem_cap_mib << 20,
                exe: std::env::current_exe().context("cannot find this executable")?,
                targets: targets.clone(),
            };
            let mut results = Vec::new();
            for t in targets {
                eprintln!("fuzz: {t} (seed {seed})");
                let counts = engine::run_target(&opts, t)?;
                eprintln!(
                    "fuzz: {t}: {} inputs, {} ok, {} err, {} crashes in {:.0} s",
                    counts.tried,
                    counts.ok,
                    counts.err,
                    counts.crashes.len(),
                    counts.seconds
                );
                results.push((t, counts));
            }
            print!("{}", engine::table(&results));
            let crashes: usize = results.iter().map(|(_, c)| c.crashes.len()).sum();
            if crashes > 0 {
                eprintln!(
                    "fuzz: {crashes} crashing inputs (files under {}); replay one with \
                     `imdb-lora-fuzz replay FILE --target T`",
                    opts.crash_dir.display()
                );
                return Ok(ExitCode::from(1));
            }
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Replay { files, target: t } => {
            let t = target(&t)?;
            engine::install_panic_hook();
            let harness = Harness::new(t)?;
            let mut panicked = false;
            for f in files {
                let bytes =
                    std::fs::read(&f).with_context(|| format!("cannot read {}", f.display()))?;
                match engine::run_caught(&harness, &bytes) {
                    Ok(Ok(Outcome::Ok)) => println!("{}: ok", f.display()),
                    Ok(Ok(Outcome::Err(e))) => println!("{}: error: {e}", f.display()),
                    Ok(Err(e)) => return Err(e),
                    Err(message) => {
                        panicked = true;
                        println!("{}: PANIC: {message}", f.display());
                    }
                }
            }
            Ok(if panicked {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            })
        }
        Cmd::Gen {
            target: t,
            seed,
            index,
            out,
            dir,
        } => {
            let t = target(&t)?;
            let seeds = imdb_lora_fuzz::load_seeds(&dir, t)?;
            let (bytes, mutations) =
                imdb_lora_fuzz::mutate::generate_described(t, &seeds, seed, index);
            imdb_lora_fsio::write(&out, &bytes)
                .with_context(|| format!("cannot write {}", out.display()))?;
            eprintln!(
                "{}: {} bytes ({})",
                out.display(),
                bytes.len(),
                mutations.join(", ")
            );
            Ok(ExitCode::SUCCESS)
        }
        Cmd::MakeSeeds { dir } => {
            for (path, bytes) in imdb_lora_fuzz::seeds::make_seeds(&dir)? {
                println!("{} ({bytes} bytes)", path.display());
            }
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Worker {
            target: t,
            seed,
            start,
            end,
            budget_ms,
            mem_cap_mib,
            dir,
            scratch,
        } => {
            let opts = WorkerOptions {
                target: target(&t)?,
                seed,
                start,
                end,
                budget: budget_ms.map(Duration::from_millis),
                dir,
                scratch,
            };
            let cap = mem_cap_mib << 20;
            engine::worker_main(&opts, &|| {
                if let Err(e) = ALLOCATOR.set_limit(cap) {
                    eprintln!("imdb-lora-fuzz worker: cannot set the heap cap: {e:?}");
                }
            })?;
            Ok(ExitCode::SUCCESS)
        }
    }
}
