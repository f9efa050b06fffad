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
//!
//! # Layout
//! This module wires the kernels into [`KernelBackend`] for `Flex` and `Autodiff<Flex>` (the
//! autodiff nodes and their backward passes). The kernels ([`attention`], [`gemm`], [`norm`],
//! [`gelu`], and dropout in [`mask`]) use only the shared helpers ([`simd`]: SIMD dispatch and
//! vectorisable primitives; [`tensor`]: Flex tensors as f32 slices) and, for attention, the
//! matrix views of [`gemm`]; none of them imports this module.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind, unary};
use burn::backend::{Autodiff, Flex};
use burn::tensor::ops::{FloatTensor, ModuleOps};
use burn::tensor::{DType, Distribution, Tensor, TensorMetadata, TensorPrimitive};
use burn_flex::FlexTensor;

mod attention;
mod gelu;
mod gemm;
pub mod int8;
mod mask;
mod norm;
mod relative;
mod rotary;
mod simd;
mod tensor;

use self::gelu::{gelu_backward_tensor, gelu_tensor};
use self::mask::{MaskKey, MaskSpec, apply_mask};
use self::relative::{RelativeTermsBackward, Terms};
use self::rotary::{Rope, RotaryBackward};
use self::tensor::{flex_tensor, float, is_f32, prim, values};
use super::{
    AttentionMask, KernelBackend, RelativeIndex, ScoreBias, attention_heads,
    attention_scored_composed, merge_heads, relative_terms_composed, rotary_composed, split_heads,
};
use crate::int8::Int8Linear;

/// The next mask key: the current forward pass's [`super::DropoutKey`] when one is set
/// ([`super::with_dropout_key`]), else a fresh key from the backend's seeded RNG, so masks
/// follow `Backend::seed` exactly as Burn's own dropout does (four 16-bit draws: f32
/// represents them exactly).
fn draw_key() -> MaskKey {
    if let Some(words) = super::next_dropout_key() {
        return MaskKey(words);
    }
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

/// What the attention forward keeps for its backward pass (q, k, v and the terms share their
/// buffers with the graph; the probabilities are new, and kept only up to
/// [`attention::KEEP_PROBS_UP_TO`] scores per head: larger ones are recomputed).
#[derive(Debug, Clone)]
struct AttentionState {
    q: FlexTensor,
    k: FlexTensor,
    v: FlexTensor,
    /// The additive key mask, `batch × keys`.
    key_mask: Vec<f32>,
    /// The extra score terms (DeBERTa's), `[batch, heads, queries, keys]`.
    terms: Option<FlexTensor>,
    /// Probabilities before dropout, `[batch, heads, queries, keys]`, or `None` to recompute.
    probs: Option<Vec<f32>>,
    dims: attention::Dims,
    dropout: Option<MaskSpec>,
}

impl AttentionState {
    /// The forward pass on the state's inputs; with `keep`, the probabilities too.
    fn forward(&self, keep: bool) -> (FlexTensor, Option<Vec<f32>>) {
        let (q, k, v) = (values(&self.q), values(&self.k), values(&self.v));
        let terms = self.terms.as_ref().map(values);
        let (out, probs) = attention::forward(
            [&q, &k, &v],
            &self.key_mask,
            terms.as_deref(),
            self.dims,
            self.dropout.as_ref(),
            keep,
        );
        (flex_tensor(out, self.q.shape()), probs)
    }

    /// The attention node of either kind (`Bw`: q, k, v, and the terms as fourth parent):
    /// the forward pass, keeping what the backward pass needs when the node is tracked.
    fn finish<Bw, C, const N: usize>(
        mut self,
        kind: OpsKind<Bw, Flex, Self, C, N>,
    ) -> FloatTensor<Autodiff<Flex, C>>
    where
        Bw: Backward<Flex, N, State = Self>,
        C: CheckpointStrategy,
    {
        match kind {
            OpsKind::Tracked(prep) => {
                let (out, probs) = self.forward(keep_probs(&self.dims));
                self.probs = probs;
                prep.finish(self, out)
            }
            OpsKind::UnTracked(prep) => prep.finish(self.forward(false).0),
        }
    }

    /// The gradients of q, k, v (those `need`ed) and, with `bias_grad`, of the terms.
    fn gradients(
        &self,
        grad: &FlexTensor,
        need: [bool; 3],
        bias_grad: Option<&mut [f32]>,
    ) -> [Option<Vec<f32>>; 3] {
        let (q, k, v) = (values(&self.q), values(&self.k), values(&self.v));
        let terms = self.terms.as_ref().map(values);
        attention::backward(
            &values(grad),
            [&q, &k, &v],
            self.probs.as_deref(),
            (&self.key_mask, terms.as_deref()),
            self.dims,
            self.dropout.as_ref(),
            need,
            bias_grad,
        )
    }
}

#[derive(Debug)]
struct AttentionBackward;

/// The backward pass of the attention with extra score terms (DeBERTa's): q, k, v and the
/// terms as parents.
#[derive(Debug)]
struct BiasedAttentionBackward;

impl Backward<Flex, 4> for BiasedAttentionBackward {
    type State = AttentionState;

    fn backward(self, ops: Ops<Self::State, 4>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node_q, node_k, node_v, node_bias] = ops.parents;
        let grad = grads.consume::<Flex>(&ops.node);
        let s = ops.state;
        let need = [node_q.is_some(), node_k.is_some(), node_v.is_some()];
        let mut bias_grad = node_bias
            .is_some()
            .then(|| vec![0.0f32; s.dims.batch * s.dims.probs_per_batch()]);
        let parts = s.gradients(&grad, need, bias_grad.as_deref_mut());
        let shapes = [s.q.shape(), s.k.shape(), s.v.shape()];
        for ((node, part), shape) in [node_q, node_k, node_v].into_iter().zip(parts).zip(shapes) {
            if let (Some(node), Some(part)) = (node, part) {
                grads.register::<Flex>(node.id, flex_tensor(part, shape));
            }
        }
        if let (Some(node), Some(g)) = (node_bias, bias_grad) {
            let d = s.dims;
            let shape = burn::tensor::Shape::new([d.batch, d.heads, d.queries, d.keys]);
            grads.register::<Flex>(node.id, flex_tensor(g, shape));
        }
    }
}

impl Backward<Flex, 3> for AttentionBackward {
    type State = AttentionState;

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node_q, node_k, node_v] = ops.parents;
        let grad = grads.consume::<Flex>(&ops.node);
        let s = ops.state;
        let need = [node_q.is_some(), node_k.is_some(), node_v.is_some()];
        let parts = s.gradients(&grad, need, None);
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
    window: Option<usize>,
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
        scale: 1.0 / ((hidden / heads) as f32).sqrt(),
        window,
    })
}

/// Whether the forward pass keeps its probabilities for the backward pass (else they are
/// recomputed there).
fn keep_probs(d: &attention::Dims) -> bool {
    d.queries * d.keys <= attention::KEEP_PROBS_UP_TO
}

/// [`attention_dims`] for scores with extra terms: the terms' shape checked, their scale set.
fn biased_dims(
    qkv: [&FlexTensor; 3],
    key_mask: &FlexTensor,
    heads: usize,
    mask_window: Option<usize>,
    terms: &FlexTensor,
    scale: f64,
) -> Option<attention::Dims> {
    let d = attention_dims(qkv, key_mask, heads, mask_window)?;
    let fits = is_f32(terms) && terms.shape().dims::<4>() == [d.batch, d.heads, d.queries, d.keys];
    fits.then_some(attention::Dims {
        scale: scale as f32,
        ..d
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

/// The backward pass of GeGLU; its state is the input `x` and the half width.
#[derive(Debug)]
struct GegluBackward;

impl Backward<Flex, 1> for GegluBackward {
    type State = (FlexTensor, usize);

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let (x, n) = ops.state;
        unary::<Flex, _>(ops.parents, ops.node, grads, |grad| {
            let out = gelu::geglu_backward(&values(&x), &values(&grad), n);
            flex_tensor(out, x.shape())
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

impl KernelBackend for Flex {
    // No autodiff, so no dropout at all.
    const KEYED_DROPOUT: bool = true;

    fn kernel_attention(
        q: Tensor<Self, 3>,
        k: Tensor<Self, 3>,
        v: Tensor<Self, 3>,
        heads: usize,
        mask: &AttentionMask<Self>,
        dropout: f64,
    ) -> Tensor<Self, 3> {
        let key_mask = prim(mask.additive.clone());
        let (q, k, v) = (prim(q), prim(k), prim(v));
        let Some(dims) = attention_dims([&q, &k, &v], &key_mask, heads, mask.window) else {
            return attention_heads(float(q), float(k), float(v), heads, mask, dropout);
        };
        // Inference: no autodiff on plain Flex, so no dropout and nothing kept.
        let (qv, kv, vv) = (values(&q), values(&k), values(&v));
        let (out, _) =
            attention::forward([&qv, &kv, &vv], &values(&key_mask), None, dims, None, false);
        float(flex_tensor(out, q.shape()))
    }

    fn kernel_attention_biased(
        q: Tensor<Self, 3>,
        k: Tensor<Self, 3>,
        v: Tensor<Self, 3>,
        heads: usize,
        mask: &AttentionMask<Self>,
        bias: ScoreBias<Self>,
        dropout: f64,
    ) -> Tensor<Self, 3> {
        let key_mask = prim(mask.additive.clone());
        let (q, k, v, terms) = (prim(q), prim(k), prim(v), prim(bias.terms));
        let dims = biased_dims(
            [&q, &k, &v],
            &key_mask,
            heads,
            mask.window,
            &terms,
            bias.scale,
        );
        let Some(dims) = dims else {
            let [q, k, v] = [q, k, v].map(|t| split_heads(float(t), heads));
            let bias = ScoreBias {
                terms: float(terms),
                scale: bias.scale,
            };
            return merge_heads(attention_scored_composed(
                [q, k, v],
                mask,
                Some(bias),
                dropout,
                Self::kernel_dropout,
            ));
        };
        let (qv, kv, vv) = (values(&q), values(&k), values(&v));
        let terms = values(&terms);
        let (out, _) = attention::forward(
            [&qv, &kv, &vv],
            &values(&key_mask),
            Some(&terms),
            dims,
            None,
            false,
        );
        float(flex_tensor(out, q.shape()))
    }

    fn kernel_rotary(
        x: Tensor<Self, 3>,
        cos: Tensor<Self, 2>,
        sin: Tensor<Self, 2>,
        heads: usize,
    ) -> Tensor<Self, 3> {
        let (xp, c, sn) = (prim(x), prim(cos), prim(sin));
        match Rope::of(&xp, &c, &sn, heads) {
            Some(rope) => float(rope.apply(&xp, false)),
            None => rotary_composed(float(xp), &float(c), &float(sn), heads),
        }
    }

    fn kernel_relative_terms(
        c2p: Option<Tensor<Self, 4>>,
        p2c: Option<Tensor<Self, 4>>,
        index: &RelativeIndex<Self>,
        queries: usize,
        scale: f64,
    ) -> Option<Tensor<Self, 4>> {
        let (Some(c), Some(p)) = (&c2p, &p2c) else {
            return relative_terms_composed(c2p, p2c, index, queries, scale);
        };
        let (c, p) = (prim(c.clone()), prim(p.clone()));
        let fits = is_f32(&c) && is_f32(&p) && c.shape().num_dims() == 4;
        let terms = fits
            .then(|| {
                let dims = c.shape().dims::<4>();
                Terms::new(dims, index.seq, &index.host, index.seq, scale)
            })
            .flatten();
        let Some(t) = terms.filter(|t| t.queries == queries) else {
            return relative_terms_composed(c2p, p2c, index, queries, scale);
        };
        let out = t.forward(&values(&c), &values(&p));
        let shape = burn::tensor::Shape::new([t.batch, t.heads, t.queries, t.keys]);
        Some(float(flex_tensor(out, shape)))
    }

    fn kernel_geglu(x: Tensor<Self, 3>) -> Tensor<Self, 3> {
        let x = prim(x);
        let width = x.shape()[2];
        if !is_f32(&x) || !width.is_multiple_of(2) {
            return super::geglu_composed::<Self>(float(x));
        }
        let out = gelu::geglu(&values(&x), width / 2);
        float(flex_tensor(out, gemm::with_last(&x.shape(), width / 2)))
    }

    fn kernel_gelu<const D: usize>(x: Tensor<Self, D>) -> Tensor<Self, D> {
        let x = prim(x);
        if !is_f32(&x) {
            return burn::tensor::activation::gelu(float(x));
        }
        float(gelu_tensor(x))
    }

    fn kernel_linear<const D: usize>(
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

    fn kernel_layer_norm<const D: usize>(
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

    fn kernel_linear_int8<const D: usize>(
        x: Tensor<Self, D>,
        layer: &Int8Linear<Self>,
    ) -> Tensor<Self, D> {
        let x = prim(x);
        let weight = layer.weight.val().into_primitive();
        let sum = layer.weight_sum.val().into_primitive();
        let scale = prim(layer.weight_scale.val());
        let bias = layer.bias.as_ref().map(|b| prim(b.val()));
        let shape = x.shape();
        let (m, k) = gemm::rows_cols(&shape);
        let n = layer.d_output();
        let slices = (
            weight
                .as_slice::<i8>()
                .filter(|_| weight.dtype() == DType::I8),
            sum.as_slice::<i32>().filter(|_| sum.dtype() == DType::I32),
        );
        let floats = is_f32(&x) && is_f32(&scale) && bias.as_ref().is_none_or(is_f32);
        let (Some(packed), Some(sums), true, true) =
            (slices.0, slices.1, floats, k == layer.d_input)
        else {
            return crate::int8::linear_int8_composed(float(x), layer);
        };
        let (xs, scale) = (values(&x), values(&scale));
        let bias = bias.as_ref().map(values);
        let w = int8::Weight {
            packed,
            scale: &scale,
            sum: sums,
            bias: bias.as_deref(),
            k,
            n,
        };
        if !w.fits() {
            return crate::int8::linear_int8_composed(float(x), layer);
        }
        let out = int8::linear(&xs, m, w, int8::Path::chosen());
        float(flex_tensor(out, gemm::with_last(&shape, n)))
    }
}

impl<C: CheckpointStrategy> KernelBackend for Autodiff<Flex, C> {
    // Every f32 dropout (attention, `kernel_dropout`) draws its key through `draw_key`. The
    // non-f32 fallbacks (bf16 mixed precision) are Burn's compositions with RNG masks: the
    // trainer reseeds for those (it asks the model's precision).
    const KEYED_DROPOUT: bool = true;

    fn kernel_attention(
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
        let dims = attention_dims(
            [&q.primitive, &k.primitive, &v.primitive],
            &key_mask,
            heads,
            mask.window,
        );
        let Some(dims) = dims else {
            let wrap = |t| Tensor::from_primitive(TensorPrimitive::Float(t));
            return attention_heads(wrap(q), wrap(k), wrap(v), heads, mask, dropout);
        };
        let state = AttentionState {
            key_mask: values(&key_mask).into_owned(),
            terms: None,
            probs: None,
            dims,
            dropout: (dropout > 0.0).then(|| MaskSpec::new(draw_key(), dropout)),
            q: q.primitive,
            k: k.primitive,
            v: v.primitive,
        };
        let nodes = [q.node, k.node, v.node];
        let kind = AttentionBackward
            .prepare::<C>(nodes)
            .compute_bound()
            .stateful();
        Tensor::from_primitive(TensorPrimitive::Float(state.finish(kind)))
    }

    fn kernel_attention_biased(
        q: Tensor<Self, 3>,
        k: Tensor<Self, 3>,
        v: Tensor<Self, 3>,
        heads: usize,
        mask: &AttentionMask<Self>,
        bias: ScoreBias<Self>,
        dropout: f64,
    ) -> Tensor<Self, 3> {
        let key_mask = prim(mask.additive.clone().inner());
        let scale = bias.scale;
        let [q, k, v] = [q, k, v].map(|t| t.into_primitive().tensor());
        let terms = bias.terms.into_primitive().tensor();
        let dims = biased_dims(
            [&q.primitive, &k.primitive, &v.primitive],
            &key_mask,
            heads,
            mask.window,
            &terms.primitive,
            scale,
        );
        let Some(dims) = dims else {
            let wrap3 = |t| Tensor::<Self, 3>::from_primitive(TensorPrimitive::Float(t));
            let [q, k, v] = [q, k, v].map(|t| split_heads(wrap3(t), heads));
            let terms = Tensor::<Self, 4>::from_primitive(TensorPrimitive::Float(terms));
            return merge_heads(attention_scored_composed(
                [q, k, v],
                mask,
                Some(ScoreBias { terms, scale }),
                dropout,
                Self::kernel_dropout,
            ));
        };
        let state = AttentionState {
            key_mask: values(&key_mask).into_owned(),
            terms: Some(terms.primitive),
            probs: None,
            dims,
            dropout: (dropout > 0.0).then(|| MaskSpec::new(draw_key(), dropout)),
            q: q.primitive,
            k: k.primitive,
            v: v.primitive,
        };
        let nodes = [q.node, k.node, v.node, terms.node];
        let kind = BiasedAttentionBackward
            .prepare::<C>(nodes)
            .compute_bound()
            .stateful();
        Tensor::from_primitive(TensorPrimitive::Float(state.finish(kind)))
    }

    fn kernel_rotary(
        x: Tensor<Self, 3>,
        cos: Tensor<Self, 2>,
        sin: Tensor<Self, 2>,
        heads: usize,
    ) -> Tensor<Self, 3> {
        let (c, sn) = (prim(cos.clone().inner()), prim(sin.clone().inner()));
        let x = x.into_primitive().tensor();
        let Some(rope) = Rope::of(&x.primitive, &c, &sn, heads) else {
            let x = Tensor::from_primitive(TensorPrimitive::Float(x));
            return rotary_composed(x, &cos, &sin, heads);
        };
        let out = match RotaryBackward
            .prepare::<C>([x.node.clone()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let y = rope.apply(&x.primitive, false);
                prep.finish(rope, y)
            }
            OpsKind::UnTracked(prep) => prep.finish(rope.apply(&x.primitive, false)),
        };
        Tensor::from_primitive(TensorPrimitive::Float(out))
    }

    fn kernel_relative_terms(
        c2p: Option<Tensor<Self, 4>>,
        p2c: Option<Tensor<Self, 4>>,
        index: &RelativeIndex<Self>,
        queries: usize,
        scale: f64,
    ) -> Option<Tensor<Self, 4>> {
        let (Some(c), Some(p)) = (&c2p, &p2c) else {
            return relative_terms_composed(c2p, p2c, index, queries, scale);
        };
        let (c, p) = (
            c.clone().into_primitive().tensor(),
            p.clone().into_primitive().tensor(),
        );
        let fits =
            is_f32(&c.primitive) && is_f32(&p.primitive) && c.primitive.shape().num_dims() == 4;
        let terms = fits
            .then(|| {
                let dims = c.primitive.shape().dims::<4>();
                Terms::new(dims, index.seq, &index.host, index.seq, scale)
            })
            .flatten()
            .filter(|t| t.queries == queries);
        let Some(t) = terms else {
            return relative_terms_composed(c2p, p2c, index, queries, scale);
        };
        let shape = burn::tensor::Shape::new([t.batch, t.heads, t.queries, t.keys]);
        let run = |t: &Terms| {
            let out = t.forward(&values(&c.primitive), &values(&p.primitive));
            flex_tensor(out, shape.clone())
        };
        let out = match RelativeTermsBackward
            .prepare::<C>([c.node.clone(), p.node.clone()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let out = run(&t);
                prep.finish(t, out)
            }
            OpsKind::UnTracked(prep) => prep.finish(run(&t)),
        };
        Some(Tensor::from_primitive(TensorPrimitive::Float(out)))
    }

    fn kernel_geglu(x: Tensor<Self, 3>) -> Tensor<Self, 3> {
        let x = x.into_primitive().tensor();
        let width = x.primitive.shape()[2];
        if !is_f32(&x.primitive) || !width.is_multiple_of(2) {
            return super::geglu_composed::<Self>(Tensor::from_primitive(TensorPrimitive::Float(
                x,
            )));
        }
        let n = width / 2;
        let run = |x: &FlexTensor| {
            let out = gelu::geglu(&values(x), n);
            flex_tensor(out, gemm::with_last(&x.shape(), n))
        };
        let out = match GegluBackward
            .prepare::<C>([x.node.clone()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let y = run(&x.primitive);
                prep.finish((x.primitive, n), y)
            }
            OpsKind::UnTracked(prep) => prep.finish(run(&x.primitive)),
        };
        Tensor::from_primitive(TensorPrimitive::Float(out))
    }

    fn kernel_gelu<const D: usize>(x: Tensor<Self, D>) -> Tensor<Self, D> {
        let x = x.into_primitive().tensor();
        if !is_f32(&x.primitive) {
            // bf16 activations: the portable exact GELU (Burn's own differentiates tanh's).
            return super::gelu_exact_autodiff(Tensor::from_primitive(TensorPrimitive::Float(x)));
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

    fn kernel_linear<const D: usize>(
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

    fn kernel_layer_norm<const D: usize>(
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

    fn kernel_dropout<const D: usize>(x: Tensor<Self, D>, prob: f64) -> Tensor<Self, D> {
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
    use burn::backend::Autodiff;
    use burn::tensor::backend::Backend;
    use burn::tensor::{Int, TensorData};

    use super::*;
    use crate::{DropoutKey, next_dropout_key, with_dropout_key};

    type A = Autodiff<Flex>;

    /// Hidden dropout then attention dropout of one "pass" under `key`, after seeding the
    /// backend with `seed` (which a keyed pass must ignore).
    fn pass(key: DropoutKey, seed: u64) -> (Vec<f32>, Vec<f32>) {
        let device = Default::default();
        A::seed(&device, seed);
        let x = Tensor::<A, 3>::ones([2, 5, 8], &device);
        let mask = AttentionMask::new(Tensor::<A, 2, Int>::from_data(
            TensorData::new(vec![1i64; 10], [2, 5]),
            &device,
        ));
        let (hidden, attended) = with_dropout_key(key, || {
            let hidden = A::kernel_dropout(x.clone(), 0.3);
            let attended = A::kernel_attention(x.clone(), x.clone(), x, 2, &mask, 0.3);
            (hidden, attended)
        });
        let flat = |t: Tensor<A, 3>| t.into_data().to_vec::<f32>().unwrap_or_default();
        (flat(hidden), flat(attended))
    }

    #[test]
    fn keyed_masks_depend_on_the_key_only() {
        let a = pass(DropoutKey(7), 1);
        assert_eq!(
            a,
            pass(DropoutKey(7), 2),
            "the backend's RNG must not matter"
        );
        let b = pass(DropoutKey(8), 1);
        assert_ne!(a.0, b.0, "another key, another hidden mask");
        assert_ne!(a.1, b.1, "another key, another attention mask");
        assert!(a.0.contains(&0.0), "dropout active");
    }

    #[test]
    fn each_dropout_of_a_pass_gets_its_own_sub_key() {
        let key = DropoutKey(3);
        let (first, second) = with_dropout_key(key, || (next_dropout_key(), next_dropout_key()));
        assert_eq!(first, Some(key.sub_key(0)));
        assert_eq!(second, Some(key.sub_key(1)));
        assert_ne!(first, second);
        assert_eq!(next_dropout_key(), None, "scope restored");
        const { assert!(<A as KernelBackend>::KEYED_DROPOUT) };
    }
}
