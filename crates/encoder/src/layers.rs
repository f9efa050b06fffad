//! What every family's layers share: fresh initialisation as transformers does it, layer
//! norm through the backend's kernel in f32, activations, and the trait by which LoRA finds a
//! layer's projections under PEFT's module names.

use burn::module::Module;
use burn::nn::{Dropout, Embedding, LayerNorm, LayerNormConfig, Linear};
use burn::tensor::activation::{gelu_approximate, relu};
use burn::tensor::backend::Backend;
use burn::tensor::{DType, Distribution, Int, Tensor, TensorData};
use imdb_lora_kernels::{KernelBackend, to_dtype};
use imdb_lora_lora::LoraLinear;

use crate::config::HiddenAct;
use crate::error::EncoderError;
use crate::precision::Precision;
use crate::weights::frozen;

/// A dropout of probability `prob`.
pub(crate) fn dropout(prob: f64) -> Dropout {
    // Not `DropoutConfig::init`: that panics on a bad probability, and the config is validated.
    Dropout { prob }
}

/// transformers' `_init_weights` for a linear layer: normal(0, initializer_range) weight,
/// zero bias. Drawn eagerly (Burn's initialisers are lazy), so the draw happens right after
/// the caller seeds the backend and the result does not depend on later use order.
pub(crate) fn fresh_linear<B: Backend>(
    d_in: usize,
    d_out: usize,
    std: f64,
    device: &B::Device,
) -> Linear<B> {
    let weight = Tensor::random([d_in, d_out], Distribution::Normal(0.0, std), device);
    Linear {
        weight: frozen(weight),
        bias: Some(frozen(Tensor::zeros([d_out], device))),
    }
}

/// A linear layer initialised as [`fresh_linear`], drawn from `seed` on the host: the same
/// layer on every backend and thread, whatever else uses Burn's global RNG meanwhile (the
/// classification heads).
pub(crate) fn seeded_linear<B: Backend>(
    d_in: usize,
    d_out: usize,
    std: f64,
    seed: u64,
    device: &B::Device,
) -> Linear<B> {
    let values = normal_values(d_in * d_out, std, seed);
    Linear {
        weight: frozen(Tensor::from_data(
            TensorData::new(values, [d_in, d_out]),
            device,
        )),
        bias: Some(frozen(Tensor::zeros([d_out], device))),
    }
}

/// A fresh LayerNorm (weight 1, bias 0), frozen.
pub(crate) fn fresh_norm<B: Backend>(width: usize, eps: f64, device: &B::Device) -> LayerNorm<B> {
    LayerNormConfig::new(width)
        .with_epsilon(eps)
        .init(device)
        .no_grad()
}

/// A fresh embedding table, normal(0, std), frozen.
pub(crate) fn fresh_embedding<B: Backend>(
    n: usize,
    d: usize,
    std: f64,
    device: &B::Device,
) -> Embedding<B> {
    Embedding {
        weight: frozen(Tensor::random(
            [n, d],
            Distribution::Normal(0.0, std),
            device,
        )),
    }
}

/// `norm(x)` through the backend's kernel, always in f32 (statistics and parameters): a
/// bf16 input is widened first and the result rounded back to bf16.
pub(crate) fn norm<B: KernelBackend, const D: usize>(
    norm: &LayerNorm<B>,
    eps: f64,
    x: Tensor<B, D>,
) -> Tensor<B, D> {
    let dtype = x.dtype();
    let normed = B::kernel_layer_norm(
        to_dtype(x, DType::F32),
        norm.gamma.val(),
        norm.beta.as_ref().map(|b| b.val()),
        eps,
    );
    to_dtype(normed, dtype)
}

/// A frozen linear layer with weight and bias in `dtype`.
pub(crate) fn linear_in<B: Backend>(linear: Linear<B>, dtype: DType) -> Linear<B> {
    Linear {
        weight: linear.weight.map(|w| to_dtype(w, dtype)),
        bias: linear.bias.map(|b| b.map(|b| to_dtype(b, dtype))),
    }
}

/// The feed-forward activation, the exact GELU through the backend's kernel.
pub(crate) fn activate<B: KernelBackend, const D: usize>(
    activation: HiddenAct,
    x: Tensor<B, D>,
) -> Tensor<B, D> {
    match activation {
        HiddenAct::Gelu => B::kernel_gelu(x),
        HiddenAct::GeluTanh => gelu_approximate(x),
        HiddenAct::Relu => relu(x),
    }
}

/// `linear` with its weight and bias taking gradients (a module PEFT trains in full).
pub(crate) fn trainable<B: Backend>(linear: Linear<B>, train: bool) -> Linear<B> {
    Linear {
        weight: linear.weight.set_require_grad(train),
        bias: linear.bias.map(|b| b.set_require_grad(train)),
    }
}

/// The state at the first position of every sequence (`[CLS]`, `<s>`).
///
/// # Shapes
/// - hidden: `[batch, seq, hidden]`
/// - output: `[batch, hidden]`
pub(crate) fn first_token<B: Backend>(hidden: Tensor<B, 3>) -> Tensor<B, 2> {
    let [batch, _, width] = hidden.dims();
    hidden
        .slice([0..batch, 0..1, 0..width])
        .reshape([batch, width])
}

/// `n` draws from normal(0, std), deterministic in `seed` (SplitMix64 + Box–Muller).
pub(crate) fn normal_values(n: usize, std: f64, seed: u64) -> Vec<f32> {
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

/// One post-norm transformer layer of any family: how it runs, and the linear projections
/// LoRA may adapt, each under its module path inside the layer as transformers names it
/// (`attention.self.query`, `attention.q_lin`): PEFT's target names match these by suffix,
/// and adapter keys are built from them.
pub trait TransformerLayer<B: Backend>: Sized {
    /// What every layer of one forward pass shares, built once per pass: the attention mask
    /// (BERT's layers), plus DeBERTa's relative positions or ModernBERT's rotary tables.
    type Context;

    /// The layer at the positions of `queries` (all of `hidden`'s, or a leading subset such
    /// as `[CLS]`), attending over every token of `hidden`.
    ///
    /// # Shapes
    /// - queries: `[batch, queries, hidden]`, hidden: `[batch, seq, hidden]`
    /// - output: `[batch, queries, hidden]`
    fn forward_from(
        &self,
        queries: Tensor<B, 3>,
        hidden: Tensor<B, 3>,
        context: &Self::Context,
    ) -> Tensor<B, 3>
    where
        B: KernelBackend;

    /// Every projection, in a fixed order (the order adapters are created in).
    fn projections(&self) -> Vec<(&'static str, &LoraLinear<B>)>;

    /// Applies `f` to every projection, in [`Self::projections`]' order.
    fn map_projections<E>(
        self,
        f: impl FnMut(&'static str, LoraLinear<B>) -> Result<LoraLinear<B>, E>,
    ) -> Result<Self, E>;
}

/// Every layer in turn.
///
/// # Shapes
/// - hidden: `[batch, seq, hidden]`
/// - output: `[batch, seq, hidden]`
pub(crate) fn run_layers<B: KernelBackend, L: TransformerLayer<B>>(
    layers: &[L],
    hidden: Tensor<B, 3>,
    context: &L::Context,
) -> Tensor<B, 3> {
    layers.iter().fold(hidden, |hidden, layer| {
        layer.forward_from(hidden.clone(), hidden, context)
    })
}

/// Every layer in turn, the last at the first position only: keys and values still come from
/// every token, while the query, the output projections, the feed-forward block and the layer
/// norms, all position-wise, run on one position instead of `seq`. That is all a sequence
/// classifier reads from the last layer, and the same numbers as `run_layers(..)[:, 0]`.
///
/// # Shapes
/// - hidden: `[batch, seq, hidden]`
/// - output: `[batch, hidden]`
pub(crate) fn run_layers_first_token<B: KernelBackend, L: TransformerLayer<B>>(
    layers: &[L],
    hidden: Tensor<B, 3>,
    context: &L::Context,
) -> Tensor<B, 2> {
    match layers.split_last() {
        Some((last, rest)) => {
            let hidden = run_layers(rest, hidden, context);
            let [batch, _, width] = hidden.dims();
            let first = hidden.clone().slice([0..batch, 0..1, 0..width]);
            last.forward_from(first, hidden, context)
                .reshape([batch, width])
        }
        None => first_token(hidden),
    }
}

/// The precision an encoder computes in: its projections' dtype (see [`crate::Precision`];
/// the embeddings and layer norms are f32 in both).
pub(crate) fn layers_precision<B: Backend, L: TransformerLayer<B>>(layers: &[L]) -> Precision {
    layers
        .first()
        .and_then(|l| {
            l.projections()
                .first()
                .and_then(|(_, p)| p.base_layer.float().map(|l| l.weight.val().dtype()))
        })
        .and_then(Precision::of_dtype)
        .unwrap_or_default()
}

/// Checks ids and shapes before they reach the embedding tables, where an out-of-range
/// index would be a backend panic or silent garbage. `max_len` is the longest sequence the
/// position table covers.
pub(crate) fn check_input<B: Backend>(
    input_ids: &Tensor<B, 2, Int>,
    attention_mask: &Tensor<B, 2, Int>,
    max_len: usize,
) -> Result<(), EncoderError> {
    let [batch, seq] = input_ids.dims();
    if seq > max_len {
        return Err(EncoderError::Input(format!(
            "sequence length {seq} exceeds the {max_len} positions of the model; truncate first"
        )));
    }
    if batch == 0 || seq == 0 {
        return Err(EncoderError::Input(format!(
            "empty batch of shape [{batch}, {seq}]"
        )));
    }
    if attention_mask.dims() != input_ids.dims() {
        return Err(EncoderError::Input(format!(
            "attention_mask shape {:?} differs from input_ids shape {:?}",
            attention_mask.dims(),
            input_ids.dims()
        )));
    }
    Ok(())
}
