//! Layer normalisation over the last dimension: one workgroup per row, forward and backward.
//!
//! Burn composes layer norm of ≈ 11 operations (mean, centring, variance, …) and its autodiff
//! records each one; here the forward pass is one kernel that also writes each row's mean and
//! `1/σ`, and the backward pass one kernel for `dx` plus, only when scale or shift are trained,
//! one for per-block partial sums of `dγ`, `dβ`.
//!
//! The row statistics are reduced in f32 through shared memory (a tree over the workgroup),
//! two passes over the row (mean, then the centred variance, as Burn and PyTorch compute it):
//! no subgroup operations, which lavapipe lacks.

use burn::tensor::{Shape, TensorMetadata};
use burn_cubecl::tensor::CubeTensor;
use cubecl::prelude::*;
use cubecl::server::CubeCountSelection;
use cubecl::{CubeDim, calculate_cube_count_elemwise};

use super::stream::{CubeKernel, FusedTensor, KernelRuntime, empty, register};

/// Threads per row: a power of two (the tree reduction halves it).
const BLOCK: usize = 256;
/// Rows summed by one thread of the `dγ`, `dβ` kernel before its partial sum is written.
const ROWS_PER_PARTIAL: usize = 64;

/// The sum of every thread's `value` over the workgroup, returned to all of them.
#[cube]
fn block_sum(shared: &mut SharedMemory<f32>, value: f32) -> f32 {
    let tid = UNIT_POS as usize;
    shared[tid] = value;
    sync_cube();
    // The workgroup size, read at run time: a loop variable must not be a compile-time value.
    let mut stride = CUBE_DIM as usize / 2;
    while stride > 0 {
        if tid < stride {
            shared[tid] = shared[tid] + shared[tid + stride];
        }
        sync_cube();
        stride /= 2;
    }
    let total = shared[0];
    // Every thread has read the total before the array is reused.
    sync_cube();
    total
}

/// `out = (x − μ)/σ·γ + β` per row of `d` values; `stats[2r], stats[2r+1] = μ, 1/σ`.
#[cube(launch)]
fn layer_norm_kernel(
    x: &Tensor<f32>,
    gamma: &Tensor<f32>,
    beta: &Tensor<f32>,
    out: &mut Tensor<f32>,
    stats: &mut Tensor<f32>,
    epsilon: f32,
    #[comptime] block: usize,
) {
    let d = gamma.len();
    let row = CUBE_POS;
    if row * d >= x.len() {
        terminate!();
    }
    let tid = UNIT_POS as usize;
    let base = row * d;
    let mut shared = SharedMemory::<f32>::new(block);

    let mut sum = f32::new(0.0);
    let mut i = tid;
    while i < d {
        sum += x[base + i];
        i += block;
    }
    let mean = block_sum(&mut shared, sum) / f32::cast_from(d);

    let mut squares = f32::new(0.0);
    let mut i = tid;
    while i < d {
        let c = x[base + i] - mean;
        squares += c * c;
        i += block;
    }
    let var = block_sum(&mut shared, squares) / f32::cast_from(d);
    let rstd = f32::new(1.0) / (var + epsilon).sqrt();

    let mut i = tid;
    while i < d {
        out[base + i] = (x[base + i] - mean) * rstd * gamma[i] + beta[i];
        i += block;
    }
    if tid == 0 {
        stats[2 * row] = mean;
        stats[2 * row + 1] = rstd;
    }
}

/// `dx = (ĝ − mean(ĝ) − x̂·mean(ĝ·x̂))/σ` per row, with `ĝ = g·γ`, `x̂ = (x − μ)/σ`.
#[cube(launch)]
fn layer_norm_dx_kernel(
    x: &Tensor<f32>,
    gamma: &Tensor<f32>,
    stats: &Tensor<f32>,
    grad: &Tensor<f32>,
    dx: &mut Tensor<f32>,
    #[comptime] block: usize,
) {
    let d = gamma.len();
    let row = CUBE_POS;
    if row * d >= x.len() {
        terminate!();
    }
    let tid = UNIT_POS as usize;
    let base = row * d;
    let mean = stats[2 * row];
    let rstd = stats[2 * row + 1];
    let mut shared = SharedMemory::<f32>::new(block);

    let mut sum_g = f32::new(0.0);
    let mut sum_gx = f32::new(0.0);
    let mut i = tid;
    while i < d {
        let g = grad[base + i] * gamma[i];
        sum_g += g;
        sum_gx += g * (x[base + i] - mean) * rstd;
        i += block;
    }
    let mean_g = block_sum(&mut shared, sum_g) / f32::cast_from(d);
    let mean_gx = block_sum(&mut shared, sum_gx) / f32::cast_from(d);

    let mut i = tid;
    while i < d {
        let xhat = (x[base + i] - mean) * rstd;
        dx[base + i] = (grad[base + i] * gamma[i] - mean_g - xhat * mean_gx) * rstd;
        i += block;
    }
}

/// Partial sums over `rows_per` rows of `g·x̂` (`dgamma[p, j]`) and `g` (`dbeta[p, j]`) for
/// column `j`: one thread per (block of rows, column), coalesced along the row.
#[cube(launch)]
fn layer_norm_dparams_kernel(
    x: &Tensor<f32>,
    stats: &Tensor<f32>,
    grad: &Tensor<f32>,
    dgamma: &mut Tensor<f32>,
    dbeta: &mut Tensor<f32>,
    d: usize,
    #[comptime] rows_per: usize,
) {
    let rows = x.len() / d;
    let parts = dgamma.len() / d;
    let id = ABSOLUTE_POS;
    if id >= parts * d {
        terminate!();
    }
    let p = id / d;
    let j = id % d;
    let mut sum_gx = f32::new(0.0);
    let mut sum_g = f32::new(0.0);
    let mut r = p * rows_per;
    let end = min(r + rows_per, rows);
    while r < end {
        let g = grad[r * d + j];
        sum_gx += g * (x[r * d + j] - stats[2 * r]) * stats[2 * r + 1];
        sum_g += g;
        r += 1;
    }
    dgamma[p * d + j] = sum_gx;
    dbeta[p * d + j] = sum_g;
}

/// Threads per row for this device: [`BLOCK`], or the largest power of two it allows.
fn block<R: KernelRuntime>(t: &CubeTensor<R>) -> usize {
    let max = t.client.properties().hardware.max_units_per_cube as usize;
    let mut block = BLOCK;
    while block > max.max(1) {
        block /= 2;
    }
    block
}

/// One cube per row, spread over the grid's dimensions when there are many rows.
fn rows_count<R: KernelRuntime>(t: &CubeTensor<R>, rows: usize) -> CubeCount {
    CubeCountSelection::new(&t.client, rows as u32).cube_count()
}

#[derive(Debug)]
struct LayerNorm {
    epsilon: f32,
}

impl<R: KernelRuntime> CubeKernel<R> for LayerNorm {
    fn run(&self, inputs: Vec<CubeTensor<R>>) -> Vec<CubeTensor<R>> {
        let [x, gamma, beta] = inputs.as_slice() else {
            return Vec::new();
        };
        let d = gamma.shape().num_elements();
        let rows = x.shape().num_elements() / d.max(1);
        let out = empty(x, x.shape());
        let stats = empty(x, Shape::new([rows, 2]));
        let block = block(x);
        layer_norm_kernel::launch::<R>(
            &x.client,
            rows_count(x, rows),
            CubeDim::new_1d(block as u32),
            x.clone().into_tensor_arg(),
            gamma.clone().into_tensor_arg(),
            beta.clone().into_tensor_arg(),
            out.clone().into_tensor_arg(),
            stats.clone().into_tensor_arg(),
            self.epsilon,
            block,
        );
        vec![out, stats]
    }
}

#[derive(Debug)]
struct LayerNormDx;

impl<R: KernelRuntime> CubeKernel<R> for LayerNormDx {
    fn run(&self, inputs: Vec<CubeTensor<R>>) -> Vec<CubeTensor<R>> {
        let [x, gamma, stats, grad] = inputs.as_slice() else {
            return Vec::new();
        };
        let rows = stats.shape().num_elements() / 2;
        let dx = empty(x, x.shape());
        let block = block(x);
        layer_norm_dx_kernel::launch::<R>(
            &x.client,
            rows_count(x, rows),
            CubeDim::new_1d(block as u32),
            x.clone().into_tensor_arg(),
            gamma.clone().into_tensor_arg(),
            stats.clone().into_tensor_arg(),
            grad.clone().into_tensor_arg(),
            dx.clone().into_tensor_arg(),
            block,
        );
        vec![dx]
    }
}

#[derive(Debug)]
struct LayerNormDParams {
    d: usize,
}

impl<R: KernelRuntime> CubeKernel<R> for LayerNormDParams {
    fn run(&self, inputs: Vec<CubeTensor<R>>) -> Vec<CubeTensor<R>> {
        let [x, stats, grad] = inputs.as_slice() else {
            return Vec::new();
        };
        let rows = stats.shape().num_elements() / 2;
        let parts = rows.div_ceil(ROWS_PER_PARTIAL);
        let dgamma = empty(x, Shape::new([parts, self.d]));
        let dbeta = empty(x, Shape::new([parts, self.d]));
        let cube_dim = CubeDim::new_1d(256);
        layer_norm_dparams_kernel::launch::<R>(
            &x.client,
            calculate_cube_count_elemwise(&x.client, parts * self.d, cube_dim),
            cube_dim,
            x.clone().into_tensor_arg(),
            stats.clone().into_tensor_arg(),
            grad.clone().into_tensor_arg(),
            dgamma.clone().into_tensor_arg(),
            dbeta.clone().into_tensor_arg(),
            self.d,
            ROWS_PER_PARTIAL,
        );
        vec![dgamma, dbeta]
    }
}

/// The normalised rows and their statistics `[rows, 2]` (mean, `1/σ`), for f32 `x` of
/// `[..., d]` and `γ`, `β` of `[d]`.
pub fn forward<R: KernelRuntime>(
    x: FusedTensor<R>,
    gamma: FusedTensor<R>,
    beta: FusedTensor<R>,
    epsilon: f64,
) -> (FusedTensor<R>, FusedTensor<R>) {
    let shape = x.shape();
    let d = gamma.shape().num_elements();
    let rows = shape.num_elements() / d.max(1);
    let kernel = LayerNorm {
        epsilon: epsilon as f32,
    };
    let [out, stats] = register(
        "kernel_layer_norm",
        [x, gamma, beta],
        [shape, Shape::new([rows, 2])],
        kernel,
    );
    (out, stats)
}

/// `dx` for the output gradient `grad`, from the forward pass's input, `γ` and statistics.
pub fn backward_x<R: KernelRuntime>(
    x: FusedTensor<R>,
    gamma: FusedTensor<R>,
    stats: FusedTensor<R>,
    grad: FusedTensor<R>,
) -> FusedTensor<R> {
    let shape = x.shape();
    let [dx] = register(
        "kernel_layer_norm_dx",
        [x, gamma, stats, grad],
        [shape],
        LayerNormDx,
    );
    dx
}

/// Partial sums `[parts, d]` of `dγ` and of `dβ` over blocks of rows (summed by the caller).
pub fn backward_params<R: KernelRuntime>(
    x: FusedTensor<R>,
    stats: FusedTensor<R>,
    grad: FusedTensor<R>,
    d: usize,
) -> [FusedTensor<R>; 2] {
    let rows = stats.shape().num_elements() / 2;
    let parts = Shape::new([rows.div_ceil(ROWS_PER_PARTIAL), d]);
    register(
        "kernel_layer_norm_dparams",
        [x, stats, grad],
        [parts.clone(), parts],
        LayerNormDParams { d },
    )
}
