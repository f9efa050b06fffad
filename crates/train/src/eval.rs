//! Evaluation: batched inference without gradients, accuracy/F1/precision/recall/loss.

use std::time::Instant;

use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor, TensorData};
use imdb_lora_data::Batch;
use imdb_lora_data::long_text::mean_logits;
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
/// The metrics count texts: sequences sharing a row (a long text's windows,
/// [`imdb_lora_data::LongText::Window`]) are one text, predicted from the mean of their
/// logits; its loss is the cross-entropy of that mean (computed on the host, in f64).
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
    let e = evaluate_texts(model, batches, device, progress, label, classes)?;
    Ok((e.metrics, e.classes))
}

/// What [`evaluate_texts`] finds: the metrics, and each text's outcome in the order its first
/// sequence came (so two passes over the same batches line up text by text).
#[derive(Debug, Clone)]
pub struct Evaluation {
    /// The headline metrics.
    pub metrics: EvalMetrics,
    /// Per class.
    pub classes: ClassMetrics,
    /// Per text.
    pub texts: Vec<TextOutcome>,
}

/// One text's outcome: its label, the predicted class and the probabilities (softmax of the
/// mean of its sequences' logits).
#[derive(Debug, Clone, PartialEq)]
pub struct TextOutcome {
    /// The true class.
    pub label: i64,
    /// The predicted class.
    pub prediction: i64,
    /// Per class.
    pub probabilities: Vec<f64>,
}

/// [`evaluate`], keeping each text's outcome.
pub fn evaluate_texts<B: KernelBackend>(
    model: &SequenceClassifier<B>,
    batches: impl Iterator<Item = Batch>,
    device: &B::Device,
    progress: &dyn Progress,
    label: &str,
    classes: &[String],
) -> Result<Evaluation, TrainError> {
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
    let mut acc = EvalAccumulator::with_classes(classes.len());
    let total = match batches.size_hint() {
        (low, Some(high)) if low == high => Some(high as u64),
        _ => None,
    };
    let task = progress.start(label, total, Unit::Items);
    // Each batch's logits stay on the device; the whole pass is read back once at the end,
    // so the host never waits inside it.
    let mut outputs = Vec::new();
    let mut rows = Vec::new();
    let mut labels = Vec::new();
    for batch in batches {
        rows.extend_from_slice(&batch.rows);
        labels.extend_from_slice(&batch.labels);
        let t = BatchTensors::<B>::new(batch, device);
        outputs.push(model.forward(t.input_ids, t.attention_mask, Some(t.token_type_ids))?);
        task.advance(1);
    }
    drop(task);
    let values = match outputs.is_empty() {
        true => Vec::new(),
        false => Tensor::cat(outputs, 0)
            .into_data()
            .convert::<f32>()
            .to_vec::<f32>()
            .map_err(|e| TrainError::Tensor(format!("{e:?}")))?,
    };
    let n = classes.len();
    if values.len() != rows.len() * n {
        return Err(TrainError::Tensor(format!(
            "evaluation read back {} logits for {} sequences of {n} classes",
            values.len(),
            rows.len()
        )));
    }
    let texts = per_text(&rows, &labels, &values, n);
    let predictions: Vec<i64> = texts.iter().map(|t| t.prediction).collect();
    let text_labels: Vec<i64> = texts.iter().map(|t| t.label).collect();
    let mean_loss = texts.iter().map(|t| t.loss).sum::<f64>() / texts.len().max(1) as f64;
    if !texts.is_empty() {
        acc.update(&predictions, &text_labels, mean_loss)?;
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
    Ok(Evaluation {
        metrics,
        classes: per_class,
        texts: texts
            .into_iter()
            .map(|t| TextOutcome {
                label: t.label,
                prediction: t.prediction,
                probabilities: t.probabilities,
            })
            .collect(),
    })
}

/// One text's evaluation: its windows' logits averaged.
#[derive(Debug, Clone, PartialEq)]
struct TextResult {
    label: i64,
    prediction: i64,
    /// Cross-entropy of the averaged logits.
    loss: f64,
    /// Softmax of the averaged logits.
    probabilities: Vec<f64>,
}

/// The texts of a pass, in the order their first sequence came: the mean of each text's
/// sequences' logits (one sequence, unless long texts are split into windows), its argmax
/// (the first of equals, as `argmax`) and its cross-entropy. Sequences of one text share its
/// row; `values` holds `n` logits per sequence.
fn per_text(rows: &[usize], labels: &[i64], values: &[f32], n: usize) -> Vec<TextResult> {
    let mut index: std::collections::HashMap<usize, usize> = std::collections::HashMap::new();
    let mut texts: Vec<(Vec<Vec<f32>>, i64)> = Vec::new();
    for ((row, label), logits) in rows.iter().zip(labels).zip(values.chunks_exact(n)) {
        let at = *index.entry(*row).or_insert_with(|| {
            texts.push((Vec::new(), *label));
            texts.len() - 1
        });
        texts[at].0.push(logits.to_vec());
    }
    texts
        .into_iter()
        .map(|(windows, label)| {
            let mean: Vec<f64> = mean_logits(&windows).into_iter().map(f64::from).collect();
            let max = mean.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let log_sum = mean.iter().map(|m| (m - max).exp()).sum::<f64>().ln() + max;
            let prediction = mean
                .iter()
                .enumerate()
                .fold((0, f64::NEG_INFINITY), |best, (i, &m)| match m > best.1 {
                    true => (i, m),
                    false => best,
                })
                .0 as i64;
            let target = usize::try_from(label).ok().and_then(|l| mean.get(l));
            TextResult {
                label,
                prediction,
                // A label outside the head gives a non-finite loss, refused by the accumulator.
                loss: target.map_or(f64::NAN, |t| log_sum - t),
                probabilities: mean.iter().map(|m| (m - log_sum).exp()).collect(),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_texts_windows_are_averaged_and_counted_once() {
        // Text 7 has two windows whose logits disagree; text 3 one.
        let rows = [7, 3, 7];
        let labels = [1, 0, 1];
        let values = [2.0, 0.0, 0.0, 1.0, -1.0, 3.0];
        let t = per_text(&rows, &labels, &values, 2);
        assert_eq!(t.len(), 2);
        assert_eq!((t[0].label, t[0].prediction), (1, 1)); // mean [0.5, 1.5]
        let expected = (0.5f64.exp() + 1.5f64.exp()).ln() - 1.5;
        assert!((t[0].loss - expected).abs() < 1e-12);
        let p1 = 1.0 / (1.0 + (-1.0f64).exp());
        assert!((t[0].probabilities[1] - p1).abs() < 1e-12);
        assert!((t[0].probabilities.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        assert_eq!((t[1].label, t[1].prediction), (0, 1));
        let expected = (1.0f64.exp() + 1.0).ln();
        assert!((t[1].loss - expected).abs() < 1e-12);
        // Ties go to the first class, as argmax.
        assert_eq!(per_text(&[0], &[0], &[1.0, 1.0], 2)[0].prediction, 0);
    }
}
