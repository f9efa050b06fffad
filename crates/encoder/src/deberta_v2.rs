//! DeBERTa-v2 and DeBERTa-v3 (`model_type` `deberta-v2`), in the manner of transformers'
//! `modeling_deberta_v2.py`: BERT's post-norm layer (its residual blocks are
//! [`crate::bert::BertResidual`] and [`crate::bert::BertIntermediate`], as transformers copies
//! them) around disentangled self-attention.
//!
//! The attention scores are `q·kᵀ/√(d·f) + c2p + p2c`, with `f` = 1 + the number of position
//! terms in `pos_att_type`:
//! - content-to-position `c2p[i, j] = qᵢ · pkᵟ⁽ⁱ ʲ⁾ / √(d·f)`, `pk = key_proj(rel)` (or
//!   `pos_key_proj` without `share_att_key`);
//! - position-to-content `p2c[i, j] = kⱼ · pqᵟ⁽ⁱ ʲ⁾ / √(d·f)`, `pq = query_proj(rel)` (or
//!   `pos_query_proj`);
//!
//! where `rel` is the relative-embedding table (`encoder.rel_embeddings`, after
//! `encoder.LayerNorm` with `norm_rel_ebd = "layer_norm"`) and `δ(i, j)` the row of
//! `bucket(i − j)`: exact below `position_buckets / 2`, log-spaced beyond, clamped to the
//! table ([`relative_index`]). The index is built once per forward pass, on the host; each
//! layer computes `q·pkᵀ` and `k·pqᵀ` (`[batch, heads, seq, 2·span]`), the backend gathers
//! them into one `[batch, heads, seq, seq]` term ([`KernelBackend::kernel_relative_terms`],
//! one pass on Flex) and its fused attention adds that inside its softmax pass
//! ([`KernelBackend::kernel_attention_biased`]).
//!
//! Differences from BERT besides attention: no absolute positions when
//! `position_biased_input` is false (v3), `type_vocab_size` 0, and the embeddings of padding
//! positions zeroed after their LayerNorm. transformers also masks padded *query* rows; their
//! states are never read (every real token's keys exclude padding), so the states of real
//! tokens and the logits are the same here, and padded rows differ.
//!
//! The head (`ContextPooler` + classifier) is in [`crate::heads`]. `conv_kernel_size` (the
//! convolution of DeBERTa-v2-xlarge) and an `embedding_size` other than `hidden_size` are
//! refused.

use burn::module::Module;
use burn::nn::{Dropout, Embedding, LayerNorm};
use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor};
use imdb_lora_kernels::{
    AttentionMask, KernelBackend, RelativeIndex, ScoreBias, split_heads, to_dtype,
};
use imdb_lora_lora::LoraLinear;
use serde::de::Error as _;
use serde_json::{Map, Value};

use crate::bert::{BertIntermediate, BertResidual};
use crate::config::{DebertaV2Params, EncoderConfig, Family, FamilyParams, HiddenAct};
use crate::error::EncoderError;
use crate::kernel_ops::KernelOps;
use crate::layers::{
    TransformerLayer, check_input, dropout, fresh_embedding, fresh_linear, fresh_norm,
    layers_precision, norm, run_layers, run_layers_first_token,
};
use crate::weights::Weights;

/// `transformers.DebertaV2Config()`'s defaults (deberta-v2-xlarge's shapes; checkpoints set
/// their own).
pub fn default_config() -> EncoderConfig {
    EncoderConfig {
        family: Family::DebertaV2,
        model_type: Some("deberta-v2".into()),
        vocab_size: 128_100,
        hidden_size: 1536,
        num_hidden_layers: 24,
        num_attention_heads: 24,
        intermediate_size: 6144,
        type_vocab_size: 0,
        layer_norm_eps: 1e-7,
        params: FamilyParams::DebertaV2(DebertaV2Params::default()),
        ..EncoderConfig::default()
    }
}

/// The `DebertaV2Config` keys [`DebertaV2Params`] holds (taken out of `extra` on reading,
/// written back from the parameters).
const PARAM_KEYS: [&str; 11] = [
    "relative_attention",
    "max_relative_positions",
    "position_buckets",
    "pos_att_type",
    "share_att_key",
    "norm_rel_ebd",
    "position_biased_input",
    "pooler_hidden_act",
    "pooler_dropout",
    "pooler_hidden_size",
    "cls_dropout",
];

/// A DeBERTa-v2 `config.json` (already merged over [`default_config`]'s BERT-named fields)
/// as an [`EncoderConfig`].
pub(crate) fn config_from_value(value: Value) -> Result<EncoderConfig, serde_json::Error> {
    let mut c: EncoderConfig = serde_json::from_value(value)?;
    // Taken out of `extra`: written back from the parameters, never twice.
    let taken: std::collections::BTreeMap<&str, Value> = PARAM_KEYS
        .iter()
        .filter_map(|&k| c.extra.remove(k).filter(|v| !v.is_null()).map(|v| (k, v)))
        .collect();
    let get = |key: &str| taken.get(key).cloned();
    let flag = |key: &str, default: bool| -> Result<bool, serde_json::Error> {
        get(key).map_or(Ok(default), serde_json::from_value)
    };
    let int = |key: &str| -> Result<i64, serde_json::Error> {
        get(key).map_or(Ok(-1), serde_json::from_value)
    };
    // `pos_att_type`: a list, or the legacy `"p2c|c2p"` string.
    let pos_att_type: Vec<String> = match get("pos_att_type") {
        None => Vec::new(),
        Some(Value::String(s)) => s.split('|').map(|t| t.trim().to_lowercase()).collect(),
        Some(v) => serde_json::from_value(v)?,
    };
    if let Some(bad) = pos_att_type
        .iter()
        .find(|t| !["c2p", "p2c"].contains(&t.as_str()))
    {
        return Err(serde_json::Error::custom(format!(
            "pos_att_type {bad:?} is not supported (expected \"c2p\" and/or \"p2c\")"
        )));
    }
    let norm_rel_ebd: String =
        get("norm_rel_ebd").map_or(Ok("none".into()), serde_json::from_value)?;
    let params = DebertaV2Params {
        relative_attention: flag("relative_attention", false)?,
        max_relative_positions: int("max_relative_positions")?,
        position_buckets: int("position_buckets")?,
        c2p: pos_att_type.iter().any(|t| t == "c2p"),
        p2c: pos_att_type.iter().any(|t| t == "p2c"),
        share_att_key: flag("share_att_key", false)?,
        norm_rel_ebd: norm_rel_ebd
            .split('|')
            .any(|t| t.trim().eq_ignore_ascii_case("layer_norm")),
        position_biased_input: flag("position_biased_input", true)?,
        pooler_hidden_act: get("pooler_hidden_act")
            .map_or(Ok(HiddenAct::Gelu), serde_json::from_value)?,
        pooler_dropout: get("pooler_dropout").map_or(Ok(0.0), serde_json::from_value)?,
    };
    if let Some(size) = get("pooler_hidden_size")
        && size.as_u64() != Some(c.hidden_size as u64)
    {
        return Err(serde_json::Error::custom(format!(
            "pooler_hidden_size {size} differs from hidden_size {} (not supported)",
            c.hidden_size
        )));
    }
    for key in ["conv_kernel_size"] {
        if c.extra
            .get(key)
            .and_then(Value::as_u64)
            .is_some_and(|k| k > 0)
        {
            return Err(serde_json::Error::custom(format!(
                "{key} > 0 (DeBERTa-v2-xlarge's convolution layer) is not supported"
            )));
        }
    }
    if c.embedding_size.is_some_and(|e| e != c.hidden_size) {
        return Err(serde_json::Error::custom(
            "embedding_size other than hidden_size (embed_proj) is not supported",
        ));
    }
    // transformers: `cls_dropout`, else `hidden_dropout_prob`.
    c.classifier_dropout = get("cls_dropout").map(serde_json::from_value).transpose()?;
    c.family = Family::DebertaV2;
    c.params = FamilyParams::DebertaV2(params);
    Ok(c)
}

/// An [`EncoderConfig`] of this family back in `DebertaV2Config`'s names.
pub(crate) fn config_to_value(c: &EncoderConfig) -> Result<Value, serde_json::Error> {
    let mut value = serde_json::to_value(c)?;
    let Value::Object(map) = &mut value else {
        return Ok(value);
    };
    // BERT's names this family does not have.
    for key in [
        "classifier_dropout",
        "position_embedding_type",
        "embedding_size",
    ] {
        map.remove(key);
    }
    if let Some(p) = c.classifier_dropout {
        map.insert("cls_dropout".into(), p.into());
    }
    if let FamilyParams::DebertaV2(d) = &c.params {
        insert_params(map, d, c.hidden_size)?;
    }
    Ok(value)
}

fn insert_params(
    map: &mut Map<String, Value>,
    d: &DebertaV2Params,
    hidden: usize,
) -> Result<(), serde_json::Error> {
    let mut pos_att_type = Vec::new();
    if d.p2c {
        pos_att_type.push("p2c");
    }
    if d.c2p {
        pos_att_type.push("c2p");
    }
    map.insert("relative_attention".into(), d.relative_attention.into());
    map.insert(
        "max_relative_positions".into(),
        d.max_relative_positions.into(),
    );
    map.insert("position_buckets".into(), d.position_buckets.into());
    map.insert("pos_att_type".into(), serde_json::to_value(pos_att_type)?);
    map.insert("share_att_key".into(), d.share_att_key.into());
    let norm = if d.norm_rel_ebd { "layer_norm" } else { "none" };
    map.insert("norm_rel_ebd".into(), norm.into());
    map.insert(
        "position_biased_input".into(),
        d.position_biased_input.into(),
    );
    map.insert(
        "pooler_hidden_act".into(),
        serde_json::to_value(d.pooler_hidden_act)?,
    );
    map.insert("pooler_dropout".into(), d.pooler_dropout.into());
    map.insert("pooler_hidden_size".into(), hidden.into());
    Ok(())
}

/// The configuration's DeBERTa parameters (`DebertaV2Config`'s defaults for a configuration
/// made without them).
pub(crate) fn params(config: &EncoderConfig) -> DebertaV2Params {
    match &config.params {
        FamilyParams::DebertaV2(d) => d.clone(),
        _ => DebertaV2Params::default(),
    }
}

/// transformers' `make_log_bucket_position` for one relative position, in f32 as PyTorch
/// computes it (a boundary of `ceil` depends on the rounding).
pub fn log_bucket(relative: i64, bucket_size: i64, max_position: i64) -> i64 {
    let mid = bucket_size / 2;
    if relative.abs() <= mid {
        // transformers maps |r| < mid to mid − 1 only to keep the unused log finite.
        return relative;
    }
    let abs = relative.abs() as f32;
    let (mid_f, max_f) = (mid as f32, (max_position - 1) as f32);
    let log_pos = ((abs / mid_f).ln() / (max_f / mid_f).ln() * (mid - 1) as f32).ceil() + mid_f;
    log_pos as i64 * relative.signum()
}

/// `δ(i, j)` for queries `0..queries` and keys `0..keys`: the row of the relative-embedding
/// table for `i − j` (bucketed, shifted by `span`, clamped to `0..2·span`), row-major.
pub fn relative_index(
    queries: usize,
    keys: usize,
    params: &DebertaV2Params,
    max_position_embeddings: usize,
) -> Vec<i64> {
    let span = params.att_span(max_position_embeddings) as i64;
    let max_relative = params.max_relative(max_position_embeddings) as i64;
    (0..queries as i64)
        .flat_map(|i| {
            (0..keys as i64).map(move |j| {
                let r = i - j;
                let r = if params.position_buckets > 0 {
                    log_bucket(r, params.position_buckets, max_relative)
                } else {
                    r
                };
                (r + span).clamp(0, 2 * span - 1)
            })
        })
        .collect()
}

/// Word (+ position, + token type) embeddings, LayerNorm, padding zeroed, dropout.
#[derive(Module, Debug)]
pub struct DebertaV2Embeddings<B: Backend> {
    /// `embeddings.word_embeddings`.
    pub word_embeddings: Embedding<B>,
    /// `embeddings.position_embeddings` (only with `position_biased_input`).
    pub position_embeddings: Option<Embedding<B>>,
    /// `embeddings.token_type_embeddings` (only with `type_vocab_size` > 0).
    pub token_type_embeddings: Option<Embedding<B>>,
    /// `embeddings.LayerNorm`.
    pub layer_norm: LayerNorm<B>,
    /// Its epsilon.
    #[module(skip)]
    pub layer_norm_eps: f64,
    /// Hidden dropout.
    pub dropout: Dropout,
}

impl<B: Backend> DebertaV2Embeddings<B> {
    fn init(config: &EncoderConfig, d: &DebertaV2Params, device: &B::Device) -> Self {
        let (h, std) = (config.hidden_size, config.initializer_range);
        Self {
            word_embeddings: fresh_embedding(config.vocab_size, h, std, device),
            position_embeddings: d
                .position_biased_input
                .then(|| fresh_embedding(config.max_position_embeddings, h, std, device)),
            token_type_embeddings: (config.type_vocab_size > 0)
                .then(|| fresh_embedding(config.type_vocab_size, h, std, device)),
            layer_norm: fresh_norm(h, config.layer_norm_eps, device),
            layer_norm_eps: config.layer_norm_eps,
            dropout: dropout(config.hidden_dropout_prob),
        }
    }

    fn load(
        w: &Weights,
        config: &EncoderConfig,
        d: &DebertaV2Params,
        device: &B::Device,
    ) -> Result<Self, EncoderError> {
        let h = config.hidden_size;
        Ok(Self {
            word_embeddings: w.embedding(
                "embeddings.word_embeddings",
                config.vocab_size,
                h,
                device,
            )?,
            position_embeddings: d
                .position_biased_input
                .then(|| {
                    w.embedding(
                        "embeddings.position_embeddings",
                        config.max_position_embeddings,
                        h,
                        device,
                    )
                })
                .transpose()?,
            token_type_embeddings: (config.type_vocab_size > 0)
                .then(|| {
                    w.embedding(
                        "embeddings.token_type_embeddings",
                        config.type_vocab_size,
                        h,
                        device,
                    )
                })
                .transpose()?,
            layer_norm: w.layer_norm("embeddings.LayerNorm", h, config.layer_norm_eps, device)?,
            layer_norm_eps: config.layer_norm_eps,
            dropout: dropout(config.hidden_dropout_prob),
        })
    }

    /// # Shapes
    /// - input_ids, token_type_ids, attention_mask: `[batch, seq]`
    /// - output: `[batch, seq, hidden]`
    pub fn forward(
        &self,
        input_ids: Tensor<B, 2, Int>,
        token_type_ids: Tensor<B, 2, Int>,
        attention_mask: Tensor<B, 2, Int>,
    ) -> Tensor<B, 3>
    where
        B: KernelBackend,
    {
        let [batch, seq] = input_ids.dims();
        let device = input_ids.device();
        let mut x = self.word_embeddings.forward(input_ids);
        if let Some(table) = &self.position_embeddings {
            let positions = Tensor::<B, 1, Int>::arange(0..seq as i64, &device).unsqueeze();
            x = x + table.forward(positions);
        }
        if let Some(table) = &self.token_type_embeddings {
            x = x + table.forward(token_type_ids);
        }
        let x = norm(&self.layer_norm, self.layer_norm_eps, x);
        let keep = attention_mask.float().reshape([batch, seq, 1]);
        B::kernel_dropout(x * keep, self.dropout.prob)
    }
}

/// Disentangled self-attention (`attention.self`).
#[derive(Module, Debug)]
pub struct DisentangledSelfAttention<B: Backend> {
    /// `query_proj`.
    pub query_proj: LoraLinear<B>,
    /// `key_proj`.
    pub key_proj: LoraLinear<B>,
    /// `value_proj`.
    pub value_proj: LoraLinear<B>,
    /// `pos_key_proj` (c2p without `share_att_key`).
    pub pos_key_proj: Option<LoraLinear<B>>,
    /// `pos_query_proj` (p2c without `share_att_key`).
    pub pos_query_proj: Option<LoraLinear<B>>,
    /// Dropout on the attention probabilities.
    pub dropout: Dropout,
    /// Dropout on the relative embeddings (`pos_dropout`, hidden dropout).
    pub pos_dropout: Dropout,
    /// Number of heads.
    #[module(skip)]
    pub num_attention_heads: usize,
    /// Content-to-position term.
    #[module(skip)]
    pub c2p: bool,
    /// Position-to-content term.
    #[module(skip)]
    pub p2c: bool,
}

impl<B: Backend> DisentangledSelfAttention<B> {
    /// `1/√(head_dim · (1 + terms))`, the factor on every score.
    fn scale(&self, head_dim: usize) -> f64 {
        let factor = 1 + usize::from(self.c2p) + usize::from(self.p2c);
        1.0 / ((head_dim * factor) as f64).sqrt()
    }

    /// `c2p + p2c` for the queries at positions `0..queries`, scaled.
    ///
    /// # Shapes
    /// - q: `[batch, queries, hidden]`, k: `[batch, seq, hidden]`
    /// - output: `[batch, heads, queries, seq]`
    fn position_terms(
        &self,
        q: &Tensor<B, 3>,
        k: &Tensor<B, 3>,
        relative: &Relative<B>,
        scale: f64,
    ) -> Option<Tensor<B, 4>>
    where
        B: KernelBackend,
    {
        let heads = self.num_attention_heads;
        let [batch, queries, _] = q.dims();
        let rel = B::kernel_dropout(relative.embeddings.clone(), self.pos_dropout.prob);
        let [rows, width] = rel.dims();
        // `[1, rows, hidden]` → `[batch, heads, rows, head_dim]`, a broadcast view.
        let per_head = |t: Tensor<B, 2>| {
            split_heads(t.reshape([1, rows, width]), heads).expand([
                batch,
                heads,
                rows,
                width / heads,
            ])
        };
        // The two products with the relative table, `[batch, heads, queries | seq, 2·span]`;
        // the backend gathers them by `δ` into one term.
        let c2p = self.c2p.then(|| {
            let proj = self.pos_key_proj.as_ref().unwrap_or(&self.key_proj);
            let pos_key = per_head(proj.forward_with(rel.clone(), KernelOps));
            split_heads(q.clone(), heads).matmul(pos_key.swap_dims(2, 3))
        });
        let p2c = self.p2c.then(|| {
            let proj = self.pos_query_proj.as_ref().unwrap_or(&self.query_proj);
            let pos_query = per_head(proj.forward_with(rel, KernelOps));
            split_heads(k.clone(), heads).matmul(pos_query.swap_dims(2, 3))
        });
        B::kernel_relative_terms(c2p, p2c, &relative.index, queries, scale)
    }

    /// # Shapes
    /// - queries: `[batch, queries, hidden]`, hidden: `[batch, seq, hidden]`
    /// - output: `[batch, queries, hidden]`
    pub fn attend(
        &self,
        queries: Tensor<B, 3>,
        hidden: Tensor<B, 3>,
        context: &DebertaContext<B>,
    ) -> Tensor<B, 3>
    where
        B: KernelBackend,
    {
        let q = self.query_proj.forward_with(queries, KernelOps);
        let k = self.key_proj.forward_with(hidden.clone(), KernelOps);
        let v = self.value_proj.forward_with(hidden, KernelOps);
        let heads = self.num_attention_heads;
        let [batch, queries, width] = q.dims();
        let seq = k.dims()[1];
        let scale = self.scale(width / heads);
        let terms = context
            .relative
            .as_ref()
            .and_then(|r| self.position_terms(&q, &k, r, scale))
            .unwrap_or_else(|| Tensor::zeros([batch, heads, queries, seq], &q.device()));
        B::kernel_attention_biased(
            q,
            k,
            v,
            heads,
            &context.mask,
            ScoreBias { terms, scale },
            self.dropout.prob,
        )
    }
}

/// Self-attention followed by its output block (`attention`).
#[derive(Module, Debug)]
pub struct DebertaV2Attention<B: Backend> {
    /// `attention.self`.
    pub self_attention: DisentangledSelfAttention<B>,
    /// `attention.output`.
    pub output: BertResidual<B>,
}

/// One layer.
#[derive(Module, Debug)]
pub struct DebertaV2Layer<B: Backend> {
    /// `attention`.
    pub attention: DebertaV2Attention<B>,
    /// `intermediate`.
    pub intermediate: BertIntermediate<B>,
    /// `output`.
    pub output: BertResidual<B>,
}

impl<B: Backend> DebertaV2Layer<B> {
    fn init(config: &EncoderConfig, d: &DebertaV2Params, device: &B::Device) -> Self {
        let (h, i, std) = (
            config.hidden_size,
            config.intermediate_size,
            config.initializer_range,
        );
        let lin = |d_in, d_out| LoraLinear::new(fresh_linear(d_in, d_out, std, device));
        let relative = d.relative_attention && !d.share_att_key;
        Self {
            attention: DebertaV2Attention {
                self_attention: DisentangledSelfAttention {
                    query_proj: lin(h, h),
                    key_proj: lin(h, h),
                    value_proj: lin(h, h),
                    pos_key_proj: (relative && d.c2p).then(|| lin(h, h)),
                    pos_query_proj: (relative && d.p2c).then(|| lin(h, h)),
                    dropout: dropout(config.attention_probs_dropout_prob),
                    pos_dropout: dropout(config.hidden_dropout_prob),
                    num_attention_heads: config.num_attention_heads,
                    c2p: d.c2p,
                    p2c: d.p2c,
                },
                output: BertResidual::init(h, config, device),
            },
            intermediate: BertIntermediate {
                dense: lin(h, i),
                activation: config.hidden_act,
            },
            output: BertResidual::init(i, config, device),
        }
    }

    fn load(
        w: &Weights,
        p: &str,
        config: &EncoderConfig,
        d: &DebertaV2Params,
        device: &B::Device,
    ) -> Result<Self, EncoderError> {
        let (h, i) = (config.hidden_size, config.intermediate_size);
        let lin =
            |name: &str, d_in, d_out| w.projection(&format!("{p}.{name}"), d_in, d_out, device);
        let relative = d.relative_attention && !d.share_att_key;
        Ok(Self {
            attention: DebertaV2Attention {
                self_attention: DisentangledSelfAttention {
                    query_proj: lin("attention.self.query_proj", h, h)?,
                    key_proj: lin("attention.self.key_proj", h, h)?,
                    value_proj: lin("attention.self.value_proj", h, h)?,
                    pos_key_proj: (relative && d.c2p)
                        .then(|| lin("attention.self.pos_key_proj", h, h))
                        .transpose()?,
                    pos_query_proj: (relative && d.p2c)
                        .then(|| lin("attention.self.pos_query_proj", h, h))
                        .transpose()?,
                    dropout: dropout(config.attention_probs_dropout_prob),
                    pos_dropout: dropout(config.hidden_dropout_prob),
                    num_attention_heads: config.num_attention_heads,
                    c2p: d.c2p,
                    p2c: d.p2c,
                },
                output: BertResidual::load(w, &format!("{p}.attention.output"), h, config, device)?,
            },
            intermediate: BertIntermediate {
                dense: lin("intermediate.dense", h, i)?,
                activation: config.hidden_act,
            },
            output: BertResidual::load(w, &format!("{p}.output"), i, config, device)?,
        })
    }
}

/// The relative positions every layer of one forward pass shares.
#[derive(Debug, Clone)]
pub struct Relative<B: Backend> {
    /// The relative-embedding table after its LayerNorm, `[2·span, hidden]`.
    pub embeddings: Tensor<B, 2>,
    /// `δ(i, j)`, `[seq (queries), seq (keys)]`.
    pub index: RelativeIndex<B>,
}

/// What DeBERTa's layers share in one forward pass.
#[derive(Debug, Clone)]
pub struct DebertaContext<B: Backend> {
    /// The padding mask.
    pub mask: AttentionMask<B>,
    /// The relative positions (`relative_attention`).
    pub relative: Option<Relative<B>>,
}

impl<B: Backend> TransformerLayer<B> for DebertaV2Layer<B> {
    type Context = DebertaContext<B>;

    fn forward_from(
        &self,
        queries: Tensor<B, 3>,
        hidden: Tensor<B, 3>,
        context: &DebertaContext<B>,
    ) -> Tensor<B, 3>
    where
        B: KernelBackend,
    {
        let attended = self.attention.output.forward(
            self.attention
                .self_attention
                .attend(queries.clone(), hidden, context),
            queries,
        );
        let expanded = self.intermediate.forward(attended.clone());
        self.output.forward(expanded, attended)
    }

    fn projections(&self) -> Vec<(&'static str, &LoraLinear<B>)> {
        let a = &self.attention.self_attention;
        let mut out = vec![
            ("attention.self.query_proj", &a.query_proj),
            ("attention.self.key_proj", &a.key_proj),
            ("attention.self.value_proj", &a.value_proj),
        ];
        if let Some(p) = &a.pos_key_proj {
            out.push(("attention.self.pos_key_proj", p));
        }
        if let Some(p) = &a.pos_query_proj {
            out.push(("attention.self.pos_query_proj", p));
        }
        out.extend([
            ("attention.output.dense", &self.attention.output.dense),
            ("intermediate.dense", &self.intermediate.dense),
            ("output.dense", &self.output.dense),
        ]);
        out
    }

    fn map_projections<E>(
        mut self,
        mut f: impl FnMut(&'static str, LoraLinear<B>) -> Result<LoraLinear<B>, E>,
    ) -> Result<Self, E> {
        let a = &mut self.attention.self_attention;
        a.query_proj = f("attention.self.query_proj", a.query_proj.clone())?;
        a.key_proj = f("attention.self.key_proj", a.key_proj.clone())?;
        a.value_proj = f("attention.self.value_proj", a.value_proj.clone())?;
        a.pos_key_proj = a
            .pos_key_proj
            .take()
            .map(|p| f("attention.self.pos_key_proj", p))
            .transpose()?;
        a.pos_query_proj = a
            .pos_query_proj
            .take()
            .map(|p| f("attention.self.pos_query_proj", p))
            .transpose()?;
        let o = &mut self.attention.output;
        o.dense = f("attention.output.dense", o.dense.clone())?;
        self.intermediate.dense = f("intermediate.dense", self.intermediate.dense)?;
        self.output.dense = f("output.dense", self.output.dense)?;
        Ok(self)
    }
}

/// The layers and the relative-position table (`encoder`).
#[derive(Module, Debug)]
pub struct DebertaV2Encoder<B: Backend> {
    /// `encoder.layer.N`.
    pub layer: Vec<DebertaV2Layer<B>>,
    /// `encoder.rel_embeddings`, `[2·span, hidden]` (`relative_attention`).
    pub rel_embeddings: Option<Embedding<B>>,
    /// `encoder.LayerNorm` over the relative embeddings (`norm_rel_ebd`).
    pub layer_norm: Option<LayerNorm<B>>,
}

/// The bare encoder (transformers' `DebertaV2Model`).
#[derive(Module, Debug)]
pub struct DebertaV2Model<B: Backend> {
    /// `embeddings`.
    pub embeddings: DebertaV2Embeddings<B>,
    /// `encoder`.
    pub encoder: DebertaV2Encoder<B>,
    /// The relative-position settings (for the index each forward pass builds).
    #[module(skip)]
    pub relative: RelativeSettings,
}

/// What [`relative_index`] needs, kept beside the model.
#[derive(Debug, Clone, PartialEq)]
pub struct RelativeSettings {
    /// The configuration's parameters.
    pub params: DebertaV2Params,
    /// `max_position_embeddings` (the default maximum relative distance).
    pub max_position_embeddings: usize,
    /// `layer_norm_eps`.
    pub layer_norm_eps: f64,
}

impl<B: Backend> DebertaV2Model<B> {
    /// A randomly initialised model (frozen, like a loaded one).
    pub fn init(config: &EncoderConfig, device: &B::Device) -> Self {
        let d = params(config);
        let (h, std) = (config.hidden_size, config.initializer_range);
        Self {
            embeddings: DebertaV2Embeddings::init(config, &d, device),
            encoder: DebertaV2Encoder {
                layer: (0..config.num_hidden_layers)
                    .map(|_| DebertaV2Layer::init(config, &d, device))
                    .collect(),
                rel_embeddings: d.relative_attention.then(|| {
                    fresh_embedding(
                        2 * d.att_span(config.max_position_embeddings),
                        h,
                        std,
                        device,
                    )
                }),
                layer_norm: (d.relative_attention && d.norm_rel_ebd)
                    .then(|| fresh_norm(h, config.layer_norm_eps, device)),
            },
            relative: settings(config, d),
        }
    }

    /// From weights whose prefix points at the encoder (`""` or `"deberta."`).
    pub fn load(
        w: &Weights,
        config: &EncoderConfig,
        device: &B::Device,
    ) -> Result<Self, EncoderError> {
        let d = params(config);
        let h = config.hidden_size;
        let embeddings = DebertaV2Embeddings::load(w, config, &d, device)?;
        let layer = (0..config.num_hidden_layers)
            .map(|i| DebertaV2Layer::load(w, &format!("encoder.layer.{i}"), config, &d, device))
            .collect::<Result<_, _>>()?;
        let rel_embeddings = d
            .relative_attention
            .then(|| {
                w.embedding(
                    "encoder.rel_embeddings",
                    2 * d.att_span(config.max_position_embeddings),
                    h,
                    device,
                )
            })
            .transpose()?;
        let layer_norm = (d.relative_attention && d.norm_rel_ebd)
            .then(|| w.layer_norm("encoder.LayerNorm", h, config.layer_norm_eps, device))
            .transpose()?;
        Ok(Self {
            embeddings,
            encoder: DebertaV2Encoder {
                layer,
                rel_embeddings,
                layer_norm,
            },
            relative: settings(config, d),
        })
    }

    /// Every token's final state (transformers' `last_hidden_state`; padded rows differ,
    /// see the module doc).
    ///
    /// # Shapes
    /// - input_ids, attention_mask, token_type_ids: `[batch, seq]`
    /// - output: `[batch, seq, hidden]`
    pub fn forward(
        &self,
        input_ids: Tensor<B, 2, Int>,
        attention_mask: Tensor<B, 2, Int>,
        token_type_ids: Option<Tensor<B, 2, Int>>,
    ) -> Result<Tensor<B, 3>, EncoderError>
    where
        B: KernelBackend,
    {
        let (hidden, context) = self.embed(input_ids, attention_mask, token_type_ids)?;
        Ok(run_layers(&self.encoder.layer, hidden, &context))
    }

    /// The first token's final state, the last layer run at that position alone.
    ///
    /// # Shapes
    /// - input_ids, attention_mask, token_type_ids: `[batch, seq]`
    /// - output: `[batch, hidden]`
    pub fn first_token(
        &self,
        input_ids: Tensor<B, 2, Int>,
        attention_mask: Tensor<B, 2, Int>,
        token_type_ids: Option<Tensor<B, 2, Int>>,
    ) -> Result<Tensor<B, 2>, EncoderError>
    where
        B: KernelBackend,
    {
        let (hidden, context) = self.embed(input_ids, attention_mask, token_type_ids)?;
        Ok(run_layers_first_token(
            &self.encoder.layer,
            hidden,
            &context,
        ))
    }

    fn embed(
        &self,
        input_ids: Tensor<B, 2, Int>,
        attention_mask: Tensor<B, 2, Int>,
        token_type_ids: Option<Tensor<B, 2, Int>>,
    ) -> Result<(Tensor<B, 3>, DebertaContext<B>), EncoderError>
    where
        B: KernelBackend,
    {
        let settings = &self.relative;
        check_input(
            &input_ids,
            &attention_mask,
            settings.max_position_embeddings,
        )?;
        let [_, seq] = input_ids.dims();
        let device = input_ids.device();
        let token_type_ids = token_type_ids.unwrap_or_else(|| input_ids.zeros_like());
        let embedded = self
            .embeddings
            .forward(input_ids, token_type_ids, attention_mask.clone());
        let relative = self.encoder.rel_embeddings.as_ref().map(|table| {
            let mut embeddings = table.weight.val();
            if let Some(n) = &self.encoder.layer_norm {
                embeddings = norm(n, settings.layer_norm_eps, embeddings);
            }
            let index =
                relative_index(seq, seq, &settings.params, settings.max_position_embeddings);
            Relative {
                embeddings,
                index: RelativeIndex::new(index, seq, &device),
            }
        });
        let context = DebertaContext {
            mask: AttentionMask::new(attention_mask),
            relative,
        };
        Ok((
            to_dtype(embedded, layers_precision(self.layers()).dtype()),
            context,
        ))
    }

    /// The encoder's layers.
    pub fn layers(&self) -> &[DebertaV2Layer<B>] {
        &self.encoder.layer
    }
}

fn settings(config: &EncoderConfig, params: DebertaV2Params) -> RelativeSettings {
    RelativeSettings {
        params,
        max_position_embeddings: config.max_position_embeddings,
        layer_norm_eps: config.layer_norm_eps,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_buckets_follow_transformers() {
        // transformers' make_log_bucket_position(r, 256, 512) for a few distances.
        assert_eq!(log_bucket(5, 256, 512), 5);
        assert_eq!(log_bucket(-128, 256, 512), -128);
        assert_eq!(log_bucket(129, 256, 512), 129);
        assert_eq!(log_bucket(511, 256, 512), 255);
        assert_eq!(log_bucket(-511, 256, 512), -255);
        // Small tables: every distance past the middle is bucketed.
        assert_eq!(log_bucket(3, 8, 40), 3);
        assert_eq!(log_bucket(15, 8, 40), 6);
    }
}
