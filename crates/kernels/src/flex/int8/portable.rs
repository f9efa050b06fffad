//! The portable int8 micro-kernel: the same packed layout and sums as the x86 kernels, in
//! plain Rust, for CPUs without AVX2 (and as the reference path every machine tests).
//!
//! Written for the auto-vectoriser: each output column keeps four partial sums, one per input
//! of a packed group, so the inner loop is a contiguous multiply-add over the weight's bytes
//! with a repeating four-lane multiplier (16-bit products: 255·127 fits), the four added at the
//! end; four rows share each load of the weight, whose slice of 64 columns stays in L1. It
//! is compiled for the CPU's vector width through [`simd`] (NEON on ARM, AVX on x86 when
//! the dedicated kernels are set aside). It is a fallback, not fast: on the AVX-512 machine
//! of docs/BENCHMARKS.md it evaluates at a sixth of the f32 rate (a NEON `sdot` kernel is
//! what an ARM CPU would need).

use super::operands::{Epilogue, tiles};
use crate::flex::simd::{Kernel, simd};

/// Rows per tile.
const ROWS: usize = 4;
/// Columns per tile.
const COLS: usize = 64;

/// A row block of `rows` rows × every column (see [`super::linear`]).
pub(super) fn block(a: &[u8], kp: usize, rows: usize, ep: &Epilogue<'_>, out: &mut [f32]) {
    let mut lanes = [0i32; ROWS * 4 * COLS];
    let mut acc = [0i32; ROWS * COLS];
    let shape = [ROWS, COLS];
    tiles(rows, shape, ep, &mut acc, out, |[r, mr], [j, nc], acc| {
        simd(TileSums {
            a: &a[r * kp..(r + mr) * kp],
            kp,
            w: ep.w.packed,
            n: ep.w.n,
            j,
            nc,
            lanes: &mut lanes,
            acc,
        })
    });
}

/// Up to [`ROWS`] activation rows (`a`, stride `kp`) against columns `j..j + nc`:
/// `acc[r·COLS + c] = Σ_k a[r][k]·q[k][j + c]`.
struct TileSums<'a> {
    a: &'a [u8],
    kp: usize,
    w: &'a [i8],
    n: usize,
    j: usize,
    nc: usize,
    /// Scratch: four partial sums per row and column.
    lanes: &'a mut [i32; ROWS * 4 * COLS],
    acc: &'a mut [i32],
}

impl Kernel for TileSums<'_> {
    #[inline(always)]
    fn run(self) {
        let rows = self.a.len() / self.kp.max(1);
        let width = 4 * self.nc;
        self.lanes.fill(0);
        for kk in 0..self.kp / 4 {
            let start = (kk * self.n + self.j) * 4;
            let w = &self.w[start..start + width];
            for r in 0..rows {
                let a4 = &self.a[r * self.kp + 4 * kk..][..4];
                let a = [0, 1, 2, 3].map(|l| i16::from(a4[l]));
                let lanes = &mut self.lanes[r * 4 * COLS..][..width];
                for (lane, q) in lanes.chunks_exact_mut(4).zip(w.chunks_exact(4)) {
                    for l in 0..4 {
                        lane[l] += i32::from(a[l] * i16::from(q[l]));
                    }
                }
            }
        }
        for r in 0..rows {
            let lanes = &self.lanes[r * 4 * COLS..][..width];
            let acc = &mut self.acc[r * COLS..][..self.nc];
            for (s, lane) in acc.iter_mut().zip(lanes.chunks_exact(4)) {
                *s = lane[0] + lane[1] + lane[2] + lane[3];
            }
        }
    }
}
