//! Rotary position embedding (ModernBERT's) on Flex: one parallel pass over the rows of q or
//! k in their `[batch, seq, heads·head_dim]` layout, instead of the composition's split,
//! negation, concatenation, two products and a sum (six single-threaded passes, each kept
//! for autodiff). The backward pass is the inverse rotation of the gradient, from the same
//! tables: nothing is kept but them.

use burn::backend::Flex;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, unary};
use burn::tensor::TensorMetadata;
use burn_flex::FlexTensor;
use rayon::prelude::*;

use super::tensor::{flex_tensor, is_f32, values};

/// The rotary tables and the sizes of one call.
#[derive(Debug, Clone)]
pub(super) struct Rope {
    /// `cos`, rows `0..seq` of the table, `[seq, head_dim]`.
    cos: Vec<f32>,
    /// `sin`, likewise.
    sin: Vec<f32>,
    seq: usize,
    heads: usize,
    head_dim: usize,
}

impl Rope {
    /// The tables for `x` (`[batch, seq, heads·head_dim]`), when the kernel can take them:
    /// f32, an even head size, tables of `head_dim` columns and at least `seq` rows.
    pub(super) fn of(
        x: &FlexTensor,
        cos: &FlexTensor,
        sin: &FlexTensor,
        heads: usize,
    ) -> Option<Self> {
        let (xs, cs, ss) = (x.shape(), cos.shape(), sin.shape());
        let fits = [x, cos, sin].iter().all(|t| is_f32(t))
            && xs.num_dims() == 3
            && cs.num_dims() == 2
            && cs == ss
            && heads > 0
            && xs[2] % heads == 0;
        if !fits {
            return None;
        }
        let (seq, head_dim) = (xs[1], xs[2] / heads);
        if !head_dim.is_multiple_of(2) || cs[1] != head_dim || cs[0] < seq {
            return None;
        }
        let n = seq * head_dim;
        Some(Self {
            cos: values(cos)[..n].to_vec(),
            sin: values(sin)[..n].to_vec(),
            seq,
            heads,
            head_dim,
        })
    }

    /// `x` rotated (`inverse`: by the opposite angle, the backward pass), in a new buffer.
    pub(super) fn apply(&self, x: &FlexTensor, inverse: bool) -> FlexTensor {
        let xs = values(x);
        let width = self.heads * self.head_dim;
        let mut out = vec![0.0f32; xs.len()];
        out.par_chunks_mut(width.max(1))
            .zip(xs.par_chunks(width.max(1)))
            .enumerate()
            .for_each(|(row, (o, x))| self.row(row % self.seq, x, o, inverse));
        flex_tensor(out, x.shape())
    }

    /// One row at position `pos`: per head, `y_j = x_j·cos_j + r_j·sin_j` with
    /// `r = (−x₂ | x₁)`; the inverse, `x_j = y_j·cos_j + s_j` with
    /// `s = (y₂·sin₂ | −y₁·sin₁)` (the transpose of the rotation).
    #[inline(always)]
    fn row(&self, pos: usize, x: &[f32], out: &mut [f32], inverse: bool) {
        let d = self.head_dim;
        let half = d / 2;
        let cos = &self.cos[pos * d..][..d];
        let sin = &self.sin[pos * d..][..d];
        for (x, o) in x.chunks_exact(d).zip(out.chunks_exact_mut(d)) {
            let (x1, x2) = x.split_at(half);
            let (o1, o2) = o.split_at_mut(half);
            let (c1, c2) = cos.split_at(half);
            let (s1, s2) = sin.split_at(half);
            if inverse {
                for j in 0..half {
                    o1[j] = x1[j] * c1[j] + x2[j] * s2[j];
                    o2[j] = x2[j] * c2[j] - x1[j] * s1[j];
                }
            } else {
                for j in 0..half {
                    o1[j] = x1[j] * c1[j] - x2[j] * s1[j];
                    o2[j] = x2[j] * c2[j] + x1[j] * s2[j];
                }
            }
        }
    }
}

/// The backward pass: the gradient rotated back.
#[derive(Debug)]
pub(super) struct RotaryBackward;

impl Backward<Flex, 1> for RotaryBackward {
    type State = Rope;

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let rope = ops.state;
        unary::<Flex, _>(ops.parents, ops.node, grads, |grad| rope.apply(&grad, true));
    }
}
