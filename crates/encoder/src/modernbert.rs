//! ModernBERT (`model_type` `modernbert`), in the manner of transformers'
//! `modeling_modernbert.py`: pre-norm layers with rotary positions, attention global in
//! every `global_attn_every_n_layers`-th layer (from layer 0) and within a sliding window of
//! `local_attention / 2` tokens on each side in the others, a GeGLU feed-forward block, no
//! biases unless configured, and a final norm.
//!
//! A layer: `h += Wo(attention(rope(Wqkv(attn_norm(h)))))`, then
//! `h += mlp.Wo(gelu(a) ⊙ g)` with `a | g = mlp.Wi(mlp_norm(h))`; layer 0 has no
//! `attn_norm` (the embeddings' norm precedes it). The two attention kinds differ in their
//! rotary base (`global_rope_theta`, `local_rope_theta`) and their mask: the window is a rule
//! the backend applies ([`AttentionMask::windowed`]), never a `[seq, seq]` tensor on Flex.
//! Rotary tables are built once per forward pass, on the host, for both bases, and applied
//! by the backend ([`KernelBackend::kernel_rotary`]: one parallel pass on Flex).
//!
//! The query, key and value come from one fused projection, `Wqkv`, which is what LoRA
//! adapts by default (PEFT has no default for this family).
//!
//! Configurations come in two forms: the Hub's (`global_attn_every_n_layers`,
//! `global_rope_theta`, `local_rope_theta`) and transformers 5's (`layer_types`,
//! `rope_parameters`); both are read, and both are written back, so the saved file loads in
//! either generation of transformers.

use std::collections::BTreeMap;

use burn::module::Module;
use burn::nn::{Dropout, Embedding, LayerNorm};
use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor, TensorData};
use imdb_lora_kernels::{AttentionMask, KernelBackend, to_dtype};
use imdb_lora_lora::LoraLinear;
use serde::de::Error as _;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::config::{
    AttentionKind, EncoderConfig, Family, FamilyParams, HiddenAct, ModernBertParams, Pooling,
};
use crate::error::EncoderError;
use crate::kernel_ops::KernelOps;
use crate::layers::{
    TransformerLayer, activate, check_input, dropout, fresh_embedding, fresh_linear, fresh_norm,
    layers_precision, norm, run_layers, run_layers_first_token,
};
use crate::weights::Weights;

/// `config.json` of a ModernBERT checkpoint, defaulted as `transformers.ModernBertConfig()`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ModernBertConfig {
    /// `"modernbert"`.
    pub model_type: Option<String>,
    /// Class names the checkpoint was saved from.
    pub architectures: Option<Vec<String>>,
    /// Size of the vocabulary.
    pub vocab_size: usize,
    /// Hidden width.
    pub hidden_size: usize,
    /// Width of each GeGLU half (`mlp.Wi` is twice this).
    pub intermediate_size: usize,
    /// Number of layers.
    pub num_hidden_layers: usize,
    /// Attention heads per layer.
    pub num_attention_heads: usize,
    /// Feed-forward activation.
    pub hidden_activation: HiddenAct,
    /// The longest input the rotary positions were trained for.
    pub max_position_embeddings: usize,
    /// Std of the initialiser.
    pub initializer_range: f64,
    /// LayerNorm epsilon.
    pub norm_eps: f64,
    /// Biases in the layer norms.
    pub norm_bias: bool,
    /// Id of the padding token.
    pub pad_token_id: usize,
    /// Biases in `Wqkv` and `Wo`.
    pub attention_bias: bool,
    /// Dropout on attention probabilities and after `Wo`.
    pub attention_dropout: f64,
    /// transformers 5: each layer's attention (`"full_attention"`, `"sliding_attention"`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub layer_types: Option<Vec<String>>,
    /// transformers 5: the RoPE parameters per attention kind.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rope_parameters: Option<Value>,
    /// The Hub's form: every n-th layer (from 0) is global.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub global_attn_every_n_layers: Option<usize>,
    /// The Hub's form: RoPE base of the global layers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub global_rope_theta: Option<f64>,
    /// The Hub's form: RoPE base of the local layers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub local_rope_theta: Option<f64>,
    /// The whole local window.
    pub local_attention: usize,
    /// Dropout after the embeddings' norm.
    pub embedding_dropout: f64,
    /// Biases in `mlp.Wi` and `mlp.Wo`.
    pub mlp_bias: bool,
    /// Dropout inside the feed-forward block.
    pub mlp_dropout: f64,
    /// `"cls"` or `"mean"`.
    pub classifier_pooling: Pooling,
    /// Dropout before the classifier.
    pub classifier_dropout: f64,
    /// A bias in the head's dense layer.
    pub classifier_bias: bool,
    /// The head's activation.
    pub classifier_activation: HiddenAct,
    /// Class index → name.
    pub id2label: Option<BTreeMap<String, String>>,
    /// Class name → index.
    pub label2id: Option<BTreeMap<String, usize>>,
    /// Number of classes when no `id2label` is given.
    pub num_labels: Option<usize>,
    /// Every other field, kept as read.
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

impl Default for ModernBertConfig {
    fn default() -> Self {
        Self {
            model_type: Some("modernbert".into()),
            architectures: None,
            vocab_size: 50368,
            hidden_size: 768,
            intermediate_size: 1152,
            num_hidden_layers: 22,
            num_attention_heads: 12,
            hidden_activation: HiddenAct::Gelu,
            max_position_embeddings: 8192,
            initializer_range: 0.02,
            norm_eps: 1e-5,
            norm_bias: false,
            pad_token_id: 50283,
            attention_bias: false,
            attention_dropout: 0.0,
            layer_types: None,
            rope_parameters: None,
            global_attn_every_n_layers: None,
            global_rope_theta: None,
            local_rope_theta: None,
            local_attention: 128,
            embedding_dropout: 0.0,
            mlp_bias: false,
            mlp_dropout: 0.0,
            classifier_pooling: Pooling::Cls,
            classifier_dropout: 0.0,
            classifier_bias: false,
            classifier_activation: HiddenAct::Gelu,
            id2label: None,
            label2id: None,
            num_labels: None,
            extra: BTreeMap::new(),
        }
    }
}

/// transformers' default RoPE bases.
const GLOBAL_THETA: f64 = 160_000.0;
const LOCAL_THETA: f64 = 10_000.0;
/// transformers' default `global_attn_every_n_layers`.
const EVERY_N: usize = 3;

/// The RoPE base of `kind` in a transformers-5 `rope_parameters` object, if given.
fn rope_theta(rope: Option<&Value>, kind: &str) -> Result<Option<f64>, serde_json::Error> {
    let Some(entry) = rope.and_then(|r| r.get(kind)) else {
        return Ok(None);
    };
    if let Some(t) = entry.get("rope_type").and_then(Value::as_str)
        && t != "default"
    {
        return Err(serde_json::Error::custom(format!(
            "rope_parameters.{kind}.rope_type {t:?} is not supported (expected \"default\")"
        )));
    }
    Ok(entry.get("rope_theta").and_then(Value::as_f64))
}

/// A ModernBERT `config.json` as an [`EncoderConfig`].
pub(crate) fn config_from_value(value: Value) -> Result<EncoderConfig, serde_json::Error> {
    let c: ModernBertConfig = serde_json::from_value(value)?;
    let layer_kinds = match &c.layer_types {
        Some(types) => types
            .iter()
            .map(|t| match t.as_str() {
                "full_attention" => Ok(AttentionKind::Global),
                "sliding_attention" => Ok(AttentionKind::Local),
                other => Err(serde_json::Error::custom(format!(
                    "layer_types entry {other:?} is not \"full_attention\" or \"sliding_attention\""
                ))),
            })
            .collect::<Result<Vec<_>, _>>()?,
        None => {
            let n = c.global_attn_every_n_layers.unwrap_or(EVERY_N).max(1);
            (0..c.num_hidden_layers)
                .map(|i| {
                    if i % n == 0 {
                        AttentionKind::Global
                    } else {
                        AttentionKind::Local
                    }
                })
                .collect()
        }
    };
    let rope = c.rope_parameters.as_ref();
    let params = ModernBertParams {
        layer_kinds,
        local_attention: c.local_attention,
        global_rope_theta: rope_theta(rope, "full_attention")?
            .or(c.global_rope_theta)
            .unwrap_or(GLOBAL_THETA),
        local_rope_theta: rope_theta(rope, "sliding_attention")?
            .or(c.local_rope_theta)
            .unwrap_or(LOCAL_THETA),
        attention_bias: c.attention_bias,
        mlp_bias: c.mlp_bias,
        norm_bias: c.norm_bias,
        classifier_bias: c.classifier_bias,
        classifier_activation: c.classifier_activation,
        classifier_pooling: c.classifier_pooling,
        embedding_dropout: c.embedding_dropout,
        mlp_dropout: c.mlp_dropout,
    };
    Ok(EncoderConfig {
        family: Family::ModernBert,
        model_type: c.model_type,
        architectures: c.architectures,
        vocab_size: c.vocab_size,
        embedding_size: None,
        hidden_size: c.hidden_size,
        num_hidden_layers: c.num_hidden_layers,
        num_attention_heads: c.num_attention_heads,
        intermediate_size: c.intermediate_size,
        hidden_act: c.hidden_activation,
        hidden_dropout_prob: c.mlp_dropout,
        attention_probs_dropout_prob: c.attention_dropout,
        max_position_embeddings: c.max_position_embeddings,
        type_vocab_size: 0,
        initializer_range: c.initializer_range,
        layer_norm_eps: c.norm_eps,
        pad_token_id: c.pad_token_id,
        position_embedding_type: "absolute".into(),
        classifier_dropout: Some(c.classifier_dropout),
        sinusoidal_pos_embds: false,
        params: FamilyParams::ModernBert(params),
        id2label: c.id2label,
        label2id: c.label2id,
        num_labels: c.num_labels,
        extra: c.extra,
    })
}

/// An [`EncoderConfig`] of this family back in ModernBERT's names, its layer kinds and RoPE
/// bases in both forms (see the module doc).
pub(crate) fn config_to_value(c: &EncoderConfig) -> Result<Value, serde_json::Error> {
    let p = params(c);
    let every_n = (1..=p.layer_kinds.len().max(1)).find(|&n| {
        p.layer_kinds
            .iter()
            .enumerate()
            .all(|(i, k)| (*k == AttentionKind::Global) == (i % n == 0))
    });
    let kind_name = |k: &AttentionKind| match k {
        AttentionKind::Global => "full_attention",
        AttentionKind::Local => "sliding_attention",
    };
    let mut extra = c.extra.clone();
    // Written anew below in both forms, or obsolete names a Hub file may carry.
    for key in ["layer_norm_eps", "position_embedding_type"] {
        extra.remove(key);
    }
    serde_json::to_value(ModernBertConfig {
        model_type: c.model_type.clone(),
        architectures: c.architectures.clone(),
        vocab_size: c.vocab_size,
        hidden_size: c.hidden_size,
        intermediate_size: c.intermediate_size,
        num_hidden_layers: c.num_hidden_layers,
        num_attention_heads: c.num_attention_heads,
        hidden_activation: c.hidden_act,
        max_position_embeddings: c.max_position_embeddings,
        initializer_range: c.initializer_range,
        norm_eps: c.layer_norm_eps,
        norm_bias: p.norm_bias,
        pad_token_id: c.pad_token_id,
        attention_bias: p.attention_bias,
        attention_dropout: c.attention_probs_dropout_prob,
        layer_types: Some(p.layer_kinds.iter().map(|k| kind_name(k).into()).collect()),
        rope_parameters: Some(json!({
            "full_attention": {"rope_type": "default", "rope_theta": p.global_rope_theta},
            "sliding_attention": {"rope_type": "default", "rope_theta": p.local_rope_theta},
        })),
        global_attn_every_n_layers: every_n,
        global_rope_theta: Some(p.global_rope_theta),
        local_rope_theta: Some(p.local_rope_theta),
        local_attention: p.local_attention,
        embedding_dropout: p.embedding_dropout,
        mlp_bias: p.mlp_bias,
        mlp_dropout: p.mlp_dropout,
        classifier_pooling: p.classifier_pooling,
        classifier_dropout: c.classifier_dropout_prob(),
        classifier_bias: p.classifier_bias,
        classifier_activation: p.classifier_activation,
        id2label: c.id2label.clone(),
        label2id: c.label2id.clone(),
        num_labels: c.num_labels,
        extra,
    })
}

/// The configuration's ModernBERT parameters (`ModernBertConfig`'s defaults for a
/// configuration made without them).
pub(crate) fn params(config: &EncoderConfig) -> ModernBertParams {
    match &config.params {
        FamilyParams::ModernBert(p) => p.clone(),
        _ => ModernBertParams {
            layer_kinds: (0..config.num_hidden_layers)
                .map(|i| {
                    if i % EVERY_N == 0 {
                        AttentionKind::Global
                    } else {
                        AttentionKind::Local
                    }
                })
                .collect(),
            local_attention: 128,
            global_rope_theta: GLOBAL_THETA,
            local_rope_theta: LOCAL_THETA,
            attention_bias: false,
            mlp_bias: false,
            norm_bias: false,
            classifier_bias: false,
            classifier_activation: HiddenAct::Gelu,
            classifier_pooling: Pooling::Cls,
            embedding_dropout: 0.0,
            mlp_dropout: 0.0,
        },
    }
}

/// The rotary tables of one base: `cos` and `sin` of `position · θ^(−2i/d)`, each frequency
/// twice (transformers' `cat((freqs, freqs))`), f32 as transformers computes them.
///
/// # Shapes
/// - output: `[seq, head_dim]` each
pub fn rotary_tables<B: Backend>(
    seq: usize,
    head_dim: usize,
    theta: f64,
    device: &B::Device,
) -> (Tensor<B, 2>, Tensor<B, 2>) {
    let half = head_dim / 2;
    // `1 / θ^(arange(0, d, 2) / d)` in f32, as `compute_default_rope_parameters`.
    let inv_freq: Vec<f32> = (0..half)
        .map(|i| 1.0 / (theta as f32).powf((2 * i) as f32 / head_dim as f32))
        .collect();
    let mut cos = Vec::with_capacity(seq * head_dim);
    let mut sin = Vec::with_capacity(seq * head_dim);
    for pos in 0..seq {
        for j in 0..head_dim {
            let angle = pos as f32 * inv_freq[j % half];
            cos.push(angle.cos());
            sin.push(angle.sin());
        }
    }
    let table = |v: Vec<f32>| Tensor::from_data(TensorData::new(v, [seq, head_dim]), device);
    (table(cos), table(sin))
}

/// `attn`: the fused projection, the output projection (fields in snake case, checkpoint
/// keys `Wqkv`, `Wo`).
#[derive(Module, Debug)]
pub struct ModernBertAttention<B: Backend> {
    /// `attn.Wqkv`, `hidden → 3·hidden` (query | key | value).
    pub wqkv: LoraLinear<B>,
    /// `attn.Wo`.
    pub wo: LoraLinear<B>,
    /// Dropout on the probabilities and after `Wo` (`attention_dropout`).
    pub dropout: Dropout,
    /// Number of heads.
    #[module(skip)]
    pub num_attention_heads: usize,
}

/// `mlp`: GeGLU (checkpoint keys `Wi`, `Wo`).
#[derive(Module, Debug)]
pub struct ModernBertMlp<B: Backend> {
    /// `mlp.Wi`, `hidden → 2·intermediate` (input | gate).
    pub wi: LoraLinear<B>,
    /// `mlp.Wo`, `intermediate → hidden`.
    pub wo: LoraLinear<B>,
    /// The activation on the input half.
    #[module(skip)]
    pub activation: HiddenAct,
    /// `mlp_dropout`.
    pub dropout: Dropout,
}

/// One layer.
#[derive(Module, Debug)]
pub struct ModernBertLayer<B: Backend> {
    /// `attn_norm` (none in layer 0).
    pub attn_norm: Option<LayerNorm<B>>,
    /// `attn`.
    pub attn: ModernBertAttention<B>,
    /// `mlp_norm`.
    pub mlp_norm: LayerNorm<B>,
    /// `mlp`.
    pub mlp: ModernBertMlp<B>,
    /// Global or local attention.
    #[module(skip)]
    pub kind: AttentionKind,
    /// The norms' epsilon.
    #[module(skip)]
    pub norm_eps: f64,
}

/// What ModernBERT's layers share in one forward pass.
#[derive(Debug, Clone)]
pub struct ModernBertContext<B: Backend> {
    /// The padding mask of the global layers.
    pub global: AttentionMask<B>,
    /// The same with the local window.
    pub local: AttentionMask<B>,
    /// Rotary `(cos, sin)` of the global base.
    pub global_rope: (Tensor<B, 2>, Tensor<B, 2>),
    /// Rotary `(cos, sin)` of the local base.
    pub local_rope: (Tensor<B, 2>, Tensor<B, 2>),
}

impl<B: Backend> ModernBertLayer<B> {
    fn init(i: usize, config: &EncoderConfig, p: &ModernBertParams, device: &B::Device) -> Self {
        let (h, n, std) = (
            config.hidden_size,
            config.intermediate_size,
            config.initializer_range,
        );
        let lin = |d_in, d_out, bias: bool| {
            let mut l = fresh_linear(d_in, d_out, std, device);
            if !bias {
                l.bias = None;
            }
            LoraLinear::new(l)
        };
        let norm = || unbiased(fresh_norm(h, config.layer_norm_eps, device), p.norm_bias);
        Self {
            attn_norm: (i > 0).then(norm),
            attn: ModernBertAttention {
                wqkv: lin(h, 3 * h, p.attention_bias),
                wo: lin(h, h, p.attention_bias),
                dropout: dropout(config.attention_probs_dropout_prob),
                num_attention_heads: config.num_attention_heads,
            },
            mlp_norm: norm(),
            mlp: ModernBertMlp {
                wi: lin(h, 2 * n, p.mlp_bias),
                wo: lin(n, h, p.mlp_bias),
                activation: config.hidden_act,
                dropout: dropout(p.mlp_dropout),
            },
            kind: p
                .layer_kinds
                .get(i)
                .copied()
                .unwrap_or(AttentionKind::Global),
            norm_eps: config.layer_norm_eps,
        }
    }

    fn load(
        w: &Weights,
        i: usize,
        config: &EncoderConfig,
        p: &ModernBertParams,
        device: &B::Device,
    ) -> Result<Self, EncoderError> {
        let (h, n, eps) = (
            config.hidden_size,
            config.intermediate_size,
            config.layer_norm_eps,
        );
        let at = |name: &str| format!("layers.{i}.{name}");
        let lin =
            |name: &str, d_in, d_out, bias| w.projection_with(&at(name), d_in, d_out, bias, device);
        let norm = |name: &str| w.layer_norm_with(&at(name), h, eps, p.norm_bias, device);
        Ok(Self {
            attn_norm: (i > 0).then(|| norm("attn_norm")).transpose()?,
            attn: ModernBertAttention {
                wqkv: lin("attn.Wqkv", h, 3 * h, p.attention_bias)?,
                wo: lin("attn.Wo", h, h, p.attention_bias)?,
                dropout: dropout(config.attention_probs_dropout_prob),
                num_attention_heads: config.num_attention_heads,
            },
            mlp_norm: norm("mlp_norm")?,
            mlp: ModernBertMlp {
                wi: lin("mlp.Wi", h, 2 * n, p.mlp_bias)?,
                wo: lin("mlp.Wo", n, h, p.mlp_bias)?,
                activation: config.hidden_act,
                dropout: dropout(p.mlp_dropout),
            },
            kind: p
                .layer_kinds
                .get(i)
                .copied()
                .unwrap_or(AttentionKind::Global),
            norm_eps: eps,
        })
    }
}

/// `norm` without its shift when `bias` is false.
fn unbiased<B: Backend>(mut norm: LayerNorm<B>, bias: bool) -> LayerNorm<B> {
    if !bias {
        norm.beta = None;
    }
    norm
}

impl<B: Backend> TransformerLayer<B> for ModernBertLayer<B> {
    type Context = ModernBertContext<B>;

    fn forward_from(
        &self,
        queries: Tensor<B, 3>,
        hidden: Tensor<B, 3>,
        context: &ModernBertContext<B>,
    ) -> Tensor<B, 3>
    where
        B: KernelBackend,
    {
        let a = &self.attn;
        let heads = a.num_attention_heads;
        let [batch, n_queries, width] = queries.dims();
        let seq = hidden.dims()[1];
        let normed = match &self.attn_norm {
            Some(n) => norm(n, self.norm_eps, hidden),
            None => hidden,
        };
        // One product for all three (the fused weight); the queries are the leading rows.
        let qkv = a.wqkv.forward_with(normed, KernelOps);
        let q = qkv.clone().slice([0..batch, 0..n_queries, 0..width]);
        let k = qkv.clone().slice([0..batch, 0..seq, width..2 * width]);
        let v = qkv.slice([0..batch, 0..seq, 2 * width..3 * width]);
        let (mask, rope) = match self.kind {
            AttentionKind::Global => (&context.global, &context.global_rope),
            AttentionKind::Local => (&context.local, &context.local_rope),
        };
        let rotate = |x| B::kernel_rotary(x, rope.0.clone(), rope.1.clone(), heads);
        let (q, k) = (rotate(q), rotate(k));
        let attended = B::kernel_attention(q, k, v, heads, mask, a.dropout.prob);
        let out = B::kernel_dropout(a.wo.forward_with(attended, KernelOps), a.dropout.prob);
        let hidden = queries + out;
        let m = &self.mlp;
        let inner = m.wi.forward_with(
            norm(&self.mlp_norm, self.norm_eps, hidden.clone()),
            KernelOps,
        );
        let gated = match m.activation {
            // ModernBERT's GELU: the backend's fused GeGLU.
            HiddenAct::Gelu => B::kernel_geglu(inner),
            other => {
                let n = inner.dims()[2] / 2;
                let input = inner.clone().slice([0..batch, 0..n_queries, 0..n]);
                let gate = inner.slice([0..batch, 0..n_queries, n..2 * n]);
                activate(other, input) * gate
            }
        };
        let gated = B::kernel_dropout(gated, m.dropout.prob);
        hidden + m.wo.forward_with(gated, KernelOps)
    }

    fn projections(&self) -> Vec<(&'static str, &LoraLinear<B>)> {
        vec![
            ("attn.Wqkv", &self.attn.wqkv),
            ("attn.Wo", &self.attn.wo),
            ("mlp.Wi", &self.mlp.wi),
            ("mlp.Wo", &self.mlp.wo),
        ]
    }

    fn map_projections<E>(
        mut self,
        mut f: impl FnMut(&'static str, LoraLinear<B>) -> Result<LoraLinear<B>, E>,
    ) -> Result<Self, E> {
        self.attn.wqkv = f("attn.Wqkv", self.attn.wqkv)?;
        self.attn.wo = f("attn.Wo", self.attn.wo)?;
        self.mlp.wi = f("mlp.Wi", self.mlp.wi)?;
        self.mlp.wo = f("mlp.Wo", self.mlp.wo)?;
        Ok(self)
    }
}

/// `embeddings`: the token table, its norm, dropout (no positions: they are rotary).
#[derive(Module, Debug)]
pub struct ModernBertEmbeddings<B: Backend> {
    /// `embeddings.tok_embeddings`.
    pub tok_embeddings: Embedding<B>,
    /// `embeddings.norm`.
    pub norm: LayerNorm<B>,
    /// `embedding_dropout`.
    pub dropout: Dropout,
}

/// The bare encoder (transformers' `ModernBertModel`).
#[derive(Module, Debug)]
pub struct ModernBertModel<B: Backend> {
    /// `embeddings`.
    pub embeddings: ModernBertEmbeddings<B>,
    /// `layers.N`.
    pub layers: Vec<ModernBertLayer<B>>,
    /// `final_norm`.
    pub final_norm: LayerNorm<B>,
    /// What the forward pass needs beside the weights.
    #[module(skip)]
    pub settings: ModernBertSettings,
}

/// The sizes and bases the forward pass builds its context from.
#[derive(Debug, Clone, PartialEq)]
pub struct ModernBertSettings {
    /// The longest input.
    pub max_position_embeddings: usize,
    /// Width of one head.
    pub head_dim: usize,
    /// Norm epsilon.
    pub norm_eps: f64,
    /// The ModernBERT parameters.
    pub params: ModernBertParams,
}

impl<B: Backend> ModernBertModel<B> {
    /// A randomly initialised model (frozen, like a loaded one).
    pub fn init(config: &EncoderConfig, device: &B::Device) -> Self {
        let p = params(config);
        let (h, eps) = (config.hidden_size, config.layer_norm_eps);
        Self {
            embeddings: ModernBertEmbeddings {
                tok_embeddings: fresh_embedding(
                    config.vocab_size,
                    h,
                    config.initializer_range,
                    device,
                ),
                norm: unbiased(fresh_norm(h, eps, device), p.norm_bias),
                dropout: dropout(p.embedding_dropout),
            },
            layers: (0..config.num_hidden_layers)
                .map(|i| ModernBertLayer::init(i, config, &p, device))
                .collect(),
            final_norm: unbiased(fresh_norm(h, eps, device), p.norm_bias),
            settings: settings(config, p),
        }
    }

    /// From weights whose prefix points at the encoder (`""` or `"model."`).
    pub fn load(
        w: &Weights,
        config: &EncoderConfig,
        device: &B::Device,
    ) -> Result<Self, EncoderError> {
        let p = params(config);
        let (h, eps) = (config.hidden_size, config.layer_norm_eps);
        let embeddings = ModernBertEmbeddings {
            tok_embeddings: w.embedding(
                "embeddings.tok_embeddings",
                config.vocab_size,
                h,
                device,
            )?,
            norm: w.layer_norm_with("embeddings.norm", h, eps, p.norm_bias, device)?,
            dropout: dropout(p.embedding_dropout),
        };
        let layers = (0..config.num_hidden_layers)
            .map(|i| ModernBertLayer::load(w, i, config, &p, device))
            .collect::<Result<_, _>>()?;
        Ok(Self {
            embeddings,
            layers,
            final_norm: w.layer_norm_with("final_norm", h, eps, p.norm_bias, device)?,
            settings: settings(config, p),
        })
    }

    /// Every token's final state (after `final_norm`, transformers' `last_hidden_state`).
    ///
    /// # Shapes
    /// - input_ids, attention_mask: `[batch, seq]`
    /// - output: `[batch, seq, hidden]`
    pub fn forward(
        &self,
        input_ids: Tensor<B, 2, Int>,
        attention_mask: Tensor<B, 2, Int>,
    ) -> Result<Tensor<B, 3>, EncoderError>
    where
        B: KernelBackend,
    {
        let (hidden, context) = self.embed(input_ids, attention_mask)?;
        let hidden = run_layers(&self.layers, hidden, &context);
        Ok(norm(&self.final_norm, self.settings.norm_eps, hidden))
    }

    /// What the head reads: the first token's final state (`cls` pooling, the last layer at
    /// that position alone) or the mean over the kept tokens (`mean`).
    ///
    /// # Shapes
    /// - input_ids, attention_mask: `[batch, seq]`
    /// - output: `[batch, hidden]`
    pub fn pooled(
        &self,
        input_ids: Tensor<B, 2, Int>,
        attention_mask: Tensor<B, 2, Int>,
    ) -> Result<Tensor<B, 2>, EncoderError>
    where
        B: KernelBackend,
    {
        match self.settings.params.classifier_pooling {
            Pooling::Cls => {
                let (hidden, context) = self.embed(input_ids, attention_mask)?;
                let first = run_layers_first_token(&self.layers, hidden, &context);
                Ok(norm(&self.final_norm, self.settings.norm_eps, first))
            }
            Pooling::Mean => {
                let [batch, seq] = attention_mask.dims();
                let hidden = self.forward(input_ids, attention_mask.clone())?;
                let keep = to_dtype(attention_mask.float(), hidden.dtype());
                let width = hidden.dims()[2];
                let total = (hidden * keep.clone().reshape([batch, seq, 1]))
                    .sum_dim(1)
                    .reshape([batch, width]);
                Ok(total / keep.sum_dim(1))
            }
        }
    }

    fn embed(
        &self,
        input_ids: Tensor<B, 2, Int>,
        attention_mask: Tensor<B, 2, Int>,
    ) -> Result<(Tensor<B, 3>, ModernBertContext<B>), EncoderError>
    where
        B: KernelBackend,
    {
        let s = &self.settings;
        check_input(&input_ids, &attention_mask, s.max_position_embeddings)?;
        let [_, seq] = input_ids.dims();
        let device = input_ids.device();
        let e = &self.embeddings;
        let hidden = B::kernel_dropout(
            norm(&e.norm, s.norm_eps, e.tok_embeddings.forward(input_ids)),
            e.dropout.prob,
        );
        let global = AttentionMask::new(attention_mask);
        let context = ModernBertContext {
            local: global.windowed(s.params.half_window()),
            global,
            global_rope: rotary_tables(seq, s.head_dim, s.params.global_rope_theta, &device),
            local_rope: rotary_tables(seq, s.head_dim, s.params.local_rope_theta, &device),
        };
        Ok((
            to_dtype(hidden, layers_precision(self.layers()).dtype()),
            context,
        ))
    }

    /// The encoder's layers.
    pub fn layers(&self) -> &[ModernBertLayer<B>] {
        &self.layers
    }
}

fn settings(config: &EncoderConfig, params: ModernBertParams) -> ModernBertSettings {
    ModernBertSettings {
        max_position_embeddings: config.max_position_embeddings,
        head_dim: config.head_dim(),
        norm_eps: config.layer_norm_eps,
        params,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hub_and_transformers_5_forms_read_alike_and_both_are_written() {
        let hub = config_from_value(json!({
            "num_hidden_layers": 4, "global_attn_every_n_layers": 2,
            "global_rope_theta": 1000.0, "local_rope_theta": 50.0,
        }))
        .unwrap();
        let new = config_from_value(json!({
            "num_hidden_layers": 4,
            "layer_types": ["full_attention", "sliding_attention", "full_attention", "sliding_attention"],
            "rope_parameters": {
                "full_attention": {"rope_type": "default", "rope_theta": 1000.0},
                "sliding_attention": {"rope_type": "default", "rope_theta": 50.0}
            },
        }))
        .unwrap();
        assert_eq!(hub.params, new.params);
        let written = config_to_value(&hub).unwrap();
        assert_eq!(written["global_attn_every_n_layers"], 2);
        assert_eq!(written["layer_types"][1], "sliding_attention");
        assert_eq!(
            written["rope_parameters"]["sliding_attention"]["rope_theta"],
            50.0
        );
        assert_eq!(written["local_rope_theta"], 50.0);
        let err = config_from_value(json!({
            "rope_parameters": {"full_attention": {"rope_type": "yarn", "rope_theta": 1.0}},
        }))
        .unwrap_err();
        assert!(err.to_string().contains("yarn"), "{err}");
    }
}
