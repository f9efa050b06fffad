//! `imdb-lora eval`: evaluate a saved model directory on the (same seeded) test subset and
//! write the metrics as JSON — the check that what was saved is what was measured.

use std::path::PathBuf;

use anyhow::Context;
use imdb_lora_encoder::load_classifier;
use imdb_lora_data::{Batcher, BatcherConfig, TextTokenizer};
use imdb_lora_train::evaluate;

use crate::backend::{self, Backend};
use crate::common::{DataArgs, PadArgs};

/// Evaluate a saved model (config.json + model.safetensors + tokenizer) on the test subset.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Examples:
  # The same data options as the run that trained it: the same seeded test subset
  imdb-lora eval --saved runs/imdb/model --small --out runs/imdb/eval.json")]
pub struct Args {
    #[command(flatten)]
    data: DataArgs,
    /// The saved model directory (e.g. outputs/imdb_lora/model).
    #[arg(long)]
    saved: PathBuf,
    /// Evaluation batch size.
    #[arg(long, default_value_t = 64)]
    batch_size: usize,
    #[command(flatten)]
    pad: PadArgs,
    /// Where to write the metrics JSON.
    #[arg(long)]
    out: PathBuf,
    #[command(flatten)]
    precision: backend::PrecisionArg,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let d = &args.data;
    let precision = args.precision.checked()?;
    let config_path = args.saved.join(imdb_lora_encoder::files::CONFIG_FILE);
    let config = imdb_lora_encoder::EncoderConfig::from_file(&config_path)?;
    let tokenizer = TextTokenizer::from_dir(&args.saved, d.max_len)
        .with_context(|| format!("tokenizer of {}", args.saved.display()))?;
    tokenizer.check_ids_fit(config.vocab_size, config.type_vocab_size)?;
    let data = d.load(&d.client(), &tokenizer, false)?;
    // The model must have been trained on these classes, in this order.
    let model_names: Vec<String> = (0..config.num_labels())
        .map(|i| config.label_name(i))
        .collect();
    anyhow::ensure!(
        model_names == data.classes,
        "{}: the model's labels {model_names:?} are not the data's classes {:?}",
        config_path.display(),
        data.classes
    );
    let (test, classes) = (data.test, data.classes);
    let device = backend::device()?;
    let (model, _) = load_classifier::<Backend>(&args.saved, &device, d.seed)?;
    let model = model.with_precision(precision);
    let batcher = Batcher::new(
        test.examples,
        tokenizer.pad_id(),
        d.max_len,
        BatcherConfig::eval(args.batch_size).with_pad_multiple(args.pad.resolve()),
    )?;
    let (metrics, per_class) = evaluate(
        &model,
        batcher.epoch(0),
        &device,
        &imdb_lora_progress::Silent,
        "evaluation",
        &classes,
    )?;
    // The headline numbers, then the per-class ones under `classes`.
    let mut value = serde_json::to_value(metrics)?;
    if let Some(object) = value.as_object_mut() {
        object.insert("classes".into(), serde_json::to_value(per_class)?);
    }
    let json = serde_json::to_vec_pretty(&value)?;
    imdb_lora_fsio::write(&args.out, &json)?;
    tracing::info!(
        accuracy = metrics.accuracy,
        f1 = metrics.f1,
        out = %args.out.display(),
        "evaluated saved model"
    );
    Ok(())
}
