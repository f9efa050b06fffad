//! What every int8 micro-kernel reads and writes through: the weight's slices and the
//! epilogue that turns a tile of i32 sums into f32 outputs.

/// An int8 weight as the kernels read it (see [`crate::int8`]).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Weight<'a> {
    /// Packed `q`, `[⌈k/4⌉][n][4]`.
    pub packed: &'a [i8],
    pub scale: &'a [f32],
    pub sum: &'a [i32],
    pub bias: Option<&'a [f32]>,
    pub k: usize,
    pub n: usize,
}

impl Weight<'_> {
    /// Whether the slices have the lengths `k` and `n` imply.
    pub fn fits(&self) -> bool {
        self.packed.len() == self.k.div_ceil(4) * 4 * self.n
            && self.scale.len() == self.n
            && self.sum.len() == self.n
            && self.bias.is_none_or(|b| b.len() == self.n)
    }
}

/// What turns a tile of i32 sums into outputs: `out[i][j] = (acc − z_i·sum_j)·s_i·scale_j +
/// bias_j`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Epilogue<'a> {
    pub row_scale: &'a [f32],
    pub row_zero: &'a [i32],
    pub w: Weight<'a>,
}

impl Epilogue<'_> {
    /// Writes the tile `acc` (`rows` × `cols`, row stride `acc_rs`) for this epilogue's rows
    /// `r0..r0 + rows` and columns `j0..j0 + cols` into `out` (row stride `n`, row 0 = row
    /// `r0`).
    #[inline(always)]
    pub fn store(
        &self,
        acc: &[i32],
        acc_rs: usize,
        [r0, rows]: [usize; 2],
        [j0, cols]: [usize; 2],
        out: &mut [f32],
    ) {
        let n = self.w.n;
        let scale = &self.w.scale[j0..j0 + cols];
        let sum = &self.w.sum[j0..j0 + cols];
        for r in 0..rows {
            let (s, z) = (self.row_scale[r0 + r], self.row_zero[r0 + r]);
            let dst = &mut out[r * n + j0..r * n + j0 + cols];
            let acc = &acc[r * acc_rs..r * acc_rs + cols];
            match self.w.bias {
                Some(b) => {
                    let b = &b[j0..j0 + cols];
                    for c in 0..cols {
                        dst[c] = (acc[c] - z * sum[c]) as f32 * (s * scale[c]) + b[c];
                    }
                }
                None => {
                    for c in 0..cols {
                        dst[c] = (acc[c] - z * sum[c]) as f32 * (s * scale[c]);
                    }
                }
            }
        }
    }
}

/// Columns per block: a `[k, 256]` slice of the packed weight stays in L2 while every row
/// tile of a row block passes over it.
const COL_BLOCK: usize = 256;

/// Every tile of `[tile_rows, tile_cols]` over a row block's `rows` rows (the epilogue's) and
/// all `n` columns: column blocks of [`COL_BLOCK`] outer, row tiles inside (a tile's
/// activations stay in L1 while the column block streams from L2), then the tile's columns.
/// `sums([r, mr], [j, nc], acc)` writes the tile's i32 sums into `acc` (row stride
/// `tile_cols`), then the epilogue writes them to `out` (the block's outputs, row stride `n`).
/// Inlined into each kernel's loop, so the epilogue is compiled for that kernel's vector
/// width.
#[inline(always)]
pub(crate) fn tiles(
    rows: usize,
    [tile_rows, tile_cols]: [usize; 2],
    ep: &Epilogue<'_>,
    acc: &mut [i32],
    out: &mut [f32],
    mut sums: impl FnMut([usize; 2], [usize; 2], &mut [i32]),
) {
    let n = ep.w.n;
    for j0 in (0..n).step_by(COL_BLOCK) {
        let end = (j0 + COL_BLOCK).min(n);
        for r in (0..rows).step_by(tile_rows) {
            let mr = (rows - r).min(tile_rows);
            for j in (j0..end).step_by(tile_cols) {
                let nc = (end - j).min(tile_cols);
                sums([r, mr], [j, nc], acc);
                ep.store(acc, tile_cols, [r, mr], [j, nc], &mut out[r * n..]);
            }
        }
    }
}
