//! Binary-classification metrics (accuracy, precision, recall, F1) from a
//! confusion matrix, and the headline [`EvalMetrics`] of one evaluation (the N-class
//! metrics, and [`EvalMetrics::from_class_confusion`], are in `classes.rs`; the
//! batch-by-batch accumulator of evaluation loops, [`crate::EvalAccumulator`], in
//! `accumulator.rs`).
//!
//! Convention: the positive class is label `1` (IMDb `pos`), the negative
//! class is `0` (`neg`). Every ratio whose denominator is zero is defined as
//! `0.0`, like scikit-learn's `zero_division=0`: for instance a test set with
//! no positive labels and no positive predictions has precision, recall and
//! F1 all `0.0` (but accuracy `1.0`), and an empty confusion matrix has every
//! metric `0.0`. This keeps every value finite so that `metrics.json` (JSON
//! has no NaN) can always be written.

use serde::{Deserialize, Serialize};

use crate::error::MetricsError;

/// `num / den`, or `0.0` when `den == 0` (scikit-learn's `zero_division=0`).
///
/// The counts are summed in u128 by the callers: a `metrics.json` may hold any u64 in a
/// confusion matrix, and the sums of such counts must not overflow before validation can
/// refuse them.
pub(crate) fn ratio(num: u128, den: u128) -> f64 {
    if den == 0 {
        0.0
    } else {
        // u128 -> f64 is exact below 2^53 samples, far beyond any test set.
        num as f64 / den as f64
    }
}

/// Checks that `value` is 0 or 1 and returns it as a bool (true = positive).
pub(crate) fn to_class(what: &'static str, index: usize, value: i64) -> Result<bool, MetricsError> {
    match value {
        0 => Ok(false),
        1 => Ok(true),
        _ => Err(MetricsError::NotBinary { what, index, value }),
    }
}

/// Counts of a binary classifier's outcomes; positive class = 1.
///
/// Serialised with the keys `tp`, `fp`, `tn`, `fn` (the Rust field is
/// `fn_` only because `fn` is a keyword).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfusionMatrix {
    /// Predicted 1, label 1.
    pub tp: u64,
    /// Predicted 1, label 0.
    pub fp: u64,
    /// Predicted 0, label 0.
    pub tn: u64,
    /// Predicted 0, label 1.
    #[serde(rename = "fn")]
    pub fn_: u64,
}

impl ConfusionMatrix {
    /// Builds the matrix from parallel slices of predicted classes and true
    /// labels, each 0 or 1.
    ///
    /// # Errors
    /// [`MetricsError::LengthMismatch`] if the slices differ in length,
    /// [`MetricsError::NotBinary`] naming the first value outside {0, 1}.
    pub fn from_predictions<P, L>(predictions: &[P], labels: &[L]) -> Result<Self, MetricsError>
    where
        P: Copy + Into<i64>,
        L: Copy + Into<i64>,
    {
        if predictions.len() != labels.len() {
            return Err(MetricsError::LengthMismatch {
                predictions: predictions.len(),
                labels: labels.len(),
            });
        }
        let mut matrix = Self::default();
        for (index, (&p, &l)) in predictions.iter().zip(labels).enumerate() {
            let predicted = to_class("predictions", index, p.into())?;
            let actual = to_class("labels", index, l.into())?;
            matrix.record(predicted, actual);
        }
        Ok(matrix)
    }

    /// Adds one outcome (`true` = positive class).
    pub fn record(&mut self, predicted: bool, actual: bool) {
        match (predicted, actual) {
            (true, true) => self.tp += 1,
            (true, false) => self.fp += 1,
            (false, false) => self.tn += 1,
            (false, true) => self.fn_ += 1,
        }
    }

    /// Adds another matrix's counts to this one.
    pub fn merge(&mut self, other: &Self) {
        self.tp += other.tp;
        self.fp += other.fp;
        self.tn += other.tn;
        self.fn_ += other.fn_;
    }

    /// Whether nothing was counted. Never true of a binary evaluation in `metrics.json`
    /// (its test set is not empty), so an empty matrix stands for "no binary matrix": an
    /// evaluation over N > 2 classes, whose `confusion` key is left out.
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    /// Number of samples counted (saturating at `u64::MAX` for counts read from a file that
    /// no evaluation could have produced; [`Self::checked_total`] tells them apart).
    pub fn total(&self) -> u64 {
        self.checked_total().unwrap_or(u64::MAX)
    }

    /// Number of samples counted, or `None` when the four counts overflow a u64.
    pub fn checked_total(&self) -> Option<u64> {
        self.tp
            .checked_add(self.fp)?
            .checked_add(self.tn)?
            .checked_add(self.fn_)
    }

    fn wide(&self) -> [u128; 4] {
        [self.tp, self.fp, self.tn, self.fn_].map(u128::from)
    }

    /// (tp + tn) / total; 0.0 when empty.
    pub fn accuracy(&self) -> f64 {
        let [tp, fp, tn, fn_] = self.wide();
        ratio(tp + tn, tp + fp + tn + fn_)
    }

    /// tp / (tp + fp); 0.0 when nothing was predicted positive.
    pub fn precision(&self) -> f64 {
        let [tp, fp, _, _] = self.wide();
        ratio(tp, tp + fp)
    }

    /// tp / (tp + fn); 0.0 when there are no positive labels.
    pub fn recall(&self) -> f64 {
        let [tp, _, _, fn_] = self.wide();
        ratio(tp, tp + fn_)
    }

    /// Harmonic mean of precision and recall, computed as
    /// 2·tp / (2·tp + fp + fn) (as scikit-learn ≥ 1.3 does), which avoids a
    /// second division by zero when precision and recall are both 0; 0.0 when
    /// there are neither positive labels nor positive predictions.
    pub fn f1(&self) -> f64 {
        let [tp, fp, _, fn_] = self.wide();
        ratio(2 * tp, 2 * tp + fp + fn_)
    }
}

/// The result of evaluating a model on a data set: its headline numbers.
///
/// Binary (N = 2): every ratio comes from [`ConfusionMatrix`] (see the module docs for the
/// 0/0 = 0.0 convention), F1, precision and recall of the positive class. Over N > 2
/// classes: `accuracy` is over all samples, `f1`, `precision` and `recall` are the macro
/// averages of [`crate::ClassConfusion`], and `confusion` is empty (all zero) and left out
/// of the JSON — the N×N matrix and per-class numbers are a [`crate::ClassMetrics`] beside
/// it. `loss` is supplied by the caller.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EvalMetrics {
    /// Fraction of samples classified correctly, in [0, 1].
    pub accuracy: f64,
    /// F1 of the positive class (N > 2: macro-F1), in [0, 1].
    pub f1: f64,
    /// Precision of the positive class (N > 2: macro average), in [0, 1].
    pub precision: f64,
    /// Recall of the positive class (N > 2: macro average), in [0, 1].
    pub recall: f64,
    /// Mean cross-entropy per sample (natural log), as measured by the caller.
    pub loss: f64,
    /// The underlying counts; empty (and not serialised) over N > 2 classes.
    #[serde(default, skip_serializing_if = "ConfusionMatrix::is_empty")]
    pub confusion: ConfusionMatrix,
    /// Number of samples evaluated; equals `confusion.total()` (binary).
    pub samples: u64,
    /// Wall-clock seconds the evaluation took.
    pub seconds: f64,
    /// `samples / seconds` (0.0 when `seconds` is 0).
    pub samples_per_s: f64,
}

impl EvalMetrics {
    /// Derives every metric from `confusion`, attaching the caller's mean
    /// loss and timing.
    pub fn from_confusion(confusion: ConfusionMatrix, loss: f64, seconds: f64) -> Self {
        let samples = confusion.total();
        let samples_per_s = if seconds > 0.0 {
            samples as f64 / seconds
        } else {
            0.0
        };
        Self {
            accuracy: confusion.accuracy(),
            f1: confusion.f1(),
            precision: confusion.precision(),
            recall: confusion.recall(),
            loss,
            confusion,
            samples,
            seconds,
            samples_per_s,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EPS: f64 = 1e-12;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < EPS
    }

    fn assert_metrics(m: &ConfusionMatrix, acc: f64, p: f64, r: f64, f1: f64) {
        assert!(
            close(m.accuracy(), acc),
            "accuracy {} != {acc}",
            m.accuracy()
        );
        assert!(
            close(m.precision(), p),
            "precision {} != {p}",
            m.precision()
        );
        assert!(close(m.recall(), r), "recall {} != {r}", m.recall());
        assert!(close(m.f1(), f1), "f1 {} != {f1}", m.f1());
    }

    #[test]
    fn hand_computed_example() {
        // tp=4 (idx 0-3), fn=1 (idx 4), fp=3 (idx 5-7), tn=2 (idx 8-9).
        let labels = [1u8, 1, 1, 1, 1, 0, 0, 0, 0, 0];
        let preds = [1u8, 1, 1, 1, 0, 1, 1, 1, 0, 0];
        let m = ConfusionMatrix::from_predictions(&preds, &labels).unwrap();
        assert_eq!(
            m,
            ConfusionMatrix {
                tp: 4,
                fp: 3,
                tn: 2,
                fn_: 1
            }
        );
        assert_eq!(m.total(), 10);
        // precision 4/7, recall 4/5, F1 = 2PR/(P+R) = 8/12.
        assert_metrics(&m, 0.6, 4.0 / 7.0, 0.8, 2.0 / 3.0);
        let (p, r) = (m.precision(), m.recall());
        assert!(close(m.f1(), 2.0 * p * r / (p + r)));
    }

    #[test]
    fn all_positive_labels_all_correct() {
        let m = ConfusionMatrix::from_predictions(&[1i64; 5], &[1i64; 5]).unwrap();
        assert_eq!(m.tp, 5);
        assert_metrics(&m, 1.0, 1.0, 1.0, 1.0);
    }

    #[test]
    fn all_negative_labels_all_correct_is_zero_division() {
        // sklearn (zero_division=0): precision, recall and F1 are all 0.0.
        let m = ConfusionMatrix::from_predictions(&[0u8; 4], &[0u8; 4]).unwrap();
        assert_eq!(m.tn, 4);
        assert_metrics(&m, 1.0, 0.0, 0.0, 0.0);
    }

    #[test]
    fn predicts_positive_on_all_negative_labels() {
        let m = ConfusionMatrix::from_predictions(&[1u8; 3], &[0u8; 3]).unwrap();
        assert_eq!(m.fp, 3);
        assert_metrics(&m, 0.0, 0.0, 0.0, 0.0);
    }

    #[test]
    fn predicts_negative_on_all_positive_labels() {
        let m = ConfusionMatrix::from_predictions(&[0u8; 3], &[1u8; 3]).unwrap();
        assert_eq!(m.fn_, 3);
        assert_metrics(&m, 0.0, 0.0, 0.0, 0.0);
    }

    #[test]
    fn constant_positive_predictor_on_balanced_labels() {
        // sklearn: accuracy 0.5, precision 0.5, recall 1.0, F1 2/3.
        let m = ConfusionMatrix::from_predictions(&[1u8; 4], &[1u8, 0, 1, 0]).unwrap();
        assert_metrics(&m, 0.5, 0.5, 1.0, 2.0 / 3.0);
    }

    #[test]
    fn empty_input_gives_zeros() {
        let m = ConfusionMatrix::from_predictions::<u8, u8>(&[], &[]).unwrap();
        assert_eq!(m.total(), 0);
        assert_metrics(&m, 0.0, 0.0, 0.0, 0.0);
        let e = EvalMetrics::from_confusion(m, 0.0, 0.0);
        assert_eq!(e.samples, 0);
        assert_eq!(e.samples_per_s, 0.0);
    }

    #[test]
    fn rejects_length_mismatch() {
        let err = ConfusionMatrix::from_predictions(&[1u8, 0], &[1u8]).unwrap_err();
        assert!(matches!(
            err,
            MetricsError::LengthMismatch {
                predictions: 2,
                labels: 1
            }
        ));
    }

    #[test]
    fn rejects_non_binary_values_and_names_them() {
        let err = ConfusionMatrix::from_predictions(&[1i64, 0, 2], &[1i64, 0, 1]).unwrap_err();
        assert!(matches!(
            err,
            MetricsError::NotBinary {
                what: "predictions",
                index: 2,
                value: 2
            }
        ));
        let err = ConfusionMatrix::from_predictions(&[1i32, 0], &[1i32, -1]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "labels[1] is -1, expected 0 (negative) or 1 (positive)"
        );
    }

    #[test]
    fn eval_metrics_from_confusion() {
        let c = ConfusionMatrix {
            tp: 4,
            fp: 3,
            tn: 2,
            fn_: 1,
        };
        let e = EvalMetrics::from_confusion(c, 0.5, 4.0);
        assert_eq!(e.samples, 10);
        assert!(close(e.samples_per_s, 2.5));
        assert!(close(e.accuracy, 0.6));
        assert!(close(e.precision, 4.0 / 7.0));
        assert!(close(e.recall, 0.8));
        assert!(close(e.f1, 2.0 / 3.0));
        assert_eq!(e.loss, 0.5);
        assert_eq!(e.confusion, c);
    }

    #[test]
    fn confusion_serialises_fn_key() {
        let c = ConfusionMatrix {
            tp: 1,
            fp: 2,
            tn: 3,
            fn_: 4,
        };
        let json = serde_json::to_string(&c).unwrap();
        assert_eq!(json, r#"{"tp":1,"fp":2,"tn":3,"fn":4}"#);
        let back: ConfusionMatrix = serde_json::from_str(&json).unwrap();
        assert_eq!(back, c);
    }
}
