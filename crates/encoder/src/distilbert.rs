//! DistilBERT (`model_type` `distilbert`), in the manner of transformers'
//! `modeling_distilbert.py`: its own configuration names (`dim`, `n_layers`, …), no token
//! types, and its own module names (`transformer.layer.N.attention.q_lin`, `sa_layer_norm`,
//! `ffn.lin1`, `output_layer_norm`), which the fields below mirror.
//!
//! The layer is BERT's post-norm layer with one difference that matters numerically: no
//! dropout after the attention's output projection (`out_lin`), only after the feed-forward
//! block. LayerNorm epsilons are 1e-12, fixed in transformers.
//!
//! With `sinusoidal_pos_embds` the position table is a fixed sinusoid; transformers saves it
//! in the checkpoint like any table and recomputes it only when the key is missing, which is
//! what [`DistilBertEmbeddings::load`] does too.

use std::collections::BTreeMap;

use burn::module::Module;
use burn::nn::{Dropout, Embedding, LayerNorm};
use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor, TensorData};
use imdb_lora_kernels::{AttentionMask, KernelBackend, to_dtype};
use imdb_lora_lora::LoraLinear;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::config::{EncoderConfig, Family, HiddenAct};
use crate::error::EncoderError;
use crate::kernel_ops::KernelOps;
use crate::layers::{
    TransformerLayer, activate, check_input, dropout, fresh_embedding, fresh_linear, fresh_norm,
    layers_precision, norm, run_layers, run_layers_first_token,
};
use crate::weights::{Weights, frozen};

/// DistilBERT's LayerNorm epsilon (a constant in transformers, not a configuration field).
const LAYER_NORM_EPS: f64 = 1e-12;

/// `config.json` of a DistilBERT checkpoint, defaulted as `transformers.DistilBertConfig()`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct DistilBertConfig {
    /// `"distilbert"`.
    pub model_type: Option<String>,
    /// Class names the checkpoint was saved from.
    pub architectures: Option<Vec<String>>,
    /// Size of the vocabulary.
    pub vocab_size: usize,
    /// Rows of the position table.
    pub max_position_embeddings: usize,
    /// Whether the position table is a fixed sinusoid.
    pub sinusoidal_pos_embds: bool,
    /// Number of layers.
    pub n_layers: usize,
    /// Attention heads per layer.
    pub n_heads: usize,
    /// Hidden width.
    pub dim: usize,
    /// Feed-forward width.
    pub hidden_dim: usize,
    /// Dropout on embeddings and the feed-forward output.
    pub dropout: f64,
    /// Dropout on attention probabilities.
    pub attention_dropout: f64,
    /// Feed-forward activation.
    pub activation: HiddenAct,
    /// Std of the normal initialiser.
    pub initializer_range: f64,
    /// Dropout before the classifier.
    pub seq_classif_dropout: f64,
    /// Id of the padding token.
    pub pad_token_id: usize,
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

impl Default for DistilBertConfig {
    fn default() -> Self {
        Self {
            model_type: Some("distilbert".into()),
            architectures: None,
            vocab_size: 30522,
            max_position_embeddings: 512,
            sinusoidal_pos_embds: false,
            n_layers: 6,
            n_heads: 12,
            dim: 768,
            hidden_dim: 3072,
            dropout: 0.1,
            attention_dropout: 0.1,
            activation: HiddenAct::Gelu,
            initializer_range: 0.02,
            seq_classif_dropout: 0.2,
            pad_token_id: 0,
            id2label: None,
            label2id: None,
            num_labels: None,
            extra: BTreeMap::new(),
        }
    }
}

/// A DistilBERT `config.json` as an [`EncoderConfig`] (BERT's names; no token types).
pub(crate) fn config_from_value(value: Value) -> Result<EncoderConfig, serde_json::Error> {
    let c: DistilBertConfig = serde_json::from_value(value)?;
    Ok(EncoderConfig {
        family: Family::DistilBert,
        model_type: c.model_type,
        architectures: c.architectures,
        vocab_size: c.vocab_size,
        embedding_size: None,
        hidden_size: c.dim,
        num_hidden_layers: c.n_layers,
        num_attention_heads: c.n_heads,
        intermediate_size: c.hidden_dim,
        hidden_act: c.activation,
        hidden_dropout_prob: c.dropout,
        attention_probs_dropout_prob: c.attention_dropout,
        max_position_embeddings: c.max_position_embeddings,
        type_vocab_size: 0,
        initializer_range: c.initializer_range,
        layer_norm_eps: LAYER_NORM_EPS,
        pad_token_id: c.pad_token_id,
        position_embedding_type: "absolute".into(),
        classifier_dropout: Some(c.seq_classif_dropout),
        sinusoidal_pos_embds: c.sinusoidal_pos_embds,
        params: crate::config::FamilyParams::None,
        id2label: c.id2label,
        label2id: c.label2id,
        num_labels: c.num_labels,
        extra: c.extra,
    })
}

/// An [`EncoderConfig`] of this family back in DistilBERT's names.
pub(crate) fn config_to_value(c: &EncoderConfig) -> Result<Value, serde_json::Error> {
    serde_json::to_value(DistilBertConfig {
        model_type: c.model_type.clone(),
        architectures: c.architectures.clone(),
        vocab_size: c.vocab_size,
        max_position_embeddings: c.max_position_embeddings,
        sinusoidal_pos_embds: c.sinusoidal_pos_embds,
        n_layers: c.num_hidden_layers,
        n_heads: c.num_attention_heads,
        dim: c.hidden_size,
        hidden_dim: c.intermediate_size,
        dropout: c.hidden_dropout_prob,
        attention_dropout: c.attention_probs_dropout_prob,
        activation: c.hidden_act,
        initializer_range: c.initializer_range,
        seq_classif_dropout: c.classifier_dropout_prob(),
        pad_token_id: c.pad_token_id,
        id2label: c.id2label.clone(),
        label2id: c.label2id.clone(),
        num_labels: c.num_labels,
        extra: c.extra.clone(),
    })
}

/// Word + position embeddings, then LayerNorm and dropout.
#[derive(Module, Debug)]
pub struct DistilBertEmbeddings<B: Backend> {
    /// `embeddings.word_embeddings`, `[vocab_size, dim]`.
    pub word_embeddings: Embedding<B>,
    /// `embeddings.position_embeddings`, `[max_position_embeddings, dim]`.
    pub position_embeddings: Embedding<B>,
    /// `embeddings.LayerNorm`.
    pub layer_norm: LayerNorm<B>,
    /// Dropout (`dropout`).
    pub dropout: Dropout,
}

impl<B: Backend> DistilBertEmbeddings<B> {
    fn init(config: &EncoderConfig, device: &B::Device) -> Self {
        let (h, std) = (config.hidden_size, config.initializer_range);
        let position_embeddings = if config.sinusoidal_pos_embds {
            sinusoidal_table(config.max_position_embeddings, h, device)
        } else {
            fresh_embedding(config.max_position_embeddings, h, std, device)
        };
        Self {
            word_embeddings: fresh_embedding(config.vocab_size, h, std, device),
            position_embeddings,
            layer_norm: fresh_norm(h, LAYER_NORM_EPS, device),
            dropout: dropout(config.hidden_dropout_prob),
        }
    }

    /// From `embeddings.*`; a sinusoidal table missing from the checkpoint is computed, as
    /// transformers does.
    fn load(w: &Weights, config: &EncoderConfig, device: &B::Device) -> Result<Self, EncoderError> {
        let h = config.hidden_size;
        let word_embeddings =
            w.embedding("embeddings.word_embeddings", config.vocab_size, h, device)?;
        let key = "embeddings.position_embeddings";
        let position_embeddings =
            if config.sinusoidal_pos_embds && !w.contains(&format!("{key}.weight")) {
                tracing::info!("no position table in the checkpoint; computing the sinusoidal one");
                sinusoidal_table(config.max_position_embeddings, h, device)
            } else {
                w.embedding(key, config.max_position_embeddings, h, device)?
            };
        Ok(Self {
            word_embeddings,
            position_embeddings,
            layer_norm: w.layer_norm("embeddings.LayerNorm", h, LAYER_NORM_EPS, device)?,
            dropout: dropout(config.hidden_dropout_prob),
        })
    }

    /// # Shapes
    /// - input_ids: `[batch, seq]`
    /// - output: `[batch, seq, dim]`
    pub fn forward(&self, input_ids: Tensor<B, 2, Int>) -> Tensor<B, 3>
    where
        B: KernelBackend,
    {
        let [_, seq] = input_ids.dims();
        let positions = Tensor::<B, 1, Int>::arange(0..seq as i64, &input_ids.device()).unsqueeze();
        let x =
            self.word_embeddings.forward(input_ids) + self.position_embeddings.forward(positions);
        B::kernel_dropout(norm(&self.layer_norm, LAYER_NORM_EPS, x), self.dropout.prob)
    }
}

/// transformers' `create_sinusoidal_embeddings`: `sin(pos / 10000^(2⌊j/2⌋/dim))` in even
/// columns, `cos` of the same in odd ones; frozen.
fn sinusoidal_table<B: Backend>(positions: usize, dim: usize, device: &B::Device) -> Embedding<B> {
    let values: Vec<f32> = (0..positions)
        .flat_map(|pos| {
            (0..dim).map(move |j| {
                let angle = pos as f64 / 10000f64.powf((2 * (j / 2)) as f64 / dim as f64);
                (if j % 2 == 0 { angle.sin() } else { angle.cos() }) as f32
            })
        })
        .collect();
    Embedding {
        weight: frozen(Tensor::from_data(
            TensorData::new(values, [positions, dim]),
            device,
        )),
    }
}

/// Multi-head self-attention with its output projection.
#[derive(Module, Debug)]
pub struct MultiHeadSelfAttention<B: Backend> {
    /// `attention.q_lin`.
    pub q_lin: LoraLinear<B>,
    /// `attention.k_lin`.
    pub k_lin: LoraLinear<B>,
    /// `attention.v_lin`.
    pub v_lin: LoraLinear<B>,
    /// `attention.out_lin`.
    pub out_lin: LoraLinear<B>,
    /// Dropout on attention probabilities (`attention_dropout`).
    pub dropout: Dropout,
    /// Number of heads.
    pub n_heads: usize,
}

/// The feed-forward block: `dropout(lin2(activation(lin1(x))))`.
#[derive(Module, Debug)]
pub struct Ffn<B: Backend> {
    /// `ffn.lin1`, `dim → hidden_dim`.
    pub lin1: LoraLinear<B>,
    /// `ffn.lin2`, `hidden_dim → dim`.
    pub lin2: LoraLinear<B>,
    /// The activation (`activation`).
    #[module(skip)]
    pub activation: HiddenAct,
    /// Dropout (`dropout`).
    pub dropout: Dropout,
}

/// One layer: attention, `sa_layer_norm` over the residual, feed-forward,
/// `output_layer_norm` over the residual.
#[derive(Module, Debug)]
pub struct TransformerBlock<B: Backend> {
    /// `attention`.
    pub attention: MultiHeadSelfAttention<B>,
    /// `sa_layer_norm`.
    pub sa_layer_norm: LayerNorm<B>,
    /// `ffn`.
    pub ffn: Ffn<B>,
    /// `output_layer_norm`.
    pub output_layer_norm: LayerNorm<B>,
}

impl<B: Backend> TransformerBlock<B> {
    fn init(config: &EncoderConfig, device: &B::Device) -> Self {
        let (h, i, std) = (
            config.hidden_size,
            config.intermediate_size,
            config.initializer_range,
        );
        let lin = |d_in, d_out| LoraLinear::new(fresh_linear(d_in, d_out, std, device));
        Self {
            attention: MultiHeadSelfAttention {
                q_lin: lin(h, h),
                k_lin: lin(h, h),
                v_lin: lin(h, h),
                out_lin: lin(h, h),
                dropout: dropout(config.attention_probs_dropout_prob),
                n_heads: config.num_attention_heads,
            },
            sa_layer_norm: fresh_norm(h, LAYER_NORM_EPS, device),
            ffn: Ffn {
                lin1: lin(h, i),
                lin2: lin(i, h),
                activation: config.hidden_act,
                dropout: dropout(config.hidden_dropout_prob),
            },
            output_layer_norm: fresh_norm(h, LAYER_NORM_EPS, device),
        }
    }

    fn load(
        w: &Weights,
        p: &str,
        config: &EncoderConfig,
        device: &B::Device,
    ) -> Result<Self, EncoderError> {
        let (h, i) = (config.hidden_size, config.intermediate_size);
        let lin = |name: &str, d_in, d_out| -> Result<LoraLinear<B>, EncoderError> {
            w.projection(&format!("{p}.{name}"), d_in, d_out, device)
        };
        Ok(Self {
            attention: MultiHeadSelfAttention {
                q_lin: lin("attention.q_lin", h, h)?,
                k_lin: lin("attention.k_lin", h, h)?,
                v_lin: lin("attention.v_lin", h, h)?,
                out_lin: lin("attention.out_lin", h, h)?,
                dropout: dropout(config.attention_probs_dropout_prob),
                n_heads: config.num_attention_heads,
            },
            sa_layer_norm: w.layer_norm(
                &format!("{p}.sa_layer_norm"),
                h,
                LAYER_NORM_EPS,
                device,
            )?,
            ffn: Ffn {
                lin1: lin("ffn.lin1", h, i)?,
                lin2: lin("ffn.lin2", i, h)?,
                activation: config.hidden_act,
                dropout: dropout(config.hidden_dropout_prob),
            },
            output_layer_norm: w.layer_norm(
                &format!("{p}.output_layer_norm"),
                h,
                LAYER_NORM_EPS,
                device,
            )?,
        })
    }
}

impl<B: Backend> TransformerLayer<B> for TransformerBlock<B> {
    type Context = AttentionMask<B>;

    fn forward_from(
        &self,
        queries: Tensor<B, 3>,
        hidden: Tensor<B, 3>,
        mask: &AttentionMask<B>,
    ) -> Tensor<B, 3>
    where
        B: KernelBackend,
    {
        let a = &self.attention;
        let q = a.q_lin.forward_with(queries.clone(), KernelOps);
        let k = a.k_lin.forward_with(hidden.clone(), KernelOps);
        let v = a.v_lin.forward_with(hidden, KernelOps);
        let context = B::kernel_attention(q, k, v, a.n_heads, mask, a.dropout.prob);
        // No dropout here: DistilBERT drops only after the feed-forward block.
        let sa_output = a.out_lin.forward_with(context, KernelOps);
        let sa_output = norm(&self.sa_layer_norm, LAYER_NORM_EPS, sa_output + queries);
        let f = &self.ffn;
        let expanded = activate(
            f.activation,
            f.lin1.forward_with(sa_output.clone(), KernelOps),
        );
        let ffn_output =
            B::kernel_dropout(f.lin2.forward_with(expanded, KernelOps), f.dropout.prob);
        norm(
            &self.output_layer_norm,
            LAYER_NORM_EPS,
            ffn_output + sa_output,
        )
    }

    fn projections(&self) -> Vec<(&'static str, &LoraLinear<B>)> {
        vec![
            ("attention.q_lin", &self.attention.q_lin),
            ("attention.k_lin", &self.attention.k_lin),
            ("attention.v_lin", &self.attention.v_lin),
            ("attention.out_lin", &self.attention.out_lin),
            ("ffn.lin1", &self.ffn.lin1),
            ("ffn.lin2", &self.ffn.lin2),
        ]
    }

    fn map_projections<E>(
        mut self,
        mut f: impl FnMut(&'static str, LoraLinear<B>) -> Result<LoraLinear<B>, E>,
    ) -> Result<Self, E> {
        let a = &mut self.attention;
        a.q_lin = f("attention.q_lin", a.q_lin.clone())?;
        a.k_lin = f("attention.k_lin", a.k_lin.clone())?;
        a.v_lin = f("attention.v_lin", a.v_lin.clone())?;
        a.out_lin = f("attention.out_lin", a.out_lin.clone())?;
        self.ffn.lin1 = f("ffn.lin1", self.ffn.lin1)?;
        self.ffn.lin2 = f("ffn.lin2", self.ffn.lin2)?;
        Ok(self)
    }
}

/// The stack of layers.
#[derive(Module, Debug)]
pub struct Transformer<B: Backend> {
    /// `transformer.layer.N`.
    pub layer: Vec<TransformerBlock<B>>,
}

/// The bare encoder (transformers' `DistilBertModel`).
#[derive(Module, Debug)]
pub struct DistilBertModel<B: Backend> {
    /// `embeddings`.
    pub embeddings: DistilBertEmbeddings<B>,
    /// `transformer`.
    pub transformer: Transformer<B>,
}

impl<B: Backend> DistilBertModel<B> {
    /// A randomly initialised model (frozen, like a loaded one).
    pub fn init(config: &EncoderConfig, device: &B::Device) -> Self {
        Self {
            embeddings: DistilBertEmbeddings::init(config, device),
            transformer: Transformer {
                layer: (0..config.num_hidden_layers)
                    .map(|_| TransformerBlock::init(config, device))
                    .collect(),
            },
        }
    }

    /// From weights whose prefix points at the encoder (`""` or `"distilbert."`); the
    /// embeddings first, so a config that disagrees with the checkpoint fails before
    /// anything is built from its sizes alone.
    pub fn load(
        w: &Weights,
        config: &EncoderConfig,
        device: &B::Device,
    ) -> Result<Self, EncoderError> {
        let embeddings = DistilBertEmbeddings::load(w, config, device)?;
        let layer = (0..config.num_hidden_layers)
            .map(|i| TransformerBlock::load(w, &format!("transformer.layer.{i}"), config, device))
            .collect::<Result<_, _>>()?;
        Ok(Self {
            embeddings,
            transformer: Transformer { layer },
        })
    }

    /// Every token's final state (transformers' `last_hidden_state`).
    ///
    /// # Shapes
    /// - input_ids, attention_mask: `[batch, seq]`
    /// - output: `[batch, seq, dim]`
    pub fn forward(
        &self,
        input_ids: Tensor<B, 2, Int>,
        attention_mask: Tensor<B, 2, Int>,
    ) -> Result<Tensor<B, 3>, EncoderError>
    where
        B: KernelBackend,
    {
        let (hidden, mask) = self.embed(input_ids, attention_mask)?;
        Ok(run_layers(&self.transformer.layer, hidden, &mask))
    }

    /// The first token's final state, the last layer run at that position alone.
    ///
    /// # Shapes
    /// - input_ids, attention_mask: `[batch, seq]`
    /// - output: `[batch, dim]`
    pub fn first_token(
        &self,
        input_ids: Tensor<B, 2, Int>,
        attention_mask: Tensor<B, 2, Int>,
    ) -> Result<Tensor<B, 2>, EncoderError>
    where
        B: KernelBackend,
    {
        let (hidden, mask) = self.embed(input_ids, attention_mask)?;
        Ok(run_layers_first_token(
            &self.transformer.layer,
            hidden,
            &mask,
        ))
    }

    fn embed(
        &self,
        input_ids: Tensor<B, 2, Int>,
        attention_mask: Tensor<B, 2, Int>,
    ) -> Result<(Tensor<B, 3>, AttentionMask<B>), EncoderError>
    where
        B: KernelBackend,
    {
        let max_positions = self.embeddings.position_embeddings.weight.dims()[0];
        check_input(&input_ids, &attention_mask, max_positions)?;
        let mask = AttentionMask::new(attention_mask);
        let hidden = to_dtype(
            self.embeddings.forward(input_ids),
            layers_precision(self.layers()).dtype(),
        );
        Ok((hidden, mask))
    }

    /// The encoder's layers.
    pub fn layers(&self) -> &[TransformerBlock<B>] {
        &self.transformer.layer
    }
}
