//! Evaluation: batched inference without gradients, accuracy/F1/precision/recall/loss.

use std::time::Instant;

use burn::nn::loss::CrossEntropyLossConfig;
use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor, TensorData};
use imdb_lora_data::Batch;
use imdb_lora_encoder::{KernelBackend, SequenceClassifier};
use imdb_lora_metrics::{ClassMetrics, EvalAccumulator, EvalMetrics};
use imdb_lora_progress::{Progress, Unit};

use crate::TrainError;

/// A batch as tensors on `device`: input ids, attention mask, token types, labels.
pub struct BatchTensors<B: Backend> {
    /// `[batch, seq]`.
    pub input_ids: Tensor<B, 2, Int>,
    /// `[batch, seq]`, 1 for tokens.
    pub attention_mask: Tensor<B, 2, Int>,
    /// `[batch, seq]`.
    pub token_type_ids: Tensor<B, 2, Int>,
    /// `[batch]`.
    pub labels: Tensor<B, 1, Int>,
}

impl<B: Backend> BatchTensors<B> {
    /// Uploads a padded batch, moving its buffers rather than copying them (this runs once
    /// per training step).
    pub fn new(batch: Batch, device: &B::Device) -> Self {
        let shape = [batch.batch_size, batch.seq_len];
        let int2 = |v: Vec<i64>| Tensor::<B, 2, Int>::from_data(TensorData::new(v, shape), device);
        Self {
            input_ids: int2(batch.input_ids),
            attention_mask: int2(batch.attention_mask),
            token_type_ids: int2(batch.token_type_ids),
            labels: Tensor::from_data(TensorData::new(batch.labels, [batch.batch_size]), device),
        }
    }
}

/// Class predictions of `[batch, labels]` logits as plain integers.
pub fn argmax(logits: Tensor<impl Backend, 2>) -> Result<Vec<i64>, TrainError> {
    logits
        .argmax(1)
        .into_data()
        .convert::<i64>()
        .to_vec::<i64>()
        .map_err(|e| TrainError::Tensor(format!("{e:?}")))
}

/// Runs `model` over `batches` and computes the metrics over the named classes (any number,
/// one name per model output, in class order): the headline metrics (for more than two
/// classes, accuracy and macro averages; mean cross-entropy included) and the per-class ones.
/// The pass is reported to `progress` as a task labelled `label` that advances once per batch
/// (its total is the iterator's length when the iterator knows it exactly).
///
/// Use an inference model (`model.valid()` of a training one): no dropout, fused attention.
pub fn evaluate<B: KernelBackend>(
    model: &SequenceClassifier<B>,
    batches: impl Iterator<Item = Batch>,
    device: &B::Device,
    progress: &dyn Progress,
    label: &str,
    classes: &[String],
) -> Result<(EvalMetrics, ClassMetrics), TrainError> {
    let _span = tracing::debug_span!("evaluate").entered();
    let start = Instant::now();
    // Adapters folded into their base weights for the pass, on a copy (the caller's model
    // is untouched): one product per adapted projection instead of three plus an add, the
    // same logits up to float rounding (the adapter tests check merged against PEFT too).
    // Not in bf16: rounding the merged weights to bf16 would swallow most of the small LoRA
    // update (2⁻⁸ relative), so a bf16 model evaluates with its adapters beside the weights.
    let merged;
    let model = if model.precision() == imdb_lora_encoder::Precision::F32 {
        merged = model.clone().merge_lora();
        &merged
    } else {
        model
    };
    let loss_fn = CrossEntropyLossConfig::new().init(device);
    let mut acc = EvalAccumulator::with_classes(classes.len());
    let total = match batches.size_hint() {
        (low, Some(high)) if low == high => Some(high as u64),
        _ => None,
    };
    let task = progress.start(label, total, Unit::Items);
    // Per batch, its predictions and mean loss stay on the device as one float vector
    // `[predictions..., loss]` (class indices are small integers, exact in f32); the whole
    // pass is read back once at the end, so the host never waits inside it.
    let mut outputs = Vec::new();
    let mut labels = Vec::new();
    for batch in batches {
        let size = batch.batch_size;
        labels.push(batch.labels.clone());
        let t = BatchTensors::<B>::new(batch, device);
        let logits = model.forward(t.input_ids, t.attention_mask, Some(t.token_type_ids))?;
        let loss = loss_fn.forward(logits.clone(), t.labels);
        let predictions = logits.argmax(1).reshape([size]).float();
        outputs.push(Tensor::cat(vec![predictions, loss], 0));
        task.advance(1);
    }
    drop(task);
    let values = match outputs.is_empty() {
        true => Vec::new(),
        false => Tensor::cat(outputs, 0)
            .into_data()
            .convert::<f64>()
            .to_vec::<f64>()
            .map_err(|e| TrainError::Tensor(format!("{e:?}")))?,
    };
    let mut rest = values.as_slice();
    for labels in &labels {
        let Some((batch, tail)) = rest.split_at_checked(labels.len() + 1) else {
            return Err(TrainError::Tensor(format!(
                "evaluation read back {} values, fewer than its batches hold",
                values.len()
            )));
        };
        let (predictions, loss) = batch.split_at(labels.len());
        let predictions: Vec<i64> = predictions.iter().map(|&p| p as i64).collect();
        acc.update(&predictions, labels, loss[0])?;
        rest = tail;
    }
    let metrics = acc.finish(start.elapsed().as_secs_f64());
    let per_class = acc.class_metrics(classes)?;
    // DEBUG: callers report the result in their own terms (the trainer's baseline and epoch
    // lines, the CLI's eval line); at INFO it would be said twice.
    tracing::debug!(
        accuracy = metrics.accuracy,
        f1 = metrics.f1,
        loss = metrics.loss,
        samples = metrics.samples,
        samples_per_s = metrics.samples_per_s,
        "evaluation"
    );
    Ok((metrics, per_class))
}
