//! Metrics for any number of classes: the N×N confusion matrix ([`ClassConfusion`]; rows are
//! the true labels, columns the predictions) and what `metrics.json` records of it for one
//! evaluation ([`ClassMetrics`]: per-class precision, recall, F1 and support, macro and
//! weighted averages, the matrix).
//!
//! Semantics are scikit-learn's `classification_report(..., zero_division=0)`: every ratio
//! whose denominator is zero is 0.0; the macro average is the unweighted mean over the
//! classes that occur among the labels or the predictions (a class that occurs in neither is
//! left out, as scikit-learn does when `labels` is not given); the weighted average weights
//! each class by its support (a class without support weighs nothing, so no class needs
//! leaving out).

use serde::{Deserialize, Serialize};

use crate::classification::{ConfusionMatrix, EvalMetrics, ratio};
use crate::error::MetricsError;

/// An N×N confusion matrix: `count(actual, predicted)` samples of true class `actual` were
/// predicted as `predicted`. Classes are the indices `0..num_classes()`.
///
/// Sums are taken in u128, so a matrix read from a file with counts near `u64::MAX` gives
/// finite ratios (and [`Self::checked_total`] says when the total does not fit a u64).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClassConfusion {
    n: usize,
    /// Row-major: `counts[actual * n + predicted]`.
    counts: Vec<u64>,
}

/// Checks that `value` is a class index below `n`.
pub(crate) fn class_index(
    what: &'static str,
    index: usize,
    value: i64,
    n: usize,
) -> Result<usize, MetricsError> {
    match usize::try_from(value) {
        Ok(class) if class < n => Ok(class),
        _ => Err(MetricsError::ClassOutOfRange {
            what,
            index,
            value,
            num_classes: n,
        }),
    }
}

impl ClassConfusion {
    /// An empty matrix over `num_classes` classes.
    pub fn new(num_classes: usize) -> Self {
        Self {
            n: num_classes,
            counts: vec![0; num_classes.saturating_mul(num_classes)],
        }
    }

    /// Builds the matrix from parallel slices of predicted classes and true labels, each a
    /// class index in `0..num_classes`.
    ///
    /// # Errors
    /// [`MetricsError::LengthMismatch`] if the slices differ in length,
    /// [`MetricsError::ClassOutOfRange`] naming the first value outside `0..num_classes`.
    pub fn from_predictions<P, L>(
        num_classes: usize,
        predictions: &[P],
        labels: &[L],
    ) -> Result<Self, MetricsError>
    where
        P: Copy + Into<i64>,
        L: Copy + Into<i64>,
    {
        let mut matrix = Self::new(num_classes);
        matrix.update(predictions, labels)?;
        Ok(matrix)
    }

    /// A matrix from its rows (`rows[actual][predicted]`), as `metrics.json` stores it.
    ///
    /// # Errors
    /// [`MetricsError::NotSquare`] naming the first row whose length is not the number of rows.
    pub fn from_rows(rows: &[Vec<u64>]) -> Result<Self, MetricsError> {
        let n = rows.len();
        let mut counts = Vec::with_capacity(n.saturating_mul(n));
        for (row, values) in rows.iter().enumerate() {
            if values.len() != n {
                return Err(MetricsError::NotSquare {
                    row,
                    len: values.len(),
                    rows: n,
                });
            }
            counts.extend_from_slice(values);
        }
        Ok(Self { n, counts })
    }

    /// Adds one batch of predictions and labels. On error nothing is recorded.
    ///
    /// # Errors
    /// As [`Self::from_predictions`].
    pub fn update<P, L>(&mut self, predictions: &[P], labels: &[L]) -> Result<(), MetricsError>
    where
        P: Copy + Into<i64>,
        L: Copy + Into<i64>,
    {
        let batch = self.checked_batch(predictions, labels, class_index)?;
        self.record_all(&batch);
        Ok(())
    }

    /// Validates a whole batch into (actual, predicted) pairs before anything is recorded;
    /// `check` maps one value to its class or to the error naming it.
    pub(crate) fn checked_batch<P, L>(
        &self,
        predictions: &[P],
        labels: &[L],
        check: impl Fn(&'static str, usize, i64, usize) -> Result<usize, MetricsError>,
    ) -> Result<Vec<(usize, usize)>, MetricsError>
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
        predictions
            .iter()
            .zip(labels)
            .enumerate()
            .map(|(index, (&p, &l))| {
                let predicted = check("predictions", index, p.into(), self.n)?;
                let actual = check("labels", index, l.into(), self.n)?;
                Ok((actual, predicted))
            })
            .collect()
    }

    /// Records (actual, predicted) pairs already checked to be below `n`.
    pub(crate) fn record_all(&mut self, pairs: &[(usize, usize)]) {
        for &(actual, predicted) in pairs {
            let cell = &mut self.counts[actual * self.n + predicted];
            *cell = cell.saturating_add(1);
        }
    }

    /// Adds another matrix's counts to this one (accumulation across batches or workers).
    ///
    /// # Errors
    /// [`MetricsError::ClassCountMismatch`] if the two have different numbers of classes
    /// (nothing is added).
    pub fn merge(&mut self, other: &Self) -> Result<(), MetricsError> {
        if other.n != self.n {
            return Err(MetricsError::ClassCountMismatch {
                expected: self.n,
                found: other.n,
            });
        }
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a = a.saturating_add(*b);
        }
        Ok(())
    }

    /// Number of classes N.
    pub fn num_classes(&self) -> usize {
        self.n
    }

    /// Samples of true class `actual` predicted as `predicted`; `None` outside the matrix.
    pub fn count(&self, actual: usize, predicted: usize) -> Option<u64> {
        if actual < self.n && predicted < self.n {
            Some(self.counts[actual * self.n + predicted])
        } else {
            None
        }
    }

    /// The matrix as rows (`rows[actual][predicted]`), the layout of `metrics.json`.
    pub fn rows(&self) -> Vec<Vec<u64>> {
        if self.n == 0 {
            return Vec::new();
        }
        self.counts.chunks(self.n).map(<[u64]>::to_vec).collect()
    }

    fn row(&self, class: usize) -> &[u64] {
        if class < self.n {
            &self.counts[class * self.n..(class + 1) * self.n]
        } else {
            &[]
        }
    }

    fn wide_total(&self) -> u128 {
        self.counts.iter().map(|&c| u128::from(c)).sum()
    }

    fn wide_support(&self, class: usize) -> u128 {
        self.row(class).iter().map(|&c| u128::from(c)).sum()
    }

    fn wide_predicted(&self, class: usize) -> u128 {
        if class >= self.n {
            return 0;
        }
        (0..self.n)
            .map(|actual| u128::from(self.counts[actual * self.n + class]))
            .sum()
    }

    fn wide_correct(&self, class: usize) -> u128 {
        self.count(class, class).map_or(0, u128::from)
    }

    /// Number of samples counted (saturating at `u64::MAX`; see [`Self::checked_total`]).
    pub fn total(&self) -> u64 {
        self.checked_total().unwrap_or(u64::MAX)
    }

    /// Number of samples counted, or `None` when the counts sum beyond a u64.
    pub fn checked_total(&self) -> Option<u64> {
        u64::try_from(self.wide_total()).ok()
    }

    /// Samples whose true class is `class` (the row sum; 0 outside the matrix, saturating).
    pub fn support(&self, class: usize) -> u64 {
        u64::try_from(self.wide_support(class)).unwrap_or(u64::MAX)
    }

    /// Samples predicted as `class` (the column sum; 0 outside the matrix, saturating).
    pub fn predicted(&self, class: usize) -> u64 {
        u64::try_from(self.wide_predicted(class)).unwrap_or(u64::MAX)
    }

    /// Samples classified correctly (the diagonal) over all samples; 0.0 when empty.
    pub fn accuracy(&self) -> f64 {
        let correct: u128 = (0..self.n).map(|c| self.wide_correct(c)).sum();
        ratio(correct, self.wide_total())
    }

    /// Precision of `class`: correct / predicted as `class`; 0.0 when never predicted (or
    /// outside the matrix).
    pub fn precision(&self, class: usize) -> f64 {
        ratio(self.wide_correct(class), self.wide_predicted(class))
    }

    /// Recall of `class`: correct / support; 0.0 without support (or outside the matrix).
    pub fn recall(&self, class: usize) -> f64 {
        ratio(self.wide_correct(class), self.wide_support(class))
    }

    /// F1 of `class` as 2·tp / (2·tp + fp + fn) (scikit-learn ≥ 1.3); 0.0 when the class is
    /// neither a label nor a prediction.
    pub fn f1(&self, class: usize) -> f64 {
        let tp = self.wide_correct(class);
        let fp = self.wide_predicted(class) - tp;
        let fn_ = self.wide_support(class) - tp;
        ratio(2 * tp, 2 * tp + fp + fn_)
    }

    /// Classes that occur among the labels or the predictions: those the macro average
    /// counts.
    fn present(&self) -> impl Iterator<Item = usize> + '_ {
        (0..self.n).filter(|&c| self.wide_support(c) + self.wide_predicted(c) > 0)
    }

    fn macro_of(&self, metric: impl Fn(usize) -> f64) -> f64 {
        let (sum, count) = self
            .present()
            .fold((0.0, 0u64), |(sum, count), c| (sum + metric(c), count + 1));
        if count == 0 { 0.0 } else { sum / count as f64 }
    }

    fn weighted_of(&self, metric: impl Fn(usize) -> f64) -> f64 {
        let total = self.wide_total();
        if total == 0 {
            return 0.0;
        }
        let sum: f64 = (0..self.n)
            .map(|c| self.wide_support(c) as f64 * metric(c))
            .sum();
        sum / total as f64
    }

    /// Unweighted mean of the per-class precisions (classes present only; 0.0 when empty).
    pub fn macro_precision(&self) -> f64 {
        self.macro_of(|c| self.precision(c))
    }

    /// Unweighted mean of the per-class recalls (classes present only; 0.0 when empty).
    pub fn macro_recall(&self) -> f64 {
        self.macro_of(|c| self.recall(c))
    }

    /// Unweighted mean of the per-class F1 scores (classes present only; 0.0 when empty).
    pub fn macro_f1(&self) -> f64 {
        self.macro_of(|c| self.f1(c))
    }

    /// Support-weighted mean of the per-class precisions (0.0 when empty).
    pub fn weighted_precision(&self) -> f64 {
        self.weighted_of(|c| self.precision(c))
    }

    /// Support-weighted mean of the per-class recalls; equals the accuracy (0.0 when empty).
    pub fn weighted_recall(&self) -> f64 {
        self.weighted_of(|c| self.recall(c))
    }

    /// Support-weighted mean of the per-class F1 scores (0.0 when empty).
    pub fn weighted_f1(&self) -> f64 {
        self.weighted_of(|c| self.f1(c))
    }

    /// The binary view of a 2×2 matrix (positive class = 1); `None` for any other N.
    pub fn to_binary(&self) -> Option<ConfusionMatrix> {
        match self.counts[..] {
            [tn, fp, fn_, tp] if self.n == 2 => Some(ConfusionMatrix { tp, fp, tn, fn_ }),
            _ => None,
        }
    }
}

impl From<ConfusionMatrix> for ClassConfusion {
    /// The 2×2 matrix of a binary one: class 0 negative, class 1 positive.
    fn from(m: ConfusionMatrix) -> Self {
        Self {
            n: 2,
            counts: vec![m.tn, m.fp, m.fn_, m.tp],
        }
    }
}

impl EvalMetrics {
    /// The headline metrics of an N-class matrix: for N = 2 exactly
    /// [`Self::from_confusion`] of its binary view (positive class = 1); otherwise the
    /// accuracy over all samples, macro-averaged F1, precision and recall, and an empty
    /// binary `confusion`.
    pub fn from_class_confusion(confusion: &ClassConfusion, loss: f64, seconds: f64) -> Self {
        if let Some(binary) = confusion.to_binary() {
            return Self::from_confusion(binary, loss, seconds);
        }
        let samples = confusion.total();
        let samples_per_s = if seconds > 0.0 {
            samples as f64 / seconds
        } else {
            0.0
        };
        Self {
            accuracy: confusion.accuracy(),
            f1: confusion.macro_f1(),
            precision: confusion.macro_precision(),
            recall: confusion.macro_recall(),
            loss,
            confusion: ConfusionMatrix::default(),
            samples,
            seconds,
            samples_per_s,
        }
    }
}

/// One class's row of the classification report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClassScores {
    /// The class's name, e.g. `Sports`.
    pub name: String,
    /// Of the samples predicted as this class, the fraction that are; in [0, 1].
    pub precision: f64,
    /// Of the samples of this class, the fraction predicted as it; in [0, 1].
    pub recall: f64,
    /// Harmonic mean of precision and recall; in [0, 1].
    pub f1: f64,
    /// Number of samples of this class (its row sum in the confusion matrix).
    pub support: u64,
}

/// One evaluation's metrics for each of N named classes, as `metrics.json` stores
/// them under `classes`: what scikit-learn's `classification_report` prints, plus the matrix.
///
/// The run's headline numbers stay in [`crate::EvalMetrics`] (accuracy over all samples;
/// F1, precision and recall: macro averages for N > 2, the positive class for N = 2).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClassMetrics {
    /// One row per class, in class-index order (`per_class[i]` is class `i`).
    pub per_class: Vec<ClassScores>,
    /// Mean of the per-class precisions over the classes present.
    pub macro_precision: f64,
    /// Mean of the per-class recalls over the classes present.
    pub macro_recall: f64,
    /// Mean of the per-class F1 scores over the classes present.
    pub macro_f1: f64,
    /// Support-weighted mean of the per-class precisions.
    pub weighted_precision: f64,
    /// Support-weighted mean of the per-class recalls (equals the accuracy).
    pub weighted_recall: f64,
    /// Support-weighted mean of the per-class F1 scores.
    pub weighted_f1: f64,
    /// The N×N confusion matrix: `confusion[actual][predicted]`.
    pub confusion: Vec<Vec<u64>>,
}

impl ClassMetrics {
    /// Every metric of `confusion`, with `names[i]` naming class `i`.
    ///
    /// # Errors
    /// [`MetricsError::ClassNames`] if there is not exactly one name per class.
    pub fn from_confusion<S: AsRef<str>>(
        names: &[S],
        confusion: &ClassConfusion,
    ) -> Result<Self, MetricsError> {
        if names.len() != confusion.num_classes() {
            return Err(MetricsError::ClassNames {
                expected: confusion.num_classes(),
                found: names.len(),
            });
        }
        let per_class = names
            .iter()
            .enumerate()
            .map(|(c, name)| ClassScores {
                name: name.as_ref().to_string(),
                precision: confusion.precision(c),
                recall: confusion.recall(c),
                f1: confusion.f1(c),
                support: confusion.support(c),
            })
            .collect();
        Ok(Self {
            per_class,
            macro_precision: confusion.macro_precision(),
            macro_recall: confusion.macro_recall(),
            macro_f1: confusion.macro_f1(),
            weighted_precision: confusion.weighted_precision(),
            weighted_recall: confusion.weighted_recall(),
            weighted_f1: confusion.weighted_f1(),
            confusion: confusion.rows(),
        })
    }

    /// Number of classes N.
    pub fn num_classes(&self) -> usize {
        self.per_class.len()
    }

    /// The class names in class-index order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.per_class.iter().map(|c| c.name.as_str())
    }

    /// The stored matrix as a [`ClassConfusion`].
    ///
    /// # Errors
    /// [`MetricsError::NotSquare`] if the stored rows do not form an N×N matrix (only a
    /// file that failed validation has such rows).
    pub fn confusion_matrix(&self) -> Result<ClassConfusion, MetricsError> {
        ClassConfusion::from_rows(&self.confusion)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EPS: f64 = 1e-12;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < EPS
    }

    /// Four classes, 18 samples; class 3 is never predicted (zero division for its precision).
    ///
    /// Expected numbers from scikit-learn 1.9.1:
    /// ```python
    /// from sklearn.metrics import classification_report, confusion_matrix
    /// y_true = [0,0,0,0,0, 1,1,1,1, 2,2,2,2,2,2, 3,3,3]
    /// y_pred = [0,0,0,0,2, 1,1,0,1, 2,2,2,1,1,0, 1,0,2]
    /// confusion_matrix(y_true, y_pred).tolist()
    /// classification_report(y_true, y_pred, output_dict=True, zero_division=0)
    /// ```
    const Y_TRUE: [u8; 18] = [0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 3, 3, 3];
    const Y_PRED: [u8; 18] = [0, 0, 0, 0, 2, 1, 1, 0, 1, 2, 2, 2, 1, 1, 0, 1, 0, 2];

    #[test]
    fn matches_scikit_learns_classification_report() {
        let m = ClassConfusion::from_predictions(4, &Y_PRED, &Y_TRUE).unwrap();
        assert_eq!(
            m.rows(),
            [[4, 0, 1, 0], [1, 3, 0, 0], [1, 2, 3, 0], [1, 1, 1, 0]]
        );
        // (precision, recall, f1, support) per class, as sklearn printed them.
        let expected = [
            (0.5714285714285714, 0.8, 0.6666666666666666, 5),
            (0.5, 0.75, 0.6, 4),
            (0.6, 0.5, 0.5454545454545454, 6),
            (0.0, 0.0, 0.0, 3),
        ];
        for (c, &(p, r, f1, support)) in expected.iter().enumerate() {
            assert!(
                close(m.precision(c), p),
                "precision[{c}] {}",
                m.precision(c)
            );
            assert!(close(m.recall(c), r), "recall[{c}] {}", m.recall(c));
            assert!(close(m.f1(c), f1), "f1[{c}] {}", m.f1(c));
            assert_eq!(m.support(c), support);
        }
        assert!(close(m.accuracy(), 0.5555555555555556));
        assert!(close(m.macro_precision(), 0.4178571428571428));
        assert!(close(m.macro_recall(), 0.5125));
        assert!(close(m.macro_f1(), 0.453030303030303));
        assert!(close(m.weighted_precision(), 0.4698412698412697));
        assert!(close(m.weighted_recall(), 0.5555555555555556));
        assert!(close(m.weighted_f1(), 0.5003367003367002));
        assert_eq!(m.total(), 18);
        assert_eq!(m.predicted(0), 7);
        assert_eq!(m.predicted(3), 0);
    }

    #[test]
    fn macro_average_leaves_out_classes_absent_from_labels_and_predictions() {
        // Five classes; class 3 is only predicted, class 4 occurs nowhere. sklearn 1.9.1:
        // f1_score([0,0,1,1,2,2], [0,3,1,1,2,0], average=..., zero_division=0) gives macro
        // P/R/F1 0.625 / 0.5 / 0.5416666666666666 (over classes 0-3) and weighted
        // 0.8333333333333334 / 0.6666666666666666 / 0.7222222222222222.
        let m = ClassConfusion::from_predictions(5, &[0u8, 3, 1, 1, 2, 0], &[0u8, 0, 1, 1, 2, 2])
            .unwrap();
        assert!(close(m.macro_precision(), 0.625));
        assert!(close(m.macro_recall(), 0.5));
        assert!(close(m.macro_f1(), 0.5416666666666666));
        assert!(close(m.weighted_precision(), 0.8333333333333334));
        assert!(close(m.weighted_recall(), 0.6666666666666666));
        assert!(close(m.weighted_f1(), 0.7222222222222222));
    }

    #[test]
    fn merging_batches_equals_one_shot() {
        let one_shot = ClassConfusion::from_predictions(4, &Y_PRED, &Y_TRUE).unwrap();
        let mut merged = ClassConfusion::new(4);
        for (p, l) in Y_PRED.chunks(5).zip(Y_TRUE.chunks(5)) {
            merged
                .merge(&ClassConfusion::from_predictions(4, p, l).unwrap())
                .unwrap();
        }
        assert_eq!(merged, one_shot);
        let err = merged.merge(&ClassConfusion::new(3)).unwrap_err();
        assert!(matches!(
            err,
            MetricsError::ClassCountMismatch {
                expected: 4,
                found: 3
            }
        ));
        assert_eq!(merged, one_shot);
    }

    #[test]
    fn out_of_range_values_are_named_and_nothing_is_recorded() {
        let mut m = ClassConfusion::new(4);
        let err = m.update(&[0i64, 1, 4], &[0i64, 1, 2]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "predictions[2] is 4, expected a class index in 0..4"
        );
        let err = m.update(&[0i32, 1], &[0i32, -1]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "labels[1] is -1, expected a class index in 0..4"
        );
        let err = m.update(&[0u8, 1], &[0u8]).unwrap_err();
        assert!(matches!(err, MetricsError::LengthMismatch { .. }));
        assert_eq!(m.total(), 0);
    }

    #[test]
    fn two_classes_agree_with_the_binary_matrix() {
        let labels = [1u8, 1, 1, 1, 1, 0, 0, 0, 0, 0];
        let preds = [1u8, 1, 1, 1, 0, 1, 1, 1, 0, 0];
        let binary = ConfusionMatrix::from_predictions(&preds, &labels).unwrap();
        let m = ClassConfusion::from_predictions(2, &preds, &labels).unwrap();
        assert_eq!(m.to_binary(), Some(binary));
        assert_eq!(ClassConfusion::from(binary), m);
        assert!(close(m.precision(1), binary.precision()));
        assert!(close(m.recall(1), binary.recall()));
        assert!(close(m.f1(1), binary.f1()));
        assert!(close(m.accuracy(), binary.accuracy()));
        assert_eq!(ClassConfusion::new(3).to_binary(), None);
    }

    #[test]
    fn empty_and_degenerate_matrices_give_zeros() {
        let m = ClassConfusion::new(3);
        for v in [
            m.accuracy(),
            m.macro_f1(),
            m.weighted_f1(),
            m.precision(0),
            m.recall(7),
        ] {
            assert_eq!(v, 0.0);
        }
        assert_eq!(m.count(3, 0), None);
        assert!(ClassConfusion::new(0).rows().is_empty());
    }

    #[test]
    fn sums_beyond_u64_stay_finite_and_are_reported() {
        let m = ClassConfusion::from_rows(&[vec![u64::MAX, 1], vec![0, u64::MAX]]).unwrap();
        assert_eq!(m.checked_total(), None);
        assert_eq!(m.total(), u64::MAX);
        assert!(m.accuracy() > 0.99 && m.accuracy() <= 1.0);
        assert!(m.macro_f1().is_finite());
    }

    #[test]
    fn rows_must_be_square() {
        let err = ClassConfusion::from_rows(&[vec![1, 2], vec![3]]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "confusion matrix row 1 has 1 counts, expected 2 (one per class)"
        );
    }

    #[test]
    fn class_metrics_carry_names_rows_and_averages() {
        let names = ["World", "Sports", "Business", "Sci/Tech"];
        let m = ClassConfusion::from_predictions(4, &Y_PRED, &Y_TRUE).unwrap();
        let cm = ClassMetrics::from_confusion(&names, &m).unwrap();
        assert_eq!(cm.names().collect::<Vec<_>>(), names);
        assert_eq!(cm.per_class[2].support, 6);
        assert_eq!(cm.confusion, m.rows());
        assert_eq!(cm.confusion_matrix().unwrap(), m);
        assert!(close(cm.macro_f1, 0.453030303030303));
        assert!(close(cm.weighted_f1, 0.5003367003367002));
        let err = ClassMetrics::from_confusion(&names[..3], &m).unwrap_err();
        assert_eq!(
            err.to_string(),
            "expected 4 class names (one per class), got 3"
        );
    }

    #[test]
    fn an_evaluation_without_binary_matrix_leaves_the_key_out() {
        let m = ClassConfusion::from_predictions(3, &[0u8, 1, 2], &[0u8, 1, 1]).unwrap();
        let e = EvalMetrics::from_class_confusion(&m, 0.5, 1.0);
        let json = serde_json::to_string(&e).unwrap();
        assert!(!json.contains("confusion"), "{json}");
        let back: EvalMetrics = serde_json::from_str(&json).unwrap();
        assert_eq!(back, e);
        // A binary evaluation keeps it (its matrix counts the whole, non-empty test set).
        let b = EvalMetrics::from_confusion(one_each(), 0.5, 1.0);
        assert!(
            serde_json::to_string(&b)
                .unwrap()
                .contains("\"confusion\":{\"tp\":1")
        );
    }

    fn one_each() -> ConfusionMatrix {
        ConfusionMatrix {
            tp: 1,
            fp: 1,
            tn: 1,
            fn_: 1,
        }
    }
}
