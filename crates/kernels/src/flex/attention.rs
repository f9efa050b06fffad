//! Multi-head attention on Flex with the heads left interleaved in the hidden dimension, as
//! the projections produce them: `[batch, seq, heads·head_dim]` in and out.
//!
//! Splitting heads the portable way (`reshape` + `swap_dims`) and merging them back costs a
//! strided copy of q, k, v and the context in the forward pass and of their gradients in the
//! backward pass (≈ 6 % of a training step in the profile), plus Flex's matmul output path
//! for every `q·kᵀ` and `P·v`. Here each head is a strided view (row stride `hidden`) that
//! gemm reads and writes in place, one batch element per parallel task, one head at a time:
//! a head's `[queries, keys]` score block (256 KiB at 256 tokens) stays in cache from the
//! product through softmax and dropout to `P·v`.

use std::ops::Range;

use rayon::prelude::*;

use super::gemm::{Mat, gemm_to};
use super::mask::{MaskKernel, MaskSpec};
use super::simd::{Kernel, dot, exp_f32, max_of, simd, sum_of};

/// Query rows per block of a windowed attention's banded products.
const BAND_ROWS: usize = 64;

/// Score blocks up to this size (`queries × keys`, 256 × 256) are kept for the backward
/// pass; larger ones are recomputed there (one more `q·kᵀ` per head) instead of holding
/// `[batch, heads, queries, keys]` probabilities per layer: at 1,024 tokens those are 48 MiB
/// per sequence and layer, more than the rest of the layer's activations.
pub(super) const KEEP_PROBS_UP_TO: usize = 256 * 256;

/// The sizes of one attention call.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Dims {
    pub batch: usize,
    /// Query positions (`seq`, or 1 for the `[CLS]`-only last layer).
    pub queries: usize,
    /// Key (and value) positions.
    pub keys: usize,
    pub heads: usize,
    pub head_dim: usize,
    /// The factor on `q·kᵀ` (`1/√head_dim`, or DeBERTa's `1/√(3·head_dim)`).
    pub scale: f32,
    /// Attend only to keys within `|i − j| ≤ w` of query `i` (ModernBERT's local layers).
    pub window: Option<usize>,
}

impl Dims {
    fn hidden(&self) -> usize {
        self.heads * self.head_dim
    }

    /// Floats of one head's score block.
    fn block(&self) -> usize {
        self.queries * self.keys
    }

    /// Floats of one batch element's probabilities, all heads.
    pub fn probs_per_batch(&self) -> usize {
        self.heads * self.block()
    }

    pub fn scale(&self) -> f32 {
        self.scale
    }

    /// Head `h` of batch element `b` of a `[batch, rows, hidden]` tensor, as a matrix view.
    fn head<'a>(&self, data: &'a [f32], rows: usize, b: usize, h: usize) -> Mat<'a> {
        let hidden = self.hidden();
        Mat::new(
            data,
            b * rows * hidden + h * self.head_dim,
            [rows, self.head_dim],
            [hidden, 1],
        )
    }

    /// The query row blocks and the keys each block's rows can reach: one block of every row
    /// and key without a window; with a window of `w`, blocks of [`BAND_ROWS`] rows and the
    /// keys within `w` of any of them, so the products skip the scores the window zeroes.
    fn blocks(&self) -> Vec<(Range<usize>, Range<usize>)> {
        match self.window {
            Some(w) if 2 * w + BAND_ROWS < self.keys => (0..self.queries)
                .step_by(BAND_ROWS)
                .map(|r0| {
                    let r1 = (r0 + BAND_ROWS).min(self.queries);
                    let keys = r0.saturating_sub(w)..(r1 - 1 + w + 1).min(self.keys);
                    (r0..r1, keys)
                })
                .collect(),
            _ => vec![(0..self.queries, 0..self.keys)],
        }
    }

    /// Index of head `h`'s first score of batch element `b` in the whole
    /// `[batch, heads, queries, keys]` tensor: where its dropout mask starts.
    fn mask_base(&self, b: usize, h: usize) -> u32 {
        ((b * self.heads + h) * self.block()) as u32
    }
}

/// The forward pass: `softmax(q·kᵀ·scale + bias + key_mask)` (outside the window: the
/// mask's large negative value), dropped out with `dropout`, times `v`. Returns the output
/// `[batch, queries, hidden]` and, with `keep_probs`, the probabilities before dropout
/// `[batch, heads, queries, keys]` for the backward pass.
///
/// `key_mask` holds `batch × keys` additive mask values (0 or a large negative number);
/// `bias`, when given, the extra score terms `[batch, heads, queries, keys]`.
pub(super) fn forward(
    [q, k, v]: [&[f32]; 3],
    key_mask: &[f32],
    bias: Option<&[f32]>,
    d: Dims,
    dropout: Option<&MaskSpec>,
    keep_probs: bool,
) -> (Vec<f32>, Option<Vec<f32>>) {
    let hidden = d.hidden();
    let blocks = d.blocks();
    let mut out = vec![0.0f32; d.batch * d.queries * hidden];
    let mut probs = keep_probs.then(|| vec![0.0f32; d.batch * d.probs_per_batch()]);
    let task = |b: usize, out_b: &mut [f32], mut probs_b: Option<&mut [f32]>| {
        let mut scratch = vec![0.0f32; if probs_b.is_some() { 0 } else { d.block() }];
        let mut dropped = vec![0.0f32; if dropout.is_some() { d.block() } else { 0 }];
        for h in 0..d.heads {
            let scores: &mut [f32] = match probs_b.as_deref_mut() {
                Some(p) => &mut p[h * d.block()..][..d.block()],
                None => &mut scratch,
            };
            probabilities(scores, [q, k], key_mask, bias, &d, &blocks, b, h);
            let weights: &[f32] = match dropout {
                Some(spec) => {
                    dropped.copy_from_slice(scores);
                    simd(MaskKernel {
                        x: &mut dropped,
                        spec,
                        base: d.mask_base(b, h),
                    });
                    &dropped
                }
                None => scores,
            };
            for (rows, keys) in &blocks {
                gemm_to(
                    out_b,
                    [rows.start * hidden + h * d.head_dim, hidden],
                    Mat::dense(weights, d.queries, d.keys).sub(rows.clone(), keys.clone()),
                    d.head(v, d.keys, b, h).sub(keys.clone(), 0..d.head_dim),
                    false,
                    false,
                );
            }
        }
    };
    let per_out = d.queries * hidden;
    match probs.as_mut() {
        Some(p) => out
            .par_chunks_mut(per_out.max(1))
            .zip(p.par_chunks_mut(d.probs_per_batch().max(1)))
            .enumerate()
            .for_each(|(b, (o, p))| task(b, o, Some(p))),
        None => out
            .par_chunks_mut(per_out.max(1))
            .enumerate()
            .for_each(|(b, o)| task(b, o, None)),
    }
    (out, probs)
}

/// Head `h` of batch element `b`: its probabilities before dropout into `scores`
/// (`[queries, keys]`, every element written): the products over `blocks`, then scale, terms,
/// mask, window and softmax per row. The forward pass and a backward pass that recomputes
/// run this same code, so both see the same probabilities.
#[allow(clippy::too_many_arguments)]
fn probabilities(
    scores: &mut [f32],
    [q, k]: [&[f32]; 2],
    key_mask: &[f32],
    bias: Option<&[f32]>,
    d: &Dims,
    blocks: &[(Range<usize>, Range<usize>)],
    b: usize,
    h: usize,
) {
    for (rows, keys) in blocks {
        gemm_to(
            scores,
            [rows.start * d.keys + keys.start, d.keys],
            d.head(q, d.queries, b, h).sub(rows.clone(), 0..d.head_dim),
            d.head(k, d.keys, b, h).sub(keys.clone(), 0..d.head_dim).t(),
            false,
            false,
        );
    }
    simd(SoftmaxRows {
        rows: scores,
        seq: d.keys,
        key_mask: &key_mask[b * d.keys..][..d.keys],
        bias: bias.map(|t| &t[(b * d.heads + h) * d.block()..][..d.block()]),
        window: d.window,
        scale: d.scale(),
    });
}

/// The backward pass of [`forward`]: the gradients of q, k and v for those `need`ed, from
/// `grad`, the gradient of the output `[batch, queries, hidden]`; and, with `bias_grad`, that
/// of the score terms (`∂L/∂scores`, `[batch, heads, queries, keys]`). `probs` are the
/// forward pass's, or `None` to recompute them from q, k, the mask and the terms.
#[allow(clippy::too_many_arguments)]
pub(super) fn backward(
    grad: &[f32],
    [q, k, v]: [&[f32]; 3],
    probs: Option<&[f32]>,
    (key_mask, bias): (&[f32], Option<&[f32]>),
    d: Dims,
    dropout: Option<&MaskSpec>,
    need: [bool; 3],
    bias_grad: Option<&mut [f32]>,
) -> [Option<Vec<f32>>; 3] {
    let hidden = d.hidden();
    let blocks = d.blocks();
    let sizes = [d.queries, d.keys, d.keys].map(|rows| rows * hidden);
    let mut grads: [Option<Vec<f32>>; 3] =
        std::array::from_fn(|i| need[i].then(|| vec![0.0f32; d.batch * sizes[i]]));
    let [gq, gk, gv] = &mut grads;
    let (dq, dk, dv) = (
        per_batch(gq, sizes[0], d.batch),
        per_batch(gk, sizes[1], d.batch),
        per_batch(gv, sizes[2], d.batch),
    );
    let mut db: Vec<Option<&mut [f32]>> = match bias_grad {
        Some(g) => g.chunks_mut(d.probs_per_batch().max(1)).map(Some).collect(),
        None => (0..d.batch).map(|_| None).collect(),
    };
    db.truncate(d.batch);
    dq.into_par_iter()
        .zip(dk)
        .zip(dv)
        .zip(db)
        .enumerate()
        .for_each(|(b, (((mut dq, mut dk), mut dv), mut db))| {
            let mut dropped = vec![0.0f32; if dropout.is_some() { d.block() } else { 0 }];
            let mut d_scores = vec![0.0f32; d.block()];
            let mut recomputed = vec![0.0f32; if probs.is_none() { d.block() } else { 0 }];
            for h in 0..d.heads {
                let p: &[f32] = match probs {
                    Some(probs) => &probs[(b * d.heads + h) * d.block()..][..d.block()],
                    None => {
                        probabilities(&mut recomputed, [q, k], key_mask, bias, &d, &blocks, b, h);
                        &recomputed
                    }
                };
                let pd: &[f32] = match dropout {
                    Some(spec) => {
                        dropped.copy_from_slice(p);
                        simd(MaskKernel {
                            x: &mut dropped,
                            spec,
                            base: d.mask_base(b, h),
                        });
                        &dropped
                    }
                    None => p,
                };
                let g_out = d.head(grad, d.queries, b, h);
                let col = h * d.head_dim;
                let full = 0..d.head_dim;
                if let Some(dv) = dv.as_deref_mut() {
                    let pd = Mat::dense(pd, d.queries, d.keys);
                    for (rows, keys) in &blocks {
                        // Blocks share keys: their parts add up.
                        gemm_to(
                            dv,
                            [keys.start * hidden + col, hidden],
                            pd.sub(rows.clone(), keys.clone()).t(),
                            g_out.sub(rows.clone(), full.clone()),
                            true,
                            false,
                        );
                    }
                }
                if dq.is_none() && dk.is_none() && db.is_none() {
                    continue;
                }
                let v_h = d.head(v, d.keys, b, h);
                if blocks.len() > 1 {
                    // Scores outside the blocks are zero; so must their gradients be.
                    d_scores.fill(0.0);
                }
                for (rows, keys) in &blocks {
                    gemm_to(
                        &mut d_scores,
                        [rows.start * d.keys + keys.start, d.keys],
                        g_out.sub(rows.clone(), full.clone()),
                        v_h.sub(keys.clone(), full.clone()).t(),
                        false,
                        false,
                    );
                }
                simd(SoftmaxBackwardRows {
                    grad: &mut d_scores,
                    p,
                    pd,
                    seq: d.keys,
                    scale: d.scale(),
                });
                if let Some(db) = db.as_deref_mut() {
                    // The terms were added after the scaling: their gradient is ∂L/∂scores,
                    // which the rows above hold times `scale`.
                    let inv = 1.0 / d.scale();
                    let block = &mut db[h * d.block()..][..d.block()];
                    for (g, &z) in block.iter_mut().zip(&d_scores) {
                        *g = z * inv;
                    }
                }
                let dz = Mat::dense(&d_scores, d.queries, d.keys);
                for (rows, keys) in &blocks {
                    if let Some(dq) = dq.as_deref_mut() {
                        gemm_to(
                            dq,
                            [rows.start * hidden + col, hidden],
                            dz.sub(rows.clone(), keys.clone()),
                            d.head(k, d.keys, b, h).sub(keys.clone(), full.clone()),
                            false,
                            false,
                        );
                    }
                    if let Some(dk) = dk.as_deref_mut() {
                        gemm_to(
                            dk,
                            [keys.start * hidden + col, hidden],
                            dz.sub(rows.clone(), keys.clone()).t(),
                            d.head(q, d.queries, b, h).sub(rows.clone(), full.clone()),
                            true,
                            false,
                        );
                    }
                }
            }
        });
    grads
}

/// A gradient buffer cut into its batch elements (`None` for each when not needed).
fn per_batch(g: &mut Option<Vec<f32>>, size: usize, batch: usize) -> Vec<Option<&mut [f32]>> {
    match g {
        Some(g) => g.chunks_mut(size.max(1)).map(Some).collect(),
        None => (0..batch).map(|_| None).collect(),
    }
}

/// Rows of attention scores (length `seq`, the number of keys), in place:
/// `softmax(z·scale + bias + key_mask)` per row, keys outside the window set to the mask's
/// large negative value.
struct SoftmaxRows<'a> {
    pub rows: &'a mut [f32],
    pub seq: usize,
    pub key_mask: &'a [f32],
    /// The head's extra score terms, `[queries, seq]`.
    pub bias: Option<&'a [f32]>,
    pub window: Option<usize>,
    pub scale: f32,
}

impl Kernel for SoftmaxRows<'_> {
    #[inline(always)]
    fn run(self) {
        for (i, p) in self.rows.chunks_mut(self.seq).enumerate() {
            if self.bias.is_none() && self.window.is_none() {
                softmax_row(p, self.key_mask, self.scale);
                continue;
            }
            // Only the keys inside the window take part: the same as masking the others
            // before the softmax, without their exponentials (query `i` is always inside).
            let (lo, hi) = match self.window {
                Some(w) => (i.saturating_sub(w), (i + w + 1).min(self.seq)),
                None => (0, self.seq),
            };
            let inside = &mut p[lo..hi];
            let mask = &self.key_mask[lo..hi];
            match self.bias {
                Some(bias) => {
                    let terms = &bias[i * self.seq + lo..][..hi - lo];
                    for ((z, &m), &t) in inside.iter_mut().zip(mask).zip(terms) {
                        *z = *z * self.scale + t + m;
                    }
                }
                None => {
                    for (z, &m) in inside.iter_mut().zip(mask) {
                        *z = *z * self.scale + m;
                    }
                }
            }
            softmax_scaled_row(inside);
            p[..lo].iter_mut().for_each(|z| *z = 0.0);
            p[hi..].iter_mut().for_each(|z| *z = 0.0);
        }
    }
}

/// One row of scores already scaled and masked, in place: its softmax.
#[inline(always)]
fn softmax_scaled_row(p: &mut [f32]) {
    let max = max_of(p);
    for z in p.iter_mut() {
        *z = exp_f32(*z - max);
    }
    let inv = 1.0 / sum_of(p);
    p.iter_mut().for_each(|z| *z *= inv);
}

/// Rows of the softmax-with-dropout backward pass, in place: `grad` (∂L/∂(P⊙mask)) becomes
/// ∂L/∂scores. With `Pd = P⊙mask`, per row `dZ = Pd⊙dPd − P·Σ(Pd⊙dPd)`, times `scale` for
/// the `q·kᵀ·scale` that produced Z.
struct SoftmaxBackwardRows<'a> {
    pub grad: &'a mut [f32],
    pub p: &'a [f32],
    pub pd: &'a [f32],
    pub seq: usize,
    pub scale: f32,
}

impl Kernel for SoftmaxBackwardRows<'_> {
    #[inline(always)]
    fn run(self) {
        let rows = self.grad.chunks_mut(self.seq);
        for ((g, p), pd) in rows
            .zip(self.p.chunks(self.seq))
            .zip(self.pd.chunks(self.seq))
        {
            softmax_backward_row(g, p, pd, self.scale);
        }
    }
}

/// One row of attention scores in place: `softmax(z·scale + key_mask)`.
#[inline(always)]
fn softmax_row(p: &mut [f32], key_mask: &[f32], scale: f32) {
    for (z, &m) in p.iter_mut().zip(key_mask) {
        *z = *z * scale + m;
    }
    let max = max_of(p);
    for z in p.iter_mut() {
        *z = exp_f32(*z - max);
    }
    let inv = 1.0 / sum_of(p);
    p.iter_mut().for_each(|z| *z *= inv);
}

/// One row of the softmax-with-dropout backward pass in place (see
/// [`SoftmaxBackwardRows`]).
#[inline(always)]
fn softmax_backward_row(g: &mut [f32], p: &[f32], pd: &[f32], scale: f32) {
    let t = dot(g, pd);
    for ((g, &p), &pd) in g.iter_mut().zip(p).zip(pd) {
        *g = (pd * *g - p * t) * scale;
    }
}
