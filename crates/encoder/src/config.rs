//! `EncoderConfig`: a Hub `config.json` of any supported encoder family, defaulted as
//! `transformers` defaults that family's configuration class.
//!
//! The struct uses BERT's field names, which RoBERTa, XLM-RoBERTa, CamemBERT and ELECTRA share
//! (ELECTRA adds `embedding_size`); DistilBERT's own names (`dim`, `n_layers`, …) are mapped
//! onto them on reading and back on writing by [`crate::distilbert`]; `config_file.rs` reads
//! and writes the file for every family. Fields this crate does not use are kept as read
//! (`extra`), so a saved `config.json` carries them on.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::EncoderError;

/// An encoder architecture this crate implements, chosen by `config.json`'s `model_type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum Family {
    /// `bert` (and BERT-shaped checkpoints such as all-MiniLM-L6-v2).
    #[default]
    Bert,
    /// `roberta`, `xlm-roberta`, `camembert`: BERT's encoder, positions counted from
    /// `pad_token_id + 1`, one token type, a dense → tanh → out_proj head.
    Roberta,
    /// `electra` (discriminators): embeddings of their own width, projected to the hidden
    /// size; a dense → GELU → out_proj head.
    Electra,
    /// `distilbert`: no token types, its own module names, a pre_classifier → ReLU head.
    DistilBert,
    /// `deberta-v2` (DeBERTa-v2 and -v3): disentangled attention over log-bucketed relative
    /// positions, a `ContextPooler` → classifier head.
    DebertaV2,
    /// `modernbert`: pre-norm layers with rotary positions, alternating global and
    /// sliding-window attention, GeGLU; a dense → GELU → norm head over `[CLS]` or the mean.
    ModernBert,
}

/// Every supported `model_type`, with its family and transformers' sequence-classification
/// class.
pub const MODEL_TYPES: [(&str, Family, &str); 8] = [
    ("bert", Family::Bert, "BertForSequenceClassification"),
    (
        "roberta",
        Family::Roberta,
        "RobertaForSequenceClassification",
    ),
    (
        "xlm-roberta",
        Family::Roberta,
        "XLMRobertaForSequenceClassification",
    ),
    (
        "camembert",
        Family::Roberta,
        "CamembertForSequenceClassification",
    ),
    (
        "electra",
        Family::Electra,
        "ElectraForSequenceClassification",
    ),
    (
        "distilbert",
        Family::DistilBert,
        "DistilBertForSequenceClassification",
    ),
    (
        "deberta-v2",
        Family::DebertaV2,
        "DebertaV2ForSequenceClassification",
    ),
    (
        "modernbert",
        Family::ModernBert,
        "ModernBertForSequenceClassification",
    ),
];

impl Family {
    /// The family of a `model_type`, if supported.
    pub fn of_model_type(model_type: &str) -> Option<Self> {
        MODEL_TYPES
            .iter()
            .find(|(t, _, _)| *t == model_type)
            .map(|(_, f, _)| *f)
    }

    /// The attribute holding the encoder in transformers' `*ForSequenceClassification`
    /// (`bert`, `roberta`, `electra`, `distilbert`): the prefix of its checkpoint keys and
    /// of PEFT's adapter keys.
    pub fn base_model_prefix(self) -> &'static str {
        match self {
            Self::Bert => "bert",
            Self::Roberta => "roberta",
            Self::Electra => "electra",
            Self::DistilBert => "distilbert",
            Self::DebertaV2 => "deberta",
            Self::ModernBert => "model",
        }
    }

    /// The word-embedding table's key below the encoder (where a checkpoint's layout is
    /// recognised).
    pub fn word_embeddings_key(self) -> &'static str {
        match self {
            Self::ModernBert => "embeddings.tok_embeddings.weight",
            _ => "embeddings.word_embeddings.weight",
        }
    }

    /// Whether the family's embeddings may have a token-type table (`type_vocab_size` > 0
    /// required for BERT, RoBERTa and ELECTRA; DeBERTa's is optional).
    pub fn min_token_types(self) -> usize {
        match self {
            Self::DistilBert | Self::DebertaV2 | Self::ModernBert => 0,
            _ => 1,
        }
    }

    /// The default LoRA targets: PEFT's (`TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING`)
    /// for bert, roberta, xlm-roberta, electra and deberta-v2 (`query_proj`, `value_proj`);
    /// PEFT has none for camembert and distilbert, which get the same attention query and
    /// value (`q_lin`, `v_lin`), nor for modernbert, whose query and value live in one fused
    /// projection: `Wqkv`, what ModernBERT's LoRA users target.
    pub fn default_lora_targets(self) -> Vec<String> {
        let names: &[&str] = match self {
            Self::DistilBert => &["q_lin", "v_lin"],
            Self::DebertaV2 => &["query_proj", "value_proj"],
            Self::ModernBert => &["Wqkv"],
            _ => &["query", "value"],
        };
        names.iter().map(|n| (*n).to_string()).collect()
    }

    /// The names `model_type` takes, for messages.
    pub fn supported_model_types() -> String {
        MODEL_TYPES
            .iter()
            .map(|(t, _, _)| *t)
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Settings of the families whose configurations hold more than BERT's fields.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum FamilyParams {
    /// BERT, RoBERTa, ELECTRA, DistilBERT.
    #[default]
    None,
    /// DeBERTa-v2 / -v3.
    DebertaV2(DebertaV2Params),
    /// ModernBERT.
    ModernBert(ModernBertParams),
}

/// DeBERTa-v2's relative-attention settings (`DebertaV2Config`'s names).
#[derive(Debug, Clone, PartialEq)]
pub struct DebertaV2Params {
    /// Whether attention has relative-position terms (`relative_attention`).
    pub relative_attention: bool,
    /// `max_relative_positions` as configured (< 1: `max_position_embeddings`).
    pub max_relative_positions: i64,
    /// `position_buckets` (≤ 0: no log buckets).
    pub position_buckets: i64,
    /// Content-to-position term (`"c2p"` in `pos_att_type`).
    pub c2p: bool,
    /// Position-to-content term (`"p2c"` in `pos_att_type`).
    pub p2c: bool,
    /// The position projections are the layer's own key and query (`share_att_key`).
    pub share_att_key: bool,
    /// LayerNorm over the relative embeddings (`"layer_norm"` in `norm_rel_ebd`).
    pub norm_rel_ebd: bool,
    /// Absolute position embeddings added to the input (`position_biased_input`).
    pub position_biased_input: bool,
    /// The pooler's activation (`pooler_hidden_act`).
    pub pooler_hidden_act: HiddenAct,
    /// Dropout before the pooler's dense layer (`pooler_dropout`).
    pub pooler_dropout: f64,
}

impl Default for DebertaV2Params {
    /// `DebertaV2Config()`'s: no relative attention, absolute positions.
    fn default() -> Self {
        Self {
            relative_attention: false,
            max_relative_positions: -1,
            position_buckets: -1,
            c2p: false,
            p2c: false,
            share_att_key: false,
            norm_rel_ebd: false,
            position_biased_input: true,
            pooler_hidden_act: HiddenAct::Gelu,
            pooler_dropout: 0.0,
        }
    }
}

impl DebertaV2Params {
    /// Half the number of relative-embedding rows: `position_buckets` when bucketed, else
    /// the maximum relative distance ([`Self::max_relative`]).
    pub fn att_span(&self, max_position_embeddings: usize) -> usize {
        if self.position_buckets > 0 {
            self.position_buckets as usize
        } else {
            self.max_relative(max_position_embeddings)
        }
    }

    /// The maximum relative distance: `max_relative_positions`, else (< 1) the model's
    /// `max_position_embeddings`.
    pub fn max_relative(&self, max_position_embeddings: usize) -> usize {
        if self.max_relative_positions < 1 {
            max_position_embeddings
        } else {
            self.max_relative_positions as usize
        }
    }

    fn validate(&self, config: &EncoderConfig) -> Result<(), String> {
        if self.relative_attention
            && !(1..=MAX_POSITIONS).contains(&self.att_span(config.max_position_embeddings))
        {
            return Err(format!(
                "position_buckets {} / max_relative_positions {} give no relative span in 1..={MAX_POSITIONS}",
                self.position_buckets, self.max_relative_positions
            ));
        }
        if self.position_buckets > 0 && self.max_relative(config.max_position_embeddings) <= 1 {
            return Err(format!(
                "max_relative_positions {} is too small for log buckets",
                self.max_relative_positions
            ));
        }
        Ok(())
    }
}

/// What kind of attention a ModernBERT layer has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttentionKind {
    /// Every token (`"full_attention"`).
    Global,
    /// Tokens within half of `local_attention` (`"sliding_attention"`).
    Local,
}

/// How ModernBERT's classifier pools the last hidden states (`classifier_pooling`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Pooling {
    /// The first token's state.
    Cls,
    /// The mean over the tokens the attention mask keeps.
    Mean,
}

/// ModernBERT's settings beyond BERT's fields (`ModernBertConfig`'s names).
#[derive(Debug, Clone, PartialEq)]
pub struct ModernBertParams {
    /// Each layer's attention (from `layer_types`, or `global_attn_every_n_layers`).
    pub layer_kinds: Vec<AttentionKind>,
    /// The whole window of local attention (`local_attention`): half on each side.
    pub local_attention: usize,
    /// RoPE base of the global layers.
    pub global_rope_theta: f64,
    /// RoPE base of the local layers.
    pub local_rope_theta: f64,
    /// Biases in the attention projections (`attention_bias`).
    pub attention_bias: bool,
    /// Biases in the feed-forward projections (`mlp_bias`).
    pub mlp_bias: bool,
    /// Biases in the layer norms (`norm_bias`).
    pub norm_bias: bool,
    /// A bias in the head's dense layer (`classifier_bias`).
    pub classifier_bias: bool,
    /// The head's activation (`classifier_activation`).
    pub classifier_activation: HiddenAct,
    /// `classifier_pooling`.
    pub classifier_pooling: Pooling,
    /// Dropout after the embeddings' norm (`embedding_dropout`).
    pub embedding_dropout: f64,
    /// Dropout inside the feed-forward block (`mlp_dropout`).
    pub mlp_dropout: f64,
}

impl ModernBertParams {
    /// Half the local window: a local layer's token attends to those within this distance.
    pub fn half_window(&self) -> usize {
        self.local_attention / 2
    }

    fn validate(&self, config: &EncoderConfig) -> Result<(), String> {
        if self.layer_kinds.len() != config.num_hidden_layers {
            return Err(format!(
                "layer_types has {} entries for num_hidden_layers {}",
                self.layer_kinds.len(),
                config.num_hidden_layers
            ));
        }
        if !config.head_dim().is_multiple_of(2) {
            return Err(format!(
                "the head size {} is odd; rotary positions need an even one",
                config.head_dim()
            ));
        }
        for (name, theta) in [
            ("global_rope_theta", self.global_rope_theta),
            ("local_rope_theta", self.local_rope_theta),
        ] {
            if !(theta.is_finite() && theta > 1.0) {
                return Err(format!("{name} = {theta} is not a RoPE base above 1"));
            }
        }
        for (name, p) in [
            ("embedding_dropout", self.embedding_dropout),
            ("mlp_dropout", self.mlp_dropout),
        ] {
            if !(0.0..1.0).contains(&p) {
                return Err(format!("{name} = {p} is not a probability in [0, 1)"));
            }
        }
        Ok(())
    }
}

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

/// An encoder configuration as found in a Hub `config.json`.
///
/// Missing fields take the defaults of the family's transformers configuration class; label
/// maps follow transformers: `id2label` wins, else `num_labels` generic labels `LABEL_i`,
/// else two labels.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct EncoderConfig {
    /// The architecture, from `model_type` (not a field of the file itself).
    #[serde(skip)]
    pub family: Family,
    /// `"bert"`, `"roberta"`, `"xlm-roberta"`, `"camembert"`, `"electra"` or `"distilbert"`.
    pub model_type: Option<String>,
    /// Class names the checkpoint was saved from, e.g. `["BertModel"]`.
    pub architectures: Option<Vec<String>>,
    /// Size of the vocabulary.
    pub vocab_size: usize,
    /// Width of the embedding tables (ELECTRA's `embedding_size`; `None`: `hidden_size`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub embedding_size: Option<usize>,
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
    /// Rows of the position table.
    pub max_position_embeddings: usize,
    /// Number of segment (token type) ids (DistilBERT: none, 0).
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
    /// DistilBERT's fixed sinusoidal position table (computed when the checkpoint lacks it).
    #[serde(skip)]
    pub sinusoidal_pos_embds: bool,
    /// What DeBERTa-v2 and ModernBERT configure beyond these fields.
    #[serde(skip)]
    pub params: FamilyParams,
    /// Class index → name, keys are decimal strings as in the JSON.
    pub id2label: Option<BTreeMap<String, String>>,
    /// Class name → index.
    pub label2id: Option<BTreeMap<String, usize>>,
    /// Number of classes when no `id2label` is given.
    pub num_labels: Option<usize>,
    /// Every other field of the file, kept as read and written back.
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

impl Default for EncoderConfig {
    /// `transformers.BertConfig()`'s defaults (bert-base-uncased's shapes).
    fn default() -> Self {
        Self {
            family: Family::Bert,
            model_type: Some("bert".into()),
            architectures: None,
            vocab_size: 30522,
            embedding_size: None,
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
            sinusoidal_pos_embds: false,
            params: FamilyParams::None,
            id2label: None,
            label2id: None,
            num_labels: None,
            extra: BTreeMap::new(),
        }
    }
}

/// Upper bounds on a `config.json`'s sizes: far above any encoder published (bert-large:
/// hidden 1,024, 24 layers; XLM-R's vocabulary 250,002), low enough that nothing sized from
/// them can ask for an impossible allocation.
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

/// Fields a saved `config.json` must not carry over from the file it was read from: the
/// writer sets them anew (or transformers would read a stale dtype).
pub(crate) const NOT_CARRIED: [&str; 4] = [
    "torch_dtype",
    "dtype",
    "_name_or_path",
    "transformers_version",
];

impl EncoderConfig {
    /// Checks that the configuration describes an encoder this crate can build.
    pub fn validate(&self, path: &Path) -> Result<(), EncoderError> {
        let invalid = |reason: String| EncoderError::InvalidConfig {
            path: path.to_path_buf(),
            reason,
        };
        if let Some(t) = self.model_type.as_deref()
            && Family::of_model_type(t) != Some(self.family)
        {
            return Err(EncoderError::UnsupportedModelType {
                path: path.to_path_buf(),
                found: t.to_string(),
                supported: Family::supported_model_types(),
            });
        }
        if self.num_attention_heads == 0
            || !self.hidden_size.is_multiple_of(self.num_attention_heads)
        {
            return Err(invalid(format!(
                "hidden_size {} is not a multiple of num_attention_heads {}",
                self.hidden_size, self.num_attention_heads
            )));
        }
        let min_types = self.family.min_token_types();
        // Sizes size allocations: each is bounded before anything is built from it, so an
        // absurd config.json is an error naming the key, not an aborted allocation.
        for (name, value, low, limit) in [
            ("vocab_size", self.vocab_size, 1, MAX_VOCAB),
            ("hidden_size", self.hidden_size, 1, MAX_WIDTH),
            ("embedding_size", self.embedding_width(), 1, MAX_WIDTH),
            ("num_hidden_layers", self.num_hidden_layers, 1, MAX_LAYERS),
            (
                "num_attention_heads",
                self.num_attention_heads,
                1,
                MAX_WIDTH,
            ),
            (
                "intermediate_size",
                self.intermediate_size,
                1,
                MAX_WIDTH * 8,
            ),
            (
                "max_position_embeddings",
                self.max_position_embeddings,
                1,
                MAX_POSITIONS,
            ),
            (
                "type_vocab_size",
                self.type_vocab_size,
                min_types,
                MAX_TYPES,
            ),
            ("num_labels", self.num_labels(), 1, MAX_LABELS),
        ] {
            if !(low..=limit).contains(&value) {
                return Err(invalid(format!(
                    "{name} = {value} is outside {low}..={limit}"
                )));
            }
        }
        for (name, rows, cols) in [
            (
                "vocab_size × embedding_size",
                self.vocab_size,
                self.embedding_width(),
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
        if self.family == Family::Roberta && self.max_position_embeddings <= self.pad_token_id + 1 {
            return Err(invalid(format!(
                "max_position_embeddings {} leaves no position after pad_token_id {} + 1 \
                 (RoBERTa counts positions from there)",
                self.max_position_embeddings, self.pad_token_id
            )));
        }
        match &self.params {
            FamilyParams::DebertaV2(d) => d.validate(self).map_err(invalid)?,
            FamilyParams::ModernBert(m) => m.validate(self).map_err(invalid)?,
            FamilyParams::None => {}
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

    /// Width of the embedding tables (ELECTRA's `embedding_size`, else `hidden_size`).
    pub fn embedding_width(&self) -> usize {
        self.embedding_size.unwrap_or(self.hidden_size)
    }

    /// The longest input, special tokens included, the position table covers: RoBERTa's
    /// positions start after `pad_token_id` (514 rows → 512 tokens); ModernBERT's rotary
    /// positions reach `max_position_embeddings` (8,192).
    pub fn max_sequence_length(&self) -> usize {
        match self.family {
            Family::Roberta => self.max_position_embeddings - self.pad_token_id - 1,
            _ => self.max_position_embeddings,
        }
    }

    /// transformers' sequence-classification class for this configuration.
    pub fn classification_architecture(&self) -> &'static str {
        let model_type = self.model_type.as_deref();
        MODEL_TYPES
            .iter()
            .find(|(t, f, _)| Some(*t) == model_type && *f == self.family)
            .or_else(|| MODEL_TYPES.iter().find(|(_, f, _)| *f == self.family))
            .map_or("BertForSequenceClassification", |(_, _, a)| *a)
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
