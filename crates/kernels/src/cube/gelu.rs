//! The exact (erf) GELU's derivative as one element-wise kernel.
//!
//! Burn's GELU forward is exact (erf) and made of element-wise operations that its fuser merges
//! with their neighbours (the bias add before it, or a matmul's epilogue), so the forward pass
//! stays Burn's: a custom operation would be a barrier to that fusion and cost a launch and a
//! pass over memory of its own. Burn's backward pass (0.21) is the tanh approximation's
//! derivative; the exact one composed of Burn operations (`gelu_exact_autodiff`) is ≈ 11 of
//! them. Here it is one kernel computing `grad·(Φ(x) + x·φ(x))`, as PyTorch and the Flex
//! kernels do.

use std::f32::consts::{FRAC_1_SQRT_2, FRAC_2_SQRT_PI};

use burn::tensor::TensorMetadata;
use burn_cubecl::tensor::CubeTensor;
use cubecl::prelude::*;
use cubecl::{CubeDim, calculate_cube_count_elemwise};

use super::stream::{CubeKernel, FusedTensor, KernelRuntime, empty, register};

/// `1/√(2π)`, the standard normal density's factor.
const PDF_SCALE: f32 = 0.5 * FRAC_2_SQRT_PI * FRAC_1_SQRT_2;

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

#[derive(Debug)]
struct GeluBackward;

impl<R: KernelRuntime> CubeKernel<R> for GeluBackward {
    fn run(&self, inputs: Vec<CubeTensor<R>>) -> Vec<CubeTensor<R>> {
        let [x, grad] = inputs.as_slice() else {
            return Vec::new();
        };
        let out = empty(x, x.shape());
        let cube_dim = CubeDim::new_1d(256);
        let count = calculate_cube_count_elemwise(&x.client, x.shape().num_elements(), cube_dim);
        gelu_backward_kernel::launch::<R>(
            &x.client,
            count,
            cube_dim,
            x.clone().into_tensor_arg(),
            grad.clone().into_tensor_arg(),
            out.clone().into_tensor_arg(),
        );
        vec![out]
    }
}

/// `grad·(Φ(x) + x·φ(x))` of f32 tensors of one shape.
pub fn gelu_backward<R: KernelRuntime>(x: FusedTensor<R>, grad: FusedTensor<R>) -> FusedTensor<R> {
    let shape = x.shape();
    let [out] = register("kernel_gelu_backward", [x, grad], [shape], GeluBackward);
    out
}
