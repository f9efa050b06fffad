//! `imdb-lora eval`: evaluate a saved model — the check that what was saved is what was
//! measured. `eval RUN_DIR` takes everything from the run (its model, and its test examples
//! exactly, as `split.json` recorded them: files, columns, classes, rows; `--max-len` from
//! `metrics.json`); `eval --saved MODEL` with data options evaluates on any labelled data (a
//! lone file in whole, its labels read as the model's class names). The metrics are printed on
//! stdout as JSON, and written to `--out` when given.

use std::path::{Path, PathBuf};

use anyhow::Context;
use imdb_lora_data::{Batcher, BatcherConfig, TextTokenizer, TokenizedSplit};
use imdb_lora_encoder::load_classifier;
use imdb_lora_metrics::MetricsFile;
use imdb_lora_train::{METRICS_FILE, evaluate};

use crate::backend::{self, Backend};
use imdb_lora_data::table::SplitRecord;

use crate::common::{DataArgs, PadArgs};

/// Evaluate a saved model (config.json + model.safetensors + tokenizer) on test data.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Examples:
  # The run's own model and test examples, exactly (from its split.json and metrics.json)
  imdb-lora eval runs/imdb
  # A saved model on any labelled file, all of it (labels read as the model's class names)
  imdb-lora eval --saved runs/imdb/model --data other.csv --out other.json")]
pub struct Args {
    /// A run directory `train` wrote: its `model/` is evaluated on exactly its test examples.
    /// The data options do not apply to it.
    #[arg(value_name = "RUN_DIR", conflicts_with_all = [
        "data", "data_config", "test_file", "test_fraction", "text_column",
        "label_column", "label_names", "header", "train_n", "test_n", "max_len", "seed",
    ])]
    run_dir: Option<PathBuf>,
    #[command(flatten)]
    data: DataArgs,
    /// The saved model directory (e.g. outputs/imdb_lora/model); with RUN_DIR, default
    /// RUN_DIR/model.
    #[arg(long, required_unless_present = "run_dir")]
    saved: Option<PathBuf>,
    /// Evaluation batch size.
    #[arg(long, default_value_t = 64)]
    batch_size: usize,
    #[command(flatten)]
    pad: PadArgs,
    /// Also write the metrics JSON to this file (checked before any work).
    #[arg(long)]
    out: Option<PathBuf>,
    #[command(flatten)]
    precision: backend::PrecisionArg,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    if let Some(out) = &args.out {
        anyhow::ensure!(
            !out.is_dir(),
            "--out {}: a directory; give the path of the JSON file to write",
            out.display()
        );
    }
    let d = &args.data;
    // Evaluation reads the test part only: a training size would be silently ignored.
    anyhow::ensure!(
        d.train_n.is_none(),
        "--train-n does not apply to eval, which evaluates the test part (--test-n sizes it)"
    );
    let precision = args.precision.checked()?;
    let (saved, max_len) = match (&args.run_dir, &args.saved) {
        (Some(run), saved) => (
            saved.clone().unwrap_or_else(|| run.join("model")),
            MetricsFile::read(&run.join(METRICS_FILE))?.run.config.max_len,
        ),
        (None, Some(saved)) => (saved.clone(), d.max_len),
        (None, None) => anyhow::bail!("give a run directory or --saved MODEL_DIR"),
    };
    let config_path = saved.join(imdb_lora_encoder::files::CONFIG_FILE);
    let config = imdb_lora_encoder::EncoderConfig::from_file(&config_path)?;
    // A model trained with a long-text rule is evaluated as it was trained (and as predict
    // and serve run it): its recorded rule and window length.
    let (max_len, long_text) = imdb_lora_data::RecordedLongText::resolve(
        config.extra.get(imdb_lora_data::long_text::CONFIG_KEY),
        &config_path,
        max_len,
    )?;
    let tokenizer = TextTokenizer::from_dir(&saved, max_len)
        .and_then(|t| t.with_long_text(long_text))
        .with_context(|| format!("tokenizer of {}", saved.display()))?;
    tokenizer.check_ids_fit(config.vocab_size, config.type_vocab_size)?;
    let model_names: Vec<String> = (0..config.num_labels())
        .map(|i| config.label_name(i))
        .collect();
    let (test, classes) = match &args.run_dir {
        Some(run) => recorded_test(run, &tokenizer)?,
        None => {
            let data = on_its_own(d, &model_names).load(
                &d.client(),
                &tokenizer,
                false,
                &crate::common::Validation::None,
            )?;
            (data.test, data.classes)
        }
    };
    // The model must have been trained on these classes, in this order.
    anyhow::ensure!(
        model_names == classes,
        "{}: the model's labels {model_names:?} are not the data's classes {classes:?}",
        config_path.display(),
    );
    let device = backend::device()?;
    let (model, _) = load_classifier::<Backend>(&saved, &device, d.seed)?;
    let model = model.with_precision(precision);
    let batcher = Batcher::new(
        test.examples,
        tokenizer.pad_id(),
        max_len,
        BatcherConfig::eval(args.batch_size).with_pad_multiple(args.pad.resolve()),
    )?;
    let (metrics, per_class) = evaluate(
        &model,
        batcher.epoch(0),
        &device,
        crate::ui::progress().as_ref(),
        "evaluation",
        &classes,
    )?;
    // The headline numbers, then the per-class ones under `classes`.
    let mut value = serde_json::to_value(metrics)?;
    if let Some(object) = value.as_object_mut() {
        object.insert("classes".into(), serde_json::to_value(per_class)?);
    }
    let json = serde_json::to_vec_pretty(&value)?;
    if let Some(out) = &args.out {
        imdb_lora_fsio::write(out, &json)?;
    }
    tracing::info!(
        accuracy = metrics.accuracy,
        f1 = metrics.f1,
        samples = metrics.samples,
        "evaluated {}",
        saved.display()
    );
    let mut stdout = std::io::stdout().lock();
    std::io::Write::write_all(&mut stdout, &json)?;
    std::io::Write::write_all(&mut stdout, b"\n")?;
    Ok(())
}

/// The data options as `eval` reads them: labels named as the model names its classes
/// (unless names are given), and a lone labelled file, without a test file or fraction, is
/// the test data in whole.
fn on_its_own(d: &DataArgs, model_names: &[String]) -> DataArgs {
    let mut d = d.clone();
    if d.label_names.is_none() {
        d.label_names = Some(model_names.to_vec());
    }
    if Path::new(&d.data).is_file() && d.test_file.is_none() && d.test_fraction.is_none() {
        d.test_file = Some(PathBuf::from(&d.data));
    }
    d
}

/// The test examples `run` recorded in its `split.json`, read again and tokenised, and its
/// classes.
fn recorded_test(
    run: &Path,
    tokenizer: &TextTokenizer,
) -> anyhow::Result<(TokenizedSplit, Vec<String>)> {
    let record = SplitRecord::read(run)?;
    let split = crate::common::tokenized_part(
        &record,
        &record.test_files,
        &record.test_rows,
        tokenizer,
        "test",
    )?;
    Ok((split, record.classes))
}
