//! `imdb-lora-perf`: the measurements `cargo xtask bench` needs from inside our stack, each
//! printed as one JSON object on stdout.
//!
//! * `tokenize`: time `TextTokenizer::encode_reviews` (what `imdb_lora_data::prepare_split` uses) over
//!   the IMDb train split, in-process, `--repeats` times.
//! * `flops`: rebuild the trainer's subsets and epoch-0 batch plans and count their FLOPs
//!   (convention: [`imdb_lora_perf::flops`]).
//! * `matmul`: `[n, n] × [n, n]` f32 on `burn::backend::Flex`: the machine's matmul rate
//!   for our stack.
//! * `texts`: write test reviews one per line, both classes evenly (the serving benchmark's
//!   requests, the same texts for every side).

#![allow(clippy::print_stdout)] // JSON on stdout is this binary's interface

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, anyhow, bail};
use burn::backend::Flex;
use burn::tensor::backend::Backend;
use burn::tensor::{Distribution, Tensor};
use clap::{Parser, Subcommand};
use imdb_lora_data::table::{Dataset, DatasetSpec, load_dataset};
use imdb_lora_data::{Batcher, BatcherConfig, SubsetSpec, TextTokenizer, prepare_split};
use imdb_lora_encoder::EncoderConfig;
use imdb_lora_perf::flops::{LORA_R, ModelShape, reference_batch, tally};
use serde_json::{Value, json};

#[derive(Parser)]
#[command(
    name = "imdb-lora-perf",
    about = "Micro-measurements for `cargo xtask bench` (JSON on stdout)"
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Time the encoding of the IMDb train reviews with the product's tokeniser.
    Tokenize {
        /// Model directory holding tokenizer.json or vocab.txt.
        #[arg(long)]
        model: PathBuf,
        /// Data directory: holds plain_text/train-00000-of-00001.parquet (or the file itself).
        #[arg(long)]
        data: PathBuf,
        /// Truncation length in tokens.
        #[arg(long, default_value_t = 256)]
        max_len: usize,
        /// Encode only the first N reviews (file order).
        #[arg(long)]
        limit: Option<usize>,
        /// Timed passes over the reviews.
        #[arg(long, default_value_t = 3)]
        repeats: usize,
    },
    /// Count the FLOPs of the trainer's epoch-0 training batches and of its evaluation batches.
    Flops(FlopsArgs),
    /// Write `--n` test reviews, one per line (line breaks inside a review become spaces):
    /// every (len / n)-th review of the test split, so both classes come evenly.
    Texts {
        /// Data directory: holds plain_text/test-00000-of-00001.parquet (or the file itself).
        #[arg(long)]
        data: PathBuf,
        /// How many.
        #[arg(long, default_value_t = 1024)]
        n: usize,
        /// The file to write.
        #[arg(long)]
        out: PathBuf,
        /// Write JSON Lines `{"text", "label"}` instead, the label named by this list (one
        /// name per class of the data, in class order: a model's `id2label`).
        #[arg(long, value_delimiter = ',', value_name = "NAMES")]
        labelled: Option<Vec<String>>,
    },
    /// Time square f32 matmuls on burn's Flex backend.
    Matmul {
        /// Comma-separated sizes n.
        #[arg(long, value_delimiter = ',', default_value = "1024,2048")]
        sizes: Vec<usize>,
        /// Timed products per size (after one warm-up).
        #[arg(long, default_value_t = 5)]
        repeats: usize,
    },
}

fn main() -> Result<()> {
    let json = match Cli::parse().command {
        Cmd::Tokenize {
            model,
            data,
            max_len,
            limit,
            repeats,
        } => tokenize(&model, &data, max_len, limit, repeats)?,
        Cmd::Flops(args) => flops(&args)?,
        Cmd::Matmul { sizes, repeats } => matmul(&sizes, repeats)?,
        Cmd::Texts {
            data,
            n,
            out,
            labelled,
        } => texts(&data, n, &out, labelled.as_deref())?,
    };
    println!("{json}");
    Ok(())
}

/// The parquet file of `split` under `data`: `data/plain_text/<split>-…` or `data/<split>-…`.
/// The dataset under `data` (IMDb's tree or any split files), read as the CLI reads it.
fn dataset(data: &Path) -> Result<Dataset> {
    load_dataset(&DatasetSpec::new(data)).with_context(|| format!("reading {}", data.display()))
}

fn texts(data: &Path, n: usize, out: &Path, labelled: Option<&[String]>) -> Result<Value> {
    let dataset = dataset(data)?;
    let test = dataset.test;
    if n == 0 || test.len() < n {
        bail!("--n {n}: the test split has {} reviews", test.len());
    }
    if let Some(names) = labelled
        && names.len() != dataset.classes.len()
    {
        bail!(
            "--labelled {names:?}: the data has {} classes ({:?})",
            dataset.classes.len(),
            dataset.classes
        );
    }
    let step = test.len() / n;
    let lines = (0..n)
        .map(|i| {
            let e = &test[i * step];
            let name = |names: &[String]| {
                let label = usize::try_from(e.label).ok();
                label.and_then(|l| names.get(l).cloned())
            };
            Ok(match labelled {
                Some(names) => {
                    let label = name(names).with_context(|| {
                        format!("review {}: label {} has no name", i * step, e.label)
                    })?;
                    json!({"text": e.text, "label": label}).to_string()
                }
                None => e.text.replace(['\n', '\r'], " "),
            })
        })
        .collect::<Result<Vec<String>>>()?;
    imdb_lora_fsio::write(out, (lines.join("\n") + "\n").as_bytes())
        .with_context(|| format!("writing {}", out.display()))?;
    Ok(json!({"texts": n, "out": out.display().to_string()}))
}

fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

fn tokenize(
    model: &Path,
    data: &Path,
    max_len: usize,
    limit: Option<usize>,
    repeats: usize,
) -> Result<Value> {
    if repeats == 0 {
        bail!("--repeats must be at least 1");
    }
    let mut reviews = dataset(data)?.train;
    if let Some(n) = limit {
        reviews.truncate(n);
    }
    let tokenizer = TextTokenizer::from_dir(model, max_len)
        .with_context(|| format!("tokenizer of {}", model.display()))?;
    let what = data.display().to_string();
    let mut seconds = Vec::with_capacity(repeats);
    let mut tokens = 0;
    for _ in 0..repeats {
        let start = Instant::now();
        let (encoded, stats) = tokenizer.encode_reviews(&reviews, &what)?;
        seconds.push(start.elapsed().as_secs_f64());
        tokens = stats.tokens;
        // Freed outside the timing, as Python keeps its result alive.
        drop(black_box(encoded));
    }
    let med = median(&seconds);
    Ok(json!({
        "impl": "imdb-data",
        "reviews": reviews.len(),
        "tokens": tokens,
        "max_len": max_len,
        "seconds": seconds,
        "median_seconds": med,
        "reviews_per_s": reviews.len() as f64 / med,
        "tokens_per_s": tokens as f64 / med,
    }))
}

#[derive(clap::Args, Debug)]
struct FlopsArgs {
    /// Model directory holding config.json and the tokenizer files.
    #[arg(long)]
    model: PathBuf,
    /// Data directory holding plain_text/{train,test}-00000-of-00001.parquet.
    #[arg(long)]
    data: PathBuf,
    /// Training reviews (a balanced seeded subset, as the CLI takes them).
    #[arg(long, default_value_t = 512)]
    train_n: usize,
    /// Test reviews.
    #[arg(long, default_value_t = 1024)]
    test_n: usize,
    /// Truncation length in tokens.
    #[arg(long, default_value_t = 256)]
    max_len: usize,
    /// Training batch size.
    #[arg(long, default_value_t = 16)]
    batch_size: usize,
    /// Evaluation batch size.
    #[arg(long, default_value_t = 64)]
    eval_batch_size: usize,
    /// Seed for subsets and data order.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Length bucketing window (batches), as `imdb-lora train --bucket-window` (0: off).
    #[arg(long, default_value_t = 0)]
    bucket_window: usize,
}

fn flops(a: &FlopsArgs) -> Result<Value> {
    let config_path = a.model.join("config.json");
    let config = EncoderConfig::from_file(&config_path)?;
    let shape = ModelShape::of(&config, LORA_R);
    let tokenizer = TextTokenizer::from_dir(&a.model, a.max_len)
        .with_context(|| format!("tokenizer of {}", a.model.display()))?;
    // As `DataArgs::subsets` in the CLI.
    let data = dataset(&a.data)?;
    let train = prepare_split(
        &a.data,
        data.train,
        &tokenizer,
        &SubsetSpec::balanced(a.train_n, a.seed),
    )?;
    let test = prepare_split(
        &a.data,
        data.test,
        &tokenizer,
        &SubsetSpec::balanced(a.test_n, a.seed),
    )?;
    let train_lens: Vec<usize> = train.examples.iter().map(|e| e.ids.len()).collect();
    let test_lens: Vec<usize> = test.examples.iter().map(|e| e.ids.len()).collect();

    // As `imdb_lora_train::fine_tune`: the first epoch's training plan and the (fixed) evaluation plan.
    let mut train_cfg = BatcherConfig::train(a.batch_size, a.seed);
    if a.bucket_window > 0 {
        train_cfg = train_cfg.with_bucketing(a.bucket_window);
    }
    let pad = tokenizer.pad_id();
    let train_plan = Batcher::new(train.examples, pad, a.max_len, train_cfg)?.plan(0);
    let eval_plan = Batcher::new(
        test.examples,
        pad,
        a.max_len,
        BatcherConfig::eval(a.eval_batch_size),
    )?
    .plan(0);

    Ok(json!({
        "impl": "imdb-lora",
        "model": {
            "hidden": shape.hidden,
            "intermediate": shape.intermediate,
            "layers": shape.layers,
            "lora_r": shape.lora_r,
        },
        "args": {
            "train_n": a.train_n,
            "test_n": a.test_n,
            "max_len": a.max_len,
            "batch_size": a.batch_size,
            "eval_batch_size": a.eval_batch_size,
            "seed": a.seed,
            "bucket_window": a.bucket_window,
        },
        "reference_batch": reference_batch(&shape, 16, 256),
        "train": tally(&shape, &train_plan, &train_lens, true).to_json(),
        "eval": tally(&shape, &eval_plan, &test_lens, false).to_json(),
    }))
}

fn matmul(sizes: &[usize], repeats: usize) -> Result<Value> {
    if repeats == 0 {
        bail!("--repeats must be at least 1");
    }
    type B = Flex;
    let device = Default::default();
    let sync = || B::sync(&device).map_err(|e| anyhow!("Flex sync failed: {e:?}"));
    let mut out = Vec::new();
    for &n in sizes {
        B::seed(&device, n as u64);
        let a = Tensor::<B, 2>::random([n, n], Distribution::Normal(0.0, 1.0), &device);
        let b = Tensor::<B, 2>::random([n, n], Distribution::Normal(0.0, 1.0), &device);
        sync()?;
        let warm = a.clone().matmul(b.clone());
        sync()?;
        drop(black_box(warm));
        let mut seconds = Vec::with_capacity(repeats);
        for _ in 0..repeats {
            let start = Instant::now();
            let c = a.clone().matmul(b.clone());
            sync()?;
            seconds.push(start.elapsed().as_secs_f64());
            drop(black_box(c));
        }
        let med = median(&seconds);
        let best = seconds.iter().copied().fold(f64::INFINITY, f64::min);
        let flops = 2.0 * (n as f64).powi(3);
        out.push(json!({
            "n": n,
            "seconds": seconds,
            "median_seconds": med,
            "gflops": flops / med / 1e9,
            "best_gflops": flops / best / 1e9,
        }));
    }
    Ok(json!({ "impl": "burn-flex f32", "repeats": repeats, "sizes": out }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
        assert!(median(&[]).is_nan());
    }
}
