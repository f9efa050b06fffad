//! LoRA adapters in Hugging Face PEFT's file format (`adapter_config.json` +
//! `adapter_model.safetensors`), read and written so files move freely between PEFT and us.
//!
//! PEFT names tensors after the wrapped model's module paths: for a BERT sequence classifier
//! `base_model.model.bert.encoder.layer.N.attention.self.query.lora_A.weight` (`[r, in]`),
//! `...lora_B.weight` (`[out, r]`) and the saved head `base_model.model.classifier.weight`
//! / `.bias` (`modules_to_save`); for the other families the same under their own paths
//! (`roberta.encoder…`, `distilbert.transformer.layer.N.attention.q_lin`) and heads
//! (`classifier.dense`, `classifier.out_proj`; `pre_classifier`, `classifier`).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::tensor::backend::Backend;
use burn::tensor::{Tensor, TensorData};
use imdb_lora_lora::{LoraAdapter, LoraConfig};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::classifier::SequenceClassifier;
use crate::error::EncoderError;
use crate::io::{OwnedTensor, write_json, write_safetensors};
use crate::targets::{ALL_LINEAR, DEFAULT_MODULES_TO_SAVE, selects};
use crate::weights::{MappedFile, frozen, transpose};

/// File name of the adapter configuration.
pub const ADAPTER_CONFIG: &str = "adapter_config.json";
/// File name of the adapter weights.
pub const ADAPTER_WEIGHTS: &str = "adapter_model.safetensors";
const PREFIX: &str = "base_model.model.";

/// The fields of PEFT's `adapter_config.json` that this crate reads and writes.
///
/// Unknown fields are ignored on reading; options that would change the arithmetic and that
/// we do not implement (DoRA, per-module rank patterns, `fan_in_fan_out`, bias training) are
/// refused by [`PeftConfig::to_lora`] rather than silently ignored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PeftConfig {
    /// Must be `"LORA"`.
    pub peft_type: String,
    /// `"SEQ_CLS"` for sequence classification.
    #[serde(default)]
    pub task_type: Option<String>,
    /// Rank.
    pub r: usize,
    /// Scaling numerator.
    pub lora_alpha: f64,
    /// Adapter dropout.
    #[serde(default)]
    pub lora_dropout: f64,
    /// Targeted module names.
    pub target_modules: TargetModules,
    /// Modules trained and saved in full (the classifier head).
    #[serde(default)]
    pub modules_to_save: Option<Vec<String>>,
    /// The base model the adapter was trained on.
    #[serde(default)]
    pub base_model_name_or_path: Option<String>,
    /// Adapted layer indices (`None`: all).
    #[serde(default)]
    pub layers_to_transform: Option<LayerSelection>,
    /// rsLoRA scaling.
    #[serde(default)]
    pub use_rslora: bool,
    /// DoRA (unsupported).
    #[serde(default)]
    pub use_dora: bool,
    /// Which biases are trained (only `"none"` supported).
    #[serde(default = "default_bias")]
    pub bias: String,
    /// Transposed base weights (GPT-2 style; unsupported).
    #[serde(default)]
    pub fan_in_fan_out: bool,
    /// Per-module ranks (unsupported when non-empty).
    #[serde(default)]
    pub rank_pattern: BTreeMap<String, Value>,
    /// Per-module alphas (unsupported when non-empty).
    #[serde(default)]
    pub alpha_pattern: BTreeMap<String, Value>,
    /// Whether the adapter was saved for inference.
    #[serde(default)]
    pub inference_mode: bool,
}

fn default_bias() -> String {
    "none".into()
}

/// `target_modules`: a list of names or a regular expression string.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum TargetModules {
    /// Module names matched as suffixes of module paths.
    List(Vec<String>),
    /// A regular expression over module paths (not supported here).
    Regex(String),
}

/// `layers_to_transform`: one index or a list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum LayerSelection {
    /// A single layer.
    One(usize),
    /// Several layers.
    Many(Vec<usize>),
}

impl PeftConfig {
    /// The PEFT configuration describing `lora` on a sequence classifier.
    pub fn from_lora(lora: &LoraConfig, base_model: &str) -> Self {
        let mut targets = lora.target_modules.clone();
        targets.sort();
        Self {
            peft_type: "LORA".into(),
            task_type: Some("SEQ_CLS".into()),
            r: lora.r,
            lora_alpha: lora.lora_alpha,
            lora_dropout: lora.lora_dropout,
            target_modules: TargetModules::List(targets),
            modules_to_save: Some(
                lora.modules_to_save
                    .clone()
                    .unwrap_or_else(|| DEFAULT_MODULES_TO_SAVE.map(String::from).to_vec()),
            ),
            base_model_name_or_path: Some(base_model.to_string()),
            layers_to_transform: lora.layers_to_transform.clone().map(LayerSelection::Many),
            use_rslora: lora.use_rslora,
            use_dora: false,
            bias: "none".into(),
            fan_in_fan_out: false,
            rank_pattern: BTreeMap::new(),
            alpha_pattern: BTreeMap::new(),
            inference_mode: true,
        }
    }

    /// Our [`LoraConfig`], or an error naming the unsupported option.
    pub fn to_lora(&self, path: &Path) -> Result<LoraConfig, EncoderError> {
        let unsupported = |reason: String| EncoderError::UnsupportedAdapter {
            path: path.to_path_buf(),
            reason,
        };
        if self.peft_type != "LORA" {
            return Err(unsupported(format!(
                "peft_type {:?} is not supported (expected \"LORA\")",
                self.peft_type
            )));
        }
        if let Some(task) = self.task_type.as_deref().filter(|t| *t != "SEQ_CLS") {
            return Err(unsupported(format!(
                "task_type {task:?} is not supported (expected \"SEQ_CLS\")"
            )));
        }
        let checks = [
            (self.use_dora, "use_dora = true (DoRA)"),
            (self.fan_in_fan_out, "fan_in_fan_out = true"),
            (self.bias != "none", "bias other than \"none\""),
            (!self.rank_pattern.is_empty(), "a non-empty rank_pattern"),
            (!self.alpha_pattern.is_empty(), "a non-empty alpha_pattern"),
        ];
        if let Some((_, what)) = checks.iter().find(|(bad, _)| *bad) {
            return Err(unsupported(format!("{what} is not supported")));
        }
        let target_modules = match &self.target_modules {
            TargetModules::List(list) => list.clone(),
            TargetModules::Regex(name) if name == ALL_LINEAR => vec![name.clone()],
            TargetModules::Regex(re) => {
                return Err(unsupported(format!(
                    "target_modules as a regular expression ({re:?}) is not supported; list the names"
                )));
            }
        };
        let lora = LoraConfig {
            r: self.r,
            lora_alpha: self.lora_alpha,
            lora_dropout: self.lora_dropout,
            target_modules,
            layers_to_transform: self.layers_to_transform.clone().map(|l| match l {
                LayerSelection::One(i) => vec![i],
                LayerSelection::Many(v) => v,
            }),
            use_rslora: self.use_rslora,
            modules_to_save: self.modules_to_save.clone(),
        };
        lora.validate().map_err(|source| EncoderError::Lora {
            context: path.display().to_string(),
            source,
        })?;
        Ok(lora)
    }
}

/// The adapter key of a LoRA factor of the projection at `path` (its full module path).
fn lora_key(path: &str, factor: &str) -> String {
    format!("{PREFIX}{path}.lora_{factor}.weight")
}

/// A PEFT adapter read from disk: its configuration and tensors, not yet bound to a model.
pub struct PeftAdapter {
    dir: PathBuf,
    /// The configuration as written by PEFT.
    pub peft: PeftConfig,
    /// The same as our LoRA configuration.
    pub lora: LoraConfig,
    tensors: BTreeMap<String, (Vec<usize>, Vec<f32>)>,
}

impl fmt::Debug for PeftAdapter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PeftAdapter")
            .field("dir", &self.dir)
            .field("lora", &self.lora)
            .field("tensors", &self.tensors.len())
            .finish()
    }
}

impl PeftAdapter {
    /// Reads `adapter_config.json` and `adapter_model.safetensors` from `dir`.
    pub fn read(dir: &Path) -> Result<Self, EncoderError> {
        let config_path = dir.join(ADAPTER_CONFIG);
        let text = std::fs::read_to_string(&config_path).map_err(|source| EncoderError::Io {
            path: config_path.clone(),
            source,
        })?;
        let peft: PeftConfig =
            serde_json::from_str(&text).map_err(|source| EncoderError::Config {
                path: config_path.clone(),
                source,
            })?;
        let weights_path = dir.join(ADAPTER_WEIGHTS);
        let file = MappedFile::open(&weights_path)?;
        let w = file.tensors()?;
        let mut tensors = BTreeMap::new();
        for key in w.keys() {
            let shape = w.shape(&key).unwrap_or_default();
            let values = w.read(&key, &shape)?;
            tensors.insert(key, (shape, values));
        }
        Self::from_parts(dir, peft, tensors)
    }

    /// An adapter from a configuration and tensors already in memory (keys as in
    /// `adapter_model.safetensors`, values f32 row-major); `dir` names it in errors.
    pub fn from_parts(
        dir: &Path,
        peft: PeftConfig,
        tensors: BTreeMap<String, (Vec<usize>, Vec<f32>)>,
    ) -> Result<Self, EncoderError> {
        let lora = peft.to_lora(&dir.join(ADAPTER_CONFIG))?;
        Ok(Self {
            dir: dir.to_path_buf(),
            peft,
            lora,
            tensors,
        })
    }

    fn take(
        &self,
        used: &mut BTreeSet<String>,
        key: &str,
        expected: [usize; 2],
    ) -> Result<Vec<f32>, EncoderError> {
        let path = self.dir.join(ADAPTER_WEIGHTS);
        let (shape, values) = self
            .tensors
            .get(key)
            .ok_or_else(|| EncoderError::MissingTensor {
                path: path.clone(),
                key: key.to_string(),
            })?;
        if shape.as_slice() != expected {
            return Err(EncoderError::ShapeMismatch {
                path,
                key: key.to_string(),
                expected: expected.to_vec(),
                found: shape.clone(),
            });
        }
        used.insert(key.to_string());
        Ok(values.clone())
    }

    fn take_vector(
        &self,
        used: &mut BTreeSet<String>,
        key: &str,
        len: usize,
    ) -> Result<Vec<f32>, EncoderError> {
        let path = self.dir.join(ADAPTER_WEIGHTS);
        let (shape, values) = self
            .tensors
            .get(key)
            .ok_or_else(|| EncoderError::MissingTensor {
                path: path.clone(),
                key: key.to_string(),
            })?;
        if shape.as_slice() != [len] {
            return Err(EncoderError::ShapeMismatch {
                path,
                key: key.to_string(),
                expected: vec![len],
                found: shape.clone(),
            });
        }
        used.insert(key.to_string());
        Ok(values.clone())
    }

    /// The head modules this adapter trains in full (its `modules_to_save`, else PEFT's
    /// default).
    fn modules_to_save(&self) -> Vec<String> {
        self.lora
            .modules_to_save
            .clone()
            .unwrap_or_else(|| DEFAULT_MODULES_TO_SAVE.map(String::from).to_vec())
    }

    /// Returns `model` with this adapter's LoRA factors and saved head modules.
    ///
    /// Every key is checked against the model (missing, extra, or misshapen tensors are
    /// errors naming the key) before the result is assembled, so on error `model` is
    /// untouched and nothing is half-loaded. Adapters already on the model are replaced.
    pub fn apply<B: Backend>(
        &self,
        model: &SequenceClassifier<B>,
    ) -> Result<SequenceClassifier<B>, EncoderError> {
        let path = self.dir.join(ADAPTER_WEIGHTS);
        let device = model.device();
        let r = self.lora.r;
        let mut used = BTreeSet::new();
        let mut factors = BTreeMap::new();
        let projections = model.encoder.projections();
        for ((i, name, linear), (full_path, _)) in projections.iter().zip(model.projection_paths())
        {
            if !self.lora.adapts_layer(*i) || !selects(&self.lora.target_modules, &full_path) {
                continue;
            }
            let [d_in, d_out] = linear.dims();
            let a = self.take(&mut used, &lora_key(&full_path, "A"), [r, d_in])?;
            let b = self.take(&mut used, &lora_key(&full_path, "B"), [d_out, r])?;
            let a = Tensor::<B, 2>::from_data(
                TensorData::new(transpose(&a, r, d_in), [d_in, r]),
                &device,
            );
            let b = Tensor::<B, 2>::from_data(
                TensorData::new(transpose(&b, d_out, r), [r, d_out]),
                &device,
            );
            let adapter =
                LoraAdapter::from_factors(&self.lora, a, b, d_in, d_out).map_err(|source| {
                    EncoderError::Lora {
                        context: format!("{}: {full_path}", path.display()),
                        source,
                    }
                })?;
            factors.insert((*i, *name), adapter);
        }
        let modules_to_save = self.modules_to_save();
        let mut heads = Vec::new();
        for key in model.head.saved_keys(&modules_to_save) {
            let weight_key = format!("{PREFIX}{key}.weight");
            if !self.tensors.contains_key(&weight_key) {
                tracing::warn!(
                    file = %path.display(),
                    module = key,
                    "adapter does not save this head module; keeping the model's"
                );
                continue;
            }
            let (_, _, linear) = model
                .head
                .linears()
                .into_iter()
                .find(|(_, k, _)| *k == key)
                .ok_or_else(|| EncoderError::Input(format!("the head has no `{key}`")))?;
            let [d_in, d_out] = linear.weight.dims();
            let w = self.take(&mut used, &weight_key, [d_out, d_in])?;
            // A head layer without a bias (ModernBERT's `head.dense`) has none saved.
            let b = linear
                .bias
                .is_some()
                .then(|| self.take_vector(&mut used, &format!("{PREFIX}{key}.bias"), d_out))
                .transpose()?;
            heads.push((key, transpose(&w, d_out, d_in), [d_in, d_out], b));
        }
        let extra: Vec<String> = self
            .tensors
            .keys()
            .filter(|k| !used.contains(*k))
            .cloned()
            .collect();
        if !extra.is_empty() {
            return Err(EncoderError::UnexpectedTensors { path, keys: extra });
        }
        if factors.is_empty() {
            return Err(EncoderError::UnsupportedAdapter {
                path: self.dir.join(ADAPTER_CONFIG),
                reason: format!(
                    "target_modules {:?} select no module of this model",
                    self.lora.target_modules
                ),
            });
        }

        // Everything is validated: assemble.
        let mut out = model.clone();
        out.encoder = out.encoder.map_projections(|i, name, mut linear| {
            linear.lora = factors.remove(&(i, name));
            Ok::<_, EncoderError>(linear)
        })?;
        for (key, w, shape, b) in heads {
            out.head = out.head.map_linear(key, |mut linear| {
                linear.weight = frozen(Tensor::from_data(TensorData::new(w, shape), &device));
                linear.bias =
                    b.map(|b| frozen(Tensor::from_data(TensorData::new(b, [shape[1]]), &device)));
                Ok(linear)
            })?;
        }
        out.head = out.head.with_trainable(&modules_to_save);
        out.modules_to_save = modules_to_save;
        Ok(out)
    }
}

/// Writes `model`'s adapters and saved head modules in PEFT's format into `dir`.
///
/// `lora` must be the configuration the adapters were created with (PEFT records `r`,
/// `lora_alpha`, … rather than the scaling); `all-linear` is written as the module paths it
/// selected, as PEFT writes it. Both files are written atomically.
pub fn save_adapter<B: Backend>(
    model: &SequenceClassifier<B>,
    lora: &LoraConfig,
    base_model: &str,
    dir: &Path,
) -> Result<(), EncoderError> {
    let tensors = adapter_tensors(model)?;
    let mut metadata = std::collections::HashMap::new();
    metadata.insert("format".to_string(), "pt".to_string());
    write_safetensors(&dir.join(ADAPTER_WEIGHTS), &tensors, Some(metadata))?;
    let mut written = lora.clone();
    if written.target_modules.iter().any(|t| t == ALL_LINEAR) {
        written.target_modules = model
            .projection_paths()
            .into_iter()
            .filter(|(_, p)| p.lora.is_some())
            .map(|(path, _)| path)
            .collect();
    }
    write_json(
        &dir.join(ADAPTER_CONFIG),
        &PeftConfig::from_lora(&written, base_model),
    )
}

/// The adapter's tensors under PEFT's key names, in PyTorch orientation.
pub fn adapter_tensors<B: Backend>(
    model: &SequenceClassifier<B>,
) -> Result<BTreeMap<String, OwnedTensor>, EncoderError> {
    let mut tensors = BTreeMap::new();
    for (path, linear) in model.projection_paths() {
        if let Some(adapter) = &linear.lora {
            tensors.insert(
                lora_key(&path, "A"),
                OwnedTensor::from_linear_weight(adapter.lora_a.val())?,
            );
            tensors.insert(
                lora_key(&path, "B"),
                OwnedTensor::from_linear_weight(adapter.lora_b.val())?,
            );
        }
    }
    if tensors.is_empty() {
        return Err(EncoderError::Input(
            "the model has no LoRA adapter to save".into(),
        ));
    }
    let saved = model.head.saved_keys(&model.modules_to_save);
    for (_, key, linear) in model.head.linears() {
        if !saved.contains(&key) {
            continue;
        }
        tensors.insert(
            format!("{PREFIX}{key}.weight"),
            OwnedTensor::from_linear_weight(linear.weight.val())?,
        );
        if let Some(bias) = &linear.bias {
            tensors.insert(
                format!("{PREFIX}{key}.bias"),
                OwnedTensor::from_tensor(bias.val())?,
            );
        }
    }
    Ok(tensors)
}

/// Trainable and total parameter counts, printed the way PEFT's
/// `print_trainable_parameters()` prints them.
///
/// `total` counts every parameter once. PEFT's own total is higher by the size of the
/// classifier head, because PEFT keeps a frozen copy of each `modules_to_save` module
/// beside the trainable one (770 for all-MiniLM-L6-v2 with two labels, 1,538 for bert-base).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParamCount {
    /// LoRA factors plus classifier head.
    pub trainable: usize,
    /// All parameters of the model, adapters included.
    pub total: usize,
}

impl ParamCount {
    /// Counts the parameters of `model`.
    pub fn of<B: Backend>(model: &SequenceClassifier<B>) -> Self {
        Self {
            trainable: model.num_trainable_params(),
            total: model.num_params(),
        }
    }

    /// `trainable / total` in percent.
    pub fn percent(&self) -> f64 {
        100.0 * self.trainable as f64 / self.total.max(1) as f64
    }
}

impl fmt::Display for ParamCount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "trainable params: {} || all params: {} || trainable%: {:.4}",
            thousands(self.trainable),
            thousands(self.total),
            self.percent()
        )
    }
}

fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_separators() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(770), "770");
        assert_eq!(thousands(74_498), "74,498");
        assert_eq!(thousands(109_780_228), "109,780,228");
    }

    #[test]
    fn unsupported_options_are_named() {
        let base = PeftConfig::from_lora(&LoraConfig::default(), "m");
        let path = Path::new("adapter_config.json");
        assert!(base.to_lora(path).is_ok());
        for (cfg, word) in [
            (
                PeftConfig {
                    peft_type: "IA3".into(),
                    ..base.clone()
                },
                "IA3",
            ),
            (
                PeftConfig {
                    use_dora: true,
                    ..base.clone()
                },
                "DoRA",
            ),
            (
                PeftConfig {
                    bias: "all".into(),
                    ..base.clone()
                },
                "bias",
            ),
            (
                PeftConfig {
                    target_modules: TargetModules::Regex(".*q".into()),
                    ..base.clone()
                },
                "regular expression",
            ),
            (
                PeftConfig {
                    task_type: Some("CAUSAL_LM".into()),
                    ..base.clone()
                },
                "CAUSAL_LM",
            ),
        ] {
            let err = cfg.to_lora(path).unwrap_err().to_string();
            assert!(
                err.contains(word) && err.contains("adapter_config.json"),
                "{err}"
            );
        }
    }
}
