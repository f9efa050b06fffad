//! Choosing the model on a validation split: the best epoch of a metric (the earliest of
//! equals), early stopping's rule, and the [`Selection`] `metrics.json` records.

use imdb_lora_metrics::{EpochRecord, RunConfig, Selection};

use crate::checkpoint::TrainState;
use crate::{BestMetric, TrainConfig};

/// The 1-based epoch of `history` with the best `metric` (the earliest of equals).
pub(crate) fn best_epoch(history: &[EpochRecord], metric: BestMetric) -> Option<usize> {
    let mut best: Option<&EpochRecord> = None;
    for r in history {
        if best.is_none_or(|b| metric.improves(metric.of(&r.eval), metric.of(&b.eval))) {
            best = Some(r);
        }
    }
    best.map(|r| r.epoch)
}

/// Whether the last `patience` evaluations of `history` all failed to improve on the best
/// before them: early stopping's rule (transformers' `EarlyStoppingCallback` with a threshold
/// of 0: equal is no improvement).
pub(crate) fn patience_spent(history: &[EpochRecord], metric: BestMetric, patience: usize) -> bool {
    history.len() - best_epoch(history, metric).unwrap_or(0) >= patience
}

/// What `metrics.json` records of the choice: with a validation split and at least one epoch,
/// the best epoch of `config.metric_for_best` and what was done with it.
pub(crate) fn selection(
    run: &RunConfig,
    config: &TrainConfig,
    state: &TrainState,
) -> Option<Selection> {
    run.val_n?;
    let metric = config.metric_for_best;
    let epoch = best_epoch(&state.history, metric)?;
    Some(Selection {
        metric: metric.name().into(),
        best_epoch: epoch,
        best_value: metric.of(&state.history[epoch - 1].eval),
        load_best: config.load_best,
        patience: config.early_stopping_patience,
        stopped_early: state.stopped_early,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use imdb_lora_metrics::{ConfusionMatrix, EvalMetrics};

    /// Epoch records whose validation accuracy and loss follow the script.
    fn history(script: &[(f64, f64)]) -> Vec<EpochRecord> {
        (1..)
            .zip(script)
            .map(|(epoch, &(accuracy, loss))| {
                let mut eval = EvalMetrics::from_confusion(ConfusionMatrix::default(), loss, 1.0);
                eval.accuracy = accuracy;
                EpochRecord {
                    epoch,
                    train_loss: 0.5,
                    train_seconds: 1.0,
                    train_samples_per_s: 1.0,
                    eval,
                    test: None,
                }
            })
            .collect()
    }

    /// The epoch after which early stopping ends a run of `epochs` with this script.
    fn stops_after(script: &[(f64, f64)], metric: BestMetric, patience: usize) -> usize {
        let h = history(script);
        (1..=h.len())
            .find(|&n| patience_spent(&h[..n], metric, patience))
            .unwrap_or(h.len())
    }

    #[test]
    fn early_stopping_stops_at_the_right_epoch_on_a_scripted_sequence() {
        // Accuracy peaks at epoch 3; a tie at epoch 4 is no improvement.
        let acc = [
            (0.6, 0.9),
            (0.7, 0.8),
            (0.8, 0.7),
            (0.8, 0.75),
            (0.79, 0.6),
            (0.9, 0.5),
        ];
        assert_eq!(best_epoch(&history(&acc), BestMetric::Accuracy), Some(6));
        assert_eq!(
            best_epoch(&history(&acc[..5]), BestMetric::Accuracy),
            Some(3)
        );
        assert_eq!(stops_after(&acc, BestMetric::Accuracy, 1), 4);
        assert_eq!(stops_after(&acc, BestMetric::Accuracy, 2), 5);
        assert_eq!(stops_after(&acc, BestMetric::Accuracy, 3), 6);
        // Loss is lower-is-better: 0.7 at epoch 3, worse at 4, better again at 5.
        assert_eq!(stops_after(&acc, BestMetric::Loss, 1), 4);
        assert_eq!(stops_after(&acc, BestMetric::Loss, 2), 6);
        assert_eq!(best_epoch(&history(&acc[..4]), BestMetric::Loss), Some(3));
        // The earliest of equal bests is the best.
        let flat = [(0.5, 0.7), (0.5, 0.7), (0.5, 0.7)];
        assert_eq!(best_epoch(&history(&flat), BestMetric::Accuracy), Some(1));
        assert_eq!(stops_after(&flat, BestMetric::F1, 2), 3);
    }
}
