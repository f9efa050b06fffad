//! The portable int8 micro-kernel: the same packed layout and sums as the x86 kernels, in
//! plain Rust, for CPUs without AVX2 (and as the reference path every machine tests).

use super::operands::Epilogue;

/// Rows `i0..i0 + rows` × columns `j0..j0 + cols` (see [`super::linear`]), one row at a time.
pub(super) fn block(
    a: &[u8],
    kp: usize,
    [i0, rows]: [usize; 2],
    [j0, cols]: [usize; 2],
    ep: &Epilogue<'_>,
    out: &mut [f32],
) {
    let n = ep.w.n;
    let mut acc = vec![0i32; cols];
    for (r, row) in a.chunks_exact(kp.max(1)).take(rows).enumerate() {
        acc.fill(0);
        for (kk, a4) in row.chunks_exact(4).enumerate() {
            let start = (kk * n + j0) * 4;
            let w = &ep.w.packed[start..start + 4 * cols];
            for (c, q) in acc.iter_mut().zip(w.chunks_exact(4)) {
                *c += (0..4)
                    .map(|l| i32::from(a4[l]) * i32::from(q[l]))
                    .sum::<i32>();
            }
        }
        ep.store(&acc, cols, [i0 + r, 1], [j0, cols], &mut out[r * n..]);
    }
}
