//! Transformer encoders for sequence classification in Burn: BERT, RoBERTa / XLM-RoBERTa /
//! CamemBERT, ELECTRA, DistilBERT, DeBERTa-v2/v3 and ModernBERT, loaded from and saved as
//! Hugging Face checkpoints, with LoRA adapters in PEFT's format.
//!
//! One file per family, in the manner of candle-transformers (config first, layers bottom
//! up, field names = checkpoint keys): [`bert`] (whose encoder RoBERTa and ELECTRA reuse, as
//! transformers does), [`roberta`], [`electra`], [`distilbert`], [`deberta_v2`],
//! [`modernbert`]; what they share in
//! [`layers`] and [`heads`]; [`classifier`] ties an encoder and a head into the one
//! [`SequenceClassifier`] every caller uses. Outputs match transformers' to 1e-5 for every
//! family (`tests/it/parity.rs`, `tests/it/families.rs`). Every encoder projection is an
//! [`imdb_lora_lora::LoraLinear`], so adapters slot in without a second model type; which
//! projections a PEFT target name selects is [`targets`]' rule.

pub mod adapter;
pub mod bert;
pub mod classifier;
mod config;
mod config_file;
pub mod deberta_v2;
pub mod distilbert;
pub mod electra;
mod error;
pub mod export;
pub mod files;
pub mod heads;
mod io;
mod kernel_ops;
pub mod layers;
pub mod modernbert;
mod precision;
pub mod roberta;
pub mod targets;
pub mod weights;

pub use adapter::{ParamCount, PeftAdapter, PeftConfig, adapter_tensors, save_adapter};
pub use classifier::{
    Encoder, SequenceClassifier, detect_prefix, load_classifier, load_classifier_with_config,
    load_classifier_without_head,
};
pub use config::{
    AttentionKind, DebertaV2Params, EncoderConfig, Family, FamilyParams, HiddenAct, MODEL_TYPES,
    ModernBertParams, Pooling,
};
pub use error::EncoderError;
pub use export::{copy_tokenizer_files, pretrained_config, pretrained_tensors, save_pretrained};
pub use io::{OwnedTensor, write_json, write_safetensors};
// The kernels' trait and the dropout keys appear in the model's signatures: re-exported so
// callers name one crate.
#[cfg(feature = "wgpu")]
pub use imdb_lora_kernels::cube::wgpu_adapter;
/// The int8 micro-kernel families of the CPU backend, and the one in use.
#[cfg(feature = "flex")]
pub use imdb_lora_kernels::flex::int8::Path as Int8Kernel;
pub use imdb_lora_kernels::{
    AttentionMask, DropoutKey, KernelBackend, ScoreBias, next_dropout_key, with_dropout_key,
};
pub use kernel_ops::KernelOps;
pub use precision::{Precision, Quantization, WeightDtype};
pub use weights::{MappedFile, Weights};
