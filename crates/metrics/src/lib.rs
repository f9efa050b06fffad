//! Classification metrics and the `metrics.json` schema shared by the
//! training and report crates (deliberately free of Burn, so the report can be
//! rebuilt from a `metrics.json` without compiling the model stack).
//!
//! * [`ConfusionMatrix`], [`EvalMetrics`] and [`EvalAccumulator`] compute
//!   accuracy, precision, recall and F1 with the positive class = 1, and
//!   0/0 defined as 0.0 (scikit-learn's `zero_division=0`).
//! * Over N classes: [`ClassConfusion`] (rows = true labels, columns = predictions),
//!   [`ClassMetrics`] (per-class precision/recall/F1/support, macro and weighted averages,
//!   as scikit-learn's `classification_report`), [`EvalAccumulator::with_classes`].
//! * [`MetricsFile`] is a whole `metrics.json` ([`MetricsFile::read`],
//!   [`MetricsFile::write_atomic`], [`MetricsFile::validate`]): the run ([`RunMetrics`]) and the
//!   per-class metrics of every evaluation ([`RunClasses`]), one schema for every run.

mod accumulator;
mod classes;
mod classification;
mod error;
mod file;
mod schema;

pub use accumulator::EvalAccumulator;
pub use classes::{ClassConfusion, ClassMetrics, ClassScores};
pub use classification::{ConfusionMatrix, EvalMetrics};
pub use error::{MetricsError, ValidationError};
pub use file::{LEGACY_CLASS_NAMES, MetricsFile, RunClasses, Saved};
pub use schema::{
    EpochRecord, LEGACY_SCHEMA_VERSION, PREVIOUS_SCHEMA_VERSION, RunConfig, RunMetrics,
    SCHEMA_VERSION, Selection,
};
