//! [`BertBackend`] for the CubeCL backends, CUDA and wgpu, in one place.
//!
//! Both are `Fusion<CubeBackend<R, f32, i32, u32>>` ([`stream::Fused`]), so one generic impl
//! serves every CubeCL runtime. Our kernels are written once against CubeCL's runtime
//! abstraction and enter Burn's fusion stream as custom operations ([`stream`]); the autodiff
//! nodes and their backward passes are here, the kernels below:
//! - [`gelu`]: the exact GELU and its exact derivative;
//! - [`norm`]: layer norm, forward and backward (`dx`, `dγ`, `dβ`);
//!
//! What has no kernel yet takes the portable compositions of [`crate::ops`]. Every kernel runs
//! on f32 tensors; another element type takes the composition.

mod gelu;
mod norm;
mod stream;

use burn::backend::Autodiff;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind, unary};
use burn::tensor::ops::FloatTensorOps;
use burn::tensor::{Shape, Tensor, TensorMetadata, TensorPrimitive};
use burn_cubecl::CubeRuntime;

use self::stream::{Fused, FusedTensor, all_f32};
use super::{BertBackend, layer_norm_composed};

fn wrap<B: burn::tensor::backend::Backend, const D: usize>(
    t: burn::tensor::ops::FloatTensor<B>,
) -> Tensor<B, D> {
    Tensor::from_primitive(TensorPrimitive::Float(t))
}

impl<R: CubeRuntime> BertBackend for Fused<R> {
    fn bert_gelu<const D: usize>(x: Tensor<Self, D>) -> Tensor<Self, D> {
        let x = x.into_primitive().tensor();
        if !all_f32::<R>(&[&x]) {
            return burn::tensor::activation::gelu(wrap(x));
        }
        wrap(gelu::gelu(x))
    }

    fn bert_layer_norm<const D: usize>(
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

/// Whether the layer-norm kernels take these tensors: f32, `γ` and `β` of `x`'s last size.
fn norm_fits<R: CubeRuntime>(x: &FusedTensor<R>, g: &FusedTensor<R>, b: &FusedTensor<R>) -> bool {
    let d = x.shape().as_slice().last().copied().unwrap_or(0);
    all_f32::<R>(&[x, g, b]) && d > 0 && g.shape().as_slice() == [d] && b.shape().as_slice() == [d]
}

/// The layer-norm node; its state is the input, `γ` and the rows' statistics.
#[derive(Debug)]
struct LayerNormBackward;

impl<R: CubeRuntime> Backward<Fused<R>, 3> for LayerNormBackward {
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

/// The GELU node: its state is the input.
#[derive(Debug)]
struct GeluBackward;

impl<R: CubeRuntime> Backward<Fused<R>, 1> for GeluBackward {
    type State = FusedTensor<R>;

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let x = ops.state;
        unary::<Fused<R>, _>(ops.parents, ops.node, grads, |grad| {
            gelu::gelu_backward(x, grad)
        });
    }
}

impl<R: CubeRuntime, C: CheckpointStrategy> BertBackend for Autodiff<Fused<R>, C> {
    fn bert_gelu<const D: usize>(x: Tensor<Self, D>) -> Tensor<Self, D> {
        let x = x.into_primitive().tensor();
        if !all_f32::<R>(&[&x.primitive]) {
            return burn::tensor::activation::gelu(wrap(x));
        }
        let out = match GeluBackward
            .prepare::<C>([x.node.clone()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let y = gelu::gelu(x.primitive.clone());
                prep.finish(x.primitive, y)
            }
            OpsKind::UnTracked(prep) => prep.finish(gelu::gelu(x.primitive)),
        };
        wrap(out)
    }

    fn bert_layer_norm<const D: usize>(
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
