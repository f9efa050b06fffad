//! The exact (erf) GELU and its derivative, element-wise, vectorised and in parallel.
//!
//! libm's scalar `erff` on one thread was the cost; here a vectorisable erf (Abramowitz &
//! Stegun 7.1.26, |error| ≤ 1.5e-7; within 3e-7 of a series erf in f32, tested).

use burn_flex::FlexTensor;
use rayon::prelude::*;

use super::simd::{Kernel, exp_f32, simd};
use super::tensor::{CHUNK, unique, values, values_mut};

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

/// GeGLU, `gelu(a) ⊙ g` for each row `a | g` of `x` (`rows × 2n`), into a new `rows × n`
/// buffer, rows in parallel.
pub(super) fn geglu(x: &[f32], n: usize) -> Vec<f32> {
    let mut out = vec![0.0f32; x.len() / 2];
    out.par_chunks_mut(n.max(1))
        .zip(x.par_chunks(2 * n.max(1)))
        .for_each(|(o, x)| {
            let (a, g) = x.split_at(n);
            for ((o, &a), &g) in o.iter_mut().zip(a).zip(g) {
                *o = gelu_f32(a) * g;
            }
        });
    out
}

/// The backward pass of [`geglu`]: from the output's gradient (`rows × n`), that of `x`
/// (`rows × 2n`): `gelu'(a)·g·grad | gelu(a)·grad`.
pub(super) fn geglu_backward(x: &[f32], grad: &[f32], n: usize) -> Vec<f32> {
    let mut out = vec![0.0f32; x.len()];
    out.par_chunks_mut(2 * n.max(1))
        .zip(x.par_chunks(2 * n.max(1)))
        .zip(grad.par_chunks(n.max(1)))
        .for_each(|((o, x), grad)| {
            let (a, g) = x.split_at(n);
            let (da, dg) = o.split_at_mut(n);
            for i in 0..n.min(grad.len()) {
                da[i] = gelu_grad_f32(a[i]) * g[i] * grad[i];
                dg[i] = gelu_f32(a[i]) * grad[i];
            }
        });
    out
}

/// GELU element-wise, in parallel, in place when `x` is not shared.
pub(super) fn gelu_tensor(x: FlexTensor) -> FlexTensor {
    let mut x = unique(x);
    values_mut(&mut x)
        .par_chunks_mut(CHUNK)
        .for_each(|x| simd(GeluKernel { x }));
    x
}

/// The gradient through GELU, `gelu'(x) ⊙ grad`, in parallel (into `grad`'s buffer).
pub(super) fn gelu_backward_tensor(x: &FlexTensor, grad: FlexTensor) -> FlexTensor {
    let mut grad = unique(grad);
    let xs = values(x);
    values_mut(&mut grad)
        .par_chunks_mut(CHUNK)
        .zip(xs.par_chunks(CHUNK))
        .for_each(|(g, x)| simd(GeluGradKernel { g, x }));
    grad
}

#[cfg(test)]
mod tests {
    use super::*;

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
