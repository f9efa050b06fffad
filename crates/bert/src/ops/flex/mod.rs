//! Fused, multi-threaded CPU kernels for Flex, and their backward passes for `Autodiff<Flex>`.
//!
//! What they replace, and why it was slow (see docs/BENCHMARKS.md for the profile):
//! - attention: `q·kᵀ`, `/√d`, `+ mask`, softmax, dropout, `·v` were six ops and four full
//!   passes over a `[batch, heads, seq, seq]` tensor, each single-threaded, with the dropout
//!   mask drawn element by element from ChaCha and kept (with the probabilities before and
//!   after dropout) for the backward pass. Here scale, mask, softmax and dropout are one
//!   pass over each head's scores while they are in cache, batch elements in parallel
//!   ([`attention`]), and the backward pass keeps only the probabilities: the
//!   dropout mask is regenerated from its key ([`mask`]).
//! - linear layers: one gemm call per product, straight into the output ([`gemm`]).
//! - GELU: libm's scalar `erff` on one thread; here a vectorisable erf (Abramowitz & Stegun
//!   7.1.26, |error| ≤ 1.5e-7; within 3e-7 of a series erf in f32, tested) across threads.
//! - dropout: the same counter-based masks, never stored.
//!
//! Kernels work on contiguous f32 data and fall back to the portable compositions for any
//! other dtype.

use std::borrow::Cow;

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind, unary};
use burn::backend::{Autodiff, Flex};
use burn::tensor::ops::ModuleOps;
use burn::tensor::{DType, Distribution, Tensor, TensorData, TensorMetadata, TensorPrimitive};
use burn_flex::FlexTensor;
use rayon::prelude::*;

mod attention;
mod gemm;
mod mask;
mod norm;

use self::mask::{MaskKey, MaskSpec};
use super::{AttentionMask, BertBackend, attention_heads};

/// Elements per parallel task in element-wise kernels (64 KiB of f32).
const CHUNK: usize = 1 << 14;

/// e^x in f32 (Cephes `expf`: 2ⁿ·eʳ with |r| ≤ ln2/2, degree-6 polynomial, ≈ 1 ulp), written
/// branch-free so loops over it vectorise. Below −87 it returns 0 instead of a subnormal.
#[inline(always)]
fn exp_f32(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    // 1.5·2²³: adding and subtracting it rounds to the nearest integer.
    const ROUND: f32 = 12_582_912.0;
    let xc = x.clamp(-87.0, 88.0);
    // n = round(xc·log2 e) sits in the low mantissa bits of `t` (|n| ≤ 127 ≪ 2²²).
    let t = xc * LOG2E + ROUND;
    let n = t - ROUND;
    let r = xc - n * 0.693_359_4 - n * -2.121_944_4e-4;
    let poly = ((((1.987_569_2e-4 * r + 1.398_2e-3) * r + 8.333_452e-3) * r + 4.166_579_6e-2) * r
        + 0.166_666_65)
        * r
        + 0.5;
    let y = poly * r * r + r + 1.0;
    // 2ⁿ from the bits of `t`, not from `n as i32`: Rust's saturating float → int cast does
    // not vectorise (LLVM emits a scalar convert-compare-select per lane).
    let n_bits = t.to_bits().wrapping_sub(ROUND.to_bits());
    let pow2 = f32::from_bits(n_bits.wrapping_add(127) << 23);
    if x < -87.0 { 0.0 } else { y * pow2 }
}

/// erf(x), Abramowitz & Stegun 7.1.26 (|error| ≤ 1.5e-7), vectorisable.
#[inline(always)]
fn erf_f32(x: f32) -> f32 {
    let a = x.abs();
    let t = 1.0 / (1.0 + 0.327_591_1 * a);
    let poly = t
        * (0.254_829_6
            + t * (-0.284_496_74 + t * (1.421_413_7 + t * (-1.453_152 + t * 1.061_405_4))));
    (1.0 - poly * exp_f32(-a * a)).copysign(x)
}

const FRAC_1_SQRT_2: f32 = std::f32::consts::FRAC_1_SQRT_2;
/// 1/√(2π).
const INV_SQRT_2PI: f32 = 0.398_942_3;

#[inline(always)]
fn gelu_f32(x: f32) -> f32 {
    0.5 * x * (1.0 + erf_f32(x * FRAC_1_SQRT_2))
}

/// d/dx x·Φ(x) = Φ(x) + x·φ(x).
#[inline(always)]
fn gelu_grad_f32(x: f32) -> f32 {
    0.5 * (1.0 + erf_f32(x * FRAC_1_SQRT_2)) + x * INV_SQRT_2PI * exp_f32(-0.5 * x * x)
}

/// A loop nest to compile once per SIMD level. `run` must be `#[inline(always)]` (and
/// everything it calls): only then is it compiled inside pulp's `#[target_feature]`
/// functions and vectorised at that width. A closure would not do: its body is a separate
/// function the inliner may keep out of line, compiled for the baseline (SSE2) only.
pub(super) trait Kernel {
    fn run(self);
}

struct Dispatch<K>(K);

impl<K: Kernel> pulp::WithSimd for Dispatch<K> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _: S) {
        self.0.run()
    }
}

/// Runs `kernel` compiled for the best SIMD level this CPU has (AVX-512, AVX2, ...).
pub(super) fn simd(kernel: impl Kernel) {
    pulp::Arch::new().dispatch(Dispatch(kernel))
}

/// `x_i ← gelu(x_i)`. Kernels call their element functions directly: through a generic
/// `F: Fn` the call would go via a shim the inliner may keep out of line (scalar code).
struct GeluKernel<'a> {
    x: &'a mut [f32],
}

impl Kernel for GeluKernel<'_> {
    #[inline(always)]
    fn run(self) {
        for x in self.x.iter_mut() {
            *x = gelu_f32(*x);
        }
    }
}

/// `g_i ← gelu'(x_i)·g_i`.
struct GeluGradKernel<'a> {
    g: &'a mut [f32],
    x: &'a [f32],
}

impl Kernel for GeluGradKernel<'_> {
    #[inline(always)]
    fn run(self) {
        for (g, &x) in self.g.iter_mut().zip(self.x) {
            *g *= gelu_grad_f32(x);
        }
    }
}

/// `x ← x ⊙ mask` for mask elements `base..base + x.len()`.
pub(super) struct MaskKernel<'a> {
    pub x: &'a mut [f32],
    pub spec: &'a MaskSpec,
    pub base: u32,
}

impl Kernel for MaskKernel<'_> {
    #[inline(always)]
    fn run(self) {
        for (i, x) in self.x.iter_mut().enumerate() {
            *x *= self.spec.factor(self.base.wrapping_add(i as u32));
        }
    }
}

/// Rows of attention scores (length `seq`, the number of keys), in place:
/// `softmax(z·scale + key_mask)` per row.
pub(super) struct SoftmaxRows<'a> {
    pub rows: &'a mut [f32],
    pub seq: usize,
    pub key_mask: &'a [f32],
    pub scale: f32,
}

impl Kernel for SoftmaxRows<'_> {
    #[inline(always)]
    fn run(self) {
        for p in self.rows.chunks_mut(self.seq) {
            softmax_row(p, self.key_mask, self.scale);
        }
    }
}

/// Rows of the softmax-with-dropout backward pass, in place: `grad` (∂L/∂(P⊙mask)) becomes
/// ∂L/∂scores. With `Pd = P⊙mask`, per row `dZ = Pd⊙dPd − P·Σ(Pd⊙dPd)`, times `scale` for
/// the `q·kᵀ·scale` that produced Z.
pub(super) struct SoftmaxBackwardRows<'a> {
    pub grad: &'a mut [f32],
    pub p: &'a [f32],
    pub pd: &'a [f32],
    pub seq: usize,
    pub scale: f32,
}

impl Kernel for SoftmaxBackwardRows<'_> {
    #[inline(always)]
    fn run(self) {
        let rows = self.grad.chunks_mut(self.seq);
        for ((g, p), pd) in rows
            .zip(self.p.chunks(self.seq))
            .zip(self.pd.chunks(self.seq))
        {
            softmax_backward_row(g, p, pd, self.scale);
        }
    }
}

/// A Flex tensor's values in row-major order, borrowed when it is contiguous.
pub(super) fn values(t: &FlexTensor) -> Cow<'_, [f32]> {
    match t.as_slice::<f32>() {
        Some(s) => Cow::Borrowed(s),
        None => Cow::Owned(t.to_contiguous().storage::<f32>().to_vec()),
    }
}

pub(super) fn is_f32(t: &FlexTensor) -> bool {
    t.dtype() == DType::F32
}

pub(super) fn flex_tensor(values: Vec<f32>, shape: burn::tensor::Shape) -> FlexTensor {
    FlexTensor::from_data(TensorData::new(values, shape))
}

/// `t` as a sole-owner, contiguous tensor whose buffer is exactly its values, ready to be
/// overwritten: `t` itself when it already is one (a fresh op result usually is), else a copy
/// (one pass, and no zero-filling of a new buffer).
pub(super) fn unique(mut t: FlexTensor) -> FlexTensor {
    let n = t.shape().num_elements();
    let reusable = t.is_contiguous() && t.layout().start_offset() == 0;
    if reusable && t.try_storage_mut::<f32>().is_some_and(|s| s.len() == n) {
        return t;
    }
    let shape = t.shape();
    flex_tensor(values(&t).into_owned(), shape)
}

/// The values of a tensor from [`unique`] (never copies: it is the sole owner).
pub(super) fn values_mut(t: &mut FlexTensor) -> &mut [f32] {
    t.storage_mut::<f32>()
}

/// GELU element-wise, in parallel, in place when `x` is not shared.
fn gelu_tensor(x: FlexTensor) -> FlexTensor {
    let mut x = unique(x);
    values_mut(&mut x)
        .par_chunks_mut(CHUNK)
        .for_each(|x| simd(GeluKernel { x }));
    x
}

/// The gradient through GELU, `gelu'(x) ⊙ grad`, in parallel (into `grad`'s buffer).
fn gelu_backward_tensor(x: &FlexTensor, grad: FlexTensor) -> FlexTensor {
    let mut grad = unique(grad);
    let xs = values(x);
    values_mut(&mut grad)
        .par_chunks_mut(CHUNK)
        .zip(xs.par_chunks(CHUNK))
        .for_each(|(g, x)| simd(GeluGradKernel { g, x }));
    grad
}

/// `x ⊙ mask`, the mask regenerated from `spec` (element `i` of the flattened tensor uses
/// mask element `offset + i`), in place when `x` is not shared.
fn apply_mask(x: FlexTensor, spec: &MaskSpec, offset: usize) -> FlexTensor {
    let mut x = unique(x);
    values_mut(&mut x)
        .par_chunks_mut(CHUNK)
        .enumerate()
        .for_each(|(c, x)| {
            let base = (offset + c * CHUNK) as u32;
            simd(MaskKernel { x, spec, base })
        });
    x
}

/// Lanes of the explicit accumulators below: without fast-math, LLVM keeps a float
/// reduction in source order (scalar) unless the code itself keeps independent partial sums.
const LANES: usize = 16;

#[inline(always)]
fn max_of(x: &[f32]) -> f32 {
    let mut acc = [f32::NEG_INFINITY; LANES];
    let chunks = x.chunks_exact(LANES);
    let tail = chunks.remainder();
    for c in chunks {
        for i in 0..LANES {
            acc[i] = acc[i].max(c[i]);
        }
    }
    tail.iter()
        .chain(&acc)
        .fold(f32::NEG_INFINITY, |m, &v| m.max(v))
}

#[inline(always)]
pub(super) fn sum_of(x: &[f32]) -> f32 {
    let mut acc = [0.0f32; LANES];
    let chunks = x.chunks_exact(LANES);
    let tail = chunks.remainder();
    for c in chunks {
        for i in 0..LANES {
            acc[i] += c[i];
        }
    }
    acc.iter().sum::<f32>() + tail.iter().sum::<f32>()
}

/// `Σ a_i·b_i`.
#[inline(always)]
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0.0f32; LANES];
    let (ca, cb) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let (ta, tb) = (ca.remainder(), cb.remainder());
    for (a, b) in ca.zip(cb) {
        for i in 0..LANES {
            acc[i] += a[i] * b[i];
        }
    }
    acc.iter().sum::<f32>() + ta.iter().zip(tb).map(|(&a, &b)| a * b).sum::<f32>()
}

/// One row of attention scores in place: `softmax(z·scale + key_mask)`.
#[inline(always)]
fn softmax_row(p: &mut [f32], key_mask: &[f32], scale: f32) {
    for (z, &m) in p.iter_mut().zip(key_mask) {
        *z = *z * scale + m;
    }
    let max = max_of(p);
    for z in p.iter_mut() {
        *z = exp_f32(*z - max);
    }
    let inv = 1.0 / sum_of(p);
    p.iter_mut().for_each(|z| *z *= inv);
}

/// One row of the softmax-with-dropout backward pass in place (see
/// [`SoftmaxBackwardRows`]).
#[inline(always)]
fn softmax_backward_row(g: &mut [f32], p: &[f32], pd: &[f32], scale: f32) {
    let t = dot(g, pd);
    for ((g, &p), &pd) in g.iter_mut().zip(p).zip(pd) {
        *g = (pd * *g - p * t) * scale;
    }
}

/// A fresh mask key from the backend's seeded RNG, so masks follow `Backend::seed` exactly
/// as Burn's own dropout does (four 16-bit draws: f32 represents them exactly).
fn draw_key() -> MaskKey {
    let words: Vec<u32> = Tensor::<Flex, 1>::random(
        [4],
        Distribution::Uniform(0.0, 65_536.0),
        &Default::default(),
    )
    .into_data()
    .iter::<f32>()
    .map(|w| (w as u32) & 0xffff)
    .collect();
    let word = |i: usize| words.get(i).copied().unwrap_or(0);
    MaskKey([word(0) << 16 | word(1), word(2) << 16 | word(3)])
}

fn float<const D: usize>(t: FlexTensor) -> Tensor<Flex, D> {
    Tensor::from_primitive(TensorPrimitive::Float(t))
}

fn prim<const D: usize>(t: Tensor<Flex, D>) -> FlexTensor {
    t.into_primitive().tensor()
}

/// What the attention forward keeps for its backward pass (q, k and v share their buffers
/// with the graph; only the probabilities are new).
#[derive(Debug, Clone)]
struct AttentionState {
    q: FlexTensor,
    k: FlexTensor,
    v: FlexTensor,
    /// Probabilities before dropout, `[batch, heads, queries, keys]`.
    probs: Vec<f32>,
    dims: attention::Dims,
    dropout: Option<MaskSpec>,
}

#[derive(Debug)]
struct AttentionBackward;

impl Backward<Flex, 3> for AttentionBackward {
    type State = AttentionState;

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node_q, node_k, node_v] = ops.parents;
        let grad = grads.consume::<Flex>(&ops.node);
        let s = ops.state;
        let (q, k, v) = (values(&s.q), values(&s.k), values(&s.v));
        let need = [node_q.is_some(), node_k.is_some(), node_v.is_some()];
        let parts = attention::backward(
            &values(&grad),
            [&q, &k, &v],
            &s.probs,
            s.dims,
            s.dropout.as_ref(),
            need,
        );
        let shapes = [s.q.shape(), s.k.shape(), s.v.shape()];
        for ((node, part), shape) in [node_q, node_k, node_v].into_iter().zip(parts).zip(shapes) {
            if let (Some(node), Some(part)) = (node, part) {
                grads.register::<Flex>(node.id, flex_tensor(part, shape));
            }
        }
    }
}

/// The sizes of an attention call on `[batch, seq, hidden]` tensors with `heads` heads and a
/// `[batch, 1, 1, keys]` key mask, when the kernels can take it (else the composition runs,
/// and reports any shape error the portable way).
fn attention_dims(
    [q, k, v]: [&FlexTensor; 3],
    key_mask: &FlexTensor,
    heads: usize,
) -> Option<attention::Dims> {
    let all_f32 = [q, k, v, key_mask].iter().all(|t| is_f32(t));
    let (qs, ks, vs) = (q.shape(), k.shape(), v.shape());
    if !all_f32 || qs.num_dims() != 3 || ks.num_dims() != 3 || heads == 0 {
        return None;
    }
    let (batch, queries, hidden) = (qs[0], qs[1], qs[2]);
    let keys = ks[1];
    let fits = ks == vs
        && ks[0] == batch
        && ks[2] == hidden
        && queries > 0
        && keys > 0
        && hidden > 0
        && hidden % heads == 0
        && key_mask.shape().num_elements() == batch * keys;
    fits.then_some(attention::Dims {
        batch,
        queries,
        keys,
        heads,
        head_dim: hidden / heads,
    })
}

#[derive(Debug)]
struct GeluBackward;

impl Backward<Flex, 1> for GeluBackward {
    type State = FlexTensor;

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let x = ops.state;
        unary::<Flex, _>(ops.parents, ops.node, grads, |grad| {
            gelu_backward_tensor(&x, grad)
        });
    }
}

#[derive(Debug)]
struct DropoutBackward;

impl Backward<Flex, 1> for DropoutBackward {
    type State = MaskSpec;

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let spec = ops.state;
        unary::<Flex, _>(ops.parents, ops.node, grads, |grad| {
            apply_mask(grad, &spec, 0)
        });
    }
}

impl BertBackend for Flex {
    fn bert_attention(
        q: Tensor<Self, 3>,
        k: Tensor<Self, 3>,
        v: Tensor<Self, 3>,
        heads: usize,
        mask: &AttentionMask<Self>,
        dropout: f64,
    ) -> Tensor<Self, 3> {
        let key_mask = prim(mask.additive.clone());
        let (q, k, v) = (prim(q), prim(k), prim(v));
        let Some(dims) = attention_dims([&q, &k, &v], &key_mask, heads) else {
            return attention_heads(float(q), float(k), float(v), heads, mask, dropout);
        };
        // Inference: no autodiff on plain Flex, so no dropout and nothing kept.
        let (qv, kv, vv) = (values(&q), values(&k), values(&v));
        let (out, _) = attention::forward([&qv, &kv, &vv], &values(&key_mask), dims, None, false);
        float(flex_tensor(out, q.shape()))
    }

    fn bert_gelu<const D: usize>(x: Tensor<Self, D>) -> Tensor<Self, D> {
        let x = prim(x);
        if !is_f32(&x) {
            return burn::tensor::activation::gelu(float(x));
        }
        float(gelu_tensor(x))
    }

    fn bert_linear<const D: usize>(
        x: Tensor<Self, D>,
        weight: Tensor<Self, 2>,
        bias: Option<Tensor<Self, 1>>,
    ) -> Tensor<Self, D> {
        let (x, w, b) = (prim(x), prim(weight), bias.map(prim));
        if !(is_f32(&x) && is_f32(&w) && b.as_ref().is_none_or(is_f32)) {
            return burn::tensor::module::linear(float(x), float(w), b.map(float));
        }
        float(gemm::linear(&x, &w, b.as_ref()))
    }

    fn bert_layer_norm<const D: usize>(
        x: Tensor<Self, D>,
        gamma: Tensor<Self, 1>,
        beta: Option<Tensor<Self, 1>>,
        epsilon: f64,
    ) -> Tensor<Self, D> {
        let (x, g, b) = (prim(x), prim(gamma), beta.map(prim));
        let Some((gamma, beta)) = norm::norm_params(&x, &g, b.as_ref()) else {
            return float(Flex::layer_norm(x, g, b, epsilon));
        };
        float(norm::layer_norm(x, &gamma, beta.as_deref(), epsilon, false).0)
    }
}

impl<C: CheckpointStrategy> BertBackend for Autodiff<Flex, C> {
    fn bert_attention(
        q: Tensor<Self, 3>,
        k: Tensor<Self, 3>,
        v: Tensor<Self, 3>,
        heads: usize,
        mask: &AttentionMask<Self>,
        dropout: f64,
    ) -> Tensor<Self, 3> {
        let key_mask = prim(mask.additive.clone().inner());
        let (q, k, v) = (
            q.into_primitive().tensor(),
            k.into_primitive().tensor(),
            v.into_primitive().tensor(),
        );
        let dims = attention_dims([&q.primitive, &k.primitive, &v.primitive], &key_mask, heads);
        let Some(dims) = dims else {
            let wrap = |t| Tensor::from_primitive(TensorPrimitive::Float(t));
            return attention_heads(wrap(q), wrap(k), wrap(v), heads, mask, dropout);
        };
        let spec = (dropout > 0.0).then(|| MaskSpec::new(draw_key(), dropout));
        let (nodes, q, k, v) = (
            [q.node, k.node, v.node],
            q.primitive,
            k.primitive,
            v.primitive,
        );
        let key_mask = values(&key_mask);
        let run = |keep: bool| {
            let (qv, kv, vv) = (values(&q), values(&k), values(&v));
            let (out, probs) =
                attention::forward([&qv, &kv, &vv], &key_mask, dims, spec.as_ref(), keep);
            (flex_tensor(out, q.shape()), probs)
        };
        let out = match AttentionBackward
            .prepare::<C>(nodes)
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let (out, probs) = run(true);
                let state = AttentionState {
                    q,
                    k,
                    v,
                    probs: probs.unwrap_or_default(),
                    dims,
                    dropout: spec,
                };
                prep.finish(state, out)
            }
            OpsKind::UnTracked(prep) => prep.finish(run(false).0),
        };
        Tensor::from_primitive(TensorPrimitive::Float(out))
    }

    fn bert_gelu<const D: usize>(x: Tensor<Self, D>) -> Tensor<Self, D> {
        let x = x.into_primitive().tensor();
        if !is_f32(&x.primitive) {
            return burn::tensor::activation::gelu(Tensor::from_primitive(TensorPrimitive::Float(
                x,
            )));
        }
        let out = match GeluBackward
            .prepare::<C>([x.node.clone()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                // Kept for the backward pass, so GELU writes a copy.
                let y = gelu_tensor(x.primitive.clone());
                prep.finish(x.primitive, y)
            }
            OpsKind::UnTracked(prep) => prep.finish(gelu_tensor(x.primitive)),
        };
        Tensor::from_primitive(TensorPrimitive::Float(out))
    }

    fn bert_linear<const D: usize>(
        x: Tensor<Self, D>,
        weight: Tensor<Self, 2>,
        bias: Option<Tensor<Self, 1>>,
    ) -> Tensor<Self, D> {
        let (x, w, b) = (
            x.into_primitive().tensor(),
            weight.into_primitive().tensor(),
            bias.map(|b| b.into_primitive().tensor()),
        );
        let all_f32 = is_f32(&x.primitive)
            && is_f32(&w.primitive)
            && b.as_ref().is_none_or(|b| is_f32(&b.primitive));
        if !all_f32 {
            return burn::tensor::module::linear(
                Tensor::from_primitive(TensorPrimitive::Float(x)),
                Tensor::from_primitive(TensorPrimitive::Float(w)),
                b.map(|b| Tensor::from_primitive(TensorPrimitive::Float(b))),
            );
        }
        Tensor::from_primitive(TensorPrimitive::Float(gemm::autodiff_linear::<C>(x, w, b)))
    }

    fn bert_layer_norm<const D: usize>(
        x: Tensor<Self, D>,
        gamma: Tensor<Self, 1>,
        beta: Option<Tensor<Self, 1>>,
        epsilon: f64,
    ) -> Tensor<Self, D> {
        let wrap = |t| Tensor::from_primitive(TensorPrimitive::Float(t));
        let (x, g, b) = (
            x.into_primitive().tensor(),
            gamma.into_primitive().tensor(),
            beta.map(|b| b.into_primitive().tensor()),
        );
        // The kernels assume a frozen scale and shift; a trained one takes Burn's path.
        let frozen = !g.is_tracked() && b.as_ref().is_none_or(|b| !b.is_tracked());
        let params = frozen
            .then(|| {
                norm::norm_params(&x.primitive, &g.primitive, b.as_ref().map(|b| &b.primitive))
            })
            .flatten();
        let Some((gamma, beta)) = params else {
            return wrap(Self::layer_norm(x, g, b, epsilon));
        };
        wrap(norm::autodiff_layer_norm::<C>(
            x,
            gamma,
            beta.as_deref(),
            epsilon,
        ))
    }

    fn bert_dropout<const D: usize>(x: Tensor<Self, D>, prob: f64) -> Tensor<Self, D> {
        if prob == 0.0 {
            return x;
        }
        let x = x.into_primitive().tensor();
        if !is_f32(&x.primitive) {
            return burn::nn::Dropout { prob }
                .forward(Tensor::from_primitive(TensorPrimitive::Float(x)));
        }
        let spec = MaskSpec::new(draw_key(), prob);
        let out = match DropoutBackward
            .prepare::<C>([x.node.clone()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => prep.finish(spec, apply_mask(x.primitive, &spec, 0)),
            OpsKind::UnTracked(prep) => prep.finish(apply_mask(x.primitive, &spec, 0)),
        };
        Tensor::from_primitive(TensorPrimitive::Float(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_matches_std_to_a_few_ulp() {
        let mut worst = 0.0f32;
        for i in -8700..8800 {
            let x = i as f32 * 0.01;
            let (a, b) = (exp_f32(x), x.exp());
            worst = worst.max(((a - b) / b).abs());
        }
        assert!(worst < 5e-7, "relative error {worst}");
        assert_eq!(exp_f32(-100.0), 0.0);
        assert_eq!(exp_f32(f32::MIN), 0.0);
    }

    #[test]
    fn erf_and_gelu_match_libm() {
        for i in -600..600 {
            let x = i as f32 * 0.01;
            assert!((erf_f32(x) - libm_erf(x)).abs() < 3e-7, "erf({x})");
            let exact = 0.5 * x * (1.0 + libm_erf(x * FRAC_1_SQRT_2));
            // Relative to |x|: gelu(x) ≈ x for large x, so f32 rounding scales with it.
            let tol = 5e-7 * x.abs().max(1.0);
            assert!((gelu_f32(x) - exact).abs() < tol, "gelu({x})");
        }
    }

    #[test]
    fn gelu_grad_matches_finite_differences() {
        for i in -60..60 {
            let x = i as f64 * 0.1;
            let g = |x: f64| 0.5 * x * (1.0 + libm_erf64(x / std::f64::consts::SQRT_2));
            let fd = (g(x + 1e-4) - g(x - 1e-4)) / 2e-4;
            assert!(
                (gelu_grad_f32(x as f32) as f64 - fd).abs() < 1e-5,
                "x = {x}"
            );
        }
    }

    /// erf in f64 by its Taylor series (|x| ≤ 6 converges in < 200 terms; exact enough).
    fn libm_erf64(x: f64) -> f64 {
        if x.abs() > 5.0 {
            return x.signum();
        }
        let (mut term, mut sum, x2) = (x, x, x * x);
        for n in 1..400 {
            term *= -x2 / n as f64;
            let add = term / (2 * n + 1) as f64;
            sum += add;
            if add.abs() < 1e-17 {
                break;
            }
        }
        sum * 2.0 / std::f64::consts::PI.sqrt()
    }

    fn libm_erf(x: f32) -> f32 {
        libm_erf64(x as f64) as f32
    }
}
