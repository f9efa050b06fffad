//! `imdb-lora serve`: the model as an HTTP service speaking text-embeddings-inference's API
//! (crates/serve), with PEFT adapters over one shared base. Ctrl-C or SIGTERM stops it
//! gracefully (exit 0); a second one quits at once.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use imdb_lora_encoder::Precision;
use imdb_lora_infer::PredictOptions;
use imdb_lora_serve::{Limits, ServeConfig, Server};

use crate::backend;
use crate::cmd_predict::load_predictor;
use crate::common::PadArgs;

/// Serve a model over HTTP with TEI's API (POST /predict, GET /info, /health, /metrics) and
/// a page to try it at /.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Examples:
  imdb-lora serve --model runs/imdb
  curl -s localhost:3000/predict -H 'content-type: application/json' \\
       -d '{\"inputs\": \"A triumph from start to finish.\"}'
  # Two adapters over one base; requests pick one with \"adapter\": \"news\"
  imdb-lora serve --model sentence-transformers/all-MiniLM-L6-v2 \\
       --adapter imdb=runs/imdb --adapter news=runs/ag-news")]
pub struct Args {
    /// Model: a run directory (`train --out`), a model directory or a Hub repository id. With
    /// adapters, their base model.
    #[arg(long, value_name = "RUN|DIR|REPO")]
    model: String,
    /// A PEFT LoRA adapter over --model, as NAME=DIR (or DIR, named after it; a run directory
    /// stands for its adapter; a Hub id works too). Repeat for several: they share one copy
    /// of the base, and requests pick one with "adapter": NAME (default: the first). One
    /// adapter alone is merged into the weights.
    #[arg(long, value_name = "[NAME=]DIR|REPO")]
    adapter: Vec<String>,
    /// Address to listen on (loopback unless --allow-remote).
    #[arg(long, default_value = "127.0.0.1:3000")]
    addr: SocketAddr,
    /// Allow an --addr other than loopback (e.g. 0.0.0.0:3000): the server answers anyone
    /// who can connect, without authentication.
    #[arg(long)]
    allow_remote: bool,
    /// Longest token sequence fed to the model ([CLS] and [SEP] included); capped at the
    /// model's max_position_embeddings. Longer texts are refused (422) unless the request
    /// says "truncate": true or --auto-truncate is given.
    #[arg(long, default_value_t = imdb_lora_infer::DEFAULT_MAX_LEN, value_name = "N")]
    max_len: usize,
    #[command(flatten)]
    precision: backend::PrecisionArg,
    #[command(flatten)]
    quantize: backend::QuantizeArg,
    #[command(flatten)]
    pad: PadArgs,
    /// Resolve Hub repositories from the local Hugging Face cache only (as HF_HUB_OFFLINE=1).
    #[arg(long)]
    offline: bool,
    #[command(flatten)]
    limits: LimitArgs,
}

/// TEI's router limits, with its names and defaults.
#[derive(Debug, clap::Args)]
#[command(next_help_heading = "Limits (text-embeddings-inference's flags)")]
struct LimitArgs {
    /// Inputs being tokenised, queued or classified at once; beyond, requests get 429.
    #[arg(long, default_value_t = 512, value_name = "N")]
    max_concurrent_requests: usize,
    /// Token slots (padding included) in one forward pass. Default: TEI's 16384 on the GPU
    /// backends, 2048 on the CPU ones (smaller passes run faster per text there).
    #[arg(long, default_value_t = backend::DEFAULT_MAX_BATCH_TOKENS, value_name = "N")]
    max_batch_tokens: usize,
    /// Inputs in one forward pass (default: as many as --max-batch-tokens allows).
    #[arg(long, value_name = "N")]
    max_batch_requests: Option<usize>,
    /// Inputs in one request.
    #[arg(long, default_value_t = 32, value_name = "N")]
    max_client_batch_size: usize,
    /// Bytes in one request body.
    #[arg(long, default_value_t = 2_000_000, value_name = "BYTES")]
    payload_limit: usize,
    /// Cut texts over --max-len when a request does not say "truncate".
    #[arg(long)]
    auto_truncate: bool,
    /// Threads tokenising requests (default: one per core).
    #[arg(long, value_name = "N")]
    tokenization_workers: Option<usize>,
    /// Seconds a request may wait for its answer before it gets 503.
    #[arg(long, default_value_t = 60, value_name = "SECONDS")]
    request_timeout: u64,
    /// Seconds requests in flight are given to finish when the server is stopped.
    #[arg(long, default_value_t = 30, value_name = "SECONDS")]
    shutdown_timeout: u64,
}

/// `NAME=SPEC` or `SPEC`; a Windows-style `C:\...` path or a Hub id has no `=`.
fn adapter_spec(arg: &str) -> (Option<String>, String) {
    match arg.split_once('=') {
        Some((name, spec)) if !name.is_empty() && !spec.is_empty() => {
            (Some(name.to_string()), spec.to_string())
        }
        _ => (None, arg.to_string()),
    }
}

fn config(args: &Args, precision: Precision) -> anyhow::Result<ServeConfig> {
    let l = &args.limits;
    let mut config = ServeConfig::new(args.model.clone());
    config.addr = args.addr;
    config.allow_remote = args.allow_remote;
    config.limits = Limits {
        max_concurrent_requests: l.max_concurrent_requests,
        max_batch_tokens: l.max_batch_tokens,
        max_batch_requests: l.max_batch_requests,
        max_client_batch_size: l.max_client_batch_size,
        payload_limit: l.payload_limit,
        auto_truncate: l.auto_truncate,
    };
    if let Some(n) = l.tokenization_workers {
        config.tokenization_workers = n;
    }
    config.request_timeout = Duration::from_secs(l.request_timeout);
    config.shutdown_timeout = Duration::from_secs(l.shutdown_timeout);
    // TEI's `/info` `model_dtype`: what the weights compute in (int8 once the model is loaded
    // and known to be int8, below).
    config.model_dtype = match precision {
        Precision::F32 => "float32",
        Precision::Bf16 => "bfloat16",
    }
    .to_string();
    config.compute_type = if cfg!(any(feature = "cuda", feature = "wgpu")) {
        "gpu"
    } else {
        "cpu"
    }
    .to_string();
    config.backend = backend::BACKEND_NAME.to_string();
    config.version = env!("CARGO_PKG_VERSION").to_string();
    config.check_address()?;
    Ok(config)
}

/// Runs the subcommand.
pub fn run(args: Args) -> anyhow::Result<()> {
    // Everything that can be refused without loading the model is refused first.
    let precision = args.precision.checked()?;
    let quantize = args.quantize.checked(precision)?;
    let mut config = config(&args, precision)?;
    let adapters: Vec<(Option<String>, String)> =
        args.adapter.iter().map(|a| adapter_spec(a)).collect();
    let options = PredictOptions::default()
        .with_max_len(args.max_len)
        .with_precision(precision)
        .with_quantize(quantize)
        .with_pad_multiple(args.pad.resolve());
    let predictor = load_predictor(&args.model, &adapters, options, args.offline)?;
    if predictor.is_int8() {
        // Quantised at load (--quantize int8) or saved in int8.
        config.model_dtype = "int8".into();
    }
    let server = Server::start(predictor, config)?;
    let addr = server.addr();
    if !addr.ip().is_loopback() {
        tracing::warn!(%addr, "serving beyond this machine (--allow-remote), without authentication");
    }
    tracing::info!("listening on http://{addr} (a page to try it at /; Ctrl-C stops)");

    let (stop, stopped) = std::sync::mpsc::channel::<()>();
    let mut asked = false;
    ctrlc::set_handler(move || {
        if asked {
            tracing::warn!("stopped again: quitting now");
            std::process::exit(i32::from(crate::interrupt::EXIT_STATUS));
        }
        asked = true;
        tracing::info!("stopping: answering the requests in flight (Ctrl-C again quits at once)");
        let _ = stop.send(());
    })
    .context("installing the Ctrl-C / SIGTERM handler")?;
    // The handler's sender lives for the process, so this returns only on a signal.
    let _ = stopped.recv();
    server.shutdown()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adapter_specs_take_an_optional_name() {
        assert_eq!(
            adapter_spec("news=runs/ag"),
            (Some("news".into()), "runs/ag".into())
        );
        assert_eq!(adapter_spec("runs/ag"), (None, "runs/ag".into()));
        assert_eq!(adapter_spec("=x"), (None, "=x".into()));
        assert_eq!(adapter_spec("owner/name"), (None, "owner/name".into()));
    }
}
