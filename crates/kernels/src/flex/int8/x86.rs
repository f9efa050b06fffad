//! The x86-64 int8 micro-kernels: AVX-512 VNNI (`vpdpbusd`: four u8·i8 products summed into
//! each 32-bit lane, 64 per instruction) and AVX2 (u8 and i8 widened to i16, `vpmaddwd`).
//!
//! This file is the int8 path's only `unsafe` code: the intrinsics, and the raw pointers they
//! load through. The invariants, checked by the safe entry points before any `unsafe`:
//! - the CPU has the features the kernel is compiled for (`is_x86_feature_detected!`);
//! - `a` holds `rows` rows of `kp` bytes, `kp` a multiple of 4, so every 4-byte activation
//!   load `a[r·kp + 4·kk ..][..4]` (`r < rows`, `kk < kp/4`) is inside it (and the AVX2
//!   kernel's i16 copy of it, 8-byte loads at the same element offsets, inside that copy);
//! - the packed weight holds `kp/4` rows of `n` columns × 4 bytes (`Weight::fits`, and `kp/4`
//!   equals its row count), and the columns of every tile lie below `n`: each weight load
//!   reads columns `j..j + nc` of one row, either exactly (AVX-512's byte-masked loads, which
//!   neither read nor fault outside the mask) or through a zero-padded copy (AVX2's last tile);
//! - `out` holds `rows` rows of stride `n`.
#![allow(unsafe_code)]

use std::arch::x86_64::*;

use super::operands::{Epilogue, tiles};

/// Rows per VNNI tile (8 × 2 accumulator registers of the 32 available).
const VNNI_ROWS: usize = 8;
/// Columns per VNNI tile: two vectors of 16 lanes.
const VNNI_COLS: usize = 32;
/// Rows per AVX2 tile (6 × 2 accumulators + 3 operands of the 16 registers).
const AVX2_ROWS: usize = 6;
/// Columns per AVX2 tile: two vectors of 4 columns × 2 half-sums.
const AVX2_COLS: usize = 8;

pub(super) fn has_vnni() -> bool {
    is_x86_feature_detected!("avx512f")
        && is_x86_feature_detected!("avx512bw")
        && is_x86_feature_detected!("avx512vnni")
}

pub(super) fn has_avx2() -> bool {
    is_x86_feature_detected!("avx2")
}

/// The bounds every kernel relies on (module docs), checked once per block.
fn check(a: &[u8], kp: usize, rows: usize, ep: &Epilogue<'_>, out: &[f32]) {
    let w = ep.w;
    assert!(
        kp.is_multiple_of(4)
            && a.len() >= rows * kp
            && w.fits()
            && w.k.div_ceil(4) * 4 == kp
            && out.len() >= rows * w.n
            && ep.row_scale.len() >= rows
            && ep.row_zero.len() >= rows,
        "int8 kernel: block of {rows} rows × {kp} bytes, {} columns, {} outputs",
        w.n,
        out.len()
    );
}

/// A row block of `rows` rows × every column on AVX-512 VNNI (see [`super::linear`]).
pub(super) fn vnni_block(a: &[u8], kp: usize, rows: usize, ep: &Epilogue<'_>, out: &mut [f32]) {
    check(a, kp, rows, ep, out);
    assert!(
        has_vnni(),
        "int8 kernel: AVX-512 VNNI asked for on a CPU without it"
    );
    // SAFETY: the CPU has AVX-512 F/BW/VNNI (asserted) and the block's bounds were checked.
    unsafe { vnni_loops(a, kp, rows, ep, out) }
}

/// [`vnni_block`]'s loops, compiled for AVX-512 so the epilogue is vectorised at that width.
///
/// # Safety
/// AVX-512 F/BW/VNNI present; the bounds `check` verifies.
#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
unsafe fn vnni_loops(a: &[u8], kp: usize, rows: usize, ep: &Epilogue<'_>, out: &mut [f32]) {
    let mut acc = [0i32; VNNI_ROWS * VNNI_COLS];
    let shape = [VNNI_ROWS, VNNI_COLS];
    tiles(rows, shape, ep, &mut acc, out, |[r, mr], [j, nc], acc| {
        let tile = Tile {
            a: &a[r * kp..(r + mr) * kp],
            kp,
            w: ep.w.packed,
            n: ep.w.n,
            j,
            nc,
        };
        // SAFETY: the caller's contract (AVX-512 present, bounds checked); the tile lies inside
        // the checked block (`mr` rows from `r < rows`, columns `j..j + nc` ≤ `n`).
        unsafe {
            match mr {
                8 => vnni_tile::<8>(tile, acc),
                7 => vnni_tile::<7>(tile, acc),
                6 => vnni_tile::<6>(tile, acc),
                5 => vnni_tile::<5>(tile, acc),
                4 => vnni_tile::<4>(tile, acc),
                3 => vnni_tile::<3>(tile, acc),
                2 => vnni_tile::<2>(tile, acc),
                _ => vnni_tile::<1>(tile, acc),
            }
        }
    });
}

/// A row block of `rows` rows × every column on AVX2.
pub(super) fn avx2_block(a: &[u8], kp: usize, rows: usize, ep: &Epilogue<'_>, out: &mut [f32]) {
    check(a, kp, rows, ep, out);
    assert!(
        has_avx2(),
        "int8 kernel: AVX2 asked for on a CPU without it"
    );
    // SAFETY: the CPU has AVX2 (asserted) and the block's bounds were checked.
    unsafe { avx2_loops(a, kp, rows, ep, out) }
}

/// [`avx2_block`]'s loops, compiled for AVX2.
///
/// # Safety
/// AVX2 present; the bounds `check` verifies.
#[target_feature(enable = "avx2")]
unsafe fn avx2_loops(a: &[u8], kp: usize, rows: usize, ep: &Epilogue<'_>, out: &mut [f32]) {
    // The block's activations widened to i16 once (for all its columns), so each row's four
    // inputs are one 8-byte broadcast in the inner loop (instead of a load, a widening and a
    // broadcast).
    let wide: Vec<i16> = a[..rows * kp].iter().map(|&v| i16::from(v)).collect();
    let mut acc = [0i32; AVX2_ROWS * AVX2_COLS];
    let shape = [AVX2_ROWS, AVX2_COLS];
    tiles(rows, shape, ep, &mut acc, out, |[r, mr], [j, nc], acc| {
        let tile = WideTile {
            a: &wide[r * kp..(r + mr) * kp],
            kp,
            w: ep.w.packed,
            n: ep.w.n,
            j,
            nc,
        };
        // SAFETY: as in `vnni_loops`, with AVX2.
        unsafe {
            match mr {
                6 => avx2_tile::<6>(tile, acc),
                5 => avx2_tile::<5>(tile, acc),
                4 => avx2_tile::<4>(tile, acc),
                3 => avx2_tile::<3>(tile, acc),
                2 => avx2_tile::<2>(tile, acc),
                _ => avx2_tile::<1>(tile, acc),
            }
        }
    });
}

/// [`Tile`] with the activations widened to i16 (the AVX2 kernel's operands).
#[derive(Clone, Copy)]
struct WideTile<'a> {
    a: &'a [i16],
    kp: usize,
    w: &'a [i8],
    n: usize,
    j: usize,
    nc: usize,
}

/// One tile's operands: `MR` rows of activations (`a`, stride `kp`), the packed weight of `n`
/// columns, and the tile's columns `j..j + nc`.
#[derive(Clone, Copy)]
struct Tile<'a> {
    a: &'a [u8],
    kp: usize,
    w: &'a [i8],
    n: usize,
    j: usize,
    nc: usize,
}

/// The four activations `a[r][4·kk..4·kk + 4]` as one 32-bit word.
///
/// # Safety
/// `r·kp + 4·kk + 4 ≤ a.len()`.
#[inline(always)]
unsafe fn four(t: &Tile<'_>, r: usize, kk: usize) -> i32 {
    // SAFETY: in bounds by the caller's contract; unaligned reads are allowed.
    unsafe { (t.a.as_ptr().add(r * t.kp + kk * 4) as *const i32).read_unaligned() }
}

/// `acc[r·32 + c] = Σ_k a[r][k]·q[k][j + c]` for `r < MR`, `c < nc`.
///
/// # Safety
/// AVX-512 F/BW/VNNI present; `t` within bounds (module docs); `t.a` holds `MR` rows.
#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
unsafe fn vnni_tile<const MR: usize>(t: Tile<'_>, acc_out: &mut [i32]) {
    let mask = |cols: usize| -> __mmask64 {
        match cols * 4 {
            64.. => !0,
            bytes => (1u64 << bytes) - 1,
        }
    };
    let (m0, m1) = (mask(t.nc.min(16)), mask(t.nc.saturating_sub(16)));
    let mut acc = [[_mm512_setzero_si512(); 2]; MR];
    for kk in 0..t.kp / 4 {
        // Wrapping: the second vector's address may lie past the weight when m1 is empty
        // (it is then not read).
        let base = t.w.as_ptr().wrapping_add((kk * t.n + t.j) * 4);
        // SAFETY: masked loads read only the bytes of columns j..j + nc of row kk, inside
        // the weight (module docs); masked-off bytes are neither read nor fault.
        let (b0, b1) = unsafe {
            (
                _mm512_maskz_loadu_epi8(m0, base),
                _mm512_maskz_loadu_epi8(m1, base.wrapping_add(64)),
            )
        };
        for (r, acc) in acc.iter_mut().enumerate() {
            // SAFETY: r < MR rows of kp bytes, kk < kp/4.
            let av = _mm512_set1_epi32(unsafe { four(&t, r, kk) });
            acc[0] = _mm512_dpbusd_epi32(acc[0], av, b0);
            acc[1] = _mm512_dpbusd_epi32(acc[1], av, b1);
        }
    }
    for (r, acc) in acc.iter().enumerate() {
        let dst = &mut acc_out[r * VNNI_COLS..(r + 1) * VNNI_COLS];
        // SAFETY: `dst` holds 32 i32 = two 64-byte vectors.
        unsafe {
            _mm512_storeu_si512(dst.as_mut_ptr() as *mut __m512i, acc[0]);
            _mm512_storeu_si512(dst.as_mut_ptr().add(16) as *mut __m512i, acc[1]);
        }
    }
}

/// `acc[r·8 + c] = Σ_k a[r][k]·q[k][j + c]` for `r < MR`, `c < nc`.
///
/// # Safety
/// AVX2 present; `t` within bounds (module docs); `t.a` holds `MR` rows of `kp` i16.
#[target_feature(enable = "avx2")]
unsafe fn avx2_tile<const MR: usize>(t: WideTile<'_>, acc_out: &mut [i32]) {
    let full = t.nc == AVX2_COLS;
    let mut tail = [0i8; 4 * AVX2_COLS];
    let mut acc = [[_mm256_setzero_si256(); 2]; MR];
    for kk in 0..t.kp / 4 {
        let start = (kk * t.n + t.j) * 4;
        let src: &[i8] = if full {
            &t.w[start..start + 4 * AVX2_COLS]
        } else {
            // The matrix's last columns: a zero-padded copy, so the loads stay in bounds.
            tail[..4 * t.nc].copy_from_slice(&t.w[start..start + 4 * t.nc]);
            &tail
        };
        // SAFETY: `src` holds 32 bytes (checked slice or the local copy).
        let (b0, b1) = unsafe {
            (
                _mm256_cvtepi8_epi16(_mm_loadu_si128(src.as_ptr() as *const __m128i)),
                _mm256_cvtepi8_epi16(_mm_loadu_si128(src.as_ptr().add(16) as *const __m128i)),
            )
        };
        for (r, acc) in acc.iter_mut().enumerate() {
            // a0 a1 a2 a3 as i16, repeated: 32-bit lanes alternate (a0, a1) and (a2, a3),
            // against the weight's (k0, k1) and (k2, k3) of each column.
            // SAFETY: r < MR rows of kp i16, kk < kp/4: the 8 bytes at r·kp + 4·kk are inside.
            let four =
                unsafe { (t.a.as_ptr().add(r * t.kp + kk * 4) as *const i64).read_unaligned() };
            let av = _mm256_set1_epi64x(four);
            acc[0] = _mm256_add_epi32(acc[0], _mm256_madd_epi16(av, b0));
            acc[1] = _mm256_add_epi32(acc[1], _mm256_madd_epi16(av, b1));
        }
    }
    for (r, acc) in acc.iter().enumerate() {
        let mut lanes = [0i32; 16];
        // SAFETY: `lanes` holds two 32-byte vectors.
        unsafe {
            _mm256_storeu_si256(lanes.as_mut_ptr() as *mut __m256i, acc[0]);
            _mm256_storeu_si256(lanes.as_mut_ptr().add(8) as *mut __m256i, acc[1]);
        }
        // Lanes 2c and 2c + 1 hold column c's two half-sums.
        for c in 0..AVX2_COLS {
            acc_out[r * AVX2_COLS + c] = lanes[2 * c] + lanes[2 * c + 1];
        }
    }
}
