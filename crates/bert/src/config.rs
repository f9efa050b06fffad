//! `BertConfig`: the Hub's `config.json` for BERT models, defaulted as `transformers` does.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::BertError;

/// The activation used in the feed-forward block.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum HiddenAct {
    /// Exact GELU, `x·Φ(x)` with the error function (transformers' `"gelu"`).
    #[serde(rename = "gelu")]
    Gelu,
    /// Tanh approximation of GELU (`"gelu_new"`, `"gelu_pytorch_tanh"`).
    #[serde(alias = "gelu_new", rename = "gelu_pytorch_tanh")]
    GeluTanh,
    /// `max(0, x)`.
    #[serde(rename = "relu")]
    Relu,
}

/// A BERT configuration as found in a Hub `config.json`.
///
/// Unknown fields are ignored; missing ones take `transformers.BertConfig`'s defaults
/// (those of bert-base-uncased). Label maps follow transformers: `id2label` wins, else
/// `num_labels` generic labels `LABEL_i`, else two labels.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct BertConfig {
    /// `"bert"` for BERT checkpoints.
    pub model_type: Option<String>,
    /// Class names the checkpoint was saved from, e.g. `["BertModel"]`.
    pub architectures: Option<Vec<String>>,
    /// Size of the WordPiece vocabulary.
    pub vocab_size: usize,
    /// Width of every hidden state.
    pub hidden_size: usize,
    /// Number of encoder layers.
    pub num_hidden_layers: usize,
    /// Attention heads per layer; must divide `hidden_size`.
    pub num_attention_heads: usize,
    /// Width of the feed-forward block.
    pub intermediate_size: usize,
    /// Feed-forward activation.
    pub hidden_act: HiddenAct,
    /// Dropout on embeddings and sub-layer outputs.
    pub hidden_dropout_prob: f64,
    /// Dropout on attention probabilities.
    pub attention_probs_dropout_prob: f64,
    /// Longest sequence the position table covers.
    pub max_position_embeddings: usize,
    /// Number of segment (token type) ids.
    pub type_vocab_size: usize,
    /// Std of the normal initialiser for freshly created weights.
    pub initializer_range: f64,
    /// LayerNorm epsilon.
    pub layer_norm_eps: f64,
    /// Id of the padding token.
    pub pad_token_id: usize,
    /// Only `"absolute"` is supported.
    pub position_embedding_type: String,
    /// Dropout before the classifier; `None` means `hidden_dropout_prob`.
    pub classifier_dropout: Option<f64>,
    /// Class index → name, keys are decimal strings as in the JSON.
    pub id2label: Option<BTreeMap<String, String>>,
    /// Class name → index.
    pub label2id: Option<BTreeMap<String, usize>>,
    /// Number of classes when no `id2label` is given.
    pub num_labels: Option<usize>,
}

impl Default for BertConfig {
    fn default() -> Self {
        Self {
            model_type: Some("bert".into()),
            architectures: None,
            vocab_size: 30522,
            hidden_size: 768,
            num_hidden_layers: 12,
            num_attention_heads: 12,
            intermediate_size: 3072,
            hidden_act: HiddenAct::Gelu,
            hidden_dropout_prob: 0.1,
            attention_probs_dropout_prob: 0.1,
            max_position_embeddings: 512,
            type_vocab_size: 2,
            initializer_range: 0.02,
            layer_norm_eps: 1e-12,
            pad_token_id: 0,
            position_embedding_type: "absolute".into(),
            classifier_dropout: None,
            id2label: None,
            label2id: None,
            num_labels: None,
        }
    }
}

/// Upper bounds on a `config.json`'s sizes: far above any BERT published (bert-large: vocab
/// 30,522, hidden 1,024, 24 layers, 512 positions; multilingual vocabularies ≈ 120k), low
/// enough that nothing sized from them can ask for an impossible allocation.
pub const MAX_VOCAB: usize = 1 << 21;
/// Bound on `hidden_size` and `num_attention_heads` (`intermediate_size`: 8× this).
pub const MAX_WIDTH: usize = 1 << 14;
/// Bound on `num_hidden_layers`.
pub const MAX_LAYERS: usize = 1 << 10;
/// Bound on `max_position_embeddings`.
pub const MAX_POSITIONS: usize = 1 << 16;
/// Bound on `type_vocab_size`.
pub const MAX_TYPES: usize = 1 << 10;
/// Bound on the number of labels.
pub const MAX_LABELS: usize = 1 << 16;
/// Bound on the elements of any one weight tensor a config implies (8 GiB of f32).
pub const MAX_TENSOR_ELEMENTS: usize = 1 << 31;

impl BertConfig {
    /// Reads and validates a `config.json`.
    pub fn from_file(path: &Path) -> Result<Self, BertError> {
        let text = std::fs::read_to_string(path).map_err(|source| BertError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let config: Self = serde_json::from_str(&text).map_err(|source| BertError::Config {
            path: path.to_path_buf(),
            source,
        })?;
        config.validate(path)?;
        Ok(config)
    }

    /// Checks that the configuration describes a BERT this crate can build.
    pub fn validate(&self, path: &Path) -> Result<(), BertError> {
        let is_bert_arch = self
            .architectures
            .as_ref()
            .is_some_and(|a| a.iter().any(|n| n.starts_with("Bert")));
        match self.model_type.as_deref() {
            Some("bert") => {}
            None if is_bert_arch => {}
            other => {
                return Err(BertError::NotBert {
                    path: path.to_path_buf(),
                    found: other.unwrap_or("<no model_type>").to_string(),
                });
            }
        }
        let invalid = |reason: String| BertError::InvalidConfig {
            path: path.to_path_buf(),
            reason,
        };
        if self.num_attention_heads == 0
            || !self.hidden_size.is_multiple_of(self.num_attention_heads)
        {
            return Err(invalid(format!(
                "hidden_size {} is not a multiple of num_attention_heads {}",
                self.hidden_size, self.num_attention_heads
            )));
        }
        // Sizes size allocations: each is bounded before anything is built from it, so an
        // absurd config.json is an error naming the key, not an aborted allocation.
        for (name, value, limit) in [
            ("vocab_size", self.vocab_size, MAX_VOCAB),
            ("hidden_size", self.hidden_size, MAX_WIDTH),
            ("num_hidden_layers", self.num_hidden_layers, MAX_LAYERS),
            ("num_attention_heads", self.num_attention_heads, MAX_WIDTH),
            ("intermediate_size", self.intermediate_size, MAX_WIDTH * 8),
            (
                "max_position_embeddings",
                self.max_position_embeddings,
                MAX_POSITIONS,
            ),
            ("type_vocab_size", self.type_vocab_size, MAX_TYPES),
            ("num_labels", self.num_labels(), MAX_LABELS),
        ] {
            if !(1..=limit).contains(&value) {
                return Err(invalid(format!("{name} = {value} is outside 1..={limit}")));
            }
        }
        for (name, rows, cols) in [
            (
                "vocab_size × hidden_size",
                self.vocab_size,
                self.hidden_size,
            ),
            (
                "intermediate_size × hidden_size",
                self.intermediate_size,
                self.hidden_size,
            ),
            (
                "num_labels × hidden_size",
                self.num_labels(),
                self.hidden_size,
            ),
        ] {
            if rows
                .checked_mul(cols)
                .is_none_or(|n| n > MAX_TENSOR_ELEMENTS)
            {
                return Err(invalid(format!(
                    "{name} = {rows} × {cols} exceeds {MAX_TENSOR_ELEMENTS} elements in one tensor"
                )));
            }
        }
        if self.pad_token_id >= self.vocab_size {
            return Err(invalid(format!(
                "pad_token_id {} is not below vocab_size {}",
                self.pad_token_id, self.vocab_size
            )));
        }
        if self.position_embedding_type != "absolute" {
            return Err(invalid(format!(
                "position_embedding_type {:?} is not supported (expected \"absolute\")",
                self.position_embedding_type
            )));
        }
        for (name, p) in [
            ("hidden_dropout_prob", self.hidden_dropout_prob),
            (
                "attention_probs_dropout_prob",
                self.attention_probs_dropout_prob,
            ),
            ("classifier_dropout", self.classifier_dropout.unwrap_or(0.0)),
        ] {
            if !(0.0..1.0).contains(&p) {
                return Err(invalid(format!(
                    "{name} = {p} is not a probability in [0, 1)"
                )));
            }
        }
        if self.num_labels() == 0 {
            return Err(invalid("the model must have at least one label".into()));
        }
        for key in self.id2label.iter().flat_map(|m| m.keys()) {
            if key
                .parse::<usize>()
                .map_or(true, |i| i >= self.num_labels())
            {
                return Err(invalid(format!(
                    "id2label key {key:?} is not an index below {}",
                    self.num_labels()
                )));
            }
        }
        Ok(())
    }

    /// Width of one attention head.
    pub fn head_dim(&self) -> usize {
        self.hidden_size / self.num_attention_heads
    }

    /// Number of classes of the classification head.
    pub fn num_labels(&self) -> usize {
        match (&self.id2label, self.num_labels) {
            (Some(map), _) if !map.is_empty() => map.len(),
            (_, Some(n)) => n,
            _ => 2,
        }
    }

    /// Name of class `index` (`LABEL_i` when the config names none).
    pub fn label_name(&self, index: usize) -> String {
        self.id2label
            .as_ref()
            .and_then(|m| m.get(&index.to_string()).cloned())
            .unwrap_or_else(|| format!("LABEL_{index}"))
    }

    /// Sets the classification labels, keeping `id2label`, `label2id` and `num_labels` in step.
    pub fn with_labels(mut self, names: &[&str]) -> Self {
        self.id2label = Some(
            names
                .iter()
                .enumerate()
                .map(|(i, n)| (i.to_string(), (*n).to_string()))
                .collect(),
        );
        self.label2id = Some(
            names
                .iter()
                .enumerate()
                .map(|(i, n)| ((*n).to_string(), i))
                .collect(),
        );
        self.num_labels = None;
        self
    }

    /// Dropout before the classifier.
    pub fn classifier_dropout_prob(&self) -> f64 {
        self.classifier_dropout.unwrap_or(self.hidden_dropout_prob)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Result<BertConfig, BertError> {
        let c: BertConfig = serde_json::from_str(json).map_err(|source| BertError::Config {
            path: "config.json".into(),
            source,
        })?;
        c.validate(Path::new("config.json"))?;
        Ok(c)
    }

    #[test]
    fn minilm_config_parses_with_unknown_fields() {
        let c = parse(
            r#"{"_name_or_path": "x", "architectures": ["BertModel"], "gradient_checkpointing": false,
            "hidden_act": "gelu", "hidden_size": 384, "intermediate_size": 1536, "model_type": "bert",
            "num_attention_heads": 12, "num_hidden_layers": 6, "use_cache": true}"#,
        )
        .unwrap();
        assert_eq!(
            (c.hidden_size, c.head_dim(), c.num_hidden_layers),
            (384, 32, 6)
        );
        assert_eq!((c.vocab_size, c.layer_norm_eps), (30522, 1e-12));
        assert_eq!(c.num_labels(), 2);
        assert_eq!(c.label_name(1), "LABEL_1");
    }

    #[test]
    fn labels_follow_transformers_precedence() {
        let c = parse(r#"{"model_type": "bert", "id2label": {"0": "neg", "1": "pos"}}"#).unwrap();
        assert_eq!((c.num_labels(), c.label_name(1)), (2, "pos".to_string()));
        let c = parse(r#"{"model_type": "bert", "num_labels": 3}"#).unwrap();
        assert_eq!(c.num_labels(), 3);
        let c = BertConfig::default().with_labels(&["neg", "pos"]);
        assert_eq!(c.label2id.as_ref().unwrap()["pos"], 1);
    }

    #[test]
    fn non_bert_and_inconsistent_configs_are_refused() {
        let err = parse(r#"{"model_type": "gpt2"}"#).unwrap_err();
        assert!(matches!(err, BertError::NotBert { .. }), "{err}");
        assert!(err.to_string().contains("gpt2"));
        let err = parse(r#"{"model_type": "bert", "hidden_size": 100}"#).unwrap_err();
        assert!(err.to_string().contains("num_attention_heads"), "{err}");
        let err = parse(r#"{"model_type": "bert", "hidden_act": "swish"}"#).unwrap_err();
        assert!(err.to_string().contains("config.json"), "{err}");
        let err = parse(r#"{"model_type": "bert", "position_embedding_type": "relative_key"}"#)
            .unwrap_err();
        assert!(err.to_string().contains("relative_key"), "{err}");
        let err = parse(r#"{"model_type": "bert", "id2label": {"0": "a", "7": "b"}}"#).unwrap_err();
        assert!(err.to_string().contains("\"7\""), "{err}");
    }

    #[test]
    fn absurd_sizes_are_refused_naming_the_key_before_anything_is_built() {
        for (json, key) in [
            (
                r#"{"model_type": "bert", "num_labels": 1000000000}"#,
                "num_labels",
            ),
            (
                r#"{"model_type": "bert", "hidden_size": 1200000000, "num_attention_heads": 1}"#,
                "hidden_size",
            ),
            (
                r#"{"model_type": "bert", "num_hidden_layers": 0}"#,
                "num_hidden_layers",
            ),
            (
                r#"{"model_type": "bert", "max_position_embeddings": 4294967296}"#,
                "max_position_embeddings",
            ),
            (r#"{"model_type": "bert", "vocab_size": 0}"#, "vocab_size"),
            (
                r#"{"model_type": "bert", "type_vocab_size": 0}"#,
                "type_vocab_size",
            ),
            (
                r#"{"model_type": "bert", "vocab_size": 2000000, "hidden_size": 12288}"#,
                "vocab_size × hidden_size",
            ),
            (
                r#"{"model_type": "bert", "pad_token_id": 30522}"#,
                "pad_token_id",
            ),
        ] {
            let err = parse(json).unwrap_err().to_string();
            assert!(
                err.contains(key) && err.contains("config.json"),
                "{json}: {err}"
            );
        }
        // bert-large's sizes pass.
        parse(r#"{"model_type": "bert", "hidden_size": 1024, "num_attention_heads": 16, "num_hidden_layers": 24, "intermediate_size": 4096}"#).unwrap();
    }

    #[test]
    fn approximate_gelu_names_are_accepted() {
        for name in ["gelu_new", "gelu_pytorch_tanh"] {
            let c = parse(&format!(
                r#"{{"model_type": "bert", "hidden_act": "{name}"}}"#
            ))
            .unwrap();
            assert_eq!(c.hidden_act, HiddenAct::GeluTanh);
        }
    }
}
