//! `imdb-lora train`: baseline → LoRA fine-tuning with per-epoch evaluation → the saved
//! model. Writes `metrics.json`, `split.json`, `checkpoints/`, `model/` (merged, Hugging Face
//! format), `model/adapter/` (PEFT format), `report.md` and `images/` into `--out`, and a
//! summary on stdout; an interrupted run (killed, or stopped by
//! Ctrl-C after a checkpoint: exit status 130) resumes from its checkpoint.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context;
use imdb_lora_encoder::{EncoderConfig, load_classifier_with_config, save_adapter};
use imdb_lora_lora::LoraConfig;
use imdb_lora_metrics::MetricsFile;
use imdb_lora_data::{LongText, RecordedLongText, TextTokenizer};
use imdb_lora_infer::ModelFiles;
use imdb_lora_train::{
    BestMetric, ClassWeights, Datasets, Interrupt, LrSchedule, METRICS_FILE, RunSpec, TrainConfig,
    fine_tune,
};

use crate::backend::{self, TrainBackend};
use crate::common::{self, DataArgs, ModelArgs, PadArgs, Validation, model_dir};

const EXAMPLES: &str = "\
Examples:
  # IMDb sentiment, SMALL_RUN (4,000 / 2,000 reviews), bert-base-uncased from the Hub
  imdb-lora train --small --out runs/imdb
  # Your own CSV (text and label columns found by name), any encoder, 3 epochs
  imdb-lora train --model roberta-base --data reviews.csv --test-fraction 0.2 --out runs/mine
  # AG News's headline and description columns, labels in column 1, names from classes.txt
  imdb-lora train --model ./minilm --data ag_news/test.csv --text-column 2,3 \\
      --label-column 1 --test-fraction 0.2 --out runs/ag
  # Interrupted (Ctrl-C) or killed: the same command resumes from the last checkpoint

Trainer's option names work too: --num-train-epochs, --per-device-train-batch-size,
--per-device-eval-batch-size, --learning-rate, --lr-scheduler-type,
--gradient-accumulation-steps, --output-dir.";

/// `--long-text` values.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum LongTextArg {
    Truncate,
    HeadTail,
    Window,
}

/// `--metric-for-best` values.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum Metric {
    Loss,
    Accuracy,
    F1,
}

/// `--class-weights auto` or a comma-separated list of positive numbers.
fn parse_class_weights(s: &str) -> Result<ClassWeights, String> {
    if s.trim() == "auto" {
        return Ok(ClassWeights::Auto);
    }
    s.split(',')
        .map(|w| match w.trim().parse::<f64>() {
            Ok(v) if v.is_finite() && v > 0.0 => Ok(v),
            _ => Err(format!(
                "{w:?} is not a positive number; expected auto or one weight per class, \
                 comma-separated (e.g. 1,4.5)"
            )),
        })
        .collect::<Result<Vec<f64>, String>>()
        .map(ClassWeights::Given)
}

/// `--lr-schedule` values (clap stays out of the library crates).
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum Schedule {
    /// Decay linearly to 0 at the last step.
    Linear,
    /// Hold the peak rate after warm-up.
    Constant,
}

/// Fine-tune with LoRA: baseline, epochs with evaluation, saved model and adapter.
#[derive(Debug, clap::Args)]
#[command(after_help = EXAMPLES)]
pub struct Args {
    #[command(flatten)]
    model: ModelArgs,
    #[command(flatten)]
    data: DataArgs,
    /// Passes over the training set. Default: 3 (with --resume-from, the run's own).
    #[arg(long, help_heading = "Training", alias = "num-train-epochs")]
    epochs: Option<usize>,
    /// Training batch size.
    #[arg(long, help_heading = "Training", alias = "per-device-train-batch-size", default_value_t = TrainConfig::default().batch_size)]
    batch_size: usize,
    /// Evaluation batch size.
    #[arg(long, help_heading = "Training", alias = "per-device-eval-batch-size", default_value_t = TrainConfig::default().eval_batch_size)]
    eval_batch_size: usize,
    /// Peak learning rate (AdamW).
    #[arg(long, help_heading = "Training", alias = "learning-rate", default_value_t = TrainConfig::default().lr)]
    lr: f64,
    /// Decoupled weight decay.
    #[arg(long, help_heading = "Training", default_value_t = TrainConfig::default().weight_decay)]
    weight_decay: f64,
    /// Fraction of steps for linear warm-up.
    #[arg(long, help_heading = "Training", default_value_t = TrainConfig::default().warmup_ratio)]
    warmup_ratio: f64,
    /// After warm-up: decay linearly to 0, or hold the peak rate.
    #[arg(long, help_heading = "Training", alias = "lr-scheduler-type", value_enum, default_value = "linear")]
    lr_schedule: Schedule,
    /// Global gradient-norm clip (0 disables clipping).
    #[arg(long, help_heading = "Training", default_value_t = TrainConfig::default().max_grad_norm.unwrap_or(0.0))]
    max_grad_norm: f64,
    /// Batches per optimizer step.
    #[arg(long, help_heading = "Training", alias = "gradient-accumulation-steps", default_value_t = TrainConfig::default().grad_accum_steps)]
    grad_accum: usize,
    /// Validation split: this fraction (between 0 and 1) of each class's training texts,
    /// seeded; every epoch is then evaluated on it, and the test set only for the baseline and
    /// the saved model.
    #[arg(long, help_heading = "Validation", value_name = "FRACTION", conflicts_with = "val_file")]
    val_fraction: Option<f64>,
    /// Validation split: this file (same format and columns as the training data), whole.
    #[arg(long, help_heading = "Validation", value_name = "FILE")]
    val_file: Option<PathBuf>,
    /// The validation metric that chooses the best epoch (for --load-best and early stopping):
    /// loss (lower is better; transformers' default), accuracy or f1 (the headline F1: the
    /// positive class's for two classes, macro over more).
    #[arg(long, help_heading = "Validation", value_enum, value_name = "loss|accuracy|f1")]
    metric_for_best: Option<Metric>,
    /// Stop after this many epochs without an improvement of --metric-for-best on the
    /// validation split (transformers' EarlyStoppingCallback). Needs a validation split.
    #[arg(long, help_heading = "Validation", value_name = "EPOCHS")]
    early_stopping_patience: Option<usize>,
    /// Save (and test) the best epoch's model on the validation split instead of the last
    /// one's (transformers' load_best_model_at_end). Needs a validation split.
    #[arg(long, help_heading = "Validation")]
    load_best: bool,
    /// With a validation split: evaluate the test set after every epoch too, as a record in
    /// metrics.json and report.md (the validation split still chooses; without one, every
    /// epoch is evaluated on the test set anyway).
    #[arg(long, help_heading = "Validation")]
    test_each_epoch: bool,
    /// Weigh the training loss per class: auto (inverse class frequency, scikit-learn's
    /// "balanced") or one weight per class in class order (as
    /// torch.nn.CrossEntropyLoss(weight=...)).
    #[arg(long, help_heading = "Training", value_name = "auto|W,W,...", value_parser = parse_class_weights)]
    class_weights: Option<ClassWeights>,
    /// Texts longer than --max-len: truncate (keep the head, as transformers does), head-tail
    /// (the first quarter and the last three quarters of the window: Sun et al. 2019) or
    /// window (overlapping windows of --max-len tokens, each trained on with the text's
    /// label; evaluation and prediction average a text's windows' logits). Recorded in the
    /// saved model's config.json: predict and serve apply it.
    #[arg(long, help_heading = "Data", value_enum, default_value = "truncate")]
    long_text: LongTextArg,
    /// With --long-text window: tokens shared by consecutive windows (transformers' stride).
    /// Default: half a window's text.
    #[arg(long, help_heading = "Data", value_name = "TOKENS")]
    stride: Option<usize>,
    /// LoRA rank.
    #[arg(long, help_heading = "LoRA", alias = "lora-rank", default_value_t = LoraConfig::default().r)]
    lora_r: usize,
    /// LoRA alpha (scaling = alpha / r).
    #[arg(long, help_heading = "LoRA", default_value_t = LoraConfig::default().lora_alpha)]
    lora_alpha: f64,
    /// LoRA dropout.
    #[arg(long, help_heading = "LoRA", default_value_t = LoraConfig::default().lora_dropout)]
    lora_dropout: f64,
    /// Modules to adapt, by PEFT's names (suffixes of module paths: query, value,
    /// attention.output.dense, ... for BERT, RoBERTa, ELECTRA; q_lin, v_lin, ffn.lin1, ... for
    /// DistilBERT), or all-linear. Default: PEFT's for the model's family (query,value;
    /// q_lin,v_lin for DistilBERT).
    #[arg(long, help_heading = "LoRA", value_delimiter = ',')]
    target_modules: Option<Vec<String>>,
    /// Head modules trained in full and saved with the adapter (PEFT's modules_to_save; the
    /// suffix rule applies). Default: PEFT's, classifier,score (for DistilBERT that suffix
    /// also takes pre_classifier, as in PEFT). DeBERTa's pooler and ModernBERT's head.dense
    /// stay frozen by default, as in PEFT: add pooler / head to train and save them (advised
    /// when the base checkpoint has none and they are drawn fresh).
    #[arg(long, help_heading = "LoRA", value_delimiter = ',')]
    modules_to_save: Option<Vec<String>>,
    /// Length bucketing: sort by length within windows of this many batches, then shuffle
    /// the batches (like transformers' `group_by_length`, which uses 50); 0, the default,
    /// keeps plain shuffled batches.
    #[arg(long, help_heading = "Training", default_value_t = 0)]
    bucket_window: usize,
    #[command(flatten)]
    pad: PadArgs,
    /// Checkpoint every this many optimizer steps (besides every epoch end; 0: epochs only).
    #[arg(long, help_heading = "Output", default_value_t = TrainConfig::default().checkpoint_every.unwrap_or(0))]
    checkpoint_every: u64,
    /// Stop (resumably) after this many optimizer steps; 0 runs the baseline only.
    #[arg(long, help_heading = "Output")]
    stop_after_steps: Option<u64>,
    /// Output directory.
    #[arg(long, help_heading = "Output", alias = "output-dir", default_value = "outputs/imdb_lora")]
    out: PathBuf,
    /// Continue the run in this directory (interrupted or finished) with its own settings and
    /// examples (its run.json and split.json), to --epochs when given: the steps taken keep
    /// their learning rates, the rest follow the schedule of the longer run.
    #[arg(long, help_heading = "Output", value_name = "RUN_DIR", conflicts_with_all = [
        "model", "data", "data_config", "test_file", "test_fraction", "text_column",
        "label_column", "label_names", "header", "train_n", "test_n", "max_len", "seed", "out",
        "batch_size", "eval_batch_size", "lr", "weight_decay", "warmup_ratio", "lr_schedule",
        "max_grad_norm", "grad_accum", "lora_r", "lora_alpha", "lora_dropout",
        "target_modules", "modules_to_save", "bucket_window", "pad_multiple",
        "checkpoint_every", "precision", "val_fraction", "val_file", "metric_for_best",
        "early_stopping_patience", "load_best", "class_weights", "long_text", "stride",
        "test_each_epoch",
    ])]
    resume_from: Option<PathBuf>,
    /// Do not render report.md and the charts into --out at the end (`imdb-lora plot` does
    /// it later).
    #[arg(long, help_heading = "Output")]
    no_report: bool,
    #[command(flatten)]
    precision: backend::PrecisionArg,
    /// The dtype of the saved model's weights: f32, bf16 or f16. Default: the base
    /// checkpoint's own (an f32 checkpoint stays f32, whatever --precision trained it).
    #[arg(long, help_heading = "Output", value_name = "f32|bf16|f16")]
    save_dtype: Option<imdb_lora_encoder::WeightDtype>,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let out = args.resume_from.clone().unwrap_or_else(|| args.out.clone());
    // One output directory, one run: a second `train` into the same --out stops here, before
    // anything is loaded or written. Held until the process ends (the OS releases it on a crash).
    let lock = imdb_lora_fsio::RunLock::acquire(&out)?;
    // What a killed run was writing is never complete; under the lock nothing else writes here.
    let swept = lock.sweep_temp_files()?;
    if !swept.is_empty() {
        tracing::info!(
            files = swept.len(),
            "removed temp files an interrupted run left behind"
        );
        tracing::debug!(?swept, "removed temp files");
    }
    let client = args.data.client();
    let prepared = match &args.resume_from {
        None => prepare(&args, &client)?,
        Some(run_dir) => prepare_continued(&args, run_dir, &client)?,
    };
    let Prepared {
        files,
        config,
        pad_id,
        train,
        test,
        validation,
        classes,
        run,
        split,
    } = prepared;
    // A directory with a checkpoint holds a run already: its files stay as they are unless
    // the loop accepts this run as that one (then run.json is rewritten below).
    let fresh = !imdb_lora_train::checkpoint::CheckpointDir::new(&out)
        .last()
        .exists();
    let write_run = || -> anyhow::Result<()> {
        imdb_lora_fsio::write(&out.join(RUN_FILE), &serde_json::to_vec_pretty(&run)?)?;
        Ok(())
    };
    if fresh {
        if let Some(split) = &split {
            imdb_lora_fsio::write(
                &out.join(imdb_lora_data::table::SPLIT_FILE),
                &serde_json::to_vec_pretty(split)?,
            )?;
        }
        write_run()?;
    }
    let save_dtype = match args.save_dtype {
        Some(dtype) => dtype,
        None => imdb_lora_encoder::WeightDtype::of_checkpoint(&files.weights)?,
    };
    let precision = run.precision;
    let device = backend::device()?;
    let base = load_classifier_with_config::<TrainBackend>(
        &files.weights,
        &config,
        &device,
        run.train.seed,
    )?
    .with_precision(precision);
    let datasets = Datasets {
        train,
        test,
        validation,
        pad_id,
        classes,
    };
    let interrupt = Interrupt::new();
    crate::interrupt::install(&interrupt)?;
    let outcome = fine_tune(
        base,
        &run,
        &datasets,
        &out,
        &device,
        crate::ui::progress().as_ref(),
        &interrupt,
    )?;
    // Accepted: this is the directory's run (continued to more epochs, perhaps).
    write_run()?;
    if outcome.interrupted {
        return Err(crate::interrupt::Interrupted {
            step: outcome.step,
            total: outcome.total_steps,
            checkpoint: imdb_lora_train::checkpoint::CheckpointDir::new(&out).last(),
        }
        .into());
    }
    if !outcome.finished {
        tracing::info!(
            epochs_done = outcome.metrics.epochs.len(),
            out = %out.display(),
            "stopped early; run the same command again to resume"
        );
        return Ok(());
    }
    // The run's own directory: with --resume-from that is RUN_DIR, not --out's default.
    let model_out = out.join("model");
    let last = imdb_lora_train::checkpoint::CheckpointDir::new(&out).last();
    if is_newer(&model_out.join("adapter/adapter_model.safetensors"), &last) {
        tracing::info!(model = %model_out.display(), "saved model is up to date with the last checkpoint");
    } else {
        // A bf16 run's base weights are rounded: merge its adapters into the checkpoint's own
        // weights, loaded again, so the saved model is the f32 (or bf16) base plus the update.
        let full = match precision {
            imdb_lora_encoder::Precision::F32 => outcome.model,
            _ => load_classifier_with_config::<backend::Backend>(
                &files.weights,
                &config,
                &device,
                run.train.seed,
            )?
            .with_trained_from(&outcome.model)?,
        };
        // The long-text rule goes with the model, so predict and serve apply it unasked.
        let mut config = config.clone();
        if run.long_text != LongText::Truncate {
            let recorded = RecordedLongText {
                rule: run.long_text,
                max_len: run.max_len,
            };
            config.extra.insert(
                imdb_lora_data::long_text::CONFIG_KEY.into(),
                serde_json::to_value(recorded)?,
            );
        }
        imdb_lora_encoder::export::save_pretrained(&full, &config, &model_out, save_dtype)
            .with_context(|| format!("saving {}", model_out.display()))?;
        imdb_lora_encoder::export::copy_tokenizer_files(&model_dir(&files), &model_out)?;
        save_adapter(&full, &run.lora, &run.model, &model_out.join("adapter"))?;
    }
    let file = MetricsFile::new(outcome.metrics, outcome.classes);
    let report = match args.no_report {
        true => None,
        false => Some(imdb_lora_report::render_file(&file, &out)?),
    };
    print_summary(&file, &out, report.as_ref())
}

/// File name of the run's settings ([`RunSpec`]) in its directory: what `--resume-from`
/// continues.
const RUN_FILE: &str = "run.json";

/// What a run needs before its loop starts.
struct Prepared {
    files: ModelFiles,
    /// The base model's configuration, its labels the data's classes.
    config: EncoderConfig,
    pad_id: u32,
    train: Vec<imdb_lora_data::Encoded>,
    test: Vec<imdb_lora_data::Encoded>,
    validation: Option<Vec<imdb_lora_data::Encoded>>,
    classes: Vec<String>,
    run: RunSpec,
    /// `split.json` to write (a new run's; a continued run keeps its own).
    split: Option<imdb_lora_data::table::SplitRecord>,
}

/// Refuses a quantised model as the base: int8 weights take no gradient through their
/// rounding, so training on them would be wrong.
fn refuse_quantized(config: &EncoderConfig, path: &std::path::Path) -> anyhow::Result<()> {
    let key = imdb_lora_encoder::export::QUANTIZATION_CONFIG;
    match config.extra.get(key).and_then(|q| q.get("quant_method")) {
        Some(method) => anyhow::bail!(
            "{}: a quantised model ({key}.quant_method {method}) is for inference; train from \
             the f32 model it was exported from",
            path.display()
        ),
        None => Ok(()),
    }
}

/// A new run from the command line's options.
fn prepare(args: &Args, client: &imdb_lora_hub::HubClient) -> anyhow::Result<Prepared> {
    let d = &args.data;
    let precision = args.precision.checked()?;
    let files = args.model.files(client)?;
    let base_config = EncoderConfig::from_file(&files.config)?;
    refuse_quantized(&base_config, &files.config)?;
    common::check_max_len(d.max_len, &base_config, &files.config)?;
    let long_text = match (args.long_text, args.stride) {
        (LongTextArg::Window, stride) => LongText::Window {
            // Half of what a window holds besides [CLS] and [SEP].
            stride: stride.unwrap_or(d.max_len.saturating_sub(2) / 2),
        },
        (_, Some(_)) => anyhow::bail!("--stride is the overlap of --long-text window's windows"),
        (LongTextArg::Truncate, None) => LongText::Truncate,
        (LongTextArg::HeadTail, None) => LongText::HeadTail,
    };
    let tokenizer = d.tokenizer(&files)?.with_long_text(long_text)?;
    tokenizer.check_ids_fit(base_config.vocab_size, base_config.type_vocab_size)?;
    if args.metric_for_best.is_some() && args.val_file.is_none() && args.val_fraction.is_none() {
        anyhow::bail!(
            "--metric-for-best chooses an epoch on a validation split, and there is none: \
             chosen on the test set, the model's test score would be optimistic; give \
             --val-fraction F or --val-file FILE"
        );
    }
    let val = match (&args.val_file, args.val_fraction) {
        (Some(file), _) => Validation::File(file.clone()),
        (None, Some(fraction)) => Validation::Fraction(fraction),
        (None, None) => Validation::None,
    };
    let data = d.load(client, &tokenizer, true, &val)?;
    let train = data
        .train
        .context("the training part of the data was not loaded")?;
    // The head gets one output per class, named as the data names them, so the saved
    // model's config.json carries them (transformers' pipeline prints them).
    let names: Vec<&str> = data.classes.iter().map(String::as_str).collect();
    let config = base_config.with_labels(&names);
    // The run, filled once: metrics.json's record and the resume fingerprint come from it.
    let run = RunSpec {
        model: args.model.model.clone(),
        model_sha256: Some(sha256_file(&files.weights)?),
        data: d.data.clone(),
        max_len: d.max_len,
        backend: backend::BACKEND_NAME.into(),
        precision,
        lora: LoraConfig {
            r: args.lora_r,
            lora_alpha: args.lora_alpha,
            lora_dropout: args.lora_dropout,
            target_modules: args
                .target_modules
                .clone()
                .unwrap_or_else(|| config.family.default_lora_targets()),
            modules_to_save: args.modules_to_save.clone(),
            ..LoraConfig::default()
        },
        train: TrainConfig {
            epochs: args.epochs.unwrap_or(TrainConfig::default().epochs),
            batch_size: args.batch_size,
            eval_batch_size: args.eval_batch_size,
            lr: args.lr,
            weight_decay: args.weight_decay,
            warmup_ratio: args.warmup_ratio,
            lr_schedule: match args.lr_schedule {
                Schedule::Linear => LrSchedule::Linear,
                Schedule::Constant => LrSchedule::Constant,
            },
            // 0 is the command line's "off" for each of these.
            max_grad_norm: (args.max_grad_norm > 0.0).then_some(args.max_grad_norm),
            grad_accum_steps: args.grad_accum,
            seed: d.seed,
            checkpoint_every: (args.checkpoint_every > 0).then_some(args.checkpoint_every),
            bucket_window: (args.bucket_window > 0).then_some(args.bucket_window),
            pad_multiple: args.pad.resolve(),
            stop_after_steps: args.stop_after_steps,
            step_timing: step_timing_requested(),
            more_epochs: false,
            metric_for_best: match args.metric_for_best {
                None | Some(Metric::Loss) => BestMetric::Loss,
                Some(Metric::Accuracy) => BestMetric::Accuracy,
                Some(Metric::F1) => BestMetric::F1,
            },
            early_stopping_patience: args.early_stopping_patience,
            load_best: args.load_best,
            test_each_epoch: args.test_each_epoch,
            class_weights: args.class_weights.clone(),
        },
        long_text,
    };
    Ok(Prepared {
        files,
        config,
        pad_id: tokenizer.pad_id(),
        train: train.examples,
        test: data.test.examples,
        validation: data.validation.map(|v| v.examples),
        classes: data.classes,
        run,
        split: Some(data.record),
    })
}

/// `--resume-from RUN_DIR`: the run as it recorded itself (`run.json`: its settings;
/// `split.json`: its examples, in their order), to `--epochs` when given.
fn prepare_continued(
    args: &Args,
    dir: &Path,
    client: &imdb_lora_hub::HubClient,
) -> anyhow::Result<Prepared> {
    let read = |name: &str| -> anyhow::Result<String> {
        let path = dir.join(name);
        std::fs::read_to_string(&path).with_context(|| {
            format!(
                "{}: --resume-from needs the run directory `train` wrote",
                path.display()
            )
        })
    };
    let mut run: RunSpec = serde_json::from_str(&read(RUN_FILE)?)
        .with_context(|| format!("{}", dir.join(RUN_FILE).display()))?;
    let split = imdb_lora_data::table::SplitRecord::read(dir)?;
    if let Some(epochs) = args.epochs {
        run.train.epochs = epochs;
    }
    run.train.more_epochs = true;
    run.train.stop_after_steps = args.stop_after_steps;
    run.train.step_timing = step_timing_requested();
    let model = ModelArgs {
        model: run.model.clone(),
    };
    let files = model.files(client)?;
    let base_config = EncoderConfig::from_file(&files.config)?;
    let tokenizer = TextTokenizer::from_files(&files.tokenizer_files(), run.max_len)?
        .with_long_text(run.long_text)?;
    tokenizer.check_ids_fit(base_config.vocab_size, base_config.type_vocab_size)?;
    tracing::info!(
        epochs = run.train.epochs,
        "continuing {} with its own settings and examples",
        dir.display()
    );
    // In the order the run trained on them: the batches depend on it.
    let part = |files, rows, what| common::tokenized_part(&split, files, rows, &tokenizer, what);
    let train = part(&split.train_files, &split.train_rows, "train")?;
    let test = part(&split.test_files, &split.test_rows, "test")?;
    let validation = match split.has_validation() {
        true => Some(part(&split.val_files, &split.val_rows, "validation")?.examples),
        false => None,
    };
    let names: Vec<&str> = split.classes.iter().map(String::as_str).collect();
    Ok(Prepared {
        files,
        config: base_config.with_labels(&names),
        pad_id: tokenizer.pad_id(),
        train: train.examples,
        test: test.examples,
        validation,
        classes: split.classes,
        run,
        split: None,
    })
}

/// What the run did and where its files are, on stdout (the run's result; the log is on
/// stderr).
fn print_summary(
    file: &MetricsFile,
    out: &Path,
    report: Option<&imdb_lora_report::RenderedReport>,
) -> anyhow::Result<()> {
    let Some(summary) = imdb_lora_report::render_summary(file) else {
        return Ok(());
    };
    let mut lines = vec![
        summary,
        format!("  metrics   {}", out.join(METRICS_FILE).display()),
        format!(
            "  model     {} (PEFT adapter: {})",
            out.join("model").display(),
            out.join("model/adapter").display()
        ),
    ];
    if let Some(report) = report {
        lines.push(format!("  report    {}", report.report_md.display()));
    }
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{}", lines.join("\n"))?;
    Ok(())
}

/// `IMDB_LORA_STEP_TIMING=1`: per optimizer step, the host time to enqueue it and the time
/// to synchronise the device, logged as INFO `step_timing` events (docs/GPU.md).
const STEP_TIMING_ENV: &str = "IMDB_LORA_STEP_TIMING";

fn step_timing_requested() -> bool {
    std::env::var(STEP_TIMING_ENV).is_ok_and(|v| v == "1")
}

/// Whether `a` exists and was written after `b` (both written atomically, so present = whole).
fn is_newer(a: &std::path::Path, b: &std::path::Path) -> bool {
    let modified = |p: &std::path::Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    matches!((modified(a), modified(b)), (Some(a), Some(b)) if a >= b)
}

/// Hex sha256 of a file, streamed (the weights identify the base model of a resumable run).
fn sha256_file(path: &std::path::Path) -> anyhow::Result<String> {
    use sha2::Digest as _;
    let mut file =
        std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut hasher = sha2::Sha256::new();
    std::io::copy(&mut file, &mut hasher).with_context(|| format!("reading {}", path.display()))?;
    Ok(hex::encode(hasher.finalize()))
}
