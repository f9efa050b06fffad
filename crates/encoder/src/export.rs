//! Saving a fine-tuned classifier as a plain Hugging Face model directory (`config.json` +
//! `model.safetensors`), with LoRA adapters merged into the weights, so that
//! `transformers.AutoModelForSequenceClassification.from_pretrained(dir)` loads it without PEFT
//! and without missing or unexpected keys (see `scripts/hf_logits.py`), and
//! [`crate::load_classifier`] loads it back.
//!
//! Keys follow the family's `*ForSequenceClassification`: `bert.embeddings.*`,
//! `bert.encoder.layer.N.*`, `bert.pooler.dense.*`, `classifier.*` for BERT; `roberta.*` /
//! `electra.*` (with `embeddings_project`) and `classifier.dense.*`, `classifier.out_proj.*`;
//! `distilbert.embeddings.*`, `distilbert.transformer.layer.N.*`, `pre_classifier.*`,
//! `classifier.*`. Linear weights in PyTorch's `[out, in]` orientation; LayerNorm parameters
//! as `.weight`/`.bias` (never the legacy `gamma`/`beta`).

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use burn::nn::{Embedding, LayerNorm, Linear};
use burn::tensor::backend::Backend;
use serde_json::Value;

use imdb_lora_kernels::int8::{Int8Linear, quantize_table};
use imdb_lora_lora::BaseLayer;

use crate::classifier::{Encoder, SequenceClassifier};
use crate::config::EncoderConfig;
use crate::error::EncoderError;
use crate::io::{self, OwnedTensor, write_json, write_safetensors};
use crate::layers::TransformerLayer;
use crate::precision::WeightDtype;
use crate::targets::layer_path;

// The names live in `files` (the model's, not the exporter's); re-exported where they were.
pub use crate::files::{CONFIG_FILE, TOKENIZER_FILES, WEIGHTS_FILE};
use crate::files::{TOKENIZER_JSON, VOCAB_FILE};

/// Writes `model` into `dir` as a Hugging Face `*ForSequenceClassification` checkpoint of its
/// family,
/// every tensor stored as `dtype` (callers pass the base checkpoint's own, so an f32 model
/// stays f32 on disk, unless asked otherwise) and `config.json`'s `dtype` saying so.
///
/// LoRA adapters are merged into the projections they adapt (on a copy: `model` is not
/// changed; merging is idempotent, so an already merged model is saved as it is). `config` is
/// written with the family's class in `architectures` (`BertForSequenceClassification`, …)
/// and its label maps (`LABEL_i` when it names none, as transformers does); it must describe
/// `model`'s shapes, which is checked first so a mismatched directory is never written.
///
/// Both files are written atomically, weights first: a directory whose `config.json` exists
/// always has complete weights beside it.
pub fn save_pretrained<B: Backend>(
    model: &SequenceClassifier<B>,
    config: &EncoderConfig,
    dir: &Path,
    dtype: WeightDtype,
) -> Result<(), EncoderError> {
    let config_path = dir.join(CONFIG_FILE);
    check_config(model, config, &config_path)?;
    let tensors = pretrained_tensors(model, dtype)?;
    let mut config_json = pretrained_config(config, dtype)?;
    if let (true, Value::Object(map)) = (model.is_int8(), &mut config_json) {
        map.insert(QUANTIZATION_CONFIG.into(), int8_quantization_config());
    }
    let mut metadata = HashMap::new();
    // transformers refuses safetensors files without `format` metadata (or with another value).
    metadata.insert("format".to_string(), "pt".to_string());
    write_safetensors(&dir.join(WEIGHTS_FILE), &tensors, Some(metadata))?;
    write_json(&config_path, &config_json)?;
    tracing::info!(
        dir = %dir.display(),
        tensors = tensors.len(),
        %dtype,
        "saved merged model in Hugging Face format"
    );
    Ok(())
}

/// `config.json`'s key for how a model is quantised (transformers' name).
pub const QUANTIZATION_CONFIG: &str = "quantization_config";

/// The `quantization_config` of an int8 model: the scheme, for readers of `config.json`.
/// transformers (5.25) does not know the `quant_method` and only warns ("Unknown quantization
/// type … we will skip the quantization"), then reads the int8 values as floats: an int8
/// directory is for this tool, which the README says; export without quantising for
/// transformers.
pub fn int8_quantization_config() -> Value {
    serde_json::json!({
        "quant_method": INT8_QUANT_METHOD,
        "bits": 8,
        "weights": "int8, symmetric, one scale per output channel (`<module>.weight_scale`)",
        "activations": "dynamic: u8 per row with a zero point, quantised at run time",
        "modules": "the encoder layers' linear projections; embeddings, layer norms, pooler and head stay float",
    })
}

/// The `quant_method` of [`int8_quantization_config`].
pub const INT8_QUANT_METHOD: &str = "imdb-lora-int8";

/// The `config.json` that [`save_pretrained`] writes for `config` and weights of `dtype`.
pub fn pretrained_config(
    config: &EncoderConfig,
    dtype: WeightDtype,
) -> Result<Value, EncoderError> {
    let labels: Vec<String> = (0..config.num_labels())
        .map(|i| config.label_name(i))
        .collect();
    let mut out = config.clone();
    if out.model_type.is_none() {
        out.model_type = Some(config.family.base_model_prefix().into());
    }
    out.architectures = Some(vec![config.classification_architecture().into()]);
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
    let mut value = out
        .to_json()
        .map_err(|e| EncoderError::Input(format!("serialising the configuration: {e}")))?;
    if let Value::Object(map) = &mut value {
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
    model: &SequenceClassifier<B>,
    dtype: WeightDtype,
) -> Result<BTreeMap<String, OwnedTensor>, EncoderError> {
    let merged = model.clone().merge_lora();
    if let Some((path, _)) = merged
        .projection_paths()
        .into_iter()
        .find(|(_, p)| p.lora.is_some() && !p.is_merged())
    {
        // Only an int8 base refuses a merge: writing its weights alone would drop the adapter.
        return Err(EncoderError::Lora {
            context: path,
            source: imdb_lora_lora::LoraError::Int8Merge,
        });
    }
    let mut out = Tensors {
        map: BTreeMap::new(),
        dtype,
    };
    let family = model.family;
    let p = family.base_model_prefix();
    // Every tensor by its checkpoint key; the families differ only in what they hold.
    let mut tables: Vec<(String, &Embedding<B>)> = Vec::new();
    let mut norms: Vec<(String, &LayerNorm<B>)> = Vec::new();
    let mut linears: Vec<(String, &Linear<B>)> = Vec::new();
    let mut projections: Vec<(String, &BaseLayer<B>)> = Vec::new();
    match &merged.encoder {
        Encoder::Bert(m) => {
            let e = &m.embeddings;
            tables.push((
                format!("{p}.embeddings.word_embeddings"),
                &e.word_embeddings,
            ));
            tables.push((
                format!("{p}.embeddings.position_embeddings"),
                &e.position_embeddings,
            ));
            tables.push((
                format!("{p}.embeddings.token_type_embeddings"),
                &e.token_type_embeddings,
            ));
            norms.push((format!("{p}.embeddings.LayerNorm"), &e.layer_norm));
            if let Some(project) = &m.embeddings_project {
                linears.push((format!("{p}.embeddings_project"), project));
            }
            for (i, layer) in m.layers().iter().enumerate() {
                let lp = layer_path(family, i);
                projections.extend(layer_projections(&lp, layer));
                norms.push((
                    format!("{lp}.attention.output.LayerNorm"),
                    &layer.attention.output.layer_norm,
                ));
                norms.push((format!("{lp}.output.LayerNorm"), &layer.output.layer_norm));
            }
            if let Some(pooler) = &m.pooler {
                linears.push((format!("{p}.pooler.dense"), &pooler.dense));
            }
        }
        Encoder::DistilBert(m) => {
            let e = &m.embeddings;
            tables.push((
                format!("{p}.embeddings.word_embeddings"),
                &e.word_embeddings,
            ));
            tables.push((
                format!("{p}.embeddings.position_embeddings"),
                &e.position_embeddings,
            ));
            norms.push((format!("{p}.embeddings.LayerNorm"), &e.layer_norm));
            for (i, layer) in m.layers().iter().enumerate() {
                let lp = layer_path(family, i);
                projections.extend(layer_projections(&lp, layer));
                norms.push((format!("{lp}.sa_layer_norm"), &layer.sa_layer_norm));
                norms.push((format!("{lp}.output_layer_norm"), &layer.output_layer_norm));
            }
        }
        Encoder::DebertaV2(m) => {
            let e = &m.embeddings;
            tables.push((
                format!("{p}.embeddings.word_embeddings"),
                &e.word_embeddings,
            ));
            if let Some(t) = &e.position_embeddings {
                tables.push((format!("{p}.embeddings.position_embeddings"), t));
            }
            if let Some(t) = &e.token_type_embeddings {
                tables.push((format!("{p}.embeddings.token_type_embeddings"), t));
            }
            norms.push((format!("{p}.embeddings.LayerNorm"), &e.layer_norm));
            for (i, layer) in m.layers().iter().enumerate() {
                let lp = layer_path(family, i);
                projections.extend(layer_projections(&lp, layer));
                norms.push((
                    format!("{lp}.attention.output.LayerNorm"),
                    &layer.attention.output.layer_norm,
                ));
                norms.push((format!("{lp}.output.LayerNorm"), &layer.output.layer_norm));
            }
            if let Some(t) = &m.encoder.rel_embeddings {
                tables.push((format!("{p}.encoder.rel_embeddings"), t));
            }
            if let Some(n) = &m.encoder.layer_norm {
                norms.push((format!("{p}.encoder.LayerNorm"), n));
            }
        }
        Encoder::ModernBert(m) => {
            let e = &m.embeddings;
            tables.push((format!("{p}.embeddings.tok_embeddings"), &e.tok_embeddings));
            norms.push((format!("{p}.embeddings.norm"), &e.norm));
            for (i, layer) in m.layers().iter().enumerate() {
                let lp = layer_path(family, i);
                projections.extend(layer_projections(&lp, layer));
                if let Some(n) = &layer.attn_norm {
                    norms.push((format!("{lp}.attn_norm"), n));
                }
                norms.push((format!("{lp}.mlp_norm"), &layer.mlp_norm));
            }
            norms.push((format!("{p}.final_norm"), &m.final_norm));
        }
    }
    norms.extend(merged.head.norms());
    linears.extend(
        merged
            .head
            .linears()
            .into_iter()
            .map(|(_, key, l)| (key.to_string(), l)),
    );
    let int8 = merged.is_int8();
    for (name, table) in tables {
        let word_table = name.ends_with("word_embeddings") || name.ends_with("tok_embeddings");
        if int8 && word_table {
            int8_table(&mut out, &name, table)?;
        } else {
            embedding(&mut out, &name, table)?;
        }
    }
    for (name, norm) in norms {
        layer_norm(&mut out, &name, norm)?;
    }
    for (name, l) in linears {
        linear(&mut out, &name, l)?;
    }
    for (name, base) in projections {
        match base {
            BaseLayer::Float(l) => linear(&mut out, &name, l)?,
            BaseLayer::Int8(l) => int8_linear(&mut out, &name, l)?,
        }
    }
    Ok(out.map)
}

/// A layer's projections under `{layer_path}.{name}`. Merged before: the base layer carries
/// the adapted weight, the adapter is inert.
fn layer_projections<'a, B: Backend, L: TransformerLayer<B>>(
    layer_path: &str,
    layer: &'a L,
) -> Vec<(String, &'a BaseLayer<B>)> {
    layer
        .projections()
        .into_iter()
        .map(|(name, projection)| (format!("{layer_path}.{name}"), &projection.base_layer))
        .collect()
}

/// The tensors collected so far and the dtype they are stored in.
struct Tensors {
    map: BTreeMap<String, OwnedTensor>,
    dtype: WeightDtype,
}

/// Copies the tokenizer files present in `from` ([`TOKENIZER_FILES`]) into `to`, atomically,
/// so a saved model directory is self-contained for inference. Returns the files written;
/// an error if `from` has neither `tokenizer.json` nor `vocab.txt`.
pub fn copy_tokenizer_files(from: &Path, to: &Path) -> Result<Vec<PathBuf>, EncoderError> {
    let mut written = Vec::new();
    for name in TOKENIZER_FILES {
        let src = from.join(name);
        if !src.is_file() {
            continue;
        }
        let bytes = std::fs::read(&src).map_err(|source| EncoderError::Io {
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
        return Err(EncoderError::Io {
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
    model: &SequenceClassifier<B>,
    config: &EncoderConfig,
    path: &Path,
) -> Result<(), EncoderError> {
    config.validate(path)?;
    if config.family != model.family {
        return Err(EncoderError::InvalidConfig {
            path: path.to_path_buf(),
            reason: format!(
                "the configuration is {:?}'s but the model {:?}'s",
                config.family, model.family
            ),
        });
    }
    let rows = |e: &Embedding<B>| e.weight.dims()[0];
    let (word, positions, types) = match &model.encoder {
        Encoder::Bert(m) => (
            &m.embeddings.word_embeddings,
            Some(rows(&m.embeddings.position_embeddings)),
            Some(rows(&m.embeddings.token_type_embeddings)),
        ),
        Encoder::DistilBert(m) => (
            &m.embeddings.word_embeddings,
            Some(rows(&m.embeddings.position_embeddings)),
            None,
        ),
        Encoder::DebertaV2(m) => (
            &m.embeddings.word_embeddings,
            m.embeddings.position_embeddings.as_ref().map(rows),
            Some(m.embeddings.token_type_embeddings.as_ref().map_or(0, rows)),
        ),
        Encoder::ModernBert(m) => (&m.embeddings.tok_embeddings, None, None),
    };
    let [vocab, _] = word.weight.dims();
    let positions = positions.unwrap_or(config.max_position_embeddings);
    let projections = model.encoder.projections();
    let hidden = projections
        .first()
        .map_or(config.hidden_size, |(_, _, p)| p.dims()[0]);
    // Every family's last projection of a layer is the feed-forward block's way back to the
    // hidden width (`output.dense`, `ffn.lin2`, `mlp.Wo`): its input is the intermediate.
    let intermediate = projections
        .iter()
        .rfind(|(i, _, _)| *i == 0)
        .map_or(config.intermediate_size, |(_, _, p)| p.dims()[0]);
    let checks = [
        ("vocab_size", config.vocab_size, vocab),
        ("hidden_size", config.hidden_size, hidden),
        (
            "max_position_embeddings",
            config.max_position_embeddings,
            positions,
        ),
        (
            "type_vocab_size",
            config.type_vocab_size,
            types.unwrap_or(config.type_vocab_size),
        ),
        (
            "num_hidden_layers",
            config.num_hidden_layers,
            model.encoder.num_layers(),
        ),
        ("intermediate_size", config.intermediate_size, intermediate),
        ("num_labels", config.num_labels(), model.num_labels()),
    ];
    for (name, configured, actual) in checks {
        if configured != actual {
            return Err(EncoderError::InvalidConfig {
                path: path.to_path_buf(),
                reason: format!(
                    "{name} is {configured} in the configuration but {actual} in the model"
                ),
            });
        }
    }
    Ok(())
}

/// An int8 model's word embeddings (on their per-row int8 grid since
/// `Encoder::quantize_int8`): `{name}.weight` I8 `[n, d]` and `{name}.weight_scale` `[n]` F32.
fn int8_table<B: Backend>(
    out: &mut Tensors,
    name: &str,
    e: &Embedding<B>,
) -> Result<(), EncoderError> {
    let [n, d] = e.weight.dims();
    let values = e
        .weight
        .val()
        .into_data()
        .convert::<f32>()
        .to_vec::<f32>()
        .map_err(|err| EncoderError::Input(format!("{name}: tensor data: {err:?}")))?;
    let (q, scale) = quantize_table(&values, n, d).map_err(|source| EncoderError::Int8 {
        context: name.to_string(),
        source,
    })?;
    out.map
        .insert(format!("{name}.weight"), OwnedTensor::i8(&[n, d], &q));
    out.map.insert(
        format!("{name}.weight_scale"),
        OwnedTensor::f32(&[n], &scale),
    );
    Ok(())
}

fn embedding<B: Backend>(
    out: &mut Tensors,
    name: &str,
    e: &Embedding<B>,
) -> Result<(), EncoderError> {
    // `[n, d]` in both frameworks: no transpose.
    out.map.insert(
        format!("{name}.weight"),
        OwnedTensor::from_tensor_as(e.weight.val(), out.dtype)?,
    );
    Ok(())
}

fn linear<B: Backend>(out: &mut Tensors, name: &str, l: &Linear<B>) -> Result<(), EncoderError> {
    out.map.insert(
        format!("{name}.weight"),
        OwnedTensor::from_linear_weight_as(l.weight.val(), out.dtype)?,
    );
    // A layer without a bias is one its configuration says has none (ModernBERT's): the
    // loader requires exactly what the configuration implies, so nothing is dropped here.
    if let Some(bias) = &l.bias {
        out.map.insert(
            format!("{name}.bias"),
            OwnedTensor::from_tensor_as(bias.val(), out.dtype)?,
        );
    }
    Ok(())
}

/// An int8 projection: `{name}.weight` `[out, in]` I8, `{name}.weight_scale` `[out]` F32
/// (whatever `out.dtype`: the scales are the weights' precision), `{name}.bias`.
fn int8_linear<B: Backend>(
    out: &mut Tensors,
    name: &str,
    l: &Int8Linear<B>,
) -> Result<(), EncoderError> {
    let parts = l.parts().map_err(|source| EncoderError::Int8 {
        context: name.to_string(),
        source,
    })?;
    out.map.insert(
        format!("{name}.weight"),
        OwnedTensor::i8(&[parts.d_output, parts.d_input], &parts.q),
    );
    out.map.insert(
        format!("{name}.weight_scale"),
        OwnedTensor::f32(&[parts.d_output], &parts.scale),
    );
    if let Some(bias) = parts.bias {
        out.map.insert(
            format!("{name}.bias"),
            OwnedTensor::f32(&[parts.d_output], &bias).stored_as(out.dtype),
        );
    }
    Ok(())
}

fn layer_norm<B: Backend>(
    out: &mut Tensors,
    name: &str,
    norm: &LayerNorm<B>,
) -> Result<(), EncoderError> {
    out.map.insert(
        format!("{name}.weight"),
        OwnedTensor::from_tensor_as(norm.gamma.val(), out.dtype)?,
    );
    // No shift: a bias-free norm (ModernBERT's `norm_bias` false).
    if let Some(beta) = &norm.beta {
        out.map.insert(
            format!("{name}.bias"),
            OwnedTensor::from_tensor_as(beta.val(), out.dtype)?,
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_gets_architecture_and_label_maps() {
        let c = EncoderConfig {
            architectures: Some(vec!["BertModel".into()]),
            ..EncoderConfig::default()
        };
        let v = pretrained_config(&c, WeightDtype::F32).unwrap();
        assert_eq!(v["architectures"][0], "BertForSequenceClassification");
        assert_eq!(v["model_type"], "bert");
        assert_eq!(v["id2label"]["1"], "LABEL_1");
        assert_eq!(v["label2id"]["LABEL_0"], 0);
        assert!(v.get("num_labels").is_none());
        let named = pretrained_config(
            &EncoderConfig::default().with_labels(&["neg", "pos"]),
            WeightDtype::F32,
        )
        .unwrap();
        assert_eq!(named["id2label"]["0"], "neg");
        // And it parses back into the same labels.
        let back: EncoderConfig = serde_json::from_value(named).unwrap();
        assert_eq!((back.num_labels(), back.label_name(1)), (2, "pos".into()));
    }
}
