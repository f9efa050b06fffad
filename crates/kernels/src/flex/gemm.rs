//! Linear layers on Flex as one `gemm` call each, writing every product straight into its
//! output buffer, and their backward pass for `Autodiff<Flex>`.
//!
//! Burn's default linear is a batched `matmul` then a broadcast `add`. On Flex each matmul
//! output is allocated zero-filled as bytes and then copied into an aligned buffer
//! (`FlexTensor::empty`), so a product costs three passes over its output before the bias
//! add's fourth: 12 % of a training step's profile (docs/BENCHMARKS.md). Here the bias rows
//! are written once and the product accumulated onto them. A batched input `[.., n, d_in]`
//! is one `[N, d_in]` product, so gemm packs the weight once rather than once per batch
//! element, and the weight gradient is one product instead of a per-element product and a
//! sum.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::{Autodiff, Flex};
use burn::tensor::ops::FloatTensor;
use burn::tensor::{Shape, TensorMetadata};
use burn_flex::FlexTensor;
use gemm::Parallelism;

use super::tensor::{flex_tensor, values};

/// Products with at least this many multiply-adds use all threads (burn-flex's threshold).
const PARALLEL_WORK: usize = 192 * 192 * 192;

/// A strided matrix view: element `(i, j)` is `data[offset + i·rs + j·cs]`.
#[derive(Debug, Clone, Copy)]
pub(super) struct Mat<'a> {
    data: &'a [f32],
    offset: usize,
    rows: usize,
    cols: usize,
    rs: usize,
    cs: usize,
}

impl<'a> Mat<'a> {
    /// A view with the given offset, shape and strides.
    pub(super) fn new(
        data: &'a [f32],
        offset: usize,
        [rows, cols]: [usize; 2],
        [rs, cs]: [usize; 2],
    ) -> Self {
        Self {
            data,
            offset,
            rows,
            cols,
            rs,
            cs,
        }
    }

    /// `data` as a dense row-major `[rows, cols]` matrix.
    pub(super) fn dense(data: &'a [f32], rows: usize, cols: usize) -> Self {
        Self {
            data,
            offset: 0,
            rows,
            cols,
            rs: cols,
            cs: 1,
        }
    }

    /// A 2-D tensor in place (any non-negative strides, e.g. a transposed view).
    fn of(t: &'a FlexTensor) -> Option<Self> {
        let layout = t.layout();
        let (shape, strides) = (layout.shape(), layout.strides());
        if shape.num_dims() != 2 || strides.iter().any(|&s| s < 0) {
            return None;
        }
        Some(Self {
            data: t.storage::<f32>(),
            offset: layout.start_offset(),
            rows: shape[0],
            cols: shape[1],
            rs: strides[0].unsigned_abs(),
            cs: strides[1].unsigned_abs(),
        })
    }

    /// Rows `rows` and columns `cols` of the view (a view; out-of-range parts are caught by
    /// [`gemm_to`]'s bounds check like any view).
    pub(super) fn sub(self, rows: std::ops::Range<usize>, cols: std::ops::Range<usize>) -> Self {
        Self {
            offset: self.offset + rows.start * self.rs + cols.start * self.cs,
            rows: rows.len(),
            cols: cols.len(),
            ..self
        }
    }

    /// The transpose (a view: strides swapped).
    pub(super) fn t(self) -> Self {
        Self {
            rows: self.cols,
            cols: self.rows,
            rs: self.cs,
            cs: self.rs,
            ..self
        }
    }

    /// Whether every element lies inside `data`.
    fn in_bounds(&self) -> bool {
        if self.rows == 0 || self.cols == 0 {
            return self.offset <= self.data.len();
        }
        let last = (self.rows - 1)
            .checked_mul(self.rs)
            .and_then(|r| (self.cols - 1).checked_mul(self.cs)?.checked_add(r))
            .and_then(|i| i.checked_add(self.offset));
        last.is_some_and(|i| i < self.data.len())
    }
}

/// `out = a·b`, or `out += a·b` with `accumulate`; `out` is row-major `[a.rows, b.cols]`.
/// Large products use all threads.
fn gemm_into(out: &mut [f32], a: Mat<'_>, b: Mat<'_>, accumulate: bool) {
    let parallel = a.rows * a.cols * b.cols >= PARALLEL_WORK;
    gemm_to(out, [0, b.cols], a, b, accumulate, parallel);
}

/// `a·b` written (or, with `accumulate`, added) into `out` at element `offset + i·rs + j`
/// for row `i` and column `j`: e.g. one head's column block of a `[seq, hidden]` matrix.
/// `parallel` lets gemm use all threads (not from inside a parallel task).
// The crate's one `unsafe` block outside `weights.rs`: the call into gemm, whose arguments are
// raw pointers and strides; the bounds it relies on are checked first (see SAFETY below).
#[allow(unsafe_code)]
pub(super) fn gemm_to(
    out: &mut [f32],
    [offset, rs]: [usize; 2],
    a: Mat<'_>,
    b: Mat<'_>,
    accumulate: bool,
    parallel: bool,
) {
    let (rows, cols) = (a.rows, b.cols);
    let fits = rows == 0
        || cols == 0
        || ((rows == 1 || rs >= cols)
            && (rows - 1)
                .checked_mul(rs)
                .and_then(|r| r.checked_add(offset)?.checked_add(cols))
                .is_some_and(|end| end <= out.len()));
    assert!(
        a.cols == b.rows && fits && a.in_bounds() && b.in_bounds(),
        "gemm_to: [{rows}, {}]·[{}, {cols}] into {} values at offset {offset}, row stride {rs}",
        a.cols,
        b.rows,
        out.len()
    );
    if rows == 0 || cols == 0 {
        return;
    }
    if a.cols == 0 {
        if !accumulate {
            for row in 0..rows {
                out[offset + row * rs..][..cols].fill(0.0);
            }
        }
        return;
    }
    let parallelism = if parallel {
        Parallelism::Rayon(0)
    } else {
        Parallelism::None
    };
    let stride = |s: usize| s as isize;
    // SAFETY: `a` and `b` were just checked to lie inside their slices (every index
    // `offset + i·rs + j·cs` for i < rows, j < cols), which are shared borrows alive for the
    // call. The destination elements `offset + i·rs + j` (i < rows, j < cols) were checked
    // to lie inside `out`, an exclusive borrow that cannot alias the inputs, and rows do not
    // overlap (`rs ≥ cols`), so gemm's threads write disjoint elements. gemm reads `out`
    // only with `read_dst` (`accumulate`), and `out` is initialised either way.
    unsafe {
        gemm::gemm(
            rows,
            cols,
            a.cols,
            out.as_mut_ptr().add(offset),
            1,
            stride(rs),
            accumulate,
            a.data.as_ptr().add(a.offset),
            stride(a.cs),
            stride(a.rs),
            b.data.as_ptr().add(b.offset),
            stride(b.cs),
            stride(b.rs),
            1.0,
            1.0,
            false,
            false,
            false,
            parallelism,
        );
    }
}

/// `[.., d]` as `(rows, d)`.
pub(super) fn rows_cols(shape: &Shape) -> (usize, usize) {
    let dims = shape.num_dims();
    let d = if dims == 0 { 1 } else { shape[dims - 1] };
    let rows = (0..dims.saturating_sub(1)).map(|i| shape[i]).product();
    (rows, d)
}

pub(super) fn with_last(shape: &Shape, d: usize) -> Shape {
    let mut dims: Vec<usize> = (0..shape.num_dims()).map(|i| shape[i]).collect();
    if let Some(last) = dims.last_mut() {
        *last = d;
    }
    Shape::from(dims)
}

/// Runs `f` on `t` as a matrix: in place when its strides allow, else a dense copy.
fn as_mat<R>(t: &FlexTensor, f: impl FnOnce(Mat<'_>) -> R) -> R {
    match Mat::of(t) {
        Some(m) => f(m),
        None => {
            let shape = t.shape();
            let dense = values(t);
            f(Mat::dense(&dense, shape[0], shape[1]))
        }
    }
}

/// `x·w + b` for `x: [.., d_in]`, `w: [d_in, d_out]`, `b: [d_out]`, all f32.
pub(super) fn linear(x: &FlexTensor, w: &FlexTensor, b: Option<&FlexTensor>) -> FlexTensor {
    let x_shape = x.shape();
    let (n, d_in) = rows_cols(&x_shape);
    let d_out = w.shape()[1];
    let mut out = match b {
        Some(b) => values(b).repeat(n),
        None => vec![0.0; n * d_out],
    };
    let xs = values(x);
    as_mat(w, |w| {
        gemm_into(&mut out, Mat::dense(&xs, n, d_in), w, b.is_some());
    });
    flex_tensor(out, with_last(&x_shape, d_out))
}

/// What the backward pass needs: `x` for the weight's gradient, `w` for the input's.
#[derive(Debug, Clone)]
pub(super) struct LinearState {
    x: Option<FlexTensor>,
    w: Option<FlexTensor>,
    x_shape: Shape,
}

/// Backward of [`linear`] with parents `[x, w]` or `[x, w, b]`.
#[derive(Debug)]
pub(super) struct LinearBackward;

impl<const N: usize> Backward<Flex, N> for LinearBackward {
    type State = LinearState;

    fn backward(self, ops: Ops<Self::State, N>, grads: &mut Gradients, _: &mut Checkpointer) {
        let parent = |i: usize| ops.parents.get(i).cloned().flatten();
        let grad = grads.consume::<Flex>(&ops.node);
        let (n, d_out) = rows_cols(&grad.shape());
        let g = values(&grad);
        let g = Mat::dense(&g, n, d_out);
        let s = ops.state;
        let (_, d_in) = rows_cols(&s.x_shape);
        if let (Some(node), Some(w)) = (parent(0), &s.w) {
            let mut dx = vec![0.0; n * d_in];
            as_mat(w, |w| gemm_into(&mut dx, g, w.t(), false));
            grads.register::<Flex>(node.id, flex_tensor(dx, s.x_shape.clone()));
        }
        if let (Some(node), Some(x)) = (parent(1), &s.x) {
            let mut dw = vec![0.0; d_in * d_out];
            let xs = values(x);
            gemm_into(&mut dw, Mat::dense(&xs, n, d_in).t(), g, false);
            grads.register::<Flex>(node.id, flex_tensor(dw, Shape::from(vec![d_in, d_out])));
        }
        if let Some(node) = parent(2) {
            let mut db = vec![0.0f32; d_out];
            for row in g.data.chunks_exact(d_out.max(1)) {
                db.iter_mut().zip(row).for_each(|(s, v)| *s += v);
            }
            grads.register::<Flex>(node.id, flex_tensor(db, Shape::from(vec![d_out])));
        }
    }
}

/// A float tensor of `Autodiff<Flex, C>` (Burn does not export the type by name).
type AdTensor<C> = FloatTensor<Autodiff<Flex, C>>;

/// [`linear`] on `Autodiff<Flex>`: records [`LinearBackward`] when any input is tracked,
/// keeping `x` only if the weight needs a gradient and `w` only if `x` does.
pub(super) fn autodiff_linear<C: CheckpointStrategy>(
    x: AdTensor<C>,
    w: AdTensor<C>,
    b: Option<AdTensor<C>>,
) -> AdTensor<C> {
    let tracked = [x.is_tracked(), w.is_tracked()];
    match b {
        Some(b) => record(
            LinearBackward
                .prepare::<C>([x.node, w.node, b.node])
                .compute_bound()
                .stateful(),
            tracked,
            x.primitive,
            w.primitive,
            Some(b.primitive),
        ),
        None => record(
            LinearBackward
                .prepare::<C>([x.node, w.node])
                .compute_bound()
                .stateful(),
            tracked,
            x.primitive,
            w.primitive,
            None,
        ),
    }
}

fn record<C: CheckpointStrategy, const N: usize>(
    kind: OpsKind<LinearBackward, Flex, LinearState, C, N>,
    [x_tracked, w_tracked]: [bool; 2],
    x: FlexTensor,
    w: FlexTensor,
    b: Option<FlexTensor>,
) -> AdTensor<C> {
    let out = linear(&x, &w, b.as_ref());
    match kind {
        OpsKind::Tracked(prep) => {
            let state = LinearState {
                x_shape: x.shape(),
                x: w_tracked.then_some(x),
                w: x_tracked.then_some(w),
            };
            prep.finish(state, out)
        }
        OpsKind::UnTracked(prep) => prep.finish(out),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(a: &[f32], b: &[f32], m: usize, k: usize, n: usize) -> Vec<f32> {
        (0..m)
            .flat_map(|i| (0..n).map(move |j| (0..k).map(|l| a[i * k + l] * b[l * n + j]).sum()))
            .collect()
    }

    #[test]
    fn gemm_into_matches_the_definition_plain_transposed_and_accumulated() {
        let (m, k, n) = (5, 7, 3);
        let a: Vec<f32> = (0..m * k).map(|i| (i as f32 * 0.37).sin()).collect();
        let b: Vec<f32> = (0..k * n).map(|i| (i as f32 * 0.11).cos()).collect();
        let want = naive(&a, &b, m, k, n);
        let mut out = vec![0.0; m * n];
        gemm_into(&mut out, Mat::dense(&a, m, k), Mat::dense(&b, k, n), false);
        for (x, y) in out.iter().zip(&want) {
            assert!((x - y).abs() < 1e-5);
        }
        // bᵀ stored densely as [n, k], viewed back through its transpose.
        let bt: Vec<f32> = (0..n * k).map(|i| b[(i % k) * n + i / k]).collect();
        let mut out = vec![1.0; m * n];
        gemm_into(
            &mut out,
            Mat::dense(&a, m, k),
            Mat::dense(&bt, n, k).t(),
            true,
        );
        for (x, y) in out.iter().zip(&want) {
            assert!((x - (y + 1.0)).abs() < 1e-5);
        }
    }

    #[test]
    fn products_land_in_a_column_block_of_a_wider_matrix() {
        let (m, k, n, width) = (4, 3, 2, 7);
        let a: Vec<f32> = (0..m * k).map(|i| i as f32 - 5.0).collect();
        let b: Vec<f32> = (0..k * n).map(|i| (i as f32).sqrt()).collect();
        let want = naive(&a, &b, m, k, n);
        let mut out = vec![-1.0; m * width];
        gemm_to(
            &mut out,
            [3, width],
            Mat::dense(&a, m, k),
            Mat::dense(&b, k, n),
            false,
            false,
        );
        for i in 0..m {
            for j in 0..width {
                let got = out[i * width + j];
                if (3..3 + n).contains(&j) {
                    assert!((got - want[i * n + j - 3]).abs() < 1e-4, "({i}, {j})");
                } else {
                    assert_eq!(got, -1.0, "({i}, {j}) outside the block was touched");
                }
            }
        }
    }

    #[test]
    #[should_panic(expected = "gemm_to")]
    fn a_block_past_the_end_is_refused() {
        let a = [1.0f32; 4];
        let mut out = vec![0.0; 7];
        gemm_to(
            &mut out,
            [6, 3],
            Mat::dense(&a, 2, 2),
            Mat::dense(&a, 2, 2),
            false,
            false,
        );
    }

    #[test]
    fn out_of_bounds_views_are_refused() {
        let data = [0.0f32; 6];
        assert!(Mat::dense(&data, 2, 3).in_bounds());
        assert!(!Mat::dense(&data, 3, 3).in_bounds());
        let shifted = Mat {
            offset: 1,
            ..Mat::dense(&data, 2, 3)
        };
        assert!(!shifted.in_bounds());
    }
}
