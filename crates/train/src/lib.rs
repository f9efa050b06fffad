//! LoRA fine-tuning and evaluation of an encoder's sequence classifier, generic over any Burn
//! autodiff backend, a run defined by one [`RunSpec`]: AdamW over adapters and head only, linear warm-up/decay, gradient
//! clipping and accumulation, per-epoch evaluation, atomic checkpoints with exact resume,
//! and `metrics.json`.

pub mod checkpoint;
mod config;
mod error;
pub mod eval;
mod interrupt;
mod loss;
pub mod optim;
mod readback;
mod run;
mod selection;
mod trainer;

pub use config::{BestMetric, ClassWeights, LrSchedule, TrainConfig};
pub use error::TrainError;
pub use eval::{BatchTensors, Evaluation, TextOutcome, evaluate, evaluate_texts};
pub use interrupt::Interrupt;
pub use loss::loss_function;
pub use run::RunSpec;
pub use trainer::{Datasets, METRICS_FILE, RunOutcome, fine_tune};
