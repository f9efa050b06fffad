//! Training checkpoints: adapters + head + optimizer moments + the loop's position, in one
//! safetensors file written atomically, so a run killed at any instant (even `kill -9`)
//! finds either the previous checkpoint or the new one, never a torn mixture.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{Tensor, TensorData};
use imdb_lora_encoder::{
    MappedFile, OwnedTensor, PeftAdapter, PeftConfig, SequenceClassifier, adapter_tensors,
    write_safetensors,
};
use imdb_lora_lora::LoraConfig;
use imdb_lora_metrics::{EpochRecord, EvalMetrics, RunClasses};
use serde::{Deserialize, Serialize};

use crate::TrainError;
use crate::optim::{AdamW, Moments, trainable_sizes};

const STATE_KEY: &str = "train_state";
const EXP_AVG: &str = "optimizer.exp_avg.";
const EXP_AVG_SQ: &str = "optimizer.exp_avg_sq.";

/// Where the loop stands, and everything measured so far.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainState {
    /// Identifies the run's configuration; a checkpoint from another one is refused.
    pub fingerprint: String,
    /// 0-based epoch in progress (== epochs when finished).
    pub epoch: usize,
    /// Batches of that epoch already trained on.
    pub batches_done: usize,
    /// Optimizer steps taken.
    pub optimizer_step: u64,
    /// Sum of per-sample training loss in the current epoch.
    pub epoch_loss_sum: f64,
    /// Samples trained on in the current epoch.
    pub epoch_samples: u64,
    /// Training seconds spent in the current epoch (across restarts).
    pub epoch_seconds: f64,
    /// Baseline evaluation (untrained adapters).
    pub baseline: EvalMetrics,
    /// Finished epochs.
    pub history: Vec<EpochRecord>,
    /// The LoRA configuration of the adapters.
    pub lora: LoraConfig,
    /// Per-class metrics of the baseline and finished epochs (and of the final test
    /// evaluation, once made).
    pub classes: RunClasses,
    /// Early stopping ended the run (no further epoch follows, even on resume).
    #[serde(default)]
    pub stopped_early: bool,
    /// The test set's evaluation of the saved model, of a run with a validation split, once
    /// its last epoch is done.
    #[serde(default)]
    pub final_test: Option<EvalMetrics>,
}

/// `checkpoints/last.safetensors` and `checkpoints/best.safetensors` under a run directory.
#[derive(Debug, Clone)]
pub struct CheckpointDir {
    dir: PathBuf,
}

impl CheckpointDir {
    /// Checkpoints of the run writing into `out`.
    pub fn new(out: &Path) -> Self {
        Self {
            dir: out.join("checkpoints"),
        }
    }

    /// The most recent checkpoint.
    pub fn last(&self) -> PathBuf {
        self.dir.join("last.safetensors")
    }

    /// The checkpoint with the best validation accuracy.
    pub fn best(&self) -> PathBuf {
        self.dir.join("best.safetensors")
    }
}

/// Writes a checkpoint atomically.
pub fn save<B: Backend, IB: Backend>(
    path: &Path,
    model: &SequenceClassifier<B>,
    optimizer: &AdamW<IB>,
    state: &TrainState,
) -> Result<(), TrainError> {
    let mut tensors = adapter_tensors(model)?;
    for (key, m) in &optimizer.state {
        tensors.insert(format!("{EXP_AVG}{key}"), owned(m.exp_avg.clone())?);
        tensors.insert(format!("{EXP_AVG_SQ}{key}"), owned(m.exp_avg_sq.clone())?);
    }
    let json = serde_json::to_string(state).map_err(|e| TrainError::Checkpoint {
        path: path.to_path_buf(),
        reason: format!("cannot serialise state: {e}"),
    })?;
    let metadata = HashMap::from([(STATE_KEY.to_string(), json)]);
    write_safetensors(path, &tensors, Some(metadata))?;
    // The file name at INFO (the run directory is the caller's), the whole path at DEBUG.
    tracing::debug!(path = %path.display(), "checkpoint path");
    tracing::info!(
        step = optimizer.step,
        file = %path.file_name().unwrap_or(path.as_os_str()).to_string_lossy(),
        "checkpoint written"
    );
    Ok(())
}

fn owned<B: Backend>(t: Tensor<B, 1>) -> Result<OwnedTensor, TrainError> {
    Ok(OwnedTensor::from_tensor(t)?)
}

/// What a checkpoint restores.
pub struct Restored<B: Backend, IB: Backend> {
    /// The model with the checkpoint's adapters and head.
    pub model: SequenceClassifier<B>,
    /// The optimizer with its moments and step count.
    pub optimizer: AdamW<IB>,
    /// The loop position and history.
    pub state: TrainState,
}

/// Reads a checkpoint onto `base` (the freshly loaded backbone).
///
/// Everything is checked before it is used: the adapters against the model (by
/// [`PeftAdapter::apply`]), and the optimizer's moments against the parameters they belong
/// to (each names a trainable parameter and has its size and finite values; after the first
/// step, no trainable parameter lacks them). A moment of the wrong size would otherwise be a
/// backend panic at the next step, or be broadcast into silent nonsense.
pub fn load<B: AutodiffBackend>(
    path: &Path,
    base: &SequenceClassifier<B>,
    optimizer: AdamW<B::InnerBackend>,
    device: &B::Device,
) -> Result<Restored<B, B::InnerBackend>, TrainError> {
    let bad = |reason: String| TrainError::Checkpoint {
        path: path.to_path_buf(),
        reason,
    };
    let bytes = std::fs::read(path).map_err(|e| bad(e.to_string()))?;
    let (_, metadata) =
        safetensors::SafeTensors::read_metadata(&bytes).map_err(|e| bad(e.to_string()))?;
    let json = metadata
        .metadata()
        .as_ref()
        .and_then(|m| m.get(STATE_KEY))
        .ok_or_else(|| {
            bad(format!(
                "no `{STATE_KEY}` metadata: not a training checkpoint"
            ))
        })?;
    let state: TrainState = serde_json::from_str(json).map_err(|e| bad(e.to_string()))?;
    drop(bytes);

    let file = MappedFile::open(path)?;
    let weights = file.tensors()?;
    let mut adapter = BTreeMap::new();
    let mut optimizer = optimizer;
    optimizer.step = state.optimizer_step;
    optimizer.state.clear();
    let mut avg: BTreeMap<String, Vec<f32>> = BTreeMap::new();
    let mut avg_sq: BTreeMap<String, Vec<f32>> = BTreeMap::new();
    for key in weights.keys() {
        let shape = weights.shape(&key).unwrap_or_default();
        let values = weights.read(&key, &shape)?;
        if let Some(p) = key.strip_prefix(EXP_AVG) {
            avg.insert(p.to_string(), values);
        } else if let Some(p) = key.strip_prefix(EXP_AVG_SQ) {
            avg_sq.insert(p.to_string(), values);
        } else {
            adapter.insert(key, (shape, values));
        }
    }
    let peft = PeftConfig::from_lora(&state.lora, "checkpoint");
    let model = PeftAdapter::from_parts(path, peft, adapter)?.apply(base)?;

    let mut trainable = trainable_sizes(&model);
    if let Some(key) = avg_sq.keys().find(|k| !avg.contains_key(*k)) {
        return Err(bad(format!(
            "optimizer state for `{key}` has exp_avg_sq but no exp_avg"
        )));
    }
    for (key, exp_avg) in avg {
        let exp_avg_sq = avg_sq
            .remove(&key)
            .ok_or_else(|| bad(format!("optimizer state for `{key}` lacks exp_avg_sq")))?;
        let size = trainable.remove(&key).ok_or_else(|| {
            bad(format!(
                "optimizer state for `{key}` matches no trainable parameter of the model"
            ))
        })?;
        for (name, moment) in [("exp_avg", &exp_avg), ("exp_avg_sq", &exp_avg_sq)] {
            if moment.len() != size {
                return Err(bad(format!(
                    "optimizer {name} for `{key}` has {} values, the parameter has {size}",
                    moment.len()
                )));
            }
        }
        if !exp_avg.iter().all(|v| v.is_finite())
            || !exp_avg_sq.iter().all(|v| v.is_finite() && *v >= 0.0)
        {
            return Err(bad(format!(
                "optimizer state for `{key}` holds non-finite (or negative second) moments"
            )));
        }
        optimizer.state.insert(
            key,
            Moments {
                exp_avg: flat(exp_avg, device),
                exp_avg_sq: flat(exp_avg_sq, device),
            },
        );
    }
    // Every step updates every trainable parameter: after one, each has its moments.
    if state.optimizer_step > 0
        && let Some(key) = trainable.keys().next()
    {
        return Err(bad(format!(
            "no optimizer state for trainable parameter `{key}` after {} steps",
            state.optimizer_step
        )));
    }
    Ok(Restored {
        model,
        optimizer,
        state,
    })
}

fn flat<B: Backend>(values: Vec<f32>, device: &B::Device) -> Tensor<B, 1> {
    let n = values.len();
    Tensor::from_data(TensorData::new(values, [n]), device)
}
