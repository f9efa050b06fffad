//! Dropout as one element-wise kernel on the counter-based masks of the attention kernel and
//! the CPU kernels (`flex/mask.rs`): element `i` of the flattened (contiguous, row-major)
//! tensor keeps or drops by mask element `i` of the key, so the same key gives the same mask
//! on CUDA, wgpu and the CPU.
//!
//! Burn's `Dropout` draws a `[..]`-shaped random tensor, compares and multiplies (three
//! operations, the mask kept for the backward pass) and follows only the backend's seed; here
//! the forward pass is `x·keep/(1−p)`, the backward pass the same kernel on the gradient, the
//! mask regenerated from the key (four floats) instead of stored. The key is the pass's
//! [`crate::DropoutKey`] sub-key when one is set, so a training step needs no reseeding (which
//! drains the fusion stream).

use burn::tensor::{Shape, TensorMetadata};
use burn_cubecl::tensor::CubeTensor;
use cubecl::prelude::*;
use cubecl::{CubeDim, calculate_cube_count_elemwise};

use super::attention::{Dropout, drop_factor, key_word};
use super::stream::{CubeKernel, FusedTensor, KernelRuntime, empty, register};

#[cube(launch)]
fn dropout_kernel(
    x: &Tensor<f32>,
    key: &Tensor<f32>,
    out: &mut Tensor<f32>,
    threshold: u32,
    scale: f32,
) {
    let i = ABSOLUTE_POS;
    if i >= out.len() {
        terminate!();
    }
    let k0 = key_word(key, 0usize);
    let k1 = key_word(key, 1usize);
    out[i] = x[i] * drop_factor(u32::cast_from(i), k0, k1, threshold, scale);
}

/// The kernel with its probability's threshold and scale.
#[derive(Debug)]
struct Mask {
    spec: Dropout,
}

impl<R: KernelRuntime> CubeKernel<R> for Mask {
    fn run(&self, inputs: Vec<CubeTensor<R>>) -> Vec<CubeTensor<R>> {
        let [x, key] = inputs.as_slice() else {
            return Vec::new();
        };
        let out = empty(x, x.shape());
        let cube_dim = CubeDim::new_1d(256);
        let count = calculate_cube_count_elemwise(&x.client, x.shape().num_elements(), cube_dim);
        dropout_kernel::launch::<R>(
            &x.client,
            count,
            cube_dim,
            x.clone().into_tensor_arg(),
            key.clone().into_tensor_arg(),
            out.clone().into_tensor_arg(),
            self.spec.threshold,
            self.spec.scale,
        );
        vec![out]
    }
}

/// `x ⊙ mask`: the mask of `spec`'s probability under `key` (`[4]`, the 16-bit halves of two
/// words as floats), element `i` of the flattened tensor by mask element `i`. The forward
/// pass and, on the output gradient, the backward pass.
pub fn apply<R: KernelRuntime>(
    x: FusedTensor<R>,
    key: FusedTensor<R>,
    spec: Dropout,
    name: &'static str,
) -> FusedTensor<R> {
    let shape: Shape = x.shape();
    let [out] = register(name, [x, key], [shape], Mask { spec });
    out
}
