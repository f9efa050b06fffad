//! The batch-by-batch accumulator of an evaluation loop, [`EvalAccumulator`]: over N classes
//! (two for IMDb), it counts into a [`ClassConfusion`] and finishes with the headline
//! [`EvalMetrics`] and the [`ClassMetrics`]. The one file that uses both `classification.rs`
//! (the headline) and `classes.rs` (N classes), which know nothing of it.

use crate::classes::{ClassConfusion, ClassMetrics, class_index};
use crate::classification::{ConfusionMatrix, EvalMetrics};
use crate::error::MetricsError;

/// Accumulates predictions, labels and losses (class indices `0..n`) batch by batch during an
/// evaluation loop, then produces [`EvalMetrics`] and [`ClassMetrics`].
///
/// ```
/// # fn main() -> Result<(), imdb_lora_metrics::MetricsError> {
/// let mut acc = imdb_lora_metrics::EvalAccumulator::with_classes(2);
/// acc.update(&[1u8, 0, 1], &[1u8, 0, 0], 0.40)?;
/// acc.update(&[0u8], &[0u8], 0.20)?;
/// let m = acc.finish(2.0);
/// assert_eq!(m.samples, 4);
/// assert!((m.accuracy - 0.75).abs() < 1e-12);
/// assert!((m.loss - 0.35).abs() < 1e-12); // (3·0.40 + 1·0.20) / 4
/// # Ok(()) }
/// ```
///
/// Over four classes:
///
/// ```
/// # fn main() -> Result<(), imdb_lora_metrics::MetricsError> {
/// let mut acc = imdb_lora_metrics::EvalAccumulator::with_classes(4);
/// acc.update(&[0u8, 1, 2, 3], &[0u8, 1, 2, 2], 0.9)?;
/// let m = acc.finish(1.0);
/// assert!((m.accuracy - 0.75).abs() < 1e-12);
/// let classes = acc.class_metrics(&["World", "Sports", "Business", "Sci/Tech"])?;
/// assert_eq!(classes.per_class[2].support, 2);
/// assert_eq!(classes.confusion[2], [0, 0, 1, 1]);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct EvalAccumulator {
    counts: ClassConfusion,
    loss_sum: f64,
    batches: usize,
}

impl EvalAccumulator {
    /// An empty accumulator over `num_classes` classes (labels and predictions in
    /// `0..num_classes`). With 2 classes its [`Self::finish`] is the binary metrics of class 1.
    pub fn with_classes(num_classes: usize) -> Self {
        Self {
            counts: ClassConfusion::new(num_classes),
            loss_sum: 0.0,
            batches: 0,
        }
    }

    /// Adds one batch. `mean_loss` is the batch's mean cross-entropy; it is
    /// weighted by the batch size so that a short final batch does not skew
    /// the overall mean.
    ///
    /// On error nothing is recorded, so the accumulator stays consistent.
    ///
    /// # Errors
    /// As [`ClassConfusion::from_predictions`], plus
    /// [`MetricsError::NonFiniteLoss`] if `mean_loss` is NaN or infinite.
    pub fn update<P, L>(
        &mut self,
        predictions: &[P],
        labels: &[L],
        mean_loss: f64,
    ) -> Result<(), MetricsError>
    where
        P: Copy + Into<i64>,
        L: Copy + Into<i64>,
    {
        if !mean_loss.is_finite() {
            return Err(MetricsError::NonFiniteLoss {
                batch: self.batches,
                value: mean_loss,
            });
        }
        let batch = self
            .counts
            .checked_batch(predictions, labels, class_index)?;
        self.loss_sum += mean_loss * batch.len() as f64;
        self.counts.record_all(&batch);
        self.batches += 1;
        Ok(())
    }

    /// Binary counts so far; all zero over N != 2 classes (see [`Self::class_confusion`]).
    pub fn confusion(&self) -> ConfusionMatrix {
        self.counts.to_binary().unwrap_or_default()
    }

    /// The N×N counts so far.
    pub fn class_confusion(&self) -> &ClassConfusion {
        &self.counts
    }

    /// Number of classes.
    pub fn num_classes(&self) -> usize {
        self.counts.num_classes()
    }

    /// Samples seen so far.
    pub fn samples(&self) -> u64 {
        self.counts.total()
    }

    /// Batches seen so far.
    pub fn batches(&self) -> usize {
        self.batches
    }

    /// Per-sample mean loss so far; 0.0 before any sample.
    pub fn mean_loss(&self) -> f64 {
        let n = self.counts.total();
        if n == 0 {
            0.0
        } else {
            self.loss_sum / n as f64
        }
    }

    /// The metrics over everything accumulated, given the wall-clock time
    /// the evaluation took.
    ///
    /// As [`EvalMetrics::from_class_confusion`]: for 2 classes [`EvalMetrics::from_confusion`]
    /// of the binary view (class 1 positive); over N > 2 macro averages, no binary matrix.
    pub fn finish(&self, seconds: f64) -> EvalMetrics {
        EvalMetrics::from_class_confusion(&self.counts, self.mean_loss(), seconds)
    }

    /// The per-class metrics of everything accumulated, `names[i]` naming class `i`.
    ///
    /// # Errors
    /// [`MetricsError::ClassNames`] unless there is one name per class.
    pub fn class_metrics<S: AsRef<str>>(&self, names: &[S]) -> Result<ClassMetrics, MetricsError> {
        ClassMetrics::from_confusion(names, &self.counts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EPS: f64 = 1e-12;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < EPS
    }

    #[test]
    fn accumulator_matches_one_shot_and_weights_loss_by_batch_size() {
        let labels = [1u8, 1, 1, 1, 1, 0, 0, 0, 0, 0];
        let preds = [1u8, 1, 1, 1, 0, 1, 1, 1, 0, 0];
        let mut acc = EvalAccumulator::with_classes(2);
        // Batches of 4, 4 and 2 with different mean losses.
        acc.update(&preds[..4], &labels[..4], 1.0).unwrap();
        acc.update(&preds[4..8], &labels[4..8], 2.0).unwrap();
        acc.update(&preds[8..], &labels[8..], 4.0).unwrap();
        assert_eq!(acc.batches(), 3);
        assert_eq!(acc.samples(), 10);
        // (4·1 + 4·2 + 2·4) / 10 = 2.0; the unweighted mean of means would be 7/3.
        assert!(close(acc.mean_loss(), 2.0));
        let one_shot = ConfusionMatrix::from_predictions(&preds, &labels).unwrap();
        assert_eq!(acc.confusion(), one_shot);
        let e = acc.finish(5.0);
        assert_eq!(e, EvalMetrics::from_confusion(one_shot, 2.0, 5.0));
    }

    #[test]
    fn accumulator_rejects_bad_batch_without_recording_it() {
        let mut acc = EvalAccumulator::with_classes(2);
        acc.update(&[1u8], &[1u8], 0.1).unwrap();
        let err = acc.update(&[1u8, 0], &[1u8, 7], 0.1).unwrap_err();
        assert!(matches!(
            err,
            MetricsError::ClassOutOfRange {
                what: "labels",
                index: 1,
                ..
            }
        ));
        let err = acc.update(&[1u8], &[1u8], f64::NAN).unwrap_err();
        assert!(matches!(err, MetricsError::NonFiniteLoss { batch: 1, .. }));
        assert_eq!(acc.samples(), 1);
        assert_eq!(acc.batches(), 1);
        assert!(close(acc.mean_loss(), 0.1));
    }

    #[test]
    fn empty_accumulator_finishes_with_zeros() {
        let e = EvalAccumulator::with_classes(2).finish(1.0);
        assert_eq!(e.samples, 0);
        assert_eq!(e.loss, 0.0);
        assert_eq!(e.accuracy, 0.0);
    }

    #[test]
    fn accumulator_over_classes_matches_one_shot() {
        let labels = [0u8, 0, 1, 1, 2, 2, 3, 3, 3];
        let preds = [0u8, 1, 1, 1, 2, 0, 3, 2, 3];
        let mut acc = EvalAccumulator::with_classes(4);
        acc.update(&preds[..4], &labels[..4], 1.0).unwrap();
        acc.update(&preds[4..], &labels[4..], 0.4).unwrap();
        assert_eq!(acc.num_classes(), 4);
        assert_eq!(acc.samples(), 9);
        assert!(close(acc.mean_loss(), (4.0 * 1.0 + 5.0 * 0.4) / 9.0));
        let one_shot = ClassConfusion::from_predictions(4, &preds, &labels).unwrap();
        assert_eq!(acc.class_confusion(), &one_shot);
        // No binary view of four classes.
        assert!(acc.confusion().is_empty());
        let e = acc.finish(3.0);
        assert_eq!(e.samples, 9);
        assert!(close(e.accuracy, 6.0 / 9.0));
        assert!(close(e.f1, one_shot.macro_f1()));
        assert!(close(e.precision, one_shot.macro_precision()));
        assert!(close(e.recall, one_shot.macro_recall()));
        assert!(e.confusion.is_empty());
        let c = acc.class_metrics(&["a", "b", "c", "d"]).unwrap();
        assert_eq!(c.per_class[3].support, 3);
        assert_eq!(c.confusion[3], [0, 0, 1, 2]);
    }

    #[test]
    fn accumulator_over_classes_rejects_out_of_range_without_recording() {
        let mut acc = EvalAccumulator::with_classes(3);
        acc.update(&[2u8], &[2u8], 0.1).unwrap();
        let err = acc.update(&[0i64, 3], &[0i64, 1], 0.1).unwrap_err();
        assert!(matches!(
            err,
            MetricsError::ClassOutOfRange {
                what: "predictions",
                index: 1,
                value: 3,
                num_classes: 3
            }
        ));
        assert_eq!(acc.samples(), 1);
        assert_eq!(acc.batches(), 1);
    }

    #[test]
    fn two_class_accumulator_finishes_with_the_binary_metrics_of_class_1() {
        let labels = [1u8, 1, 1, 1, 1, 0, 0, 0, 0, 0];
        let preds = [1u8, 1, 1, 1, 0, 1, 1, 1, 0, 0];
        let mut two = EvalAccumulator::with_classes(2);
        two.update(&preds[..6], &labels[..6], 0.7).unwrap();
        two.update(&preds[6..], &labels[6..], 0.3).unwrap();
        let one_shot = ConfusionMatrix::from_predictions(&preds, &labels).unwrap();
        assert_eq!(two.confusion(), one_shot);
        assert_eq!(
            two.finish(2.0),
            EvalMetrics::from_confusion(one_shot, two.mean_loss(), 2.0)
        );
    }
}
