//! `imdb-lora`: fine-tune BERT with LoRA on IMDb and classify texts, from the command line.
//!
//! Each subcommand lives in its own `cmd_*.rs` file exposing `Args` (clap) and
//! `run(Args) -> anyhow::Result<()>`; registering one is a single line in `commands!` below.
//! Logs and progress bars go to stderr (`ui.rs`: short lines by default, `-v` for detail,
//! `--log-format json` for machines, `-q` for warnings only), so stdout carries only results.

mod backend;
mod common;
mod fetch;
mod interrupt;
mod ui;

use std::io::Write;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

// Tensors of tens of MiB are allocated and freed every op; glibc returns each to the OS
// and page-faults it back in (≈ 12 % of a CPU training profile). mimalloc can keep them:
// see `keep_freed_memory`.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `mi_option_purge_delay` in mimalloc.h (the sys crate names no constant for it).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Tells mimalloc never to return freed pages to the OS, so the next op's buffer of the same
/// size is reused without page faults (CPU training ≈ 1.2× faster, measured in
/// docs/BENCHMARKS.md). Peak RSS is what the run needs anyway; it just stays there.
#[allow(unsafe_code)]
fn keep_freed_memory() {
    // SAFETY: `mi_option_set` only stores an integer option; `purge_delay` may be changed
    // at any time (mimalloc reads it when it next considers purging).
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, -1) }
}

/// Declares the subcommand modules, the `Command` enum and its dispatch in one place.
macro_rules! commands {
    ($($(#[$doc:meta])* $variant:ident => $module:ident,)+) => {
        $(mod $module;)+

        #[derive(Debug, Subcommand)]
        enum Command {
            // Boxed: the subcommands' option structs differ a lot in size (train's is large).
            $($(#[$doc])* $variant(Box<$module::Args>),)+
        }

        impl Command {
            fn run(self) -> anyhow::Result<()> {
                match self {
                    $(Command::$variant(args) => $module::run(*args),)+
                }
            }
        }
    };
}

commands! {
    /// Fetch the model and the IMDb parquet files into the Hugging Face cache.
    Download => cmd_download,
    /// Baseline, LoRA fine-tuning with per-epoch evaluation, saved model and adapter.
    Train => cmd_train,
    /// Evaluate a saved model on the test subset.
    Eval => cmd_eval,
    /// Charts and report.md from metrics.json.
    Plot => cmd_plot,
    /// Classify texts with a fine-tuned model (JSON on stdout).
    Predict => cmd_predict,
    /// Serve a model over HTTP with TEI's API, PEFT adapters over one base.
    Serve => cmd_serve,
    /// Write a model again: an adapter merged in, optionally quantised to int8.
    Export => cmd_export,
    /// Serve a Hub-shaped directory on a local address (set HF_ENDPOINT to it).
    HubMirror => cmd_hub_mirror,
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions => cmd_completions,
}

#[derive(Debug, Parser)]
#[command(
    name = "imdb-lora",
    version = backend::VERSION,
    about = "LoRA fine-tuning of encoders (BERT, RoBERTa, XLM-R, ELECTRA, DistilBERT) for text \
             classification, IMDb sentiment by default"
)]
struct Cli {
    #[command(flatten)]
    ui: ui::UiArgs,
    #[command(subcommand)]
    command: Command,
}

fn main() -> ExitCode {
    keep_freed_memory();
    let cli = Cli::parse();
    let result = ui::init(&cli.ui).and_then(|()| {
        tracing::debug!(backend = backend::BACKEND_NAME, "starting");
        cli.command.run()
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        // Not a failure: the run stopped where it was asked to and says how to go on.
        Err(err) if err.downcast_ref::<interrupt::Interrupted>().is_some() => {
            let _ = writeln!(std::io::stderr(), "{err}");
            ExitCode::from(interrupt::EXIT_STATUS)
        }
        Err(err) => {
            // The cause chain on one line; stderr, like every log.
            let _ = writeln!(std::io::stderr(), "error: {}", one_line(&err));
            ExitCode::FAILURE
        }
    }
}

/// `err` and its causes joined by `: `, each said once: a cause whose text its outer message
/// already contains (a library error that prints its source as well as returning it, as
/// `thiserror`'s `{source}` does) is left out.
fn one_line(err: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in err.chain() {
        let text = cause.to_string();
        if out.contains(&text) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&text);
    }
    out
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory as _;

    use super::*;

    #[test]
    fn each_cause_is_said_once() {
        let io = std::io::Error::from_raw_os_error(17);
        let inner = anyhow::Error::from(io).context(format!(
            "could not create directory /tmp/a: {}",
            std::io::Error::from_raw_os_error(17)
        ));
        assert_eq!(
            one_line(&inner),
            "could not create directory /tmp/a: File exists (os error 17)"
        );
        let plain = anyhow::anyhow!("no column \"x\"").context("--data d.csv");
        assert_eq!(one_line(&plain), "--data d.csv: no column \"x\"");
    }

    #[test]
    fn the_command_line_is_consistent() {
        // Duplicate names, bad defaults, conflicting aliases: what clap checks in debug builds.
        Cli::command().debug_assert();
    }

    #[test]
    fn trainers_option_names_are_accepted() {
        let cli = Cli::try_parse_from([
            "imdb-lora",
            "train",
            "--num-train-epochs",
            "2",
            "--per-device-train-batch-size",
            "8",
            "--learning-rate",
            "1e-4",
            "--lr-scheduler-type",
            "constant",
            "--gradient-accumulation-steps",
            "4",
            "--output-dir",
            "runs/x",
        ])
        .unwrap_or_else(|e| panic!("{e}"));
        let Command::Train(args) = cli.command else {
            panic!("not train");
        };
        let text = format!("{args:?}");
        for field in [
            "epochs: Some(2)",
            "batch_size: 8",
            "lr: 0.0001",
            "lr_schedule: Constant",
            "grad_accum: 4",
            "out: \"runs/x\"",
        ] {
            assert!(text.contains(field), "{field} in {text}");
        }
    }
}
