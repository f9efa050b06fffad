//! Our CubeCL kernels (`bert::ops::cube`) against references, on random inputs of awkward
//! sizes (rows not a multiple of the workgroup, sequences not a multiple of the tile, padded
//! rows): outputs and every gradient.
//!
//! References: the exact GELU in f64 on the host; Burn's compositions (`layer_norm_composed`,
//! `attention_heads`) on the same backend, which the parity tests tie to transformers.

use bert::BertBackend;
use burn::backend::Autodiff;
use burn::tensor::backend::Backend;
use burn::tensor::{Distribution, Tensor};

use super::*;

type A = Autodiff<W>;

/// Random `N(0, std²)` values of `shape`, seeded.
fn random<B: Backend, const D: usize>(
    shape: [usize; D],
    std: f64,
    seed: u64,
    device: &B::Device,
) -> Tensor<B, D> {
    B::seed(device, seed);
    Tensor::random(shape, Distribution::Normal(0.0, std), device)
}

/// `(x·Φ(x), Φ(x) + x·φ(x))` in f64.
fn gelu_f64(x: f64) -> (f64, f64) {
    let cdf = 0.5 * (1.0 + erf_f64(x / std::f64::consts::SQRT_2));
    let pdf = (-0.5 * x * x).exp() / (2.0 * std::f64::consts::PI).sqrt();
    (x * cdf, cdf + x * pdf)
}

/// erf by its Maclaurin series (|x| ≤ 3) or continued fraction tail; ≈ 1e-15 in f64.
fn erf_f64(x: f64) -> f64 {
    if x.abs() > 3.0 {
        // erfc(x) ≈ exp(−x²)/(x√π) · (1 − 1/(2x²) + 3/(4x⁴) − 15/(8x⁶)); |x| > 3 → < 1e-7 off.
        let x2 = x * x;
        let tail = (-x2).exp() / (x.abs() * std::f64::consts::PI.sqrt())
            * (1.0 - 1.0 / (2.0 * x2) + 3.0 / (4.0 * x2 * x2) - 15.0 / (8.0 * x2 * x2 * x2));
        return x.signum() * (1.0 - tail);
    }
    let mut term = x;
    let mut sum = x;
    for n in 1..200 {
        term *= -x * x / n as f64;
        sum += term / (2 * n + 1) as f64;
    }
    sum * 2.0 / std::f64::consts::PI.sqrt()
}

#[test]
fn gelu_kernel_matches_the_exact_gelu_and_its_derivative() {
    let _lock = device_lock();
    let Some(device) = device() else { return };
    // 3·7·37 = 777 elements: three workgroups of 256, the last one partial.
    let x0 = random::<A, 3>([3, 7, 37], 2.0, 5, &device);
    let weight = random::<A, 3>([3, 7, 37], 1.0, 6, &device);
    let x = x0.clone().require_grad();
    let y = A::bert_gelu(x.clone());
    let grads = (y.clone() * weight.clone()).sum().backward();
    let dx = values(x.grad(&grads).unwrap());
    let (xs, ws, ys) = (values(x0), values(weight), values(y.inner()));
    let (want_y, want_dx): (Vec<f32>, Vec<f32>) = xs
        .iter()
        .zip(&ws)
        .map(|(&x, &w)| {
            let (y, d) = gelu_f64(x as f64);
            (y as f32, (d * w as f64) as f32)
        })
        .unzip();
    // cubecl's erf (Abramowitz & Stegun 7.1.26) is within 1.5e-7; f32 rounding adds as much.
    assert_close("GELU kernel forward vs f64", &ys, &want_y, 2e-6);
    assert_close("GELU kernel gradient vs f64", &dx, &want_dx, 2e-6);
    // Without autodiff (inference) the same kernel runs.
    let y_inf = W::bert_gelu(Tensor::<W, 3>::from_data(
        TensorData::new(xs.clone(), [3, 7, 37]),
        &device,
    ));
    assert_close(
        "GELU kernel forward, inference",
        &values(y_inf),
        &want_y,
        2e-6,
    );
}

/// Output and the gradients of `Σ y ⊙ w` for x, γ and β, through `norm`.
fn layer_norm_grads(
    norm: impl Fn(Tensor<A, 3>, Tensor<A, 1>, Option<Tensor<A, 1>>) -> Tensor<A, 3>,
    shape: [usize; 3],
    transposed: bool,
    device: &WgpuDevice,
) -> [Vec<f32>; 4] {
    let d = shape[2];
    let x0 = random::<A, 3>(shape, 3.0, 11, device).add_scalar(1.5);
    let gamma = random::<A, 1>([d], 1.0, 12, device).require_grad();
    let beta = random::<A, 1>([d], 1.0, 13, device).require_grad();
    let weight = random::<A, 3>(shape, 1.0, 14, device);
    let x = x0.require_grad();
    // A strided view (the kernels make it contiguous first).
    let input = if transposed {
        x.clone().swap_dims(0, 1).swap_dims(0, 1)
    } else {
        x.clone()
    };
    let y = norm(input, gamma.clone(), Some(beta.clone()));
    let grads = (y.clone() * weight).sum().backward();
    [
        values(y.inner()),
        values(x.grad(&grads).unwrap()),
        values(gamma.grad(&grads).unwrap()),
        values(beta.grad(&grads).unwrap()),
    ]
}

#[test]
fn layer_norm_kernel_matches_burns_composition() {
    let _lock = device_lock();
    let Some(device) = device() else { return };
    // d = 300: a row is more than one workgroup (256) and not a multiple of it; d = 37: less
    // than one. 2·70 = 140 rows: three blocks of 64 rows for dγ, dβ, the last one partial.
    for (shape, transposed) in [([2, 70, 300], false), ([3, 5, 37], true)] {
        let kernel = layer_norm_grads(
            |x, g, b| A::bert_layer_norm(x, g, b, 1e-12),
            shape,
            transposed,
            &device,
        );
        let composed = layer_norm_grads(
            |x, g, b| bert::ops::layer_norm_composed(x, g, b, 1e-12),
            shape,
            transposed,
            &device,
        );
        // f32 sums in another order; the values are O(1), dγ and dβ sum 140 of them.
        let d = shape[2];
        for (what, tol, k, c) in [
            ("output", 1e-5, &kernel[0], &composed[0]),
            ("dx", 1e-5, &kernel[1], &composed[1]),
            ("dgamma", 5e-5, &kernel[2], &composed[2]),
            ("dbeta", 5e-5, &kernel[3], &composed[3]),
        ] {
            assert_close(&format!("layer norm {what}, d = {d}"), k, c, tol);
        }
    }
    // Inference (no autodiff) runs the same kernel; without a shift too.
    let x = random::<W, 2>([9, 300], 2.0, 21, &device);
    let gamma = random::<W, 1>([300], 1.0, 22, &device);
    let got = W::bert_layer_norm(x.clone(), gamma.clone(), None, 1e-5);
    let want = bert::ops::layer_norm_composed(x, gamma, None, 1e-5);
    assert_close(
        "layer norm, inference, no shift",
        &values(got),
        &values(want),
        1e-5,
    );
}
