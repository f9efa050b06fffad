//! The BERT encoder, layer by layer, in the manner of `transformers`' `modeling_bert.py` (and
//! candle's `bert.rs`): field names mirror the checkpoint keys.
//!
//! RoBERTa ([`crate::roberta`]) and ELECTRA ([`crate::electra`]) are this encoder with other
//! embeddings, as in transformers, whose `modeling_roberta.py` and `modeling_electra.py` copy
//! these modules: RoBERTa counts positions from `pad_token_id + 1`, ELECTRA's embeddings have
//! their own width and a projection to the hidden size; neither has a pooler.
//!
//! Every projection inside the encoder is a [`LoraLinear`], without adapter unless a
//! LoRA configuration targets it, so the same model type serves the frozen backbone, the
//! LoRA-adapted model and the merged one.

use burn::module::Module;
use burn::nn::{Dropout, Embedding, LayerNorm, Linear};
use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor};
use imdb_lora_kernels::{AttentionMask, KernelBackend, to_dtype};
use imdb_lora_lora::LoraLinear;

use crate::config::{EncoderConfig, Family, HiddenAct};
use crate::error::EncoderError;
use crate::kernel_ops::KernelOps;
use crate::layers::{
    TransformerLayer, activate, check_input, dropout, first_token, fresh_embedding, fresh_linear,
    fresh_norm, layers_precision, norm, run_layers, run_layers_first_token,
};
use crate::weights::Weights;

/// How the embeddings number positions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Positions {
    /// `0..seq` for every sequence (BERT, ELECTRA).
    Absolute,
    /// RoBERTa's: `padding_idx + 1` onward for each non-padding token, `padding_idx` for
    /// padding (`create_position_ids_from_input_ids`).
    AfterPadding {
        /// The padding token's id, also the padding row of the position table.
        padding_idx: usize,
    },
}

/// Word + position + token-type embeddings, then LayerNorm and dropout.
#[derive(Module, Debug)]
pub struct BertEmbeddings<B: Backend> {
    /// `embeddings.word_embeddings`, `[vocab_size, embedding]`.
    pub word_embeddings: Embedding<B>,
    /// `embeddings.position_embeddings`, `[max_position_embeddings, embedding]`.
    pub position_embeddings: Embedding<B>,
    /// `embeddings.token_type_embeddings`, `[type_vocab_size, embedding]`.
    pub token_type_embeddings: Embedding<B>,
    /// `embeddings.LayerNorm`.
    pub layer_norm: LayerNorm<B>,
    /// Its epsilon (`layer_norm_eps`; Burn's `LayerNorm` keeps its own private).
    #[module(skip)]
    pub layer_norm_eps: f64,
    /// Hidden dropout.
    pub dropout: Dropout,
    /// How positions are numbered (the family's rule).
    #[module(skip)]
    pub positions: Positions,
}

impl<B: Backend> BertEmbeddings<B> {
    /// Randomly initialised, as transformers initialises an untrained model.
    pub fn init(config: &EncoderConfig, device: &B::Device) -> Self {
        let (e, std) = (config.embedding_width(), config.initializer_range);
        Self {
            word_embeddings: fresh_embedding(config.vocab_size, e, std, device),
            position_embeddings: fresh_embedding(config.max_position_embeddings, e, std, device),
            token_type_embeddings: fresh_embedding(config.type_vocab_size, e, std, device),
            layer_norm: fresh_norm(e, config.layer_norm_eps, device),
            layer_norm_eps: config.layer_norm_eps,
            dropout: dropout(config.hidden_dropout_prob),
            positions: positions_of(config),
        }
    }

    /// From `embeddings.*` (relative to the weights' prefix).
    pub fn load(
        w: &Weights,
        config: &EncoderConfig,
        device: &B::Device,
    ) -> Result<Self, EncoderError> {
        let e = config.embedding_width();
        Ok(Self {
            word_embeddings: w.embedding(
                "embeddings.word_embeddings",
                config.vocab_size,
                e,
                device,
            )?,
            position_embeddings: w.embedding(
                "embeddings.position_embeddings",
                config.max_position_embeddings,
                e,
                device,
            )?,
            token_type_embeddings: w.embedding(
                "embeddings.token_type_embeddings",
                config.type_vocab_size,
                e,
                device,
            )?,
            layer_norm: w.layer_norm("embeddings.LayerNorm", e, config.layer_norm_eps, device)?,
            layer_norm_eps: config.layer_norm_eps,
            dropout: dropout(config.hidden_dropout_prob),
            positions: positions_of(config),
        })
    }

    /// # Shapes
    /// - input_ids, token_type_ids: `[batch, seq]`
    /// - output: `[batch, seq, embedding]`
    pub fn forward(
        &self,
        input_ids: Tensor<B, 2, Int>,
        token_type_ids: Tensor<B, 2, Int>,
    ) -> Tensor<B, 3>
    where
        B: KernelBackend,
    {
        let [_, seq] = input_ids.dims();
        let position_embeddings = match self.positions {
            Positions::Absolute => {
                // Shared by the whole batch: embed `[1, seq]` once and broadcast.
                let positions =
                    Tensor::<B, 1, Int>::arange(0..seq as i64, &input_ids.device()).unsqueeze();
                self.position_embeddings.forward(positions)
            }
            Positions::AfterPadding { padding_idx } => {
                let tokens = input_ids.clone().not_equal_elem(padding_idx as i64).int();
                let positions = tokens.clone().cumsum(1) * tokens + padding_idx as i64;
                self.position_embeddings.forward(positions)
            }
        };
        let x = self.word_embeddings.forward(input_ids)
            + self.token_type_embeddings.forward(token_type_ids)
            + position_embeddings;
        B::kernel_dropout(
            norm(&self.layer_norm, self.layer_norm_eps, x),
            self.dropout.prob,
        )
    }
}

fn positions_of(config: &EncoderConfig) -> Positions {
    match config.family {
        Family::Roberta => Positions::AfterPadding {
            padding_idx: config.pad_token_id,
        },
        _ => Positions::Absolute,
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
    fn init(config: &EncoderConfig, device: &B::Device) -> Self {
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
        config: &EncoderConfig,
        device: &B::Device,
    ) -> Result<Self, EncoderError> {
        let h = config.hidden_size;
        let lin = |name: &str| -> Result<LoraLinear<B>, EncoderError> {
            w.projection(&format!("{p}.{name}"), h, h, device)
        };
        Ok(Self {
            query: lin("query")?,
            key: lin("key")?,
            value: lin("value")?,
            dropout: dropout(config.attention_probs_dropout_prob),
            num_attention_heads: config.num_attention_heads,
        })
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
        B: KernelBackend,
    {
        let q = self.query.forward_with(queries, KernelOps);
        let k = self.key.forward_with(hidden.clone(), KernelOps);
        let v = self.value.forward_with(hidden, KernelOps);
        B::kernel_attention(q, k, v, self.num_attention_heads, mask, self.dropout.prob)
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
    pub(crate) fn init(d_in: usize, config: &EncoderConfig, device: &B::Device) -> Self {
        Self {
            dense: LoraLinear::new(fresh_linear(
                d_in,
                config.hidden_size,
                config.initializer_range,
                device,
            )),
            layer_norm: fresh_norm(config.hidden_size, config.layer_norm_eps, device),
            layer_norm_eps: config.layer_norm_eps,
            dropout: dropout(config.hidden_dropout_prob),
        }
    }

    pub(crate) fn load(
        w: &Weights,
        p: &str,
        d_in: usize,
        config: &EncoderConfig,
        device: &B::Device,
    ) -> Result<Self, EncoderError> {
        let h = config.hidden_size;
        Ok(Self {
            dense: w.projection(&format!("{p}.dense"), d_in, h, device)?,
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
        B: KernelBackend,
    {
        let x = B::kernel_dropout(self.dense.forward_with(x, KernelOps), self.dropout.prob);
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
        B: KernelBackend,
    {
        activate(self.activation, self.dense.forward_with(x, KernelOps))
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
    fn init(config: &EncoderConfig, device: &B::Device) -> Self {
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
        config: &EncoderConfig,
        device: &B::Device,
    ) -> Result<Self, EncoderError> {
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
                dense: w.projection(&format!("{p}.intermediate.dense"), h, i, device)?,
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
        B: KernelBackend,
    {
        self.forward_from(hidden.clone(), hidden, mask)
    }
}

impl<B: Backend> TransformerLayer<B> for BertLayer<B> {
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
        let attended = self.attention.output.forward(
            self.attention
                .self_attention
                .attend(queries.clone(), hidden, mask),
            queries,
        );
        let expanded = self.intermediate.forward(attended.clone());
        self.output.forward(expanded, attended)
    }

    fn projections(&self) -> Vec<(&'static str, &LoraLinear<B>)> {
        vec![
            ("attention.self.query", &self.attention.self_attention.query),
            ("attention.self.key", &self.attention.self_attention.key),
            ("attention.self.value", &self.attention.self_attention.value),
            ("attention.output.dense", &self.attention.output.dense),
            ("intermediate.dense", &self.intermediate.dense),
            ("output.dense", &self.output.dense),
        ]
    }

    fn map_projections<E>(
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
    /// - cls: `[batch, hidden]` (the `[CLS]` state)
    /// - output: `[batch, hidden]`
    pub fn forward(&self, cls: Tensor<B, 2>) -> Tensor<B, 2> {
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
    /// `tanh(dense(h_[CLS]))`, `[batch, hidden]`; `None` for a model without pooler
    /// (RoBERTa, ELECTRA).
    pub pooler_output: Option<Tensor<B, 2>>,
}

/// The bare encoder (transformers' `BertModel`, `RobertaModel`, `ElectraModel`).
#[derive(Module, Debug)]
pub struct BertModel<B: Backend> {
    /// `embeddings`.
    pub embeddings: BertEmbeddings<B>,
    /// `embeddings_project` (ELECTRA whose embedding width differs from the hidden size).
    pub embeddings_project: Option<Linear<B>>,
    /// `encoder`.
    pub encoder: BertEncoder<B>,
    /// `pooler` (BERT only: RoBERTa's and ELECTRA's classifiers read the first token).
    pub pooler: Option<BertPooler<B>>,
}

impl<B: Backend> BertModel<B> {
    /// A randomly initialised model (frozen, like a loaded one).
    pub fn init(config: &EncoderConfig, device: &B::Device) -> Self {
        let (h, std) = (config.hidden_size, config.initializer_range);
        Self {
            embeddings: BertEmbeddings::init(config, device),
            embeddings_project: (config.embedding_width() != h)
                .then(|| fresh_linear(config.embedding_width(), h, std, device)),
            encoder: BertEncoder {
                layer: (0..config.num_hidden_layers)
                    .map(|_| BertLayer::init(config, device))
                    .collect(),
            },
            pooler: (config.family == Family::Bert).then(|| BertPooler {
                dense: fresh_linear(h, h, std, device),
            }),
        }
    }

    /// From weights whose prefix points at the encoder (`""`, `"bert."`, `"roberta."`,
    /// `"electra."`).
    ///
    /// A BERT checkpoint without pooler (some sentence-embedding exports) gets a fresh one,
    /// initialised as transformers does, and says so in the log; the other families have none.
    ///
    /// Order matters: the embeddings first (they pin the vocabulary, positions and width),
    /// then the layers, and only then anything fresh, so a config that disagrees with the
    /// checkpoint fails before anything is allocated from its sizes alone.
    pub fn load(
        w: &Weights,
        config: &EncoderConfig,
        device: &B::Device,
    ) -> Result<Self, EncoderError> {
        let h = config.hidden_size;
        let embeddings = BertEmbeddings::load(w, config, device)?;
        let embeddings_project = if config.embedding_width() != h {
            Some(w.linear("embeddings_project", config.embedding_width(), h, device)?)
        } else {
            None
        };
        let layer = (0..config.num_hidden_layers)
            .map(|i| BertLayer::load(w, &format!("encoder.layer.{i}"), config, device))
            .collect::<Result<_, _>>()?;
        let pooler = match config.family {
            Family::Bert if w.contains("pooler.dense.weight") => Some(BertPooler {
                dense: w.linear("pooler.dense", h, h, device)?,
            }),
            Family::Bert => {
                tracing::warn!(
                    file = %w.path().display(),
                    "checkpoint has no pooler; initialising pooler.dense with normal(0, {})",
                    config.initializer_range
                );
                Some(BertPooler {
                    dense: fresh_linear(h, h, config.initializer_range, device),
                })
            }
            _ => None,
        };
        Ok(Self {
            embeddings,
            embeddings_project,
            encoder: BertEncoder { layer },
            pooler,
        })
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
    ) -> Result<BertModelOutput<B>, EncoderError>
    where
        B: KernelBackend,
    {
        let (hidden, mask) = self.embed(input_ids, attention_mask, token_type_ids)?;
        let hidden = run_layers(&self.encoder.layer, hidden, &mask);
        let pooler_output = self
            .pooler
            .as_ref()
            .map(|p| p.forward(first_token(hidden.clone())));
        Ok(BertModelOutput {
            last_hidden_state: hidden,
            pooler_output,
        })
    }

    /// What a sequence classifier reads: the pooler output where there is a pooler, else the
    /// first token's final state. The last layer runs at that position alone
    /// ([`run_layers_first_token`]), saving ≈ 85 % of that layer's work at 256 tokens. Equal
    /// to `forward(..)`'s up to float rounding.
    ///
    /// # Shapes
    /// - input_ids, attention_mask, token_type_ids: `[batch, seq]`
    /// - output: `[batch, hidden]`
    pub fn pooled(
        &self,
        input_ids: Tensor<B, 2, Int>,
        attention_mask: Tensor<B, 2, Int>,
        token_type_ids: Option<Tensor<B, 2, Int>>,
    ) -> Result<Tensor<B, 2>, EncoderError>
    where
        B: KernelBackend,
    {
        let (hidden, mask) = self.embed(input_ids, attention_mask, token_type_ids)?;
        let first = run_layers_first_token(&self.encoder.layer, hidden, &mask);
        Ok(match &self.pooler {
            Some(pooler) => pooler.forward(first),
            None => first,
        })
    }

    /// Checked inputs → the embeddings (projected to the hidden width, in the encoder's
    /// precision) and the attention mask.
    fn embed(
        &self,
        input_ids: Tensor<B, 2, Int>,
        attention_mask: Tensor<B, 2, Int>,
        token_type_ids: Option<Tensor<B, 2, Int>>,
    ) -> Result<(Tensor<B, 3>, AttentionMask<B>), EncoderError>
    where
        B: KernelBackend,
    {
        let max_positions = self.embeddings.position_embeddings.weight.dims()[0];
        let offset = match self.embeddings.positions {
            Positions::Absolute => 0,
            Positions::AfterPadding { padding_idx } => padding_idx + 1,
        };
        check_input(
            &input_ids,
            &attention_mask,
            max_positions.saturating_sub(offset),
        )?;
        let token_type_ids = token_type_ids.unwrap_or_else(|| input_ids.zeros_like());
        let mask = AttentionMask::new(attention_mask);
        let embedded = self.embeddings.forward(input_ids, token_type_ids);
        let embedded = match &self.embeddings_project {
            Some(project) => project.forward(embedded),
            None => embedded,
        };
        // The embeddings are summed and normalised in f32; the encoder computes in its own
        // precision from here on.
        Ok((
            to_dtype(embedded, layers_precision(self.layers()).dtype()),
            mask,
        ))
    }

    /// The encoder's layers.
    pub fn layers(&self) -> &[BertLayer<B>] {
        &self.encoder.layer
    }
}
