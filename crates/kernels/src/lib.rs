//! The encoders' hot operations as a Burn backend extension: attention, exact GELU,
//! dropout, layer norm and the linear layers, for every model family alike.
//!
//! Burn composes these from generic tensor ops, which on a CPU means one single-threaded
//! memory pass per op and dropout masks drawn element by element from a ChaCha stream.
//! [`KernelBackend`] names the operations with those compositions as defaults, so any
//! backend works unchanged, and lets a backend replace them.
//!
//! This is Burn's documented pattern for custom kernels (a trait over `Backend`, implemented
//! for the concrete backends and their `Autodiff` wrappers); Rust has no specialisation, so
//! every backend the workspace builds is listed.
//!
//! # Layout
//! - this module: the trait, what its signatures need ([`AttentionMask`], the dropout keys),
//!   Burn's compositions as the portable defaults, and NdArray, which uses them unchanged.
//!   The model crate hands the trait's linear and dropout to its LoRA layers; this crate
//!   knows no model and no LoRA.
//! - [`flex`]: Flex and `Autodiff<Flex>`, fused multi-threaded CPU kernels with hand-written
//!   backward passes; its submodules are the kernels and the helpers they share.
//! - `cube`: the CubeCL backends (CUDA, wgpu), in the same shape (the impls in
//!   `cube/mod.rs`, kernels below it as they come).

#[cfg(any(feature = "cuda", feature = "wgpu"))]
pub mod cube;
#[cfg(feature = "flex")]
pub mod flex;
pub mod int8;

use burn::backend::Autodiff;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind, unary};
use burn::nn::Dropout;
use burn::tensor::activation::{gelu, softmax};
use burn::tensor::backend::Backend;
use burn::tensor::module::{attention, linear};
use burn::tensor::ops::{AttentionModuleOptions, FloatTensor};
use burn::tensor::{Bool, DType, Int, Tensor, TensorPrimitive};

use crate::int8::{Int8Linear, linear_int8_composed};

/// The dropout key of one forward pass: every dropout mask drawn inside
/// [`with_dropout_key`] is a pure function of this value and of the mask's place in the
/// pass (the n-th dropout call gets sub-key n), never of a backend's RNG state.
///
/// Why a value: reseeding the backend (`Backend::seed`) before each training step, the old
/// way of making masks replayable, drains a CubeCL backend's fusion stream (a host
/// synchronisation per step). A key is plain data handed to the kernels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DropoutKey(pub u64);

impl DropoutKey {
    /// The two 32-bit words of sub-key `index` (the `index`-th dropout of the pass):
    /// SplitMix64 of `(key, index)`, so neighbouring passes and sites are decorrelated.
    pub fn sub_key(self, index: u64) -> [u32; 2] {
        let mut z = self
            .0
            .wrapping_add(index.wrapping_add(1).wrapping_mul(0x9E37_79B9_7F4A_7C15));
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        [(z >> 32) as u32, z as u32]
    }
}

thread_local! {
    /// The key of the forward pass running on this thread and the dropouts drawn so far.
    static DROPOUT_SCOPE: std::cell::Cell<Option<(DropoutKey, u64)>> =
        const { std::cell::Cell::new(None) };
}

/// Runs `f` (a training forward pass) with every dropout mask taken from `key` by a
/// [`KernelBackend`] whose [`KernelBackend::KEYED_DROPOUT`] is true: the masks are then the same
/// whenever the pass is run with the same key, whatever ran before (exact resume without
/// reseeding). Scopes nest; the outer one is restored afterwards, even on panic.
pub fn with_dropout_key<R>(key: DropoutKey, f: impl FnOnce() -> R) -> R {
    struct Restore(Option<(DropoutKey, u64)>);
    impl Drop for Restore {
        fn drop(&mut self) {
            DROPOUT_SCOPE.with(|s| s.set(self.0));
        }
    }
    let _restore = Restore(DROPOUT_SCOPE.with(|s| s.replace(Some((key, 0)))));
    f()
}

/// The key of the next dropout mask of the current [`with_dropout_key`] scope (and advances
/// it), or `None` outside one. For backend kernels: a mask is a function of these two
/// words and the element index (Flex: `flex::mask`).
pub fn next_dropout_key() -> Option<[u32; 2]> {
    DROPOUT_SCOPE.with(|s| {
        let (key, n) = s.get()?;
        s.set(Some((key, n + 1)));
        Some(key.sub_key(n))
    })
}

/// The padding mask in the two forms the attention paths need, built once per forward, and
/// an optional sliding window (ModernBERT's local layers).
#[derive(Debug, Clone)]
pub struct AttentionMask<B: Backend> {
    /// `true` at padding positions, `[batch, 1, 1, seq]`.
    pub padding: Tensor<B, 4, Bool>,
    /// `0` for tokens, a large negative number for padding, `[batch, 1, 1, seq]`.
    pub additive: Tensor<B, 4>,
    /// With `Some(w)`, query position `i` attends only to keys `j` with `|i − j| ≤ w`
    /// (transformers' bidirectional sliding window of half-width `w`). Queries are the
    /// leading positions of the sequence, so a query's index is its position. A window is a
    /// rule, not a tensor: no `[seq, seq]` mask is built for it.
    pub window: Option<usize>,
}

impl<B: Backend> AttentionMask<B> {
    /// From a `[batch, seq]` mask of 1 (token) / 0 (padding).
    pub fn new(attention_mask: Tensor<B, 2, Int>) -> Self {
        let [batch, seq] = attention_mask.dims();
        let padding = attention_mask.equal_elem(0).reshape([batch, 1, 1, seq]);
        // transformers adds `finfo(float32).min`; any value whose exp underflows gives the
        // same probabilities, and a finite one keeps a fully padded row from producing NaN.
        let additive = Tensor::<B, 4>::zeros([batch, 1, 1, seq], &padding.device())
            .mask_fill(padding.clone(), f32::MIN);
        Self {
            padding,
            additive,
            window: None,
        }
    }

    /// The same padding, attending only within `|i − j| ≤ half_width`.
    pub fn windowed(&self, half_width: usize) -> Self {
        Self {
            window: Some(half_width),
            ..self.clone()
        }
    }
}

/// Extra attention-score terms and the scale of `q·kᵀ`, for encoders whose scores are more
/// than `q·kᵀ/√d` (DeBERTa's disentangled attention:
/// `q·kᵀ/√(3d) + c2p + p2c`, the position terms already divided).
#[derive(Debug, Clone)]
pub struct ScoreBias<B: Backend> {
    /// Added to the scaled scores before the mask and softmax, `[batch, heads, queries,
    /// keys]`; gradients flow into it.
    pub terms: Tensor<B, 4>,
    /// The factor on `q·kᵀ` (`1/√head_dim` in plain attention).
    pub scale: f64,
}

/// A backend the BERT encoder runs on: Burn's [`Backend`] plus three operations a backend
/// may implement faster than their portable compositions.
pub trait KernelBackend: Backend {
    /// Whether every dropout of this backend takes its mask from [`next_dropout_key`] inside
    /// a [`with_dropout_key`] scope. When false (Burn's compositions draw from the backend's
    /// RNG), a trainer that wants replayable masks must reseed the backend before each pass.
    const KEYED_DROPOUT: bool = false;

    /// Multi-head scaled dot-product attention with the padding mask; in training (autodiff
    /// enabled), dropout with probability `dropout` on the attention probabilities, as
    /// transformers does. Heads are interleaved in the hidden dimension, as the projections
    /// produce them (head `h` is columns `h·head_dim..(h+1)·head_dim`).
    ///
    /// # Shapes
    /// - q: `[batch, queries, hidden]` (`queries` ≤ `seq`: a subset of positions)
    /// - k, v: `[batch, seq, hidden]`
    /// - output: `[batch, queries, hidden]`
    fn kernel_attention(
        q: Tensor<Self, 3>,
        k: Tensor<Self, 3>,
        v: Tensor<Self, 3>,
        heads: usize,
        mask: &AttentionMask<Self>,
        dropout: f64,
    ) -> Tensor<Self, 3> {
        attention_heads(q, k, v, heads, mask, dropout)
    }

    /// [`Self::kernel_attention`] with the scores `q·kᵀ·bias.scale + bias.terms` (then the
    /// mask, softmax and dropout as there). The default is the composition
    /// ([`attention_scored_composed`]); Flex runs it in its fused kernel.
    ///
    /// # Shapes
    /// - q: `[batch, queries, hidden]`, k, v: `[batch, seq, hidden]`
    /// - bias.terms: `[batch, heads, queries, seq]`
    /// - output: `[batch, queries, hidden]`
    fn kernel_attention_biased(
        q: Tensor<Self, 3>,
        k: Tensor<Self, 3>,
        v: Tensor<Self, 3>,
        heads: usize,
        mask: &AttentionMask<Self>,
        bias: ScoreBias<Self>,
        dropout: f64,
    ) -> Tensor<Self, 3> {
        let [q, k, v] = [q, k, v].map(|t| split_heads(t, heads));
        merge_heads(attention_scored_composed(
            [q, k, v],
            mask,
            Some(bias),
            dropout,
            Self::kernel_dropout,
        ))
    }

    /// Rotary position embedding (RoPE, transformers' `rotate_half` form) of every head of
    /// `x`: `x·cos + rotate_half(x)·sin`, `rotate_half(a | b) = (−b | a)` per head, row `i`
    /// of `x` at position `i`. The default is the composition ([`rotary_composed`]).
    ///
    /// # Shapes
    /// - x: `[batch, seq, heads·head_dim]`, cos, sin: `[≥ seq, head_dim]`
    /// - output: like x
    fn kernel_rotary(
        x: Tensor<Self, 3>,
        cos: Tensor<Self, 2>,
        sin: Tensor<Self, 2>,
        heads: usize,
    ) -> Tensor<Self, 3> {
        rotary_composed(x, &cos, &sin, heads)
    }

    /// DeBERTa's relative-position terms, `scale·(c2p[b, h, i, δ(i, j)] + p2c[b, h, j, δ(i, j)])`,
    /// for queries `i < queries` and keys `j < keys`: the gathers of the content-to-position
    /// and position-to-content products by the relative index, summed. The default is the
    /// composition (Burn's `gather` on an expanded index); Flex gathers in one pass.
    ///
    /// # Shapes
    /// - c2p: `[batch, heads, queries, 2·span]`, p2c: `[batch, heads, keys, 2·span]`
    /// - output: `[batch, heads, queries, keys]`
    fn kernel_relative_terms(
        c2p: Option<Tensor<Self, 4>>,
        p2c: Option<Tensor<Self, 4>>,
        index: &RelativeIndex<Self>,
        queries: usize,
        scale: f64,
    ) -> Option<Tensor<Self, 4>> {
        relative_terms_composed(c2p, p2c, index, queries, scale)
    }

    /// GeGLU (ModernBERT's feed-forward gate): `gelu(a) ⊙ g` for `x = a | g`, the two halves
    /// of the last dimension, the GELU exact. The default is the composition
    /// ([`geglu_composed`]); Flex computes it in one pass and keeps only `x` for the backward
    /// pass.
    ///
    /// # Shapes
    /// - x: `[batch, seq, 2·n]`
    /// - output: `[batch, seq, n]`
    fn kernel_geglu(x: Tensor<Self, 3>) -> Tensor<Self, 3> {
        geglu_composed::<Self>(x)
    }

    /// The exact (erf) GELU, `x·Φ(x)`.
    fn kernel_gelu<const D: usize>(x: Tensor<Self, D>) -> Tensor<Self, D> {
        gelu(x)
    }

    /// Inverted dropout with probability `prob`, active only when autodiff is enabled
    /// (training); the identity otherwise, like `burn::nn::Dropout`.
    fn kernel_dropout<const D: usize>(x: Tensor<Self, D>, prob: f64) -> Tensor<Self, D> {
        Dropout { prob }.forward(x)
    }

    /// `x·weight + bias`, as `burn::tensor::module::linear`.
    ///
    /// # Shapes
    /// - x: `[..., d_input]`, weight: `[d_input, d_output]`, bias: `[d_output]`
    /// - output: `[..., d_output]`
    fn kernel_linear<const D: usize>(
        x: Tensor<Self, D>,
        weight: Tensor<Self, 2>,
        bias: Option<Tensor<Self, 1>>,
    ) -> Tensor<Self, D> {
        linear(x, weight, bias)
    }

    /// `layer`'s int8 product: `x` quantised per row to u8, times the int8 weight in i32,
    /// scaled back to f32, plus the bias ([`int8`] gives the numbers). The default is the
    /// float composition of the same numbers ([`linear_int8_composed`]), which is correct on
    /// every backend and faster on none; Flex has integer kernels.
    ///
    /// # Shapes
    /// - x: `[..., d_input]`
    /// - output: `[..., d_output]`
    fn kernel_linear_int8<const D: usize>(
        x: Tensor<Self, D>,
        layer: &Int8Linear<Self>,
    ) -> Tensor<Self, D> {
        linear_int8_composed(x, layer)
    }

    /// Layer normalisation over the last dimension, as `burn::nn::LayerNorm`.
    ///
    /// # Shapes
    /// - x: `[..., d]`, gamma, beta: `[d]`
    /// - output: like x
    fn kernel_layer_norm<const D: usize>(
        x: Tensor<Self, D>,
        gamma: Tensor<Self, 1>,
        beta: Option<Tensor<Self, 1>>,
        epsilon: f64,
    ) -> Tensor<Self, D> {
        layer_norm_composed(x, gamma, beta, epsilon)
    }
}

/// Layer normalisation over the last dimension (biased variance), as `burn::nn::LayerNorm`.
pub fn layer_norm_composed<B: Backend, const D: usize>(
    x: Tensor<B, D>,
    gamma: Tensor<B, 1>,
    beta: Option<Tensor<B, 1>>,
    epsilon: f64,
) -> Tensor<B, D> {
    Tensor::from_primitive(TensorPrimitive::Float(B::layer_norm(
        x.into_primitive().tensor(),
        gamma.into_primitive().tensor(),
        beta.map(|b| b.into_primitive().tensor()),
        epsilon,
    )))
}

/// `x` in `dtype`: the tensor itself when it already is (no cast node in the graph).
pub fn to_dtype<B: Backend, const D: usize>(x: Tensor<B, D>, dtype: DType) -> Tensor<B, D> {
    if x.dtype() == dtype { x } else { x.cast(dtype) }
}

/// The portable multi-head attention: heads split off, [`attention_composed`], heads merged.
///
/// # Shapes
/// - q: `[batch, queries, hidden]`, k, v: `[batch, seq, hidden]`
/// - output: `[batch, queries, hidden]`
pub fn attention_heads<B: Backend>(
    q: Tensor<B, 3>,
    k: Tensor<B, 3>,
    v: Tensor<B, 3>,
    heads: usize,
    mask: &AttentionMask<B>,
    dropout: f64,
) -> Tensor<B, 3> {
    let [q, k, v] = [q, k, v].map(|t| split_heads(t, heads));
    merge_heads(attention_composed(q, k, v, mask, dropout))
}

/// `[batch, seq, heads·head_dim]` → `[batch, heads, seq, head_dim]` (a strided view).
pub fn split_heads<B: Backend>(x: Tensor<B, 3>, heads: usize) -> Tensor<B, 4> {
    let [batch, seq, hidden] = x.dims();
    x.reshape([batch, seq, heads, hidden / heads.max(1)])
        .swap_dims(1, 2)
}

/// `[batch, heads, seq, head_dim]` → `[batch, seq, heads·head_dim]`.
pub fn merge_heads<B: Backend>(x: Tensor<B, 4>) -> Tensor<B, 3> {
    let [batch, heads, seq, head_dim] = x.dims();
    x.swap_dims(1, 2).reshape([batch, seq, heads * head_dim])
}

/// The portable attention on split heads: the backend's fused attention for inference; for
/// training the
/// explicit `softmax(q·kᵀ/√d + mask)` so dropout can act on the probabilities (autodiff
/// would decompose the fused op into the same steps anyway).
///
/// # Shapes
/// - q: `[batch, heads, queries, head_dim]`, k, v: `[batch, heads, seq, head_dim]`
/// - output: `[batch, heads, queries, head_dim]`
pub fn attention_composed<B: Backend>(
    q: Tensor<B, 4>,
    k: Tensor<B, 4>,
    v: Tensor<B, 4>,
    mask: &AttentionMask<B>,
    dropout: f64,
) -> Tensor<B, 4> {
    let burn_dropout = |x: Tensor<B, 4>, prob: f64| Dropout { prob }.forward(x);
    attention_scored_composed([q, k, v], mask, None, dropout, burn_dropout)
}

/// [`attention_composed`] with optional extra score terms and scale ([`ScoreBias`]) and the
/// mask's sliding window, out-of-window scores set to the mask's large negative value;
/// `drop` is the dropout on the probabilities (a backend's keyed kernel, or Burn's).
///
/// # Shapes
/// - q: `[batch, heads, queries, head_dim]`, k, v: `[batch, heads, seq, head_dim]`
/// - bias.terms: `[batch, heads, queries, seq]`
/// - output: `[batch, heads, queries, head_dim]`
pub fn attention_scored_composed<B: Backend>(
    [q, k, v]: [Tensor<B, 4>; 3],
    mask: &AttentionMask<B>,
    bias: Option<ScoreBias<B>>,
    dropout: f64,
    drop: impl Fn(Tensor<B, 4>, f64) -> Tensor<B, 4>,
) -> Tensor<B, 4> {
    let [batch, heads, queries, head_dim] = q.dims();
    let seq = k.dims()[2];
    let dtype = q.dtype();
    // Divided, as PyTorch does it (`/ √d`), so plain attention rounds as before.
    let divisor = bias
        .as_ref()
        .map_or((head_dim as f64).sqrt(), |b| 1.0 / b.scale);
    let plain = bias.is_none() && mask.window.is_none();
    // The scores from the scaling on (bias, mask, softmax, dropout) in f32; under mixed
    // precision the products stay in the inputs' dtype and the probabilities are rounded for
    // the product with v.
    let scores = |q: Tensor<B, 4>, k: Tensor<B, 4>| {
        let mut scores = to_dtype(q.matmul(k.swap_dims(2, 3)), DType::F32).div_scalar(divisor);
        if let Some(bias) = bias {
            scores = scores + to_dtype(bias.terms, DType::F32);
        }
        scores = scores + mask.additive.clone();
        if let Some(w) = mask.window {
            let outside = window_mask::<B>(queries, seq, w, &scores.device());
            scores = scores.mask_fill(outside.expand([batch, heads, queries, seq]), f32::MIN);
        }
        scores
    };
    if dtype != DType::F32 {
        let probs = drop(softmax(scores(q, k), 3), dropout);
        return probs.cast(dtype).matmul(v);
    }
    if B::ad_enabled(&q.device()) || !plain {
        drop(softmax(scores(q, k), 3), dropout).matmul(v)
    } else {
        let padding = mask.padding.clone().expand([batch, heads, queries, seq]);
        attention(
            q,
            k,
            v,
            Some(padding),
            None,
            AttentionModuleOptions::default(),
        )
    }
}

/// `gelu(a) ⊙ g` for `x = a | g`, composed of the backend's GELU and a product.
///
/// # Shapes
/// - x: `[batch, seq, 2·n]`
/// - output: `[batch, seq, n]`
pub fn geglu_composed<B: KernelBackend>(x: Tensor<B, 3>) -> Tensor<B, 3> {
    let [batch, seq, width] = x.dims();
    let n = width / 2;
    let a = x.clone().slice([0..batch, 0..seq, 0..n]);
    let g = x.slice([0..batch, 0..seq, n..2 * n]);
    B::kernel_gelu(a) * g
}

/// `x·cos + rotate_half(x)·sin` per head, composed of tensor ops ([`KernelBackend::kernel_rotary`]).
///
/// # Shapes
/// - x: `[batch, seq, heads·head_dim]`, cos, sin: `[≥ seq, head_dim]`
/// - output: like x
pub fn rotary_composed<B: Backend>(
    x: Tensor<B, 3>,
    cos: &Tensor<B, 2>,
    sin: &Tensor<B, 2>,
    heads: usize,
) -> Tensor<B, 3> {
    let [batch, seq, width] = x.dims();
    let d = width / heads.max(1);
    let half = d / 2;
    let x = x.reshape([batch, seq, heads, d]);
    let a = x.clone().slice([0..batch, 0..seq, 0..heads, 0..half]);
    let b = x.clone().slice([0..batch, 0..seq, 0..heads, half..d]);
    let rotated = Tensor::cat(vec![b.neg(), a], 3);
    let table = |t: &Tensor<B, 2>| t.clone().slice([0..seq, 0..d]).reshape([1, seq, 1, d]);
    (x * table(cos) + rotated * table(sin)).reshape([batch, seq, width])
}

/// DeBERTa's relative index `δ(i, j)` for one sequence length, in the two forms the paths
/// need: on the host (kernels) and as a tensor (the composition).
#[derive(Debug, Clone)]
pub struct RelativeIndex<B: Backend> {
    /// `δ(i, j)`, row-major `[seq, seq]` (queries × keys).
    pub host: std::sync::Arc<Vec<i64>>,
    /// The same as a tensor.
    pub tensor: Tensor<B, 2, Int>,
    /// The sequence length.
    pub seq: usize,
}

impl<B: Backend> RelativeIndex<B> {
    /// From `δ`, row-major `[seq, seq]`.
    pub fn new(index: Vec<i64>, seq: usize, device: &B::Device) -> Self {
        let tensor = Tensor::from_data(
            burn::tensor::TensorData::new(index.clone(), [seq, seq]),
            device,
        );
        Self {
            host: std::sync::Arc::new(index),
            tensor,
            seq,
        }
    }
}

/// [`KernelBackend::kernel_relative_terms`] composed: Burn's `gather` on the index expanded to
/// the batch and heads.
pub fn relative_terms_composed<B: Backend>(
    c2p: Option<Tensor<B, 4>>,
    p2c: Option<Tensor<B, 4>>,
    index: &RelativeIndex<B>,
    queries: usize,
    scale: f64,
) -> Option<Tensor<B, 4>> {
    let keys = index.seq;
    let c2p = c2p.map(|att| {
        let [batch, heads, _, _] = att.dims();
        let idx = index
            .tensor
            .clone()
            .slice([0..queries, 0..keys])
            .reshape([1, 1, queries, keys])
            .expand([batch, heads, queries, keys]);
        att.gather(3, idx)
    });
    let p2c = p2c.map(|att| {
        let [batch, heads, _, _] = att.dims();
        let idx = index
            .tensor
            .clone()
            .slice([0..queries, 0..keys])
            .transpose()
            .reshape([1, 1, keys, queries])
            .expand([batch, heads, keys, queries]);
        att.gather(3, idx).swap_dims(2, 3)
    });
    let terms = match (c2p, p2c) {
        (Some(a), Some(b)) => a + b,
        (a, b) => a.or(b)?,
    };
    Some(terms.mul_scalar(scale))
}

/// `true` where key `j` lies outside query `i`'s window `|i − j| ≤ half_width`,
/// `[1, 1, queries, keys]`.
pub fn window_mask<B: Backend>(
    queries: usize,
    keys: usize,
    half_width: usize,
    device: &B::Device,
) -> Tensor<B, 4, Bool> {
    let outside: Vec<bool> = (0..queries)
        .flat_map(|i| (0..keys).map(move |j| i.abs_diff(j) > half_width))
        .collect();
    Tensor::from_data(
        burn::tensor::TensorData::new(outside, [1, 1, queries, keys]),
        device,
    )
}

/// The exact GELU on an autodiff backend, with the exact derivative `Φ(x) + x·φ(x)` in its
/// backward pass, composed of the inner backend's operations: the [`KernelBackend::kernel_gelu`] of
/// every autodiff backend without a kernel of its own.
///
/// Burn's GELU (0.21) computes the exact forward but differentiates the tanh approximation,
/// which is up to ≈ 1e-3 off the exact derivative; PyTorch's and the Flex kernels' are exact,
/// and over six layers the adapters' gradients drift apart by as much (the wgpu suite caught it).
pub fn gelu_exact_autodiff<B: Backend, C: CheckpointStrategy, const D: usize>(
    x: Tensor<Autodiff<B, C>, D>,
) -> Tensor<Autodiff<B, C>, D> {
    let x = x.into_primitive().tensor();
    let out = match ExactGeluBackward
        .prepare::<C>([x.node.clone()])
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(prep) => {
            let y = B::gelu(x.primitive.clone());
            prep.finish(x.primitive, y)
        }
        OpsKind::UnTracked(prep) => prep.finish(B::gelu(x.primitive)),
    };
    Tensor::from_primitive(TensorPrimitive::Float(out))
}

/// The backward pass of [`gelu_exact_autodiff`]; its state is the input.
#[derive(Debug)]
struct ExactGeluBackward;

impl<B: Backend> Backward<B, 1> for ExactGeluBackward {
    type State = FloatTensor<B>;

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let x = ops.state;
        unary::<B, _>(ops.parents, ops.node, grads, |grad| {
            // Φ(x) + x·φ(x) = ½(1 + erf(x/√2)) + x·exp(−x²/2)/√(2π)
            let cdf = B::float_mul_scalar(
                B::float_add_scalar(
                    B::float_erf(B::float_mul_scalar(
                        x.clone(),
                        std::f64::consts::FRAC_1_SQRT_2.into(),
                    )),
                    1.0.into(),
                ),
                0.5.into(),
            );
            let square = B::float_mul(x.clone(), x.clone());
            let pdf = B::float_mul_scalar(
                B::float_exp(B::float_mul_scalar(square, (-0.5).into())),
                (0.5 * std::f64::consts::FRAC_2_SQRT_PI * std::f64::consts::FRAC_1_SQRT_2).into(),
            );
            B::float_mul(grad, B::float_add(cdf, B::float_mul(x, pdf)))
        });
    }
}

#[cfg(feature = "ndarray")]
impl KernelBackend for burn::backend::NdArray {}
#[cfg(feature = "ndarray")]
impl<C: CheckpointStrategy> KernelBackend for Autodiff<burn::backend::NdArray, C> {
    fn kernel_gelu<const D: usize>(x: Tensor<Self, D>) -> Tensor<Self, D> {
        gelu_exact_autodiff(x)
    }
}
