//! The `metrics.json` schema written by training and read by the report:
//! plain serde structs and a consistency check (reading and atomic writing are
//! [`crate::MetricsFile`]'s, in `file.rs`).
//!
//! All structs use `deny_unknown_fields` so that a misspelt key in a
//! hand-edited or out-of-date file is reported instead of silently ignored;
//! any change to the shape must bump the version. Every run is written as
//! [`SCHEMA_VERSION`] (the run here, its per-class metrics under `classes`: `file.rs`,
//! [`crate::MetricsFile`]); [`LEGACY_SCHEMA_VERSION`] files (IMDb runs of older versions,
//! without `classes`) are read, and so are [`PREVIOUS_SCHEMA_VERSION`] files (schema 3's shape
//! without its optional validation, selection and long-text fields).

use serde::{Deserialize, Serialize};

use crate::classification::EvalMetrics;
use crate::error::ValidationError;

/// Version of the `metrics.json` every run writes: the run and, under `classes`, the
/// per-class metrics of every evaluation; since 3, optionally a validation split's epochs,
/// the model selection and the final test evaluation.
pub const SCHEMA_VERSION: u32 = 3;

/// Schema 2: schema 3 without its optional fields (runs without a validation split made
/// before they existed); read as schema 3.
pub const PREVIOUS_SCHEMA_VERSION: u32 = 2;

/// Version of the binary layout older versions wrote for IMDb runs (no per-class metrics):
/// read, never written ([`crate::MetricsFile::read`]).
pub const LEGACY_SCHEMA_VERSION: u32 = 1;

/// Tolerance when checking stored ratios against the confusion matrix. JSON
/// round-trips f64 exactly, so this only absorbs a writer that computed the
/// same ratio in a different (but equivalent) order.
pub(crate) const RATIO_TOLERANCE: f64 = 1e-9;

fn default_schedule() -> String {
    "linear".into()
}

/// The hyper-parameters and inputs of a run, recorded verbatim.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunConfig {
    /// Base model identifier, e.g. `bert-base-uncased`.
    pub model: String,
    /// Data set identifier or path, e.g. `stanfordnlp/imdb`.
    pub data: String,
    /// Number of training samples actually used.
    pub train_n: usize,
    /// Number of test samples actually evaluated (every evaluation uses them all).
    pub test_n: usize,
    /// Maximum sequence length in tokens (longer reviews are truncated).
    pub max_len: usize,
    /// Number of epochs requested.
    pub epochs: usize,
    /// Training batch size.
    pub batch_size: usize,
    /// Peak learning rate.
    pub lr: f64,
    /// AdamW decoupled weight decay.
    pub weight_decay: f64,
    /// Fraction of total steps spent warming the learning rate up, in [0, 1].
    pub warmup_ratio: f64,
    /// Learning-rate schedule after warm-up: `linear` (decay to 0) or `constant`.
    #[serde(default = "default_schedule")]
    pub lr_schedule: String,
    /// Global gradient-norm clip; `None` when gradients were not clipped.
    #[serde(default)]
    pub max_grad_norm: Option<f64>,
    /// Seed for shuffling, initialisation and dropout.
    pub seed: u64,
    /// LoRA rank r.
    pub lora_r: usize,
    /// LoRA alpha (the update is scaled by alpha / r).
    pub lora_alpha: f64,
    /// Dropout applied to the LoRA input, in [0, 1).
    pub lora_dropout: f64,
    /// Names of the linear layers that received LoRA adapters, e.g. `["query", "value"]`.
    pub target_modules: Vec<String>,
    /// Burn backend the run used, e.g. `cuda` or `ndarray`.
    pub backend: String,
    /// sha256 of the base model's weights file, when known: part of the run's identity, so a
    /// resumed run refuses a checkpoint made on other weights under the same model name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_sha256: Option<String>,
    /// The encoder's precision when not f32 (`bf16`: mixed precision); absent for f32, so an
    /// f32 run's file is what it always was. Part of the run's identity like the rest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub precision: Option<String>,
    /// Validation texts, when the run had a validation split: then every epoch's `eval` is on
    /// them and the test set is evaluated for the baseline and the final model only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub val_n: Option<usize>,
    /// The per-class weights of the training loss, when weighted (resolved: `auto` is written
    /// as the weights it gave).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub class_weights: Option<Vec<f64>>,
    /// How texts longer than `max_len` were handled, when not cut at the end
    /// (`head-tail`, `window stride 64`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub long_text: Option<String>,
}

/// One training epoch followed by an evaluation on the test set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EpochRecord {
    /// 1-based epoch number.
    pub epoch: usize,
    /// Mean training cross-entropy per sample over the epoch.
    pub train_loss: f64,
    /// Wall-clock seconds of the training part of the epoch.
    pub train_seconds: f64,
    /// Training throughput of this epoch.
    pub train_samples_per_s: f64,
    /// The evaluation after this epoch: on the test set, or on the validation split when the
    /// run has one (`config.val_n`).
    pub eval: EvalMetrics,
    /// The test set's evaluation after this epoch too, in a run with a validation split that
    /// asked for it (`--test-each-epoch`); a record, never a choice.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test: Option<EvalMetrics>,
}

/// The run-level part of a `metrics.json` (whose per-class metrics [`crate::MetricsFile`]
/// holds beside it); the whole of a [`LEGACY_SCHEMA_VERSION`] file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunMetrics {
    /// [`SCHEMA_VERSION`] ([`LEGACY_SCHEMA_VERSION`] as parsed from an old file, until
    /// [`crate::MetricsFile::read`] upgrades it).
    pub schema_version: u32,
    /// Hyper-parameters of the run.
    pub config: RunConfig,
    /// Parameters updated by the optimiser (LoRA adapters and classifier head).
    pub trainable_params: u64,
    /// All parameters of the model, trainable or frozen.
    pub total_params: u64,
    /// Test-set evaluation before any training.
    pub baseline: EvalMetrics,
    /// One record per completed epoch, numbered 1..=n in order.
    pub epochs: Vec<EpochRecord>,
    /// Training throughput over all epochs.
    pub train_samples_per_s: f64,
    /// Evaluation throughput over all evaluations (baseline included).
    pub eval_samples_per_s: f64,
    /// Wall-clock seconds of the whole run.
    pub total_seconds: f64,
    /// Which epoch's model was chosen on validation, and whether early stopping ended the run
    /// (runs with a validation split).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selection: Option<Selection>,
    /// The test set's evaluation of the saved model, when a validation split chose it (without
    /// one, the last epoch's `eval` is on the test set).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test: Option<EvalMetrics>,
}

/// The model selection of a run with a validation split.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Selection {
    /// The validation metric compared: `accuracy`, `f1` or `loss`.
    pub metric: String,
    /// The 1-based epoch with the best value of it (the earliest of equals).
    pub best_epoch: usize,
    /// That value.
    pub best_value: f64,
    /// Whether the saved model is the best epoch's (`--load-best`) rather than the last one's.
    pub load_best: bool,
    /// Early stopping's patience (evaluations without improvement), when it was on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub patience: Option<usize>,
    /// Whether early stopping ended the run before its last epoch.
    pub stopped_early: bool,
}

impl Selection {
    /// The 1-based epoch whose model was saved, of a run that trained `epochs_done` epochs.
    pub fn saved_epoch(&self, epochs_done: usize) -> usize {
        match self.load_best {
            true => self.best_epoch,
            false => epochs_done,
        }
    }
}

impl RunMetrics {
    /// The last completed epoch (what the report calls "fine-tuned").
    pub fn final_epoch(&self) -> Option<&EpochRecord> {
        self.epochs.last()
    }

    /// The evaluation of the saved model on the test set: the final `test` of a run with a
    /// validation split, else the last epoch's.
    pub fn after(&self) -> Option<&EvalMetrics> {
        self.test
            .as_ref()
            .or_else(|| self.final_epoch().map(|e| &e.eval))
    }

    /// The number of examples every epoch's `eval` counts: the validation split's when the run
    /// had one, else the test set's.
    pub fn epoch_eval_n(&self) -> usize {
        self.config.val_n.unwrap_or(self.config.test_n)
    }

    /// The epoch a validation split selected; without one, the epoch with the highest test
    /// accuracy (the earliest on ties).
    pub fn best_epoch(&self) -> Option<&EpochRecord> {
        // A validation split's choice, when there was one; else the best test accuracy (the
        // record of older runs: the first of equals).
        if let Some(sel) = &self.selection {
            return self.epochs.get(sel.best_epoch.wrapping_sub(1));
        }
        self.epochs.iter().fold(None, |best, e| match best {
            Some(b) if b.eval.accuracy >= e.eval.accuracy => Some(b),
            _ => Some(e),
        })
    }

    /// `trainable_params / total_params` as a fraction (0.0 if total is 0).
    pub fn trainable_fraction(&self) -> f64 {
        if self.total_params == 0 {
            0.0
        } else {
            self.trainable_params as f64 / self.total_params as f64
        }
    }

    /// Checks internal consistency and returns the first problem found,
    /// naming the field:
    ///
    /// * `schema_version` is [`SCHEMA_VERSION`];
    /// * config values are in range (positive sizes, `warmup_ratio` in
    ///   [0, 1], `lora_dropout` in [0, 1), finite rates, non-empty names);
    /// * `0 < total_params` and `trainable_params <= total_params`;
    /// * every evaluation: ratios finite and in [0, 1] and equal to those
    ///   derived from its confusion matrix, confusion sums equal `samples`,
    ///   `samples` equals `config.test_n`, loss and timings finite and ≥ 0 (an evaluation
    ///   without a binary matrix — N > 2 classes — has its ratios only range-checked here:
    ///   [`crate::MetricsFile::validate`] derives them from its classes);
    /// * epochs are numbered 1..=n in order, with n ≤ `config.epochs` (a
    ///   run still in progress may have written fewer);
    /// * top-level throughputs and `total_seconds` finite and ≥ 0.
    ///
    /// # Errors
    /// The first [`ValidationError`] found.
    pub fn validate(&self) -> Result<(), ValidationError> {
        self.validate_as(SCHEMA_VERSION)
    }

    /// [`Self::validate`] of a run as parsed from a [`LEGACY_SCHEMA_VERSION`] file, where every
    /// evaluation has its binary matrix (the per-class metrics are derived from them).
    pub(crate) fn validate_legacy(&self) -> Result<(), ValidationError> {
        self.validate_as(LEGACY_SCHEMA_VERSION)
    }

    fn validate_as(&self, version: u32) -> Result<(), ValidationError> {
        if self.schema_version != version {
            return Err(ValidationError::new(
                "schema_version",
                format!("expected {version}, got {}", self.schema_version),
            ));
        }
        // Only the current schema has evaluations over N > 2 classes, without a binary matrix.
        let may_lack_binary = version == SCHEMA_VERSION;
        self.validate_config()?;
        if self.total_params == 0 {
            return Err(ValidationError::new("total_params", "expected > 0, got 0"));
        }
        if self.trainable_params > self.total_params {
            return Err(ValidationError::new(
                "trainable_params",
                format!(
                    "expected <= total_params ({}), got {}",
                    self.total_params, self.trainable_params
                ),
            ));
        }
        validate_eval(
            "baseline",
            &self.baseline,
            self.config.test_n,
            may_lack_binary,
        )?;
        if self.epochs.len() > self.config.epochs {
            return Err(ValidationError::new(
                "epochs",
                format!(
                    "expected at most config.epochs = {} records, got {}",
                    self.config.epochs,
                    self.epochs.len()
                ),
            ));
        }
        for (i, record) in self.epochs.iter().enumerate() {
            let at = format!("epochs[{i}]");
            if record.epoch != i + 1 {
                return Err(ValidationError::new(
                    format!("{at}.epoch"),
                    format!(
                        "expected {} (epochs numbered 1..n in order), got {}",
                        i + 1,
                        record.epoch
                    ),
                ));
            }
            non_negative(&format!("{at}.train_loss"), record.train_loss)?;
            non_negative(&format!("{at}.train_seconds"), record.train_seconds)?;
            non_negative(
                &format!("{at}.train_samples_per_s"),
                record.train_samples_per_s,
            )?;
            validate_eval(
                &format!("{at}.eval"),
                &record.eval,
                self.epoch_eval_n(),
                may_lack_binary,
            )?;
            if let Some(test) = &record.test {
                if self.config.val_n.is_none() {
                    return Err(ValidationError::new(
                        format!("{at}.test"),
                        "a test evaluation beside the epoch's is recorded only with a validation split (config.val_n)",
                    ));
                }
                validate_eval(
                    &format!("{at}.test"),
                    test,
                    self.config.test_n,
                    may_lack_binary,
                )?;
            }
        }
        self.validate_selection(may_lack_binary)?;
        non_negative("train_samples_per_s", self.train_samples_per_s)?;
        non_negative("eval_samples_per_s", self.eval_samples_per_s)?;
        non_negative("total_seconds", self.total_seconds)?;
        Ok(())
    }

    /// The validation split's fields agree: a final test evaluation and a selection only with
    /// a validation split, the selected epoch one that was trained.
    fn validate_selection(&self, may_lack_binary: bool) -> Result<(), ValidationError> {
        if self.config.val_n == Some(0) {
            return Err(ValidationError::new("config.val_n", "expected > 0, got 0"));
        }
        let has_val = self.config.val_n.is_some();
        if let Some(test) = &self.test {
            if !has_val {
                return Err(ValidationError::new(
                    "test",
                    "a final test evaluation is recorded only with a validation split (config.val_n)",
                ));
            }
            validate_eval("test", test, self.config.test_n, may_lack_binary)?;
        }
        if let Some(sel) = &self.selection {
            if !has_val {
                return Err(ValidationError::new(
                    "selection",
                    "a model is selected only on a validation split (config.val_n)",
                ));
            }
            if !(1..=self.epochs.len()).contains(&sel.best_epoch) {
                return Err(ValidationError::new(
                    "selection.best_epoch",
                    format!(
                        "expected an epoch in 1..={}, got {}",
                        self.epochs.len(),
                        sel.best_epoch
                    ),
                ));
            }
            if !matches!(sel.metric.as_str(), "accuracy" | "f1" | "loss") {
                return Err(ValidationError::new(
                    "selection.metric",
                    format!("expected accuracy, f1 or loss, got {:?}", sel.metric),
                ));
            }
        }
        if let Some(w) = &self.config.class_weights
            && let Some(i) = w.iter().position(|w| !(w.is_finite() && *w > 0.0))
        {
            return Err(ValidationError::new(
                format!("config.class_weights[{i}]"),
                format!("expected a finite number > 0, got {}", w[i]),
            ));
        }
        Ok(())
    }

    fn validate_config(&self) -> Result<(), ValidationError> {
        let c = &self.config;
        for (field, value) in [
            ("config.model", &c.model),
            ("config.data", &c.data),
            ("config.backend", &c.backend),
        ] {
            if value.trim().is_empty() {
                return Err(ValidationError::new(field, "expected a non-empty string"));
            }
        }
        for (field, value) in [
            ("config.train_n", c.train_n),
            ("config.test_n", c.test_n),
            ("config.max_len", c.max_len),
            ("config.epochs", c.epochs),
            ("config.batch_size", c.batch_size),
            ("config.lora_r", c.lora_r),
        ] {
            if value == 0 {
                return Err(ValidationError::new(field, "expected > 0, got 0"));
            }
        }
        non_negative("config.lr", c.lr)?;
        non_negative("config.weight_decay", c.weight_decay)?;
        in_range("config.warmup_ratio", c.warmup_ratio, 0.0, 1.0, true)?;
        if !(c.lora_alpha.is_finite() && c.lora_alpha > 0.0) {
            return Err(ValidationError::new(
                "config.lora_alpha",
                format!("expected a finite number > 0, got {}", c.lora_alpha),
            ));
        }
        in_range("config.lora_dropout", c.lora_dropout, 0.0, 1.0, false)?;
        if c.target_modules.is_empty() {
            return Err(ValidationError::new(
                "config.target_modules",
                "expected at least one module name",
            ));
        }
        if let Some(i) = c.target_modules.iter().position(|m| m.trim().is_empty()) {
            return Err(ValidationError::new(
                format!("config.target_modules[{i}]"),
                "expected a non-empty module name",
            ));
        }
        Ok(())
    }
}

/// `value` must be finite and ≥ 0.
fn non_negative(field: &str, value: f64) -> Result<(), ValidationError> {
    if value.is_finite() && value >= 0.0 {
        Ok(())
    } else {
        Err(ValidationError::new(
            field,
            format!("expected a finite number >= 0, got {value}"),
        ))
    }
}

/// `value` must be finite and in [lo, hi] (or [lo, hi) if `!inclusive_hi`).
pub(crate) fn in_range(
    field: &str,
    value: f64,
    lo: f64,
    hi: f64,
    inclusive_hi: bool,
) -> Result<(), ValidationError> {
    let ok = value.is_finite()
        && value >= lo
        && if inclusive_hi {
            value <= hi
        } else {
            value < hi
        };
    if ok {
        Ok(())
    } else {
        let close = if inclusive_hi { ']' } else { ')' };
        Err(ValidationError::new(
            field,
            format!("expected a number in [{lo}, {hi}{close}, got {value}"),
        ))
    }
}

/// Checks one evaluation. Its ratios are derived from its binary matrix unless
/// `may_lack_binary` and it has none (N > 2 classes: their matrix is checked by
/// [`crate::MetricsFile::validate`]), in which case they are only range-checked.
fn validate_eval(
    at: &str,
    m: &EvalMetrics,
    test_n: usize,
    may_lack_binary: bool,
) -> Result<(), ValidationError> {
    if may_lack_binary && m.confusion.is_empty() {
        for (name, value) in [
            ("accuracy", m.accuracy),
            ("f1", m.f1),
            ("precision", m.precision),
            ("recall", m.recall),
        ] {
            in_range(&format!("{at}.{name}"), value, 0.0, 1.0, true)?;
        }
        return validate_eval_counts(at, m, test_n);
    }
    // Counts first: the ratios below are derived from them.
    let Some(total) = m.confusion.checked_total() else {
        return Err(ValidationError::new(
            format!("{at}.confusion"),
            format!(
                "expected tp + fp + tn + fn to equal {at}.samples = {}, got a sum beyond 2^64",
                m.samples
            ),
        ));
    };
    let derived = EvalMetrics::from_confusion(m.confusion, m.loss, m.seconds);
    for (name, value, expected) in [
        ("accuracy", m.accuracy, derived.accuracy),
        ("f1", m.f1, derived.f1),
        ("precision", m.precision, derived.precision),
        ("recall", m.recall, derived.recall),
    ] {
        let field = format!("{at}.{name}");
        in_range(&field, value, 0.0, 1.0, true)?;
        if (value - expected).abs() > RATIO_TOLERANCE {
            return Err(ValidationError::new(
                field,
                format!("expected {expected} (derived from {at}.confusion), got {value}"),
            ));
        }
    }
    if total != m.samples {
        return Err(ValidationError::new(
            format!("{at}.confusion"),
            format!(
                "expected tp + fp + tn + fn to equal {at}.samples = {}, got {total}",
                m.samples
            ),
        ));
    }
    validate_eval_counts(at, m, test_n)
}

/// What every evaluation must satisfy whatever its number of classes: all of the test set,
/// loss and timings finite and ≥ 0.
fn validate_eval_counts(at: &str, m: &EvalMetrics, test_n: usize) -> Result<(), ValidationError> {
    if m.samples != test_n as u64 {
        return Err(ValidationError::new(
            format!("{at}.samples"),
            format!(
                "expected {test_n} (config.test_n, or config.val_n for a validation split's epochs), got {}",
                m.samples
            ),
        ));
    }
    non_negative(&format!("{at}.loss"), m.loss)?;
    non_negative(&format!("{at}.seconds"), m.seconds)?;
    non_negative(&format!("{at}.samples_per_s"), m.samples_per_s)?;
    Ok(())
}
