//! Binary-classification metrics and the `metrics.json` schema shared by the
//! training and report crates (deliberately free of Burn, so the report can be
//! rebuilt from a `metrics.json` without compiling the model stack).
//!
//! * [`ConfusionMatrix`], [`EvalMetrics`] and [`EvalAccumulator`] compute
//!   accuracy, precision, recall and F1 with the positive class = 1, and
//!   0/0 defined as 0.0 (scikit-learn's `zero_division=0`).
//! * [`RunMetrics`] is the whole `metrics.json`, with
//!   [`RunMetrics::read`], [`RunMetrics::write_atomic`] and
//!   [`RunMetrics::validate`].

mod classification;
mod error;
mod schema;

pub use classification::{ConfusionMatrix, EvalAccumulator, EvalMetrics};
pub use error::{MetricsError, ValidationError};
pub use schema::{EpochRecord, RunConfig, RunMetrics, SCHEMA_VERSION};
