//! [`KernelBackend`] for the CubeCL backends, CUDA and wgpu, in one place.
//!
//! Both are `Fusion<CubeBackend<R, f32, i32, u32>>` ([`stream::Fused`]), so one generic impl
//! serves every CubeCL runtime. Our kernels are written once against CubeCL's runtime
//! abstraction and enter Burn's fusion stream as custom operations ([`stream`]); the autodiff
//! nodes and their backward passes are here, the kernels below:
//! - [`gelu`]: the exact GELU's exact derivative (the forward pass is Burn's, which fuses);
//! - [`norm`]: layer norm, forward and backward (`dx`, `dγ`, `dβ`);
//! - [`attention`]: flash-style multi-head attention with the padding mask and dropout on
//!   the probabilities, forward and backward (`dq`, `dk`, `dv`);
//! - [`dropout`]: hidden, LoRA and classifier dropout, the attention kernel's masks on an
//!   element-wise tensor, forward and backward.
//!
//! Every f32 dropout takes its mask key from the pass's [`super::DropoutKey`] when one is set
//! ([`draw_key`]), so [`KernelBackend::KEYED_DROPOUT`] holds for the autodiff backend.
//!
//! What has no kernel yet takes the portable compositions of [`crate`]. Every kernel runs
//! on f32 tensors; another element type takes the composition.

mod attention;
mod dropout;
mod gelu;
mod norm;
mod stream;

use burn::backend::Autodiff;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind, unary};
use burn::tensor::ops::{ActivationOps, FloatTensorOps};
use burn::tensor::{Distribution, FloatDType, Shape, Tensor, TensorMetadata, TensorPrimitive};

pub use self::stream::registered as kernel_ops_registered;
use self::stream::{Fused, FusedTensor, KernelRuntime, all_f32};
use super::{
    AttentionMask, KernelBackend, attention_heads, attention_scored_composed, layer_norm_composed,
    merge_heads, split_heads,
};

fn wrap<B: burn::tensor::backend::Backend, const D: usize>(
    t: burn::tensor::ops::FloatTensor<B>,
) -> Tensor<B, D> {
    Tensor::from_primitive(TensorPrimitive::Float(t))
}

impl<R: KernelRuntime> KernelBackend for Fused<R> {
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
        if mask.window.is_some() {
            // No windowed CubeCL kernel: the composition (a `[queries, keys]` window mask).
            return attention_heads(q, k, v, heads, mask, dropout);
        }
        let key_mask = prim(mask.additive.clone());
        let (q, k, v) = (prim(q), prim(k), prim(v));
        let Some(dims) = attention_dims::<R>([&q, &k, &v], &key_mask, heads) else {
            return attention_heads(wrap(q), wrap(k), wrap(v), heads, mask, dropout);
        };
        // No autodiff: inference, so no dropout (as `burn::nn::Dropout`).
        wrap(attention::forward([q, k, v], key_mask, dims))
    }

    fn kernel_layer_norm<const D: usize>(
        x: Tensor<Self, D>,
        gamma: Tensor<Self, 1>,
        beta: Option<Tensor<Self, 1>>,
        epsilon: f64,
    ) -> Tensor<Self, D> {
        let beta = beta.unwrap_or_else(|| gamma.zeros_like());
        let (x, g, b) = (prim(x), prim(gamma), prim(beta));
        if !norm_fits::<R>(&x, &g, &b) {
            return layer_norm_composed(wrap(x), wrap(g), Some(wrap(b)), epsilon);
        }
        wrap(norm::forward(x, g, b, epsilon).0)
    }
}

fn prim<B: burn::tensor::backend::Backend, const D: usize>(
    t: Tensor<B, D>,
) -> burn::tensor::ops::FloatTensor<B> {
    t.into_primitive().tensor()
}

/// The sizes of an attention call on `[batch, seq, hidden]` tensors with `heads` heads and a
/// `[batch, 1, 1, keys]` key mask, when the kernels take it (else the composition runs, and
/// reports any shape error the portable way).
fn attention_dims<R: KernelRuntime>(
    [q, k, v]: [&FusedTensor<R>; 3],
    key_mask: &FusedTensor<R>,
    heads: usize,
) -> Option<attention::Dims> {
    let (qs, ks, vs) = (q.shape(), k.shape(), v.shape());
    if !all_f32::<R>(&[q, k, v, key_mask]) || qs.num_dims() != 3 || ks.num_dims() != 3 {
        return None;
    }
    let (batch, queries, hidden) = (qs[0], qs[1], qs[2]);
    let keys = ks[1];
    let head_dim = hidden.checked_div(heads)?;
    let fits = ks == vs
        && ks[0] == batch
        && ks[2] == hidden
        && queries > 0
        && keys > 0
        && head_dim > 0
        && head_dim * heads == hidden
        && head_dim <= attention::MAX_HEAD_DIM
        && key_mask.shape().num_elements() == batch * keys;
    fits.then_some(attention::Dims {
        batch,
        queries,
        keys,
        heads,
        head_dim,
    })
}

/// The dropout key as four 16-bit halves in floats, as the Flex kernels draw theirs: the
/// current pass's [`super::DropoutKey`] when one is set ([`super::with_dropout_key`]),
/// uploaded; else a fresh key from the backend's seeded generator, on the device. Never read
/// back by the host either way.
fn draw_key<R: KernelRuntime>(like: &FusedTensor<R>) -> FusedTensor<R> {
    if let Some([high, low]) = super::next_dropout_key() {
        let halves = [high >> 16, high & 0xffff, low >> 16, low & 0xffff].map(|h| h as f32);
        return Fused::<R>::float_from_data(
            burn::tensor::TensorData::new(halves.to_vec(), [4]),
            &like.client.device().clone(),
        );
    }
    Fused::<R>::float_random(
        Shape::new([4]),
        Distribution::Uniform(0.0, 65_536.0),
        &like.client.device().clone(),
        FloatDType::F32,
    )
}

/// What the attention node keeps for its backward pass: the inputs (shared with the graph),
/// the output, each row's log-sum-exp and the dropout key; not the probabilities.
#[derive(Debug, Clone)]
struct AttentionState<R: KernelRuntime> {
    qkv: [FusedTensor<R>; 3],
    key_mask: FusedTensor<R>,
    out: FusedTensor<R>,
    lse: FusedTensor<R>,
    dropout: Option<(attention::Dropout, FusedTensor<R>)>,
    dims: attention::Dims,
}

#[derive(Debug)]
struct AttentionBackward;

impl<R: KernelRuntime> Backward<Fused<R>, 3> for AttentionBackward {
    type State = AttentionState<R>;

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let grad = grads.consume::<Fused<R>>(&ops.node);
        let s = ops.state;
        let parts = attention::backward(s.qkv, s.key_mask, [s.out, grad, s.lse], s.dropout, s.dims);
        for (node, part) in ops.parents.into_iter().zip(parts) {
            if let Some(node) = node {
                grads.register::<Fused<R>>(node.id, part);
            }
        }
    }
}

/// Whether the layer-norm kernels take these tensors: f32, `γ` and `β` of `x`'s last size.
fn norm_fits<R: KernelRuntime>(x: &FusedTensor<R>, g: &FusedTensor<R>, b: &FusedTensor<R>) -> bool {
    let d = x.shape().as_slice().last().copied().unwrap_or(0);
    all_f32::<R>(&[x, g, b]) && d > 0 && g.shape().as_slice() == [d] && b.shape().as_slice() == [d]
}

/// The layer-norm node; its state is the input, `γ` and the rows' statistics.
#[derive(Debug)]
struct LayerNormBackward;

impl<R: KernelRuntime> Backward<Fused<R>, 3> for LayerNormBackward {
    type State = (FusedTensor<R>, FusedTensor<R>, FusedTensor<R>);

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node_x, node_gamma, node_beta] = ops.parents;
        let grad = grads.consume::<Fused<R>>(&ops.node);
        let (x, gamma, stats) = ops.state;
        let d = gamma.shape().num_elements();
        if node_gamma.is_some() || node_beta.is_some() {
            let partials = norm::backward_params(x.clone(), stats.clone(), grad.clone(), d);
            for (node, partial) in [node_gamma, node_beta].into_iter().zip(partials) {
                if let Some(node) = node {
                    let sum = Fused::<R>::float_sum_dim(partial, 0);
                    let sum = Fused::<R>::float_reshape(sum, Shape::new([d]));
                    grads.register::<Fused<R>>(node.id, sum);
                }
            }
        }
        if let Some(node) = node_x {
            grads.register::<Fused<R>>(node.id, norm::backward_x(x, gamma, stats, grad));
        }
    }
}

/// The GELU node: Burn's exact forward pass, our kernel for the exact derivative; its state
/// is the input.
#[derive(Debug)]
struct GeluBackward;

impl<R: KernelRuntime> Backward<Fused<R>, 1> for GeluBackward {
    type State = FusedTensor<R>;

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let x = ops.state;
        unary::<Fused<R>, _>(ops.parents, ops.node, grads, |grad| {
            gelu::gelu_backward(x, grad)
        });
    }
}

/// The dropout node; its state is the probability's parameters and the key, the mask being
/// regenerated from them.
#[derive(Debug)]
struct DropoutBackward;

impl<R: KernelRuntime> Backward<Fused<R>, 1> for DropoutBackward {
    type State = (attention::Dropout, FusedTensor<R>);

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let (spec, key) = ops.state;
        unary::<Fused<R>, _>(ops.parents, ops.node, grads, |grad| {
            dropout::apply(grad, key, spec, "kernel_dropout_backward")
        });
    }
}

/// Training attention as Burn operations, for f32 shapes the attention kernels do not take,
/// with the probabilities' dropout through [`KernelBackend::kernel_dropout`] (the dropout
/// kernel, keyed) rather than `burn::nn::Dropout` (the backend's RNG): mask element `i` is
/// element `i` of `[batch, heads, queries, keys]`, as in the attention kernel.
///
/// # Shapes
/// - q: `[batch, queries, hidden]`, k, v: `[batch, seq, hidden]`
/// - output: `[batch, queries, hidden]`
fn attention_keyed_composed<B: KernelBackend>(
    [q, k, v]: [Tensor<B, 3>; 3],
    heads: usize,
    mask: &AttentionMask<B>,
    dropout: f64,
) -> Tensor<B, 3> {
    let [q, k, v] = [q, k, v].map(|t| split_heads(t, heads));
    let head_dim = q.dims()[3];
    let scores = q
        .matmul(k.swap_dims(2, 3))
        .div_scalar((head_dim as f64).sqrt())
        + mask.additive.clone();
    let probs = burn::tensor::activation::softmax(scores, 3);
    merge_heads(B::kernel_dropout(probs, dropout).matmul(v))
}

impl<R: KernelRuntime, C: CheckpointStrategy> KernelBackend for Autodiff<Fused<R>, C> {
    // Every f32 dropout (attention, `kernel_dropout`) draws its key through `draw_key`. The
    // trainer still reseeds bf16 runs, whose dropouts are Burn's.
    const KEYED_DROPOUT: bool = true;

    fn kernel_attention(
        q: Tensor<Self, 3>,
        k: Tensor<Self, 3>,
        v: Tensor<Self, 3>,
        heads: usize,
        mask: &AttentionMask<Self>,
        dropout: f64,
    ) -> Tensor<Self, 3> {
        if mask.window.is_some() {
            // No windowed CubeCL kernel: the composition, with the keyed dropout.
            let [q, k, v] = [q, k, v].map(|t| split_heads(t, heads));
            return merge_heads(attention_scored_composed(
                [q, k, v],
                mask,
                None,
                dropout,
                Self::kernel_dropout,
            ));
        }
        let key_mask = prim(mask.additive.clone().inner());
        let (q, k, v) = (prim(q), prim(k), prim(v));
        let dims =
            attention_dims::<R>([&q.primitive, &k.primitive, &v.primitive], &key_mask, heads);
        let Some(dims) = dims else {
            let all = [&q.primitive, &k.primitive, &v.primitive, &key_mask];
            if dropout > 0.0 && all_f32::<R>(&all) {
                return attention_keyed_composed([wrap(q), wrap(k), wrap(v)], heads, mask, dropout);
            }
            return attention_heads(wrap(q), wrap(k), wrap(v), heads, mask, dropout);
        };
        let dropout =
            (dropout > 0.0).then(|| (attention::Dropout::new(dropout), draw_key::<R>(&key_mask)));
        let nodes = [q.node.clone(), k.node.clone(), v.node.clone()];
        let qkv = [q.primitive, k.primitive, v.primitive];
        let out = match AttentionBackward
            .prepare::<C>(nodes)
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let [out, lse] =
                    attention::forward_train(qkv.clone(), key_mask.clone(), dropout.clone(), dims);
                let state = AttentionState {
                    qkv,
                    key_mask,
                    out: out.clone(),
                    lse,
                    dropout,
                    dims,
                };
                prep.finish(state, out)
            }
            OpsKind::UnTracked(prep) => {
                let [out, _] = attention::forward_train(qkv, key_mask, dropout, dims);
                prep.finish(out)
            }
        };
        wrap(out)
    }

    fn kernel_dropout<const D: usize>(x: Tensor<Self, D>, prob: f64) -> Tensor<Self, D> {
        if prob == 0.0 {
            return x;
        }
        let x = prim(x);
        if !all_f32::<R>(&[&x.primitive]) {
            // bf16 activations: Burn's dropout (the backend's RNG; the trainer reseeds).
            return burn::nn::Dropout { prob }.forward(wrap(x));
        }
        let spec = attention::Dropout::new(prob);
        let key = draw_key::<R>(&x.primitive);
        let out = match DropoutBackward
            .prepare::<C>([x.node.clone()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let y = dropout::apply(x.primitive, key.clone(), spec, "kernel_dropout");
                prep.finish((spec, key), y)
            }
            OpsKind::UnTracked(prep) => {
                prep.finish(dropout::apply(x.primitive, key, spec, "kernel_dropout"))
            }
        };
        wrap(out)
    }

    fn kernel_gelu<const D: usize>(x: Tensor<Self, D>) -> Tensor<Self, D> {
        let x = x.into_primitive().tensor();
        if !all_f32::<R>(&[&x.primitive]) {
            // bf16 activations: the portable exact GELU (Burn's own differentiates tanh's).
            return super::gelu_exact_autodiff(wrap(x));
        }
        let out = match GeluBackward
            .prepare::<C>([x.node.clone()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let y = Fused::<R>::gelu(x.primitive.clone());
                prep.finish(x.primitive, y)
            }
            OpsKind::UnTracked(prep) => prep.finish(Fused::<R>::gelu(x.primitive)),
        };
        wrap(out)
    }

    fn kernel_layer_norm<const D: usize>(
        x: Tensor<Self, D>,
        gamma: Tensor<Self, 1>,
        beta: Option<Tensor<Self, 1>>,
        epsilon: f64,
    ) -> Tensor<Self, D> {
        // An untracked zero shift keeps one node shape (BERT always has a shift).
        let beta = beta.unwrap_or_else(|| gamma.zeros_like());
        let (x, g, b) = (prim(x), prim(gamma), prim(beta));
        if !norm_fits::<R>(&x.primitive, &g.primitive, &b.primitive) {
            return layer_norm_composed(wrap(x), wrap(g), Some(wrap(b)), epsilon);
        }
        let out = match LayerNormBackward
            .prepare::<C>([x.node.clone(), g.node.clone(), b.node.clone()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let (out, stats) = norm::forward(
                    x.primitive.clone(),
                    g.primitive.clone(),
                    b.primitive,
                    epsilon,
                );
                prep.finish((x.primitive, g.primitive, stats), out)
            }
            OpsKind::UnTracked(prep) => {
                prep.finish(norm::forward(x.primitive, g.primitive, b.primitive, epsilon).0)
            }
        };
        wrap(out)
    }
}

/// The graphics adapter Burn's wgpu backend would run on (`WgpuDevice::DefaultDevice`: the
/// platform's API — Vulkan, Metal or DX12 — and the high-performance adapter), described
/// as "name (device type, API, driver)"; `None` when there is none.
///
/// Burn panics on first use when wgpu finds no adapter (no Vulkan driver installed, no GPU);
/// asking first lets the binary say what is missing and the wgpu test suite skip with a
/// message. Mesa's lavapipe, a software Vulkan driver, is an adapter of type `Cpu`.
#[cfg(feature = "wgpu")]
pub fn wgpu_adapter() -> Option<String> {
    use burn::backend::wgpu::graphics::{AutoGraphicsApi, GraphicsApi};
    let instance = wgpu::Instance::new(wgpu::InstanceDescriptor {
        backends: AutoGraphicsApi::backend().into(),
        ..wgpu::InstanceDescriptor::new_without_display_handle()
    });
    let adapter =
        cubecl_common::future::block_on(instance.request_adapter(&wgpu::RequestAdapterOptions {
            power_preference: wgpu::PowerPreference::HighPerformance,
            force_fallback_adapter: false,
            compatible_surface: None,
        }))
        .ok()?;
    let info = adapter.get_info();
    Some(format!(
        "{} ({:?}, {:?}, {} {})",
        info.name, info.device_type, info.backend, info.driver, info.driver_info
    ))
}
