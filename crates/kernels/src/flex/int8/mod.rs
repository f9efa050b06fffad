//! The int8 linear layer on the CPU: activations quantised per row to u8, products of u8
//! activations and packed i8 weights accumulated in i32 by the best micro-kernel the CPU has
//! (AVX-512 VNNI, AVX2, or portable Rust), then scaled back to f32 with the bias
//! ([`crate::int8`] defines the format and the numbers).
//!
//! Why our own kernels: Burn 0.21 dequantises quantised tensors to f32 before any product,
//! and `gemm` (which Flex's matmul uses) multiplies floats only. The crates with integer
//! products either cover one of our paths (`tract-linalg`'s int8 kernels are AVX2/FMA and
//! NEON, no VNNI, behind its own fused-op planner and tensor types) or bind a C++ library
//! (oneDNN, fbgemm), which the build must then compile. An int8 GEMM with a fixed
//! epilogue is three short micro-kernels over one packing; these are they.
//!
//! # Layout
//! - this module: row quantisation, blocking over rows and columns (rows in parallel), the
//!   f32 epilogue, and the choice of micro-kernel ([`Path`], by CPU feature detection, which
//!   `IMDB_LORA_INT8_KERNEL` may narrow for measurements);
//! - `operands.rs`: what every micro-kernel reads and writes through (the weight's slices, the
//!   epilogue), so the kernels and this module share it without importing each other;
//! - `x86.rs`: the AVX-512 VNNI and AVX2 micro-kernels (the module's only `unsafe`);
//! - `portable.rs`: the same tiles in plain Rust, on every CPU.

use std::sync::OnceLock;

use rayon::prelude::*;

use super::simd::{Kernel, max_of, min_of, simd};

mod operands;
mod portable;
#[cfg(target_arch = "x86_64")]
mod x86;

use self::operands::Epilogue;
pub(crate) use self::operands::Weight;

/// Multiply-adds below which one thread does the whole product (as for the f32 linear).
const PARALLEL_WORK: usize = 192 * 192 * 192;

/// A micro-kernel family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Path {
    /// `vpdpbusd` on 512-bit vectors: 64 multiply-adds per instruction.
    Avx512Vnni,
    /// Activations and weights widened to i16, `vpmaddwd` on 256-bit vectors.
    Avx2,
    /// Plain Rust (what the compiler makes of it for the baseline target).
    Portable,
}

impl Path {
    /// Every path this CPU can run, fastest first; `Portable` always.
    pub fn supported() -> Vec<Path> {
        let mut paths = Vec::new();
        #[cfg(target_arch = "x86_64")]
        {
            if x86::has_vnni() {
                paths.push(Path::Avx512Vnni);
            }
            if x86::has_avx2() {
                paths.push(Path::Avx2);
            }
        }
        paths.push(Path::Portable);
        paths
    }

    /// The name `IMDB_LORA_INT8_KERNEL` takes.
    pub fn name(self) -> &'static str {
        match self {
            Path::Avx512Vnni => "avx512vnni",
            Path::Avx2 => "avx2",
            Path::Portable => "portable",
        }
    }

    /// The path int8 products take: the fastest supported, or the one
    /// `IMDB_LORA_INT8_KERNEL` names when this CPU supports it (read once; an unknown or
    /// unsupported name is logged and ignored).
    pub fn chosen() -> Path {
        static CHOSEN: OnceLock<Path> = OnceLock::new();
        *CHOSEN.get_or_init(|| {
            let supported = Path::supported();
            let best = supported.first().copied().unwrap_or(Path::Portable);
            match std::env::var("IMDB_LORA_INT8_KERNEL") {
                Ok(name) => match supported.iter().find(|p| p.name() == name) {
                    Some(&p) => p,
                    None => {
                        tracing::warn!(
                            "IMDB_LORA_INT8_KERNEL={name}: not one of this CPU's int8 paths {:?}; using {}",
                            supported.iter().map(|p| p.name()).collect::<Vec<_>>(),
                            best.name()
                        );
                        best
                    }
                },
                Err(_) => best,
            }
        })
    }
}

/// Activations quantised per row: `a[i][k]` u8 (row stride `kp`, a multiple of 4, padding
/// zero), and each row's scale and zero point.
#[derive(Debug)]
pub(crate) struct Rows {
    pub a: Vec<u8>,
    pub kp: usize,
    pub scale: Vec<f32>,
    pub zero: Vec<i32>,
}

/// One row of [`quantize_rows`]: its values, its u8 output, its scale and zero point.
type RowTask<'a> = ((&'a [f32], &'a mut [u8]), (&'a mut f32, &'a mut i32));

/// Quantises each row of `x` (`m` rows of `k`) to u8: `lo = min(row, 0)`, `hi = max(row, 0)`,
/// `s = (hi − lo)/255`, `z = round(−lo/s)`, `a = clamp(round(x/s) + z, 0, 255)` (ties to even,
/// as the composition's `round`). A row with a NaN or infinity gets a NaN scale, so the
/// layer's output row is NaN, as the f32 product's would be.
pub(crate) fn quantize_rows(x: &[f32], m: usize, k: usize) -> Rows {
    let kp = k.div_ceil(4) * 4;
    let mut a = vec![0u8; m * kp];
    let mut scale = vec![0.0f32; m];
    let mut zero = vec![0i32; m];
    let one_row = |((row, out), (s, z)): RowTask<'_>| {
        simd(QuantizeRow {
            row,
            out,
            scale: s,
            zero: z,
        })
    };
    // Sequential: callers quantise a block of rows inside their own parallel task.
    x.chunks_exact(k.max(1))
        .zip(a.chunks_exact_mut(kp.max(1)))
        .zip(scale.iter_mut().zip(zero.iter_mut()))
        .for_each(one_row);
    Rows { a, kp, scale, zero }
}

/// One row of [`quantize_rows`], compiled for the CPU's vector width.
struct QuantizeRow<'a> {
    row: &'a [f32],
    out: &'a mut [u8],
    scale: &'a mut f32,
    zero: &'a mut i32,
}

impl Kernel for QuantizeRow<'_> {
    #[inline(always)]
    fn run(self) {
        // 1.5·2²³: adding and subtracting it rounds to the nearest integer, ties to even (the
        // FPU's mode), for |v| < 2²²; |x/s| ≤ 255 here. `round_ties_even` would be a libm call
        // per element on the baseline target, and a float → u8 `as` does not vectorise.
        const ROUND: f32 = 12_582_912.0;
        // 2²³: an integer 0 ≤ v < 2²³ added to it sits in the low mantissa bits.
        const BITS: f32 = 8_388_608.0;
        let (lo, hi) = (min_of(self.row).min(0.0), max_of(self.row).max(0.0));
        // min/max skip a NaN (it compares false), hence the second look.
        if !(lo.is_finite() && hi.is_finite()) || self.row.iter().any(|v| v.is_nan()) {
            *self.scale = f32::NAN;
            return;
        }
        let range = hi - lo;
        let s = if range > 0.0 { range / 255.0 } else { 1.0 };
        let z = ((-lo / s + ROUND) - ROUND).clamp(0.0, 255.0);
        for (o, &v) in self.out.iter_mut().zip(self.row) {
            let q = ((v / s + ROUND) - ROUND + z).clamp(0.0, 255.0);
            *o = (q + BITS).to_bits() as u8;
        }
        *self.scale = s;
        *self.zero = z as i32;
    }
}

/// `x·W + b` for `x` `[m, k]` f32 (row-major) and an int8 `w`: `[m, n]` f32.
///
/// # Panics
/// When `x` or `w`'s slices do not have the lengths `m`, `k`, `n` imply (the caller checks).
pub(crate) fn linear(x: &[f32], m: usize, w: Weight<'_>, path: Path) -> Vec<f32> {
    assert!(
        x.len() == m * w.k && w.fits(),
        "int8 linear: {} inputs for [{m}, {}], weight parts do not fit",
        x.len(),
        w.k
    );
    let mut out = vec![0.0f32; m * w.n];
    if m == 0 || w.n == 0 {
        return out;
    }
    let parallel = m * w.k * w.n >= PARALLEL_WORK;
    let threads = if parallel {
        rayon::current_num_threads()
    } else {
        1
    };
    // Row blocks: a multiple of 8 rows (every tile height divides it), at least 4 per thread
    // for balance, at most 256 so a column block is reused from L2 often. Each block
    // quantises its own rows: the u8 copy of the input never exists whole (a quarter of the
    // input's size, which the peak memory of a large batch would otherwise carry), and the
    // block's activations are still in cache for its products.
    let block = m.div_ceil(4 * threads).next_multiple_of(8).clamp(8, 256);
    let run = |(b, out): (usize, &mut [f32])| {
        let i0 = b * block;
        let count = out.len() / w.n;
        let rows = quantize_rows(&x[i0 * w.k..(i0 + count) * w.k], count, w.k);
        let ep = Epilogue {
            row_scale: &rows.scale,
            row_zero: &rows.zero,
            w,
        };
        block_product(path, &rows.a, rows.kp, count, &ep, out);
    };
    if parallel {
        out.par_chunks_mut(block * w.n).enumerate().for_each(run);
    } else {
        out.chunks_mut(block * w.n).enumerate().for_each(run);
    }
    out
}

/// A row block (its `rows` rows of activations `a`, the epilogue's rows) times every column,
/// into `out` (the block's outputs, row stride `n`).
fn block_product(path: Path, a: &[u8], kp: usize, rows: usize, ep: &Epilogue<'_>, out: &mut [f32]) {
    match path {
        #[cfg(target_arch = "x86_64")]
        Path::Avx512Vnni if x86::has_vnni() => x86::vnni_block(a, kp, rows, ep, out),
        #[cfg(target_arch = "x86_64")]
        Path::Avx2 if x86::has_avx2() => x86::avx2_block(a, kp, rows, ep, out),
        _ => portable::block(a, kp, rows, ep, out),
    }
}

/// The i32 sums `Σ_k a[i][k]·q[k][j]` alone (`[m, n]`), through `path`: what the tests check
/// against exact integer arithmetic.
#[cfg(test)]
fn sums(a: &[u8], m: usize, kp: usize, w: Weight<'_>, path: Path) -> Vec<i32> {
    // An epilogue that maps the sum to itself: scale 1, zero point 0, no bias. Exact for
    // the tests' small sums (|sum| < 2²⁴).
    let ones = vec![1.0f32; m.max(w.n)];
    let zeros = vec![0i32; m];
    let w = Weight {
        scale: &ones[..w.n],
        bias: None,
        ..w
    };
    let ep = Epilogue {
        row_scale: &ones[..m],
        row_zero: &zeros,
        w,
    };
    let mut out = vec![0.0f32; m * w.n];
    block_product(path, a, kp, m, &ep, &mut out);
    out.iter().map(|&v| v as i32).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::int8::Int8Parts;

    /// A deterministic stream of bytes.
    fn bytes(n: usize, seed: u64) -> Vec<u8> {
        let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        (0..n)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                (s >> 24) as u8
            })
            .collect()
    }

    #[test]
    fn every_supported_path_sums_exactly_on_odd_shapes() {
        let paths = Path::supported();
        assert!(paths.contains(&Path::Portable));
        for (m, k, n) in [
            (1usize, 1usize, 1usize),
            (3, 5, 7),
            (9, 67, 33),
            (17, 130, 65),
            (8, 64, 32),
            (13, 257, 300),
            (2, 4, 513),
        ] {
            let kp = k.div_ceil(4) * 4;
            let mut a = bytes(m * kp, (m * 31 + k) as u64);
            // Extremes too: the largest u8 against ±127.
            a[0] = 255;
            for i in 0..m {
                a[i * kp + k..(i + 1) * kp].fill(0);
            }
            let q: Vec<i8> = bytes(n * k, (n * 7 + k) as u64)
                .into_iter()
                .map(|b| (b as i8).max(-127))
                .collect();
            let parts = Int8Parts::new(q.clone(), vec![1.0; n], None, k, n).unwrap();
            let packed = parts.packed();
            let sum = vec![0i32; n];
            let w = Weight {
                packed: &packed,
                scale: &parts.scale,
                sum: &sum,
                bias: None,
                k,
                n,
            };
            let want: Vec<i32> = (0..m)
                .flat_map(|i| {
                    let (a, q) = (&a, &q);
                    (0..n).map(move |j| {
                        (0..k)
                            .map(|l| i32::from(a[i * kp + l]) * i32::from(q[j * k + l]))
                            .sum()
                    })
                })
                .collect();
            for &path in &paths {
                assert_eq!(
                    sums(&a, m, kp, w, path),
                    want,
                    "{} at m={m} k={k} n={n}",
                    path.name()
                );
            }
        }
    }

    #[test]
    fn every_path_matches_the_float_composition_and_stays_near_f32() {
        use burn::backend::Flex;
        use burn::module::Param;
        use burn::nn::Linear;
        use burn::tensor::{Distribution, Tensor};

        use crate::int8::{Int8Linear, linear_int8_composed};

        let (m, k, n) = (37, 75, 41);
        let device = Default::default();
        let normal = |shape: [usize; 2], std| {
            Tensor::<Flex, 2>::random(shape, Distribution::Normal(0.0, std), &device)
        };
        let linear = Linear {
            weight: Param::from_tensor(normal([k, n], 0.2)),
            bias: Some(Param::from_tensor(normal([1, n], 1.0).reshape([n]))),
        };
        let layer = Int8Linear::quantize(&linear).unwrap();
        // A zero row and an all-positive row besides the normal ones.
        let x = Tensor::cat(
            vec![
                normal([m - 2, k], 1.0),
                Tensor::zeros([1, k], &device),
                normal([1, k], 1.0).abs(),
            ],
            0,
        );
        let flat = |t: Tensor<Flex, 2>| t.into_data().convert::<f32>().to_vec::<f32>().unwrap();
        let want = flat(linear_int8_composed(x.clone(), &layer));
        let exact = flat(linear.forward(x.clone()));
        let xs = flat(x);
        let packed = layer.weight.val().into_data().to_vec::<i8>().unwrap();
        let sum = layer.weight_sum.val().into_data().to_vec::<i32>().unwrap();
        let scale = layer
            .weight_scale
            .val()
            .into_data()
            .to_vec::<f32>()
            .unwrap();
        let bias = layer
            .bias
            .as_ref()
            .unwrap()
            .val()
            .into_data()
            .to_vec::<f32>()
            .unwrap();
        let w = Weight {
            packed: &packed,
            scale: &scale,
            sum: &sum,
            bias: Some(&bias),
            k,
            n,
        };
        let portable = super::linear(&xs, m, w, Path::Portable);
        for path in Path::supported() {
            let got = super::linear(&xs, m, w, path);
            // Exact integer sums and one epilogue: every path gives the same bits, so a model's
            // outputs do not depend on the CPU it runs on.
            assert_eq!(
                got,
                portable,
                "{} differs from the portable path",
                path.name()
            );
            for (i, ((g, c), e)) in got.iter().zip(&want).zip(&exact).enumerate() {
                // The composition sums dequantised products in f32; the kernels sum integers.
                assert!(
                    (g - c).abs() <= 1e-4 * (1.0 + c.abs()),
                    "{} [{i}]: {g} vs {c}",
                    path.name()
                );
                // Against f32: a few grid steps of a sum over 75 products.
                assert!((g - e).abs() < 0.1, "{} [{i}]: {g} vs f32 {e}", path.name());
            }
            // The zero row is the bias exactly.
            assert_eq!(&got[(m - 2) * n..(m - 1) * n], &bias[..], "{}", path.name());
        }
    }

    #[test]
    fn rows_quantise_to_their_own_grid_with_zero_exact() {
        let x = [0.0f32, -1.0, 2.0, 0.5, 3.0, 3.0, 3.0, 3.0];
        let r = quantize_rows(&x, 2, 4);
        assert_eq!(r.kp, 4);
        // Row 0: range [-1, 2]: s = 3/255, z = 85.
        assert!((r.scale[0] - 3.0 / 255.0).abs() < 1e-9);
        assert_eq!(r.zero[0], 85);
        assert_eq!(r.a[0], 85, "zero maps to the zero point");
        assert_eq!((r.a[1], r.a[2]), (0, 255));
        // Row 1: all positive, so the range starts at 0 (z = 0).
        assert_eq!(r.zero[1], 0);
        assert_eq!(&r.a[4..8], &[255; 4]);
        let nan = quantize_rows(&[1.0, f32::NAN], 1, 2);
        assert!(nan.scale[0].is_nan());
    }
}
