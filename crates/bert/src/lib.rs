//! BERT in Burn: configuration, layers, and loading of Hugging Face checkpoints.
//!
//! The model mirrors `transformers`' `BertModel` / `BertForSequenceClassification` closely
//! enough that a checkpoint's keys map one-to-one onto struct fields, and its outputs match
//! transformers' to 1e-5 (see `tests/it/parity.rs`). Every encoder projection is a
//! [`lora::LoraLinear`], so LoRA adapters slot in without a second model type.

pub mod adapter;
mod config;
mod error;
pub mod export;
pub mod files;
mod io;
mod model;
pub mod ops;
mod precision;
pub mod weights;

use std::path::Path;

use burn::tensor::backend::Backend;

pub use adapter::{ParamCount, PeftAdapter, PeftConfig, adapter_tensors, save_adapter};
pub use config::{BertConfig, HiddenAct};
pub use error::BertError;
pub use export::{copy_tokenizer_files, pretrained_config, pretrained_tensors, save_pretrained};
pub use io::{OwnedTensor, write_json, write_safetensors};
pub use model::{
    BertAttention, BertEmbeddings, BertEncoder, BertForSequenceClassification, BertIntermediate,
    BertLayer, BertModel, BertModelOutput, BertPooler, BertResidual, BertSelfAttention,
    LORA_TARGETS, target_matches,
};
#[cfg(feature = "wgpu")]
pub use ops::cube::wgpu_adapter;
pub use ops::{
    AttentionMask, BertBackend, BertOps, DropoutKey, next_dropout_key, with_dropout_key,
};
pub use precision::{Precision, WeightDtype};
pub use weights::{MappedFile, Weights};

/// Keys a checkpoint may carry that a sequence classifier has no use for: pre-training heads
/// and the non-persistent position-id buffer older exports include.
fn is_ignorable(key: &str) -> bool {
    key.starts_with("cls.")
        || key.ends_with("embeddings.position_ids")
        || key.ends_with("embeddings.token_type_ids")
}

/// Where the encoder's keys start in a checkpoint: `""` (bare `BertModel`, e.g.
/// all-MiniLM-L6-v2) or `"bert."` (`BertFor*` classes, e.g. bert-base-uncased).
pub fn detect_prefix(w: &Weights) -> Result<&'static str, BertError> {
    ["", "bert."]
        .into_iter()
        .find(|p| w.contains_absolute(&format!("{p}embeddings.word_embeddings.weight")))
        .ok_or_else(|| BertError::UnknownLayout {
            path: w.path().to_path_buf(),
        })
}

/// Loads a sequence classifier from a model directory (`config.json` + `model.safetensors`).
///
/// The classifier head comes from the checkpoint when it has one (`classifier.*`); otherwise
/// it is created as transformers creates it, from `seed`, and the log says so. Tensors the
/// model does not use are reported in the log (pre-training heads are expected and ignored).
pub fn load_classifier<B: Backend>(
    dir: &Path,
    device: &B::Device,
    seed: u64,
) -> Result<(BertForSequenceClassification<B>, BertConfig), BertError> {
    let config = BertConfig::from_file(&dir.join(files::CONFIG_FILE))?;
    let model = load_classifier_with_config(&dir.join(files::WEIGHTS_FILE), &config, device, seed)?;
    Ok((model, config))
}

/// As [`load_classifier`], with the configuration given and the weights file named.
pub fn load_classifier_with_config<B: Backend>(
    weights_path: &Path,
    config: &BertConfig,
    device: &B::Device,
    seed: u64,
) -> Result<BertForSequenceClassification<B>, BertError> {
    load(weights_path, config, device, seed, true)
}

/// As [`load_classifier_with_config`], but a classifier head in the checkpoint is left out
/// and a fresh one of `config.num_labels()` outputs made: for an adapter whose own head (of
/// another number of labels) replaces it.
pub fn load_classifier_without_head<B: Backend>(
    weights_path: &Path,
    config: &BertConfig,
    device: &B::Device,
    seed: u64,
) -> Result<BertForSequenceClassification<B>, BertError> {
    load(weights_path, config, device, seed, false)
}

fn load<B: Backend>(
    weights_path: &Path,
    config: &BertConfig,
    device: &B::Device,
    seed: u64,
    use_head: bool,
) -> Result<BertForSequenceClassification<B>, BertError> {
    let _span = tracing::info_span!("load_bert", file = %weights_path.display()).entered();
    let file = MappedFile::open(weights_path)?;
    let mut w = file.tensors()?;
    let prefix = detect_prefix(&w)?;
    w.set_prefix(prefix);
    let bert = BertModel::load(&w, config, device)?;
    w.set_prefix("");
    let model = if use_head && w.contains("classifier.weight") {
        BertForSequenceClassification::with_loaded_head(bert, &w, config, device)?
    } else {
        tracing::info!(
            num_labels = config.num_labels(),
            seed,
            "no classifier in checkpoint; initialising one with normal(0, {}) \
             (a PEFT adapter's saved head replaces it when applied)",
            config.initializer_range
        );
        BertForSequenceClassification::with_fresh_head(bert, config, device, seed)
    };
    let unused: Vec<String> = w
        .unused_keys()
        .into_iter()
        .filter(|k| !is_ignorable(k) && (use_head || !k.starts_with("classifier.")))
        .collect();
    if !unused.is_empty() {
        tracing::warn!(?unused, "checkpoint tensors not used by the model");
    }
    tracing::info!(
        prefix,
        layers = config.num_hidden_layers,
        hidden = config.hidden_size,
        "loaded BERT checkpoint"
    );
    Ok(model)
}
