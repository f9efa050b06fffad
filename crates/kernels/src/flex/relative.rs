//! DeBERTa's relative-position terms on Flex:
//! `out[b, h, i, j] = scale·(c2p[b, h, i, δ(i, j)] + p2c[b, h, j, δ(i, j)])` in one parallel
//! pass per batch element and head, reading the `[seq, seq]` index once from the host. The
//! composition gathers twice through an index expanded to `[batch, heads, seq, seq]` (as
//! many int64 values as scores) and transposes one result; its backward pass scatters
//! through the same. Here the backward pass scatters each score's gradient into the row of
//! the product it came from, per batch element and head in parallel.

use burn::backend::Flex;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops};
use burn::tensor::Shape;
use rayon::prelude::*;

use super::tensor::{flex_tensor, values};

/// The sizes of one call and its index.
#[derive(Debug, Clone)]
pub(super) struct Terms {
    pub batch: usize,
    pub heads: usize,
    pub queries: usize,
    pub keys: usize,
    /// Rows of the relative table, `2·span`: the last dimension of c2p and p2c.
    pub rows: usize,
    pub scale: f32,
    /// `δ(i, j)` for `i < queries`, `j < keys`, checked to lie in `0..rows`.
    pub index: Vec<u32>,
}

impl Terms {
    /// The call's sizes, when the index (row-major `[seq, seq]`, `seq ≥ queries`, `seq ==
    /// keys`) fits the products; `None` sends the caller to the composition.
    pub(super) fn new(
        [batch, heads, queries, rows]: [usize; 4],
        keys: usize,
        index: &[i64],
        seq: usize,
        scale: f64,
    ) -> Option<Self> {
        if keys != seq || queries > seq || index.len() != seq * seq {
            return None;
        }
        let index: Vec<u32> = index[..queries * keys]
            .iter()
            .map(|&r| u32::try_from(r).ok().filter(|&r| (r as usize) < rows))
            .collect::<Option<_>>()?;
        Some(Self {
            batch,
            heads,
            queries,
            keys,
            rows,
            scale: scale as f32,
            index,
        })
    }

    fn block(&self) -> usize {
        self.queries * self.keys
    }

    /// The terms, `[batch, heads, queries, keys]`.
    pub(super) fn forward(&self, c2p: &[f32], p2c: &[f32]) -> Vec<f32> {
        let (q, k, r) = (self.queries, self.keys, self.rows);
        let mut out = vec![0.0f32; self.batch * self.heads * self.block()];
        out.par_chunks_mut(self.block().max(1))
            .enumerate()
            .for_each(|(bh, out)| {
                let c2p = &c2p[bh * q * r..][..q * r];
                let p2c = &p2c[bh * k * r..][..k * r];
                for i in 0..q {
                    let idx = &self.index[i * k..][..k];
                    let row = &c2p[i * r..][..r];
                    for (j, (o, &d)) in out[i * k..][..k].iter_mut().zip(idx).enumerate() {
                        let d = d as usize;
                        *o = self.scale * (row[d] + p2c[j * r + d]);
                    }
                }
            });
        out
    }

    /// The gradients of c2p (`[batch, heads, queries, rows]`) and p2c (`[batch, heads, keys,
    /// rows]`) from that of the terms.
    pub(super) fn backward(&self, grad: &[f32]) -> (Vec<f32>, Vec<f32>) {
        let (q, k, r) = (self.queries, self.keys, self.rows);
        let n = self.batch * self.heads;
        let mut dc = vec![0.0f32; n * q * r];
        let mut dp = vec![0.0f32; n * k * r];
        dc.par_chunks_mut((q * r).max(1))
            .zip(dp.par_chunks_mut((k * r).max(1)))
            .enumerate()
            .for_each(|(bh, (dc, dp))| {
                let g = &grad[bh * self.block()..][..self.block()];
                for i in 0..q {
                    let idx = &self.index[i * k..][..k];
                    let g = &g[i * k..][..k];
                    let dc = &mut dc[i * r..][..r];
                    for (j, (&g, &d)) in g.iter().zip(idx).enumerate() {
                        let (g, d) = (g * self.scale, d as usize);
                        dc[d] += g;
                        dp[j * r + d] += g;
                    }
                }
            });
        (dc, dp)
    }
}

/// The backward pass; parents c2p and p2c.
#[derive(Debug)]
pub(super) struct RelativeTermsBackward;

impl Backward<Flex, 2> for RelativeTermsBackward {
    type State = Terms;

    fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node_c, node_p] = ops.parents;
        let grad = grads.consume::<Flex>(&ops.node);
        let t = ops.state;
        let (dc, dp) = t.backward(&values(&grad));
        let (n, h) = (t.batch, t.heads);
        if let Some(node) = node_c {
            let shape = Shape::new([n, h, t.queries, t.rows]);
            grads.register::<Flex>(node.id, flex_tensor(dc, shape));
        }
        if let Some(node) = node_p {
            let shape = Shape::new([n, h, t.keys, t.rows]);
            grads.register::<Flex>(node.id, flex_tensor(dp, shape));
        }
    }
}
