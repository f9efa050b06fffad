//! Errors of the training engine, each naming the step, file or value involved.

use std::path::PathBuf;

/// What can stop training or evaluation.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// The model rejected its input or failed to load/save.
    #[error(transparent)]
    Model(#[from] imdb_lora_encoder::EncoderError),
    /// Batching failed.
    #[error(transparent)]
    Data(#[from] imdb_lora_data::Error),
    /// Metrics could not be computed or written.
    #[error(transparent)]
    Metrics(#[from] imdb_lora_metrics::MetricsError),
    /// The loss became NaN or infinite; the last checkpoint is left as it was.
    #[error(
        "non-finite loss {value} at epoch {epoch}, batch {batch} (optimizer step {step}); \
         stopping, the last good checkpoint is kept"
    )]
    NonFiniteLoss {
        /// 1-based epoch.
        epoch: usize,
        /// 0-based batch within the epoch.
        batch: usize,
        /// Optimizer steps taken so far.
        step: u64,
        /// The loss value.
        value: f64,
    },
    /// A configuration value is out of range.
    #[error("invalid training configuration: {0}")]
    Config(String),
    /// A checkpoint is unreadable or belongs to another run.
    #[error("{}: {reason}", path.display())]
    Checkpoint {
        /// The checkpoint file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// Tensor data could not be converted.
    #[error("tensor data: {0}")]
    Tensor(String),
}
