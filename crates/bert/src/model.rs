//! The BERT encoder and sequence classifier, layer by layer, in the manner of `transformers`'
//! `modeling_bert.py` (and candle's `bert.rs`): field names mirror the checkpoint keys.
//!
//! Every projection inside the encoder is a [`LoraLinear`], without adapter unless a
//! [`LoraConfig`] targets it, so the same model type serves the frozen backbone, the
//! LoRA-adapted model and the merged one.

use burn::module::Module;
use burn::nn::{Dropout, Embedding, LayerNorm, LayerNormConfig, Linear};
use burn::tensor::activation::{gelu_approximate, relu};
use burn::tensor::backend::Backend;
use burn::tensor::{DType, Distribution, Int, Tensor, TensorData};
use lora::{LoraConfig, LoraLinear};

use crate::config::{BertConfig, HiddenAct};
use crate::error::BertError;
use crate::ops::{AttentionMask, BertBackend, BertOps};
use crate::precision::Precision;
use crate::weights::{Weights, frozen};

/// Module names that LoRA may target, as PEFT matches them against BERT's module paths.
pub const LORA_TARGETS: [&str; 6] = [
    "query",
    "key",
    "value",
    "attention.output.dense",
    "intermediate.dense",
    "output.dense",
];

fn dropout(prob: f64) -> Dropout {
    // Not `DropoutConfig::init`: that panics on a bad probability, and the config is validated.
    Dropout { prob }
}

/// transformers' `_init_weights` for a linear layer: normal(0, initializer_range) weight,
/// zero bias. Drawn eagerly (Burn's initialisers are lazy), so the draw happens right after
/// the caller seeds the backend and the result does not depend on later use order.
fn fresh_linear<B: Backend>(d_in: usize, d_out: usize, std: f64, device: &B::Device) -> Linear<B> {
    let weight = Tensor::random([d_in, d_out], Distribution::Normal(0.0, std), device);
    Linear {
        weight: frozen(weight),
        bias: Some(frozen(Tensor::zeros([d_out], device))),
    }
}

fn fresh_norm<B: Backend>(config: &BertConfig, device: &B::Device) -> LayerNorm<B> {
    LayerNormConfig::new(config.hidden_size)
        .with_epsilon(config.layer_norm_eps)
        .init(device)
        .no_grad()
}

/// `norm(x)` through the backend's kernel, always in f32 (statistics and parameters): a
/// bf16 input is widened first and the result rounded back to bf16.
fn norm<B: BertBackend, const D: usize>(
    norm: &LayerNorm<B>,
    eps: f64,
    x: Tensor<B, D>,
) -> Tensor<B, D> {
    let dtype = x.dtype();
    let normed = B::bert_layer_norm(
        to_dtype(x, DType::F32),
        norm.gamma.val(),
        norm.beta.as_ref().map(|b| b.val()),
        eps,
    );
    to_dtype(normed, dtype)
}

/// `x` in `dtype`: the tensor itself when it already is (no cast node in the graph).
pub(crate) fn to_dtype<B: Backend, const D: usize>(x: Tensor<B, D>, dtype: DType) -> Tensor<B, D> {
    if x.dtype() == dtype { x } else { x.cast(dtype) }
}

/// A frozen linear layer with weight and bias in `dtype`.
fn linear_in<B: Backend>(linear: Linear<B>, dtype: DType) -> Linear<B> {
    Linear {
        weight: linear.weight.map(|w| to_dtype(w, dtype)),
        bias: linear.bias.map(|b| b.map(|b| to_dtype(b, dtype))),
    }
}

fn fresh_embedding<B: Backend>(n: usize, d: usize, std: f64, device: &B::Device) -> Embedding<B> {
    Embedding {
        weight: frozen(Tensor::random(
            [n, d],
            Distribution::Normal(0.0, std),
            device,
        )),
    }
}

/// Word + position + token-type embeddings, then LayerNorm and dropout.
#[derive(Module, Debug)]
pub struct BertEmbeddings<B: Backend> {
    /// `embeddings.word_embeddings`, `[vocab_size, hidden]`.
    pub word_embeddings: Embedding<B>,
    /// `embeddings.position_embeddings`, `[max_position_embeddings, hidden]`.
    pub position_embeddings: Embedding<B>,
    /// `embeddings.token_type_embeddings`, `[type_vocab_size, hidden]`.
    pub token_type_embeddings: Embedding<B>,
    /// `embeddings.LayerNorm`.
    pub layer_norm: LayerNorm<B>,
    /// Its epsilon (`layer_norm_eps`; Burn's `LayerNorm` keeps its own private).
    #[module(skip)]
    pub layer_norm_eps: f64,
    /// Hidden dropout.
    pub dropout: Dropout,
}

impl<B: Backend> BertEmbeddings<B> {
    /// Randomly initialised, as transformers initialises an untrained model.
    pub fn init(config: &BertConfig, device: &B::Device) -> Self {
        let (h, std) = (config.hidden_size, config.initializer_range);
        Self {
            word_embeddings: fresh_embedding(config.vocab_size, h, std, device),
            position_embeddings: fresh_embedding(config.max_position_embeddings, h, std, device),
            token_type_embeddings: fresh_embedding(config.type_vocab_size, h, std, device),
            layer_norm: fresh_norm(config, device),
            layer_norm_eps: config.layer_norm_eps,
            dropout: dropout(config.hidden_dropout_prob),
        }
    }

    /// From `embeddings.*` (relative to the weights' prefix).
    pub fn load(w: &Weights, config: &BertConfig, device: &B::Device) -> Result<Self, BertError> {
        let h = config.hidden_size;
        Ok(Self {
            word_embeddings: w.embedding(
                "embeddings.word_embeddings",
                config.vocab_size,
                h,
                device,
            )?,
            position_embeddings: w.embedding(
                "embeddings.position_embeddings",
                config.max_position_embeddings,
                h,
                device,
            )?,
            token_type_embeddings: w.embedding(
                "embeddings.token_type_embeddings",
                config.type_vocab_size,
                h,
                device,
            )?,
            layer_norm: w.layer_norm("embeddings.LayerNorm", h, config.layer_norm_eps, device)?,
            layer_norm_eps: config.layer_norm_eps,
            dropout: dropout(config.hidden_dropout_prob),
        })
    }

    /// # Shapes
    /// - input_ids, token_type_ids: `[batch, seq]`
    /// - output: `[batch, seq, hidden]`
    pub fn forward(
        &self,
        input_ids: Tensor<B, 2, Int>,
        token_type_ids: Tensor<B, 2, Int>,
    ) -> Tensor<B, 3>
    where
        B: BertBackend,
    {
        let [_, seq] = input_ids.dims();
        let positions = Tensor::<B, 1, Int>::arange(0..seq as i64, &input_ids.device()).unsqueeze();
        // Positions are shared by the whole batch: embed `[1, seq]` once and broadcast.
        let x = self.word_embeddings.forward(input_ids)
            + self.token_type_embeddings.forward(token_type_ids)
            + self.position_embeddings.forward(positions);
        B::bert_dropout(
            norm(&self.layer_norm, self.layer_norm_eps, x),
            self.dropout.prob,
        )
    }
}

/// Multi-head self-attention with its own query/key/value projections.
#[derive(Module, Debug)]
pub struct BertSelfAttention<B: Backend> {
    /// `attention.self.query`.
    pub query: LoraLinear<B>,
    /// `attention.self.key`.
    pub key: LoraLinear<B>,
    /// `attention.self.value`.
    pub value: LoraLinear<B>,
    /// Dropout on attention probabilities.
    pub dropout: Dropout,
    /// Number of heads.
    pub num_attention_heads: usize,
}

impl<B: Backend> BertSelfAttention<B> {
    fn init(config: &BertConfig, device: &B::Device) -> Self {
        let (h, std) = (config.hidden_size, config.initializer_range);
        let lin = || LoraLinear::new(fresh_linear(h, h, std, device));
        Self {
            query: lin(),
            key: lin(),
            value: lin(),
            dropout: dropout(config.attention_probs_dropout_prob),
            num_attention_heads: config.num_attention_heads,
        }
    }

    fn load(
        w: &Weights,
        p: &str,
        config: &BertConfig,
        device: &B::Device,
    ) -> Result<Self, BertError> {
        let h = config.hidden_size;
        let lin = |name: &str| -> Result<LoraLinear<B>, BertError> {
            Ok(LoraLinear::new(w.linear(
                &format!("{p}.{name}"),
                h,
                h,
                device,
            )?))
        };
        Ok(Self {
            query: lin("query")?,
            key: lin("key")?,
            value: lin("value")?,
            dropout: dropout(config.attention_probs_dropout_prob),
            num_attention_heads: config.num_attention_heads,
        })
    }

    /// # Shapes
    /// - hidden: `[batch, seq, hidden]`
    /// - output: `[batch, seq, hidden]`
    pub fn forward(&self, hidden: Tensor<B, 3>, mask: &AttentionMask<B>) -> Tensor<B, 3>
    where
        B: BertBackend,
    {
        self.attend(hidden.clone(), hidden, mask)
    }

    /// Attention from the positions in `queries` (all of `hidden`'s, or a leading subset
    /// such as `[CLS]`) over every token of `hidden`.
    ///
    /// # Shapes
    /// - queries: `[batch, queries, hidden]`, hidden: `[batch, seq, hidden]`
    /// - output: `[batch, queries, hidden]`
    pub fn attend(
        &self,
        queries: Tensor<B, 3>,
        hidden: Tensor<B, 3>,
        mask: &AttentionMask<B>,
    ) -> Tensor<B, 3>
    where
        B: BertBackend,
    {
        let q = self.query.forward_with(queries, BertOps);
        let k = self.key.forward_with(hidden.clone(), BertOps);
        let v = self.value.forward_with(hidden, BertOps);
        B::bert_attention(q, k, v, self.num_attention_heads, mask, self.dropout.prob)
    }
}

/// Dense + dropout + residual LayerNorm, shared shape of `attention.output` and `output`.
#[derive(Module, Debug)]
pub struct BertResidual<B: Backend> {
    /// `*.dense`.
    pub dense: LoraLinear<B>,
    /// `*.LayerNorm`.
    pub layer_norm: LayerNorm<B>,
    /// Its epsilon (`layer_norm_eps`).
    #[module(skip)]
    pub layer_norm_eps: f64,
    /// Hidden dropout.
    pub dropout: Dropout,
}

impl<B: Backend> BertResidual<B> {
    fn init(d_in: usize, config: &BertConfig, device: &B::Device) -> Self {
        Self {
            dense: LoraLinear::new(fresh_linear(
                d_in,
                config.hidden_size,
                config.initializer_range,
                device,
            )),
            layer_norm: fresh_norm(config, device),
            layer_norm_eps: config.layer_norm_eps,
            dropout: dropout(config.hidden_dropout_prob),
        }
    }

    fn load(
        w: &Weights,
        p: &str,
        d_in: usize,
        config: &BertConfig,
        device: &B::Device,
    ) -> Result<Self, BertError> {
        let h = config.hidden_size;
        Ok(Self {
            dense: LoraLinear::new(w.linear(&format!("{p}.dense"), d_in, h, device)?),
            layer_norm: w.layer_norm(
                &format!("{p}.LayerNorm"),
                h,
                config.layer_norm_eps,
                device,
            )?,
            layer_norm_eps: config.layer_norm_eps,
            dropout: dropout(config.hidden_dropout_prob),
        })
    }

    /// `LayerNorm(dropout(dense(x)) + residual)`.
    ///
    /// # Shapes
    /// - x: `[batch, seq, d_in]`, residual: `[batch, seq, hidden]`
    /// - output: `[batch, seq, hidden]`
    pub fn forward(&self, x: Tensor<B, 3>, residual: Tensor<B, 3>) -> Tensor<B, 3>
    where
        B: BertBackend,
    {
        let x = B::bert_dropout(self.dense.forward_with(x, BertOps), self.dropout.prob);
        norm(&self.layer_norm, self.layer_norm_eps, x + residual)
    }
}

/// Self-attention followed by its output projection.
#[derive(Module, Debug)]
pub struct BertAttention<B: Backend> {
    /// `attention.self` (`self` is a Rust keyword).
    pub self_attention: BertSelfAttention<B>,
    /// `attention.output`.
    pub output: BertResidual<B>,
}

/// The feed-forward expansion.
#[derive(Module, Debug)]
pub struct BertIntermediate<B: Backend> {
    /// `intermediate.dense`, `hidden → intermediate_size`.
    pub dense: LoraLinear<B>,
    /// The activation (`hidden_act`).
    #[module(skip)]
    pub activation: HiddenAct,
}

impl<B: Backend> BertIntermediate<B> {
    /// # Shapes
    /// - input: `[batch, seq, hidden]`
    /// - output: `[batch, seq, intermediate]`
    pub fn forward(&self, x: Tensor<B, 3>) -> Tensor<B, 3>
    where
        B: BertBackend,
    {
        let x = self.dense.forward_with(x, BertOps);
        match self.activation {
            HiddenAct::Gelu => B::bert_gelu(x),
            HiddenAct::GeluTanh => gelu_approximate(x),
            HiddenAct::Relu => relu(x),
        }
    }
}

/// One transformer encoder layer.
#[derive(Module, Debug)]
pub struct BertLayer<B: Backend> {
    /// `attention`.
    pub attention: BertAttention<B>,
    /// `intermediate`.
    pub intermediate: BertIntermediate<B>,
    /// `output`.
    pub output: BertResidual<B>,
}

impl<B: Backend> BertLayer<B> {
    fn init(config: &BertConfig, device: &B::Device) -> Self {
        let (h, i, std) = (
            config.hidden_size,
            config.intermediate_size,
            config.initializer_range,
        );
        Self {
            attention: BertAttention {
                self_attention: BertSelfAttention::init(config, device),
                output: BertResidual::init(h, config, device),
            },
            intermediate: BertIntermediate {
                dense: LoraLinear::new(fresh_linear(h, i, std, device)),
                activation: config.hidden_act,
            },
            output: BertResidual::init(i, config, device),
        }
    }

    fn load(
        w: &Weights,
        p: &str,
        config: &BertConfig,
        device: &B::Device,
    ) -> Result<Self, BertError> {
        let (h, i) = (config.hidden_size, config.intermediate_size);
        Ok(Self {
            attention: BertAttention {
                self_attention: BertSelfAttention::load(
                    w,
                    &format!("{p}.attention.self"),
                    config,
                    device,
                )?,
                output: BertResidual::load(w, &format!("{p}.attention.output"), h, config, device)?,
            },
            intermediate: BertIntermediate {
                dense: LoraLinear::new(w.linear(
                    &format!("{p}.intermediate.dense"),
                    h,
                    i,
                    device,
                )?),
                activation: config.hidden_act,
            },
            output: BertResidual::load(w, &format!("{p}.output"), i, config, device)?,
        })
    }

    /// # Shapes
    /// - hidden: `[batch, seq, hidden]`
    /// - output: `[batch, seq, hidden]`
    pub fn forward(&self, hidden: Tensor<B, 3>, mask: &AttentionMask<B>) -> Tensor<B, 3>
    where
        B: BertBackend,
    {
        self.forward_from(hidden.clone(), hidden, mask)
    }

    /// The layer's output at the first (`[CLS]`) position only. Keys and values still come
    /// from every token; the query, the output projections, the feed-forward block and the
    /// layer norms, all position-wise, run on one position instead of `seq`. That is all a
    /// sequence classifier reads from the last layer, and the same numbers as
    /// `forward(..)[:, 0:1]`.
    ///
    /// # Shapes
    /// - hidden: `[batch, seq, hidden]`
    /// - output: `[batch, 1, hidden]`
    pub fn forward_cls(&self, hidden: Tensor<B, 3>, mask: &AttentionMask<B>) -> Tensor<B, 3>
    where
        B: BertBackend,
    {
        let [batch, _, width] = hidden.dims();
        let cls = hidden.clone().slice([0..batch, 0..1, 0..width]);
        self.forward_from(cls, hidden, mask)
    }

    /// The layer at the positions of `queries`, attending over all of `hidden`.
    fn forward_from(
        &self,
        queries: Tensor<B, 3>,
        hidden: Tensor<B, 3>,
        mask: &AttentionMask<B>,
    ) -> Tensor<B, 3>
    where
        B: BertBackend,
    {
        let attended = self.attention.output.forward(
            self.attention
                .self_attention
                .attend(queries.clone(), hidden, mask),
            queries,
        );
        let expanded = self.intermediate.forward(attended.clone());
        self.output.forward(expanded, attended)
    }

    /// The layer's projections with their PEFT-style module names.
    pub fn projections(&self) -> [(&'static str, &LoraLinear<B>); 6] {
        [
            ("attention.self.query", &self.attention.self_attention.query),
            ("attention.self.key", &self.attention.self_attention.key),
            ("attention.self.value", &self.attention.self_attention.value),
            ("attention.output.dense", &self.attention.output.dense),
            ("intermediate.dense", &self.intermediate.dense),
            ("output.dense", &self.output.dense),
        ]
    }

    /// Applies `f` to every projection, by PEFT-style module name.
    pub fn map_projections<E>(
        mut self,
        mut f: impl FnMut(&'static str, LoraLinear<B>) -> Result<LoraLinear<B>, E>,
    ) -> Result<Self, E> {
        let s = &mut self.attention.self_attention;
        s.query = f("attention.self.query", s.query.clone())?;
        s.key = f("attention.self.key", s.key.clone())?;
        s.value = f("attention.self.value", s.value.clone())?;
        self.attention.output.dense = f("attention.output.dense", self.attention.output.dense)?;
        self.intermediate.dense = f("intermediate.dense", self.intermediate.dense)?;
        self.output.dense = f("output.dense", self.output.dense)?;
        Ok(self)
    }
}

/// Whether a LoRA target name selects the projection at `module_path` (PEFT's rule: the
/// target equals the path or is a dot-separated suffix of it).
pub fn target_matches(target: &str, module_path: &str) -> bool {
    module_path == target || module_path.ends_with(&format!(".{target}"))
}

/// The stack of encoder layers.
#[derive(Module, Debug)]
pub struct BertEncoder<B: Backend> {
    /// `encoder.layer.N`.
    pub layer: Vec<BertLayer<B>>,
}

/// The tanh pooler over the `[CLS]` state.
#[derive(Module, Debug)]
pub struct BertPooler<B: Backend> {
    /// `pooler.dense`.
    pub dense: Linear<B>,
}

impl<B: Backend> BertPooler<B> {
    /// # Shapes
    /// - hidden: `[batch, seq, hidden]`
    /// - output: `[batch, hidden]`
    pub fn forward(&self, hidden: Tensor<B, 3>) -> Tensor<B, 2> {
        let [batch, _, width] = hidden.dims();
        let cls = hidden
            .slice([0..batch, 0..1, 0..width])
            .reshape([batch, width]);
        self.dense.forward(cls).tanh()
    }
}

/// What [`BertModel::forward`] returns (transformers' `BaseModelOutputWithPooling`).
///
/// Not named `BertOutput`: in transformers and candle that is the feed-forward block's
/// output layer, [`BertResidual`] here.
#[derive(Debug, Clone)]
pub struct BertModelOutput<B: Backend> {
    /// Every token's final hidden state, `[batch, seq, hidden]`.
    pub last_hidden_state: Tensor<B, 3>,
    /// `tanh(dense(h_[CLS]))`, `[batch, hidden]`.
    pub pooler_output: Tensor<B, 2>,
}

/// The bare encoder (transformers' `BertModel`).
#[derive(Module, Debug)]
pub struct BertModel<B: Backend> {
    /// `embeddings`.
    pub embeddings: BertEmbeddings<B>,
    /// `encoder`.
    pub encoder: BertEncoder<B>,
    /// `pooler`.
    pub pooler: BertPooler<B>,
}

impl<B: Backend> BertModel<B> {
    /// A randomly initialised model (frozen, like a loaded one).
    pub fn init(config: &BertConfig, device: &B::Device) -> Self {
        Self {
            embeddings: BertEmbeddings::init(config, device),
            encoder: BertEncoder {
                layer: (0..config.num_hidden_layers)
                    .map(|_| BertLayer::init(config, device))
                    .collect(),
            },
            pooler: BertPooler {
                dense: fresh_linear(
                    config.hidden_size,
                    config.hidden_size,
                    config.initializer_range,
                    device,
                ),
            },
        }
    }

    /// From weights whose prefix points at the encoder (`""` or `"bert."`).
    ///
    /// A checkpoint without pooler (some sentence-embedding exports) gets a fresh one,
    /// initialised as transformers does, and says so in the log.
    ///
    /// Order matters: the embeddings first (they pin the vocabulary, positions and width),
    /// then the layers, and only then anything fresh, so a config that disagrees with the
    /// checkpoint fails before anything is allocated from its sizes alone.
    pub fn load(w: &Weights, config: &BertConfig, device: &B::Device) -> Result<Self, BertError> {
        let h = config.hidden_size;
        let embeddings = BertEmbeddings::load(w, config, device)?;
        let layer = (0..config.num_hidden_layers)
            .map(|i| BertLayer::load(w, &format!("encoder.layer.{i}"), config, device))
            .collect::<Result<_, _>>()?;
        let pooler = if w.contains("pooler.dense.weight") {
            BertPooler {
                dense: w.linear("pooler.dense", h, h, device)?,
            }
        } else {
            tracing::warn!(
                file = %w.path().display(),
                "checkpoint has no pooler; initialising pooler.dense with normal(0, {})",
                config.initializer_range
            );
            BertPooler {
                dense: fresh_linear(h, h, config.initializer_range, device),
            }
        };
        Ok(Self {
            embeddings,
            encoder: BertEncoder { layer },
            pooler,
        })
    }

    /// Checks ids and shapes before they reach the embedding tables, where an out-of-range
    /// index would be a backend panic or silent garbage.
    fn check_input(&self, input_ids: &Tensor<B, 2, Int>) -> Result<(), BertError> {
        let [batch, seq] = input_ids.dims();
        let max_pos = self.embeddings.position_embeddings.weight.dims()[0];
        if seq > max_pos {
            return Err(BertError::Input(format!(
                "sequence length {seq} exceeds max_position_embeddings {max_pos}; truncate first"
            )));
        }
        if batch == 0 || seq == 0 {
            return Err(BertError::Input(format!(
                "empty batch of shape [{batch}, {seq}]"
            )));
        }
        Ok(())
    }

    /// # Shapes
    /// - input_ids, attention_mask, token_type_ids: `[batch, seq]`
    /// - output: see [`BertModelOutput`]
    ///
    /// `attention_mask` is 1 for tokens and 0 for padding; `token_type_ids` default to 0.
    pub fn forward(
        &self,
        input_ids: Tensor<B, 2, Int>,
        attention_mask: Tensor<B, 2, Int>,
        token_type_ids: Option<Tensor<B, 2, Int>>,
    ) -> Result<BertModelOutput<B>, BertError>
    where
        B: BertBackend,
    {
        let (hidden, mask) = self.embed(input_ids, attention_mask, token_type_ids)?;
        let hidden = self
            .encoder
            .layer
            .iter()
            .fold(hidden, |hidden, layer| layer.forward(hidden, &mask));
        let pooler_output = self.pooler.forward(hidden.clone());
        Ok(BertModelOutput {
            last_hidden_state: hidden,
            pooler_output,
        })
    }

    /// Only the pooler output, which is all a sequence classifier reads: the last layer runs
    /// at the `[CLS]` position alone ([`BertLayer::forward_cls`]), saving ≈ 85 % of that
    /// layer's work at 256 tokens: ≈ 14 % of MiniLM's six layers, ≈ 7 % of bert-base's
    /// twelve. Equal to `forward(..).pooler_output` up to float rounding.
    ///
    /// # Shapes
    /// - input_ids, attention_mask, token_type_ids: `[batch, seq]`
    /// - output: `[batch, hidden]`
    pub fn pooled(
        &self,
        input_ids: Tensor<B, 2, Int>,
        attention_mask: Tensor<B, 2, Int>,
        token_type_ids: Option<Tensor<B, 2, Int>>,
    ) -> Result<Tensor<B, 2>, BertError>
    where
        B: BertBackend,
    {
        let (hidden, mask) = self.embed(input_ids, attention_mask, token_type_ids)?;
        let hidden = match self.encoder.layer.split_last() {
            Some((last, rest)) => last.forward_cls(
                rest.iter()
                    .fold(hidden, |hidden, layer| layer.forward(hidden, &mask)),
                &mask,
            ),
            None => hidden,
        };
        Ok(self.pooler.forward(hidden))
    }

    /// Checked inputs → the embeddings and the attention mask.
    fn embed(
        &self,
        input_ids: Tensor<B, 2, Int>,
        attention_mask: Tensor<B, 2, Int>,
        token_type_ids: Option<Tensor<B, 2, Int>>,
    ) -> Result<(Tensor<B, 3>, AttentionMask<B>), BertError>
    where
        B: BertBackend,
    {
        self.check_input(&input_ids)?;
        let dtype = self.precision().dtype();
        if attention_mask.dims() != input_ids.dims() {
            return Err(BertError::Input(format!(
                "attention_mask shape {:?} differs from input_ids shape {:?}",
                attention_mask.dims(),
                input_ids.dims()
            )));
        }
        let token_type_ids = token_type_ids.unwrap_or_else(|| input_ids.zeros_like());
        let mask = AttentionMask::new(attention_mask);
        // The embeddings are summed and normalised in f32; the encoder computes in its own
        // precision from here on.
        let hidden = to_dtype(self.embeddings.forward(input_ids, token_type_ids), dtype);
        Ok((hidden, mask))
    }

    /// The precision the encoder computes in: its projections' dtype (see
    /// [`crate::Precision`]; the embeddings and layer norms are f32 in both).
    pub fn precision(&self) -> Precision {
        Precision::of_dtype(self.pooler.dense.weight.val().dtype()).unwrap_or_default()
    }

    /// The encoder with its frozen projections (the encoder's linears, base layers only, and
    /// the pooler) in `precision`'s dtype; embeddings, layer norms and LoRA adapters stay
    /// f32. Casting an f32 model to bf16 and back gives bf16-rounded weights: to save an f32
    /// model after a bf16 run, load the base again (see [`BertForSequenceClassification::with_trained_from`]).
    pub fn with_precision(mut self, precision: Precision) -> Self {
        let dtype = precision.dtype();
        self.pooler.dense = linear_in(self.pooler.dense, dtype);
        self.map_all_projections(|mut l| {
            l.base_layer = linear_in(l.base_layer, dtype);
            l
        })
    }

    /// Adds fresh LoRA adapters to every projection the configuration targets.
    ///
    /// Target names are PEFT's (`query`, `value`, `attention.output.dense`, …); an unknown
    /// one is refused rather than silently matching nothing.
    pub fn with_lora(self, config: &LoraConfig) -> Result<Self, BertError> {
        self.map_targets(config, |linear| linear.with_adapter(config))
    }

    /// Applies `f` to every projection that `config` targets.
    pub fn map_targets(
        mut self,
        config: &LoraConfig,
        mut f: impl FnMut(LoraLinear<B>) -> Result<LoraLinear<B>, lora::LoraError>,
    ) -> Result<Self, BertError> {
        config.validate().map_err(|source| BertError::Lora {
            context: "LoRA configuration".into(),
            source,
        })?;
        for target in &config.target_modules {
            if !LORA_TARGETS
                .iter()
                .any(|t| target_matches(target, t) || t == target)
            {
                return Err(BertError::Input(format!(
                    "unknown LoRA target module {target:?}; BERT has {LORA_TARGETS:?}"
                )));
            }
        }
        let layers = std::mem::take(&mut self.encoder.layer);
        self.encoder.layer = layers
            .into_iter()
            .enumerate()
            .map(|(i, layer)| {
                if !config.adapts_layer(i) {
                    return Ok(layer);
                }
                layer.map_projections(|name, linear| {
                    if config
                        .target_modules
                        .iter()
                        .any(|t| target_matches(t, name))
                    {
                        f(linear).map_err(|source| BertError::Lora {
                            context: format!("encoder.layer.{i}.{name}"),
                            source,
                        })
                    } else {
                        Ok(linear)
                    }
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(self)
    }

    /// Folds every adapter into its base weight (idempotent).
    pub fn merge_lora(self) -> Self {
        self.map_all_projections(LoraLinear::merge)
    }

    /// Takes merged adapters back out (idempotent).
    pub fn unmerge_lora(self) -> Self {
        self.map_all_projections(LoraLinear::unmerge)
    }

    fn map_all_projections(mut self, f: impl Fn(LoraLinear<B>) -> LoraLinear<B>) -> Self {
        let layers = std::mem::take(&mut self.encoder.layer);
        self.encoder.layer = layers
            .into_iter()
            .map(|layer| {
                match layer.map_projections(|_, l| Ok::<_, std::convert::Infallible>(f(l))) {
                    Ok(layer) => layer,
                    Err(never) => match never {},
                }
            })
            .collect();
        self
    }

    /// Number of LoRA parameters in the encoder.
    pub fn num_lora_params(&self) -> usize {
        self.encoder
            .layer
            .iter()
            .flat_map(|l| l.projections())
            .map(|(_, p)| p.num_trainable())
            .sum()
    }
}

/// BERT with a sequence-classification head (transformers' `BertForSequenceClassification`).
#[derive(Module, Debug)]
pub struct BertForSequenceClassification<B: Backend> {
    /// `bert`.
    pub bert: BertModel<B>,
    /// Dropout before the classifier.
    pub dropout: Dropout,
    /// `classifier`, `hidden → num_labels`; trainable (PEFT's `modules_to_save`).
    pub classifier: Linear<B>,
}

impl<B: Backend> BertForSequenceClassification<B> {
    /// A fresh classifier head on the given encoder, initialised as transformers does
    /// (normal(0, initializer_range), zero bias), drawn from `seed` on the host: the same
    /// head on every backend and thread, whatever else uses Burn's global RNG meanwhile.
    pub fn with_fresh_head(
        bert: BertModel<B>,
        config: &BertConfig,
        device: &B::Device,
        seed: u64,
    ) -> Self {
        let (d_in, d_out) = (config.hidden_size, config.num_labels());
        let values = normal_values(d_in * d_out, config.initializer_range, seed);
        let classifier = Linear {
            weight: frozen(Tensor::from_data(
                TensorData::new(values, [d_in, d_out]),
                device,
            )),
            bias: Some(frozen(Tensor::zeros([d_out], device))),
        };
        Self {
            bert,
            dropout: dropout(config.classifier_dropout_prob()),
            classifier: trainable(classifier),
        }
    }

    /// With the head stored in the checkpoint (`classifier.weight`/`.bias`, unprefixed).
    pub fn with_loaded_head(
        bert: BertModel<B>,
        w: &Weights,
        config: &BertConfig,
        device: &B::Device,
    ) -> Result<Self, BertError> {
        Ok(Self {
            bert,
            dropout: dropout(config.classifier_dropout_prob()),
            classifier: trainable(w.linear(
                "classifier",
                config.hidden_size,
                config.num_labels(),
                device,
            )?),
        })
    }

    /// Logits over the labels.
    ///
    /// # Shapes
    /// - input_ids, attention_mask, token_type_ids: `[batch, seq]`
    /// - output: `[batch, num_labels]`
    pub fn forward(
        &self,
        input_ids: Tensor<B, 2, Int>,
        attention_mask: Tensor<B, 2, Int>,
        token_type_ids: Option<Tensor<B, 2, Int>>,
    ) -> Result<Tensor<B, 2>, BertError>
    where
        B: BertBackend,
    {
        // The head is f32 whatever the encoder's precision: the logits and loss are f32.
        let pooled = to_dtype(
            self.bert
                .pooled(input_ids, attention_mask, token_type_ids)?,
            DType::F32,
        );
        Ok(self
            .classifier
            .forward(B::bert_dropout(pooled, self.dropout.prob)))
    }

    /// The classifier with its encoder in `precision` ([`BertModel::with_precision`]); the
    /// head stays f32.
    pub fn with_precision(mut self, precision: Precision) -> Self {
        self.bert = self.bert.with_precision(precision);
        self
    }

    /// `self` (typically the base checkpoint loaded again in f32) carrying `trained`'s LoRA
    /// adapters and classifier head: a bf16 run's result with full-precision base weights,
    /// for merging and saving. The two must have the same layers; adapters are taken
    /// unmerged as they are.
    pub fn with_trained_from(mut self, trained: &Self) -> Result<Self, BertError> {
        let (ours, theirs) = (
            self.bert.encoder.layer.len(),
            trained.bert.encoder.layer.len(),
        );
        if ours != theirs {
            return Err(BertError::Input(format!(
                "cannot take adapters from a model of {theirs} layers into one of {ours}"
            )));
        }
        let layers = std::mem::take(&mut self.bert.encoder.layer);
        self.bert.encoder.layer = layers
            .into_iter()
            .zip(&trained.bert.encoder.layer)
            .enumerate()
            .map(|(i, (layer, source))| {
                let sources = source.projections();
                layer.map_projections(|name, mut linear| {
                    let from = sources.iter().find(|(n, _)| *n == name).map(|(_, p)| *p);
                    if from.is_some_and(|p| p.is_merged()) {
                        return Err(BertError::Input(format!(
                            "encoder.layer.{i}.{name}: the adapter is merged into its base \
                             weight; unmerge it before taking it into another base"
                        )));
                    }
                    linear.lora = from.and_then(|p| p.lora.clone());
                    Ok(linear)
                })
            })
            .collect::<Result<_, _>>()?;
        self.classifier = trained.classifier.clone();
        Ok(self)
    }

    /// Parameters that training updates: LoRA factors plus the classifier head.
    pub fn num_trainable_params(&self) -> usize {
        self.bert.num_lora_params() + self.classifier.num_params()
    }
}

/// `n` draws from normal(0, std), deterministic in `seed` (SplitMix64 + Box–Muller).
fn normal_values(n: usize, std: f64, seed: u64) -> Vec<f32> {
    let mut state = seed;
    let mut next_unit = || {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        // 53 random bits mapped into (0, 1): never 0, so the logarithm is finite.
        (((z ^ (z >> 31)) >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    };
    (0..n)
        .map(|_| {
            let (u1, u2) = (next_unit(), next_unit());
            (std * (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()) as f32
        })
        .collect()
}

fn trainable<B: Backend>(linear: Linear<B>) -> Linear<B> {
    Linear {
        weight: linear.weight.set_require_grad(true),
        bias: linear.bias.map(|b| b.set_require_grad(true)),
    }
}
