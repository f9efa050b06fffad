//! Layer normalisation on Flex in one pass per row, and its backward pass for
//! `Autodiff<Flex>` with frozen scale and shift (the encoder's: LoRA trains neither).
//!
//! Burn's `layer_norm` is a composition of ten tensor ops (two means, a subtraction, a
//! square, a square root, a division, the scale and the shift), each a pass over the whole
//! `[tokens, hidden]` tensor and, under autodiff, a node that keeps its inputs for a
//! backward pass of as many passes again. Here a row of 384 values stays in cache from its
//! mean to its output; the backward pass keeps the input and two numbers per row (mean and
//! 1/σ) and is one pass per row too.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind, unary};
use burn::backend::{Autodiff, Flex};
use burn::tensor::TensorMetadata;
use burn::tensor::ops::FloatTensor;
use burn_flex::FlexTensor;
use rayon::prelude::*;

use super::simd::{Kernel, simd, sum_of};
use super::tensor::{is_f32, unique, values, values_mut};

/// Rows per parallel task.
const ROWS: usize = 64;

/// `Σ (x_i − mean)²`, with independent partial sums so it vectorises.
#[inline(always)]
fn sq_dev_sum(x: &[f32], mean: f32) -> f32 {
    const LANES: usize = 16;
    let mut acc = [0.0f32; LANES];
    let chunks = x.chunks_exact(LANES);
    let tail = chunks.remainder();
    for c in chunks {
        for i in 0..LANES {
            let d = c[i] - mean;
            acc[i] += d * d;
        }
    }
    acc.iter().sum::<f32>() + tail.iter().map(|&v| (v - mean) * (v - mean)).sum::<f32>()
}

/// `(Σ a_i, Σ a_i·x̂_i)` with `a = dy ⊙ γ` and `x̂ = (x − mean)·rstd`.
#[inline(always)]
fn grad_sums(dy: &[f32], x: &[f32], gamma: &[f32], mean: f32, rstd: f32) -> (f32, f32) {
    const LANES: usize = 16;
    let (mut s1, mut s2) = ([0.0f32; LANES], [0.0f32; LANES]);
    let (cd, cx, cg) = (
        dy.chunks_exact(LANES),
        x.chunks_exact(LANES),
        gamma.chunks_exact(LANES),
    );
    let (td, tx, tg) = (cd.remainder(), cx.remainder(), cg.remainder());
    for ((d, x), g) in cd.zip(cx).zip(cg) {
        for i in 0..LANES {
            let a = d[i] * g[i];
            s1[i] += a;
            s2[i] += a * (x[i] - mean) * rstd;
        }
    }
    let (mut t1, mut t2) = (s1.iter().sum::<f32>(), s2.iter().sum::<f32>());
    for ((&d, &x), &g) in td.iter().zip(tx).zip(tg) {
        t1 += d * g;
        t2 += d * g * (x - mean) * rstd;
    }
    (t1, t2)
}

/// Rows normalised in place: `x ← (x − μ)·ρ·γ + β`, `ρ = 1/√(σ² + ε)`; `(μ, ρ)` per row into
/// `stats` when given.
struct NormRows<'a> {
    x: &'a mut [f32],
    stats: Option<&'a mut [f32]>,
    gamma: &'a [f32],
    beta: Option<&'a [f32]>,
    eps: f32,
}

impl Kernel for NormRows<'_> {
    #[inline(always)]
    fn run(mut self) {
        let d = self.gamma.len();
        let inv_d = 1.0 / d as f32;
        for (r, row) in self.x.chunks_exact_mut(d).enumerate() {
            let mean = sum_of(row) * inv_d;
            let rstd = 1.0 / (sq_dev_sum(row, mean) * inv_d + self.eps).sqrt();
            match self.beta {
                Some(beta) => {
                    for ((v, &g), &b) in row.iter_mut().zip(self.gamma).zip(beta) {
                        *v = (*v - mean) * rstd * g + b;
                    }
                }
                None => {
                    for (v, &g) in row.iter_mut().zip(self.gamma) {
                        *v = (*v - mean) * rstd * g;
                    }
                }
            }
            if let Some(stats) = self.stats.as_deref_mut() {
                stats[2 * r] = mean;
                stats[2 * r + 1] = rstd;
            }
        }
    }
}

/// Rows of the input gradient in place: `dy ← ρ·(a − mean(a) − x̂·mean(a ⊙ x̂))`, `a = dy ⊙ γ`.
struct NormGradRows<'a> {
    dy: &'a mut [f32],
    x: &'a [f32],
    stats: &'a [f32],
    gamma: &'a [f32],
}

impl Kernel for NormGradRows<'_> {
    #[inline(always)]
    fn run(self) {
        let d = self.gamma.len();
        let inv_d = 1.0 / d as f32;
        let rows = self.dy.chunks_exact_mut(d).zip(self.x.chunks_exact(d));
        for (r, (dy, x)) in rows.enumerate() {
            let (mean, rstd) = (self.stats[2 * r], self.stats[2 * r + 1]);
            let (s1, s2) = grad_sums(dy, x, self.gamma, mean, rstd);
            let (m1, m2) = (s1 * inv_d, s2 * inv_d);
            for ((g, &x), &gamma) in dy.iter_mut().zip(x).zip(self.gamma) {
                let x_hat = (x - mean) * rstd;
                *g = rstd * (*g * gamma - m1 - x_hat * m2);
            }
        }
    }
}

/// Layer norm over the last dimension of `x` (f32, `d = gamma.len()` wide): into `x`'s own
/// buffer when nobody else holds it, else a copy. With `keep`, also `(μ, ρ)` per row.
pub(super) fn layer_norm(
    x: FlexTensor,
    gamma: &[f32],
    beta: Option<&[f32]>,
    eps: f64,
    keep: bool,
) -> (FlexTensor, Option<Vec<f32>>) {
    let d = gamma.len().max(1);
    let mut y = unique(x);
    let values = values_mut(&mut y);
    let eps = eps as f32;
    let mut stats = keep.then(|| vec![0.0f32; 2 * (values.len() / d)]);
    match stats.as_mut() {
        Some(stats) => values
            .par_chunks_mut(ROWS * d)
            .zip(stats.par_chunks_mut(ROWS * 2))
            .for_each(|(x, s)| {
                simd(NormRows {
                    x,
                    stats: Some(s),
                    gamma,
                    beta,
                    eps,
                })
            }),
        None => values.par_chunks_mut(ROWS * d).for_each(|x| {
            simd(NormRows {
                x,
                stats: None,
                gamma,
                beta,
                eps,
            })
        }),
    }
    (y, stats)
}

/// What the backward pass keeps: the input, `(μ, ρ)` per row, and γ.
#[derive(Debug, Clone)]
pub(super) struct NormState {
    x: FlexTensor,
    stats: Vec<f32>,
    gamma: Vec<f32>,
}

#[derive(Debug)]
pub(super) struct NormBackward;

impl Backward<Flex, 1> for NormBackward {
    type State = NormState;

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let s = ops.state;
        unary::<Flex, _>(ops.parents, ops.node, grads, |grad| {
            let d = s.gamma.len().max(1);
            let mut dy = unique(grad);
            let x = values(&s.x);
            values_mut(&mut dy)
                .par_chunks_mut(ROWS * d)
                .zip(x.par_chunks(ROWS * d))
                .zip(s.stats.par_chunks(ROWS * 2))
                .for_each(|((dy, x), stats)| {
                    simd(NormGradRows {
                        dy,
                        x,
                        stats,
                        gamma: &s.gamma,
                    })
                });
            dy
        });
    }
}

/// [`layer_norm`] on `Autodiff<Flex>` for an untracked (frozen) γ and β: records
/// [`NormBackward`] when `x` is tracked.
pub(super) fn autodiff_layer_norm<C: CheckpointStrategy>(
    x: FloatTensor<Autodiff<Flex, C>>,
    gamma: Vec<f32>,
    beta: Option<&[f32]>,
    eps: f64,
) -> FloatTensor<Autodiff<Flex, C>> {
    match NormBackward
        .prepare::<C>([x.node])
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(prep) => {
            // The input is kept for the backward pass, so the output is a new buffer.
            let input = x.primitive.clone();
            let (y, stats) = layer_norm(x.primitive, &gamma, beta, eps, true);
            let state = NormState {
                x: input,
                stats: stats.unwrap_or_default(),
                gamma,
            };
            prep.finish(state, y)
        }
        OpsKind::UnTracked(prep) => {
            prep.finish(layer_norm(x.primitive, &gamma, beta, eps, false).0)
        }
    }
}

/// γ and β of a layer norm as f32 values, when the kernels can take them for `x`.
pub(super) fn norm_params(
    x: &FlexTensor,
    gamma: &FlexTensor,
    beta: Option<&FlexTensor>,
) -> Option<(Vec<f32>, Option<Vec<f32>>)> {
    let shape = x.shape();
    let d = gamma.shape().num_elements();
    let fits = is_f32(x)
        && is_f32(gamma)
        && beta.is_none_or(|b| is_f32(b) && b.shape().num_elements() == d)
        && shape.num_dims() >= 1
        && d > 0
        && shape[shape.num_dims() - 1] == d;
    fits.then(|| {
        (
            values(gamma).into_owned(),
            beta.map(|b| values(b).into_owned()),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::super::tensor::flex_tensor;
    use super::*;

    #[test]
    fn rows_are_normalised_and_the_gradient_matches_finite_differences() {
        let d = 37;
        let x: Vec<f32> = (0..3 * d)
            .map(|i| ((i * 7919) % 101) as f32 * 0.1 - 3.0)
            .collect();
        let gamma: Vec<f32> = (0..d).map(|i| 0.5 + i as f32 * 0.03).collect();
        let beta: Vec<f32> = (0..d).map(|i| i as f32 * -0.01).collect();
        let shape = burn::tensor::Shape::from(vec![3, d]);
        let norm = |x: &[f32]| {
            let (y, stats) = layer_norm(
                flex_tensor(x.to_vec(), shape.clone()),
                &gamma,
                Some(&beta),
                1e-12,
                true,
            );
            (values(&y).into_owned(), stats.unwrap_or_default())
        };
        let (y, stats) = norm(&x);
        for r in 0..3 {
            let row = &x[r * d..][..d];
            let mean = row.iter().sum::<f32>() / d as f32;
            let var = row.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / d as f32;
            for i in 0..d {
                let want = (row[i] - mean) / (var + 1e-12).sqrt() * gamma[i] + beta[i];
                assert!((y[r * d + i] - want).abs() < 1e-4, "row {r}, {i}");
            }
        }
        // d/dx of Σ y ⊙ w, against central differences of the same function.
        let w: Vec<f32> = (0..3 * d)
            .map(|i| ((i * 31) % 17) as f32 * 0.1 - 0.8)
            .collect();
        let mut dy = w.clone();
        simd(NormGradRows {
            dy: &mut dy,
            x: &x,
            stats: &stats,
            gamma: &gamma,
        });
        let loss = |x: &[f32]| -> f64 {
            let (y, _) = norm(x);
            y.iter().zip(&w).map(|(&a, &b)| f64::from(a * b)).sum()
        };
        for i in [0, 5, d, 2 * d + 36] {
            let h = 1e-2f32;
            let (mut up, mut down) = (x.clone(), x.clone());
            up[i] += h;
            down[i] -= h;
            let fd = (loss(&up) - loss(&down)) / (2.0 * f64::from(h));
            assert!(
                (fd - f64::from(dy[i])).abs() < 2e-3,
                "{i}: {fd} vs {}",
                dy[i]
            );
        }
    }
}
