//! `imdb-lora predict`: label texts with a fine-tuned model, or with a base model plus a PEFT
//! LoRA adapter; prints a JSON array on stdout (or, with `--jsonl`, one object per line as
//! each batch finishes), one object per text in input order, the same shape for every model:
//! `{"text", "label", "score", "probs": {class: probability, ...}}`, with the recipe's
//! `neg_prob` and `pos_prob` after `text` for a sentiment model (IMDb's).

use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, bail};
use imdb_lora_hub::{HubClient, HubConfig, RepoType, Source};
use imdb_lora_infer::{Adapter, PredictOptions, Prediction, Predictor};

use crate::backend::{self, Backend};
use crate::fetch::fetch_model;

/// Classify texts with a fine-tuned model; prints JSON on stdout.
///
/// Texts come from the arguments, else from --file, else one per line from stdin (every line
/// is a text, an empty line included: the model then sees just [CLS] [SEP]). Texts longer
/// than --max-len tokens are truncated, with a warning naming their index.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Examples:
  imdb-lora predict --model runs/imdb/model \"A triumph from start to finish.\"
  # The base model plus a PEFT adapter (from this tool or from PEFT), merged on loading
  imdb-lora predict --model bert-base-uncased --adapter runs/imdb/model/adapter \"Dull.\"
  # One JSON object per line, as each batch is classified
  cat reviews.txt | imdb-lora predict --model runs/imdb/model --jsonl > predictions.jsonl")]
pub struct Args {
    /// Model: a local directory (config.json, model.safetensors, tokenizer.json or vocab.txt)
    /// or a Hugging Face Hub repository id, `owner/name[@revision]`.
    #[arg(long, value_name = "DIR|REPO")]
    model: String,
    /// PEFT LoRA adapter (adapter_config.json + adapter_model.safetensors) applied on top of
    /// --model and merged: a local directory or a Hub repository id.
    #[arg(long, value_name = "DIR|REPO")]
    adapter: Option<String>,
    /// Longest token sequence fed to the model ([CLS] and [SEP] included); capped at the
    /// model's max_position_embeddings.
    #[arg(long, default_value_t = imdb_lora_infer::DEFAULT_MAX_LEN, value_name = "N")]
    max_len: usize,
    /// Texts per forward pass.
    #[arg(long, default_value_t = imdb_lora_infer::DEFAULT_BATCH_SIZE, value_name = "N")]
    batch_size: usize,
    /// Read the texts from this file, one per line.
    #[arg(long, value_name = "PATH", conflicts_with = "texts")]
    file: Option<PathBuf>,
    /// Resolve Hub repositories from the local Hugging Face cache only (as HF_HUB_OFFLINE=1).
    #[arg(long)]
    offline: bool,
    /// One compact JSON object per line, written as each batch of --batch-size texts is
    /// classified (stdin is read a batch at a time), instead of one array at the end.
    #[arg(long)]
    jsonl: bool,
    #[command(flatten)]
    precision: backend::PrecisionArg,
    #[command(flatten)]
    quantize: backend::QuantizeArg,
    /// Texts to classify. Without any (and without --file), one text per line is read from
    /// stdin; every line counts, an empty one too (the model then sees just [CLS] [SEP]).
    #[arg(value_name = "TEXT")]
    texts: Vec<String>,
}

/// Runs the subcommand.
pub fn run(args: Args) -> anyhow::Result<()> {
    if args.jsonl {
        return run_jsonl(&args);
    }
    let texts = read_texts(&args)?;
    if texts.is_empty() {
        tracing::warn!("no texts to classify");
    }
    let start = Instant::now();
    let predictor = load(&args, options(&args)?)?;
    let loaded = start.elapsed().as_secs_f64();
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let predictions = predictor.predict(&refs)?;
    tracing::info!(
        texts = texts.len(),
        backend = backend::BACKEND_NAME,
        load_seconds = format!("{loaded:.2}"),
        predict_seconds = format!("{:.2}", start.elapsed().as_secs_f64() - loaded),
        "predicted"
    );
    write_json(&predictions).context("writing the predictions to stdout")
}

fn options(args: &Args) -> anyhow::Result<PredictOptions> {
    let precision = args.precision.checked()?;
    Ok(PredictOptions::default()
        .with_max_len(args.max_len)
        .with_batch_size(args.batch_size)
        .with_precision(precision)
        .with_quantize(args.quantize.checked(precision)?))
}

/// `--jsonl`: texts classified and written a batch at a time, stdin read as it comes.
fn run_jsonl(args: &Args) -> anyhow::Result<()> {
    let predictor = load(args, options(args)?)?;
    let batch = predictor.batch_size().max(1);
    let mut out = std::io::stdout().lock();
    let mut written = 0usize;
    let mut classify = |texts: &[String]| -> anyhow::Result<()> {
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        for p in predictor.predict(&refs)? {
            writeln!(out, "{}", serde_json::to_string(&p)?)?;
        }
        out.flush().context("writing the predictions to stdout")?;
        written += texts.len();
        Ok(())
    };
    if !args.texts.is_empty() || args.file.is_some() {
        for chunk in read_texts(args)?.chunks(batch) {
            classify(chunk)?;
        }
    } else {
        let stdin = std::io::stdin();
        if stdin.is_terminal() {
            bail!(
                "no texts given: pass them as arguments, with --file PATH, or one per line on stdin"
            );
        }
        let mut chunk = Vec::with_capacity(batch);
        for line in stdin.lock().lines() {
            chunk.push(line.context("reading texts from stdin")?);
            if chunk.len() == batch {
                classify(&chunk)?;
                chunk.clear();
            }
        }
        if !chunk.is_empty() {
            classify(&chunk)?;
        }
    }
    if written == 0 {
        tracing::warn!("no texts to classify");
    }
    Ok(())
}

fn read_texts(args: &Args) -> anyhow::Result<Vec<String>> {
    if !args.texts.is_empty() {
        return Ok(args.texts.clone());
    }
    if let Some(path) = &args.file {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading texts from {}", path.display()))?;
        return Ok(text.lines().map(str::to_string).collect());
    }
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        bail!("no texts given: pass them as arguments, with --file PATH, or one per line on stdin");
    }
    stdin
        .lock()
        .lines()
        .collect::<Result<_, _>>()
        .context("reading texts from stdin")
}

fn hub_client(offline: bool) -> HubClient {
    let config = HubConfig::from_env();
    // The flag can only switch offline mode on; HF_HUB_OFFLINE=1 is honoured either way.
    let config = if offline {
        config.with_offline(true)
    } else {
        config
    };
    HubClient::new(config).with_progress(crate::ui::progress())
}

fn load(args: &Args, options: PredictOptions) -> anyhow::Result<Predictor<Backend>> {
    let adapters: Vec<(Option<String>, String)> =
        args.adapter.iter().map(|a| (None, a.clone())).collect();
    load_predictor(&args.model, &adapters, options, args.offline)
}

/// A run directory (`train --out`) stands for the model it saved: `RUN/model`.
fn model_dir_of_run(dir: PathBuf) -> PathBuf {
    let saved = dir.join("model");
    if !dir.join("config.json").is_file() && saved.join("config.json").is_file() {
        tracing::info!(model = %saved.display(), "a run directory: using the model it saved");
        return saved;
    }
    dir
}

/// A run directory, or a saved model directory, stands for the adapter it holds.
fn adapter_dir_of_run(dir: PathBuf) -> PathBuf {
    let adapter = imdb_lora_encoder::adapter::ADAPTER_CONFIG;
    if dir.join(adapter).is_file() {
        return dir;
    }
    for inner in [dir.join("adapter"), dir.join("model").join("adapter")] {
        if inner.join(adapter).is_file() {
            tracing::info!(adapter = %inner.display(), "using the adapter saved in {}", dir.display());
            return inner;
        }
    }
    dir
}

/// The predictor for `model` (a directory, a run directory, or a Hub id) with `adapters`
/// (name, directory or Hub id; a run directory or saved model stands for its adapter),
/// shared by `predict` and `serve`. An adapter without a name is named after its
/// directory (a run directory's own name for a run).
pub(crate) fn load_predictor(
    model: &str,
    adapters: &[(Option<String>, String)],
    options: PredictOptions,
    offline: bool,
) -> anyhow::Result<Predictor<Backend>> {
    let device = backend::device()?;
    let client = hub_client(offline);
    let mut resolved = Vec::with_capacity(adapters.len());
    for (name, spec) in adapters {
        let (dir, default_name) = match Source::parse(spec, RepoType::Model)? {
            Source::Local(dir) => {
                let named = Adapter::from_dir(&dir).name;
                (adapter_dir_of_run(dir), named)
            }
            source @ Source::Hub(_) => {
                // One fetch: both files come from one commit, so they sit in the same
                // snapshot directory of the cache.
                let [config, _weights] = source
                    .fetch(
                        &client,
                        [
                            imdb_lora_encoder::adapter::ADAPTER_CONFIG,
                            imdb_lora_encoder::adapter::ADAPTER_WEIGHTS,
                        ],
                        [],
                    )?
                    .required;
                let dir = config
                    .parent()
                    .map(PathBuf::from)
                    .with_context(|| format!("{} has no parent directory", config.display()))?;
                (dir, spec.rsplit('/').next().unwrap_or(spec).to_string())
            }
        };
        resolved.push(Adapter {
            name: name.clone().unwrap_or(default_name),
            dir,
        });
    }
    let predictor = match Source::parse(model, RepoType::Model)? {
        Source::Local(dir) => {
            Predictor::from_dir(&model_dir_of_run(dir), &resolved, options, &device)?
        }
        source @ Source::Hub(_) => {
            let files = fetch_model(&client, &source)?;
            Predictor::from_model_files(&files, &resolved, options, &device)?
        }
    };
    Ok(predictor)
}

/// A JSON array with one compact object per line: valid JSON, and readable with `grep`.
fn write_json(predictions: &[Prediction]) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    if predictions.is_empty() {
        writeln!(out, "[]")?;
    } else {
        for (i, p) in predictions.iter().enumerate() {
            let sep = if i == 0 { "[" } else { "," };
            writeln!(out, "{sep}")?;
            write!(out, "  {}", serde_json::to_string(p)?)?;
        }
        writeln!(out, "\n]")?;
    }
    out.flush()?;
    Ok(())
}
