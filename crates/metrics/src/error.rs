//! Error types of the metrics crate: bad inputs to the metric computations,
//! and failures reading, validating or writing `metrics.json`.

use std::path::PathBuf;

/// A consistency problem found by [`crate::RunMetrics::validate`].
///
/// `field` is a JSON-style path into `metrics.json` (for example
/// `epochs[2].eval.accuracy`) so a reader can find the offending value
/// without re-deriving it from the message.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("invalid `{field}`: {reason}")]
pub struct ValidationError {
    /// Path of the offending field, e.g. `baseline.confusion`.
    pub field: String,
    /// What was expected and what was found.
    pub reason: String,
}

impl ValidationError {
    pub(crate) fn new(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

/// Everything that can go wrong in this crate.
#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    /// Predictions and labels of one batch differ in length.
    #[error("predictions and labels differ in length: {predictions} predictions, {labels} labels")]
    LengthMismatch {
        /// Number of predictions given.
        predictions: usize,
        /// Number of labels given.
        labels: usize,
    },

    /// A prediction or label outside {0, 1}.
    #[error("{what}[{index}] is {value}, expected 0 (negative) or 1 (positive)")]
    NotBinary {
        /// `"predictions"` or `"labels"`.
        what: &'static str,
        /// Position in the batch.
        index: usize,
        /// The value found.
        value: i64,
    },

    /// A prediction or label outside the class indices `0..num_classes` (N-class evaluation).
    #[error("{what}[{index}] is {value}, expected a class index in 0..{num_classes}")]
    ClassOutOfRange {
        /// `"predictions"` or `"labels"`.
        what: &'static str,
        /// Position in the batch.
        index: usize,
        /// The value found.
        value: i64,
        /// Number of classes N.
        num_classes: usize,
    },

    /// Two confusion matrices over different numbers of classes cannot be merged.
    #[error("cannot merge a confusion matrix of {found} classes into one of {expected}")]
    ClassCountMismatch {
        /// Classes of the matrix merged into.
        expected: usize,
        /// Classes of the matrix merged.
        found: usize,
    },

    /// Class names given for a matrix of another size.
    #[error("expected {expected} class names (one per class), got {found}")]
    ClassNames {
        /// Number of classes of the matrix.
        expected: usize,
        /// Number of names given.
        found: usize,
    },

    /// Rows given for a confusion matrix do not form a square.
    #[error("confusion matrix row {row} has {len} counts, expected {rows} (one per class)")]
    NotSquare {
        /// Zero-based index of the first offending row.
        row: usize,
        /// Its length.
        len: usize,
        /// Number of rows (= classes).
        rows: usize,
    },

    /// A batch loss that is NaN or infinite: JSON cannot represent it, and
    /// it means training diverged, which the caller must hear about.
    #[error("batch {batch}: mean loss is {value}, expected a finite number")]
    NonFiniteLoss {
        /// Zero-based index of the batch within the accumulation.
        batch: usize,
        /// The value found.
        value: f64,
    },

    /// `metrics.json` could not be read from disk.
    #[error("cannot read metrics file {}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O failure.
        #[source]
        source: std::io::Error,
    },

    /// `metrics.json` is not valid JSON or does not match the schema.
    #[error(
        "cannot parse metrics file {} at line {line}, column {column} (expected the metrics.json schema of its schema_version, {} or {})",
        path.display(),
        crate::SCHEMA_VERSION,
        crate::LEGACY_SCHEMA_VERSION
    )]
    Parse {
        /// The file.
        path: PathBuf,
        /// 1-based line reported by serde_json.
        line: usize,
        /// 1-based column reported by serde_json.
        column: usize,
        /// serde_json's error, which names the offending key.
        #[source]
        source: serde_json::Error,
    },

    /// The file was written by an incompatible version of the schema.
    #[error(
        "metrics file {} has schema_version {found}, expected {expected} (or {} and {}, which older versions wrote)",
        path.display(),
        crate::PREVIOUS_SCHEMA_VERSION,
        crate::LEGACY_SCHEMA_VERSION
    )]
    SchemaVersion {
        /// The file.
        path: PathBuf,
        /// Version found in the file.
        found: u32,
        /// The version written, [`crate::SCHEMA_VERSION`] (the legacy one,
        /// [`crate::LEGACY_SCHEMA_VERSION`], is read too).
        expected: u32,
    },

    /// The file parsed but its contents are inconsistent.
    #[error("metrics file {} is inconsistent", path.display())]
    InvalidFile {
        /// The file.
        path: PathBuf,
        /// The first problem found.
        #[source]
        source: ValidationError,
    },

    /// In-memory metrics are inconsistent (checked before writing).
    #[error("refusing to write inconsistent metrics")]
    Invalid(#[from] ValidationError),

    /// Serialising to JSON failed.
    #[error("cannot serialise metrics for {}", path.display())]
    Serialize {
        /// The destination file.
        path: PathBuf,
        /// serde_json's error.
        #[source]
        source: serde_json::Error,
    },

    /// Writing `metrics.json` (atomically, via a temporary file) failed.
    #[error("cannot write {}", path.display())]
    Write {
        /// The destination file.
        path: PathBuf,
        /// The failed step of the atomic write, naming the file it concerned.
        #[source]
        source: imdb_lora_fsio::Error,
    },
}
