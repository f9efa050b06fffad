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
use imdb_lora_encoder::Quantization;
use imdb_lora_metrics::EvalMetrics;
use imdb_lora_train::{Evaluation, METRICS_FILE, evaluate_texts};

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
  imdb-lora eval --saved runs/imdb/model --data other.csv --out other.json
  # In int8, with how often its labels agree with f32's on the same texts
  imdb-lora eval runs/imdb --quantize int8 --compare-f32")]
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
    #[command(flatten)]
    quantize: backend::QuantizeArg,
    /// With --quantize: evaluate the f32 model on the same texts too and report, under
    /// `compare_f32`, its metrics, the share of texts both label alike and the largest
    /// difference of a class probability.
    #[arg(long, requires = "quantize")]
    compare_f32: bool,
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
    let quantize = args.quantize.checked(precision)?;
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
    crate::common::check_max_len(max_len, &config, &config_path)?;
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
    anyhow::ensure!(
        !(args.compare_f32 && model.is_int8()),
        "{}: saved in int8, so there are no f32 weights to compare with; --compare-f32 on the \
         f32 model it was exported from",
        saved.display()
    );
    let model = model.with_precision(precision);
    let reference = args.compare_f32.then(|| model.clone());
    let model = match quantize {
        Some(Quantization::Int8) => model.quantize_int8()?,
        _ => model,
    };
    let batcher = Batcher::new(
        test.examples,
        tokenizer.pad_id(),
        max_len,
        BatcherConfig::eval(args.batch_size).with_pad_multiple(args.pad.resolve()),
    )?;
    let progress = crate::ui::progress();
    let run = |model, label| {
        evaluate_texts(model, batcher.epoch(0), &device, progress.as_ref(), label, &classes)
    };
    let evaluation = run(&model, "evaluation")?;
    let metrics = evaluation.metrics;
    // The headline numbers, then the per-class ones under `classes`.
    let mut value = serde_json::to_value(metrics)?;
    if let Some(object) = value.as_object_mut() {
        object.insert("classes".into(), serde_json::to_value(&evaluation.classes)?);
        #[cfg(all(feature = "flex", not(any(feature = "cuda", feature = "wgpu"))))]
        if model.is_int8() {
            // Which micro-kernel ran: the numbers depend on it (VNNI, AVX2 or portable).
            object.insert(
                "int8_kernel".into(),
                imdb_lora_encoder::Int8Kernel::chosen().name().into(),
            );
        }
        if let Some(reference) = &reference {
            let f32_run = run(reference, "f32 evaluation")?;
            let comparison = Comparison::of(&f32_run, &evaluation)?;
            tracing::info!(
                label_agreement = comparison.label_agreement,
                max_abs_prob_diff = comparison.max_abs_prob_diff,
                f32_accuracy = f32_run.metrics.accuracy,
                "int8 against f32 on the same texts"
            );
            object.insert("compare_f32".into(), serde_json::to_value(comparison)?);
        }
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

/// `--compare-f32`: the f32 model's metrics beside the int8 ones, text by text.
#[derive(Debug, serde::Serialize)]
struct Comparison {
    /// The f32 model's metrics on the same texts.
    f32: EvalMetrics,
    /// Texts compared.
    texts: usize,
    /// Share of texts both models put in the same class.
    label_agreement: f64,
    /// Texts they put in different classes.
    labels_differ: usize,
    /// The largest |p_int8 − p_f32| over texts and classes.
    max_abs_prob_diff: f64,
}

impl Comparison {
    /// `int8` against `f32`, two passes over the same batches.
    fn of(f32: &Evaluation, int8: &Evaluation) -> anyhow::Result<Self> {
        anyhow::ensure!(
            f32.texts.len() == int8.texts.len(),
            "the two passes saw {} and {} texts",
            f32.texts.len(),
            int8.texts.len()
        );
        let pairs = || f32.texts.iter().zip(&int8.texts);
        let labels_differ = pairs().filter(|(a, b)| a.prediction != b.prediction).count();
        let max_abs_prob_diff = pairs()
            .flat_map(|(a, b)| {
                a.probabilities
                    .iter()
                    .zip(&b.probabilities)
                    .map(|(p, q)| (p - q).abs())
            })
            .fold(0.0, f64::max);
        let texts = f32.texts.len();
        Ok(Self {
            f32: f32.metrics,
            texts,
            label_agreement: 1.0 - labels_differ as f64 / texts.max(1) as f64,
            labels_differ,
            max_abs_prob_diff,
        })
    }
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
