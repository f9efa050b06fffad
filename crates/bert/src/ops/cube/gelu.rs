//! The exact (erf) GELU and its derivative as element-wise kernels.
//!
//! Burn's GELU forward is one fused kernel too; its backward pass (0.21) is the tanh
//! approximation's derivative composed of ≈ 17 operations. Here the backward pass is one kernel
//! computing the exact derivative `Φ(x) + x·φ(x)`, as PyTorch and the Flex kernels do.

use std::f32::consts::{FRAC_1_SQRT_2, FRAC_2_SQRT_PI};

use burn::tensor::TensorMetadata;
use burn_cubecl::CubeRuntime;
use burn_cubecl::tensor::CubeTensor;
use cubecl::prelude::*;
use cubecl::{CubeDim, calculate_cube_count_elemwise};

use super::stream::{CubeKernel, FusedTensor, empty, register};

/// `1/√(2π)`, the standard normal density's factor.
const PDF_SCALE: f32 = 0.5 * FRAC_2_SQRT_PI * FRAC_1_SQRT_2;

#[cube(launch)]
fn gelu_kernel(x: &Tensor<f32>, out: &mut Tensor<f32>) {
    let i = ABSOLUTE_POS;
    if i >= out.len() {
        terminate!();
    }
    let v = x[i];
    out[i] = f32::new(0.5) * v * (f32::new(1.0) + Erf::erf(v * FRAC_1_SQRT_2));
}

#[cube(launch)]
fn gelu_backward_kernel(x: &Tensor<f32>, grad: &Tensor<f32>, out: &mut Tensor<f32>) {
    let i = ABSOLUTE_POS;
    if i >= out.len() {
        terminate!();
    }
    let v = x[i];
    let cdf = f32::new(0.5) * (f32::new(1.0) + Erf::erf(v * FRAC_1_SQRT_2));
    let pdf = (v * v * f32::new(-0.5)).exp() * PDF_SCALE;
    out[i] = grad[i] * (cdf + v * pdf);
}

/// Launches an element-wise kernel over `inputs[0]`'s elements.
fn elementwise<R: CubeRuntime>(
    inputs: Vec<CubeTensor<R>>,
    launch: impl FnOnce(&CubeTensor<R>, &[CubeTensor<R>], CubeCount, CubeDim),
) -> Vec<CubeTensor<R>> {
    let Some(first) = inputs.first() else {
        return Vec::new();
    };
    let out = empty(first, first.shape());
    let n = first.shape().num_elements();
    let cube_dim = CubeDim::new_1d(256);
    let count = calculate_cube_count_elemwise(&first.client, n, cube_dim);
    launch(&out, &inputs, count, cube_dim);
    vec![out]
}

#[derive(Debug)]
struct Gelu;

impl<R: CubeRuntime> CubeKernel<R> for Gelu {
    fn run(&self, inputs: Vec<CubeTensor<R>>) -> Vec<CubeTensor<R>> {
        elementwise(inputs, |out, inputs, count, dim| {
            if let [x] = inputs {
                gelu_kernel::launch::<R>(
                    &out.client,
                    count,
                    dim,
                    x.clone().into_tensor_arg(),
                    out.clone().into_tensor_arg(),
                );
            }
        })
    }
}

#[derive(Debug)]
struct GeluBackward;

impl<R: CubeRuntime> CubeKernel<R> for GeluBackward {
    fn run(&self, inputs: Vec<CubeTensor<R>>) -> Vec<CubeTensor<R>> {
        elementwise(inputs, |out, inputs, count, dim| {
            if let [x, grad] = inputs {
                gelu_backward_kernel::launch::<R>(
                    &out.client,
                    count,
                    dim,
                    x.clone().into_tensor_arg(),
                    grad.clone().into_tensor_arg(),
                    out.clone().into_tensor_arg(),
                );
            }
        })
    }
}

/// `x·Φ(x)` of an f32 tensor.
pub fn gelu<R: CubeRuntime>(x: FusedTensor<R>) -> FusedTensor<R> {
    let shape = x.shape();
    let [out] = register("bert_gelu", [x], [shape], Gelu);
    out
}

/// `grad·(Φ(x) + x·φ(x))` of f32 tensors of one shape.
pub fn gelu_backward<R: CubeRuntime>(x: FusedTensor<R>, grad: FusedTensor<R>) -> FusedTensor<R> {
    let shape = x.shape();
    let [out] = register("bert_gelu_backward", [x, grad], [shape], GeluBackward);
    out
}
