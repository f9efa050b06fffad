//! Saving a fine-tuned classifier as a plain Hugging Face model directory (`config.json` +
//! `model.safetensors`), with LoRA adapters merged into the weights, so that
//! `transformers.AutoModelForSequenceClassification.from_pretrained(dir)` loads it without PEFT
//! and without missing or unexpected keys (see `scripts/hf_logits.py`), and
//! [`crate::load_classifier`] loads it back.
//!
//! Keys follow `BertForSequenceClassification`: `bert.embeddings.*`, `bert.encoder.layer.N.*`,
//! `bert.pooler.dense.*`, `classifier.*`; linear weights in PyTorch's `[out, in]` orientation;
//! LayerNorm parameters as `.weight`/`.bias` (never the legacy `gamma`/`beta`).

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use burn::nn::{Embedding, LayerNorm, Linear};
use burn::tensor::backend::Backend;
use serde_json::Value;

use crate::config::BertConfig;
use crate::error::BertError;
use crate::io::{self, OwnedTensor, write_json, write_safetensors};
use crate::model::BertForSequenceClassification;
use crate::precision::WeightDtype;

// The names live in `files` (the model's, not the exporter's); re-exported where they were.
pub use crate::files::{CONFIG_FILE, TOKENIZER_FILES, WEIGHTS_FILE};
use crate::files::{TOKENIZER_JSON, VOCAB_FILE};

/// Writes `model` into `dir` as a Hugging Face `BertForSequenceClassification` checkpoint,
/// every tensor stored as `dtype` (callers pass the base checkpoint's own, so an f32 model
/// stays f32 on disk, unless asked otherwise) and `config.json`'s `dtype` saying so.
///
/// LoRA adapters are merged into the projections they adapt (on a copy: `model` is not
/// changed; merging is idempotent, so an already merged model is saved as it is). `config` is
/// written with `architectures: ["BertForSequenceClassification"]`, `model_type: "bert"` and
/// its label maps (`LABEL_i` when it names none, as transformers does); it must describe
/// `model`'s shapes, which is checked first so a mismatched directory is never written.
///
/// Both files are written atomically, weights first: a directory whose `config.json` exists
/// always has complete weights beside it.
pub fn save_pretrained<B: Backend>(
    model: &BertForSequenceClassification<B>,
    config: &BertConfig,
    dir: &Path,
    dtype: WeightDtype,
) -> Result<(), BertError> {
    let config_path = dir.join(CONFIG_FILE);
    check_config(model, config, &config_path)?;
    let tensors = pretrained_tensors(model, dtype)?;
    let mut metadata = HashMap::new();
    // transformers refuses safetensors files without `format` metadata (or with another value).
    metadata.insert("format".to_string(), "pt".to_string());
    write_safetensors(&dir.join(WEIGHTS_FILE), &tensors, Some(metadata))?;
    write_json(&config_path, &pretrained_config(config, dtype)?)?;
    tracing::info!(
        dir = %dir.display(),
        tensors = tensors.len(),
        %dtype,
        "saved merged model in Hugging Face format"
    );
    Ok(())
}

/// The `config.json` that [`save_pretrained`] writes for `config` and weights of `dtype`.
pub fn pretrained_config(config: &BertConfig, dtype: WeightDtype) -> Result<Value, BertError> {
    let labels: Vec<String> = (0..config.num_labels())
        .map(|i| config.label_name(i))
        .collect();
    let mut out = config.clone();
    out.model_type = Some("bert".into());
    out.architectures = Some(vec!["BertForSequenceClassification".into()]);
    out.id2label = Some(
        labels
            .iter()
            .enumerate()
            .map(|(i, n)| (i.to_string(), n.clone()))
            .collect(),
    );
    out.label2id = Some(
        labels
            .iter()
            .enumerate()
            .map(|(i, n)| (n.clone(), i))
            .collect(),
    );
    // `num_labels` is implied by `id2label`; transformers writes only the maps.
    out.num_labels = None;
    let mut value = serde_json::to_value(&out)
        .map_err(|e| BertError::Input(format!("serialising the configuration: {e}")))?;
    if let Value::Object(map) = &mut value {
        map.retain(|k, v| !(k == "num_labels" && v.is_null()));
        // transformers 5 records the dtype to load the weights in.
        map.insert("dtype".into(), Value::String(dtype.torch_name().into()));
    }
    Ok(value)
}

/// The checkpoint tensors of `model` under transformers' key names, adapters merged, stored
/// as `dtype`.
///
/// The adapters are merged in the model's own precision: merge an f32 copy of the base
/// (what `imdb-lora train` does after a bf16 run), not bf16 weights, whose rounding
/// (2⁻⁸ relative) would swallow most of a LoRA update.
pub fn pretrained_tensors<B: Backend>(
    model: &BertForSequenceClassification<B>,
    dtype: WeightDtype,
) -> Result<BTreeMap<String, OwnedTensor>, BertError> {
    let bert = model.bert.clone().merge_lora();
    let mut out = Tensors {
        map: BTreeMap::new(),
        dtype,
    };
    let e = &bert.embeddings;
    embedding(
        &mut out,
        "bert.embeddings.word_embeddings",
        &e.word_embeddings,
    )?;
    embedding(
        &mut out,
        "bert.embeddings.position_embeddings",
        &e.position_embeddings,
    )?;
    embedding(
        &mut out,
        "bert.embeddings.token_type_embeddings",
        &e.token_type_embeddings,
    )?;
    layer_norm(&mut out, "bert.embeddings.LayerNorm", &e.layer_norm)?;
    for (i, layer) in bert.encoder.layer.iter().enumerate() {
        let p = format!("bert.encoder.layer.{i}");
        for (name, projection) in layer.projections() {
            // Merged above: the base layer carries the adapted weight, the adapter is inert.
            linear(&mut out, &format!("{p}.{name}"), &projection.base_layer)?;
        }
        layer_norm(
            &mut out,
            &format!("{p}.attention.output.LayerNorm"),
            &layer.attention.output.layer_norm,
        )?;
        layer_norm(
            &mut out,
            &format!("{p}.output.LayerNorm"),
            &layer.output.layer_norm,
        )?;
    }
    linear(&mut out, "bert.pooler.dense", &bert.pooler.dense)?;
    linear(&mut out, "classifier", &model.classifier)?;
    Ok(out.map)
}

/// The tensors collected so far and the dtype they are stored in.
struct Tensors {
    map: BTreeMap<String, OwnedTensor>,
    dtype: WeightDtype,
}

/// Copies the tokenizer files present in `from` ([`TOKENIZER_FILES`]) into `to`, atomically,
/// so a saved model directory is self-contained for inference. Returns the files written;
/// an error if `from` has neither `tokenizer.json` nor `vocab.txt`.
pub fn copy_tokenizer_files(from: &Path, to: &Path) -> Result<Vec<PathBuf>, BertError> {
    let mut written = Vec::new();
    for name in TOKENIZER_FILES {
        let src = from.join(name);
        if !src.is_file() {
            continue;
        }
        let bytes = std::fs::read(&src).map_err(|source| BertError::Io {
            path: src.clone(),
            source,
        })?;
        let dst = to.join(name);
        io::write(&dst, &bytes)?;
        written.push(dst);
    }
    let has_vocab = written
        .iter()
        .any(|p| p.ends_with(TOKENIZER_JSON) || p.ends_with(VOCAB_FILE));
    if !has_vocab {
        return Err(BertError::Io {
            path: from.join(TOKENIZER_JSON),
            source: std::io::Error::new(
                std::io::ErrorKind::NotFound,
                "neither tokenizer.json nor vocab.txt in this directory",
            ),
        });
    }
    Ok(written)
}

/// Refuses a configuration that does not describe the model: the saved directory would load
/// in neither transformers nor here.
fn check_config<B: Backend>(
    model: &BertForSequenceClassification<B>,
    config: &BertConfig,
    path: &Path,
) -> Result<(), BertError> {
    config.validate(path)?;
    let e = &model.bert.embeddings;
    let [vocab, hidden] = e.word_embeddings.weight.dims();
    let [positions, _] = e.position_embeddings.weight.dims();
    let [types, _] = e.token_type_embeddings.weight.dims();
    let [_, labels] = model.classifier.weight.dims();
    let intermediate = model
        .bert
        .encoder
        .layer
        .first()
        .map_or(config.intermediate_size, |l| l.intermediate.dense.dims()[1]);
    let checks = [
        ("vocab_size", config.vocab_size, vocab),
        ("hidden_size", config.hidden_size, hidden),
        (
            "max_position_embeddings",
            config.max_position_embeddings,
            positions,
        ),
        ("type_vocab_size", config.type_vocab_size, types),
        (
            "num_hidden_layers",
            config.num_hidden_layers,
            model.bert.encoder.layer.len(),
        ),
        ("intermediate_size", config.intermediate_size, intermediate),
        ("num_labels", config.num_labels(), labels),
    ];
    for (name, configured, actual) in checks {
        if configured != actual {
            return Err(BertError::InvalidConfig {
                path: path.to_path_buf(),
                reason: format!(
                    "{name} is {configured} in the configuration but {actual} in the model"
                ),
            });
        }
    }
    Ok(())
}

fn embedding<B: Backend>(out: &mut Tensors, name: &str, e: &Embedding<B>) -> Result<(), BertError> {
    // `[n, d]` in both frameworks: no transpose.
    out.map.insert(
        format!("{name}.weight"),
        OwnedTensor::from_tensor_as(e.weight.val(), out.dtype)?,
    );
    Ok(())
}

fn linear<B: Backend>(out: &mut Tensors, name: &str, l: &Linear<B>) -> Result<(), BertError> {
    out.map.insert(
        format!("{name}.weight"),
        OwnedTensor::from_linear_weight_as(l.weight.val(), out.dtype)?,
    );
    let bias = l.bias.as_ref().ok_or_else(|| {
        // transformers' BERT linears all have biases: a file without one would load with a
        // freshly initialised bias, silently changing the model.
        BertError::Input(format!(
            "{name} has no bias; cannot save it as a BERT checkpoint"
        ))
    })?;
    out.map.insert(
        format!("{name}.bias"),
        OwnedTensor::from_tensor_as(bias.val(), out.dtype)?,
    );
    Ok(())
}

fn layer_norm<B: Backend>(
    out: &mut Tensors,
    name: &str,
    norm: &LayerNorm<B>,
) -> Result<(), BertError> {
    out.map.insert(
        format!("{name}.weight"),
        OwnedTensor::from_tensor_as(norm.gamma.val(), out.dtype)?,
    );
    let beta = norm
        .beta
        .as_ref()
        .ok_or_else(|| BertError::Input(format!("{name} has no beta (bias); cannot save it")))?;
    out.map.insert(
        format!("{name}.bias"),
        OwnedTensor::from_tensor_as(beta.val(), out.dtype)?,
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_gets_architecture_and_label_maps() {
        let c = BertConfig {
            architectures: Some(vec!["BertModel".into()]),
            ..BertConfig::default()
        };
        let v = pretrained_config(&c, WeightDtype::F32).unwrap();
        assert_eq!(v["architectures"][0], "BertForSequenceClassification");
        assert_eq!(v["model_type"], "bert");
        assert_eq!(v["id2label"]["1"], "LABEL_1");
        assert_eq!(v["label2id"]["LABEL_0"], 0);
        assert!(v.get("num_labels").is_none());
        let named = pretrained_config(
            &BertConfig::default().with_labels(&["neg", "pos"]),
            WeightDtype::F32,
        )
        .unwrap();
        assert_eq!(named["id2label"]["0"], "neg");
        // And it parses back into the same labels.
        let back: BertConfig = serde_json::from_value(named).unwrap();
        assert_eq!((back.num_labels(), back.label_name(1)), (2, "pos".into()));
    }
}
