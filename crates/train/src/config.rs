//! Hyper-parameters of the fine-tuning run, defaulted as the project's recipe.

use serde::{Deserialize, Serialize};

use crate::TrainError;

/// The learning rate after warm-up, as transformers' `get_{linear,constant}_schedule_with_warmup`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LrSchedule {
    /// Decay linearly to 0 at the last step.
    #[default]
    Linear,
    /// Hold the peak rate (the plain `torch.optim.AdamW` recipe when warm-up is 0).
    Constant,
}

impl LrSchedule {
    /// The name recorded in `metrics.json`.
    pub fn name(self) -> &'static str {
        match self {
            LrSchedule::Linear => "linear",
            LrSchedule::Constant => "constant",
        }
    }
}

/// How to train.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    /// Passes over the training set.
    pub epochs: usize,
    /// Examples per forward/backward pass.
    pub batch_size: usize,
    /// Examples per evaluation batch (no gradients, so larger is cheaper).
    pub eval_batch_size: usize,
    /// Peak learning rate of AdamW.
    pub lr: f64,
    /// Decoupled weight decay (PyTorch `AdamW`'s, on every trainable parameter).
    pub weight_decay: f64,
    /// Fraction of optimizer steps spent warming the learning rate up from 0.
    pub warmup_ratio: f64,
    /// What the learning rate does after warm-up.
    #[serde(default)]
    pub lr_schedule: LrSchedule,
    /// Clip the global gradient norm to this (`None`: no clipping).
    pub max_grad_norm: Option<f64>,
    /// Batches whose gradients are summed before each optimizer step.
    pub grad_accum_steps: usize,
    /// Seed for data order, dropout and fresh weights.
    pub seed: u64,
    /// Also checkpoint every this many optimizer steps (`None`: only at epoch ends).
    pub checkpoint_every: Option<u64>,
    /// Length bucketing window in batches (`None`, the default: plain shuffle, as the Python
    /// recipe). Each window of the shuffled epoch is sorted by length before it is cut into
    /// batches, and the batches are shuffled again, like transformers' `group_by_length`
    /// (`imdb_lora_data::SUGGESTED_BUCKET_WINDOW`): batches pad to about their own length, so an
    /// epoch computes fewer padded positions (on IMDb at `max_len` 256, ≈ 17 % fewer) for
    /// the same examples, at the price of less random batches (see docs/BENCHMARKS.md).
    pub bucket_window: Option<usize>,
    /// Round every batch's padded length up to a multiple of this many tokens (capped at
    /// the data's `max_len`; `None`, the default: exact dynamic padding). For GPU backends,
    /// which compile kernels per shape. Part of the run's identity (dropout masks follow the
    /// padded shape), recorded only when set, so earlier checkpoints still resume.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pad_multiple: Option<usize>,
    /// End this invocation (resumably, with a checkpoint) after this many optimizer steps,
    /// e.g. to time-box a session; not part of the run's identity.
    #[serde(default)]
    pub stop_after_steps: Option<u64>,
    /// Measure each optimizer step (`IMDB_LORA_STEP_TIMING=1` in the binary): host time to
    /// enqueue it, then a device synchronisation and its time, logged as INFO `step_timing`
    /// events and medians at each epoch end. Off by default: the synchronisation per step
    /// is what the loop otherwise avoids. Neither part of the run's identity nor saved.
    #[serde(skip)]
    pub step_timing: bool,
    /// Accept the checkpoint of this run made with fewer `epochs` and continue it to `epochs`
    /// (`train --resume-from`): the steps taken keep the learning rates they had, the rest
    /// follow the schedule of the longer run. Off by default: another epoch count is another
    /// run. Neither part of the run's identity nor saved.
    #[serde(skip)]
    pub more_epochs: bool,
    /// The validation metric that chooses the best epoch (runs with a validation split).
    #[serde(default, skip_serializing_if = "BestMetric::is_default")]
    pub metric_for_best: BestMetric,
    /// Early stopping: end the run after this many evaluations on the validation split
    /// without an improvement of `metric_for_best` (transformers' `EarlyStoppingCallback`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub early_stopping_patience: Option<usize>,
    /// Save (and test) the best epoch's model instead of the last one's (transformers'
    /// `load_best_model_at_end`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub load_best: bool,
    /// With a validation split, evaluate the test set after every epoch too, as a record
    /// (`EpochRecord::test`); it never chooses anything.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub test_each_epoch: bool,
    /// Per-class weights of the training loss (`torch.nn.CrossEntropyLoss(weight=...)`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub class_weights: Option<ClassWeights>,
}

/// The validation metric that chooses a run's best epoch.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BestMetric {
    /// Accuracy, higher is better.
    Accuracy,
    /// The headline F1 (class 1's for two classes, macro over more), higher is better.
    F1,
    /// Mean cross-entropy, lower is better: transformers' default.
    #[default]
    Loss,
}

impl BestMetric {
    fn is_default(&self) -> bool {
        *self == BestMetric::default()
    }

    /// Its name in files and messages.
    pub fn name(self) -> &'static str {
        match self {
            BestMetric::Accuracy => "accuracy",
            BestMetric::F1 => "f1",
            BestMetric::Loss => "loss",
        }
    }

    /// The value of this metric in `eval`.
    pub fn of(self, eval: &imdb_lora_metrics::EvalMetrics) -> f64 {
        match self {
            BestMetric::Accuracy => eval.accuracy,
            BestMetric::F1 => eval.f1,
            BestMetric::Loss => eval.loss,
        }
    }

    /// Whether `value` is strictly better than `best` (ties keep the earlier epoch, as
    /// transformers does).
    pub fn improves(self, value: f64, best: f64) -> bool {
        match self {
            BestMetric::Loss => value < best,
            _ => value > best,
        }
    }
}

/// How the training loss weighs each class.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ClassWeights {
    /// Inverse class frequency in the training examples, `n / (classes × count)`: scikit-learn's
    /// `compute_class_weight("balanced")`.
    Auto,
    /// One weight per class, in class order.
    Given(Vec<f64>),
}

impl ClassWeights {
    /// The weights for training examples with `counts` examples per class.
    ///
    /// # Errors
    /// [`TrainError::Config`] for a list of the wrong length or with a weight that is not a
    /// positive number, or `auto` with a class that has no training example.
    pub fn resolve(&self, counts: &[usize]) -> Result<Vec<f64>, TrainError> {
        let bad = |msg: String| Err(TrainError::Config(msg));
        match self {
            ClassWeights::Given(w) => {
                if w.len() != counts.len() {
                    return bad(format!(
                        "class weights: {} given for {} classes; give one per class, in class order",
                        w.len(),
                        counts.len()
                    ));
                }
                if let Some((i, w)) = w
                    .iter()
                    .enumerate()
                    .find(|(_, w)| !(w.is_finite() && **w > 0.0))
                {
                    return bad(format!(
                        "class weights: weight {w} of class {i} is not a positive number"
                    ));
                }
                Ok(w.clone())
            }
            ClassWeights::Auto => {
                if let Some(class) = counts.iter().position(|&c| c == 0) {
                    return bad(format!(
                        "class weights auto: class {class} has no training example, so it has no frequency to invert"
                    ));
                }
                let n: usize = counts.iter().sum();
                let k = counts.len() as f64;
                Ok(counts.iter().map(|&c| n as f64 / (k * c as f64)).collect())
            }
        }
    }
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            epochs: 3,
            batch_size: 16,
            eval_batch_size: 64,
            lr: 2e-4,
            weight_decay: 0.01,
            warmup_ratio: 0.06,
            lr_schedule: LrSchedule::Linear,
            max_grad_norm: Some(1.0),
            grad_accum_steps: 1,
            seed: 42,
            checkpoint_every: Some(200),
            bucket_window: None,
            pad_multiple: None,
            stop_after_steps: None,
            step_timing: false,
            more_epochs: false,
            metric_for_best: BestMetric::default(),
            early_stopping_patience: None,
            load_best: false,
            test_each_epoch: false,
            class_weights: None,
        }
    }
}

impl TrainConfig {
    /// Checks ranges before any work starts.
    pub fn validate(&self) -> Result<(), TrainError> {
        let bad = |msg: String| Err(TrainError::Config(msg));
        if self.epochs == 0 {
            return bad("epochs must be at least 1".into());
        }
        if self.batch_size == 0 || self.eval_batch_size == 0 {
            return bad("batch sizes must be at least 1".into());
        }
        if self.grad_accum_steps == 0 {
            return bad("grad_accum_steps must be at least 1".into());
        }
        if !(self.lr.is_finite() && self.lr > 0.0) {
            return bad(format!("lr = {} must be a positive number", self.lr));
        }
        if !(self.weight_decay.is_finite() && self.weight_decay >= 0.0) {
            return bad(format!("weight_decay = {} must be >= 0", self.weight_decay));
        }
        if !(0.0..1.0).contains(&self.warmup_ratio) {
            return bad(format!(
                "warmup_ratio = {} must be in [0, 1)",
                self.warmup_ratio
            ));
        }
        if self
            .max_grad_norm
            .is_some_and(|n| !(n.is_finite() && n > 0.0))
        {
            return bad("max_grad_norm must be a positive number".into());
        }
        if self.checkpoint_every == Some(0) {
            return bad("checkpoint_every must be at least 1".into());
        }
        if self.pad_multiple == Some(0) {
            return bad("pad_multiple must be at least 1 token".into());
        }
        if self.early_stopping_patience == Some(0) {
            return bad("early stopping patience must be at least 1 evaluation".into());
        }
        Ok(())
    }

    /// Optimizer steps in one epoch of `num_batches` batches.
    pub fn steps_per_epoch(&self, num_batches: usize) -> u64 {
        num_batches.div_ceil(self.grad_accum_steps) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_recipe_and_valid() {
        let c = TrainConfig::default();
        assert_eq!((c.lr, c.batch_size, c.epochs), (2e-4, 16, 3));
        assert!(c.validate().is_ok());
        assert_eq!(c.steps_per_epoch(250), 250);
        let c = TrainConfig {
            grad_accum_steps: 4,
            ..c
        };
        assert_eq!(c.steps_per_epoch(250), 63);
    }

    #[test]
    fn out_of_range_values_are_refused() {
        for c in [
            TrainConfig {
                epochs: 0,
                ..Default::default()
            },
            TrainConfig {
                lr: -1.0,
                ..Default::default()
            },
            TrainConfig {
                warmup_ratio: 1.0,
                ..Default::default()
            },
            TrainConfig {
                max_grad_norm: Some(0.0),
                ..Default::default()
            },
            TrainConfig {
                grad_accum_steps: 0,
                ..Default::default()
            },
            TrainConfig {
                pad_multiple: Some(0),
                ..Default::default()
            },
        ] {
            assert!(matches!(c.validate(), Err(TrainError::Config(_))));
        }
    }
}
